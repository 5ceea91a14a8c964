"""Put a candidate's version of one function into a module that is already imported.

Used by the sandbox worker (oci_lsp_sandbox) to verify a round of candidates after collecting
the tests once: each candidate's process is forked from the collected session and swaps the
target function's code object in place, so every reference the tests hold (``from mod import
f``, a method on a class) sees the candidate without re-importing anything.

Only what is safe is swapped; anything else is refused with a reason, and the worker verifies
that candidate the slow way (its own collection):
- the target is a module-level function or a method of a module-level class (a property's
  getter, a cached_property's function), with the same decorators as before;
- the rest of the module is unchanged, apart from new imports, functions, classes and
  assignments (the helpers a reply brings along), which run in the module's namespace;
- the new code has the same closure variables (``super()`` in both or in neither).

Other functions of the module keep working and their tracebacks show the candidate's line
numbers (their code objects are moved by as many lines as the candidate moved them), so the
feedback a model gets is the same as from a fresh import.

Stdlib only: this runs in the workspace's interpreter.
"""

from __future__ import annotations
import __future__

import ast
import functools
import inspect
import os
import sys
import types
from typing import Any

_EXTRA_STATEMENTS = (
    ast.Import,
    ast.ImportFrom,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Assign,
    ast.AnnAssign,
)
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)


class SwapRefused(Exception):
    """The candidate cannot be swapped in; str() says why."""


class Swapper:
    """What is known before the candidates: the module as imported, parsed once (in the
    round's collector); apply() then costs only the candidate's own parse and compile."""

    def __init__(self, target: str, base: str, qualname: str) -> None:
        self.target = target
        self.qualname = qualname
        self.parts = qualname.split(".")
        self.refused: str | None = None
        if len(self.parts) > 2 or "<locals>" in self.parts:
            self.refused = "only module-level functions and methods of module-level classes"
            return
        try:
            self.base_tree = ast.parse(base)
            self.base_top, self.base_def = _locate(self.base_tree, self.parts)
            self.modules = [(m, _live_function(m, self.parts)) for m in _modules_of(target)]
        except (SyntaxError, SwapRefused) as exc:
            self.refused = str(exc)
            return
        self.base_decorators = _dump_list(self.base_def.decorator_list)
        self.base_rest = [
            ast.dump(node) for node in self.base_tree.body if node is not self.base_top
        ]
        self.base_class = (
            _class_without(self.base_top, self.base_def)
            if isinstance(self.base_top, ast.ClassDef)
            else None
        )
        self.base_lines = _def_lines(self.base_tree)

    def apply(self, candidate: str) -> None:
        """Make the imported module(s) of the target behave as `candidate`; SwapRefused when
        that cannot be done faithfully (the caller then imports it afresh instead)."""
        if self.refused is not None:
            raise SwapRefused(self.refused)
        parts, target = self.parts, self.target
        try:
            cand_tree = ast.parse(candidate)
        except SyntaxError as exc:
            raise SwapRefused(f"does not parse: {exc}") from None
        cand_top, cand_def = _locate(cand_tree, parts)
        if self.base_decorators != _dump_list(cand_def.decorator_list):
            raise SwapRefused("the decorators changed")
        if self.base_class is not None and (
            not isinstance(cand_top, ast.ClassDef)
            or self.base_class != _class_without(cand_top, cand_def)
        ):
            raise SwapRefused("the class around the method changed")
        extras = _extra_statements(self.base_rest, cand_tree, cand_top)
        flags = _future_flags(cand_tree)
        shifts = _line_shifts(self.base_lines, _def_lines(cand_tree), self.qualname)
        # No module of that file imported yet: the import hook serves the candidate later.
        for module, old in self.modules:
            new = _compile_function(cand_def, cand_top, parts, target, flags, module)
            try:
                old.__code__ = new.__code__
            except ValueError as exc:  # a different closure (super() added or dropped)
                raise SwapRefused(str(exc)) from None
            old.__defaults__ = new.__defaults__
            old.__kwdefaults__ = new.__kwdefaults__
            old.__annotations__ = new.__annotations__
            old.__doc__ = new.__doc__
            _shift_others(module, target, shifts, skip=old)
            if extras:
                body = ast.Module(body=extras, type_ignores=[])
                code = compile(body, target, "exec", flags=flags, dont_inherit=True)
                exec(code, module.__dict__)


def _locate(tree: ast.Module, parts: list[str]) -> tuple[ast.stmt, Any]:
    """The top-level statement holding the target, and the target's def."""
    for node in tree.body:
        if len(parts) == 1 and isinstance(node, _DEFS) and node.name == parts[0]:
            return node, node
        if len(parts) == 2 and isinstance(node, ast.ClassDef) and node.name == parts[0]:
            for member in node.body:
                if isinstance(member, _DEFS) and member.name == parts[1]:
                    return node, member
    raise SwapRefused(f"no top-level definition of {'.'.join(parts)}")


def _dump_list(nodes: list[Any]) -> list[str]:
    return [ast.dump(node) for node in nodes]


def _class_without(cls: ast.ClassDef, method: Any) -> str:
    copy = ast.ClassDef(
        name=cls.name,
        bases=cls.bases,
        keywords=cls.keywords,
        body=[member for member in cls.body if member is not method],
        decorator_list=cls.decorator_list,
    )
    return ast.dump(copy)


