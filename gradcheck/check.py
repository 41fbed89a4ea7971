"""The finite-difference gradient checker.

For every element xᵢ of every leaf, with a step h = eps^(1/3)·scaleᵢ (eps of the leaf's dtype, scaleᵢ = max(|xᵢ|,
RMS of the leaf), or 1 for an all-zero leaf), four evaluations give two central differences:

    D(h)    = (f(x + h eᵢ) − f(x − h eᵢ)) / 2h                   error c·h² + rounding
    numeric = D(h) + (D(h) − D(2h)) / 3                          Richardson: the h² term cancels
    error   = |D(h) − D(2h)| + 1.5·noise / h                     truncation plus the worst rounding

The truncation term bounds the extrapolated value's error whether D's error shrinks like h² (smooth f: it is then
three times D(h)'s own error) or only like h (f″ jumps at x, as at a ReLU unit sitting exactly at 0, where
Richardson's h² assumption fails and the extrapolated value keeps 2/3 of |D(h) − D(2h)|).

``noise`` bounds the rounding error of one evaluation of f. It is measured, not assumed: f is evaluated at nine
points along a fixed direction (Moré & Wild's ECnoise), and the 3rd and 4th differences of those values, in which
the smooth part of f has vanished but its rounding has not, give its standard deviation σ. The spacing starts at 64
ulps and grows 64× at a time (at most four spacings, one in fast mode, never beyond the step) until f takes several
distinct values, so that a function whose intermediate results are rounded more coarsely than its value still
shows its noise; noise = max(4σ, eps·|f(x)|), and for each element at least eps times the largest |f| in its stencil.

Where rounding swamps a small derivative (error over 1% of it, mostly the noise/h term), the step grows towards
the one that balances truncation and rounding, up to a tenth of the element's scale; the larger-step estimate is kept
only if it is more precise (counting an allowance of 1.5·√70·noise/4h for a kink too small to detect) and agrees
with the first.

The rule: an element passes iff ``|analytic − numeric| ≤ atol + rtol·max(|analytic|, |numeric|) + error``. There is
no absolute floor by default (atol = 0), so a leaf whose gradients are 1e-12 is judged against its own error
estimate, and rtol defaults to √eps of the dtype: the accuracy a correctly computed analytic gradient keeps.

Non-differentiable points. An element that fails, or whose error estimate is a quarter of its size or more, is
differentiated again: one-sidedly from the right (x, x + h, x + 2h, x + 4h) and from the left, and centrally and
one-sidedly with a step 8× smaller, each with the same kind of error estimate. If any two of the central and
one-sided derivatives disagree beyond their errors, or a fourth difference at spacing h or 2h exceeds
1.5·√70·noise (six standard deviations of rounding), f is not smooth within the stencil (a kink or a branch). The
element is then reported as a kink, and passes iff the analytic value matches one of the new derivatives whose own
error is small, or lies between the one-sided ones (a subgradient); otherwise the most precise new derivative
replaces the first and the element fails. If all agree, f is smooth there and the first verdict stands, with the
error widened by 1.5·√70·noise/4h (what a kink too small to detect could shift it by), so a kink never hides a wrong
gradient of a smooth function, and a wrong gradient next to a kink still fails unless it equals a one-sided slope.

Where f is not finite within the stencil (a domain boundary), the step is divided by 8, up to four times, until it
is; failing that, the derivative on the side where f is finite is the numeric value.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck.errors import GradientMismatch, InvalidArgument, InvalidType
from gradcheck.pytree import float_leaves, match_structure
from gradcheck.report import GradientReport, LeafReport, Probe


def check_gradient(func: Callable[[Any], Any], grad: Callable[[Any], Any], x: Any, *, rtol: float | None = None,
                   atol: float = 0.0, step: float | None = None, mode: str = "full",
                   rng: np.random.Generator | None = None, probes: int = 2, method: str = "central",
                   vectorized: bool = False) -> GradientReport:
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

    ``mode="fast"`` (with ``rng=np.random.default_rng(seed)``) compares derivatives along ``probes`` random
    directions u with random signs (Rademacher, scaled by each element's scale) instead of every element: about
    10 + 4·probes calls of func. A direction that fails is narrowed to one element by halving the set of elements
    it moves (4·log₂ n more calls), and that element is then checked as in full mode.

    ``method="complex"`` adds the complex step, Im f(x + i·h·eᵢ)/h, which has no cancellation: where it agrees with
    the central differences it replaces them, with an error of a few ulps. If func rejects complex input, or the
    two disagree (func is not complex-analytic: abs, max, a comparison), the check keeps the central differences
    and says so in ``report.notes``.

    ``vectorized=True`` declares that func takes a leading batch axis on every leaf and returns one value per point
    (shape ``(K,)``): the perturbed points are then evaluated thousands at a time. grad still takes a single point.
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
    if mode not in ("full", "fast"):
        raise InvalidArgument(f"mode={mode!r}; use 'full' (every element) or 'fast' (random directions)")
    if mode == "fast" and not isinstance(rng, np.random.Generator):
        raise InvalidType(f"mode='fast' draws random directions and needs rng=np.random.default_rng(seed), got "
                          f"rng={rng!r}")
    if method not in ("central", "complex"):
        raise InvalidArgument(f"method={method!r}; use 'central' (finite differences) or 'complex' (complex step)")
    if isinstance(probes, bool) or not isinstance(probes, int) or probes < 1:
        raise InvalidArgument(f"probes={probes!r}; it must be a positive integer (2 is the default)")

    # Our own arithmetic may overflow, underflow or meet nan harmlessly (tiny steps, func not finite at a
    # perturbed point: all handled explicitly); func and grad run under the caller's floating-point settings.
    caller = np.geterr()
    with np.errstate(all="ignore"):
        return _check(func, grad, x, rtol, atol, step, caller, fast=(rng, probes) if mode == "fast" else None,
                      complex_step=method == "complex", vectorized=bool(vectorized))


Bulk = Callable[[int, np.ndarray, np.ndarray], np.ndarray]  # (leaf, flat indices, steps) -> f at x + step·e


def _check(func: Callable[[Any], Any], grad: Callable[[Any], Any], x: Any, rtol: float | None, atol: float,
           step: float | None, caller: dict[str, str], bulk: Bulk | None = None,
           fast: tuple[np.random.Generator, int] | None = None, complex_step: bool = False,
           vectorized: bool = False) -> GradientReport:
    paths, leaves, treedef = float_leaves(x)
    pristine = [leaf.copy() for leaf in leaves]
    work = treedef.unflatten(leaves)   # func and grad see these arrays; the check perturbs them in place
    name = getattr(func, "__name__", "func")
    name = "f" if name == "<lambda>" else name
    eps = max(float(np.finfo(leaf.dtype).eps) for leaf in leaves)
    rtol = math.sqrt(eps) if rtol is None else rtol
    calls = 0

    single = treedef.unflatten([leaf[None] for leaf in leaves]) if vectorized else None  # views of the leaves

    def evaluate() -> float:
        nonlocal calls
        calls += 1
        with np.errstate(**caller):
            if vectorized:
                return _scalar(_batched(func(single), 1, name)[0], name)
            return _scalar(func(work), name)

    if vectorized and bulk is None:
        def bulk(k: int, idx: np.ndarray, steps: np.ndarray) -> np.ndarray:
            nonlocal calls
            chunk = max(1, (1 << 22) // max(1, sum(leaf.size for leaf in pristine)))
            out = np.empty(len(idx))
            for start in range(0, len(idx), chunk):
                sl = slice(start, start + chunk)
                K = len(idx[sl])
                batch = [np.repeat(orig[None], K, axis=0) for orig in pristine]
                flat = batch[k].reshape(K, -1)
                flat[np.arange(K), idx[sl]] = (flat[np.arange(K), idx[sl]].astype(np.float64)
                                               + steps[sl]).astype(flat.dtype)
                calls += 1
                with np.errstate(**caller):
                    out[sl] = _batched(func(treedef.unflatten(batch)), K, name)
            return out

    f0 = evaluate()
    if not math.isfinite(f0):
        raise InvalidArgument(f"{name}(x) = {f0} at the point given; the check needs a finite value there: move x or "
                              "fix func")
    problems: list[str] = []
    _note_mutation(problems, leaves, pristine, paths, f"{name}(x)")

    def call_grad() -> Any:
        with np.errstate(**caller):
            return grad(work)

    analytic = [g.copy() for g in match_structure(treedef, paths, leaves, call_grad(), "grad(x)")]
    if _note_mutation(problems, leaves, pristine, paths, "grad(x)"):
        for leaf, orig in zip(leaves, pristine):
            leaf[...] = orig
    again = match_structure(treedef, paths, leaves, call_grad(), "grad(x)")
    _note_unrepeatable(problems, analytic, again, paths, rtol)
    for leaf, orig in zip(leaves, pristine):
        leaf[...] = orig

    if fast is not None:
        noise = _estimate_noise(evaluate, leaves, pristine, f0, eps, rungs=1)
        reports, probes = _fast(evaluate, leaves, pristine, paths, analytic, f0, noise, eps, rtol, atol, *fast)
        _note_mutation(problems, leaves, pristine, paths, f"{name}(x) while x was perturbed")
        seed = getattr(fast[0].bit_generator.seed_seq, "entropy", None)
        return GradientReport(leaves=reports, rtol=rtol, atol=atol, noise=noise, value=f0, func_name=name,
                              calls=calls, problems=problems, mode="fast", probes=probes, seed=seed)
    # With a batched form of func, every later stencil of a leaf (finer, larger, one-sided) goes through it too.
    per_leaf = [evaluate if bulk is None else _Batched(evaluate, lambda idx, d, k=k: bulk(k, idx, d))
                for k in range(len(leaves))]
    stencils = [_Stencil.central(ev, leaf, orig, step) for ev, leaf, orig in zip(per_leaf, leaves, pristine)]
    noise = _estimate_noise(evaluate, leaves, pristine, f0, eps)
    reports = []
    for ev, path, leaf, orig, a, st in zip(per_leaf, paths, leaves, pristine, analytic, stencils):
        numeric, error, tolerance, kink = _judge(ev, leaf, orig, a, f0, noise, eps, rtol, atol, st)
        reports.append(LeafReport(path, a, numeric, error, tolerance, st.h.reshape(leaf.shape), kink))
    _note_mutation(problems, leaves, pristine, paths, f"{name}(x) while x was perturbed")
    notes: list[str] = []
    if complex_step:
        reports, note = _complex_step(func, treedef, pristine, reports, caller, name, rtol, atol)
        calls += sum(leaf.size for leaf in leaves)
        notes.append(note)
    return GradientReport(leaves=reports, rtol=rtol, atol=atol, noise=noise, value=f0, func_name=name, calls=calls,
                          problems=problems, notes=notes)


def assert_gradient(func: Callable[[Any], Any], grad: Callable[[Any], Any], x: Any, **options: Any) -> GradientReport:
    """:func:`check_gradient`, raising :class:`GradientMismatch` (an AssertionError) with the report when it fails."""
    __tracebackhide__ = True
    report = check_gradient(func, grad, x, **options)
    if not report.ok:
        raise GradientMismatch(report)
    return report


# -- numerical differentiation -------------------------------------------------------------------------------------
class _Batched:
    """func at x as ``self()``, and at many single-element perturbations of one leaf as ``self.bulk(idx, steps)``
    (flat indices and the steps actually taken): what check_network and vectorized functions provide."""

    def __init__(self, evaluate: Callable[[], float], bulk: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        self.evaluate, self.bulk = evaluate, bulk

    def __call__(self) -> float:
        return self.evaluate()


class _Stencil:
    """f at x + k·h·eᵢ for k in ``offsets``, for every element i of one leaf; ``h`` are the steps actually taken."""

    def __init__(self, h: np.ndarray, offsets: np.ndarray, values: np.ndarray) -> None:
        self.h, self.offsets, self.values = h, offsets, values

    @classmethod
    def central(cls, evaluate: Callable[[], float], leaf: np.ndarray, orig: np.ndarray, step: float | None) -> _Stencil:
        base = orig.reshape(-1).astype(np.float64)
        if step is None:
            h = np.finfo(leaf.dtype).eps ** (1 / 3) * _scale(orig).reshape(-1)
        else:
            h = np.full(base.shape, float(step))
        # Round x + h to the leaf's dtype and divide by the step that rounding leaves.
        h = (base + h).astype(leaf.dtype).astype(np.float64) - base
        return cls.evaluate(evaluate, leaf, orig, np.arange(base.size), h, np.array([1.0, -1.0, 2.0, -2.0]))

    @classmethod
    def evaluate(cls, evaluate: Callable[[], float], leaf: np.ndarray, orig: np.ndarray, idx: np.ndarray,
                 h: np.ndarray, offsets: np.ndarray) -> _Stencil:
        flat, base = leaf.reshape(-1), orig.reshape(-1)
        points = (base[idx].astype(np.float64)[:, None] + offsets * h[:, None]).astype(leaf.dtype)
        if isinstance(evaluate, _Batched):  # many perturbations at once, at the same points as one by one
            steps = points.astype(np.float64) - base[idx].astype(np.float64)[:, None]
            return cls(h, offsets, np.column_stack([evaluate.bulk(idx, steps[:, k]) for k in range(len(offsets))]))
        values = np.empty(points.shape)
        for row, i in enumerate(idx):
            for k in range(len(offsets)):
                flat[i] = points[row, k]
                values[row, k] = evaluate()
            flat[i] = base[i]
        return cls(h, offsets, values)

    def richardson(self, noise: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Central: numeric and error as in the module docstring."""
        fp, fm, fp2, fm2 = self.values.T
        d1 = (fp - fm) / (2 * self.h)
        d2 = (fp2 - fm2) / (4 * self.h)
        numeric = d1 + (d1 - d2) / 3
        error = np.abs(d1 - d2) + 1.5 * noise / self.h
        numeric[~np.isfinite(self.values).all(axis=1)] = np.nan
        return numeric, error

    def fourth_differences(self, f0: float) -> np.ndarray:
        fp, fm, fp2, fm2 = self.values.T
        return fp2 - 4 * fp + 6 * f0 - 4 * fm + fm2


