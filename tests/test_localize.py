"""The ranking of testing/localize.py on hand-made spectra: which function the fault is in."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pytest

from oci_lsp.code.functions import find_function, line_owners
from oci_lsp.testing.failures import Suspect
from oci_lsp.testing.localize import dstar, ochiai, rank
from oci_lsp.testing.results import Frame, FunctionRef, Spectrum, TestReport
from tests.conftest import write_files
from tests.test_failures import locator

SHOP = {
    "shop/__init__.py": "",
    "shop/order.py": """
        RATE = 2


        class Order:
            def __init__(self, price, qty):
                self._price = price
                self.qty = qty

            @property
            def price(self):
                if self._price > 100:
                    return None
                return self._price

            def total(self):
                return self.price * self.qty

            def label(self):
                return "order of " + str(self.price)

            def discounted(self, percent):
                return self.total() - self.price * percent // 100


        def parse(text):
            def digits(part):
                return int(part.strip())

            return [digits(p) for p in text.split(",")]


        def fact(n):
            if n <= 1:
                return 1
            return n * fact(n - 1)
        """,
    "tests/__init__.py": "",
    "tests/helpers.py": """
        def make(price):
            from shop.order import Order
            return Order(price, 2)
        """,
    "tests/test_order.py": """
        def test_placeholder():
            pass
        """,
}


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return write_files(tmp_path, SHOP).resolve()


def lines_of(root: Path, qualname: str, *, only: Iterable[str] = ()) -> dict[str, frozenset[int]]:
    """The lines of a function in shop/order.py (all of them, or those with the texts)."""
    path = root / "shop/order.py"
    source = path.read_text()
    found = find_function(source, qualname)
    assert found is not None
    wanted = list(only)
    texts = source.splitlines()
    chosen = {
        n
        for n in range(found.def_line, found.end_line + 1)
        if not wanted or any(w in texts[n - 1] for w in wanted)
    }
    return {str(path): frozenset(chosen)}


def spectrum(*parts: dict[str, frozenset[int]]) -> Spectrum:
    merged: dict[str, frozenset[int]] = {}
    for part in parts:
        for path, lines in part.items():
            merged[path] = merged.get(path, frozenset()) | lines
    return merged


def failed(
    root: Path, name: str, *frames: tuple[str, str], called: str | None = None
) -> TestReport:
    """A failed test of tests/test_order.py whose traceback runs through the functions named
    in `frames` (qualname, a text on the frame's line) of shop/order.py."""
    path = root / "shop/order.py"
    source = path.read_text().splitlines()
    test_path = str(root / "tests/test_order.py")
    chain = [Frame(test_path, 2, name)]
    for qualname, text in frames:
        line = next(i for i, t in enumerate(source, 1) if text in t)
        chain.append(Frame(str(path), line, qualname.split(".")[-1]))
    ref = None
    if called is not None:
        found = find_function(path.read_text(), called)
        assert found is not None
        ref = FunctionRef(str(path), found.def_line, called, "shop.order")
    return TestReport(
        f"tests/test_order.py::{name}",
        "failed",
        path=test_path,
        line=1,
        message="boom",
        frames=chain,
        called=ref,
    )


def names(suspects: list[Suspect]) -> list[str]:
    return [s.qualname for s in suspects]


def test_a_property_used_by_the_failing_callers_outranks_the_callers_that_raised(
    shop: Path,
) -> None:
    # Order.price returns None above 100: total, label's test and discounted fail through it,
    # each raising in its own caller. Passing tests use price's other branch.
    price_none = lines_of(shop, "Order.price", only=["def price", "if self", "return None"])
    price_ok = lines_of(shop, "Order.price", only=["def price", "if self", "return self._price"])
    init = lines_of(shop, "Order.__init__")
    spectra = {
        "t::total_big": spectrum(init, price_none, lines_of(shop, "Order.total")),
        "t::discounted_big": spectrum(
            init, price_none, lines_of(shop, "Order.discounted"), lines_of(shop, "Order.total")
        ),
        "t::total_small": spectrum(init, price_ok, lines_of(shop, "Order.total")),
        "t::label_small": spectrum(init, price_ok, lines_of(shop, "Order.label")),
    }
    failing = [
        failed(shop, "total_big", ("Order.total", "return self.price * self.qty")),
        failed(shop, "discounted_big", ("Order.discounted", "return self.total() - ")),
    ]
    failing[0] = _renamed(failing[0], "t::total_big")
    failing[1] = _renamed(failing[1], "t::discounted_big")
    ranked = rank(failing, spectra, ["t::total_small", "t::label_small"], locator(shop))
    assert names(ranked["t::total_big"])[0] == "Order.price"
    assert names(ranked["t::discounted_big"])[0] == "Order.price"
    top = ranked["t::total_big"][0]
    assert top.score == 1.0
    assert top.dotted == "shop.order.Order.price"
    assert top.why == "line 12 ran in 2 of 2 failing tests, 0 of 2 passing"
    # Its span is the property's name in its `def`.
    assert (top.span.line, top.span.start, top.span.end) == (9, 8, 13)
    # Each failing test's suspects are only what it ran: label never ran in them.
    assert "Order.label" not in names(ranked["t::total_big"])
    assert "Order.discounted" not in names(ranked["t::total_big"])
    # Then total (in both failing tests, one passing), the caller that raised, __init__
    # (in every test).
    assert names(ranked["t::discounted_big"]) == [
        "Order.price",
        "Order.total",
        "Order.discounted",
        "Order.__init__",
    ]


def _renamed(report: TestReport, test_id: str) -> TestReport:
    report.test_id = test_id
    return report


def test_the_frame_that_raised_wins_a_tie_the_tests_cannot_break(shop: Path) -> None:
    # One failing test runs total and price, and nothing else runs them: their spectra tie.
    spectra = {
        "t::one": spectrum(lines_of(shop, "Order.total"), lines_of(shop, "Order.price")),
        "t::other": spectrum(lines_of(shop, "parse")),
    }
    report = _renamed(failed(shop, "one", ("Order.total", "return self.price")), "t::one")
    ranked = rank([report], spectra, ["t::other"], locator(shop))["t::one"]
    assert names(ranked) == ["Order.total", "Order.price"]
    assert ranked[0].score == ranked[1].score == 1.0
    assert ranked[0].why.endswith("; raised the error")


def test_in_a_tie_the_deeper_frame_of_the_chain_comes_first(shop: Path) -> None:
    spectra = {
        "t::one": spectrum(lines_of(shop, "Order.discounted"), lines_of(shop, "Order.total"))
    }
    report = _renamed(
        failed(
            shop,
            "one",
            ("Order.discounted", "return self.total() - "),
            ("Order.total", "return self.price * self.qty"),
        ),
        "t::one",
    )
    ranked = rank([report], spectra, [], locator(shop))["t::one"]
    assert names(ranked) == ["Order.total", "Order.discounted"]
    assert ranked[1].why.endswith("; in the failing traceback")


def test_in_a_tie_fewer_passing_tests_come_first(shop: Path) -> None:
    # Both have a line only the failing test ran; label also runs in a passing test.
    price_none = lines_of(shop, "Order.price", only=["return None"])
    label = lines_of(shop, "Order.label")
    spectra = {
        "t::one": spectrum(price_none, label),
        "t::pass": spectrum(lines_of(shop, "Order.label", only=["def label"])),
    }
    report = _renamed(failed(shop, "one"), "t::one")
    ranked = rank([report], spectra, ["t::pass"], locator(shop))["t::one"]
    assert names(ranked) == ["Order.price", "Order.label"]
    assert ranked[0].score == ranked[1].score == 1.0


def test_the_assert_s_call_loses_to_a_helper_only_the_failing_test_ran(shop: Path) -> None:
    # A wrong value computed before the assert: parse's digits ran only in the failing test,
    # total (called in the assert) also in passing ones.
    spectra = {
        "t::one": spectrum(lines_of(shop, "parse"), lines_of(shop, "Order.total")),
        "t::pass": spectrum(lines_of(shop, "Order.total")),
    }
    report = _renamed(failed(shop, "one", called="Order.total"), "t::one")
    ranked = rank([report], spectra, ["t::pass"], locator(shop))["t::one"]
    assert names(ranked)[:2] == ["parse", "parse.digits"]
    total = ranked[2]
    assert total.qualname == "Order.total"
    assert total.why.endswith("; called in the failing assert")
    # Being called in the assert adds nothing: the caller of a hidden fault always is.
    assert total.score == 0.707


def test_a_nested_function_owns_its_lines(shop: Path) -> None:
    digits_only = lines_of(shop, "parse.digits", only=["return int"])
    spectra = {
        "t::one": spectrum(lines_of(shop, "parse")),
        "t::pass": spectrum(lines_of(shop, "parse", only=["def parse", "return [digits"])),
    }
    assert (
        digits_only[str(shop / "shop/order.py")] <= spectra["t::one"][str(shop / "shop/order.py")]
    )
    report = _renamed(failed(shop, "one"), "t::one")
    ranked = rank([report], spectra, ["t::pass"], locator(shop))["t::one"]
    assert names(ranked) == ["parse.digits", "parse"]
    assert ranked[0].dotted == "shop.order.parse.digits"


def test_a_recursion_counts_once_and_is_the_suspect(shop: Path) -> None:
    spectra = {
        "t::one": spectrum(lines_of(shop, "fact"), lines_of(shop, "Order.total")),
        "t::pass": spectrum(lines_of(shop, "Order.total")),
    }
    frames = [("fact", "return n * fact")] * 5 + [("fact", "return 1")]
    report = _renamed(failed(shop, "one", *frames), "t::one")
    ranked = rank([report], spectra, ["t::pass"], locator(shop))["t::one"]
    assert names(ranked) == ["fact", "Order.total"]
    assert ranked[0].why == "line 32 ran in 1 of 1 failing test, 0 of 1 passing; raised the error"


def test_test_files_helpers_module_and_class_lines_are_never_suspects(
    shop: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("site") / "lib.py"
    outside.write_text("def lib():\n    return 1\n")
    module_lines = {str(shop / "shop/order.py"): frozenset({1})}  # RATE = 2
    class_line = {str(shop / "shop/order.py"): frozenset({4})}  # class Order:
    spectra = {
        "t::one": spectrum(
            module_lines,
            class_line,
            {str(shop / "tests/helpers.py"): frozenset({1, 2, 3})},
            {str(shop / "tests/test_order.py"): frozenset({1, 2})},
            {str(outside): frozenset({1, 2})},
            lines_of(shop, "Order.total"),
        )
    }
    report = _renamed(failed(shop, "one"), "t::one")
    ranked = rank([report], spectra, [], locator(shop))["t::one"]
    assert names(ranked) == ["Order.total"]


def test_a_failing_test_without_a_spectrum_has_no_suspects(shop: Path) -> None:
    spectra = {"t::one": spectrum(lines_of(shop, "Order.total"))}
    reports = [_renamed(failed(shop, "one"), "t::one"), _renamed(failed(shop, "two"), "t::two")]
    ranked = rank(reports, spectra, [], locator(shop))
    assert set(ranked) == {"t::one"}
    assert rank(reports[1:], spectra, [], locator(shop)) == {}


def test_limit_cuts_each_test_s_list(shop: Path) -> None:
    spectra = {
        "t::one": spectrum(*(lines_of(shop, q) for q in ("Order.total", "Order.label", "fact")))
    }
    report = _renamed(failed(shop, "one"), "t::one")
    assert len(rank([report], spectra, [], locator(shop), limit=2)["t::one"]) == 2


def test_dstar_orders_as_it_should_and_reads_on_0_to_1(shop: Path) -> None:
    assert dstar(2, 0, 2) == 1.0
    assert dstar(0, 3, 2) == 0.0
    assert dstar(1, 1, 1) == 0.5  # d = 1
    assert dstar(2, 1, 2) > dstar(2, 3, 2) > dstar(1, 3, 2) > 0
    assert ochiai(2, 2, 2) == pytest.approx(2 / (2 * 4) ** 0.5)
    # A line in 1 of 2 failing and no passing: DStar (d = 1) below Ochiai's 1/sqrt(2).
    spectra = {
        "t::one": spectrum(lines_of(shop, "Order.total"), lines_of(shop, "fact")),
        "t::two": spectrum(lines_of(shop, "fact")),
        "t::pass": spectrum(lines_of(shop, "fact", only=["def fact", "if n"])),
    }
    reports = [_renamed(failed(shop, "one"), "t::one"), _renamed(failed(shop, "two"), "t::two")]
    ranked = rank(reports, spectra, ["t::pass"], locator(shop), formula="dstar")["t::one"]
    assert names(ranked) == ["fact", "Order.total"]
    assert ranked[1].score == 0.5
    ochiai_ranked = rank(reports, spectra, ["t::pass"], locator(shop))["t::one"]
    assert ochiai_ranked[1].score == round(1 / 2**0.5, 3)


def test_line_owners_innermost_def_decorators_and_class_bodies() -> None:
    source = (
        "X = 1\n"  # 1
        "class A:\n"  # 2
        "    y = 2\n"  # 3
        "    @property\n"  # 4
        "    def p(self):\n"  # 5
        "        def inner():\n"  # 6
        "            return 1\n"  # 7
        "        class B:\n"  # 8
        "            z = 3\n"  # 9
        "        return inner()\n"  # 10
    )
    owners = {line: loc.qualname for line, loc in line_owners(source).items()}
    assert owners == {4: "A.p", 5: "A.p", 6: "A.p.inner", 7: "A.p.inner", 10: "A.p"}


def test_paths_are_real_paths(shop: Path) -> None:
    spectra = {"t::one": spectrum(lines_of(shop, "Order.total"))}
    ranked = rank([_renamed(failed(shop, "one"), "t::one")], spectra, [], locator(shop))
    assert ranked["t::one"][0].path == os.path.realpath(shop / "shop/order.py")


def test_a_doctest_s_own_module_holds_suspects(shop: Path) -> None:
    # A doctest's file is the module it documents, not a test file.
    path = str(shop / "shop/order.py")
    found = find_function((shop / "shop/order.py").read_text(), "parse")
    assert found is not None
    report = TestReport(
        "shop/order.py::shop.order.parse",
        "failed",
        path=path,
        line=found.def_line + 1,
        doctest=True,
        called=FunctionRef(path, found.def_line, "parse", "shop.order"),
    )
    spectra = {report.test_id: spectrum(lines_of(shop, "parse"))}
    ranked = rank([report], spectra, [], locator(shop))[report.test_id]
    # They tie; the documented function is the caller of its nested one, which goes first.
    assert names(ranked) == ["parse.digits", "parse"]
