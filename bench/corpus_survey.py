"""Survey: the real server on each corpus project as it is, against plain pytest.

For every project of tests/corpus (and the monorepo of two): lay it out under a path with a
space and non-ASCII characters ("my projects/naïve ü/..."), with its own .venv; run its suite
with plain pytest (the reference: it passes); then start the real server (`python -m
oci_lsp`, driven by pytest-lsp's client with VS Code's capabilities and default settings, in
the environment a developer's shell gives the project), open the folder, open and save one
source file, and wait until the runs it started have ended and nothing more arrives. It
prints, per project:

  false positives   diagnostics left where plain pytest passed (each should be none)
  bad URIs          publishDiagnostics URIs that are not the percent-encoded file URI
  written           files the run created, changed or removed in the workspace
  save -> end       the run's time against plain pytest's (first and last diagnostic too)
  messages          window/showMessage texts, and the runs' progress end messages

This is the baseline that says what breaks on real projects today (issue 13). Its pieces
(`Session`, `save_and_wait`, `TreeSnapshot`) are meant for the corpus benchmark too:
save -> first/last diagnostic against plain pytest.

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
from tests.corpus.projects import MONOREPO, PROJECTS, project
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

    def save(self, path: Path) -> float:
        """didSave (the file is already on disk as it is); returns when it was sent."""
        start = time.perf_counter()
        self.client.text_document_did_save(
            types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(path.as_uri()))
        )
        return start


@dataclass
class SaveResult:
    end: float | None  # save -> the last run's progress end (None: no run began)
    first_diagnostic: float | None  # save -> the first non-empty publishDiagnostics
    last_diagnostic: float | None  # save -> the last publishDiagnostics (empty ones too)
    runs: int  # progress tokens begun after the save
    end_messages: list[str]
    timed_out: bool = False


async def save_and_wait(session: Session, path: Path, limit: float) -> SaveResult:
    """Save path and wait until every run it began has ended and QUIET seconds passed with
    no message (a confirming run may follow the first)."""
    rec = session.recorder
    start = session.save(path)
    deadline = start + limit
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
        if now > deadline:
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
        end=max(ends) - start if ends else None,
        first_diagnostic=min(firsts) - start if firsts else None,
        last_diagnostic=max(publications) - start if publications else None,
        runs=len(tokens),
        end_messages=[rec.end_messages.get(tok, "") for tok in tokens],
        timed_out=timed_out,
    )


def canonical_uri(uri: str) -> bool:
    """Whether uri is the percent-encoded file URI of its own path (as Path.as_uri gives)."""
    parsed = urllib.parse.urlparse(uri)
    return parsed.scheme == "file" and Path(urllib.parse.unquote(parsed.path)).as_uri() == uri


# -- one project -------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    plain: str  # plain pytest's summary
    plain_seconds: float
    saved: str
    result: SaveResult | None = None
    false_positives: list[str] = field(default_factory=list)
    bad_uris: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    error: str = ""


def file_to_save(ws: Workspace) -> Path:
    """The file of the project's first pinned mutation (a module its tests exercise)."""
    pinned, _ = mutations.load() if mutations.MUTATIONS_JSON.exists() else ([], [])
    for edit in pinned:
        if edit.project == ws.project.key:
            return ws.root / edit.file
    return mutations.source_files(ws.root, ws.project.code)[0]


def plain_reference(ws: Workspace) -> PlainRun:
    run_pytest(ws)  # warm-up: .pyc files, as a developer's second run has them
    run = run_pytest(ws)
    if not run.ok:
        raise RuntimeError(f"{ws.project.key}: plain pytest does not pass:\n{run.output[-2000:]}")
    return run


def describe(diagnostic: types.Diagnostic, uri: str, folder: Path) -> str:
    path = Path(urllib.parse.unquote(urllib.parse.urlparse(uri).path))
    with contextlib.suppress(ValueError):
        path = path.relative_to(folder)
    first = diagnostic.message.splitlines()[0] if diagnostic.message else ""
    return f"{path}:{diagnostic.range.start.line + 1} [{diagnostic.code}] {first[:160]}"


