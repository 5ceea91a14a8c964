import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { escapeMarkdown, needsPolling, parseStatus, statusView } from "../src/statusView";
import type { OciStatus } from "../src/statusView";

function status(overrides: { model?: Partial<OciStatus["model"]>; tests?: Partial<OciStatus["tests"]>; backend?: string }): OciStatus {
  return {
    version: "0.1.0",
    backend: overrides.backend ?? "ctranslate2",
    model: { id: "ds-1.3b", state: "not-loaded", device: null, computeType: null, error: null, ...overrides.model },
    tests: { running: false, failed: 0, passed: 0, python: null, ...overrides.tests },
  };
}

describe("parseStatus", () => {
  it("reads the server's answer", () => {
    const parsed = parseStatus({
      version: "0.1.0",
      backend: "ctranslate2",
      model: { id: "ds-6.7b", state: "ready", device: "cuda", computeType: "int8_float16", error: null },
      tests: {
        running: true,
        failed: 2,
        passed: 10,
        python: { path: "/p/.venv/bin/python", source: "venv", reason: "`.venv` in the folder" },
      },
    });
    assert.deepEqual(parsed, {
      version: "0.1.0",
      backend: "ctranslate2",
      model: { id: "ds-6.7b", state: "ready", device: "cuda", computeType: "int8_float16", error: null },
      tests: {
        running: true,
        failed: 2,
        passed: 10,
        python: { path: "/p/.venv/bin/python", source: "venv", reason: "`.venv` in the folder" },
      },
    });
  });

  it("fills what an older server leaves out, and distrusts odd values", () => {
    const parsed = parseStatus({ model: { state: "exploded" }, tests: { failed: -1, passed: "3" } });
    assert.equal(parsed?.model.state, "not-loaded");
    assert.equal(parsed?.model.id, null);
    assert.deepEqual(parsed?.tests, { running: false, failed: 0, passed: 0, python: null });
    assert.equal(parseStatus({ tests: { python: { source: "venv" } } })?.tests.python, null);
  });

  it("is undefined for no answer", () => {
    assert.equal(parseStatus(undefined), undefined);
    assert.equal(parseStatus(null), undefined);
    assert.equal(parseStatus("ready"), undefined);
  });
});

describe("needsPolling", () => {
  it("polls only while tests run or the model loads", () => {
    assert.equal(needsPolling(undefined), false);
    assert.equal(needsPolling(status({})), false);
    assert.equal(needsPolling(status({ tests: { running: true } })), true);
    assert.equal(needsPolling(status({ model: { state: "loading" } })), true);
    assert.equal(needsPolling(status({ model: { state: "ready", device: "cpu" } })), false);
  });
});

