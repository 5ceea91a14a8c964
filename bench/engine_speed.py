"""Benchmark: our CTranslate2 backend against transformers `generate` (issue 3).

Same model, same prompt, same machine, one run. For each model shape and compute type this
measures, greedy, with the answer forced to --new-tokens tokens, the median of --repeat runs
after --warmup runs (on CPU the engines take turns, round after round; on CUDA they run one
after the other, so that one model at a time is on the device):

  ours            Ct2Backend.generate end to end, as the server calls it: chat format, token
                  count and trim, tokenization, the worker thread, streaming back to the event
                  loop. Time to first token = the first on_text call on the loop.
  ours, threads=0 the same with Ct2Backend's default `threads` (what the server passes today),
                  on CPU only
  raw ct2         ctranslate2.Generator.generate_tokens on the same token ids: our overhead
  transformers    model.generate(do_sample=False, max_new_tokens=N, min_new_tokens=N) with a
                  streamer for the time to first token; float32 on CPU, float16 on CUDA

Decode tokens/s = (new tokens - 1) / (end - first token): the rate after the first token.
On CUDA the limit for batch-1 decoding is the memory bandwidth: every new token reads every
weight once, so tokens/s <= bandwidth / bytes of weights (KV-cache reads, a few percent at this
prompt length, are left out, which makes the limit slightly generous).

Models, random weights (speed does not depend on their values):
  100m     Llama-shaped, hidden 768, 8 layers, 12 heads, intermediate 2048, vocab 32256 (DS's
           padded size): 106M parameters. Saved as a Hugging Face checkpoint and converted with
           oci_lsp.engine.convert.convert_checkpoint (the logits parity check runs), cached in
           --cache.
  ds-1.3b  DeepSeek-Coder 1.3B's shape (hidden 2048, 24 layers, 16 heads, intermediate 5504)
  ds-6.7b  DeepSeek-Coder 6.7B's shape (hidden 4096, 32 layers, 32 heads, intermediate 11008)
           Both built in memory with transformers' from_config on the device; the CTranslate2
           model is written from the same weights (a spec filled from numpy arrays, float16 on
           CUDA) into a temporary directory, and CTranslate2 quantizes it at load time for the
           int8 compute types.
All have DeepSeek-Coder's rotary settings (linear scaling 4, base 100000) and a byte-level BPE
tokenizer of 32022 entries trained on this Python's standard library (cached). The rows of the
output projection for the special tokens and the padding ids are scaled down 1000x, so that
greedy decoding never picks them: no engine stops early, and every id decodes to text.

Exit status 0 unless the measurement broke (an exception, or an engine that did not produce
exactly --new-tokens tokens); missed aims are reported, not raised.

    .venv/bin/python bench/engine_speed.py                      # CPU: 100m, int8
    .venv/bin/python bench/engine_speed.py --device cuda        # ds-1.3b and ds-6.7b
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import gc
import json
import os
import platform
import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ctranslate2
import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, GenerationConfig, LlamaConfig
from transformers.generation.streamers import BaseStreamer
from transformers.utils import logging as transformers_logging

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from oci_lsp.engine.backend import ChatMessage, GenerationOptions
from oci_lsp.engine.ct2_backend import Ct2Backend
from oci_lsp.engine.templates import load_chat_format
from tests.tiny_models import build_tokenizer as build_test_tokenizer

BENCH = Path(__file__).resolve().parent
DS_BOS = "<｜begin▁of▁sentence｜>"
DS_EOS = "<｜end▁of▁sentence｜>"
DS_EOT = "<|EOT|>"
SPECIALS = [DS_BOS, DS_EOS, DS_EOT]
TOKENIZER_SIZE = 32022  # DeepSeek-Coder's tokenizer: 32000 BPE entries and 22 added tokens
ROPE_FACTOR, ROPE_THETA = 4.0, 100000.0  # DeepSeek-Coder: linear rotary scaling, base 100000
MUTED_ROW_SCALE = 1e-3  # rows of the output projection greedy decoding must never pick

# Peak memory bandwidth in GB/s by device name (all the listed words must appear in the
# upper-cased name); the first match wins, so the more specific names come first.
BANDWIDTH_GBS: list[tuple[tuple[str, ...], float]] = [
    (("GH200",), 4000.0),
    (("H200",), 4800.0),
    (("H100", "NVL"), 3900.0),
    (("H100", "PCIE"), 2000.0),
    (("H100",), 3350.0),  # SXM5: "NVIDIA H100 80GB HBM3"
    (("H800", "PCIE"), 2000.0),
    (("H800",), 3350.0),
    (("A100", "PCIE", "80GB"), 1935.0),
    (("A100", "80GB"), 2039.0),
    (("A100",), 1555.0),
    (("L40S",), 864.0),
    (("L40",), 864.0),
    (("L4",), 300.0),
    (("A10G",), 600.0),
    (("A10",), 600.0),
    (("T4",), 320.0),
    (("V100",), 900.0),
    (("RTX 4090",), 1008.0),
    (("RTX 3090",), 936.0),
    (("RTX 6000 ADA",), 960.0),
    (("A6000",), 768.0),
]

# transformers' entry points have no type annotations.
AUTO_MODEL: Any = AutoModelForCausalLM
GENERATION_CONFIG: Any = GenerationConfig
HF_LOGGING: Any = transformers_logging

# On CPU, a run during which other processes kept more than DISTURBED_CPUS busy is done again
# (--retries); before each run the bench waits (--quiet-wait) for them to fall to QUIET_CPUS.
DISTURBED_CPUS = 0.25
QUIET_CPUS = 0.15

AIM_GPU_SPEEDUP = 3.0  # ours / transformers decode tokens/s, on GPU
AIM_INT8_BANDWIDTH = 0.60  # ours as a fraction of the bandwidth limit, int8 DS-6.7B

# The prompt: a bug-fix request on ~100 tokens of code, in DeepSeek-Coder's chat format with
# its default system message: about 200 tokens in all (the exact count is printed).
CODE = """\
def merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged = []
    for start, end in sorted(intervals):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged

