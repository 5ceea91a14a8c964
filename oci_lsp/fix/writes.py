"""Reading and writing the user's files the way `oci-lsp --fix` must: nothing half-written.

A file is read once as bytes: its encoding (UTF-8, with or without a BOM), its line endings
and whether it ends with a line break are kept, and the code works on plain "\\n" text. A
write goes to a temporary file in the same directory (same file system), is flushed to disk,
gets the original's mode, then replaces the original in one rename: an interruption at any
moment, even kill -9, leaves the old file or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

_BOM = b"\xef\xbb\xbf"


class FileProblem(Exception):
    """The file cannot be read or written as it should; str() says why, in one line."""


@dataclass(frozen=True)
class TextFile:
    path: Path
    text: str  # with "\n" line endings
    raw: bytes  # exactly what was on disk
    bom: bool
    newline: str  # "\n" or "\r\n" (the file's majority)

    def encode(self, text: str) -> bytes:
        """`text` (with "\\n" endings) as this file's bytes: its BOM and line endings."""
        body = text.replace("\r\n", "\n")
        if self.newline != "\n":
            body = body.replace("\n", self.newline)
        data = body.encode("utf-8")
        return _BOM + data if self.bom else data

    def unchanged_on_disk(self) -> bool:
        try:
            return self.path.read_bytes() == self.raw
        except OSError:
            return False


def read_text_file(path: Path) -> TextFile:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FileProblem(f"cannot read {path}: {exc.strerror or exc}") from None
    bom = raw.startswith(_BOM)
    try:
        text = raw[len(_BOM) if bom else 0 :].decode("utf-8")
    except UnicodeDecodeError:
        raise FileProblem(f"{path} is not UTF-8 text; left alone") from None
    crlf = text.count("\r\n")
    newline = "\r\n" if crlf and crlf * 2 >= text.count("\n") else "\n"
    return TextFile(path, text.replace("\r\n", "\n"), raw, bom, newline)


def write_atomic(original: TextFile, text: str) -> None:
    """Replace the file with `text`, atomically, keeping its encoding, endings and mode.
    FileProblem when it is read-only or changed on disk since it was read."""
    path = original.path
    if not original.unchanged_on_disk():
        raise FileProblem(f"{path} changed on disk during the run; its fix was not written")
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise FileProblem(f"cannot write {path}: {exc.strerror or exc}") from None
    # Read-only by its mode, even for root (who may write anything): the user marked it so.
    if not os.access(path, os.W_OK) or not mode & stat.S_IWUSR:
        raise FileProblem(f"{path} is read-only; its fix was not written")
    data = original.encode(text)
    try:
        handle, temporary = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".oci-lsp.tmp", dir=path.parent
        )
    except OSError as exc:
        raise FileProblem(f"cannot write in {path.parent}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise FileProblem(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:  # interrupted between the two: the original is still whole
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_directory(path.parent)


def leftovers(root: Path) -> list[Path]:
    """Temporary files an interrupted run (kill -9) left behind; a new run removes them."""
    return sorted(root.rglob(".*.oci-lsp.tmp"))


def _sync_directory(directory: Path) -> None:
    # The rename itself is durable only once the directory is flushed (POSIX).
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
