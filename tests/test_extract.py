"""Code out of model replies, fitted into the module in place of the target."""

from __future__ import annotations

import pytest

from oci_lsp.refine.extract import ExtractionError, apply_candidate, extract_candidate

MODULE = '''\
"""Calculator."""
import math


@cache
def add(a: int, b: int) -> int:
    """Sum."""
    return a - b


def mul(a, b):
    return a * b
'''


def fixed(reply: str, module: str = MODULE, qualname: str = "add") -> str:
    return apply_candidate(module, qualname, extract_candidate(reply, module, qualname))


def test_a_fenced_function_keeps_decorator_header_and_docstring() -> None:
    out = fixed("Sure!\n```python\ndef add(a, b):\n    return a + b\n```\nDone.")
    assert out == MODULE.replace("return a - b", "return a + b")


def test_the_block_that_defines_the_function_wins_over_examples_and_shell() -> None:
    reply = (
        "```python\nprint(add(1, 2))\n```\n```python\ndef add(a, b):\n    return a + b\n```\n"
        "```bash\npytest -q\n```"
    )
    assert "return a + b" in fixed(reply)


def test_an_unclosed_fence_and_tilde_fences() -> None:
    assert "return a + b" in fixed("```py\ndef add(a, b):\n    return a + b\n")
    assert "return a + b" in fixed("~~~python\ndef add(a, b):\n    return a + b\n~~~")


@pytest.mark.parametrize(
    "body", ["return a + b", "    return a + b", "total = a + b\nreturn total"]
)
def test_a_body_only_reply(body: str) -> None:
    out = fixed(f"```python\n{body}\n```")
    assert '    """Sum."""\n' in out and "a - b" not in out
    assert out.splitlines()[5] == "def add(a: int, b: int) -> int:"


def test_a_whole_module_adds_what_the_function_needs_only() -> None:
    reply = (
        "```python\nimport math\nimport operator\n\nUNUSED = 1\n\n"
        "def helper(x):\n    return operator.add(*x)\n\n"
        "def mul(a, b):\n    return 0\n\n"
        "def add(a, b):\n    return helper((a, b))\n\n"
        "def test_add():\n    assert add(1, 2) == 3\n\n"
        "if __name__ == '__main__':\n    print(add(1, 2))\n```"
    )
    out = fixed(reply)
    assert out.count("import math") == 1
    assert "import math\nimport operator\n" in out
    assert "def helper(x):" in out and out.index("def helper") < out.index("def add")
    assert "UNUSED" not in out and "test_add" not in out and "__main__" not in out
    assert "return a * b" in out  # the user's mul is never clobbered


def test_code_inside_prose_without_fences() -> None:
    reply = "The bug is the sign.\n\ndef add(a, b):\n    return a + b\n\nThat should fix it."
    assert "return a + b" in fixed(reply)


def test_a_changed_signature_is_taken_and_a_new_docstring_too() -> None:
    out = fixed('```python\ndef add(a, b, c=0):\n    """Add up."""\n    return a + b + c\n```')
    assert "def add(a, b, c=0):" in out and '"""Add up."""' in out and "@cache" in out


def test_a_function_under_another_name_is_renamed() -> None:
    # Other parameter names: the reply's header, under the target's name.
    assert '@cache\ndef add(x, y):\n    """Sum."""\n    return x + y\n' in fixed(
        "```python\ndef solution(x, y):\n    return x + y\n```"
    )


def test_a_method_alone_or_in_its_class_with_tabs() -> None:
    module = "class Calc:\n\tdef add(self, a, b):\n\t\treturn a - b\n\n\tdef mul(self, a, b):\n\t\treturn a * b\n"
    alone = fixed(
        "```python\ndef add(self, a, b):\n    if a:\n        return a + b\n    return b\n```",
        module,
        "Calc.add",
    )
    assert alone == module.replace(
        "\t\treturn a - b\n", "\t\tif a:\n\t\t\treturn a + b\n\t\treturn b\n"
    )
    inside = fixed(
        "```python\nclass Calc:\n    def add(self, a, b):\n        return a + b\n```",
        module,
        "Calc.add",
    )
    assert inside == module.replace("a - b", "a + b")


def test_async_stays_async() -> None:
    module = "async def fetch(x):\n    return None\n"
    assert (
        fixed("```python\nasync def fetch(x):\n    return x\n```", module, "fetch")
        == "async def fetch(x):\n    return x\n"
    )


def test_crlf_modules_keep_crlf() -> None:
    module = MODULE.replace("\n", "\r\n")
    out = fixed("```python\ndef add(a, b):\n    return a + b\n```", module)
    assert out == module.replace("return a - b", "return a + b")


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        ("I cannot help with that.", "the reply has no code"),
        ("", "the reply has no code"),
        ("```python\ndef add(a, b)\n    return a + b\n```", "does not parse"),
        (
            "```python\ndef other(a):\n    return a\n\ndef more(b):\n    return b\n```",
            "defines no `add`",
        ),
        ("```python\n\0\n```", "does not parse"),
    ],
)
def test_unusable_replies_say_why(reply: str, said: str) -> None:
    with pytest.raises(ExtractionError, match=said):
        extract_candidate(reply, MODULE, "add")
