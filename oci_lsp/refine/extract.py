"""Code out of a model's reply, fitted into the module in place of one function.

Replies come in every shape: fenced blocks (one or several, some of them usage examples or
shell commands, the last one maybe unclosed because generation hit its limit), a bare
function, a body only, a whole module with imports, helpers and example calls, code with
prose around it. The paper's demo took the last fenced python block, or the whole reply when
it parsed; here the block that defines the function wins, then the last one that parses.

What the reply did not change on purpose stays the user's: decorators the reply left out, the
exact `def` line when only annotations went missing, the docstring when the reply has none.
Imports and helpers the new code needs are added; nothing of the module is overwritten.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

from oci_lsp.code.functions import definition_start, find_function, iter_definitions, parse

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)

_FENCE = re.compile(
    r"^[ \t]*(?P<fence>```+|~~~+)[ \t]*(?P<lang>[\w+.-]*)[^\n]*\n(?P<body>.*?)"
    r"(?:^[ \t]*(?P=fence)[ \t]*$|\Z)",
    re.MULTILINE | re.DOTALL,
)
_PYTHON_TAGS = frozenset({"", "python", "py", "python3", "py3", "pycon"})


class ExtractionError(Exception):
    """The reply holds no usable code; str() is one line saying why."""


@dataclass(frozen=True)
class Extracted:
    function: str  # the whole new definition at the target's indentation, ending with "\n"
    imports: tuple[str, ...]  # top-level imports of the reply the module lacks
    helpers: tuple[str, ...]  # top-level definitions the new function needs, at column 0
    shape: str  # how the reply looked, for logs


# -- finding the code -------------------------------------------------------------------------


def _blocks(reply: str) -> tuple[list[str], str]:
    fenced = [
        m.group("body") for m in _FENCE.finditer(reply) if m.group("lang").lower() in _PYTHON_TAGS
    ]
    if fenced:
        return fenced, "fenced"
    if reply.strip() and _parse(reply) is not None:
        return [reply], "bare"
    # Prose around code: the longest run of lines that parses, dropping lines from the ends.
    lines = reply.splitlines()
    best = ""
    for start in range(len(lines)):
        if not lines[start].strip() or len(lines) - start <= len(best.splitlines()):
            continue
        for end in range(len(lines), start, -1):
            if end - start <= len(best.splitlines()):
                break
            chunk = "\n".join(lines[start:end])
            if _looks_like_code(chunk) and _parse(chunk) is not None:
                best = chunk
                break
    return ([best], "code in prose") if best else ([], "no code")


def _looks_like_code(chunk: str) -> bool:
    tree = _parse(chunk)
    if tree is None:
        return False
    # A sentence can parse as an expression ("Here it is"): code has statements of substance.
    return any(
        not isinstance(node, ast.Expr) or isinstance(node.value, ast.Call) for node in tree.body
    )


def _parse(text: str) -> ast.Module | None:
    if "\0" in text:
        return None
    return parse(textwrap.dedent(text))


def _syntax_error(text: str) -> str:
    try:
        ast.parse(textwrap.dedent(text))
    except SyntaxError as exc:
        return f"the code does not parse: {exc.msg} (line {exc.lineno})"
    except ValueError as exc:
        return f"the code does not parse: {exc}"
    return "the code does not parse"


def _find_def(tree: ast.Module, qualname: str) -> FunctionNode | None:
    """The reply's definition of the target: by qualname, else by its last name at top level
    or inside any class (a method given alone or in its class)."""
    name = qualname.split(".")[-1]
    found: FunctionNode | None = None
    for defined, node in iter_definitions(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
            defined == qualname or (defined.split(".")[-1] == name and defined.count(".") <= 1)
        ):
            found = node
    return found


def _is_test_function(node: ast.stmt) -> bool:
    """A test the reply wrote to show its code works: not a helper to add."""
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith(
        "test"
    )


def _params(node: FunctionNode) -> tuple[object, ...]:
    """Parameter names, kinds and defaults, without annotations."""
    args = node.args
    return (
        tuple(a.arg for a in args.posonlyargs),
        tuple(a.arg for a in args.args),
        args.vararg.arg if args.vararg else None,
        tuple(a.arg for a in args.kwonlyargs),
        args.kwarg.arg if args.kwarg else None,
        tuple(ast.dump(d) for d in args.defaults),
        tuple(ast.dump(d) if d else None for d in args.kw_defaults),
    )


def _arity(node: FunctionNode) -> int:
    args = node.args
    return len(args.posonlyargs) + len(args.args) + len(args.kwonlyargs)


# -- pieces of text ---------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return text.splitlines()


def _span(lines: list[str], first: int, last: int) -> str:
    """Lines first..last (1-based, inclusive), dedented."""
    return textwrap.dedent("\n".join(lines[first - 1 : last]))


def _docstring_node(node: FunctionNode) -> ast.Expr | None:
    if node.body and isinstance(node.body[0], ast.Expr):
        value = node.body[0].value
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            return node.body[0]
    return None


def _header(lines: list[str], node: FunctionNode) -> str | None:
    """The `def` line(s), up to the colon; None for a one-line def (body on the same line)."""
    first_body = node.body[0].lineno
    if first_body == node.lineno:
        return None
    return _span(lines, node.lineno, first_body - 1).rstrip()


def _decorators(lines: list[str], node: FunctionNode) -> str:
    start = definition_start(node)
    return _span(lines, start, node.lineno - 1).rstrip() if start < node.lineno else ""


def _body(lines: list[str], node: FunctionNode) -> str:
    """The body after the docstring, dedented; `...`'s worth when only a docstring."""
    statements = node.body[1:] if _docstring_node(node) is not None else node.body
    if not statements:
        return "pass"
    first = statements[0]
    if first.lineno == node.lineno:  # def f(): return 1
        segment = ast.get_source_segment("\n".join(lines), first) or "pass"
        return segment
    return _span(lines, first.lineno, node.end_lineno or first.lineno)


