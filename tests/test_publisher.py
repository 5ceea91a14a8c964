"""The diagnostics publisher sends a file's list only when it changed (server/diagnostics.py)."""

from __future__ import annotations

from lsprotocol import types
from pygls.workspace import PositionCodec

from oci_lsp.server.diagnostics import DiagnosticsPublisher
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
