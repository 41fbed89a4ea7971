"""Jacobians of vector-valued functions, checked entry by entry with the same error model as gradients."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck.check import _non_negative, _scale, _tolerance
from gradcheck.errors import InvalidArgument, InvalidType
from gradcheck.report import GradientReport, LeafReport


def check_jacobian(func: Callable[[np.ndarray], Any], x: np.ndarray, *,
                   jacobian: Callable[[np.ndarray], Any] | None = None,
                   vjp: Callable[[np.ndarray, np.ndarray], Any] | None = None,
                   jvp: Callable[[np.ndarray, np.ndarray], Any] | None = None,
                   rtol: float | None = None, atol: float = 0.0) -> GradientReport:
    """Compare an analytic Jacobian of ``func`` at ``x`` with central differences, entry by entry.

    >>> check_jacobian(np.sin, np.array([0.1, 0.2]), jacobian=lambda x: np.diag(np.cos(x))).ok
    True

    func maps an array x of shape S to an array y of shape T. Give exactly one of: ``jacobian(x)`` returning an
    array of shape T + S; ``vjp(x, v)`` returning vᵀJ (shape S) for v of shape T; ``jvp(x, u)`` returning J·u
    (shape T) for u of shape S. vjp and jvp are called once per basis vector, so every entry is checked. Entry
    (t, s) of the report is ∂y[t]/∂x[s]. The rule and error model are those of :func:`gradcheck.check_gradient`
    (Richardson central differences, measured noise per output entry), without its kink analysis.
    """
    given = [name for name, f in (("jacobian", jacobian), ("vjp", vjp), ("jvp", jvp)) if f is not None]
    if len(given) != 1:
        raise InvalidArgument(f"pass exactly one of jacobian=, vjp=, jvp= (got {given or 'none'})")
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise InvalidType(f"x must be a floating-point ndarray, got {type(x).__name__} "
                          f"{getattr(x, 'dtype', '')}; convert it with np.asarray(x, dtype=np.float64)")
    atol = _non_negative("atol", atol)
    eps = float(np.finfo(x.dtype).eps)
    rtol = math.sqrt(eps) if rtol is None else _non_negative("rtol", rtol)
    name = getattr(func, "__name__", "func")
    name = "f" if name == "<lambda>" else name
    x0 = x.copy()
    work = x.copy()
    calls = 0

    def evaluate() -> np.ndarray:
        nonlocal calls
        calls += 1
        y = np.asarray(func(work))
        if not np.issubdtype(y.dtype, np.floating):
            raise InvalidType(f"{name}(x) returned dtype {y.dtype}; it must return a floating-point array")
        return y.astype(np.float64)

    y0 = evaluate()
    if not np.isfinite(y0).all():
        raise InvalidArgument(f"{name}(x) is not finite at the point given (first at {np.argwhere(~np.isfinite(y0))[0]}"
                              "); move x or fix func")
    J = _analytic(jacobian, vjp, jvp, work, x0, y0.shape)
    problems = []
    if not np.array_equal(work, x0):
        problems.append(f"{name} or the Jacobian function changed x in place; they must not modify their argument")
        work[...] = x0

    n, m = x0.size, y0.size
    flat, base = work.reshape(-1), x0.reshape(-1).astype(np.float64)
    h = eps ** (1 / 3) * _scale(x0).reshape(-1)
    h = (base + h).astype(x0.dtype).astype(np.float64) - base
    values = np.empty((n, 4, m))
    for i in range(n):
        for k, o in enumerate((1.0, -1.0, 2.0, -2.0)):
            flat[i] = base[i] + o * h[i]
            values[i, k] = evaluate().reshape(-1)
        flat[i] = x0.flat[i]
    d1 = (values[:, 0] - values[:, 1]) / (2 * h[:, None])
    d2 = (values[:, 2] - values[:, 3]) / (4 * h[:, None])
    noise = np.maximum(_noise(evaluate, work, x0, y0, eps), eps * np.abs(values).max(axis=1))   # (n, m)
    numeric = (d1 + (d1 - d2) / 3).T                                                          # (m, n)
    error = (np.abs(d1 - d2) + 1.5 * noise / h[:, None]).T
    numeric[~np.isfinite(values).all(axis=1).T] = np.nan
    a = J.reshape(m, n).astype(np.float64)
    tolerance = _tolerance(a, numeric, error, rtol, atol)
    shape = y0.shape + x0.shape
    steps = np.broadcast_to(h, (m, n))
    leaf = LeafReport("x", J, numeric.reshape(shape), error.reshape(shape), tolerance.reshape(shape),
                      np.array(steps).reshape(shape), np.zeros(shape, dtype=bool))
    return GradientReport(leaves=[leaf], rtol=rtol, atol=atol, noise=float(noise.max()) if noise.size else 0.0,
                          value=float(np.abs(y0).max()) if y0.size else 0.0, func_name=name, calls=calls,
                          problems=problems,
                          notes=[f"Jacobian of shape {shape}: entry (t, s) is d {name}(x)[t] / d x[s]"])


def _analytic(jacobian: Any, vjp: Any, jvp: Any, work: np.ndarray, x0: np.ndarray,
              out_shape: tuple[int, ...]) -> np.ndarray:
    shape = out_shape + x0.shape
    if jacobian is not None:
        J = np.asarray(jacobian(work))
        if J.shape != shape:
            raise InvalidArgument(f"jacobian(x) has shape {J.shape}; it must be output shape + input shape = {shape}")
        return J
    m, n = int(np.prod(out_shape)), x0.size
    J = np.empty((m, n))
    for k in range(m if vjp is not None else n):
        basis = np.zeros(m if vjp is not None else n, dtype=x0.dtype)
        basis[k] = 1
        if vjp is not None:
            row = np.asarray(vjp(work, basis.reshape(out_shape)))
            if row.shape != x0.shape:
                raise InvalidArgument(f"vjp(x, v) has shape {row.shape}; it must have the shape of x, {x0.shape}")
            J[k] = row.reshape(-1)
        else:
            col = np.asarray(jvp(work, basis.reshape(x0.shape)))
            if col.shape != out_shape:
                raise InvalidArgument(f"jvp(x, u) has shape {col.shape}; it must have the shape of func(x), "
                                      f"{out_shape}")
            J[:, k] = col.reshape(-1)
    return J.reshape(shape).astype(x0.dtype)


def _noise(evaluate: Callable[[], np.ndarray], work: np.ndarray, x0: np.ndarray, y0: np.ndarray,
           eps: float, points: int = 9) -> np.ndarray:
    """Per output entry: 4σ of the rounding, from 3rd and 4th differences along a fixed direction (ECnoise)."""
    rng = np.random.Generator(np.random.PCG64(20240601))
    direction = rng.choice([-1.0, 1.0], size=x0.shape) * _scale(x0)
    rows = [y0.reshape(-1)]
    for t in range(1, points):
        work[...] = x0 + t * 64 * eps * direction
        rows.append(evaluate().reshape(-1))
    work[...] = x0
    f = np.array(rows)
    if not np.isfinite(f).all():
        return np.zeros(y0.size)
    sigma = np.max([np.sqrt(math.factorial(k) ** 2 / math.factorial(2 * k) * np.mean(np.diff(f, n=k, axis=0) ** 2,
                                                                                   axis=0)) for k in (3, 4)], axis=0)
    return np.maximum(4 * sigma, eps * np.abs(y0.reshape(-1)))
