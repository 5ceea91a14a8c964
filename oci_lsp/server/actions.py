"""Code actions and the commands they carry (CONTRACT.md): generate a stub's body, fix a
function from a failing test (with a line of guidance, when the client can ask for one), and
apply the unverified code the user was offered.

`offer` answers textDocument/codeAction from the buffer's text and the diagnostics the client
sends back: no model, no test run, one pass over the lines at most. The commands run the
refinement loop (refine/loop.py) with progress, and end with one versioned edit of the lines
that changed, applied only to the function as it was when the work began.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lsprotocol import types

from oci_lsp.code.edits import LineEdit, line_edits, rebase
from oci_lsp.code.functions import enclosing_function, find_function, split_lines
from oci_lsp.code.scan import definitions
from oci_lsp.code.stubs import stub_at, stub_in
from oci_lsp.config import TOOL_NAMES, Settings, ToolsSettings
from oci_lsp.engine.backend import Backend, BackendError
from oci_lsp.refine.isolation import Sandbox, SandboxError
from oci_lsp.refine.loop import (
    Check,
    CheckOutcome,
    Conversations,
    Refiner,
    RefineResult,
    Target,
    TestPlan,
)
from oci_lsp.refine.prompts import related_sources
from oci_lsp.refine.tool_check import ToolCheck
from oci_lsp.server import finding_actions
from oci_lsp.server.progress import Progress
from oci_lsp.server.refine_progress import RefineProgress
from oci_lsp.testing.failures import FailureMark, Suspect
from oci_lsp.tools.findings import render_all
from oci_lsp.tools.runners import ToolCommand, find_tool

if TYPE_CHECKING:
    from oci_lsp.server.app import OciLanguageServer
    from oci_lsp.server.workspaces import Folder
    from oci_lsp.testing.session import TestSession

log = logging.getLogger(__name__)

COMMAND_GENERATE = "oci.generate"
COMMAND_FIX = "oci.fix"
COMMAND_FIX_WITH_INSTRUCTION = "oci.fixWithInstruction"  # registered by the editor clients
COMMAND_APPLY_UNVERIFIED = "oci.applyUnverified"
COMMAND_FIX_DIAGNOSTICS = finding_actions.COMMAND_FIX_DIAGNOSTICS
FIXABLE = ("test-failed", "test-error", "test-timeout")
ALTERNATIVES = 2  # "Fix `g` instead" actions: the suspects after the first

Mode = Literal["generate", "fix"]


@dataclass
class Work:
    """One generate or fix request on one function."""

    mode: Mode
    uri: str  # the document of the function
    path: str
    qualname: str
    folder: Folder  # its settings
    session: TestSession  # the tests of the function's project, run from its root
    original: str  # the module's text when the work began
    plan: TestPlan
    instruction: str | None = None
    # The failure's other suspects, shown to the model as context (a fix only).
    related: Sequence[Suspect] = ()
    # A fix of tools' findings (issue 16): what a candidate must clear before its tests,
    # and the task's goal in place of "so that its tests pass".
    check: Check | None = None
    goal: str | None = None

    @property
    def name(self) -> str:
        return self.qualname.rpartition(".")[2]

    @property
    def key(self) -> tuple[str, str]:
        return (self.path, self.qualname)


@dataclass
class Unverified:
    """Code no round verified, kept for the "(unverified)" action until used or stale."""

    work: Work
    source: str  # the module with the best candidate in place
    message: str


class CodeActions:
    def __init__(self, server: OciLanguageServer, path_of: Callable[[str], str | None]) -> None:
        self.server = server
        self.path_of = path_of
        self.conversations = Conversations()  # a second request on a function continues
        self.busy: set[tuple[str, str]] = set()
        self.unverified: dict[tuple[str, str], Unverified] = {}
        self.sandboxes: dict[tuple[str, str], Sandbox] = {}

    # -- textDocument/codeAction --------------------------------------------------------------

    def offer(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        path = self.path_of(uri)
        if path is None or not path.endswith((".py", ".pyi")):
            return []
        if self.server.folders.for_path(path) is None:
            return []  # outside the workspace: its tests cannot run
        document = self.server.workspace.get_text_document(uri)
        source = document.source
        line = params.range.start.line + 1
        actions: list[types.CodeAction] = []
        stub = stub_at(source, line)
        if stub is not None:
            title = f"Generate body of `{stub.definition.name}` (OpenCodeInterpreter)"
            argument = {"uri": uri, "position": _position(params.range.start)}
            actions.append(
                types.CodeAction(
                    title=title,
                    kind=types.CodeActionKind.RefactorRewrite,
                    command=types.Command(title, COMMAND_GENERATE, arguments=[argument]),
                )
            )
        for diagnostic in params.context.diagnostics:
            actions.extend(self._fixes_for(uri, diagnostic))
        for group in finding_actions.by_function(source, params.context.diagnostics):
            actions.extend(self._finding_fixes(uri, path, group))
        actions.extend(self._unverified_at(path, source, line))
        only = params.context.only
        if only:
            actions = [a for a in actions if a.kind and any(a.kind.startswith(k) for k in only)]
        return actions

    def _fixes_for(self, uri: str, diagnostic: types.Diagnostic) -> list[types.CodeAction]:
        data = diagnostic.data if isinstance(diagnostic.data, Mapping) else {}
        test, function = data.get("test"), data.get("function")
        if diagnostic.source != "oci-lsp" or data.get("kind") not in FIXABLE:
            return []
        if not isinstance(test, str) or not isinstance(function, str):
            return []  # no function under test was found: nothing to fix
        test_name = test.rpartition("::")[2]
        actions = self._fix_actions(diagnostic, uri, test, function, f"so `{test_name}` passes")
        # The next suspects of the ranking (issue 15): fixing one of them instead.
        others = [s for s in _suspect_names(data.get("suspects")) if s != function]
        for other in others[:ALTERNATIVES]:
            actions.extend(
                self._fix_actions(
                    diagnostic, uri, test, other, f"instead so `{test_name}` passes", other
                )
            )
        return actions

    def _fix_actions(
        self,
        diagnostic: types.Diagnostic,
        uri: str,
        test: str,
        function: str,
        what: str,
        named: str | None = None,
    ) -> list[types.CodeAction]:
        """ "Fix `f` <what>", and its variant with an instruction when the client asks for
        one; `named`: the suspect to fix, when it is not the top one."""
        name = function.rpartition(".")[2]
        argument = {"uri": uri, "test": test, **({"function": named} if named else {})}
        title = f"Fix `{name}` {what} (OpenCodeInterpreter)"
        actions = [
            types.CodeAction(
                title=title,
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[diagnostic],
                is_preferred=True if named is None else None,
                command=types.Command(title, COMMAND_FIX, arguments=[argument]),
            )
        ]
        if self.server.prompt_for_instruction:
            instead = " instead" if named else ""
            title = f"Fix `{name}`{instead} with an instruction… (OpenCodeInterpreter)"
            actions.append(
                types.CodeAction(
                    title=title,
                    kind=types.CodeActionKind.QuickFix,
                    diagnostics=[diagnostic],
                    command=types.Command(
                        title, COMMAND_FIX_WITH_INSTRUCTION, arguments=[argument]
                    ),
                )
            )
        return actions

    def _finding_fixes(
        self, uri: str, path: str, group: finding_actions.FunctionDiagnostics
    ) -> list[types.CodeAction]:
        """ "Fix `f`: CODE message" for the diagnostics of other tools in one function (and
        oci-lsp's syntax error), with its instruction variant."""
        commands = self.tool_commands(path, self._known_python(path))
        tools = [finding_actions.tool_of(d) for d in group.diagnostics]
        unverified = finding_actions.unverifiable(tools, lambda tool: tool in commands)
        argument = finding_actions.argument(uri, group)
        variants = [False, True] if self.server.prompt_for_instruction else [False]
        actions = []
        for instruction in variants:
            title = finding_actions.title(group, unverified, instruction)
            command = COMMAND_FIX_WITH_INSTRUCTION if instruction else COMMAND_FIX_DIAGNOSTICS
            actions.append(
                types.CodeAction(
                    title=title,
                    kind=types.CodeActionKind.QuickFix,
                    diagnostics=list(group.diagnostics),
                    command=types.Command(title, command, arguments=[argument]),
                )
            )
        return actions

    def tool_commands(self, path: str, python: str | None) -> dict[str, ToolCommand]:
        """The enabled tools found for path's folder (`tools.enabled`; all installed ones
        by default), by name."""
        folder = self.server.folders.for_path(path)
        settings = folder.settings.tools if folder is not None else ToolsSettings()
        names = TOOL_NAMES if settings.enabled is None else settings.enabled
        found = {name: find_tool(name, python, settings.override(name)) for name in names}
        return {name: command for name, command in found.items() if command is not None}

    def _known_python(self, path: str) -> str | None:
        session = self.server.session_for(path)
        if session is None:
            return None
        known = session.known_interpreter()
        return known.path if known is not None else None

    def _unverified_at(self, path: str, source: str, line: int) -> list[types.CodeAction]:
        actions = []
        for (kept_path, qualname), kept in self.unverified.items():
            if kept_path != path:
                continue
            # The scan, not a parse: this runs at every cursor move in that file.
            found = [d for d in definitions(source) if d.qualname == qualname]
            if not found or not found[-1].def_line <= line <= found[-1].end_line:
                continue
            title = (
                f"Apply the unverified code for `{kept.work.name}` (OpenCodeInterpreter)"
                " (unverified)"
            )
            argument = {"uri": kept.work.uri, "function": qualname}
            actions.append(
                types.CodeAction(
                    title=title,
                    kind=types.CodeActionKind.QuickFix,
                    command=types.Command(title, COMMAND_APPLY_UNVERIFIED, arguments=[argument]),
                )
            )
        return actions

    # -- the commands -------------------------------------------------------------------------

    async def generate(self, argument: Any) -> dict[str, Any]:
        uri = _text(argument, "uri")
        position = argument.get("position") if isinstance(argument, Mapping) else None
        path = self.path_of(uri) if uri else None
        if uri is None or path is None or not isinstance(position, Mapping):
            return self._refused("oci.generate needs {uri, position}")
        source = self.server.read(path)
        if source is None:
            return self._refused(f"cannot read {uri}")
        stub = stub_in(source, int(position.get("line", 0)) + 1)  # the whole text, to be sure
        if stub is None:
            return self._refused("there is no stub function to write at that position")
        folder = self.server.folders.for_path(path)
        session = self.server.session_for(path)
        if folder is None or session is None:
            return self._refused(f"{Path(path).name} is outside the workspace folders")
        qualname = stub.definition.qualname
        failing = _failing_tests_of(session, path, qualname, source)
        others = await session.tests_of(Path(path), stub.definition.name)
        plan = TestPlan(failing=failing, others=others)
        uri = self.server.uri_for(path)
        work = Work("generate", uri, path, qualname, folder, session, source, plan)
        return await self._run(work)

    async def fix(self, argument: Any) -> dict[str, Any]:
        uri, test = _text(argument, "uri"), _text(argument, "test")
        instruction = _text(argument, "instruction")
        chosen = _text(argument, "function")  # a suspect other than the top one (issue 15)
        path = self.path_of(uri) if uri else None
        if uri is None or test is None or path is None:
            return self._refused("oci.fix needs {uri, test}")
        folder = self.server.folders.for_path(path)
        session = self.server.session_for(path)
        if folder is None or session is None:
            return self._refused(f"{Path(path).name} is outside the workspace folders")
        located = (
            self._suspect_of_test(session, test, chosen)
            if chosen is not None
            else self._function_of_test(session, test)
        )
        if isinstance(located, str):
            return self._refused(located)
        if located is None:
            return self._refused(
                f"`{test}` is not failing now, or the function it tests is not known;"
                " run the tests again"
            )
        function_path, qualname, mark = located
        source = self.server.read(function_path)
        if source is None:
            return self._refused(f"cannot read {function_path}")
        name = qualname.rpartition(".")[2]
        others = await session.tests_of(Path(function_path), name)
        failing = [test]
        if chosen is not None:
            # The other failing tests that suspect it too are its failing tests as well.
            failing += _failing_tests_suspecting(session, function_path, chosen)
        plan = TestPlan(failing=list(dict.fromkeys(failing)), others=others, failure=mark.longrepr)
        dotted = chosen or mark.function
        work = Work(
            "fix",
            self.server.uri_for(function_path),
            function_path,
            qualname,
            folder,
            session,
            source,
            plan,
            instruction,
            related=[s for s in mark.suspects if s.dotted != dotted],
        )
        return await self._run(work)

    async def fix_diagnostics(self, argument: Any) -> dict[str, Any]:
        """`oci.fixDiagnostics {uri, function, diagnostics, instruction?}`: fix a function
        until the tools (and the parser) no longer report those diagnostics in it and its
        tests still pass (issue 16)."""
        uri, qualname = _text(argument, "uri"), _text(argument, "function")
        instruction = _text(argument, "instruction")
        path = self.path_of(uri) if uri else None
        if uri is None or path is None or qualname is None:
            return self._refused(f"{COMMAND_FIX_DIAGNOSTICS} needs {{uri, function, diagnostics}}")
        folder = self.server.folders.for_path(path)
        session = self.server.session_for(path)
        if folder is None or session is None:
            return self._refused(f"{Path(path).name} is outside the workspace folders")
        source = self.server.read(path)
        if source is None:
            return self._refused(f"cannot read {uri}")
        # The diagnostics' columns are the client's (UTF-16 unless negotiated otherwise).
        findings = finding_actions.findings_of(
            argument.get("diagnostics"), Path(path), source, self.server.workspace.position_codec
        )
        if findings is None:
            return self._refused(
                f"{COMMAND_FIX_DIAGNOSTICS}: `diagnostics` must be a list of LSP diagnostics"
            )
        if find_function(source, qualname) is None:
            name = qualname.rpartition(".")[2]
            return self._refused(f"`{name}` is no longer in {Path(path).name}")
        python = (await session.interpreter()).path
        enabled = self.tool_commands(path, python)
        wanted = {f.tool for f in findings}
        commands = {name: c for name, c in enabled.items() if name in wanted}
        # The tools' run on the function as it is goes on while the model writes: the first
        # candidate waits for it, the first token does not (bench/RESULTS.md, issue 16).
        check = _Preparing(
            ToolCheck.prepare(session.root, Path(path), qualname, source, findings, commands),
            lambda why: self._tell(
                f"oci-lsp: {why}; the fix is checked by the parser and the tests only"
            ),
        )
        others = await session.tests_of(Path(path), qualname.rpartition(".")[2])
        report = render_all(findings, session.root, {Path(path): source})
        plan = TestPlan(failing=[], others=others, failure=report)
        verifiers = list(commands) or ["the parser"]
        verb = "reports" if len(verifiers) == 1 else "report"
        goal = f"so that {_and(verifiers)} no longer {verb} the problems below in it"
        if others:
            goal += " and its tests still pass"
        work = Work(
            "fix",
            self.server.uri_for(path),
            path,
            qualname,
            folder,
            session,
            source,
            plan,
            instruction,
            check=check,
            goal=goal,
        )
        return await self._run(work)

    async def apply_unverified(self, argument: Any) -> dict[str, Any]:
        uri, qualname = _text(argument, "uri"), _text(argument, "function")
        path = self.path_of(uri) if uri else None
        kept = self.unverified.pop((path or "", qualname or ""), None)
        if kept is None:
            return self._refused("that unverified code is no longer available")
        applied, why = await self._apply(kept.work, kept.source, "unverified code")
        return {"applied": applied, "verified": False, "message": why}

    async def close(self) -> None:
        sandboxes, self.sandboxes = list(self.sandboxes.values()), {}
        for sandbox in sandboxes:
            await sandbox.close()

    # -- one piece of work --------------------------------------------------------------------

    async def _run(self, work: Work) -> dict[str, Any]:
        if work.key in self.busy:
            return self._refused(
                f"already working on `{work.name}`: wait for it, or cancel it from its progress"
            )
        self.busy.add(work.key)
        self.unverified.pop(work.key, None)
        cancel = asyncio.Event()
        title = f"{'Generating' if work.mode == 'generate' else 'Fixing'} {work.name}"
        progress = Progress(self.server, title, on_cancel=cancel.set)
        progress.begin("loading the model")
        try:
            result = await self._refine(work, progress, cancel)
            if result is None:
                progress.end("no model")
                return {"applied": False, "verified": False, "message": "no model"}
            if result.cancelled:
                progress.end("cancelled")
                return {"applied": False, "verified": False, "message": "cancelled"}
            return await self._conclude(work, result, progress)
        except asyncio.CancelledError:  # $/cancelRequest, or the client went away
            cancel.set()
            progress.end("cancelled")
            raise
        except (SandboxError, BackendError) as exc:
            progress.end("failed")
            return self._refused(str(exc))
        finally:
            self.busy.discard(work.key)
            if isinstance(work.check, _Preparing):
                work.check.cancel()  # a run no candidate waited for (no model, cancelled)

    async def _refine(
        self, work: Work, progress: Progress, cancel: asyncio.Event
    ) -> RefineResult | None:
        settings = work.folder.settings
        backend = await self._backend(settings, cancel)
        if backend is None:
            return None
        sandbox = await self._sandbox(work)
        refiner = Refiner.from_settings(
            backend, sandbox, settings, conversations=self.conversations
        )
        reporter = RefineProgress(progress, settings.refine.max_rounds, len(work.plan.selection))
        progress.report(reporter.starting(), stage=True)
        root = work.session.root
        related = await asyncio.to_thread(
            related_sources, work.related, root, self.server.read, [_dotted_of(work)]
        )
        return await refiner.refine(
            Target(root, Path(work.path), work.qualname, work.original),
            work.plan,
            mode=work.mode,
            instruction=work.instruction,
            on_event=reporter.event,
            on_text=reporter.text,
            cancel=cancel,
            related=related,
            check=work.check,
            goal=work.goal,
        )

    async def _backend(self, settings: Settings, cancel: asyncio.Event) -> Backend | None:
        """The loaded backend, or None after telling the user how to get a model."""
        try:
            backend = await self.server.models.backend(settings)
            load = asyncio.ensure_future(backend.load())
            stop = asyncio.ensure_future(cancel.wait())
            try:
                await asyncio.wait({load, stop}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
            if not load.done():
                load.cancel()
                return None
            load.result()
            return backend
        except BackendError as exc:
            self.server.window_show_message(
                types.ShowMessageParams(
                    # The engine's error says what to do (pull which model, or which setting).
                    type=types.MessageType.Error,
                    message=f"oci-lsp: no model to generate with: {exc}",
                )
            )
            return None

    async def _sandbox(self, work: Work) -> Sandbox:
        return await self.sandbox_for(work.session)

    async def sandbox_for(self, session: TestSession) -> Sandbox:
        """The sandbox of a project, in the interpreter its runs on save use: candidates of
        a fix and the changes that locate a fault (issue 15) share its warm worker."""
        root = session.root
        python = await session.interpreter()
        key = (str(root), python.path)
        if key not in self.sandboxes:
            self.sandboxes[key] = Sandbox(root, python.path, python_reason=python.reason)
        sandbox = self.sandboxes[key]
        # The candidates see the order and random values of the runs on save they fix.
        sandbox.seed = session.seed
        return sandbox

    async def _conclude(
        self, work: Work, result: RefineResult, progress: Progress
    ) -> dict[str, Any]:
        verify = work.folder.settings.refine.verify
        if result.source is None:
            progress.end("no usable code")
            self._tell(f"oci-lsp: `{work.name}`: {result.message}; nothing to apply")
            return {"applied": False, "verified": False, "message": result.message}
        if not result.verified and verify:
            self.unverified[work.key] = Unverified(work, result.source, result.message)
            progress.end("not verified")
            self._tell(
                f"oci-lsp: `{work.name}`: {result.message}. The best attempt is offered as"
                f' "Apply the unverified code for `{work.name}`" in the code actions.'
            )
            return {"applied": False, "verified": False, "message": result.message}
        applied, why = await self._apply(work, result.source, work.mode)
        progress.end(result.message if applied else "not applied")
        if applied and result.verified:
            winner = next(
                (c.outcome for r in result.rounds for c in r.candidates if c.passed), None
            )
            if winner is not None:
                work.session.record_verified(winner.reports)
                # Whole: the answer to the command comes after the cleared diagnostics.
                self.server.publisher.flush(whole=True)
        return {
            "applied": applied,
            "verified": result.verified,
            "message": result.message if applied else why,
            "rounds": len(result.rounds),
        }

    async def _apply(self, work: Work, source: str, label: str) -> tuple[bool, str]:
        """One versioned edit of the changed lines, if the function is as it was."""
        current = self.server.read(work.path)
        document = self.server.open_document(work.path)
        version = document.version if document is not None else None
        edits = line_edits(work.original, source)
        if current is None:
            return False, self._refused(f"cannot read {work.path} any more")["message"]
        if current != work.original:
            moved = (
                rebase(edits, work.original, current)
                if _same_function(work.original, current, work.qualname)
                else None
            )
            if moved is None:
                why = (
                    f"`{work.name}` changed while the {label} was being made; nothing applied"
                    " (run it again on the new text)"
                )
                self._tell(f"oci-lsp: {why}")
                return False, why
            edits, work.original = moved, current
        text_edits = [_text_edit(work.original, edit) for edit in edits]
        if not text_edits:
            return True, "nothing to change"
        caps = self.server.client_capabilities.workspace
        versioned = bool(caps and caps.workspace_edit and caps.workspace_edit.document_changes)
        edit = (
            types.WorkspaceEdit(
                document_changes=[
                    types.TextDocumentEdit(
                        types.OptionalVersionedTextDocumentIdentifier(work.uri, version),
                        list(text_edits),
                    )
                ]
            )
            if versioned
            else types.WorkspaceEdit(changes={work.uri: list(text_edits)})
        )
        answer = await self.server.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(edit=edit, label=f"OpenCodeInterpreter: {work.name}")
        )
        if not answer.applied:
            why = f"the editor did not apply the edit: {answer.failure_reason or 'no reason given'}"
            self._tell(f"oci-lsp: `{work.name}`: {why}")
            return False, why
        return True, "applied"

    def _function_of_test(
        self, session: TestSession, test: str
    ) -> tuple[str, str, FailureMark] | None:
        """(path, qualname, its mark) of the function a failing test points at."""
        for mark in session.marks_of_test(test):
            if not mark.function:
                continue
            source = self.server.read(mark.span.path)
            if source is None:
                continue
            found = enclosing_function(source, mark.span.line + 1)
            if found is not None and mark.function.endswith(found.qualname):
                return mark.span.path, found.qualname, mark
        return None

    def _suspect_of_test(
        self, session: TestSession, test: str, dotted: str
    ) -> tuple[str, str, FailureMark] | str | None:
        """(path, qualname, the test's mark) of one of a failing test's suspects, by its dotted
        name; why not (a line for the user) when it is no longer one, or moved away; None
        when the test is not failing now."""
        marks = session.marks_of_test(test)
        if not marks:
            return None
        name = dotted.rpartition(".")[2]
        for mark in marks:
            for suspect in mark.suspects:
                if suspect.dotted != dotted:
                    continue
                source = self.server.read(suspect.path)
                if source is None or find_function(source, suspect.qualname) is None:
                    return (
                        f"`{name}` is no longer in {Path(suspect.path).name}; run the tests again"
                    )
                return suspect.path, suspect.qualname, mark
        located = self._function_of_test(session, test)  # the top one, without a ranking
        if located is not None and located[2].function == dotted:
            return located
        return f"`{name}` is no longer a suspect of `{test}`; run the tests again"

    def _tell(self, message: str) -> None:
        log.info("%s", message)
        self.server.window_show_message(
            types.ShowMessageParams(type=types.MessageType.Info, message=message)
        )

    def _refused(self, why: str) -> dict[str, Any]:
        self._tell(f"oci-lsp: {why}")
        return {"applied": False, "verified": False, "message": why}


class _Preparing:
    """A ToolCheck whose run on the original goes on in the background; the first candidate
    waits for it. A tool that could not run is told once (the title promised its verdict)."""

    def __init__(self, prepare: Awaitable[ToolCheck], tell: Callable[[str], None]) -> None:
        self._task = asyncio.ensure_future(prepare)
        self._tell = tell
        self._told = False

    async def __call__(self, source: str) -> CheckOutcome:
        check = await self._task
        if not self._told:
            self._told = True
            for why in check.failed.values():
                self._tell(why)
        return await check(source)

    def cancel(self) -> None:
        self._task.cancel()


def _same_function(original: str, current: str, qualname: str) -> bool:
    before, after = find_function(original, qualname), find_function(current, qualname)
    if before is None or after is None:
        return False
    old_lines = split_lines(original)[before.def_line - 1 : before.end_line]
    new_lines = split_lines(current)[after.def_line - 1 : after.end_line]
    return old_lines == new_lines


def _suspect_names(value: Any) -> list[str]:
    """The dotted names in a diagnostic's `data.suspects`, as the client sent it back."""
    if not isinstance(value, list):
        return []
    names = [s.get("function") for s in value if isinstance(s, Mapping)]
    return [n for n in names if isinstance(n, str) and n]


def _failing_tests_suspecting(session: TestSession, path: str, dotted: str) -> list[str]:
    """The failing tests with a mark in `path` that rank `dotted` among their suspects."""
    return [
        test
        for test in session.failing_tests_at(path)
        if any(
            m.function == dotted or any(s.dotted == dotted for s in m.suspects)
            for m in session.marks_of_test(test)
        )
    ]


def _dotted_of(work: Work) -> str:
    """The dotted name of the function a piece of work is on, as the suspects spell it."""
    module = work.session.locator.index.module_for_path(Path(work.path))
    return f"{module or Path(work.path).stem}.{work.qualname}"


def _failing_tests_of(session: TestSession, path: str, qualname: str, source: str) -> list[str]:
    """The failing tests whose mark is on this function."""
    found = find_function(source, qualname)
    if found is None:
        return []
    tests = []
    for test in session.failing_tests_at(path):
        for mark in session.marks_of_test(test):
            if mark.span.path == path and mark.span.line + 1 == found.def_line:
                tests.append(test)
                break
    return tests


def _text_edit(original: str, edit: LineEdit) -> types.TextEdit:
    lines = original.splitlines(keepends=True)
    start = types.Position(line=edit.start, character=0)
    if edit.end < len(lines) or not lines or lines[-1].endswith(("\n", "\r")):
        end = types.Position(line=edit.end, character=0)
    else:  # up to the end of a last line without a line break
        last = lines[-1]
        end = types.Position(line=len(lines) - 1, character=len(last.encode("utf-16-le")) // 2)
    return types.TextEdit(range=types.Range(start=start, end=end), new_text=edit.text)


def _position(position: types.Position) -> dict[str, int]:
    return {"line": position.line, "character": position.character}


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _text(argument: Any, key: str) -> str | None:
    value = argument.get(key) if isinstance(argument, Mapping) else None
    return value if isinstance(value, str) and value else None
