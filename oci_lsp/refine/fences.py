"""The fenced code blocks of a Markdown reply, read as CommonMark reads them.

A fence opens or closes only at 0-3 spaces of indentation (more inside a list item, by the
item's own indentation): a docstring's indented ```` ```pycon ```` example inside the reply's
python block is content, not a fence. One liberty for code: a closing fence whose block does
not read as code, where a later closing fence (or the reply's end) gives a block that does, is
content too. Models write docstrings whose ```` ``` ```` examples sit at column 0; read
strictly, such a reply's code would be cut inside its docstring. And a reply indented as a
whole can be read with its indented fences as fences (`indented`), each closing at its own
indentation plus three.

Nothing here knows Python: whether a block reads is the caller's `reads`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

# At most this many later closing fences (or the reply's end) are tried, for all the blocks
# of a reply together: each try costs reading a block, and a hostile reply must stay cheap.
_MAX_LOOKAHEAD = 12
# CommonMark's limit on a fence's indentation (beyond its container's).
_MAX_INDENT = 3
_UNLIMITED = 1 << 30

_OPENING = re.compile(r"(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>.*?)[ \t]*")
_CLOSING = re.compile(r"(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*")
_LANGUAGE = re.compile(r"[{.]*(?P<language>[\w+#.-]*)")
# A list item's marker and the spaces after it: its content starts at their end.
_LIST_ITEM = re.compile(r"[ ]{0,3}(?:[-+*]|\d{1,9}[.)])[ ]{1,4}(?=\S)")

# Whether a block's text reads as what its language says: (language, text) -> bool.
Reads = Callable[[str, str], bool]


@dataclass(frozen=True)
class Block:
    text: str
    language: str  # the info string's first word, lower case; "" for a bare fence
    closed: bool


def split_fences(
    reply: str, reads: Reads | None = None, *, indented: bool = False
) -> tuple[list[Block], list[str]]:
    """The fenced blocks of a Markdown reply, and the lines outside them.

    With `reads`, a block that does not read at its closing fence goes on to the first later
    closing fence (or the reply's end) where it does; where none does, it closes at the first.
    With `indented`, a fence opens at any indentation (a reply indented as a whole) and closes
    at up to three spaces more than it opened.
    """
    lines = reply.split("\n")
    blocks: list[Block] = []
    outside: list[str] = []
    tries = _Tries(reads)
    container = 0  # the content column of the list item the lines are in
    index = 0
    while index < len(lines):
        line = lines[index]
        item = _LIST_ITEM.match(line)
        if item is not None:
            container = item.end()
        elif line.strip() and _width(line[: len(line) - len(line.lstrip())]) < container:
            container = 0  # a paragraph left of the item's content ends the list
        limit = _UNLIMITED if indented else 0 if item else container
        opening = _opening(line[item.end() :] if item else line, limit)
        if opening is None:
            outside.append(line)
            index += 1
            continue
        fence, language, indent = opening
        if item is not None:
            indent += item.end()
        base = max(container, indent) if indented else container
        block, index = _read_block(lines, index + 1, fence, language, indent, base, tries)
        blocks.append(block)
    return blocks, outside


def _opening(line: str, container: int) -> tuple[str, str, int] | None:
    """(fence, language, indentation width) when `line` opens a fence."""
    match = _OPENING.fullmatch(line)
    if match is None:
        return None
    fence = match["fence"]
    if fence[0] == "`" and "`" in match["info"]:
        return None  # inline code (```x```), not a fence
    indent = _width(match["indent"])
    if indent > container + _MAX_INDENT:
        return None  # an indented code line, or a docstring's example in prose
    language_match = _LANGUAGE.match(match["info"])
    language = language_match["language"].lower() if language_match else ""
    return fence, language, indent


class _Tries:
    """`reads`, and how many more tries past a closing fence the reply may cost."""

    def __init__(self, reads: Reads | None) -> None:
        self.reads = reads
        self.left = _MAX_LOOKAHEAD


def _read_block(
    lines: list[str],
    start: int,
    fence: str,
    language: str,
    indent: int,
    container: int,
    tries: _Tries,
) -> tuple[Block, int]:
    """The block opened before `start`, and the index of the line after it."""
    closers = (i for i in range(start, len(lines)) if _closes(lines[i], fence, container))
    end = next(closers, len(lines))
    reads = tries.reads
    if (
        end < len(lines)
        and reads is not None
        and tries.left > 0
        and not reads(language, _content(lines[start:end], indent))
    ):
        for later in [*itertools.islice(closers, tries.left - 1), len(lines)]:
            tries.left -= 1
            if reads(language, _content(lines[start:later], indent)):
                end = later
                break
    if end == len(lines):
        return Block(_content(lines[start:], indent), language, False), end
    return Block(_content(lines[start:end], indent), language, True), end + 1


def _closes(line: str, fence: str, container: int) -> bool:
    match = _CLOSING.fullmatch(line)
    return (
        match is not None
        and match["fence"][0] == fence[0]
        and len(match["fence"]) >= len(fence)
        and _width(match["indent"]) <= container + _MAX_INDENT
    )


def _content(lines: list[str], indent: int) -> str:
    """The block's text: CommonMark removes up to the opening fence's indentation."""
    return "\n".join(_unindent(line, indent) for line in lines)


def _unindent(line: str, width: int) -> str:
    removed = 0
    while removed < width and line[:1] == " ":
        line = line[1:]
        removed += 1
    return line


def _width(indent: str) -> int:
    """Indentation width with tabs at CommonMark's tab stops of 4."""
    return len(indent.expandtabs(4))
