"""URIs on paths with spaces and non-ASCII characters: the server answers with the client's own
spelling of each open document, and valid percent-encoded URIs for every other file."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from lsprotocol import types

from tests.conftest import Editor, write_files
from tests.openai_server import ScriptedOpenAIServer
from tests.test_code_actions_e2e import CALC, RIGHT_ADD, run, settings


def lowercase_escapes(uri: str) -> str:
    """The same URI as another client spells it: `%c3%af` for `%C3%AF` (RFC 3986 allows both)."""
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), uri)


def is_valid_file_uri(uri: str) -> bool:
    """What a client that compares URIs as strings needs: no raw space or non-ASCII byte."""
    return uri.startswith("file:///") and uri.isascii() and " " not in uri


def all_uris(editor: Editor) -> set[str]:
    uris = set(editor.client.diagnostics)
    for diagnostics in editor.client.diagnostics.values():
        for diagnostic in diagnostics:
            for related in diagnostic.related_information or []:
                uris.add(related.location.uri)
    return uris


async def test_diagnostics_and_edits_use_the_clients_uri(editor: Editor, tmp_path: Path) -> None:
    root = write_files(tmp_path / "my projects" / "naïve ü", CALC)
    calc, test_file = root / "calc.py", root / "tests/test_calc.py"
    editor.spellings[calc.resolve()] = lowercase_escapes(calc.resolve().as_uri())
    assert editor.uri(calc) != calc.resolve().as_uri()  # the test means something
    with ScriptedOpenAIServer([RIGHT_ADD]) as server:
        await editor.start(root, init_options=settings(server))
        editor.open(calc)
        editor.save(calc)
        await editor.wait_for_diagnostics(test_file, lambda d: len(d) == 2)
        await editor.wait_for_diagnostics(calc, lambda d: len(d) == 2)

        # The open file under the client's spelling only; the closed test file percent-encoded.
        uris = all_uris(editor)
        assert all(is_valid_file_uri(uri) for uri in uris), uris
        assert calc.resolve().as_uri() not in uris
        assert {unquote(urlsplit(uri).path) for uri in uris} == {
            str(calc.resolve()),
            str(test_file.resolve()),
        }
        add_test = next(d for d in editor.diagnostics(test_file) if "test_add:" in d.message)
        [related] = add_test.related_information or []
        assert related.location.uri == editor.uri(calc)

        # The fix's edit names the buffer as the client does, with its version.
        actions = await editor.code_actions(calc, 3, [add_test])
        fix = next(a for a in actions if a.title.startswith("Fix `add` so"))
        result = await run(editor, fix)
    assert result["applied"] and result["verified"], result
    [params] = editor.applied_edits
    if params.edit.document_changes:
        [change] = params.edit.document_changes
        assert isinstance(change, types.TextDocumentEdit)
        assert change.text_document.uri == editor.uri(calc)
        assert change.text_document.version == editor.versions[editor.uri(calc)] - 1
    else:
        assert list(params.edit.changes or {}) == [editor.uri(calc)]
    assert "return a + b\n" in editor.text(calc)

    # Closed, the file keeps the client's spelling: its Problems entry is replaced, not doubled.
    editor.close(calc)
    editor.save(calc)  # writes the fixed buffer, as the editor's save did before closing
    await editor.wait_for_diagnostics(calc, lambda d: not any("test_add:" in x.message for x in d))
    assert calc.resolve().as_uri() not in editor.client.diagnostics
