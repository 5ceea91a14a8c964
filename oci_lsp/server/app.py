"""The language server: LSP methods in, calls to testing/ out, results back as protocol.

Each LSP method has one small handler here; what they call knows nothing of LSP, so the
headless `--fix` and the benchmarks use the same code.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from lsprotocol import types
from pygls.exceptions import FeatureNotificationError, FeatureRequestError, JsonRpcException
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument

from oci_lsp import __version__
from oci_lsp.engine.backend import BackendError
from oci_lsp.engine.device import cuda_device_count
from oci_lsp.engine.models import ModelManager
from oci_lsp.refine.mutant_runs import SandboxMutants
from oci_lsp.server.actions import (
    COMMAND_APPLY_UNVERIFIED,
    COMMAND_FIX,
    COMMAND_FIX_DIAGNOSTICS,
    COMMAND_GENERATE,
    CodeActions,
)
from oci_lsp.server.diagnostics import DiagnosticsPublisher
from oci_lsp.server.documents import ClientUris
from oci_lsp.server.progress import Progress
from oci_lsp.server.protocol import OciProtocol
from oci_lsp.server.syntax import SyntaxChecks
from oci_lsp.server.transport import CHUNK, StdinChunks, serve
from oci_lsp.server.workspaces import (
    Folder,
    Folders,
    SettingsSources,
    split_editor_interpreter,
)
from oci_lsp.testing.failures import FailureMark, source_lines
from oci_lsp.testing.projects import find_projects, is_project_marker
from oci_lsp.testing.runner import RunResult
from oci_lsp.testing.session import TestSession
from oci_lsp.testing.watch import SeenFiles, is_relevant, watch_roots

log = logging.getLogger(__name__)

CONFIG_SECTION = "oci"
# initializationOptions keys that describe the client, not settings.
CLIENT_OPTIONS = ("promptForInstruction",)
COMMAND_STATUS = "oci.status"
COMMAND_RUN_TESTS = "oci.runTests"
MAX_WARM_PROJECTS = 4


def _path_of(uri: str) -> str | None:
    """The real path of a file URI: pytest reports real paths (its cwd has symlinks resolved)."""
    path = to_fs_path(uri)
    if not path or "\0" in path:  # `file:///a%00b` names no file (realpath raises)
        return None
    return os.path.realpath(path)


class OciLanguageServer(LanguageServer):
    protocol: OciProtocol

    def __init__(self, command_line: Mapping[str, Any] | None = None) -> None:
        super().__init__("oci-lsp", __version__, protocol_cls=OciProtocol)
        self.exit_code = 0  # `exit` sets it: 0 after `shutdown`, else 1
        self.sources = SettingsSources(command_line=command_line)
        self.folders = Folders()
        self.prompt_for_instruction = False
        self.seen = SeenFiles()
        self.uris = ClientUris()
        self._shown: set[str] = set()
        self.session_events = _SessionEvents(self)
        self.models = ModelManager()  # one model per process, shared by every folder
        self.actions = CodeActions(self, _path_of)
        self.background: list[asyncio.Future[Any]] = []  # kept referenced until done
        self._watch_stop: asyncio.Event | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._file_cache: dict[str, tuple[tuple[int, int], str]] = {}
        # Set once the folders and their settings are known: a save before that waits.
        self.ready = asyncio.Event()
        self.publisher = DiagnosticsPublisher(
            publish=self._publish,
            marks_for_path=self.marks_for_path,
            line_of=self.line_of,
            codec=lambda: self.workspace.position_codec,
            uri_for=self.uri_for,
        )
        self.syntax = SyntaxChecks(self.read, self._python_for, self.publisher.syntax_error)

    async def _python_for(self, path: str) -> str | None:
        """The interpreter that runs the tests of path's project; None outside the folders."""
        await self.ready.wait()
        session = self.session_for(path)
        return (await session.interpreter()).path if session is not None else None

    # -- reading the workspace -------------------------------------------------------------

    def open_document(self, path: str) -> TextDocument | None:
        """The editor's buffer of path, when it has the file open."""
        uri = self.uris.open_uri(path)
        return self.workspace.get_text_document(uri) if uri is not None else None

    def _open_document_text(self, path: str) -> str | None:
        document = self.open_document(path)
        return str(document.source) if document is not None else None

    def read(self, path: str) -> str | None:
        """The text of a file as the user sees it: the editor's buffer, else the disk."""
        text = self._open_document_text(path)
        if text is not None:
            return text
        try:
            st = os.stat(path)
        except OSError:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        cached = self._file_cache.get(path)
        if cached and cached[0] == stamp:
            return cached[1]
        try:
            with open(path, "rb") as handle:
                text = handle.read().decode("utf-8", errors="replace")
        except OSError:
            return None
        self._file_cache[path] = (stamp, text)
        return text

    def line_of(self, path: str, line: int) -> str | None:
        text = self.read(path)
        if text is None:
            return None
        lines = source_lines(text)
        return lines[line] if 0 <= line < len(lines) else None

    def uri_for(self, path: str) -> str:
        return self.uris.uri_for(path)

    def marks_for_path(self, path: str) -> list[FailureMark]:
        marks: list[FailureMark] = []
        for folder in self.folders:
            for session in folder.all_sessions():
                marks.extend(session.marks_for_path(path))
        return marks

    # -- talking to the client --------------------------------------------------------------

    def _publish(self, uri: str, diagnostics: list[types.Diagnostic]) -> None:
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics)
        )

    def show_once(self, message: str, kind: types.MessageType = types.MessageType.Warning) -> None:
        """Tell the user once; the same message on every save would be noise."""
        if message in self._shown:
            return
        self._shown.add(message)
        log.warning("%s", message)
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    # -- the connection ------------------------------------------------------------------------

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """pygls's, with our read loop (transport.py): malformed messages get their JSON-RPC
        answer, and `exit` sets the process's exit code (pygls's own loop drops it)."""
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))

        async def main() -> None:
            await serve(StdinChunks(stdin or sys.stdin.buffer).read, self.protocol)

        try:
            asyncio.run(main())
        except SystemExit as exc:  # pygls's `exit` handler
            self.exit_code = exc.code if isinstance(exc.code, int) else 1
        except BrokenPipeError:
            log.error("the editor closed the connection")
        except KeyboardInterrupt:
            pass
        finally:
            self.shutdown()  # type: ignore[no-untyped-call]

    def start_tcp(self, host: str, port: int) -> None:
        """pygls's, with our read loop (one editor at a time, as pygls's)."""

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.protocol.set_writer(writer)
            await serve(lambda: reader.read(CHUNK), self.protocol)
            self.shutdown()  # type: ignore[no-untyped-call]

        async def listen() -> None:
            self._server = server = await asyncio.start_server(connection, host, port)
            async with server:
                await server.serve_forever()

        try:
            asyncio.run(listen())
        except SystemExit as exc:
            self.exit_code = exc.code if isinstance(exc.code, int) else 1
        except (asyncio.CancelledError, KeyboardInterrupt):
            pass

    def report_server_error(self, error: Exception, source: Any) -> None:
        """pygls shows every error as `Error in server: <exception>`: here a request's error
        is its answer (pygls logged it), and a notification's is logged in full and told once
        per notification, in words."""
        if source is FeatureRequestError:
            return
        data = error.data if isinstance(error, JsonRpcException) else None
        trace = "".join(data.get("traceback", [])) if isinstance(data, dict) else ""
        log.error("%s: %s\n%s", getattr(source, "__name__", source), error, trace)
        if source is FeatureNotificationError:
            method = self.protocol.current_notification() or "a notification"
            name = str(error).split(":", 1)[0] or type(error).__name__
            line = f"oci-lsp: {method} failed ({name}); the server goes on (details in the log)"
            self.protocol.notices.tell(f"failed:{method}", line, f"{method}: {error}")

    # -- folders and settings ---------------------------------------------------------------

    async def add_folder(self, uri: str) -> Folder | None:
        path = _path_of(uri)
        if path is None or not os.path.isdir(path):
            log.warning("workspace folder %s is not a local directory; ignored", uri)
            return None
        folder = Folder(root=Path(path).resolve(), uri=uri)
        self.folders.add(folder)
        self._resolve(folder)
        # A monorepo's projects each get a session, found before the first save is served.
        for root in await asyncio.to_thread(find_projects, folder.root):
            self.add_project(folder, root)
        return folder

    def add_project(self, folder: Folder, root: Path) -> TestSession:
        """A session for the project at root, whose tests run from there."""
        session = TestSession(root, lambda: folder.settings.tests, self.session_events, self.read)
        session.editor_python = folder.editor_interpreter
        session.mutants = SandboxMutants(lambda: self.actions.sandbox_for(session))
        folder.add_session(session)
        session.start()
        if len(folder.sessions) > 1:
            log.info("project %s in %s has its own test session", root, folder.root)
        return session

    def session_for(self, path: str) -> TestSession | None:
        """The test session of the project holding path (a new project gets one)."""
        folder = self.folders.for_path(path)
        if folder is None:
            return None
        if is_project_marker(Path(path)):
            parent = Path(path).parent
            if parent not in folder.sessions and parent in find_projects(folder.root):
                self.add_project(folder, parent).warm()
        return folder.session_for(path)

    def remove_folder(self, uri: str) -> None:
        folder = self.folders.remove(uri)
        if folder is None:
            return
        paths: set[str] = set()
        for session in folder.all_sessions():
            session.close()
            paths |= session.paths_with_marks()
        folder.sessions.clear()
        for path in paths:
            self.publisher.publish_now(path)

    def _resolve(self, folder: Folder) -> None:
        before = (folder.settings, folder.editor_interpreter)
        for problem in folder.resolve(self.sources):
            self.show_once(str(problem))
        changed_interpreter = before[1] != folder.editor_interpreter
        for session in folder.all_sessions():
            session.editor_python = folder.editor_interpreter
            if before[0].tests != folder.settings.tests or changed_interpreter:
                session.enable()  # a changed interpreter or command deserves a new try
                if self.ready.is_set():
                    session.warm()

    async def refresh_client_settings(self) -> None:
        """Ask the client for the `oci` section of each folder (after `initialized` only)."""
        workspace_caps = self.client_capabilities.workspace
        if not (workspace_caps and workspace_caps.configuration):
            for folder in self.folders:
                self._resolve(folder)
            return
        folders = list(self.folders)
        try:
            results = await self.workspace_configuration_async(
                types.ConfigurationParams(
                    items=[
                        types.ConfigurationItem(scope_uri=f.uri, section=CONFIG_SECTION)
                        for f in folders
                    ]
                )
            )
        except Exception as exc:
            log.warning("workspace/configuration failed: %s", exc)
            results = [None] * len(folders)
        for folder, value in zip(folders, results, strict=False):
            if value is not None and not isinstance(value, Mapping):
                self.show_once(
                    f"oci-lsp: the `{CONFIG_SECTION}` settings must be an object; ignored"
                )
                value = None
            folder.client_settings = value
            self._resolve(folder)

    def warm_all(self) -> None:
        for folder in self.folders:
            sessions = folder.all_sessions()
            # A standby interpreter is one idle process per project: a monorepo of many
            # projects warms each one when a file of it is opened (did_open) instead.
            if len(sessions) <= MAX_WARM_PROJECTS:
                for session in sessions:
                    session.warm()

    def preload_model(self) -> None:
        """`generation.preload`: load the model in the background, with progress, at startup."""
        folders = list(self.folders)
        settings = folders[0].settings if folders else None
        if settings is None or not settings.generation.preload:
            return
        task: asyncio.Task[None] | None = None

        def cancel() -> None:
            if task is not None:
                task.cancel()

        progress = Progress(self, "Loading model", cancel)

        async def load() -> None:
            progress.begin(settings.model if settings.backend == "ctranslate2" else "")
            try:
                await self.models.preload(settings)
            except BackendError as exc:
                progress.end("failed")
                self.show_once(f"oci-lsp: the model could not be loaded: {exc}")
                return
            except asyncio.CancelledError:
                progress.end("cancelled")
                raise
            progress.end("ready")

        task = asyncio.ensure_future(load())
        self.background.append(task)

    def start_watching(self) -> None:
        if self._watch_stop is not None:
            self._watch_stop.set()
        self._watch_stop = asyncio.Event()
        roots = [f.root for f in self.folders]
        self._watch_task = asyncio.ensure_future(
            watch_roots(roots, self.files_changed_on_disk, self._watch_stop)
        )

    def stop(self) -> None:
        if self._watch_stop is not None:
            self._watch_stop.set()
        for folder in self.folders:
            for session in folder.all_sessions():
                session.close()

    # -- what triggers runs -----------------------------------------------------------------

    def file_saved(self, path: str) -> None:
        folder = self.folders.for_path(path)
        session = self.session_for(path)
        if folder is None or session is None:
            return
        self.seen.saved(Path(path))
        if Path(path).name == "pyproject.toml" and Path(path).parent == folder.root:
            self._resolve(folder)
        if not is_relevant(Path(path)):
            return
        session.file_changed(Path(path))
        if folder.settings.tests.on_save:
            session.request_run({Path(path)})

    def files_changed_on_disk(self, paths: set[Path]) -> None:
        by_session: dict[Path, tuple[Folder, TestSession, set[Path]]] = {}
        for path in paths:
            folder = self.folders.for_path(str(path))
            session = self.session_for(str(path))
            if folder is None or session is None or not self.seen.is_new(path):
                continue
            session.file_changed(path)
            if path.name == "pyproject.toml" and path.parent == folder.root:
                self._resolve(folder)
            by_session.setdefault(session.root, (folder, session, set()))[2].add(path)
        for folder, session, changed in by_session.values():
            log.info("changed outside the editor: %s", ", ".join(map(str, sorted(changed))))
            if folder.settings.tests.on_save:
                session.request_run(changed)

    # -- oci.status ----------------------------------------------------------------------------

    async def status(self, uri: str | None = None) -> dict[str, Any]:
        """The model and the tests of the folder holding `uri` (a multi-root window has one
        model per folder's settings), or of the first folder and every folder's tests; the
        interpreter that runs that (first) folder's tests, and why."""
        folders = list(self.folders)
        path = _path_of(uri) if uri else None
        folder = self.folders.for_path(path) if path else None
        if folder is not None:
            folders = [folder]
        settings = folders[0].settings if folders else None
        sessions = [s for f in folders for s in f.all_sessions()]
        model = self.models.status(settings) if settings else None
        # The interpreter of the file's own project (a monorepo's projects each have theirs).
        own = self.session_for(path) if path else None
        first = own or (sessions[0] if sessions else None)
        python = (await first.interpreter()).to_json() if first else None
        tests: dict[str, Any] = {
            # A run is over once its last diagnostics are sent (in turns, after a big run).
            "running": any(s.progress.running for s in sessions) or self.publisher.ending,
            "failed": sum(s.failing_count() for s in sessions),
            "passed": sum(s.passed_count() for s in sessions),
            "python": python,
        }
        # An addition to CONTRACT.md, there only when a project's last whole run left
        # something out of its collection (symlink loops, unreadable directories).
        skipped = [f"{s.root.name}: {s.skipped}" for s in sessions if s.skipped]
        if skipped:
            tests["skipped"] = skipped
        return {
            "version": __version__,
            "backend": settings.backend if settings else None,
            "model": {
                "id": model.id if model else None,
                "state": model.state if model else "not-loaded",
                "device": model.device if model else None,
                "computeType": model.compute_type if model else None,
                "error": model.error if model else None,
            },
            "tests": tests,
        }


