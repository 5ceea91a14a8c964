"""Tests that attack their runner: a test that kills its parent, daemons that leave the run's
session. Through the real server (and `oci-lsp --fix`), counting what is left by the
environment tag (OCI_LSP_RUN) that every process of a run carries."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from oci_lsp.testing.run_tags import RUN_TAG
from tests.conftest import WAIT, Editor, write_files
from tests.openai_server import ScriptedOpenAIServer
from tests.test_fix_e2e import answer, command, fix


def environ(pid: str) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return handle.read().split(b"\0")
    except OSError:
        return []


def alive(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def tagged(*needles: str) -> list[int]:
    """The live processes whose environment holds a variable that starts with each of needles
    ("NAME=value", or "NAME=" for any value)."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            env = environ(pid)
            if all(any(v.startswith(n.encode()) for v in env) for n in needles) and alive(pid):
                found.append(int(pid))
    return found


def tagged_by_run(mark: str) -> list[int]:
    """The live processes of some run (OCI_LSP_RUN=...) that carry mark too."""
    return tagged(f"{RUN_TAG}=", mark)


async def none_left(find: Callable[[], list[int]], why: str) -> None:
    """Poll (a generous bound, no timing asserted) until find() finds nothing."""
    deadline = time.monotonic() + WAIT
    while left := find():
        if time.monotonic() > deadline:
            raise AssertionError(f"{why}: processes {left} are still running")
        await asyncio.sleep(0.1)


# A test that starts two daemons and says where they are: one in a session of its own
# (start_new_session=True), one double-forked (its parent exits, it starts a session), both
# sleeping far longer than any test waits.
DAEMONS = """
    import contextlib, os, pathlib, subprocess, sys, time

    OUT = pathlib.Path(__file__).parent.parent / "daemons"

    def test_starts_daemons():
        subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
        )
        first = os.fork()
        if first == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(600)
            os._exit(0)
        os.waitpid(first, 0)
        with contextlib.suppress(OSError):  # the sandbox of --fix writes nowhere
            OUT.write_text(os.environ["OCI_LSP_RUN"])
    """


async def run_tag(editor: Editor, root: Path) -> str:
    path = root / "daemons"
    await editor.wait_until(lambda: path.exists() and path.read_text() != "", "the daemons")
    return f"{RUN_TAG}={path.read_text()}"


@pytest.mark.parametrize(
    "kill",
    [
        "os.kill(os.getppid(), signal.SIGKILL)",
        # Not seen by Python: the supervisor is really killed, and the server cleans up.
        "subprocess.run(['kill', '-9', str(os.getppid())])",
    ],
)
async def test_a_test_that_kills_its_parent_ends_only_its_run(
    editor: Editor, tmp_path: Path, kill: str
) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            "calc.py": "def add(a, b):\n    return a - b\n",
            "tests/test_a_calc.py": """
                from calc import add

                def test_add():
                    assert add(1, 2) == 3

                def test_fine():
                    assert add(2, 0) == 2
                """,
            "tests/test_b_kill.py": f"""
                import os, signal, subprocess, time

                def test_kills_its_parent():
                    {kill}
                    time.sleep(5)
                """,
        },
    )
    await editor.start(root)
    editor.save(root / "calc.py")
    diags = await editor.wait_for_diagnostics(root / "tests/test_b_kill.py")
    assert [d.code for d in diags] == ["test-error"]
    assert diags[0].data["test"] == "tests/test_b_kill.py::test_kills_its_parent"
    assert "SIGKILL" in diags[0].message and "parent" in diags[0].message
    calc = await editor.wait_for_diagnostics(root / "tests/test_a_calc.py")
    assert [(d.code, d.data["test"]) for d in calc] == [
        ("test-failed", "tests/test_a_calc.py::test_add")
    ]
    # The server is still there, and a next save runs again.
    status = await editor.wait_idle()
    assert status["tests"]["failed"] == 2
    (root / "tests/test_b_kill.py").write_text("def test_kills_its_parent():\n    pass\n")
    editor.save(root / "tests/test_b_kill.py")
    await editor.wait_for_diagnostics(root / "tests/test_b_kill.py", lambda d: not d)
    assert (await editor.wait_idle())["tests"]["failed"] == 1


