"""Judging elements of one leaf under the judgement's invariant (written in :mod:`gradcheck._engine`): a first
stencil decides where f is shown smooth there; every other element gets a certificate from a ladder of smaller
stencils, one-sided derivatives or a located jump, or is inconclusive. Nothing here widens a tolerance by the size
of a misbehaviour of f: what a stencil shows that is not rounding sends the element elsewhere."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradcheck._engine.arith import JITTER, SIX_SIGMA, largest_finite, step_cap, step_scale, tolerance_of, within_errors
from gradcheck._engine.evaluate import Evaluator
from gradcheck._engine.noise import local_sigma
from gradcheck.report import INCONCLUSIVE, LeafReport

__all__ = ["HIDDEN_KINK", "LEVELS", "RESOLUTION", "Stencil", "Verdict", "initial_steps", "judge_elements", "judge_leaf"]

WIDE = np.array([1.0, -1.0, 2.0, -2.0, 4.0, -4.0, JITTER, -JITTER])
LEVELS = 7  # stencils h, h/8, …, h/8⁶ on the ladder
RESOLUTION = 0.05  # the coarsest relative error bound a pass may rest on: error ≤ RESOLUTION·|analytic| + atol

# the reasons an element is inconclusive, as codes of LeafReport.unresolved
COARSE, NO_STENCIL, FLAT = (INCONCLUSIVE.index(name) for name in ("coarse", "no smooth stencil", "flat"))

# what a kink at x that no fourth difference can show (jump in slope · 2h below SIX_SIGMA·noise) shifts a central
# difference by, in units of noise/h; every central estimate's error counts it, so no such kink can hide a bug
HIDDEN_KINK = SIX_SIGMA / 4
ROUNDING = 1.5  # a central difference's rounding error, in units of noise/h


class Stencil:
    """f − f(x) at x + t for the displacements t actually taken (``offsets·h`` rounded to the leaf's dtype), per
    element ``idx`` of one leaf. Values are kept relative to f(x), so that differences of a huge f never overflow."""

    def __init__(self, h: np.ndarray, offsets: np.ndarray, t: np.ndarray, values: np.ndarray) -> None:
        self.h, self.offsets, self.t, self.values = h, offsets, t, values

    @classmethod
    def at(cls, ev: Evaluator, k: int, idx: np.ndarray, h: np.ndarray, offsets: np.ndarray, f0: float) -> Stencil:
        base = ev.pristine[k].reshape(-1)[idx].astype(np.float64)
        points = (base[:, None] + offsets * h[:, None]).astype(ev.pristine[k].dtype).astype(np.float64)
        values = ev.at(k, idx, points) - f0
        t = points - base[:, None]
        values[t == 0] = np.nan  # a step lost to rounding differentiates nothing
        return cls(h, offsets, t, values)

    def col(self, offset: float) -> int:
        return int(np.flatnonzero(self.offsets == offset)[0])

    def slope(self, s: float) -> np.ndarray:
        """The central difference between the points at offsets +s and −s."""
        p, m = self.col(s), self.col(-s)
        return np.asarray((self.values[:, p] - self.values[:, m]) / (self.t[:, p] - self.t[:, m]))

    def fourth(self, numeric: np.ndarray, s: float) -> np.ndarray:
        """The fourth difference at spacing s, less the linear part that rounded displacements leave in it."""
        cols = [self.col(o) for o in (2 * s, s, -s, -2 * s)]
        c = np.array([1.0, -4.0, -4.0, 1.0])
        return np.asarray(self.values[:, cols] @ c - numeric * (self.t[:, cols] @ c))

    def estimate(self, noise: np.ndarray, s: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Numeric derivative, its error, and two ways f is shown smooth enough for the error to bound the
        estimate's, from the central differences at s and 2s (and 4s where the stencil reaches it).

        ``local``: the fourth difference q(s) is rounding (six standard deviations): no kink or jump on ±2s can
        then shift the estimate by more than the error, whose hidden-kink term covers what q(s) cannot show.
        ``regime`` (stencils reaching 4s): f is in its Taylor regime, D(2s) − D(4s) ≈ 4·(D(s) − D(2s)) as the h²
        term makes it, and q(s) is rounding or q(2s) ≈ 16·q(s) as the h⁴ term makes it (a kink makes q grow like
        h, a jump not at all). A step larger than the first must show the regime: far from it, a smooth f whose
        derivatives grow with their order fools the local test. The truncation term is abs(D(s) − D(2s)), or,
        in the regime, the smaller abs(R(s) − R(2s)) of the two extrapolated values."""
        d1, d2 = self.slope(s), self.slope(2 * s)
        numeric = d1 + (d1 - d2) / 3
        step = np.abs(self.t[:, self.col(s)])
        limit = SIX_SIGMA * noise
        # points that rounding has moved far from their offsets (steps near the leaf's ulp) make no stencil
        spread = np.abs(self.t[:, [self.col(o) for o in (s, -s, 2 * s, -2 * s)]]) / (step[:, None] * [1, 1, 2, 2])
        numeric[~(np.abs(spread - 1) <= 0.1).all(axis=1)] = np.nan
        q1 = self.fourth(numeric, s)
        local = np.abs(q1) <= limit
        truncation = np.abs(d1 - d2)
        hidden = HIDDEN_KINK * noise / step
        regime = np.zeros(numeric.shape, dtype=bool)
        if 4 * s in self.offsets:
            d4 = self.slope(4 * s)
            q2 = self.fourth(numeric, 2 * s)
            deviation = np.abs(q2 - 16 * q1)
            squared = np.abs((d2 - d4) - 4 * (d1 - d2)) <= 0.5 * np.abs(d2 - d4) + 8 * noise / step
            regime = squared & (local | (deviation <= 0.5 * np.abs(q2) + 16 * limit)) & self.off_grid(noise, s)
            truncation = np.where(regime, np.fmin(truncation, np.abs(numeric - (d2 + (d2 - d4) / 3))), truncation)
            # what the h² test let pass unexplained (it allows rounding-sized misfits) is counted, not assumed away:
            # kinks within the stencil that mimic the Taylor scaling leave it
            misfit = np.abs((d2 - d4) - 4 * (d1 - d2)) / 3
            truncation = np.where(regime, np.fmax(truncation, misfit), truncation)
            # a kink changes q(2s) − 16·q(s) by 28·jump·s and the estimate by jump/2: what the measured deviation
            # and the rounding leave room for
            hidden = np.where(local, hidden, (deviation + 16 * limit) / (56 * step))
        error = truncation + ROUNDING * noise / step + hidden
        numeric[~np.isfinite(error)] = np.nan
        finite = np.isfinite(numeric)
        return numeric, error, np.asarray(local & finite), np.asarray(regime & finite)

    def off_grid(self, noise: np.ndarray, s: float) -> np.ndarray:
        """Whether the central difference at JITTER·s, a step in no rational relation to the others, lies where the
        Taylor series through D(s) and D(2s) puts it (its h⁴ term is 3% of R(s) − R(2s)), within the rounding. A
        staircase sampled on a regular grid can alias into a smooth-looking stencil; an irrational step breaks it."""
        if JITTER * s not in self.offsets:
            return np.ones(self.values.shape[0], dtype=bool)
        d1, d2, d4, dj = self.slope(s), self.slope(2 * s), self.slope(4 * s), self.slope(JITTER * s)
        predicted = d1 + (d2 - d1) * (JITTER**2 - 1) / 3
        r1, r2 = d1 + (d1 - d2) / 3, d2 + (d2 - d4) / 3
        step = np.abs(self.t[:, self.col(s)])
        allowed = 0.1 * np.abs(r1 - r2) + 0.05 * np.abs(d1 - d2) + 3 * noise / step
        return np.asarray(np.abs(dj - predicted) <= allowed)

    def one_sided(self, noise: np.ndarray, side: float, s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """The derivative from one side (points at side·s, 2s, 4s): quadratic fits through x and two points,
        Richardson-extrapolated; error their difference plus rounding."""
        t1, t2, t4 = (self.t[:, self.col(side * m * s)] for m in (1, 2, 4))
        g1, g2, g4 = (self.values[:, self.col(side * m * s)] for m in (1, 2, 4))
        s1, s2 = _quadratic_slope(t1, g1, t2, g2), _quadratic_slope(t2, g2, t4, g4)
        numeric = s1 + (s1 - s2) / 3
        error = np.abs(s1 - s2) / 3 + 6 * noise / np.abs(t1)
        numeric[~np.isfinite(error)] = np.nan
        return numeric, error

    def frozen(self, s: float | None = None, side: float = 0.0) -> np.ndarray:
        """Whether f kept exactly its value at x at every point (of spacing s, on one side if side ≠ 0)."""
        keep = np.ones(self.offsets.size, dtype=bool)
        if s is not None:
            keep &= np.isin(np.abs(self.offsets), [s, 2 * s, 4 * s])
        if side:
            keep &= np.sign(self.offsets) == side
        return np.asarray((self.values[:, keep] == 0).all(axis=1))

    def magnitude(self, f0: float) -> np.ndarray:
        """The largest |f| the stencil saw, per element."""
        return abs(f0) + largest_finite(self.values)


def _quadratic_slope(t1: np.ndarray, g1: np.ndarray, t2: np.ndarray, g2: np.ndarray) -> np.ndarray:
    """g′(0) of the quadratic through (0, 0), (t1, g1), (t2, g2), written in r = t2/t1 so that no power of a tiny
    step underflows."""
    r = t2 / t1
    return np.asarray((g1 * r**2 - g2) / (t1 * r * (r - 1)))


@dataclass
class Verdict:
    """Per element of the rows being judged: the numeric derivative, its error, the tolerance, the step, whether
    f has a kink at x that the analytic value is a one-sided derivative of (or lies between), the size of a jump
    of f found at x (0 where f is continuous), and why the element is inconclusive (0: it is not)."""

    numeric: np.ndarray
    error: np.ndarray
    tolerance: np.ndarray
    h: np.ndarray
    kink: np.ndarray
    jump: np.ndarray
    unresolved: np.ndarray
    noise: np.ndarray  # the rounding of f on the element's stencils (not reported)

    @classmethod
    def empty(cls, n: int) -> Verdict:
        nan = np.full(n, np.nan)
        zeros = np.zeros(n, dtype=bool)
        return cls(nan, nan.copy(), nan.copy(), nan.copy(), zeros, np.zeros(n), np.zeros(n, dtype=np.int8), np.zeros(n))


@dataclass(frozen=True)
class _Judge:
    """What every rule needs: the elements of one leaf and the tolerance rule."""

    ev: Evaluator
    k: int
    idx: np.ndarray
    a: np.ndarray
    f0: float
    eps: float
    rtol: float
    atol: float
    resolution: float

    def resolved(self, a: np.ndarray, error: np.ndarray, h: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Whether an error bound is fine enough for a pass: within the resolution of abs(analytic) plus atol, or,
        for an analytic value of exactly 0, no larger than the rounding of f on that stencil makes it."""
        relative = error <= self.resolution * np.abs(a) + self.atol
        zero = (a == 0) & (error <= 2 * (ROUNDING + HIDDEN_KINK) * noise / np.abs(h) + self.atol)
        return np.asarray(relative | zero)

    def settle(self, v: Verdict, rows: np.ndarray, numeric: np.ndarray, error: np.ndarray, h: np.ndarray) -> None:
        """Decide rows on an admissible estimate: a pass must rest on an error within the resolution (else the
        element is inconclusive, ``coarse``); a failure stands whatever the error, since the error bounds it."""
        v.numeric[rows], v.error[rows], v.h[rows] = numeric, error, h
        a = self.a[rows]
        threshold = tolerance_of(a, numeric, error, self.rtol, self.atol)
        v.tolerance[rows] = threshold + error
        passes = np.abs(a - numeric) <= threshold
        coarse = passes & ~self.resolved(a, error, h, v.noise[rows])
        v.unresolved[rows] = np.where(coarse, COARSE, 0)
        v.kink[rows], v.jump[rows] = False, 0.0


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
    *,
    resolution: float = RESOLUTION,
) -> LeafReport:
    flat = a.reshape(-1).astype(np.float64)
    v = judge_elements(ev, k, np.arange(a.size), flat, f0, noise, rtol, atol, step, resolution=resolution)
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
        unresolved=v.unresolved.reshape(shape),
        noise=v.noise.reshape(shape),
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
    *,
    resolution: float = RESOLUTION,
) -> Verdict:
    """Numeric derivative, error, tolerance, kink, jump and inconclusiveness for elements ``idx`` of leaf k.

    The first stencil (±h, ±2h, ±4h) decides every element on which f is shown in its Taylor regime, a pass only
    where the error is within the resolution; the rest go down the certificate ladder."""
    orig = ev.pristine[k]
    eps = max(ev.f_eps, float(np.finfo(orig.dtype).eps))
    j = _Judge(ev, k, idx, a, f0, eps, rtol, atol, resolution)
    st = Stencil.at(ev, k, idx, initial_steps(orig, idx, step), WIDE, f0)
    _shrink_where_not_finite(j, st)
    noise = np.maximum(noise_at_x, j.eps * st.magnitude(f0))
    _measure_frozen(j, st, noise)
    numeric, error, _, smooth = st.estimate(noise)
    # rounding coarser than the rays at x showed (a quantised term among smooth ones, an input rounded to float32
    # inside) is measured along each element the first stencil does not show smooth, before a larger step is tried
    measured = ~smooth
    if measured.any():
        rough = np.flatnonzero(measured)
        noise[rough] = np.maximum(noise[rough], 4 * local_sigma(ev, k, idx[rough], f0, st.h[rough]))
        numeric, error, _, smooth = st.estimate(noise)
    enlarged = _enlarge_steps(j, noise, st, numeric, error)
    smooth |= enlarged
    flat = st.frozen() & (a != 0) & (np.abs(a) * st.h > noise)
    v = Verdict.empty(idx.size)
    v.noise[:] = noise
    rows = np.flatnonzero(smooth & ~flat)
    j.settle(v, rows, numeric[rows], error[rows], st.h[rows])
    # A pass too coarse to count is worth a smaller stencil only where truncation, not rounding, made it coarse.
    truncated = error - (ROUNDING + HIDDEN_KINK) * noise / st.h > (ROUNDING + HIDDEN_KINK) * noise / st.h
    # A failure on the first stencil is confirmed on the ladder: the next stencil down must agree with it.
    failing = smooth & ~(np.abs(a - numeric) <= v.tolerance - v.error)
    retry = ~smooth | failing | ((v.unresolved == COARSE) & truncated)
    v.numeric[flat], v.error[flat], v.h[flat] = 0.0, error[flat], st.h[flat]
    v.tolerance[flat] = tolerance_of(a[flat], np.zeros(int(flat.sum())), error[flat], rtol, atol) + error[flat]
    v.unresolved[flat] = FLAT
    open_rows = np.flatnonzero(retry & ~flat)
    if open_rows.size:
        _certify(j, open_rows, noise[open_rows], st.h[open_rows], v, measured[open_rows])
    return v


def initial_steps(orig: np.ndarray, idx: np.ndarray, step: float | None) -> np.ndarray:
    """eps^(1/3) times each element's own scale (or the fixed ``step``), rounded so that x + h is exact."""
    base = orig.reshape(-1)[idx].astype(np.float64)
    if step is None:
        h = np.finfo(orig.dtype).eps ** (1 / 3) * step_scale(orig).reshape(-1)[idx]
    else:
        h = np.full(base.shape, step)
    return np.asarray((base + h).astype(orig.dtype).astype(np.float64) - base)


def _rounded_steps(orig: np.ndarray, idx: np.ndarray, h: np.ndarray) -> np.ndarray:
    base = orig.reshape(-1)[idx].astype(np.float64)
    rounded = (base + h).astype(orig.dtype).astype(np.float64) - base
    return np.where(rounded > 0, rounded, h)


def _shrink_where_not_finite(j: _Judge, st: Stencil) -> None:
    """f not finite somewhere in the stencil (a domain boundary such as log or sqrt near 0): divide the step by 8,
    up to twelve times, until it is, and never below the smallest step x + h can still resolve."""
    orig = j.ev.pristine[j.k]
    for _ in range(12):
        broken = np.flatnonzero(~np.isfinite(st.values).all(axis=1))
        base = orig.reshape(-1)[j.idx[broken]].astype(np.float64)
        smaller = (base + st.h[broken] / 8).astype(orig.dtype).astype(np.float64) - base
        broken = broken[smaller > 0]
        if not broken.size:
            return
        h = _rounded_steps(orig, j.idx[broken], st.h[broken] / 8)
        again = Stencil.at(j.ev, j.k, j.idx[broken], h, st.offsets, j.f0)
        st.h[broken], st.t[broken], st.values[broken] = again.h, again.t, again.values


def _measure_frozen(j: _Judge, st: Stencil, noise: np.ndarray) -> None:
    """Where f kept its value at x on the whole stencil while grad predicts a change above the noise, f may be
    quantised more coarsely than the ray at x showed (a float32 layer inside a float64 loss): measure the rounding
    along this element itself, on spacings far below the step, and take it as this element's noise if larger. A
    flat stretch, a kink or a jump shows no rounding there and adds nothing."""
    rows = np.flatnonzero(st.frozen() & (j.a != 0) & (np.abs(j.a) * st.h > noise))
    if rows.size:
        sigma = local_sigma(j.ev, j.k, j.idx[rows], j.f0, st.h[rows])
        noise[rows] = np.maximum(noise[rows], 4 * sigma)


def _enlarge_steps(j: _Judge, noise: np.ndarray, st: Stencil, numeric: np.ndarray, error: np.ndarray) -> np.ndarray:
    """Larger steps where rounding swamps a small derivative (in place); returns which elements got one.

    An element whose error estimate is over 1% of its size and mostly rounding (f barely changes along it, as for
    the first layer of a deep sigmoid network) is differentiated again with the step that balances the two error
    terms, never beyond the element's cap; a step on which f was not smooth is bisected in log-space with the last
    good one. The new estimate is kept when it is more precise, agrees with the old one within their errors, f is
    in its Taylor regime on it, and its one-sided derivatives agree with each other and with the central one."""
    orig = j.ev.pristine[j.k]
    cap = step_cap(orig).reshape(-1)[j.idx]
    enlarged = np.zeros(st.h.size, dtype=bool)
    rejected = np.full(st.h.size, np.inf)  # the smallest step on which f was not shown smooth
    frozen = np.zeros(st.h.size)  # the largest step on which f never left its value: too small to see anything
    a = j.a
    for _ in range(8):
        rounding = (ROUNDING + HIDDEN_KINK) * noise / st.h
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
        # a step on which f was not smooth is too large: try the geometric mean with the one that was
        low = np.fmax(st.h[rows], frozen[rows])  # the largest step known to be too small
        target = np.fmax(st.h[rows] * factor, 64 * frozen[rows])
        target = np.minimum(np.minimum(target, cap[rows]), np.sqrt(low * rejected[rows]))
        h = _rounded_steps(orig, j.idx[rows], target)
        bigger = Stencil.at(j.ev, j.k, j.idx[rows], h, WIDE, j.f0)
        noise2 = np.maximum(noise[rows], j.eps * bigger.magnitude(j.f0))
        n2, e2, _, regime = bigger.estimate(noise2)
        keep = (
            regime
            & (e2 < error[rows])
            & within_errors(n2, e2, numeric[rows], error[rows])
            & _sides_agree(bigger, noise2, n2, e2)
            & ~bigger.frozen()
        )
        take = rows[keep]
        st.h[take], st.t[take], st.values[take] = bigger.h[keep], bigger.t[keep], bigger.values[keep]
        noise[take] = noise2[keep]
        numeric[take], error[take] = n2[keep], e2[keep]
        enlarged[take] = True
        still = bigger.frozen()
        frozen[rows[still]] = h[still]
        refused = ~keep & ~still
        rejected[rows[refused]] = np.minimum(rejected[rows[refused]], h[refused])
    return enlarged


def _step_factor(a: np.ndarray, numeric: np.ndarray, rounding: np.ndarray, truncation: np.ndarray) -> np.ndarray:
    """How much larger a step should be: the factor that balances the two error terms, or (when the truncation
    estimate is itself mostly rounding) the one that brings rounding under 0.3% of the derivative, whichever is
    larger, and at least 2 (the cap and the smoothness of f on the new step bound it)."""
    mag = np.maximum(np.abs(a), np.abs(numeric))
    balance = np.cbrt(rounding / (2 * np.maximum(truncation, 1e-300)))
    quiet = rounding / np.maximum(0.003 * mag, 1e-300)
    return np.asarray(np.fmax(np.fmax(balance, quiet), 2))


def _sides_agree(st: Stencil, noise: np.ndarray, numeric: np.ndarray, error: np.ndarray) -> np.ndarray:
    """The one-sided derivatives on a stencil of ±h, ±2h, ±4h agree with each other and with the central one (a
    larger step must not straddle a kink)."""
    left, left_err = st.one_sided(noise, -1.0)
    right, right_err = st.one_sided(noise, 1.0)
    return np.asarray(
        within_errors(left, left_err, right, right_err)
        & within_errors(left, left_err, numeric, error)
        & within_errors(right, right_err, numeric, error)
    )


@dataclass
class _Ladder:
    """Per open element and level (h/8^level): the central estimate, whether f is smooth on it, the one-sided
    derivatives on the level's points and, as their check, on points half as far (nan on the finest level), each
    with its error."""

    h: np.ndarray  # (rows, LEVELS)
    central: tuple[np.ndarray, np.ndarray]
    smooth: np.ndarray
    left: tuple[np.ndarray, np.ndarray]
    right: tuple[np.ndarray, np.ndarray]
    left_check: tuple[np.ndarray, np.ndarray]
    right_check: tuple[np.ndarray, np.ndarray]
    noise: np.ndarray  # (rows,)
    finest: Stencil  # every point of every level

    def subset(self, mask: np.ndarray) -> _Ladder:
        st = self.finest
        pairs = [(u[mask], ue[mask]) for u, ue in (self.central, self.left, self.right)]
        checks = [(u[mask], ue[mask]) for u, ue in (self.left_check, self.right_check)]
        return _Ladder(
            self.h[mask],
            pairs[0],
            self.smooth[mask],
            pairs[1],
            pairs[2],
            checks[0],
            checks[1],
            self.noise[mask],
            Stencil(st.h[mask], st.offsets, st.t[mask], st.values[mask]),
        )


def _climb(j: _Judge, rows: np.ndarray, noise: np.ndarray, h: np.ndarray) -> _Ladder:
    """Evaluate every level of the ladder for rows: ±h, ±2h, ±4h for h, h/8, …, h/8⁶ (one batch of calls)."""
    scales = 8.0 ** -np.arange(LEVELS)
    offsets = (WIDE[None, :] * scales[:, None]).reshape(-1)
    st = Stencil.at(j.ev, j.k, j.idx[rows], h, offsets, j.f0)
    noise = np.maximum(noise, j.eps * st.magnitude(j.f0))
    moves = j.a[rows] != 0
    names = ("n", "e", "s", "l", "le", "r", "re", "lc", "lce", "rc", "rce")
    cols: dict[str, list[np.ndarray]] = {name: [] for name in names}
    nan = np.full(rows.size, np.nan)
    moved = {-1.0: np.zeros(rows.size, dtype=bool), 1.0: np.zeros(rows.size, dtype=bool)}  # on a coarser level
    for level, s in enumerate(scales):
        n, e, _, regime = st.estimate(noise, s)
        # On the ladder f must show its Taylor regime: several kinks within a step can cancel in one fourth
        # difference, not in the scaling of the differences across three steps. A level on which f never moved
        # proves nothing where the analytic value predicts a change, nor where f moved on both sides on a coarser
        # level: that is a staircase (a flat stretch ends on one side only).
        smooth = regime & ~(st.frozen(s) & (moves | (moved[-1.0] & moved[1.0])))
        aliased = ~st.off_grid(noise, s)  # one-sided differences on a regular grid alias a staircase too
        sides = []
        for scale in (s, s / 2):
            for side in (-1.0, 1.0):
                if scale < s and level == LEVELS - 1:
                    sides.append((nan, nan))
                    continue
                u, ue = st.one_sided(noise, side, scale)
                ue[(st.frozen(scale, side) & (moves | moved[side])) | aliased] = np.inf  # they vouch for nothing
                sides.append((u, ue))
        for side in (-1.0, 1.0):
            moved[side] |= ~st.frozen(s, side)
        values = (n, e, smooth, *sides[0], *sides[1], *sides[2], *sides[3])
        for name, value in zip(names, values):
            cols[name].append(value)
    out = {name: np.column_stack(value) for name, value in cols.items()}
    return _Ladder(
        h[:, None] * scales[None, :],
        (out["n"], out["e"]),
        out["s"],
        (out["l"], out["le"]),
        (out["r"], out["re"]),
        (out["lc"], out["lce"]),
        (out["rc"], out["rce"]),
        noise,
        st,
    )


def _first(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, whether any column is set and the first one that is."""
    return np.asarray(mask.any(axis=1)), np.asarray(np.argmax(mask, axis=1))


def _certify(j: _Judge, rows: np.ndarray, noise: np.ndarray, h: np.ndarray, v: Verdict, measured: np.ndarray) -> None:
    """The certificate ladder for elements the first stencil could not decide, in place: the coarsest level on
    which f is shown smooth and that decides; else one-sided derivatives stable across two levels (a kink at x, or
    a domain boundary); else a jump located at x (the element fails); else the element is inconclusive."""
    # rounding coarser than the rays at x showed is measured along each element, unless it already was
    todo = ~measured
    if todo.any():
        noise[todo] = np.maximum(noise[todo], 4 * local_sigma(j.ev, j.k, j.idx[rows[todo]], j.f0, h[todo]))
    lad = _climb(j, rows, noise, h)
    a = j.a[rows][:, None]
    n, e = lad.central
    tol = tolerance_of(a, n, e, j.rtol, j.atol)
    passes = np.abs(a - n) <= tol
    v.noise[rows] = lad.noise
    resolved = j.resolved(a, e, lad.h, lad.noise[:, None])
    # a level decides only if the next one down, where it shows f smooth, agrees with it within their errors
    finer = np.column_stack([lad.smooth[:, 1:], np.zeros(rows.size, dtype=bool)])
    nf = np.column_stack([n[:, 1:], np.full(rows.size, np.nan)])
    ef = np.column_stack([e[:, 1:], np.full(rows.size, np.nan)])
    consistent = ~finer | within_errors(n, e, nf, ef)
    decides = lad.smooth & consistent & (~passes | resolved)
    found, level = _first(decides)
    pick = np.arange(rows.size)
    j.settle(v, rows[found], n[pick, level][found], e[pick, level][found], lad.h[pick, level][found])
    if not found.all():
        _one_sided_certificate(j, rows[~found], lad.subset(~found), v)


def _stable(
    j: _Judge, mag: np.ndarray, estimate: tuple[np.ndarray, np.ndarray], check: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """Per row and level: a one-sided estimate agrees with its check on points half as far, within their errors
    and the rounding of the points, its error is within the resolution of ``mag`` (the larger of the analytic
    value and both one-sided derivatives) and the check's within twice that."""
    (u, ue), (c, ce) = estimate, check
    usable = np.isfinite(u) & (ue <= j.resolution * mag + j.atol) & (ce <= 2 * j.resolution * mag + j.atol)
    return np.asarray(usable & (np.abs(u - c) <= ue + ce + j.rtol * mag))


def _one_sided_certificate(j: _Judge, rows: np.ndarray, lad: _Ladder, v: Verdict) -> None:
    """No level shows f smooth across x: the coarsest pair of levels on which a one-sided derivative (both, or the
    only finite side) is stable decides. Two stable sides that differ are a kink at x: the analytic value passes
    if it is either or between them. Two that agree are a smooth f seen from both sides."""
    a = j.a[rows]
    (left, left_err), (right, right_err) = lad.left, lad.right
    mag = np.fmax(np.abs(a)[:, None], np.fmax(np.nan_to_num(np.abs(left)), np.nan_to_num(np.abs(right))))
    stable_left, stable_right = _stable(j, mag, lad.left, lad.left_check), _stable(j, mag, lad.right, lad.right_check)
    finite_left, finite_right = np.isfinite(left).any(axis=1), np.isfinite(right).any(axis=1)
    both, lb = _first(stable_left & stable_right)
    only_left, ll = _first(stable_left & ~finite_right[:, None])
    only_right, lr = _first(stable_right & ~finite_left[:, None])
    pick = np.arange(rows.size)
    lv, le = left[pick, lb], left_err[pick, lb]
    rv, re = right[pick, lb], right_err[pick, lb]
    kink = both & ~within_errors(lv, le, rv, re)
    same = both & ~kink
    j.settle(v, rows[same], ((lv + rv) / 2)[same], (np.fmax(le, re) + np.abs(lv - rv) / 2)[same], lad.h[pick, lb][same])
    for mask, level, (u, ue) in ((only_left & ~both, ll, lad.left), (only_right & ~both & ~only_left, lr, lad.right)):
        j.settle(v, rows[mask], u[pick, level][mask], ue[pick, level][mask], lad.h[pick, level][mask])
    if kink.any():
        _judge_kink(j, rows[kink], (lv[kink], le[kink]), (rv[kink], re[kink]), lad.h[pick, lb][kink], v)
    rest = ~(both | only_left | only_right)
    # one stable side alone: its derivative is f′(x) if f is smooth at x and a valid one-sided value at a kink, so
    # it vouches for an analytic value that matches it, and for nothing else
    for stable, (u, ue) in ((stable_left, lad.left), (stable_right, lad.right)):
        some, level = _first(stable)
        value, err = u[pick, level], ue[pick, level]
        match = rest & some & (np.abs(a - value) <= tolerance_of(a, value, err, j.rtol, j.atol))
        j.settle(v, rows[match], value[match], err[match], lad.h[pick, level][match])
        rest &= ~match
        if match.any():  # unless the other side jumps: then no derivative exists at x
            size = _jump_at_x(j, rows[match], lad.subset(match))
            _fail_jumps(v, rows[match][size > 0], size[size > 0], lad.h[match, 0][size > 0])
    if rest.any():
        _coarse_or_jump(j, rows[rest], lad.subset(rest), v)


def _coarse_or_jump(j: _Judge, rows: np.ndarray, lad: _Ladder, v: Verdict) -> None:
    """Neither a deciding level nor stable one-sided derivatives: where some level shows f smooth, its most
    precise estimate stands (a failure stands; a pass is too coarse to count, and the element is inconclusive);
    elsewhere a jump at x fails the element, or it is inconclusive."""
    n, e = lad.central
    smooth = np.asarray(lad.smooth.any(axis=1))
    pick = np.arange(rows.size)
    best = np.where(lad.smooth, e, np.inf).argmin(axis=1)
    j.settle(v, rows[smooth], n[pick, best][smooth], e[pick, best][smooth], lad.h[pick, best][smooth])
    if not smooth.all():
        _jump_or_inconclusive(j, rows[~smooth], lad.subset(~smooth), v)


def _judge_kink(
    j: _Judge,
    rows: np.ndarray,
    left: tuple[np.ndarray, np.ndarray],
    right: tuple[np.ndarray, np.ndarray],
    h: np.ndarray,
    v: Verdict,
) -> None:
    """A kink at x, shown by one-sided derivatives that are each stable and differ: the analytic value passes if it
    is one of them or lies between them (a subgradient); otherwise the nearer one is the numeric value and the
    element fails."""
    a = j.a[rows]
    (lv, le), (rv, re) = left, right
    lt, rt = tolerance_of(a, lv, le, j.rtol, j.atol), tolerance_of(a, rv, re, j.rtol, j.atol)
    inside = (a >= np.fmin(lv - lt, rv - rt)) & (a <= np.fmax(lv + lt, rv + rt))
    nearer = np.abs(a - lv) <= np.abs(a - rv)
    j.settle(v, rows, np.where(nearer, lv, rv), np.where(nearer, le, re), h)
    v.kink[rows] = inside
    v.unresolved[rows] = 0


def _jump_or_inconclusive(j: _Judge, rows: np.ndarray, lad: _Ladder, v: Verdict) -> None:
    """No certificate at any level: f jumps at x (the element fails with the jump's size), or the element is
    inconclusive (a singularity or features too close to x to resolve)."""
    size = _jump_at_x(j, rows, lad)
    _fail_jumps(v, rows, size, lad.h[:, 0])
    v.unresolved[rows] = np.where(size > 0, 0, NO_STENCIL)


def _fail_jumps(v: Verdict, rows: np.ndarray, size: np.ndarray, h: np.ndarray) -> None:
    at = rows[size > 0]
    v.numeric[rows], v.error[rows], v.tolerance[rows], v.h[rows] = np.nan, np.nan, np.nan, h
    v.kink[rows], v.jump[rows], v.unresolved[at] = False, size, 0


def _jump_at_x(j: _Judge, rows: np.ndarray, lad: _Ladder) -> np.ndarray:
    """The size of a jump of f between x and its neighbouring float, per row (0 where there is none), located by
    bisection from the finest level at which f is finite on both sides, on the side where f moved more."""
    orig = j.ev.pristine[j.k]
    base = orig.reshape(-1)[j.idx[rows]].astype(np.float64)
    st = lad.finest
    pick = np.arange(rows.size)
    finite = np.isfinite(st.values)
    col_p = [st.col(s) for s in 8.0 ** -np.arange(LEVELS)]
    col_m = [st.col(-s) for s in 8.0 ** -np.arange(LEVELS)]
    both = finite[:, col_p] & finite[:, col_m]
    last = LEVELS - 1 - np.argmax(both[:, ::-1], axis=1)
    cp, cm = np.array(col_p)[last], np.array(col_m)[last]
    gp, gm = st.values[pick, cp], st.values[pick, cm]
    right = np.abs(gp) >= np.abs(gm)
    hi = base + np.where(right, st.t[pick, cp], st.t[pick, cm])
    g_hi = np.where(right, gp, gm)
    lo, g_lo = base.copy(), np.zeros(rows.size)
    threshold = np.maximum(SIX_SIGMA * lad.noise, 1e-6 * (abs(j.f0) + largest_finite(st.values)))
    _bisect(j, j.idx[rows], (lo, hi, g_lo, g_hi), threshold)
    # a continuous f changes over the last interval by at most its slope times the width; a jump keeps its size
    # (the slopes of the coarsest level: a jump inflates a slope on a step s only by its size over s)
    slopes = np.abs(np.column_stack([lad.central[0][:, 0], lad.left[0][:, 0], lad.right[0][:, 0], j.a[rows]]))
    slope = np.nanmax(np.where(np.isfinite(slopes), slopes, 0.0), axis=1)
    size = np.abs(g_hi - g_lo)
    jumped = size > threshold + 8 * slope * np.abs(hi - lo)
    at_x = both.any(axis=1) & jumped & (np.minimum(np.abs(lo - base), np.abs(hi - base)) == 0)
    return np.where(at_x, size, 0.0)


def _bisect(j: _Judge, targets: np.ndarray, interval: tuple[np.ndarray, ...], threshold: np.ndarray) -> None:
    """Halve each interval (lo, hi), with f − f(x) at its ends (g_lo, g_hi), all updated in place, keeping the half
    where f changes more, while f changes across it by more than ``threshold`` and a float lies strictly inside."""
    lo, hi, g_lo, g_hi = interval
    dtype = j.ev.pristine[j.k].dtype
    active = np.ones(targets.size, dtype=bool)
    for _ in range(80):
        mid = ((lo + hi) / 2).astype(dtype).astype(np.float64)
        active &= (np.abs(g_hi - g_lo) > threshold) & (mid > np.fmin(lo, hi)) & (mid < np.fmax(lo, hi))
        r = np.flatnonzero(active)
        if not r.size:
            break
        g_mid = j.ev.at(j.k, targets[r], mid[r][:, None])[:, 0] - j.f0
        ok = np.isfinite(g_mid)
        active[r[~ok]] = False
        r, g_mid = r[ok], g_mid[ok]
        left = np.abs(g_mid - g_lo[r]) >= np.abs(g_hi[r] - g_mid)
        hi[r], g_hi[r] = np.where(left, mid[r], hi[r]), np.where(left, g_mid, g_hi[r])
        lo[r], g_lo[r] = np.where(left, lo[r], mid[r]), np.where(left, g_lo[r], g_mid)
