"""The import graph: which tests a change can affect."""

from __future__ import annotations

from pathlib import Path

from oci_lsp.code.modules import ModuleIndex
from oci_lsp.testing.impact import ImportGraph
from tests.conftest import write_files as write


def built(root: Path) -> ImportGraph:
    graph = ImportGraph(root)
    graph.build()
    return graph


def rel(root: Path, paths: set[Path] | None) -> set[str] | None:
    return None if paths is None else {p.relative_to(root).as_posix() for p in paths}


PROJECT = {
    "calc.py": "from util import helper\n\ndef add(a, b):\n    return a + b\n",
    "util.py": "def helper():\n    return 1\n",
    "other.py": "import os\n",
    "pkg/__init__.py": "",
    "pkg/core.py": "from . import calc_bridge\n",
    "pkg/calc_bridge.py": "import calc\n",
    "tests/test_calc.py": "from calc import add\n",
    "tests/test_pkg.py": "import pkg.core\n",
    "tests/test_other.py": "import other\n",
    "tests/test_nothing.py": "import json\n",
}


def test_build_and_direct_dependents(tmp_path: Path) -> None:
    write(tmp_path, PROJECT)
    graph = built(tmp_path)
    assert len(graph) == len(PROJECT)
    assert rel(tmp_path, graph.dependents(tmp_path / "other.py")) == {"tests/test_other.py"}
    assert graph.dependents(tmp_path / "tests" / "test_calc.py") == set()


def test_transitive_dependents(tmp_path: Path) -> None:
    write(tmp_path, PROJECT)
    graph = built(tmp_path)
    assert rel(tmp_path, graph.dependents(tmp_path / "util.py")) == {
        "calc.py",
        "pkg/calc_bridge.py",
        "pkg/core.py",
        "tests/test_calc.py",
        "tests/test_pkg.py",
    }


def test_affected_tests(tmp_path: Path) -> None:
    write(tmp_path, PROJECT)
    graph = built(tmp_path)
    assert rel(tmp_path, graph.affected_tests([tmp_path / "util.py"])) == {
        "tests/test_calc.py",
        "tests/test_pkg.py",
    }
    assert rel(tmp_path, graph.affected_tests([tmp_path / "tests" / "test_nothing.py"])) == {
        "tests/test_nothing.py"
    }
    both = graph.affected_tests([tmp_path / "other.py", tmp_path / "pkg" / "core.py"])
    assert rel(tmp_path, both) == {"tests/test_other.py", "tests/test_pkg.py"}


def test_package_init_is_a_dependency_of_its_submodules_importers(tmp_path: Path) -> None:
    write(tmp_path, PROJECT)
    graph = built(tmp_path)
    assert rel(tmp_path, graph.affected_tests([tmp_path / "pkg" / "__init__.py"])) == {
        "tests/test_pkg.py"
    }


def test_conftest_and_configuration_affect_everything(tmp_path: Path) -> None:
    write(tmp_path, {**PROJECT, "tests/conftest.py": "", "pyproject.toml": ""})
    graph = built(tmp_path)
    assert graph.affected_tests([tmp_path / "tests" / "conftest.py"]) is None
    for name in ("pyproject.toml", "setup.cfg", "pytest.ini", "tox.ini"):
        assert graph.affected_tests([tmp_path / "util.py", tmp_path / name]) is None


def test_other_files_affect_nothing_known(tmp_path: Path) -> None:
    write(tmp_path, {**PROJECT, ".venv/lib/calc.py": "", "README.md": ""})
    graph = built(tmp_path)
    assert graph.affected_tests([tmp_path / "README.md"]) == set()
    assert graph.affected_tests([tmp_path / ".venv" / "lib" / "calc.py"]) == set()
    assert graph.affected_tests([tmp_path.parent / "elsewhere.py"]) == set()
    assert tmp_path / ".venv" / "lib" / "calc.py" not in graph


