"""Stub functions: the ones whose body is still to be written, found at a line of the buffer.

A stub's body is `...`, `pass`, `raise NotImplementedError` (with or without a message),
only a docstring, or only comments with a TODO (with or without a docstring before them).
The code action asks at every cursor move, on the unsaved buffer, which may not parse: the
enclosing function is found by indentation alone (cached per text), and only its own lines
are parsed. Nothing here costs more than one pass over the lines of the file.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass, replace

from oci_lsp.code.scan import Definition, definitions, split_lines

_TOP_LEVEL = re.compile(r"(?:(?:async[ \t]+)?def|class)[ \t]|@")
_TODO = re.compile(r"#.*\b(?:TODO|FIXME|XXX)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Stub:
    definition: Definition
    kind: str  # "ellipsis" | "pass" | "not-implemented" | "docstring" | "todo"


def stub_at(source: str, line: int) -> Stub | None:
    """The innermost function containing 1-based `line`, when it is a stub; else None.

    Only the top-level block around the line is scanned (from the `def`, `class` or
    decorator at column 0 before it to the next one): an edit elsewhere costs nothing, and a
    file of thousands of lines costs what its block does. A column-0 `def` inside a string
    could mislead it; the commands check again on the whole text.
    """
    lines = split_lines(source)
    if not 1 <= line <= len(lines):
        return None
    start = line - 1
    while start > 0 and not _TOP_LEVEL.match(lines[start]):
        start -= 1
    end = line
    while end < len(lines) and not _TOP_LEVEL.match(lines[end]):
        end += 1
    found = stub_in("\n".join(lines[start:end]), line - start)
    if found is None:
        return None
    moved = replace(
        found.definition,
        def_line=found.definition.def_line + start,
        end_line=found.definition.end_line + start,
    )
    return Stub(moved, found.kind)


def stub_in(source: str, line: int) -> Stub | None:
    """stub_at over the whole text (what the commands use before they act)."""
    innermost: Definition | None = None
    for definition in definitions(source):
        if definition.def_line <= line <= definition.end_line:
            innermost = definition  # in source order: inner ones come after outer ones
    if innermost is None:
        return None
    kind = stub_kind(source, innermost)
    return Stub(innermost, kind) if kind is not None else None


def stub_kind(source: str, definition: Definition) -> str | None:
    """What makes this def a stub, or None when it has a real body."""
    lines = split_lines(source)[definition.def_line - 1 : definition.end_line]
    text = textwrap.dedent("\n".join(lines)) + "\n"
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        # A body of comments only does not parse: a TODO placeholder, if one says so.
        return _comment_only_kind(text)
    if not tree.body or not isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    body = list(tree.body[0].body)
    has_docstring = _is_docstring(body[0])
    if has_docstring:
        body = body[1:]
    if not body:
        # Only a docstring: a TODO comment after it makes it a "todo", else a "docstring".
        return "todo" if _TODO.search(_after_docstring(text, tree.body[0])) else "docstring"
    if len(body) != 1:
        return None
    statement = body[0]
    if isinstance(statement, ast.Pass):
        return "pass"
    if (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and statement.value.value is Ellipsis
    ):
        return "ellipsis"
    if isinstance(statement, ast.Raise) and statement.exc is not None:
        raised = statement.exc.func if isinstance(statement.exc, ast.Call) else statement.exc
        if isinstance(raised, ast.Name) and raised.id == "NotImplementedError":
            return "not-implemented"
    return None


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _after_docstring(text: str, node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    end = node.body[0].end_lineno or node.body[0].lineno
    return "\n".join(text.splitlines()[end:])


def _comment_only_kind(text: str) -> str | None:
    lines = text.splitlines()
    body = [ln.strip() for ln in lines[1:] if ln.strip()]
    if body and all(ln.startswith("#") for ln in body) and any(_TODO.search(ln) for ln in body):
        return "todo"
    return None
