"""The workspace folders the server serves, each with its own settings and tests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oci_lsp.config import Settings, SettingsProblem, read_pyproject_settings, resolve_settings
from oci_lsp.testing.projects import contains, innermost, nested_in
from oci_lsp.testing.session import TestSession

# Not a setting: the interpreter the editor has selected for a folder (VS Code's Python
# extension), sent beside the settings in the `oci` section of workspace/configuration (or in
# initializationOptions, for the whole window). It ranks below an explicit `tests.python` from
# any source, so it cannot be a setting: settings from the client rank above pyproject.toml.
EDITOR_INTERPRETER = "editorInterpreter"


@dataclass
class SettingsSources:
    """The raw settings of every source but pyproject.toml, which is read per folder."""

    init_options: Mapping[str, Any] | None = None
    command_line: Mapping[str, Any] | None = None
    editor_interpreter: str | None = None  # from initializationOptions, for every folder


@dataclass
class Folder:
    root: Path
    uri: str
    settings: Settings = field(default_factory=Settings)
    client_settings: Mapping[str, Any] | None = None  # workspace/configuration section "oci"
    # One test session per project in the folder (testing/projects.py), by project root;
    # the folder's own root is one of them.
    sessions: dict[Path, TestSession] = field(default_factory=dict)
    editor_interpreter: str | None = None  # see EDITOR_INTERPRETER

    def resolve(self, sources: SettingsSources) -> list[SettingsProblem]:
        pyproject, problem = read_pyproject_settings(self.root)
        client, selected = split_editor_interpreter(self.client_settings)
        self.editor_interpreter = selected or sources.editor_interpreter
        self.settings, problems = resolve_settings(
            [
                ("pyproject.toml", pyproject),
                ("initializationOptions", sources.init_options),
                ("workspace configuration", client),
                ("command line", sources.command_line),
            ]
        )
        return ([problem] if problem else []) + problems

    def contains(self, path: str) -> bool:
        return contains(self.root, path)

    def session_for(self, path: str) -> TestSession | None:
        """The session of the innermost project holding path."""
        root = innermost(self.sessions, path)
        return self.sessions.get(root) if root is not None else None

    def all_sessions(self) -> list[TestSession]:
        return list(self.sessions.values())

    def add_session(self, session: TestSession) -> None:
        """A project of the folder; each session leaves the projects below it to theirs."""
        self.sessions[session.root] = session
        for each in self.sessions.values():
            each.nested = nested_in(each.root, self.sessions)


def split_editor_interpreter(
    raw: Mapping[str, Any] | None,
) -> tuple[Mapping[str, Any] | None, str | None]:
    """The settings without the editor's interpreter, and that interpreter (a non-empty path)."""
    if raw is None or EDITOR_INTERPRETER not in raw:
        return raw, None
    rest = {k: v for k, v in raw.items() if k != EDITOR_INTERPRETER}
    value = raw[EDITOR_INTERPRETER]
    return rest, value if isinstance(value, str) and value else None


class Folders:
    def __init__(self) -> None:
        self._by_uri: dict[str, Folder] = {}

    def add(self, folder: Folder) -> None:
        self._by_uri[folder.uri] = folder

    def remove(self, uri: str) -> Folder | None:
        return self._by_uri.pop(uri, None)

    def __iter__(self) -> Iterator[Folder]:
        return iter(list(self._by_uri.values()))

    def __len__(self) -> int:
        return len(self._by_uri)

    def for_path(self, path: str) -> Folder | None:
        """The innermost folder holding path (folders may nest in multi-root workspaces)."""
        best: Folder | None = None
        for folder in self._by_uri.values():
            if folder.contains(path) and (
                best is None or len(str(folder.root)) > len(str(best.root))
            ):
                best = folder
        return best
