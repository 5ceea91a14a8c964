"""Code out of model replies, fitted into the module in place of one function."""

from __future__ import annotations

import ast
import difflib

import pytest

from oci_lsp.refine.extract import (
    ExtractionError,
    apply_candidate,
    extract_candidate,
    extract_functions,
)

MODULE = '''\
"""Calculator."""

import os


@cache
def add(a: int, b: int) -> int:  # the sum
    """Sum."""
    return a - b


def mul(a, b):
    return a * b
'''

FIXED = MODULE.replace("return a - b", "return a + b")

CALC = """\
import math


class Calc:
    def add(self, a, b):
        return a - b

    def mul(self, a, b):
        return a * b
"""


def fixed(reply: str, module: str = MODULE, qualname: str = "add") -> str:
    return apply_candidate(module, qualname, extract_candidate(reply, module, qualname))


def fence(code: str, tag: str = "python") -> str:
    return f"```{tag}\n{code}\n```"


def error(reply: str, module: str = MODULE, qualname: str = "add") -> str:
    with pytest.raises(ExtractionError) as caught:
        fixed(reply, module, qualname)
    return str(caught.value)


# --- finding the code ---------------------------------------------------------------------


def test_a_fenced_function_keeps_decorator_header_and_docstring() -> None:
    extracted = extract_candidate(
        "Sure! Here it is:\n" + fence("def add(a, b):\n    return a + b") + "\nDone.",
        MODULE,
        "add",
    )
    assert extracted.function == (
        '@cache\ndef add(a: int, b: int) -> int:  # the sum\n    """Sum."""\n    return a + b\n'
    )
    assert extracted.shape == "fenced function"
    assert apply_candidate(MODULE, "add", extracted) == FIXED


def test_the_block_that_defines_the_function_wins_over_example_and_shell() -> None:
    reply = (
        "Usage:\n"
        + fence("print(add(1, 2))")
        + "\nThe fix:\n"
        + fence("def add(a, b):\n    return a + b")
        + "\nRun:\n"
        + fence("pytest -q", "bash")
    )
    assert fixed(reply) == FIXED


def test_the_last_of_several_definitions_wins() -> None:
    reply = (
        fence("def add(a, b):\n    return a * b")
        + "\nBetter:\n"
        + fence("def add(a, b):\n    return a + b")
    )
    assert fixed(reply) == FIXED


def test_an_unclosed_last_fence() -> None:
    assert fixed("```python\ndef add(a, b):\n    return a + b\n") == FIXED


def test_an_unclosed_fence_cut_off_in_the_example_drops_the_example() -> None:
    extracted = extract_candidate(
        "```python\ndef add(a, b):\n    return a + b\n\n\nprint(add(1,", MODULE, "add"
    )
    assert apply_candidate(MODULE, "add", extracted) == FIXED
    assert extracted.shape == "fenced function (unclosed fence, trailing lines dropped)"


def test_a_fence_cut_off_inside_the_function_does_not_parse() -> None:
    assert error("```python\ndef add(a, b):\n    if a:\n        return a +") == (
        "the code does not parse: invalid syntax (line 3)"
    )


@pytest.mark.parametrize("opening", ["```py", "```python3", "```", "~~~python", "~~~"])
def test_fence_kinds(opening: str) -> None:
    closing = opening[:3]
    assert fixed(f"{opening}\ndef add(a, b):\n    return a + b\n{closing}") == FIXED


def test_a_bare_function_and_a_function_amid_prose() -> None:
    assert fixed("def add(a, b):\n    return a + b\n") == FIXED
    prose = "The bug is the sign.\n\ndef add(a, b):\n    return a + b\n\nThat fixes it.\n"
    assert fixed(prose) == FIXED


@pytest.mark.parametrize(
    "reply",
    [
        "return a + b",
        "    return a + b\n",
        fence("return a + b"),
        fence("    return a + b"),
        fence("\treturn a + b"),
    ],
)
def test_a_body_only_keeps_the_header_and_the_docstring(reply: str) -> None:
    assert fixed(reply) == FIXED


