"""When runs happen, which tests go first, and how runs end: through the real server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import Editor, progress_messages, write_files


def run_begins(editor: Editor) -> int:
    return sum(1 for kind, _ in progress_messages(editor.client) if kind == "begin")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes; check its state.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


async def wait_for_file(editor: Editor, path: Path) -> str:
    await editor.wait_until(lambda: path.exists() and path.read_text().strip() != "", path.name)
    return path.read_text().strip()


AFFECTED = {
    "fast.py": "def double(x):\n    return 2 * x + 1\n",
    "slow.py": "def ident(x):\n    return x\n",
    # Alphabetically first, so plain pytest order would run it first; it waits for a go file.
    "tests/test_a_slow.py": """
        import os, time
        from slow import ident

        def test_waits_for_go():
            go = os.path.join(os.path.dirname(__file__), "..", "go")
            for _ in range(600):
                if os.path.exists(go):
                    break
                time.sleep(0.05)
            assert ident(1) == 1
        """,
    "tests/test_z_fast.py": """
        from fast import double

        def test_double():
            assert double(2) == 4
        """,
}


async def test_affected_tests_run_first(editor: Editor, tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", AFFECTED)
    await editor.start(root)
    editor.save(root / "fast.py")
    # The failure of the test that imports fast.py shows while the slow suite still waits.
    diags = await editor.wait_for_diagnostics(root / "tests/test_z_fast.py")
    assert diags[0].data["function"] == "fast.double"
    assert not (root / "go").exists()
    (root / "go").write_text("go")
    status = await editor.wait_idle()
    assert {k: v for k, v in status["tests"].items() if k != "python"} == {
        "running": False,
        "failed": 1,
        "passed": 1,
    }


ORDER_DEPENDENT = {
    "app.py": "def value():\n    return 1\n",
    "shared.py": "READY = []\nPOLLUTED = []\n",
    # pytest's order runs these first: one sets up state a later test needs, one pollutes it.
    "tests/test_a_setup.py": "import shared\n\ndef test_setup():\n    shared.READY.append(1)\n",
    "tests/test_b_polluter.py": "import shared\n\ndef test_pollute():\n    shared.POLLUTED.append(1)\n",
    # The two tests the saved app.py affects: alone, the first fails and the second passes.
    "tests/test_c_needs_setup.py": """
        import shared
        from app import value

        def test_needs_setup():
            assert shared.READY and value() == 1
        """,
    "tests/test_d_needs_clean.py": """
        import shared
        from app import value

        def test_needs_clean_state():
            assert not shared.POLLUTED and value() == 1
        """,
}


def plain_pytest_failures(root: Path) -> set[str]:
    """The failing tests of one plain `pytest` run in the project's own order."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    return {line.split()[1] for line in result.stdout.splitlines() if line.startswith("FAILED ")}


