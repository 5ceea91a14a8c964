"""The tools' machine-readable outputs, read into findings.

Each tool counts columns its own way; a Finding's are 1-based code points, the end
exclusive:

- ruff `--output-format json`: a JSON list; `location`/`end_location` are 1-based
  `row`/`column` in code points, the end exclusive. A syntax error has the code
  `invalid-syntax` (ruff 0.12 and later) or none and a message `SyntaxError: ...` (before).
- mypy `-O json` (1.11+): one JSON object a line; `column` 0-based, `end_column` 0-based
  exclusive, `hint` the notes of an error joined by newlines; a note of its own has
  severity `note`. mypy's text format (`--show-column-numbers --show-error-end`) prints
  both 1-based, the end inclusive. A syntax error's column is one more than it should be in
  both (mypy stores the SyntaxError's 1-based offset as its 0-based column). On a line with
  non-ASCII text before the column, mypy 2's parser gives columns that are too small (it
  converts an offset that is already in code points as if it were in bytes): columns are
  clamped to the line, lines are right.
- pyright `--outputjson`: `generalDiagnostics` with 0-based LSP ranges in UTF-16 code
  units (it is JavaScript), converted with the line's text; `rule` is the code (none for a
  syntax error); a message's later lines explain the first.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from oci_lsp.code.scan import split_lines
from oci_lsp.tools.findings import SEVERITIES, Finding, split_message

TextOf = Callable[[Path], "str | None"]

# file:line[:col[:end_line:end_col]]: severity: message  [code]
_MYPY_LINE = re.compile(
    r"^(?P<file>.+?):(?P<line>-?\d+)(?::(?P<col>-?\d+))?(?::(?P<eline>-?\d+):(?P<ecol>-?\d+))?:"
    r" (?P<severity>error|warning|note): (?P<message>.*?)(?:  \[(?P<code>[a-z0-9-]+)\])?$"
)


def ruff_findings(stdout: str) -> list[Finding]:
    """ruff's JSON list. Raises ValueError when it is not one."""
    items = json.loads(stdout)
    if not isinstance(items, list):
        raise ValueError("not a JSON list")
    found = []
    for item in items:
        start = item.get("location") or {}
        end = item.get("end_location") or {}
        message, detail = split_message(str(item.get("message") or ""))
        severity = item.get("severity")
        found.append(
            Finding(
                tool="ruff",
                code=item.get("code") or None,
                message=message,
                detail=detail,
                path=Path(item["filename"]),
                line=max(int(start.get("row") or 1), 1),
                column=max(int(start.get("column") or 1), 1),
                end_line=end.get("row"),
                end_column=end.get("column"),
                severity=severity if severity in SEVERITIES else "error",
            )
        )
    return found


def mypy_json_findings(stdout: str, root: Path) -> list[Finding]:
    """mypy's JSON lines; a note goes into the detail of the error before it. Lines that are
    not JSON (a warning mypy printed anyway) are passed over; raises ValueError when a
    JSON line is not one of mypy's."""
    found: list[Finding] = []
    for raw in stdout.splitlines():
        if not raw.startswith("{"):
            continue
        item = json.loads(raw)
        severity = str(item.get("severity") or "error")
        code = item.get("code") or None
        message, detail = split_message(str(item["message"]))
        if severity == "note":
            _fold_note(found, "\n".join(filter(None, (message, detail))))
            continue
        column = item.get("column")
        end_column = item.get("end_column")
        shift = 0 if code == "syntax" else 1
        hint = item.get("hint") or ""
        found.append(
            Finding(
                tool="mypy",
                code=code,
                message=message,
                detail="\n".join(filter(None, (detail, hint))),
                path=_under(root, str(item["file"])),
                line=max(int(item.get("line") or 1), 1),
                column=max(int(column) + shift, 1) if isinstance(column, int) else 1,
                end_line=item.get("end_line"),
                end_column=end_column + shift if isinstance(end_column, int) else None,
                severity=severity if severity in SEVERITIES else "error",
            )
        )
    return found


def mypy_text_findings(stdout: str, root: Path) -> list[Finding]:
    """mypy's text lines (`--show-column-numbers --show-error-end --show-error-codes
    --no-pretty --no-error-summary --hide-error-context`); other lines are passed over."""
    found: list[Finding] = []
    for raw in stdout.splitlines():
        match = _MYPY_LINE.match(raw.rstrip())
        if match is None:
            continue
        if match["severity"] == "note":
            _fold_note(found, match["message"])
            continue
        code = match["code"]
        shift = 1 if code == "syntax" else 0
        column = int(match["col"]) - shift if match["col"] else 1
        found.append(
            Finding(
                tool="mypy",
                code=code,
                message=match["message"],
                path=_under(root, match["file"]),
                line=max(int(match["line"]), 1),
                column=max(column, 1),
                end_line=int(match["eline"]) if match["eline"] else None,
                # Inclusive in the text format: one past it, as everywhere else.
                end_column=int(match["ecol"]) + 1 - shift if match["ecol"] else None,
                severity=match["severity"],
            )
        )
    return found


def pyright_findings(stdout: str, place: Callable[[str], Path], text_of: TextOf) -> list[Finding]:
    """pyright's JSON report; `place` maps its file names to the workspace's paths (pyright
    may have run on a mirror), `text_of` gives a file's text to convert UTF-16 columns.
    Raises ValueError when it is not pyright's report."""
    report = json.loads(stdout)
    if not isinstance(report, dict) or "generalDiagnostics" not in report:
        raise ValueError("no generalDiagnostics")
    found = []
    lines_of: dict[Path, list[str] | None] = {}
    for item in report["generalDiagnostics"]:
        path = place(str(item["file"]))
        if path not in lines_of:
            text = text_of(path)
            lines_of[path] = split_lines(text) if text is not None else None
        lines = lines_of[path]
        span: dict[str, Any] = item.get("range") or {}
        start = span.get("start") or {}
        end = span.get("end") or {}
        line0, char0 = int(start.get("line", 0)), int(start.get("character", 0))
        end_line0, end_char0 = int(end.get("line", line0)), int(end.get("character", char0))
        message, detail = split_message(str(item.get("message") or ""))
        severity = item.get("severity")
        found.append(
            Finding(
                tool="pyright",
                code=item.get("rule") or None,
                message=message,
                detail=detail,
                path=path,
                line=line0 + 1,
                column=_from_utf16(lines, line0, char0) + 1,
                end_line=end_line0 + 1,
                end_column=_from_utf16(lines, end_line0, end_char0) + 1,
                severity=severity if severity in SEVERITIES else "error",
            )
        )
    return found


def _fold_note(found: list[Finding], note: str) -> None:
    """A note belongs to the error before it; one with none before is dropped."""
    if not found or not note:
        return
    last = found[-1]
    found[-1] = dataclasses.replace(last, detail=f"{last.detail}\n{note}" if last.detail else note)


def _under(root: Path, name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else root / path


def _from_utf16(lines: list[str] | None, line0: int, units: int) -> int:
    """A UTF-16 offset on a line as a code point offset (they differ past an astral
    character: an emoji is two units, one code point)."""
    if lines is None or not 0 <= line0 < len(lines):
        return units
    text = lines[line0]
    if text.isascii():
        return units
    counted = 0
    for index, char in enumerate(text):
        if counted >= units:
            return index
        counted += 2 if ord(char) > 0xFFFF else 1
    return len(text) + max(units - counted, 0)
