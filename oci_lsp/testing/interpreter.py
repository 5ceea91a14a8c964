"""Which interpreter runs a project's tests, and why it was chosen.

The first of these that names an existing interpreter wins:

1. `tests.python`, from any settings source: a path (relative to the folder, `~` and
   `${workspaceFolder}` expanded), a virtualenv directory, or a name looked up on PATH. An
   explicit choice is kept even when it does not exist, so the run says what is wrong with it.
2. The interpreter selected in the editor (the VS Code extension sends the Python
   extension's choice), below an explicit `tests.python` from any source.
3. `$VIRTUAL_ENV` when it lies inside the folder: the folder's own environment, activated.
4. `.venv` or `venv` in the folder.
5. `$VIRTUAL_ENV`, then `$CONDA_PREFIX` (not conda's base environment), of the environment the
   editor was started in. They come after the folder's own `.venv`: one shell's activated
   environment holds for every folder of the window and is often not the project's (oci-lsp's
   own virtualenv, the last project worked on); uv makes the same call. The server's own
   environment never counts here: activating it only says where oci-lsp is installed.
6. The environment of the tool the project uses (only when it uses it, only reading or asking,
   never creating): uv (`$UV_PROJECT_ENVIRONMENT` or the `.venv` of the uv workspace: what
   `uv run` uses, no call needed), Hatch (`hatch env find`), PDM (the interpreter it saved in
   `.pdm-python`; `pdm info --python` would create a virtualenv when there is none, so it is
   never asked), Poetry (`poetry env info -p`).
7. `.venv` or `venv` in a folder above (a monorepo's shared environment).
8. conda's base environment (active in every shell by default, so it says little).
9. The server's own interpreter.

Asking a tool takes up to a second (Poetry ~0.7 s), so its answer is kept per folder until a
file that decides it changes; after a minute it is asked again in the background while the
kept answer serves. The tools run as subprocesses awaited on the event loop, never blocking it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

log = logging.getLogger(__name__)

Source = Literal[
    "setting",
    "editor",
    "virtual-env",
    "venv",
    "conda",
    "uv",
    "hatch",
    "pdm",
    "poetry",
    "venv-above",
    "conda-base",
    "server",
]

VENV_NAMES = (".venv", "venv")
# The files that decide a tool's answer: a change to one of them asks the tool again.
PROJECT_FILES = (
    "pyproject.toml",
    "uv.lock",
    "hatch.toml",
    "pdm.lock",
    ".pdm-python",
    "poetry.lock",
    "poetry.toml",
)
PROBE_TIMEOUT = 10.0  # seconds one tool may take to answer
RECHECK_AFTER = 60.0  # seconds after which a kept tool answer is asked again, in the background
# What a tool's subprocess must never do: use the editor's activated environment (it was
# considered before, and the tool would report it as its own), or reach an index to install.
_TOOL_ENV_DROP = ("VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV")
_TOOL_ENV_SET = {
    "PIP_NO_INDEX": "1",
    "PIP_NO_INPUT": "1",
    "UV_OFFLINE": "1",
    "POETRY_NO_INTERACTION": "1",
    "PDM_NON_INTERACTIVE": "1",
    "NO_COLOR": "1",
}


@dataclass(frozen=True)
class Interpreter:
    path: str
    source: Source  # a stable keyword, for clients
    reason: str  # why it was chosen, in words a user understands

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "source": self.source, "reason": self.reason}


def pytest_missing_message(python: str, reason: str) -> str:
    """The one message for an interpreter without pytest: which one, why it, what to do."""
    why = f" ({reason})" if reason else ""
    return (
        f"pytest is not installed for {python}{why}: run `{python} -m pip install pytest`,"
        " or set `tests.python` to the interpreter that has the project's test dependencies"
    )


def venv_python(directory: Path) -> Path | None:
    """The interpreter of a virtualenv (or conda) directory, if it has one."""
    for candidate in (directory / "bin" / "python", directory / "Scripts" / "python.exe"):
        if candidate.exists():
            return candidate
    return None


def environment_stamp(python: str) -> tuple[int, ...]:
    """When the packages of an interpreter's environment last changed (site-packages
    directories gain an entry on every install), to notice `pip install pytest`."""
    prefix = Path(python).parent.parent
    stamps = []
    for pattern in ("lib/python*/site-packages", "lib/python*/dist-packages", "Lib/site-packages"):
        for directory in sorted(prefix.glob(pattern)):
            with contextlib.suppress(OSError):
                stamps.append(directory.stat().st_mtime_ns)
    return tuple(stamps)


def has_pytest(python: Path) -> bool:
    """Whether a virtualenv's interpreter has pytest installed (a look at its files)."""
    prefix = python.parent.parent
    return (
        any(prefix.glob("lib/python*/site-packages/pytest/__init__.py"))
        or (prefix / "Lib" / "site-packages" / "pytest" / "__init__.py").exists()
    )


