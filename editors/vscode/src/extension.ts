// Entry point: wires the controller (the language client's life), the status bar and the
// commands together, and starts the server when the workspace is trusted.

import * as vscode from "vscode";
import { Commands } from "./commands";
import { PythonExtensionSelection } from "./pythonExtension";
import { ServerController } from "./serverController";
import { StatusBar } from "./statusBar";

let controller: ServerController | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel("oci-lsp");
  const python = new PythonExtensionSelection();
  controller = new ServerController(output, python);
  const statusBar = new StatusBar(controller, python.onDidChange);
  context.subscriptions.push(
    output,
    python,
    controller,
    statusBar,
    ...new Commands(controller, output).register(),
  );

  const server = controller;
  context.subscriptions.push(
    // Trust cannot be taken back without a reload, so granting it is the only transition.
    vscode.workspace.onDidGrantWorkspaceTrust(() => void server.start()),
    // The executable or its arguments changed: only a new process picks them up. (The other
    // `oci.*` settings reach the running server through workspace/didChangeConfiguration.)
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration("oci.server") && vscode.workspace.isTrusted) {
        void server.restart();
      }
    }),
  );
  // Not awaited: activation must not wait for a Python process to come up.
  void server.start();
}

export async function deactivate(): Promise<void> {
  await controller?.stop();
  controller = undefined;
}
