"""The environment tag every process of a test run carries, and killing by it.

A run's supervisor (runs on save, `--fix`'s runs) and the sandbox worker (candidates) start
with OCI_LSP_RUN=<a token of their own> in their environment, which everything they start
inherits: a daemon that left the run's session and lost its parent is still found by it. The
supervisor and the worker kill what their runs leave themselves (as subreapers); the tag is
for when they were killed first (a test that killed its parent with `kill -9`). A process that
clears its environment before it execs is not found (README, Known limits).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal

RUN_TAG = "OCI_LSP_RUN"


def new_tag() -> str:
    return secrets.token_hex(8)


def kill_tagged(tag: str) -> int:
    """Kill every process whose environment carries RUN_TAG=tag (Linux /proc: elsewhere
    nothing is found); how many were."""
    needle = f"{RUN_TAG}={tag}\0".encode()
    killed = 0
    try:
        names = os.listdir("/proc")
    except OSError:
        return 0
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:
            continue
        if environ.startswith(needle) or b"\0" + needle in environ:
            with contextlib.suppress(OSError):
                os.kill(int(name), signal.SIGKILL)
                killed += 1
    return killed
