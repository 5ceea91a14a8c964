"""Quick-fixes for other tools' diagnostics end to end (issue 16): the server as a subprocess, a
real client that hands it another server's diagnostics (as editors do in
textDocument/codeAction), a scripted model server on 127.0.0.1 that answers right only when its
feedback turn carries the tool's own words, and real ruff and mypy verifying each candidate.

The defects here are ones the tests cannot see: the tests pass before and after, and only the
tool's verdict shows whether the fix worked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types

from tests.conftest import Editor, progress_messages, write_files
from tests.openai_server import ScriptedOpenAIServer
from tests.test_code_actions_e2e import run

LABELS = {
    "labels.py": '''\
def label(n: int) -> str:
    """The label of n, for the report."""
    return n


def total(prices: list[float], tax: float) -> float:
    subtotal = sum(prices)
    with_tax = subtotal * (1 + tax)
    return subtotal


TITLE = "Report"
''',
    # Tests that cannot see either defect: a label is truthy, and no test has a tax.
    "tests/test_labels.py": """\
from labels import label, total


def test_label():
    assert label(3)


def test_total():
    assert total([10.0, 5.0], 0.0) == 15.0
""",
}
RETURN_LINE = 2  # 0-based: `return n`
WITH_TAX_LINE = 7  # 0-based: `with_tax = ...`
RIGHT_LABEL = '```python\ndef label(n: int) -> str:\n    """The label of n, for the report."""\n    return str(n)\n```'
# Still an int on one path: mypy says so; the tests cannot.
HALF_LABEL = '```python\ndef label(n: int) -> str:\n    """The label of n, for the report."""\n    return str(n) if n else n\n```'
SILENCED_LABEL = '```python\ndef label(n: int) -> str:\n    """The label of n, for the report."""\n    return n  # type: ignore\n```'
RIGHT_TOTAL = "```python\ndef total(prices: list[float], tax: float) -> float:\n    subtotal = sum(prices)\n    with_tax = subtotal * (1 + tax)\n    return with_tax\n```"
MYPY_SAYS = "Incompatible return value type"


def mypy_diagnostic() -> types.Diagnostic:
    """What pylsp-mypy or the mypy extension publishes for `return n`."""
    return types.Diagnostic(
        range=types.Range(types.Position(RETURN_LINE, 11), types.Position(RETURN_LINE, 12)),
        message='Incompatible return value type (got "int", expected "str")',
        severity=types.DiagnosticSeverity.Error,
        source="mypy",
        code="return-value",
    )


def ruff_diagnostic(severity: types.DiagnosticSeverity) -> types.Diagnostic:
    """What ruff's server publishes for the unused variable (Warning, tagged unnecessary)."""
    return types.Diagnostic(
        range=types.Range(types.Position(WITH_TAX_LINE, 4), types.Position(WITH_TAX_LINE, 12)),
        message="Local variable `with_tax` is assigned to but never used",
        severity=severity,
        source="Ruff",
        code="F841",
        tags=[types.DiagnosticTag.Unnecessary],
    )


def settings(server: ScriptedOpenAIServer, **extra: Any) -> dict[str, Any]:
    return {
        "backend": "openai",
        "openai": {"baseUrl": server.base_url, "model": "test-model"},
        "refine": {"candidates": 1, "maxRounds": 3},
        "generation": {"maxNewTokens": 200},
        **extra,
    }


