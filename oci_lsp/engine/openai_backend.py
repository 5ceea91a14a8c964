"""The OpenAI-compatible backend: any chat server that speaks `/v1/chat/completions`.

vLLM, TGI, llama.cpp's server and Ollama all do. The client is asyncio streams and a small
HTTP/1.1 reader (no dependencies): every wait is on a socket, never on the event loop, a read
that stalls longer than `read_timeout` fails, and cancelling closes the socket at once, which is
how these servers learn to stop generating.

Each candidate is its own streamed request (servers differ in their support for `n`; llama.cpp
ignores it), at most `MAX_PARALLEL` at a time; candidate 0 is greedy (temperature 0), as the
paper decoded, the others sample at `options.temperature`. Requests say `Connection: close`, so
there is no pool of idle connections to go stale: `close()` aborts the ones in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from oci_lsp import __version__
from oci_lsp.config import OpenAISettings
from oci_lsp.engine.backend import (
    BackendError,
    BackendStatus,
    Candidate,
    ChatMessage,
    FinishReason,
    GenerationOptions,
    OnText,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_PARALLEL = 4  # candidate requests in flight at once, per generate() call
_LINE_LIMIT = 1 << 20  # longest header / chunk-size / SSE line accepted
_MAX_JSON_BODY = 64 << 20  # largest non-streamed answer read
_MAX_ERROR_BODY = 64 << 10  # how much of an error answer is read for its message
_MAX_RETRY_AFTER = 30.0  # seconds; a larger Retry-After is capped
_NO_BASE_URL = (
    "the OpenAI-compatible backend needs a server: set `openai.baseUrl`"
    " (e.g. http://127.0.0.1:8000/v1)"
)
_LENGTH_REASONS = {"length", "max_tokens", "model_length", "max_length"}


class _Transient(Exception):
    """A failure worth retrying: HTTP 5xx / 429, a connection reset or dropped mid-answer."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class _Malformed(Exception):
    """The answer is not the OpenAI protocol; str() says what was wrong."""


@dataclass(frozen=True)
class _Endpoint:
    url: str  # normalized base URL, no trailing slash: http://host:8000/v1
    scheme: str
    host: str
    port: int
    host_header: str
    path: str  # e.g. "/v1"
    query: str  # kept and appended to every request path ("?api-version=..."), usually ""

    def target(self, suffix: str) -> str:
        return self.path + suffix + (f"?{self.query}" if self.query else "")


