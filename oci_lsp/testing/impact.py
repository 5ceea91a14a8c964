"""Which tests a change can affect: the workspace's import graph, kept up to date.

When a file is saved only the tests that import it, directly or through other workspace
modules, need to run. The graph is built once by reading every Python file of the
workspace (imports are found by a textual scan, so this takes well under a second for
thousands of files) and then updated one file at a time from the file watcher.

Imports resolve the way they do under pytest's default "prepend" import mode: a test
file's "basedir" (the first ancestor directory without an `__init__.py`) is put first on
`sys.path`, so `import helpers` in tests/test_x.py finds tests/helpers.py when tests/ is
not a package. Every other file resolves against the workspace's source roots first and
its own basedir after, which over-approximates the edges of scripts run directly: an extra
edge only runs an extra test, a missing one would hide a failure.
"""

from __future__ import annotations

import ast
import os
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from oci_lsp.code.functions import iter_definitions, parse, split_lines
from oci_lsp.code.modules import ModuleIndex, imported_modules, module_name_from_parts
from oci_lsp.code.walk import is_ignored_path, is_test_file, iter_python_files

# Files whose change can alter how every test runs or is collected.
_CONFIG_NAMES = frozenset({"pyproject.toml", "setup.cfg", "pytest.ini", "tox.ini"})
_CONFTEST = "conftest.py"
_INIT = "__init__.py"


@dataclass
class _Node:
    """One file of the graph. Paths are absolute strings: cheaper than Path in bulk."""

    imports: frozenset[str] = frozenset()  # absolute module names it may import
    roots: tuple[str, ...] = ()  # where those names are looked up, in order
    deps: set[str] = field(default_factory=set)  # workspace files it imports


