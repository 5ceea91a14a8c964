// The status bar item: the model's state and the test counts. It asks `oci.status` when the
// server starts, after each command, when oci-lsp's diagnostics change (debounced), after a
// model pull and a settings change, and every 2 s only while something moves on its own (a
// test run, a model load).

import * as vscode from "vscode";
import { PALETTE } from "./commandIds";
import type { ControllerPhase, ServerController } from "./serverController";
import { TASK_TYPE } from "./modelPull";
import { SECTION } from "./settings";
import { needsPolling, parseStatus, statusView } from "./statusView";
import type { OciStatus, Phase } from "./statusView";

const POLL_MS = 2000;
const DEBOUNCE_MS = 400;
const SETTINGS_DELAY_MS = 1000;

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private status: OciStatus | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private inFlight = false;
  private again = false;
  /** URIs that had oci-lsp diagnostics: a change there (clearing them too) is ours. */
  private readonly ourUris = new Set<string>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly controller: ServerController,
    interpreterChanged: vscode.Event<void>,
  ) {
    // VS Code prefixes the extension's id: the item is `oci-lsp.oci-lsp.status` in the DOM.
    this.item = vscode.window.createStatusBarItem("status", vscode.StatusBarAlignment.Right, 100);
    this.item.name = "oci-lsp";
    this.item.command = PALETTE.showMenu;
    this.disposables.push(
      this.item,
      controller.onDidChangePhase((phase) => this.phaseChanged(phase)),
      controller.onDidRunCommand(() => this.refreshSoon()),
      vscode.languages.onDidChangeDiagnostics((event) => this.diagnosticsChanged(event)),
      // A pull ends outside the server (a task): the model it reported missing may be there now.
      vscode.tasks.onDidEndTaskProcess((event) => {
        if (event.execution.task.definition.type === TASK_TYPE) {
          this.refreshSoon();
        }
      }),
      // In a multi-root window each folder has its own settings, so its own model and tests.
      vscode.window.onDidChangeActiveTextEditor(() => this.refreshSoon()),
      // Another model, device or backend: the server re-reads its settings first, then answers.
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration(SECTION)) {
          this.refreshSoon(SETTINGS_DELAY_MS);
        }
      }),
      // Another interpreter selected in the Python extension: the tooltip names it.
      interpreterChanged(() => this.refreshSoon(SETTINGS_DELAY_MS)),
    );
    this.render();
    this.item.show();
  }

  dispose(): void {
    clearTimeout(this.pollTimer);
    clearTimeout(this.debounceTimer);
    for (const d of this.disposables) {
      d.dispose();
    }
  }

  /** Ask the server now (coalesced: one request in flight, one more queued at most). */
  async refresh(): Promise<void> {
    if (this.inFlight) {
      this.again = true;
      return;
    }
    this.inFlight = true;
    try {
      const answer = await this.controller.status(activeFileUri()).catch(() => undefined);
      this.status = this.controller.runningClient ? parseStatus(answer) ?? this.status : undefined;
    } finally {
      this.inFlight = false;
    }
    this.render();
    this.schedulePoll();
    if (this.again) {
      this.again = false;
      void this.refresh();
    }
  }

  refreshSoon(delay = DEBOUNCE_MS): void {
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => void this.refresh(), delay);
  }

  private phaseChanged(phase: ControllerPhase): void {
    if (phase.kind !== "running") {
      this.status = undefined;
      clearTimeout(this.pollTimer);
      this.pollTimer = undefined;
    }
    this.render();
    if (phase.kind === "running") {
      void this.refresh();
    }
  }

  private diagnosticsChanged(event: vscode.DiagnosticChangeEvent): void {
    const collection = this.controller.runningClient?.diagnostics;
    let ours = false;
    for (const uri of event.uris) {
      const key = uri.toString();
      const has = (collection?.get(uri)?.length ?? 0) > 0;
      if (has || this.ourUris.has(key)) {
        ours = true;
      }
      if (has) {
        this.ourUris.add(key);
      } else {
        this.ourUris.delete(key);
      }
    }
    if (ours) {
      this.refreshSoon();
    }
  }

  private schedulePoll(): void {
    clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    if (this.controller.runningClient && needsPolling(this.status)) {
      this.pollTimer = setTimeout(() => void this.refresh(), POLL_MS);
    }
  }

  private render(): void {
    const current = this.controller.phase;
    const phase: Phase = current.kind === "running" ? { kind: "running", status: this.status } : current;
    const view = statusView(phase);
    this.item.text = view.text;
    const tooltip = new vscode.MarkdownString(view.tooltip);
    tooltip.supportThemeIcons = false;
    this.item.tooltip = tooltip;
    this.item.backgroundColor =
      view.alert === "error"
        ? new vscode.ThemeColor("statusBarItem.errorBackground")
        : view.alert === "warning"
          ? new vscode.ThemeColor("statusBarItem.warningBackground")
          : undefined;
  }
}

/** The active editor's file, whose folder the status describes; none for other documents. */
function activeFileUri(): string | undefined {
  const uri = vscode.window.activeTextEditor?.document.uri;
  return uri?.scheme === "file" ? uri.toString() : undefined;
}
