"""`oci-lsp --fix` end to end: the command as a subprocess on real workspaces, the tests really
run, a scripted OpenAI-compatible server on 127.0.0.1 (or a tiny CTranslate2 model)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_files
from tests.openai_server import Reply, ScriptedOpenAIServer

CALC = {
    "calc.py": "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b + 1\n\n\n"
    "def scale(x):\n    return x * 2 + 1\n\n\ndef total(xs):\n    return sum(scale(x) for x in xs)\n",
    "tests/test_calc.py": "from calc import add, mul, total\n\n\n"
    "def test_add():\n    assert add(1, 2) == 3\n\n\n"
    "def test_mul():\n    assert mul(2, 3) == 6\n\n\n"
    "def test_total():\n    assert total([1]) == 3\n",
}
RIGHT = {
    "add": "def add(a, b):\n    return a + b\n",
    "mul": "def mul(a, b):\n    return a * b\n",
    "scale": "def scale(x):\n    return x * 2\n",
}


def answer(right: dict[str, str]) -> Any:
    """A scripted model that knows the right body of the functions in `right`."""

    def reply(body: dict[str, Any]) -> Reply:
        task = body["messages"][0]["content"]
        for name, code in right.items():
            if f"`{name}`" in task:
                return Reply(f"```python\n{code}```")
        return Reply("I do not know.")

    return reply


def command(root: Path, server: ScriptedOpenAIServer | None, *args: str) -> list[str]:
    backend = server.cli_options() if server is not None else []
    return [sys.executable, "-m", "oci_lsp", "--fix", str(root), *backend, *args]


def fix(root: Path, server: ScriptedOpenAIServer | None, *args: str, **kw: Any) -> Any:
    return subprocess.run(
        command(root, server, *args),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CI": "1"},
        **kw,
    )


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and ".git" not in p.parts
    }


def test_it_fixes_every_failing_function_and_a_second_run_changes_nothing(
    tmp_path: Path,
) -> None:
    root = write_files(tmp_path / "ws", CALC)
    report = tmp_path / "report.json"
    with ScriptedOpenAIServer(answer(RIGHT)) as server:
        done = fix(root, server, "--json", str(report), "--jobs", "2")
        assert done.returncode == 0, done.stdout + done.stderr
        text = (root / "calc.py").read_text()
        assert "return a + b\n" in text and "return a * b\n" in text
        assert "return x * 2 + 1" in text  # scale had no failing test: untouched
        data = json.loads(report.read_text())
        assert data["counts"]["fixed"] == 2 and data["failing_before"] == 2
        assert data["failing_after"] == 0
        add = next(g for g in data["groups"] if g["function"] == "add")
        assert add["tests"] == ["tests/test_calc.py::test_add"]
        assert "-    return a - b\n+    return a + b\n" in add["diff"]
        assert "fixed" in done.stdout and "2 fixed" in done.stdout
        before = snapshot(root)
        again = fix(root, server)
    assert again.returncode == 0 and "nothing to fix" in again.stderr
    assert snapshot(root) == before


SIZES = {
    "sizes.py": '''\
"""Human-readable sizes."""


def naturalsize(value):
    """Format a number of bytes like a human-readable file size.

    ```pycon
    >>> naturalsize(3000)
    '3.0 kB'
    ```
    """
    # Decimal units, as disks are sold.
    base = 1000
    return f"{value / base:.2f} kB"


def label(name, size):
    """Name and size on one line."""
    text = name
    # then the size, after a colon
    text = text + ": " + size
    return text.upper()
''',
    "tests/test_sizes.py": "from sizes import label, naturalsize\n\n\n"
    "def test_naturalsize():\n    assert naturalsize(3000) == '3.0 kB'\n\n\n"
    "def test_label():\n    assert label('a', '3.0 kB') == 'a: 3.0 kB'\n",
}


def sizes_model(body: dict[str, Any]) -> Reply:
    """DeepSeek-style replies: first the whole function with its docstring's indented
    ```pycon example (still wrong), then, after the failure, the right code with the
    example and a comment lost. For `label`, code that can only be refused."""
    task = body["messages"][0]["content"]
    said = "\n".join(str(m["content"]) for m in body["messages"])
    if "`label`" in task:
        code = 'def label(name, size):\n    return f"""\n    text = name\n    text = text + ": " + size\n    """'
        return Reply(f"```python\n{code}\n```")
    if said.count("Execution result:") < 2:
        docstring = (
            SIZES["sizes.py"].split("def naturalsize(value):\n")[1].split("    # Decimal")[0]
        )
        code = f'def naturalsize(value):\n{docstring}    base = 1000\n    return f"{{value / base:.3f}} kB"'
        return Reply(
            f"Here is the corrected function:\n\n```python\n{code}\n```\n\nIt divides by 1000."
        )
    code = (
        'def naturalsize(value):\n    """Format a number of bytes like a human-readable file size.\n    """\n'
        '    base = 1000\n    return f"{value / base:.1f} kB"'
    )
    return Reply(f"```python\n{code}\n```")


def test_a_fix_keeps_the_docstring_lines_the_reply_dropped_and_refuses_what_it_cannot_keep(
    tmp_path: Path,
) -> None:
    root = write_files(tmp_path / "ws", SIZES)
    report = tmp_path / "report.json"
    with ScriptedOpenAIServer(sizes_model) as server:
        done = fix(root, server, "--rounds", "2", "--candidates", "1", "--json", str(report))
    assert done.returncode == 1, done.stdout + done.stderr  # label stays failing
    # Every line of naturalsize but the format is as it was: docstring, example, comment.
    assert (root / "sizes.py").read_text() == SIZES["sizes.py"].replace(":.2f}", ":.1f}")
    data = json.loads(report.read_text())
    natural = next(g for g in data["groups"] if g["function"] == "naturalsize")
    label = next(g for g in data["groups"] if g["function"] == "label")
    assert natural["status"] == "fixed" and len(natural["rounds"]) == 2
    # Round 1's reply was read whole (its docstring's fence did not cut it) and ran.
    assert "3.000 kB" in natural["rounds"][1]["feedback"]
    assert natural["kept"] == [
        "kept 4 line(s) of the docstring that the reply dropped or changed",
        "kept 1 comment(s) the reply dropped from code it kept",
    ]
    assert label["status"] == "not-fixed"
    refused = "candidate 1: rejected: the reply drops the comment `# then the size, after a colon`"
    assert [r["rejected"] for r in label["rounds"]] == [
        [refused + " from code it kept, and it cannot be put back there"]
    ] * 2
    # The text report says both.
    [row] = [line for line in done.stdout.splitlines() if line.startswith("fixed ")]
    assert row.endswith(
        "kept 4 line(s) of the docstring that the reply dropped or changed;"
        " kept 1 comment(s) the reply dropped from code it kept"
    )
    assert f"  sizes.py::label round 1: {refused}" in done.stdout


