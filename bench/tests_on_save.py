"""Benchmark: tests on save, through the real server, against running pytest directly.

For each size N a project of N cheap unit tests is generated (bench/workspace.py), and in the
same run, on the same machine, round after round, this measures:

  raw pytest       `python -m pytest -q -p no:cacheprovider`: what the user would otherwise run
  argv, no plugin  the server's exact pytest command line (runner.pytest_argv) minus its plugin
  argv + plugin    that command line with the plugin, its events drained from a pipe
  affected only    the same with the target's test file as the selection: the floor for an
                   affected-first diagnostic (one pytest start-up, ~1% of the tests)
  full run         a server with tests.scope "all": didSave of a module -> the first
                   publishDiagnostics carrying a diagnostic, and -> the work-done progress "end"
  affected first   a server with the default scope ("affected-then-all"): didSave of the module
                   covered by ~1% of the tests -> the first diagnostic on its test file

Each server is a fresh `python -m oci_lsp` driven by pytest-lsp's client; a warm-up save runs
the suite once (so the import graph, built in the background at start, is ready and .pyc files
exist), then the timed save follows. Times include the debounce (session.DEBOUNCE_SECONDS);
the "- debounce" columns subtract it to show the runner's own cost. CPU seconds are measured
too (the server's pytest through the server's reaped-children counters), as wall time on a
shared machine drifts.

The environment is the same for the baseline and the server, with two changes from this shell:
PYTHONDONTWRITEBYTECODE is dropped (a user's pytest caches rewritten test modules), and
PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 is set unless --plugin-autoload is given (this venv's
pytest-asyncio and pytest-lsp would add ~0.7 s to every pytest start-up, which a project's own
venv would not have). Exit status 0 unless the measurement itself broke; missed aims are
reported, not raised.

    .venv/bin/python bench/tests_on_save.py --sizes 200 2000 --repeat 11
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features
from pytest_lsp.client import progress as record_progress
from pytest_lsp.client import publish_diagnostics as record_diagnostics

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workspace import Workspace, generate

from oci_lsp.testing.runner import PLUGIN_DIR, PLUGIN_NAME, RunSpec, pytest_argv
from oci_lsp.testing.session import DEBOUNCE_SECONDS

FULL_AIM = 1.10  # a full run costs at most 1.10x raw pytest
AFFECTED_AIM = 0.20  # the 1% module's first diagnostic within 20% of the full-suite time
WAIT = 600.0  # per run; a measurement that takes longer is broken
SERVER_COMMAND = [sys.executable, "-m", "oci_lsp"]  # the real server, over stdio


class BenchError(RuntimeError):
    """The measurement itself went wrong (not: an aim was missed)."""


# -- running pytest directly ----------------------------------------------------------------


@dataclass
class PytestRun:
    seconds: float
    cpu: float  # user + system CPU seconds of the pytest process
    failed: int
    passed: int
    events: int = 0  # lines the plugin wrote, when it was loaded


_SUMMARY = re.compile(r"(\d+) (failed|passed)")


def _counts(output: str) -> tuple[int, int]:
    lines = [ln for ln in output.strip().splitlines() if " in " in ln and "passed" in ln]
    found = dict((kind, int(n)) for n, kind in _SUMMARY.findall(lines[-1] if lines else ""))
    return found.get("failed", 0), found.get("passed", 0)


def time_pytest(argv: Sequence[str], cwd: Path, env: dict[str, str], plugin: bool) -> PytestRun:
    """Wall time of one pytest process, from spawn to exit, its output read as the server does."""
    env = dict(env)
    read_fd = write_fd = -1
    counted = [0]
    reader: threading.Thread | None = None
    if plugin:
        read_fd, write_fd = os.pipe()
        env["OCI_LSP_REPORT_FD"] = str(write_fd)

        def drain() -> None:
            with os.fdopen(read_fd, "rb") as pipe:
                counted[0] = sum(1 for _ in pipe)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        list(argv),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        pass_fds=(write_fd,) if plugin else (),
        check=False,
    )
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
    if plugin:
        os.close(write_fd)
        assert reader is not None
        reader.join(timeout=10)
    output = proc.stdout.decode("utf-8", errors="replace")
    if proc.returncode not in (0, 1):
        raise BenchError(f"{' '.join(argv)} exited with {proc.returncode}:\n{output[-2000:]}")
    failed, passed = _counts(output)
    return PytestRun(seconds, cpu, failed, passed, counted[0])


def plugin_env(base: dict[str, str]) -> dict[str, str]:
    """The environment the server's runner gives pytest (runner.child_env)."""
    env = dict(base)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(PLUGIN_DIR) + (os.pathsep + old if old else "")
    env.setdefault("PYTHONIOENCODING", "utf-8")
    env["PY_COLORS"] = "0"
    return env


