"""Per-test line spectra (issue 15): real pytest runs with RunSpec(record=True), in our
interpreter (sys.settrace: Python 3.11), and in pyenv's 3.12.1 (sys.monitoring) and 3.10.13
(sys.settrace), each with pytest from PyPI; the same workspace gives the same spectra."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from oci_lsp.testing.results import Collected
from oci_lsp.testing.runner import PytestLauncher, RunSpec, run_tests
from tests.conftest import write_files
from tests.plugin_projects import plugins_python
from tests.venvs import pyenv_python, pytest_venv

# Each line that matters carries a `# name` marker; at() finds them.
WORKSPACE = {
    "pytest.ini": "[pytest]\naddopts = --doctest-modules\n",
    "calc.py": '''
        import threading


        def helper(x):
            if x > 0:  # helper-if
                return x + 1  # helper-positive
            return -x  # helper-other


        def add(a, b):
            def inner(y):  # add-def
                return y * 2  # inner
            return inner(a) + helper(b)  # add


        def count(n):
            for i in range(n):  # gen-for
                yield i  # gen-yield


        def fact(n):
            return 1 if n <= 1 else n * fact(n - 1)  # fact


        def in_thread():
            out = []  # thread-out
            worker = threading.Thread(target=lambda: out.append(helper(-3)))  # thread-new
            worker.start()  # thread-start
            worker.join()  # thread-join
            return out  # thread-return


        def broken():
            raise ValueError("no")  # broken


        def double(x):
            """
            >>> double(2)
            4
            """
            return x * 2  # double


        class Box:
            def __init__(self, size):
                self.size = size  # box-init

            @property
            def area(self):
                return self.size * self.size  # box-area
        ''',
    "tests/conftest.py": """
        import pytest
        import calc

        @pytest.fixture
        def box():
            yield calc.Box(2)
            calc.helper(0)  # the teardown
        """,
    "tests/test_calc.py": """
        import pathlib
        import sys
        import calc

        def test_add():
            assert calc.add(1, 2) == 5

        def test_add_fails():
            assert calc.add(1, -2) == 0

        def test_count():
            assert list(calc.count(3)) == [0, 1, 2]

        def test_fact():
            assert calc.fact(4) == 24

        def test_thread():
            assert calc.in_thread() == [3]

        def test_raises():
            calc.broken()

        def test_box(box):
            assert box.area == 4

        def test_way():
            monitoring = getattr(sys, "monitoring", None)
            if monitoring and monitoring.get_tool(3) == "oci-lsp spectra":
                way = "sys.monitoring"
            else:
                way = "sys.settrace" if sys.gettrace() else "none"
            (pathlib.Path(__file__).parent / "way").write_text(way)
        """,
}

CALC = {
    "tests/test_calc.py::test_add": ["add-def", "add", "inner", "helper-if", "helper-positive"],
    "tests/test_calc.py::test_add_fails": ["add-def", "add", "inner", "helper-if", "helper-other"],
    "tests/test_calc.py::test_count": ["gen-for", "gen-yield"],
    "tests/test_calc.py::test_fact": ["fact"],
    "tests/test_calc.py::test_thread": [
        *("thread-out", "thread-new", "thread-start", "thread-join", "thread-return"),
        *("helper-if", "helper-other"),  # in the thread the test started
    ],
    "tests/test_calc.py::test_raises": ["broken"],
    # The fixture's setup (__init__) and teardown (helper(0)) belong to the test.
    "tests/test_calc.py::test_box": ["box-init", "box-area", "helper-if", "helper-other"],
    "tests/test_calc.py::test_way": [],
    "calc.py::calc.double": ["double"],
}


def at(path: Path, names: Sequence[str]) -> frozenset[int]:
    """The 1-based lines of `path` marked `# NAME` for each name."""
    lines = path.read_text().splitlines()
    found = {n for n, text in enumerate(lines, 1) for name in names if text.endswith(f"# {name}")}
    assert len(found) == len(names), (names, found)
    return frozenset(found)


OURS = "sys.monitoring" if sys.version_info >= (3, 12) else "sys.settrace"


def interpreter(which: str) -> str:
    """Our own interpreter, or pyenv's Python `which` in a virtualenv with pytest."""
    if which == "ours":
        return sys.executable
    return str(pytest_venv(pyenv_python(which)))


