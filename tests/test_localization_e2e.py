"""The diagnostic goes where the fault is (issue 15): the real server ranks the functions the
failing tests ran, after a recording run of their files, and marks the most suspicious.

One workspace per case of the issue, each a seeded fault whose function today's rule (the
traceback's deepest frame, or the function called in the failing assert) does not name, or
names among innocent frames. Each asserts that the function's diagnostic lands on the fault,
that relatedInformation names the next suspects, and that no innocent function is marked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from lsprotocol import types

from tests.conftest import Editor, progress_messages, write_files


@dataclass(frozen=True)
class Case:
    files: dict[str, str]
    source: str  # the file with the fault
    fault: str  # the faulty function's qualname
    innocent: tuple[str, ...]  # functions of `source` a failing test ran through
    failing: int  # failing tests


PROPERTY = Case(
    {
        "shop/__init__.py": "",
        "shop/cart.py": """
            class Cart:
                def __init__(self, items):
                    self.items = list(items)

                @property
                def subtotal(self):
                    if not self.items:
                        return 0
                    return None  # the fault: sum(price * qty for price, qty in self.items)

                def total(self, shipping=5):
                    if not self.items:
                        return 0
                    return self.subtotal + shipping

                def tax(self):
                    return round(self.subtotal * 0.2, 2)

                def free_shipping(self):
                    return self.subtotal >= 50
            """,
        "tests/test_cart.py": """
            from shop.cart import Cart


            def test_total():
                assert Cart([(10, 2)]).total() == 25


            def test_tax():
                assert Cart([(10, 2)]).tax() == 4.0


            def test_free_shipping():
                assert Cart([(30, 2)]).free_shipping()


            def test_empty_total():
                assert Cart([]).total() == 0


            def test_empty_tax():
                assert Cart([]).tax() == 0


            def test_count():
                assert len(Cart([(1, 1), (2, 1)]).items) == 2
            """,
    },
    "shop/cart.py",
    "Cart.subtotal",
    ("Cart.total", "Cart.tax", "Cart.free_shipping", "Cart.__init__"),
    3,
)

HELPER = Case(
    {
        "stats.py": """
            def clean(values):
                out = []
                for v in values:
                    if v is None:
                        continue
                    if v < 0:
                        out.append(v)  # the fault: -v
                    else:
                        out.append(v)
                return out


            def mean(values):
                return sum(values) / len(values)
            """,
        "tests/test_stats.py": """
            from stats import clean, mean


            def test_mean_of_cleaned():
                data = clean([1, -3, None, 5])
                assert mean(data) == 3


            def test_mean():
                assert mean([2, 4]) == 3


            def test_clean_drops_none():
                assert clean([1, None, 2]) == [1, 2]


            def test_clean_negative():
                assert clean([-2]) == [2]
            """,
    },
    "stats.py",
    "clean",
    ("mean",),
    2,
)

CONSTANT = Case(
    {
        "billing.py": """
            def vat_rate(country):
                if country == "NL":
                    return 0.12  # the fault: 0.21
                if country == "DE":
                    return 0.19
                return 0.0


            def gross(net, rate):
                return round(net * (1 + rate), 2)
            """,
        "tests/test_billing.py": """
            from billing import gross, vat_rate


            def test_gross_nl():
                rate = vat_rate("NL")
                assert gross(100, rate) == 121.0


            def test_gross_de():
                assert gross(100, vat_rate("DE")) == 119.0


            def test_no_vat():
                assert gross(100, vat_rate("US")) == 100.0
            """,
    },
    "billing.py",
    "vat_rate",
    ("gross",),
    1,
)

INIT = Case(
    {
        "store/__init__.py": "",
        "store/inventory.py": """
            class Inventory:
                def __init__(self, stock=None):
                    self.stock = {}
                    for name, count in (stock or {}).items():
                        self.stock[name] = count - 1  # the fault: count

                def add(self, name, count):
                    self.stock[name] = self.stock.get(name, 0) + count

                def available(self, name):
                    return self.stock.get(name, 0)

                def take(self, name, count):
                    if self.available(name) < count:
                        raise ValueError(f"only {self.available(name)} {name} left")
                    self.stock[name] -= count
            """,
        "tests/test_inventory.py": """
            from store.inventory import Inventory


            def test_take_all():
                inventory = Inventory({"apple": 2})
                inventory.take("apple", 2)
                assert inventory.available("apple") == 0


            def test_available():
                assert Inventory({"pear": 3}).available("pear") == 3


            def test_empty():
                assert Inventory().available("apple") == 0


            def test_add_then_take():
                inventory = Inventory()
                inventory.add("plum", 3)
                inventory.take("plum", 1)
                assert inventory.available("plum") == 2
            """,
    },
    "store/inventory.py",
    "Inventory.__init__",
    ("Inventory.take", "Inventory.available"),
    2,
)

DEEP = Case(
    {
        "report.py": """
            def render(rows):
                return "\\n".join(format_row(row) for row in rows)


            def format_row(row):
                name, value = row
                return f"{name}: {format_value(value)}"


            def format_value(value):
                if isinstance(value, float):
                    return f"{value:.1f}"  # the fault: .2f
                return str(value)
            """,
        "tests/test_report.py": """
            from report import format_row, render


            def test_render_floats():
                assert render([("a", 1.5), ("b", 2)]) == "a: 1.50\\nb: 2"


            def test_render_ints():
                assert render([("a", 1)]) == "a: 1"


            def test_format_row():
                assert format_row(("b", 2)) == "b: 2"
            """,
    },
    "report.py",
    "format_value",
    ("render", "format_row"),
    1,
)

NESTED = Case(
    {
        "fields.py": """
            def parse_line(line, sep=","):
                def convert(field):
                    field = field.strip()
                    if field.isdigit():
                        return int(field) + 1  # the fault: int(field)
                    return field

                return [convert(field) for field in line.split(sep)]
            """,
        "tests/test_fields.py": """
            from fields import parse_line


            def test_numbers():
                assert parse_line("1, 2") == [1, 2]


            def test_words():
                assert parse_line("a, b") == ["a", "b"]
            """,
    },
    "fields.py",
    "parse_line.convert",
    ("parse_line",),
    1,
)

RECURSION = Case(
    {
        "series.py": """
            def fib(n):
                if n < 1:  # the fault: n < 2
                    return n
                return fib(n - 1) + fib(n - 2)


            def fib_list(count):
                return [fib(i) for i in range(count)]
            """,
        "tests/test_series.py": """
            from series import fib, fib_list


            def test_fib():
                assert fib(5) == 5


            def test_fib_list():
                assert fib_list(4) == [0, 1, 1, 2]


            def test_fib_zero():
                assert fib(0) == 0
            """,
    },
    "series.py",
    "fib",
    ("fib_list",),
    2,
)

CASES = {
    "property": PROPERTY,
    "helper-before-assert": HELPER,
    "constant-before-assert": CONSTANT,
    "init-seen-in-a-method": INIT,
    "two-calls-below": DEEP,
    "nested-function": NESTED,
    "recursion": RECURSION,
}


def def_line(source: str, qualname: str) -> int:
    """0-based line of the `def` of qualname (a dotted path of nested names)."""
    lines = source.splitlines()
    start, indent = 0, -1
    for name in qualname.split("."):
        start = next(
            i
            for i in range(start, len(lines))
            if lines[i].lstrip().startswith((f"def {name}(", f"class {name}"))
            and len(lines[i]) - len(lines[i].lstrip()) > indent
        )
        indent = len(lines[start]) - len(lines[start].lstrip())
    return start


def function_diagnostics(diagnostics: object) -> list[types.Diagnostic]:
    """The diagnostics at functions (their related information names the failing test)."""
    return [
        d
        for d in diagnostics  # type: ignore[attr-defined]
        if d.related_information and d.related_information[0].message.startswith("failing test: ")
    ]


async def run_ended(editor: Editor, runs: int = 1) -> None:
    """Wait for the end of the `runs`th run's progress (after its last diagnostics)."""
    await editor.wait_until(
        lambda: sum(kind == "end" for kind, _ in progress_messages(editor.client)) >= runs,
        f"the end of run {runs}",
    )


