"""One thing a tool reported, and how it reads in a feedback turn.

A finding is printed as ruff's full output prints a diagnostic, with the tool's name before
the code so the model knows who complained (`mypy [return-value]`, `ruff F841`, `pyright
reportReturnType`, `python` for a syntax error), then the offending line with carets under
what was flagged:

    calc.py:3:12: mypy [return-value] Incompatible return value type (got "int", expected "str")
      |
    3 |     return len(x)
      |            ^^^^^^
      |
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from oci_lsp.code.scan import split_lines

SEVERITIES = ("error", "warning", "information", "hint")


@dataclass(frozen=True)
class Finding:
    """What a tool reported at one place. Lines and columns are 1-based, columns in code
    points (what a str index counts); `end_column` is exclusive, as ruff's `end_location`
    (a one-character range at column 5 ends at 6)."""

    tool: str  # "ruff" | "mypy" | "pyright" | "python" (a syntax error) | another source's name
    code: str | None  # "F821", "return-value", "reportReturnType"; None when the tool gives none
    message: str  # one line
    path: Path  # absolute
    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None
    severity: str = "error"  # one of SEVERITIES
    detail: str = ""  # the rest of a multi-line message, mypy's notes


def split_message(text: str) -> tuple[str, str]:
    """(first line, the rest): a multi-line message (pyright's, a note) as message and detail."""
    first, _, rest = text.strip("\n").partition("\n")
    return first.rstrip(), rest.rstrip()


def label(finding: Finding) -> str:
    """The tool and the code as the tool's own output writes the code: `mypy [return-value]`,
    `ruff F841`, `pyright reportReturnType`; the tool alone when there is no code."""
    parts = [finding.tool] if finding.tool else []
    if finding.code:
        parts.append(f"[{finding.code}]" if finding.tool == "mypy" else finding.code)
    return " ".join(parts)


def shown_path(path: Path, root: Path) -> str:
    """path relative to root (posix) when it lies under it, else as it is."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def render(finding: Finding, root: Path, source: str | None) -> str:
    """The finding as ruff's full output prints one: `path:line:col: TOOL CODE message`, the
    detail lines, then the line it is on from `source` with carets under its range (when
    `source` is given and holds that line)."""
    head = f"{shown_path(finding.path, root)}:{finding.line}:{finding.column}:"
    tag = label(finding)
    out = [f"{head} {tag} {finding.message}" if tag else f"{head} {finding.message}"]
    out.extend(f"  {line}" if line.strip() else "" for line in finding.detail.splitlines())
    if source is not None:
        out.extend(_snippet(finding, source))
    return "\n".join(out)


def render_all(findings: Iterable[Finding], root: Path, sources: Mapping[Path, str]) -> str:
    """Each finding rendered (its path's text from `sources`), separated by blank lines."""
    return "\n\n".join(render(f, root, sources.get(f.path)) for f in findings)


def _snippet(finding: Finding, source: str) -> list[str]:
    lines = split_lines(source)
    if not 1 <= finding.line <= len(lines):
        return []
    # A null byte (itself a finding) shown as the control picture: one character, so the
    # carets stay where they belong.
    text = lines[finding.line - 1].rstrip().replace("\0", "\u2400")
    start = min(max(finding.column, 1), len(text) + 1) - 1
    if finding.end_line is not None and finding.end_line > finding.line:
        end = len(text)  # the range goes on below: mark to the end of this line
    elif finding.end_column is not None and finding.end_line in (None, finding.line):
        end = min(finding.end_column - 1, len(text))
    else:
        end = start + 1
    end = max(end, start + 1)
    # Tabs are kept in the caret line's indent, so the carets sit under the same characters
    # whatever width the reader's tabs have.
    indent = "".join("\t" if ch == "\t" else " " for ch in text[:start])
    gutter = " " * len(str(finding.line))
    return [
        f"{gutter} |",
        f"{finding.line} | {text}" if text else f"{finding.line} |",
        f"{gutter} | {indent}{'^' * (end - start)}",
        f"{gutter} |",
    ]
