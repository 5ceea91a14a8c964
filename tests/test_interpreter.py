"""Which interpreter runs a project's tests: the order, on real directories and virtualenvs.

The tool probes are checked twice: against the real tools (uv, PDM, Poetry, Hatch from PyPI,
each in a cached virtualenv of its own, never ours), where our answer must equal the tool's
own, and at unit level through their documented output, for what the real ones cannot show
cheaply (a plugin install that must not happen, a tool that hangs, the cache).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from oci_lsp.server.workspaces import Folder, SettingsSources
from oci_lsp.testing.interpreter import (
    Interpreter,
    Interpreters,
    environment_stamp,
    pytest_missing_message,
    run_tool_command,
)
from tests.venvs import cached_venv

SERVER_PREFIX = "/nonexistent/oci-lsp-server-env"  # the server's own environment, in most tests
SERVER_PYTHON = "/nonexistent/oci-lsp-server-env/bin/python"


def make_venv(path: Path) -> Path:
    """A real virtualenv (without pip: fast) and its interpreter."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path / "bin" / "python"


def finder(environ: Mapping[str, str] | None = None) -> Interpreters:
    env = {"PATH": os.environ.get("PATH", os.defpath), **(environ or {})}
    return Interpreters(env, server_python=SERVER_PYTHON, server_prefix=SERVER_PREFIX)


def find(
    interpreters: Interpreters,
    root: Path,
    configured: str | None = None,
    editor: str | None = None,
) -> Interpreter:
    return asyncio.run(interpreters.find(root, configured, editor))


# -- the order -------------------------------------------------------------------------------