def _extra_statements(old: list[str], cand: ast.Module, cand_top: ast.stmt) -> list[ast.stmt]:
    """The candidate's new top-level statements; refuses when an old one (`old`, dumped)
    changed or went."""
    extras: list[ast.stmt] = []
    at = 0
    for node in cand.body:
        if node is cand_top:
            continue
        if at < len(old) and ast.dump(node) == old[at]:
            at += 1
            continue
        if not isinstance(node, _EXTRA_STATEMENTS):
            raise SwapRefused(f"a new top-level {type(node).__name__} statement")
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            raise SwapRefused("a new __future__ import")
        extras.append(node)
    if at < len(old):
        raise SwapRefused("a top-level statement of the module changed or went")
    return extras


def _future_flags(tree: ast.Module) -> int:
    flags = 0
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            for alias in node.names:
                feature = getattr(__future__, alias.name, None)
                flags |= int(getattr(feature, "compiler_flag", 0))
    return flags


def _def_lines(tree: ast.Module) -> dict[str, int]:
    """qualname -> first line (the first decorator's, as in co_firstlineno) of every function
    at module level and in module-level classes."""
    lines: dict[str, int] = {}

    def first(node: Any) -> int:
        return int(min([node.lineno, *(d.lineno for d in node.decorator_list)]))

    for node in tree.body:
        if isinstance(node, _DEFS):
            lines[node.name] = first(node)
        elif isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, _DEFS):
                    lines[f"{node.name}.{member.name}"] = first(member)
    return lines


def _line_shifts(old: dict[str, int], new: dict[str, int], qualname: str) -> dict[str, int]:
    return {
        name: new[name] - line
        for name, line in old.items()
        if name != qualname and name in new and new[name] != line
    }


def _modules_of(target: str) -> list[types.ModuleType]:
    want = os.path.normcase(os.path.realpath(target))
    name = os.path.basename(want)
    found = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        # realpath only where the name matches: it costs system calls, and pytest alone has
        # hundreds of modules.
        if (
            isinstance(path, str)
            and os.path.normcase(os.path.basename(path)) == name
            and os.path.normcase(os.path.realpath(path)) == want
        ):
            found.append(module)
    return found


def _plain(obj: Any) -> Any:
    """The function under staticmethod/classmethod, a property's getter (the first def of
    its name, which _locate finds), functools.cached_property and functools.wraps wrappers,
    or None."""
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    elif isinstance(obj, property):
        obj = obj.fget
    elif isinstance(obj, functools.cached_property):
        obj = obj.func
    try:
        obj = inspect.unwrap(obj)
    except ValueError:
        return None
    return obj if isinstance(obj, types.FunctionType) else None


def _live_function(module: types.ModuleType, parts: list[str]) -> types.FunctionType:
    holder: Any = module.__dict__
    if len(parts) == 2:
        cls = module.__dict__.get(parts[0])
        if not isinstance(cls, type):
            raise SwapRefused(f"{parts[0]} is not a class once imported")
        holder = cls.__dict__
    found = _plain(holder.get(parts[-1]))
    if found is None or found.__code__.co_name != parts[-1]:
        raise SwapRefused(f"{'.'.join(parts)} is not a plain function once imported")
    return found  # type: ignore[no-any-return]


def _compile_function(
    node: Any, top: ast.stmt, parts: list[str], target: str, flags: int, module: Any
) -> types.FunctionType:
    """The candidate's function, compiled at its own line numbers in the module's globals,
    without decorators (the live object already has them around it)."""
    bare = type(node)(**{field: getattr(node, field) for field in node._fields})
    bare.decorator_list = []
    ast.copy_location(bare, node)
    bare.end_lineno, bare.end_col_offset = node.end_lineno, node.end_col_offset
    body: ast.stmt = bare
    if len(parts) == 2:
        # Inside a class of the same name: name mangling and super()'s __class__ cell as in
        # the real class.
        holder = ast.ClassDef(name=parts[0], bases=[], keywords=[], body=[bare], decorator_list=[])
        if "type_params" in ast.ClassDef._fields:
            holder.type_params = []  # type: ignore[attr-defined]
        body = ast.copy_location(holder, top)
    tree = ast.fix_missing_locations(ast.Module(body=[body], type_ignores=[]))
    namespace: dict[str, Any] = {}
    exec(compile(tree, target, "exec", flags=flags, dont_inherit=True), module.__dict__, namespace)
    made = namespace[parts[0]]
    if len(parts) == 2:
        made = made.__dict__[parts[1]]
    return made  # type: ignore[no-any-return]


def _shift_code(code: types.CodeType, delta: int, filename: str) -> types.CodeType:
    consts = tuple(
        _shift_code(const, delta, filename)
        if isinstance(const, types.CodeType) and const.co_filename == filename
        else const
        for const in code.co_consts
    )
    return code.replace(co_firstlineno=code.co_firstlineno + delta, co_consts=consts)


def _shift_others(module: types.ModuleType, target: str, shifts: dict[str, int], skip: Any) -> None:
    """Move the other functions' line numbers to where the candidate's text has them."""
    if not shifts:
        return
    seen: set[int] = set()

    def visit(obj: Any) -> None:
        function = _plain(obj)
        if function is None or function is skip or id(function) in seen:
            return
        seen.add(id(function))
        code = function.__code__
        delta = shifts.get(function.__qualname__)
        if delta and os.path.realpath(code.co_filename) == os.path.realpath(target):
            function.__code__ = _shift_code(code, delta, code.co_filename)

    for value in list(module.__dict__.values()):
        if isinstance(value, type) and value.__module__ == module.__name__:
            for member in list(value.__dict__.values()):
                if isinstance(member, property):
                    for accessor in (member.fget, member.fset, member.fdel):
                        visit(accessor)
                else:
                    visit(member)
        else:
            visit(value)
