"""The corpus of real projects (tests/corpus): what CI can afford of it.

The smoke test downloads two small projects from PyPI (verified against their pinned
sha256), lays them out as a monorepo under a path with a space and non-ASCII characters,
each with its own .venv, and checks that each pristine suite passes under plain pytest, that
a pinned mutation makes it fail the way mutations.json says, and that reverting restores it.
The whole corpus runs from bench/ (corpus_mutations.py, corpus_survey.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.corpus import mutations, overlays, sdists
from tests.corpus.plain import by_function, run_pytest
from tests.corpus.projects import MONOREPO, PROJECTS, SMOKE, project
from tests.corpus.workspace import monorepo

SPACED = Path("my projects") / "naïve ü"


def test_the_pinned_mutations_and_stubs_belong_to_the_corpus() -> None:
    pinned, stubs = mutations.load()
    keys = {p.key for p in PROJECTS}
    assert len(PROJECTS) >= 8
    for key in keys:
        assert sum(m.project == key for m in pinned) >= 5, key
        assert any(s.project == key for s in stubs), key
    for edit in [*pinned, *stubs]:
        assert edit.project in keys
        assert edit.failing and edit.shows in mutations.SHOWS
        assert edit.original != edit.mutated


def test_the_localization_corpus_has_the_faults_no_traceback_shows() -> None:
    """Issue 15's corpus: 100 or more mutations over every project, the functions whose fault
    rarely shows in a traceback among them, and where each shows pinned from a real run."""
    pinned, _ = mutations.load(mutations.LOCALIZATION_JSON)
    assert len(pinned) >= 100
    assert {m.project for m in pinned} == {p.key for p in PROJECTS}
    assert len({m.id for m in pinned}) == len(pinned)
    roles = {mutations.role(m) for m in pinned}
    assert {"property", "init", "operator", "helper", "plain"} <= roles
    assert sum(m.shows == "hidden" for m in pinned) >= len(pinned) // 3
    for edit in pinned:
        assert edit.failing and edit.shows in mutations.SHOWS
        assert edit.original != edit.mutated


def test_a_digest_that_is_not_pinned_is_refused() -> None:
    with pytest.raises(sdists.SdistError, match="no sdist"):
        sdists.sdist_url("isodate", project("isodate").version, "0" * 64)


def test_smoke_monorepo_of_two_real_projects(tmp_path: Path) -> None:
    assert set(SMOKE) <= set(MONOREPO)
    folder = tmp_path / SPACED / "mono repo"
    workspaces = monorepo(folder, [project(k) for k in MONOREPO])
    pinned, _ = mutations.load()
    for ws in workspaces:
        # The project runs from the workspace copy, as after `pip install -e .`.
        probe = subprocess.run(
            [
                str(ws.python),
                "-c",
                "import importlib, importlib.metadata as md, sys;"
                f"m = importlib.import_module({ws.project.code[0].split('/')[-1]!r});"
                f"print(m.__file__); print(md.version({ws.project.name!r}))",
            ],
            capture_output=True,
            text=True,
            check=True,
            env=ws.env(),
        )
        module_file, version = probe.stdout.splitlines()
        assert Path(module_file).is_relative_to(ws.root)
        assert version == ws.project.version

        pristine = run_pytest(ws)
        assert pristine.ok, pristine.output[-3000:]

        edit = next(m for m in pinned if m.project == ws.project.key)
        target = ws.root / edit.file
        before = target.read_bytes()
        edit.apply(ws.root)
        broken = run_pytest(ws)
        assert broken.exit_code == 1
        assert by_function(broken.failed) == by_function(edit.failing), broken.output[-3000:]

        edit.revert(ws.root)
        assert target.read_bytes() == before
        again = run_pytest(ws)
        assert again.ok and by_function(again.passed) == by_function(pristine.passed)


# -- the pieces, on small inputs --------------------------------------------------------------


PROBE = """\
def pytest_configure(config):
    seen = [config.option.maxfail, config.getini("junit_family"), config.option.verbose]
    (config.rootpath / "seen.txt").write_text(repr(seen))
