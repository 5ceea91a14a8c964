"""Unit tests of `oci-lsp eval`'s logic: the problems as read, the state, the differential check.
The protocol end to end is tests/test_eval_e2e.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oci_lsp.code.functions import find_function
from oci_lsp.code.stubs import stub_in
from oci_lsp.evaluate.benchmarks import DataError, load_benchmark, module_name
from oci_lsp.evaluate.differential import check_outputs, matches, mbpp_inputs
from oci_lsp.evaluate.state import EvalState


def test_every_human_eval_problem_is_a_stub_to_write_with_its_check() -> None:
    benchmark = load_benchmark("humaneval", False, None)
    assert [p.task_id for p in benchmark.problems] == [f"HumanEval/{i}" for i in range(164)]
    for problem in benchmark.problems:
        location = find_function(problem.source, problem.entry)
        assert location is not None, problem.task_id
        stub = stub_in(problem.source, location.def_line)
        assert stub is not None and stub.kind == "docstring", problem.task_id
        assert f"from {problem.module} import {problem.entry}" in problem.test
        assert problem.test.rstrip().endswith(f"check({problem.entry})")
    # A helper of the prompt that `check` uses is imported beside the entry point.
    assert "import decode_cyclic, encode_cyclic" in benchmark.problems[38].test
    assert benchmark.paper == "humaneval" and benchmark.label == "HumanEval"


def test_module_names_follow_the_task_ids() -> None:
    assert module_name("HumanEval/7") == "humaneval_007"
    assert module_name("Mbpp/602") == "mbpp_602"
    assert module_name("mbpp/11") == "mbpp_011"
    assert module_name("odd id!") == "task_odd_id"


def test_a_file_of_no_known_format_or_the_wrong_one_for_plus_is_refused(tmp_path: Path) -> None:
    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({"question": "?"}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="in no format known here"):
        load_benchmark("mbpp", False, odd)
    mbpp = tmp_path / "mbpp.jsonl"
    row = {
        "task_id": 1,
        "text": "t",
        "code": "def f(x):\n    return x\n",
        "test_list": ["assert f(1) == 1"],
    }
    mbpp.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="--plus needs EvalPlus's data"):
        load_benchmark("mbpp", True, mbpp)
    (problem,) = load_benchmark("mbpp", False, mbpp).problems
    assert problem.source == 'def f(x):\n    """\n    t\n    assert f(1) == 1\n    """\n'


def test_a_partial_last_line_of_a_killed_run_is_dropped_and_cut(tmp_path: Path) -> None:
    state = EvalState(tmp_path)
    state.append({"task_id": "HumanEval/0", "passed_round": 0, "rounds": []})
    with open(state.path, "ab") as handle:
        handle.write(b'{"task_id": "HumanEval/1", "passed_ro')  # killed mid-line
    assert list(state.finished()) == ["HumanEval/0"]
    state._cut_partial_line()  # what opening the state does
    state.append({"task_id": "HumanEval/2", "passed_round": None, "rounds": []})
    assert list(state.finished()) == ["HumanEval/0", "HumanEval/2"]
    assert state.path.read_bytes().count(b"\n") == 2


def test_evalplus_comparisons() -> None:
    assert matches("mbpp", "similar_elements", [], [5, 4], (4, 5), 0)  # compared as sets
    assert not matches("mbpp", "other", [], [5, 4], (4, 5), 0)
    assert matches("humaneval", "f", [], 0.1 + 0.2, 0.3, 0)  # floats: atol 1e-6 at least
    assert not matches("humaneval", "f", [], 0.31, 0.3, 0)
    assert matches("humaneval", "f", [], [1.0, 2.0000001], [1.0, 2.0], 1e-6)
    assert not matches("humaneval", "f", [], [1.0], [1.0, 2.0], 1e-6)
    assert matches("mbpp", "check_str", [], "a match object", True, 0)  # "not None"
    assert matches("humaneval", "find_zero", [[-6, 11, -6, 1]], 1.0, 99.0, 1e-4)  # a root
    assert mbpp_inputs(2, [[[1, 2], [3]]]) == [[(1, 2), (3,)]]


def test_a_wrong_output_fails_with_the_input_and_both_outputs() -> None:
    with pytest.raises(AssertionError) as failure:
        check_outputs(lambda n: n, lambda n: n * 2, [[1], [3]], dataset="mbpp", entry="f", atol=0)
    assert str(failure.value) == (
        "The results aren't as expected.\nInput: f(1)\nExpected Output: 2\nActual Output: 1"
    )
    check_outputs(abs, abs, [[-1], [2]], dataset="mbpp", entry="f", atol=0)  # passes
