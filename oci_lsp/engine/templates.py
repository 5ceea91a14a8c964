"""Conversations to prompt text, the way each model family was trained.

The checkpoint's own `chat_template` (tokenizer_config.json) wins: it is rendered with Jinja
in a sandbox, as transformers renders it. Without one, a built-in format per family is used
(NOTES.md: DS has DeepSeek-Coder's instruct format; CL has no released template, ChatML was
proposed; SC2 published none).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from oci_lsp.engine.backend import ChatMessage
from oci_lsp.engine.catalog import Family

log = logging.getLogger(__name__)

DS_BOS = "<｜begin▁of▁sentence｜>"
DS_EOT = "<|EOT|>"
DS_DEFAULT_SYSTEM = (
    "You are an AI programming assistant, utilizing the Deepseek Coder model, developed by "
    "Deepseek Company, and you only answer questions related to computer science. For "
    "politically sensitive questions, security and privacy issues, and other non-computer "
    "science questions, you will refuse to answer\n"
)


@dataclass(frozen=True)
class ChatFormat:
    """How one model turns messages into text, and where its answers end."""

    family: Family
    template: str | None  # the checkpoint's Jinja template, when it has one
    bos_token: str
    eos_token: str
    stop_tokens: tuple[str, ...]

    def render(self, messages: Sequence[ChatMessage]) -> str:
        """The prompt text, ending where the assistant's answer begins."""
        if self.template:
            try:
                return _render_jinja(self, messages)
            except TemplateError as exc:
                log.warning("the model's chat template failed (%s); using the built-in one", exc)
        return _BUILTIN[self.family](self, messages)


def _render_jinja(fmt: ChatFormat, messages: Sequence[ChatMessage]) -> str:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env.globals["raise_exception"] = raise_exception
    template = env.from_string(fmt.template or "")
    return template.render(
        messages=[{"role": m.role, "content": m.content} for m in messages],
        bos_token=fmt.bos_token,
        eos_token=fmt.eos_token,
        add_generation_prompt=True,
    )


def _ds(fmt: ChatFormat, messages: Sequence[ChatMessage]) -> str:
    parts = [fmt.bos_token]
    if not any(m.role == "system" for m in messages):
        parts.append(DS_DEFAULT_SYSTEM)
    for m in messages:
        if m.role == "system":
            parts.append(m.content)
        elif m.role == "user":
            parts.append(f"### Instruction:\n{m.content}\n")
        else:
            parts.append(f"### Response:\n{m.content}\n{DS_EOT}\n")
    parts.append("### Response:\n")
    return "".join(parts)


def _chatml(fmt: ChatFormat, messages: Sequence[ChatMessage]) -> str:
    parts = [fmt.bos_token]
    for m in messages:
        parts.append(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n")
    parts.append("<|im_start|>assistant\n")
    return "".join(parts)


def _instruction(fmt: ChatFormat, messages: Sequence[ChatMessage]) -> str:
    parts = []
    for m in messages:
        if m.role == "system":
            parts.append(f"{m.content}\n\n")
        elif m.role == "user":
            parts.append(f"### Instruction\n{m.content}\n\n")
        else:
            parts.append(f"### Response\n{m.content}{fmt.eos_token}\n\n")
    parts.append("### Response\n")
    return "".join(parts)


_BUILTIN = {"ds": _ds, "cl": _chatml, "sc2": _instruction}

_DEFAULTS: dict[Family, tuple[str, str, tuple[str, ...]]] = {
    "ds": (DS_BOS, "<｜end▁of▁sentence｜>", (DS_EOT,)),
    "cl": ("<s>", "</s>", ("</s>", "<|im_end|>")),
    "sc2": ("", "<|endoftext|>", ("<|endoftext|>",)),
}


def _token_text(value: Any) -> str | None:
    """tokenizer_config.json writes special tokens as strings or as {"content": ...}."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


def load_chat_format(model_dir: Path, family: Family) -> ChatFormat:
    """The chat format of a model directory: its tokenizer config first, the family's after."""
    bos, eos, stops = _DEFAULTS[family]
    template = None
    path = model_dir / "tokenizer_config.json"
    if path.exists():
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("cannot read %s (%s); using the built-in chat format", path, exc)
            config = {}
        raw = config.get("chat_template")
        if isinstance(raw, list):  # several named templates: take the default one
            raw = next((t.get("template") for t in raw if t.get("name") == "default"), None)
        template = raw if isinstance(raw, str) and raw.strip() else None
        bos = _token_text(config.get("bos_token")) or bos
        eos = _token_text(config.get("eos_token")) or eos
    # The end of an answer: the family's stop tokens and the checkpoint's own EOS.
    stop_tokens = tuple(dict.fromkeys((*stops, eos)))
    return ChatFormat(family, template, bos, eos, stop_tokens)
