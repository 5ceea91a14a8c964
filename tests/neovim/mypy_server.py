"""A second language server for the Neovim end-to-end test, as pylsp-mypy or a mypy server
would be: it runs the real mypy on a Python file when it opens and each time it is saved, and
publishes mypy's errors as diagnostics with source "mypy" and mypy's error code. oci-lsp's
quick-fix is offered on them: another tool's diagnostics, from another client.

    python tests/neovim/mypy_server.py    (LSP over stdio; mypy runs in this interpreter)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from lsprotocol import types
from pygls import uris
from pygls.lsp.server import LanguageServer

server = LanguageServer("mypy-e2e", "0")
NO_CACHE = ("--cache-dir", os.devnull)  # nothing written into the workspace


def mypy_diagnostics(path: str) -> list[types.Diagnostic]:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "-O", "json", "--no-error-summary", *NO_CACHE, path],
        cwd=os.path.dirname(path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = []
    for line in done.stdout.splitlines():  # exit 1 with errors: the output is read either way
        if not line.startswith("{"):
            continue
        error = json.loads(line)  # `-O json`: lines 1-based, columns 0-based
        start = types.Position(error["line"] - 1, max(error["column"], 0))
        end_line = error.get("end_line") or error["line"]
        end_column = error.get("end_column") or start.character + 1
        found.append(
            types.Diagnostic(
                range=types.Range(start, types.Position(end_line - 1, max(end_column, 0))),
                message=error["message"],
                severity=types.DiagnosticSeverity.Error
                if error["severity"] == "error"
                else types.DiagnosticSeverity.Information,
                source="mypy",
                code=error.get("code"),
            )
        )
    return found


def publish(ls: LanguageServer, uri: str) -> None:
    path = uris.to_fs_path(uri)
    if path is None or not path.endswith(".py"):
        return
    params = types.PublishDiagnosticsParams(uri=uri, diagnostics=mypy_diagnostics(path))
    ls.text_document_publish_diagnostics(params)


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: LanguageServer, params: types.DidOpenTextDocumentParams) -> None:
    publish(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: LanguageServer, params: types.DidSaveTextDocumentParams) -> None:
    publish(ls, params.text_document.uri)


if __name__ == "__main__":
    server.start_io()
