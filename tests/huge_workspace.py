"""Generated workspaces with very many tests: thousands failing, or a huge suite that passes (issue 14's huge runs; tests/test_huge_runs_e2e.py and bench/huge_runs.py).

The source module `calc.py` holds FUNCTIONS small functions, each off by one. A failing test
calls one of them (round robin) and asserts the right answer, so each failure shows twice: on
its own line in its test file, and on the function's name in calc.py, where thousands of
failures share a handful of lines. A passing test asserts the (wrong) answer the function
gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FUNCTIONS = 8


@dataclass(frozen=True)
class HugeWorkspace:
    root: Path
    source: Path  # calc.py: every failing test's function under test is here
    failing_files: list[Path]  # the test files of the failing tests, in order
    failing: int
    passing: int

    @property
    def tests(self) -> int:
        return self.failing + self.passing


def _source() -> str:
    parts = ['"""Functions that are all off by one."""\n']
    for k in range(FUNCTIONS):
        parts.append(f"\n\ndef f{k}(x: int) -> int:\n    return x + {k} + 1\n")
    return "".join(parts)


def _tests(name: str, start: int, count: int, expected_off_by: int) -> str:
    """Tests name_start... name_(start+count-1), each asserting f_k(i) == i + k + off_by
    (1 passes: the functions are off by one; 0 fails)."""
    body = [f"from calc import {', '.join(f'f{k}' for k in range(FUNCTIONS))}\n"]
    for i in range(start, start + count):
        k = i % FUNCTIONS
        expected = i + k + expected_off_by
        body.append(f"\n\ndef {name}_{i}() -> None:\n    assert f{k}({i}) == {expected}\n")
    return "".join(body)


def generate(
    root: Path, failing: int, passing: int = 0, per_file: int = 1000, failing_per_file: int = 50
) -> HugeWorkspace:
    """Write the workspace under root: `failing` tests in files of `failing_per_file`
    (tests/test_failing_0000.py, ...), `passing` ones in files of `per_file`.

    Files of a few dozen tests, because pytest's own cost per failure grows with the size of
    its file (it parses the whole module to show each failing statement): 2,000 failing tests
    in one file take plain pytest 410 s on 2 cores, in files of 200 about 30 s.
    """
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "huge"\nversion = "0"\n\n'
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
        encoding="utf-8",
    )
    source = root / "calc.py"
    source.write_text(_source(), encoding="utf-8")
    failing_files = []
    for n, start in enumerate(range(0, failing, failing_per_file)):
        count = min(failing_per_file, failing - start)
        path = root / "tests" / f"test_failing_{n:04d}.py"
        path.write_text(_tests("test_fails", start, count, 0), encoding="utf-8")
        failing_files.append(path.resolve())
    for n, start in enumerate(range(0, passing, per_file)):
        count = min(per_file, passing - start)
        path = root / "tests" / f"test_passing_{n:04d}.py"
        path.write_text(_tests("test_passes", start, count, 1), encoding="utf-8")
    return HugeWorkspace(root.resolve(), source.resolve(), failing_files, failing, passing)
