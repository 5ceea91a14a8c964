"""Save a file, see the failing tests where they matter: the real server, a real client."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from tests.conftest import Editor, progress_messages, write_files

CALC = {
    "calc.py": """
        def add(a, b):
            return a + b + 1


        def div(a, b):
            return helper(a, b)


        def helper(a, b):
            return a / b
        """,
    "tests/test_calc.py": """
        from calc import add, div


        def test_add():
            assert add(1, 2) == 3


        def test_div():
            assert div(1, 0) == 0


        def test_ok():
            assert div(4, 2) == 2
        """,
}


def by_code(diagnostics: object, code: str) -> list[types.Diagnostic]:
    return [d for d in diagnostics if d.code == code]  # type: ignore[attr-defined]


async def test_save_shows_failures_in_test_and_at_function(editor: Editor, tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", CALC)
    await editor.start(root)
    editor.save(root / "calc.py")

    test_diags = await editor.wait_for_diagnostics(
        root / "tests/test_calc.py", lambda d: len(d) == 2
    )
    add_diag = next(d for d in test_diags if "test_add" in d.message)
    assert add_diag.message == "tests/test_calc.py::test_add: assert add(1, 2) == 3 (got 4)"
    assert add_diag.source == "oci-lsp"
    assert add_diag.code == "test-failed"
    assert add_diag.severity == types.DiagnosticSeverity.Error
    assert add_diag.range.start.line == 4  # the assert line, 0-based
    assert add_diag.range.start.character == 4
    assert add_diag.data["test"] == "tests/test_calc.py::test_add"
    assert add_diag.data["function"] == "calc.add"
    assert "assert 4 == 3" in add_diag.data["failure"]

    calc_diags = await editor.wait_for_diagnostics(root / "calc.py", lambda d: len(d) == 2)
    lines = sorted(
        (d.range.start.line, d.range.start.character, d.range.end.character) for d in calc_diags
    )
    # `add` for the wrong value (resolved from the assert), `helper` for the deepest frame.
    assert lines == [(0, 4, 7), (8, 4, 10)]
    helper_diag = next(d for d in calc_diags if d.range.start.line == 8)
    assert helper_diag.data["function"] == "calc.helper"
    assert helper_diag.message.startswith("tests/test_calc.py::test_div: ZeroDivisionError")
    related = helper_diag.related_information
    assert related and related[0].location.uri == (root / "tests/test_calc.py").resolve().as_uri()
    assert related[0].location.range.start.line == 8

    # Progress: a "Running tests" progress that began, counted tests, and ended.
    await editor.wait_until(
        lambda: progress_messages(editor.client)[-1][0] == "end", "the end of the progress"
    )
    kinds = progress_messages(editor.client)
    assert ("begin", "Running tests") in kinds
    assert any(kind == "report" and text and "/" in text for kind, text in kinds)


async def test_fixing_the_code_clears_the_diagnostics(editor: Editor, tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", CALC)
    await editor.start(root)
    editor.open(root / "calc.py")
    editor.save(root / "calc.py")
    await editor.wait_for_diagnostics(root / "calc.py", lambda d: len(d) == 2)

    editor.save(
        root / "calc.py",
        """
        def add(a, b):
            return a + b


        def div(a, b):
            return helper(a, b)


        def helper(a, b):
            return a / b if b else 0
        """,
    )
    await editor.wait_for_diagnostics(root / "calc.py", lambda d: len(d) == 0)
    await editor.wait_for_diagnostics(root / "tests/test_calc.py", lambda d: len(d) == 0)
    status = await editor.wait_idle()
    assert {k: v for k, v in status["tests"].items() if k != "python"} == {
        "running": False,
        "failed": 0,
        "passed": 3,
    }
