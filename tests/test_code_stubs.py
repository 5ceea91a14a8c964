"""Stubs at a line, definitions by indentation, and line edits that follow a moved text."""

from __future__ import annotations

import pytest

from oci_lsp.code.edits import apply_edits, line_edits, rebase
from oci_lsp.code.scan import definitions
from oci_lsp.code.stubs import stub_at

SOURCE = '''\
import os


def ellipsis():
    ...


def documented(a,
               b):
    """Only a docstring."""


class Shape:
    def area(self):
        raise NotImplementedError("subclasses")

    async def later(self):
        """Doc."""
        # TODO: write it

    def todo(self):
        # TODO everything

    def real(self):
        # TODO: tidy
        return 1


def passes():
    pass


def broken(:
    pass


def after_broken():
    x = """
def not_a_def():
    ...
"""
    return x
'''


def line_of(text: str) -> int:
    return next(i for i, line in enumerate(SOURCE.splitlines(), 1) if text in line)


@pytest.mark.parametrize(
    ("at", "qualname", "kind"),
    [
        ("    ...", "ellipsis", "ellipsis"),
        ("b):", "documented", "docstring"),
        ('raise NotImplementedError("subclasses")', "Shape.area", "not-implemented"),
        ("async def later", "Shape.later", "todo"),
        ("# TODO everything", "Shape.todo", "todo"),
        ("def passes", "passes", "pass"),
    ],
)
def test_each_kind_of_stub_is_found_from_any_of_its_lines(
    at: str, qualname: str, kind: str
) -> None:
    stub = stub_at(SOURCE, line_of(at))
    assert stub is not None and (stub.definition.qualname, stub.kind) == (qualname, kind)


@pytest.mark.parametrize("at", ["import os", "return 1", "def after_broken", "class Shape"])
def test_what_is_not_a_stub(at: str) -> None:
    assert stub_at(SOURCE, line_of(at)) is None


def test_a_bracket_left_open_or_a_def_in_a_string_hides_nothing() -> None:
    names = [d.qualname for d in definitions(SOURCE)]
    assert "after_broken" in names  # past `def broken(:`
    assert "not_a_def" not in names  # inside a string


def test_line_edits_replace_only_what_changed() -> None:
    old = "import os\n\n\ndef f():\n    ...\n"
    new = "import os\nimport sys\n\n\ndef f():\n    return sys.argv\n"
    edits = line_edits(old, new)
    assert [(e.start, e.end) for e in edits] == [(1, 1), (4, 5)]
    assert apply_edits(old, edits) == new


def test_edits_follow_a_text_that_moved_and_refuse_one_that_changed_there() -> None:
    old = "a = 1\n\n\ndef f():\n    ...\n\n\ndef g():\n    pass\n"
    new = old.replace("    ...\n", "    return 2\n")
    edits = line_edits(old, new)
    moved = "# header\n" + old
    assert apply_edits(moved, rebase(edits, old, moved) or []) == "# header\n" + new
    touched = old.replace("def f():", "def f(x):")
    assert rebase(edits, old, touched) is None
