"""Overlays: configuration added to a real project where no small real project has it.

An overlay edits the project's own pytest configuration file in place, as a user would:
options appended to its `addopts`, ini keys added to its pytest section, whole files added.
The rest of the file stays byte-identical. The result is read back (tomllib or iniconfig's
rules as pytest applies them) and compared with what was meant, so a file shape this code
does not know fails loudly instead of being edited wrong.
"""

from __future__ import annotations

import configparser
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the corpus needs 3.11 (more-itertools), this keeps imports working
    import tomli as tomllib


@dataclass(frozen=True)
class Overlay:
    """What is added to the pristine project, and why (a line for the corpus table)."""

    why: str
    addopts: tuple[str, ...] = ()  # appended to the config file's addopts
    ini: Mapping[str, str] = field(default_factory=dict)  # keys added to its pytest section
    files: Mapping[str, str] = field(default_factory=dict)  # new files, path -> text


class OverlayError(RuntimeError):
    """The config file has a shape these edits do not handle."""


INI_SECTIONS = {"pytest.ini": "pytest", "tox.ini": "pytest", "setup.cfg": "tool:pytest"}


def apply(root: Path, config: str, overlay: Overlay) -> None:
    """Apply overlay to the project at root, whose pytest configuration lives in `config`."""
    for name, text in overlay.files.items():
        path = root / name
        if path.exists():
            raise OverlayError(f"{name} exists already; an overlay only adds files")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if not overlay.addopts and not overlay.ini:
        return
    path = root / config
    before = path.read_text(encoding="utf-8") if path.exists() else ""
    if config == "pyproject.toml":
        after = _edit_pyproject(before, overlay.addopts, overlay.ini)
        _check_pyproject(before, after, overlay)
    else:
        after = _edit_ini(before, INI_SECTIONS[config], overlay.addopts, overlay.ini)
        _check_ini(before, after, INI_SECTIONS[config], overlay)
    path.write_text(after, encoding="utf-8")


# -- ini files (pytest.ini, tox.ini, setup.cfg) ----------------------------------------------


def _edit_ini(text: str, section: str, addopts: Sequence[str], ini: Mapping[str, str]) -> str:
    lines = text.splitlines(keepends=True)
    header = next((i for i, ln in enumerate(lines) if ln.strip() == f"[{section}]"), None)
    if header is None:
        lines += ["\n"] if lines and lines[-1].strip() else []
        lines.append(f"[{section}]\n")
        header = len(lines) - 1
    end = next(
        (i for i in range(header + 1, len(lines)) if lines[i].lstrip().startswith("[")),
        len(lines),
    )
    insert = [f"{key} = {value}\n" for key, value in ini.items()]
    key_at = next(
        (i for i in range(header + 1, end) if re.match(r"addopts\s*[=:]", lines[i])), None
    )
    if addopts and key_at is None:
        insert.append(f"addopts = {' '.join(addopts)}\n")
    elif addopts and key_at is not None:
        # A continuation line of the value: indented, after its last non-blank line.
        last = key_at
        for i in range(key_at + 1, end):
            if lines[i][:1] in (" ", "\t") and lines[i].strip():
                last = i
            elif lines[i].strip():
                break
        lines.insert(last + 1, f"    {' '.join(addopts)}\n")
    lines[header + 1 : header + 1] = insert
    return "".join(lines)


def _check_ini(before: str, after: str, section: str, overlay: Overlay) -> None:
    def read(text: str) -> dict[str, str]:
        parser = configparser.RawConfigParser(interpolation=None, strict=False)
        parser.read_string(text)
        return dict(parser[section]) if parser.has_section(section) else {}

    old, new = read(before), read(after)
    _expect(old.get("addopts", ""), new.get("addopts", ""), overlay)
    for key, value in overlay.ini.items():
        if new.get(key) != value:
            raise OverlayError(f"[{section}] {key} reads {new.get(key)!r}, meant {value!r}")


