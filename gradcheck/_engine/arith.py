"""The arithmetic every part of the engine shares: element scales, overflow-free norms, the tolerance rule."""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "JITTER",
    "SIX_SIGMA",
    "largest_finite",
    "safe_norm",
    "step_cap",
    "step_scale",
    "tolerance_of",
    "within_errors",
]


SIX_SIGMA = 1.5 * math.sqrt(70)
JITTER = 1.324717957244746  # the plastic number: a step in no rational relation to 1, 2, 4 or 8, nor to a grid


def safe_norm(v: np.ndarray) -> float:
    """‖v‖₂ without overflow or underflow for any finite v."""
    top = float(np.abs(v).max()) if v.size else 0.0
    return top * float(np.linalg.norm(v / top)) if top > 0 and math.isfinite(top) else top


def largest_finite(values: np.ndarray) -> np.ndarray:
    """The largest finite |value| of each row (0 for a row with none): a point where f is not finite has no
    rounding to measure."""
    return np.asarray(np.where(np.isfinite(values), np.abs(values), 0.0).max(axis=1))


def within_errors(u: np.ndarray, u_err: np.ndarray, v: np.ndarray, v_err: np.ndarray) -> np.ndarray:
    return np.asarray(np.abs(u - v) <= u_err + v_err)


def tolerance_of(a: np.ndarray, numeric: np.ndarray, error: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """The largest |a − numeric| that passes: atol + rtol·max(|a|, |numeric|) + error. A pass then puts a within
    that plus error (the reported tolerance) of the true derivative, since numeric may be off it by error."""
    return np.asarray(atol + rtol * np.maximum(np.abs(a), np.abs(numeric)) + error)


def step_scale(x: np.ndarray) -> np.ndarray:
    """Each element's own scale, from which its step is taken: abs(xᵢ), or 1 where xᵢ is 0 or so small that
    eps·abs(xᵢ) would not be a normal number. Never the leaf's size or RMS: one outlier entry must not set the
    step of its neighbours, and a tiny entry must get a step it can resolve."""
    base = np.abs(x.astype(np.float64))
    info = np.finfo(x.dtype)
    return np.where(base * float(info.eps) > float(info.tiny), base, 1.0)


def step_cap(x: np.ndarray) -> np.ndarray:
    """The largest step an element may be given where rounding swamps its derivative: a tenth of
    max(abs(xᵢ), 1). A step that large is used only where f is shown to be in its Taylor regime on it; a larger
    one would cross too many kinks of a piecewise function at once for the regime to show them."""
    return 0.1 * np.maximum(np.abs(x.astype(np.float64)), 1.0)
