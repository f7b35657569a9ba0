"""The compiler's inverse-CDF samplers over arrays of uniforms, giving the same ticks.

The scalar engine turns a draw into ticks with Python floats; here the same
quantile functions run in numpy. ``fixed``, ``uniform``, ``triangular`` and
``empirical`` use the same IEEE operations in the same order (``sqrt`` is
correctly rounded in both), so their values are bit-identical. ``exponential``
and ``lognormal`` need ``log``/``exp``, whose numpy versions may differ from
the C library's in the last bit; a value is only ever used rounded to a whole
tick (or compared with the time left before the horizon), so the result can
differ only for a draw within a few units in the last place of a rounding
boundary. Such borderline draws (|error| bound taken a thousand times larger
than the real one) are recomputed with the scalar sampler itself, so the
ticks are the scalar engine's in every case.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ...compiler import dists
from ...compiler.dists import Sampler
from .vexpr import Unsupported

TICKS_PER_HOUR = 3_600_000
_REL = 1e-12  # far above the relative error of numpy's log/exp-based quantiles (~1e-15)


# Wichura's AS241 coefficients, highest power first, as statistics.NormalDist writes them.
_CENTRAL_NUM = (2.5090809287301226727e+3, 3.3430575583588128105e+4, 6.7265770927008700853e+4,
                4.5921953931549871457e+4, 1.3731693765509461125e+4, 1.9715909503065514427e+3,
                1.3314166789178437745e+2, 3.3871328727963666080e+0)  # fmt: skip
_CENTRAL_DEN = (5.2264952788528545610e+3, 2.8729085735721942674e+4, 3.9307895800092710610e+4,
                2.1213794301586595867e+4, 5.3941960214247511077e+3, 6.8718700749205790830e+2,
                4.2313330701600911252e+1, 1.0)  # fmt: skip
_NEAR_NUM = (7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1,
             1.27045825245236838258e+0, 3.64784832476320460504e+0, 5.76949722146069140550e+0,
             4.63033784615654529590e+0, 1.42343711074968357734e+0)  # fmt: skip
_NEAR_DEN = (1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2,
             1.48103976427480074590e-1, 6.89767334985100004550e-1, 1.67638483018380384940e+0,
             2.05319162663775882187e+0, 1.0)  # fmt: skip
_FAR_NUM = (2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3,
            2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e+0,
            5.46378491116411436990e+0, 6.65790464350110377720e+0)  # fmt: skip
_FAR_DEN = (2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5,
            7.86869131145613259100e-4, 1.48753612908506148525e-2, 1.36929880922735805310e-1,
            5.99832206555887937690e-1, 1.0)  # fmt: skip


def _pair(num: tuple[float, ...], den: tuple[float, ...]) -> np.ndarray:
    """Coefficients of a numerator and a denominator for :func:`_ratio`: ``c[j]`` holds
    the two degree-j coefficients (highest degree first), as a column."""
    return np.array([num, den]).T[:, :, None]


def _ratio(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The numerator and denominator polynomials of ``c`` (:func:`_pair`) at ``x``, as
    rows 0 and 1 of one array: ``(((c0 * x + c1) * x + c2) ... ) * x + cn`` each, the
    same IEEE operations in the same order as the written-out polynomials (so the same
    bits), both rows at once and in place (one numpy call per degree, not four)."""
    out = x * c[0]
    for cj in c[1:-1]:
        out += cj
        out *= x
    out += c[-1]
    return out


_CENTRAL = _pair(_CENTRAL_NUM, _CENTRAL_DEN)
_NEAR = _pair(_NEAR_NUM, _NEAR_DEN)
_FAR = _pair(_FAR_NUM, _FAR_DEN)


