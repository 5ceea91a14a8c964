"""Quick-fixes for other tools' diagnostics (issue 16): what `textDocument/codeAction` offers on
a ruff, mypy, Pylance/pyright (or any other source's) diagnostic inside a function, and on
oci-lsp's own `syntax-error`.

Pure helpers from the request's diagnostics to actions and back: the command's argument
carries the diagnostics themselves (the server never sees other servers' lists), and
`findings_of` turns them into the tools' findings the loop feeds back and verifies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.workspace import PositionCodec

from oci_lsp.code.scan import Definition, definitions, split_lines
from oci_lsp.server.diagnostics import SOURCE, SYNTAX_CODE
from oci_lsp.tools.findings import Finding
from oci_lsp.tools.lsp_source import finding_from_diagnostic, tool_of_source, verifying_tool

COMMAND_FIX_DIAGNOSTICS = "oci.fixDiagnostics"
_TITLE_MESSAGE = 60  # characters of the first diagnostic's message in the title


@dataclass(frozen=True)
class FunctionDiagnostics:
    """The diagnostics of one function that one action fixes together."""

    function: Definition
    diagnostics: tuple[types.Diagnostic, ...]


def fixable(diagnostic: types.Diagnostic) -> bool:
    """Another tool's diagnostic worth a fix, or oci-lsp's syntax error. Not oci-lsp's test
    diagnostics (they have their actions) and not a Hint: that is a style nudge (an unused
    variable at Warning, tagged unnecessary, gets one: it often hides a bug)."""
    if diagnostic.source == SOURCE:
        return diagnostic.code == SYNTAX_CODE
    return diagnostic.severity != types.DiagnosticSeverity.Hint


def by_function(source: str, diagnostics: Sequence[types.Diagnostic]) -> list[FunctionDiagnostics]:
    """The fixable diagnostics grouped by the innermost function holding their first line,
    in the order the client sent them; those outside any function are left out."""
    defs = definitions(source)
    groups: dict[str, tuple[Definition, list[types.Diagnostic]]] = {}
    for diagnostic in diagnostics:
        if not fixable(diagnostic):
            continue
        line = diagnostic.range.start.line + 1
        holding = [d for d in defs if d.def_line <= line <= d.end_line]
        if not holding:
            continue
        inner = holding[-1]  # sorted by line: the last one that holds it is the innermost
        groups.setdefault(inner.qualname, (inner, []))[1].append(diagnostic)
    return [FunctionDiagnostics(d, tuple(found)) for d, found in groups.values()]


def tool_of(diagnostic: types.Diagnostic) -> str:
    """The tool a diagnostic comes from, as the findings name it ("ruff", "mypy", "pyright",
    "python" for a syntax error, else its source)."""
    if diagnostic.source == SOURCE:
        return "python"
    return tool_of_source(diagnostic.source)


def title(
    group: FunctionDiagnostics, unverified_by: Sequence[str], instruction: bool = False
) -> str:
    """ "Fix `NAME`: CODE message (OpenCodeInterpreter)", with "and N more" for several and
    the tools that cannot verify it at the tail."""
    first = group.diagnostics[0]
    code = f"{first.code} " if first.code not in (None, "") else ""
    message = first.message.splitlines()[0] if first.message else ""
    if len(message) > _TITLE_MESSAGE:
        message = message[: _TITLE_MESSAGE - 1] + "…"
    more = len(group.diagnostics) - 1
    also = f" and {more} more" if more else ""
    how = " with an instruction…" if instruction else ""
    tail = f"; unverified by {', '.join(unverified_by)}" if unverified_by else ""
    return f"Fix `{group.function.name}`{how}: {code}{message}{also} (OpenCodeInterpreter{tail})"


def argument(uri: str, group: FunctionDiagnostics) -> dict[str, Any]:
    """`oci.fixDiagnostics {uri, function, diagnostics}`: the diagnostics as the client sent
    them (JSON), so the command needs nothing the server did not see."""
    return {
        "uri": uri,
        "function": group.function.qualname,
        "diagnostics": [_diagnostic_json(d) for d in group.diagnostics],
    }


def findings_of(
    value: Any, path: Path, source: str | None = None, codec: PositionCodec | None = None
) -> list[Finding] | None:
    """The command argument's diagnostics as findings; None when they are malformed. With
    the module's text and the client's position codec, columns come in the client's
    encoding (UTF-16 by default) and go to code points, as the tools count them; without,
    they are taken as code points."""
    if not isinstance(value, list) or not value:
        return None
    found = []
    for item in value:
        diagnostic = _diagnostic_from_json(item)
        if diagnostic is None:
            return None
        if source is not None and codec is not None:
            diagnostic.range = _code_points(diagnostic.range, split_lines(source), codec)
        found.append(_finding(diagnostic, path))
    return found


def _code_points(where: types.Range, lines: list[str], codec: PositionCodec) -> types.Range:
    def convert(position: types.Position) -> types.Position:
        # The codec answers line 0 for a line past the end: such a position stays as it is.
        if position.line >= len(lines) or lines[position.line].isascii():
            return position
        moved = codec.position_from_client_units(lines, position)
        return types.Position(position.line, moved.character)

    return types.Range(convert(where.start), convert(where.end))


def unverifiable(tools: Sequence[str], available: Callable[[str], bool]) -> list[str]:
    """Which of the findings' tools cannot verify a fix here: a source no verifying tool
    stands for (pyflakes, pylint...), or one not installed or not enabled."""
    out = []
    for tool in dict.fromkeys(tools):
        if tool == "python":
            continue  # the parser is always at hand
        verifier = verifying_tool(tool)
        if verifier is None or not available(verifier):
            out.append(tool)
    return out


def _finding(diagnostic: types.Diagnostic, path: Path) -> Finding:
    if diagnostic.source == SOURCE and diagnostic.code == SYNTAX_CODE:
        start, end = diagnostic.range.start, diagnostic.range.end
        return Finding(
            "python",
            SYNTAX_CODE,
            diagnostic.message,
            path,
            start.line + 1,
            start.character + 1,
            end.line + 1,
            end.character + 1,
        )
    code = diagnostic.code
    return finding_from_diagnostic(
        diagnostic.source,
        code if isinstance(code, (str, int)) else None,
        diagnostic.message,
        path,
        diagnostic.range.start.line,
        diagnostic.range.start.character,
        diagnostic.range.end.line,
        diagnostic.range.end.character,
        int(diagnostic.severity) if diagnostic.severity is not None else None,
    )


def _diagnostic_json(diagnostic: types.Diagnostic) -> dict[str, Any]:
    start, end = diagnostic.range.start, diagnostic.range.end
    out: dict[str, Any] = {
        "range": {
            "start": {"line": start.line, "character": start.character},
            "end": {"line": end.line, "character": end.character},
        },
        "message": diagnostic.message,
    }
    if diagnostic.source is not None:
        out["source"] = diagnostic.source
    if diagnostic.code is not None:
        out["code"] = diagnostic.code
    if diagnostic.severity is not None:
        out["severity"] = int(diagnostic.severity)
    return out


def _diagnostic_from_json(item: Any) -> types.Diagnostic | None:
    if not isinstance(item, Mapping):
        return None
    message, where = item.get("message"), item.get("range")
    if not isinstance(message, str) or not isinstance(where, Mapping):
        return None
    try:
        start, end = where["start"], where["end"]
        range_ = types.Range(
            types.Position(int(start["line"]), int(start["character"])),
            types.Position(int(end["line"]), int(end["character"])),
        )
    except (KeyError, TypeError, ValueError):
        return None
    source, code, severity = item.get("source"), item.get("code"), item.get("severity")
    return types.Diagnostic(
        range=range_,
        message=message,
        source=source if isinstance(source, str) else None,
        code=code if isinstance(code, (str, int)) and not isinstance(code, bool) else None,
        severity=types.DiagnosticSeverity(severity)
        if isinstance(severity, int) and 1 <= severity <= 4
        else None,
    )
