"""Hugging Face checkpoints to CTranslate2, proven right by comparing logits every time.

Needs torch and transformers (`pip install 'oci-lsp[convert]'`); loading and serving do not.
Two fixes to CTranslate2's converter live here, registered as its loaders:
- Llama (DS and CL): since 4.7 the loader reads `rope_theta` only from inside `rope_scaling`
  and falls back to 10000. DeepSeek-Coder has `rope_scaling: {type: linear, factor: 4}` and a
  top-level `rope_theta: 100000`; under transformers 4.x the conversion silently used 10000
  (NOTES.md). The top-level value is now used when `rope_scaling` has none.
- StarCoder2 has no loader upstream; `Starcoder2Loader` maps it onto the decoder spec.
The parity check converts nothing twice: it loads the converted model with float32 compute
and compares next-token log-probabilities with transformers' float32 forward pass.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from oci_lsp.engine.catalog import Family, family_of_repo
from oci_lsp.engine.store import write_manifest

log = logging.getLogger(__name__)

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
    "tokenizer.model",
)
# The parity prompt: code, so the check exercises the tokens the model will see.
PARITY_PROMPT = (
    "### Instruction:\nWrite a Python function `add(a, b)` that returns the sum.\n"
    "### Response:\n```python\ndef add(a, b):\n    return a + b\n```"
)
# Largest allowed difference of log-probabilities, by the width of the converted weights: a
# wrong rotary base or a mis-mapped weight moves them by whole units; rounding does not.
TOLERANCE = {"float32": 1e-3, "float16": 0.1, "bfloat16": 0.25, "int16": 0.1}
INT8_TOLERANCE = 1.0


class ConvertError(Exception):
    """One line that says what went wrong and what to do."""


@dataclass
class ParityResult:
    passed: bool
    max_abs_diff: float
    top1_agreement: float  # fraction of positions where both pick the same next token
    tolerance: float
    positions: int

    def describe(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"logits parity {verdict}: max |Δ log-prob| {self.max_abs_diff:.3g}"
            f" (tolerance {self.tolerance:g}), same top token at"
            f" {self.top1_agreement:.0%} of {self.positions} positions"
        )


def _require_convert_extra() -> None:
    missing = []
    for name in ("torch", "transformers"):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ConvertError(
            f"converting needs {' and '.join(missing)}: install them with"
            " `pip install 'oci-lsp[convert]'`"
        )


_registered = False


def register_loaders() -> None:
    """Put our Llama and StarCoder2 loaders into CTranslate2's converter (once)."""
    global _registered
    if _registered:
        return
    from ctranslate2.converters.transformers import LlamaLoader, register_loader

    from oci_lsp.engine.starcoder2 import Starcoder2Loader

    @register_loader("LlamaConfig")
    class RopeThetaLlamaLoader(LlamaLoader):  # type: ignore[misc]
        def get_rotary_params(self, config: Any, default_rope_theta: float) -> Any:
            scaling_type, factor, theta = super().get_rotary_params(config, default_rope_theta)
            scaling = getattr(config, "rope_scaling", None)
            top_level = getattr(config, "rope_theta", None)
            if scaling and "rope_theta" not in scaling and top_level:
                theta = top_level
            return scaling_type, factor, theta

    register_loader("Starcoder2Config")(Starcoder2Loader)
    _registered = True


