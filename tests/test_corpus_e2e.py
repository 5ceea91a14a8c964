"""Real projects as they are, end to end: the real server and `oci-lsp --fix` on projects from
PyPI (tests/corpus), under a path with a space and non-ASCII characters.

For each project: the unmodified project saves clean (no diagnostic where plain pytest
passes, nothing written into it); a seeded mutation is located on the mutated function and
fixed through the code action and through `--fix`, with a scripted model that is right only
once it has seen the real failure; a stubbed function is generated. Afterwards every other
file is byte-identical and plain pytest passes. CI runs these three projects; the benchmark
(bench/corpus_bench.py) runs the whole corpus.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from tests.conftest import Editor, progress_messages
from tests.corpus.model import fix_with_scripted_model, knows
from tests.corpus.mutations import Edit, load
from tests.corpus.plain import run_pytest
from tests.corpus.projects import MONOREPO, project
from tests.corpus.workspace import Workspace, materialize, monorepo
from tests.openai_server import ScriptedOpenAIServer
from tests.test_code_actions_e2e import run

MUTATIONS, STUBS = load()

# (project, the mutated function fixed in the editor, the one fixed by --fix, a stub)
CASES = {
    # pytest-benchmark, --doctest-modules, filterwarnings = error, ```pycon fences in the
    # docstrings of the functions fixed, a conftest that fills doctest_namespace.
    "humanize": ("naturalsize", "metric", "apnumber"),
    # --cov in addopts, --doctest-glob=README.rst.
    "parse": ("parse", "parse", "Parser.findall"),
    # A unittest suite, -n auto (pytest-xdist), filterwarnings = error, --color=yes.
    "python-slugify": ("_replace_disallowed_unicode", "_transliterate", "_transliterate"),
}


def edit_of(key: str, function: str, stub: bool = False) -> Edit:
    edits = STUBS if stub else MUTATIONS
    return next(e for e in edits if e.project == key and e.function == function)


def layout(key: str, tmp_path: Path) -> Workspace:
    return materialize(project(key), tmp_path / "my projects" / "naïve ü" / key)


def snapshot(root: Path) -> dict[str, bytes]:
    """The project's files (its .venv and Python's bytecode caches aside)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not {"__pycache__", ".venv"} & set(p.relative_to(root).parts)
    }


def model_settings(server: ScriptedOpenAIServer) -> dict[str, Any]:
    return {
        "backend": "openai",
        "openai": {"baseUrl": server.base_url, "model": "test-model"},
        "refine": {"candidates": 1, "maxRounds": 2},
    }


async def save_and_settle(editor: Editor, path: Path, text: str | None = None) -> None:
    """Save (the buffer, or new text) and wait until the runs the save started have ended."""
    ends = sum(1 for kind, _ in progress_messages(editor.client) if kind == "end")
    editor.save(path, text)
    await editor.wait_until(
        lambda: sum(1 for kind, _ in progress_messages(editor.client) if kind == "end") > ends,
        f"the run after saving {path.name}",
        timeout=240,
    )
    await editor.wait_idle()


def every_diagnostic(editor: Editor) -> list[types.Diagnostic]:
    return [d for ds in editor.client.diagnostics.values() for d in ds]


@pytest.mark.parametrize("lsp", ["visual-studio-code"], indirect=True)
@pytest.mark.parametrize("key", sorted(CASES))
async def test_a_real_project_in_the_editor(editor: Editor, tmp_path: Path, key: str) -> None:
    ws = layout(key, tmp_path)
    mutation = edit_of(key, CASES[key][0])
    pristine = snapshot(ws.root)
    source = ws.root / mutation.file
    with ScriptedOpenAIServer(knows([mutation])) as server:
        await editor.start(ws.root, init_options=model_settings(server))
        editor.open(source)

        # 1. As it is: a save runs its suite and shows nothing; nothing is written into it.
        await save_and_settle(editor, source)
        assert every_diagnostic(editor) == [], [d.message for d in every_diagnostic(editor)]
        assert snapshot(ws.root) == pristine
        assert not [m for m in editor.messages() if "stopped with exit status" in m]

        # 2. A mutation typed in and saved: the diagnostic lands on the mutated function.
        original = source.read_text(encoding="utf-8")
        await save_and_settle(editor, source, original.replace(mutation.original, mutation.mutated))
        def_line = mutation.line - 1
        at_function = [d for d in editor.diagnostics(source) if d.range.start.line == def_line]
        assert at_function, [(d.range.start.line, d.message) for d in editor.diagnostics(source)]
        assert all(d.data["function"].endswith(mutation.function) for d in at_function)

        # 3. Its quick fix, verified in the sandbox against the real tests, puts it right.
        actions = await editor.code_actions(source, def_line, at_function[:1])
        name = mutation.function.rpartition(".")[2]
        fix = next(a for a in actions if a.title.startswith(f"Fix `{name}` so"))
        result = await run(editor, fix, timeout=300)
        assert result["applied"] and result["verified"], result
        assert editor.text(source) == original  # the docstring's fenced examples included
        feedback = [r for r in server.requests if "Execution result:" in json.dumps(r)]
        assert feedback, "the model was never shown the failure"

    # 4. Saved, the project is as it was: no diagnostic, every file as unpacked.
    await save_and_settle(editor, source)
    assert every_diagnostic(editor) == []
    assert snapshot(ws.root) == pristine
    assert run_pytest(ws).ok


