"""Benchmark: verifying candidates in the sandbox against running the same tests directly.

On a workspace built from HumanEval problems with bugs put in (tests/human_eval_workspace.py),
each buggy problem's canonical solution is the candidate. Measured, same machine, one run:

- direct: `python -m pytest -q -p no:cacheprovider TEST` on a copy of the workspace with the
  candidate written in (what running the tests by hand costs);
- a verification round of 1 candidate (`Sandbox.run`), and of 4 candidates
  (`Sandbox.run_round`, the tests collected once; distinct texts, all correct, so every one
  runs every test: the worst case), as the refinement loop runs them, the worker warm;
- isolation set-up (request to the candidate's pytest starting) on workspaces of 20 and of
  20,000 files.

Aims (issue 4): 4 candidates <= 1.6x one; one <= direct; set-up < 50 ms at 20,000 files.

    .venv/bin/python bench/verify_speed.py --repeat 5 --json bench/out/verify_speed.json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.output import save_json
from oci_lsp.refine.isolation import CandidateRun, Sandbox
from tests.human_eval_workspace import build, load_problems


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _direct(root: Path, test_id: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test_id],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - started


async def _round(
    sandbox: Sandbox, runs: list[CandidateRun], base: str, qualname: str
) -> tuple[float, list[str]]:
    """A verification round as the refinement loop runs it."""
    started = time.perf_counter()
    if len(runs) == 1:
        outcomes = [await sandbox.run(runs[0])]
    else:
        outcomes = await sandbox.run_round(runs, base, qualname)
    return time.perf_counter() - started, [o.verdict for o in outcomes]


def _filler(root: Path, files: int) -> None:
    """A workspace of `files` Python files: a calc module, its test, the rest filler."""
    (root / "tests").mkdir(parents=True)
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n", encoding="utf-8")
    (root / "tests" / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n", encoding="utf-8"
    )
    for i in range(files - 2):
        package = root / "pkg" / f"p{i // 500:03d}"
        package.mkdir(parents=True, exist_ok=True)
        (package / f"m{i:05d}.py").write_text(f"VALUE = {i}\n", encoding="utf-8")


async def _setup_times(base: Path, files: int, repeat: int) -> dict[str, Any]:
    root = base / f"files-{files}"
    _filler(root, files)
    sandbox = Sandbox(root, sys.executable)
    await sandbox.start()
    run = CandidateRun(
        root / "calc.py", "def add(a, b):\n    return a + b\n", ["tests/test_calc.py"]
    )
    setups: list[float] = []
    walls: list[float] = []
    try:
        await sandbox.run(run)  # warm-up
        for _ in range(repeat * 3):
            started = time.perf_counter()
            outcome = await sandbox.run(run)
            walls.append(time.perf_counter() - started)
            assert outcome.verdict == "passed", outcome
            if outcome.setup_seconds is not None:
                setups.append(outcome.setup_seconds)
    finally:
        await sandbox.close()
    return {"files": files, "setup_ms": 1000 * _median(setups), "round_s": _median(walls)}


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds per problem")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--plugin-autoload",
        action="store_true",
        help="let this venv's pytest plugins load, as in a dev venv (off: a plain workspace)",
    )
    args = parser.parse_args()
    if not args.plugin_autoload:
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    base = Path(tempfile.mkdtemp(prefix="oci-bench-verify-"))
    try:
        root = base / "he"
        problems = [p for p in build(root) if p.bug is not None and p.bug.kind != "syntax"]
        rows = load_problems()
        direct_root = base / "he-direct"
        shutil.copytree(root, direct_root)
        candidates = {}
        for p in problems:
            row = rows[p.task]
            candidates[p.task] = row["prompt"] + row["canonical_solution"]
            (direct_root / p.source.relative_to(root)).write_text(
                candidates[p.task], encoding="utf-8"
            )
        sandbox = Sandbox(root, sys.executable)
        await sandbox.start()
        direct: list[float] = []
        one: list[float] = []
        four: list[float] = []
        try:
            for p in problems:  # warm-up: first imports, the OS's caches
                _direct(direct_root, p.test_id)
                await _round(
                    sandbox,
                    [CandidateRun(p.source, candidates[p.task], [p.test_id])],
                    p.source.read_text(encoding="utf-8"),
                    p.entry,
                )
            for _ in range(args.repeat):
                for p in problems:
                    direct.append(_direct(direct_root, p.test_id))
                    runs = [
                        CandidateRun(
                            p.source, candidates[p.task] + f"\n# variant {i}\n", [p.test_id]
                        )
                        for i in range(4)
                    ]
                    original = p.source.read_text(encoding="utf-8")
                    seconds, verdicts = await _round(sandbox, runs[:1], original, p.entry)
                    assert verdicts == ["passed"], (p.task, verdicts)
                    one.append(seconds)
                    seconds, verdicts = await _round(sandbox, runs, original, p.entry)
                    assert verdicts == ["passed"] * 4, (p.task, verdicts)
                    four.append(seconds)
        finally:
            await sandbox.close()
        small = await _setup_times(base, 20, args.repeat)
        large = await _setup_times(base, 20_000, args.repeat)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    results: dict[str, Any] = {
        "problems": [p.task for p in problems],
        "repeat": args.repeat,
        "plugin_autoload": args.plugin_autoload,
        "cpus": len(os.sched_getaffinity(0)),
        "direct_s": _median(direct),
        "one_s": _median(one),
        "four_s": _median(four),
        "one_over_direct": _median(one) / _median(direct),
        "four_over_one": _median(four) / _median(one),
        "setup": [small, large],
    }
    print(f"{len(problems)} HumanEval problems with a bug, {args.repeat} rounds each,")
    print(f"{results['cpus']} CPUs, plugin autoload {'on' if args.plugin_autoload else 'off'}\n")
    print("| what | median s | ratio | aim |")
    print("|---|---|---|---|")
    print(f"| tests run directly (cold pytest) | {results['direct_s']:.3f} | 1 | |")
    print(
        f"| verification round, 1 candidate | {results['one_s']:.3f} |"
        f" {results['one_over_direct']:.2f} of direct | <= 1 |"
    )
    print(
        f"| verification round, 4 candidates | {results['four_s']:.3f} |"
        f" {results['four_over_one']:.2f} of one | <= 1.6 |"
    )
    print("\n| workspace files | isolation set-up ms (median) | round of 1 s | aim |")
    print("|---|---|---|---|")
    for row in (small, large):
        print(f"| {row['files']:,} | {row['setup_ms']:.1f} | {row['round_s']:.3f} | < 50 ms |")
    save_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
