"""Test results from a runner's JUnit XML report.

For any runner other than pytest with our plugin (the ``tests.command`` setting), the
report the runner writes is all we get. pytest's own ``--junitxml`` (both the ``xunit1``
family, which adds ``file`` and ``line``, and the default ``xunit2``) and unittest's
xmlrunner are the shapes this is written against; anything JUnit-like works as well as its
attributes allow.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from oci_lsp.testing.results import CollectionError, Frame, Outcome, TestReport
from oci_lsp.testing.tracebacks import exception_line, parse_frames, syntax_error_location

__all__ = ["parse_junit_xml"]

_MESSAGE_LIMIT = 200
_TIMEOUT = re.compile(r"time(?:d)?[\s_-]?out", re.IGNORECASE)
# pytest-timeout's signal method fails the test with `Failed: Timeout >1.0s`.
_PYTEST_TIMEOUT_FAILURE = re.compile(r"^Failed: Timeout >")
_TEST_NAME = re.compile(r"[^\W\d]\w*")
_DEF_OR_DECORATOR = re.compile(r"^\s*(?:@|(?:async\s+)?def\s)")
# unittest reports a module it could not import as a test of this class.
_SYNTAX_ERRORS = ("SyntaxError", "IndentationError", "TabError")
_UNITTEST_FAILED_IMPORT = "unittest.loader._FailedTest"
# Where module names are looked up when the report gives no file (relative to rootdir).
_MODULE_BASES = ("", "src", "tests", "test")


def parse_junit_xml(data: bytes, rootdir: Path) -> tuple[list[TestReport], list[CollectionError]]:
    """Read a JUnit XML report into test reports and collection errors.

    Raises ``ValueError`` with a message for the user when the report cannot be read.
    """
    if not data.strip():
        raise ValueError("could not read the test runner's JUnit XML report: the file is empty")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as error:
        raise ValueError(
            f"could not read the test runner's JUnit XML report: not well-formed XML ({error})"
        ) from error
    tag = _local_name(root.tag)
    if tag not in ("testsuites", "testsuite"):
        raise ValueError(
            "could not read the test runner's JUnit XML report: expected <testsuites> or "
            f"<testsuite> at the top, found <{tag}>"
        )
    parser = _Parser(Path(os.path.abspath(rootdir)), pytest=_written_by_pytest(root))
    reports: list[TestReport] = []
    errors: list[CollectionError] = []
    for element in root.iter():
        if _local_name(element.tag) != "testcase":
            continue
        result = parser.testcase(element)
        if isinstance(result, CollectionError):
            errors.append(result)
        else:
            reports.append(result)
    return _real_paths(reports, errors)


def _real_paths(
    reports: list[TestReport], errors: list[CollectionError]
) -> tuple[list[TestReport], list[CollectionError]]:
    """The same records with real paths: a runner that walked a symlinked directory names
    one file under two paths, and the editor must see it under one."""
    real = functools.lru_cache(maxsize=None)(os.path.realpath)

    def frames(found: list[Frame]) -> list[Frame]:
        return [dataclasses.replace(f, path=real(f.path)) for f in found]

    for report in reports:
        report.path = real(report.path) if report.path else report.path
        report.frames = frames(report.frames)
    for error in errors:
        error.path = real(error.path)
    return reports, errors


def _local_name(tag: object) -> str:
    # Namespaced tags read `{uri}name`; comments and processing instructions are not str.
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local_name(child.tag) == name]


def _written_by_pytest(root: ET.Element) -> bool:
    """pytest names its suites "pytest" (its ``junit_suite_name`` default)."""
    for element in root.iter():
        tag = _local_name(element.tag)
        if tag in ("testsuites", "testsuite") and element.get("name", "").startswith("pytest"):
            return True
        if tag == "skipped" and element.get("type", "").startswith("pytest."):
            return True
    return False


def _text(element: ET.Element) -> str:
    return "".join(element.itertext()).lstrip("\r\n").rstrip()


def _first_line(text: str) -> str:
    line = text.strip().split("\n", 1)[0].strip()
    if len(line) > _MESSAGE_LIMIT:
        line = line[: _MESSAGE_LIMIT - 1] + "…"
    return line


def _render(exception: tuple[str, str] | None) -> str:
    if exception is None:
        return ""
    name, message = exception
    return _first_line(f"{name}: {message}" if message else name)


@dataclass
class _Parser:
    rootdir: Path
    pytest: bool
    _sources: dict[Path, list[str] | None] = field(default_factory=dict)

    # --- one <testcase> ---------------------------------------------------------------

    def testcase(self, element: ET.Element) -> TestReport | CollectionError:
        classname = element.get("classname", "").strip()
        name = element.get("name", "").strip()
        failure = next(iter(_children(element, "failure")), None)
        error = next(iter(_children(element, "error")), None)
        skipped = next(iter(_children(element, "skipped")), None)

        if error is not None and failure is None:
            module = self._failed_collection(classname, name, error)
            if module is not None:
                return self._collection_error(element, module, error)

        file = self._test_file(element.get("file"), classname or name)
        if classname or file is None:
            test_id, classes = self._test_id(file, classname, name)
            line = self._test_line(file, element.get("line"), name, classes)
        else:
            # A whole module (pytest names a skipped module by its dotted path).
            test_id, line = self._relative(file), None

        outcome: Outcome = "passed"
        longrepr = ""
        message = ""
        problem = failure if failure is not None else error
        if problem is not None:
            longrepr = _text(problem)
            attribute = problem.get("message", "")
            message = _first_line(attribute) or _render(exception_line(longrepr))
            if failure is not None:
                timed_out = bool(_PYTEST_TIMEOUT_FAILURE.match(attribute.strip()))
                outcome = "timeout" if timed_out else "failed"
            else:
                summary = attribute or _render(exception_line(longrepr))
                outcome = "timeout" if _TIMEOUT.search(summary) else "error"
        elif skipped is not None:
            outcome = "skipped"
            message = _first_line(skipped.get("message", "") or _text(skipped))

        return TestReport(
            test_id=test_id,
            outcome=outcome,
            path=str(file) if file is not None else None,
            line=line,
            message=message,
            longrepr=longrepr,
            frames=parse_frames(longrepr, self.rootdir) if longrepr else [],
            duration=_duration(element.get("time")),
        )

    # --- collection errors -----------------------------------------------------------

    @staticmethod
    def _failed_collection(classname: str, name: str, error: ET.Element) -> str | None:
        """The module a collection error is about, or None when this is a test's error."""
        if error.get("message", "").strip() == "collection failure":
            # pytest: classname "" and name "tests.test_bad" (older writers: the reverse).
            return name or classname
        if classname == _UNITTEST_FAILED_IMPORT and name:
            return name
        return None

    def _collection_error(
        self, element: ET.Element, module: str, error: ET.Element
    ) -> CollectionError:
        longrepr = _text(error)
        file = self._test_file(element.get("file"), module)
        if file is None:
            file = self.rootdir.joinpath(*module.split(".")).with_suffix(".py")
        frames = parse_frames(longrepr, self.rootdir)
        exception = exception_line(longrepr)
        message = _render(exception) or _first_line(error.get("message", "")) or "collection failed"

        path, line = str(file), None
        in_file = [frame for frame in frames if frame.path == str(file)]
        syntax = syntax_error_location(longrepr, self.rootdir)
        if syntax is not None and (
            exception is None or exception[0].rsplit(".", 1)[-1] in _SYNTAX_ERRORS
        ):
            # The file at fault is the one that does not parse (maybe one it imports).
            path, line = syntax
        elif in_file:
            line = in_file[-1].line
        return CollectionError(
            path=path,
            line=line,
            message=message,
            longrepr=longrepr,
            collector=self._relative(file),
        )

    # --- where the test is -----------------------------------------------------------

    def _test_file(self, file: str | None, classname: str) -> Path | None:
        if file:
            return Path(os.path.normpath(self.rootdir / file))
        if classname.endswith(".py") and (self.rootdir / classname).is_file():
            return Path(os.path.normpath(self.rootdir / classname))  # a path for a classname
        parts = [part for part in classname.split(".") if part]
        for count in range(len(parts), 0, -1):
            found = self._module_file(parts[:count])
            if found is not None:
                return found
        return None

    def _module_file(self, parts: list[str]) -> Path | None:
        for base in _MODULE_BASES:
            directory = self.rootdir / base if base else self.rootdir
            found = _find_module(directory, parts)
            if found is not None:
                return Path(os.path.normpath(found))
        return None

    def _relative(self, file: Path) -> str:
        try:
            return file.relative_to(self.rootdir).as_posix()
        except ValueError:
            return file.as_posix()

    def _test_id(self, file: Path | None, classname: str, name: str) -> tuple[str, list[str]]:
        parts = [part for part in classname.split(".") if part]
        if file is None:
            prefix = f"{classname}::" if classname else ""
            return f"{prefix}{name}", []
        relative = self._relative(file)
        module = relative[: -len(".py")] if relative.endswith(".py") else relative
        module_parts = module.split("/")
        if parts[: len(module_parts)] == module_parts:
            classes = parts[len(module_parts) :]
        elif file.stem in parts:
            # The runner named the module from another directory (unittest's start dir).
            classes = parts[len(parts) - parts[::-1].index(file.stem) :]
        else:
            classes = []
            for part in reversed(parts):
                if not part[:1].isupper():
                    break
                classes.insert(0, part)
        return "::".join([relative, *classes, name]), classes

    def _test_line(
        self, file: Path | None, line: str | None, name: str, classes: list[str]
    ) -> int | None:
        number = _int(line)
        source = self._source(file) if file is not None else None
        if number is not None and number >= 0:
            if self.pytest:
                return number + 1  # pytest's `line` is 0-based
            # Others (xmlrunner) write the 1-based line of the def or its first decorator;
            # take a 0-based one when that is what the file says.
            if (
                source is not None
                and not _starts_definition(source, number)
                and _starts_definition(source, number + 1)
            ):
                return number + 1
            return number if number > 0 else 1
        if source is None:
            return None
        return _find_def(source, name, classes)

    def _source(self, file: Path) -> list[str] | None:
        if file not in self._sources:
            try:
                text = file.read_text(encoding="utf-8", errors="replace")
            except OSError:
                self._sources[file] = None
            else:
                self._sources[file] = text.splitlines()
        return self._sources[file]


