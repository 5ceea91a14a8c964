"""Benchmark: huge runs through the real server (issue 14).

Two generated workspaces (tests/huge_workspace.py): one whose 10,000 tests all fail, in
files of 50, against eight functions of one module; one of 100,000 tests that pass, in files of
1,000. For each, a fresh `python -m oci_lsp` driven by pytest-lsp's client (VS Code's
capabilities, `tests.scope: "all"`) gets a didSave of the module, and this measures, from the
save to the run's progress "end":

  bytes        the publishDiagnostics bodies the client read off the pipe, against the size
               of the diagnostics it shows at the end (each URI's last list): aim <= 2x
  publishes    publishDiagnostics notifications, and $/progress ones
  CPU          the server process's own CPU seconds against its pytest's (the children it
               reaped, from /proc): aim <= 0.25x
  oci.status   the latency of `oci.status` sent back to back (100 ms apart) while the run goes
               on: p50, p99, max; aim p99 < 100 ms

and then the same save again (the same results: nothing new to send). Plain pytest
(`python -m pytest -q -p no:cacheprovider`) runs once first, for reference, after a
`--collect-only` that writes the test modules' .pyc files. Plugin autoload is
off for both (PYTEST_DISABLE_PLUGIN_AUTOLOAD=1), as in tests_on_save.py. Exit status 0 unless
the measurement itself broke (wrong counts included); missed aims are reported, not raised.

    .venv/bin/python bench/huge_runs.py --json bench/out/huge_runs.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import client_capabilities

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from output import save_json
from tests_on_save import SERVER_COMMAND, BenchError, Recorder, cpu_seconds, make_client

from oci_lsp.server.diagnostics import SUMMARY_CODE
from tests.huge_workspace import HugeWorkspace, generate
from tests.lsp_traffic import Traffic

BYTES_AIM = 2.0  # bytes sent <= 2x the final diagnostics' size
CPU_AIM = 0.25  # server CPU <= 0.25x its pytest's
STATUS_AIM = 0.100  # oci.status p99 < 100 ms
STATUS_EVERY = 0.1  # an editor asks far less often; enough answers for a p99
WAIT = 1800.0


@dataclass
class Plain:
    seconds: float
    cpu: float


@dataclass
class Run:
    seconds: float  # save -> progress end
    bytes: int  # publishDiagnostics bodies
    final_bytes: int  # the last list of each URI (what the client shows)
    publishes: int
    progress: int  # $/progress notifications
    progress_bytes: int
    server_cpu: float
    pytest_cpu: float
    status: list[float] = field(default_factory=list)  # oci.status latencies, seconds
    failed: int = 0
    passed: int = 0
    shown: dict[str, int] = field(default_factory=dict)  # file name -> diagnostics shown
    summary: str = ""  # calc.py's summary diagnostic


@dataclass
class Case:
    name: str
    failing: int
    passing: int
    plain: Plain | None = None
    first: Run | None = None
    again: Run | None = None


def plain_pytest(ws: HugeWorkspace, env: dict[str, str], *args: str) -> Plain:
    before = os.times()
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=ws.root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    seconds = time.perf_counter() - start
    after = os.times()
    if proc.returncode not in (0, 1, 5):
        raise BenchError(f"plain pytest exited with {proc.returncode}")
    cpu = after.children_user + after.children_system
    return Plain(seconds, cpu - before.children_user - before.children_system)


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def poll(
    status: Callable[[], Awaitable[Any]], done: asyncio.Event, latencies: list[float]
) -> None:
    """Send oci.status back to back (STATUS_EVERY apart) until done, timing each answer."""
    while not done.is_set():
        t0 = time.perf_counter()
        await status()
        latencies.append(time.perf_counter() - t0)
        await asyncio.sleep(STATUS_EVERY)


async def measure(
    ws: HugeWorkspace, env: dict[str, str], log_file: Path, log: Any, rounds: int = 2
) -> list[Run]:
    """A fresh server, saves of calc.py: the first run and (rounds 2) the same one again."""
    recorder = Recorder()
    client = make_client(recorder)
    await client.start_io(*SERVER_COMMAND, "--log-file", str(log_file), env=env)
    traffic = Traffic.attach(client)
    runs = []
    try:
        await client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities("visual-studio-code"),
                root_uri=ws.root.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=ws.root.as_uri(), name="huge")],
                initialization_options={"tests": {"scope": "all", "timeout": WAIT}},
            )
        )

        async def status() -> Any:
            return await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="oci.status", arguments=[])
            )

        await status()  # the folder is ready, the standby interpreter is starting
        await asyncio.sleep(2.0)
        server = client._server
        pid = server.pid if server is not None else 0
        for round_ in ("first", "again")[:rounds]:
            bytes0, publishes0 = traffic.snapshot()
            progress0 = traffic.messages["$/progress"], traffic.bytes["$/progress"]
            cpu0, children0 = cpu_seconds(pid)
            start = time.perf_counter()
            client.text_document_did_save(
                types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(ws.source.as_uri()))
            )
            latencies: list[float] = []
            done = asyncio.Event()
            poller = asyncio.ensure_future(poll(status, done, latencies))
            try:
                await recorder.wait_for(
                    lambda since=start: recorder.run_end(since) is not None, "run end"
                )
            finally:
                done.set()
                await poller
            end = (recorder.run_end(start) or 0.0) - start
            cpu1, children1 = cpu_seconds(pid)
            await asyncio.sleep(1.0)  # the last publications after the end
            answer = await status()
            if client.error is not None:
                raise BenchError(f"server failed: {client.error}")
            bytes1, publishes1 = traffic.snapshot()
            shown = {
                Path(uri).name: len(diagnostics)
                for uri, diagnostics in client.diagnostics.items()
                if diagnostics
            }
            # The summary of calc.py, where every failure is also shown.
            listed = client.diagnostics.get(ws.source.as_uri(), [])
            summary = next((d.message for d in listed if d.code == SUMMARY_CODE), "")
            run = Run(
                seconds=end,
                bytes=bytes1 - bytes0,
                final_bytes=traffic.final_diagnostics_bytes(),
                publishes=publishes1 - publishes0,
                progress=traffic.messages["$/progress"] - progress0[0],
                progress_bytes=traffic.bytes["$/progress"] - progress0[1],
                server_cpu=cpu1 - cpu0,
                pytest_cpu=children1 - children0,
                status=latencies,
                failed=int(answer["tests"]["failed"]),
                passed=int(answer["tests"]["passed"]),
                shown=shown,
                summary=summary,
            )
            if (run.failed, run.passed) != (ws.failing, ws.passing):
                raise BenchError(
                    f"{round_}: oci.status says {run.failed} failed, {run.passed} passed;"
                    f" expected {ws.failing} and {ws.passing}"
                )
            log(
                f"  {round_}: {run.seconds:.1f} s, {run.publishes} publishes,"
                f" {run.bytes / 1e6:.2f} MB (final {run.final_bytes / 1e6:.3f} MB),"
                f" {run.progress} progress; CPU server {run.server_cpu:.2f} s,"
                f" pytest {run.pytest_cpu:.2f} s; oci.status p99"
                f" {1000 * percentile(latencies, 0.99):.0f} ms of {len(latencies)};"
                f" shown {shown} {summary!r}"
            )
            runs.append(run)
    finally:
        try:
            await asyncio.wait_for(client.shutdown_session(), timeout=30)
        finally:
            await client.stop()  # type: ignore[no-untyped-call]
    return runs


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(cases: Sequence[Case]) -> str:
    out = [
        "| workspace | run | plain pytest | server: save -> end | publishes | bytes sent"
        " | final diagnostics | bytes / final | aim <= 2x | $/progress | CPU: server"
        " | CPU: its pytest | server / pytest | aim <= 0.25x | oci.status p50 / p99 / max"
        " (n) | aim p99 < 100 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|:-:|---:|---:|---:|---:|:-:|---:|:-:|",
    ]
    for case in cases:
        assert case.plain is not None
        for name, run in (("first", case.first), ("again", case.again)):
            if run is None:
                continue
            ratio = run.bytes / run.final_bytes if run.final_bytes else 0.0
            cpu = run.server_cpu / run.pytest_cpu if run.pytest_cpu else 0.0
            p50, p99 = percentile(run.status, 0.5), percentile(run.status, 0.99)
            top = max(run.status, default=0.0)
            out.append(
                f"| {case.name} | {name} | {case.plain.seconds:.1f} s ({case.plain.cpu:.1f} CPU)"
                f" | {run.seconds:.1f} s | {run.publishes} | {run.bytes / 1e6:.3f} MB"
                f" | {run.final_bytes / 1e6:.3f} MB | {ratio:.2f}x"
                f" | {verdict(ratio <= BYTES_AIM) if run.final_bytes else '-'}"
                f" | {run.progress} ({run.progress_bytes / 1e3:.0f} kB)"
                f" | {run.server_cpu:.2f} s | {run.pytest_cpu:.2f} s | {cpu:.2f}x"
                f" | {verdict(cpu <= CPU_AIM)}"
                f" | {1000 * p50:.0f} / {1000 * p99:.0f} / {1000 * top:.0f} ms ({len(run.status)})"
                f" | {verdict(p99 < STATUS_AIM)} |"
            )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--failing", type=int, default=10_000, help="0 leaves that case out")
    parser.add_argument("--passing", type=int, default=100_000, help="0 leaves that case out")
    parser.add_argument(
        "--rounds", type=int, choices=(1, 2), default=2, help="1: leave out the second save"
    )
    parser.add_argument("--keep", action="store_true", help="keep the workspaces and logs")
    parser.add_argument("--json", type=Path, help="write every sample to this file")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    env = dict(os.environ)
    env.pop("OCI_LSP_REPORT_FD", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    log(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    cases = []
    if args.failing:
        cases.append(Case(f"{args.failing:,} failing", args.failing, 0))
    if args.passing:
        cases.append(Case(f"{args.passing:,} passing", 0, args.passing))
    tmp = Path(tempfile.mkdtemp(prefix="oci-huge-")).resolve()
    try:
        for n, case in enumerate(cases):
            ws = generate(tmp / f"ws{n}", case.failing, case.passing)
            log(f"{case.name}: {ws.root}")
            plain_pytest(ws, env, "--collect-only")  # .pyc files written, as a user's are
            case.plain = plain_pytest(ws, env)
            log(f"  plain pytest: {case.plain.seconds:.1f} s, {case.plain.cpu:.1f} CPU s")
            runs = asyncio.run(measure(ws, env, tmp / f"server-{n}.log", log, args.rounds))
            case.first, case.again = runs[0], (runs[1] if len(runs) > 1 else None)
    except BenchError as exc:
        log(f"measurement failed: {exc}")
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(report(cases))
    save_json(args.json, [asdict(c) for c in cases])
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