def test_a_body_of_several_statements() -> None:
    body = "if a < 0:\n    raise ValueError(a)\ntotal = a + b\nreturn total"
    assert fixed(fence(body)) == MODULE.replace(
        "    return a - b\n",
        "    if a < 0:\n        raise ValueError(a)\n    total = a + b\n    return total\n",
    )


# --- whole modules: imports and helpers ---------------------------------------------------


def test_a_whole_module_brings_only_what_the_function_needs() -> None:
    reply = fence(
        "import math\nimport os\nimport sys\n\n"
        "SCALE = 2\nUNUSED = 3\n\n"
        "def _twice(x):\n    return x * SCALE\n\n"
        "def _unused():\n    return sys.argv\n\n"
        "def mul(a, b):\n    return 0\n\n"
        "def add(a, b):\n    return _twice(math.floor(a)) + b\n\n"
        "def test_add():\n    assert add(1, 2) == 4\n\n"
        "result = add(1, 2)\nprint(result)\nassert add(0, 1) == 1\n\n"
        "if __name__ == '__main__':\n    print(add(2, 3))"
    )
    extracted = extract_candidate(reply, MODULE, "add")
    assert extracted.shape == "fenced module"
    assert extracted.imports == ("import math",)
    assert extracted.helpers == ("SCALE = 2\n", "def _twice(x):\n    return x * SCALE\n")
    assert apply_candidate(MODULE, "add", extracted) == (
        '"""Calculator."""\n\nimport os\nimport math\n\n\n'
        "SCALE = 2\n\n\ndef _twice(x):\n    return x * SCALE\n\n\n"
        '@cache\ndef add(a: int, b: int) -> int:  # the sum\n    """Sum."""\n'
        "    return _twice(math.floor(a)) + b\n\n\n"
        "def mul(a, b):\n    return a * b\n"
    )


def test_an_import_the_module_has_is_not_repeated() -> None:
    reply = fence(
        "import os\nfrom os import path, sep\n\ndef add(a, b):\n    return os.sep + path.sep"
    )
    extracted = extract_candidate(reply, MODULE, "add")
    assert extracted.imports == ("from os import path",)


def test_imports_go_after_the_docstring_when_the_module_has_none() -> None:
    module = '"""Doc."""\ndef add(a, b):\n    return a - b\n'
    reply = fence("import math\n\ndef add(a, b):\n    return math.fsum([a, b])")
    assert fixed(reply, module) == (
        '"""Doc."""\n\nimport math\n\n\ndef add(a, b):\n    return math.fsum([a, b])\n'
    )


def test_imports_and_helpers_go_below_a_header_comment() -> None:
    module = "#!/usr/bin/env python\n# Copyright.\n\ndef add(a, b):\n    return a - b\n"
    reply = fence(
        "import math\n\ndef helper(x):\n    return x\n\ndef add(a, b):\n    return helper(math.pi)"
    )
    assert fixed(reply, module) == (
        "#!/usr/bin/env python\n# Copyright.\n\nimport math\n\n\n"
        "def helper(x):\n    return x\n\n\n"
        "def add(a, b):\n    return helper(math.pi)\n"
    )


def test_a_body_leading_imports_go_to_the_module() -> None:
    assert fixed(fence("import math\nreturn math.fsum([a, b])")) == (
        MODULE.replace("import os\n", "import os\nimport math\n").replace(
            "return a - b", "return math.fsum([a, b])"
        )
    )


def test_a_helper_that_would_clobber_the_users_code_is_dropped() -> None:
    module = "def helper(x):\n    return x\n\n\ndef add(a, b):\n    return a - b\n"
    reply = fence("def helper(x):\n    return 2 * x\n\ndef add(a, b):\n    return helper(a) + b")
    extracted = extract_candidate(reply, module, "add")
    assert extracted.helpers == ()
    assert apply_candidate(module, "add", extracted) == module.replace(
        "return a - b", "return helper(a) + b"
    )


# --- methods, nesting, indentation --------------------------------------------------------


