"""Where converted models live, and what their manifest says.

A model directory holds CTranslate2's files (model.bin, config.json, vocabulary.json), the
checkpoint's tokenizer files (tokenizer.json, tokenizer_config.json, generation_config.json),
and `oci-model.json`: the manifest with the family, source repo and revision, quantization,
library versions and the result of the logits parity check.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oci_lsp.engine.catalog import CatalogModel, Family, family_of_repo, find
from oci_lsp.engine.paths import models_dir

MANIFEST = "oci-model.json"


@dataclass(frozen=True)
class ModelLocation:
    """A model setting resolved to a directory (which may not exist yet)."""

    directory: Path
    entry: CatalogModel | None  # the catalog entry, for a catalog id

    @property
    def installed(self) -> bool:
        return (self.directory / "model.bin").exists()


def locate(model: str) -> ModelLocation:
    """`model` as CONTRACT.md has it: a catalog id, or a CTranslate2 model directory."""
    entry = find(model)
    if entry is not None:
        return ModelLocation(models_dir() / entry.id, entry)
    return ModelLocation(Path(model).expanduser(), None)


def read_manifest(directory: Path) -> dict[str, Any]:
    try:
        data = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Atomically: a crash never leaves a half-written manifest."""
    tmp = directory / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, directory / MANIFEST)


def family_of(directory: Path, entry: CatalogModel | None = None) -> Family:
    """The chat family: the catalog's, else the manifest's, else guessed from names; DS last."""
    if entry is not None:
        return entry.family
    family = read_manifest(directory).get("family")
    if family in ("ds", "cl", "sc2"):
        return family  # type: ignore[no-any-return]
    source = str(read_manifest(directory).get("source", {}).get("repo", directory.name))
    return family_of_repo(source) or "ds"


def context_length(directory: Path, entry: CatalogModel | None = None) -> int:
    """The model's context in tokens: the manifest (from the checkpoint's config) wins."""
    value = read_manifest(directory).get("context")
    if isinstance(value, int) and value > 0:
        return value
    return entry.context if entry is not None else 4096


def directory_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
