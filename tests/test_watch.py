"""The file watcher on real file systems: symlink loops, links out, new directories."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from oci_lsp.testing.watch import watch_roots, watched_directories
from tests.conftest import WAIT, write_files


class Seen:
    """What the watcher reported, as a running watcher."""

    def __init__(self) -> None:
        self.paths: set[Path] = set()
        self.batches = 0

    def __call__(self, paths: set[Path]) -> None:
        self.paths |= paths
        self.batches += 1

    async def wait_for(self, *paths: Path) -> None:
        deadline = time.monotonic() + WAIT
        while not set(paths) <= self.paths:
            if time.monotonic() > deadline:
                raise AssertionError(f"not reported: {set(paths) - self.paths}; saw {self.paths}")
            await asyncio.sleep(0.05)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A folder with a loop to itself, a loop to its parent, a link to a sibling folder
    and a link out of the workspace."""
    root = write_files(
        tmp_path / "ws",
        {
            "calc.py": "V = 1\n",
            "a/mod.py": "X = 1\n",
            "sib/s.py": "S = 1\n",
            "tests/test_calc.py": "def test_v():\n    pass\n",
        },
    )
    (tmp_path / "outside").mkdir()
    (root / "loop").symlink_to(".")
    (root / "a" / "b").symlink_to("..")
    (root / "link").symlink_to("sib")
    (root / "ext").symlink_to("../outside")
    return root


@contextlib.asynccontextmanager
async def watching(root: Path, seen: Seen) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.ensure_future(watch_roots([root], seen, stop))
    await asyncio.sleep(0.5)  # the watches are set up
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT)


def test_the_directories_watched_are_real_and_each_once(workspace: Path) -> None:
    expected = {workspace, workspace / "a", workspace / "sib", workspace / "tests"}
    assert watched_directories([workspace]) == {str(path) for path in expected}


async def test_changes_are_reported_by_their_real_paths_never_through_links(
    workspace: Path,
) -> None:
    seen = Seen()
    async with watching(workspace, seen):
        (workspace.parent / "outside" / "o.py").write_text("O = 1\n")
        (workspace / "link" / "s.py").write_text("S = 2\n")  # the file of sib/
        (workspace / "loop" / "loop" / "calc.py").write_text("V = 2\n")
        (workspace / "a" / "b" / "tests" / "test_calc.py").write_text("def test_v(): pass\n")
        expected = [workspace / "sib/s.py", workspace / "calc.py", workspace / "tests/test_calc.py"]
        await seen.wait_for(*expected)
        await asyncio.sleep(0.5)  # anything else would have come by now
    assert seen.paths == set(expected)


async def test_a_new_directory_is_watched_with_what_was_written_before(tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", {"calc.py": "V = 1\n"})
    seen = Seen()
    async with watching(root, seen):
        # As a checkout does: a tree of directories and files at once.
        write_files(root, {"pkg/sub/deep.py": "D = 1\n", "pkg/top.py": "T = 1\n"})
        await seen.wait_for(root / "pkg/sub/deep.py", root / "pkg/top.py")
        # Then written again: now the new directory's own watch reports it.
        seen.paths.clear()
        (root / "pkg" / "sub" / "deep.py").write_text("D = 2\n")
        await seen.wait_for(root / "pkg/sub/deep.py")
        # A directory renamed: its files are reported under the new name.
        os.rename(root / "pkg", root / "package")
        await seen.wait_for(root / "package/sub/deep.py", root / "package/top.py")
        seen.paths.clear()
        (root / "package" / "top.py").write_text("T = 2\n")
        await seen.wait_for(root / "package/top.py")
        # A new symlinked directory is not followed (its loop would be): no restart to see.
        (root / "package" / "again").symlink_to("..")
        (root / "calc.py").write_text("V = 3\n")
        await seen.wait_for(root / "calc.py")
    assert not any("again" in str(path) for path in seen.paths)
