import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import {
  CLIENT_KEYS,
  explicitSettings,
  explicitValue,
  initializationOptions,
  removedKeys,
  SERVER_KEYS,
} from "../src/settings";
import type { InspectedValue } from "../src/settings";

/** An inspect() over a table of key → scopes, defaults included (they must be ignored). */
function inspector(table: Record<string, InspectedValue & { defaultValue?: unknown }>) {
  return (key: string) => table[key] ?? { defaultValue: "some default" };
}

describe("explicitValue", () => {
  it("is undefined when only a default exists", () => {
    assert.equal(explicitValue({ defaultValue: 3 } as InspectedValue), undefined);
    assert.equal(explicitValue(undefined), undefined);
  });

  it("prefers the folder over the workspace over the user", () => {
    assert.equal(explicitValue({ globalValue: "g" }), "g");
    assert.equal(explicitValue({ globalValue: "g", workspaceValue: "w" }), "w");
    assert.equal(explicitValue({ globalValue: "g", workspaceValue: "w", workspaceFolderValue: "f" }), "f");
  });

  it("keeps an explicit null, which undoes a user setting in one workspace", () => {
    assert.equal(explicitValue({ globalValue: ["tox"], workspaceValue: null }), null);
  });

  it("keeps explicit falsy values", () => {
    assert.equal(explicitValue({ globalValue: false }), false);
    assert.equal(explicitValue({ workspaceValue: 0 }), 0);
  });
});

describe("explicitSettings", () => {
  it("sends nothing when nothing is set, so pyproject.toml wins", () => {
    assert.deepEqual(explicitSettings(inspector({})), {});
  });

  it("nests dotted keys into the contract's JSON shape", () => {
    const settings = explicitSettings(
      inspector({
        device: { globalValue: "cpu" },
        "tests.scope": { workspaceValue: "all" },
        "tests.timeout": { workspaceFolderValue: 120, globalValue: 60 },
        "openai.baseUrl": { globalValue: "http://127.0.0.1:8000/v1" },
        "refine.verify": { workspaceValue: false },
      }),
    );
    assert.deepEqual(settings, {
      device: "cpu",
      tests: { scope: "all", timeout: 120 },
      openai: { baseUrl: "http://127.0.0.1:8000/v1" },
      refine: { verify: false },
    });
  });

  it("never sends the client-only keys, even when set", () => {
    const table: Record<string, InspectedValue> = {};
    for (const key of CLIENT_KEYS) {
      table[key] = { globalValue: "x", workspaceValue: "y" };
    }
    assert.deepEqual(explicitSettings(inspector(table)), {});
  });

  it("asks about every server key and nothing else", () => {
    const asked: string[] = [];
    explicitSettings((key) => {
      asked.push(key);
      return undefined;
    });
    assert.deepEqual(asked, [...SERVER_KEYS]);
  });

  it("passes argv lists through unchanged", () => {
    const settings = explicitSettings(inspector({ "tests.command": { globalValue: ["tox", "-e", "py"] } }));
    assert.deepEqual(settings, { tests: { command: ["tox", "-e", "py"] } });
  });
});

describe("initializationOptions", () => {
  it("adds promptForInstruction to the explicit settings", () => {
    assert.deepEqual(initializationOptions({ model: "ds-1.3b" }), { model: "ds-1.3b", promptForInstruction: true });
  });

  it("does not change its argument", () => {
    const settings = { model: "ds-1.3b" };
    initializationOptions(settings);
    assert.deepEqual(settings, { model: "ds-1.3b" });
  });
});

describe("removedKeys", () => {
  it("names the start-time settings the user has removed since", () => {
    const initial = { device: "cpu", tests: { scope: "all", timeout: 60 }, promptForInstruction: true };
    const current = { tests: { timeout: 120 } };
    assert.deepEqual(removedKeys(initial, current), ["device", "tests.scope"]);
  });

  it("is empty when settings were only changed or added", () => {
    assert.deepEqual(removedKeys({ device: "cpu" }, { device: "cuda", model: "ds-6.7b" }), []);
    assert.deepEqual(removedKeys({}, { device: "cpu" }), []);
  });

  it("keeps an explicit null as set", () => {
    assert.deepEqual(removedKeys({ tests: { command: ["tox"] } }, { tests: { command: null } }), []);
  });
});