def test_a_method_given_alone() -> None:
    reply = fence("def add(self, a, b):\n    if a:\n        return a + b\n    return b")
    assert fixed(reply, CALC, "Calc.add") == CALC.replace(
        "        return a - b\n", "        if a:\n            return a + b\n        return b\n"
    )


def test_a_method_inside_its_class_with_a_helper_before_the_class() -> None:
    reply = fence(
        "class Calc:\n    def add(self, a, b):\n        return _plus(a, b)\n\n"
        "    def mul(self, a, b):\n        return 0\n\n"
        "def _plus(a, b):\n    return a + b"
    )
    extracted = extract_candidate(reply, CALC, "Calc.add")
    assert extracted.shape == "fenced method in class"
    assert apply_candidate(CALC, "Calc.add", extracted) == (
        "import math\n\n\ndef _plus(a, b):\n    return a + b\n\n\n"
        "class Calc:\n    def add(self, a, b):\n        return _plus(a, b)\n\n"
        "    def mul(self, a, b):\n        return a * b\n"
    )


@pytest.mark.parametrize(
    "reply",
    [
        fence("def add(self, a, b):\n    if a:\n        return a + b\n    return b"),
        fence("class Calc:\n  def add(self, a, b):\n    if a:\n      return a + b\n    return b"),
    ],
)
def test_a_method_in_a_tab_indented_module(reply: str) -> None:
    module = CALC.replace("    ", "\t")
    assert fixed(reply, module, "Calc.add") == module.replace(
        "\t\treturn a - b\n", "\t\tif a:\n\t\t\treturn a + b\n\t\treturn b\n"
    )


def test_a_nested_method_at_eight_spaces_from_a_tab_indented_reply() -> None:
    module = (
        "class Outer:\n    class Inner:\n        def f(self, x):\n            return x\n\n"
        "        def g(self):\n            pass\n"
    )
    reply = fence(
        "def f(self, x):\n\t'''Negate.\n\n\tReally.\n\t'''\n\tif x:\n\t\treturn -x\n\treturn x"
    )
    assert fixed(reply, module, "Outer.Inner.f") == module.replace(
        "            return x\n",
        "            '''Negate.\n\n            Really.\n            '''\n"
        "            if x:\n                return -x\n            return x\n",
        1,
    )


def test_a_two_space_module_gets_two_space_indentation() -> None:
    module = "def add(a, b):\n  if a:\n    return a - b\n  return b\n"
    reply = fence("def add(a, b):\n    if a:\n        return a + b\n    return b")
    assert fixed(reply, module) == module.replace("a - b", "a + b")


def test_a_nested_function() -> None:
    module = (
        "def outer():\n    n = 1\n\n    def inner(x):\n        return x - n\n\n    return inner\n"
    )
    assert fixed(fence("return x + n"), module, "outer.inner") == module.replace("x - n", "x + n")
    whole = fence(
        "def outer():\n    n = 1\n    def inner(x):\n        return x + n\n    return inner"
    )
    assert fixed(whole, module, "outer.inner") == module.replace("x - n", "x + n")


def test_a_one_line_target() -> None:
    module = "def add(a, b): return a - b\n"
    assert fixed("return a + b", module) == "def add(a, b):\n    return a + b\n"


# --- what the reply did not mean to change ------------------------------------------------


def test_async_stays_async_unless_the_reply_changes_it() -> None:
    module = "async def fetch(x):\n    return None\n"
    assert fixed(fence("return await load(x)"), module, "fetch") == (
        "async def fetch(x):\n    return await load(x)\n"
    )
    # `async` dropped while still awaiting: a slip, not a change.
    assert fixed(fence("def fetch(x):\n    return await load(x)"), module, "fetch") == (
        "async def fetch(x):\n    return await load(x)\n"
    )
    assert fixed(fence("def fetch(x):\n    return x"), module, "fetch") == (
        "def fetch(x):\n    return x\n"
    )
    sync = "def fetch(x):\n    return None\n"
    assert fixed(fence("async def fetch(x):\n    return x"), sync, "fetch") == (
        "async def fetch(x):\n    return x\n"
    )


