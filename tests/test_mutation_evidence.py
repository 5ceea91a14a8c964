"""Mutation evidence (issue 15): small changes of the first suspects, run in the real
sandbox against their tests, break the ties spectra cannot.

weigh()'s rules on a scripted runner (a unit test of its logic), then the real path: the
locate run, the sandbox's rounds (refine/mutant_runs.py), and the ranking that results.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from oci_lsp.code.modules import ModuleIndex
from oci_lsp.refine.isolation import Sandbox
from oci_lsp.refine.mutant_runs import SandboxMutants
from oci_lsp.testing import localize
from oci_lsp.testing.failures import FailureLocator, Suspect
from oci_lsp.testing.localize import Recording, locate, rank_recording
from oci_lsp.testing.mutation_evidence import FAILING_TESTS, failing_tests, weigh
from oci_lsp.testing.results import Collected, TestReport
from oci_lsp.testing.runner import RunSpec, run_tests
from tests.conftest import write_files
from tests.test_failures import locator

SPAN = """\
class Range:
    def __init__(self, lo, hi):
        self.lo = lo
        self.hi = hi + 1  # the fault: hi

    def width(self):
        return self.hi - self.lo
"""
TESTS = """\
from span import Range


def test_width():
    assert Range(1, 4).width() == 3


def test_lo():
    assert Range(1, 4).lo == 1


def test_lo_again():
    assert Range(2, 9).lo == 2
"""


class Scripted:
    """Answers per source: which tests pass (a test double of the sandbox)."""

    def __init__(self, answer: Mapping[str, Mapping[str, bool] | None]) -> None:
        self.answer = answer
        self.asked: list[tuple[str, list[str], list[str]]] = []

    async def run_mutants(
        self,
        target: Path,
        base: str,
        qualname: str,
        sources: Sequence[str],
        tests: Sequence[str],
        timeout: float,
        *,
        fresh: bool = False,
    ) -> list[Mapping[str, bool] | None]:
        self.asked.append((qualname, list(sources), list(tests)))
        return [self.answer.get(source, {}) for source in sources]


def _fixed(source: str) -> str:
    """The change that undoes the fault, as code/mutants.py writes it."""
    assert "hi + 1" in source
    return source.replace("hi + 1", "hi + (0)")


async def test_a_change_that_fixes_the_failing_test_and_breaks_nothing_scores_1() -> None:
    runner = Scripted(
        {
            SPAN: {"f": False, "p": True},
            _fixed(SPAN): {"f": True, "p": True},
        }
    )
    evidence = await weigh(runner, "span.py", SPAN, "Range.__init__", 2, [4, 3], ["f"], ["p"])
    assert evidence is not None
    assert (evidence.score, evidence.line, evidence.change) == (1.0, 4, "`1` to `0`")
    assert evidence.describe() == (
        "`1` to `0` on line 4 made 1 of 1 failing test pass, broke 0 of 1 passing"
    )
    qualname, sources, tests = runner.asked[0]
    assert qualname == "Range.__init__" and sources[0] == SPAN  # the control first
    assert tests == ["f", "p"]


async def test_breaking_passing_tests_lowers_the_score_and_fixing_nothing_is_zero() -> None:
    passing = {"p": True, "q": True, "r": True}
    runner = Scripted(
        {SPAN: {"f": False, **passing}, _fixed(SPAN): {**passing, "f": True, "p": False}}
    )
    evidence = await weigh(runner, "span.py", SPAN, "Range.__init__", 2, [4], ["f"], [*passing])
    assert evidence is not None and evidence.broke == 1
    # Ochiai over the tests it moved, times the share of passing tests it kept.
    assert evidence.score == pytest.approx(1 / 2**0.5 * 2 / 3)
    # A change that breaks every passing test of its function is no partial fix.
    everything = Scripted({SPAN: {"f": False, **passing}, _fixed(SPAN): {"f": True}})
    turned = await weigh(everything, "span.py", SPAN, "Range.__init__", 2, [4], ["f"], [*passing])
    assert turned is not None and turned.score == 0 and turned.fixed == 0
    nothing = await weigh(
        Scripted({SPAN: {"f": False}}), "span.py", SPAN, "Range.__init__", 2, [4], ["f"], []
    )
    assert nothing is not None and nothing.score == 0 and nothing.fixed == 0
    assert nothing.describe().startswith("none of ")


async def test_the_control_run_decides_what_counts() -> None:
    # A failing test that passes unchanged (flaky, order-dependent here) is no evidence ...
    flaky = Scripted({SPAN: {"f": True}, _fixed(SPAN): {"f": True}})
    assert await weigh(flaky, "span.py", SPAN, "Range.__init__", 2, [4], ["f"], []) is None
    # ... and a passing test that fails unchanged is not broken by a change.
    shaky = Scripted({SPAN: {"f": False, "p": False}, _fixed(SPAN): {"f": True}})
    evidence = await weigh(shaky, "span.py", SPAN, "Range.__init__", 2, [4], ["f"], ["p"])
    assert evidence is not None and (evidence.score, evidence.passing) == (1.0, 0)
    # A control that did not finish: nothing can be said.
    gone = Scripted({SPAN: None})
    assert await weigh(gone, "span.py", SPAN, "Range.__init__", 2, [4], ["f"], []) is None


async def _locate(root: Path, sandbox: Sandbox | None) -> list[tuple[str, float, str]]:
    collected = Collected()
    await run_tests(RunSpec(root, sys.executable), collected)
    failing = collected.failing
    assert [r.test_id for r in failing] == ["tests/test_span.py::test_width"]
    locator = FailureLocator(root, lambda p: Path(p).read_text(), ModuleIndex(root))
    spec = RunSpec(root, sys.executable, selection=["tests/test_span.py"])

    async def get() -> Sandbox:
        assert sandbox is not None
        return sandbox

    told: list[Sequence[str]] = []
    ranked = await locate(
        spec,
        failing,
        locator,
        mutants=SandboxMutants(get) if sandbox is not None else None,
        mutating=told.append,
    )
    if sandbox is not None:
        assert told == [["Range.width", "Range.__init__"]]
    return [(s.qualname, s.score, s.why) for s in ranked[failing[0].test_id]]


async def test_an_init_fault_the_spectra_put_second_comes_first(tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", {"span.py": SPAN, "tests/test_span.py": TESTS})
    # Spectra alone: width ran only in the failing test, __init__ in every test.
    spectra = await _locate(root, None)
    assert [name for name, _, _ in spectra] == ["Range.width", "Range.__init__"]
    sandbox = Sandbox(root, sys.executable)
    try:
        ranked = await _locate(root, sandbox)
    finally:
        await sandbox.close()
    assert [name for name, _, _ in ranked] == ["Range.__init__", "Range.width"]
    (_, score, why), (_, other, _) = ranked
    # The clean partial fix closes __init__'s distance to 1; width keeps its 1.0 (nothing
    # is lowered) and the tie goes to the change that fixed the test.
    assert score == other == 1.0
    assert "`1` to `0` on line 4 made 1 of 1 failing test pass, broke 0 of 2 passing" in why
    assert (root / "span.py").read_text() == SPAN  # the changes ran in memory only


DECORATED = """\
def plus(f):
    def wrapper(*args):
        return f(*args) + 1  # the fault: f(*args)
    return wrapper


