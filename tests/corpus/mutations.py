"""Seeded faults in a corpus project's own functions, and stubs of them.

A mutation changes one spot of one function, found on its syntax tree, and edits only the
text of that spot (the rest of the function keeps its comments and layout):

  comparison   the first operator of a comparison turned into its neighbour or opposite
               (< into <=, == into !=, in into not in, ...)
  constant     an integer constant plus one (off by one)
  return-none  `return value` into `return None` (a wrong return value)
  branch       an if-statement with an else: its test negated (the branches swapped)

A stub replaces a function's body by `...`, keeping its signature and docstring.

bench/corpus_mutations.py keeps only those after which plain pytest fails at least one
test (and collects everything), records which tests fail and whether the fault shows where
a user would look, and writes the pinned list to mutations.json beside this file; tests and
the benchmark read that list back with `load()`.
"""

from __future__ import annotations

import ast
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MUTATIONS_JSON = Path(__file__).with_name("mutations.json")
# The localization corpus (issue 15): more mutations, properties, helpers, `__init__` and
# operator dunders taken first (bench/corpus_mutations.py --order roles).
LOCALIZATION_JSON = Path(__file__).with_name("localization.json")

KINDS = ("comparison", "constant", "return-none", "branch")
_SWAP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}

# The dunders that implement an operator (==, <, +, -x, ...): their fault shows as a wrong
# value of an expression, rarely in a traceback.
OPERATOR_DUNDERS = frozenset(
    f"__{name}__"
    for name in [
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "hash",
        "bool",
        "len",
        "contains",
        "getitem",
        "add",
        "radd",
        "sub",
        "rsub",
        "mul",
        "rmul",
        "truediv",
        "floordiv",
        "mod",
        "neg",
        "pos",
        "abs",
        "invert",
        "and",
        "or",
        "xor",
        "iadd",
        "isub",
    ]
)

ROLES = ("property", "init", "operator", "dunder", "helper", "plain")


def role(edit: Edit) -> str:
    """What part the function plays (ROLES): the functions whose fault a traceback or the
    failing assert rarely shows (bench/corpus_mutations.py --order roles takes them in turn)."""
    name = edit.function.rsplit(".", 1)[-1]
    if "property" in edit.tags:
        return "property"
    if name == "__init__":
        return "init"
    if name in OPERATOR_DUNDERS:
        return "operator"
    if "dunder" in edit.tags:
        return "dunder"
    if "private" in edit.tags or "nested" in edit.tags:
        return "helper"
    return "plain"


# Where the fault shows in a failing test's report (best first); see `shows()`.
SHOWS = ("doctest", "traceback", "assert-call", "hidden")


@dataclass(frozen=True)
class Edit:
    """One function of one file, before and after (a mutation or a stub)."""

    project: str
    file: str  # relative to the project's root, "/"-separated
    function: str  # qualified name: "Class.method", "outer.inner"
    kind: str  # one of KINDS, or "stub"
    line: int  # 1-based line of the function's def in the pristine file
    spot: int  # 1-based line of the changed spot (the def line for a stub)
    original: str  # the function's source lines (def line to its end; decorators excluded)
    mutated: str
    tags: tuple[str, ...] = ()  # method, property, private, dunder, nested, decorated
    # Filled by bench/corpus_mutations.py from a real run of plain pytest:
    failing: tuple[str, ...] = ()  # node ids that fail after the edit
    shows: str = ""  # doctest | traceback | assert-call | hidden
    evidence: str = ""  # the report line that shows it (empty when hidden)

    @property
    def id(self) -> str:
        return f"{self.project}:{self.file}:{self.function}:{self.kind}:{self.spot}"

    def apply(self, root: Path) -> None:
        _replace(root / self.file, self.original, self.mutated)

    def revert(self, root: Path) -> None:
        _replace(root / self.file, self.mutated, self.original)


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    if text.count(old) != 1:
        raise ValueError(f"{path}: the function's source is there {text.count(old)} times")
    before = path.stat().st_mtime_ns
    path.write_text(text.replace(old, new), encoding="utf-8")
    # Python trusts a cached .pyc whose recorded mtime (whole seconds) and size match the
    # source: an edit of the same size within the same second would run the old code.
    later = max(time.time_ns(), before + 1_000_000_000)
    os.utime(path, ns=(later, later))


# -- finding functions and spots ----------------------------------------------------------


