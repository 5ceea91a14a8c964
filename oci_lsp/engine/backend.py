"""The one interface of every generation backend (CTranslate2 in-process, OpenAI-compatible).

Callers (the refinement loop, the code actions, `--fix`) speak in chat messages and get back
candidates; how a backend formats prompts, where it runs and how it streams is its own business.
Generation never runs on the caller's event loop: `generate` is a coroutine that waits on a
thread or a socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant"]
Priority = Literal["interactive", "batch"]
FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class GenerationOptions:
    max_new_tokens: int = 1024
    # Candidate 0 is always greedy, as the paper decoded; the others sample at `temperature`.
    num_candidates: int = 1
    temperature: float = 0.2
    seed: int | None = None
    # Requests from the editor go before batch work (`--fix`) when both wait.
    priority: Priority = "interactive"


@dataclass
class Candidate:
    text: str
    finish_reason: FinishReason
    tokens: int = 0  # new tokens generated


# on_text(candidate index, text so far): for live previews. Called on the event loop.
OnText = Callable[[int, str], None]


@dataclass
class BackendStatus:
    """What `oci.status` shows under `model`."""

    id: str | None
    state: Literal["not-loaded", "loading", "ready", "error"]
    device: str | None = None
    compute_type: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class BackendError(Exception):
    """A failure the user can act on; str(error) is one line that says what to do."""


class Backend(Protocol):
    async def generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        on_text: OnText | None = None,
        cancel: asyncio.Event | None = None,
    ) -> list[Candidate]:
        """Answer the conversation; raises BackendError with a message for the user."""
        ...

    async def load(self) -> None:
        """Get ready now (load the weights, reach the server); generate() does it otherwise."""
        ...

    def status(self) -> BackendStatus: ...

    async def close(self) -> None: ...
