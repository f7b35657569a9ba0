"""Figures of estimates and sweep results (matplotlib, Agg backend, no display).

Every function takes plain results (an :class:`~negosim.results.Estimate`,
a :class:`~negosim.compare.Comparison`, or rows read from a sweep results
file) and returns a matplotlib ``Figure``; :func:`save` writes one as PNG or
SVG and :func:`svg_data_uri` embeds one in an HTML page. The protocol
diagrams are in :mod:`negosim.diagram`.

The P(held by t) curve is the fraction of *all* runs held by t: the only
censoring is the common horizon, so no run is dropped or imputed; the band is
the Wilson 95% interval at each point.

Sweep results are read from a CSV file with one row per design point: one
column per swept parameter plus ``p_meeting``, ``ci95_low`` and
``ci95_high`` (other columns listed in :data:`NOT_PARAMS` are ignored).
Sensitivity indices are read from CSV or JSON rows with a ``param`` column
and either ``ST`` (optionally ``ST_conf``, ``S1``, ``S1_conf``) or
``mu_star`` (optionally ``mu_star_conf``, ``sigma``).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..extras import require

require("plots", "drawing figures")  # matplotlib, or one line saying how to install it
import matplotlib  # noqa: E402

matplotlib.use("Agg")  # no display: files and reports only
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ..errors import UsageError  # noqa: E402
from ..files import write_atomic  # noqa: E402
from ..runs.results import PARTS, Estimate, wilson  # noqa: E402
from ..scenario.units import zone_label, zone_names  # noqa: E402

NOT_PARAMS = frozenset(
    {"p_meeting", "ci95_low", "ci95_high", "runs", "seed", "held", "point", "index",
     "elapsed_s", "scenario", "median_time_held", "mean_events_per_run", "status", "error",
     "held_blocks"}
)  # fmt: skip
"""Columns of a results file that are never swept parameters (nor are ``n_*`` counts)."""
PART_COLOURS = {"night": "#3b4a6b", "morning": "#f2b134", "afternoon": "#e0663a",
                "evening": "#7a3b69"}  # fmt: skip
BLUE, ORANGE, GREEN, RED, GREY = "#1f5fa8", "#e07b1a", "#2e8b57", "#c0392b", "#888888"

plt.rcParams.update(
    {
        "font.size": 11,
        "axes.titlesize": 13,
        "axes.titleweight": "bold",
        "axes.spines.top": False,
        "axes.spines.right": False,
        "svg.fonttype": "path",  # text as outlines: the SVG needs no font at all
        "svg.hashsalt": "negosim",  # stable ids: the same figure gives the same file
        "text.parse_math": False,  # a "$" in a title or column name is text, not TeX
    }
)


def save(fig: Figure, path: str | Path) -> None:
    """Write ``fig`` as PNG or SVG, by the file's suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".png", ".svg"):
        raise UsageError(f"{path}: the output must end in .png or .svg")
    try:
        write_atomic(path, lambda f: fig.savefig(
            f, format=suffix[1:], dpi=150 if suffix == ".png" else None, bbox_inches="tight",
            metadata={"Date": None} if suffix == ".svg" else None))  # fmt: skip
    finally:
        plt.close(fig)