def test_nothing_found_is_the_servers_own_interpreter(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    found = find(finder(), root)
    assert (found.path, found.source) == (SERVER_PYTHON, "server")
    assert "server's own" in found.reason


def test_tests_python_wins_over_everything(tmp_path: Path) -> None:
    root = tmp_path / "project"
    make_venv(root / ".venv")
    editor = make_venv(tmp_path / "editor-env")
    active = make_venv(tmp_path / "active")
    chosen = make_venv(tmp_path / "chosen")
    interpreters = finder({"VIRTUAL_ENV": str(active.parent.parent)})
    found = find(interpreters, root, str(chosen), str(editor))
    assert (found.path, found.source) == (str(chosen), "setting")
    assert found.reason == "the `tests.python` setting"


def test_tests_python_forms(tmp_path: Path) -> None:
    root = tmp_path / "project"
    python = make_venv(root / "envs" / "py")
    interpreters = finder()
    # Relative to the folder; a virtualenv directory; VS Code's ${workspaceFolder}; a name on PATH.
    assert find(interpreters, root, "envs/py/bin/python").path == str(python)
    assert find(interpreters, root, "envs/py").path == str(python)
    assert find(interpreters, root, "${workspaceFolder}/envs/py/bin/python").path == str(python)
    on_path = Interpreters({"PATH": str(python.parent)}, server_prefix=SERVER_PREFIX)
    assert asyncio.run(on_path.find(root, "python")).path == str(python)
    # An explicit interpreter that does not exist is kept: the run says what is wrong with it.
    missing = find(interpreters, root, "nowhere/python")
    assert (missing.path, missing.source) == (str(root / "nowhere/python"), "setting")


def test_the_editors_interpreter_comes_next(tmp_path: Path) -> None:
    root = tmp_path / "project"
    make_venv(root / ".venv")
    editor = make_venv(tmp_path / "editor-env")
    active = make_venv(tmp_path / "active")
    interpreters = finder({"VIRTUAL_ENV": str(active.parent.parent)})
    found = find(interpreters, root, None, str(editor))
    assert (found.path, found.source, found.reason) == (
        str(editor),
        "editor",
        "selected in the editor",
    )
    # The Python extension may name the environment's folder rather than its interpreter.
    assert find(interpreters, root, None, str(editor.parent.parent)).path == str(editor)
    # One that no longer exists is passed over.
    assert find(interpreters, root, None, str(tmp_path / "gone/bin/python")).source == "venv"


def test_the_folders_venv_wins_over_an_environment_activated_elsewhere(tmp_path: Path) -> None:
    """An editor started from a shell with another virtualenv active (oci-lsp's own, the last
    project's) must not run this project's tests there."""
    root = tmp_path / "project"
    own = make_venv(root / ".venv")
    elsewhere = make_venv(tmp_path / "elsewhere")
    found = find(finder({"VIRTUAL_ENV": str(elsewhere.parent.parent)}), root)
    assert (found.path, found.source, found.reason) == (str(own), "venv", "`.venv` in the folder")
    # `venv` too, when there is no `.venv`.
    other = tmp_path / "other"
    plain = make_venv(other / "venv")
    assert find(finder(), other).path == str(plain)


def test_an_activated_environment_inside_the_folder_comes_first(tmp_path: Path) -> None:
    root = tmp_path / "project"
    make_venv(root / ".venv")
    activated = make_venv(root / ".venv-3.13")
    found = find(finder({"VIRTUAL_ENV": str(activated.parent.parent)}), root)
    assert (found.path, found.source) == (str(activated), "virtual-env")
    assert found.reason == "`$VIRTUAL_ENV` of the editor's environment"


def test_virtual_env_then_conda_then_above(tmp_path: Path) -> None:
    root = tmp_path / "mono" / "packages" / "project"
    root.mkdir(parents=True)
    above = make_venv(tmp_path / "mono" / ".venv")
    active = make_venv(tmp_path / "active")
    conda = make_venv(tmp_path / "conda" / "envs" / "work")
    base = make_venv(tmp_path / "conda-root")
    both = {"VIRTUAL_ENV": str(active.parent.parent), "CONDA_PREFIX": str(conda.parent.parent)}
    assert find(finder(both), root).path == str(active)
    found = find(finder({**both, "VIRTUAL_ENV": "", "CONDA_DEFAULT_ENV": "work"}), root)
    assert (found.path, found.source) == (str(conda), "conda")
    assert "conda environment work" in found.reason
    # Conda's base environment is active in every shell: a `.venv` above wins over it.
    found = find(
        finder({"CONDA_PREFIX": str(base.parent.parent), "CONDA_DEFAULT_ENV": "base"}), root
    )
    assert (found.path, found.source) == (str(above), "venv-above")
    assert found.reason == f"`.venv` in {tmp_path / 'mono'}"
    (tmp_path / "mono" / ".venv").rename(tmp_path / "mono" / "old")
    found = find(
        finder({"CONDA_PREFIX": str(base.parent.parent), "CONDA_DEFAULT_ENV": "base"}), root
    )
    assert (found.path, found.source) == (str(base), "conda-base")


def test_the_servers_own_environment_activated_says_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """VIRTUAL_ENV of the shell is oci-lsp's own virtualenv: the project's `.venv` above wins."""
    root = tmp_path / "mono" / "project"
    root.mkdir(parents=True)
    above = make_venv(tmp_path / "mono" / ".venv")
    server = make_venv(tmp_path / "oci-lsp-env")
    monkeypatch.setenv("VIRTUAL_ENV", str(server.parent.parent))
    interpreters = Interpreters(server_python=str(server), server_prefix=str(server.parent.parent))
    assert find(interpreters, root).path == str(above)
    # Without one above, it is the server's own, and the reason says it is the active one too.
    (tmp_path / "mono" / ".venv").rename(tmp_path / "mono" / "old")
    found = find(interpreters, root)
    assert (found.path, found.source) == (str(server), "server")
    assert found.reason == "the server's own interpreter, the active `$VIRTUAL_ENV`"


def test_the_real_environment_variables_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    active = make_venv(tmp_path / "active")
    monkeypatch.setenv("VIRTUAL_ENV", str(active.parent.parent))
    monkeypatch.delenv("CONDA_PREFIX", raising=False)
    assert find(Interpreters(server_prefix=SERVER_PREFIX), root).path == str(active)


def test_the_missing_pytest_message_names_the_interpreter_and_why() -> None:
    message = pytest_missing_message("/p/.venv/bin/python", "`.venv` in the folder")
    assert message.startswith("pytest is not installed for /p/.venv/bin/python (`.venv` in")
    assert "`/p/.venv/bin/python -m pip install pytest`" in message
    assert "`tests.python`" in message


def test_an_install_changes_the_environments_stamp(tmp_path: Path) -> None:
    python = make_venv(tmp_path / "env")
    before = environment_stamp(str(python))
    assert before  # a virtualenv has a site-packages directory
    [site] = (tmp_path / "env").glob("lib/python*/site-packages")
    os.utime(site, ns=(1, 1))  # what an install does to it: a new entry, a new mtime
    assert environment_stamp(str(python)) != before


# -- the tools, through their documented output ------------------------------------------------


class Tools:
    """Answers tool commands as the tools document them, and records what was asked."""

    def __init__(self, answers: Mapping[str, str | None], delay: float = 0.0) -> None:
        self.answers = answers
        self.delay = delay
        self.calls: list[tuple[list[str], dict[str, str]]] = []

    async def __call__(self, argv: list[str], cwd: Path, env: Mapping[str, str]) -> str | None:
        self.calls.append((argv, dict(env)))
        await asyncio.sleep(self.delay)
        return self.answers.get(" ".join([Path(argv[0]).name, *argv[1:]]))


def tool_path(tmp_path: Path, *names: str) -> str:
    """A PATH directory where these tools are "installed" (only their presence is read)."""
    bin_dir = tmp_path / "tools-bin"
    bin_dir.mkdir(exist_ok=True)
    for name in names:
        script = bin_dir / name
        script.write_text("#!/bin/sh\nexit 1\n")
        script.chmod(0o755)
    return str(bin_dir)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


POETRY_PROJECT = '[tool.poetry]\nname = "p"\nversion = "0.1.0"\n'


def test_poetry_is_asked_without_the_editors_environment(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write(root / "pyproject.toml", POETRY_PROJECT)
    env = make_venv(tmp_path / "cache" / "p-abc-py3.11")
    tools = Tools({"poetry env info -p": f"{env.parent.parent}\n"})
    conda_base = make_venv(tmp_path / "conda-root")
    environ = {
        "PATH": tool_path(tmp_path, "poetry"),
        "CONDA_PREFIX": str(conda_base.parent.parent),
        "CONDA_DEFAULT_ENV": "base",
    }
    found = find(Interpreters(environ, server_prefix=SERVER_PREFIX, run_tool=tools), root)
    assert (found.path, found.source) == (str(env), "poetry")
    assert found.reason == "Poetry environment (`poetry env info -p`)"
    [(argv, tool_env)] = tools.calls
    assert argv[1:] == ["env", "info", "-p"]
    # Poetry would report an activated environment as the project's; and nothing installs.
    assert "CONDA_PREFIX" not in tool_env and "VIRTUAL_ENV" not in tool_env
    assert tool_env["PIP_NO_INDEX"] == "1" and tool_env["UV_OFFLINE"] == "1"


def test_a_tool_is_asked_only_when_installed_and_used(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write(root / "pyproject.toml", '[project]\nname = "p"\nversion = "1"\n')
    tools = Tools({})
    installed = {"PATH": tool_path(tmp_path, "poetry", "hatch")}
    assert find(Interpreters(installed, server_prefix=SERVER_PREFIX, run_tool=tools), root).source
    assert tools.calls == []  # the project uses neither
    write(root / "poetry.lock", "")
    bare = {"PATH": str(tmp_path / "empty")}
    found = find(Interpreters(bare, server_prefix=SERVER_PREFIX, run_tool=tools), root)
    assert found.source == "server" and tools.calls == []  # used, but not installed


def test_hatch_prefers_the_environment_that_has_pytest(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write(root / "pyproject.toml", '[project]\nname = "p"\nversion = "1"\n[tool.hatch.version]\n')
    data = tmp_path / "hatch" / "env" / "virtual" / "p" / "hash"
    default = make_venv(data / "p")
    test_env = make_venv(data / "hatch-test.py3.11")
    [site] = (data / "hatch-test.py3.11").glob("lib/python*/site-packages")
    write(site / "pytest" / "__init__.py", "")
    tools = Tools(
        {
            "hatch env find default": f"{data / 'p'}\n",
            "hatch env find hatch-test": f"{data / 'hatch-test.py3.12'}\n"
            f"{data / 'hatch-test.py3.11'}\n",
        }
    )
    environ = {"PATH": tool_path(tmp_path, "hatch")}
    found = find(Interpreters(environ, server_prefix=SERVER_PREFIX, run_tool=tools), root)
    assert (found.path, found.source) == (str(test_env), "hatch")
    assert found.reason == "Hatch environment `hatch-test.py3.11` (`hatch env find`)"
    # With pytest in the default environment, hatch-test is not asked about.
    [site] = (data / "p").glob("lib/python*/site-packages")
    write(site / "pytest" / "__init__.py", "")
    tools.calls.clear()
    found = find(Interpreters(environ, server_prefix=SERVER_PREFIX, run_tool=tools), root)
    assert found.path == str(default) and len(tools.calls) == 1


def test_hatch_is_not_asked_when_it_would_install_plugins(tmp_path: Path) -> None:
    """Every hatch command first installs `[tool.hatch.env] requires` (seen with hatch 1.18)."""
    root = tmp_path / "project"
    write(root / "pyproject.toml", '[tool.hatch.env]\nrequires = ["hatch-pip-compile"]\n')
    tools = Tools({})
    environ = {"PATH": tool_path(tmp_path, "hatch")}
    assert find(Interpreters(environ, server_prefix=SERVER_PREFIX, run_tool=tools), root)
    assert tools.calls == []


def test_pdm_is_read_from_its_saved_interpreter(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write(root / "pyproject.toml", "[tool.pdm]\ndistribution = false\n")
    env = make_venv(tmp_path / "pdm-envs" / "project-abc")
    write(root / ".pdm-python", f"{env}\n")
    found = find(finder(), root)
    assert (found.path, found.source) == (str(env), "pdm")
    assert found.reason == "PDM's interpreter of the project (`.pdm-python`)"


def test_uv_reads_its_project_environment(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    write(workspace / "uv.lock", "version = 1\n")
    member = workspace / "packages" / "a"
    write(member / "pyproject.toml", '[project]\nname = "a"\nversion = "1"\n')
    env = make_venv(workspace / "envs" / "dev")
    found = find(finder({"UV_PROJECT_ENVIRONMENT": "envs/dev"}), member)
    assert (found.path, found.source) == (str(env), "uv")
    assert found.reason == "uv project environment (`$UV_PROJECT_ENVIRONMENT`)"


def test_a_tools_answer_is_kept_until_its_files_change(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write(root / "pyproject.toml", POETRY_PROJECT)
    env = make_venv(tmp_path / "cache" / "env")
    tools = Tools({"poetry env info -p": f"{env.parent.parent}\n"})
    environ = {"PATH": tool_path(tmp_path, "poetry")}
    interpreters = Interpreters(environ, server_prefix=SERVER_PREFIX, run_tool=tools)

    async def scenario() -> None:
        # Two runs asking at once share one question.
        first, second = await asyncio.gather(interpreters.find(root), interpreters.find(root))
        assert first == second and len(tools.calls) == 1
        await interpreters.find(root)
        assert len(tools.calls) == 1
        write(root / "poetry.lock", "# locked\n")
        await interpreters.find(root)
        assert len(tools.calls) == 2
        # The environment removed: asked again.
        (tmp_path / "cache" / "env" / "bin" / "python").unlink()
        again = await interpreters.find(root)
        assert len(tools.calls) == 3 and again.source == "server"

    asyncio.run(scenario())


def test_a_slow_tool_never_blocks_the_loop_and_a_hung_one_is_dropped(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write(root / "pyproject.toml", POETRY_PROJECT)
    bin_dir = tmp_path / "bin"
    write(bin_dir / "poetry", f"#!/bin/sh\n{shutil.which('sleep')} 617\n").chmod(0o755)
    environ = {"PATH": str(bin_dir)}

    async def hung(argv: list[str], cwd: Path, env: Mapping[str, str]) -> str | None:
        return await run_tool_command(argv, cwd, env, timeout=1.0)

    interpreters = Interpreters(environ, server_prefix=SERVER_PREFIX, run_tool=hung)
    order: list[str] = []

    async def scenario() -> Interpreter:
        async def meanwhile() -> None:
            await asyncio.sleep(0.01)
            order.append("the loop ran")

        other = asyncio.ensure_future(meanwhile())
        found = await interpreters.find(root)
        order.append("found")
        await other
        return found

    found = asyncio.run(scenario())
    assert order == ["the loop ran", "found"]
    assert found.source == "server"
    # The hung tool's process group is gone, its child too.
    left = subprocess.run(["pgrep", "-f", "sleep 617"], capture_output=True, text=True)
    assert left.stdout.strip() == ""


# -- the real tools ----------------------------------------------------------------------------


def tool_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose tool caches, configs and data live under tmp_path."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX")}
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        env[name] = str(tmp_path / "home" / name.lower())
    env["HOME"] = str(tmp_path / "home")
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


def tool_bin(name: str, requirement: str) -> Path:
    return cached_venv(f"tool-{name}", [requirement]).parent


def run(argv: list[str], cwd: Path, env: Mapping[str, str]) -> str:
    done = subprocess.run(argv, cwd=cwd, env=dict(env), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def tools_interpreters(env: Mapping[str, str], bin_dir: Path) -> Interpreters:
    return Interpreters(
        {**env, "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}"}, server_prefix=SERVER_PREFIX
    )


WHERE = "import sys; print(sys.executable)"


def test_uv_for_real(tmp_path: Path) -> None:
    """The environment uv runs a workspace member's code in, read without asking uv."""
    bin_dir = tool_bin("uv", "uv==0.13.8")
    env = {**tool_env(tmp_path), "UV_PROJECT_ENVIRONMENT": "envs/dev"}
    workspace = tmp_path / "ws"
    write(
        workspace / "pyproject.toml",
        '[project]\nname = "ws"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n'
        '[tool.uv]\npackage = false\n[tool.uv.workspace]\nmembers = ["packages/*"]\n',
    )
    member = workspace / "packages" / "a"
    write(member / "pyproject.toml", '[project]\nname = "a"\nversion = "0.1.0"\n')
    uv = str(bin_dir / "uv")
    run(
        [uv, "sync", "--offline", "--no-install-workspace", "--python", sys.executable],
        workspace,
        env,
    )
    theirs = run([uv, "run", "--no-sync", "--offline", "python", "-c", WHERE], member, env)
    found = find(tools_interpreters(env, bin_dir), member)
    assert (found.path, found.source) == (theirs, "uv")


def test_pdm_for_real(tmp_path: Path) -> None:
    """PDM's chosen interpreter, read from the file PDM keeps it in, never by asking PDM
    (`pdm info --python` creates a virtualenv and writes `.pdm-python` when there is none)."""
    bin_dir = tool_bin("pdm", "pdm==2.29.4")
    env = tool_env(tmp_path)
    root = tmp_path / "project"
    write(root / "pyproject.toml", '[project]\nname = "p"\nversion = "0.1.0"\n[tool.pdm]\n')
    elsewhere = make_venv(tmp_path / "pdm-venvs" / "p-3.11")
    pdm = str(bin_dir / "pdm")
    assert find(tools_interpreters(env, bin_dir), root).source == "server"
    assert not (root / ".pdm-python").exists() and not (root / ".venv").exists()  # nothing made
    run([pdm, "use", "--ignore-remembered", "-f", str(elsewhere)], root, env)
    theirs = run([pdm, "info", "--python"], root, env)
    found = find(tools_interpreters(env, bin_dir), root)
    assert (found.path, found.source) == (theirs, "pdm")


# The tools that are asked: (requirement, pyproject.toml, how a user makes the environment,
# how the tool itself says which interpreter runs the project's code).
ASKED_TOOLS = {
    "poetry": (
        "poetry==2.5.1",
        POETRY_PROJECT + 'package-mode = false\n[tool.poetry.dependencies]\npython = ">=3.10"\n',
        ["env", "use", sys.executable],
        ["env", "info", "--executable"],
    ),
    "hatch": (
        "hatch==1.18.2",
        '[project]\nname = "p"\nversion = "0.1.0"\n'
        "[tool.hatch.envs.default]\nskip-install = true\ndependencies = []\n",
        ["env", "create"],
        ["run", "python", "-c", WHERE],
    ),
}


@pytest.mark.parametrize("tool", sorted(ASKED_TOOLS))
def test_asked_tools_for_real(tool: str, tmp_path: Path) -> None:
    requirement, pyproject, make, where = ASKED_TOOLS[tool]
    bin_dir = tool_bin(tool, requirement)
    env = tool_env(tmp_path)
    root = tmp_path / "project"
    write(root / "pyproject.toml", pyproject)
    executable = str(bin_dir / tool)
    # No environment yet: asking must not make one.
    assert find(tools_interpreters(env, bin_dir), root).source == "server"
    assert not list((tmp_path / "home").rglob("pyvenv.cfg"))
    assert not (root / ".venv").exists()
    run([executable, *make], root, env)
    theirs = run([executable, *where], root, env)
    found = find(tools_interpreters(env, bin_dir), root)
    assert found.source == tool
    assert os.path.samefile(found.path, theirs)


# -- the editor's selection reaches the server beside the settings -------------------------------


def test_the_editors_interpreter_is_not_a_setting(tmp_path: Path) -> None:
    folder = Folder(
        root=tmp_path,
        uri=tmp_path.as_uri(),
        client_settings={"editorInterpreter": "/a/bin/python", "tests": {"scope": "all"}},
    )
    window = SettingsSources(init_options={}, editor_interpreter="/window/bin/python")
    assert folder.resolve(window) == []  # not reported as an unknown setting
    assert folder.editor_interpreter == "/a/bin/python"  # the folder's own wins
    assert folder.settings.tests.scope == "all" and folder.settings.tests.python is None
    folder.client_settings = {"editorInterpreter": ""}
    folder.resolve(window)
    assert folder.editor_interpreter == "/window/bin/python"  # initializationOptions' one
