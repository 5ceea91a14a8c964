"""Several projects in one folder: each one's tests run from its own root, with its own
configuration and interpreter, and its diagnostics are its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import Editor, write_files
from tests.venvs import cached_venv


def project(name: str, config: dict[str, str], value: int) -> dict[str, str]:
    """A project whose conftest, test file names and module layout clash with its sibling's:
    run together from the folder, pytest would refuse the second `tests/test_core.py`."""
    return {
        **{f"{name}/{file}": text for file, text in config.items()},
        f"{name}/{name}.py": f"def value():\n    return {value}\n",
        f"{name}/tests/conftest.py": f"import pytest\n\n@pytest.fixture\ndef expected():\n    return {value}\n",
        f"{name}/tests/test_core.py": f"from {name} import value\n\ndef test_value(expected):\n    assert value() == expected\n",
    }


async def test_each_project_runs_from_its_own_root(editor: Editor, tmp_path: Path) -> None:
    # pkg_b has a virtualenv of its own; the folder's interpreter is the server's.
    env = cached_venv("monorepo-pytest", ["pytest==8.3.5"])
    prefix = os.path.realpath(env.parent.parent)
    root = write_files(
        tmp_path / "mono repo",
        {
            "README.md": "two projects\n",
            **project(
                "pkg_a", {"pyproject.toml": "[tool.pytest.ini_options]\naddopts = '-ra'\n"}, 1
            ),
            **project("pkg_b", {"setup.cfg": "[tool:pytest]\nxfail_strict = true\n"}, 2),
            "pkg_b/tests/test_env.py": f"import os, sys\n\ndef test_own_interpreter():\n    assert os.path.realpath(sys.prefix) == {prefix!r}\n",
        },
    )
    (root / "pkg_b/.venv").symlink_to(env.parent.parent)
    await editor.start(root)

    # A wrong value in pkg_a: its test fails, reported relative to pkg_a's root.
    a_test, b_test = root / "pkg_a/tests/test_core.py", root / "pkg_b/tests/test_core.py"
    editor.save(root / "pkg_a/pkg_a.py", "def value():\n    return 10\n")
    [diagnostic] = await editor.wait_for_diagnostics(a_test)
    assert diagnostic.data["test"] == "tests/test_core.py::test_value"
    assert diagnostic.data["function"] == "pkg_a.value"
    await editor.wait_idle()
    # pkg_b runs alone, in its own interpreter: its tests pass there, nothing is shown.
    assert (await editor.run_tests((root / "pkg_b/pkg_b.py").as_uri())) == {
        "failed": 1,  # pkg_a's, still there
        "passed": 2,
    }
    assert not editor.diagnostics(b_test)

    # A failure in pkg_b leaves pkg_a's diagnostics alone, and the other way round.
    editor.save(root / "pkg_b/pkg_b.py", "def value():\n    return 20\n")
    await editor.wait_for_diagnostics(b_test)
    await editor.wait_idle()
    assert editor.diagnostics(a_test)
    editor.save(root / "pkg_a/pkg_a.py", "def value():\n    return 1\n")
    await editor.wait_for_diagnostics(a_test, lambda d: not d)
    status = await editor.wait_idle()
    assert editor.diagnostics(b_test)
    assert status["tests"]["failed"] == 1

    # What the user would see running pytest in each project themselves.
    for name, python in (
        ("pkg_a", sys.executable),
        ("pkg_b", str(root / "pkg_b/.venv/bin/python")),
    ):
        result = subprocess.run(
            [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=root / name,
            capture_output=True,
            text=True,
        )
        assert (result.returncode == 0) == (name == "pkg_a"), result.stdout