def svg_data_uri(fig: Figure) -> str:
    """``fig`` as an SVG ``data:`` URI (self-contained: text drawn as paths)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _pct_axis(ax: Any, axis: str = "y") -> None:
    fmt = matplotlib.ticker.PercentFormatter(1.0, decimals=0)
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _day_label(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%a %d %b")


# --- one estimate ----------------------------------------------------------------


def when(est: Estimate) -> Figure:
    """Chance the meeting is held on each venue-local day, stacked by part of day."""
    days = list(est.by_day)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bottom = [0.0] * len(days)
    x = range(len(days))
    for part in PARTS:
        vals = [est.by_part_of_day.get(d, {}).get(part, 0.0) for d in days]
        if not any(vals):
            continue
        ax.bar(x, vals, bottom=bottom, color=PART_COLOURS[part], label=part, width=0.6)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    for i, d in enumerate(days):
        ax.annotate(f"{100 * est.by_day[d]:.1f}%", (i, est.by_day[d]), ha="center",
                    va="bottom", xytext=(0, 3), textcoords="offset points")  # fmt: skip
    ax.set_xticks(list(x), [_day_label(d) for d in days])
    ax.set_ylim(0, max([*est.by_day.values(), 0.05]) * 1.5)
    _pct_axis(ax)
    ax.set_ylabel("share of all runs")
    ax.set_title("When: chance the meeting is held, by day and part of day")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(title="part of day (local)", frameon=False, ncols=4, loc="upper center")
    return fig


def held_curve(
    est: Estimate, start: datetime, horizon_hours: float
) -> tuple[list[datetime], list[float], list[float], list[float]]:
    """P(held by t) as a step curve with its Wilson band: (times, p, low, high)."""
    n = est.runs
    times, p, low, high = [start], [0.0], [0.0], [wilson(0, n)[1]]
    held = 0
    for minute, count in sorted(est.held_minutes.items()):
        t = start + timedelta(minutes=minute)
        times.append(t)
        p.append(held / n)  # just before: a step, not a ramp
        lo, hi = wilson(held, n)
        low.append(lo)
        high.append(hi)
        held += count
        lo, hi = wilson(held, n)
        times.append(t)
        p.append(held / n)
        low.append(lo)
        high.append(hi)
    end = start + timedelta(hours=horizon_hours)
    lo, hi = wilson(held, n)
    times.append(end)
    p.append(held / n)
    low.append(lo)
    high.append(hi)
    return times, p, low, high


def curve(
    est: Estimate | None,
    start: datetime,
    horizon_hours: float,
    exact: Sequence[tuple[float, float]] | None = None,
    exact_label: str = "exact P(held by t)",
) -> Figure:
    """P(meeting held by t) over the simulated period, with its 95% band.

    ``exact`` ((hours after start, P(held by t)) pairs, from ``negosim analyze``)
    is drawn over it as a black line; without ``est`` only the exact curve is drawn.
    """
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if est is not None:
        stamps, p, low, high = held_curve(est, start, horizon_hours)
        times = mdates.date2num(stamps)
        ax.fill_between(times, low, high, color=BLUE, alpha=0.2, lw=0,
                        label="95% interval (Wilson)")  # fmt: skip
        ax.plot(times, p, color=BLUE, lw=2, label="P(held by t), share of all runs")
    if exact:
        times = mdates.date2num([start + timedelta(hours=h) for h, _ in exact])
        ax.plot(times, [q for _, q in exact], color="black", lw=1.2, ls="-", label=exact_label)
    ax.axvline(times[-1], color=GREY, ls="--", lw=1)
    if est is not None:
        censored = est.outcomes.get("censored", 0) / est.runs if est.runs else 0.0
        ax.annotate(f"horizon: {100 * censored:.1f}% of runs\nstill without an outcome",
                    (times[-1], 0.02), ha="right", va="bottom", xytext=(-6, 0),
                    textcoords="offset points", color="#555555", fontsize=9)  # fmt: skip
    ax.set_ylim(0, 1)
    _pct_axis(ax)
    tz = start.tzinfo
    locator = mdates.AutoDateLocator(tz=tz, maxticks=8)
    # Without 24 among the hourly steps, 3-4 days (too long for 12 h, too short for
    # daily ticks) leave matplotlib without a step, and it warns.
    locator.intervald[mdates.HOURLY] = [1, 2, 3, 4, 6, 12, 24]
    ax.xaxis.set_major_locator(locator)
    # Weekday and hour while a week fits; beyond it, weekdays repeat: say the date.
    ticks = "%a %H:%M" if horizon_hours <= 7 * 24 else "%a %d %b"
    ax.xaxis.set_major_formatter(mdates.DateFormatter(ticks, tz=tz))
    zones = zone_label(zone_names(start, horizon_hours, tz)) if tz is not None else ""
    ax.set_xlabel(f"venue-local time ({zones})")  # CET/CEST across a DST change
    ax.set_title("P(meeting held by t)" if est is not None
                 else "P(meeting held by t), without sampling")  # fmt: skip
    ax.legend(frameon=False, loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def outcomes(est: Estimate, success: frozenset[str] | set[str] = frozenset()) -> Figure:
    """How the runs ended (``success``: the outcome states that mean the meeting was
    held), and which preconditions stood when runs failed."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4), width_ratios=[1, 1.2])
    names = list(est.outcomes)
    shares = [est.outcomes[k] / est.runs if est.runs else 0.0 for k in names]
    colours = [GREY if k == "censored" else (GREEN if k in success else RED)
               for k in names]  # fmt: skip
    a1.barh(names[::-1], shares[::-1], color=colours[::-1])
    for y, s in enumerate(shares[::-1]):
        a1.annotate(f"{100 * s:.1f}%", (s, y), va="center", xytext=(3, 0),
                    textcoords="offset points")  # fmt: skip
    a1.set_xlim(0, max([*shares, 0.05]) * 1.3)
    _pct_axis(a1, "x")
    a1.set_title("Outcomes (share of runs)")
    failed = est.runs - est.held
    blk = sorted(est.blocking.items(), key=lambda kv: kv[1])
    if blk:
        vals = [c / failed if failed else 0.0 for _, c in blk]
        a2.barh([k for k, _ in blk], vals, color=ORANGE, height=0.6)
        a2.set_ylim(-0.5 - max(0, 3 - len(blk)) / 2, len(blk) - 0.5 + max(0, 3 - len(blk)) / 2)
        for y, s in enumerate(vals):
            a2.annotate(f"{100 * s:.1f}%", (s, y), va="center", xytext=(3, 0),
                        textcoords="offset points")  # fmt: skip
        a2.set_xlim(0, max([*vals, 0.05]) * 1.3)
        _pct_axis(a2, "x")
    else:
        a2.text(0.5, 0.5, "no preconditions", ha="center", va="center", transform=a2.transAxes)
        a2.set_axis_off()
    a2.set_title(f"Preconditions standing (of {failed:,} failed runs)")
    fig.tight_layout()
    return fig


