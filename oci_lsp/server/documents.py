"""Which files the editor has open, under the exact URI it used for each.

pygls keys its documents by an unquoted form of the client's URI (`file:///a b/x.py`), which
is not a valid URI; publishing that key loses the diagnostics in clients that compare URIs as
strings. So the server remembers, per real path, the URI the client sent on didOpen and
answers with it; a file the client never named gets a percent-encoded `file:` URI.
"""

from __future__ import annotations

from pathlib import Path


def path_to_uri(path: str) -> str:
    """A valid, percent-encoded file URI (spaces and non-ASCII characters escaped)."""
    return Path(path).as_uri()


class ClientUris:
    def __init__(self) -> None:
        self._open: dict[str, str] = {}  # real path -> the URI of the open document
        # real path -> the last URI the client used for it, kept after didClose: the
        # client's Problems list still holds the file under that spelling.
        self._spelling: dict[str, str] = {}

    def opened(self, path: str, uri: str) -> None:
        self._open[path] = uri
        self._spelling[path] = uri

    def closed(self, path: str) -> None:
        self._open.pop(path, None)

    def open_uri(self, path: str) -> str | None:
        """The URI of the open document of path, or None when the editor has it closed."""
        return self._open.get(path)

    def uri_for(self, path: str) -> str:
        """The URI to name path with: the client's own spelling when it has used one."""
        return self._spelling.get(path) or path_to_uri(path)
