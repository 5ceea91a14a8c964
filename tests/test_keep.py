"""What a reply did not mean to change stays: the docstring (with its examples), comments
around code the reply kept, decorators. Replies in the shapes models write them."""

from __future__ import annotations

import pytest

from oci_lsp.refine.extract import (
    Extracted,
    LostLinesError,
    apply_candidate,
    extract_candidate,
)

MODULE = '''\
"""Human-readable numbers."""

import functools


@functools.cache
@traced  # logs each call
def naturalsize(value, binary=False):
    """Format a number of bytes like a human-readable file size.

    ```pycon
    >>> naturalsize(3000)
    '3.0 kB'
    >>> naturalsize(3000, binary=True)
    '2.9 KiB'
    ```
    """
    # Binary units are powers of 1024, decimal ones of 1000.
    base = 1024 if binary else 1000  # IEC 80000-13
    suffix = "KiB" if binary else "kB"
    # Two decimals, like `ls -h`.
    return f"{value / base:.2f} {suffix}"
'''

DOCSTRING = MODULE[MODULE.index('    """Format') : MODULE.index("    # Binary")]
EXAMPLE = DOCSTRING[DOCSTRING.index("    ```pycon") : DOCSTRING.index('    """\n')]
# What every good reply changes: the format, and the comment that described it.
FIXED = MODULE.replace(
    '    # Two decimals, like `ls -h`.\n    return f"{value / base:.2f} {suffix}"\n',
    '    return f"{value / base:.1f} {suffix}"\n',
)
CODE = '''\
    base = 1024 if binary else 1000
    suffix = "KiB" if binary else "kB"
    return f"{value / base:.1f} {suffix}"'''


def extract(reply: str, module: str = MODULE, qualname: str = "naturalsize") -> Extracted:
    return extract_candidate(f"```python\n{reply}\n```", module, qualname)


def fixed(reply: str, module: str = MODULE, qualname: str = "naturalsize") -> str:
    return apply_candidate(module, qualname, extract(reply, module, qualname))


def function(docstring: str, code: str = CODE, head: str = "") -> str:
    return f"{head}def naturalsize(value, binary=False):\n{docstring}{code}"


# --- the docstring ------------------------------------------------------------------------


def test_a_reply_without_the_docstring_keeps_it() -> None:
    extracted = extract(function(""))
    assert apply_candidate(MODULE, "naturalsize", extracted) == FIXED
    assert "kept the docstring the reply left out" in extracted.kept


def test_a_reply_that_drops_the_example_lines_keeps_every_line() -> None:
    reply = function(DOCSTRING.replace(EXAMPLE, ""))
    extracted = extract(reply)
    assert apply_candidate(MODULE, "naturalsize", extracted) == FIXED
    assert "kept 6 line(s) of the docstring that the reply dropped or changed" in extracted.kept


@pytest.mark.parametrize(
    "placeholder", ["    ...\n", "    (examples omitted)\n", "    Examples: see above.\n"]
)
def test_a_placeholder_for_the_example_is_not_a_rewrite(placeholder: str) -> None:
    assert fixed(function(DOCSTRING.replace(EXAMPLE, placeholder))) == FIXED


def test_a_one_line_docstring_in_place_of_the_documented_one() -> None:
    assert fixed(function('    """Human-readable file size."""\n')) == FIXED


def test_a_docstring_rewritten_on_purpose_is_the_replys() -> None:
    edited = DOCSTRING.replace("a number of bytes like", "a byte count as")
    extracted = extract(function(edited))
    assert apply_candidate(MODULE, "naturalsize", extracted) == FIXED.replace(DOCSTRING, edited)
    assert not any("docstring" in note for note in extracted.kept)


def test_a_summary_line_rewritten_shorter_is_the_replys() -> None:
    module = (
        'def add(a, b):\n    """Return the sum of the two numbers a and b."""\n    return a - b\n'
    )
    extracted = extract('def add(a, b):\n    """Add a and b."""\n    return a + b', module, "add")
    assert extracted.function == 'def add(a, b):\n    """Add a and b."""\n    return a + b\n'
    assert extracted.kept == ()


def test_a_rewritten_sentence_stays_and_the_dropped_example_comes_back() -> None:
    edited = '    """Format a byte count as a human-readable file size.\n    """\n'
    assert fixed(function(edited)) == FIXED.replace("a number of bytes like", "a byte count as")


def test_the_examples_expected_output_is_the_users() -> None:
    # A doctest is the user's test: a reply that "fixes" its expected value loses it.
    changed = DOCSTRING.replace("'3.0 kB'", "'3.00 kB'")
    extracted = extract(function(changed))
    assert apply_candidate(MODULE, "naturalsize", extracted) == FIXED
    assert "kept 1 line(s) of the docstring that the reply dropped or changed" in extracted.kept


def test_the_replys_re_indented_docstring_keeps_the_users_layout() -> None:
    flush = DOCSTRING.replace("    ```", "```").replace("    >>>", ">>>").replace("    '", "'")
    extracted = extract(function(flush))
    assert apply_candidate(MODULE, "naturalsize", extracted) == FIXED
    assert not any("docstring" in note for note in extracted.kept)


