"""What a reply did not mean to change: the function's decorators, docstring and comments.

A model asked to fix one line rewrites the whole function, and what it copies back is not
always what was there: the docstring without its examples (or none at all), a decorator or a
comment left out. `keep_original` puts the new function together from the original's parts
and the reply's, and every line of the original the reply dropped without meaning to is put
back where it was. What counts as meant, hunk by hunk of a line diff:

- A part the reply leaves out entirely (no docstring, no decorators) is the original's.
- Lines the reply drops without writing anything in their place are lost, and come back.
- Lines it replaces are its change (an edited sentence, another decorator), unless the
  replacement says less: fewer words or fewer decorators, or a docstring example gone or
  altered (a `>>>` session with its output, a fenced block: the user's tests). Then each
  line it edited (one alike the original's) stays the reply's and the others are the
  original's; a docstring line the reply only re-indented is the original's.
- Comments are the body's where the new body replaced the code around them. A comment line
  dropped next to code the reply kept (with no comment written in its place), or a comment
  cut off a line it kept, comes back; a stub's comments (`# TODO` over `pass`) do not.

A repair never changes the reply's code: restored comments are checked token by token, a
merged docstring must still be one string (else the original's is kept whole). Where a
repair cannot be made safely the candidate is refused (`CannotKeep`), saying what it lost.
"""

from __future__ import annotations

import ast
import difflib
import io
import re
import textwrap
import tokenize
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from oci_lsp.code.functions import parse

# A replacement in fewer lines that keeps less than this share of the words it replaces
# lost lines.
_KEPT_WORDS = 0.75
# Body lines that anchor nothing: a comment next to them is a placeholder's.
_PLACEHOLDERS = frozenset({"pass", "..."})
_NOT_IMPLEMENTED = re.compile(r"raise\s+NotImplementedError\b")
_DOC_FENCE = re.compile(r"(`{3,}|~{3,})")
_STRING_START = re.compile(r"^[rRbBuUfF]*(?:\"\"\"|'''|\"|')")
_SKIPPED_TOKENS = (tokenize.COMMENT, tokenize.NL, tokenize.ENCODING)
# Lines of a docstring this alike are one line edited, not one dropped and one written.
_ALIKE = 0.6

# Merged lines: (taken from the original?, index in it or in the reply).
_Merged = list[tuple[bool, int]]


@dataclass(frozen=True)
class Parts:
    """A def's lines by role, at their final indentation."""

    decorators: list[str]
    header: list[str]  # from `def` to the colon (and a comment after it)
    docstring: list[str] | None  # from after the header to the docstring's end
    body: list[str]


@dataclass(frozen=True)
class Kept:
    lines: list[str]  # the new function
    notes: tuple[str, ...]  # what of the original was put back, for the user


class CannotKeep(Exception):
    """The reply drops lines of the original that cannot be put back; str() says which."""


def keep_original(ours: Parts, theirs: Parts, header: list[str], prefix: str) -> Kept:
    """The function from the reply's `theirs` under `header`, with what it lost of `ours`.

    `prefix` is the def line's indentation, the same in both.
    """
    notes: list[str] = []
    decorators = _keep_decorators(ours.decorators, theirs.decorators, prefix, notes)
    docstring = _keep_docstring(ours.docstring, theirs.docstring, notes)
    body = _keep_comments(ours.body, theirs.body, notes)
    return Kept([*decorators, *header, *(docstring or []), *body], tuple(notes))


# --- decorators --------------------------------------------------------------------------