def _find_module(directory: Path, parts: list[str]) -> Path | None:
    """``directory/a/b.py`` for ["a", "b"]; a name with dots may be one directory's name."""
    for count in range(1, len(parts) + 1):
        head = ".".join(parts[:count])
        if count == len(parts):
            candidate = directory / f"{head}.py"
            if candidate.is_file():
                return candidate
        elif (directory / head).is_dir():
            found = _find_module(directory / head, parts[count:])
            if found is not None:
                return found
    return None


def _starts_definition(source: list[str], line: int) -> bool:
    return 0 < line <= len(source) and bool(_DEF_OR_DECORATOR.match(source[line - 1]))


def _find_def(source: list[str], name: str, classes: list[str]) -> int | None:
    """The 1-based line of ``def name`` (inside ``classes`` when they are found).

    Like pytest's own location of a test, a decorated function starts at its first decorator.
    """
    match = _TEST_NAME.match(name)  # "test_x[1-2]" / "test_x (i=1)" -> "test_x"
    if match is None:
        return None
    start = 0
    for cls in classes:
        pattern = re.compile(rf"^\s*class\s+{re.escape(cls)}\b")
        found = next((i for i in range(start, len(source)) if pattern.match(source[i])), None)
        if found is None:
            break
        start = found + 1
    pattern = re.compile(rf"^\s*(?:async\s+)?def\s+{re.escape(match.group())}\s*\(")
    for index in [*range(start, len(source)), *range(start)]:
        if pattern.match(source[index]):
            return _first_decorator(source, index) + 1
    return None


def _first_decorator(source: list[str], index: int) -> int:
    """The 0-based line of the first decorator of the ``def`` at ``index`` (as pytest does)."""
    indent = _indentation(source[index])
    first = index
    above = index - 1
    while above >= 0:
        line = source[above]
        stripped = line.strip()
        if not stripped:
            break
        if _indentation(line) == indent and stripped.startswith("@"):
            first = above
        elif not (_indentation(line) > indent or stripped[0] in ")]}"):
            break  # not a decorator, nor a line of one's arguments
        above -= 1
    return first


def _indentation(line: str) -> int:
    return len(line) - len(line.lstrip())


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _duration(value: str | None) -> float:
    if not value:
        return 0.0
    try:
        duration = float(value.replace(",", ""))
    except ValueError:
        return 0.0
    return duration if duration >= 0 else 0.0
