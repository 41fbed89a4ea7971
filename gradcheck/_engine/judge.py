"""Judging elements of one leaf: stencils, Richardson extrapolation, larger steps where rounding swamps a small
derivative, and a second look at kinks, domain boundaries and jumps (the rules are in :mod:`gradcheck._engine`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradcheck._engine.arith import SIX_SIGMA, element_scale, largest_finite, tolerance_of, within_errors
from gradcheck._engine.evaluate import Evaluator
from gradcheck.report import LeafReport

__all__ = ["CENTRAL", "FAR", "SAMPLES", "Stencil", "Verdict", "judge_elements", "judge_leaf"]


class Stencil:
    """f − f(x) at x + k·h·eᵢ for k in ``offsets``, for elements ``idx`` of one leaf; ``h`` are the steps taken.

    Values are kept relative to f(x), so that differences of a huge f never overflow.
    """

    def __init__(self, h: np.ndarray, offsets: np.ndarray, values: np.ndarray) -> None:
        self.h, self.offsets, self.values = h, offsets, values

    @classmethod
    def at(cls, ev: Evaluator, k: int, idx: np.ndarray, h: np.ndarray, offsets: np.ndarray, f0: float) -> Stencil:
        base = ev.pristine[k].reshape(-1)[idx].astype(np.float64)
        points = (base[:, None] + offsets * h[:, None]).astype(ev.pristine[k].dtype).astype(np.float64)
        values = ev.at(k, idx, points) - f0
        values[points == base[:, None]] = np.nan  # a step lost to rounding differentiates nothing
        return cls(h, offsets, values)

    def richardson(self, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Central: numeric and error as in the module docstring."""
        gp, gm, gp2, gm2 = self.values.T
        d1 = (gp - gm) / (2 * self.h)
        d2 = (gp2 - gm2) / (4 * self.h)
        numeric = d1 + (d1 - d2) / 3
        error = np.abs(d1 - d2) + 1.5 * noise / self.h
        numeric[~np.isfinite(self.values).all(axis=1)] = np.nan
        return numeric, error

    def fourth_differences(self) -> np.ndarray:
        gp, gm, gp2, gm2 = self.values.T
        result: np.ndarray = gp2 - 4 * gp - 4 * gm + gm2
        return result

    def magnitude(self, f0: float) -> np.ndarray:
        """The largest |f| the stencil saw, per element."""
        return abs(f0) + largest_finite(self.values)


CENTRAL = np.array([1.0, -1.0, 2.0, -2.0])


FAR = np.array([4.0, -4.0])


# the offsets, in units of h, of every point a second look has seen, in order (0 is x itself)
SAMPLES = np.array(
    [-4, -2, -1, -0.5, -0.25, -0.125, 0, 0.125, 0.25, 0.5, 1, 2, 4]
)  # a fourth difference of pure rounding stays below this many noise units


@dataclass
class Verdict:
    """Per element of the rows being judged: the numeric derivative, its error, the tolerance, the step, whether
    f has a kink there (and the analytic value is a one-sided derivative or between them), and the size of a jump of
    f found at x (0 where f is continuous)."""

    numeric: np.ndarray
    error: np.ndarray
    tolerance: np.ndarray
    h: np.ndarray
    kink: np.ndarray
    jump: np.ndarray

    def retolerate(self, rows: np.ndarray, a: np.ndarray, rtol: float, atol: float) -> None:
        self.tolerance[rows] = tolerance_of(a[rows], self.numeric[rows], self.error[rows], rtol, atol)


def judge_leaf(
    ev: Evaluator,
    k: int,
    path: str,
    a: np.ndarray,
    f0: float,
    noise: float,
    rtol: float,
    atol: float,
    step: float | None,
) -> LeafReport:
    v = judge_elements(ev, k, np.arange(a.size), a.reshape(-1).astype(np.float64), f0, noise, rtol, atol, step)
    shape = a.shape
    return LeafReport(
        path,
        a,
        v.numeric.reshape(shape),
        v.error.reshape(shape),
        v.tolerance.reshape(shape),
        v.h.reshape(shape),
        v.kink.reshape(shape),
        jump=v.jump.reshape(shape),
        rtol=rtol,
    )


