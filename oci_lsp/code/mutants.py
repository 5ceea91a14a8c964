"""Small changes to one function, for mutation-based fault localization (issue 15).

Spectra cannot tell two functions apart that the same tests ran: a helper and its only
caller, `__eq__` and `__ne__`, an `__init__` whose wrong value surfaces in the method that
raises. Metallaxis and MUSE (the mutation-based family FauxPy evaluated on BugsInPy) add
what can: change a line of a suspect a little and re-run the tests; a change that makes a
failing test pass without breaking a passing one is evidence that the fault is on that line
(testing/mutation_evidence.py weighs it).

The changes are the classic mutation operators, each at one spot of the function's own body
or of its parameters' default values (not its decorators or nested functions, which are
functions of their own):

  comparison   an operator into its neighbour or opposite (< and <=, == and !=, in, is)
  constant     an integer plus or minus one; True and False swapped
  condition    an if/while/ternary test negated, or its `not` dropped
  boolean      `and` and `or` swapped
  arithmetic   + and -, / and //, * and / swapped; a unary minus dropped

A default value is evaluated when the `def` runs, so no test's spectrum holds its line, yet
every call that leaves the parameter out uses it (`def __init__(self, days=0, seconds=0)`):
its spots come after the body's, whatever lines are asked for.

Only the spot's text changes (the rest of the module keeps its layout, so the sandbox can
swap the function into an imported module, refine/isolation.py), and the replacement is
parenthesized so that precedence never changes what surrounds it.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass

from oci_lsp.code.functions import iter_definitions, parse

_FUNCTION_TYPES = (ast.FunctionDef, ast.AsyncFunctionDef)

_COMPARISON: Mapping[type[ast.cmpop], tuple[type[ast.cmpop], ...]] = {
    ast.Lt: (ast.LtE, ast.GtE),
    ast.LtE: (ast.Lt, ast.Gt),
    ast.Gt: (ast.GtE, ast.LtE),
    ast.GtE: (ast.Gt, ast.Lt),
    ast.Eq: (ast.NotEq,),
    ast.NotEq: (ast.Eq,),
    ast.In: (ast.NotIn,),
    ast.NotIn: (ast.In,),
    ast.Is: (ast.IsNot,),
    ast.IsNot: (ast.Is,),
}
_ARITHMETIC: Mapping[type[ast.operator], tuple[type[ast.operator], ...]] = {
    ast.Add: (ast.Sub,),
    ast.Sub: (ast.Add,),
    ast.Mult: (ast.Div,),
    ast.Div: (ast.FloorDiv, ast.Mult),
    ast.FloorDiv: (ast.Div,),
}
_SYMBOL = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.And: "and",
    ast.Or: "or",
}


@dataclass(frozen=True)
class Mutant:
    line: int  # 1-based line of the changed spot
    change: str  # for people: "`<` to `<=`"
    source: str  # the whole module's text with the change


def module_level(source: str, def_line: int) -> bool:
    """Whether the def at def_line is a module-level function or a method of a module-level
    class: what the sandbox can swap into modules already imported. A nested function's
    closures were made by its outer function's earlier calls (at import, for a decorator's
    wrapper), so a change of it takes effect only in a fresh import."""
    tree = parse(source)
    for node in tree.body if tree is not None else []:
        members = node.body if isinstance(node, ast.ClassDef) else [node]
        for member in members:
            if isinstance(member, _FUNCTION_TYPES) and member.lineno == def_line:
                return True
    return False


def mutants_of(
    source: str, def_line: int, lines: Collection[int] | None = None, limit: int = 32
) -> list[Mutant]:
    """Up to `limit` changes of the function whose `def` is on def_line, at spots on `lines`
    (all its lines when None) taken in the order of `lines` when it is a sequence (the most
    suspicious first), then in source order. Each parses; none repeats another."""
    tree = parse(source)
    function = _function_at(tree, def_line) if tree is not None else None
    if function is None:
        return []
    text_lines = source.splitlines(keepends=True)
    starts = [0]
    for text in text_lines:
        starts.append(starts[-1] + len(text))
    order = {line: i for i, line in enumerate(lines)} if lines is not None else {}
    spots = [
        spot for spot in _spots(_own_nodes(function)) if lines is None or spot[0].lineno in order
    ]
    spots.sort(key=lambda s: (order.get(s[0].lineno, 0), _position(s[0])))
    spots += _spots(_default_nodes(function))
    found: list[Mutant] = []
    seen: set[str] = set()
    for node, replacement, change in spots:
        start = _offset(text_lines, starts, node.lineno, node.col_offset)
        end_line, end_col = node.end_lineno or node.lineno, node.end_col_offset or 0
        end = _offset(text_lines, starts, end_line, end_col)
        mutated = f"{source[:start]}({replacement}){source[end:]}"
        if mutated in seen or parse(mutated) is None:
            continue
        seen.add(mutated)
        found.append(Mutant(node.lineno, change, mutated))
        if len(found) >= limit:
            break
    return found


def _function_at(tree: ast.Module, def_line: int) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    for _, node in iter_definitions(tree):
        if isinstance(node, _FUNCTION_TYPES) and node.lineno == def_line:
            return node
    return None


def _own_nodes(function: ast.AST) -> Iterator[ast.AST]:
    """The nodes of the function's body, without nested functions, classes and lambdas'
    insides (theirs), docstring constants or f-strings (format specs are constants too)."""
    body = getattr(function, "body", [])
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:]
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        if isinstance(node, (*_FUNCTION_TYPES, ast.ClassDef, ast.Lambda, ast.JoinedStr)):
            continue
        yield node
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _default_nodes(function: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[ast.AST]:
    """The nodes of the parameters' default values, in source order (lambdas left alone)."""
    defaults = [*function.args.defaults, *(d for d in function.args.kw_defaults if d)]
    for default in sorted(defaults, key=_position):
        stack: list[ast.AST] = [default]
        while stack:
            node = stack.pop()
            if isinstance(node, (ast.Lambda, ast.JoinedStr)):
                continue
            yield node
            stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _spots(nodes: Iterable[ast.AST]) -> Iterator[tuple[ast.expr, str, str]]:
    """(the expression replaced, its replacement's text, the change for people)."""
    for node in nodes:
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                for other in _COMPARISON.get(type(op), ()):
                    ops = [*node.ops[:i], other(), *node.ops[i + 1 :]]
                    changed = ast.Compare(left=node.left, ops=ops, comparators=node.comparators)
                    yield node, ast.unparse(changed), _say(type(op), other)
        elif isinstance(node, ast.Constant) and type(node.value) is bool:
            yield node, repr(not node.value), f"`{node.value}` to `{not node.value}`"
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            for value in (node.value + 1, node.value - 1):
                yield node, repr(value), f"`{node.value}` to `{value}`"
        elif isinstance(node, (ast.If, ast.While, ast.IfExp)):
            test = node.test
            if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
                yield test, ast.unparse(test.operand), "`not` dropped from the condition"
            else:
                yield test, f"not ({ast.unparse(test)})", "the condition negated"
        elif isinstance(node, ast.BoolOp):
            swapped: ast.boolop = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            changed_op = ast.BoolOp(op=swapped, values=node.values)
            yield node, ast.unparse(changed_op), _say(type(node.op), type(swapped))
        elif isinstance(node, ast.BinOp):
            for other_op in _ARITHMETIC.get(type(node.op), ()):
                changed_bin = ast.BinOp(left=node.left, op=other_op(), right=node.right)
                yield node, ast.unparse(changed_bin), _say(type(node.op), other_op)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            if not isinstance(node.operand, ast.Constant):  # -1 is the constant's business
                yield node, ast.unparse(node.operand), "unary `-` dropped"
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, ast.unparse(node.operand), "`not` dropped"


def _say(before: type[ast.AST], after: type[ast.AST]) -> str:
    return f"`{_SYMBOL[before]}` to `{_SYMBOL[after]}`"


def _position(node: ast.AST) -> tuple[int, int]:
    return (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))


def _offset(text_lines: list[str], starts: list[int], line: int, col: int) -> int:
    """The character offset of a node's (line, UTF-8 byte column) in the source."""
    text = text_lines[line - 1] if line - 1 < len(text_lines) else ""
    return starts[line - 1] + len(text.encode("utf-8")[:col].decode("utf-8", errors="replace"))
