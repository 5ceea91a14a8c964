"""What oci-lsp changes in a project's own pytest options for its runs, and why.

Runs inside the *workspace's* interpreter (stdlib and pytest only), loaded by oci_lsp_pytest
for the runs on save and for the sandbox's candidates alike. The project's options come from
wherever pytest found them (addopts in pytest.ini, tox.ini, setup.cfg or pyproject.toml,
PYTEST_ADDOPTS, the command line): pytest has merged them by the time these hooks run, so one
rule handles every source. A rule applies only when the plugin that owns the option is loaded
(the option exists), and it never blocks a plugin: `-p no:cov` would make a `--cov` in addopts
an unknown option and end the run. Each rule turns the behaviour off through the plugin's own
option and returns a short note; the notes reach the server in the "session" event, which
says them once.

What is changed, and why:
- pytest-cov: `--no-cov`; it writes `.coverage` into the workspace on every save, and a
  candidate, confined to its scratch directory, fails on it with PermissionError.
  COVERAGE_FILE points into the run's scratch directory as well (coverage started some
  other way, a subprocess's .pth hook).
- pytest-xdist: `-n0`; workers report to the controller without the live frames our
  streaming reads, and starting them costs more than the affected tests of a save.
- pytest-randomly: a seed given by the server (the same for every run of a session, and for
  the candidates verified against it), so the order and the random values do not change from
  one save to the next; the seed is shown, so the run can be reproduced with `-p randomly
  --randomly-seed=N`. `last` needs pytest's cache, which our runs keep off.
- pytest-timeout: the signal method; the thread method ends the whole process with
  os._exit, and every test after the one that hung would be lost.
- pytest-benchmark: benchmarks run once (`--benchmark-disable`), nothing saved or compared,
  storage in the scratch directory (it creates `.benchmarks` on every run otherwise).
- reports (`--junitxml`, pytest-html's `--html`): not written.
- pytest's cache: our runs load no cacheprovider (no `.pytest_cache` on every save); its
  options (`--lf`, `--ff`, `--nf`, `--sw`, `cache_dir`) are still accepted, and ignored.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
from typing import Any

import pytest

SCRATCH_ENV = "OCI_LSP_SCRATCH"  # a directory of the run's own, removed after it
SEED_ENV = "OCI_LSP_RANDOMLY_SEED"  # pytest-randomly's seed for this run

notes: list[str] = []  # what was changed, for the "session" event
seed: int | None = None  # pytest-randomly's seed, when it is loaded


def add_cache_options(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """Accept the options of pytest's cache plugins, which our runs do not load."""
    if not pluginmanager.is_blocked("cacheprovider"):
        return
    from _pytest import cacheprovider, stepwise

    # Their own definitions, so the options are the same as in the project's pytest.
    for module in (cacheprovider, stepwise):
        with contextlib.suppress(ValueError):  # already there (a plugin of the project's)
            module.pytest_addoption(parser)


def before_parsing(namespace: Any, args: list[str]) -> None:
    """What must change before the plugins read their early options (pytest-cov starts
    measuring in pytest_load_initial_conftests): the options pytest knows so far, and the
    argument list it parses next."""
    global seed
    notes.clear()
    seed = None
    scratch = os.environ.get(SCRATCH_ENV)
    if scratch:
        os.environ["COVERAGE_FILE"] = os.path.join(scratch, ".coverage")
    if getattr(namespace, "cov_source", None) and not getattr(namespace, "no_cov", False):
        namespace.no_cov = True
        # Last, so that it is the final word and after every --cov (pytest-cov warns about
        # a --cov that follows --no-cov, an error under `filterwarnings = error`).
        args.append("--no-cov")
        notes.append("coverage off (--no-cov)")


def after_parsing(config: pytest.Config) -> None:
    """The rest, on the parsed options, before any plugin is configured."""
    option = config.option
    scratch = os.environ.get(SCRATCH_ENV)
    _xdist(option)
    _randomly(option)
    _timeout(config)
    _benchmark(option, scratch)
    _reports(option)
    _cache(config)