def test_module_used_by_conftest_affects_the_tests_it_serves(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            **PROJECT,
            "fixtures.py": "def make():\n    return 1\n",
            "tests/conftest.py": "from fixtures import make\n",
        },
    )
    graph = built(tmp_path)
    assert rel(tmp_path, graph.affected_tests([tmp_path / "fixtures.py"])) == {
        "tests/test_calc.py",
        "tests/test_pkg.py",
        "tests/test_other.py",
        "tests/test_nothing.py",
    }


def test_helpers_in_a_tests_dir_without_init(tmp_path: Path) -> None:
    # pytest's prepend mode puts tests/ on sys.path: `import helpers` is tests/helpers.py.
    write(
        tmp_path,
        {
            "calc.py": "",
            "tests/helpers.py": "import calc\n",
            "tests/test_a.py": "import helpers\n",
            "tests/test_b.py": "from helpers import *\n",
            "tests/test_c.py": "import calc\n",
        },
    )
    graph = built(tmp_path)
    assert rel(tmp_path, graph.affected_tests([tmp_path / "tests" / "helpers.py"])) == {
        "tests/test_a.py",
        "tests/test_b.py",
    }
    assert rel(tmp_path, graph.affected_tests([tmp_path / "calc.py"])) == {
        "tests/test_a.py",
        "tests/test_b.py",
        "tests/test_c.py",
    }


def test_relative_imports_in_a_test_package(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "tests/__init__.py": "",
            "tests/helpers.py": "",
            "tests/test_a.py": "from .helpers import make\n",
            "tests/test_b.py": "from tests import helpers\n",
        },
    )
    graph = built(tmp_path)
    assert rel(tmp_path, graph.affected_tests([tmp_path / "tests" / "helpers.py"])) == {
        "tests/test_a.py",
        "tests/test_b.py",
    }


def test_src_layout(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "src/pkg/__init__.py": "from .impl import add\n",
            "src/pkg/impl.py": "",
            "tests/test_pkg.py": "from pkg import add\n",
        },
    )
    graph = built(tmp_path)
    assert rel(tmp_path, graph.affected_tests([tmp_path / "src" / "pkg" / "impl.py"])) == {
        "tests/test_pkg.py"
    }


def test_update_drops_and_adds_edges(tmp_path: Path) -> None:
    write(tmp_path, PROJECT)
    graph = built(tmp_path)
    test_calc = tmp_path / "tests" / "test_calc.py"
    test_calc.write_text("import other\n")
    graph.update(test_calc)
    assert rel(tmp_path, graph.dependents(tmp_path / "calc.py")) == {
        "pkg/calc_bridge.py",
        "pkg/core.py",
        "tests/test_pkg.py",
    }
    assert rel(tmp_path, graph.affected_tests([tmp_path / "other.py"])) == {
        "tests/test_calc.py",
        "tests/test_other.py",
    }


def test_created_file_resolves_waiting_imports(tmp_path: Path) -> None:
    write(tmp_path, {"tests/test_new.py": "from newmod import f\n"})
    graph = built(tmp_path)
    assert len(graph) == 1
    write(tmp_path, {"newmod.py": "def f():\n    pass\n"})
    graph.update(tmp_path / "newmod.py")
    assert len(graph) == 2
    assert rel(tmp_path, graph.affected_tests([tmp_path / "newmod.py"])) == {"tests/test_new.py"}


def test_affected_tests_adds_an_unknown_file(tmp_path: Path) -> None:
    write(tmp_path, {"tests/test_new.py": "import later\n"})
    graph = built(tmp_path)
    write(tmp_path, {"later.py": ""})
    # The watcher's event may arrive after the question: the file is read on the spot.
    assert rel(tmp_path, graph.affected_tests([tmp_path / "later.py"])) == {"tests/test_new.py"}
    assert tmp_path / "later.py" in graph


def test_remove(tmp_path: Path) -> None:
    write(tmp_path, PROJECT)
    graph = built(tmp_path)
    util = tmp_path / "util.py"
    util.unlink()
    graph.remove(util)
    assert len(graph) == len(PROJECT) - 1
    assert util not in graph
    assert graph.dependents(tmp_path / "calc.py") != set()
    # The tests that imported the deleted module are still found: they will now fail.
    assert rel(tmp_path, graph.affected_tests([util])) == {
        "tests/test_calc.py",
        "tests/test_pkg.py",
    }
    graph.remove(util)  # twice is harmless
    assert len(graph) == len(PROJECT) - 1


