"""Shared fixtures: workspaces written to disk, and an editor that talks to the real server.

The server runs as a subprocess (`python -m oci_lsp`) and is driven by pytest-lsp's client
with the capability sets of VS Code and of Neovim, so every end-to-end test runs as both.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Union
from urllib.parse import unquote, urlsplit

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

# Models installed on this machine must not change what the tests see (nor be touched by them):
# the servers and CLIs the tests start inherit a cache directory of their own.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="oci-lsp-test-cache-")

CLIENTS = ["visual-studio-code", "neovim"]
WAIT = 60.0  # generous: CI machines are shared; tests wait for events, they never time them


def processes_with(marker: str) -> list[int]:
    """The pids of the processes whose command line holds marker (a process left behind)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as handle:
                    if marker.encode() in handle.read():
                        found.append(int(name))
            except OSError:
                pass
    return found


def write_files(root: Path, files: Mapping[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


class Editor:
    """What a user's editor does: open a folder, open and save files, show diagnostics."""

    def __init__(self, client: LanguageClient, capabilities: types.ClientCapabilities) -> None:
        self.client = client
        self.capabilities = capabilities
        self.roots: list[Path] = []
        self.versions: dict[str, int] = {}
        self.texts: dict[str, str] = {}  # the buffers of the open documents, by URI
        self.applied_edits: list[types.ApplyWorkspaceEditParams] = []
        # Clients spell URIs their own way (Path.as_uri() here, unless a test says otherwise).
        self.spellings: dict[Path, str] = {}
        # lsprotocol reads any code action with a `command` as a bare Command (its union hook
        # tests for the key, not for a string): read those the way editors do.
        converter = client.protocol._converter

        def code_action(value: Any, _: type) -> types.Command | types.CodeAction:
            if isinstance(value.get("command"), str):
                return converter.structure(value, types.Command)
            return converter.structure(value, types.CodeAction)

        converter.register_structure_hook(types.Command | types.CodeAction, code_action)
        converter.register_structure_hook(Union[types.Command, types.CodeAction], code_action)  # noqa: UP007

    async def start(
        self,
        *roots: Path,
        init_options: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> types.InitializeResult:
        self.roots = [r.resolve() for r in roots]
        if settings is not None:
            self.client.set_configuration(dict(settings), section="oci")
        result = await self.client.initialize_session(
            types.InitializeParams(
                capabilities=self.capabilities,
                root_uri=self.roots[0].as_uri() if self.roots else None,
                workspace_folders=[
                    types.WorkspaceFolder(uri=r.as_uri(), name=r.name) for r in self.roots
                ],
                initialization_options=dict(init_options) if init_options is not None else None,
            )
        )
        return result

    def uri(self, path: Path) -> str:
        """The URI this client uses for path."""
        return self.spellings.get(path.resolve()) or path.resolve().as_uri()

    def open(self, path: Path) -> None:
        self._open(self.uri(path), path.read_text(encoding="utf-8"))

    def _open(self, uri: str, text: str) -> None:
        self.versions[uri] = 1
        self.texts[uri] = text
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
            )
        )

    def text(self, path: Path) -> str:
        return self.texts[self.uri(path)]

    def change(self, path: Path, text: str) -> None:
        """Type into the buffer (didChange), without saving."""
        self._changed(self.uri(path), text)

    def _changed(self, uri: str, text: str) -> None:
        self.versions[uri] += 1
        self.texts[uri] = text
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
                [types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    def apply(self, params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        """workspace/applyEdit as an editor does it: a versioned edit of a buffer that moved
        on is refused; a closed file is opened first."""
        self.applied_edits.append(params)
        changes: list[tuple[str, int | None, Sequence[Any]]] = []
        for change in params.edit.document_changes or []:
            assert isinstance(change, types.TextDocumentEdit), change
            changes.append((change.text_document.uri, change.text_document.version, change.edits))
        for uri, edits in (params.edit.changes or {}).items():
            changes.append((uri, None, edits))
        for uri, version, edits in changes:
            if version is not None and self.versions.get(uri) != version:
                return types.ApplyWorkspaceEditResult(
                    applied=False, failure_reason=f"version {version} is not the buffer's"
                )
            if uri not in self.texts:
                self._open(uri, Path(unquote(urlsplit(uri).path)).read_text(encoding="utf-8"))
            self._changed(uri, _apply_text_edits(self.texts[uri], edits))
        return types.ApplyWorkspaceEditResult(applied=True)

    async def code_actions(
        self, path: Path, line: int, diagnostics: Sequence[types.Diagnostic] = ()
    ) -> list[types.CodeAction]:
        """textDocument/codeAction at the start of 0-based `line`, with these diagnostics."""
        position = types.Position(line=line, character=0)
        result = await self.client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(self.uri(path)),
                range=types.Range(start=position, end=position),
                context=types.CodeActionContext(diagnostics=list(diagnostics)),
            )
        )
        return [a for a in result or [] if isinstance(a, types.CodeAction)]

    def close(self, path: Path) -> None:
        self.client.text_document_did_close(
            types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(self.uri(path)))
        )

    def save(self, path: Path, text: str | None = None) -> None:
        """Write (when text is given) and send didSave, as an editor's save does."""
        uri = self.uri(path)
        if text is None and uri in self.texts:
            path.write_text(self.texts[uri], encoding="utf-8")  # the buffer, as editors save
        if text is not None:
            text = textwrap.dedent(text).lstrip("\n")
            path.write_text(text, encoding="utf-8")
            if uri in self.versions:
                self._changed(uri, text)
        self.client.text_document_did_save(
            types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(uri))
        )

    def diagnostics(self, path: Path) -> Sequence[types.Diagnostic]:
        return self.client.diagnostics.get(self.uri(path), [])

    async def wait_until(
        self, condition: Callable[[], bool], what: str, timeout: float = WAIT
    ) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.client.error is not None:
                raise AssertionError(f"server failed: {self.client.error}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.05)

    async def wait_for_diagnostics(
        self,
        path: Path,
        condition: Callable[[Sequence[types.Diagnostic]], bool] = bool,
        timeout: float = WAIT,
    ) -> Sequence[types.Diagnostic]:
        try:
            await self.wait_until(
                lambda: condition(self.diagnostics(path)), f"diagnostics on {path.name}", timeout
            )
        except AssertionError as exc:
            seen = [(d.range.start.line, d.code, d.message) for d in self.diagnostics(path)]
            raise AssertionError(f"{exc}; the last ones were {seen}") from None
        return self.diagnostics(path)

    async def command(self, name: str, *arguments: Any) -> Any:
        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=name, arguments=list(arguments))
        )

    async def run_tests(self, uri: str | None = None) -> Any:
        return await self.command("oci.runTests", {"uri": uri} if uri else {})

    async def wait_idle(self) -> dict[str, Any]:
        """Poll oci.status until no test run is going on; returns the last status."""
        deadline = time.monotonic() + WAIT
        while True:
            status: dict[str, Any] = await self.command("oci.status")
            if not status["tests"]["running"]:
                return status
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for the test run to end")
            await asyncio.sleep(0.1)

    def messages(self) -> list[str]:
        return [m.message for m in self.client.messages]


