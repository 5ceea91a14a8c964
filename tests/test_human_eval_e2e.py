"""HumanEval problems as a workspace: real functions, their real tests, some with a bug put in.

One save, one run of the whole suite; then every failure must be where CONTRACT.md says
("Diagnostics from tests"): in the test file on the failing assert (inside the problem's own
`check(candidate)` helper, the deepest frame of the test file), and in the source on the name
of the function at fault: the deepest frame in the source when the bug raises, the entry point
(`candidate` in `check`, resolved at run time) when it returns a wrong value. A syntax error is
one collection-error diagnostic on its line. The problems without a bug show nothing.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from lsprotocol import types

from tests.conftest import Editor
from tests.human_eval_workspace import Problem, Span, build


def _where(r: types.Range) -> Span:
    assert r.start.line == r.end.line, r
    return Span(r.start.line, r.start.character, r.end.character)


def _data(diagnostic: types.Diagnostic) -> dict[str, Any]:
    return dict(diagnostic.data or {})


def _uri(path: Path) -> str:
    return path.resolve().as_uri()


def _expected(problems: list[Problem]) -> dict[str, list[dict[str, Any]]]:
    """Per file (relative path), the diagnostics that must be there, as comparable dicts."""
    out: dict[str, list[dict[str, Any]]] = {}
    for p in problems:
        out.setdefault(f"tests/{p.test.name}", [])
        out.setdefault(f"solutions/{p.source.name}", [])
        if p.bug is None:
            continue
        if p.bug.kind == "syntax":
            out[f"solutions/{p.source.name}"].append(
                {
                    "where": p.error_line(),
                    "code": "collection-error",
                    "test": None,
                    "function": None,
                }
            )
            continue
        data = {"code": "test-failed", "test": p.test_id, "function": f"{p.module}.{p.function}"}
        out[f"tests/{p.test.name}"].append({"where": p.failing_line(), **data})
        out[f"solutions/{p.source.name}"].append({"where": p.function_name(), **data})
    return out


def _actual(editor: Editor, root: Path, files: list[str]) -> dict[str, list[dict[str, Any]]]:
    return {
        name: [
            {
                "where": _where(d.range),
                "code": d.code,
                "test": _data(d).get("test"),
                "function": _data(d).get("function"),
            }
            for d in editor.diagnostics(root / name)
        ]
        for name in files
    }


async def test_human_eval_failures_land_on_the_right_function_and_line(
    editor: Editor, tmp_path: Path
) -> None:
    root = tmp_path / "ws"
    problems = build(root)
    buggy = [p for p in problems if p.bug is not None]
    failing = [p for p in buggy if p.bug is not None and p.bug.kind != "syntax"]
    clean = [p for p in problems if p.bug is None]
    assert len(problems) == 32 and len(failing) == 20 and len(clean) == 11
    expected = _expected(problems)

    await editor.start(root)
    saved = next(p for p in problems if p.task == 13)  # a wrong value, no traceback in source
    editor.save(saved.source)
    await editor.wait_for_diagnostics(saved.test)  # the run has begun (debounced after save)
    status = await editor.wait_idle()

    # Diagnostics are flushed at most every 0.1 s: give the last batch a moment to arrive.
    with_marks = [name for name, marks in expected.items() if marks]
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and not all(
        editor.diagnostics(root / name) for name in with_marks
    ):
        await asyncio.sleep(0.05)

    # Every file at once, so a mismatch shows the whole picture.
    assert _actual(editor, root, sorted(expected)) == expected

    assert {k: v for k, v in status["tests"].items() if k != "python"} == {
        "running": False,
        "failed": len(failing),
        "passed": len(clean),
    }

    for p in failing:
        (in_test,) = editor.diagnostics(p.test)
        (in_source,) = editor.diagnostics(p.source)
        for d in (in_test, in_source):
            assert d.source == "oci-lsp"
            assert d.severity == types.DiagnosticSeverity.Error
            assert d.message.startswith(f"{p.test_id}: "), d.message
            assert _data(d)["kind"] == "test-failed"
            assert _data(d)["failure"], p.test_id
        # The two ends of one failure point at each other; the other functions its test ran
        # (helpers of the problem's module) are named after, as less suspicious (issue 15).
        assert in_test.related_information is not None
        assert in_source.related_information is not None
        (to_source, *also), (to_test, *also_here) = (
            in_test.related_information,
            in_source.related_information,
        )
        assert (to_source.location.uri, _where(to_source.location.range)) == (
            _uri(p.source),
            p.function_name(),
        )
        assert (to_test.location.uri, _where(to_test.location.range)) == (
            _uri(p.test),
            p.failing_line(),
        )
        assert also == also_here
        assert all(
            r.message.startswith("also suspicious: ") and r.location.uri == _uri(p.source)
            for r in also
        )

    (syntax,) = [p for p in buggy if p.bug is not None and p.bug.kind == "syntax"]
    (error,) = editor.diagnostics(syntax.source)
    assert error.source == "oci-lsp"
    assert _data(error)["kind"] == "collection-error"
    assert "expected ':'" in error.message, error.message
    assert not editor.diagnostics(syntax.test)
