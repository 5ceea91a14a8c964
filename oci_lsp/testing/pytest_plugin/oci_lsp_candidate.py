"""The candidate's source in place of the target file, for imports only.

Shared by the sandbox worker (oci_lsp_sandbox: the candidate's child process) and by
candidate_site/sitecustomize.py (any Python process the candidate's tests start), so both
import the same code. Runs in the workspace's interpreter: the stdlib only.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import sys
from typing import Any

# What a candidate's child tells the Python processes its tests start.
CANDIDATE_TARGET = "OCI_LSP_CANDIDATE_TARGET"  # the file the candidate replaces
CANDIDATE_SOURCE = "OCI_LSP_CANDIDATE_SOURCE"  # a file holding the candidate's module text
# A candidate that changes functions in more than one file (a fix of two functions): the
# other files, as JSON [[target, source file], ...].
CANDIDATE_MORE = "OCI_LSP_CANDIDATE_MORE"


class _CandidateLoader(importlib.machinery.SourceFileLoader):
    def __init__(self, fullname: str, path: str, source: str) -> None:
        super().__init__(fullname, path)
        self.candidate_source = source

    def get_code(self, fullname: str) -> Any:  # never the stale bytecode of the old source
        return compile(self.candidate_source, self.path, "exec", dont_inherit=True)

    def get_source(self, fullname: str) -> str:
        return self.candidate_source


class CandidateFinder:
    """Serves the candidate for the module whose file is the target, whatever its name."""

    def __init__(self, target: str, source: str) -> None:
        self.target = os.path.normcase(os.path.realpath(target))
        self.source = source
        stem = os.path.splitext(os.path.basename(target))[0]
        # Only names that can be that file are looked up twice: the hook costs nothing else.
        self.last = os.path.basename(os.path.dirname(target)) if stem == "__init__" else stem

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname.rpartition(".")[2] != self.last:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.origin or not self._is_target(spec.origin):
            spec = self._at_root(fullname, path)
            if spec is None or not spec.origin:
                return None
        spec.loader = _CandidateLoader(fullname, spec.origin, self.source)
        return spec

    def _is_target(self, path: str) -> bool:
        return os.path.normcase(os.path.realpath(path)) == self.target

    def _at_root(self, fullname: str, path: Any) -> Any:
        """pytest's importlib mode asks for a dotted name with the root of its package as the
        path (`pkg.calc` in `src`), which the path finder looks for as `src/calc.py`."""
        parts = fullname.split(".")
        for entry in path or ():
            if not isinstance(entry, str):
                continue
            for origin, package in (
                (os.path.join(entry, *parts) + ".py", False),
                (os.path.join(entry, *parts, "__init__.py"), True),
            ):
                if os.path.exists(origin) and self._is_target(origin):
                    where = [os.path.dirname(origin)] if package else None
                    return importlib.util.spec_from_file_location(
                        fullname, origin, submodule_search_locations=where
                    )
        return None

    def invalidate_caches(self) -> None:
        pass


def more_targets() -> list[tuple[str, str]]:
    """The other files of a candidate that changes several: (target, source file) each."""
    try:
        pairs = json.loads(os.environ.get(CANDIDATE_MORE) or "[]")
    except ValueError:
        return []
    return [(str(t), str(f)) for t, f in pairs] if isinstance(pairs, list) else []


def install_from_environment() -> None:
    """In a process a candidate's test started: serve the candidate, as its parent does."""
    target, source_file = os.environ.get(CANDIDATE_TARGET), os.environ.get(CANDIDATE_SOURCE)
    if not target or not source_file:
        return
    for each_target, each_file in [(target, source_file), *more_targets()]:
        try:
            with open(each_file, encoding="utf-8") as handle:
                source = handle.read()
        except OSError:
            continue
        sys.meta_path.insert(0, CandidateFinder(each_target, source))
