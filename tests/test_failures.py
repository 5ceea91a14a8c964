"""Mapping a failure to the test line and the function under test, without running anything."""

from __future__ import annotations

from pathlib import Path

from oci_lsp.testing.failures import FailureLocator, Span, Suspect
from oci_lsp.testing.results import CollectionError, Frame, FunctionRef, TestReport
from tests.conftest import write_files

FILES = {
    "pkg/__init__.py": "",
    "pkg/calc.py": """
        class Calc:
            def add(self, a, b):
                return self._check(a) + b

            def _check(self, a):
                if a < 0:
                    raise ValueError(a)
                return a


        def mul(a, b):
            return a * b + 1
        """,
    "tests/helpers.py": """
        def check_mul(f):
            assert f(2, 3) == 6
        """,
    "tests/test_calc.py": """
        from pkg.calc import Calc, mul
        from helpers import check_mul


        def test_add_negative():
            assert Calc().add(-1, 2) == 1


        def test_mul():
            assert mul(2, 3) == 6


        def test_mul_through_helper():
            check_mul(mul)
        """,
}


def locator(root: Path) -> FailureLocator:
    def read(path: str) -> str | None:
        try:
            return Path(path).read_text()
        except OSError:
            return None

    return FailureLocator(root, read)


def report(
    root: Path, name: str, frames: list[tuple[str, int, str]], **extra: object
) -> TestReport:
    test_path = str(root / "tests/test_calc.py")
    return TestReport(
        test_id=f"tests/test_calc.py::{name}",
        outcome="failed",
        path=test_path,
        line=5,
        message="boom",
        frames=[Frame(str(root / p), line, f) for p, line, f in frames],
        **extra,  # type: ignore[arg-type]
    )


def test_deepest_workspace_frame_outside_tests_is_the_target(tmp_path: Path) -> None:
    root = write_files(tmp_path, FILES)
    r = report(
        root,
        "test_add_negative",
        [
            ("tests/test_calc.py", 6, "test_add_negative"),
            ("pkg/calc.py", 3, "add"),
            ("pkg/calc.py", 7, "_check"),
        ],
    )
    test_mark, function_mark = locator(root).marks_for(r)
    assert (test_mark.span.line, test_mark.span.start) == (5, 4)
    assert function_mark.function == "pkg.calc.Calc._check"
    assert (function_mark.span.line, function_mark.span.start, function_mark.span.end) == (4, 8, 14)
    assert function_mark.related[0][0] == test_mark.span
    assert test_mark.related[0][0] == function_mark.span


def test_a_failing_assert_in_the_test_uses_the_resolved_call(tmp_path: Path) -> None:
    root = write_files(tmp_path, FILES)
    called = FunctionRef(str(root / "pkg/calc.py"), 11, "mul", "pkg.calc")
    r = report(root, "test_mul", [("tests/test_calc.py", 10, "test_mul")], called=called)
    marks = locator(root).marks_for(r)
    assert [m.function for m in marks] == ["pkg.calc.mul", "pkg.calc.mul"]
    assert marks[1].span.line == 10


def test_ranked_suspects_move_the_function_mark_and_name_the_next_two(tmp_path: Path) -> None:
    root = write_files(tmp_path, FILES)
    called = FunctionRef(str(root / "pkg/calc.py"), 11, "mul", "pkg.calc")
    r = report(root, "test_mul", [("tests/test_calc.py", 10, "test_mul")], called=called)
    path = str(root / "pkg/calc.py")
    suspects = [
        Suspect(path, "Calc._check", "pkg.calc.Calc._check", Span(path, 4, 8, 14), 0.93, "a"),
        Suspect(path, "mul", "pkg.calc.mul", Span(path, 10, 4, 7), 0.712, "b"),
        Suspect(path, "Calc.add", "pkg.calc.Calc.add", Span(path, 1, 8, 11), 0.5, "c"),
        Suspect(path, "Calc", "pkg.calc.Calc", Span(path, 0, 6, 10), 0.4, "d"),
    ]
    test_mark, function_mark = locator(root).marks_for(r, suspects)
    assert function_mark.span == suspects[0].span
    assert test_mark.function == function_mark.function == "pkg.calc.Calc._check"
    assert test_mark.suspects == function_mark.suspects == suspects
    notes = [(span.line, text) for span, text in function_mark.related]
    assert notes == [
        (9, "failing test: tests/test_calc.py::test_mul"),
        (10, "also suspicious: `mul` 0.71"),
        (1, "also suspicious: `Calc.add` 0.50"),
    ]
    assert [text for _, text in test_mark.related][1:] == [t for _, t in notes[1:]]
    # Without suspects: today's rule, and no list.
    plain = locator(root).marks_for(r)
    assert plain[1].function == "pkg.calc.mul" and plain[1].suspects == []


