"""Markdown fences in model replies, read as CommonMark reads them: a docstring's own
```` ``` ```` examples inside the reply's python block do not cut it."""

from __future__ import annotations

import pytest

from oci_lsp.refine.extract import apply_candidate, extract_candidate
from oci_lsp.refine.fences import Block, split_fences

FUNCTION = '''\
def naturalsize(value, binary=False):
    """Format a number of bytes like a human-readable file size.

    Examples:
        ```pycon
        >>> naturalsize(3000)
        '3.0 kB'
        ```
    """
    base = 1024 if binary else 1000
    suffix = "KiB" if binary else "kB"
    return f"{value / base:.1f} {suffix}"'''

MODULE = '"""Human-readable numbers."""\n\n\n' + FUNCTION.replace(":.1f}", ":.2f}") + "\n"
FIXED = MODULE.replace(":.2f}", ":.1f}")

# The same function as models also write it: the docstring's example fence at column 0.
FLUSH_LEFT = (
    FUNCTION.replace("        ```", "```")
    .replace("        >>>", ">>>")
    .replace("        '3.0", "'3.0")
)


def fixed(reply: str) -> str:
    return apply_candidate(MODULE, "naturalsize", extract_candidate(reply, MODULE, "naturalsize"))


# --- replies as models write them ---------------------------------------------------------


def test_deepseek_reply_with_an_indented_pycon_example_in_the_docstring() -> None:
    reply = (
        "The function divides correctly but prints two decimals; the tests expect one.\n"
        "Here is the corrected function:\n\n"
        f"```python\n{FUNCTION}\n```\n\n"
        "In this corrected version, the size is formatted with one decimal."
    )
    extracted = extract_candidate(reply, MODULE, "naturalsize")
    assert extracted.shape == "fenced function"
    assert apply_candidate(MODULE, "naturalsize", extracted) == FIXED


def test_codellama_reply_with_bare_fences_and_a_python_example_in_a_method() -> None:
    module = (
        "class Sizes:\n"
        "    def natural(self, value):\n"
        '        """Format bytes.\n\n'
        "        ```python\n"
        "        Sizes().natural(3000)  # '3.0 kB'\n"
        "        ```\n"
        '        """\n'
        '        return f"{value / 1024:.1f} kB"\n'
    )
    method = module.split("\n", 1)[1].replace("1024", "1000")
    reply = f"  ```\n{method}  ```\n"  # CodeLlama indents its fences by two
    extracted = extract_candidate(reply, module, "Sizes.natural")
    assert apply_candidate(module, "Sizes.natural", extracted) == module.replace("1024", "1000")


def test_an_example_fence_at_column_0_inside_the_docstring() -> None:
    # Read strictly, "```" after the example closes the python block inside the docstring;
    # the block is read on to the fence after which it parses.
    assert fixed(f"```python\n{FLUSH_LEFT}\n```") == FIXED


def test_a_bare_example_fence_at_column_0_inside_the_docstring() -> None:
    reply = FLUSH_LEFT.replace("```pycon", "```")
    assert fixed(f"Fixed:\n```python\n{reply}\n```\nDone.") == FIXED


def test_a_reply_cut_off_after_a_flush_left_example_is_read_to_its_end() -> None:
    reply = f"```python\n{FLUSH_LEFT}\n\n\nprint(naturalsize(3000"
    extracted = extract_candidate(reply, MODULE, "naturalsize")
    assert apply_candidate(MODULE, "naturalsize", extracted) == FIXED
    assert "unclosed fence" in extracted.shape and "trailing lines dropped" in extracted.shape


def test_prose_and_several_fences_the_definition_wins() -> None:
    reply = (
        "Let's check the current behaviour first:\n\n"
        "```pycon\n>>> naturalsize(3000)\n'3.00 kB'\n```\n\n"
        "The format string is the problem. Fixed version:\n\n"
        f"```python\n{FUNCTION}\n```\n\n"
        "Run the tests again:\n\n```bash\npytest -q\n```\n"
    )
    assert fixed(reply) == FIXED


