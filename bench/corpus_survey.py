"""Survey: the real server on each corpus project as it is, against plain pytest.

For every project of tests/corpus (and the monorepo of two): run its suite with plain pytest
in a separate copy (the reference: it passes); lay it out, untouched, under a path with a
space and non-ASCII characters ("my projects/naïve ü/..."), with its own .venv; start the
real server (`python -m oci_lsp`, driven by pytest-lsp's client with VS Code's capabilities
and default settings, in the environment a developer's shell gives the project), open the
folder, and in each project:

  1. open and save one source file (the file of its first pinned mutation) and wait until
     the runs it started have ended and nothing more arrives;
  2. type that mutation into the buffer and save (didChange, write, didSave), and wait;
  3. type the original back and save, and wait.

It prints, per project: the diagnostics left after save 1 (false positives: plain pytest
passed), the files that run wrote into the workspace, after save 2 the time to the first
diagnostic on a failing test's file, how many diagnostics against how many tests plain
pytest fails, and whether one lies in the mutated function; after save 3 (warm) the time to
the run's end against plain pytest's and what is left; publishDiagnostics URIs that are not
the percent-encoded file URI; window/showMessage texts and the runs' progress end messages.

This is the baseline that says what breaks on real projects today (issue 13). Its pieces
(`Session`, `wait_settled`, `first_diagnostic_on`, `TreeSnapshot`) are meant for the
corpus benchmark too: save -> first/last diagnostic against plain pytest.

    .venv/bin/python bench/corpus_survey.py                       # all, ~10 min here
    .venv/bin/python bench/corpus_survey.py --projects isodate --keep
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.parse
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests_on_save import SERVER_COMMAND, Recorder, make_client

from tests.corpus import mutations
from tests.corpus.plain import PlainRun, run_pytest
from tests.corpus.projects import MONOREPO, PROJECTS, markdown_table, project
from tests.corpus.workspace import Workspace, materialize, monorepo, project_env

QUIET = 3.0  # seconds with no message after the last run ended: the save is settled
SPACED = "my projects/naïve ü"  # where the workspaces go, under a temporary folder


# -- the workspace tree, before and after ----------------------------------------------------


@dataclass
class TreeSnapshot:
    files: dict[str, tuple[int, int]]  # relative path -> (size, mtime_ns)

    @classmethod
    def take(cls, root: Path) -> TreeSnapshot:
        files: dict[str, tuple[int, int]] = {}
        for dirpath, _, names in os.walk(root):
            for name in names:
                path = Path(dirpath) / name
                with contextlib.suppress(OSError):
                    stat = path.lstat()
                    files[path.relative_to(root).as_posix()] = (stat.st_size, stat.st_mtime_ns)
        return cls(files)

    def changes(self, after: TreeSnapshot) -> list[str]:
        """ "+ new", "~ changed", "- removed"; bytecode caches folded into one line each."""
        out: list[str] = []
        pyc: dict[str, int] = {}
        for path in sorted(set(self.files) | set(after.files)):
            old, new = self.files.get(path), after.files.get(path)
            if old == new:
                continue
            mark = "+" if old is None else "-" if new is None else "~"
            if "__pycache__/" in path:
                key = f"{mark} {path.split('__pycache__/')[0]}__pycache__/*.pyc"
                pyc[key] = pyc.get(key, 0) + 1
            else:
                out.append(f"{mark} {path}")
        out += [f"{key} ({n})" for key, n in sorted(pyc.items())]
        return out


# -- the server ------------------------------------------------------------------------------


@dataclass
class Session:
    """A real server over stdio with a client that records what it is sent."""

    client: LanguageClient
    recorder: Recorder
    version: int = 1  # of the documents this session changes

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        folder: Path,
        env: Mapping[str, str],
        log_file: Path,
        init_options: Mapping[str, Any] | None = None,
        client: str = "visual-studio-code",
    ) -> AsyncIterator[Session]:
        recorder = Recorder()
        lsp = make_client(recorder)
        await lsp.start_io(*SERVER_COMMAND, "--log-file", str(log_file), env=dict(env))
        try:
            await lsp.initialize_session(
                types.InitializeParams(
                    capabilities=client_capabilities(client),
                    root_uri=folder.as_uri(),
                    workspace_folders=[
                        types.WorkspaceFolder(uri=folder.as_uri(), name=folder.name)
                    ],
                    initialization_options=dict(init_options) if init_options else None,
                )
            )
            yield cls(lsp, recorder)
        finally:
            try:
                await asyncio.wait_for(lsp.shutdown_session(), timeout=30)
            finally:
                await lsp.stop()  # type: ignore[no-untyped-call]

    def open(self, path: Path) -> None:
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                types.TextDocumentItem(
                    uri=path.as_uri(),
                    language_id="python",
                    version=1,
                    text=path.read_text(encoding="utf-8"),
                )
            )
        )

    def change_and_save(self, path: Path, text: str) -> float:
        """What an editor does when the user edits an open file and saves it: didChange with
        the new text, the file written, didSave; returns when didSave was sent."""
        self.version += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(uri=path.as_uri(), version=self.version),
                [types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )
        path.write_text(text, encoding="utf-8")
        return self.save(path)

    def save(self, path: Path) -> float:
        """didSave (the file is already on disk as it is); returns when it was sent."""
        start = time.perf_counter()
        self.client.text_document_did_save(
            types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(path.as_uri()))
        )
        return start


@dataclass
class SaveResult:
    start: float  # perf_counter when didSave was sent
    end: float | None  # save -> the last run's progress end (None: no run began)
    first_diagnostic: float | None  # save -> the first non-empty publishDiagnostics
    last_diagnostic: float | None  # save -> the last publishDiagnostics (empty ones too)
    runs: int  # progress tokens begun after the save
    end_messages: list[str]
    timed_out: bool = False


async def wait_settled(session: Session, start: float, limit: float) -> SaveResult:
    """Wait until every run begun since start has ended and QUIET seconds passed with no
    message (a confirming run may follow the first), or limit seconds."""
    rec = session.recorder
    timed_out = False
    while True:
        begun = {tok for t, tok, kind in rec.progress if kind == "begin" and t >= start}
        ended = {tok for t, tok, kind in rec.progress if kind == "end" and t >= start}
        last = max(
            [t for t, _, _ in rec.progress if t >= start]
            + [t for t, _, _ in rec.diagnostics if t >= start]
            + [start]
        )
        now = time.perf_counter()
        if begun and begun <= ended and now - last >= QUIET:
            break
        if not begun and now - start >= max(QUIET, 10.0):
            break  # nothing started: the save was not taken as a reason to run
        if now > start + limit:
            timed_out = True
            break
        rec.event.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(rec.event.wait(), timeout=0.25)
    ends = [t for t, tok, kind in rec.progress if kind == "end" and t >= start]
    firsts = [t for t, _, n in rec.diagnostics if t >= start and n]
    publications = [t for t, _, _ in rec.diagnostics if t >= start]
    tokens = [tok for t, tok, kind in rec.progress if kind == "begin" and t >= start]
    return SaveResult(
        start=start,
        end=max(ends) - start if ends else None,
        first_diagnostic=min(firsts) - start if firsts else None,
        last_diagnostic=max(publications) - start if publications else None,
        runs=len(tokens),
        end_messages=[rec.end_messages.get(tok, "") for tok in tokens],
        timed_out=timed_out,
    )


def uri_path(uri: str) -> Path:
    return Path(urllib.parse.unquote(urllib.parse.urlparse(uri).path))


def canonical_uri(uri: str) -> bool:
    """Whether uri is the percent-encoded file URI of its own path (as Path.as_uri gives)."""
    return urllib.parse.urlparse(uri).scheme == "file" and uri_path(uri).as_uri() == uri


def first_diagnostic_on(session: Session, since: float, files: set[Path]) -> float | None:
    """save -> the first non-empty publishDiagnostics on one of files (any URI form)."""
    for t, uri, count in session.recorder.diagnostics:
        if t >= since and count and uri_path(uri) in files:
            return t - since
    return None


def current_diagnostics(session: Session) -> list[tuple[Path, types.Diagnostic]]:
    """What the editor shows now: the last publication per URI."""
    return [
        (uri_path(uri), d)
        for uri, found in sorted(session.client.diagnostics.items())
        for d in found
    ]


# -- one project -------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    plain: str  # plain pytest's summary, in a separate copy of the project
    plain_seconds: float
    saved: str
    first: SaveResult | None = None  # the first save of the pristine project
    false_positives: list[str] = field(default_factory=list)  # shown after the first save
    written: list[str] = field(default_factory=list)  # by the first save's run
    mutation: str = ""  # the pinned mutation saved next
    expected_failing: int = 0  # tests plain pytest fails with it (mutations.json)
    mutated: SaveResult | None = None
    first_on_test: float | None = None  # save -> first diagnostic on a failing test's file
    diagnostics: int = 0  # shown after the mutation's save
    located: bool = False  # one of them lies in the mutated function
    reverted: SaveResult | None = None  # the pristine text saved again (warm)
    left_after_revert: list[str] = field(default_factory=list)
    bad_uris: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    error: str = ""


def file_to_save(ws: Workspace) -> tuple[Path, mutations.Edit | None]:
    """The file of the project's first pinned mutation (a module its tests exercise)."""
    pinned, _ = mutations.load() if mutations.MUTATIONS_JSON.exists() else ([], [])
    for edit in pinned:
        if edit.project == ws.project.key:
            return ws.root / edit.file, edit
    return mutations.source_files(ws.root, ws.project.code)[0], None


