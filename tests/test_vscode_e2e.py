"""The VS Code extension in real VS Code: code-server (VS Code's web build) with the packaged
.vsix installed, driven in headless Chromium by editors/vscode/e2e/drive.mjs. The server is
the real one, started by the extension; the model is a scripted OpenAI-compatible server.
Another tool's diagnostics come from a second extension, editors/vscode/e2e/mypy-diagnostics,
packaged here with the extension's vsce: it runs the real mypy on open and save.

What it needs is installed by .ci/run: Debian's chromium and ripgrep, `npm run package` in
editors/vscode (the .vsix), and editors/vscode/e2e/setup.sh (code-server, puppeteer-core).
Screenshots of each step go to $OCI_ARTIFACTS/vscode-e2e (default: artifacts/ in the checkout).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_files
from tests.hf_checkpoints import build_llama_checkpoint
from tests.hub_server import FakeHub, FakeRepo
from tests.openai_server import ScriptedOpenAIServer, answers_by_function

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "editors" / "vscode"
E2E = EXTENSION / "e2e"
VSIX = EXTENSION / "oci-lsp.vsix"
CODE_SERVER = E2E / "node_modules" / ".bin" / "code-server"
VSCE = EXTENSION / "node_modules" / ".bin" / "vsce"
MYPY_EXTENSION = E2E / "mypy-diagnostics"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("OCI_ARTIFACTS", ROOT / "artifacts")) / "vscode-e2e"

WORKSPACE = {
    "calc.py": '''\
def add(a, b):
    return a - b


def sub(a, b):
    return a + b


def mul(a, b):
    """The product of a and b."""
    ...
''',
    # A defect the tests cannot see (a label is truthy either way): only mypy shows it.
    "labels.py": '''\
def label(n: int) -> str:
    """The label of n, for the report."""
    return n


def first(names: list[str]) -> str:
    """The first name, or "" when there is none."""
    return names[0] if names else None


TITLE = "Report"
''',
    "tests/test_labels.py": """\
from labels import first, label


def test_label():
    assert label(3)


def test_first():
    assert first(["a", "b"]) == "a"
""",
    "tests/test_calc.py": """\
from calc import add, mul, sub


def test_add():
    assert add(1, 2) == 3


def test_sub():
    assert sub(5, 2) == 3


def test_mul():
    assert mul(2, 3) == 6
""",
}
ANSWERS = {
    "add": "```python\ndef add(a, b):\n    return a + b\n```",
    "sub": "```python\ndef sub(a, b):\n    return a - b  # as instructed\n```",
    "mul": '```python\ndef mul(a, b):\n    """The product of a and b."""\n    return a * b\n```',
}
INSTRUCTION = "subtract b from a, do not add"
RIGHT_LABEL = '```python\ndef label(n: int) -> str:\n    """The label of n, for the report."""\n    return str(n)\n```'
# Still an int on one path: mypy says so, the test cannot.
HALF_LABEL = '```python\ndef label(n: int) -> str:\n    """The label of n, for the report."""\n    return str(n) if n else n\n```'
TOOL_INSTRUCTION = 'return "" when there is no name'
FIRST = '```python\ndef first(names: list[str]) -> str:\n    """The first name, or "" when there is none."""\n    return names[0] if names else {}\n```'
MYPY_TITLE = (
    'Fix `label`: return-value Incompatible return value type (got "int", expected "str")'
    " (OpenCodeInterpreter)"
)


def answer(body: dict[str, Any]) -> str:
    """ANSWERS by function; for `label`, the right code only once the feedback carries
    mypy's report on the half-right first answer (mypy's words and its code); for `first`,
    only with mypy's report and, in a turn of its own after it, the instruction."""
    turn = str(body["messages"][-1]["content"])
    if "Reply with the complete function `label`" in json.dumps(body):
        mypy_on_half = "mypy [return-value]" in turn and "str(n) if n else n" in turn
        return RIGHT_LABEL if mypy_on_half else HALF_LABEL
    if "Reply with the complete function `first`" in json.dumps(body):
        instructed = "mypy [return-value]" in json.dumps(body) and TOOL_INSTRUCTION in turn
        return FIRST.format('""' if instructed else "None")
    return answers_by_function(ANSWERS)(body)


