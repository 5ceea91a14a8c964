"""Command line: parse arguments, set up logging, dispatch. No other logic lives here."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from oci_lsp import __version__

# Exit status 2: the run could not be done (CONTRACT.md).
EXIT_USAGE = 2


def _host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected [HOST:]PORT, got {value!r}") from None
    if not 0 < number < 65536:
        raise argparse.ArgumentTypeError(f"port out of range: {number}")
    return host or "127.0.0.1", number


def _whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `minimum`."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"expected {minimum} or more, got {number}")
        return number

    return parse


_positive = _whole_number(1)
_non_negative = _whole_number(0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oci-lsp",
        description="OpenCodeInterpreter's generate-execute-refine loop as a language server.",
    )
    parser.add_argument("--version", action="version", version=f"oci-lsp {__version__}")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--stdio", action="store_true", help="serve LSP over stdio (the default)")
    mode.add_argument(
        "--tcp", metavar="[HOST:]PORT", type=_host_port, help="serve LSP over TCP (127.0.0.1)"
    )
    mode.add_argument(
        "--fix",
        metavar="PATH",
        nargs="?",
        const=".",
        help="fix the failing tests of the project at PATH (default: .), no editor",
    )
    fix = parser.add_argument_group("--fix options")
    fix.add_argument("--dry-run", action="store_true", help="print the diffs, write nothing")
    fix.add_argument("--rounds", type=_positive, metavar="N", help="feedback rounds per function")
    fix.add_argument("--candidates", type=_positive, metavar="K", help="candidates per round")
    fix.add_argument(
        "--jobs", type=_positive, metavar="J", default=1, help="functions fixed at a time"
    )
    fix.add_argument("--json", metavar="FILE", help="write a machine-readable report here")
    fix.add_argument("--test-command", metavar="CMD", help="a runner that writes JUnit XML")
    fix.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="the longest a test run may take"
    )
    fix.add_argument("-k", metavar="EXPR", dest="keyword", help="only test ids containing EXPR")
    fix.add_argument(
        "--tools",
        nargs="?",
        const="",
        metavar="TOOLS",
        help="also fix what these tools report inside functions (ruff,mypy,pyright; alone:"
        " the enabled ones), and modules that do not parse, first",
    )
    fix.add_argument(
        "--allow-dirty", action="store_true", help="fix files with uncommitted changes too"
    )
    _add_model_options(parser)
    return parser


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    """The options shared by serving, --fix and eval: the model, and where logs go."""
    shared = parser.add_argument_group("model and backend (override settings files)")
    shared.add_argument("--model", metavar="ID|DIR")
    shared.add_argument("--backend", choices=("ctranslate2", "openai"))
    shared.add_argument("--device", choices=("auto", "cuda", "cpu"))
    shared.add_argument("--compute-type", metavar="TYPE")
    shared.add_argument("--openai-base-url", metavar="URL")
    shared.add_argument("--openai-model", metavar="NAME")
    parser.add_argument("--log-file", metavar="FILE", help="write the log here (default: stderr)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv)")


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {value!r}") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"expected more than 0 seconds, got {value}")
    return number


def build_eval_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oci-lsp eval",
        description="pass@1 on HumanEval or MBPP (greedy, with execution feedback), through the"
        " editor's prompts, refinement loop and sandbox",
    )
    parser.add_argument("benchmark", metavar="humaneval|mbpp")
    parser.add_argument(
        "--plus", action="store_true", help="EvalPlus's version (HumanEval+, MBPP+; needs --data)"
    )
    parser.add_argument(
        "--feedback",
        type=_non_negative,
        default=1,
        metavar="N",
        help="rounds of execution feedback after the first answer (default: 1, the paper's)",
    )
    parser.add_argument("--limit", type=_positive, metavar="K", help="only the first K problems")
    parser.add_argument("--jobs", type=_positive, default=1, metavar="J", help="problems at a time")
    parser.add_argument("--json", metavar="FILE", help="write the report here")
    parser.add_argument(
        "--data", metavar="FILE", help="the problems, as the benchmark ships them (JSONL, .gz)"
    )
    parser.add_argument("--fresh", action="store_true", help="forget what an earlier run finished")
    parser.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="the longest a candidate's tests may run (default: 30)",
    )
    _add_model_options(parser)
    return parser


def command_line_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line, in the settings' JSON shape."""
    settings: dict[str, Any] = {}
    for option, key in (
        ("model", "model"),
        ("backend", "backend"),
        ("device", "device"),
        ("compute_type", "computeType"),
    ):
        value = getattr(args, option)
        if value is not None:
            settings[key] = value
    openai = {
        key: value
        for key, value in (("baseUrl", args.openai_base_url), ("model", args.openai_model))
        if value is not None
    }
    if openai:
        settings["openai"] = openai
    return settings