def test_the_replys_decorators_replace_the_targets() -> None:
    reply = fence("@functools.lru_cache\ndef add(a, b):\n    return a + b")
    assert fixed(reply) == FIXED.replace("@cache\n", "@functools.lru_cache\n")


def test_a_changed_signature_takes_the_replys_header_and_docstring() -> None:
    reply = fence('def add(a, b, c=0):\n    """Add up."""\n    return a + b + c')
    assert fixed(reply) == MODULE.replace(
        'def add(a: int, b: int) -> int:  # the sum\n    """Sum."""\n    return a - b\n',
        'def add(a, b, c=0):\n    """Add up."""\n    return a + b + c\n',
    )


def test_annotations_the_reply_adds_or_drops_are_not_a_change() -> None:
    reply = fence('def add(a: float, b: float) -> float:\n    """New."""\n    return a + b')
    assert fixed(reply) == FIXED.replace('"""Sum."""', '"""New."""')


def test_a_changed_default_is_a_change() -> None:
    module = "def add(a, b=1):\n    return a - b\n"
    assert fixed(fence("def add(a, b=2):\n    return a + b"), module) == (
        "def add(a, b=2):\n    return a + b\n"
    )


def test_a_function_under_another_name_is_renamed() -> None:
    # Same parameters: the target's header stays; the recursive call follows the rename.
    reply = fence("def solution(a, b):\n    return solution(a - 1, b + 1) if a else b")
    extracted = extract_candidate(reply, MODULE, "add")
    assert extracted.shape == "fenced function renamed from `solution`"
    assert apply_candidate(MODULE, "add", extracted) == MODULE.replace(
        "return a - b", "return add(a - 1, b + 1) if a else b"
    )
    # Other parameter names: the reply's header, under the target's name.
    assert fixed(fence("def solution(x, y):\n    return x + y")) == MODULE.replace(
        'def add(a: int, b: int) -> int:  # the sum\n    """Sum."""\n    return a - b\n',
        'def add(x, y):\n    """Sum."""\n    return x + y\n',
    )


# --- line endings, BOM, untouched lines ---------------------------------------------------


def test_a_crlf_module_keeps_crlf() -> None:
    module = MODULE.replace("\n", "\r\n")
    reply = fence("import math\n\ndef add(a, b):\n    return math.fsum([a, b])")
    assert fixed(reply, module) == module.replace(
        "import os\r\n", "import os\r\nimport math\r\n"
    ).replace("return a - b", "return math.fsum([a, b])")


def test_a_bom_stays_first() -> None:
    module = "\ufeffdef add(a, b):\n    return a - b\n"
    reply = fence("import math\n\ndef add(a, b):\n    return math.fsum([a, b])")
    assert fixed(reply, module) == (
        "\ufeffimport math\n\n\ndef add(a, b):\n    return math.fsum([a, b])\n"
    )


@pytest.mark.parametrize(
    "reply",
    [
        fence("def add(a, b):\n    return a + b"),
        fence("import math\n\nK = 1\n\ndef add(a, b):\n    return math.fsum([a, b]) * K"),
        "return a + b",
    ],
)
def test_apply_changes_only_the_function_and_what_it_adds(reply: str) -> None:
    module = MODULE + "\n\nclass Tail:  # untouched\n    x = 'a - b'\n"
    extracted = extract_candidate(reply, module, "add")
    out = apply_candidate(module, "add", extracted)
    ast.parse(out)
    target = module.splitlines()[5:9]  # decorator .. last line of `add`
    added = {
        *extracted.function.splitlines(),
        *(line for text in extracted.imports + extracted.helpers for line in text.splitlines()),
        "",
    }
    for line in difflib.ndiff(module.splitlines(), out.splitlines()):
        if line.startswith("- "):
            assert line[2:] in target
        elif line.startswith("+ "):
            assert line[2:] in added


