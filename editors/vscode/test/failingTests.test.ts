import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import {
  failingTestOf,
  failingTestsAt,
  parseDiagnosticsArgument,
  parseFixArgument,
  shortFunctionName,
  shortTestName,
} from "../src/failingTests";
import type { DiagnosticLike } from "../src/failingTests";

function diagnostic(
  line: number,
  from: number,
  to: number,
  test: string,
  extra: { kind?: string; function?: string | null; source?: string } = {},
): DiagnosticLike {
  const data: Record<string, unknown> = { test, kind: extra.kind ?? "test-failed" };
  if (extra.function !== null) {
    data.function = extra.function ?? "calc.add";
  }
  return {
    range: { start: { line, character: from }, end: { line, character: to } },
    message: `${test}: assert add(1, 2) == 3`,
    source: extra.source ?? "oci-lsp",
    data,
  };
}

describe("failingTestOf", () => {
  it("reads test, function and kind from the diagnostic's data", () => {
    assert.deepEqual(failingTestOf(diagnostic(3, 4, 7, "tests/test_calc.py::test_add")), {
      test: "tests/test_calc.py::test_add",
      function: "calc.add",
      kind: "test-failed",
      message: "tests/test_calc.py::test_add: assert add(1, 2) == 3",
    });
  });

  it("ignores other sources, collection errors and failures without a function", () => {
    assert.equal(failingTestOf(diagnostic(0, 0, 1, "t", { source: "Pylance" })), undefined);
    assert.equal(failingTestOf(diagnostic(0, 0, 1, "t", { kind: "collection-error" })), undefined);
    assert.equal(failingTestOf(diagnostic(0, 0, 1, "t", { function: null })), undefined);
    assert.equal(failingTestOf({ ...diagnostic(0, 0, 1, "t"), data: undefined }), undefined);
  });

  it("accepts errors and timeouts", () => {
    assert.ok(failingTestOf(diagnostic(0, 0, 1, "t", { kind: "test-error" })));
    assert.ok(failingTestOf(diagnostic(0, 0, 1, "t", { kind: "test-timeout" })));
  });
});

describe("failingTestsAt", () => {
  const diagnostics = [
    diagnostic(3, 4, 7, "tests/test_calc.py::test_add"),
    diagnostic(3, 4, 7, "tests/test_calc.py::test_add_negative"),
    diagnostic(3, 4, 7, "tests/test_calc.py::test_add"), // the same test twice: one entry
    diagnostic(10, 4, 7, "tests/test_calc.py::test_sub", { function: "calc.sub" }),
    diagnostic(12, 0, 3, "tests/test_calc.py::test_import", { kind: "collection-error" }),
    diagnostic(3, 4, 7, "other", { source: "mypy" }),
  ];

  it("takes the failures under the cursor, each test once", () => {
    const found = failingTestsAt(diagnostics, { line: 3, character: 5 });
    assert.equal(found.where, "cursor");
    assert.deepEqual(
      found.tests.map((t) => t.test),
      ["tests/test_calc.py::test_add", "tests/test_calc.py::test_add_negative"],
    );
  });

  it("counts the range's ends as inside", () => {
    assert.equal(failingTestsAt(diagnostics, { line: 10, character: 4 }).where, "cursor");
    assert.equal(failingTestsAt(diagnostics, { line: 10, character: 7 }).where, "cursor");
  });

  it("falls back to the failures on the cursor's line", () => {
    const found = failingTestsAt(diagnostics, { line: 10, character: 30 });
    assert.equal(found.where, "line");
    assert.deepEqual(found.tests.map((t) => t.function), ["calc.sub"]);
  });

  it("offers the file's failures when none is near the cursor", () => {
    const found = failingTestsAt(diagnostics, { line: 50, character: 0 });
    assert.equal(found.where, "file");
    assert.equal(found.tests.length, 3);
  });

  it("finds nothing in a file without fixable failures", () => {
    assert.deepEqual(failingTestsAt([diagnostics[4], diagnostics[5]], { line: 3, character: 5 }), { tests: [], where: "none" });
  });

  it("handles multi-line ranges", () => {
    const wide: DiagnosticLike = {
      ...diagnostic(0, 0, 0, "t::x"),
      range: { start: { line: 2, character: 8 }, end: { line: 5, character: 1 } },
    };
    assert.equal(failingTestsAt([wide], { line: 4, character: 40 }).where, "cursor");
    assert.equal(failingTestsAt([wide], { line: 2, character: 2 }).where, "line");
    assert.equal(failingTestsAt([wide], { line: 5, character: 2 }).where, "line");
  });
});

