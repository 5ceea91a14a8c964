"""The corpus: real open-source projects, pinned to an sdist on PyPI, as their authors ship them.

Each entry pins the sdist (version and sha256), the requirements of its own test suite
(pinned, installed from PyPI into a cached virtualenv; never the project itself, which runs
from the workspace copy), where its code lives, and where its pytest configuration lives.
`overlay` adds a configuration that issue 13 needs covered and no small real project ships
(each says so); `deselect` drops tests that cannot pass on this machine (each says why).

Together the entries cover: pytest-cov `--cov` in addopts (parse, wcwidth), pytest-xdist
`-n auto` (python-slugify, overlay), pytest-randomly (more-itertools, overlay), pytest-timeout
(isodate, overlay), pytest-benchmark (humanize), junit and html reports in addopts (isodate's
`--junitxml`, overlay; wcwidth's `--cov-report=html`), `--maxfail` in addopts (isodate,
overlay), `--doctest-modules` (humanize, parse, jaraco.functools) and a doctest file
(parse's README.rst), `filterwarnings = error` (humanize, isodate, python-slugify, wcwidth),
`--import-mode importlib` (jaraco.functools), pytest-django with DJANGO_SETTINGS_MODULE
(django-model-utils), configs in pytest.ini (jaraco.functools), tox.ini (wcwidth), setup.cfg
(django-model-utils) and pyproject.toml (the rest, pytest 9's native `[tool.pytest]` in
humanize), src/ layouts (humanize, isodate, cachetools), unittest suites (more-itertools,
python-slugify, cachetools), docstrings with Markdown fences (humanize), session-scoped
fixtures (humanize; and its overlay's conftest fills doctest_namespace), a namespace package
(jaraco.functools). MONOREPO names two that share one folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tests.corpus.overlays import Overlay


@dataclass(frozen=True)
class Project:
    key: str  # short name: the folder's name in a monorepo, the key in mutations.json
    name: str  # on PyPI
    version: str
    sha256: str  # of the sdist, from PyPI's JSON API
    requirements: tuple[str, ...]  # pinned: what its tests need, never the project itself
    import_root: str  # what an editable install puts on sys.path: "src" or "."
    code: tuple[str, ...]  # the project's own code (not tests), for mutations and stubs
    config: str  # the file that holds its pytest configuration
    # Characteristics, for the corpus table (README, RESULTS.md, the survey).
    layout: str
    plugins: str
    notes: str
    suite: str  # plain pytest here (2 shared cores, warm): what ran and how long
    overlay: Overlay | None = None
    deselect: tuple[tuple[str, str], ...] = ()  # (node id, why it cannot pass here)
    env: Mapping[str, str] = field(default_factory=dict)  # what a developer's shell sets

    @property
    def dist_name(self) -> str:
        """The normalized distribution name (dist-info folder names)."""
        return self.name.replace("-", "_").replace(".", "_").lower()

    def effective_overlay(self) -> Overlay | None:
        """The overlay with the deselected tests added to addopts (so the server sees them)."""
        if not self.deselect:
            return self.overlay
        base = self.overlay or Overlay(why="")
        return Overlay(
            why=base.why,
            addopts=(*base.addopts, *(f"--deselect={node}" for node, _ in self.deselect)),
            ini=base.ini,
            files=base.files,
        )


# The doctest namespace filled by an autouse fixture, as numpy-style projects do.
HUMANIZE_CONFTEST = '''\
"""Names every doctest may use without importing them (the doctest_namespace idiom)."""

import pytest

import humanize


@pytest.fixture(autouse=True)
def add_humanize(doctest_namespace):
    doctest_namespace["humanize"] = humanize
'''

PYTEST = "pytest==9.2.0"
PYTEST_DEPS = ("iniconfig==2.3.1", "packaging==26.4", "pluggy==1.7.0", "pygments==2.21.0")

PROJECTS: tuple[Project, ...] = (
    Project(
        key="humanize",
        name="humanize",
        version="4.17.0",
        sha256="1d6a36c453dbfbb3f0b34601d2e0b4ce5d48d780305cd45714843f0068fde6ac",
        requirements=(
            PYTEST,
            *PYTEST_DEPS,
            "freezegun==1.5.5",
            "python-dateutil==4.0.0",
            "pytest-benchmark==5.3.1",
            "py-cpuinfo==9.0.0",
        ),
        import_root="src",
        code=("src/humanize",),
        config="pyproject.toml",
        layout="src/",
        plugins="pytest-benchmark",
        notes="pytest 9 native [tool.pytest]; --doctest-modules; filterwarnings error;"
        " ```pycon fences in docstrings; a session-scoped autouse fixture",
        suite="908 passed, 9.9 s",
        overlay=Overlay(
            why="a root conftest.py whose autouse fixture fills doctest_namespace",
            files={"conftest.py": HUMANIZE_CONFTEST},
        ),
    ),
    Project(
        key="parse",
        name="parse",
        version="1.22.4",
        sha256="706d458feed5a81b02768d3156e8070baf6cee7d150a3a3c0cd43101a875c3b5",
        requirements=(PYTEST, *PYTEST_DEPS, "pytest-cov==7.1.0", "coverage==7.18.0"),
        import_root=".",
        code=("parse",),
        config="pyproject.toml",
        layout="flat",
        plugins="pytest-cov",
        notes="--cov --cov-append --cov-branch in addopts; --doctest-modules;"
        " --doctest-glob=README.rst",
        suite="111 passed, 1 skipped, 1.2 s",
    ),
    Project(
        key="jaraco.functools",
        name="jaraco.functools",
        version="4.6.0",
        sha256="880c577ec9720b3a052d5bc611fb9f2269b3d87902ef42440df443b88e443280",
        requirements=(PYTEST, *PYTEST_DEPS, "more-itertools==11.2.1", "jaraco.classes==3.4.0"),
        import_root=".",
        code=("jaraco/functools",),
        config="pytest.ini",
        layout="flat, namespace package",
        plugins="-",
        notes="--doctest-modules --import-mode importlib; a root conftest.py;"
        " tests beside the code",
        suite="38 passed, 2 xfailed, 3.8 s",
    ),
    Project(
        key="wcwidth",
        name="wcwidth",
        version="0.2.13",
        sha256="72ea0c06399eb286d978fdedb6923a9eb47e1c486ce63e9b4e64fc18303972b5",
        requirements=(PYTEST, *PYTEST_DEPS, "pytest-cov==7.1.0", "coverage==7.18.0"),
        import_root=".",
        code=("wcwidth",),
        config="tox.ini",
        layout="flat",
        plugins="pytest-cov",
        notes="[pytest] in tox.ini: --cov --cov-report=html --color=yes; filterwarnings error",
        suite="38 passed, 1 skipped, 1.8 s",
    ),
    Project(
        key="more-itertools",
        name="more-itertools",
        version="11.2.1",
        sha256="cbf08fd0af284dc69718b9b76a8e6203df624d70209ea511e4219d350c856f63",
        requirements=(PYTEST, *PYTEST_DEPS, "pytest-randomly==5.1.0"),
        import_root=".",
        code=("more_itertools",),
        config="pyproject.toml",
        layout="flat",
        plugins="pytest-randomly (overlay)",
        notes="unittest suite (TestCase classes); no pytest configuration of its own"
        " (the deselections below add addopts to its pyproject.toml)",
        suite="761 passed (11,600 subtests), 4 deselected, 12.6 s",
        overlay=Overlay(why="pytest-randomly installed in its venv (random order, reseeded)"),
        # Their 21,000 subtests run in ~9 s here without these four; with them, ~38 s.
        deselect=(
            ("tests/test_recipes.py::PrimeFunctionTests::test_primes", "slow: 23 s here"),
            ("tests/test_more.py::DiscreteFourierTransformTests::test_roundtrip", "slow: 3 s"),
            ("tests/test_more.py::TestConcurrentTee::test_concurrent_consumers", "slow: 2 s"),
            ("tests/test_recipes.py::PrimeFunctionTests::test_nth_prime_approximate", "slow"),
        ),
    ),
    Project(
        key="django-model-utils",
        name="django-model-utils",
        version="5.0.0",
        sha256="041cdd6230d2fbf6cd943e1969318bce762272077f4ecd333ab2263924b4e5eb",
        requirements=(
            PYTEST,
            *PYTEST_DEPS,
            "pytest-django==4.14.0",
            "Django==5.2.20",
            "asgiref==3.13.0",
            "sqlparse==0.6.1",
            "time-machine==3.6.0",
        ),
        import_root=".",
        code=("model_utils",),
        config="setup.cfg",
        layout="flat, Django app",
        plugins="pytest-django",
        notes="[tool:pytest] in setup.cfg: DJANGO_SETTINGS_MODULE = tests.settings;"
        " SQLITE=1 in the environment selects SQLite (else PostgreSQL)",
        suite="346 passed, 4 deselected, 2.4 s",
        env={"SQLITE": "1"},
        deselect=tuple(
            (f"tests/test_managers/test_join_manager.py::JoinManagerTest::{name}", "PostgreSQL")
            for name in (
                "test_join_with_other_qs",
                "test_reverse_join",
                "test_self_join",
                "test_self_join_with_where_statement",
            )
        ),
    ),
    Project(
        key="isodate",
        name="isodate",
        version="0.7.2",
        sha256="4cd1aa0f43ca76f4a6c6c0292a85f40b35ec2e43e315b59f06e6d32171a953e6",
        requirements=(PYTEST, *PYTEST_DEPS, "pytest-timeout==2.4.0"),
        import_root="src",
        code=("src/isodate",),
        config="pyproject.toml",
        layout="src/",
        plugins="pytest-timeout (overlay)",
        notes="filterwarnings error; junit_family",
        suite="280 passed, 0.8 s",
        overlay=Overlay(
            why="--junitxml=report.xml --maxfail=3 in addopts; pytest-timeout's timeout = 60",
            addopts=("--junitxml=report.xml --maxfail=3",),
            ini={"timeout": "60"},
        ),
    ),
    Project(
        key="python-slugify",
        name="python-slugify",
        version="9.2.0",
        sha256="cee32948083476013804de1667724fb1362dacb71e47b1d5d92adf8db6ee3298",
        requirements=(
            PYTEST,
            *PYTEST_DEPS,
            "text-unidecode==1.3",
            "pytest-xdist==3.8.0",
            "execnet==2.1.2",
        ),
        import_root=".",
        code=("slugify",),
        config="pyproject.toml",
        layout="flat",
        plugins="pytest-xdist (overlay)",
        notes="unittest suite (TestCase classes); filterwarnings error; --color=yes",
        suite="140 passed, 2.7 s",
        overlay=Overlay(why="-n auto in addopts (pytest-xdist)", addopts=("-n auto",)),
    ),
    Project(
        key="cachetools",
        name="cachetools",
        version="8.0.3",
        sha256="79245d0d90464e29355f13658cd769e57d98ed06242d3c6fbd71796ca0938ef9",
        requirements=(PYTEST, *PYTEST_DEPS),
        import_root="src",
        code=("src/cachetools",),
        config="pyproject.toml",
        layout="src/",
        plugins="-",
        notes="unittest suite (TestCase classes); no pytest configuration",
        suite="480 passed, 2.1 s",
    ),
)

BY_KEY: Mapping[str, Project] = {p.key: p for p in PROJECTS}

# Two projects in subfolders of one folder, each with its own configuration and venv.
MONOREPO: tuple[str, str] = ("isodate", "python-slugify")

# A few small, fast ones for CI's smoke test.
SMOKE: tuple[str, ...] = ("isodate", "python-slugify")


def project(key: str) -> Project:
    return BY_KEY[key]


def markdown_table(projects: tuple[Project, ...] = PROJECTS) -> str:
    """The corpus's characteristics, one row per project."""
    rows = [
        "| project | version | layout | config | plugins | suite (plain pytest here) | notes"
        " | overlay |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in projects:
        overlay = p.overlay.why if p.overlay else "-"
        rows.append(
            f"| {p.name} | {p.version} | {p.layout} | {p.config} | {p.plugins} | {p.suite}"
            f" | {p.notes} | {overlay} |"
        )
    return "\n".join(rows)
