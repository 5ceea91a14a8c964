"""The runner on its own: real pytest runs, the standby interpreter, the process group."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from oci_lsp.testing.results import CollectionError, TestReport
from oci_lsp.testing.runner import EventReader, PytestLauncher, RunSpec, run_tests
from tests.conftest import write_files
from tests.test_failures import locator


class Listener:
    def __init__(self) -> None:
        self.total = 0
        self.ids: list[str] = []
        self.reports: dict[str, TestReport] = {}
        self.errors: list[CollectionError] = []
        self.changes: list[str] = []
        self.seed: int | None = None

    def collected(self, count: int) -> None:
        self.total = count

    def started(self, test_id: str) -> None:
        self.ids.append(test_id)

    def report(self, report: TestReport) -> None:
        self.reports[report.test_id] = report

    def collection_error(self, error: CollectionError) -> None:
        self.errors.append(error)

    def configured(self, changes: Sequence[str], seed: int | None) -> None:
        self.changes, self.seed = list(changes), seed


WORKSPACE = {
    "calc.py": "def add(a, b):\n    return a - b\n",
    "tests/test_calc.py": """
        from calc import add

        def test_add():
            assert add(1, 2) == 3

        def test_fine():
            assert add(2, 2) == 0
        """,
}


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


async def test_a_run_reports_each_test(tmp_path: Path) -> None:
    root = write_files(tmp_path, WORKSPACE)
    listener = Listener()
    result = await run_tests(RunSpec(root, sys.executable), listener)
    assert result.status == "completed" and result.exit_code == 1
    assert listener.total == 2
    assert listener.ids == ["tests/test_calc.py::test_add", "tests/test_calc.py::test_fine"]
    failed = listener.reports["tests/test_calc.py::test_add"]
    assert failed.outcome == "failed"
    assert failed.message == "assert add(1, 2) == 3 (got -1)"
    assert failed.path == str(root / "tests/test_calc.py") and failed.line == 3
    assert failed.called is not None and failed.called.qualname == "add"
    assert listener.reports["tests/test_calc.py::test_fine"].outcome == "passed"


async def test_the_standby_runs_current_code_and_ends_on_close(tmp_path: Path) -> None:
    root = write_files(tmp_path, WORKSPACE)
    launcher = PytestLauncher()
    launcher.prepare(root, sys.executable)
    standby = launcher._standby
    assert standby is not None and alive(standby.child.popen.pid)
    # The code changes after the standby started: the run must see the change.
    (root / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    listener = Listener()
    result = await run_tests(RunSpec(root, sys.executable), listener, launcher)
    assert result.exit_code == 1
    assert listener.reports["tests/test_calc.py::test_add"].outcome == "passed"
    assert listener.reports["tests/test_calc.py::test_fine"].outcome == "failed"
    # The next standby is already there; closing the launcher ends it.
    following = launcher._standby
    assert following is not None and following is not standby
    launcher.close()
    following.child.popen.wait(timeout=30)
    assert not alive(following.child.popen.pid)


async def test_a_missing_interpreter_is_reported(tmp_path: Path) -> None:
    root = write_files(tmp_path, WORKSPACE)
    result = await run_tests(RunSpec(root, str(tmp_path / "no-python")), Listener())
    assert result.status == "failed-to-start"
    assert result.message and "tests.python" in result.message


async def test_a_selection_runs_only_those_files_and_leaves_no_scratch(tmp_path: Path) -> None:
    root = write_files(tmp_path, {**WORKSPACE, "tests/test_other.py": "def test_x():\n    pass\n"})
    listener = Listener()
    spec = RunSpec(root, sys.executable, selection=[str(root / "tests/test_other.py")])
    before = set(Path(tempfile.gettempdir()).glob("oci-run-*"))
    await run_tests(spec, listener)
    assert list(listener.reports) == ["tests/test_other.py::test_x"]
    assert set(Path(tempfile.gettempdir()).glob("oci-run-*")) == before  # nothing left behind


class Reports(Listener):
    """Every report, in order (a test reported twice shows twice)."""

    def __init__(self) -> None:
        super().__init__()
        self.all: list[TestReport] = []

    def report(self, report: TestReport) -> None:
        super().report(report)
        self.all.append(report)


async def test_subtests_make_one_result_per_test_with_the_first_failure(tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            "calc.py": "def double(x):\n    return x * 2 if x != 3 else 7\n",
            "tests/test_calc.py": """
                import unittest
                from calc import double

                class DoubleTests(unittest.TestCase):
                    def test_each(self):
                        for x in range(6):
                            with self.subTest(x=x):
                                self.assertEqual(double(x), 2 * x)

                    def test_fine(self):
                        for x in range(4):
                            with self.subTest(x=x):
                                self.assertEqual(double(x), 2 * x) if x != 3 else None

                def test_with_the_fixture(subtests):
                    for x in (2, 3, 4):
                        with subtests.test(msg="double", x=x):
                            assert double(x) == 2 * x
                """,
        },
    )
    listener = Reports()
    await run_tests(RunSpec(root, sys.executable), listener)
    # One result per test, as pytest counts tests, not one per subtest.
    assert sorted(r.test_id for r in listener.all) == [
        "tests/test_calc.py::DoubleTests::test_each",
        "tests/test_calc.py::DoubleTests::test_fine",
        "tests/test_calc.py::test_with_the_fixture",
    ]
    each = listener.reports["tests/test_calc.py::DoubleTests::test_each"]
    assert each.outcome == "failed"
    # The failed subtest's own failure: its message, and its frame in the function at fault.
    assert each.message.startswith("subtest (x=3): AssertionError: 7 != 6"), each.message
    assert any(f.function == "test_each" for f in each.frames)
    assert "subtest (x=3) failed" in each.longrepr
    fixture = listener.reports["tests/test_calc.py::test_with_the_fixture"]
    assert fixture.message == "subtest [double] (x=3): assert double(x) == 2 * x (got 7)"
    assert listener.reports["tests/test_calc.py::DoubleTests::test_fine"].outcome == "passed"


async def test_a_test_inherited_from_a_mixin_in_another_file_resolves_its_call(
    tmp_path: Path,
) -> None:
    """unittest suites share tests through base classes in another file (cachetools puts them
    in tests/__init__.py): the failing statement is read from the file of the test's code."""
    root = write_files(
        tmp_path / "ws",
        {
            "store.py": "class Store:\n    def get(self, key):\n        return None\n",
            "tests/__init__.py": """
                from store import Store

                class StoreMixin:
                    def test_get(self):
                        store = Store()
                        self.assertEqual(store.get(1), 1)
                """,
            "tests/test_store.py": """
                import unittest
                from tests import StoreMixin

                class StoreTest(StoreMixin, unittest.TestCase):
                    pass
                """,
        },
    )
    listener = Listener()
    await run_tests(RunSpec(root, sys.executable), listener)
    [report] = listener.reports.values()
    assert report.called is not None and report.called.qualname == "Store.get"