async def failing_run(
    editor: Editor, root: Path, case: Case, settings: dict[str, object] | None = None
) -> list[types.Diagnostic]:
    await editor.start(root, settings=settings)
    editor.save(root / case.source)
    await run_ended(editor)
    return function_diagnostics(editor.diagnostics(root / case.source))


@pytest.mark.parametrize("name", list(CASES))
async def test_the_diagnostic_lands_on_the_fault(editor: Editor, tmp_path: Path, name: str) -> None:
    case = CASES[name]
    root = write_files(tmp_path / "ws", case.files)
    source = (root / case.source).read_text()
    marked = await failing_run(editor, root, case)

    fault_line = def_line(source, case.fault)
    assert [d.range.start.line for d in marked] == [fault_line] * case.failing
    module = case.source.removesuffix(".py").replace("/", ".")
    named: list[str] = []
    for diagnostic in marked:
        assert diagnostic.data["function"] == f"{module}.{case.fault}"
        # The next suspects (two at most: the functions that test ran), by name and score,
        # point at their functions.
        also = [r for r in diagnostic.related_information or [] if "also suspicious" in r.message]
        assert len(also) <= 2
        for related in also:
            qualname = related.message.split("`")[1]
            named.append(qualname)
            assert related.location.range.start.line == def_line(source, qualname)
            score = float(related.message.rsplit(" ", 1)[1])
            assert 0 < score < 1
    assert named and set(named) <= set(case.innocent)
    # No diagnostic on an innocent function, whichever the traceback or the assert named.
    innocent = {def_line(source, q) for q in case.innocent}
    assert not innocent & {d.range.start.line for d in editor.diagnostics(root / case.source)}
    # The test's own diagnostic names the function too.
    test_file = next(p for p in case.files if p.startswith("tests/"))
    for diagnostic in editor.diagnostics(root / test_file):
        assert diagnostic.data["function"] == f"{module}.{case.fault}"

    kinds = progress_messages(editor.client)
    assert any(
        kind == "report" and text and text.startswith("Locating the fault: recording")
        for kind, text in kinds
    )


