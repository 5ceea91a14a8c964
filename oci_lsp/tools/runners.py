"""Running ruff, mypy and pyright: on a candidate text of one module (without writing it into
the workspace) and on the whole workspace, under the workspace's own configuration.

The command lines (ROOT the workspace, PATH the module, PY the workspace's interpreter):

- ruff: `ruff check --output-format json --no-fix --no-cache --force-exclude
  --stdin-filename PATH -` with the text on stdin; the workspace: the same without the
  stdin part, `PATHS` or nothing (ruff's own default, the configuration's files).
- mypy: `PY -m mypy` (or a mypy on PATH with `--python-executable PY`) `-O json
  --show-absolute-path --cache-dir CACHE --shadow-file PATH SCRATCH PATH`, SCRATCH a
  temporary file holding the text; the workspace: the same without the shadow, `PATHS`,
  the configuration's `files`, or `.` when it names none. A mypy older than 1.11 has no
  `-O json`: its text format is read (`--show-column-numbers --show-error-end
  --show-error-codes --no-pretty --no-error-summary --no-color-output
  --hide-error-context`). CACHE is `$XDG_CACHE_HOME/oci-lsp/mypy/<hash of ROOT and the
  command>`: reruns are warm, and no `.mypy_cache` is written into the workspace.
- pyright: `pyright --outputjson --pythonpath PY PATH` run in a scratch mirror of ROOT in
  which PATH holds the text (tools/mirror.py); the workspace: `pyright --outputjson
  --pythonpath PY [PATHS]` in ROOT.

Every run has cwd ROOT (or its mirror), its own process group killed whole on timeout or
cancel, and resource limits (tools/processes.py). Exit codes: 0 nothing found, 1 findings
(all three); anything else is a ToolError unless the output held findings (mypy exits 2 on
a syntax error, a "blocking" error, with the error in its output).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from oci_lsp.tools.findings import Finding
from oci_lsp.tools.mirror import MirrorError, mirror_with, mirrored
from oci_lsp.tools.outputs import (
    mypy_json_findings,
    mypy_text_findings,
    pyright_findings,
    ruff_findings,
)
from oci_lsp.tools.processes import Completed, Timeout, last_line, run_limited

TOOLS = ("ruff", "mypy", "pyright")

_RUFF = ("check", "--output-format", "json", "--no-fix", "--no-cache", "--force-exclude")
_MYPY_JSON = ("-O", "json", "--show-absolute-path")
_MYPY_TEXT = (
    "--show-absolute-path",
    "--show-column-numbers",
    "--show-error-end",
    "--show-error-codes",
    "--no-pretty",
    "--no-error-summary",
    "--no-color-output",
    "--hide-error-context",
)
# mypy commands (argv) that turned out to have no `-O json`: their text format is read.
_mypy_without_json: set[tuple[str, ...]] = set()


@dataclass(frozen=True)
class ToolCommand:
    """How to run one tool, and where that was found (for messages)."""

    tool: str  # one of TOOLS
    argv: tuple[str, ...]  # the command before our own arguments
    origin: str  # "the workspace's interpreter", "PATH", "setting tools.ruff"


class ToolError(Exception):
    """The tool could not run, or said something we cannot read. str() is one line for the
    user: which tool, what went wrong, what to do."""


def find_tool(
    tool: str, python: str | None, override: Sequence[str] | None = None
) -> ToolCommand | None:
    """How to run `tool` for a workspace whose interpreter is `python`, or None when it is
    nowhere: the override (the user's command, as written) when given; else the tool beside
    `python` (its virtualenv's bin: mypy as `python -m mypy`, so it sees the workspace's
    packages); else the tool on PATH (a mypy there gets `--python-executable python` and
    pyright `--pythonpath python`, so they still see the workspace's packages). Pyright
    gets `--pythonpath` beside `python` too: it would otherwise ask the `python` on PATH,
    which need not be the workspace's. File checks only: cheap enough for every code action
    request."""
    if tool not in TOOLS:
        raise ValueError(f"unknown tool {tool!r}; one of {', '.join(TOOLS)}")
    if override:
        return ToolCommand(tool, tuple(override), f"setting tools.{tool}")
    bin_dir = Path(python).parent if python else None
    if bin_dir is not None and _executable(bin_dir / tool):
        if tool == "mypy":
            assert python is not None
            return ToolCommand(tool, (python, "-m", "mypy"), "the workspace's interpreter")
        argv: tuple[str, ...] = (str(bin_dir / tool),)
        if tool == "pyright" and python:
            argv += ("--pythonpath", python)
        return ToolCommand(tool, argv, "the workspace's interpreter")
    found = shutil.which(tool)
    if found is None:
        return None
    argv = (found,)
    if python and tool == "mypy":
        argv += ("--python-executable", python)
    elif python and tool == "pyright":
        argv += ("--pythonpath", python)
    return ToolCommand(tool, argv, "PATH")


async def check_text(
    command: ToolCommand, root: Path, path: Path, text: str, *, timeout: float = 60
) -> list[Finding]:
    """The tool's findings in the module `path` as if it held `text`, under the workspace's
    configuration, without writing `text` into the workspace. Only findings in `path`.
    Raises ToolError when the tool cannot run or answer."""
    if command.tool == "ruff":
        argv = (*command.argv, *_RUFF, "--stdin-filename", str(path), "-")
        done = await _run(command, argv, root, timeout, stdin=text.encode("utf-8"))
        found = _read(command, done, lambda: ruff_findings(done.stdout))
    elif command.tool == "mypy":
        scratch_dir = tempfile.mkdtemp(prefix="oci-lsp-mypy-")
        try:
            scratch = Path(scratch_dir) / path.name
            scratch.write_text(text, encoding="utf-8")
            found = await _mypy(
                command, root, ("--shadow-file", str(path), str(scratch), str(path)), timeout
            )
        finally:
            shutil.rmtree(scratch_dir, ignore_errors=True)
    elif command.tool == "pyright":
        try:
            with mirror_with(root, path, text) as scratch:
                argv = (*command.argv, "--outputjson", str(scratch / path.relative_to(root)))
                done = await _run(command, argv, scratch, timeout)

                def text_of(file: Path) -> str | None:
                    return text if _same(file, path) else _read_text(file)

                found = _read(
                    command,
                    done,
                    lambda: pyright_findings(
                        done.stdout, lambda name: mirrored(scratch, root, name), text_of
                    ),
                )
        except MirrorError as exc:
            raise ToolError(f"pyright cannot check {path.name}: {exc}") from exc
    else:
        raise ValueError(f"unknown tool {command.tool!r}")
    return sorted((f for f in found if _same(f.path, path)), key=lambda f: (f.line, f.column))


async def check_workspace(
    command: ToolCommand, root: Path, paths: Sequence[Path] = (), *, timeout: float = 300
) -> list[Finding]:
    """What the tool reports on the workspace: the files its configuration names (or its
    default), or only `paths`. Raises ToolError when the tool cannot run or answer."""
    names = tuple(str(p) for p in paths)
    if command.tool == "ruff":
        argv = (*command.argv, *_RUFF, *names)
        done = await _run(command, argv, root, timeout)
        found = _read(command, done, lambda: ruff_findings(done.stdout))
    elif command.tool == "mypy":
        try:
            found = await _mypy(command, root, names, timeout)
        except _MissingTarget:
            found = await _mypy(command, root, (".",), timeout)
    elif command.tool == "pyright":
        argv = (*command.argv, "--outputjson", *names)
        done = await _run(command, argv, root, timeout)
        found = _read(
            command,
            done,
            lambda: pyright_findings(done.stdout, lambda name: _absolute(root, name), _read_text),
        )
    else:
        raise ValueError(f"unknown tool {command.tool!r}")
    return sorted(found, key=lambda f: (str(f.path), f.line, f.column))


class _MissingTarget(Exception):
    """mypy was given no files and its configuration names none."""


async def _mypy(
    command: ToolCommand, root: Path, targets: Sequence[str], timeout: float
) -> list[Finding]:
    cache = ("--cache-dir", str(mypy_cache_dir(root, command)))
    if command.argv not in _mypy_without_json:
        done = await _run(command, (*command.argv, *_MYPY_JSON, *cache, *targets), root, timeout)
        if done.returncode == 2 and "-O" in done.stderr and "unrecognized argument" in done.stderr:
            _mypy_without_json.add(command.argv)
        else:
            if "Missing target module, package, files, or command" in done.stderr:
                raise _MissingTarget
            return _read(command, done, lambda: mypy_json_findings(done.stdout, root))
    done = await _run(command, (*command.argv, *_MYPY_TEXT, *cache, *targets), root, timeout)
    if "Missing target module, package, files, or command" in done.stderr:
        raise _MissingTarget
    return _read(command, done, lambda: mypy_text_findings(done.stdout, root))


def mypy_cache_dir(root: Path, command: ToolCommand) -> Path:
    """Our own mypy cache for this workspace and command (so for its interpreter)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    key = hashlib.sha256("\0".join((str(root), *command.argv)).encode()).hexdigest()[:16]
    return Path(base) / "oci-lsp" / "mypy" / key


async def _run(
    command: ToolCommand,
    argv: Sequence[str],
    cwd: Path,
    timeout: float,
    stdin: bytes | None = None,
) -> Completed:
    try:
        return await run_limited(argv, cwd, timeout=timeout, stdin=stdin)
    except Timeout:
        raise ToolError(
            f"{command.tool} ran longer than {timeout:g} s and was stopped"
            f" ({' '.join(command.argv)}, from {command.origin})"
        ) from None
    except OSError as exc:
        if not cwd.is_dir():  # Popen names the program whichever of the two is missing
            raise ToolError(f"{command.tool} cannot run in {cwd}: no such folder") from exc
        raise ToolError(
            f"{command.tool} could not be started: {command.argv[0]}:"
            f" {exc.strerror or exc} (from {command.origin}); {_remedy(command)}"
        ) from exc


def _read(
    command: ToolCommand, done: Completed, parse: Callable[[], list[Finding]]
) -> list[Finding]:
    """The findings in a finished run's output; a ToolError when it failed: output that
    cannot be read, an exit code of 1 ("findings") with none (`python -m mypy` where mypy
    is not installed exits 1 too), or any other exit code with no findings."""
    try:
        found = parse()
    except (ValueError, KeyError, TypeError) as exc:
        unreadable: Exception | None = exc
    else:
        if done.returncode == 0 or (found and done.returncode in (1, 2)):
            return found
        unreadable = None
    said = _what_it_said(done)
    if done.returncode < 0:
        what = f"was killed by signal {-done.returncode} (a resource limit?)"
    elif done.returncode not in (0, 1):
        what = f"exited with {done.returncode}"
    elif unreadable is not None:
        what = f"gave output that cannot be read ({unreadable})"
    else:
        what = "exited with 1 (findings) but reported none"
    tail = f": {said[:300]}" if said else ""
    raise ToolError(
        f"{command.tool} {what}{tail} (from {command.origin}: {' '.join(command.argv)});"
        " run it in the workspace to see why"
    )


_CONFIG_FILES = ("pyproject.toml", "ruff.toml", "setup.cfg", "mypy.ini", "pyrightconfig.json")


def _what_it_said(done: Completed) -> str:
    """The last line of its stderr (else stdout), after the line that names a configuration
    file when there is one: ruff's last line says what is wrong, not in which file."""
    said = last_line(done.stderr) or last_line(done.stdout)
    naming = next(
        (
            line.strip()
            for line in done.stderr.splitlines()
            if any(name in line for name in _CONFIG_FILES)
        ),
        "",
    )
    return f"{naming}: {said}" if naming and naming != said else said


def _remedy(command: ToolCommand) -> str:
    if command.origin.startswith("setting"):
        return f"fix the setting tools.{command.tool}"
    return f"install {command.tool} or set tools.{command.tool} to its command"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _absolute(root: Path, name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else root / path


def _same(a: Path, b: Path) -> bool:
    if os.path.normpath(a) == os.path.normpath(b):
        return True
    with contextlib.suppress(OSError):
        return os.path.samefile(a, b)
    return False


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
