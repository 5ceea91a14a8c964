"""The one settings object, merged from every source CONTRACT.md names.

Sources, later wins: built-in defaults, `[tool.oci-lsp]` in the workspace's pyproject.toml
(kebab-case keys), LSP initializationOptions, the `oci` section of workspace/configuration,
then the command line. Every source is a plain dict in the JSON shape (camelCase); the merge
is per key, and validation happens once on the merged dict, so an invalid value from any
source is reported with its key and replaced by the default, never by a crash.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

log = logging.getLogger(__name__)

Backend = Literal["ctranslate2", "openai"]
Device = Literal["auto", "cuda", "cpu"]
TestScope = Literal["affected", "all", "affected-then-all"]
# How a failure's function is found (issue 15): ranked by what the tests executed (the
# formula), or "off": today's rule alone, the traceback's deepest frame or the assert's call.
Localization = Literal["ochiai", "dstar", "off"]

# The tools whose findings a fix can be verified by (tools/runners.py runs them).
TOOL_NAMES = ("ruff", "mypy", "pyright")

# CTranslate2's compute types (ctranslate2.get_supported_compute_types lists a subset per device).
COMPUTE_TYPES = (
    "auto",
    "default",
    "int8",
    "int8_float32",
    "int8_float16",
    "int8_bfloat16",
    "int16",
    "float16",
    "bfloat16",
    "float32",
)


def _one_of(*choices: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return isinstance(value, str) and value in choices

    check.__doc__ = "one of " + ", ".join(f'"{c}"' for c in choices)
    return check


def _positive_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


_positive_number.__doc__ = "a number greater than 0"


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


_positive_int.__doc__ = "a whole number greater than 0"


def _non_negative_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


_non_negative_number.__doc__ = "a number of at least 0"


def _boolean(value: Any) -> bool:
    return isinstance(value, bool)


_boolean.__doc__ = "true or false"


def _text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


_text.__doc__ = "a non-empty string"


def _optional_text(value: Any) -> bool:
    return value is None or _text(value)


_optional_text.__doc__ = "a non-empty string or null"


def _optional_argv(value: Any) -> bool:
    return value is None or (
        isinstance(value, list) and len(value) > 0 and all(isinstance(v, str) and v for v in value)
    )


_optional_argv.__doc__ = 'null or a non-empty list of strings (an argv, e.g. ["tox", "-e", "py"])'


def _check(validator: Callable[[Any], bool]) -> dict[str, Any]:
    return {"check": validator}


@dataclass(frozen=True)
class OpenAISettings:
    base_url: str | None = field(default=None, metadata=_check(_optional_text))
    model: str | None = field(default=None, metadata=_check(_optional_text))
    api_key_env: str = field(default="OPENAI_API_KEY", metadata=_check(_text))


@dataclass(frozen=True)
class TestSettings:
    on_save: bool = field(default=True, metadata=_check(_boolean))
    command: tuple[str, ...] | None = field(default=None, metadata=_check(_optional_argv))
    scope: TestScope = field(
        default="affected-then-all",
        metadata=_check(_one_of("affected", "all", "affected-then-all")),
    )
    timeout: float = field(default=300.0, metadata=_check(_positive_number))
    python: str | None = field(default=None, metadata=_check(_optional_text))
    localization: Localization = field(
        default="ochiai", metadata=_check(_one_of("ochiai", "dstar", "off"))
    )
    # After the ranking, try small changes of the first suspects in the sandbox (issue 15).
    localization_mutants: bool = field(default=True, metadata=_check(_boolean))


@dataclass(frozen=True)
class RefineSettings:
    max_rounds: int = field(default=3, metadata=_check(_positive_int))
    candidates: int = field(default=2, metadata=_check(_positive_int))
    temperature: float = field(default=0.2, metadata=_check(_non_negative_number))
    verify: bool = field(default=True, metadata=_check(_boolean))


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = field(default=1024, metadata=_check(_positive_int))
    # Load the model when the server starts rather than on the first generation.
    preload: bool = field(default=False, metadata=_check(_boolean))


def _optional_tool_names(value: Any) -> bool:
    return value is None or (
        isinstance(value, list) and all(isinstance(v, str) and v in TOOL_NAMES for v in value)
    )


_optional_tool_names.__doc__ = 'null or a list of tool names ("ruff", "mypy", "pyright")'


@dataclass(frozen=True)
class ToolsSettings:
    """The linters and type checkers whose findings oci-lsp fixes (issue 16)."""

    # Which tools verify a fix of their findings and which `--fix --tools` runs by default;
    # None: those of TOOL_NAMES that are installed. Not the actions' switch: a quick-fix is
    # offered on any tool's diagnostic, verified by that tool when it is enabled here.
    enabled: tuple[str, ...] | None = field(default=None, metadata=_check(_optional_tool_names))
    # An argv that runs the tool in place of the one found (["uvx", "ruff"]).
    ruff: tuple[str, ...] | None = field(default=None, metadata=_check(_optional_argv))
    mypy: tuple[str, ...] | None = field(default=None, metadata=_check(_optional_argv))
    pyright: tuple[str, ...] | None = field(default=None, metadata=_check(_optional_argv))

    def override(self, tool: str) -> tuple[str, ...] | None:
        value = getattr(self, tool, None) if tool in TOOL_NAMES else None
        return value if isinstance(value, tuple) else None


@dataclass(frozen=True)
class Settings:
    model: str = field(default="auto", metadata=_check(_text))
    backend: Backend = field(
        default="ctranslate2", metadata=_check(_one_of("ctranslate2", "openai"))
    )
    device: Device = field(default="auto", metadata=_check(_one_of("auto", "cuda", "cpu")))
    compute_type: str = field(default="auto", metadata=_check(_one_of(*COMPUTE_TYPES)))
    openai: OpenAISettings = field(default_factory=OpenAISettings)
    tests: TestSettings = field(default_factory=TestSettings)
    refine: RefineSettings = field(default_factory=RefineSettings)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    tools: ToolsSettings = field(default_factory=ToolsSettings)


@dataclass(frozen=True)
class SettingsProblem:
    """An invalid or unknown key; the default was used in its place."""

    key: str  # dotted JSON key, e.g. "tests.timeout"
    source: str  # where the bad value came from, e.g. "pyproject.toml"
    message: str

    def __str__(self) -> str:
        return f"oci-lsp: {self.message} (from {self.source})"


def camel_key(name: str) -> str:
    """`compute_type` and `compute-type` both become the JSON key `computeType`."""
    head, *rest = re.split(r"[-_]", name)
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _json_key(f: dataclasses.Field[Any]) -> str:
    return camel_key(f.name)


def _normalize_keys(raw: Mapping[str, Any]) -> dict[str, Any]:
    """pyproject's kebab-case (and snake_case, which users type too) to the JSON shape."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        out[camel_key(str(key))] = _normalize_keys(value) if isinstance(value, Mapping) else value
    return out