def without_plugin(argv: list[str]) -> list[str]:
    i = argv.index(PLUGIN_NAME)
    assert argv[i - 1] == "-p"
    return argv[: i - 1] + argv[i + 1 :]


# -- driving the server ---------------------------------------------------------------------


@dataclass
class Recorder:
    """Every diagnostic and progress notification, with the time it arrived."""

    diagnostics: list[tuple[float, str, int]] = field(default_factory=list)  # (t, uri, count)
    progress: list[tuple[float, str, str]] = field(default_factory=list)  # (t, token, kind)
    end_messages: dict[str, str] = field(default_factory=dict)  # token -> "2000 tests run, ..."
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def on_diagnostics(self, params: types.PublishDiagnosticsParams) -> None:
        self.diagnostics.append((time.perf_counter(), params.uri, len(params.diagnostics)))
        self.event.set()

    def on_progress(self, params: types.ProgressParams) -> None:
        value = params.value if isinstance(params.value, dict) else {}
        self.progress.append((time.perf_counter(), str(params.token), str(value.get("kind"))))
        if value.get("kind") == "end":
            self.end_messages[str(params.token)] = str(value.get("message"))
        self.event.set()

    async def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.perf_counter() + WAIT
        while not condition():
            self.event.clear()
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise BenchError(f"timed out waiting for {what}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.event.wait(), timeout=min(remaining, 1.0))

    def run_end(self, since: float) -> float | None:
        """When the first run that began after `since` ended."""
        began = [tok for t, tok, kind in self.progress if kind == "begin" and t >= since]
        if not began:
            return None
        for t, tok, kind in self.progress:
            if tok == began[0] and kind == "end":
                return t
        return None

    def end_message(self, since: float) -> str:
        began = [tok for t, tok, kind in self.progress if kind == "begin" and t >= since]
        return self.end_messages.get(began[0], "") if began else ""

    def first_diagnostic(self, since: float, uri: str | None = None) -> float | None:
        for t, u, count in self.diagnostics:
            if t >= since and count and (uri is None or u == uri):
                return t
        return None


def make_client(recorder: Recorder) -> LanguageClient:
    client = LanguageClient(converter_factory=default_converter)

    # pytest-lsp's own handlers, the two we time wrapped to note when each message arrived.
    def diagnostics(params: types.PublishDiagnosticsParams) -> None:
        recorder.on_diagnostics(params)
        record_diagnostics(client, params)

    def progress(params: types.ProgressParams) -> None:
        recorder.on_progress(params)
        record_progress(client, params)

    features = dict(DEFAULT_CLIENT_FEATURES)
    features[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS] = diagnostics
    features[types.PROGRESS] = progress
    register_lsp_features(client, features)

    return client


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) of a process so far, and of its children it has reaped.

    The server reaps each pytest it ran before the run ends, so the second figure grows by
    that pytest's CPU time. Linux /proc; zeros where unknown.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0, 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks, (int(fields[13]) + int(fields[14])) / ticks


@dataclass
class ServerRun:
    first_diagnostic: float  # save -> first diagnostic anywhere
    first_on_target: float | None  # save -> first diagnostic on the target's test file
    end: float  # save -> progress "end"
    failed: int
    passed: int
    warm_up_end: float  # the first save after start, save -> end (graph build included)
    diagnostic_messages: int  # publishDiagnostics notifications during the timed run
    progress_messages: int  # $/progress notifications during the timed run
    end_message: str  # the progress "end" message: how many tests ran, how many failed
    server_cpu: float  # CPU seconds of the server process (not its pytest) during the run
    pytest_cpu: float  # CPU seconds of the pytest process(es) the server ran
    client_cpu: float  # CPU seconds of this process (the LSP client) during the run


