"""Per-test line spectra: which lines of the workspace's own code each test executed.

Runs inside the *workspace's* interpreter (stdlib and pytest only, Python 3.10+), loaded by
oci_lsp_pytest, and records only in a run that asks for it (OCI_LSP_SPECTRA=1, set by the
runner for the run that locates a fault; issue 15). The workspace's own code is what lies
under the run's rootdir, outside site-packages, virtual environments (a folder with a
pyvenv.cfg), the interpreter's prefix, and pytest's and pluggy's own files. Test files are
recorded too: the ranking leaves them out.

Two ways, one result:
- Python >= 3.12: sys.monitoring under a free tool id. PY_START for every code object, which
  turns on LINE events for that code object alone when it is the workspace's, and is then
  disabled (DISABLE) for it; each LINE event is disabled after its first hit. Each test
  starts with restart_events(), so a line costs one callback per test however often it runs,
  and the library's and pytest's code costs one callback per code object per test.
- Python 3.10/3.11: sys.settrace (and threading.settrace, for the threads a test starts) with
  a global trace function that answers None, from a cache by file name, for every frame
  outside the workspace: only the workspace's frames are traced line by line.

A test's failure is explained inside its call phase (pytest's assertion rewriting shows the
compared values, unittest's assertEqual builds its message), and that calls the project's
`__repr__` and what it calls, in failing tests only: a perfect spectrum for an innocent
function. Lines first met while a frame of that reporting code is on the stack are not
recorded (`_Reporting`); the same line run by the test itself is.

A test module's import runs code of the workspace for its tests: a class body's
`STATUS = Choices(...)`, a module-level table, a parametrize list. That is recorded too, as
the module's collection spectrum (`Recorder.collecting`), each of its lines only when the
nearest module frame above it is the test module's own (the import of a library module, and
what its top level runs, belongs to no test).

A memo cache (functools.lru_cache, functools.cache) of a workspace function runs it in the
first test that calls it with those arguments only: the tests after it would not record it,
nor what it calls, and a fault in it would be blamed on its callers. Such caches are cleared
before each recorded test (`_Caches`), so each test records what its outcome depends on.

Whatever tracer or profiler was there before (coverage's) is put back after each test, and a
tool id taken is given back when the session ends. The state is the run's own: a standby
supervisor forks runs, and nothing is set up before pytest_sessionstart of the run.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from typing import Any

ENV = "OCI_LSP_SPECTRA"

Lines = dict[str, set[int]]  # code file name (as the code object names it) -> lines


def _machinery() -> tuple[str, ...]:
    """Folders whose code is never the workspace's, even under the rootdir (a venv inside
    the project holds pytest; a checkout of pytest itself is a workspace of its own kind)."""
    import _pytest
    import pluggy

    folders = {os.path.dirname(os.path.realpath(m.__file__ or "")) for m in (_pytest, pluggy)}
    folders.add(os.path.dirname(os.path.realpath(__file__)))  # oci-lsp's plugin
    for prefix in (sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix):
        folders.add(os.path.realpath(prefix))
    return tuple(folder + os.sep for folder in folders if folder)


class _Workspace:
    """Which code files are the workspace's own; each name decided once (cached)."""

    def __init__(self, rootdir: str) -> None:
        self.root = os.path.realpath(rootdir) + os.sep
        self.cwd = os.getcwd()  # relative code file names (sys.path's '') are from here
        self.outside = tuple(p for p in _machinery() if not self.root.startswith(p))
        self.files: dict[str, str | None] = {}  # code file name -> real path, or None
        self._venvs: dict[str, bool] = {}

    def own(self, filename: str) -> str | None:
        """The real path of a code file of the workspace's own, else None."""
        try:
            return self.files[filename]
        except KeyError:
            pass
        found = self._decide(filename)
        self.files[filename] = found
        return found

    def _decide(self, filename: str) -> str | None:
        if not filename or filename.startswith("<"):
            return None  # <string>, <frozen ...>, <doctest ...>: no file of the workspace
        path = os.path.realpath(os.path.join(self.cwd, filename))
        if not path.startswith(self.root) or path.startswith(self.outside):
            return None
        parts = path[len(self.root) :].split(os.sep)[:-1]
        if "site-packages" in parts or "dist-packages" in parts:
            return None
        folder = self.root.rstrip(os.sep)
        for part in parts:
            folder = os.path.join(folder, part)
            if self._is_venv(folder):
                return None
        return path

    def _is_venv(self, folder: str) -> bool:
        known = self._venvs.get(folder)
        if known is None:
            known = os.path.exists(os.path.join(folder, "pyvenv.cfg"))
            self._venvs[folder] = known
        return known


