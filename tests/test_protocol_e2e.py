"""Malformed messages: the right JSON-RPC answer, no Error pop-up, and the server goes on.

Through the raw client (tests/raw_client.py) for what no real client library can send (bytes
that are not JSON, wrong Content-Length headers), and through pytest-lsp for what a real
client can get wrong (a change to a document it never opened, a position out of range, a
request after shutdown).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import attrs
import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, client_capabilities

from tests.conftest import Editor, write_files
from tests.raw_client import ERROR, WARNING, RawClient, answer_as_an_editor, frame

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
SERVER_NOT_INITIALIZED = -32002
NULL = "null"  # a case answered with id null (nothing in it says which request it was)


def status_request(msg_id: int) -> dict[str, Any]:
    params = {"command": "oci.status", "arguments": []}
    return {"jsonrpc": "2.0", "id": msg_id, "method": "workspace/executeCommand", "params": params}


def status_body(msg_id: int) -> bytes:
    return json.dumps(status_request(msg_id)).encode()


HEADER_WITHOUT_LENGTH = b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n"
NEVER_OPENED = "file:///never/opened.py"


@dataclass(frozen=True)
class Case:
    name: str
    data: Callable[[int], bytes]  # the bytes sent, given the id the case may use
    answer: str | None  # "id": answered under the case's id, NULL: with id null, None: not
    code: int | None = None
    warning: str | None = None  # what the one Warning about it says


CASES = [
    Case(
        "invalid JSON",
        lambda i: frame(body=b'{"jsonrpc": "2.0", "id": %d, "method": oops}' % i),
        NULL,
        PARSE_ERROR,
        "not JSON",
    ),
    Case(
        "a body that is not UTF-8",
        lambda i: frame(body=b'{"jsonrpc": "2.0", "id": %d, "method": "oci/\xff\xfe"}' % i),
        NULL,
        PARSE_ERROR,
        "not JSON",
    ),
    Case("a JSON array", lambda i: frame([status_request(i)]), NULL, INVALID_REQUEST, "JSON-RPC"),
    Case("a JSON number", lambda i: frame(i), NULL, INVALID_REQUEST, "JSON-RPC"),
    Case(
        "an object without jsonrpc",
        lambda i: frame({"id": i, "method": "workspace/executeCommand"}),
        "id",
        INVALID_REQUEST,
        "JSON-RPC",
    ),
    Case(
        "an object without method or id",
        lambda i: frame({"jsonrpc": "2.0", "params": {"id": i}}),
        NULL,
        INVALID_REQUEST,
        "JSON-RPC",
    ),
    Case(
        "an id that is an object",
        lambda i: frame({"jsonrpc": "2.0", "id": {"n": i}, "method": "shutdown"}),
        NULL,
        INVALID_REQUEST,
        "JSON-RPC",
    ),
    Case(
        "a Content-Length too short",
        lambda i: frame(body=status_body(i), length=len(status_body(i)) - 9),
        "id",
        PARSE_ERROR,
        "Content-Length",
    ),
    Case(
        "a Content-Length too long",
        lambda i: frame(body=status_body(i), length=len(status_body(i)) + 40),
        "id",
        PARSE_ERROR,
        "Content-Length",
    ),
    Case(
        "no Content-Length",
        lambda i: HEADER_WITHOUT_LENGTH + status_body(i),
        "id",
        PARSE_ERROR,
        "Content-Length",
    ),
    Case(
        "a Content-Length that is not a number",
        lambda i: b"Content-Length: many\r\n\r\n" + status_body(i),
        "id",
        PARSE_ERROR,
        "Content-Length",
    ),
    Case(
        "a huge Content-Length",
        lambda i: frame(body=status_body(i), length=10**18),
        "id",
        PARSE_ERROR,
        "Content-Length",
    ),
    Case(
        "didOpen without text",
        lambda i: frame(
            {
                "jsonrpc": "2.0",
                "method": "textDocument/didOpen",
                "params": {
                    "textDocument": {"uri": f"file:///x{i}.py", "languageId": "py", "version": 1}
                },
            }
        ),
        None,
        warning="textDocument/didOpen",
    ),
    Case(
        "didChange of a document never opened",
        lambda i: frame(
            {
                "jsonrpc": "2.0",
                "method": "textDocument/didChange",
                "params": {
                    "textDocument": {"uri": NEVER_OPENED, "version": i},
                    "contentChanges": [{"text": "x = 1\n"}],
                },
            }
        ),
        None,
        warning="had not opened",
    ),
    Case(
        "a request whose params have the wrong shape",
        lambda i: frame(
            {"jsonrpc": "2.0", "id": i, "method": "textDocument/codeAction", "params": [1]}
        ),
        "id",
        INVALID_PARAMS,
    ),
    Case(
        "an unknown method",
        lambda i: frame({"jsonrpc": "2.0", "id": i, "method": "oci/noSuchMethod"}),
        "id",
        METHOD_NOT_FOUND,
    ),
    Case(
        "a notification sent as a request",
        lambda i: frame(
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "textDocument/didSave",
                "params": {"textDocument": {"uri": NEVER_OPENED}},
            }
        ),
        "id",
        INVALID_REQUEST,
    ),
]


def answers(client: RawClient, start: int, end: int) -> list[tuple[Any, int | None]]:
    """The answers the server wrote between two points: (id, error code or None)."""
    return [
        (m.get("id"), m["error"]["code"] if "error" in m else None)
        for m in client.received[start:end]
        if "method" not in m
    ]


def assert_no_error_popup(client: RawClient) -> None:
    assert client.shown(ERROR) == []
    warnings = client.shown(WARNING)
    assert len(warnings) == len(set(warnings)), f"a Warning came twice: {warnings}"


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawClient]:
    """One server for every case: each must leave it working for the next."""
    client = RawClient(tmp_path_factory.mktemp("raw") / "server.log")
    client.start()
    yield client
    assert client.close() == 0


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_malformed_message_gets_its_answer_and_the_server_goes_on(
    raw: RawClient, case: Case
) -> None:
    for _ in range(2):  # twice: the second tells the user nothing new
        msg_id = raw.new_id()
        start = len(raw.received)
        raw.write(case.data(msg_id))
        after = raw.request("workspace/executeCommand", status_request(0)["params"])
        status = raw.response(after, start)
        assert status.get("result", {}).get("version"), status  # the next request is served
        expected = {"id": msg_id, NULL: None}.get(case.answer or "")
        got = answers(raw, start, raw.received.index(status))
        assert got == ([(expected, case.code)] if case.answer else []), case.name
    assert_no_error_popup(raw)
    if case.warning is not None:
        assert [w for w in raw.shown(WARNING) if case.warning in w], raw.shown(WARNING)


def test_a_request_with_a_content_length_too_long_is_answered_when_the_stream_pauses(
    tmp_path: Path,
) -> None:
    """Nothing comes after it: the server does not wait for the bytes its header promised."""
    client = RawClient(tmp_path / "server.log")
    try:
        client.start()
        client.write(frame(body=status_body(77), length=len(status_body(77)) + 500))
        answer = client.response(77)
        assert answer["error"]["code"] == PARSE_ERROR
        assert "Content-Length" in answer["error"]["message"]
        assert client.status()["version"]
        assert_no_error_popup(client)
    finally:
        assert client.close() == 0


def test_all_at_once_then_a_save_still_gets_its_diagnostics(tmp_path: Path) -> None:
    """Every case in one write, in a workspace: answers, one Warning per kind, tests on save."""
    root = write_files(
        tmp_path / "ws",
        {
            "calc.py": "def add(a, b):\n    return a - b\n",
            "tests/test_calc.py": "from calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
        },
    )
    client = RawClient(tmp_path / "server.log")
    try:
        client.start(root)
        ids = [client.new_id() for _ in CASES]
        start = len(client.received)
        client.write(b"".join(case.data(i) for case, i in zip(CASES, ids, strict=True)))
        assert client.status()["version"]
        got = answers(client, start, len(client.received))
        for case, msg_id in zip(CASES, ids, strict=True):
            if case.answer == "id":
                assert (msg_id, case.code) in got, case.name
        null_codes = sorted(code for answer_id, code in got if answer_id is None)
        assert null_codes == sorted(c.code for c in CASES if c.answer == NULL)  # type: ignore[type-var]

        test_uri = (root / "tests/test_calc.py").as_uri()
        client.notify("textDocument/didSave", {"textDocument": {"uri": test_uri}})
        published = client.wait_for(
            lambda m: (
                m.get("method") == "textDocument/publishDiagnostics"
                and m["params"]["uri"] == test_uri
                and bool(m["params"]["diagnostics"])
            ),
            "the diagnostics of the failing test",
        )
        assert published["params"]["diagnostics"][0]["range"]["start"]["line"] == 3
        assert_no_error_popup(client)
        kinds = {case.warning for case in CASES if case.warning}
        for kind in kinds:
            assert len([w for w in client.shown(WARNING) if kind in w]) >= 1, kind
    finally:
        assert client.close() == 0


def test_requests_after_shutdown_get_invalid_request(tmp_path: Path) -> None:
    client = RawClient(tmp_path / "server.log")
    client.start()
    assert client.call("shutdown") is None
    answer = client.response(
        client.request("workspace/executeCommand", status_request(0)["params"])
    )
    assert answer["error"]["code"] == INVALID_REQUEST
    assert client.response(client.request("shutdown"))["error"]["code"] == INVALID_REQUEST
    client.notify("textDocument/didOpen", {"textDocument": {"uri": NEVER_OPENED}})
    client.notify("exit")
    assert client.proc.wait(timeout=60) == 0  # exit after shutdown: a clean exit
    assert client.shown(ERROR) == []


def test_exit_without_shutdown_exits_1(tmp_path: Path) -> None:
    """LSP: exit ends the server with 0 when shutdown came first, else 1."""
    client = RawClient(tmp_path / "server.log")
    client.start()
    client.notify("exit")
    assert client.proc.wait(timeout=60) == 1


def test_requests_before_initialize_get_server_not_initialized(tmp_path: Path) -> None:
    client = RawClient(tmp_path / "server.log")
    try:
        answer = client.response(client.request("shutdown"))
        assert answer["error"]["code"] == SERVER_NOT_INITIALIZED
        client.notify("textDocument/didOpen", {"textDocument": {"uri": NEVER_OPENED}})
        client.start()  # and then the session goes as ever
        assert client.status()["version"]
        assert client.shown() == []
    finally:
        assert client.close() == 0


def test_an_unreadable_answer_to_the_servers_request_does_not_hang_it(tmp_path: Path) -> None:
    """The editor answers workspace/configuration with an error that is not an object: the
    server's settings refresh fails (instead of waiting for ever) and requests are served."""
    root = write_files(tmp_path / "ws", {"calc.py": "X = 1\n"})

    def answer(request: dict[str, Any]) -> bytes:
        if request["method"] == "workspace/configuration":
            return frame({"jsonrpc": "2.0", "id": request["id"], "error": "no settings"})
        return answer_as_an_editor(request)

    client = RawClient(tmp_path / "server.log", answer)
    try:
        client.start(root)
        assert client.status()["version"]  # it waits for the settings: they were given up
        assert_no_error_popup(client)
        assert [w for w in client.shown(WARNING) if "JSON-RPC" in w]
    finally:
        assert client.close() == 0


