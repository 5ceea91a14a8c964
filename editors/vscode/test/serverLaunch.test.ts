import { strict as assert } from "node:assert";
import * as path from "node:path";
import { describe, it } from "node:test";
import {
  cliCommand,
  expandVariables,
  findExecutable,
  notFoundMessage,
  resolveLaunch,
  startFailedMessage,
  stderrSummary,
} from "../src/serverLaunch";
import type { LaunchContext } from "../src/serverLaunch";

const context: LaunchContext = { workspaceFolder: "/work/proj", home: "/home/ann", env: { VENV: "/opt/venv" } };

describe("resolveLaunch", () => {
  it("runs oci-lsp by default", () => {
    const launch = resolveLaunch({ path: "oci-lsp", python: null, args: [] }, context);
    assert.deepEqual(launch, { command: "oci-lsp", args: [], cliPrefix: [], setting: "oci.server.path" });
  });

  it("falls back to oci-lsp when the path is empty", () => {
    assert.equal(resolveLaunch({ path: "  ", python: null, args: [] }, context).command, "oci-lsp");
  });

  it("runs `<python> -m oci_lsp` when oci.server.python is set, with the extra args after", () => {
    const launch = resolveLaunch({ path: "oci-lsp", python: "/usr/bin/python3", args: ["-v"] }, context);
    assert.deepEqual(launch, {
      command: "/usr/bin/python3",
      args: ["-m", "oci_lsp", "-v"],
      cliPrefix: ["-m", "oci_lsp"],
      setting: "oci.server.python",
    });
  });

  it("ignores a blank oci.server.python", () => {
    assert.equal(resolveLaunch({ path: "oci-lsp", python: " ", args: [] }, context).setting, "oci.server.path");
  });

  it("expands ${workspaceFolder} and resolves relative paths against the folder", () => {
    const python = resolveLaunch({ path: "", python: "${workspaceFolder}/.venv/bin/python", args: [] }, context);
    assert.equal(python.command, "/work/proj/.venv/bin/python");
    const relative = resolveLaunch({ path: ".venv/bin/oci-lsp", python: null, args: [] }, context);
    assert.equal(relative.command, path.join("/work/proj", ".venv/bin/oci-lsp"));
  });

  it("keeps a bare name for the PATH lookup", () => {
    assert.equal(resolveLaunch({ path: "python3", python: "python3", args: [] }, context).command, "python3");
  });
});

describe("expandVariables", () => {
  it("expands ~, ${userHome} and ${env:NAME}", () => {
    assert.equal(expandVariables("~/bin/oci-lsp", context), "/home/ann/bin/oci-lsp");
    assert.equal(expandVariables("${userHome}/x", context), "/home/ann/x");
    assert.equal(expandVariables("${env:VENV}/bin/python", context), "/opt/venv/bin/python");
    assert.equal(expandVariables("${env:MISSING}/python", context), "/python");
  });

  it("leaves ${workspaceFolder} when there is no folder, so the error shows it", () => {
    assert.equal(expandVariables("${workspaceFolder}/py", { ...context, workspaceFolder: undefined }), "${workspaceFolder}/py");
  });
});

describe("cliCommand", () => {
  it("puts the subcommand after -m oci_lsp and leaves out the serving args", () => {
    const launch = resolveLaunch({ path: "", python: "py", args: ["--log-file", "x"] }, context);
    assert.deepEqual(cliCommand(launch, ["model", "list", "--json"]), {
      command: "py",
      args: ["-m", "oci_lsp", "model", "list", "--json"],
    });
  });
});

describe("findExecutable", () => {
  const files = new Set(["/usr/bin/oci-lsp", "/opt/bin/python3", "C:\\Tools\\oci-lsp.EXE"]);
  const exists = (p: string) => files.has(p);

  it("finds a bare name on PATH, in PATH order", () => {
    assert.equal(findExecutable("oci-lsp", { PATH: "/bin:/usr/bin" }, "linux", exists), "/usr/bin/oci-lsp");
    assert.equal(findExecutable("python3", { PATH: "/usr/bin:/opt/bin" }, "linux", exists), "/opt/bin/python3");
  });

  it("is undefined when it is nowhere", () => {
    assert.equal(findExecutable("oci-lsp", { PATH: "/bin" }, "linux", exists), undefined);
    assert.equal(findExecutable("oci-lsp", {}, "linux", exists), undefined);
  });

  it("checks a path directly, without PATH", () => {
    assert.equal(findExecutable("/usr/bin/oci-lsp", { PATH: "" }, "linux", exists), "/usr/bin/oci-lsp");
    assert.equal(findExecutable("/nope/oci-lsp", { PATH: "/usr/bin" }, "linux", exists), undefined);
  });

  it("tries PATHEXT on Windows", () => {
    const found = findExecutable("oci-lsp", { Path: "C:\\Tools", PATHEXT: ".COM;.EXE" }, "win32", (p) =>
      files.has(p.replace(/\//g, "\\")),
    );
    assert.ok(found?.endsWith("oci-lsp.EXE"));
  });
});

describe("messages", () => {
  it("says how to install or which setting to set when oci-lsp is missing", () => {
    const message = notFoundMessage(resolveLaunch({ path: "oci-lsp", python: null, args: [] }, context));
    assert.equal(message, "oci-lsp not found: install it with `pip install oci-lsp` or set oci.server.path / oci.server.python");
  });

  it("names oci.server.path for a custom path", () => {
    const message = notFoundMessage(resolveLaunch({ path: "/x/oci-lsp", python: null, args: [] }, context));
    assert.match(message, /`\/x\/oci-lsp` \(oci\.server\.path\) was not found/);
  });

  it("names oci.server.python for a missing interpreter", () => {
    const message = notFoundMessage(resolveLaunch({ path: "", python: "/x/python", args: [] }, context));
    assert.match(message, /\/x\/python` \(oci\.server\.python\) was not found/);
  });

  it("says what failed at start and which setting to check", () => {
    const launch = resolveLaunch({ path: "", python: "/x/python", args: [] }, context);
    const message = startFailedMessage(launch, "/x/python: No module named oci_lsp");
    assert.match(message, /`\/x\/python -m oci_lsp`/);
    assert.match(message, /No module named oci_lsp/);
    assert.match(message, /oci\.server\.python/);
  });
});

describe("stderrSummary", () => {
  it("is the last non-empty line, the exception of a traceback", () => {
    const stderr = "Traceback (most recent call last):\n  File \"x\", line 1\nImportError: no ctranslate2\n\n";
    assert.equal(stderrSummary(stderr), "ImportError: no ctranslate2");
  });

  it("is undefined for an empty stderr", () => {
    assert.equal(stderrSummary(" \n\r\n"), undefined);
  });

  it("shortens a very long line", () => {
    const summary = stderrSummary("x".repeat(1000));
    assert.equal(summary?.length, 300);
  });
});
