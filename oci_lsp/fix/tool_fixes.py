"""`oci-lsp --fix --tools ruff,mypy`: the tools' findings fixed as the failing tests are (issue 16).

Modules that do not parse come first (their syntax error is the feedback: nothing else can run
on them), then every finding the tools report under the workspace's own configuration that
lies inside a function, one group per function and tool. A group is fixed by the refinement
loop with the tool's report as the feedback turn; a candidate is written only when it parses,
the tool no longer reports those findings in the function and nothing new there, and the
function's tests still pass (refine/tool_check.py, then the sandbox). Findings outside any
function are reported, not fixed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oci_lsp.code.scan import definitions
from oci_lsp.config import TOOL_NAMES
from oci_lsp.fix.report import GroupReport, RoundReport
from oci_lsp.fix.writes import FileProblem, TextFile, read_text_file
from oci_lsp.refine.loop import Refiner, Target, TestPlan
from oci_lsp.refine.tool_check import ToolCheck
from oci_lsp.tools.findings import Finding, render_all
from oci_lsp.tools.runners import ToolCommand, ToolError, check_workspace, find_tool
from oci_lsp.tools.syntax import syntax_error, syntax_error_in

if TYPE_CHECKING:
    from oci_lsp.fix.driver import _FixRun

FIXED_SEVERITIES = ("error", "warning")  # a tool's information and hints are not defects


class ToolsUnavailable(Exception):
    """A tool asked for cannot run; str() is the one line for the user (exit 2)."""


@dataclass
class FindingGroup:
    """The findings of one tool in one function."""

    path: Path
    qualname: str
    tool: str
    findings: list[Finding]
    report: GroupReport
    # The file before the fix was written, for a roll-back (driver.py's _check_written).
    before: dict[Path, TextFile] = field(default_factory=dict)


def parse_tools(value: str) -> list[str]:
    """`--tools ruff,mypy`; "" for the enabled ones. Raises ValueError naming the known ones."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in TOOL_NAMES]
    if unknown:
        raise ValueError(
            f"unknown tool {', '.join(unknown)}: --tools takes {', '.join(TOOL_NAMES)}"
        )
    return list(dict.fromkeys(names))


def commands_for(
    names: Sequence[str] | None, python: str, enabled: Sequence[str] | None, override: Any
) -> dict[str, ToolCommand]:
    """The commands of the tools to run: those named (each must be found), or with none named
    the enabled ones that are installed (`tools.enabled`; all installed when unset)."""
    if names:
        found: dict[str, ToolCommand] = {}
        for name in names:
            command = find_tool(name, python, override(name))
            if command is None:
                raise ToolsUnavailable(
                    f"{name} is not installed beside {python} nor on PATH: install it in the"
                    f" project's environment, or set tools.{name} to the command that runs it"
                )
            found[name] = command
        return found
    wanted = TOOL_NAMES if enabled is None else enabled
    commands = {name: find_tool(name, python, override(name)) for name in wanted}
    return {name: command for name, command in commands.items() if command is not None}


async def syntax_findings(python: str, paths: Iterable[Path]) -> list[Finding]:
    """The modules that do not parse, by the interpreter that runs the project's tests: our
    parser first (fast), then the project's for the files ours refuses when it is another
    version (a 3.12 `type X = int` is no error in a 3.12 project)."""
    found = []
    same = os.path.realpath(python) == os.path.realpath(sys.executable)
    for path in paths:
        try:
            text = read_text_file(path).text
        except FileProblem:
            continue
        error = syntax_error(path, text)
        if error is not None and not same:
            error = await syntax_error_in(python, path, text)
        if error is not None:
            found.append(error)
    return found


def group_findings(
    findings: Iterable[Finding], read: Callable[[str], str | None], root: Path
) -> tuple[list[FindingGroup], list[dict[str, Any]]]:
    """The findings by (file, innermost function, tool), and those outside any function (as
    the report's entries)."""
    groups: dict[tuple[Path, str, str], FindingGroup] = {}
    outside: list[dict[str, Any]] = []
    for finding in findings:
        if finding.severity not in FIXED_SEVERITIES:
            continue
        text = read(str(finding.path))
        holding = (
            [d for d in definitions(text) if d.def_line <= finding.line <= d.end_line]
            if text is not None
            else []
        )
        relative = os.path.relpath(finding.path, root)
        if not holding:
            outside.append({**_entry(finding, relative), "why": "outside any function"})
            continue
        qualname = holding[-1].qualname
        key = (finding.path, qualname, finding.tool)
        if key not in groups:
            report = GroupReport(relative, qualname, [], tool=finding.tool)
            groups[key] = FindingGroup(finding.path, qualname, finding.tool, [], report)
        groups[key].findings.append(finding)
        groups[key].report.diagnostics.append(_entry(finding, relative))
    return list(groups.values()), outside


