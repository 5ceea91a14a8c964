// The palette commands and the client-side `oci.fixWithInstruction`. Each finds what the
// server needs (a position, a failing test, an instruction) and runs the server's command
// through VS Code, so the client's middleware reports the answer the same way whether the
// user came from here or from a code action.

import * as vscode from "vscode";
import type { LanguageClient } from "vscode-languageclient/node";
import { FIX_WITH_INSTRUCTION, PALETTE, SERVER } from "./commandIds";
import {
  failingTestOf,
  failingTestsAt,
  parseDiagnosticsArgument,
  parseFixArgument,
  shortFunctionName,
  shortTestName,
} from "./failingTests";
import type { DiagnosticLike, DiagnosticsArgument, FailingTest, FixArgument } from "./failingTests";
import { pullModel } from "./modelPull";
import { RESTRICTED_MESSAGE } from "./serverController";
import type { ServerController } from "./serverController";

const MANAGE_TRUST = "Manage Workspace Trust";

export function showRestricted(): void {
  void vscode.window.showWarningMessage(RESTRICTED_MESSAGE, MANAGE_TRUST).then((choice) => {
    if (choice === MANAGE_TRUST) {
      void vscode.commands.executeCommand("workbench.trust.manage");
    }
  });
}

export class Commands {
  constructor(
    private readonly controller: ServerController,
    private readonly output: vscode.OutputChannel,
  ) {}

  register(): vscode.Disposable[] {
    const register = (id: string, run: (...args: unknown[]) => unknown) =>
      vscode.commands.registerCommand(id, async (...args: unknown[]) => {
        try {
          await run(...args);
        } catch (error) {
          const text = error instanceof Error ? error.message : String(error);
          this.output.appendLine(`${id} failed: ${text}`);
          void vscode.window.showErrorMessage(`oci-lsp: ${text}`);
        }
      });
    return [
      register(PALETTE.generateAtCursor, () => this.generateAtCursor()),
      register(PALETTE.fixAtCursor, () => this.fixAtCursor(false)),
      register(PALETTE.fixAtCursorWithInstruction, () => this.fixAtCursor(true)),
      register(PALETTE.runTests, () => this.runTests(undefined)),
      register(PALETTE.runTestsOfFile, () => this.runTestsOfFile()),
      register(PALETTE.pullModel, () => this.pullModel()),
      register(PALETTE.restartServer, () => this.restart()),
      register(PALETTE.showLog, () => this.output.show(true)),
      register(PALETTE.showMenu, () => this.showMenu()),
      register(FIX_WITH_INSTRUCTION, (arg) => this.fixWithInstruction(arg)),
    ];
  }

  /** The running client, or `undefined` after telling the user why there is none. */
  private async requireServer(): Promise<LanguageClient | undefined> {
    if (!vscode.workspace.isTrusted) {
      showRestricted();
      return undefined;
    }
    await this.controller.settled(); // a start in progress: wait for it
    const client = this.controller.runningClient;
    if (client !== undefined) {
      return client;
    }
    const phase = this.controller.phase;
    const why = phase.kind === "failed" ? phase.reason : "the oci-lsp server is not running.";
    const restart = "Restart the Server";
    const choice = await vscode.window.showErrorMessage(why, restart, "Show Log");
    if (choice === restart) {
      await this.controller.restart();
    } else if (choice === "Show Log") {
      this.output.show(true);
    }
    return undefined;
  }

  private pythonEditor(): vscode.TextEditor | undefined {
    const editor = vscode.window.activeTextEditor;
    if (editor === undefined || editor.document.languageId !== "python" || editor.document.uri.scheme !== "file") {
      void vscode.window.showInformationMessage("oci-lsp: open a Python file of the workspace first.");
      return undefined;
    }
    return editor;
  }

  private async generateAtCursor(): Promise<void> {
    const editor = this.pythonEditor();
    const client = editor && (await this.requireServer());
    if (editor === undefined || client === undefined) {
      return;
    }
    const position = editor.selection.active;
    await vscode.commands.executeCommand(SERVER.generate, {
      uri: client.code2ProtocolConverter.asUri(editor.document.uri),
      position: { line: position.line, character: position.character },
    });
  }

