"""Workspaces that are hard to walk: symlink loops, and a directory nobody may read."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from tests.conftest import write_files

# A command prefix that runs a program unable to read mode-000 directories, even as root.
WITHOUT_DAC = [sys.executable, str(Path(__file__).with_name("without_dac.py"))]

# The real files of loops_workspace with failing tests, and what a run must say it skipped.
FAILING = {"calc.py", "tests/test_calc.py", "a/test_a.py"}
SKIPPED = "skipped 2 symlinked directories that loop: a/b, loop; could not read: secret/"


def loops_workspace(root: Path) -> Path:
    """Five files, two symlink loops (`loop -> .`, `a/b -> ..`) and `secret/` at mode 000.

    calc.add is wrong: tests/test_calc.py::test_add fails (at calc.add too), and so does
    a/test_a.py::test_a; a/helpers.py passes; secret/test_secret.py would fail if read.
    """
    write_files(
        root,
        {
            "calc.py": "def add(a, b):\n    return a - b\n",
            "tests/test_calc.py": """
                from calc import add

                def test_add():
                    assert add(1, 2) == 3
                """,
            "a/helpers.py": "def double(x):\n    return 2 * x\n",
            "a/test_a.py": """
                from helpers import double

                def test_a():
                    assert double(2) == 5

                def test_a_passes():
                    assert double(2) == 4
                """,
            "secret/test_secret.py": "def test_secret():\n    assert False\n",
        },
    )
    (root / "loop").symlink_to(".")
    (root / "a" / "b").symlink_to("..")
    (root / "secret").chmod(0)
    return root


def readable_again(root: Path) -> None:
    """Give the mode-000 directories under root their modes back (so they can be removed)."""
    for directory, names, _ in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            if not os.path.islink(path) and stat.S_IMODE(os.lstat(path).st_mode) == 0:
                os.chmod(path, 0o755)


def python_without_dac(directory: Path) -> str:
    """An interpreter (a script that execs this one) whose processes cannot read mode-000
    directories: what a runner started as `PYTHON -c ...` gets."""
    script = directory / "python-without-dac"
    words = " ".join(f"'{word}'" for word in [*WITHOUT_DAC, sys.executable])
    script.write_text(f'#!/bin/sh\nexec {words} "$@"\n', encoding="utf-8")
    script.chmod(0o755)
    return str(script)
