"""Module names, imports, and static resolution of a test's calls to workspace code.

A failing test is mapped to the function it exercised without running anything: the
dotted name called in the failing statement is resolved through the test module's
imports to a file and qualname in the workspace. The import graph (`testing.impact`) uses
`imported_modules` to know which tests a change can affect.
"""

from __future__ import annotations

import ast
import keyword
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from oci_lsp.code.functions import find_function, iter_definitions, parse

# How many `from .impl import add` hops a re-export is followed through.
_MAX_REEXPORT_DEPTH = 3

# Import statements are found by text, not by parsing, so that a file with a syntax error
# elsewhere still reports its imports, and so that thousands of files are read in well under
# a second. A statement starts a line or follows `;` or a block header's `:`, which also
# covers imports inside functions, `try:` and `if TYPE_CHECKING:`.
_CONTINUED = r"(?:[^\n\r#;\\]|\\(?:\r\n|\r|\n)?)*"
_IMPORT_STATEMENT = re.compile(
    r"[ \t]*(?:"
    r"from[ \t]+(?P<module>\.*[ \t]*[\w.]*)[ \t]+import\b[ \t]*"
    rf"(?P<names>\([^)]*\)|{_CONTINUED})"
    rf"|import[ \t]+(?P<modules>{_CONTINUED})"
    r")"
)
# Only where the keyword occurs is the statement pattern tried: a literal-led search is
# fast, a pattern tried at every position of every file is not.
_IMPORT_WORD = re.compile(r"import\b")
_STATEMENT_SEPARATOR = re.compile(r"[;:]")
_COMMENT = re.compile(r"#[^\r\n]*")


class ModuleIndex:
    """Maps files to module names and back, for the workspace's source roots."""

    def __init__(self, root: Path, source_roots: Sequence[Path] | None = None) -> None:
        self.root = _absolute(root)
        if source_roots is None:
            # The src layout first: a file under src/ is named as its installed package.
            src = self.root / "src"
            roots = [src, self.root] if src.is_dir() else [self.root]
        else:
            roots = [_absolute(r) for r in source_roots]
        self._roots: tuple[Path, ...] = tuple(roots)
        # Plain strings for the prefix tests: this runs for every file of the workspace.
        self._root_strings = tuple(str(r).rstrip(os.sep) for r in roots)

    @property
    def source_roots(self) -> tuple[Path, ...]:
        """The directories module names are relative to, in lookup order."""
        return self._roots

    def module_for_path(self, path: Path) -> str | None:
        """ "pkg.mod" for pkg/mod.py, "pkg" for pkg/__init__.py; None outside the roots.

        The name is relative to the first source root that contains the file; a path with
        a part that is not an identifier cannot be imported, so it has no name.
        """
        absolute = str(_absolute(path))
        parts = _relative_parts(absolute, self._root_strings)
        if parts is None:  # the client may name a file by its real path
            real_roots = tuple(os.path.realpath(root) for root in self._root_strings)
            parts = _relative_parts(os.path.realpath(absolute), real_roots)
        return None if parts is None else module_name_from_parts(parts)

    def path_for_module(self, name: str) -> Path | None:
        """The workspace file of module `name` (mod.py or mod/__init__.py), checked on disk.

        A directory without `__init__.py` is a namespace package: it has no file (None) but
        its submodules still resolve.
        """
        parts = name.split(".")
        if not all(_is_identifier(part) for part in parts):
            return None
        for root in self._roots:
            base = os.path.join(root, *parts)
            for candidate in (base + ".py", os.path.join(base, "__init__.py")):
                if os.path.isfile(candidate):
                    return Path(candidate)
        return None


@dataclass(frozen=True)
class ImportBinding:
    """One name an import statement binds in the importing module."""

    local: str  # the bound name: "add", "calc", "np"; "a.b.c" for `import a.b.c`; "*"
    module: str  # the absolute module: "calc", "pkg.sub"
    attribute: str | None  # "add" for `from calc import add`; None for `import calc`


def module_name_from_parts(parts: Sequence[str]) -> str | None:
    """ "pkg.mod" from ("pkg", "mod.py"); None when the parts cannot name a module."""
    if not parts or not parts[-1].endswith(".py"):
        return None
    names = [*parts[:-1], parts[-1][:-3]]
    if names[-1] == "__init__":
        names.pop()
    if not names or not all(_is_identifier(name) for name in names):
        return None
    return ".".join(names)