@plus
def double(x):
    return x * 2


@plus
def half(x):
    return x / 2
"""
DECORATED_TESTS = """\
from calc import double, half


def test_double():
    assert double(2) == 4


def test_half_is_positive():
    assert half(4) > 0
"""


async def test_a_nested_function_s_changes_run_in_a_fresh_import(tmp_path: Path) -> None:
    # The wrapper the decorator made at import: swapping `plus` into the imported module
    # would leave it as it was, so its changes run alone (and they do fix the test).
    root = write_files(
        tmp_path / "ws", {"calc.py": DECORATED, "tests/test_calc.py": DECORATED_TESTS}
    )
    collected = Collected()
    await run_tests(RunSpec(root, sys.executable), collected)
    [failing] = collected.failing
    locator = FailureLocator(root, lambda p: Path(p).read_text(), ModuleIndex(root))
    spec = RunSpec(root, sys.executable, selection=["tests/test_calc.py"])
    sandbox = Sandbox(root, sys.executable)

    async def get() -> Sandbox:
        return sandbox

    try:
        spectra = await locate(spec, [failing], locator)
        ranked = await locate(spec, [failing], locator, mutants=SandboxMutants(get))
    finally:
        await sandbox.close()
    # Spectra: double ran only in the failing test, the wrapper in the passing one too.
    assert [s.qualname for s in spectra[failing.test_id]][:2] == ["double", "plus.wrapper"]
    first, second = ranked[failing.test_id][:2]
    assert (first.qualname, second.qualname) == ("plus.wrapper", "double")
    assert "`1` to `0` on line 3 made 1 of 1 failing test pass, broke 0 of 1 passing" in first.why


async def test_the_run_s_other_failing_tests_count_as_not_fixed() -> None:
    # The function ran in 1 of the run's 3 failing tests: fixing it is a third of the fault.
    runner = Scripted({SPAN: {"f": False}, _fixed(SPAN): {"f": True}})
    evidence = await weigh(
        runner, "span.py", SPAN, "Range.__init__", 2, [4], ["f"], [], run_failing=3
    )
    assert evidence is not None and evidence.score == pytest.approx(1 / 3**0.5)
    assert evidence.describe() == (
        "`1` to `0` on line 4 made 1 of 1 failing test pass (3 failing in all),"
        " broke 0 of 0 passing"
    )


async def test_a_sample_of_the_failing_tests_stands_for_all_of_them() -> None:
    ran = [f"t{n:03}" for n in range(200)]
    sample = failing_tests(ran)
    assert len(sample) == FAILING_TESTS and sample[0] == "t000" and sample[-1] > "t190"
    assert failing_tests(ran[:5]) == ran[:5]
    # The change fixes half of the sample: half of the 200, all of the run's.
    half = {t: i % 2 == 0 for i, t in enumerate(sample)}
    runner = Scripted({SPAN: dict.fromkeys(sample, False), _fixed(SPAN): half})
    evidence = await weigh(
        runner,
        "span.py",
        SPAN,
        "Range.__init__",
        2,
        [4],
        sample,
        [],
        failing_that_ran=200,
        run_failing=200,
    )
    assert evidence is not None and evidence.fixed == FAILING_TESTS // 2
    assert evidence.score == pytest.approx(100 / (200 * 100) ** 0.5)


async def located(
    root: Path, test_file: str, failing_count: int
) -> tuple[list[TestReport], dict[str, list[Suspect]]]:
    """The workspace's failing tests (as many as said), and the suspects of the locate run of
    their test file, with a real sandbox trying the changes."""
    collected = Collected()
    await run_tests(RunSpec(root, sys.executable), collected)
    failing = collected.failing
    assert len(failing) == failing_count
    locator = FailureLocator(root, lambda p: Path(p).read_text(), ModuleIndex(root))
    spec = RunSpec(root, sys.executable, selection=[test_file])
    sandbox = Sandbox(root, sys.executable)

    async def get() -> Sandbox:
        return sandbox

    try:
        ranked = await locate(spec, failing, locator, mutants=SandboxMutants(get))
    finally:
        await sandbox.close()
    return failing, ranked


HEADING = """\
def norm(angle):
    return angle % 180  # the fault: 360, which no small change makes


