"""Failure marks to LSP diagnostics, published per file at a cost linear in the run.

A run of 10,000 failing tests streams 10,000 results, hundreds into each test file and
thousands onto the few lines of the functions they test. Re-sending a file's whole list on
each would be quadratic (issue 14: 588 MB to the editor in 82 s). What keeps it linear:

- a file shows at most MAX_PER_FILE failures, the first by line, and one Information
  diagnostic for the rest, "and 9,900 more failing tests in this file"; the diagnostics of
  the hidden ones are never built;
- a file's list is sent only when it changed; changed files are flushed together, the first
  change at once (the first failure shows immediately), then at most every FLUSH_INTERVAL;
- while a run goes on, each file's lists come at doubling intervals (0.1 s after its first
  one, then 0.2 s, 0.4 s, ...): a list that grows all through a long run is sent a few times,
  not once per flush; and a full list (the cap reached) is not replaced by another full one:
  which failures it shows and the summary's count are settled at the end of the run (the
  progress counts the failures meanwhile);
- the end of a run sends every file's exact list; like every flush, in turns of at most
  FLUSH_TURN seconds of work, so that a request (`oci.status`) waits one turn at most, not
  for 200 files' lists (7.7 MB) built and sent in one go. The run's progress ends after the
  last turn: when the editor sees the end, the diagnostics are there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

from lsprotocol import types
from pygls.workspace import PositionCodec

from oci_lsp.server.documents import path_to_uri
from oci_lsp.testing.failures import FailureMark, Span, Suspect

SOURCE = "oci-lsp"
FLUSH_INTERVAL = 0.1
FLUSH_TURN = 0.01  # seconds of work a flush does before it gives the loop back
MAX_PER_FILE = 100  # failures shown in one file; the rest are counted by one summary
SUMMARY_CODE = "more-failures"
SYNTAX_CODE = "syntax-error"  # a module that does not parse (issue 16)


def span_to_range(span: Span, line_text: str | None, codec: PositionCodec) -> types.Range:
    """Code-point columns to the position encoding the client negotiated (UTF-16 by default)."""
    if line_text is None or line_text.isascii():  # the columns are the same in every encoding
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
        clock: Callable[[], float] = time.monotonic,
        turn: float = FLUSH_TURN,
    ) -> None:
        self._publish = publish
        self._marks_for_path = marks_for_path
        self._line_of = line_of
        self._codec = codec
        self._uri_for = uri_for
        self._clock = clock
        self._turn = turn
        self._dirty: set[str] = set()
        # What each URI was last sent: a run that reports a failure again (the ordered run
        # after the affected one) must not send the editor the same list again.
        self._sent: dict[str, list[types.Diagnostic]] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._after_flush: list[Callable[[], None]] = []  # run once the flush is whole
        self._last_flush = 0.0
        self._runs = 0  # runs going on
        # During a run: when each file may be looked at again, and the gap after that.
        self._next_at: dict[str, float] = {}
        self._gap: dict[str, float] = {}
        self._deferred: set[str] = set()  # full lists kept as they are until the run's end
        # Modules that do not parse, checked on open, save and edit (server/syntax.py):
        # where the error is, and what the parser said.
        self._syntax: dict[str, tuple[Span, str]] = {}

    # -- when ---------------------------------------------------------------------------------

    def run_started(self) -> None:
        if self._runs == 0:
            self._next_at.clear()
            self._gap.clear()
        self._runs += 1

    def run_finished(self, then: Callable[[], None] | None = None) -> None:
        """A run ended: every file gets its exact list now (summary counts included), then
        `then` is called (after the last turn of a flush split in turns)."""
        if then is not None:
            self._after_flush.append(then)
        self._runs = max(0, self._runs - 1)
        if self._runs == 0:
            self._dirty |= self._deferred
            self._deferred.clear()
            self._next_at.clear()
            self._gap.clear()
        self.flush()

    @property
    def ending(self) -> bool:
        """Whether a run's end is still being sent (its last lists, in turns)."""
        return bool(self._after_flush)

    async def ended(self) -> None:
        """Wait until the lists of the runs that ended are all sent."""
        if self._after_flush:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            def sent() -> None:
                if not done.done():
                    done.set_result(None)

            self._after_flush.append(sent)
            await done

    def changed(self, paths: Iterable[str]) -> None:
        self._dirty.update(paths)
        if self._handle is not None or not self._dirty:
            return
        wait = self._last_flush + FLUSH_INTERVAL - self._clock()
        if wait <= 0:
            self.flush()
        else:
            self._handle = asyncio.get_running_loop().call_later(wait, self.flush)

    def flush(self, whole: bool = False) -> None:
        """Send the changed files' lists that are due, in turns (all at once when whole)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        now = self._last_flush = self._clock()
        dirty, self._dirty = sorted(self._dirty), set()
        stop = time.perf_counter() + self._turn
        for i, path in enumerate(dirty):
            if i and not whole and time.perf_counter() > stop:
                # The rest in the next turn of the loop: a request waits one turn at most.
                self._dirty.update(dirty[i:])
                self._handle = asyncio.get_running_loop().call_later(0, self.flush)
                return
            if self._runs and self._next_at.get(path, now) > now:
                self._dirty.add(path)  # its next turn in this run is later
            else:
                self.publish_now(path)
        after, self._after_flush = self._after_flush, []
        for callback in after:
            callback()
        if self._dirty:
            wait = min(self._next_at[p] for p in self._dirty) - now
            self._handle = asyncio.get_running_loop().call_later(
                max(wait, FLUSH_INTERVAL), self.flush
            )

    def _looked_at(self, path: str) -> None:
        """During a run: the file's next turn comes twice as long after this one as the last."""
        if self._runs:
            gap = self._gap.get(path, FLUSH_INTERVAL / 2) * 2
            self._gap[path] = gap
            self._next_at[path] = self._clock() + gap

    def syntax_error(self, path: str, error: tuple[Span, str] | None) -> None:
        """The module at path does not parse (where, what), or parses again (None)."""
        if self._syntax.get(path) == error:
            return
        if error is None:
            self._syntax.pop(path, None)
        else:
            self._syntax[path] = error
        self.changed([path])

    # -- what ---------------------------------------------------------------------------------

    def publish_now(self, path: str, force: bool = False) -> None:
        """Send path's diagnostics, unless the client has exactly these already (or force:
        a client may drop a closed file's diagnostics and needs them again on open). While a
        run goes on, a full list is not replaced by another full one until the run's end."""
        uri = self._uri_for(path)
        diagnostics = self.diagnostics_for(path)
        sent = self._sent.get(uri, [])
        self._looked_at(path)
        if not force and sent == diagnostics:
            self._deferred.discard(path)
            return
        if not force and self._runs and _full(sent) and _full(diagnostics):
            self._deferred.add(path)
            return
        self._deferred.discard(path)
        if diagnostics:
            self._sent[uri] = diagnostics
        else:
            self._sent.pop(uri, None)
        self._publish(uri, diagnostics)

    def diagnostics_for(self, path: str) -> list[types.Diagnostic]:
        """The first MAX_PER_FILE failures in path by line, and a summary of the rest."""
        marks = sorted(self._marks_for_path(path), key=FailureMark.order)
        ranges = _Ranges(self._line_of, self._codec(), self._uri_for)
        out: list[types.Diagnostic] = []
        syntax = self._syntax.get(path)
        if syntax is not None:
            out.append(_syntax_diagnostic(*syntax, ranges))
            # The tests' collection error at the same line is the same fault, said twice.
            marks = [
                m
                for m in marks
                if not (m.kind == "collection-error" and m.span.line == syntax[0].line)
            ]
        shown, hidden = marks[:MAX_PER_FILE], marks[MAX_PER_FILE:]
        out.extend(self._diagnostic(mark, ranges) for mark in shown)
        if hidden:
            out.append(self._summary(shown, hidden, ranges))
        return out

    def _diagnostic(self, mark: FailureMark, ranges: _Ranges) -> types.Diagnostic:
        related = [
            types.DiagnosticRelatedInformation(
                location=types.Location(uri=ranges.uri(span.path), range=ranges(span)),
                message=text,
            )
            for span, text in mark.related
        ]
        data: dict[str, Any] = {
            "test": mark.test_id,
            "function": mark.function,
            "kind": mark.kind,
            "failure": mark.longrepr,
        }
        if mark.suspects:
            # An addition to CONTRACT.md (issue 15): the ranked functions the fault may be
            # in, for the "Fix `g` instead" actions and for clients that list them.
            data["suspects"] = [_suspect(suspect, ranges) for suspect in mark.suspects]
        return types.Diagnostic(
            range=ranges(mark.span),
            severity=types.DiagnosticSeverity.Error,
            source=SOURCE,
            code=mark.kind,
            message=mark.message,
            related_information=related or None,
            data=data,
        )

    def _summary(
        self, shown: list[FailureMark], hidden: list[FailureMark], ranges: _Ranges
    ) -> types.Diagnostic:
        """One Information diagnostic at the first failure not shown, counting the failing
        tests not shown (a failure with no test, a collection error, counts as one)."""
        listed = {m.test_id for m in shown if m.test_id is not None}
        tests = {m.test_id or str(id(m)) for m in hidden} - listed
        count, what = (len(tests), "failing test") if tests else (len(hidden), "failure")
        return types.Diagnostic(
            range=ranges(hidden[0].span),
            severity=types.DiagnosticSeverity.Information,
            source=SOURCE,
            code=SUMMARY_CODE,
            message=f"and {count:,} more {what}{'' if count == 1 else 's'} in this file",
            data={"hidden": count},
        )


