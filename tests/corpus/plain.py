"""Plain pytest on a corpus project: its own configuration, its own venv, from its root.

This is the reference every server result is compared with, so it uses nothing of ours: no
plugin, no conftest. Per-test outcomes come from pytest's own reports: the `-rA` summary
names every test by node id, and the JUnit XML (written to a temporary folder, outside the
workspace) holds each failure's text, in the `native` traceback style so that every frame
reads `File "...", line N, in name`. Options given on the command line after the project's
addopts only change how results are reported (and `-p no:cacheprovider` keeps the
workspace as it was); the project's own plugins, order and options all run.

Node ids are not always stable from one run to the next: isodate parametrizes over a set of
tuples holding dates, so its ids (`test_parse[4-1985-W15-expected21-...]`) follow the string
hash seed of each process. Compare runs with `by_function` (ids without their parameters,
counted) where that matters.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.corpus.workspace import Workspace

TIMEOUT = 600.0
REPORTING = ("-rA", "--tb=native", "--color=no", "-p", "no:cacheprovider")
_SUMMARY = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS) (.+)$")
_OUTCOME = {
    "PASSED": "passed",
    "FAILED": "failed",
    "ERROR": "error",
    "XFAIL": "xfailed",
    "XPASS": "xpassed",
}


@dataclass
class Outcome:
    outcome: str  # passed | failed | error | xfailed | xpassed
    text: str = ""  # the failure's report (native traceback, or the doctest's diff)


@dataclass
class PlainRun:
    exit_code: int  # negative: killed (the timeout ran out)
    seconds: float
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    skipped: int = 0
    output: str = ""

    @property
    def failed(self) -> list[str]:
        """Node ids that failed or errored (collection errors included)."""
        return sorted(n for n, o in self.outcomes.items() if o.outcome in ("failed", "error"))

    @property
    def passed(self) -> list[str]:
        return sorted(n for n, o in self.outcomes.items() if o.outcome == "passed")

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.failed and bool(self.passed)

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for o in self.outcomes.values():
            counts[o.outcome] = counts.get(o.outcome, 0) + 1
        parts = [f"{n} {k}" for k, n in sorted(counts.items())]
        parts += [f"{self.skipped} skipped"] if self.skipped else []
        return f"exit {self.exit_code}: {', '.join(parts) or 'nothing ran'} in {self.seconds:.2f}s"


def by_function(nodeids: Iterable[str]) -> Counter[str]:
    """How many of nodeids each test function has (parameters dropped)."""
    return Counter(node.split("[", 1)[0] for node in nodeids)


def run_pytest(
    ws: Workspace,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> PlainRun:
    """`python -m pytest` in ws's venv, from its root, with its configuration."""
    with tempfile.TemporaryDirectory(prefix="oci-corpus-junit-") as tmp:
        junit = Path(tmp) / "junit.xml"
        argv = [str(ws.python), "-m", "pytest", *REPORTING, f"--junitxml={junit}", *args]
        run_env = ws.env(env)
        run_env["COLUMNS"] = "400"  # summary lines are cut to the terminal's width
        start = time.perf_counter()
        # A session of its own: on a timeout the whole group goes (xdist's workers too).
        proc = subprocess.Popen(
            argv,
            cwd=ws.root,
            env=run_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        seconds = time.perf_counter() - start
        output = out.decode("utf-8", errors="replace")
        texts = _junit_texts(junit) if junit.exists() and proc.returncode >= 0 else {}
    run = PlainRun(proc.returncode, seconds, output=output)
    for line in _summary_lines(output):
        match = _SUMMARY.match(line)
        if match:
            kind, rest = match.groups()
            nodeid = _nodeid(rest, texts)
            run.outcomes[nodeid] = Outcome(_OUTCOME[kind], texts.get(_mangle(nodeid), ""))
        elif line.startswith("SKIPPED"):
            counted = re.match(r"SKIPPED \[(\d+)\]", line)
            run.skipped += int(counted.group(1)) if counted else 1
    return run


def _summary_lines(output: str) -> list[str]:
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if "short test summary info" in line and line.startswith("="):
            return lines[i + 1 :]
    return []


def _nodeid(rest: str, texts: Mapping[tuple[str, str], str]) -> str:
    """The node id at the start of a summary line's rest ("id" or "id - message")."""
    cuts = [m.start() for m in re.finditer(" - ", rest)]
    candidates = [rest[:c] for c in cuts] + [rest]
    for candidate in candidates:  # the one JUnit knows, else the first with balanced brackets
        if _mangle(candidate) in texts:
            return candidate
    for candidate in candidates:
        if candidate.count("[") == candidate.count("]"):
            return candidate
    return rest


def _mangle(nodeid: str) -> tuple[str, str]:
    """(classname, name) of a node id in pytest's JUnit XML (junitxml.mangle_test_address)."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def _junit_texts(path: Path) -> dict[tuple[str, str], str]:
    texts: dict[tuple[str, str], str] = {}
    try:
        cases = list(ET.parse(path).getroot().iter("testcase"))
    except ET.ParseError:  # cut short; the summary still names the outcomes
        return texts
    for case in cases:
        key = (case.get("classname", ""), case.get("name", ""))
        parts = [
            "\n".join(filter(None, [child.get("message", ""), child.text or ""]))
            for child in case
            if child.tag in ("failure", "error")
        ]
        texts[key] = "\n".join(parts) if parts else texts.get(key, "")
    return texts
