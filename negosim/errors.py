"""The one exception hierarchy of negosim.

Like ``simpy.exceptions``: every error negosim raises on purpose derives from
:class:`NegosimError`, so a caller (and the CLI) can tell bad input from bugs.
The CLI maps :class:`InputError` subclasses to exit code 2 and prints their
problems one per line; anything else is an internal error (exit code 1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# C0 controls but tab and newline, DEL, C1 controls, line/paragraph separators and
# the bidirectional overrides/isolates ("Trojan source"): never sent to a terminal raw.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_OR_BREAK = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str, one_line: bool = False) -> str:
    """``text`` with control characters written as visible escapes (ESC as ``\\x1b``).

    The one helper for text that comes from files or arguments on its way to a
    terminal (issue 9): titles, keys and values cannot clear the screen, set the
    window title or reorder a line. ``one_line`` also escapes tabs and line breaks
    (a problem is one line).
    """
    return (_CONTROL_OR_BREAK if one_line else _CONTROL).sub(_escape, text)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located as precisely as we can.

    Rendered as ``FILE:LINE:COL: dotted.path: message``. ``line``/``col`` are
    1-based; 0 means "unknown" (e.g. the file could not be read at all). A
    problem with no file (``<input>`` at line 0: an argument, a keyword) is
    rendered without a location, as the command line prints it.
    """

    file: str
    line: int
    col: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}: "
        if self.file == "<input>" and not self.line:
            where = ""  # an argument or keyword, not a place in a file
        elif not self.line:
            where = f"{self.file}: "  # the file as a whole (missing, too large, ...)
        text = f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"
        return visible(text, one_line=True)


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped (``\\n``), so that
    a file name or value from the input cannot start a line of its own in a message."""
    return visible(text, one_line=True)


class NegosimError(Exception):
    """Base class of every error negosim raises deliberately."""


class InputError(NegosimError):
    """Bad input from the user: a file, an argument. Exit code 2."""

    def __init__(self, problems: list[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem("<input>", 0, 0, "", problems)]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ScenarioError(InputError):
    """A scenario file is unreadable or invalid; ``problems`` lists every issue found."""


class UsageError(InputError):
    """A command-line argument is wrong (unknown ``--set`` name, bad value...)."""


class ExpressionError(NegosimError):
    """An expression does not parse or uses something the language forbids.

    Raised by :mod:`negosim.expr` without file context; the loader turns it
    into a located :class:`Problem`. ``offset`` is the 0-based column in the
    expression text where the problem starts.
    """

    def __init__(self, message: str, offset: int = 0):
        self.message = message
        self.offset = offset
        # Further problems of the same expression (every unknown name, not just the first).
        self.others: list[ExpressionError] = []
        super().__init__(message)


class SimulationError(NegosimError):
    """A replication met a condition it must not continue from (e.g. a zero-time loop).

    These are defects of the scenario that only show when it runs; ``loc``
    names the part of the file at fault (e.g. ``("actions", "reply")``) so the
    CLI can point at its line, and reports them like bad input (exit code 2).
    """

    def __init__(self, message: str, loc: tuple[str | int, ...] | None = None):
        self.message = message
        self.loc = loc
        super().__init__(message)

    def __reduce__(self) -> tuple[type[SimulationError], tuple[str, tuple[str | int, ...] | None]]:
        # Keep ``loc`` when the error crosses a process boundary (--workers).
        return (type(self), (self.message, self.loc))
