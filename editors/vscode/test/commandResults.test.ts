import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { editResultNotice, parseEditResult, runTestsNotice } from "../src/commandResults";

describe("editResultNotice", () => {
  it("warns when nothing was applied and the server did not say why", () => {
    assert.deepEqual(editResultNotice({ applied: false, verified: false, message: "no test passed after 3 rounds" }, []), {
      kind: "warning",
      text: "oci-lsp: nothing applied: no test passed after 3 rounds",
    });
  });

  it("does not repeat a reason the server has just shown", () => {
    const said = ["oci-lsp: `add`: no test passed after 3 rounds. The best attempt is offered as ..."];
    assert.deepEqual(editResultNotice({ applied: false, verified: false, message: "no test passed after 3 rounds" }, said), {
      kind: "none",
    });
    assert.deepEqual(
      editResultNotice({ applied: false, verified: false, message: "no model" }, ["oci-lsp: no model to generate with: pull one"]),
      { kind: "none" },
    );
  });

  it("stays quiet when the user cancelled", () => {
    assert.deepEqual(editResultNotice({ applied: false, verified: false, message: "cancelled" }, []), { kind: "none" });
  });

  it("warns even without a message", () => {
    assert.deepEqual(editResultNotice({ applied: false, verified: false }, []), { kind: "warning", text: "oci-lsp: nothing applied" });
  });

  it("puts a verified edit in the status bar only", () => {
    assert.equal(editResultNotice({ applied: true, verified: true, message: "passed in round 1" }, []).kind, "status");
  });

  it("tells when applied code was not verified", () => {
    assert.deepEqual(editResultNotice({ applied: true, verified: false, message: "applied" }, []), {
      kind: "info",
      text: "oci-lsp: applied without passing the tests",
    });
    assert.deepEqual(editResultNotice({ applied: true, verified: false, message: "1 of 2 tests fail" }, []), {
      kind: "info",
      text: "oci-lsp: applied without passing the tests: 1 of 2 tests fail",
    });
  });

  it("ignores answers that are not edit results", () => {
    assert.deepEqual(editResultNotice(undefined, []), { kind: "none" });
    assert.deepEqual(editResultNotice({ failed: 1 }, []), { kind: "none" });
    assert.equal(parseEditResult("yes"), undefined);
  });
});

describe("runTestsNotice", () => {
  it("reports the counts of a finished run", () => {
    assert.deepEqual(runTestsNotice({ failed: 2, passed: 10 }), { kind: "status", text: "$(x) oci-lsp: 2 failed, 10 passed" });
    assert.deepEqual(runTestsNotice({ failed: 0, passed: 10 }), { kind: "status", text: "$(check) oci-lsp: 10 passed" });
    assert.deepEqual(runTestsNotice(null), { kind: "none" });
  });
});