def _entry(finding: Finding, relative: str) -> dict[str, Any]:
    return {
        "tool": finding.tool,
        "path": relative,
        "code": finding.code,
        "message": finding.message,
        "line": finding.line,
    }


async def fix_group(run: _FixRun, group: FindingGroup, commands: dict[str, ToolCommand]) -> None:
    """One function's findings of one tool: refine until the tool is satisfied and the
    tests still pass; write the fix (or print it, in a dry run)."""
    assert run.backend is not None and run.sandbox is not None
    current = run.files.get(group.path) or read_text_file(group.path)
    run.files[group.path] = current
    source = current.text
    verifying = {group.tool: commands[group.tool]} if group.tool in commands else {}
    check = await ToolCheck.prepare(
        run.root, group.path, group.qualname, source, group.findings, verifying
    )
    if check.failed:
        raise ToolError("; ".join(check.failed.values()))
    # What the tool reports in the function now (an earlier fix in the file moved lines);
    # a syntax error as the parser says it now.
    targets = check.found or _syntax_now(group, source) or group.findings
    if not targets and group.tool != "python":
        group.report.status, group.report.why = "skipped", "the tool no longer reports it"
        return
    name = group.qualname.rpartition(".")[2]
    others = run.graph.tests_exercising(group.path, name, run.read)
    plan = TestPlan(
        failing=[],
        others=others,
        failure=render_all(targets, run.root, {group.path: source}),
    )
    verifier = group.tool if verifying else "the parser"
    goal = f"so that {verifier} no longer reports the problems below in it"
    if others:
        goal += " and its tests still pass"
    refiner = Refiner.from_settings(
        run.backend, run.sandbox, run.settings, conversations=run.conversations, priority="batch"
    )
    label = f"{group.report.path}::{group.qualname} ({group.tool})"

    def event(kind: str, number: int, payload: object) -> None:
        if kind == "generating":
            run.display.status(f"{label}: round {number}, {payload} tokens", counter=True)
        elif kind == "verifying":
            run.display.status(f"{label}: round {number}, checking {payload} candidate(s)")

    run.display.status(f"{label}: round 1")
    result = await refiner.refine(
        Target(run.root, group.path, group.qualname, source),
        plan,
        check=check,
        goal=goal,
        on_event=event,
    )
    group.report.rounds = [
        RoundReport(
            i + 1,
            len(r.candidates),
            r.feedback,
            [f"candidate {c.index + 1}: {c.error}" for c in r.candidates if c.rejected],
            functions=[group.qualname],
        )
        for i, r in enumerate(result.rounds)
    ]
    if not (result.verified and result.source is not None):
        group.report.status, group.report.why = "not-fixed", result.message
        return
    group.before = run.write_fix(group.report, {group.path: result.source}, list(result.kept))
    if not verifying and group.tool != "python":
        group.report.why = "; ".join(
            filter(None, [group.report.why, f"unverified by {group.tool}: not installed"])
        )


def _syntax_now(group: FindingGroup, source: str) -> list[Finding]:
    if group.tool != "python":
        return []
    error = syntax_error(group.path, source)
    return [error] if error is not None else []


async def fix_all(
    run: _FixRun, groups: list[FindingGroup], commands: dict[str, ToolCommand]
) -> None:
    """The groups, `--jobs` at a time, one fix of a file at a time."""
    jobs = asyncio.Semaphore(max(1, run.options.jobs))

    async def one(group: FindingGroup) -> None:
        async with run.locks.setdefault(group.path, asyncio.Lock()), jobs:
            try:
                await fix_group(run, group, commands)
            except (FileProblem, ToolError) as exc:
                group.report.status, group.report.why = "not-fixed", str(exc)
            run.display.say(
                f"{group.report.status}: {group.report.path}::{group.qualname} ({group.tool})"
                + (f" ({group.report.why})" if group.report.why else "")
            )

    await asyncio.gather(*(one(g) for g in groups))


async def findings_of(
    commands: dict[str, ToolCommand], root: Path, timeout: float
) -> list[Finding]:
    """Every finding of the tools on the project (its configuration says which files)."""
    found: list[Finding] = []
    for command in commands.values():
        try:
            found += await check_workspace(command, root, timeout=timeout)
        except ToolError as exc:
            raise ToolsUnavailable(str(exc)) from None
    return [f for f in found if f.path.suffix in (".py", ".pyi")]