class _Ranges:
    """Spans to LSP ranges and URIs for one list: the lines and files it names (a hundred
    failures at one function's line) are read and spelled once."""

    def __init__(
        self,
        line_of: Callable[[str, int], str | None],
        codec: PositionCodec,
        uri_for: Callable[[str], str],
    ) -> None:
        self._line_of = line_of
        self._codec = codec
        self._uri_for = uri_for
        self._lines: dict[tuple[str, int], str | None] = {}
        self._uris: dict[str, str] = {}

    def __call__(self, span: Span) -> types.Range:
        key = (span.path, span.line)
        if key not in self._lines:
            self._lines[key] = self._line_of(span.path, span.line)
        return span_to_range(span, self._lines[key], self._codec)

    def uri(self, path: str) -> str:
        if path not in self._uris:
            self._uris[path] = self._uri_for(path)
        return self._uris[path]


def _suspect(suspect: Suspect, ranges: _Ranges) -> dict[str, Any]:
    """One entry of `data.suspects`, as JSON: where the function's name is, and its score."""
    where = ranges(suspect.span)
    return {
        "function": suspect.dotted,
        "uri": ranges.uri(suspect.path),
        "range": {
            "start": {"line": where.start.line, "character": where.start.character},
            "end": {"line": where.end.line, "character": where.end.character},
        },
        "score": round(suspect.score, 2),
        "why": suspect.why,
    }


def _syntax_diagnostic(span: Span, message: str, ranges: _Ranges) -> types.Diagnostic:
    return types.Diagnostic(
        range=ranges(span),
        severity=types.DiagnosticSeverity.Error,
        source=SOURCE,
        code=SYNTAX_CODE,
        message=message,
        data={"kind": SYNTAX_CODE},
    )


def _full(diagnostics: list[types.Diagnostic]) -> bool:
    """A list with the cap reached: its last diagnostic is the summary of the rest."""
    return bool(diagnostics) and diagnostics[-1].code == SUMMARY_CODE