def _inv_cdf(p: np.ndarray) -> np.ndarray:
    """statistics.NormalDist().inv_cdf (Wichura's AS241), elementwise, same operations.

    The central branch (|p - 0.5| <= 0.425, most draws) is computed on every element,
    which costs less than gathering the central ones and scattering them back; the
    tails are then recomputed on theirs. Each element's value comes from the same
    operations as in the scalar code: only which elements are computed changes."""
    q = p - 0.5
    with np.errstate(all="ignore"):  # outside the central branch, discarded values
        r = q * q
        np.subtract(0.180625, r, out=r)
        nd = _ratio(r, _CENTRAL)
        out = nd[0]
        out *= q
        out /= nd[1]
    tail = (~(np.abs(q) <= 0.425)).nonzero()[0]
    if len(tail):
        pt, qt = np.maximum(p[tail], 1e-300), q[tail]  # p = 0: as 1e-300 (see logn)
        r = np.sqrt(-np.log(np.where(qt <= 0.0, pt, 1.0 - pt)))
        r1 = r - 1.6  # r <= 5 but for p within about 1e-11 of 0 or 1: computed on all
        nd = _ratio(r1, _NEAR)
        x = nd[0]
        x /= nd[1]
        far = (~(r <= 5.0)).nonzero()[0]
        if len(far):
            nd = _ratio(r[far] - 5.0, _FAR)
            x[far] = nd[0] / nd[1]
        out[tail] = np.where(qt < 0.0, -x, x)
    return out


_CHECKED: dict[Any, bool] = {}  # distribution key -> agrees with the scalar sampler
_CHECKED_MAX = 4096


