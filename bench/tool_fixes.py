"""Benchmark: verified quick-fixes of mypy's and ruff's findings on the HumanEval workspace.

The workspace (issue 16): the HumanEval problems whose entry point carries type annotations
(mypy's default configuration checks only the bodies of annotated functions: 60 of the 164),
a module per problem (`solutions/he_NNN.py`: the prompt and the canonical body) and a test
module that runs its `check` (tests/human_eval_workspace.py), with `[tool.mypy] files =
["solutions"]` and ruff's `F` rules in pyproject.toml. Into each entry point goes one defect
its test cannot see, put at the top of the body; the kinds:

- return-value: `if len(str(ARG)) < 0: return None` in a function that returns no Optional;
- assignment: a typed local given a literal of another type, `_limit: int = "0"`;
- arg-type: `if len(str(ARG)) < 0: print(len(0))`, a call with a wrong argument type;
- attr-defined: `if len(str(ARG)) < 0: ARG.seeded_attribute()`;
- operator: `if len(str(ARG)) < 0: print(ARG + None)`;
- F841 (ruff): `width = len(str(ARG))`, an unused variable the canonical solution has not.

Each problem takes the kinds in turn from its own (the Nth problem the Nth kind) and keeps the
first that holds: mypy (ruff for F841) then reports exactly one finding in the module, of that
code, inside the entry point, the other tool nothing, and the problem's test still passes.
Problems whose canonical module mypy or ruff already flags, and those no kind holds for, are
dropped and counted.

Measured, same machine, one run:

- through the real server (`python -m oci_lsp`, a pygls client): per seeded function, the
  finding as mypy (or ruff) reports it on the seeded workspace, handed in as that tool's LSP
  diagnostic (source "mypy" / "Ruff") in textDocument/codeAction; the quick-fix's command
  `oci.fixDiagnostics` sent; the time from sending it to the client's workspace/applyEdit. A
  scripted OpenAI-compatible model answers at once: the canonical module when the request's
  last user turn carries the tool's report of the seeded finding (`path:line:col: mypy [code]
  message`), the seeded module otherwise. Fixed and verified: the server applied it as
  verified, and on a copy with the applied texts written in, mypy and ruff report nothing in
  the module and the test passes (the text is also compared with the canonical module);
- against the tool's own run: `python -m mypy -O json --cache-dir C solutions/he_NNN.py` with
  the server's mypy cache dir C, warm (the second of two runs) and cold (an empty cache dir),
  or `ruff check` for F841, plus the tests' own run (`python -m pytest tests/test_he_NNN.py`);
- `oci-lsp --fix --tools mypy,ruff` on a fresh copy of the seeded workspace: wall time, and
  the share of the seeded findings fixed (verified the same way).

Aim (issue 16): the action at most 1.5x the tool's run plus the tests' run.

    .venv/bin/python bench/tool_fixes.py --json bench/out/tool_fixes.json
    .venv/bin/python bench/tool_fixes.py --limit 6   # a quick run, one problem of each kind
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pytest_lsp import client_capabilities

from bench.output import save_json
from tests.human_eval_workspace import load_problems, test_module
from tests.openai_server import Reply, ScriptedOpenAIServer

PYPROJECT = "[tool.mypy]\nfiles = ['solutions']\n\n[tool.ruff.lint]\nselect = ['F']\n"
ROUNDS = 3
PYTEST = (sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider")
WAIT = 300.0  # one fix, at most: the measurement failed past it


@dataclass(frozen=True)
class Kind:
    code: str  # what the tool reports
    tool: str  # "mypy" or "ruff"
    lines: Callable[[str], list[str]]  # the lines put at the top of the body, given ARG
    name: str = ""  # a name the lines bind, which the canonical body must not use


KINDS = (
    Kind("return-value", "mypy", lambda a: [f"if len(str({a})) < 0:", "    return None"]),
    # A leading underscore keeps ruff's F841 quiet: one finding, mypy's.
    Kind("assignment", "mypy", lambda a: ['_limit: int = "0"'], name="_limit"),
    Kind("arg-type", "mypy", lambda a: [f"if len(str({a})) < 0:", "    print(len(0))"]),
    Kind(
        "attr-defined",
        "mypy",
        lambda a: [f"if len(str({a})) < 0:", f"    {a}.seeded_attribute()"],
    ),
    Kind("operator", "mypy", lambda a: [f"if len(str({a})) < 0:", f"    print({a} + None)"]),
    Kind("F841", "ruff", lambda a: [f"width = len(str({a}))"], name="width"),
)


@dataclass(frozen=True)
class Found:
    """One finding as the tool wrote it: lines 1-based, columns 0-based, end exclusive."""

    tool: str
    code: str
    message: str
    line: int
    column: int
    end_line: int
    end_column: int

    def key(self) -> tuple[str, str, str]:
        return (self.tool, self.code, self.message)

    def report_line(self, relative: str) -> str:
        """The first line of the tool's report as the feedback turn must carry it."""
        tag = f"mypy [{self.code}]" if self.tool == "mypy" else f"{self.tool} {self.code}"
        return f"{relative}:{self.line}:{self.column + 1}: {tag} {self.message}"

    def diagnostic(self, style: str) -> types.Diagnostic:
        """As a language server publishes it. mypy: "code", the code in its own field (the
        issue's tests, mypy's JSON), or "message", the code at the end of the message and none
        in the field, one character wide (pylsp-mypy, from mypy's text output). Ruff's server
        sends an unused variable as a Warning tagged unnecessary."""
        start = types.Position(self.line - 1, self.column)
        if self.tool == "ruff":
            return types.Diagnostic(
                range=types.Range(start, types.Position(self.end_line - 1, self.end_column)),
                message=self.message,
                severity=types.DiagnosticSeverity.Warning,
                source="Ruff",
                code=self.code,
                tags=[types.DiagnosticTag.Unnecessary],
            )
        if style == "message":
            return types.Diagnostic(
                range=types.Range(start, types.Position(self.line - 1, self.column + 1)),
                message=f"{self.message}  [{self.code}]",
                severity=types.DiagnosticSeverity.Error,
                source="mypy",
            )
        return types.Diagnostic(
            range=types.Range(start, types.Position(self.end_line - 1, self.end_column)),
            message=self.message,
            severity=types.DiagnosticSeverity.Error,
            source="mypy",
            code=self.code,
        )


