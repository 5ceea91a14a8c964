"""Real pytest runs over symlink loops, links and unreadable directories (oci_lsp_dirs)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from oci_lsp.testing.results import Collected
from oci_lsp.testing.runner import RunResult, RunSpec, run_tests, skipped_directories
from tests.conftest import write_files
from tests.symlink_trees import SKIPPED, loops_workspace, python_without_dac, readable_again


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "ws"
    yield root
    readable_again(root)


async def _run(root: Path, python: str = sys.executable) -> tuple[RunResult, Collected]:
    results = Collected()
    result = await run_tests(RunSpec(root, python, timeout=120), results)
    return result, results


def _plain_pytest_ids(root: Path) -> list[str]:
    """The node ids plain pytest collects (without our plugin)."""
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return sorted(line for line in out.splitlines() if "::" in line)


async def test_loops_and_an_unreadable_directory_are_skipped_and_named(
    ws: Path, tmp_path: Path
) -> None:
    root = loops_workspace(ws)
    result, results = await _run(root, python_without_dac(tmp_path))
    assert result.status == "completed"
    assert result.skipped == SKIPPED
    # Each real test once, at its real file; nothing under loop/ or a/b/, no error.
    ids = sorted(r.test_id for r in results.reports)
    assert ids == [
        "a/test_a.py::test_a",
        "a/test_a.py::test_a_passes",
        "tests/test_calc.py::test_add",
    ]
    assert {r.path for r in results.failing} == {
        str(root / "a/test_a.py"),
        str(root / "tests/test_calc.py"),
    }
    assert not results.errors
    real = {str(root / n) for n in ("calc.py", "tests/test_calc.py", "a/test_a.py", "a/helpers.py")}
    frames = {f.path for r in results.failing for f in r.frames}
    assert {path for path in frames if path.startswith(str(root))} <= real
    called = {r.called.path for r in results.failing if r.called is not None}
    assert called == {str(root / "calc.py"), str(root / "a/helpers.py")}


async def test_a_directory_root_may_read_is_collected(ws: Path) -> None:
    """The same workspace, read with every permission this process has: as root, secret/ is
    readable and collected (as plain pytest would); the loops are still skipped."""
    root = loops_workspace(ws)
    result, results = await _run(root)
    readable = _can_list(root / "secret")  # root's CAP_DAC_OVERRIDE reads mode 000
    ids = {r.test_id for r in results.reports}
    if readable:
        assert result.skipped == "skipped 2 symlinked directories that loop: a/b, loop"
        assert "secret/test_secret.py::test_secret" in ids
    else:
        assert result.skipped == SKIPPED
        assert not any(i.startswith("secret/") for i in ids)


def _can_list(path: Path) -> bool:
    try:
        list(path.iterdir())
    except PermissionError:
        return False
    return True


async def test_a_link_to_a_sibling_folder_is_collected_as_plain_pytest_does(ws: Path) -> None:
    root = write_files(
        ws,
        {
            "shared/test_shared.py": "def test_shared():\n    assert 1 == 2\n",
            "tests/test_t.py": "def test_t():\n    pass\n",
        },
    )
    (root / "tests" / "linked").symlink_to("../shared")
    result, results = await _run(root)
    assert result.skipped is None
    assert sorted(r.test_id for r in results.reports) == _plain_pytest_ids(root)
    assert {r.test_id for r in results.failing} == {
        "shared/test_shared.py::test_shared",
        "tests/linked/test_shared.py::test_shared",
    }
    # Both are the one real file.
    assert {r.path for r in results.failing} == {str(root / "shared/test_shared.py")}
    # (Frames of installed plugins, such as pytest-lsp's in our own interpreter, aside.)
    frames = {f.path for r in results.failing for f in r.frames}
    assert {path for path in frames if path.startswith(str(root))} == {
        str(root / "shared/test_shared.py")
    }


async def test_a_cycle_of_two_links_ends_the_second_time_round(ws: Path) -> None:
    root = write_files(
        ws,
        {"a/test_a.py": "def test_a():\n    pass\n", "b/test_b.py": "def test_b():\n    pass\n"},
    )
    (root / "a" / "x").symlink_to("../b")
    (root / "b" / "y").symlink_to("../a")
    result, results = await _run(root)
    assert result.status == "completed"
    assert result.skipped == "skipped 2 symlinked directories that loop: a/x/y, b/y/x"
    # What plain pytest collects before the paths repeat (a/x is b, b/y is a).
    assert sorted(r.test_id for r in results.reports) == [
        "a/test_a.py::test_a",
        "a/x/test_b.py::test_b",
        "b/test_b.py::test_b",
        "b/y/test_a.py::test_a",
    ]
    assert {r.path for r in results.reports} == {
        str(root / "a/test_a.py"),
        str(root / "b/test_b.py"),
    }


async def test_what_the_projects_configuration_ignores_is_not_named(ws: Path) -> None:
    root = write_files(
        ws,
        {
            "pytest.ini": "[pytest]\nnorecursedirs = loop .*\n",
            "tests/test_t.py": "def test_t():\n    pass\n",
        },
    )
    (root / "loop").symlink_to(".")
    (root / "tests" / "up").symlink_to("..")
    result, results = await _run(root)
    assert result.skipped == "skipped 1 symlinked directory that loops: tests/up"
    assert [r.test_id for r in results.reports] == ["tests/test_t.py::test_t"]


def test_the_skipped_line_names_a_few_and_counts_the_rest() -> None:
    assert skipped_directories([], []) is None
    assert skipped_directories([], ["b", "a"]) == "could not read: a/, b/"
    loops = [f"d{i}/up" for i in range(8)]
    assert skipped_directories(loops, None) == (
        "skipped 8 symlinked directories that loop: d0/up, d1/up, d2/up, d3/up, d4/up and 3 more"
    )
