"""Traceback frames and the final exception, read back from a runner's failure text.

A runner that is not our pytest plugin only gives us text. The shapes understood here:

* CPython tracebacks (also what unittest and ``pytest --tb=native`` print):
  ``  File "path.py", line 12, in func``, chained with "During handling of the above
  exception..." / "The above exception was the direct cause...".
* pytest's ``--tb=long`` / ``auto`` text: entries separated by ``_ _ _ _`` lines, each ending
  with ``path.py:12: ExceptionType`` (or nothing after the colon), and ``--tb=short`` entries
  ``path.py:12: in func`` followed by the indented source line; exception lines start with
  ``E``.

Everything here is best effort: garbage in gives ``[]`` / ``None``, never an exception.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from oci_lsp.testing.results import Frame

__all__ = ["exception_line", "parse_frames", "syntax_error_location"]

# `  File "/path/x.py", line 12, in func` (ExceptionGroup output prefixes `|` columns).
_CPYTHON_FRAME = re.compile(
    r'^(?:[ \t]*\|)*[ \t]*File "(?P<path>[^"]+)", line (?P<line>\d+), in (?P<func>\S.*?)\s*$'
)
# `  File "/path/x.py", line 3` with no function: the location of a SyntaxError, in
# CPython's text or in pytest's `E     File ...` lines.
_SYNTAX_LOCATION = re.compile(
    r'^(?:E\s+|(?:[ \t]*\|)*[ \t]*)File "(?P<path>[^"]+)", line (?P<line>\d+)\s*$'
)
# pytest's `path/to/x.py:12: in func`, `path/to/x.py:12: ValueError` or `path/to/x.py:12: `.
# Locations are written at column 0; `E ` lines are the exception's text.
_PYTEST_LOCATION = re.compile(r"^(?!E |E$|>)(?P<path>\S.*?\.py):(?P<line>\d+):(?: (?P<rest>.*))?$")
_PYTEST_IN = re.compile(r"^in (?P<func>\S+)\s*$")
# pytest separates the entries of a long traceback with `_ _ _ _ ...`.
_ENTRY_SEPARATOR = re.compile(r"^(?:_ ){3,}_?\s*$")
_CHAIN_SEPARATOR = re.compile(
    r"^\s*(?:During handling of the above exception, another exception occurred:"
    r"|The above exception was the direct cause of the following exception:)\s*$"
)
_TRACEBACK_HEADER = re.compile(
    r"^(?:[ \t]*[|+])*[ \t]*(?:Exception Group )?Traceback \(most recent call last\):\s*$"
)
_DEF_LINE = re.compile(r"^\s*(?:async\s+)?def\s+(?P<name>\w+)\s*\(")

# An exception's type as the interpreter prints it: `ValueError`, `requests.exceptions.
# HTTPError`, `test_mod.test_x.<locals>.Inner`.
_TYPE = r"[^\W\d]\w*(?:\.(?:<locals>|[^\W\d]\w*))*"
_EXC_WITH_MESSAGE = re.compile(rf"^(?P<type>{_TYPE}): (?P<msg>.*)$")
_EXC_WITH_EMPTY_MESSAGE = re.compile(rf"^(?P<type>{_TYPE}):\s*$")
_EXC_BARE = re.compile(rf"^(?P<type>{_TYPE})\s*$")
# A bare name on its own is only taken for an exception when it is named like one.
_EXC_LIKE_NAME = re.compile(
    r"(?:Error|Exception|Exit|Interrupt|Iteration|Warning|Failed|Failure|Timeout)$"
)


def parse_frames(text: str, rootdir: Path) -> list[Frame]:
    """The frames of the exception that was raised, outermost first.

    Relative paths are taken relative to ``rootdir``; every path is made absolute and
    normalized. Locations in files that are not ``.py`` files (``<frozen ...>``,
    ``<string>``) are left out. With chained exceptions, the frames of the last traceback.
    """
    try:
        return _parse_frames(text, rootdir)
    except Exception:  # the text is whatever the runner wrote; never fail on it
        return []


def exception_line(text: str) -> tuple[str, str] | None:
    """The final exception of ``text`` as ``(type_name, first line of its message)``.

    For pytest's text the first ``E`` line of the last entry gives it (``assert ...`` lines
    are ``AssertionError``s); for CPython's text, the exception line after the last frame.
    ``None`` when no exception can be found.
    """
    try:
        return _exception_line(text)
    except Exception:  # never fail on the runner's text
        return None


def syntax_error_location(text: str, rootdir: Path) -> tuple[str, int] | None:
    """Where a SyntaxError in ``text`` points: ``File "x.py", line 3`` (no function).

    CPython prints it under the traceback and pytest in its ``E`` lines. The last one, as
    ``(absolute path, 1-based line)``; ``None`` when there is none in a ``.py`` file.
    """
    try:
        found = None
        for line in text.splitlines():
            match = _SYNTAX_LOCATION.match(line)
            if match and match["path"].strip().endswith(".py") and int(match["line"]) > 0:
                found = (_absolute(match["path"].strip(), rootdir), int(match["line"]))
        return found
    except Exception:  # never fail on the runner's text
        return None


# --- frames ---------------------------------------------------------------------------


def _segments(lines: list[str]) -> list[list[str]]:
    """Split the text into one part per traceback (chained exceptions give several)."""
    segments: list[list[str]] = [[]]
    for line in lines:
        if _CHAIN_SEPARATOR.match(line) or _TRACEBACK_HEADER.match(line):
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append(line)
    return segments


def _parse_frames(text: str, rootdir: Path) -> list[Frame]:
    lines = text.splitlines()
    for segment in reversed(_segments(lines)):
        frames = _segment_frames(segment, rootdir)
        if frames:
            return frames
    return []


def _segment_frames(lines: list[str], rootdir: Path) -> list[Frame]:
    frames: list[Frame] = []
    entry_start = 0  # where the current pytest entry's source excerpt begins
    for index, line in enumerate(lines):
        if _ENTRY_SEPARATOR.match(line):
            entry_start = index + 1
            continue
        match = _CPYTHON_FRAME.match(line)
        if match:
            frame = _frame(match["path"], match["line"], match["func"], rootdir)
            if frame is not None:
                frames.append(frame)
            entry_start = index + 1
            continue
        match = _PYTEST_LOCATION.match(line)
        if match:
            rest = match["rest"] or ""
            in_match = _PYTEST_IN.match(rest)
            if in_match:
                function = in_match["func"]
            else:
                function = _enclosing_def(lines[entry_start:index]) or "?"
            frame = _frame(match["path"], match["line"], function, rootdir)
            if frame is not None:
                frames.append(frame)
            entry_start = index + 1
    return frames


def _frame(path: str, line: str, function: str, rootdir: Path) -> Frame | None:
    path = path.strip()
    if not path.endswith(".py"):
        return None
    number = int(line)
    if number < 1:
        return None
    return Frame(path=_absolute(path, rootdir), line=number, function=function)


def _absolute(path: str, rootdir: Path) -> str:
    return os.path.normpath(os.path.join(os.path.abspath(rootdir), path))


def _indent(line: str) -> int:
    # pytest marks the failing line with `>` in the first column; it stands for a space.
    if line.startswith(">"):
        line = " " + line[1:]
    return len(line) - len(line.lstrip())


def _enclosing_def(excerpt: list[str]) -> str | None:
    """The function of a pytest long entry: the nearest `def` above the failing line."""
    code = [line for line in excerpt if line.strip() and not line.startswith("E ")]
    if not code:
        return None
    failing = next((i for i in range(len(code) - 1, -1, -1) if code[i].startswith(">")), None)
    target = len(code) - 1 if failing is None else failing
    # The enclosing def is indented less than every line from it down to the failing one.
    limit = _indent(code[target])
    for line in reversed(code[:target]):
        indent = _indent(line)
        match = _DEF_LINE.match(line)
        if match and indent < limit:
            return match["name"]
        limit = min(limit, indent)
    return None


# --- the exception ------------------------------------------------------------------


def _exception_line(text: str) -> tuple[str, str] | None:
    lines = text.splitlines()
    segments = [segment for segment in _segments(lines) if any(s.strip() for s in segment)]
    if not segments:
        return None
    segment = segments[-1]
    # The last pytest entry: after the last `_ _ _` separator.
    last_separator = max(
        (i for i, line in enumerate(segment) if _ENTRY_SEPARATOR.match(line)), default=-1
    )
    block = segment[last_separator + 1 :]
    e_lines = [line[1:].strip() for line in block if line.startswith("E ") or line == "E"]
    e_lines = [line for line in e_lines if line]
    if e_lines:
        return _from_pytest_block(block, e_lines)
    return _from_cpython(segment)


def _from_pytest_block(block: list[str], e_lines: list[str]) -> tuple[str, str] | None:
    location_type = ""
    for line in reversed(block):
        match = _PYTEST_LOCATION.match(line)
        if match:
            rest = (match["rest"] or "").strip()
            if _EXC_BARE.match(rest):
                location_type = rest
            break
    first = e_lines[0]
    if first.startswith('File "'):
        # A SyntaxError: its location and source come first, the exception line last.
        first = e_lines[-1]
    parsed = _parse_exception(first, bare_needs_exception_name=False)
    if parsed is not None:
        return parsed
    if first == "assert" or first.startswith("assert "):
        return "AssertionError", first
    if location_type:
        return location_type, first
    return None


def _from_cpython(segment: list[str]) -> tuple[str, str] | None:
    last_frame = max(
        (i for i, line in enumerate(segment) if _CPYTHON_FRAME.match(line)), default=None
    )
    if last_frame is not None:
        for line in segment[last_frame + 1 :]:
            if not line.strip() or line[0].isspace():
                continue  # source lines, carets, a SyntaxError's location
            parsed = _parse_exception(line.rstrip(), bare_needs_exception_name=False)
            if parsed is not None:
                return parsed
    # No frames: the last line that reads like an exception.
    for line in reversed(segment):
        if not line.strip() or line[0].isspace():
            continue
        parsed = _parse_exception(line.rstrip(), bare_needs_exception_name=True)
        if parsed is not None:
            return parsed
    return None


def _parse_exception(line: str, *, bare_needs_exception_name: bool) -> tuple[str, str] | None:
    match = _EXC_WITH_MESSAGE.match(line)
    if match:
        return match["type"], match["msg"].strip()
    match = _EXC_WITH_EMPTY_MESSAGE.match(line) or _EXC_BARE.match(line)
    if match:
        name = match["type"]
        if bare_needs_exception_name and not _EXC_LIKE_NAME.search(name):
            return None
        return name, ""
    return None
