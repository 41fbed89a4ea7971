"""The finite-difference gradient checker.

For every element xᵢ of every leaf, with a step h = eps^(1/3)·scaleᵢ (eps of the leaf's dtype, scaleᵢ = max(|xᵢ|,
RMS of the leaf), or 1 for an all-zero leaf):

    D(h)    = (f(x + h eᵢ) − f(x − h eᵢ)) / 2h                   central difference, error c·h² + rounding
    numeric = D(h) + (D(h) − D(2h)) / 3                          Richardson: the h² term cancels
    error   = |D(h) − D(2h)| / 3 + 1.5·noise / h                 truncation of D(h) (a bound for the extrapolated
                                                                 value) plus the worst rounding of the four values

``noise`` bounds the rounding error of one evaluation of f near x. It is measured, not assumed: f is evaluated at
nine points a few hundred ulps apart along a fixed direction, and the spread of their 3rd- and 4th-order
differences (where the smooth part of f has vanished) estimates the standard deviation σ of the rounding
(Moré & Wild's ECnoise); noise = max(4σ, eps·|f|).

An element passes iff ``|analytic − numeric| ≤ atol + rtol·max(|analytic|, |numeric|) + error``. There is no
absolute floor by default (atol = 0), so small gradients are judged against their own error estimate, and rtol
defaults to √eps of the dtype: the accuracy a correctly computed analytic gradient keeps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck.errors import GradientMismatch, InvalidArgument, InvalidType
from gradcheck.pytree import float_leaves, match_structure
from gradcheck.report import GradientReport, LeafReport


def check_gradient(func: Callable[[Any], Any], grad: Callable[[Any], Any], x: Any, *, rtol: float | None = None,
                   atol: float = 0.0, step: float | None = None) -> GradientReport:
    """Compare ``grad(x)`` with central differences of ``func`` at ``x``, element by element.

    >>> f = lambda p: float(np.sum(p["w"] ** 3))
    >>> g = lambda p: {"w": 3 * p["w"] ** 2}
    >>> check_gradient(f, g, {"w": np.array([1.0, -2.0])}).ok
    True

    func(x) returns a real scalar; grad(x) returns an object of x's structure, shapes and dtypes. x is an ndarray
    or a (nested) list, tuple or dict of floating-point ndarrays; it is copied and never changed. The rule (see
    :mod:`gradcheck.check`): an element passes iff |analytic − numeric| ≤ atol + rtol·max(|analytic|, |numeric|) +
    error, with rtol defaulting to √eps of the leaf's dtype. ``step`` fixes h for every element instead.

    Besides values it checks that neither func nor grad changes x and that grad gives the same answer twice. The
    returned :class:`GradientReport` says which element is worst and by how much; it never passes a nan or inf.
    """
    if not callable(func) or not callable(grad):
        bad = "func" if not callable(func) else "grad"
        raise InvalidType(f"{bad} must be callable, got {type(func if bad == 'func' else grad).__name__}; pass "
                          "check_gradient(func, grad, x) with func(x) -> scalar and grad(x) -> structure of x")
    atol = _non_negative("atol", atol)
    if rtol is not None:
        rtol = _non_negative("rtol", rtol)
    if step is not None and not (_is_real(step) and math.isfinite(step) and step > 0):
        raise InvalidArgument(f"step={step!r}; it must be a positive finite number (or None to derive it per element)")

    paths, leaves, treedef = float_leaves(x)
    pristine = [leaf.copy() for leaf in leaves]
    work = treedef.unflatten(leaves)   # func and grad see these arrays; the check perturbs them in place
    name = getattr(func, "__name__", "func")
    name = "f" if name == "<lambda>" else name
    eps = max(float(np.finfo(leaf.dtype).eps) for leaf in leaves)
    rtol = math.sqrt(eps) if rtol is None else rtol
    calls = 0

    def evaluate() -> float:
        nonlocal calls
        calls += 1
        return _scalar(func(work), name)

    f0 = evaluate()
    if not math.isfinite(f0):
        raise InvalidArgument(f"{name}(x) = {f0} at the point given; the check needs a finite value there: move x or "
                              "fix func")
    problems: list[str] = []
    _note_mutation(problems, leaves, pristine, paths, f"{name}(x)")

    analytic = [g.copy() for g in match_structure(treedef, paths, leaves, grad(work), "grad(x)")]
    if _note_mutation(problems, leaves, pristine, paths, "grad(x)"):
        for leaf, orig in zip(leaves, pristine):
            leaf[...] = orig
    again = match_structure(treedef, paths, leaves, grad(work), "grad(x)")
    _note_unrepeatable(problems, analytic, again, paths, rtol)
    for leaf, orig in zip(leaves, pristine):
        leaf[...] = orig

    noise = _estimate_noise(evaluate, leaves, pristine, f0, eps)
    reports = []
    for path, leaf, orig, a in zip(paths, leaves, pristine, analytic):
        numeric, error, h = _differentiate(evaluate, leaf, orig, noise, step)
        with np.errstate(invalid="ignore", over="ignore"):
            magnitude = np.maximum(np.abs(a.astype(np.float64)), np.abs(numeric))
        tolerance = atol + rtol * magnitude + error
        reports.append(LeafReport(path, a, numeric, error, tolerance, h))
    if _note_mutation(problems, leaves, pristine, paths, f"{name}(x) during the differences"):
        pass
    return GradientReport(leaves=reports, rtol=rtol, atol=atol, noise=noise, value=f0, func_name=name, calls=calls,
                          problems=problems)


def assert_gradient(func: Callable[[Any], Any], grad: Callable[[Any], Any], x: Any, **options: Any) -> GradientReport:
    """:func:`check_gradient`, raising :class:`GradientMismatch` (an AssertionError) with the report when it fails."""
    __tracebackhide__ = True
    report = check_gradient(func, grad, x, **options)
    if not report.ok:
        raise GradientMismatch(report)
    return report


# -- numerical differentiation -------------------------------------------------------------------------------------
def _differentiate(evaluate: Callable[[], float], leaf: np.ndarray, orig: np.ndarray, noise: float,
                   step: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Richardson-extrapolated central differences for every element of ``leaf`` (perturbed in place, restored)."""
    flat, base = leaf.reshape(-1), orig.reshape(-1).astype(np.float64)
    if step is None:
        rms = math.sqrt(float(np.mean(base * base))) if base.size else 0.0
        scale = np.maximum(np.abs(base), rms if rms > 0 else 1.0)
        h = np.finfo(leaf.dtype).eps ** (1 / 3) * scale
    else:
        h = np.full(base.shape, float(step))
    # Perturbed coordinates rounded to the leaf's dtype; the differences divide by the steps actually taken.
    offsets = np.array([1.0, -1.0, 2.0, -2.0])
    points = (base[:, None] + offsets * h[:, None]).astype(leaf.dtype)
    values = np.empty(points.shape)
    for i in range(flat.size):
        for k in range(4):
            flat[i] = points[i, k]
            values[i, k] = evaluate()
        flat[i] = orig.flat[i]
    x64 = points.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        d1 = (values[:, 0] - values[:, 1]) / (x64[:, 0] - x64[:, 1])
        d2 = (values[:, 2] - values[:, 3]) / (x64[:, 2] - x64[:, 3])
        numeric = d1 + (d1 - d2) / 3
        h_taken = (x64[:, 0] - x64[:, 1]) / 2
        error = np.abs(d1 - d2) / 3 + 1.5 * noise / h_taken
    bad = ~np.isfinite(values).all(axis=1)
    numeric[bad] = np.nan
    shape = leaf.shape
    return numeric.reshape(shape), error.reshape(shape), h_taken.reshape(shape)


