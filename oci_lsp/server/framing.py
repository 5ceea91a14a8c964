"""The editor's byte stream cut into message bodies, resynchronised when its framing is wrong.

pygls reads `Content-Length: n` and then exactly n bytes: a header that says too few bytes
leaves the rest of the body to be read as the next header (and every later message out of
step), one that says too many waits for bytes that never come, and a missing one loses the
message. Here the stream is read as it comes, and a frame whose length is wrong is found by
what a JSON body can never hold: a raw `Content-Length:` or `Content-Type:` header line (a JSON
string cannot hold a raw line break, and outside strings a bare name is not JSON). So:

- too long: the body ends where the next header starts, or, when the editor sends nothing
  more, at the pause once what came is a whole JSON value;
- too short: the bytes up to the next header complete the body;
- missing or not a number: the body is what comes before the next header (or the pause).

A frame read that way carries its problem, so the request in it is answered with an error
rather than run (its framing was wrong: the server cannot be sure it is what was meant).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

# A header line as a client writes it. Never inside a valid JSON text: its value runs to a raw
# CR LF without a quote, and a JSON string can hold neither a raw CR nor end without a quote.
NEXT_HEADER = re.compile(rb'Content-(?:Length|Type):[^\r\n"]*\r\n', re.IGNORECASE)
HEADER_LINE = re.compile(rb"([!#-'*+.0-9A-Z^-z|~-]+):[ \t]*([^\r\n]*?)[ \t]*\r\n")
LENGTH = re.compile(rb"[0-9]{1,12}")
MAX_BODY = 1 << 30  # a declared length above this is read as no length at all
PAUSE = 0.5  # seconds without a byte: the editor has sent all it will for now
WHITESPACE = frozenset(b" \t\r\n")
CLOSING = frozenset(b"}]")


UNPARSED: Any = object()  # what _json returns for bytes that are not a JSON text


@dataclass(frozen=True)
class Frame:
    body: bytes
    problem: str | None = None  # what was wrong with its framing, for the log and the user
    skipped: bytes = b""  # bytes before it that belonged to no message
    value: Any = UNPARSED  # the body parsed, when the framer had to parse it anyway


def _json(data: bytes | bytearray) -> Any:
    """data parsed (UTF-8 only, as LSP says), or UNPARSED."""
    end = len(data) - 1
    while end >= 0 and data[end] in WHITESPACE:  # not rstrip(): no copy of a big body
        end -= 1
    if end < 0 or data[end] not in CLOSING:  # cheap: a message is an object
        return UNPARSED
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError included
        return UNPARSED


def _is_json(data: bytes | bytearray) -> bool:
    return _json(data) is not UNPARSED


class Framer:
    """Frames from read(), a cancel-safe coroutine returning the next bytes (b"" at the end)."""

    def __init__(self, read: Callable[[], Awaitable[bytes]], pause: float = PAUSE) -> None:
        self._read = read
        self._pause = pause
        self._buf = bytearray()
        self._eof = False

    async def _more(self, timeout: float | None = None) -> bool:
        """Read more into the buffer; False at the end of the stream or after a pause."""
        if self._eof:
            return False
        try:
            chunk = await asyncio.wait_for(self._read(), timeout)
        except asyncio.TimeoutError:
            return False
        if not chunk:
            self._eof = True
            return False
        self._buf += chunk
        return True

    def _take(self, n: int) -> bytes:
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def _next_header(self, start: int = 0) -> int | None:
        # A plain find first: a case-insensitive pattern is scanned for at a fraction of
        # memchr's speed, and a big body is scanned as it comes.
        at = self._buf.find(b"ontent-", start + 1)
        while at >= 0:
            if NEXT_HEADER.match(self._buf, at - 1):
                return at - 1
            at = self._buf.find(b"ontent-", at + 1)
        return None

    async def frames(self) -> AsyncIterator[Frame]:
        while True:
            skipped = await self._skip_to_header()
            if skipped is None:
                return
            if isinstance(skipped, Frame):  # a body that came without any header
                yield skipped
                continue
            headers = await self._read_headers()
            if headers is None:
                if self._buf.strip():
                    yield Frame(self._take(len(self._buf)), "no header before it", skipped)
                return
            frame = await self._read_body(headers)
            if frame is None:
                return
            yield Frame(frame.body, frame.problem, skipped, frame.value)

    async def _skip_to_header(self) -> bytes | Frame | None:
        """Drop what precedes the next header (a body without one is a frame of its own)."""
        while True:
            at = self._next_header()
            if at is not None:
                if at == 0:
                    return b""
                before = self._take(at)
                return Frame(before, "no header before it") if _is_json(before) else before
            if self._buf.strip() and not await self._more(self._pause):
                if self._eof or _is_json(self._buf):
                    return Frame(self._take(len(self._buf)), "no header before it")
                await self._more()  # garbage for now: wait for what completes it
            elif not self._buf.strip() and not await self._more():
                return None

    async def _read_headers(self) -> dict[bytes, bytes] | None:
        """The header lines at the start of the buffer, up to the empty line that ends them."""
        headers: dict[bytes, bytes] = {}
        at = 0
        while True:
            if self._buf[at : at + 2] == b"\r\n":
                del self._buf[: at + 2]
                return headers
            line = HEADER_LINE.match(self._buf, at)
            if line is not None:
                headers[line.group(1).lower()] = line.group(2)
                at = line.end()
                continue
            if b"\r\n" in self._buf[at:] or len(self._buf) - at > 4096:
                # Not a header line: the headers ended without their empty line.
                del self._buf[:at]
                return headers
            if not await self._more():
                return None

    async def _read_body(self, headers: dict[bytes, bytes]) -> Frame | None:
        value = headers.get(b"content-length")
        if value is None:
            return await self._read_unframed("no Content-Length")
        if not LENGTH.fullmatch(value) or int(value) > MAX_BODY:
            return await self._read_unframed(f"a Content-Length of {value[:40]!r}")
        length = int(value)
        scanned = 0
        while len(self._buf) < length:
            at = self._next_header(max(0, scanned - 256))
            if at is not None:  # the next message began inside this one: too long
                return Frame(self._take(at), f"a Content-Length {length - at} too long")
            scanned = len(self._buf)
            if not await self._more(self._pause):
                if self._eof:
                    if not self._buf:
                        return None
                    return Frame(self._take(len(self._buf)), "the stream ended in a body")
                if _is_json(self._buf):  # whole, and nothing more comes: too long
                    short = length - len(self._buf)
                    return Frame(self._take(len(self._buf)), f"a Content-Length {short} too long")
        body = self._take(length)
        value = _json(body)
        if value is not UNPARSED:
            return Frame(body, value=value)
        self._buf[:0] = body
        # Not JSON: the next header (waited for, up to a pause) tells a wrong length.
        while self._next_header() is None and await self._more(self._pause):
            pass
        at = self._next_header()
        if at is not None and at < length:  # the next message began inside this one
            return Frame(self._take(at), f"a Content-Length {length - at} too long")
        body = self._take(length)
        # Too short: the bytes up to the next header complete the body.
        tail = bytes(self._buf[: len(self._buf) if at is None else at - length])
        if tail and _is_json(body + tail):
            del self._buf[: len(tail)]
            return Frame(body + tail, f"a Content-Length {len(tail)} too short")
        return Frame(body)  # not JSON, framed right: the caller answers ParseError

    async def _read_unframed(self, problem: str) -> Frame | None:
        """A body without a usable length: up to the next header, or all that came."""
        while self._next_header() is None:
            if not await self._more(self._pause) and (self._eof or _is_json(self._buf)):
                break
        at = self._next_header()
        body = self._take(len(self._buf) if at is None else at)
        if not body and self._eof:
            return None
        return Frame(body, problem)
