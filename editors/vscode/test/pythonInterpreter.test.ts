// The Python extension's API as ms-python.python exports it (typed by @vscode/python-extension),
// faked: code-server in the e2e has no marketplace, so the real extension is not there. The
// fake behaves as the API documents: the active path may name an environment's folder or an
// interpreter, resolveEnvironment gives the executable (undefined for an invalid environment),
// and onDidChangeActiveEnvironmentPath fires with the new path and the resource.

import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import {
  EDITOR_INTERPRETER,
  environmentsOf,
  followSelection,
  selectedInterpreter,
  within,
  withEditorInterpreter,
} from "../src/pythonInterpreter";
import type { PythonEnvironments } from "../src/pythonInterpreter";

type Listener = (event: { id: string; path: string; resource: unknown }) => unknown;

/** A fake of `extension.exports`: one active environment per resource key. */
class FakePythonExtension {
  readonly active = new Map<string, string>();
  /** environment path → executable path (absent: an invalid environment). */
  readonly executables = new Map<string, string>();
  readonly listeners: Listener[] = [];
  readonly asked: unknown[] = [];
  failResolve = false;

  readonly exports = {
    ready: Promise.resolve(),
    debug: {},
    environments: {
      getActiveEnvironmentPath: (resource?: unknown) => {
        this.asked.push(resource);
        const key = resource === undefined ? "" : String((resource as { key: string }).key);
        const path = this.active.get(key) ?? "python";
        return { id: path, path };
      },
      resolveEnvironment: async (environment: { path: string } | string) => {
        if (this.failResolve) {
          throw new Error("the extension's locator crashed");
        }
        const path = typeof environment === "string" ? environment : environment.path;
        const executable = this.executables.get(path);
        if (executable === undefined) {
          return undefined;
        }
        return { id: path, path, executable: { uri: { fsPath: executable }, bitness: "64-bit", sysPrefix: path } };
      },
      onDidChangeActiveEnvironmentPath: (listener: Listener) => {
        this.listeners.push(listener);
        return { dispose: () => this.listeners.splice(this.listeners.indexOf(listener), 1) };
      },
      known: [],
    },
  };

  select(key: string, path: string): void {
    this.active.set(key, path);
    for (const listener of [...this.listeners]) {
      listener({ id: path, path, resource: { key } });
    }
  }
}

/** A resource as VS Code would pass it (a folder's Uri); only identity matters to the fake. */
function folder(key: string): Parameters<PythonEnvironments["getActiveEnvironmentPath"]>[0] {
  return { key } as unknown as Parameters<PythonEnvironments["getActiveEnvironmentPath"]>[0];
}

describe("environmentsOf", () => {
  it("takes the environments API from the extension's exports", () => {
    const fake = new FakePythonExtension();
    assert.equal(environmentsOf(fake.exports), fake.exports.environments);
  });

  it("is undefined for exports without it (an old or broken Python extension)", () => {
    assert.equal(environmentsOf(undefined), undefined);
    assert.equal(environmentsOf({}), undefined);
    assert.equal(environmentsOf({ environments: { getActiveEnvironmentPath: () => "x" } }), undefined);
  });
});

describe("selectedInterpreter", () => {
  it("is the resolved executable of the folder's active environment", async () => {
    const fake = new FakePythonExtension();
    // A conda environment is named by its folder; the executable comes from resolving it.
    fake.active.set("a", "/envs/a");
    fake.executables.set("/envs/a", "/envs/a/bin/python");
    fake.active.set("b", "/proj/b/.venv/bin/python");
    fake.executables.set("/proj/b/.venv/bin/python", "/proj/b/.venv/bin/python");
    const api = environmentsOf(fake.exports);
    assert.equal(await selectedInterpreter(api, folder("a")), "/envs/a/bin/python");
    assert.equal(await selectedInterpreter(api, folder("b")), "/proj/b/.venv/bin/python");
    assert.deepEqual(fake.asked, [{ key: "a" }, { key: "b" }]); // asked per folder
  });

  it("is undefined without the extension, for an invalid environment, or when the API fails", async () => {
    assert.equal(await selectedInterpreter(undefined, folder("a")), undefined);
    const fake = new FakePythonExtension();
    fake.active.set("a", "/gone/bin/python"); // resolveEnvironment: undefined
    const api = environmentsOf(fake.exports);
    assert.equal(await selectedInterpreter(api, folder("a")), undefined);
    fake.executables.set("/gone/bin/python", "/gone/bin/python");
    fake.failResolve = true;
    assert.equal(await selectedInterpreter(api, folder("a")), undefined);
  });
});

describe("following the selection", () => {
  it("calls back on every change, and stops when disposed", async () => {
    const fake = new FakePythonExtension();
    const api = environmentsOf(fake.exports);
    assert.ok(api);
    let changes = 0;
    const following = followSelection(api, () => changes++);
    fake.executables.set("/envs/new/bin/python", "/envs/new/bin/python");
    fake.select("a", "/envs/new/bin/python");
    assert.equal(changes, 1);
    // What the server then asks for gets the new one.
    assert.equal(await selectedInterpreter(api, folder("a")), "/envs/new/bin/python");
    following.dispose();
    fake.select("a", "/envs/other/bin/python");
    assert.equal(changes, 1);
  });
});

describe("withEditorInterpreter", () => {
  it("adds the interpreter beside the explicit settings, never as a setting", () => {
    const settings = { tests: { scope: "all" } };
    assert.deepEqual(withEditorInterpreter(settings, "/v/bin/python"), {
      tests: { scope: "all" },
      [EDITOR_INTERPRETER]: "/v/bin/python",
    });
    assert.equal(EDITOR_INTERPRETER, "editorInterpreter"); // the server's key
    assert.deepEqual(withEditorInterpreter(settings, undefined), settings);
    assert.deepEqual(settings, { tests: { scope: "all" } }); // not changed in place
  });
});

describe("within", () => {
  it("gives the value, or the fallback when it does not come in time", async () => {
    assert.equal(await within(Promise.resolve("api"), 1000, undefined), "api");
    const never = new Promise<string>(() => undefined);
    assert.equal(await within(never, 5, "fallback"), "fallback");
  });
});
