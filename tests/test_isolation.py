"""The sandbox on its own: candidates in place without writing files, confinement, errors."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import threading
from pathlib import Path

import pytest

from oci_lsp.refine.isolation import CandidateRun, Limits, Sandbox, SandboxError
from tests.conftest import processes_with, write_files

WAIT = 120.0

CALC = "def add(a, b):\n    return a - b\n"
TEST = "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return write_files(tmp_path / "ws", {"calc.py": CALC, "tests/test_calc.py": TEST})


async def run(root: Path, source: str, limits: Limits | None = None) -> object:
    box = Sandbox(root, sys.executable)
    try:
        return await asyncio.wait_for(
            box.run(CandidateRun(root / "calc.py", source, ["tests"]), limits or Limits()), WAIT
        )
    finally:
        await box.close()


async def test_the_candidate_replaces_the_file_for_imports_only(workspace: Path) -> None:
    # A stale bytecode cache of the old source must not win over the candidate.
    import py_compile

    py_compile.compile(str(workspace / "calc.py"))
    outcome = await run(workspace, "def add(a, b):\n    return a + b\n")
    assert outcome.verdict == "passed"  # type: ignore[attr-defined]
    assert (workspace / "calc.py").read_text() == CALC


async def test_a_failure_shows_the_candidates_lines(workspace: Path) -> None:
    source = "def add(a, b):\n    # the candidate's own comment\n    raise ValueError('nope')\n"
    outcome = await run(workspace, source)
    failure = outcome.first_failure  # type: ignore[attr-defined]
    assert failure is not None and "ValueError: nope" in failure.longrepr
    assert "raise ValueError('nope')" in failure.longrepr  # from the candidate, not the disk


async def test_the_feedback_traceback_starts_at_the_tests_own_frame(workspace: Path) -> None:
    # pytest 9 prints native tracebacks whole (its own and pluggy's frames first): the model
    # would read thirty frames of pytest before the test's (pytest-dev/pytest#13023).
    (workspace / "tests" / "test_fixture.py").write_text(
        "import pytest\nfrom calc import add\n\n\n@pytest.fixture\ndef total():\n"
        "    return add(1, None)\n\n\ndef test_total(total):\n    assert total\n"
    )
    box = Sandbox(workspace, sys.executable)
    try:
        every = CandidateRun(workspace / "calc.py", CALC, ["tests"], stop_at_first_failure=False)
        outcome = await asyncio.wait_for(box.run(every, Limits()), WAIT)
    finally:
        await box.close()
    failures = {r.test_id: r.longrepr for r in outcome.reports if r.failed}
    for test_id, text in failures.items():
        assert "_pytest" not in text and "pluggy" not in text, text
        files = [line for line in text.splitlines() if line.lstrip().startswith("File ")]
        assert files and "tests" in files[0], (test_id, text)
    add = failures["tests/test_calc.py::test_add"]
    assert add.splitlines()[1].strip().startswith('File "') and "test_calc.py" in add
    assert add.rstrip().endswith("where -1 = add(1, 2)")
    # A fixture's error: from the fixture's frame down to the candidate's line.
    fixture = failures["tests/test_fixture.py::test_total"]
    assert "in total" in fixture and "return a - b" in fixture


async def test_no_network_but_loopback_inside(workspace: Path) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        server.settimeout(20)
        with contextlib.suppress(OSError):
            accepted.append(server.accept())

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    source = (
        "import socket\n\n"
        "def add(a, b):\n"
        f"    try:\n        socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "        return 'escaped'\n"
        "    except OSError:\n        pass\n"
        "    inner = socket.create_server(('127.0.0.1', 0))\n"
        "    socket.create_connection(inner.getsockname(), timeout=2).close()\n"
        "    return a + b\n"
    )
    outcome = await run(workspace, source)
    server.close()
    assert outcome.verdict == "passed", outcome.first_failure  # type: ignore[attr-defined]
    assert not accepted  # the editor's machine was never reached


async def test_a_collection_error_is_a_failure_with_its_text(workspace: Path) -> None:
    outcome = await run(workspace, "import no_such_module\n\ndef add(a, b):\n    return a + b\n")
    assert outcome.verdict == "failed"  # type: ignore[attr-defined]
    [error] = outcome.collection_errors  # type: ignore[attr-defined]
    assert "no_such_module" in error.message


async def test_an_interpreter_without_pytest_says_so(workspace: Path, tmp_path: Path) -> None:
    venv = tmp_path / "bare"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "venv", "--without-pip", str(venv)
    )
    await proc.wait()
    box = Sandbox(workspace, str(venv / "bin" / "python"))
    with pytest.raises(SandboxError, match="pytest is not installed"):
        await asyncio.wait_for(box.run(CandidateRun(workspace / "calc.py", CALC, ["tests"])), WAIT)
    await box.close()


async def test_a_missing_interpreter_says_which_setting(workspace: Path) -> None:
    box = Sandbox(workspace, str(workspace / "no-python"))
    with pytest.raises(SandboxError, match=r"tests\.python"):
        await box.start()


async def test_a_fork_bomb_meets_the_process_limit_even_as_root(workspace: Path) -> None:
    # RLIMIT_NPROC does not apply to root (CI and containers): a pids cgroup does instead.
    marker = "765432.25"  # a sleep no other process runs
    bomb = (
        "import subprocess\n\n"
        "def add(a, b):\n"
        "    for _ in range(64):\n"
        f"        subprocess.Popen(['sleep', '{marker}'])\n"
        "    return a + b\n"
    )
    box = Sandbox(workspace, sys.executable)
    try:
        outcome = await asyncio.wait_for(
            box.run(CandidateRun(workspace / "calc.py", bomb, ["tests"]), Limits(processes=16)),
            WAIT,
        )
        cgroup = box._cgroup
    finally:
        await box.close()
    failure = outcome.first_failure  # type: ignore[attr-defined]
    assert failure is not None, outcome
    assert "BlockingIOError" in failure.longrepr or "Resource temporarily" in failure.longrepr
    assert outcome.isolation.get("processes") == 16  # type: ignore[attr-defined]
    for _ in range(50):
        if not processes_with(marker):
            break
        await asyncio.sleep(0.1)
    assert not processes_with(marker)
    if cgroup is not None:  # root: the limit was the worker's cgroup, gone with it
        assert not os.path.exists(cgroup)


async def test_python_processes_the_tests_start_import_the_candidate(tmp_path: Path) -> None:
    """A CLI test (`python -m pkg`, `python -c`) checks the candidate too, in a single run and
    in a round's swapped children."""
    root = write_files(
        tmp_path / "ws",
        {
            "calc.py": CALC,
            "tests/test_cli.py": """
                import subprocess, sys

                def test_in_a_subprocess():
                    out = subprocess.run(
                        [sys.executable, "-c", "import calc; print(calc.add(1, 2))"],
                        capture_output=True, text=True, check=True,
                    )
                    assert out.stdout.strip() == "3", out.stderr
                """,
        },
    )
    right, wrong = "def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a * b\n"
    box = Sandbox(root, sys.executable)
    try:
        alone = await asyncio.wait_for(
            box.run(CandidateRun(root / "calc.py", right, ["tests"])), WAIT
        )
        runs = [CandidateRun(root / "calc.py", s, ["tests"]) for s in (wrong, right)]
        rounds = await asyncio.wait_for(box.run_round(runs, CALC, "add"), WAIT)
    finally:
        await box.close()
    assert alone.verdict == "passed", alone.first_failure
    assert [o.verdict for o in rounds] == ["failed", "passed"]
    assert (root / "calc.py").read_text() == CALC


