// The language client's life: start (only in a trusted workspace, only when the executable
// is there and runs), stop, restart, and the middleware that keeps VS Code's defaults away from the
// server and reports the answers of the server's editing commands.

import * as vscode from "vscode";
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  RevealOutputChannelOn,
  State,
} from "vscode-languageclient/node";
import type { CloseHandlerResult, ErrorHandlerResult, LanguageClientOptions, ServerOptions } from "vscode-languageclient/node";
import { EDITING_COMMANDS, SERVER } from "./commandIds";
import { editResultNotice, runTestsNotice } from "./commandResults";
import type { Notice } from "./commandResults";
import { explicitOciSettings, explicitSettingsSnapshot } from "./configuration";
import { CrashBudget } from "./crashBudget";
import { currentLaunch, firstLocalFolder, locate, runVersion } from "./serverExecutable";
import { startFailedMessage, stderrSummary } from "./serverLaunch";
import type { Launch } from "./serverLaunch";
import { ServerProcess } from "./serverProcess";
import type { PythonExtensionSelection } from "./pythonExtension";
import { withEditorInterpreter } from "./pythonInterpreter";
import { initializationOptions, removedKeys, SECTION } from "./settings";

export type ControllerPhase =
  | { kind: "restricted" }
  | { kind: "starting" }
  | { kind: "stopped" }
  | { kind: "failed"; reason: string }
  | { kind: "running" };

export const RESTRICTED_MESSAGE =
  "oci-lsp runs your tests and generated code, so it is off in Restricted Mode; " +
  "trust the workspace to turn it on.";

const SHOW_LOG = "Show Log";
const OPEN_SETTINGS = "Open Settings";

