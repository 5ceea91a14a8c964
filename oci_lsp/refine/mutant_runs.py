"""Changed versions of a suspect, run in the sandbox (issue 15's mutation evidence).

testing/mutation_evidence.py decides which changes to try and what their outcomes mean; this
runs them the way candidates are verified (refine/isolation.py): one round per function, the
tests collected once and each change forked from there with its function swapped in, every
change confined and time-limited like any generated code. A function that ran while the
tests were imported (`fresh`) has each change run alone, in a collection of its own: swapped
in after the collection, it would change nothing of what the import made.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from oci_lsp.refine.isolation import (
    CandidateOutcome,
    CandidateRun,
    Limits,
    Sandbox,
    SandboxError,
)

log = logging.getLogger(__name__)

_ROUND = 32  # the sandbox's largest round (isolation._MAX_ROUND)


class SandboxMutants:
    """testing.mutation_evidence.MutantRunner over a project's sandbox."""

    def __init__(self, sandbox: Callable[[], Awaitable[Sandbox]]) -> None:
        self._sandbox = sandbox

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
        runs = [
            CandidateRun(target, source, tests, stop_at_first_failure=False) for source in sources
        ]
        limits = Limits(timeout=timeout, cpu_seconds=max(1, math.ceil(timeout)))
        outcomes: list[CandidateOutcome] = []
        try:
            sandbox = await self._sandbox()
            if fresh:
                outcomes = list(await asyncio.gather(*(sandbox.run(r, limits) for r in runs)))
            else:
                for start in range(0, len(runs), _ROUND):
                    chunk = runs[start : start + _ROUND]
                    outcomes += await sandbox.run_round(chunk, base, qualname, limits)
        except SandboxError as exc:
            log.warning("changes of %s could not run: %s", qualname, exc)
            return [None] * len(sources)
        return [_passed(outcome) for outcome in outcomes]


def _passed(outcome: CandidateOutcome) -> Mapping[str, bool] | None:
    """Which tests passed; None when the run itself failed (what a timeout or a crash left
    unanswered did not pass: weigh() counts it so)."""
    if outcome.verdict in ("error", "no-tests"):
        return None
    return {report.test_id: report.outcome == "passed" for report in outcome.reports}
