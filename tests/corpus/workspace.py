"""A corpus project laid out as a developer has it: the source tree and its own `.venv`.

`materialize` unpacks the pristine sdist into a folder the caller names (any path: tests
put it under names with spaces and non-ASCII characters), applies the entry's overlay, and
gives it a `.venv` in which the project is importable from that folder, as after
`pip install -e .`.

How the project becomes importable. The test requirements are installed once into a cached
virtualenv (tests/venvs.py). Each workspace then gets a light virtualenv of its own (`python
-m venv --without-pip`, a tenth of a second) whose site-packages holds what an editable
install writes: a `.pth` that adds the workspace's import root to sys.path (hatchling's and
setuptools' editable installs write the same kind of file) and the project's dist-info
(METADATA from the sdist's PKG-INFO, entry points, `direct_url.json` saying editable), and
which adds the cached requirements with `site.addsitedir`. Why not one `pip install -e` made
once at a fixed path: tests copy the project into fresh temporary folders, in parallel, each
mutated differently, and an editable install points at one folder only; a real
`pip install -e` in every workspace needs the project's build backend (setuptools-scm,
hatch-vcs, flit) and costs seconds. The `.venv` sits inside the workspace, where most
developers keep it and where the server finds it without settings (pytest skips folders
that hold a pyvenv.cfg when collecting).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.corpus import overlays, sdists
from tests.corpus.projects import Project
from tests.venvs import cached_venv

VENV = ".venv"

# Our own test run's environment must not reach a project's pytest: these change what it
# loads, where it reports, which interpreter it thinks is active, or how fast it starts.
LEAKING = (
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
    "PYTEST_XDIST_AUTO_NUM_WORKERS",
    "PYTEST_CURRENT_TEST",
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "COVERAGE_FILE",
    "COVERAGE_PROCESS_START",
    "DJANGO_SETTINGS_MODULE",
    "OCI_LSP_REPORT_FD",
    # Not a developer's setting: without bytecode caches every run compiles every module.
    "PYTHONDONTWRITEBYTECODE",
)


@dataclass(frozen=True)
class Workspace:
    project: Project
    root: Path

    @property
    def python(self) -> Path:
        return self.root / VENV / "bin" / "python"

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment a developer's shell gives this project's pytest."""
        return project_env(self.project, base)


def project_env(project: Project, base: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in LEAKING}
    env.update(project.env)
    return env


def requirements_python(project: Project, base: str | None = None) -> Path:
    """The cached virtualenv with the project's pinned test requirements (built once), made
    by `base` (another Python) when given."""
    if base is None:
        return cached_venv(f"corpus-{project.key}", project.requirements)
    return cached_venv(f"corpus-{project.key}", project.requirements, base=base)


def sdist_of(project: Project) -> Path:
    return sdists.sdist(project.name, project.version, project.sha256)


def materialize(project: Project, root: Path, base: str | None = None) -> Workspace:
    """The pristine project (plus its overlay) in root, with its .venv (of `base`, another
    Python, when given). root must not exist or be empty; its parents are created."""
    sdists.unpack(sdist_of(project), root)
    overlay = project.effective_overlay()
    if overlay is not None:
        overlays.apply(root, project.config, overlay)
    _editable_venv(project, root, base)
    return Workspace(project, root)


def monorepo(root: Path, projects: Sequence[Project]) -> list[Workspace]:
    """Several projects in subfolders of root (named by their keys), each with its .venv."""
    return [materialize(p, root / p.key) for p in projects]


def _site_packages(venv: Path) -> Path:
    found = sorted((venv / "lib").glob("python3*/site-packages"))
    if len(found) != 1:
        raise RuntimeError(f"no single site-packages under {venv}: {found}")
    return found[0]


def _editable_venv(project: Project, root: Path, base: str | None = None) -> None:
    requirements = requirements_python(project, base)
    deps_site = _site_packages(requirements.parent.parent)
    own = project.dist_name
    # The cached one must not hold the project (pytest's own dependencies could): an
    # installed copy earlier on sys.path would shadow the workspace's.
    clash = [p.name for p in deps_site.glob("*.dist-info") if p.name.lower().startswith(own + "-")]
    if clash:
        raise RuntimeError(f"{project.key}: its requirements install the project itself: {clash}")
    venv = root / VENV
    subprocess.run([str(requirements), "-m", "venv", "--without-pip", str(venv)], check=True)
    site = _site_packages(venv)
    import_root = (root / project.import_root).resolve()
    # ascii(): the .pth is read in the locale's encoding; escapes survive any of them.
    (site / f"__editable__.{own}.pth").write_text(
        f"import site; site.addsitedir({str(deps_site)!a})\n"
        f"import sys; sys.path.append({str(import_root)!a})\n",
        encoding="ascii",
    )
    _dist_info(project, root, site)


def _dist_info(project: Project, root: Path, site: Path) -> None:
    """The metadata `pip install -e .` leaves: importlib.metadata finds the project."""
    info = site / f"{project.dist_name}-{project.version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_bytes((root / "PKG-INFO").read_bytes())
    (info / "INSTALLER").write_text("oci-lsp-tests\n", encoding="utf-8")
    direct_url = {"url": root.resolve().as_uri(), "dir_info": {"editable": True}}
    (info / "direct_url.json").write_text(json.dumps(direct_url), encoding="utf-8")
    for egg_info in root.glob("*.egg-info"):
        entry_points = egg_info / "entry_points.txt"
        if entry_points.exists():
            (info / "entry_points.txt").write_bytes(entry_points.read_bytes())
    names = sorted(p.name for p in info.iterdir())
    record = "".join(f"{info.name}/{n},,\n" for n in [*names, "RECORD"])
    (info / "RECORD").write_text(record, encoding="utf-8")