async def test_the_progress_says_how_many_tests_are_recorded(
    editor: Editor, tmp_path: Path
) -> None:
    root = write_files(tmp_path / "ws", PROPERTY.files)
    await failing_run(editor, root, PROPERTY)
    kinds = progress_messages(editor.client)
    assert ("report", "Locating the fault: recording 6 tests") in kinds
    # Within the run: before its end, which says how the run went; then the first suspects
    # are changed a little (the mutation evidence).
    # No small change undoes `return None`: none of the first three's changes fixes a test,
    # so the next two suspects are tried as well.
    locating = kinds.index(("report", "Locating the fault: recording 6 tests"))
    first = "Locating the fault: trying small changes of"
    first += " `Cart.subtotal`, `Cart.__init__`, `Cart.free_shipping`"
    assert kinds[locating + 1 :] == [
        ("report", first),
        ("report", first + ", `Cart.total`"),
        ("report", first + ", `Cart.total`, `Cart.tax`"),
        ("end", "6 tests run, 3 failed"),
    ]


async def property_failing(editor: Editor, tmp_path: Path) -> Path:
    """The property case, run and ranked; its source file."""
    root = write_files(tmp_path / "ws", PROPERTY.files)
    await failing_run(editor, root, PROPERTY)
    return root / PROPERTY.source


def assert_on_the_callers(marked: list[types.Diagnostic], source: str) -> None:
    """The property case's marks as today's rule makes them: at the callers that raised."""
    assert sorted(d.range.start.line for d in marked) == sorted(
        def_line(source, q) for q in ("Cart.total", "Cart.tax", "Cart.free_shipping")
    )