assert merge([(1, 2), (2, 3)]) == [(1, 3)]
"""
MESSAGES = [
    ChatMessage(
        "user",
        f"The test below fails. Fix `merge`.\n```python\n{CODE}```",
    )
]


@dataclass(frozen=True)
class Shape:
    name: str
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int = 32256
    on_disk: bool = False  # a checkpoint converted by convert_checkpoint, else built in memory

    @property
    def linear_params(self) -> int:
        """Weights every new token reads: the layers' projections and the output projection."""
        per_layer = 4 * self.hidden * self.hidden + 3 * self.hidden * self.intermediate
        return self.layers * per_layer + self.vocab * self.hidden

    @property
    def params(self) -> int:
        norms = (2 * self.layers + 1) * self.hidden
        return self.linear_params + self.vocab * self.hidden + norms

    def bytes_per_token(self, compute_type: str) -> int:
        """Bytes of weights read to decode one token with this compute type."""
        rows = self.layers * (5 * self.hidden + 2 * self.intermediate) + self.vocab
        small = (2 * self.layers + 2) * self.hidden  # norms and one embedding row
        if compute_type.startswith("int8"):
            activation = compute_type.removeprefix("int8").lstrip("_") or "float32"
            return self.linear_params + 4 * rows + small * _width(activation)
        return (self.linear_params + small) * _width(compute_type)


def _width(dtype: str) -> int:
    return {"float32": 4, "float16": 2, "bfloat16": 2}[dtype]


SHAPES = {
    "100m": Shape("100m", hidden=768, layers=8, heads=12, intermediate=2048, on_disk=True),
    "ds-1.3b": Shape("ds-1.3b", hidden=2048, layers=24, heads=16, intermediate=5504),
    "ds-6.7b": Shape("ds-6.7b", hidden=4096, layers=32, heads=32, intermediate=11008),
}


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- building the models -------------------------------------------------------------------


def build_tokenizer(cache: Path) -> Path:
    """A byte-level BPE of DeepSeek-Coder's size, trained on the standard library (cached)."""
    dest = cache / "tokenizer"
    if (dest / "tokenizer.json").exists():
        return dest
    import transformers

    say("training a 32022-entry BPE tokenizer on the standard library")
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(stdlib.glob("*.py")) + sorted(stdlib.glob("*/*.py"))
    texts = (path.read_text(encoding="utf-8", errors="replace") for path in files)
    tokenizer = build_test_tokenizer(SPECIALS, TOKENIZER_SIZE, texts)
    staged = Path(tempfile.mkdtemp(prefix=".tokenizer-", dir=cache))
    fast_class: Any = transformers.PreTrainedTokenizerFast
    fast = fast_class(tokenizer_object=tokenizer, bos_token=DS_BOS, eos_token=DS_EOS)
    fast.save_pretrained(str(staged))
    os.replace(staged, dest)
    return dest


def llama_config(shape: Shape, tokenizer: Tokenizer) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=shape.vocab,
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.heads,
        max_position_embeddings=16384,
        rms_norm_eps=1e-6,
        hidden_act="silu",
        bos_token_id=tokenizer.token_to_id(DS_BOS),
        eos_token_id=tokenizer.token_to_id(DS_EOS),
        tie_word_embeddings=False,
        rope_parameters={"rope_type": "linear", "factor": ROPE_FACTOR, "rope_theta": ROPE_THETA},
    )