@dataclass
class Seeded:
    task: int
    entry: str
    kind: Kind
    canonical: str  # the module's text
    seeded: str
    finding: Found | None = None  # the tool's report of the seed on the seeded workspace
    style: str = "code"  # how the diagnostic carries mypy's code (Found.diagnostic)

    @property
    def relative(self) -> str:
        return f"solutions/he_{self.task:03d}.py"

    @property
    def test(self) -> str:
        return f"tests/test_he_{self.task:03d}.py"


@dataclass
class Checked:
    """What the tools and the tests say about a workspace, by module."""

    mypy: dict[str, list[Found]] = field(default_factory=dict)
    ruff: dict[str, list[Found]] = field(default_factory=dict)
    passed: dict[str, bool] = field(default_factory=dict)  # by test module

    def findings(self, relative: str) -> list[Found]:
        return self.mypy.get(relative, []) + self.ruff.get(relative, [])


# -- the workspace ---------------------------------------------------------------------------


def annotated(rows: dict[int, dict[str, str]]) -> list[int]:
    """The problems whose entry point has an annotation: mypy checks their bodies."""
    out = []
    for task, row in sorted(rows.items()):
        function = _entry_def(row["prompt"] + row["canonical_solution"], row["entry_point"])
        arguments = function.args.posonlyargs + function.args.args
        if function.returns is not None or any(a.annotation is not None for a in arguments):
            out.append(task)
    return out


def _entry_def(source: str, entry: str) -> ast.FunctionDef:
    return next(
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef) and node.name == entry
    )


def seed(row: dict[str, str], kind: Kind) -> str | None:
    """The module with the kind's lines at the top of the entry point's body (the prompt ends
    with its docstring), or None when the kind cannot go there."""
    canonical = row["prompt"] + row["canonical_solution"]
    function = _entry_def(canonical, row["entry_point"])
    arguments = function.args.posonlyargs + function.args.args
    if not arguments or (kind.name and kind.name in canonical):
        return None
    body = row["canonical_solution"].splitlines()
    first = next((line for line in body if line.strip()), "")
    indent = first[: len(first) - len(first.lstrip())]
    if not indent:
        return None
    lines = "".join(f"{indent}{line}\n" for line in kind.lines(arguments[0].arg))
    return row["prompt"] + lines + row["canonical_solution"]


def write_workspace(root: Path, modules: dict[int, str], rows: dict[int, dict[str, str]]) -> None:
    (root / "solutions").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (root / "solutions" / "__init__.py").write_text("", encoding="utf-8")
    for task, text in modules.items():
        (root / "solutions" / f"he_{task:03d}.py").write_text(text, encoding="utf-8")
        (root / "tests" / f"test_he_{task:03d}.py").write_text(
            test_module(task, rows[task]), encoding="utf-8"
        )


def _ruff() -> str:
    beside = Path(sys.executable).parent / "ruff"
    found = str(beside) if beside.exists() else shutil.which("ruff")
    if found is None:
        raise SystemExit("ruff is not installed beside this interpreter nor on PATH")
    return found