@dataclass
class _Function:
    node: ast.FunctionDef | ast.AsyncFunctionDef
    qualname: str
    tags: tuple[str, ...]
    source: str  # lines node.lineno..node.end_lineno
    first_line: int
    lines: list[str] = field(repr=False, default_factory=list)  # the file's lines


def source_files(root: Path, code: Sequence[str]) -> list[Path]:
    """The project's own modules: under its code folders, tests and conftests excluded."""
    found: list[Path] = []
    for folder in code:
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root).parts
            if any(p in ("tests", "test", "testing") for p in rel) or path.name in (
                "conftest.py",
                "_version.py",
                "version.py",
            ):
                continue
            if path.name.startswith("test_") or path.name.endswith("_test.py"):
                continue
            found.append(path)
    return found


def functions(path: Path) -> Iterator[_Function]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    tree = ast.parse(text)

    def walk(node: ast.AST, prefix: str, in_class: bool, nested: bool) -> Iterator[_Function]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.", True, nested)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                assert child.end_lineno is not None
                decorators = [ast.unparse(d) for d in child.decorator_list]
                dunder = child.name.startswith("__") and child.name.endswith("__")
                tags = tuple(
                    t
                    for t, on in (
                        ("method", in_class),
                        ("property", any(d.endswith("property") for d in decorators)),
                        ("private", child.name.startswith("_") and not dunder),
                        ("dunder", dunder),
                        ("nested", nested),
                        ("decorated", bool(decorators)),
                    )
                    if on
                )
                source = "".join(lines[child.lineno - 1 : child.end_lineno])
                yield _Function(child, f"{prefix}{child.name}", tags, source, child.lineno, lines)
                yield from walk(child, f"{prefix}{child.name}.", False, True)
            else:
                yield from walk(child, prefix, in_class, nested)

    yield from walk(tree, "", False, False)


def _own_nodes(func: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a function's body, not those of functions or classes defined in it."""
    stack = list(ast.iter_child_nodes(func))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _docstring_node(func: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST | None:
    first = func.body[0] if func.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        return first.value if isinstance(first.value.value, str) else None
    return None


def _spots(func: _Function) -> Iterator[tuple[str, ast.expr | ast.stmt, str]]:
    """(kind, node, replacement text of the node) for every spot of func."""
    skip: set[int] = set()
    for node in _own_nodes(func.node):
        if isinstance(node, ast.JoinedStr):  # format specs are constants too
            skip.update(id(n) for n in ast.walk(node))
    doc = _docstring_node(func.node)
    for node in sorted(_own_nodes(func.node), key=_position):
        if id(node) in skip or node is doc or not isinstance(node, ast.expr | ast.stmt):
            continue
        if isinstance(node, ast.Compare) and type(node.ops[0]) in _SWAP:
            ops = [_SWAP[type(node.ops[0])](), *node.ops[1:]]
            swapped = ast.Compare(left=node.left, ops=ops, comparators=node.comparators)
            yield "comparison", node, ast.unparse(swapped)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, int)
            and not isinstance(node.value, bool)
        ):
            yield "constant", node, repr(node.value + 1)
        elif isinstance(node, ast.Return) and node.value is not None:
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                yield "return-none", node.value, "None"
        elif isinstance(node, ast.If) and node.orelse:
            yield "branch", node.test, f"not ({ast.unparse(node.test)})"


def _position(node: ast.AST) -> tuple[int, int]:
    return getattr(node, "lineno", 0), getattr(node, "col_offset", 0)


def _char_offset(lines: Sequence[str], lineno: int, col: int) -> int:
    """Offset in the joined lines of (1-based lineno, UTF-8 byte column col)."""
    return sum(len(ln) for ln in lines[: lineno - 1]) + len(
        lines[lineno - 1].encode("utf-8")[:col].decode("utf-8")
    )


def candidates(root: Path, project: str, code: Sequence[str]) -> list[Edit]:
    """Every mutation of every function of the project's code, in source order."""
    found: list[Edit] = []
    for path in source_files(root, code):
        rel = path.relative_to(root).as_posix()
        for func in functions(path):
            own = func.lines[func.first_line - 1 : func.node.end_lineno]
            for kind, node, replacement in _spots(func):
                start = _char_offset(own, node.lineno - func.first_line + 1, node.col_offset)
                assert node.end_lineno is not None and node.end_col_offset is not None
                end = _char_offset(own, node.end_lineno - func.first_line + 1, node.end_col_offset)
                mutated = func.source[:start] + replacement + func.source[end:]
                if mutated == func.source or not _parses(path, func.source, mutated):
                    continue
                found.append(_edit(project, rel, func, kind, node.lineno, mutated))
    return found


