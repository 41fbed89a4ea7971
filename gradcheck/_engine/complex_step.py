"""The complex step, Im f(x + i·h·eᵢ)/h: no cancellation, so a few ulps of error where func is complex-analytic."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck._engine.arith import step_scale, tolerance_of
from gradcheck.report import LeafReport

__all__ = ["complex_step_reports"]


def complex_step_reports(
    func: Callable[[Any], Any],
    treedef: Any,
    pristine: list[np.ndarray],
    reports: list[LeafReport],
    caller: dict[str, Any],
    name: str,
    atol: float,
) -> tuple[list[LeafReport], str]:
    """Im f(x + i·h·eᵢ)/h for every element; used where it agrees with the central differences, else a notice."""
    work = [orig.astype(np.result_type(orig.dtype, np.complex64)) for orig in pristine]
    values = []
    try:
        with warnings.catch_warnings(), np.errstate(**caller):
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            for leaf, orig in zip(work, pristine):
                flat = leaf.reshape(-1)
                h = np.finfo(orig.dtype).eps ** 2 * step_scale(orig).reshape(-1)
                out = np.empty(flat.size)
                for i in range(flat.size):
                    flat[i] = complex(orig.flat[i], h[i])
                    value = func(treedef.unflatten(work))
                    flat[i] = orig.flat[i]
                    out[i] = np.imag(value) / h[i]
                values.append(out.reshape(orig.shape))
    except Exception as exc:  # any refusal of complex input means: no complex step here
        return reports, (
            f"method='complex' fell back to central differences: {name} rejected complex input "
            f"({type(exc).__name__}: {exc})"
        )
    agree = all(np.all((np.abs(c - r.numeric) <= r.error) | r.kink | r.jumps) for c, r in zip(values, reports))
    if not agree:
        return reports, (
            f"method='complex' fell back to central differences: the complex step disagrees with them, "
            f"so {name} is not complex-analytic (abs, max, comparisons or a real cast break it)"
        )
    updated = []
    for c, r in zip(values, reports):
        eps = float(np.finfo(r.dtype).eps)
        error = np.where(r.kink, r.error, 8 * eps * np.abs(c))
        numeric = np.where(r.kink, r.numeric, c)
        tolerance = tolerance_of(np.abs(r.analytic.astype(np.float64)), numeric, error, r.rtol, atol) + error
        updated.append(
            LeafReport(
                r.path,
                r.analytic,
                numeric,
                error,
                tolerance,
                r.step,
                r.kink,
                jump=r.jump,
                rtol=r.rtol,
                unresolved=r.unresolved,
            )
        )
    return updated, "method='complex': the complex step agreed with the central differences and replaced them"