def _indent(text: str, prefix: str, unit: str) -> str:
    """Text (dedented) at `prefix`, each level of its own indentation (tabs, or its narrowest
    run of spaces) rewritten as the module's `unit`: a reply in 4 spaces fits a tabbed file."""
    widths = [
        len(line) - len(line.lstrip(" "))
        for line in text.splitlines()
        if line.strip() and line.startswith(" ")
    ]
    step = min(widths) if widths else 4
    out = []
    for line in text.splitlines():
        if not line.strip():
            out.append("")
            continue
        stripped = line.lstrip(" \t")
        lead = line[: len(line) - len(stripped)]
        levels = lead.count("\t") + lead.count(" ") // step
        extra = " " * (lead.count(" ") % step)
        out.append(prefix + unit * levels + extra + stripped)
    return "\n".join(out)


def _leading(lines: list[str], node: FunctionNode) -> str:
    """The whitespace before the target's first line (tabs stay tabs)."""
    line = lines[definition_start(node) - 1]
    return line[: len(line) - len(line.lstrip())]


def _indent_unit(lines: list[str], node: FunctionNode) -> str:
    body_line = lines[node.body[0].lineno - 1]
    if node.body[0].lineno != node.lineno:
        whole = body_line[: len(body_line) - len(body_line.lstrip())]
        own = whole[node.col_offset :]
        if own:
            return own
    return "    "


# -- extraction -------------------------------------------------------------------------------


