"""`oci-lsp --fix`: the quick-fix's loop over every failing test of a project, no editor.

Run the suite; when tests fail, locate the fault (the locate run records what each test of
the failing tests' files executed, testing/localize.py ranks the functions); group the
failures by their top suspect; fix the groups with the refinement loop, `--jobs` at a time,
one model for all: the top suspect first, then the next suspects, then the top two together
(one reply changes both); write each fix (atomically) only once it passed its tests; run
the suite again and roll back a written fix that broke a test elsewhere. Exit 0 when nothing
is left failing, 1 when failures remain, 2 when the run could not be done (with one line
that says what to do).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import difflib
import logging
import os
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from oci_lsp.code.functions import find_function
from oci_lsp.code.modules import ModuleIndex
from oci_lsp.config import Settings, read_pyproject_settings, resolve_settings
from oci_lsp.engine.backend import Backend, BackendError
from oci_lsp.engine.models import create_backend
from oci_lsp.fix import tool_fixes
from oci_lsp.fix.report import Display, GroupReport, Report, RoundReport
from oci_lsp.fix.writes import FileProblem, TextFile, leftovers, read_text_file, write_atomic
from oci_lsp.refine.isolation import CandidateRun, Sandbox, SandboxError
from oci_lsp.refine.loop import Conversations, Refiner, RefineResult, Target, TestPlan
from oci_lsp.refine.mutant_runs import SandboxMutants
from oci_lsp.refine.prompts import related_sources
from oci_lsp.testing import localize
from oci_lsp.testing.failures import FailureLocator, Suspect
from oci_lsp.testing.impact import ImportGraph
from oci_lsp.testing.interpreter import Interpreter, Interpreters
from oci_lsp.testing.projects import find_projects, nested_in
from oci_lsp.testing.results import Collected, TestReport
from oci_lsp.testing.runner import RunResult, RunSpec, run_tests
from oci_lsp.tools.findings import Finding
from oci_lsp.tools.runners import ToolCommand

log = logging.getLogger(__name__)

EXIT_CLEAN, EXIT_FAILURES, EXIT_CANNOT = 0, 1, 2
SUSPECTS_TRIED = 3  # a group's suspects tried one by one (then the top two together)


class CannotRun(Exception):
    """The run cannot be done; str() is the one line for the user (exit 2)."""


@dataclass
class FixOptions:
    root: Path
    dry_run: bool = False
    rounds: int | None = None
    candidates: int | None = None
    jobs: int = 1
    json: Path | None = None
    test_command: str | None = None
    timeout: float | None = None
    keyword: str | None = None
    allow_dirty: bool = False
    settings: Mapping[str, Any] = field(default_factory=dict)  # from the command line
    # `--tools`: None, the tests alone; [] the enabled tools; or the tools named (issue 16).
    tools: list[str] | None = None


class _Written(Protocol):
    """A fix written to disk: what its files were, and its line of the report."""

    before: dict[Path, TextFile]
    report: GroupReport


class _Suite(Collected):
    """One run of the whole suite."""

    def __init__(self) -> None:
        super().__init__()
        self.result = RunResult("completed")


@dataclass
class _Group:
    path: Path  # of the top suspect, the group's key
    qualname: str
    reports: list[TestReport]
    report: GroupReport
    # The files before this fix was written (for a roll-back): one, or two for a fix of two
    # functions in two files.
    before: dict[Path, TextFile] = field(default_factory=dict)
    # The functions the fault may be in, most suspicious first; the first is the key.
    suspects: list[Suspect] = field(default_factory=list)


async def fix_project(options: FixOptions, display: Display | None = None) -> int:
    """The whole run; the exit status."""
    run = _FixRun(options, display or Display())
    try:
        return await run.run()
    except CannotRun as exc:
        run.display.say(f"oci-lsp: {exc}")
        return EXIT_CANNOT
    finally:
        await run.close()


class _FixRun:
    def __init__(self, options: FixOptions, display: Display) -> None:
        self.options = options
        self.display = display
        self.root = options.root.resolve()
        self.report = Report(root=str(self.root), dry_run=options.dry_run)
        self.started = time.monotonic()
        self.settings = Settings()
        self.python = Interpreter("", "server", "")
        self.seed: int | None = None  # pytest-randomly's, the same for every run
        self.said = ""  # what the runs change in the project's options, once said
        self.said_skipped = ""  # the directories the runs leave out (symlink loops), once said
        self.backend: Backend | None = None
        self.sandbox: Sandbox | None = None
        self.files: dict[Path, TextFile] = {}
        self.locks: dict[Path, asyncio.Lock] = {}
        self.conversations = Conversations()
        self.index = ModuleIndex(self.root)
        self.graph = ImportGraph(self.root, self.index)
        self._told_nested = False
        self.fixed: list[str] = []  # the functions whose fix this run has made, in order

    async def close(self) -> None:
        if self.sandbox is not None:
            await self.sandbox.close()
        if self.backend is not None:
            with contextlib.suppress(BackendError):
                await self.backend.close()

    # -- the run ------------------------------------------------------------------------------

    async def run(self) -> int:
        self._check_root()
        self._resolve_settings()
        self.python = await Interpreters().find(self.root, self.settings.tests.python)
        self.report.python = self.python.to_json()
        self.display.say(f"tests run with {self.python.path} ({self.python.reason})")
        commands = self._tool_commands()
        for stale in leftovers(self.root):  # what a killed run left: never the user's files
            with contextlib.suppress(OSError):
                stale.unlink()
        tooled = self.options.tools is not None
        # Modules that do not parse first: nothing else can run on them (issue 16).
        finding_groups = await self._fix_syntax() if tooled else []
        self.display.status("running the tests")
        first = await self._suite(tests_required=not tooled)
        failing = [r for r in first.failing if self._selected(r.test_id)]
        self.report.failing_before = len(failing)
        for error in first.errors:
            self.report.unfixable.append(
                {"test": error.collector, "why": f"collection error: {error.message}"}
            )
        groups: list[_Group] = []
        if failing:
            groups = self._groups(failing, await self._locate(failing))
            self.display.say(
                f"{len(failing)} failing test(s); {len(groups)} function(s) to fix,"
                f" {len(self.report.unfixable)} failure(s) with nothing of the project to fix"
            )
        elif not tooled:
            self.display.say(f"nothing to fix: {len(first.reports)} test(s) ran, none failing")
            return self._finish(EXIT_FAILURES if first.errors else EXIT_CLEAN)
        if groups:
            self._check_clean([Path(s.path) for g in groups for s in _tried(g.suspects)])
            await self._ready_to_fix()
            jobs = asyncio.Semaphore(max(1, self.options.jobs))
            await asyncio.gather(*(self._fix_group(group, jobs) for group in groups))
        if commands:
            finding_groups += await self._fix_findings(commands)
        done: list[_Written] = [*groups, *finding_groups]
        written = [g for g in done if g.before]
        if written:
            await self._check_written(first, written)
        elif self.options.dry_run:
            self.report.failing_after = None
        else:
            self.report.failing_after = len(failing)
        left = self.report.failing_after
        remaining = len(failing) if left is None else left
        findings_left = any(g.report.status not in ("fixed", "skipped") for g in finding_groups)
        findings_left = findings_left or any("tool" in item for item in self.report.unfixable)
        clean = remaining == 0 and not first.errors and not findings_left
        return self._finish(EXIT_CLEAN if clean else EXIT_FAILURES)

    # -- the tools' findings (issue 16) -------------------------------------------------------

    def _tool_commands(self) -> dict[str, ToolCommand]:
        """The tools `--tools` runs, checked before the long test run; {} without it."""
        if self.options.tools is None:
            return {}
        try:
            commands = tool_fixes.commands_for(
                self.options.tools,
                self.python.path,
                self.settings.tools.enabled,
                self.settings.tools.override,
            )
        except tool_fixes.ToolsUnavailable as exc:
            raise CannotRun(str(exc)) from None
        if commands:
            shown = ", ".join(f"{n} ({c.origin})" for n, c in commands.items())
            self.display.say(f"tools: {shown}")
        else:
            self.display.say(
                "tools: none of ruff, mypy, pyright is installed; only syntax errors are fixed"
            )
        return commands

    async def _fix_syntax(self) -> list[tool_fixes.FindingGroup]:
        self.display.status("checking that every module parses")
        found = await tool_fixes.syntax_findings(self.python.path, _python_files(self.root))
        return await self._fix_finding_groups(found, {}, "syntax error(s)")

    async def _fix_findings(
        self, commands: dict[str, ToolCommand]
    ) -> list[tool_fixes.FindingGroup]:
        self.display.status(f"running {', '.join(commands)}")
        try:
            found = await tool_fixes.findings_of(commands, self.root, self.settings.tests.timeout)
        except tool_fixes.ToolsUnavailable as exc:
            raise CannotRun(str(exc)) from None
        return await self._fix_finding_groups(
            found, commands, f"finding(s) of {', '.join(commands)}"
        )

    async def _fix_finding_groups(
        self, found: list[Finding], commands: dict[str, ToolCommand], what: str
    ) -> list[tool_fixes.FindingGroup]:
        groups, outside = tool_fixes.group_findings(found, self.read, self.root)
        self.report.unfixable += outside
        self.report.groups += [g.report for g in groups]
        if not found:
            return []
        self.display.say(
            f"{len(found)} {what}; {len(groups)} function(s) to fix,"
            f" {len(outside)} outside any function"
        )
        if groups:
            self._check_clean([g.path for g in groups])
            await self._ready_to_fix()
            await tool_fixes.fix_all(self, groups, commands)
        return groups

    async def _ready_to_fix(self) -> None:
        """The model, the import graph and the sandbox, once."""
        if self.backend is None:
            await self._load_model()
            await asyncio.to_thread(self.graph.build)
        await self._sandbox()

    def _finish(self, code: int) -> int:
        self.report.seconds = time.monotonic() - self.started
        print(self.report.table())
        if self.options.json is not None:
            self.report.save(self.options.json)
        return code

    # -- before fixing ------------------------------------------------------------------------

    def _check_root(self) -> None:
        root = self.options.root
        if not root.exists():
            raise CannotRun(f"{root} does not exist")
        if not root.is_dir():
            raise CannotRun(f"{root} is not a directory: give the project's folder")
        if not any(_python_files(self.root)):
            raise CannotRun(f"{root} is not a Python project: no .py files in it")

    def _resolve_settings(self) -> None:
        pyproject, problem = read_pyproject_settings(self.root)
        extra: dict[str, Any] = {"refine": {}, "tests": {}}
        if self.options.rounds is not None:
            extra["refine"]["maxRounds"] = self.options.rounds
        if self.options.candidates is not None:
            extra["refine"]["candidates"] = self.options.candidates
        if self.options.timeout is not None:
            extra["tests"]["timeout"] = self.options.timeout
        if self.options.test_command:
            extra["tests"]["command"] = shlex.split(self.options.test_command)
        self.settings, problems = resolve_settings(
            [
                ("pyproject.toml", pyproject),
                ("command line", dict(self.options.settings)),
                ("--fix options", extra),
            ]
        )
        for each in ([problem] if problem else []) + problems:
            self.display.say(str(each))

    async def _suite(self, tests_required: bool = True) -> _Suite:
        """The whole suite; `tests_required`: none found is an error (not with `--tools`,
        where a project's findings are fixed with or without tests)."""
        tests = self.settings.tests
        # Projects below the root run from their own directories (testing/projects.py):
        # --fix there; here they are left out, as the server's runs leave them out.
        nested = nested_in(self.root, find_projects(self.root))
        if nested and not self._told_nested:
            self._told_nested = True
            names = ", ".join(os.path.relpath(p, self.root) for p in nested)
            self.display.say(f"left out, projects of their own (run --fix in each): {names}")
        spec = self._spec(nested)
        suite = _Suite()
        suite.result = await run_tests(spec, suite)
        result = suite.result
        changes = "; ".join(result.changes)
        if changes and changes != self.said:  # once, not after every suite run
            self.said = changes
            self.display.say(f"the tests run with: {changes}")
        self.seed = result.seed if result.seed is not None else self.seed
        if result.stopped:
            self.display.say(f"the test run stopped early: {result.stopped}")
        if result.skipped and result.skipped != self.said_skipped:
            self.said_skipped = result.skipped
            self.display.say(f"the tests {result.skipped}")
        if result.status == "failed-to-start" or result.pytest_missing:
            raise CannotRun(result.message or "the tests could not start")
        if result.status == "timeout":
            raise CannotRun(f"the test suite took longer than {tests.timeout:g} s (--timeout)")
        if not suite.reports and not suite.errors and tests_required:
            raise CannotRun(f"no tests found under {self.root}")
        return suite

    def _spec(self, nested: list[Path], selection: list[str] | None = None) -> RunSpec:
        tests = self.settings.tests
        return RunSpec(
            self.root,
            self.python.path,
            python_reason=self.python.reason,
            selection=selection or (),
            ignore=[str(p) for p in nested],
            timeout=tests.timeout,
            command=tests.command,
            seed=self.seed,
        )

    async def _locate(self, failing: list[TestReport]) -> dict[str, list[Suspect]]:
        """The ranked suspects of each failing test, from the locate run (the failing tests'
        files again, recording); {} with `tests.localization` "off", or another runner."""
        tests = self.settings.tests
        formula = tests.localization
        if formula == "off" or tests.command or not localize.worth_locating(failing):
            return {}
        files = sorted({os.path.relpath(r.path, self.root) for r in failing if r.path})
        self.display.status(f"locating the fault: recording the tests of {len(files)} file(s)")
        spec = self._spec(nested_in(self.root, find_projects(self.root)), files)
        locator = FailureLocator(self.root, self.read, self.index)
        mutants = SandboxMutants(self._sandbox) if tests.localization_mutants else None

        def mutating(names: Sequence[str]) -> None:
            self.display.status(f"locating the fault: trying small changes of {', '.join(names)}")

        return await localize.locate(
            spec, failing, locator, formula, None, mutants=mutants, mutating=mutating
        )

    async def _sandbox(self) -> Sandbox:
        """The sandbox of the changes that locate the fault and of the candidates."""
        if self.sandbox is None:
            self.sandbox = Sandbox(self.root, self.python.path, python_reason=self.python.reason)
            self.sandbox.seed = self.seed
        return self.sandbox

    def _selected(self, test_id: str) -> bool:
        keyword = self.options.keyword
        return not keyword or keyword.lower() in test_id.lower()

    def _groups(
        self, failing: list[TestReport], ranked: Mapping[str, list[Suspect]]
    ) -> list[_Group]:
        """The failing tests by their top suspect (the function under test by today's rule
        when a test has no ranking), each group with its tests' suspects merged."""
        locator = FailureLocator(self.root, self.read, self.index)
        groups: dict[tuple[str, str], _Group] = {}
        for report in failing:
            suspects = list(ranked.get(report.test_id, ()))
            if not suspects:
                target = locator.target_of(report)
                if target is not None:
                    suspects = [
                        Suspect(target.path, target.qualname, target.dotted, target.span, 0.0)
                    ]
            if not suspects:
                why = "no function of the project to fix (the test itself, or a dependency)"
                self.report.unfixable.append({"test": report.test_id, "why": why})
                continue
            top = suspects[0]
            key = (top.path, top.qualname)
            if key not in groups:
                relative = os.path.relpath(top.path, self.root)
                summary = GroupReport(relative, top.qualname, [])
                groups[key] = _Group(Path(top.path), top.qualname, [], summary)
                self.report.groups.append(summary)
            group = groups[key]
            group.reports.append(report)
            group.report.tests.append(report.test_id)
            group.suspects = _merged(group.suspects, suspects)
            group.report.suspects = [s.dotted for s in _tried(group.suspects)]
        return list(groups.values())

    def _check_clean(self, paths: list[Path]) -> None:
        if self.options.dry_run or self.options.allow_dirty:
            return
        dirty = _uncommitted(self.root, sorted(set(paths)))
        if dirty:
            raise CannotRun(
                "uncommitted changes in the files it would fix ("
                + ", ".join(dirty[:5])
                + "): commit or stash them, or pass --allow-dirty"
            )

    async def _load_model(self) -> None:
        self.display.status("loading the model")
        try:
            self.backend = create_backend(self.settings)
            await self.backend.load()
        except BackendError as exc:
            raise CannotRun(
                f"no model to fix with: {exc} (on the command line: --model, or --backend"
                " openai --openai-base-url URL)"
            ) from None

    def read(self, path: str) -> str | None:
        cached = self.files.get(Path(path))
        if cached is not None:
            return cached.text
        try:
            return read_text_file(Path(path)).text
        except FileProblem:
            return None

    # -- fixing -------------------------------------------------------------------------------

    async def _fix_group(self, group: _Group, jobs: asyncio.Semaphore) -> None:
        # One fix of a file at a time, each on top of the last: the group holds the files of
        # every function it may change (in one order for all groups: no deadlock); a group
        # waiting for its files holds no job slot.
        paths = sorted({Path(s.path) for s in _tried(group.suspects)} | {group.path})
        async with contextlib.AsyncExitStack() as held:
            for path in paths:
                await held.enter_async_context(self.locks.setdefault(path, asyncio.Lock()))
            await held.enter_async_context(jobs)
            began = time.monotonic()
            try:
                await self._fix(group)
            except (FileProblem, SandboxError, BackendError) as exc:
                group.report.status, group.report.why = "not-fixed", str(exc)
            group.report.seconds = time.monotonic() - began
            self.display.say(
                f"{group.report.status}: {group.report.path}::{group.qualname}"
                + (f" ({group.report.why})" if group.report.why else "")
            )

    async def _fix(self, group: _Group) -> None:
        assert self.backend is not None and self.sandbox is not None
        current = self.files.get(group.path) or read_text_file(group.path)
        self.files[group.path] = current
        failing = [r.test_id for r in group.reports]
        if self.fixed and await self._pass_now(group, current.text, failing):
            # A wrong value of a function fixed before can fail a test that blames another:
            # nothing of this one to change.
            group.report.status = "skipped"
            group.report.why = "its tests pass after the fix of " + ", ".join(
                f"`{f}`" for f in self.fixed
            )
            return
        whys: list[str] = []
        for attempt, rounds in _attempts(group.suspects, self.settings.refine.max_rounds):
            result, targets = await self._attempt(group, attempt, rounds, failing)
            if result is None:
                continue  # the function is gone from its file
            if result.verified and result.source is not None:
                self._fixed(group, attempt, targets, result)
                return
            names = " and ".join(f"`{s.qualname}`" for s in attempt)
            whys.append(f"{names}: {_why_not(result)}")
        group.report.status = "not-fixed"
        group.report.why = "; ".join(whys) or "its functions are no longer in their files"

    async def _attempt(
        self, group: _Group, attempt: list[Suspect], rounds: int, failing: list[str]
    ) -> tuple[RefineResult | None, list[Target]]:
        """One function (or two together) refined against the group's tests, in `rounds`."""
        assert self.backend is not None and self.sandbox is not None
        targets: list[Target] = []
        for suspect in attempt:
            path = Path(suspect.path)
            self.files[path] = self.files.get(path) or read_text_file(path)
            text = self.files[path].text
            if find_function(text, suspect.qualname) is None:
                return None, []
            targets.append(Target(self.root, path, suspect.qualname, text))
        others: list[str] = []
        for target in targets:
            name = target.qualname.rpartition(".")[2]
            others += self.graph.tests_exercising(target.path, name, self.read)
        plan = TestPlan(
            failing=failing,
            others=list(dict.fromkeys(others)),
            failure=group.reports[0].longrepr,
        )
        refine = dataclasses.replace(self.settings.refine, max_rounds=rounds)
        refiner = Refiner.from_settings(
            self.backend,
            self.sandbox,
            dataclasses.replace(self.settings, refine=refine),
            conversations=self.conversations,
            priority="batch",
        )
        label = " + ".join(f"{os.path.relpath(t.path, self.root)}::{t.qualname}" for t in targets)

        def event(kind: str, number: int, payload: object) -> None:
            if kind == "generating":
                self.display.status(f"{label}: round {number}, {payload} tokens", counter=True)
            elif kind == "verifying":
                self.display.status(f"{label}: round {number}, verifying {payload} candidate(s)")
            elif kind == "feedback":
                self.display.status(f"{label}: round {number} failed; feeding it back")

        self.display.status(f"{label}: round 1")
        fixing = {s.dotted for s in attempt}
        related = related_sources(group.suspects, self.root, self.read, fixing)
        result = await refiner.refine(
            targets[0], plan, on_event=event, partners=targets[1:], related=related
        )
        first = len(group.report.rounds) + 1
        group.report.rounds += [
            RoundReport(
                first + i,
                len(r.candidates),
                r.feedback,
                [f"candidate {c.index + 1}: {c.error}" for c in r.candidates if c.rejected],
                functions=[s.dotted for s in attempt],
            )
            for i, r in enumerate(result.rounds)
        ]
        return result, targets

    def _fixed(
        self, group: _Group, attempt: list[Suspect], targets: list[Target], result: RefineResult
    ) -> None:
        """Write a verified fix of a group of failing tests."""
        assert result.source is not None
        texts = {targets[0].path: result.source, **result.more}
        group.report.fixed = [s.dotted for s in attempt]
        group.report.kept = list(result.kept)
        notes = list(result.kept)
        if attempt != group.suspects[:1]:
            notes.insert(0, "fixed " + " and ".join(f"`{s.qualname}`" for s in attempt))
        group.before = self.write_fix(group.report, texts, notes)
        self.fixed.extend(s.qualname for s in attempt)

    def write_fix(
        self, report: GroupReport, texts: dict[Path, str], notes: list[str]
    ) -> dict[Path, TextFile]:
        """Write a verified fix: each file it changes, all or none (a dry run only prints
        it). Returns the files as they were, for a roll-back ({} in a dry run)."""
        report.diff = "".join(
            _diff(os.path.relpath(path, self.root), self.files[path].text, text)
            for path, text in texts.items()
        )
        if self.options.dry_run:
            print(report.diff, end="")
            report.status = "fixed"
            report.why = "; ".join(["dry run: not written", *notes])
            for path, text in texts.items():
                self.files[path] = _replaced(self.files[path], text)
            return {}
        written: dict[Path, TextFile] = {}
        try:
            for path, text in texts.items():
                write_atomic(self.files[path], text)
                written[path] = self.files[path]
        except FileProblem:
            for path, before in written.items():  # all of the fix or none of it
                write_atomic(read_text_file(path), before.text)
            raise
        for path in texts:
            self.files[path] = read_text_file(path)
        report.status, report.why = "fixed", "; ".join(notes)
        return written

    async def _pass_now(self, group: _Group, text: str, failing: list[str]) -> bool:
        """Whether the group's failing tests pass with the fixes made so far (in the sandbox:
        the group's file as fixed, the others from disk)."""
        assert self.sandbox is not None
        run = CandidateRun(group.path, text, failing, stop_at_first_failure=True)
        outcome = await self.sandbox.run(run)
        return outcome.verdict == "passed"

    # -- after fixing -------------------------------------------------------------------------

    async def _check_written(self, first: _Suite, written: Sequence[_Written]) -> None:
        """The whole suite once more; roll back the fixes that broke a test elsewhere."""
        self.display.status("running the tests again")
        second = await self._suite()
        failing_before = {r.test_id for r in first.failing}
        broken = [r for r in second.failing if r.test_id not in failing_before]
        rolled = False
        for group in written:
            affected = self.graph.affected_tests(set(group.before))
            hit = [
                r.test_id
                for r in broken
                if affected is None
                or any(str(t) == r.path for t in affected)
                or (r.path and any(os.path.samefile(r.path, p) for p in group.before))
            ]
            if not hit:
                continue
            for path, before in group.before.items():
                write_atomic(self.files[path], before.text)
                self.files[path] = read_text_file(path)
            group.report.status = "rolled-back"
            group.report.why = "broke " + ", ".join(hit[:3])
            rolled = True
        if rolled:
            self.display.status("running the tests after the roll-back")
            second = await self._suite()
        self.report.failing_after = len([r for r in second.failing if self._selected(r.test_id)])
        # A group worked on before the fix that made its tests pass (the groups of one file
        # go in their tests' order): nothing of it was wrong after all.
        still = {r.test_id for r in second.failing}
        fixed = [g.function for g in self.report.groups if g.status == "fixed"]
        for summary in self.report.groups:
            if summary.tool is not None:
                continue  # a tool's findings: its tests passed before as after
            if fixed and summary.status == "not-fixed" and not still & set(summary.tests):
                summary.status = "skipped"
                summary.why = "its tests pass after the fix of " + ", ".join(
                    f"`{f}`" for f in fixed
                )


def _tried(suspects: list[Suspect]) -> list[Suspect]:
    """The suspects a group tries, one by one: the first SUSPECTS_TRIED."""
    return suspects[:SUSPECTS_TRIED]


def _attempts(suspects: list[Suspect], rounds: int) -> list[tuple[list[Suspect], int]]:
    """What a group tries, in order, with the rounds of each: its top suspect with the
    `refine.maxRounds` rounds of any fix, then each next suspect one round, then (two
    suspects or more) the top two together one round. A ranking that is right costs what a
    fix always cost; a wrong one costs a round per further try."""
    tried = _tried(suspects)
    attempts = [([s], rounds if i == 0 else 1) for i, s in enumerate(tried)]
    # Two of one name (`parse` in two files): a reply cannot say which def is which.
    if len(tried) >= 2 and _name(tried[0]) != _name(tried[1]):
        attempts.append((tried[:2], 1))
    return attempts


def _name(suspect: Suspect) -> str:
    return suspect.qualname.rpartition(".")[2]


def _merged(ours: list[Suspect], theirs: list[Suspect]) -> list[Suspect]:
    """Two tests' suspects as one list: each function once, the most suspicious first (one
    ranking scored them all: a function has one score), else in the order they came."""
    seen = {s.dotted for s in ours}
    merged = ours + [s for s in theirs if s.dotted not in seen]
    return sorted(merged, key=lambda s: -s.score)


def _why_not(result: RefineResult) -> str:
    if result.source is None:
        return result.message
    last = next((r.feedback for r in reversed(result.rounds) if r.feedback), None)
    lines = [line for line in (last or "").strip().splitlines() if line.strip()]
    return result.message + (f"; last failure: {lines[-1][:120]}" if lines else "")


def _diff(relative: str, old: str, new: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"a/{relative}",
            tofile=f"b/{relative}",
        )
    )


def _replaced(original: TextFile, text: str) -> TextFile:
    """The file as it would be with `text` (a dry run keeps fixes of one file together)."""
    return TextFile(original.path, text, original.raw, original.bom, original.newline)


def _python_files(root: Path) -> Any:
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).parts[:-1]
        if not any(part.startswith(".") or part in ("venv", "node_modules") for part in parts):
            yield path


def _uncommitted(root: Path, paths: list[Path]) -> list[str]:
    """The files among `paths` with changes git has not committed; [] outside a work tree."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", *map(str, paths)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if done.returncode != 0:
        return []  # not a git work tree
    return [line[3:] for line in done.stdout.splitlines() if line.strip()]
