"""The execution-feedback loop with scripted backends and the real sandbox and pytest.

What the backends say is scripted; everything else is real: candidates are extracted, put in
place through the sandbox's import hook, and verified by pytest in confined children.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from oci_lsp.config import RefineSettings
from oci_lsp.engine.backend import (
    BackendStatus,
    Candidate,
    ChatMessage,
    GenerationOptions,
    OnText,
)
from oci_lsp.refine.isolation import Limits, Sandbox
from oci_lsp.refine.loop import Conversations, Refiner, Target, TestPlan
from tests.conftest import processes_with, write_files

WAIT = 120.0

CALC = '''\
import math


def add(a, b):
    """Return the sum of a and b."""
    return a - b


def mul(a, b):
    return a * b
'''

TESTS = """\
from calc import add, mul


def test_add():
    assert add(1, 2) == 3


def test_add_zero():
    assert add(0, 0) == 0


def test_add_negative():
    assert add(-1, -1) == -2


def test_mul():
    assert mul(2, 3) == 6
"""

RIGHT = "```python\ndef add(a, b):\n    return a + b\n```"
WRONG = "```python\ndef add(a, b):\n    return a * b\n```"


class ScriptedBackend:
    """Answers each call with the next list of replies; remembers every conversation."""

    def __init__(self, script: Sequence[Sequence[str]]) -> None:
        self.script = [list(replies) for replies in script]
        self.calls: list[list[ChatMessage]] = []
        self.options: list[GenerationOptions] = []

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        on_text: OnText | None = None,
        cancel: asyncio.Event | None = None,
    ) -> list[Candidate]:
        self.calls.append(list(messages))
        self.options.append(options)
        replies = self.script[min(len(self.calls), len(self.script)) - 1]
        for index, reply in enumerate(replies):
            if on_text is not None:
                on_text(index, reply)
        return [Candidate(text, "stop", tokens=len(text.split())) for text in replies]

    async def load(self) -> None:
        pass

    def status(self) -> BackendStatus:
        return BackendStatus(id="scripted", state="ready")

    async def close(self) -> None:
        pass


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return write_files(tmp_path / "ws", {"calc.py": CALC, "tests/test_calc.py": TESTS})


@pytest.fixture
async def sandbox(workspace: Path) -> AsyncIterator[Sandbox]:
    box = Sandbox(workspace, sys.executable)
    yield box
    await box.close()


def target(workspace: Path) -> Target:
    path = workspace / "calc.py"
    return Target(workspace, path, "add", path.read_text(encoding="utf-8"))


PLAN = TestPlan(
    failing=["tests/test_calc.py::test_add", "tests/test_calc.py::test_add_negative"],
    others=["tests/test_calc.py"],
    failure="tests/test_calc.py::test_add failed:\nassert add(1, 2) == 3 (got -1)",
)


def refiner(backend: ScriptedBackend, sandbox: Sandbox, **kwargs: object) -> Refiner:
    settings = RefineSettings(max_rounds=3, candidates=2)
    return Refiner(backend, sandbox, settings, **kwargs)  # type: ignore[arg-type]


async def test_right_at_once_is_verified_in_round_one(workspace: Path, sandbox: Sandbox) -> None:
    before = snapshot(workspace)
    backend = ScriptedBackend([[RIGHT, WRONG]])
    result = await asyncio.wait_for(refiner(backend, sandbox).refine(target(workspace), PLAN), WAIT)
    assert result.verified and len(result.rounds) == 1
    assert result.source is not None and "return a + b" in result.source
    assert '"""Return the sum of a and b."""' in result.source  # the docstring kept
    assert result.source.replace("return a + b", "return a - b") == CALC
    [round_one] = result.rounds
    assert round_one.candidates[0].outcome is not None
    assert round_one.candidates[0].outcome.passed == 4  # every test of the plan, once
    assert snapshot(workspace) == before
    # A fix starts from the code as it is, with the real failure as the first feedback.
    [messages] = backend.calls
    assert [m.role for m in messages] == ["user", "assistant", "user"]
    assert "return a - b" in messages[1].content
    assert messages[2].content.startswith("Execution result: \n")
    assert "got -1" in messages[2].content
    assert backend.options[0].num_candidates == 2


async def test_right_after_one_feedback_round(workspace: Path, sandbox: Sandbox) -> None:
    before = snapshot(workspace)
    backend = ScriptedBackend([[WRONG, WRONG], [RIGHT, WRONG]])
    events: list[tuple[str, int]] = []
    result = await asyncio.wait_for(
        refiner(backend, sandbox).refine(
            target(workspace), PLAN, on_event=lambda kind, n, _: events.append((kind, n))
        ),
        WAIT,
    )
    assert result.verified and len(result.rounds) == 2
    second = backend.calls[1]
    assert second[-2] == ChatMessage("assistant", WRONG)
    feedback = second[-1].content
    assert feedback.startswith("Execution result: \n")
    # The real failure of the failing test that ran first: a * b gives 2 for add(1, 2).
    assert "tests/test_calc.py::test_add failed" in feedback
    assert "assert 2 == 3" in feedback
    assert result.rounds[1].feedback is not None and "assert 2 == 3" in result.rounds[1].feedback
    assert ("feedback", 1) in events and ("verifying", 2) in events
    assert snapshot(workspace) == before


async def test_never_right_returns_the_best_unverified_and_keeps_the_dialogue(
    workspace: Path, sandbox: Sandbox
) -> None:
    # The failing tests run first and the run stops at the first failure: abs(a + b) passes
    # test_add then fails test_add_negative; a + b + 1 fails at once. The better one is fed back.
    off_by_one = "```python\ndef add(a, b):\n    return a + b + 1\n```"
    almost = "```python\ndef add(a, b):\n    return abs(a + b)\n```"
    backend = ScriptedBackend([[off_by_one, almost]])
    conversations = Conversations()
    loop = refiner(backend, sandbox, conversations=conversations)
    result = await asyncio.wait_for(loop.refine(target(workspace), PLAN), WAIT)
    assert not result.verified and len(result.rounds) == 3
    assert result.source is not None and "return abs(a + b)" in result.source  # passed more
    assert backend.calls[1][-2] == ChatMessage("assistant", almost)
    assert "no candidate passed" in result.message
    assert len(conversations) == 1
    # A second request on the same function continues the dialogue.
    backend.script = [[RIGHT]]
    again = await asyncio.wait_for(
        loop.refine(target(workspace), PLAN, instruction="Add the numbers, do not multiply."),
        WAIT,
    )
    assert again.verified
    continued = backend.calls[-1]
    assert continued[: len(backend.calls[2]) + 2][: len(backend.calls[2])] == backend.calls[2]
    assert continued[-1] == ChatMessage("user", "Add the numbers, do not multiply.")
    assert continued[-2].content.startswith("Execution result: \n")
    assert len(conversations) == 0  # the tests pass: dropped


async def test_a_hand_edit_starts_the_dialogue_over(workspace: Path, sandbox: Sandbox) -> None:
    backend = ScriptedBackend([[WRONG]])
    conversations = Conversations()
    loop = refiner(backend, sandbox, conversations=conversations)
    await asyncio.wait_for(loop.refine(target(workspace), PLAN), WAIT)
    assert len(conversations) == 1
    edited = target(workspace)
    edited = Target(edited.root, edited.path, "add", CALC.replace("a - b", "b - a"))
    calls_before = len(backend.calls)  # three rounds
    await asyncio.wait_for(loop.refine(edited, PLAN), WAIT)
    restarted = backend.calls[calls_before]
    assert len(restarted) == 3  # task, current code, failure: a new dialogue
    assert "return b - a" in restarted[1].content


async def test_a_fix_that_breaks_another_test_is_rejected(tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            "calc.py": CALC,
            "tests/test_calc.py": TESTS,
            "tests/test_other.py": "from calc import add\n\ndef test_big():\n    assert add(10, 5) == 15\n",
        },
    )
    # Passes test_add but not test_add_negative nor test_big.
    hack = "```python\ndef add(a, b):\n    return 3 if (a, b) == (1, 2) else a - b\n```"
    backend = ScriptedBackend([[hack], [RIGHT]])
    box = Sandbox(root, sys.executable)
    try:
        plan = TestPlan(failing=["tests/test_calc.py::test_add"], others=["tests"])
        result = await asyncio.wait_for(refiner(backend, box).refine(target(root), plan), WAIT)
    finally:
        await box.close()
    assert result.verified and len(result.rounds) == 2
    first = result.rounds[0].candidates[0].outcome
    assert first is not None and first.verdict == "failed"
    assert first.reports[0].test_id == "tests/test_calc.py::test_add"  # the failing test first
    assert first.reports[0].outcome == "passed"


async def test_lines_a_reply_drops_come_back_or_the_candidate_is_refused(tmp_path: Path) -> None:
    documented = CALC.replace(
        '    """Return the sum of a and b."""\n    return a - b\n',
        '    """Return the sum of a and b.\n\n    ```pycon\n    >>> add(1, 2)\n    3\n'
        '    ```\n    """\n    total = a\n    # then the other one\n    total = total - b\n'
        "    return total\n",
    )
    root = write_files(tmp_path / "ws", {"calc.py": documented, "tests/test_calc.py": TESTS})
    # Its kept lines moved into a string: the comment between them has nowhere to go.
    unkeepable = (
        '```python\ndef add(a, b):\n    return f"""\n    total = a\n    total = total - b\n'
        '    """\n```'
    )
    # Right, but its docstring lost the example.
    short = '```python\ndef add(a, b):\n    """Return the sum of a and b."""\n    return a + b\n```'
    backend = ScriptedBackend([[unkeepable, short]])
    box = Sandbox(root, sys.executable)
    try:
        path = root / "calc.py"
        result = await asyncio.wait_for(
            refiner(backend, box).refine(Target(root, path, "add", documented), PLAN), WAIT
        )
    finally:
        await box.close()
    assert result.verified and len(result.rounds) == 1
    refused, kept = result.rounds[0].candidates
    assert refused.rejected and refused.outcome is None  # never run, never applied
    assert refused.error is not None and "`# then the other one`" in refused.error
    assert result.source is not None
    assert documented[: documented.index("    total = a")] in result.source  # every line
    assert (
        result.kept
        == kept.kept
        == ("kept 5 line(s) of the docstring that the reply dropped or changed",)
    )
    assert result.message.endswith(
        "(kept 5 line(s) of the docstring that the reply dropped or changed)"
    )


