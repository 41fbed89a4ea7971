"""The complex step, Im f(x + i·h·eᵢ)/h: no cancellation, so a few ulps of error where func is complex-analytic.

Where func is not analytic the complex step is silently wrong: a term such as c·abs(x) returns a real value for a
complex input and adds nothing to the imaginary part, so the complex step misses c·sign(x) whatever its size. The
central differences see it, but only above their own error. So the complex step is trusted for an element only as
far as a second, much larger step H shows func analytic there. For analytic f,

    central(H) = f′ + H²f‴/6 + O(H⁴)   and   Im f(x + iH)/H = f′ − H²f‴/6 + O(H⁴),

so their mean is f′ + O(H⁴), while a part of f that ignores the imaginary direction moves the mean by half its
slope. The residual R(H) = mean − complex step is taken at H and H/2. Where it falls off as H⁴ (within the rounding
of f over H), it bounds that slope by 2·max|R|; where it does not (a kink within H, a term the imaginary direction
misses), func is not shown analytic there. The complex step's error is that bound, plus the rounding over H, plus
what a kink too small for the central differences to show could hide (their own allowance): never a few ulps
alone. It replaces the central differences only on elements they passed, where it agrees with them and is tighter;
it may then fail a bug too small for them, but never passes an element they failed or could not resolve.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck._engine.arith import step_scale, tolerance_of
from gradcheck._engine.judge import HIDDEN_KINK
from gradcheck.report import LeafReport

__all__ = ["complex_step_reports"]


def complex_step_reports(
    func: Callable[[Any], Any],
    treedef: Any,
    pristine: list[np.ndarray],
    reports: list[LeafReport],
    noise: list[float],
    caller: dict[str, Any],
    name: str,
    atol: float,
) -> tuple[list[LeafReport], str, int]:
    """Each element's complex step with its analyticity bound; used where that bound is tighter than the central
    differences' error and the two agree. Returns the reports, a note for the report and the calls made."""
    work = [orig.astype(np.result_type(orig.dtype, np.complex64)) for orig in pristine]
    sigmas = [np.maximum(n, 0.0 if r.noise is None else r.noise).reshape(-1) for n, r in zip(noise, reports)]
    try:
        with warnings.catch_warnings(), np.errstate(**caller):
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            probes = [_probe_leaf(func, treedef, work, k, orig, sigmas[k]) for k, orig in enumerate(pristine)]
    except Exception as exc:  # any refusal of complex input means: no complex step here
        return (
            reports,
            f"method='complex' fell back to central differences: {name} rejected complex input "
            f"({type(exc).__name__}: {exc})",
            0,
        )
    calls = 7 * sum(orig.size for orig in pristine)
    updated = [
        _adopt(r, orig, c, bound, sigma.reshape(orig.shape), atol)
        for r, orig, (c, bound), sigma in zip(reports, pristine, probes, sigmas)
    ]
    used = sum(int(n) for _, n in updated)
    total = sum(orig.size for orig in pristine)
    if used == 0:
        return (
            reports,
            "method='complex' fell back to central differences: on no element did a second step show "
            f"{name} complex-analytic more tightly than they resolve it (abs, max, comparisons or a real cast "
            "break analyticity)",
            calls,
        )
    return (
        [r for r, _ in updated],
        f"method='complex': the complex step replaced the central differences on {used} of {total} elements, "
        "where a second step showed func complex-analytic and it agreed with them",
        calls,
    )


def _probe_leaf(
    func: Callable[[Any], Any], treedef: Any, work: list[np.ndarray], k: int, orig: np.ndarray, sigma: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(complex step, 2·max|R| over H and H/2) for every element of leaf k; the rounding term is added later."""
    flat, eps = work[k].reshape(-1), float(np.finfo(orig.dtype).eps)
    tiny = eps**2 * step_scale(orig).reshape(-1)
    big = _second_step(orig).reshape(-1)
    c, residual = np.empty(flat.size), np.empty(flat.size)
    for i in range(flat.size):
        x_i = orig.flat[i]

        def f(dx: complex, i: int = i, x_i: Any = x_i) -> complex:
            flat[i] = x_i + dx
            value = complex(func(treedef.unflatten(work)))
            flat[i] = x_i
            return value

        c[i] = f(1j * tiny[i]).imag / tiny[i]
        r = []
        for H in (big[i], big[i] / 2):
            central = (f(H) - f(-H)).real / (2 * H)
            r.append(0.5 * (central + f(1j * H).imag / H) - c[i])
        # shown analytic only where R falls off as H⁴ (to within the rounding): a kink within H, or a term the
        # imaginary direction misses, leaves R alike at H and H/2 or growing
        regime = abs(r[1]) <= abs(r[0]) / 8 + 4 * sigma[i] / big[i]
        residual[i] = 2 * max(abs(r[0]), abs(r[1])) if regime else np.inf
    shape = orig.shape
    return c.reshape(shape), residual.reshape(shape) + 8 * eps * np.abs(c.reshape(shape))


def _second_step(x: np.ndarray) -> np.ndarray:
    """H = eps^(1/5)·max(abs(xᵢ), 1): where the O(H⁴) truncation of the mean and f's rounding over H balance."""
    return np.asarray(float(np.finfo(x.dtype).eps) ** 0.2 * np.maximum(np.abs(x.astype(np.float64)), 1.0))


def _adopt(
    r: LeafReport,
    x: np.ndarray,
    c: np.ndarray,
    bound: np.ndarray,
    sigma: np.ndarray,
    atol: float,
) -> tuple[LeafReport, int]:
    """The leaf with the complex step where the central differences passed an element, and the complex step agrees
    with them and is tighter: it may then fail a bug too small for them. It never passes an element they failed
    or could not resolve."""
    # a kink of a non-analytic term closer to x than the central differences' step, too small for them to show,
    # escapes the residual at H too: the complex step misses its whole slope, as far as that step's error allows
    error = bound + 4 * sigma / _second_step(x) + HIDDEN_KINK * sigma / r.step
    passed = ~r.kink & ~r.jumps & ~r.inconclusive & ~r.failed
    use = passed & (np.abs(c - r.numeric) <= r.error + error) & np.isfinite(c) & (error < r.error)
    if not use.any():
        return r, 0
    a = np.abs(r.analytic.astype(np.float64))
    new_error = np.where(use, error, r.error)
    numeric = np.where(use, c, r.numeric)
    tolerance = tolerance_of(a, numeric, new_error, r.rtol, atol) + new_error
    leaf = LeafReport(
        r.path,
        r.analytic,
        numeric,
        new_error,
        tolerance,
        r.step,
        r.kink,
        jump=r.jump,
        rtol=r.rtol,
        unresolved=r.unresolved,
        noise=r.noise,
    )
    return leaf, int(use.sum())
