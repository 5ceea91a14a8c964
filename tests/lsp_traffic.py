"""What a client received from its server, counted in bytes as they came off the pipe.

pygls's client reads each message body with `readexactly` on the server's stdout; wrapping
that one method of the reader counts every body whole, with no change to how the client
handles it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

RESPONSE = "(response)"


@dataclass
class Traffic:
    bytes: Counter[str] = field(default_factory=Counter)  # body bytes by method
    messages: Counter[str] = field(default_factory=Counter)
    # publishDiagnostics: the body size and the number of diagnostics of each URI's last list
    last_publish: dict[str, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def attach(cls, client: Any) -> Traffic:
        """Count what `client` (a pygls client started over stdio) receives from now on."""
        traffic = cls()
        reader = client._server.stdout
        read: Callable[[int], Awaitable[bytes]] = reader.readexactly

        async def counting(n: int) -> bytes:
            body = await read(n)
            traffic.add(body)
            return body

        reader.readexactly = counting
        return traffic

    def add(self, body: bytes) -> None:
        try:
            message = json.loads(body)
        except ValueError:
            return
        method = message.get("method") if isinstance(message, dict) else None
        method = method if isinstance(method, str) else RESPONSE
        self.bytes[method] += len(body)
        self.messages[method] += 1
        if method == "textDocument/publishDiagnostics":
            params = message.get("params") or {}
            self.last_publish[params.get("uri", "")] = (len(body), len(params["diagnostics"]))

    @property
    def diagnostics_bytes(self) -> int:
        return self.bytes["textDocument/publishDiagnostics"]

    @property
    def publishes(self) -> int:
        return self.messages["textDocument/publishDiagnostics"]

    def final_diagnostics_bytes(self) -> int:
        """The size of what the client shows now: each URI's last list (empty ones cost
        nothing to show)."""
        return sum(size for size, count in self.last_publish.values() if count)

    def snapshot(self) -> tuple[int, int]:
        return self.diagnostics_bytes, self.publishes
