"""Which files of a workspace are the user's Python code.

The server walks the workspace at start (import graph, test discovery) and filters file
watcher events with the same rules, so both agree on what "the workspace" is: virtual
environments, caches, VCS metadata and build outputs are never the user's code, and walking
them would cost seconds on a large tree.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

IGNORED_DIR_NAMES: frozenset[str] = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "env",
        ".env",
        ".tox",
        ".nox",
        "__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        "node_modules",
        "build",
        "dist",
        ".eggs",
        "site-packages",
        ".idea",
        ".vscode",
    }
)

# A virtualenv of any name is recognised by this marker file (PEP 405).
_VENV_MARKER = "pyvenv.cfg"

# Directories known to be virtualenvs. Only positive answers are cached: a directory seen
# before its `pyvenv.cfg` was written (the watcher reports `myenv/` first) must be asked
# again, while a virtualenv rarely stops being one.
_known_venvs: set[str] = set()


def is_ignored_dir_name(name: str) -> bool:
    """True for a directory name that is never the user's code."""
    return name in IGNORED_DIR_NAMES or name.endswith(".egg-info")


def _is_venv_dir(directory: str) -> bool:
    if directory in _known_venvs:
        return True
    if os.path.isfile(os.path.join(directory, _VENV_MARKER)):
        _known_venvs.add(directory)
        return True
    return False


def is_ignored_path(path: Path, root: Path) -> bool:
    """True when any component of `path` below `root` is an ignored directory or a virtualenv.

    A path outside `root` is not the workspace's business, so it counts as ignored.
    """
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return True
    if any(is_ignored_dir_name(part) for part in parts):
        return True
    # Only the path's own components are checked for the marker, one stat each.
    current = str(root)
    for part in parts:
        current = os.path.join(current, part)
        if _is_venv_dir(current):
            return True
    return False


def iter_python_files(root: Path) -> Iterator[Path]:
    """Every `*.py` file under `root`, skipping ignored directories and symlinked ones.

    Symlinked directories are not followed: they lead around in circles (`loop -> .`) or out
    of the workspace, and what a link to a sibling folder holds is found under its real
    path. A symlinked file is a file of the workspace (pytest collects it under its own
    name). The order is the file system's, not sorted.
    """
    for _, entries in walk_directories(root):
        for entry in entries:
            if entry.name.endswith(".py"):
                try:
                    if entry.is_file():
                        yield Path(entry.path)
                except OSError:
                    continue


def walk_directories(root: Path) -> Iterator[tuple[str, list[os.DirEntry[str]]]]:
    """Each directory of the workspace under `root` (itself first) with its entries.

    The rules of iter_python_files: ignored directories, virtualenvs and symlinked
    directories are not entered, so the walk ends on any tree, loops included; a directory
    that cannot be read (vanished, no permission) is left out.
    """
    stack = [str(root)]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as scan:
                entries = list(scan)
        except OSError:  # vanished or unreadable: not ours to report
            continue
        # A virtualenv has `pyvenv.cfg` at its top; it is seen here for free, so no stat.
        if directory != str(root) and any(e.name == _VENV_MARKER for e in entries):
            _known_venvs.add(directory)
            continue
        yield directory, entries
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False) and not is_ignored_dir_name(entry.name):
                    stack.append(entry.path)
            except OSError:
                continue


def is_test_file(path: Path) -> bool:
    """pytest's default `python_files`: `test_*.py`, `*_test.py`, plus `conftest.py`."""
    name = path.name
    if not name.endswith(".py"):
        return False
    return name == "conftest.py" or name.startswith("test_") or name.endswith("_test.py")