def mute_rows(model: Any, tokenizer: Tokenizer) -> None:
    """Make the special tokens and the padding ids unlikely: logits near 0, far below the max."""
    real = tokenizer.get_vocab_size()
    specials = [tokenizer.token_to_id(token) for token in SPECIALS]
    with torch.no_grad():
        weight = model.lm_head.weight
        weight[real:] *= MUTED_ROW_SCALE
        for index in specials:
            weight[index] *= MUTED_ROW_SCALE


def build_checkpoint(shape: Shape, tokenizer_dir: Path, dest: Path, seed: int) -> None:
    """A Hugging Face checkpoint on disk, shaped like a DeepSeek-Coder release."""
    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    staged = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    torch.manual_seed(seed)
    model = AUTO_MODEL.from_config(llama_config(shape, tokenizer), dtype=torch.float32)
    mute_rows(model, tokenizer)
    model.save_pretrained(str(staged), safe_serialization=True)
    for item in tokenizer_dir.iterdir():
        shutil.copy(item, staged / item.name)
    # As DeepSeek-Coder's config.json has it: `rope_scaling` without `rope_theta`, and
    # `rope_theta` at the top (the layout convert.py's loader fix is for).
    config = json.loads((staged / "config.json").read_text())
    for key in ("rope_parameters", "rope_scaling", "rope_theta"):
        config.pop(key, None)
    config.update(rope_scaling={"type": "linear", "factor": ROPE_FACTOR}, rope_theta=ROPE_THETA)
    (staged / "config.json").write_text(json.dumps(config, indent=2))
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(staged, dest)


def converted_checkpoint(shape: Shape, cache: Path, storage: str, seed: int) -> tuple[Path, Path]:
    """The checkpoint and its CTranslate2 conversion (cached, keyed by shape and seed)."""
    from oci_lsp.engine.convert import convert_checkpoint

    tokenizer_dir = build_tokenizer(cache)
    stem = f"{shape.hidden}h{shape.layers}l{shape.intermediate}i-seed{seed}"
    src, out = cache / f"hf-{stem}", cache / f"ct2-{stem}-{storage}"
    stamp = cache / f"{stem}-{storage}.json"
    if stamp.exists() and src.is_dir() and out.is_dir():
        say(f"reusing {out} ({json.loads(stamp.read_text())['parity']})")
        return src, out
    if not (src / "config.json").exists():
        say(f"building the {shape.name} checkpoint ({shape.params / 1e6:.0f}M parameters)")
        build_checkpoint(shape, tokenizer_dir, src, seed)
    say(f"converting with convert_checkpoint ({storage}, parity check included)")
    from oci_lsp.engine.convert import ParityResult

    manifest = convert_checkpoint(src, out, storage, family="ds", progress=say)
    parity = ParityResult(**manifest["parity"]).describe()
    stamp.write_text(json.dumps({"parity": parity}))
    return src, out


def write_ct2_model(
    model: Any, shape: Shape, tokenizer_dir: Path, dest: Path, storage: str
) -> None:
    """The CTranslate2 model of a transformers Llama, from its weights as numpy arrays."""
    from ctranslate2.specs import attention_spec, common_spec, transformer_spec

    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    spec = transformer_spec.TransformerDecoderModelSpec.from_config(
        shape.layers,
        shape.heads,
        pre_norm=True,
        activation=common_spec.Activation.SWISH,
        ffn_glu=True,
        rms_norm=True,
        rotary_dim=0,
        rotary_interleave=False,
        rotary_scaling_type=attention_spec.RotaryScalingType.Linear,
        rotary_scaling_factor=ROPE_FACTOR,
        rotary_base=ROPE_THETA,
    )

    def array(tensor: torch.Tensor) -> np.ndarray:
        # A copy: quantizing the spec works in place and must not touch the torch model.
        return np.array(tensor.detach().to("cpu").numpy(), copy=True)

    decoder, llama = spec.decoder, model.model
    decoder.scale_embeddings = False
    decoder.embeddings.weight = array(llama.embed_tokens.weight)
    decoder.layer_norm.gamma = array(llama.norm.weight)
    decoder.projection.weight = array(model.lm_head.weight)
    for layer_spec, layer in zip(decoder.layer, llama.layers, strict=True):
        attention, mlp = layer.self_attn, layer.mlp
        layer_spec.self_attention.layer_norm.gamma = array(layer.input_layernorm.weight)
        layer_spec.self_attention.linear[0].weight = np.concatenate(
            [
                array(attention.q_proj.weight),
                array(attention.k_proj.weight),
                array(attention.v_proj.weight),
            ]
        )
        layer_spec.self_attention.linear[1].weight = array(attention.o_proj.weight)
        layer_spec.ffn.layer_norm.gamma = array(layer.post_attention_layernorm.weight)
        layer_spec.ffn.linear_0.weight = array(mlp.gate_proj.weight)
        layer_spec.ffn.linear_0_noact.weight = array(mlp.up_proj.weight)
        layer_spec.ffn.linear_1.weight = array(mlp.down_proj.weight)
    vocab = [tokenizer.id_to_token(i) for i in range(tokenizer.get_vocab_size())]
    vocab += [f"<extra_id_{i}>" for i in range(shape.vocab - len(vocab))]  # as LlamaLoader pads
    spec.register_vocabulary(vocab)
    spec.config.bos_token = DS_BOS
    spec.config.eos_token = DS_EOS
    spec.config.unk_token = ""
    spec.config.layer_norm_epsilon = 1e-6
    spec.validate()
    spec.optimize(quantization=storage)
    dest.mkdir(parents=True)
    spec.save(str(dest))
    for item in tokenizer_dir.iterdir():
        shutil.copy(item, dest / item.name)