describe("names", () => {
  it("shortens test ids and dotted functions", () => {
    assert.equal(shortTestName("tests/test_calc.py::TestAdd::test_one"), "TestAdd::test_one");
    assert.equal(shortTestName("test_x"), "test_x");
    assert.equal(shortFunctionName("calc.Calc.add"), "add");
    assert.equal(shortFunctionName("add"), "add");
  });
});

describe("parseFixArgument", () => {
  it("reads {uri, test, function?}", () => {
    assert.deepEqual(parseFixArgument({ uri: "file:///a.py", test: "t" }), { uri: "file:///a.py", test: "t" });
    assert.deepEqual(parseFixArgument({ uri: "file:///a.py", test: "t", function: "m.f" }), {
      uri: "file:///a.py",
      test: "t",
      function: "m.f",
    });
  });

  it("rejects arguments without uri or test", () => {
    assert.equal(parseFixArgument(undefined), undefined);
    assert.equal(parseFixArgument({ uri: "file:///a.py" }), undefined);
    assert.equal(parseFixArgument({ test: "t" }), undefined);
  });
});

describe("parseDiagnosticsArgument", () => {
  const mypy = {
    range: { start: { line: 2, character: 11 }, end: { line: 2, character: 12 } },
    message: 'Incompatible return value type (got "int", expected "str")',
    source: "mypy",
    code: "return-value",
    severity: 1,
  };

  it("reads {uri, function, diagnostics} and keeps each diagnostic whole", () => {
    const value = { uri: "file:///ws/labels.py", function: "labels.label", diagnostics: [mypy] };
    const parsed = parseDiagnosticsArgument(value);
    assert.deepEqual(parsed, value);
    // Sent back as the server sent it: range, source, code and severity too.
    assert.deepEqual(parsed?.diagnostics[0], mypy);
  });

  it("is not a failing test's argument, nor is that one of its", () => {
    const test = { uri: "file:///ws/calc.py", test: "tests/test_calc.py::test_add", function: "calc.add" };
    assert.equal(parseDiagnosticsArgument(test), undefined);
    const findings = { uri: "file:///ws/labels.py", function: "labels.label", diagnostics: [mypy] };
    assert.equal(parseFixArgument(findings), undefined);
  });

  it("rejects arguments without uri, function or diagnostics with messages", () => {
    const uri = "file:///ws/labels.py";
    assert.equal(parseDiagnosticsArgument(undefined), undefined);
    assert.equal(parseDiagnosticsArgument("labels.label"), undefined);
    assert.equal(parseDiagnosticsArgument({ function: "labels.label", diagnostics: [mypy] }), undefined);
    assert.equal(parseDiagnosticsArgument({ uri, diagnostics: [mypy] }), undefined);
    assert.equal(parseDiagnosticsArgument({ uri, function: "labels.label" }), undefined);
    assert.equal(parseDiagnosticsArgument({ uri, function: "labels.label", diagnostics: [] }), undefined);
    assert.equal(parseDiagnosticsArgument({ uri, function: "labels.label", diagnostics: mypy }), undefined);
    assert.equal(parseDiagnosticsArgument({ uri, function: "labels.label", diagnostics: [mypy, null] }), undefined);
    const noMessage = { ...mypy, message: undefined };
    assert.equal(parseDiagnosticsArgument({ uri, function: "labels.label", diagnostics: [noMessage] }), undefined);
  });
});
