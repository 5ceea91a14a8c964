// What the status bar item says, from the client's phase and the server's `oci.status`
// answer. Pure, so the wording of every state is unit-tested.

export type ModelState = "not-loaded" | "loading" | "ready" | "error";

/** `oci.status`: `{version, backend, model: {...}, tests: {...}}` (CONTRACT.md "Commands"). */
export interface OciStatus {
  version: string | null;
  backend: string | null;
  model: {
    id: string | null;
    state: ModelState;
    device: string | null;
    computeType: string | null;
    error: string | null;
  };
  tests: { running: boolean; failed: number; passed: number; python: TestInterpreter | null };
}

/** `tests.python` of `oci.status` (an addition to CONTRACT.md): what runs the tests, and why. */
export interface TestInterpreter {
  path: string;
  /** A keyword: "setting", "editor", "venv", "virtual-env", "poetry", "server", ... */
  source: string;
  /** Why it was chosen, in words. */
  reason: string;
}

/** Where the client is; `running` carries the last status answer, if any came yet. */
export type Phase =
  | { kind: "restricted" }
  | { kind: "starting" }
  | { kind: "stopped" }
  | { kind: "failed"; reason: string }
  | { kind: "running"; status: OciStatus | undefined };

export interface StatusView {
  text: string;
  /** Markdown. */
  tooltip: string;
  /** Colours the item: only for states the user has to act on. */
  alert: "error" | "warning" | undefined;
}

const MODEL_STATES: readonly ModelState[] = ["not-loaded", "loading", "ready", "error"];

function text(value: unknown): string | null {
  return typeof value === "string" && value !== "" ? value : null;
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : 0;
}

function interpreter(value: unknown): TestInterpreter | null {
  if (typeof value !== "object" || value === null) {
    return null;
  }
  const raw = value as Record<string, unknown>;
  const path = text(raw.path);
  return path === null ? null : { path, source: text(raw.source) ?? "", reason: text(raw.reason) ?? "" };
}

/** A status answer, checked field by field: a newer or older server may send less. */
export function parseStatus(value: unknown): OciStatus | undefined {
  if (typeof value !== "object" || value === null) {
    return undefined;
  }
  const raw = value as Record<string, unknown>;
  const model = (typeof raw.model === "object" && raw.model !== null ? raw.model : {}) as Record<
    string,
    unknown
  >;
  const tests = (typeof raw.tests === "object" && raw.tests !== null ? raw.tests : {}) as Record<
    string,
    unknown
  >;
  const state = MODEL_STATES.includes(model.state as ModelState)
    ? (model.state as ModelState)
    : "not-loaded";
  return {
    version: text(raw.version),
    backend: text(raw.backend),
    model: {
      id: text(model.id),
      state,
      device: text(model.device),
      computeType: text(model.computeType),
      error: text(model.error),
    },
    tests: {
      running: tests.running === true,
      failed: count(tests.failed),
      passed: count(tests.passed),
      python: interpreter(tests.python),
    },
  };
}

/** Polling is only worth it while something changes on its own: a test run, a model load. */
export function needsPolling(status: OciStatus | undefined): boolean {
  return status !== undefined && (status.tests.running || status.model.state === "loading");
}

/** "GPU"/"CPU" for the status bar; `null` when there is no local device (a remote backend). */
function deviceName(device: string | null): string | null {
  if (device === null || device === "remote") {
    return null;
  }
  if (device.startsWith("cuda")) {
    return "GPU";
  }
  return device === "cpu" ? "CPU" : device;
}

function modelText(status: OciStatus): string {
  const { id, state, device } = status.model;
  const name = id ?? "model";
  switch (state) {
    case "loading":
      return `$(loading~spin) ${name}: loading`;
    case "ready": {
      const where = deviceName(device);
      return where ? `$(sparkle) ${name} on ${where}` : `$(sparkle) ${name}: ready`;
    }
    case "error":
      return `$(error) ${name}: error`;
    default:
      return `$(circle-large-outline) ${name}: not loaded`;
  }
}

function testsText(status: OciStatus): string {
  const { running, failed, passed } = status.tests;
  if (running) {
    return "$(sync~spin) testing";
  }
  if (failed === 0 && passed === 0) {
    return "";
  }
  return failed > 0 ? `$(check) ${passed} $(x) ${failed}` : `$(check) ${passed}`;
}