def _keep_decorators(
    ours: list[str], theirs: list[str], prefix: str, notes: list[str]
) -> list[str]:
    if not ours or ours == theirs:
        return theirs
    if not theirs:
        notes.append("kept the decorators the reply left out")
        return ours
    ours_units, theirs_units = _decorator_units(ours, prefix), _decorator_units(theirs, prefix)

    def fewer(deleted: range, inserted: range) -> bool:
        return len(inserted) < len(deleted)

    merged, lost = _merge(
        [_normalise("".join(u)) for u in ours_units],
        [_normalise("".join(u)) for u in theirs_units],
        fewer,
        moves=True,
    )
    if not lost:
        return theirs
    lines = [line for side, i in merged for line in (ours_units if side else theirs_units)[i]]
    dropped = ", ".join(f"`{ours_units[i][0].strip()}`" for i in lost)
    code = "\n".join(line.removeprefix(prefix) for line in lines) + "\ndef _(): pass\n"
    if not _parses(code):
        raise CannotKeep(f"the reply drops {dropped}, which cannot be put back")
    notes.append(f"kept {dropped} the reply dropped")
    return lines


def _decorator_units(lines: list[str], prefix: str) -> list[list[str]]:
    """The decorator lines as decorators (a call may span lines) and comment lines."""
    units: list[list[str]] = []
    for line in lines:
        starts = line.startswith(prefix + "@") or line.startswith(prefix + "#")
        if starts or not units:
            units.append([line])
        else:
            units[-1].append(line)
    return units


# --- the docstring -----------------------------------------------------------------------


def _keep_docstring(
    ours: list[str] | None, theirs: list[str] | None, notes: list[str]
) -> list[str] | None:
    if ours is None:
        return theirs
    if theirs is None:
        notes.append("kept the docstring the reply left out")
        return ours
    examples = _example_rows(ours)
    ours_keys = [line.strip() for line in ours]
    theirs_keys = [line.strip() for line in theirs]

    def says_less(deleted: range, inserted: range) -> bool:
        written = {theirs_keys[j] for j in inserted}
        if any(i in examples and ours_keys[i] not in written for i in deleted):
            return True  # an example is the user's test, not prose to rewrite
        if sum(map(bool, (theirs_keys[j] for j in inserted))) >= sum(
            map(bool, (ours_keys[i] for i in deleted))
        ):
            return False  # line for line: an edit, however short
        before = sum(len(ours_keys[i].split()) for i in deleted)
        after = sum(len(theirs_keys[j].split()) for j in inserted)
        return after < before * _KEPT_WORDS

    def line_by_line(deleted: range, inserted: range) -> _Merged:
        """A hunk that says less than the lines it replaces: a line it edits (one alike) is
        the reply's, unless it is an example's; every other line is the original's."""
        hunk: _Merged = []
        next_j = inserted.start
        for i in deleted:
            edited = next(
                (j for j in range(next_j, inserted.stop) if _alike(ours_keys[i], theirs_keys[j])),
                None,
            )
            if edited is None or i in examples:
                hunk.append((True, i))
            else:
                hunk.append((False, edited))
            next_j = next_j if edited is None else edited + 1
        return hunk

    merged, lost = _merge(ours_keys, theirs_keys, says_less, prefer_ours=True, resolve=line_by_line)
    lines = [(ours if side else theirs)[i] for side, i in merged]
    if not lost:
        return lines if _one_string(lines) else theirs
    count = len(lost)
    if not _one_string(lines):
        lines = ours  # the halves do not make one string: the user's docstring, whole
    notes.append(f"kept {count} line(s) of the docstring that the reply dropped or changed")
    return lines


def _alike(old: str, new: str) -> bool:
    return bool(old and new) and difflib.SequenceMatcher(None, old, new).ratio() >= _ALIKE


def _example_rows(lines: list[str]) -> set[int]:
    """The docstring's example lines: doctest sessions with their output, fenced blocks."""
    rows: set[int] = set()
    fence: str | None = None
    in_session = False
    for index, line in enumerate(lines):
        text = line.strip()
        if index == 0:
            text = _STRING_START.sub("", text)  # the first line opens the string
        if fence is not None:
            rows.add(index)
            if text.startswith(fence) and not text.strip(fence[0]):
                fence = None
            continue
        opening = _DOC_FENCE.match(text)
        if opening is not None:
            fence = opening.group(1)
            rows.add(index)
        elif text.startswith(">>>"):
            in_session = True
            rows.add(index)
        elif in_session and text and not text.startswith(('"""', "'''")):
            rows.add(index)  # a continuation or the expected output
        else:
            in_session = False
    return rows


