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
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any

from ..errors import UsageError, visible

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from ..compiler.tables import CompiledScenario
    from ..runs.backends import Backend

# Heavy modules (rich, pydantic, numpy, simpy, the engine) are imported inside the
# functions that need them: `negosim --version` and `--help` only build the parsers.


MAX_RUNS = 1_000_000_000
"""Largest ``--runs`` (a billion replications: hours on a cluster)."""
MAX_SEED = 2**128 - 1
"""Largest ``--seed`` (seeds are keyed by 128 bits)."""


def _whole_number(text: str, minimum: int, maximum: int | None = None) -> int:
    shown = repr(text) if len(text) <= 40 else repr(text[:40]) + f"... ({len(text)} characters)"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {shown}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, found {shown}")
    if maximum is not None and value > maximum:
        raise argparse.ArgumentTypeError(f"must be at most {maximum:,}, found {shown}")
    return value


def positive(text: str) -> int:
    """argparse type: a whole number >= 1 (workers, samples)."""
    return _whole_number(text, 1)


def nonnegative(text: str) -> int:
    """argparse type: a whole number >= 0 (replication indexes)."""
    return _whole_number(text, 0)


def run_count(text: str) -> int:
    """argparse type: a number of replications, 1 to :data:`MAX_RUNS`."""
    return _whole_number(text, 1, MAX_RUNS)


def seed_number(text: str) -> int:
    """argparse type: a random seed, 0 to :data:`MAX_SEED`."""
    return _whole_number(text, 0, MAX_SEED)


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors go through negosim's one error path (exit 2)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # No abbreviations (issue 9): `run --run 5` is an error, not `--runs 5`.
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        """argparse's, except that arguments a command does not take are reported by that
        command's parser (``negosim run: ...``), with the option meant if one is close."""
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            who = self._command_parser(getattr(ns, "command", None)) or self
            who.error(f"unrecognized arguments: {' '.join(extras)}{who._option_hint(extras[0])}")
        return ns

    def error(self, message: str) -> Any:
        """Raise a UsageError naming the program and pointing at --help, instead of exiting."""
        found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
        if found:  # "did you mean" for a misspelt command or choice (argparse 3.11 has none)
            message += _close(found[1], re.findall(r"'([^']*)'", found[2]))
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    def _command_parser(self, name: str | None) -> Parser | None:
        """The parser of subcommand ``name``, if this parser has one by that name."""
        for action in self._actions:
            choices = action.choices if isinstance(action, argparse._SubParsersAction) else None
            if choices and name in choices and isinstance(choices[name], Parser):
                return choices[name]
        return None

    def _option_hint(self, arg: str) -> str:
        """``; did you mean --runs?`` for an unknown option close to one this parser takes."""
        if not arg.startswith("--"):
            return ""
        return _close(arg.split("=", 1)[0], list(self._option_string_actions), quote=False)


def _close(word: str, choices: list[str], quote: bool = True) -> str:
    """``; did you mean 'run'?`` for the choice closest to ``word``, else ``""``."""
    import difflib

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:
        return ""
    return f"; did you mean {close[0]!r}?" if quote else f"; did you mean {close[0]}?"


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


MAX_DRAWS = 100_000


def draw_count(text: str) -> int:
    """argparse type: a number of parameter draws, 1 to MAX_DRAWS."""
    return _whole_number(text, 1, MAX_DRAWS)


def add_uncertainty_options(p: argparse.ArgumentParser) -> None:
    """``--uncertainty`` and ``--draws`` (``run``, ``compare``, ``backtest``)."""
    p.add_argument(
        "--uncertainty",
        action="store_true",
        help="draw the parameters that declare an 'uncertainty' distribution (nested design: "
        "parameter draws x runs) and report the predictive P(meeting) and its band across "
        "draws; --set NAME=VALUE pins a parameter",
    )
    p.add_argument(
        "--draws",
        type=draw_count,
        metavar="D",
        help="with --uncertainty: parameter draws (default: 100); each gets runs/D replications",
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
        "at most one per core; results do not depend on it",
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
        help="start a local Dask cluster of N worker processes (at most one per core) "
        "and run on it",
    )