@pytest.mark.parametrize(
    ("which", "way"),
    [("ours", OURS), ("3.12.1", "sys.monitoring"), ("3.10.13", "sys.settrace")],
    ids=["ours", "3.12", "3.10"],
)
async def test_each_test_records_the_lines_of_the_workspace_it_ran(
    tmp_path: Path, which: str, way: str
) -> None:
    root = write_files(tmp_path / "ws", WORKSPACE)
    python = interpreter(which)
    collected = Collected()
    result = await run_tests(RunSpec(root, python, record=True), collected)
    assert result.status == "completed", result.output_tail
    assert {r.test_id: r.outcome for r in collected.reports} == {
        **{test: "passed" for test in CALC},
        "tests/test_calc.py::test_add_fails": "failed",
        "tests/test_calc.py::test_raises": "failed",
    }
    calc = str(root / "calc.py")
    tests = str(root / "tests/test_calc.py")
    assert set(collected.spectra) == set(CALC)
    for test, names in CALC.items():
        spectrum = collected.spectra[test]
        assert spectrum.get(calc, frozenset()) == at(root / "calc.py", names), test
        # Test files are recorded too (the ranking leaves them out); pytest's and the
        # interpreter's own code never is.
        assert set(spectrum) <= {calc, tests, str(root / "tests/conftest.py")}, test
    # The failing statement itself is in its test's spectrum.
    assert 9 in collected.spectra["tests/test_calc.py::test_add_fails"][tests]
    assert (root / "tests/way").read_text() == way


