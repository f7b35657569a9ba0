"""Commands that face history: backtest (forecasts scored against resolved cases)."""

from __future__ import annotations

import argparse
from typing import Any

from ...errors import UsageError
from ...extras import require
from ...files import check_target, shown, user_path, write_atomic
from ..util import (
    add_backend_options,
    add_command,
    add_engine_option,
    add_format,
    add_uncertainty_options,
    backend_from_args,
    positive,
    print_json,
    progress_bar,
    run_count,
    say,
    seed_number,
    stdout,
)

MAX_BINS = 20


def bin_count(text: str) -> int:
    """argparse type: reliability bins, 1 to MAX_BINS."""
    value = positive(text)
    if value > MAX_BINS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_BINS}, found {text}")
    return value


def cmd_backtest(args: argparse.Namespace) -> int:
    """``negosim backtest``: run every resolved case and score it against what happened."""
    from ...runs.backtest import backtest, load_outcomes
    from ...runs.uncertainty import DEFAULT_DRAWS

    if args.draws is not None and not args.uncertainty:
        raise UsageError("negosim backtest: --draws goes with --uncertainty")
    for target in (args.plot, args.report):
        if target:
            require("plots", "--plot" if target == args.plot else "--report")
            check_target(target)
    if args.plot and not args.plot.lower().endswith((".png", ".svg")):
        raise UsageError(f"--plot {args.plot}: the output must end in .png or .svg")
    resolutions = load_outcomes(args.outcomes)
    with backend_from_args(args) as backend, progress_bar(None, "backtest") as advance:
        bt = backtest(
            args.files or ["scenarios"], resolutions, runs=args.runs, seed=args.seed,
            uncertainty=args.uncertainty, draws=args.draws or DEFAULT_DRAWS, bins=args.bins,
            backend=backend, progress=advance, note=say, engine=args.engine,
        )  # fmt: skip
    if args.plot:
        from ...output import plots

        plots.save(plots.reliability(bt), args.plot)
        say(f"{shown(user_path(args.plot))}: reliability diagram")
    if args.report:
        from ...output import htmlreport

        write_atomic(args.report, htmlreport.backtest_report(bt))
        say(f"{shown(user_path(args.report))}: HTML report of the backtest")
    if args.format == "json":
        print_json(bt.to_json())
    else:
        from ...output.backtestview import render_backtest

        render_backtest(bt, stdout())
    return 0


def register(sub: Any) -> None:
    """Add the ``backtest`` command."""
    bt = add_command(
        sub,
        "backtest",
        "Score forecasts against resolved cases: Brier, log score, reliability.",
        """  negosim backtest scenarios/ --outcomes resolutions/
  negosim backtest scenarios/ --outcomes resolutions/ --format json
  negosim backtest scenarios/ --outcomes resolutions/ --plot reliability.png --report bt.html
  negosim backtest scenarios/munich.yaml --outcomes resolutions/munich-2023.yaml""",
        cmd_backtest,
    )
    bt.add_argument(
        "files",
        nargs="*",
        metavar="FILE|DIR",
        help="scenario files, or directories of them (default: scenarios)",
    )
    bt.add_argument(
        "--outcomes",
        required=True,
        metavar="FILE|DIR",
        help="a resolution file, or a directory of them (resolutions/*.yaml); a scenario is "
        "matched by its id or its file's stem",
    )
    bt.add_argument("--runs", type=run_count, default=10_000,
                    help="replications per case (default: 10000)")  # fmt: skip
    bt.add_argument("--seed", type=seed_number, default=0, help="random seed (default: 0)")
    bt.add_argument("--bins", type=bin_count, default=5,
                    help="equal-width bins of the reliability table (default: 5)")  # fmt: skip
    bt.add_argument("--plot", metavar="OUT", help="also draw the reliability diagram, .png or .svg")
    bt.add_argument("--report", metavar="OUT", help="also write an HTML report (.html)")
    add_uncertainty_options(bt)
    add_backend_options(bt, default_workers=1)
    add_engine_option(bt, "batch")
    add_format(bt)
