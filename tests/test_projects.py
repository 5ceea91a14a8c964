"""Which directories of a folder are projects of their own (testing/projects.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from oci_lsp.testing.projects import find_projects, innermost, nested_in
from tests.conftest import write_files


def test_projects_of_a_monorepo_and_what_is_not_one(tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "repo",
        {
            "pyproject.toml": "[tool.uv.workspace]\nmembers = ['libs/*']\n",
            "libs/core/pyproject.toml": "[project]\nname = 'core'\n",
            "libs/core/core.py": "",
            "libs/web/setup.cfg": "[tool:pytest]\n",
            "services/api/tox.ini": "[pytest]\n",
            # A build tool's test data, a cache, a hidden directory: not projects.
            "libs/core/tests/fixtures/sample/setup.py": "",
            "node_modules/x/setup.py": "",
            ".hidden/pyproject.toml": "",
            "docs/conf.py": "",
            "a/b/c/d/e/deep/setup.py": "",  # deeper than projects sit
        },
    )
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "myenv")], check=True)
    (root / "myenv/pyproject.toml").write_text("")
    found = find_projects(root)
    assert found == [root, root / "libs/core", root / "libs/web", root / "services/api"]
    assert innermost(found, str(root / "libs/core/core.py")) == root / "libs/core"
    assert innermost(found, str(root / "docs/conf.py")) == root
    assert innermost(found, str(root / "libs/core-extra/x.py")) == root  # a prefix, not inside
    assert nested_in(root, found) == found[1:]
    assert nested_in(root / "libs/core", found) == []


def test_symlinked_directories_are_not_projects_again(tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "repo",
        {"pyproject.toml": "", "libs/core/pyproject.toml": "", "libs/core/core.py": ""},
    )
    (root / "loop").symlink_to(".")  # a loop: would find every project again, deeper
    (root / "libs" / "core" / "up").symlink_to("../..")
    (root / "libs" / "again").symlink_to("core")  # a link to a project: the project itself
    (root / "x").symlink_to("y")
    (root / "y").symlink_to("x")
    assert find_projects(root) == [root, root / "libs" / "core"]
