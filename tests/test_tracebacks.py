"""Frames and the final exception, read back from failure text (oci_lsp.testing.tracebacks)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from oci_lsp.testing.results import Frame
from oci_lsp.testing.tracebacks import exception_line, parse_frames, syntax_error_location

ROOT = Path("/work/project")


def frames_of(text: str, rootdir: Path = ROOT) -> list[tuple[str, int, str]]:
    return [(f.path, f.line, f.function) for f in parse_frames(text, rootdir)]


def run_python(tmp_path: Path, files: dict[str, str], *argv: str) -> str:
    """Run real CPython on ``files`` and return what it wrote to stderr."""
    for name, source in files.items():
        (tmp_path / name).write_text(textwrap.dedent(source), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        timeout=60,
    )
    assert proc.returncode != 0, proc.stdout
    return proc.stderr


# --- CPython tracebacks ------------------------------------------------------------------

MOD = """\
def inner(x):
    try:
        return 1 / x
    except ZeroDivisionError as e:
        raise ValueError("bad input") from e


def implicit(x):
    try:
        return 1 / x
    except ZeroDivisionError:
        raise KeyError(x)
"""

MAIN = """\
import mod


def outer():
    return mod.inner(0)


outer()
"""


def test_cpython_chained_with_cause_takes_the_raised_traceback(tmp_path: Path) -> None:
    stderr = run_python(tmp_path, {"mod.py": MOD, "main.py": MAIN}, "main.py")
    assert "The above exception was the direct cause" in stderr

    main, mod = str(tmp_path / "main.py"), str(tmp_path / "mod.py")
    assert frames_of(stderr, tmp_path) == [
        (main, 8, "<module>"),
        (main, 5, "outer"),
        (mod, 5, "inner"),
    ]
    assert exception_line(stderr) == ("ValueError", "bad input")


def test_cpython_chained_during_handling(tmp_path: Path) -> None:
    main = MAIN.replace("mod.inner(0)", "mod.implicit(0)")
    stderr = run_python(tmp_path, {"mod.py": MOD, "main.py": main}, "main.py")
    assert "During handling of the above exception" in stderr

    assert frames_of(stderr, tmp_path) == [
        (str(tmp_path / "main.py"), 8, "<module>"),
        (str(tmp_path / "main.py"), 5, "outer"),
        (str(tmp_path / "mod.py"), 12, "implicit"),
    ]
    assert exception_line(stderr) == ("KeyError", "0")


def test_cpython_frozen_and_string_frames_are_left_out(tmp_path: Path) -> None:
    stderr = run_python(
        tmp_path,
        {"main.py": "import importlib\nimportlib.import_module('no_such_module_here')\n"},
        "main.py",
    )
    assert "<frozen importlib._bootstrap>" in stderr
    frames = parse_frames(stderr, tmp_path)
    assert all(frame.path.endswith(".py") for frame in frames)
    assert frames[0] == Frame(str(tmp_path / "main.py"), 2, "<module>")
    assert exception_line(stderr) == (
        "ModuleNotFoundError",
        "No module named 'no_such_module_here'",
    )


def test_cpython_syntax_error_in_an_imported_module(tmp_path: Path) -> None:
    stderr = run_python(
        tmp_path, {"bad.py": "x = 1\ndef f(:\n    pass\n", "main.py": "import bad\n"}, "main.py"
    )
    # The SyntaxError's own location (`File "bad.py", line 2`) is no frame.
    assert frames_of(stderr, tmp_path) == [(str(tmp_path / "main.py"), 1, "<module>")]
    name, _message = exception_line(stderr) or ("", "")
    assert name == "SyntaxError"
    assert syntax_error_location(stderr, tmp_path) == (str(tmp_path / "bad.py"), 2)


def test_unittest_output(tmp_path: Path) -> None:
    source = """\
    import unittest


    def double(x):
        return x * 3


    class TestDouble(unittest.TestCase):
        def test_two(self):
            self.assertEqual(double(2), 4)
    """
    stderr = run_python(tmp_path, {"test_ut.py": source}, "-m", "unittest", "test_ut")
    assert "FAIL: test_two" in stderr
    assert frames_of(stderr, tmp_path) == [(str(tmp_path / "test_ut.py"), 10, "test_two")]
    assert exception_line(stderr) == ("AssertionError", "6 != 4")


def test_cpython_relative_paths_are_resolved_against_rootdir() -> None:
    text = textwrap.dedent(
        """\
        Traceback (most recent call last):
          File "pkg/run.py", line 3, in <module>
            main()
          File "../shared/util.py", line 10, in main
            raise requests.exceptions.HTTPError("404 Client Error: Not Found")
        requests.exceptions.HTTPError: 404 Client Error: Not Found
        """
    )
    assert frames_of(text) == [
        ("/work/project/pkg/run.py", 3, "<module>"),
        ("/work/shared/util.py", 10, "main"),
    ]
    assert exception_line(text) == ("requests.exceptions.HTTPError", "404 Client Error: Not Found")


def test_cpython_exception_without_message() -> None:
    text = textwrap.dedent(
        """\
        Traceback (most recent call last):
          File "/abs/t.py", line 2, in test
            assert False
        AssertionError
        """
    )
    assert frames_of(text) == [("/abs/t.py", 2, "test")]
    assert exception_line(text) == ("AssertionError", "")


def test_last_line_alone() -> None:
    assert exception_line("ZeroDivisionError: division by zero") == (
        "ZeroDivisionError",
        "division by zero",
    )
    assert exception_line("some output\nAssertionError\n") == ("AssertionError", "")
    assert exception_line("ValueError: first line\nsecond line") is not None
    assert parse_frames("ZeroDivisionError: division by zero", ROOT) == []


# --- pytest's text (taken from real pytest 9 --junitxml reports) -----------------------

PYTEST_AUTO = """\
def test_deep3():
>       helper.a(3)

