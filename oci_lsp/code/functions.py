"""Where functions and statements are in a Python source, by name or by line.

Test results name functions by qualname and point at lines; diagnostics need a range on
the function's name and the statement that failed. Everything here works on the source
text as it is now, which may be mid-edit: nothing raises on a syntax error, and
`find_function` still answers from a line scan so a diagnostic can follow the user's typing.
"""

from __future__ import annotations

import ast
import functools
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from oci_lsp.code.scan import Definition, definitions
from oci_lsp.code.scan import split_lines as split_lines  # its callers read lines and defs

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
DefinitionNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef

_FUNCTION_TYPES = (ast.FunctionDef, ast.AsyncFunctionDef)
_DEFINITION_TYPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
# The nodes that can hold statements; definitions never hide inside expressions.
_STATEMENT_TYPES = (ast.stmt, ast.excepthandler, ast.match_case)

_BOM = "\ufeff"
# From the `def` keyword's column (or `async`'s) to the function's name.
_DEF_PREFIX = re.compile(r"(?:async\s+)?def\s+")
# A def or class header, for the line-scan fallback.
_HEADER = re.compile(r"[ \t]*(?:(?P<def>(?:async[ \t]+)?def)|class)[ \t]+(?P<name>\w+)")
# Words that begin the header of a block that is not a statement of its own.
_CLAUSE_KEYWORDS = ("else", "elif", "except", "finally", "case")


@dataclass(frozen=True)
class FunctionLocation:
    """Where one `def` is; lines 1-based, the column 0-based in code points."""

    qualname: str  # "Calc.add"; a nested function is "outer.inner" (no "<locals>")
    name: str  # "add"
    def_line: int  # the line of the `def` keyword, not of a decorator
    name_col: int  # where the name starts on def_line
    end_line: int  # the function's last line
    body_line: int  # the line of the body's first statement


@functools.lru_cache(maxsize=32)
def parse(source: str) -> ast.Module | None:
    """The module's AST, or None when it does not parse (the user is mid-edit).

    A leading BOM is dropped (the compiler rejects it in a str); line numbers stay the same.
    Warnings about the user's code (invalid escapes) are not ours to print. Cached: a suite
    with a thousand failures asks about the same few files a thousand times. Callers must
    not change the tree.
    """
    if source.startswith(_BOM):
        source = source[1:]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def normalise_qualname(qualname: str) -> str:
    """ "outer.<locals>.inner" (CPython's and pytest's form) to "outer.inner" (ours)."""
    return ".".join(part for part in qualname.split(".") if part != "<locals>")


def iter_definitions(tree: ast.AST) -> Iterator[tuple[str, DefinitionNode]]:
    """Every def and class with its qualname, in source order, outer before inner."""
    stack: list[tuple[str, ast.AST]] = [("", tree)]
    while stack:
        prefix, node = stack.pop()
        if isinstance(node, _DEFINITION_TYPES):
            qualname = prefix + node.name
            yield qualname, node
            prefix = qualname + "."
        children = [c for c in ast.iter_child_nodes(node) if isinstance(c, _STATEMENT_TYPES)]
        stack.extend((prefix, child) for child in reversed(children))


def definition_start(node: ast.stmt) -> int:
    """The first line of a statement, counting a definition's decorators."""
    if isinstance(node, _DEFINITION_TYPES) and node.decorator_list:
        return min(node.lineno, *(d.lineno for d in node.decorator_list))
    return node.lineno


def find_function(source: str, qualname: str) -> FunctionLocation | None:
    """The def named `qualname` ("Calc.add", "outer.inner", "outer.<locals>.inner").

    When several defs share the qualname (a redefinition, `@overload`, a property's
    setter) the last one wins, as it does when the module runs.
    """
    wanted = normalise_qualname(qualname)
    if not wanted:
        return None
    tree = parse(source)
    if tree is None:
        return _scan_for_function(source, wanted)
    found: FunctionNode | None = None
    for name, node in iter_definitions(tree):
        if name == wanted and isinstance(node, _FUNCTION_TYPES):
            found = node
    if found is None:
        return None
    return _location(wanted, found, source)


