"""`oci-lsp model ...` as a user runs it: a subprocess with its own cache directory."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hf_checkpoints import build_llama_checkpoint


def oci(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "oci_lsp", "model", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_llama_checkpoint(tmp_path_factory.mktemp("ckpt") / "OpenCodeInterpreter-DS-1.3B")


def test_list_shows_the_catalog(tmp_path: Path) -> None:
    out = oci("list", cache=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"models directory: {tmp_path / 'oci-lsp' / 'models'}"
    ids = [line.split()[0] for line in lines[2:]]
    assert ids == [
        "ds-1.3b", "ds-6.7b", "ds-33b", "cl-7b", "cl-13b", "cl-34b", "cl-70b", "sc2-3b", "sc2-7b", "sc2-15b",
    ]  # fmt: skip
    assert "m-a-p/OpenCodeInterpreter-DS-6.7B" in out.stdout
    listed = oci("list", "--json", cache=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)  # what the editor clients' model pickers read
    assert [row["id"] for row in rows] == ids
    assert rows[1] == {
        "id": "ds-6.7b",
        "params": "6.7B",
        "memoryGiB": {"int8": 7.5, "float16": 15.1},
        "repo": "m-a-p/OpenCodeInterpreter-DS-6.7B",
        "installed": False,
    }


def test_convert_list_verify_rm(tmp_path: Path, checkpoint: Path) -> None:
    target = tmp_path / "oci-lsp" / "models" / "ds-1.3b"
    out = oci(
        "convert", str(checkpoint), "-o", str(target), "--quantization", "int8", cache=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert "logits parity passed" in out.stdout
    listed = oci("list", cache=tmp_path).stdout
    row = next(line for line in listed.splitlines() if line.startswith("ds-1.3b"))
    assert "int8" in row and " ok" in row
    installed = json.loads(oci("list", "--json", cache=tmp_path).stdout)[0]
    assert installed["installed"] and installed["verified"]
    assert installed["quantization"] == "int8" and installed["directory"] == str(target)
    verified = oci("verify", "ds-1.3b", cache=tmp_path)
    assert verified.returncode == 0 and "passed" in verified.stdout
    removed = oci("rm", "ds-1.3b", cache=tmp_path)
    assert removed.returncode == 0 and not target.exists()
    again = oci("rm", "ds-1.3b", cache=tmp_path)
    assert again.returncode == 2 and "not installed" in again.stderr


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    missing = oci("convert", str(tmp_path / "nope"), "-o", str(tmp_path / "out"), cache=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0 and "not a directory" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    not_checkpoint = oci("convert", str(empty), "-o", str(tmp_path / "out"), cache=tmp_path)
    assert not_checkpoint.returncode == 2 and "config.json" in not_checkpoint.stderr
    unknown = oci("verify", "ds-33b", cache=tmp_path)
    assert unknown.returncode == 2 and "oci-lsp model list" in unknown.stderr


def hub_env(cache: Path, endpoint: str) -> dict[str, str]:
    return {
        "HF_ENDPOINT": endpoint,
        "HF_TOKEN_PATH": str(cache / "no-token"),  # a developer's own token never reaches it
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }


def pull(cache: Path, endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), **hub_env(cache, endpoint)}
    env.pop("HF_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "oci_lsp", "model", "pull", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


async def test_pull_downloads_converts_and_serves(tmp_path: Path, checkpoint: Path) -> None:
    from oci_lsp.engine.backend import ChatMessage, GenerationOptions
    from oci_lsp.engine.ct2_backend import Ct2Backend
    from tests.hub_server import FakeHub, FakeRepo

    files = {p.name: p.read_bytes() for p in checkpoint.iterdir() if p.is_file()}
    repo = FakeRepo("m-a-p/OpenCodeInterpreter-DS-1.3B", files)
    with FakeHub([repo]) as hub:
        first = pull(tmp_path, hub.endpoint, "ds-1.3b", "--quantization", "int8")
        assert first.returncode == 0, first.stderr
        assert "logits parity passed" in first.stdout
        served = len(hub.requests())
        target = tmp_path / "oci-lsp" / "models" / "ds-1.3b"
        manifest = json.loads((target / "oci-model.json").read_text())
        assert manifest["source"]["repo"] == repo.repo_id
        assert manifest["source"]["revision"] == repo.commit
        assert manifest["family"] == "ds"
        # A second pull finds every file verified: only metadata is asked again.
        second = pull(tmp_path, hub.endpoint, "ds-1.3b", "--quantization", "int8")
        assert second.returncode == 0, second.stderr
        again = hub.requests()[served:]
        assert all(r.method == "HEAD" or r.path.startswith("/api/") for r in again)
    model = Ct2Backend(target, "ds", device="cpu", compute_type="int8", context=2048)
    (answer,) = await model.generate(
        [ChatMessage("user", "hi")], GenerationOptions(max_new_tokens=4)
    )
    assert answer.tokens > 0
    await model.close()


def test_pull_with_no_hub_says_so(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = pull(tmp_path, f"http://127.0.0.1:{port}", "ds-1.3b")
    assert out.returncode == 2
    assert "cannot reach the Hugging Face hub" in out.stderr
    assert out.stderr.strip().count("\n") == 0
    unknown = pull(tmp_path, f"http://127.0.0.1:{port}", "gpt-5")
    assert unknown.returncode == 2 and "oci-lsp model list" in unknown.stderr
