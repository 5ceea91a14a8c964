"""The OpenAI-compatible backend against a real (scripted) HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
from typing import Any

import pytest

from oci_lsp.config import OpenAISettings
from oci_lsp.engine.backend import BackendError, ChatMessage, GenerationOptions
from oci_lsp.engine.openai_backend import OpenAIBackend, _SSEParser
from tests.openai_server import DEFAULT_MODEL, Reply, ScriptedOpenAIServer

WAIT = 60.0  # generous: tests wait for events, they never time them

MESSAGES = [
    ChatMessage("system", "You are a careful Python programmer."),
    ChatMessage("user", "Write `add(a, b)`."),
]
ANSWER = "def add(a, b):\n    # Σ — сумма, 合計 ✓\n    return a + b\n"


def backend_for(server: ScriptedOpenAIServer, **kwargs: Any) -> OpenAIBackend:
    kwargs.setdefault("backoff", 0.01)
    kwargs.setdefault("read_timeout", WAIT)
    return OpenAIBackend(server.base_url, kwargs.pop("model", DEFAULT_MODEL), **kwargs)


async def generate(backend: OpenAIBackend, **kwargs: Any) -> Any:
    return await asyncio.wait_for(backend.generate(MESSAGES, **kwargs), WAIT)


async def test_one_candidate_is_greedy_and_streams_growing_text() -> None:
    seen: list[tuple[int, str]] = []
    with ScriptedOpenAIServer([ANSWER]) as server:
        backend = backend_for(server)
        assert backend.status().state == "not-loaded"
        options = GenerationOptions(max_new_tokens=77, temperature=0.8)
        [candidate] = await generate(
            backend, options=options, on_text=lambda i, text: seen.append((i, text))
        )
        await backend.close()
    assert candidate.text == ANSWER
    assert candidate.finish_reason == "stop"
    assert candidate.tokens == len(seen) > 3  # no usage sent: one token per content chunk
    [request] = server.requests
    assert request["temperature"] == 0
    assert request["stream"] is True
    assert request["max_tokens"] == 77
    assert request["model"] == DEFAULT_MODEL
    assert "seed" not in request
    assert all(index == 0 for index, _ in seen)
    texts = [text for _, text in seen]
    assert all(ANSWER.startswith(text) for text in texts)
    assert all(len(a) < len(b) for a, b in itertools.pairwise(texts))
    assert texts[-1] == ANSWER
    status = backend.status()
    assert (status.state, status.id, status.device) == ("ready", DEFAULT_MODEL, "remote")


async def test_messages_are_sent_as_given() -> None:
    conversation = [
        ChatMessage("system", "sys"),
        ChatMessage("user", "first question"),
        ChatMessage("assistant", "```python\nprint('é')\n```"),
        ChatMessage("user", "the test failed:\nAssertionError: 1 != 2"),
    ]
    with ScriptedOpenAIServer(["ok"]) as server:
        backend = backend_for(server)
        await asyncio.wait_for(backend.generate(conversation, GenerationOptions()), WAIT)
        call = server.calls[-1]
    assert server.requests[0]["messages"] == [
        {"role": m.role, "content": m.content} for m in conversation
    ]
    assert call.method == "POST"
    assert call.path == "/v1/chat/completions"
    assert "Authorization" not in call.headers


async def test_candidates_are_concurrent_requests_with_candidate_0_greedy() -> None:
    all_in_flight = threading.Barrier(3, timeout=WAIT)  # breaks unless all 3 arrive together

    def reply(body: dict[str, Any]) -> str:
        all_in_flight.wait()
        return f"answer for seed {body['seed']} at T={body['temperature']}"

    seen: dict[int, str] = {}
    with ScriptedOpenAIServer(reply) as server:
        backend = backend_for(server)
        options = GenerationOptions(num_candidates=3, temperature=0.7, seed=40)
        candidates = await generate(
            backend, options=options, on_text=lambda i, text: seen.__setitem__(i, text)
        )
    assert len(server.requests) == 3
    assert sorted((r["seed"], r["temperature"]) for r in server.requests) == [
        (40, 0),
        (41, 0.7),
        (42, 0.7),
    ]
    assert [c.text for c in candidates] == [
        "answer for seed 40 at T=0",
        "answer for seed 41 at T=0.7",
        "answer for seed 42 at T=0.7",
    ]
    assert seen == {i: c.text for i, c in enumerate(candidates)}


async def test_usage_and_length_finish_are_reported() -> None:
    with ScriptedOpenAIServer([Reply("x" * 30, finish_reason="length", usage=42)]) as server:
        [candidate] = await generate(backend_for(server), options=GenerationOptions())
    assert (candidate.text, candidate.finish_reason, candidate.tokens) == ("x" * 30, "length", 42)


async def test_a_stream_without_done_still_ends() -> None:
    with ScriptedOpenAIServer([Reply("tail", done=False)]) as server:
        [candidate] = await generate(backend_for(server), options=GenerationOptions())
    assert (candidate.text, candidate.finish_reason) == ("tail", "stop")


async def test_the_model_is_discovered_once_from_models() -> None:
    with ScriptedOpenAIServer(["one", "two"], models=["first-model", "second"]) as server:
        backend = OpenAIBackend(server.base_url, None, backoff=0.01)
        assert backend.status().id == backend.base_url
        await generate(backend, options=GenerationOptions())
        await generate(backend, options=GenerationOptions())
    assert [(c.method, c.path) for c in server.calls] == [
        ("GET", "/v1/models"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/chat/completions"),
    ]
    assert [r["model"] for r in server.requests] == ["first-model", "first-model"]
    assert backend.model == "first-model"
    assert backend.status().id == "first-model"


async def test_an_unknown_model_is_named_with_the_ones_served() -> None:
    with ScriptedOpenAIServer(["ok"], models=["deepseek-coder", "oci-6.7b"]) as server:
        backend = backend_for(server, model="nope")
        with pytest.raises(BackendError) as caught:
            await generate(backend, options=GenerationOptions())
    message = str(caught.value)
    assert "`nope`" in message
    assert "deepseek-coder, oci-6.7b" in message
    assert "openai.model" in message
    assert "\n" not in message
    assert backend.status().state == "error"
    assert backend.status().error == message


async def test_503_twice_then_success_is_retried() -> None:
    with ScriptedOpenAIServer(["finally"], fail_first=2) as server:
        backend = backend_for(server, retries=3)
        [candidate] = await generate(backend, options=GenerationOptions())
    assert candidate.text == "finally"
    assert len(server.requests) == 3
    assert backend.status().state == "ready"


async def test_503_beyond_the_retries_gives_up_with_the_status() -> None:
    with ScriptedOpenAIServer(["never"], fail_first=10) as server:
        backend = backend_for(server, retries=2)
        with pytest.raises(BackendError) as caught:
            await generate(backend, options=GenerationOptions())
    assert len(server.requests) == 3
    message = str(caught.value)
    assert "HTTP 503" in message and "3 times" in message and server.base_url in message
    assert backend.status().state == "error"


async def test_a_connection_dropped_mid_answer_is_retried_from_the_start() -> None:
    replies = [Reply("lost answer", drop_after=2), Reply("second try")]
    seen: list[str] = []
    with ScriptedOpenAIServer(replies) as server:
        [candidate] = await generate(
            backend_for(server), options=GenerationOptions(), on_text=lambda i, t: seen.append(t)
        )
    assert candidate.text == "second try"
    assert len(server.requests) == 2
    assert seen[-1] == "second try"


async def test_401_without_a_key_names_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MY_LLM_KEY", raising=False)
    with ScriptedOpenAIServer(["ok"], api_key="sekret") as server:
        settings = OpenAISettings(
            base_url=server.base_url, model=DEFAULT_MODEL, api_key_env="MY_LLM_KEY"
        )
        backend = OpenAIBackend.from_settings(settings)
        with pytest.raises(BackendError) as caught:
            await generate(backend, options=GenerationOptions())
    assert "MY_LLM_KEY" in str(caught.value)
    assert "401" in str(caught.value)
    assert len(server.requests) == 1  # not retried


async def test_401_with_a_wrong_key_names_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_LLM_KEY", "wrong")
    with ScriptedOpenAIServer(["ok"], api_key="sekret") as server:
        settings = OpenAISettings(
            base_url=server.base_url, model=DEFAULT_MODEL, api_key_env="MY_LLM_KEY"
        )
        with pytest.raises(BackendError) as caught:
            await generate(OpenAIBackend.from_settings(settings), options=GenerationOptions())
    assert "MY_LLM_KEY" in str(caught.value)
    assert "wrong" not in str(caught.value)


async def test_the_key_from_the_env_var_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_LLM_KEY", "sekret")
    with ScriptedOpenAIServer(["welcome"], api_key="sekret") as server:
        settings = OpenAISettings(
            base_url=server.base_url, model=DEFAULT_MODEL, api_key_env="MY_LLM_KEY"
        )
        [candidate] = await generate(
            OpenAIBackend.from_settings(settings), options=GenerationOptions()
        )
    assert candidate.text == "welcome"
    assert server.calls[0].headers["Authorization"] == "Bearer sekret"


async def test_connection_refused_names_the_url() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = OpenAIBackend(f"http://127.0.0.1:{port}/v1", "m", retries=3, backoff=0.01)
    with pytest.raises(BackendError) as caught:
        await generate(backend, options=GenerationOptions())
    message = str(caught.value)
    assert f"http://127.0.0.1:{port}/v1" in message
    assert "is it running" in message and "openai.baseUrl" in message
    assert "\n" not in message
    assert backend.status().state == "error"


async def test_an_unknown_host_is_reported() -> None:
    backend = OpenAIBackend("http://no-such-host.invalid:8000/v1", "m")
    with pytest.raises(BackendError) as caught:
        await generate(backend, options=GenerationOptions())
    assert "no-such-host.invalid" in str(caught.value)
    assert "is it running" in str(caught.value)


async def test_a_silent_server_hits_the_read_timeout() -> None:
    with ScriptedOpenAIServer([Reply(hang=True)]) as server:
        backend = backend_for(server, read_timeout=0.3, retries=3)
        with pytest.raises(BackendError) as caught:
            await generate(backend, options=GenerationOptions())
        assert await server.wait_disconnect()
    assert "read timeout" in str(caught.value)
    assert server.base_url in str(caught.value)
    assert len(server.requests) == 1  # a timeout is not retried


async def test_the_cancel_event_returns_the_partial_text_and_hangs_up() -> None:
    cancel = asyncio.Event()
    seen: list[str] = []

    def on_text(index: int, text: str) -> None:
        seen.append(text)
        if len(seen) == 2:
            cancel.set()

    reply = Reply("abcdefghijklmnop", chunk_size=2, hang_after=3)  # role chunk + 2 content chunks
    with ScriptedOpenAIServer([reply]) as server:
        backend = backend_for(server)
        [candidate] = await generate(
            backend, options=GenerationOptions(), on_text=on_text, cancel=cancel
        )
        assert await server.wait_disconnect()
    assert candidate.finish_reason == "cancelled"
    assert candidate.text == "abcd"
    assert candidate.tokens == 2
    assert backend.status().state == "not-loaded"  # a cancel is no failure


async def test_the_cancel_event_covers_every_candidate() -> None:
    cancel = asyncio.Event()
    started: set[int] = set()

    def on_text(index: int, text: str) -> None:
        started.add(index)
        if len(started) == 2:
            cancel.set()

    with ScriptedOpenAIServer([Reply("partial answer", hang_after=2)]) as server:
        candidates = await generate(
            backend_for(server),
            options=GenerationOptions(num_candidates=2),
            on_text=on_text,
            cancel=cancel,
        )
        assert await server.wait_disconnect()
    assert [c.finish_reason for c in candidates] == ["cancelled", "cancelled"]
    assert [c.text for c in candidates] == ["par", "par"]


async def test_a_cancel_event_already_set_sends_nothing() -> None:
    cancel = asyncio.Event()
    cancel.set()
    with ScriptedOpenAIServer(["unused"]) as server:
        candidates = await generate(
            backend_for(server), options=GenerationOptions(num_candidates=2), cancel=cancel
        )
    assert [(c.text, c.finish_reason) for c in candidates] == [("", "cancelled")] * 2
    assert server.calls == []


async def test_cancelling_the_task_reraises_and_hangs_up() -> None:
    streaming = asyncio.Event()
    with ScriptedOpenAIServer([Reply("some text", hang_after=2)]) as server:
        backend = backend_for(server)
        task = asyncio.ensure_future(
            backend.generate(MESSAGES, GenerationOptions(), lambda i, t: streaming.set())
        )
        await asyncio.wait_for(streaming.wait(), WAIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await server.wait_disconnect()
    assert backend._connections == set()


async def test_close_aborts_a_generation_in_flight() -> None:
    streaming = asyncio.Event()
    with ScriptedOpenAIServer([Reply("some text", hang_after=2)]) as server:
        backend = backend_for(server)
        task = asyncio.ensure_future(
            backend.generate(MESSAGES, GenerationOptions(), lambda i, t: streaming.set())
        )
        await asyncio.wait_for(streaming.wait(), WAIT)
        await backend.close()
        with pytest.raises(BackendError) as caught:
            await asyncio.wait_for(task, WAIT)
        assert await server.wait_disconnect()
    assert "closed" in str(caught.value)
    assert len(server.requests) == 1  # not retried after close
    with pytest.raises(BackendError):
        await generate(backend, options=GenerationOptions())


async def test_a_non_streamed_json_answer_works() -> None:
    seen: list[str] = []
    with ScriptedOpenAIServer([Reply(ANSWER, stream=False, usage=12)]) as server:
        [candidate] = await generate(
            backend_for(server), options=GenerationOptions(), on_text=lambda i, t: seen.append(t)
        )
    assert server.requests[0]["stream"] is True  # asked for, ignored by the server
    assert (candidate.text, candidate.finish_reason, candidate.tokens) == (ANSWER, "stop", 12)
    assert seen == [ANSWER]


@pytest.mark.parametrize(
    "raw",
    [
        ['data: {"choices": [{"delta": {"content": "ok"}}]}\n\n', "data: {not json\n\n"],
        ['{"message": {"content": "ndjson from a native API"}}\n'],
        ["data: [1, 2]\n\n"],
        [],
    ],
    ids=["bad-json", "not-sse", "not-an-object", "empty"],
)
async def test_a_malformed_stream_is_an_error(raw: list[str]) -> None:
    with ScriptedOpenAIServer([Reply(raw=raw)]) as server, pytest.raises(BackendError) as caught:
        await generate(backend_for(server), options=GenerationOptions())
    message = str(caught.value)
    assert "malformed" in message and "openai.baseUrl" in message
    assert "\n" not in message
    assert len(server.requests) == 1  # not retried


async def test_an_error_mid_stream_carries_the_servers_words() -> None:
    raw = ['data: {"error": {"message": "CUDA out of memory", "code": 500}}\n\n']
    with ScriptedOpenAIServer([Reply(raw=raw)]) as server, pytest.raises(BackendError) as caught:
        await generate(backend_for(server), options=GenerationOptions())
    assert "CUDA out of memory" in str(caught.value)


async def test_a_400_carries_the_servers_words() -> None:
    reply = Reply(status=400, error="max_tokens is too large: 99999")
    with ScriptedOpenAIServer([reply]) as server, pytest.raises(BackendError) as caught:
        await generate(backend_for(server), options=GenerationOptions())
    assert "HTTP 400: max_tokens is too large: 99999" in str(caught.value)
    assert len(server.requests) == 1


def test_a_missing_base_url_says_which_setting() -> None:
    with pytest.raises(BackendError) as caught:
        OpenAIBackend.from_settings(OpenAISettings())
    assert "openai.baseUrl" in str(caught.value)
    assert "http://127.0.0.1:8000/v1" in str(caught.value)
    with pytest.raises(BackendError, match=r"openai\.baseUrl"):
        OpenAIBackend("", "m")
    with pytest.raises(BackendError, match="http"):
        OpenAIBackend("ftp://host/v1", "m")


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
        ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000/v1"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/v1"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/v1"),
        ("localhost:11434", "http://localhost:11434/v1"),
        ("http://gpu-box/v1/chat/completions", "http://gpu-box/v1"),
        ("https://proxy.example/llm/openai/v1", "https://proxy.example/llm/openai/v1"),
    ],
)
def test_base_urls_are_normalized(given: str, used: str) -> None:
    assert OpenAIBackend(given, "m").base_url == used


async def test_a_bare_server_address_reaches_v1() -> None:
    with ScriptedOpenAIServer(["ok"]) as server:
        backend = OpenAIBackend(f"http://127.0.0.1:{server.port}", DEFAULT_MODEL)
        [candidate] = await generate(backend, options=GenerationOptions())
    assert candidate.text == "ok"


def test_the_sse_parser_reassembles_bytes_split_anywhere() -> None:
    stream = (
        ': keep-alive\r\n\r\nevent: message\ndata: {"t": "世界"}\r\n\r\n'
        'data: {"a":\ndata: 1}\n\ndata: [DONE]'
    ).encode()
    parser = _SSEParser()
    events: list[str] = []
    for i in range(len(stream)):  # one byte at a time: UTF-8 characters arrive in pieces
        events += parser.feed(stream[i : i + 1])
    events += parser.close()
    assert events == ['{"t": "世界"}', '{"a":\n1}', "[DONE]"]


async def test_load_reaches_the_server_and_picks_its_model() -> None:
    with ScriptedOpenAIServer(["one"], models=["first-model", "second"]) as server:
        backend = OpenAIBackend(server.base_url, None, backoff=0.01)
        await asyncio.wait_for(backend.load(), WAIT)
        assert backend.status().state == "ready"
        await generate(backend, options=GenerationOptions())
    assert [(c.method, c.path) for c in server.calls] == [
        ("GET", "/v1/models"),
        ("POST", "/v1/chat/completions"),
    ]
    assert server.requests[0]["model"] == "first-model"


async def test_load_of_an_unreachable_server_is_an_error_in_the_status() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = OpenAIBackend(f"http://127.0.0.1:{port}/v1", "m", retries=1, backoff=0.01)
    with pytest.raises(BackendError, match="is it running"):
        await asyncio.wait_for(backend.load(), WAIT)
    status = backend.status()
    assert status.state == "error" and status.error and f"127.0.0.1:{port}" in status.error
