"""Playing one actor of a scenario (``negosim play``): the situation, the prompt, the debrief.

A student takes one actor's seat. The replication runs as ``negosim trace``
would (replication 0 of the seed); whenever a clock of the played actor that
is not ``chance`` fires, the engine asks :class:`Player`: which option, instead
of drawing by weight, or — for an action with one outcome — act now or not yet
(see docs/semantics.md, "Playing an actor"). Choices come
from the keyboard or from a script file, one per line. This module holds the
text shown to the student and the choice sources; the command itself is in
:mod:`negosim.cli.commands.classroom`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from ..compiler.tables import Clock, CompiledScenario, Outcome
from ..engine.simulation import Chooser, Engine, Replication, Row, TraceLine
from ..engine.tracing import TracedReplication
from ..errors import UsageError
from ..runs.results import wilson
from ..scenario.units import at_hours


class GameEnded(Exception):
    """The player stopped before the end (end of input, or the script ran out)."""


def local_time(cs: CompiledScenario, hours: float) -> str:
    """``Sat 18 Feb 2023 10:32 CET``: venue-local, rounded to the minute."""
    when = at_hours(cs.start, hours + 1 / 120, cs.tz)
    return when.strftime("%a %d %b %Y %H:%M %Z")


def decisions_of(cs: CompiledScenario, actor: str) -> list[Clock]:
    """The actor's actions a player decides: every one not marked ``chance``.

    An action with options is a choice among them; an action with one outcome
    is a choice of timing: act now, or not yet (:data:`WAIT_ID`).
    """
    return [c for c in cs.clocks if c.actor == actor and not c.chance]


WAIT_ID = "not_yet"
"""The option id of "not yet" at a played action with one outcome."""


def as_decision(c: Clock) -> Clock:
    """The clock as the player sees it: a one-outcome action becomes *act now* or *not yet*."""
    if len(c.options) != 1:
        return c
    act = replace(c.options[0], text="act now")
    wait = Outcome(WAIT_ID, 0.0, (), None, "not yet: let the moment pass (it may come again)")
    return replace(c, options=(act, wait))


def check_actor(cs: CompiledScenario, actor: str) -> None:
    """Raise a UsageError unless ``actor`` exists and has a decision to make."""
    actors = list(cs.model.actors)
    if actor not in cs.model.actors:
        raise UsageError(f"--as: unknown actor {actor!r}; actors: {', '.join(actors)}")
    if not decisions_of(cs, actor):
        playable = [a for a in actors if decisions_of(cs, a)]
        hint = f"; actors with decisions: {', '.join(playable)}" if playable else ""
        raise UsageError(f"--as: {actor!r} has no action to decide (all are chance){hint}")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:g}" if isinstance(value, float) else str(value)


class PlayedReplication(TracedReplication):
    """A traced replication in which ``chooser`` decides the played actors' actions.

    ``actor`` is the played actor, or several separated by commas (two players
    on opposite sides of one run). At an action with options the usual draw is
    still made first, so the random streams stay aligned with the simulated
    seat: a player who follows the weights replays the simulated run exactly
    (docs/semantics.md, "Playing an actor"). At an action with one outcome the
    chooser sees :func:`as_decision`'s two options; acting now is what the
    simulated seat does, and *not yet* lets the moment pass: the action's clock
    starts again with a new delay if the action is still possible.
    """

    __slots__ = ("chooser", "actor", "played")

    def __init__(self, cs_engine: Engine, seed: int, index: int, chooser: Chooser, actor: str):
        super().__init__(cs_engine, seed, index)
        self.chooser = chooser
        self.actor = actor
        self.played = frozenset(actor.split(","))

    def _choose(self, c: Clock) -> Outcome:
        drawn = super()._choose(c)
        if c.actor not in self.played or c.chance:
            return drawn
        return self.chooser(c, self, drawn)

    def _fire(self, i: int) -> None:
        c = self.engine.clocks[i]
        if len(c.options) == 1 and c.actor in self.played and not c.chance:
            chosen = self.chooser(as_decision(c), self, c.options[0])
            if chosen.id == WAIT_ID:
                self.last = c.id
                self.note("wait", c.actor, f"{c.text}: not yet")
                self.enabled[i] = False
                self._reevaluate((i,))  # still possible: a new delay, a new moment
                return
        super()._fire(i)


def situation(cs: CompiledScenario, actor: str, clock: Clock, engine: Replication) -> str:
    """What the player sees at a decision: time, state, facts, the others, conditions."""
    model = cs.model
    state = engine.protocol_state()
    states = model.protocol.states
    state_text = states.get(state) if isinstance(states, dict) else None
    lines = [
        "",
        f"=== Your decision, {model.actors[actor].name}: {local_time(cs, engine.now())} ===",
        f"Where things stand: {state}" + (f" ({state_text.strip()})" if state_text else ""),
    ]
    facts = ", ".join(f"{k} = {_show(v)}" for k, v in engine.facts().items())
    lines += textwrap.wrap("Facts: " + facts, 78, subsequent_indent="  ") if facts else []
    here = ", ".join(
        f"{a.short or aid} {'yes' if engine.is_present(aid) else 'no'}"
        for aid, a in model.actors.items()
    )
    lines.append(f"At the venue: {here}")
    pre = engine.preconditions()
    if pre:
        lines.append("Preconditions:")
        for pid, holds in pre.items():
            p = model.preconditions[pid]
            who = model.actors[p.insisted_by].short or p.insisted_by
            lines.append(f"  - {who} insists: {p.text.strip()} [{'met' if holds else 'NOT met'}]")
    others = [
        line
        for line in getattr(engine, "lines", [])
        if (line.kind == "fire" and line.actor != actor) or line.kind == "event"
    ]
    lines.append("What the others have done so far:" if others else "The others have not acted.")
    for line in others:
        who = (model.actors[line.actor].short or line.actor) if line.actor else "(world)"
        lines.append(f"  {local_time(cs, line.time)}  {who}: {line.text}")
    lines.append(f"Decision: {clock.text}")
    for n, o in enumerate(clock.options, 1):
        lines.append(f"  {n}) {o.id}: {o.text}")
    return "\n".join(lines)


def parse_choice(text: str, options: tuple[Outcome, ...]) -> Outcome | None:
    """An option by number (1-based) or by id; None if ``text`` names neither."""
    text = text.strip()
    # isascii: str.isdigit() accepts digits such as '²' that int() refuses.
    if text.isascii() and text.isdigit() and len(text) <= 9 and 1 <= int(text) <= len(options):
        return options[int(text) - 1]
    for o in options:
        if o.id.lower() == text.lower():
            return o
    return None


@dataclass
class Player:
    """Supplies the played actor's choices; records them."""

    cs: CompiledScenario
    actor: str
    out: TextIO
    read: Callable[[str], str]  # prompt -> line; raises EOFError when input ends
    script: list[tuple[int, str]] | None = None  # (line number, text) to replay
    script_name: str = ""
    choices: list[tuple[float, str, str]] = field(default_factory=list)  # (time, action, option)

    def __call__(self, clock: Clock, engine: Replication, drawn: Outcome) -> Outcome:
        self.out.write(situation(self.cs, self.actor, clock, engine) + "\n")
        chosen = self._from_script(clock) if self.script is not None else self._ask(clock)
        self.out.write(f"You chose: {chosen.id} ({chosen.text})\n")
        self.out.flush()
        self.choices.append((engine.now(), clock.id, chosen.id))
        return chosen

    def _ask(self, clock: Clock) -> Outcome:
        n = len(clock.options)
        for _ in range(MAX_TRIES):
            self.out.flush()
            try:
                text = self.read(f"Your choice [1-{n} or an option id]: ")
            except EOFError:
                raise GameEnded("end of input") from None
            chosen = parse_choice(text, clock.options)
            if chosen is not None:
                return chosen
            ids = ", ".join(o.id for o in clock.options)
            self.out.write(f"Not an option: {_short(text)}. Type 1 to {n}, or one of: {ids}.\n")
        raise GameEnded(f"{MAX_TRIES} answers in a row that were not options")

    def _from_script(self, clock: Clock) -> Outcome:
        assert self.script is not None
        if not self.script:
            raise GameEnded(f"the script {self.script_name} has no more choices")
        number, text = self.script.pop(0)
        chosen = parse_choice(text, clock.options)
        if chosen is None:
            ids = ", ".join(o.id for o in clock.options)
            raise UsageError(
                f"{self.script_name}:{number}: {_short(text)} is not an option of {clock.id!r} "
                f"(1 to {len(clock.options)}, or one of: {ids})"
            )
        self.out.write(f"Your choice: {text}\n")
        return chosen


