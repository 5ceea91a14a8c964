"""One backend per process, shared by every request, made from the settings on first use.

CTranslate2 models are large: loading one per request or per folder would be wrong. The
manager keeps the backend built for the current settings and replaces it only when a setting
that shapes it (backend, model, device, compute type, server URL) changes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import astuple

from oci_lsp.config import Settings
from oci_lsp.engine.backend import Backend, BackendError, BackendStatus
from oci_lsp.engine.device import choose_placement
from oci_lsp.engine.store import context_length, family_of, locate

log = logging.getLogger(__name__)


def _key(settings: Settings) -> tuple[object, ...]:
    return (
        settings.backend,
        settings.model,
        settings.device,
        settings.compute_type,
        astuple(settings.openai),
    )


def cpu_threads() -> int:
    """The CPUs this process may run on: CTranslate2's own default (4) oversubscribes small
    machines and leaves big ones idle."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def create_backend(settings: Settings) -> Backend:
    """The backend the settings describe; BackendError says what to do when there is none."""
    if settings.backend == "openai":
        from oci_lsp.engine.openai_backend import OpenAIBackend

        return OpenAIBackend.from_settings(settings.openai)
    from oci_lsp.engine.ct2_backend import Ct2Backend

    placement = choose_placement(settings.model, settings.device, settings.compute_type)
    where = locate(placement.model)
    if not where.installed:
        if where.entry is not None:
            raise BackendError(
                f"model {where.entry.id} is not installed: run `oci-lsp model pull"
                f" {where.entry.id}`, or set `backend` to openai with `openai.baseUrl`"
            )
        raise BackendError(
            f"no CTranslate2 model in {where.directory}: set `model` to a catalog id"
            " (`oci-lsp model list`) or a converted model directory"
        )
    return Ct2Backend(
        where.directory,
        family_of(where.directory, where.entry),
        entry=where.entry,
        device=settings.device,
        compute_type=settings.compute_type,
        context=context_length(where.directory, where.entry),
        threads=cpu_threads(),
    )


class ModelManager:
    def __init__(self) -> None:
        self._backend: Backend | None = None
        self._key: tuple[object, ...] | None = None

    async def backend(self, settings: Settings) -> Backend:
        """The shared backend for these settings (built, not loaded: loading is lazy)."""
        key = _key(settings)
        if self._backend is not None and key == self._key:
            return self._backend
        await self.close()
        self._backend = create_backend(settings)
        self._key = key
        return self._backend

    async def preload(self, settings: Settings) -> None:
        """Load the model for these settings now (the `generation.preload` setting)."""
        backend = await self.backend(settings)
        await backend.load()

    def status(self, settings: Settings) -> BackendStatus:
        """What oci.status shows; never loads anything."""
        if self._backend is not None and _key(settings) == self._key:
            return self._backend.status()
        if settings.backend == "openai":
            return BackendStatus(
                id=settings.openai.model or settings.openai.base_url,
                state="not-loaded",
                device="remote",
            )
        placement = choose_placement(settings.model, settings.device, settings.compute_type)
        where = locate(placement.model)
        return BackendStatus(
            id=placement.model,
            state="not-loaded" if where.installed else "error",
            device=placement.device,
            compute_type=placement.compute_type,
            error=None
            if where.installed
            else f"not installed: `oci-lsp model pull {placement.model}`",
        )

    async def close(self) -> None:
        if self._backend is not None:
            try:
                await self._backend.close()
            except BackendError as exc:
                log.warning("closing the model: %s", exc)
            self._backend = None
            self._key = None
