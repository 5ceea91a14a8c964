"""ruff, mypy and pyright for real on a constructed workspace: candidate text checked without
being written, the workspace's own configuration, each tool's answer to a syntax error,
timeouts, missing and broken tools.

One workspace is shared by the tests that only read it (mypy's cache stays warm, as it does
for the server); the module on disk is clean in `pkg/calc.py` and broken in `pkg/dirty.py`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from oci_lsp.tools import runners
from oci_lsp.tools.findings import Finding
from oci_lsp.tools.processes import run_limited
from oci_lsp.tools.runners import (
    ToolCommand,
    ToolError,
    check_text,
    check_workspace,
    find_tool,
    mypy_cache_dir,
)
from oci_lsp.tools.syntax import syntax_error
from tests.conftest import processes_with, write_files
from tests.venvs import cached_venv

BIN = Path(sys.executable).parent

CONFIG = """
[tool.ruff.lint]
select = ["F", "B"]

[tool.ruff.lint.per-file-ignores]
"pkg/legacy.py" = ["F401"]

[tool.mypy]
disallow_untyped_defs = true

[tool.pyright]
reportUndefinedVariable = "warning"
"""

CLEAN = """
from __future__ import annotations

from .helper import one


def name(x: int) -> str:
    return str(x + one())


def shout(s: str | None) -> str:
    if s is None:
        return ""
    return s.upper()
"""

# Each defect one of the tools sees; `one` comes through the relative import, so the wrong
# return type is only seen when the import resolved (unresolved, `x + one()` is Any).
BROKEN = """
from __future__ import annotations

from .helper import one


def name(x: int) -> str:
    return x + one()


def shout(s: str | None) -> str:
    unused = s
    return s.upper() + suffix
