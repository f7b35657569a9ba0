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
from collections.abc import Sequence
from typing import Any

from ..errors import InputError, NegosimError, SimulationError, one_line
from ..extras import MissingExtra
from .commands import calibration, classroom, core, exact, history, sweep, visual, web
from .util import Parser, say

COMMAND_GROUPS = [core, sweep, visual, exact, history, calibration, classroom, web]
"""Modules whose ``register(subparsers)`` adds commands, in --help order."""


def build_parser() -> argparse.ArgumentParser:
    """The top-level ``negosim`` parser with every command group's subcommands registered."""
    parser = Parser(
        prog="negosim",
        description="Simulate the negotiation of a diplomatic meeting: whether and when it "
        "happens.",
        epilog="example:\n  negosim run scenarios/munich.yaml\n\n"
        "Run 'negosim COMMAND --help' for each command's options and an example.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


class _Version(argparse._VersionAction):
    """``--version``, reading the installed version only when asked (it costs an import)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from .. import __version__

        self.version = f"negosim {__version__}"
        super().__call__(parser, *args, **kwargs)


def _simulation_problem(exc: SimulationError, args: argparse.Namespace) -> str:
    """Locate a run-time scenario defect at its line in the file, if we can."""
    from ..scenario.yamlsource import load_scenario_file

    path = getattr(args, "file", None)
    if exc.loc and path:
        try:
            return str(load_scenario_file(path).problem(exc.loc, exc.message))
        except NegosimError:
            pass
    return one_line(f"{path or 'negosim'}: {exc.message}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = None
    try:
        args = build_parser().parse_args(argv)
        # The command line as given (``main(argv)`` in-process, or the console
        # script's), for outputs that record how they were made.
        args.argv = ["negosim", *(sys.argv[1:] if argv is None else argv)]
        if not args.command:
            build_parser().print_help()
            return 2
        code: int = args.func(args)
        return code
    except MissingExtra as exc:
        # e.g. "negosim plot: needs the 'plots' extra: pip install 'negosim[plots]'"
        who = f"negosim {args.command}" if args is not None else "negosim"
        say(exc.line(who))
        return 2
    except InputError as exc:
        for p in exc.problems:
            say(str(p) if p.line or p.file != "<input>" else p.message)
        return 2
    except SimulationError as exc:
        say(_simulation_problem(exc, args or argparse.Namespace()))
        return 2
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except BrokenPipeError:
        # e.g. `negosim schema | head`: the reader left; that is not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        if exc.filename is None:
            return _internal(exc)
        # A file the user named cannot be written or read (-o, --out, new NAME):
        # bad input, said plainly.
        say(f"{exc.filename}: {exc.strerror or exc}")
        return 2
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        return _internal(exc)


def _internal(exc: BaseException) -> int:
    """An error that is negosim's fault: say so, exit 1 (traceback with NEGOSIM_DEBUG)."""
    if os.environ.get("NEGOSIM_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    say(f"negosim: internal error: {type(exc).__name__}: {exc}")
    say(
        "This is a bug in negosim; rerun with NEGOSIM_DEBUG=1 for the traceback "
        "and please report it."
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
