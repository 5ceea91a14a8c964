"""A fake Hugging Face hub (and CDN) on 127.0.0.1, for pulling models without the internet.

It answers what huggingface_hub 2.x and hf_transfer ask, as huggingface.co does:

- `GET /api/models/{repo}` and `/api/models/{repo}/revision/{rev}` (`HfApi.model_info`; with
  `?blobs=True`, i.e. files_metadata, the siblings carry size, blobId and lfs.sha256/size);
- `HEAD|GET /{repo}/resolve/{rev}/{path}`: for a regular (git) file a same-host 307 to
  `/api/resolve-cache/models/{repo}/{commit}/{path}`, which serves it with ETag (the git blob
  sha1), X-Repo-Commit and Content-Length; for an LFS file a 302 to the CDN with X-Repo-Commit,
  X-Linked-Size and X-Linked-Etag (its sha256), like the hub's redirect to its signed URLs;
- the CDN is a second server (another port, so another origin: huggingface_hub does not follow
  the redirect on HEAD, and the token must not be sent there): `GET /lfs/{sha256}?sig=...`;
- `Range: bytes=a-b` (also `a-` and `-n`) answered 206 with Content-Range, 416 past the end;
  hf_transfer starts every download with `bytes=0-0` to learn the size;
- errors the way the hub says them, with `X-Error-Code` (RepoNotFound, RevisionNotFound,
  EntryNotFound, GatedRepo) and `X-Error-Message`, which huggingface_hub turns into its typed
  errors: 404 for an unknown repo, 401 for a gated repo without a token (403 with a token that
  is not granted), 401 "Invalid credentials in Authorization header" for an unknown token.

It runs in a child process, not a thread: hf_transfer.download holds the GIL for the whole
download, so a server thread in the test process would never answer it. The test process drives
it over a pipe: `stats()` (every request, and body bytes served per file), `cut_after()` (drop
connections mid-body), `corrupt()` (serve a file with a byte flipped), `reset()`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import re
import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

DEFAULT_LFS_SUFFIXES = (".safetensors", ".bin", ".model", ".gguf", ".msgpack", ".h5", ".pt")


def blob(size: int, seed: int = 0) -> bytes:
    """`size` deterministic pseudo-random bytes (a weights file that does not compress)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(b"%d:%d" % (seed, counter)).digest() * 64  # 2 KiB per round
        counter += 1
    return bytes(out[:size])


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FakeRepo:
    repo_id: str
    files: Mapping[str, bytes]
    lfs: frozenset[str] | None = None  # paths stored in LFS; None: by extension
    gated: bool = False  # resolve needs a valid token (the metadata stays public, as on the hub)
    branches: tuple[str, ...] = ("main",)
    commit: str = field(default="")

    def __post_init__(self) -> None:
        if not self.commit:
            h = hashlib.sha1(self.repo_id.encode())
            for path in sorted(self.files):
                h.update(path.encode() + b"\0" + hashlib.sha256(self.files[path]).digest())
            self.commit = h.hexdigest()

    def is_lfs(self, path: str) -> bool:
        if self.lfs is not None:
            return path in self.lfs
        return path.endswith(DEFAULT_LFS_SUFFIXES)

    def resolve(self, revision: str) -> str | None:
        return self.commit if revision in (*self.branches, self.commit) else None

    def sibling(self, path: str) -> dict[str, Any]:
        data = self.files[path]
        if not self.is_lfs(path):
            return {"rfilename": path, "size": len(data), "blobId": git_blob_sha1(data)}
        pointer = (
            "version https://git-lfs.github.com/spec/v1\n"
            f"oid sha256:{hashlib.sha256(data).hexdigest()}\nsize {len(data)}\n"
        ).encode()
        return {
            "rfilename": path,
            "size": len(data),
            "blobId": git_blob_sha1(pointer),
            "lfs": {
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "pointerSize": len(pointer),
            },
        }


class Request(NamedTuple):
    server: str  # "hub" or "cdn"
    method: str
    path: str  # without the query
    range: str | None
    authorization: str | None
    status: int


# --- the server (child process) ------------------------------------------------------------


