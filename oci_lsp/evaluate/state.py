"""What a run has finished, kept on disk so that the same command after a kill goes on from there.

`$XDG_CACHE_HOME/oci-lsp/eval/<key>/` holds `key.json` (what the key is made of: the benchmark,
its data, the model and every option that changes a result) and `problems.jsonl`, one line per
finished problem with its prompts, replies and results, appended as each problem finishes.
A line is written whole with one `write` on a file opened for appending; a run killed in the
middle of one leaves at most a partial last line, which the next run cuts off before it
appends.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from oci_lsp.engine.paths import cache_dir

RECORDS = "problems.jsonl"


def eval_dir() -> Path:
    return cache_dir() / "eval"


def state_key(parts: dict[str, Any]) -> str:
    """A readable, unique folder name for these parts: benchmark, model, feedback, digest."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]
    model = re.sub(r"[^A-Za-z0-9.]+", "-", str(parts.get("model", "model"))).strip("-")[-40:]
    benchmark = str(parts.get("benchmark", "eval")) + ("-plus" if parts.get("plus") else "")
    return f"{benchmark}-{model or 'model'}-fb{parts.get('feedback', 0)}-{digest}"


class EvalState:
    """The finished problems of one key."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / RECORDS

    @classmethod
    def open(cls, parts: dict[str, Any], *, fresh: bool = False) -> EvalState:
        directory = eval_dir() / state_key(parts)
        if fresh and directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True, exist_ok=True)
        key = directory / "key.json"
        if not key.exists():
            temporary = directory / "key.json.tmp"
            temporary.write_text(json.dumps(parts, indent=2, sort_keys=True) + "\n", "utf-8")
            os.replace(temporary, key)
        state = cls(directory)
        state._cut_partial_line()
        return state

    def _cut_partial_line(self) -> None:
        """A kill in the middle of a line leaves it partial: cut it, or the next line would
        be glued to it."""
        try:
            with open(self.path, "rb+") as handle:
                data = handle.read()
                if data and not data.endswith(b"\n"):
                    handle.truncate(data.rfind(b"\n") + 1)
        except FileNotFoundError:
            pass

    def finished(self) -> dict[str, dict[str, Any]]:
        """The records of the finished problems, by task id (the last one of a task wins)."""
        records: dict[str, dict[str, Any]] = {}
        try:
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return records
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a partial line of a killed run
            if isinstance(record, dict) and isinstance(record.get("task_id"), str):
                records[record["task_id"]] = record
        return records

    def append(self, record: dict[str, Any]) -> None:
        """One problem's record, as one whole line (one write, then flushed to disk)."""
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, data)
            while written < len(data):  # a short write (a signal): the rest follows it
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