async def measure_server(
    ws: Workspace, scope: str, save: Path, env: dict[str, str], log_file: Path
) -> ServerRun:
    recorder = Recorder()
    client = make_client(recorder)
    await client.start_io(*SERVER_COMMAND, "--log-file", str(log_file), env=env)
    try:
        await client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities("visual-studio-code"),
                root_uri=ws.root.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=ws.root.as_uri(), name="bench")],
                initialization_options={"tests": {"scope": scope}},
            )
        )

        def did_save() -> float:
            start = time.perf_counter()
            client.text_document_did_save(
                types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(save.as_uri()))
            )
            return start

        start = did_save()
        await recorder.wait_for(lambda: recorder.run_end(start) is not None, "warm-up run end")
        warm_up = (recorder.run_end(start) or 0.0) - start
        await asyncio.sleep(0.5)  # let the last publications of the warm-up arrive

        server = client._server
        pid = server.pid if server is not None else 0
        (cpu_before, children_before), own_before = cpu_seconds(pid), time.process_time()
        start = did_save()
        await recorder.wait_for(lambda: recorder.run_end(start) is not None, "run end")
        cpu_after, children_after = cpu_seconds(pid)
        client_cpu = time.process_time() - own_before
        end = recorder.run_end(start)
        first = recorder.first_diagnostic(start)
        on_target = recorder.first_diagnostic(start, ws.target_tests.as_uri())
        if end is None or first is None:
            raise BenchError(f"no diagnostic after saving {save.name} (scope {scope})")
        status: Any = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="oci.status", arguments=[])
        )
        tests = status["tests"]
        if client.error is not None:
            raise BenchError(f"server failed: {client.error}")
        return ServerRun(
            first_diagnostic=first - start,
            first_on_target=None if on_target is None else on_target - start,
            end=end - start,
            failed=int(tests["failed"]),
            passed=int(tests["passed"]),
            warm_up_end=warm_up,
            diagnostic_messages=sum(1 for t, _, _ in recorder.diagnostics if t >= start),
            progress_messages=sum(1 for t, _, _ in recorder.progress if t >= start),
            end_message=recorder.end_message(start),
            server_cpu=cpu_after - cpu_before,
            pytest_cpu=children_after - children_before,
            client_cpu=client_cpu,
        )
    finally:
        try:
            await asyncio.wait_for(client.shutdown_session(), timeout=30)
        finally:
            await client.stop()  # type: ignore[no-untyped-call]


# -- one size -------------------------------------------------------------------------------


@dataclass
class SizeResult:
    tests: int
    failing: int
    modules: int
    target_share: float
    raw: list[PytestRun] = field(default_factory=list)
    argv_no_plugin: list[PytestRun] = field(default_factory=list)
    argv_plugin: list[PytestRun] = field(default_factory=list)
    affected_only: list[PytestRun] = field(default_factory=list)
    full: list[ServerRun] = field(default_factory=list)
    affected: list[ServerRun] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)  # CPUs in use by others before each round


def busy_cpus(interval: float = 0.5) -> float:
    """How many CPUs were busy over `interval` (Linux /proc/stat; 0.0 where unknown)."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as handle:
            values = [int(v) for v in handle.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(interval)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    cpus = os.cpu_count() or 1
    return cpus * (1 - (idle1 - idle0) / max(1, total1 - total0))


def wait_quiet(limit: float, log: Callable[[str], None]) -> float:
    """Wait (up to `limit` s) until other work on the machine leaves the CPUs nearly idle.

    Another process using a core makes every timing here slower, the server's most (it needs
    a second core next to its pytest). Returns the busy CPUs seen last.
    """
    deadline = time.perf_counter() + limit
    busy = busy_cpus()
    while busy > 0.15 and time.perf_counter() < deadline:
        time.sleep(1.0)
        busy = busy_cpus()
    if busy > 0.15:
        log(f"  (the machine is still busy: {busy:.2f} CPUs in use by other processes)")
    return busy


def check_counts(what: str, ws: Workspace, failed: int, passed: int) -> None:
    if (failed, passed) != (ws.failing, ws.passing):
        raise BenchError(
            f"{what}: {failed} failed, {passed} passed; expected {ws.failing} and {ws.passing}"
        )


def check_ran(what: str, ws: Workspace, end_message: str) -> None:
    """Each test ran once: the run's progress "end" says "N tests run, F failed"."""
    expected = f"{ws.tests} tests run, {ws.failing} failed"
    if end_message != expected:
        raise BenchError(f"{what}: the run ended with {end_message!r}; expected {expected!r}")


