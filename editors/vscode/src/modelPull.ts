// "Pull a model": list the catalog with `<server> model list --json`, let the user pick, then
// run `<server> model pull ID` as a task, so its progress bar shows in a terminal and the
// terminal stays open afterwards (a plain createTerminal closes when the process exits).

import * as childProcess from "node:child_process";
import * as vscode from "vscode";
import { currentLaunch, firstLocalFolder, locate } from "./serverExecutable";
import { cliCommand } from "./serverLaunch";
import type { Launch } from "./serverLaunch";
import { FALLBACK_MODELS, modelPickItems, parseModelList } from "./modelCatalog";
import type { CatalogModel } from "./modelCatalog";
import { SECTION } from "./settings";

const LIST_TIMEOUT_MS = 30_000;

/** The task type: contributed in package.json `taskDefinitions`. */
export const TASK_TYPE = "oci-lsp";

function listModels(launch: Launch, executable: string, output: vscode.OutputChannel): Promise<CatalogModel[]> {
  const { args } = cliCommand(launch, ["model", "list", "--json"]);
  return new Promise((resolve) => {
    childProcess.execFile(
      executable,
      args,
      { cwd: firstLocalFolder()?.uri.fsPath, timeout: LIST_TIMEOUT_MS, maxBuffer: 4 * 1024 * 1024 },
      (error, stdout, stderr) => {
        try {
          if (error) {
            throw new Error(`${error.message}${stderr ? `\n${stderr}` : ""}`);
          }
          resolve(parseModelList(stdout));
        } catch (reason) {
          // An older server without --json, or a broken install: the fixed list still lets
          // the user pick, and the pull itself will show the real error in its terminal.
          output.appendLine(`model list --json failed, using the built-in list: ${String(reason)}`);
          resolve([...FALLBACK_MODELS]);
        }
      },
    );
  });
}

export async function pullModel(output: vscode.OutputChannel): Promise<void> {
  const launch = currentLaunch();
  const located = locate(launch);
  if ("error" in located) {
    void vscode.window.showErrorMessage(located.error);
    return;
  }
  const configured = vscode.workspace.getConfiguration(SECTION).get<string>("model");
  const models = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Window, title: "oci-lsp: listing models" },
    () => listModels(launch, located.path, output),
  );
  const picked = await vscode.window.showQuickPick(modelPickItems(models, configured), {
    title: "Pull a model",
    placeHolder: "A model to download, convert to CTranslate2 and verify (`oci-lsp model pull ID`)",
    matchOnDescription: true,
    matchOnDetail: true,
  });
  if (picked === undefined) {
    return;
  }
  const { args } = cliCommand(launch, ["model", "pull", picked.id]);
  const folder = firstLocalFolder();
  const task = new vscode.Task(
    { type: TASK_TYPE, command: "pull", model: picked.id },
    folder ?? vscode.TaskScope.Workspace,
    `pull ${picked.id}`,
    "oci-lsp",
    new vscode.ProcessExecution(located.path, args, folder ? { cwd: folder.uri.fsPath } : {}),
  );
  task.presentationOptions = {
    reveal: vscode.TaskRevealKind.Always,
    panel: vscode.TaskPanelKind.Dedicated,
    focus: true,
    clear: true,
  };
  let execution: vscode.TaskExecution;
  try {
    execution = await vscode.tasks.executeTask(task);
  } catch (error) {
    // No workspace to run tasks in (a lone file): a terminal of its own still shows progress.
    output.appendLine(`Running the pull as a task failed (${String(error)}); using a terminal`);
    const terminal = vscode.window.createTerminal({
      name: `oci-lsp: pull ${picked.id}`,
      shellPath: located.path,
      shellArgs: args,
    });
    terminal.show();
    return;
  }
  const listener = vscode.tasks.onDidEndTaskProcess((event) => {
    if (event.execution !== execution) {
      return;
    }
    listener.dispose();
    if (event.exitCode === 0) {
      void offerToUse(picked.id, configured);
    } else {
      void vscode.window.showErrorMessage(
        `oci-lsp: pulling ${picked.id} failed (exit status ${event.exitCode ?? "unknown"}); its terminal says why.`,
      );
    }
  });
}

async function offerToUse(id: string, configured: string | undefined): Promise<void> {
  if (configured === id) {
    void vscode.window.showInformationMessage(`oci-lsp: ${id} is installed.`);
    return;
  }
  const use = `Use ${id}`;
  const choice = await vscode.window.showInformationMessage(`oci-lsp: ${id} is installed.`, use);
  if (choice === use) {
    // User settings (a model is the machine's, not one project's), unless the workspace
    // sets one: then that is what wins, so that is what to change.
    const config = vscode.workspace.getConfiguration(SECTION);
    const target =
      config.inspect("model")?.workspaceValue !== undefined
        ? vscode.ConfigurationTarget.Workspace
        : vscode.ConfigurationTarget.Global;
    await config.update("model", id, target);
  }
}
