// VS Code's side of pythonInterpreter.ts: find the Python extension (it may be missing, as in
// the e2e's code-server, or installed later), activate it, ask it per folder, and say when
// its selection changes.

import * as vscode from "vscode";
import {
  environmentsOf,
  followSelection,
  PYTHON_EXTENSION_ID,
  selectedInterpreter,
  within,
} from "./pythonInterpreter";
import type { PythonEnvironments } from "./pythonInterpreter";

/** How long an answer to the server waits for the Python extension to activate. */
const ACTIVATION_WAIT_MS = 5000;

export class PythonExtensionSelection implements vscode.Disposable {
  private api: Promise<PythonEnvironments | undefined> | undefined;
  private following: { dispose(): unknown } | undefined;
  /** An answer went out without the extension's choice because it was still activating. */
  private answeredEarly = false;
  /** Whether the Python extension is installed (and enabled), as last seen. */
  private present = vscode.extensions.getExtension(PYTHON_EXTENSION_ID) !== undefined;
  private readonly changeEmitter = new vscode.EventEmitter<void>();
  private readonly disposables: vscode.Disposable[] = [];

  /** The selection changed (for some folder), or the Python extension came or went. */
  readonly onDidChange = this.changeEmitter.event;

  constructor() {
    this.disposables.push(
      this.changeEmitter,
      // Installed, enabled or removed while we run: ask it (or stop asking) from now on.
      vscode.extensions.onDidChange(() => {
        const present = vscode.extensions.getExtension(PYTHON_EXTENSION_ID) !== undefined;
        if (present !== this.present) {
          this.present = present;
          this.forget();
          this.changeEmitter.fire();
        }
      }),
    );
  }

  /** The interpreter selected for a folder (its URI as the server sends it), if any. */
  async interpreter(scopeUri: string | undefined): Promise<string | undefined> {
    const api = await within(this.environments(), ACTIVATION_WAIT_MS, undefined);
    if (api === undefined) {
      if (vscode.extensions.getExtension(PYTHON_EXTENSION_ID) !== undefined) {
        this.answeredEarly = true;
      }
      return undefined;
    }
    let resource: vscode.Uri | undefined;
    try {
      resource = scopeUri ? vscode.Uri.parse(scopeUri, true) : undefined;
    } catch {
      resource = undefined;
    }
    return selectedInterpreter(api, resource);
  }

  dispose(): void {
    this.forget();
    for (const d of this.disposables) {
      d.dispose();
    }
  }

  private environments(): Promise<PythonEnvironments | undefined> {
    this.api ??= this.load();
    return this.api;
  }

  private async load(): Promise<PythonEnvironments | undefined> {
    const extension = vscode.extensions.getExtension(PYTHON_EXTENSION_ID);
    if (extension === undefined) {
      return undefined;
    }
    let api: PythonEnvironments | undefined;
    try {
      api = environmentsOf(extension.isActive ? extension.exports : await extension.activate());
    } catch {
      return undefined; // it failed to activate: the server chooses by itself
    }
    if (api !== undefined) {
      this.following = followSelection(api, () => this.changeEmitter.fire());
      if (this.answeredEarly) {
        this.answeredEarly = false;
        this.changeEmitter.fire(); // the server got no choice before: now there is one
      }
    }
    return api;
  }

  private forget(): void {
    this.following?.dispose();
    this.following = undefined;
    this.api = undefined;
  }
}
