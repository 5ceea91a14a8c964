"""Benchmark: does the diagnostic land on the mutated function? (issue 15)

On the localization corpus (tests/corpus/localization.json: seeded mutations of the corpus
projects' own functions, properties, helpers, `__init__` and operator dunders among them,
pinned by bench/corpus_mutations.py), for each mutation, in a materialized copy of its
project with the mutation applied, the suite runs through our runner with our plugin
(`run_tests`, as the server runs it, in the project's environment and `.venv`), then:

  old rule   what the server marked before issue 15: per failing test, the function under
             test (`FailureLocator.target_of`: the deepest workspace frame outside the tests,
             else the function called in the failing assert).
  ranking    `localize.locate` (the locate run: the failing tests' files again, recording
             spectra) and its suspects; a failing test's source mark goes on its first
             suspect, or where the old rule puts it when it has none (`marks_for`).

Figures, per rule:

  top-1      the mutated function is the function marked by the most failing tests (ties:
             the one marked by the first failing test in node-id order), i.e. the mark a
             user sees on most of the failures.
  top-3      old rule: the mutated function is among the three functions marked by the most
             failing tests (same tie rule): the old rule shows no ranking, only its marks.
             ranking: it is among the first three of the merged ranking (each function's
             best score over the failing tests' suspects, ties by first appearance), i.e. the
             mark and the two "also suspicious" entries.
  innocent   distinct functions other than the mutated one that get a source mark.

split by where the fault shows in plain pytest's report (`shows`, pinned): hidden (neither
a traceback frame, the failing assert's call nor a doctest names it) against shown.

Fix rate (`--fix-every N`, the mutations at positions 0, N, 2N... of the corpus order; 0: no
fixes): `oci-lsp --fix` on a fresh copy with the mutation, tests.localization "off" against
"ochiai", with the scripted model of tests/corpus/model.py (it answers with the original
function only when asked about the mutated function with a real failure of its tests in the
conversation; asked about another function it answers with no code). Fixed = the exit status
is 0 and every file of the project is byte-identical to the pristine one afterwards (the
callers untouched, the mutated function restored).

    .venv/bin/python bench/localization.py --json bench/out/localization.json
    .venv/bin/python bench/localization.py --projects isodate --fix-every 0
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpus_bench import environment
from output import save_json

from oci_lsp.refine.isolation import Sandbox
from oci_lsp.refine.mutant_runs import SandboxMutants
from oci_lsp.testing.failures import FailureLocator, Suspect
from oci_lsp.testing.localize import LOCATE_MAX_FAILING
from oci_lsp.testing.results import Collected, TestReport
from oci_lsp.testing.runner import PytestLauncher, RunSpec, run_tests
from tests.corpus.model import fix_with_scripted_model
from tests.corpus.mutations import LOCALIZATION_JSON, Edit, load, role
from tests.corpus.projects import PROJECTS, project
from tests.corpus.workspace import Workspace, materialize, project_env

SPACED = Path("my projects") / "naïve ü"
FORMULA = "ochiai"
RULES = ("old", "new", "dstar", "mutants", "no_undo", "mean")

Function = tuple[str, str]  # (real path, qualname)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def read_source(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


@dataclass
class Rule:
    """What one rule marked for one mutation."""

    marked: list[tuple[str, int]] = field(default_factory=list)  # qualname, failing tests
    ranking: list[tuple[str, float, str]] = field(default_factory=list)  # qualname, score, why
    top1: bool = False
    top3: bool = False
    innocent: int = 0


@dataclass
class Outcome:
    id: str
    project: str
    function: str
    kind: str
    shows: str
    role: str
    failing: int = 0  # failing tests in our run
    old: Rule | None = None  # None: not localized here (--fix-only)
    new: Rule | None = None  # the ranking with FORMULA; None: none (not built, no locate run)
    seconds: float = 0.0
    note: str = ""
    dstar: Rule | None = None  # the ranking with DStar (--dstar)
    # The ranking with mutation evidence (as the session makes it), and the same with no
    # change tried that gives back the pristine function (what a real bug's fix would not be)
    mutants: Rule | None = None
    no_undo: Rule | None = None
    mean: Rule | None = None  # the same changes, weighed by _mean
    fix: dict[str, bool] = field(default_factory=dict)  # localization -> fixed
    fix_seconds: dict[str, float] = field(default_factory=dict)
    fix_said: dict[str, str] = field(default_factory=dict)  # the --fix report's groups

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        rules = {k: Rule(**data[k]) if data.get(k) else None for k in RULES}
        old = rules["old"]
        for rule in (rules[k] for k in RULES if k != "old"):
            if rule is not None and old is not None and not rule.ranking:
                rule.top3 = old.top3  # no test had suspects: the marks are the old rule's
        return cls(**{**data, **rules})


def outcome_of(edit: Edit) -> Outcome:
    return Outcome(edit.id, edit.project, edit.function, edit.kind, edit.shows, role(edit))


def ordered(marks: Iterable[Function | None]) -> list[tuple[Function, int]]:
    """Functions by how many failing tests mark them, ties by the first that does."""
    counts: Counter[Function] = Counter()
    first: dict[Function, int] = {}
    for i, mark in enumerate(marks):
        if mark is not None:
            counts[mark] += 1
            first.setdefault(mark, i)
    return sorted(counts.items(), key=lambda item: (-item[1], first[item[0]]))


def judge_marks(rule: Rule, marks: list[Function | None], mutated: Function) -> None:
    by_count = ordered(marks)
    rule.marked = [(qualname, n) for (_, qualname), n in by_count]
    rule.top1 = bool(by_count) and by_count[0][0] == mutated
    rule.top3 = mutated in [f for f, _ in by_count[:3]]
    rule.innocent = len({m for m in marks if m is not None} - {mutated})


def merged(suspects: dict[str, list[Suspect]], failing: Sequence[TestReport]) -> list[Suspect]:
    """One ranking over the failing tests: each function at its best score, ties by the
    first failing test (node-id order) and place that names it."""
    best: dict[Function, tuple[float, int, Suspect]] = {}
    place = 0
    for report in failing:
        for suspect in suspects.get(report.test_id, []):
            key = (os.path.realpath(suspect.path), suspect.qualname)
            known = best.get(key)
            if known is None or suspect.score > known[0]:
                best[key] = (suspect.score, known[1] if known else place, suspect)
            place += 1
    return [s for _, _, s in sorted(best.values(), key=lambda t: (-t[0], t[1]))]


async def localize_one(
    ws: Workspace,
    edit: Edit,
    launcher: PytestLauncher,
    timeout: float,
    formulas: Sequence[str],
    sandbox: Sandbox | None,
) -> Outcome:
    started = time.perf_counter()
    mutated: Function = (os.path.realpath(ws.root / edit.file), edit.function)
    spec = RunSpec(ws.root, str(ws.python), timeout=timeout)
    collected = Collected()
    edit.apply(ws.root)
    try:
        result = await run_tests(spec, collected, launcher)
        failing = sorted(collected.failing, key=lambda r: r.test_id)
        locator = FailureLocator(ws.root, read_source)

        def target(report: TestReport) -> Function | None:
            found = locator.target_of(report)
            return (os.path.realpath(found.path), found.qualname) if found else None

        old = Rule()
        judge_marks(old, [target(r) for r in failing], mutated)
        outcome = outcome_of(edit)
        outcome.failing, outcome.old = len(failing), old
        if not failing:
            outcome.note = f"no failing test in our run ({result.status}, exit {result.exit_code})"
        if len(failing) > LOCATE_MAX_FAILING:  # the session keeps today's rule then
            outcome.note = f"over {LOCATE_MAX_FAILING} failing: no locate run"
            outcome.new = replace(old) if formulas else None
            outcome.dstar = replace(old) if "dstar" in formulas else None
            if sandbox is not None:
                outcome.mutants, outcome.no_undo = replace(old), replace(old)
                outcome.mean = replace(old)
        spec = replace(spec, seed=result.seed)  # the session's: the first run's order
        if sandbox is not None:
            sandbox.seed = result.seed
        pristine = (ws.root / edit.file).read_text(encoding="utf-8")
        pristine = pristine.replace(edit.mutated, edit.original)
        for formula in formulas if 0 < len(failing) <= LOCATE_MAX_FAILING else ():
            rules = await rank_one(
                spec,
                failing,
                formula,
                locator,
                launcher,
                mutated,
                target,
                sandbox if formula == FORMULA else None,
                pristine,
            )
            if formula == FORMULA:
                outcome.new = rules[0]
                if len(rules) == 4:
                    outcome.mutants, outcome.no_undo, outcome.mean = rules[1:]
            else:
                outcome.dstar = rules[0]
    finally:
        edit.revert(ws.root)
    outcome.seconds = time.perf_counter() - started
    return outcome


async def rank_one(
    spec: RunSpec,
    failing: list[TestReport],
    formula: Any,
    locator: FailureLocator,
    launcher: PytestLauncher,
    mutated: Function,
    target: Any,
    sandbox: Sandbox | None,
    pristine: str,
) -> list[Rule]:
    """The ranking's marks: the locate run over the failing tests' files, as the session
    does it after a failing run (TestSession._locate), ranked from spectra alone and, with a
    sandbox, with mutation evidence and with it minus any change that restores `pristine`."""
    from oci_lsp.testing import localize

    files = sorted({r.path for r in failing if r.path is not None})
    spec = replace(spec, selection=files, record=True)
    recording = await localize.record(spec, failing, launcher)
    if recording is None:
        # The locate run did not complete (a mutation that hangs a test times it out): the
        # session keeps today's rule's marks then (TestSession._locate), and so does this.
        kept = _judge({}, failing, mutated, target)
        return [replace(kept) for _ in range(4 if sandbox is not None else 1)]
    rankings = [await localize.rank_recording(recording, locator, formula)]
    if sandbox is not None:

        async def get() -> Sandbox:
            return sandbox

        remembered = _Remembered(SandboxMutants(get))
        for runner in (remembered, _NoUndo(SandboxMutants(get), pristine)):
            ranked = await localize.rank_recording(
                recording, locator, formula, mutants=runner, timeout=spec.timeout
            )
            rankings.append(ranked)
        # The other way to weigh the same changes' outcomes (run once: remembered).
        shipped = localize.combine
        try:
            localize.combine = _mean
            ranked = await localize.rank_recording(
                recording, locator, formula, mutants=remembered, timeout=spec.timeout
            )
            rankings.append(ranked)
        finally:
            localize.combine = shipped
    return [_judge(suspects, failing, mutated, target) for suspects in rankings]


def _mean(tried: Sequence[Any]) -> None:
    """The variant: when some change fixed a failing test, each suspect tried scores the
    mean of its spectrum and mutation scores (a function whose changes fixed nothing is
    lowered below one a change fixed)."""
    if any(s.mutation is not None and s.mutation.fixed for s in tried):
        for scored in tried:
            if scored.mutation is not None:
                scored.score = (scored.score + scored.mutation.score) / 2


class _Remembered:
    """A MutantRunner that runs each question once (a second ranking asks it again)."""

    def __init__(self, inner: SandboxMutants) -> None:
        self.inner = inner
        self.answers: dict[Any, list[Mapping[str, bool] | None]] = {}

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
        key = (target, qualname, tuple(sources), tuple(tests), fresh)
        if key not in self.answers:
            self.answers[key] = await self.inner.run_mutants(
                target, base, qualname, sources, tests, timeout, fresh=fresh
            )
        return self.answers[key]


class _NoUndo:
    """A MutantRunner that never tries the pristine module: a change that gives back the
    function as it was (the same syntax tree: `if (x):` is `if x:`) is the corpus's
    artefact (its faults are mutations too), not what a real bug's partial fix looks like.
    In its place runs the unchanged module (no fix)."""

    def __init__(self, inner: SandboxMutants, pristine: str) -> None:
        self.inner, self.pristine = inner, ast.dump(ast.parse(pristine))
        self.dropped = 0

    def _undoes(self, source: str) -> bool:
        return ast.dump(ast.parse(source)) == self.pristine

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
        undone = [self._undoes(source) for source in sources]
        kept = [base if undo else source for source, undo in zip(sources, undone, strict=True)]
        self.dropped += sum(undone)
        return await self.inner.run_mutants(
            target, base, qualname, kept, tests, timeout, fresh=fresh
        )


def _judge(
    suspects: dict[str, list[Suspect]], failing: list[TestReport], mutated: Function, target: Any
) -> Rule:
    rule = Rule()
    marks: list[Function | None] = []
    for report in failing:
        mine = suspects.get(report.test_id) or []
        marks.append((os.path.realpath(mine[0].path), mine[0].qualname) if mine else target(report))
    judge_marks(rule, marks, mutated)
    ranking = merged(suspects, failing)
    rule.ranking = [(s.qualname, round(s.score, 3), s.why) for s in ranking[:5]]
    if ranking:  # else every mark is the old rule's (no test has suspects): so is its top-3
        rule.top3 = mutated in [(os.path.realpath(s.path), s.qualname) for s in ranking[:3]]
    return rule


def has_ranking() -> bool:
    try:
        from oci_lsp.testing import localize
    except ImportError:
        return False
    return hasattr(localize, "locate")


async def localize_project(
    key: str, edits: list[Edit], tmp: Path, formulas: Sequence[str], mutants: bool
) -> list[Outcome]:
    ws = materialize(project(key), tmp / SPACED / key)
    launcher = PytestLauncher()
    sandbox = Sandbox(ws.root, str(ws.python)) if mutants else None
    outcomes: list[Outcome] = []
    try:
        with environment(project_env(ws.project)):
            spec = RunSpec(ws.root, str(ws.python))
            began = time.perf_counter()
            pristine = Collected()
            await run_tests(spec, pristine, launcher)  # warm: bytecode caches
            if pristine.failing:
                raise SystemExit(f"{key}: fails as it is: {pristine.failing[0].test_id}")
            timeout = 6 * (time.perf_counter() - began) + 60
            for edit in edits:
                outcome = await localize_one(ws, edit, launcher, timeout, formulas, sandbox)
                outcomes.append(outcome)
                log(line(outcome))
    finally:
        launcher.close()
        if sandbox is not None:
            await sandbox.close()
    return outcomes


def line(o: Outcome) -> str:
    def said(rule: Rule | None) -> str:
        if rule is None:
            return "-"
        first = rule.marked[0][0] if rule.marked else "nothing"
        return f"{'top1' if rule.top1 else 'top3' if rule.top3 else 'miss'} ({first})"

    return (
        f"  {o.id} [{o.shows}, {o.failing} failing, {o.seconds:.1f}s]"
        f" old {said(o.old)} new {said(o.new)} mutants {said(o.mutants)}"
        f" no-undo {said(o.no_undo)} mean {said(o.mean)} {o.note}"
    )


# -- fixes ----------------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, bytes]:
    """The project's files (its .venv and Python's bytecode caches aside)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not {"__pycache__", ".venv"} & set(p.relative_to(root).parts)
    }


