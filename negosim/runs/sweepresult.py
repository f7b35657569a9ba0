"""A sweep's result for Python callers: rows as a DataFrame, indices, notebook display.

:func:`negosim.sweep` returns a :class:`Sweep`, the
:class:`~negosim.runs.sweeprun.SweepResult` of ``negosim sweep`` with ways to
read it: :meth:`Sweep.to_frame` (the columns of the CSV) and
:meth:`Sweep.sensitivity_frame` (Sobol or Morris indices, one row per parameter).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..display import bars_svg, block, lines, pct, table
from .sweeprun import SweepResult


@dataclasses.dataclass(repr=False)
class Sweep(SweepResult):
    """What :func:`negosim.sweep` returns: one row per design point, and indices.

    ``rows`` (dicts keyed by ``columns``, the columns of the CSV), ``sensitivity``
    (the JSON's indices for ``sobol`` and ``morris`` designs, else None),
    ``manifest`` (what reproduces the sweep) and ``failures``.

    >>> from negosim import load, sweep
    >>> sw = sweep(load("scenarios/munich.yaml"),
    ...            params={"p_us_formal_request": (0.0, 1.0, 3)}, runs=100)
    >>> sw.columns[:3], len(sw.rows)
    (['point', 'p_us_formal_request', 'status'], 3)
    """

    @classmethod
    def of(cls, result: SweepResult) -> Sweep:
        """The same result, as a :class:`Sweep`."""
        return cls(**{f.name: getattr(result, f.name) for f in dataclasses.fields(result)})

    def to_frame(self) -> Any:
        """The rows as a pandas DataFrame with the columns of the CSV (``negosim[pandas]``).

        >>> from negosim import load, sweep
        >>> sw = sweep(load("scenarios/munich.yaml"),
        ...            params={"p_us_formal_request": [0.2, 0.8]}, runs=100)
        >>> sw.to_frame()[["p_us_formal_request", "p_meeting"]].shape
        (2, 2)
        """
        from ..extras import require

        require("pandas", "Sweep.to_frame()")
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)

    def sensitivity_frame(self) -> Any:
        """Sensitivity indices, one row per parameter (``sobol``: ``S1``, ``S1_conf``,
        ``ST``, ``ST_conf``...; ``morris``: ``mu_star``, ``sigma``...); ValueError
        for a design without indices."""
        from ..extras import require

        require("pandas", "Sweep.sensitivity_frame()")
        import pandas as pd

        sens = self.sensitivity
        if not sens or "params" not in sens:
            why = (sens or {}).get("error", "only the sobol and morris designs give indices")
            raise ValueError(f"no sensitivity indices: {why}")
        frame = pd.DataFrame.from_dict(sens["params"], orient="index")
        frame.index.name = "param"
        return frame.reset_index()

    def _params(self) -> list[str]:
        return [p["name"] for p in self.manifest["sweep"]["params"]]

    def __repr__(self) -> str:
        sw = self.manifest["sweep"]
        ok = sum(1 for r in self.rows if r.get("status") == "ok")
        out = [
            f"Sweep({self.manifest['scenario']['id']!r}, design {sw['design']}, "
            f"{len(self.rows)} points x {sw['runs']:,} runs, seed {sw['seed']})",
            f"  params: {', '.join(self._params())}; {ok} ok, {len(self.rows) - ok} failed",
        ]
        for r in self.rows[:5]:
            vals = ", ".join(f"{n}={r.get(n)!s:.8}" for n in self._params())
            out.append(f"  {r['point']}: {vals} -> {pct(r.get('p_meeting'))}")
        if len(self.rows) > 5:
            out.append(f"  ... {len(self.rows) - 5} more (to_frame() has them all)")
        return lines(*out)

    def _repr_html_(self) -> str:
        shown = self.rows[:50]
        body = table(
            self.columns,
            [["" if r.get(c) is None else r.get(c) for c in self.columns] for r in shown],
            f"{len(self.rows)} points" + (" (first 50)" if len(self.rows) > 50 else ""),
        )
        figure = ""
        names = self._params()
        if len(names) == 1:
            ok = [r for r in self.rows if r.get("status") == "ok"]
            figure = bars_svg([f"{r[names[0]]:g}" for r in ok][:40],
                              [r["p_meeting"] for r in ok][:40], "P(meeting)")  # fmt: skip
        sens = ""
        if self.sensitivity and "params" in self.sensitivity:
            params = self.sensitivity["params"]
            hints = ("wide", "samples_needed", "target")  # designs.trust's, not indices
            keys = [k for k in next(iter(params.values())) if k not in hints]
            sens = table(["param", *keys],
                         [[n, *(v.get(k) for k in keys)] for n, v in params.items()],
                         f"sensitivity ({self.sensitivity.get('method')})")  # fmt: skip
        return block(f"negosim sweep: {self.manifest['scenario']['id']}", figure, body, sens)
