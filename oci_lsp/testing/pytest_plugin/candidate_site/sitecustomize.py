"""Loaded at the start of every Python process a candidate's tests start (the sandbox puts
this directory first on PYTHONPATH): it imports the candidate in place of the target file, as
the candidate's own process does, so a test that runs `python -m pkg` tests the candidate.

It then runs the sitecustomize module this one shadows, if the interpreter has one.
"""

import importlib.machinery
import importlib.util
import os
import sys


def _candidate() -> None:
    try:
        import oci_lsp_candidate  # beside oci_lsp_sandbox, on PYTHONPATH too
    except ImportError:
        return
    oci_lsp_candidate.install_from_environment()


def _shadowed() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    others = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", others)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_candidate()
_shadowed()
