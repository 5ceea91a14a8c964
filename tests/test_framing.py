"""The framer's logic (oci_lsp/server/framing.py): the byte stream as editors really write it,
in pieces and with pauses, must never be cut where it is right; wrong framing is found.

The end-to-end behaviour (answers, warnings) is in tests/test_protocol_e2e.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from oci_lsp.server.framing import Frame, Framer

PAUSE = 0.05  # the framer's pause in these tests; PAUSE_MARK in the script waits longer
PAUSE_MARK = None


def body(n: int, text: str = "x = 1\n") -> bytes:
    message = {"jsonrpc": "2.0", "id": n, "method": "m", "params": {"text": text}}
    return json.dumps(message).encode()


def frame(data: bytes, length: int | None = None) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % (len(data) if length is None else length) + data


def frames_of(script: Sequence[bytes | None]) -> list[Frame]:
    """The frames read from the chunks of script (None: the editor pauses, then goes on)."""

    async def run() -> list[Frame]:
        chunks = list(script)

        async def read() -> bytes:
            if not chunks:
                return b""
            chunk = chunks.pop(0)
            if chunk is PAUSE_MARK:
                await asyncio.sleep(PAUSE * 4)
                return chunks.pop(0) if chunks else b""
            return chunk

        return [f async for f in Framer(read, pause=PAUSE).frames()]

    return asyncio.run(run())


def one_byte_at_a_time(data: bytes) -> list[bytes | None]:
    return [data[i : i + 1] for i in range(len(data))]


def test_messages_in_one_byte_pieces_are_read_whole() -> None:
    data = frame(body(1)) + frame(body(2))
    assert [f.body for f in frames_of(one_byte_at_a_time(data))] == [body(1), body(2)]
    assert all(f.problem is None and f.skipped == b"" for f in frames_of([data]))


def test_a_pause_in_the_middle_of_a_body_is_waited_out() -> None:
    data = frame(body(1))
    got = frames_of([data[:40], PAUSE_MARK, data[40:]])
    assert [(f.body, f.problem) for f in got] == [(body(1), None)]


def test_header_text_inside_a_json_string_is_not_a_header() -> None:
    """Pretty-printed JSON (raw CR LF between tokens) whose text holds a header's words."""
    text = body(1, 'print("Content-Length: 5")\nContent-Type: x\n').replace(b", ", b",\r\n ")
    got = frames_of(one_byte_at_a_time(frame(text) + frame(body(2))))
    assert [(f.body, f.problem) for f in got] == [(text, None), (body(2), None)]


def test_a_length_too_long_ends_at_the_next_header() -> None:
    got = frames_of([frame(body(1), len(body(1)) + 30) + frame(body(2))])
    assert [f.body for f in got] == [body(1), body(2)]
    assert got[0].problem == "a Content-Length 30 too long" and got[1].problem is None


def test_a_length_too_long_ends_at_a_pause_once_the_body_is_whole() -> None:
    got = frames_of([frame(body(1), len(body(1)) + 500), PAUSE_MARK, frame(body(2))])
    assert [(f.body, f.problem) for f in got] == [
        (body(1), "a Content-Length 500 too long"),
        (body(2), None),
    ]


def test_a_length_too_short_is_completed_up_to_the_next_header() -> None:
    got = frames_of([frame(body(1), len(body(1)) - 7) + frame(body(2))])
    assert [(f.body, f.problem) for f in got] == [
        (body(1), "a Content-Length 7 too short"),
        (body(2), None),
    ]


def test_bytes_between_messages_are_skipped_and_said() -> None:
    got = frames_of([frame(body(1)) + b"\x00garbage\r\n" + frame(body(2))])
    assert [f.body for f in got] == [body(1), body(2)]
    assert got[1].skipped == b"\x00garbage\r\n"


def test_a_body_that_is_not_json_is_a_frame_of_its_own() -> None:
    got = frames_of([frame(b"{oops") + frame(body(2))])
    assert [(f.body, f.problem) for f in got] == [(b"{oops", None), (body(2), None)]
