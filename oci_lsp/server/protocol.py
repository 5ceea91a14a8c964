"""pygls's protocol with its request-handling bugs mended for our commands and editors."""

from __future__ import annotations

import contextvars
from collections.abc import Generator
from concurrent.futures import Future
from typing import Any
from urllib.parse import unquote

from lsprotocol import types
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from oci_lsp.server.malformed import LINES, UNOPENED, Notices


class OciProtocol(LanguageServerProtocol):
    """$/cancelRequest of a command reaches the command's own task.

    pygls runs `workspace/executeCommand` as a generator that starts the command in a task of
    its own, under an id of its own: a cancel of the request answers the client but leaves
    that task (a generation, a test run) running. Here the request's cancel cancels it too.
    """

    def __init__(self, server: Any, converter: Any) -> None:
        super().__init__(server, converter)
        # What the editor got wrong, told once per kind (malformed.py).
        self.notices = Notices(self._warn)
        self._shutdown_request: Future[Any] | None = None
        self._notification: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            "notification", default=None
        )

    def _warn(self, line: str) -> None:
        params = types.ShowMessageParams(type=types.MessageType.Warning, message=line)
        self.notify(types.WINDOW_SHOW_MESSAGE, params)

    @property
    def initialized(self) -> bool:
        """`initialize` was handled (pygls makes the workspace first thing)."""
        return self._workspace is not None

    @property
    def shut_down(self) -> bool:
        """`shutdown` was answered: every request but `exit` is now InvalidRequest."""
        return self._shutdown

    def _execute_handler(self, msg_id: Any, handler: Any, *args: Any, **kwargs: Any) -> None:
        super()._execute_handler(msg_id, handler, *args, **kwargs)
        callback = kwargs.get("callback", args[0] if args else None)
        outer = getattr(callback, "keywords", {}).get("result_future")
        inner = self._request_futures.get(msg_id)
        if outer is not None and inner is not None and inner is not outer:
            outer.add_done_callback(lambda done: inner.cancel() if done.cancelled() else None)

    def pending_shutdown(self) -> Future[Any] | None:
        """The `shutdown` request still running: what comes after it waits for its end."""
        request = self._shutdown_request
        return request if request is not None and not request.done() else None

    def fail_request(self, msg_id: Any, code: int, reason: str) -> None:
        """A request of ours whose answer could not be read fails (what awaits it goes on)."""
        if msg_id in self._request_futures:
            self._handle_response(msg_id, None, types.ResponseError(code=code, message=reason))

    def _handle_notification(self, method_name: str, params: Any) -> None:
        self._notification.set(method_name)  # its context is the handler's, callbacks included
        super()._handle_notification(method_name, params)

    def current_notification(self) -> str | None:
        """The notification whose handler runs (or failed), to name it to the user."""
        return self._notification.get()

    @lsp_method(types.SHUTDOWN)
    def lsp_shutdown(self, *args: Any) -> Generator[Any, Any, None]:
        """pygls's, cancelling the requests still running over a copy of their table: a
        cancelled request removes itself from it at once (pygls iterates the table itself and
        fails with "dictionary changed size" when a command is running at shutdown)."""
        self._shutdown_request = self._request_futures.get(self.msg_id)  # type: ignore[arg-type]
        if (user_handler := self.fm.features.get(types.SHUTDOWN)) is not None:
            yield user_handler, args, None
        current = self.msg_id
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current and not future.done():
                future.cancel()
        self._shutdown = True
        return None

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(
        self, params: types.DidChangeTextDocumentParams
    ) -> Generator[Any, Any, None]:
        """pygls's, but a change to a document the editor never opened is ignored, not a
        KeyError: there is no text to apply it to, and the file on disk is still read."""
        uri = params.text_document.uri
        if unquote(uri) not in self.workspace.text_documents:
            line = LINES[UNOPENED].format(uri=uri)
            self.notices.tell(UNOPENED, line, f"didChange of {uri}, which is not open: ignored")
            return
        yield from super().lsp_text_document__did_change(params)
