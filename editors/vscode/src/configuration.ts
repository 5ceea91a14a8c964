// VS Code's side of the settings rule in settings.ts: read `inspect()` for the scope the
// server asks about, and hand the pure code only what the user set.

import * as vscode from "vscode";
import { explicitSettings, SECTION } from "./settings";

/**
 * The explicit server settings for a scope: a folder's (the server's workspace/configuration
 * items carry the folder's URI as `scopeUri`) or, without one, the window's.
 */
export function explicitOciSettings(scopeUri: string | undefined): Record<string, unknown> {
  let scope: vscode.Uri | undefined;
  try {
    scope = scopeUri ? vscode.Uri.parse(scopeUri, true) : undefined;
  } catch {
    scope = undefined; // not a URI we can place: the window's settings then
  }
  const config = vscode.workspace.getConfiguration(SECTION, scope);
  return explicitSettings((key) => config.inspect(key));
}

/** Every scope's explicit settings as one string, to tell a real change from a no-op. */
export function explicitSettingsSnapshot(): string {
  const folders = vscode.workspace.workspaceFolders ?? [];
  return JSON.stringify([
    explicitOciSettings(undefined),
    ...folders.map((f) => explicitOciSettings(f.uri.toString())),
  ]);
}
