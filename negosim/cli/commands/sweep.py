"""The ``sweep`` command, and the backend options it shares with ``run``."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import UsageError
from ...extras import require
from ...files import shown
from ..util import (
    add_backend_options,
    add_command,
    add_engine_option,
    add_format,
    add_sets,
    backend_from_args,
    engine_for_args,
    positive,
    print_json,
    progress,
    run_count,
    seed_number,
    stderr,
)
from ..util import stdout as out_console
from .exact import add_phases_with_exact, check_phases

if TYPE_CHECKING:
    from ...runs.designs import ParamRange, SweepSpec
    from ...runs.sweeprun import SweepResult

# The library is imported inside the command, so that parsing the command line stays cheap.
MAX_REPLICATIONS = 100_000_000
"""Default of ``--max-replications``: :data:`negosim.runs.designs.MAX_REPLICATIONS`."""
MAX_POINTS = 1_000_000
"""Design points per sweep: :data:`negosim.runs.designs.MAX_POINTS`."""
DESIGNS = ("grid", "lhs", "sobol", "morris")
"""``--design`` choices: :data:`negosim.runs.designs.DESIGNS` (tests/test_extras.py checks)."""


def _spec(args: argparse.Namespace) -> SweepSpec:
    """The sweep asked for: a sweep file's settings, then the command line's on top."""
    from ...compiler.loader import load
    from ...runs.designs import (
        SweepSpec,
        check_samples,
        check_size,
        check_sweep_file,
        is_sweep_file,
        parse_param_option,
        read_sweep_file,
        resolve_params,
        scenario_path,
    )
    from ...scenario.overrides import parse_set
    from ...scenario.yamlsource import load_yaml_file

    doc = load_yaml_file(args.file)
    ranges: dict[str, ParamRange] = {}
    sets = [parse_set(s) for s in args.sets]
    design, samples, runs, seed, crn = "grid", None, 1000, 0, True
    scenario = args.file
    if is_sweep_file(doc):
        if not args.params and args.design is None and not args.sets:
            check_sweep_file(args.file)  # its own problems, located in the file
        sf, _ = read_sweep_file(args.file)
        scenario = str(scenario_path(args.file, sf.scenario))
        design, samples, runs, seed, crn = sf.design, sf.samples, sf.runs, sf.seed, sf.crn
        ranges = dict(sf.params)
        sets = [*sf.set.items(), *sets]
    for text in args.params:
        name, rng = parse_param_option(text)
        ranges[name] = rng
    design = args.design or design
    samples = args.samples if args.samples is not None else samples
    runs = args.runs or runs
    seed = args.seed if args.seed is not None else seed
    crn = crn and not args.no_crn
    if not ranges:
        raise UsageError("name at least one parameter to vary: --param NAME=... (see --help)")
    check_samples(design, samples)
    check_size(design, samples, ranges, runs, args.max_replications)  # before anything is built
    if design != "grid":
        require("sensitivity", f"the {design} design")  # before any point is run
    base = load(scenario, sets)
    params = resolve_params(base, ranges, design)
    return SweepSpec(scenario, params, design, samples, runs, seed, crn, sets, compiled=base)


@contextmanager
def _bars(label: str) -> Iterator[tuple[Any, Any, Any]]:
    with progress() as bar:
        tasks: dict[str, Any] = {}

        def start(points: int, runs: int) -> None:
            tasks["p"] = bar.add_task(f"{label}: points", total=points)
            tasks["r"] = bar.add_task(f"{label}: replications", total=runs)

        def adv(which: str) -> Callable[[int], None]:
            return lambda n: bar.advance(tasks[which], n)

        yield start, adv("p"), adv("r")


def cmd_sweep(args: argparse.Namespace) -> int:
    """``negosim sweep``: estimate P(meeting) at every point of a parameter design.

    Rows are written as points finish (``--out``, resumable with ``--resume``);
    then the rows and the sensitivity indices are printed.
    """
    from ...runs.sweeprun import paths, run_sweep

    check_phases(args, "sweep")
    spec = _spec(args)
    if args.exact:
        return _sweep_exact(args, spec)
    out = args.out
    if out:
        paths(out)  # a bad name, or .parquet without the extra: said before the work starts
    err = stderr()
    engine = args.engine
    if engine == "batch":
        assert spec.compiled is not None  # loaded by _spec
        engine = engine_for_args(args, spec.compiled)
    with backend_from_args(args) as backend, _bars(Path(spec.scenario).stem) as (start, ap, ar):
        try:
            res = run_sweep(
                spec,
                backend,
                out,
                resume=args.resume,
                argv=args.argv,
                on_start=start,
                advance_points=ap,
                advance_runs=ar,
                engine=engine,
            )
        except KeyboardInterrupt:
            if out:
                err.print(
                    f"interrupted: finished points are in {shown(paths(out)[1])}; "
                    "rerun with --resume to complete the sweep",
                    markup=False,
                )
            raise
    _throughput(res)
    if args.format == "json":
        print_json(
            {
                "out": str(res.out) if res.out else None,
                "computed": res.computed,
                "resumed": res.resumed,
                "manifest": res.manifest,
                "rows": res.rows,
                "sensitivity": res.sensitivity,
            }
        )
    else:
        _render(res, spec)
    return 0


def _sweep_exact(args: argparse.Namespace, spec: SweepSpec) -> int:
    """``sweep --exact``: every design point analysed exactly; rows printed, no runs."""
    require("exact", "--exact")  # before importing what needs scipy
    from ...analysis.ctmc import NotAnalyzable
    from ...analysis.exactruns import exact_sweep
    from .exact import refused

    if args.out or args.resume:
        raise UsageError(
            "negosim sweep: --exact prints its rows (use --format json for all of them); "
            "--out and --resume are for simulated sweeps"
        )
    try:
        rows = exact_sweep(spec, args.phases)
    except NotAnalyzable as exc:
        raise refused("sweep", spec.scenario, exc) from None
    if args.format == "json":
        print_json({"exact": True, "rows": rows})
        return 0
    from rich.table import Table

    names = [p.name for p in spec.params]
    table = Table(title=f"{Path(spec.scenario).stem}: {spec.design} sweep, exact")
    table.add_column("point", justify="right")
    for n in names:
        table.add_column(n, justify="right")
    table.add_column("P(meeting)", justify="right")
    table.add_column("states", justify="right")
    for r in rows[:40]:
        if r["status"] == "ok":
            cells = [f"{r['p_meeting']:.6f}", f"{r['states']:,}"]
        else:
            cells = [f"failed: {r['error']}", ""]
        table.add_row(str(r["point"]), *[f"{r[n]:.4g}" for n in names], *cells)
    con = out_console()
    con.print(table)
    if len(rows) > 40:
        con.print(f"… {len(rows) - 40} more rows: --format json has all")
    if spec.design != "grid":
        con.print("sensitivity indices are not computed with --exact; the rows are exact")
    return 0


def _throughput(res: SweepResult) -> None:
    err = stderr()
    where = f" -> {shown(res.out)}" if res.out else ""
    msg = f"{len(res.rows)} points ({res.computed} computed"
    msg += f", {res.resumed} from the partial file" if res.resumed else ""
    msg += f", {len(res.failures)} failed)" if res.failures else ")"
    if res.elapsed_s > 0 and res.computed:
        msg += (
            f"; {res.replications:,} replications in {res.elapsed_s:.1f} s: "
            f"{res.replications / res.elapsed_s:,.0f} runs/s, "
            f"{res.elapsed_s / res.computed:.3f} s per point"
        )
    err.print(msg + where, markup=False, soft_wrap=True)


def _render(res: SweepResult, spec: SweepSpec, limit: int = 40) -> None:
    from rich.table import Table

    con = out_console()
    names = [p.name for p in spec.params]
    table = Table(title=f"{res.manifest['scenario']['id']}: {spec.design} sweep, {spec.runs} runs")
    table.add_column("point", justify="right")
    for n in names:
        table.add_column(n, justify="right")
    for c in ("P(meeting)", "95% CI", "median time held", "status"):
        table.add_column(c)
    for r in res.rows[:limit]:
        if r["status"] == "ok":
            cells = [
                f"{r['p_meeting']:.3f}",
                f"{r['ci95_low']:.3f}–{r['ci95_high']:.3f}",
                r["median_time_held"] or "not reached",
                "ok",
            ]
        else:
            cells = ["", "", "", f"failed: {r['error']}"]
        table.add_row(str(r["point"]), *[f"{r[n]:.4g}" for n in names], *cells)
    con.print(table)
    if len(res.rows) > limit:
        con.print(f"… {len(res.rows) - limit} more rows in the output file")
    sens = res.sensitivity
    if sens and "error" in sens:
        con.print(f"sensitivity: {sens['error']}")
    elif sens:
        _render_sensitivity(sens)


def _render_sensitivity(sens: dict[str, Any]) -> None:
    """The indices, a mark on each whose interval is wider than itself, what that means
    and how many samples would settle it, and the ranking that the intervals support."""
    from rich.table import Table

    from ...runs.designs import NEGLIGIBLE

    con = out_console()
    sobol = sens["method"] == "sobol"
    title = f"Sensitivity of P(meeting) ({sens['method']}, {sens['samples']} samples"
    if not sens.get("noise_corrected"):
        title += "; not corrected for Monte Carlo noise: too few runs"
    elif sobol:
        title += f"; Monte Carlo noise, {100 * (sens.get('noise_share') or 0):.0f}% of the "
        title += "variance, removed"
    flagged = any(v.get("wide") for v in sens["params"].values())
    st = Table(
        title=title + "; 95% intervals)",
        caption="! the interval is wider than the index" if flagged else None,
    )
    st.add_column("parameter")
    cols = [("first-order S1", "S1", "S1_conf"), ("total ST", "ST", "ST_conf")] if sobol else [
        ("mu*", "mu_star", "mu_star_conf")]  # fmt: skip
    for c, _, _ in cols:
        st.add_column(c, justify="right")
    if not sobol:
        st.add_column("sigma", justify="right")
        if sens.get("noise_corrected"):
            st.add_column("mu* of noise alone", justify="right")
    for n, v in sens["params"].items():
        cells = [_pm(v[k], v[c]) + (" !" if k in v.get("wide", []) else "  ") for _, k, c in cols]
        if not sobol:
            cells.append(_num(v["sigma"]))
            if sens.get("noise_corrected"):
                cells.append(_num(v.get("mu_star_noise")))
        st.add_row(n, *cells)
    con.print(st)
    for n, v in sens["params"].items():
        if not v.get("wide"):
            continue
        which = " and ".join("mu*" if k == "mu_star" else k for k in v["wide"])
        need, target = v.get("samples_needed"), v.get("target")
        if not need:
            more = f"but it is within ±{NEGLIGIBLE:g} of 0: the parameter hardly matters"
        elif target is not None and target <= NEGLIGIBLE:
            more = (
                f"about {need:,} samples instead of {sens['samples']:,} would narrow it to "
                f"±{NEGLIGIBLE:g}, enough to tell whether the parameter hardly matters "
                f"(N x (half-width / {NEGLIGIBLE:g})^2, docs/sweeps.md)"
            )
        else:
            more = (
                f"about {need:,} samples instead of {sens['samples']:,} would narrow it to the "
                "size of the index, so that it excludes 0 (N x (half-width / index)^2, "
                "docs/sweeps.md)"
            )
        con.print(f"! {n}: {which} may be 0 (its interval includes 0); {more}", soft_wrap=True)
    order = " > ".join(" ≈ ".join(g) for g in sens.get("ranking", []))
    if order:
        key = "ST" if sobol else "mu*"
        con.print(f"Ranking by {key}: {order}  (≈: intervals overlap, order not established)",
                  soft_wrap=True)  # fmt: skip


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _pm(x: float | None, half: float | None) -> str:
    return f"{_num(x)} ± {_num(half)}"


def register(sub: Any) -> None:
    """Add the ``sweep`` subcommand to ``sub``."""
    sw = add_command(
        sub,
        "sweep",
        "Run a scenario over many parameter values; sensitivity analysis.",
        """  negosim sweep scenarios/munich.yaml --param p_us_formal_request=0:1:5 --runs 2000 \\
      --out formal.csv
  negosim sweep scenarios/munich.yaml --design sobol --samples 64 --param p_us_formal_request \\
      --param p_formula_per_round --runs 500 --out sobol.parquet
  negosim sweep sweeps/munich-conditions.yaml --out conditions.csv --resume""",
        cmd_sweep,
    )
    sw.add_argument("file", help="scenario YAML file, or a sweep file (sweeps/*.yaml)")
    sw.add_argument(
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="NAME[=RANGE]",
        help="a parameter to vary: NAME=LOW:HIGH:STEPS or NAME=a,b,c (grid); NAME=LOW:HIGH "
        "or just NAME for the scenario's range or uncertainty (lhs, sobol, morris); repeatable",
    )
    sw.add_argument("--design", choices=DESIGNS, help="grid (default), lhs, sobol or morris")
    sw.add_argument(
        "--samples",
        type=positive,
        help="base sample size N of lhs (N points), sobol (N*(k+2)) and morris (N*(k+1))",
    )
    sw.add_argument("--runs", type=run_count, help="replications per design point (default: 1000)")
    sw.add_argument("--seed", type=seed_number, help="random seed (default: 0)")
    sw.add_argument(
        "--max-replications",
        type=positive,
        default=MAX_REPLICATIONS,
        metavar="N",
        help=f"refuse a sweep of more than N points × runs, before it starts "
        f"(default: {MAX_REPLICATIONS:,}); design points are at most {MAX_POINTS:,}",
    )
    sw.add_argument(
        "--no-crn",
        action="store_true",
        help="independent random numbers at each point (default: the same replication "
        "streams at every point)",
    )
    sw.add_argument(
        "--out",
        metavar="FILE",
        help="write rows as points finish: FILE.csv or FILE.parquet, plus FILE.manifest.json",
    )
    sw.add_argument(
        "--resume",
        action="store_true",
        help="complete an interrupted sweep from its partial file, without redoing points",
    )
    sw.add_argument(
        "--exact",
        action="store_true",
        help="analyse each point exactly instead of simulating it (every delay must be "
        "exponential; see negosim analyze): a grid without sampling noise, rows printed",
    )
    add_phases_with_exact(sw)
    add_backend_options(sw, default_workers=os.cpu_count() or 1)
    add_engine_option(sw, "batch")
    add_sets(sw)
    add_format(sw)
