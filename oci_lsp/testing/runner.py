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
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from oci_lsp.testing.interpreter import pytest_missing_message
from oci_lsp.testing.junit import parse_junit_xml
from oci_lsp.testing.results import CollectionError, Frame, FunctionRef, Spectrum, TestReport
from oci_lsp.testing.run_tags import RUN_TAG, kill_tagged, new_tag
from oci_lsp.testing.summary import summarize

log = logging.getLogger(__name__)

PLUGIN_DIR = Path(__file__).parent / "pytest_plugin"
PLUGIN_NAME = "oci_lsp_pytest"
_OUTPUT_TAIL = 64 * 1024
_EVENT_LIMIT = 16 * 1024 * 1024
EVENT_TURN = 0.01  # the longest the events of a run hold the event loop at a time
BIG_EVENT = 256 * 1024  # an event line this long is parsed in a thread
JUNIT_PLACEHOLDER = "{junitxml}"
SPECTRA_ENV = "OCI_LSP_SPECTRA"  # record each test's spectrum (pytest_plugin/oci_lsp_spectra.py)
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

    def spectrum(self, test_id: str, spectrum: Spectrum) -> None:
        """What one test executed of the workspace's code (only in a run with record)."""

    def module_spectrum(self, path: str, spectrum: Spectrum) -> None:
        """What the import of one test module (its path) executed of the workspace's code
        for its tests: its own top level's calls (only in a run with record)."""


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
    record: bool = False  # record each test's spectrum (issue 15: fault localization)


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
    skipped: str | None = None  # the directories collection left out (symlink loops, unreadable)


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
        # The locate run needs every test of its files: the passing ones are the evidence
        # that clears a function. `-x` or `--maxfail` in the project's options would stop it
        # at the first failures; given after them, this wins.
        *(["--maxfail=0"] if spec.record else []),
        *spec.selection,
    ]


def pytest_argv(spec: RunSpec) -> list[str]:
    """The equivalent cold command line of a run; what the benchmark compares against."""
    return [spec.python, "-m", "pytest", *pytest_args(spec)]


