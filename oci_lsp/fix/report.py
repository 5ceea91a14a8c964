"""What `oci-lsp --fix` tells: live progress lines, the summary table, the JSON report."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

Status = Literal["fixed", "not-fixed", "skipped", "rolled-back"]


@dataclass
class RoundReport:
    number: int
    candidates: int
    feedback: str | None  # the execution result this round answered
    # Candidates refused because they would drop lines of the function that could not be
    # put back: "candidate 2: rejected: the reply drops the comment ...".
    rejected: list[str] = field(default_factory=list)
    # The function(s) the round worked on, dotted: the top suspect, a next one, or two.
    functions: list[str] = field(default_factory=list)


@dataclass
class GroupReport:
    """One function and the failing tests that point at it."""

    path: str  # relative to the project
    function: str  # qualname
    tests: list[str]
    status: Status = "not-fixed"
    why: str = ""
    rounds: list[RoundReport] = field(default_factory=list)
    diff: str = ""
    seconds: float = 0.0
    # Lines of the original the written fix's reply dropped and that were put back.
    kept: list[str] = field(default_factory=list)
    # The ranked functions the group's failures may be in, dotted, the ones it tries
    # (`function` is the first); and those the fix changed: one, or two fixed together.
    suspects: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    # A group of a tool's findings (`--tools`, issue 16): the tool ("python" for a syntax
    # error) and its findings ({tool, path, code, message, line}, lines 1-based), in place of
    # `tests` in the JSON report.
    tool: str | None = None
    diagnostics: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if self.tool is None:
            del out["tool"], out["diagnostics"]
        else:
            del out["tests"], out["suspects"]
        return out


@dataclass
class Report:
    root: str
    dry_run: bool
    groups: list[GroupReport] = field(default_factory=list)
    # test, why; or a finding outside any function (tool, path, code, message, line, why)
    unfixable: list[dict[str, Any]] = field(default_factory=list)
    failing_before: int = 0
    failing_after: int | None = None
    seconds: float = 0.0
    python: dict[str, str] | None = None  # the interpreter that ran the tests: path, source, reason

    def counts(self) -> dict[str, int]:
        counts = {"fixed": 0, "not-fixed": 0, "skipped": 0, "rolled-back": 0}
        for group in self.groups:
            counts[group.status] += 1
        counts["skipped"] += len(self.unfixable)
        return counts

    def to_json(self) -> dict[str, Any]:
        out = {**asdict(self), "counts": self.counts()}
        out["groups"] = [g.to_json() for g in self.groups]
        return out

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)

    def table(self) -> str:
        """The summary printed at the end."""
        rows = [("status", "function", "found", "rounds", "why")]
        for group in self.groups:
            what = f" ({group.tool})" if group.tool else ""
            rows.append(
                (
                    group.status,
                    f"{group.path}::{group.function}{what}",
                    str(len(group.diagnostics) if group.tool else len(group.tests)),
                    str(len(group.rounds)),
                    group.why,
                )
            )
        for item in self.unfixable:
            where = item.get("test") or (
                f"{item['path']}:{item['line']} {item['tool']} {item.get('code') or ''}".rstrip()
            )
            rows.append(("skipped", where, "1", "0", item["why"]))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
            + ("  " + row[4] if row[4] else "")
            for row in rows
        ]
        # Candidates refused because they would drop lines of the function: never silent.
        lines.extend(
            f"  {group.path}::{group.function} round {each.number}: {note}"
            for group in self.groups
            for each in group.rounds
            for note in each.rejected
        )
        counts = self.counts()
        after = "" if self.failing_after is None else f", {self.failing_after} failing after"
        lines.append(
            f"{counts['fixed']} fixed, {counts['not-fixed']} not fixed,"
            f" {counts['rolled-back']} rolled back, {counts['skipped']} skipped;"
            f" {self.failing_before} failing before{after}; {self.seconds:.1f} s"
            + (" (dry run: nothing written)" if self.dry_run else "")
        )
        return "\n".join(lines)


class Display:
    """Progress on stderr: one line rewritten in place on a terminal, plain lines otherwise
    (a pipe, a CI log: the `CI` variable is set)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() and not os.environ.get("CI")
        self._last = 0.0
        self._shown = False

    def status(self, message: str, *, counter: bool = False) -> None:
        """A passing state: replaced by the next one on a terminal (at most 4 a second); in a
        log, a line, except counters (tokens), which only a terminal shows."""
        if counter and not self.live:
            return
        if self.live:
            now = time.monotonic()
            if now - self._last < 0.25:
                return
            self._last = now
            self.stream.write("\r\x1b[2K" + message[:200])
            self.stream.flush()
            self._shown = True
        else:
            self.say(message)

    def say(self, message: str) -> None:
        """A line that stays."""
        if self.live and self._shown:
            self.stream.write("\r\x1b[2K")
            self._shown = False
        self.stream.write(message + "\n")
        self.stream.flush()