@pytest.mark.parametrize(
    ("shape", "reply"),
    [
        ("body only", "Here you go:\n```python\nreturn a + b\n```"),
        (
            "whole module",
            "```python\nimport math\n\ndef add(a, b):\n    return a + b\n\nprint(add(1, 2))\n```",
        ),
        (
            "prose around",
            "The bug is the minus sign.\n\ndef add(a, b):\n    return a + b\n\nThat fixes it.",
        ),
        (
            "several blocks",
            "```python\nadd(1, 2)\n```\nFixed:\n```python\ndef add(a, b):\n    return a + b\n```\n```bash\npytest\n```",
        ),
    ],
)
async def test_every_reply_shape_is_used(
    workspace: Path, sandbox: Sandbox, shape: str, reply: str
) -> None:
    backend = ScriptedBackend([[reply]])
    result = await asyncio.wait_for(refiner(backend, sandbox).refine(target(workspace), PLAN), WAIT)
    assert result.verified, (shape, result.rounds[0].candidates[0].error)


async def test_a_reply_without_code_is_fed_back(workspace: Path, sandbox: Sandbox) -> None:
    backend = ScriptedBackend([["I am not sure what you mean."], [RIGHT]])
    result = await asyncio.wait_for(refiner(backend, sandbox).refine(target(workspace), PLAN), WAIT)
    assert result.verified and len(result.rounds) == 2
    assert result.rounds[0].candidates[0].error
    assert backend.calls[1][-1].content.startswith("Execution result: \n")