# The supervisor (pytest_plugin/oci_lsp_supervisor.py) of each run; in a standby it imports
# pytest before anyone saves, then waits for one request (pytest's arguments and environment)
# and forks the run, as `python -m pytest` would run. Nothing of the workspace is imported
# before the request.
SUPERVISOR = "oci_lsp_supervisor"
_SUPERVISE = f"import {SUPERVISOR}; {SUPERVISOR}.main()"
_STOP_GRACE = 2.0  # seconds a supervisor has to end its run before it is killed


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    # Only a run that asks records: not every run of a server started from a recorded run's
    # test (which inherits it), nor the sandbox's candidates.
    env.pop(SPECTRA_ENV, None)
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
    """A run under its supervisor (pytest_plugin/oci_lsp_supervisor.py), its output kept as a
    tail, its end awaited.

    The supervisor is the only process between the server and the tests, in a session of its
    own; the run is its child, in a process group of its own. A test that kills its parent
    kills the supervisor and ends its run, never the server. When the run ends the supervisor
    kills what is left of it (on Linux, as a child subreaper, daemons that left the run's
    session too), then says "exit STATUS" on its channel (its standard input, a Unix socket)
    and exits. Closing the channel, or the server's death, asks it to end the run at once.

    A supervisor that ended without saying so was killed (by a test): the run's group is
    killed here, and on Linux every process that carries the run's tag in its environment.

    asyncio's own subprocess `wait()` (before Python 3.12) returns only once every pipe is
    closed, and a test's forked child holds them open; so the exit is awaited in a thread of
    its own, and the pipes are read separately.
    """

    def __init__(
        self,
        python: str,
        mode: Literal["pytest", "exec"],
        cwd: Path,
        env: dict[str, str],
        pass_fds: tuple[int, ...],
    ):
        self.tag = new_tag()  # testing/run_tags.py: what is left of a killed supervisor
        if mode == "pytest":
            # As `python -m pytest`: the working directory first on sys.path.
            argv = [python, "-c", _SUPERVISE, mode]
        else:
            argv = [python, str(PLUGIN_DIR / f"{SUPERVISOR}.py"), mode]
        ours, theirs = socket.socketpair()
        try:
            self.popen = subprocess.Popen(
                argv,
                cwd=cwd,
                env={**env, RUN_TAG: self.tag},
                stdin=theirs.fileno(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=pass_fds,
                start_new_session=True,
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        self.channel = ours
        self._said = bytearray()  # what the supervisor said so far
        self._lock = threading.Lock()
        self.requested = False
        self.run_pid: int | None = None
        self.run_status: int | None = None  # the run's exit code or -SIGNAL, once it said so
        self.error: str | None = None  # why the command could not be started
        self.note: str | None = None  # what a test did to end the run (its supervisor saw)
        self.lost = False  # the supervisor was killed before it could say how the run ended
        self._gone = threading.Event()
        self._stopping = False
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int] = loop.create_future()
        self.tail = OutputTail()

        def settle(code: int) -> None:
            if not self.exited.done():
                self.exited.set_result(code)

        def wait() -> None:
            code = self.popen.wait()
            self._gone.set()
            self._after_exit(code)
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

    def request(self, request: dict[str, Any]) -> None:
        """Start the run: pytest's arguments ("args") or a command ("argv"), and "env"."""
        self.requested = True
        # It may have died already (no pytest there): its exit and output tell why.
        with contextlib.suppress(OSError):
            self.channel.sendall((json.dumps(request) + "\n").encode())

    def _read_channel(self) -> None:
        """Take in what the supervisor said (never blocks)."""
        with self._lock:
            while True:
                try:
                    data = self.channel.recv(4096, socket.MSG_DONTWAIT)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                if not data:
                    break
                self._said += data
            *lines, rest = bytes(self._said).split(b"\n")
            self._said[:] = rest
        for line in lines:
            word, _, value = line.decode("utf-8", errors="replace").partition(" ")
            if word == "pid" and value.isdigit():
                self.run_pid = int(value)
            elif word == "exit":
                with contextlib.suppress(ValueError):
                    self.run_status = int(value)
            elif word == "error":
                self.error = value
            elif word == "note":
                self.note = value

    def _after_exit(self, code: int) -> None:
        """In the waiting thread, once the supervisor is gone: what it said, and the clean-up
        it could not do when it was killed."""
        self._read_channel()
        with contextlib.suppress(OSError):
            self.channel.close()
        if self.run_status is not None or self.error is not None or not self.requested:
            return
        self.lost = True
        if self.run_pid is not None:
            _kill_group(self.run_pid)
        left = kill_tagged(self.tag)
        log.info(
            "the supervisor of a run exited with %s before the run ended; %d processes of the"
            " run killed",
            code,
            left,
        )

    async def run(self, timeout: float) -> bool:
        """Wait for the end of the run and of all it started; True when it timed out."""
        timed_out = False
        try:
            await asyncio.wait_for(asyncio.shield(self.exited), timeout=timeout)
        except asyncio.TimeoutError:
            timed_out = True
            self.stop()
        except asyncio.CancelledError:
            self.stop()
            raise
        await self.exited
        # Readers end when the last holder of the pipes is gone; one that escaped may keep
        # them open (outside Linux), so don't wait forever.
        _, pending = await asyncio.wait(self._readers, timeout=2.0)
        for task in pending:
            task.cancel()
        return timed_out

    def stop(self) -> None:
        """End the run now: its process group at once, what else it started through its
        supervisor, and the supervisor by force if it does not end within _STOP_GRACE."""
        if self._gone.is_set() or self._stopping:
            return
        self._stopping = True
        if not self.requested:
            _kill_group(self.popen.pid)  # a standby: nothing of a run to clean up yet
        self._read_channel()
        if self.run_pid is not None:
            _kill_group(self.run_pid)
        with contextlib.suppress(OSError):
            self.channel.shutdown(socket.SHUT_WR)
        timer = threading.Timer(_STOP_GRACE, self._force)
        timer.daemon = True
        timer.start()

    def _force(self) -> None:
        if not self._gone.is_set():
            log.warning("the supervisor of a run did not end the run: killed")
            _kill_group(self.popen.pid)

    @property
    def returncode(self) -> int | None:
        """The run's exit code or -SIGNAL (the supervisor's, when it was killed)."""
        if not self.exited.done():
            return None
        return self.run_status if self.run_status is not None else self.exited.result()


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


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
        self.skipped: str | None = None

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
                    event = await asyncio.to_thread(_decode, line)
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
        elif kind == "skipped":
            self.skipped = skipped_directories(event.get("loops"), event.get("unreadable"))
        elif kind == "spectrum":
            self.listener.spectrum(event["nodeid"], self._spectrum(event))
        elif kind == "module-spectrum":
            module = self._abs(event.get("path"))
            if module is not None:
                self.listener.module_spectrum(module, self._spectrum(event))

    def _spectrum(self, event: dict[str, Any]) -> Spectrum:
        spectrum: dict[str, frozenset[int]] = {}
        for path, lines in (event.get("lines") or {}).items():
            where = self._abs(path)
            if where is not None:
                # Already frozen when a big event was decoded in a thread (then this is the
                # same set again, no copy).
                spectrum[where] = frozenset(lines)
        return spectrum

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
        frames = _frames(event.get("frames"))
        called = event.get("called")
        report = TestReport(
            test_id=nodeid,
            outcome=event["outcome"],
            path=self._abs(event.get("path")),
            line=None if line is None else int(line) + 1,
            longrepr=event.get("longrepr") or "",
            frames=frames,
            chained_frames=_frames(event.get("chained_frames")),
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
        frames = _frames(event.get("frames"))
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


_NAMED = 5  # directories named in the line, the rest counted


def skipped_directories(loops: Any, unreadable: Any) -> str | None:
    """One line that says which directories the run's collection left out (oci_lsp_dirs):
    "skipped 2 symlinked directories that loop: a/b, loop; could not read: secret/"."""

    def names(items: Any, suffix: str = "") -> str:
        found = sorted(str(item) + suffix for item in items or ())
        more = f" and {len(found) - _NAMED} more" if len(found) > _NAMED else ""
        return ", ".join(found[:_NAMED]) + more

    parts = []
    if loops:
        count = len(loops)
        what = "symlinked directory that loops" if count == 1 else "symlinked directories that loop"
        parts.append(f"skipped {count} {what}: {names(loops)}")
    if unreadable:
        parts.append(f"could not read: {names(unreadable, '/')}")
    return "; ".join(parts) or None


class _Standby:
    """A supervisor that has imported pytest ahead of its run, with the pipe for its events."""

    def __init__(self, root: Path, python: str) -> None:
        self.root = root
        self.python = python
        self.read_fd, write_fd = os.pipe()
        env = child_env({"OCI_LSP_REPORT_FD": str(write_fd)})
        try:
            self.child = _Child(python, "pytest", root, env, (write_fd,))
        except OSError:
            os.close(self.read_fd)
            raise
        finally:
            os.close(write_fd)

    def start(self, args: list[str], env: dict[str, str]) -> None:
        self.child.request({"args": args, "env": env})

    def discard(self) -> None:
        self.child.stop()
        with contextlib.suppress(OSError):
            os.close(self.read_fd)


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
        # Without a launcher (--fix) no standby is kept for a next run.
        standby = (
            launcher.take(spec.root, spec.python) if launcher else _Standby(spec.root, spec.python)
        )
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
    if spec.record:
        # The plugin's oci_lsp_spectra reads it at the start of the run's session: the
        # request's env is put into the forked run's environment before pytest starts.
        env[SPECTRA_ENV] = "1"
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
    result.skipped = events.skipped
    if timed_out:
        events.unfinished("timeout", f"timed out: the run was stopped after {spec.timeout:g} s")
        result.status = "timeout"
        result.message = f"the tests were stopped after {spec.timeout:g} s (tests.timeout)"
    elif events.running or child.lost:
        ended = _how_it_ended(child)
        during = bool(events.running)
        events.unfinished("error", f"{ended} during this test")
        result.status = "crashed"
        result.message = f"{ended} during a test" if during else f"{ended}; the run stopped there"
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


def _frames(frames: Any) -> list[Frame]:
    return [Frame(str(p), int(n), str(f)) for p, n, f in frames or []]


def _decode(line: bytes) -> Any:
    """An event, with a spectrum's lines already made sets (a big one is decoded in a thread:
    its thousands of lines are not made into sets on the event loop either)."""
    event = json.loads(line)
    if isinstance(event, dict) and event.get("e") == "spectrum":
        lines = event.get("lines")
        if isinstance(lines, dict):
            event["lines"] = {path: frozenset(found) for path, found in lines.items()}
    return event


def _how_it_ended(child: _Child) -> str:
    code = child.returncode
    if child.note:
        return child.note
    if child.lost:
        # A test that kills its parent process (os.kill(os.getppid(), ...)) does this.
        return f"the test process's parent (oci-lsp's supervisor of the run) was {_killed(code)}"
    if code is not None and code < 0:
        return f"the test process was {_killed(code)}"
    return f"the test process exited with status {code}"


def _killed(code: int | None) -> str:
    if code is None or code >= 0:
        return f"ended with status {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


async def _run_junit(spec: RunSpec, listener: RunListener) -> RunResult:
    assert spec.command
    with tempfile.TemporaryDirectory(prefix="oci-junit-") as tmp:
        xml_path = Path(tmp) / "report.xml"
        argv = [arg.replace(JUNIT_PLACEHOLDER, str(xml_path)) for arg in spec.command]
        if not any(JUNIT_PLACEHOLDER in arg for arg in spec.command):
            argv.append(f"--junitxml={xml_path}")
        log.info("running %s in %s", " ".join(argv), spec.root)
        env = child_env({"OCI_LSP_JUNIT_XML": str(xml_path)})
        try:
            # The supervisor runs in our own interpreter; the command is its child.
            child = _Child(sys.executable, "exec", spec.root, env, ())
        except OSError as exc:
            return RunResult(
                "failed-to-start",
                message=f"could not start the test command `{argv[0]}`: {exc.strerror or exc};"
                " check the `tests.command` setting",
            )
        child.request({"argv": argv, "env": {}})
        timed_out = await child.run(spec.timeout)
        if child.error is not None:
            return RunResult(
                "failed-to-start",
                message=f"could not start the test command `{argv[0]}`: {child.error};"
                " check the `tests.command` setting",
            )
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
