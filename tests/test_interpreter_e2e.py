"""The interpreter that runs the tests, through the real server: chosen as documented,
reported by `oci.status` with its reason, used by the runs, and followed when the editor's
selection changes (what the VS Code extension sends from the Python extension)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lsprotocol import types

from tests.conftest import Editor, editor_on, write_files
from tests.venvs import pytest_venv

WORKSPACE = {
    "calc.py": "def add(a, b):\n    return a - b\n",
    "tests/test_calc.py": """
        import pathlib
        import sys

        from calc import add

        def test_where():
            (pathlib.Path(__file__).parent.parent / "ran-with").write_text(sys.prefix)

        def test_add():
            assert add(1, 2) == 3
        """,
}


@pytest.fixture(scope="module")
def pytest_env() -> Path:
    """A virtualenv with pytest (and nothing of ours): the project's environment."""
    return pytest_venv().parent.parent


def bare_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path


@pytest.fixture
async def editor_in(pytest_env: Path) -> AsyncIterator[Editor]:
    """The server started from a shell where the project's virtualenv is active."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX")}
    env["VIRTUAL_ENV"] = str(pytest_env)
    async with editor_on([sys.executable, "-m", "oci_lsp", "-v"], env) as editor:
        yield editor


async def test_the_editors_virtual_env_runs_the_tests(
    editor_in: Editor, pytest_env: Path, tmp_path: Path
) -> None:
    root = write_files(tmp_path / "my project", WORKSPACE)
    editor = editor_in
    await editor.start(root)
    status = await editor.command("oci.status", {"uri": (root / "calc.py").as_uri()})
    assert status["tests"]["python"] == {
        "path": str(pytest_env / "bin" / "python"),
        "source": "virtual-env",
        "reason": "`$VIRTUAL_ENV` of the editor's environment",
    }
    editor.save(root / "calc.py")
    await editor.wait_for_diagnostics(root / "tests/test_calc.py")
    await editor.wait_idle()
    assert (root / "ran-with").read_text() == str(pytest_env)


async def test_the_editors_selection_is_followed_below_tests_python(
    editor: Editor, pytest_env: Path, tmp_path: Path
) -> None:
    root = write_files(tmp_path / "ws", WORKSPACE)
    bare_venv(root / ".venv")  # the folder's own environment, without pytest
    selected = str(pytest_env / "bin" / "python")
    editor.client.set_configuration({"editorInterpreter": selected}, section="oci")
    await editor.start(root)
    status = await editor.command("oci.status")
    assert status["tests"]["python"]["path"] == selected
    assert status["tests"]["python"]["source"] == "editor"
    editor.save(root / "calc.py")
    await editor.wait_for_diagnostics(root / "tests/test_calc.py")
    await editor.wait_idle()
    assert (root / "ran-with").read_text() == str(pytest_env)
    assert editor.messages() == []  # `editorInterpreter` is not an unknown setting

    # The selection goes away (the user picked nothing): the folder's .venv, without pytest,
    # is said once, with the interpreter and why it was chosen.
    (root / "ran-with").unlink()
    editor.client.set_configuration({}, section="oci")
    editor.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings=None)
    )
    own = str(root / ".venv" / "bin" / "python")
    await _wait_for_python(editor, own)
    editor.save(root / "calc.py")
    await editor.wait_until(
        lambda: any("pytest is not installed" in m for m in editor.messages()), "the message"
    )
    [message] = editor.messages()
    assert message.startswith(f"oci-lsp: pytest is not installed for {own} (`.venv` in the folder)")
    await editor.wait_idle()
    assert not (root / "ran-with").exists()

    # pytest installed there (a .pth to an environment that has it: what an install does to
    # site-packages, a new entry): the next save runs, with no setting changed.
    [site] = (root / ".venv").glob("lib/python*/site-packages")
    [theirs] = pytest_env.glob("lib/python*/site-packages")
    (site / "pytest-from-elsewhere.pth").write_text(f"{theirs}\n")
    editor.save(root / "calc.py")
    await editor.wait_until(lambda: (root / "ran-with").exists(), "a run in the folder's .venv")
    assert (root / "ran-with").read_text() == str(root / ".venv")
    (root / "ran-with").unlink()

    # Selected again: the runs come back without a restart.
    editor.client.set_configuration({"editorInterpreter": selected}, section="oci")
    editor.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings=None)
    )
    await _wait_for_python(editor, selected)
    editor.save(root / "calc.py")
    await editor.wait_until(lambda: (root / "ran-with").exists(), "a run with the selection")

    # An explicit tests.python from any source, pyproject.toml included, wins over it.
    (root / "pyproject.toml").write_text(f'[tool.oci-lsp.tests]\npython = "{own}"\n')
    editor.save(root / "pyproject.toml")
    status = await _wait_for_python(editor, own)
    assert status["tests"]["python"]["source"] == "setting"


async def _wait_for_python(editor: Editor, path: str) -> dict[str, object]:
    status: dict[str, object] = {}

    async def current() -> str:
        nonlocal status
        status = await editor.command("oci.status")
        return str(status["tests"]["python"]["path"])  # type: ignore[index]

    for _ in range(600):
        if await current() == path:
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"oci.status kept saying {status}, not {path}")


def run_fix(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "oci_lsp", "--fix", str(root), "--json", str(root / "r.json")]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)


def test_fix_runs_in_the_same_interpreter_and_says_which(pytest_env: Path, tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "ws", {**WORKSPACE, "calc.py": "def add(a, b):\n    return a + b\n"}
    )
    env = {k: v for k, v in os.environ.items() if k != "CONDA_PREFIX"}
    done = run_fix(root, {**env, "VIRTUAL_ENV": str(pytest_env)})
    assert done.returncode == 0, done.stdout + done.stderr
    python = f"{pytest_env / 'bin' / 'python'}"
    assert f"tests run with {python} (`$VIRTUAL_ENV` of the editor's environment)" in done.stderr
    assert (root / "ran-with").read_text() == str(pytest_env)
    report = json.loads((root / "r.json").read_text())
    assert report["python"] == {
        "path": python,
        "source": "virtual-env",
        "reason": "`$VIRTUAL_ENV` of the editor's environment",
    }

    # The folder's own .venv comes first, and without pytest it is one line that says so.
    bare_venv(root / ".venv")
    done = run_fix(root, {**env, "VIRTUAL_ENV": str(pytest_env)})
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if ln.startswith("oci-lsp:")]
    own = root.resolve() / ".venv" / "bin" / "python"
    assert line.startswith(f"oci-lsp: pytest is not installed for {own} (`.venv` in the folder)")