async def test_daemons_of_a_run_end_with_it(editor: Editor, tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", {"m.py": "V = 1\n", "tests/test_d.py": DAEMONS})
    await editor.start(root)
    editor.save(root / "m.py")
    tag = await run_tag(editor, root)
    await editor.wait_idle()
    await none_left(lambda: tagged(tag), "the daemons of the run")
    assert (await editor.command("oci.status"))["tests"]["failed"] == 0


@pytest.fixture
async def own_server() -> AsyncIterator[tuple[LanguageClient, str]]:
    """A server of this test's own (it will be killed), every process it starts marked."""
    mark = f"OCI_LSP_TEST_SERVER={secrets.token_hex(6)}"
    name, _, value = mark.partition("=")
    config = ClientServerConfig(
        server_command=[sys.executable, "-m", "oci_lsp", "-v"],
        server_env={**os.environ, name: value},
    )
    client = await config.start()
    assert isinstance(client, LanguageClient)
    yield client, mark
    await client.stop()


HANGS_AFTER_DAEMONS = (
    DAEMONS
    + """
    def test_then_hangs():
        time.sleep(600)
    """
)


@pytest.mark.parametrize("end", ["shutdown", "kill"])
async def test_nothing_of_a_run_outlives_the_server(
    own_server: tuple[LanguageClient, str], tmp_path: Path, end: str
) -> None:
    client, mark = own_server
    editor = Editor(client, client_capabilities("visual-studio-code"))
    root = write_files(tmp_path / "ws", {"m.py": "V = 1\n", "tests/test_d.py": HANGS_AFTER_DAEMONS})
    await editor.start(root)
    editor.save(root / "m.py")
    tag = await run_tag(editor, root)  # the run goes on: it hangs in its next test
    assert tagged(tag) and tagged_by_run(mark)
    if end == "shutdown":
        await client.shutdown_session()
    else:
        server = client._server
        assert server is not None
        os.kill(server.pid, signal.SIGKILL)
        await server.wait()
    await none_left(lambda: tagged_by_run(mark), "the runs and standbys of the server")


def test_nothing_of_a_fix_outlives_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            "calc.py": "def add(a, b):\n    return a - b\n",
            "tests/test_calc.py": DAEMONS
            + """
    from calc import add

    def test_add():
        test_starts_daemons()
        assert add(1, 2) == 3
    """,
        },
    )
    mark = f"OCI_LSP_TEST_FIX={secrets.token_hex(6)}"
    monkeypatch.setenv(*mark.split("="))
    with ScriptedOpenAIServer(answer({"add": "def add(a, b):\n    return a + b\n"})) as model:
        done = fix(root, model)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "return a + b" in (root / "calc.py").read_text()
    deadline = time.monotonic() + WAIT
    while left := tagged_by_run(mark):
        assert time.monotonic() < deadline, f"processes {left} outlived oci-lsp --fix"
        time.sleep(0.1)


def test_nothing_of_a_killed_fix_outlives_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Killed while its first run hangs, after a test started daemons: the supervisor sees its
    # channel close and kills the run and the daemons.
    root = write_files(
        tmp_path / "ws",
        {"calc.py": "def add(a, b):\n    return a - b\n", "tests/test_d.py": HANGS_AFTER_DAEMONS},
    )
    mark = f"OCI_LSP_TEST_FIX={secrets.token_hex(6)}"
    monkeypatch.setenv(*mark.split("="))
    with ScriptedOpenAIServer(answer({})) as model:
        process = subprocess.Popen(
            command(root, model),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "CI": "1"},
        )
        try:
            deadline = time.monotonic() + WAIT
            while not (root / "daemons").exists() or not tagged_by_run(mark):
                assert time.monotonic() < deadline, "the daemons never started"
                time.sleep(0.1)
        finally:
            process.kill()
            process.wait()
    deadline = time.monotonic() + WAIT
    while left := tagged_by_run(mark):
        assert time.monotonic() < deadline, f"processes {left} outlived a killed oci-lsp --fix"
        time.sleep(0.1)