def _one_string(lines: list[str]) -> bool:
    """Whether the lines, as a body, are one string statement: a docstring."""
    tree = parse("def _():\n" + "\n".join(lines) + "\n")
    if tree is None or not isinstance(tree.body[0], ast.FunctionDef):
        return False
    body = tree.body[0].body
    return (
        len(body) == 1
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    )


# --- comments in the body ----------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    key: str  # what the line says, for matching: its code, else its comment
    code: bool  # it holds code (or a string's continuation), not only a comment
    comment: int | None  # the column of its comment, if any


def _keep_comments(ours: list[str], theirs: list[str], notes: list[str]) -> list[str]:
    ours_rows, theirs_rows = _rows(ours), _rows(theirs)
    if ours_rows is None or theirs_rows is None or _placeholder(ours_rows):
        return theirs
    ours_at = [i for i, row in enumerate(ours_rows) if row.key]
    theirs_at = [j for j, row in enumerate(theirs_rows) if row.key]
    ours_keys = [ours_rows[i].key for i in ours_at]
    theirs_keys = [theirs_rows[j].key for j in theirs_at]
    # A comment the reply has elsewhere moved there: it is not lost.
    written = {
        line[row.comment :].strip()
        for line, row in zip(theirs, theirs_rows, strict=True)
        if row.comment is not None
    }
    out = list(theirs)
    restored: list[str] = []
    # (index in `out` before which to insert, lines), applied from the end.
    insertions: list[tuple[int, list[str]]] = []
    matcher = difflib.SequenceMatcher(None, ours_keys, theirs_keys, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for a, b in zip(range(i1, i2), range(j1, j2), strict=True):
                mine, yours = ours_rows[ours_at[a]], theirs_rows[theirs_at[b]]
                if (
                    mine.code
                    and mine.comment is not None
                    and yours.comment is None
                    and ours[ours_at[a]][mine.comment :].strip() not in written
                ):
                    line = ours[ours_at[a]]
                    code_end = len(line[: mine.comment].rstrip())
                    out[theirs_at[b]] = theirs[theirs_at[b]].rstrip() + line[code_end:]
                    restored.append(line[mine.comment :])
        elif (
            i2 > i1
            and _lost_comments(ours_rows, ours_at, ours_keys, i1, i2)
            and all(theirs_rows[theirs_at[j]].code for j in range(j1, j2))
            and not any(ours[ours_at[i]].strip() in written for i in range(i1, i2))
        ):
            # Comment lines gone, and no comment written in their place: they go back just
            # above the line they were above (after any code the reply put before it).
            first = ours_at[i1]
            last = ours_at[i2] if i2 < len(ours_at) else len(ours)
            lines = ours[first:last]
            if j2 < len(theirs_at):
                at = theirs_at[j2]
                if i2 < len(ours_at):
                    lines = _aligned(lines, ours[ours_at[i2]], theirs[at])
            else:
                at = theirs_at[-1] + 1 if theirs_at else len(theirs)
            insertions.append((at, lines))
            restored.extend(line.strip() for line in lines if line.strip())
    if not restored:
        return theirs
    for at, lines in sorted(insertions, key=lambda item: item[0], reverse=True):
        out[at:at] = lines
    if not _same_code(theirs, out):
        raise CannotKeep(
            f"the reply drops the comment `{restored[0]}` from code it kept,"
            " and it cannot be put back there"
        )
    notes.append(f"kept {len(restored)} comment(s) the reply dropped from code it kept")
    return out


def _rows(lines: list[str]) -> list[_Row] | None:
    """Each line's key and comment, from its tokens; None when it does not tokenize."""
    comments: dict[int, int] = {}
    code: set[int] = set()
    try:
        for token in _tokens(lines):
            row = token.start[0] - 1
            if token.type == tokenize.COMMENT:
                comments[row] = token.start[1]
            elif token.type not in (*_SKIPPED_TOKENS, tokenize.NEWLINE) and token.string.strip():
                code.update(range(row, token.end[0]))
    except (tokenize.TokenError, SyntaxError):
        return None
    rows = []
    for index, line in enumerate(lines):
        column = comments.get(index)
        if index in code:
            text = line[:column] if column is not None else line
            rows.append(_Row("code:" + _normalise(text), True, column))
        elif column is not None:
            rows.append(_Row(line.strip(), False, column))
        else:
            rows.append(_Row("", False, None))
    return rows


def _placeholder(rows: list[_Row]) -> bool:
    """Whether the body is a stub's (`...`, `pass`, `raise NotImplementedError`): its
    comments say what to write, and the new body replaces them."""
    code = [row.key.removeprefix("code:") for row in rows if row.code]
    return all(key in _PLACEHOLDERS or _NOT_IMPLEMENTED.match(key) for key in code)


def _lost_comments(rows: list[_Row], at: list[int], keys: list[str], i1: int, i2: int) -> bool:
    """Whether the lines of ours the reply dropped in a hunk are comment lines next to code
    it kept (not next to a stub's `pass`)."""
    if any(rows[at[i]].code for i in range(i1, i2)):
        return False  # it dropped code too: on purpose, with its comments
    anchors = [keys[i].removeprefix("code:") for i in (i1 - 1, i2) if 0 <= i < len(keys)]
    return any(anchor not in _PLACEHOLDERS for anchor in anchors)


def _aligned(lines: list[str], old_next: str, new_next: str) -> list[str]:
    """Comment lines that sat at the indentation of the line after them move with it."""
    old_indent, new_indent = _indent(old_next), _indent(new_next)
    return [
        new_indent + line[len(old_indent) :]
        if line.strip() and _indent(line) == old_indent
        else line
        for line in lines
    ]


def _same_code(before: list[str], after: list[str]) -> bool:
    """Whether two bodies are the same code (comments and blank lines aside)."""
    try:
        return _code_tokens(before) == _code_tokens(after)
    except (tokenize.TokenError, SyntaxError):
        return False


def _code_tokens(lines: list[str]) -> list[tuple[int, str]]:
    return [(t.type, t.string) for t in _tokens(lines) if t.type not in _SKIPPED_TOKENS]


def _tokens(lines: list[str]) -> list[tokenize.TokenInfo]:
    text = "".join(line + "\n" for line in lines)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(tokenize.generate_tokens(io.StringIO(text).readline))


# --- shared ------------------------------------------------------------------------------


def _merge(
    ours: list[str],
    theirs: list[str],
    lossy: Callable[[range, range], bool],
    *,
    prefer_ours: bool = False,
    resolve: Callable[[range, range], _Merged] | None = None,
    moves: bool = False,
) -> tuple[_Merged, list[int]]:
    """Lines of `theirs` with the hunks that lost lines of `ours` taken from `ours`.

    Returns the merged lines as (from ours?, index) and the indices of the non-blank lines
    of ours put back. Blank lines dropped alone are not lost; equal lines come from `ours`
    with `prefer_ours`; `resolve` merges a lossy replacement line by line (else it is ours).
    With `moves`, a line found elsewhere in `theirs` moved there: it is not lost.
    """
    present = frozenset(theirs) if moves else frozenset()
    merged: _Merged = []
    lost: list[int] = []
    matcher = difflib.SequenceMatcher(None, ours, theirs, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        deleted, inserted = range(i1, i2), range(j1, j2)
        missing = [i for i in deleted if ours[i] and ours[i] not in present]
        if tag == "equal":
            merged.extend(
                [(True, i) for i in deleted] if prefer_ours else [(False, j) for j in inserted]
            )
        elif missing and (not inserted or lossy(deleted, inserted)):
            if resolve is not None and inserted:
                hunk = resolve(deleted, inserted)
            else:
                hunk = [(True, i) for i in deleted if ours[i] not in present]
            merged.extend(hunk)
            lost.extend(i for side, i in hunk if side and ours[i])
        else:
            merged.extend((False, j) for j in inserted)
    return merged, lost


def _parses(text: str) -> bool:
    return parse(textwrap.dedent(text)) is not None


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]
