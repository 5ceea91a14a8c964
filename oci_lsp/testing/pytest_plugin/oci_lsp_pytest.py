"""pytest plugin of oci-lsp: streams each test's outcome as it happens.

This file runs inside the *workspace's* interpreter, which may not have oci-lsp installed and
may be an older Python, so it imports nothing of ours and only the stdlib and pytest. The
runner puts this directory on PYTHONPATH and passes `-p oci_lsp_pytest`; events are written
as JSON lines to the file descriptor named by OCI_LSP_REPORT_FD.

Besides what pytest's reports hold, the plugin reads what only a live run knows: the real
traceback frames, and the function called in the failing statement of a test, resolved
through the test module's own globals (no code is evaluated: attributes are looked up with
inspect.getattr_static).

It also changes what the project's own options would make a run write or do that does not
fit a run on save or a candidate's (oci_lsp_options), reads doctest failures
(oci_lsp_doctest), and in a run that records (OCI_LSP_SPECTRA=1) sends the lines of the
workspace's code each test executed (oci_lsp_spectra), one "spectrum" event after its teardown.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import inspect
import json
import os
import types
from typing import Any

# Beside this file, on the same path (no package: the workspace's interpreter runs these).
import oci_lsp_dirs as dirs  # type: ignore[import-not-found]
import oci_lsp_doctest as doctests  # type: ignore[import-not-found]
import oci_lsp_options as options  # type: ignore[import-not-found]
import oci_lsp_spectra as spectra  # type: ignore[import-not-found]
import pytest

_MAX_TEXT = 20_000  # a test that prints megabytes must not produce megabyte events
_MAX_FRAMES = 60


def _cut(text: str, limit: int = _MAX_TEXT) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + "\n...(truncated due to length)...\n" + text[-half:]


class _Stream:
    def __init__(self, fd: int) -> None:
        self._file = os.fdopen(fd, "w", encoding="utf-8", errors="replace", buffering=1)
        self._pid = os.getpid()

    def emit(self, event: dict[str, Any]) -> None:
        # A test that forks must not let its child write into our stream.
        if os.getpid() != self._pid:
            return
        try:
            self._file.write(json.dumps(event, ensure_ascii=True) + "\n")
            self._file.flush()
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._file.close()


_stream: _Stream | None = None
_first_files: list[str] = []
_sources: dict[str, list[ast.stmt]] = {}


def _open_stream() -> _Stream | None:
    # Opened on first use: a broken conftest fails before pytest_configure ever runs.
    global _stream
    fd = os.environ.get("OCI_LSP_REPORT_FD")
    # An xdist worker inherits the variable, not the descriptor (the number may be another
    # file there); xdist is turned off for our runs, this is in case it was not.
    if fd and _stream is None and "PYTEST_XDIST_WORKER" not in os.environ:
        _stream = _Stream(int(fd))
    return _stream


def report_to(fd: int, session: pytest.Session) -> None:
    """Send this process's events to fd from now on: a candidate's child forked from a
    collected session (the sandbox's rounds), which starts with what a fresh one said so far."""
    global _stream
    if _stream is not None:
        _stream.close()  # the collector's (unclosed, a ResourceWarning: an error under -W error)
    _stream = _Stream(fd)
    _emit_session(session.config)
    _emit({"e": "collected", "count": len(session.items)})


@functools.lru_cache(maxsize=4096)
def _real(path: str) -> str:
    """The real path of a file: one file reached through a symlinked directory (a link to a
    sibling folder, a workspace opened through a link) is one file for the server."""
    return os.path.realpath(path)


_rootdir = ""  # the run's rootdir (real); report locations are relative to it


def _located(relative: str) -> str:
    """A report location's path (relative to the rootdir), absolute and real."""
    return _real(os.path.join(_rootdir, relative))


def _emit_session(config: pytest.Config) -> None:
    global _rootdir
    _rootdir = _real(str(config.rootpath))
    _emit(
        {
            "e": "session",
            "rootdir": _rootdir,
            "changes": list(options.notes),
            "seed": options.seed,
        }
    )


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    options.add_cache_options(parser, pluginmanager)


@pytest.hookimpl(hookwrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Any:
    options.after_parsing(config)  # before every plugin's own pytest_cmdline_main
    yield


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> Any:
    return options.timeout_timer(item, settings)


def pytest_configure(config: pytest.Config) -> None:
    _emit_session(config)


def _emit(event: dict[str, Any]) -> None:
    stream = _open_stream()
    if stream is not None:
        stream.emit(event)


@pytest.hookimpl(hookwrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: Any, args: Any) -> Any:
    # Before any plugin's own hook: pytest-cov starts measuring in its.
    options.before_parsing(early_config.known_args_namespace, args)
    outcome = yield
    exc = outcome.excinfo
    if exc is not None:
        value = exc[1]
        path = getattr(value, "path", None)
        cause = getattr(value, "cause", value)
        _emit_collect_error(str(path or ""), str(path or ""), cause, cause.__traceback__)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    recording = _collection_recorded(collector)
    try:
        outcome = yield
    finally:
        if recording is not None:
            _emit_collection_spectrum(collector, recording)
    report = outcome.get_result()
    if not report.failed:
        return
    call = report.__dict__.get("call")
    excinfo = getattr(call, "excinfo", None)
    value: BaseException | None = excinfo.value if excinfo is not None else None
    cause = getattr(value, "cause", None)  # ConftestImportFailure wraps the real error
    if cause is not None:
        value = cause
    elif type(value).__name__ == "CollectError" and value is not None and value.__cause__:
        value = value.__cause__  # pytest re-raises import and syntax errors as CollectError
    path = str(getattr(collector, "path", "") or "")
    event_path = str(getattr(excinfo.value, "path", "") or path) if excinfo else path
    if value is None:
        path = _real(path) if path else path
        text = str(report.longreprtext).strip()
        _emit(
            {
                "e": "collect-error",
                "collector": collector.nodeid,
                "path": path,
                "line": None,
                "type": "Error",
                "message": text.splitlines()[-1] if text else "",
                "longrepr": _cut(text),
                "frames": [],
            }
        )
        return
    _emit_collect_error(collector.nodeid, event_path, value, value.__traceback__, report)


def _collection_recorded(collector: pytest.Collector) -> Any:
    """In a run that records: a test module's collection (its import) starts recording what
    its top level runs; the recorder, else None. A doctest module is the workspace's own
    module, not a test module: its import runs for no test."""
    recorder = spectra.current()
    if recorder is None or not isinstance(collector, pytest.Module):
        return None
    if type(collector).__name__ == "DoctestModule":
        return None
    path = _real(str(collector.path))
    recorder.collecting(path)
    return recorder


def _emit_collection_spectrum(collector: pytest.Collector, recorder: Any) -> None:
    recorder.pause()
    lines = recorder.end()
    recorder.collecting(None)
    if lines:
        _emit({"e": "module-spectrum", "path": _real(str(collector.path)), "lines": lines})


def _emit_collect_error(
    collector: str, path: str, value: BaseException, tb: Any, report: Any = None
) -> None:
    line = None
    if isinstance(value, SyntaxError) and value.filename:
        path, line = value.filename, value.lineno
    path = _real(path) if path else path
    longrepr = str(report.longreprtext) if report is not None else _format(value)
    _emit(
        {
            "e": "collect-error",
            "collector": collector or path,
            "path": path,
            "line": line,
            "type": type(value).__name__,
            "message": _first_line(value),
            "longrepr": _cut(longrepr),
            "frames": _frames(tb),
        }
    )


def _format(value: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception(type(value), value, value.__traceback__))


def _native(value: BaseException, item: pytest.Item) -> str:
    """Python's traceback of `value` from the test function's own frame, as pytest cuts its
    long tracebacks (`_prunetraceback`); for a fixture's error, without the leading frames of
    pytest, pluggy and the plugins. All of it when nothing is left."""
    import traceback

    full = value.__traceback__
    tb = full
    function = getattr(item, "obj", None)
    code = getattr(inspect.unwrap(function), "__code__", None) if function is not None else None
    while tb is not None and tb.tb_frame.f_code is not code:
        tb = tb.tb_next
    if tb is None:
        machinery = _plugin_files(item)
        tb = full
        while tb is not None and (
            tb.tb_frame.f_code.co_filename.startswith(_MACHINERY)
            or tb.tb_frame.f_code.co_filename in machinery
        ):
            tb = tb.tb_next
    shown = value.with_traceback(tb or full)
    return "".join(traceback.format_exception(type(shown), shown, shown.__traceback__)).rstrip()


def _plugin_files(item: pytest.Item) -> set[str]:
    """The source files of the pytest plugins loaded in this run (their hook wrappers are on
    the stack of every test)."""
    files = set()
    for plugin in item.config.pluginmanager.get_plugins():
        path = getattr(plugin, "__file__", None)
        if isinstance(path, str):
            files.add(path)
    return files


def _first_line(value: BaseException) -> str:
    if isinstance(value, SyntaxError):
        return f"{value.msg} ({os.path.basename(value.filename or '')}, line {value.lineno})"
    text = str(value).strip()
    return text.splitlines()[0] if text else ""


def _machinery_dirs() -> tuple[str, ...]:
    import _pytest
    import pluggy

    return tuple(
        os.path.dirname(os.path.abspath(m.__file__ or "")) + os.sep for m in (_pytest, pluggy)
    )


_MACHINERY = _machinery_dirs()


def _frames(tb: Any) -> list[list[Any]]:
    """The traceback as [path, line, function], without pytest's and the importer's own frames."""
    frames: list[list[Any]] = []
    while tb is not None:
        code = tb.tb_frame.f_code
        path = code.co_filename
        if not path.startswith("<") and not path.startswith(_MACHINERY):
            frames.append([_real(os.path.abspath(path)), tb.tb_lineno, code.co_name])
        tb = tb.tb_next
    return frames[-_MAX_FRAMES:]


_MAX_CHAIN = 8


def _chained_frames(value: BaseException) -> list[list[Any]]:
    """The frames of the exceptions a failure was chained from, the root cause's first (as
    Python prints them): where the fault raised when the failing exception was raised by
    someone else. A cause (`raise X from e`) always; the context (the exception being handled
    when it was raised) only when pytest's or pluggy's code raised it (pytest.raises(match=...)
    re-raises an IndexError with the wrong message as an AssertionError `from None`): an
    assert in a test's own `except:` block is not about the exception it handled."""
    chain: list[BaseException] = []
    seen = {id(value)}
    current = value
    while len(chain) < _MAX_CHAIN:
        following = current.__cause__
        if following is None and _raised_by_machinery(current):
            following = current.__context__
        if following is None or id(following) in seen:
            break
        seen.add(id(following))
        chain.append(following)
        current = following
    frames: list[list[Any]] = []
    for exc in reversed(chain):
        frames += _frames(exc.__traceback__)
    return frames[-_MAX_FRAMES:]


def _raised_by_machinery(value: BaseException) -> bool:
    tb = value.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename.startswith(_MACHINERY)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    # Verifying a candidate runs the tests that failed before the others (with -x, a wrong
    # candidate is rejected after one test). OCI_LSP_FIRST holds their node ids, one a line.
    first = set(filter(None, os.environ.get("OCI_LSP_FIRST", "").splitlines()))
    if first:
        items.sort(key=lambda item: item.nodeid not in first)  # stable: others keep their order


def pytest_sessionstart(session: pytest.Session) -> None:
    dirs.forget()
    spectra.start(str(session.config.rootpath))


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    recorder = spectra.current()
    if recorder is None:
        yield
        return
    recorder.begin()
    try:
        yield
    finally:
        lines = recorder.end()
    _emit({"e": "spectrum", "nodeid": item.nodeid, "lines": lines})


def _recorded() -> Any:
    """A test's phase, recorded in a run that records: its fixtures' setup and teardown run
    the workspace's code too; what pytest does between the phases (reports) is left out."""
    recorder = spectra.current()
    if recorder is None:
        yield
        return
    recorder.resume()
    try:
        yield
    finally:
        recorder.pause()


# Innermost among the wrappers: the least of pytest's and other plugins' work is traced.
pytest_runtest_setup = pytest.hookimpl(hookwrapper=True, trylast=True)(_recorded)
pytest_runtest_teardown = pytest.hookimpl(hookwrapper=True, trylast=True)(_recorded)


@pytest.hookimpl(trylast=True)
def pytest_ignore_collect(collection_path: Any, config: pytest.Config) -> bool | None:
    # Last: what the project's own configuration ignores is not ours to name (oci_lsp_dirs).
    return True if dirs.refuse(str(collection_path), str(config.rootpath)) else None


def pytest_collection_finish(session: pytest.Session) -> None:
    recorder = spectra.current()
    if recorder is not None:
        functions = (item for item in session.items if isinstance(item, pytest.Function))
        recorder.collected({item.module.__name__ for item in functions if item.module})
    if dirs.loops or dirs.unreadable:
        _emit({"e": "skipped", "loops": list(dirs.loops), "unreadable": list(dirs.unreadable)})
    _emit({"e": "collected", "count": len(session.items)})


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    _emit({"e": "start", "nodeid": nodeid, "path": _located(location[0]), "line": location[1]})


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    if doctests.is_doctest(item):
        doctests.keep_globals(item)
    yield from _recorded()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    excinfo = call.excinfo
    if excinfo is None or not report.failed:
        return
    value = excinfo.value
    tb = excinfo.tb
    if item.config.option.tbstyle == "native" and not doctests.is_doctest(item):
        # pytest 9 prints a native traceback whole, its own and pluggy's frames first
        # (pytest-dev/pytest#13023): the sandbox's feedback to the model would open with
        # thirty frames of pytest, and its cut to the first and last 200 characters would
        # show little else. The traceback from the test's first frame, as Python prints it.
        report.longrepr = _native(value, item)
    if doctests.is_doctest(item):
        found = doctests.failure_of(item, value)
        if found is not None:
            report.__dict__["oci"] = _doctest_details(item, found)
            return
    test_path = os.path.abspath(str(getattr(item, "path", "") or item.fspath))
    statement, called = None, None
    frame, lineno = _last_frame_in(tb, test_path)
    if frame is None:
        # A test inherited from a mixin in another file (unittest suites share their tests
        # through base classes): its statements are in the file of its own code.
        test_path = _code_file(item) or test_path
        frame, lineno = _last_frame_in(tb, test_path)
    if frame is not None:
        node = _statement(test_path, lineno)
        if node is not None:
            statement = ast.get_source_segment(_read(test_path), node)
            called = _resolve_called(node, frame, str(item.config.rootpath))
    report.__dict__["oci"] = {
        "frames": _frames(tb),
        "chained_frames": _chained_frames(value),
        "type": type(value).__name__,
        "message": _cut(str(value), 4000),
        "statement": statement,
        "called": called,
    }
    if _timed_out(value):
        report.__dict__["oci"]["outcome"] = "timeout"  # over the outcome pytest gives


# The first failed subtest of each test (unittest's subTest, pytest's `subtests` fixture):
# pytest reports every subtest with the test's node id, then the test itself, failed when a
# subtest failed ("contains 1 failed subtest"). One result per test, as pytest counts tests,
# carrying the first failed subtest's traceback: that is where the fault shows.
_failed_subtests: dict[str, tuple[pytest.TestReport, int]] = {}


def _subtest(report: pytest.TestReport) -> str | None:
    """The description of a subtest's report (pytest 9's, or the pytest-subtests plugin's)."""
    if type(report).__name__ not in ("SubtestReport", "SubTestReport"):
        return None
    describe = getattr(report, "_sub_test_description", None)
    return str(describe()) if callable(describe) else "(<subtest>)"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if _subtest(report) is not None:
        if report.failed:
            first, count = _failed_subtests.get(report.nodeid, (report, 0))
            _failed_subtests[report.nodeid] = (first, count + 1)
        return
    if report.when == "call" or report.failed or (report.when == "setup" and report.skipped):
        extra = report.__dict__.get("oci") or {}
        outcome: str = report.outcome
        if report.failed and report.when != "call":
            outcome = "error"  # a fixture failed: pytest says "error", not "failed"
        path, line = _located(report.location[0]), report.location[1]
        longrepr = str(report.longreprtext) if report.failed else ""
        subtests = _failed_subtests.pop(report.nodeid, None) if report.when == "call" else None
        if subtests is not None and (report.passed or not extra):
            first, count = subtests
            outcome, extra = "failed", dict(first.__dict__.get("oci") or {})
            what = f"subtest {_subtest(first)}" + (f" (1 of {count} failed)" if count > 1 else "")
            extra["subtest"] = what
            longrepr = f"{what} failed:\n{first.longreprtext}"
        _emit(
            {
                "e": "result",
                "nodeid": report.nodeid,
                "when": report.when,
                "outcome": outcome,
                "path": path,
                "line": line,
                "duration": report.duration,
                "longrepr": _cut(longrepr),
                **extra,
            }
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    spectra.stop()
    # -x or --maxfail (the project's options) stop a run before its end: the tests it never
    # reached are not known to pass.
    stopped = session.shouldstop or session.shouldfail
    _emit(
        {
            "e": "finished",
            "exitstatus": int(exitstatus),
            "stopped": stopped if isinstance(stopped, str) and stopped else None,
        }
    )


# -- pytest-timeout and doctests ---------------------------------------------------------------


def _timed_out(value: BaseException) -> bool:
    """pytest-timeout's failure (the signal method): the test ran out of time."""
    return type(value).__name__ == "Failed" and "from pytest-timeout" in str(value)


def _doctest_details(item: pytest.Item, found: Any) -> dict[str, Any]:
    """A doctest's failure as the event's fields: at its failing example's line, its
    function the one it documents (else the one the example called)."""
    root = str(item.config.rootpath)
    called = _function_ref(found.documented, root) if found.documented is not None else None
    if called is None and found.source:
        try:
            tree = ast.parse(found.source)
        except SyntaxError:
            tree = None
        if tree is not None and tree.body:
            scope = types.SimpleNamespace(f_locals={}, f_globals=found.globs)
            called = _resolve_called(tree.body[0], scope, root)
    details: dict[str, Any] = {
        "frames": _frames(found.tb),
        "type": found.type,
        "message": _cut(found.message, 4000),
        "statement": None,
        "called": called,
        "doctest": True,
    }
    if found.line is not None:
        details["line"] = found.line
    return details


# -- resolving the function called in the failing statement --------------------------------


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def _code_file(item: pytest.Item) -> str | None:
    """The file that holds the test function's code (None when it is not a function)."""
    function = getattr(getattr(item, "obj", None), "__func__", getattr(item, "obj", None))
    code = getattr(function, "__code__", None)
    return os.path.abspath(code.co_filename) if code is not None else None


def _last_frame_in(tb: Any, path: str) -> tuple[Any, int]:
    found, lineno = None, 0
    while tb is not None:
        if os.path.abspath(tb.tb_frame.f_code.co_filename) == path:
            found, lineno = tb.tb_frame, tb.tb_lineno
        tb = tb.tb_next
    return found, lineno


def _statement(path: str, lineno: int) -> ast.stmt | None:
    if path not in _sources:
        try:
            tree = ast.parse(_read(path))
        except (SyntaxError, ValueError):
            return None
        _sources[path] = [n for n in ast.walk(tree) if isinstance(n, ast.stmt)]
    best = None
    for node in _sources[path]:
        end = getattr(node, "end_lineno", node.lineno) or node.lineno
        compound = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        inside = node.lineno <= lineno <= end
        if inside and not compound and (best is None or node.lineno >= best.lineno):
            best = node
    return best


_MISSING = object()


def _lookup(node: ast.expr, frame: Any) -> Any:
    """The object an expression names, without running any user code."""
    if isinstance(node, ast.Name):
        for scope in (frame.f_locals, frame.f_globals):
            if node.id in scope:
                return scope[node.id]
        return _MISSING
    if isinstance(node, ast.Attribute):
        owner = _lookup(node.value, frame)
        if owner is _MISSING:
            return _MISSING
        try:
            return inspect.getattr_static(owner, node.attr)
        except AttributeError:
            return _MISSING
    if isinstance(node, ast.Call):
        # `Calc().add(...)`: the class stands for its instance when looking up methods.
        callee = _lookup(node.func, frame)
        return callee if isinstance(callee, type) else _MISSING
    return _MISSING


def _resolve_called(stmt: ast.stmt, frame: Any, rootdir: str) -> dict[str, Any] | None:
    """The workspace function the failing statement calls: a function or method first, then
    a property it reads (`Square(3).area`: the constructor is only the set-up), then a
    constructor."""
    nodes = sorted(
        (n for n in ast.walk(stmt) if isinstance(n, (ast.Call, ast.Attribute))),
        key=lambda n: (n.lineno, n.col_offset),
    )
    constructors: list[Any] = []
    properties: list[Any] = []
    for node in nodes:
        if isinstance(node, ast.Attribute):
            properties.append(_getter(node, frame))
            continue
        target = _callee(_lookup(node.func, frame))
        if isinstance(target, type):
            constructors.append(target.__dict__.get("__init__", _MISSING))
            continue
        ref = _function_ref(target, rootdir) if inspect.isfunction(target) else None
        if ref is not None:
            return ref
    for target in properties + constructors:
        ref = _function_ref(target, rootdir) if inspect.isfunction(target) else None
        if ref is not None:
            return ref
    return None


def _callee(target: Any) -> Any:
    """The function a call of `target` runs: a static or class method's, a bound method's,
    and for a callable instance (`excepting(3)`, an instance of a class with `__call__`) its
    class's `__call__`, looked up statically (no user code runs)."""
    if isinstance(target, (staticmethod, classmethod)) or inspect.ismethod(target):
        return target.__func__
    if target is _MISSING or isinstance(target, type) or inspect.isfunction(target):
        return target
    try:
        call = inspect.getattr_static(type(target), "__call__")
    except AttributeError:
        return target
    if isinstance(call, (staticmethod, classmethod)):
        call = call.__func__
    return call if inspect.isfunction(call) else target


def _getter(node: ast.Attribute, frame: Any) -> Any:
    """The getter of the property (or cached_property) an attribute read goes through."""
    owner = _lookup(node.value, frame)
    if owner is _MISSING:
        return _MISSING
    try:
        found = inspect.getattr_static(owner if isinstance(owner, type) else type(owner), node.attr)
    except AttributeError:
        return _MISSING
    if isinstance(found, property):
        return found.fget
    if type(found).__name__ == "cached_property":
        return getattr(found, "func", _MISSING)
    return _MISSING


def _function_ref(target: Any, rootdir: str) -> dict[str, Any] | None:
    """Where a function of the workspace is defined (not of its tests), or None."""
    root = _real(os.path.abspath(rootdir)) + os.sep
    if isinstance(target, (staticmethod, classmethod)):
        target = target.__func__
    if not inspect.isfunction(target):
        return None
    target = inspect.unwrap(target)
    code = getattr(target, "__code__", None)
    if code is None:
        return None
    path = _real(os.path.abspath(code.co_filename))
    name = os.path.basename(path)
    if not path.startswith(root) or "site-packages" in path:
        return None
    if name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py":
        return None
    parts = os.path.relpath(path, root).split(os.sep)[:-1]
    if any(part in ("tests", "test") for part in parts):
        return None  # a helper of the tests, not the code under test
    return {
        "path": path,
        "line": code.co_firstlineno,
        "qualname": target.__qualname__,
        "module": target.__module__,
    }
