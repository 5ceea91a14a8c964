"""The check a fix of a tool's findings must pass before its tests run (issue 16).

A candidate clears the check when (a) its module parses, and (b) every verifying tool, run on
the candidate's text (never on the user's file), no longer reports the findings the user asked
to fix and reports nothing in the function that it did not report before. What the tool still
reports there, or reports anew, is the next `Execution result:` turn, in the form ruff prints
a finding. The tests of the function are the loop's business (refine/loop.py).

Findings are matched by tool and code (the message when there is no code), counted inside the
function: lines move when a body is rewritten, so a finding's line cannot say whether it is
the same one. A target the tool does not report on the original (another configuration in the
editor's server, an unsaved text) cannot be confirmed gone; for it, (b) is "nothing new".
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from oci_lsp.code.functions import find_function, split_lines
from oci_lsp.refine.loop import CheckOutcome
from oci_lsp.tools.findings import Finding, render_all
from oci_lsp.tools.runners import ToolCommand, ToolError, check_text
from oci_lsp.tools.syntax import syntax_error

_Key = tuple[str, str]  # (tool, code or message)
# Comments that make a tool look away: adding one clears a finding without fixing it.
_SILENCER = re.compile(r"#\s*(?:type:\s*ignore|noqa|pyright:\s*ignore|mypy:\s*ignore)", re.I)


def finding_key(finding: Finding) -> _Key:
    return (finding.tool, finding.code or finding.message)


def silencers(source: str, qualname: str) -> int:
    """How many `# type: ignore`, `# noqa`, `# pyright: ignore` the function holds."""
    location = find_function(source, qualname)
    if location is None:
        return 0
    lines = split_lines(source)[location.def_line - 1 : location.end_line]
    return sum(len(_SILENCER.findall(line)) for line in lines)


def in_function(findings: Sequence[Finding], source: str, qualname: str) -> list[Finding]:
    """The findings on the lines of `qualname` (decorators to its last line) in `source`."""
    location = find_function(source, qualname)
    if location is None:
        return []
    return [f for f in findings if location.def_line <= f.line <= location.end_line]


@dataclass
class ToolCheck:
    """Built once per fix by `prepare`: the tools' findings in the function as it is."""

    root: Path
    path: Path
    qualname: str
    targets: Sequence[Finding]
    commands: dict[str, ToolCommand]  # the verifying tools at hand, by name
    timeout: float = 60.0
    baseline: Counter[_Key] = field(default_factory=Counter)
    silenced: int = 0  # the silencing comments the function had
    found: list[Finding] = field(default_factory=list)  # the tools' findings in it now
    # The tools that could not run on the original, and why: left out of the check.
    failed: dict[str, str] = field(default_factory=dict)

    @classmethod
    async def prepare(
        cls,
        root: Path,
        path: Path,
        qualname: str,
        original: str,
        targets: Sequence[Finding],
        commands: Mapping[str, ToolCommand],
        timeout: float = 60.0,
    ) -> ToolCheck:
        """Run the tools on the original text: what the function has now. A tool that
        cannot run is left out of the check (ToolError from a candidate's run would be
        the tool's fault, not the candidate's)."""
        check = cls(root, path, qualname, targets, dict(commands), timeout)
        check.silenced = silencers(original, qualname)
        found = await asyncio.gather(
            *(check._run(command, original) for command in check.commands.values()),
            return_exceptions=True,
        )
        for name, result in zip(list(check.commands), found, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, ToolError):
                    raise result
                del check.commands[name]
                check.failed[name] = str(result)
                continue
            inside = in_function(result, original, qualname)
            check.found += inside
            check.baseline.update(finding_key(f) for f in inside)
        return check

    @property
    def tools(self) -> list[str]:
        return list(self.commands)

    async def _run(self, command: ToolCommand, text: str) -> list[Finding]:
        return await check_text(command, self.root, self.path, text, timeout=self.timeout)

    def _allowed(self) -> Counter[_Key]:
        """How many of each finding the function may keep: what it had, less the targets
        the tool confirmed there."""
        allowed = Counter(self.baseline)
        for target in self.targets:
            key = finding_key(target)
            if target.tool in self.commands and allowed[key] > 0:
                allowed[key] -= 1
        return allowed

    async def __call__(self, source: str) -> CheckOutcome:
        broken = syntax_error(self.path, source)
        if broken is not None:
            return CheckOutcome(
                False, render_all([broken], self.root, {self.path: source}), remaining=1
            )
        if silencers(source, self.qualname) > self.silenced:
            return CheckOutcome(
                False,
                "A `# type: ignore`, `# noqa` or `# pyright: ignore` comment hides the"
                " problem from the tool; it does not fix it. Fix the code instead.",
                remaining=len(self.targets),
            )
        results = await asyncio.gather(
            *(self._run(command, source) for command in self.commands.values()),
            return_exceptions=True,
        )
        inside: list[Finding] = []
        for result in results:
            if isinstance(result, ToolError):
                # The tool failed on this text (a timeout): no verdict, so no pass.
                return CheckOutcome(False, str(result), remaining=1)
            if isinstance(result, BaseException):
                raise result
            inside.extend(in_function(result, source, self.qualname))
        allowed = self._allowed()
        left: list[Finding] = []
        for finding in inside:
            key = finding_key(finding)
            if allowed[key] > 0:
                allowed[key] -= 1
            else:
                left.append(finding)
        if left:
            report = render_all(left, self.root, {self.path: source})
            return CheckOutcome(False, report, remaining=len(left))
        checked = ", ".join(self.commands) or "the parser"
        return CheckOutcome(True, summary=f"{checked}: the findings are gone")
