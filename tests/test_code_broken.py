"""A module with a syntax error made to parse for the fix of the function that breaks it
(code/broken.py): only that function's lines change, whatever the error left open."""

from __future__ import annotations

import ast

from oci_lsp.code.broken import function_span, stand_in


def test_an_open_bracket_does_not_carry_the_function_to_the_end_of_the_file() -> None:
    source = 'def heading(title):\n    return title.upper(\n\n\nFOOTER = "end"\n'
    assert function_span(source, "heading") == (1, 2)
    assert stand_in(source, "heading") == 'def heading(title):\n    pass\n\n\nFOOTER = "end"\n'


def test_a_method_keeps_its_header_and_its_class_keeps_the_other_methods() -> None:
    source = (
        "class A:\n"
        "    def f(self, x):  # the one\n"
        "        return [x\n"
        "\n"
        "    def g(self):\n"
        "        return 1\n"
    )
    fixed = stand_in(source, "A.f")
    assert fixed == (
        "class A:\n"
        "    def f(self, x):  # the one\n"
        "        pass\n"
        "\n"
        "    def g(self):\n"
        "        return 1\n"
    )


def test_a_broken_header_gets_a_neutral_one_and_a_long_header_is_one_function() -> None:
    long = "def f(\n    a,\n):\n    return (a\n\ny = 2\n"
    assert function_span(long, "f") == (1, 4)
    fixed = stand_in(long, "f")
    assert fixed is not None and fixed.endswith("\n\ny = 2\n")
    ast.parse(fixed)
    broken_header = "async def g(:\n    return 1\n\nz = 3\n"
    assert stand_in(broken_header, "g") == "async def g(*args, **kwargs):\n    pass\n\nz = 3\n"


def test_an_error_outside_the_function_is_not_hidden() -> None:
    # The error is in `x = (`: replacing f cannot make the module parse.
    assert stand_in("def f():\n    return 1\n\nx = (\n", "f") is None
    assert stand_in("def f():\n    return 1\n", "missing") is None


def test_windows_line_breaks_stay() -> None:
    source = "def f():\r\n    return (1\r\n\r\nY = 1\r\n"
    assert stand_in(source, "f") == "def f():\r\n    pass\r\n\r\nY = 1\r\n"
