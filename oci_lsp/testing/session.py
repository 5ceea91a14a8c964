"""The tests of one workspace root: when to run them, which first, and what is failing now.

A save (or a change seen on disk) asks for a run; saves within the debounce window become one
run, and a newer request cancels a run in progress (the runner kills its process group). The
tests that import the changed modules run first, for a quick first diagnostic, when that can
pay (SPLIT_MIN_SECONDS, SPLIT_MAX_SHARE); then the whole suite runs as one plain `pytest`
would, in the project's own order (`tests.scope`). What is
failing is kept as marks per test, ready for the server to publish or for --fix to read.

Why the whole suite and not just the rest: suites with session state (a session fixture, an
autouse fixture that fills the doctest namespace, tests that depend on the order) fail or pass
differently when their files run apart. So the affected run's results are provisional: the
ordered run reports every test again, and when it completes the marks are exactly its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from oci_lsp.code.modules import ModuleIndex
from oci_lsp.config import TestSettings
from oci_lsp.testing.failures import FailureLocator, FailureMark, ReadSource
from oci_lsp.testing.impact import ImportGraph
from oci_lsp.testing.interpreter import Interpreter, Interpreters, environment_stamp
from oci_lsp.testing.localize import Formula, locate, worth_locating
from oci_lsp.testing.mutation_evidence import MutantRunner
from oci_lsp.testing.projects import innermost
from oci_lsp.testing.results import CollectionError, Spectrum, TestReport
from oci_lsp.testing.runner import PytestLauncher, RunResult, RunSpec, run_tests

log = logging.getLogger(__name__)

# Saves closer than this make one run ("save all" sends a burst); kept short because the
# user waits for it on every save (bench/RESULTS.md).
DEBOUNCE_SECONDS = 0.05
# Running the affected tests first costs a second pytest start-up and collection, and runs them
# twice: worth it only when the ordered run takes long enough for an earlier diagnostic to
# matter. Below this (the last ordered run's time) the suite runs once, in its own order.
SPLIT_MIN_SECONDS = 2.0
# Nor when the affected files are most of the suite (a module every test imports): running
# them first costs about a whole run and their first failure comes no sooner. Their share is
# their tests' time in the last ordered run (before one: their share of the test files).
SPLIT_MAX_SHARE = 0.5


class SessionListener(Protocol):
    """What the owner of a session hears (the server publishes, --fix prints)."""

    def run_started(self, session: TestSession) -> None: ...
    def run_progress(self, session: TestSession) -> None: ...
    def marks_changed(self, session: TestSession, paths: set[str]) -> None: ...
    def run_finished(self, session: TestSession, result: RunResult | None) -> None: ...
    def problem(self, session: TestSession, message: str) -> None: ...


@dataclass
class RunProgress:
    running: bool = False
    phase: str = ""  # "affected" or "all"; "locate": the failing tests' files, recorded
    done: int = 0  # tests reported in this phase
    total: int = 0  # tests collected in this phase
    failing: set[str] = field(default_factory=set)  # tests whose last result this run failed
    started_at: float = 0.0
    changes: list[str] = field(default_factory=list)  # what the plugin changed in the options
    stopped: str = ""  # why a phase stopped before its end (-x, --maxfail): not complete
    skipped: str = ""  # the directories its collection left out (symlink loops, unreadable)
    recording: int = 0  # tests the locate run records (0 until it has collected them)
    mutating: Sequence[str] = ()  # the suspects the locate run then changes a little

    @property
    def failed(self) -> int:
        return len(self.failing)


class TestSession:
    def __init__(
        self,
        root: Path,
        settings: Callable[[], TestSettings],
        listener: SessionListener,
        read: ReadSource,
    ) -> None:
        self.root = root
        self._settings = settings
        self.listener = listener
        self.index = ModuleIndex(root)
        self.graph = ImportGraph(root, self.index)
        self.locator = FailureLocator(root, read, self.index)
        self.progress = RunProgress()
        self.launcher = PytestLauncher()
        # Runs small changes of the suspects in isolation (the server's sandbox): the locate
        # run's mutation evidence (testing/mutation_evidence.py); None: spectra only.
        self.mutants: MutantRunner | None = None
        # Projects below this one's root (a monorepo), which have sessions of their own: runs
        # here leave them out (testing/projects.py).
        self.nested: list[Path] = []
        self._ordered_seconds: float | None = None  # the last complete ordered run's time
        self._file_seconds: dict[str, float] = {}  # its tests' time per test file
        self._run_file_seconds: dict[str, float] = {}  # the same, of the ordered run going on
        self.interpreters = Interpreters()
        self.editor_python: str | None = None  # the interpreter selected in the editor, if any
        self.disabled: str | None = None  # why runs are off (pytest missing) until settings change
        # ... or until the interpreter, or the packages installed in it, change.
        self._disabled_for: tuple[str, tuple[int, ...]] | None = None
        self._marks: dict[str, list[FailureMark]] = {}  # by test id or "collect:" + collector
        self._keys_by_path: dict[str, set[str]] = {}
        self._owner: dict[str, str] = {}  # key -> the test file whose run reports it again
        self._passed: set[str] = set()
        # The reports of the failing tests that have marks: the locate run explains them.
        self._failing_reports: dict[str, TestReport] = {}
        self._failing_tests = 0  # the keys of _marks that are tests (not collection errors)
        self._pending: set[Path] = set()
        self._graph_backlog: set[Path] = set()
        self._pending_all = False
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._graph_ready: asyncio.Task[None] | None = None
        self._warming: asyncio.Task[None] | None = None
        self._seen_this_run: set[str] = set()
        # pytest-randomly's seed (None without it): chosen by the first run, then the same
        # for every run and candidate, so the order does not change from save to save.
        self.seed: int | None = None
        # What the last run of the whole suite left out of its collection (symlink loops,
        # unreadable directories: runner.skipped_directories), for oci.status; None: nothing.
        self.skipped: str | None = None

    # -- state the server reads -----------------------------------------------------------

    def marks_for_path(self, path: str) -> list[FailureMark]:
        return [
            m
            for key in self._keys_by_path.get(path, ())
            for m in self._marks[key]
            if m.span.path == path
        ]

    def failing_count(self) -> int:
        return self._failing_tests  # asked often (oci.status) while thousands fail

    def passed_count(self) -> int:
        return len(self._passed)

    def paths_with_marks(self) -> set[str]:
        return {p for p, keys in self._keys_by_path.items() if keys}

    def marks_of_test(self, test_id: str) -> list[FailureMark]:
        """The current failure marks of one test (its line, its function), if it fails."""
        return list(self._marks.get(test_id, ()))

    def failing_tests_at(self, path: str) -> list[str]:
        """The failing tests with a mark in `path` (at a function defined there)."""
        return sorted(
            key for key in self._keys_by_path.get(path, ()) if not key.startswith("collect:")
        )

    async def tests_of(self, path: Path, name: str) -> list[str]:
        """The tests that exercise a function (ImportGraph.tests_exercising), once the
        import graph is built."""
        if self._graph_ready is not None:
            await self._graph_ready
        return self.graph.tests_exercising(path, name, self.locator.read)

    def record_verified(self, reports: Iterable[TestReport]) -> None:
        """Results of a verified candidate, now applied in the editor: its tests pass there
        (the disk catches up when the user saves, and the run on save confirms it)."""
        for report in reports:
            self._record_report(report)

    # -- asking for runs ------------------------------------------------------------------

    def start(self) -> None:
        """Build the import graph in the background so the first save can use it."""
        if self._graph_ready is None:
            self._graph_ready = asyncio.ensure_future(asyncio.to_thread(self.graph.build))

    async def interpreter(self) -> Interpreter:
        """The interpreter that runs this folder's tests, and why (testing/interpreter.py)."""
        settings = self._settings()
        return await self.interpreters.find(self.root, settings.python, self.editor_python)

    def known_interpreter(self) -> Interpreter | None:
        """The interpreter the last run or warm-up found, without a search (what a code
        action offered at every cursor move can afford)."""
        return self.interpreters.last(self.root)

    def warm(self) -> None:
        """Start a pytest interpreter for the next run now, while nobody waits for it."""
        if self._warming is None or self._warming.done():
            self._warming = asyncio.ensure_future(self._warm())
            self._warming.add_done_callback(self._log_failure)

    async def _warm(self) -> None:
        python = await self.interpreter()  # the first answer may ask a tool: not on the loop
        if not self._settings().command and not self._still_disabled(python):
            self.launcher.prepare(self.root, python.path)

    def _still_disabled(self, python: Interpreter) -> bool:
        """Runs stay off while the interpreter that lacked pytest is the same and unchanged."""
        if self.disabled is None:
            return False
        if self._disabled_for == (python.path, environment_stamp(python.path)):
            return True
        self.enable()
        return False

    def close(self) -> None:
        """Stop everything: the run in progress and the standby interpreter."""
        self.cancel()
        if self._warming is not None:
            self._warming.cancel()
        self.launcher.close()

    def file_changed(self, path: Path) -> None:
        """Keep the import graph current; cheap, one file."""
        if path.suffix != ".py":
            return
        if self._graph_ready is not None and not self._graph_ready.done():
            self._graph_backlog.add(path)  # the build may have read it already: redo after
            return
        if path.exists():
            self.graph.update(path)
        else:
            self.graph.remove(path)

    def request_run(self, changed: Iterable[Path] | None) -> None:
        """Ask for a run: of the tests affected by `changed`, or of all when None."""
        if changed is None:
            self._pending_all = True
        else:
            self._pending.update(changed)
        loop = asyncio.get_running_loop()
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_later(DEBOUNCE_SECONDS, self._launch)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def edited(self) -> None:
        """A hand edit in the editor: a locate run in flight would map its lines onto text
        that has changed, so it stops (the marks stay today's rule's until the next run)."""
        if self.progress.running and self.progress.phase == "locate":
            self.cancel()

    def enable(self) -> None:
        self.disabled = None
        self._disabled_for = None

    async def wait_idle(self) -> None:
        while self._task is not None and not self._task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    def _launch(self) -> None:
        self._timer = None
        changed = None if self._pending_all else set(self._pending)
        self._pending, self._pending_all = set(), False
        previous = self._task
        self._task = asyncio.ensure_future(self._run(changed, previous))
        self._task.add_done_callback(self._log_failure)

    @staticmethod
    def _log_failure(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("test run failed", exc_info=task.exception())

    # -- running ---------------------------------------------------------------------------

    async def _plan(self, changed: set[Path] | None) -> list[tuple[str, list[str]]]:
        """The phases of a run: (name, selection: empty for the whole suite)."""
        settings = self._settings()
        if changed is None or settings.scope == "all" or settings.command:
            return [("all", [])]
        if self._graph_ready is not None:
            await self._graph_ready
        backlog, self._graph_backlog = self._graph_backlog, set()
        for path in backlog:
            self.file_changed(path)
        affected = self.graph.affected_tests(changed)
        if affected is None:
            return [("all", [])]
        files = sorted(
            str(p) for p in affected if innermost([self.root, *self.nested], str(p)) == self.root
        )
        if settings.scope == "affected":
            return [("affected", files)] if files else []
        if not files or not self._split_pays(files):
            return [("all", [])]
        # The ordered run repeats the affected files: see the module's docstring.
        return [("affected", files), ("all", [])]

    def _split_pays(self, files: list[str]) -> bool:
        """Whether running the affected files first is worth a second run of them."""
        if self._ordered_seconds is not None and self._ordered_seconds < SPLIT_MIN_SECONDS:
            return False
        total = sum(self._file_seconds.values())
        if total > 0:
            share = sum(self._file_seconds.get(f, 0.0) for f in files) / total
        else:
            every = len(self.graph.test_files())
            share = len(files) / every if every else 1.0
        return share <= SPLIT_MAX_SHARE

    async def _run(self, changed: set[Path] | None, previous: asyncio.Task[None] | None) -> None:
        if previous is not None and not previous.done():
            previous.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await previous
        phases = await self._plan(changed)
        if not phases:
            return
        settings = self._settings()
        python = await self.interpreter()
        if not settings.command and self._still_disabled(python):
            log.info("tests not run in %s: %s", self.root, self.disabled)
            return
        self.progress = RunProgress(running=True, phase=phases[0][0], started_at=time.monotonic())
        self._seen_this_run = set()
        self.listener.run_started(self)
        result: RunResult | None = None
        try:
            for name, selection in phases:
                self.progress.phase = name
                self.progress.done = self.progress.total = 0
                self._seen_this_run = set()  # what the last phase saw is what stays
                spec = self._spec(python, settings, selection)
                began = time.monotonic()
                self._run_file_seconds = {}
                result = await run_tests(spec, _Collector(self), self.launcher)
                if name == "all" and result.status == "completed" and not result.stopped:
                    self._ordered_seconds = time.monotonic() - began
                    self._file_seconds = self._run_file_seconds
                if result.message:
                    self.listener.problem(self, result.message)
                if name == "all" and result.status == "completed":
                    self._skipped(result.skipped)
                if result.pytest_missing:
                    self.disabled = result.message
                    self._disabled_for = (python.path, environment_stamp(python.path))
                    self.launcher.close()
                self.progress.stopped = result.stopped or ""  # the last phase's word stands
                if result.status != "completed" or result.exit_code not in (0, 1, 5):
                    break
            else:
                if not self.progress.stopped:  # the tests it never reached are still unknown
                    self._forget_unseen(None if phases[-1][0] == "all" else phases[-1][1])
                if settings.localization != "off" and not settings.command:
                    await self._locate(python, settings)
        finally:
            self.progress.running = False
            self.listener.run_finished(self, result)

    def _spec(
        self,
        python: Interpreter,
        settings: TestSettings,
        selection: list[str],
        record: bool = False,
    ) -> RunSpec:
        """A run of this project's tests (of `selection`: empty for the whole suite)."""
        return RunSpec(
            self.root,
            python.path,
            python_reason=python.reason,
            selection=selection,
            ignore=[str(p) for p in self.nested],
            timeout=settings.timeout,
            command=None if record else settings.command,
            seed=self.seed,
            record=record,
        )

    async def _locate(self, python: Interpreter, settings: TestSettings) -> None:
        """The locate run (issue 15): the failing tests' files again, recording what each
        test executes, then the failing tests' marks go to the ranked suspects.

        Part of the run: its progress says so and the run ends after it, so the diagnostics
        that end a run are the ranked ones. A newer run or a hand edit cancels it; when it
        fails or times out the marks stay as today's rule made them.
        """
        failing = list(self._failing_reports.values())
        if not worth_locating(failing):
            return
        files = sorted({r.path for r in failing if r.path is not None})
        spec = self._spec(python, settings, files, record=True)
        self.progress.phase = "locate"
        self.progress.recording = 0
        self.progress.mutating = ()
        self.listener.run_progress(self)

        def collected(count: int) -> None:
            self.progress.recording = count
            self.listener.run_progress(self)

        def mutating(names: Sequence[str]) -> None:
            self.progress.mutating = names
            self.listener.run_progress(self)

        formula: Formula = "dstar" if settings.localization == "dstar" else "ochiai"
        mutants = self.mutants if settings.localization_mutants else None
        try:
            suspects = await locate(
                spec,
                failing,
                self.locator,
                formula,
                self.launcher,
                collected=collected,
                mutants=mutants,
                mutating=mutating,
            )
        except asyncio.CancelledError:
            raise
        except Exception:  # the marks stay today's rule's: nothing else may break
            log.exception("locating the fault in %s failed", self.root)
            return
        touched: set[str] = set()
        for test_id, ranked in suspects.items():
            report = self._failing_reports.get(test_id)
            if report is None or not ranked:
                continue  # it no longer fails here (a run of its own file said so)
            marks = self.locator.marks_for(report, ranked)
            touched |= self._set_marks(test_id, marks, report.path)
        if touched:
            self.listener.marks_changed(self, touched)

    def _skipped(self, skipped: str | None) -> None:
        """What a run of the whole suite left out of its collection (symlink loops,
        unreadable directories: oci_lsp_dirs). Only such a run walks the whole folder: one of
        chosen files meets a part of it on the way (pytest collects from the rootdir down)."""
        self.skipped = skipped
        if skipped:
            self.progress.skipped = skipped
            self.listener.problem(self, f"the tests of {self.root.name} {skipped}")

    def _forget_unseen(self, files: list[str] | None) -> None:
        """After a complete run, a test or collection error it did not see again is gone.

        files: the test files the run covered, or None when it covered the whole suite.
        """
        covered = None if files is None else set(files)
        stale = [
            key
            for key, owner in self._owner.items()
            if key not in self._seen_this_run and (covered is None or owner in covered)
        ]
        touched: set[str] = set()
        for key in stale:
            touched |= self._set_marks(key, [], None)
        if covered is None:
            self._passed &= self._seen_this_run
        if touched:
            self.listener.marks_changed(self, touched)

    def _set_marks(self, key: str, marks: list[FailureMark], owner: str | None) -> set[str]:
        old = self._marks.pop(key, [])
        self._owner.pop(key, None)
        if not marks:
            self._failing_reports.pop(key, None)
        if not key.startswith("collect:"):
            self._failing_tests += bool(marks) - bool(old)
        touched = {m.span.path for m in old} | {m.span.path for m in marks}
        for mark in old:
            self._keys_by_path.get(mark.span.path, set()).discard(key)
        if marks:
            self._marks[key] = marks
            if owner is not None:
                self._owner[key] = owner
            for mark in marks:
                self._keys_by_path.setdefault(mark.span.path, set()).add(key)
        return touched if (old or marks) else set()

    def _record_report(self, report: TestReport) -> None:
        self._seen_this_run.add(report.test_id)
        if report.failed:
            self._passed.discard(report.test_id)
            marks = self.locator.marks_for(report)
            self._failing_reports[report.test_id] = report
            self.progress.failing.add(report.test_id)
        else:
            self._passed.add(report.test_id)
            self.progress.failing.discard(report.test_id)
            marks = []
        touched = self._set_marks(report.test_id, marks, report.path)
        if touched:
            self.listener.marks_changed(self, touched)

    def _record_collection_error(self, error: CollectionError) -> None:
        key = "collect:" + error.collector
        self._seen_this_run.add(key)
        owner = str((self.root / error.collector.split("::")[0]).resolve())
        touched = self._set_marks(key, self.locator.marks_for_collection_error(error), owner)
        if touched:
            self.listener.marks_changed(self, touched)


class _Collector:
    """Runner events of one phase into the session's state."""

    def __init__(self, session: TestSession) -> None:
        self.session = session

    def collected(self, count: int) -> None:
        self.session.progress.total = count
        self.session.listener.run_progress(self.session)

    def started(self, test_id: str) -> None:
        pass

    def report(self, report: TestReport) -> None:
        self.session.progress.done += 1
        if self.session.progress.phase == "all" and report.path:
            seconds = self.session._run_file_seconds
            seconds[report.path] = seconds.get(report.path, 0.0) + report.duration
        self.session._record_report(report)
        self.session.listener.run_progress(self.session)

    def collection_error(self, error: CollectionError) -> None:
        self.session._record_collection_error(error)

    def configured(self, changes: Sequence[str], seed: int | None) -> None:
        self.session.progress.changes = list(changes)
        if seed is not None:
            self.session.seed = seed
        self.session.listener.run_progress(self.session)

    def spectrum(self, test_id: str, spectrum: Spectrum) -> None:
        pass  # runs on save do not record (issue 15: only the run that locates a fault)

    def module_spectrum(self, path: str, spectrum: Spectrum) -> None:
        pass  # the same