def heading(angle):
    a = norm(angle)
    if a > 180:
        return "west"
    return "east"
"""
HEADING_TESTS = """\
from geo import heading, norm


def test_heading_west():
    assert heading(270) == "west"


def test_norm_200():
    assert norm(200) == 200


def test_norm_300():
    assert norm(300) == 300


def test_norm_90():
    assert norm(90) == 90
"""


async def test_a_caller_s_change_that_undoes_one_symptom_does_not_outrank_the_fault(
    tmp_path: Path,
) -> None:
    """`a > 180` negated makes test_heading_west pass: one of the run's three failing tests.
    Scored over heading's own failing test alone it was a full fix and put heading first for
    that test; over the run's three, norm, which all three ran, stays first."""
    root = write_files(tmp_path / "ws", {"geo.py": HEADING, "tests/test_geo.py": HEADING_TESTS})
    _, ranked = await located(root, "tests/test_geo.py", 3)
    west = ranked["tests/test_geo.py::test_heading_west"]
    assert [s.qualname for s in west] == ["norm", "heading"]
    assert (
        "the condition negated on line 7 made 1 of 1 failing test pass (3 failing in all),"
        " broke 0 of 0 passing"
    ) in west[1].why
    for test_id in ("tests/test_geo.py::test_norm_200", "tests/test_geo.py::test_norm_300"):
        assert [s.qualname for s in ranked[test_id]] == ["norm"]


EIGHT = "".join(f"def f{k}(x):\n    return x < {k}\n\n\n" for k in range(1, 9))


def eight_spectra(path: str) -> dict[str, dict[str, frozenset[int]]]:
    """t_fail ran every f_k's return line; p_j ran those of f_k for k > j."""
    returns = {k: 4 * k - 2 for k in range(1, 9)}
    return {
        "t_fail": {path: frozenset(returns.values())},
        **{f"p{j}": {path: frozenset(returns[k] for k in range(j + 1, 9))} for j in range(1, 8)},
    }


