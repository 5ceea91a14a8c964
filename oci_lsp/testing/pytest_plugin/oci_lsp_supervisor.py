"""The supervisor of a test run: the one process between oci-lsp and the tests.

Runs in the workspace's interpreter (stdlib only, older Pythons too, like oci_lsp_pytest).
For pytest it imports pytest before anyone saves (the warm start), waits for one request,
then forks the run: the child becomes `python -m pytest ARGS` in a process group of its own,
and the supervisor waits for it. For another runner (`tests.command`) it forks and execs the
command. A test that kills its parent kills the supervisor, not the language server: the worst
it can do is end its own run.

When the run ends (it exits, or the server asks, or the server is gone) the supervisor kills
what is left of it: the run's process group, and on Linux, where it is a child subreaper,
every process the run left behind, daemons that started a session of their own included
(they are re-parented to the supervisor, so they are found among its children; the clean-up
is oci_lsp_reaper's, shared with the sandbox worker). Elsewhere only the process group is
reached.

    python -c "import oci_lsp_supervisor; oci_lsp_supervisor.main()" pytest|exec

Its standard input is a Unix socket to the server:
  server -> supervisor  one JSON line: {"args": [...], "env": {...}} (pytest's arguments) or
                        {"argv": [...], "env": {...}} (a command); then nothing. The end of the
                        stream (the server closed it, or died) means: end the run now.
  supervisor -> server  "pid P" when the run's process exists, "error MESSAGE" when the command
                        could not be started, "exit STATUS" (the exit code or -SIGNAL) once the
                        run ended and everything it left is gone; one per line.
The server treats a supervisor that ended without "exit" as killed (by a test): it kills the
run's group itself and, on Linux, every process whose environment carries the run's tag.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import traceback
from typing import Any

from oci_lsp_reaper import (
    PR_SET_CHILD_SUBREAPER,
    PR_SET_PDEATHSIG,
    exit_code,
    kill_children,
    kill_group,
    prctl,
)

_STDIN = 0
_RUN = -1  # the run's pid, once it is started


def _send(line: str) -> None:
    with contextlib.suppress(OSError):
        os.write(_STDIN, (line + "\n").encode("utf-8", errors="replace"))


def _read_request() -> Any:
    """The request line, or None when the server closed the channel first."""
    data = b""
    while not data.endswith(b"\n"):
        try:
            chunk = os.read(_STDIN, 65536)
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return json.loads(data)


def _reap(run: int) -> int | None:
    """Collect every child that ended; the run's wait status when it was among them."""
    status = None
    while True:
        try:
            pid, code = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status
        if pid == 0:
            return status
        if pid == run:
            status = code


def _kill_all(run: int) -> int | None:
    """Kill the run's group and every child we have (as a subreaper, what the run left),
    until none is left; the run's wait status if it was collected here."""
    kill_group(run)
    status: int | None = kill_children().get(run)
    return status


def _enter_run(request: dict[str, Any], wake: tuple[int, int], supervisor: int) -> None:
    """In the forked child: what `python -m pytest` (or the command) would have had."""
    os.setpgid(0, 0)  # a group of its own: a test's killpg(0) does not reach the supervisor
    # Dead with the supervisor: a test that killed it ends its own run there and then, and
    # what it does next is not reported as if the run went on.
    if prctl(PR_SET_PDEATHSIG, signal.SIGKILL) and os.getppid() != supervisor:
        os._exit(1)
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd in wake:
        os.close(fd)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, _STDIN)  # never the server's channel: its end is the supervisor's alone
    os.close(devnull)
    os.environ.update(request.get("env") or {})


_HARMLESS = {0, signal.SIGCHLD, signal.SIGCONT, signal.SIGURG, signal.SIGWINCH}


def _guard(supervisor: int, notes: int) -> None:
    """In the run's process: a test that sends its parent (us) a signal we cannot ignore, or
    sends a signal to every process (os.kill(-1, ...): the editor's too), ends the run right
    there, and says why through `notes`. Without this the run would go on for the moment the
    kernel takes to end the supervisor, and the test's own result, even the next test's, would
    be reported as if nothing happened. An audit hook (Python 3.8+) sees os.kill and os.killpg;
    a `kill` command or C code is not seen (the server then finds the supervisor gone)."""
    run = os.getpid()

    def hook(event: str, args: Any) -> None:
        if event != "os.kill" and event != "os.killpg":
            return
        target, sig = args
        if os.getpid() != run:
            return
        if target in (supervisor, -supervisor) and sig in (signal.SIGKILL, signal.SIGSTOP):
            what = "its parent process (oci-lsp's supervisor of the run)"
        elif event == "os.kill" and target == -1 and sig not in _HARMLESS:
            what = "every process it may signal (os.kill(-1, ...)), your editor among them"
        else:
            return
        with contextlib.suppress(OSError, ValueError):
            os.write(notes, f"the test sent {signal.Signals(sig).name} to {what}".encode())
        os.kill(run, signal.SIGKILL)

    if hasattr(sys, "addaudithook"):
        sys.addaudithook(hook)