class _Reporting:
    """Whether a frame runs for the report of a failure, not for the test: a frame of
    pytest's assertion explanation or saferepr, of its traceback formatting, or of unittest's
    and the standard library's repr helpers is on the stack above it (a few dozen frames)."""

    DEPTH = 48

    def __init__(self) -> None:
        import _pytest

        pytest_dir = os.path.dirname(os.path.realpath(_pytest.__file__ or ""))
        folders = [os.path.join(pytest_dir, sub) + os.sep for sub in ("assertion", "_io", "_code")]
        stdlib = os.path.dirname(os.path.realpath(os.__file__))
        files = [os.path.join(stdlib, "unittest", "util.py")]
        files += [os.path.join(stdlib, f"{name}.py") for name in ("pprint", "reprlib", "difflib")]
        self._prefixes = tuple(folders)
        self._files = frozenset(files)
        self._known: dict[str, bool] = {}

    def _is_reporting(self, filename: str) -> bool:
        known = self._known.get(filename)
        if known is None:
            real = os.path.realpath(filename) if filename and filename[0] != "<" else filename
            known = real.startswith(self._prefixes) or real in self._files
            self._known[filename] = known
        return known

    def __call__(self, frame: Any) -> bool:
        depth = 0
        while frame is not None and depth < self.DEPTH:
            if self._is_reporting(frame.f_code.co_filename):
                return True
            frame = frame.f_back
            depth += 1
        return False


class _From:
    """Whether a frame runs for a test module's own top level: the nearest module frame
    above it is that module's (a library's import runs under the library's)."""

    def __init__(self, workspace: _Workspace, module_path: str) -> None:
        self.workspace = workspace
        self.module_path = module_path

    def __call__(self, frame: Any) -> bool:
        while frame is not None:
            code = frame.f_code
            if code.co_name == "<module>":
                return self.workspace.own(code.co_filename) == self.module_path
            frame = frame.f_back
        return False


def _counts(frame: Any, only_from: _From | None, reporting: _Reporting) -> bool:
    """Whether a line a frame runs is recorded: in a test, unless it runs for a failure's
    report; in a test module's import, when that module's own top level runs it (no failure
    is reported there, and pytest's assertion rewriter, whose frames are on the stack of
    every test module's import, would pass for a report)."""
    if only_from is not None:
        return only_from(frame)
    return not reporting(frame)


_UNKNOWN: Any = object()


class _Tracer:
    """sys.settrace for the workspace's frames alone (Python 3.10/3.11, or no tool id free).

    Any trace function puts the interpreter in its slow tracing mode for all code, and the
    global one is called for every frame pytest makes: it is on only while a test's setup,
    call and teardown run (resume/pause), not while pytest reports them, and it answers
    from a dict by file name with as little Python as it can."""

    def __init__(self, workspace: _Workspace, reporting: _Reporting) -> None:
        self.workspace = workspace
        self.reporting = reporting
        self.lines: Lines = {}
        self.only_from: _From | None = None
        self._outside: dict[str, None] = {}  # file names of no workspace code, for every test
        self._trace: Any = None
        self._before: Any = None
        self._before_threads: Any = None

    def begin(self) -> None:
        self.lines = {}
        # File name -> its local trace function this test, or None (not traced).
        tracers: dict[str, Any] = dict(self._outside)
        get = tracers.get
        decide = self._decide

        def trace(frame: Any, event: str, arg: Any) -> Any:
            # The global trace function: called with "call" only, on entering any frame.
            filename = frame.f_code.co_filename
            local = get(filename, _UNKNOWN)
            if local is _UNKNOWN:
                local = tracers[filename] = decide(filename)
            return local

        self._trace = trace

    def resume(self) -> None:
        self._before = sys.gettrace()
        self._before_threads = threading.gettrace()
        threading.settrace(self._trace)  # the threads the test starts
        sys.settrace(self._trace)

    def pause(self) -> None:
        sys.settrace(self._before)  # whatever was there (coverage's) is back
        threading.settrace(self._before_threads)
        self._before = self._before_threads = None

    def end(self) -> Lines:
        self._trace = None
        return self.lines

    def close(self) -> None:
        pass

    def _decide(self, filename: str) -> Any:
        if self.workspace.own(filename) is None:
            self._outside[filename] = None
            return None
        seen = self.lines.setdefault(filename, set())
        reporting = self.reporting
        only_from = self.only_from

        def local(frame: Any, event: str, arg: Any) -> Any:
            if event == "line":
                line = frame.f_lineno
                if line not in seen and _counts(frame, only_from, reporting):
                    seen.add(line)
            return local

        return local


