"""From a code model's chat reply to a replacement for one function of a module.

The loop asks the model to write or fix one function, and models answer in every shape: one
or several fenced blocks (the last one maybe cut off by the token limit), bare code, prose
around code, the whole function, only its body, the whole module with example usage, a
method alone or inside its class, the function under another name. `extract_candidate`
finds the code (Markdown fences as fences.py reads them), picks what replaces the target and
fits it to the target's indentation, keeping what the model did not mean to change: the
annotated header when only the annotations were dropped, and (keep.py) the decorators,
docstring and comments the reply lost. `apply_candidate` splices it into the module with the
imports and helpers it needs and leaves every other byte alone, so the user's diff shows
only the function.

Neither raises anything but `ExtractionError`, whose message is one line fit for a log and
for the next prompt: replies are untrusted text, and one bad candidate must not end a round.
A candidate that would lose lines that cannot be put back raises `LostLinesError`.
"""

from __future__ import annotations

import ast
import io
import itertools
import re
import symtable
import textwrap
import tokenize
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from oci_lsp.code.functions import (
    FunctionNode,
    definition_start,
    iter_definitions,
    normalise_qualname,
    parse,
    split_lines,
)
from oci_lsp.refine.fences import Block, split_fences
from oci_lsp.refine.keep import CannotKeep, Kept, Parts, keep_original

_Key = TypeVar("_Key")  # what names a module in extract_functions: a path, a name
_FUNCTION_TYPES = (ast.FunctionDef, ast.AsyncFunctionDef)
_SCOPE_TYPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_BOM = "\ufeff"
# Tokens that do not start a statement.
_LAYOUT_TOKENS = (tokenize.NL, tokenize.ENDMARKER, tokenize.ENCODING)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")

# Fence info strings that mean Python; an empty one is a bare fence, which models use for code.
_PYTHON_LANGUAGES = frozenset({"", "python", "py", "python3", "py3"})
# Lines of definitions: a cut-off block is trimmed at its end only where no definition is lost.
_DEFINITION_LINE = re.compile(r"[ \t]*(?:async[ \t]+def|def|class)[ \t]")
# Clause headers that do not parse alone but are code in an unfenced reply.
_CLAUSE = re.compile(r"(?:else|try|finally)\s*:|(?:elif|except|case)\b.*:\s*(?:#.*)?")
_CODING_COOKIE = re.compile(r"[ \t\f]*#.*?coding[:=]")

# Bounds on the search for code in an unfenced reply, so that a huge reply costs little.
_MAX_LINES = 5000
_MAX_BOUNDS = 10
_MAX_WINDOWS = 40
_MAX_TRIMS = 20

# How well a piece of code answers; the best one wins, the last of equals.
_RANK_DEFINITION = 4  # defines the target
_RANK_BODY = 3  # statements only a function can hold (`return`, `yield`, `await`)
_RANK_RENAMED = 2  # defines one function under another name
_RANK_STATEMENTS = 1  # plain statements, read as a body


@dataclass(frozen=True)
class Extracted:
    """A candidate replacement for one function, ready for `apply_candidate`."""

    # The whole new definition (decorators, def line, docstring, body) at the target's
    # indentation, ending with "\n"; it replaces the target from its first decorator line to
    # its last line.
    function: str
    # Top-level import statements of the reply that the new code uses and the module lacks.
    imports: tuple[str, ...]
    # Other top-level definitions of the reply (functions, classes, constants) that the new
    # function needs and the module lacks, at column 0, each ending with "\n".
    helpers: tuple[str, ...]
    # How the reply looked, for logs: "fenced function", "bare body", "embedded module"...
    shape: str
    # What of the original the reply dropped without meaning to and got back (keep.py), one
    # line each for the user: "kept the docstring's 4 line(s) the reply dropped".
    kept: tuple[str, ...] = ()


