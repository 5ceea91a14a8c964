"""CTranslate2 in-process: one model loaded once, generating on a thread of its own.

NOTES.md: `async_generate_tokens` blocks the asyncio loop, so every CTranslate2 call runs on
one worker thread; steps come back to the loop with `call_soon_threadsafe`. Requests wait in a
priority queue, the editor's (interactive) before `--fix`'s (batch). Candidate 0 is greedy,
as the paper decoded; the others are sampled in one batch with `num_hypotheses`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oci_lsp.engine.backend import (
    BackendError,
    BackendStatus,
    Candidate,
    ChatMessage,
    FinishReason,
    GenerationOptions,
    OnText,
)
from oci_lsp.engine.catalog import CatalogModel, Family
from oci_lsp.engine.device import choose_placement
from oci_lsp.engine.templates import ChatFormat, load_chat_format

log = logging.getLogger(__name__)

_PRIORITY = {"interactive": 0, "batch": 1}


def explain_load_error(exc: BaseException, directory: Path, device: str, compute: str) -> str:
    """One line that says what to do, for every way loading is known to fail."""
    text = str(exc)
    if "libcublas" in text or "libcudnn" in text:
        return (
            f"CTranslate2 cannot load CUDA's libraries ({text.splitlines()[0]}): install them with"
            " `pip install nvidia-cublas-cu12`, or set `device` to cpu"
        )
    if "out of memory" in text.lower():
        return (
            f"the GPU ran out of memory loading {directory.name} as {compute}: pick a smaller"
            " model or an int8 compute type, or set `device` to cpu"
        )
    if isinstance(exc, ValueError) and "compute type" in text.lower():
        return (
            f"compute type {compute} is not supported on {device} here ({text}): set"
            " `computeType` to auto"
        )
    if not (directory / "model.bin").exists():
        return (
            f"no CTranslate2 model in {directory}: run `oci-lsp model pull ID` or point"
            " `model` at a converted model directory"
        )
    if "decoder" in text.lower() or "generator" in text.lower():
        return f"{directory} is not a decoder-only (generator) model: {text}"
    return f"cannot load the model in {directory}: {text.splitlines()[0] if text else exc!r}"


def generation_eos_ids(directory: Path) -> list[int]:
    """The checkpoint's end-of-answer ids (NOTES.md: StarCoder2's differs per size)."""
    try:
        config = json.loads((directory / "generation_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    value = config.get("eos_token_id") if isinstance(config, dict) else None
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, int)]


def trim_to_context(
    fmt: ChatFormat,
    messages: Sequence[ChatMessage],
    count_tokens: Callable[[str], int],
    budget: int,
    shorten: Callable[[str, int], str],
) -> list[ChatMessage]:
    """Drop the least important part until the prompt fits `budget` tokens.

    Kept always: the system message, the first user message (the task) and the last two turns
    (the latest answer and its feedback). Dropped first: the oldest rounds in between. If that
    is not enough, the longest message is cut in its middle, by tokens.
    """
    kept = list(messages)
    while count_tokens(fmt.render(kept)) > budget:
        first_user = next((i for i, m in enumerate(kept) if m.role == "user"), 0)
        middle = range(first_user + 1, len(kept) - 2)
        if len(middle) >= 2:
            del kept[middle.start : middle.start + 2]  # an old answer and its feedback
            continue
        longest = max(range(len(kept)), key=lambda i: len(kept[i].content))
        excess = count_tokens(fmt.render(kept)) - budget
        content = kept[longest].content
        shortened = shorten(content, max(count_tokens(content) - excess - 8, 0))
        if shortened == content:
            break  # nothing left to cut: the caller's max_new_tokens leaves no room
        kept[longest] = ChatMessage(kept[longest].role, shortened)
    return kept


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    run: Callable[[], None] = field(compare=False)


class Ct2Backend:
    """A converted OpenCodeInterpreter model served by CTranslate2."""

    def __init__(
        self,
        directory: Path,
        family: Family,
        *,
        entry: CatalogModel | None = None,
        device: str = "auto",
        compute_type: str = "auto",
        context: int = 4096,
        threads: int = 0,
    ) -> None:
        self.directory = directory
        self.family = family
        self.entry = entry
        self.placement = choose_placement(
            entry.id if entry else str(directory), device, compute_type
        )
        self.context = context
        self.threads = threads
        self._state: BackendStatus = BackendStatus(
            id=entry.id if entry else str(directory),
            state="not-loaded",
            device=self.placement.device,
            compute_type=self.placement.compute_type,
        )
        self._generator: Any = None
        self._tokenizer: Any = None
        self._format: ChatFormat | None = None
        self._queue: queue.PriorityQueue[_Job] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._worker: threading.Thread | None = None
        self._load_lock = threading.Lock()
        self._closed = False

    # -- the worker thread -----------------------------------------------------------------

    def _ensure_worker(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="oci-ct2", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job.priority < 0:  # close()
                return
            job.run()

    async def _call(self, fn: Callable[[], Any], priority: str = "interactive") -> Any:
        """Run fn on the worker thread; the loop only waits."""
        if self._closed:
            raise BackendError("the model was closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def run() -> None:
            try:
                result = fn()
            except BaseException as exc:  # delivered to the caller, never lost on the thread
                loop.call_soon_threadsafe(_settle_error, future, exc)
            else:
                loop.call_soon_threadsafe(_settle, future, result)

        self._ensure_worker()
        self._queue.put(_Job(_PRIORITY.get(priority, 1), next(self._seq), run))
        return await future

    # -- loading -----------------------------------------------------------------------------

    def _load(self) -> None:
        with self._load_lock:
            if self._generator is not None:
                return
            import ctranslate2
            import tokenizers

            device, compute = self.placement.device, self.placement.compute_type
            log.info(
                "loading %s on %s as %s (%s)",
                self.directory,
                device,
                compute,
                self.placement.reason,
            )
            self._state.state = "loading"
            started = time.monotonic()
            try:
                self._generator = ctranslate2.Generator(
                    str(self.directory),
                    device=device,
                    compute_type=compute,
                    intra_threads=self.threads,
                )
                self._tokenizer = tokenizers.Tokenizer.from_file(
                    str(self.directory / "tokenizer.json")
                )
            except Exception as exc:
                message = explain_load_error(exc, self.directory, device, compute)
                self._state.state, self._state.error = "error", message
                raise BackendError(message) from exc
            fmt = load_chat_format(self.directory, self.family)
            extra = [self._tokenizer.id_to_token(i) for i in generation_eos_ids(self.directory)]
            stops = tuple(dict.fromkeys((*fmt.stop_tokens, *(t for t in extra if t))))
            self._format = dataclasses.replace(fmt, stop_tokens=stops)
            self._state.state, self._state.error = "ready", None
            log.info("model ready in %.2f s", time.monotonic() - started)

    async def load(self) -> None:
        """Load now (otherwise the first generation loads it)."""
        await self._call(self._load)

    # -- generating ---------------------------------------------------------------------------

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        on_text: OnText | None = None,
        cancel: asyncio.Event | None = None,
    ) -> list[Candidate]:
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        watcher = None
        if cancel is not None:
            watcher = asyncio.ensure_future(cancel.wait())
            watcher.add_done_callback(lambda _: stop.set())

        def emit(index: int, text: str) -> None:
            if on_text is not None:
                loop.call_soon_threadsafe(on_text, index, text)

        try:
            result: list[Candidate] = await self._call(
                lambda: self._generate(messages, options, emit, stop), options.priority
            )
            return result
        except asyncio.CancelledError:
            stop.set()  # the worker stops at its next token
            raise
        finally:
            if watcher is not None:
                watcher.cancel()

    def _generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        emit: Callable[[int, str], None],
        stop: threading.Event,
    ) -> list[Candidate]:
        self._load()
        assert self._format is not None and self._tokenizer is not None
        import ctranslate2
        from tokenizers.decoders import DecodeStream

        tokenizer, fmt = self._tokenizer, self._format
        budget = self.context - options.max_new_tokens
        if budget <= 0:
            raise BackendError(
                f"generation.maxNewTokens ({options.max_new_tokens}) leaves no room for a prompt"
                f" in this model's context of {self.context} tokens"
            )
        kept = trim_to_context(fmt, messages, self._count, budget, self._shorten)
        ids = tokenizer.encode(fmt.render(kept), add_special_tokens=False).ids
        prompt = [tokenizer.id_to_token(i) for i in ids]
        end = [t for t in fmt.stop_tokens if tokenizer.token_to_id(t) is not None]
        end_ids = {tokenizer.token_to_id(t) for t in end}

        def run(first: int, count: int, sampling: bool) -> list[Candidate]:
            streams = [DecodeStream(skip_special_tokens=True) for _ in range(count)]
            texts = ["" for _ in range(count)]
            tokens = [0] * count
            finished = [False] * count

            def on_step(step: Any) -> bool:
                h = step.hypothesis_id if count > 1 else 0
                if step.token_id in end_ids:
                    finished[h] = True
                else:
                    tokens[h] += 1
                    piece = streams[h].step(tokenizer, step.token_id)
                    if piece:
                        texts[h] += piece
                        emit(first + h, texts[h])
                return stop.is_set()  # True stops the whole batch

            if sampling and options.seed is not None:
                ctranslate2.set_random_seed(options.seed)
            self._generator.generate_batch(
                [prompt],
                max_length=options.max_new_tokens,
                sampling_topk=0 if sampling else 1,
                sampling_temperature=max(options.temperature, 1e-5) if sampling else 1.0,
                num_hypotheses=count,
                include_prompt_in_result=False,
                end_token=end or None,
                callback=on_step,
            )
            out = []
            for h in range(count):
                reason: FinishReason = (
                    "cancelled" if stop.is_set() else "stop" if finished[h] else "length"
                )
                out.append(Candidate(texts[h], reason, tokens[h]))
            return out

        candidates = run(0, 1, sampling=False)
        if options.num_candidates > 1 and not stop.is_set():
            candidates += run(1, options.num_candidates - 1, sampling=True)
        return candidates

    def _count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def _shorten(self, text: str, keep: int) -> str:
        """The first and last keep/2 tokens of text, with a marker between (by tokens)."""
        ids = self._tokenizer.encode(text, add_special_tokens=False).ids
        if len(ids) <= keep or keep <= 0:
            return text if keep > 0 else ""
        half = keep // 2
        head = self._tokenizer.decode(ids[:half])
        tail = self._tokenizer.decode(ids[len(ids) - half :])
        return f"{head}\n...(truncated due to length)...\n{tail}"

    # -- the rest of the interface -------------------------------------------------------------

    def status(self) -> BackendStatus:
        return self._state

    async def close(self) -> None:
        self._closed = True
        if self._worker is not None:
            self._queue.put(_Job(-1, -1, lambda: None))
            await asyncio.to_thread(self._worker.join, 30)
        self._generator = None


def _settle(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _settle_error(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