# Tool ids the standard reserves for others come last: a debugger, coverage, a profiler or an
# optimizer of the project's own may be running (sys.monitoring.use_tool_id refuses a taken one).
_TOOL_IDS = (3, 4, 2, 5, 0, 1)


class _Monitor:
    """sys.monitoring (Python >= 3.12): LINE events for the workspace's code objects only."""

    def __init__(self, workspace: _Workspace, tool: int, reporting: _Reporting) -> None:
        self.workspace = workspace
        self.reporting = reporting
        self.tool = tool
        self.lines: Lines = {}
        self.recording = False
        self.only_from: _From | None = None
        # Code objects with LINE events on, by id (a code object's hash is computed from its
        # contents on every call); kept alive here, so an id is never reused.
        self._watched: dict[int, Any] = {}
        monitoring: Any = getattr(sys, "monitoring")  # noqa: B009 (3.12+; the stubs may lack it)
        self._m = monitoring
        self._disable = monitoring.DISABLE
        events = monitoring.events
        monitoring.register_callback(tool, events.PY_START, self._start)
        monitoring.register_callback(tool, events.LINE, self._line)
        monitoring.set_events(tool, events.PY_START)

    @staticmethod
    def take_tool() -> int | None:
        monitoring: Any = getattr(sys, "monitoring", None)
        if monitoring is None:
            return None
        for tool in _TOOL_IDS:
            if monitoring.get_tool(tool) is None:
                try:
                    monitoring.use_tool_id(tool, "oci-lsp spectra")
                except ValueError:
                    continue
                return tool
        return None

    def begin(self) -> None:
        self.lines = {}
        self._m.restart_events()  # what was DISABLEd in the last test fires again, once

    def resume(self) -> None:
        self.recording = True

    def pause(self) -> None:
        # Between the phases pytest makes its reports (repr_locals, the failure's reprs):
        # a line met there is neither recorded nor disabled.
        self.recording = False

    def end(self) -> Lines:
        self.recording = False
        return self.lines

    def close(self) -> None:
        monitoring, events = self._m, self._m.events
        monitoring.set_events(self.tool, 0)
        for code in self._watched.values():
            monitoring.set_local_events(self.tool, code, 0)
        self._watched.clear()
        monitoring.register_callback(self.tool, events.PY_START, None)
        monitoring.register_callback(self.tool, events.LINE, None)
        monitoring.free_tool_id(self.tool)

    def _start(self, code: Any, offset: int) -> Any:
        if id(code) not in self._watched and self.workspace.own(code.co_filename) is not None:
            self._watched[id(code)] = code
            self._m.set_local_events(self.tool, code, self._m.events.LINE)
        return self._disable  # this code object's start, until the next test

    def _line(self, code: Any, line: int) -> Any:
        if not self.recording or not _counts(sys._getframe(1), self.only_from, self.reporting):
            return None  # not this test's (module's) own: fires again, for it to record it
        lines = self.lines.get(code.co_filename)
        if lines is None:
            lines = self.lines[code.co_filename] = set()
        lines.add(line)
        return self._disable