def _ignore_signals() -> None:
    """Signals a test sends its parent (`kill $PPID` is SIGTERM) leave us alone, as an
    interactive shell is left alone; the server ends us with our channel or SIGKILL. After the
    fork: the run keeps the dispositions it would have had."""
    for sig in signal.valid_signals() if hasattr(signal, "valid_signals") else ():
        if sig not in (signal.SIGCHLD, signal.SIGKILL, signal.SIGSTOP):
            with contextlib.suppress(OSError, ValueError, RuntimeError):
                signal.signal(sig, signal.SIG_IGN)


def _start_command(request: dict[str, Any], wake: tuple[int, int]) -> int:
    """Fork and exec the command; its pid, or -1 when it could not start (said to the server)."""
    argv = [str(arg) for arg in request["argv"]]
    errors_read, errors_write = os.pipe()  # close-on-exec: an exec that works closes it
    supervisor = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(errors_read)
            _enter_run(request, wake, supervisor)
            os.execvp(argv[0], argv)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.write(errors_write, f"{exc.strerror or exc}".encode())
        finally:
            os._exit(127)
    os.close(errors_write)
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)
    chunks = []
    while chunk := os.read(errors_read, 4096):
        chunks.append(chunk)
    os.close(errors_read)
    if chunks:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        _send("error " + b"".join(chunks).decode("utf-8", errors="replace"))
        return -1
    return pid


def _start_pytest(request: dict[str, Any], wake: tuple[int, int], notes: int) -> int:
    supervisor = os.getpid()
    pid = os.fork()
    if pid == 0:
        _enter_run(request, wake, supervisor)
        _guard(supervisor, notes)
        import pytest

        sys.argv = ["pytest", *request["args"]]
        # Up through main() to the interpreter's own exit (atexit handlers, flushed output),
        # as `python -m pytest` ends.
        raise SystemExit(pytest.console_main())
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)
    return pid


def supervise(pytest_mode: bool) -> None:
    if pytest_mode:
        import pytest  # noqa: F401  (the slow import, before anyone waits for it)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    request = _read_request()
    if request is None:
        return  # no run after all (the server replaced or closed this standby)
    # Our own copy of the events pipe must not keep it open after the run's processes are gone.
    events = os.environ.pop("OCI_LSP_REPORT_FD", None)
    wake = os.pipe()
    for fd in wake:
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wake[1])
    signal.signal(signal.SIGCHLD, lambda *_: None)
    if events is not None:
        request.setdefault("env", {})["OCI_LSP_REPORT_FD"] = events
    notes_read, notes_write = os.pipe()
    if pytest_mode:
        run = _start_pytest(request, wake, notes_write)
    else:
        run = _start_command(request, wake)
    global _RUN
    _RUN = run
    os.close(notes_write)
    if events is not None:
        with contextlib.suppress(OSError, ValueError):
            os.close(int(events))
    if run < 0:
        return
    _send(f"pid {run}")
    _ignore_signals()
    status = None
    while status is None:
        readable, _, _ = select.select([_STDIN, wake[0]], [], [])
        if wake[0] in readable:
            with contextlib.suppress(OSError):
                while os.read(wake[0], 4096):
                    pass
        if _STDIN in readable:
            try:
                data = os.read(_STDIN, 4096)
            except OSError:
                data = b""
            if not data:
                break  # the server wants the run ended, or is gone
        status = _reap(run)
    killed = _kill_all(run)
    status = status if status is not None else killed
    os.set_blocking(notes_read, False)
    with contextlib.suppress(OSError):
        note = os.read(notes_read, 4096).decode("utf-8", errors="replace")
        if note:
            _send(f"note {note}")
    _send(f"exit {exit_code(status) if status is not None else -signal.SIGKILL}")


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "pytest"
    me = os.getpid()
    try:
        supervise(mode == "pytest")
    except BaseException:
        if os.getpid() != me:
            raise  # the run's process, on its way to the interpreter's exit
        # Our own failure (pytest missing, say): said on the run's output, and nothing of the
        # run may outlive us.
        traceback.print_exc()
        if _RUN > 0:
            _kill_all(_RUN)
        _send("exit 70")
        os._exit(70)
    os._exit(0)


if __name__ == "__main__":
    main()