def test_without_a_live_resolution_the_imports_are_read(tmp_path: Path) -> None:
    # What JUnit runners give: frames only. The statement `assert mul(2, 3) == 6` is read.
    root = write_files(tmp_path, FILES)
    r = report(root, "test_mul", [("tests/test_calc.py", 10, "test_mul")])
    marks = locator(root).marks_for(r)
    assert marks[1].function == "pkg.calc.mul"


def test_helpers_in_the_tests_folder_are_not_the_function_under_test(tmp_path: Path) -> None:
    root = write_files(tmp_path, FILES)
    r = report(
        root,
        "test_mul_through_helper",
        [
            ("tests/test_calc.py", 14, "test_mul_through_helper"),
            ("tests/helpers.py", 2, "check_mul"),
        ],
    )
    marks = locator(root).marks_for(r)
    # The helper asserts: no frame in the source. The failing statement `check_mul(mul)`
    # calls the helper, not the source, so only the test line is marked.
    assert [(m.span.path, m.span.line) for m in marks] == [(str(root / "tests/test_calc.py"), 13)]
    assert marks[0].function is None


def test_a_passing_test_has_no_marks_and_an_unknown_file_is_safe(tmp_path: Path) -> None:
    root = write_files(tmp_path, FILES)
    passed = TestReport(
        "tests/test_calc.py::test_mul", "passed", path=str(root / "tests/test_calc.py")
    )
    assert locator(root).marks_for(passed) == []
    gone = report(root, "test_x", [("gone.py", 3, "f")])
    marks = locator(root).marks_for(gone)
    assert len(marks) == 1  # only the test line: the frame's file does not exist


def test_collection_error_mark(tmp_path: Path) -> None:
    root = write_files(tmp_path, {"broken.py": "X = 1\n  Y = 2\n"})
    error = CollectionError(str(root / "broken.py"), 2, "IndentationError: unexpected indent")
    (mark,) = locator(root).marks_for_collection_error(error)
    assert (mark.span.line, mark.span.start, mark.span.end) == (1, 2, 7)
    assert mark.kind == "collection-error" and mark.test_id is None


DOCTESTS = {
    "pkg/__init__.py": "",
    "pkg/calc.py": '''
        def mul(a, b):
            """Multiply.

            >>> mul(2, 3)
            6
            """
            return helper(a) * b + 1


        def helper(a):
            return a
        ''',
    "README.md": "# pkg\n\n>>> from pkg.calc import mul\n>>> mul(1, 1)\n1\n",
}


def doctest_report(root: Path, holder: str, frames: list[Frame]) -> TestReport:
    """A failed doctest in `holder`, its example at line 4, documenting (or calling) mul."""
    return TestReport(
        f"{holder}::{holder}",
        "failed",
        path=str(root / holder),
        line=4,
        frames=frames,
        called=FunctionRef(str(root / "pkg/calc.py"), 1, "mul", "pkg.calc"),
        doctest=True,
    )


def test_a_doctest_is_marked_at_its_example_and_at_the_function_it_documents(
    tmp_path: Path,
) -> None:
    root = write_files(tmp_path, DOCTESTS)
    source = str(root / "pkg/calc.py")
    # An unexpected exception's frames would reach into the function and its helpers: the
    # module is not a test file, and the documented function comes first.
    r = doctest_report(root, "pkg/calc.py", [Frame(source, 7, "mul"), Frame(source, 11, "helper")])
    example, function = locator(root).marks_for(r)
    assert (example.span.path, example.span.line, example.span.start) == (source, 3, 4)
    assert (function.span.line, function.span.start, function.span.end) == (0, 4, 7)
    assert function.function == example.function == "pkg.calc.mul"


def test_a_doctest_in_a_text_file_is_marked_there(tmp_path: Path) -> None:
    root = write_files(tmp_path, DOCTESTS)
    readme = str(root / "README.md")
    r = doctest_report(root, "README.md", [])
    example, function = locator(root).marks_for(r)
    assert (example.span.path, example.span.line, example.span.end) == (readme, 3, 13)
    assert function.span.path == str(root / "pkg/calc.py") and function.span.line == 0