def merge_sources(sources: list[tuple[str, Mapping[str, Any] | None]]) -> dict[str, Any]:
    """Merge raw dicts per key, later sources winning; remember where each leaf came from.

    The result maps each dotted leaf key to (value, source name).
    """
    merged: dict[str, Any] = {}

    def walk(prefix: str, raw: Mapping[str, Any], source: str) -> None:
        for key, value in raw.items():
            dotted = f"{prefix}{key}"
            if isinstance(value, Mapping):
                walk(dotted + ".", value, source)
            else:
                merged[dotted] = (value, source)

    for source, raw in sources:
        if raw:
            walk("", _normalize_keys(raw), source)
    return merged


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _build(
    cls: type[Any], prefix: str, merged: dict[str, Any], problems: list[SettingsProblem]
) -> Any:
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        key = f"{prefix}{_json_key(f)}"
        if f.name in _NESTED:
            sub_cls = _NESTED[f.name]
            if key in merged:  # a scalar where an object belongs
                value, source = merged.pop(key)
                problems.append(
                    SettingsProblem(
                        key, source, f"`{key}` must be an object, got {_describe(value)}"
                    )
                )
            kwargs[f.name] = _build(sub_cls, key + ".", merged, problems)
            continue
        if key not in merged:
            continue
        value, source = merged.pop(key)
        check: Callable[[Any], bool] = f.metadata["check"]
        if check(value):
            if isinstance(value, list):
                value = tuple(value)
            elif f.type == "float" and isinstance(value, int):
                value = float(value)
            kwargs[f.name] = value
        else:
            default = f.default if f.default is not dataclasses.MISSING else None
            problems.append(
                SettingsProblem(
                    key,
                    source,
                    f"invalid setting `{key}`: expected {check.__doc__}, got {_describe(value)};"
                    f" using the default {_describe(default)}",
                )
            )
    return cls(**kwargs)


_NESTED: dict[str, type[Any]] = {
    "openai": OpenAISettings,
    "tests": TestSettings,
    "refine": RefineSettings,
    "generation": GenerationSettings,
    "tools": ToolsSettings,
}


def resolve_settings(
    sources: list[tuple[str, Mapping[str, Any] | None]],
) -> tuple[Settings, list[SettingsProblem]]:
    """Merge the sources (lowest priority first) and validate; never raises on bad values."""
    merged = merge_sources(sources)
    problems: list[SettingsProblem] = []
    settings = _build(Settings, "", merged, problems)
    for key, (_, source) in sorted(merged.items()):
        problems.append(SettingsProblem(key, source, f"unknown setting `{key}` ignored"))
    return settings, problems


def read_pyproject_settings(root: Path) -> tuple[dict[str, Any] | None, SettingsProblem | None]:
    """The `[tool.oci-lsp]` table of root/pyproject.toml, or None when there is none."""
    path = root / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return None, SettingsProblem(
            "pyproject.toml", str(path), f"could not read {path.name}: {exc}; its settings ignored"
        )
    table = data.get("tool", {}).get("oci-lsp")
    if table is None:
        return None, None
    if not isinstance(table, dict):
        return None, SettingsProblem(
            "tool.oci-lsp", str(path), "`[tool.oci-lsp]` must be a table; ignored"
        )
    return table, None


def settings_to_json(settings: Any) -> Any:
    """The JSON shape (camelCase keys) of a settings object, for status and logs."""
    if dataclasses.is_dataclass(settings) and not isinstance(settings, type):
        return {
            _json_key(f): settings_to_json(getattr(settings, f.name))
            for f in dataclasses.fields(settings)
        }
    if isinstance(settings, tuple):
        return list(settings)
    return settings
