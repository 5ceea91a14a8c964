"""The diagnostics publisher sends a file's list only when it changed, at most MAX_PER_FILE
failures and a summary of the rest, less often as a run grows (server/diagnostics.py)."""

from __future__ import annotations

import asyncio
import itertools
import time

from lsprotocol import types
from pygls.workspace import PositionCodec

from oci_lsp.server.diagnostics import (
    MAX_PER_FILE,
    SUMMARY_CODE,
    DiagnosticsPublisher,
)
from oci_lsp.testing.failures import FailureMark, Span, Suspect


def mark(test: str) -> FailureMark:
    span = Span("/w/tests/test_a.py", 3, 4, 20)
    return FailureMark(span, "test-failed", f"{test}: assert 0", test, None, "assert 0")


def test_the_same_list_is_sent_once_and_clearing_once() -> None:
    sent: list[tuple[str, list[types.Diagnostic]]] = []
    marks: list[FailureMark] = [mark("tests/test_a.py::test_x")]
    publisher = DiagnosticsPublisher(
        publish=lambda uri, diagnostics: sent.append((uri, diagnostics)),
        marks_for_path=lambda path: list(marks),
        line_of=lambda path, line: "    assert 0",
        codec=lambda: PositionCodec(types.PositionEncodingKind.Utf16),
    )
    path = "/w/tests/test_a.py"
    publisher.publish_now(path)
    publisher.publish_now(path)  # the ordered run reports the same failure again
    assert [len(d) for _, d in sent] == [1]
    marks.append(mark("tests/test_a.py::test_y"))
    publisher.publish_now(path)
    marks.clear()
    publisher.publish_now(path)
    publisher.publish_now(path)
    assert [len(d) for _, d in sent] == [1, 2, 0]
    assert {uri for uri, _ in sent} == {"file:///w/tests/test_a.py"}
    publisher.publish_now(path, force=True)  # a reopened file gets its list again
    assert len(sent) == 4


