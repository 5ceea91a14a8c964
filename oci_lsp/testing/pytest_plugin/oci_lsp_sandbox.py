"""The sandbox worker of oci-lsp: verifies candidate code without touching the user's files.

Runs inside the *workspace's* interpreter (stdlib and pytest only, like oci_lsp_pytest). It
imports pytest once, then waits on a Unix socket for requests. Each request forks a child that

- puts the candidate's source in place of the target file for imports only (an import hook
  serves it from memory; the file on disk is never written),
- confines itself: writes only under its scratch directory (Landlock), no network (a network
  namespace with only loopback, else Landlock's TCP rules), CPU time, address space, file size
  and process count limits, its own session so a kill reaches every process it started,
- runs pytest with our reporting plugin, whose events go to a pipe the server passed along.

Forking a warm interpreter makes every candidate pay only its own collection and tests, not
Python's and pytest's start-up, and four candidates cost about what their tests cost.

The worker is a child subreaper: processes a candidate left behind (double-forked daemons)
are re-parented to it and killed when that candidate ends.

Protocol (SOCK_SEQPACKET, one JSON object per message):
  server -> worker  {"op": "run", "id": N, "args": [...], "env": {...}, "target": PATH,
                     "source_file": PATH, "scratch": DIR, "limits": {...}} + fds [events, output]
                    {"op": "kill", "id": N}
  worker -> server  {"id": N, "pid": PID} then {"id": N, "exit": STATUS, "isolation": {...}}
                    where STATUS is the exit code, or -SIGNAL
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import importlib.machinery
import json
import linecache
import os
import resource
import selectors
import signal
import socket
import struct
import sys
import time
from typing import Any

_libc = ctypes.CDLL(None, use_errno=True)

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
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


class _CandidateLoader(importlib.machinery.SourceFileLoader):
    def __init__(self, fullname: str, path: str, source: str) -> None:
        super().__init__(fullname, path)
        self.candidate_source = source

    def get_code(self, fullname: str) -> Any:  # never the stale bytecode of the old source
        return compile(self.candidate_source, self.path, "exec", dont_inherit=True)

    def get_source(self, fullname: str) -> str:
        return self.candidate_source


class _CandidateFinder:
    """Serves the candidate for the module whose file is the target, whatever its name."""

    def __init__(self, target: str, source: str) -> None:
        self.target = os.path.normcase(os.path.realpath(target))
        self.source = source
        stem = os.path.splitext(os.path.basename(target))[0]
        # Only names that can be that file are looked up twice: the hook costs nothing else.
        self.last = os.path.basename(os.path.dirname(target)) if stem == "__init__" else stem

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname.rpartition(".")[2] != self.last:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.origin:
            return None
        if os.path.normcase(os.path.realpath(spec.origin)) != self.target:
            return None
        spec.loader = _CandidateLoader(fullname, spec.origin, self.source)
        return spec

    def invalidate_caches(self) -> None:
        pass


def _install_candidate(target: str, source: str) -> None:
    sys.meta_path.insert(0, _CandidateFinder(target, source))
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
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            # Tests that serve on 127.0.0.1 keep working; nothing else is reachable.
            flags = _IFF_UP | _IFF_LOOPBACK | _IFF_RUNNING
            fcntl.ioctl(probe, _SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags))
    except OSError:
        pass
    return True


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
        os.setsid()
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.close(devnull)
        os.close(output_fd)
        scratch = request["scratch"]
        os.environ.update(request.get("env") or {})
        os.environ["OCI_LSP_REPORT_FD"] = str(events_fd)
        os.environ["TMPDIR"] = os.path.join(scratch, "tmp")
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        os.makedirs(os.environ["TMPDIR"], exist_ok=True)
        sys.dont_write_bytecode = True
        with open(request["source_file"], encoding="utf-8") as handle:
            source = handle.read()
        isolation = _confine(scratch, request.get("limits") or {})
        _install_candidate(request["target"], source)
        isolation["ready_at"] = time.time()  # the set-up ends here; the benchmark reads it
        with open(os.path.join(scratch, "isolation.json"), "w", encoding="utf-8") as handle:
            json.dump(isolation, handle)
        sys.argv = ["pytest", *request["args"]]
        code = _run_pytest(list(request["args"]))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.write(2, f"oci-lsp sandbox: {type(exc).__name__}: {exc}\n".encode())
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        os._exit(code)


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


def _run_pytest(args: list[str]) -> int:
    """pytest.main(args), from the prepared Config when there is one (what pytest.main does
    after get_config: parse the arguments, run the session, unconfigure)."""
    import pytest

    config = _PRECONFIG
    if config is None:
        return int(pytest.main(args))
    try:
        config = config.pluginmanager.hook.pytest_cmdline_parse(
            pluginmanager=config.pluginmanager, args=args
        )
    except pytest.UsageError as exc:
        for line in exc.args:
            sys.stderr.write(f"ERROR: {line}\n")
        return int(pytest.ExitCode.USAGE_ERROR)
    try:
        return int(config.hook.pytest_cmdline_main(config=config))
    finally:
        config._ensure_unconfigure()


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
                    _kill_group(pid)
            return
        if request.get("op") != "run" or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            return
        events_fd, output_fd = fds
        pid = os.fork()
        if pid == 0:
            self.sock.close()
            _candidate(request, events_fd, output_fd)
        os.close(events_fd)
        os.close(output_fd)
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
            _kill_group(pid)
            self._kill_orphans()
            code = (
                os.waitstatus_to_exitcode(status)
                if hasattr(os, "waitstatus_to_exitcode")
                else status
            )
            isolation: Any = None
            try:
                with open(
                    os.path.join(self.scratch.pop(pid), "isolation.json"), encoding="utf-8"
                ) as f:
                    isolation = json.load(f)
            except (OSError, ValueError):
                pass
            self.send({"id": rid, "exit": code, "isolation": isolation})

    def _kill_orphans(self) -> None:
        """Kill what candidates left behind and was re-parented to us, unless a running
        candidate's session owns it."""
        me = os.getpid()
        live_sessions = set(self.running)
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", encoding="utf-8", errors="replace") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ppid, sid = int(fields[1]), int(fields[3])
            if ppid == me and int(name) not in self.running and sid not in live_sessions:
                with contextlib.suppress(OSError):
                    os.kill(int(name), signal.SIGKILL)

    def kill_all(self) -> None:
        for pid in list(self.running):
            _kill_group(pid)
        self._kill_orphans()


def _exit_code(status: int) -> int:
    """The exit code, or -SIGNAL (os.waitstatus_to_exitcode is 3.9+)."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def _import_plugins() -> None:
    """Import what pytest will load in every candidate: its installed plugins (pytest-asyncio,
    pytest-cov... often most of pytest's start-up) and ours. The candidates run with pytest's
    "already imported, cannot rewrite" warning off: asserts inside plugins are not what is
    being verified."""
    import importlib

    names = ["oci_lsp_pytest"]
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
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
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
    worker.send({"ready": os.getpid()})
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
                    data, fds, _flags, _addr = socket.recv_fds(sock, 65536, 4)
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