async def survey(
    name: str,
    folder: Path,
    workspaces: Sequence[Workspace],
    limit: float,
    log_dir: Path,
    init_options: Mapping[str, Any] | None,
) -> list[Row]:
    """Plain pytest in each workspace, then one server on folder and a save in each."""
    rows: list[Row] = []
    for ws in workspaces:
        label = name if len(workspaces) == 1 else f"{name}/{ws.project.key}"
        try:
            plain = plain_reference(ws)
        except RuntimeError as exc:
            rows.append(Row(label, "fails", 0.0, "", error=str(exc)))
            return rows
        saved = file_to_save(ws)
        rows.append(Row(label, plain.summary(), plain.seconds, str(saved.relative_to(folder))))
    env: dict[str, str] = {}
    for ws in workspaces:
        env.update(project_env(ws.project))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a developer's shell does not set it
    before = TreeSnapshot.take(folder)
    try:
        async with Session.start(folder, env, log_dir / f"{name}.log", init_options) as session:
            for row in rows:
                path = folder / row.saved
                session.open(path)
                row.result = await save_and_wait(session, path, limit)
            client = session.client
            seen = [u for _, u, _ in session.recorder.diagnostics]
            for row in rows:
                row.bad_uris = sorted({u for u in seen if not canonical_uri(u)})
                row.messages = [f"{m.type.name}: {m.message}" for m in client.messages]
                for uri, diagnostics in sorted(client.diagnostics.items()):
                    row.false_positives += [describe(d, uri, folder) for d in diagnostics]
            if client.error is not None:
                rows[0].error = f"server failed: {client.error}"
    except Exception as exc:  # one project's breakage is a finding, not the survey's end
        rows[-1].error = f"{type(exc).__name__}: {exc}"
    after = TreeSnapshot.take(folder)
    for row in rows:
        row.written = before.changes(after)
    return rows


# -- the report ----------------------------------------------------------------------------


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def report(rows: Sequence[Row]) -> str:
    out = [
        "| project | plain pytest | save -> first diag | save -> last diag | save -> end"
        " | end / plain | runs | false positives | bad URIs | files written |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        r = row.result
        ratio = f"{r.end / row.plain_seconds:.2f}x" if r and r.end and row.plain_seconds else "-"
        out.append(
            f"| {row.name} | {row.plain} | {seconds(r.first_diagnostic if r else None)}"
            f" | {seconds(r.last_diagnostic if r else None)}"
            f" | {seconds(r.end if r else None)}{' (timed out)' if r and r.timed_out else ''}"
            f" | {ratio} | {r.runs if r else '-'} | {len(row.false_positives)}"
            f" | {len(row.bad_uris)} | {len([w for w in row.written if '.pyc' not in w])} |"
        )
    out.append("")
    for row in rows:
        r = row.result
        out.append(f"### {row.name} (saved {row.saved})")
        if row.error:
            out.append(f"- ERROR: {row.error[:1500]}")
        if r is not None:
            out.append(f"- progress end messages: {r.end_messages}")
        for m in row.messages:
            out.append(f"- message: {m[:300]}")
        for d in row.false_positives[:8]:
            out.append(f"- diagnostic: {d}")
        if len(row.false_positives) > 8:
            out.append(f"- ... {len(row.false_positives) - 8} more diagnostics")
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
    base = tmp / SPACED
    logs = tmp / "logs"
    logs.mkdir()
    init = {"tests": {"scope": args.scope}} if args.scope else None
    rows: list[Row] = []
    try:
        for key in args.projects:
            print(f"{key} ...", file=sys.stderr, flush=True)
            if key == "monorepo":
                folder = base / "monorepo"
                wss = monorepo(folder, [project(k) for k in MONOREPO])
            else:
                folder = base / key
                wss = [materialize(project(key), folder)]
            rows += asyncio.run(survey(key, folder, wss, args.limit, logs, init))
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
