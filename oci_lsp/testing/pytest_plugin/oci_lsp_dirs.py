"""The directories pytest's collection must not walk: symlinks that loop, unreadable ones.

pytest follows symlinked directories. A link back to a directory above it (`loop -> .`,
`a/b -> ..`) makes it collect the same files again under loop/loop/loop/... until the
kernel's limit of 40 links in a path, each copy a test or a collection error of its own;
two such links multiply the paths into a collection that never ends. A directory it may not
read (mode 000) fails collection with a PermissionError reported on the directory. Both are
left out and named, so the run can say what it skipped. Everything else is collected as plain
pytest collects it: a link to a sibling folder or out of the workspace, whatever the user's
own `norecursedirs`, `--ignore` or `pytest_ignore_collect` already left out (this is asked
last, only about what nobody else ignored).

Runs in the workspace's interpreter (stdlib only).
"""

from __future__ import annotations

import os
import stat

# What this process's collection left out, relative to the rootdir ("/"-separated).
loops: list[str] = []
unreadable: list[str] = []


def forget() -> None:
    """A new session: nothing skipped yet."""
    loops.clear()
    unreadable.clear()


def refuse(path: str, rootdir: str) -> bool:
    """True (and remembered) when collection must not go into the directory `path`."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    if stat.S_ISLNK(mode):
        if not os.path.isdir(path):
            return False
        if _loops(path, rootdir):
            loops.append(_name(path, rootdir))
            return True
    elif not stat.S_ISDIR(mode):
        return False
    if not _readable(path):
        unreadable.append(_name(path, rootdir))
        return True
    return False


def _loops(path: str, rootdir: str) -> bool:
    """Whether the symlinked directory `path` leads back to where it was reached from.

    It does when its target holds (or is) one of the directories on the way to it, really
    (each one's real path): then walking it reaches the link again. Checking every directory
    on the way, not only the link's own, also stops a cycle of two links (`a/x -> ../b`,
    `b/y -> ../a`) the second time round.
    """
    real = os.path.realpath(path)
    inside = real.rstrip(os.sep) + os.sep
    root = os.path.abspath(rootdir)
    directory = os.path.dirname(os.path.abspath(path))
    while True:
        above = os.path.realpath(directory)
        if above == real or above.startswith(inside):
            return True
        parent = os.path.dirname(directory)
        # The rootdir's real path stands for every directory above it.
        if directory == root or parent == directory:
            return False
        directory = parent


def _readable(path: str) -> bool:
    try:
        with os.scandir(path):
            return True
    except PermissionError:
        return False
    except OSError:  # gone, or not a directory after all: pytest's own business
        return True


def _name(path: str, rootdir: str) -> str:
    relative = os.path.relpath(os.path.abspath(path), os.path.abspath(rootdir))
    return relative.replace(os.sep, "/")
