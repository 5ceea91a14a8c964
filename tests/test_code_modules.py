"""Module names, import bindings, and resolving a test's calls to workspace code."""

from __future__ import annotations

import textwrap
from pathlib import Path

from oci_lsp.code.modules import (
    ImportBinding,
    ModuleIndex,
    import_bindings,
    imported_modules,
    resolve_call,
)
from tests.conftest import write_files as write


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# --- ModuleIndex -----------------------------------------------------------------------


def test_flat_layout_names(tmp_path: Path) -> None:
    write(tmp_path, {"calc.py": "", "pkg/__init__.py": "", "pkg/sub/mod.py": ""})
    index = ModuleIndex(tmp_path)
    assert index.source_roots == (tmp_path,)
    assert index.module_for_path(tmp_path / "calc.py") == "calc"
    assert index.module_for_path(tmp_path / "pkg" / "__init__.py") == "pkg"
    assert index.module_for_path(tmp_path / "pkg" / "sub" / "mod.py") == "pkg.sub.mod"
    assert index.module_for_path(tmp_path.parent / "elsewhere.py") is None
    assert index.module_for_path(tmp_path / "my-scripts" / "tool.py") is None
    assert index.module_for_path(tmp_path / "notes.txt") is None


def test_src_layout_names(tmp_path: Path) -> None:
    write(tmp_path, {"src/pkg/__init__.py": "", "src/pkg/calc.py": "", "tests/test_c.py": ""})
    index = ModuleIndex(tmp_path)
    assert index.source_roots == (tmp_path / "src", tmp_path)
    assert index.module_for_path(tmp_path / "src" / "pkg" / "calc.py") == "pkg.calc"
    assert index.module_for_path(tmp_path / "tests" / "test_c.py") == "tests.test_c"
    assert index.path_for_module("pkg.calc") == tmp_path / "src" / "pkg" / "calc.py"
    assert index.path_for_module("pkg") == tmp_path / "src" / "pkg" / "__init__.py"


def test_path_for_module_on_disk(tmp_path: Path) -> None:
    write(tmp_path, {"calc.py": "", "pkg/__init__.py": "", "ns/inner/mod.py": ""})
    index = ModuleIndex(tmp_path)
    assert index.path_for_module("calc") == tmp_path / "calc.py"
    assert index.path_for_module("pkg") == tmp_path / "pkg" / "__init__.py"
    # Namespace packages have no file, but their modules still resolve.
    assert index.path_for_module("ns") is None
    assert index.path_for_module("ns.inner") is None
    assert index.path_for_module("ns.inner.mod") == tmp_path / "ns" / "inner" / "mod.py"
    assert index.path_for_module("missing") is None
    assert index.path_for_module("not a.name") is None


def test_explicit_source_roots(tmp_path: Path) -> None:
    write(tmp_path, {"lib/calc.py": "", "calc.py": ""})
    index = ModuleIndex(tmp_path, [tmp_path / "lib", tmp_path])
    assert index.module_for_path(tmp_path / "lib" / "calc.py") == "calc"
    assert index.path_for_module("calc") == tmp_path / "lib" / "calc.py"


# --- import_bindings -------------------------------------------------------------------


def test_import_bindings_absolute_forms() -> None:
    source = src(
        """
        import os
        import a.b.c
        import numpy as np, x.y as xy
        from calc import add, sub as minus
        from calc import *
        """
    )
    assert import_bindings(source, "tests.test_x", False) == [
        ImportBinding("os", "os", None),
        ImportBinding("a", "a", None),
        ImportBinding("a.b.c", "a.b.c", None),
        ImportBinding("np", "numpy", None),
        ImportBinding("xy", "x.y", None),
        ImportBinding("add", "calc", "add"),
        ImportBinding("minus", "calc", "sub"),
        ImportBinding("*", "calc", None),
    ]


