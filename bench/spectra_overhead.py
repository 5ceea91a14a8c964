"""Benchmark: what recording per-test line spectra costs (issue 15), on the corpus projects.

For each project of tests/corpus (materialized with its own `.venv`, its own options), through
our runner with a warm standby, as a save's run goes:

  full       the whole suite unrecorded, and recorded (RunSpec(record=True)): the overhead
             always-on recording would add to every run (medians of --repeat, the two kinds
             alternated so that drift on the machine hits both; a warm-up pair first).
  locate     with the project's first pinned mutation in: the whole suite unrecorded (the run
             on save that finds the failures), and the locate run that follows it, recorded,
             on the test files of the failing tests only: what localization adds after a
             failure; also that selection unrecorded, for the recording's share of it.

The interpreter is the corpus venvs' (ours: Python 3.11, sys.settrace), or `--base PYTHON`
(pyenv's 3.12.1: sys.monitoring), whose venvs are built once from PyPI. Timings vary with
what else runs on the machine: run it on a quiet one.

    .venv/bin/python bench/spectra_overhead.py --json bench/out/spectra_overhead.json
    .venv/bin/python bench/spectra_overhead.py --base /root/.pyenv/versions/3.12.1/bin/python
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpus_bench import environment, median, ratio
from output import save_json

from oci_lsp.testing.results import Collected
from oci_lsp.testing.runner import PytestLauncher, RunSpec, run_tests
from tests.corpus.mutations import Edit, load
from tests.corpus.projects import PROJECTS, project
from tests.corpus.workspace import Workspace, materialize, project_env


@dataclass
class Overhead:
    project: str
    python: str = ""
    tests: int = 0
    full: list[float] = field(default_factory=list)
    full_recorded: list[float] = field(default_factory=list)
    recorded_tests: int = 0  # tests with a spectrum in the recorded run
    lines: int = 0  # (test, line) pairs recorded over the suite
    mutation: str = ""
    locate_files: int = 0
    locate_tests: int = 0
    full_mutated: list[float] = field(default_factory=list)
    locate: list[float] = field(default_factory=list)  # recorded, the failing tests' files
    locate_plain: list[float] = field(default_factory=list)  # the same files, unrecorded

    def summary(self) -> dict[str, float | None]:
        full, recorded = median(self.full), median(self.full_recorded)
        mutated, locate = median(self.full_mutated), median(self.locate)
        return {
            "full": full,
            "full_recorded": recorded,
            "recorded/full": ratio(recorded, full),
            "full_mutated": mutated,
            "locate": locate,
            "locate/full_mutated": ratio(locate, mutated),
            "locate_plain": median(self.locate_plain),
            "locate/locate_plain": ratio(locate, median(self.locate_plain)),
        }


async def run(spec: RunSpec, launcher: PytestLauncher) -> tuple[float, Collected]:
    collected = Collected()
    start = time.perf_counter()
    result = await run_tests(spec, collected, launcher)
    seconds = time.perf_counter() - start
    if result.status != "completed" or not collected.reports:
        raise RuntimeError(f"{spec.root}: {result.status}: {result.message}")
    await asyncio.sleep(0.5)  # the next standby interpreter starts, as between saves
    return seconds, collected


async def alternate(
    specs: Sequence[RunSpec], launcher: PytestLauncher, repeat: int
) -> list[tuple[list[float], Collected]]:
    """Each spec run repeat + 1 times, in turns; the first turn (warm-up) not counted."""
    found: list[tuple[list[float], Collected]] = [([], Collected()) for _ in specs]
    for turn in range(repeat + 1):
        for (times, _), spec, n in zip(found, specs, range(len(specs)), strict=True):
            seconds, collected = await run(spec, launcher)
            if turn:
                times.append(seconds)
            found[n] = (times, collected)
    return found


def first_failing(key: str, mutations: Sequence[Edit]) -> Edit:
    return next(m for m in mutations if m.project == key and m.failing)


async def measure(key: str, edit: Edit, tmp: Path, repeat: int, base: str | None) -> Overhead:
    ws: Workspace = materialize(project(key), tmp / key, base)
    python = str(ws.python)
    version = subprocess.run([python, "--version"], capture_output=True, text=True)
    found = Overhead(key, python=version.stdout.strip(), mutation=edit.id)
    launcher = PytestLauncher()
    try:
        with environment(project_env(ws.project)):
            plain, recorded = await alternate(
                [RunSpec(ws.root, python), RunSpec(ws.root, python, record=True)],
                launcher,
                repeat,
            )
            found.full, found.full_recorded = plain[0], recorded[0]
            found.tests = len(plain[1].reports)
            found.recorded_tests = len(recorded[1].spectra)
            found.lines = sum(
                len(lines)
                for spectrum in recorded[1].spectra.values()
                for lines in spectrum.values()
            )
            edit.apply(ws.root)
            files = sorted({str(ws.root / node.split("::", 1)[0]) for node in edit.failing})
            found.locate_files = len(files)
            mutated, locate, locate_plain = await alternate(
                [
                    RunSpec(ws.root, python),
                    RunSpec(ws.root, python, selection=files, record=True),
                    RunSpec(ws.root, python, selection=files),
                ],
                launcher,
                repeat,
            )
            found.full_mutated, found.locate = mutated[0], locate[0]
            found.locate_plain = locate_plain[0]
            found.locate_tests = len(locate[1].reports)
    finally:
        launcher.close()
    return found


def cell(value: float | None, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.2f}{suffix}"


def report(rows: list[Overhead]) -> str:
    out = [
        "| project | Python | tests | full | full, recorded | recorded / full | lines recorded"
        " | locate files (tests) | full, mutated | locate run | locate / full"
        " | locate unrecorded | recording's share of locate |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        m = r.summary()
        out.append(
            f"| {r.project} | {r.python.removeprefix('Python ')} | {r.tests} | {cell(m['full'])}"
            f" | {cell(m['full_recorded'])} | {cell(m['recorded/full'], 'x')} | {r.lines:,}"
            f" | {r.locate_files} ({r.locate_tests}) | {cell(m['full_mutated'])}"
            f" | {cell(m['locate'])} | {cell(m['locate/full_mutated'])}"
            f" | {cell(m['locate_plain'])} | {cell(m['locate/locate_plain'], 'x')} |"
        )
    overheads = [r.summary()["recorded/full"] for r in rows]
    locates = [r.summary()["locate/full_mutated"] for r in rows]
    total = sum(median(r.full) or 0 for r in rows)
    total_recorded = sum(median(r.full_recorded) or 0 for r in rows)
    out += [
        "",
        f"always-on recording, full suite: median {cell(median(overheads), 'x')} over projects,"
        f" {cell(ratio(total_recorded, total), 'x')} of the summed suites (aim <= 1.10x)",
        f"locate run after a failure / the full run: median {cell(median(locates))}",
    ]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--projects", nargs="+", default=[p.key for p in PROJECTS])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--base", help="another Python for the projects' venvs (pyenv's 3.12.1)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    mutations, _ = load()
    tmp = Path(tempfile.mkdtemp(prefix="oci-spectra-bench-"))
    rows = []
    for key in args.projects:
        print(f"{key}", file=sys.stderr, flush=True)
        edit = first_failing(key, mutations)
        rows.append(asyncio.run(measure(key, edit, tmp, args.repeat, args.base)))
    print(report(rows))
    save_json(args.json, [{**asdict(r), "summary": r.summary()} for r in rows])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