def _parse_base_url(raw: str | None) -> _Endpoint:
    text = (raw or "").strip()
    if not text:
        raise BackendError(_NO_BASE_URL)
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise BackendError(
            f"invalid `openai.baseUrl` {raw!r} ({exc}); use e.g. http://127.0.0.1:8000/v1"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise BackendError(
            f"invalid `openai.baseUrl` {raw!r}: it must be an http:// or https:// URL"
            " (e.g. http://127.0.0.1:8000/v1)"
        )
    path = parts.path.rstrip("/")
    for suffix in ("/chat/completions", "/completions", "/models"):
        if path.endswith(suffix):  # a pasted endpoint URL instead of the base
            path = path[: -len(suffix)]
            break
    if not path:
        path = "/v1"  # a bare server address: every OpenAI-compatible server serves /v1
    netloc = parts.netloc.rpartition("@")[2]
    url = f"{scheme}://{netloc}{path}"
    return _Endpoint(
        url=url,
        scheme=scheme,
        host=parts.hostname,
        port=port or (443 if scheme == "https" else 80),
        host_header=netloc,
        path=path,
        query=parts.query,
    )


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _error_message(body: bytes) -> str:
    """The server's own words from an error answer, one line ("" when it said nothing)."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return _one_line(text)
    if isinstance(data, dict):
        for key in ("error", "detail", "message"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("message", value)
            if isinstance(value, str) and value:
                return _one_line(value)
            if value:
                return _one_line(json.dumps(value, ensure_ascii=False))
    return _one_line(text)


def _finish_reason(value: object) -> FinishReason:
    if isinstance(value, str) and value.lower() in _LENGTH_REASONS:
        return "length"
    return "stop"  # "stop", "eos", "eos_token", "stop_sequence", "tool_calls", "abort", ...


class _SSEParser:
    """Server-sent events to the payloads of their `data:` fields.

    Lines are split on bytes before decoding, so a UTF-8 character split across network reads
    is whole again by the time it is decoded. A line that is no SSE field at all (e.g. NDJSON
    from a server's native API) is an error here rather than silently ignored, as the SSE
    spec would have it: it almost always means `openai.baseUrl` points at the wrong endpoint.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._data: list[str] = []

    def feed(self, data: bytes) -> list[str]:
        self._buf += data
        events: list[str] = []
        while (end := self._buf.find(b"\n")) >= 0:
            line = bytes(self._buf[:end])
            del self._buf[: end + 1]
            self._line(line.rstrip(b"\r"), events)
        if len(self._buf) > _LINE_LIMIT:
            raise _Malformed("a line longer than 1 MiB")
        return events

    def close(self) -> list[str]:
        events: list[str] = []
        if self._buf:
            self._line(bytes(self._buf).rstrip(b"\r"), events)
            self._buf.clear()
        self._line(b"", events)
        return events

    def _line(self, line: bytes, events: list[str]) -> None:
        if not line:
            if self._data:
                events.append("\n".join(self._data))
                self._data = []
            return
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise _Malformed("a line that is not UTF-8") from None
        if text.startswith(":"):
            return  # a comment / keep-alive
        name, _, value = text.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        elif name not in ("event", "id", "retry"):
            raise _Malformed(f"{_one_line(text, 60)!r} is not a server-sent event line")


@dataclass
class _Progress:
    """One candidate's answer as it streams in."""

    text: str = ""
    chunks: int = 0
    usage_tokens: int | None = None
    finish: FinishReason | None = None
    done: bool = False

    def restart(self) -> None:
        self.text, self.chunks, self.usage_tokens, self.finish, self.done = "", 0, None, None, False

    def candidate(self) -> Candidate:
        tokens = self.usage_tokens if self.usage_tokens is not None else self.chunks
        return Candidate(self.text, self.finish or "cancelled", tokens)


class _Connection:
    """One HTTP/1.1 exchange: the request is written, the status line and headers read."""

    def __init__(
        self,
        backend: OpenAIBackend,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self._backend = backend
        self._reader = reader
        self._writer = writer
        self.status = 0
        self.headers: dict[str, str] = {}
        self._chunked = False
        self._length: int | None = None
        self._chunk_left = 0
        self._chunk_crlf = False
        self._done = False

    async def _read(self, waiting: Awaitable[T]) -> T:
        backend = self._backend
        try:
            return await asyncio.wait_for(waiting, backend.read_timeout)
        except asyncio.TimeoutError:
            raise BackendError(
                f"the OpenAI-compatible server at {backend.base_url} sent nothing for"
                f" {backend.read_timeout:g}s (read timeout); it may be overloaded or still"
                " loading the model: check its log, or try again"
            ) from None
        except asyncio.IncompleteReadError:
            raise _Transient("the server closed the connection mid-answer") from None
        except (asyncio.LimitOverrunError, ValueError):
            raise _Malformed("a line longer than 1 MiB") from None
        except ConnectionResetError:
            raise _Transient("connection reset by the server") from None
        except OSError as exc:
            raise _Transient(f"connection error: {exc.strerror or exc}") from None

    async def send(self, head: bytes, body: bytes) -> None:
        self._writer.write(head + body)
        await self._read(self._writer.drain())

    async def read_head(self) -> None:
        line = await self._read(self._reader.readline())
        if not line:
            raise _Transient("the server closed the connection without answering")
        parts = line.decode("latin-1").split(None, 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise _Malformed(f"not an HTTP answer: {_one_line(line.decode('latin-1'), 60)!r}")
        self.status = int(parts[1])
        for _ in range(200):
            line = await self._read(self._reader.readline())
            if not line:
                raise _Transient("the server closed the connection mid-headers")
            if line in (b"\r\n", b"\n"):
                break
            name, sep, value = line.decode("latin-1").partition(":")
            if sep:
                self.headers[name.strip().lower()] = value.strip()
        else:
            raise _Malformed("too many HTTP headers")
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        length = self.headers.get("content-length")
        if not self._chunked and length is not None:
            try:
                self._length = int(length)
            except ValueError:
                raise _Malformed(f"bad Content-Length {length!r}") from None
        if self.status in (204, 304) or 100 <= self.status < 200:
            self._done = True

    async def read_some(self) -> bytes:
        """The next piece of the body, de-chunked; b"" at its end."""
        if self._done:
            return b""
        if self._chunked:
            if self._chunk_left == 0:
                if self._chunk_crlf:
                    await self._read(self._reader.readline())
                    self._chunk_crlf = False
                size_line = await self._read(self._reader.readline())
                if not size_line:
                    raise _Transient("the server closed the connection mid-answer")
                try:
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise _Malformed(f"bad chunk size {_one_line(repr(size_line), 40)}") from None
                if size == 0:
                    while (await self._read(self._reader.readline())) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    self._done = True
                    return b""
                self._chunk_left = size
            data = await self._read(self._reader.read(min(self._chunk_left, 65536)))
            if not data:
                raise _Transient("the server closed the connection mid-answer")
            self._chunk_left -= len(data)
            self._chunk_crlf = self._chunk_left == 0
            return data
        if self._length is not None:
            if self._length == 0:
                self._done = True
                return b""
            data = await self._read(self._reader.read(min(self._length, 65536)))
            if not data:
                raise _Transient("the server closed the connection mid-answer")
            self._length -= len(data)
            return data
        data = await self._read(self._reader.read(65536))
        if not data:
            self._done = True
        return data

    async def read_all(self, limit: int) -> bytes:
        body = bytearray()
        while data := await self.read_some():
            body += data
            if len(body) > limit:
                raise _Malformed(f"an answer larger than {limit >> 20} MiB")
        return bytes(body)

    def close(self, *, abort: bool = False) -> None:
        self._backend._connections.discard(self)
        transport = self._writer.transport
        if abort:
            transport.abort()
        else:
            transport.close()


class OpenAIBackend:
    """Generation on an OpenAI-compatible chat server (vLLM, TGI, llama.cpp server, Ollama).

    `base_url` is the server's OpenAI base, e.g. `http://127.0.0.1:8000/v1`. A trailing slash is
    fine; a bare server address with no path (`http://127.0.0.1:8000`) gets `/v1`, which every
    one of those servers serves; any other path is used as given (proxies mount the API
    elsewhere); a pasted endpoint (`.../v1/chat/completions`) is cut back to its base; and a
    missing scheme means http. Plain http(s) only: proxy environment variables are not used.

    `model` None: the first id `GET {base}/models` lists, asked once and remembered.
    `api_key` is sent as `Authorization: Bearer`; `api_key_env` only names where it came from,
    for the message when the server refuses it. `read_timeout` is the longest silence
    tolerated while waiting for the answer's next bytes, not a limit on the whole answer.
    HTTP 5xx / 429 and connections reset or dropped mid-answer are retried `retries` times,
    `backoff * 2**attempt` seconds apart; a retried candidate's `on_text` restarts from "".
    """

    def __init__(
        self,
        base_url: str,
        model: str | None,
        api_key: str | None = None,
        *,
        connect_timeout: float = 10,
        read_timeout: float = 120,
        retries: int = 3,
        backoff: float = 0.5,
        api_key_env: str = "OPENAI_API_KEY",
    ) -> None:
        self._endpoint = _parse_base_url(base_url)
        self.base_url = self._endpoint.url
        self._model = model or None
        self._api_key = api_key or None
        self.api_key_env = api_key_env
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retries = max(0, retries)
        self.backoff = max(0.0, backoff)
        self._ssl: ssl.SSLContext | None = (
            ssl.create_default_context() if self._endpoint.scheme == "https" else None
        )
        self._connections: set[_Connection] = set()
        self._closed = False
        self._state: BackendStatus = BackendStatus(
            id=self._model or self.base_url, state="not-loaded", device="remote"
        )

    @classmethod
    def from_settings(cls, openai: OpenAISettings) -> OpenAIBackend:
        """The backend `openai.*` describes; the key comes from `openai.apiKeyEnv`, if set."""
        if not openai.base_url:
            raise BackendError(_NO_BASE_URL)
        return cls(
            openai.base_url,
            openai.model,
            os.environ.get(openai.api_key_env) or None,
            api_key_env=openai.api_key_env,
        )

    @property
    def model(self) -> str | None:
        """The configured model, or the discovered one once `/models` was asked."""
        return self._model

    # -- the Backend protocol -------------------------------------------------------------

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        on_text: OnText | None = None,
        cancel: asyncio.Event | None = None,
    ) -> list[Candidate]:
        """Answer the conversation with `options.num_candidates` candidates.

        When `cancel` is set, the connections are closed and every candidate comes back as it
        stood, unfinished ones with finish_reason "cancelled" (one per index, "" for those not
        started). When the awaiting task is cancelled, the connections are closed and
        CancelledError propagates.
        """
        self._check_open()
        progress = [_Progress() for _ in range(max(1, options.num_candidates))]
        if cancel is not None and cancel.is_set():
            return [p.candidate() for p in progress]
        work = asyncio.ensure_future(self._generate_all(messages, options, on_text, progress))
        waiter = asyncio.ensure_future(cancel.wait()) if cancel is not None else None
        try:
            await asyncio.wait(
                {work} if waiter is None else {work, waiter}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            if waiter is not None:
                waiter.cancel()
            if not work.done():
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
        if work.cancelled():  # by the cancel event
            return [p.candidate() for p in progress]
        error = work.exception()
        if isinstance(error, BackendError):
            self._state = BackendStatus(
                id=self._model or self.base_url,
                state="error",
                device="remote",
                error=str(error),
            )
        if error is not None:
            raise error
        self._state = BackendStatus(id=self._model or self.base_url, state="ready", device="remote")
        return work.result()

    def status(self) -> BackendStatus:
        return self._state

    async def load(self) -> None:
        """Check now that the server answers and serves a model (nothing to load here)."""
        self._check_open()
        try:
            models = await self._with_retries(self._list_models)
            if self._model is None and models:
                self._model = models[0]
                log.info("using model %s, the first %s/models lists", models[0], self.base_url)
            elif self._model is None:
                await self._model_id()  # says that the server lists none
            elif models and self._model not in models:
                log.warning(
                    "%s/models does not list %s; asking for it anyway", self.base_url, self._model
                )
        except BackendError as exc:
            self._state = BackendStatus(
                id=self._model or self.base_url, state="error", device="remote", error=str(exc)
            )
            raise
        self._state = BackendStatus(id=self._model or self.base_url, state="ready", device="remote")

    async def close(self) -> None:
        """Abort every connection in flight; generate() fails from now on."""
        self._closed = True
        for connection in list(self._connections):
            connection.close(abort=True)

    # -- generation -------------------------------------------------------------------------

    async def _generate_all(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        on_text: OnText | None,
        progress: list[_Progress],
    ) -> list[Candidate]:
        model = await self._model_id()
        limit = asyncio.Semaphore(MAX_PARALLEL)
        tasks = [
            asyncio.ensure_future(
                self._candidate(index, model, messages, options, on_text, p, limit)
            )
            for index, p in enumerate(progress)
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in tasks:
                error = task.exception() if task.done() and not task.cancelled() else None
                if error is not None:
                    raise error
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return [p.candidate() for p in progress]

    def _request_body(
        self,
        index: int,
        model: str,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "max_tokens": options.max_new_tokens,
            "temperature": 0 if index == 0 else options.temperature,
        }
        if options.seed is not None:
            # One seed per candidate: sampled candidates sharing a seed would all be the same.
            body["seed"] = options.seed + index
        return body

    async def _candidate(
        self,
        index: int,
        model: str,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        on_text: OnText | None,
        progress: _Progress,
        limit: asyncio.Semaphore,
    ) -> None:
        body = json.dumps(
            self._request_body(index, model, messages, options), ensure_ascii=False
        ).encode("utf-8")

        async def attempt() -> None:
            progress.restart()
            await self._chat_once(index, model, body, progress, on_text)

        async with limit:
            await self._with_retries(attempt)

    async def _chat_once(
        self,
        index: int,
        model: str,
        body: bytes,
        progress: _Progress,
        on_text: OnText | None,
    ) -> None:
        connection = await self._open("POST", "/chat/completions", body, "text/event-stream")
        try:
            if not 200 <= connection.status < 300:
                said = await self._said(connection)
                connection.close(abort=True)
                if connection.status == 404:
                    raise await self._not_found(model, said)
                raise self._status_error(connection, said)
            await self._read_answer(connection, index, progress, on_text)
        except BaseException:
            connection.close(abort=True)
            raise
        connection.close()

    async def _read_answer(
        self,
        connection: _Connection,
        index: int,
        progress: _Progress,
        on_text: OnText | None,
    ) -> None:
        first = b""
        while not first.strip():  # sniff: a JSON answer starts with "{", SSE never does
            data = await connection.read_some()
            if not data:
                break
            first += data
        if first.lstrip().startswith(b"{"):
            rest = await connection.read_all(_MAX_JSON_BODY)
            self._json_answer(first + rest, index, progress, on_text)
            return
        parser = _SSEParser()
        data = first
        while True:
            events = parser.feed(data) if data else parser.close()
            for event in events:
                if self._sse_event(event, index, progress, on_text):
                    return
            if not data:
                break
            data = await connection.read_some()
        if progress.finish is None:
            if not progress.chunks:
                raise _Malformed("an empty answer")
            progress.finish = "stop"  # ended cleanly without [DONE] or a finish_reason

    def _sse_event(
        self, payload: str, index: int, progress: _Progress, on_text: OnText | None
    ) -> bool:
        """Apply one event; True at `[DONE]`."""
        if payload.strip() == "[DONE]":
            if progress.finish is None:
                progress.finish = "stop"
            return True
        try:
            objects = [json.loads(payload)]
        except ValueError:
            try:  # some servers put one JSON object on each of several data: lines
                objects = [json.loads(line) for line in payload.split("\n") if line.strip()]
            except ValueError:
                raise _Malformed(f"not JSON after `data:`: {_one_line(payload, 60)!r}") from None
        for obj in objects:
            if not isinstance(obj, dict):
                raise _Malformed(f"not a JSON object after `data:`: {_one_line(payload, 60)!r}")
            self._check_error(obj)
            choice = self._first_choice(obj)
            if choice is not None:
                delta = choice.get("delta") or choice.get("message") or {}
                content = delta.get("content") if isinstance(delta, dict) else None
                if isinstance(content, str) and content:
                    progress.text += content
                    progress.chunks += 1
                    self._emit(on_text, index, progress.text)
                if choice.get("finish_reason"):
                    progress.finish = _finish_reason(choice["finish_reason"])
            self._take_usage(obj, progress)
        return False

    def _json_answer(
        self, body: bytes, index: int, progress: _Progress, on_text: OnText | None
    ) -> None:
        try:
            obj = json.loads(body.decode("utf-8"))
        except ValueError:
            text = body.decode("utf-8", "replace")
            raise _Malformed(f"not JSON: {_one_line(text, 60)!r}") from None
        if not isinstance(obj, dict):
            raise _Malformed("a JSON answer that is not an object")
        self._check_error(obj)
        choice = self._first_choice(obj)
        message = choice.get("message") if choice is not None else None
        if not isinstance(message, dict):
            raise _Malformed("a JSON answer without choices[0].message")
        content = message.get("content")
        progress.text = content if isinstance(content, str) else ""
        progress.chunks = 1 if progress.text else 0
        progress.finish = _finish_reason(choice.get("finish_reason") if choice else None)
        self._take_usage(obj, progress)
        if progress.text:
            self._emit(on_text, index, progress.text)

    def _check_error(self, obj: dict[str, Any]) -> None:
        if obj.get("error"):
            message = _error_message(json.dumps(obj).encode("utf-8"))
            raise BackendError(
                f"the OpenAI-compatible server at {self.base_url} failed mid-answer: {message}"
            )

    @staticmethod
    def _first_choice(obj: dict[str, Any]) -> dict[str, Any] | None:
        choices = obj.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            return choices[0]
        return None

    @staticmethod
    def _take_usage(obj: dict[str, Any], progress: _Progress) -> None:
        usage = obj.get("usage")
        if isinstance(usage, dict):
            tokens = usage.get("completion_tokens")
            if isinstance(tokens, int) and not isinstance(tokens, bool):
                progress.usage_tokens = tokens

    @staticmethod
    def _emit(on_text: OnText | None, index: int, text: str) -> None:
        if on_text is None:
            return
        try:
            on_text(index, text)
        except Exception:  # a broken preview must not lose the answer
            log.exception("on_text callback failed")

    # -- models -----------------------------------------------------------------------------

    async def _model_id(self) -> str:
        if self._model is None:
            models = await self._with_retries(self._list_models)
            if not models:
                raise BackendError(
                    f"the server at {self.base_url} lists no models at /models;"
                    " set `openai.model` to the name it serves"
                )
            self._model = models[0]
            log.info("using model %s, the first %s/models lists", models[0], self.base_url)
        return self._model

    async def _list_models(self) -> list[str]:
        connection = await self._open("GET", "/models", None, "application/json")
        try:
            if not 200 <= connection.status < 300:
                said = await self._said(connection)
                if connection.status == 404:
                    raise BackendError(
                        f"the server at {self.base_url} has no /models endpoint (HTTP 404);"
                        " set `openai.model`, and check `openai.baseUrl` (it usually ends in /v1)"
                    )
                raise self._status_error(connection, said)
            body = await connection.read_all(_MAX_JSON_BODY)
        except BaseException:
            connection.close(abort=True)
            raise
        connection.close()
        try:
            data = json.loads(body.decode("utf-8"))
        except ValueError:
            data = None
        entries = data.get("data", data.get("models")) if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise BackendError(
                f"the server at {self.base_url} answered /models with no model list;"
                " set `openai.model`"
            )
        ids: list[str] = []
        for entry in entries:
            name = entry.get("id", entry.get("name")) if isinstance(entry, dict) else entry
            if isinstance(name, str) and name:
                ids.append(name)
        return ids

    async def _not_found(self, model: str, said: str) -> BackendError:
        try:
            available: list[str] | None = await self._with_retries(self._list_models)
        except BackendError:
            available = None
        if available is not None and model not in available:
            listed = ", ".join(available[:10]) + (", ..." if len(available) > 10 else "")
            return BackendError(
                f"the server at {self.base_url} has no model `{model}`"
                + (
                    f" (it serves: {listed}); set `openai.model` to one of them"
                    if listed
                    else " and lists none; set `openai.model` to the name it serves"
                )
            )
        return BackendError(
            f"the server at {self.base_url} answered {said} for /chat/completions;"
            " check `openai.baseUrl` (it usually ends in /v1)"
        )

    # -- HTTP -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError("the OpenAI-compatible backend was closed; restart generation")

    async def _with_retries(self, attempt: Callable[[], Awaitable[T]]) -> T:
        tries = 0
        while True:
            self._check_open()
            try:
                return await attempt()
            except _Malformed as exc:
                raise BackendError(
                    f"the server at {self.base_url} sent a malformed answer ({exc});"
                    " is `openai.baseUrl` an OpenAI-compatible /v1 endpoint?"
                ) from None
            except _Transient as exc:
                self._check_open()
                tries += 1
                if tries > self.retries:
                    raise BackendError(
                        f"the OpenAI-compatible server at {self.base_url} failed"
                        f" {tries} time{'s' if tries > 1 else ''} (last: {exc});"
                        " check its log, or try again later"
                    ) from None
                delay = self.backoff * 2 ** (tries - 1)
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, _MAX_RETRY_AFTER))
                log.warning("%s: %s; retry %d in %.2gs", self.base_url, exc, tries, delay)
                await asyncio.sleep(delay)

    async def _open(self, method: str, suffix: str, body: bytes | None, accept: str) -> _Connection:
        """Connect, send the request, and read the answer's status line and headers."""
        self._check_open()
        endpoint = self._endpoint
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    endpoint.host,
                    endpoint.port,
                    ssl=self._ssl,
                    server_hostname=endpoint.host if self._ssl is not None else None,
                    limit=_LINE_LIMIT,
                ),
                self.connect_timeout,
            )
        except asyncio.TimeoutError:
            raise BackendError(
                f"cannot reach the OpenAI-compatible server at {self.base_url}: no answer in"
                f" {self.connect_timeout:g}s; is it running? (openai.baseUrl)"
            ) from None
        except ssl.SSLError as exc:
            raise BackendError(
                f"TLS with the server at {self.base_url} failed ({_one_line(str(exc), 120)});"
                " check http:// vs https:// in `openai.baseUrl`"
            ) from None
        except OSError as exc:
            raise BackendError(
                f"cannot reach the OpenAI-compatible server at {self.base_url}:"
                f" {self._describe_os_error(exc)}; is it running? (openai.baseUrl)"
            ) from None
        connection = _Connection(self, reader, writer)
        self._connections.add(connection)
        lines = [
            f"{method} {endpoint.target(suffix)} HTTP/1.1",
            f"Host: {endpoint.host_header}",
            f"User-Agent: oci-lsp/{__version__}",
            f"Accept: {accept}",
            "Connection: close",
        ]
        if self._api_key is not None:
            lines.append(f"Authorization: Bearer {self._api_key}")
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            await connection.send(head, body or b"")
            await connection.read_head()
        except _Malformed as exc:
            connection.close(abort=True)
            raise BackendError(
                f"the server at {self.base_url} did not answer HTTP ({exc});"
                " check `openai.baseUrl` (http:// vs https://, the port)"
            ) from None
        except BaseException:
            connection.close(abort=True)
            raise
        return connection

    def _describe_os_error(self, exc: OSError) -> str:
        if isinstance(exc, socket.gaierror):
            return f"unknown host {self._endpoint.host!r}"
        if isinstance(exc, ConnectionRefusedError) or f"[Errno {errno.ECONNREFUSED}]" in str(exc):
            return "connection refused"
        return _one_line(exc.strerror or str(exc), 120)

    async def _said(self, connection: _Connection) -> str:
        """`HTTP 503: the server's words` for a non-2xx answer."""
        try:
            message = _error_message(await connection.read_all(_MAX_ERROR_BODY))
        except (_Transient, _Malformed, BackendError):
            message = ""
        return f"HTTP {connection.status}" + (f": {message}" if message else "")

    def _status_error(self, connection: _Connection, said: str) -> Exception:
        """The exception for a non-2xx answer other than 404."""
        status = connection.status
        if status >= 500 or status == 429:
            retry_after: float | None = None
            with contextlib.suppress(ValueError):
                retry_after = float(connection.headers.get("retry-after", ""))
            return _Transient(said, retry_after)
        if status in (401, 403):
            if self._api_key is None:
                return BackendError(
                    f"the server at {self.base_url} wants an API key ({said}): set the"
                    f" environment variable {self.api_key_env} (named by `openai.apiKeyEnv`)"
                )
            return BackendError(
                f"the server at {self.base_url} refused the API key from {self.api_key_env}"
                f" ({said}); check the key, or `openai.apiKeyEnv`"
            )
        if 300 <= status < 400:
            location = connection.headers.get("location", "elsewhere")
            return BackendError(
                f"the server at {self.base_url} redirects to {location} ({said});"
                " set `openai.baseUrl` to the new address"
            )
        return BackendError(f"the server at {self.base_url} refused the request ({said})")
