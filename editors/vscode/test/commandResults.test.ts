import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { editResultNotice, parseEditResult, runTestsNotice } from "../src/commandResults";

describe("editResultNotice", () => {
  it("adds nothing when nothing was applied: the server has said why, or the user cancelled", () => {
    for (const message of ["no test passed after 3 rounds", "no model", "cancelled", ""]) {
      assert.deepEqual(editResultNotice({ applied: false, verified: false, message }), { kind: "none" });
    }
  });

  it("puts a verified edit in the status bar only", () => {
    assert.equal(editResultNotice({ applied: true, verified: true, message: "passed in round 1" }).kind, "status");
  });

  it("tells when applied code was not verified", () => {
    assert.deepEqual(editResultNotice({ applied: true, verified: false, message: "applied" }), {
      kind: "info",
      text: "oci-lsp: applied without passing the tests",
    });
    assert.deepEqual(editResultNotice({ applied: true, verified: false, message: "1 of 2 tests fail" }), {
      kind: "info",
      text: "oci-lsp: applied without passing the tests: 1 of 2 tests fail",
    });
  });

  it("says what verified a fix of other tools' diagnostics, not that tests passed", () => {
    const message = "mypy: the findings are gone; no tests exercise it";
    assert.deepEqual(editResultNotice({ applied: true, verified: true, message }, true), {
      kind: "status",
      text: `$(check) oci-lsp: applied, verified: ${message}`,
    });
    assert.deepEqual(editResultNotice({ applied: true, verified: false, message: "applied" }, true), {
      kind: "info",
      text: "oci-lsp: applied unverified",
    });
    assert.deepEqual(editResultNotice({ applied: false, verified: false, message: "no model" }, true), { kind: "none" });
  });

  it("ignores answers that are not edit results", () => {
    assert.deepEqual(editResultNotice(undefined), { kind: "none" });
    assert.deepEqual(editResultNotice({ failed: 1 }), { kind: "none" });
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