  /** oci-lsp's diagnostics of a document: the client's own collection keeps the LSP `data`. */
  private diagnosticsOf(client: LanguageClient, uri: vscode.Uri): readonly DiagnosticLike[] {
    const own = client.diagnostics?.get(uri);
    return own && own.length > 0 ? own : vscode.languages.getDiagnostics(uri);
  }

  /** When no diagnostic carries data (another client in between?), ask for the quick fixes. */
  private async testsFromCodeActions(editor: vscode.TextEditor): Promise<FailingTest[]> {
    const position = editor.selection.active;
    const actions = await vscode.commands.executeCommand<(vscode.CodeAction | vscode.Command)[]>(
      "vscode.executeCodeActionProvider",
      editor.document.uri,
      new vscode.Range(position, position),
      vscode.CodeActionKind.QuickFix.value,
    );
    const tests: FailingTest[] = [];
    for (const action of actions ?? []) {
      const command = "command" in action && typeof action.command === "object" ? action.command : (action as vscode.Command);
      if (command?.command !== SERVER.fix) {
        continue;
      }
      const argument = parseFixArgument(command.arguments?.[0]);
      if (argument !== undefined && !tests.some((t) => t.test === argument.test)) {
        tests.push({ test: argument.test, function: argument.function ?? "", kind: "test-failed", message: command.title });
      }
    }
    return tests;
  }

  private async pickTest(tests: FailingTest[], askAlways: boolean): Promise<FailingTest | undefined> {
    if (tests.length === 1 && !askAlways) {
      return tests[0];
    }
    const picked = await vscode.window.showQuickPick(
      tests.map((t) => ({
        label: `$(testing-error-icon) ${shortTestName(t.test)}`,
        description: t.function ? `fixes ${t.function}` : undefined,
        detail: t.message,
        test: t,
      })),
      { title: "Fix the function of a failing test", placeHolder: "Which failing test should pass?", matchOnDetail: true },
    );
    return picked?.test;
  }

  private async fixAtCursor(withInstruction: boolean): Promise<void> {
    const editor = this.pythonEditor();
    const client = editor && (await this.requireServer());
    if (editor === undefined || client === undefined) {
      return;
    }
    const found = failingTestsAt(this.diagnosticsOf(client, editor.document.uri), editor.selection.active);
    let tests = found.tests;
    if (found.where === "none") {
      tests = await this.testsFromCodeActions(editor);
    }
    if (tests.length === 0) {
      void vscode.window.showInformationMessage(
        "oci-lsp: no failing test here. Put the cursor on a test failure, in the test or on the function's name (save to run the tests).",
      );
      return;
    }
    // Away from any failure, the file's failures are offered, never one picked silently.
    const test = await this.pickTest(tests, found.where === "file");
    if (test === undefined) {
      return;
    }
    const argument: FixArgument = { uri: client.code2ProtocolConverter.asUri(editor.document.uri), test: test.test };
    if (test.function) {
      argument.function = test.function;
    }
    if (withInstruction) {
      await this.fixWithInstruction(argument);
    } else {
      await vscode.commands.executeCommand(SERVER.fix, argument);
    }
  }

  /** The function a failing test is about, from any document's oci-lsp diagnostics. */
  private functionOfTest(test: string): string | undefined {
    let found: string | undefined;
    this.controller.runningClient?.diagnostics?.forEach((_uri, diagnostics) => {
      for (const d of diagnostics) {
        const failure = failingTestOf(d);
        if (found === undefined && failure?.test === test) {
          found = failure.function;
        }
      }
    });
    return found;
  }

  /**
   * `oci.fixWithInstruction {uri, test, function?}`: ask for one line, then `oci.fix`; on
   * other tools' diagnostics, `{uri, function, diagnostics}`: then `oci.fixDiagnostics`.
   */
  private async fixWithInstruction(value: unknown): Promise<void> {
    const findings = parseDiagnosticsArgument(value);
    if (findings !== undefined) {
      await this.fixDiagnosticsWithInstruction(findings);
      return;
    }
    const argument = parseFixArgument(value);
    if (argument === undefined) {
      void vscode.window.showErrorMessage("oci-lsp: oci.fixWithInstruction needs {uri, test}.");
      return;
    }
    if ((await this.requireServer()) === undefined) {
      return;
    }
    const fn = argument.function ?? this.functionOfTest(argument.test);
    const name = fn ? `\`${shortFunctionName(fn)}\`` : "the function";
    const instruction = await vscode.window.showInputBox({
      title: `Fix ${name} so ${shortTestName(argument.test)} passes`,
      prompt: "One line of guidance for the model, sent with the failing test",
      placeHolder: "e.g. negative numbers count too; keep the signature",
      ignoreFocusOut: true,
    });
    if (instruction === undefined || instruction.trim() === "") {
      return; // cancelled, or nothing to say: the plain fix is its own action
    }
    // `function`: the suspect the action is about ("Fix `g` instead…"), kept as it came.
    await vscode.commands.executeCommand(SERVER.fix, {
      uri: argument.uri,
      test: argument.test,
      ...(argument.function !== undefined ? { function: argument.function } : {}),
      instruction: instruction.trim(),
    });
  }