def plain_reference(ws: Workspace) -> PlainRun:
    run_pytest(ws)  # warm-up: .pyc files, as a developer's second run has them
    run = run_pytest(ws)
    if not run.ok:
        raise RuntimeError(f"{ws.project.key}: plain pytest does not pass:\n{run.output[-2000:]}")
    return run


def describe(path: Path, diagnostic: types.Diagnostic, folder: Path) -> str:
    with contextlib.suppress(ValueError):
        path = path.relative_to(folder)
    first = diagnostic.message.splitlines()[0] if diagnostic.message else ""
    return f"{path}:{diagnostic.range.start.line + 1} [{diagnostic.code}] {first[:160]}"


async def survey(
    name: str,
    folder: Path,
    workspaces: Sequence[Workspace],
    references: Sequence[Workspace],
    limit: float,
    log_dir: Path,
    init_options: Mapping[str, Any] | None,
) -> list[Row]:
    """Plain pytest in a copy of each project (the workspaces stay as unpacked), then one
    server on folder and, in each workspace: a first save, the save of a pinned mutation,
    the save that reverts it."""
    rows: list[Row] = []
    for ws, ref in zip(workspaces, references, strict=True):
        label = name if len(workspaces) == 1 else f"{name}/{ws.project.key}"
        try:
            plain = plain_reference(ref)
        except RuntimeError as exc:
            rows.append(Row(label, "fails", 0.0, "", error=str(exc)))
            return rows
        saved, _ = file_to_save(ws)
        rows.append(Row(label, plain.summary(), plain.seconds, str(saved.relative_to(folder))))
    env: dict[str, str] = {}
    for ws in workspaces:
        env.update(project_env(ws.project))
    try:
        async with Session.start(folder, env, log_dir / f"{name}.log", init_options) as session:
            for row, ws in zip(rows, workspaces, strict=True):
                await survey_workspace(session, row, ws, folder, limit)
            client = session.client
            seen = {u for _, u, _ in session.recorder.diagnostics}
            for row in rows:
                row.bad_uris = sorted(u for u in seen if not canonical_uri(u))
                row.messages = [f"{m.type.name}: {m.message}" for m in client.messages]
            if client.error is not None:
                rows[0].error = f"server failed: {client.error}"
    except Exception as exc:  # one project's breakage is a finding, not the survey's end
        rows[-1].error = f"{type(exc).__name__}: {exc}"
    return rows


