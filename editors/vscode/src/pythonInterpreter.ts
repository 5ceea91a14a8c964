// The interpreter selected in the Python extension (ms-python.python), for the server's
// tests when `oci.tests.python` is not set, as Microsoft's Python tool extensions (ruff, mypy,
// pylint, black) use it. Pure: the extension's exports come in as an argument, so the logic is
// unit-tested with a fake of them (the e2e's code-server has no marketplace, so no Python
// extension).
//
// How it reaches the server: not as a setting (only what the user set is sent, so that
// `[tool.oci-lsp]` in pyproject.toml still applies), but as its own key beside the settings in
// the `oci` section of workspace/configuration, which the server ranks below an explicit
// `tests.python` from any source. A new selection is a workspace/didChangeConfiguration: the
// server asks again, no restart.

import type { PythonExtension } from "@vscode/python-extension";

/** The key beside the settings (the server's `EDITOR_INTERPRETER`). */
export const EDITOR_INTERPRETER = "editorInterpreter";

/** ms-python.python's id. */
export const PYTHON_EXTENSION_ID = "ms-python.python";

/** The part of the Python extension's API we use. */
export type PythonEnvironments = Pick<
  PythonExtension["environments"],
  "getActiveEnvironmentPath" | "resolveEnvironment" | "onDidChangeActiveEnvironmentPath"
>;

/** Our own view of a resource: a folder's or file's URI, or undefined for the window. */
type Resource = Parameters<PythonEnvironments["getActiveEnvironmentPath"]>[0];

/**
 * The `environments` API of the extension's exports, if they have the shape we use (an old
 * Python extension without the environments API, or a broken one, gives undefined).
 */
export function environmentsOf(exports: unknown): PythonEnvironments | undefined {
  if (typeof exports !== "object" || exports === null) {
    return undefined;
  }
  const environments = (exports as { environments?: unknown }).environments;
  if (typeof environments !== "object" || environments === null) {
    return undefined;
  }
  const api = environments as Record<string, unknown>;
  const usable =
    typeof api.getActiveEnvironmentPath === "function" &&
    typeof api.resolveEnvironment === "function" &&
    typeof api.onDidChangeActiveEnvironmentPath === "function";
  return usable ? (environments as PythonEnvironments) : undefined;
}

/**
 * The interpreter the Python extension has selected for a resource: the executable of the
 * active environment, resolved (the active path may name an environment's folder, or an
 * interpreter that no longer exists). Undefined when there is none or the API fails: the
 * server then chooses by itself.
 */
export async function selectedInterpreter(
  api: PythonEnvironments | undefined,
  resource: Resource,
): Promise<string | undefined> {
  if (api === undefined) {
    return undefined;
  }
  try {
    const active = api.getActiveEnvironmentPath(resource);
    const environment = await api.resolveEnvironment(active);
    const path = environment?.executable.uri?.fsPath;
    return typeof path === "string" && path !== "" ? path : undefined;
  } catch {
    return undefined;
  }
}

/** What we add to a scope's settings: the selected interpreter, when there is one. */
export function withEditorInterpreter(
  settings: Record<string, unknown>,
  interpreter: string | undefined,
): Record<string, unknown> {
  return interpreter === undefined ? settings : { ...settings, [EDITOR_INTERPRETER]: interpreter };
}

/** A promise's value, or `fallback` when it takes longer than `ms`. */
export function within<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * Follows the selection: calls `changed` whenever the Python extension's active environment
 * changes for any resource (the server asks again for every folder). Returns the disposable.
 */
export function followSelection(api: PythonEnvironments, changed: () => void): { dispose(): unknown } {
  return api.onDidChangeActiveEnvironmentPath(() => changed());
}
