"""Failure marks to LSP diagnostics, published per file at a cost linear in the run.

A run of 10,000 failing tests streams 10,000 results, thousands into one test file and onto
the few lines of the functions they test. Re-sending a file's whole list on each would be
quadratic (issue 14: 588 MB to the editor in 82 s). What keeps it linear:

- a file shows at most MAX_PER_FILE failures, the first by line, and one Information
  diagnostic for the rest, "and 9,900 more failing tests in this file"; the diagnostics of
  the hidden ones are never built;
- a file's list is sent only when it changed, and while a run goes on a change of the
  summary's count alone waits for the run's end (the progress counts the failures meanwhile):
  a full list is not re-sent for each further failure;
- changed files are flushed together, the first change at once (the first failure shows
  immediately), then at most every FLUSH_INTERVAL, an interval that grows with the work the
  run's flushes did (marks ordered, diagnostics sent): a run that has little to show is never
  slowed, a huge one is flushed less and less often, and exactly at its end.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from lsprotocol import types
from pygls.workspace import PositionCodec

from oci_lsp.server.documents import path_to_uri
from oci_lsp.testing.failures import FailureMark, Span

SOURCE = "oci-lsp"
FLUSH_INTERVAL = 0.1
# The flush interval grows by FLUSH_INTERVAL for each this many marks a run's flushes handled.
FLUSH_WORK_STEP = 2000
MAX_PER_FILE = 100  # failures shown in one file; the rest are counted by one summary
SUMMARY_CODE = "more-failures"


def span_to_range(span: Span, line_text: str | None, codec: PositionCodec) -> types.Range:
    """Code-point columns to the position encoding the client negotiated (UTF-16 by default)."""
    if line_text is None:
        return types.Range(
            types.Position(span.line, span.start), types.Position(span.line, span.end)
        )
    lines = [line_text]
    start = codec.position_to_client_units(lines, types.Position(0, span.start)).character
    end = codec.position_to_client_units(lines, types.Position(0, span.end)).character
    return types.Range(types.Position(span.line, start), types.Position(span.line, end))


class DiagnosticsPublisher:
    def __init__(
        self,
        publish: Callable[[str, list[types.Diagnostic]], None],
        marks_for_path: Callable[[str], list[FailureMark]],
        line_of: Callable[[str, int], str | None],
        codec: Callable[[], PositionCodec],
        uri_for: Callable[[str], str] = path_to_uri,
    ) -> None:
        self._publish = publish
        self._marks_for_path = marks_for_path
        self._line_of = line_of
        self._codec = codec
        self._uri_for = uri_for
        self._dirty: set[str] = set()
        # What each URI was last sent: a run that reports a failure again (the ordered run
        # after the affected one) must not send the editor the same list again.
        self._sent: dict[str, list[types.Diagnostic]] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._last_flush = 0.0
        self._runs = 0  # runs going on
        self._work = 0  # marks ordered and diagnostics sent by this run's flushes
        self._deferred: set[str] = set()  # files whose summary alone is behind, until the end

    # -- when ---------------------------------------------------------------------------------

    def interval(self) -> float:
        """The least time between two flushes now."""
        return FLUSH_INTERVAL * max(1.0, self._work / FLUSH_WORK_STEP)

    def run_started(self) -> None:
        if self._runs == 0:
            self._work = 0
        self._runs += 1

    def run_finished(self) -> None:
        """A run ended: every file gets its exact list now (summary counts included)."""
        self._runs = max(0, self._runs - 1)
        if self._runs == 0:
            self._dirty |= self._deferred
            self._deferred.clear()
        self.flush()

    def changed(self, paths: Iterable[str]) -> None:
        self._dirty.update(paths)
        if self._handle is not None or not self._dirty:
            return
        wait = self._last_flush + self.interval() - time.monotonic()
        if wait <= 0:
            self.flush()
        else:
            self._handle = asyncio.get_running_loop().call_later(wait, self.flush)

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._last_flush = time.monotonic()
        dirty, self._dirty = self._dirty, set()
        for path in sorted(dirty):
            self.publish_now(path)

    # -- what ---------------------------------------------------------------------------------

    def publish_now(self, path: str, force: bool = False) -> None:
        """Send path's diagnostics, unless the client has exactly these already (or force:
        a client may drop a closed file's diagnostics and needs them again on open). While a
        run goes on, a list that differs only in its summary waits for the run's end."""
        uri = self._uri_for(path)
        diagnostics = self.diagnostics_for(path)
        sent = self._sent.get(uri, [])
        if not force and sent == diagnostics:
            self._deferred.discard(path)
            return
        if not force and self._runs and _only_the_summary_differs(sent, diagnostics):
            self._deferred.add(path)
            return
        self._deferred.discard(path)
        if diagnostics:
            self._sent[uri] = diagnostics
        else:
            self._sent.pop(uri, None)
        self._work += len(diagnostics)
        self._publish(uri, diagnostics)

    def diagnostics_for(self, path: str) -> list[types.Diagnostic]:
        """The first MAX_PER_FILE failures in path by line, and a summary of the rest."""
        marks = sorted(self._marks_for_path(path), key=FailureMark.order)
        self._work += len(marks)
        codec = self._codec()
        shown, hidden = marks[:MAX_PER_FILE], marks[MAX_PER_FILE:]
        out = [self._diagnostic(path, mark, codec) for mark in shown]
        if hidden:
            out.append(self._summary(path, shown, hidden, codec))
        return out

    def _range(self, span: Span, codec: PositionCodec) -> types.Range:
        return span_to_range(span, self._line_of(span.path, span.line), codec)

    def _diagnostic(self, path: str, mark: FailureMark, codec: PositionCodec) -> types.Diagnostic:
        related = [
            types.DiagnosticRelatedInformation(
                location=types.Location(
                    uri=self._uri_for(span.path), range=self._range(span, codec)
                ),
                message=text,
            )
            for span, text in mark.related
        ]
        return types.Diagnostic(
            range=self._range(mark.span, codec),
            severity=types.DiagnosticSeverity.Error,
            source=SOURCE,
            code=mark.kind,
            message=mark.message,
            related_information=related or None,
            data={
                "test": mark.test_id,
                "function": mark.function,
                "kind": mark.kind,
                "failure": mark.longrepr,
            },
        )

    def _summary(
        self,
        path: str,
        shown: list[FailureMark],
        hidden: list[FailureMark],
        codec: PositionCodec,
    ) -> types.Diagnostic:
        """One Information diagnostic at the first failure not shown, counting the failing
        tests not shown (a failure with no test, a collection error, counts as one)."""
        listed = {m.test_id for m in shown if m.test_id is not None}
        tests = {m.test_id or str(id(m)) for m in hidden} - listed
        count, what = (len(tests), "failing test") if tests else (len(hidden), "failure")
        return types.Diagnostic(
            range=self._range(hidden[0].span, codec),
            severity=types.DiagnosticSeverity.Information,
            source=SOURCE,
            code=SUMMARY_CODE,
            message=f"and {count:,} more {what}{'' if count == 1 else 's'} in this file",
            data={"hidden": count},
        )


def _only_the_summary_differs(sent: list[types.Diagnostic], now: list[types.Diagnostic]) -> bool:
    """Both lists end with a summary, and the failures they show are the same."""
    return bool(
        sent
        and now
        and sent[-1].code == SUMMARY_CODE
        and now[-1].code == SUMMARY_CODE
        and sent[:-1] == now[:-1]
    )
