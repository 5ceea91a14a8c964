"""Projects whose pytest configuration loads the plugins that write into the workspace or change
how a run behaves (issue 13, point 3), with the interpreters that hold those plugins.

The plugins come from PyPI at pinned versions into virtualenvs of their own (tests/venvs.py):
installed into ours they would change how our own suite runs. Django has its own.
"""

from __future__ import annotations

import functools
from pathlib import Path

from tests.venvs import cached_venv

PYTEST = "pytest==8.4.2"
PLUGINS = [
    PYTEST,
    "pytest-cov==7.1.0",
    "coverage==7.18.0",
    "pytest-xdist==3.8.0",
    "pytest-randomly==5.1.0",
    "pytest-timeout==2.4.0",
    "pytest-benchmark==5.3.1",
    "pytest-html==4.2.0",
]
DJANGO = [PYTEST, "pytest-django==4.14.0", "Django==5.2.20"]


@functools.cache
def plugins_python() -> str:
    return str(cached_venv("plugins", PLUGINS))


@functools.cache
def django_python() -> str:
    return str(cached_venv("django", DJANGO))


# Everything at once, as a project's addopts: coverage with an XML report, xdist, reports,
# benchmark storage, doctests in modules and in Markdown, and a cache option.
ADDOPTS = (
    "--cov=calc --cov-report=xml -n 2 --junitxml=report.xml --html=report.html"
    " --benchmark-autosave --doctest-modules --doctest-glob=*.md --ff"
)
# In ini form (the PYTEST_ADDOPTS project gives them as options). `cache_dir` belongs to
# pytest's cache plugin, which our runs do not load: unknown, it would be a warning, and an
# error under `filterwarnings = error`.
INI = {
    "timeout": "30",
    "timeout_method": "thread",
    "filterwarnings": "error",
    "cache_dir": ".cache",
}
CONFIG_SOURCES = ["pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml", "PYTEST_ADDOPTS"]

CALC = '''\
def add(a, b):
    """Add two numbers.

    >>> add(1, 2)
    3
    """
    return a - b


def double(x):
    return 2 * x
'''

TESTS = """\
import os
import random

from calc import add, double


def test_add():
    assert add(1, 2) == 3


def test_double():
    assert double(2) == 4


def test_benchmark(benchmark):
    assert benchmark(double, 3) == 6


def test_in_one_process():
    assert "PYTEST_XDIST_WORKER" not in os.environ


def test_random():
    assert random.getrandbits(32) >= 0
"""

README = """\
# calc

>>> from calc import add
>>> add(2, 3)
5
"""


def config_files(source: str, addopts: str, ini: dict[str, str]) -> dict[str, str]:
    """The project's pytest configuration in `source`: one of CONFIG_SOURCES (for
    PYTEST_ADDOPTS the files hold nothing; `environment` gives the variable)."""
    lines = [f"addopts = {addopts}", *(f"{key} = {value}" for key, value in ini.items())]
    if source == "pytest.ini" or source == "tox.ini":
        return {source: "[pytest]\n" + "\n".join(lines) + "\n"}
    if source == "setup.cfg":
        return {source: "[tool:pytest]\n" + "\n".join(lines) + "\n"}
    if source == "pyproject.toml":
        toml = [f'addopts = "{addopts}"', *(f'{k} = "{v}"' for k, v in ini.items())]
        return {source: "[tool.pytest.ini_options]\n" + "\n".join(toml) + "\n"}
    return {"pytest.ini": "[pytest]\n"}  # the rootdir; the options come from the environment


def environment(source: str, addopts: str, ini: dict[str, str]) -> dict[str, str]:
    if source != "PYTEST_ADDOPTS":
        return {}
    as_options = [
        f"--timeout={ini['timeout']}",
        f"--timeout_method={ini['timeout_method']}",
        f"-o cache_dir={ini['cache_dir']}",
        "-W error",
    ]
    return {"PYTEST_ADDOPTS": " ".join([addopts, *as_options])}


def project(source: str) -> dict[str, str]:
    return {
        "calc.py": CALC,
        "tests/test_calc.py": TESTS,
        "README.md": README,
        **config_files(source, ADDOPTS, INI),
    }


def snapshot(root: Path) -> dict[str, bytes]:
    """The workspace's files and their bytes (Python's own bytecode caches aside)."""
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(root.rglob("*"))
        if "__pycache__" not in p.parts and ".venv" not in p.parts
    }