def setup_logging(log_file: str | None, verbosity: int) -> None:
    """Logs go to stderr or a file: stdout carries the protocol."""
    handler: logging.Handler
    if log_file:
        handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(
        logging.DEBUG if verbosity >= 2 else logging.INFO if verbosity else logging.WARNING
    )
    oci = logging.getLogger("oci_lsp")
    oci.setLevel(logging.DEBUG if verbosity >= 1 else logging.INFO)
    # pygls logs every message body at INFO: only with -vv.
    logging.getLogger("pygls").setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["model"]:
        return _model_main(argv[1:])
    if argv[:1] == ["eval"]:
        return _eval_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        setup_logging(args.log_file, args.verbose)
    except OSError as exc:
        print(
            f"oci-lsp: cannot write the log file {args.log_file}: {exc.strerror}", file=sys.stderr
        )
        return EXIT_USAGE
    if args.fix is not None:
        return _fix_main(args)
    from oci_lsp.server.app import create_server

    server = create_server(command_line_settings(args))
    if args.tcp:
        host, port = args.tcp
        logging.getLogger(__name__).info("serving LSP on %s:%d", host, port)
        server.start_tcp(host, port)
    else:
        server.start_io()
    return server.exit_code


def _interruptible(work: Coroutine[Any, Any, int], said: str, code: int) -> int:
    """Run a long command; Ctrl-C or SIGTERM cancels it (its own cleanup runs), then `said`
    and the exit status `code`."""
    import asyncio
    import signal

    async def run() -> int:
        task = asyncio.ensure_future(work)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await task
        except asyncio.CancelledError:
            print(said, file=sys.stderr)
            return code

    return asyncio.run(run())


def _fix_main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from oci_lsp.fix.driver import EXIT_CANNOT, FixOptions, fix_project
    from oci_lsp.fix.tool_fixes import parse_tools

    tools: list[str] | None = None
    if args.tools is not None:
        try:
            tools = parse_tools(args.tools)
        except ValueError as exc:
            print(f"oci-lsp: {exc}", file=sys.stderr)
            return EXIT_CANNOT

    options = FixOptions(
        root=Path(args.fix),
        dry_run=args.dry_run,
        rounds=args.rounds,
        candidates=args.candidates,
        jobs=args.jobs,
        json=Path(args.json) if args.json else None,
        test_command=args.test_command,
        timeout=args.timeout,
        keyword=args.keyword,
        allow_dirty=args.allow_dirty,
        settings=command_line_settings(args),
        tools=tools,
    )

    return _interruptible(
        fix_project(options),
        "oci-lsp: interrupted; every file is as it was or holds its verified fix",
        EXIT_CANNOT,
    )


def _eval_main(argv: list[str]) -> int:
    from pathlib import Path

    from oci_lsp.evaluate.runner import DEFAULT_TIMEOUT, EXIT_CANNOT, EvalOptions, evaluate

    args = build_eval_parser().parse_args(argv)
    try:
        setup_logging(args.log_file, args.verbose)
    except OSError as exc:
        print(
            f"oci-lsp: cannot write the log file {args.log_file}: {exc.strerror}", file=sys.stderr
        )
        return EXIT_USAGE
    options = EvalOptions(
        benchmark=args.benchmark,
        plus=args.plus,
        feedback=args.feedback,
        limit=args.limit,
        jobs=args.jobs,
        json=Path(args.json) if args.json else None,
        data=Path(args.data) if args.data else None,
        fresh=args.fresh,
        timeout=args.timeout or DEFAULT_TIMEOUT,
        settings=command_line_settings(args),
    )

    return _interruptible(
        evaluate(options),
        "oci-lsp: interrupted; the problems finished are kept: the same command goes on from there",
        EXIT_CANNOT,
    )


def _model_main(argv: list[str]) -> int:
    from oci_lsp import model_cli

    parser = argparse.ArgumentParser(prog="oci-lsp model", description="manage models")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    model_cli.add_model_commands(parser)
    args = parser.parse_args(argv)
    setup_logging(None, args.verbose)
    return model_cli.run(args)