def requests_for(model: ScriptedOpenAIServer, name: str) -> list[str]:
    """The last user turn of each request that asked for function `name`."""
    return [
        str(body["messages"][-1]["content"])
        for body in model.requests
        if f"Reply with the complete function `{name}`" in json.dumps(body)
    ]


def missing_prerequisites() -> list[str]:
    missing = []
    if not CHROMIUM.exists():
        missing.append("chromium (apt-get install chromium)")
    if not CODE_SERVER.exists():
        missing.append("code-server (editors/vscode/e2e/setup.sh)")
    if not VSIX.exists():
        missing.append("the .vsix (cd editors/vscode && npm ci && npm run package)")
    if not VSCE.exists():
        missing.append("vsce (cd editors/vscode && npm ci)")
    return missing


@pytest.fixture(scope="module", autouse=True)
def prerequisites() -> None:
    missing = missing_prerequisites()
    if missing and os.environ.get("CI"):
        pytest.fail(f"the VS Code end-to-end test needs: {', '.join(missing)}")
    if missing:  # a developer's machine without the editor tooling; CI always has it
        pytest.skip(f"needs {', '.join(missing)}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CodeServer:
    """code-server on 127.0.0.1 with its own user data and extensions directories."""

    def __init__(
        self, home: Path, settings: dict[str, Any], machine: dict[str, Any], trust: bool
    ) -> None:
        self.home = home
        self.trust = trust  # False: VS Code asks whether to trust the folder
        self.user_data = home / "user-data"
        self.extensions = home / "extensions"
        self.port = free_port()
        self.log = home / "code-server.log"
        # code-server is a remote window: machine-scoped settings (oci.server.*) are read from
        # the Machine settings, not the User ones.
        for scope, values in (("User", settings), ("Machine", machine)):
            (self.user_data / scope).mkdir(parents=True)
            (self.user_data / scope / "settings.json").write_text(json.dumps(values, indent=2))
        self.config = home / "config.yaml"
        self.config.write_text(f"bind-addr: 127.0.0.1:{self.port}\nauth: none\ncert: false\n")
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, *args: str) -> list[str]:
        return [
            str(CODE_SERVER),
            "--config",
            str(self.config),
            "--user-data-dir",
            str(self.user_data),
            "--extensions-dir",
            str(self.extensions),
            "--disable-telemetry",
            "--disable-update-check",
            *(["--disable-workspace-trust"] if self.trust else []),
            *args,
        ]

    def install(self, vsix: Path) -> str:
        done = subprocess.run(
            self.command("--install-extension", str(vsix)),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def start(self, folder: Path, env: dict[str, str] | None = None) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(str(folder)),
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                    return
            except OSError:
                assert self.process.poll() is None, self.log.read_text()
                time.sleep(0.2)
        raise AssertionError(f"code-server did not answer: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer(answer) as server:
        yield server


@pytest.fixture(scope="module")
def mypy_vsix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mypy-diagnostics test extension, packaged by vsce from a copy (vsce writes nothing
    there, but the checkout stays as it was whatever it does)."""
    home = tmp_path_factory.mktemp("mypy-vsix")
    source = shutil.copytree(MYPY_EXTENSION, home / "mypy-diagnostics")
    vsix = home / "mypy-diagnostics.vsix"
    done = subprocess.run(
        [str(VSCE), "package", "--allow-missing-repository", "--skip-license", "-o", str(vsix)],
        cwd=source,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert done.returncode == 0 and vsix.exists(), done.stdout + done.stderr
    return vsix


@pytest.fixture(scope="module")
def artifacts() -> Path:
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


def walk(
    home: Path,
    scenario: str,
    shots: Path,
    server_settings: dict[str, Any],
    env: dict[str, str] | None = None,
    more_extensions: tuple[Path, ...] = (),
    **expect: Any,
) -> dict[str, Any]:
    """Starts code-server on a fresh copy of the workspace with the .vsix (and
    `more_extensions`) installed, runs drive.mjs's `scenario` in Chromium, and returns what it
    saw with the logs."""
    workspace = write_files(home / "calc-project", WORKSPACE)
    server_log = home / "oci-lsp.log"
    machine = {
        "oci.server.python": sys.executable,
        "oci.server.args": ["--log-file", str(server_log), "-v"],
    }
    settings = {
        **server_settings,
        "workbench.startupEditor": "none",
        # The DOM renderer, whose text can be read back (headless Chromium has no GPU).
        "terminal.integrated.gpuAcceleration": "off",
        "workbench.tips.enabled": False,
        "telemetry.telemetryLevel": "off",
        "extensions.autoCheckUpdates": False,
        "extensions.autoUpdate": False,
        "extensions.ignoreRecommendations": True,
    }
    editor = CodeServer(home, settings, machine, trust=scenario != "restricted")
    for vsix in (VSIX, *more_extensions):
        editor.install(vsix)
    editor.start(workspace, env)
    config = {
        "scenario": scenario,
        "url": f"http://127.0.0.1:{editor.port}/?folder={workspace}",
        "chromium": str(CHROMIUM),
        "shots": str(shots),
        "source": "calc.py",
        "sourcePath": str(workspace / "calc.py"),
        "timeoutMs": 120_000,
        **expect,
    }
    config_path = home / "drive.json"
    config_path.write_text(json.dumps(config))
    try:
        done = subprocess.run(
            ["node", str(E2E / "drive.mjs"), str(config_path)],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=E2E,
        )
        lines = done.stdout.strip().splitlines()
        result: dict[str, Any] = json.loads(lines[-1]) if lines else {}
        result["driver_log"] = done.stderr
    finally:
        editor.stop()
    result["disk"] = (workspace / "calc.py").read_text()
    result["labels_disk"] = (workspace / "labels.py").read_text()
    result["server_started"] = server_log.exists()
    result["server_log"] = server_log.read_text() if server_log.exists() else ""
    result["code_server_log"] = editor.log.read_text()
    result["user_settings"] = json.loads((editor.user_data / "User" / "settings.json").read_text())
    # Kept with the screenshots: what the walk saw, for reading a CI failure afterwards.
    (shots / f"{scenario}.json").write_text(json.dumps(result, indent=2))
    return result


def openai_settings(model: ScriptedOpenAIServer) -> dict[str, Any]:
    return {
        "oci.backend": "openai",
        "oci.openai.baseUrl": model.base_url,
        "oci.openai.model": model.models[0] if model.models else "test-model",
    }


@pytest.fixture(scope="module")
def session(
    tmp_path_factory: pytest.TempPathFactory,
    model: ScriptedOpenAIServer,
    artifacts: Path,
    mypy_vsix: Path,
) -> dict[str, Any]:
    """One walk through a trusted workspace; the tests below each check one part of it."""
    home = tmp_path_factory.mktemp("trusted")
    return walk(
        home,
        "trusted",
        artifacts,
        openai_settings(model),
        # The mypy extension runs mypy with the interpreter that has it (the server's).
        {"OCI_E2E_MYPY_PYTHON": sys.executable},
        (mypy_vsix,),
        expectStatus="3 failed",
        expectModel="test-model",
        expectFinalStatus="5 passed, 0 failed",
        expectProblems=["test_add", "test_sub", "test_mul"],
        fixLine=1,
        fixPrefix="Fix `add` so `test_add` passes",
        expectFixed="return a + b",
        expectFixedStatus="3 passed, 2 failed",
        instructionLine=5,
        instructionPrefix="Fix `sub` with an instruction",
        instruction=INSTRUCTION,
        expectInstructed="# as instructed",
        stubLine=9,
        generateCommand="OpenCodeInterpreter: Generate the Function Body at the Cursor",
        expectGenerated="return a * b",
        toolSource="labels.py",
        toolSourcePath=str(home / "calc-project" / "labels.py"),
        expectToolProblem="Incompatible return value type",
        toolLine=3,
        toolColumn=12,  # on `n` of `return n`, where mypy's diagnostic is
        toolPrefix="Fix `label`: return-value",
        expectToolFixed="    return str(n)\n",
        toolInstructionLine=8,  # `return names[0] if names else None`
        toolInstructionPrefix="Fix `first` with an instruction…: return-value",
        toolInstruction=TOOL_INSTRUCTION,
        expectToolInstructed='    return names[0] if names else ""\n',
    )


def explain(result: dict[str, Any]) -> str:
    """What to read when the walk failed: the driver's error and the last words of each log."""
    return "\n".join(
        [
            str(result.get("error")),
            f"editor text: {result.get('lastText')}",
            f"notifications: {result.get('notifications')}",
            "driver: " + result.get("driver_log", "")[-3000:],
            "server: " + result.get("server_log", "")[-3000:],
            "code-server: " + result.get("code_server_log", "")[-2000:],
        ]
    )


def test_the_walk_through_the_editor_completes(session: dict[str, Any]) -> None:
    assert session.get("ok"), explain(session)


def test_failing_tests_show_in_the_problems_view(session: dict[str, Any]) -> None:
    problems = session.get("problems", "")
    assert "test_add" in problems and "assert add(1, 2) == 3" in problems, explain(session)


def test_the_quick_fix_menu_offers_the_actions(session: dict[str, Any]) -> None:
    menu = session.get("fixMenu", [])
    assert any(t.startswith("Fix `add` so `test_add` passes") for t in menu)
    assert any(t.startswith("Fix `add` with an instruction") for t in menu), menu


def test_the_fix_changes_the_editor(session: dict[str, Any]) -> None:
    assert "return a + b" in session.get("fixedText", ""), explain(session)
    # The status bar counts the fixed test as passing without waiting for a save.
    assert "3 passed, 2 failed" in session["fixedStatusBar"]["label"], session["fixedStatusBar"]


def test_the_accepted_edits_are_saved_and_the_tests_pass(session: dict[str, Any]) -> None:
    # VS Code saves what a code action edited (files.refactoring.autoSave); that save runs the
    # tests, which now pass: the Problems view empties and the status bar counts no failure.
    assert "No problems" in session.get("finalProblems", ""), explain(session)
    disk = session.get("disk", "")
    assert "return a + b" in disk and "# as instructed" in disk and "return a * b" in disk
    assert "5 passed, 0 failed" in session["finalStatusBar"]["label"], session["finalStatusBar"]


def test_the_instruction_reaches_the_model(
    session: dict[str, Any], model: ScriptedOpenAIServer
) -> None:
    prompt = session.get("inputPrompt", "")
    assert "Fix `sub`" in prompt and "guidance" in prompt, prompt
    assert "# as instructed" in session.get("instructedText", ""), explain(session)
    asked = [json.dumps(body) for body in model.requests if INSTRUCTION in json.dumps(body)]
    assert asked, "the instruction typed in the input box never reached the model"


def test_the_stub_gets_its_body_from_the_command_palette(session: dict[str, Any]) -> None:
    assert "Generate body of `mul` (OpenCodeInterpreter)" in session.get("stubMenu", [])
    assert "return a * b" in session.get("generatedText", ""), explain(session)


def test_another_tools_diagnostic_gets_the_quick_fix(session: dict[str, Any]) -> None:
    """mypy's diagnostic, from another extension's collection, in the Problems view and, under
    the cursor, in oci-lsp's Quick Fix menu: mypy is installed here, so no "unverified"."""
    problems = session.get("toolProblems", "")
    assert "Incompatible return value type" in problems and "mypy" in problems, explain(session)
    menu = session.get("toolMenu", [])
    assert MYPY_TITLE in menu, menu
    assert any(t.startswith("Fix `label` with an instruction…: return-value") for t in menu), menu


def test_the_quick_fix_is_verified_by_mypy_and_applied(
    session: dict[str, Any], model: ScriptedOpenAIServer
) -> None:
    """The model's first answer still returns an int on one path (the test passes it); mypy,
    run on it in the sandbox, says so, and its report is the next turn; the second is right."""
    assert session.get("toolChosen") == MYPY_TITLE, explain(session)
    assert "    return str(n)\n" in session.get("toolFixedText", ""), explain(session)
    asked = requests_for(model, "label")
    # Round 1 (one request per candidate): the diagnostic VS Code handed over, as mypy's
    # finding with its code; round 2: mypy's verdict on the first answer, in mypy's words.
    first = [turn for turn in asked if "str(n) if n else n" not in turn]
    second = [turn for turn in asked if "str(n) if n else n" in turn]
    assert first and second and asked[: len(first)] == first, asked
    assert all("labels.py:3:12: mypy [return-value]" in t for t in first), first
    assert all("mypy [return-value] Incompatible return value type" in t for t in second), second
    # The notice names what verified it: mypy, and the test that exercises label.
    notice = session.get("toolNotice", "")
    assert "oci-lsp: applied, verified: mypy" in notice and "passed 1 test(s)" in notice, notice
    # Saved with the other fixes; mypy, run again on the save, leaves the Problems view empty.
    assert "    return str(n)\n" in session.get("labels_disk", "")
    assert "No problems" in session.get("finalProblems", ""), explain(session)


def test_the_instruction_goes_with_the_tools_report(
    session: dict[str, Any], model: ScriptedOpenAIServer
) -> None:
    """The instruction variant on mypy's diagnostic: the input box names the function and
    mypy's message, and the line typed reaches the model after mypy's report."""
    prompt = session.get("toolInputPrompt", "")
    assert "Fix `first`: return-value Incompatible return value type" in prompt, explain(session)
    assert "tool's report" in prompt, prompt
    assert '    return names[0] if names else ""\n' in session.get("toolInstructedText", "")
    # One request per candidate, each ending with the instruction after mypy's report.
    asked = requests_for(model, "first")
    assert asked and all(turn == TOOL_INSTRUCTION for turn in asked), asked
    assert '    return names[0] if names else ""\n' in session.get("labels_disk", "")


def test_the_status_bar_shows_the_backend_and_the_tests(session: dict[str, Any]) -> None:
    status = session.get("statusBar") or {}
    assert "3 failed" in status.get("label", ""), explain(session)
    assert "test-model" in status.get("text", ""), status
    # Its tooltip (read out in the label) names the interpreter that runs the tests, and why:
    # code-server has no Python extension here, so the server chose by itself.
    assert f"Tests run with: `{sys.executable}` (the server's own" in status["label"], status


def test_screenshots_are_kept(session: dict[str, Any]) -> None:
    shots = [Path(p) for p in session.get("screenshots", [])]
    assert len(shots) >= 6 and all(p.stat().st_size > 10_000 for p in shots), shots


def test_an_untrusted_workspace_runs_nothing_and_says_why(
    tmp_path_factory: pytest.TempPathFactory, model: ScriptedOpenAIServer, artifacts: Path
) -> None:
    """The user answers VS Code's trust dialog with "No": the server never starts (it would
    run the workspace's tests), the status bar says so, and a command explains why."""
    asked_before = len(model.requests)
    home = tmp_path_factory.mktemp("restricted")
    result = walk(home, "restricted", artifacts, openai_settings(model))
    assert result.get("ok"), explain(result)
    assert "restricted" in result["restrictedStatusBar"]["text"]
    assert "Restricted Mode" in result["restrictedNotice"]
    assert "Manage Workspace Trust" in result["restrictedNotice"]
    assert result["server_started"] is False, result["server_log"]
    assert len(model.requests) == asked_before


def test_pulling_a_model_from_the_palette(
    tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> None:
    """Pull a Model…: the catalog in a pick list, `oci-lsp model pull` with its progress in a
    terminal (from a hub on 127.0.0.1 serving a tiny checkpoint), then "Use ds-1.3b" makes it
    the model: the user's settings name it and the status bar shows it."""
    home = tmp_path_factory.mktemp("pull")
    checkpoint = build_llama_checkpoint(home / "ckpt" / "OpenCodeInterpreter-DS-1.3B")
    files = {p.name: p.read_bytes() for p in checkpoint.iterdir() if p.is_file()}
    cache = home / "cache"
    env = {
        "XDG_CACHE_HOME": str(cache),
        "HF_TOKEN_PATH": str(home / "no-token"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    with FakeHub([FakeRepo("m-a-p/OpenCodeInterpreter-DS-1.3B", files)]) as hub:
        env["HF_ENDPOINT"] = hub.endpoint
        # Another model first: "Use ds-1.3b" must change the setting for the status to follow.
        settings = {"oci.model": "ds-6.7b", "oci.device": "cpu"}
        result = walk(home, "pull", artifacts, settings, env, pullId="ds-1.3b", timeoutMs=300_000)
    assert result.get("ok"), explain(result)
    assert any(row.startswith("ds-1.3b") for row in result["pullPicks"]), result["pullPicks"]
    assert "Use ds-1.3b" in result["pullNotice"], result["pullNotice"]
    assert "installed ds-1.3b" in result["pullTerminal"], result["pullTerminal"]
    assert (cache / "oci-lsp" / "models" / "ds-1.3b" / "model.bin").exists()
    assert result["user_settings"]["oci.model"] == "ds-1.3b"
    # Before: the configured model, not installed; after: the pulled one, ready to load.
    assert "ds-6.7b: error" in result["pullStatusBefore"]["text"], result["pullStatusBefore"]
    assert "ds-1.3b: not loaded" in result["pullStatusBar"]["text"], result["pullStatusBar"]
