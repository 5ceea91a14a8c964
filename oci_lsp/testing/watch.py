"""Changes made outside the editor (git checkout, a formatter, another tool) trigger runs too.

The editor's own saves arrive as didSave *and* as file-system events; `SeenFiles` remembers
the (mtime, size) each save was handled at, so the file-system echo of a save is dropped
whatever order the two arrive in.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from watchfiles import Change, DefaultFilter, awatch

from oci_lsp.code.walk import IGNORED_DIR_NAMES

log = logging.getLogger(__name__)

# Files whose change can change test results: code and pytest's configuration.
CONFIG_NAMES = frozenset({"pyproject.toml", "setup.cfg", "pytest.ini", "tox.ini", "conftest.py"})


def is_relevant(path: Path) -> bool:
    return path.suffix == ".py" or path.name in CONFIG_NAMES


class _Filter(DefaultFilter):
    def __init__(self) -> None:
        super().__init__(ignore_dirs=tuple(IGNORED_DIR_NAMES))

    def __call__(self, change: Change, path: str) -> bool:
        p = Path(path)
        if any(part.endswith(".egg-info") for part in p.parts):
            return False
        return is_relevant(p) and super().__call__(change, path)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class SeenFiles:
    """The state of each file when its last change was handled."""

    def __init__(self) -> None:
        self._stamps: dict[str, tuple[int, int] | None] = {}

    def saved(self, path: Path) -> None:
        self._stamps[str(path)] = _stamp(path)

    def is_new(self, path: Path) -> bool:
        """True, and remembered, when the file differs from the last time it was handled."""
        stamp = _stamp(path)
        key = str(path)
        if key in self._stamps and self._stamps[key] == stamp:
            return False
        self._stamps[key] = stamp
        return True


async def watch_roots(
    roots: Sequence[Path],
    on_change: Callable[[set[Path]], Awaitable[None] | None],
    stop: asyncio.Event,
) -> None:
    """Call on_change with each batch of relevant changed paths until `stop` is set."""
    if not roots:
        return
    try:
        async for changes in awatch(
            *roots,
            watch_filter=_Filter(),
            stop_event=stop,
            debounce=200,
            step=50,
            recursive=True,
            ignore_permission_denied=True,
        ):
            paths = {Path(p) for _, p in changes}
            result = on_change(paths)
            if result is not None:
                await result
    except Exception:  # the editor keeps working without the watcher, on saves only
        log.exception("file watching stopped; tests still run on save")
