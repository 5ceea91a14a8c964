"""The execution-feedback loop: generate candidates, verify them in isolation, feed back, refine.

One call refines one function. Each round asks the backend for `refine.candidates` answers
(the first greedy, the others sampled), turns each into a new module text, and runs the
function's tests on every candidate in parallel in the sandbox, the failing tests first. The
first candidate (in the backend's order) that passes every test wins. Otherwise the best one
(most tests passed, then the earliest) goes back into the conversation with its real failure
as the next `Execution result:` turn, up to `refine.maxRounds`.

The conversation of a function outlives the call, so a second request continues it; it is
dropped when the function's tests pass or when its source changes by hand. Nothing here knows
LSP: the code actions and `oci-lsp --fix` both call `Refiner.refine`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Protocol

from oci_lsp.code.broken import function_span, stand_in
from oci_lsp.code.functions import find_function, parse, split_lines
from oci_lsp.config import RefineSettings, Settings
from oci_lsp.engine.backend import Backend, Candidate, ChatMessage, GenerationOptions, Priority
from oci_lsp.refine.extract import (
    ExtractionError,
    LostLinesError,
    apply_candidate,
    extract_candidate,
    extract_functions,
)
from oci_lsp.refine.isolation import CandidateOutcome, CandidateRun, Limits, Sandbox
from oci_lsp.refine.prompts import (
    FunctionToFix,
    RelatedSource,
    answer_message,
    feedback_message,
    guidance_message,
    module_context,
    pair_answer_message,
    pair_task_message,
    task_message,
    test_sources,
)

log = logging.getLogger(__name__)

Mode = Literal["generate", "fix"]
# A candidate's test run gets the tests' timeout, but no more than this: a candidate that
# hangs must not hold the user for the minutes a whole suite may take.
CANDIDATE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Target:
    """The function to write or fix, in the text the user sees now (maybe unsaved)."""

    root: Path  # the workspace folder: pytest's working directory
    path: Path  # the file that defines it
    qualname: str  # "add", "Calc.add"
    source: str  # the module's text


@dataclass(frozen=True)
class TestPlan:
    """What a candidate must pass: the failing tests first, then every other test of the
    function, so a fix that breaks another test is rejected."""

    __test__ = False
    failing: Sequence[str] = ()  # node ids, relative to root
    others: Sequence[str] = ()  # node ids or test files, relative to root
    failure: str | None = None  # the first failure's text, when the user starts from one

    @property
    def selection(self) -> list[str]:
        return list(dict.fromkeys([*self.failing, *self.others]))


@dataclass(frozen=True)
class CheckOutcome:
    """A candidate's verdict from a check that runs before its tests (a linter or type
    checker on its text, issue 16)."""

    passed: bool
    feedback: str = ""  # what the model reads next when it did not pass
    remaining: int = 0  # findings still there or new: fewer is a better failed candidate
    summary: str = ""  # what the check confirmed, for the result's message ("mypy: clean")


class Check(Protocol):
    """What a candidate's whole module text must pass before its tests run."""

    async def __call__(self, source: str) -> CheckOutcome: ...


@dataclass
class CandidateRecord:
    index: int
    reply: str
    tokens: int
    source: str | None = None  # the module with this candidate in place
    function: str | None = None
    # A fix of functions in several files: the other files' text with it in place.
    more: dict[Path, str] = field(default_factory=dict)
    error: str | None = None  # why it could not be used or run
    outcome: CandidateOutcome | None = None
    check: CheckOutcome | None = None  # the plan's check, when there is one
    # What of the original the reply lost and got back ("kept the docstring the reply left
    # out"), and whether it was refused for lines that could not be put back (keep.py).
    kept: tuple[str, ...] = ()
    rejected: bool = False

    @property
    def passed(self) -> bool:
        if self.check is not None and not self.check.passed:
            return False
        if self.outcome is None:
            # No test exercises the function: the check's verdict is the only one there is.
            return self.check is not None and self.source is not None
        return self.outcome.verdict == "passed"

    @property
    def score(self) -> tuple[int, int, int, int]:
        """Higher is better: cleared the check, tests passed, fewer findings left, then the
        earlier candidate."""
        check = self.check
        return (
            int(check is None or check.passed),
            self.outcome.passed if self.outcome else -1,
            -(check.remaining if check else 0),
            -self.index,
        )

    @property
    def feedback(self) -> str:
        """What this candidate did, as the next `Execution result:` turn says it."""
        if self.check is not None and not self.check.passed:
            return self.check.feedback
        if self.outcome is not None:
            return failure_feedback(self.outcome)
        return self.error or "The reply had no code."