# -- measuring -----------------------------------------------------------------------------


@dataclass
class Run:
    ttft_s: float  # call -> first token (text) seen by the caller
    total_s: float  # call -> the answer is complete
    tokens: int
    others: float = 0.0  # CPUs used by other processes during the run, on average

    @property
    def decode_tps(self) -> float:
        return (self.tokens - 1) / max(self.total_s - self.ttft_s, 1e-9)


@dataclass
class Result:
    shape: str
    device: str
    engine: str
    compute_type: str
    prompt_tokens: int
    load_s: float
    runs: list[Run] = field(default_factory=list)
    output_ids: list[int] = field(default_factory=list)
    output_text: str = ""
    bytes_per_token: int = 0

    def median(self, attribute: str) -> float:
        return float(statistics.median(getattr(run, attribute) for run in self.runs))

    def spread(self, attribute: str, scale: float = 1.0, digits: int = 0) -> str:
        """'median (min-max)' of one figure over the kept runs."""
        values = [getattr(run, attribute) * scale for run in self.runs]
        low, mid, high = min(values), statistics.median(values), max(values)
        return f"{mid:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


class Broken(Exception):
    """The measurement itself failed: the figures would mean nothing."""


@dataclass
class Workload:
    directory: Path  # the CTranslate2 model (with tokenizer.json)
    shape: Shape
    device: str
    new_tokens: int
    threads: int
    prompt_ids: list[int]
    prompt_tokens: list[str]
    end_tokens: list[str]


def prepare_prompt(directory: Path) -> tuple[list[int], list[str], list[str]]:
    """The prompt exactly as Ct2Backend builds it: chat format, tokens, stop tokens."""
    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    fmt = load_chat_format(directory, "ds")
    encoding = tokenizer.encode(fmt.render(MESSAGES), add_special_tokens=False)
    end = [token for token in fmt.stop_tokens if tokenizer.token_to_id(token) is not None]
    return list(encoding.ids), list(encoding.tokens), end


class Engine:
    """One way of generating: open() loads, once() is one timed answer, close() frees."""

    def __init__(self, work: Workload, engine: str, compute_type: str) -> None:
        self.work = work
        self.result = Result(
            work.shape.name, work.device, engine, compute_type, len(work.prompt_ids), 0.0
        )

    def open(self) -> None:
        started = time.perf_counter()
        self._open()
        self.result.load_s += time.perf_counter() - started

    def _open(self) -> None:
        pass

    def once(self) -> Run:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return f"{self.result.engine} ({self.result.compute_type})"