  private async fixDiagnosticsWithInstruction(argument: DiagnosticsArgument): Promise<void> {
    if ((await this.requireServer()) === undefined) {
      return;
    }
    // Named as the action is: "Fix `f`: CODE message".
    const first = argument.diagnostics[0];
    const code = typeof first?.code === "string" || typeof first?.code === "number" ? `${first.code} ` : "";
    const instruction = await vscode.window.showInputBox({
      title: `Fix \`${shortFunctionName(argument.function)}\`: ${code}${first?.message ?? ""}`,
      prompt: "One line of guidance for the model, sent with the tool's report",
      placeHolder: "e.g. return an empty string for None; keep the signature",
      ignoreFocusOut: true,
    });
    if (instruction === undefined || instruction.trim() === "") {
      return;
    }
    await vscode.commands.executeCommand(SERVER.fixDiagnostics, { ...argument, instruction: instruction.trim() });
  }

  private async runTests(uri: vscode.Uri | undefined): Promise<void> {
    const client = await this.requireServer();
    if (client === undefined) {
      return;
    }
    await vscode.commands.executeCommand(SERVER.runTests, uri ? { uri: client.code2ProtocolConverter.asUri(uri) } : {});
  }

  private async runTestsOfFile(): Promise<void> {
    const editor = this.pythonEditor();
    if (editor !== undefined) {
      await this.runTests(editor.document.uri);
    }
  }

  private async pullModel(): Promise<void> {
    if (!vscode.workspace.isTrusted) {
      showRestricted(); // it runs the executable the settings name
      return;
    }
    await pullModel(this.output);
  }

  private async restart(): Promise<void> {
    if (!vscode.workspace.isTrusted) {
      showRestricted();
      return;
    }
    await this.controller.restart();
  }

  private async showMenu(): Promise<void> {
    type Item = vscode.QuickPickItem & { run: () => unknown };
    const command = (label: string, id: string, detail?: string): Item => ({ label, detail, run: () => vscode.commands.executeCommand(id) });
    const items: Item[] = [];
    if (!vscode.workspace.isTrusted) {
      items.push({
        label: `$(shield) ${MANAGE_TRUST}`,
        detail: RESTRICTED_MESSAGE,
        run: () => vscode.commands.executeCommand("workbench.trust.manage"),
      });
    } else {
      const editing = vscode.window.activeTextEditor?.document.languageId === "python";
      if (editing) {
        items.push(
          command("$(sparkle) Generate the Function Body at the Cursor", PALETTE.generateAtCursor),
          command("$(wrench) Fix the Function of the Failing Test at the Cursor", PALETTE.fixAtCursor),
          command("$(comment) Fix with an Instruction…", PALETTE.fixAtCursorWithInstruction),
          command("$(beaker) Run the Tests of This File", PALETTE.runTestsOfFile),
        );
      }
      items.push(
        command("$(beaker) Run All Tests", PALETTE.runTests),
        command("$(cloud-download) Pull a Model…", PALETTE.pullModel),
        command("$(debug-restart) Restart the Server", PALETTE.restartServer),
        {
          label: "$(settings-gear) Settings",
          run: () => vscode.commands.executeCommand("workbench.action.openSettings", "@ext:oci-lsp.oci-lsp"),
        },
      );
    }
    items.push(command("$(output) Show the Log", PALETTE.showLog));
    const picked = await vscode.window.showQuickPick(items, { title: "oci-lsp", placeHolder: "OpenCodeInterpreter" });
    await picked?.run();
  }
}
