"""Killing what a test run left behind; shared by the supervisor of runs on save
(oci_lsp_supervisor) and the sandbox worker of candidates (oci_lsp_sandbox).

Runs in the workspace's interpreter (stdlib only, older Pythons too). Both are child
subreapers on Linux (prctl PR_SET_CHILD_SUBREAPER): a process whose parent exits is
re-parented to its nearest subreaper ancestor instead of init, so a daemon a test started
(start_new_session=True, a double fork) becomes our child once the test or its intermediate
parent is gone, whatever session or group it moved to. What a killed process leaves is
re-parented to us in turn, so killing our children and waiting for them, again and again,
reaches everything. Elsewhere only process groups are reached.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Collection

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
_SECONDS = 5.0  # how long a clean-up goes on against processes that keep forking


def prctl(option: int, value: int) -> bool:
    """prctl(2) on Linux; False elsewhere or where it fails."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(option, value, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def children() -> set[int] | None:
    """Our children's pids from /proc (Linux 3.5+ with CONFIG_PROC_CHILDREN), else None."""
    found: set[int] = set()
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children", encoding="ascii") as handle:
                found.update(int(pid) for pid in handle.read().split())
    except (OSError, ValueError):
        return None
    return found


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command's name (state, ppid, pgrp, session...)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _children_by_scan() -> set[int]:
    """Our children found by reading every process's parent (no children file)."""
    me = os.getpid()
    found = set()
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc"):
            if name.isdigit():
                fields = _stat(int(name))
                if fields is not None and int(fields[1]) == me:
                    found.add(int(name))
    return found


def kill_group(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def exit_code(status: int) -> int:
    """The exit code, or -SIGNAL (os.waitstatus_to_exitcode is 3.9+)."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def kill_children(spare: Collection[int] = (), seconds: float = _SECONDS) -> dict[int, int]:
    """Kill our children but those in the sessions of `spare` (running candidates), wait for
    each, and go on with what they leave (re-parented to us), until none is left or `seconds`
    passed. The wait statuses of the children collected here (a caller's own child among them
    is not lost)."""
    statuses: dict[int, int] = {}
    spared = set(spare)
    deadline = time.monotonic() + seconds
    while True:
        found = children()
        if found is None:
            found = _children_by_scan()
        targets = []
        for pid in found - spared:
            fields = _stat(pid)
            if fields is None or int(fields[3]) not in spared:
                targets.append(pid)
        if not targets:
            return statuses
        for pid in targets:
            kill_group(pid)  # its group too: the children it has now go at once
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for pid in targets:
            # Once it is collected, its children are ours (it exited), for the next pass.
            while True:
                try:
                    done, status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    break
                if done:
                    statuses[pid] = status
                    break
                if time.monotonic() > deadline:
                    return statuses  # unkillable for now (uninterruptible sleep)
                time.sleep(0.001)
        if time.monotonic() > deadline:
            return statuses