class VSampler:
    """A sampler over arrays: ``hours(u)``, and ticks exactly as the scalar engine gets them."""

    def __init__(self, sampler: Sampler, what: str) -> None:
        spec = dists.spec(sampler)
        if spec is None:
            raise Unsupported(f"a distribution built outside negosim.compiler.dists ({what})")
        kind, v, values, weights = spec
        # What the sampler is, as a hashable key: equal keys draw equal delays.
        self.spec = (kind, tuple(sorted(v.items())), tuple(values), tuple(weights))
        self.scalar = sampler
        self.exact = kind in ("fixed", "uniform", "triangular", "empirical")
        # Up to this many draws, delays() runs the scalar sampler on each: about where
        # the numpy calls' fixed cost (far more of them for a lognormal) is overtaken.
        self.few = {"lognormal": 120, "exponential": 30}.get(kind, 16)
        self.hours: Callable[[np.ndarray], np.ndarray]
        if kind == "fixed":
            c = v["value"]
            self.hours = lambda u: np.full(u.shape, c)
        elif kind == "uniform":
            lo, width = v["low"], v["high"] - v["low"]
            self.hours = lambda u: lo + u * width
        elif kind == "triangular":
            a, c, b = v["min"], v["mode"], v["max"]
            fc = (c - a) / (b - a)
            left, right = (b - a) * (c - a), (b - a) * (b - c)

            def tri(u: np.ndarray) -> np.ndarray:
                lower = u < fc
                with np.errstate(invalid="ignore"):
                    return np.where(lower, a + np.sqrt(u * left), b - np.sqrt((1 - u) * right))

            self.hours = tri
        elif kind == "exponential":
            mean = v["mean"]

            def expo(u: np.ndarray) -> np.ndarray:
                with np.errstate(divide="ignore"):
                    return -mean * np.log(1.0 - u)

            self.hours = expo
        elif kind == "lognormal":
            mu, sigma = math.log(v["median"]), math.log(v["p90"] / v["median"]) / dists.Z90

            def logn(u: np.ndarray) -> np.ndarray:
                # Uniforms are 0 or at least 2**-53: _inv_cdf takes 0 as 1e-300, as
                # the scalar sampler does (where(u > 0, u, 1e-300)), in its tails only.
                z = _inv_cdf(u)
                z *= sigma  # exp(mu + sigma * z), in place
                np.add(mu, z, out=z)
                with np.errstate(over="ignore"):
                    return np.exp(z, out=z)

            self.hours = logn
        elif kind == "empirical":
            w = list(weights) or [1.0] * len(values)
            total = sum(w)
            acc, cum = 0.0, []
            for x in w:  # itertools.accumulate: left to right
                acc += x
                cum.append(acc / total)
            cum[-1] = 1.0
            cum_a = np.array(cum)
            vals = np.array(values, dtype=np.float64)
            last = len(vals) - 1
            self.hours = lambda u: vals[np.minimum(np.searchsorted(cum_a, u, side="right"), last)]
        else:
            raise Unsupported(f"the distribution {kind!r} ({what})")
        self._check(what)

    def _check(self, what: str) -> None:
        """Refuse (fall back to the reference engine) unless this agrees with the scalar one.

        The answer depends only on the distribution, and is kept: a calibration builds
        the engine of one scenario once per grid point, with the same distributions."""
        ok = _CHECKED.get(self.spec)
        if ok is None:
            ok = self._agrees()
            if len(_CHECKED) >= _CHECKED_MAX:
                _CHECKED.clear()
            _CHECKED[self.spec] = ok
        if not ok:
            raise Unsupported(f"a distribution the batch engine does not reproduce ({what})")

    def _agrees(self) -> bool:
        edges = [1e-12, 0.02425, 0.97575, 1 - 2**-53]
        u = np.concatenate([np.linspace(0.0, 1.0, 2001)[:-1], edges])
        with np.errstate(all="ignore"):  # inf - inf is a disagreement, not a warning
            ours = self.hours(u)
            ref = np.array([self.scalar(x) for x in u.tolist()])
            same = (ours == ref) | (np.abs(ours - ref) <= _REL * 0.1 * np.abs(ref))
        if not self.exact:
            same |= np.isinf(ours) & np.isinf(ref)
        return bool(same.all())

    def ticks(self, u: np.ndarray) -> np.ndarray:
        """``to_ticks(sampler(u))`` for each ``u``: floor(hours * TICKS_PER_HOUR + 0.5)."""
        x = self.hours(u) * TICKS_PER_HOUR + 0.5
        out = np.floor(x)
        if not self.exact:
            border = np.abs(x - np.round(x)) <= _REL * np.abs(x) + 1e-9
            for i in border.nonzero()[0]:
                out[i] = math.floor(self.scalar(float(u[i])) * TICKS_PER_HOUR + 0.5)
        return out.astype(np.int64)

    def delays(
        self, u: np.ndarray, room: np.ndarray, most: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Delays in ticks and whether each comes before the horizon (``delay < room``).

        As the scalar engine: ``delay = sampler(u) * TICKS_PER_HOUR``; scheduled
        only if ``delay < room``; then ``int(delay + 0.5)`` ticks. Where a delay is
        not ``soon`` its ticks are meaningless (the caller does not schedule it).
        ``most``, if given, is at least every ``room`` (say, the horizon).
        """
        if len(u) <= self.few:
            # A few draws (the long tail of a chunk): the scalar engine's own arithmetic
            # costs less than the fixed cost of the numpy calls.
            out = np.zeros(len(u), dtype=np.int64)
            soon = np.zeros(len(u), dtype=bool)
            for i, (x, r) in enumerate(zip(u.tolist(), room.tolist(), strict=True)):
                delay = self.scalar(x) * TICKS_PER_HOUR
                if delay < r:
                    soon[i] = True
                    out[i] = int(delay + 0.5)
            return out, soon
        d = self.hours(u)  # a new array: scaled in place
        d *= TICKS_PER_HOUR
        soon = d < room
        # Ticks are used only where soon (the caller keys the others as unscheduled), so
        # they are not zeroed elsewhere; the border test below still recomputes every
        # draw whose ``soon`` or ticks could differ from the scalar engine's.
        ticks = d + 0.5
        if self.exact:
            with np.errstate(invalid="ignore"):  # inf or NaN where not soon: never used
                return ticks.astype(np.int64), soon
        # The conversion truncates, as the scalar engine's int(delay + 0.5) does (no
        # floor needed). A draw is borderline where d is within ``tol`` of a rounding
        # boundary (ticks within tol of a whole number) or of ``room``. One tolerance
        # for every row, that of the largest room: where it matters (d near room, or
        # d < room so that the ticks are used), d is at most about that room, so it
        # is at least d * _REL; a few more draws are recomputed than with a tolerance
        # per row, and many fewer array passes are made (with ``most``, one less).
        if most is None:
            most = float(room.max()) if len(room) else 0.0
        tol = most * _REL + 1e-9
        with np.errstate(invalid="ignore"):
            out = ticks.astype(np.int64)
            gap = np.round(ticks)
            gap -= ticks
            np.abs(gap, out=gap)
            off = d - room
            np.abs(off, out=off)
            np.minimum(gap, off, out=gap)
            border = gap <= tol
        for i in border.nonzero()[0].tolist():
            delay = self.scalar(float(u[i])) * TICKS_PER_HOUR
            soon[i] = delay < room[i]
            out[i] = int(delay + 0.5) if soon[i] else 0
        return out, soon