@dataclass
class RoundRecord:
    number: int
    feedback: str | None  # the feedback this round answered (None for the first)
    candidates: list[CandidateRecord] = field(default_factory=list)
    generation_seconds: float = 0.0
    verification_seconds: float = 0.0


@dataclass
class RefineResult:
    source: str | None  # the new module text; None when no candidate could be used at all
    function: str | None  # the new definition of the function alone
    verified: bool  # it passed every test of the plan
    rounds: list[RoundRecord]
    message: str  # one line for the user
    seconds: float = 0.0
    cancelled: bool = False
    kept: tuple[str, ...] = ()  # what of the original the result's reply lost and got back
    # A fix of functions in several files: the other files' new text (`source` is the
    # first function's file).
    more: dict[Path, str] = field(default_factory=dict)

    @property
    def candidates_tried(self) -> int:
        return sum(len(r.candidates) for r in self.rounds)


@dataclass
class _Conversation:
    messages: list[ChatMessage]
    function_digest: str  # the function's text when the conversation last saw it


def _function_text(source: str, qualname: str) -> str | None:
    if parse(source) is None:  # by indentation: an open bracket must not run to the end
        span = function_span(source, qualname)
        if span is None:
            return None
        start, end = span
    else:
        location = find_function(source, qualname)
        if location is None:
            return None
        start, end = location.def_line, location.end_line
    return "\n".join(split_lines(source)[start - 1 : end])


def _digest(text: str | None) -> str:
    return hashlib.sha256((text or "").encode()).hexdigest()


_Key = tuple[tuple[str, str], ...]


def _key(targets: Sequence[Target]) -> _Key:
    return tuple((str(t.path), t.qualname) for t in targets)


def _functions_text(targets: Sequence[Target]) -> str | None:
    texts = [_function_text(t.source, t.qualname) for t in targets]
    return None if any(t is None for t in texts) else "\n".join(t or "" for t in texts)


class Conversations:
    """The dialogue of each function (or functions fixed together) while the process lives:
    the one being fixed, whichever suspect of a failure that is."""

    def __init__(self) -> None:
        self._by_function: dict[_Key, _Conversation] = {}

    def get(self, target: Target, partners: Sequence[Target] = ()) -> list[ChatMessage] | None:
        targets = [target, *partners]
        key = _key(targets)
        found = self._by_function.get(key)
        if found is None:
            return None
        if found.function_digest != _digest(_functions_text(targets)):
            del self._by_function[key]  # changed by hand: the old dialogue no longer applies
            return None
        return list(found.messages)

    def keep(
        self, target: Target, messages: list[ChatMessage], partners: Sequence[Target] = ()
    ) -> None:
        targets = [target, *partners]
        self._by_function[_key(targets)] = _Conversation(
            list(messages), _digest(_functions_text(targets))
        )

    def drop(self, target: Target, partners: Sequence[Target] = ()) -> None:
        self._by_function.pop(_key([target, *partners]), None)

    def __len__(self) -> int:
        return len(self._by_function)


# Progress events: ("generating", round, tokens), ("verifying", round, candidates),
# ("verified", round, [CandidateRecord]), ("feedback", round, text), on the event loop.
OnEvent = Callable[[str, int, object], None]


def failure_feedback(outcome: CandidateOutcome) -> str:
    """The execution result of a candidate, as the model will read it."""
    if outcome.verdict == "timeout":
        return "Execution timed out."
    if outcome.collection_errors:
        error = outcome.collection_errors[0]
        return error.longrepr or error.message
    failure = outcome.first_failure
    if failure is not None:
        text = failure.longrepr or failure.message
        return f"{failure.test_id} failed:\n{text}"
    return outcome.message or outcome.output_tail or "The tests did not run."


