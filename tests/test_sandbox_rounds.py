"""Rounds of candidates in the sandbox: the tests are collected once and each candidate is
swapped into the collected session. Whatever path a candidate takes (swapped in, or run alone
because it changed more than the function), its verdict and its failure text must be what a
fresh pytest run of that candidate would give."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import pytest

from oci_lsp.refine.isolation import CandidateOutcome, CandidateRun, Limits, Sandbox
from oci_lsp.testing.pytest_plugin.oci_lsp_swap import Swapper, SwapRefused
from tests.conftest import processes_with, write_files

WAIT = 120.0

SHAPES = """\
import math

LIMIT = 10


def area(r):
    return 0


def double(x):
    return x * 2


class Base:
    def size(self):
        return 1


class Box(Base):
    def __init__(self, w):
        self.w = w

    def size(self):
        return 0
"""

TESTS = """\
import math

import pytest

from shapes import Box, area, double


def test_area():
    assert area(1) == pytest.approx(math.pi)


def test_double():
    assert double(2) == 4


def test_box():
    assert Box(2).size() == 3
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return write_files(tmp_path / "ws", {"shapes.py": SHAPES, "tests/test_shapes.py": TESTS})


def with_function(name: str, new: str, source: str = SHAPES) -> str:
    """SHAPES with the top-level function `name` replaced by `new`."""
    start = source.index(f"def {name}(")
    end = source.index("\n\n\n", start)
    return source[:start] + new.rstrip("\n") + source[end:]


def with_method(new: str) -> str:
    start = SHAPES.index("    def size(self):\n        return 0")
    return SHAPES[:start] + new


async def round_of(
    root: Path, qualname: str, sources: list[str], selection: list[str] | None = None
) -> list[CandidateOutcome]:
    box = Sandbox(root, sys.executable, parallel=2)
    runs = [
        CandidateRun(
            root / "shapes.py", source, selection or ["tests"], stop_at_first_failure=False
        )
        for source in sources
    ]
    try:
        return await asyncio.wait_for(
            box.run_round(runs, (root / "shapes.py").read_text(), qualname), WAIT
        )
    finally:
        await box.close()


def verdicts(outcomes: list[CandidateOutcome]) -> list[str]:
    return [o.verdict for o in outcomes]


def failure_of(outcome: CandidateOutcome, test: str) -> str:
    [report] = [r for r in outcome.reports if r.test_id.endswith(test) and r.failed]
    return report.longrepr or ""


async def test_each_candidate_gets_its_own_verdict_and_failure(workspace: Path) -> None:
    right = "def area(r):\n    return math.pi * r * r\n"
    wrong = "def area(r):\n    # off by a factor\n    return 2 * math.pi * r * r\n"
    # A helper and an import of its own, as replies often bring.
    helped = (
        "import cmath\n\n\n"
        + with_function("area", "def area(r):\n    return _square(r) * cmath.pi.real\n")
        + "\n\ndef _square(r):\n    return r * r\n"
    )
    # It changes a constant of the module too: that cannot be swapped in, it runs alone.
    constant = with_function(
        "area", "def area(r):\n    return math.pi * r * r * (LIMIT - 10)\n"
    ).replace("LIMIT = 10", "LIMIT = 11")
    sources = [with_function("area", right), with_function("area", wrong), helped, constant]
    outcomes = await round_of(workspace, "area", sources, ["tests/test_shapes.py::test_area"])
    assert verdicts(outcomes) == ["passed", "failed", "passed", "passed"]
    assert "Obtained: 6.283185307179586" in failure_of(outcomes[1], "test_area")
    assert (workspace / "shapes.py").read_text() == SHAPES


