"""Calibration command: fit shared parameters to the resolved case library."""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
from typing import Any

from ...errors import UsageError
from ..util import (
    add_command,
    add_engine_option,
    add_format,
    engine_for_args,
    print_json,
    progress_bar,
    run_count,
    seed_number,
    stderr,
    stdout,
)

MAX_GRID = 41


def fitted_param(text: str) -> tuple[str, float | None, float | None]:
    """argparse type: ``NAME`` or ``NAME=LOW:HIGH``."""
    name, sep, rng = text.partition("=")
    name = name.strip()
    if not name.replace("_", "").isalnum() or not name[:1].isalpha():
        raise argparse.ArgumentTypeError(f"expected NAME or NAME=LOW:HIGH, found {text!r}")
    if not sep:
        return name, None, None
    low, colon, high = rng.partition(":")
    try:
        lo, hi = float(low), float(high)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected NAME=LOW:HIGH with numbers, found {text!r}"
        ) from None
    if not colon or not lo < hi:
        raise argparse.ArgumentTypeError(f"expected LOW < HIGH in {text!r}")
    return name, lo, hi


def grid_size(text: str) -> int:
    """argparse type: grid points per parameter, 3 to :data:`MAX_GRID`."""
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None
    if not 3 <= k <= MAX_GRID:
        raise argparse.ArgumentTypeError(f"must be 3 to {MAX_GRID}, found {k}")
    return k


def cmd_calibrate(args: argparse.Namespace) -> int:
    """``negosim calibrate``: fit the named parameters to the resolved cases."""
    from ...compiler.loader import load
    from ...output.calibration import calibrated_yaml, render_calibration
    from ...runs.backtest import load_outcomes, scenario_files
    from ...runs.calibrate import Case, calibrate

    resolutions = load_outcomes(args.outcomes)
    cases: list[Case] = []
    for f in scenario_files(args.files):
        cs = load(f)
        res = resolutions.get(cs.id) or resolutions.get(f.stem)
        if res is None:
            stderr().print(f"{f}: no resolution for case {cs.id!r}; left out", markup=False)
            continue
        cases.append(Case(cs.id, cs, res.met, _date(res.date)))
        engine_for_args(args, cs, str(f))  # a note if a case falls back to simpy
    fitted = _fitted(args.param, cases)
    points = sum(
        args.grid ** sum(1 for f in fitted if f.name in {p.name for p in c.scenario.parameters})
        for c in cases
    )
    what = f"calibrating {len(fitted)} parameter(s) on {len(cases)} cases"
    with progress_bar(points, what) as adv:
        result = calibrate(cases, fitted, runs=args.runs, seed=args.seed,
                           grid_points=args.grid, progress=adv, engine=args.engine)  # fmt: skip
    command = " ".join(shlex.quote(a) for a in args.argv)
    result.extra["command"] = command.strip()
    result.extra["date"] = dt.date.today().isoformat()
    if args.write:
        from ...files import write_atomic

        text = calibrated_yaml(result, args.extends)
        write_atomic(args.write, text)
        stderr().print(f"wrote the fitted values to {args.write}", markup=False)
    if args.format == "json":
        print_json(result.to_dict())
    else:
        stdout().print(render_calibration(result))
    return 0


def _date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _fitted(specs: list[tuple[str, float | None, float | None]], cases: list[Any]) -> list[Any]:
    """The parameters to fit with their ranges: given, else the declared range."""
    from ...runs.calibrate import Fitted

    if not cases:
        raise UsageError("negosim calibrate: no scenario has a resolution; nothing to fit")
    out = []
    for name, low, high in specs:
        declared = [p for c in cases for p in c.scenario.parameters if p.name == name]
        if not declared:
            raise UsageError(f"--param {name}: no case declares a parameter {name!r}")
        if low is None or high is None:
            p = declared[0]
            if p.low is None or p.high is None:
                raise UsageError(
                    f"--param {name}: its range is not bounded; give it as {name}=LOW:HIGH"
                )
            low, high = p.low, p.high
        out.append(Fitted(name, float(low), float(high)))
    return out


def register(sub: Any) -> None:
    """Add ``calibrate`` to the ``negosim`` command line."""
    p = add_command(
        sub,
        "calibrate",
        "Fit shared parameters to what happened in resolved cases; leave-one-out scores.",
        "  negosim calibrate scenarios --outcomes resolutions --param yes_if_noncommittal \\\n"
        "      --param yes_if_no_plans --write scenarios/bases/calibrated.yaml",
        cmd_calibrate,
    )
    p.add_argument("files", nargs="+", metavar="FILE|DIR", help="scenario files or folders")
    p.add_argument("--outcomes", required=True, metavar="FILE|DIR",
                   help="resolution file or folder (resolutions/)")  # fmt: skip
    p.add_argument("--param", type=fitted_param, action="append", required=True,
                   metavar="NAME[=LOW:HIGH]",
                   help="a parameter to fit, over its declared range or LOW:HIGH; "
                   "repeatable")  # fmt: skip
    p.add_argument("--grid", type=grid_size, default=9,
                   help="grid points per parameter (default: 9)")  # fmt: skip
    p.add_argument("--runs", type=run_count, default=2_000,
                   help="replications per case and grid point (default: 2000)")  # fmt: skip
    p.add_argument("--seed", type=seed_number, default=0, help="random seed (default: 0)")
    p.add_argument("--write", metavar="FILE",
                   help="write the fitted values, with their provenance, "
                   "as a base file")  # fmt: skip
    p.add_argument("--extends", default="stances.yaml", metavar="PATH",
                   help="the base the written file extends (default: stances.yaml)")  # fmt: skip
    add_engine_option(p, "batch")
    add_format(p)