class _State:
    def __init__(self, repos: Iterable[FakeRepo], tokens: Iterable[str]) -> None:
        self.repos = {r.repo_id: r for r in repos}
        self.tokens = set(tokens)
        self.lock = threading.Lock()
        self.requests: list[Request] = []
        self.bytes: dict[str, int] = {}
        self.cuts: dict[str, list[int]] = {}  # key -> [bytes left before the cut, cuts left]
        self.corrupt: set[str] = set()
        self.by_sha: dict[str, tuple[FakeRepo, str]] = {}
        for repo in self.repos.values():
            for path, data in repo.files.items():
                self.by_sha.setdefault(hashlib.sha256(data).hexdigest(), (repo, path))
        self.cdn_endpoint = ""

    def content(self, repo: FakeRepo, path: str) -> bytes:
        data = repo.files[path]
        if f"{repo.repo_id}/{path}" in self.corrupt and data:
            mid = len(data) // 2
            data = data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1 :]
        return data

    def take(self, key: str, n: int) -> tuple[int, bool]:
        """How many of the next `n` body bytes of `key` may go out, and whether to cut after."""
        with self.lock:
            rule = self.cuts.get(key)
            allowed, cut = n, False
            if rule is not None:
                allowed = min(n, rule[0])
                rule[0] -= allowed
                if rule[0] == 0:
                    cut = True
                    rule[1] -= 1
                    if rule[1] <= 0:
                        del self.cuts[key]
            self.bytes[key] = self.bytes.get(key, 0) + allowed
            return allowed, cut


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as hf_transfer's and httpx's pools expect
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def state(self) -> _State:
        return self.server.state

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def _dispatch(self, head: bool) -> None:
        self._status = 0
        try:
            if self.server.role == "cdn":
                self._cdn(head)
            else:
                self._hub(head)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with self.state.lock:
                self.state.requests.append(
                    Request(
                        self.server.role,
                        self.command,
                        urlsplit(self.path).path,
                        self.headers.get("Range"),
                        self.headers.get("Authorization"),
                        self._status,
                    )
                )

    # -- responses --

    def _reply(
        self,
        status: int,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        *,
        head: bool = False,
    ) -> None:
        self._status = status
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def _error(self, status: int, code: str | None, message: str, *, head: bool) -> None:
        headers = {"X-Error-Message": message, "Content-Type": "application/json"}
        if code:
            headers["X-Error-Code"] = code
        self._reply(status, headers, json.dumps({"error": message}).encode(), head=head)

    def _serve_file(self, key: str, data: bytes, headers: dict[str, str], head: bool) -> None:
        size = len(data)
        start, end = 0, size - 1
        status = 200
        rng = self.headers.get("Range")
        if rng:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if not m or (not m.group(1) and not m.group(2)):
                self._reply(416, {"Content-Range": f"bytes */{size}"}, head=head)
                return
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:
                start, end = max(0, size - int(m.group(2))), size - 1
            if start >= size or start > end:
                self._reply(416, {"Content-Range": f"bytes */{size}"}, head=head)
                return
            status = 206
            headers = {**headers, "Content-Range": f"bytes {start}-{end}/{size}"}
        body = data[start : end + 1]
        self._status = status
        self.send_response(status)
        for k, v in {**headers, "Accept-Ranges": "bytes"}.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head:
            return
        view = memoryview(body)
        pos = 0
        while pos < len(view):
            allowed, cut = self.state.take(key, min(64 * 1024, len(view) - pos))
            if allowed:
                self.wfile.write(view[pos : pos + allowed])
                pos += allowed
            if cut:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return

    # -- auth --

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization")
        if auth and auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return None

    def _bad_token(self, head: bool) -> bool:
        token = self._token()
        if token is not None and token not in self.state.tokens:
            self._error(401, None, "Invalid credentials in Authorization header", head=head)
            return True
        return False

    def _gate(self, repo: FakeRepo, head: bool) -> bool:
        """False (and an error sent) when `repo` is gated and the caller may not download."""
        if not repo.gated:
            return True
        token = self._token()
        if token is None:
            self._error(
                401,
                "GatedRepo",
                f"Access to model {repo.repo_id} is restricted. You must have access to it and "
                "be authenticated to access it. Please log in.",
                head=head,
            )
            return False
        if token not in self.state.tokens:
            self._error(
                403,
                "GatedRepo",
                f"Access to model {repo.repo_id} is restricted and you are not in the authorized "
                "list.",
                head=head,
            )
            return False
        return True

    # -- routes --

    def _hub(self, head: bool) -> None:
        split = urlsplit(self.path)
        path = split.path
        if self._bad_token(head):
            return
        if m := re.fullmatch(r"/api/models/(?P<repo>.+?)(?:/revision/(?P<rev>[^/]+))?", path):
            self._model_info(m["repo"], unquote(m["rev"] or "main"), parse_qs(split.query), head)
        elif m := re.fullmatch(r"/(?P<repo>.+?)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", path):
            self._resolve(m["repo"], unquote(m["rev"]), unquote(m["file"]), head)
        elif m := re.fullmatch(
            r"/api/resolve-cache/models/(?P<repo>.+?)/(?P<commit>[0-9a-f]{40})/(?P<file>.+)", path
        ):
            self._resolve_cache(m["repo"], m["commit"], unquote(m["file"]), head)
        else:
            self._error(404, None, "Not Found", head=head)

    def _find(self, repo_id: str, revision: str, head: bool) -> tuple[FakeRepo, str] | None:
        repo = self.state.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found", head=head)
            return None
        commit = repo.resolve(revision)
        if commit is None:
            self._error(404, "RevisionNotFound", "Invalid rev id: " + revision, head=head)
            return None
        return repo, commit

    def _model_info(
        self, repo_id: str, revision: str, query: dict[str, list[str]], head: bool
    ) -> None:
        found = self._find(repo_id, revision, head)
        if found is None:
            return
        repo, commit = found
        blobs = query.get("blobs", ["false"])[0].lower() == "true"
        body = {
            "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit,
            "lastModified": "2025-01-01T00:00:00.000Z",
            "private": False,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": ["transformers", "safetensors"],
            "library_name": "transformers",
            "siblings": [
                repo.sibling(p) if blobs else {"rfilename": p} for p in sorted(repo.files)
            ],
        }
        self._reply(200, {"Content-Type": "application/json"}, json.dumps(body).encode(), head=head)

    def _resolve(self, repo_id: str, revision: str, path: str, head: bool) -> None:
        found = self._find(repo_id, revision, head)
        if found is None:
            return
        repo, commit = found
        if not self._gate(repo, head):
            return
        if path not in repo.files:
            self._error(404, "EntryNotFound", f"{path} does not exist on {revision}", head=head)
            return
        data = repo.files[path]
        if repo.is_lfs(path):
            sha = hashlib.sha256(data).hexdigest()
            location = f"{self.state.cdn_endpoint}/lfs/{sha}?sig={commit[:12]}"
            headers = {
                "Location": location,
                "X-Repo-Commit": commit,
                "X-Linked-Size": str(len(data)),
                "X-Linked-Etag": f'"{sha}"',
                "ETag": f'"{repo.sibling(path)["blobId"]}"',
            }
            self._reply(302, headers, head=head)
        else:
            location = f"/api/resolve-cache/models/{repo.repo_id}/{commit}/{quote(path)}"
            self._reply(307, {"Location": location, "X-Repo-Commit": commit}, head=head)

    def _resolve_cache(self, repo_id: str, commit: str, path: str, head: bool) -> None:
        found = self._find(repo_id, commit, head)
        if found is None:
            return
        repo, _ = found
        if not self._gate(repo, head):
            return
        if path not in repo.files:
            self._error(404, "EntryNotFound", f"{path} does not exist", head=head)
            return
        headers = {
            "ETag": f'"{git_blob_sha1(repo.files[path])}"',
            "X-Repo-Commit": commit,
            "Content-Type": "application/octet-stream",
        }
        self._serve_file(f"{repo.repo_id}/{path}", self.state.content(repo, path), headers, head)

    def _cdn(self, head: bool) -> None:
        m = re.fullmatch(r"/lfs/(?P<sha>[0-9a-f]{64})", urlsplit(self.path).path)
        found = self.state.by_sha.get(m["sha"]) if m else None
        if found is None:
            self._reply(404, {}, b"NoSuchKey", head=head)
            return
        repo, path = found
        headers = {"ETag": f'"{m["sha"]}"' if m else "", "Content-Type": "binary/octet-stream"}
        self._serve_file(f"{repo.repo_id}/{path}", self.state.content(repo, path), headers, head)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, role: str, state: _State) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.role = role
        self.state = state


