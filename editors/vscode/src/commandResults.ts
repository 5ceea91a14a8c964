// What to tell the user when `oci.generate`/`oci.fix`/`oci.applyUnverified` answer
// `{applied, verified, message}`, or `oci.runTests` answers `{failed, passed}`.
//
// When nothing is applied the server has already said why with window/showMessage (README,
// "Commands"), or the user cancelled: the client adds nothing then.

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

/**
 * The notice for an edit command's answer: only the outcome of an applied edit. `byTools`:
 * the answer of `oci.fixDiagnostics`, verified by a linter or type checker and the tests that
 * exercise the function, if any: the server's message says which ("mypy: the findings are
 * gone; no tests exercise it"), where "the tests pass" would claim what was not checked.
 */
export function editResultNotice(value: unknown, byTools = false): Notice {
  const result = parseEditResult(value);
  if (result === undefined || !result.applied) {
    return { kind: "none" };
  }
  if (result.verified) {
    if (byTools) {
      const what = result.message && result.message !== "applied" ? `: ${result.message}` : "";
      return { kind: "status", text: `$(check) oci-lsp: applied, verified${what}` };
    }
    return { kind: "status", text: "$(check) oci-lsp: applied, the tests pass" };
  }
  // Only with refine.verify off, or "nothing to change": say what was not checked.
  const why = result.message && result.message !== "applied" ? `: ${result.message}` : "";
  const unchecked = byTools ? "unverified" : "without passing the tests";
  return { kind: "info", text: `oci-lsp: applied ${unchecked}${why}` };
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