async def test_a_run_without_record_sends_none_even_if_the_server_was_started_recording(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server started from a recorded run's test inherits OCI_LSP_SPECTRA=1: its own runs
    record only when asked."""
    monkeypatch.setenv("OCI_LSP_SPECTRA", "1")
    root = write_files(tmp_path / "ws", WORKSPACE)
    collected = Collected()
    await run_tests(RunSpec(root, sys.executable), collected)
    assert len(collected.reports) == len(CALC)
    assert collected.spectra == {}
    assert (root / "tests/way").read_text() == "none"


async def test_the_standby_records_the_run_that_asks_and_only_that_one(tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", WORKSPACE)
    launcher = PytestLauncher()
    try:
        launcher.prepare(root, sys.executable)  # started before the run, as on a save
        selection = [str(root / "tests/test_calc.py")]
        plain, recorded = Collected(), Collected()
        await run_tests(RunSpec(root, sys.executable, selection=selection), plain, launcher)
        spec = RunSpec(root, sys.executable, selection=selection, record=True)
        await run_tests(spec, recorded, launcher)
    finally:
        launcher.close()
    assert plain.spectra == {}
    assert len(recorded.spectra) == 8  # the test file's tests, no doctest selected
    add = recorded.spectra["tests/test_calc.py::test_add"][str(root / "calc.py")]
    assert add == at(root / "calc.py", CALC["tests/test_calc.py::test_add"])


async def test_a_spectrum_bigger_than_a_big_event_arrives_whole(tmp_path: Path) -> None:
    """A test that runs 60,000 lines: its event (over 256 kB) is decoded off the event loop."""
    body = "".join(f"    total += {n}\n" for n in range(60_000))
    root = write_files(
        tmp_path / "ws",
        {
            "tests/test_long.py": "from long import long\n\ndef test_long():\n    assert long() > 0\n"
        },
    )
    (root / "long.py").write_text(f"def long():\n    total = 0\n{body}    return total\n")
    collected = Collected()
    await run_tests(RunSpec(root, sys.executable, record=True), collected)
    [spectrum] = collected.spectra.values()
    assert spectrum[str(root / "long.py")] == frozenset(range(2, 60_004))


async def test_a_project_under_coverage_records_and_its_tracer_is_put_back(
    tmp_path: Path,
) -> None:
    """pytest-cov in addopts (parse and wcwidth do this): the run turns it off (--no-cov) and
    records; a tracer of the project's own (set in its conftest) is back after the tests."""
    python = plugins_python()  # pytest-cov and coverage among the plugins
    root = write_files(
        tmp_path / "ws",
        {
            "pytest.ini": "[pytest]\naddopts = --cov=calc --cov-report=term\n",
            "calc.py": WORKSPACE["calc.py"],
            "tests/conftest.py": """
                import pathlib
                import sys

                def theirs(frame, event, arg):
                    return None

                def pytest_sessionstart(session):
                    sys.settrace(theirs)

                def pytest_sessionfinish(session):
                    back = sys.gettrace() is theirs
                    (pathlib.Path(__file__).parent / "tracer-back").write_text(str(back))
                    sys.settrace(None)
                """,
            "tests/test_calc.py": "import calc\n\ndef test_add():\n    assert calc.add(1, 2) == 5\n",
        },
    )
    collected = Collected()
    result = await run_tests(RunSpec(root, python, record=True), collected)
    assert "coverage off (--no-cov)" in result.changes
    assert collected.spectra["tests/test_calc.py::test_add"][str(root / "calc.py")] == at(
        root / "calc.py", CALC["tests/test_calc.py::test_add"]
    )
    assert (root / "tests/tracer-back").read_text() == "True"


REPORTED = {
    # -x in the project's options: the locate run still runs every test of its files.
    "pytest.ini": "[pytest]\naddopts = -x\n",
    "point.py": """
        class Point:
            def __init__(self, x):
                self.x = x  # init

            def __eq__(self, other):
                return self.x == other.x  # eq

            def __repr__(self):
                return f"Point({self.x})"  # repr
        """,
    "tests/test_point.py": """
        import unittest
        from point import Point

        def test_assert_fails():
            assert Point(1) == Point(2)

        class TestCase(unittest.TestCase):
            def test_assert_equal_fails(self):
                self.assertEqual(Point(1), Point(2))

        def test_repr():
            assert repr(Point(3)) == "Point(3)"
        """,
}


@pytest.mark.parametrize("which", ["ours", "3.12.1"], ids=["ours", "3.12"])
async def test_what_the_failure_report_runs_is_not_the_tests(tmp_path: Path, which: str) -> None:
    """pytest's assertion explanation and unittest's assertEqual message call the project's
    __repr__, in failing tests only: a perfect spectrum for an innocent function. Those lines
    are not recorded; the same __repr__ called by a test is."""
    root = write_files(tmp_path / "ws", REPORTED)
    collected = Collected()
    result = await run_tests(RunSpec(root, interpreter(which), record=True), collected)
    assert result.status == "completed", result.output_tail
    outcomes = {r.test_id.rpartition("::")[2]: r.outcome for r in collected.reports}
    assert outcomes == {
        "test_assert_fails": "failed",
        "test_assert_equal_fails": "failed",
        "test_repr": "passed",
    }
    point = str(root / "point.py")
    ran = {t.rpartition("::")[2]: s[point] for t, s in collected.spectra.items()}
    assert ran["test_assert_fails"] == at(root / "point.py", ["init", "eq"])
    assert ran["test_assert_equal_fails"] == at(root / "point.py", ["init", "eq"])
    assert ran["test_repr"] == at(root / "point.py", ["init", "repr"])


CACHED = {
    "width.py": """
        import functools


        def _measure(text):
            return len(text)  # measure


        @functools.lru_cache(maxsize=100)
        def width(text):
            return _measure(text)  # width


        class Table:
            @staticmethod
            @functools.cache
            def rows(n):
                return list(range(n))  # rows

            @functools.lru_cache
            def cell(self, n):
                return n * 2  # cell


        TABLE = Table()
        """,
    "tests/test_zz_later.py": """
        def test_later():
            pass
        """,
    "tests/test_width.py": """
        import functools
        from width import TABLE, Table, width

        @functools.lru_cache
        def expected():
            return 5  # expected

        def test_first():
            assert width("hello") == expected()
            assert Table.rows(2) == [0, 1]
            assert TABLE.cell(3) == 6

        def test_second():
            assert width("hello") == expected()
            assert Table.rows(2) == [0, 1]
            assert TABLE.cell(3) == 6
        """,
}


@pytest.mark.parametrize("which", ["ours", "3.12.1"], ids=["ours", "3.12"])
async def test_a_cached_function_is_recorded_in_every_test_that_calls_it(
    tmp_path: Path, which: str
) -> None:
    """functools.lru_cache and functools.cache run a function once per arguments: without
    clearing them before each recorded test, the second test would record neither `width`
    nor the `_measure` it calls, and a fault there would be blamed on its callers."""
    root = write_files(tmp_path / "ws", CACHED)
    collected = Collected()
    result = await run_tests(RunSpec(root, interpreter(which), record=True), collected)
    assert result.status == "completed", result.output_tail
    assert {r.outcome for r in collected.reports} == {"passed"}
    width = str(root / "width.py")
    lines = at(root / "width.py", ["measure", "width", "rows", "cell"])
    for test in ("test_first", "test_second"):
        assert collected.spectra[f"tests/test_width.py::{test}"][width] == lines, test
    # The test file's own cache is not the workspace's code under test: not cleared.
    tests = str(root / "tests/test_width.py")
    [expected] = at(root / "tests/test_width.py", ["expected"])
    assert expected in collected.spectra["tests/test_width.py::test_first"][tests]
    assert expected not in collected.spectra["tests/test_width.py::test_second"][tests]


IMPORTED = {
    "choices.py": """
        def make(*names):
            table = {}  # make
            for i, name in enumerate(names):  # make-loop
                table[name] = i  # make-item
            return table  # make-return


        def other():
            return 1  # other


        DEFAULT = make()  # the library's own import: no test's
        """,
    "tests/test_choices.py": """
        import pytest
        from choices import make, other

        STATUS = make("DRAFT", "PUBLISHED")

        class TestStatus:
            LEVELS = make("LOW")

            def test_draft(self):
                assert STATUS["DRAFT"] == 0

        @pytest.mark.parametrize("n", [other()])
        def test_other(n):
            assert n == 1
        """,
    "tests/test_plain.py": """
        from choices import make

        def test_plain():
            assert make() == {}
        """,
}


@pytest.mark.parametrize("which", ["ours", "3.12.1"], ids=["ours", "3.12"])
async def test_what_a_test_module_s_import_runs_is_its_collection_spectrum(
    tmp_path: Path, which: str
) -> None:
    """A module-level `STATUS = make(...)`, a class body's and a parametrize list's calls run
    for the module's tests, at its import; the library's own top level (`DEFAULT = make()`)
    runs for no test, whichever test module imported it first."""
    root = write_files(tmp_path / "ws", IMPORTED)
    collected = Collected()
    result = await run_tests(RunSpec(root, interpreter(which), record=True), collected)
    assert result.status == "completed", result.output_tail
    choices = str(root / "choices.py")
    module = collected.module_spectra[str(root / "tests/test_choices.py")]
    assert module[choices] == at(
        root / "choices.py", ["make", "make-loop", "make-item", "make-return", "other"]
    )
    # test_plain's module runs make() only inside its test: none of choices.py at its import
    # (its own lines are recorded, as test files' are: the ranking leaves them out).
    assert choices not in collected.module_spectra[str(root / "tests/test_plain.py")]
    assert collected.spectra["tests/test_plain.py::test_plain"][choices] == at(
        root / "choices.py", ["make", "make-loop", "make-return"]
    )
