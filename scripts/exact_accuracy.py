"""The accuracy table of docs/exact.md: phase-type analysis against Monte Carlo.

    python scripts/exact_accuracy.py [RUNS]

For every library scenario: the largest KS distance of its phase-type fits
and P(meeting) with 2, 4 and 8 phases, against a simulation of RUNS
replications (default 400,000, seed 21, two workers), printed as a Markdown
table. Takes a few minutes; the figures in docs/exact.md come from it.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from negosim import load, simulate
from negosim.analysis.ctmc import NotAnalyzable, analyze

ROOT = Path(__file__).resolve().parents[1]


def main(runs: int) -> None:
    print("| scenario | K | states | largest KS | P exact-PH | P simulated | error | z |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        cs = load(path)
        est = simulate(cs, runs=runs, seed=21, workers=2)
        se = math.sqrt(est.p_meeting * (1 - est.p_meeting) / runs)
        for k in (2, 4, 8):
            try:
                a = analyze(cs, phases=k)
            except NotAnalyzable as exc:
                print(f"| {path.name} | {k} | refused: {exc} | | | | | |")
                continue
            ks = max([f["ks"] for f in a.fits] or [0.0])
            err = a.p_meeting - est.p_meeting
            print(
                f"| {path.name} | {k} | {a.states:,} | {ks:.3f} | {a.p_meeting:.4f} | "
                f"{est.p_meeting:.4f} | {err:+.4f} | {err / se:+.1f} |"
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 400_000)
