import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { FALLBACK_MODELS, modelPickItems, parseModelList } from "../src/modelCatalog";

// The shape `oci-lsp model list --json` prints (oci_lsp/model_cli.py `_listing`).
const OUTPUT = JSON.stringify([
  {
    id: "ds-1.3b",
    params: "1.4B",
    memoryGiB: { int8: 1.5, float16: 3.0 },
    repo: "m-a-p/OpenCodeInterpreter-DS-1.3B",
    installed: true,
    directory: "/home/ann/.cache/oci-lsp/models/ds-1.3b",
    quantization: "int8",
    size: 1500000000,
    verified: true,
  },
  { id: "ds-6.7b", params: "6.7B", memoryGiB: { int8: 7.5, float16: 15.1 }, repo: "m-a-p/OpenCodeInterpreter-DS-6.7B", installed: false },
  { id: "my-model", installed: true, directory: "/x/my-model", size: 10, inCatalog: false },
]);

describe("parseModelList", () => {
  it("reads ids, sizes, repos and what is installed", () => {
    const models = parseModelList(OUTPUT);
    assert.deepEqual(models[0], {
      id: "ds-1.3b",
      params: "1.4B",
      repo: "m-a-p/OpenCodeInterpreter-DS-1.3B",
      installed: true,
      memoryGiB: { int8: 1.5, float16: 3.0 },
    });
    assert.equal(models[1].installed, false);
    assert.equal(models[2].inCatalog, false);
  });

  it("skips entries without an id", () => {
    const models = parseModelList(JSON.stringify([{ params: "1B" }, 3, null, { id: "cl-7b" }]));
    assert.deepEqual(models, [{ id: "cl-7b", installed: false }]);
  });

  it("throws on text that is not a list of models, so the caller falls back", () => {
    assert.throws(() => parseModelList("models directory: /x\nid params"));
    assert.throws(() => parseModelList("{}"));
    assert.throws(() => parseModelList("[]"));
  });
});

describe("modelPickItems", () => {
  it("marks installed and configured models, and leaves out models with no repo to pull", () => {
    const items = modelPickItems(parseModelList(OUTPUT), "ds-6.7b");
    assert.deepEqual(
      items.map((i) => i.id),
      ["ds-1.3b", "ds-6.7b"],
    );
    assert.equal(items[0].label, "$(check) ds-1.3b");
    assert.equal(items[0].description, "1.4B parameters · 1.5 GiB in int8 · installed");
    assert.equal(items[0].detail, "m-a-p/OpenCodeInterpreter-DS-1.3B");
    assert.equal(items[1].label, "ds-6.7b");
    assert.match(items[1].description, /the configured model/);
  });

  it("offers the fixed catalog ids as the fallback", () => {
    assert.deepEqual(
      modelPickItems(FALLBACK_MODELS, undefined).map((i) => i.id),
      ["ds-1.3b", "ds-6.7b", "ds-33b", "cl-7b", "cl-13b", "cl-34b", "cl-70b", "sc2-3b"],
    );
  });
});
