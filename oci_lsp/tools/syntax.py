"""Does a module compile: Python's own syntax check, as a finding.

`compile` rather than `ast.parse`: the compiler also refuses what parses but cannot run
(`return` outside a function, `nonlocal` at module level, `await` outside async code). The
answer depends on the Python version (`type X = int` is 3.12 syntax, `except*` 3.11), so a
workspace whose interpreter is another minor version than ours is checked by that
interpreter (`syntax_error_in`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import Any

from oci_lsp.code.scan import split_lines
from oci_lsp.tools.findings import Finding

log = logging.getLogger(__name__)

TOOL = "python"
CODE = "syntax-error"
_BOM = "\ufeff"
_OURS = tuple(sys.version_info[:2])

# Runs in the workspace's interpreter (any Python 3): the module's text on stdin, one JSON
# line out. It only compiles, so -I -S: no site-packages, no PYTHON* variables, no cwd.
_CHECK = """\
import json, sys, warnings
text = sys.stdin.buffer.read().decode("utf-8", "surrogatepass")
error = None
try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compile(text, "<candidate>", "exec", dont_inherit=True)
except SyntaxError as e:
    error = [type(e).__name__, e.msg, e.lineno, e.offset,
             getattr(e, "end_lineno", None), getattr(e, "end_offset", None)]
except (ValueError, MemoryError, RecursionError) as e:
    error = [type(e).__name__, str(e), None, None, None, None]
print(json.dumps({"version": list(sys.version_info[:2]), "error": error}))
"""

# The version each interpreter answered with, by (real path, mtime): an interpreter of our
# own version is then checked in-process.
_versions: dict[tuple[str, int], tuple[int, ...]] = {}


def syntax_error(path: Path, text: str) -> Finding | None:
    """The module's syntax error in this interpreter (SyntaxError, IndentationError,
    TabError, a null byte), or None when it compiles. A leading BOM is allowed (the file's
    encoding mark; the compiler refuses it in a str)."""
    text = text.removeprefix(_BOM)
    null = _null_byte(path, text)
    if null is not None:
        return null
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes: the user's warnings, not ours
            compile(text, "<candidate>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        return _finding(
            path,
            text,
            [type(exc).__name__, exc.msg, exc.lineno, exc.offset, exc.end_lineno, exc.end_offset],
        )
    except (ValueError, MemoryError, RecursionError) as exc:
        # Nesting too deep for the compiler: the module cannot be imported either.
        return _finding(path, text, [type(exc).__name__, str(exc), None, None, None, None])
    return None


async def syntax_error_in(
    python: str, path: Path, text: str, timeout: float = 10
) -> Finding | None:
    """The module's syntax error as the interpreter `python` sees it.

    The rule: when `python` is this process's own interpreter, or answered before with our
    own major.minor version, the check runs in-process (`syntax_error`); otherwise `python`
    compiles the text itself in a subprocess (text on stdin, a small JSON answer; its own
    process group, killed whole after `timeout` s), and its version is remembered for the
    next call. So a 3.11 server does not call a 3.12 workspace's `type X = int` an error. An
    interpreter that cannot be run or does not answer is logged and the check falls back to
    ours.
    """
    if _is_our_version(python):
        return syntax_error(path, text)
    text = text.removeprefix(_BOM)
    null = _null_byte(path, text)
    if null is not None:
        return null
    answer = await _ask(python, path, text, timeout)
    if answer is None:
        return syntax_error(path, text)
    with contextlib.suppress(OSError):
        real = os.path.realpath(python)
        _versions[(real, os.stat(real).st_mtime_ns)] = tuple(answer["version"])
    error = answer.get("error")
    return _finding(path, text, error) if error else None


def _is_our_version(python: str) -> bool:
    try:
        real = os.path.realpath(python)
        if real == os.path.realpath(sys.executable):
            return True
        return _versions.get((real, os.stat(real).st_mtime_ns)) == _OURS
    except OSError:
        return False


async def _ask(python: str, path: Path, text: str, timeout: float) -> dict[str, Any] | None:
    try:
        proc = await asyncio.create_subprocess_exec(
            python,
            "-I",
            "-S",
            "-c",
            _CHECK,
            str(path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        log.info("could not run %s for a syntax check: %s; checked with ours", python, exc)
        return None
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(text.encode("utf-8", "surrogatepass")), timeout
        )
    except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        log.info("%s took over %g s to compile %s; checked with ours", python, timeout, path)
        return None
    try:
        answer = json.loads(out.decode("utf-8", "replace").strip().splitlines()[-1])
        if not isinstance(answer, dict) or not isinstance(answer.get("version"), list):
            raise ValueError(answer)
    except (ValueError, IndexError):
        tail = err.decode("utf-8", "replace").strip().splitlines()
        log.info("%s gave no syntax answer (%s); checked with ours", python, tail[-1:] or "")
        return None
    return answer


def _null_byte(path: Path, text: str) -> Finding | None:
    at = text.find("\0")
    if at < 0:
        return None
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    return Finding(
        tool=TOOL,
        code=CODE,
        message="SyntaxError: source code cannot contain null bytes",
        path=path,
        line=line,
        column=column,
        end_line=line,
        end_column=column + 1,
    )


def _finding(path: Path, text: str, error: list[Any]) -> Finding:
    """A finding from [kind, message, lineno, offset, end_lineno, end_offset], the fields of
    a SyntaxError (offsets 1-based, end exclusive; any may be missing or out of range)."""
    kind, message, lineno, offset, end_lineno, end_offset = error
    lines = split_lines(text)
    line = lineno if isinstance(lineno, int) and lineno >= 1 else len(lines)
    width = len(lines[line - 1]) if line <= len(lines) else 0
    column = offset if isinstance(offset, int) and offset >= 1 else 1
    column = min(column, width + 1)
    end_line: int | None = None
    end_column: int | None = None
    # The end only when it lies past the start (CPython gives 0 or -1 when it has none).
    if (
        isinstance(end_lineno, int)
        and isinstance(end_offset, int)
        and (end_lineno > line or (end_lineno == line and end_offset > column))
    ):
        end_line, end_column = end_lineno, end_offset
    return Finding(
        tool=TOOL,
        code=CODE,
        message=f"{kind}: {message}",
        path=path,
        line=line,
        column=column,
        end_line=end_line,
        end_column=end_column,
    )
