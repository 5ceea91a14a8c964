"""Findings as the feedback turn prints them, Python's own syntax check (in this interpreter
and in another version's), and other servers' diagnostics read as findings."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from oci_lsp.tools import syntax
from oci_lsp.tools.findings import Finding, render, render_all
from oci_lsp.tools.lsp_source import finding_from_diagnostic, verifying_tool
from oci_lsp.tools.syntax import syntax_error, syntax_error_in
from tests.venvs import pyenv_python

ROOT = Path("/w")
CALC = ROOT / "calc.py"


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


SOURCE = src(
    """
    def name(x: int) -> str:
        y = 3
        return len(str(x))
    """
)


# -- render ------------------------------------------------------------------------------------


def test_a_mypy_finding_reads_as_ruffs_full_output_with_the_tool_and_the_offending_line() -> None:
    finding = Finding(
        tool="mypy",
        code="return-value",
        message='Incompatible return value type (got "int", expected "str")',
        path=CALC,
        line=3,
        column=12,
        end_line=3,
        end_column=23,
    )
    assert render(finding, ROOT, SOURCE) == src(
        """
        calc.py:3:12: mypy [return-value] Incompatible return value type (got "int", expected "str")
          |
        3 |     return len(str(x))
          |            ^^^^^^^^^^^
          |
        """
    ).rstrip("\n")


def test_ruff_and_pyright_codes_are_bare_and_detail_lines_follow_the_message() -> None:
    ruff = Finding("ruff", "F841", "Local variable `y` is assigned to but never used", CALC, 2, 5)
    pyright = Finding(
        "pyright",
        "reportReturnType",
        'Type "int" is not assignable to return type "str"',
        CALC,
        3,
        12,
        detail='  "int" is not assignable to "str"',
    )
    assert render(ruff, ROOT, None) == (
        "calc.py:2:5: ruff F841 Local variable `y` is assigned to but never used"
    )
    lines = render(pyright, ROOT, SOURCE).splitlines()
    assert (
        lines[0]
        == 'calc.py:3:12: pyright reportReturnType Type "int" is not assignable to return type "str"'
    )
    assert lines[1] == '    "int" is not assignable to "str"'
    assert lines[3] == "3 |     return len(str(x))"


def test_a_range_that_goes_on_below_is_marked_to_the_end_of_its_first_line() -> None:
    finding = Finding("pyright", None, '"(" was not closed', CALC, 3, 15, end_line=5, end_column=1)
    assert render(finding, ROOT, SOURCE).splitlines()[-2] == "  |               ^^^^^^^^"


def test_paths_outside_the_root_stay_absolute_and_a_line_past_the_end_shows_no_text() -> None:
    finding = Finding(
        "python", "syntax-error", "SyntaxError: unexpected EOF", Path("/elsewhere/m.py"), 9, 1
    )
    assert (
        render(finding, ROOT, SOURCE)
        == "/elsewhere/m.py:9:1: python syntax-error SyntaxError: unexpected EOF"
    )


def test_carets_keep_the_lines_tabs_so_they_stay_under_the_flagged_text() -> None:
    source = "def f():\n\treturn  x\n"
    finding = Finding("ruff", "F821", "Undefined name `x`", CALC, 2, 10, end_line=2, end_column=11)
    assert render(finding, ROOT, source).splitlines()[-2] == "  | \t        ^"


def test_render_all_separates_findings_with_a_blank_line_and_uses_each_files_text() -> None:
    other = ROOT / "pkg" / "util.py"
    findings = [
        Finding("ruff", "F841", "Local variable `y` is assigned to but never used", CALC, 2, 5),
        Finding("ruff", "F821", "Undefined name `z`", other, 1, 7),
    ]
    text = render_all(findings, ROOT, {CALC: SOURCE, other: "print(z)\n"})
    first, second = text.split("\n\n")
    assert first.splitlines()[2] == "2 |     y = 3"
    assert second.splitlines()[0] == "pkg/util.py:1:7: ruff F821 Undefined name `z`"
    assert second.splitlines()[2] == "1 | print(z)"


# -- syntax ------------------------------------------------------------------------------------


def test_an_unclosed_bracket_is_found_at_the_bracket() -> None:
    text = src(
        """
        def f(x):
            return (x +

        def g():
            pass
        """
    )
    found = syntax_error(CALC, text)
    assert found is not None
    assert (found.tool, found.code) == ("python", "syntax-error")
    assert found.message == "SyntaxError: '(' was never closed"
    assert (found.line, found.column) == (2, 12)
    assert render(found, ROOT, text).splitlines()[0] == (
        "calc.py:2:12: python syntax-error SyntaxError: '(' was never closed"
    )


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("def f():\nreturn 1\n", "IndentationError: expected an indented block", 2),
        ("if x:\n\ty = 1\n        z = 2\n", "TabError: inconsistent use of tabs and spaces", 3),
        ("def f():\n    pass\nreturn 5\n", "SyntaxError: 'return' outside function", 3),
        ("x = 1\ny = 2\0\n", "SyntaxError: source code cannot contain null bytes", 2),
    ],
)
def test_indentation_tabs_the_compilers_own_checks_and_null_bytes_are_syntax_errors(
    text: str, message: str, line: int
) -> None:
    found = syntax_error(CALC, text)
    assert found is not None
    assert found.message.startswith(message)
    assert found.line == line


def test_a_module_that_compiles_has_none_even_with_a_bom_or_an_invalid_escape() -> None:
    assert syntax_error(CALC, '\ufeffpattern = "\\d+"\n') is None


def test_a_null_byte_is_shown_as_a_visible_character_under_its_caret() -> None:
    text = "x = 1\0\n"
    found = syntax_error(CALC, text)
    assert found is not None
    assert render(found, ROOT, text).splitlines()[2:4] == ["1 | x = 1\u2400", "  |      ^"]


async def test_another_pythons_syntax_is_judged_by_that_python() -> None:
    """A 3.12-only statement is no error in 3.12 whatever our version is, and `except*` is
    an error in 3.10."""
    py310, py312 = pyenv_python("3.10.13"), pyenv_python("3.12.1")
    alias = "type Number = int | float\n"
    star = "try:\n    pass\nexcept* ValueError:\n    pass\n"
    assert await syntax_error_in(py312, CALC, alias) is None
    in_310 = await syntax_error_in(py310, CALC, alias)
    assert in_310 is not None and in_310.line == 1
    in_310 = await syntax_error_in(py310, CALC, star)
    assert in_310 is not None and (in_310.tool, in_310.line) == ("python", 3)
    ours = await syntax_error_in(sys.executable, CALC, alias)
    assert (ours is None) == (sys.version_info >= (3, 12))


async def test_an_interpreter_of_our_version_is_asked_once_then_checked_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrapper = tmp_path / "python"  # another path to an interpreter of our own version
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    first = await syntax_error_in(str(wrapper), CALC, "def f(:\n")
    assert first is not None and first.line == 1

    async def must_not_ask(*args: object) -> None:
        raise AssertionError("asked the interpreter again")

    monkeypatch.setattr(syntax, "_ask", must_not_ask)
    again = await syntax_error_in(str(wrapper), CALC, "def f(:\n")
    assert again == first


async def test_an_interpreter_that_cannot_run_falls_back_to_ours(tmp_path: Path) -> None:
    found = await syntax_error_in(str(tmp_path / "no-python"), CALC, "def f(:\n")
    assert found is not None and found.message.startswith("SyntaxError")


# -- other servers' diagnostics ------------------------------------------------------------------


def test_pylsp_mypys_code_at_the_end_of_the_message_becomes_the_code() -> None:
    found = finding_from_diagnostic(
        "mypy",
        None,
        'Incompatible return value type (got "int", expected "str")  [return-value]',
        CALC,
        2,
        11,
        2,
        22,
        1,
    )
    assert (found.tool, found.code) == ("mypy", "return-value")
    assert found.message == 'Incompatible return value type (got "int", expected "str")'
    assert (found.line, found.column, found.end_line, found.end_column) == (3, 12, 3, 23)
    assert render(found, ROOT, SOURCE).splitlines()[0] == (
        'calc.py:3:12: mypy [return-value] Incompatible return value type (got "int", expected "str")'
    )


@pytest.mark.parametrize(
    ("source", "tool"),
    [
        ("Ruff", "ruff"),
        ("ruff", "ruff"),
        ("Mypy", "mypy"),
        ("dmypy", "mypy"),
        ("Pylance", "pyright"),
        ("Pyright", "pyright"),
        ("basedpyright", "pyright"),
        ("pyflakes", "pyflakes"),
        ("flake8", "flake8"),
    ],
)
def test_sources_map_to_the_tool_that_can_verify_a_fix(source: str, tool: str) -> None:
    found = finding_from_diagnostic(source, "X1", "message", CALC, 0, 0, 0, 1, 2)
    assert found.tool == tool
    assert found.severity == "warning"
    assert verifying_tool(found.tool) == (tool if tool in ("ruff", "mypy", "pyright") else None)


def test_a_multi_line_message_keeps_its_first_line_and_an_int_code_becomes_text() -> None:
    found = finding_from_diagnostic(
        "Pylance",
        7,
        'Type "int" is not assignable to return type "str"\n  "int" is not assignable to "str"',
        CALC,
        2,
        11,
        2,
        22,
        None,
    )
    assert found.message == 'Type "int" is not assignable to return type "str"'
    assert found.detail == '  "int" is not assignable to "str"'
    assert (found.code, found.severity) == ("7", "error")
    assert verifying_tool("python") is None