def _note(text: str) -> None:
    if text not in notes:
        notes.append(text)


def _xdist(option: Any) -> None:
    workers = getattr(option, "numprocesses", None)
    dist = getattr(option, "dist", "no")
    if workers or (dist not in (None, "no")) or getattr(option, "distload", False):
        given = f"-n {workers}" if workers else f"--dist {dist}"
        option.numprocesses = 0
        option.dist = "no"
        option.distload = False
        option.tx = []
        _note(f"{given} → -n0: results stream per test")
    if getattr(option, "looponfail", False):
        option.looponfail = False
        _note("--looponfail off")


def _randomly(option: Any) -> None:
    global seed
    if not hasattr(option, "randomly_seed"):
        return
    value = option.randomly_seed
    if isinstance(value, int):
        seed = value  # the project's own seed
    else:  # "default" (a new one each run) or "last" (from the cache, which is off)
        given = os.environ.get(SEED_ENV, "")
        seed = int(given) if given.isdigit() else random.Random().getrandbits(32)
        option.randomly_seed = seed
    _note(f"pytest-randomly seed {seed}")


def _timeout(config: pytest.Config) -> None:
    if not hasattr(config.option, "timeout_method"):
        return
    method = config.option.timeout_method or config.getini("timeout_method") or ""
    if not method:
        method = "signal" if hasattr(signal, "SIGALRM") else "thread"
    if method == "thread" and hasattr(signal, "SIGALRM"):
        config.option.timeout_method = "signal"
        _note("pytest-timeout: signal method (a test that times out fails, the run goes on)")


def timeout_timer(item: pytest.Item, settings: Any) -> Any:
    """pytest_timeout_set_timer for a test whose marker asks for the thread method: the
    signal method instead, as for the others (see _timeout)."""
    if settings.method != "thread" or threading.current_thread() is not threading.main_thread():
        return None
    if not hasattr(signal, "SIGALRM"):
        return None
    plugin = item.config.pluginmanager.getplugin("timeout")
    if plugin is None:
        return None
    return plugin.pytest_timeout_set_timer(item=item, settings=settings._replace(method="signal"))


def _benchmark(option: Any, scratch: str | None) -> None:
    if not hasattr(option, "benchmark_storage"):
        return
    if scratch:
        option.benchmark_storage = "file://" + os.path.join(scratch, "benchmarks")
    option.benchmark_autosave = None
    option.benchmark_save = None
    option.benchmark_json = None
    option.benchmark_compare = []
    option.benchmark_compare_fail = None
    for name in ("benchmark_histogram", "benchmark_csv", "benchmark_cprofile_dump"):
        if hasattr(option, name):
            setattr(option, name, [])
    if getattr(option, "benchmark_only", False):
        _note("pytest-benchmark: nothing saved")  # --benchmark-only refuses --benchmark-disable
        return
    option.benchmark_disable = True
    option.benchmark_enable = False
    _note("pytest-benchmark: run once, nothing saved (--benchmark-disable)")


def _reports(option: Any) -> None:
    off = []
    if getattr(option, "xmlpath", None):
        off.append(f"--junitxml={option.xmlpath}")
        option.xmlpath = None
    if getattr(option, "htmlpath", None):
        off.append(f"--html={option.htmlpath}")
        option.htmlpath = None
    if off:
        _note("reports not written: " + ", ".join(off))


_CACHE_OPTIONS = {
    "lf": "--lf",
    "failedfirst": "--ff",
    "newfirst": "--nf",
    "stepwise": "--sw",
    "stepwise_skip": "--sw-skip",
}


def _cache(config: pytest.Config) -> None:
    if not config.pluginmanager.is_blocked("cacheprovider"):
        return
    used = [flag for name, flag in _CACHE_OPTIONS.items() if getattr(config.option, name, False)]
    if used:
        _note(f"{'/'.join(used)} ignored: no cache between runs")
