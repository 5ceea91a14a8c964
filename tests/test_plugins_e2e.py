"""A project's own pytest plugins and options, through the real server and `oci-lsp --fix`:
what a user sees after a save (diagnostics, the message and progress that say what oci-lsp
changed), what a fix needs (candidates that run), and what the workspace holds afterwards
(nothing new)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from tests.conftest import Editor, progress_messages, write_files
from tests.openai_server import ScriptedOpenAIServer
from tests.plugin_projects import CALC, plugins_python, project, snapshot
from tests.test_fix_e2e import fix


def ends(editor: Editor) -> list[str]:
    return [message or "" for kind, message in progress_messages(editor.client) if kind == "end"]


async def test_a_save_with_the_projects_plugins(editor: Editor, tmp_path: Path) -> None:
    python = plugins_python()
    root = write_files(tmp_path / "ws", project("pytest.ini"))
    before = snapshot(root)
    await editor.start(root, init_options={"tests": {"python": python}})
    editor.save(root / "calc.py")

    # In the test, at the docstring's example, at the function, and in the Markdown file.
    await editor.wait_for_diagnostics(root / "tests/test_calc.py")
    await editor.wait_for_diagnostics(root / "README.md")
    calc = await editor.wait_for_diagnostics(root / "calc.py", lambda d: len(d) >= 3)
    await editor.wait_idle()
    readme = editor.diagnostics(root / "README.md")
    assert [(d.range.start.line, d.code) for d in readme] == [(3, "test-failed")]
    assert readme[0].message == "README.md::README.md: doctest: add(2, 3): expected 5, got -1"
    by_test = sorted((d.data["test"], d.range.start.line, d.range.start.character) for d in calc)
    assert by_test == [
        ("README.md::README.md", 0, 4),  # at `add`: the function the example called
        ("calc.py::calc.add", 0, 4),  # at `add`: the function the docstring documents
        ("calc.py::calc.add", 3, 4),  # at `>>> add(1, 2)` in the docstring
        ("tests/test_calc.py::test_add", 0, 4),
    ]
    status = await editor.command("oci.status")
    assert status["tests"]["failed"] == 3

    # What was changed, said once as a message and in the run's progress.
    [said] = [m for m in editor.messages() if "run with" in m]
    assert said.startswith("oci-lsp: the tests of ws run with: coverage off (--no-cov); ")
    assert "-n 2 → -n0: results stream per test" in said
    assert "reports not written: --junitxml=report.xml, --html=report.html" in said
    seed = re.search(r"pytest-randomly seed (\d+)", said)
    assert seed is not None
    reports = [m or "" for kind, m in progress_messages(editor.client) if kind == "report"]
    assert any("coverage off (--no-cov)" in m for m in reports)
    assert ends(editor)[-1].endswith(f"; pytest-randomly seed {seed.group(1)}")

    # The next save: the same seed (the same order), and nothing said again.
    editor.save(root / "calc.py")
    await editor.wait_until(lambda: len(ends(editor)) == 2, "the second run")
    assert ends(editor)[-1].endswith(f"; pytest-randomly seed {seed.group(1)}")
    assert len([m for m in editor.messages() if "run with" in m]) == 1
    assert snapshot(root) == before  # no .coverage, report.xml, .benchmarks, .pytest_cache


async def test_a_run_that_x_stopped_keeps_what_it_did_not_reach(
    editor: Editor, tmp_path: Path
) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            "pytest.ini": "[pytest]\n",
            "tests/test_stops.py": "def test_a():\n    assert 0\n\n\ndef test_b():\n    assert 0\n",
        },
    )
    test_file = root / "tests/test_stops.py"
    await editor.start(root, init_options={"tests": {"python": sys.executable}})
    editor.save(test_file)
    await editor.wait_for_diagnostics(test_file, lambda d: len(d) == 2)
    await editor.wait_idle()
    # -x in the project's options: the run ends at test_a; test_b was not run, not passed.
    editor.save(root / "pytest.ini", "[pytest]\naddopts = -x\n")
    await editor.wait_until(lambda: len(ends(editor)) == 2, "the run with -x")
    assert ends(editor)[-1] == "1 tests run, 1 failed; stopped early: stopping after 1 failures"
    status = await editor.wait_idle()
    assert [d.data["test"] for d in editor.diagnostics(test_file)] == [
        "tests/test_stops.py::test_a",
        "tests/test_stops.py::test_b",
    ]
    assert status["tests"]["failed"] == 2


def after_real_feedback(body: dict[str, Any]) -> str:
    """A scripted model that answers wrong first, and right only once it was shown the wrong
    answer's real failure (not a PermissionError of the sandbox)."""
    said = "\n".join(str(m.get("content", "")) for m in body["messages"])
    # The first failure fed back depends on pytest-randomly's seed: the test's assert, the
    # docstring's example or the README's, each with what `a * b` really gave.
    real = ("where 2 = add(1, 2)", "Got:\n    2", "Got:\n    6")
    if any(failure in said for failure in real):
        return "```python\ndef add(a, b):\n    return a + b\n```"
    return "```python\ndef add(a, b):\n    return a * b\n```"


def test_fix_with_the_projects_plugins(tmp_path: Path) -> None:
    python = plugins_python()
    files = project("pytest.ini")
    files["pyproject.toml"] = f'[tool.oci-lsp.tests]\npython = "{python}"\n'
    root = write_files(tmp_path / "ws", files)
    before = snapshot(root)
    report = tmp_path / "report.json"
    with ScriptedOpenAIServer(after_real_feedback) as server:
        done = fix(root, server, "--json", str(report), "--candidates", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the tests run with: coverage off (--no-cov); -n 2 → -n0" in done.stderr
    data = json.loads(report.read_text())
    [group] = data["groups"]
    assert group["status"] == "fixed" and len(group["rounds"]) == 2
    assert sorted(group["tests"]) == [
        "README.md::README.md",
        "calc.py::calc.add",
        "tests/test_calc.py::test_add",
    ]
    # Only the function's line changed; its docstring (the doctest) is kept.
    after = snapshot(root)
    assert after.pop("calc.py") == CALC.replace("return a - b", "return a + b").encode()
    before.pop("calc.py")
    assert after == before
