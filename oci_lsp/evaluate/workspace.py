"""The folder the sandbox verifies candidates in: every problem's module and test module, flat.

One folder for a run: the sandbox's worker (one per folder) collects and runs each problem's
test file on its own. A `pytest.ini` pins pytest's rootdir and configuration to the folder,
whatever configuration files lie above it.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from oci_lsp.evaluate.benchmarks import CHECKER_MODULE, Problem

_PYTEST_INI = "[pytest]\n# oci-lsp eval: the benchmark's tests, nothing of the folders above.\n"


def build_workspace(root: Path, problems: Sequence[Problem]) -> None:
    """Write the problems under `root`, replacing whatever was there."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / "pytest.ini").write_text(_PYTEST_INI, encoding="utf-8")
    checker = Path(__file__).with_name("differential.py").read_text(encoding="utf-8")
    (root / f"{CHECKER_MODULE}.py").write_text(checker, encoding="utf-8")
    for problem in problems:
        (root / f"{problem.module}.py").write_text(problem.source, encoding="utf-8")
        (root / f"test_{problem.module}.py").write_text(problem.test, encoding="utf-8")
        for name, text in problem.files.items():
            (root / name).write_text(text, encoding="utf-8")