def extract_candidate(reply: str, module_source: str, qualname: str) -> Extracted:
    module = parse(module_source)
    location = find_function(module_source, qualname)
    if module is None or location is None:
        raise ExtractionError(f"`{qualname}` is not in the module (or the module does not parse)")
    original = _find_def(module, qualname)
    assert original is not None
    blocks, shape = _blocks(reply)
    blocks = [b for b in blocks if b.strip()]
    if not blocks:
        raise ExtractionError("the reply has no code")
    parsed = [(b, t) for b in blocks if (t := _parse(b)) is not None]
    if not parsed:
        raise ExtractionError(_syntax_error(blocks[-1]))
    defining = [(b, t) for b, t in parsed if _find_def(t, qualname) is not None]
    block, tree = defining[-1] if defining else parsed[-1]
    text = textwrap.dedent(block)
    reply_lines = _lines(text)
    node = _find_def(tree, qualname)
    name = qualname.split(".")[-1]
    if node is None:
        functions = [
            n
            for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and not n.name.startswith("test")
        ]
        if len(functions) == 1 and _arity(functions[0]) == _arity(original):
            node = functions[0]  # the same function under another name ("solution")
            shape += " renamed"
        elif not any(
            isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in tree.body
        ):
            return _from_body(text, module_source, original, shape + " body")
        else:
            raise ExtractionError(f"the reply defines no `{name}`")
    module_lines = _lines(module_source)
    function = _assemble(module_lines, original, reply_lines, node, name)
    imports, helpers = _additions(tree, module, node, text)
    return Extracted(function, imports, helpers, f"{shape} function")


def _from_body(text: str, module_source: str, original: FunctionNode, shape: str) -> Extracted:
    lines = _lines(module_source)
    indent = _leading(lines, original)
    unit = _indent_unit(lines, original)
    parts = []
    decorators = _decorators(lines, original)
    if decorators:
        parts.append(_indent(decorators, indent, unit))
    header = _header(lines, original) or ast.unparse(_header_only(original))
    parts.append(_indent(header, indent, unit))
    doc = _docstring_node(original)
    if doc is not None:
        parts.append(
            _indent(_span(lines, doc.lineno, doc.end_lineno or doc.lineno), indent + unit, unit)
        )
    parts.append(_indent(text.strip("\n"), indent + unit, unit))
    function = "\n".join(parts) + "\n"
    if parse(textwrap.dedent(function)) is None:
        raise ExtractionError(_syntax_error(function))
    return Extracted(function, (), (), shape)


def _header_only(node: FunctionNode) -> ast.stmt:
    """A def with an empty body, for ast.unparse to print its header."""
    copy = type(node)(**{f: getattr(node, f) for f in node._fields})
    copy.body = [ast.Pass()]
    copy.decorator_list = []
    text = ast.unparse(copy).rsplit("\n", 1)[0]
    return ast.parse(text + "\n    pass").body[0]


def _assemble(
    module_lines: list[str],
    original: FunctionNode,
    reply_lines: list[str],
    node: FunctionNode,
    name: str,
) -> str:
    indent = _leading(module_lines, original)
    unit = _indent_unit(module_lines, original)
    decorators = _decorators(reply_lines, node) or _decorators(module_lines, original)
    same_kind = isinstance(node, ast.AsyncFunctionDef) == isinstance(original, ast.AsyncFunctionDef)
    header = None
    if same_kind and _params(node) == _params(original):
        header = _header(module_lines, original)  # annotations dropped is not a change
    if header is None:
        header = _header(reply_lines, node)
        if header is None:
            header = ast.unparse(_header_only(node)).split("\n")[0]
        if node.name != name:
            header = re.sub(rf"\bdef\s+{re.escape(node.name)}\b", f"def {name}", header, count=1)
    doc = _docstring_node(node)
    doc_text = (
        _span(reply_lines, doc.lineno, doc.end_lineno or doc.lineno) if doc is not None else None
    )
    if doc_text is None and (kept := _docstring_node(original)) is not None:
        doc_text = _span(module_lines, kept.lineno, kept.end_lineno or kept.lineno)
    parts = []
    if decorators:
        parts.append(_indent(decorators, indent, unit))
    parts.append(_indent(header, indent, unit))
    if doc_text is not None:
        parts.append(_indent(doc_text, indent + unit, unit))
    parts.append(_indent(_body(reply_lines, node), indent + unit, unit))
    function = "\n".join(parts) + "\n"
    if parse(textwrap.dedent(function)) is None:
        raise ExtractionError(_syntax_error(function))
    return function


