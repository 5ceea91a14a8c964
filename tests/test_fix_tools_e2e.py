"""`oci-lsp --fix --tools` end to end (issue 16): the command as a subprocess, real ruff and mypy
under the workspace's own configuration, the tests really run, a scripted model server on
127.0.0.1 that answers right only when its feedback turn carries the tool's report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import write_files
from tests.openai_server import Reply, ScriptedOpenAIServer
from tests.test_fix_e2e import fix, snapshot

SHOP = {
    "pyproject.toml": "[tool.ruff.lint]\nselect = ['F']\n\n[tool.mypy]\nfiles = ['shop.py']\n",
    "shop.py": '''\
"""Prices."""
import os


def label(n: int) -> str:
    """The label of n."""
    return n


def total(prices: list[float], tax: float) -> float:
    subtotal = sum(prices)
    with_tax = subtotal * (1 + tax)
    return subtotal


def tidy(name: str) -> str:
    return name.strip()
''',
    "tests/test_shop.py": """\
from shop import label, tidy, total


def test_label():
    assert label(3)


def test_total():
    assert total([10.0, 5.0], 0.0) == 15.0


def test_tidy():
    assert tidy(" a ") == "a"
""",
}
RIGHT = {
    "label": 'def label(n: int) -> str:\n    """The label of n."""\n    return str(n)\n',
    "total": "def total(prices: list[float], tax: float) -> float:\n"
    "    subtotal = sum(prices)\n    with_tax = subtotal * (1 + tax)\n    return with_tax\n",
}
# What each function's fix needs its prompt to carry: the tool's own report of it.
NEEDS = {"label": "mypy [return-value]", "total": "ruff F841"}


def tool_model(body: dict[str, Any]) -> Reply:
    task = body["messages"][0]["content"]
    feedback = body["messages"][-1]["content"]
    for name, code in RIGHT.items():
        if f"`{name}`" in task:
            right = NEEDS[name] in feedback and feedback.startswith("Execution result:")
            return Reply(f"```python\n{code}```" if right else "I do not know.")
    return Reply("I do not know.")


def test_it_fixes_the_findings_in_functions_and_reports_the_others(tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", SHOP)
    report = tmp_path / "report.json"
    with ScriptedOpenAIServer(tool_model) as server:
        done = fix(root, server, "--tools", "ruff,mypy", "--json", str(report))
    # The unused import is outside any function: reported, not fixed, so the exit is 1.
    assert done.returncode == 1, done.stdout + done.stderr
    text = (root / "shop.py").read_text()
    assert "    return str(n)\n" in text and "    return with_tax\n" in text
    assert text.startswith('"""Prices."""\nimport os\n')  # not a function's: left as it is
    data = json.loads(report.read_text())
    groups = {(g["function"], g["tool"]): g for g in data["groups"]}
    assert set(groups) == {("label", "mypy"), ("total", "ruff")}
    label = groups[("label", "mypy")]
    assert label["status"] == "fixed" and "tests" not in label
    assert label["diagnostics"] == [
        {
            "tool": "mypy",
            "path": "shop.py",
            "code": "return-value",
            "message": 'Incompatible return value type (got "int", expected "str")',
            "line": 7,
        }
    ]
    assert groups[("total", "ruff")]["diagnostics"][0]["code"] == "F841"
    [outside] = [u for u in data["unfixable"] if u.get("tool") == "ruff"]
    assert (outside["code"], outside["line"], outside["why"]) == ("F401", 2, "outside any function")
    assert "shop.py:2 ruff F401" in done.stdout


def test_a_module_that_does_not_parse_is_fixed_first(tmp_path: Path) -> None:
    files = {
        **SHOP,
        "shop.py": SHOP["shop.py"].replace("return name.strip()", "return name.strip("),
    }
    root = write_files(tmp_path / "ws", files)
    right_tidy = "def tidy(name: str) -> str:\n    return name.strip()\n"

    def model(body: dict[str, Any]) -> Reply:
        if "`tidy`" in body["messages"][0]["content"]:
            feedback = body["messages"][-1]["content"]
            ok = "python syntax-error" in feedback and "never closed" in feedback
            return Reply(f"```python\n{right_tidy}```" if ok else "no")
        return tool_model(body)

    with ScriptedOpenAIServer(model) as server:
        done = fix(root, server, "--tools", "mypy", "--json", str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    text = (root / "shop.py").read_text()
    assert "    return name.strip()\n" in text and "    return str(n)\n" in text
    # ruff was not asked for: its finding stays.
    assert "    return subtotal\n" in text
    data = json.loads((tmp_path / "r.json").read_text())
    statuses = {(g["function"], g["tool"]): g["status"] for g in data["groups"]}
    assert statuses == {("tidy", "python"): "fixed", ("label", "mypy"): "fixed"}


def test_a_fix_the_tool_accepts_but_a_test_refuses_is_not_written(tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", SHOP)
    # Clears ruff's finding and breaks test_total: never written.
    wrong = (
        "def total(prices: list[float], tax: float) -> float:\n"
        "    subtotal = sum(prices)\n    with_tax = subtotal * (1 + tax) + 1\n    return with_tax\n"
    )
    with ScriptedOpenAIServer([f"```python\n{wrong}```"]) as server:
        before = snapshot(root)
        done = fix(
            root, server, "--tools", "ruff", "--rounds", "1", "--json", str(tmp_path / "r.json")
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert snapshot(root) == before
    data = json.loads((tmp_path / "r.json").read_text())
    [total] = [g for g in data["groups"] if g["function"] == "total"]
    assert total["status"] == "not-fixed"


def test_bad_tools_are_one_line_and_exit_2(tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", SHOP)
    done = fix(root, None, "--tools", "flake8")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "oci-lsp: unknown tool flake8: --tools takes ruff, mypy, pyright"
    ]
    (root / "pyproject.toml").write_text(
        SHOP["pyproject.toml"] + "\n[tool.oci-lsp.tools]\nmypy = ['/nonexistent/mypy']\n"
    )
    done = fix(root, None, "--tools", "mypy")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("oci-lsp: ")
    assert "mypy" in done.stderr.strip().splitlines()[-1]