def enclosing_function(source: str, line: int, name: str | None = None) -> FunctionLocation | None:
    """The innermost def whose span (decorators to last line) contains `line`.

    `name` is a code object's `co_name`: the innermost enclosing def of that name is
    preferred. When it is an identifier and no enclosing def has it, the source no longer
    matches the code that ran (or the frame is a class body), and the answer is None rather
    than a wrong function; pseudo-names such as "<lambda>" or "<listcomp>" fall back to the
    innermost def.
    """
    tree = parse(source)
    if tree is None:
        return None
    chain: list[tuple[str, FunctionNode]] = []
    for qualname, node in iter_definitions(tree):
        if not isinstance(node, _FUNCTION_TYPES):
            continue
        if definition_start(node) <= line <= (node.end_lineno or node.lineno):
            chain.append((qualname, node))  # pre-order: outer before inner
    if name is not None:
        named = [entry for entry in chain if entry[1].name == name]
        if named:
            chain = named
        elif name.isidentifier():
            return None
    if not chain:
        return None
    qualname, node = chain[-1]
    return _location(qualname, node, source)


@functools.lru_cache(maxsize=64)
def line_owners(source: str) -> dict[int, FunctionLocation]:
    """Each 1-based line of a function (its decorators to its last line) -> the innermost
    def that holds it: a nested function's lines are its own, not its outer's. The lines of
    a class body and of the module belong to no function and are absent, as is everything
    of a source that does not parse. Cached per text (a test file's thousand spectra ask
    about the same few modules); callers must not change the answer."""
    tree = parse(source)
    if tree is None:
        return {}
    owners: dict[int, FunctionLocation] = {}
    for qualname, node in iter_definitions(tree):  # outer before inner: inner overwrites
        lines = range(definition_start(node), (node.end_lineno or node.lineno) + 1)
        if isinstance(node, _FUNCTION_TYPES):
            location = _location(qualname, node, source)
            owners.update(dict.fromkeys(lines, location))
        else:  # a class body, even one inside a function: none of its own lines are a def's
            for line in lines:
                owners.pop(line, None)
    return owners


def statement_at(source: str, line: int) -> ast.stmt | None:
    """The innermost simple statement on `line`, or the compound one whose header it is.

    A header is a compound statement's first line(s) up to its body, and the lines of its
    `else:`, `except ...:`, `finally:` and `case ...:` clauses. With several statements on
    one line (`a = f(); b = g()`) the first is returned. Blank and comment lines inside a
    body belong to no statement.
    """
    tree = parse(source)
    if tree is None:
        return None
    lines = split_lines(source)
    return _statement_in(tree.body, line, lines)


