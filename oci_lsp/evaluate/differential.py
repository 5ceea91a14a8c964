"""EvalPlus's differential test of a candidate, run inside the sandbox (stdlib and numpy only).

This file is copied into each evaluation workspace as `oci_eval_check.py` and imported by the
test modules of EvalPlus problems (HumanEval+, MBPP+); it imports nothing of oci-lsp. For each
input, the benchmark's reference solution gives the expected output (as EvalPlus computes its
ground truth: the canonical solution on a deep copy of the input), then the candidate runs on
another copy under a time limit of max(1 s, 4x the reference's time) (EvalPlus's defaults), and
the outputs are compared as `evalplus.eval.unsafe_execute` compares them: exact equality, the
special oracles of a few tasks, and `numpy.allclose` (rtol 1e-7) for floats with `atol`.

A mismatch fails with the paper's feedback form: `The results aren't as expected.` then the
input, the expected output and the actual one.
"""

from __future__ import annotations

import copy
import math
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

MIN_TIME_LIMIT = 1.0  # evalplus.config.DEFAULT_MIN_TIME_LIMIT
TIME_LIMIT_FACTOR = 4.0  # evalplus.config.DEFAULT_GT_TIME_LIMIT_FACTOR
_SHOWN = 300  # characters of one value in a failure message

# evalplus/eval/_special_oracle.py: tasks whose outputs are compared as sets, or only as
# "not None" (their outputs cannot be serialized).
MBPP_OUTPUT_SET_EQ_TASKS = frozenset(
    {
        "similar_elements",
        "find_char_long",
        "common_in_nested_lists",
        "extract_singly",
        "larg_nnum",
        "intersection_array",
        "find_dissimilar",
        "Diff",
    }
)
MBPP_OUTPUT_NOT_NONE_TASKS = frozenset({"check_str", "text_match_three", "text_starta_endb"})


def _surface_area(base_edge: float, height: float) -> float:
    """The oracle of Mbpp/581: the height is the perpendicular one."""
    slant_height = math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 4 * (base_edge * slant_height) / 2)


def _digit_distance_nums(num1: int, num2: int) -> int:
    """The oracle of Mbpp/558: both numbers padded with zeros to the same length."""
    a, b = str(num1), str(num2)
    width = max(len(a), len(b))
    return sum(abs(int(x) - int(y)) for x, y in zip(a.zfill(width), b.zfill(width), strict=True))


def _poly(xs: list[float], x: float) -> float:
    """The oracle of HumanEval/32: the polynomial with coefficients xs at x."""
    return sum(coeff * math.pow(x, i) for i, coeff in enumerate(xs))


_TUPLE_ARGUMENTS = frozenset(
    {2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630}
    | {726, 740, 744, 809}
)


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(item) for item in value)
    return value


def mbpp_inputs(task: int, inputs: list[Any]) -> list[Any]:
    """MBPP+'s inputs as its tasks take them: JSON has lists where they want tuples, sets or
    complex numbers (evalplus.data.mbpp.mbpp_deserialize_inputs, task by task)."""
    if task in _TUPLE_ARGUMENTS:
        return [[tuple(lst) for lst in inp] for inp in inputs]
    if task in (63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780):
        return [[[tuple(lst) for lst in group] for group in inp] for inp in inputs]
    if task in (75, 413, 444, 753):
        return [[[tuple(lst) for lst in inp[0]], inp[1]] for inp in inputs]
    if task in (106, 750):
        return [[inp[0], tuple(inp[1])] for inp in inputs]
    if task == 115:
        return [
            [[set(item) if isinstance(item, list) and item else {} for item in inp[0]]]
            for inp in inputs
        ]
    if task == 124:
        return [(float(inp[0]), complex(inp[1])) for inp in inputs]
    if task in (250, 405, 446, 617, 720, 763, 808):
        return [[tuple(inp[0]), inp[1]] for inp in inputs]
    if task in (259, 401, 445):
        nested = [[[tuple(lst) for lst in group] for group in inp] for inp in inputs]
        return [[tuple(lst) for lst in inp] for inp in nested]
    if task == 278:
        flat = [
            [[tuple(item) if isinstance(item, list) else item for item in inp[0]]] for inp in inputs
        ]
        return [[tuple(lst) for lst in inp] for inp in flat]
    if task == 307:
        return [[tuple(inp[0]), inp[1], inp[2]] for inp in inputs]
    if task == 722:
        return [[{k: tuple(v) for k, v in inp[0].items()}, *inp[1:]] for inp in inputs]
    if task == 252:
        return [[complex(inp[0])] for inp in inputs]
    if task in (580, 615, 791):
        return [_tuples(inp) for inp in inputs]
    return inputs


