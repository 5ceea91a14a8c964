"""Definitions found by indentation alone: for a buffer that does not parse (mid-edit), and
for questions asked at every cursor move, where a full parse of a large file is too slow.

One pass over the text finds the lines inside brackets or triple-quoted strings (their
indentation means nothing); one pass over the lines then keeps a stack of the enclosing
`def` and `class` headers. A `def` inside brackets is impossible, so a bracket the user left
open above a def does not hide the rest of the file.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

# The line endings of Python's tokenizer: a lone "\r" ends a line, "\x0c" or "\u2028" do not.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_HEADER = re.compile(r"[ \t]*(?:(?P<def>(?:async[ \t]+)?def)|class)[ \t]+(?P<name>\w+)")
_STATEMENT_START = re.compile(r"[ \t]*(?:(?:async[ \t]+)?def|class)[ \t]+\w")
# What matters for line structure; one-line strings and comments are matched to be skipped.
_TOKENS = re.compile(r'"""|\'\'\'|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|#[^\n]*|[()\[\]{}\n]')


def split_lines(source: str) -> list[str]:
    """The source's lines numbered as the compiler numbers them (index = line - 1)."""
    return _LINE_BREAK.split(source)


@dataclass(frozen=True)
class Definition:
    """A def found by indentation; lines 1-based."""

    qualname: str  # "Box.size", "outer.inner"
    name: str
    def_line: int  # the `def` line (not a decorator)
    name_col: int
    end_line: int  # the last line of its body (comments and blank lines after it excluded)


@functools.lru_cache(maxsize=8)
def definitions(source: str) -> tuple[Definition, ...]:
    """Every def of the source in line order, found by indentation (the buffer may not
    parse). Cached: the code action asks again at every cursor move on the same text."""
    lines = split_lines(source)
    inside = _inside_lines(source)
    found: list[Definition] = []
    stack: list[tuple[int, str]] = []  # (indent width, name) of the enclosing headers
    open_defs: list[tuple[int, int, str, str, int]] = []  # (width, def_line, qualname, name, col)
    last_code = 0
    for index, text in enumerate(lines):
        stripped = text.strip()
        if not stripped:
            continue
        width = len(text[: len(text) - len(text.lstrip(" \t"))].expandtabs(8))
        if stripped.startswith("#"):
            # Part of the innermost open def when indented into it (a TODO-only body).
            if open_defs and width > open_defs[-1][0]:
                last_code = index + 1
            continue
        if index in inside:  # within brackets or a triple-quoted string: not a statement
            last_code = index + 1
            continue
        while stack and stack[-1][0] >= width:
            stack.pop()
        while open_defs and open_defs[-1][0] >= width:
            _, def_line, qualname, name, col = open_defs.pop()
            found.append(Definition(qualname, name, def_line, col, max(last_code, def_line)))
        last_code = index + 1
        match = _HEADER.match(text)
        if match is None:
            continue
        name = match.group("name")
        qualname = ".".join([*(entry[1] for entry in stack), name])
        stack.append((width, name))
        if match.group("def") is not None:
            open_defs.append((width, index + 1, qualname, name, match.start("name")))
    while open_defs:
        _, def_line, qualname, name, col = open_defs.pop()
        found.append(Definition(qualname, name, def_line, col, max(last_code, def_line)))
    found.sort(key=lambda d: (d.def_line, -d.end_line))
    return tuple(found)


def _inside_lines(source: str) -> frozenset[int]:
    """0-based indexes of the lines that begin inside brackets or a triple-quoted string."""
    inside: set[int] = set()
    depth = 0
    line = 0
    position = 0
    while True:
        match = _TOKENS.search(source, position)
        if match is None:
            break
        token = match.group()
        position = match.end()
        if token == "\n":
            line += 1
            if depth > 0 and _STATEMENT_START.match(source, position):
                depth = 0  # a def cannot be inside brackets: the user left one open above
            if depth > 0:
                inside.add(line)
        elif token in ('"""', "'''"):
            end = source.find(token, position)
            end = len(source) if end < 0 else end + 3
            breaks = source.count("\n", position, end)
            inside.update(range(line + 1, line + breaks + 1))
            line += breaks
            position = end
        elif token in "([{":
            depth += 1
        elif token in ")]}":
            depth = max(0, depth - 1)
        # one-line strings and comments: skipped whole by the pattern
    return frozenset(inside)
