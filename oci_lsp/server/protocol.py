"""pygls's protocol with two of its request-handling bugs mended for our commands."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from lsprotocol import types
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method


class OciProtocol(LanguageServerProtocol):
    """$/cancelRequest of a command reaches the command's own task.

    pygls runs `workspace/executeCommand` as a generator that starts the command in a task of
    its own, under an id of its own: a cancel of the request answers the client but leaves
    that task (a generation, a test run) running. Here the request's cancel cancels it too.
    """

    def _execute_handler(self, msg_id: Any, handler: Any, *args: Any, **kwargs: Any) -> None:
        super()._execute_handler(msg_id, handler, *args, **kwargs)
        callback = kwargs.get("callback", args[0] if args else None)
        outer = getattr(callback, "keywords", {}).get("result_future")
        inner = self._request_futures.get(msg_id)
        if outer is not None and inner is not None and inner is not outer:
            outer.add_done_callback(lambda done: inner.cancel() if done.cancelled() else None)

    @lsp_method(types.SHUTDOWN)
    def lsp_shutdown(self, *args: Any) -> Generator[Any, Any, None]:
        """pygls's, cancelling the requests still running over a copy of their table: a
        cancelled request removes itself from it at once (pygls iterates the table itself and
        fails with "dictionary changed size" when a command is running at shutdown)."""
        if (user_handler := self.fm.features.get(types.SHUTDOWN)) is not None:
            yield user_handler, args, None
        current = self.msg_id
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current and not future.done():
                future.cancel()
        self._shutdown = True
        return None