def check(root: Path, cache: Path) -> Checked:
    """mypy and ruff on the whole workspace (its configuration), and its tests."""
    out = Checked()
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "-O", "json", "--cache-dir", str(cache)],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if mypy.returncode not in (0, 1):
        raise SystemExit(f"mypy failed ({mypy.returncode}): {mypy.stderr[-500:]}")
    for line in mypy.stdout.splitlines():
        if not line.strip():
            continue  # a clean run prints an empty line
        item = json.loads(line)
        if item["severity"] != "error":
            continue  # notes belong to the error before them
        found = Found(
            "mypy",
            item["code"],
            item["message"],
            item["line"],
            item["column"],
            item["end_line"],
            item["end_column"],
        )
        out.mypy.setdefault(item["file"], []).append(found)
    ruff = subprocess.run(
        [_ruff(), "check", "--output-format", "json", "--no-cache", "."],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if ruff.returncode not in (0, 1):
        raise SystemExit(f"ruff failed ({ruff.returncode}): {ruff.stderr[-500:]}")
    for item in json.loads(ruff.stdout):
        relative = Path(item["filename"]).resolve().relative_to(root.resolve()).as_posix()
        found = Found(
            "ruff",
            item["code"],
            item["message"],
            item["location"]["row"],
            item["location"]["column"] - 1,
            item["end_location"]["row"],
            item["end_location"]["column"] - 1,
        )
        out.ruff.setdefault(relative, []).append(found)
    out.passed = _test_outcomes(root)
    return out


def _test_outcomes(root: Path) -> dict[str, bool]:
    report = root.parent / f"{root.name}-junit.xml"
    subprocess.run(
        [*PYTEST, "-p", "no:randomly", f"--junitxml={report}", "tests"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    passed: dict[str, bool] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").replace(".", "/") + ".py"
        bad = any(child.tag in ("failure", "error", "skipped") for child in case)
        passed[module] = passed.get(module, True) and not bad
    report.unlink()
    return passed


def _inside_entry(text: str, entry: str, found: Found) -> bool:
    function = _entry_def(text, entry)
    return function.lineno <= found.line <= (function.end_lineno or function.lineno)


def choose_seeds(
    base: Path, tasks: list[int], rows: dict[int, dict[str, str]]
) -> tuple[list[Seeded], dict[int, str], Counter[str]]:
    """A seed per problem: (the seeded problems, why each dropped one was dropped, how many
    seeds each kind failed to hold before the one that held)."""
    canonical = {t: rows[t]["prompt"] + rows[t]["canonical_solution"] for t in tasks}
    cache = base / "seed-cache"
    root = base / "clean"
    write_workspace(root, canonical, rows)
    clean = check(root, cache)
    dropped: dict[int, str] = {}
    for task in tasks:
        relative = f"solutions/he_{task:03d}.py"
        if clean.findings(relative):
            codes = ", ".join(f"{f.tool} {f.code}" for f in clean.findings(relative))
            dropped[task] = f"the canonical module is flagged ({codes})"
        elif not clean.passed.get(f"tests/test_he_{task:03d}.py"):
            dropped[task] = "the canonical solution fails its test"
    candidates = [t for t in tasks if t not in dropped]
    holds: dict[tuple[int, str], str] = {}  # (task, kind) -> the seeded text, when it holds
    for kind in KINDS:
        texts = {t: seed(rows[t], kind) for t in candidates}
        modules = {t: text for t, text in texts.items() if text is not None}
        root = base / f"seed-{kind.code}"
        write_workspace(root, modules, rows)
        seeded = check(root, cache)
        for task, text in modules.items():
            relative = f"solutions/he_{task:03d}.py"
            mine = seeded.mypy if kind.tool == "mypy" else seeded.ruff
            other = seeded.ruff if kind.tool == "mypy" else seeded.mypy
            found = mine.get(relative, [])
            if (
                len(found) == 1
                and found[0].code == kind.code
                and not other.get(relative)
                and _inside_entry(text, rows[task]["entry_point"], found[0])
                and seeded.passed.get(f"tests/test_he_{task:03d}.py")
            ):
                holds[(task, kind.code)] = text
        shutil.rmtree(root)
    out: list[Seeded] = []
    missed: Counter[str] = Counter()
    for index, task in enumerate(candidates):
        order = KINDS[index % len(KINDS) :] + KINDS[: index % len(KINDS)]
        for kind in order:
            held = holds.get((task, kind.code))
            if held is not None:
                out.append(Seeded(task, rows[task]["entry_point"], kind, canonical[task], held))
                break
            missed[kind.code] += 1
        else:
            dropped[task] = "no kind of seed holds"
    return out, dropped, missed


# -- the scripted model ----------------------------------------------------------------------


def fence(module: str) -> str:
    return f"```python\n{module}```"


def scripted_model(
    seeded: Sequence[Seeded], asked: Counter[int], right: Counter[int], controls: dict[int, str]
) -> Callable[[dict[str, Any]], Reply]:
    """The canonical module when the last user turn carries the tool's report of the seed,
    the seeded module otherwise; a problem in `controls` gets that text whatever it is asked.
    Counts the requests per problem and the right answers."""
    by_file = {f"he_{s.task:03d}.py": s for s in seeded}

    def reply(body: dict[str, Any]) -> Reply:
        messages = body["messages"]
        task, last = str(messages[0]["content"]), str(messages[-1]["content"])
        for name, problem in by_file.items():
            if name in task and f"`{problem.entry}`" in task:
                assert problem.finding is not None
                asked[problem.task] += 1
                if problem.task in controls:
                    return Reply(fence(controls[problem.task]))
                if last.startswith("Execution result:") and (
                    problem.finding.report_line(problem.relative) in last
                ):
                    right[problem.task] += 1
                    return Reply(fence(problem.canonical))
                return Reply(fence(problem.seeded))
        return Reply("I do not know.")

    return reply


def silenced(problem: Seeded) -> str:
    """The seeded module with the tool told to look away on the seed's line."""
    assert problem.finding is not None
    lines = problem.seeded.splitlines(keepends=True)
    comment = (
        f"  # type: ignore[{problem.kind.code}]"
        if problem.kind.tool == "mypy"
        else f"  # noqa: {problem.kind.code}"
    )
    index = problem.finding.line - 1
    lines[index] = lines[index].rstrip("\n") + comment + "\n"
    return "".join(lines)


# -- the server, through a real client -------------------------------------------------------


@dataclass
class FixRun:
    task: int
    title: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    to_edit: float | None = None  # seconds from executeCommand to workspace/applyEdit
    to_answer: float = 0.0  # to the command's answer
    text: str | None = None  # the buffer after the edit
    error: str = ""
    requests: int = 0  # the model's requests for it
    right_answers: int = 0  # of which it answered with the canonical module


class Client:
    """An editor's side: open, code actions, the command, workspace/applyEdit applied to the
    buffer (and didChange, as editors do)."""

    def __init__(self) -> None:
        self.client = LanguageClient("oci-bench", "1")
        self.texts: dict[str, str] = {}
        self.versions: dict[str, int] = {}
        self.edited: dict[str, float] = {}  # uri -> when the edit arrived
        self.messages: list[str] = []
        client = self.client
        # lsprotocol reads a code action with a `command` as a bare Command (NOTES.md): read
        # it as editors do.
        converter = client.protocol._converter

        def code_action(value: Any, _: type) -> types.Command | types.CodeAction:
            if isinstance(value.get("command"), str):
                return converter.structure(value, types.Command)
            return converter.structure(value, types.CodeAction)

        converter.register_structure_hook(types.Command | types.CodeAction, code_action)
        converter.register_structure_hook(Union[types.Command, types.CodeAction], code_action)  # noqa: UP007

        def apply(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            arrived = time.perf_counter()
            changes: list[tuple[str, Sequence[Any]]] = []
            for change in params.edit.document_changes or []:
                assert isinstance(change, types.TextDocumentEdit), change
                changes.append((change.text_document.uri, change.edits))
            changes += list((params.edit.changes or {}).items())
            for uri, edits in changes:
                self.edited[uri] = arrived
                self.change(uri, apply_text_edits(self.texts[uri], edits))
            return types.ApplyWorkspaceEditResult(applied=True)

        def show(params: types.ShowMessageParams) -> None:
            self.messages.append(params.message)

        def create(params: types.WorkDoneProgressCreateParams) -> None:
            return None

        def progress(params: types.ProgressParams) -> None:
            return None

        def configuration(params: types.ConfigurationParams) -> list[Any]:
            return [None for _ in params.items]

        # pygls's `feature` has no return type: registered by a call, not as a decorator.
        for name, handler in (
            (types.WORKSPACE_APPLY_EDIT, apply),
            (types.WINDOW_SHOW_MESSAGE, show),
            (types.WINDOW_WORK_DONE_PROGRESS_CREATE, create),
            (types.PROGRESS, progress),
            (types.WORKSPACE_CONFIGURATION, configuration),
        ):
            client.feature(name)(handler)

    async def start(
        self, root: Path, options: dict[str, Any], env: dict[str, str], log: Path
    ) -> None:
        # The log to a file: nothing reads the server's stderr pipe.
        await self.client.start_io(sys.executable, "-m", "oci_lsp", "--log-file", str(log), env=env)
        await self.client.initialize_async(
            types.InitializeParams(
                capabilities=client_capabilities("visual-studio-code"),
                root_uri=root.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
                initialization_options=options,
            )
        )
        self.client.initialized(types.InitializedParams())

    async def command(self, name: str, *arguments: Any) -> Any:
        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=name, arguments=list(arguments))
        )

    async def wait_idle(self) -> None:
        deadline = time.monotonic() + WAIT
        while (await self.command("oci.status"))["tests"]["running"]:
            if time.monotonic() > deadline:
                raise SystemExit("the server's test run did not end")
            await asyncio.sleep(0.1)

    def open(self, uri: str, text: str) -> None:
        self.texts[uri], self.versions[uri] = text, 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", 1, text))
        )

    def change(self, uri: str, text: str) -> None:
        self.texts[uri] = text
        self.versions[uri] += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
                [types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    def close(self, uri: str) -> None:
        self.client.text_document_did_close(
            types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri))
        )

    async def actions(self, uri: str, diagnostic: types.Diagnostic) -> list[types.CodeAction]:
        result = await self.client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri),
                range=diagnostic.range,
                context=types.CodeActionContext(diagnostics=[diagnostic]),
            )
        )
        return [a for a in result or [] if isinstance(a, types.CodeAction)]

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await cast(Callable[[], Awaitable[None]], self.client.stop)()  # pygls: no types


