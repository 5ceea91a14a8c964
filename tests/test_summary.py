"""The one-line messages of failures."""

from __future__ import annotations

from oci_lsp.testing.summary import summarize


def test_assert_with_a_call_names_the_value_it_got() -> None:
    message = summarize(
        "assert add(1, 2) == 3", "AssertionError", "assert 4 == 3\n +  where 4 = add(1, 2)"
    )
    assert message == "assert add(1, 2) == 3 (got 4)"


def test_assert_on_a_variable_reads_the_first_line() -> None:
    message = summarize(
        "assert total == [1, 2]", "AssertionError", "assert [1, 3] == [1, 2]\n  At index 1"
    )
    assert message == "assert total == [1, 2] (got [1, 3])"


def test_assert_with_its_own_message() -> None:
    statement = 'assert add(1, 2) == 3, "adding is broken"'
    explanation = "adding is broken\nassert 4 == 3\n +  where 4 = add(1, 2)"
    assert summarize(statement, "AssertionError", explanation) == "assert add(1, 2) == 3 (got 4)"


def test_plain_assert_and_multi_line_statement() -> None:
    assert summarize(
        "assert is_ok()", "AssertionError", "assert False\n +  where False = is_ok()"
    ) == ("assert is_ok()")
    statement = "assert add(\n    1,\n    2,\n) == 3"
    assert summarize(statement, "AssertionError", "assert 4 == 3\n +  where 4 = add(1, 2)") == (
        "assert add(1, 2) == 3 (got 4)"
    )


def test_exceptions_give_type_and_first_line() -> None:
    assert summarize("x = div(1, 0)", "ZeroDivisionError", "division by zero") == (
        "ZeroDivisionError: division by zero"
    )
    assert summarize(None, "KeyError", "") == "KeyError"


def test_long_values_are_clipped() -> None:
    value = "x" * 1000
    message = summarize(
        "assert f() == 1", "AssertionError", f"assert '{value}' == 1\n +  where '{value}' = f()"
    )
    assert len(message) <= 200
    assert message.startswith("assert f() == 1 (got 'xxx")