def test_update_of_a_deleted_file_removes_it(tmp_path: Path) -> None:
    write(tmp_path, PROJECT)
    graph = built(tmp_path)
    (tmp_path / "other.py").unlink()
    graph.update(tmp_path / "other.py")
    assert tmp_path / "other.py" not in graph
    assert len(graph) == len(PROJECT) - 1


def test_removal_lets_a_shadowed_module_take_over(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "src/calc.py": "",
            "calc.py": "",
            "tests/test_calc.py": "import calc\n",
        },
    )
    graph = built(tmp_path)
    assert rel(tmp_path, graph.affected_tests([tmp_path / "calc.py"])) == set()
    (tmp_path / "src" / "calc.py").unlink()
    graph.remove(tmp_path / "src" / "calc.py")
    assert rel(tmp_path, graph.affected_tests([tmp_path / "calc.py"])) == {"tests/test_calc.py"}


def test_creating_an_init_renames_the_tests_below(tmp_path: Path) -> None:
    # Without tests/__init__.py, test_a is the top-level module "test_a" and its relative
    # import goes nowhere; with it, test_a is tests.test_a and the import finds helpers.
    write(
        tmp_path,
        {"tests/helpers.py": "", "tests/test_a.py": "from . import helpers\n"},
    )
    graph = built(tmp_path)
    assert graph.affected_tests([tmp_path / "tests" / "helpers.py"]) == set()
    write(tmp_path, {"tests/__init__.py": ""})
    graph.update(tmp_path / "tests" / "__init__.py")
    assert rel(tmp_path, graph.affected_tests([tmp_path / "tests" / "helpers.py"])) == {
        "tests/test_a.py"
    }


def test_unparsable_files_stay_in_the_graph(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "calc.py": "def add(:\n",
            "tests/test_calc.py": "import calc\n\ndef test_add(:\n",
            "tests/test_bin.py": "",
        },
    )
    (tmp_path / "tests" / "test_bin.py").write_bytes(b"import calc\n\xff\xfe\x00garbage\n")
    graph = built(tmp_path)
    assert len(graph) == 3
    # Imports are read by statement: a syntax error elsewhere keeps the file's edges.
    assert rel(tmp_path, graph.affected_tests([tmp_path / "calc.py"])) == {
        "tests/test_calc.py",
        "tests/test_bin.py",
    }


def test_explicit_index(tmp_path: Path) -> None:
    write(tmp_path, {"lib/calc.py": "", "tests/test_calc.py": "import calc\n"})
    graph = ImportGraph(tmp_path, ModuleIndex(tmp_path, [tmp_path / "lib", tmp_path]))
    graph.build()
    assert rel(tmp_path, graph.affected_tests([tmp_path / "lib" / "calc.py"])) == {
        "tests/test_calc.py"
    }


def test_build_and_update_of_a_large_workspace(tmp_path: Path) -> None:
    # Speed is measured in bench/, not asserted here (timed asserts flake on shared machines).
    files: dict[str, str] = {}
    for package in range(20):
        files[f"pkg{package}/__init__.py"] = ""
        for module in range(100):
            imports = "\n".join(
                f"from pkg{(package + k) % 20} import mod{(module + k) % 100}" for k in range(5)
            )
            body = "\n".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(60))
            files[f"pkg{package}/mod{module}.py"] = f"import os\nimport sys\n{imports}\n{body}"
    write(tmp_path, files)
    graph = ImportGraph(tmp_path)
    graph.build()
    assert len(graph) == 2020
    # pkg0/mod0 is imported by the modules k = 1..4 steps before it, and so on transitively.
    assert tmp_path / "pkg19" / "mod99.py" in graph.dependents(tmp_path / "pkg0" / "mod0.py")
    (tmp_path / "pkg19" / "mod99.py").write_text("import os\n")
    graph.update(tmp_path / "pkg19" / "mod99.py")
    assert tmp_path / "pkg19" / "mod99.py" not in graph.dependents(tmp_path / "pkg0" / "mod0.py")


