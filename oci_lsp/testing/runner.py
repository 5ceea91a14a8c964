"""Run a workspace's tests in a subprocess and stream what happens.

pytest runs in the workspace's own interpreter with our plugin (pytest_plugin/), which writes
one JSON event per test to a pipe, so the first failures are known long before the suite ends.
Any other runner is run as given and read back from its JUnit XML at the end.

The project's own pytest options stay as they are; what they would make a run write into the
workspace (coverage data, reports, benchmark storage) or do that does not fit (xdist workers,
a new random order on every save, a timeout that ends the whole run) is turned off or moved
into a scratch directory of the run by the plugin (oci_lsp_options), which says what it changed.

The run is its own process group: a timeout, a cancel (a newer save) or the end of the run
kills the whole group, so a test that forked a child that never ends leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from oci_lsp.testing.interpreter import pytest_missing_message
from oci_lsp.testing.junit import parse_junit_xml
from oci_lsp.testing.results import CollectionError, Frame, FunctionRef, TestReport
from oci_lsp.testing.summary import summarize

log = logging.getLogger(__name__)

PLUGIN_DIR = Path(__file__).parent / "pytest_plugin"
PLUGIN_NAME = "oci_lsp_pytest"
_OUTPUT_TAIL = 64 * 1024
_EVENT_LIMIT = 16 * 1024 * 1024
EVENT_TURN = 0.01  # the longest the events of a run hold the event loop at a time
BIG_EVENT = 256 * 1024  # an event line this long is parsed in a thread
JUNIT_PLACEHOLDER = "{junitxml}"
_PYTEST_MISSING = re.compile(r"No module named '?pytest'?$", re.MULTILINE)


class RunListener(Protocol):
    """Receives results while a run goes on (called on the event loop)."""

    def collected(self, count: int) -> None: ...
    def started(self, test_id: str) -> None: ...
    def report(self, report: TestReport) -> None: ...
    def collection_error(self, error: CollectionError) -> None: ...
    def configured(self, changes: Sequence[str], seed: int | None) -> None:
        """What the plugin changed in the project's options for this run (short notes for
        the user), and pytest-randomly's seed when it is installed."""


@dataclass(frozen=True)
class RunSpec:
    root: Path  # the working directory; pytest finds its rootdir and config from here
    python: str  # the interpreter that runs pytest
    python_reason: str = ""  # why that one (testing/interpreter.py), for the messages
    selection: Sequence[str] = ()  # files or node ids; empty: what pytest collects by default
    ignore: Sequence[str] = ()  # directories left out (`--ignore`): projects of their own
    timeout: float = 300.0
    command: Sequence[str] | None = None  # another runner that writes JUnit XML
    seed: int | None = None  # pytest-randomly's seed, unless the project's options give one


RunStatus = Literal["completed", "timeout", "crashed", "failed-to-start"]


@dataclass
class RunResult:
    status: RunStatus
    exit_code: int | None = None
    message: str | None = None  # for the user, when the run itself went wrong
    output_tail: str = ""
    seen: set[str] = field(default_factory=set)  # test ids that reported an outcome
    pytest_missing: bool = False
    changes: list[str] = field(default_factory=list)  # what was changed in the options
    seed: int | None = None  # pytest-randomly's seed in this run
    stopped: str | None = None  # why the run stopped before its end (-x, --maxfail)


def pytest_args(spec: RunSpec) -> list[str]:
    """pytest's arguments for a run (after `python -m pytest`)."""
    return [
        "-p",
        PLUGIN_NAME,
        "-p",
        "no:cacheprovider",  # never write .pytest_cache into the user's tree on every save
        "--continue-on-collection-errors",  # one broken file must not hide every other result
        "-q",
        "--no-header",
        "-o",
        "console_output_style=classic",
        *(f"--ignore={path}" for path in spec.ignore),
        *spec.selection,
    ]


