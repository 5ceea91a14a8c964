"""Changes made outside the editor (git checkout, a formatter, another tool) trigger runs too.

The editor's own saves arrive as didSave *and* as file-system events; `SeenFiles` remembers
the (mtime, size) each save was handled at, so the file-system echo of a save is dropped
whatever order the two arrive in.

Each directory of the workspace is watched on its own (not recursively): watchfiles' recursive
mode follows symlinked directories, so a link to a folder outside the workspace (`data ->
/mnt/datasets`) would put a watch on every directory there, and a link to a sibling folder
would report its files under the link's path. The directories are the walk's
(code/walk.py: no symlinked directories, no virtualenvs or caches); a new one restarts the
watcher with it, and what changed while the watcher restarted is found by its time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from watchfiles import Change, DefaultFilter, awatch

from oci_lsp.code.walk import IGNORED_DIR_NAMES, is_ignored_path, walk_directories

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
        if not super().__call__(change, path):
            return False
        return is_relevant(p) or (change == Change.added and _is_directory(path))


def _is_directory(path: str) -> bool:
    """A real directory (a new one to watch); a symlinked one is never followed."""
    return os.path.isdir(path) and not os.path.islink(path)


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


# What changed this long before a restart counts as changed while the watcher restarted:
# file times are coarser than the clock on some file systems.
_RESTART_MARGIN = 1.0


def watched_directories(roots: Sequence[Path]) -> set[str]:
    """The directories to watch: each root's walk (real paths, every directory once)."""
    found: set[str] = set()
    for root in roots:
        found.update(directory for directory, _ in walk_directories(root))
    return found


def _within(path: str, roots: Sequence[Path]) -> Path | None:
    """The root that holds `path`, when it is a file of the workspace (not an ignored one)."""
    for root in roots:
        if path.startswith(str(root) + os.sep) and not is_ignored_path(Path(path), root):
            return root
    return None


def _relevant(changes: set[tuple[Change, str]], roots: Sequence[Path]) -> tuple[set[Path], bool]:
    """The relevant files among changes, by their real paths, and whether a directory
    appeared (the watcher must add it)."""
    paths: set[Path] = set()
    grew = False
    for change, path in changes:
        if change == Change.added and _is_directory(path):
            grew = grew or _within(path, roots) is not None  # not a new virtualenv's
            continue
        # A symlinked file stands for its target, which counts only inside the workspace.
        real = os.path.realpath(path)
        if is_relevant(Path(real)) and _within(real, roots) is not None:
            paths.add(Path(real))
    return paths, grew


def _changed_since(directories: set[str], new: set[str], since: float) -> set[Path]:
    """The relevant files of `directories` written after `since`, and every one in `new`
    (directories not watched until now: a tree moved in keeps its old times)."""
    found: set[Path] = set()
    for directory in directories:
        try:
            with os.scandir(directory) as scan:
                for entry in scan:
                    if not is_relevant(Path(entry.name)) or not entry.is_file():
                        continue
                    if directory in new or entry.stat().st_mtime >= since:
                        found.add(Path(os.path.realpath(entry.path)))
        except OSError:
            continue
    return found


async def watch_roots(
    roots: Sequence[Path],
    on_change: Callable[[set[Path]], Awaitable[None] | None],
    stop: asyncio.Event,
) -> None:
    """Call on_change with each batch of relevant changed files (real paths) until `stop`
    is set."""
    if not roots:
        return
    real_roots = [Path(os.path.realpath(root)) for root in roots]

    async def report(paths: set[Path]) -> None:
        real = {p for p in paths if _within(str(p), real_roots) is not None}
        if real:
            result = on_change(real)
            if result is not None:
                await result

    watched: set[str] = set()
    since: float | None = None
    try:
        while not stop.is_set():
            directories = await asyncio.to_thread(watched_directories, real_roots)
            if not directories:  # the folders are gone or unreadable
                return
            batches = awatch(
                *sorted(directories),
                watch_filter=_Filter(),
                stop_event=stop,
                debounce=200,
                step=50,
                recursive=False,
                ignore_permission_denied=True,
            )
            async with contextlib.aclosing(batches):
                following = asyncio.ensure_future(anext(batches))
                await asyncio.sleep(0)  # awatch sets its watches up before it first waits
                if since is not None:
                    new = directories - watched
                    await report(await asyncio.to_thread(_changed_since, directories, new, since))
                watched = directories
                while True:
                    try:
                        changes = await following
                    except StopAsyncIteration:  # stopped
                        return
                    paths, grew = _relevant(changes, real_roots)
                    await report(paths)
                    if grew:
                        since = time.time() - _RESTART_MARGIN
                        break
                    following = asyncio.ensure_future(anext(batches))
    except Exception:  # the editor keeps working without the watcher, on saves only
        log.exception("file watching stopped; tests still run on save")