def resolve_relative(
    module: str | None, level: int, module_name: str, is_package: bool
) -> str | None:
    """The absolute module of `from {'.' * level}{module} import ...` in `module_name`.

    None when the import climbs above the top-level package, as Python would refuse it.
    """
    if level == 0:
        return module or None
    package = module_name if is_package else module_name.rpartition(".")[0]
    if not package:
        return None
    bits = package.split(".")
    if level - 1 >= len(bits):
        return None
    base = ".".join(bits[: len(bits) - (level - 1)])
    return f"{base}.{module}" if module else base


def import_bindings(source: str, module_name: str, is_package: bool) -> list[ImportBinding]:
    """Every import in the module, anywhere in it, in source order; [] if it does not parse."""
    tree = parse(source)
    if tree is None:
        return []
    return _bindings(tree, module_name, is_package)


def imported_modules(source: str, module_name: str, is_package: bool) -> set[str]:
    """Every absolute module name the source may import (callers filter by what exists).

    `import a.b.c` gives "a", "a.b", "a.b.c" (importing runs each package's `__init__`);
    `from pkg import name` gives "pkg" and "pkg.name", since `name` may be a submodule.
    Found by a textual scan, so a syntax error elsewhere does not lose the file's imports;
    an import-like line inside a string may add a name, which only over-approximates.
    """
    found: set[str] = set()
    if "import" not in source:
        return found
    for match in _import_statements(source):
        modules = match.group("modules")
        if modules is not None:
            for item in _listed_names(modules):
                if _is_dotted(item):
                    found.update(_with_parents(item))
            continue
        spec = match.group("module").replace(" ", "").replace("\t", "")
        dotted = spec.lstrip(".")
        if dotted and not _is_dotted(dotted):
            continue
        absolute = resolve_relative(dotted, len(spec) - len(dotted), module_name, is_package)
        if absolute is None:
            continue
        found.update(_with_parents(absolute))
        for name in _listed_names(match.group("names")):
            if _is_identifier(name):
                found.add(f"{absolute}.{name}")
    return found


def resolve_call(
    test_source: str, test_module: str, dotted: str, index: ModuleIndex
) -> tuple[Path, str] | None:
    """Resolve a dotted call in a test module to (file, qualname) in the workspace.

    Through the test module's imports ("add" after `from calc import add`, "calc.add" after
    `import calc`, "Calc.add" after `from calc import Calc`, star imports), into
    submodules, and through re-exports such as `from .impl import add` in a package's
    `__init__`. A class resolves to the class's qualname. None when the name is defined in
    the test module itself, or the target is outside the workspace or not defined there.
    """
    parts = dotted.split(".")
    if not all(_is_identifier(part) for part in parts):
        return None
    tree = parse(test_source)
    if tree is None or parts[0] in _module_level_names(tree):
        return None
    bindings = _bindings(tree, test_module, is_package=False)
    return _Resolver(index).through_bindings(bindings, parts, depth=0)


# --- helpers ------------------------------------------------------------------------------


def _absolute(path: Path) -> Path:
    # abspath, not resolve: a workspace opened through a symlink keeps the client's paths.
    return Path(os.path.abspath(path))


def _relative_parts(path: str, roots: tuple[str, ...]) -> list[str] | None:
    """`path`'s parts below the first of `roots` that contains it."""
    for root in roots:
        if path.startswith(root + os.sep):
            return path[len(root) + 1 :].split(os.sep)
    return None