async def test_a_property_read_in_the_failing_assert_is_the_function_under_test(
    tmp_path: Path,
) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            "shape.py": """
                import functools

                class Square:
                    def __init__(self, side):
                        self.side = side

                    @property
                    def area(self):
                        return self.side * 4

                    @functools.cached_property
                    def perimeter(self):
                        return self.side * self.side
                """,
            "tests/test_shape.py": """
                from shape import Square

                def test_area():
                    assert Square(3).area == 9

                def test_perimeter():
                    square = Square(3)
                    assert square.perimeter == 12
                """,
        },
    )
    listener = Listener()
    await run_tests(RunSpec(root, sys.executable), listener)
    called = {r.test_id.rpartition("::")[2]: r.called for r in listener.reports.values()}
    assert {k: v.qualname if v else None for k, v in called.items()} == {
        "test_area": "Square.area",
        "test_perimeter": "Square.perimeter",
    }


async def test_a_flood_of_events_gives_the_loop_back_in_turns(tmp_path: Path) -> None:
    """500 results already in the pipe, each taking the listener 0.2 ms: readline() would hand
    them over without ever yielding; the reader gives the loop back every EVENT_TURN, so a
    request (here a ticker) gets in between."""
    log: list[str] = []

    class Slow(Listener):
        def report(self, report: TestReport) -> None:
            end = time.perf_counter() + 0.0002
            while time.perf_counter() < end:
                pass
            log.append("report")

    read_fd, write_fd = os.pipe()
    events = b"".join(
        json.dumps({"e": "result", "nodeid": f"t.py::test_{i}", "outcome": "passed"}).encode()
        + b"\n"
        for i in range(500)
    )
    assert len(events) < 60_000  # all of it fits in the pipe before the reader starts
    os.write(write_fd, events)
    os.close(write_fd)
    done = False

    async def ticker() -> None:
        while not done:
            log.append("tick")
            await asyncio.sleep(0)

    ticking = asyncio.ensure_future(ticker())
    await EventReader(Slow(), tmp_path).pump(read_fd)
    done = True
    await ticking
    reports = [n for n, entry in enumerate(log) if entry == "report"]
    assert len(reports) == 500
    ticks_between = [n for n, entry in enumerate(log) if entry == "tick"]
    assert any(reports[0] < n < reports[-1] for n in ticks_between)


