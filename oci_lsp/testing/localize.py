"""Which function the fault is in, from what the tests executed (issue 15).

Today's rule (testing/failures.py) names the deepest traceback frame, or the function called
in the failing assert. It blames the wrong function whenever the fault never shows in a
traceback: a property or helper that returns a wrong value to a caller, a constant computed
before the assert, an `__init__` whose mistake surfaces in a method. Here the functions are
ranked by spectrum-based fault localization instead, the family FauxPy found best on real
Python bugs:

- A test's spectrum is the set of lines of the workspace's own code it executed (recorded
  by the plugin in the *locate run*, RunSpec.record, memo caches cleared before each test).
  What its test module's own top level ran at import (a class body's `STATUS = Choices(...)`)
  is not in it, since the module's passing tests would share it whether they use it or not;
  it makes a function a suspect of the module's failing tests, and its small changes are
  run against them (`imports`, `imported_by`). A line that runs in every failing test
  and in few passing ones is suspicious: Ochiai, ef / sqrt(F * (ef + ep)) (ef, ep: failing and
  passing tests that ran it; F: failing tests), or DStar (* = 2), ef² / (ep + F - ef), shown
  as d / (d + 1) to read on the same 0..1 scale. Lines, not functions: a mutated branch runs
  only in the failing tests while the rest of its function, and its callers, run in passing
  tests too, so a function's score is the best of its lines'.
- The traceback still counts, a little: the function whose frame raised gets a share of the
  distance to 1 (EVIDENCE_WEIGHT) for the failing tests in which it raised. The other frames
  of the failing chain and the function called in the failing assert get nothing in the
  score: by construction they are the callers of a fault that hides in what they call (a
  property returning None, a helper's wrong value), and on the corpus of issue 15 that
  evidence put the caller above the fault more often than it helped (bench/RESULTS.md). A
  doctest's documented function is no exception: its fault is as often in a helper or in the
  wrapper a decorator factory returns.
- Ties (the tests cannot tell two functions apart: a helper called only by its caller) are
  broken by, in order: fewer passing tests executing the function at all (the narrower one);
  deeper in the failing call chain (the callee before its caller: the frame that raised
  before the frames above it); more evidence; not the function the failing assert called
  (it is the caller of whatever else tied with it); then the dotted name and the line, so a
  ranking never changes between runs.
- All failing tests of a run make one ranking (several failing tests of one fault point at it
  together); each failing test's suspects are the ranked functions it executed.

Lines map to the innermost def that holds them (code/functions.line_owners): nested
functions, methods, properties, `__init__` and dunders are functions of their own; module
and class-body lines belong to none. Test files, test helpers and code outside the workspace
are never suspects.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from oci_lsp.code.functions import FunctionLocation, enclosing_function, line_owners
from oci_lsp.testing.failures import FailureLocator, Span, Suspect
from oci_lsp.testing.mutation_evidence import (
    PASSING_TESTS,
    MutantRunner,
    MutationEvidence,
    failing_tests,
    weigh,
)
from oci_lsp.testing.results import Collected, Spectrum, TestReport
from oci_lsp.testing.runner import PytestLauncher, RunResult, RunSpec, run_tests

log = logging.getLogger(__name__)

Formula = Literal["ochiai", "dstar"]

# Beyond this many failing tests the fault is hardly one (an import broke, the environment is
# wrong), and recording their files again would cost a second whole run: today's rule stays.
# One fault can fail hundreds, though: a base class's `__init__` (cachetools' Cache, 352 of
# its tests) or a helper every formatter calls (humanize's _date_and_delta, 265).
LOCATE_MAX_FAILING = 1000


def worth_locating(failing: Sequence[TestReport]) -> bool:
    """Whether a locate run is made for these failing tests (the session's and --fix's)."""
    return 0 < len(failing) <= LOCATE_MAX_FAILING


# The share of the distance to 1 that a function closes when it raised in every failing test;
# small, so that the tests' spectra decide unless they nearly tie.
EVIDENCE_WEIGHT = 0.2

# A function of the workspace: its file (real path) and the line of its `def`.
FunctionKey = tuple[str, int]


def ochiai(ef: int, ep: int, failing: int) -> float:
    return ef / math.sqrt(failing * (ef + ep)) if ef else 0.0


def dstar(ef: int, ep: int, failing: int) -> float:
    """DStar with * = 2, d / (d + 1): the order of d on 0..1 (d is infinite at ep = 0 and
    ef = F, the most suspicious a line can be)."""
    if not ef:
        return 0.0
    rest = ep + failing - ef
    if rest == 0:
        return 1.0
    d = ef * ef / rest
    return d / (d + 1)


FORMULAS: Mapping[str, Callable[[int, int, int], float]] = {"ochiai": ochiai, "dstar": dstar}


@dataclass
class _Scored:
    """What is known of one function while ranking."""

    path: str
    location: FunctionLocation
    failing: set[str] = field(default_factory=set)  # failing tests that executed it
    passing: int = 0  # passing tests that executed any of its lines
    passing_tests: list[str] = field(default_factory=list)  # which (in spectra order)
    lines: list[tuple[float, int]] = field(default_factory=list)  # (score, line) it ran failing
    spectrum: float = 0.0  # the best of its lines' scores
    best_line: int = 0
    best_counts: tuple[int, int] = (0, 0)  # (ef, ep) of that line
    evidence: float = 0.0  # summed over the failing tests
    depth: int = 0  # deepest place in a failing chain (1: the test's callee); 0: none
    raised: bool = False  # the frame that raised, in some failing test
    in_chain: bool = False
    called: bool = False  # called in a failing assert
    mutation: MutationEvidence | None = None  # what changing it did (testing/mutation_evidence)
    score: float = 0.0

    def order(self) -> tuple[float, float, int, int, float, bool, str, int]:
        return (
            -round(self.score, 9),
            -(self.mutation.score if self.mutation is not None else 0.0),
            self.passing,
            -self.depth,
            -self.evidence,
            self.called,
            self.location.qualname,
            self.location.def_line,
        )


def rank(
    failing: Sequence[TestReport],
    spectra: Mapping[str, Spectrum],
    passed: Collection[str],
    locator: FailureLocator,
    formula: Formula = "ochiai",
    limit: int = 5,
) -> dict[str, list[Suspect]]:
    """Failing test id -> its suspects, most suspicious first: the functions it executed, in
    the order of one ranking over all the failing tests (the module's docstring). A failing
    test without a spectrum (it timed out, the recording missed it) has none."""
    return _score(failing, spectra, passed, locator, formula).suspects(locator, limit)


@dataclass
class _Ranking:
    functions: dict[FunctionKey, _Scored] = field(default_factory=dict)
    executed: dict[str, set[FunctionKey]] = field(default_factory=dict)  # by failing test
    # What the failing test's module ran at its import, and the other way round.
    imports: dict[str, set[FunctionKey]] = field(default_factory=dict)
    imported_by: dict[FunctionKey, set[str]] = field(default_factory=dict)
    recorded: list[TestReport] = field(default_factory=list)  # the failing tests ranked
    passing: int = 0  # passing tests recorded

    def order(self) -> list[FunctionKey]:
        return [key for key, _ in sorted(self.functions.items(), key=lambda i: i[1].order())]

    def suspects(self, locator: FailureLocator, limit: int) -> dict[str, list[Suspect]]:
        place = {key: i for i, key in enumerate(self.order())}
        suspects: dict[FunctionKey, Suspect] = {}
        result: dict[str, list[Suspect]] = {}
        failing = len(self.recorded)
        for report in self.recorded:
            ran = self.executed[report.test_id] | self.imports.get(report.test_id, set())
            mine = sorted(ran, key=place.__getitem__)[:limit]
            if not mine:
                continue
            chosen = []
            for key in mine:
                if key not in suspects:
                    scored = self.functions[key]
                    suspects[key] = _suspect(scored, locator, failing, self.passing)
                chosen.append(suspects[key])
            result[report.test_id] = chosen
        return result


def _score(
    failing: Sequence[TestReport],
    spectra: Mapping[str, Spectrum],
    passed: Collection[str],
    locator: FailureLocator,
    formula: Formula,
    imported: Mapping[str, Spectrum] | None = None,
) -> _Ranking:
    """The spectra's ranking; `imported`: what each failing test's module ran at import."""
    score_line = FORMULAS[formula]
    recorded = [r for r in failing if r.test_id in spectra]
    passing = [(t, spectra[t]) for t in passed if t in spectra]
    total_failing = len(recorded)
    ranking = _Ranking(recorded=recorded, passing=len(passing))
    if not total_failing:
        return ranking
    owners = _Owners(locator)

    # The lines the failing tests ran, and which functions they are in.
    line_failing: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    functions = ranking.functions
    for report in recorded:
        ran: set[FunctionKey] = set()
        for path, lines in spectra[report.test_id].items():
            of_line = owners.of(path, report)
            if not of_line:
                continue
            counts = line_failing[path]
            for line in lines:
                location = of_line.get(line)
                if location is None:
                    continue
                counts[line] += 1
                key = (path, location.def_line)
                ran.add(key)
                if key not in functions:
                    functions[key] = _Scored(path, location)
        for key in ran:
            functions[key].failing.add(report.test_id)
        ranking.executed[report.test_id] = ran

    # How many passing tests ran each of those lines (no other line can be a suspect).
    line_passing: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for test_id, spectrum in passing:
        touched: set[FunctionKey] = set()
        for path, lines in spectrum.items():
            if path not in line_failing:
                continue
            counts = line_failing[path]
            of_line = owners.of(path, None)
            passed_lines = line_passing[path]
            for line in lines:
                if line in counts:
                    passed_lines[line] += 1
                    touched.add((path, of_line[line].def_line))
                else:
                    location = of_line.get(line)  # an unsuspected line of a suspect
                    if location is not None and (path, location.def_line) in functions:
                        touched.add((path, location.def_line))
        for key in touched:
            functions[key].passing += 1
            functions[key].passing_tests.append(test_id)

    for path, counts in line_failing.items():
        of_line = owners.of(path, None)
        passed_lines = line_passing.get(path, {})
        for line, ef in counts.items():
            ep = passed_lines.get(line, 0)
            scored = functions[(path, of_line[line].def_line)]
            value = score_line(ef, ep, total_failing)
            scored.lines.append((value, line))
            better = (value, -ep, -line) > (
                scored.spectrum,
                -scored.best_counts[1],
                -scored.best_line,
            )
            if better or not scored.best_line:
                scored.spectrum, scored.best_line, scored.best_counts = value, line, (ef, ep)

    for report in recorded:
        for path, lines in (imported or {}).get(report.test_id, {}).items():
            of_line = owners.of(path, report)
            for line in lines:
                location = of_line.get(line)
                owner = (path, location.def_line) if location is not None else None
                if owner is not None and owner in functions:
                    ranking.imports.setdefault(report.test_id, set()).add(owner)
                    ranking.imported_by.setdefault(owner, set()).add(report.test_id)

    for report in recorded:
        _weigh_evidence(report, functions, owners)
    for scored in functions.values():
        evidence = min(scored.evidence / total_failing, 1.0)
        scored.score = scored.spectrum + (1.0 - scored.spectrum) * EVIDENCE_WEIGHT * evidence
    return ranking


async def locate(
    spec: RunSpec,
    failing: Sequence[TestReport],
    locator: FailureLocator,
    formula: Formula = "ochiai",
    launcher: PytestLauncher | None = None,
    *,
    limit: int = 5,
    collected: Callable[[int], None] | None = None,
    mutants: MutantRunner | None = None,
    mutating: Callable[[Sequence[str]], None] | None = None,
) -> dict[str, list[Suspect]]:
    """Run spec's tests again with recording on (the locate run), and rank.

    spec's selection is the test files of the failing tests, so their passing tests run too.
    `failing`: the failing tests of the run being explained; only those that fail again are
    ranked (a test that passes this time tells nothing of the fault it showed). `collected`
    hears how many tests the run will record. With `mutants`, the first MUTATED suspects
    are then changed a little and their tests run again (testing/mutation_evidence.py), and
    `mutating` hears which functions before that starts. Returns {} when the run does not
    complete.
    """
    recording = await record(spec, failing, launcher, collected)
    if recording is None:
        return {}
    return await rank_recording(
        recording, locator, formula, limit, mutants, mutating, timeout=spec.timeout
    )


@dataclass
class Recording:
    """What the locate run saw."""

    failing: list[TestReport]  # the failing tests being explained that failed again
    spectra: Mapping[str, Spectrum]
    passed: list[str]
    seconds: Mapping[str, float]  # each test's duration
    # By failing test: what its test module's own top level ran at import.
    imported: Mapping[str, Spectrum] = field(default_factory=dict)


async def record(
    spec: RunSpec,
    failing: Sequence[TestReport],
    launcher: PytestLauncher | None = None,
    collected: Callable[[int], None] | None = None,
) -> Recording | None:
    """The locate run of `locate`; None when it does not complete."""
    listener = _Recording(collected)
    result: RunResult = await run_tests(dataclasses.replace(spec, record=True), listener, launcher)
    if result.status != "completed":
        return None
    wanted = {r.test_id for r in failing}
    return Recording(
        [r for r in listener.reports if r.failed and r.test_id in wanted],
        listener.spectra,
        # Other failing tests of the run (order-dependent ones) are neither failing nor
        # passing evidence here; the passing ones are.
        [r.test_id for r in listener.reports if r.outcome == "passed"],
        {r.test_id: r.duration for r in listener.reports},
        _imports(listener, wanted),
    )


def _imports(listener: Collected, wanted: Collection[str]) -> dict[str, Spectrum]:
    """What each failing test's module ran at its import (a doctest's module is the
    workspace's own: its import runs for no test)."""
    found: dict[str, Spectrum] = {}
    for report in listener.reports:
        if report.test_id in wanted and report.path is not None and not report.doctest:
            spectrum = listener.module_spectra.get(os.path.realpath(report.path))
            if spectrum:
                found[report.test_id] = spectrum
    return found


async def rank_recording(
    recording: Recording,
    locator: FailureLocator,
    formula: Formula = "ochiai",
    limit: int = 5,
    mutants: MutantRunner | None = None,
    mutating: Callable[[Sequence[str]], None] | None = None,
    *,
    timeout: float = 300.0,
) -> dict[str, list[Suspect]]:
    """The ranking of `locate` from its recording (`timeout`: a run's, the most one change's
    run may take)."""
    # Hundreds of failing tests' spectra take a while to rank: not on the server's event loop.
    ranking = await asyncio.to_thread(
        _score,
        recording.failing,
        recording.spectra,
        recording.passed,
        locator,
        formula,
        recording.imported,
    )
    if mutants is not None and ranking.functions:
        await _weigh_mutants(ranking, locator, mutants, recording.seconds, timeout, mutating)
    return await asyncio.to_thread(ranking.suspects, locator, limit)


# How many of the first suspects are changed to see what the changes do to their tests:
# the spectra's top three hold the fault 92% of the time on the corpus (bench/RESULTS.md),
# so three; while no change of theirs is a convincing fix (a mutation score of CONVINCING: a
# change that breaks nothing and fixes a quarter of the run's failing tests), more (those
# that ran in the most failing tests first, `_to_change`), up to MUTATED_MAX, while the stage
# has taken less than STAGE_SECONDS or twice the recorded tests' time (a nested function's
# changes each run a collection: minutes).
MUTATED = 3
MUTATED_MAX = 8
CONVINCING = 0.5
STAGE_SECONDS = 60.0


async def _weigh_mutants(
    ranking: _Ranking,
    locator: FailureLocator,
    runner: MutantRunner,
    seconds: Mapping[str, float],
    timeout: float,
    mutating: Callable[[Sequence[str]], None] | None,
) -> None:
    """Mutation evidence for the first MUTATED suspects (more while none of their changes
    convinces); the ranking is made again with it.

    A partial fix closes its share (the mutation score) of its function's distance to 1, as
    a traceback's evidence does, and a tie goes to the higher mutation score: a function a
    clean partial fix names reaches 1 and goes first. Nothing is lowered: a function whose
    changes fixed nothing keeps its spectrum's score, since most faults (a wrong return
    value, a missing statement) have no small change that undoes them, and on the corpus
    lowering such a function below a caller some change happened to help cost more than it
    gained (bench/RESULTS.md)."""
    order = _to_change(ranking)
    budget_s = max(STAGE_SECONDS, 2 * sum(seconds.values()))
    began = time.monotonic()
    if mutating is not None:
        mutating([s.location.qualname for s in order[:MUTATED]])
    chosen: list[_Scored] = []
    for scored in order:
        if len(chosen) >= MUTATED:
            best = max((s.mutation.score for s in chosen if s.mutation), default=0.0)
            if best >= CONVINCING or time.monotonic() - began > budget_s:
                break
            if mutating is not None:  # the next suspect too
                mutating([s.location.qualname for s in [*chosen, scored]])
        chosen.append(scored)
        source = locator.read(scored.path)
        if source is None:
            continue
        lines = [line for _, line in sorted(scored.lines, key=lambda v: (-v[0], v[1]))]
        key = (scored.path, scored.location.def_line)
        # The failing tests it ran in, and those whose module's import ran it: a change
        # reaches the latter only in a collection of its own (`fresh`).
        through_import = ranking.imported_by.get(key, set()) - scored.failing
        ran = sorted(scored.failing | through_import)
        failing = failing_tests(ran)
        passing = sorted(scored.passing_tests)[:PASSING_TESTS]
        # Each change's run: its tests' time in the locate run (recorded, so slower than
        # they run here), with room for a slower change; a change that loops is no evidence
        # however long it is given, and never more than a run may take.
        spent = sum(seconds.get(t, 0.0) for t in (*failing, *passing))
        budget = min(timeout, max(5.0, 3 * spent + 3))
        try:
            evidence = await weigh(
                runner,
                scored.path,
                source,
                scored.location.qualname,
                scored.location.def_line,
                lines,
                failing,
                passing,
                timeout=budget,
                failing_that_ran=len(ran),
                run_failing=len(ranking.recorded),
                fresh=bool(through_import),
            )
        except Exception:  # the spectra's ranking stands: nothing here may cost it
            log.exception("changes of %s could not be tried", scored.location.qualname)
            continue
        scored.mutation = evidence
    combine(chosen)


def _to_change(ranking: _Ranking) -> list[_Scored]:
    """The suspects whose changes are tried, in order: the first MUTATED of the ranking, then
    those that ran in the most failing tests (one fault is run by every test it fails: a
    function that ran in one failing test of five explains one at most, however clean its
    spectrum), up to MUTATED_MAX."""
    ranked = [ranking.functions[key] for key in ranking.order()]
    first, rest = ranked[:MUTATED], ranked[MUTATED:]

    def reach(scored: _Scored) -> int:
        key = (scored.path, scored.location.def_line)
        return len(scored.failing | ranking.imported_by.get(key, set()))

    rest.sort(key=lambda scored: -reach(scored))  # stable: ties keep the ranking's order
    return [*first, *rest][:MUTATED_MAX]


def combine(tried: Sequence[_Scored]) -> None:
    """The scores of the suspects whose changes were tried (the rule of _weigh_mutants)."""
    for scored in tried:
        if scored.mutation is not None and scored.mutation.fixed:
            scored.score += (1.0 - scored.score) * scored.mutation.score


class _Recording(Collected):
    def __init__(self, on_collected: Callable[[int], None] | None) -> None:
        super().__init__()
        self._on_collected = on_collected

    def collected(self, count: int) -> None:
        if self._on_collected is not None:
            self._on_collected(count)


class _Owners:
    """Which function holds each line of a file, for the files that may hold suspects."""

    def __init__(self, locator: FailureLocator) -> None:
        self.locator = locator
        self._known: dict[str, Mapping[int, FunctionLocation]] = {}
        self._frames: dict[tuple[str, int, str], FunctionKey | None] = {}

    def of(self, path: str, report: TestReport | None) -> Mapping[int, FunctionLocation]:
        known = self._known.get(path)
        if known is None:
            known = {}
            if self.locator.in_workspace(path) and not self.locator.is_test_path(path):
                source = self.locator.read(path)
                if source is not None:
                    known = line_owners(source)
            self._known[path] = known
        if report is None or report.doctest or report.path is None:
            return known  # a doctest's file is the module it tests
        if _same_file(path, report.path):
            return {}  # the test's own file, wherever it is
        return known

    def frame_function(self, path: str, line: int, name: str) -> FunctionKey | None:
        """The function a traceback frame ran in (a recursion repeats the same frames)."""
        key = (path, line, name)
        if key not in self._frames:
            source = self.locator.read(path)
            found = enclosing_function(source, line, name) if source else None
            self._frames[key] = (path, found.def_line) if found is not None else None
        return self._frames[key]


def _same_file(a: str, b: str) -> bool:
    return a == b or os.path.realpath(a) == os.path.realpath(b)


def _weigh_evidence(
    report: TestReport,
    functions: Mapping[FunctionKey, _Scored],
    owners: _Owners,
) -> None:
    """What the failing test's traceback and assert say of the functions it ran."""
    chain: list[FunctionKey] = []
    for frame in report.frames:
        if frame.function == "<module>":
            continue
        path = os.path.realpath(frame.path)
        if not owners.of(path, report):
            continue
        key = owners.frame_function(path, frame.line, frame.function)
        if key is not None:
            if key in chain:  # a recursion: its deepest place counts
                chain.remove(key)
            chain.append(key)
    called: FunctionKey | None = None
    if report.called is not None:
        path = os.path.realpath(report.called.path)
        of_line = owners.of(path, report)
        location = of_line.get(report.called.line)
        if location is None:  # `line` is the first decorator's; the def is a little lower
            location = next(
                (loc for loc in of_line.values() if loc.qualname == report.called.qualname), None
            )
        if location is not None:
            called = (path, location.def_line)
    for depth, key in enumerate(chain, start=1):
        scored = functions.get(key)
        if scored is None:
            continue
        scored.in_chain = True
        scored.depth = max(scored.depth, depth)
        if key == chain[-1]:
            scored.raised = True
            scored.evidence += 1.0
    if called is not None and called not in chain and called in functions:
        functions[called].called = True  # a doctest's: the function it documents


def _suspect(scored: _Scored, locator: FailureLocator, failing: int, passing: int) -> Suspect:
    location = scored.location
    module = locator.index.module_for_path(Path(scored.path)) or Path(scored.path).stem
    span = Span(
        scored.path,
        location.def_line - 1,
        location.name_col,
        location.name_col + len(location.name),
    )
    ef, ep = scored.best_counts
    tests = "test" if failing == 1 else "tests"
    why = f"line {scored.best_line} ran in {ef} of {failing} failing {tests}"
    why += f", {ep} of {passing} passing"
    if scored.raised:
        why += "; raised the error"
    elif scored.in_chain:
        why += "; in the failing traceback"
    elif scored.called:
        why += "; called in the failing assert"
    if scored.mutation is not None and scored.mutation.fixed:
        why += f"; {scored.mutation.describe()}"
    return Suspect(
        scored.path,
        location.qualname,
        f"{module}.{location.qualname}",
        span,
        round(scored.score, 3),
        why,
    )
