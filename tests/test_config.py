"""Settings: merging the sources in CONTRACT.md's order, and what a bad value gives."""

from __future__ import annotations

from pathlib import Path

from oci_lsp.cli import build_parser, command_line_settings
from oci_lsp.config import Settings, read_pyproject_settings, resolve_settings, settings_to_json


def test_defaults_are_the_contracts() -> None:
    settings, problems = resolve_settings([])
    assert problems == []
    assert settings_to_json(settings) == {
        "model": "auto",
        "backend": "ctranslate2",
        "device": "auto",
        "computeType": "auto",
        "openai": {"baseUrl": None, "model": None, "apiKeyEnv": "OPENAI_API_KEY"},
        "tests": {
            "onSave": True,
            "command": None,
            "scope": "affected-then-all",
            "timeout": 300.0,
            "python": None,
            "localization": "ochiai",
            "localizationMutants": True,
        },
        "refine": {"maxRounds": 3, "candidates": 2, "temperature": 0.2, "verify": True},
        "generation": {"maxNewTokens": 1024, "preload": False},
        "tools": {"enabled": None, "ruff": None, "mypy": None, "pyright": None},
    }


def test_tools_settings_take_known_tools_and_argv_overrides() -> None:
    settings, problems = resolve_settings(
        [("pyproject.toml", {"tools": {"enabled": ["ruff", "mypy"], "ruff": ["uvx", "ruff"]}})]
    )
    assert problems == []
    assert settings.tools.enabled == ("ruff", "mypy")
    assert settings.tools.override("ruff") == ("uvx", "ruff")
    assert settings.tools.override("mypy") is None
    settings, problems = resolve_settings(
        [("initializationOptions", {"tools": {"enabled": ["flake8"], "mypy": "mypy"}})]
    )
    assert settings.tools.enabled is None and settings.tools.mypy is None
    assert [p.key for p in problems] == ["tools.enabled", "tools.mypy"]
    assert "ruff" in problems[0].message and "flake8" in problems[0].message
    # An empty list is a choice: no tool verifies.
    settings, problems = resolve_settings([("x", {"tools": {"enabled": []}})])
    assert settings.tools.enabled == () and problems == []


def test_later_sources_win_per_key() -> None:
    settings, problems = resolve_settings(
        [
            (
                "pyproject.toml",
                {"compute-type": "int8", "tests": {"timeout": 60, "on-save": False}},
            ),
            ("initializationOptions", {"tests": {"timeout": 30}, "device": "cpu"}),
            ("workspace configuration", {"device": "cuda", "openai": {"baseUrl": "http://h"}}),
            ("command line", {"device": "auto"}),
        ]
    )
    assert problems == []
    assert settings.compute_type == "int8"
    assert settings.tests.timeout == 30.0
    assert settings.tests.on_save is False  # the later sources did not mention it
    assert settings.device == "auto"
    assert settings.openai.base_url == "http://h"


def test_a_bad_value_is_named_and_replaced_by_its_default() -> None:
    settings, problems = resolve_settings(
        [
            ("pyproject.toml", {"tests": {"timeout": "soon", "scope": "some"}}),
            ("initializationOptions", {"refine": {"maxRounds": 0}, "backend": 3, "tests": 5}),
        ]
    )
    assert settings.tests == Settings().tests
    assert settings.refine.max_rounds == 3
    assert settings.backend == "ctranslate2"
    text = [str(p) for p in problems]
    assert any("`tests.timeout`" in t and "'soon'" in t and "pyproject.toml" in t for t in text)
    assert any("`tests.scope`" in t and '"affected-then-all"' in t for t in text)
    assert any("`refine.maxRounds`" in t and "greater than 0" in t for t in text)
    assert any("`backend`" in t and "initializationOptions" in t for t in text)
    assert any("`tests` must be an object" in t for t in text)


def test_unknown_keys_are_reported() -> None:
    _, problems = resolve_settings([("initializationOptions", {"tests": {"onsave": True}})])
    assert [p.key for p in problems] == ["tests.onsave"]
    assert "unknown setting" in problems[0].message


def test_booleans_are_not_numbers_and_lists_become_argv() -> None:
    settings, problems = resolve_settings(
        [("x", {"tests": {"timeout": True, "command": ["tox", "-e", "py"]}})]
    )
    assert settings.tests.timeout == 300.0
    assert settings.tests.command == ("tox", "-e", "py")
    assert [p.key for p in problems] == ["tests.timeout"]


def test_pyproject_table(tmp_path: Path) -> None:
    assert read_pyproject_settings(tmp_path) == (None, None)
    (tmp_path / "pyproject.toml").write_text('[tool.oci-lsp]\nmodel = "ds-6.7b"\n')
    table, problem = read_pyproject_settings(tmp_path)
    assert table == {"model": "ds-6.7b"} and problem is None
    (tmp_path / "pyproject.toml").write_text("[tool.oci-lsp\n")
    table, problem = read_pyproject_settings(tmp_path)
    assert table is None and problem is not None
    assert "could not read pyproject.toml" in problem.message


def test_command_line_options_become_settings() -> None:
    args = build_parser().parse_args(
        ["--device", "cpu", "--compute-type", "int8", "--openai-base-url", "http://x/v1"]
    )
    assert command_line_settings(args) == {
        "device": "cpu",
        "computeType": "int8",
        "openai": {"baseUrl": "http://x/v1"},
    }
    args = build_parser().parse_args(["--tcp", "8123"])
    assert args.tcp == ("127.0.0.1", 8123)