def _estimate_noise(evaluate: Callable[[], float], leaves: list[np.ndarray], pristine: list[np.ndarray], f0: float,
                    eps: float, points: int = 9) -> float:
    """A bound on the rounding error of one evaluation of func near x (see the module docstring)."""
    rng = np.random.Generator(np.random.PCG64(20240601))  # a fixed direction: the estimate is reproducible
    directions = [rng.choice([-1.0, 1.0], size=leaf.shape) * np.maximum(np.abs(orig), 1e-30) for leaf, orig in
                  zip(leaves, pristine)]
    values = [f0]
    for t in range(1, points):
        for leaf, orig, d in zip(leaves, pristine, directions):
            leaf[...] = orig + (t * 64 * np.finfo(leaf.dtype).eps) * d
        values.append(evaluate())
    for leaf, orig in zip(leaves, pristine):
        leaf[...] = orig
    f = np.array(values)
    floor = eps * max(abs(f0), np.finfo(np.float64).tiny)
    if not np.isfinite(f).all():
        return floor
    sigmas = []
    for k in (3, 4):
        diffs = np.diff(f, n=k)
        gamma = math.factorial(k) ** 2 / math.factorial(2 * k)
        sigmas.append(math.sqrt(gamma * float(np.mean(diffs * diffs))))
    return max(4 * max(sigmas), floor)


# -- invariants ----------------------------------------------------------------------------------------------------
def _note_mutation(problems: list[str], leaves: list[np.ndarray], pristine: list[np.ndarray], paths: list[str],
                   who: str) -> bool:
    for path, leaf, orig in zip(paths, leaves, pristine):
        changed = ~((leaf == orig) | (np.isnan(leaf) & np.isnan(orig)))
        if changed.any():
            i = tuple(int(k) for k in np.argwhere(changed)[0])
            problems.append(f"{who} changed x in place: {path}[{', '.join(map(str, i))}] went from "
                            f"{float(orig[i]):.6g} to {float(leaf[i]):.6g} ({int(changed.sum())} entries changed); "
                            "func and grad must not modify their argument (an optimiser step inside grad?)")
            return True
    return False


def _note_unrepeatable(problems: list[str], first: list[np.ndarray], second: list[np.ndarray], paths: list[str],
                       rtol: float) -> None:
    for path, a, b in zip(paths, first, second):
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            differ = ~(np.abs(a64 - b64) <= rtol * np.maximum(np.abs(a64), np.abs(b64)))
        differ &= ~(np.isnan(a64) & np.isnan(b64))
        if differ.any():
            i = tuple(int(k) for k in np.argwhere(differ)[0])
            problems.append(f"grad(x) is not repeatable: {path}[{', '.join(map(str, i))}] was {float(a64[i]):.6g} on "
                            f"the first call and {float(b64[i]):.6g} on the second at the same x; reset gradient "
                            "buffers (zero them) at the start of each call")
            return


# -- argument checks -----------------------------------------------------------------------------------------------
def _scalar(value: Any, name: str) -> float:
    if isinstance(value, np.ndarray):
        if value.ndim != 0:
            raise InvalidArgument(f"{name}(x) returned an array of shape {value.shape}; check_gradient needs a scalar: "
                                  "return the loss itself, e.g. its .sum() or .mean()")
        value = value[()]
    if isinstance(value, (complex, np.complexfloating)):
        raise InvalidType(f"{name}(x) returned a complex value {value!r}; it must be real")
    if not _is_real(value):
        raise InvalidType(f"{name}(x) returned a {type(value).__name__}; it must return a real scalar (a float)")
    return float(value)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _non_negative(name: str, value: Any) -> float:
    if not _is_real(value) or not math.isfinite(value) or value < 0:
        raise InvalidArgument(f"{name}={value!r}; it must be a finite number >= 0")
    return float(value)