class ExtractionError(Exception):
    """The reply gives no usable candidate; str() is one line saying why."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class LostLinesError(ExtractionError):
    """The candidate would drop lines of the original it did not mean to change, and they
    cannot be put back safely (keep.py): refused, never applied."""


def extract_candidate(
    reply: str, module_source: str, qualname: str, *, definition_only: bool = False
) -> Extracted:
    """The replacement for `qualname` that `reply` proposes, fitted to `module_source`
    (with `definition_only`, only a definition of it by name)."""
    try:
        return _extract(reply, module_source, qualname, definition_only=definition_only)
    except ExtractionError:
        raise
    except Exception as exc:
        # The reply is untrusted text: whatever it trips must cost one candidate, not the round.
        raise ExtractionError(f"the reply could not be read: {type(exc).__name__}: {exc}") from exc


def extract_functions(
    reply: str, modules: Mapping[_Key, str], targets: Sequence[tuple[_Key, str]]
) -> tuple[dict[_Key, str], list[Extracted]]:
    """Several functions replaced as one `reply` proposes (a fix of two functions together):
    `targets` are (module key, qualname) in `modules` (key -> text); the new text of every
    module, and what was extracted for each target in order. Functions of one module are
    replaced one after the other, each in the text with the ones before it in place.

    The reply must define each target by name: a body alone, or one function under another
    name, cannot say which of them it is for.
    """
    texts = dict(modules)
    found: list[Extracted] = []
    for key, qualname in targets:
        extracted = extract_candidate(reply, texts[key], qualname, definition_only=True)
        texts[key] = apply_candidate(texts[key], qualname, extracted)
        found.append(extracted)
    return texts, found


def apply_candidate(module_source: str, qualname: str, extracted: Extracted) -> str:
    """The module with `qualname` replaced by `extracted.function`, its imports and helpers.

    New imports go after the module's last top-level import before the target (after the
    docstring or at the top when there is none), helpers just before the target's top-level
    statement (its class, for a method), with PEP 8's blank lines. Every other byte, line
    endings included, stays as it was.
    """
    try:
        return _apply(module_source, qualname, extracted)
    except ExtractionError:
        raise
    except Exception as exc:
        raise ExtractionError(
            f"the candidate could not be applied: {type(exc).__name__}: {exc}"
        ) from exc


# --- the target ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """The function being replaced, in the module as it is."""

    qualname: str
    name: str
    node: FunctionNode
    top: ast.stmt  # the module's top-level statement that holds it
    tree: ast.Module
    lines: list[str]
    prefix: str  # the def line's indentation
    unit: str  # one level of the module's indentation
    in_class: bool

    @property
    def start(self) -> int:
        return definition_start(self.node)

    @property
    def end(self) -> int:
        return self.node.end_lineno or self.node.lineno


def _locate(module: str, qualname: str) -> _Target:
    tree = parse(module)
    if tree is None:
        _, message = _try_parse(module)
        raise ExtractionError(f"the module does not parse: {message}")
    wanted = normalise_qualname(qualname)
    found: FunctionNode | None = None
    in_class = False
    parents: dict[str, ast.AST] = {}
    for name, node in iter_definitions(tree):
        parents[name] = node
        if name == wanted and isinstance(node, _FUNCTION_TYPES):
            # The last definition wins, as it does when the module runs.
            found = node
            in_class = isinstance(parents.get(name.rpartition(".")[0]), ast.ClassDef)
    if found is None:
        raise ExtractionError(f"the module defines no `{wanted}`")
    start, end = definition_start(found), found.end_lineno or found.lineno
    top = next(
        statement
        for statement in tree.body
        if definition_start(statement) <= start and (statement.end_lineno or 0) >= end
    )
    lines = split_lines(module)
    prefix = _leading_space(lines[found.lineno - 1])
    return _Target(
        qualname=wanted,
        name=found.name,
        node=found,
        top=top,
        tree=tree,
        lines=lines,
        prefix=prefix,
        unit=_indent_unit(lines, found, prefix),
        in_class=in_class,
    )


def _indent_unit(lines: list[str], node: FunctionNode, prefix: str) -> str:
    """One indentation level as the target's body uses it, else as the module does."""
    first = node.body[0]
    if first.lineno > node.lineno:
        indent = _leading_space(lines[first.lineno - 1])
        if indent.startswith(prefix) and len(indent) > len(prefix):
            return indent[len(prefix) :]
    # A one-line def: the first block the module opens at column 0 shows its style.
    for previous, line in itertools.pairwise(lines):
        code = previous.split("#", 1)[0].rstrip()
        indent = _leading_space(line)
        if code.endswith(":") and not _leading_space(previous) and indent and line.strip():
            return indent
    return "    "


# --- finding the code in the reply -------------------------------------------------------


@dataclass
class _Reading:
    """A piece of the reply that parses."""

    text: str
    tree: ast.Module
    origin: str  # "fenced", "bare" or "embedded" (cut out of prose)
    note: str = ""

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")


@dataclass(frozen=True)
class _Plan:
    """What a reading gives: the target's definition, a body, or a function to rename."""

    reading: _Reading
    kind: str  # "definition", "body" or "renamed"
    node: FunctionNode | None
    rank: int


def _choose(reply: str, target: _Target) -> _Plan:
    blocks, outside = split_fences(reply, _reads)
    python = _python_blocks(blocks)
    if not python:
        # No fence at CommonMark's indentation holds code: a reply indented as a whole?
        blocks, rest = split_fences(reply, _reads, indented=True)
        if _python_blocks(blocks):
            python, outside = _python_blocks(blocks), rest
    readings: list[_Reading | str] = []
    if python:
        for index, block in enumerate(python):
            note = f"block {index + 1} of {len(python)}" if len(python) > 1 else ""
            if not block.closed:
                note = ", ".join(filter(None, [note, "unclosed fence"]))
            readings.append(_read(block.text, "fenced", note, trim=True))
    else:
        # Only other languages' fences (a shell command): the code, if any, is around them.
        readings.extend(_read_unfenced("\n".join(outside), lambda r: _plan_rank(r, target)))
    plans = [_interpret(r, target) for r in readings if isinstance(r, _Reading)]
    usable = [plan for plan in plans if plan is not None]
    if usable:
        # The best kind of answer wins; among equals the last, as the model's final word.
        return max(reversed(usable), key=lambda plan: plan.rank)
    if plans:
        raise ExtractionError(f"the reply defines no `{target.name}`")
    errors = [r for r in readings if isinstance(r, str)]
    if errors:
        raise ExtractionError(f"the code does not parse: {errors[-1]}")
    raise ExtractionError("the reply has no code")


