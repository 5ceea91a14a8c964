// Finding the server executable the `oci.server.*` settings name, and checking that it runs,
// before the language client is involved (its own errors do not say which setting to fix).

import * as childProcess from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as vscode from "vscode";
import { cliCommand, findExecutable, notFoundMessage, resolveLaunch, stderrSummary } from "./serverLaunch";
import type { Launch, ServerSettings } from "./serverLaunch";
import { SECTION } from "./settings";

const VERSION_TIMEOUT_MS = 30_000;

/** The first workspace folder on disk: the server's cwd and `${workspaceFolder}`. */
export function firstLocalFolder(): vscode.WorkspaceFolder | undefined {
  return vscode.workspace.workspaceFolders?.find((f) => f.uri.scheme === "file");
}

/** `oci.server.*` (effective values: these are the extension's own, defaults included). */
export function currentLaunch(): Launch {
  const config = vscode.workspace.getConfiguration(SECTION);
  const settings: ServerSettings = {
    path: config.get<string>("server.path") ?? "",
    python: config.get<string | null>("server.python") ?? null,
    args: config.get<string[]>("server.args") ?? [],
  };
  return resolveLaunch(settings, {
    workspaceFolder: firstLocalFolder()?.uri.fsPath,
    home: os.homedir(),
    env: process.env,
  });
}

function isExecutableFile(candidate: string): boolean {
  try {
    if (!fs.statSync(candidate).isFile()) {
      return false;
    }
    if (process.platform !== "win32") {
      fs.accessSync(candidate, fs.constants.X_OK);
    }
    return true;
  } catch {
    return false;
  }
}

/** The launch's command found on disk, or the message that says which setting to fix. */
export function locate(launch: Launch): { path: string } | { error: string } {
  const found = findExecutable(launch.command, process.env, process.platform, isExecutableFile);
  return found === undefined ? { error: notFoundMessage(launch) } : { path: found };
}

/**
 * `<server> --version`: its version, or why it cannot run (the last line of its stderr, e.g.
 * "No module named oci_lsp" for a Python without it).
 */
export function runVersion(
  executable: string,
  launch: Launch,
  cwd: string | undefined,
): Promise<{ version: string } | { error: string; log: string }> {
  const { args } = cliCommand(launch, ["--version"]);
  return new Promise((resolve) => {
    childProcess.execFile(executable, args, { cwd, timeout: VERSION_TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error) {
        const why = stderrSummary(String(stderr)) ?? error.message;
        resolve({ error: why, log: `${[executable, ...args].join(" ")} failed: ${error.message}\n${String(stderr)}` });
      } else {
        resolve({ version: String(stdout).trim() || "unknown version" });
      }
    });
  });
}