def is_floats(value: Any) -> bool:
    """A float, or a non-empty list or tuple of floats (evalplus.eval.is_floats)."""
    if isinstance(value, float):
        return True
    if isinstance(value, (list, tuple)) and value:
        return all(isinstance(item, float) for item in value)
    return type(value).__name__ == "ndarray" and str(getattr(value, "dtype", "")) in (
        "float64",
        "float32",
    )


class TimeLimit(Exception):
    """The candidate ran longer than its limit on one input."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def expired(signum: int, frame: Any) -> None:
        raise TimeLimit

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _call_text(entry: str, inp: Any) -> str:
    return f"{entry}({', '.join(_shown(v) for v in inp)})"


def matches(dataset: str, entry: str, inp: Any, out: Any, exp: Any, atol: float) -> bool:
    """Is `out` right where the reference gave `exp`? (evalplus.eval.unsafe_execute)"""
    exact = bool(out == exp)
    if dataset == "mbpp":
        if entry == "are_equivalent":  # Mbpp/164
            return True
        if entry == "sum_div":  # Mbpp/295
            exact = exact or out == 0
        elif entry == "surface_Area":  # Mbpp/581
            exact = exact or abs(out - _surface_area(*inp)) <= atol
        elif entry == "digit_distance_nums":  # Mbpp/558
            exact = exact or out == _digit_distance_nums(*inp)
        elif entry in MBPP_OUTPUT_SET_EQ_TASKS:
            exact = set(out) == set(exp)
        elif entry in MBPP_OUTPUT_NOT_NONE_TASKS:
            exact = out == exp if isinstance(out, bool) else exp == (out is not None)
    if dataset == "humaneval" and entry == "find_zero":
        return bool(abs(_poly(inp[0], out)) <= atol)  # find_zero(xs)
    if exact:
        return True
    if atol == 0 and is_floats(exp):
        atol = 1e-6
    if atol == 0:
        return False
    if type(out) is not type(exp):
        return False
    if isinstance(exp, (list, tuple)) and len(out) != len(exp):
        return False
    import numpy  # only for floats, as EvalPlus compares them

    return bool(numpy.allclose(out, exp, rtol=1e-07, atol=atol))


def check_outputs(
    candidate: Callable[..., Any],
    reference: Callable[..., Any],
    inputs: list[Any],
    *,
    dataset: str,
    entry: str,
    atol: float,
) -> None:
    """Fail at the first input where the candidate's output is not the reference's."""
    for inp in inputs:
        started = time.perf_counter()
        expected = reference(*copy.deepcopy(inp))
        took = time.perf_counter() - started
        if dataset == "mbpp" and entry in MBPP_OUTPUT_NOT_NONE_TASKS:
            expected = expected is not None
        limit = max(MIN_TIME_LIMIT, TIME_LIMIT_FACTOR * took)
        try:
            with time_limit(limit):
                out = candidate(*copy.deepcopy(inp))
        except TimeLimit:
            raise AssertionError(
                f"Execution timed out.\nInput: {_call_text(entry, inp)}\n(over {limit:.1f} s)"
            ) from None
        if not matches(dataset, entry, inp, out, expected, atol):
            raise AssertionError(
                "The results aren't as expected.\n"
                f"Input: {_call_text(entry, inp)}\n"
                f"Expected Output: {_shown(expected)}\n"
                f"Actual Output: {_shown(out)}"
            )
