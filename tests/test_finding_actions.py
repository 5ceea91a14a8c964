"""The quick-fixes' pure part (server/finding_actions.py): which diagnostics of other tools get
an action, grouped by function, with which title, and the command's argument back to findings."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pygls.workspace import PositionCodec

from oci_lsp.server import finding_actions
from oci_lsp.tools.findings import render

SOURCE = """\
import os


class Box:
    def size(self) -> int:
        def inner() -> int:
            return os.sep
        return inner()


def other():
    return undefined_name
"""


def diagnostic(
    line: int,
    source: str | None = "mypy",
    code: str | int | None = "return-value",
    message: str = "Incompatible return value type",
    severity: types.DiagnosticSeverity | None = types.DiagnosticSeverity.Error,
) -> types.Diagnostic:
    return types.Diagnostic(
        range=types.Range(types.Position(line, 4), types.Position(line, 10)),
        message=message,
        source=source,
        code=code,
        severity=severity,
    )


def test_diagnostics_are_grouped_by_their_innermost_function() -> None:
    inner, outer, other = diagnostic(6), diagnostic(7, code="no-any-return"), diagnostic(11)
    groups = finding_actions.by_function(SOURCE, [inner, outer, other, diagnostic(0)])
    assert [(g.function.qualname, len(g.diagnostics)) for g in groups] == [
        ("Box.size.inner", 1),
        ("Box.size", 1),
        ("other", 1),
    ]  # the import line is in no function: no action


def test_test_diagnostics_and_hints_get_no_action_but_a_syntax_error_does() -> None:
    ours = diagnostic(11, source="oci-lsp", code="test-failed")
    hint = diagnostic(11, severity=types.DiagnosticSeverity.Hint)
    syntax = diagnostic(11, source="oci-lsp", code="syntax-error", message="SyntaxError: x")
    unknown_severity = diagnostic(11, severity=None)
    groups = finding_actions.by_function(SOURCE, [ours, hint, syntax, unknown_severity])
    assert [list(g.diagnostics) for g in groups] == [[syntax, unknown_severity]]


def test_the_title_names_the_function_the_first_finding_and_how_many_more() -> None:
    [group] = finding_actions.by_function(
        SOURCE,
        [
            diagnostic(11, source="Ruff", code="F821", message="Undefined name `undefined_name`"),
            diagnostic(11, source="pylint", code="E0602", message="x"),
        ],
    )
    assert finding_actions.title(group, []) == (
        "Fix `other`: F821 Undefined name `undefined_name` and 1 more (OpenCodeInterpreter)"
    )
    assert finding_actions.title(group, ["pylint"], instruction=True) == (
        "Fix `other` with an instruction…: F821 Undefined name `undefined_name` and 1 more"
        " (OpenCodeInterpreter; unverified by pylint)"
    )
    long = diagnostic(11, message="x" * 200 + "\nsecond line")
    [group] = finding_actions.by_function(SOURCE, [long])
    title = finding_actions.title(group, [])
    assert "second line" not in title and "…" in title and len(title) < 120


def test_the_argument_round_trips_to_findings() -> None:
    sent = [
        diagnostic(
            11,
            source="Pylance",
            code="reportUndefinedVariable",
            message='"undefined_name" is not defined',
        ),
        diagnostic(
            11,
            source="mypy",
            code=None,
            message='Name "undefined_name" is not defined  [name-defined]',
        ),
    ]
    [group] = finding_actions.by_function(SOURCE, sent)
    argument = finding_actions.argument("file:///w/m.py", group)
    assert argument["function"] == "other"
    findings = finding_actions.findings_of(argument["diagnostics"], Path("/w/m.py"))
    assert findings is not None
    assert [(f.tool, f.code, f.line, f.column) for f in findings] == [
        ("pyright", "reportUndefinedVariable", 12, 5),
        ("mypy", "name-defined", 12, 5),
    ]
    assert finding_actions.findings_of([{"message": "no range"}], Path("/w/m.py")) is None
    assert finding_actions.findings_of("nonsense", Path("/w/m.py")) is None
    assert finding_actions.findings_of([], Path("/w/m.py")) is None


def test_columns_are_read_in_the_clients_encoding() -> None:
    # An emoji is two UTF-16 units and one code point: the editor's column of `n` is 22 on
    # this line, mypy's and ours 21 (0-based). The feedback must show the tool's column and
    # put the carets under `n`, not under the space after it.
    source = 'def f(n: int) -> str:\n    s = "\U0001f600é"; return n\n'
    sent = [
        types.Diagnostic(
            range=types.Range(types.Position(1, 22), types.Position(1, 23)),
            message='Incompatible return value type (got "int", expected "str")',
            source="mypy",
            code="return-value",
        )
    ]
    argument = finding_actions.argument(
        "file:///w/m.py", finding_actions.by_function(source, sent)[0]
    )
    path = Path("/w/m.py")
    [finding] = finding_actions.findings_of(
        argument["diagnostics"], path, source, PositionCodec()
    ) or [None]
    assert finding is not None
    assert (finding.line, finding.column, finding.end_column) == (2, 22, 23)
    shown = render(finding, Path("/w"), source).splitlines()
    assert shown[0].startswith("m.py:2:22: mypy [return-value]")
    assert shown[2:4] == ['2 |     s = "\U0001f600é"; return n', "  | " + " " * 21 + "^"]
    # The editor's position encoding is its own: UTF-32 columns are code points already.
    [same] = finding_actions.findings_of(
        [
            {
                **argument["diagnostics"][0],
                "range": {
                    "start": {"line": 1, "character": 21},
                    "end": {"line": 1, "character": 22},
                },
            }
        ],
        path,
        source,
        PositionCodec(types.PositionEncodingKind.Utf32),
    ) or [None]
    assert same is not None and same.column == 22


def test_which_tools_cannot_verify() -> None:
    available = {"ruff", "mypy"}.__contains__
    assert finding_actions.unverifiable(["ruff", "python", "mypy"], available) == []
    assert finding_actions.unverifiable(["pyright", "pylint", "pylint"], available) == [
        "pyright",
        "pylint",
    ]
