"""Benchmark: how long the end of a huge run holds the server's event loop (issue 14).

At a run's end the publisher (server/diagnostics.py) sends every changed file's exact list.
For 10,000 failing tests in files of 50 that is 200 test files of 50 diagnostics and calc.py's
100 and a summary: 7.7 MB of JSON. Sent in one go, a request that arrives meanwhile
(`oci.status`) waits for all of it; sent in turns (FLUSH_TURN), it waits one turn.

This builds those marks in memory and runs the real DiagnosticsPublisher, each list turned
into its JSON-RPC body as pygls would (lsprotocol's converter, json.dumps), while a ticker
task asks the loop every millisecond: the longest gap between its ticks is the longest wait a
request could have had. Both ways in the same run: in turns (the default) and in one go
(`turn` = infinity, the code before). Printed: the longest and the median gap, the time to
send the whole end, and the bytes.

    .venv/bin/python bench/end_flush.py --failing 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import time

from lsprotocol import types
from pygls.protocol import default_converter
from pygls.workspace import PositionCodec

from oci_lsp.server.diagnostics import FLUSH_TURN, DiagnosticsPublisher
from oci_lsp.testing.failures import FailureMark, Span

PER_FILE = 50
FUNCTIONS = 8


def marks(failing: int) -> dict[str, list[FailureMark]]:
    """What a run of `failing` failing tests leaves: each at its line in its test file (50 a
    file) and at its function in calc.py."""
    out: dict[str, list[FailureMark]] = {}
    for i in range(failing):
        path = f"/w/tests/test_failing_{i // PER_FILE:04d}.py"
        test = f"tests/test_failing_{i // PER_FILE:04d}.py::test_{i}"
        at = Span(path, 4 + 3 * (i % PER_FILE), 4, 30)
        message = f"{test}: assert f{i % FUNCTIONS}({i}) == {i + 1}\nE  assert {i} == {i + 1}"
        function = f"calc.f{i % FUNCTIONS}"
        out.setdefault(path, []).append(
            FailureMark(at, "test-failed", message, test, function, "assert")
        )
        out.setdefault("/w/calc.py", []).append(
            FailureMark(
                Span("/w/calc.py", 3 * (i % FUNCTIONS), 4, 6),
                "test-failed",
                message,
                test,
                function,
                "assert",
                origin=at,
            )
        )
    return out


async def one_end(failing: dict[str, list[FailureMark]], turn: float) -> dict[str, float]:
    converter = default_converter()
    sent = [0]

    def publish(uri: str, diagnostics: list[types.Diagnostic]) -> None:
        params = types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics)
        body = {
            "jsonrpc": "2.0",
            "method": "textDocument/publishDiagnostics",
            "params": converter.unstructure(params),
        }
        sent[0] += len(json.dumps(body).encode())

    publisher = DiagnosticsPublisher(
        publish=publish,
        marks_for_path=lambda path: list(failing.get(path, [])),
        line_of=lambda path, line: "    assert f0(1) == 2",
        codec=lambda: PositionCodec(types.PositionEncodingKind.Utf16),
        turn=turn,
    )
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.01)
    publisher.run_started()
    publisher._dirty.update(failing)  # reported during the run, sent at its end
    ended = asyncio.Event()
    started = time.perf_counter()
    publisher.run_finished(then=ended.set)
    await ended.wait()
    seconds = time.perf_counter() - started
    stop.set()
    await ticking
    return {
        "longest_gap_ms": 1000 * max(gaps),
        "median_gap_ms": 1000 * statistics.median(gaps),
        "end_s": seconds,
        "mb": sent[0] / 1e6,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failing", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    failing = marks(args.failing)
    print(f"{args.failing:,} failing tests, {len(failing)} files; median of {args.repeat}")
    print("| the end sent | longest wait of a request | median tick | the end takes | MB |")
    print("|---|---:|---:|---:|---:|")
    rows = {}
    ways = ((f"in turns of {1000 * FLUSH_TURN:g} ms", FLUSH_TURN), ("in one go", math.inf))
    for label, turn in ways:
        runs = [await one_end(failing, turn) for _ in range(args.repeat)]
        row = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        rows[label] = row
        print(
            f"| {label} | {row['longest_gap_ms']:.0f} ms | {row['median_gap_ms']:.1f} ms"
            f" | {row['end_s']:.2f} s | {row['mb']:.1f} |"
        )
    turns, one = rows.values()
    print(
        f"longest wait: {turns['longest_gap_ms'] / one['longest_gap_ms']:.3f}x of one go;"
        f" the whole end: {turns['end_s'] / one['end_s']:.2f}x"
    )


if __name__ == "__main__":
    asyncio.run(main())
