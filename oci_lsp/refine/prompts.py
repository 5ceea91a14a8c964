"""The conversation, in the turns OpenCodeInterpreter's models were trained on (Code-Feedback).

A task turn (what to write, the module around it, the tests that exercise it), then per round
the model's answer as an assistant turn and the execution feedback as a user turn that starts
`Execution result: \\n`, cut the way the paper's demo cut long outputs. Human guidance is a user
turn of its own. A fix starts from the code as it is: the current function is the first
assistant turn and the test's real failure the first feedback, which is the dialogue the
models learnt to continue.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from oci_lsp.code.functions import definition_start, find_function, iter_definitions, parse
from oci_lsp.engine.backend import ChatMessage
from oci_lsp.testing.failures import Suspect

FEEDBACK_PREFIX = "Execution result: \n"
TRUNCATED = "...(truncated due to length)..."
OUTPUT_LIMIT = 1000  # the demo's cut: longer outputs keep their first and last 200 characters
OUTPUT_KEEP = 200
_MAX_NEIGHBOURS = 40
_MAX_TEST_CHARS = 6000  # test sources beyond this are listed by name only
# Other suspects shown as context in a fix's task: how many, and how much of each.
_MAX_RELATED = 2
_MAX_RELATED_CHARS = 1500
_NODE_PARAMS = re.compile(r"\[.*\]$")


@dataclass(frozen=True)
class TestSource:
    __test__ = False  # not a pytest class
    test_id: str  # "tests/test_calc.py::test_add"
    source: str  # the test function's text


def truncate_output(text: str, limit: int = OUTPUT_LIMIT, keep: int = OUTPUT_KEEP) -> str:
    """The paper's demo cut: over `limit` characters, the first and last `keep` remain."""
    text = text.strip("\n")
    if len(text) <= limit:
        return text
    return f"{text[:keep]}\n{TRUNCATED}\n{text[-keep:]}"


def feedback_message(output: str) -> ChatMessage:
    return ChatMessage("user", FEEDBACK_PREFIX + truncate_output(output))


def guidance_message(instruction: str) -> ChatMessage:
    return ChatMessage("user", instruction.strip())


def answer_message(code: str) -> ChatMessage:
    """An assistant turn holding code, as the models write it."""
    return ChatMessage("assistant", f"```python\n{code.rstrip()}\n```")


def _segment(source: str, node: ast.stmt) -> str:
    lines = source.splitlines()
    end = node.end_lineno or node.lineno
    return "\n".join(lines[definition_start(node) - 1 : end])


