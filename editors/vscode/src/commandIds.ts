// Command ids in one place. The server's commands are registered by vscode-languageclient
// from the server's executeCommandProvider, so the palette commands must use other ids:
// registering an id twice makes VS Code throw when the client starts.

/** Commands the oci-lsp server executes (workspace/executeCommand). */
export const SERVER = {
  generate: "oci.generate",
  fix: "oci.fix",
  fixDiagnostics: "oci.fixDiagnostics",
  runTests: "oci.runTests",
  status: "oci.status",
  applyUnverified: "oci.applyUnverified",
} as const;

/** The client-side command that the server's "Fix … with an instruction…" code action carries. */
export const FIX_WITH_INSTRUCTION = "oci.fixWithInstruction";

/** The palette commands this extension contributes (package.json `contributes.commands`). */
export const PALETTE = {
  generateAtCursor: "oci-lsp.generateAtCursor",
  fixAtCursor: "oci-lsp.fixAtCursor",
  fixAtCursorWithInstruction: "oci-lsp.fixAtCursorWithInstruction",
  runTests: "oci-lsp.runTests",
  runTestsOfFile: "oci-lsp.runTestsOfFile",
  pullModel: "oci-lsp.pullModel",
  restartServer: "oci-lsp.restartServer",
  showLog: "oci-lsp.showLog",
  showMenu: "oci-lsp.showMenu",
} as const;

/** Server commands whose answer is `{applied, verified, message}`, worth reporting to the user. */
export const EDITING_COMMANDS: ReadonlySet<string> = new Set([
  SERVER.generate,
  SERVER.fix,
  SERVER.fixDiagnostics,
  SERVER.applyUnverified,
]);