class Client:
    """What the publisher sent, and the marks it reads (many tests, one source line)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[types.Diagnostic]]] = []
        self.marks: dict[str, list[FailureMark]] = {}
        self.publisher = DiagnosticsPublisher(
            publish=lambda uri, diagnostics: self.sent.append((uri, diagnostics)),
            marks_for_path=lambda path: list(self.marks.get(path, [])),
            line_of=lambda path, line: "    assert f(1) == 2",
            codec=lambda: PositionCodec(types.PositionEncodingKind.Utf16),
        )

    def fail(self, first: int, count: int) -> None:
        """Tests first..first+count fail: each on its own line of the test file, all of them
        at the one function in calc.py."""
        for i in range(first, first + count):
            test = f"tests/test_a.py::test_{i}"
            at = Span("/w/tests/test_a.py", 10 + 3 * i, 4, 20)
            self.marks.setdefault(at.path, []).append(
                FailureMark(at, "test-failed", f"{test}: assert 0", test, "calc.f", "assert 0")
            )
            self.marks.setdefault("/w/calc.py", []).append(
                FailureMark(
                    Span("/w/calc.py", 0, 4, 5),
                    "test-failed",
                    f"{test}: assert 0",
                    test,
                    "calc.f",
                    "assert 0",
                    origin=at,
                )
            )

    def last(self, path: str) -> list[types.Diagnostic]:
        uri = "file://" + path
        return next(d for u, d in reversed(self.sent) if u == uri)


def shown_tests(diagnostics: list[types.Diagnostic]) -> list[str]:
    return [d.data["test"] for d in diagnostics if d.code != SUMMARY_CODE]


def test_a_file_shows_the_first_failures_by_line_and_a_summary_of_the_rest() -> None:
    client = Client()
    client.fail(0, MAX_PER_FILE + 250)
    for path in ("/w/tests/test_a.py", "/w/calc.py"):
        client.publisher.publish_now(path)
        shown = client.last(path)
        assert len(shown) == MAX_PER_FILE + 1
        # The first by line; on one line (calc.py), by where the failing tests are.
        assert shown_tests(shown) == [f"tests/test_a.py::test_{i}" for i in range(MAX_PER_FILE)]
        summary = shown[-1]
        assert summary.code == SUMMARY_CODE
        assert summary.message == "and 250 more failing tests in this file"
        assert summary.severity == types.DiagnosticSeverity.Information
        assert summary.data == {"hidden": 250}  # no test, no kind: no quick-fix on it
    # The summary is at the first failure it stands for.
    assert client.last("/w/tests/test_a.py")[-1].range.start.line == 10 + 3 * MAX_PER_FILE


def test_during_a_run_a_full_list_stays_until_the_end() -> None:
    client = Client()
    publisher = client.publisher
    path = "/w/tests/test_a.py"
    publisher.run_started()
    client.fail(0, 3)
    publisher.publish_now(path)
    client.fail(3, MAX_PER_FILE)  # fills the list: the summary appears
    publisher.publish_now(path)
    assert [len(d) for _, d in client.sent] == [3, MAX_PER_FILE + 1]
    assert client.last(path)[-1].message == "and 3 more failing tests in this file"
    for first in range(MAX_PER_FILE + 3, 5003, 100):  # only the count grows: nothing sent
        client.fail(first, 100)
        publisher.publish_now(path)
    # A failure on an earlier line changes which ones are shown: that waits too.
    client.marks[path].append(
        FailureMark(Span(path, 1, 0, 5), "test-error", "conftest", "tests/test_a.py::t", None, "")
    )
    publisher.publish_now(path)
    assert len(client.sent) == 2
    publisher.run_finished()  # the exact list at the end
    assert len(client.sent) == 3
    assert client.last(path)[0].code == "test-error"
    assert client.last(path)[-1].message == "and 4,904 more failing tests in this file"
    publisher.run_finished()  # nothing new
    assert len(client.sent) == 3
    # The next run fixes all but 10 of them: a list no longer full is sent during the run.
    publisher.run_started()
    del client.marks[path][10:]
    publisher.publish_now(path)
    assert [len(d) for _, d in client.sent[3:]] == [10]


async def test_during_a_run_a_file_is_sent_at_doubling_intervals() -> None:
    now = [100.0]
    client = Client()
    client.publisher = publisher = DiagnosticsPublisher(
        publish=lambda uri, diagnostics: client.sent.append((uri, diagnostics)),
        marks_for_path=lambda path: list(client.marks.get(path, [])),
        line_of=lambda path, line: "    assert f(1) == 2",
        codec=lambda: PositionCodec(types.PositionEncodingKind.Utf16),
        clock=lambda: now[0],
    )
    path = "/w/tests/test_a.py"
    publisher.run_started()
    sent_at = []
    for step in range(80):  # a failure every 0.05 s for 4 s, a flush after each
        client.fail(step, 1)
        publisher.changed([path])
        publisher.flush()
        if len(client.sent) > len(sent_at):
            sent_at.append(round(now[0] - 100.0, 2))
        now[0] += 0.05
    # At once, then 0.1 s, 0.2 s, 0.4 s ... later (at the first flush after): 6 lists in 4 s,
    # not 80.
    assert sent_at[0] == 0.0
    gaps = [b - a for a, b in itertools.pairwise(sent_at)]
    wanted = [0.1, 0.2, 0.4, 0.8, 1.6]
    assert len(gaps) == len(wanted)
    assert all(w - 1e-6 <= g <= w + 0.05 + 1e-6 for g, w in zip(gaps, wanted, strict=True)), gaps
    publisher.run_finished()  # and the exact list at the end
    assert len(client.sent) == 7
    assert len(client.sent[-1][1]) == 80


async def test_the_end_of_a_run_sends_in_turns_and_then_ends_its_progress() -> None:
    # 40 files at a run's end, each list slow to build: sent over several turns of the loop,
    # with another task (a request) served between them, and the progress ended after the
    # last list, never before.
    events: list[str] = []

    def marks_for_path(path: str) -> list[FailureMark]:
        time.sleep(0.002)  # building a long list
        return [mark(f"{path}::test_x")]

    publisher = DiagnosticsPublisher(
        publish=lambda uri, diagnostics: events.append("publish"),
        marks_for_path=marks_for_path,
        line_of=lambda path, line: "    assert 0",
        codec=lambda: PositionCodec(types.PositionEncodingKind.Utf16),
    )
    publisher.run_started()
    # Failures reported during the run, none sent yet (their files' turns were later).
    publisher._dirty.update(f"/w/tests/test_{i}.py" for i in range(40))

    async def request() -> None:  # oci.status: the run is not over until its end is sent
        await asyncio.sleep(0)
        events.append("request" if publisher.ending else "request after the end")

    served = asyncio.ensure_future(request())
    ended = asyncio.Event()
    publisher.run_finished(then=lambda: (events.append("end"), ended.set()))
    await asyncio.wait_for(ended.wait(), 10)
    await served
    assert events.count("publish") == 40 and events[-1] == "end"
    await publisher.ended()  # nothing left to wait for
    assert not publisher.ending
    assert 0 < events.index("request") < 40  # served while the lists were being sent


def test_a_ranked_mark_carries_its_suspects_in_data_in_the_clients_encoding() -> None:
    sent: list[tuple[str, list[types.Diagnostic]]] = []
    at = Span("/w/calc.py", 4, 4, 9)
    suspects = [
        Suspect("/w/calc.py", "parse", "calc.parse", at, 0.912, "ran in 1 of 1 failing tests"),
        Suspect("/w/util.py", "ünï", "util.ünï", Span("/w/util.py", 0, 5, 8), 0.7071, "x"),
    ]
    ranked = FailureMark(at, "test-failed", "t: assert 0", "t", "calc.parse", "", suspects=suspects)
    plain = FailureMark(Span("/w/calc.py", 9, 4, 9), "test-failed", "u: x", "u", "calc.g", "")
    publisher = DiagnosticsPublisher(
        publish=lambda uri, diagnostics: sent.append((uri, diagnostics)),
        marks_for_path=lambda path: [ranked, plain],
        # A line with a character of two UTF-16 units before the name: columns move.
        line_of=lambda path, line: "def 𝔘ünï():" if path == "/w/util.py" else "def parse():",
        codec=lambda: PositionCodec(types.PositionEncodingKind.Utf16),
    )
    publisher.publish_now("/w/calc.py")
    [(_, [first, second])] = sent
    assert first.data["suspects"] == [
        {
            "function": "calc.parse",
            "uri": "file:///w/calc.py",
            "range": {"start": {"line": 4, "character": 4}, "end": {"line": 4, "character": 9}},
            "score": 0.91,
            "why": "ran in 1 of 1 failing tests",
        },
        {
            "function": "util.ünï",
            "uri": "file:///w/util.py",
            "range": {"start": {"line": 0, "character": 6}, "end": {"line": 0, "character": 9}},
            "score": 0.71,
            "why": "x",
        },
    ]
    assert "suspects" not in second.data  # no ranking: the data of CONTRACT.md as it was
