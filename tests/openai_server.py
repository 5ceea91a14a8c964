"""A scripted OpenAI-compatible chat server for tests: real HTTP on 127.0.0.1, port 0.

    with ScriptedOpenAIServer(["def f():\\n    return 1\\n"]) as server:
        backend = OpenAIBackend(server.base_url, "test-model")
        ...
        assert server.requests[0]["messages"][0]["role"] == "system"

Replies are strings or `Reply` objects (for failures, slowness, hangs, raw streams), taken in
order per chat request (the last one repeats), or computed by a callable from the request body.
Streamed answers go out as SSE in HTTP/1.1 chunked encoding, several chunks per reply, the way
vLLM and llama.cpp send them. Every handler thread watches its socket, so a client that hangs up
is noticed (`disconnected`, `wait_disconnect`) even while the reply is hanging; leaving the
`with` block releases every hanging reply and joins every thread.
"""

from __future__ import annotations

import asyncio
import json
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_MODEL = "test-model"


@dataclass
class Reply:
    text: str = ""
    finish_reason: str = "stop"
    chunk_size: int = 3  # characters per content chunk
    delay: float = 0.0  # seconds between chunks (a slow stream)
    stream: bool | None = (
        None  # None: as the request asks; False: plain JSON even if asked to stream
    )
    status: int = 200  # another status: answered with an OpenAI-style error body
    error: str = "scripted failure"
    hang: bool = False  # send nothing at all, until the client hangs up or the server stops
    hang_after: int | None = None  # send headers and this many chunks, then hang
    drop_after: int | None = None  # send this many chunks, then close the socket abruptly
    raw: list[str] | None = None  # these SSE lines verbatim instead of chunks made of `text`
    usage: int | None = None  # completion_tokens to report in the last chunk / the JSON answer
    done: bool = True  # end the stream with `data: [DONE]`


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: Any = None


ReplyScript = Sequence[str | Reply] | Callable[[dict[str, Any]], str | Reply]


def answers_by_function(answers: Mapping[str, str]) -> Callable[[dict[str, Any]], str]:
    """A reply script that answers each request with the code for the function it asks for
    (the task's last "Reply with the complete function `NAME`"), whatever the order."""

    def answer(body: dict[str, Any]) -> str:
        said = "\n".join(str(m.get("content", "")) for m in body["messages"])
        asked = re.findall(r"Reply with the complete function `(\w+)`", said)
        return answers.get(asked[-1], "No code for that.") if asked else "Which function?"

    return answer