async def test_a_run_ends_with_what_plain_pytest_reports(editor: Editor, tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", ORDER_DEPENDENT)
    await editor.start(root)
    editor.save(root / "app.py")
    await editor.wait_until(
        lambda: any(kind == "end" for kind, _ in progress_messages(editor.client)), "the run"
    )
    status = await editor.wait_idle()
    shown = {
        d.data["test"]
        for name in ("tests/test_c_needs_setup.py", "tests/test_d_needs_clean.py")
        for d in editor.diagnostics(root / name)
    }
    assert (
        shown
        == plain_pytest_failures(root)
        == {"tests/test_d_needs_clean.py::test_needs_clean_state"}
    )
    assert (status["tests"]["failed"], status["tests"]["passed"]) == (1, 3)
    # The affected tests ran first, on their own, before the ordered run confirmed them.
    reports = [m for kind, m in progress_messages(editor.client) if kind == "report"]
    assert any(m and m.startswith("affected tests: ") for m in reports), reports
    assert [m for kind, m in progress_messages(editor.client) if kind == "end"] == [
        "4 tests run, 1 failed"
    ]


async def test_a_short_suite_runs_once_in_its_order(editor: Editor, tmp_path: Path) -> None:
    """Once an ordered run showed the suite takes under SPLIT_MIN_SECONDS, a save runs it once:
    running the affected tests first would only cost a second start-up."""
    root = write_files(tmp_path / "ws", ORDER_DEPENDENT)
    await editor.start(root)
    for _ in range(2):
        begun = sum(1 for kind, _ in progress_messages(editor.client) if kind == "end")
        editor.save(root / "app.py")
        await editor.wait_until(
            lambda begun=begun: (
                sum(1 for k, _ in progress_messages(editor.client) if k == "end") > begun
            ),
            "the run",
        )
    reports = [m or "" for kind, m in progress_messages(editor.client) if kind in ("report", "end")]
    second = reports[reports.index("4 tests run, 1 failed") + 1 :]
    assert second and not any(m.startswith("affected tests: ") for m in second), second
    assert second[-1] == "4 tests run, 1 failed"


async def test_a_module_most_tests_import_runs_the_suite_once(
    editor: Editor, tmp_path: Path
) -> None:
    """The affected files are most of the suite: running them first would cost about a whole
    run more, so the save runs the suite once, in its order."""
    files = {
        "core.py": "def value():\n    return 1\n",
        **{
            f"tests/test_{n}.py": f"from core import value\n\ndef test_{n}():\n    assert value() == 2\n"
            for n in ("a", "b")
        },
        "tests/test_other.py": "def test_other():\n    pass\n",
    }
    root = write_files(tmp_path / "ws", files)
    await editor.start(root)
    editor.save(root / "core.py")
    await editor.wait_until(
        lambda: any(kind == "end" for kind, _ in progress_messages(editor.client)), "the run"
    )
    shown = [m or "" for kind, m in progress_messages(editor.client) if kind in ("report", "end")]
    assert not any(m.startswith("affected tests: ") for m in shown), shown
    assert shown[-1] == "3 tests run, 2 failed"


async def test_scope_affected_runs_only_the_affected_tests(editor: Editor, tmp_path: Path) -> None:
    files = dict(AFFECTED)
    files["tests/test_a_slow.py"] = "from slow import ident\n\ndef test_ident():\n    assert 0\n"
    root = write_files(tmp_path / "ws", files)
    await editor.start(root, init_options={"tests": {"scope": "affected"}})
    editor.save(root / "fast.py")
    await editor.wait_for_diagnostics(root / "tests/test_z_fast.py")
    status = await editor.wait_idle()
    # test_a_slow fails too, but does not import fast.py: it did not run.
    assert status["tests"]["failed"] == 1
    assert not editor.diagnostics(root / "tests/test_a_slow.py")


async def test_quick_saves_give_one_run(editor: Editor, tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "ws", {"a.py": "X = 1\n", "tests/test_a.py": "def test_x():\n    assert 0\n"}
    )
    await editor.start(root)
    for _ in range(5):  # as "save all" does: a burst
        editor.save(root / "a.py")
    await editor.wait_for_diagnostics(root / "tests/test_a.py")
    await editor.wait_idle()
    await asyncio.sleep(1.0)  # the file-system echo of the saves must not start another run
    assert run_begins(editor) == 1


async def test_changes_outside_the_editor_run_the_tests(editor: Editor, tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            "calc.py": "def add(a, b):\n    return a + b\n",
            "tests/test_c.py": "from calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
        },
    )
    await editor.start(root)
    await asyncio.sleep(0.5)  # let the watcher start
    # As `git checkout` or a formatter would: the file changes, no didSave.
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    diags = await editor.wait_for_diagnostics(root / "calc.py")
    assert diags[0].data["function"] == "calc.add"
    # Files in ignored folders do not trigger runs.
    await editor.wait_idle()
    before = run_begins(editor)
    (root / ".venv" / "lib").mkdir(parents=True)
    (root / ".venv" / "lib" / "x.py").write_text("X = 1\n")
    (root / "__pycache__").mkdir(exist_ok=True)
    (root / "__pycache__" / "y.py").write_text("Y = 1\n")
    await asyncio.sleep(1.5)
    assert run_begins(editor) == before


