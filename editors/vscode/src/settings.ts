// The `oci.*` settings the server reads, and the rule for what we send it: only the values
// the user set explicitly. VS Code's defaults must never reach the server: in its order of
// sources, initializationOptions and workspace/configuration rank above the workspace's
// pyproject.toml `[tool.oci-lsp]`, so sending a default would silently override the project.

/** The section the server asks for (CONTRACT.md: workspace/configuration section "oci"). */
export const SECTION = "oci";

/** Dotted keys under `oci.` that are server settings (CONTRACT.md "Settings"). */
export const SERVER_KEYS: readonly string[] = [
  "model",
  "backend",
  "device",
  "computeType",
  "openai.baseUrl",
  "openai.model",
  "openai.apiKeyEnv",
  "tests.onSave",
  "tests.command",
  "tests.scope",
  "tests.timeout",
  "tests.python",
  "tests.localization",
  "tests.localizationMutants",
  "refine.maxRounds",
  "refine.candidates",
  "refine.temperature",
  "refine.verify",
  "generation.maxNewTokens",
  "generation.preload",
  "tools.enabled",
  "tools.ruff",
  "tools.mypy",
  "tools.pyright",
];

/**
 * Keys under `oci.` that only the extension reads. They are never sent: the server reports
 * unknown keys, and these name executables, which are none of its business.
 */
export const CLIENT_KEYS: readonly string[] = [
  "server.path",
  "server.python",
  "server.args",
  "trace.server",
];

/** The part of VS Code's `WorkspaceConfiguration.inspect()` answer we use. */
export interface InspectedValue {
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

export type Inspect = (key: string) => InspectedValue | undefined;

/**
 * The explicit value of one key: the folder's over the workspace's over the user's.
 * `undefined` means "not set anywhere"; an explicit `null` is a value (it can undo a user
 * setting in one workspace, e.g. `tests.command: null` to go back to pytest).
 */
export function explicitValue(inspected: InspectedValue | undefined): unknown {
  if (inspected === undefined) {
    return undefined;
  }
  for (const value of [
    inspected.workspaceFolderValue,
    inspected.workspaceValue,
    inspected.globalValue,
  ]) {
    if (value !== undefined) {
      return value;
    }
  }
  return undefined;
}

/**
 * The nested settings object (the JSON shape of CONTRACT.md) holding only the server keys
 * that are set explicitly. `inspect` is asked once per server key; it decides the scope (a
 * folder's configuration has `workspaceFolderValue`, the window's has not).
 */
export function explicitSettings(inspect: Inspect): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const key of SERVER_KEYS) {
    const value = explicitValue(inspect(key));
    if (value !== undefined) {
      setPath(result, key.split("."), value);
    }
  }
  return result;
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const part of path.slice(0, -1)) {
    const next = node[part];
    if (typeof next === "object" && next !== null && !Array.isArray(next)) {
      node = next as Record<string, unknown>;
    } else {
      const created: Record<string, unknown> = {};
      node[part] = created;
      node = created;
    }
  }
  node[path[path.length - 1]] = value;
}

/** initializationOptions: the explicit window-level settings plus what the client can do. */
export function initializationOptions(settings: Record<string, unknown>): Record<string, unknown> {
  // promptForInstruction: we register `oci.fixWithInstruction`, so the server may offer it.
  return { ...settings, promptForInstruction: true };
}

/**
 * The dotted keys set in `initial` (what the server got as initializationOptions) that are
 * no longer set in `current`. The server keeps such a key's start-time value: its
 * initializationOptions layer is fixed at start, and the configuration it asks for now simply
 * lacks the key. Only a restart drops it.
 */
export function removedKeys(initial: Record<string, unknown>, current: Record<string, unknown>): string[] {
  const removed: string[] = [];
  for (const key of SERVER_KEYS) {
    if (valueAt(initial, key) !== undefined && valueAt(current, key) === undefined) {
      removed.push(key);
    }
  }
  return removed;
}

function valueAt(settings: Record<string, unknown>, key: string): unknown {
  let node: unknown = settings;
  for (const part of key.split(".")) {
    if (typeof node !== "object" || node === null || Array.isArray(node)) {
      return undefined;
    }
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}
