"""What is wrong with a message from the editor, the JSON-RPC error that answers it, and the one
line the user is told about each kind of wrong message.

pygls turns every such message into an exception and the exception into an `Error in server:
<exception text>` pop-up, answering nothing: the editor's request waits forever and the user
reads a Python traceback's last line. Here a message is checked before pygls sees it; a bad one
is answered as JSON-RPC says (ParseError or InvalidRequest, with id null when its id cannot be
known), logged in full, and told once per kind as a Warning the user can act on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import attrs
from lsprotocol import types

from oci_lsp.server.framing import UNPARSED

log = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
SERVER_NOT_INITIALIZED = -32002

# The kinds of wrong message, each told to the user once, by the line it is told with.
NOT_JSON = "not-json"
NOT_JSON_RPC = "not-json-rpc"
FRAMING = "framing"
UNOPENED = "unopened"
LINES = {
    NOT_JSON: "oci-lsp: ignored a message from the editor that is not JSON (details in the "
    "server log)",
    NOT_JSON_RPC: "oci-lsp: ignored a message from the editor that is not a JSON-RPC 2.0 "
    "request, notification or response (details in the server log)",
    FRAMING: "oci-lsp: a message from the editor had a wrong or missing Content-Length header; "
    "it was not run, and the messages after it were read on (details in the server log)",
    UNOPENED: "oci-lsp: ignored changes to {uri}, which the editor had not opened; the file is "
    "read from disk (details in the server log)",
}

MessageId = int | str


@dataclass(frozen=True)
class Rejection:
    """A message that is not run: why, and how it is answered."""

    code: int
    reason: str  # the error's message, and the log's
    kind: str  # what the user is told (once), a key of LINES or a method's params
    msg_id: MessageId | None = None
    answer: bool = True  # False for a notification or a response: they get no answer


def valid_id(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def params_kind(method: str) -> str:
    return f"params:{method}"


def params_line(method: str) -> str:
    return (
        f"oci-lsp: ignored a {method} notification from the editor whose params are not valid "
        "(details in the server log)"
    )


def _is_request_method(method: str) -> bool | None:
    """Whether LSP defines method as a request (True), a notification (False), or not at all."""
    message_type = types.METHOD_TO_TYPES.get(method, (None,))[0]
    if message_type is None or not attrs.has(message_type):
        return None
    return "id" in attrs.fields_dict(message_type)


def check(
    body: bytes, framing_problem: str | None, parsed: Any = UNPARSED
) -> dict[str, Any] | Rejection:
    """The message in body (parsed: body already parsed), or why it is not run
    (framing_problem: what its framing got wrong)."""
    try:
        data = json.loads(body.decode("utf-8")) if parsed is UNPARSED else parsed
    except UnicodeDecodeError as exc:
        kind = FRAMING if framing_problem else NOT_JSON
        return Rejection(PARSE_ERROR, f"the message is not UTF-8: {exc}", kind)
    except ValueError as exc:
        reason = f"the message is not JSON ({exc})"
        if framing_problem:
            return Rejection(PARSE_ERROR, f"{framing_problem}; {reason}", FRAMING)
        return Rejection(PARSE_ERROR, reason, NOT_JSON)
    if not isinstance(data, dict):
        batch = " (LSP has no batches)" if isinstance(data, list) else ""
        reason = f"a message must be a JSON object, not {type(data).__name__}{batch}"
        return Rejection(INVALID_REQUEST, reason, NOT_JSON_RPC)
    has_id, raw_id = "id" in data, data.get("id")
    msg_id = raw_id if valid_id(raw_id) else None
    method = data.get("method")
    answer = has_id and "method" in data  # a request: anything else gets no answer
    if framing_problem:
        reason = f"{framing_problem}: the message was not run"
        return Rejection(PARSE_ERROR, reason, FRAMING, msg_id, answer)
    if has_id and msg_id is None:
        return Rejection(INVALID_REQUEST, "the id must be an integer or a string", NOT_JSON_RPC)
    if data.get("jsonrpc") != "2.0":
        reason = 'the message lacks "jsonrpc": "2.0"'
        return Rejection(INVALID_REQUEST, reason, NOT_JSON_RPC, msg_id, answer)
    if "method" in data and not isinstance(method, str):
        return Rejection(INVALID_REQUEST, "the method must be a string", NOT_JSON_RPC, msg_id)
    if method is None:
        if not has_id:
            reason = "the message has neither a method nor an id"
            return Rejection(INVALID_REQUEST, reason, NOT_JSON_RPC)
        return data  # an answer
    params = data.get("params")
    if params is not None and not isinstance(params, (dict, list)):
        reason = "the params must be an object or an array"
        return Rejection(INVALID_REQUEST, reason, NOT_JSON_RPC, msg_id, answer)
    is_request = _is_request_method(method)
    if has_id and is_request is False:
        reason = f"{method} is a notification, sent as a request"
        return Rejection(INVALID_REQUEST, reason, NOT_JSON_RPC, msg_id)
    if not has_id and is_request:
        reason = f"{method} is a request, sent without an id"
        return Rejection(INVALID_REQUEST, reason, NOT_JSON_RPC, answer=False)
    return data


def error_answer(msg_id: MessageId | None, code: int, reason: str) -> dict[str, Any]:
    """A JSON-RPC error response as a plain object: lsprotocol's drops an id that is null."""
    return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": reason}}


class Notices:
    """Each kind of wrong message told to the user once; every one of them to the log."""

    def __init__(self, show: Callable[[str], None]) -> None:
        self._show = show
        self._told: set[str] = set()

    def tell(self, kind: str, line: str, details: str) -> None:
        log.warning("%s", details)
        if kind not in self._told:
            self._told.add(kind)
            self._show(line)

    def reject(self, rejection: Rejection, body: bytes) -> None:
        shown = body[:300] + (b"..." if len(body) > 300 else b"")
        line = LINES.get(rejection.kind) or params_line(rejection.kind.partition(":")[2])
        self.tell(rejection.kind, line, f"rejected a message: {rejection.reason}: {shown!r}")