describe("statusView", () => {
  it("says restricted in an untrusted workspace", () => {
    const view = statusView({ kind: "restricted" });
    assert.equal(view.text, "$(shield) oci-lsp: restricted");
    assert.match(view.tooltip, /Restricted Mode/);
  });

  it("shows a start failure in red with its reason", () => {
    const view = statusView({ kind: "failed", reason: "oci-lsp not found" });
    assert.equal(view.text, "$(error) oci-lsp: not running");
    assert.equal(view.alert, "error");
    assert.match(view.tooltip, /oci\\-lsp not found/);
  });

  it("shows starting and stopped", () => {
    assert.match(statusView({ kind: "starting" }).text, /starting/);
    assert.match(statusView({ kind: "stopped" }).text, /stopped/);
  });

  it("says not loaded before the first use", () => {
    const view = statusView({ kind: "running", status: status({}) });
    assert.equal(view.text, "$(circle-large-outline) ds-1.3b: not loaded");
    assert.match(view.tooltip, /not loaded/);
    assert.equal(view.alert, undefined);
  });

  it("spins while loading", () => {
    assert.equal(statusView({ kind: "running", status: status({ model: { state: "loading" } }) }).text, "$(loading~spin) ds-1.3b: loading");
  });

  it("says GPU or CPU when ready, and the details in the tooltip", () => {
    const gpu = statusView({
      kind: "running",
      status: status({ model: { id: "ds-6.7b", state: "ready", device: "cuda", computeType: "int8_float16" } }),
    });
    assert.equal(gpu.text, "$(sparkle) ds-6.7b on GPU");
    assert.match(gpu.tooltip, /ready \(cuda, int8_float16\)/);
    assert.match(gpu.tooltip, /Backend: ctranslate2/);
    const cpu = statusView({ kind: "running", status: status({ model: { state: "ready", device: "cpu", computeType: "int8" } }) });
    assert.equal(cpu.text, "$(sparkle) ds-1.3b on CPU");
  });

  it("says ready without a device for a remote backend", () => {
    const view = statusView({ kind: "running", status: status({ backend: "openai", model: { id: "oci-6.7b", state: "ready", device: "remote" } }) });
    assert.equal(view.text, "$(sparkle) oci-6.7b: ready");
    assert.match(view.tooltip, /Backend: openai/);
    assert.match(view.tooltip, /ready \(remote\)/);
  });

  it("shows a model error in red with the server's line in the tooltip", () => {
    const view = statusView({
      kind: "running",
      status: status({ model: { state: "error", error: "no model installed: run oci-lsp model pull ds-1.3b" } }),
    });
    assert.equal(view.text, "$(error) ds-1.3b: error");
    assert.equal(view.alert, "error");
    assert.match(view.tooltip, /Error: no model installed: run oci\\-lsp model pull ds\\-1\\.3b/);
  });

  it("adds the test counts, and a spinner while they run", () => {
    const counts = statusView({ kind: "running", status: status({ tests: { failed: 2, passed: 10 } }) });
    assert.equal(counts.text, "$(circle-large-outline) ds-1.3b: not loaded  $(check) 10 $(x) 2");
    assert.match(counts.tooltip, /Tests: 10 passed, 2 failed/);
    const green = statusView({ kind: "running", status: status({ tests: { passed: 10 } }) });
    assert.match(green.text, /\$\(check\) 10$/);
    const running = statusView({ kind: "running", status: status({ tests: { running: true, failed: 1 } }) });
    assert.match(running.text, /\$\(sync~spin\) testing$/);
    assert.match(running.tooltip, /running/);
  });

  it("names the interpreter that runs the tests, and why, in the tooltip", () => {
    const python = { path: "/home/u/my_proj/.venv/bin/python", source: "venv", reason: "`.venv` in the folder" };
    const view = statusView({ kind: "running", status: status({ tests: { python } }) });
    assert.ok(view.tooltip.includes("Tests run with: `/home/u/my_proj/.venv/bin/python` (`.venv` in the folder)"));
    const above = { path: "/m/.venv/bin/python", source: "venv-above", reason: "`.venv` in /home/u/my_*mono*" };
    const monorepo = statusView({ kind: "running", status: status({ tests: { python: above } }) });
    assert.ok(monorepo.tooltip.includes("(`.venv` in /home/u/my\\_\\*mono\\*)"), monorepo.tooltip);
    // The server's "selected in the editor" is, in VS Code, the Python extension's choice.
    const selected = { path: "/envs/a/bin/python", source: "editor", reason: "selected in the editor" };
    const fromExtension = statusView({ kind: "running", status: status({ tests: { python: selected } }) });
    assert.match(fromExtension.tooltip, /\(selected in the Python extension\)/);
    assert.doesNotMatch(statusView({ kind: "running", status: status({}) }).tooltip, /Tests run with/);
  });

  it("shows no counts before any test ran", () => {
    assert.doesNotMatch(statusView({ kind: "running", status: status({}) }).text, /check/);
  });

  it("has a plain text while the first status is awaited", () => {
    assert.equal(statusView({ kind: "running", status: undefined }).text, "$(sparkle) oci-lsp");
  });
});

describe("escapeMarkdown", () => {
  it("keeps Markdown characters literal", () => {
    assert.equal(escapeMarkdown("a_b *c* [d](e)"), "a\\_b \\*c\\* \\[d\\]\\(e\\)");
  });
});
