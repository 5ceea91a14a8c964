import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { CrashBudget } from "../src/crashBudget";

describe("CrashBudget", () => {
  it("restarts four times, then gives up on the fifth crash within three minutes", () => {
    const budget = new CrashBudget();
    const results = [0, 1000, 2000, 3000, 4000].map((t) => budget.crashed(t));
    assert.deepEqual(results, [true, true, true, true, false]);
  });

  it("forgets crashes older than the window", () => {
    const budget = new CrashBudget(1, 1000);
    assert.equal(budget.crashed(0), true);
    assert.equal(budget.crashed(500), false);
    assert.equal(budget.crashed(5000), true);
  });

  it("starts over after reset", () => {
    const budget = new CrashBudget(1, 1000);
    budget.crashed(0);
    budget.reset();
    assert.equal(budget.crashed(1), true);
  });
});
