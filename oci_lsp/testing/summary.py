"""One short line per failure, the kind a user reads in a diagnostic.

`assert add(1, 2) == 3 (got 4)` says more than pytest's `assert 4 == 3` (which value is
which?) or a 40-line traceback: the statement as written, plus what the left side really was.
"""

from __future__ import annotations

import ast
import re

MAX_MESSAGE = 200
_WHERE = re.compile(r"^\s*\+\s+where (.+?) = (.+)$")


def _clip(text: str, limit: int = MAX_MESSAGE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _assert_test_source(statement: str) -> tuple[str, ast.expr] | None:
    try:
        tree = ast.parse(statement.strip())
    except SyntaxError:
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assert):
        return None
    test = tree.body[0].test
    source = ast.get_source_segment(statement.strip(), test)
    if source and "\n" in source:
        source = ast.unparse(test)  # a statement over several lines reads better on one
    return (source, test) if source else None


def _got(test: ast.expr, test_source: str, explanation: str) -> str | None:
    """The actual value of an assert's left side, read from pytest's rewritten message."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return None
    left = ast.unparse(test.left)
    lines = explanation.splitlines()
    # pytest: "+  where 4 = add(1, 2)" names the value of each call.
    for line in lines:
        match = _WHERE.match(line)
        if match and _same_expr(match.group(2), left):
            return match.group(1)
    # Otherwise the first line "assert 4 == 3" holds the values, left first.
    op = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
    symbol = op.get(type(test.ops[0]))
    for line in lines:
        if line.startswith("assert ") and symbol:
            parts = line[len("assert ") :].split(f" {symbol} ")
            if len(parts) == 2 and parts[0] != left and parts[0] != test_source:
                return parts[0]
            break
    return None


def _same_expr(a: str, b: str) -> bool:
    try:
        return ast.unparse(ast.parse(a, mode="eval")) == ast.unparse(ast.parse(b, mode="eval"))
    except SyntaxError:
        return a.strip() == b.strip()


def summarize(statement: str | None, exc_type: str, exc_message: str) -> str:
    """The one-line message of a failure.

    statement: source of the statement that failed in the test (when known);
    exc_type, exc_message: the exception raised (pytest's rewritten text for asserts).
    """
    if exc_type == "AssertionError" and statement:
        parsed = _assert_test_source(statement)
        if parsed is not None:
            source, test = parsed
            got = _got(test, source, exc_message)
            text = f"assert {source}"
            if got is not None:
                return _clip(text, MAX_MESSAGE - min(len(got), 60) - 8) + f" (got {_clip(got, 60)})"
            return _clip(text)
    first = exc_message.strip().splitlines()[0] if exc_message.strip() else ""
    if exc_type == "AssertionError" and first.startswith("assert "):
        return _clip(first)
    return _clip(f"{exc_type}: {first}" if first else exc_type)
