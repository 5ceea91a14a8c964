"""Benchmark: `oci-lsp --fix` with a model that answers at once, against the test runs it needs.

On the HumanEval workspace with its bugs put in (tests/human_eval_workspace.py; the
syntax-error bug is left out: it is a collection error --fix reports and leaves alone), a
scripted OpenAI-compatible server on 127.0.0.1 answers each request at once with the
problem's canonical solution, so what is measured is everything but the model. Measured,
same machine, one run:

- `oci-lsp --fix` as a subprocess, with --jobs 1 and --jobs 2 (each on a fresh copy);
- direct: the same test invocations with a cold `python -m pytest` each: the suite, each
  group's verification (its failing tests, then its other tests) on a copy with the fix
  written in, the suite again.

Aim (issue 6): the whole run at most 1.5x the direct invocations.

    .venv/bin/python bench/fix_speed.py --json bench/out/fix_speed.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.output import save_json
from tests.human_eval_workspace import Problem, build, canonical_answers, load_problems
from tests.openai_server import ScriptedOpenAIServer


def _pytest(root: Path, *selection: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *selection],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - started


def _fix(root: Path, server: ScriptedOpenAIServer, jobs: int) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "oci_lsp",
            "--fix",
            str(root),
            *server.cli_options(),
            "--jobs",
            str(jobs),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "CI": "1"},
        check=False,
    )
    return time.perf_counter() - started, done.returncode


def _direct(root: Path, broken: list[Problem], rows: dict[int, dict[str, str]]) -> float:
    seconds = _pytest(root)  # the suite
    for p in broken:
        fixed = root / p.source.relative_to(root)
        original = fixed.read_text(encoding="utf-8")
        fixed.write_text(rows[p.task]["prompt"] + rows[p.task]["canonical_solution"])
        seconds += _pytest(root, p.test_id)  # the verification: its failing test first
        fixed.write_text(original)
    for p in broken:  # the fixes in place, the suite once more
        (root / p.source.relative_to(root)).write_text(
            rows[p.task]["prompt"] + rows[p.task]["canonical_solution"]
        )
    return seconds + _pytest(root)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # a plain workspace venv
    base = Path(tempfile.mkdtemp(prefix="oci-bench-fix-"))
    rows = load_problems()
    template = base / "template"
    problems = build(template)
    for p in problems:  # the syntax error stays out: a collection error is not fixed
        if p.bug is not None and p.bug.kind == "syntax":
            p.source.write_text(rows[p.task]["prompt"] + rows[p.task]["canonical_solution"])
    broken = [p for p in problems if p.bug is not None and p.bug.kind != "syntax"]

    reply = canonical_answers(broken, rows)

    times: dict[str, list[float]] = {"direct": [], "jobs1": [], "jobs2": []}
    codes: list[int] = []
    try:
        with ScriptedOpenAIServer(reply) as server:
            for repeat in range(args.repeat):
                for name in times:
                    root = base / f"{name}-{repeat}"
                    shutil.copytree(template, root)
                    if name == "direct":
                        moved = [
                            Problem(
                                p.task,
                                p.entry,
                                root / p.source.relative_to(template),
                                root / p.test.relative_to(template),
                                p.bug,
                            )
                            for p in broken
                        ]
                        times[name].append(_direct(root, moved, rows))
                    else:
                        seconds, code = _fix(root, server, int(name[-1]))
                        times[name].append(seconds)
                        codes.append(code)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    median = {name: statistics.median(values) for name, values in times.items()}
    results = {
        "bugs": len(broken),
        "repeat": args.repeat,
        "cpus": len(os.sched_getaffinity(0)),
        "exit_codes": codes,
        "seconds": median,
        "jobs1_over_direct": median["jobs1"] / median["direct"],
        "jobs2_over_direct": median["jobs2"] / median["direct"],
    }
    print(
        f"HumanEval workspace, {len(broken)} bugs, {args.repeat} runs each, {results['cpus']} CPUs"
    )
    print(f"exit codes of the --fix runs: {sorted(set(codes))}\n")
    print("| what | median s | ratio | aim |")
    print("|---|---|---|---|")
    print(f"| the same test invocations, cold pytest each | {median['direct']:.2f} | 1 | |")
    for jobs in (1, 2):
        ratio = results[f"jobs{jobs}_over_direct"]
        print(
            f"| oci-lsp --fix --jobs {jobs} | {median[f'jobs{jobs}']:.2f} | {ratio:.2f} | <= 1.5 |"
        )
    save_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