async def running(marker: str, count: int = 1) -> bool:
    """Whether `count` processes whose command line holds marker start (polled)."""
    for _ in range(int(WAIT * 10)):
        if len(processes_with(marker)) >= count:
            return True
        await asyncio.sleep(0.1)
    return False


async def gone(marker: str) -> bool:
    """Whether the processes whose command line holds marker end (a generous bound, polled)."""
    for _ in range(int(WAIT * 10)):
        if not processes_with(marker):
            return True
        await asyncio.sleep(0.1)
    return False


async def test_daemons_and_their_children_end_with_the_candidate(workspace: Path) -> None:
    # A daemon in a session of its own with a child of its own: the worker (their subreaper)
    # kills the daemon, then the child re-parented to it, while the worker stays.
    marker = "765432.31"
    source = (
        "import subprocess\n\n"
        "def add(a, b):\n"
        f"    subprocess.Popen(['sh', '-c', 'setsid sleep {marker} & sleep {marker}; :'],"
        " start_new_session=True)\n"
        "    return a + b\n"
    )
    box = Sandbox(workspace, sys.executable)
    try:
        run = CandidateRun(workspace / "calc.py", source, ["tests"])
        outcome = await asyncio.wait_for(box.run(run), WAIT)
        assert outcome.verdict == "passed"
        assert await gone(marker), processes_with(marker)
    finally:
        await box.close()


