"""Commands that compare and draw: compare, plot, report."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import UsageError
from ...extras import require
from ...files import check_target, shown, user_path, write_atomic
from ..util import (
    add_backend_options,
    add_command,
    add_engine_option,
    add_format,
    add_sets,
    add_uncertainty_options,
    backend_from_args,
    engine_for_args,
    load_args,
    print_json,
    progress_bar,
    run_count,
    seed_number,
    stderr,
    stdout,
)
from .exact import add_phases_with_exact, check_phases

if TYPE_CHECKING:
    from rich.console import Console

    from ...runs.compare import Comparison

# The library is imported inside each command, so that parsing the command line stays
# cheap; figures need the 'plots' extra, checked before anything is simulated.

SCENARIO_KINDS = ("when", "curve", "outcomes", "paths", "protocol")
RESULT_KINDS = ("sweep", "tornado")


def _pct(p: float) -> str:
    return f"{100 * p:.1f}%"


def _pts(d: float) -> str:
    return f"{100 * d:+.1f}"


def _when(iso: str | None) -> str:
    return datetime.fromisoformat(iso).strftime("%a %d %b %H:%M") if iso else "not reached"


def render_comparison(cmp: Comparison, console: Console) -> None:
    """The comparison as tables that fit in 80 columns."""
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    from ...output.terminal import MAX_DAY_ROWS, first_rows

    b, v = cmp.base, cmp.variant
    lo, hi = cmp.diff_ci95
    what = ", ".join(v.overrides) if v.overrides else v.scenario
    head = Text.assemble(
        (f"{b.title}\n", "bold"),
        f"baseline vs variant ({what})\n",
        f"{b.runs:,} paired runs (common random numbers), seed {b.seed}\n",
        "P(meeting): ",
        (f"{_pct(b.p_meeting)} → {_pct(v.p_meeting)}", "bold"),
        "\nchange: ",
        (f"{_pts(cmp.diff)} points", "bold green" if cmp.diff >= 0 else "bold red"),
        f"  95% CI {_pts(lo)} to {_pts(hi)}",
    )
    console.print(Panel(head, expand=False))
    p = cmp.pairs
    console.print(
        f"Pairs: both held {p.both:,}; only baseline {p.base_only:,}; "
        f"only variant {p.variant_only:,}; neither {p.neither:,}.",
        soft_wrap=False,
    )

    when = Table(title="Held by the end of each day", title_justify="left")
    when.add_column("day")
    when.add_column("baseline", justify="right")
    when.add_column("variant", justify="right")
    when.add_column("change", justify="right")
    days = list(cmp.by_end_of_day().items())
    if len(days) > MAX_DAY_ROWS:  # a long horizon: the days either chance changed
        days = [(d, r) for i, (d, r) in enumerate(days)
                if i in (0, len(days) - 1) or r != days[i - 1][1]]  # fmt: skip
    for day, row in first_rows(days, when):
        label = datetime.fromisoformat(day).strftime("%a %d %b")
        when.add_row(label, _pct(row["base"]), _pct(row["variant"]), _pts(row["diff"]))
    console.print(when)
    shift = cmp.median_shift_h()
    console.print(f"Median time of meeting (venue-local): {_when(b.median_time)} → "
                  f"{_when(v.median_time)}"
                  + (f" ({shift:+.1f} h)" if shift is not None else ""))  # fmt: skip

    out = Table(title="Outcomes (runs)", title_justify="left")
    out.add_column("outcome")
    out.add_column("baseline", justify="right")
    out.add_column("variant", justify="right")
    for name in dict.fromkeys([*b.outcomes, *v.outcomes]):
        out.add_row(name, f"{b.outcomes.get(name, 0):,}", f"{v.outcomes.get(name, 0):,}")
    console.print(out)

    names = list(dict.fromkeys([*b.blocking, *v.blocking]))
    if names:
        changes = cmp.blocking_changes()
        blk = Table(title="Preconditions standing in failed runs", title_justify="left")
        blk.add_column("precondition")
        blk.add_column("baseline", justify="right")
        blk.add_column("variant", justify="right")
        blk.add_column("change")
        for pid in names:
            note = ("stops blocking" if pid in changes["stop"]
                    else "starts blocking" if pid in changes["start"] else "")  # fmt: skip
            blk.add_row(pid, f"{b.blocking.get(pid, 0):,}", f"{v.blocking.get(pid, 0):,}", note)
        console.print(blk)


def cmd_compare(args: argparse.Namespace) -> int:
    """``negosim compare``: baseline against variant over paired runs (common random numbers)."""
    from ...runs.compare import compare

    check_phases(args, "compare")
    if args.exact:
        return _compare_exact(args)
    if args.plot:
        require("plots", "--plot")
        check_target(args.plot)
    base = load_args(_no_sets(args), args.file)
    variant_path = args.other or args.file
    variant = load_args(args, variant_path)
    if not args.other and not args.sets:
        stderr().print("note: no --set and no OTHER_FILE: the variant is the baseline itself")
    if args.draws is not None and not args.uncertainty:
        raise UsageError("negosim compare: --draws goes with --uncertainty")
    engine = engine_for_args(args, base)
    if engine == "batch":
        engine = engine_for_args(args, variant)
    if args.uncertainty:
        return _compare_uncertain(args, base, variant, engine)
    with progress_bar(args.runs, "comparing") as advance, backend_from_args(args) as backend:
        cmp = compare(
            base,
            variant,
            runs=args.runs,
            seed=args.seed,
            progress=advance,
            base_overrides=args.base_sets,
            variant_overrides=args.sets,
            backend=backend,
            engine=engine,
        )
    if args.plot:
        from ...output import plots

        plots.save(plots.compare_bars(cmp), args.plot)
    if args.format == "json":
        print_json(cmp.to_json())
    else:
        render_comparison(cmp, stdout())
    return 0


def _compare_uncertain(args: argparse.Namespace, base: Any, variant: Any, engine: str) -> int:
    """``compare --uncertainty``: both sides over the same parameter draws."""
    from ...runs.uncertainty import DEFAULT_DRAWS, compare_uncertain

    with progress_bar(args.runs, "comparing") as advance, backend_from_args(args) as backend:
        uc = compare_uncertain(
            base, variant, runs=args.runs, seed=args.seed, draws=args.draws or DEFAULT_DRAWS,
            progress=advance, base_overrides=args.base_sets, variant_overrides=args.sets,
            backend=backend, engine=engine,
        )  # fmt: skip
    if args.plot:
        from ...output import plots

        plots.save(plots.compare_bars(uc.comparison), args.plot)
    if args.format == "json":
        print_json(uc.to_json())
        return 0
    render_comparison(uc.comparison, stdout())
    if uc.params:
        data = uc.to_json()
        b, v, d = data["p_base_band"], data["p_variant_band"], data["diff_band"]
        stdout().print(
            f"Parameter uncertainty ({', '.join(uc.params)}): {uc.draws:,} draws × "
            f"{uc.runs_per_draw:,} paired runs; intervals above are nested-design intervals.\n"
            f"Across draws (5th–95th): baseline {_pct(b[0])} – {_pct(b[1])}, variant "
            f"{_pct(v[0])} – {_pct(v[1])}, change {_pts(d[0])} to {_pts(d[1])} points.",
            markup=False, highlight=False,
        )  # fmt: skip
    return 0


def _compare_exact(args: argparse.Namespace) -> int:
    """``compare --exact``: both scenarios analysed exactly, no runs, no noise."""
    require("exact", "--exact")  # before importing what needs scipy
    from ...analysis.ctmc import NotAnalyzable
    from ...analysis.exactruns import exact_compare
    from ...output.exact import render_exact_comparison
    from .exact import refused

    if args.plot:
        raise UsageError("negosim compare: --plot draws simulated runs; not with --exact")
    base = load_args(_no_sets(args), args.file)
    variant_path = args.other or args.file
    variant = load_args(args, variant_path)
    try:
        result = exact_compare(base, variant, args.phases)
    except NotAnalyzable as exc:
        raise refused("compare", args.file, exc) from None
    if args.format == "json":
        print_json(result)
    else:
        render_exact_comparison(result, stdout())
    return 0


def _no_sets(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "sets": args.base_sets})


def _require_extras(*files: str | None) -> None:
    """Figures need the 'plots' extra, Parquet files the 'parquet' one: said up front."""
    require("plots")
    if any(f and Path(f).suffix.lower() == ".parquet" for f in files):
        require("parquet", "reading Parquet")


def _is_results(path: str) -> bool:
    return Path(path).suffix.lower() in (".csv", ".parquet", ".json")


def _simulate(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """(compiled scenario, estimate, UncertainEstimate or None with --uncertainty)."""
    from ...runs.runner import simulate
    from ...runs.uncertainty import DEFAULT_DRAWS, simulate_uncertain

    if args.draws is not None and not args.uncertainty:
        raise UsageError(f"negosim {args.command}: --draws goes with --uncertainty")
    cs = load_args(args)
    with (
        progress_bar(args.runs, f"{cs.id}: simulating") as advance,
        backend_from_args(args) as backend,
    ):
        if args.uncertainty:
            draws = args.draws or DEFAULT_DRAWS
            u = simulate_uncertain(cs, args.runs, args.seed, draws, progress=advance,
                                   overrides=args.sets, backend=backend)  # fmt: skip
            return cs, u.estimate, u
        est = simulate(cs, runs=args.runs, seed=args.seed, progress=advance,
                       overrides=args.sets, backend=backend)  # fmt: skip
    return cs, est, None


def _wrote(path: str, what: str, est: Any = None) -> None:
    """The one-line result of a command whose real output is a file."""
    line = f"{shown(user_path(path))}: {shown(what)}"
    if est is not None:
        low, high = est.ci95
        line += (f" (P(meeting) = {_pct(est.p_meeting)}, 95% CI {_pct(low)} – {_pct(high)}, "
                 f"{est.runs:,} runs)")  # fmt: skip
    stdout().print(line, markup=False, highlight=False, soft_wrap=True)


def cmd_plot(args: argparse.Namespace) -> int:
    """``negosim plot``: draw one ``--kind`` of figure of a scenario or of sweep results."""
    _require_extras(args.file)
    check_target(args.output)  # before the work
    check_phases(args, "plot")
    from ...output import diagram, plots

    est = None
    if _is_results(args.file):
        if args.exact:
            raise UsageError("negosim plot: --exact goes with a scenario file, not results")
        kind = args.kind or "sweep"
        if kind not in RESULT_KINDS:
            raise UsageError(
                f"{args.file}: a results file takes --kind {' or '.join(RESULT_KINDS)}"
            )
        rows = plots.read_rows(args.file)
        if kind == "sweep":
            rows = plots.ok_rows(rows)
        fig = plots.sweep(rows, args.file) if kind == "sweep" else plots.tornado(rows, args.file)
    else:
        kind = args.kind or "curve"
        if kind not in SCENARIO_KINDS:
            raise UsageError(
                f"{args.file}: a scenario takes --kind {', '.join(SCENARIO_KINDS)} "
                f"(--kind {kind} is for sweep results: .csv, .parquet or .json)"
            )
        if args.exact and kind != "curve":
            raise UsageError(f"negosim plot: --exact draws --kind curve only, not --kind {kind}")
        if args.exact:
            from .exact import exact_curve

            cs = load_args(args)
            points = exact_curve(cs, args.file, "plot", True, args.phases)
            label = (f"P(held by t), {args.phases}-phase fits" if args.phases
                     else "exact P(held by t)")  # fmt: skip
            fig = plots.curve(None, cs.start.astimezone(cs.tz), cs.horizon, points, label)
        elif kind == "protocol" and args.no_runs:
            cs = load_args(args)
            fig = diagram.state_diagram(diagram.shape(cs), title=cs.model.title)
        else:
            cs, est, u = _simulate(args)
            if kind == "when":
                fig = plots.when(est)
            elif kind == "curve" and u is not None:
                fig = plots.curve_band(est, cs.start.astimezone(cs.tz), cs.horizon, u)
            elif kind == "curve":
                fig = plots.curve(est, cs.start.astimezone(cs.tz), cs.horizon)
            elif kind == "outcomes":
                fig = plots.outcomes(est, {cs.states[i] for i in cs.success})
            elif kind == "paths":
                fig = diagram.path_flow(diagram.shape(cs), est.step_transitions, est.runs)
            else:
                fig = diagram.state_diagram(diagram.shape(cs), est.step_transitions, est.runs)
    plots.save(fig, args.output)
    _wrote(args.output, f"--kind {kind} of {args.file}", est)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """``negosim report``: write a self-contained HTML report of a scenario or sweep results."""
    _require_extras(args.file, args.indices)
    check_target(args.output)  # before the work
    from ...output import htmlreport, plots

    if _is_results(args.file):
        rows = plots.ok_rows(plots.read_rows(args.file))
        indices = plots.read_rows(args.indices) if args.indices else plots.indices_rows(args.file)
        html = htmlreport.sweep_report(rows, args.file, indices, args.indices or "")
        est = None
    else:
        if args.indices:
            raise UsageError("--indices goes with a sweep results file, not a scenario")
        from .exact import exact_curve

        cs, est, u = _simulate(args)
        html = htmlreport.scenario_report(cs, est, u, exact_curve(cs, args.file, "report", False))
    write_atomic(args.output, html)
    _wrote(args.output, f"HTML report of {args.file}", est)
    return 0


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", type=run_count, default=10_000, help="replications (default: 10000)")
    p.add_argument("--seed", type=seed_number, default=0, help="random seed (default: 0)")
    add_uncertainty_options(p)


def register(sub: Any) -> None:
    """Add the ``compare``, ``plot`` and ``report`` subcommands to ``sub``."""
    cmp = add_command(
        sub,
        "compare",
        "What if? Baseline against variant, common random numbers.",
        """  negosim compare scenarios/munich.yaml --set p_us_formal_request=0.6
  negosim compare scenarios/munich.yaml other.yaml --format json
  negosim compare scenarios/munich.yaml --set p_china_declines=0.1 --plot what-if.png
  negosim compare worked.yaml --set actions.answer.delay.mean=12h --exact""",
        cmd_compare,
    )
    cmp.add_argument("file", help="baseline scenario YAML file")
    cmp.add_argument("other", nargs="?", help="variant scenario (default: FILE with --set)")
    _add_run_options(cmp)
    add_backend_options(cmp, default_workers=1)
    add_engine_option(cmp, "batch")
    add_sets(cmp)
    cmp.add_argument(
        "--base-set",
        dest="base_sets",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a value of the baseline only; repeatable",
    )
    cmp.add_argument("--plot", metavar="OUT", help="also draw P(held by end of day), .png or .svg")
    cmp.add_argument(
        "--exact",
        action="store_true",
        help="analyse both exactly instead of simulating (every delay must be exponential; "
        "see negosim analyze): differences without sampling noise",
    )
    add_phases_with_exact(cmp)
    add_format(cmp)

    pl = add_command(
        sub,
        "plot",
        "Draw a figure of an estimate or of sweep results (PNG or SVG).",
        """  negosim plot scenarios/munich.yaml --kind curve -o held-by-t.png
  negosim plot scenarios/munich.yaml --kind protocol -o protocol.svg
  negosim plot sweep.csv --kind sweep -o sweep.png   # one parameter: line; two: heatmap""",
        cmd_plot,
    )
    pl.add_argument("file", help="scenario YAML file, or sweep results (.csv, .parquet or .json)")
    pl.add_argument(
        "--kind",
        choices=SCENARIO_KINDS + RESULT_KINDS,
        help="when (by day and part of day), curve (P(held by t), the default), outcomes "
        "(and blocking preconditions), paths (flow through the protocol), protocol (state "
        "diagram weighted by runs); for results files: sweep (default) or tornado",
    )
    pl.add_argument("-o", "--output", required=True, metavar="OUT", help="output .png or .svg")
    _add_run_options(pl)
    add_backend_options(pl, default_workers=1)
    pl.add_argument(
        "--no-runs",
        action="store_true",
        help="with --kind protocol: draw the declared protocol without simulating",
    )
    pl.add_argument(
        "--exact",
        action="store_true",
        help="with --kind curve: draw the exact P(held by t) (negosim analyze) instead of "
        "simulating; every delay must be exponential",
    )
    add_phases_with_exact(pl)
    add_sets(pl)

    rp = add_command(
        sub,
        "report",
        "Write a self-contained HTML report (opens offline).",
        """  negosim report scenarios/munich.yaml -o munich.html
  negosim report sweep.csv --indices sobol.csv -o sweep.html""",
        cmd_report,
    )
    rp.add_argument("file", help="scenario YAML file, or sweep results (.csv, .parquet or .json)")
    rp.add_argument("-o", "--output", required=True, metavar="OUT", help="output .html file")
    _add_run_options(rp)
    add_backend_options(rp, default_workers=1)
    rp.add_argument(
        "--indices",
        metavar="FILE",
        help="sensitivity indices (.csv or .json) for a sweep report "
        "(default: from the sweep's manifest)",
    )
    add_sets(rp)