class _Stop(Exception):
    """The client went away, or the server is stopping."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # a socket timeout, so no handler thread can wait forever
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        scripted = self.server.owner
        scripted._record(Call("GET", self.path, dict(self.headers.items())))
        if not self._authorized():
            return
        if self.path.rstrip("/") == f"{scripted.prefix}/models" and scripted.models is not None:
            data = [{"id": m, "object": "model", "owned_by": "test"} for m in scripted.models]
            self._json(200, {"object": "list", "data": data})
        else:
            self._json(404, _error_body(f"no route {self.path}", 404))

    def do_POST(self) -> None:
        scripted = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        scripted._record(Call("POST", self.path, dict(self.headers.items()), body))
        if self.path.rstrip("/") != f"{scripted.prefix}/chat/completions":
            self._json(404, _error_body(f"no route {self.path}", 404))
            return
        if not isinstance(body, dict):
            self._json(400, _error_body("the body is not a JSON object", 400))
            return
        scripted._record_chat(body)
        if not self._authorized():
            return
        if scripted._take_failure():
            self._json(scripted.fail_status, _error_body("overloaded, try again", 503))
            return
        model = body.get("model")
        if scripted.models is not None and model not in scripted.models:
            message = f"The model `{model}` does not exist."
            self._json(404, _error_body(message, 404, "NotFoundError"))
            return
        reply = scripted._reply_for(body)
        try:
            self._answer(reply, body)
        except _Stop:
            pass
        except (BrokenPipeError, ConnectionResetError):
            scripted._saw_disconnect()
        self.close_connection = True

    # -- answers ---------------------------------------------------------------------------

    def _authorized(self) -> bool:
        key = self.server.owner.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._json(401, _error_body("Incorrect API key provided.", 401, "invalid_api_key"))
        return False

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        self.close_connection = True

    def _answer(self, reply: Reply, body: dict[str, Any]) -> None:
        if reply.hang:
            self._hang()
        if reply.status != 200:
            self._json(reply.status, _error_body(reply.error, reply.status))
            return
        model = str(body.get("model"))
        streaming = bool(body.get("stream")) if reply.stream is None else reply.stream
        if not streaming:
            answer: dict[str, Any] = {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.text},
                        "finish_reason": reply.finish_reason,
                    }
                ],
            }
            if reply.usage is not None:
                answer["usage"] = {"completion_tokens": reply.usage}
            self._json(200, answer)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        lines = reply.raw if reply.raw is not None else _sse_lines(reply, model)
        sent = 0
        for line in lines:
            if reply.hang_after is not None and sent >= reply.hang_after:
                self._hang()
            if reply.drop_after is not None and sent >= reply.drop_after:
                self.connection.shutdown(socket.SHUT_RDWR)
                raise _Stop
            if reply.delay and sent:
                self._pause(reply.delay)
            elif self._client_gone():
                self.server.owner._saw_disconnect()
                raise _Stop
            self._chunk(line.encode("utf-8"))
            sent += 1
        if reply.hang_after is not None and sent >= reply.hang_after:
            self._hang()
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (ConnectionResetError, OSError):
            return True

    def _pause(self, seconds: float) -> None:
        """Wait, watching for the client to hang up and for the server to stop."""
        owner = self.server.owner
        deadline = time.monotonic() + seconds
        while True:
            if self._client_gone():
                owner._saw_disconnect()
                raise _Stop
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if owner._stopping.wait(min(left, 0.02)):
                raise _Stop

    def _hang(self) -> None:
        while True:
            self._pause(3600)


def _error_body(message: str, code: int, kind: str = "error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": code}}


def _sse_lines(reply: Reply, model: str) -> list[str]:
    def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        chunk = {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    text, size = reply.text, max(1, reply.chunk_size)
    lines = [event({"role": "assistant", "content": ""})]
    lines += [event({"content": text[i : i + size]}) for i in range(0, len(text), size)]
    usage = {"usage": {"completion_tokens": reply.usage}} if reply.usage is not None else {}
    lines.append(event({}, reply.finish_reason, **usage))
    if reply.done:
        lines.append("data: [DONE]\n\n")
    return lines


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the handler threads
    block_on_close = True
    owner: ScriptedOpenAIServer


class ScriptedOpenAIServer:
    """An OpenAI-compatible server on 127.0.0.1 that answers from a script."""

    def __init__(
        self,
        replies: ReplyScript = ("ok",),
        *,
        models: Sequence[str] | None = (DEFAULT_MODEL,),
        fail_first: int = 0,
        fail_status: int = 503,
        api_key: str | None = None,
        prefix: str = "/v1",
    ) -> None:
        self.replies = replies
        self.models = list(models) if models is not None else None  # None: /models is a 404
        self.fail_first = fail_first  # the first K chat requests get `fail_status`
        self.fail_status = fail_status
        self.api_key = api_key  # when set, requests must carry `Authorization: Bearer <key>`
        self.prefix = prefix
        self.calls: list[Call] = []  # every request, in arrival order
        self.requests: list[dict[str, Any]] = []  # the bodies of the chat requests
        self.disconnects = 0  # answers the client hung up on
        self.disconnected = threading.Event()
        self._lock = threading.Lock()
        self._failed = 0
        self._replied = 0
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The port it listens on (still known after it stopped)."""
        assert self._port is not None, "the server was never started"
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def cli_options(self) -> list[str]:
        """The `oci-lsp` options that point the OpenAI backend at this server."""
        model = self.models[0] if self.models else DEFAULT_MODEL
        return ["--backend", "openai", "--openai-base-url", self.base_url, "--openai-model", model]

    def start(self) -> ScriptedOpenAIServer:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()  # joins the handler threads
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._server = self._thread = None

    def __enter__(self) -> ScriptedOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def wait_disconnect(self, timeout: float = 30.0) -> bool:
        """Without blocking the event loop: True once a client hung up mid-answer."""
        return await asyncio.to_thread(self.disconnected.wait, timeout)

    # -- used by the handler ---------------------------------------------------------------

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def _record_chat(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(body)

    def _take_failure(self) -> bool:
        with self._lock:
            if self._failed < self.fail_first:
                self._failed += 1
                return True
            return False

    def _reply_for(self, body: dict[str, Any]) -> Reply:
        if callable(self.replies):
            reply = self.replies(body)
        else:
            with self._lock:
                index = min(self._replied, len(self.replies) - 1)
                self._replied += 1
            reply = self.replies[index]
        return Reply(text=reply) if isinstance(reply, str) else reply

    def _saw_disconnect(self) -> None:
        with self._lock:
            self.disconnects += 1
        self.disconnected.set()
