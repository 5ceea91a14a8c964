"""Fault localization on real projects (issue 15): seeded faults that no traceback frame,
failing assert or doctest shows (pinned "hidden" in tests/corpus/localization.json), in the
real server and through `oci-lsp --fix`.

Before issue 15 the diagnostic went on whatever function a traceback or the failing assert
named, never on these; here the locate run's ranking puts the source diagnostic on the
mutated function (and on no other), and `--fix`, with a scripted model that writes the right
code only when asked about the mutated function after a real failure of its tests
(tests/corpus/model.py), fixes it: the mutated function comes back, its callers and every
other file stay byte-identical. The benchmark (bench/localization.py) runs the whole corpus.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Editor
from tests.corpus.mutations import LOCALIZATION_JSON, Edit, load
from tests.corpus.plain import run_pytest
from tests.test_corpus_e2e import (
    every_diagnostic,
    fix_mutated,
    layout,
    save_and_settle,
    snapshot,
)

MUTATIONS, _ = load(LOCALIZATION_JSON)

# (project, function): small suites, faults of different roles, each hidden.
EDITOR_CASE = ("isodate", "Duration.__getattr__")  # a dunder that hands back a wrong attribute
FIX_CASES = (
    ("isodate", "Duration.__getattr__"),
    # A descriptor's __get__: the test calls the bound method it hands out.
    ("jaraco.functools", "Throttler.__get__"),
    # A private helper of slugify() that cuts the text one character off.
    ("python-slugify", "_modern_truncate"),
)


def hidden(key: str, function: str) -> Edit:
    edit = next(e for e in MUTATIONS if e.project == key and e.function == function)
    assert edit.shows == "hidden", edit.evidence  # what these tests are about
    return edit


@pytest.mark.parametrize("lsp", ["visual-studio-code"], indirect=True)
async def test_the_diagnostic_lands_on_a_fault_no_traceback_shows(
    editor: Editor, tmp_path: Path
) -> None:
    mutation = hidden(*EDITOR_CASE)
    ws = layout(mutation.project, tmp_path)
    source = ws.root / mutation.file
    await editor.start(ws.root)
    editor.open(source)
    await save_and_settle(editor, source)
    assert every_diagnostic(editor) == []

    text = source.read_text(encoding="utf-8")
    editor.save(source, text.replace(mutation.original, mutation.mutated))
    def_line = mutation.line - 1
    found = await editor.wait_for_diagnostics(
        source,
        lambda ds: any(
            d.range.start.line == def_line and (d.data or {}).get("suspects") for d in ds
        ),
        timeout=240,
    )
    await editor.wait_idle()
    at_function = [d for d in found if d.range.start.line == def_line]
    assert all(d.data["function"].endswith("." + mutation.function) for d in at_function)
    assert at_function[0].data["suspects"][0]["function"].endswith("." + mutation.function)
    # No other function is blamed: every diagnostic that names a function names this one.
    named = {d.data["function"] for d in every_diagnostic(editor) if (d.data or {}).get("function")}
    assert len(named) == 1, named


@pytest.mark.parametrize(("key", "function"), FIX_CASES)
def test_fix_repairs_a_fault_no_traceback_shows(tmp_path: Path, key: str, function: str) -> None:
    mutation = hidden(key, function)
    ws = layout(key, tmp_path)
    pristine, groups = fix_mutated(ws, mutation, tmp_path)
    fixed = [f for g in groups if g["status"] == "fixed" for f in g.get("fixed", [])]
    assert [f.rpartition(".")[2] for f in fixed] == [function.rpartition(".")[2]], groups
    # The mutated function is back as it was; its callers and every other file never changed.
    assert snapshot(ws.root) == pristine
    assert run_pytest(ws).ok
