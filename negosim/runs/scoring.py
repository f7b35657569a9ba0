"""Proper scores of probability forecasts against what happened.

Plain functions of forecasts ``p`` (probabilities) and outcomes ``o`` (0 or 1),
used by ``negosim backtest`` (:mod:`negosim.runs.backtest`) and tested against
hand-computed examples (tests/test_scoring.py):

* **Brier score** ``(p - o)**2``: 0 is perfect, always answering 50% scores 0.25;
  lower is better.
* **Log score** ``ln(p)`` if it happened, ``ln(1 - p)`` if not: the log of the
  probability given to what happened; 0 is perfect, always 50% scores
  ``ln 0.5 = -0.693``; higher is better. ``p`` is first clamped to
  ``[LOG_FLOOR, 1 - LOG_FLOOR]`` so that one Monte Carlo estimate of exactly 0
  or 1 does not make the mean minus infinity.
* **Brier skill** against a reference forecast: ``1 - B / B_ref``; above 0 beats it.
* **Murphy decomposition** over bins of forecasts:
  ``Brier = reliability - resolution + uncertainty + within_bin``, where
  reliability is the weighted squared gap between each bin's mean forecast and
  its observed frequency (0 for a calibrated forecaster, lower is better),
  resolution the weighted squared gap between each bin's observed frequency and
  the overall base rate (higher is better), uncertainty ``ō(1 - ō)`` (the Brier
  score of always forecasting the base rate, a property of the cases, not of
  the forecasts). ``within_bin`` is what binning leaves over (the variance of
  forecasts inside bins minus their covariance with outcomes, Stephenson et al.
  2008): exactly 0 when every forecast in a bin is the same.
* **Bootstrap interval** of a mean score: cases resampled with replacement,
  the resampling indexes drawn from negosim's keyed streams
  (:mod:`negosim.engine.streams`), so the interval depends only on the seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.streams import stream_id, uniforms

LOG_FLOOR = 1e-3
"""Forecasts are clamped to [LOG_FLOOR, 1 - LOG_FLOOR] for the log score only."""
BOOTSTRAP_SAMPLES = 2_000


def brier(p: float, o: bool | int) -> float:
    """The Brier score of one forecast: ``(p - o)**2``."""
    return (p - float(o)) ** 2


def log_score(p: float, o: bool | int) -> float:
    """The log score of one forecast: ``ln`` of the probability it gave to what happened."""
    q = min(max(p, LOG_FLOOR), 1 - LOG_FLOOR)
    return math.log(q if o else 1 - q)


def skill(score: float, reference: float) -> float | None:
    """Brier skill ``1 - score / reference`` (None when the reference is 0)."""
    return None if reference <= 0 else 1 - score / reference


def bin_edges(bins: int) -> list[float]:
    """``bins`` equal-width bins on [0, 1]: the edges, 0 first and 1 last."""
    if bins < 1:
        raise ValueError("bins must be at least 1")
    return [i / bins for i in range(bins + 1)]


def bin_of(p: float, bins: int) -> int:
    """The bin of forecast ``p``: ``[0, 1/b), [1/b, 2/b), ..., [(b-1)/b, 1]``."""
    return min(int(p * bins), bins - 1)


@dataclass(frozen=True)
class ReliabilityBin:
    """One row of a reliability table: forecasts in ``[low, high)`` and what happened."""

    low: float
    high: float
    n: int
    mean_forecast: float | None
    observed: float | None  # the share of these cases in which the meeting was held
    ci95: tuple[float, float] | None  # Wilson interval of ``observed``

    def to_json(self) -> dict[str, Any]:
        """The bin as a JSON object."""
        return {
            "low": self.low,
            "high": self.high,
            "n": self.n,
            "mean_forecast": self.mean_forecast,
            "observed": self.observed,
            "ci95": list(self.ci95) if self.ci95 else None,
        }


def reliability_table(
    p: Sequence[float], o: Sequence[bool | int], bins: int = 5
) -> list[ReliabilityBin]:
    """Forecasts grouped into ``bins`` equal-width bins, with the observed frequency in each."""
    from .results import wilson

    edges = bin_edges(bins)
    members: list[list[int]] = [[] for _ in range(bins)]
    for i, pi in enumerate(p):
        members[bin_of(pi, bins)].append(i)
    table = []
    for b, idx in enumerate(members):
        n = len(idx)
        if n:
            held = sum(int(bool(o[i])) for i in idx)
            table.append(
                ReliabilityBin(
                    edges[b],
                    edges[b + 1],
                    n,
                    sum(p[i] for i in idx) / n,
                    held / n,
                    wilson(held, n),
                )  # fmt: skip
            )
        else:
            table.append(ReliabilityBin(edges[b], edges[b + 1], 0, None, None, None))
    return table


@dataclass(frozen=True)
class Murphy:
    """Brier = reliability - resolution + uncertainty + within_bin (see the module)."""

    reliability: float
    resolution: float
    uncertainty: float
    within_bin: float

    def to_json(self) -> dict[str, float]:
        """The decomposition as a JSON object."""
        return {
            "reliability": self.reliability,
            "resolution": self.resolution,
            "uncertainty": self.uncertainty,
            "within_bin": self.within_bin,
        }


def murphy(p: Sequence[float], o: Sequence[bool | int], bins: int = 5) -> Murphy:
    """The Murphy decomposition of the mean Brier score over ``bins`` equal-width bins."""
    n = len(p)
    if n == 0 or n != len(o):
        raise ValueError("need as many outcomes as forecasts, at least one")
    base = sum(int(bool(x)) for x in o) / n
    rel = res = 0.0
    for row in reliability_table(p, o, bins):
        if row.n:
            assert row.mean_forecast is not None and row.observed is not None
            rel += row.n * (row.mean_forecast - row.observed) ** 2
            res += row.n * (row.observed - base) ** 2
    rel, res = rel / n, res / n
    unc = base * (1 - base)
    total = sum(brier(pi, oi) for pi, oi in zip(p, o, strict=True)) / n
    return Murphy(rel, res, unc, total - (rel - res + unc))


def bootstrap_mean(
    values: Sequence[float], seed: int = 0, samples: int = BOOTSTRAP_SAMPLES, name: str = "score"
) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of the mean of ``values`` (cases resampled).

    Resampling indexes come from the keyed stream ``"bootstrap:NAME"``: resample
    ``b`` uses replication ``b``'s draws 0..n-1, so the interval is a pure
    function of ``values``, ``seed`` and ``samples``.
    """
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    v = np.asarray(values, dtype=float)
    if n == 1:
        return (float(v[0]), float(v[0]))
    u = uniforms(
        seed,
        np.arange(samples, dtype=np.uint64)[:, None],
        stream_id(f"bootstrap:{name}"),
        np.arange(n, dtype=np.uint64)[None, :],
    )
    idx = np.minimum((u * n).astype(np.int64), n - 1)
    means = v[idx].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return (float(low), float(high))
