"""A run of a thousand failing tests through a real client (issue 14): the server stays
responsive, a file shows its first failures and a summary of the rest, the editor receives
a small multiple of what it shows, and tests.timeout still stops the run.

The size: plain pytest spends about 10 ms on each failure here (it formats each one), so a
thousand failures are a run of 10 to 20 s on 2 shared cores; bench/huge_runs.py measures
10,000. Only VS Code's capabilities: what is published does not depend on the client.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from oci_lsp.server.diagnostics import MAX_PER_FILE, SUMMARY_CODE
from tests.conftest import WAIT, Editor
from tests.huge_workspace import generate
from tests.lsp_traffic import Traffic

FAILING = 1000
PER_FILE = 125  # more than MAX_PER_FILE: each test file shows a summary too

pytestmark = pytest.mark.parametrize("lsp", ["visual-studio-code"], indirect=True)


def runs_ended(editor: Editor) -> int:
    return sum(
        isinstance(value, types.WorkDoneProgressEnd)
        for values in editor.client.progress_reports.values()
        for value in values
    )


async def save_and_ask_status(editor: Editor, path: Path) -> list[dict[str, Any]]:
    """Save, then ask oci.status back to back until the run has ended: every answer."""
    ended = runs_ended(editor)
    editor.save(path)
    answers: list[dict[str, Any]] = []
    deadline = time.monotonic() + 5 * WAIT
    while runs_ended(editor) == ended:
        answers.append(await editor.command("oci.status"))
        if time.monotonic() > deadline:
            raise AssertionError("the run did not end")
        await asyncio.sleep(0.02)
    return answers


def shown_tests(diagnostics: Any) -> list[str]:
    return [d.data["test"] for d in diagnostics if d.code != SUMMARY_CODE]


async def test_a_thousand_failures_are_shown_capped_and_the_server_answers(
    editor: Editor, tmp_path: Path
) -> None:
    ws = generate(tmp_path / "ws", FAILING, failing_per_file=PER_FILE)
    traffic = Traffic.attach(editor.client)
    await editor.start(ws.root, init_options={"tests": {"scope": "all"}})
    answers = await save_and_ask_status(editor, ws.source)
    # It answered while the results poured in, and saw them come.
    during = [a["tests"]["failed"] for a in answers if a["tests"]["running"]]
    assert len(during) >= 2, "oci.status was not answered during the run"
    assert during[0] < FAILING
    status = await editor.wait_idle()
    assert (status["tests"]["failed"], status["tests"]["passed"]) == (FAILING, 0)

    # calc.py: every failure is at one of its 8 functions; the first 100 by line are f0's
    # (its tests in the order of their files), then one summary for the rest.
    calc = editor.diagnostics(ws.source)
    assert len(calc) == MAX_PER_FILE + 1
    assert shown_tests(calc) == [
        f"tests/test_failing_{i // PER_FILE:04d}.py::test_fails_{i}"
        for i in range(0, 8 * MAX_PER_FILE, 8)
    ]
    assert {d.range.start.line for d in calc[:-1]} == {3}  # def f0
    assert calc[-1].code == SUMMARY_CODE
    assert calc[-1].message == f"and {FAILING - MAX_PER_FILE} more failing tests in this file"
    # Each test file: its first 100 tests, and "and 25 more".
    for n, path in enumerate(ws.failing_files):
        listed = editor.diagnostics(path)
        first = n * PER_FILE
        assert shown_tests(listed) == [
            f"tests/{path.name}::test_fails_{i}" for i in range(first, first + MAX_PER_FILE)
        ]
        assert (
            listed[-1].message == f"and {PER_FILE - MAX_PER_FILE} more failing tests in this file"
        )
        assert listed[-1].severity == 3  # Information: not one more error
    # What the editor received is a small multiple of what it shows (not re-sent per result).
    assert traffic.diagnostics_bytes <= 4 * traffic.final_diagnostics_bytes()

    # The same run again: the same results, nothing to send but what changed (nothing).
    before = traffic.snapshot()
    await save_and_ask_status(editor, ws.source)
    await editor.wait_idle()
    assert traffic.snapshot() == before


async def test_the_timeout_stops_a_run_flooded_with_failures(
    editor: Editor, tmp_path: Path
) -> None:
    ws = generate(tmp_path / "ws", FAILING, failing_per_file=PER_FILE)
    # Each test takes 20 ms more: the run would last at least 20 s; it is stopped at 5.
    (ws.root / "tests" / "conftest.py").write_text(
        "import time\n\nimport pytest\n\n\n@pytest.fixture(autouse=True)\n"
        "def slow():\n    time.sleep(0.02)\n",
        encoding="utf-8",
    )
    await editor.start(ws.root, init_options={"tests": {"scope": "all", "timeout": 5}})
    editor.save(ws.source)
    await editor.wait_until(
        lambda: any("tests.timeout" in m for m in editor.messages()), "the timeout message"
    )
    status = await editor.wait_idle()
    # Stopped in the middle of the flood: some failures seen, not all of them.
    assert 0 < status["tests"]["failed"] < FAILING
    timed_out = [
        d for path in ws.failing_files for d in editor.diagnostics(path) if d.code == "test-timeout"
    ]
    assert len(timed_out) == 1  # the test that was running when the time was up
    assert "5 s" in timed_out[0].message
