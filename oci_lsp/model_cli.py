"""`oci-lsp model ...`: list, convert, verify and remove models (pull joins with the downloader).

Each command prints what it did, and on failure one line that says what to do, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from oci_lsp.engine.catalog import CATALOG, find
from oci_lsp.engine.device import choose_placement
from oci_lsp.engine.paths import models_dir
from oci_lsp.engine.store import directory_size, locate, read_manifest

EXIT_FAILED = 2
QUANTIZATIONS = (
    "int8_float16",
    "int8",
    "int8_float32",
    "int8_bfloat16",
    "float16",
    "bfloat16",
    "float32",
)

QUANT_HELP = "default: int8_float16 with a CUDA device, int8 otherwise"


def add_model_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="model_command", required=True, metavar="COMMAND")
    listing = sub.add_parser("list", help="catalog ids, what is installed, sizes, where")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    pull = sub.add_parser("pull", help="download a checkpoint and convert it to CTranslate2")
    pull.add_argument("model", metavar="ID|REPO", help="a catalog id (ds-6.7b) or a hub repo")
    pull.add_argument("--revision", metavar="R", default=None, help="branch, tag or commit")
    pull.add_argument("--quantization", choices=QUANTIZATIONS, default=None, help=QUANT_HELP)
    convert = sub.add_parser("convert", help="convert a local Hugging Face checkpoint directory")
    convert.add_argument("source", metavar="SRC", type=Path, help="the checkpoint directory")
    convert.add_argument(
        "-o", "--output", metavar="DIR", type=Path, required=True, help="where the model goes"
    )
    convert.add_argument("--quantization", choices=QUANTIZATIONS, default=None, help=QUANT_HELP)
    verify = sub.add_parser("verify", help="re-run the logits parity check on an installed model")
    verify.add_argument("model", metavar="ID|DIR")
    verify.add_argument("--source", metavar="SRC", type=Path, help="the checkpoint it came from")
    remove = sub.add_parser("rm", help="remove an installed model")
    remove.add_argument("model", metavar="ID")


def default_quantization() -> str:
    """int8_float16 for a GPU, int8 for the CPU (the issue's defaults)."""
    return "int8_float16" if choose_placement("auto", "auto", "auto").device == "cuda" else "int8"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{n} B"
        value /= 1024
    return f"{n} B"


def _listing() -> list[dict[str, Any]]:
    """The catalog and the models converted by hand, as `model list --json` prints them."""
    rows: list[dict[str, Any]] = []
    for entry in CATALOG:
        where = locate(entry.id)
        row: dict[str, Any] = {
            "id": entry.id,
            "params": f"{entry.parameters:.1f}B",
            "memoryGiB": {
                "int8": round(entry.memory_gib("int8"), 1),
                "float16": round(entry.memory_gib("float16"), 1),
            },
            "repo": entry.repo,
            "installed": where.installed,
        }
        if where.installed:
            manifest = read_manifest(where.directory)
            row["directory"] = str(where.directory)
            row["quantization"] = manifest.get("quantization")
            row["size"] = directory_size(where.directory)
            row["verified"] = bool(manifest.get("parity", {}).get("passed"))
        rows.append(row)
    # Models converted by hand into the models directory, outside the catalog's ids.
    for marker in sorted(models_dir().glob("*/model.bin")):
        directory = marker.parent
        if find(directory.name) is None:
            rows.append(
                {
                    "id": directory.name,
                    "installed": True,
                    "directory": str(directory),
                    "size": directory_size(directory),
                    "inCatalog": False,
                }
            )
    return rows


def cmd_list(as_json: bool = False) -> int:
    rows = _listing()
    if as_json:
        # For the editor clients' "pull a model" pickers.
        print(json.dumps(rows, indent=2))
        return 0
    print(f"models directory: {models_dir()}")
    print(f"{'id':<9} {'params':>7} {'int8':>8} {'fp16':>8}  {'installed':<28} repo")
    for row in rows:
        if row.get("inCatalog") is False:
            print(f"{row['id']:<9} (not in the catalog) {_size(row['size'])} {row['directory']}")
            continue
        state = "-"
        if row["installed"]:
            check = "ok" if row["verified"] else "UNVERIFIED"
            state = f"{row['quantization'] or '?'} {_size(row['size'])} {check}"
        memory = row["memoryGiB"]
        print(
            f"{row['id']:<9} {row['params']:>7} {memory['int8']:>6.1f}GB"
            f" {memory['float16']:>6.1f}GB  {state:<28} {row['repo']}"
        )
    return 0


def _fail(message: str) -> int:
    print(f"oci-lsp: {message}", file=sys.stderr)
    return EXIT_FAILED


def cmd_convert(source: Path, output: Path, quantization: str | None) -> int:
    from oci_lsp.engine.convert import ConvertError, convert_checkpoint

    if not source.is_dir():
        return _fail(f"{source} is not a directory: give a Hugging Face checkpoint directory")
    try:
        manifest = convert_checkpoint(
            source, output, quantization or default_quantization(), progress=print
        )
    except ConvertError as exc:
        return _fail(str(exc))
    print(f"installed {output} ({manifest['family']}, {manifest['quantization']})")
    return 0


def cmd_verify(model: str, source: Path | None) -> int:
    from oci_lsp.engine.convert import ConvertError, verify_installed

    where = locate(model)
    if not where.installed:
        return _fail(f"no installed model {model!r}: see `oci-lsp model list`")
    if source is None:
        recorded = read_manifest(where.directory).get("source", {}).get("local")
        source = Path(recorded) if recorded else None
    if source is None or not source.is_dir():
        return _fail("the checkpoint is needed for the check: pass --source SRC")
    try:
        result = verify_installed(where.directory, source)
    except ConvertError as exc:
        return _fail(str(exc))
    print(result.describe())
    return 0 if result.passed else 1


def cmd_pull(model: str, revision: str | None, quantization: str | None) -> int:
    """Download (resumable, verified) then convert and check; one line on failure."""
    from oci_lsp.engine.convert import ConvertError, convert_checkpoint
    from oci_lsp.engine.download import (
        DownloadError,
        ProgressBar,
        download_snapshot,
        resolve_snapshot,
    )

    entry = find(model)
    if entry is None and "/" not in model:
        return _fail(
            f"unknown model {model!r}: use a catalog id (`oci-lsp model list`) or OWNER/REPO"
        )
    repo = entry.repo if entry else model
    target = models_dir() / (entry.id if entry else repo.split("/")[-1].lower())
    bar = ProgressBar(sys.stderr)
    try:
        snapshot = resolve_snapshot(repo, revision)
        print(f"pulling {repo} at {snapshot.revision[:12]} ({len(snapshot.files)} files)")
        source = download_snapshot(snapshot, progress=bar)
    except DownloadError as exc:
        return _fail(str(exc))
    finally:
        bar.close()
    try:
        manifest = convert_checkpoint(
            source,
            target,
            quantization or default_quantization(),
            source_repo=repo,
            revision=snapshot.revision,
            family=entry.family if entry else None,
            progress=print,
        )
    except ConvertError as exc:
        return _fail(str(exc))
    print(f"installed {target.name} in {target} ({manifest['quantization']})")
    return 0


def cmd_rm(model: str) -> int:
    entry = find(model)
    directory = models_dir() / (entry.id if entry else model)
    if not (directory / "model.bin").exists():
        return _fail(f"{model!r} is not installed in {models_dir()}")
    shutil.rmtree(directory)
    print(f"removed {directory}")
    return 0


def run(args: argparse.Namespace) -> int:
    command = args.model_command
    if command == "list":
        return cmd_list(args.json)
    if command == "pull":
        return cmd_pull(args.model, args.revision, args.quantization)
    if command == "convert":
        return cmd_convert(args.source, args.output, args.quantization)
    if command == "verify":
        return cmd_verify(args.model, args.source)
    return cmd_rm(args.model)
