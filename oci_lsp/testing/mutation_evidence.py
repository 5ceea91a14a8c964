"""What small changes to a suspect do to the tests: mutation-based evidence (issue 15).

The spectrum ranking (testing/localize.py) leaves ties and near ties that no record of
executed lines can break: a helper and its only caller, `__eq__` and `__ne__`, an
`__init__` whose wrong value surfaces in the method that raises. Metallaxis and MUSE break
them by running the tests against small changes of each suspect (code/mutants.py): a change
that makes failing tests pass without breaking passing ones is a partial fix, and partial
fixes are found where the fault is far more often than elsewhere.

For one function: its changes on the lines the failing tests ran (most suspicious first),
run in the sandbox against the failing tests that ran it (at most FAILING_TESTS, spread over
them) and the passing tests that ran it (at most PASSING_TESTS), together with the unchanged
module as a control (a failing test that passes unchanged there, being order-dependent or
flaky, is no evidence, nor is a passing test that fails unchanged).

A change scores Ochiai over the tests it moved: `fixed / sqrt(F * (fixed + broke))` (fixed:
failing tests that pass, broke: passing tests that fail), where F is all the run's failing
tests, as in MUSE and Metallaxis: the failing tests that did not run the function count as
not fixed, so a change that fixes the one failing test of ten that ran it is a tenth of the
evidence, not all of it (a caller's change that undoes one test's symptom, against the callee
that all ten ran). That is multiplied by the share of the function's passing tests the change
did not break: Ochiai counts the broken ones, not how many there were to break, and a change
that fixes a failing test while it breaks both passing tests of its function (a condition
negated that turns everything over) is no partial fix, though one that breaks one of twenty
is. A sample of a function's failing tests stands for all of them: `fixed` is scaled by
their number over the sample's. The function scores its best change's. A change that fixes
nothing scores 0, whatever it breaks: only fixes are evidence here, not a change of message.

What runs the changes is the caller's (the sandbox's round, refine/isolation.py, behind
MutantRunner): this module knows nothing of processes.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from oci_lsp.code.mutants import Mutant, module_level, mutants_of

# Changes tried per function: with the control, one sandbox round (isolation._MAX_ROUND);
# fewer when each runs alone.
SWAPPED = 31
ALONE = 8

# The passing tests of a function run against each change: enough to see a change that
# breaks what works, few enough that a round of changes stays a matter of seconds.
PASSING_TESTS = 24

# The failing tests run against each change: a sample of a run's hundreds still tells which
# share of them a change fixes.
FAILING_TESTS = 64


class MutantRunner(Protocol):
    """Runs changed versions of one module against chosen tests, in isolation."""

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
        """Per source (the module's whole text, `qualname` changed in `base`): test id ->
        whether it passed; None when the run did not finish (a timeout, a crash). A test
        without an answer did not pass. `fresh`: each source runs in a collection of its
        own (a nested function, or one that ran while the tests were imported: a change
        swapped in after the collection would come too late)."""
        ...


@dataclass(frozen=True)
class MutationEvidence:
    score: float  # 0..1, the best change's
    line: int  # where that change is (0: no change fixed anything)
    change: str  # "`<` to `<=`"
    fixed: int  # failing tests it made pass
    failing: int  # failing tests run
    broke: int  # passing tests it made fail
    passing: int  # passing tests run
    tried: int  # changes run
    in_all: int = 0  # the run's failing tests (more than `failing`: some did not run it)

    def describe(self) -> str:
        if not self.fixed:
            return f"none of {self.tried} changes made a failing test pass"
        tests = "test" if self.failing == 1 else "tests"
        more = f" ({self.in_all} failing in all)" if self.in_all > self.failing else ""
        return (
            f"{self.change} on line {self.line} made {self.fixed} of {self.failing} failing"
            f" {tests} pass{more}, broke {self.broke} of {self.passing} passing"
        )


async def weigh(
    runner: MutantRunner,
    path: str,
    source: str,
    qualname: str,
    def_line: int,
    lines: Sequence[int],
    failing: Sequence[str],
    passing: Sequence[str],
    *,
    timeout: float = 30.0,
    failing_that_ran: int | None = None,
    run_failing: int | None = None,
    fresh: bool = False,
) -> MutationEvidence | None:
    """Try changes of the function `qualname` at def_line (at spots on `lines`, most
    suspicious first) against its failing tests (a sample of the `failing_that_ran` it, the
    module's docstring) and passing tests, scored over the `run_failing` failing tests of the
    run (default: `failing` is all of them); None when nothing could be tried (no spot to
    change, or the control run did not finish). `fresh`: the function ran in a test module's
    import, so each change runs in a collection of its own, as a nested function's do.

    A module-level function or method is swapped into one collection of its tests, so up to
    SWAPPED changes are tried; a nested function cannot be (the closures its outer function
    made at import stay as they were), so each of its changes runs a collection of its own,
    and only up to ALONE of them are tried."""
    alone = fresh or not module_level(source, def_line)
    limit = ALONE if alone else SWAPPED
    # Each change is parsed to check it: for a module of thousands of lines that is seconds,
    # which the server's event loop must not wait for.
    mutants = await asyncio.to_thread(mutants_of, source, def_line, lines, limit)
    if not mutants or not failing:
        return None
    passing = list(passing)[:PASSING_TESTS]
    outcomes = await runner.run_mutants(
        Path(path),
        source,
        qualname,
        [source, *(m.source for m in mutants)],
        [*failing, *passing],
        timeout,
        fresh=alone,
    )
    control, results = outcomes[0], outcomes[1:]
    if control is None:
        return None
    # Only what the control shows failing can be fixed, and only what it shows passing broken.
    still_failing = [t for t in failing if not control.get(t, False)]
    still_passing = [t for t in passing if control.get(t, False)]
    if not still_failing:
        return None
    stands_for = (failing_that_ran or len(failing)) / len(failing)
    in_all = max(run_failing or 0, len(still_failing))
    return _best(mutants, results, still_failing, still_passing, stands_for, in_all)


def _best(
    mutants: Sequence[Mutant],
    results: Sequence[Mapping[str, bool] | None],
    failing: Sequence[str],
    passing: Sequence[str],
    stands_for: float,
    in_all: int,
) -> MutationEvidence:
    best = MutationEvidence(0.0, 0, "", 0, len(failing), 0, len(passing), len(mutants))
    for mutant, result in zip(mutants, results, strict=True):
        passed = result or {}
        fixed = sum(passed.get(t, False) for t in failing)
        broke = sum(not passed.get(t, False) for t in passing)
        if not fixed:
            continue
        share = min(fixed * stands_for, in_all)  # of the run's failing tests
        kept = 1.0 - broke / len(passing) if passing else 1.0
        score = share / math.sqrt(in_all * (share + broke)) * kept
        if (score, -broke) > (best.score, -best.broke):
            best = MutationEvidence(
                score,
                mutant.line,
                mutant.change,
                fixed,
                len(failing),
                broke,
                len(passing),
                len(mutants),
                in_all,
            )
    return best


def failing_tests(ran: Sequence[str]) -> list[str]:
    """The failing tests to run against a function's changes: those that ran it, at most
    FAILING_TESTS spread evenly over them."""
    if len(ran) <= FAILING_TESTS:
        return list(ran)
    return [ran[i * len(ran) // FAILING_TESTS] for i in range(FAILING_TESTS)]
