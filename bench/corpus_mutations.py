"""Pin the corpus's seeded mutations and stubs: tests/corpus/mutations.json.

For each corpus project (tests/corpus/projects.py): lay it out with its venv, run its suite
with plain pytest (it must pass), then try mutations of its own functions in a fixed
pseudo-random order (seeded by the project's name and version; kinds taken in turn, one per
function) and keep a mutation only when plain pytest then fails at least one test, collects
every file, and finishes. Each kept one records the tests that failed and where the fault
shows (its doctest, a traceback frame in the function, the failing assert's call, or
hidden). Stubs (body replaced by `...`) are kept the same way. The same list then serves the
end-to-end tests and the benchmark.

    .venv/bin/python bench/corpus_mutations.py                 # all projects, ~15 min here
    .venv/bin/python bench/corpus_mutations.py --projects isodate parse --per-project 6

The localization corpus (issue 15) is pinned the same way into its own file, with the
functions whose fault a traceback rarely shows taken first (`--order roles`: properties,
`__init__`, operator and other dunders, helpers, the rest, in turn) and a seed of its own:

    .venv/bin/python bench/corpus_mutations.py --out tests/corpus/localization.json \
        --order roles --per-project 12 --stubs 0 --max-tries 45 --seed-suffix localization
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.corpus import mutations as mut
from tests.corpus.plain import PlainRun, run_pytest
from tests.corpus.projects import PROJECTS, Project, project
from tests.corpus.workspace import Workspace, materialize


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def interleaved(edits: Sequence[mut.Edit], seed: str) -> list[mut.Edit]:
    """The edits in a fixed pseudo-random order, kinds taken in turn."""
    rng = random.Random(seed)
    by_kind: dict[str, list[mut.Edit]] = {}
    for edit in edits:
        by_kind.setdefault(edit.kind, []).append(edit)
    for group in by_kind.values():
        rng.shuffle(group)
    order: list[mut.Edit] = []
    while any(by_kind.values()):
        for kind in sorted(by_kind):
            if by_kind[kind]:
                order.append(by_kind[kind].pop())
    return order


def by_roles(edits: Sequence[mut.Edit], seed: str) -> list[mut.Edit]:
    """The edits in a fixed pseudo-random order, roles taken in turn, kinds in turn within
    each role."""
    groups: dict[str, list[mut.Edit]] = {}
    for edit in edits:
        groups.setdefault(mut.role(edit), []).append(edit)
    queues = {r: interleaved(group, f"{seed}-{r}") for r, group in sorted(groups.items())}
    order: list[mut.Edit] = []
    while any(queues.values()):
        for queue in queues.values():
            if queue:
                order.append(queue.pop(0))
    return order


def judge(ws: Workspace, edit: mut.Edit, passing: set[str], timeout: float) -> mut.Edit | None:
    """The edit with its failing tests and where it shows, or None when it is not kept."""
    edit.apply(ws.root)
    try:
        run: PlainRun = run_pytest(ws, timeout=timeout)
    finally:
        edit.revert(ws.root)
    failing = run.failed
    if run.exit_code != 1 or not failing:
        return None  # survived, crashed pytest, or ran out of time
    if any("::" not in node or node not in passing for node in failing):
        return None  # a collection error, or a test that plain pytest did not pass before
    reports = {node: run.outcomes[node].text for node in failing}
    shows, evidence = mut.shows(edit, reports)
    return replace(edit, failing=tuple(failing), shows=shows, evidence=evidence)


def pin_project(
    proj: Project,
    root: Path,
    per_project: int,
    stubs: int,
    max_tries: int,
    order: str = "kinds",
    seed_suffix: str = "",
) -> tuple[list[mut.Edit], list[mut.Edit], PlainRun]:
    ws = materialize(proj, root / proj.key)
    run_pytest(ws)  # warm-up: .pyc files, so the timed runs compare
    pristine = run_pytest(ws)
    if not pristine.ok:
        raise SystemExit(
            f"{proj.key}: the pristine suite does not pass:\n{pristine.output[-3000:]}"
        )
    passing = set(pristine.passed)
    timeout = 4 * pristine.seconds + 30
    sources = {p: p.read_bytes() for p in mut.source_files(ws.root, proj.code)}
    seed = f"{proj.name}=={proj.version}" + (f"-{seed_suffix}" if seed_suffix else "")
    ordered = by_roles if order == "roles" else interleaved

    kept: list[mut.Edit] = []
    used: set[tuple[str, str]] = set()
    tries = 0
    for edit in ordered(mut.candidates(ws.root, proj.key, proj.code), seed):
        if len(kept) >= per_project or tries >= max_tries:
            break
        if (edit.file, edit.function) in used:
            continue
        tries += 1
        judged = judge(ws, edit, passing, timeout)
        if judged is not None:
            kept.append(judged)
            used.add((edit.file, edit.function))
            failing = len(judged.failing)
            log(f"  kept {judged.kind:11} {judged.function} ({failing} failing, {judged.shows})")
        else:
            log(f"  dropped {edit.kind:8} {edit.function}")

    kept_stubs: list[mut.Edit] = []
    stub_order = interleaved(mut.stub_candidates(ws.root, proj.key, proj.code), seed + "-stubs")
    for edit in stub_order[:max_tries]:
        if len(kept_stubs) >= stubs:
            break
        judged = judge(ws, edit, passing, timeout)
        if judged is not None:
            kept_stubs.append(judged)
            log(f"  stub {judged.function} ({len(judged.failing)} failing, {judged.shows})")

    changed = [p for p, data in sources.items() if p.read_bytes() != data]
    if changed:
        raise SystemExit(f"{proj.key}: files not restored: {changed}")
    return kept, kept_stubs, pristine


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--projects", nargs="+", default=[p.key for p in PROJECTS])
    parser.add_argument("--per-project", type=int, default=6)
    parser.add_argument("--stubs", type=int, default=2)
    parser.add_argument("--max-tries", type=int, default=30)
    parser.add_argument("--out", type=Path, default=mut.MUTATIONS_JSON)
    parser.add_argument(
        "--order",
        choices=("kinds", "roles"),
        default="kinds",
        help="kinds: mutation kinds in turn (mutations.json); roles: properties, __init__,"
        " operator dunders, other dunders, helpers and plain functions in turn",
    )
    parser.add_argument("--seed-suffix", default="", help="a seed of its own (another list)")
    parser.add_argument("--keep", action="store_true", help="keep the workspaces")
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="oci-corpus-mutations-")) / "corpus ü"
    all_mutations: list[mut.Edit] = []
    all_stubs: list[mut.Edit] = []
    if args.out.exists():  # other projects' entries stay as they were
        old_mutations, old_stubs = mut.load(args.out)
        all_mutations = [m for m in old_mutations if m.project not in args.projects]
        all_stubs = [s for s in old_stubs if s.project not in args.projects]
    rows = []
    started = time.perf_counter()
    try:
        for key in args.projects:
            proj = project(key)
            log(f"{key} {proj.version}")
            kept, stubs, pristine = pin_project(
                proj,
                root,
                args.per_project,
                args.stubs,
                args.max_tries,
                args.order,
                args.seed_suffix,
            )
            all_mutations += kept
            all_stubs += stubs
            shows = Counter(m.shows for m in kept)
            rows.append(
                f"| {key} | {pristine.summary()} | {len(kept)} | {len(stubs)}"
                f" | {', '.join(f'{k} {n}' for k, n in sorted(shows.items()))} |"
            )
            order = {p.key: i for i, p in enumerate(PROJECTS)}
            all_mutations.sort(key=lambda m: (order[m.project], m.file, m.line, m.kind))
            all_stubs.sort(key=lambda m: (order[m.project], m.file, m.line))
            mut.dump(all_mutations, all_stubs, args.out)  # after each project: progress kept
    finally:
        if not args.keep:
            shutil.rmtree(root.parent, ignore_errors=True)
    print("| project | pristine plain pytest | mutations | stubs | where they show |")
    print("|---|---|---:|---:|---|")
    print("\n".join(rows))
    print(
        f"\n{len(all_mutations)} mutations, {len(all_stubs)} stubs in {args.out}"
        f" ({time.perf_counter() - started:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