def test_a_python_block_in_a_numbered_list_item() -> None:
    indented = "\n".join("    " + line if line else "" for line in FUNCTION.split("\n"))
    reply = f"1. Change the format:\n\n    ```python\n{indented}\n    ```\n2. Run the tests."
    assert fixed(reply) == FIXED


def test_a_reply_indented_as_a_whole_still_has_its_fences() -> None:
    # Not CommonMark (four spaces make the fences code lines), but no fence at the
    # allowed indentation holds code: the indented ones are read, closing at their own
    # indentation, so the docstring's example inside stays content.
    indented = "\n".join("    " + line if line else "" for line in FUNCTION.split("\n"))
    reply = f"Here is the fix:\n\n    ```python\n{indented}\n    ```\n\nThat is all."
    assert fixed(reply) == FIXED


# --- the reading itself --------------------------------------------------------------------


def test_a_fence_indented_four_spaces_is_not_a_fence() -> None:
    blocks, outside = split_fences("Look:\n    ```python\n    x = 1\n    ```\nend")
    assert blocks == []
    assert outside == ["Look:", "    ```python", "    x = 1", "    ```", "end"]


def test_up_to_three_spaces_open_a_fence_and_are_taken_off_its_lines() -> None:
    blocks, outside = split_fences("   ```py\n   x = 1\n     y = 2\n   ```\nafter")
    assert blocks == [Block("x = 1\n  y = 2", "py", True)]
    assert outside == ["after"]


def test_a_closing_fence_indented_four_spaces_is_content() -> None:
    blocks, _ = split_fences("```\na\n    ```\nb\n```")
    assert blocks == [Block("a\n    ```\nb", "", True)]


@pytest.mark.parametrize("closer", ["~~~", "``", "```` x"])
def test_what_does_not_close_a_backtick_fence(closer: str) -> None:
    blocks, _ = split_fences(f"````python\nx = 1\n{closer}\ny = 2\n````")
    assert blocks == [Block(f"x = 1\n{closer}\ny = 2", "python", True)]


def test_without_a_reader_the_first_closing_fence_closes() -> None:
    reply = "```python\ns = '''\n```\n'''\n```"
    assert split_fences(reply)[0][0] == Block("s = '''", "python", True)
    assert split_fences(reply, lambda language, text: text.count("'''") != 1)[0][0] == Block(
        "s = '''\n```\n'''", "python", True
    )


def test_a_block_that_reads_nowhere_closes_at_its_first_fence() -> None:
    reply = "```python\ndef f(:\n```\nThen:\n```python\nx = 1\n```"
    blocks, outside = split_fences(reply, lambda language, text: "(:" not in text)
    assert blocks == [Block("def f(:", "python", True), Block("x = 1", "python", True)]
    assert outside == ["Then:"]


def test_other_languages_close_at_their_first_fence() -> None:
    seen: list[str] = []

    def reads(language: str, text: str) -> bool:
        seen.append(language)
        return language != "python" or "'''" not in text

    blocks, _ = split_fences("```pycon\n>>> f()\n```\n```bash\nls\n```", reads)
    assert [b.language for b in blocks] == ["pycon", "bash"]
    assert [b.text for b in blocks] == [">>> f()", "ls"]


def test_reading_on_past_closing_fences_is_bounded_for_the_whole_reply() -> None:
    calls: list[str] = []

    def never(language: str, text: str) -> bool:
        calls.append(text)
        return False

    blocks, _ = split_fences("```python\nx = (\n```\n" * 200, never)
    assert len(blocks) == 200 and all(b == Block("x = (", "python", True) for b in blocks)
    # The first block, then twelve tries past its fence; the others close where CommonMark
    # closes them, unread.
    assert len(calls) == 1 + 12
