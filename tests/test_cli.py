"""The command line: --version, --tcp, logging kept off stdout, bad options."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from unittest.mock import ANY

from oci_lsp import __version__
from tests.raw_client import read_message

SERVER = [sys.executable, "-m", "oci_lsp"]


def frame(message: dict[str, object]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def read_frame(stream: socket.socket | object) -> dict[str, object]:
    data = b""
    recv = stream.recv if isinstance(stream, socket.socket) else stream.read1  # type: ignore[attr-defined]
    while b"\r\n\r\n" not in data:
        chunk = recv(65536)
        assert chunk, f"connection closed; got {data!r}"
        data += chunk
    header, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in header.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    while len(rest) < length:
        rest += recv(65536)
    return json.loads(rest[:length])  # type: ignore[no-any-return]


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"processId": None, "rootUri": None, "capabilities": {}},
}


def test_version() -> None:
    out = subprocess.run([*SERVER, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"oci-lsp {__version__}"


def test_bad_option_exits_2_with_a_message() -> None:
    out = subprocess.run([*SERVER, "--tcp", "notaport"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "expected [HOST:]PORT" in out.stderr


def test_stdio_keeps_logs_off_stdout(tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    proc = subprocess.Popen(
        [*SERVER, "-vv", "--log-file", str(log_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(frame(INITIALIZE))
    proc.stdin.flush()
    reply = read_frame(proc.stdout)
    assert reply["id"] == 1
    assert reply["result"]["serverInfo"] == {"name": "oci-lsp", "version": __version__}  # type: ignore[index]
    proc.stdin.write(frame({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}))
    proc.stdin.write(frame({"jsonrpc": "2.0", "method": "exit"}))
    proc.stdin.close()
    rest = proc.stdout.read()
    proc.wait(timeout=30)
    # Everything on stdout is protocol: the shutdown reply, nothing else.
    assert rest.startswith(b"Content-Length:") and rest.count(b"Content-Length:") == 1
    assert "initialize" in log_file.read_text()


def tcp_server() -> tuple[subprocess.Popen[bytes], socket.socket]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([*SERVER, "--tcp", str(port)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while True:
        try:
            return proc, socket.create_connection(("127.0.0.1", port), timeout=30)
        except OSError:
            assert time.monotonic() < deadline, "the server never listened"
            time.sleep(0.1)


def test_tcp(tmp_path: Path) -> None:
    proc, conn = tcp_server()
    try:
        with conn:
            conn.sendall(frame(INITIALIZE))
            reply = read_frame(conn)
            assert reply["result"]["serverInfo"]["name"] == "oci-lsp"  # type: ignore[index]
    finally:
        proc.kill()
        proc.wait()


def test_tcp_reads_past_a_malformed_message() -> None:
    """Over TCP as over stdio (tests/test_protocol_e2e.py): an answer, a Warning, and on."""
    proc, conn = tcp_server()
    try:
        with conn, conn.makefile("rb") as stream:
            conn.sendall(b"Content-Length: 5\r\n\r\n{oops" + frame(INITIALIZE))
            received = [read_message(stream) for _ in range(3)]
            assert {"jsonrpc": "2.0", "id": None, "error": ANY} in received
            parse_error = next(m for m in received if m and "error" in m)
            assert parse_error["error"]["code"] == -32700
            shown = [m["params"] for m in received if m and m.get("method") == "window/showMessage"]
            assert [p["type"] for p in shown] == [2] and "not JSON" in shown[0]["message"]
            initialized = next(m for m in received if m and m.get("id") == 1)
            assert initialized["result"]["serverInfo"]["name"] == "oci-lsp"
    finally:
        proc.kill()
        proc.wait()