def _python_blocks(blocks: list[Block]) -> list[Block]:
    return [b for b in blocks if b.language in _PYTHON_LANGUAGES and b.text.strip()]


def _reads(language: str, text: str) -> bool:
    """Whether a fenced block reads as code: where a fence closes a python block."""
    if language not in _PYTHON_LANGUAGES:
        return True
    return isinstance(_read(text, "fenced", trim=True), _Reading)


def _read(text: str, origin: str, note: str = "", *, trim: bool = False) -> _Reading | str:
    """The text as code, or why it does not parse ("<message> (line N)").

    With `trim`, trailing top-level lines that break the parse are dropped when no definition
    is among them: example usage cut off by the token limit, a `>>>` session after the code.
    """
    code = _strip_blank_edges(textwrap.dedent(text))
    tree, error = _try_parse(code)
    if tree is not None:
        return _Reading(code, tree, origin, note)
    if trim:
        lines = code.split("\n")
        cuts = [i for i in range(len(lines) - 1, 0, -1) if lines[i][:1] not in ("", " ", "\t")]
        for cut in cuts[:_MAX_TRIMS]:
            if any(_DEFINITION_LINE.match(line) for line in lines[cut:]):
                break
            kept = _strip_blank_edges("\n".join(lines[:cut]))
            tree, _ = _try_parse(kept)
            if tree is not None and tree.body:
                note = ", ".join(filter(None, [note, "trailing lines dropped"]))
                return _Reading(kept, tree, origin, note)
    return error


def _read_unfenced(text: str, rank: Callable[[_Reading], int]) -> list[_Reading | str]:
    """Code in a reply without fences: all of it, or the best run of lines amid prose."""
    whole = _read(text, "bare", trim=True)
    if isinstance(whole, _Reading) and _meaningful(whole.tree):
        return [whole]
    lines = text.split("\n")[:_MAX_LINES]
    code_like = [_looks_like_code(line) if line.strip() else None for line in lines]
    filled = [i for i, kind in enumerate(code_like) if kind is not None]
    starts: list[int] = []
    ends: list[int] = []
    for position, i in enumerate(filled):
        if not code_like[i]:
            continue
        if position == 0 or not code_like[filled[position - 1]]:
            starts.append(i)
        if position == len(filled) - 1 or not code_like[filled[position + 1]]:
            ends.append(i + 1)
    windows = [(s, e) for s in starts[:_MAX_BOUNDS] for e in ends[-_MAX_BOUNDS:] if e > s]
    windows.sort(key=lambda window: window[0] - window[1])  # the longest first
    found: list[tuple[int, int, _Reading]] = []
    first_error: str | None = None
    for start, end in windows[:_MAX_WINDOWS]:
        reading = _read("\n".join(lines[start:end]), "embedded")
        if isinstance(reading, str):
            first_error = first_error or reading
        elif _meaningful(reading.tree):
            found.append((rank(reading), end - start, reading))
    if found:
        return [max(found, key=lambda entry: (entry[0], entry[1]))[2]]
    return [first_error] if first_error else []


def _looks_like_code(line: str) -> bool:
    """Whether a line of an unfenced reply may be code rather than prose."""
    if line[:1] in (" ", "\t"):
        return True
    stripped = line.strip()
    if stripped.startswith(("#", "@", ")", "]", "}")) or stripped.endswith(("(", "[", "{", "\\")):
        return True
    if _CLAUSE.fullmatch(stripped):
        return True
    tree, _ = _try_parse(stripped)
    if tree is not None:
        return _meaningful(tree)
    tree, _ = _try_parse(stripped + "\n    pass")  # a block header: `def f(x):`, `for ...:`
    return tree is not None


def _meaningful(tree: ast.Module) -> bool:
    """Whether parsed text is code and not prose that happens to parse ("Sure", "Note: x")."""
    for statement in tree.body:
        if isinstance(statement, ast.Expr):
            if isinstance(statement.value, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom)):
                return True
        elif isinstance(statement, ast.AnnAssign):
            if statement.value is not None:
                return True
        elif not isinstance(statement, ast.Pass):
            return True
    return False


# --- what the code answers ---------------------------------------------------------------


def _interpret(reading: _Reading, target: _Target) -> _Plan | None:
    node = _reply_definition(reading.tree, target)
    if node is not None:
        return _Plan(reading, "definition", node, _RANK_DEFINITION)
    if _has_function_statements(reading.tree):
        return _Plan(reading, "body", None, _RANK_BODY)
    renamed = _renamable(reading.tree, target)
    if renamed is not None:
        return _Plan(reading, "renamed", renamed, _RANK_RENAMED)
    if _is_plain_body(reading.tree, target.name):
        return _Plan(reading, "body", None, _RANK_STATEMENTS)
    return None


def _plan_rank(reading: _Reading, target: _Target) -> int:
    plan = _interpret(reading, target)
    return plan.rank if plan is not None else 0


