"""Shared pieces of the command line: argument types, common options, consoles.

Each group of commands lives in its own module under :mod:`negosim.commands`
and exposes ``register(subparsers)``, which adds its parsers with
``set_defaults(func=...)``; :mod:`negosim.cli` only dispatches. Results go to
stdout, progress and diagnostics to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any

from ..errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from ..compiler.tables import CompiledScenario
    from ..runs.backends import Backend

# Heavy modules (rich, pydantic, numpy, simpy, the engine) are imported inside the
# functions that need them: `negosim --version` and `--help` only build the parsers.


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, found {value}")
    return value


def positive(text: str) -> int:
    """argparse type: a whole number >= 1 (runs, workers)."""
    return _whole_number(text, 1)


def nonnegative(text: str) -> int:
    """argparse type: a whole number >= 0 (seeds, replication indexes)."""
    return _whole_number(text, 0)


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors go through negosim's one error path (exit 2)."""

    def error(self, message: str) -> Any:
        """Raise a UsageError naming the program and pointing at --help, instead of exiting."""
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def add_command(
    sub: Any, name: str, help_text: str, example: str, func: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with ``example`` (every command has one)."""
    p: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog="example:\n" + example,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=func)
    return p


def add_sets(p: argparse.ArgumentParser) -> None:
    """Add the repeatable ``--set PATH=VALUE`` override option (parameter name or dotted path)."""
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a parameter by name (p_accept=0.4) or any value by its "
        "dotted path (actors.us.present.0.window=conference); repeatable",
    )


def add_format(p: argparse.ArgumentParser, choices: tuple[str, ...] = ("table", "json")) -> None:
    """Add ``--format`` with ``choices``; the first choice is the default."""
    p.add_argument(
        "--format",
        choices=choices,
        default=choices[0],
        help=f"output format (default: {choices[0]})",
    )


def add_backend_options(p: argparse.ArgumentParser, default_workers: int) -> None:
    """``--workers``, ``--scheduler``, ``--dask-local`` (``run`` and ``sweep``)."""
    p.add_argument(
        "--workers",
        type=positive,
        default=default_workers,
        help=f"local worker processes (default: {'all cores' if default_workers > 1 else 1}); "
        "results do not depend on it",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a Dask cluster: its scheduler, e.g. tcp://10.0.0.5:8786",
    )
    p.add_argument(
        "--dask-local",
        type=positive,
        metavar="N",
        help="start a local Dask cluster of N worker processes and run on it",
    )


def backend_from_args(args: argparse.Namespace) -> Backend:
    """The run backend asked for by ``--workers``, ``--scheduler`` and ``--dask-local``."""
    from ..runs.backends import make_backend

    return make_backend(args.workers, args.scheduler, args.dask_local)


def _plain() -> bool:
    """NO_COLOR set (to anything non-empty): no colour, and no other styling either."""
    return bool(os.environ.get("NO_COLOR"))


@cache
def _out_class() -> type[Console]:
    from rich.console import Console

    class _Out(Console):
        """stdout console: a reader that leaves early (``| head``) is not an error.

        rich's default turns a broken pipe into exit code 1; we hand it to
        :func:`negosim.cli.main`, which treats it like the plain-text commands do.
        """

        def on_broken_pipe(self) -> None:
            raise BrokenPipeError

    return _Out


def stdout() -> Console:
    """The console for results: colour unless NO_COLOR, a broken pipe not an error."""
    return _out_class()(highlight=False, color_system=None if _plain() else "auto")


def stderr() -> Console:
    """The console for progress and diagnostics: colour unless NO_COLOR."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, color_system=None if _plain() else "auto")


def print_json(data: Any) -> None:
    """Print ``data`` to stdout as indented JSON, non-ASCII characters kept as they are."""
    print(json.dumps(data, indent=2, ensure_ascii=False))


def load_args(args: argparse.Namespace, path: str | None = None) -> CompiledScenario:
    """Load ``args.file`` (or ``path``) with the ``--set`` overrides in ``args.sets``."""
    from ..compiler.loader import load
    from ..scenario.overrides import parse_set

    parsed = [parse_set(s) for s in getattr(args, "sets", [])]
    return load(path or args.file, parsed)


def progress() -> Progress:
    """negosim's rich progress display on stderr, drawn only when stderr is a terminal."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    err = stderr()
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


@contextmanager
def progress_bar(total: int | None, description: str) -> Iterator[Callable[[int], None]]:
    """One progress bar on stderr (only on a terminal); yields ``advance(n)``."""
    if not stderr().is_terminal:  # nothing to draw: skip importing rich's progress machinery
        yield lambda n: None
        return
    with progress() as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
