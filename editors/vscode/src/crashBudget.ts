// When to stop restarting a server that keeps crashing: the same rule as
// vscode-languageclient's default (more than `maxRestarts` crashes within the window gives
// up), kept here so our own handler can word the message and add buttons.

export class CrashBudget {
  private crashes: number[] = [];

  constructor(
    private readonly maxRestarts = 4,
    private readonly windowMs = 3 * 60 * 1000,
  ) {}

  /** Record a crash at `now` (ms); `true` when it is still worth restarting. */
  crashed(now: number): boolean {
    this.crashes = this.crashes.filter((t) => now - t <= this.windowMs);
    this.crashes.push(now);
    return this.crashes.length <= this.maxRestarts;
  }

  reset(): void {
    this.crashes = [];
  }
}
