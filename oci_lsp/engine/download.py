"""Pull a checkpoint from the Hugging Face hub: the download half of `oci-lsp model pull`.

`resolve_snapshot` asks the hub (or the mirror HF_ENDPOINT names) which commit a revision is
and which of its files a conversion needs; `download_snapshot` fetches them into
`downloads/<owner>--<name>/<commit>/`, verified and resumable.

How a file travels:

- Every URL is pinned to the commit the hub resolved, so a push to `main` during a pull cannot
  mix two versions. A HEAD on `/{repo}/resolve/{commit}/{path}` (huggingface_hub's
  `get_hf_file_metadata`, which follows same-host redirects and stops at the CDN) gives the URL
  the bytes come from. The token goes to the hub only, never to a CDN's signed URL.
- Files up to LARGE_FILE_THRESHOLD are streamed with huggingface_hub's HTTP client and hashed as
  they arrive. Larger ones go through `hf_transfer.download` (parallel range requests in Rust);
  huggingface_hub 1.0 and later no longer call it themselves, so this module does.
- Nothing is written under a final name until it is verified: bytes go to `<path>.incomplete`,
  are checked (size, and sha256 for LFS files or the git blob sha1 for the others) and renamed.
  A mismatch deletes the file and raises DownloadError; the next pull fetches it again.
- Verified files are remembered in `.verified.json` (path, size, hashes, mtime), so a second pull
  downloads nothing and does not even rehash.

Resuming a large file. hf_transfer cannot resume: it always downloads the whole URL, writes each
chunk at its offset in place (without truncating the file) and *deletes the file* when anything
fails, Ctrl-C included. So before a large download `<path>.incomplete` is created at full size
(sparse) with a 16-byte random marker at the end of every chunk (chunk boundaries are hf_transfer's:
multiples of chunk_size); hf_transfer is handed a hard link to it (`<path>.incomplete.transfer`),
so its clean-up removes the link and the chunks it finished survive. A chunk is done once its
end marker is overwritten: hf_transfer and the range fetcher here both write a chunk front to back
only after receiving all of it. The next pull fetches only the chunks whose marker is still there,
with parallel range requests, and the final sha256 check guards the whole file. The markers' seed
and the chunk size are kept in `<path>.incomplete.json`. Without hard links (some network or FAT
file systems) the range fetcher does the whole file, which resumes the same way.

hf_transfer holds the GIL for the whole download, so no other Python thread of this process runs
meanwhile (a progress thread would freeze; a local test server must run in another process).
It calls back into Python once per finished chunk, which is where progress is reported and where
Ctrl-C is noticed; so a callback is always passed.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TextIO
from urllib.parse import urlsplit

import hf_transfer  # type: ignore[import-untyped]
import httpx2
from huggingface_hub import (
    HfApi,
    constants,
    get_hf_file_metadata,
    get_session,
    hf_hub_url,
    hf_raise_for_status,
)
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]  # no __all__

from oci_lsp.engine.paths import downloads_dir

if sys.platform != "win32":
    import fcntl

log = logging.getLogger(__name__)

# What a conversion reads: config, tokenizer (tokenizer.json, or the sentencepiece / BPE files
# of repos without one) and the safetensors weights with their index. Patterns without a "/"
# match files at the top of the repo only: subfolders hold other variants (onnx/, original/...).
DEFAULT_PATTERNS: tuple[str, ...] = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "chat_template.jinja",
    "*.safetensors",
    "*.safetensors.index.json",
)
# PyTorch pickles: only taken when nothing that `patterns` selected is a safetensors file.
PYTORCH_PATTERNS: tuple[str, ...] = ("*.bin", "pytorch_model*.bin.index.json")

LARGE_FILE_THRESHOLD = 10 * 1024 * 1024  # bytes; larger files go through hf_transfer
HF_TRANSFER_PARALLEL_FAILURES = 3  # chunks allowed to be retrying at once (<= max_files)
HF_TRANSFER_MAX_RETRIES = 5  # attempts per chunk inside hf_transfer
VERIFIED_FILE = ".verified.json"
INCOMPLETE_SUFFIX = ".incomplete"

_MARK_LEN = 16
_READ_BLOCK = 8 * 1024 * 1024
_STREAM_PIECE = 1024 * 1024
_URL_IN_MESSAGE = re.compile(r"\s*for url \([^)]*\)|\s*https?://\S+")

Progress = Callable[[str, int, int], None]


class DownloadError(Exception):
    """A pull failed; the message is one line that says what happened and what to do."""

    def __init__(self, message: str, *, file: str | None = None) -> None:
        super().__init__(message)
        self.file = file


@dataclass
class RemoteFile:
    path: str  # relative to the repo root, "/"-separated
    size: int | None
    sha256: str | None  # LFS files only
    url: str  # the hub's resolve URL, pinned to the snapshot's commit
    git_sha1: str | None = None  # git blob id, for files not in LFS (their content hash)


@dataclass
class Snapshot:
    repo: str
    revision: str  # the commit sha the hub resolved
    files: list[RemoteFile]

    @property
    def total_size(self) -> int:
        return sum(f.size or 0 for f in self.files)


def hub_endpoint() -> str:
    """The hub or mirror to talk to: HF_ENDPOINT as it is now, else huggingface_hub's default.

    huggingface_hub reads HF_ENDPOINT once, at import (`constants.ENDPOINT`); reading it here on
    every call and passing it explicitly means setting it later (a CLI flag, a test) just works.
    """
    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def default_destination(snapshot: Snapshot) -> Path:
    return downloads_dir() / snapshot.repo.replace("/", "--") / snapshot.revision


# --- which files -----------------------------------------------------------------------------


def _matches(path: str, pattern: str) -> bool:
    if "/" not in pattern and "/" in path:
        return False
    return fnmatch.fnmatchcase(path, pattern)


def select_files(
    paths: Sequence[str],
    patterns: Sequence[str] = DEFAULT_PATTERNS,
    fallback_patterns: Sequence[str] = PYTORCH_PATTERNS,
) -> list[str]:
    """The paths matching `patterns`, plus those matching `fallback_patterns` when the former
    include no `.safetensors` file (a repo with only PyTorch weights)."""
    chosen = {p for p in paths if any(_matches(p, pat) for pat in patterns)}
    if not any(p.endswith(".safetensors") for p in chosen):
        chosen |= {p for p in paths if any(_matches(p, pat) for pat in fallback_patterns)}
    return sorted(chosen)


def resolve_snapshot(
    repo: str,
    revision: str | None = None,
    patterns: Sequence[str] = DEFAULT_PATTERNS,
    *,
    fallback_patterns: Sequence[str] = PYTORCH_PATTERNS,
) -> Snapshot:
    """Ask the hub which commit `revision` (default: the default branch) is and list the files
    to pull, with their sizes and hashes. Raises DownloadError."""
    endpoint = hub_endpoint()
    try:
        info = HfApi(endpoint=endpoint).model_info(
            repo,
            revision=revision,
            files_metadata=True,
            timeout=constants.HF_HUB_ETAG_TIMEOUT,
        )
    except Exception as exc:
        raise _translate(exc, endpoint=endpoint, repo=repo, revision=revision) from exc
    where = f"{repo}@{revision or 'main'}"
    if not info.sha:
        raise DownloadError(
            f"the hub at {endpoint} did not say which commit {where} is; "
            "check HF_ENDPOINT points at a Hugging Face hub or mirror"
        )
    siblings = {s.rfilename: s for s in info.siblings or []}
    chosen = select_files(list(siblings), patterns, fallback_patterns)
    if not chosen:
        raise DownloadError(
            f"no file of {where} matches {', '.join(patterns)}; "
            "check the repository holds a transformers checkpoint"
        )
    if list(patterns) == list(DEFAULT_PATTERNS) and not any(
        p.endswith((".safetensors", ".bin")) for p in chosen
    ):
        raise DownloadError(
            f"{where} has no *.safetensors or *.bin weights at its top level, so it cannot be "
            "converted; pick a repository with transformers weights"
        )
    files: list[RemoteFile] = []
    for path in chosen:
        _check_relative(path, where)
        sibling = siblings[path]
        lfs = sibling.lfs
        files.append(
            RemoteFile(
                path=path,
                size=lfs.size if lfs is not None else sibling.size,
                sha256=lfs.sha256.lower() if lfs is not None else None,
                url=hf_hub_url(repo, path, revision=info.sha, endpoint=endpoint),
                git_sha1=None if lfs is not None else sibling.blob_id,
            )
        )
    return Snapshot(repo=repo, revision=info.sha, files=files)


def _check_relative(path: str, where: str) -> None:
    parts = PurePosixPath(path).parts
    if not parts or path.startswith("/") or ".." in parts or "\\" in path:
        raise DownloadError(
            f"the hub listed an unsafe file name {path!r} in {where}; "
            "refusing to write it (check HF_ENDPOINT)"
        )


# --- errors ----------------------------------------------------------------------------------


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _first_line(text: object) -> str:
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


def format_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _disk_full(where: Path, detail: object = "") -> DownloadError:
    extra = f" ({_one_line(detail)})" if detail else ""
    return DownloadError(
        f"no space left on the disk holding {where}{extra}; free some space or point "
        "XDG_CACHE_HOME at a larger disk, then pull again (finished files are kept)"
    )


def _is_enospc(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    text = str(exc)
    return "No space left on device" in text or "os error 28" in text


def _translate(
    exc: BaseException,
    *,
    endpoint: str,
    repo: str,
    revision: str | None,
    file: str | None = None,
) -> DownloadError:
    """One DownloadError, with what to do, for whatever huggingface_hub or httpx2 raised."""
    where = f"{repo}@{revision or 'main'}"
    what = f"{file} of {where}" if file else where
    if isinstance(exc, DownloadError):
        return exc
    if isinstance(exc, OfflineModeIsEnabled):
        return DownloadError(
            f"HF_HUB_OFFLINE is set, so {where} cannot be pulled; "
            "unset HF_HUB_OFFLINE (and TRANSFORMERS_OFFLINE) to download",
            file=file,
        )
    if isinstance(exc, GatedRepoError):
        status = exc.response.status_code
        return DownloadError(
            f"{repo} is a gated model and this account may not download it ({status}): "
            f"accept the license on the model page ({endpoint}/{repo}) and log in: "
            "`hf auth login` or set HF_TOKEN",
            file=file,
        )
    if isinstance(exc, RepositoryNotFoundError):
        return DownloadError(
            f"repository {repo} not found on {endpoint}: check the name; if it is private, "
            "log in: `hf auth login` or set HF_TOKEN",
            file=file,
        )
    if isinstance(exc, RevisionNotFoundError):
        return DownloadError(
            f"revision {revision or 'main'!r} not found in {repo}: "
            "check the branch, tag or commit name",
            file=file,
        )
    if isinstance(exc, RemoteEntryNotFoundError):
        return DownloadError(
            f"{what} is listed by the hub but cannot be downloaded (404); pull again, "
            "and if it persists the repository is inconsistent",
            file=file,
        )
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code
        detail = _one_line(exc.server_message or _first_line(exc))
        if status in (401, 403):
            return DownloadError(
                f"the hub refused access to {what} ({status}: {detail}): log in with "
                "`hf auth login` or set HF_TOKEN to a token that can read it",
                file=file,
            )
        if status == 429:
            return DownloadError(
                f"the hub is rate-limiting requests for {what} (429); wait a few minutes and pull "
                "again (logged-in users get a higher limit: `hf auth login`)",
                file=file,
            )
        return DownloadError(
            f"the hub at {endpoint} answered {status} for {what} ({detail}); try again later",
            file=file,
        )
    if isinstance(exc, httpx2.TransportError):
        reason = _one_line(exc) or type(exc).__name__
        return DownloadError(
            f"cannot reach the Hugging Face hub at {endpoint}: {reason}; "
            "check the network or HF_ENDPOINT",
            file=file,
        )
    if isinstance(exc, HFValidationError):
        return DownloadError(
            f"{repo!r} is not a valid repository id ({_first_line(exc)}); "
            "expected owner/name as on the model page",
            file=file,
        )
    if _is_enospc(exc):
        return _disk_full(Path("."), exc)
    return DownloadError(
        f"pulling {what} failed: {type(exc).__name__}: {_one_line(_first_line(exc))}", file=file
    )


# --- verification ----------------------------------------------------------------------------


@dataclass
class _Digest:
    size: int
    sha256: str | None
    git_sha1: str | None


class _Hasher:
    """sha256 and/or git blob sha1 of a stream, fed piece by piece."""

    def __init__(self, f: RemoteFile) -> None:
        self.size = 0
        self._sha256 = hashlib.sha256() if f.sha256 else None
        self._sha1 = None
        if f.git_sha1 and f.size is not None:
            self._sha1 = hashlib.sha1(usedforsecurity=False)
            self._sha1.update(b"blob %d\0" % f.size)

    def update(self, data: bytes) -> None:
        self.size += len(data)
        if self._sha256 is not None:
            self._sha256.update(data)
        if self._sha1 is not None:
            self._sha1.update(data)

    def digest(self) -> _Digest:
        return _Digest(
            self.size,
            self._sha256.hexdigest() if self._sha256 is not None else None,
            self._sha1.hexdigest() if self._sha1 is not None else None,
        )


def _hash_file(path: Path, f: RemoteFile) -> _Digest:
    hasher = _Hasher(f)
    with open(path, "rb") as fh:
        while block := fh.read(_READ_BLOCK):
            hasher.update(block)
    return hasher.digest()


def _mismatch(f: RemoteFile, got: _Digest) -> str | None:
    """What is wrong with `got`, or None when it is `f`."""
    if f.size is not None and got.size != f.size:
        return f"size mismatch: expected {f.size} bytes, got {got.size}"
    if f.sha256 and got.sha256 != f.sha256:
        return f"checksum mismatch: expected sha256 {f.sha256}, got {got.sha256}"
    if f.git_sha1 and got.git_sha1 is not None and got.git_sha1 != f.git_sha1:
        return f"checksum mismatch: expected git sha1 {f.git_sha1}, got {got.git_sha1}"
    return None


def _verify_or_discard(tmp: Path, f: RemoteFile, got: _Digest, *extra: Path) -> None:
    problem = _mismatch(f, got)
    if problem is None:
        return
    for p in (tmp, *extra):
        p.unlink(missing_ok=True)
    raise DownloadError(
        f"{f.path}: {problem}; the file was deleted and the next pull downloads it again",
        file=f.path,
    )


class _Verified:
    """`.verified.json`: files already checked, keyed by path, with what they were checked for."""

    def __init__(self, dest: Path) -> None:
        self.path = dest / VERIFIED_FILE
        self.records: dict[str, dict[str, Any]] = {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        files = data.get("files") if isinstance(data, dict) else None
        if isinstance(files, dict):
            self.records = {k: v for k, v in files.items() if isinstance(v, dict)}

    def holds(self, f: RemoteFile, target: Path) -> bool:
        record = self.records.get(f.path)
        if record is None:
            return False
        try:
            st = target.stat()
        except OSError:
            return False
        return (
            record.get("size") == (f.size if f.size is not None else st.st_size)
            and record.get("sha256") == f.sha256
            and record.get("git_sha1") == f.git_sha1
            and record.get("mtime_ns") == st.st_mtime_ns
            and st.st_size == record.get("size")
        )

    def add(self, f: RemoteFile, target: Path) -> None:
        st = target.stat()
        self.records[f.path] = {
            "size": st.st_size,
            "sha256": f.sha256,
            "git_sha1": f.git_sha1,
            "mtime_ns": st.st_mtime_ns,
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(
            json.dumps({"version": 1, "files": self.records}, indent=1, sort_keys=True),
            encoding="utf-8",
        )
        os.replace(tmp, self.path)


# --- resumable large files -------------------------------------------------------------------


@dataclass
class _Partial:
    """`<path>.incomplete` of a large file, with a marker at the end of every chunk."""

    data: Path
    size: int
    chunk_size: int
    seed: bytes

    @property
    def state(self) -> Path:
        return self.data.with_name(self.data.name + ".json")

    @property
    def n_chunks(self) -> int:
        return -(-self.size // self.chunk_size)

    def bounds(self, i: int) -> tuple[int, int]:
        start = i * self.chunk_size
        return start, min(start + self.chunk_size, self.size)

    def marker(self, i: int) -> bytes:
        return hashlib.sha256(self.seed + i.to_bytes(8, "big")).digest()[:_MARK_LEN]

    def missing(self) -> list[int]:
        """Chunks whose end marker is still in place (or too short to carry one)."""
        out: list[int] = []
        with open(self.data, "rb") as fh:
            for i in range(self.n_chunks):
                start, end = self.bounds(i)
                if end - start < 2 * _MARK_LEN:
                    out.append(i)
                    continue
                fh.seek(end - _MARK_LEN)
                if fh.read(_MARK_LEN) == self.marker(i):
                    out.append(i)
        return out

    def done_bytes(self, missing: Sequence[int]) -> int:
        return self.size - sum(e - s for s, e in map(self.bounds, missing))

    def discard(self) -> None:
        self.data.unlink(missing_ok=True)
        self.state.unlink(missing_ok=True)

    @classmethod
    def open(cls, data: Path, f: RemoteFile, size: int, chunk_size: int) -> _Partial:
        """The partial file left by an earlier pull of the same content, else a fresh one."""
        state = data.with_name(data.name + ".json")
        try:
            saved = json.loads(state.read_text(encoding="utf-8"))
            partial = cls(data, size, int(saved["chunk_size"]), bytes.fromhex(saved["seed"]))
            if (
                saved.get("size") == size
                and saved.get("sha256") == f.sha256
                and partial.chunk_size > 2 * _MARK_LEN
                and data.stat().st_size == size
            ):
                return partial
        except (OSError, ValueError, KeyError, TypeError):
            pass
        seed = secrets.token_hex(16)
        partial = cls(data, size, chunk_size, bytes.fromhex(seed))
        partial.discard()
        with open(data, "wb") as fh:
            fh.truncate(size)  # sparse where the file system allows it
            for i in range(partial.n_chunks):
                start, end = partial.bounds(i)
                if end - start >= 2 * _MARK_LEN:
                    fh.seek(end - _MARK_LEN)
                    fh.write(partial.marker(i))
        payload = {"size": size, "sha256": f.sha256, "chunk_size": chunk_size, "seed": seed}
        state.write_text(json.dumps(payload), encoding="utf-8")
        return partial


def _fetch_chunks(
    url: str,
    headers: dict[str, str],
    partial: _Partial,
    missing: Sequence[int],
    max_files: int,
    done: int,
    report: Callable[[int], None],
) -> None:
    """Fetch `missing` chunks with parallel range requests, each written only once complete."""
    session = get_session()

    def fetch(i: int) -> int:
        start, end = partial.bounds(i)
        with session.stream(
            "GET",
            url,
            headers={**headers, "Range": f"bytes={start}-{end - 1}"},
            timeout=constants.HF_HUB_DOWNLOAD_TIMEOUT,
            follow_redirects=True,
        ) as response:
            if response.status_code >= 400:
                response.read()
                hf_raise_for_status(response)
            content_range = response.headers.get("Content-Range", "")
            if response.status_code != 206 or not content_range.startswith(f"bytes {start}-"):
                raise DownloadError(
                    f"the server ignored a range request for {url.split('?')[0]} "
                    f"(status {response.status_code}); pull again, or set HF_ENDPOINT to a "
                    "server that supports ranges"
                )
            body = response.read()
        if len(body) != end - start:
            raise DownloadError(
                f"the server sent {len(body)} bytes for a {end - start}-byte range of "
                f"{url.split('?')[0]}; pull again to resume"
            )
        with open(partial.data, "r+b") as fh:
            fh.seek(start)
            fh.write(body)  # front to back: the end marker is overwritten last
        return end - start

    with ThreadPoolExecutor(max_workers=max(1, max_files)) as pool:
        futures = [pool.submit(fetch, i) for i in missing]
        try:
            for future in as_completed(futures):
                done += future.result()
                report(done)
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _hf_transfer(
    url: str,
    headers: dict[str, str],
    partial: _Partial,
    max_files: int,
    report: Callable[[int], None],
) -> bool:
    """Download the whole file with hf_transfer into `partial`. False when hard links are not
    available here (then the caller fetches the chunks itself, which resumes)."""
    link = partial.data.with_name(partial.data.name + ".transfer")
    link.unlink(missing_ok=True)
    try:
        os.link(partial.data, link)
    except OSError as exc:
        log.info("no hard links in %s (%s): downloading without hf_transfer", link.parent, exc)
        return False
    failures = min(HF_TRANSFER_PARALLEL_FAILURES, max_files)
    retries = HF_TRANSFER_MAX_RETRIES if failures > 0 else 0
    failures = failures if retries > 0 else 0
    done = 0

    def on_chunk(n: int) -> None:
        # hf_transfer reports `stop - start` for an inclusive range: one byte short per chunk.
        nonlocal done
        done = min(partial.size, done + n + 1)
        report(done)

    try:
        hf_transfer.download(
            url,
            str(link),
            max_files,
            partial.chunk_size,
            parallel_failures=failures,
            max_retries=retries,
            headers=headers,
            callback=on_chunk,
        )
    finally:
        link.unlink(missing_ok=True)
    return True


def _download_large(
    f: RemoteFile,
    url: str,
    headers: dict[str, str],
    tmp: Path,
    size: int,
    max_files: int,
    chunk_size: int,
    report: Callable[[int], None],
) -> None:
    partial = _Partial.open(tmp, f, size, chunk_size)
    missing = partial.missing()
    done = partial.done_bytes(missing)
    report(done)
    try:
        if len(missing) == partial.n_chunks and _hf_transfer(
            url, headers, partial, max_files, report
        ):
            missing = partial.missing()  # normally none, or a tail chunk too short to mark
            done = partial.done_bytes(missing)
        if missing:
            _fetch_chunks(url, headers, partial, missing, max_files, done, report)
    except DownloadError:
        raise
    except Exception as exc:
        if _is_enospc(exc):
            raise _disk_full(tmp.parent, exc) from exc
        kept = partial.done_bytes(partial.missing())
        reason = _URL_IN_MESSAGE.sub("", _one_line(exc)) or type(exc).__name__
        raise DownloadError(
            f"downloading {f.path} failed after {format_size(kept)} of {format_size(size)} "
            f"({reason}); run the pull again to resume",
            file=f.path,
        ) from exc
    missing = partial.missing()
    if missing:
        raise DownloadError(
            f"{f.path} is still missing {len(missing)} chunk(s) after the download; "
            "run the pull again to fetch them",
            file=f.path,
        )
    got = _hash_file(tmp, f)
    _verify_or_discard(tmp, f, got, partial.state)
    partial.state.unlink(missing_ok=True)


def _download_small(
    f: RemoteFile,
    url: str,
    headers: dict[str, str],
    tmp: Path,
    report: Callable[[int], None],
) -> None:
    hasher = _Hasher(f)
    with (
        get_session().stream(
            "GET",
            url,
            headers=headers,
            timeout=constants.HF_HUB_DOWNLOAD_TIMEOUT,
            follow_redirects=True,
        ) as response,
    ):
        if response.status_code >= 400:
            response.read()
            hf_raise_for_status(response)
        with open(tmp, "wb") as out:
            for piece in response.iter_bytes(_STREAM_PIECE):
                out.write(piece)
                hasher.update(piece)
                report(hasher.size)
    _verify_or_discard(tmp, f, hasher.digest())


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


# --- the pull ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _exclusive(dest: Path) -> Iterator[None]:
    """One pull per destination at a time (flock on the directory; not on Windows)."""
    if sys.platform == "win32":
        yield
        return
    fd = os.open(dest, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DownloadError(
                f"another pull is writing to {dest}; wait for it to finish, then run this again"
            ) from None
        yield
    finally:
        os.close(fd)


def _allocated(path: Path) -> int:
    try:
        st = path.stat()
    except OSError:
        return 0
    blocks = getattr(st, "st_blocks", None)
    return min(st.st_size, blocks * 512) if blocks is not None else st.st_size


def _check_space(dest: Path, todo: Sequence[tuple[RemoteFile, Path]]) -> None:
    needed = 0
    for f, target in todo:
        partial = target.with_name(target.name + INCOMPLETE_SUFFIX)
        needed += max(0, (f.size or 0) - _allocated(partial))
    free = shutil.disk_usage(dest).free
    if needed > free:
        raise DownloadError(
            f"not enough disk space in {dest}: the pull needs {format_size(needed)} more and "
            f"{format_size(free)} is free; free some space or point XDG_CACHE_HOME at a larger "
            "disk"
        )


def download_snapshot(
    snapshot: Snapshot,
    dest: Path | None = None,
    *,
    progress: Progress | None = None,
    max_files: int = 8,
    chunk_size: int = 10 * 1024 * 1024,
) -> Path:
    """Download `snapshot` into `dest` (default: `default_destination(snapshot)`) and return it.

    Files already there and verified are skipped; an interrupted large file resumes. Every file
    is verified before it gets its final name. `progress(path, done_bytes, total_bytes)` is
    called as bytes arrive (total 0 when unknown), including once for each skipped file.
    Raises DownloadError.
    """
    if chunk_size < 1024:
        raise ValueError(f"chunk_size must be at least 1024 bytes, not {chunk_size}")
    if max_files < 1:
        raise ValueError(f"max_files must be at least 1, not {max_files}")
    dest = dest if dest is not None else default_destination(snapshot)
    endpoint = hub_endpoint()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if _is_enospc(exc):
            raise _disk_full(dest, exc) from exc
        raise DownloadError(
            f"cannot create {dest}: {_one_line(exc)}; check XDG_CACHE_HOME"
        ) from exc
    with _exclusive(dest):
        verified = _Verified(dest)
        todo: list[tuple[RemoteFile, Path]] = []
        for f in snapshot.files:
            _check_relative(f.path, f"{snapshot.repo}@{snapshot.revision}")
            target = dest.joinpath(*PurePosixPath(f.path).parts)
            if verified.holds(f, target) or _adopt(f, target, verified):
                if progress is not None:
                    size = target.stat().st_size
                    progress(f.path, size, size)
                continue
            todo.append((f, target))
        if not todo:
            return dest
        _check_space(dest, todo)
        headers = build_hf_headers()
        for f, target in todo:
            try:
                _download_one(
                    snapshot, f, target, headers, endpoint, progress, max_files, chunk_size
                )
            except DownloadError:
                raise
            except OSError as exc:
                if _is_enospc(exc):
                    raise _disk_full(dest, exc) from exc
                if isinstance(exc, HfHubHTTPError):
                    raise _translate(
                        exc,
                        endpoint=endpoint,
                        repo=snapshot.repo,
                        revision=snapshot.revision,
                        file=f.path,
                    ) from exc
                raise DownloadError(
                    f"cannot write {target}: {_one_line(exc)}; check the permissions of {dest}",
                    file=f.path,
                ) from exc
            verified.add(f, target)
    return dest


def _adopt(f: RemoteFile, target: Path, verified: _Verified) -> bool:
    """A file under its final name but not (or no longer) on record: keep it if it checks out."""
    if not target.is_file():
        return False
    if f.size is not None and target.stat().st_size != f.size:
        target.unlink()
        return False
    if f.sha256 is None and f.git_sha1 is None:
        target.unlink()  # nothing to check it against: fetch it again
        return False
    if _mismatch(f, _hash_file(target, f)) is not None:
        target.unlink()
        return False
    verified.add(f, target)
    return True


def _download_one(
    snapshot: Snapshot,
    f: RemoteFile,
    target: Path,
    headers: dict[str, str],
    endpoint: str,
    progress: Progress | None,
    max_files: int,
    chunk_size: int,
) -> None:
    try:
        meta = get_hf_file_metadata(f.url, timeout=constants.HF_HUB_ETAG_TIMEOUT, endpoint=endpoint)
    except Exception as exc:
        raise _translate(
            exc, endpoint=endpoint, repo=snapshot.repo, revision=snapshot.revision, file=f.path
        ) from exc
    url = meta.location
    if not _same_origin(url, f.url):  # a CDN's signed URL: the token stays with the hub
        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    size = f.size if f.size is not None else meta.size
    total = size or 0

    def report(done: int) -> None:
        if progress is not None:
            progress(f.path, done, total)

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + INCOMPLETE_SUFFIX)
    if size is not None and size > LARGE_FILE_THRESHOLD:
        _download_large(f, url, headers, tmp, size, max_files, chunk_size, report)
    else:
        tmp.with_name(tmp.name + ".json").unlink(missing_ok=True)
        try:
            _download_small(f, url, headers, tmp, report)
        except httpx2.TransportError as exc:
            tmp.unlink(missing_ok=True)
            raise DownloadError(
                f"downloading {f.path} failed ({_one_line(exc) or type(exc).__name__}); "
                "check the network and run the pull again (finished files are kept)",
                file=f.path,
            ) from exc
    os.replace(tmp, target)
    report(total)


# --- progress display --------------------------------------------------------------------------


def format_progress(
    file: str, done: int, total: int, *, width: int = 24, rate: float | None = None
) -> str:
    """`model.safetensors [#########-----]  64%  1.7 GB/2.7 GB  85.0 MB/s` (total 0: unknown)."""
    if total > 0:
        frac = min(max(done / total, 0.0), 1.0)
        filled = int(frac * width)
        bar = "#" * filled + "-" * (width - filled)
        text = f"{file} [{bar}] {frac * 100:3.0f}%  {format_size(done)}/{format_size(total)}"
    else:
        text = f"{file} [{'?' * width}]  {format_size(done)}"
    if rate is not None and rate > 0:
        text += f"  {format_size(rate)}/s"
    return text


class ProgressBar:
    """A `progress` callback for download_snapshot that draws on `stream` (default stderr).

    On a terminal (and CI unset) one line per file is redrawn in place, with the rate; otherwise
    a plain line is printed each time a file crosses another `step` percent, so logs stay short.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        interactive: bool | None = None,
        step: int = 10,
        width: int = 24,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if interactive is None:
            isatty = getattr(self.stream, "isatty", None)
            interactive = bool(isatty and isatty()) and not os.environ.get("CI")
        self.interactive = interactive
        self.step = max(1, min(step, 100))
        self.width = width
        self._current: str | None = None
        self._line_len = 0
        self._started: dict[str, tuple[float, int]] = {}
        self._printed: dict[str, int] = {}
        self._finished: set[str] = set()

    def __call__(self, file: str, done: int, total: int) -> None:
        if self.interactive:
            self._draw(file, done, total)
        else:
            self._log(file, done, total)

    def _draw(self, file: str, done: int, total: int) -> None:
        complete = total > 0 and done >= total
        if complete and file in self._finished:
            return  # reported complete again (after its check): its line is already drawn
        now = time.monotonic()
        start = self._started.setdefault(file, (now, done))
        elapsed = now - start[0]
        rate = (done - start[1]) / elapsed if elapsed > 0.5 else None
        if self._current is not None and self._current != file:
            self.stream.write("\n")
            self._line_len = 0
        self._current = file
        line = format_progress(file, done, total, width=self.width, rate=rate)
        self.stream.write("\r" + line + " " * max(0, self._line_len - len(line)))
        self._line_len = len(line)
        if complete:
            self._finished.add(file)
            self.stream.write("\n")
            self._current = None
            self._line_len = 0
        self.stream.flush()

    def _log(self, file: str, done: int, total: int) -> None:
        if total <= 0:
            return
        reached = 100 if done >= total else done * 100 // total // self.step * self.step
        if reached <= self._printed.get(file, -1):
            return
        self._printed[file] = reached
        self.stream.write(format_progress(file, done, total, width=self.width) + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End a line left open (an interrupted download)."""
        if self.interactive and self._current is not None:
            self.stream.write("\n")
            self.stream.flush()
            self._current = None
            self._line_len = 0