def test_import_bindings_relative() -> None:
    source = "from . import x\nfrom .impl import add\nfrom ..a import b\nfrom ... import c\n"
    assert import_bindings(source, "pkg.sub.mod", False) == [
        ImportBinding("x", "pkg.sub", "x"),
        ImportBinding("add", "pkg.sub.impl", "add"),
        ImportBinding("b", "pkg.a", "b"),
        # `from ...` climbs above the top-level package: Python refuses it, so do we.
    ]
    # In a package's __init__, "." is the package itself.
    assert import_bindings("from .impl import add\n", "pkg", True) == [
        ImportBinding("add", "pkg.impl", "add")
    ]
    assert import_bindings("from . import x\n", "toplevel", False) == []


def test_import_bindings_anywhere_in_the_module() -> None:
    source = src(
        """
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from calc import Calc
        try:
            import fast
        except ImportError:
            import slow as fast

        def test_it():
            from helpers import make
        """
    )
    locals_ = [(b.local, b.module) for b in import_bindings(source, "test_x", False)]
    assert locals_ == [
        ("TYPE_CHECKING", "typing"),
        ("Calc", "calc"),
        ("fast", "fast"),
        ("fast", "slow"),
        ("make", "helpers"),
    ]


def test_import_bindings_unparsable() -> None:
    assert import_bindings("import os\ndef f(:\n", "m", False) == []


# --- imported_modules ------------------------------------------------------------------


def test_imported_modules_includes_parents_and_possible_submodules() -> None:
    source = "import a.b.c\nfrom pkg import name, other as o\n"
    assert imported_modules(source, "m", False) == {
        "a",
        "a.b",
        "a.b.c",
        "pkg",
        "pkg.name",
        "pkg.other",
    }


def test_imported_modules_relative() -> None:
    assert imported_modules("from . import calc\n", "pkg.test_x", False) == {"pkg", "pkg.calc"}
    assert imported_modules("from .impl import *\n", "pkg", True) == {"pkg", "pkg.impl"}
    assert imported_modules("from .. import x\n", "top", False) == set()


def test_imported_modules_statement_forms() -> None:
    source = src(
        """
        from pkg import (  # a comment
            one,  # another
            two as second,
        )
        from long import \\
            three
        import x; import y
        try: import fast
        except ImportError: import slow
        if TYPE_CHECKING:
            from typing_only import T
        def f():
            import inside
        importlib.import_module("nope")
        reimport = 1
        # import commented
        """
    )
    assert imported_modules(source, "m", False) == {
        "pkg",
        "pkg.one",
        "pkg.two",
        "long",
        "long.three",
        "x",
        "y",
        "fast",
        "slow",
        "typing_only",
        "typing_only.T",
        "inside",
    }


def test_imported_modules_survive_a_syntax_error_elsewhere() -> None:
    source = "import calc\nfrom pkg import mod\n\ndef test_x(:\n    pass\n"
    assert imported_modules(source, "test_x", False) == {"calc", "pkg", "pkg.mod"}


# --- resolve_call ----------------------------------------------------------------------

CALC = """
def add(a, b):
    return a + b


class Calc:
    def add(self, a, b):
        return a + b
"""


def test_resolve_from_import(tmp_path: Path) -> None:
    write(tmp_path, {"calc.py": CALC})
    index = ModuleIndex(tmp_path)
    test = "from calc import add, Calc\n"
    assert resolve_call(test, "test_calc", "add", index) == (tmp_path / "calc.py", "add")
    assert resolve_call(test, "test_calc", "Calc.add", index) == (tmp_path / "calc.py", "Calc.add")
    assert resolve_call(test, "test_calc", "Calc", index) == (tmp_path / "calc.py", "Calc")
    assert resolve_call(test, "test_calc", "Calc.missing", index) is None
    assert resolve_call(test, "test_calc", "sub", index) is None


def test_resolve_module_import(tmp_path: Path) -> None:
    write(tmp_path, {"calc.py": CALC})
    index = ModuleIndex(tmp_path)
    assert resolve_call("import calc\n", "t", "calc.add", index) == (tmp_path / "calc.py", "add")
    assert resolve_call("import calc as c\n", "t", "c.Calc.add", index) == (
        tmp_path / "calc.py",
        "Calc.add",
    )
    assert resolve_call("import calc\n", "t", "calc", index) is None


def test_resolve_aliased_from_import(tmp_path: Path) -> None:
    write(tmp_path, {"calc.py": CALC})
    index = ModuleIndex(tmp_path)
    assert resolve_call("from calc import add as plus\n", "t", "plus", index) == (
        tmp_path / "calc.py",
        "add",
    )


