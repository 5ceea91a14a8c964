"""The sandbox worker of oci-lsp: verifies candidate code without touching the user's files.

Runs inside the *workspace's* interpreter (stdlib and pytest only, like oci_lsp_pytest). It
imports pytest once, then waits on a Unix socket for requests. Each request forks a child that

- puts the candidate's source in place of the target file for imports only (an import hook
  serves it from memory; the file on disk is never written),
- confines itself: writes only under its scratch directory (Landlock), no network (a network
  namespace with only loopback, else Landlock's TCP rules), CPU time, address space, file size
  and process count limits, its own session so a kill reaches every process it started,
- runs pytest with our reporting plugin, whose events go to a pipe the server passed along.

A round of candidates for one function can share more: a child (the round's collector)
confines itself, imports the module as it was and collects the tests once, then forks one
child per candidate from the collected session; each swaps its version of the function into
the live module (oci_lsp_swap) and runs the tests. A candidate that cannot be swapped in (it
changed more than the function and its helpers) is sent back to be run on its own.

Forking a warm interpreter makes every candidate pay only its own collection and tests, not
Python's and pytest's start-up, and four candidates cost about what their tests cost.

The worker is a child subreaper: processes a candidate left behind (daemons in a session of
their own, double forks) are re-parented to it and killed when that candidate ends, and
everything is killed when the worker ends (the server closed the socket, or died); the
clean-up is oci_lsp_reaper's, shared with the supervisor of runs on save.

Protocol (SOCK_SEQPACKET, one JSON object per message):
  server -> worker  {"op": "run", "id": N, "args": [...], "env": {...}, "target": PATH,
                     "source_file": PATH, "scratch": DIR, "limits": {...},
                     "more": [{"target": PATH, "source_file": PATH}, ...]?} + fds [events, output]
                     ("more": the other files of a candidate that changes several)
                    {"op": "round", "id": R, "args", "env", "target", "limits", "scratch",
                     "base_file": PATH, "qualname": Q, "parallel": K,
                     "candidates": [{"id": N, "source_file", "scratch"}, ...]}
                     + fds [events, output] for each candidate
                    {"op": "kill", "id": N}
  worker -> server  {"id": N, "pid": PID} then {"id": N, "exit": STATUS, "isolation": {...}}
                    where STATUS is the exit code, or -SIGNAL; for a round the same for R (the
                    collector) and for each candidate N, or {"id": N, "alone": REASON}: run it
                    with "run" instead
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import gc
import importlib
import importlib.machinery
import importlib.util
import json
import linecache
import os
import pathlib
import resource
import selectors
import signal
import socket
import struct
import sys
import time
from typing import Any

from oci_lsp_candidate import CANDIDATE_MORE, CANDIDATE_SOURCE, CANDIDATE_TARGET, CandidateFinder
from oci_lsp_reaper import (
    PR_SET_CHILD_SUBREAPER,
    PR_SET_PDEATHSIG,
    exit_code,
    kill_children,
    kill_group,
)

_libc = ctypes.CDLL(None, use_errno=True)

PR_SET_NO_NEW_PRIVS = 38
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000

# Landlock (Linux 5.13+), x86-64 / arm64 share these syscall numbers.
_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1
_FS_WRITE_FILE = 1 << 1
# Every right that changes the file system, by the ABI version that introduced it.
_FS_WRITES_V1 = (
    _FS_WRITE_FILE
    | (1 << 4)  # remove dir
    | (1 << 5)  # remove file
    | (1 << 6)  # make char
    | (1 << 7)  # make dir
    | (1 << 8)  # make reg
    | (1 << 9)  # make sock
    | (1 << 10)  # make fifo
    | (1 << 11)  # make block
    | (1 << 12)  # make sym
)
_FS_REFER = 1 << 13  # ABI 2
_FS_TRUNCATE = 1 << 14  # ABI 3
_NET_BIND_TCP = 1 << 0  # ABI 4
_NET_CONNECT_TCP = 1 << 1
_SCOPE_ABSTRACT_UNIX = 1 << 0  # ABI 6
_SCOPE_SIGNAL = 1 << 1

_WAKE_READ, _WAKE_WRITE = -1, -1
_SIOCSIFFLAGS = 0x8914
_IFF_UP, _IFF_LOOPBACK, _IFF_RUNNING = 0x1, 0x8, 0x40


# -- the candidate's source in place of the target file ---------------------------------------


def _install_candidate(target: str, source: str, source_file: str) -> CandidateFinder:
    finder = CandidateFinder(target, source)
    sys.meta_path.insert(0, finder)
    _show_lines(target, source)
    _candidate_for_subprocesses(target, source_file)
    return finder


def _candidate_for_subprocesses(target: str, source_file: str) -> None:
    """Python processes the tests start (`python -m pkg`, a CLI test) import the candidate
    too: candidate_site/sitecustomize.py installs the same finder from these variables."""
    os.environ[CANDIDATE_TARGET] = target
    os.environ[CANDIDATE_SOURCE] = source_file
    site = os.path.join(os.path.dirname(os.path.abspath(__file__)), "candidate_site")
    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = site + (os.pathsep + path if path else "")


def _install_more(more: list[dict[str, str]]) -> list[CandidateFinder]:
    """The other files of a candidate that changes several, served the same way."""
    finders = []
    for each in more:
        finder = CandidateFinder(each["target"], _read(each["source_file"]))
        sys.meta_path.insert(0, finder)
        _show_lines(each["target"], finder.source)
        finders.append(finder)
    os.environ[CANDIDATE_MORE] = json.dumps([[e["target"], e["source_file"]] for e in more])
    return finders


class _FinderFirst:
    """A pytest plugin that puts the candidate's finder first on sys.meta_path when the
    collection starts. pytest puts its assertion rewriter there, and the rewriter takes a
    module named on the command line (a doctest's node id names the module itself) from the
    file on disk."""

    def __init__(self, finder: CandidateFinder, *more: CandidateFinder) -> None:
        self.finder = finder
        self.finders = [finder, *more]

    def pytest_collection(self, session: Any) -> None:
        for finder in self.finders:
            if finder in sys.meta_path:
                sys.meta_path.remove(finder)
            sys.meta_path.insert(0, finder)


def _show_lines(target: str, source: str) -> None:
    # Tracebacks and pytest's assertion messages show the candidate's lines, not the disk's.
    # An entry without an mtime is never invalidated by linecache.checkcache.
    lines = source.splitlines(keepends=True)
    linecache.cache[target] = (len(source), None, lines, target)
    real = os.path.realpath(target)
    linecache.cache[real] = (len(source), None, lines, real)


# -- confinement ------------------------------------------------------------------------------


def _landlock(scratch: str, deny_tcp: bool) -> int:
    """Allow writes only under scratch (and to /dev/null, /dev/shm); the ABI used, 0 if none."""
    abi = _libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, None, 0, _LANDLOCK_CREATE_RULESET_VERSION)
    if abi < 1:
        return 0
    writes = _FS_WRITES_V1 | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0)
    net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if deny_tcp and abi >= 4 else 0
    # Signals and abstract sockets stay inside: a candidate cannot kill the editor.
    scoped = (_SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL) if abi >= 6 else 0
    if abi >= 6:
        attr = struct.pack("=QQQ", writes, net, scoped)
    elif abi >= 4:
        attr = struct.pack("=QQ", writes, net)
    else:
        attr = struct.pack("=Q", writes)
    buffer = ctypes.create_string_buffer(attr, len(attr))
    ruleset = _libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, buffer, len(attr), 0)
    if ruleset < 0:
        return 0
    file_writes = _FS_WRITE_FILE | (_FS_TRUNCATE if abi >= 3 else 0)
    for path, rights in ((scratch, writes), ("/dev/null", file_writes), ("/dev/shm", writes)):
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue
        rule = ctypes.create_string_buffer(struct.pack("=Qi", rights, fd), 12)
        _libc.syscall(_SYS_LANDLOCK_ADD_RULE, ruleset, _LANDLOCK_RULE_PATH_BENEATH, rule, 0)
        os.close(fd)
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    done = _libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0)
    os.close(ruleset)
    return abi if done == 0 else 0


def _private_network() -> bool:
    """A user and network namespace of our own, with only loopback up. False if not allowed."""
    uid, gid = os.getuid(), os.getgid()
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        return False
    try:
        # Map our own ids so files keep their owners (without a map every id reads as nobody).
        with open("/proc/self/setgroups", "w") as handle:
            handle.write("deny")
        with open("/proc/self/uid_map", "w") as handle:
            handle.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as handle:
            handle.write(f"{gid} {gid} 1")
    except OSError:
        pass
    _loopback_up()
    return True


def _loopback_up() -> None:
    # Tests that serve on 127.0.0.1 keep working; nothing else is reachable.
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        flags = _IFF_UP | _IFF_LOOPBACK | _IFF_RUNNING
        fcntl.ioctl(probe, _SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags))


def _pids_parents() -> list[str]:
    """The pids cgroup directories this process is in, where a child cgroup can be made: the
    v1 hierarchy, or v2 where the controller is delegated to ours."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "pids" in controllers.split(","):
            found.append(os.path.join("/sys/fs/cgroup/pids", path.lstrip("/")))
        elif controllers == "":
            parent = os.path.join("/sys/fs/cgroup", path.lstrip("/"))
            with (
                contextlib.suppress(OSError),
                open(os.path.join(parent, "cgroup.subtree_control"), encoding="utf-8") as handle,
            ):
                if "pids" in handle.read().split():
                    found.append(parent)
    return found


def _enter_pids_cgroup() -> str | None:
    """Move this process (the worker, once) into a new pids cgroup, so that what it forks is
    counted there: root is exempt from RLIMIT_NPROC. Moving a process costs the kernel ~10 ms
    (an RCU grace period), too much for every candidate, so they share the worker's cgroup and
    its limit (set by _limit_pids). Its directory, or None where the OS does not allow it."""
    for parent in _pids_parents():
        _remove_stale_cgroups(parent)
        directory = os.path.join(parent, f"oci-lsp-sandbox-{os.getpid()}")
        try:
            os.mkdir(directory)
        except OSError:
            continue
        try:
            with open(os.path.join(directory, "cgroup.procs"), "w", encoding="ascii") as handle:
                handle.write(str(os.getpid()))
        except OSError:
            with contextlib.suppress(OSError):
                os.rmdir(directory)
            continue
        return directory
    return None


def _remove_stale_cgroups(parent: str) -> None:
    """The empty cgroups of workers that are gone without their server removing them (both
    killed at once, say): nobody else will."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        pid = name.rpartition("-")[2]
        stale = name.startswith("oci-lsp-sandbox-") and pid.isdigit()
        if stale and not os.path.exists(f"/proc/{pid}"):
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(parent, name))


_CGROUP: str | None = None  # the worker's pids cgroup, if it has one
_CGROUP_MAX = 0


def _limit_pids(processes: int) -> None:
    """Let every candidate that may run at once have `processes`, plus the worker and the
    rounds' collectors."""
    global _CGROUP_MAX
    wanted = processes * len(os.sched_getaffinity(0)) + 16
    if _CGROUP is None or wanted == _CGROUP_MAX:
        return
    with (
        contextlib.suppress(OSError),
        open(os.path.join(_CGROUP, "pids.max"), "w", encoding="ascii") as handle,
    ):
        handle.write(str(wanted))
        _CGROUP_MAX = wanted


def _user_process_count(uid: int) -> int:
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count


def _limit(which: int, value: int) -> None:
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(which, (value, value))


def _confine(scratch: str, limits: dict[str, Any]) -> dict[str, Any]:
    """Apply every limit this OS allows; what was applied, for the server's logs."""
    isolation: dict[str, Any] = {}
    was_root = os.geteuid() == 0
    own_namespace = _private_network()
    isolation["network"] = "namespace" if own_namespace else None
    cpu = int(limits.get("cpu_seconds") or 0)
    if cpu > 0:
        # SIGXCPU at the soft limit, SIGKILL a second later.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    if limits.get("memory_bytes"):
        _limit(resource.RLIMIT_AS, int(limits["memory_bytes"]))
    if limits.get("file_bytes"):
        _limit(resource.RLIMIT_FSIZE, int(limits["file_bytes"]))
    _limit(resource.RLIMIT_CORE, 0)
    processes = int(limits.get("processes") or 0)
    if processes > 0 and not was_root:
        # Counted per user (per user namespace since Linux 5.14); root is never limited.
        extra = 0 if own_namespace else _user_process_count(os.getuid())
        _limit(resource.RLIMIT_NPROC, processes + extra)
        isolation["processes"] = processes
    elif processes > 0 and _CGROUP_MAX:
        isolation["processes"] = processes  # in the worker's pids cgroup, shared
    abi = _landlock(scratch, deny_tcp=not own_namespace)
    isolation["filesystem"] = f"landlock-{abi}" if abi else None
    if not own_namespace and abi >= 4:
        isolation["network"] = "landlock-tcp"
    return isolation


# -- one candidate -----------------------------------------------------------------------------


def _candidate(request: dict[str, Any], events_fd: int, output_fd: int) -> None:
    """In the forked child: confine, install the candidate, run pytest. Never returns."""
    code = 70
    try:
        _enter_child(output_fd)
        scratch = request["scratch"]
        _child_environment(request, scratch, events_fd)
        source = _read(request["source_file"])
        isolation = _confine(scratch, request.get("limits") or {})
        finder = _install_candidate(request["target"], source, request["source_file"])
        more = _install_more(request.get("more") or [])
        _ready(scratch, isolation)
        sys.argv = ["pytest", *request["args"]]
        code = _run_pytest(list(request["args"]), plugins=(_FinderFirst(finder, *more),))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:
        _say(f"oci-lsp sandbox: {type(exc).__name__}: {exc}")
    finally:
        _flush()
        os._exit(code)


def _enter_child(output_fd: int) -> None:
    """A forked child's first steps: its own session (a kill reaches all it starts), dead with
    its parent, default signals, stdin from /dev/null, stdout and stderr to output_fd."""
    os.setsid()
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    os.close(output_fd)


def _child_environment(request: dict[str, Any], scratch: str, events_fd: int) -> None:
    os.environ.update(request.get("env") or {})
    os.environ["OCI_LSP_REPORT_FD"] = str(events_fd)
    _scratch_tmp(scratch)
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    sys.dont_write_bytecode = True


def _scratch_tmp(scratch: str) -> None:
    # Where oci_lsp_options moves what the project's plugins would write into the workspace
    # (which Landlock would refuse: `PermissionError: .coverage`).
    os.environ["OCI_LSP_SCRATCH"] = scratch
    os.environ["COVERAGE_FILE"] = os.path.join(scratch, ".coverage")
    os.environ["TMPDIR"] = os.path.join(scratch, "tmp")
    os.makedirs(os.environ["TMPDIR"], exist_ok=True)
    import tempfile

    tempfile.tempdir = os.environ["TMPDIR"]  # what gettempdir() would find, without its probe


def _ready(scratch: str, isolation: dict[str, Any]) -> None:
    isolation["ready_at"] = time.time()  # the set-up ends here; the benchmark reads it
    with open(os.path.join(scratch, "isolation.json"), "w", encoding="utf-8") as handle:
        json.dump(isolation, handle)


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _say(line: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, (line + "\n").encode())


def _flush() -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass


# pytest's Config with its built-in plugins imported and registered, made once in the worker:
# a good part of what pytest.main does before it reads its arguments. None: pytest.main.
_PRECONFIG: Any = None
PRECONFIG_ARGS = ["-p", "no:cacheprovider"]  # every request's args start with these "-p no:"


def _preconfigure() -> None:
    global _PRECONFIG
    try:
        from _pytest.config import get_config

        _PRECONFIG = get_config(list(PRECONFIG_ARGS))
    except Exception:
        _PRECONFIG = None


def _run_pytest(args: list[str], plugins: tuple[Any, ...] = ()) -> int:
    """pytest.main(args, plugins), from the prepared Config when there is one (what
    pytest.main does after get_config: parse the arguments, run the session, unconfigure)."""
    import pytest

    config = _PRECONFIG
    if config is None:
        return int(pytest.main(args, plugins=list(plugins)))
    try:
        config = config.pluginmanager.hook.pytest_cmdline_parse(
            pluginmanager=config.pluginmanager, args=args
        )
    except pytest.UsageError as exc:
        for line in exc.args:
            sys.stderr.write(f"ERROR: {line}\n")
        return int(pytest.ExitCode.USAGE_ERROR)
    for plugin in plugins:
        config.pluginmanager.register(plugin)
    try:
        return int(config.hook.pytest_cmdline_main(config=config))
    finally:
        config._ensure_unconfigure()


# -- a round: collect once, fork a child per candidate -----------------------------------------

MAX_ROUND = 32  # candidates in one round request (two descriptors each)
_ALONE = 75  # a candidate's child exits with this when its code cannot be swapped in


def _round(request: dict[str, Any], fds: list[int], sock: socket.socket) -> None:
    """In the forked collector: confine, import the module as it was, collect the tests once,
    then (in the run loop hook of _Round) fork a child per candidate. Never returns."""
    import pytest

    # Before pytest's own run loop, which each candidate's child goes on to. (pytest is
    # imported by now: marked here, not where the class is defined.)
    pytest.hookimpl(tryfirst=True)(_Round.pytest_runtestloop)
    pytest.hookimpl(tryfirst=True)(_Round.pytest_unconfigure)
    plugin = _Round(request, fds, sock)
    code = 70
    try:
        # What collecting prints is no candidate's; it goes where the worker's own output goes
        # (the server keeps its tail for when something goes wrong).
        _enter_child(os.dup(2))
        scratch = request["scratch"]
        # Until a candidate's child points it at its own pipe, nothing is reported.
        _child_environment(request, scratch, os.open(os.devnull, os.O_WRONLY))
        plugin.isolation = _confine(scratch, request.get("limits") or {})
        plugin.base = _read(request["base_file"])
        plugin.finder = _install_candidate(request["target"], plugin.base, request["base_file"])
        sys.argv = ["pytest", *request["args"]]
        code = _run_pytest(list(request["args"]), plugins=(plugin, _FinderFirst(plugin.finder)))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:
        _say(f"oci-lsp sandbox: {type(exc).__name__}: {exc}")
    finally:
        if plugin.child is None:
            # pytest ended before its run loop (a collection error, a bad argument): every
            # candidate is run on its own, where what went wrong is reported as theirs.
            plugin.alone_all("the tests could not be collected once for the round")
            os._exit(0)
        _flush()
        os._exit(code)


class _Round:
    """The collector's pytest plugin: forks the candidates from the collected session."""

    def __init__(self, request: dict[str, Any], fds: list[int], sock: socket.socket) -> None:
        self.request = request
        self.candidates: list[dict[str, Any]] = list(request["candidates"])
        self.fds = fds
        self.sock = sock
        self.parallel = max(1, int(request.get("parallel") or 1))
        self.isolation: dict[str, Any] = {}
        self.base = ""
        self.finder: CandidateFinder | None = None
        self.swapper: Any = None
        self.session: Any = None
        self.child: int | None = None  # the candidate this process runs, in its child
        self.started: set[int] = set()  # their descriptors are closed here

    def send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            self.sock.send(json.dumps(message).encode())

    def alone_all(self, why: str) -> None:
        for index, candidate in enumerate(self.candidates):
            if index not in self.started:
                self.send({"id": candidate["id"], "alone": why})

    def pytest_runtestloop(self, session: Any) -> Any:
        if session.testsfailed or not session.items:
            self.alone_all("the tests could not be collected once for the round")
            os._exit(0)
        capman = session.config.pluginmanager.getplugin("capturemanager")
        if capman is not None:
            capman.stop_global_capturing()  # each child captures into files of its own
        # Beside this file on sys.path; not a package (the workspace's interpreter).
        swap: Any = importlib.import_module("oci_lsp_swap")
        self.swapper = swap.Swapper(self.request["target"], self.base, self.request["qualname"])
        _flush()
        gc.freeze()  # the collected session, shared by the candidates as the worker's heap is
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        running: dict[int, int] = {}  # pid -> candidate index
        waiting = list(range(len(self.candidates)))
        while waiting or running:
            started_any = False
            while waiting and len(running) < self.parallel:
                started_any = True
                index = waiting.pop(0)
                pid = os.fork()
                if pid == 0:
                    self._become(index, session, capman)
                    return None  # on to pytest's run loop, as this candidate
                self.started.add(index)
                os.close(self.fds[2 * index])
                os.close(self.fds[2 * index + 1])
                running[pid] = index
                self.send({"id": self.candidates[index]["id"], "pid": pid})
            if started_any:
                kill_children(spare=running)  # what the ones before left behind
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            index_or_none = running.pop(pid, None)
            if index_or_none is None:
                continue  # an orphan we adopted, now gone
            kill_group(pid)
            if not waiting:  # else after the next candidate has started
                kill_children(spare=running)
            candidate = self.candidates[index_or_none]
            code = exit_code(status)
            if code == _ALONE:
                self.send({"id": candidate["id"], "alone": "its code could not be swapped in"})
            else:
                isolation = _isolation_of(candidate["scratch"])
                self.send({"id": candidate["id"], "exit": code, "isolation": isolation})
        os._exit(0)

    def pytest_unconfigure(self, config: Any) -> None:
        if self.child is not None:
            # Everything is reported; what is left of pytest's clean-up is for a process that
            # lives on, and this one's scratch directory goes with it.
            _flush()
            os._exit(int(self.session.exitstatus))

    def _become(self, index: int, session: Any, capman: Any) -> None:
        """In a candidate's child: its own pipes, scratch and network, its code swapped in."""
        self.child = index
        self.session = session
        self.sock.close()
        candidate = self.candidates[index]
        events_fd, output_fd = self.fds[2 * index], self.fds[2 * index + 1]
        for position, fd in enumerate(self.fds):
            if position // 2 != index and position // 2 not in self.started:
                os.close(fd)
        _enter_child(output_fd)
        scratch = candidate["scratch"]
        _scratch_tmp(scratch)
        isolation = dict(self.isolation)
        if isolation.get("network") == "namespace" and _libc.unshare(CLONE_NEWNET) == 0:
            _loopback_up()  # ports a test binds are its own, not shared with its siblings
        if isolation.get("filesystem"):
            _landlock(scratch, deny_tcp=False)  # a second layer: its own scratch only
        try:
            source = _read(candidate["source_file"])
            self.swapper.apply(source)
            factory = session.config._tmp_path_factory
            factory._given_basetemp = pathlib.Path(scratch, "pytest")
            factory._basetemp = None
        except Exception as exc:
            _say(f"oci-lsp sandbox: run alone: {type(exc).__name__}: {exc}")
            os._exit(_ALONE)
        assert self.finder is not None
        self.finder.source = source  # for a module the tests import later
        _candidate_for_subprocesses(self.request["target"], candidate["source_file"])
        _show_lines(self.request["target"], source)
        oci_lsp_pytest: Any = importlib.import_module("oci_lsp_pytest")
        oci_lsp_pytest.report_to(events_fd, session)
        _ready(scratch, isolation)
        if capman is not None:
            capman.start_global_capturing()


# -- the worker loop ---------------------------------------------------------------------------


class _Worker:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.running: dict[int, int] = {}  # pid -> request id
        self.scratch: dict[int, str] = {}  # pid -> scratch dir

    def send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            self.sock.send(json.dumps(message).encode())

    def handle(self, data: bytes, fds: list[int]) -> None:
        try:
            request = json.loads(data)
        except ValueError:
            for fd in fds:
                os.close(fd)
            return
        if request.get("op") == "kill":
            for pid, rid in list(self.running.items()):
                if rid == request.get("id"):
                    kill_group(pid)
            return
        op = request.get("op")
        wanted = 2 * len(request.get("candidates") or ()) if op == "round" else 2
        if op not in ("run", "round") or len(fds) != wanted or not fds:
            for fd in fds:
                os.close(fd)
            return
        _limit_pids(int((request.get("limits") or {}).get("processes") or 0))
        pid = os.fork()
        if pid == 0:
            try:
                if op == "run":
                    self.sock.close()
                    _candidate(request, fds[0], fds[1])
                _round(request, fds, self.sock)  # its candidates report on the socket
            finally:
                os._exit(70)  # never back into the worker's loop
        for fd in fds:
            os.close(fd)
        self.running[pid] = int(request["id"])
        self.scratch[pid] = str(request["scratch"])
        self.send({"id": request["id"], "pid": pid})

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            rid = self.running.pop(pid, None)
            if rid is None:
                continue  # an orphan we adopted, now gone
            kill_group(pid)
            kill_children(spare=self.running)
            isolation = _isolation_of(self.scratch.pop(pid))
            self.send({"id": rid, "exit": exit_code(status), "isolation": isolation})

    def kill_all(self) -> None:
        for pid in list(self.running):
            kill_group(pid)
        kill_children()  # the candidates, and what they and their daemons left


def _isolation_of(scratch: str) -> Any:
    try:
        with open(os.path.join(scratch, "isolation.json"), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _import_plugins() -> None:
    """Import what pytest will load in every candidate: its installed plugins (pytest-asyncio,
    pytest-cov... often most of pytest's start-up) and ours. The candidates run with pytest's
    "already imported, cannot rewrite" warning off: asserts inside plugins are not what is
    being verified."""

    names = ["oci_lsp_pytest", "oci_lsp_swap"]
    if not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        try:
            from importlib.metadata import entry_points

            found: Any = entry_points()
            # Python 3.10+ selects; 3.8 and 3.9 return a dict of groups.
            group = (
                found.select(group="pytest11")
                if hasattr(found, "select")
                else found.get("pytest11", [])
            )
            names += [ep.value.partition(":")[0] for ep in group]
        except Exception:
            pass
    for name in names:
        with contextlib.suppress(Exception):
            importlib.import_module(name)


def main() -> None:
    sock = socket.socket(fileno=int(os.environ.pop("OCI_LSP_SANDBOX_FD")))
    # The slow imports, once: every candidate forks from here.
    import _pytest.assertion.rewrite
    import _pytest.python  # noqa: F401
    import pytest  # noqa: F401

    _import_plugins()
    _preconfigure()
    # What is loaded now is shared by every candidate: out of the collector's sight, so that
    # pytest's end-of-session gc.collect in each child does not walk the whole inherited heap
    # (15 ms a candidate) nor touch its pages (which fork shares copy-on-write).
    gc.collect()
    gc.freeze()
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    # No PR_SET_PDEATHSIG here: a worker killed with the server could not kill what its
    # candidates left. The server's death closes the socket, and the loop below ends on that
    # and kills everything first.
    if os.geteuid() == 0:
        global _CGROUP
        _CGROUP = _enter_pids_cgroup()  # the server removes it when we are gone
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    os.set_blocking(wake_read, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the editor's Ctrl-C is not ours
    worker = _Worker(sock)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ, "sock")
    selector.register(wake_read, selectors.EVENT_READ, "wake")
    worker.send({"ready": os.getpid(), "cgroup": _CGROUP})
    try:
        while True:
            for key, _ in selector.select(timeout=1.0):
                if key.data == "wake":
                    try:
                        while os.read(wake_read, 4096):
                            pass
                    except BlockingIOError:
                        pass
                    continue
                try:
                    data, fds, _flags, _addr = socket.recv_fds(sock, 65536, 2 * MAX_ROUND)
                except OSError as exc:
                    if exc.errno in (errno.EAGAIN, errno.EINTR):
                        continue
                    raise
                if not data:
                    return  # the server is gone
                worker.handle(data, fds)
            worker.reap()
    finally:
        worker.kill_all()


if __name__ == "__main__":
    main()