def judge_elements(
    ev: Evaluator,
    k: int,
    idx: np.ndarray,
    a: np.ndarray,
    f0: float,
    noise_at_x: float,
    rtol: float,
    atol: float,
    step: float | None,
) -> Verdict:
    """Numeric derivative, error, tolerance, kink and jump for elements ``idx`` of leaf k (module docstring)."""
    orig = ev.pristine[k]
    eps = max(ev.f_eps, float(np.finfo(orig.dtype).eps))
    st = Stencil.at(ev, k, idx, _initial_steps(orig, idx, step), CENTRAL, f0)
    _shrink_where_not_finite(ev, k, idx, st, f0)
    # Rounding of f is at least one ulp of the largest value the element's stencil saw. And where f took exactly its
    # value at x at every point of the stencil while grad predicts a change, f is quantised at least that coarsely
    # (a func that computes in a lower precision inside) or grad is wrong: either way the step must grow to tell.
    noise = np.maximum(noise_at_x, eps * st.magnitude(f0))
    frozen = (st.values == 0).all(axis=1)
    noise[frozen] = np.maximum(noise[frozen], np.abs(a[frozen]) * st.h[frozen])
    numeric, error = st.richardson(noise)
    enlarged, before = _enlarge_steps(ev, k, idx, a, f0, noise, eps, st, numeric, error)
    v = Verdict(
        numeric,
        error,
        tolerance_of(a, numeric, error, rtol, atol),
        st.h,
        np.zeros(a.size, dtype=bool),
        np.zeros(a.size),
    )
    # Failing elements, and passing ones whose error estimate is a quarter of their size or more (a kink inside
    # the stencil inflates it, and would let a wrong value through): look again.
    uninformative = error > 0.25 * np.maximum(np.abs(a), np.abs(numeric))
    redo = np.flatnonzero(~(np.abs(a - numeric) <= v.tolerance) | uninformative)
    if redo.size:
        _second_look(ev, k, idx, redo, a, f0, noise, eps, st, v, enlarged, before, rtol, atol)
    return v


def _initial_steps(orig: np.ndarray, idx: np.ndarray, step: float | None) -> np.ndarray:
    base = orig.reshape(-1)[idx].astype(np.float64)
    if step is None:
        h = np.finfo(orig.dtype).eps ** (1 / 3) * element_scale(orig).reshape(-1)[idx]
    else:
        h = np.full(base.shape, step)
    # Round x + h to the leaf's dtype and divide by the step that rounding leaves.
    return np.asarray((base + h).astype(orig.dtype).astype(np.float64) - base)


def _shrink_where_not_finite(ev: Evaluator, k: int, idx: np.ndarray, st: Stencil, f0: float) -> None:
    """f not finite somewhere in the stencil (a domain boundary such as log or sqrt near 0): divide the step by 8,
    up to twelve times, until it is, and never below the smallest step x + h can still resolve."""
    orig = ev.pristine[k]
    for _ in range(12):
        broken = np.flatnonzero(~np.isfinite(st.values).all(axis=1))
        base = orig.reshape(-1)[idx[broken]].astype(np.float64)
        smaller = (base + st.h[broken] / 8).astype(orig.dtype).astype(np.float64) - base
        broken = broken[smaller > 0]
        if not broken.size:
            return
        again = Stencil.at(ev, k, idx[broken], _rounded_steps(orig, idx[broken], st.h[broken] / 8), st.offsets, f0)
        st.h[broken], st.values[broken] = again.h, again.values


def _rounded_steps(orig: np.ndarray, idx: np.ndarray, h: np.ndarray) -> np.ndarray:
    base = orig.reshape(-1)[idx].astype(np.float64)
    rounded = (base + h).astype(orig.dtype).astype(np.float64) - base
    return np.where(rounded > 0, rounded, h)