async def test_the_other_functions_of_the_module_show_their_moved_lines(workspace: Path) -> None:
    # The candidate is longer than the stub: everything below it moves down three lines, and
    # a traceback through double() must still show double()'s own line.
    longer = "def area(r):\n    x = 1\n    y = 2\n    z = 3\n    return double(None)\n"
    sources = [with_function("area", longer), with_function("area", "def area(r):\n    return 1\n")]
    outcomes = await round_of(workspace, "area", sources)
    assert verdicts(outcomes) == ["failed", "failed"]
    text = failure_of(outcomes[0], "test_area")
    assert "TypeError" in text
    assert "return x * 2" in text and "in double" in text
    # The untouched tests of the other functions keep passing around the swapped one.
    passed = {r.test_id.rsplit("::", 1)[1] for r in outcomes[0].reports if r.outcome == "passed"}
    assert passed == {"test_double"}


async def test_methods_with_and_without_super(workspace: Path) -> None:
    plain = "    def size(self):\n        return self.w + 1\n"
    # super() needs a closure cell the old method lacks: that candidate runs alone.
    with_super = "    def size(self):\n        return super().size() + self.w\n"
    wrong = "    def size(self):\n        return self.w\n"
    outcomes = await round_of(
        workspace,
        "Box.size",
        [with_method(plain), with_method(with_super), with_method(wrong)],
        ["tests/test_shapes.py::test_box"],
    )
    assert verdicts(outcomes) == ["passed", "passed", "failed"]
    assert "assert 2 == 3" in failure_of(outcomes[2], "test_box")


PROPERTIES = """\
import functools


class Box:
    def __init__(self, w):
        self.w = w

    @property
    def side(self):
        return self.w - 1

    @side.setter
    def side(self, value):
        self.w = value

    @functools.cached_property
    def area(self):
        return self.w * 3
"""
PROPERTY_TESTS = """\
from shapes import Box


def test_side():
    box = Box(2)
    assert box.side == 2
    box.side = 5
    assert box.side == 5


def test_area():
    assert Box(4).area == 16
"""


