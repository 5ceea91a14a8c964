// The server process. We spawn it ourselves rather than give vscode-languageclient a command:
// that way its stderr's last line can explain a start that failed. The price: the client
// does not kill a process it did not spawn, so `end()` does.

import * as childProcess from "node:child_process";

const EXIT_GRACE_MS = 3000;
const STDERR_KEPT = 4000;

export class ServerProcess {
  readonly child: childProcess.ChildProcess;
  /** The last few KB of stderr (the client copies all of it to the output channel). */
  stderrTail = "";

  constructor(executable: string, args: string[], cwd: string | undefined, log: (line: string) => void) {
    this.child = childProcess.spawn(executable, args, {
      cwd,
      env: process.env,
      stdio: "pipe",
      // .cmd/.bat wrappers need a shell on Windows (pip's console scripts are .exe).
      shell: process.platform === "win32" && /\.(cmd|bat)$/i.test(executable),
    });
    this.child.stderr?.on("data", (data: Buffer | string) => {
      this.stderrTail = (this.stderrTail + data.toString()).slice(-STDERR_KEPT);
    });
    this.child.on("error", (error) => {
      this.stderrTail += `\n${error.message}`;
      log(`The server process failed: ${error.message}`);
    });
    this.child.on("exit", (code, signal) => {
      log(`The server process exited (${signal ?? `code ${code}`})`);
    });
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** After shutdown/exit the server leaves by itself; one that does not is killed. */
  end(graceMs = EXIT_GRACE_MS): Promise<void> {
    if (this.exited) {
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.child.kill();
        resolve();
      }, graceMs);
      this.child.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