# -- through a real client ------------------------------------------------------------------


async def test_editor_mistakes_get_warnings_once_and_answers(
    editor: Editor, tmp_path: Path
) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            "calc.py": "def add(a, b):\n    return a - b\n",
            "tests/test_calc.py": "from calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
        },
    )
    await editor.start(root)
    never_opened = root / "notes.py"
    write_files(root, {"notes.py": "N = 1\n"})
    for version in (2, 3):  # a change to a buffer the editor never opened, twice
        editor.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(
                    uri=editor.uri(never_opened), version=version
                ),
                [types.TextDocumentContentChangeWholeDocument(text="N = 2\n")],
            )
        )
    # A position no document has (an off-by-one in a client): InvalidParams, not a crash.
    with attrs.validators.disabled():
        bad = types.Position(line=-1, character=0)
    for _ in range(2):
        with pytest.raises(JsonRpcException) as raised:
            await editor.client.text_document_code_action_async(
                types.CodeActionParams(
                    text_document=types.TextDocumentIdentifier(editor.uri(root / "calc.py")),
                    range=types.Range(start=bad, end=bad),
                    context=types.CodeActionContext(diagnostics=[]),
                )
            )
        assert raised.value.code == INVALID_PARAMS
    # The server goes on: the file it was told of is still read from disk, tests run on save.
    editor.save(root / "calc.py")
    await editor.wait_for_diagnostics(root / "tests/test_calc.py")
    await editor.wait_until(lambda: bool(editor.messages()), "the warning")
    assert {m.type for m in editor.client.messages} == {types.MessageType.Warning}
    assert len([m for m in editor.messages() if "had not opened" in m]) == 1, editor.messages()


@pytest.mark.parametrize("client_name", ["visual-studio-code", "neovim"])
async def test_requests_after_shutdown_through_a_real_client(client_name: str) -> None:
    config = ClientServerConfig(server_command=[sys.executable, "-m", "oci_lsp"])
    client = await config.start()
    try:
        await client.initialize_session(
            types.InitializeParams(capabilities=client_capabilities(client_name))
        )
        await client.shutdown_async(None)
        with pytest.raises(JsonRpcException) as raised:
            await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="oci.status", arguments=[])
            )
        assert raised.value.code == INVALID_REQUEST
        client.exit(None)
        server = client._server
        assert server is not None
        assert await asyncio.wait_for(server.wait(), 60) == 0
        assert client.messages == []
    finally:
        await client.stop()
