"""One place for figure style (sizes, fonts, colours), used by every chapter."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

__all__ = ["set_style", "band", "COLORS"]

COLORS = {
    "teacher": "#d95f02",
    "student": "#1b9e77",
    "ceiling": "#7570b3",
    "misfit": "#e7298a",
    "eps": "#666666",
    "bias": "#1f78b4",
    "variance": "#e6ab02",
    "noise": "#a6761d",
}


def set_style(width: float = 6.4, height: float = 3.6) -> None:
    """Apply the book's matplotlib style (figure size in inches)."""
    mpl.rcParams.update(
        {
            "figure.figsize": (width, height),
            "figure.dpi": 100,
            "savefig.dpi": 150,
            "font.size": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "legend.frameon": False,
        }
    )


def band(ax, x, mean, se, z: float = 1.96, label: str | None = None, color=None, **kw):
    """Plot ``mean`` with a ``mean +/- z * se`` band (a 95% normal interval by default)."""
    x, mean, se = (np.asarray(a, dtype=float) for a in (x, mean, se))
    (line,) = ax.plot(x, mean, label=label, color=color, **kw)
    ax.fill_between(x, mean - z * se, mean + z * se, color=line.get_color(), alpha=0.2, lw=0)
    return line


def close_all() -> None:
    plt.close("all")