class ByFunction:
    """Fixes the failing test by any change of `fixer`; a change of `breaker` fixes it too
    but breaks every passing test (a test double of the sandbox)."""

    def __init__(
        self, fixer: str, breaker: str, passing: Sequence[str], failing: Sequence[str] = ("t_fail",)
    ) -> None:
        self.fixer, self.breaker, self.passing = fixer, breaker, list(passing)
        self.failing = list(failing)
        self.asked: list[str] = []

    async def run_mutants(
        self,
        target: Path,
        base: str,
        qualname: str,
        sources: Sequence[str],
        tests: Sequence[str],
        timeout: float,
        *,
        fresh: bool = False,
    ) -> list[Mapping[str, bool] | None]:
        self.asked.append(qualname)
        await asyncio.sleep(0.01)  # a round takes time
        control = {**dict.fromkeys(self.failing, False), **dict.fromkeys(self.passing, True)}
        if qualname == self.fixer:
            changed = {**control, **dict.fromkeys(self.failing, True)}
        elif qualname == self.breaker:
            changed = {**dict.fromkeys(self.failing, True), **dict.fromkeys(self.passing, False)}
        else:
            changed = control
        return [control, *([changed] * (len(sources) - 1))]


async def test_suspects_are_tried_past_the_third_until_a_change_convinces(tmp_path: Path) -> None:
    """f1..f8 rank in that order (f_k ran in k-1 passing tests). f5's change fixes the failing
    test but breaks its 4 passing ones (no partial fix), so the search goes on to f7, whose
    change fixes it cleanly; f8 is never tried, and f7 comes first."""
    root = write_files(tmp_path / "ws", {"m.py": EIGHT, "tests/test_m.py": "def t_fail(): pass\n"})
    path = str((root / "m.py").resolve())
    passing = [f"p{j}" for j in range(1, 8)]
    spectra = eight_spectra(path)
    report = TestReport(
        "t_fail", "failed", path=str(root / "tests/test_m.py"), line=1, message="boom"
    )
    recording = Recording([report], spectra, passing, {})
    runner = ByFunction("f7", "f5", passing)
    told: list[Sequence[str]] = []
    ranked = await rank_recording(
        recording, locator(root), "ochiai", 8, runner, lambda names: told.append(list(names))
    )
    assert runner.asked == ["f1", "f2", "f3", "f4", "f5", "f6", "f7"]
    assert told[0] == ["f1", "f2", "f3"] and told[-1] == ["f1", "f2", "f3", "f4", "f5", "f6", "f7"]
    suspects = ranked["t_fail"]
    assert [s.qualname for s in suspects][:3] == ["f7", "f1", "f2"]
    assert "made 1 of 1 failing test pass, broke 0 of 6 passing" in suspects[0].why
    # f5 keeps its spectrum's score: 1 / sqrt(5).
    [f5] = [s for s in suspects if s.qualname == "f5"]
    assert f5.score == pytest.approx(0.447, abs=0.001) and f5.why == (
        "line 18 ran in 1 of 1 failing test, 4 of 7 passing"
    )


async def test_past_the_third_only_while_the_stage_has_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same ranking, with the stage's minute already spent after the first three: f7's
    convincing change is never tried, and the spectra's order stands."""
    monkeypatch.setattr(localize, "STAGE_SECONDS", 0.0)
    root = write_files(tmp_path / "ws", {"m.py": EIGHT, "tests/test_m.py": "def t_fail(): pass\n"})
    path = str((root / "m.py").resolve())
    passing = [f"p{j}" for j in range(1, 8)]
    spectra = eight_spectra(path)
    report = TestReport(
        "t_fail", "failed", path=str(root / "tests/test_m.py"), line=1, message="boom"
    )
    runner = ByFunction("f7", "f5", passing)
    ranked = await rank_recording(
        Recording([report], spectra, passing, {"t_fail": 0.0}), locator(root), "ochiai", 8, runner
    )
    assert runner.asked == ["f1", "f2", "f3"]
    assert [s.qualname for s in ranked["t_fail"]][:3] == ["f1", "f2", "f3"]