def add_engine_option(p: argparse.ArgumentParser, default: str) -> None:
    """``--engine batch|simpy`` (``run``, ``sweep``, ``compare``, ``backtest``, ``calibrate``)."""
    p.add_argument(
        "--engine",
        choices=("batch", "simpy"),
        default=default,
        help=f"simulation engine (default: {default}): batch is the vectorised engine, "
        "simpy the reference; both give the same numbers for the same seed, and a "
        "scenario the batch engine does not cover runs on simpy (with a note)",
    )


def engine_for_args(args: argparse.Namespace, cs: CompiledScenario, where: str = "") -> str:
    """The engine to run ``cs`` on: ``--engine``, or simpy (said on stderr, after
    ``where`` if given) when the batch engine does not cover the scenario."""
    if args.engine != "batch":
        return str(args.engine)
    from ..runs.backends import batch_support

    why = batch_support(cs)
    if why is None:
        return "batch"
    say(f"note: {where + ': ' if where else ''}{why}; using the simpy engine")
    return "simpy"


def _capped(option: str, asked: int | None) -> int | None:
    """``asked`` local processes, at most one per core (a one-line note if capped)."""
    cores = os.cpu_count() or 1
    if asked is None or asked <= cores:
        return asked
    say(f"note: {option} {asked} capped at {cores}, the number of cores of this machine")
    return cores


def backend_from_args(args: argparse.Namespace) -> Backend:
    """The run backend asked for by ``--workers``, ``--scheduler`` and ``--dask-local``."""
    from ..runs.backends import make_backend

    workers = _capped("--workers", args.workers) or 1
    return make_backend(workers, args.scheduler, _capped("--dask-local", args.dask_local))


def _plain() -> bool:
    """NO_COLOR set (to anything non-empty): no colour, and no other styling either."""
    return bool(os.environ.get("NO_COLOR"))


@cache
def _console_classes() -> tuple[type[Console], type[Console]]:
    from rich.console import Console
    from rich.segment import Segment

    class _Safe(Console):
        """A console that shows text as written (issue 9).

        No markup, emoji shortcodes or highlighting in strings (``:100:`` in
        ``FILE:100:1`` is not an emoji, ``[b]`` in a title is not bold); styles come
        from :class:`rich.text.Text` only. Control characters in the text (ESC,
        BEL, ...) become visible escapes on the way out, whatever renderable held
        them; rich's own control codes (cursor moves, styles) are left alone.
        """

        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("color_system", None if _plain() else "auto")
            super().__init__(markup=False, emoji=False, highlight=False, **kwargs)

        def _render_buffer(self, buffer: Any) -> str:
            safe = [seg if seg.control else Segment(visible(seg.text), seg.style) for seg in buffer]
            return super()._render_buffer(safe)

    class _Out(_Safe):
        """stdout console: a reader that leaves early (``| head``) is not an error.

        rich's default turns a broken pipe into exit code 1; we hand it to
        :func:`negosim.cli.main`, which treats it like the plain-text commands do.
        """

        def on_broken_pipe(self) -> None:
            raise BrokenPipeError

    return _Safe, _Out


def stdout() -> Console:
    """The console for results: colour unless NO_COLOR, a broken pipe not an error."""
    return _console_classes()[1]()


def stderr() -> Console:
    """The console for progress and diagnostics: colour unless NO_COLOR."""
    return _console_classes()[0](stderr=True)


def say(text: str) -> None:
    """One diagnostic line on stderr, shown as written (control characters escaped)."""
    stderr().print(visible(text, one_line=True), soft_wrap=True)


_C1_OR_BIDI = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def print_json(data: Any) -> None:
    """``data`` as JSON on stdout. JSON escapes C0 controls (ESC is ``\\u001b``);
    the other characters a terminal obeys are escaped the same way (valid JSON)."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    print(_C1_OR_BIDI.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


def write_text(text: str) -> None:
    """Plain text (a diagram, an explanation) on stdout, control characters escaped."""
    sys.stdout.write(visible(text))


class VisibleWriter:
    """A text stream that escapes control characters on the way through (``play``)."""

    def __init__(self, stream: Any):
        self.stream = stream

    def write(self, text: str) -> int:
        """Write ``text`` with its control characters made visible."""
        return int(self.stream.write(visible(text)))

    def flush(self) -> None:
        """Flush the underlying stream."""
        self.stream.flush()


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
        TextColumn("{task.description}", style="progress.description", markup=False),
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