def pytest_argv(spec: RunSpec) -> list[str]:
    """The equivalent cold command line of a run; what the benchmark compares against."""
    return [spec.python, "-m", "pytest", *pytest_args(spec)]


# A standby interpreter runs this: the slow imports happen before anyone saves, then it waits
# for one request (pytest's arguments and environment) and becomes that run, as
# `python -m pytest` would. Nothing of the workspace is imported before the request.
_STANDBY = """\
import json, os, sys
import pytest
line = sys.stdin.readline()
if not line.strip():
    raise SystemExit(0)
request = json.loads(line)
os.environ.update(request["env"])
sys.argv = ["pytest", *request["args"]]
raise SystemExit(pytest.console_main())
"""


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(PLUGIN_DIR) + (os.pathsep + old if old else "")
    env.setdefault("PYTHONIOENCODING", "utf-8")
    env["PY_COLORS"] = "0"
    env.update(extra)
    return env


class OutputTail:
    """The last bytes of a process's output: enough to explain a failure, never megabytes."""

    def __init__(self) -> None:
        self.data = bytearray()

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > 2 * _OUTPUT_TAIL:
            del self.data[: len(self.data) - _OUTPUT_TAIL]

    def text(self) -> str:
        return bytes(self.data[-_OUTPUT_TAIL:]).decode("utf-8", errors="replace")

    async def pump(self, fd: int) -> None:
        """Keep what arrives on a pipe (its read end is taken) until it closes."""
        reader = await read_pipe(fd)
        while chunk := await reader.read(65536):
            self.add(chunk)


