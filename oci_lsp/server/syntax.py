"""The `syntax-error` diagnostic: a Python module that does not parse, shown where the parser
stopped, whether or not a test imports it (issue 16).

Checked on open and on save; while an error is showing, also on edits (after a pause), so it
goes away as soon as the text parses again rather than at the next save. The parser is the
one of the interpreter that runs the folder's tests (tools/syntax.py), so a 3.12-only syntax
in a 3.12 project is not an error because the server runs on 3.11.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from oci_lsp.testing.failures import Span
from oci_lsp.tools.findings import Finding
from oci_lsp.tools.syntax import syntax_error_in

log = logging.getLogger(__name__)

EDIT_PAUSE = 0.3  # seconds after the last edit before a showing error is checked again


class SyntaxChecks:
    def __init__(
        self,
        read: Callable[[str], str | None],
        python_for: Callable[[str], Awaitable[str | None]],
        show: Callable[[str, tuple[Span, str] | None], None],
    ) -> None:
        self._read = read  # the buffer's text when open, else the file's
        self._python_for = python_for  # the folder's test interpreter; None: outside
        self._show = show
        self._showing: set[str] = set()
        self._pending: dict[str, asyncio.Task[None]] = {}

    def opened_or_saved(self, path: str) -> None:
        self._schedule(path, 0.0)

    def edited(self, path: str) -> None:
        if path in self._showing:
            self._schedule(path, EDIT_PAUSE)

    def closed(self, path: str) -> None:
        """A closed buffer's error stays while the file on disk has it."""
        self._schedule(path, 0.0)

    def _schedule(self, path: str, pause: float) -> None:
        if not path.endswith(".py"):
            return
        running = self._pending.pop(path, None)
        if running is not None:
            running.cancel()
        task = asyncio.ensure_future(self._check(path, pause))
        self._pending[path] = task
        task.add_done_callback(lambda t: self._done(path, t))

    def _done(self, path: str, task: asyncio.Task[None]) -> None:
        if self._pending.get(path) is task:
            del self._pending[path]
        if not task.cancelled() and task.exception() is not None:
            log.error("syntax check of %s", path, exc_info=task.exception())

    async def _check(self, path: str, pause: float) -> None:
        if pause:
            await asyncio.sleep(pause)
        python = await self._python_for(path)
        text = self._read(path)
        if python is None or text is None:
            return
        found = await syntax_error_in(python, Path(path), text)
        if found is None:
            self._showing.discard(path)
            self._show(path, None)
        else:
            self._showing.add(path)
            self._show(path, (_span(found, text), found.message))

    async def close(self) -> None:
        for task in list(self._pending.values()):
            task.cancel()


def _span(finding: Finding, text: str) -> Span:
    """Where the parser stopped, on one line (0-based, code points)."""
    lines = text.splitlines() or [""]
    line = min(max(finding.line, 1), len(lines)) - 1
    start = max(finding.column - 1, 0)
    end = finding.end_column - 1 if finding.end_line == finding.line and finding.end_column else 0
    length = len(lines[line])
    start = min(start, length)
    end = min(max(end, start + 1), length) if length else 0
    return Span(str(finding.path), line, start, max(end, start))