def test_the_tests_exercising_a_function_are_the_test_functions_that_name_it() -> None:
    from oci_lsp.testing.impact import tests_naming

    source = (
        "from calc import add, mul\n\n\n"
        "def test_add():\n    assert add(1, 2) == 3\n\n\n"
        "class TestMore:\n    def test_add_zero(self):\n        assert add(0, 0) == 0\n\n\n"
        "def test_mul():\n    assert mul(2, 3) == 6\n"
    )
    assert tests_naming(source, "tests/t.py", "add") == [
        "tests/t.py::test_add",
        "tests/t.py::TestMore::test_add_zero",
    ]
    # Named only at the top (a fixture, a helper): the whole file; not named at all: nothing.
    assert tests_naming("from calc import sub\n\ndef test_x(f):\n    pass\n", "t.py", "sub") == [
        "t.py"
    ]
    assert tests_naming(source, "tests/t.py", "div") == []


def test_a_helper_no_test_names_is_exercised_by_the_tests_of_its_callers(tmp_path: Path) -> None:
    root = write(
        tmp_path / "ws",
        {
            "text.py": (
                "def _fold(s):\n    return s.lower()\n\n\n"
                "def _clean(s):\n    return _fold(s).strip()\n\n\n"
                "def slug(s):\n    return _clean(s).replace(' ', '-')\n\n\n"
                "def unused(s):\n    return s\n"
            ),
            "tests/test_text.py": (
                "from text import slug, unused\n\n\n"
                "def test_slug():\n    assert slug(' A b') == 'a-b'\n\n\n"
                "def test_unused():\n    assert unused('x') == 'x'\n"
            ),
        },
    )
    graph = ImportGraph(root)
    graph.build()

    def read(path: str) -> str | None:
        return Path(path).read_text()

    # Two levels below the function the test names: _fold -> _clean -> slug.
    assert graph.tests_exercising(root / "text.py", "_fold", read) == [
        "tests/test_text.py::test_slug"
    ]
    assert graph.tests_exercising(root / "text.py", "slug", read) == [
        "tests/test_text.py::test_slug"
    ]


def test_a_mixins_test_is_named_by_its_file() -> None:
    """pytest collects a mixin's tests only in its subclasses: a node id of the mixin itself
    would be "not found" and stop the whole run."""
    from oci_lsp.testing.impact import tests_naming

    source = (
        "import unittest\nfrom cache import Cache\n\n\n"
        "class CacheTestMixin:\n    def test_get(self):\n        assert Cache().get(1)\n\n\n"
        "class LRUTest(CacheTestMixin, unittest.TestCase):\n"
        "    def test_get_twice(self):\n        assert Cache().get(2)\n"
    )
    assert tests_naming(source, "tests/t.py", "get") == ["tests/t.py"]
    only_subclass = source.replace("assert Cache().get(1)", "pass")
    assert tests_naming(only_subclass, "tests/t.py", "get") == [
        "tests/t.py::LRUTest::test_get_twice"
    ]


def test_symlink_loops_are_not_followed_and_a_path_through_one_is_the_real_file(
    tmp_path: Path,
) -> None:
    root = write(tmp_path / "ws", PROJECT)
    (root / "loop").symlink_to(".")
    (root / "pkg" / "up").symlink_to("..")
    (root / "x").symlink_to("y")
    (root / "y").symlink_to("x")
    graph = built(root)
    assert len(graph) == len(PROJECT)  # each file once, none under loop/ or pkg/up/
    # A change named through a loop (as an editor that opened loop/util.py says it).
    assert rel(root, graph.affected_tests([root / "loop" / "loop" / "util.py"])) == {
        "tests/test_calc.py",
        "tests/test_pkg.py",
    }
    assert rel(root, graph.affected_tests([root / "pkg" / "up" / "other.py"])) == {
        "tests/test_other.py"
    }
    assert root / "pkg" / "up" / "calc.py" in graph
