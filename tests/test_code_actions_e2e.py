"""The code actions end to end: the server as a subprocess, a real client (VS Code's and
Neovim's capabilities), a scripted OpenAI-compatible server on 127.0.0.1 (or a real tiny
CTranslate2 model), the workspace's tests really run in the sandbox."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from tests.conftest import Editor, progress_messages, write_files
from tests.openai_server import Reply, ScriptedOpenAIServer

CALC = {
    "calc.py": """\
import math


def add(a, b):
    return a - b


def mul(a, b):
    \"\"\"The product of a and b.\"\"\"
    ...


def norm(x, y):
    return math.hypot(x, y)
""",
    "tests/test_calc.py": """\
from calc import add, mul, norm


def test_add():
    assert add(1, 2) == 3


def test_add_zero():
    assert add(0, 0) == 0


def test_mul():
    assert mul(2, 3) == 6


def test_norm():
    assert norm(3, 4) == 5
""",
}

RIGHT_ADD = "```python\ndef add(a, b):\n    return a + b\n```"
WRONG_ADD = "```python\ndef add(a, b):\n    return a + b + 1\n```"
RIGHT_MUL = '```python\ndef mul(a, b):\n    """The product of a and b."""\n    return a * b\n```'
# Streamed slowly, so that the test can act while the model writes.
SLOW_MUL = Reply(RIGHT_MUL, delay=0.05, chunk_size=2)
MUL_LINE = 9  # 0-based: the `...` of mul


def settings(server: ScriptedOpenAIServer, **refine: Any) -> dict[str, Any]:
    return {
        "backend": "openai",
        "openai": {"baseUrl": server.base_url, "model": "test-model"},
        "refine": {"candidates": 1, "maxRounds": 2, **refine},
        "generation": {"maxNewTokens": 200},
    }


async def start(editor: Editor, root: Path, options: dict[str, Any], **extra: Any) -> None:
    await editor.start(root, init_options={**options, **extra})
    editor.open(root / "calc.py")
    await editor.wait_idle()


def titles(actions: list[types.CodeAction]) -> list[str]:
    return [a.title for a in actions]


async def run(editor: Editor, action: types.CodeAction, timeout: float = 120) -> dict[str, Any]:
    assert action.command is not None
    result = await asyncio.wait_for(
        editor.command(action.command.command, *(action.command.arguments or [])), timeout
    )
    assert isinstance(result, dict)
    return result


async def generating_mul(
    editor: Editor, root: Path, server: ScriptedOpenAIServer
) -> asyncio.Future[dict[str, Any]]:
    """Start generating mul's body with a slow reply; returns once the model is asked."""
    await start(editor, root, settings(server))
    actions = await editor.code_actions(root / "calc.py", MUL_LINE)
    task = asyncio.ensure_future(run(editor, actions[0]))
    await editor.wait_until(lambda: bool(server.requests), "the generation to start")
    return task


async def failing_add(editor: Editor, root: Path) -> types.Diagnostic:
    editor.save(root / "calc.py")
    diagnostics = await editor.wait_for_diagnostics(
        root / "tests/test_calc.py", lambda d: any("test_add:" in x.message for x in d)
    )
    return next(d for d in diagnostics if "test_add:" in d.message)


