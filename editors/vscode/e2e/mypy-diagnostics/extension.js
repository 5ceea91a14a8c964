// A stand-in for a mypy extension in the VS Code end-to-end test (tests/test_vscode_e2e.py):
// it runs the real mypy on a Python file when it opens and whenever it is saved, and puts
// mypy's errors in a diagnostic collection of its own, source "mypy" and mypy's error code,
// which VS Code shows in the Problems view and hands to every code action provider (oci-lsp's
// included) under the cursor.
//
// The interpreter that runs mypy: $OCI_E2E_MYPY_PYTHON (the test sets it), else python3.
const { execFile } = require("node:child_process");
const vscode = require("vscode");

function mypyDiagnostics(stdout) {
  const found = [];
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    const error = JSON.parse(line); // `-O json`: lines and columns as mypy counts, 1- and 0-based
    const start = new vscode.Position(error.line - 1, Math.max(error.column, 0));
    const end = new vscode.Position((error.end_line ?? error.line) - 1, Math.max(error.end_column ?? error.column + 1, 0));
    const severity = error.severity === "error" ? vscode.DiagnosticSeverity.Error : vscode.DiagnosticSeverity.Information;
    const diagnostic = new vscode.Diagnostic(new vscode.Range(start, end), error.message, severity);
    diagnostic.source = "mypy";
    if (error.code) diagnostic.code = error.code;
    found.push(diagnostic);
  }
  return found;
}

function activate(context) {
  const collection = vscode.languages.createDiagnosticCollection("mypy");
  const python = process.env.OCI_E2E_MYPY_PYTHON || "python3";
  const check = (document) => {
    if (document.languageId !== "python" || document.uri.scheme !== "file") return;
    const folder = vscode.workspace.getWorkspaceFolder(document.uri);
    const args = ["-m", "mypy", "-O", "json", "--no-error-summary", "--cache-dir", "/dev/null", document.uri.fsPath];
    // mypy exits 1 when it found errors: its output is read either way.
    execFile(python, args, { cwd: folder?.uri.fsPath, timeout: 60000 }, (_error, stdout) => {
      collection.set(document.uri, mypyDiagnostics(stdout));
    });
  };
  context.subscriptions.push(
    collection,
    vscode.workspace.onDidOpenTextDocument(check),
    vscode.workspace.onDidSaveTextDocument(check),
  );
  vscode.workspace.textDocuments.forEach(check);
}

module.exports = { activate };
