"""Exact analysis commands: analyze, check-engines."""

from __future__ import annotations

import argparse
from typing import Any

from ...errors import UsageError
from ...files import shown
from ..util import (
    add_command,
    add_format,
    add_sets,
    load_args,
    positive,
    print_json,
    run_count,
    seed_number,
    stdout,
)

MAX_PHASES = 16
"""Largest ``--phases``."""
STATES_CAP = 10_000_000
"""Largest ``--max-states`` (memory grows with the states and their transitions)."""


def state_limit(text: str) -> int:
    """argparse type: ``--max-states``, 1 to :data:`STATES_CAP`."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text[:40]!r}") from None
    if not 1 <= value <= STATES_CAP:
        raise argparse.ArgumentTypeError(f"must be 1 to {STATES_CAP:,}, found {text[:40]}")
    return value


def phase_count(text: str) -> int:
    """argparse type: phases of a phase-type fit, 1 to :data:`MAX_PHASES`."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text[:40]!r}") from None
    if not 1 <= value <= MAX_PHASES:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_PHASES}, found {text}")
    return value


def refused(command: str, path: str, exc: Exception) -> UsageError:
    """A one-line refusal naming the command, the file and the reason."""
    return UsageError(f"negosim {command}: {shown(path)}: {exc}")


def cmd_analyze(args: argparse.Namespace) -> int:
    """``negosim analyze``: P(meeting) and its timing without sampling noise."""
    from ...extras import require

    require("exact")  # before importing what needs scipy
    from ...analysis.ctmc import NotAnalyzable, analyze
    from ...output.exact import render_analysis

    cs = load_args(args)
    try:
        a = analyze(cs, phases=args.phases, max_states=args.max_states)
    except NotAnalyzable as exc:
        raise refused("analyze", args.file, exc) from None
    if args.format == "json":
        print_json(a.to_json())
    else:
        render_analysis(a, stdout())
    return 0


def cmd_check_engines(args: argparse.Namespace) -> int:
    """``negosim check-engines``: exact answers against the simulation engine."""
    from ...extras import require

    require("exact")  # before importing what needs scipy
    from ...analysis.check import check, exponential_sets
    from ...analysis.ctmc import NotAnalyzable
    from ...compiler.loader import load
    from ...output.exact import render_check
    from ...scenario.overrides import parse_set

    sets = [parse_set(s) for s in args.sets]
    worst = 0.0
    report: list[dict[str, Any]] = []
    for path in args.files:
        cs = load(path, sets)
        if not args.as_is:
            cs = load(path, sets + exponential_sets(cs))
        try:
            comps = check(cs, args.runs, args.seed, args.workers, args.phases)
        except NotAnalyzable as exc:
            raise refused("check-engines", path, exc) from None
        worst = max([worst] + [abs(c.z) for c in comps])
        if args.format == "json":
            report.append(
                {
                    "file": path,
                    "runs": args.runs,
                    "comparisons": [
                        {"what": c.what, "exact": c.exact, "simulated": c.simulated, "z": c.z}
                        for c in comps
                    ],
                }
            )
        else:
            render_check(shown(path), comps, args.z, stdout())
    if args.format == "json":
        print_json({"max_abs_z": worst, "limit": args.z, "files": report})
    else:
        verdict = "agree" if worst < args.z else "DISAGREE"
        stdout().print(f"largest |z| = {worst:.2f}: engines {verdict} (limit {args.z:g})")
    return 0 if worst < args.z else 3


def register(sub: Any) -> None:
    """Add the ``analyze`` and ``check-engines`` commands."""
    an = add_command(
        sub,
        "analyze",
        "Exact P(meeting) and its timing, without sampling noise (Markov chain analysis).",
        """  negosim analyze tutorial.yaml                 # every delay exponential: exact
  negosim analyze scenarios/munich.yaml --phases 8 # phase-type fits of other delays
  negosim analyze scenarios/munich.yaml --phases 4 --format json""",
        cmd_analyze,
    )
    an.add_argument("file", help="scenario YAML file")
    an.add_argument(
        "--phases",
        type=phase_count,
        metavar="K",
        help="fit lognormal, triangular and uniform delays by phase-type distributions of at "
        f"most K phases (1-{MAX_PHASES}); without it every delay must be exponential",
    )
    an.add_argument(
        "--max-states",
        type=state_limit,
        default=100_000,
        metavar="N",
        help=f"refuse a chain of more than N states (default: 100000; at most {STATES_CAP:,})",
    )
    add_sets(an)
    add_format(an)

    ce = add_command(
        sub,
        "check-engines",
        "Check the simulation engine against exact answers (z-scores; exit 3 if they disagree).",
        """  negosim check-engines scenarios/*.yaml --runs 100000 --workers 2
  negosim check-engines worked.yaml --as-is --runs 1000000""",
        cmd_check_engines,
    )
    ce.add_argument("files", nargs="+", metavar="FILE", help="scenario YAML files")
    ce.add_argument(
        "--runs", type=run_count, default=100_000, help="replications per file (default: 100000)"
    )
    ce.add_argument("--seed", type=seed_number, default=0, help="random seed (default: 0)")
    ce.add_argument("--workers", type=positive, default=1, help="worker processes (default: 1)")
    ce.add_argument(
        "--as-is",
        action="store_true",
        help="check each scenario as written (it must qualify) instead of its all-exponential "
        "variant (every action delay made exponential with the same mean)",
    )
    ce.add_argument(
        "--phases", type=phase_count, metavar="K", help="compare with a K-phase analysis"
    )
    ce.add_argument(
        "--z",
        type=float,
        default=4.0,
        help="largest |z| accepted (default: 4; |z| >= 4 by chance about once in 16,000)",
    )
    add_sets(ce)
    add_format(ce)


CURVE_POINTS = 241
"""Points of an exact P(held by t) curve (plots and reports)."""


def exact_curve(
    cs: Any, path: str, command: str, required: bool, phases: int | None = None
) -> list[tuple[float, float]] | None:
    """The exact P(held by t) curve of ``cs``; None if it does not qualify and not ``required``."""
    from ...extras import MissingExtra, require

    try:
        require("exact", "--exact")
    except MissingExtra:
        if required:
            raise
        return None
    from ...analysis.ctmc import NotAnalyzable, analyze

    try:
        return analyze(cs, phases, curve_points=CURVE_POINTS).curve
    except NotAnalyzable as exc:
        if not required:
            return None
        raise refused(command, path, exc) from None


def add_phases_with_exact(p: argparse.ArgumentParser) -> None:
    """``--phases K``, which goes with ``--exact`` (phase-type fits of other delays)."""
    p.add_argument(
        "--phases",
        type=phase_count,
        metavar="K",
        help="with --exact: fit lognormal, triangular and uniform delays by K-phase "
        "phase-type distributions (see negosim analyze)",
    )


def check_phases(args: argparse.Namespace, command: str) -> None:
    """``--phases`` without ``--exact`` is a usage error."""
    if getattr(args, "phases", None) is not None and not args.exact:
        raise UsageError(f"negosim {command}: --phases goes with --exact")
