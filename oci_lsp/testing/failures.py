"""Where a failure belongs in the code: the failing line in the test, and the function under test.

CONTRACT.md: the function under test is the deepest traceback frame in the workspace outside
the test files; when the test's own assert failed (no such frame), it is the function called
in the failing statement, resolved through the test module's imports (at run time by our
pytest plugin, statically for other runners).

A doctest is a test written in the docstring of the function it documents (or in a text
file): its failure goes at its failing example, and at that function.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oci_lsp.code.functions import called_names, enclosing_function, find_function, statement_at
from oci_lsp.code.modules import ModuleIndex, resolve_call
from oci_lsp.code.walk import is_ignored_path, is_test_file
from oci_lsp.testing.results import CollectionError, FailureKind, TestReport

ReadSource = Callable[[str], "str | None"]

# Folders whose modules are test code (helpers, fixtures), never the code under test.
TEST_DIR_NAMES = frozenset({"tests", "test"})
# How many suspects after the first a failure's marks name ("also suspicious: ...").
RELATED_SUSPECTS = 2


@dataclass(frozen=True)
class Span:
    """A place in a file: 0-based line, columns in code points of that line."""

    path: str
    line: int
    start: int
    end: int


@dataclass(frozen=True)
class Suspect:
    """A function the fault may be in, as the ranking (testing/localize.py) scored it."""

    path: str
    qualname: str  # "Calc.add"
    dotted: str  # "pkg.calc.Calc.add"
    span: Span  # its name in its `def`
    score: float  # 0..1; higher is more suspicious
    why: str = ""  # the evidence, for people: "ran in 2 of 2 failing tests, 0 of 9 passing"


@dataclass
class FailureMark:
    """One diagnostic to show, before it is turned into LSP (the server) or text (--fix)."""

    span: Span
    kind: FailureKind
    message: str
    test_id: str | None
    function: str | None  # dotted: "calc.add", "pkg.mod.Calc.add"
    longrepr: str
    related: list[tuple[Span, str]] = field(default_factory=list)
    # Where the test failed, for the mark at the function under test: many failing tests on
    # one function's line are ordered by where they are (server/diagnostics.py shows the
    # first ones), which does not change from run to run as the order of arrival could.
    origin: Span | None = None
    # The ranked functions the fault may be in, most suspicious first (issue 15); the mark
    # at the function is at the first. Empty when no ranking was made (the rule above).
    suspects: list[Suspect] = field(default_factory=list)

    def order(self) -> tuple[int, int, str, int, str]:
        """Its place in its file's list: by line, then by the failing test's place."""
        origin = self.origin or self.span
        return (self.span.line, self.span.start, origin.path, origin.line, self.message)


@functools.lru_cache(maxsize=16)
def source_lines(source: str) -> list[str]:
    """The lines of a file's text, split once: thousands of failures in one test file each
    read one line of it (a cache hit is by identity: the same text object is read again)."""
    return source.splitlines()


_MEMO_LIMIT = 10_000


def _remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
    if len(memo) >= _MEMO_LIMIT:  # a workspace's files are far fewer: only a bound
        memo.clear()
    memo[key] = value


@dataclass(frozen=True)
class TargetFunction:
    path: str
    qualname: str
    span: Span
    dotted: str


def _line_span(path: str, source: str | None, line: int) -> Span:
    """The text of a 1-based line, from its first non-blank character to its end."""
    lines = source_lines(source or "")
    index = max(line - 1, 0)
    if index < len(lines):
        text = lines[index]
        start = len(text) - len(text.lstrip())
        return Span(path, index, start, max(len(text.rstrip()), start))
    return Span(path, index, 0, 0)


class FailureLocator:
    """Maps reports to marks for one workspace root; reads files through `read`."""

    def __init__(self, root: Path, read: ReadSource, index: ModuleIndex | None = None) -> None:
        self.root = root
        self.read = read
        self.index = index or ModuleIndex(root)
        self._root_prefix = os.path.normcase(str(root.resolve())) + os.sep
        # Thousands of failures name the same few files and functions: what is known of a
        # path, and each function found in a text (valid while the text is the same object),
        # is worked out once (a few stats and an AST walk each time add up: issue 14).
        self._in_workspace: dict[str, bool] = {}
        self._test_paths: dict[str, bool] = {}
        self._targets: dict[tuple[str, str], tuple[str, TargetFunction | None]] = {}

    def in_workspace(self, path: str) -> bool:
        known = self._in_workspace.get(path)
        if known is None:
            known = os.path.normcase(path).startswith(self._root_prefix) and not (
                is_ignored_path(Path(path), self.root) or "site-packages" in path
            )
            _remember(self._in_workspace, path, known)
        return known

    def is_test_path(self, path: str, report: TestReport | None = None) -> bool:
        """Test modules, conftest files, and anything under a tests/ or test/ folder (helpers)."""
        if report is not None and report.path is not None and path == report.path:
            return True
        known = self._test_paths.get(path)
        if known is None:
            relative = os.path.relpath(path, self.root)
            known = is_test_file(Path(path)) or any(
                part in TEST_DIR_NAMES for part in Path(relative).parts[:-1]
            )
            _remember(self._test_paths, path, known)
        return known

    def target_of(self, report: TestReport) -> TargetFunction | None:
        """The function under test of a failed report, or None when there is none to name."""
        if report.doctest:
            # The function it documents (the plugin's `called`) before the frames: the
            # file that holds a doctest is not a test file, and its frames would often name
            # a helper the function calls.
            return self._called_target(report) or self._frame_target(report, None)
        return (
            self._frame_target(report, report)
            or self._called_target(report)
            or self._static_target(report)
        )

    def _frame_target(self, report: TestReport, test: TestReport | None) -> TargetFunction | None:
        """The deepest traceback frame in a function of the workspace outside the tests;
        then the same in the exceptions it was chained from, the nearest first (the plugin's
        chained_frames: the root cause's are first, so read backwards, the nearest's deepest
        frame comes first)."""
        for frame in itertools.chain(reversed(report.frames), reversed(report.chained_frames)):
            if not self.in_workspace(frame.path) or self.is_test_path(frame.path, test):
                continue
            if frame.function == "<module>":
                continue
            source = self.read(frame.path)
            if source is None:
                continue
            found = enclosing_function(source, frame.line, frame.function)
            if found is not None:
                return self._target(frame.path, found.qualname, source)
        return None

    def _called_target(self, report: TestReport) -> TargetFunction | None:
        if report.called is not None and self.in_workspace(report.called.path):
            source = self.read(report.called.path)
            if source is not None:
                return self._target(report.called.path, report.called.qualname, source)
        return None

    def _static_target(self, report: TestReport) -> TargetFunction | None:
        # Other runners give no live resolution: read the failing statement and the imports.
        if report.path is None:
            return None
        line = self.test_line(report)
        source = self.read(report.path)
        if source is None or line is None:
            return None
        node = statement_at(source, line)
        test_module = self.index.module_for_path(Path(report.path)) or Path(report.path).stem
        for dotted in called_names(node) if node is not None else []:
            resolved = resolve_call(source, test_module, dotted, self.index)
            if resolved is None:
                continue
            # Real: a module name may lead through a symlinked directory (`loop.calc`).
            path, qualname = os.path.realpath(resolved[0]), resolved[1]
            target_source = self.read(path)
            if target_source is not None and find_function(target_source, qualname):
                return self._target(path, qualname, target_source)
        return None

    def _target(self, path: str, qualname: str, source: str) -> TargetFunction | None:
        cached = self._targets.get((path, qualname))
        if cached is not None and cached[0] is source:
            return cached[1]
        target = self._find_target(path, qualname, source)
        _remember(self._targets, (path, qualname), (source, target))
        return target

    def _find_target(self, path: str, qualname: str, source: str) -> TargetFunction | None:
        found = find_function(source, qualname)
        if found is None:
            return None
        module = self.index.module_for_path(Path(path)) or Path(path).stem
        span = Span(path, found.def_line - 1, found.name_col, found.name_col + len(found.name))
        return TargetFunction(path, found.qualname, span, f"{module}.{found.qualname}")

    def test_line(self, report: TestReport) -> int | None:
        """1-based line where the test failed: its deepest frame in its own file, else its def
        (for a doctest: its failing example)."""
        if report.path is not None and not report.doctest:
            for frame in reversed(report.frames):
                if frame.path == report.path:
                    return frame.line
        return report.line

    def marks_for(self, report: TestReport, suspects: Sequence[Suspect] = ()) -> list[FailureMark]:
        """The marks of a failed report: at its failing line, and at the function under test.

        With `suspects` (the ranking of testing/localize.py, most suspicious first) the
        function mark goes on the first, and the next ones (RELATED_SUSPECTS at most) are
        named in relatedInformation; without, the function is today's rule's (target_of).
        """
        if not report.failed or report.path is None:
            return []
        line = self.test_line(report) or 1
        test_span = _line_span(report.path, self.read(report.path), line)
        target: TargetFunction | Suspect | None = (
            suspects[0] if suspects else self.target_of(report)
        )
        message = f"{report.test_id}: {report.message or report.outcome}"
        function = target.dotted if target else None
        test_mark = FailureMark(
            test_span, report.kind, message, report.test_id, function, report.longrepr
        )
        marks = [test_mark]
        if target is not None:
            function_mark = FailureMark(
                target.span,
                report.kind,
                message,
                report.test_id,
                function,
                report.longrepr,
                origin=test_span,
            )
            test_mark.related.append((target.span, f"function under test: {target.qualname}"))
            function_mark.related.append((test_span, f"failing test: {report.test_id}"))
            marks.append(function_mark)
        for also in suspects[1 : 1 + RELATED_SUSPECTS]:
            for mark in marks:
                mark.related.append(
                    (also.span, f"also suspicious: `{also.qualname}` {also.score:.2f}")
                )
        for mark in marks:
            mark.suspects = list(suspects)
        return marks

    def marks_for_collection_error(self, error: CollectionError) -> list[FailureMark]:
        source = self.read(error.path)
        span = _line_span(error.path, source, error.line or 1)
        return [
            FailureMark(
                span, "collection-error", error.message, None, None, error.longrepr, related=[]
            )
        ]
