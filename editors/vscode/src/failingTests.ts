// Which failing tests "fix at the cursor" means: the oci-lsp diagnostics under the cursor,
// else on its line, else every fixable one in the file (the user picks). Pure: it works on
// plain objects shaped like vscode.Diagnostic, so it is unit-tested without VS Code.

export interface PositionLike {
  line: number;
  character: number;
}

export interface DiagnosticLike {
  range: { start: PositionLike; end: PositionLike };
  message: string;
  source?: string;
  /** The LSP diagnostic's `data`; vscode-languageclient 9 keeps it on its ProtocolDiagnostic. */
  data?: unknown;
}

/** One test to fix, as `oci.fix` wants it plus what a QuickPick shows. */
export interface FailingTest {
  test: string;
  /** Dotted name of the function under test, e.g. `calc.add`. */
  function: string;
  kind: string;
  message: string;
}

/** The diagnostic kinds the server offers a fix for (collection errors are not a function's). */
export const FIXABLE_KINDS: ReadonlySet<string> = new Set(["test-failed", "test-error", "test-timeout"]);

export const SOURCE = "oci-lsp";

/** The test a diagnostic is about, when it is one the server can fix. */
export function failingTestOf(diagnostic: DiagnosticLike): FailingTest | undefined {
  if (diagnostic.source !== SOURCE) {
    return undefined;
  }
  const data = diagnostic.data;
  if (typeof data !== "object" || data === null) {
    return undefined;
  }
  const { test, function: fn, kind } = data as Record<string, unknown>;
  if (typeof test !== "string" || typeof fn !== "string" || typeof kind !== "string") {
    return undefined;
  }
  if (!FIXABLE_KINDS.has(kind)) {
    return undefined;
  }
  return { test, function: fn, kind, message: diagnostic.message };
}

function before(a: PositionLike, b: PositionLike): boolean {
  return a.line < b.line || (a.line === b.line && a.character <= b.character);
}

function contains(range: DiagnosticLike["range"], position: PositionLike): boolean {
  return before(range.start, position) && before(position, range.end);
}

function touchesLine(range: DiagnosticLike["range"], line: number): boolean {
  return range.start.line <= line && line <= range.end.line;
}

function unique(tests: FailingTest[]): FailingTest[] {
  const seen = new Set<string>();
  return tests.filter((t) => (seen.has(t.test) ? false : (seen.add(t.test), true)));
}

export interface FailuresAtCursor {
  tests: FailingTest[];
  /** `cursor`/`line`: under the cursor, so one is picked without asking; `file`: a fallback. */
  where: "cursor" | "line" | "file" | "none";
}

/** The fixable failing tests at `position` in a document with these diagnostics. */
export function failingTestsAt(diagnostics: readonly DiagnosticLike[], position: PositionLike): FailuresAtCursor {
  const fixable = diagnostics
    .map((d) => ({ diagnostic: d, failure: failingTestOf(d) }))
    .filter((x): x is { diagnostic: DiagnosticLike; failure: FailingTest } => x.failure !== undefined);
  const atCursor = unique(fixable.filter((x) => contains(x.diagnostic.range, position)).map((x) => x.failure));
  if (atCursor.length > 0) {
    return { tests: atCursor, where: "cursor" };
  }
  const onLine = unique(fixable.filter((x) => touchesLine(x.diagnostic.range, position.line)).map((x) => x.failure));
  if (onLine.length > 0) {
    return { tests: onLine, where: "line" };
  }
  const inFile = unique(fixable.map((x) => x.failure));
  return inFile.length > 0 ? { tests: inFile, where: "file" } : { tests: [], where: "none" };
}

/** The short name of a test id: `tests/test_calc.py::TestAdd::test_one` → `TestAdd::test_one`. */
export function shortTestName(test: string): string {
  const parts = test.split("::");
  return parts.length > 1 ? parts.slice(1).join("::") : test;
}

/** The last part of a dotted function name: `calc.Calc.add` → `add`. */
export function shortFunctionName(fn: string): string {
  return fn.split(".").pop() ?? fn;
}

/** A `oci.fix` command argument carried by a code action: `{uri, test, function?}`. */
export interface FixArgument {
  uri: string;
  test: string;
  function?: string;
}

export function parseFixArgument(value: unknown): FixArgument | undefined {
  if (typeof value !== "object" || value === null) {
    return undefined;
  }
  const { uri, test, function: fn } = value as Record<string, unknown>;
  if (typeof uri !== "string" || typeof test !== "string") {
    return undefined;
  }
  return typeof fn === "string" ? { uri, test, function: fn } : { uri, test };
}

/** The argument of a fix of other tools' diagnostics (`oci.fixDiagnostics`), as the server sent it. */
export interface DiagnosticsArgument {
  uri: string;
  function: string;
  diagnostics: { message: string; [key: string]: unknown }[];
}

export function parseDiagnosticsArgument(value: unknown): DiagnosticsArgument | undefined {
  if (typeof value !== "object" || value === null) {
    return undefined;
  }
  const { uri, function: fn, diagnostics } = value as Record<string, unknown>;
  if (typeof uri !== "string" || typeof fn !== "string" || !Array.isArray(diagnostics) || diagnostics.length === 0) {
    return undefined;
  }
  if (!diagnostics.every((d) => typeof d === "object" && d !== null && typeof (d as { message?: unknown }).message === "string")) {
    return undefined;
  }
  return { uri, function: fn, diagnostics: diagnostics as DiagnosticsArgument["diagnostics"] };
}