export class ServerController implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private process: ServerProcess | undefined;
  private current: ControllerPhase = { kind: "stopped" };
  /** Start/stop/restart run one at a time, in order: a restart during a start waits. */
  private queue: Promise<void> = Promise.resolve();
  private readonly phaseEmitter = new vscode.EventEmitter<ControllerPhase>();
  private readonly commandEmitter = new vscode.EventEmitter<{ command: string; done: boolean }>();
  private lastSettings: string | undefined;
  /** The settings the running server got as initializationOptions. */
  private initialSettings: Record<string, unknown> = {};

  readonly onDidChangePhase = this.phaseEmitter.event;
  /** Fires when a server command starts and when it is answered (the status bar refreshes). */
  readonly onDidRunCommand = this.commandEmitter.event;

  constructor(
    private readonly output: vscode.OutputChannel,
    private readonly python: PythonExtensionSelection,
  ) {
    // Another interpreter selected in the Python extension: the server asks for the `oci`
    // section again (where the selection rides, see pythonInterpreter.ts); no restart.
    python.onDidChange(() => {
      void this.runningClient
        ?.sendNotification(DidChangeConfigurationNotification.type, {
          settings: { [SECTION]: explicitOciSettings(undefined) },
        })
        .catch(() => undefined);
    });
  }

  get phase(): ControllerPhase {
    return this.current;
  }

  /** The client, when the server is up. */
  get runningClient(): LanguageClient | undefined {
    return this.current.kind === "running" && this.client?.isRunning() ? this.client : undefined;
  }

  start(): Promise<void> {
    return this.enqueue(() => this.doStart());
  }

  stop(): Promise<void> {
    return this.enqueue(() => this.doStop({ kind: "stopped" }));
  }

  restart(): Promise<void> {
    return this.enqueue(async () => {
      await this.doStop({ kind: "stopped" });
      await this.doStart();
    });
  }

  /** Waits for the queued start/stop work, e.g. before a command runs during a start. */
  settled(): Promise<void> {
    return this.queue;
  }

  /**
   * `oci.status` of the folder holding `uri` (its model and tests), or of the whole window;
   * straight to the server, not through the command middleware.
   */
  async status(uri?: string): Promise<unknown> {
    const client = this.runningClient;
    if (client === undefined) {
      return undefined;
    }
    const argument = uri === undefined ? {} : { uri };
    return client.sendRequest(ExecuteCommandRequest.type, { command: SERVER.status, arguments: [argument] });
  }

  dispose(): void {
    void this.stop();
    this.phaseEmitter.dispose();
    this.commandEmitter.dispose();
  }

  private enqueue(work: () => Promise<void>): Promise<void> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private setPhase(phase: ControllerPhase): void {
    this.current = phase;
    this.phaseEmitter.fire(phase);
  }

  private async doStart(): Promise<void> {
    if (this.client !== undefined) {
      return;
    }
    if (!vscode.workspace.isTrusted) {
      this.setPhase({ kind: "restricted" });
      return;
    }
    const launch = currentLaunch();
    const located = locate(launch);
    if ("error" in located) {
      this.fail(located.error);
      return;
    }
    const cwd = firstLocalFolder()?.uri.fsPath;
    this.setPhase({ kind: "starting" });
    // `--version` first: a Python without oci_lsp, or a broken install, fails here with its
    // own words, before the client would only say "couldn't create connection to server".
    const preflight = await runVersion(located.path, launch, cwd);
    if ("error" in preflight) {
      this.output.appendLine(preflight.log);
      this.fail(startFailedMessage(launch, preflight.error));
      return;
    }
    this.output.appendLine(`Starting ${[located.path, ...launch.args].join(" ")} (${preflight.version})`);
    const client = this.createClient(launch, located.path, cwd);
    this.client = client;
    let failure: unknown;
    try {
      await client.start();
    } catch (error) {
      failure = error;
    }
    if (this.client !== client) {
      return; // stopped or restarted meanwhile
    }
    // start() also resolves when the connection closed during it: check the state.
    if (failure !== undefined || client.state !== State.Running) {
      const tail = this.process?.stderrTail ?? "";
      this.client = undefined;
      await client.dispose().catch(() => undefined);
      await this.endProcess();
      const why = stderrSummary(tail) ?? (failure !== undefined ? errorText(failure) : "the server exited");
      this.fail(startFailedMessage(launch, why));
      return;
    }
    this.setPhase({ kind: "running" });
  }

  private async doStop(after: ControllerPhase): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client !== undefined) {
      this.output.appendLine("Stopping the server");
      try {
        // shutdown + exit, up to 2 s; endProcess() then waits for the process, or kills it.
        await client.dispose();
      } catch (error) {
        this.output.appendLine(`Stopping the server failed: ${errorText(error)}`);
      }
    }
    await this.endProcess();
    this.setPhase(vscode.workspace.isTrusted ? after : { kind: "restricted" });
  }

  private async endProcess(): Promise<void> {
    const server = this.process;
    this.process = undefined;
    await server?.end();
  }

  private spawnServer(executable: string, args: string[], cwd: string | undefined): ServerProcess["child"] {
    if (this.process !== undefined && !this.process.exited) {
      this.process.child.kill(); // a restart after a crash: the old one should be gone already
    }
    this.process = new ServerProcess(executable, args, cwd, (line) => this.output.appendLine(line));
    return this.process.child;
  }

  private fail(reason: string): void {
    this.output.appendLine(reason);
    this.setPhase({ kind: "failed", reason });
    void vscode.window.showErrorMessage(reason, OPEN_SETTINGS, SHOW_LOG).then((choice) => {
      if (choice === OPEN_SETTINGS) {
        void vscode.commands.executeCommand("workbench.action.openSettings", "oci.server");
      } else if (choice === SHOW_LOG) {
        this.output.show(true);
      }
    });
  }

  private createClient(launch: Launch, executable: string, cwd: string | undefined): LanguageClient {
    // A function rather than {command, args}: we keep the process, to report its stderr.
    const serverOptions: ServerOptions = async () => this.spawnServer(executable, launch.args, cwd);
    const budget = new CrashBudget();
    let everRunning = false;
    this.initialSettings = explicitOciSettings(undefined);
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: "file", language: "python" }],
      outputChannel: this.output,
      // Errors are shown as messages with a "Show Log" button; popping the log is too loud.
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      diagnosticCollectionName: "oci-lsp",
      initializationOptions: initializationOptions(this.initialSettings),
      synchronize: { configurationSection: SECTION },
      // No retry and no notification of the library's own: start() says what went wrong.
      initializationFailedHandler: () => false,
      errorHandler: {
        error: (): ErrorHandlerResult => ({ action: ErrorAction.Continue }),
        closed: (): CloseHandlerResult => {
          if (!everRunning) {
            // It never came up: restarting would fail the same way. start() reports it.
            return { action: CloseAction.DoNotRestart, handled: true };
          }
          if (budget.crashed(Date.now())) {
            return { action: CloseAction.Restart, message: "The oci-lsp server stopped; restarting it." };
          }
          this.client = undefined;
          void this.endProcess();
          this.fail(
            "oci-lsp crashed 5 times in 3 minutes and is not restarted. See the log; " +
              "run OpenCodeInterpreter: Restart the Server after fixing the cause.",
          );
          return { action: CloseAction.DoNotRestart, handled: true };
        },
      },
      middleware: {
        workspace: {
          // Answer for "oci" ourselves: only explicit values, only server keys, and beside
          // them the interpreter selected in the Python extension for that folder.
          configuration: async (params, token, next) => {
            const ours = params.items.map((item) => item.section === SECTION);
            const others = ours.every(Boolean) ? undefined : await next(params, token);
            if (others !== undefined && !Array.isArray(others)) {
              return others; // a ResponseError from the default handler
            }
            return Promise.all(
              params.items.map(async (item, i) =>
                ours[i]
                  ? withEditorInterpreter(
                      explicitOciSettings(item.scopeUri),
                      await this.python.interpreter(item.scopeUri),
                    )
                  : (others as unknown[])[i],
              ),
            );
          },
          // The default sends every `oci.*` value, defaults included; the server only needs
          // to know that something changed (it asks workspace/configuration again), and only
          // when a value it reads changed (not `oci.server.*` or `oci.trace.server`).
          didChangeConfiguration: async () => {
            const snapshot = explicitSettingsSnapshot();
            if (snapshot === this.lastSettings) {
              return;
            }
            this.lastSettings = snapshot;
            const current = explicitOciSettings(undefined);
            await this.client?.sendNotification(DidChangeConfigurationNotification.type, {
              settings: { [SECTION]: current },
            });
            this.offerRestartFor(removedKeys(this.initialSettings, current));
          },
        },
        executeCommand: async (command, args, next) => this.runCommand(command, args, next),
      },
    };
    const client = new LanguageClient("oci", "oci-lsp", serverOptions, clientOptions);
    this.lastSettings = explicitSettingsSnapshot();
    client.onDidChangeState((event) => {
      if (this.client !== client) {
        return;
      }
      if (event.newState === State.Running) {
        everRunning = true;
        this.setPhase({ kind: "running" });
      } else if (event.newState === State.Starting && everRunning) {
        this.setPhase({ kind: "starting" }); // restarting after a crash
      }
    });
    return client;
  }

  /**
   * A removed setting keeps its start-time value in the server until it restarts (see
   * removedKeys), so say so and offer the restart rather than leave the user guessing.
   */
  private offerRestartFor(keys: string[]): void {
    if (keys.length === 0) {
      return;
    }
    const names = keys.map((key) => `oci.${key}`).join(", ");
    const message = `oci-lsp keeps using the removed ${names} until the server restarts.`;
    void vscode.window.showInformationMessage(message, "Restart the Server").then((choice) => {
      if (choice !== undefined) {
        void this.restart();
      }
    });
  }

  private async runCommand(
    command: string,
    args: unknown[],
    next: (command: string, args: unknown[]) => vscode.ProviderResult<unknown>,
  ): Promise<unknown> {
    this.commandEmitter.fire({ command, done: false });
    try {
      const result = await next(command, args);
      if (EDITING_COMMANDS.has(command)) {
        showNotice(editResultNotice(result, command === SERVER.fixDiagnostics));
      } else if (command === SERVER.runTests) {
        showNotice(runTestsNotice(result));
      }
      return result;
    } finally {
      this.commandEmitter.fire({ command, done: true });
    }
  }
}

function showNotice(notice: Notice): void {
  switch (notice.kind) {
    case "warning":
      void vscode.window.showWarningMessage(notice.text);
      break;
    case "info":
      void vscode.window.showInformationMessage(notice.text);
      break;
    case "status":
      vscode.window.setStatusBarMessage(notice.text, 5000);
      break;
    case "none":
      break;
  }
}

function errorText(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return typeof error === "string" ? error : JSON.stringify(error);
}