async def test_off_gives_today_s_rule(editor: Editor, tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", PROPERTY.files)
    source = (root / PROPERTY.source).read_text()
    marked = await failing_run(editor, root, PROPERTY, {"tests": {"localization": "off"}})
    assert_on_the_callers(marked, source)  # the callers that raised, as before issue 15
    # and no second run
    assert not any(
        text and text.startswith("Locating the fault")
        for _, text in progress_messages(editor.client)
    )
    assert all(
        "also suspicious" not in r.message for d in marked for r in d.related_information or []
    )


async def test_a_hand_edit_that_fixes_the_function_clears_the_marks(
    editor: Editor, tmp_path: Path
) -> None:
    path = await property_failing(editor, tmp_path)
    editor.open(path)
    fixed = path.read_text().replace(
        "return None  # the fault: sum(price * qty for price, qty in self.items)",
        "return sum(price * qty for price, qty in self.items)",
    )
    editor.change(path, fixed)
    editor.save(path, fixed)
    await editor.wait_for_diagnostics(path, lambda d: len(d) == 0)
    await editor.wait_for_diagnostics(path.parents[1] / "tests/test_cart.py", lambda d: not d)
    status = await editor.wait_idle()
    assert status["tests"]["failed"] == 0


async def test_when_the_locate_run_fails_the_marks_stay_as_today_s_rule_made_them(
    editor: Editor, tmp_path: Path
) -> None:
    # The recording run dies at its start (a conftest that exits when recording): the run's
    # marks stay, the server carries on, and the next save runs again.
    files = dict(PROPERTY.files)
    files["tests/conftest.py"] = """
        import os

        if os.environ.get("OCI_LSP_SPECTRA") == "1":
            os._exit(3)
        """
    root = write_files(tmp_path / "ws", files)
    source = (root / PROPERTY.source).read_text()
    marked = await failing_run(editor, root, PROPERTY)
    assert_on_the_callers(marked, source)
    status = await editor.wait_idle()
    assert status["tests"]["failed"] == 3


async def test_a_hand_edit_stops_a_locate_run_in_flight(editor: Editor, tmp_path: Path) -> None:
    # The recording run would hang (a conftest that sleeps when recording, a long while): an
    # edit in the editor stops it, the run ends, and the marks are today's rule's.
    files = dict(PROPERTY.files)
    files["tests/conftest.py"] = """
        import os
        import time

        if os.environ.get("OCI_LSP_SPECTRA") == "1":
            time.sleep(3600)
        """
    root = write_files(tmp_path / "ws", files)
    path = root / PROPERTY.source
    source = path.read_text()
    await editor.start(root, settings={"tests": {"timeout": 3600}})
    editor.open(path)
    editor.save(path)
    await editor.wait_until(
        lambda: any(
            text and text.startswith("Locating the fault")
            for _, text in progress_messages(editor.client)
        ),
        "the locate run",
    )
    editor.change(path, source + "\n# a hand edit\n")
    status = await editor.wait_idle()
    assert status["tests"]["failed"] == 3
    marked = function_diagnostics(editor.diagnostics(path))
    assert_on_the_callers(marked, source)


async def test_a_moved_function_is_found_again_on_the_next_run(
    editor: Editor, tmp_path: Path
) -> None:
    path = await property_failing(editor, tmp_path)
    moved = "import math\n\n\ndef unused():\n    return math.pi\n\n\n" + path.read_text()
    editor.save(path, moved)
    await run_ended(editor, 2)
    marked = function_diagnostics(editor.diagnostics(path))
    assert [d.range.start.line for d in marked] == [def_line(moved, "Cart.subtotal")] * 3


async def test_dstar_ranks_as_well(editor: Editor, tmp_path: Path) -> None:
    root = write_files(tmp_path / "ws", CONSTANT.files)
    source = (root / CONSTANT.source).read_text()
    marked = await failing_run(editor, root, CONSTANT, {"tests": {"localization": "dstar"}})
    assert [d.range.start.line for d in marked] == [def_line(source, "vat_rate")]
    also = [r.message for r in marked[0].related_information or [] if "also" in r.message]
    # gross ran in the failing test and both passing ones: d = 1 / 2, shown as 1/3; being
    # the assert's call adds nothing (it is the caller of vat_rate).
    assert also == ["also suspicious: `gross` 0.33"]


# Spectra cannot place this one: every test runs `__init__`, only the failing one runs
# `width`, so Ochiai puts `width` first (1.0 against 0.58). Changing `__init__`'s `+ 1` to
# `+ 0` makes the failing test pass and breaks no passing one: the mutation evidence.
SAME_TESTS = Case(
    {
        "geometry/__init__.py": "",
        "geometry/span.py": """
            class Span:
                def __init__(self, lo, hi):
                    self.lo = lo
                    self.hi = hi + 1  # the fault: hi

                def width(self):
                    return self.hi - self.lo
            """,
        "tests/test_span.py": """
            from geometry.span import Span


            def test_width():
                assert Span(1, 4).width() == 3


            def test_lo():
                assert Span(1, 4).lo == 1


            def test_lo_again():
                assert Span(2, 9).lo == 2
            """,
    },
    "geometry/span.py",
    "Span.__init__",
    ("Span.width",),
    1,
)


async def test_a_fault_spectra_cannot_place_is_found_by_changing_it(
    editor: Editor, tmp_path: Path
) -> None:
    root = write_files(tmp_path / "ws", SAME_TESTS.files)
    source = (root / SAME_TESTS.source).read_text()
    (marked,) = await failing_run(editor, root, SAME_TESTS)
    assert marked.range.start.line == def_line(source, "Span.__init__")
    assert marked.data["function"] == "geometry.span.Span.__init__"
    (suspect, other) = marked.data["suspects"]
    assert suspect["why"].endswith(
        "; `1` to `0` on line 4 made 1 of 1 failing test pass, broke 0 of 2 passing"
    )
    assert other["function"] == "geometry.span.Span.width"
    assert other["score"] == suspect["score"] == 1.0  # the tie goes to the change that fixed it
    also = [r.message for r in marked.related_information or [] if "also suspicious" in r.message]
    assert also == [f"also suspicious: `Span.width` {other['score']:.2f}"]
    assert (
        "report",
        "Locating the fault: trying small changes of `Span.width`, `Span.__init__`",
    ) in progress_messages(editor.client)
    assert (root / SAME_TESTS.source).read_text() == source  # the changes ran in memory


async def test_without_mutation_evidence_the_spectra_s_order_stands(
    editor: Editor, tmp_path: Path
) -> None:
    root = write_files(tmp_path / "ws", SAME_TESTS.files)
    source = (root / SAME_TESTS.source).read_text()
    settings = {"tests": {"localizationMutants": False}}
    (marked,) = await failing_run(editor, root, SAME_TESTS, settings)
    assert marked.range.start.line == def_line(source, "Span.width")
    assert not any(text and "small changes" in text for _, text in progress_messages(editor.client))