async def test_a_candidate_that_loops_forever_times_out(workspace: Path, sandbox: Sandbox) -> None:
    forever = "```python\ndef add(a, b):\n    while True:\n        pass\n```"
    backend = ScriptedBackend([[forever], [RIGHT]])
    loop = refiner(backend, sandbox, limits=Limits(timeout=3.0, cpu_seconds=30))
    result = await asyncio.wait_for(loop.refine(target(workspace), PLAN), WAIT)
    assert result.verified and len(result.rounds) == 2
    outcome = result.rounds[0].candidates[0].outcome
    assert outcome is not None and outcome.verdict == "timeout"
    assert backend.calls[1][-1].content == "Execution result: \nExecution timed out."


async def test_a_candidate_that_eats_memory_is_stopped(workspace: Path, sandbox: Sandbox) -> None:
    greedy = "```python\ndef add(a, b):\n    hog = bytearray(8 << 30)\n    return a + b\n```"
    backend = ScriptedBackend([[greedy], [RIGHT]])
    loop = refiner(backend, sandbox, limits=Limits(memory_bytes=2 << 30))
    result = await asyncio.wait_for(loop.refine(target(workspace), PLAN), WAIT)
    assert result.verified and len(result.rounds) == 2
    assert "MemoryError" in backend.calls[1][-1].content


