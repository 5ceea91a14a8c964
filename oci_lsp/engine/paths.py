"""Where oci-lsp keeps what it downloads and converts.

Everything lives under one cache directory, `$XDG_CACHE_HOME/oci-lsp` (or `~/.cache/oci-lsp`):
`models/` holds converted models, `downloads/` the checkpoints pulled from the Hugging Face hub
(`downloads/<owner>--<name>/<commit>/`). The environment is read on every call, so a test (or a
CLI flag that sets XDG_CACHE_HOME) takes effect without reloading anything.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/oci-lsp`, else `~/.cache/oci-lsp` (an empty value counts as unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "oci-lsp"


def models_dir() -> Path:
    """Converted models, one directory per model id."""
    return cache_dir() / "models"


def downloads_dir() -> Path:
    """Checkpoints pulled from the hub, one directory per repo and commit."""
    return cache_dir() / "downloads"
