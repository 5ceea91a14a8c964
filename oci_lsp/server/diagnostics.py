"""Failure marks to LSP diagnostics, published per file and never more often than needed.

A suite of 2,000 failing tests streams 2,000 results; republishing a test file's whole list
on each would be quadratic. Changed files are collected and flushed at most every
FLUSH_INTERVAL, the first one at once, so the first failure still shows immediately.
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

    def changed(self, paths: Iterable[str]) -> None:
        self._dirty.update(paths)
        if self._handle is not None or not self._dirty:
            return
        wait = self._last_flush + FLUSH_INTERVAL - time.monotonic()
        if wait <= 0:
            self.flush()
        else:
            self._handle = asyncio.get_running_loop().call_later(wait, self.flush)

    def flush(self) -> None:
        self._handle = None
        self._last_flush = time.monotonic()
        dirty, self._dirty = self._dirty, set()
        for path in sorted(dirty):
            self.publish_now(path)

    def publish_now(self, path: str, force: bool = False) -> None:
        """Send path's diagnostics, unless the client has exactly these already (or force:
        a client may drop a closed file's diagnostics and needs them again on open)."""
        uri = self._uri_for(path)
        diagnostics = self.diagnostics_for(path)
        if not force and self._sent.get(uri, []) == diagnostics:
            return
        if diagnostics:
            self._sent[uri] = diagnostics
        else:
            self._sent.pop(uri, None)
        self._publish(uri, diagnostics)

    def diagnostics_for(self, path: str) -> list[types.Diagnostic]:
        codec = self._codec()
        out = []
        for mark in self._marks_for_path(path):
            related = [
                types.DiagnosticRelatedInformation(
                    location=types.Location(
                        uri=self._uri_for(span.path),
                        range=span_to_range(span, self._line_of(span.path, span.line), codec),
                    ),
                    message=text,
                )
                for span, text in mark.related
            ]
            out.append(
                types.Diagnostic(
                    range=span_to_range(mark.span, self._line_of(path, mark.span.line), codec),
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
            )
        out.sort(key=lambda d: (d.range.start.line, d.range.start.character, d.message))
        return out