# --- replies that give nothing ------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "   \n\n",
        "I think the function is already correct.",
        "Sure",
        "Note: this is O(n) anyway",
        fence("pip install numpy", "bash"),
        "\0" * 10,
        "x" * 1_000_000,
        "Some prose.\n" * 20_000,
    ],
)
def test_replies_without_code(reply: str) -> None:
    assert error(reply) == "the reply has no code"


def test_code_that_does_not_parse_says_where() -> None:
    assert error(fence("def add(a, b)\n    return a + b")) == (
        "the code does not parse: expected ':' (line 1)"
    )
    assert error(fence("def add(a, b):\n    return \0")).startswith("the code does not parse: ")


def test_a_reply_that_defines_something_else() -> None:
    other = fence("def sub(a, b):\n    return a\n\ndef neg(b, c):\n    return b")
    assert error(other) == "the reply defines no `add`"
    assert error(fence("class Solution:\n    def add(self, a, b):\n        return a + b")) == (
        "the reply defines no `add`"
    )
    assert error(fence("print(add(1, 2))")) == "the reply defines no `add`"


def test_a_target_the_module_lacks() -> None:
    assert error(fence("def sub(a, b):\n    return a - b"), qualname="sub") == (
        "the module defines no `sub`"
    )


def test_a_candidate_the_compiler_rejects() -> None:
    assert error(fence("def mul2(a, b):\n    await a\n"), qualname="mul") == (
        "the module with the candidate does not compile: 'await' outside async function (line 13)"
    )


# --- several functions from one reply (a fix of two functions together) -------------------

PAIR = '''\
"""Prices."""


def rate(kind):
    """The tax rate of a kind of goods."""
    return 0.2 if kind == "food" else 0.05


def price(net, kind):
    return net * (1 + rate(kind)) + 1
'''


def test_two_functions_of_one_module_are_both_replaced_and_the_rest_kept() -> None:
    reply = (
        "Both were wrong:\n```python\ndef rate(kind):\n    return 0.05 if kind == 'food' else 0.2\n"
        "\n\ndef price(net, kind):\n    return net * (1 + rate(kind))\n```\n"
    )
    texts, found = extract_functions(reply, {"m": PAIR}, [("m", "rate"), ("m", "price")])
    assert texts["m"] == PAIR.replace(
        '0.2 if kind == "food" else 0.05', "0.05 if kind == 'food' else 0.2"
    ).replace("(1 + rate(kind)) + 1", "(1 + rate(kind))")
    assert [e.function.splitlines()[0] for e in found] == [
        "def rate(kind):",
        "def price(net, kind):",
    ]
    assert '"""The tax rate of a kind of goods."""' in texts["m"]  # the docstring kept


def test_two_functions_of_two_modules_from_two_blocks() -> None:
    shop = "from prices import rate\n\n\ndef total(items):\n    return sum(rate(k) for k in items) + 1\n"
    reply = (
        "```python\ndef total(items):\n    return sum(rate(k) for k in items)\n```\n"
        "and in prices.py:\n```python\ndef rate(kind):\n    return 0.1\n```\n"
    )
    texts, _ = extract_functions(
        reply, {"shop": shop, "prices": PAIR}, [("shop", "total"), ("prices", "rate")]
    )
    assert texts["shop"] == shop.replace(") + 1\n", ")\n")
    assert (
        'def rate(kind):\n    """The tax rate of a kind of goods."""\n    return 0.1\n'
        in texts["prices"]
    )
    assert "return net * (1 + rate(kind)) + 1" in texts["prices"]  # price untouched
    assert "def total" not in texts["prices"] and "def rate" not in texts["shop"]


@pytest.mark.parametrize(
    "reply",
    [
        "```python\ndef price(net, kind):\n    return net\n```",  # rate left out
        "```python\ndef tax(kind):\n    return 0.1\n\n\ndef price(net, kind):\n    return net\n```",
        "```python\nreturn 0.1\n```",  # a body: for which of them?
    ],
)
def test_a_reply_that_does_not_define_every_function_by_name_is_refused(reply: str) -> None:
    with pytest.raises(ExtractionError, match="defines no `rate`"):
        extract_functions(reply, {"m": PAIR}, [("m", "rate"), ("m", "price")])