async def test_a_new_save_kills_the_stale_run(editor: Editor, tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            "m.py": "V = 1\n",
            "tests/test_hang.py": """
                import os, time, pathlib

                def test_hangs():
                    out = pathlib.Path(__file__).parent.parent / "pids"
                    with open(out, "a") as handle:
                        handle.write(f"{os.getpid()}\\n")
                    time.sleep(600)
                """,
        },
    )
    await editor.start(root)
    editor.save(root / "m.py")
    pids = root / "pids"
    first = int((await wait_for_file(editor, pids)).splitlines()[0])
    assert pid_alive(first)
    editor.save(root / "m.py")
    await editor.wait_until(lambda: not pid_alive(first), "the stale run to be killed")
    await editor.wait_until(lambda: len(pids.read_text().split()) == 2, "the new run")


async def test_timeout_gives_a_test_timeout_diagnostic(editor: Editor, tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            "m.py": "V = 1\n",
            "tests/test_t.py": """
                import time

                def test_fine():
                    assert True

                def test_hangs():
                    time.sleep(600)
                """,
        },
    )
    await editor.start(root, init_options={"tests": {"timeout": 3}})
    editor.save(root / "m.py")
    diags = await editor.wait_for_diagnostics(root / "tests/test_t.py")
    assert [d.code for d in diags] == ["test-timeout"]
    assert diags[0].data["test"] == "tests/test_t.py::test_hangs"
    assert "3 s" in diags[0].message
    assert diags[0].range.start.line == 5  # the test's def line
    await editor.wait_until(
        lambda: any("tests.timeout" in m for m in editor.messages()), "the timeout message"
    )


async def test_os_exit_and_forked_children(editor: Editor, tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            "m.py": "V = 1\n",
            "tests/test_a_fork.py": """
                import os, time, pathlib

                def test_forks_a_child_that_never_ends():
                    pid = os.fork()
                    if pid == 0:
                        time.sleep(600)
                        os._exit(0)
                    (pathlib.Path(__file__).parent.parent / "child").write_text(str(pid))
                """,
            "tests/test_b_exit.py": """
                import os

                def test_exits():
                    os._exit(3)
                """,
        },
    )
    await editor.start(root)
    editor.save(root / "m.py")
    diags = await editor.wait_for_diagnostics(root / "tests/test_b_exit.py")
    assert diags[0].code == "test-error"
    assert "exited with status 3" in diags[0].message
    await editor.wait_idle()
    child = int((root / "child").read_text())
    await editor.wait_until(lambda: not pid_alive(child), "the forked child to be killed")
    # The server is still there and answers.
    assert (await editor.command("oci.status"))["tests"]["failed"] == 1


async def test_megabytes_of_output_and_invalid_utf8(editor: Editor, tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            "m.py": "V = 1\n",
            "tests/test_noise.py": """
                import os, sys

                def test_loud():
                    print("x" * 5_000_000)
                    os.write(1, b"\\xff\\xfe invalid \\xc3\\x28 utf-8\\n" * 1000)
                    sys.stderr.write("y" * 1_000_000)
                    assert 1 == 2

                def test_bytes_in_message():
                    assert b"\\xff\\xfe" == "é"
                """,
        },
    )
    await editor.start(root)
    editor.save(root / "m.py")
    diags = await editor.wait_for_diagnostics(root / "tests/test_noise.py", lambda d: len(d) == 2)
    for diag in diags:
        assert len(diag.message) < 300
        assert len(diag.data["failure"]) < 50_000
    loud = next(d for d in diags if "test_loud" in d.message)
    assert loud.message.endswith("assert 1 == 2")