async def functions_named(root: Path) -> tuple[dict[str, str | None], dict[str, TestReport]]:
    """A real run's reports by test name, and the function each failure's diagnostic names
    (the rule of CONTRACT.md)."""
    listener = Listener()
    await run_tests(RunSpec(root, sys.executable), listener)
    reports = {r.test_id.rpartition("::")[2]: r for r in listener.reports.values()}
    found = locator(root)
    named = {}
    for name, report in reports.items():
        marks = found.marks_for(report)
        named[name] = marks[0].function if marks else None
    return named, reports


async def test_a_callable_instance_called_in_the_failing_assert_is_its_call(
    tmp_path: Path,
) -> None:
    """`assert excepting(3) == -1`, `excepting` an instance of a class with `__call__`: the
    function under test is that `__call__`; a bound method kept in a name is its method."""
    root = write_files(
        tmp_path / "ws",
        {
            "funcs.py": """
                class Excepting:
                    def __init__(self, default):
                        self.default = default

                    def __call__(self, value):
                        return value


                class Parser:
                    def parse(self, text):
                        return text


                excepting = Excepting(-1)
                parse = Parser().parse
                """,
            "tests/test_funcs.py": """
                from funcs import excepting, parse

                def test_excepting():
                    assert excepting(3) == -1

                def test_parse():
                    assert parse("1") == 1
                """,
        },
    )
    functions, _ = await functions_named(root)
    assert functions == {
        "test_excepting": "funcs.Excepting.__call__",
        "test_parse": "funcs.Parser.parse",
    }


async def test_the_exceptions_a_failure_was_chained_from_name_the_function(
    tmp_path: Path,
) -> None:
    """pytest.raises(match=...) re-raises an IndexError with another message as an
    AssertionError (`from None`), and a test may `raise ... from` what it caught: the frames
    are those of the IndexError, so the function is where it was raised, not None. An assert
    in an `except:` block is about its own call, not the exception it handled."""
    root = write_files(
        tmp_path / "ws",
        {
            "seq.py": """
                class Seq:
                    def __init__(self, items):
                        self.items = items

                    def __getitem__(self, n):
                        self._check(n)
                        return self.items[n]

                    def _check(self, n):
                        if n >= len(self.items):
                            raise IndexError("no such item")


                def double(x):
                    return x * 3
                """,
            "tests/test_seq.py": """
                import pytest
                from seq import Seq, double

                def test_match():
                    seq = Seq([1])
                    with pytest.raises(IndexError, match="out of range"):
                        seq[5]

                def test_from():
                    seq = Seq([1])
                    try:
                        seq[5]
                    except IndexError as error:
                        raise AssertionError("the lookup failed") from error

                def test_handled():
                    seq = Seq([1])
                    try:
                        seq[5]
                    except IndexError:
                        assert double(2) == 4
                """,
        },
    )
    functions, reports = await functions_named(root)
    assert functions == {
        "test_match": "seq.Seq._check",
        "test_from": "seq.Seq._check",
        "test_handled": "seq.double",
    }
    chained = reports["test_match"].chained_frames
    assert [f.function for f in chained] == ["test_match", "__getitem__", "_check"]
    assert reports["test_handled"].chained_frames == []
