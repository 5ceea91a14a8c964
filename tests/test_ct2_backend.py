"""The CTranslate2 backend on tiny real models built at test time."""

from __future__ import annotations

import asyncio
import itertools
import os
from pathlib import Path

import pytest

from oci_lsp.engine.backend import BackendError, ChatMessage, GenerationOptions
from oci_lsp.engine.ct2_backend import Ct2Backend, trim_to_context
from oci_lsp.engine.templates import ChatFormat, load_chat_format
from tests.tiny_models import build_tiny_model

TASK = [ChatMessage("user", "Write a function add(a, b) that returns their sum.")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def stops_at_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "eot", eot_bias=50.0)


def backend(directory: Path, context: int = 4096) -> Ct2Backend:
    return Ct2Backend(directory, "ds", device="cpu", compute_type="int8", context=context)


async def test_greedy_first_candidate_and_sampled_others(tiny: Path) -> None:
    model = backend(tiny)
    seen: dict[int, list[str]] = {}
    options = GenerationOptions(max_new_tokens=24, num_candidates=3, temperature=1.0, seed=7)
    first = await model.generate(
        TASK, options, on_text=lambda i, t: seen.setdefault(i, []).append(t)
    )
    again = await model.generate(TASK, GenerationOptions(max_new_tokens=24))
    assert len(first) == 3 and len(again) == 1
    assert first[0].text == again[0].text  # greedy: the same answer every time
    assert all(c.finish_reason == "length" and c.tokens == 24 for c in first)
    assert first[1].text != first[0].text or first[2].text != first[0].text
    # Streaming: each candidate's text grew, and the last report is the final text.
    for index, texts in seen.items():
        assert all(b.startswith(a) for a, b in itertools.pairwise(texts))
        assert texts[-1] == first[index].text
    assert model.status().state == "ready"
    assert model.status().device == "cpu" and model.status().compute_type == "int8"
    await model.close()


async def test_stops_on_the_family_stop_token(stops_at_once: Path) -> None:
    model = backend(stops_at_once)
    (answer,) = await model.generate(TASK, GenerationOptions(max_new_tokens=50))
    assert answer.finish_reason == "stop"
    assert answer.tokens < 50
    assert "<|EOT|>" not in answer.text
    await model.close()


async def test_cancel_event_stops_between_tokens(tiny: Path) -> None:
    model = backend(tiny)
    cancel = asyncio.Event()
    texts: list[str] = []

    def on_text(index: int, text: str) -> None:
        texts.append(text)
        if len(texts) == 3:
            cancel.set()

    (answer,) = await model.generate(TASK, GenerationOptions(max_new_tokens=2000), on_text, cancel)
    assert answer.finish_reason == "cancelled"
    assert answer.tokens < 2000
    # The model is free again at once.
    (after,) = await model.generate(TASK, GenerationOptions(max_new_tokens=5))
    assert after.tokens == 5
    await model.close()


async def test_task_cancellation_stops_the_worker(tiny: Path) -> None:
    model = backend(tiny)
    started = asyncio.Event()
    task = asyncio.ensure_future(
        model.generate(TASK, GenerationOptions(max_new_tokens=3000), lambda i, t: started.set())
    )
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (after,) = await model.generate(TASK, GenerationOptions(max_new_tokens=5))
    assert after.finish_reason == "length"
    await model.close()


async def test_interactive_requests_go_before_batch(tiny: Path) -> None:
    model = backend(tiny)
    order: list[str] = []
    running = asyncio.Event()

    async def job(name: str, priority: str, tokens: int) -> None:
        await model.generate(
            TASK,
            GenerationOptions(max_new_tokens=tokens, priority=priority),  # type: ignore[arg-type]
            lambda i, t: running.set(),
        )
        order.append(name)

    first = asyncio.ensure_future(job("long batch", "batch", 1500))
    await running.wait()  # the worker is busy: the next two wait in the queue
    later = [
        asyncio.ensure_future(job("batch", "batch", 5)),
        asyncio.ensure_future(job("interactive", "interactive", 5)),
    ]
    await asyncio.gather(first, *later)
    assert order == ["long batch", "interactive", "batch"]
    await model.close()


async def test_the_event_loop_keeps_running_during_generation(tiny: Path) -> None:
    model = backend(tiny)
    ticks = 0
    done = False

    async def heartbeat() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await asyncio.sleep(0)

    beat = asyncio.ensure_future(heartbeat())
    await model.generate(TASK, GenerationOptions(max_new_tokens=800))
    done = True
    await beat
    assert ticks > 10  # the loop turned while the worker generated
    await model.close()


async def test_a_prompt_longer_than_the_context_is_trimmed(tiny: Path) -> None:
    model = backend(tiny, context=300)
    long_task = [
        ChatMessage("user", "Write add. " + "x = 1\n" * 400),
        ChatMessage("assistant", "def add(a, b): return a - b"),
        ChatMessage("user", "Execution result: \nAssertionError"),
    ]
    (answer,) = await model.generate(long_task, GenerationOptions(max_new_tokens=20))
    assert answer.tokens == 20
    await model.close()