def _is_identifier(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def _is_dotted(name: str) -> bool:
    return all(_is_identifier(part) for part in name.split("."))


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _import_statements(source: str) -> Iterator[re.Match[str]]:
    started: set[int] = set()
    for word in _IMPORT_WORD.finditer(source):
        position = word.start()
        before = source[position - 1] if position else " "
        if before.isalnum() or before == "_":
            continue  # "reimport", "_import"
        line_start = max(source.rfind("\n", 0, position), source.rfind("\r", 0, position)) + 1
        starts = [line_start]
        starts.extend(m.end() for m in _STATEMENT_SEPARATOR.finditer(source, line_start, position))
        for start in starts:
            if start in started:
                continue
            match = _IMPORT_STATEMENT.match(source, start)
            if match is not None:
                started.add(start)
                yield match


def _listed_names(text: str) -> list[str]:
    """The first word of each comma-separated item: "a.b as c, d" gives ["a.b", "d"]."""
    text = _COMMENT.sub("", text).replace("\\", " ").replace("(", " ").replace(")", " ")
    names: list[str] = []
    for item in text.split(","):
        words = item.split()
        if words:
            names.append(words[0])
    return names


def _bindings(tree: ast.Module, module_name: str, is_package: bool) -> list[ImportBinding]:
    statements = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    statements.sort(key=lambda n: (n.lineno, n.col_offset))
    bindings: list[ImportBinding] = []
    for statement in statements:
        if isinstance(statement, ast.Import):
            for alias in statement.names:
                if alias.asname is not None:
                    bindings.append(ImportBinding(alias.asname, alias.name, None))
                    continue
                top = alias.name.partition(".")[0]
                bindings.append(ImportBinding(top, top, None))
                if top != alias.name:
                    # So that `a.b.c.f` resolves straight to module a.b.c.
                    bindings.append(ImportBinding(alias.name, alias.name, None))
            continue
        absolute = resolve_relative(statement.module, statement.level, module_name, is_package)
        if absolute is None:
            continue
        for alias in statement.names:
            if alias.name == "*":
                bindings.append(ImportBinding("*", absolute, None))
            else:
                bindings.append(ImportBinding(alias.asname or alias.name, absolute, alias.name))
    return bindings


def _module_level_names(tree: ast.Module) -> set[str]:
    """Names a module defines itself (defs, classes, assignments), in any module-level block."""
    names: set[str] = set()
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        statement = stack.pop()
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(statement.name)
            continue
        if isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            continue
        # if / try / with / for blocks at module level still bind module names.
        for field in ("body", "orelse", "finalbody"):
            block = getattr(statement, field, None)
            if isinstance(block, list):
                stack.extend(s for s in block if isinstance(s, ast.stmt))
        for handler in getattr(statement, "handlers", []):
            stack.extend(handler.body)
    return names


def _match_binding(
    bindings: list[ImportBinding], parts: list[str]
) -> tuple[ImportBinding, list[str]] | None:
    """The binding for the longest prefix of `parts`; the last import of a name wins."""
    for size in range(len(parts), 0, -1):
        local = ".".join(parts[:size])
        for binding in reversed(bindings):
            if binding.local == local:
                return binding, parts[size:]
    return None


class _Resolver:
    """One resolution: caches the modules it reads and refuses to go round in circles."""

    def __init__(self, index: ModuleIndex) -> None:
        self._index = index
        self._loaded: dict[Path, tuple[str, ast.Module | None]] = {}
        self._visited: set[tuple[str, tuple[str, ...]]] = set()

    def through_bindings(
        self, bindings: list[ImportBinding], parts: list[str], depth: int
    ) -> tuple[Path, str] | None:
        match = _match_binding(bindings, parts)
        if match is not None:
            binding, rest = match
            if binding.attribute is None:
                return self.in_module(binding.module, rest, depth)
            return self.in_module(binding.module, [binding.attribute, *rest], depth)
        for binding in reversed(bindings):
            if binding.local == "*":
                found = self.in_module(binding.module, parts, depth)
                if found is not None:
                    return found
        return None

    def in_module(self, module: str, parts: list[str], depth: int) -> tuple[Path, str] | None:
        """`parts` looked up as an attribute path of workspace module `module`."""
        key = (module, tuple(parts))
        if not parts or depth > _MAX_REEXPORT_DEPTH or key in self._visited:
            return None
        self._visited.add(key)
        path = self._index.path_for_module(module)
        tree: ast.Module | None = None
        if path is not None:
            source, tree = self._load(path)
            qualname = ".".join(parts)
            if tree is not None:
                if any(name == qualname for name, _ in iter_definitions(tree)):
                    return path, qualname
                if parts[0] in _module_level_names(tree):
                    return None  # defined here, but not as something we can point at
            elif find_function(source, qualname) is not None:
                return path, qualname
        # `calc.add` where calc is a submodule of `module`.
        if len(parts) > 1:
            submodule = f"{module}.{parts[0]}"
            if self._index.path_for_module(submodule) is not None:
                found = self.in_module(submodule, parts[1:], depth)
                if found is not None:
                    return found
        if path is None or tree is None:
            return None
        # A re-export: `from .impl import add` in pkg/__init__.py.
        bindings = _bindings(tree, module, is_package=path.name == "__init__.py")
        return self.through_bindings(bindings, parts, depth + 1)

    def _load(self, path: Path) -> tuple[str, ast.Module | None]:
        loaded = self._loaded.get(path)
        if loaded is None:
            try:
                source = path.read_bytes().decode("utf-8", errors="replace")
            except OSError:
                source = ""
            loaded = (source, parse(source))
            self._loaded[path] = loaded
        return loaded