async def read_pipe(fd: int, limit: int = 65536) -> asyncio.StreamReader:
    """An asyncio reader over a pipe's read end (which it takes ownership of)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
    )
    return reader


class _Child:
    """A process in a group of its own, its output kept as a tail, its exit awaited.

    asyncio's own subprocess `wait()` (before Python 3.12) returns only once every pipe is
    closed, and a test's forked child holds them open; so the exit is awaited in a thread of
    its own, and the pipes are read separately.
    """

    def __init__(
        self,
        argv: list[str],
        cwd: Path,
        env: dict[str, str],
        pass_fds: tuple[int, ...],
        stdin: int = subprocess.DEVNULL,
    ):
        self.popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=pass_fds,
            start_new_session=True,
        )
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int] = loop.create_future()
        self.tail = OutputTail()

        def settle(code: int) -> None:
            if not self.exited.done():
                self.exited.set_result(code)

        def wait() -> None:
            code = self.popen.wait()
            # The server may be shutting down with the run still going: its loop is gone and
            # nobody awaits the exit any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, code)

        threading.Thread(target=wait, name=f"wait-{self.popen.pid}", daemon=True).start()
        assert self.popen.stdout is not None
        self._readers: list[asyncio.Task[None]] = []
        # The tail reads a duplicate; Popen's own file object is closed at once.
        self.add_reader(self.tail.pump(os.dup(self.popen.stdout.fileno())))
        self.popen.stdout.close()

    def add_reader(self, coro: Any) -> None:
        self._readers.append(asyncio.ensure_future(coro))

    async def run(self, timeout: float) -> bool:
        """Wait for the exit; True when it timed out. The group is killed either way."""
        timed_out = False
        try:
            await asyncio.wait_for(asyncio.shield(self.exited), timeout=timeout)
        except asyncio.TimeoutError:
            timed_out = True
        except asyncio.CancelledError:
            self.kill()
            raise
        self.kill()  # the children a test forked, and the run itself on timeout
        await self.exited
        # Readers end when the last holder of the pipes is gone; one that left the group
        # may keep them open, so don't wait forever.
        _, pending = await asyncio.wait(self._readers, timeout=2.0)
        for task in pending:
            task.cancel()
        return timed_out

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)

    @property
    def returncode(self) -> int | None:
        return self.exited.result() if self.exited.done() else None


async def run_tests(
    spec: RunSpec, listener: RunListener, launcher: PytestLauncher | None = None
) -> RunResult:
    """Run the tests of spec, telling listener as results come; a launcher keeps pytest warm."""
    if spec.command:
        return await _run_junit(spec, listener)
    return await _run_pytest(spec, listener, launcher)


class EventReader:
    """Turns the plugin's JSON events into result records for the listener."""

    def __init__(self, listener: RunListener, root: Path) -> None:
        self.listener = listener
        self.rootdir = root
        self.running: dict[str, tuple[str | None, int | None]] = {}
        self.seen: set[str] = set()
        self.failed_setup: set[str] = set()
        self.started = False  # the plugin said hello: pytest itself is there
        self.collection_errors = 0
        self.changes: list[str] = []
        self.seed: int | None = None
        self.stopped: str | None = None

    def _abs(self, path: str | None) -> str | None:
        if not path:
            return None
        return os.path.normpath(os.path.join(self.rootdir, path))

    async def pump(self, fd: int) -> None:
        """Handle the events that arrive on a pipe (its read end is taken) until it closes."""
        reader = await read_pipe(fd, limit=_EVENT_LIMIT)
        turn_ends = time.monotonic() + EVENT_TURN
        while line := await reader.readline():
            try:
                if len(line) > BIG_EVENT:  # a failure text of megabytes: parsed off the loop
                    event = await asyncio.to_thread(json.loads, line)
                else:
                    event = json.loads(line)
                self.handle(event)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("unreadable event from the pytest plugin: %s", exc)
            # readline() returns without yielding while lines are buffered, and a suite of
            # thousands of failures keeps the buffer full: give the loop back now and then,
            # so requests (oci.status) and timers (tests.timeout) are not kept waiting.
            if time.monotonic() >= turn_ends:
                await asyncio.sleep(0)
                turn_ends = time.monotonic() + EVENT_TURN

    def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("e")
        if kind == "session":
            self.started = True
            self.rootdir = Path(event["rootdir"])
            self.changes = [str(c) for c in event.get("changes") or []]
            seed = event.get("seed")
            self.seed = seed if isinstance(seed, int) else None
            self.listener.configured(self.changes, self.seed)
        elif kind == "collected":
            self.listener.collected(int(event["count"]))
        elif kind == "start":
            nodeid = event["nodeid"]
            line = event.get("line")
            self.running[nodeid] = (
                self._abs(event.get("path")),
                None if line is None else line + 1,
            )
            self.listener.started(nodeid)
        elif kind == "result":
            self._result(event)
        elif kind == "collect-error":
            self._collect_error(event)
        elif kind == "finished":
            self.stopped = event.get("stopped") or None

    def _result(self, event: dict[str, Any]) -> None:
        nodeid = event["nodeid"]
        when = event.get("when")
        if when == "teardown" and (nodeid in self.failed_setup or event["outcome"] != "error"):
            return
        if event["outcome"] == "error" and when == "setup":
            self.failed_setup.add(nodeid)
        self.running.pop(nodeid, None)
        self.seen.add(nodeid)
        line = event.get("line")
        frames = [Frame(str(p), int(n), str(f)) for p, n, f in event.get("frames") or []]
        called = event.get("called")
        report = TestReport(
            test_id=nodeid,
            outcome=event["outcome"],
            path=self._abs(event.get("path")),
            line=None if line is None else int(line) + 1,
            longrepr=event.get("longrepr") or "",
            frames=frames,
            called=FunctionRef(**called) if called else None,
            duration=float(event.get("duration") or 0.0),
            doctest=bool(event.get("doctest")),
        )
        if report.failed:
            report.message = summarize(
                event.get("statement"), event.get("type") or "Error", event.get("message") or ""
            )
            if event.get("subtest"):  # the first failed subtest of the test (the plugin's)
                report.message = f"{event['subtest']}: {report.message}"
        self.listener.report(report)

    def _collect_error(self, event: dict[str, Any]) -> None:
        self.collection_errors += 1
        path = self._abs(event.get("path")) or str(self.rootdir)
        frames = [Frame(str(p), int(n), str(f)) for p, n, f in event.get("frames") or []]
        line = event.get("line")
        if line is None:
            # The deepest frame of the workspace outside site-packages: the line at fault.
            for frame in reversed(frames):
                if frame.path.startswith(str(self.rootdir)) and "site-packages" not in frame.path:
                    path, line = frame.path, frame.line
                    break
        message = event.get("message") or ""
        error = CollectionError(
            path=path,
            line=line,
            message=f"{event.get('type')}: {message}" if message else str(event.get("type")),
            longrepr=event.get("longrepr") or "",
            collector=event.get("collector") or path,
        )
        self.listener.collection_error(error)

    def unfinished(self, outcome: Literal["timeout", "error"], why: str) -> None:
        """Tests that started and never reported: they hung (timeout) or killed pytest."""
        for nodeid, (path, line) in list(self.running.items()):
            self.seen.add(nodeid)
            self.listener.report(
                TestReport(
                    test_id=nodeid,
                    outcome=outcome,
                    path=path,
                    line=line,
                    message=why,
                    longrepr=why,
                )
            )
        self.running.clear()