def bench_size(
    tests: int,
    repeat: int,
    base_env: dict[str, str],
    keep: bool,
    quiet_wait: float,
    log: Callable[[str], None],
) -> SizeResult:
    tmp = Path(tempfile.mkdtemp(prefix=f"oci-bench-{tests}-")).resolve()
    ws = generate(tmp / "ws", tests)
    result = SizeResult(ws.tests, ws.failing, ws.modules, ws.target_share)
    log(
        f"N={ws.tests}: {ws.modules} modules, {ws.failing} failing tests;"
        f" target {ws.target_module.name}: {ws.target_count} tests ({ws.target_share:.1%})"
        f" in {ws.root}"
    )
    python = sys.executable
    raw_argv = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    server_argv = pytest_argv(RunSpec(ws.root, python))
    affected_argv = pytest_argv(RunSpec(ws.root, python, selection=[str(ws.target_tests)]))
    penv = plugin_env(base_env)
    time_pytest(raw_argv, ws.root, base_env, plugin=False)  # warm-up: .pyc files
    for i in range(repeat):
        result.busy.append(wait_quiet(quiet_wait, log))
        raw = time_pytest(raw_argv, ws.root, base_env, plugin=False)
        check_counts("raw pytest", ws, raw.failed, raw.passed)
        bare = time_pytest(without_plugin(server_argv), ws.root, penv, plugin=False)
        check_counts("argv without plugin", ws, bare.failed, bare.passed)
        plug = time_pytest(server_argv, ws.root, penv, plugin=True)
        check_counts("argv with plugin", ws, plug.failed, plug.passed)
        if plug.events < ws.tests:
            raise BenchError(f"the plugin wrote {plug.events} events for {ws.tests} tests")
        only = time_pytest(affected_argv, ws.root, penv, plugin=True)
        result.raw.append(raw)
        result.argv_no_plugin.append(bare)
        result.argv_plugin.append(plug)
        result.affected_only.append(only)
        full = asyncio.run(
            measure_server(ws, "all", ws.target_module, base_env, tmp / f"server-all-{i}.log")
        )
        check_counts("server, scope all", ws, full.failed, full.passed)
        check_ran("server, scope all", ws, full.end_message)
        result.full.append(full)
        affected = asyncio.run(
            measure_server(
                ws, "affected-then-all", ws.target_module, base_env, tmp / f"server-aff-{i}.log"
            )
        )
        check_counts("server, affected-then-all", ws, affected.failed, affected.passed)
        check_ran("server, affected-then-all", ws, affected.end_message)
        if affected.first_on_target is None:
            raise BenchError("no diagnostic on the target's test file")
        result.affected.append(affected)
        log(
            f"  #{i + 1} (busy {result.busy[-1]:.2f}): raw {raw.seconds:.2f}s"
            f" ({raw.cpu:.2f} CPU), argv {bare.seconds:.2f}s, +plugin {plug.seconds:.2f}s"
            f" ({plug.cpu:.2f} CPU), affected only {only.seconds:.2f}s;"
            f" server all: first {full.first_diagnostic:.2f}s end {full.end:.2f}s"
            f" (pytest {full.pytest_cpu:.2f} CPU, server {full.server_cpu:.2f} CPU,"
            f" client {full.client_cpu:.2f} CPU, {full.diagnostic_messages} publishDiagnostics,"
            f" {full.progress_messages} $/progress); affected-first: target"
            f" {affected.first_on_target:.2f}s end {affected.end:.2f}s;"
            f" first saves after start: {full.warm_up_end:.2f}s, {affected.warm_up_end:.2f}s"
        )
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


# -- the report -----------------------------------------------------------------------------