test_more.py:5: \n\
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ \n\
helper.py:2: in a
    return b(x)
           ^^^^
helper.py:6: in b
    return c(x)
           ^^^^
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ \n\
\n\
x = 3

    def c(x):
        if x:
>           raise ValueError(f"bad {x}")
E           ValueError: bad 3

helper.py:11: ValueError"""

PYTEST_LONG = """\
def test_deep3():
>       helper.a(3)

test_more.py:5: \n\
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ \n\
\n\
x = 3

    def a(x):
>       return b(x)
               ^^^^

helper.py:2: \n\
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ \n\
\n\
x = 3

    def c(x):
        def nested():
            pass
        if x:
>           raise ValueError(f"bad {x}")
E           ValueError: bad 3

helper.py:11: ValueError"""

PYTEST_SHORT = """\
test_more.py:5: in test_deep3
    helper.a(3)
helper.py:2: in a
    return b(x)
           ^^^^
helper.py:6: in b
    return c(x)
           ^^^^
helper.py:11: in c
    raise ValueError(f"bad {x}")
E   ValueError: bad 3"""

EXPECTED_DEEP = [
    ("/work/project/test_more.py", 5, "test_deep3"),
    ("/work/project/helper.py", 2, "a"),
    ("/work/project/helper.py", 6, "b"),
    ("/work/project/helper.py", 11, "c"),
]


def test_pytest_auto() -> None:
    assert frames_of(PYTEST_AUTO) == EXPECTED_DEEP
    assert exception_line(PYTEST_AUTO) == ("ValueError", "bad 3")


def test_pytest_long_takes_the_function_from_the_def_above_the_failing_line() -> None:
    # `nested` is defined above the failing line too, but inside `c`.
    assert frames_of(PYTEST_LONG) == [EXPECTED_DEEP[0], EXPECTED_DEEP[1], EXPECTED_DEEP[3]]
    assert exception_line(PYTEST_LONG) == ("ValueError", "bad 3")


def test_pytest_short() -> None:
    assert frames_of(PYTEST_SHORT) == EXPECTED_DEEP
    assert exception_line(PYTEST_SHORT) == ("ValueError", "bad 3")


def test_pytest_chained_takes_the_raised_exception() -> None:
    text = textwrap.dedent(
        """\
        def test_chain():
                try:
        >           {}["k"]
        E           KeyError: 'k'

        test_more.py:10: KeyError

        The above exception was the direct cause of the following exception:

            def test_chain():
                try:
                    {}["k"]
                except KeyError as e:
        >           raise RuntimeError("wrapped") from e
        E           RuntimeError: wrapped

        test_more.py:12: RuntimeError"""
    )
    assert frames_of(text) == [("/work/project/test_more.py", 12, "test_chain")]
    assert exception_line(text) == ("RuntimeError", "wrapped")


def test_pytest_short_chained() -> None:
    text = textwrap.dedent(
        """\
        test_more.py:10: in test_chain
            {}["k"]
        E   KeyError: 'k'

        During handling of the above exception, another exception occurred:
        test_more.py:12: in test_chain
            raise RuntimeError("wrapped")
        E   RuntimeError: wrapped"""
    )
    assert frames_of(text) == [("/work/project/test_more.py", 12, "test_chain")]
    assert exception_line(text) == ("RuntimeError", "wrapped")


@pytest.mark.parametrize(
    ("e_lines", "expected"),
    [
        (
            ["E       assert 5 == 3", "E        +  where 5 = add(1, 3)"],
            ("AssertionError", "assert 5 == 3"),
        ),
        (
            ["E       AssertionError: one is not two", "E       assert 1 == 2"],
            ("AssertionError", "one is not two"),
        ),
        (["E   AssertionError: assert 4 == 3"], ("AssertionError", "assert 4 == 3")),
        (["E       ValueError"], ("ValueError", "")),
        (
            ["E       Failed: DID NOT RAISE <class 'ValueError'>"],
            ("Failed", "DID NOT RAISE <class 'ValueError'>"),
        ),
        (
            ["E       test_more.test_local.<locals>.Inner: in"],
            ("test_more.test_local.<locals>.Inner", "in"),
        ),
    ],
)
def test_pytest_e_lines(e_lines: list[str], expected: tuple[str, str]) -> None:
    text = "\n".join(["def test_x():", ">       check()", *e_lines, "", "test_x.py:2: Whatever"])
    assert exception_line(text) == expected
    assert frames_of(text) == [("/work/project/test_x.py", 2, "test_x")]


def test_pytest_line_style_has_no_frames() -> None:
    text = (
        "E   KeyError: 'k'\n\n"
        "The above exception was the direct cause of the following exception:\n"
        "E   RuntimeError: wrapped"
    )
    assert parse_frames(text, ROOT) == []
    assert exception_line(text) == ("RuntimeError", "wrapped")


def test_pytest_collection_errors() -> None:
    import_error = textwrap.dedent(
        """\
        ImportError while importing test module '/work/project/tests/test_imp.py'.
        Hint: make sure your test modules/packages have valid Python names.
        Traceback:
        /usr/lib/python3.11/importlib/__init__.py:126: in import_module
            return _bootstrap._gcd_import(name[level:], package, level)
                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
        <frozen importlib._bootstrap>:1204: in _gcd_import
            ???
        tests/test_imp.py:2: in <module>
            import nonexistent_mod_xyz
        E   ModuleNotFoundError: No module named 'nonexistent_mod_xyz'"""
    )
    assert frames_of(import_error) == [
        ("/usr/lib/python3.11/importlib/__init__.py", 126, "import_module"),
        ("/work/project/tests/test_imp.py", 2, "<module>"),
    ]
    assert exception_line(import_error) == (
        "ModuleNotFoundError",
        "No module named 'nonexistent_mod_xyz'",
    )

    syntax_error = textwrap.dedent(
        """\
        /usr/lib/python3.11/ast.py:50: in parse
            return compile(source, filename, mode, flags,
        E     File "/work/project/tests/test_syntax.py", line 3
        E       def test_x(a: int, :
        E                          ^
        E   SyntaxError: invalid syntax"""
    )
    assert frames_of(syntax_error) == [("/usr/lib/python3.11/ast.py", 50, "parse")]
    assert exception_line(syntax_error) == ("SyntaxError", "invalid syntax")
    assert syntax_error_location(syntax_error, ROOT) == ("/work/project/tests/test_syntax.py", 3)
    assert syntax_error_location(import_error, ROOT) is None


def test_long_entry_without_def_has_unknown_function() -> None:
    text = "    import missing\nE   ImportError: nope\n\ntests/test_imp.py:2: ImportError"
    assert frames_of(text) == [("/work/project/tests/test_imp.py", 2, "?")]


def test_paths_with_spaces_and_non_ascii() -> None:
    text = "tëst dir/test_ünï.py:4: in test_unicode\n    assert add(1, 1) == 2\nE   assert 3 == 2"
    assert frames_of(text) == [("/work/project/tëst dir/test_ünï.py", 4, "test_unicode")]
    cpython = '  File "/work/my project/tëst dir/x.py", line 7, in f\nOSError: no'
    assert frames_of(cpython) == [("/work/my project/tëst dir/x.py", 7, "f")]


def test_non_python_locations_are_ignored() -> None:
    text = textwrap.dedent(
        """\
        templates/page.html:12: in render
            {{ broken }}
        src/lib.rs:3: in main
          File "<string>", line 1, in <module>
          File "/abs/notes.txt", line 4, in read
        E   TemplateError: broken"""
    )
    assert parse_frames(text, ROOT) == []


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "\n\n\n",
        "\x00\x01\x02 binary \xff",
        "hello world",
        "_ _ _ _ _ _ _\nE\nE \n>\n:::\n.py:\nx.py:notanumber: in f",
        'File "", line , in',
        'x.py:0: in f\n  File "y.py", line 0, in g',
        "Traceback (most recent call last):\n" * 3,
        "a" * 100_000,
    ],
)
def test_garbage(garbage: str) -> None:
    assert parse_frames(garbage, ROOT) == []
    assert exception_line(garbage) is None
    assert syntax_error_location(garbage, ROOT) is None


def test_relative_rootdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    frames = parse_frames("sub/t.py:3: in test_x\n    x()", Path("ws"))
    assert frames == [Frame(str(tmp_path / "ws" / "sub" / "t.py"), 3, "test_x")]