CHOICES = """\
class Choices:
    def __init__(self, *names):
        self._db = {}
        self._process(names)

    def _process(self, names):
        for i, name in enumerate(names):
            self._db[name] = i + 1  # the fault: i

    def __getattr__(self, name):
        try:
            return self.__dict__["_db"][name]
        except KeyError:
            raise AttributeError(name) from None
"""
CHOICES_TESTS = """\
import unittest

from choices import Choices


class ChoicesTests(unittest.TestCase):
    STATUS = Choices("DRAFT", "PUBLISHED")  # made at the module's import

    def test_draft(self):
        self.assertEqual(self.STATUS.DRAFT, 0)

    def test_published(self):
        self.assertEqual(self.STATUS.PUBLISHED, 1)

    def test_fresh(self):
        self.assertEqual(Choices("A").A, 0)

    def test_missing(self):
        with self.assertRaises(AttributeError):
            Choices().B
"""


async def test_a_fault_in_what_a_test_module_s_import_ran_is_found(tmp_path: Path) -> None:
    """STATUS is made when the test module is imported: test_draft and test_published run
    only `__getattr__`, which raises. What the import ran counts for the module's tests, and
    the changes of `_process`, which ran there, each run in a collection of their own, where
    `1` to `0` makes all three failing tests pass (swapped in after the collection, it would
    fix test_fresh alone)."""
    root = write_files(tmp_path / "ws", {"choices.py": CHOICES, "tests/test_c.py": CHOICES_TESTS})
    failing, ranked = await located(root, "tests/test_c.py", 3)
    for report in failing:
        first = ranked[report.test_id][0]
        assert first.qualname == "Choices._process", (report.test_id, ranked[report.test_id])
    assert "`1` to `0` on line 8 made 3 of 3 failing tests pass" in first.why


DEFAULTED = """\
class Duration:
    def __init__(self, days=0, seconds=1):  # the fault: seconds=0
        self.days = days
        self.seconds = seconds

    def __neg__(self):
        return Duration(-self.days, -self.seconds)

    def total(self):
        return self.days * 86400 + self.seconds
"""
DEFAULTED_TESTS = """\
from duration import Duration


def test_total():
    assert Duration(1).total() == 86400


def test_neg_default():
    assert (-Duration(1)).total() == -86400


def test_neg():
    assert (-Duration(2, 5)).total() == -172805


def test_explicit():
    assert Duration(0, 3).total() == 3
"""


async def test_a_wrong_default_value_is_found_by_changing_it(tmp_path: Path) -> None:
    """No line of `__init__`'s body is wrong and every test runs it; `86400` to `86399` in
    total() happens to fix both failing tests (and breaks one passing test). Changing the
    default itself fixes them cleanly: `__init__` comes first."""
    root = write_files(
        tmp_path / "ws", {"duration.py": DEFAULTED, "tests/test_duration.py": DEFAULTED_TESTS}
    )
    failing, ranked = await located(root, "tests/test_duration.py", 2)
    for report in failing:
        assert [s.qualname for s in ranked[report.test_id]][:2] == [
            "Duration.__init__",
            "Duration.total",
        ]
    why = ranked[failing[0].test_id][0].why
    assert "`1` to `0` on line 2 made 2 of 2 failing tests pass, broke 0 of 2 passing" in why


async def test_past_the_third_the_suspects_that_ran_in_the_most_failing_tests_go_first(
    tmp_path: Path,
) -> None:
    """Five failing tests. f1..f5 each ran in one of them and in no passing test (0.45); f8
    ran in all five and in 25 passing tests (0.41): last by the spectra. Past the first
    three, f8 is tried first: one fault runs in every test it fails."""
    root = write_files(tmp_path / "ws", {"m.py": EIGHT, "tests/test_m.py": "def t(): pass\n"})
    path = str((root / "m.py").resolve())
    failing = [f"t{n}" for n in range(1, 6)]
    passing = [f"p{j}" for j in range(1, 26)]
    f8 = 4 * 8 - 2
    spectra: dict[str, dict[str, frozenset[int]]] = {
        t: {path: frozenset({4 * (n + 1) - 2, f8})} for n, t in enumerate(failing)
    }
    spectra.update({p: {path: frozenset({f8})} for p in passing})
    reports = [
        TestReport(t, "failed", path=str(root / "tests/test_m.py"), line=1, message="boom")
        for t in failing
    ]
    runner = ByFunction("f8", "none", passing, failing)
    ranked = await rank_recording(
        Recording(reports, spectra, passing, {}), locator(root), "ochiai", 8, runner
    )
    assert runner.asked[3] == "f8"
    assert all(ranked[t][0].qualname == "f8" for t in failing)
