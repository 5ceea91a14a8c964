"""What a failing doctest says: the line of its failing example, the function it documents,
and a short message.

Runs inside the *workspace's* interpreter (stdlib and pytest only), for oci_lsp_pytest. A
doctest's failure is raised from doctest's runner, not from the test's code, so the usual
reading (the deepest frame in the test file, the statement there) finds nothing: the example
that failed and its place in the file are on the failure object instead.

doctest clears an example's globals when its run ends; to resolve what the failing example
called, the globals are kept until the report is made (KeptGlobals).

The stdlib's doctest is imported only where a doctest failed (pytest imports it then): it
costs tens of milliseconds, on every run.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any


class KeptGlobals(dict):  # type: ignore[type-arg]
    """A doctest's globals, whose contents outlive doctest's clear() at the end of its run."""

    kept: dict[str, Any] | None = None

    def clear(self) -> None:
        self.kept = dict(self)
        super().clear()


def is_doctest(item: Any) -> bool:
    return type(item).__name__ == "DoctestItem" and hasattr(item, "dtest")


def keep_globals(item: Any) -> None:
    """Before the doctest runs: keep what its examples define (see KeptGlobals)."""
    if not isinstance(item.dtest.globs, KeptGlobals):
        item.dtest.globs = KeptGlobals(item.dtest.globs)


def kept_globals(item: Any) -> dict[str, Any]:
    globs = item.dtest.globs
    kept = getattr(globs, "kept", None)
    if isinstance(globs, KeptGlobals):
        globs.kept = None  # once read, let it go
    return kept if kept is not None else dict(globs)


@dataclass
class DoctestFailure:
    line: int | None  # 0-based line of the failing example in its file
    source: str  # the example's first line, without the prompt
    type: str
    message: str
    tb: Any = None  # the traceback of an unexpected exception
    documented: Any = None  # the function or method the docstring belongs to
    globs: dict[str, Any] = field(default_factory=dict)


def failure_of(item: Any, value: BaseException) -> DoctestFailure | None:
    """The first failing example of a doctest's failure, or None when it is something else
    (a fixture that failed, a skip)."""
    import doctest

    failures = getattr(value, "failures", None) or [value]  # MultipleDoctestFailures
    first = failures[0]
    if not isinstance(first, (doctest.DocTestFailure, doctest.UnexpectedException)):
        return None
    test, example = first.test, first.example
    line = None if test.lineno is None else test.lineno + example.lineno
    source = example.source.strip().splitlines()[0] if example.source.strip() else ""
    globs = kept_globals(item)
    found = DoctestFailure(line, source, "doctest", "", globs=globs)
    if isinstance(first, doctest.DocTestFailure):
        want, got = _short(example.want), _short(first.got)
        found.message = f"{source}: expected {want}, got {got}"
    else:
        exc = first.exc_info[1]
        found.tb = first.exc_info[2]
        text = str(exc).strip().splitlines()
        raised = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
        found.message = f"{source} raised {raised}"
    found.documented = _documented(test, globs)
    return found


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if text else "nothing"


def _documented(test: Any, globs: dict[str, Any]) -> Any:
    """The object whose docstring holds the doctest: its name is the module's and then the
    object's dotted path (`calc.Calc.add`); None for a module's own docstring or a text file."""
    module = globs.get("__name__")
    if not isinstance(module, str) or not test.name.startswith(module + "."):
        return None
    found: Any = None
    scope: Any = globs
    for part in test.name[len(module) + 1 :].split("."):
        try:
            found = scope[part] if isinstance(scope, dict) else inspect.getattr_static(scope, part)
        except (KeyError, AttributeError):
            return None
        scope = found
    return found
