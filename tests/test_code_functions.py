"""Finding functions and statements in Python sources, parsed or mid-edit."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

from oci_lsp.code.functions import (
    called_names,
    enclosing_function,
    find_function,
    statement_at,
)
from oci_lsp.code.walk import (
    IGNORED_DIR_NAMES,
    is_ignored_path,
    is_test_file,
    iter_python_files,
)


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


CALC = src(
    """
    import functools


    def add(a, b):
        return a + b


    class Calc:
        def add(self, a, b):
            return a + b

        @staticmethod
        @functools.cache
        def mul(a, b):
            '''Multiply.'''
            return a * b

        class Inner:
            async def method(self):
                return 1


    def outer():
        x = 1

        def inner(y):
            return x + y

        return inner
    """
)


# --- find_function ----------------------------------------------------------------------


def test_find_module_level_function() -> None:
    loc = find_function(CALC, "add")
    assert loc is not None
    assert (loc.qualname, loc.name) == ("add", "add")
    assert (loc.def_line, loc.name_col, loc.body_line, loc.end_line) == (4, 4, 5, 5)


def test_find_method_by_qualname() -> None:
    loc = find_function(CALC, "Calc.add")
    assert loc is not None
    assert (loc.def_line, loc.name_col, loc.body_line, loc.end_line) == (9, 8, 10, 10)


def test_decorated_function_points_at_def_not_decorator() -> None:
    loc = find_function(CALC, "Calc.mul")
    assert loc is not None
    assert CALC.splitlines()[loc.def_line - 1].strip() == "def mul(a, b):"
    assert loc.def_line == 14
    assert loc.name_col == 8
    assert loc.body_line == 15  # the docstring is the first statement
    assert loc.end_line == 16


def test_async_method_of_nested_class() -> None:
    loc = find_function(CALC, "Calc.Inner.method")
    assert loc is not None
    assert (loc.def_line, loc.name_col) == (19, 18)
    assert CALC.splitlines()[18][loc.name_col :].startswith("method(")


def test_nested_function_with_and_without_locals_marker() -> None:
    plain = find_function(CALC, "outer.inner")
    pytest_style = find_function(CALC, "outer.<locals>.inner")
    assert plain is not None
    assert plain == pytest_style
    assert plain.qualname == "outer.inner"
    assert (plain.def_line, plain.name_col, plain.end_line) == (26, 8, 27)


def test_unknown_names_are_none() -> None:
    assert find_function(CALC, "sub") is None
    assert find_function(CALC, "Calc") is None  # a class is not a function
    assert find_function(CALC, "inner") is None  # only as outer.inner
    assert find_function(CALC, "") is None


def test_tabs_count_as_one_column() -> None:
    source = "class C:\n\tdef m(self):\n\t\treturn 1\n"
    loc = find_function(source, "C.m")
    assert loc is not None
    assert (loc.def_line, loc.name_col, loc.body_line) == (2, 5, 3)


def test_non_ascii_identifiers_use_code_point_columns() -> None:
    source = src(
        """
        class Ü:
            def grüße(self):
                return "ß"

        async def ñandú(): return 1
        """
    )
    loc = find_function(source, "Ü.grüße")
    assert loc is not None
    assert (loc.def_line, loc.name_col) == (2, 8)
    line = source.splitlines()[1]
    assert line[loc.name_col : loc.name_col + len("grüße")] == "grüße"
    one_liner = find_function(source, "ñandú")
    assert one_liner is not None
    assert (one_liner.def_line, one_liner.name_col, one_liner.body_line) == (5, 10, 5)


def test_byte_order_mark_counts_as_a_character() -> None:
    loc = find_function("\ufeffdef f():\n    pass\n", "f")
    assert loc is not None
    assert (loc.def_line, loc.name_col) == (1, 5)


def test_redefinition_last_one_wins() -> None:
    source = "def f():\n    return 1\n\n\ndef f():\n    return 2\n"
    loc = find_function(source, "f")
    assert loc is not None
    assert loc.def_line == 5


def test_crlf_line_endings() -> None:
    source = "x = 1\r\n\r\nclass A:\r\n    def m(self):\r\n        pass\r\n"
    loc = find_function(source, "A.m")
    assert loc is not None
    assert (loc.def_line, loc.name_col, loc.end_line) == (4, 8, 5)


def test_unparsable_source_falls_back_to_a_line_scan() -> None:
    source = src(
        """
        def add(a, b):
            return a +

        class Calc:
            def add(self, a, b):
                return a + b

            def sub(self, a, b):
                return (a -
                        b)
        x = (
        """
    )
    method = find_function(source, "Calc.add")
    assert method is not None
    assert (method.qualname, method.def_line, method.name_col) == ("Calc.add", 5, 8)
    assert (method.body_line, method.end_line) == (6, 6)
    top = find_function(source, "add")
    assert top is not None
    assert (top.def_line, top.name_col, top.body_line, top.end_line) == (1, 4, 2, 2)
    sub = find_function(source, "Calc.<locals>.sub")
    assert sub is not None
    assert (sub.def_line, sub.end_line) == (8, 10)
    assert find_function(source, "mul") is None


def test_unparsable_source_prefers_the_nesting_that_matches() -> None:
    # The method comes first, but "add" asks for the module-level one.
    source = "class Calc:\n    def add(self):\n        pass\n\ndef add(:\n    pass\n"
    top = find_function(source, "add")
    assert top is not None
    assert top.def_line == 5
    # Only the last component matches: the first def of that name is the best guess.
    guess = find_function(source, "Other.add")
    assert guess is not None
    assert guess.def_line == 2


def test_unparsable_with_tabs_and_non_ascii() -> None:
    source = "class Ü:\n\tdef grüße(self):\n\t\treturn (\n"
    loc = find_function(source, "Ü.grüße")
    assert loc is not None
    assert (loc.def_line, loc.name_col) == (2, 5)


def test_unparsable_multiline_header() -> None:
    source = "def f(\n    a,\n    b,\n):\n    return a\n\n\ndef g(:\n"
    loc = find_function(source, "f")
    assert loc is not None
    assert (loc.def_line, loc.body_line, loc.end_line) == (1, 5, 5)


def test_garbage_never_raises() -> None:
    for source in ["", "def", "def (", "\x00\x00", "(((((", "class :\n def"]:
        assert find_function(source, "f") is None


# --- enclosing_function ------------------------------------------------------------------


def test_enclosing_function_of_a_line() -> None:
    loc = enclosing_function(CALC, 10)
    assert loc is not None
    assert loc.qualname == "Calc.add"
    assert enclosing_function(CALC, 1) is None  # module level
    assert enclosing_function(CALC, 8) is None  # class body, outside any def


def test_enclosing_function_counts_decorators() -> None:
    loc = enclosing_function(CALC, 12)  # the @staticmethod line
    assert loc is not None
    assert (loc.qualname, loc.def_line) == ("Calc.mul", 14)


def test_enclosing_function_prefers_innermost_or_named() -> None:
    inner = enclosing_function(CALC, 27)
    assert inner is not None
    assert inner.qualname == "outer.inner"
    named = enclosing_function(CALC, 27, name="outer")
    assert named is not None
    assert named.qualname == "outer"
    pseudo = enclosing_function(CALC, 27, name="<lambda>")
    assert pseudo is not None
    assert pseudo.qualname == "outer.inner"
    # The code that ran had another name there: the source has changed since.
    assert enclosing_function(CALC, 27, name="something_else") is None


def test_enclosing_function_on_unparsable_source() -> None:
    assert enclosing_function("def f(:\n    pass\n", 2) is None


# --- statement_at ------------------------------------------------------------------------

STATEMENTS = src(
    """
    def test_it(p):
        x = f(1)
        assert add(
            1, 2
        ) == 3
        if f(x) == 3:
            y = 2

        else:
            y = 3
        with open(p):
            pass
        try:
            g()
        except ValueError:
            pass
        finally:
            h()
        if x: z = 1
        return y
    """
)


def test_statement_at_simple_statements() -> None:
    assign = statement_at(STATEMENTS, 2)
    assert isinstance(assign, ast.Assign)
    for line in (3, 4, 5):
        assert isinstance(statement_at(STATEMENTS, line), ast.Assert)
    assert isinstance(statement_at(STATEMENTS, 7), ast.Assign)
    assert isinstance(statement_at(STATEMENTS, 14), ast.Expr)
    assert isinstance(statement_at(STATEMENTS, 20), ast.Return)


def test_statement_at_compound_headers() -> None:
    header = statement_at(STATEMENTS, 6)
    assert isinstance(header, ast.If)
    assert header.lineno == 6
    assert isinstance(statement_at(STATEMENTS, 9), ast.If)  # else:
    assert isinstance(statement_at(STATEMENTS, 11), ast.With)
    assert isinstance(statement_at(STATEMENTS, 15), ast.Try)  # except ValueError:
    assert isinstance(statement_at(STATEMENTS, 17), ast.Try)  # finally:
    assert isinstance(statement_at(STATEMENTS, 1), ast.FunctionDef)


def test_statement_at_one_line_compound_returns_the_inner_statement() -> None:
    assert isinstance(statement_at(STATEMENTS, 19), ast.Assign)


def test_statement_at_nothing() -> None:
    assert statement_at(STATEMENTS, 8) is None  # a blank line inside the body
    assert statement_at(STATEMENTS, 100) is None
    assert statement_at("x = (\n", 1) is None


def test_statement_at_decorator_line_is_the_header() -> None:
    source = "@pytest.mark.parametrize('a', [1])\ndef test_a(a):\n    assert a\n"
    assert isinstance(statement_at(source, 1), ast.FunctionDef)
    assert isinstance(statement_at(source, 3), ast.Assert)


def test_statement_at_match_case() -> None:
    source = "match x:\n    case 1:\n        y = f()\n    case _:\n        pass\n"
    assert isinstance(statement_at(source, 1), ast.Match)
    assert isinstance(statement_at(source, 2), ast.Match)
    assert isinstance(statement_at(source, 3), ast.Assign)


# --- called_names ------------------------------------------------------------------------


def _statement(source: str) -> ast.stmt:
    return ast.parse(source).body[0]


def test_called_names_outermost_first_in_source_order() -> None:
    node = _statement("assert add(mul(1, 2), 3) == calc.sub(1)")
    assert called_names(node) == ["add", "mul", "calc.sub"]


def test_called_names_skips_non_dotted_callees() -> None:
    assert called_names(_statement("Calc().add(1)")) == ["Calc"]
    assert called_names(_statement("f()()")) == ["f"]
    assert called_names(_statement("x = obj[0](g(1))")) == ["g"]


def test_called_names_keywords_attributes_and_dedup() -> None:
    node = _statement("r = a.b.c(f(1), key=g(f(2)), *h())")
    assert called_names(node) == ["a.b.c", "f", "g", "h"]


def test_called_names_handles_long_chains() -> None:
    node = _statement("x = " + " + ".join(f"f{i}()" for i in range(500)))
    names = called_names(node)
    assert len(names) == 500
    assert names[:2] == ["f0", "f1"]


# --- walk ----------------------------------------------------------------------------------


def test_iter_python_files_prunes_ignored_dirs(tmp_path: Path) -> None:
    for rel in [
        "a.py",
        "pkg/__init__.py",
        "pkg/mod.py",
        "notes.txt",
        ".venv/lib/x.py",
        "node_modules/y.py",
        "build/z.py",
        "thing.egg-info/w.py",
        "myenv/lib/site.py",
        "pkg/__pycache__/mod.py",
    ]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    (tmp_path / "myenv" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / "linked").symlink_to(tmp_path / "pkg", target_is_directory=True)
    found = {p.relative_to(tmp_path).as_posix() for p in iter_python_files(tmp_path)}
    assert found == {"a.py", "pkg/__init__.py", "pkg/mod.py"}


def test_is_ignored_path(tmp_path: Path) -> None:
    assert {".git", "venv", "site-packages", "dist"} <= IGNORED_DIR_NAMES
    assert is_ignored_path(tmp_path / ".venv" / "x.py", tmp_path)
    assert is_ignored_path(tmp_path / "a" / "foo.egg-info" / "x.py", tmp_path)
    assert not is_ignored_path(tmp_path / "src" / "pkg" / "x.py", tmp_path)
    assert is_ignored_path(Path("/elsewhere/x.py"), tmp_path)
    env = tmp_path / "custom_env"
    env.mkdir()
    assert not is_ignored_path(env / "lib" / "x.py", tmp_path)
    (env / "pyvenv.cfg").write_text("")  # became a virtualenv after first being seen
    assert is_ignored_path(env / "lib" / "x.py", tmp_path)


def test_is_test_file() -> None:
    assert is_test_file(Path("tests/test_calc.py"))
    assert is_test_file(Path("calc_test.py"))
    assert is_test_file(Path("conftest.py"))
    assert not is_test_file(Path("calc.py"))
    assert not is_test_file(Path("testing.py"))
    assert not is_test_file(Path("test_data.json"))