def compare_bars(cmp: Any) -> Figure:
    """Baseline against variant: P(held by end of each day), with the change."""
    days = cmp.by_end_of_day()
    labels = [_day_label(d) for d in days]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = list(range(len(days)))
    ax.plot(x, [v["base"] for v in days.values()], "o-", color=GREY, lw=2, label="baseline")
    ax.plot(x, [v["variant"] for v in days.values()], "o-", color=BLUE, lw=2, label="variant")
    ax.set_xticks(x, labels)
    ax.set_ylim(0, 1)
    _pct_axis(ax)
    lo, hi = cmp.diff_ci95
    ax.set_title(
        f"P(meeting held by the end of each day)\nchange in P(meeting): "
        f"{100 * cmp.diff:+.1f} points (95% CI {100 * lo:+.1f} to {100 * hi:+.1f})"
    )
    ax.legend(frameon=False, loc="upper left")
    ax.grid(alpha=0.3)
    return fig


# --- sweep results ---------------------------------------------------------------


def manifest(path: str | Path) -> dict[str, Any] | None:
    """The manifest ``negosim sweep`` wrote beside a results file, if there is one."""
    p = Path(path)
    m = p if p.name.endswith(".manifest.json") else p.with_name(p.stem + ".manifest.json")
    try:
        data = json.loads(m.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def indices_rows(path: str | Path) -> list[dict[str, Any]] | None:
    """Sensitivity indices from a sweep's manifest, as rows with a ``param`` column."""
    m = manifest(path)
    sens = (m or {}).get("sensitivity")
    if not isinstance(sens, dict) or not isinstance(sens.get("params"), dict):
        return None
    return [{"param": str(name), **values} for name, values in sens["params"].items()
            if isinstance(values, dict)]  # fmt: skip


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a CSV, Parquet or JSON results file, numbers converted (UsageError if not)."""
    p = Path(path)
    if p.suffix.lower() == ".parquet":
        require("parquet", "reading Parquet")
        try:
            import pyarrow.parquet as pq

            table = pq.read_table(p)
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path}: cannot read Parquet: {exc}") from None
        return [{k: _number(v) for k, v in r.items()} for r in table.to_pylist()]
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise UsageError(f"{path}:{line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x})") from None
    rows: list[dict[str, Any]]
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from None
        if isinstance(data, dict) and isinstance(data.get("indices"), list):
            data = data["indices"]
        if isinstance(data, dict) and "sensitivity" in data:  # a sweep's manifest
            data = indices_rows(p) or []
        if isinstance(data, dict):  # columns: {"names"/"param": [...], "ST": [...], ...}
            key = "param" if "param" in data else "names"
            if not isinstance(data.get(key), list):
                raise UsageError(f"{path}: expected a list of rows or columns with 'param'")
            cols = {k: v for k, v in data.items() if isinstance(v, list)}
            data = [{("param" if k == key else k): v[i] for k, v in cols.items()}
                    for i in range(len(data[key]))]  # fmt: skip
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise UsageError(f"{path}: expected a list of rows (JSON objects)")
        rows = data
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            rows = list(reader)
        except csv.Error as exc:
            raise UsageError(f"{path}:{reader.line_num}: not a readable CSV file: {exc}") from None
    return [{k: _number(v) for k, v in r.items() if k is not None} for r in rows]


def _number(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def ok_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of points that ran: a sweep's ``failed`` points have no estimate to draw."""
    return [r for r in rows if r.get("status") != "failed"]


def sweep_params(rows: list[dict[str, Any]], path: str | Path = "") -> list[str]:
    """The swept parameters: numeric columns other than :data:`NOT_PARAMS` that vary."""
    if not rows:
        raise UsageError(f"{path}: no rows")
    need = {"p_meeting", "ci95_low", "ci95_high"} - set(rows[0])
    if need:
        raise UsageError(f"{path}: missing column(s) {', '.join(sorted(need))}")
    for i, r in enumerate(rows):
        for c in ("p_meeting", "ci95_low", "ci95_high"):
            if not isinstance(r.get(c), float) or not 0 <= r[c] <= 1:
                raise UsageError(f"{path}: row {i + 1}: {c} is not a number between 0 and 1")
    m = manifest(path) if path else None
    sweep = (m or {}).get("sweep")
    listed = sweep.get("params") if isinstance(sweep, dict) else None
    declared = [q.get("name") for q in listed if isinstance(q, dict)] if isinstance(
        listed, list) else []  # fmt: skip
    if declared and all(
        isinstance(n, str) and n in rows[0] and all(isinstance(r.get(n), float) for r in rows)
        for n in declared
    ):
        return [str(n) for n in declared]  # what the sweep itself says it varied
    cols = [c for c in rows[0] if c not in NOT_PARAMS and not c.startswith("n_")]
    return [c for c in cols if all(isinstance(r.get(c), float) for r in rows)
            and len({r[c] for r in rows}) > 1]  # fmt: skip


def sweep(rows: list[dict[str, Any]], path: str | Path = "") -> Figure:
    """P(meeting) against one swept parameter with its band, or a heatmap for two."""
    params = sweep_params(rows, path)
    if len(params) == 1:
        return sweep_line(rows, params[0])
    if len(params) == 2:
        return heatmap(rows, params[0], params[1])
    raise UsageError(f"{path}: expected 1 or 2 swept parameter columns, found "
                     f"{len(params)} ({', '.join(params) or 'none'}); for a design over more "
                     "parameters, plot its sensitivity indices with --kind tornado")  # fmt: skip


def sweep_line(rows: list[dict[str, Any]], x: str) -> Figure:
    """P(meeting) with its 95% band against the one swept parameter ``x``."""
    pts = sorted(rows, key=lambda r: r[x])
    xs = [r[x] for r in pts]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.fill_between(xs, [r["ci95_low"] for r in pts], [r["ci95_high"] for r in pts],
                    color=BLUE, alpha=0.2, lw=0, label="95% interval")  # fmt: skip
    ax.plot(xs, [r["p_meeting"] for r in pts], "o-", color=BLUE, lw=2, label="P(meeting)")
    ax.set_ylim(0, 1)
    _pct_axis(ax)
    ax.set_xlabel(x)
    ax.set_title(f"P(meeting) against {x}")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return fig


def heatmap(rows: list[dict[str, Any]], x: str, y: str) -> Figure:
    """P(meeting) over the grid of swept parameters ``x`` and ``y``, cells labelled when few."""
    xs = sorted({r[x] for r in rows})
    ys = sorted({r[y] for r in rows})
    grid = [[math.nan] * len(xs) for _ in ys]
    for r in rows:
        grid[ys.index(r[y])][xs.index(r[x])] = r["p_meeting"]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    im = ax.imshow(grid, origin="lower", cmap="viridis", vmin=0, vmax=1, aspect="auto")
    small = len(xs) * len(ys) <= 64
    for i in range(len(ys)):
        for j in range(len(xs)):
            if small and not math.isnan(grid[i][j]):
                v = grid[i][j]
                ax.text(j, i, f"{100 * v:.0f}%", ha="center", va="center",
                        color="white" if v < 0.6 else "black", fontsize=9)  # fmt: skip
    ax.set_xticks(range(len(xs)), [f"{v:g}" for v in xs])
    ax.set_yticks(range(len(ys)), [f"{v:g}" for v in ys])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    cb = fig.colorbar(im, ax=ax)
    cb.ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    cb.set_label("P(meeting)")
    ax.set_title(f"P(meeting) over {x} and {y}")
    return fig


def tornado(rows: list[dict[str, Any]], path: str | Path = "") -> Figure:
    """Sensitivity indices, largest on top: total (and first-order) Sobol or Morris."""
    if (not rows or "param" not in rows[0]) and path:
        rows = indices_rows(path) or rows  # a sweep's results file: its manifest has them
    if not rows or "param" not in rows[0]:
        raise UsageError(
            f"{path}: expected rows with a 'param' column (sensitivity "
            "indices), or a sweep results file whose manifest has them"
        )
    if "ST" in rows[0]:
        main, conf, second, second_conf = "ST", "ST_conf", "S1", "S1_conf"
        title = "Sensitivity: Sobol indices (total ST, first-order S1)"
    elif "mu_star" in rows[0]:
        main, conf, second, second_conf = "mu_star", "mu_star_conf", "sigma", ""
        title = "Sensitivity: Morris mu* (and sigma)"
    else:
        raise UsageError(f"{path}: expected an 'ST' or a 'mu_star' column")
    pts = sorted(rows, key=lambda r: float(r[main]))
    names = [str(r["param"]) for r in pts]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(pts) + 1.5))
    y = list(range(len(pts)))
    err = [float(r[conf]) for r in pts] if conf in rows[0] else None
    h = 0.38 if second in rows[0] else 0.7
    ax.barh([v + h / 2 if second in rows[0] else v for v in y], [float(r[main]) for r in pts],
            height=h, xerr=err, color=BLUE, label=main, capsize=3)  # fmt: skip
    if second in rows[0]:
        err2 = [float(r[second_conf]) for r in pts] if second_conf in rows[0] else None
        ax.barh([v - h / 2 for v in y], [float(r[second]) for r in pts], height=h,
                xerr=err2, color=ORANGE, label=second, capsize=3)  # fmt: skip
    ax.set_yticks(y, names)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_title(title)
    ax.legend(frameon=False, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return fig


# --- backtests ---------------------------------------------------------------------


def reliability(bt: Any) -> Figure:
    """Reliability diagram of a :class:`~negosim.runs.backtest.Backtest`: in each bin of
    forecasts, the share of cases held (with its Wilson interval) against the mean
    forecast; every case as a tick at its forecast, above (held) or below (not held)."""
    data = bt.to_json()
    fig, ax = plt.subplots(figsize=(6.5, 6))
    ax.plot([0, 1], [0, 1], color=GREY, ls="--", lw=1, label="perfectly calibrated")
    rows = [r for r in data["reliability"] if r["n"]]
    xs = [r["mean_forecast"] for r in rows]
    ys = [r["observed"] for r in rows]
    err = [[y - r["ci95"][0] for y, r in zip(ys, rows, strict=True)],
           [r["ci95"][1] - y for y, r in zip(ys, rows, strict=True)]]  # fmt: skip
    ax.errorbar(xs, ys, yerr=err, fmt="o-", color=BLUE, lw=2, capsize=4,
                label="share held, 95% interval")  # fmt: skip
    for x, y, r in zip(xs, ys, rows, strict=True):
        ax.annotate(f"n={r['n']}", (x, y), xytext=(6, -12), textcoords="offset points",
                    fontsize=9, color="#555555")  # fmt: skip
    for c in bt.cases:
        y = 1.03 if c.met else -0.03
        ax.plot([c.p_meeting], [y], marker="|", ms=12, color=GREEN if c.met else RED)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.06, 1.06)
    _pct_axis(ax)
    _pct_axis(ax, "x")
    ax.set_xlabel("forecast P(meeting)")
    ax.set_ylabel("share of cases in which the meeting was held")
    ax.set_title(f"Reliability over {bt.n} cases (Brier {data['brier']:.3f})")
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=2)
    ax.grid(alpha=0.3)
    return fig


def curve_band(est: Estimate, start: datetime, horizon_hours: float, u: Any) -> Figure:
    """P(held by t) with its Wilson band and, for ``run --uncertainty``, the 5th-95th
    percentile band across parameter draws (``u``, an ``UncertainEstimate``)."""
    fig = curve(est, start, horizon_hours)
    ax = fig.axes[0]
    minutes = [horizon_hours * 60 * i / 200 for i in range(201)]
    lo, hi = u.curve_band(minutes)
    times = mdates.date2num([start + timedelta(minutes=m) for m in minutes])
    ax.fill_between(times, lo, hi, color=ORANGE, alpha=0.25, lw=0, step="post",
                    label="5th–95th percentile across parameter draws")  # fmt: skip
    ax.legend(frameon=False, loc="upper left")
    ax.set_title("P(meeting held by t), parameter uncertainty drawn")
    return fig
