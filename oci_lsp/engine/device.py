"""Which device and compute type a model runs with, and why (the reason is logged)."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

# CONTRACT.md: `model: "auto"` is ds-6.7b with a usable CUDA device, ds-1.3b otherwise.
AUTO_MODEL_GPU = "ds-6.7b"
AUTO_MODEL_CPU = "ds-1.3b"


@functools.lru_cache(maxsize=1)
def cuda_device_count() -> int:
    """0 without a GPU or driver; CTranslate2 raises rather than returning 0 in some setups."""
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    except Exception as exc:  # no driver, no library: the CPU it is
        log.info("no CUDA device usable by CTranslate2: %s", exc)
        return 0


@dataclass(frozen=True)
class Placement:
    device: str  # "cuda" or "cpu"
    compute_type: str
    model: str
    reason: str


def choose_placement(model: str, device: str, compute_type: str) -> Placement:
    """Resolve the "auto" settings of CONTRACT.md against this machine."""
    gpus = cuda_device_count()
    if device == "auto":
        chosen = "cuda" if gpus > 0 else "cpu"
        reason = f"{gpus} CUDA device(s) found" if gpus else "no CUDA device found"
    else:
        chosen = device
        reason = f"device set to {device}"
    if compute_type == "auto":
        compute = "int8_float16" if chosen == "cuda" else "int8"
    else:
        compute = compute_type
    if model == "auto":
        model = AUTO_MODEL_GPU if chosen == "cuda" else AUTO_MODEL_CPU
    return Placement(chosen, compute, model, reason)