def apply_text_edits(text: str, edits: Sequence[Any]) -> str:
    """TextEdits (UTF-16 positions) applied to text, the last first."""
    lines = text.splitlines(keepends=True)

    def offset(position: types.Position) -> int:
        if position.line >= len(lines):
            return len(text)
        before = sum(len(line) for line in lines[: position.line])
        units = lines[position.line].encode("utf-16-le")[: 2 * position.character]
        return before + len(units.decode("utf-16-le"))

    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character))[::-1]:
        text = text[: offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end) :]
    return text


async def fix_one(client: Client, root: Path, problem: Seeded) -> FixRun:
    """The quick-fix on the seed's diagnostic, as an editor runs it."""
    assert problem.finding is not None
    run = FixRun(problem.task)
    uri = (root / problem.relative).as_uri()
    client.open(uri, problem.seeded)
    try:
        diagnostic = problem.finding.diagnostic(problem.style)
        offered = [
            a
            for a in await client.actions(uri, diagnostic)
            if a.title.startswith(f"Fix `{problem.entry}`: ")  # not the instruction variant
        ]
        if len(offered) != 1 or offered[0].command is None:
            run.error = f"offered {[a.title for a in offered]}"
            return run
        action = offered[0]
        assert action.command is not None
        run.title = action.title
        started = time.perf_counter()
        try:
            run.result = await asyncio.wait_for(
                client.command(action.command.command, *(action.command.arguments or [])), WAIT
            )
        except TimeoutError:
            run.error = f"no answer in {WAIT:g} s"
        except Exception as exc:  # the server's error answer: a failure to report, not to stop
            run.error = f"{type(exc).__name__}: {exc}"
        run.to_answer = time.perf_counter() - started
        if uri in client.edited:
            run.to_edit = client.edited.pop(uri) - started
            run.text = client.texts[uri]
    finally:
        client.close(uri)
    return run


