"""A client that writes raw bytes to `python -m oci_lsp` over its stdio.

pytest-lsp's client only sends well-formed messages; a broken or hostile editor sends anything:
this one writes the bytes a test gives it, reads what the server writes back (the server's
output is well-formed), and answers the server's own requests the way a minimal editor does.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from tests.conftest import WAIT

SERVER = [sys.executable, "-m", "oci_lsp", "-v"]
ERROR, WARNING = 1, 2  # window/showMessage types


def frame(message: Any = None, *, body: bytes | None = None, length: int | None = None) -> bytes:
    """A message as a client sends it; body and length replace the true ones."""
    data = json.dumps(message).encode() if body is None else body
    return b"Content-Length: %d\r\n\r\n%s" % (len(data) if length is None else length, data)


def read_message(stream: IO[bytes]) -> dict[str, Any] | None:
    """The next message the server wrote, or None at the end of its output."""
    length = None
    while True:
        line = stream.readline()
        if not line:
            return None
        if not line.strip():
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    assert length is not None, "the server wrote a header block without Content-Length"
    message: dict[str, Any] = json.loads(stream.read(length))
    return message


def answer_as_an_editor(request: dict[str, Any]) -> bytes:
    """What a minimal editor answers to the server's request: null (one per configuration item)."""
    params = request.get("params") or {}
    result = [None] * len(params.get("items", [])) if "items" in params else None
    return frame({"jsonrpc": "2.0", "id": request["id"], "result": result})


class RawClient:
    def __init__(
        self,
        log_file: Path,
        answer: Callable[[dict[str, Any]], bytes] = answer_as_an_editor,
    ) -> None:
        self.answer = answer
        self.proc = subprocess.Popen(
            [*SERVER, "--log-file", str(log_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.log_file = log_file
        self.received: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._writing = threading.Lock()  # the reader thread answers the server's requests
        self._next_id = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while (message := read_message(self.proc.stdout)) is not None:
            if "method" in message and "id" in message:  # the server asks the editor
                self.write(self.answer(message))
            with self._changed:
                self.received.append(message)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    # -- writing ----------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        with self._writing:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def send(self, message: Any) -> None:
        self.write(frame(message))

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def request(self, method: str, params: Any = None) -> int:
        msg_id = self.new_id()
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return msg_id

    def notify(self, method: str, params: Any = None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    # -- reading ----------------------------------------------------------------------------

    def wait_for(
        self, found: Callable[[dict[str, Any]], bool], what: str, start: int = 0
    ) -> dict[str, Any]:
        """The first message from index start on that found accepts (waiting for it)."""
        with self._changed:
            seen = start
            while True:
                for message in self.received[seen:]:
                    if found(message):
                        return message
                seen = len(self.received)
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"the server exited ({self.proc.returncode}) before {what}"
                    )
                if not self._changed.wait(WAIT):
                    raise AssertionError(f"timed out waiting for {what}")

    def response(self, msg_id: int | str | None, start: int = 0) -> dict[str, Any]:
        """The answer to request msg_id (None: the first answer with id null from start on)."""
        return self.wait_for(
            lambda m: "method" not in m and m.get("id") == msg_id,
            f"the answer to request {msg_id}",
            start,
        )

    def call(self, method: str, params: Any = None) -> Any:
        answer = self.response(self.request(method, params))
        assert "error" not in answer, answer
        return answer.get("result")

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            "workspace/executeCommand", {"command": "oci.status", "arguments": []}
        )
        return result

    def shown(self, kind: int | None = None) -> list[str]:
        """The window/showMessage texts so far (of one type)."""
        return [
            m["params"]["message"]
            for m in list(self.received)
            if m.get("method") == "window/showMessage"
            and (kind is None or m["params"]["type"] == kind)
        ]

    # -- the session ------------------------------------------------------------------------

    def start(self, root: Path | None = None) -> None:
        capabilities = {
            "workspace": {"configuration": True, "workspaceFolders": True},
            "window": {"workDoneProgress": True},
        }
        self.call(
            "initialize",
            {
                "processId": None,
                "rootUri": root.as_uri() if root else None,
                "workspaceFolders": [{"uri": root.as_uri(), "name": root.name}] if root else None,
                "capabilities": capabilities,
            },
        )
        self.notify("initialized", {})

    def close(self) -> int:
        """Shut the server down if it still runs; its exit code."""
        if self.proc.poll() is None:
            try:
                self.call("shutdown")
                self.notify("exit")
                self.proc.stdin.close()  # type: ignore[union-attr]
                return self.proc.wait(timeout=WAIT)
            except (AssertionError, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        return self.proc.wait()