/** Server text goes into a Markdown tooltip: keep `*`, `_`, `[` and friends literal. */
export function escapeMarkdown(value: string): string {
  return value.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, (c) => `\\${c}`);
}

const CLICK_HINT = "Click for the oci-lsp commands.";

function modelLine(status: OciStatus): string {
  const { id, state, device, computeType } = status.model;
  const name = id ? `\`${id}\`` : "the model";
  switch (state) {
    case "ready": {
      const details = [device, computeType].filter((v): v is string => v !== null).join(", ");
      return `Model: ${name}, ready${details ? ` (${details})` : ""}`;
    }
    case "loading":
      return `Model: ${name}, loading${device ? ` on ${device}` : ""}`;
    case "error":
      return `Model: ${name}, not usable (the error below says why)`;
    default:
      return `Model: ${name}, not loaded (it loads on the first generate or fix)`;
  }
}

/** The server says "selected in the editor"; here the editor's choice is the Python extension's. */
function reasonText(python: TestInterpreter): string {
  return python.source === "editor" ? "selected in the Python extension" : python.reason;
}

/** A path as Markdown code, whatever characters it has. */
function codeSpan(value: string): string {
  const fence = value.includes("`") ? "``" : "`";
  return `${fence}${value.includes("`") ? ` ${value} ` : value}${fence}`;
}

/** The server's words, where `…` marks code: code stays code, the rest is literal text. */
function withCode(value: string): string {
  return value
    .split("`")
    .map((part, i) => (i % 2 === 1 ? codeSpan(part) : escapeMarkdown(part)))
    .join("");
}

/** Which interpreter runs the tests, and why. */
export function interpreterLine(python: TestInterpreter): string {
  const why = reasonText(python);
  return `Tests run with: ${codeSpan(python.path)}${why ? ` (${withCode(why)})` : ""}`;
}

function testsLine(status: OciStatus): string {
  const { running, failed, passed } = status.tests;
  const counts = `${passed} passed, ${failed} failed`;
  return running ? `Tests: running… (last known: ${counts})` : `Tests: ${counts}`;
}

/** The item's text, tooltip and colour for a phase. */
export function statusView(phase: Phase): StatusView {
  switch (phase.kind) {
    case "restricted":
      return {
        text: "$(shield) oci-lsp: restricted",
        tooltip:
          "oci-lsp runs your tests and generated code, so it is off in Restricted Mode. " +
          "Trust the workspace to turn it on.\n\n" +
          CLICK_HINT,
        alert: undefined,
      };
    case "starting":
      return {
        text: "$(loading~spin) oci-lsp: starting",
        tooltip: "The oci-lsp server is starting.\n\n" + CLICK_HINT,
        alert: undefined,
      };
    case "stopped":
      return {
        text: "$(circle-slash) oci-lsp: stopped",
        tooltip: "The oci-lsp server is not running.\n\n" + CLICK_HINT,
        alert: undefined,
      };
    case "failed":
      return {
        text: "$(error) oci-lsp: not running",
        tooltip: `${escapeMarkdown(phase.reason)}\n\n${CLICK_HINT}`,
        alert: "error",
      };
    case "running":
      break;
  }
  const status = phase.status;
  if (status === undefined) {
    return { text: "$(sparkle) oci-lsp", tooltip: "oci-lsp is running.\n\n" + CLICK_HINT, alert: undefined };
  }
  const tests = testsText(status);
  const lines = [
    `**oci-lsp**${status.version ? ` ${status.version}` : ""}`,
    modelLine(status),
    `Backend: ${status.backend ?? "unknown"}`,
    testsLine(status),
  ];
  if (status.tests.python !== null) {
    lines.push(interpreterLine(status.tests.python));
  }
  if (status.model.error) {
    lines.push(`Error: ${escapeMarkdown(status.model.error)}`);
  }
  lines.push(CLICK_HINT);
  return {
    text: tests ? `${modelText(status)}  ${tests}` : modelText(status),
    // Two spaces before the newline: a Markdown line break, one fact a line.
    tooltip: lines.join("  \n"),
    alert: status.model.state === "error" ? "error" : undefined,
  };
}