def with_setting(root: Path, localization: str) -> None:
    """tests.localization in the project's pyproject.toml, as a user sets it (`[tool.oci-lsp]`;
    a table pytest does not read, so its own configuration stays as it was)."""
    path = root / "pyproject.toml"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    table = f'\n[tool.oci-lsp.tests]\nlocalization = "{localization}"\n'
    path.write_text(text + table, encoding="utf-8")


def fix_one(edit: Edit, tmp: Path, localization: str) -> tuple[bool, float, str]:
    """(fixed, seconds, what --fix said) for `oci-lsp --fix` on a fresh copy."""
    where = tmp / "fix" / SPACED / f"{edit.id.replace(':', '_').replace('/', '_')}-{localization}"
    ws = materialize(project(edit.project), where)
    with_setting(ws.root, localization)
    pristine = snapshot(ws.root)
    edit.apply(ws.root)
    report = where.parent / f"{where.name}.json"
    start = time.perf_counter()
    done = fix_with_scripted_model(ws, edit, report)
    seconds = time.perf_counter() - start
    fixed = done.returncode == 0 and snapshot(ws.root) == pristine
    groups = json.loads(report.read_text())["groups"] if report.exists() else []
    said = ", ".join(f"{g['function']} {g['status']}" for g in groups) or done.stderr[-300:]
    shutil.rmtree(where, ignore_errors=True)
    return fixed, seconds, said