def dotted_name(node: ast.AST) -> str | None:
    """ "a.b.c" for a Name or an Attribute chain ending in a Name; None for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def called_names(node: ast.AST) -> list[str]:
    """The dotted names called in `node`, outermost first, in source order, no repeats.

    `assert add(mul(1, 2), 3) == calc.sub(1)` gives ["add", "mul", "calc.sub"];
    `Calc().add(1)` gives ["Calc"], since "Calc().add" names nothing static.
    """
    names: list[str] = []
    seen: set[str] = set()
    # Explicit pre-order stack: long operator chains are too deep for recursion.
    stack: list[ast.AST] = [node]
    while stack:
        current = stack.pop()
        # Field order is not source order (`f(*a, k=1)` keeps args before keywords, a dict
        # its keys before its values), so children are ordered by position.
        children = sorted(ast.iter_child_nodes(current), key=_position)
        if isinstance(current, ast.Call):
            dotted = dotted_name(current.func)
            if dotted is not None:
                if dotted not in seen:
                    seen.add(dotted)
                    names.append(dotted)
                children = [child for child in children if child is not current.func]
        stack.extend(reversed(children))
    return names


# --- helpers ------------------------------------------------------------------------------


def _position(node: ast.AST) -> tuple[int, int]:
    """Where a node starts; for the few without a position (comprehension, arguments,
    operators), where their first positioned descendant does."""
    for candidate in ast.walk(node):
        lineno = getattr(candidate, "lineno", None)
        if lineno is not None:
            return lineno, getattr(candidate, "col_offset", 0)
    return 0, 0


def _location(qualname: str, node: FunctionNode, source: str) -> FunctionLocation:
    has_bom = source.startswith(_BOM)
    lines = split_lines(source[1:] if has_bom else source)
    text = lines[node.lineno - 1] if node.lineno <= len(lines) else ""
    # The AST's column is in UTF-8 bytes; the editor wants code points.
    if text.isascii():
        start = node.col_offset
    else:
        start = len(text.encode("utf-8")[: node.col_offset].decode("utf-8", errors="replace"))
    name_col = _name_column(text, start, node.name)
    if has_bom and node.lineno == 1:
        name_col += 1
    return FunctionLocation(
        qualname=qualname,
        name=node.name,
        def_line=node.lineno,
        name_col=name_col,
        end_line=node.end_lineno or node.lineno,
        body_line=node.body[0].lineno if node.body else node.lineno,
    )


def _name_column(text: str, def_col: int, name: str) -> int:
    match = _DEF_PREFIX.match(text, def_col)
    if match is not None and text.startswith(name, match.end()):
        return match.end()
    # `def \` with the name on the next line: the best we can do on this line.
    found = text.find(name, def_col)
    return found if found >= 0 else def_col


def _statement_in(statements: list[ast.stmt], line: int, lines: list[str]) -> ast.stmt | None:
    for statement in statements:
        if definition_start(statement) <= line <= (statement.end_lineno or statement.lineno):
            if _is_compound(statement):
                return _statement_in_compound(statement, line, lines)
            return statement
    return None


def _is_compound(statement: ast.stmt) -> bool:
    return isinstance(getattr(statement, "body", None), list) or isinstance(statement, ast.Match)


def _statement_in_compound(statement: ast.stmt, line: int, lines: list[str]) -> ast.stmt | None:
    cases: list[ast.match_case] = statement.cases if isinstance(statement, ast.Match) else []
    handlers: list[ast.ExceptHandler] = getattr(statement, "handlers", [])
    body: list[ast.stmt] = getattr(statement, "body", [])
    if body:
        first_inner = body[0].lineno
    elif cases:
        first_inner = cases[0].pattern.lineno
    else:
        first_inner = line + 1
    if line < first_inner:
        return statement  # the header, possibly spread over several lines
    blocks: list[list[ast.stmt]] = [body]
    blocks.extend(handler.body for handler in handlers)
    blocks.extend(case.body for case in cases)
    blocks.append(getattr(statement, "orelse", []))
    blocks.append(getattr(statement, "finalbody", []))
    for block in blocks:
        found = _statement_in(block, line, lines)
        if found is not None:
            return found
    for handler in handlers:
        # `except ValueError as error:` is part of the try statement's header.
        if handler.lineno <= line < handler.body[0].lineno:
            return statement
    for case in cases:
        if case.body and case.pattern.lineno <= line < case.body[0].lineno:
            return statement
    text = lines[line - 1].lstrip() if 0 < line <= len(lines) else ""
    if text.startswith(_CLAUSE_KEYWORDS):
        return statement  # `else:` / `finally:` have no node of their own
    return None


def _indent_width(text: str) -> int:
    stripped = text.lstrip(" \t")
    return len(text[: len(text) - len(stripped)].expandtabs(8))


def _is_code(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and not stripped.startswith("#")


def _scan_for_function(source: str, wanted: str) -> FunctionLocation | None:
    """Find a def in a source that does not parse, from indentation alone (code/scan.py).

    The last exact qualname match wins (as in the parsed case), otherwise the first def with
    the same last name.
    """
    has_bom = source.startswith(_BOM)
    text = source[1:] if has_bom else source
    last_name = wanted.rpartition(".")[2]
    exact: Definition | None = None
    first: Definition | None = None
    for definition in definitions(text):
        if definition.name != last_name:
            continue
        if definition.qualname == wanted:
            exact = definition
        elif first is None:
            first = definition
    chosen = exact or first
    if chosen is None:
        return None
    body_line, end_line = _scan_extent(split_lines(text), chosen.def_line - 1)
    return FunctionLocation(
        qualname=wanted if chosen is exact else chosen.name,
        name=chosen.name,
        def_line=chosen.def_line,
        name_col=chosen.name_col + (1 if has_bom and chosen.def_line == 1 else 0),
        end_line=end_line,
        body_line=body_line,
    )


def _scan_extent(lines: list[str], index: int) -> tuple[int, int]:
    """(body_line, end_line) of the def whose header starts at lines[index], by indentation."""
    width = _indent_width(lines[index])
    # The header ends where its brackets close (parameters may span lines).
    depth = 0
    header_end = index
    for header_end in range(index, len(lines)):
        code = lines[header_end].split("#", 1)[0]
        depth += sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")
        if depth <= 0:
            break
    code = lines[header_end].split("#", 1)[0].rstrip()
    if not code.endswith(":"):
        return header_end + 1, header_end + 1  # `def f(): return 1`
    body_line: int | None = None
    end_line = header_end + 1
    for following in range(header_end + 1, len(lines)):
        text = lines[following]
        if not _is_code(text):
            continue
        if _indent_width(text) <= width:
            break
        if body_line is None:
            body_line = following + 1
        end_line = following + 1
    return body_line or header_end + 1, end_line