class ImportGraph:
    """Which workspace modules import which, kept up to date incrementally."""

    def __init__(self, root: Path, index: ModuleIndex | None = None) -> None:
        self._root = os.path.abspath(root)
        self._root_path = Path(self._root)
        self._real_root = os.path.realpath(self._root)
        self._index = index if index is not None else ModuleIndex(self._root_path)
        self._source_roots = tuple(str(r) for r in self._index.source_roots)
        self._nodes: dict[str, _Node] = {}
        self._dependents: dict[str, set[str]] = {}  # file -> files that import it
        self._importers: dict[str, set[str]] = {}  # module name -> files that import it
        # (roots, module name) -> file; valid while the set of files does not change.
        self._found: dict[tuple[tuple[str, ...], str], str | None] = {}

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, (str, Path)) and self._key(Path(path)) in self._nodes

    def build(self) -> None:
        """Read every Python file of the workspace once."""
        self._nodes = {str(path): _Node() for path in iter_python_files(self._root_path)}
        self._dependents.clear()
        self._importers.clear()
        self._found.clear()
        # All files are known before any is read: names resolve against the full set.
        for key in self._nodes:
            self._read(key)
        for key in self._nodes:
            self._resolve(key)

    def update(self, path: Path) -> None:
        """Re-read one file that was created or changed (or forget it if it is gone)."""
        key = self._key(path)
        if not self._is_workspace_python(key) or not os.path.isfile(key):
            self.remove(path)
            return
        is_new = key not in self._nodes
        if is_new:
            self._nodes[key] = _Node()
            self._found.clear()
        self._read(key)
        self._resolve(key)
        if is_new:
            self._after_files_changed(key)

    def remove(self, path: Path) -> None:
        """Forget a deleted file; files that imported it look for their names again."""
        key = self._key(path)
        node = self._nodes.pop(key, None)
        if node is None:
            return
        self._found.clear()
        for dep in node.deps:
            self._unlink(key, dep)
        for name in node.imports:
            self._forget_importer(name, key)
        for importer in self._dependents.pop(key, set()):
            if importer in self._nodes:
                self._resolve(importer)  # another file may now answer to that name
        self._after_files_changed(key)

    def dependents(self, path: Path) -> set[Path]:
        """Every file that imports `path`'s module, directly or transitively (not itself).

        For a file no longer in the graph (deleted), the files whose imports would name it.
        """
        key = self._key(path)
        return {Path(found) for found in self._dependent_keys(key)}

    def test_files(self) -> list[Path]:
        """Every test file of the workspace the graph knows (conftest files aside)."""
        return [
            Path(key)
            for key in self._nodes
            if is_test_file(Path(key)) and os.path.basename(key) != _CONFTEST
        ]

    def affected_tests(self, changed: Iterable[Path]) -> set[Path] | None:
        """The test files a change can affect, or None for "all of them".

        A test file is affected when it changed or imports a changed file transitively;
        when a conftest.py imports one, every test under that conftest's directory is (its
        fixtures may use it). A changed conftest.py or pytest/project configuration, or a
        workspace .py file that cannot be read into the graph, affects everything.
        Changes outside the workspace, in ignored directories, or to other files affect
        nothing that can be known.
        """
        tests: set[str] = set()
        for path in changed:
            key = self._key(path)
            if not self._is_inside(key) or is_ignored_path(Path(key), self._root_path):
                continue
            name = os.path.basename(key)
            if name == _CONFTEST or name in _CONFIG_NAMES:
                return None
            if not key.endswith(".py"):
                continue
            if key not in self._nodes and os.path.isfile(key):
                self.update(Path(key))
                if key not in self._nodes:
                    return None
            affected = self._dependent_keys(key)
            if key in self._nodes:
                affected.add(key)
            for found in affected:
                if os.path.basename(found) == _CONFTEST:
                    tests.update(self._tests_under(os.path.dirname(found)))
                elif is_test_file(Path(found)):
                    tests.add(found)
        return {Path(test) for test in tests}

    def tests_exercising(
        self, path: Path, name: str, read: Callable[[str], str | None]
    ) -> list[str]:
        """The tests that exercise a function named `name` defined in `path`, as far as the
        graph and the tests' text know: in the test files affected by `path`, each test
        function that names it (node ids relative to the root), or the whole file when only
        its helpers or fixtures do. `read` gives a file's text (an editor's buffer, say)."""
        tests = sorted(self.affected_tests({path}) or ())
        names, seen = [name], {name}
        # A helper no test names (`_transliterate`) is exercised through the functions of its
        # module that call it: their tests, then their callers', two levels at most.
        for _ in range(_CALLER_LEVELS + 1):
            found = self._tests_naming_any(tests, names, read)
            source = read(str(path))
            if found or source is None:
                return found
            names = [c for n in names for c in callers_of(source, n) if c not in seen]
            seen.update(names)
            if not names:
                return []
        return []

    def _tests_naming_any(
        self, tests: list[Path], names: list[str], read: Callable[[str], str | None]
    ) -> list[str]:
        found: list[str] = []
        for test in tests:
            text = read(str(test))
            if text is None:
                continue
            relative = test.relative_to(self._root_path).as_posix()
            for name in names:
                found.extend(i for i in tests_naming(text, relative, name) if i not in found)
        return found

    # --- reading and resolving -----------------------------------------------------------

    def _key(self, path: Path) -> str:
        """A file's name in the graph: below the root as given, through no symlinked
        directory. A file reached through `loop/` (a link to `.`) or a link to a sibling
        folder is the one file the walk found; the client may also speak of a workspace
        opened through a symlink by its real path. A symlinked file keeps its own name, as
        the walk (and pytest) see it."""
        key = os.path.abspath(path)
        directory, name = os.path.split(key)
        real, real_root = os.path.realpath(directory), self._real_root
        if real == real_root or real.startswith(real_root + os.sep):
            return os.path.join(self._root + real[len(real_root) :], name)
        return key

    def _is_inside(self, key: str) -> bool:
        return key.startswith(self._root + os.sep)

    def _is_workspace_python(self, key: str) -> bool:
        return (
            key.endswith(".py")
            and self._is_inside(key)
            and not is_ignored_path(Path(key), self._root_path)
        )

    def _read(self, key: str) -> None:
        """(Re)compute a file's imports; a file that cannot be read imports nothing."""
        node = self._nodes[key]
        try:
            with open(key, "rb") as file:
                source = file.read().decode("utf-8", errors="replace")
        except OSError:
            source = ""
        module_name, roots = self._context(key)
        imports = frozenset(imported_modules(source, module_name, os.path.basename(key) == _INIT))
        for name in node.imports - imports:
            self._forget_importer(name, key)
        for name in imports - node.imports:
            self._importers.setdefault(name, set()).add(key)
        node.imports = imports
        node.roots = roots

    def _context(self, key: str) -> tuple[str, tuple[str, ...]]:
        """The file's module name (for relative imports) and its import roots, in order."""
        basedir, based_name = self._pytest_base(key)
        if is_test_file(Path(key)):
            # pytest's prepend mode: the basedir goes first on sys.path, and the module is
            # named from it ("test_x" in a tests/ dir without __init__.py).
            return based_name, _unique((basedir, *self._source_roots))
        name = self._index.module_for_path(Path(key)) or based_name
        return name, _unique((*self._source_roots, basedir))

    def _pytest_base(self, key: str) -> tuple[str, str]:
        """(first ancestor without __init__.py, the dotted name of `key` from there)."""
        directory, filename = os.path.split(key)
        parts = [] if filename == _INIT else [filename[:-3]]
        while self._has_init(directory):
            parent, name = os.path.split(directory)
            if parent == directory:
                break
            parts.insert(0, name)
            directory = parent
        return directory, ".".join(parts)

    def _has_init(self, directory: str) -> bool:
        init = os.path.join(directory, _INIT)
        if directory == self._root or self._is_inside(directory):
            return init in self._nodes
        return os.path.isfile(init)  # above the workspace: rare, ask the disk

    def _resolve(self, key: str) -> None:
        """Recompute a file's edges from its stored imports (no reading)."""
        node = self._nodes[key]
        deps: set[str] = set()
        for name in node.imports:
            target = self._find(name, node.roots)
            if target is not None and target != key:
                deps.add(target)
        for dep in node.deps - deps:
            self._unlink(key, dep)
        for dep in deps - node.deps:
            self._dependents.setdefault(dep, set()).add(key)
        node.deps = deps

    def _find(self, name: str, roots: tuple[str, ...]) -> str | None:
        cache_key = (roots, name)
        if cache_key in self._found:
            return self._found[cache_key]
        found: str | None = None
        for candidate in _candidates(name, roots):
            if candidate in self._nodes:
                found = candidate
                break
        self._found[cache_key] = found
        return found

    def _after_files_changed(self, key: str) -> None:
        """A file appeared or disappeared: names may now resolve differently."""
        if os.path.basename(key) == _INIT:
            # Module names and pytest basedirs change for the whole package below it.
            prefix = os.path.dirname(key) + os.sep
            below = [other for other in self._nodes if other.startswith(prefix)]
            for other in below:
                self._read(other)
            for other in below:
                self._resolve(other)
        for name in self._names_of(key):
            for importer in list(self._importers.get(name, ())):
                self._resolve(importer)

    def _names_of(self, key: str) -> list[str]:
        """Every dotted name `key` could be imported as, from any of its ancestors."""
        directory, filename = os.path.split(key)
        parts = [] if filename == _INIT else [filename[:-3]]
        names: list[str] = []
        while True:
            if parts:
                name = module_name_from_parts([*parts[:-1], parts[-1] + ".py"])
                if name is None:
                    break
                names.append(name)
            parent, part = os.path.split(directory)
            if parent == directory:
                break
            parts.insert(0, part)
            directory = parent
        return names

    def _dependent_keys(self, key: str) -> set[str]:
        if key in self._nodes:
            frontier = set(self._dependents.get(key, ()))
        else:
            frontier = self._would_import(key)
        seen = set(frontier)
        queue = deque(frontier)
        while queue:
            current = queue.popleft()
            for importer in self._dependents.get(current, ()):
                if importer not in seen:
                    seen.add(importer)
                    queue.append(importer)
        seen.discard(key)
        return seen

    def _would_import(self, key: str) -> set[str]:
        """The files whose imports would resolve to `key` if it existed (it was deleted)."""
        importers: set[str] = set()
        for name in self._names_of(key):
            for importer in self._importers.get(name, ()):
                for candidate in _candidates(name, self._nodes[importer].roots):
                    if candidate == key:
                        importers.add(importer)
                    if candidate == key or candidate in self._nodes:
                        break
        return importers

    def _tests_under(self, directory: str) -> list[str]:
        prefix = directory + os.sep
        return [
            key
            for key in self._nodes
            if key.startswith(prefix)
            and os.path.basename(key) != _CONFTEST
            and is_test_file(Path(key))
        ]

    def _unlink(self, importer: str, dep: str) -> None:
        importers = self._dependents.get(dep)
        if importers is not None:
            importers.discard(importer)
            if not importers:
                del self._dependents[dep]

    def _forget_importer(self, name: str, key: str) -> None:
        files = self._importers.get(name)
        if files is not None:
            files.discard(key)
            if not files:
                del self._importers[name]


