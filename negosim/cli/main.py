"""The ``negosim`` command: a thin dispatcher over the library.

Each group of subcommands lives in a module of :mod:`negosim.commands` and
registers its parsers; this module builds the top-level parser and turns
errors into messages and exit codes: 0 success, 2 bad input (every problem on
its own ``FILE:LINE:COL: dotted.path: message`` line, no traceback), 1
internal error (set ``NEGOSIM_DEBUG=1`` for the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from rich.console import Console

from .. import __version__
from ..errors import InputError, NegosimError, SimulationError
from ..scenario.yamlsource import load_yaml_file
from .commands import classroom, core, sweep, visual
from .util import Parser, stderr

COMMAND_GROUPS = [core, sweep, visual, classroom]
"""Modules whose ``register(subparsers)`` adds commands, in --help order."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="negosim",
        description="Simulate the negotiation of a diplomatic meeting: whether and when it "
        "happens.",
        epilog="example:\n  negosim run scenarios/munich.yaml\n\n"
        "Run 'negosim COMMAND --help' for each command's options and an example.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"negosim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


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
    err = stderr()
    args = None
    try:
        args = build_parser().parse_args(argv)
        if not args.command:
            build_parser().print_help()
            return 2
        code: int = args.func(args)
        return code
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
    except OSError as exc:
        if exc.filename is None:
            return _internal(err, exc)
        # A file the user named cannot be written or read (-o, --out, new NAME):
        # bad input, said plainly.
        err.print(f"{exc.filename}: {exc.strerror or exc}", markup=False, soft_wrap=True)
        return 2
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        return _internal(err, exc)


def _internal(err: Console, exc: BaseException) -> int:
    """An error that is negosim's fault: say so, exit 1 (traceback with NEGOSIM_DEBUG)."""
    if os.environ.get("NEGOSIM_DEBUG"):
        traceback.print_exception(exc)
    err.print(
        f"negosim: internal error: {type(exc).__name__}: {exc}\n"
        "This is a bug in negosim; rerun with NEGOSIM_DEBUG=1 for the traceback "
        "and please report it.",
        markup=False,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
