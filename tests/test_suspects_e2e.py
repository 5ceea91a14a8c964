"""Where the ranked suspects take the fix (issue 15), end to end: the server as a subprocess
with a real client, and `oci-lsp --fix` as a command, the tests really run (the locate run
records them), a scripted OpenAI-compatible model on 127.0.0.1 that knows the right code only
for the function that is really wrong."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from lsprotocol import types

from tests.conftest import Editor, write_files
from tests.openai_server import Reply, ScriptedOpenAIServer
from tests.test_fix_e2e import fix

# `check` raises, so today's rule and the traceback blame it, and its raising line runs only
# in the failing test; the fault is `scale`'s, whose line the passing test runs too. The
# ranking puts `check` first and `scale` second: the top suspect is wrong. No small change
# of either makes the failing test pass (the mutation evidence cannot help: see
# FOUND_BY_A_CHANGE for one it can).
SCALE_AND_CHECK = """\
def scale(x):
    return x * 2 + str(x).count("6")


def check(x):
    y = scale(x)
    if y % 2:
        raise ValueError(f"odd: {y}")
    return y
"""
CHECK_TESTS = """\
def test_small():
    assert check(2) == 4


def test_big():
    assert check(6) == 12
"""
CHECK = {
    "calc.py": SCALE_AND_CHECK,
    "tests/test_calc.py": "from calc import check\n\n\n" + CHECK_TESTS,
}
SCALE_RIGHT = "def scale(x):\n    return x * 2\n"

# Both functions are wrong, and only together do they pass: `double` called in the assert
# ranks first, `base` second.
BOTH = {
    "calc.py": """\
def base(x):
    return x + 1


def double(x):
    return base(x) * 3
""",
    "tests/test_calc.py": """\
from calc import double


def test_double():
    assert double(2) == 4
""",
}
DOUBLE_ALONE = "def double(x):\n    return base(x) * 2\n"  # right, but not enough alone
BASE_ALONE = "def base(x):\n    return x\n"


def asked(body: dict[str, Any]) -> tuple[str, ...]:
    """The function(s) the request asks for, from the task's last line."""
    said = "\n".join(str(m.get("content", "")) for m in body["messages"])
    pair = re.findall(r"Reply with the complete functions `(\w+)` and `(\w+)`", said)
    if pair:
        return tuple(pair[-1])
    single = re.findall(r"Reply with the complete function `(\w+)`", said)
    return (single[-1],) if single else ()


def model(answers: dict[tuple[str, ...], str]) -> Any:
    def reply(body: dict[str, Any]) -> Reply:
        code = answers.get(asked(body))
        return Reply(f"```python\n{code}```" if code else "I do not know how to fix that.")

    return reply