def _header(source: str, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> str:
    """A definition's decorators and `def`/`class` line(s), with the first docstring line."""
    lines = source.splitlines()
    body_start = node.body[0].lineno if node.body else (node.end_lineno or node.lineno)
    head = "\n".join(lines[definition_start(node) - 1 : max(node.lineno, body_start - 1)])
    doc = ast.get_docstring(node)
    indent = " " * (node.col_offset + 4)
    summary = f'\n{indent}"""{doc.strip().splitlines()[0]}"""' if doc and doc.strip() else ""
    return f"{head}{summary}\n{indent}..."


def module_context(source: str, qualname: str | Sequence[str]) -> str:
    """The module around the target(s): imports, the other definitions' signatures, the class
    around a method (its attributes and its other methods' signatures), then the targets."""
    qualnames = [qualname] if isinstance(qualname, str) else list(qualname)
    tree = parse(source)
    if tree is None or any(find_function(source, q) is None for q in qualnames):
        return source
    parts: list[str] = []
    outer = {q.split(".")[0] for q in qualnames}
    neighbours = 0
    for node in tree.body:
        if _is_short_statement(source, node):
            parts.append(_segment(source, node))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name in outer:
                parts.append(_around_target(source, node, _inside(qualnames, node.name)))
            elif neighbours < _MAX_NEIGHBOURS:
                neighbours += 1
                parts.append(_header(source, node))
    return "\n\n".join(parts)


def _inside(qualnames: Sequence[str], outer: str) -> list[str]:
    """The parts of the qualnames under `outer` ("Calc.add" under "Calc": "add")."""
    return [q.split(".", 1)[1] for q in qualnames if q.split(".")[0] == outer and "." in q]


def _is_short_statement(source: str, node: ast.stmt) -> bool:
    """Imports and short constants: what the new code may use."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return True
    return isinstance(node, (ast.Assign, ast.AnnAssign)) and len(_segment(source, node)) < 200


def _around_target(source: str, node: ast.stmt, inner: Sequence[str]) -> str:
    """The top-level definition that holds the targets (`inner`: their qualnames below it),
    members other than the paths to the targets reduced to signatures."""
    if not isinstance(node, ast.ClassDef):
        return _segment(source, node)
    lines = source.splitlines()
    head_end = node.body[0].lineno - 1 if node.body else node.lineno
    parts = ["\n".join(lines[definition_start(node) - 1 : head_end])]
    wanted = {q.split(".")[0] for q in inner}
    for member in node.body:
        if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if member.name in wanted:
                parts.append(
                    _segment(source, member)
                    if not isinstance(member, ast.ClassDef)
                    else _around_target(source, member, _inside(inner, member.name))
                )
            else:
                parts.append(_header(source, member))
        else:
            parts.append(_segment(source, member))
    return "\n".join(parts)


def test_sources(root: Path, test_ids: Sequence[str]) -> list[TestSource]:
    """The source of each test function (parametrized ids once), read from disk."""
    found: list[TestSource] = []
    seen: set[str] = set()
    for test_id in test_ids:
        file, _, name = test_id.partition("::")
        qualname = _NODE_PARAMS.sub("", name).replace("::", ".")
        key = f"{file}::{qualname}"
        if not qualname or key in seen:
            continue
        seen.add(key)
        try:
            text = (root / file).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        location = find_function(text, qualname)
        if location is None:
            continue
        lines = text.splitlines()
        tree = parse(text)
        start = location.def_line
        if tree is not None:
            for name, node in iter_definitions(tree):
                if name == qualname:
                    start = definition_start(node)
        found.append(TestSource(key, "\n".join(lines[start - 1 : location.end_line])))
    return found


@dataclass(frozen=True)
class RelatedSource:
    """Another function the failing tests ran that the ranking found suspicious: context
    for the model, not its task (issue 15)."""

    where: str  # its file, relative to the root
    qualname: str
    source: str  # its text, cut to _MAX_RELATED_CHARS
    score: float


@dataclass(frozen=True)
class FunctionToFix:
    """One function of a task: where it is, and the module around it (module_context)."""

    where: str  # its file, relative to the root
    qualname: str
    context: str


def task_message(
    path: str,
    qualname: str,
    context: str,
    tests: Sequence[TestSource],
    *,
    fix: bool,
    related: Sequence[RelatedSource] = (),
    goal: str | None = None,
) -> ChatMessage:
    """The first user turn: what to write, with the module around it and its tests (and, for
    a fix, the other suspicious functions the failing tests ran). `goal` ends the first
    sentence of a fix in place of "so that its tests pass" (a tool's findings, issue 16)."""
    name = qualname.split(".")[-1]
    what = (
        f"Fix the function `{qualname}` in `{path}` {goal or 'so that its tests pass'}."
        if fix
        else f"Complete the function `{qualname}` in `{path}`."
    )
    parts = [what, f"The module:\n```python\n{context.rstrip()}\n```"]
    parts.extend(_tests_parts(tests))
    parts.extend(_related_part(related, name))
    parts.append(
        f"Reply with the complete function `{name}` in one ```python block;"
        " keep its signature and docstring."
    )
    return ChatMessage("user", "\n\n".join(parts))


def pair_task_message(
    functions: Sequence[FunctionToFix],
    tests: Sequence[TestSource],
    related: Sequence[RelatedSource] = (),
) -> ChatMessage:
    """The first user turn of a fix of several functions together: each one's module (once
    for functions of one file), the tests, and what to reply."""
    names = [f"`{f.qualname}` in `{f.where}`" for f in functions]
    parts = [
        f"The failing tests run the functions {_and(names)}; the fault may be in any of them"
        " or in several. Fix them so that the tests pass."
    ]
    shown: set[str] = set()
    for function in functions:
        if function.where not in shown:
            shown.add(function.where)
            parts.append(
                f"The module `{function.where}`:\n```python\n{function.context.rstrip()}\n```"
            )
    parts.extend(_tests_parts(tests))
    parts.extend(_related_part(related, None))
    wanted = _and([f"`{f.qualname.split('.')[-1]}`" for f in functions])
    parts.append(
        f"Reply with the complete functions {wanted}, each whole, in ```python blocks;"
        " keep their signatures and docstrings."
    )
    return ChatMessage("user", "\n\n".join(parts))


def pair_answer_message(functions: Sequence[tuple[str, str]]) -> ChatMessage:
    """The assistant turn of a fix of several functions: their current code, (file, text)
    each, in one block with the file of each as a comment."""
    code = "\n\n\n".join(f"# {where}\n{text.rstrip()}" for where, text in functions)
    return answer_message(code)


def _tests_parts(tests: Sequence[TestSource]) -> list[str]:
    parts = []
    shown: list[str] = []
    names: list[str] = []
    size = 0
    for test in tests:
        if size + len(test.source) > _MAX_TEST_CHARS and shown:
            names.append(test.test_id)
            continue
        size += len(test.source)
        shown.append(test.source.rstrip())
    if shown:
        parts.append("The tests it must pass:\n```python\n" + "\n\n".join(shown) + "\n```")
    if names:
        parts.append("Other tests: " + ", ".join(names))
    return parts


def _related_part(related: Sequence[RelatedSource], name: str | None) -> list[str]:
    """The other suspects, as context: at most _MAX_RELATED, each cut to its first lines."""
    if not related:
        return []
    blocks = [
        f"# {r.where}: `{r.qualname}` (suspiciousness {r.score:.2f})\n{r.source.rstrip()}"
        for r in related[:_MAX_RELATED]
    ]
    change = f"; change only `{name}`" if name else ""
    return [
        "Other functions the failing tests ran, which may be involved (for reference"
        f"{change}):\n```python\n" + "\n\n".join(blocks) + "\n```"
    ]


def related_source(where: str, qualname: str, module: str, score: float) -> RelatedSource | None:
    """A suspect's text for the prompt, cut to _MAX_RELATED_CHARS at a line's end (the rest
    said to be cut), or None when the module no longer defines it."""
    location = find_function(module, qualname)
    if location is None:
        return None
    lines = module.splitlines()
    start = location.def_line
    tree = parse(module)
    if tree is not None:
        for found, node in iter_definitions(tree):
            if found == location.qualname:
                start = definition_start(node)
    text = textwrap.dedent("\n".join(lines[start - 1 : location.end_line]))
    if len(text) > _MAX_RELATED_CHARS:
        cut = text.rfind("\n", 0, _MAX_RELATED_CHARS)
        text = text[: cut if cut > 0 else _MAX_RELATED_CHARS] + "\n    # ... (the rest left out)"
    return RelatedSource(where, qualname, text, score)


def related_sources(
    suspects: Sequence[Suspect],
    root: Path,
    read: Callable[[str], str | None],
    fixing: Collection[str],
) -> list[RelatedSource]:
    """The first suspects other than the functions being fixed (`fixing`: dotted names), as
    context for the model: at most _MAX_RELATED, read through `read` (the editor's text)."""
    found: list[RelatedSource] = []
    for suspect in suspects:
        if len(found) >= _MAX_RELATED:
            break
        if suspect.dotted in fixing:
            continue
        module = read(suspect.path)
        if module is None:
            continue
        try:
            where = Path(suspect.path).relative_to(root).as_posix()
        except ValueError:
            where = Path(suspect.path).name
        related = related_source(where, suspect.qualname, module, suspect.score)
        if related is not None:
            found.append(related)
    return found


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