# -- pyproject.toml ([tool.pytest.ini_options], or pytest 9's [tool.pytest]) ---------------


def _edit_pyproject(text: str, addopts: Sequence[str], ini: Mapping[str, str]) -> str:
    data = tomllib.loads(text)
    tool = data.get("tool", {}).get("pytest", {})
    lines = text.splitlines(keepends=True)
    header = next(
        (i for i, ln in enumerate(lines) if ln.strip() == "[tool.pytest.ini_options]"), None
    )
    prefix = ""
    if header is None:
        header = next((i for i, ln in enumerate(lines) if ln.strip() == "[tool.pytest]"), None)
        # pytest 9's native table takes lists; its dotted `ini_options.` keys are the old form.
        prefix = "ini_options." if "ini_options" in tool else ""
    if header is None:
        lines += ["\n", "[tool.pytest.ini_options]\n"]
        header = len(lines) - 1
        tool = {"ini_options": {}}
        prefix = ""
    native = header is not None and lines[header].strip() == "[tool.pytest]" and not prefix
    table = tool if native else tool.get("ini_options", {})
    insert = [f"{prefix}{key} = {_toml_str(value)}\n" for key, value in ini.items()]
    if addopts:
        current = table.get("addopts")
        if current is None:
            insert.append(f"{prefix}addopts = {_toml_value(' '.join(addopts), native)}\n")
        else:
            lines = _extend_toml_addopts(lines, header, current, addopts)
    lines[header + 1 : header + 1] = insert
    return "".join(lines)


def _toml_value(value: str, native: bool) -> str:
    """addopts as the table takes it: a list in pytest 9's native table, else a string."""
    if native:
        return "[" + ", ".join(_toml_str(v) for v in shlex.split(value)) + "]"
    return _toml_str(value)


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _extend_toml_addopts(
    lines: list[str], header: int, current: object, addopts: Sequence[str]
) -> list[str]:
    key = re.compile(r"\s*(ini_options\.)?addopts\s*=")
    at = next(i for i in range(header + 1, len(lines)) if key.match(lines[i]))
    line = lines[at]
    extra = " ".join(addopts)
    if isinstance(current, list):
        items = ", ".join(_toml_str(v) for v in shlex.split(extra))
        # Right after the opening bracket: the order of options does not matter here.
        lines[at] = line.replace("[", f"[{items}, ", 1)
        return lines
    if '"""' in line or "'''" in line:
        quote = '"""' if '"""' in line else "'''"
        close = next(i for i in range(at + 1, len(lines)) if quote in lines[i])
        lines.insert(close, f"    {extra}\n")
        return lines
    stripped = line.rstrip("\n").rstrip()
    quote = stripped[-1]
    lines[at] = stripped[:-1] + f" {extra}{quote}\n"
    return lines


def _check_pyproject(before: str, after: str, overlay: Overlay) -> None:
    def read(text: str) -> dict[str, object]:
        tool = tomllib.loads(text).get("tool", {}).get("pytest", {})
        table = tool.get("ini_options", tool)
        return dict(table) if isinstance(table, dict) else {}

    old, new = read(before), read(after)

    def opts(value: object) -> str:
        return " ".join(value) if isinstance(value, list) else str(value or "")

    _expect(opts(old.get("addopts")), opts(new.get("addopts")), overlay)
    for key, value in overlay.ini.items():
        got = new.get(key)
        if opts(got) != value:
            raise OverlayError(f"pyproject {key} reads {got!r}, meant {value!r}")


def _expect(old: str, new: str, overlay: Overlay) -> None:
    if sorted(shlex.split(new)) != sorted(shlex.split(old) + list(_split(overlay.addopts))):
        raise OverlayError(f"addopts reads {new!r}; meant {old!r} + {overlay.addopts!r}")


def _split(addopts: Sequence[str]) -> list[str]:
    return [part for opt in addopts for part in shlex.split(opt)]