def _scale(x: np.ndarray) -> np.ndarray:
    """Each element's scale: max(|xᵢ|, RMS of its leaf), or 1 for an all-zero (or all-tiny) leaf."""
    base = x.astype(np.float64)
    rms = math.sqrt(float(np.mean(base * base))) if base.size else 0.0
    # An all-zero leaf, or one whose entries are all near the underflow threshold, has no scale of its own: use 1.
    return np.maximum(np.abs(base), rms if rms > math.sqrt(np.finfo(x.dtype).tiny) else 1.0)


def _one_sided(f0: float, f1: np.ndarray, f2: np.ndarray, f4: np.ndarray, h: np.ndarray,
               noise: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Second-order one-sided differences at steps h and 2h (h < 0 for the left side), Richardson-extrapolated.

    S(h) = (−3f(x) + 4f(x+h) − f(x+2h)) / 2h has error c·h² + rounding ≤ 4·noise/|h|; S(2h) uses x, x+2h, x+4h.
    """
    s1 = (-3 * f0 + 4 * f1 - f2) / (2 * h)
    s2 = (-3 * f0 + 4 * f2 - f4) / (4 * h)
    numeric = s1 + (s1 - s2) / 3
    error = np.abs(s1 - s2) / 3 + 6 * noise / np.abs(h)
    numeric[~(np.isfinite(f1) & np.isfinite(f2) & np.isfinite(f4))] = np.nan
    return numeric, error


def _judge(evaluate: Callable[[], float], leaf: np.ndarray, orig: np.ndarray, analytic: np.ndarray, f0: float,
           noise_at_x: float, eps: float, rtol: float, atol: float, st: _Stencil) -> tuple[np.ndarray, ...]:
    """Numeric derivative, error, tolerance and kink mask for one leaf (see the module docstring)."""
    a = analytic.reshape(-1).astype(np.float64)
    # f not finite somewhere in the stencil (a domain boundary such as log or sqrt near 0): shrink the step by 8,
    # up to four times, until it is.
    for _ in range(4):
        broken = np.flatnonzero(~np.isfinite(st.values).all(axis=1))
        if not broken.size:
            break
        smaller = _Stencil.evaluate(evaluate, leaf, orig, broken, st.h[broken] / 8, st.offsets)
        st.h[broken], st.values[broken] = smaller.h, smaller.values
    # Rounding of f is at least one ulp of the largest value the element's stencil saw.
    noise = np.maximum(noise_at_x, eps * np.abs(st.values).max(axis=1))
    numeric, error = st.richardson(noise)
    enlarged, before = _enlarge_steps(evaluate, leaf, orig, a, f0, noise, eps, st, numeric, error)
    tolerance = _tolerance(a, numeric, error, rtol, atol)
    kink = np.zeros(a.size, dtype=bool)
    # Failing elements, and passing ones whose error estimate is a quarter of their size or more (a kink inside
    # the stencil inflates it, and would let a wrong value through): look again.
    uninformative = error > 0.25 * np.maximum(np.abs(a), np.abs(numeric))
    redo = np.flatnonzero(~(np.abs(a - numeric) <= tolerance) | uninformative)
    if redo.size:
        fp, fm, fp2, fm2 = st.values[redo].T
        h = st.h[redo]
        far = _Stencil.evaluate(evaluate, leaf, orig, redo, h, np.array([4.0, -4.0])).values
        near = _Stencil.evaluate(evaluate, leaf, orig, redo, h / 8, st.offsets)
        near_far = _Stencil.evaluate(evaluate, leaf, orig, redo, h / 8, np.array([4.0, -4.0])).values
        noise_r = np.maximum(noise[redo], eps * np.fmax(np.abs(far).max(axis=1), np.abs(near.values).max(axis=1)))
        right, right_err = _one_sided(f0, fp, fp2, far[:, 0], h, noise_r)
        left, left_err = _one_sided(f0, fm, fm2, far[:, 1], -h, noise_r)
        fine, fine_err = near.richardson(noise_r)
        # One-sided again on the finer step: a second kink within 4h on one side spoils the coarse one-sided value.
        nfp, nfm, nfp2, nfm2 = near.values.T
        right8, right8_err = _one_sided(f0, nfp, nfp2, near_far[:, 0], h / 8, noise_r)
        left8, left8_err = _one_sided(f0, nfm, nfm2, near_far[:, 1], -h / 8, noise_r)
        ar, c, ce = a[redo], numeric[redo], error[redo]
        # f not finite on one side of x (a domain boundary): the finite side's derivative is the numeric value.
        one_side = np.isnan(c) & (np.isfinite(left) != np.isfinite(right))
        side = np.where(np.isfinite(left), left, right)
        side_err = np.where(np.isfinite(left), left_err, right_err)
        fix = redo[one_side]
        numeric[fix], error[fix] = side[one_side], side_err[one_side]
        tolerance[fix] = _tolerance(a[fix], side[one_side], side_err[one_side], rtol, atol)
        # Not smooth within the stencil: two of the four estimates disagree beyond their errors. Then the analytic
        # value passes as a one-sided derivative, the derivative on a finer stencil, or a subgradient (between the
        # one-sided ones).
        estimates = [(c, ce), (left, left_err), (right, right_err), (fine, fine_err)]
        # Fourth differences at spacings h and 2h: a kink at distance d in (0, 2h) makes at least one of them of
        # order jump·h (each alone is blind at one d), while rounding keeps both near √70·σ = √70·noise/4.
        d4_h = fp2 - 4 * fp + 6 * f0 - 4 * fm + fm2
        d4_2h = far[:, 0] - 4 * fp2 + 6 * f0 - 4 * fm2 + far[:, 1]
        smooth = np.fmax(np.abs(d4_h), np.abs(d4_2h)) <= 1.5 * math.sqrt(70) * noise_r
        for i, (u, ue) in enumerate(estimates):
            for v, ve in estimates[i + 1:]:
                smooth &= _agree(u, ue, v, ve)
        # A step that was enlarged and turns out to straddle a kink was not valid: go back to the first estimate.
        revert = redo[enlarged[redo] & ~smooth]
        if revert.size:
            st.h[revert], st.values[revert] = before[0][revert], before[1][revert]
            numeric[revert], error[revert] = before[2][revert], before[3][revert]
            tolerance[revert] = _tolerance(a[revert], numeric[revert], error[revert], rtol, atol)
            smooth |= enlarged[redo]  # judged by the first estimate alone from here on
        # Looks smooth, but a kink at x whose jump·2h is below the fourth-difference threshold would not show, and
        # it shifts the central difference by up to half the jump: allow for it before calling a failure.
        hidden = redo[smooth & ~enlarged[redo]]
        if hidden.size:
            error[hidden] += 1.5 * math.sqrt(70) * noise[hidden] / (4 * st.h[hidden])
            tolerance[hidden] = _tolerance(a[hidden], numeric[hidden], error[hidden], rtol, atol)
        # Only an estimate whose own error is small (a tenth of the values, or within the first tolerance) may
        # vouch for the analytic value: a one-sided stencil that straddles another kink has a large error, and
        # matching within that would pass anything.
        matches = np.zeros(redo.size, dtype=bool)
        first_tol = tolerance[redo]
        for u, ue in estimates[1:] + [(left8, left8_err), (right8, right8_err)]:
            usable = (ue <= 0.1 * np.maximum(np.abs(u), np.abs(ar))) | (ue <= first_tol)
            matches |= usable & (np.abs(ar - u) <= _tolerance(ar, u, ue, rtol, atol))
        matches |= (ar >= np.fmin(left, right)) & (ar <= np.fmax(left, right))
        kink[redo] = ~smooth & ~one_side & matches
        # Not smooth and matching none of the finer estimates: the best of them is the numeric value, so that an
        # element that passed only on an inflated error estimate fails.
        refute = redo[~smooth & ~one_side & ~matches]
        if refute.size:
            pick = ~smooth & ~one_side & ~matches
            cand = np.stack([left, right, fine])[:, pick]
            cand_err = np.stack([left_err, right_err, fine_err])[:, pick]
            best = np.argmin(np.where(np.isfinite(cand), cand_err, np.inf), axis=0)
            cols = np.arange(refute.size)
            numeric[refute], error[refute] = cand[best, cols], cand_err[best, cols]
            tolerance[refute] = _tolerance(a[refute], numeric[refute], error[refute], rtol, atol)
    shape = leaf.shape
    return numeric.reshape(shape), error.reshape(shape), tolerance.reshape(shape), kink.reshape(shape)


def _enlarge_steps(evaluate: Callable[[], float], leaf: np.ndarray, orig: np.ndarray, a: np.ndarray, f0: float,
                   noise: np.ndarray, eps: float, st: _Stencil, numeric: np.ndarray, error: np.ndarray, rounds: int = 2) -> None:
    """Larger steps where rounding swamps a small derivative (in place).

    An element whose error estimate is over 1% of its size and mostly rounding (f barely changes along it, as for
    the first layer of a deep sigmoid network) is differentiated again with the step that balances the two error
    terms, at most 1000× larger per round and never beyond a tenth of the element's scale. The new estimate is kept
    when it is more precise, agrees with the old one within their errors and its fourth difference is within the
    noise (a larger step must not cross a kink).
    """
    cap = 0.1 * _scale(orig).reshape(-1)
    before = (st.h.copy(), st.values.copy(), numeric.copy(), error.copy())
    enlarged = np.zeros(st.h.size, dtype=bool)
    for _ in range(rounds):
        rounding = 1.5 * noise / st.h
        truncation = np.maximum(error - rounding, 0)
        coarse = ((error > 0.01 * np.maximum(np.abs(a), np.abs(numeric))) & (rounding > 2 * truncation)
                  & (st.h < cap) & np.isfinite(numeric))
        idx = np.flatnonzero(coarse)
        if not idx.size:
            break
        factor = np.clip(np.cbrt(rounding[idx] / (2 * np.maximum(truncation[idx], 1e-300))), 2, 1000)
        h = np.minimum(st.h[idx] * factor, cap[idx])
        bigger = _Stencil.evaluate(evaluate, leaf, orig, idx, h, st.offsets)
        noise2 = np.maximum(noise[idx], eps * np.abs(bigger.values).max(axis=1))
        n2, e2 = bigger.richardson(noise2)
        # A kink at x too small for the fourth difference to show (jump·2h below 1.5·√70·noise) still shifts a
        # central difference by up to half the jump: on a larger step that allowance must be paid explicitly.
        e2 = e2 + 1.5 * math.sqrt(70) * noise2 / (4 * bigger.h)
        smooth = np.abs(bigger.fourth_differences(f0)) <= 1.5 * math.sqrt(70) * noise2
        keep = np.isfinite(n2) & (e2 < error[idx]) & _agree(n2, e2, numeric[idx], error[idx]) & smooth
        take = idx[keep]
        st.h[take], st.values[take] = bigger.h[keep], bigger.values[keep]
        noise[take] = noise2[keep]
        numeric[take], error[take] = n2[keep], e2[keep]
        enlarged[take] = True
    return enlarged, before


def _agree(u: np.ndarray, u_err: np.ndarray, v: np.ndarray, v_err: np.ndarray) -> np.ndarray:
    return np.abs(u - v) <= u_err + v_err


def _tolerance(a: np.ndarray, numeric: np.ndarray, error: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    return atol + rtol * np.maximum(np.abs(a), np.abs(numeric)) + error


def _estimate_noise(evaluate: Callable[[], float], leaves: list[np.ndarray], pristine: list[np.ndarray], f0: float,
                    eps: float, points: int = 9, rungs: int = 4) -> float:
    """A bound on the rounding error of one evaluation of func near x (see the module docstring)."""
    rng = np.random.Generator(np.random.PCG64(20240601))  # a fixed direction: the estimate is reproducible
    directions = [rng.choice([-1.0, 1.0], size=leaf.shape) * _scale(orig) for leaf, orig in zip(leaves, pristine)]
    tiny = min(float(np.finfo(leaf.dtype).eps) for leaf in leaves)
    sigma = 0.0
    # Spacings from 64 ulps up to the finite-difference step: the first at which f takes several distinct values
    # shows its rounding, including the quantisation of intermediate results that a smaller spacing cannot see.
    spacing = 64 * tiny
    for _ in range(rungs):
        if spacing > eps ** (1 / 3):
            break
        values = [f0]
        for t in range(1, points):
            for leaf, orig, d in zip(leaves, pristine, directions):
                leaf[...] = orig + (t * spacing) * d
            values.append(evaluate())
        f = np.array(values)
        if not np.isfinite(f).all():
            break
        sigma = max(math.sqrt(math.factorial(k) ** 2 / math.factorial(2 * k) * float(np.mean(np.diff(f, n=k) ** 2)))
                    for k in (3, 4))
        if len(np.unique(f)) >= points // 2:
            break
        spacing *= 64
    for leaf, orig in zip(leaves, pristine):
        leaf[...] = orig
    return max(4 * sigma, eps * abs(f0), np.finfo(np.float64).tiny)


# -- complex step --------------------------------------------------------------------------------------------------
def _complex_step(func: Callable[[Any], Any], treedef: Any, pristine: list[np.ndarray], reports: list[LeafReport],
                  caller: dict[str, str], name: str, rtol: float, atol: float) -> tuple[list[LeafReport], str]:
    """Im f(x + i·h·eᵢ)/h for every element; used where it agrees with the central differences, else a notice."""
    work = [orig.astype(np.result_type(orig.dtype, np.complex64)) for orig in pristine]
    tree = treedef.unflatten(work)
    values = []
    try:
        with warnings.catch_warnings(), np.errstate(**caller):
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            for leaf, orig in zip(work, pristine):
                flat = leaf.reshape(-1)
                h = np.finfo(orig.dtype).eps ** 2 * _scale(orig).reshape(-1)
                out = np.empty(flat.size)
                for i in range(flat.size):
                    flat[i] = complex(orig.flat[i], h[i])
                    value = func(tree)
                    flat[i] = orig.flat[i]
                    out[i] = np.imag(value) / h[i]
                values.append(out.reshape(orig.shape))
    except Exception as exc:  # any refusal of complex input means: no complex step here
        return reports, (f"method='complex' fell back to central differences: {name} rejected complex input "
                         f"({type(exc).__name__}: {exc})")
    agree = all(np.all((np.abs(c - r.numeric) <= r.error) | r.kink) for c, r in zip(values, reports))
    if not agree:
        return reports, (f"method='complex' fell back to central differences: the complex step disagrees with them, "
                         f"so {name} is not complex-analytic (abs, max, comparisons or a real cast break it)")
    updated = []
    for c, r in zip(values, reports):
        eps = float(np.finfo(r.dtype).eps)
        error = np.where(r.kink, r.error, 8 * eps * np.abs(c))
        numeric = np.where(r.kink, r.numeric, c)
        tolerance = _tolerance(np.abs(r.analytic.astype(np.float64)), numeric, error, rtol, atol)
        updated.append(LeafReport(r.path, r.analytic, numeric, error, tolerance, r.step, r.kink))
    return updated, "method='complex': the complex step agreed with the central differences and replaced them"


# -- fast mode -----------------------------------------------------------------------------------------------------
def _fast(evaluate: Callable[[], float], leaves: list[np.ndarray], pristine: list[np.ndarray], paths: list[str],
          analytic: list[np.ndarray], f0: float, noise: float, eps: float, rtol: float, atol: float,
          rng: np.random.Generator, count: int) -> tuple[list[LeafReport], list[Probe]]:
    """Random-direction checks, and the halving search for the element behind a failing one."""
    sizes = [leaf.size for leaf in leaves]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    scale = np.concatenate([_scale(orig).reshape(-1) for orig in pristine])
    g = np.concatenate([a.reshape(-1).astype(np.float64) for a in analytic])
    t = eps ** (1 / 3)

    def along(u: np.ndarray) -> Probe:
        """Derivative along u: Richardson differences against ⟨g, d⟩ for the displacements d actually taken."""
        values, shifts = [], []
        for o in (1.0, -1.0, 2.0, -2.0):
            moved = []
            for leaf, orig, lo, hi in zip(leaves, pristine, starts[:-1], starts[1:]):
                leaf[...] = (orig.astype(np.float64) + o * t * u[lo:hi].reshape(leaf.shape)).astype(leaf.dtype)
                moved.append((leaf.astype(np.float64) - orig).reshape(-1))
            values.append(evaluate())
            shifts.append(np.concatenate(moved))
        for leaf, orig in zip(leaves, pristine):
            leaf[...] = orig
        v = np.array(values)
        # residuals of the two central differences against the analytic directional derivative
        r1 = (v[0] - v[1]) / (2 * t) - g @ (shifts[0] - shifts[1]) / (2 * t)
        r2 = (v[2] - v[3]) / (4 * t) - g @ (shifts[2] - shifts[3]) / (4 * t)
        residual = r1 + (r1 - r2) / 3
        level = max(noise, eps * float(np.abs(v).max()))
        error = abs(r1 - r2) + 1.5 * level / t
        gu = g * u
        # Random signs make per-element errors add like a random walk: six standard deviations of it.
        tol = 6 * float(np.linalg.norm((atol + rtol * np.abs(g)) * u)) + 4 * eps * float(np.abs(gu).sum()) + error
        exact = float(gu.sum())
        return Probe(analytic=exact, numeric=exact + residual if np.isfinite(residual) else float("nan"),
                     error=error, tolerance=tol)

    probes, suspects = [], []
    for _ in range(count):
        u = rng.choice([-1.0, 1.0], size=scale.size) * scale
        p = along(u)
        if not p.ok:
            finer = _shrink_probe(along, u, p)
            if finer is not None:  # agrees on a step 8× smaller and differs from the first: a kink on the path
                p = Probe(p.analytic, p.numeric, p.error, p.tolerance, note="kink on the path: " + finer)
            else:
                suspects.append(u)
        probes.append(p)
    checked = np.zeros(scale.size, dtype=bool)
    numeric = np.full(scale.size, np.nan)
    error = np.full(scale.size, np.nan)
    steps = np.full(scale.size, np.nan)
    for u in suspects[:1]:
        members = np.arange(scale.size)
        while members.size > 1:
            half = members[: members.size // 2]
            part = np.zeros_like(u)
            part[half] = u[half]
            members = half if not along(part).ok else members[members.size // 2:]
        i = int(members[0])
        k = int(np.searchsorted(starts, i, side="right") - 1)
        leaf, orig = leaves[k], pristine[k]
        h = np.array([t * scale[i]])
        local = np.array([i - starts[k]])
        st = _Stencil.evaluate(evaluate, leaf, orig, local, h, np.array([1.0, -1.0, 2.0, -2.0]))
        n_i, e_i = st.richardson(np.maximum(noise, eps * np.abs(st.values).max(axis=1)))
        numeric[i], error[i], steps[i], checked[i] = n_i[0], e_i[0], st.h[0], True
    reports = []
    for k, (path, a) in enumerate(zip(paths, analytic)):
        sl = slice(starts[k], starts[k + 1])
        a64 = a.reshape(-1).astype(np.float64)
        tol = _tolerance(a64, numeric[sl], error[sl], rtol, atol)
        reports.append(LeafReport(path, a, numeric[sl].reshape(a.shape), error[sl].reshape(a.shape),
                                  tol.reshape(a.shape), steps[sl].reshape(a.shape),
                                  np.zeros(a.shape, dtype=bool), checked[sl].reshape(a.shape)))
    return reports, probes


def _shrink_probe(along: Callable[[np.ndarray], Probe], u: np.ndarray, coarse: Probe) -> str | None:
    """Re-probe with a step 8× smaller; return a note if that passes and contradicts the first estimate."""
    fine = along(u / 8)
    contradicts = abs(coarse.numeric - 8 * fine.numeric) > coarse.error + 8 * fine.error
    if fine.ok and contradicts:
        return f"8x smaller step gives {8 * fine.numeric:.6g}"
    return None


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


def _batched(value: Any, K: int, name: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != (K,) or not np.issubdtype(arr.dtype, np.floating):
        raise InvalidArgument(f"{name} was called with a batch of {K} points (vectorized=True) and returned "
                              f"{arr.dtype} of shape {arr.shape}; it must return one real value per point, shape "
                              f"({K},)")
    return arr.astype(np.float64)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _non_negative(name: str, value: Any) -> float:
    if not _is_real(value) or not math.isfinite(value) or value < 0:
        raise InvalidArgument(f"{name}={value!r}; it must be a finite number >= 0")
    return float(value)
