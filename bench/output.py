"""What every benchmark does with its raw figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def save_json(path: Path | None, results: Any) -> None:
    """Write the raw results where --json asked (bench/out/ is git-ignored); None: nowhere."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2), encoding="utf-8")
