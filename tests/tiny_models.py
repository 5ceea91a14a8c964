"""Tiny real CTranslate2 models, built at test time without torch (NOTES.md).

A byte-level BPE tokenizer trained on a few lines of code, and a Llama-shaped decoder (RMS
norm, gated SiLU MLP, rotary embeddings, grouped-query attention) with random weights: what
it writes is noise, but every path of loading, prompting, streaming and stopping is real.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

DS_SPECIALS = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<|EOT|>"]
CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "### Instruction:\nWrite a function.\n### Response:\n```python\nprint('hello')\n```\n",
    "You are an AI programming assistant, utilizing the Deepseek Coder model.",
    "for i in range(10):\n    if i % 2 == 0:\n        yield i\n",
    "Execution result: \nTraceback (most recent call last):\nAssertionError: é ü 中文",
]


def build_tokenizer(
    specials: list[str], vocab_size: int = 400, texts: Iterable[str] | None = None
) -> Any:
    """A byte-level BPE (DeepSeek-Coder's kind) trained on `texts` (default: a small corpus)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 20 if texts is None else texts, trainer)
    return tokenizer


def build_tiny_model(
    dest: Path,
    *,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    seed: int = 0,
    chat_template: str | None = None,
    eot_bias: float = 0.0,
) -> Path:
    """A DS-shaped tiny model directory, loadable by Ct2Backend.

    eot_bias > 0 makes <|EOT|> likely (answers stop early); 0 leaves it to chance.
    """
    import ctranslate2
    from ctranslate2.specs import common_spec, transformer_spec

    dest.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(DS_SPECIALS)
    vocab = [tokenizer.id_to_token(i) for i in range(tokenizer.get_vocab_size())]
    rng = np.random.default_rng(seed)
    head_dim = hidden // heads
    spec = transformer_spec.TransformerDecoderModelSpec.from_config(
        layers,
        heads,
        pre_norm=True,
        activation=common_spec.Activation.SWISH,
        ffn_glu=True,
        rms_norm=True,
        rotary_dim=0,
        rotary_interleave=False,
        rotary_base=100000.0,
        num_heads_kv=kv_heads,
    )
    decoder = spec.decoder
    decoder.scale_embeddings = False

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    decoder.embeddings.weight = w(len(vocab), hidden)
    decoder.layer_norm.gamma = np.ones(hidden, dtype=np.float32)
    projection = w(len(vocab), hidden)
    decoder.projection.weight = projection
    for layer in decoder.layer:
        attention = layer.self_attention
        attention.layer_norm.gamma = np.ones(hidden, dtype=np.float32)
        attention.linear[0].weight = w(hidden + 2 * kv_heads * head_dim, hidden)
        attention.linear[1].weight = w(hidden, hidden)
        layer.ffn.layer_norm.gamma = np.ones(hidden, dtype=np.float32)
        layer.ffn.linear_0.weight = w(hidden * 2, hidden)
        layer.ffn.linear_0_noact.weight = w(hidden * 2, hidden)
        layer.ffn.linear_1.weight = w(hidden, hidden * 2)
    if eot_bias:
        decoder.projection.bias = np.zeros(len(vocab), dtype=np.float32)
        decoder.projection.bias[vocab.index("<|EOT|>")] = eot_bias
    spec.register_vocabulary(vocab)
    spec.config.bos_token = DS_SPECIALS[0]  # type: ignore[attr-defined]
    spec.config.eos_token = DS_SPECIALS[1]  # type: ignore[attr-defined]
    spec.config.unk_token = DS_SPECIALS[1]  # type: ignore[attr-defined]
    spec.config.layer_norm_epsilon = 1e-6  # type: ignore[attr-defined]
    spec.validate()
    spec.optimize(quantization="float32")
    spec.save(str(dest))
    tokenizer.save(str(dest / "tokenizer.json"))
    config: dict[str, object] = {
        "bos_token": DS_SPECIALS[0],
        "eos_token": DS_SPECIALS[1],
    }
    if chat_template is not None:
        config["chat_template"] = chat_template
    (dest / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    assert ctranslate2.contains_model(str(dest))
    return dest