def test_trim_drops_old_rounds_first_then_cuts_the_middle() -> None:
    fmt = ChatFormat("ds", None, "<s>", "</s>", ("<|EOT|>",))

    def count(text: str) -> int:
        return len(text.split())

    def shorten(text: str, keep: int) -> str:
        words = text.split()
        return " ".join([*words[: keep // 2], "...", *words[len(words) - keep // 2 :]])

    messages = [
        ChatMessage("user", "task " * 10),
        ChatMessage("assistant", "old answer " * 20),
        ChatMessage("user", "old feedback " * 20),
        ChatMessage("assistant", "new answer"),
        ChatMessage("user", "new feedback"),
    ]
    assert count(fmt.render(messages)) > 100
    kept = trim_to_context(fmt, messages, count, 100, shorten)
    assert [m.content for m in kept] == [messages[0].content, "new answer", "new feedback"]
    kept = trim_to_context(fmt, [ChatMessage("user", "word " * 500)], count, 100, shorten)
    assert count(fmt.render(kept)) <= 100 and "..." in kept[0].content


def test_chat_format_of_the_checkpoint_wins(tmp_path: Path) -> None:
    template = "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}[assistant]"
    directory = build_tiny_model(tmp_path / "m", chat_template=template)
    fmt = load_chat_format(directory, "ds")
    assert fmt.render(TASK) == f"[user]{TASK[0].content}[assistant]"
    assert "<|EOT|>" in fmt.stop_tokens


def test_built_in_ds_format_is_the_papers(tmp_path: Path) -> None:
    fmt = load_chat_format(tmp_path, "ds")  # no tokenizer_config.json at all
    prompt = fmt.render(
        [
            ChatMessage("user", "Write f."),
            ChatMessage("assistant", "def f(): pass"),
            ChatMessage("user", "Execution result: \nok"),
        ]
    )
    assert prompt.startswith("<｜begin▁of▁sentence｜>You are an AI programming assistant")
    assert prompt.endswith(
        "### Instruction:\nWrite f.\n### Response:\ndef f(): pass\n<|EOT|>\n"
        "### Instruction:\nExecution result: \nok\n### Response:\n"
    )


async def test_load_errors_say_what_to_do(tmp_path: Path, tiny: Path) -> None:
    missing = backend(tmp_path / "nothing-here")
    with pytest.raises(BackendError, match="oci-lsp model pull"):
        await missing.generate(TASK, GenerationOptions(max_new_tokens=2))
    assert missing.status().state == "error"
    await missing.close()
    wrong = Ct2Backend(tiny, "ds", device="cpu", compute_type="int8_float16")
    with pytest.raises(BackendError, match="computeType"):
        await wrong.generate(TASK, GenerationOptions(max_new_tokens=2))
    await wrong.close()
    small = backend(tiny, context=100)
    with pytest.raises(BackendError, match="maxNewTokens"):
        await small.generate(TASK, GenerationOptions(max_new_tokens=200))
    await small.close()


async def test_one_shared_backend_per_settings(tiny: Path, tmp_path: Path) -> None:
    from oci_lsp.config import resolve_settings
    from oci_lsp.engine.models import ModelManager

    manager = ModelManager()
    settings, _ = resolve_settings([("test", {"model": str(tiny), "device": "cpu"})])
    assert manager.status(settings).state == "not-loaded"
    first = await manager.backend(settings)
    assert await manager.backend(settings) is first  # shared, not rebuilt
    # On every CPU this process may use, not CTranslate2's fixed default of 4.
    assert isinstance(first, Ct2Backend) and first.threads == len(os.sched_getaffinity(0))
    await first.generate(TASK, GenerationOptions(max_new_tokens=2))
    assert manager.status(settings).state == "ready"
    other, _ = resolve_settings(
        [("test", {"model": str(tiny), "device": "cpu", "computeType": "float32"})]
    )
    second = await manager.backend(other)
    assert second is not first and manager.status(other).compute_type == "float32"
    missing, _ = resolve_settings([("test", {"model": str(tmp_path / "none")})])
    with pytest.raises(BackendError, match="converted model directory"):
        await manager.backend(missing)
    await manager.close()


async def test_the_checkpoints_generation_eos_is_a_stop_token(tmp_path: Path) -> None:
    import json

    directory = build_tiny_model(tmp_path / "m", eot_bias=0.0)
    tokenizer = json.loads((directory / "tokenizer.json").read_text())
    # An ordinary token as the checkpoint's EOS (generation_config.json), as SC2 sizes differ.
    vocab = tokenizer["model"]["vocab"]
    token, token_id = next((t, i) for t, i in vocab.items() if t == "def")
    (directory / "generation_config.json").write_text(json.dumps({"eos_token_id": [token_id]}))
    model = backend(directory)
    await model.load()
    assert token in model._format.stop_tokens  # type: ignore[union-attr]
    await model.close()