def _enlarge_steps(
    ev: Evaluator,
    k: int,
    idx: np.ndarray,
    a: np.ndarray,
    f0: float,
    noise: np.ndarray,
    eps: float,
    st: Stencil,
    numeric: np.ndarray,
    error: np.ndarray,
    rounds: int = 2,
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Larger steps where rounding swamps a small derivative (in place).

    An element whose error estimate is over 1% of its size and mostly rounding (f barely changes along it, as for
    the first layer of a deep sigmoid network) is differentiated again with the step that balances the two error
    terms, at most 1000× larger per round and never beyond a tenth of the element's scale. The new estimate is kept
    when it is more precise, agrees with the old one within their errors, its fourth differences at h and 2h are
    within the noise, and its one-sided derivatives agree with each other (a larger step must not cross a kink).
    """
    cap = 0.1 * element_scale(ev.pristine[k]).reshape(-1)[idx]
    before = (st.h.copy(), st.values.copy(), numeric.copy(), error.copy())
    enlarged = np.zeros(st.h.size, dtype=bool)
    for _ in range(rounds):
        rounding = 1.5 * noise / st.h
        truncation = np.maximum(error - rounding, 0)
        coarse = (
            (error > 0.01 * np.maximum(np.abs(a), np.abs(numeric)))
            & (rounding > 2 * truncation)
            & (st.h < cap)
            & np.isfinite(numeric)
        )
        rows = np.flatnonzero(coarse)
        if not rows.size:
            break
        factor = _step_factor(a[rows], numeric[rows], rounding[rows], truncation[rows])
        h = _rounded_steps(ev.pristine[k], idx[rows], np.minimum(st.h[rows] * factor, cap[rows]))
        bigger = Stencil.at(ev, k, idx[rows], h, CENTRAL, f0)
        far = Stencil.at(ev, k, idx[rows], h, FAR, f0).values
        noise2 = np.maximum(noise[rows], eps * np.fmax(bigger.magnitude(f0), abs(f0) + largest_finite(far)))
        n2, e2 = bigger.richardson(noise2)
        # A kink at x too small for the fourth difference to show (jump·2h below 1.5·√70·noise) still shifts a
        # central difference by up to half the jump: on a larger step that allowance must be paid explicitly.
        e2 = e2 + SIX_SIGMA * noise2 / (4 * bigger.h)
        smooth = _smooth_on(bigger, far, noise2, n2, e2)
        keep = np.isfinite(n2) & (e2 < error[rows]) & within_errors(n2, e2, numeric[rows], error[rows]) & smooth
        take = rows[keep]
        st.h[take], st.values[take] = bigger.h[keep], bigger.values[keep]
        noise[take] = noise2[keep]
        numeric[take], error[take] = n2[keep], e2[keep]
        enlarged[take] = True
    return enlarged, before


def _step_factor(a: np.ndarray, numeric: np.ndarray, rounding: np.ndarray, truncation: np.ndarray) -> np.ndarray:
    """How much larger a step should be: the factor that balances the two error terms, or (when the truncation
    estimate is itself mostly rounding) the one that brings rounding under 0.3% of the derivative, whichever is
    larger, between 2 and 1000."""
    mag = np.maximum(np.abs(a), np.abs(numeric))
    balance = np.cbrt(rounding / (2 * np.maximum(truncation, 1e-300)))
    quiet = rounding / np.maximum(0.003 * mag, 1e-300)
    return np.asarray(np.clip(np.fmax(balance, quiet), 2, 1000))


def _smooth_on(
    bigger: Stencil, far: np.ndarray, noise: np.ndarray, numeric: np.ndarray, error: np.ndarray
) -> np.ndarray:
    """Whether f is smooth on a larger stencil: fourth differences at h and 2h within the noise, and the one-sided
    derivatives agreeing with each other and with the central one (a larger step must not cross a kink)."""
    gp, gm, gp2, gm2 = bigger.values.T
    right, right_err = _one_sided(gp, gp2, far[:, 0], bigger.h, noise)
    left, left_err = _one_sided(gm, gm2, far[:, 1], -bigger.h, noise)
    return np.asarray(
        (np.abs(bigger.fourth_differences()) <= SIX_SIGMA * noise)
        & (np.abs(far[:, 0] - 4 * gp2 - 4 * gm2 + far[:, 1]) <= SIX_SIGMA * noise)
        & within_errors(left, left_err, right, right_err)
        & within_errors(left, left_err, numeric, error)
        & within_errors(right, right_err, numeric, error)
    )


def _one_sided(
    g1: np.ndarray, g2: np.ndarray, g4: np.ndarray, h: np.ndarray, noise: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Second-order one-sided differences at steps h and 2h (h < 0 for the left side), Richardson-extrapolated.

    With g(t) = f(x + t) − f(x): S(h) = (4g(h) − g(2h)) / 2h has error c·h² + rounding ≤ 4·noise/|h|; S(2h) uses
    g(2h) and g(4h).
    """
    s1 = (4 * g1 - g2) / (2 * h)
    s2 = (4 * g2 - g4) / (4 * h)
    numeric = s1 + (s1 - s2) / 3
    error = np.abs(s1 - s2) / 3 + 6 * noise / np.abs(h)
    numeric[~(np.isfinite(g1) & np.isfinite(g2) & np.isfinite(g4))] = np.nan
    return numeric, error


@dataclass
class _Looks:
    """A second look at some elements: one-sided derivatives on the step and on a step 8× smaller, a central one on
    the smaller step, and whether fourth differences show f to be smooth within the stencil."""

    estimates: list[tuple[np.ndarray, np.ndarray]]  # central (first), left, right, fine
    finer: list[tuple[np.ndarray, np.ndarray]]  # one-sided on the smaller step: left8, right8
    d4_smooth: np.ndarray
    noise: np.ndarray
    values: np.ndarray  # (rows, 13): f − f(x) at SAMPLES·h


def _look_again(
    ev: Evaluator,
    k: int,
    idx: np.ndarray,
    f0: float,
    noise: np.ndarray,
    eps: float,
    st: Stencil,
    numeric: np.ndarray,
    error: np.ndarray,
    a: np.ndarray,
) -> _Looks:
    h = st.h
    far = Stencil.at(ev, k, idx, h, FAR, f0).values
    near = Stencil.at(ev, k, idx, h / 8, CENTRAL, f0)
    near_far = Stencil.at(ev, k, idx, h / 8, FAR, f0).values
    seen = largest_finite(np.column_stack([far, near.values, near_far]))
    noise_r = np.maximum(noise, eps * (abs(f0) + seen))
    gp, gm, gp2, gm2 = st.values.T
    nfp, nfm, nfp2, nfm2 = near.values.T
    right = _one_sided(gp, gp2, far[:, 0], h, noise_r)
    left = _one_sided(gm, gm2, far[:, 1], -h, noise_r)
    fine = near.richardson(noise_r)
    # One-sided again on the finer step: a second kink within 4h on one side spoils the coarse one-sided value.
    right8 = _one_sided(nfp, nfp2, near_far[:, 0], h / 8, noise_r)
    left8 = _one_sided(nfm, nfm2, near_far[:, 1], -h / 8, noise_r)
    # A stencil on which f never left its value at x, while grad predicts a change, saw f's quantisation (or a wrong
    # grad), not a derivative: it vouches for nothing.
    for (_, ue), points in (
        (fine, near.values),
        (right8, np.column_stack([nfp, nfp2, near_far[:, 0]])),
        (left8, np.column_stack([nfm, nfm2, near_far[:, 1]])),
    ):
        frozen = (points == 0).all(axis=1) & (a != 0)
        ue[frozen] = np.maximum(ue[frozen], 6 * np.abs(a[frozen]))
    # Fourth differences at spacings h and 2h: a kink at distance d in (0, 2h) makes at least one of them of order
    # jump·h (each alone is blind at one d), while rounding keeps both near √70·σ = √70·noise/4.
    d4_2h = far[:, 0] - 4 * gp2 - 4 * gm2 + far[:, 1]
    d4_smooth = np.fmax(np.abs(st.fourth_differences()), np.abs(d4_2h)) <= SIX_SIGMA * noise_r
    values = np.column_stack(
        [
            far[:, 1],
            gm2,
            gm,
            near_far[:, 1],
            nfm2,
            nfm,
            np.zeros(idx.size),
            nfp,
            nfp2,
            near_far[:, 0],
            gp,
            gp2,
            far[:, 0],
        ]
    )
    return _Looks([(numeric, error), left, right, fine], [left8, right8], d4_smooth, noise_r, values)


def _second_look(
    ev: Evaluator,
    k: int,
    idx: np.ndarray,
    redo: np.ndarray,
    a: np.ndarray,
    f0: float,
    noise: np.ndarray,
    eps: float,
    st: Stencil,
    v: Verdict,
    enlarged: np.ndarray,
    before: tuple[np.ndarray, ...],
    rtol: float,
    atol: float,
) -> None:
    """Kinks, domain boundaries and jumps among the elements ``redo`` (rows of idx), in place."""
    sub = Stencil(st.h[redo], st.offsets, st.values[redo])
    looks = _look_again(ev, k, idx[redo], f0, noise[redo], eps, sub, v.numeric[redo], v.error[redo], a[redo])
    (left, left_err), (right, right_err) = looks.estimates[1], looks.estimates[2]
    # f not finite on one side of x (a domain boundary): the finite side's derivative is the numeric value.
    one_side = np.isnan(v.numeric[redo]) & (np.isfinite(left) != np.isfinite(right))
    side = np.where(np.isfinite(left), left, right)
    side_err = np.where(np.isfinite(left), left_err, right_err)
    fix = redo[one_side]
    v.numeric[fix], v.error[fix] = side[one_side], side_err[one_side]
    v.retolerate(fix, a, rtol, atol)
    smooth = looks.d4_smooth.copy()
    for i, (u, ue) in enumerate(looks.estimates):
        for w, we in looks.estimates[i + 1 :]:
            smooth &= within_errors(u, ue, w, we)
    # A step that was enlarged and turns out to straddle a kink was not valid: go back to the first estimate.
    revert = redo[enlarged[redo] & ~smooth]
    if revert.size:
        v.h[revert], st.values[revert] = before[0][revert], before[1][revert]
        v.numeric[revert], v.error[revert] = before[2][revert], before[3][revert]
        v.retolerate(revert, a, rtol, atol)
        smooth |= enlarged[redo]  # judged by the first estimate alone from here on
    # Looks smooth, but a kink at x whose jump·2h is below the fourth-difference threshold would not show, and
    # it shifts the central difference by up to half the jump: allow for it before calling a failure.
    hidden = redo[smooth & ~enlarged[redo]]
    v.error[hidden] += SIX_SIGMA * noise[hidden] / (4 * v.h[hidden])
    v.retolerate(hidden, a, rtol, atol)
    rough = ~smooth & ~one_side
    rough_looks = _subset(looks, rough)
    _judge_kinks(redo[rough], a, v, rough_looks, rtol, atol)
    _find_jumps(ev, k, idx, redo[rough], a, f0, v, rough_looks, rtol, atol)


def _subset(looks: _Looks, mask: np.ndarray) -> _Looks:
    return _Looks(
        [(u[mask], ue[mask]) for u, ue in looks.estimates],
        [(u[mask], ue[mask]) for u, ue in looks.finer],
        looks.d4_smooth[mask],
        looks.noise[mask],
        looks.values[mask],
    )


def _judge_kinks(rows: np.ndarray, a: np.ndarray, v: Verdict, looks: _Looks, rtol: float, atol: float) -> None:
    """Elements where f is not smooth within the stencil: the analytic value passes as a kink if it matches a
    one-sided derivative, the derivative on the finer stencil or lies between the one-sided ones (a subgradient);
    otherwise the most precise of those estimates becomes the numeric value, so that an element that passed only
    on an inflated error estimate fails."""
    if not rows.size:
        return
    ar = a[rows]
    first_tol = v.tolerance[rows]
    matches = np.zeros(rows.size, dtype=bool)

    # Only an estimate whose own error is small (a tenth of the values, or within four times the first tolerance:
    # a one-sided difference amplifies rounding four times as much as a central one) may vouch for the analytic
    # value: a one-sided stencil that straddles another kink has a large error, and matching within that would pass
    # anything.
    def usable(u: np.ndarray, ue: np.ndarray) -> np.ndarray:
        result: np.ndarray = (ue <= 0.1 * np.maximum(np.abs(u), np.abs(ar))) | (ue <= 4 * first_tol)
        return result

    # And only a stable one: a one-sided derivative that the step 8× smaller confirms, a finer central one that
    # both finer one-sided ones confirm. Rounding coarse enough to look like a kink (a staircase) confirms nothing.
    (left, left_err), (right, right_err), (fine, fine_err) = looks.estimates[1:4]
    (left8, left8_err), (right8, right8_err) = looks.finer

    def agree(u: np.ndarray, ue: np.ndarray, w: np.ndarray, we: np.ndarray) -> np.ndarray:
        return within_errors(
            u, ue + rtol * np.abs(u), w, we
        )  # up to rtol: points off x are rounded to the leaf's dtype

    stable_left = agree(left, left_err, left8, left8_err)
    stable_right = agree(right, right_err, right8, right8_err)
    stable_fine = agree(left8, left8_err, right8, right8_err) & agree(fine, fine_err, left8, left8_err)
    for (u, ue), stable in (
        ((left, left_err), stable_left),
        ((left8, left8_err), stable_left),
        ((right, right_err), stable_right),
        ((right8, right8_err), stable_right),
        ((fine, fine_err), stable_fine),
    ):
        matches |= stable & usable(u, ue) & (np.abs(ar - u) <= tolerance_of(ar, u, ue, rtol, atol))
    # between the one-sided derivatives (both stable), each end widened by its tolerance where it is usable
    left_tol = tolerance_of(ar, left, np.where(usable(left, left_err), left_err, 0.0), rtol, atol)
    right_tol = tolerance_of(ar, right, np.where(usable(right, right_err), right_err, 0.0), rtol, atol)
    low = np.fmin(left - left_tol, right - right_tol)
    high = np.fmax(left + left_tol, right + right_tol)
    matches |= stable_left & stable_right & (ar >= low) & (ar <= high)
    v.kink[rows] = matches
    refute = ~matches
    if refute.any():
        cand = np.stack([u for u, _ in looks.estimates[1:]])[:, refute]
        cand_err = np.stack([ue for _, ue in looks.estimates[1:]])[:, refute]
        best = np.argmin(np.where(np.isfinite(cand) & np.isfinite(cand_err), cand_err, np.inf), axis=0)
        cols = np.arange(int(refute.sum()))
        bad = rows[refute]
        v.numeric[bad], v.error[bad] = cand[best, cols], cand_err[best, cols]
        v.retolerate(bad, a, rtol, atol)


def _find_jumps(
    ev: Evaluator,
    k: int,
    idx: np.ndarray,
    rows: np.ndarray,
    a: np.ndarray,
    f0: float,
    v: Verdict,
    looks: _Looks,
    rtol: float,
    atol: float,
) -> None:
    """Tell a jump of f from a kink among the non-smooth elements ``rows``, in place.

    The steepest of the intervals between the points already seen is bisected down to adjacent floating-point
    numbers, keeping the half where f changes more, while f changes across it by more than its noise and a
    millionth of its size. A continuous f changes over an interval of width w by at most
    its slope times w; a jump keeps its size however small w gets. A jump is then either away from x, and the
    element is differentiated again with a step that stays on x's side of it, or at x, where no derivative exists
    and the element fails, reported with the jump's size.
    """
    finite = np.isfinite(looks.values).all(axis=1)
    rows, looks = rows[finite], _subset(looks, finite)
    if not rows.size:
        return
    orig = ev.pristine[k]
    base = orig.reshape(-1)[idx[rows]].astype(np.float64)
    h = v.h[rows]
    g = looks.values
    steepest = np.argmax(np.abs(np.diff(g, axis=1)) / np.diff(SAMPLES), axis=1)
    pick = np.arange(rows.size)
    lo = (base + SAMPLES[steepest] * h).astype(orig.dtype).astype(np.float64)
    hi = (base + SAMPLES[steepest + 1] * h).astype(orig.dtype).astype(np.float64)
    g_lo, g_hi = g[pick, steepest].copy(), g[pick, steepest + 1].copy()
    # Below a millionth of f, a step of f is indistinguishable from the rounding of a func that computes in float32
    # inside (its steps are 6e-8 of f): such steps are rounding, never reported as jumps.
    threshold = np.maximum(SIX_SIGMA * looks.noise, 1e-6 * (abs(f0) + largest_finite(g)))
    active = _bisect(ev, k, idx[rows], f0, (lo, hi, g_lo, g_hi), threshold)
    slope = np.fmax(np.abs(a[rows]), np.nanmax(np.abs(np.stack([u for u, _ in looks.estimates + looks.finer])), axis=0))
    size = np.abs(g_hi - g_lo)
    jumped = ~active & (size > 8 * np.nan_to_num(slope, nan=0.0) * np.abs(hi - lo) + threshold)
    position = (lo + hi) / 2 - base
    scale = element_scale(orig).reshape(-1)[idx[rows]]
    away = jumped & (np.abs(position) / 3 >= 1e3 * float(np.finfo(orig.dtype).eps) * scale)
    if away.any():
        # The jump's own size counts as noise there: a "jump" of rounding size is one step of a staircase (a
        # func that computes in a coarser precision inside), and the smaller stencil will meet its other steps.
        noise = np.maximum(looks.noise[away], size[away])
        _differentiate_before(ev, k, idx, rows[away], np.abs(position[away]) / 3, a, f0, v, noise, rtol, atol)
    at_x = rows[jumped & ~away]
    v.jump[at_x], v.kink[at_x] = size[jumped & ~away], False


def _bisect(
    ev: Evaluator, k: int, targets: np.ndarray, f0: float, interval: tuple[np.ndarray, ...], threshold: np.ndarray
) -> np.ndarray:
    """Halve each interval (lo, hi), with f − f(x) at its ends (g_lo, g_hi), all updated in place, keeping the half
    where f changes more, while f changes across it by more than ``threshold`` and a float lies strictly inside.
    Returns which intervals were still changing when the floats ran out: those hold a jump."""
    lo, hi, g_lo, g_hi = interval
    dtype = ev.pristine[k].dtype
    active = np.ones(targets.size, dtype=bool)
    for _ in range(80):
        mid = ((lo + hi) / 2).astype(dtype).astype(np.float64)
        active &= (np.abs(g_hi - g_lo) > threshold) & (mid > np.fmin(lo, hi)) & (mid < np.fmax(lo, hi))
        r = np.flatnonzero(active)
        if not r.size:
            break
        g_mid = ev.at(k, targets[r], mid[r][:, None])[:, 0] - f0
        ok = np.isfinite(g_mid)
        active[r[~ok]] = False
        r, g_mid = r[ok], g_mid[ok]
        left = np.abs(g_mid - g_lo[r]) >= np.abs(g_hi[r] - g_mid)
        hi[r], g_hi[r] = np.where(left, mid[r], hi[r]), np.where(left, g_mid, g_hi[r])
        lo[r], g_lo[r] = np.where(left, lo[r], mid[r]), np.where(left, g_lo[r], g_mid)
    return active


def _differentiate_before(
    ev: Evaluator,
    k: int,
    idx: np.ndarray,
    rows: np.ndarray,
    h: np.ndarray,
    a: np.ndarray,
    f0: float,
    v: Verdict,
    noise: np.ndarray,
    rtol: float,
    atol: float,
) -> None:
    """Central differences on a step small enough that the stencil stops short of a jump found near x."""
    st = Stencil.at(ev, k, idx[rows], _rounded_steps(ev.pristine[k], idx[rows], h), CENTRAL, f0)
    numeric, error = st.richardson(noise)
    v.numeric[rows], v.error[rows], v.h[rows] = numeric, error + SIX_SIGMA * noise / (4 * st.h), st.h
    v.kink[rows] = False
    v.retolerate(rows, a, rtol, atol)