def _serve(repos: list[FakeRepo], tokens: list[str], conn: Connection) -> None:
    state = _State(repos, tokens)
    hub, cdn = _Server("hub", state), _Server("cdn", state)
    state.cdn_endpoint = f"http://127.0.0.1:{cdn.server_port}"
    for server in (hub, cdn):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    conn.send((hub.server_port, cdn.server_port))
    while True:
        try:
            command, *args = conn.recv()
        except (EOFError, OSError):
            break
        with state.lock:
            if command == "stats":
                conn.send((list(state.requests), dict(state.bytes)))
            elif command == "reset":
                state.requests.clear()
                state.bytes.clear()
                state.cuts.clear()
                state.corrupt.clear()
                conn.send(None)
            elif command == "clear_stats":
                state.requests.clear()
                state.bytes.clear()
                conn.send(None)
            elif command == "cut":
                key, nbytes, times = args
                state.cuts[key] = [nbytes, times]
                conn.send(None)
            elif command == "corrupt":
                key, on = args
                (state.corrupt.add if on else state.corrupt.discard)(key)
                conn.send(None)
            elif command == "stop":
                conn.send(None)
                break
    for server in (hub, cdn):
        server.shutdown()
        server.server_close()


# --- the test side -------------------------------------------------------------------------


class FakeHub:
    """`with FakeHub([FakeRepo(...)], tokens=["hf_x"]) as hub:` then HF_ENDPOINT=hub.endpoint."""

    def __init__(self, repos: Iterable[FakeRepo], tokens: Iterable[str] = ()) -> None:
        self.repos = list(repos)
        self.tokens = list(tokens)
        self.endpoint = ""
        self.cdn_endpoint = ""
        self._conn: Connection | None = None
        self._process: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> FakeHub:
        ctx = multiprocessing.get_context("spawn")  # no fork of a threaded pytest process
        parent, child = ctx.Pipe()
        self._process = ctx.Process(
            target=_serve, args=(self.repos, self.tokens, child), daemon=True
        )
        self._process.start()
        child.close()
        if not parent.poll(60):
            self._process.kill()
            raise RuntimeError("the fake hub did not start")
        hub_port, cdn_port = parent.recv()
        self._conn = parent
        self.endpoint = f"http://127.0.0.1:{hub_port}"
        self.cdn_endpoint = f"http://127.0.0.1:{cdn_port}"
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError, EOFError):
            self._call("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(10)

    def _call(self, *command: Any) -> Any:
        assert self._conn is not None, "use FakeHub as a context manager"
        with self._lock:
            self._conn.send(command)
            return self._conn.recv()

    def requests(self, server: str | None = None) -> list[Request]:
        reqs: list[Request] = self._call("stats")[0]
        return [r for r in reqs if server is None or r.server == server]

    def bytes_served(self, repo: str, path: str | None = None) -> int:
        served: dict[str, int] = self._call("stats")[1]
        if path is not None:
            return served.get(f"{repo}/{path}", 0)
        return sum(n for k, n in served.items() if k.startswith(repo + "/"))

    def clear_stats(self) -> None:
        self._call("clear_stats")

    def reset(self) -> None:
        """Forget requests and counters, heal cuts and corruption."""
        self._call("reset")

    def cut_after(self, repo: str, path: str, nbytes: int, times: int = 1) -> None:
        """Once `nbytes` more body bytes of the file have gone out (over all connections), drop
        the connection sending it; the next `times - 1` responses for it are dropped at once."""
        self._call("cut", f"{repo}/{path}", nbytes, times)

    def corrupt(self, repo: str, path: str, on: bool = True) -> None:
        """Serve the file with one byte flipped (same size; the listing keeps the real hashes)."""
        self._call("corrupt", f"{repo}/{path}", on)