def test_fix_tries_the_next_suspect_when_the_top_one_is_wrong(tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", CHECK)
    report = tmp_path / "report.json"
    with ScriptedOpenAIServer(model({("scale",): SCALE_RIGHT})) as server:
        done = fix(root, server, "--json", str(report), "--rounds", "2", "--candidates", "1")
        asks = [asked(r) for r in server.requests]
        prompts = [r["messages"][0]["content"] for r in server.requests]
    assert done.returncode == 0, done.stdout + done.stderr
    assert "locating the fault" in done.stderr
    # The caller stays byte for byte as it was; scale's line alone changed.
    assert (root / "calc.py").read_text() == CHECK["calc.py"].replace(
        'return x * 2 + str(x).count("6")', "return x * 2"
    )
    # check, its rounds spent, then scale, which passed.
    assert asks == [("check",), ("check",), ("scale",)]
    # Each prompt showed the other suspect as context.
    assert "`scale` (suspiciousness" in prompts[0] and "def scale(x):" in prompts[0]
    assert "`check` (suspiciousness" in prompts[2]
    data = json.loads(report.read_text())
    [group] = data["groups"]
    assert (group["function"], group["status"]) == ("check", "fixed")
    assert group["suspects"] == ["calc.check", "calc.scale"]
    assert group["fixed"] == ["calc.scale"]
    assert [r["functions"] for r in group["rounds"]] == [["calc.check"]] * 2 + [["calc.scale"]]
    assert "fixed `scale`" in group["why"]
    assert data["failing_after"] == 0


# The same fault as a comparison: changing `>` to `>=`... no, `5` to `6` makes the failing test
# pass and keeps the passing one passing, so `scale` comes first and --fix asks for it alone.
FOUND_BY_A_CHANGE = {
    **CHECK,
    "calc.py": SCALE_AND_CHECK.replace('str(x).count("6")', "(x > 5)"),
}


def test_fix_asks_first_for_the_function_a_small_change_fixes(tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", FOUND_BY_A_CHANGE)
    report = tmp_path / "report.json"
    with ScriptedOpenAIServer(model({("scale",): SCALE_RIGHT})) as server:
        done = fix(root, server, "--json", str(report), "--rounds", "2", "--candidates", "1")
        asks = [asked(r) for r in server.requests]
    assert done.returncode == 0, done.stdout + done.stderr
    # In the spectra's order: check ran only in the failing test.
    assert "locating the fault: trying small changes of check, scale" in done.stderr
    assert asks == [("scale",)]
    [group] = json.loads(report.read_text())["groups"]
    assert group["suspects"][:2] == ["calc.scale", "calc.check"]
    assert (root / "calc.py").read_text() == FOUND_BY_A_CHANGE["calc.py"].replace(
        "return x * 2 + (x > 5)", "return x * 2"
    )


def test_fix_changes_two_functions_together_when_neither_alone_passes(tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", BOTH)
    report = tmp_path / "report.json"
    answers = {
        ("double",): DOUBLE_ALONE,
        ("base",): BASE_ALONE,
        ("base", "double"): BASE_ALONE + "\n\n" + DOUBLE_ALONE,
    }
    with ScriptedOpenAIServer(model(answers)) as server:
        done = fix(root, server, "--json", str(report), "--rounds", "1", "--candidates", "1")
        asks = [asked(r) for r in server.requests]
        pair_prompt = server.requests[-1]["messages"]
    assert done.returncode == 0, done.stdout + done.stderr
    # They tie; base is first: double is the assert's call, the caller of what tied with it.
    assert asks == [("base",), ("double",), ("base", "double")]
    assert (root / "calc.py").read_text() == (
        BOTH["calc.py"].replace("return x + 1", "return x").replace(") * 3", ") * 2")
    )
    # The pair's dialogue: both functions' current code, then the real failure.
    assert [m["role"] for m in pair_prompt] == ["user", "assistant", "user"]
    assert "def base(x):" in pair_prompt[-2]["content"]
    assert "def double(x):" in pair_prompt[-2]["content"]
    data = json.loads(report.read_text())
    [group] = data["groups"]
    assert group["fixed"] == ["calc.base", "calc.double"] and group["status"] == "fixed"


def test_a_fix_that_never_passes_writes_nothing(tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", BOTH)
    with ScriptedOpenAIServer(model({("double",): DOUBLE_ALONE})) as server:
        done = fix(root, server, "--rounds", "1", "--candidates", "1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert (root / "calc.py").read_text() == BOTH["calc.py"]


# -- in the editor ----------------------------------------------------------------------------


def settings(server: ScriptedOpenAIServer) -> dict[str, Any]:
    return {
        "backend": "openai",
        "openai": {"baseUrl": server.base_url, "model": "test-model"},
        "refine": {"candidates": 1, "maxRounds": 1},
        "generation": {"maxNewTokens": 200},
    }


async def test_fix_g_instead_applies_the_edit_to_the_second_suspect(
    editor: Editor, tmp_path: Path
) -> None:
    root = write_files(tmp_path / "ws", CHECK)
    with ScriptedOpenAIServer(model({("scale",): SCALE_RIGHT})) as server:
        await editor.start(root, init_options=settings(server))
        editor.open(root / "calc.py")
        editor.save(root / "calc.py")
        diagnostics = await editor.wait_for_diagnostics(
            root / "calc.py",
            lambda d: any("test_big" in x.message and "suspects" in (x.data or {}) for x in d),
        )
        diagnostic = next(d for d in diagnostics if "test_big" in d.message)
        assert diagnostic.data["function"] == "calc.check"
        suspects = diagnostic.data["suspects"]
        assert [s["function"] for s in suspects] == ["calc.check", "calc.scale"]
        assert suspects[1]["uri"] == editor.uri(root / "calc.py")
        assert suspects[1]["range"]["start"] == {"line": 0, "character": 4}
        assert 0 < suspects[1]["score"] <= suspects[0]["score"] <= 1
        actions = await editor.code_actions(
            root / "calc.py", diagnostic.range.start.line, [diagnostic]
        )
        titles = [a.title for a in actions]
        assert titles[:2] == [
            "Fix `check` so `test_big` passes (OpenCodeInterpreter)",
            "Fix `scale` instead so `test_big` passes (OpenCodeInterpreter)",
        ]
        instead = actions[1]
        assert instead.kind == types.CodeActionKind.QuickFix and not instead.is_preferred
        assert instead.command is not None
        [argument] = instead.command.arguments or []
        assert argument["function"] == "calc.scale"
        # A suspect that is not one (any more), or one gone from its file, is refused with a
        # reason, and the server stays.
        refused = await editor.command("oci.fix", {**argument, "function": "calc.nowhere"})
        assert not refused["applied"]
        assert (
            "`nowhere` is no longer a suspect of `tests/test_calc.py::test_big`"
            in (refused["message"])
        )
        editor.change(root / "calc.py", CHECK["calc.py"].replace("scale", "twice"))
        refused = await editor.command("oci.fix", argument)
        assert not refused["applied"] and "`scale` is no longer in calc.py" in refused["message"]
        editor.change(root / "calc.py", CHECK["calc.py"])
        assert not server.requests and not editor.applied_edits

        result = await asyncio.wait_for(editor.command(instead.command.command, argument), 120)
        assert result["applied"] and result["verified"], result
        assert asked(server.requests[0]) == ("scale",)
        # The context showed the top suspect, which the reply was not asked to change.
        assert "`check` (suspiciousness" in server.requests[0]["messages"][0]["content"]
        # The edit went to scale; check, the caller, is as it was.
        assert editor.text(root / "calc.py") == CHECK["calc.py"].replace(
            'return x * 2 + str(x).count("6")', "return x * 2"
        )