def _versions() -> dict[str, str]:
    out = {}
    for name in ("ctranslate2", "transformers", "torch", "tokenizers"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    return out


def _source_config(src: Path) -> dict[str, Any]:
    try:
        data = json.loads((src / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConvertError(
            f"{src} has no readable config.json: is it a checkpoint? ({exc})"
        ) from exc
    if not isinstance(data, dict):
        raise ConvertError(f"{src}/config.json is not an object")
    return data


def _family(config: dict[str, Any], src: Path, source_repo: str | None) -> Family:
    if config.get("model_type") == "starcoder2":
        return "sc2"
    guess = family_of_repo(source_repo or src.name)
    if guess is not None:
        return guess
    return "ds" if config.get("vocab_size", 0) >= 32256 else "cl"


def check_parity(src: Path, converted: Path, quantization: str) -> ParityResult:
    """Compare next-token log-probs of transformers (float32) and the converted model."""
    import ctranslate2
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(src))
    ids = tokenizer(PARITY_PROMPT, add_special_tokens=True)["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(str(src), dtype=torch.float32)
    model.train(False)  # inference mode: no dropout
    with torch.no_grad():
        expected = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1).numpy()
    del model
    generator = ctranslate2.Generator(str(converted), device="cpu", compute_type="float32")
    tokens = tokenizer.convert_ids_to_tokens(ids)
    logits = np.array(generator.forward_batch([tokens]), dtype=np.float64)[0]
    peak = logits.max(-1, keepdims=True)
    got = logits - peak - np.log(np.exp(logits - peak).sum(-1, keepdims=True))
    vocab = min(expected.shape[-1], got.shape[-1])
    # Compare where it matters: the tokens transformers finds likely at each position.
    top = np.argsort(expected[:, :vocab], axis=-1)[:, -20:]
    diff = np.abs(np.take_along_axis(expected, top, -1) - np.take_along_axis(got, top, -1))
    agreement = float(np.mean(expected[:, :vocab].argmax(-1) == got[:, :vocab].argmax(-1)))
    tolerance = TOLERANCE.get(quantization, INT8_TOLERANCE)
    max_diff = float(diff.max())
    return ParityResult(max_diff <= tolerance, max_diff, agreement, tolerance, len(ids))


def convert_checkpoint(
    src: Path,
    out: Path,
    quantization: str,
    *,
    source_repo: str | None = None,
    revision: str | None = None,
    family: Family | None = None,
    force_keep_on_failure: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Convert src into out (atomically replacing it), verify, and write the manifest.

    A failed parity check leaves out as it was (the user's previous model stays) and raises
    ConvertError with the distance found.
    """
    say = progress or (lambda message: log.info("%s", message))
    _require_convert_extra()
    register_loaders()
    from ctranslate2.converters import TransformersConverter

    config = _source_config(src)
    family = family or _family(config, src, source_repo)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.converting-", dir=out.parent))
    staged = work / "model"
    try:
        say(f"converting {src} to CTranslate2 ({quantization})")
        copy = [name for name in TOKENIZER_FILES if (src / name).exists()]
        converter = TransformersConverter(
            str(src),
            copy_files=copy,
            low_cpu_mem_usage=True,
            load_as_float16=quantization in ("float16", "int8_float16"),
        )
        try:
            converter.convert(str(staged), quantization=quantization, force=True)
        except (NotImplementedError, ValueError, KeyError) as exc:
            raise ConvertError(f"cannot convert {src}: {exc}") from exc
        say("checking logits against transformers (float32)")
        parity = check_parity(src, staged, quantization)
        say(parity.describe())
        manifest = {
            "family": family,
            "context": int(config.get("max_position_embeddings") or 4096),
            "quantization": quantization,
            "source": {"repo": source_repo or str(src), "revision": revision, "local": str(src)},
            "versions": _versions(),
            "parity": asdict(parity),
        }
        write_manifest(staged, manifest)
        if not parity.passed and not force_keep_on_failure:
            raise ConvertError(
                f"the converted model does not match the checkpoint: {parity.describe()};"
                f" nothing was installed ({out} is unchanged)"
            )
        _replace(staged, out)
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _replace(new: Path, out: Path) -> None:
    """Swap the new model in; the old one is removed only once the new one is in place."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(new, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def verify_installed(directory: Path, src: Path) -> ParityResult:
    """`oci-lsp model verify`: re-run the check against the checkpoint it came from."""
    _require_convert_extra()
    from oci_lsp.engine.store import read_manifest

    manifest = read_manifest(directory)
    quantization = str(manifest.get("quantization") or "float32")
    result = check_parity(src, directory, quantization)
    manifest["parity"] = asdict(result)
    write_manifest(directory, manifest)
    return result