class _Standby:
    """A pytest interpreter started ahead of its run, with the pipe for its events."""

    def __init__(self, root: Path, python: str) -> None:
        self.root = root
        self.python = python
        self.read_fd, write_fd = os.pipe()
        env = child_env({"OCI_LSP_REPORT_FD": str(write_fd)})
        try:
            self.child = _Child(
                [python, "-c", _STANDBY], root, env, (write_fd,), stdin=subprocess.PIPE
            )
        except OSError:
            os.close(self.read_fd)
            raise
        finally:
            os.close(write_fd)

    def start(self, args: list[str], env: dict[str, str]) -> None:
        stdin = self.child.popen.stdin
        assert stdin is not None
        request = json.dumps({"args": args, "env": env}) + "\n"
        # It may have died already (no pytest there): its exit and output tell why.
        with contextlib.suppress(OSError):
            stdin.write(request.encode())
            stdin.flush()
        with contextlib.suppress(OSError):
            stdin.close()

    def discard(self) -> None:
        self.child.kill()
        with contextlib.suppress(OSError):
            os.close(self.read_fd)
        if self.child.popen.stdin is not None:
            with contextlib.suppress(OSError):
                self.child.popen.stdin.close()


class PytestLauncher:
    """Runs pytest for one folder, each run in an interpreter started before it was needed.

    Starting Python and importing pytest is a good part of a small run; a standby process
    pays it while the user types. It imports nothing of the workspace, so it never runs stale
    code; it is replaced when the interpreter setting changes.
    """

    def __init__(self) -> None:
        self._standby: _Standby | None = None

    def prepare(self, root: Path, python: str) -> None:
        """Have a standby ready for the next run (a no-op when one is)."""
        standby = self._standby
        if standby is not None:
            if (
                standby.root == root
                and standby.python == python
                and standby.child.returncode is None
            ):
                return
            standby.discard()
            self._standby = None
        try:
            self._standby = _Standby(root, python)
        except OSError as exc:
            log.info("no standby interpreter %s: %s", python, exc)

    def take(self, root: Path, python: str) -> _Standby:
        """A standby for this run (started now if none is ready); the next one starts too."""
        self.prepare(root, python)
        standby = self._standby
        self._standby = None
        if standby is None:
            standby = _Standby(root, python)  # raises OSError: the caller reports it
        self.prepare(root, python)
        return standby

    def close(self) -> None:
        if self._standby is not None:
            self._standby.discard()
            self._standby = None


