"""The arithmetic every part of the engine shares: element scales, overflow-free norms, the tolerance rule."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["SIX_SIGMA", "element_scale", "largest_finite", "safe_norm", "tolerance_of", "within_errors"]


SIX_SIGMA = 1.5 * math.sqrt(70)


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
    return np.asarray(atol + rtol * np.maximum(np.abs(a), np.abs(numeric)) + error)


def element_scale(x: np.ndarray) -> np.ndarray:
    """Each element's scale: max(|xᵢ|, RMS of its leaf), or 1 for an all-zero (or all-tiny) leaf.

    The RMS is taken of the leaf divided by its largest entry, so that it is finite for any finite leaf.
    """
    base = np.abs(x.astype(np.float64))
    top = float(base.max()) if base.size else 0.0
    rms = top * math.sqrt(float(np.mean((base / top) ** 2))) if top > 0 and math.isfinite(top) else 0.0
    # An all-zero leaf, or one so small that eps·RMS would underflow, has no usable scale of its own: use 1.
    info = np.finfo(x.dtype)
    return np.maximum(base, rms if rms > float(info.tiny) / float(info.eps) else 1.0)
