"""The ten released OpenCodeInterpreter models, and what each needs to run.

Context lengths and parameter counts are those of the base models' configs (DeepSeek-Coder,
CodeLlama-Python, StarCoder2); a converted model's own config.json wins over them. Memory is
an estimate: the weights at the compute type's width plus a fifth for the key/value cache and
activations of a few thousand tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Family = Literal["ds", "cl", "sc2"]

# Bytes per parameter of each CTranslate2 compute type's weights.
WEIGHT_BYTES = {
    "int8": 1.0,
    "int8_float32": 1.0,
    "int8_float16": 1.0,
    "int8_bfloat16": 1.0,
    "int16": 2.0,
    "float16": 2.0,
    "bfloat16": 2.0,
    "float32": 4.0,
}
RUNTIME_OVERHEAD = 1.2


@dataclass(frozen=True)
class CatalogModel:
    id: str  # "ds-6.7b"
    repo: str  # Hugging Face repository
    family: Family
    parameters: float  # in billions
    context: int  # tokens
    stop_tokens: tuple[str, ...]

    def memory_gib(self, compute_type: str) -> float:
        width = WEIGHT_BYTES.get(compute_type, 2.0)
        return self.parameters * 1e9 * width * RUNTIME_OVERHEAD / 2**30

    @property
    def chat_format(self) -> str:
        return CHAT_FORMATS[self.family]


CHAT_FORMATS: dict[Family, str] = {
    "ds": "DeepSeek-Coder instruct (### Instruction / ### Response, <|EOT|>)",
    "cl": "ChatML (<|im_start|> / <|im_end|>), proposed: the release has no template",
    "sc2": "### Instruction / ### Response: no template was published",
}

_DS_STOP = ("<|EOT|>",)
_CL_STOP = ("</s>", "<|im_end|>")
_SC2_STOP = ("<|endoftext|>",)

CATALOG: tuple[CatalogModel, ...] = (
    CatalogModel("ds-1.3b", "m-a-p/OpenCodeInterpreter-DS-1.3B", "ds", 1.35, 16384, _DS_STOP),
    CatalogModel("ds-6.7b", "m-a-p/OpenCodeInterpreter-DS-6.7B", "ds", 6.74, 16384, _DS_STOP),
    CatalogModel("ds-33b", "m-a-p/OpenCodeInterpreter-DS-33B", "ds", 33.3, 16384, _DS_STOP),
    CatalogModel("cl-7b", "m-a-p/OpenCodeInterpreter-CL-7B", "cl", 6.74, 16384, _CL_STOP),
    CatalogModel("cl-13b", "m-a-p/OpenCodeInterpreter-CL-13B", "cl", 13.0, 16384, _CL_STOP),
    CatalogModel("cl-34b", "m-a-p/OpenCodeInterpreter-CL-34B", "cl", 33.7, 16384, _CL_STOP),
    CatalogModel("cl-70b", "m-a-p/OpenCodeInterpreter-CL-70B", "cl", 69.0, 16384, _CL_STOP),
    CatalogModel("sc2-3b", "m-a-p/OpenCodeInterpreter-SC2-3B", "sc2", 3.03, 16384, _SC2_STOP),
    CatalogModel("sc2-7b", "m-a-p/OpenCodeInterpreter-SC2-7B", "sc2", 7.17, 16384, _SC2_STOP),
    CatalogModel("sc2-15b", "m-a-p/OpenCodeInterpreter-SC2-15B", "sc2", 15.96, 16384, _SC2_STOP),
)

_BY_ID = {m.id: m for m in CATALOG}
_BY_REPO = {m.repo.lower(): m for m in CATALOG}


def find(id_or_repo: str) -> CatalogModel | None:
    """A catalog entry by id ("ds-6.7b", any case) or by its Hugging Face repository."""
    key = id_or_repo.strip().lower()
    return _BY_ID.get(key) or _BY_REPO.get(key)


def family_of_repo(repo: str) -> Family | None:
    """The chat family of a repository outside the catalog, from its name, when it says."""
    name = repo.lower()
    if "-ds-" in name or "deepseek" in name:
        return "ds"
    if "-cl-" in name or "codellama" in name or "llama" in name:
        return "cl"
    if "-sc2-" in name or "starcoder2" in name:
        return "sc2"
    return None
