"""Converting tiny real checkpoints, and the logits parity check that proves each conversion."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from oci_lsp.engine import convert
from oci_lsp.engine.backend import ChatMessage, GenerationOptions
from oci_lsp.engine.convert import ConvertError, check_parity, convert_checkpoint, verify_installed
from oci_lsp.engine.ct2_backend import Ct2Backend
from oci_lsp.engine.store import read_manifest
from tests.hf_checkpoints import build_llama_checkpoint, build_starcoder2_checkpoint

DS_REPO = "m-a-p/OpenCodeInterpreter-DS-1.3B"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("checkpoints")
    return {
        "ds": build_llama_checkpoint(root / "ds", "ds"),
        "cl": build_llama_checkpoint(root / "cl", "cl", seed=1),
        "sc2": build_starcoder2_checkpoint(root / "sc2"),
    }


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_ds_converts_verifies_and_generates(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "ds-1.3b"
    manifest = convert_checkpoint(
        checkpoints["ds"], out, "float32", source_repo=DS_REPO, revision="abc123"
    )
    assert manifest["parity"]["passed"] is True
    assert manifest["parity"]["max_abs_diff"] < 1e-3
    on_disk = read_manifest(out)
    assert on_disk["family"] == "ds" and on_disk["context"] == 2048
    assert on_disk["source"] == {
        "repo": DS_REPO,
        "revision": "abc123",
        "local": str(checkpoints["ds"]),
    }
    assert {"ctranslate2", "transformers", "torch"} <= set(on_disk["versions"])
    assert (out / "tokenizer.json").exists() and (out / "tokenizer_config.json").exists()
    assert not list(tmp_path.glob(".ds-1.3b.*"))  # no staging left behind
    model = Ct2Backend(out, "ds", device="cpu", compute_type="int8", context=2048)
    (answer,) = await model.generate(
        [ChatMessage("user", "Write add.")], GenerationOptions(max_new_tokens=8)
    )
    assert answer.tokens > 0
    await model.close()


def test_the_check_catches_a_wrong_rotary_base(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    # The trap of NOTES.md: the same weights with rope_theta 10000 instead of 100000.
    wrong_src = tmp_path / "wrong"
    shutil.copytree(checkpoints["ds"], wrong_src)
    config = json.loads((wrong_src / "config.json").read_text())
    config["rope_theta"] = 10000
    (wrong_src / "config.json").write_text(json.dumps(config))
    converted = tmp_path / "converted"
    convert_checkpoint(wrong_src, converted, "float32", family="ds")
    result = check_parity(checkpoints["ds"], converted, "float32")
    assert not result.passed
    assert result.max_abs_diff > 0.1


def test_llama_loader_reads_the_top_level_rope_theta() -> None:
    # transformers 4.x shape: rope_theta beside rope_scaling, not inside it.
    convert.register_loaders()
    from ctranslate2.converters.transformers import _MODEL_LOADERS

    loader = _MODEL_LOADERS["LlamaConfig"]
    config = SimpleNamespace(rope_scaling={"type": "linear", "factor": 4.0}, rope_theta=100000)
    _, factor, theta = loader.get_rotary_params(config, 10000)
    assert (factor, theta) == (4.0, 100000)


@pytest.mark.parametrize("quantization", ["float32", "int8"])
def test_starcoder2_converts(
    checkpoints: dict[str, Path], tmp_path: Path, quantization: str
) -> None:
    manifest = convert_checkpoint(checkpoints["sc2"], tmp_path / "sc2", quantization)
    assert manifest["family"] == "sc2"
    assert manifest["parity"]["passed"] is True
    assert manifest["parity"]["tolerance"] == (1e-3 if quantization == "float32" else 1.0)


def test_cl_int8(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    manifest = convert_checkpoint(
        checkpoints["cl"], tmp_path / "cl", "int8", source_repo="m-a-p/OpenCodeInterpreter-CL-7B"
    )
    assert manifest["family"] == "cl" and manifest["parity"]["passed"]


def test_a_failed_check_keeps_the_installed_model(
    checkpoints: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "model"
    convert_checkpoint(checkpoints["ds"], out, "float32", family="ds")
    before = digest(out / "model.bin")
    # The real check, with a bar no conversion can pass.
    monkeypatch.setitem(convert.TOLERANCE, "float32", -1.0)
    with pytest.raises(ConvertError, match=r"max \|Δ log-prob\|.*unchanged"):
        convert_checkpoint(checkpoints["cl"], out, "float32", family="cl")
    assert digest(out / "model.bin") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_verify_reruns_the_check(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "model"
    convert_checkpoint(checkpoints["ds"], out, "int8", family="ds")
    result = verify_installed(out, checkpoints["ds"])
    assert result.passed
    assert read_manifest(out)["parity"]["max_abs_diff"] == result.max_abs_diff


def test_without_the_convert_extra_the_message_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    with pytest.raises(ConvertError, match=r"pip install 'oci-lsp\[convert\]'"):
        convert_checkpoint(tmp_path, tmp_path / "out", "int8")


def test_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ConvertError, match=r"config\.json"):
        convert_checkpoint(tmp_path, tmp_path / "out", "int8")