def test_resolve_submodule_through_from_import(tmp_path: Path) -> None:
    write(tmp_path, {"pkg/__init__.py": "", "pkg/calc.py": CALC})
    index = ModuleIndex(tmp_path)
    calc = tmp_path / "pkg" / "calc.py"
    assert resolve_call("from pkg import calc\n", "t", "calc.add", index) == (calc, "add")
    assert resolve_call("import pkg.calc\n", "t", "pkg.calc.add", index) == (calc, "add")
    assert resolve_call("import pkg\n", "t", "pkg.calc.Calc.add", index) == (calc, "Calc.add")


def test_resolve_star_import(tmp_path: Path) -> None:
    write(tmp_path, {"calc.py": CALC, "other.py": "def sub(a, b):\n    return a - b\n"})
    index = ModuleIndex(tmp_path)
    test = "from other import *\nfrom calc import *\n"
    assert resolve_call(test, "t", "add", index) == (tmp_path / "calc.py", "add")
    assert resolve_call(test, "t", "sub", index) == (tmp_path / "other.py", "sub")
    assert resolve_call(test, "t", "mul", index) is None


def test_resolve_name_defined_in_the_test_is_none(tmp_path: Path) -> None:
    write(tmp_path, {"calc.py": CALC})
    index = ModuleIndex(tmp_path)
    test = "from calc import *\n\ndef add(a, b):\n    return 0\n\nCalc = None\n"
    assert resolve_call(test, "t", "add", index) is None
    assert resolve_call(test, "t", "Calc.add", index) is None


def test_resolve_outside_workspace_is_none(tmp_path: Path) -> None:
    index = ModuleIndex(tmp_path)
    assert resolve_call("import os\n", "t", "os.getcwd", index) is None
    assert resolve_call("from os.path import join\n", "t", "join", index) is None
    assert resolve_call("x = 1\n", "t", "undefined", index) is None
    assert resolve_call("from calc import (\n", "t", "add", index) is None


def test_resolve_relative_import_in_test_package(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "tests/__init__.py": "",
            "tests/helpers.py": "def make():\n    return 1\n",
        },
    )
    index = ModuleIndex(tmp_path)
    test = "from .helpers import make\n"
    assert resolve_call(test, "tests.test_x", "make", index) == (
        tmp_path / "tests" / "helpers.py",
        "make",
    )


def test_resolve_src_layout(tmp_path: Path) -> None:
    write(tmp_path, {"src/pkg/__init__.py": "", "src/pkg/calc.py": CALC})
    index = ModuleIndex(tmp_path)
    assert resolve_call("from pkg.calc import add\n", "tests.test_c", "add", index) == (
        tmp_path / "src" / "pkg" / "calc.py",
        "add",
    )


def test_resolve_follows_re_exports(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pkg/__init__.py": "from .api import *\nfrom .impl import Calc\n",
            "pkg/api.py": "from pkg.impl import add as add\n",
            "pkg/impl.py": CALC,
        },
    )
    index = ModuleIndex(tmp_path)
    impl = tmp_path / "pkg" / "impl.py"
    # pkg -> (star) pkg.api -> pkg.impl: two levels of re-export.
    assert resolve_call("from pkg import add\n", "t", "add", index) == (impl, "add")
    assert resolve_call("import pkg\n", "t", "pkg.Calc.add", index) == (impl, "Calc.add")
    assert resolve_call("from pkg import sub\n", "t", "sub", index) is None


def test_resolve_survives_import_cycles(tmp_path: Path) -> None:
    write(tmp_path, {"a.py": "from b import f\n", "b.py": "from a import f\n"})
    index = ModuleIndex(tmp_path)
    assert resolve_call("from a import f\n", "t", "f", index) is None


def test_resolve_in_unparsable_target_uses_the_line_scan(tmp_path: Path) -> None:
    write(tmp_path, {"calc.py": "def add(a, b):\n    return a +\n"})
    index = ModuleIndex(tmp_path)
    assert resolve_call("from calc import add\n", "t", "add", index) == (
        tmp_path / "calc.py",
        "add",
    )
