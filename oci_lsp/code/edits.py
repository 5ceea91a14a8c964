"""Line edits between two versions of a module, and the same edits on a text that moved on.

A verified candidate is a whole module text; the editor gets only what changed (the body, an
import the reply added), as whole-line edits, so the user's undo and the rest of the buffer
are untouched. When the user typed elsewhere while the model worked, `rebase` finds each
edit's place again by its surrounding lines, or says it cannot.
"""

from __future__ import annotations

import difflib
import itertools
from dataclasses import dataclass

_CONTEXT = 3  # lines around an edit that must still be there, unchanged, to find its place


@dataclass(frozen=True)
class LineEdit:
    """Replace lines [start, end) (0-based) with `text` (whole lines, with their endings)."""

    start: int
    end: int
    text: str


def line_edits(old: str, new: str) -> list[LineEdit]:
    """The smallest whole-line edits that turn `old` into `new`, in order."""
    old_lines = old.splitlines(keepends=True)
    new_lines = new.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    return [
        LineEdit(i1, i2, "".join(new_lines[j1:j2]))
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    ]


def apply_edits(text: str, edits: list[LineEdit]) -> str:
    lines = text.splitlines(keepends=True)
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        lines[edit.start : edit.end] = [edit.text]
    return "".join(lines)


def rebase(edits: list[LineEdit], old: str, current: str) -> list[LineEdit] | None:
    """`edits` (made against `old`) moved onto `current`: each edit's lines and the lines
    around it must appear exactly once in `current`. None when one cannot be placed."""
    if old == current:
        return list(edits)
    old_lines = old.splitlines(keepends=True)
    current_lines = current.splitlines(keepends=True)
    moved: list[LineEdit] = []
    for edit in edits:
        before = max(0, edit.start - _CONTEXT)
        after = min(len(old_lines), edit.end + _CONTEXT)
        block = old_lines[before:after]
        places = _occurrences(current_lines, block)
        if len(places) != 1:
            return None
        shift = places[0] - before
        moved.append(LineEdit(edit.start + shift, edit.end + shift, edit.text))
    for first, second in itertools.pairwise(moved):
        if second.start < first.end:
            return None
    return moved


def _occurrences(lines: list[str], block: list[str]) -> list[int]:
    if not block:
        return []
    size = len(block)
    return [i for i in range(len(lines) - size + 1) if lines[i : i + size] == block]
