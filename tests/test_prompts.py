"""The turns of the conversation: the task of a fix with the other suspects as context, and
the task of a fix of two functions together, in the paper's format."""

from __future__ import annotations

from pathlib import Path

from oci_lsp.refine.prompts import (
    FunctionToFix,
    TestSource,
    module_context,
    pair_answer_message,
    pair_task_message,
    related_source,
    related_sources,
    task_message,
)
from oci_lsp.testing.failures import Span, Suspect

PRICES = '''\
"""Prices."""

VAT = 0.2


def rate(kind):
    """The tax rate of a kind of goods."""
    return VAT if kind == "food" else 0.05


def price(net, kind):
    return net * (1 + rate(kind))


class Basket:
    def __init__(self, items):
        self.items = items

    def total(self):
        return sum(price(n, k) for n, k in self.items)

    def count(self):
        return len(self.items)
'''

TESTS = [
    TestSource(
        "tests/test_prices.py::test_food", "def test_food():\n    assert price(10, 'food') == 10.5"
    )
]


def suspect(path: Path, qualname: str, score: float) -> Suspect:
    return Suspect(str(path), qualname, f"prices.{qualname}", Span(str(path), 0, 0, 0), score)


def test_a_fix_shows_the_other_suspects_as_context_short_and_at_most_two(tmp_path: Path) -> None:
    path = tmp_path / "prices.py"
    long_body = "".join(f"    x{i} = {i}\n" for i in range(400))
    source = PRICES + f"\n\ndef huge():\n{long_body}    return x0\n"
    suspects = [
        suspect(path, "price", 0.9),  # the one being fixed: not context
        suspect(path, "rate", 0.71),
        suspect(path, "huge", 0.5),
        suspect(path, "Basket.total", 0.3),  # a third: left out
    ]
    related = related_sources(suspects, tmp_path, {str(path): source}.get, {"prices.price"})
    assert [r.qualname for r in related] == ["rate", "huge"]
    assert related[0].source.startswith("def rate(kind):\n")
    assert len(related[1].source) < 1600 and related[1].source.endswith("(the rest left out)")
    message = task_message(
        "prices.py", "price", module_context(source, "price"), TESTS, fix=True, related=related
    )
    text = message.content
    assert message.role == "user"
    assert "Fix the function `price` in `prices.py` so that its tests pass." in text
    assert "# prices.py: `rate` (suspiciousness 0.71)\ndef rate(kind):" in text
    assert "change only `price`" in text
    # The last line is still what to reply: the paper's turn ends with the request.
    assert text.endswith("in one ```python block; keep its signature and docstring.")
    assert text.count("```python\n") == 3  # module, tests, context: a fenced block each
    assert "def total" not in text.split("Other functions")[1]


def test_a_suspect_gone_from_its_file_is_no_context(tmp_path: Path) -> None:
    assert related_source("prices.py", "gone", PRICES, 0.5) is None
    path = tmp_path / "prices.py"
    assert related_sources([suspect(path, "rate", 0.7)], tmp_path, lambda _: None, set()) == []


def test_a_fix_of_two_functions_shows_both_in_full_and_asks_for_both() -> None:
    context = module_context(PRICES, ["rate", "Basket.total"])
    assert "return VAT if kind" in context and "return sum(price(n, k)" in context
    assert "def count(self):" in context
    assert "return len(self.items)" not in context  # another method: its signature only
    message = pair_task_message(
        [
            FunctionToFix("prices.py", "rate", context),
            FunctionToFix("prices.py", "Basket.total", context),
        ],
        TESTS,
    )
    text = message.content
    assert "the functions `rate` in `prices.py` and `Basket.total` in `prices.py`" in text
    assert text.count("The module `prices.py`") == 1  # one file: its module once
    assert text.endswith(
        "Reply with the complete functions `rate` and `total`, each whole, in ```python blocks;"
        " keep their signatures and docstrings."
    )
    answer = pair_answer_message(
        [("prices.py", "def rate(kind):\n    return 1"), ("shop.py", "def f():\n    pass")]
    )
    assert answer.role == "assistant"
    assert answer.content == (
        "```python\n# prices.py\ndef rate(kind):\n    return 1\n\n\n# shop.py\ndef f():\n    pass\n```"
    )