def test_never_right_leaves_the_files_as_they_were(tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", CALC)
    before = snapshot(root)
    report = tmp_path / "report.json"
    with ScriptedOpenAIServer(answer({})) as server:
        done = fix(root, server, "--rounds", "2", "--candidates", "1", "--json", str(report))
    assert done.returncode == 1, done.stdout + done.stderr
    assert snapshot(root) == before
    data = json.loads(report.read_text())
    assert data["counts"]["not-fixed"] == 2
    assert all(len(g["rounds"]) == 2 for g in data["groups"])
    assert data["groups"][0]["rounds"][1]["feedback"]  # the second round answered a failure


def test_a_fix_that_breaks_a_test_elsewhere_is_rolled_back(tmp_path: Path) -> None:
    files = dict(CALC)
    files["tests/test_scale.py"] = (
        "from calc import scale\n\n\ndef test_scale():\n    assert scale(2) == 4\n"
    )
    root = write_files(tmp_path / "ws", files)
    report = tmp_path / "report.json"
    with ScriptedOpenAIServer(answer(RIGHT)) as server:
        done = fix(root, server, "-k", "scale", "--json", str(report))
    assert done.returncode == 1, done.stdout + done.stderr
    # Right for test_scale, wrong for test_total, which never names it: undone.
    assert (root / "calc.py").read_text() == files["calc.py"]
    data = json.loads(report.read_text())
    [scale] = data["groups"]
    assert scale["status"] == "rolled-back" and "test_total" in scale["why"]


def test_dry_run_prints_the_diff_and_writes_nothing(tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", CALC)
    before = snapshot(root)
    with ScriptedOpenAIServer(answer(RIGHT)) as server:
        done = fix(root, server, "--dry-run")
    assert done.returncode == 1
    assert "--- a/calc.py\n+++ b/calc.py\n" in done.stdout
    assert "+    return a + b\n" in done.stdout and "+    return a * b\n" in done.stdout
    assert snapshot(root) == before


def test_uncommitted_changes_are_refused_unless_allowed(tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", CALC)
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "start"], check=True)
    (root / "calc.py").write_text(CALC["calc.py"] + "\n# mine, not committed\n")
    with ScriptedOpenAIServer(answer(RIGHT)) as server:
        refused = fix(root, server)
        assert refused.returncode == 2
        [line] = [ln for ln in refused.stderr.splitlines() if ln.startswith("oci-lsp:")]
        assert "uncommitted changes" in line and "--allow-dirty" in line
        assert "# mine, not committed" in (root / "calc.py").read_text()
        allowed = fix(root, server, "--allow-dirty")
    assert allowed.returncode == 0, allowed.stderr
    text = (root / "calc.py").read_text()
    assert "# mine, not committed" in text and "return a + b" in text


def test_the_files_keep_their_encoding_line_endings_and_mode(tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", CALC)
    source = root / "calc.py"
    source.write_bytes(b"\xef\xbb\xbf" + CALC["calc.py"].replace("\n", "\r\n").encode())
    source.chmod(0o640)
    with ScriptedOpenAIServer(answer(RIGHT)) as server:
        done = fix(root, server)
    assert done.returncode == 0, done.stdout + done.stderr
    data = source.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b"return a + b\r\n" in data
    assert b"\n" not in data.replace(b"\r\n", b"")  # no bare line feed came in
    assert source.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(
    ("files", "args", "says"),
    [
        (None, [], "does not exist"),
        ({"README.md": "hi\n"}, [], "not a Python project"),
        ({"calc.py": "X = 1\n"}, [], "no tests found"),
        (CALC, ["--backend", "ctranslate2", "--model", "ds-1.3b"], "oci-lsp model pull"),
        (CALC, ["--test-command", "no-such-runner-here"], "no-such-runner-here"),
        (
            CALC,
            ["--backend", "openai", "--openai-base-url", "http://127.0.0.1:9/v1"],
            "no model to fix with",
        ),
    ],
)
def test_what_cannot_be_done_says_so_in_one_line_and_exits_2(
    tmp_path: Path, files: dict[str, str] | None, args: list[str], says: str
) -> None:
    root = tmp_path / "ws"
    if files is not None:
        write_files(root, files)
    before = snapshot(root) if root.exists() else {}
    done = fix(root, None, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("oci-lsp:")]
    assert len(lines) == 1 and says in lines[0], done.stderr
    assert (snapshot(root) if root.exists() else {}) == before


def test_a_read_only_file_is_reported_and_left_alone(tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", CALC)
    (root / "calc.py").chmod(0o444)
    report = tmp_path / "report.json"
    with ScriptedOpenAIServer(answer(RIGHT)) as server:
        done = fix(root, server, "--json", str(report))
    assert done.returncode == 1, done.stdout + done.stderr
    assert (root / "calc.py").read_text() == CALC["calc.py"]
    data = json.loads(report.read_text())
    assert all("read-only" in g["why"] for g in data["groups"])


def test_killed_at_any_moment_every_file_is_whole(tmp_path: Path) -> None:
    modules = {f"m{i}.py": f"def f{i}(x):\n    return x - {i + 1}\n" for i in range(6)}
    tests = {
        f"tests/test_m{i}.py": f"from m{i} import f{i}\n\n\ndef test_f{i}():\n    assert f{i}(1) == {2 + i}\n"
        for i in range(6)
    }
    right = {f"f{i}": f"def f{i}(x):\n    return x + {i + 1}\n" for i in range(6)}
    root = write_files(tmp_path / "ws", {**modules, **tests})
    rng = random.Random(7)
    with ScriptedOpenAIServer(answer(right)) as server:
        for _ in range(4):
            process = subprocess.Popen(
                command(root, server, "--jobs", "2"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "CI": "1"},
                start_new_session=True,
            )
            time.sleep(rng.uniform(0.5, 4.0))
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            for name, text in modules.items():
                now = (root / name).read_text()
                index = int(name[1])
                assert now in (text, right[f"f{index}"]), (name, now)
        done = fix(root, server)  # after the kills, a run finishes the job
    assert done.returncode == 0, done.stdout + done.stderr
    for i in range(6):
        assert (root / f"m{i}.py").read_text() == right[f"f{i}"]
    assert not list(root.rglob("*.oci-lsp.tmp"))


def test_a_tiny_ctranslate2_model_runs_it_to_the_end(tmp_path: Path) -> None:
    from tests.tiny_models import build_tiny_model

    model = build_tiny_model(tmp_path / "model")
    root = write_files(tmp_path / "ws", CALC)
    before = snapshot(root)
    done = fix(root, None, "--model", str(model), "--device", "cpu", "--rounds", "1")
    assert done.returncode == 1, done.stdout + done.stderr  # noise never passes
    assert snapshot(root) == before
    assert "not-fixed" in done.stdout


def test_the_human_eval_workspace_is_fixed_from_scripted_answers(tmp_path: Path) -> None:
    from tests.human_eval_workspace import build, canonical_answers, load_problems

    root = tmp_path / "he"
    problems = build(root)
    rows = load_problems()
    broken = [p for p in problems if p.bug is not None and p.bug.kind != "syntax"]

    # The model answers with the problem's canonical module; the loop takes the function.
    reply = canonical_answers(broken, rows)

    report = tmp_path / "report.json"
    with ScriptedOpenAIServer(reply) as server:
        done = fix(root, server, "--jobs", "2", "--json", str(report))
    data = json.loads(report.read_text())
    fixed = {(g["path"], g["function"]) for g in data["groups"] if g["status"] == "fixed"}
    assert fixed == {(f"solutions/{p.source.name}", p.function) for p in broken}, done.stdout
    assert data["failing_after"] == 0
    # The syntax error is a collection error: reported, not touched, so the run exits 1.
    syntax = [p for p in problems if p.bug is not None and p.bug.kind == "syntax"]
    assert len(data["unfixable"]) == len(syntax)
    assert done.returncode == (1 if syntax else 0)
    for p in syntax:
        assert p.bug is not None and p.bug.new in p.source.read_text()


def test_a_file_changed_on_disk_during_the_run_is_not_overwritten(tmp_path: Path) -> None:
    from oci_lsp.fix.writes import FileProblem, read_text_file, write_atomic

    path = write_files(tmp_path, {"m.py": "A = 1\n"}) / "m.py"
    seen = read_text_file(path)
    path.write_text("A = 2  # the user's edit meanwhile\n")
    with pytest.raises(FileProblem, match="changed on disk"):
        write_atomic(seen, "A = 3\n")
    assert path.read_text() == "A = 2  # the user's edit meanwhile\n"
    assert not list(tmp_path.glob(".*.oci-lsp.tmp"))


def test_projects_below_the_root_are_left_to_their_own_runs(tmp_path: Path) -> None:
    root = write_files(tmp_path / "mono", CALC)
    # Two projects of their own, whose clashing test files the root's run would trip over.
    for name in ("pkg_a", "pkg_b"):
        write_files(
            root / name,
            {
                "pyproject.toml": "[project]\nname = 'x'\n",
                f"{name}.py": "def one():\n    return 2\n",
                "tests/test_calc.py": f"from {name} import one\n\ndef test_one():\n    assert one() == 1\n",
            },
        )
    before = [snapshot(root / "pkg_a"), snapshot(root / "pkg_b")]
    report = tmp_path / "report.json"
    with ScriptedOpenAIServer(answer(RIGHT)) as server:
        done = fix(root, server, "--json", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "left out, projects of their own (run --fix in each): pkg_a, pkg_b" in done.stderr
    fixed = {g["function"] for g in json.loads(report.read_text())["groups"]}
    assert fixed == {"add", "mul"}
    assert [snapshot(root / "pkg_a"), snapshot(root / "pkg_b")] == before


@pytest.mark.parametrize("innocent_first", [False, True])
def test_a_test_that_blamed_an_innocent_function_is_left_once_the_fault_is_fixed(
    tmp_path: Path, innocent_first: bool
) -> None:
    """With the old rule (`tests.localization = "off"`): test_total's assert calls `total`,
    which is blamed though `scale` is wrong; once scale is fixed total's group is skipped."""
    tests = [
        "def test_scale():\n    assert scale(2) == 4\n",
        "def test_total():\n    assert total([1, 2]) == 6\n",
    ]
    root = write_files(
        tmp_path / "ws",
        {
            "pyproject.toml": '[tool.oci-lsp.tests]\nlocalization = "off"\n',
            "calc.py": "def scale(x):\n    return x * 3\n\n\n"
            "def total(xs):\n    return sum(scale(x) for x in xs)\n",
            "tests/test_calc.py": "from calc import scale, total\n\n\n"
            + "\n\n".join(tests[::-1] if innocent_first else tests),
        },
    )
    report = tmp_path / "report.json"
    with ScriptedOpenAIServer(answer({"scale": RIGHT["scale"]})) as server:
        done = fix(root, server, "--json", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "locating the fault" not in done.stderr
    groups = {g["function"]: g for g in json.loads(report.read_text())["groups"]}
    assert groups["scale"]["status"] == "fixed"
    assert groups["total"]["status"] == "skipped"
    assert groups["total"]["why"] == "its tests pass after the fix of `scale`"
    # Worked on after the fix, the innocent function is not even shown to the model.
    assert (groups["total"]["rounds"] == []) == (not innocent_first)
    assert "return sum(scale(x) for x in xs)" in (root / "calc.py").read_text()


def test_located_the_innocent_functions_test_goes_with_the_fault(tmp_path: Path) -> None:
    """With the ranking (the default) test_total's top suspect is `scale`, which both failing
    tests ran: one group, one fix, and `total` never shown to the model as the one to fix."""
    root = write_files(
        tmp_path / "ws",
        {
            "calc.py": "def scale(x):\n    return x * 3\n\n\n"
            "def total(xs):\n    return sum(scale(x) for x in xs)\n",
            "tests/test_calc.py": "from calc import scale, total\n\n\n"
            "def test_scale():\n    assert scale(2) == 4\n\n\n"
            "def test_total():\n    assert total([1, 2]) == 6\n",
        },
    )
    report = tmp_path / "report.json"
    with ScriptedOpenAIServer(answer({"scale": RIGHT["scale"]})) as server:
        done = fix(root, server, "--json", str(report))
        asked = [r["messages"][0]["content"].splitlines()[0] for r in server.requests]
    assert done.returncode == 0, done.stdout + done.stderr
    [group] = json.loads(report.read_text())["groups"]
    assert (group["function"], group["status"], group["fixed"]) == (
        "scale",
        "fixed",
        ["calc.scale"],
    )
    assert sorted(group["tests"]) == [
        "tests/test_calc.py::test_scale",
        "tests/test_calc.py::test_total",
    ]
    assert all("`scale`" in first for first in asked), asked
    assert "return sum(scale(x) for x in xs)" in (root / "calc.py").read_text()