"""


@pytest.mark.parametrize(
    ("config", "text"),
    [
        ("pytest.ini", "[pytest]\naddopts=\n\t-v\nx = 1\n"),
        ("tox.ini", "[tox]\nenvlist = py\n\n[pytest]\naddopts = -v\n\n[flake8]\nx = 1\n"),
        ("setup.cfg", "[metadata]\nname = p\n\n[tool:pytest]\naddopts = -v\n"),
        ("pyproject.toml", '[tool.pytest.ini_options]\naddopts = "-v"\n'),
        ("pyproject.toml", '[tool.pytest.ini_options]\naddopts = """\n  -v\n  """\nx = 1\n'),
        ("pyproject.toml", '[tool.pytest.ini_options]\naddopts = ["-v"]\n'),
        ("pyproject.toml", '[tool.pytest]\naddopts = ["-v"]\n'),
        ("pyproject.toml", '[tool.pytest]\nini_options.addopts = "-v"\n'),
        ("pyproject.toml", '[project]\nname = "p"\n\n[tool.pytest.ini_options]\n'),
    ],
)
def test_an_overlay_adds_to_the_projects_own_config(tmp_path: Path, config: str, text: str) -> None:
    (tmp_path / config).write_text(text, encoding="utf-8")
    (tmp_path / "conftest.py").write_text(PROBE, encoding="utf-8")
    overlay = overlays.Overlay(why="t", addopts=("--maxfail=3",), ini={"junit_family": "xunit1"})
    overlays.apply(tmp_path, config, overlay)
    after = (tmp_path / config).read_text(encoding="utf-8")
    for line in text.splitlines():  # nothing else of the user's file changed
        assert "addopts" in line or line in after.splitlines()
    # pytest itself reads the result: the project's option, the added one and the key.
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    subprocess.run(
        [sys.executable, "-m", "pytest", "--co", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        check=False,
    )
    verbose = 0 if text.endswith("[tool.pytest.ini_options]\n") else 1
    assert (tmp_path / "seen.txt").read_text() == repr([3, "xunit1", verbose])


MODULE = textwrap.dedent(
    '''\
    def clamp(value, low, high):
        """Keep value within [low, high].

        ```pycon
        >>> clamp(5, 0, 3)
        3
        ```
        """
        # below the range
        if value < low:
            return low
        elif value > high:
            return high
        else:
            return value + 0


    class Box:
        @property
        def size(self):
            return 2
    '''
)


def test_mutations_change_one_spot_and_revert_to_the_same_bytes(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    path = tmp_path / "pkg" / "mod.py"
    path.write_text(MODULE, encoding="utf-8")
    found = mutations.candidates(tmp_path, "p", ["pkg"])
    assert {m.kind for m in found} == set(mutations.KINDS)
    comparison = next(m for m in found if m.kind == "comparison")
    assert "if value <= low:" in comparison.mutated
    assert comparison.mutated.count("\n") == comparison.original.count("\n")
    assert "# below the range" in comparison.mutated  # comments and layout kept
    branch = next(m for m in found if m.kind == "branch")
    assert "if not (value < low):" in branch.mutated
    assert next(m for m in found if m.function == "Box.size").tags == (
        "method",
        "property",
        "decorated",
    )
    for edit in found:
        edit.apply(tmp_path)
        assert path.read_text(encoding="utf-8") != MODULE
        edit.revert(tmp_path)
        assert path.read_text(encoding="utf-8") == MODULE


def test_a_stub_keeps_signature_and_docstring(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(MODULE, encoding="utf-8")
    stub = next(
        s for s in mutations.stub_candidates(tmp_path, "p", ["pkg"]) if s.function == "clamp"
    )
    assert stub.mutated.startswith('def clamp(value, low, high):\n    """Keep value')
    assert stub.mutated.endswith('    ```\n    """\n    ...\n')
    compile(stub.mutated, "stub", "exec")


def test_where_a_fault_shows() -> None:
    edit = mutations.Edit(
        project="p",
        file="pkg/mod.py",
        function="clamp",
        kind="comparison",
        line=10,
        spot=12,
        original="def clamp():\n    pass\n",
        mutated="def clamp():\n    pass\n",
    )
    frame = 'Traceback (most recent call last):\n  File "/w/x y/pkg/mod.py", line 11, in clamp\n    return low\nValueError'
    assert mutations.shows(edit, {"tests/test_m.py::test_a": frame})[0] == "traceback"
    call = '  File "/w/tests/test_m.py", line 3, in test_a\n    assert clamp(5, 0, 3) == 3\nAssertionError: assert 0 == 3'
    assert mutations.shows(edit, {"tests/test_m.py::test_a": call}) == (
        "assert-call",
        "assert clamp(5, 0, 3) == 3",
    )
    assert (
        mutations.shows(edit, {"pkg/mod.py::pkg.mod.clamp": "002 >>> clamp(5, 0, 3)"})[0]
        == "doctest"
    )
    upstream = (
        '  File "/w/tests/test_m.py", line 5, in test_a\n    assert result == 3\nAssertionError'
    )
    assert mutations.shows(edit, {"tests/test_m.py::test_a": upstream})[0] == "hidden"