async def survey_workspace(
    session: Session, row: Row, ws: Workspace, folder: Path, limit: float
) -> None:
    path, edit = file_to_save(ws)
    before = TreeSnapshot.take(folder)  # another project's saves are not this one's
    session.open(path)
    row.first = await wait_settled(session, session.save(path), limit)
    row.written = before.changes(TreeSnapshot.take(folder))
    row.false_positives = [describe(p, d, folder) for p, d in current_diagnostics(session)]
    if edit is None:
        return
    pristine = path.read_text(encoding="utf-8")
    row.mutation = edit.id
    row.expected_failing = len(edit.failing)
    start = session.change_and_save(path, pristine.replace(edit.original, edit.mutated, 1))
    row.mutated = await wait_settled(session, start, limit)
    test_files = {ws.root / node.split("::", 1)[0] for node in edit.failing}
    row.first_on_test = first_diagnostic_on(session, start, test_files)
    shown = current_diagnostics(session)
    row.diagnostics = len(shown)
    extent = range(edit.line, edit.line + edit.mutated.count("\n"))
    row.located = any(p == path and d.range.start.line + 1 in extent for p, d in shown)
    start = session.change_and_save(path, pristine)
    row.reverted = await wait_settled(session, start, limit)
    row.left_after_revert = [describe(p, d, folder) for p, d in current_diagnostics(session)]


