"""`oci-lsp model pull`, download half: against a fake hub on 127.0.0.1 (tests/hub_server.py).

Pointing huggingface_hub at the fake hub: huggingface_hub reads HF_ENDPOINT once, at import,
into `huggingface_hub.constants.ENDPOINT` (and derives HUGGINGFACE_CO_URL_TEMPLATE and the set of
hub origins from it), so setting the variable in a test would be too late for it. The download
module therefore reads HF_ENDPOINT itself on every call and hands it explicitly to every
huggingface_hub call (`HfApi(endpoint=)`, `hf_hub_url(endpoint=)`, `get_hf_file_metadata(endpoint=)`);
the tests just `monkeypatch.setenv("HF_ENDPOINT", ...)`, the way a user sets it. That is robust to
which constants huggingface_hub derives, and it tests what users do.

The other import-time constants that matter are patched on `huggingface_hub.constants`, which its
functions read at call time: the token file path (so a developer's own token never reaches the
fake hub), HF_HUB_OFFLINE, and telemetry (when on, the first request fetches an agent registry
from the real hub's ENDPOINT, which is unreachable here).
"""

from __future__ import annotations

import hashlib
import io
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import constants

from oci_lsp.engine import download, paths
from oci_lsp.engine.download import (
    DownloadError,
    ProgressBar,
    RemoteFile,
    Snapshot,
    default_destination,
    download_snapshot,
    format_progress,
    resolve_snapshot,
    select_files,
)
from tests.hub_server import FakeHub, FakeRepo, blob

TOKEN = "hf_fake_token_for_tests"
CHUNK = 256 * 1024
THRESHOLD = 1024 * 1024  # "large" from 1 MiB on, so a few MB exercise hf_transfer
BIG = "model-00001-of-00002.safetensors"
BIG_SIZE = 3 * 1024 * 1024 + 12_345  # 13 chunks, the last one short

CODER = FakeRepo(
    "acme/tiny-coder",
    {
        "config.json": b'{"model_type": "llama", "hidden_size": 64}\n',
        "generation_config.json": b'{"bos_token_id": 1}\n',
        "tokenizer.json": b'{"version": "1.0", "model": {"type": "BPE"}}\n' * 50,
        "tokenizer_config.json": b'{"chat_template": "{{ messages }}"}\n',
        "special_tokens_map.json": b'{"bos_token": "<s>"}\n',
        "tokenizer.model": blob(20_000, seed=1),
        BIG: blob(BIG_SIZE, seed=2),
        "model-00002-of-00002.safetensors": blob(300_000, seed=3),
        "model.safetensors.index.json": b'{"weight_map": {}}\n',
        "pytorch_model.bin": blob(1000, seed=4),  # safetensors exist: never pulled
        "onnx/model.safetensors": blob(1000, seed=5),  # a subfolder variant: never pulled
        "README.md": b"# tiny coder\n",
        ".gitattributes": b"*.safetensors filter=lfs\n",
    },
)
OLD = FakeRepo(
    "acme/old-coder",
    {
        "config.json": b"{}",
        "tokenizer.json": b"{}",
        "pytorch_model-00001-of-00002.bin": blob(1000, seed=6),
        "pytorch_model-00002-of-00002.bin": blob(1000, seed=7),
        "pytorch_model.bin.index.json": b"{}",
        "flax_model.msgpack": blob(1000, seed=8),
        "README.md": b"old",
    },
)
GATED = FakeRepo(
    "acme/gated-coder",
    {"config.json": b"{}", "model.safetensors": blob(50_000, seed=9)},
    gated=True,
)
PULLED = {
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    BIG,
    "model-00002-of-00002.safetensors",
    "model.safetensors.index.json",
}


@pytest.fixture(scope="module")
def hub() -> Iterator[FakeHub]:
    with FakeHub([CODER, OLD, GATED], tokens=[TOKEN]) as server:
        yield server