async def test_a_property_s_getter_and_a_cached_property_are_swapped_in(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = write_files(
        tmp_path / "ws", {"shapes.py": PROPERTIES, "tests/test_p.py": PROPERTY_TESTS}
    )
    caplog.set_level(logging.DEBUG, logger="oci_lsp.refine.isolation")
    right = "return self.w"
    outcomes = await round_of(
        root,
        "Box.side",
        [PROPERTIES.replace("return self.w - 1", right), PROPERTIES.replace("- 1", "+ 1")],
        ["tests/test_p.py::test_side"],
    )
    assert verdicts(outcomes) == ["passed", "failed"]
    assert "assert 3 == 2" in failure_of(outcomes[1], "test_side")
    squares = PROPERTIES.replace("self.w * 3", "self.w * self.w")
    outcomes = await round_of(root, "Box.area", [squares, PROPERTIES], ["tests/test_p.py"])
    assert [o.passed for o in outcomes] == [1, 0]  # test_area; test_side fails as it is
    assert "runs alone" not in caplog.text  # each forked from the one collection
    # A change of the setter (the second def of the name) is not the getter's: alone.
    setter = PROPERTIES.replace("self.w = value", "self.w = value + 1")
    outcomes = await round_of(root, "Box.side", [setter, PROPERTIES], ["tests/test_p.py"])
    assert [o.passed for o in outcomes] == [0, 0]
    assert "runs alone" in caplog.text


async def test_when_the_module_as_it_is_cannot_be_collected_each_runs_alone(
    tmp_path: Path,
) -> None:
    # The test imports a helper only the candidates define: collecting the module as it is
    # fails, so each candidate is verified on its own, with its own collection.
    root = write_files(
        tmp_path / "ws",
        {
            "shapes.py": SHAPES,
            "tests/test_shapes.py": TESTS.replace("double\n", "double, half\n"),
        },
    )
    good = SHAPES + "\n\ndef half(x):\n    return x / 2\n"
    outcomes = await round_of(root, "area", [good, SHAPES], ["tests/test_shapes.py::test_double"])
    assert verdicts(outcomes) == ["passed", "failed"]
    [error] = outcomes[1].collection_errors
    assert "half" in error.message


async def test_a_vandal_is_stopped_and_its_sibling_still_passes(
    workspace: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    vandal = (
        "def area(r):\n"
        f"    open({str(workspace / 'shapes.py')!r}, 'w').write('gone')\n"
        f"    open({str(outside)!r}, 'w').write('x')\n"
        "    return math.pi * r * r\n"
    )
    right = "def area(r):\n    return math.pi * r * r\n"
    outcomes = await round_of(
        workspace,
        "area",
        [with_function("area", vandal), with_function("area", right)],
        ["tests/test_shapes.py::test_area"],
    )
    assert verdicts(outcomes) == ["failed", "passed"]
    assert "PermissionError" in failure_of(outcomes[0], "test_area")
    assert (workspace / "shapes.py").read_text() == SHAPES
    assert not outside.exists()


async def test_a_hung_candidate_times_out_alone(workspace: Path) -> None:
    # One CPU: the right candidate waits for the hung one's timeout, and its own clock starts
    # only then.
    hung = "def area(r):\n    while True:\n        pass\n"
    right = "def area(r):\n    return math.pi * r * r\n"
    box = Sandbox(workspace, sys.executable, parallel=1)
    runs = [
        CandidateRun(workspace / "shapes.py", with_function("area", s), ["tests/test_shapes.py"])
        for s in (hung, right)
    ]
    try:
        outcomes = await asyncio.wait_for(
            box.run_round(runs, SHAPES, "area", Limits(timeout=3.0)), WAIT
        )
    finally:
        await box.close()
    assert verdicts(outcomes) == ["timeout", "failed"]  # test_box fails for both
    assert outcomes[0].message == "Execution timed out."
    assert [r.outcome for r in outcomes[1].reports][:1] == ["passed"]  # test_area, right


async def test_cancelling_a_round_kills_every_candidate(workspace: Path) -> None:
    marker = "876543.25"  # a sleep no other process runs
    slow = [
        with_function(
            "area",
            "def area(r):\n    import subprocess, time\n"
            f"    subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
            f"    time.sleep(60 + {i})\n    return 0\n",
        )
        for i in range(3)
    ]
    box = Sandbox(workspace, sys.executable, parallel=2)
    cancel = asyncio.Event()
    runs = [
        CandidateRun(workspace / "shapes.py", s, ["tests/test_shapes.py::test_area"]) for s in slow
    ]
    try:
        task = asyncio.ensure_future(box.run_round(runs, SHAPES, "area", cancel=cancel))
        for _ in range(200):  # until both running candidates have started their sleep
            if len(processes_with(marker)) >= 2:
                break
            await asyncio.sleep(0.05)
        cancel.set()
        outcomes = await asyncio.wait_for(task, WAIT)
    finally:
        await box.close()
    assert all(o.verdict == "error" and o.message == "cancelled" for o in outcomes)
    for _ in range(50):
        if not processes_with(marker):
            break
        await asyncio.sleep(0.1)
    assert not processes_with(marker)


BASE = (
    "import os\n\nX = 1\n\n\n@staticmethod\ndef f(a):\n    return a\n\n\ndef g():\n    return 2\n"
)


@pytest.mark.parametrize(
    ("candidate", "why"),
    [
        (BASE.replace("@staticmethod\n", ""), "decorators changed"),
        (BASE.replace("X = 1\n", ""), "changed or went"),
        (BASE.replace("X = 1", "X = 2"), "changed or went"),
        (BASE + "\nprint('hello')\n", "new top-level Expr"),
        (BASE.replace("def f(a)", "def h(a)"), "no top-level definition of f"),
        ("def f(a:\n", "does not parse"),
    ],
)
def test_what_cannot_be_swapped_in_is_refused_with_its_reason(candidate: str, why: str) -> None:
    swapper = Swapper("/nowhere/mod.py", BASE, "f")  # nothing imported it: no module to touch
    swapper.apply(BASE.replace("return a", "return -a"))  # the function alone: fine
    with pytest.raises(SwapRefused, match=why):
        swapper.apply(candidate)


def test_a_nested_function_is_never_swapped() -> None:
    with pytest.raises(SwapRefused, match="module-level"):
        Swapper("/nowhere/mod.py", BASE, "g.<locals>.inner").apply(BASE)
