"""A generated Python project with a cheap unit-test suite, for the tests-on-save benchmark.

N tests over about N/20 test files, one per source module (`pkg/mod_XXX.py`, tested by
`tests/test_mod_XXX.py`). Each test file tests mostly its own module (one test in a few uses
the previous module too). The last module is the "target": only its own test file imports it,
and that file holds about 1% of the tests, so a save of it affects 1% of the suite. It sorts
last, so a plain pytest run reaches it last: only running affected tests first shows its
failure early. `absval` is wrong for negative numbers in every module, and about 5% of the
tests (one in twenty, at least one of the target's) call it with one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FAIL_EVERY = 20  # one failing test in twenty: ~5%

MODULE = '''"""Generated module {i}."""


def add(a: int, b: int) -> int:
    return a + b


def scale(x: int) -> int:
    return x * {k}


def clamp(x: int, lo: int, hi: int) -> int:
    return max(lo, min(x, hi))


def absval(x: int) -> int:
    return x  # bug: negative numbers are returned unchanged


def poly(x: int) -> int:
    return x * x + {k} * x + 1
'''


@dataclass(frozen=True)
class Workspace:
    root: Path
    tests: int
    failing: int
    modules: int
    target_module: Path  # the module covered by ~1% of the tests
    target_tests: Path  # its test file
    target_count: int  # tests in that file

    @property
    def passing(self) -> int:
        return self.tests - self.failing

    @property
    def target_share(self) -> float:
        return self.target_count / self.tests


def _factor(i: int) -> int:
    return i % 7 + 2


def _test(module: int, j: int, fails: bool, has_prev: bool) -> str:
    k = _factor(module)
    v = j + 1
    if fails:
        return f"def test_absval_negative_{j}() -> None:\n    assert absval(-{v}) == {v}\n"
    kind = j % (6 if has_prev else 5)
    if kind == 0:
        return f"def test_add_{j}() -> None:\n    assert add({v}, {2 * v}) == {3 * v}\n"
    if kind == 1:
        return f"def test_scale_{j}() -> None:\n    assert scale({v}) == {v * k}\n"
    if kind == 2:
        expected = max(3, min(v, 10))
        return f"def test_clamp_{j}() -> None:\n    assert clamp({v}, 3, 10) == {expected}\n"
    if kind == 3:
        return f"def test_poly_{j}() -> None:\n    assert poly({v}) == {v * v + k * v + 1}\n"
    if kind == 4:
        return f"def test_absval_{j}() -> None:\n    assert absval({v}) == {v}\n"
    k_prev = _factor(module - 1)
    return f"def test_prev_scale_{j}() -> None:\n    assert prev.scale({v}) == {v * k_prev}\n"


def generate(root: Path, tests: int) -> Workspace:
    """Write the project under `root` (which must not exist yet)."""
    modules = max(2, tests // 20)
    width = len(str(modules - 1))
    target = modules - 1
    target_count = max(2, round(tests / 100))
    others = tests - target_count
    per_file = [
        others // (modules - 1) + (1 if i < others % (modules - 1) else 0)
        for i in range(modules - 1)
    ] + [target_count]

    (root / "pkg").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pkg" / "__init__.py").write_text("", encoding="utf-8")
    (root / "pyproject.toml").write_text(
        '[project]\nname = "generated"\nversion = "0"\n\n'
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
        encoding="utf-8",
    )
    failing = 0
    counter = 0  # over the non-target tests, so failures spread evenly
    for i in range(modules):
        name = f"mod_{i:0{width}d}"
        (root / "pkg" / f"{name}.py").write_text(MODULE.format(i=i, k=_factor(i)), encoding="utf-8")
        has_prev = 0 < i < target  # the target's tests import nothing else, nor does any other
        header = f'"""Tests of pkg.{name}."""\n\nfrom __future__ import annotations\n\n'
        if has_prev:
            header += f"from pkg import mod_{i - 1:0{width}d} as prev\n"
        header += f"from pkg.{name} import absval, add, clamp, poly, scale\n"
        bodies = []
        for j in range(per_file[i]):
            if i == target:
                fails = j == 1
            else:
                fails = counter % FAIL_EVERY == FAIL_EVERY // 2
                counter += 1
            failing += fails
            bodies.append(_test(i, j, fails, has_prev))
        text = header + "".join("\n\n" + body for body in bodies)
        (root / "tests" / f"test_{name}.py").write_text(text, encoding="utf-8")
    last = f"mod_{target:0{width}d}"
    return Workspace(
        root=root,
        tests=tests,
        failing=failing,
        modules=modules,
        target_module=root / "pkg" / f"{last}.py",
        target_tests=root / "tests" / f"test_{last}.py",
        target_count=target_count,
    )