def test_a_body_only_reply_with_a_short_docstring() -> None:
    reply = '"""Format a number of bytes like a human-readable file size."""\n' + "\n".join(
        line[4:] for line in CODE.split("\n")
    )
    assert fixed(reply) == FIXED


def test_a_new_parameter_documents_itself_without_losing_the_example() -> None:
    documented = DOCSTRING.replace(
        "    ```pycon\n", "    Set digits for more precision.\n\n    ```pycon\n"
    )
    reply = function(documented, CODE.replace(".1f", ".{digits}f"))
    reply = reply.replace("binary=False):", "binary=False, digits=1):")
    out = fixed(reply)
    assert "Set digits for more precision." in out and EXAMPLE in out
    assert "def naturalsize(value, binary=False, digits=1):" in out


# --- comments -----------------------------------------------------------------------------


def test_a_comment_above_code_the_reply_kept_comes_back() -> None:
    extracted = extract(function(DOCSTRING))
    assert apply_candidate(MODULE, "naturalsize", extracted) == FIXED
    assert "kept 2 comment(s) the reply dropped from code it kept" in extracted.kept


def test_the_comments_of_code_the_reply_rewrote_are_the_bodys() -> None:
    code = '    units = ("KiB", 1024) if binary else ("kB", 1000)\n'
    code += '    return f"{value / units[1]:.1f} {units[0]}"'
    extracted = extract(function(DOCSTRING, code))
    assert "# Binary units" not in extracted.function and "# Two decimals" not in extracted.function
    assert not any("comment" in note for note in extracted.kept)


def test_a_comment_moves_with_the_code_the_reply_nested() -> None:
    code = (
        "    if value < 0:\n        raise ValueError(value)\n"
        "    else:\n"
        "        base = 1024 if binary else 1000  # IEC 80000-13\n"
        '        suffix = "KiB" if binary else "kB"\n'
        '    return f"{value / base:.1f} {suffix}"'
    )
    out = extract(function(DOCSTRING, code)).function
    assert (
        "    else:\n"
        "        # Binary units are powers of 1024, decimal ones of 1000.\n"
        "        base = 1024 if binary else 1000  # IEC 80000-13\n"
    ) in out


def test_a_comment_the_reply_moved_is_not_doubled() -> None:
    code = CODE.replace(
        '    suffix = "KiB"',
        '    # Binary units are powers of 1024, decimal ones of 1000.\n    suffix = "KiB"',
    )
    out = extract(function(DOCSTRING, code)).function
    assert out.count("# Binary units") == 1
    assert '1000.\n    suffix = "KiB"' in out


def test_a_stubs_todo_comments_are_replaced_with_the_body() -> None:
    module = 'def total(xs):\n    """Sum of xs."""\n    # TODO: write it\n    pass\n'
    reply = "def total(xs):\n    result = 0\n    for x in xs:\n        result += x\n        pass\n    return result"
    assert "TODO" not in fixed(reply, module, "total")


def test_a_candidate_whose_lost_comment_cannot_go_back_is_rejected() -> None:
    # The reply moved the kept lines into a string: the comment would land inside it.
    module = "def render(a):\n    x = a + 1\n    # then double it\n    y = x * 2\n    return y\n"
    reply = 'def render(a):\n    return f"""\n    x = a + 1\n    y = x * 2\n    """'
    with pytest.raises(LostLinesError) as caught:
        extract(reply, module, "render")
    assert str(caught.value) == (
        "rejected: the reply drops the comment `# then double it` from code it kept,"
        " and it cannot be put back there"
    )


# --- decorators ---------------------------------------------------------------------------


def test_a_reply_without_decorators_keeps_them() -> None:
    extracted = extract(function(DOCSTRING))
    assert extracted.function.startswith("@functools.cache\n@traced  # logs each call\n")
    assert "kept the decorators the reply left out" in extracted.kept


def test_a_decorator_the_reply_dropped_comes_back() -> None:
    extracted = extract(function(DOCSTRING, head="@functools.cache\n"))
    assert apply_candidate(MODULE, "naturalsize", extracted) == FIXED
    assert "kept `@traced  # logs each call` the reply dropped" in extracted.kept


def test_a_decorator_the_reply_changed_is_the_replys() -> None:
    head = "@functools.lru_cache(maxsize=None)\n@traced  # logs each call\n"
    assert fixed(function(DOCSTRING, head=head)) == FIXED.replace(
        "@functools.cache\n", "@functools.lru_cache(maxsize=None)\n"
    )


def test_decorators_the_reply_reordered_are_not_doubled() -> None:
    head = "@traced  # logs each call\n@functools.cache\n"
    extracted = extract(function(DOCSTRING, head=head))
    assert extracted.function.startswith(head + "def naturalsize")
    assert not any("@" in note for note in extracted.kept)


# --- nothing lost -------------------------------------------------------------------------


def test_a_reply_that_keeps_everything_says_nothing_was_kept() -> None:
    head = "@functools.cache\n@traced  # logs each call\n"
    code = CODE.replace(
        "    base =", "    # Binary units are powers of 1024, decimal ones of 1000.\n    base ="
    ).replace("else 1000\n", "else 1000  # IEC 80000-13\n")
    extracted = extract(function(DOCSTRING, code, head))
    assert extracted.kept == ()
    assert apply_candidate(MODULE, "naturalsize", extracted) == FIXED