async def test_a_worker_killed_under_its_candidates_leaves_nothing(workspace: Path) -> None:
    # The OOM killer, say: the worker cannot clean up, the server kills what carries its tag.
    # (A candidate's own test cannot signal the worker where Landlock scopes signals.)
    marker = "765432.37"
    source = (
        "import os, subprocess, time\n\n"
        "def add(a, b):\n"
        f"    subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
        "    middle = os.fork()\n"
        "    if middle == 0:\n"
        "        os.setsid()\n"
        f"        subprocess.Popen(['sleep', '{marker}'])\n"
        "        os._exit(0)\n"
        "    os.waitpid(middle, 0)\n"
        "    time.sleep(60)\n"
        "    return a + b\n"
    )
    box = Sandbox(workspace, sys.executable)
    try:
        run = asyncio.ensure_future(box.run(CandidateRun(workspace / "calc.py", source, ["tests"])))
        assert await running(marker, 2), processes_with(marker)
        assert box._proc is not None
        os.kill(box._proc.pid, signal.SIGKILL)
        with contextlib.suppress(SandboxError):
            await asyncio.wait_for(run, WAIT)
        assert await gone(marker), processes_with(marker)
    finally:
        await box.close()


async def test_a_worker_that_never_confirms_a_kill_is_replaced(workspace: Path) -> None:
    # A stuck worker (stopped here) never says that the timed-out candidate ended: the wait
    # for it used to hang the fix for good. The candidate is an error, the worker is replaced
    # and the next candidate is verified by the new one.
    marker = "765432.41"
    source = (
        "import subprocess\n\ndef add(a, b):\n"
        f"    subprocess.run(['sleep', '{marker}'])\n    return a + b\n"
    )
    box = Sandbox(workspace, sys.executable)
    try:
        await box.start()
        assert box._proc is not None
        stuck = box._proc.pid
        run = CandidateRun(workspace / "calc.py", source, ["tests"])
        hung = asyncio.ensure_future(box.run(run, Limits(timeout=2.0)))
        assert await running(marker), processes_with(marker)
        os.kill(stuck, signal.SIGSTOP)
        outcome = await asyncio.wait_for(hung, WAIT)
        assert outcome.verdict == "error" and "worker" in outcome.message, outcome
        assert await gone(marker), processes_with(marker)
        fixed = CandidateRun(workspace / "calc.py", CALC.replace("a - b", "a + b"), ["tests"])
        again = await asyncio.wait_for(box.run(fixed), WAIT)
        assert again.verdict == "passed", again
        assert box._proc is not None and box._proc.pid != stuck
    finally:
        await box.close()