def last_user_turn(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"])


def answering(
    right: str, wrong: str, when: Callable[[str], bool]
) -> Callable[[dict[str, Any]], str]:
    """The right reply only when the last user turn satisfies `when`."""
    return lambda body: right if when(last_user_turn(body)) else wrong


async def start(editor: Editor, root: Path, options: dict[str, Any]) -> None:
    await editor.start(root, init_options=options)
    editor.open(root / "labels.py")
    await editor.wait_idle()


def titles(actions: list[types.CodeAction]) -> list[str]:
    return [a.title for a in actions]


async def test_a_mypy_finding_is_fixed_when_mypy_no_longer_reports_it(
    editor: Editor, tmp_path: Path
) -> None:
    root = write_files(tmp_path / "ws", LABELS)
    # The first answer still returns an int on one path; the right one comes only after
    # mypy's own report of that candidate is fed back.
    script = answering(RIGHT_LABEL, HALF_LABEL, lambda turn: "str(n) if n else n" in turn)
    with ScriptedOpenAIServer(script) as server:
        await start(editor, root, settings(server))
        actions = await editor.code_actions(root / "labels.py", RETURN_LINE, [mypy_diagnostic()])
        title = (
            'Fix `label`: return-value Incompatible return value type (got "int",'
            ' expected "str") (OpenCodeInterpreter)'
        )
        assert title in titles(actions), titles(actions)
        [fix] = [a for a in actions if a.title == title]
        assert fix.kind == types.CodeActionKind.QuickFix
        result = await run(editor, fix)
        assert result["applied"] and result["verified"], result
        text = editor.text(root / "labels.py")
        assert "    return str(n)\n" in text
        # The docstring and the rest of the module are as they were.
        assert '"""The label of n, for the report."""' in text
        assert text.endswith('TITLE = "Report"\n')
        # The first request: the paper's turns, the current code and the tool's report.
        first = server.requests[0]["messages"]
        assert (
            "Fix the function `label` in `labels.py` so that mypy no longer reports the problems"
            " below in it and its tests still pass." in first[0]["content"]
        )
        assert first[-2]["role"] == "assistant" and "return n" in first[-2]["content"]
        assert first[-1]["content"].startswith("Execution result:")
        assert (
            "labels.py:3:12: mypy [return-value] Incompatible return value type"
            in (first[-1]["content"])
        )
        assert "    return n" in first[-1]["content"]  # the offending line, as ruff shows it
        # The second: mypy's verdict on the first candidate, in mypy's words.
        second = last_user_turn(server.requests[1])
        assert second.startswith("Execution result:") and MYPY_SAYS in second
        assert "mypy [return-value]" in second
        shown = [m for kind, m in progress_messages(editor.client) if kind == "report"]
        assert any("candidate 1 failed the check" in (m or "") for m in shown), shown


async def test_a_silencing_comment_is_no_fix(editor: Editor, tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", LABELS)
    script = answering(RIGHT_LABEL, SILENCED_LABEL, lambda turn: "hides the problem" in turn)
    with ScriptedOpenAIServer(script) as server:
        await start(editor, root, settings(server))
        actions = await editor.code_actions(root / "labels.py", RETURN_LINE, [mypy_diagnostic()])
        [fix] = [a for a in actions if a.title.startswith("Fix `label`: return-value")]
        result = await run(editor, fix)
        assert result["applied"] and result["verified"], result
        assert "type: ignore" not in editor.text(root / "labels.py")
        assert len(server.requests) == 2


async def test_an_unused_variable_that_hides_a_bug(editor: Editor, tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", LABELS)
    # Right only when the first turn carries ruff's finding with its code and line.
    script = answering(
        RIGHT_TOTAL,
        RIGHT_TOTAL.replace("return with_tax", "return subtotal"),
        lambda turn: "ruff F841 Local variable `with_tax`" in turn,
    )
    with ScriptedOpenAIServer(script) as server:
        await start(editor, root, settings(server))
        warning = ruff_diagnostic(types.DiagnosticSeverity.Warning)
        actions = await editor.code_actions(root / "labels.py", WITH_TAX_LINE, [warning])
        [fix] = [a for a in actions if a.title.startswith("Fix `total`: F841")]
        # The action names the diagnostic it fixes, so the editor can show which.
        assert [(d.code, d.message) for d in fix.diagnostics or []] == [
            (warning.code, warning.message)
        ]
        result = await run(editor, fix)
        assert result["applied"] and result["verified"], result
        assert "    return with_tax\n" in editor.text(root / "labels.py")
        # The tests still ran and passed: the fix kept test_total green.
        assert "passed 1 test(s)" in result["message"], result


async def test_which_diagnostics_get_an_action(editor: Editor, tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", LABELS)
    with ScriptedOpenAIServer(["unused"]) as server:
        await start(editor, root, settings(server, tools={"enabled": ["ruff"]}))
        path = root / "labels.py"
        hint = ruff_diagnostic(types.DiagnosticSeverity.Hint)
        assert not [
            t for t in titles(await editor.code_actions(path, WITH_TAX_LINE, [hint])) if "F841" in t
        ]
        outside = types.Diagnostic(
            range=types.Range(types.Position(11, 0), types.Position(11, 5)),
            message="Constant name is fine",
            severity=types.DiagnosticSeverity.Warning,
            source="pylint",
            code="C0103",
        )
        assert not [
            t for t in titles(await editor.code_actions(path, 11, [outside])) if "C0103" in t
        ]
        # mypy is not enabled here: its fix is offered, but says that mypy will not verify it.
        [mypy_fix] = [
            t
            for t in titles(await editor.code_actions(path, RETURN_LINE, [mypy_diagnostic()]))
            if "return-value" in t
        ]
        assert mypy_fix.endswith("(OpenCodeInterpreter; unverified by mypy)"), mypy_fix
        # Two diagnostics of one function: one action, both in its argument.
        pylint = types.Diagnostic(
            range=types.Range(types.Position(WITH_TAX_LINE, 4), types.Position(WITH_TAX_LINE, 12)),
            message="Unused variable 'with_tax'",
            severity=types.DiagnosticSeverity.Warning,
            source="pylint",
            code="W0612",
        )
        warning = ruff_diagnostic(types.DiagnosticSeverity.Warning)
        actions = await editor.code_actions(path, WITH_TAX_LINE, [warning, pylint])
        [both] = [a for a in actions if a.title.startswith("Fix `total`")]
        assert both.title == (
            "Fix `total`: F841 Local variable `with_tax` is assigned to but never used"
            " and 1 more (OpenCodeInterpreter; unverified by pylint)"
        )
        assert both.command is not None and both.command.arguments is not None
        sent = both.command.arguments[0]["diagnostics"]
        assert [d["code"] for d in sent] == ["F841", "W0612"]


async def test_a_syntax_error_is_shown_and_fixed(editor: Editor, tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            **LABELS,
            # No test imports it: only the syntax check can say it is broken.
            "report.py": 'def heading(title):\n    return title.upper(\n\n\nFOOTER = "end"\n',
        },
    )
    right = "```python\ndef heading(title):\n    return title.upper()\n```"
    script = answering(right, "no code", lambda turn: "python syntax-error" in turn)
    with ScriptedOpenAIServer(script) as server:
        await start(editor, root, settings(server))
        report = root / "report.py"
        editor.open(report)
        [error] = await editor.wait_for_diagnostics(
            report, lambda d: any(x.code == "syntax-error" for x in d)
        )
        assert error.source == "oci-lsp" and error.range.start.line == 1
        assert "never closed" in error.message
        actions = await editor.code_actions(report, 1, [error])
        [fix] = [a for a in actions if a.title.startswith("Fix `heading`: syntax-error")]
        result = await run(editor, fix)
        assert result["applied"] and result["verified"], result
        assert (
            editor.text(report)
            == 'def heading(title):\n    return title.upper()\n\n\nFOOTER = "end"\n'
        )
        # The edit makes the module parse: the diagnostic goes without a save.
        await editor.wait_for_diagnostics(
            report, lambda d: not any(x.code == "syntax-error" for x in d)
        )


async def test_a_pylance_finding_is_verified_by_pyright(editor: Editor, tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", LABELS)
    # What Pylance publishes for `return n` (pyright's rule as the code).
    pylance = types.Diagnostic(
        range=types.Range(types.Position(RETURN_LINE, 11), types.Position(RETURN_LINE, 12)),
        message='Type "int" is not assignable to return type "str"\n  "int" is not assignable to "str"',
        severity=types.DiagnosticSeverity.Error,
        source="Pylance",
        code="reportReturnType",
    )
    # The half fix is refused by pyright itself; the right one comes after its report.
    script = answering(
        RIGHT_LABEL,
        HALF_LABEL,
        # pyright's words for the half fix: a falsy n is returned as the int 0.
        lambda turn: "pyright reportReturnType" in turn and "Literal[0]" in turn,
    )
    with ScriptedOpenAIServer(script) as server:
        await start(editor, root, settings(server, refine={"candidates": 1, "maxRounds": 2}))
        actions = await editor.code_actions(root / "labels.py", RETURN_LINE, [pylance])
        [fix] = [a for a in actions if a.title.startswith("Fix `label`: reportReturnType")]
        assert "unverified" not in fix.title  # pyright is installed beside the interpreter
        result = await run(editor, fix)
        assert result["applied"] and result["verified"], result
        assert "    return str(n)\n" in editor.text(root / "labels.py")
        assert "pyright" in result["message"]
        assert len(server.requests) == 2  # the half fix was refused by pyright's own report


WORDS = {
    "words.py": '''\
def first_word(text: str | None) -> str:
    """The first word of text; "" when there is none."""
    return text.split()[0]


def shout(word: str) -> str:
    if not word:
        return wrod
    return word.upper()
''',
    # Both defects are out of the tests' sight: no None, no empty word.
    "tests/test_words.py": """\
from words import first_word, shout


def test_first_word():
    assert first_word("hello world") == "hello"


def test_shout():
    assert shout("hi") == "HI"
""",
}
RIGHT_FIRST = (
    '```python\ndef first_word(text: str | None) -> str:\n    """The first word of text; "" when'
    ' there is none."""\n    if not text or not text.split():\n        return ""\n'
    "    return text.split()[0]\n```"
)
RIGHT_SHOUT = (
    "```python\ndef shout(word: str) -> str:\n    if not word:\n        return word\n"
    "    return word.upper()\n```"
)


async def test_an_optional_not_handled_and_an_undefined_name(
    editor: Editor, tmp_path: Path
) -> None:
    root = write_files(tmp_path / "ws", WORDS)

    def model(body: dict[str, Any]) -> str:
        turn = last_user_turn(body)
        if "mypy [union-attr]" in turn and 'Item "None" of "str | None"' in turn:
            return RIGHT_FIRST
        if "ruff F821 Undefined name `wrod`" in turn:
            return RIGHT_SHOUT
        return "I cannot tell what is wrong."

    with ScriptedOpenAIServer(model) as server:
        await editor.start(root, init_options=settings(server))
        path = root / "words.py"
        editor.open(path)
        await editor.wait_idle()
        optional = types.Diagnostic(
            range=types.Range(types.Position(2, 11), types.Position(2, 21)),
            message='Item "None" of "str | None" has no attribute "split"',
            severity=types.DiagnosticSeverity.Error,
            source="mypy",
            code="union-attr",
        )
        undefined = types.Diagnostic(
            range=types.Range(types.Position(7, 15), types.Position(7, 19)),
            message="Undefined name `wrod`",
            severity=types.DiagnosticSeverity.Error,
            source="Ruff",
            code="F821",
        )
        for line, diagnostic, fixed in (
            (2, optional, '        return ""\n'),
            (7, undefined, "        return word\n"),
        ):
            actions = await editor.code_actions(path, line, [diagnostic])
            [fix] = [a for a in actions if f": {diagnostic.code} " in a.title]
            result = await run(editor, fix)
            assert result["applied"] and result["verified"], result
            assert fixed in editor.text(path)


async def test_a_tool_that_cannot_run_is_said_and_the_tests_still_check(
    editor: Editor, tmp_path: Path
) -> None:
    root = write_files(tmp_path / "ws", LABELS)
    with ScriptedOpenAIServer([RIGHT_LABEL]) as server:
        # A command that exits 1 and prints nothing is no verdict.
        await start(editor, root, settings(server, tools={"mypy": ["/bin/false"]}))
        actions = await editor.code_actions(root / "labels.py", RETURN_LINE, [mypy_diagnostic()])
        [fix] = [a for a in actions if a.title.startswith("Fix `label`: return-value")]
        result = await run(editor, fix)
        assert result["applied"] and result["verified"], result
        said = [m for m in editor.messages() if "checked by the parser and the tests only" in m]
        assert said and "mypy" in said[0], editor.messages()