@pytest.fixture(autouse=True)
def isolated(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    hub.reset()
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "CI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf-home" / "token"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", False)
    monkeypatch.setattr(download, "LARGE_FILE_THRESHOLD", THRESHOLD)
    yield


def pull(repo: str = CODER.repo_id, **kwargs: object) -> Path:
    snapshot = resolve_snapshot(repo)
    return download_snapshot(snapshot, chunk_size=CHUNK, **kwargs)  # type: ignore[arg-type]


def tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def file_requests(hub: FakeHub) -> list[str]:
    """Requests for file contents or metadata (model_info is not one)."""
    return [r.path for r in hub.requests() if not r.path.startswith("/api/models/")]


# --- the happy path ------------------------------------------------------------------------


def test_full_pull_is_byte_identical_with_final_names_only(hub: FakeHub, tmp_path: Path) -> None:
    seen: dict[str, tuple[int, int]] = {}
    snapshot = resolve_snapshot(CODER.repo_id)
    assert snapshot.revision == CODER.commit
    assert {f.path for f in snapshot.files} == PULLED

    dest = download_snapshot(
        snapshot,
        chunk_size=CHUNK,
        max_files=4,
        progress=lambda f, done, total: seen.__setitem__(f, (done, total)),
    )

    assert dest == tmp_path / "cache/oci-lsp/downloads/acme--tiny-coder" / CODER.commit
    assert dest == default_destination(snapshot)
    assert tree(dest) == PULLED | {".verified.json"}  # no .incomplete, .transfer, state files
    for path in PULLED:
        assert (dest / path).read_bytes() == CODER.files[path], path
        assert seen[path] == (len(CODER.files[path]),) * 2

    cdn = hub.requests("cdn")
    big = [r for r in cdn if r.path.endswith(hashlib.sha256(CODER.files[BIG]).hexdigest())]
    ranges = sorted(r.range for r in big if r.range)
    assert "bytes=0-0" in ranges  # hf_transfer's opening probe for the size...
    assert len(ranges) == 1 + 13  # ...then one range request per chunk
    assert all(r.status == 206 for r in big)
    # Every resolve URL is pinned to the commit; the CDN never sees an Authorization header.
    assert all(CODER.commit in r.path for r in hub.requests("hub") if "/resolve" in r.path)
    assert all(r.authorization is None for r in cdn)


def test_patterns_prefer_safetensors_and_fall_back_to_bin() -> None:
    coder = {f.path for f in resolve_snapshot(CODER.repo_id).files}
    assert "pytorch_model.bin" not in coder
    assert "onnx/model.safetensors" not in coder and "README.md" not in coder

    old = resolve_snapshot(OLD.repo_id)
    assert {f.path for f in old.files} == {
        "config.json",
        "tokenizer.json",
        "pytorch_model-00001-of-00002.bin",
        "pytorch_model-00002-of-00002.bin",
        "pytorch_model.bin.index.json",
    }
    by_path = {f.path: f for f in old.files}
    bin_file = by_path["pytorch_model-00001-of-00002.bin"]
    assert bin_file.sha256 == hashlib.sha256(OLD.files[bin_file.path]).hexdigest()
    assert bin_file.size == 1000 and bin_file.git_sha1 is None
    assert by_path["config.json"].sha256 is None and by_path["config.json"].git_sha1

    assert resolve_snapshot(OLD.repo_id, patterns=["*.json"]).files[0].path == "config.json"
    assert select_files(["a/config.json", "config.json"], ["config.json"]) == ["config.json"]
    assert select_files(["sub/x.safetensors"], ["sub/*.safetensors"]) == ["sub/x.safetensors"]


def test_second_pull_downloads_nothing_and_a_tampered_file_is_fetched_again(
    hub: FakeHub,
) -> None:
    dest = pull()
    hub.clear_stats()
    assert pull() == dest
    assert file_requests(hub) == []
    assert hub.bytes_served(CODER.repo_id) == 0

    (dest / "tokenizer.json").write_bytes(b"edited by hand")
    pull()
    assert (dest / "tokenizer.json").read_bytes() == CODER.files["tokenizer.json"]
    assert hub.bytes_served(CODER.repo_id) == len(CODER.files["tokenizer.json"])


def test_a_verified_file_without_a_record_is_adopted_not_downloaded(hub: FakeHub) -> None:
    dest = pull()
    (dest / ".verified.json").unlink()
    hub.clear_stats()
    pull()
    assert hub.bytes_served(CODER.repo_id) == 0


# --- interrupted and bad downloads -----------------------------------------------------------


def test_an_interrupted_large_file_resumes_instead_of_starting_over(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No retries inside hf_transfer, so the single cut fails the first pull.
    monkeypatch.setattr(download, "HF_TRANSFER_MAX_RETRIES", 0)
    hub.cut_after(CODER.repo_id, BIG, nbytes=BIG_SIZE * 6 // 10)
    snapshot = resolve_snapshot(CODER.repo_id)
    dest = default_destination(snapshot)

    with pytest.raises(DownloadError, match=f"{BIG}.*run the pull again to resume") as caught:
        download_snapshot(snapshot, chunk_size=CHUNK, max_files=2)
    assert caught.value.file == BIG
    assert not (dest / BIG).exists()  # nothing that looks complete
    assert (dest / (BIG + ".incomplete")).exists()
    assert not (dest / (BIG + ".incomplete.transfer")).exists()

    hub.clear_stats()
    download_snapshot(snapshot, chunk_size=CHUNK, max_files=2)
    assert (dest / BIG).read_bytes() == CODER.files[BIG]
    resumed = hub.bytes_served(CODER.repo_id, BIG)
    assert 0 < resumed < BIG_SIZE
    assert tree(dest) == PULLED | {".verified.json"}


def test_ctrl_c_during_hf_transfer_keeps_the_finished_chunks(hub: FakeHub) -> None:
    # hf_transfer deletes its file on any error, KeyboardInterrupt included (the callback is
    # where Python gets to raise it); the hard link keeps the chunks it had finished.
    def interrupt(path: str, done: int, total: int) -> None:
        if path == BIG and done >= total // 2:
            raise KeyboardInterrupt

    snapshot = resolve_snapshot(CODER.repo_id)
    with pytest.raises(KeyboardInterrupt):
        download_snapshot(snapshot, chunk_size=CHUNK, max_files=2, progress=interrupt)
    dest = default_destination(snapshot)
    assert not (dest / BIG).exists()

    hub.clear_stats()
    download_snapshot(snapshot, chunk_size=CHUNK, max_files=2)
    assert (dest / BIG).read_bytes() == CODER.files[BIG]
    assert 0 < hub.bytes_served(CODER.repo_id, BIG) < BIG_SIZE


def test_hf_transfer_retries_heal_a_single_cut_within_the_pull(hub: FakeHub) -> None:
    hub.cut_after(CODER.repo_id, BIG, nbytes=BIG_SIZE // 2)
    dest = pull()
    assert (dest / BIG).read_bytes() == CODER.files[BIG]


def test_without_hard_links_the_range_fetcher_downloads_and_resumes(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(download.os, "link", no_links)
    hub.cut_after(CODER.repo_id, BIG, nbytes=BIG_SIZE // 2)
    snapshot = resolve_snapshot(CODER.repo_id)
    with pytest.raises(DownloadError, match=rf"{BIG}.*run the pull again to resume"):
        download_snapshot(snapshot, chunk_size=CHUNK, max_files=2)
    hub.clear_stats()
    dest = download_snapshot(snapshot, chunk_size=CHUNK, max_files=2)
    assert (dest / BIG).read_bytes() == CODER.files[BIG]
    assert 0 < hub.bytes_served(CODER.repo_id, BIG) < BIG_SIZE
    assert "bytes=0-0" not in {r.range for r in hub.requests("cdn")}  # not hf_transfer


def test_an_interrupted_small_file_leaves_no_final_name(hub: FakeHub) -> None:
    hub.cut_after(CODER.repo_id, "tokenizer.json", nbytes=100, times=50)
    with pytest.raises(DownloadError, match=r"tokenizer.json.*run the pull again"):
        pull()
    dest = default_destination(resolve_snapshot(CODER.repo_id))
    assert not (dest / "tokenizer.json").exists()
    assert not (dest / "tokenizer.json.incomplete").exists()


@pytest.mark.parametrize(
    ("path", "hash_name"),
    [(BIG, "sha256"), ("tokenizer.model", "sha256"), ("tokenizer.json", "git sha1")],
    ids=["large-lfs", "small-lfs", "git-file"],
)
def test_a_corrupted_file_is_deleted_and_named(hub: FakeHub, path: str, hash_name: str) -> None:
    hub.corrupt(CODER.repo_id, path)
    with pytest.raises(DownloadError) as caught:
        pull()
    message = str(caught.value)
    assert message.startswith(f"{path}: checksum mismatch: expected {hash_name} ")
    assert ", got " in message and "next pull downloads it again" in message
    assert "\n" not in message
    dest = default_destination(resolve_snapshot(CODER.repo_id))
    assert not (dest / path).exists()
    assert not [p for p in tree(dest) if p.startswith(path)]  # no temp file either

    hub.corrupt(CODER.repo_id, path, on=False)
    pull()
    assert (dest / path).read_bytes() == CODER.files[path]


# --- access and reachability -----------------------------------------------------------------


def test_gated_repo_without_a_token_says_how_to_get_access(hub: FakeHub) -> None:
    with pytest.raises(DownloadError) as caught:
        pull(GATED.repo_id)
    message = str(caught.value)
    assert "gated" in message and "(401)" in message
    assert "accept the license" in message and f"{hub.endpoint}/{GATED.repo_id}" in message
    assert "`hf auth login`" in message and "HF_TOKEN" in message
    dest = default_destination(resolve_snapshot(GATED.repo_id))
    assert not (dest / "model.safetensors").exists()


def test_gated_repo_with_hf_token(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    dest = pull(GATED.repo_id)
    assert (dest / "model.safetensors").read_bytes() == GATED.files["model.safetensors"]
    resolves = [r for r in hub.requests("hub") if "resolve" in r.path]
    assert resolves and all(r.authorization == f"Bearer {TOKEN}" for r in resolves)
    assert all(r.authorization is None for r in hub.requests("cdn"))


def test_gated_repo_with_the_token_file(hub: FakeHub) -> None:
    token_file = Path(constants.HF_TOKEN_PATH)
    token_file.parent.mkdir(parents=True)
    token_file.write_text(TOKEN)
    dest = pull(GATED.repo_id)
    assert (dest / "model.safetensors").read_bytes() == GATED.files["model.safetensors"]


def test_a_rejected_token_says_to_log_in_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_revoked")
    with pytest.raises(DownloadError, match=r"refused access.*401.*`hf auth login`.*HF_TOKEN"):
        resolve_snapshot(CODER.repo_id)


def test_unreachable_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    with pytest.raises(DownloadError) as caught:
        resolve_snapshot(CODER.repo_id)
    message = str(caught.value)
    assert message.startswith(f"cannot reach the Hugging Face hub at {endpoint}: ")
    assert message.endswith("; check the network or HF_ENDPOINT")


def test_unknown_repo_and_revision() -> None:
    with pytest.raises(DownloadError, match=r"repository acme/nope not found on http://127.0.0.1"):
        resolve_snapshot("acme/nope")
    with pytest.raises(DownloadError, match="revision 'v9' not found in acme/tiny-coder"):
        resolve_snapshot(CODER.repo_id, revision="v9")
    assert resolve_snapshot(CODER.repo_id, revision=CODER.commit).revision == CODER.commit


def test_offline_mode_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DownloadError, match=r"HF_HUB_OFFLINE is set.*unset HF_HUB_OFFLINE"):
        resolve_snapshot(CODER.repo_id)


def test_not_enough_disk_space_fails_before_downloading(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(download.shutil, "disk_usage", lambda _: type("U", (), {"free": 1000}))
    with pytest.raises(DownloadError, match=r"not enough disk space .* XDG_CACHE_HOME"):
        pull()
    assert file_requests(hub) == []


def test_enospc_while_writing_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(download, "_download_small", full)
    with pytest.raises(DownloadError, match=r"no space left on the disk holding .*XDG_CACHE_HOME"):
        pull()


# --- paths and progress ----------------------------------------------------------------------


def test_cache_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert paths.cache_dir() == tmp_path / "cache" / "oci-lsp"
    assert paths.models_dir() == tmp_path / "cache" / "oci-lsp" / "models"
    assert paths.downloads_dir() == tmp_path / "cache" / "oci-lsp" / "downloads"
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert paths.cache_dir() == tmp_path / "home" / ".cache" / "oci-lsp"
    snap = Snapshot("org/name", "abc123", [RemoteFile("a", 1, None, "u")])
    assert default_destination(snap) == tmp_path / "home/.cache/oci-lsp/downloads/org--name/abc123"


def test_format_progress() -> None:
    line = format_progress("model.safetensors", 1_500_000_000, 3_000_000_000, width=10)
    assert line == "model.safetensors [#####-----]  50%  1.5 GB/3.0 GB"
    assert format_progress("x", 10, 0, width=3) == "x [???]  10 B"
    assert format_progress("x", 5, 10, width=2, rate=2_000_000).endswith("  2.0 MB/s")


def test_progress_bar_logs_steps_when_not_a_terminal() -> None:
    out = io.StringIO()
    bar = ProgressBar(out, step=25, width=4)
    for done in range(0, 101, 5):
        bar("f", done, 100)
    assert out.getvalue().splitlines() == [
        "f [----]   0%  0 B/100 B",
        "f [#---]  25%  25 B/100 B",
        "f [##--]  50%  50 B/100 B",
        "f [###-]  75%  75 B/100 B",
        "f [####] 100%  100 B/100 B",
    ]


def test_progress_bar_is_plain_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert ProgressBar(Terminal()).interactive
    monkeypatch.setenv("CI", "true")
    assert not ProgressBar(Terminal()).interactive


def test_progress_bar_redraws_one_line_on_a_terminal() -> None:
    out = io.StringIO()
    bar = ProgressBar(out, interactive=True, width=4)
    bar("a", 1, 2)
    bar("a", 2, 2)
    bar("b", 1, 4)
    bar.close()
    text = out.getvalue()
    assert text.count("\n") == 2 and text.count("\r") == 3
    assert text.endswith("b [#---]  25%  1 B/4 B\n")


def test_progress_bar_draws_a_finished_file_once() -> None:
    """A file is reported complete again after its check: no second line for it."""
    out = io.StringIO()
    bar = ProgressBar(out, interactive=True, width=4)
    bar("a", 2, 2)
    bar("a", 2, 2)
    bar("b", 4, 4)
    assert out.getvalue().count("a [####] 100%") == 1
    assert out.getvalue().count("\n") == 2