async def _run_pytest(
    spec: RunSpec, listener: RunListener, launcher: PytestLauncher | None
) -> RunResult:
    try:
        standby = (launcher or PytestLauncher()).take(spec.root, spec.python)
    except OSError as exc:
        why = f" ({spec.python_reason})" if spec.python_reason else ""
        return RunResult(
            "failed-to-start",
            message=f"could not start the tests with {spec.python}{why}: {exc.strerror or exc};"
            " check the `tests.python` setting",
        )
    # What the project's plugins would write into the workspace goes here instead.
    scratch = tempfile.mkdtemp(prefix="oci-run-")
    env = {"OCI_LSP_SCRATCH": scratch}
    if spec.seed is not None:
        env["OCI_LSP_RANDOMLY_SEED"] = str(spec.seed)
    log.info("running %s in %s", " ".join(pytest_argv(spec)), spec.root)
    events = EventReader(listener, spec.root)
    child = standby.child
    read_fd = standby.read_fd

    try:
        child.add_reader(events.pump(read_fd))
        standby.start(pytest_args(spec), env)
        timed_out = await child.run(spec.timeout)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    code = child.returncode
    output = child.tail.text()
    result = RunResult("completed", exit_code=code, output_tail=output, seen=events.seen)
    result.changes, result.seed, result.stopped = events.changes, events.seed, events.stopped
    if timed_out:
        events.unfinished("timeout", f"timed out: the run was stopped after {spec.timeout:g} s")
        result.status = "timeout"
        result.message = f"the tests were stopped after {spec.timeout:g} s (tests.timeout)"
    elif events.running:
        events.unfinished("error", f"the test process exited with status {code} during this test")
        result.status = "crashed"
        result.message = f"the test process exited with status {code} during a test"
    elif not events.started and _PYTEST_MISSING.search(output):
        result.pytest_missing = True
        result.message = pytest_missing_message(spec.python, spec.python_reason)
    elif code not in (0, 1, 5) and not events.collection_errors:
        # A broken conftest already has its diagnostic; anything else is said here.
        last = [ln for ln in output.strip().splitlines() if ln.strip()]
        result.message = (
            f"pytest stopped with exit status {code}: {last[-1] if last else ''}"
        ).strip()
    return result


async def _run_junit(spec: RunSpec, listener: RunListener) -> RunResult:
    assert spec.command
    with tempfile.TemporaryDirectory(prefix="oci-junit-") as tmp:
        xml_path = Path(tmp) / "report.xml"
        argv = [arg.replace(JUNIT_PLACEHOLDER, str(xml_path)) for arg in spec.command]
        if not any(JUNIT_PLACEHOLDER in arg for arg in spec.command):
            argv.append(f"--junitxml={xml_path}")
        log.info("running %s in %s", " ".join(argv), spec.root)
        try:
            child = _Child(argv, spec.root, child_env({"OCI_LSP_JUNIT_XML": str(xml_path)}), ())
        except OSError as exc:
            return RunResult(
                "failed-to-start",
                message=f"could not start the test command `{argv[0]}`: {exc.strerror or exc};"
                " check the `tests.command` setting",
            )
        timed_out = await child.run(spec.timeout)
        code = child.returncode
        result = RunResult("completed", exit_code=code, output_tail=child.tail.text())
        if timed_out:
            result.status = "timeout"
            result.message = f"the tests were stopped after {spec.timeout:g} s (tests.timeout)"
            return result
        try:
            data = xml_path.read_bytes()
        except OSError:
            result.message = (
                f"the test command exited with status {code} and wrote no JUnit XML;"
                f" put {JUNIT_PLACEHOLDER} where its report path goes in `tests.command`"
            )
            return result
        try:
            reports, errors = parse_junit_xml(data, spec.root)
        except ValueError as exc:
            result.message = str(exc)
            return result
        listener.collected(len(reports))
        for error in errors:
            listener.collection_error(error)
        for report in reports:
            result.seen.add(report.test_id)
            listener.report(report)
        return result
