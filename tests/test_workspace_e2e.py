"""Collection errors, settings, several folders, odd paths, other runners, bad requests."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from lsprotocol import types

from tests.conftest import Editor, progress_messages, write_files


async def test_collection_errors_appear_at_their_line(editor: Editor, tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            "calc.py": "def add(a, b):\n    return a + b\n",
            "broken.py": "X = 1\n\ndef f(:\n    pass\n",
            "tests/test_ok.py": "from calc import add\n\ndef test_add():\n    assert add(1, 2) == 4\n",
            "tests/test_broken.py": "import broken\n\ndef test_f():\n    pass\n",
            "tests/test_missing.py": "import json\nimport no_such_module\n",
        },
    )
    await editor.start(root)
    editor.save(root / "calc.py")
    broken = await editor.wait_for_diagnostics(root / "broken.py")
    assert [(d.code, d.range.start.line) for d in broken] == [("collection-error", 2)]
    assert broken[0].message.startswith("SyntaxError")
    missing = await editor.wait_for_diagnostics(root / "tests/test_missing.py")
    assert [(d.code, d.range.start.line) for d in missing] == [("collection-error", 1)]
    assert "no_such_module" in missing[0].message
    # The other tests still ran.
    await editor.wait_for_diagnostics(root / "tests/test_ok.py")

    # Fixing the syntax error clears its diagnostic.
    editor.save(root / "broken.py", "X = 1\n\ndef f():\n    pass\n")
    await editor.wait_for_diagnostics(root / "broken.py", lambda d: not d)


async def test_conftest_that_fails_to_import(editor: Editor, tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            "m.py": "V = 1\n",
            "tests/conftest.py": "import os\nraise RuntimeError('conftest is broken')\n",
            "tests/test_m.py": "def test_m():\n    assert 0\n",
        },
    )
    await editor.start(root)
    editor.save(root / "m.py")
    diags = await editor.wait_for_diagnostics(root / "tests/conftest.py")
    assert [(d.code, d.range.start.line) for d in diags] == [("collection-error", 1)]
    assert "conftest is broken" in diags[0].message
    assert (await editor.command("oci.status"))["version"]


async def test_settings_from_every_source(editor: Editor, tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            "pyproject.toml": """
                [tool.oci-lsp]
                compute-type = "float32"
                device = "cpu"
                backend = "no-such-backend"

                [tool.oci-lsp.tests]
                timeout = "soon"
                """,
            "m.py": "V = 1\n",
        },
    )
    await editor.start(
        root,
        init_options={"model": "ds-33b", "promptForInstruction": True},
        settings={"backend": "openai"},
    )
    await editor.wait_until(lambda: len(editor.messages()) >= 2, "two warnings")
    status = await editor.command("oci.status")
    # pyproject < initializationOptions < workspace/configuration.
    assert status["backend"] == "openai"
    assert status["model"]["device"] == "remote"  # the model runs on the server
    messages = editor.messages()
    assert any("`backend`" in m and "no-such-backend" in m for m in messages)
    assert any("`tests.timeout`" in m and "300" in m for m in messages)
    assert all(m.count("promptForInstruction") == 0 for m in messages)
    kinds = {m.type for m in editor.client.messages}
    assert kinds == {types.MessageType.Warning}

    # didChangeConfiguration re-reads the workspace configuration.
    editor.client.set_configuration({"backend": "ctranslate2", "device": "cuda"}, section="oci")
    # (device "cpu" came from pyproject.toml; the workspace configuration now says cuda)
    editor.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings=None)
    )
    await editor.wait_until(lambda: True, "")
    for _ in range(100):
        status = await editor.command("oci.status")
        if status["model"]["device"] == "cuda":
            break
        await asyncio.sleep(0.05)
    assert status["backend"] == "ctranslate2"
    assert status["model"]["computeType"] == "float32"  # still from pyproject
    assert status["model"]["id"] == "ds-33b"  # from initializationOptions
    assert status["model"]["state"] == "error"  # not installed, and it says how to get it
    assert "oci-lsp model pull ds-33b" in status["model"]["error"]
    # The same bad values are not reported again.
    count = len(editor.messages())
    editor.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings=None)
    )
    await asyncio.sleep(0.5)
    assert len(editor.messages()) == count


async def test_tests_on_save_can_be_turned_off(editor: Editor, tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "ws", {"m.py": "V = 1\n", "tests/test_m.py": "def test_m():\n    assert 0\n"}
    )
    await editor.start(root, settings={"tests": {"onSave": False}})
    editor.save(root / "m.py")
    await asyncio.sleep(1.0)
    assert progress_messages(editor.client) == []
    result = await editor.run_tests()
    assert result == {"failed": 1, "passed": 0}
    assert editor.diagnostics(root / "tests/test_m.py")


async def test_multi_root_and_unusual_paths(editor: Editor, tmp_path: Path) -> None:
    calc = {
        "calc.py": "def add(a, b):\n    return a - b\n",
        "tests/test_calc.py": "from calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
    }
    first = write_files(tmp_path / "my wörk space", calc)
    second = write_files(
        tmp_path / "двa",
        {
            **calc,
            "calc.py": "def add(a, b):\n    return a * b\n",
            "pyproject.toml": '[tool.oci-lsp]\nmodel = "ds-6.7b"\ndevice = "cpu"\n',
        },
    )
    await editor.start(first, second)
    editor.save(first / "calc.py")
    editor.save(second / "calc.py")
    one = await editor.wait_for_diagnostics(first / "calc.py")
    two = await editor.wait_for_diagnostics(second / "calc.py")
    assert one[0].message.endswith("(got -1)")
    assert two[0].message.endswith("(got 2)")
    # oci.status of a file: its folder's model (from its settings) and its folder's tests.
    await editor.wait_idle()
    mine = await editor.command("oci.status", {"uri": (second / "calc.py").as_uri()})
    assert mine["model"]["id"] == "ds-6.7b" and mine["model"]["device"] == "cpu"
    assert (mine["tests"]["failed"], mine["tests"]["passed"]) == (1, 0)
    everything = await editor.command("oci.status", {})
    assert everything["model"]["id"] != "ds-6.7b"  # the first folder's: `auto`
    assert everything["tests"]["failed"] == 2
    # Removing a folder clears its diagnostics.
    editor.client.workspace_did_change_workspace_folders(
        types.DidChangeWorkspaceFoldersParams(
            types.WorkspaceFoldersChangeEvent(
                added=[], removed=[types.WorkspaceFolder(second.resolve().as_uri(), "two")]
            )
        )
    )
    await editor.wait_for_diagnostics(second / "calc.py", lambda d: not d)
    assert editor.diagnostics(first / "calc.py")


async def test_non_ascii_columns_in_utf16(editor: Editor, tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            "calc.py": "class 𠀋:\n    pass\n\n\ndef é𠀋add(a, b):  # 𝔘\n    return a - b\n",
            "tests/test_calc.py": "from calc import é𠀋add\n\ndef test_add():\n    s = '𝔘𝔘'; assert é𠀋add(1, 2) == 3\n",
        },
    )
    result = await editor.start(root)
    editor.save(root / "calc.py")
    calc = await editor.wait_for_diagnostics(root / "calc.py")
    # `é𠀋add` starts after "def "; its length is counted in the negotiated encoding:
    # UTF-16 by default (𠀋 is a surrogate pair), UTF-8 where the client prefers it (Neovim).
    encoding = result.capabilities.position_encoding or "utf-16"
    length = {"utf-16": 6, "utf-8": 9, "utf-32": 5}[encoding]
    assert calc[0].range.start.line == 4
    assert (calc[0].range.start.character, calc[0].range.end.character) == (4, 4 + length)
    test = await editor.wait_for_diagnostics(root / "tests/test_calc.py")
    assert test[0].range.start.character == 4


async def test_reopened_file_gets_current_diagnostics(editor: Editor, tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            "calc.py": "def add(a, b):\n    return 0\n",
            "tests/test_c.py": "from calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
        },
    )
    await editor.start(root)
    editor.open(root / "calc.py")
    editor.save(root / "calc.py")
    await editor.wait_for_diagnostics(root / "calc.py")
    await editor.wait_idle()
    editor.close(root / "calc.py")
    editor.client.diagnostics.clear()
    editor.open(root / "calc.py")
    diags = await editor.wait_for_diagnostics(root / "calc.py")
    assert diags[0].data["test"] == "tests/test_c.py::test_add"


async def test_another_runner_through_junit_xml(editor: Editor, tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            "calc.py": "def add(a, b):\n    return a - b\n\n\ndef boom():\n    return 1 / 0\n",
            "tests/test_c.py": """
                from calc import add, boom

                def test_add():
                    assert add(1, 2) == 3

                def test_boom():
                    assert boom() == 1
                """,
        },
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "--junitxml={junitxml}",
        "-o",
        "junit_family=xunit1",
    ]
    await editor.start(root, settings={"tests": {"command": command}})
    editor.save(root / "calc.py")
    calc = await editor.wait_for_diagnostics(root / "calc.py", lambda d: len(d) == 2)
    assert sorted((d.range.start.line, d.data["function"]) for d in calc) == [
        (0, "calc.add"),
        (4, "calc.boom"),
    ]
    tests = editor.diagnostics(root / "tests/test_c.py")
    assert sorted(d.range.start.line for d in tests) == [3, 6]


async def test_unknown_and_malformed_requests(editor: Editor, tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", {"m.py": "V = 1\n"})
    await editor.start(root)
    try:
        await editor.client.protocol.send_request_async("oci/noSuchMethod", {"x": 1})
    except Exception as exc:
        assert "noSuchMethod" in str(exc) or "not found" in str(exc).lower()
    else:
        raise AssertionError("an unknown method must get an error response")
    try:
        await editor.command("oci.noSuchCommand")
    except Exception as exc:
        assert "oci.noSuchCommand" in str(exc)
    else:
        raise AssertionError("an unknown command must get an error response")
    # Arguments of the wrong shape: an answer, not a crash.
    result = await editor.command("oci.runTests", "not an object")
    assert result == {"failed": 0, "passed": 0}
    # A message that is not JSON at all.
    writer = editor.client.protocol.writer
    assert writer is not None
    for body in (
        b"{this is not json",
        b'{"jsonrpc": "2.0", "id": 99, "method": "oci/x", "params": 7}',
    ):
        sent = writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        if asyncio.iscoroutine(sent):
            await sent
    status = await editor.command("oci.status")
    assert status["tests"]["running"] is False


async def test_preload_loads_the_model_at_startup_with_progress(
    editor: Editor, tmp_path: Path
) -> None:
    from tests.tiny_models import build_tiny_model

    model = build_tiny_model(tmp_path / "model")
    root = write_files(tmp_path / "ws", {"m.py": "V = 1\n"})
    await editor.start(
        root,
        init_options={"model": str(model), "device": "cpu", "generation": {"preload": True}},
    )

    async def state() -> str:
        status = await editor.command("oci.status")
        return str(status["model"]["state"])

    for _ in range(200):  # no generation was asked for: only preload can load it
        if await state() == "ready":
            break
        await asyncio.sleep(0.05)
    assert await state() == "ready"
    assert not editor.messages()


async def test_preload_of_a_missing_model_says_how_to_get_it(
    editor: Editor, tmp_path: Path
) -> None:
    root = write_files(tmp_path / "ws", {"m.py": "V = 1\n"})
    await editor.start(
        root, init_options={"model": "ds-1.3b", "device": "cpu", "generation": {"preload": True}}
    )
    await editor.wait_until(lambda: bool(editor.messages()), "a message")
    [message] = editor.messages()
    assert "could not be loaded" in message and "oci-lsp model pull ds-1.3b" in message
    assert (await editor.command("oci.status"))["version"]  # still serving


async def test_without_preload_the_model_waits_for_first_use(
    editor: Editor, tmp_path: Path
) -> None:
    from tests.tiny_models import build_tiny_model

    model = build_tiny_model(tmp_path / "model")
    root = write_files(tmp_path / "ws", {"m.py": "V = 1\n"})
    await editor.start(root, init_options={"model": str(model), "device": "cpu"})
    await editor.wait_idle()
    await asyncio.sleep(0.5)
    assert (await editor.command("oci.status"))["model"]["state"] == "not-loaded"
    assert not any(t == "Loading model" for _, t in progress_messages(editor.client))