# -- the tools' and the tests' own runs ------------------------------------------------------


def timed(argv: Sequence[str], root: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        list(argv), cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    return time.perf_counter() - started


def own_runs(root: Path, problem: Seeded, cache: Path | None, scratch: Path) -> dict[str, float]:
    """The tool on the module, warm (the second of two runs in the server's cache dir) and
    cold (an empty cache dir), and the test module, each a fresh process."""
    if problem.kind.tool == "mypy":
        assert cache is not None
        mypy = [sys.executable, "-m", "mypy", "-O", "json", "--cache-dir"]
        changed = timed([*mypy, str(cache), problem.relative], root)
        warm = timed([*mypy, str(cache), problem.relative], root)
        cold_cache = scratch / f"cold-{problem.task}"
        cold = timed([*mypy, str(cold_cache), problem.relative], root)
        shutil.rmtree(cold_cache, ignore_errors=True)
    else:  # ruff keeps no cache here (the server runs it with --no-cache)
        ruff = [_ruff(), "check", "--output-format", "json", "--no-cache", problem.relative]
        changed = cold = timed(ruff, root)
        warm = timed(ruff, root)
    tests = timed([*PYTEST, problem.test], root)
    return {"tool_changed": changed, "tool_warm": warm, "tool_cold": cold, "tests": tests}


# -- verification of what was written -------------------------------------------------------


def verify(
    base: Path,
    name: str,
    texts: dict[int, str],
    seeded: Sequence[Seeded],
    rows: dict[int, dict[str, str]],
) -> dict[int, str]:
    """Each fixed module written into a copy of the seeded workspace, mypy, ruff and the tests
    run once: by problem, "" when the module is clean and its test passes, else why not."""
    root = base / f"verify-{name}"
    write_workspace(root, {p.task: texts.get(p.task, p.seeded) for p in seeded}, rows)
    checked = check(root, base / f"verify-cache-{name}")
    out: dict[int, str] = {}
    for problem in seeded:
        if problem.task not in texts:
            continue
        left = checked.findings(problem.relative)
        why = [f"{f.tool} {f.code} at line {f.line}: {f.message}" for f in left]
        if not checked.passed.get(problem.test):
            why.append("its test fails")
        out[problem.task] = "; ".join(why)
    shutil.rmtree(root)
    return out


# -- the whole run ---------------------------------------------------------------------------


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


async def through_server(
    base: Path,
    root: Path,
    seeded: list[Seeded],
    env: dict[str, str],
    results: dict[str, Any],
) -> tuple[list[FixRun], dict[int, dict[str, float]]]:
    asked: Counter[int] = Counter()
    right: Counter[int] = Counter()
    runs: list[FixRun] = []
    own: dict[int, dict[str, float]] = {}
    cache_base = Path(env["XDG_CACHE_HOME"]) / "oci-lsp" / "mypy"
    controls: dict[int, str] = {}
    with ScriptedOpenAIServer(scripted_model(seeded, asked, right, controls)) as model:
        client = Client()
        options = {
            "backend": "openai",
            "openai": {"baseUrl": model.base_url, "model": "test-model"},
            "refine": {"candidates": 1, "maxRounds": ROUNDS},
            "tests": {"python": sys.executable},
        }
        await client.start(root, options, env, base / "server.log")
        await client.wait_idle()
        try:
            for problem in seeded:
                run = await fix_one(client, root, problem)
                run.requests, run.right_answers = asked[problem.task], right[problem.task]
                runs.append(run)
                caches = sorted(cache_base.glob("*")) if cache_base.is_dir() else []
                if problem.kind.tool == "mypy" and len(caches) != 1:
                    raise SystemExit(f"the server's mypy cache dirs: {caches}")
                own[problem.task] = own_runs(
                    root, problem, caches[0] if caches else None, base / "scratch"
                )
                edit = f"{run.to_edit:.2f} s" if run.to_edit is not None else "no edit"
                print(
                    f"he_{problem.task:03d} {problem.kind.code}: {edit};"
                    f" {problem.kind.tool} warm {own[problem.task]['tool_warm']:.2f} s, cold"
                    f" {own[problem.task]['tool_cold']:.2f} s, tests"
                    f" {own[problem.task]['tests']:.2f} s; {run.result.get('message', run.error)}",
                    file=sys.stderr,
                )
            results["controls"] = await control_runs(client, root, seeded, asked, controls)
        finally:
            results["server_messages"] = client.messages
            await client.stop()
    return runs, own


async def control_runs(
    client: Client,
    root: Path,
    seeded: list[Seeded],
    asked: Counter[int],
    controls: dict[int, str],
) -> list[dict[str, Any]]:
    """The first problem of each kind again, with a model that never fixes it: it answers the
    seeded module (its test passes: only the tool can refuse it), then the seeded module with
    the tool told to look away (`# type: ignore[CODE]`, `# noqa: CODE`). Neither may be
    applied."""
    firsts = {p.kind.code: p for p in reversed(seeded)}
    out = []
    for problem in sorted(firsts.values(), key=lambda p: p.task):
        for name, text in (("seeded", problem.seeded), ("silenced", silenced(problem))):
            controls[problem.task] = text
            before = asked[problem.task]
            run = await fix_one(client, root, problem)
            del controls[problem.task]
            out.append(
                {
                    "task": problem.task,
                    "kind": problem.kind.code,
                    "control": name,
                    "applied": bool(run.result.get("applied")) or run.to_edit is not None,
                    "message": run.result.get("message", run.error),
                    "requests": asked[problem.task] - before,
                }
            )
    return out


def headless(
    base: Path, seeded: list[Seeded], rows: dict[int, dict[str, str]], env: dict[str, str]
) -> tuple[float, int, dict[str, Any], dict[int, str], Counter[int]]:
    """`oci-lsp --fix --tools mypy,ruff` on a fresh copy: (seconds, exit code, its JSON
    report, the fixed modules' texts by problem, the requests per problem)."""
    root = base / "headless"
    write_workspace(root, {p.task: p.seeded for p in seeded}, rows)
    report = base / "headless.json"
    asked: Counter[int] = Counter()
    with ScriptedOpenAIServer(scripted_model(seeded, asked, Counter(), {})) as model:
        started = time.perf_counter()
        done = subprocess.run(
            [
                *(sys.executable, "-m", "oci_lsp", "--fix", str(root), *model.cli_options()),
                *("--tools", "mypy,ruff", "--rounds", str(ROUNDS), "--candidates", "1"),
                *("--json", str(report)),
            ],
            capture_output=True,
            text=True,
            env={**env, "CI": "1"},
            check=False,
        )
        seconds = time.perf_counter() - started
    if not report.exists():
        raise SystemExit(f"--fix wrote no report ({done.returncode}): {done.stderr[-2000:]}")
    data = json.loads(report.read_text(encoding="utf-8"))
    texts = {}
    for problem in seeded:
        text = (root / problem.relative).read_text(encoding="utf-8")
        if text != problem.seeded:
            texts[problem.task] = text
    shutil.rmtree(root)
    return seconds, done.returncode, data, texts, asked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="the first N problems only")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the workspaces")
    args = parser.parse_args()
    started = time.perf_counter()
    base = Path(tempfile.mkdtemp(prefix="oci-bench-tools-"))
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(base / "cache"),  # the server's mypy cache, found below
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",  # a plain workspace venv
    }
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # the direct runs too
    rows = load_problems()
    tasks = annotated(rows)
    if args.limit is not None:
        tasks = tasks[: args.limit]
    results: dict[str, Any] = {
        "problems": len(rows),
        "annotated": len(tasks),
        "cpus": len(os.sched_getaffinity(0)),
        "load_before": _load(),
    }
    try:
        seeded, dropped, missed = choose_seeds(base, tasks, rows)
        root = base / "seeded"
        write_workspace(root, {p.task: p.seeded for p in seeded}, rows)
        findings = check(root, base / "seeded-cache")  # mypy and ruff, once
        for problem in seeded:
            [problem.finding] = findings.findings(problem.relative)
        for index, problem in enumerate(p for p in seeded if p.kind.tool == "mypy"):
            problem.style = ("code", "message")[index % 2]
        results["dropped"] = {f"HumanEval/{t}": why for t, why in sorted(dropped.items())}
        results["kinds"] = dict(Counter(p.kind.code for p in seeded))
        results["kind_misses"] = dict(missed)
        runs, own = asyncio.run(through_server(base, root, seeded, env, results))
        results["load_after_server"] = _load()
        applied = {r.task: r.text for r in runs if r.text is not None}
        independent = verify(base, "server", applied, seeded, rows)
        seconds, code, report, written, headless_asked = headless(base, seeded, rows, env)
        results["load_after_headless"] = _load()
        headless_verified = verify(base, "headless", written, seeded, rows)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"workspaces kept in {base}", file=sys.stderr)

    by_task = {p.task: p for p in seeded}
    rows_out: list[dict[str, Any]] = []
    failures: list[str] = []
    for run in runs:
        problem = by_task[run.task]
        ok = bool(run.result.get("applied") and run.result.get("verified"))
        why_not = independent.get(run.task, "no edit arrived")
        fixed = ok and run.to_edit is not None and why_not == ""
        row = {
            "task": run.task,
            "kind": problem.kind.code,
            "style": problem.style if problem.kind.tool == "mypy" else "ruff",
            "title": run.title,
            "fixed_and_verified": fixed,
            "canonical_text": run.text == problem.canonical,
            "to_edit": run.to_edit,
            "to_answer": run.to_answer,
            "requests": run.requests,
            "right_answers": run.right_answers,
            "message": run.result.get("message", run.error),
            "independent": why_not,
            **own[run.task],
        }
        rows_out.append(row)
        if not fixed:
            failures.append(
                f"HumanEval/{run.task} ({problem.kind.code}): server: {row['message']!r};"
                f" requests {row['requests']}, right answers {row['right_answers']};"
                f" independent check: {why_not or 'clean'}"
            )
    results["server"] = rows_out
    timed_rows = [r for r in rows_out if r["fixed_and_verified"]]
    ratios: dict[tuple[str, str], list[float]] = {}
    for r in timed_rows:
        tool = "ruff" if r["kind"] == "F841" else "mypy"
        for which in ("warm", "cold"):
            ratio = r["to_edit"] / (r[f"tool_{which}"] + r["tests"])
            ratios.setdefault(("all", which), []).append(ratio)
            ratios.setdefault((tool, which), []).append(ratio)
    results["ratios"] = {f"{tool} {which}": v for (tool, which), v in ratios.items()}
    groups = report.get("groups", [])
    seeded_groups = {
        t: [
            g
            for g in groups
            if g.get("tool") == by_task[t].kind.tool
            and g.get("path") == by_task[t].relative
            and g.get("function") == by_task[t].entry
        ]
        for t in by_task
    }
    headless_fixed = [
        t
        for t, found in seeded_groups.items()
        if found
        and all(g["status"] == "fixed" for g in found)
        and headless_verified.get(t, "not written") == ""
    ]
    results["headless"] = {
        "seconds": seconds,
        "exit_code": code,
        "counts": report.get("counts"),
        "fixed": sorted(headless_fixed),
        "requests": dict(headless_asked),
        "other_groups": [
            g for g in groups if not any(g is s for found in seeded_groups.values() for s in found)
        ],
        "unfixable": report.get("unfixable"),
        "independent": {str(t): why for t, why in headless_verified.items()},
    }
    results["seconds_total"] = time.perf_counter() - started

    mypy_count = sum(1 for p in seeded if p.kind.tool == "mypy")
    print(
        f"HumanEval: {len(tasks)} problems with annotated entry points of {len(rows)};"
        f" {len(seeded)} seeded ({mypy_count} mypy, {len(seeded) - mypy_count} ruff),"
        f" {len(dropped)} dropped; {results['cpus']} CPUs, load {results['load_before']}"
        f" before, {results['load_after_headless']} after\n"
    )
    print("| seed | problems |")
    print("|---|---:|")
    for kind in KINDS:
        print(f"| {kind.tool} {kind.code} | {results['kinds'].get(kind.code, 0)} |")
    for task, why in sorted(dropped.items()):
        print(f"- dropped HumanEval/{task}: {why}")
    fixed_count = len(timed_rows)
    print(
        f"\nthrough the server: fixed and verified {fixed_count}/{len(runs)}"
        f" ({fixed_count / max(1, len(runs)):.0%}); the text equals the canonical module in"
        f" {sum(r['canonical_text'] for r in rows_out)}; the model's requests per fix:"
        f" {dict(sorted(Counter(r['requests'] for r in rows_out).items()))}"
    )
    for style, label in (
        ("code", "mypy, the code in its field"),
        ("message", "mypy, the code in the message (pylsp-mypy)"),
        ("ruff", "ruff F841 (ruff's server)"),
    ):
        some = [r for r in rows_out if r["style"] == style]
        done = sum(r["fixed_and_verified"] for r in some)
        print(f"- {label}: {done}/{len(some)}")
    for line in failures:
        print(f"- {line}")

    def stats(values: Sequence[float]) -> str:
        return f"{statistics.median(values):.2f} | {_percentile(values, 0.9):.2f}"

    print("\n| seconds (fixed ones) | median | p90 |")
    print("|---|---:|---:|")
    if timed_rows:
        for label, key in (
            ("executeCommand -> applyEdit", "to_edit"),
            ("executeCommand -> its answer", "to_answer"),
            ("tool, warm (2nd run, server's cache dir)", "tool_warm"),
            ("tool, module changed (1st run, server's cache dir)", "tool_changed"),
            ("tool, cold (empty cache dir)", "tool_cold"),
            ("tests (python -m pytest TEST_MODULE)", "tests"),
        ):
            print(f"| {label} | {stats([r[key] for r in timed_rows])} |")
        print("\n| ratio, per problem | median | p90 | aim |")
        print("|---|---:|---:|---|")
        for tool in ("all", "mypy", "ruff"):
            for which in ("warm", "cold") if tool != "ruff" else ("warm",):
                if (tool, which) in ratios:
                    seeds = f"{tool} seeds" if tool != "all" else "all seeds"
                    print(
                        f"| {seeds} ({len(ratios[(tool, which)])}): action / (tool {which}"
                        f" + tests) | {stats(ratios[(tool, which)])} | <= 1.5 |"
                    )
        first = rows_out[0]
        if first["to_edit"] is not None:
            print(
                f"\nthe first fix of the session (HumanEval/{first['task']}):"
                f" {first['to_edit']:.2f} s to the edit"
            )
    controls = results.get("controls", [])
    refused = sum(not c["applied"] for c in controls)
    print(
        f"\ncontrols (a model that never fixes it; none may be applied): {refused}/{len(controls)}"
        " refused"
    )
    for c in controls:
        print(
            f"- HumanEval/{c['task']} ({c['kind']}), {c['control']}:"
            f" {'APPLIED' if c['applied'] else 'refused'} after {c['requests']} request(s);"
            f" {c['message']}"
        )
    headless_total = sum(1 for found in seeded_groups.values() if found)
    print(
        f"\noci-lsp --fix --tools mypy,ruff: {len(headless_fixed)}/{len(seeded)} seeded findings"
        f" fixed and verified ({headless_total} had a group), exit {code},"
        f" {seconds:.1f} s wall ({seconds / max(1, len(seeded)):.2f} s a seed);"
        f" counts {report.get('counts')}"
    )
    direct = sum(r["tool_warm"] + r["tests"] for r in rows_out)
    results["headless"]["direct_seconds"] = direct
    print(
        f"against the same tool (warm) and test runs of each seed, summed: {direct:.1f} s"
        f" ({seconds / direct:.2f}x)"
    )
    for t in sorted(set(by_task) - set(headless_fixed)):
        found = seeded_groups[t]
        status = [(g["status"], g.get("why", "")) for g in found] or "no group"
        print(
            f"- HumanEval/{t} ({by_task[t].kind.code}): {status};"
            f" independent check: {headless_verified.get(t, 'not written') or 'clean'}"
        )
    print(f"\nwhole benchmark: {results['seconds_total']:.0f} s")
    save_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
