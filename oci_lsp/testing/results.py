"""What a test run tells us, independent of the runner that produced it.

Both sources of results, our pytest plugin's event stream and JUnit XML from any other
runner, are turned into these records; everything downstream (mapping failures to code,
diagnostics, the refinement loop) reads only these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal["passed", "failed", "error", "skipped", "timeout"]

# The diagnostic codes of CONTRACT.md, one per way a test can go wrong.
FailureKind = Literal["test-failed", "test-error", "test-timeout", "collection-error"]

# What one test executed of the workspace's own code (issue 15): absolute real path -> the
# 1-based lines that ran, from its setup to its teardown. Recorded by the plugin's
# oci_lsp_spectra in a run with RunSpec.record; the ranking (testing/localize.py) reads it.
Spectrum = Mapping[str, frozenset[int]]


@dataclass(frozen=True)
class Frame:
    """One traceback entry, outermost first in a list."""

    path: str  # absolute path of the file
    line: int  # 1-based
    function: str  # the code object's name ("<module>" at module level)


@dataclass(frozen=True)
class FunctionRef:
    """A function found at run time (the plugin resolves calls through the live module)."""

    path: str  # absolute path of the file that defines it
    line: int  # 1-based line of its `def` (or first decorator)
    qualname: str  # e.g. "Calc.add"
    module: str  # e.g. "calc"


@dataclass
class TestReport:
    __test__ = False  # not a pytest test class, though its name says Test
    """The outcome of one test."""

    test_id: str  # pytest node id relative to the run's rootdir: "tests/test_calc.py::test_add"
    outcome: Outcome
    path: str | None = None  # absolute path of the test's file
    line: int | None = None  # 1-based line of the test's definition
    message: str = ""  # one short line: "assert add(1, 2) == 3 (got 4)"
    longrepr: str = ""  # the full failure text, for the quick-fixes
    frames: list[Frame] = field(default_factory=list)
    # The frames of the exceptions the failing one was chained from (its cause, or what it
    # re-raised: pytest.raises(match=...)), the root cause's first; issue 15, an addition.
    chained_frames: list[Frame] = field(default_factory=list)
    # The function called in the failing statement of the test, resolved at run time.
    called: FunctionRef | None = None
    duration: float = 0.0
    # A doctest: `path` is the file that holds it (a module or a text file), `line` its
    # failing example, `called` the function it documents.
    doctest: bool = False

    @property
    def failed(self) -> bool:
        return self.outcome in ("failed", "error", "timeout")

    @property
    def kind(self) -> FailureKind:
        if self.outcome == "timeout":
            return "test-timeout"
        if self.outcome == "error":
            return "test-error"
        return "test-failed"


@dataclass
class CollectionError:
    """A file that could not be collected: a syntax error, a failed import, a broken conftest."""

    path: str  # absolute path of the file at fault
    line: int | None  # 1-based line that caused it, when known
    message: str  # one short line
    longrepr: str = ""
    # The node id (or file) pytest was collecting when it failed; the key that clears it.
    collector: str = ""


class Collected:
    """A run listener that keeps every report and collection error (a whole run's results,
    when nothing needs them while it goes on)."""

    def __init__(self) -> None:
        self.reports: list[TestReport] = []
        self.errors: list[CollectionError] = []
        self.spectra: dict[str, Spectrum] = {}  # by test id, in a run that records them
        # By test module (real path): what its import ran for its tests, in such a run.
        self.module_spectra: dict[str, Spectrum] = {}

    def collected(self, count: int) -> None:
        pass

    def started(self, test_id: str) -> None:
        pass

    def report(self, report: TestReport) -> None:
        self.reports.append(report)

    def collection_error(self, error: CollectionError) -> None:
        self.errors.append(error)

    def configured(self, changes: Sequence[str], seed: int | None) -> None:
        pass

    def spectrum(self, test_id: str, spectrum: Spectrum) -> None:
        self.spectra[test_id] = spectrum

    def module_spectrum(self, path: str, spectrum: Spectrum) -> None:
        self.module_spectra[path] = spectrum

    @property
    def failing(self) -> list[TestReport]:
        return [r for r in self.reports if r.failed]