class Refiner:
    def __init__(
        self,
        backend: Backend,
        sandbox: Sandbox,
        settings: RefineSettings,
        *,
        max_new_tokens: int = 1024,
        limits: Limits | None = None,
        conversations: Conversations | None = None,
        priority: Priority = "interactive",
    ) -> None:
        self.backend = backend
        self.sandbox = sandbox
        self.settings = settings
        self.max_new_tokens = max_new_tokens
        self.limits = limits or Limits()
        self.conversations = conversations if conversations is not None else Conversations()
        self.priority = priority

    @classmethod
    def from_settings(
        cls,
        backend: Backend,
        sandbox: Sandbox,
        settings: Settings,
        *,
        conversations: Conversations | None = None,
        priority: Priority = "interactive",
    ) -> Refiner:
        """The loop the settings describe (what the code actions and --fix both run)."""
        return cls(
            backend,
            sandbox,
            settings.refine,
            max_new_tokens=settings.generation.max_new_tokens,
            limits=Limits(timeout=min(CANDIDATE_TIMEOUT, float(settings.tests.timeout))),
            conversations=conversations,
            priority=priority,
        )

    def _new_conversation(
        self,
        target: Target,
        plan: TestPlan,
        mode: Mode,
        partners: Sequence[Target],
        related: Sequence[RelatedSource],
        goal: str | None = None,
    ) -> list[ChatMessage]:
        """The task, and for a fix the current code with its failure."""
        if partners:
            return self._new_pair_conversation([target, *partners], plan, related)
        relative = _relative(target.path, target.root)
        context = module_context(target.source, target.qualname)
        tests = test_sources(target.root, plan.selection)
        fix = mode == "fix"
        messages = [
            task_message(
                relative,
                target.qualname,
                context,
                tests,
                fix=fix,
                related=related if fix else (),
                goal=goal,
            )
        ]
        if fix and plan.failure:
            # The dialogue the models were trained on: their code, then what it did.
            current = _function_text(target.source, target.qualname)
            if current is not None:
                messages.append(answer_message(current))
                messages.append(feedback_message(plan.failure))
        return messages

    def _new_pair_conversation(
        self, targets: Sequence[Target], plan: TestPlan, related: Sequence[RelatedSource]
    ) -> list[ChatMessage]:
        """A fix of several functions together: the same turns, with all of them."""
        functions = [
            FunctionToFix(
                _relative(t.path, t.root),
                t.qualname,
                module_context(t.source, [o.qualname for o in targets if o.path == t.path]),
            )
            for t in targets
        ]
        tests = test_sources(targets[0].root, plan.selection)
        messages = [pair_task_message(functions, tests, related)]
        current = [
            (f.where, _function_text(t.source, t.qualname))
            for f, t in zip(functions, targets, strict=True)
        ]
        if plan.failure and all(text is not None for _, text in current):
            messages.append(pair_answer_message([(w, text or "") for w, text in current]))
            messages.append(feedback_message(plan.failure))
        return messages

    async def refine(
        self,
        target: Target,
        plan: TestPlan,
        *,
        mode: Mode = "fix",
        instruction: str | None = None,
        on_event: OnEvent | None = None,
        on_text: Callable[[int, str], None] | None = None,
        cancel: asyncio.Event | None = None,
        partners: Sequence[Target] = (),
        related: Sequence[RelatedSource] = (),
        check: Check | None = None,
        goal: str | None = None,
    ) -> RefineResult:
        """Refine `target` (with `partners`: those functions too, fixed together in one
        reply); `related` are other suspects' sources, shown to the model as context.

        `check`: what each candidate must pass before its tests run (a tool's findings
        cleared, issue 16); with it, a function no test exercises is verified by the check.
        `goal`: the task's first sentence, in place of "so that its tests pass"."""
        started = time.monotonic()
        for each in (target, *partners):
            if find_function(each.source, each.qualname) is None:
                return RefineResult(None, None, False, [], f"`{each.qualname}` is not in the file")
        # A module that does not parse (a syntax error to fix): the candidates go in place of
        # a stand-in that parses. The dialogue still shows the function as it is.
        placed = target
        if not partners and parse(target.source) is None:
            parsed = stand_in(target.source, target.qualname)
            if parsed is None:
                return RefineResult(
                    None,
                    None,
                    False,
                    [],
                    f"the module does not parse outside `{target.qualname}`: fix that first",
                )
            placed = replace(target, source=parsed)
        # A second request continues the dialogue.
        messages = self.conversations.get(target, partners)
        if messages is None:
            # Reads the tests' files and parses sources: not on the caller's event loop.
            messages = await asyncio.to_thread(
                self._new_conversation, target, plan, mode, partners, related, goal
            )
        if instruction and instruction.strip():
            messages.append(guidance_message(instruction))
        rounds: list[RoundRecord] = []
        best: CandidateRecord | None = None
        feedback: str | None = None
        for number in range(1, self.settings.max_rounds + 1):
            record = RoundRecord(number, feedback)
            rounds.append(record)
            await self._generate(record, messages, placed, partners, on_event, on_text, cancel)
            if cancel is not None and cancel.is_set():
                return self._cancelled(rounds, started)
            await self._verify(record, placed, plan, bool(partners), on_event, cancel, check)
            if cancel is not None and cancel.is_set():
                return self._cancelled(rounds, started)
            winner = next((c for c in record.candidates if c.passed), None)
            if winner is not None:
                self.conversations.drop(target, partners)
                return RefineResult(
                    winner.source,
                    winner.function,
                    True,
                    rounds,
                    _passed_message(winner, number) + kept_note(winner.kept),
                    time.monotonic() - started,
                    kept=winner.kept,
                    more=winner.more,
                )
            usable = [c for c in record.candidates if c.source is not None] or record.candidates
            round_best = max(usable, key=lambda c: c.score) if usable else None
            if round_best is not None and (best is None or round_best.score >= best.score):
                best = round_best
            if round_best is None or (not plan.selection and check is None):
                break  # nothing to run the code against: feedback would be invented
            feedback = round_best.feedback
            messages.append(ChatMessage("assistant", round_best.reply))
            messages.append(feedback_message(feedback))
            if on_event is not None:
                on_event("feedback", number, feedback)
        # Kept for the next request on this function, which continues from here.
        self.conversations.keep(target, messages, partners)
        if check is not None and not (best is not None and best.check and best.check.passed):
            message = f"no candidate cleared the findings in {len(rounds)} round(s)"
        elif not plan.selection:
            message = "no tests exercise it: the code is unverified"
        else:
            message = f"no candidate passed the tests in {len(rounds)} round(s)"
        return RefineResult(
            best.source if best else None,
            best.function if best else None,
            False,
            rounds,
            message,
            time.monotonic() - started,
            kept=best.kept if best else (),
            more=best.more if best else {},
        )

    def _cancelled(self, rounds: list[RoundRecord], started: float) -> RefineResult:
        return RefineResult(
            None, None, False, rounds, "cancelled", time.monotonic() - started, cancelled=True
        )

    async def _generate(
        self,
        record: RoundRecord,
        messages: list[ChatMessage],
        target: Target,
        partners: Sequence[Target],
        on_event: OnEvent | None,
        on_text: Callable[[int, str], None] | None,
        cancel: asyncio.Event | None,
    ) -> None:
        began = time.monotonic()
        options = GenerationOptions(
            max_new_tokens=self.max_new_tokens,
            num_candidates=self.settings.candidates,
            temperature=self.settings.temperature,
            priority=self.priority,
        )
        tokens = [0] * self.settings.candidates

        def seen(index: int, text: str) -> None:
            if index < len(tokens):
                tokens[index] += 1
            if on_event is not None:
                on_event("generating", record.number, sum(tokens))
            if on_text is not None:
                on_text(index, text)

        replies: list[Candidate] = await self.backend.generate(messages, options, seen, cancel)
        record.generation_seconds = time.monotonic() - began
        for index, reply in enumerate(replies):
            candidate = CandidateRecord(index, reply.text, reply.tokens)
            try:
                if partners:
                    _fill_from_functions(candidate, reply.text, [target, *partners])
                else:
                    extracted = extract_candidate(reply.text, target.source, target.qualname)
                    candidate.source = apply_candidate(target.source, target.qualname, extracted)
                    candidate.function = extracted.function
                    candidate.kept = extracted.kept
            except ExtractionError as exc:
                candidate.error = str(exc)
                candidate.rejected = isinstance(exc, LostLinesError)
            record.candidates.append(candidate)

    async def _verify(
        self,
        record: RoundRecord,
        target: Target,
        plan: TestPlan,
        several: bool,
        on_event: OnEvent | None,
        cancel: asyncio.Event | None,
        check: Check | None = None,
    ) -> None:
        runnable = [c for c in record.candidates if c.source is not None]
        if not runnable or (not plan.selection and check is None):
            return
        if on_event is not None:
            on_event("verifying", record.number, len(runnable))
        began = time.monotonic()
        if check is not None:
            # The tool first: it is cheaper than the tests, and its findings are the point.
            checked = await asyncio.gather(*(check(c.source or "") for c in runnable))
            for candidate, verdict in zip(runnable, checked, strict=True):
                candidate.check = verdict
            runnable = [c for c in runnable if c.check is not None and c.check.passed]
        if not runnable or not plan.selection or (cancel is not None and cancel.is_set()):
            record.verification_seconds = time.monotonic() - began
            if on_event is not None:
                on_event("verified", record.number, list(record.candidates))
            return
        # Candidates that are the same code are run once.
        by_source: dict[tuple[str, tuple[tuple[Path, str], ...]], list[CandidateRecord]] = {}
        for candidate in runnable:
            assert candidate.source is not None
            key = (candidate.source, tuple(sorted(candidate.more.items())))
            by_source.setdefault(key, []).append(candidate)
        runs = [
            CandidateRun(target.path, source, plan.selection, first=tuple(plan.failing), more=more)
            for source, more in by_source
        ]
        if several:
            # Functions fixed together: one round swaps one function, so each runs alone.
            outcomes = list(
                await asyncio.gather(*(self.sandbox.run(r, self.limits, cancel) for r in runs))
            )
        else:
            # One collection of the tests for the round, each candidate swapped into it.
            outcomes = await self.sandbox.run_round(
                runs, target.source, target.qualname, self.limits, cancel
            )
        for same, outcome in zip(by_source.values(), outcomes, strict=True):
            for candidate in same:
                candidate.outcome = outcome
        record.verification_seconds = time.monotonic() - began
        if on_event is not None:
            on_event("verified", record.number, list(record.candidates))


def _fill_from_functions(candidate: CandidateRecord, reply: str, targets: Sequence[Target]) -> None:
    """A candidate for several functions at once: every file's new text from one reply."""
    first = targets[0]
    modules = {t.path: t.source for t in targets}
    texts, extracted = extract_functions(reply, modules, [(t.path, t.qualname) for t in targets])
    candidate.source = texts[first.path]
    candidate.more = {path: text for path, text in texts.items() if path != first.path}
    candidate.function = extracted[0].function
    candidate.kept = tuple(note for e in extracted for note in e.kept)


def _passed_message(winner: CandidateRecord, number: int) -> str:
    tests = winner.outcome.passed if winner.outcome else 0
    checked = winner.check.summary if winner.check is not None else ""
    if winner.outcome is None:
        return f"{checked or 'checked'} in round {number}; no tests exercise it"
    passed = f"passed {tests} test(s) in round {number}"
    return f"{checked}; {passed}" if checked else passed


def kept_note(kept: tuple[str, ...]) -> str:
    """What a candidate got back of the original, as a note after what it did."""
    return f" ({'; '.join(kept)})" if kept else ""


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name