# -- the report -----------------------------------------------------------------------------------


def rate(hits: int, total: int) -> str:
    return f"{hits}/{total} ({100 * hits / total:.0f}%)" if total else "-"


def report(outcomes: list[Outcome]) -> str:
    out = [
        "| rule | mutations | top-1 | top-1 hidden | top-1 shown | top-3 | innocent marked"
        " per mutation |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {
        "old": "old rule (target_of)",
        "new": f"ranking ({FORMULA})",
        "dstar": "ranking (dstar)",
        "mutants": f"ranking ({FORMULA}) + mutants",
        "no_undo": f"ranking ({FORMULA}) + mutants, no undo",
        "mean": f"ranking ({FORMULA}) + mutants, the mean rule",
    }
    for name, label in labels.items():
        rows = [(o, r) for o in outcomes if (r := getattr(o, name)) is not None]
        if not rows:
            continue
        hidden = [r for o, r in rows if o.shows == "hidden"]
        shown = [r for o, r in rows if o.shows != "hidden"]
        out.append(
            f"| {label} | {len(rows)} | {rate(sum(r.top1 for _, r in rows), len(rows))}"
            f" | {rate(sum(r.top1 for r in hidden), len(hidden))}"
            f" | {rate(sum(r.top1 for r in shown), len(shown))}"
            f" | {rate(sum(r.top3 for _, r in rows), len(rows))}"
            f" | {sum(r.innocent for _, r in rows) / len(rows):.2f} |"
        )
    by_role: dict[str, list[Outcome]] = {}
    for o in outcomes:
        if o.old is not None:
            by_role.setdefault(o.role, []).append(o)
    out += [
        "",
        "| role | mutations | hidden | old top-1 | ranking top-1 | ranking top-3"
        " | + mutants top-1 | + mutants top-3 |",
    ]
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, group in sorted(by_role.items()):
        ranked = [o.new for o in group if o.new is not None]
        mutated = [o.mutants for o in group if o.mutants is not None]
        olds = [o.old for o in group if o.old is not None]
        out.append(
            f"| {name} | {len(group)} | {sum(o.shows == 'hidden' for o in group)}"
            f" | {rate(sum(r.top1 for r in olds), len(olds))}"
            f" | {rate(sum(r.top1 for r in ranked), len(ranked))}"
            f" | {rate(sum(r.top3 for r in ranked), len(ranked))}"
            f" | {rate(sum(r.top1 for r in mutated), len(mutated))}"
            f" | {rate(sum(r.top3 for r in mutated), len(mutated))} |"
        )
    fixes = [o for o in outcomes if o.fix]
    if fixes:
        out += ["", "| --fix with tests.localization | mutations | fixed | hidden fixed |"]
        out.append("|---|---:|---:|---:|")
        for mode in sorted({m for o in fixes for m in o.fix}):
            tried = [o for o in fixes if mode in o.fix]
            hidden = [o for o in tried if o.shows == "hidden"]
            out.append(
                f"| {mode} | {len(tried)} | {rate(sum(o.fix[mode] for o in tried), len(tried))}"
                f" | {rate(sum(o.fix[mode] for o in hidden), len(hidden))} |"
            )
    for name in ("new", "mutants", "no_undo", "mean"):
        misses = [(o, r) for o in outcomes if (r := getattr(o, name)) is not None and not r.top1]
        if misses:
            out += ["", f"Misses (top-1) of {labels[name]}:", ""]
            for o, r in misses:
                top = "; ".join(f"{q} {s:.2f}" for q, s, _ in r.ranking[:4])
                out.append(f"- {o.id} ({o.shows}, {o.failing} failing): {top}")
    return "\n".join(out)


