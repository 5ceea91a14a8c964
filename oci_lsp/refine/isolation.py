"""Verify candidate code against the workspace's tests without writing the user's files.

A warm worker (testing/pytest_plugin/oci_lsp_sandbox.py) runs in the workspace's interpreter
with pytest imported, and forks one confined child per candidate. The candidate's source
reaches that child through an import hook, so nothing is copied: setting up a candidate costs
the same on a workspace of 20 files as on one of 20,000 (a scratch directory and two pipes).

A round of candidates for one function (`Sandbox.run_round`, what the refinement loop uses)
collects the tests once in a child and forks each candidate from there, its function swapped
into the collected module; what cannot be swapped runs alone, with the same outcome.

Each child writes only under its scratch directory, has no network, and runs under CPU time,
memory, file size and process limits and a wall-clock timeout; the server kills it on
timeout or cancel, and the worker kills what it left behind. The scratch directory is removed
when the candidate ends, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from oci_lsp.testing.interpreter import pytest_missing_message
from oci_lsp.testing.results import Collected, CollectionError, TestReport
from oci_lsp.testing.run_tags import RUN_TAG, kill_tagged, new_tag
from oci_lsp.testing.runner import PLUGIN_NAME, EventReader, OutputTail, child_env

log = logging.getLogger(__name__)

_WORKER = "import oci_lsp_sandbox; oci_lsp_sandbox.main()"
_READY_TIMEOUT = 60.0
_KILL_CONFIRM_SECONDS = 5.0  # how long the worker may take to confirm a kill
_MAX_ROUND = 32  # the worker's MAX_ROUND: candidates in one round request


@dataclass(frozen=True)
class Limits:
    """What one candidate may use. Timeouts kill; the rest make the OS refuse."""

    timeout: float = 60.0  # wall-clock seconds for the candidate's whole test run
    cpu_seconds: int = 60
    memory_bytes: int = 4 << 30  # address space
    file_bytes: int = 256 << 20  # the largest file it may write (in its scratch directory)
    processes: int = 256


@dataclass(frozen=True)
class CandidateRun:
    target: Path  # the file whose text the candidate replaces
    source: str  # the candidate's whole module text
    selection: Sequence[str]  # what pytest runs: node ids or files, relative to the root
    first: Sequence[str] = ()  # node ids run before the others (the tests that failed)
    stop_at_first_failure: bool = True
    # Other files the candidate changes (a fix of two functions in two files): (file, its
    # whole text) each, served by the import hook as `source` is for `target`.
    more: Sequence[tuple[Path, str]] = ()


Verdict = Literal["passed", "failed", "no-tests", "timeout", "crashed", "error"]


@dataclass
class CandidateOutcome:
    verdict: Verdict
    reports: list[TestReport] = field(default_factory=list)
    collection_errors: list[CollectionError] = field(default_factory=list)
    exit_code: int | None = None
    output_tail: str = ""
    message: str | None = None  # what went wrong with the run itself
    seconds: float = 0.0
    # From the request to the candidate's pytest starting: scratch dir, fork, confinement,
    # import hook. What isolation costs, apart from the tests themselves.
    setup_seconds: float | None = None
    isolation: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> int:
        return sum(r.outcome == "passed" for r in self.reports)

    @property
    def first_failure(self) -> TestReport | None:
        return next((r for r in self.reports if r.failed), None)


class SandboxError(Exception):
    """The sandbox could not run at all; str() says what to do."""


@dataclass
class _Pending:
    pid: asyncio.Future[int]
    exit: asyncio.Future[tuple[int, dict[str, Any]]]
    alone: str | None = None  # why its round sent it back to run on its own


@dataclass
class _Flight:
    """A candidate on its way: what is needed to wait for it and read its outcome."""

    rid: int
    scratch: Path
    source_file: Path
    pending: _Pending
    collector: Collected
    events: EventReader
    tail: OutputTail
    readers: list[asyncio.Future[None]]
    write_fds: list[int]
    started: float
    round_id: int | None = None
    ahead: int = 0  # in a round: the waves of candidates that run before it


class Sandbox:
    """The warm worker of one folder and interpreter; candidates run in parallel, each in a
    child of its own, up to `parallel` at a time (the CPUs this process may use)."""

    def __init__(
        self, root: Path, python: str, parallel: int | None = None, python_reason: str = ""
    ) -> None:
        self.root = root
        self.python = python
        self.python_reason = python_reason  # why this interpreter, for the messages
        self.parallel = parallel or max(1, len(os.sched_getaffinity(0)))
        self._slots = asyncio.Semaphore(self.parallel)
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._ready: asyncio.Future[int] | None = None
        self._pending: dict[int, _Pending] = {}
        self._next_id = 0
        self._stderr = OutputTail()
        self._warned = False
        self._cgroup: str | None = None  # the worker's pids cgroup (when it runs as root)
        self._tag: str | None = None  # the worker's run tag (testing/run_tags.py)
        # pytest-randomly's seed for the candidates: the one of the run on save they are
        # verified against, so that they see the same order and random values.
        self.seed: int | None = None

    # -- the worker ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the worker now (otherwise the first candidate does)."""
        if self._ready is not None and self._proc is not None and self._proc.poll() is None:
            await asyncio.shield(self._ready)
            return
        await self._stop_worker()
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # Every process of the worker carries its tag: what is left if it is killed
            # first (a candidate's test that killed it) is found by it.
            self._tag = new_tag()
            env = child_env({"OCI_LSP_SANDBOX_FD": str(theirs.fileno()), RUN_TAG: self._tag})
            self._proc = subprocess.Popen(
                [self.python, "-c", _WORKER],
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,  # the editor's Ctrl-C is not for it
            )
        except OSError as exc:
            ours.close()
            why = f" ({self.python_reason})" if self.python_reason else ""
            raise SandboxError(
                f"could not start {self.python}{why} to verify candidates:"
                f" {exc.strerror or exc}; check the `tests.python` setting"
            ) from exc
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self._ready = loop.create_future()
        loop.add_reader(ours.fileno(), self._on_message)
        assert self._proc.stderr is not None
        stderr = self._proc.stderr
        loop.add_reader(stderr.fileno(), self._on_stderr, stderr)
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), _READY_TIMEOUT)
        except asyncio.TimeoutError:
            await self._stop_worker()
            raise SandboxError(f"{self.python} did not start within {_READY_TIMEOUT:g} s") from None

    def _on_stderr(self, stream: Any) -> None:
        try:
            chunk = os.read(stream.fileno(), 65536)
        except OSError:
            chunk = b""
        if chunk:
            self._stderr.add(chunk)
            return
        asyncio.get_running_loop().remove_reader(stream.fileno())
        stream.close()

    def _on_message(self) -> None:
        sock = self._sock
        if sock is None:
            return
        while True:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._worker_gone()
                return
            try:
                message = json.loads(data)
            except ValueError:
                continue
            self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "ready" in message:
            self._cgroup = message.get("cgroup") or None
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(int(message["ready"]))
            return
        pending = self._pending.get(int(message.get("id", -1)))
        if pending is None:
            return
        if "alone" in message and not pending.exit.done():
            pending.alone = str(message["alone"])
            pending.exit.set_result((0, {}))
            return
        if "pid" in message and not pending.pid.done():
            pending.pid.set_result(int(message["pid"]))
        if "exit" in message and not pending.exit.done():
            pending.exit.set_result((int(message["exit"]), message.get("isolation") or {}))

    def _worker_gone(self) -> None:
        loop = asyncio.get_running_loop()
        if self._sock is not None:
            loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        if self._tag is not None:
            # The worker ended without being asked (killed by a candidate's test): what its
            # candidates left was not killed by it. Rare; a scan of /proc, a few ms.
            kill_tagged(self._tag)
        said = self._stderr.text().strip().splitlines()
        if self._ready is not None and not self._ready.done():
            missing = any("No module named" in line and "pytest" in line for line in said)
            why = (
                pytest_missing_message(self.python, self.python_reason)
                if missing
                else f"the verification worker exited: {said[-1] if said else 'no output'}"
            )
            self._ready.set_exception(SandboxError(why))
            self._ready.exception()  # retrieved: a later start() reports it
        self._fail_pending("the verification worker exited")

    def _fail_pending(self, why: str) -> None:
        """Whatever waits on the worker gets `why`: it will never answer now."""
        for pending in self._pending.values():
            for future in (pending.pid, pending.exit):
                if not future.done():
                    future.set_exception(SandboxError(why))
                    future.exception()

    async def _stop_worker(self) -> None:
        self._fail_pending("the verification worker was stopped")
        proc, self._proc = self._proc, None
        if self._sock is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()  # the worker sees EOF and kills its candidates
            self._sock = None
        if proc is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(proc.wait), 2.0)
            except asyncio.TimeoutError:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await asyncio.to_thread(proc.wait)
            if self._tag is not None:
                # What the worker could not kill (killed above, or out of time for it).
                await asyncio.to_thread(kill_tagged, self._tag)
            if proc.stderr is not None:
                with contextlib.suppress(ValueError, OSError):
                    asyncio.get_running_loop().remove_reader(proc.stderr.fileno())
                proc.stderr.close()
        cgroup, self._cgroup = self._cgroup, None
        if cgroup is not None:
            await _remove_cgroup(cgroup)

    async def close(self) -> None:
        await self._stop_worker()

    def _warn_unconfined(self, isolation: dict[str, Any]) -> None:
        if isolation and not isolation.get("filesystem") and not self._warned:
            self._warned = True
            log.warning(
                "this kernel has no Landlock: candidates run from memory, never from your"
                " files, but what their tests write is not confined"
            )

    # -- one candidate ------------------------------------------------------------------------

    def _args(self, run: CandidateRun, scratch: Path) -> list[str]:
        return [
            "-p",
            "no:cacheprovider",  # first: the worker's prepared pytest config assumes it
            "-p",
            PLUGIN_NAME,
            "-q",
            "--no-header",
            # Python's own traceback: what the models saw as execution feedback in training,
            # and much cheaper than pytest's (which parses every frame's source).
            "--tb=native",
            "-o",
            "console_output_style=classic",
            "-W",
            "ignore::pytest.PytestAssertRewriteWarning",  # the worker imported the plugins
            f"--basetemp={scratch / 'pytest'}",
            *(["-x"] if run.stop_at_first_failure else []),
            *run.selection,
        ]

    async def run(
        self, run: CandidateRun, limits: Limits = Limits(), cancel: asyncio.Event | None = None
    ) -> CandidateOutcome:
        """Run the candidate's tests in a confined child; cancelling kills it."""
        async with self._slots:
            await self.start()
            requested = time.time()
            scratch = Path(tempfile.mkdtemp(prefix="oci-candidate-"))
            try:
                flight = self._flight(run, scratch)
                request = {
                    "op": "run",
                    "id": flight.rid,
                    "args": self._args(run, scratch),
                    **self._common(run, limits),
                    "source_file": str(flight.source_file),
                    "scratch": str(scratch),
                }
                if run.more:
                    request["more"] = _more_files(run, scratch)
                self._send(request, [flight])
                outcome = await self._finish(flight, limits, cancel)
                assert outcome is not None  # only a round's candidates are sent back
                return self._timed(outcome, requested)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)

    async def run_round(
        self,
        runs: Sequence[CandidateRun],
        base_source: str,
        qualname: str,
        limits: Limits = Limits(),
        cancel: asyncio.Event | None = None,
    ) -> list[CandidateOutcome]:
        """Run several candidates for one function (`qualname` in `base_source`, the text the
        candidates were made from), collecting the tests once: each candidate's child is forked
        from the collected session and swaps its function in. What cannot be swapped (a
        candidate that changed more than the function and its helpers), and everything when
        the collection fails, runs alone as `run` would. Same outcomes as `run` on each."""
        shared = len({_tests_key(r) for r in runs}) == 1  # the same tests for every candidate
        several = any(r.more for r in runs)  # one function is swapped in a round, not two
        if len(runs) < 2 or len(runs) > _MAX_ROUND or not shared or several:
            return list(await asyncio.gather(*(self.run(r, limits, cancel) for r in runs)))
        async with self._slots:
            await self.start()
            requested = time.time()
            scratch = Path(tempfile.mkdtemp(prefix="oci-round-"))
            try:
                outcomes = await self._round(runs, base_source, qualname, limits, cancel, scratch)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        alone = [i for i, outcome in enumerate(outcomes) if outcome is None]
        if alone:
            log.debug("verifying %d of %d candidates alone", len(alone), len(runs))
            if cancel is not None and cancel.is_set():
                for i in alone:
                    outcomes[i] = CandidateOutcome("error", message="cancelled")
            else:
                again = await asyncio.gather(*(self.run(runs[i], limits, cancel) for i in alone))
                for i, outcome in zip(alone, again, strict=True):
                    outcomes[i] = outcome
        return [
            o if i in alone else self._timed(o, requested)
            for i, o in enumerate(outcomes)
            if o is not None
        ]

    async def _round(
        self,
        runs: Sequence[CandidateRun],
        base_source: str,
        qualname: str,
        limits: Limits,
        cancel: asyncio.Event | None,
        scratch: Path,
    ) -> list[CandidateOutcome | None]:
        loop = asyncio.get_running_loop()
        base_file = scratch / "base.py"
        base_file.write_text(base_source, encoding="utf-8")
        self._next_id += 1
        round_id = self._next_id
        collector = _Pending(loop.create_future(), loop.create_future())
        self._pending[round_id] = collector
        flights = []
        for index, run in enumerate(runs):
            flight = self._flight(run, Path(tempfile.mkdtemp(dir=scratch)))
            flight.round_id = round_id
            flight.ahead = index // self.parallel
            flights.append(flight)
        request = {
            "op": "round",
            "id": round_id,
            "args": self._args(runs[0], scratch),
            **self._common(runs[0], limits),
            "scratch": str(scratch),
            "base_file": str(base_file),
            "qualname": qualname,
            "parallel": self.parallel,
            "candidates": [
                {"id": f.rid, "source_file": str(f.source_file), "scratch": str(f.scratch)}
                for f in flights
            ],
        }
        watcher = asyncio.ensure_future(self._watch_round(collector, flights))
        try:
            self._send(request, flights)
            return list(await asyncio.gather(*(self._finish(f, limits, cancel) for f in flights)))
        finally:
            watcher.cancel()
            self._pending.pop(round_id, None)
            if not collector.exit.done():
                await self._kill(round_id, collector)

    async def _watch_round(self, collector: _Pending, flights: list[_Flight]) -> None:
        """When the collector is gone, whatever it did not report runs alone."""
        with contextlib.suppress(SandboxError):
            await collector.exit
        for flight in flights:
            if not flight.pending.exit.done():
                flight.pending.alone = "the round ended before it"
                flight.pending.exit.set_result((0, {}))

    def _common(self, run: CandidateRun, limits: Limits) -> dict[str, Any]:
        env = {"OCI_LSP_FIRST": "\n".join(run.first)}
        if self.seed is not None:
            env["OCI_LSP_RANDOMLY_SEED"] = str(self.seed)
        return {
            "env": env,
            "target": str(run.target),
            "limits": {
                "cpu_seconds": limits.cpu_seconds,
                "memory_bytes": limits.memory_bytes,
                "file_bytes": limits.file_bytes,
                "processes": limits.processes,
            },
        }

    def _timed(self, outcome: CandidateOutcome, requested: float) -> CandidateOutcome:
        ready = outcome.isolation.pop("ready_at", None)
        self._warn_unconfined(outcome.isolation)
        if isinstance(ready, (int, float)):
            outcome.setup_seconds = max(0.0, ready - requested)
        return outcome

    def _flight(self, run: CandidateRun, scratch: Path) -> _Flight:
        """A candidate's request id, source file, pipes and their readers."""
        loop = asyncio.get_running_loop()
        self._next_id += 1
        source_file = scratch / "candidate.py"
        source_file.write_text(run.source, encoding="utf-8")
        events_r, events_w = os.pipe()
        output_r, output_w = os.pipe()
        collector = Collected()
        events = EventReader(collector, self.root)
        tail = OutputTail()
        flight = _Flight(
            rid=self._next_id,
            scratch=scratch,
            source_file=source_file,
            pending=_Pending(loop.create_future(), loop.create_future()),
            collector=collector,
            events=events,
            tail=tail,
            readers=[
                asyncio.ensure_future(events.pump(events_r)),
                asyncio.ensure_future(tail.pump(output_r)),
            ],
            write_fds=[events_w, output_w],
            started=time.monotonic(),
        )
        self._pending[flight.rid] = flight.pending
        return flight

    def _send(self, request: dict[str, Any], flights: list[_Flight]) -> None:
        fds = [fd for flight in flights for fd in flight.write_fds]
        try:
            assert self._sock is not None
            socket.send_fds(self._sock, [json.dumps(request).encode()], fds)
        except OSError as exc:
            for flight in flights:
                for task in flight.readers:
                    task.cancel()
                self._pending.pop(flight.rid, None)
            raise SandboxError(f"the verification worker is not answering: {exc}") from exc
        finally:
            for fd in fds:
                os.close(fd)

    async def _finish(
        self, flight: _Flight, limits: Limits, cancel: asyncio.Event | None
    ) -> CandidateOutcome | None:
        """Wait for the candidate's end (killing it on timeout or cancel) and read its
        outcome; None when its round sent it back to run alone."""
        rid, pending, readers = flight.rid, flight.pending, flight.readers
        collector, events, tail = flight.collector, flight.events, flight.tail
        timed_out = cancelled = False
        waiter = asyncio.ensure_future(cancel.wait()) if cancel is not None else None
        try:
            # The clock starts when its process does: in a round, a candidate first waits for
            # the collection and for the candidates ahead of it (a timeout each at most).
            for stage, timeout in (
                (pending.pid, limits.timeout * (1 + flight.ahead)),
                (pending.exit, limits.timeout),
            ):
                watched: set[asyncio.Future[Any]] = {stage, pending.exit}
                if waiter is not None:
                    watched.add(waiter)
                done, _ = await asyncio.wait(
                    watched, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if pending.exit in done:
                    break
                if not done or (waiter is not None and waiter in done):
                    timed_out = not done
                    cancelled = bool(done)
                    await self._kill(rid, pending, flight.round_id)
                    break
        except asyncio.CancelledError:
            await self._kill(rid, pending, flight.round_id)
            for task in readers:
                task.cancel()
            raise
        finally:
            if waiter is not None:
                waiter.cancel()
        try:
            code, isolation = await pending.exit
        except SandboxError as exc:
            for task in readers:
                task.cancel()
            return CandidateOutcome("error", message=str(exc), output_tail=tail.text())
        finally:
            self._pending.pop(rid, None)
        if pending.alone is not None and not (timed_out or cancelled):
            log.debug("candidate %d runs alone: %s", rid, pending.alone)
            for task in readers:
                task.cancel()
            return None
        # What a candidate started and left holding the pipes was killed with it.
        _, late = await asyncio.wait(readers, timeout=2.0)
        for task in late:
            task.cancel()
        outcome = CandidateOutcome(
            "failed",
            reports=collector.reports,
            collection_errors=collector.errors,
            exit_code=code,
            output_tail=tail.text(),
            seconds=time.monotonic() - flight.started,
            isolation=isolation,
        )
        if timed_out:
            events.unfinished("timeout", "Execution timed out.")
            outcome.verdict, outcome.message = "timeout", "Execution timed out."
        elif cancelled:
            outcome.verdict, outcome.message = "error", "cancelled"
        elif events.running:
            why = _death(code)
            events.unfinished("error", why)
            outcome.verdict, outcome.message = "crashed", why
        elif code == 0 and outcome.passed and not collector.errors:
            outcome.verdict = "passed"
        elif code == 5 or (not collector.reports and not collector.errors and code == 0):
            outcome.verdict, outcome.message = "no-tests", "no tests ran"
        elif not collector.reports and not collector.errors:
            outcome.verdict = "crashed"
            lines = [ln for ln in outcome.output_tail.strip().splitlines() if ln.strip()]
            outcome.message = lines[-1] if lines else _death(code)
        return outcome

    async def _kill(self, rid: int, pending: _Pending, round_id: int | None = None) -> None:
        started = pending.pid.done() and not pending.pid.cancelled() and not pending.pid.exception()
        # A round's candidate not forked yet is waiting on the collection: stop the round.
        target = round_id if round_id is not None and not started else rid
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.send(json.dumps({"op": "kill", "id": target}).encode())
        if started:
            with contextlib.suppress(OSError):
                os.killpg(pending.pid.result(), signal.SIGKILL)
        with contextlib.suppress(asyncio.TimeoutError, SandboxError):
            await asyncio.wait_for(asyncio.shield(pending.exit), _KILL_CONFIRM_SECONDS)
        if not pending.exit.done():
            # The worker never confirmed the end: it lost track of the candidate, or is stuck.
            # Waiting on would hang the fix (and the editor's progress) for good; a new worker
            # is cheap, and stopping this one kills all it started (its socket's EOF, the tag).
            log.warning("the verification worker did not confirm a killed candidate; restarting it")
            await self._stop_worker()


async def _remove_cgroup(path: str) -> None:
    """Remove the worker's cgroup once the last process in it is gone (they were killed)."""
    for _ in range(50):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            await asyncio.sleep(0.05)
    log.debug("could not remove the sandbox's cgroup %s", path)


def _more_files(run: CandidateRun, scratch: Path) -> list[dict[str, str]]:
    """The candidate's other files, written beside its source for the worker to serve."""
    files = []
    for index, (target, text) in enumerate(run.more, start=1):
        source_file = scratch / f"candidate-{index}.py"
        source_file.write_text(text, encoding="utf-8")
        files.append({"target": str(target), "source_file": str(source_file)})
    return files


def _tests_key(run: CandidateRun) -> tuple[Any, ...]:
    return (run.target, tuple(run.selection), tuple(run.first), run.stop_at_first_failure)


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if name in ("SIGXCPU", "SIGKILL"):
            return f"the test process was killed ({name}): out of CPU time or memory"
        return f"the test process was killed by {name}"
    return f"the test process exited with status {code} during a test"
