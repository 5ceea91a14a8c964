"""Other servers' diagnostics as findings: which tool a diagnostic's `source` names, and its
code. Plain values in (no LSP import): the server layer passes the fields it received.

Sources seen in the wild: ruff's server and ruff-lsp send "Ruff"; pylsp-mypy "mypy" with
the code also at the end of the message (`...  [return-value]`), the Mypy extension
"Mypy", dmypy "dmypy"; Pylance "Pylance", pyright "Pyright" (older "pyright"),
basedpyright "basedpyright"; pylsp's own plugins "pyflakes", "pycodestyle", "flake8",
"pylint", which keep their names.
"""

from __future__ import annotations

import re
from pathlib import Path

from oci_lsp.tools.findings import Finding, split_message
from oci_lsp.tools.runners import TOOLS

_TOOL_OF_SOURCE = {
    "ruff": "ruff",
    "mypy": "mypy",
    "dmypy": "mypy",
    "pylance": "pyright",
    "pyright": "pyright",
    "basedpyright": "pyright",
}
# LSP's DiagnosticSeverity: 1 Error, 2 Warning, 3 Information, 4 Hint.
_SEVERITY = {1: "error", 2: "warning", 3: "information", 4: "hint"}
_MYPY_CODE = re.compile(r"\s+\[(?P<code>[a-z][a-z0-9-]*)\]\s*$")


def tool_of_source(source: str | None) -> str:
    """The tool a diagnostic's source names ("ruff", "mypy", "pyright"), or the source as
    it is (empty when there is none)."""
    if not source:
        return ""
    return _TOOL_OF_SOURCE.get(source.strip().lower(), source)


def finding_from_diagnostic(
    source: str | None,
    code: str | int | None,
    message: str,
    path: Path,
    start_line0: int,
    start_char0: int,
    end_line0: int,
    end_char0: int,
    severity: int | None,
) -> Finding:
    """A diagnostic of another server as a finding. Positions come 0-based (LSP) in code
    points (the caller converts from the client's encoding) and go 1-based. A missing
    severity is an error, as the LSP says a client may take it."""
    tool = tool_of_source(source)
    first, detail = split_message(message)
    text_code = str(code) if code is not None and str(code) != "" else None
    if tool == "mypy":
        match = _MYPY_CODE.search(first)
        if match is not None and text_code in (None, match["code"]):
            text_code = match["code"]
            first = first[: match.start()]
    return Finding(
        tool=tool,
        code=text_code,
        message=first,
        detail=detail,
        path=path,
        line=start_line0 + 1,
        column=start_char0 + 1,
        end_line=end_line0 + 1,
        end_column=end_char0 + 1,
        severity=_SEVERITY.get(severity or 1, "error"),
    )


def verifying_tool(tool: str) -> str | None:
    """The tool that can verify a fix of this finding's tool: "ruff", "mypy", "pyright", or
    None (a syntax error is verified by parsing; other sources by nothing we run)."""
    return tool if tool in TOOLS else None
