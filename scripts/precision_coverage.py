"""How honest is ``negosim run --precision``? Coverage and bias of its stopping rule.

    python scripts/precision_coverage.py [--p 0.3] [--precision 0.02] [--reps 200]
    python scripts/precision_coverage.py --scan --precision 0.01

The rule (docs/sweeps.md) stops at the first batch of 1,000 runs where the 95%
Wilson half-width is at most H. Where it stops depends on the estimate itself
(intervals are narrower away from 1/2), so the final interval is not a plain
fixed-n interval. This script measures that on a scenario whose answer is
known in closed form: one exponential clock with mean m, a 48-hour horizon,
P(meeting) = 1 - exp(-48 / m). It prints

* the simulated coverage of the reported 95% interval over ``--reps`` seeds
  (each a real ``simulate_to_precision`` run), the mean runs and the bias;
* the exact coverage and bias of the same rule for that p, from binomial
  probabilities (no simulation): what the simulation estimates.

The default p = 0.3 with H = 0.02 is a bad case: the half-width reaches 0.02
at 2,000 runs only if the estimate is at most 0.296, so about half of the runs
stop early, exactly those whose estimate is low.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np
from scipy.stats import binom

import negosim
from negosim.runs.results import wilson
from negosim.runs.runner import PRECISION_BATCH, simulate_to_precision

SCENARIO = """\
id: closed-form
title: One exponential clock, P = 1 - exp(-48 / mean)
calendar: {{timezone: UTC, start: "2024-01-01 00:00", horizon: 48h}}
actors: {{a: {{name: A}}}}
protocol:
  states: [waiting, held]
  initial: waiting
  transitions: [{{trigger: meet, source: waiting, dest: held}}]
  outcomes: {{success: [held], failure: []}}
actions:
  meet: {{actor: a, from: waiting, trigger: meet,
          delay: {{dist: exponential, mean: "{mean}h"}}}}
"""


def exact(p: float, precision: float, batch: int = PRECISION_BATCH) -> tuple[float, float, float]:
    """(coverage, bias, mean runs) of the stopping rule for true ``p``, exactly."""
    dist = np.array([1.0])  # P(k held so far, not yet stopped), k = 0..n
    cover = bias = runs = 0.0
    n = 0
    step = binom.pmf(np.arange(batch + 1), batch, p)
    while dist.sum() > 1e-12:
        dist = np.convolve(dist, step)
        n += batch
        ks = np.arange(dist.size)
        lows, highs = np.array([wilson(int(k), n) for k in ks]).T
        stop = (highs - lows) / 2 <= precision
        mass = dist * stop
        cover += mass[(lows <= p) & (p <= highs)].sum()
        bias += (mass * (ks / n - p)).sum()
        runs += mass.sum() * n
        dist = dist * ~stop
    return cover, bias, runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--p", type=float, default=0.3, help="true P(meeting)")
    ap.add_argument("--precision", type=float, default=0.02, help="H of --precision")
    ap.add_argument("--reps", type=int, default=200, help="simulated repetitions")
    ap.add_argument("--scan", action="store_true",
                    help="only the exact coverage for p = 0.01, 0.02, ..., 0.99")  # fmt: skip
    args = ap.parse_args()
    if args.scan:
        rows = [(p, *exact(p, args.precision)) for p in np.round(np.arange(0.01, 1, 0.01), 2)]
        low = min(rows, key=lambda r: r[1])
        far = max(rows, key=lambda r: abs(r[2]))
        print(f"--precision {args.precision}, exact, p = 0.01 ... 0.99: coverage "
              f"{low[1]:.4f} (lowest, p = {low[0]}) to {max(r[1] for r in rows):.4f}; "
              f"largest bias {far[2]:+.5f} (p = {far[0]})")  # fmt: skip
        return
    mean = -48 / math.log(1 - args.p)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "closed-form.yaml"
        path.write_text(SCENARIO.format(mean=repr(mean)), encoding="utf-8")
        cs = negosim.load(path)
        hits, est, runs = 0, [], []
        for seed in range(args.reps):
            e = simulate_to_precision(cs, args.precision, seed=seed)
            hits += e.ci95[0] <= args.p <= e.ci95[1]
            est.append(e.p_meeting)
            runs.append(e.runs)
    se = math.sqrt(args.p * (1 - args.p) / np.mean(runs) / args.reps)
    print(f"true p = {args.p}, --precision {args.precision}, {args.reps} seeds")
    print(
        f"simulated: coverage {hits / args.reps:.3f} ({hits}/{args.reps}), "
        f"bias {np.mean(est) - args.p:+.4f} (± {2 * se:.4f}), mean runs {np.mean(runs):,.0f}"
    )
    cover, bias, n = exact(args.p, args.precision)
    print(f"exact:     coverage {cover:.4f}, bias {bias:+.5f}, mean runs {n:,.0f}")


if __name__ == "__main__":
    main()
