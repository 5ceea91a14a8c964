"""A tool's process: its own process group, killed whole on timeout or cancel, under
resource limits, its output collected.

The limits are set in the child between fork and exec (`preexec_fn`); the function that
runs there only calls `setrlimit` with values computed here, since nothing else is safe
in a child forked from a process with threads (no imports, no locks, no allocation of
note).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import resource
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Generous: mypy on a large project takes 2-3 GB; node (pyright) runs within 2 GiB of address
# space on small projects. The limit stops a runaway from taking the machine, nothing more.
MEMORY_BYTES = 8 * 2**30


@dataclass(frozen=True)
class Completed:
    returncode: int  # negative: killed by that signal (-9 for the memory or CPU limit)
    stdout: str
    stderr: str


class Timeout(Exception):
    """The process ran past its time and its process group was killed."""


async def run_limited(
    argv: Sequence[str],
    cwd: Path,
    *,
    timeout: float,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    memory_bytes: int = MEMORY_BYTES,
) -> Completed:
    """Run argv in cwd with `stdin` as its input (no input when None). Raises OSError when it
    cannot start, Timeout after killing it when it takes longer than `timeout` s; on
    cancel the group is killed too. CPU time is limited to what `timeout` s of every core
    would be: a bound for a process that escapes the group (it inherits the limit)."""
    cpu = math.ceil(timeout * (os.cpu_count() or 1)) + 1
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_limits(memory_bytes, cpu),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except asyncio.TimeoutError:
        _kill_group(proc.pid)
        await proc.wait()
        raise Timeout(f"{argv[0]} ran longer than {timeout:g} s") from None
    except BaseException:
        _kill_group(proc.pid)
        raise
    # Anything the tool left running in its group (a language server's worker) goes too.
    _kill_group(proc.pid)
    assert proc.returncode is not None
    return Completed(
        proc.returncode,
        out.decode("utf-8", errors="replace"),
        err.decode("utf-8", errors="replace"),
    )


def last_line(text: str) -> str:
    """The last non-blank line of a tool's output: usually what went wrong."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _limits(memory_bytes: int, cpu_seconds: int) -> Callable[[], None]:
    wanted = [
        (resource.RLIMIT_AS, memory_bytes),
        (resource.RLIMIT_CPU, cpu_seconds),
        (resource.RLIMIT_CORE, 0),
    ]
    values = []
    for which, value in wanted:
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        values.append((which, value))

    def apply() -> None:
        for which, value in values:
            resource.setrlimit(which, (value, value))

    return apply


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
