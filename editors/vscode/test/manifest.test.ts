// package.json against the code and CONTRACT.md: the settings the server reads, their
// defaults, the command ids, and what makes the extension installable in code-server 4.100.

import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { FIX_WITH_INSTRUCTION, PALETTE, SERVER } from "../src/commandIds";
import { CLIENT_KEYS, SERVER_KEYS } from "../src/settings";

const root = path.join(__dirname, "..", "..");
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const manifest: any = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
const properties: Record<string, Record<string, unknown>> = manifest.contributes.configuration.properties;

// CONTRACT.md "Settings" (and README's generation.preload).
const CONTRACT_DEFAULTS: Record<string, unknown> = {
  model: "auto",
  backend: "ctranslate2",
  device: "auto",
  computeType: "auto",
  "openai.baseUrl": null,
  "openai.model": null,
  "openai.apiKeyEnv": "OPENAI_API_KEY",
  "tests.onSave": true,
  "tests.command": null,
  "tests.scope": "affected-then-all",
  "tests.timeout": 300,
  "tests.python": null,
  "tests.localization": "ochiai",
  "tests.localizationMutants": true,
  "refine.maxRounds": 3,
  "refine.candidates": 2,
  "refine.temperature": 0.2,
  "refine.verify": true,
  "generation.maxNewTokens": 1024,
  "generation.preload": false,
  "tools.enabled": null,
  "tools.ruff": null,
  "tools.mypy": null,
  "tools.pyright": null,
};

describe("contributes.configuration", () => {
  it("has exactly the server keys and the client-only keys", () => {
    const expected = [...SERVER_KEYS, ...CLIENT_KEYS].map((k) => `oci.${k}`).sort();
    assert.deepEqual(Object.keys(properties).sort(), expected);
  });

  it("uses the contract's defaults", () => {
    assert.deepEqual(Object.keys(CONTRACT_DEFAULTS).sort(), [...SERVER_KEYS].sort());
    for (const [key, value] of Object.entries(CONTRACT_DEFAULTS)) {
      assert.deepEqual(properties[`oci.${key}`].default, value, key);
    }
  });

  it("describes every setting, and every enum value", () => {
    for (const [key, schema] of Object.entries(properties)) {
      assert.ok(typeof schema.markdownDescription === "string" && schema.markdownDescription.length > 10, key);
      assert.ok(schema.type, key);
      if (schema.enum) {
        assert.equal((schema.enumDescriptions as string[]).length, (schema.enum as string[]).length, key);
        assert.ok((schema.enum as unknown[]).includes(schema.default), key);
      }
    }
  });

  it("has the contract's closed sets", () => {
    assert.deepEqual(properties["oci.backend"].enum, ["ctranslate2", "openai"]);
    assert.deepEqual(properties["oci.device"].enum, ["auto", "cuda", "cpu"]);
    assert.deepEqual(properties["oci.tests.scope"].enum, ["affected", "all", "affected-then-all"]);
    assert.deepEqual(properties["oci.tests.localization"].enum, ["ochiai", "dstar", "off"]);
    assert.deepEqual(properties["oci.trace.server"].enum, ["off", "messages", "verbose"]);
    for (const type of ["int8", "int8_float16", "int8_float32", "int8_bfloat16", "int16", "float16", "bfloat16", "float32"]) {
      assert.ok((properties["oci.computeType"].enum as string[]).includes(type), type);
    }
  });

  it("names the catalog ids for oci.model", () => {
    for (const id of ["ds-1.3b", "ds-6.7b", "ds-33b", "cl-7b", "cl-13b", "cl-34b", "cl-70b", "sc2-3b"]) {
      assert.match(properties["oci.model"].markdownDescription as string, new RegExp(id.replace(".", "\\.")));
    }
  });

  it("keeps the executables out of reach of an untrusted workspace", () => {
    for (const key of ["oci.server.path", "oci.server.python", "oci.server.args"]) {
      assert.match(String(properties[key].scope), /^machine/, key);
    }
    const untrusted = manifest.capabilities.untrustedWorkspaces;
    assert.equal(untrusted.supported, "limited");
    assert.ok(untrusted.description);
    for (const key of ["oci.server.path", "oci.server.python", "oci.server.args", "oci.tests.python", "oci.tests.command"]) {
      assert.ok(untrusted.restrictedConfigurations.includes(key), key);
    }
  });
});

describe("contributes.commands", () => {
  const ids: string[] = manifest.contributes.commands.map((c: { command: string }) => c.command);

  it("are the palette commands the extension registers", () => {
    assert.deepEqual([...ids].sort(), Object.values(PALETTE).sort());
  });

  it("never reuse a server command id (vscode-languageclient registers those)", () => {
    const taken = new Set<string>([...Object.values(SERVER), FIX_WITH_INSTRUCTION]);
    for (const id of ids) {
      assert.ok(!taken.has(id), id);
    }
  });

  it("have a category and a title", () => {
    for (const command of manifest.contributes.commands) {
      assert.equal(command.category, "OpenCodeInterpreter");
      assert.ok(command.title);
    }
  });
});

describe("the package", () => {
  it("activates on Python and installs in VS Code 1.100 (code-server 4.100.3)", () => {
    assert.ok(manifest.activationEvents.includes("onLanguage:python"));
    const match = /^\^1\.(\d+)\.\d+$/.exec(manifest.engines.vscode);
    assert.ok(match, manifest.engines.vscode);
    assert.ok(Number(match[1]) <= 100);
    const types = /(\d+)\.(\d+)/.exec(manifest.devDependencies["@types/vscode"]);
    assert.equal(types?.[2], match[1], "@types/vscode must match engines.vscode");
  });

  it("starts from the compiled extension", () => {
    assert.equal(manifest.main, "./out/src/extension.js");
    assert.ok(fs.existsSync(path.join(root, manifest.main)));
  });

  it("leaves sources, tests and the e2e test out of the .vsix", () => {
    const ignore = fs.readFileSync(path.join(root, ".vscodeignore"), "utf8").split(/\r?\n/);
    for (const pattern of ["src/**", "test/**", "out/test/**", "e2e/**"]) {
      assert.ok(ignore.includes(pattern), pattern);
    }
  });

  it("ships a license, a readme and a changelog, so vsce does not ask", () => {
    for (const file of ["LICENSE", "README.md", "CHANGELOG.md"]) {
      assert.ok(fs.existsSync(path.join(root, file)), file);
    }
  });
});
