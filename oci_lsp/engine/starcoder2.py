"""A CTranslate2 loader for StarCoder2, which upstream CTranslate2 does not convert.

StarCoder2 on CTranslate2's decoder spec: layer norms with bias (not RMS), a plain MLP
(`c_fc`, GELU-tanh, `c_proj`) with biases, grouped-query attention with biased projections,
rotary embeddings with the checkpoint's `rope_theta`, and a sliding attention window.
Imported only for conversion (needs torch and transformers).
"""

from __future__ import annotations

from typing import Any

from ctranslate2.converters import utils
from ctranslate2.converters.transformers import ModelLoader
from ctranslate2.specs import common_spec, transformer_spec

_ACTIVATIONS = {
    "gelu_pytorch_tanh": common_spec.Activation.GELUTanh,
    "gelu_new": common_spec.Activation.GELUTanh,
    "gelu": common_spec.Activation.GELU,
}


class Starcoder2Loader(ModelLoader):  # type: ignore[misc]
    @property
    def architecture_name(self) -> str:
        return "Starcoder2ForCausalLM"

    def get_model_spec(self, model: Any) -> Any:
        config = model.config
        num_heads = config.num_attention_heads
        num_heads_kv = getattr(config, "num_key_value_heads", num_heads)
        activation = _ACTIVATIONS.get(config.hidden_act)
        if activation is None:
            raise NotImplementedError(f"StarCoder2 activation {config.hidden_act!r}")
        spec = transformer_spec.TransformerDecoderModelSpec.from_config(
            config.num_hidden_layers,
            num_heads,
            activation=activation,
            pre_norm=True,
            ffn_glu=False,
            rms_norm=False,
            rotary_dim=0,
            rotary_interleave=False,
            rotary_base=float(_rope_theta(config)),
            num_heads_kv=None if num_heads_kv == num_heads else num_heads_kv,
            sliding_window=getattr(config, "sliding_window", None) or 0,
        )
        self.set_decoder(spec.decoder, model.model)
        self.set_linear(spec.decoder.projection, model.lm_head)
        return spec

    def get_vocabulary(self, model: Any, tokenizer: Any) -> list[str]:
        tokens: list[str] = super().get_vocabulary(model, tokenizer)
        extra = model.config.vocab_size - len(tokens)
        tokens.extend(f"<extra_id_{i}>" for i in range(extra))
        return tokens[: model.config.vocab_size]

    def set_vocabulary(self, spec: Any, tokens: list[str]) -> None:
        spec.register_vocabulary(tokens)

    def set_config(self, config: Any, model: Any, tokenizer: Any) -> None:
        config.bos_token = tokenizer.bos_token
        config.eos_token = tokenizer.eos_token
        config.unk_token = tokenizer.unk_token if tokenizer.unk_token is not None else ""
        config.layer_norm_epsilon = model.config.norm_epsilon

    def set_decoder(self, spec: Any, module: Any) -> None:
        spec.scale_embeddings = False
        self.set_embeddings(spec.embeddings, module.embed_tokens)
        self.set_layer_norm(spec.layer_norm, module.norm)
        for layer_spec, layer in zip(spec.layer, module.layers, strict=True):
            self.set_layer_norm(layer_spec.self_attention.layer_norm, layer.input_layernorm)
            self.set_layer_norm(layer_spec.ffn.layer_norm, layer.post_attention_layernorm)
            split = [common_spec.LinearSpec() for _ in range(3)]
            self.set_linear(split[0], layer.self_attn.q_proj)
            self.set_linear(split[1], layer.self_attn.k_proj)
            self.set_linear(split[2], layer.self_attn.v_proj)
            utils.fuse_linear(layer_spec.self_attention.linear[0], split)
            self.set_linear(layer_spec.self_attention.linear[1], layer.self_attn.o_proj)
            self.set_linear(layer_spec.ffn.linear_0, layer.mlp.c_fc)
            self.set_linear(layer_spec.ffn.linear_1, layer.mlp.c_proj)
            delattr(layer, "self_attn")
            delattr(layer, "mlp")


def _rope_theta(config: Any) -> float:
    """transformers 5 keeps it in rope_parameters / rope_scaling; 4.x at the top level."""
    for holder in ("rope_parameters", "rope_scaling"):
        params = getattr(config, holder, None)
        if isinstance(params, dict) and params.get("rope_theta"):
            return float(params["rope_theta"])
    return float(getattr(config, "rope_theta", None) or 10000.0)
