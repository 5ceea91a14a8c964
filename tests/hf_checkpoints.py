"""Tiny Hugging Face checkpoints built at test time: DS-shaped, CL-shaped and StarCoder2.

Random weights, real configs: the DS one has DeepSeek-Coder's rotary settings
(`rope_scaling: {type: linear, factor: 4}`, `rope_theta: 100000`), the trap NOTES.md names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.tiny_models import DS_SPECIALS, build_tokenizer

CL_SPECIALS = ["<s>", "</s>", "<unk>"]
SC2_SPECIALS = ["<|endoftext|>", "<fim_prefix>"]


def _save_tokenizer(dest: Path, specials: list[str], bos: str | None, eos: str) -> int:
    from transformers import PreTrainedTokenizerFast

    tokenizer = build_tokenizer(specials)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=bos, eos_token=eos)
    fast.save_pretrained(str(dest))
    return int(tokenizer.get_vocab_size())  # type: ignore[attr-defined]


def _save_model(config: Any, dest: Path, seed: int) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():  # larger weights than the init gives: logits that disagree visibly
        for param in model.parameters():
            if param.dim() > 1:
                param.normal_(0.0, 0.2)
    model.save_pretrained(str(dest), safe_serialization=True)


def build_llama_checkpoint(dest: Path, family: str = "ds", seed: int = 0, **overrides: Any) -> Path:
    from transformers import LlamaConfig

    dest.mkdir(parents=True, exist_ok=True)
    if family == "ds":
        vocab = _save_tokenizer(dest, DS_SPECIALS, DS_SPECIALS[0], DS_SPECIALS[1])
        rope: dict[str, Any] = {
            "rope_scaling": {"type": "linear", "factor": 4.0},
            "rope_theta": 100000,
        }
        bos, eos = 0, 1
    else:
        vocab = _save_tokenizer(dest, CL_SPECIALS, "<s>", "</s>")
        rope = {"rope_theta": 1000000}
        bos, eos = 0, 1
    settings: dict[str, Any] = {
        "vocab_size": vocab,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-6,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "tie_word_embeddings": False,
        **rope,
        **overrides,
    }
    _save_model(LlamaConfig(**settings), dest, seed)
    # The file as released, whatever transformers 5 wrote: DeepSeek-Coder's config.json has
    # `rope_scaling` without `rope_theta`, `rope_theta` at the top, and no `rope_parameters`.
    config = json.loads((dest / "config.json").read_text())
    for key in ("rope_parameters", "rope_scaling", "rope_theta"):
        config.pop(key, None)
    if family == "ds":
        config.update(rope_scaling={"type": "linear", "factor": 4.0}, rope_theta=100000)
    else:
        config.update(rope_theta=1000000)
    (dest / "config.json").write_text(json.dumps(config, indent=2))
    return dest


def build_starcoder2_checkpoint(dest: Path, seed: int = 0) -> Path:
    from transformers import Starcoder2Config

    dest.mkdir(parents=True, exist_ok=True)
    vocab = _save_tokenizer(dest, SC2_SPECIALS, "<|endoftext|>", "<|endoftext|>")
    config = Starcoder2Config(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        sliding_window=1024,
        rope_theta=100000,
        use_bias=True,
        norm_epsilon=1e-5,
        hidden_act="gelu_pytorch_tanh",
        bos_token_id=0,
        eos_token_id=0,
        tie_word_embeddings=False,
    )
    _save_model(config, dest, seed)
    return dest