def _bound_names(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, ast.Assign):
        return {t.id for t in node.targets if isinstance(t, ast.Name)}
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return {node.target.id}
    return set()


def _used_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _additions(
    tree: ast.Module, module: ast.Module, node: FunctionNode, text: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    bound: set[str] = set()
    for statement in module.body:
        bound |= _bound_names(statement)
    existing_imports = {
        " ".join(ast.unparse(s).split())
        for s in module.body
        if isinstance(s, (ast.Import, ast.ImportFrom))
    }
    imports = []
    for statement in tree.body:
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            if " ".join(ast.unparse(statement).split()) in existing_imports:
                continue
            if _bound_names(statement) <= bound:
                continue
            segment = ast.get_source_segment(text, statement)
            imports.append(segment or ast.unparse(statement))
    # Helpers: what the new function uses, transitively, that the module does not define.
    candidates: dict[str, ast.stmt] = {}
    for statement in tree.body:
        if statement is node or isinstance(statement, (ast.Import, ast.ImportFrom)):
            continue
        names = _bound_names(statement)
        if isinstance(
            statement, (ast.FunctionDef, ast.AsyncFunctionDef)
        ) and statement.name.startswith("test"):
            continue
        for name in names:
            if name not in bound:
                candidates[name] = statement
    wanted: list[ast.stmt] = []
    queue = list(_used_names(node))
    seen: set[str] = set()
    while queue:
        name = queue.pop()
        if name in seen or name not in candidates:
            continue
        seen.add(name)
        statement = candidates[name]
        if statement not in wanted:
            wanted.append(statement)
            queue.extend(_used_names(statement))
    wanted.sort(key=lambda s: s.lineno)
    helpers = tuple(
        textwrap.dedent(
            "\n".join(text.splitlines()[definition_start(s) - 1 : s.end_lineno or s.lineno])
        )
        for s in wanted
    )
    return tuple(imports), helpers


# -- putting it in place ----------------------------------------------------------------------


def apply_candidate(module_source: str, qualname: str, extracted: Extracted) -> str:
    """The module with the function replaced and the additions inserted; must parse."""
    module = parse(module_source)
    original = _find_def(module, qualname) if module is not None else None
    if module is None or original is None:
        raise ExtractionError(f"`{qualname}` is not in the module (or the module does not parse)")
    newline = "\r\n" if "\r\n" in module_source else "\n"
    lines = module_source.splitlines(keepends=True)
    start = definition_start(original)
    end = original.end_lineno or original.lineno
    tail_newline = lines[end - 1].endswith(("\n", "\r")) if end - 1 < len(lines) else True
    function = extracted.function.replace("\n", newline)
    if not tail_newline:
        function = function[: -len(newline)]
    lines[start - 1 : end] = [function]
    # Helpers go before the top-level definition that holds the target.
    top = next(
        s
        for s in module.body
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and s.lineno <= original.lineno <= (s.end_lineno or s.lineno)
    )
    top_start = definition_start(top)
    if extracted.helpers:
        block = (newline * 3).join(h.strip("\n").replace("\n", newline) for h in extracted.helpers)
        lines[top_start - 1 : top_start - 1] = [block + newline * 3]
    if extracted.imports:
        after = 0
        for statement in module.body:
            if isinstance(statement, (ast.Import, ast.ImportFrom)):
                after = statement.end_lineno or statement.lineno
            elif after == 0 and isinstance(statement, ast.Expr) and statement is module.body[0]:
                after = statement.end_lineno or statement.lineno  # the module's docstring
        text = newline.join(extracted.imports) + newline
        if after == 0:
            lines[0:0] = [text + newline]
        else:
            if after <= len(lines) and not lines[after - 1].endswith(("\n", "\r")):
                lines[after - 1] += newline
            lines[after:after] = [text]
    result = "".join(lines)
    if parse(result) is None:
        raise ExtractionError(_syntax_error(result))
    return result


__all__ = ["Extracted", "ExtractionError", "apply_candidate", "extract_candidate"]
