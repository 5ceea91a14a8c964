"""Benchmark: what recording per-test line spectra costs (issue 15), on the corpus projects.

For each project of tests/corpus (materialized with its own `.venv`, its own options), through
our runner with a warm standby, as a save's run goes:

  full       the whole suite unrecorded, and recorded (RunSpec(record=True)): the overhead
             always-on recording would add to every run (medians of --repeat, the kinds
             alternated so that drift on the machine hits both; a warm-up turn first), in
             wall seconds and in CPU seconds of the run's processes.
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
import resource
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

KINDS = ("full", "full_recorded", "full_mutated", "locate", "locate_plain")


@dataclass
class Overhead:
    project: str
    python: str = ""
    tests: int = 0
    recorded_tests: int = 0  # tests with a spectrum in the recorded run
    lines: int = 0  # (test, line) pairs recorded over the suite
    mutation: str = ""
    locate_files: int = 0
    locate_tests: int = 0
    # Per kind of run (KINDS): wall seconds, and CPU seconds of the run's processes (less
    # disturbed by the other work on a shared machine).
    wall: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    cpu: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})

    def summary(self) -> dict[str, float | None]:
        found: dict[str, float | None] = {}
        for clock, runs in (("wall", self.wall), ("cpu", self.cpu)):
            m = {kind: median(times) for kind, times in runs.items()}
            found.update({f"{clock} {kind}": value for kind, value in m.items()})
            found[f"{clock} recorded/full"] = ratio(m["full_recorded"], m["full"])
            found[f"{clock} locate/full_mutated"] = ratio(m["locate"], m["full_mutated"])
            found[f"{clock} locate/locate_plain"] = ratio(m["locate"], m["locate_plain"])
        return found


def children_cpu() -> float:
    """CPU seconds of this process's children that ended (a run's supervisor and its pytest,
    which the supervisor waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def run(spec: RunSpec, launcher: PytestLauncher) -> tuple[float, float, Collected]:
    collected = Collected()
    cpu, start = children_cpu(), time.perf_counter()
    result = await run_tests(spec, collected, launcher)
    seconds, cpu = time.perf_counter() - start, children_cpu() - cpu
    if result.status != "completed" or not collected.reports:
        raise RuntimeError(f"{spec.root}: {result.status}: {result.message}")
    await asyncio.sleep(0.5)  # the next standby interpreter starts, as between saves
    return seconds, cpu, collected


async def alternate(
    found: Overhead, runs: dict[str, RunSpec], launcher: PytestLauncher, repeat: int
) -> dict[str, Collected]:
    """Each run repeat + 1 times, in turns; the first turn (warm-up) not counted."""
    last: dict[str, Collected] = {}
    for turn in range(repeat + 1):
        for kind, spec in runs.items():
            seconds, cpu, last[kind] = await run(spec, launcher)
            if turn:
                found.wall[kind].append(seconds)
                found.cpu[kind].append(cpu)
    return last


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
            full = await alternate(
                found,
                {
                    "full": RunSpec(ws.root, python),
                    "full_recorded": RunSpec(ws.root, python, record=True),
                },
                launcher,
                repeat,
            )
            found.tests = len(full["full"].reports)
            spectra = full["full_recorded"].spectra
            found.recorded_tests = len(spectra)
            found.lines = sum(len(lines) for s in spectra.values() for lines in s.values())
            edit.apply(ws.root)
            files = sorted({str(ws.root / node.split("::", 1)[0]) for node in edit.failing})
            found.locate_files = len(files)
            located = await alternate(
                found,
                {
                    "full_mutated": RunSpec(ws.root, python),
                    "locate": RunSpec(ws.root, python, selection=files, record=True),
                    "locate_plain": RunSpec(ws.root, python, selection=files),
                },
                launcher,
                repeat,
            )
            found.locate_tests = len(located["locate"].reports)
    finally:
        launcher.close()
    return found


def cell(value: float | None, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.2f}{suffix}"


def report(rows: list[Overhead]) -> str:
    out = [
        "| project | Python | tests | lines recorded | full | full, recorded | recorded / full"
        " (CPU) | locate files (tests) | full, mutated | locate run | locate / full (CPU)"
        " | locate unrecorded | locate recorded / unrecorded (CPU) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        m = r.summary()
        out.append(
            f"| {r.project} | {r.python.removeprefix('Python ')} | {r.tests} | {r.lines:,}"
            f" | {cell(m['wall full'])} | {cell(m['wall full_recorded'])}"
            f" | {cell(m['wall recorded/full'], 'x')} ({cell(m['cpu recorded/full'], 'x')})"
            f" | {r.locate_files} ({r.locate_tests}) | {cell(m['wall full_mutated'])}"
            f" | {cell(m['wall locate'])} | {cell(m['wall locate/full_mutated'])}"
            f" ({cell(m['cpu locate/full_mutated'])}) | {cell(m['wall locate_plain'])}"
            f" | {cell(m['wall locate/locate_plain'], 'x')}"
            f" ({cell(m['cpu locate/locate_plain'], 'x')}) |"
        )
    out.append("")
    for clock in ("wall", "cpu"):
        overheads = [r.summary()[f"{clock} recorded/full"] for r in rows]
        locates = [r.summary()[f"{clock} locate/full_mutated"] for r in rows]
        total = sum(r.summary()[f"{clock} full"] or 0 for r in rows)
        recorded = sum(r.summary()[f"{clock} full_recorded"] or 0 for r in rows)
        out += [
            f"{clock}: always-on recording, full suite: median {cell(median(overheads), 'x')}"
            f" over projects, {cell(ratio(recorded, total), 'x')} of the summed suites"
            f" (aim <= 1.10x); the locate run after a failure / the full run: median"
            f" {cell(median(locates))}",
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