def _candidates(name: str, roots: tuple[str, ...]) -> list[str]:
    """The files that would provide module `name` under `roots`, in lookup order."""
    relative = name.replace(".", os.sep)
    candidates: list[str] = []
    for root in roots:
        base = os.path.join(root, relative)
        candidates.append(base + ".py")
        candidates.append(os.path.join(base, _INIT))
    return candidates


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def tests_naming(source: str, relative: str, name: str) -> list[str]:
    """Node ids of the test functions in `source` (a test file at `relative`) whose text
    names `name`; [relative] when only the rest of the file does; [] when nothing does."""
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    if not pattern.search(source):
        return []
    tree = parse(source)
    if tree is None:
        return [relative]
    lines = split_lines(source)
    collected = {
        node.name for node in tree.body if isinstance(node, ast.ClassDef) and _collected(node)
    }
    ids: list[str] = []
    for qualname, node in iter_definitions(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if not node.name.startswith("test") or qualname.count(".") > 1:
            continue
        text = "\n".join(lines[node.lineno - 1 : node.end_lineno or node.lineno])
        if not pattern.search(text):
            continue
        owner = qualname.partition(".")[0] if "." in qualname else None
        if owner is not None and owner not in collected:
            # A mixin's test (unittest suites share tests through base classes): pytest
            # collects it only in its subclasses, and a node id of the mixin is "not found".
            return [relative]
        ids.append(f"{relative}::{qualname.replace('.', '::')}")
    return ids or [relative]


def _collected(node: ast.ClassDef) -> bool:
    """Whether pytest collects the class's tests: `Test*` (its default python_classes) or a
    unittest.TestCase subclass (by the name of a base)."""
    if node.name.startswith("Test"):
        return True
    for base in node.bases:
        name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
        if name.endswith("TestCase"):
            return True
    return False


_CALLER_LEVELS = 2


def callers_of(source: str, name: str) -> list[str]:
    """The names of the module's functions and methods whose body uses `name` (calls it, or
    passes it on), other than `name` itself."""
    tree = parse(source)
    if tree is None:
        return []
    found: list[str] = []
    for _, node in iter_definitions(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name == name:
            continue
        uses = any(
            (isinstance(n, ast.Name) and n.id == name)
            or (isinstance(n, ast.Attribute) and n.attr == name)
            for n in ast.walk(node)
        )
        if uses and node.name not in found:
            found.append(node.name)
    return found
