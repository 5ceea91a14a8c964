"""Work-done progress that the user can cancel, reported no more often than a person can read."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable

from lsprotocol import types
from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)

REPORT_INTERVAL = 0.1


class Progress:
    """One server-initiated progress; a no-op when the client does not support progress."""

    def __init__(self, server: LanguageServer, title: str, on_cancel: Callable[[], None]) -> None:
        self.server = server
        self.title = title
        self.on_cancel = on_cancel
        self.token = f"oci-{uuid.uuid4().hex}"
        self._ready: asyncio.Task[bool] | None = None
        self._last = 0.0
        self._pending: tuple[str, int | None] | None = None
        self._ended = False

    def _supported(self) -> bool:
        window = self.server.client_capabilities.window
        return bool(window and window.work_done_progress)

    def begin(self, message: str = "") -> None:
        if self._supported():
            self._ready = asyncio.ensure_future(self._create(message))

    async def _create(self, message: str) -> bool:
        try:
            await self.server.work_done_progress.create_async(self.token)
        except Exception as exc:  # the client refused: carry on without progress
            log.info("client refused work-done progress: %s", exc)
            return False
        if self._ended:
            return False
        future = self.server.work_done_progress.tokens.get(self.token)
        if future is not None:
            future.add_done_callback(lambda f: self.on_cancel() if f.cancelled() else None)
        self.server.work_done_progress.begin(
            self.token,
            types.WorkDoneProgressBegin(
                title=self.title, message=message or None, cancellable=True, percentage=0
            ),
        )
        if self._pending is not None:
            self._send(*self._pending)
        return True

    def report(self, message: str, percentage: int | None = None, *, stage: bool = False) -> None:
        """A new message; a `stage` (a new step of the work, seldom) is sent at once, other
        reports (counters) at most every REPORT_INTERVAL."""
        if self._ready is None or self._ended:
            return
        too_soon = time.monotonic() - self._last < REPORT_INTERVAL
        if not self._ready.done() or (too_soon and not stage):
            self._pending = (message, percentage)
            return
        if self._ready.result():
            self._send(message, percentage)

    def _send(self, message: str, percentage: int | None) -> None:
        self._last = time.monotonic()
        self._pending = None
        self.server.work_done_progress.report(
            self.token, types.WorkDoneProgressReport(message=message, percentage=percentage)
        )

    def end(self, message: str = "") -> None:
        self._ended = True
        ready = self._ready
        if ready is None:
            return

        def finish(task: asyncio.Task[bool]) -> None:
            if not task.cancelled() and task.exception() is None and task.result():
                self.server.work_done_progress.end(
                    self.token, types.WorkDoneProgressEnd(message=message or None)
                )
            self.server.work_done_progress.tokens.pop(self.token, None)

        if ready.done():
            finish(ready)
        else:
            ready.add_done_callback(finish)
