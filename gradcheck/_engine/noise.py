"""How much func's value is rounded near x: measured per dtype on a short ray (see :mod:`gradcheck._engine`)."""

from __future__ import annotations

import math

import numpy as np

from gradcheck._engine.arith import JITTER, step_scale
from gradcheck._engine.evaluate import Evaluator

__all__ = ["estimate_noise", "local_sigma"]


def estimate_noise(ev: Evaluator, f0: float) -> list[float]:
    """Per leaf, a bound on the rounding error of one evaluation of func near x (see the module docstring).

    Measured for each dtype on its own, moving only the leaves of that dtype, so that a float32 leaf's coarse
    rounding does not blunt a float64 leaf's check.
    """
    by_dtype: dict[np.dtype, float] = {}
    for dtype in {orig.dtype for orig in ev.pristine}:
        rng = np.random.Generator(np.random.PCG64(20240601))  # a fixed direction: the estimate is reproducible
        # Random magnitudes as well as signs: a symmetric f (an odd sum at 0) is then not constant along the ray.
        direction = [
            rng.choice([-1.0, 1.0], size=orig.shape)
            * rng.uniform(0.5, 1.5, size=orig.shape)
            * step_scale(orig)
            * (orig.dtype == dtype)
            for orig in ev.pristine
        ]
        eps = float(np.finfo(dtype).eps)
        sigma = max(_ray_sigma(ev, direction, eps), _stencil_sigma(ev, direction, eps))
        # at least one ulp of f in the coarser of func's result and the leaves' dtype, as for every stencil
        floor = max(ev.f_eps, float(np.finfo(dtype).eps)) * abs(f0)
        by_dtype[dtype] = max(4 * sigma, floor, float(np.finfo(np.float64).tiny))
    return [by_dtype[orig.dtype] for orig in ev.pristine]


def _ray_sigma(ev: Evaluator, direction: list[np.ndarray], eps: float) -> float:
    """The rounding of f near x, measured along a fixed direction d: f at x + t·s·d, t = 1…9, and the standard
    deviation of its rounding from the 3rd and 4th differences of those values (Moré and Wild's ECnoise).

    The spacing s starts at 64 ulps. A ray on which f kept the same value at most points is quantised more coarsely
    than s (a float64 func that computes in float32 inside): s grows 8× at a time, while the ray stays within a
    thirty-sixth of the step, until f changes at most points, and the rounding is measured there. A ray that crosses
    a jump or a kink of f shows it as one difference far larger than the others: it is measured again from the
    other side of x, and a feature on both sides counts for nothing (it is never taken for rounding).
    """
    spacing = 64 * eps
    while spacing <= eps ** (1 / 3) / 36:
        for sign in (1.0, -1.0):
            f = ev.along_many([[sign * t * spacing * d for d in direction] for t in range(1, 10)])
            if _regular(f) and not _mostly_flat(f) and (spacing == 64 * eps or _like_rounding(f, _coarsest(ev))):
                return _difference_sigma(f)
        spacing *= 8
    return 0.0


def _stencil_sigma(ev: Evaluator, direction: list[np.ndarray], eps: float) -> float:
    """The rounding of f on the scale of the stencils themselves: the same measurement on a ray of spacing
    eps^(1/3)/16 (it spans about half a step). Rounding that grows with the distance from x (a float32 argument
    inside a float64 func, exact at x and coarse a step away) shows only here. A ray that meets a feature is not
    read (0): larger noise could only make elements inconclusive, never pass them, but a feature is not rounding."""
    spacing = eps ** (1 / 3) / 16
    for sign in (1.0, -1.0):
        f = ev.along_many([[sign * t * spacing * d for d in direction] for t in range(1, 10)])
        if _regular(f) and _like_rounding(f, _coarsest(ev)):
            return _difference_sigma(f)
    return 0.0


def _coarsest(ev: Evaluator) -> float:
    """The coarsest rounding, relative to f, a ray through x may show: a millionth, or 1024 ulps of func's result
    where that is coarser (a float32 result that cancels, such as tanh of a small float32 sum, is rounded far more
    coarsely than its own ulp)."""
    return max(1e-6, 1024 * ev.f_eps)


def _like_rounding(f: np.ndarray, coarsest: float) -> bool:
    """Whether the high differences of f look like rounding, as Moré and Wild's test has it: 2nd differences alike
    in size, 3rd and 4th differences that change sign, are alike in size along the ray and imply deviations that
    agree within a factor of 2; on a ray through x, also small beside the change of f along it and below
    ``coarsest`` times f. The smooth growth of f towards a pole or along a steep curve keeps their signs and grows
    with the order and along the ray; a pole crossed changes f by about as much as its differences; kinks crossed
    leave straight stretches between a few large second differences."""
    top = float(np.abs(f).max())
    if top == 0 or not math.isfinite(top):
        return False
    # rounding touches every point: second differences alike in size (the kinks a ray crosses make a few large
    # ones among straight stretches)
    second = np.abs(np.diff(f / top, n=2))
    if np.count_nonzero(second < second.max() / 16) > 1:
        return False
    sigmas = []
    for k in (3, 4):
        d = np.diff(f / top, n=k)
        if np.count_nonzero(np.diff(np.sign(d)) != 0) < 2:
            return False
        # rounding is alike along the ray; the differences of a function nearing a pole grow towards it
        half = d.size // 2
        first, last = float(np.sqrt(np.mean(d[:half] ** 2))), float(np.sqrt(np.mean(d[-half:] ** 2)))
        if not (first <= 8 * last and last <= 8 * first):
            return False
        sigmas.append(math.sqrt(math.factorial(k) ** 2 / math.factorial(2 * k) * float(np.mean(d**2))))
    # and rounding is small beside the change of f along the ray; a pole crossed makes them alike
    spread = float(np.ptp(f / top))
    # and, on a ray through x and its neighbours, rounding is small beside the change of f and no coarser than a
    # millionth of f (the line the jump test draws too); along one element, where f may be near 0 and barely
    # change, any quantum is allowed
    agree = max(sigmas) <= 2 * min(sigmas)
    return agree and (coarsest >= 1 or max(sigmas) <= min(spread / 16, coarsest))


