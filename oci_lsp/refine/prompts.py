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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from oci_lsp.code.functions import definition_start, find_function, iter_definitions, parse
from oci_lsp.engine.backend import ChatMessage

FEEDBACK_PREFIX = "Execution result: \n"
TRUNCATED = "...(truncated due to length)..."
OUTPUT_LIMIT = 1000  # the demo's cut: longer outputs keep their first and last 200 characters
OUTPUT_KEEP = 200
_MAX_NEIGHBOURS = 40
_MAX_TEST_CHARS = 6000  # test sources beyond this are listed by name only
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


def module_context(source: str, qualname: str) -> str:
    """The module around the target: imports, the other definitions' signatures, the class
    around a method (its attributes and its other methods' signatures), then the target."""
    tree = parse(source)
    location = find_function(source, qualname)
    if tree is None or location is None:
        return source
    parts: list[str] = []
    outer = qualname.split(".")[0]
    neighbours = 0
    for node in tree.body:
        if _is_short_statement(source, node):
            parts.append(_segment(source, node))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name == outer:
                parts.append(_around_target(source, node, qualname))
            elif neighbours < _MAX_NEIGHBOURS:
                neighbours += 1
                parts.append(_header(source, node))
    return "\n\n".join(parts)


def _is_short_statement(source: str, node: ast.stmt) -> bool:
    """Imports and short constants: what the new code may use."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return True
    return isinstance(node, (ast.Assign, ast.AnnAssign)) and len(_segment(source, node)) < 200


def _around_target(source: str, node: ast.stmt, qualname: str) -> str:
    """The top-level definition that holds the target, members other than the path to the
    target reduced to signatures."""
    if not isinstance(node, ast.ClassDef):
        return _segment(source, node)
    lines = source.splitlines()
    head_end = node.body[0].lineno - 1 if node.body else node.lineno
    parts = ["\n".join(lines[definition_start(node) - 1 : head_end])]
    inner = qualname.split(".", 1)[1] if "." in qualname else ""
    for member in node.body:
        if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if member.name == inner.split(".")[0]:
                parts.append(
                    _segment(source, member)
                    if not isinstance(member, ast.ClassDef)
                    else _around_target(source, member, inner)
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


def task_message(
    path: str, qualname: str, context: str, tests: Sequence[TestSource], *, fix: bool
) -> ChatMessage:
    """The first user turn: what to write, with the module around it and its tests."""
    name = qualname.split(".")[-1]
    what = (
        f"Fix the function `{qualname}` in `{path}` so that its tests pass."
        if fix
        else f"Complete the function `{qualname}` in `{path}`."
    )
    parts = [what, f"The module:\n```python\n{context.rstrip()}\n```"]
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
    parts.append(
        f"Reply with the complete function `{name}` in one ```python block;"
        " keep its signature and docstring."
    )
    return ChatMessage("user", "\n\n".join(parts))
