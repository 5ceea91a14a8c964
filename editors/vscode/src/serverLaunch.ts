// How to start the server, from the client-only settings `oci.server.*`, and what to tell the
// user when that executable is not there. Kept free of `vscode` so it can be unit-tested.

import * as path from "node:path";

export interface ServerSettings {
  /** `oci.server.path`: the executable, a name on PATH or a path. */
  path: string;
  /** `oci.server.python`: when set, `<python> -m oci_lsp` replaces `path`. */
  python: string | null;
  /** `oci.server.args`: extra arguments after the command. */
  args: string[];
}

export interface LaunchContext {
  /** The first workspace folder's path: `${workspaceFolder}` and relative paths resolve here. */
  workspaceFolder: string | undefined;
  home: string;
  env: Record<string, string | undefined>;
}

export interface Launch {
  command: string;
  /** Arguments that serve LSP over stdio: the prefix plus `oci.server.args`. */
  args: string[];
  /** Arguments before a subcommand (`model list`): `-m oci_lsp` for a Python, else none. */
  cliPrefix: string[];
  /** The setting that named `command`, for error messages. */
  setting: "oci.server.path" | "oci.server.python";
}

export const DEFAULT_SERVER_PATH = "oci-lsp";

/** `~`, `${userHome}`, `${workspaceFolder}` and `${env:NAME}` in a path setting. */
export function expandVariables(value: string, context: LaunchContext): string {
  let out = value.trim();
  if (out === "~" || out.startsWith("~/") || out.startsWith("~\\")) {
    out = context.home + out.slice(1);
  }
  return out.replace(/\$\{(userHome|workspaceFolder|env:([^}]+))\}/g, (whole, name: string, env?: string) => {
    if (name === "userHome") {
      return context.home;
    }
    if (name === "workspaceFolder") {
      return context.workspaceFolder ?? whole;
    }
    return context.env[env ?? ""] ?? "";
  });
}

/** A path with a directory part is a file; relative ones are taken from the workspace folder. */
function asFilePath(command: string, context: LaunchContext): string {
  if (path.isAbsolute(command) || context.workspaceFolder === undefined) {
    return command;
  }
  return path.join(context.workspaceFolder, command);
}

function hasDirectory(command: string): boolean {
  return command.includes("/") || command.includes("\\");
}

/** The command line the settings ask for (not yet looked up on PATH). */
export function resolveLaunch(settings: ServerSettings, context: LaunchContext): Launch {
  const extra = settings.args.filter((a) => typeof a === "string");
  const python = settings.python?.trim();
  if (python) {
    const expanded = expandVariables(python, context);
    return {
      command: hasDirectory(expanded) ? asFilePath(expanded, context) : expanded,
      args: ["-m", "oci_lsp", ...extra],
      cliPrefix: ["-m", "oci_lsp"],
      setting: "oci.server.python",
    };
  }
  const expanded = expandVariables(settings.path.trim() || DEFAULT_SERVER_PATH, context);
  return {
    command: hasDirectory(expanded) ? asFilePath(expanded, context) : expanded,
    args: extra,
    cliPrefix: [],
    setting: "oci.server.path",
  };
}

/**
 * Where `command` is: itself when it names a file, else the first match on PATH (with
 * PATHEXT on Windows). `undefined` when it is nowhere, so we can say so before spawning:
 * a spawn ENOENT surfaces in the client as a generic "couldn't create connection".
 */
export function findExecutable(
  command: string,
  env: Record<string, string | undefined>,
  platform: NodeJS.Platform,
  isExecutableFile: (candidate: string) => boolean,
): string | undefined {
  const windows = platform === "win32";
  const extensions = windows
    ? ["", ...(env.PATHEXT ?? ".COM;.EXE;.BAT;.CMD").split(";").filter(Boolean)]
    : [""];
  const candidatesOf = (base: string) => extensions.map((ext) => base + ext);
  if (hasDirectory(command)) {
    return candidatesOf(command).find(isExecutableFile);
  }
  const separator = windows ? ";" : ":";
  const dirs = (env.PATH ?? env.Path ?? "").split(separator).filter(Boolean);
  for (const dir of dirs) {
    const found = candidatesOf(path.join(dir, command)).find(isExecutableFile);
    if (found !== undefined) {
      return found;
    }
  }
  return undefined;
}

/** A subcommand's command line, e.g. `model list --json` (without `oci.server.args`, which are
 * options of serving and may not parse before a subcommand). */
export function cliCommand(launch: Launch, subcommand: string[]): { command: string; args: string[] } {
  return { command: launch.command, args: [...launch.cliPrefix, ...subcommand] };
}

/** The message when the executable is missing: it names the setting to change. */
export function notFoundMessage(launch: Launch): string {
  if (launch.setting === "oci.server.python") {
    return (
      `oci-lsp: the Python interpreter \`${launch.command}\` (oci.server.python) was not found: ` +
      "set oci.server.python to an interpreter that has oci-lsp installed, or clear it to use oci.server.path"
    );
  }
  if (launch.command === DEFAULT_SERVER_PATH) {
    return (
      "oci-lsp not found: install it with `pip install oci-lsp` " +
      "or set oci.server.path / oci.server.python"
    );
  }
  return (
    `oci-lsp: the server \`${launch.command}\` (oci.server.path) was not found: ` +
    "fix oci.server.path, or set oci.server.python to an interpreter that has oci-lsp installed"
  );
}

/** The message when the process started but the server did not come up. */
export function startFailedMessage(launch: Launch, error: string): string {
  const commandLine = [launch.command, ...launch.args].join(" ");
  const hint =
    launch.setting === "oci.server.python"
      ? "is oci-lsp installed in that interpreter (`<python> -m pip install oci-lsp`)? Check oci.server.python"
      : "check oci.server.path / oci.server.python";
  return `oci-lsp could not start (\`${commandLine}\`): ${error}. See the log; ${hint}.`;
}

/**
 * The line of a dead server's stderr that says why: the last non-empty one (Python ends a
 * traceback with the exception, `python -m` says "No module named oci_lsp").
 */
export function stderrSummary(stderr: string): string | undefined {
  const lines = stderr
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "");
  const last = lines[lines.length - 1];
  if (last === undefined) {
    return undefined;
  }
  return last.length > 300 ? `${last.slice(0, 297)}...` : last;
}