async def test_pytest_missing_says_so_once(editor: Editor, tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "ws",
        {"m.py": "V = 1\n", "tests/test_m.py": "def test_fail():\n    assert 0\n"},
    )
    # A virtualenv without pytest, as the workspace's own interpreter.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "venv", "--without-pip", str(root / ".venv")
    )
    assert await proc.wait() == 0
    await editor.start(root)
    editor.save(root / "m.py")
    await editor.wait_until(
        lambda: any("pytest is not installed" in m for m in editor.messages()), "message"
    )
    # One message that names the interpreter and why it was chosen.
    own = root.resolve() / ".venv" / "bin" / "python"
    [message] = editor.messages()
    assert message.startswith(f"oci-lsp: pytest is not installed for {own} (`.venv` in the folder)")
    await editor.wait_idle()
    editor.save(root / "m.py")
    await asyncio.sleep(1.0)
    await editor.wait_idle()
    assert sum("pytest is not installed" in m for m in editor.messages()) == 1
    # Nothing ran again until the settings change. (A run that ends before the client has
    # acknowledged the progress token shows no progress at all: 0 or 1 begins.)
    assert run_begins(editor) <= 1
    # Point tests.python at an interpreter with pytest: the tests run again.
    editor.client.set_configuration({"tests": {"python": sys.executable}}, section="oci")
    from lsprotocol import types

    editor.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings=None)
    )
    await asyncio.sleep(0.3)
    editor.save(root / "m.py")
    await editor.wait_for_diagnostics(root / "tests/test_m.py")


async def test_no_tests_is_quiet(editor: Editor, tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", {"m.py": "V = 1\n"})
    await editor.start(root)
    editor.save(root / "m.py")
    await asyncio.sleep(0.5)
    status = await editor.wait_idle()
    assert {k: v for k, v in status["tests"].items() if k != "python"} == {
        "running": False,
        "failed": 0,
        "passed": 0,
    }
    assert editor.messages() == []


async def test_cancelling_the_progress_stops_the_run(editor: Editor, tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            "m.py": "V = 1\n",
            "tests/test_hang.py": """
                import os, time, pathlib

                def test_hangs():
                    (pathlib.Path(__file__).parent.parent / "pid").write_text(str(os.getpid()))
                    time.sleep(600)
                """,
        },
    )
    await editor.start(root)
    editor.save(root / "m.py")
    pid = int(await wait_for_file(editor, root / "pid"))
    await editor.wait_until(lambda: bool(editor.client.progress_reports), "progress")
    token = next(iter(editor.client.progress_reports))
    from lsprotocol import types

    editor.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token))
    await editor.wait_until(lambda: not pid_alive(pid), "the cancelled run to be killed")
    status = await editor.wait_idle()
    assert status["tests"]["running"] is False
    await editor.wait_until(
        lambda: progress_messages(editor.client)[-1][0] == "end", "the progress to end"
    )


async def test_results_stream_while_the_run_goes_on(editor: Editor, tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            "m.py": "V = 1\n",
            "tests/test_stream.py": """
                import os, time

                def test_a_fails_first():
                    assert 1 == 2

                def test_b_waits_for_go():
                    go = os.path.join(os.path.dirname(__file__), "..", "go")
                    for _ in range(600):
                        if os.path.exists(go):
                            break
                        time.sleep(0.05)
                """,
        },
    )
    await editor.start(root, init_options={"tests": {"scope": "all"}})
    editor.save(root / "m.py")
    # One pytest process: the first failure is published while the second test still runs.
    diags = await editor.wait_for_diagnostics(root / "tests/test_stream.py")
    assert diags[0].data["test"] == "tests/test_stream.py::test_a_fails_first"
    assert (await editor.command("oci.status"))["tests"]["running"] is True
    (root / "go").write_text("go")
    status = await editor.wait_idle()
    assert {k: v for k, v in status["tests"].items() if k != "python"} == {
        "running": False,
        "failed": 1,
        "passed": 1,
    }