class _SessionEvents:
    """A session's events, turned into diagnostics, progress and messages."""

    def __init__(self, server: OciLanguageServer) -> None:
        self.server = server
        self.progress: dict[str, Progress] = {}  # by folder root
        self.announced: set[str] = set()  # the folders whose run has said what it changed

    def run_started(self, session: TestSession) -> None:
        key = str(session.root)
        self.announced.discard(key)
        old = self.progress.pop(key, None)
        if old is not None:
            old.end("superseded by a newer run")
        progress = Progress(self.server, "Running tests", on_cancel=session.cancel)
        self.progress[key] = progress
        self.server.publisher.run_started()
        progress.begin(f"{session.root.name}: collecting")

    def run_progress(self, session: TestSession) -> None:
        progress = self.progress.get(str(session.root))
        if progress is None:
            return
        p = session.progress
        if p.changes and str(session.root) not in self.announced:
            # What the run changed in the project's pytest options: in this run's progress,
            # and once as a message (the same notes every save would be noise).
            self.announced.add(str(session.root))
            changes = "; ".join(p.changes)
            progress.report(f"{session.root.name}: {changes}", stage=True)
            self.server.show_once(
                f"oci-lsp: the tests of {session.root.name} run with: {changes}",
                types.MessageType.Info,
            )
            return
        if p.phase == "locate" and p.mutating:  # then small changes of the suspects
            names = ", ".join(f"`{name}`" for name in p.mutating)
            progress.report(f"Locating the fault: trying small changes of {names}", stage=True)
            return
        if p.phase == "locate":  # the failing tests' files again, recorded (issue 15)
            count = f" {p.recording} tests" if p.recording else " the failing tests' files"
            progress.report(f"Locating the fault: recording{count}", stage=True)
            return
        percentage = int(100 * p.done / p.total) if p.total else None
        failed = f", {p.failed} failed" if p.failed else ""
        # The affected tests run first, then the whole suite in its own order (session.py).
        phase = "affected tests: " if p.phase == "affected" else ""
        progress.report(f"{phase}{p.done}/{p.total} tests{failed}", percentage)

    def marks_changed(self, session: TestSession, paths: set[str]) -> None:
        self.server.publisher.changed(paths)

    def run_finished(self, session: TestSession, result: RunResult | None) -> None:
        progress = self.progress.pop(str(session.root), None)
        if progress is None:
            self.server.publisher.run_finished()
            return
        p = session.progress
        end = f"{p.done} tests run, {p.failed} failed"
        if p.stopped:
            end += f"; stopped early: {p.stopped}"
        if p.skipped:
            end += f"; {p.skipped}"
        if session.seed is not None:
            end += f"; pytest-randomly seed {session.seed}"
        # The end comes after the run's last diagnostics: a client that waits for it (or a
        # user who reads it) finds them there.
        self.server.publisher.run_finished(then=lambda: progress.end(end))

    def problem(self, session: TestSession, message: str) -> None:
        self.server.show_once(f"oci-lsp: {message}")


