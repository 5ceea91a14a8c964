"""JUnit XML reports into TestReports and CollectionErrors (oci_lsp.testing.junit).

The pytest reports here are real: pytest runs on a small workspace in a subprocess, once
per report shape (junit_family xunit1 with `file`/`line`, the default xunit2 without, and
several --tb styles).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from oci_lsp.testing.junit import parse_junit_xml
from oci_lsp.testing.results import CollectionError
from oci_lsp.testing.results import TestReport as Report  # not `Test*`: pytest would collect it

FILES = {
    "pytest.ini": "[pytest]\n",
    # A rootdir conftest puts the workspace on sys.path, so tests can import calc.
    "conftest.py": "",
    "calc.py": """\
        def add(a, b):
            return a + b + 1


        def div(a, b):
            return a / b
        """,
    "broken_mod.py": """\
        VALUE = 1
        def oops(:
            pass
        """,
    "tests/test_calc.py": """\
        import pytest

        from calc import add, div


        def test_pass():
            assert add(0, -1) == 0


        def test_fail():
            assert add(1, 3) == 3


        def test_deep():
            assert div(1, 0) == 1


        @pytest.fixture
        def broken():
            raise RuntimeError("fixture boom")


        def test_fixture_error(broken):
            pass


        @pytest.mark.skip(reason="not now")
        def test_skip():
            pass


        class TestAdd:
            def test_add(self):
                x = add(2, 2)
                assert x == 4
        """,
    "tests/sub/test_inner.py": """\
        def test_inner():
            assert 1 == 2, "one is not two"
        """,
    "tests/test_syntax.py": """\
        import os

        def test_x(:
            pass
        """,
    "tests/test_imp.py": """\
        import os
        import nonexistent_mod_xyz
        """,
    "tests/test_uses_broken.py": """\
        import broken_mod


        def test_never():
            pass
        """,
    "tëst dir/test_ünï.py": """\
        from calc import add


        def test_unicode():
            assert add(1, 1) == 2
        """,
}


@dataclass
class Run:
    root: Path
    family: str
    tb: str
    reports: dict[str, Report]
    errors: dict[str, CollectionError]


def line_of(root: Path, relative: str, needle: str) -> int:
    """The 1-based line of the first line of ``relative`` containing ``needle``."""
    lines = (root / relative).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def run_pytest(root: Path, out: Path, *args: str) -> bytes:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--junitxml", str(out), "-p", "no:cacheprovider", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.exists(), proc.stdout + proc.stderr
    return out.read_bytes()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("junit") / "wörk spâce"
    for relative, source in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    return root


@pytest.fixture(
    scope="module",
    params=[("xunit1", "auto"), ("xunit2", "auto"), ("xunit2", "short"), ("xunit1", "native")],
    ids=lambda p: "-".join(p),
)
def run(
    workspace: Path, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    family, tb = request.param
    out = tmp_path_factory.mktemp("out") / "report.xml"
    data = run_pytest(
        workspace,
        out,
        "-o",
        f"junit_family={family}",
        f"--tb={tb}",
        "--continue-on-collection-errors",
        "-q",
    )
    reports, errors = parse_junit_xml(data, workspace)
    by_id = {report.test_id: report for report in reports}
    assert len(by_id) == len(reports)
    by_collector = {error.collector: error for error in errors}
    return Run(workspace, family, tb, by_id, by_collector)


def workspace_frames(run: Run, report: Report) -> list[tuple[str, int, str]]:
    """The report's frames in the workspace (--tb=native keeps pytest's own frames too)."""
    return [
        (Path(f.path).relative_to(run.root).as_posix(), f.line, f.function)
        for f in report.frames
        if Path(f.path).is_relative_to(run.root)
    ]


def test_all_tests_are_reported(run: Run) -> None:
    assert sorted(run.reports) == [
        "tests/sub/test_inner.py::test_inner",
        "tests/test_calc.py::TestAdd::test_add",
        "tests/test_calc.py::test_deep",
        "tests/test_calc.py::test_fail",
        "tests/test_calc.py::test_fixture_error",
        "tests/test_calc.py::test_pass",
        "tests/test_calc.py::test_skip",
        "tëst dir/test_ünï.py::test_unicode",
    ]
    assert sorted(run.errors) == [
        "tests/test_imp.py",
        "tests/test_syntax.py",
        "tests/test_uses_broken.py",
    ]


def test_passing(run: Run) -> None:
    report = run.reports["tests/test_calc.py::test_pass"]
    assert report.outcome == "passed"
    assert not report.failed
    assert report.path == str(run.root / "tests" / "test_calc.py")
    assert report.line == line_of(run.root, "tests/test_calc.py", "def test_pass")
    assert report.message == report.longrepr == ""
    assert report.frames == []
    assert report.called is None
    assert report.duration >= 0.0


def test_failing_assert(run: Run) -> None:
    report = run.reports["tests/test_calc.py::test_fail"]
    assert report.outcome == "failed"
    assert report.kind == "test-failed"
    assert report.line == line_of(run.root, "tests/test_calc.py", "def test_fail")
    assert report.message == "assert 5 == 3"
    assert "add(1, 3)" in report.longrepr
    assert workspace_frames(run, report) == [
        (
            "tests/test_calc.py",
            line_of(run.root, "tests/test_calc.py", "add(1, 3) == 3"),
            "test_fail",
        )
    ]


def test_exception_inside_the_module_gives_a_deeper_frame(run: Run) -> None:
    report = run.reports["tests/test_calc.py::test_deep"]
    assert report.outcome == "failed"
    assert report.message == "ZeroDivisionError: division by zero"
    assert workspace_frames(run, report) == [
        ("tests/test_calc.py", line_of(run.root, "tests/test_calc.py", "div(1, 0)"), "test_deep"),
        ("calc.py", line_of(run.root, "calc.py", "return a / b"), "div"),
    ]
    assert report.frames[-1].path == str(run.root / "calc.py")


def test_error_in_a_fixture(run: Run) -> None:
    report = run.reports["tests/test_calc.py::test_fixture_error"]
    assert report.outcome == "error"
    assert report.kind == "test-error"
    assert report.line == line_of(run.root, "tests/test_calc.py", "def test_fixture_error")
    assert "RuntimeError: fixture boom" in report.message
    assert workspace_frames(run, report) == [
        (
            "tests/test_calc.py",
            line_of(run.root, "tests/test_calc.py", "raise RuntimeError"),
            "broken",
        )
    ]


def test_skipped(run: Run) -> None:
    report = run.reports["tests/test_calc.py::test_skip"]
    assert report.outcome == "skipped"
    assert not report.failed
    assert report.message == "not now"
    assert report.frames == []
    # pytest's location of a decorated test is its first decorator; both families agree.
    assert report.line == line_of(run.root, "tests/test_calc.py", "@pytest.mark.skip")


def test_class_based_test(run: Run) -> None:
    report = run.reports["tests/test_calc.py::TestAdd::test_add"]
    assert report.outcome == "failed"
    assert report.path == str(run.root / "tests" / "test_calc.py")
    assert report.line == line_of(run.root, "tests/test_calc.py", "def test_add")
    assert report.message == "assert 5 == 4"
    assert workspace_frames(run, report) == [
        ("tests/test_calc.py", line_of(run.root, "tests/test_calc.py", "assert x == 4"), "test_add")
    ]


def test_test_in_a_subdirectory(run: Run) -> None:
    report = run.reports["tests/sub/test_inner.py::test_inner"]
    assert report.outcome == "failed"
    assert report.path == str(run.root / "tests" / "sub" / "test_inner.py")
    assert report.line == 1
    assert report.message == "AssertionError: one is not two"
    assert workspace_frames(run, report) == [("tests/sub/test_inner.py", 2, "test_inner")]


def test_path_with_spaces_and_non_ascii(run: Run) -> None:
    report = run.reports["tëst dir/test_ünï.py::test_unicode"]
    assert report.outcome == "failed"
    assert report.path == str(run.root / "tëst dir" / "test_ünï.py")
    assert report.line == 4
    assert report.message == "assert 3 == 2"
    assert workspace_frames(run, report) == [("tëst dir/test_ünï.py", 5, "test_unicode")]


def test_collection_error_from_a_syntax_error(run: Run) -> None:
    error = run.errors["tests/test_syntax.py"]
    assert error.path == str(run.root / "tests" / "test_syntax.py")
    assert error.line == 3
    assert error.message.startswith("SyntaxError: ")
    assert "\n" not in error.message
    assert "def test_x(:" in error.longrepr


def test_collection_error_from_a_syntax_error_in_an_imported_module(run: Run) -> None:
    error = run.errors["tests/test_uses_broken.py"]
    # The file at fault is the module that does not parse; the collector is the test file.
    assert error.path == str(run.root / "broken_mod.py")
    assert error.line == 2
    assert error.message.startswith("SyntaxError: ")


def test_collection_error_from_an_import_error(run: Run) -> None:
    error = run.errors["tests/test_imp.py"]
    assert error.path == str(run.root / "tests" / "test_imp.py")
    assert error.line == 2
    assert error.message == "ModuleNotFoundError: No module named 'nonexistent_mod_xyz'"
    assert "nonexistent_mod_xyz" in error.longrepr


def test_module_level_skip(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "tests").mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (root / "tests" / "test_later.py").write_text(
        "import pytest\npytest.skip('later', allow_module_level=True)\n", encoding="utf-8"
    )
    reports, errors = parse_junit_xml(run_pytest(root, tmp_path / "r.xml"), root)
    assert errors == []
    assert [(r.test_id, r.outcome, r.path) for r in reports] == [
        ("tests/test_later.py", "skipped", str(root / "tests" / "test_later.py"))
    ]


# --- unittest (xmlrunner's shape, written by hand: no xmlrunner here) -------------------

UT_SOURCE = """\
import unittest

from calc import add


class TestCalc(unittest.TestCase):
    def test_ok(self):
        self.assertEqual(add(1, 1), 2)

    @unittest.skip("later")
    def test_later(self):
        pass

    def test_add(self):
        self.assertEqual(add(2, 2), 4)
"""

UT_XML = """\
<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
\t<testsuite name="tests.test_ut.TestCalc-20250101000000" tests="3" file="tests/test_ut.py"
\t\ttime="0.002" failures="1" errors="0" skipped="1">
\t\t<testcase classname="tests.test_ut.TestCalc" name="test_ok" time="0.001"
\t\t\tfile="tests/test_ut.py" line="7"/>
\t\t<testcase classname="tests.test_ut.TestCalc" name="test_later" time="0.000"
\t\t\tfile="tests/test_ut.py" line="10">
\t\t\t<skipped type="skip" message="later"/>
\t\t</testcase>
\t\t<testcase classname="tests.test_ut.TestCalc" name="test_add" time="0.001"
\t\t\tfile="tests/test_ut.py" line="14">
\t\t\t<failure type="AssertionError" message="5 != 4"><![CDATA[Traceback (most recent call last):
  File "{root}/tests/test_ut.py", line 15, in test_add
    self.assertEqual(add(2, 2), 4)
AssertionError: 5 != 4
]]></failure>
\t\t</testcase>
\t</testsuite>
\t<testsuite name="unittest.loader._FailedTest-20250101000000" tests="1"
\t\tfile="unittest/loader.py" time="0.000" failures="0" errors="1" skipped="0">
\t\t<testcase classname="unittest.loader._FailedTest" name="tests.test_broken" time="0.000">
\t\t\t<error type="ImportError" message="Failed to import test module: tests.test_broken"
\t\t\t\t><![CDATA[ImportError: Failed to import test module: tests.test_broken
Traceback (most recent call last):
  File "/usr/lib/python3.11/unittest/loader.py", line 407, in _find_test_path
    module = self._get_module_from_name(name)
  File "/usr/lib/python3.11/unittest/loader.py", line 350, in _get_module_from_name
    __import__(name)
  File "{root}/tests/test_broken.py", line 3, in <module>
    from calc import missing
ImportError: cannot import name 'missing' from 'calc' ({root}/calc.py)
]]></error>
\t\t</testcase>
\t</testsuite>
</testsuites>
"""


def test_unittest_xmlrunner_shape(tmp_path: Path) -> None:
    root = tmp_path / "ut root"
    (root / "tests").mkdir(parents=True)
    (root / "calc.py").write_text("def add(a, b):\n    return a + b + 1\n", encoding="utf-8")
    (root / "tests" / "test_ut.py").write_text(UT_SOURCE, encoding="utf-8")
    (root / "tests" / "test_broken.py").write_text(
        "import unittest\n\nfrom calc import missing\n", encoding="utf-8"
    )
    data = UT_XML.replace("{root}", str(root)).encode("utf-8")

    reports, errors = parse_junit_xml(data, root)

    by_id = {r.test_id: r for r in reports}
    assert sorted(by_id) == [
        "tests/test_ut.py::TestCalc::test_add",
        "tests/test_ut.py::TestCalc::test_later",
        "tests/test_ut.py::TestCalc::test_ok",
    ]
    ok = by_id["tests/test_ut.py::TestCalc::test_ok"]
    assert (ok.outcome, ok.line, ok.duration) == ("passed", 7, 0.001)
    later = by_id["tests/test_ut.py::TestCalc::test_later"]
    # xmlrunner's lines are 1-based already (the first decorator's).
    assert (later.outcome, later.line, later.message) == ("skipped", 10, "later")
    failed = by_id["tests/test_ut.py::TestCalc::test_add"]
    assert failed.outcome == "failed"
    assert failed.path == str(root / "tests" / "test_ut.py")
    assert failed.line == 14
    assert failed.message == "5 != 4"
    assert failed.longrepr.startswith("Traceback (most recent call last):")
    assert [(f.path, f.line, f.function) for f in failed.frames] == [
        (str(root / "tests" / "test_ut.py"), 15, "test_add")
    ]

    assert len(errors) == 1
    error = errors[0]
    assert error.collector == "tests/test_broken.py"
    assert error.path == str(root / "tests" / "test_broken.py")
    assert error.line == 3
    assert error.message == (
        f"ImportError: cannot import name 'missing' from 'calc' ({root}/calc.py)"
    )


def test_cpython_body_without_file_attributes(tmp_path: Path) -> None:
    """Module path from the classname; the line from a scan for the def in the class."""
    (tmp_path / "test_plain.py").write_text(
        "class A:\n    def test_x(self):\n        pass\n\n\nclass B:\n    def test_x(self):\n"
        "        raise ValueError('nope')\n",
        encoding="utf-8",
    )
    data = b"""<testsuite name="plain">
      <testcase classname="test_plain.B" name="test_x" time="0.5">
        <error type="ValueError" message="">Traceback (most recent call last):
  File "test_plain.py", line 8, in test_x
    raise ValueError('nope')
ValueError: nope</error>
      </testcase>
      <testcase classname="pkg.gone.TestGone" name="test_y[1-2]" time="abc"/>
    </testsuite>"""
    reports, errors = parse_junit_xml(data, tmp_path)
    assert errors == []
    first, second = reports
    assert first.test_id == "test_plain.py::B::test_x"
    assert (first.outcome, first.line, first.duration) == ("error", 7, 0.5)
    assert first.message == "ValueError: nope"
    assert [(f.path, f.line, f.function) for f in first.frames] == [
        (str(tmp_path / "test_plain.py"), 8, "test_x")
    ]
    # Nothing on disk for this one: the classname is kept as it is.
    assert second.test_id == "pkg.gone.TestGone::test_y[1-2]"
    assert (second.path, second.line, second.duration) == (None, None, 0.0)


def test_classname_that_is_a_path(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_p.py").write_text("\n\ndef test_p():\n    pass\n", "utf-8")
    data = b'<testsuite><testcase classname="tests/test_p.py" name="test_p"/></testsuite>'
    (report,), _ = parse_junit_xml(data, tmp_path)
    assert (report.test_id, report.path, report.line) == (
        "tests/test_p.py::test_p",
        str(tmp_path / "tests" / "test_p.py"),
        3,
    )


# --- outcomes, messages and unreadable reports ------------------------------------------


def test_timeouts(tmp_path: Path) -> None:
    data = b"""<testsuites><testsuite name="x">
      <testcase classname="m" name="t1"><error message="Test timed out after 5 s"/></testcase>
      <testcase classname="m" name="t2"><error message="TimeoutError: waited too long"/></testcase>
      <testcase classname="m" name="t3">
        <failure message="Failed: Timeout &gt;1.0s">...</failure></testcase>
      <testcase classname="m" name="t4"><error message="boom">RuntimeError: boom</error></testcase>
      <testcase classname="m" name="t5"><error>Traceback (most recent call last):
  File "/x/m.py", line 3, in t5
    sock.recv(1)
socket.timeout: timed out</error></testcase>
    </testsuite></testsuites>"""
    reports, _ = parse_junit_xml(data, tmp_path)
    outcomes = {r.test_id: (r.outcome, r.kind) for r in reports}
    assert outcomes == {
        "m::t1": ("timeout", "test-timeout"),
        "m::t2": ("timeout", "test-timeout"),
        "m::t3": ("timeout", "test-timeout"),
        "m::t4": ("error", "test-error"),
        "m::t5": ("timeout", "test-timeout"),
    }
    assert reports[4].message == "socket.timeout: timed out"


def test_message_is_one_short_line(tmp_path: Path) -> None:
    long = "x" * 500
    data = f"""<testsuite>
      <testcase classname="m" name="t">
        <failure message="AssertionError: {long}&#10;second line">text</failure></testcase>
      <testcase classname="m" name="u"><failure>E   assert 1 == 2</failure></testcase>
    </testsuite>""".encode()
    first, second = parse_junit_xml(data, tmp_path)[0]
    assert len(first.message) == 200
    assert first.message.startswith("AssertionError: xxx")
    assert "\n" not in first.message
    assert second.message == "AssertionError: assert 1 == 2"


def test_nested_suites_and_namespaces(tmp_path: Path) -> None:
    data = b"""<?xml version="1.0" encoding="UTF-8"?>
    <testsuites xmlns="urn:example">
      <testsuite name="outer">
        <testsuite name="inner"><testcase classname="a" name="t1"/></testsuite>
        <testcase classname="a" name="t2"><skipped/></testcase>
      </testsuite>
      <!-- a comment -->
    </testsuites>"""
    reports, errors = parse_junit_xml(data, tmp_path)
    assert [(r.test_id, r.outcome) for r in reports] == [("a::t1", "passed"), ("a::t2", "skipped")]
    assert errors == []


def test_empty_report_with_no_tests(tmp_path: Path) -> None:
    assert parse_junit_xml(b'<testsuites name="pytest tests"/>', tmp_path) == ([], [])


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (b"  \n\t ", "empty"),
        (b"<testsuites><testsuite>", "not well-formed"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not well-formed"),
        (b"<?xml version='1.0'?><testsuite><testcase name='a'></testsuite>", "not well-formed"),
        (b"<html><body>502 Bad Gateway</body></html>", "<html>"),
    ],
)
def test_unreadable_reports(tmp_path: Path, data: bytes, why: str) -> None:
    with pytest.raises(ValueError, match="could not read the test runner's JUnit XML") as info:
        parse_junit_xml(data, tmp_path)
    assert why in str(info.value)
    assert "\n" not in str(info.value)


def test_files_reached_through_a_symlinked_directory_are_at_their_real_paths(
    tmp_path: Path,
) -> None:
    """Another runner walks a link to a sibling folder as pytest does, and a package imported
    through a link (`pkg -> src/pkg`) runs under the link's name: the report names the real
    files (the editor shows each under one URI)."""
    root = tmp_path / "ws"
    (root / "shared").mkdir(parents=True)
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "conftest.py").write_text("")
    (root / "src" / "pkg" / "mod.py").write_text("def f():\n    raise ValueError('x')\n")
    (root / "pkg").symlink_to("src/pkg")
    (root / "shared" / "test_s.py").write_text(
        "from pkg.mod import f\n\n\ndef test_s():\n    f()\n"
    )
    (root / "tests").mkdir()
    (root / "tests" / "linked").symlink_to("../shared")
    data = run_pytest(root, tmp_path / "r.xml", "-o", "junit_family=xunit1")
    assert b"\npkg/mod.py:2: ValueError" in data  # as pytest wrote it
    reports, errors = parse_junit_xml(data, root)
    assert not errors
    # (pytest imports the test module once and writes its real file for both.)
    assert [r.path for r in reports] == [str(root / "shared/test_s.py")] * 2
    frames = {f.path for r in reports for f in r.frames}
    assert frames == {str(root / "shared/test_s.py"), str(root / "src/pkg/mod.py")}