# -- the report ----------------------------------------------------------------------------


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def end_of(result: SaveResult | None) -> str:
    if result is None:
        return "-"
    return seconds(result.end) + (" (timed out)" if result.timed_out else "")


def report(rows: Sequence[Row]) -> str:
    out = [
        markdown_table(),
        "",
        "Plain pytest ran in a separate copy of each project; the surveyed workspace was"
        " as unpacked until the server's first run.",
        "",
        "| project | plain pytest | first save: end | false positives | files written"
        " | mutation: first diag on its test | diagnostics (tests plain pytest fails)"
        " | in the function"
        " | revert: end | revert end / plain | left after revert | bad URIs |",
        "|---|---|---:|---:|---:|---:|---:|:-:|---:|---:|---:|---:|",
    ]
    for row in rows:
        r = row.reverted
        ratio = f"{r.end / row.plain_seconds:.2f}x" if r and r.end and row.plain_seconds else "-"
        written = [w for w in row.written if ".pyc" not in w]
        out.append(
            f"| {row.name} | {row.plain} | {end_of(row.first)} | {len(row.false_positives)}"
            f" | {len(written)} | {seconds(row.first_on_test)}"
            f" | {row.diagnostics} ({row.expected_failing}) | {'yes' if row.located else 'no'}"
            f" | {end_of(r)} | {ratio} | {len(row.left_after_revert)} | {len(row.bad_uris)} |"
        )
    out.append("")
    for row in rows:
        out.append(f"### {row.name} (saved {row.saved}; mutation {row.mutation or '-'})")
        if row.error:
            out.append(f"- ERROR: {row.error[:1500]}")
        for label, result in (
            ("first", row.first),
            ("mutated", row.mutated),
            ("reverted", row.reverted),
        ):
            if result is not None:
                out.append(
                    f"- {label} save: {result.runs} run(s), end {end_of(result)},"
                    f" first diagnostic {seconds(result.first_diagnostic)}:"
                    f" {result.end_messages}"
                )
        for m in row.messages:
            out.append(f"- message: {m[:300]!r}")
        for d in row.false_positives[:6]:
            out.append(f"- false positive: {d}")
        if len(row.false_positives) > 6:
            out.append(f"- ... {len(row.false_positives) - 6} more false positives")
        for d in row.left_after_revert[:4]:
            out.append(f"- left after revert: {d}")
        for u in row.bad_uris[:3]:
            out.append(f"- bad URI: {u}")
        for w in row.written[:12]:
            out.append(f"- written: {w}")
        out.append("")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    keys = [p.key for p in PROJECTS]
    parser.add_argument("--projects", nargs="+", default=[*keys, "monorepo"])
    parser.add_argument("--scope", help="tests.scope for the server (default: its default)")
    parser.add_argument("--limit", type=float, default=300.0, help="seconds per save at most")
    parser.add_argument("--keep", action="store_true", help="keep the workspaces and logs")
    parser.add_argument("--json", type=Path, help="write the rows to this file")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="oci-corpus-survey-"))
    base, references, logs = tmp / SPACED, tmp / "reference", tmp / "logs"
    logs.mkdir()
    init = {"tests": {"scope": args.scope}} if args.scope else None
    rows: list[Row] = []
    try:
        for key in args.projects:
            print(f"{key} ...", file=sys.stderr, flush=True)
            members = [project(k) for k in MONOREPO] if key == "monorepo" else [project(key)]
            folder = base / key
            if key == "monorepo":
                wss = monorepo(folder, members)
            else:
                wss = [materialize(members[0], folder)]
            refs = [materialize(p, references / p.key) for p in members]
            rows += asyncio.run(survey(key, folder, wss, refs, args.limit, logs, init))
            shutil.rmtree(references, ignore_errors=True)
    finally:
        if args.keep:
            print(f"workspaces and server logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(report(rows))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
