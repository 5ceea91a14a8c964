"""The server's read loop over stdio: frames (framing.py), checked (malformed.py), then pygls.

It replaces pygls's loop (pygls.io_.run_async), which reads exactly Content-Length bytes with a
blocking read, hands whatever fails to parse to the `Error in server` pop-up, and ignores every
request after `shutdown` without an answer (LSP: they "should error with InvalidRequest").
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, BinaryIO

import cattrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from oci_lsp.server.framing import Frame, Framer
from oci_lsp.server.malformed import (
    FRAMING,
    INVALID_PARAMS,
    INVALID_REQUEST,
    LINES,
    NOT_JSON_RPC,
    SERVER_NOT_INITIALIZED,
    Rejection,
    check,
    error_answer,
    params_kind,
)

if TYPE_CHECKING:
    from oci_lsp.server.protocol import OciProtocol

log = logging.getLogger(__name__)

CHUNK = 1 << 16
READ_AHEAD = 8  # chunks read from stdin before the loop takes them
SHUTDOWN_WAIT = 30.0  # seconds a message after `shutdown` waits for it to end


class StdinChunks:
    """stdin's bytes as they come, from a daemon thread: a blocked read must not keep the
    process from exiting after `exit`, and a cancelled wait must not lose a chunk."""

    def __init__(self, stdin: BinaryIO) -> None:
        self._stdin = stdin
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._room = threading.Semaphore(READ_AHEAD)
        threading.Thread(target=self._run, name="oci-lsp-stdin", daemon=True).start()

    def _reader(self) -> Callable[[int], bytes]:
        # os.read on the descriptor: a thread blocked in the buffered object's read holds its
        # lock, and the interpreter's exit then aborts on it.
        try:
            fd = self._stdin.fileno()
        except (OSError, ValueError):
            return getattr(self._stdin, "read1", self._stdin.read)
        return lambda n: os.read(fd, n)

    def _run(self) -> None:
        read = self._reader()
        while True:
            self._room.acquire()
            try:
                chunk = read(CHUNK)
            except (OSError, ValueError):
                chunk = b""
            try:
                self._loop.call_soon_threadsafe(self._queue.put_nowait, chunk)
            except RuntimeError:  # the loop is closed: the server has ended
                return
            if not chunk:
                return

    async def read(self) -> bytes:
        chunk = await self._queue.get()
        self._room.release()
        return chunk


def _dispatch(protocol: OciProtocol, frame: Frame) -> None:
    """Run one message, or answer and tell why it is not run."""
    if frame.skipped.strip():
        details = f"skipped {len(frame.skipped)} bytes that belonged to no message: "
        protocol.notices.tell(FRAMING, LINES[FRAMING], details + repr(frame.skipped[:300]))
    checked = check(frame.body, frame.problem, frame.value)
    if isinstance(checked, Rejection):
        _reject(protocol, checked, frame.body)
        return
    method = checked.get("method")
    if method is None:  # the editor's answer to a request of ours
        checked.setdefault("result", None)  # JavaScript drops a result that is undefined
        _structured(protocol, checked, frame.body)
        return
    msg_id = checked.get("id")
    refusal = _lifecycle(protocol, method)
    if refusal is not None:
        log.warning("%s: %s", refusal[1], frame.body[:300])
        if msg_id is not None:  # a notification is dropped (LSP)
            protocol._send_data(error_answer(msg_id, *refusal))
        return
    checked.setdefault("params", None)  # optional in JSON-RPC; pygls's types require it
    _structured(protocol, checked, frame.body)


def _lifecycle(protocol: OciProtocol, method: str) -> tuple[int, str] | None:
    """LSP's rules on what may come before `initialize` and after `shutdown`."""
    if method == types.EXIT:
        return None
    if protocol.shut_down:
        return INVALID_REQUEST, f"the server is shut down; {method} is not run"
    initialized = protocol.initialized
    if method == types.INITIALIZE and initialized:
        return INVALID_REQUEST, "initialize came twice"
    if method != types.INITIALIZE and not initialized:
        return SERVER_NOT_INITIALIZED, f"{method} came before initialize"
    return None


def _structured(protocol: OciProtocol, data: dict[str, Any], body: bytes) -> None:
    """data as pygls's types, handled; params that do not fit them get InvalidParams."""
    try:
        message = protocol.structure_message(data)
    except JsonRpcException as exc:
        method = data.get("method")
        msg_id = data.get("id")
        reason = f"the params of {method} are not valid: {_why(exc)}"
        if method is None:
            reason = f"the answer to request {msg_id!r} is not valid: {_why(exc)}"
            kind = NOT_JSON_RPC
        else:
            kind = params_kind(method)
        is_request = method is not None and msg_id is not None
        _reject(protocol, Rejection(INVALID_PARAMS, reason, kind, msg_id, is_request), body)
        return
    protocol.handle_message(message)


def _reject(protocol: OciProtocol, rejection: Rejection, body: bytes) -> None:
    if rejection.answer:  # a request
        protocol._send_data(error_answer(rejection.msg_id, rejection.code, rejection.reason))
    if rejection.answer and rejection.code == INVALID_PARAMS:
        log.warning("%s", rejection.reason)  # its answer tells the editor: no pop-up
    else:
        protocol.notices.reject(rejection, body)
    if not rejection.answer and rejection.msg_id is not None:
        # An answer of the editor's that cannot be read: what waits for it fails, not hangs.
        protocol.fail_request(rejection.msg_id, rejection.code, rejection.reason)


def _why(exc: JsonRpcException) -> str:
    cause = exc.__cause__
    if isinstance(cause, cattrs.ClassValidationError):
        return "; ".join(cattrs.transform_error(cause))
    return str(cause or exc)


async def serve(read: Callable[[], Awaitable[bytes]], protocol: OciProtocol) -> None:
    """Read and run messages until the stream ends (or `exit` ends the process)."""
    async for frame in Framer(read).frames():
        shutting_down = protocol.pending_shutdown()
        if shutting_down is not None:
            # `exit` (or anything) sent without waiting for the answer to `shutdown` comes
            # after it: exit's code says whether shutdown was done, and its answer is sent.
            await asyncio.wait({asyncio.wrap_future(shutting_down)}, timeout=SHUTDOWN_WAIT)
        else:
            await asyncio.sleep(0)  # a flood of messages in one chunk leaves the loop its turns
        try:
            _dispatch(protocol, frame)
        except Exception:  # one message must never end the loop
            log.exception("a message could not be handled: %r", frame.body[:300])
            line = "oci-lsp: a message from the editor could not be handled (details in the log)"
            protocol.notices.tell("internal", line, "see the traceback above")