def med(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{med(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(results: Sequence[SizeResult], repeat: int) -> str:
    d = DEBOUNCE_SECONDS
    out = [
        f"Wall seconds, median of {repeat} (min-max); the debounce is {d:g} s.",
        "",
        "| tests | raw pytest | argv, no plugin | argv + plugin | affected file only"
        " | full run: first diag | full run: end | full run: end - debounce"
        " | 1% module: first diag | 1% module: end |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        first_target = [s.first_on_target or 0.0 for s in r.affected]
        out.append(
            f"| {r.tests} | {fmt([p.seconds for p in r.raw])}"
            f" | {fmt([p.seconds for p in r.argv_no_plugin])}"
            f" | {fmt([p.seconds for p in r.argv_plugin])}"
            f" | {fmt([p.seconds for p in r.affected_only])}"
            f" | {fmt([s.first_diagnostic for s in r.full])} | {fmt([s.end for s in r.full])}"
            f" | {fmt([s.end - d for s in r.full])}"
            f" | {fmt(first_target)} | {fmt([s.end for s in r.affected])} |"
        )
    out += [
        "",
        "Ratios of medians (in brackets: of the fastest samples, the least disturbed).",
        "",
        "| tests | full run / raw | (full run - debounce) / raw | aim <= 1.10"
        " | 1% first diag / raw | (1% first diag - debounce) / raw | aim <= 0.20 |",
        "|---:|---:|---:|:-:|---:|---:|:-:|",
    ]
    for r in results:
        raw, raw_min = med([p.seconds for p in r.raw]), min(p.seconds for p in r.raw)
        ends = [s.end for s in r.full]
        firsts = [s.first_on_target or 0.0 for s in r.affected]
        full, full_min = med(ends), min(ends)
        first, first_min = med(firsts), min(firsts)
        out.append(
            f"| {r.tests} | {full / raw:.2f}x ({full_min / raw_min:.2f}x)"
            f" | {(full - d) / raw:.2f}x ({(full_min - d) / raw_min:.2f}x)"
            f" | {verdict(full / raw <= FULL_AIM)}"
            f" | {first / raw:.2f} ({first_min / raw_min:.2f})"
            f" | {(first - d) / raw:.2f} ({(first_min - d) / raw_min:.2f})"
            f" | {verdict(first / raw <= AFFECTED_AIM)} |"
        )
    out += [
        "",
        "Where a full run's time goes: wall seconds (medians) added by each layer, and CPU"
        " seconds (medians; unlike wall time, little disturbed by other work on the machine).",
        "",
        "| tests | plugin (argv + plugin - argv) | server beyond its pytest"
        " (end - debounce - argv + plugin) | CPU: raw pytest | CPU: argv + plugin"
        " | CPU: server's pytest | CPU: server process | CPU: (server's pytest + server) / raw |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        raw = med([p.seconds for p in r.raw])
        plugin = med([p.seconds for p in r.argv_plugin])
        plugin_cost = plugin - med([p.seconds for p in r.argv_no_plugin])
        server_cost = med([s.end for s in r.full]) - d - plugin
        raw_cpu = med([p.cpu for p in r.raw])
        pytest_cpu = med([s.pytest_cpu for s in r.full])
        server_cpu = med([s.server_cpu for s in r.full])
        out.append(
            f"| {r.tests} | {plugin_cost:+.2f} ({plugin_cost / raw:+.0%})"
            f" | {server_cost:+.2f} ({server_cost / raw:+.0%})"
            f" | {raw_cpu:.2f} | {med([p.cpu for p in r.argv_plugin]):.2f}"
            f" | {pytest_cpu:.2f} | {server_cpu:.2f}"
            f" | {(pytest_cpu + server_cpu) / raw_cpu:.2f}x |"
        )
    busy = [f"{r.tests}: {min(r.busy):.2f}-{max(r.busy):.2f}" for r in results]
    out += ["", f"CPUs busy with other work just before each round: {'; '.join(busy)}."]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--plugin-autoload",
        action="store_true",
        help="let pytest load the plugins installed in this interpreter (pytest-asyncio,"
        " pytest-lsp: ~0.7 s of start-up); by default PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 is set"
        " for the baseline and the server alike, as in a project whose venv has only pytest",
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated workspaces")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=20.0,
        metavar="S",
        help="before each round wait up to S seconds for other work on the machine to stop",
    )
    parser.add_argument("--json", type=Path, help="write every sample to this file")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    base_env = dict(os.environ)
    base_env.pop("OCI_LSP_REPORT_FD", None)
    # A user's pytest caches its rewritten test modules in __pycache__; without that every
    # run would compile every test file again (about 1.3 s of the 2,000-test run here).
    base_env.pop("PYTHONDONTWRITEBYTECODE", None)
    if args.plugin_autoload:
        base_env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    else:
        base_env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    log(
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()},"
        f" plugin autoload {'on' if args.plugin_autoload else 'off'}"
    )
    started = time.perf_counter()
    try:
        results = [
            bench_size(n, args.repeat, base_env, args.keep, args.quiet_wait, log)
            for n in sorted(args.sizes)
        ]
    except BenchError as exc:
        log(f"measurement failed: {exc}")
        return 1
    log(f"total {time.perf_counter() - started:.0f} s")
    print(report(results, args.repeat))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
