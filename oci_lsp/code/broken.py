"""A module that does not parse, made to parse for a fix of the function that breaks it
(issue 16: the `syntax-error` quick-fix and `--fix` on a module with a syntax error).

Everything that places a new function in a module reads the module's syntax tree, and a
module with a syntax error has none. The function is found by indentation (code/functions.py's
scan), and its lines are replaced by a def that does nothing, under the same header when the
header itself is sound: the stand-in parses when the error lay inside the function, and a
candidate is then put in its place as in any module. Every other line stays byte for byte.
"""

from __future__ import annotations

import ast

from oci_lsp.code.functions import find_function, parse, split_lines


def stand_in(source: str, qualname: str) -> str | None:
    """`source` with `qualname`'s lines replaced by a def that parses; None when the function
    is not found or the module still does not parse (the error lies outside it)."""
    span = function_span(source, qualname)
    if span is None:
        return None
    start, end = span
    location = find_function(source, qualname)
    assert location is not None
    lines = split_lines(source)
    header = lines[start - 1]
    indent = header[: len(header) - len(header.lstrip())]
    if not _sound_header(header.strip()):
        keyword = "async def" if header.lstrip().startswith("async") else "def"
        header = f"{indent}{keyword} {location.name}(*args, **kwargs):"
    else:
        header = header.rstrip()
    body = f"{indent}    pass"
    kept = [*lines[: start - 1], header, body, *lines[end:]]
    # The line breaks of the original (split_lines dropped them): "\r\n" files stay so.
    newline = "\r\n" if "\r\n" in source else "\n"
    text = newline.join(kept)
    return text if parse(text) is not None else None


def function_span(source: str, qualname: str) -> tuple[int, int] | None:
    """(def line, last line), 1-based, of a function in a module that may not parse, by
    indentation alone: brackets left open by the error must not carry the function's end to
    the end of the file. A line that starts by closing a bracket (`):` of a long header)
    does not end it."""
    location = find_function(source, qualname)
    if location is None:
        return None
    lines = split_lines(source)
    width = _width(lines[location.def_line - 1])
    end = location.def_line
    for index in range(location.def_line, len(lines)):
        text = lines[index]
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if _width(text) <= width and not stripped.startswith((")", "]", "}")):
            break
        end = index + 1
    return location.def_line, end


def _width(text: str) -> int:
    return len(text[: len(text) - len(text.lstrip(" \t"))].expandtabs(8))


def _sound_header(header: str) -> bool:
    """Whether a one-line `def name(...):` parses with a body under it."""
    try:
        ast.parse(header + "\n    pass\n")
    except SyntaxError:
        return False
    return True
