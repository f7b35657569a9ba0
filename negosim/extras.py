"""Optional extras: import what a feature needs, or say how to install it.

``pip install negosim`` brings what ``run``, ``trace``, ``validate``,
``params``, ``explain``, ``play``, ``new``, ``schema`` and ``graph`` need.
Figures, Parquet, Dask, SALib designs, pandas frames, exact analysis and the
classroom web server are extras (``negosim[plots]``, ``[parquet]``, ``[dask]``,
``[sensitivity]``, ``[pandas]``, ``[exact]``, ``[serve]``, or ``[all]``). Code that needs
one calls :func:`require` before importing the package, so a missing extra is
bad input said in one line (exit code 2 from the CLI), never a traceback::

    require("plots", "--plot")   # then: import matplotlib
"""

from __future__ import annotations

import importlib

from .errors import UsageError

EXTRAS: dict[str, tuple[str, ...]] = {
    "plots": ("matplotlib",),
    "parquet": ("pyarrow",),
    "dask": ("dask", "distributed"),
    "sensitivity": ("SALib",),
    "pandas": ("pandas",),
    "exact": ("scipy",),
    "serve": ("starlette", "uvicorn", "jinja2", "python_multipart"),
}
"""Each extra and the modules it provides (as ``pyproject.toml`` declares them)."""


class MissingExtra(UsageError):
    """A feature needs an extra that is not installed (exit code 2 from the CLI).

    ``feature`` says what needs it (``"--design sobol"``), or is empty when a
    whole command does; the CLI puts the command's name in front.
    """

    def __init__(self, extra: str, feature: str = ""):
        self.extra = extra
        self.feature = feature
        super().__init__(self.line("negosim"))

    def __str__(self) -> str:
        return self.line("negosim")

    def line(self, who: str) -> str:
        """``WHO: [FEATURE ]needs the 'EXTRA' extra: pip install 'negosim[EXTRA]'``."""
        what = f"{self.feature} needs" if self.feature else "needs"
        return f"{who}: {what} the '{self.extra}' extra: {install_command(self.extra)}"


def install_command(extra: str) -> str:
    """The exact command that installs ``extra``."""
    return f"pip install 'negosim[{extra}]'"


def require(extra: str, feature: str = "") -> None:
    """Import the modules of ``extra``; raise :class:`MissingExtra` if one is not there."""
    for name in EXTRAS[extra]:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise MissingExtra(extra, feature) from exc