"""

UNCLOSED = """
def name(x: int) -> str:
    return (x +


def shout() -> None:
    pass
"""


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ws")
    return write_files(
        root,
        {
            "pyproject.toml": CONFIG,
            "pkg/__init__.py": "",
            "pkg/helper.py": "def one() -> int:\n    return 1\n",
            "pkg/calc.py": CLEAN,
            "pkg/dirty.py": BROKEN,
            "pkg/legacy.py": "x = 1\n",
        },
    )


def tool(name: str) -> ToolCommand:
    command = find_tool(name, sys.executable)
    assert command is not None, f"{name} is in the test extra"
    return command


def codes(findings: list[Finding]) -> dict[str | None, int]:
    """Each code and the line it was found on."""
    return {f.code: f.line for f in findings}


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# -- ruff --------------------------------------------------------------------------------------


async def test_ruff_finds_an_undefined_name_and_an_unused_variable_in_the_text_not_on_disk(
    workspace: Path,
) -> None:
    calc, dirty = workspace / "pkg" / "calc.py", workspace / "pkg" / "dirty.py"
    found = await check_text(tool("ruff"), workspace, calc, src(BROKEN))
    assert codes(found) == {"F841": 11, "F821": 12}
    undefined = next(f for f in found if f.code == "F821")
    assert (undefined.tool, undefined.path, undefined.column) == ("ruff", calc, 24)
    assert undefined.message == "Undefined name `suffix`"
    # The reverse: the file on disk is broken, the text is not.
    assert await check_text(tool("ruff"), workspace, dirty, src(CLEAN)) == []


async def test_ruff_honours_the_workspaces_select_and_per_file_ignores(workspace: Path) -> None:
    text = "import os\n\n\ndef f(x=[]):\n    return x == None\n"
    at_calc = await check_text(tool("ruff"), workspace, workspace / "pkg" / "calc.py", text)
    at_legacy = await check_text(tool("ruff"), workspace, workspace / "pkg" / "legacy.py", text)
    # E711 (`== None`) is a default rule; the workspace selects F and B only.
    assert sorted(codes(at_calc)) == ["B006", "F401"]
    assert sorted(codes(at_legacy)) == ["B006"]


# -- mypy --------------------------------------------------------------------------------------


async def test_mypy_finds_a_wrong_return_type_and_an_unhandled_optional_in_the_text_not_on_disk(
    workspace: Path,
) -> None:
    calc, dirty = workspace / "pkg" / "calc.py", workspace / "pkg" / "dirty.py"
    found = await check_text(tool("mypy"), workspace, calc, src(BROKEN))
    assert codes(found) == {"return-value": 7, "union-attr": 12, "name-defined": 12}
    wrong = next(f for f in found if f.code == "return-value")
    assert wrong.message == 'Incompatible return value type (got "int", expected "str")'
    assert (wrong.column, wrong.end_column) == (12, 21)
    assert await check_text(tool("mypy"), workspace, dirty, src(CLEAN)) == []


async def test_mypy_honours_disallow_untyped_defs_from_the_workspaces_config(
    workspace: Path,
) -> None:
    text = "def double(x):\n    return x * 2\n"
    found = await check_text(tool("mypy"), workspace, workspace / "pkg" / "calc.py", text)
    assert [(f.code, f.line) for f in found] == [("no-untyped-def", 1)]


async def test_mypys_notes_are_the_detail_of_the_error_they_explain(workspace: Path) -> None:
    text = src(
        """
        from typing import Protocol


        class Sized(Protocol):
            def size(self, unit: int) -> int: ...


        class Box:
            def size(self, unit: str) -> int:
                return 0


        def measure(thing: Sized) -> int:
            return thing.size(1)


        def main() -> int:
            return measure(Box())
        """
    )
    found = await check_text(tool("mypy"), workspace, workspace / "pkg" / "calc.py", text)
    assert [(f.code, f.line) for f in found] == [("arg-type", 18)]
    assert 'Following member(s) of "Box" have conflicts' in found[0].detail
    assert "def size(self, unit: int) -> int" in found[0].detail


async def test_a_mypy_without_json_output_is_read_from_its_text_format_with_the_same_places(
    workspace: Path,
) -> None:
    """mypy 1.10 (no `-O json`) in the workspace's interpreter: the text format's columns
    (1-based, end inclusive, a syntax error's one too far) come out as the JSON's do."""
    old = find_tool("mypy", str(cached_venv("mypy-1.10", ["mypy==1.10.0"])))
    assert old is not None and old.argv[1:] == ("-m", "mypy")
    calc, dirty = workspace / "pkg" / "calc.py", workspace / "pkg" / "dirty.py"

    def places(found: list[Finding]) -> list[tuple[str | None, int, int]]:
        return [(f.code, f.line, f.column) for f in found]

    new_found = await check_text(tool("mypy"), workspace, calc, src(BROKEN))
    old_found = await check_text(old, workspace, calc, src(BROKEN))
    assert places(old_found) == places(new_found)
    # A syntax error's column, one too far in both formats. (At dirty.py, whose line 7 on
    # disk is the text's up to the error: mypy 1.10 compiles with the module's real file
    # name, and CPython then counts the error's column on the line it reads from disk.)
    unmatched = src(BROKEN).replace("return x + one()\n", "return x + one())\n")
    expected = [("syntax", 7, len("    return x + one()") + 1)]
    assert places(await check_text(old, workspace, dirty, unmatched)) == expected
    assert places(await check_text(tool("mypy"), workspace, dirty, unmatched)) == expected
    assert old.argv in runners._mypy_without_json


# -- pyright -----------------------------------------------------------------------------------


async def test_pyright_checks_the_text_in_a_mirror_with_the_workspaces_config(
    workspace: Path,
) -> None:
    calc = workspace / "pkg" / "calc.py"
    found = await check_text(tool("pyright"), workspace, calc, src(BROKEN))
    assert codes(found) == {
        "reportReturnType": 7,
        "reportOptionalMemberAccess": 12,
        "reportUndefinedVariable": 12,
    }
    wrong = next(f for f in found if f.code == "reportReturnType")
    assert wrong.message == 'Type "int" is not assignable to return type "str"'
    assert '"int" is not assignable to "str"' in wrong.detail
    assert (wrong.path, wrong.column, wrong.end_column) == (calc, 12, 21)
    undefined = next(f for f in found if f.code == "reportUndefinedVariable")
    assert undefined.severity == "warning"  # [tool.pyright] in the workspace's pyproject.toml


async def test_pyright_sees_the_text_and_not_the_broken_file_on_disk(workspace: Path) -> None:
    assert (
        await check_text(tool("pyright"), workspace, workspace / "pkg" / "dirty.py", src(CLEAN))
        == []
    )


async def test_columns_after_an_emoji_are_code_points_for_every_tool(workspace: Path) -> None:
    """pyright counts UTF-16 units (an emoji is two), ruff code points; both come out as
    code points."""
    text = 'def f() -> str:\n    s = "\u00e9\U0001f600"; return s + missing\n'
    calc = workspace / "pkg" / "calc.py"
    ruff = await check_text(tool("ruff"), workspace, calc, text)
    pyright = await check_text(tool("pyright"), workspace, calc, text)
    column = text.splitlines()[1].index("missing") + 1
    assert [(f.line, f.column, f.end_column) for f in ruff] == [(2, column, column + 7)]
    assert [(f.line, f.column, f.end_column) for f in pyright] == [(2, column, column + 7)]


# -- every tool --------------------------------------------------------------------------------


async def test_what_each_tool_reports_on_a_syntax_error(workspace: Path) -> None:
    """Python and pyright say the bracket was never closed, at the bracket; ruff's parser
    fails where the next `def` comes, and reports nothing else; mypy exits 2 with syntax
    errors only (it stops there): findings, not a failure, at the bracket (mypy 1, CPython's
    parser) or where ruff's are (mypy 2 parses with ruff's parser)."""
    calc = workspace / "pkg" / "calc.py"
    text = src(UNCLOSED)
    python = syntax_error(calc, text)
    assert python is not None
    assert (python.message, python.line, python.column) == (
        "SyntaxError: '(' was never closed",
        2,
        12,
    )

    pyright = await check_text(tool("pyright"), workspace, calc, text)
    bracket = next(f for f in pyright if f.message == '"(" was not closed')
    assert (bracket.code, bracket.line, bracket.column) == (None, 2, 12)

    ruff = await check_text(tool("ruff"), workspace, calc, text)
    assert ruff and all(f.code in (None, "invalid-syntax") for f in ruff)
    assert (ruff[0].line, ruff[0].column) == (5, 1)

    mypy = await check_text(tool("mypy"), workspace, calc, text)
    assert mypy and {f.code for f in mypy} == {"syntax"}
    assert (mypy[0].line, mypy[0].column) in ((2, 12), (5, 1))


async def test_check_workspace_reports_what_the_config_covers_and_paths_narrow_it(
    workspace: Path,
) -> None:
    dirty, calc = workspace / "pkg" / "dirty.py", workspace / "pkg" / "calc.py"
    expected = {
        "ruff": {"F841", "F821"},
        "mypy": {"return-value", "union-attr", "name-defined"},
        "pyright": {"reportReturnType", "reportOptionalMemberAccess", "reportUndefinedVariable"},
    }
    for name, wanted in expected.items():
        found = await check_workspace(tool(name), workspace)
        assert {f.path for f in found} == {dirty}, name
        assert {f.code for f in found} == wanted, name
        assert await check_workspace(tool(name), workspace, [calc]) == [], name


async def test_nothing_is_written_into_the_workspace_and_no_scratch_is_left(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    before = tree(workspace)
    calc = workspace / "pkg" / "calc.py"
    for name in ("ruff", "mypy", "pyright"):
        await check_text(tool(name), workspace, calc, src(BROKEN))
    for name in ("ruff", "mypy"):
        await check_workspace(tool(name), workspace)
    assert tree(workspace) == before
    assert not (workspace / ".mypy_cache").exists() and not (workspace / ".ruff_cache").exists()
    assert list(scratch.iterdir()) == []
    assert (mypy_cache_dir(workspace, tool("mypy")) / "CACHEDIR.TAG").exists()


async def test_a_tool_that_runs_too_long_is_stopped_with_its_children(tmp_path: Path) -> None:
    marker = f"oci-lsp-slow-tool-{os.getpid()}-{time.monotonic_ns()}"
    code = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)  # {marker}'])\n"
        f"time.sleep(300)  # {marker}\n"
    )
    slow = ToolCommand("ruff", (sys.executable, "-c", code), "setting tools.ruff")
    (tmp_path / "m.py").write_text("x = 1\n")
    with pytest.raises(ToolError) as raised:
        await check_text(slow, tmp_path, tmp_path / "m.py", "x = 1\n", timeout=2)
    assert str(raised.value).startswith("ruff ran longer than 2 s and was stopped")
    deadline = time.monotonic() + 10
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(marker) == []


async def test_a_cancelled_check_kills_the_tool_with_its_children(tmp_path: Path) -> None:
    marker = f"oci-lsp-cancelled-tool-{os.getpid()}-{time.monotonic_ns()}"
    code = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)  # {marker}'])\n"
        f"time.sleep(300)  # {marker}\n"
    )
    slow = ToolCommand("mypy", (sys.executable, "-c", code), "setting tools.mypy")
    (tmp_path / "m.py").write_text("x = 1\n")
    task = asyncio.ensure_future(check_text(slow, tmp_path, tmp_path / "m.py", "x = 1\n"))
    deadline = time.monotonic() + 30
    while len(processes_with(marker)) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert len(processes_with(marker)) == 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    deadline = time.monotonic() + 10
    while processes_with(marker) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert processes_with(marker) == []
    assert list(tmp_path.iterdir()) == [tmp_path / "m.py"]


async def test_a_tool_past_its_memory_limit_fails_instead_of_taking_the_machine(
    tmp_path: Path,
) -> None:
    hungry = "x = bytearray(512 * 2**20); print('[]')"
    done = await run_limited(
        [sys.executable, "-c", hungry], tmp_path, timeout=60, memory_bytes=256 * 2**20
    )
    assert done.returncode != 0 and "MemoryError" in done.stderr
    done = await run_limited([sys.executable, "-c", hungry], tmp_path, timeout=60)
    assert (done.returncode, done.stdout) == (0, "[]\n")


def test_find_tool_takes_the_workspaces_interpreter_then_path_then_never_guesses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = sys.executable
    assert find_tool("ruff", python) == ToolCommand(
        "ruff", (str(BIN / "ruff"),), "the workspace's interpreter"
    )
    assert find_tool("mypy", python) == ToolCommand(
        "mypy", (python, "-m", "mypy"), "the workspace's interpreter"
    )
    assert find_tool("pyright", python) == ToolCommand(
        "pyright", (str(BIN / "pyright"), "--pythonpath", python), "the workspace's interpreter"
    )
    # An interpreter without the tools: PATH's, pointed at the workspace's packages.
    other = str(tmp_path / "env" / "bin" / "python")
    monkeypatch.setenv("PATH", str(BIN))
    assert find_tool("mypy", other) == ToolCommand(
        "mypy", (str(BIN / "mypy"), "--python-executable", other), "PATH"
    )
    assert find_tool("pyright", other) == ToolCommand(
        "pyright", (str(BIN / "pyright"), "--pythonpath", other), "PATH"
    )
    assert find_tool("ruff", None) == ToolCommand("ruff", (str(BIN / "ruff"),), "PATH")
    assert find_tool("mypy", other, ["dmypy", "run", "--"]) == ToolCommand(
        "mypy", ("dmypy", "run", "--"), "setting tools.mypy"
    )
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_tool("ruff", other) is None
    with pytest.raises(ValueError):
        find_tool("pylint", python)


async def test_a_broken_override_or_configuration_is_a_tool_error_that_says_what_to_do(
    tmp_path: Path,
) -> None:
    (tmp_path / "m.py").write_text("x = 1\n")
    missing = find_tool("ruff", None, [str(tmp_path / "no-ruff")])
    assert missing is not None
    with pytest.raises(ToolError) as raised:
        await check_text(missing, tmp_path, tmp_path / "m.py", "x = 1\n")
    assert "ruff could not be started" in str(raised.value)
    assert "fix the setting tools.ruff" in str(raised.value)

    garbled = ToolCommand("ruff", (sys.executable, "-c", "print('hello')"), "setting tools.ruff")
    with pytest.raises(ToolError, match="ruff gave output that cannot be read"):
        await check_text(garbled, tmp_path, tmp_path / "m.py", "x = 1\n")

    absent = ToolCommand("mypy", (sys.executable, "-m", "no_mypy_here"), "setting tools.mypy")
    with pytest.raises(ToolError) as raised:
        await check_text(absent, tmp_path, tmp_path / "m.py", "x = 1\n")
    assert "mypy exited with 1 (findings) but reported none" in str(raised.value)
    assert "No module named no_mypy_here" in str(raised.value)

    (tmp_path / "pyproject.toml").write_text('[tool.ruff]\nline-length = "long"\n')
    with pytest.raises(ToolError) as raised:
        await check_text(tool("ruff"), tmp_path, tmp_path / "m.py", "x = 1\n")
    said = str(raised.value)
    assert said.startswith("ruff exited with 2:") and "pyproject.toml" in said
    assert "\n" not in said
