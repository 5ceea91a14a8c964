"""The project's own pytest plugins and options, as real projects have them (pytest-cov,
xdist, randomly, timeout, benchmark, html and junit reports, doctests, import modes, Django),
through the real runner and the real sandbox: the runs work, the diagnostics are right, and
the workspace is left as it was."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from oci_lsp.refine.isolation import CandidateOutcome, CandidateRun, Sandbox
from oci_lsp.testing.runner import RunResult, RunSpec, run_tests
from tests.conftest import write_files
from tests.plugin_projects import (
    ADDOPTS,
    CALC,
    CONFIG_SOURCES,
    INI,
    django_python,
    environment,
    plugins_python,
    project,
    snapshot,
)
from tests.test_runner import Listener

WAIT = 120.0
FIXED = CALC.replace("return a - b", "return a + b")
WRONG = CALC.replace("return a - b", "return a * b")


async def run(root: Path, python: str, seed: int | None = None) -> tuple[RunResult, Listener]:
    listener = Listener()
    result = await asyncio.wait_for(run_tests(RunSpec(root, python, seed=seed), listener), WAIT)
    return result, listener


async def verify(
    root: Path, python: str, sources: list[str], selection: list[str], seed: int | None = None
) -> list[CandidateOutcome]:
    """The candidates for calc.add, as a round when there are several."""
    box = Sandbox(root, python)
    box.seed = seed
    runs = [
        CandidateRun(root / "calc.py", source, selection, stop_at_first_failure=False)
        for source in sources
    ]
    try:
        if len(runs) == 1:
            return [await asyncio.wait_for(box.run(runs[0]), WAIT)]
        base = (root / "calc.py").read_text()
        return await asyncio.wait_for(box.run_round(runs, base, "add"), WAIT)
    finally:
        await box.close()


@pytest.mark.parametrize("source", CONFIG_SOURCES)
async def test_the_projects_options_from_any_source_run_and_write_nothing(
    tmp_path: Path, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = plugins_python()
    root = write_files(tmp_path / "ws", project(source))
    for name, value in environment(source, ADDOPTS, INI).items():
        monkeypatch.setenv(name, value)
    before = snapshot(root)
    result, listener = await run(root, python, seed=4242)

    assert result.status == "completed" and result.exit_code == 1, result.output_tail
    assert "coverage off (--no-cov)" in result.changes
    assert "-n 2 → -n0: results stream per test" in result.changes
    assert "pytest-randomly seed 4242" in result.changes and result.seed == 4242
    assert "reports not written: --junitxml=report.xml, --html=report.html" in result.changes
    assert any(c.startswith("pytest-benchmark: run once") for c in result.changes)
    assert any(c.startswith("pytest-timeout: signal method") for c in result.changes)
    assert "--ff ignored: no cache between runs" in result.changes
    assert listener.changes == result.changes  # said when the run started

    reports = listener.reports
    outcomes = {test: report.outcome for test, report in reports.items()}
    assert outcomes == {
        "tests/test_calc.py::test_add": "failed",
        "tests/test_calc.py::test_double": "passed",
        "tests/test_calc.py::test_benchmark": "passed",
        "tests/test_calc.py::test_in_one_process": "passed",  # no xdist worker
        "tests/test_calc.py::test_random": "passed",
        "calc.py::calc.add": "failed",
        "README.md::README.md": "failed",
    }, result.output_tail
    failed = reports["tests/test_calc.py::test_add"]
    assert failed.message == "assert add(1, 2) == 3 (got -1)"
    assert failed.called is not None and failed.called.qualname == "add"
    # Each doctest at its failing example, with the function it documents or calls.
    docstring = reports["calc.py::calc.add"]
    assert docstring.doctest and docstring.line == 4
    assert docstring.path == str(root / "calc.py")
    assert docstring.message == "doctest: add(1, 2): expected 3, got -1"
    assert docstring.called is not None and docstring.called.qualname == "add"
    markdown = reports["README.md::README.md"]
    assert markdown.doctest and markdown.line == 4 and markdown.path == str(root / "README.md")
    assert markdown.called is not None and markdown.called.path == str(root / "calc.py")
    # Nothing written: no .coverage, coverage.xml, report.xml, report.html, .benchmarks,
    # .pytest_cache.
    assert snapshot(root) == before


async def test_candidates_run_with_the_projects_plugins(tmp_path: Path) -> None:
    # Landlock lets a candidate write only in its scratch directory: with pytest-cov's
    # .coverage in the workspace every candidate failed with PermissionError, the right one too.
    python = plugins_python()
    root = write_files(tmp_path / "ws", project("pytest.ini"))
    before = snapshot(root)
    selection = ["tests/test_calc.py::test_add", "calc.py::calc.add", "README.md"]
    [alone] = await verify(root, python, [FIXED], selection, seed=7)
    assert alone.verdict == "passed", alone.output_tail
    assert {r.test_id for r in alone.reports} == {
        "tests/test_calc.py::test_add",
        "calc.py::calc.add",
        "README.md::README.md",
    }
    right, wrong = await verify(root, python, [FIXED, WRONG], selection, seed=7)
    assert right.verdict == "passed", right.output_tail
    assert wrong.verdict == "failed"
    messages = {r.test_id: r.message for r in wrong.reports if r.failed}
    assert messages["tests/test_calc.py::test_add"] == "assert add(1, 2) == 3 (got 2)"
    assert messages["calc.py::calc.add"] == "doctest: add(1, 2): expected 3, got 2"
    assert "PermissionError" not in wrong.output_tail
    assert snapshot(root) == before


SEEDED = {
    "pytest.ini": "[pytest]\naddopts = -p randomly\n",
    "calc.py": "def add(a, b):\n    return a + b\n",
    "tests/test_seeded.py": (
        "import random\n\n\ndef test_seeded():\n    assert random.getrandbits(32) == -1\n"
    ),
}


async def test_candidates_see_the_random_values_of_the_run_they_fix(tmp_path: Path) -> None:
    # pytest-randomly reseeds `random` before each test from its seed: a failure that depends
    # on it must read the same in the candidates as in the run on save.
    python = plugins_python()
    root = write_files(tmp_path / "ws", SEEDED)
    test = "tests/test_seeded.py::test_seeded"
    result, listener = await run(root, python, seed=1234)
    on_save = listener.reports[test].message
    assert result.seed == 1234 and on_save.startswith("assert random.getrandbits(32) == -1")
    [candidate] = await verify(root, python, [SEEDED["calc.py"]], [test], seed=1234)
    assert candidate.first_failure is not None
    assert candidate.first_failure.message == on_save
    _, other = await run(root, python, seed=99)
    assert other.reports[test].message != on_save


TIMEOUTS = {
    "pytest.ini": "[pytest]\ntimeout = 2\ntimeout_method = thread\n",
    "tests/test_slow.py": """
        import time

        import pytest


        def test_hangs():
            time.sleep(60)


        @pytest.mark.timeout(1, method="thread")
        def test_marked():
            time.sleep(60)


        def test_after():
            assert True
        """,
}


async def test_a_timeout_fails_its_test_and_the_run_goes_on(tmp_path: Path) -> None:
    # pytest-timeout's thread method ends the whole process (os._exit): every test after the
    # one that hung would be lost.
    root = write_files(tmp_path / "ws", TIMEOUTS)
    result, listener = await run(root, plugins_python())
    assert result.status == "completed", result.output_tail
    outcomes = {test.split("::")[1]: r.outcome for test, r in listener.reports.items()}
    assert outcomes == {"test_hangs": "timeout", "test_marked": "timeout", "test_after": "passed"}
    assert listener.reports["tests/test_slow.py::test_hangs"].kind == "test-timeout"


STOPS = {
    "pytest.ini": "[pytest]\naddopts = --maxfail=1 -p no:randomly\n",
    "tests/test_stops.py": "def test_a():\n    assert 0\n\n\ndef test_b():\n    assert 0\n",
}


async def test_a_run_that_maxfail_stopped_says_so(tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", STOPS)
    result, listener = await run(root, plugins_python())
    assert result.stopped == "stopping after 1 failures"
    assert list(listener.reports) == ["tests/test_stops.py::test_a"]


SRC_LAYOUT = {
    "pytest.ini": (
        "[pytest]\naddopts = --import-mode=importlib --doctest-modules -p no:randomly\n"
        "pythonpath = src\ntestpaths = tests src\n"
    ),
    "src/pkg/__init__.py": "",
    "src/pkg/calc.py": CALC,
    "tests/test_calc.py": "from pkg.calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
}


async def test_import_mode_importlib(tmp_path: Path) -> None:
    python = plugins_python()
    root = write_files(tmp_path / "ws", SRC_LAYOUT)
    result, listener = await run(root, python)
    target = root / "src/pkg/calc.py"
    failed = listener.reports["tests/test_calc.py::test_add"]
    assert failed.called is not None, result.output_tail
    assert (failed.called.path, failed.called.qualname) == (str(target), "add")
    [doctest] = [r for r in listener.reports.values() if r.doctest]
    assert doctest.line == 4 and doctest.path == str(target)
    selection = sorted(listener.reports)
    box = Sandbox(root, python)
    try:
        runs = [
            CandidateRun(target, source, selection, stop_at_first_failure=False)
            for source in (FIXED, WRONG)
        ]
        alone = await asyncio.wait_for(box.run(runs[0]), WAIT)
        right, wrong = await asyncio.wait_for(box.run_round(runs, CALC, "add"), WAIT)
    finally:
        await box.close()
    assert alone.verdict == "passed", alone.output_tail
    assert right.verdict == "passed", right.output_tail
    assert wrong.verdict == "failed" and len([r for r in wrong.reports if r.failed]) == 2


DJANGO_PROJECT = {
    "proj/__init__.py": "",
    "proj/settings.py": """
        SECRET_KEY = "test"
        INSTALLED_APPS = ["django.contrib.contenttypes", "shop"]
        DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
        USE_TZ = True
        """,
    "shop/__init__.py": "",
    "shop/models.py": """
        from django.db import models


        class Item(models.Model):
            price = models.IntegerField()


        def total(items):
            return sum(item.price for item in items) - 1
        """,
    "tests/test_shop.py": """
        import pytest

        from shop.models import Item, total


        @pytest.mark.django_db
        def test_total():
            Item.objects.create(price=2)
            Item.objects.create(price=3)
            assert total(Item.objects.all()) == 5
        """,
}


@pytest.mark.parametrize("settings_from", ["ini", "environment"])
async def test_django_settings_from_the_ini_or_the_environment(
    tmp_path: Path, settings_from: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sandbox's worker imports pytest-django's plugin before any candidate; each
    # candidate's run sets Django up from the project's settings.
    python = django_python()
    ini = "[pytest]\npythonpath = .\n"
    if settings_from == "ini":
        ini += "DJANGO_SETTINGS_MODULE = proj.settings\n"
    else:
        monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "proj.settings")
    root = write_files(tmp_path / "ws", {**DJANGO_PROJECT, "pytest.ini": ini})
    before = snapshot(root)
    result, listener = await run(root, python)
    failed = listener.reports["tests/test_shop.py::test_total"]
    assert failed.message == "assert total(Item.objects.all()) == 5 (got 4)", result.output_tail
    assert failed.called is not None and failed.called.qualname == "total"
    models = root / "shop/models.py"
    fixed = models.read_text().replace(") - 1", ")")
    box = Sandbox(root, python)
    try:
        outcome = await asyncio.wait_for(
            box.run(CandidateRun(models, fixed, ["tests/test_shop.py"])), WAIT
        )
    finally:
        await box.close()
    assert outcome.verdict == "passed", outcome.output_tail
    assert snapshot(root) == before  # no db.sqlite3: the test database is in memory