@pytest.mark.parametrize("lsp", ["visual-studio-code"], indirect=True)
@pytest.mark.parametrize("key", sorted(CASES))
async def test_a_stub_of_a_real_project_is_generated(
    editor: Editor, tmp_path: Path, key: str
) -> None:
    ws = layout(key, tmp_path)
    stub = edit_of(key, CASES[key][2], stub=True)
    pristine = snapshot(ws.root)
    stub.apply(ws.root)
    source = ws.root / stub.file
    with ScriptedOpenAIServer(knows([stub])) as server:
        await editor.start(ws.root, init_options=model_settings(server))
        editor.open(source)
        actions = await editor.code_actions(source, stub.line - 1)
        name = stub.function.rpartition(".")[2]
        [generate] = [
            a for a in actions if a.title == f"Generate body of `{name}` (OpenCodeInterpreter)"
        ]
        result = await run(editor, generate, timeout=300)
        assert result["applied"] and result["verified"], (result, server.requests[-1])
    await save_and_settle(editor, source)
    assert snapshot(ws.root) == pristine
    assert every_diagnostic(editor) == []


def fix_mutated(ws: Workspace, mutation: Edit, tmp_path: Path) -> tuple[dict[str, bytes], Any]:
    """(the pristine files, the groups of the JSON report) of a successful `oci-lsp --fix`
    with the scripted model on ws with the mutation applied."""
    pristine = snapshot(ws.root)
    mutation.apply(ws.root)
    report = tmp_path / "report.json"
    done = fix_with_scripted_model(ws, mutation, report)
    assert done.returncode == 0, done.stdout + done.stderr
    return pristine, json.loads(report.read_text())["groups"]


@pytest.mark.parametrize("key", sorted(CASES))
def test_fix_repairs_a_real_project(tmp_path: Path, key: str) -> None:
    ws = layout(key, tmp_path)
    mutation = edit_of(key, CASES[key][1])
    pristine, groups = fix_mutated(ws, mutation, tmp_path)
    # Tests that blame another function pass once the mutated one is fixed: nothing to do there.
    assert [g["function"] for g in groups if g["status"] == "fixed"] == [mutation.function]
    assert {g["status"] for g in groups} <= {"fixed", "skipped"}
    assert snapshot(ws.root) == pristine
    assert run_pytest(ws).ok


@pytest.mark.parametrize("lsp", ["visual-studio-code"], indirect=True)
async def test_two_real_projects_in_one_folder(editor: Editor, tmp_path: Path) -> None:
    """isodate (src/, --junitxml and --maxfail in addopts) and python-slugify (-n auto) side
    by side, each with its own .venv: each runs from its own root, in its own interpreter."""
    folder = tmp_path / "my projects" / "naïve ü" / "mono repo"
    workspaces = monorepo(folder, [project(k) for k in MONOREPO])
    pristine = snapshot(folder)
    await editor.start(folder)
    for ws in workspaces:
        source = ws.root / next(m for m in MUTATIONS if m.project == ws.project.key).file
        editor.open(source)
        await save_and_settle(editor, source)
    assert every_diagnostic(editor) == [], [d.message for d in every_diagnostic(editor)]
    assert snapshot(folder) == pristine
    for ws in workspaces:
        status = await editor.command("oci.status", {"uri": editor.uri(ws.root / "x.py")})
        assert status["tests"]["python"]["path"] == str(ws.python)

    # A mutation in slugify fails slugify's tests only; isodate's are left alone.
    slugify = workspaces[1]
    mutation = edit_of(slugify.project.key, CASES[slugify.project.key][1])
    source = slugify.root / mutation.file
    text = source.read_text(encoding="utf-8")
    await save_and_settle(editor, source, text.replace(mutation.original, mutation.mutated))
    shown = {uri for uri, found in editor.client.diagnostics.items() if found}
    assert shown and all("/python-slugify/" in uri for uri in shown), shown
    await save_and_settle(editor, source, text)
    assert every_diagnostic(editor) == []