@contextlib.asynccontextmanager
async def editor_on(
    server_command: Sequence[str], env: Mapping[str, str] | None = None
) -> AsyncIterator[Editor]:
    """An editor (VS Code's capabilities) on a server started by this command line, in this
    environment: for tests about how the server was started."""
    config = ClientServerConfig(server_command=list(server_command), server_env=env)
    client = await config.start()
    editor = Editor(client, client_capabilities("visual-studio-code"))
    try:
        yield editor
    finally:
        await client.shutdown_session()
        await client.stop()


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[sys.executable, "-m", "oci_lsp", "-v"]),
    params=CLIENTS,
)
async def lsp(request: pytest.FixtureRequest, lsp_client: LanguageClient) -> Any:
    # pytest-lsp yields the client itself; the capability set rides along on it.
    lsp_client.oci_capabilities = client_capabilities(request.param)  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


@pytest.fixture
def editor(lsp: LanguageClient) -> Editor:
    client_editor = Editor(lsp, lsp.oci_capabilities)  # type: ignore[attr-defined]

    @lsp.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        return client_editor.apply(params)

    return client_editor


def _apply_text_edits(text: str, edits: Sequence[Any]) -> str:
    """TextEdits (UTF-16 positions) applied to text, last first."""
    lines = text.splitlines(keepends=True)

    def offset(position: types.Position) -> int:
        before = sum(len(line) for line in lines[: position.line])
        if position.line >= len(lines):
            return len(text)
        line = lines[position.line].encode("utf-16-le")[: 2 * position.character]
        return before + len(line.decode("utf-16-le"))

    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character))[::-1]:
        text = text[: offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end) :]
    return text


def progress_messages(client: LanguageClient) -> list[tuple[str, str | None]]:
    """Every progress value received, as (kind, title or message)."""
    out: list[tuple[str, str | None]] = []
    for values in client.progress_reports.values():
        for value in values:
            if isinstance(value, types.WorkDoneProgressBegin):
                out.append(("begin", value.title))
            elif isinstance(value, types.WorkDoneProgressReport):
                out.append(("report", value.message))
            else:
                out.append(("end", value.message))
    return out