def local_sigma(ev: Evaluator, k: int, idx: np.ndarray, f0: float, h: np.ndarray) -> np.ndarray:
    """The rounding of f along single elements ``idx`` of leaf k, as :func:`_ray_sigma` measures it along a
    direction, on spacings h/4096, h/512, h/64 and h/8, and the last two times JITTER, the largest found. The last
    rays reach h: an input rounded to float32 inside a float64 func quantises f on a grain the finer rays sit
    inside of, seeing only the rounding of the smooth rest, and a spacing that is nearly a multiple of the grain
    aliases it (JITTER breaks that). 0 where f never changes regularly there."""
    orig = ev.pristine[k]
    base = orig.reshape(-1)[idx].astype(np.float64)
    sigma = np.zeros(idx.size)
    for spacing in (h / 4096, h / 512, h / 64, JITTER * h / 64, h / 8, JITTER * h / 8):
        todo = np.arange(idx.size)
        for sign in (1.0, -1.0):
            if not todo.size:
                break
            points = base[todo, None] + sign * spacing[todo, None] * np.arange(1, 9)
            points = points.astype(orig.dtype).astype(np.float64)
            values = np.column_stack([np.zeros(todo.size), ev.at(k, idx[todo], points) - f0])
            found = np.array([_row_sigma(row) for row in values])
            sigma[todo] = np.maximum(sigma[todo], found)
            todo = todo[found == 0]
    return sigma


def _row_sigma(row: np.ndarray) -> float:
    """The rounding along one ray through x: a regular, rounding-like ray, or a grain (0: neither)."""
    if _regular(row) and not _mostly_flat(row) and _like_rounding(row, 1.0):
        return _difference_sigma(row)
    return _grain_sigma(row)


def _grain_sigma(f: np.ndarray) -> float:
    """f rounded to a grid q (a float32 value, or a float32 input, inside a float64 func) while it moves by at
    least q per spacing: its second differences are about 0 or small multiples of q, the nonzero ones alternating
    in sign, a pattern rounding can make sparse enough to look like kinks or jumps. A kink's second differences
    keep their sign; a single jump larger than f's change per spacing is not taken for a grain. Returns half the largest
    second difference (rounding moves each value by at least a quarter of it), or 0 where f does not show that
    pattern."""
    if not np.isfinite(f).all():
        return 0.0
    second = np.diff(f, n=2)
    top = float(np.abs(second).max())
    if top == 0:
        return 0.0
    grains = second[np.abs(second) > 0.01 * top]
    q = float(np.abs(grains).min())
    multiples = np.abs(grains) / q
    on_grid = bool((np.abs(multiples - np.round(multiples)) <= 0.02).all() and multiples.max() <= 4.5)
    alternate = bool((grains[1:] * grains[:-1] < 0).all())
    # one up-and-down pair is a jump unless f moves by a grain per spacing; two or more pairs are a grid (a
    # sawtooth, where the grid's steps and f's slope cancel)
    moves = bool(np.abs(f[-1] - f[0]) / (f.size - 1) >= q)
    enough = grains.size >= 4 or (grains.size >= 2 and moves)
    return top / 2 if enough and on_grid and alternate else 0.0


def _mostly_flat(f: np.ndarray) -> bool:
    """f took the same value at more than half of the steps along a ray: its rounding is coarser than the spacing."""
    return bool(np.count_nonzero(np.diff(f) == 0) > (f.size - 1) // 2)


def _regular(f: np.ndarray) -> bool:
    """Finite, and no difference far larger than the others (the signature of a jump, first differences, or of a
    kink, second differences)."""
    if not np.isfinite(f).all():
        return False
    scaled = f / max(float(np.abs(f).max()), float(np.finfo(np.float64).tiny))
    return not any(_outlier(np.abs(np.diff(scaled, n=n)), 1e-300) for n in (1, 2))


def _outlier(steps: np.ndarray, floor: float) -> bool:
    """One or two differences far larger than all others and than ``floor`` (a jump makes one first difference and
    two second differences stand out, a kink two second differences; rounding and quantisation make many alike)."""
    ordered = np.sort(steps)
    return bool(steps.size > 3 and ordered[-1] > 8 * ordered[-3] + floor)


def _difference_sigma(f: np.ndarray) -> float:
    top = float(np.abs(f).max())
    if top == 0 or not math.isfinite(top):
        return 0.0
    scaled = f / top
    return top * max(
        math.sqrt(math.factorial(k) ** 2 / math.factorial(2 * k) * float(np.mean(np.diff(scaled, n=k) ** 2)))
        for k in (3, 4)
    )
