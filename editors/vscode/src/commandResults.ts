// What to tell the user when `oci.generate`/`oci.fix`/`oci.applyUnverified` answer
// `{applied, verified, message}`, or `oci.runTests` answers `{failed, passed}`.
//
// The server already explains most refusals itself with window/showMessage ("already working
// on `add`", "no model to generate with: …"). A second notification with the same reason
// would be noise, so a result whose message the server has just shown is not repeated.

export interface EditResult {
  applied: boolean;
  verified: boolean;
  message: string;
}

export type Notice =
  | { kind: "none" }
  /** A pop-up notification. */
  | { kind: "warning" | "info"; text: string }
  /** A few seconds in the status bar: good news needs no dismissing. */
  | { kind: "status"; text: string };

export function parseEditResult(value: unknown): EditResult | undefined {
  if (typeof value !== "object" || value === null) {
    return undefined;
  }
  const raw = value as Record<string, unknown>;
  if (typeof raw.applied !== "boolean") {
    return undefined;
  }
  return {
    applied: raw.applied,
    verified: raw.verified === true,
    message: typeof raw.message === "string" ? raw.message : "",
  };
}

/** The user cancelled it: saying "not applied" would only repeat what they did. */
const SILENT_MESSAGES = new Set(["cancelled"]);

/**
 * The notice for an edit command's answer. `serverMessages` are the window/showMessage
 * texts the server sent while the command ran.
 */
export function editResultNotice(value: unknown, serverMessages: readonly string[]): Notice {
  const result = parseEditResult(value);
  if (result === undefined) {
    return { kind: "none" };
  }
  if (result.applied) {
    if (result.verified) {
      return { kind: "status", text: "$(check) oci-lsp: applied, the tests pass" };
    }
    // Only with refine.verify off, or "nothing to change": say what was not checked.
    const why = result.message && result.message !== "applied" ? `: ${result.message}` : "";
    return { kind: "info", text: `oci-lsp: applied without passing the tests${why}` };
  }
  if (SILENT_MESSAGES.has(result.message)) {
    return { kind: "none" };
  }
  if (result.message && serverMessages.some((m) => m.includes(result.message))) {
    return { kind: "none" };
  }
  return {
    kind: "warning",
    text: `oci-lsp: nothing applied${result.message ? `: ${result.message}` : ""}`,
  };
}

/** The notice for `oci.runTests`' answer `{failed, passed}`. */
export function runTestsNotice(value: unknown): Notice {
  if (typeof value !== "object" || value === null) {
    return { kind: "none" };
  }
  const { failed, passed } = value as Record<string, unknown>;
  if (typeof failed !== "number" || typeof passed !== "number") {
    return { kind: "none" };
  }
  return failed > 0
    ? { kind: "status", text: `$(x) oci-lsp: ${failed} failed, ${passed} passed` }
    : { kind: "status", text: `$(check) oci-lsp: ${passed} passed` };
}
