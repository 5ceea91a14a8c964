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
from typing import TYPE_CHECKING, BinaryIO

import cattrs
from pygls.exceptions import JsonRpcException

from oci_lsp.server.framing import Frame, Framer
from oci_lsp.server.malformed import (
    FRAMING,
    INVALID_PARAMS,
    INVALID_REQUEST,
    LINES,
    Rejection,
    check,
    error_answer,
    params_kind,
    valid_id,
)

if TYPE_CHECKING:
    from oci_lsp.server.protocol import OciProtocol

log = logging.getLogger(__name__)

CHUNK = 1 << 16
READ_AHEAD = 8  # chunks read from stdin before the loop takes them


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
    notices = protocol.notices
    if frame.skipped.strip():
        details = f"skipped {len(frame.skipped)} bytes that belonged to no message: "
        notices.tell(FRAMING, LINES[FRAMING], details + repr(frame.skipped[:300]))
    checked = check(frame.body, frame.problem)
    if isinstance(checked, Rejection):
        notices.reject(checked, frame.body)
        if checked.answer:
            protocol._send_data(error_answer(checked.msg_id, checked.code, checked.reason))
        return
    msg_id = checked.get("id") if "method" in checked else None
    method = checked.get("method")
    if protocol.shut_down and method is not None and method != "exit":
        log.warning("after shutdown, ignored %s", method)
        if valid_id(msg_id):
            reason = f"the server is shut down; {method} is not run"
            protocol._send_data(error_answer(msg_id, INVALID_REQUEST, reason))
        return
    if method is not None:
        checked.setdefault("params", None)  # optional in JSON-RPC; pygls's types require it
    try:
        message = protocol.structure_message(checked)
    except JsonRpcException as exc:  # params that do not fit the method's types
        reason = f"the params of {method} are not valid: {_why(exc)}"
        if msg_id is not None:
            protocol._send_data(error_answer(msg_id, INVALID_PARAMS, reason))
            log.warning("%s", reason)
        else:
            rejection = Rejection(INVALID_PARAMS, reason, params_kind(str(method)), answer=False)
            notices.reject(rejection, frame.body)
        return
    protocol.handle_message(message)


def _why(exc: JsonRpcException) -> str:
    cause = exc.__cause__
    if isinstance(cause, cattrs.ClassValidationError):
        return "; ".join(cattrs.transform_error(cause))
    return str(cause or exc)


async def serve(read: Callable[[], Awaitable[bytes]], protocol: OciProtocol) -> None:
    """Read and run messages until the stream ends (or `exit` ends the process)."""
    async for frame in Framer(read).frames():
        try:
            _dispatch(protocol, frame)
        except Exception:  # one message must never end the loop
            log.exception("a message could not be handled: %r", frame.body[:300])
            line = "oci-lsp: a message from the editor could not be handled (details in the log)"
            protocol.notices.tell("internal", line, "see the traceback above")
