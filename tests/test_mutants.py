"""code/mutants.py: the small changes that locate a fault (issue 15), on source text alone."""

from __future__ import annotations

import ast
import textwrap

from oci_lsp.code.mutants import module_level, mutants_of

MODULE = textwrap.dedent(
    '''\
    import math  # a comment that stays


    class Range:
        """A range."""

        def __init__(self, lo, hi):
            """Keep the bounds."""
            self.lo = lo  # inclusive
            self.hi = hi + 1

        def has(self, x):
            if not self.lo <= x and x != 0:
                return -x * 2 > 0
            def inner(y):
                return y - 1
            return inner(x) if x else True


    def naïve(s="é"):
        return len(s + "ü") / 2
    '''
)


def changes(def_line: int, lines: list[int] | None = None) -> list[tuple[int, str]]:
    return [(m.line, m.change) for m in mutants_of(MODULE, def_line, lines)]


def test_each_operator_changes_one_spot_of_the_function_s_own_body() -> None:
    found = changes(12)  # Range.has
    assert (13, "`<=` to `<`") in found and (13, "`<=` to `>`") in found
    assert (13, "`!=` to `==`") in found
    assert (13, "`and` to `or`") in found
    assert (13, "the condition negated") in found
    assert (13, "`0` to `1`") in found and (13, "`0` to `-1`") in found
    assert (14, "`*` to `/`") in found
    assert (14, "unary `-` dropped") in found
    assert (14, "`>` to `>=`") in found
    assert (17, "`True` to `False`") in found
    # The nested function's body is its own function's, not has's.
    assert all(line != 16 for line, _ in found)
    assert changes(15) == [(16, "`-` to `+`"), (16, "`1` to `2`"), (16, "`1` to `0`")]


def test_only_the_spot_changes_and_the_result_parses() -> None:
    for mutant in mutants_of(MODULE, 12):
        ast.parse(mutant.source)
        before, after = MODULE.splitlines(), mutant.source.splitlines()
        assert len(before) == len(after)
        differ = [i + 1 for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
        assert differ == [mutant.line]  # docstrings, comments, other lines: as they were


def test_the_replacement_keeps_precedence() -> None:
    (dropped,) = [m for m in mutants_of(MODULE, 12, [14]) if m.change == "unary `-` dropped"]
    assert "return (x) * 2 > 0" in dropped.source
    negated = next(m for m in mutants_of(MODULE, 12, [13]) if m.change == "the condition negated")
    assert "if (not (not self.lo <= x and x != 0)):" in negated.source


def test_columns_are_characters_not_bytes() -> None:
    found = mutants_of(MODULE, 20)  # naïve: its line has a two-byte character before the spots
    assert [m.change for m in found] == [
        "`/` to `//`",
        "`/` to `*`",
        "`+` to `-`",
        "`2` to `3`",
        "`2` to `1`",
    ]
    assert "return (len(s + 'ü') // 2)" in found[0].source  # the spot is unparsed
    assert 'return len(s + "ü") / (3)' in found[3].source
    assert "return len((s - 'ü')) / 2" in found[2].source


def test_lines_choose_the_spots_in_their_order_and_limit_caps() -> None:
    ordered = changes(12, [17, 13])
    assert ordered[0][0] == 17 and {line for line, _ in ordered} == {13, 17}
    assert len(mutants_of(MODULE, 12, limit=3)) == 3
    assert changes(12, [99]) == []
    assert mutants_of(MODULE, 3) == []  # no def there
    assert mutants_of("def f(:\n", 1) == []  # mid-edit: nothing


def test_module_level_functions_and_methods_can_be_swapped_nested_ones_cannot() -> None:
    assert module_level(MODULE, 7)  # Range.__init__
    assert module_level(MODULE, 12)  # Range.has
    assert not module_level(MODULE, 15)  # has.inner
    assert module_level(MODULE, 20)  # naïve
    assert not module_level(MODULE, 1)  # no def there


DEFAULTS = textwrap.dedent(
    """\
    def span(lo, hi=10, *, step=-1, name="x", key=lambda v: v + 1):
        return range(lo, hi, step)
    """
)


def test_default_values_are_changed_after_the_body_whatever_the_lines() -> None:
    """A default is evaluated when the def runs: no test's spectrum has its line, yet every
    call that leaves the parameter out uses it."""
    found = [(m.line, m.change) for m in mutants_of(DEFAULTS, 1, [2])]
    assert found == [
        (1, "`10` to `11`"),
        (1, "`10` to `9`"),
        (1, "`1` to `2`"),  # -1 to -2
        (1, "`1` to `0`"),
    ]
    eleven = mutants_of(DEFAULTS, 1, [2])[0].source
    assert eleven.startswith("def span(lo, hi=(11), *, step=-1,")  # the lambda's `1` is its own
