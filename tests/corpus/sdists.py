"""Source distributions from PyPI: downloaded once, verified, unpacked on demand.

An sdist is found through PyPI's JSON API for its pinned version and checked against the
sha256 pinned in the corpus (a different file under the same version, or a corrupted
download, is an error, never used). The verified archive is kept under the test cache, so
CI downloads each one once per cache and every later use unpacks the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tests.venvs import cache_dir, locked

PYPI_PROJECT = "https://pypi.org/pypi/{name}/json"
PYPI_RELEASE = "https://pypi.org/pypi/{name}/{version}/json"
TIMEOUT = 60.0


class SdistError(RuntimeError):
    """The pinned sdist could not be found, downloaded or verified."""


def sdist_url(name: str, version: str, sha256: str) -> str:
    """The download URL of the sdist of name==version whose digest is sha256.

    The project's JSON lists every release's files; some PyPI mirrors serve only that one
    and not the per-release JSON, which is asked only when the first lacks the version.
    """
    api = PYPI_PROJECT.format(name=name)
    with urllib.request.urlopen(api, timeout=TIMEOUT) as response:
        files = json.load(response).get("releases", {}).get(version)
    if files is None:
        api = PYPI_RELEASE.format(name=name, version=version)
        with urllib.request.urlopen(api, timeout=TIMEOUT) as response:
            files = json.load(response).get("urls", [])
    for entry in files:
        if entry.get("packagetype") == "sdist" and entry["digests"]["sha256"] == sha256:
            # A mirror may answer with a URL relative to the API's (PyPI's own is absolute).
            return urllib.parse.urljoin(api, str(entry["url"]))
    raise SdistError(f"PyPI lists no sdist of {name} {version} with sha256 {sha256}")


def sdist(name: str, version: str, sha256: str) -> Path:
    """The verified sdist archive of name==version, downloaded into the cache if missing."""
    folder = cache_dir() / "sdists"
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / f"{name}-{version}-{sha256[:16]}.sdist"
    with locked(archive.with_suffix(".lock")):
        if archive.exists() and _digest(archive) == sha256:
            return archive
        url = sdist_url(name, version, sha256)
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            data = response.read()
        got = hashlib.sha256(data).hexdigest()
        if got != sha256:
            raise SdistError(f"{url}: sha256 {got}, pinned {sha256}")
        # The suffix says which format it is; kept in a side file, the name stays fixed.
        fd, tmp = tempfile.mkstemp(dir=folder)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, archive)
        archive.with_suffix(".format").write_text(_format(url), encoding="utf-8")
        return archive


def unpack(archive: Path, dest: Path) -> Path:
    """Unpack the sdist's single top folder's contents into dest (created; must be empty)."""
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise SdistError(f"{dest} is not empty")
    kind = archive.with_suffix(".format").read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".unpack-") as tmp:
        scratch = Path(tmp)
        if kind == "zip":
            with zipfile.ZipFile(archive) as zipped:
                _check_members(zipped.namelist())
                zipped.extractall(scratch)
        else:
            with tarfile.open(archive) as tarred:
                _check_members(tarred.getnames())
                tarred.extractall(scratch, filter="data")
        (top,) = list(scratch.iterdir())
        for item in top.iterdir():
            shutil.move(str(item), str(dest / item.name))
    return dest


def _format(url: str) -> str:
    return "zip" if urllib.parse.urlparse(url).path.endswith(".zip") else "tar"


def _check_members(names: list[str]) -> None:
    """One top folder, nothing absolute or above it (the tar filter checks again)."""
    tops = {PurePosixPath(n).parts[0] for n in names if n.strip("/")}
    if len(tops) != 1 or any(n.startswith("/") or ".." in PurePosixPath(n).parts for n in names):
        raise SdistError(f"unexpected sdist layout: {sorted(tops)[:5]}")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