def _same_path(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _inside(path: Path, folder: Path) -> bool:
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(folder))
    except ValueError:
        return False
    return True


def configured_python(root: Path, value: str, search_path: str | None = None) -> Path:
    """`tests.python` as a path: `${workspaceFolder}` and `~` expanded, relative to the
    folder, a bare name looked up on PATH, a virtualenv directory turned into its python."""
    text = value.replace("${workspaceFolder}", str(root))
    if os.sep not in text and "/" not in text and not (root / text).exists():
        found = shutil.which(text, path=search_path)
        if found:
            return Path(found)
    path = Path(text).expanduser()
    path = path if path.is_absolute() else root / path
    if path.is_dir():
        return venv_python(path) or path
    return path


@dataclass
class _ToolAnswer:
    stamp: tuple[Any, ...]
    task: asyncio.Task[Interpreter | None]
    at: float = field(default_factory=time.monotonic)
    refresh: asyncio.Task[Interpreter | None] | None = None


Runner = Callable[[list[str], Path, Mapping[str, str]], Awaitable[str | None]]


class Interpreters:
    """The interpreter of each project root; the tools' answers kept until they may change."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        server_python: str = sys.executable,
        server_prefix: str = sys.prefix,
        run_tool: Runner | None = None,
    ) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self.server_python = server_python
        self.server_prefix = server_prefix
        self.run_tool = run_tool or run_tool_command
        self._tools: dict[Path, _ToolAnswer] = {}
        self._last: dict[Path, Interpreter] = {}  # to log a change of interpreter once

    async def find(
        self, root: Path, configured: str | None = None, editor: str | None = None
    ) -> Interpreter:
        """The interpreter that runs root's tests (the order in this module's docstring)."""
        found = self.before_tools(root, configured, editor)
        if found is None:
            found = await self._tool_environment(root)
        if found is None:
            found = self.after_tools(root)
        if self._last.get(root) != found:
            log.info("tests in %s run with %s (%s)", root, found.path, found.reason)
        self._last[root] = found
        return found

    def last(self, root: Path) -> Interpreter | None:
        """The last answer for root, without looking again (None before the first)."""
        return self._last.get(root)

    # -- the cheap steps: a few stats ----------------------------------------------------------

    def before_tools(
        self, root: Path, configured: str | None, editor: str | None
    ) -> Interpreter | None:
        if configured:
            return Interpreter(
                str(configured_python(root, configured, self.environ.get("PATH"))),
                "setting",
                "the `tests.python` setting",
            )
        if editor:
            path = Path(editor)
            python = venv_python(path) if path.is_dir() else path
            if python is not None and python.exists():
                return Interpreter(str(python), "editor", "selected in the editor")
            log.info("the editor's interpreter %s does not exist; looking further", editor)
        active = self._activated("VIRTUAL_ENV")
        if active is not None and _inside(active, root):
            return self._virtual_env(active)
        for name in VENV_NAMES:
            python = venv_python(root / name)
            if python is not None:
                return Interpreter(str(python), "venv", f"`{name}` in the folder")
        if active is not None:
            return self._virtual_env(active)
        conda = self._activated("CONDA_PREFIX")
        if conda is not None and not self._conda_base(conda):
            python = venv_python(conda)
            if python is not None:
                name = self.environ.get("CONDA_DEFAULT_ENV") or conda.name
                return Interpreter(
                    str(python),
                    "conda",
                    f"`$CONDA_PREFIX` of the editor's environment (conda environment {name})",
                )
        return None

    def after_tools(self, root: Path) -> Interpreter:
        for parent in root.parents:
            for name in VENV_NAMES:
                python = venv_python(parent / name)
                if python is not None:
                    return Interpreter(str(python), "venv-above", f"`{name}` in {parent}")
        conda = self._activated("CONDA_PREFIX")
        if conda is not None:
            python = venv_python(conda)
            if python is not None:
                return Interpreter(str(python), "conda-base", "conda's base environment")
        for variable in ("VIRTUAL_ENV", "CONDA_PREFIX"):
            value = self.environ.get(variable)
            if value and _same_path(value, self.server_prefix):
                return Interpreter(
                    self.server_python,
                    "server",
                    f"the server's own interpreter, the active `${variable}`",
                )
        return Interpreter(
            self.server_python, "server", "the server's own interpreter: no project environment"
        )

    def _activated(self, variable: str) -> Path | None:
        """An environment variable's environment, unless it is the server's own."""
        value = self.environ.get(variable)
        if not value or not os.path.isdir(value) or _same_path(value, self.server_prefix):
            return None
        return Path(value)

    def _virtual_env(self, active: Path) -> Interpreter | None:
        python = venv_python(active)
        if python is None:
            return None
        return Interpreter(str(python), "virtual-env", "`$VIRTUAL_ENV` of the editor's environment")

    def _conda_base(self, prefix: Path) -> bool:
        if self.environ.get("CONDA_DEFAULT_ENV") == "base":
            return True
        conda_exe = self.environ.get("CONDA_EXE")
        return conda_exe is not None and _same_path(Path(conda_exe).parent.parent, prefix)

    # -- the project's tool: cached ---------------------------------------------------------------

    async def _tool_environment(self, root: Path) -> Interpreter | None:
        stamp = project_stamp(root)
        answer = self._tools.get(root)
        if answer is not None and answer.task.done() and not answer.task.cancelled():
            kept = answer.task.result()
            if kept is not None and not Path(kept.path).exists():
                answer = None  # the environment was removed
        if answer is None or answer.stamp != stamp:
            answer = _ToolAnswer(stamp, asyncio.ensure_future(self.ask_tools(root)))
            self._tools[root] = answer
        elif answer.task.done() and time.monotonic() - answer.at > RECHECK_AFTER:
            self._refresh(root, answer)
        return await asyncio.shield(answer.task)

    def _refresh(self, root: Path, answer: _ToolAnswer) -> None:
        """Ask again in the background; the kept answer serves until the new one is in."""
        if answer.refresh is not None:
            return
        task = asyncio.ensure_future(self.ask_tools(root))
        answer.refresh = task

        def done(task: asyncio.Task[Interpreter | None]) -> None:
            if task.cancelled() or task.exception() is not None:
                answer.refresh = None
                answer.at = time.monotonic()
                return
            if self._tools.get(root) is answer:
                self._tools[root] = _ToolAnswer(answer.stamp, task)

        task.add_done_callback(done)

    async def ask_tools(self, root: Path) -> Interpreter | None:
        """The environment of the tool(s) the project uses, in the order uv, Hatch, PDM,
        Poetry; each only when the project uses it (and, for a command, when it is installed)."""
        tool = _table(read_pyproject(root), "tool")
        for probe in (self._uv, self._hatch, self._pdm, self._poetry):
            try:
                found = await probe(root, tool)
            except Exception:  # a tool's odd answer must not stop the tests
                log.exception("asking %s about %s", probe.__name__.strip("_"), root)
                continue
            if found is not None:
                return found
        return None

    async def _uv(self, root: Path, tool: Mapping[str, Any]) -> Interpreter | None:
        workspace = next((d for d in (root, *root.parents) if (d / "uv.lock").exists()), None)
        if workspace is None:
            if "uv" not in tool:
                return None
            workspace = root
        configured = self.environ.get("UV_PROJECT_ENVIRONMENT")
        where = workspace / configured if configured else workspace / ".venv"
        python = venv_python(where)
        if python is None:
            return None
        why = "`$UV_PROJECT_ENVIRONMENT`" if configured else f"`.venv` of {workspace}"
        return Interpreter(str(python), "uv", f"uv project environment ({why})")

    async def _hatch(self, root: Path, tool: Mapping[str, Any]) -> Interpreter | None:
        hatch_toml = read_toml(root / "hatch.toml")
        uses = "hatch" in tool or (root / "hatch.toml").exists()
        hatch = self._which("hatch")
        if not uses or hatch is None:
            return None
        # Any hatch command installs the environment plugins a project requires first.
        if _table(_table(tool, "hatch"), "env").get("requires") or _table(hatch_toml, "env").get(
            "requires"
        ):
            log.info("not asking hatch in %s: it would install its environment plugins", root)
            return None
        found: list[tuple[str, Path]] = []
        for name in ("default", "hatch-test"):
            said = await self.run_tool([hatch, "env", "find", name], root, self._tool_env())
            for line in (said or "").splitlines():
                python = venv_python(Path(line.strip())) if line.strip() else None
                if python is not None:
                    found.append((Path(line.strip()).name if name != "default" else name, python))
            if any(has_pytest(p) for _, p in found):
                break
        if not found:
            return None
        name, python = next(((n, p) for n, p in found if has_pytest(p)), found[0])
        return Interpreter(str(python), "hatch", f"Hatch environment `{name}` (`hatch env find`)")

    async def _pdm(self, root: Path, tool: Mapping[str, Any]) -> Interpreter | None:
        saved = root / ".pdm-python"
        if not ("pdm" in tool or (root / "pdm.lock").exists() or saved.exists()):
            return None
        try:
            text = saved.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        if not text or not Path(text).exists():
            return None
        return Interpreter(text, "pdm", "PDM's interpreter of the project (`.pdm-python`)")

    async def _poetry(self, root: Path, tool: Mapping[str, Any]) -> Interpreter | None:
        if "poetry" not in tool and not (root / "poetry.lock").exists():
            return None
        poetry = self._which("poetry")
        if poetry is None:
            return None
        said = await self.run_tool([poetry, "env", "info", "-p"], root, self._tool_env())
        lines = (said or "").strip().splitlines()
        python = venv_python(Path(lines[-1].strip())) if lines else None
        if python is None:
            return None
        return Interpreter(str(python), "poetry", "Poetry environment (`poetry env info -p`)")

    def _which(self, name: str) -> str | None:
        return shutil.which(name, path=self.environ.get("PATH", os.defpath))

    def _tool_env(self) -> dict[str, str]:
        env = {k: v for k, v in self.environ.items() if k not in _TOOL_ENV_DROP}
        env.update(_TOOL_ENV_SET)
        return env


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def read_toml(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    return data


def read_pyproject(root: Path) -> dict[str, Any]:
    return read_toml(root / "pyproject.toml")


def project_stamp(root: Path) -> tuple[Any, ...]:
    """The files that decide a tool's answer, as (name, mtime, size); cheap enough per run."""
    stamp: list[Any] = []
    for name in PROJECT_FILES:
        try:
            st = (root / name).stat()
        except OSError:
            continue
        stamp.append((name, st.st_mtime_ns, st.st_size))
    return tuple(stamp)


async def run_tool_command(
    argv: list[str], cwd: Path, env: Mapping[str, str], timeout: float = PROBE_TIMEOUT
) -> str | None:
    """A tool's standard output, or None when it failed, said nothing or took too long.
    Its own process group, killed whole on timeout; no stdin, so it can never ask."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        log.info("could not run %s: %s", argv[0], exc)
        return None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        _kill_group(proc.pid)
        await proc.wait()
        log.info("%s took longer than %g s; not used", " ".join(argv), timeout)
        return None
    except asyncio.CancelledError:
        _kill_group(proc.pid)
        raise
    if proc.returncode != 0:
        log.info(
            "%s exited %s: %s", " ".join(argv), proc.returncode, err.decode(errors="replace")[-500:]
        )
        return None
    return out.decode(errors="replace")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
