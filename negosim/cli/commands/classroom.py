"""Classroom commands: play (a student takes one actor's seat), new, explain."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ...errors import UsageError
from ..util import (
    VisibleWriter,
    add_command,
    add_sets,
    load_args,
    run_count,
    seed_number,
    stdout,
    write_text,
)


def _read_line(prompt: str) -> str:
    try:
        return input(prompt)
    except UnicodeDecodeError:
        return ""  # undecodable bytes are bad input like any other: ask again


# The library is imported inside each command: parsing the command line stays cheap.


def cmd_play(args: argparse.Namespace) -> int:
    """``negosim play``: the student plays ``--as`` in one seeded game, then sees how they did.

    After the game: its trace, then the player's result beside the simulated
    actor's P(meeting) over ``--runs`` runs, and the odds of always choosing as they did.
    """
    from ...classroom.play import (
        GameEnded,
        Player,
        check_actor,
        local_time,
        play_game,
        policy_odds,
        read_script,
    )
    from ...output.terminal import render_trace
    from ...runs.runner import simulate

    cs = load_args(args)
    check_actor(cs, args.actor)
    script = read_script(args.script) if args.script else None
    out: Any = VisibleWriter(sys.stdout)
    me = cs.model.actors[args.actor]
    out.write(
        f"{cs.model.title}\nYou play {me.name}. Seed {args.seed}: the same seed and the same "
        "choices give the same game.\nAt each of your decisions, type the number or the id of "
        "an option. Ctrl-D or Ctrl-C ends the game.\n"
    )
    player = Player(cs, args.actor, out, _read_line, script, args.script or "")
    try:
        row, lines = play_game(cs, args.seed, player)
    except GameEnded as exc:
        out.write(
            f"\nGame ended before the outcome ({exc}) after {len(player.choices)} "
            "choice(s). Replay with the same --seed to continue from the start.\n"
        )
        return 0
    except KeyboardInterrupt:
        out.write("\nGame interrupted (Ctrl-C).\n")
        out.flush()
        return 130
    out.write("\n=== What happened ===\n")
    out.flush()
    console = stdout()
    render_trace(cs, row, lines, args.seed, console)
    if row.held:
        mine = f"you got the meeting, held {local_time(cs, row.time or 0.0)}"
    elif row.outcome == "censored":
        mine = "no outcome before the question closed"
    else:
        mine = f"the talks ended in {row.outcome!r} ({local_time(cs, row.time or 0.0)})"
    est = simulate(cs, runs=args.runs, seed=args.seed)
    low, high = est.ci95
    out.write(
        f"\n=== How you did ===\nYour result: {mine}.\n"
        f"The simulated {me.short or args.actor} in your seat gets the meeting in "
        f"{100 * est.p_meeting:.1f}% of {args.runs:,} runs (95% CI {100 * low:.1f}–"
        f"{100 * high:.1f}%).\n"
    )
    policy = {action: option for _, action, option in player.choices}
    if not policy:
        out.write(
            "You had no decision to make in this game: the others and the clock decided "
            "it before your turn came. Try another --seed.\n"
        )
    else:
        p, (plow, phigh) = policy_odds(cs, args.actor, policy, args.runs, args.seed)
        rule = ", ".join(f"{a} -> {o}" for a, o in policy.items())
        out.write(
            f"Always choosing as you did ({rule}) gets it in {100 * p:.1f}% "
            f"(95% CI {100 * plow:.1f}–{100 * phigh:.1f}%).\n"
        )
    out.flush()
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    """``negosim new``: write NAME.yaml, a commented starting scenario (``--force``: overwrite)."""
    from ...classroom.scaffold import scaffold

    path = Path(args.name if args.name.endswith((".yaml", ".yml")) else f"{args.name}.yaml")
    if path.exists() and not args.force:
        raise UsageError(f"{path} exists; choose another name or pass --force to overwrite it")
    path.write_text(scaffold(path.stem), encoding="utf-8")
    stdout().print(
        f"wrote {path}; next: negosim explain {path} && negosim run {path}", markup=False
    )
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """``negosim explain``: print the scenario described in plain language."""
    from ...output.explain import explain

    cs = load_args(args)
    write_text(explain(cs))
    return 0


def register(sub: Any) -> None:
    """Add the ``play``, ``new`` and ``explain`` subcommands to ``sub``."""
    pl = add_command(
        sub,
        "play",
        "Play one actor at its decisions against the simulated others.",
        """  negosim play scenarios/munich.yaml --as us
  negosim play scenarios/munich.yaml --as us --seed 4 --script choices.txt""",
        cmd_play,
    )
    pl.add_argument("file", help="scenario YAML file")
    pl.add_argument("--as", dest="actor", required=True, metavar="ACTOR", help="actor id to play")
    pl.add_argument("--seed", type=seed_number, default=0, help="random seed (default: 0)")
    pl.add_argument(
        "--script",
        metavar="FILE",
        help="read choices from FILE, one per line (number or option id; # comments)",
    )
    pl.add_argument(
        "--runs",
        type=run_count,
        default=2000,
        help="Monte Carlo runs for the comparison at the end (default: 2000)",
    )
    add_sets(pl)

    nw = add_command(
        sub,
        "new",
        "Write a commented starting scenario that validates and runs.",
        """  negosim new my-case            # writes my-case.yaml
  negosim explain my-case.yaml && negosim run my-case.yaml""",
        cmd_new,
    )
    nw.add_argument("name", help="scenario name; writes NAME.yaml in the current directory")
    nw.add_argument("--force", action="store_true", help="overwrite an existing file")

    ex = add_command(
        sub,
        "explain",
        "Describe a scenario in plain language: who, where, when, what.",
        "  negosim explain scenarios/munich.yaml",
        cmd_explain,
    )
    ex.add_argument("file", help="scenario YAML file")
    add_sets(ex)
