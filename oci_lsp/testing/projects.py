"""The Python projects inside a workspace folder: where each one's tests run from.

A monorepo folder holds several projects, each with its own pyproject.toml (or setup.py,
setup.cfg, pytest.ini, tox.ini), often its own virtualenv and pytest configuration; their
developers run `pytest` inside each one. oci-lsp does the same: a file belongs to the
innermost project that holds it, and that project's tests run from its directory, so pytest
finds its rootdir and configuration as it would for the user. The folder itself is always a
project (a plain folder is one project, as before); its runs leave out the projects below it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from oci_lsp.code.walk import is_ignored_dir_name

# A directory that holds one of these is a project root.
PROJECT_MARKERS = frozenset(
    {"pyproject.toml", "setup.py", "setup.cfg", "pytest.ini", ".pytest.ini", "tox.ini"}
)
# Projects under these are test data (a sample project of a build tool's tests), not projects
# of the folder: their tests belong to the project whose tests use them.
_TEST_DATA_DIRS = frozenset({"tests", "test", "testing", "fixtures", "testdata", "test_data"})
# A folder this deep below the workspace folder is not looked at: projects sit near the top.
_MAX_DEPTH = 4


def find_projects(folder: Path) -> list[Path]:
    """The project roots under `folder` (itself first), outermost before innermost."""
    found = [folder]
    stack: list[tuple[str, int]] = [(str(folder), 0)]
    while stack:
        directory, depth = stack.pop()
        try:
            with os.scandir(directory) as scan:
                entries = list(scan)
        except OSError:
            continue
        names = {entry.name for entry in entries}
        if "pyvenv.cfg" in names:
            continue  # a virtualenv of any name
        if depth > 0 and names & PROJECT_MARKERS:
            found.append(Path(directory))
        if depth >= _MAX_DEPTH:
            continue
        for entry in entries:
            name = entry.name
            if name.startswith(".") or is_ignored_dir_name(name) or name in _TEST_DATA_DIRS:
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, depth + 1))
            except OSError:
                continue
    return sorted(found, key=lambda p: (len(p.parts), str(p)))


def is_project_marker(path: Path) -> bool:
    return path.name in PROJECT_MARKERS


def contains(root: Path, path: str) -> bool:
    text = str(root)
    return path == text or path.startswith(text.rstrip(os.sep) + os.sep)


def innermost(roots: Iterable[Path], path: str) -> Path | None:
    """The deepest of `roots` that holds `path`."""
    best: Path | None = None
    for root in roots:
        if contains(root, path) and (best is None or len(root.parts) > len(best.parts)):
            best = root
    return best


def nested_in(root: Path, roots: Iterable[Path]) -> list[Path]:
    """The projects of `roots` below `root`: its runs leave them to their own sessions."""
    return sorted(r for r in roots if r != root and contains(root, str(r)))