def create_server(command_line: Mapping[str, Any] | None = None) -> OciLanguageServer:
    server = OciLanguageServer(command_line)

    @server.feature(types.INITIALIZE)
    def initialize(ls: OciLanguageServer, params: types.InitializeParams) -> None:
        options = params.initialization_options
        if options is not None and not isinstance(options, Mapping):
            ls.show_once("oci-lsp: initializationOptions must be an object; ignored")
            options = None
        options = dict(options or {})
        ls.prompt_for_instruction = bool(options.get("promptForInstruction", False))
        for key in CLIENT_OPTIONS:
            options.pop(key, None)
        ls.sources.init_options, ls.sources.editor_interpreter = split_editor_interpreter(options)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: OciLanguageServer, params: types.InitializedParams) -> None:
        for folder_uri in _initial_folder_uris(ls):
            await ls.add_folder(folder_uri)
        await ls.refresh_client_settings()
        ls.ready.set()
        ls.warm_all()
        # Importing CTranslate2 to count GPUs takes tens of ms: not on the loop, not on demand.
        ls.background.append(asyncio.ensure_future(asyncio.to_thread(cuda_device_count)))
        ls.preload_model()
        ls.start_watching()

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: OciLanguageServer, params: None) -> None:
        ls.stop()
        await ls.actions.close()
        await ls.syntax.close()
        await ls.models.close()

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[
                types.CodeActionKind.QuickFix,
                types.CodeActionKind.RefactorRewrite,
            ]
        ),
    )
    def code_action(
        ls: OciLanguageServer, params: types.CodeActionParams
    ) -> list[types.CodeAction] | None:
        try:
            return ls.actions.offer(params) or None
        except Exception:  # one bad buffer must not cost the editor its other actions
            log.exception("code actions for %s", params.text_document.uri)
            return None

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: OciLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        path = _path_of(params.text_document.uri)
        if path is None:
            return
        ls.uris.opened(path, params.text_document.uri)
        session = ls.session_for(path) if ls.ready.is_set() else None
        if session is not None:
            session.warm()
        if ls.marks_for_path(path):
            ls.publisher.publish_now(path, force=True)
        ls.syntax.opened_or_saved(path)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: OciLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        path = _path_of(params.text_document.uri)
        if path is not None:
            ls.uris.closed(path)
            ls.syntax.closed(path)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: OciLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        # (pygls has applied the change.) A locate run in flight ranks lines of the text on
        # disk, which no longer matches this one: it stops (TestSession.edited).
        path = _path_of(params.text_document.uri)
        folder = ls.folders.for_path(path) if path is not None and path.endswith(".py") else None
        session = folder.session_for(path) if folder is not None and path is not None else None
        if session is not None:
            session.edited()
        if path is not None:
            ls.syntax.edited(path)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: OciLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
        await ls.ready.wait()
        path = _path_of(params.text_document.uri)
        if path is not None:
            ls.file_saved(path)
            ls.syntax.opened_or_saved(path)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: OciLanguageServer, params: types.DidChangeConfigurationParams
    ) -> None:
        await ls.refresh_client_settings()

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    async def did_change_folders(
        ls: OciLanguageServer, params: types.DidChangeWorkspaceFoldersParams
    ) -> None:
        for removed in params.event.removed:
            ls.remove_folder(removed.uri)
        for added in params.event.added:
            await ls.add_folder(added.uri)
        await ls.refresh_client_settings()
        ls.warm_all()
        ls.start_watching()

    @server.command(COMMAND_GENERATE)
    async def generate(ls: OciLanguageServer, *args: Any) -> dict[str, Any]:
        await ls.ready.wait()
        return await ls.actions.generate(args[0] if args else None)

    @server.command(COMMAND_FIX)
    async def fix(ls: OciLanguageServer, *args: Any) -> dict[str, Any]:
        await ls.ready.wait()
        return await ls.actions.fix(args[0] if args else None)

    @server.command(COMMAND_FIX_DIAGNOSTICS)
    async def fix_diagnostics(ls: OciLanguageServer, *args: Any) -> dict[str, Any]:
        await ls.ready.wait()
        return await ls.actions.fix_diagnostics(args[0] if args else None)

    @server.command(COMMAND_APPLY_UNVERIFIED)
    async def apply_unverified(ls: OciLanguageServer, *args: Any) -> dict[str, Any]:
        await ls.ready.wait()
        return await ls.actions.apply_unverified(args[0] if args else None)

    @server.command(COMMAND_STATUS)
    async def status(ls: OciLanguageServer, *args: Any) -> dict[str, Any]:
        await ls.ready.wait()  # the folders' settings (and interpreters) are known
        argument = args[0] if args else {}
        uri = argument.get("uri") if isinstance(argument, Mapping) else None
        return await ls.status(uri if isinstance(uri, str) else None)

    @server.command(COMMAND_RUN_TESTS)
    async def run_tests(ls: OciLanguageServer, *args: Any) -> dict[str, Any]:
        await ls.ready.wait()
        argument = args[0] if args else {}
        uri = argument.get("uri") if isinstance(argument, Mapping) else None
        path = _path_of(uri) if isinstance(uri, str) else None
        if path:
            sessions = [s for s in [ls.session_for(path)] if s is not None]
        else:
            sessions = [s for f in ls.folders for s in f.all_sessions()]
        for session in sessions:
            if session.disabled:
                ls.show_once(f"oci-lsp: {session.disabled}")
            session.request_run({Path(path)} if path else None)
        try:
            await asyncio.sleep(0.3)  # past the debounce, so the run has started
            for session in sessions:
                await session.wait_idle()
            await ls.publisher.ended()  # the answer comes after the run's diagnostics
        except asyncio.CancelledError:
            for session in sessions:
                session.cancel()
            raise
        result = (await ls.status())["tests"]
        return {"failed": result["failed"], "passed": result["passed"]}

    return server


def _initial_folder_uris(ls: OciLanguageServer) -> list[str]:
    folders = ls.workspace.folders
    if folders:
        return [f.uri for f in folders.values()]
    if ls.workspace.root_uri:
        return [ls.workspace.root_uri]
    return []
