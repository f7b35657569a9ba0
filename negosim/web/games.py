"""Played games in the browser: one student against the simulator, or two live.

A game is its case, its seed, its played actors and the list of choices made
so far; nothing else is kept. Its state is worked out by replaying: the
replication runs from the start with the stored choices, and stops at the
first decision nobody has made yet (:class:`Turn`) or at the outcome. The
same seed and the same choices give the same game (as ``negosim play``), so a
player who closes the tab, or a server that restarts, loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..classroom.play import PlayedReplication, local_time, policy_odds, situation
from ..compiler.tables import Clock, CompiledScenario, Outcome
from ..engine.simulation import Engine, Replication, Row, TraceLine
from ..runs.runner import simulate

MAX_CHOICES = 500
"""Decisions in one game, at most (a player who always says "not yet" meets the horizon)."""


class _Pause(Exception):
    """Raised inside the replay at the first decision not made yet."""


class GameCorrupt(Exception):
    """The stored choices do not fit the game (the case file changed under it)."""


@dataclass
class Turn:
    """A decision waiting for its player."""

    actor: str
    clock: str
    text: str
    options: list[tuple[str, str]]  # (id, text)
    drawn: str  # what the simulated seat would do
    situation: str
    time: str


@dataclass
class GameState:
    """Where a game stands after replaying its choices."""

    turn: Turn | None
    lines: list[TraceLine]
    row: Row | None = None
    made: list[dict[str, Any]] = field(default_factory=list)

    @property
    def over(self) -> bool:
        """Whether the game has reached its outcome (no turn left)."""
        return self.turn is None


def replay(cs: CompiledScenario, seed: int, actors: list[str],
           choices: list[dict[str, Any]]) -> GameState:  # fmt: skip
    """Replay ``choices`` (dicts: ``actor``, ``clock``, ``option``); stop at the next turn."""
    pending: list[Turn] = []
    made: list[dict[str, Any]] = []

    def chooser(clock: Clock, engine: Replication, drawn: Outcome) -> Outcome:
        k = len(made)
        if k < len(choices):
            c = choices[k]
            if c["clock"] != clock.id or c["actor"] != clock.actor:
                raise GameCorrupt(f"choice {k + 1} was for {c['clock']!r}, not {clock.id!r}")
            for o in clock.options:
                if o.id == c["option"]:
                    made.append({**c, "drawn": drawn.id, "time": local_time(cs, engine.now())})
                    return o
            raise GameCorrupt(f"choice {k + 1}: {c['option']!r} is not an option of {clock.id!r}")
        assert clock.actor is not None
        pending.append(
            Turn(
                clock.actor,
                clock.id,
                clock.text,
                [(o.id, o.text) for o in clock.options],
                drawn.id,
                situation(cs, clock.actor, clock, engine),
                local_time(cs, engine.now()),
            )
        )
        raise _Pause

    rep = PlayedReplication(Engine(cs), seed, 0, chooser, ",".join(actors))
    try:
        row = rep.run()
    except _Pause:
        return GameState(pending[0], rep.lines, None, made)
    return GameState(None, rep.lines, row, made)


def result_words(cs: CompiledScenario, row: Row) -> str:
    """How the game ended, in a sentence."""
    if row.held:
        return f"the meeting was held, {local_time(cs, row.time or 0.0)}"
    if row.outcome == "censored":
        return "no outcome before the question closed"
    return f"the talks ended in {row.outcome!r} ({local_time(cs, row.time or 0.0)})"


def visible_lines(lines: list[TraceLine], actor: str | None) -> list[TraceLine]:
    """What ``actor``'s side knows: the others' actions, the world's events, its own acts.

    ``None`` (the game is over, or the instructor): everything that fired.
    """
    keep = {"fire", "event", "wait", "end", "arrive", "leave", "available", "unavailable"}
    out = []
    for line in lines:
        if line.kind not in keep:
            continue
        if line.kind == "wait" and actor is not None and line.actor != actor:
            continue  # the other side's "not yet" is not seen: nothing happened
        out.append(line)
    return out


def debrief(cs: CompiledScenario, spec: dict[str, Any], advance: Callable[[int], None]
            ) -> dict[str, Any]:  # fmt: skip
    """The odds beside the game: the simulated seats, and each player's way of playing.

    For each played actor: P(meeting) when it always chooses as its player did
    (its last choice at each action; :func:`negosim.classroom.play.policy_odds`),
    beside P(meeting) of the unchanged scenario over the same runs and seed.
    """
    runs, seed = int(spec["runs"]), int(spec["seed"])
    est = simulate(cs, runs=runs, seed=seed)
    advance(runs // 2)
    out: dict[str, Any] = {
        "runs": runs,
        "seed": seed,
        "p_simulated": est.p_meeting,
        "ci95_simulated": list(est.ci95),
        "players": {},
    }
    for actor in spec["actors"]:
        policy = {c["clock"]: c["option"] for c in spec["choices"] if c["actor"] == actor}
        if policy:
            p, ci = policy_odds(cs, actor, policy, runs, seed)
            out["players"][actor] = {"policy": policy, "p": p, "ci95": list(ci)}
        else:
            out["players"][actor] = {"policy": {}, "p": None, "ci95": None}
    advance(runs - runs // 2)
    return out
