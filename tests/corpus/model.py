"""A scripted model for the corpus: it knows the original code of each edited function and
answers with it only once the conversation carries a real failure of that edit's tests.

Anything else (no feedback yet, a sandbox error, another test's failure) gets the broken
version back, so a fix that passes proves the loop ran the real tests and fed their real
failure to the model. A stub is completed at once: generating a body needs no failure.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from tests.corpus.mutations import Edit
from tests.corpus.workspace import Workspace
from tests.openai_server import ScriptedOpenAIServer

_ASKED = re.compile(r"(?:Fix|Complete) the function `([\w.]+)`")
_PARAMS = re.compile(r"\[.*\]$")


def fenced(code: str) -> str:
    """A reply as the models write one: the whole function, dedented, in a python fence."""
    return f"Here is the corrected function:\n\n```python\n{textwrap.dedent(code).rstrip()}\n```\n"


def test_names(nodeids: Iterable[str]) -> set[str]:
    """What a failure's feedback names: the test function (or the doctested object)."""
    return {_PARAMS.sub("", nodeid.split("::")[-1]) for nodeid in nodeids}


def feedback_of(body: dict[str, Any]) -> str:
    """The execution-feedback turns of a chat request."""
    return "\n".join(
        str(m.get("content", ""))
        for m in body["messages"]
        if m.get("role") == "user" and "Execution result:" in str(m.get("content", ""))
    )


def knows(edits: Sequence[Edit]) -> Callable[[dict[str, Any]], str]:
    by_function = {edit.function: edit for edit in edits}

    def answer(body: dict[str, Any]) -> str:
        said = "\n".join(str(m.get("content", "")) for m in body["messages"])
        asked = _ASKED.findall(said)
        edit = by_function.get(asked[0]) if asked else None
        if edit is None:
            return "I cannot tell which function you mean."
        if edit.kind == "stub":
            return fenced(edit.original)
        feedback = feedback_of(body)
        if any(name in feedback for name in test_names(edit.failing)):
            return fenced(edit.original)
        return fenced(edit.mutated)

    return answer


def fix_with_scripted_model(
    ws: Workspace, edit: Edit, report: Path
) -> subprocess.CompletedProcess[str]:
    """`oci-lsp --fix` on the workspace (two rounds of one candidate, the JSON report written
    to report) with the scripted model that knows edit, in the project's environment."""
    with ScriptedOpenAIServer(knows([edit])) as server:
        return subprocess.run(
            [
                *(sys.executable, "-m", "oci_lsp", "--fix", str(ws.root)),
                *server.cli_options(),
                *("--json", str(report), "--rounds", "2", "--candidates", "1"),
            ],
            capture_output=True,
            text=True,
            timeout=1200,
            env={**ws.env(), "CI": "1"},
        )
