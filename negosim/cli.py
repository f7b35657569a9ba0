"""The ``negosim`` command: a thin layer over the library.

Results go to stdout (a rich table, or one JSON object with ``--format
json``); progress and diagnostics go to stderr. Exit codes: 0 success, 2 bad
input (every problem on its own ``FILE:LINE:COL: dotted.path: message``
line, no traceback), 1 internal error (set ``NEGOSIM_DEBUG=1`` for the
traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from . import __version__
from .compile import CompiledScenario
from .describe import graph, parameter_rows
from .errors import InputError, NegosimError, Problem, SimulationError, UsageError
from .loader import load
from .overrides import parse_set
from .report import render_estimate, render_params, render_trace, trace_rows
from .runner import simulate, trace
from .schema import json_schema
from .yamlsource import load_yaml_file

EPILOGS = {
    "run": """example:
  negosim run scenarios/munich.yaml
  negosim run scenarios/munich.yaml --runs 50000 --seed 7 --workers 2
  negosim run scenarios/munich.yaml --set p_us_formal_request=0.5 --format json""",
    "trace": """example:
  negosim trace scenarios/munich.yaml --seed 3
  negosim trace scenarios/munich.yaml --seed 3 --verbose   # also clocks started/cancelled""",
    "validate": """example:
  negosim validate scenarios/*.yaml""",
    "params": """example:
  negosim params scenarios/munich.yaml
  negosim params scenarios/munich.yaml --format json""",
    "schema": """example:
  negosim schema > negosim-scenario.schema.json
  # then point your editor's YAML extension at it, e.g. in VS Code settings:
  # "yaml.schemas": {"negosim-scenario.schema.json": "scenarios/*.yaml"}""",
    "graph": """example:
  negosim graph scenarios/munich.yaml              # Mermaid, paste into any Markdown viewer
  negosim graph scenarios/munich.yaml --format dot | dot -Tpng -o protocol.png""",
}


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, found {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, found {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as exit code 2 without a traceback (as usual)
    but through our one error path, so the message format matches the rest."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="negosim",
        description="Simulate the negotiation of a diplomatic meeting: whether and when it "
        "happens.",
        epilog="example:\n  negosim run scenarios/munich.yaml\n\n"
        "Run 'negosim COMMAND --help' for each command's options and an example.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"negosim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EPILOGS[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    def sets(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--set",
            dest="sets",
            action="append",
            default=[],
            metavar="PATH=VALUE",
            help="override a parameter by name (p_accept=0.4) or any value by its "
            "dotted path (actors.us.present.0.window=conference); repeatable",
        )

    def fmt(p: argparse.ArgumentParser, choices: tuple[str, ...] = ("table", "json")) -> None:
        p.add_argument(
            "--format",
            choices=choices,
            default=choices[0],
            help=f"output format (default: {choices[0]})",
        )

    run = command("run", "Estimate P(meeting) and its timing by Monte Carlo.")
    run.add_argument("file", help="scenario YAML file")
    run.add_argument("--runs", type=_positive, default=10_000, help="replications (default: 10000)")
    run.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")
    run.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="worker processes (default: 1); results do not depend on it",
    )
    sets(run)
    fmt(run)

    tr = command("trace", "Show one replication as a timeline in venue-local time.")
    tr.add_argument("file", help="scenario YAML file")
    tr.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")
    tr.add_argument(
        "--run",
        type=_seed,
        default=0,
        metavar="I",
        help="which replication of that seed (default: 0, as in 'run')",
    )
    tr.add_argument(
        "--verbose",
        action="store_true",
        help="also show when each action becomes possible or is cancelled",
    )
    sets(tr)
    fmt(tr)

    va = command("validate", "Check scenario files; report every problem found.")
    va.add_argument("files", nargs="+", metavar="FILE", help="scenario YAML files")

    pa = command("params", "List every parameter with its default, range and source.")
    pa.add_argument("file", help="scenario YAML file")
    sets(pa)
    fmt(pa)

    command("schema", "Print the JSON Schema of the scenario format (for editors).")

    gr = command("graph", "Print the meeting protocol as a Mermaid or DOT diagram.")
    gr.add_argument("file", help="scenario YAML file")
    fmt(gr, ("mermaid", "dot"))
    return parser


class _Out(Console):
    """stdout console: a reader that leaves early (``| head``) is not an error.

    rich's default turns a broken pipe into exit code 1; we hand it to
    :func:`main`, which treats it like the plain-text commands do.
    """

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


def _stdout() -> Console:
    return _Out(highlight=False)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


def _load(args: argparse.Namespace) -> tuple[CompiledScenario, list[tuple[str, Any]]]:
    parsed = [parse_set(s) for s in getattr(args, "sets", [])]
    return load(args.file, parsed), parsed


def cmd_run(args: argparse.Namespace) -> int:
    cs, _ = _load(args)
    err = _stderr()
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task(f"{cs.id}: simulating", total=args.runs)
        est = simulate(
            cs,
            runs=args.runs,
            seed=args.seed,
            workers=args.workers,
            progress=lambda n: bar.advance(task, n),
            overrides=args.sets,
        )
    if args.format == "json":
        print(json.dumps(est.to_json(), indent=2, ensure_ascii=False))
    else:
        render_estimate(est, _stdout())
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    cs, _ = _load(args)
    row, lines = trace(cs, args.seed, args.run)
    if args.format == "json":
        print(
            json.dumps(
                {
                    "scenario": cs.id,
                    "seed": args.seed,
                    "run": args.run,
                    "outcome": row.outcome,
                    "held": row.held,
                    "events": trace_rows(cs, lines, args.verbose),
                    "blocking": [cs.preconditions[i] for i in row.blocking],
                },
                indent=2,
            )
        )
    else:
        render_trace(cs, row, lines, args.seed, _stdout(), args.verbose)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    problems: list[Problem] = []
    out = _stdout()
    for path in args.files:
        try:
            load(path)
        except InputError as exc:
            problems.extend(exc.problems)
        else:
            out.print(f"{path}: ok")
    if problems:
        raise InputError(problems)
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    cs, _ = _load(args)
    rows = parameter_rows(cs)
    if args.format == "json":
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        render_params(rows, cs.model.title, _stdout())
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    cs = load(args.file)
    sys.stdout.write(graph(cs, args.format))
    return 0


COMMANDS = {
    "run": cmd_run,
    "trace": cmd_trace,
    "validate": cmd_validate,
    "params": cmd_params,
    "schema": cmd_schema,
    "graph": cmd_graph,
}


def _simulation_problem(exc: SimulationError, args: argparse.Namespace) -> str:
    """Locate a run-time scenario defect at its line in the file, if we can."""
    path = getattr(args, "file", None)
    if exc.loc and path:
        try:
            return str(load_yaml_file(path).problem(exc.loc, exc.message))
        except NegosimError:
            pass
    return f"{path or 'negosim'}: {exc.message}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    err = _stderr()
    args = None
    try:
        args = build_parser().parse_args(argv)
        if not args.command:
            build_parser().print_help()
            return 2
        return COMMANDS[args.command](args)
    except InputError as exc:
        for p in exc.problems:
            err.print(
                str(p) if p.line or p.file != "<input>" else p.message, markup=False, soft_wrap=True
            )
        return 2
    except SimulationError as exc:
        err.print(
            _simulation_problem(exc, args or argparse.Namespace()), markup=False, soft_wrap=True
        )
        return 2
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        return 130
    except BrokenPipeError:
        # e.g. `negosim schema | head`: the reader left; that is not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if os.environ.get("NEGOSIM_DEBUG"):
            traceback.print_exc()
        err.print(
            f"negosim: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in negosim; rerun with NEGOSIM_DEBUG=1 for the traceback "
            "and please report it.",
            markup=False,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