class _FirstText:
    """on_text for Ct2Backend: when the caller first saw text."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.calls = 0

    def __call__(self, index: int, text: str) -> None:
        self.calls += 1
        if self.first is None:
            self.first = time.perf_counter()


class Ours(Engine):
    """Ct2Backend.generate, awaited on an event loop of its own, as the server awaits it."""

    def __init__(self, work: Workload, compute_type: str, threads: int, engine: str) -> None:
        super().__init__(work, engine, compute_type)
        self.threads = threads
        self.loop = asyncio.new_event_loop()
        self.backend: Ct2Backend | None = None
        self.on_text_calls = 0

    def _open(self) -> None:
        self.backend = Ct2Backend(
            self.work.directory,
            "ds",
            device=self.work.device,
            compute_type=self.result.compute_type,
            context=4096,
            threads=self.threads,
        )
        self.loop.run_until_complete(self.backend.load())

    def once(self) -> Run:
        assert self.backend is not None
        options = GenerationOptions(max_new_tokens=self.work.new_tokens, num_candidates=1)
        seen = _FirstText()
        started = time.perf_counter()
        (answer,) = self.loop.run_until_complete(
            self.backend.generate(MESSAGES, options, on_text=seen)
        )
        ended = time.perf_counter()
        if seen.first is None:
            raise Broken(f"{self.describe()} streamed no text")
        if answer.finish_reason != "length":
            raise Broken(f"{self.describe()} stopped early ({answer.finish_reason})")
        self.result.output_text = answer.text
        self.on_text_calls = seen.calls
        return Run(seen.first - started, ended - started, answer.tokens)

    def close(self) -> None:
        if self.backend is not None:
            self.loop.run_until_complete(self.backend.close())
            self.backend = None
        self.loop.close()


class RawCt2(Engine):
    """ctranslate2.Generator.generate_tokens on the same token ids."""

    def __init__(self, work: Workload, compute_type: str) -> None:
        super().__init__(work, "raw ct2", compute_type)
        self.generator: Any = None

    def _open(self) -> None:
        self.generator = ctranslate2.Generator(
            str(self.work.directory),
            device=self.work.device,
            compute_type=self.result.compute_type,
            intra_threads=self.work.threads if self.work.device == "cpu" else 0,
        )

    def once(self) -> Run:
        ids: list[int] = []
        first = None
        started = time.perf_counter()
        for step in self.generator.generate_tokens(
            self.work.prompt_tokens,
            max_length=self.work.new_tokens,
            min_length=self.work.new_tokens,
            sampling_topk=1,
            end_token=self.work.end_tokens,
        ):
            if first is None:
                first = time.perf_counter()
            ids.append(step.token_id)
        ended = time.perf_counter()
        if first is None:
            raise Broken(f"{self.describe()} generated nothing")
        self.result.output_ids = ids
        return Run(first - started, ended - started, len(ids))

    def close(self) -> None:
        self.generator = None
        gc.collect()


class _Clock(BaseStreamer):
    """A transformers streamer that only notes when tokens arrive (the prompt comes first)."""

    def __init__(self) -> None:
        self.prompt_seen = False
        self.first: float | None = None

    def put(self, value: torch.Tensor) -> None:
        value.reshape(-1).tolist()  # waits for the device
        if not self.prompt_seen:
            self.prompt_seen = True
        elif self.first is None:
            self.first = time.perf_counter()

    def end(self) -> None:
        pass


class Transformers(Engine):
    """model.generate, greedy, the length forced with min_new_tokens."""

    def __init__(self, work: Workload, model: Any, dtype: str, loaded_s: float) -> None:
        super().__init__(work, "transformers", dtype)
        self.result.load_s = loaded_s
        self.model = model
        self.input_ids = torch.tensor([work.prompt_ids], device=torch.device(work.device))
        config = model.config
        self.settings = GENERATION_CONFIG(
            bos_token_id=config.bos_token_id,
            eos_token_id=config.eos_token_id,
            pad_token_id=config.eos_token_id,
            do_sample=False,
            max_new_tokens=work.new_tokens,
            min_new_tokens=work.new_tokens,
        )

    def once(self) -> Run:
        clock = _Clock()
        _sync(self.work.device)
        started = time.perf_counter()
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=self.input_ids,
                attention_mask=torch.ones_like(self.input_ids),
                generation_config=self.settings,
                streamer=clock,
            )
        _sync(self.work.device)
        ended = time.perf_counter()
        if clock.first is None:
            raise Broken(f"{self.describe()} streamed nothing")
        new = output[0, self.input_ids.shape[1] :].tolist()
        self.result.output_ids = new
        return Run(clock.first - started, ended - started, len(new))

    def close(self) -> None:
        self.model = None
        _free_cuda()


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (Linux /proc/stat; 0.0 where unknown)."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            values = [int(v) for v in handle.readline().split()[1:8]]
    except (OSError, ValueError):
        return 0.0
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def busy_cpus(interval: float = 0.5) -> float:
    """How many CPUs other processes kept busy over `interval`."""
    machine, own = _machine_busy_s(), time.process_time()
    time.sleep(interval)
    return max(0.0, _machine_busy_s() - machine - (time.process_time() - own)) / interval


def wait_quiet(limit: float) -> float:
    """Wait up to `limit` s for other processes to leave the CPUs nearly idle."""
    deadline = time.perf_counter() + limit
    busy = busy_cpus()
    while busy > QUIET_CPUS and time.perf_counter() < deadline:
        time.sleep(1.0)
        busy = busy_cpus()
    return busy


def timed_once(engine: Engine, args: argparse.Namespace) -> Run:
    """One answer, repeated (up to --retries times) while other processes took CPU from it."""
    for attempt in range(args.retries + 1):
        if args.device == "cpu" and args.quiet_wait > 0:
            wait_quiet(args.quiet_wait)
        machine, own, started = _machine_busy_s(), time.process_time(), time.perf_counter()
        run = engine.once()
        wall = time.perf_counter() - started
        others = _machine_busy_s() - machine - (time.process_time() - own)
        run.others = max(0.0, others) / wall
        if args.device != "cpu" or run.others <= DISTURBED_CPUS or attempt == args.retries:
            return run
        say(f"  (other processes used {run.others:.2f} CPUs during {engine.describe()}: again)")
    raise AssertionError("unreachable")


def run_rounds(engines: Sequence[Engine], args: argparse.Namespace) -> None:
    """warmup + repeat answers from each engine, into engine.result.runs.

    On CPU all engines stay loaded and take turns, round after round (the order rotating), so
    a slow spell of a shared machine hits them alike. On CUDA they run one after the other:
    only one model is on the device at a time.
    """
    together = args.device == "cpu" and not args.one_at_a_time
    batches = [list(engines)] if together else [[engine] for engine in engines]
    for batch in batches:
        for engine in batch:
            say(f"loading {engine.describe()}")
            engine.open()
        for round_index in range(args.warmup + args.repeat):
            shift = round_index % len(batch)
            for engine in batch[shift:] + batch[:shift]:
                run = timed_once(engine, args)
                if run.tokens != args.new_tokens:
                    raise Broken(
                        f"{engine.describe()} generated {run.tokens} tokens, not"
                        f" {args.new_tokens}: the comparison would not be like for like"
                    )
                warm = round_index >= args.warmup
                say(
                    f"  {'' if warm else 'warm-up '}{engine.describe()}: ttft"
                    f" {run.ttft_s * 1e3:.0f} ms, {run.decode_tps:.1f} tok/s,"
                    f" {run.total_s:.2f} s (others {run.others:.2f} CPUs)"
                )
                if warm:
                    engine.result.runs.append(run)
        for engine in batch:
            engine.close()
        _free_cuda()


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _free_cuda() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextlib.contextmanager
def _scratch(cache: Path, keep: bool) -> Iterator[Path]:
    cache.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=".scratch-", dir=cache))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def _storage(device: str, compute_types: Sequence[str]) -> str:
    """How the converted weights are stored; CTranslate2 converts them at load time.

    On CUDA: float16, loaded as int8_float16 (quantized at load) or float16. On CPU: int8,
    as `oci-lsp model pull` converts for CPU, unless a float compute type is asked for.
    """
    if device == "cuda":
        return "float16"
    return "int8" if all(c.startswith("int8") for c in compute_types) else "float32"


def measure_shape(shape: Shape, args: argparse.Namespace) -> list[Result]:
    """Every engine on one shape."""
    device: str = args.device
    hf_dtype = "float16" if device == "cuda" else "float32"
    storage = _storage(device, args.compute_type)
    with _scratch(args.cache, args.keep) as scratch:
        if shape.on_disk:
            src, directory = converted_checkpoint(shape, args.cache, storage, args.seed)
            started = time.perf_counter()
            model = AUTO_MODEL.from_pretrained(str(src), dtype=getattr(torch, hf_dtype))
            model = model.to(device)
            loaded_s = time.perf_counter() - started
        else:
            tokenizer_dir = build_tokenizer(args.cache)
            tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
            say(f"building {shape.name} ({shape.params / 1e9:.2f}B parameters) on {device}")
            started = time.perf_counter()
            torch.manual_seed(args.seed)
            with torch.device(device):
                model = AUTO_MODEL.from_config(
                    llama_config(shape, tokenizer), dtype=getattr(torch, hf_dtype)
                )
            mute_rows(model, tokenizer)
            loaded_s = time.perf_counter() - started
            directory = scratch / f"ct2-{shape.hidden}h{shape.layers}l-{storage}"
            say(f"writing the CTranslate2 model ({storage}) to {directory}")
            write_ct2_model(model, shape, tokenizer_dir, directory, storage)
        model.train(False)
        ids, tokens, end = prepare_prompt(directory)
        say(f"{shape.name}: prompt of {len(ids)} tokens")
        work = Workload(directory, shape, device, args.new_tokens, args.threads, ids, tokens, end)
        engines: list[Engine] = [Transformers(work, model, hf_dtype, loaded_s)]
        del model  # the engine holds the only reference: closing it frees the device
        pairs: list[tuple[RawCt2, Ours]] = []
        for compute_type in args.compute_type:
            threads = args.threads if device == "cpu" else 0
            pair = (RawCt2(work, compute_type), Ours(work, compute_type, threads, "ours"))
            pairs.append(pair)
            engines += pair
            if device == "cpu" and args.default_threads_row:
                engines.append(Ours(work, compute_type, 0, "ours, threads=0"))
        run_rounds(engines, args)
        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        for raw, ours in pairs:
            expected = tokenizer.decode(raw.result.output_ids, skip_special_tokens=True)
            if ours.result.output_text != expected:
                say(
                    f"WARNING: ours and raw ct2 answered differently ({raw.result.compute_type}):"
                    f" {ours.result.output_text[:80]!r} vs {expected[:80]!r}"
                )
            if ours.on_text_calls != args.new_tokens:
                say(f"note: {ours.describe()} called on_text {ours.on_text_calls} times")
    for engine in engines:
        width = engine.result.compute_type if engine.result.engine != "transformers" else hf_dtype
        engine.result.bytes_per_token = shape.bytes_per_token(width)
    return [engine.result for engine in engines]


# -- reporting -----------------------------------------------------------------------------


def bandwidth_for(name: str) -> float | None:
    upper = name.upper()
    for words, gbs in BANDWIDTH_GBS:
        if all(word in upper for word in words):
            return gbs
    return None


def machine_description(device: str) -> tuple[str, float | None]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    text = f"{os.cpu_count()}-core {platform.machine()} CPU ({cpu})"
    if device == "cuda":
        name = torch.cuda.get_device_name(0)
        memory = torch.cuda.get_device_properties(0).total_memory / 2**30
        return f"{name} ({memory:.0f} GiB), {text}", bandwidth_for(name)
    return f"{text}, no GPU", None


def _prefix_agreement(a: Sequence[int], b: Sequence[int]) -> int:
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count


def report(
    results: list[Result], args: argparse.Namespace, machine: str, bandwidth: float | None
) -> str:
    threads = args.threads if args.device == "cpu" else "default"
    lines = [
        f"Machine: {machine}. ctranslate2 {ctranslate2.__version__}, torch {torch.__version__},"
        f" transformers {_version('transformers')}; threads {threads};"
        f" {args.new_tokens} new tokens, greedy; median (min-max) of {args.repeat} runs after"
        f" {args.warmup} warm-up; ratios are of medians.",
        "",
    ]
    header = (
        "| shape | engine | compute | prompt tok | load s | TTFT ms | decode tok/s | total s"
        " | tok/s ÷ HF | TTFT ÷ HF | tok/s ÷ raw ct2 | bandwidth limit tok/s | of limit |"
    )
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    aims: list[str] = []
    by_shape: dict[str, list[Result]] = {}
    for result in results:
        by_shape.setdefault(result.shape, []).append(result)
    for shape, group in by_shape.items():
        hf = next(r for r in group if r.engine == "transformers")
        raws = {r.compute_type: r for r in group if r.engine == "raw ct2"}
        for result in group:
            tps, ttft = result.median("decode_tps"), result.median("ttft_s")
            vs_hf = tps / hf.median("decode_tps")
            ttft_vs_hf = ttft / hf.median("ttft_s")
            raw = raws.get(result.compute_type)
            vs_raw = (
                f"{tps / raw.median('decode_tps'):.2f}"
                if raw is not None and result.engine.startswith("ours")
                else ""
            )
            limit = bandwidth * 1e9 / result.bytes_per_token if bandwidth else None
            fraction = tps / limit if limit else None
            is_hf = result is hf
            lines.append(
                f"| {shape} | {result.engine} | {result.compute_type} | {result.prompt_tokens}"
                f" | {result.load_s:.1f} | {result.spread('ttft_s', 1e3)}"
                f" | {result.spread('decode_tps', digits=1)}"
                f" | {result.median('total_s'):.2f}"
                f" | {'1' if is_hf else f'{vs_hf:.2f}'} | {'1' if is_hf else f'{ttft_vs_hf:.2f}'}"
                f" | {vs_raw} | {f'{limit:.0f}' if limit else 'n/a'}"
                f" | {f'{fraction:.0%}' if fraction is not None else 'n/a'} |"
            )
            if result.engine != "ours":
                continue
            if args.device == "cuda":
                verdict = "met" if vs_hf >= AIM_GPU_SPEEDUP else "missed"
                aims.append(
                    f"- {shape} {result.compute_type}: ours / transformers = {vs_hf:.2f}x"
                    f" (aim >= {AIM_GPU_SPEEDUP:g}x on GPU): {verdict}"
                )
                if shape == "ds-6.7b" and result.compute_type.startswith("int8"):
                    if fraction is None:
                        aims.append(
                            "- ds-6.7b int8: fraction of the bandwidth limit unknown (name the"
                            " device's peak with --bandwidth-gbs)"
                        )
                    else:
                        verdict = "met" if fraction >= AIM_INT8_BANDWIDTH else "missed"
                        aims.append(
                            f"- ds-6.7b {result.compute_type}: {fraction:.0%} of the bandwidth"
                            f" limit (aim >= {AIM_INT8_BANDWIDTH:.0%}): {verdict}"
                        )
    lines.append("")
    notes = []
    for shape, group in by_shape.items():
        hf = next(r for r in group if r.engine == "transformers")
        for raw in (r for r in group if r.engine == "raw ct2"):
            agree = _prefix_agreement(raw.output_ids, hf.output_ids)
            notes.append(
                f"{shape}: raw ct2 ({raw.compute_type}) and transformers ({hf.compute_type})"
                f" pick the same first {agree} of {args.new_tokens} greedy tokens."
            )
    if args.device == "cpu":
        worst = max(run.others for result in results for run in result.runs)
        notes.append(
            f"Other processes used up to {worst:.2f} CPUs during the kept runs (a run above"
            f" {DISTURBED_CPUS:g} was done again, at most {args.retries} times)."
        )
    if notes:
        lines += [*notes, ""]
    if args.device == "cuda":
        lines.append("Aims (issue 3):")
        lines += aims or ["- none of the rows the aims name was measured"]
    else:
        lines.append(
            "Aims (issue 3) are for CUDA (>= 3x transformers; >= 60% of the bandwidth limit for"
            " int8 DS-6.7B): not measured on this machine (no CUDA device)."
        )
    return "\n".join(lines)


def _version(name: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument(
        "--shape",
        nargs="+",
        choices=sorted(SHAPES),
        help="default: 100m on CPU, ds-1.3b and ds-6.7b on CUDA",
    )
    parser.add_argument(
        "--compute-type",
        nargs="+",
        help="CTranslate2 compute types; default: int8 on CPU, int8_float16 and float16 on CUDA",
    )
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="CPU threads for torch and CTranslate2 (default: all cores)",
    )
    parser.add_argument(
        "--no-default-threads-row",
        dest="default_threads_row",
        action="store_false",
        help="on CPU, skip the row of Ct2Backend with its default threads=0",
    )
    parser.add_argument(
        "--one-at-a-time",
        action="store_true",
        help="on CPU too, run each engine's rounds in turn with only its model loaded",
    )
    parser.add_argument("--layers", type=int, help="override the layer count (smoke tests)")
    parser.add_argument(
        "--bandwidth-gbs",
        type=float,
        help="peak memory bandwidth of the device, GB/s (default: by device name)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=20.0,
        help="on CPU, wait up to this many seconds before each run for other processes to idle",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=3,
        help="on CPU, redo a run this many times at most while other processes disturbed it",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=BENCH / "out" / "engine_speed")
    parser.add_argument("--keep", action="store_true", help="keep the in-memory shapes' models")
    parser.add_argument("--json", type=Path, help="write every run here")
    args = parser.parse_args(argv)
    HF_LOGGING.disable_progress_bar()
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: torch sees no CUDA device", file=sys.stderr)
        return 2
    gpu = args.device == "cuda"
    args.shape = args.shape or (["ds-1.3b", "ds-6.7b"] if gpu else ["100m"])
    args.compute_type = args.compute_type or (["int8_float16", "float16"] if gpu else ["int8"])
    args.cache = args.cache.resolve()
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    machine, bandwidth = machine_description(args.device)
    bandwidth = args.bandwidth_gbs or bandwidth
    say(f"{machine}; bandwidth {bandwidth or 'unknown'} GB/s")

    results: list[Result] = []
    try:
        for name in args.shape:
            shape = SHAPES[name]
            if args.layers:
                shape = dataclasses.replace(
                    shape, name=f"{name} ({args.layers} layers)", layers=args.layers
                )
            results += measure_shape(shape, args)
    except Broken as exc:
        print(f"measurement broken: {exc}", file=sys.stderr)
        return 1
    text = report(results, args, machine, bandwidth)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "date": datetime.date.today().isoformat(),
            "machine": machine,
            "bandwidth_gbs": bandwidth,
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "results": [
                {
                    **asdict(r),
                    "median_ttft_s": r.median("ttft_s"),
                    "median_decode_tps": r.median("decode_tps"),
                }
                for r in results
            ],
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