def _short(text: str, limit: int = 40) -> str:
    """A player's answer as it may be quoted back: stripped, cut short, escaped."""
    text = text.strip()
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


MAX_TRIES = 100
"""Answers in a row that are not options before the game gives up (endless bad input)."""
MAX_SCRIPT = 1_000_000
"""Bytes of a ``--script`` file: choices, one per line, never more (not /dev/zero)."""


def read_script(path: str) -> list[tuple[int, str]]:
    """Choices, one per line; ``#`` starts a comment; blank lines are skipped."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_SCRIPT + 1)
    except OSError as exc:
        raise UsageError(f"--script: cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_SCRIPT:
        raise UsageError(f"--script {path}: more than {MAX_SCRIPT:,} bytes; not a script")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = raw.count(b"\n", 0, exc.start) + 1
        raise UsageError(
            f"{path}:{where}: not valid UTF-8 (byte 0x{raw[exc.start]:02x}); a script is "
            "text, one choice per line"
        ) from None
    if "\0" in text:
        raise UsageError(f"{path}:{text[: text.index(chr(0))].count(chr(10)) + 1}: NUL byte")
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            out.append((number, line))
    return out


def play_game(cs: CompiledScenario, seed: int, player: Player) -> tuple[Row, list[TraceLine]]:
    """Run replication 0 of ``seed`` with ``player`` in the seat; return row and timeline."""
    rep = PlayedReplication(Engine(cs), seed, 0, player, player.actor)
    return rep.run(), rep.lines


def policy_odds(
    cs: CompiledScenario, actor: str, policy: dict[str, str], runs: int, seed: int
) -> tuple[float, tuple[float, float]]:
    """P(meeting) when the actor always makes the choices in ``policy`` (action id ->
    option id; actions not in it are drawn by weight), with its Wilson interval."""

    def fixed(clock: Clock, engine: Replication, drawn: Outcome) -> Outcome:
        want = policy.get(clock.id)
        for o in clock.options:
            if o.id == want:
                return o
        return drawn

    engine = Engine(cs)
    held = sum(PlayedReplication(engine, seed, i, fixed, actor).run().held for i in range(runs))
    return held / runs, wilson(held, runs)
