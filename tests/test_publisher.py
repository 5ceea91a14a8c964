"""The diagnostics publisher sends a file's list only when it changed, at most MAX_PER_FILE
failures and a summary of the rest, less often as a run grows (server/diagnostics.py)."""

from __future__ import annotations

from lsprotocol import types
from pygls.workspace import PositionCodec

from oci_lsp.server.diagnostics import (
    FLUSH_INTERVAL,
    MAX_PER_FILE,
    SUMMARY_CODE,
    DiagnosticsPublisher,
)
from oci_lsp.testing.failures import FailureMark, Span


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


def test_during_a_run_only_a_change_of_what_is_shown_is_sent() -> None:
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
    for first in range(MAX_PER_FILE + 3, 5000, 100):  # only the count grows: nothing sent
        client.fail(first, 100)
        publisher.publish_now(path)
    assert len(client.sent) == 2
    # A failure on an earlier line changes what is shown: sent at once, count and all.
    client.marks[path].append(
        FailureMark(Span(path, 1, 0, 5), "test-error", "conftest", "tests/test_a.py::t", None, "")
    )
    publisher.publish_now(path)
    assert len(client.sent) == 3
    assert client.last(path)[0].code == "test-error"
    client.fail(5003, 10)
    publisher.publish_now(path)
    assert len(client.sent) == 3
    publisher.run_finished()  # the exact count at the end
    assert len(client.sent) == 4
    assert client.last(path)[-1].message == "and 4,914 more failing tests in this file"
    publisher.run_finished()  # nothing new
    assert len(client.sent) == 4


def test_the_flush_interval_grows_with_the_work_of_the_run() -> None:
    client = Client()
    publisher = client.publisher
    publisher.run_started()
    client.fail(0, 10)
    publisher.publish_now("/w/tests/test_a.py")
    assert publisher.interval() == FLUSH_INTERVAL  # a run with little to show: never slowed
    client.fail(10, 20_000)
    publisher.publish_now("/w/tests/test_a.py")
    publisher.publish_now("/w/calc.py")
    # 40,000 marks ordered, 200 sent: about 20x the first interval.
    assert 15 * FLUSH_INTERVAL < publisher.interval() < 25 * FLUSH_INTERVAL
    publisher.run_finished()
    publisher.run_started()  # a new run starts at the short interval again
    assert publisher.interval() == FLUSH_INTERVAL