async def test_a_candidate_cannot_write_outside_its_sandbox(
    workspace: Path, sandbox: Sandbox, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    vandal = (
        "```python\ndef add(a, b):\n"
        f"    open({str(workspace / 'calc.py')!r}, 'w').write('gone')\n"
        f"    open({str(outside)!r}, 'w').write('x')\n"
        "    return a + b\n```"
    )
    before = snapshot(workspace)
    backend = ScriptedBackend([[vandal], [RIGHT]])
    result = await asyncio.wait_for(refiner(backend, sandbox).refine(target(workspace), PLAN), WAIT)
    assert result.verified and len(result.rounds) == 2
    assert "PermissionError" in backend.calls[1][-1].content
    assert snapshot(workspace) == before
    assert not outside.exists()
    outcome = result.rounds[0].candidates[0].outcome
    assert outcome is not None and str(outcome.isolation.get("filesystem")).startswith("landlock")


async def test_cancel_kills_every_process_and_leaves_no_files(
    workspace: Path, sandbox: Sandbox
) -> None:
    marker = "987654.25"  # a sleep no other process runs
    slow = (
        "```python\nimport subprocess, time\n\ndef add(a, b):\n"
        f"    subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
        "    time.sleep(60)\n    return a + b\n```"
    )
    before_tmp = set(os.listdir(os.environ.get("TMPDIR", "/tmp")))
    backend = ScriptedBackend([[slow]])
    cancel = asyncio.Event()

    def on_event(kind: str, number: int, _: object) -> None:
        if kind == "verifying":
            asyncio.get_running_loop().call_later(1.5, cancel.set)

    result = await asyncio.wait_for(
        refiner(backend, sandbox).refine(target(workspace), PLAN, on_event=on_event, cancel=cancel),
        WAIT,
    )
    assert result.cancelled and not result.verified
    for _ in range(50):
        if not processes_with(marker):
            break
        await asyncio.sleep(0.1)
    assert not processes_with(marker)
    after_tmp = set(os.listdir(os.environ.get("TMPDIR", "/tmp")))
    assert not [n for n in after_tmp - before_tmp if n.startswith("oci-candidate-")]


async def test_a_process_left_behind_by_a_passing_candidate_is_killed(
    workspace: Path, sandbox: Sandbox
) -> None:
    marker = "987653.5"
    leaves = (
        "```python\nimport subprocess\n\ndef add(a, b):\n"
        f"    subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
        "    return a + b\n```"
    )
    backend = ScriptedBackend([[leaves]])
    result = await asyncio.wait_for(refiner(backend, sandbox).refine(target(workspace), PLAN), WAIT)
    assert result.verified
    for _ in range(50):
        if not processes_with(marker):
            break
        await asyncio.sleep(0.1)
    assert not processes_with(marker)


async def test_no_tests_means_one_round_unverified(workspace: Path, sandbox: Sandbox) -> None:
    backend = ScriptedBackend([[RIGHT]])
    result = await asyncio.wait_for(
        refiner(backend, sandbox).refine(target(workspace), TestPlan(), mode="generate"), WAIT
    )
    assert not result.verified and len(result.rounds) == 1
    assert result.source is not None and "return a + b" in result.source
    assert "unverified" in result.message
    [messages] = backend.calls
    assert [m.role for m in messages] == ["user"]
    assert messages[0].content.startswith("Complete the function `add` in `calc.py`.")


async def test_the_loop_runs_on_a_real_tiny_ctranslate2_model(
    workspace: Path, sandbox: Sandbox, tmp_path: Path
) -> None:
    from oci_lsp.engine.ct2_backend import Ct2Backend
    from tests.tiny_models import build_tiny_model

    model = Ct2Backend(
        build_tiny_model(tmp_path / "model"), "ds", device="cpu", compute_type="int8", context=2048
    )
    before = snapshot(workspace)
    settings = RefineSettings(max_rounds=2, candidates=2, temperature=0.8)
    loop = Refiner(model, sandbox, settings, max_new_tokens=24)
    texts: list[tuple[int, str]] = []
    try:
        result = await asyncio.wait_for(
            loop.refine(target(workspace), PLAN, on_text=lambda i, t: texts.append((i, t))), WAIT
        )
    finally:
        await model.close()
    # What a random model writes is noise: never verified, fed back, both rounds run.
    assert not result.verified
    assert len(result.rounds) == 2
    assert all(len(r.candidates) == 2 for r in result.rounds)
    assert result.rounds[1].feedback is not None
    assert {i for i, _ in texts} == {0, 1}  # both candidates streamed
    assert snapshot(workspace) == before


SHOP = {
    "prices.py": 'def rate(kind):\n    """The tax rate."""\n    return 0.2\n',
    "shop.py": "from prices import rate\n\n\ndef total(kinds):\n"
    "    return sum(rate(k) for k in kinds) + 1\n",
    "tests/test_shop.py": """\
import subprocess
import sys

from prices import rate
from shop import total


def test_total():
    assert round(total(["a", "b"]), 6) == 0.2


def test_rate_in_another_process():
    out = subprocess.run(
        [sys.executable, "-c", "import prices; print(prices.rate('a'))"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert out.strip() == "0.1"
""",
}
BOTH = (
    "```python\ndef total(kinds):\n    return sum(rate(k) for k in kinds)\n```\n"
    "and\n```python\ndef rate(kind):\n    return 0.1\n```"
)
TOTAL_ONLY = "```python\ndef total(kinds):\n    return sum(rate(k) for k in kinds)\n```"


async def test_two_functions_in_two_files_are_fixed_together(tmp_path: Path) -> None:
    """One reply changes both; each candidate runs with both files served from memory (in
    the tests' own process and in the processes they start); nothing is written."""
    root = write_files(tmp_path / "shop", SHOP)
    before = snapshot(root)
    total = Target(root, root / "shop.py", "total", SHOP["shop.py"])
    rate = Target(root, root / "prices.py", "rate", SHOP["prices.py"])
    plan = TestPlan(
        failing=["tests/test_shop.py::test_total"],
        others=["tests/test_shop.py"],
        failure="tests/test_shop.py::test_total failed:\nassert 1.4 == 0.2",
    )
    backend = ScriptedBackend([[TOTAL_ONLY, BOTH]])
    box = Sandbox(root, sys.executable)
    try:
        result = await asyncio.wait_for(
            refiner(backend, box).refine(total, plan, partners=[rate]), WAIT
        )
    finally:
        await box.close()
    assert result.verified, result.message
    [round_one] = result.rounds
    half, whole = round_one.candidates
    assert half.error == "the reply defines no `rate`" and half.outcome is None
    assert whole.outcome is not None and whole.outcome.passed == 2
    assert result.source == SHOP["shop.py"].replace(") + 1\n", ")\n")
    assert result.more == {
        root / "prices.py": SHOP["prices.py"].replace("return 0.2", "return 0.1")
    }
    assert snapshot(root) == before
    # The task named both, showed both modules, and the current code of both came back as
    # the first answer, the failure as its execution result.
    [messages] = backend.calls
    assert "`total` in `shop.py` and `rate` in `prices.py`" in messages[0].content
    assert "# shop.py\ndef total(kinds):" in messages[1].content
    assert "# prices.py\ndef rate(kind):" in messages[1].content
    assert messages[2].content.startswith("Execution result: \n")


def test_a_conversation_belongs_to_the_functions_it_fixes(workspace: Path) -> None:
    """The dialogue of `add` alone, of `mul` (another suspect of the same failure) and of the
    two together are three; a hand edit of either drops the pair's."""
    conversations = Conversations()
    add = target(workspace)
    mul = Target(workspace, add.path, "mul", add.source)
    conversations.keep(add, [ChatMessage("user", "add alone")])
    conversations.keep(add, [ChatMessage("user", "together")], [mul])
    assert conversations.get(mul) is None
    assert [m.content for m in conversations.get(add) or []] == ["add alone"]
    assert [m.content for m in conversations.get(add, [mul]) or []] == ["together"]
    edited = Target(workspace, add.path, "mul", add.source.replace("a * b", "b * a"))
    assert conversations.get(add, [edited]) is None
    assert [m.content for m in conversations.get(add) or []] == ["add alone"]
