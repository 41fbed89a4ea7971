"""What every plot of the ``gradcheck`` command shares: matplotlib as an optional extra, and how a figure is saved."""

from __future__ import annotations

from typing import Any

from gradcheck.errors import MissingDependency

__all__ = ["figure", "require_matplotlib", "save"]


def require_matplotlib() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend, or an error that says how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise MissingDependency(
            "plots need matplotlib, which is not installed: pip install matplotlib (in gradcheck's clone: "
            "pip install '.[plot]'), or leave out --out"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure(*, wide: bool = False) -> tuple[Any, Any]:
    plt = require_matplotlib()
    fig, axes = plt.subplots(1, 2 if wide else 1, figsize=(10, 4) if wide else (8, 5), sharey=wide)
    return fig, axes


def save(fig: Any, path: str, *, log_grid: bool = True) -> str:
    """Grid, legend, tight layout, a 110-dpi PNG at ``path``; the figure is closed."""
    for ax in fig.axes:
        ax.grid(True, which="both" if log_grid else "major", alpha=0.3)
    fig.axes[0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    require_matplotlib().close(fig)
    return path