def _edit(project: str, rel: str, func: _Function, kind: str, spot: int, mutated: str) -> Edit:
    return Edit(
        project=project,
        file=rel,
        function=func.qualname,
        kind=kind,
        line=func.first_line,
        spot=spot,
        original=func.source,
        mutated=mutated,
        tags=func.tags,
    )


def stub_candidates(root: Path, project: str, code: Sequence[str]) -> list[Edit]:
    """Every function whose body can become `...` under its signature and docstring."""
    found: list[Edit] = []
    for path in source_files(root, code):
        rel = path.relative_to(root).as_posix()
        for func in functions(path):
            node = func.node
            doc = _docstring_node(node)
            body = node.body[1:] if doc is not None else node.body
            if not body or body[0].lineno == node.lineno or "nested" in func.tags:
                continue
            if all(isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) for s in body):
                continue  # already a stub (or only a docstring)
            keep_to = node.body[0].end_lineno if doc is not None else body[0].lineno - 1
            assert keep_to is not None
            own = func.lines[func.first_line - 1 : keep_to]
            indent = " " * body[0].col_offset
            stub = "".join(own) + f"{indent}...\n"
            if not _parses(path, func.source, stub):
                continue
            found.append(_edit(project, rel, func, "stub", node.lineno, stub))
    return found


def _parses(path: Path, old: str, new: str) -> bool:
    text = path.read_text(encoding="utf-8")
    try:
        ast.parse(text.replace(old, new, 1))
    except SyntaxError:
        return False
    return text.count(old) == 1


# -- where a fault shows ------------------------------------------------------------------


def shows(edit: Edit, reports: dict[str, str]) -> tuple[str, str]:
    """Where the fault shows in the failing tests' reports (node id -> native traceback or
    doctest report), best first: the function's own doctest failed; a traceback frame lies in
    the function; the failing assert's line (or its explanation) calls it; else hidden."""
    name = edit.function.rsplit(".", 1)[-1]
    def_line, last_line = edit.line, edit.line + edit.mutated.count("\n")  # generous
    best, evidence = "hidden", ""
    for nodeid, text in sorted(reports.items()):
        if "::" in nodeid and nodeid.rsplit("::", 1)[-1].endswith("." + edit.function):
            return "doctest", nodeid
        lines = text.splitlines()
        for i, line in enumerate(lines):
            frame = _frame(line)
            if frame and frame[0].endswith(edit.file) and def_line <= frame[1] <= last_line:
                best, evidence = "traceback", f"{edit.file}:{frame[1]} in {frame[2]}"
                break
            if best == "hidden" and frame and _is_test_file(frame[0]) and i + 1 < len(lines):
                code = lines[i + 1].strip()
                if f"{name}(" in code or f".{name}" in code:
                    best, evidence = "assert-call", code
            explains = line.lstrip().startswith(("+  where", "+    where"))
            if best == "hidden" and explains and f"{name}(" in line:
                best, evidence = "assert-call", line.strip()
        if best == "traceback":
            return best, evidence
    return best, evidence


def _frame(line: str) -> tuple[str, int, str] | None:
    """(path, line, function) of a native traceback's `File "...", line N, in f` line."""
    stripped = line.strip()
    if not stripped.startswith('File "'):
        return None
    try:
        path, rest = stripped[len('File "') :].split('", line ', 1)
        number, _, where = rest.partition(", in ")
        return path, int(number), where
    except ValueError:
        return None


def _is_test_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.startswith("test") or name.endswith("_test.py") or "/tests/" in path


# -- the pinned list ----------------------------------------------------------------------


def dump(mutations: Sequence[Edit], stubs: Sequence[Edit], path: Path = MUTATIONS_JSON) -> None:
    data = {
        "mutations": [asdict(m) for m in mutations],
        "stubs": [asdict(s) for s in stubs],
    }
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def load(path: Path = MUTATIONS_JSON) -> tuple[list[Edit], list[Edit]]:
    """(mutations, stubs) as bench/corpus_mutations.py pinned them."""
    data = json.loads(path.read_text(encoding="utf-8"))

    def edit(item: dict[str, Any]) -> Edit:
        fields = dict(item)
        for key in ("tags", "failing"):
            fields[key] = tuple(fields.get(key) or ())
        return Edit(**fields)

    return [edit(m) for m in data["mutations"]], [edit(s) for s in data["stubs"]]