def _reply_definition(tree: ast.Module, target: _Target) -> FunctionNode | None:
    """The reply's def of the target: same qualname, else at top level, else (for a method)
    inside a top-level class. The last of each wins, as when the code runs."""
    exact: FunctionNode | None = None
    top: FunctionNode | None = None
    method: FunctionNode | None = None
    for qualname, node in iter_definitions(tree):
        if qualname == target.qualname and isinstance(node, _FUNCTION_TYPES):
            exact = node
    for statement in tree.body:
        if isinstance(statement, _FUNCTION_TYPES) and statement.name == target.name:
            top = statement
        elif target.in_class and isinstance(statement, ast.ClassDef):
            for inner in statement.body:
                if isinstance(inner, _FUNCTION_TYPES) and inner.name == target.name:
                    method = inner
    return exact or top or method


def _walk_scope(nodes: Sequence[ast.AST]) -> Iterator[ast.AST]:
    """The nodes under `nodes`, not entering nested functions, classes or lambdas."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, _SCOPE_TYPES):
            stack.extend(ast.iter_child_nodes(node))


def _has_function_statements(tree: ast.Module) -> bool:
    """Whether the code holds statements only a function body can: a body, not a module.

    `ast.parse("return 1")` succeeds; the compiler, not the parser, rejects them at top level.
    """
    kinds = (ast.Return, ast.Yield, ast.YieldFrom, ast.Await, ast.AsyncFor, ast.AsyncWith)
    return any(isinstance(node, (*kinds, ast.Nonlocal)) for node in _walk_scope(tree.body))


def _is_scaffolding(name: str) -> bool:
    """Functions a reply adds around the answer: its tests and its `main`."""
    return name in ("test", "main") or name.startswith("test_")


def _renamable(tree: ast.Module, target: _Target) -> FunctionNode | None:
    """The one function of the reply that answers under another name (`solution`).

    Tests and `main` do not count, nor functions another candidate calls (its helpers).
    """
    candidates = [
        statement
        for statement in tree.body
        if isinstance(statement, _FUNCTION_TYPES) and not _is_scaffolding(statement.name)
    ]
    wanted = _parameter_count(target.node)
    roots = [
        node
        for node in candidates
        if _parameter_count(node) == wanted
        and not any(node.name in _names_in(other) for other in candidates if other is not node)
    ]
    return roots[0] if len(roots) == 1 else None


def _is_plain_body(tree: ast.Module, name: str) -> bool:
    """Statements that read as a body: no definitions, no example calls of the target."""
    statements = [s for s in tree.body if not isinstance(s, (ast.Import, ast.ImportFrom))]
    if not statements or not _meaningful(tree):
        return False
    for statement in statements:
        if isinstance(statement, (*_FUNCTION_TYPES, ast.ClassDef)) or _is_main_guard(statement):
            return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = node.func
            if isinstance(called, ast.Name) and called.id == name:
                return False
            if isinstance(called, ast.Attribute) and called.attr == name:
                return False
    return True


def _is_main_guard(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.If) and "__name__" in _names_in(statement.test)


def _parameter_count(node: FunctionNode) -> int:
    arguments = node.args
    return (
        len(arguments.posonlyargs)
        + len(arguments.args)
        + len(arguments.kwonlyargs)
        + (arguments.vararg is not None)
        + (arguments.kwarg is not None)
    )


def _signature(node: FunctionNode) -> tuple[object, ...]:
    """The parameters' names, kinds, order and defaults; annotations left out (models drop
    them without meaning to change anything)."""
    arguments = node.args
    return (
        [a.arg for a in arguments.posonlyargs],
        [a.arg for a in arguments.args],
        arguments.vararg.arg if arguments.vararg else None,
        [a.arg for a in arguments.kwonlyargs],
        arguments.kwarg.arg if arguments.kwarg else None,
        [ast.dump(d) for d in arguments.defaults],
        [ast.dump(d) if d is not None else None for d in arguments.kw_defaults],
    )


def _awaits(node: FunctionNode) -> bool:
    kinds = (ast.Await, ast.AsyncFor, ast.AsyncWith)
    return any(isinstance(sub, kinds) for sub in _walk_scope(node.body))


def _names_in(node: ast.AST) -> set[str]:
    return {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name)}


# --- building the new function -----------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """How the lines of a piece of code are nested, from its tokens."""

    levels: dict[int, int]  # row -> nesting level, for rows that start a statement or a comment
    in_string: frozenset[int]  # rows inside a multi-line token, whose whitespace is content


def _extract(
    reply: str, module_source: str, qualname: str, *, definition_only: bool = False
) -> Extracted:
    module = module_source.removeprefix(_BOM)
    target = _locate(module, qualname)
    reply = reply.replace("\r\n", "\n").replace("\r", "\n")
    plan = _choose(reply, target)
    if definition_only and plan.kind != "definition":
        raise ExtractionError(f"the reply defines no `{target.name}`")
    if plan.kind == "body":
        kept, hoisted = _function_from_body(plan.reading, target)
        reading, node = plan.reading, None
        shape = "body"
    else:
        assert plan.node is not None
        reading, node = plan.reading, plan.node
        shape = _definition_shape(reading.tree, node)
        if plan.kind == "renamed":
            shape = f"function renamed from `{node.name}`"
            reading, node = _renamed(reading, node, target.name)
        kept = _function_from_definition(reading, node, target)
        hoisted = []
    lines = kept.lines
    function = "\n".join(lines) + "\n"
    tree, error = _try_parse("\n".join(_strip_prefix(lines, target.prefix)))
    if tree is None:
        raise ExtractionError(f"the new `{target.name}` does not parse: {error}")
    used = _free_names(tree)
    module_names = _module_names(target.tree)
    helpers: list[str] = []
    imports = list(hoisted)
    if node is not None:
        chosen = _helpers(reading, node, target, used, module_names)
        layout = _layout(reading.text)
        for statement in chosen:
            start, end = definition_start(statement), statement.end_lineno or statement.lineno
            text = _reindent(reading.lines, start, end, layout, 0, "", target.unit)
            helpers.append("\n".join(text) + "\n")
            used |= _free_names(statement)
        imports.extend(s for s in reading.tree.body if isinstance(s, (ast.Import, ast.ImportFrom)))
    new_imports = _new_imports(imports, reading.text, used, target.tree, module_names)
    origin = " ".join(filter(None, [reading.origin, shape]))
    if reading.note:
        origin += f" ({reading.note})"
    return Extracted(function, tuple(new_imports), tuple(helpers), origin, kept.notes)


def _definition_shape(tree: ast.Module, node: FunctionNode) -> str:
    if node in tree.body:
        return "function" if len(tree.body) == 1 else "module"
    holder = next(s for s in tree.body if node in ast.walk(s))
    return "method in class" if isinstance(holder, ast.ClassDef) else "nested function"


def _function_from_definition(reading: _Reading, node: FunctionNode, target: _Target) -> Kept:
    layout = _layout(reading.text)
    start, end = definition_start(node), node.end_lineno or node.lineno
    base_level = layout.levels.get(node.lineno, 0)
    body_indent = target.prefix + target.unit
    region = _reindent(reading.lines, start, end, layout, base_level, target.prefix, target.unit)
    theirs = _split_def(reading.lines, region, start, node, body_indent)
    ours = _target_parts(target)
    reply_async = isinstance(node, ast.AsyncFunctionDef)
    target_async = isinstance(target.node, ast.AsyncFunctionDef)
    # A model that drops `async` but still awaits did not mean to make the function sync.
    forgot_async = target_async and not reply_async and _awaits(node)
    same = (reply_async or forgot_async) == target_async
    if same and _signature(node) == _signature(target.node):
        header = ours.header
    elif forgot_async:
        header = [re.sub(r"^(\s*)def\b", r"\1async def", theirs.header[0]), *theirs.header[1:]]
    else:
        header = theirs.header
    return _keep(ours, theirs, header, target)


def _function_from_body(reading: _Reading, target: _Target) -> tuple[Kept, list[ast.stmt]]:
    """The target with this body; leading imports go to the module (returned apart)."""
    statements = reading.tree.body
    hoisted: list[ast.stmt] = []
    for statement in statements[:-1]:
        if not isinstance(statement, (ast.Import, ast.ImportFrom)):
            break
        hoisted.append(statement)
    first_row = (hoisted[-1].end_lineno or 0) + 1 if hoisted else 1
    lines = reading.lines
    while first_row < len(lines) and not lines[first_row - 1].strip():
        first_row += 1
    layout = _layout(reading.text)
    body_indent = target.prefix + target.unit
    body = _reindent(lines, first_row, len(lines), layout, 0, body_indent, target.unit)
    ours = _target_parts(target)
    doc_end = _docstring_end(lines, statements[len(hoisted)])
    docstring = None
    if doc_end is not None:
        # The body's own docstring (and any comment above it) stands for the function's.
        docstring, body = body[: doc_end - first_row + 1], body[doc_end - first_row + 1 :]
    theirs = Parts(ours.decorators, ours.header, docstring, body)
    return _keep(ours, theirs, ours.header, target), hoisted


def _keep(ours: Parts, theirs: Parts, header: list[str], target: _Target) -> Kept:
    """The new function with what the reply lost of the original put back (see keep.py)."""
    try:
        return keep_original(ours, theirs, header, target.prefix)
    except CannotKeep as exc:
        raise LostLinesError(f"rejected: {exc}") from exc


def _target_parts(target: _Target) -> Parts:
    region = target.lines[target.start - 1 : target.end]
    return _split_def(target.lines, region, target.start, target.node, target.prefix + target.unit)


def _split_def(
    source: list[str], region: list[str], first_row: int, node: FunctionNode, body_indent: str
) -> Parts:
    """The def's parts from `region` (its lines, maybe re-indented, from `first_row`), using
    `source` (the lines as parsed) for positions."""

    def row(number: int) -> str:
        return region[number - first_row]

    end = node.end_lineno or node.lineno
    decorators = [row(r) for r in range(definition_start(node), node.lineno)]
    colon_row, colon_col = _header_end(source, node)
    rest = source[colon_row - 1][colon_col:]
    header = [row(r) for r in range(node.lineno, colon_row + 1)]
    if rest.strip() and not rest.strip().startswith("#"):
        # `def f(x): return x`: the body goes on a line of its own.
        last = header[-1]
        header[-1] = last[: len(last) - len(rest)]
        body = [body_indent + rest.strip(), *(row(r) for r in range(colon_row + 1, end + 1))]
        return Parts(decorators, header, None, body)
    doc_end = _docstring_end(source, node.body[0])
    if doc_end is None:
        return Parts(decorators, header, None, [row(r) for r in range(colon_row + 1, end + 1)])
    docstring = [row(r) for r in range(colon_row + 1, doc_end + 1)]
    return Parts(decorators, header, docstring, [row(r) for r in range(doc_end + 1, end + 1)])


def _header_end(lines: list[str], node: FunctionNode) -> tuple[int, int]:
    """(row, column just after it) of the colon that ends the def's header.

    Found by tokens, since defaults and annotations may hold colons of their own (`lambda`,
    slices, strings) and the header may span lines.
    """
    first_line = lines[node.lineno - 1]
    indent = len(first_line) - len(first_line.lstrip(" \t"))
    text = "\n".join(lines[node.lineno - 1 : node.body[0].lineno])[indent:] + "\n"
    depth = 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type != tokenize.OP:
                continue
            if token.string in "([{":
                depth += 1
            elif token.string in ")]}":
                depth -= 1
            elif token.string == ":" and depth == 0:
                row = node.lineno + token.start[0] - 1
                return row, token.end[1] + (indent if token.start[0] == 1 else 0)
    except (tokenize.TokenError, SyntaxError):
        pass
    return node.lineno, len(first_line)


def _docstring_end(lines: list[str], statement: ast.stmt) -> int | None:
    """The last row of `statement` if it is a docstring alone on its lines."""
    if not (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    ):
        return None
    end_row = statement.end_lineno or statement.lineno
    line = lines[end_row - 1]
    tail = line.encode("utf-8")[statement.end_col_offset or 0 :].decode("utf-8", "replace")
    if tail.strip() and not tail.strip().startswith("#"):
        return None
    return end_row


def _layout(text: str) -> _Layout:
    levels: dict[int, int] = {}
    in_string: set[int] = set()
    level = 0
    widths = [0]
    in_statement = False
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            row = token.start[0]
            if token.end[0] > row:
                in_string.update(range(row + 1, token.end[0] + 1))
            if token.type == tokenize.INDENT:
                level += 1
                widths.append(_width(token.string))
            elif token.type == tokenize.DEDENT:
                level -= 1
                widths.pop()
            elif token.type == tokenize.NEWLINE:
                in_statement = False
            elif token.type == tokenize.COMMENT:
                if not in_statement:
                    # A comment line has no INDENT of its own: it sits at the level it reaches.
                    width = _width(token.line[: token.start[1]])
                    levels.setdefault(row, sum(1 for w in widths if w < width))
            elif not in_statement and token.type not in _LAYOUT_TOKENS:
                levels[row] = level
                in_statement = True
    except (tokenize.TokenError, SyntaxError):
        pass  # the rows read so far still hold
    return _Layout(levels, frozenset(in_string))


def _reindent(
    lines: list[str], first: int, last: int, layout: _Layout, base_level: int, base: str, unit: str
) -> list[str]:
    """Rows `first`..`last` with each statement at `base` plus `unit` per level below
    `base_level`; continuation and string rows move with their statement, as an editor's
    block indent moves them."""
    out: list[str] = []
    old_indent: str | None = None
    new_indent = base
    for row in range(first, last + 1):
        line = lines[row - 1]
        content = line.lstrip(" \t")
        if row not in layout.in_string:
            if not content:
                out.append("")
                continue
            level = layout.levels.get(row)
            if level is not None:
                old_indent = line[: len(line) - len(content)]
                new_indent = base + unit * max(0, level - base_level)
                out.append(new_indent + content)
                continue
        if old_indent is not None and line.startswith(old_indent) and line.strip():
            out.append(new_indent + line[len(old_indent) :])
        else:
            out.append(line)
    return out


def _renamed(reading: _Reading, node: FunctionNode, name: str) -> tuple[_Reading, FunctionNode]:
    """The reading with `node` renamed to `name`, its recursive calls included."""
    old = node.name
    lines = reading.lines
    spots: set[tuple[int, int]] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id == old:
            spots.add((sub.lineno, _char_column(lines[sub.lineno - 1], sub.col_offset)))
    def_line = lines[node.lineno - 1]
    pattern = re.compile(rf"(?:async\s+)?def\s+({re.escape(old)})\b")
    match = pattern.search(def_line, _char_column(def_line, node.col_offset))
    if match is not None:
        spots.add((node.lineno, match.start(1)))
    for row, column in sorted(spots, reverse=True):
        line = lines[row - 1]
        lines[row - 1] = line[:column] + name + line[column + len(old) :]
    text = "\n".join(lines)
    tree, error = _try_parse(text)
    if tree is None:
        raise ExtractionError(f"the code does not parse after renaming `{old}`: {error}")
    renamed = next(
        s for s in tree.body if isinstance(s, _FUNCTION_TYPES) and s.lineno == node.lineno
    )
    return _Reading(text, tree, reading.origin, reading.note), renamed


# --- imports and helpers -----------------------------------------------------------------


def _free_names(tree: ast.AST) -> set[str]:
    """The global names code refers to: what it needs from the module around it."""
    text = ast.unparse(tree)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = symtable.symtable(text, "<candidate>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        # `nonlocal` in a nested function read alone: fall back to every name loaded.
        return {
            n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
        }
    names: set[str] = set()
    stack = [table]
    while stack:
        current = stack.pop()
        for symbol in current.get_symbols():
            if symbol.is_referenced() and (current is table or symbol.is_global()):
                names.add(symbol.get_name())
        stack.extend(current.get_children())
    return names


def _module_names(tree: ast.Module) -> set[str]:
    """Every name the module binds at top level (in `if`/`try` blocks too)."""
    names: set[str] = set()
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (*_FUNCTION_TYPES, ast.ClassDef)):
            names.add(node.name)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(_bound_name(alias) for alias in node.names)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            names.add(node.name)
        if not isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp)):
            stack.extend(ast.iter_child_nodes(node))
    return names


def _bound_name(alias: ast.alias) -> str:
    return alias.asname or alias.name.partition(".")[0]


def _helpers(
    reading: _Reading, node: FunctionNode, target: _Target, used: set[str], module: set[str]
) -> list[ast.stmt]:
    """The reply's top-level definitions the new function needs, transitively, that the
    module lacks; one that would rebind a module name is left out (the user's code wins)."""
    excluded = {target.name}
    holder = next((s for s in reading.tree.body if node in ast.walk(s)), None)
    candidates: dict[str, ast.stmt] = {}
    for statement in reading.tree.body:
        if statement is holder:
            continue
        if isinstance(statement, (*_FUNCTION_TYPES, ast.ClassDef)):
            if not _is_scaffolding(statement.name) and not statement.name.startswith("Test"):
                candidates[statement.name] = statement
        elif isinstance(statement, (ast.Assign, ast.AnnAssign)) and statement.value is not None:
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            bound = [n for t in targets for n in ast.walk(t)]
            if not all(isinstance(n, (ast.Name, ast.Tuple, ast.List, ast.Store)) for n in bound):
                continue  # `obj.attr = ...`, `d[k] = ...`: not a definition
            if target.name in _names_in(statement.value):
                continue  # `result = add(2, 3)`: example usage
            for node_bound in bound:
                if isinstance(node_bound, ast.Name):
                    candidates[node_bound.id] = statement
    chosen: list[ast.stmt] = []
    pending = sorted(used)
    seen = set(excluded)
    while pending:
        name = pending.pop()
        if name in seen or name in module or name not in candidates:
            continue
        seen.add(name)
        statement = candidates[name]
        if statement not in chosen:
            chosen.append(statement)
            pending.extend(sorted(_free_names(statement)))
    order = {id(s): i for i, s in enumerate(reading.tree.body)}
    return sorted(chosen, key=lambda s: order[id(s)])


def _new_imports(
    statements: Sequence[ast.stmt], text: str, used: set[str], module: ast.Module, bound: set[str]
) -> list[str]:
    """The reply's imports the new code uses, without what the module already binds."""
    present = {
        _normalise(ast.unparse(n))
        for n in ast.walk(module)
        if isinstance(n, (ast.Import, ast.ImportFrom))
    }
    taken = set(bound)
    out: list[str] = []
    for statement in statements:
        if not isinstance(statement, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(statement, ast.ImportFrom) and statement.module == "__future__":
            continue  # only valid at the top; changing the module's semantics is not ours
        source = ast.get_source_segment(text, statement) or ast.unparse(statement)
        if _normalise(ast.unparse(statement)) in present:
            continue
        if any(alias.name == "*" for alias in statement.names):
            present.add(_normalise(ast.unparse(statement)))
            out.append(source)
            continue
        keep = [
            alias
            for alias in statement.names
            if _bound_name(alias) in used and _bound_name(alias) not in taken
        ]
        if not keep:
            continue
        taken.update(_bound_name(alias) for alias in keep)
        if len(keep) < len(statement.names):
            if isinstance(statement, ast.ImportFrom):
                source = ast.unparse(ast.ImportFrom(statement.module, keep, statement.level))
            else:
                source = ast.unparse(ast.Import(keep))
        out.append(source)
    return out


def _normalise(text: str) -> str:
    return " ".join(text.split())


# --- applying ----------------------------------------------------------------------------


def _apply(module_source: str, qualname: str, extracted: Extracted) -> str:
    bom = _BOM if module_source.startswith(_BOM) else ""
    module = module_source[len(bom) :]
    target = _locate(module, qualname)
    lines = target.lines
    starts = [0, *(m.end() for m in _LINE_BREAK.finditer(module))]
    newline_match = _LINE_BREAK.search(module)
    newline = newline_match.group() if newline_match else "\n"

    def join(chunk: list[str]) -> str:
        return "".join(line + newline for line in chunk)

    # (offset, replaced length, text); applied from the end so offsets stay true.
    edits: list[tuple[int, int, str]] = []
    begin = starts[target.start - 1]
    finish = starts[target.end - 1] + len(lines[target.end - 1])
    edits.append((begin, finish - begin, newline.join(_text_lines(extracted.function))))
    helper_index = _helper_index(lines, target.top)
    helper_chunk = _helper_chunk(extracted.helpers)
    import_chunk = [line for text in extracted.imports for line in _text_lines(text)]
    if import_chunk:
        index, gap_before = _import_index(lines, target)
        gap_after = 0 if gap_before == 0 else _gap_before_code(lines, index)
        # Only blank lines between the two spots: one insertion, or the blanks would add up.
        between = lines[index:helper_index] if index <= helper_index else ["-"]
        if helper_chunk and not any(line.strip() for line in between):
            import_chunk = [*import_chunk, "", "", *helper_chunk]
            gap_after = 2
            helper_chunk = []
        chunk = _with_gaps(lines, index, import_chunk, gap_before, gap_after)
        edits.append((starts[index], 0, join(chunk)))
    if helper_chunk:
        chunk = _with_gaps(lines, helper_index, helper_chunk, 2, 2)
        edits.append((starts[helper_index], 0, join(chunk)))
    result = module
    # At equal offsets the replacement goes first, so an insertion lands before it.
    for offset, length, text in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        result = result[:offset] + text + result[offset + length :]
    _check_result(module, result)
    return bom + result


def _text_lines(text: str) -> list[str]:
    return split_lines(text.removesuffix("\r\n").removesuffix("\n"))


def _helper_chunk(helpers: Sequence[str]) -> list[str]:
    """The helpers' lines, two blank lines apart (none between consecutive constants)."""
    chunk: list[str] = []
    previous_constant = False
    for text in helpers:
        lines = _text_lines(text)
        constant = not lines[0].startswith(("def ", "async ", "class ", "@"))
        if chunk:
            chunk.extend([] if constant and previous_constant else ["", ""])
        chunk.extend(lines)
        previous_constant = constant
    return chunk


def _helper_index(lines: list[str], top: ast.stmt) -> int:
    """The 0-based line before which helpers go: above the target's top-level statement
    and the comment lines right above it, unless those comments open the file."""
    index = definition_start(top) - 1
    above = index
    while above > 0 and lines[above - 1].startswith("#"):
        above -= 1
    return index if above == 0 else above


def _import_index(lines: list[str], target: _Target) -> tuple[int, int]:
    """(0-based line before which new imports go, blank lines wanted above them)."""
    start = definition_start(target.top)
    imports = [
        s
        for s in target.tree.body
        if isinstance(s, (ast.Import, ast.ImportFrom)) and (s.end_lineno or s.lineno) < start
    ]
    if imports:
        return imports[-1].end_lineno or imports[-1].lineno, 0
    first = target.tree.body[0]
    if _docstring_end(lines, first) is not None and first is not target.top:
        return first.end_lineno or first.lineno, 1
    # The top, after a header of comment lines (license, shebang, coding cookie).
    index = 0
    while index < len(lines) and lines[index].startswith("#"):
        index += 1
    if index < len(lines) and lines[index].strip():
        index = 0
        while index < min(2, len(lines)) and (
            lines[index].startswith("#!") or _CODING_COOKIE.match(lines[index])
        ):
            index += 1
    return index, 1


def _gap_before_code(lines: list[str], index: int) -> int:
    """PEP 8's blank lines before the code from `index`: two before a top-level def or class."""
    for line in lines[index:]:
        if line.strip() and not line.startswith("#"):
            return 2 if line.startswith(("def ", "async ", "class ", "@")) else 1
    return 1


def _with_gaps(
    lines: list[str], index: int, chunk: list[str], before: int, after: int
) -> list[str]:
    """`chunk` with the blank lines it lacks to stand `before`/`after` lines from code."""
    above = 0
    while above < index and not lines[index - above - 1].strip():
        above += 1
    below = 0
    while index + below < len(lines) and not lines[index + below].strip():
        below += 1
    head = before - above if above < index else 0
    tail = after - below if index + below < len(lines) else 0
    return [""] * max(0, head) + chunk + [""] * max(0, tail)


def _check_result(original: str, result: str) -> None:
    tree, error = _try_parse(result)
    if tree is None:
        raise ExtractionError(f"the module with the candidate does not parse: {error}")
    # The compiler also rejects what parses: `await` outside `async def`, `return` at top
    # level, duplicate parameters. Unless the module was already broken that way, say so now
    # rather than as a test collection error.
    error = _compile_error(result)
    if error and not _compile_error(original):
        raise ExtractionError(f"the module with the candidate does not compile: {error}")


def _compile_error(source: str) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(source, "<candidate>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        return _syntax_message(exc)
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


# --- small helpers -----------------------------------------------------------------------


def _try_parse(text: str) -> tuple[ast.Module | None, str]:
    """The tree, or None and the parser's message with its line."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(text), ""
    except SyntaxError as exc:
        return None, _syntax_message(exc)
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def _syntax_message(exc: SyntaxError) -> str:
    message = exc.msg or "invalid syntax"
    return f"{message} (line {exc.lineno})" if exc.lineno else message


def _strip_blank_edges(text: str) -> str:
    lines = text.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(line.rstrip(" \t") if not line.strip() else line for line in lines)


def _strip_prefix(lines: list[str], prefix: str) -> list[str]:
    return [line[len(prefix) :] if line.startswith(prefix) else line for line in lines]


def _leading_space(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _width(indent: str) -> int:
    return len(indent.expandtabs(8))


def _char_column(line: str, byte_column: int) -> int:
    """A column in code points from the AST's UTF-8 byte offset."""
    if line.isascii():
        return byte_column
    return len(line.encode("utf-8")[:byte_column].decode("utf-8", "replace"))