class _Caches:
    """The memo caches of the workspace's own functions: functools.lru_cache and
    functools.cache wrappers held by its modules, at module level or in their classes' bodies
    (a static or class method's too). A cached function is pure, or its cache is a bug, so
    clearing changes what runs, not what a test sees; a test that counts the cache's hits may
    fail here, and is then neither failing nor passing evidence. Test modules and conftest
    files are not the code under test: their caches (test data) are kept."""

    def __init__(self, workspace: _Workspace) -> None:
        self.workspace = workspace
        self._kind: Any = getattr(functools, "_lru_cache_wrapper", None)  # CPython's type
        self._modules = -1  # len(sys.modules) at the last look: a test may import more
        self._looked: set[str] = set()  # module names looked into, or not to look into
        self._wrappers: dict[int, Any] = {}

    def tests(self, modules: set[str]) -> None:
        """The test modules of the run (after collection): their caches are kept."""
        self._looked |= modules

    def clear(self) -> None:
        if self._kind is None:
            return
        if len(sys.modules) != self._modules:
            self._look()
        for wrapper in self._wrappers.values():
            with contextlib.suppress(Exception):  # a cache of the project's: its tests will say
                wrapper.cache_clear()

    def _look(self) -> None:
        modules = list(sys.modules.items())
        self._modules = len(modules)
        for name, module in modules:
            if name in self._looked:
                continue
            self._looked.add(name)
            filename = getattr(module, "__file__", None)
            if not isinstance(filename, str) or self.workspace.own(filename) is None:
                continue
            if os.path.basename(filename) == "conftest.py":
                continue
            try:
                values = list(vars(module).values())
            except TypeError:
                continue
            for value in values:
                self._keep(value)
                if isinstance(value, type) and value.__module__ == name:
                    for member in list(vars(value).values()):
                        self._keep(getattr(member, "__func__", member))

    def _keep(self, value: Any) -> None:
        if not isinstance(value, self._kind):
            return
        code = getattr(getattr(value, "__wrapped__", None), "__code__", None)
        if code is not None and self.workspace.own(code.co_filename) is not None:
            self._wrappers[id(value)] = value


class Recorder:
    """One run's recording: begin() before a test's setup, end() after its teardown, and
    resume()/pause() around each of its phases (setup, call, teardown)."""

    def __init__(self, rootdir: str) -> None:
        self.workspace = _Workspace(rootdir)
        self._caches = _Caches(self.workspace)
        reporting = _Reporting()
        tool = _Monitor.take_tool()
        self._way: _Tracer | _Monitor = (
            _Monitor(self.workspace, tool, reporting)
            if tool is not None
            else _Tracer(self.workspace, reporting)
        )

    def collected(self, test_modules: set[str]) -> None:
        self._caches.tests(test_modules)

    def collecting(self, module_path: str | None) -> None:
        """The import of a test module (its real path) begins, and is recorded until
        pause/end; None: it ended. No cache is cleared (begin's): no test runs there, and a
        test module imported by then would pass for the code under test."""
        if module_path is None:
            self._way.only_from = None
            return
        self._way.only_from = _From(self.workspace, module_path)
        self._way.begin()
        self._way.resume()

    def begin(self) -> None:
        self._caches.clear()
        self._way.begin()

    def resume(self) -> None:
        self._way.resume()

    def pause(self) -> None:
        self._way.pause()

    def end(self) -> dict[str, list[int]]:
        """What ran since begin(): real path -> its lines, sorted."""
        lines = self._way.end()
        found: dict[str, set[int]] = {}
        for filename, hits in lines.items():
            path = self.workspace.own(filename)
            if path is not None and hits:
                found.setdefault(path, set()).update(hits)
        return {path: sorted(hits) for path, hits in found.items()}

    def close(self) -> None:
        self._way.close()


_recorder: Recorder | None = None


def start(rootdir: str) -> Recorder | None:
    """The run's recorder, when the run records (OCI_LSP_SPECTRA=1); None otherwise."""
    global _recorder
    stop()
    if os.environ.get(ENV) == "1":
        _recorder = Recorder(rootdir)
    return _recorder


def current() -> Recorder | None:
    return _recorder


def stop() -> None:
    global _recorder
    if _recorder is not None:
        _recorder.close()
        _recorder = None