def merge(runs: Iterable[list[dict[str, Any]]]) -> list[Outcome]:
    """Several runs' outcomes as one (localization from one, fixes from another)."""
    by_id: dict[str, Outcome] = {}
    for run in runs:
        for data in run:
            found = Outcome.from_json(data)
            known = by_id.setdefault(found.id, found)
            if known is not found:
                for name in RULES:
                    if getattr(found, name) is not None:
                        setattr(known, name, getattr(found, name))
                if found.old is not None:
                    known.failing, known.seconds, known.note = (
                        found.failing,
                        found.seconds,
                        found.note,
                    )
                known.fix.update(found.fix)
                known.fix_seconds.update(found.fix_seconds)
                known.fix_said.update(found.fix_said)
    return list(by_id.values())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, default=LOCALIZATION_JSON)
    parser.add_argument("--projects", nargs="+", default=[p.key for p in PROJECTS])
    parser.add_argument("--fix-every", type=int, default=3, help="0: no --fix runs")
    parser.add_argument("--fix-modes", nargs="+", default=["off", FORMULA])
    parser.add_argument("--old-only", action="store_true", help="no ranking (no locate run)")
    parser.add_argument("--dstar", action="store_true", help="DStar too (a locate run more)")
    parser.add_argument("--no-mutants", action="store_true", help="spectra only")
    parser.add_argument("--fix-only", action="store_true", help="the --fix runs alone")
    parser.add_argument(
        "--report", type=Path, nargs="+", help="merge these --json outputs and report them"
    )
    parser.add_argument("--only", metavar="TEXT", help="only the mutations whose id contains TEXT")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.report:
        merged_outcomes = merge([json.loads(p.read_text()) for p in args.report])
        print(report(merged_outcomes))
        save_json(args.json, [asdict(o) for o in merged_outcomes])
        return 0
    corpus, _ = load(args.corpus)
    if args.only:
        corpus = [e for e in corpus if args.only in e.id]
    ranking = not args.old_only and has_ranking()
    if not args.old_only and not ranking:
        log("no oci_lsp.testing.localize.locate here: the old rule only")
    formulas = ([FORMULA] + (["dstar"] if args.dstar else [])) if ranking else []
    tmp = Path(tempfile.mkdtemp(prefix="oci-bench-localization-"))
    outcomes: list[Outcome] = []
    started = time.perf_counter()
    try:
        for key in [] if args.fix_only else args.projects:
            edits = [e for e in corpus if e.project == key]
            log(f"{key}: {len(edits)} mutations")
            outcomes += asyncio.run(
                localize_project(key, edits, tmp, formulas, not args.no_mutants)
            )
        if args.fix_every > 0:
            by_id = {o.id: o for o in outcomes}
            # Every Nth of the whole corpus (its pinned order), whichever projects ran.
            chosen = [e for e in corpus[:: args.fix_every] if e.project in args.projects]
            for edit in chosen:
                if edit.id not in by_id:
                    by_id[edit.id] = outcome_of(edit)
                    outcomes.append(by_id[edit.id])
                for mode in args.fix_modes:
                    fixed, seconds, said = fix_one(edit, tmp, mode)
                    by_id[edit.id].fix[mode] = fixed
                    by_id[edit.id].fix_seconds[mode] = round(seconds, 1)
                    by_id[edit.id].fix_said[mode] = said
                    log(
                        f"  fix {edit.id} {mode}: {'fixed' if fixed else 'not fixed'}"
                        f" ({seconds:.0f}s) {said}"
                    )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(report(outcomes))
    print(f"\n{len(outcomes)} mutations in {time.perf_counter() - started:.0f} s")
    save_json(args.json, [asdict(o) for o in outcomes])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
