"""Virtual environments built once from PyPI and kept between test runs.

Real projects and real pytest plugins (pytest-cov, pytest-xdist, pytest-randomly, ...) must
run in an interpreter of their own: installed into ours they would change how our own suite
runs. Each environment is keyed by what it holds, built under a lock (parallel test
processes may ask for the same one), and marked complete only when the install succeeded,
so an interrupted build is redone, never used half-made.

The cache is `$OCI_TEST_CACHE` or `~/.cache/oci-lsp-tests`; CI starts with it empty and
fills it from PyPI.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path


def cache_dir() -> Path:
    configured = os.environ.get("OCI_TEST_CACHE")
    base = Path(configured) if configured else Path.home() / ".cache" / "oci-lsp-tests"
    base.mkdir(parents=True, exist_ok=True)
    return base


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on path (a file beside what it guards), held for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def cached_venv(
    name: str,
    requirements: Sequence[str],
    editable: Sequence[Path] = (),
    pip_args: Sequence[str] = (),
    base: str | None = None,
) -> Path:
    """The interpreter of a virtualenv holding `requirements` (pinned specifiers, installed
    from PyPI) and `editable` project directories (`pip install -e`, not cached across
    different directories: their path is part of the key), made by `base` (another Python,
    e.g. pyenv's) or by ours."""
    python_key = sys.version if base is None else base
    key_text = json.dumps(
        [python_key, sorted(requirements), [str(p) for p in editable], list(pip_args)]
    )
    key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    venv = cache_dir() / "venvs" / f"{name}-{key}"
    done = venv / ".oci-complete"
    with locked(venv.with_suffix(".lock")):
        if done.exists():
            return venv_python(venv)
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([base or sys.executable, "-m", "venv", str(venv)], check=True)
        python = venv_python(venv)
        argv = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        argv += list(pip_args)
        if requirements:
            _pip(argv + list(requirements))
        for project in editable:
            _pip([*argv, "--no-deps", "-e", str(project)])
        done.write_text(key_text, encoding="utf-8")
        return python


PYTEST = "pytest==9.2.0"


def pytest_venv(base: str | None = None) -> Path:
    """The interpreter of a virtualenv with pytest alone: a project's environment, not ours
    (made by `base`, another Python, when given)."""
    if base is None:
        return cached_venv("pytest", [PYTEST])
    return cached_venv("pytest", [PYTEST], base=base)


PYENV = Path("/root/.pyenv/versions")


def pyenv_python(version: str) -> str:
    """pyenv's Python `version` (3.10.13, 3.12.1: the ones CI's machine has); a clear error
    when it is not there (a test that needs another Python fails, never skips)."""
    python = Path(os.environ.get("OCI_PYENV_ROOT", PYENV)) / version / "bin" / "python"
    if not python.exists():
        raise RuntimeError(
            f"Python {version} is needed at {python} (pyenv install {version}, or set"
            " OCI_PYENV_ROOT to the folder that holds pyenv's versions)"
        )
    return str(python)


def _pip(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-20:]
        raise RuntimeError(f"{' '.join(argv[:6])} ... failed:\n" + "\n".join(tail))
