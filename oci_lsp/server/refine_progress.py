"""What the user reads while a function is generated or fixed: the refinement loop's events
(rounds, tokens, a preview of the code, each candidate's verdict) as progress messages."""

from __future__ import annotations

from oci_lsp.refine.loop import CandidateRecord, kept_note
from oci_lsp.server.progress import Progress


class RefineProgress:
    """The loop's events as progress messages: round, tokens, a preview of the code."""

    def __init__(self, progress: Progress, max_rounds: int, tests: int) -> None:
        self.progress = progress
        self.max_rounds = max_rounds
        self.tests = tests
        self.round = 1
        self.tokens = 0
        self.preview = ""

    def starting(self) -> str:
        return f"round 1/{self.max_rounds}: generating"

    def event(self, kind: str, number: int, payload: object) -> None:
        if number != self.round:
            self.round, self.preview = number, ""
        head = f"round {number}/{self.max_rounds}"
        if kind == "generating" and isinstance(payload, int):
            first = self.tokens == 0 or payload < self.tokens  # the round's first token
            self.tokens = payload
            preview = f": {self.preview}" if self.preview else ""
            self.progress.report(f"{head}: generating, {payload} tokens{preview}", stage=first)
        elif kind == "verifying":
            self.progress.report(
                f"{head}: verifying {payload} candidate(s) against {self.tests} test(s)",
                stage=True,
            )
        elif kind == "verified" and isinstance(payload, list):
            self.progress.report(f"{head}: " + "; ".join(map(_verdict, payload)), stage=True)
        elif kind == "feedback" and isinstance(payload, str):
            last = [line for line in payload.strip().splitlines() if line.strip()]
            self.progress.report(
                f"{head}: failed: {last[-1][:80] if last else 'no detail'}", stage=True
            )

    def text(self, index: int, text: str) -> None:
        if index != 0:
            return
        lines = [line for line in (self.preview + text).splitlines() if line.strip()]
        self.preview = (lines[-1].strip() if lines else "")[:60]


def _verdict(candidate: CandidateRecord) -> str:
    """One candidate's result, as a progress message says it."""
    number = f"candidate {candidate.index + 1}"
    outcome, check = candidate.outcome, candidate.check
    if check is not None and not check.passed:  # a tool still reports something (issue 16)
        left = f"{check.remaining} finding(s) left" if check.remaining else "not clean"
        return f"{number} failed the check ({left})"
    if outcome is None and check is not None and candidate.source is not None:
        return f"{number} passed the check{kept_note(candidate.kept)}"
    if outcome is None:  # no usable code, or refused by the guard of the original's lines
        return f"{number}: {candidate.error or 'no code'}"
    if outcome.verdict == "passed":
        # What the guard put back is part of what will be applied: say it.
        return f"{number} passed {outcome.passed} test(s){kept_note(candidate.kept)}"
    failure = outcome.first_failure
    which = failure.test_id.rpartition("::")[2] if failure is not None else outcome.verdict
    return f"{number} failed ({which})"