async def test_generate_a_stub_verified_against_its_test(editor: Editor, tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", CALC)
    with ScriptedOpenAIServer([RIGHT_MUL]) as server:
        await start(editor, root, settings(server))
        actions = await editor.code_actions(root / "calc.py", MUL_LINE)
        [generate] = [
            a for a in actions if a.title == "Generate body of `mul` (OpenCodeInterpreter)"
        ]
        assert generate.kind == types.CodeActionKind.RefactorRewrite
        assert not await editor.code_actions(root / "calc.py", 4)  # add has a body: no action
        version = editor.versions[(root / "calc.py").as_uri()]
        result = await run(editor, generate)
    assert result["applied"] and result["verified"], result
    [params] = editor.applied_edits
    workspace = editor.capabilities.workspace
    if workspace and workspace.workspace_edit and workspace.workspace_edit.document_changes:
        [change] = params.edit.document_changes or []
        assert isinstance(change, types.TextDocumentEdit)
        assert change.text_document.version == version  # versioned: a moved buffer refuses it
    else:  # Neovim's set: plain changes (the server checked the function itself)
        assert list(params.edit.changes or {}) == [(root / "calc.py").as_uri()]
    # The body only: the docstring and everything else untouched.
    text = editor.text(root / "calc.py")
    assert text == CALC["calc.py"].replace("    ...\n", "    return a * b\n")
    assert (root / "calc.py").read_text() == CALC["calc.py"]  # the file waits for a save
    shown = progress_messages(editor.client)
    assert ("begin", "Generating mul") in shown
    assert any(kind == "report" and "verifying 1 candidate" in (m or "") for kind, m in shown)
    # The prompt held the test that exercises it.
    assert "assert mul(2, 3) == 6" in server.requests[0]["messages"][-1]["content"]


async def test_the_applied_edit_keeps_the_docstring_lines_the_reply_dropped(
    editor: Editor, tmp_path: Path
) -> None:
    documented = CALC["calc.py"].replace(
        '    """The product of a and b."""\n',
        '    """The product of a and b.\n\n    ```pycon\n    >>> mul(2, 3)\n    6\n    ```\n    """\n',
    )
    root = write_files(tmp_path / "ws", {**CALC, "calc.py": documented})
    # The whole function back, its docstring without the example.
    reply = (
        "Here is the implementation:\n\n"
        '```python\ndef mul(a, b):\n    """The product of a and b."""\n    return a * b\n```'
    )
    with ScriptedOpenAIServer([reply]) as server:
        await start(editor, root, settings(server))
        stub_line = documented.splitlines().index("    ...")
        actions = await editor.code_actions(root / "calc.py", stub_line)
        generate = next(a for a in actions if a.title.startswith("Generate body of `mul`"))
        result = await run(editor, generate)
    assert result["applied"] and result["verified"], result
    assert editor.text(root / "calc.py") == documented.replace("    ...\n", "    return a * b\n")
    kept = "kept 5 line(s) of the docstring that the reply dropped or changed"
    assert kept in result["message"]
    shown = [m for kind, m in progress_messages(editor.client) if kind == "report"]
    assert f"round 1/2: candidate 1 passed 1 test(s) ({kept})" in shown


async def test_fix_from_a_failing_test_after_one_feedback_round(
    editor: Editor, tmp_path: Path
) -> None:
    root = write_files(tmp_path / "ws", CALC)
    with ScriptedOpenAIServer([WRONG_ADD, RIGHT_ADD]) as server:
        await start(editor, root, settings(server))
        diagnostic = await failing_add(editor, root)
        actions = await editor.code_actions(
            root / "tests/test_calc.py", diagnostic.range.start.line, [diagnostic]
        )
        [fix] = [
            a for a in actions if a.title == "Fix `add` so `test_add` passes (OpenCodeInterpreter)"
        ]
        assert fix.kind == types.CodeActionKind.QuickFix
        assert "with an instruction" not in " ".join(titles(actions))  # the client cannot ask
        # The same fix is offered at the function, on its own diagnostic there.
        at_function = next(
            d for d in editor.diagnostics(root / "calc.py") if "test_add:" in d.message
        )
        there = await editor.code_actions(
            root / "calc.py", at_function.range.start.line, [at_function]
        )
        assert fix.title in titles(there)
        result = await run(editor, fix)
        assert result["applied"] and result["verified"] and result["rounds"] == 2, result
        shown = [m for kind, m in progress_messages(editor.client) if kind == "report"]
        assert "round 1/2: candidate 1 failed (test_add)" in shown
        assert "round 2/2: candidate 1 passed 2 test(s)" in shown
        # The second round's request carried the real failure of the first candidate.
        feedback = server.requests[1]["messages"][-1]["content"]
        assert feedback.startswith("Execution result:")
        assert "assert 4 == 3" in feedback or "assert add(1, 2) == 3" in feedback
        # The first request started from the user's real failure, as the models were trained.
        assert "Execution result:" in server.requests[0]["messages"][-1]["content"]
        assert "return a + b\n" in editor.text(root / "calc.py")
        # Its diagnostics are gone without waiting for a save; the other tests still pass.
        await editor.wait_for_diagnostics(
            root / "tests/test_calc.py", lambda d: not any("test_add" in x.message for x in d)
        )
        await editor.wait_for_diagnostics(
            root / "calc.py", lambda d: not any("test_add" in x.message for x in d)
        )
        # mul's failure is not add's: it stays.
        assert any("test_mul" in d.message for d in editor.diagnostics(root / "calc.py"))
        # The counts that status bars show follow: test_add passes now, test_mul still fails.
        tests = (await editor.command("oci.status"))["tests"]
        assert (tests["failed"], tests["passed"]) == (1, 3), tests


async def test_never_right_is_not_applied_but_offered_unverified(
    editor: Editor, tmp_path: Path
) -> None:
    root = write_files(tmp_path / "ws", CALC)
    with ScriptedOpenAIServer([WRONG_ADD]) as server:
        await start(editor, root, settings(server))
        diagnostic = await failing_add(editor, root)
        actions = await editor.code_actions(root / "calc.py", 3, [])
        assert not actions  # add is not a stub, and no diagnostic was sent along
        actions = await editor.code_actions(
            root / "tests/test_calc.py", diagnostic.range.start.line, [diagnostic]
        )
        fix = next(a for a in actions if a.title.startswith("Fix `add` so"))
        result = await run(editor, fix)
        assert not result["applied"] and not result["verified"]
        assert not editor.applied_edits
        assert any("unverified" in m for m in editor.messages())
        assert len(server.requests) == 2  # two rounds, both wrong
        actions = await editor.code_actions(root / "calc.py", 4)
        [unverified] = [a for a in actions if "(unverified)" in a.title]
        result = await run(editor, unverified)
        assert result["applied"] and not result["verified"]
        assert "return a + b + 1" in editor.text(root / "calc.py")


async def test_a_function_edited_meanwhile_gets_nothing(editor: Editor, tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", CALC)
    with ScriptedOpenAIServer([SLOW_MUL]) as server:
        task = await generating_mul(editor, root, server)
        edited = editor.text(root / "calc.py").replace("    ...\n", "    return a * b * 1\n")
        editor.change(root / "calc.py", edited)
        result = await task
    assert not result["applied"]
    assert not editor.applied_edits
    assert editor.text(root / "calc.py") == edited
    assert any("changed while" in m for m in editor.messages())


async def test_an_edit_elsewhere_in_the_file_does_not_stop_it(
    editor: Editor, tmp_path: Path
) -> None:
    root = write_files(tmp_path / "ws", CALC)
    with ScriptedOpenAIServer([SLOW_MUL]) as server:
        task = await generating_mul(editor, root, server)
        edited = "# a comment typed meanwhile\n" + editor.text(root / "calc.py")
        editor.change(root / "calc.py", edited)
        result = await task
    assert result["applied"], result
    assert editor.text(root / "calc.py") == edited.replace("    ...\n", "    return a * b\n")


async def test_no_model_still_offers_the_action_and_says_how_to_get_one(
    editor: Editor, tmp_path: Path
) -> None:
    root = write_files(tmp_path / "ws", CALC)
    await start(editor, root, {"model": "ds-1.3b", "device": "cpu"})
    actions = await editor.code_actions(root / "calc.py", MUL_LINE)
    result = await run(editor, actions[0])
    assert not result["applied"]
    [message] = [m for m in editor.messages() if "no model" in m]
    assert "oci-lsp model pull ds-1.3b" in message and "openai.baseUrl" in message
    assert (await editor.command("oci.status"))["version"]  # still serving


async def test_a_second_request_on_the_same_function_is_refused(
    editor: Editor, tmp_path: Path
) -> None:
    root = write_files(tmp_path / "ws", CALC)
    with ScriptedOpenAIServer([SLOW_MUL]) as server:
        first = await generating_mul(editor, root, server)
        actions = await editor.code_actions(root / "calc.py", MUL_LINE)
        second = await run(editor, actions[0])
        assert not second["applied"] and "already working on `mul`" in second["message"]
        assert (await first)["applied"]


async def test_an_instruction_is_the_human_feedback_turn(editor: Editor, tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", CALC)
    with ScriptedOpenAIServer([RIGHT_ADD]) as server:
        await start(editor, root, settings(server), promptForInstruction=True)
        diagnostic = await failing_add(editor, root)
        actions = await editor.code_actions(
            root / "tests/test_calc.py", diagnostic.range.start.line, [diagnostic]
        )
        [ask] = [a for a in actions if "with an instruction" in a.title]
        assert ask.title == "Fix `add` with an instruction… (OpenCodeInterpreter)"
        assert ask.command is not None and ask.command.command == "oci.fixWithInstruction"
        # What the editor clients do: ask the user, then call oci.fix with the line.
        argument = dict((ask.command.arguments or [{}])[0], instruction="use + not -")
        result = await asyncio.wait_for(editor.command("oci.fix", argument), 120)
    assert result["applied"], result
    last = server.requests[0]["messages"][-1]
    assert last["role"] == "user" and "use + not -" in last["content"]


async def test_a_tiny_ctranslate2_model_runs_the_whole_action(
    editor: Editor, tmp_path: Path
) -> None:
    from tests.tiny_models import build_tiny_model

    model = build_tiny_model(tmp_path / "model")
    root = write_files(tmp_path / "ws", CALC)
    options = {
        "model": str(model),
        "device": "cpu",
        "refine": {"candidates": 2, "maxRounds": 1, "temperature": 0.8},
        "generation": {"maxNewTokens": 16},
    }
    await start(editor, root, options)
    actions = await editor.code_actions(root / "calc.py", MUL_LINE)
    result = await run(editor, actions[0])
    # A random model writes noise: never verified, so never applied, and said so.
    assert not result["applied"] and not result["verified"]
    assert not editor.applied_edits
    assert any("mul" in m for m in editor.messages())
    shown = progress_messages(editor.client)
    assert ("begin", "Generating mul") in shown
    assert any(kind == "report" and "tokens" in (m or "") for kind, m in shown)


async def test_cancel_from_the_progress_stops_the_model_and_applies_nothing(
    editor: Editor, tmp_path: Path
) -> None:
    root = write_files(tmp_path / "ws", CALC)
    with ScriptedOpenAIServer([Reply(hang=True), RIGHT_MUL]) as server:
        task = await generating_mul(editor, root, server)
        await editor.wait_until(lambda: bool(_token_of(editor, "Generating mul")), "its progress")
        editor.client.window_work_done_progress_cancel(
            types.WorkDoneProgressCancelParams(token=_token_of(editor, "Generating mul"))
        )
        result = await asyncio.wait_for(task, 60)
        assert result["message"] == "cancelled" and not result["applied"]
        assert await server.wait_disconnect()  # the generation itself was stopped
        assert not editor.applied_edits
        assert ("end", "cancelled") in progress_messages(editor.client)
        # The function is free again: the next request runs.
        actions = await editor.code_actions(root / "calc.py", MUL_LINE)
        assert (await run(editor, actions[0]))["applied"]


async def test_cancel_request_stops_the_work_and_the_server_stays_up(
    editor: Editor, tmp_path: Path
) -> None:
    root = write_files(tmp_path / "ws", CALC)
    with ScriptedOpenAIServer([Reply(hang=True)]) as server:
        await start(editor, root, settings(server))
        actions = await editor.code_actions(root / "calc.py", MUL_LINE)
        assert actions[0].command is not None
        request = asyncio.ensure_future(
            editor.client.protocol.send_request_async(
                types.WORKSPACE_EXECUTE_COMMAND,
                types.ExecuteCommandParams(
                    command=actions[0].command.command, arguments=actions[0].command.arguments
                ),
                msg_id="generate-1",
            )
        )
        await editor.wait_until(lambda: bool(server.requests), "the generation to start")
        editor.client.cancel_request(types.CancelParams(id="generate-1"))
        with pytest.raises(Exception, match=r"(?i)cancel"):  # the cancelled request's answer
            await asyncio.wait_for(request, 30)
        assert await server.wait_disconnect()
        await editor.wait_until(
            lambda: ("end", "cancelled") in progress_messages(editor.client), "the progress to end"
        )
        assert (await editor.command("oci.status"))["version"]


async def test_files_outside_the_workspace_get_no_action_and_a_clear_answer(
    editor: Editor, tmp_path: Path
) -> None:
    root = write_files(tmp_path / "ws", CALC)
    outside = write_files(tmp_path / "elsewhere", {"stub.py": "def f():\n    ...\n"})
    await editor.start(root, init_options={"model": "ds-1.3b"})
    editor.open(outside / "stub.py")
    assert not await editor.code_actions(outside / "stub.py", 1)
    uri = (outside / "stub.py").as_uri()
    result = await editor.command(
        "oci.generate", {"uri": uri, "position": {"line": 1, "character": 0}}
    )
    assert not result["applied"] and "outside the workspace" in result["message"]
    result = await editor.command("oci.fix", {"uri": uri})
    assert not result["applied"] and "needs" in result["message"]  # a bad request: said, not fatal
    assert (await editor.command("oci.status"))["version"]


async def test_a_buffer_that_does_not_parse_still_offers_generate(
    editor: Editor, tmp_path: Path
) -> None:
    root = write_files(tmp_path / "ws", CALC)
    await start(editor, root, {"model": "ds-1.3b"})
    broken = editor.text(root / "calc.py").replace("def norm(x, y):", "def norm(x, y:")
    editor.change(root / "calc.py", broken)
    actions = await editor.code_actions(root / "calc.py", MUL_LINE)
    assert titles(actions) == ["Generate body of `mul` (OpenCodeInterpreter)"]


async def test_with_verify_off_the_best_code_is_applied_unverified(
    editor: Editor, tmp_path: Path
) -> None:
    root = write_files(tmp_path / "ws", CALC)
    wrong_mul = RIGHT_MUL.replace("a * b", "a + b")
    with ScriptedOpenAIServer([wrong_mul]) as server:
        await start(editor, root, settings(server, verify=False, maxRounds=1))
        actions = await editor.code_actions(root / "calc.py", MUL_LINE)
        result = await run(editor, actions[0])
    assert result["applied"] and not result["verified"]
    assert "return a + b\n" in editor.text(root / "calc.py")


def _token_of(editor: Editor, title: str) -> types.ProgressToken | None:
    for token, values in editor.client.progress_reports.items():
        if any(isinstance(v, types.WorkDoneProgressBegin) and v.title == title for v in values):
            return token
    return None


async def test_two_functions_in_two_documents_at_once(editor: Editor, tmp_path: Path) -> None:
    files = dict(CALC)
    files["geometry.py"] = "def area(w, h):\n    pass\n"
    files["tests/test_geometry.py"] = (
        "from geometry import area\n\n\ndef test_area():\n    assert area(2, 3) == 6\n"
    )

    def reply(body: dict[str, Any]) -> Reply:
        task = body["messages"][-1]["content"]
        if "`area`" in task:
            return Reply("```python\ndef area(w, h):\n    return w * h\n```", delay=0.01)
        return Reply(RIGHT_MUL, delay=0.01)

    root = write_files(tmp_path / "ws", files)
    with ScriptedOpenAIServer(reply) as server:
        await start(editor, root, settings(server))
        editor.open(root / "geometry.py")
        mul = (await editor.code_actions(root / "calc.py", MUL_LINE))[0]
        area = (await editor.code_actions(root / "geometry.py", 1))[0]
        results = await asyncio.gather(run(editor, mul), run(editor, area))
    assert all(r["applied"] and r["verified"] for r in results), results
    assert "return a * b" in editor.text(root / "calc.py")
    assert "return w * h" in editor.text(root / "geometry.py")


async def test_the_client_leaving_mid_generation_shuts_down_cleanly(
    editor: Editor, tmp_path: Path
) -> None:
    files = dict(CALC)
    files["tests/test_slow.py"] = "import time\n\n\ndef test_slow():\n    time.sleep(30)\n"
    root = write_files(tmp_path / "ws", files)
    with ScriptedOpenAIServer([Reply(hang=True)]) as server:
        task = await generating_mul(editor, root, server)
        tests = asyncio.ensure_future(editor.run_tests())
        await editor.wait_until(
            lambda: any(t == "Running tests" for _, t in progress_messages(editor.client)),
            "the test run to start",
        )
        # The editor closes mid-generation and mid-run: the running command is cancelled, the shutdown
        # answers (pygls failed it with "dictionary changed size") and the server exits.
        await asyncio.wait_for(editor.client.shutdown_session(), 30)
        editor.client.capabilities = None  # done: the fixture's teardown has nothing left to do
        assert await server.wait_disconnect()
    task.cancel()
    tests.cancel()
