// Drives VS Code (code-server's web build) in headless Chromium the way a user would: keyboard
// shortcuts, the Problems view, the Quick Fix menu, an input box. It reads back what the user
// would see and prints one JSON object; tests/test_vscode_e2e.py asserts on it.
//
//   node drive.mjs CONFIG.json
//
// CONFIG: {scenario: "trusted" | "restricted" | "pull", url, shots, chromium, source, sourcePath,
//          fixLine, fixPrefix, instructionLine, instructionPrefix, instruction, stubLine,
//          generateCommand, toolSource, toolSourcePath, toolLine, toolColumn, toolPrefix,
//          toolInstructionLine, toolInstructionPrefix, toolInstruction, pullId,
//          expect* (texts to wait for), timeoutMs}
// Lines are 1-based, as VS Code's "Go to Line" takes them.
import { readFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import puppeteer from "puppeteer-core";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const timeout = config.timeoutMs ?? 120000;
const result = { steps: [], screenshots: [] };
mkdirSync(config.shots, { recursive: true });

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function step(name, detail = {}) {
  result.steps.push({ name, at: Date.now(), ...detail });
  process.stderr.write(`drive: ${name} ${JSON.stringify(detail)}\n`);
}

// Polls `probe` until it returns a truthy value; the error names what was awaited and what
// was last seen, so that a failure in CI reads as a sentence.
async function until(what, probe, ms = timeout) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last && (typeof last !== "object" || last.ok !== false)) return last;
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}; last seen: ${JSON.stringify(last)}`);
}

const browser = await puppeteer.launch({
  executablePath: config.chromium,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    `--user-data-dir=${join(config.shots, ".chromium")}`,
    "--window-size=1400,900",
  ],
});
const page = await browser.newPage();
await page.setViewport({ width: 1400, height: 900 });

async function shot(name) {
  const number = String(result.screenshots.length + 1).padStart(2, "0");
  const path = join(config.shots, `${config.scenario}-${number}-${name}.png`);
  await page.screenshot({ path });
  result.screenshots.push(path);
}

async function chord(...keys) {
  for (const key of keys) await page.keyboard.down(key);
  for (const key of [...keys].reverse()) await page.keyboard.up(key);
}

// The text of the active editor as rendered (the file is short enough to be all on screen).
async function editorText() {
  return page.evaluate(() => {
    const editor = document.querySelector(".editor-group-container.active .monaco-editor .view-lines");
    if (!editor) return null;
    const lines = [...editor.querySelectorAll(".view-line")]
      .map((line) => ({ top: parseFloat(line.style.top), text: line.textContent.replace(/\u00a0/g, " ") }))
      .sort((a, b) => a.top - b.top);
    return lines.map((line) => line.text).join("\n");
  });
}

async function goToLine(line, column) {
  await chord("Control", "g");
  await page.waitForSelector(".quick-input-widget input", { visible: true });
  await page.keyboard.type(`${line}:${column}`);
  await page.keyboard.press("Enter");
  await sleep(300);
}

// Opens the Quick Fix menu (Ctrl+.) at the cursor and returns its rows' titles.
async function quickFixMenu() {
  return until("the Quick Fix menu", async () => {
    await chord("Control", ".");
    const rows = await page
      .waitForSelector(".action-widget .monaco-list-row", { visible: true, timeout: 3000 })
      .then(() => page.$$eval(".action-widget .monaco-list-row", (els) => els.map((e) => e.textContent.trim())))
      .catch(() => []);
    if (rows.some((title) => title.includes("OpenCodeInterpreter"))) return rows;
    await page.keyboard.press("Escape");
    return { ok: false, rows };
  });
}

async function chooseAction(prefix) {
  const rows = await page.$$(".action-widget .monaco-list-row");
  for (const row of rows) {
    const title = (await row.evaluate((e) => e.textContent.trim())) ?? "";
    if (title.startsWith(prefix)) {
      await row.click();
      return title;
    }
  }
  throw new Error(`no action starting with ${JSON.stringify(prefix)}`);
}

// The extension's status bar item: what it shows and what it says to a screen reader.
async function statusBar() {
  return page.evaluate(() => {
    const item = [...document.querySelectorAll(".statusbar-item")].find((e) => (e.id || "").startsWith("oci-lsp."));
    return item ? { text: item.textContent.trim(), label: item.getAttribute("aria-label") || "" } : null;
  });
}

// Waits until the active editor's text contains `needle`, and returns the text.
async function editorTextWith(what, needle) {
  return until(what, async () => {
    const text = await editorText();
    return text?.includes(needle) ? text : { ok: false, text };
  });
}

// The texts of the whole status bar: window.setStatusBarMessage's messages are items too.
async function statusBarTexts() {
  return page.$$eval(".statusbar-item", (els) => els.map((e) => e.textContent.trim()).filter(Boolean));
}

// Waits until the status bar item passes `test`, and returns it.
async function statusBarWhere(what, test) {
  return until(what, async () => {
    const item = await statusBar();
    return item && test(item) ? item : { ok: false, item };
  });
}

// Waits until a row of the open quick input (Quick Open, the palette, a pick list) passes
// `test`, and returns every row's text.
async function quickInputRows(what, test) {
  return until(what, async () => {
    const rows = await page.$$eval(".quick-input-list .monaco-list-row", (els) => els.map((e) => e.innerText));
    return rows.some(test) ? rows : { ok: false, rows };
  });
}

// Waits for a button whose text passes `test` among `selector` and clicks it.
async function clickButton(what, selector, test) {
  await until(what, async () => {
    for (const button of await page.$$(selector)) {
      if (test(await button.evaluate((e) => e.textContent.trim()))) {
        await button.click();
        return true;
      }
    }
    return false;
  });
}

async function openWorkbench() {
  const started = Date.now();
  await page.goto(config.url, { waitUntil: "domcontentloaded" });
  await page.waitForSelector(".monaco-workbench", { timeout });
  step("workbench", { ms: Date.now() - started });
}

// Open a file with Quick Open, as a user would.
async function openFile(name) {
  await until("Quick Open", async () => {
    await chord("Control", "p");
    return page.waitForSelector(".quick-input-widget input", { visible: true, timeout: 2000 }).catch(() => null);
  });
  await page.keyboard.type(name);
  // Enter picks the first row only once the file search has answered.
  await quickInputRows("Quick Open to find " + name, (row) => row.startsWith(name));
  await page.keyboard.press("Enter");
  await editorTextWith("the editor of " + name, "def ");
  step("opened", { file: name });
}

// Runs a command from the Command Palette by its title.
async function palette(title) {
  await chord("Control", "Shift", "p");
  await page.waitForSelector(".quick-input-widget input", { visible: true });
  await page.keyboard.type(title);
  await quickInputRows("the palette to list " + title, (row) => row.includes(title));
  await page.keyboard.press("Enter");
}

async function notifications() {
  return page.$$eval(".notifications-toasts .notification-list-item", (els) => els.map((e) => e.innerText.trim()));
}

// An untrusted workspace: the user answers VS Code's trust dialog with "No"; nothing of
// oci-lsp may run, and the extension says why.
async function restrictedWalk() {
  await openWorkbench();
  await clickButton("the workspace trust dialog", ".monaco-dialog-box .monaco-button", (label) =>
    label.startsWith("No, I don't trust"),
  );
  step("not trusted");
  await openFile(config.source);
  result.restrictedStatusBar = await statusBarWhere("the status bar to say restricted", (item) =>
    item.text.includes("restricted"),
  );
  await palette("OpenCodeInterpreter: Run All Tests");
  result.restrictedNotice = await until("the notice of Restricted Mode", async () => {
    const shown = await notifications();
    const notice = shown.find((text) => text.includes("Restricted Mode"));
    return notice ?? { ok: false, shown };
  });
  await shot("restricted");
}

// Pull a model from the palette: the catalog pick list, the pull's progress in a terminal,
// then "Use ID", which makes it the model the status bar shows.
async function pullWalk() {
  await openWorkbench();
  await openFile(config.source);
  await palette("OpenCodeInterpreter: Pull a Model");
  result.pullPicks = await quickInputRows("the catalog in the pick list", (row) => row.includes(config.pullId));
  await shot("pull-picker");
  await page.keyboard.type(config.pullId);
  await quickInputRows("the pick list to narrow", (row) => row.startsWith(config.pullId));
  await page.keyboard.press("Enter");
  step("pull started", { id: config.pullId });
  const use = `Use ${config.pullId}`;
  result.pullNotice = await until("the pull to finish", async () => {
    const shown = await notifications();
    return shown.find((text) => text.includes(use) || text.includes("failed")) ?? { ok: false, shown };
  }, 300000);
  result.pullTerminal = await page
    .$eval(".terminal-wrapper.active .xterm-rows, .terminal .xterm-rows", (e) => e.innerText)
    .catch(() => "");
  await shot("pull-finished");
  result.pullStatusBefore = await statusBar();
  await clickButton(`the ${use} button`, ".notifications-toasts .monaco-button", (label) => label === use);
  step("used", { id: config.pullId });
  result.pullStatusBar = await statusBarWhere(
    "the status bar to show the pulled model, installed",
    (item) => item.text.includes(config.pullId) && !item.text.includes("error"),
  );
  await shot("pull-used");
}

// A trusted workspace: a save, the failures, the three code actions, the tests passing.
async function trustedWalk() {
  await openWorkbench();
  await openFile(config.source);
  await shot("opened");

  // The server is up once the status bar names the model (the extension asked oci.status);
  // a save before that would reach no server.
  result.startStatusBar = await statusBarWhere("the server to start", (item) => item.text.includes(config.expectModel));
  step("server started", result.startStatusBar);

  // A save runs the tests: make the buffer dirty without changing its text, then Ctrl+S.
  await goToLine(1, 1);
  await page.keyboard.type(" ");
  await page.keyboard.press("Backspace");
  await chord("Control", "s");
  step("saved");

  // The Problems view fills with the failing tests.
  await chord("Control", "Shift", "m");
  const problems = await until("the failing tests in the Problems view", async () => {
    const text = await page
      .$eval(".markers-panel", (e) => e.innerText)
      .catch(() => "");
    return config.expectProblems.every((p) => text.includes(p)) ? text : { ok: false, text };
  });
  result.problems = problems;
  step("problems");
  await shot("problems");
  result.statusBar = await statusBarWhere("the status bar's test counts", (item) =>
    item.label.includes(config.expectStatus),
  );

  // Quick Fix on the failing function's name, then the plain fix.
  await page.click(".editor-group-container.active .monaco-editor .view-lines");
  await goToLine(config.fixLine, 6);
  result.fixMenu = await quickFixMenu();
  await shot("quick-fix-menu");
  result.fixChosen = await chooseAction(config.fixPrefix);
  step("fix chosen", { title: result.fixChosen });
  result.fixedText = await editorTextWith("the fixed function in the editor", config.expectFixed);
  await shot("fixed");
  // The counts follow the verified fix (test_add passes now), as soon as it is applied.
  result.fixedStatusBar = await statusBarWhere("the status bar to count the fixed test", (item) =>
    item.label.includes(config.expectFixedStatus),
  );

  // Fix with an instruction: the extension's input box, then the verified edit.
  await goToLine(config.instructionLine, 6);
  result.instructionMenu = await quickFixMenu();
  result.instructionChosen = await chooseAction(config.instructionPrefix);
  await page.waitForSelector(".quick-input-widget input", { visible: true, timeout: 10000 });
  result.inputPrompt = await page.$eval(".quick-input-widget", (e) => e.innerText.trim());
  await shot("instruction-input");
  await page.keyboard.type(config.instruction);
  await page.keyboard.press("Enter");
  result.instructedText = await editorTextWith("the instructed fix in the editor", config.expectInstructed);
  await shot("instructed");

  // The stub's body: the code action menu lists it; the Command Palette runs it.
  await goToLine(config.stubLine, 6);
  result.stubMenu = await quickFixMenu();
  await page.keyboard.press("Escape");
  await palette(config.generateCommand);
  result.generatedText = await editorTextWith("the generated body in the editor", config.expectGenerated);
  await shot("generated");

  // Another tool's diagnostic: the e2e's mypy extension (e2e/mypy-diagnostics) runs mypy on
  // the file it opens and puts its errors in the Problems view; oci-lsp's quick-fix on one is
  // verified by mypy in the sandbox, then applied.
  if (config.toolSource) {
    await openFile(config.toolSource);
    result.toolProblems = await until("mypy's diagnostic in the Problems view", async () => {
      const text = await page.$eval(".markers-panel", (e) => e.innerText).catch(() => "");
      return text.includes(config.expectToolProblem) ? text : { ok: false, text };
    });
    await page.click(".editor-group-container.active .monaco-editor .view-lines");
    await goToLine(config.toolLine, config.toolColumn);
    result.toolMenu = await quickFixMenu();
    await shot("tool-quick-fix-menu");
    result.toolChosen = await chooseAction(config.toolPrefix);
    step("tool fix chosen", { title: result.toolChosen });
    result.toolFixedText = await editorTextWith("the mypy-verified fix in the editor", config.expectToolFixed);
    // The answer's notice, a few seconds in the status bar: what verified the edit.
    result.toolNotice = await until("the notice of the verified fix", async () => {
      const texts = await statusBarTexts();
      return texts.find((text) => text.includes("oci-lsp: applied")) ?? { ok: false, texts };
    }, 30000);
    await shot("tool-fixed");

    // The instruction variant on another of mypy's diagnostics: the extension's input box,
    // then oci.fixDiagnostics with the line typed.
    await goToLine(config.toolInstructionLine, config.toolColumn);
    result.toolInstructionMenu = await quickFixMenu();
    result.toolInstructionChosen = await chooseAction(config.toolInstructionPrefix);
    await page.waitForSelector(".quick-input-widget input", { visible: true, timeout: 10000 });
    result.toolInputPrompt = await page.$eval(".quick-input-widget", (e) => e.innerText.trim());
    await shot("tool-instruction-input");
    await page.keyboard.type(config.toolInstruction);
    await page.keyboard.press("Enter");
    result.toolInstructedText = await editorTextWith("the instructed mypy fix", config.expectToolInstructed);
    await shot("tool-instructed");
  }

  // VS Code saves the files a code action edited (files.refactoring.autoSave, on by default);
  // the save runs the tests, which pass now: the Problems view empties, the counts follow.
  const end = await until("the saved fixes to pass their tests", async () => {
    const problems = await page.$eval(".markers-panel", (e) => e.innerText).catch(() => "");
    const disk = readFileSync(config.sourcePath, "utf8");
    const item = await statusBar();
    const passed = item?.label.includes(config.expectFinalStatus) && !item.label.includes("running");
    // The tool's fix is saved too, and mypy, run again on the save, reports nothing.
    const toolDisk = config.toolSourcePath ? readFileSync(config.toolSourcePath, "utf8") : "";
    const toolSaved =
      !config.toolSourcePath || (toolDisk.includes(config.expectToolFixed) && toolDisk.includes(config.expectToolInstructed));
    const ok = problems.includes("No problems") && disk.includes(config.expectGenerated) && toolSaved && passed;
    return ok ? { problems, disk, item } : { ok: false, problems, disk, toolDisk, item };
  });
  result.finalProblems = end.problems;
  result.disk = end.disk;
  result.finalStatusBar = end.item;
  await shot("all-pass");
}

try {
  const walks = { trusted: trustedWalk, restricted: restrictedWalk, pull: pullWalk };
  await walks[config.scenario]();
  result.ok = true;
} catch (error) {
  result.ok = false;
  result.error = String(error?.stack ?? error);
  result.lastText = await editorText().catch(() => null);
  result.notifications = await page
    .$$eval(".notification-toast, .notifications-toasts .monaco-list-row", (els) => els.map((e) => e.textContent.trim()))
    .catch(() => []);
  await shot("failure").catch(() => {});
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + "\n");
