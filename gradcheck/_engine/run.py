"""The finite-difference gradient checker.

For every element xᵢ of every leaf, with a step h = eps^(1/3)·scaleᵢ (eps of the leaf's dtype, scaleᵢ = max(|xᵢ|,
RMS of the leaf), or 1 for an all-zero leaf), four evaluations give two central differences:

    D(h)    = (f(x + h eᵢ) − f(x − h eᵢ)) / 2h                   error c·h² + rounding
    numeric = D(h) + (D(h) − D(2h)) / 3                          Richardson: the h² term cancels
    error   = |D(h) − D(2h)| + 1.5·noise / h                     truncation plus the worst rounding

The truncation term bounds the extrapolated value's error whether D's error shrinks like h² (smooth f: it is then
three times D(h)'s own error) or only like h (f″ jumps at x, as at a ReLU unit sitting exactly at 0, where
Richardson's h² assumption fails and the extrapolated value keeps 2/3 of |D(h) − D(2h)|).

``noise`` bounds the rounding error of one evaluation of f. It is measured, not assumed: for each dtype of x, f is
evaluated at nine points 64 ulps apart along a fixed direction that moves the leaves of that dtype (Moré & Wild's
ECnoise), and the 3rd and 4th differences of those values, in which the smooth part of f has vanished but its
rounding has not, give its standard deviation σ. A ray that crosses a jump or a kink (one difference far larger
than the others) is measured again on the other side of x. noise = max(4σ, eps·|f(x)|) with eps that of the coarser
of func's result and the leaf's dtype, and for each element at least eps times the largest |f| in its stencil.

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

Jumps. A non-smooth element's steepest interval is bisected down to adjacent floating-point numbers while f changes
across it by more than its noise and a millionth of |f|: a continuous f changes over an interval of width w by at
most its slope times w, a jump keeps its size. A jump at x fails the element (no derivative exists there); a jump
beside x is stepped around with a stencil that stops short of it, its size counted as noise.

Where f is not finite within the stencil (a domain boundary), or func raises an arithmetic error there, the step is
divided by 8, up to twelve times, until it is; failing that, the derivative on the side where f is finite is the
numeric value.

Limits: a float64 func that rounds to float32 inside is rounded more coarsely than a 64-ulp ray shows; where that
rounding is as coarse as the step, a correct gradient can fail (pass a larger ``step``), but an element the check
cannot resolve shows it in its tolerance rather than passing silently.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gradcheck._args import check_callable, finite, is_real, non_negative
from gradcheck.errors import GradcheckError, GradientMismatch, InvalidArgument, InvalidType
from gradcheck._engine.pytree import TreeDef, flatten, float_leaves, match_structure
from gradcheck.report import GradientReport, LeafReport, Probe

__all__ = ["Bulk", "check"]


Bulk = Callable[[int, np.ndarray, np.ndarray], np.ndarray]  # (leaf, flat indices, steps) -> f at x + step·e


def _check(func: Callable[[Any], Any], grad: Callable[[Any], Any], x: Any, *, rtol: float | None, atol: float,
           step: float | None, caller: dict[str, str], bulk: Bulk | None = None,
           fast: tuple[np.random.Generator, int] | None = None, complex_step: bool = False,
           vectorized: bool = False) -> GradientReport:
    """The engine behind every checker: f at x, the invariants, the noise, then each leaf judged element by element.

    ``bulk`` evaluates many single-element perturbations of one leaf at once (check_network provides it).
    """
    paths, leaves, treedef = float_leaves(x)
    ev = _Evaluator(func, treedef, leaves, caller, vectorized, bulk)
    rtols = [math.sqrt(float(np.finfo(leaf.dtype).eps)) if rtol is None else rtol for leaf in leaves]
    if step is not None:
        _check_step_resolves(step, paths, ev.pristine)
    problems: list[str] = []
    f0 = ev.first_value(problems)
    _note_mutation(problems, leaves, ev.pristine, paths, f"{ev.name}(x)")
    analytic = _analytic(ev, grad, treedef, paths, rtols, problems)
    report_rtol = rtols[0] if len(set(rtols)) == 1 else max(rtols)
    common = dict(rtol=report_rtol, atol=atol, value=f0, func_name=ev.name)
    if problems and ev.unrepeatable:
        reports = [_unchecked(path, a, rtol_k) for path, a, rtol_k in zip(paths, analytic, rtols)]
        return GradientReport(leaves=reports, noise=float("nan"), calls=ev.calls, problems=problems, **common)
    noise = _estimate_noise(ev, f0)
    notes: list[str] = []
    if fast is not None:
        reports, probe_list = _fast(ev, paths, analytic, f0, noise, rtols, atol, step, *fast)
    else:
        reports = [_judge_leaf(ev, k, path, a, f0, noise[k], rtol_k, atol, step)
                   for k, (path, a, rtol_k) in enumerate(zip(paths, analytic, rtols))]
        probe_list = []
    _note_mutation(problems, leaves, ev.pristine, paths, f"{ev.name}(x) while x was perturbed")
    ev.restore()
    _note_drift(problems, ev, f0, max(noise))
    if complex_step:
        reports, note = _complex_step(func, treedef, ev.pristine, reports, caller, ev.name, atol)
        ev.calls += sum(leaf.size for leaf in leaves)
        notes.append(note)
    if ev.raised:
        notes.append(f"{ev.name} raised " + ", ".join(f"{name} {count}×" for name, count in ev.raised.items())
                     + " at perturbed points (outside its domain, or under np.errstate/warning filters that raise); "
                     "those points were treated as not finite")
    if len(set(rtols)) > 1:
        notes.append("rtol is √eps of each leaf's own dtype: " + ", ".join(
            f"{path} {r.rtol:.2g}" for path, r in zip(paths, reports)))
    seed = getattr(fast[0].bit_generator.seed_seq, "entropy", None) if fast is not None else None
    return GradientReport(leaves=reports, noise=max(noise), calls=ev.calls, problems=problems, notes=notes,
                          mode="fast" if fast is not None else "full", probes=probe_list, seed=seed, **common)


def _analytic(ev: _Evaluator, grad: Callable[[Any], Any], treedef: TreeDef, paths: list[str], rtols: list[float],
              problems: list[str]) -> list[np.ndarray]:
    """grad(x), called twice: the first answer, after checking the second agrees with it and x is unchanged."""
    first = [g.copy() for g in match_structure(treedef, paths, ev.leaves, ev.call_grad(grad, problems), "grad(x)")]
    if _note_mutation(problems, ev.leaves, ev.pristine, paths, "grad(x)"):
        ev.restore()
    again = match_structure(treedef, paths, ev.leaves, ev.call_grad(grad, problems), "grad(x)")
    _note_unrepeatable(problems, first, again, paths, rtols)
    ev.restore()
    return first


def _unchecked(path: str, a: np.ndarray, rtol: float) -> LeafReport:
    nan = np.full(a.shape, np.nan)
    return LeafReport(path, a, nan, nan, nan, nan, np.zeros(a.shape, dtype=bool), np.zeros(a.shape, dtype=bool),
                      rtol=rtol)


# -- evaluating func -----------------------------------------------------------------------------------------------
class _Evaluator:
    """func at x, and at x with single elements moved, counting calls.

    func receives a new container of the working arrays on every call, so a func that rebinds an entry
    (``d["w"] = d["w"] * 2``) cannot detach it from the perturbations that follow; the first call checks for it.
    """

    def __init__(self, func: Callable[[Any], Any], treedef: TreeDef, leaves: list[np.ndarray],
                 caller: dict[str, str], vectorized: bool, bulk: Bulk | None) -> None:
        self.func, self.treedef, self.leaves, self.caller = func, treedef, leaves, caller
        self.pristine = [leaf.copy() for leaf in leaves]
        self.vectorized, self.calls = vectorized, 0
        name = getattr(func, "__name__", "func")
        self.name = "f" if name == "<lambda>" else str(name)
        self.f_eps = float(np.finfo(np.float64).eps)   # eps of func's result type, set by first_value
        self.unrepeatable = False
        self.raised: dict[str, int] = {}   # exceptions func raised at perturbed points, by name
        self._bulk = bulk if bulk is not None else (self._vectorized_bulk if vectorized else None)

    def tree(self) -> Any:
        return self.treedef.unflatten([leaf[None] for leaf in self.leaves] if self.vectorized else self.leaves)

    def __call__(self) -> float:
        """f at the working point. An arithmetic error or warning raised there (func stepped out of its domain,
        under the caller's ``np.errstate`` or warning filters) counts as a value that is not finite."""
        try:
            return self._value(self.tree())
        except (ArithmeticError, RuntimeWarning, ValueError) as exc:
            if isinstance(exc, GradcheckError):
                raise
            self.raised[type(exc).__name__] = self.raised.get(type(exc).__name__, 0) + 1
            return math.nan

    def _value(self, tree: Any) -> float:
        return self._convert(self._raw(tree))

    def _raw(self, tree: Any) -> Any:
        self.calls += 1
        with np.errstate(**self.caller):
            return self.func(tree)

    def _convert(self, raw: Any) -> float:
        return float(_batched(raw, 1, self.name)[0]) if self.vectorized else _scalar(raw, self.name)

    def first_value(self, problems: list[str]) -> float:
        """f(x), twice, checking it is finite, repeatable and that func leaves its container alone; learns the
        precision of func's result."""
        tree = self.tree()
        raw = self._raw(tree)
        f0 = self._convert(raw)
        dtype = np.asarray(raw).dtype
        if np.issubdtype(dtype, np.floating):
            self.f_eps = max(self.f_eps, float(np.finfo(dtype).eps))
        if not math.isfinite(f0):
            raise InvalidArgument(f"{self.name}(x) = {f0} at the point given; the check needs a finite value there: "
                                  "move x or fix func")
        self.note_rebinding(tree, f"{self.name}(x)", problems)
        again = self._value(self.tree())
        if not abs(again - f0) <= 64 * self.f_eps * abs(f0):
            self.unrepeatable = True
            problems.append(_unrepeatable_sentence(self.name, f0, again))
        return f0

    def note_rebinding(self, tree: Any, who: str, problems: list[str]) -> None:
        paths, seen, _ = flatten(tree)
        mine = self.leaves
        for path, a, b in zip(paths, seen, mine):
            if a is not b and not (self.vectorized and isinstance(a, np.ndarray) and a.base is b):
                problems.append(f"{who} replaced {path} in the container it was given (an assignment such as "
                                "x['w'] = ...); func and grad must not modify their argument: build a new container "
                                "or a new array instead")
                return

    def call_grad(self, grad: Callable[[Any], Any], problems: list[str]) -> Any:
        tree = self.treedef.unflatten(self.leaves)
        with np.errstate(**self.caller):
            out = grad(tree)
        if not self.vectorized:
            self.note_rebinding(tree, "grad(x)", problems)
        return out

    def restore(self) -> None:
        for leaf, orig in zip(self.leaves, self.pristine):
            leaf[...] = orig

    def at(self, k: int, idx: np.ndarray, points: np.ndarray) -> np.ndarray:
        """f with element idx[r] of leaf k set to points[r, c] (already in the leaf's dtype), shape of points."""
        flat, base = self.leaves[k].reshape(-1), self.pristine[k].reshape(-1)
        if self._bulk is not None:
            steps = points - base[idx].astype(np.float64)[:, None]
            cols = [self._bulk(k, idx, steps[:, c]) for c in range(points.shape[1])]
            return np.column_stack(cols) if cols else np.empty(points.shape)
        values = np.empty(points.shape)
        for row, i in enumerate(idx):
            for c in range(points.shape[1]):
                flat[i] = points[row, c]
                values[row, c] = self()
            flat[i] = base[i]
        return values

    def along(self, displacement: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        """f at x + displacement (rounded to each leaf's dtype) and the displacement actually taken."""
        taken = []
        for leaf, orig, d in zip(self.leaves, self.pristine, displacement):
            leaf[...] = (orig.astype(np.float64) + d).astype(leaf.dtype)
            taken.append(leaf.astype(np.float64) - orig)
        value = self()
        self.restore()
        return value, taken

    def along_many(self, displacements: list[list[np.ndarray]]) -> np.ndarray:
        """f at x + each displacement; a vectorized func takes them in one call."""
        if not self.vectorized:
            return np.array([self.along(d)[0] for d in displacements])
        batch = [np.stack([(orig.astype(np.float64) + d[k]).astype(orig.dtype) for d in displacements])
                 for k, orig in enumerate(self.pristine)]
        self.calls += 1
        try:
            with np.errstate(**self.caller):
                return _batched(self.func(self.treedef.unflatten(batch)), len(displacements), self.name)
        except (ArithmeticError, RuntimeWarning, ValueError) as exc:
            if isinstance(exc, GradcheckError):
                raise
            return np.array([self.along(d)[0] for d in displacements])

    def _vectorized_bulk(self, k: int, idx: np.ndarray, steps: np.ndarray) -> np.ndarray:
        chunk = max(1, (1 << 22) // max(1, sum(leaf.size for leaf in self.pristine)))
        out = np.empty(len(idx))
        for start in range(0, len(idx), chunk):
            sl = slice(start, start + chunk)
            K = len(idx[sl])
            batch = [np.repeat(orig[None], K, axis=0) for orig in self.pristine]
            flat = batch[k].reshape(K, -1)
            flat[np.arange(K), idx[sl]] = (flat[np.arange(K), idx[sl]].astype(np.float64)
                                           + steps[sl]).astype(flat.dtype)
            self.calls += 1
            with np.errstate(**self.caller):
                out[sl] = _batched(self.func(self.treedef.unflatten(batch)), K, self.name)
        return out


def _unrepeatable_sentence(name: str, first: float, second: float) -> str:
    return (f"{name}(x) is not repeatable: it returned {first:.17g} and then {second:.17g} at the same x (spread "
            f"{abs(second - first):.3g}); a gradient check needs a deterministic func: switch off dropout and sampling, "
            "fix the random seed inside func, or reset state that func accumulates across calls")


def _note_drift(problems: list[str], ev: _Evaluator, f0: float, noise: float) -> None:
    """f(x) once more, after every perturbation: a func that keeps state across calls shows it here."""
    if ev.unrepeatable:
        return
    last = ev()
    if not abs(last - f0) <= max(noise, 64 * ev.f_eps * abs(f0)):
        ev.unrepeatable = True
        problems.append(_unrepeatable_sentence(ev.name, f0, last) + " (the second value came after the check's "
                        "other evaluations)")


# -- the noise of func ---------------------------------------------------------------------------------------------
def _estimate_noise(ev: _Evaluator, f0: float) -> list[float]:
    """Per leaf, a bound on the rounding error of one evaluation of func near x (see the module docstring).

    Measured for each dtype on its own, moving only the leaves of that dtype, so that a float32 leaf's coarse
    rounding does not blunt a float64 leaf's check.
    """
    by_dtype: dict[np.dtype, float] = {}
    for dtype in {orig.dtype for orig in ev.pristine}:
        rng = np.random.Generator(np.random.PCG64(20240601))  # a fixed direction: the estimate is reproducible
        # Random magnitudes as well as signs: a symmetric f (an odd sum at 0) is then not constant along the ray.
        direction = [rng.choice([-1.0, 1.0], size=orig.shape) * rng.uniform(0.5, 1.5, size=orig.shape)
                     * _scale(orig) * (orig.dtype == dtype) for orig in ev.pristine]
        sigma = _ray_sigma(ev, direction, float(np.finfo(dtype).eps))
        # at least one ulp of f in the coarser of func's result and the leaves' dtype, as for every stencil
        floor = max(ev.f_eps, float(np.finfo(dtype).eps)) * abs(f0)
        by_dtype[dtype] = max(4 * sigma, floor, float(np.finfo(np.float64).tiny))
    return [by_dtype[orig.dtype] for orig in ev.pristine]


def _ray_sigma(ev: _Evaluator, direction: list[np.ndarray], eps: float) -> float:
    """The rounding of f near x, measured along a fixed direction d: f at x + t·64ulps·d, t = 1…9, and the standard
    deviation of its rounding from the 3rd and 4th differences of those values (Moré and Wild's ECnoise).

    At 64 ulps the ray crosses a jump or a kink of f only where one sits within a few hundred ulps of x, and then
    shows it as one difference far larger than the others: such a ray is measured again from the other side of x,
    where it is not, and a feature on both sides counts for nothing. A wider ray would meet the kinks and jumps of
    every element and pass them off as noise for all (a float64 func that rounds to float32 inside has coarser
    rounding than this sees: see the limits in the module docstring).
    """
    for sign in (1.0, -1.0):
        f = ev.along_many([[sign * t * 64 * eps * d for d in direction] for t in range(1, 10)])
        if _regular(f):
            return _difference_sigma(f)
    return 0.0


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
    return top * max(math.sqrt(math.factorial(k) ** 2 / math.factorial(2 * k) * float(np.mean(np.diff(scaled, n=k) ** 2)))
                     for k in (3, 4))


# -- judging one leaf ----------------------------------------------------------------------------------------------
class _Stencil:
    """f − f(x) at x + k·h·eᵢ for k in ``offsets``, for elements ``idx`` of one leaf; ``h`` are the steps taken.

    Values are kept relative to f(x), so that differences of a huge f never overflow.
    """

    def __init__(self, h: np.ndarray, offsets: np.ndarray, values: np.ndarray) -> None:
        self.h, self.offsets, self.values = h, offsets, values

    @classmethod
    def at(cls, ev: _Evaluator, k: int, idx: np.ndarray, h: np.ndarray, offsets: np.ndarray, f0: float) -> _Stencil:
        base = ev.pristine[k].reshape(-1)[idx].astype(np.float64)
        points = (base[:, None] + offsets * h[:, None]).astype(ev.pristine[k].dtype).astype(np.float64)
        values = ev.at(k, idx, points) - f0
        values[points == base[:, None]] = np.nan   # a step lost to rounding differentiates nothing
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
        return gp2 - 4 * gp - 4 * gm + gm2

    def magnitude(self, f0: float) -> np.ndarray:
        """The largest |f| the stencil saw, per element."""
        return abs(f0) + _largest(self.values)


CENTRAL = np.array([1.0, -1.0, 2.0, -2.0])
FAR = np.array([4.0, -4.0])
SIX_SIGMA = 1.5 * math.sqrt(70)
# the offsets, in units of h, of every point a second look has seen, in order (0 is x itself)
SAMPLES = np.array([-4, -2, -1, -0.5, -0.25, -0.125, 0, 0.125, 0.25, 0.5, 1, 2, 4])   # a fourth difference of pure rounding stays below this many noise units


@dataclass
class _Verdict:
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
        self.tolerance[rows] = _tolerance(a[rows], self.numeric[rows], self.error[rows], rtol, atol)


def _judge_leaf(ev: _Evaluator, k: int, path: str, a: np.ndarray, f0: float, noise: float, rtol: float,
                atol: float, step: float | None) -> LeafReport:
    v = _judge(ev, k, np.arange(a.size), a.reshape(-1).astype(np.float64), f0, noise, rtol, atol, step)
    shape = a.shape
    return LeafReport(path, a, v.numeric.reshape(shape), v.error.reshape(shape), v.tolerance.reshape(shape),
                      v.h.reshape(shape), v.kink.reshape(shape), jump=v.jump.reshape(shape), rtol=rtol)


def _judge(ev: _Evaluator, k: int, idx: np.ndarray, a: np.ndarray, f0: float, noise_at_x: float, rtol: float,
           atol: float, step: float | None) -> _Verdict:
    """Numeric derivative, error, tolerance, kink and jump for elements ``idx`` of leaf k (module docstring)."""
    orig = ev.pristine[k]
    eps = max(ev.f_eps, float(np.finfo(orig.dtype).eps))
    st = _Stencil.at(ev, k, idx, _initial_steps(orig, idx, step), CENTRAL, f0)
    _shrink_where_not_finite(ev, k, idx, st, f0)
    # Rounding of f is at least one ulp of the largest value the element's stencil saw. And where f took exactly its
    # value at x at every point of the stencil while grad predicts a change, f is quantised at least that coarsely
    # (a func that computes in a lower precision inside) or grad is wrong: either way the step must grow to tell.
    noise = np.maximum(noise_at_x, eps * st.magnitude(f0))
    frozen = (st.values == 0).all(axis=1)
    noise[frozen] = np.maximum(noise[frozen], np.abs(a[frozen]) * st.h[frozen])
    numeric, error = st.richardson(noise)
    enlarged, before = _enlarge_steps(ev, k, idx, a, f0, noise, eps, st, numeric, error)
    v = _Verdict(numeric, error, _tolerance(a, numeric, error, rtol, atol), st.h, np.zeros(a.size, dtype=bool),
                 np.zeros(a.size))
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
        h = np.finfo(orig.dtype).eps ** (1 / 3) * _scale(orig).reshape(-1)[idx]
    else:
        h = np.full(base.shape, step)
    # Round x + h to the leaf's dtype and divide by the step that rounding leaves.
    return np.asarray((base + h).astype(orig.dtype).astype(np.float64) - base)


def _shrink_where_not_finite(ev: _Evaluator, k: int, idx: np.ndarray, st: _Stencil, f0: float) -> None:
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
        again = _Stencil.at(ev, k, idx[broken], _rounded_steps(orig, idx[broken], st.h[broken] / 8), st.offsets, f0)
        st.h[broken], st.values[broken] = again.h, again.values


def _rounded_steps(orig: np.ndarray, idx: np.ndarray, h: np.ndarray) -> np.ndarray:
    base = orig.reshape(-1)[idx].astype(np.float64)
    rounded = (base + h).astype(orig.dtype).astype(np.float64) - base
    return np.where(rounded > 0, rounded, h)


def _enlarge_steps(ev: _Evaluator, k: int, idx: np.ndarray, a: np.ndarray, f0: float, noise: np.ndarray, eps: float,
                   st: _Stencil, numeric: np.ndarray, error: np.ndarray,
                   rounds: int = 2) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Larger steps where rounding swamps a small derivative (in place).

    An element whose error estimate is over 1% of its size and mostly rounding (f barely changes along it, as for
    the first layer of a deep sigmoid network) is differentiated again with the step that balances the two error
    terms, at most 1000× larger per round and never beyond a tenth of the element's scale. The new estimate is kept
    when it is more precise, agrees with the old one within their errors, its fourth differences at h and 2h are
    within the noise, and its one-sided derivatives agree with each other (a larger step must not cross a kink).
    """
    cap = 0.1 * _scale(ev.pristine[k]).reshape(-1)[idx]
    before = (st.h.copy(), st.values.copy(), numeric.copy(), error.copy())
    enlarged = np.zeros(st.h.size, dtype=bool)
    for _ in range(rounds):
        rounding = 1.5 * noise / st.h
        truncation = np.maximum(error - rounding, 0)
        coarse = ((error > 0.01 * np.maximum(np.abs(a), np.abs(numeric))) & (rounding > 2 * truncation)
                  & (st.h < cap) & np.isfinite(numeric))
        rows = np.flatnonzero(coarse)
        if not rows.size:
            break
        # the step that balances the two terms, or (when the truncation estimate is itself mostly rounding) the
        # one that brings rounding under 0.3% of the derivative, whichever is larger
        mag = np.maximum(np.abs(a[rows]), np.abs(numeric[rows]))
        balance = np.cbrt(rounding[rows] / (2 * np.maximum(truncation[rows], 1e-300)))
        quiet = rounding[rows] / np.maximum(0.003 * mag, 1e-300)
        factor = np.clip(np.fmax(balance, quiet), 2, 1000)
        h = _rounded_steps(ev.pristine[k], idx[rows], np.minimum(st.h[rows] * factor, cap[rows]))
        bigger = _Stencil.at(ev, k, idx[rows], h, CENTRAL, f0)
        far = _Stencil.at(ev, k, idx[rows], h, FAR, f0).values
        noise2 = np.maximum(noise[rows], eps * np.fmax(bigger.magnitude(f0), abs(f0) + _largest(far)))
        n2, e2 = bigger.richardson(noise2)
        # A kink at x too small for the fourth difference to show (jump·2h below 1.5·√70·noise) still shifts a
        # central difference by up to half the jump: on a larger step that allowance must be paid explicitly.
        e2 = e2 + SIX_SIGMA * noise2 / (4 * bigger.h)
        gp, gm, gp2, gm2 = bigger.values.T
        right, right_err = _one_sided(gp, gp2, far[:, 0], bigger.h, noise2)
        left, left_err = _one_sided(gm, gm2, far[:, 1], -bigger.h, noise2)
        smooth = ((np.abs(bigger.fourth_differences()) <= SIX_SIGMA * noise2)
                  & (np.abs(far[:, 0] - 4 * gp2 - 4 * gm2 + far[:, 1]) <= SIX_SIGMA * noise2)
                  & _agree(left, left_err, right, right_err) & _agree(left, left_err, n2, e2)
                  & _agree(right, right_err, n2, e2))
        keep = np.isfinite(n2) & (e2 < error[rows]) & _agree(n2, e2, numeric[rows], error[rows]) & smooth
        take = rows[keep]
        st.h[take], st.values[take] = bigger.h[keep], bigger.values[keep]
        noise[take] = noise2[keep]
        numeric[take], error[take] = n2[keep], e2[keep]
        enlarged[take] = True
    return enlarged, before


def _one_sided(g1: np.ndarray, g2: np.ndarray, g4: np.ndarray, h: np.ndarray,
               noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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

    estimates: list[tuple[np.ndarray, np.ndarray]]   # central (first), left, right, fine
    finer: list[tuple[np.ndarray, np.ndarray]]       # one-sided on the smaller step: left8, right8
    d4_smooth: np.ndarray
    noise: np.ndarray
    values: np.ndarray                                 # (rows, 13): f − f(x) at SAMPLES·h


def _look_again(ev: _Evaluator, k: int, idx: np.ndarray, f0: float, noise: np.ndarray, eps: float, st: _Stencil,
                numeric: np.ndarray, error: np.ndarray, a: np.ndarray) -> _Looks:
    h = st.h
    far = _Stencil.at(ev, k, idx, h, FAR, f0).values
    near = _Stencil.at(ev, k, idx, h / 8, CENTRAL, f0)
    near_far = _Stencil.at(ev, k, idx, h / 8, FAR, f0).values
    seen = _largest(np.column_stack([far, near.values, near_far]))
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
    for (u, ue), points in ((fine, near.values), (right8, np.column_stack([nfp, nfp2, near_far[:, 0]])),
                            (left8, np.column_stack([nfm, nfm2, near_far[:, 1]]))):
        frozen = (points == 0).all(axis=1) & (a != 0)
        ue[frozen] = np.maximum(ue[frozen], 6 * np.abs(a[frozen]))
    # Fourth differences at spacings h and 2h: a kink at distance d in (0, 2h) makes at least one of them of order
    # jump·h (each alone is blind at one d), while rounding keeps both near √70·σ = √70·noise/4.
    d4_2h = far[:, 0] - 4 * gp2 - 4 * gm2 + far[:, 1]
    d4_smooth = np.fmax(np.abs(st.fourth_differences()), np.abs(d4_2h)) <= SIX_SIGMA * noise_r
    values = np.column_stack([far[:, 1], gm2, gm, near_far[:, 1], nfm2, nfm, np.zeros(idx.size), nfp, nfp2,
                              near_far[:, 0], gp, gp2, far[:, 0]])
    return _Looks([(numeric, error), left, right, fine], [left8, right8], d4_smooth, noise_r, values)


def _second_look(ev: _Evaluator, k: int, idx: np.ndarray, redo: np.ndarray, a: np.ndarray, f0: float,
                 noise: np.ndarray, eps: float, st: _Stencil, v: _Verdict, enlarged: np.ndarray,
                 before: tuple[np.ndarray, ...], rtol: float, atol: float) -> None:
    """Kinks, domain boundaries and jumps among the elements ``redo`` (rows of idx), in place."""
    sub = _Stencil(st.h[redo], st.offsets, st.values[redo])
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
        for w, we in looks.estimates[i + 1:]:
            smooth &= _agree(u, ue, w, we)
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
    return _Looks([(u[mask], ue[mask]) for u, ue in looks.estimates], [(u[mask], ue[mask]) for u, ue in looks.finer],
                  looks.d4_smooth[mask], looks.noise[mask], looks.values[mask])


def _judge_kinks(rows: np.ndarray, a: np.ndarray, v: _Verdict, looks: _Looks, rtol: float, atol: float) -> None:
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
        return (ue <= 0.1 * np.maximum(np.abs(u), np.abs(ar))) | (ue <= 4 * first_tol)

    # And only a stable one: a one-sided derivative that the step 8× smaller confirms, a finer central one that
    # both finer one-sided ones confirm. Rounding coarse enough to look like a kink (a staircase) confirms nothing.
    (left, left_err), (right, right_err), (fine, fine_err) = looks.estimates[1:4]
    (left8, left8_err), (right8, right8_err) = looks.finer
    def agree(u: np.ndarray, ue: np.ndarray, w: np.ndarray, we: np.ndarray) -> np.ndarray:
        return _agree(u, ue + rtol * np.abs(u), w, we)   # up to rtol: points off x are rounded to the leaf's dtype

    stable_left = agree(left, left_err, left8, left8_err)
    stable_right = agree(right, right_err, right8, right8_err)
    stable_fine = agree(left8, left8_err, right8, right8_err) & agree(fine, fine_err, left8, left8_err)
    for (u, ue), stable in (((left, left_err), stable_left), ((left8, left8_err), stable_left),
                            ((right, right_err), stable_right), ((right8, right8_err), stable_right),
                            ((fine, fine_err), stable_fine)):
        matches |= stable & usable(u, ue) & (np.abs(ar - u) <= _tolerance(ar, u, ue, rtol, atol))
    # between the one-sided derivatives (both stable), each end widened by its tolerance where it is usable
    left_tol = _tolerance(ar, left, np.where(usable(left, left_err), left_err, 0.0), rtol, atol)
    right_tol = _tolerance(ar, right, np.where(usable(right, right_err), right_err, 0.0), rtol, atol)
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


def _find_jumps(ev: _Evaluator, k: int, idx: np.ndarray, rows: np.ndarray, a: np.ndarray, f0: float, v: _Verdict,
                looks: _Looks, rtol: float, atol: float) -> None:
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
    threshold = np.maximum(SIX_SIGMA * looks.noise, 1e-6 * (abs(f0) + _largest(g)))
    active = np.ones(rows.size, dtype=bool)
    for _ in range(80):
        mid = ((lo + hi) / 2).astype(orig.dtype).astype(np.float64)
        active &= (np.abs(g_hi - g_lo) > threshold) & (mid > np.fmin(lo, hi)) & (mid < np.fmax(lo, hi))
        r = np.flatnonzero(active)
        if not r.size:
            break
        g_mid = ev.at(k, idx[rows[r]], mid[r][:, None])[:, 0] - f0
        ok = np.isfinite(g_mid)
        active[r[~ok]] = False
        r, g_mid = r[ok], g_mid[ok]
        left = np.abs(g_mid - g_lo[r]) >= np.abs(g_hi[r] - g_mid)
        hi[r], g_hi[r] = np.where(left, mid[r], hi[r]), np.where(left, g_mid, g_hi[r])
        lo[r], g_lo[r] = np.where(left, lo[r], mid[r]), np.where(left, g_lo[r], g_mid)
    slope = np.fmax(np.abs(a[rows]), np.nanmax(np.abs(np.stack([u for u, _ in looks.estimates + looks.finer])),
                                               axis=0))
    size = np.abs(g_hi - g_lo)
    jumped = ~active & (size > 8 * np.nan_to_num(slope, nan=0.0) * np.abs(hi - lo) + threshold)
    position = (lo + hi) / 2 - base
    scale = _scale(orig).reshape(-1)[idx[rows]]
    away = jumped & (np.abs(position) / 3 >= 1e3 * float(np.finfo(orig.dtype).eps) * scale)
    if away.any():
        # The jump's own size counts as noise there: a "jump" of rounding size is one step of a staircase (a
        # func that computes in a coarser precision inside), and the smaller stencil will meet its other steps.
        noise = np.maximum(looks.noise[away], size[away])
        _differentiate_before(ev, k, idx, rows[away], np.abs(position[away]) / 3, a, f0, v, noise, rtol, atol)
    at_x = rows[jumped & ~away]
    v.jump[at_x], v.kink[at_x] = size[jumped & ~away], False


def _differentiate_before(ev: _Evaluator, k: int, idx: np.ndarray, rows: np.ndarray, h: np.ndarray, a: np.ndarray,
                          f0: float, v: _Verdict, noise: np.ndarray, rtol: float, atol: float) -> None:
    """Central differences on a step small enough that the stencil stops short of a jump found near x."""
    st = _Stencil.at(ev, k, idx[rows], _rounded_steps(ev.pristine[k], idx[rows], h), CENTRAL, f0)
    numeric, error = st.richardson(noise)
    v.numeric[rows], v.error[rows], v.h[rows] = numeric, error + SIX_SIGMA * noise / (4 * st.h), st.h
    v.kink[rows] = False
    v.retolerate(rows, a, rtol, atol)


def _norm(v: np.ndarray) -> float:
    """‖v‖₂ without overflow or underflow for any finite v."""
    top = float(np.abs(v).max()) if v.size else 0.0
    return top * float(np.linalg.norm(v / top)) if top > 0 and math.isfinite(top) else top


def _largest(values: np.ndarray) -> np.ndarray:
    """The largest finite |value| of each row (0 for a row with none): a point where f is not finite has no
    rounding to measure."""
    return np.asarray(np.where(np.isfinite(values), np.abs(values), 0.0).max(axis=1))


def _agree(u: np.ndarray, u_err: np.ndarray, v: np.ndarray, v_err: np.ndarray) -> np.ndarray:
    return np.asarray(np.abs(u - v) <= u_err + v_err)


def _tolerance(a: np.ndarray, numeric: np.ndarray, error: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    return np.asarray(atol + rtol * np.maximum(np.abs(a), np.abs(numeric)) + error)


def _scale(x: np.ndarray) -> np.ndarray:
    """Each element's scale: max(|xᵢ|, RMS of its leaf), or 1 for an all-zero (or all-tiny) leaf.

    The RMS is taken of the leaf divided by its largest entry, so that it is finite for any finite leaf.
    """
    base = np.abs(x.astype(np.float64))
    top = float(base.max()) if base.size else 0.0
    rms = top * math.sqrt(float(np.mean((base / top) ** 2))) if top > 0 and math.isfinite(top) else 0.0
    # An all-zero leaf, or one so small that eps·RMS would underflow, has no usable scale of its own: use 1.
    info = np.finfo(x.dtype)
    return np.maximum(base, rms if rms > float(info.tiny) / float(info.eps) else 1.0)
# -- complex step --------------------------------------------------------------------------------------------------
def _complex_step(func: Callable[[Any], Any], treedef: Any, pristine: list[np.ndarray], reports: list[LeafReport],
                  caller: dict[str, str], name: str, atol: float) -> tuple[list[LeafReport], str]:
    """Im f(x + i·h·eᵢ)/h for every element; used where it agrees with the central differences, else a notice."""
    work = [orig.astype(np.result_type(orig.dtype, np.complex64)) for orig in pristine]
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
                    value = func(treedef.unflatten(work))
                    flat[i] = orig.flat[i]
                    out[i] = np.imag(value) / h[i]
                values.append(out.reshape(orig.shape))
    except Exception as exc:  # any refusal of complex input means: no complex step here
        return reports, (f"method='complex' fell back to central differences: {name} rejected complex input "
                         f"({type(exc).__name__}: {exc})")
    agree = all(np.all((np.abs(c - r.numeric) <= r.error) | r.kink | (r.jump > 0)) for c, r in zip(values, reports))
    if not agree:
        return reports, (f"method='complex' fell back to central differences: the complex step disagrees with them, "
                         f"so {name} is not complex-analytic (abs, max, comparisons or a real cast break it)")
    updated = []
    for c, r in zip(values, reports):
        eps = float(np.finfo(r.dtype).eps)
        error = np.where(r.kink, r.error, 8 * eps * np.abs(c))
        numeric = np.where(r.kink, r.numeric, c)
        tolerance = _tolerance(np.abs(r.analytic.astype(np.float64)), numeric, error, r.rtol, atol)
        updated.append(LeafReport(r.path, r.analytic, numeric, error, tolerance, r.step, r.kink, jump=r.jump,
                                  rtol=r.rtol))
    return updated, "method='complex': the complex step agreed with the central differences and replaced them"


# -- fast mode -----------------------------------------------------------------------------------------------------
class _Directions:
    """Fast mode's view of x as one flat vector: derivatives of f along displacements d, against ⟨grad, d⟩."""

    def __init__(self, ev: _Evaluator, analytic: list[np.ndarray], f0: float, noise: list[float], rtols: list[float],
                 atol: float, step: float | None) -> None:
        self.ev, self.f0, self.atol = ev, f0, atol
        self.starts = np.concatenate([[0], np.cumsum([a.size for a in analytic])]).astype(np.intp)
        self.g = np.concatenate([a.reshape(-1).astype(np.float64) for a in analytic])
        self.usable = np.isfinite(self.g)
        self.g[~self.usable] = 0.0
        sizes = [a.size for a in analytic]
        eps = [float(np.finfo(orig.dtype).eps) for orig in ev.pristine]
        self.eps = np.repeat(eps, sizes)
        self.rtol = np.repeat(rtols, sizes)
        self.noise = np.repeat(noise, sizes)
        self.group = np.repeat([str(orig.dtype) for orig in ev.pristine], sizes)
        self.scale = np.concatenate([_scale(orig).reshape(-1) for orig in ev.pristine])
        if step is None:
            self.reach = np.concatenate([_scale(orig).reshape(-1) * e ** (1 / 3) for orig, e in zip(ev.pristine, eps)])
        else:
            self.reach = np.full(self.g.size, step)

    def locate(self, i: int) -> tuple[int, int]:
        k = int(np.searchsorted(self.starts, i, side="right") - 1)
        return k, i - int(self.starts[k])

    def probe(self, d: np.ndarray) -> Probe:
        """Richardson differences of s ↦ f(x + s·d) at s = ±1, ±2 against ⟨grad, d⟩ for the displacements taken."""
        values, shifts = [], []
        for o in (1.0, -1.0, 2.0, -2.0):
            parts = [o * d[lo:hi].reshape(orig.shape) for orig, lo, hi in
                     zip(self.ev.pristine, self.starts[:-1], self.starts[1:])]
            value, taken = self.ev.along(parts)
            values.append(value - self.f0)
            shifts.append(np.concatenate([t.reshape(-1) for t in taken]))
        v = np.array(values)
        r1 = (v[0] - v[1]) / 2 - self.g @ (shifts[0] - shifts[1]) / 2
        r2 = (v[2] - v[3]) / 4 - self.g @ (shifts[2] - shifts[3]) / 4
        residual = r1 + (r1 - r2) / 3
        moved = d != 0
        noise = float(self.noise[moved].max()) if moved.any() else 0.0
        eps = max(self.ev.f_eps, float(self.eps[moved].max())) if moved.any() else self.ev.f_eps
        level = max(noise, eps * (abs(self.f0) + float(np.abs(v).max())))
        error = abs(r1 - r2) + 1.5 * level
        gd = self.g * d
        # Random signs make per-element errors add like a random walk: six standard deviations of it.
        tol = (6 * _norm((self.atol + self.rtol * np.abs(self.g)) * d)
               + 4 * float(np.sum(self.eps * np.abs(gd))) + error)
        exact = float(gd.sum())
        numeric = exact + residual if np.isfinite(residual) else float("nan")
        # A kink crossed on the way inflates |r1 − r2| and with it the tolerance: such a probe vouches for nothing,
        # whatever its difference. Its fourth difference shows it, as in full mode.
        smooth = abs(v[2] - 4 * v[0] - 4 * v[1] + v[3]) <= SIX_SIGMA * level
        return Probe(analytic=exact, numeric=numeric, error=float(error), tolerance=float(tol), smooth=bool(smooth))

    def narrow(self, d: np.ndarray) -> int:
        """The element behind a failing direction: halve the set of elements it moves, keeping a failing half."""
        members = np.flatnonzero(d)
        while members.size > 1:
            half = members[: members.size // 2]
            part = np.zeros_like(d)
            part[half] = d[half]
            members = half if not self.probe(part).ok else members[members.size // 2:]
        return int(members[0])


def _fast(ev: _Evaluator, paths: list[str], analytic: list[np.ndarray], f0: float, noise: list[float],
          rtols: list[float],
          atol: float, step: float | None, rng: np.random.Generator,
          count: int) -> tuple[list[LeafReport], list[Probe]]:
    """Random-direction checks; the elements behind a failing one are found by halving and judged as in full mode.

    Each dtype gets its own directions: a direction that moved float32 and float64 leaves together would judge the
    float64 ones with float32's tolerance."""
    dirs = _Directions(ev, analytic, f0, noise, rtols, atol, step)
    verdicts: dict[int, _Verdict] = {}

    def judge(i: int) -> None:
        k, local = dirs.locate(i)
        a = analytic[k].reshape(-1)[local:local + 1].astype(np.float64)
        verdicts[i] = _judge(ev, k, np.array([local]), a, f0, noise[k], rtols[k], atol, step)

    for i in np.flatnonzero(~dirs.usable)[:64]:   # a nan or inf in grad(x) fails where it is
        judge(int(i))
    probes = []
    for group in sorted(set(dirs.group)):
        for _ in range(count):
            d = rng.choice([-1.0, 1.0], size=dirs.g.size) * dirs.reach
            d[~dirs.usable | (dirs.group != group)] = 0.0
            probes.append(_explain(dirs, d, judge, verdicts))
    reports = []
    for k, (path, a) in enumerate(zip(paths, analytic)):
        fields = {name: np.full(a.size, np.nan) for name in ("numeric", "error", "tolerance", "h", "jump")}
        kink, checked = np.zeros(a.size, dtype=bool), np.zeros(a.size, dtype=bool)
        for i, v in verdicts.items():
            kk, local = dirs.locate(i)
            if kk == k:
                for name in fields:
                    fields[name][local] = getattr(v, name)[0]
                kink[local], checked[local] = v.kink[0], True
        fields["jump"][~checked] = 0.0
        reports.append(LeafReport(path, a, *(fields[n].reshape(a.shape) for n in ("numeric", "error", "tolerance", "h")),
                                  kink.reshape(a.shape), checked.reshape(a.shape), jump=fields["jump"].reshape(a.shape),
                                  rtol=rtols[k]))
    return reports, probes


def _sharpen(dirs: _Directions, d: np.ndarray, p: Probe) -> tuple[np.ndarray, Probe]:
    """A longer step where rounding swamps the derivative along d (as full mode enlarges an element's step), at
    most 1000× and a tenth of each element's scale; kept when it is smooth and more precise."""
    mag = max(abs(p.analytic), abs(p.numeric)) if math.isfinite(p.numeric) else 0.0
    if not (p.smooth and math.isfinite(p.error) and p.error > 0.01 * mag and mag > 0):
        return d, p
    moved = d != 0
    room = float(np.min(0.1 * dirs.scale[moved] / np.abs(d[moved]))) if moved.any() else 0.0
    factor = min(1000.0, p.error / (0.003 * mag), room)
    if factor <= 2:
        return d, p
    longer = dirs.probe(d * factor)
    if longer.smooth and math.isfinite(longer.error) and longer.error / factor < p.error:
        return d * factor, longer
    return d, p


def _explain(dirs: _Directions, d: np.ndarray, judge: Callable[[int], None], verdicts: dict[int, _Verdict],
             most: int = 64) -> Probe:
    """Probe along d; while it fails, find an element behind it, judge that element, and probe without it."""
    first = dirs.probe(d)
    d, first = _sharpen(dirs, d, first)
    if first.ok:
        return first
    # A kink on the path spoils the coarse differences. Steps 8x and 64x smaller that both pass, agree with each
    # other, disagree with the first and are nearly as sensitive (tolerance, in units of the step, at most twice
    # the first one's) settle it: a match at one smaller step alone can be a coincidence of kinks.
    fine, finer = dirs.probe(d / 8), dirs.probe(d / 64)
    sensitive = 64 * finer.tolerance <= 2 * first.tolerance and 8 * fine.tolerance <= 2 * first.tolerance
    converged = abs(8 * fine.numeric - 64 * finer.numeric) <= 8 * fine.error + 64 * finer.error
    if (fine.ok and finer.ok and sensitive and converged
            and abs(first.numeric - 8 * fine.numeric) > first.error + 8 * fine.error):
        return replace(first, note=f"kink on the path: steps 8x and 64x smaller give {8 * fine.numeric:.6g}")
    rest, found, p = d.copy(), [], first
    while not p.ok and len(found) < most and rest.any():
        i = dirs.narrow(rest)
        if i not in verdicts:
            judge(i)
        found.append(i)
        rest[i] = 0.0
        if not rest.any():
            break
        p = dirs.probe(rest)
    named = ", ".join(str(i) for i in found)
    if p.ok or not rest.any():
        return replace(first, note=f"explained by flat element(s) {named}, judged one by one", explained=True)
    return replace(first, note=f"still failing after judging flat element(s) {named}: a wrong element the halving "
                              "could not isolate, or kinks in more elements than fast mode follows; run mode='full'")


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
                       rtols: list[float]) -> None:
    for path, a, b, rtol in zip(paths, first, second, rtols):
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        same = (a64 == b64) | (np.isnan(a64) & np.isnan(b64))
        differ = ~same & ~(np.abs(a64 - b64) <= rtol * np.maximum(np.abs(a64), np.abs(b64)))
        if differ.any():
            i = tuple(int(k) for k in np.argwhere(differ)[0])
            problems.append(f"grad(x) is not repeatable: {path}[{', '.join(map(str, i))}] was {float(a64[i]):.6g} on "
                            f"the first call and {float(b64[i]):.6g} on the second at the same x; reset gradient "
                            "buffers (zero them) at the start of each call, and keep grad deterministic")
            return


# -- argument checks -----------------------------------------------------------------------------------------------
def _scalar(value: Any, name: str) -> float:
    if isinstance(value, np.ndarray):
        if value.ndim != 0 and value.size != 1:
            raise InvalidArgument(f"{name}(x) returned an array of shape {value.shape}; check_gradient needs a scalar: "
                                  "return the loss itself, e.g. its .sum() or .mean()")
        if value.ndim != 0:
            raise InvalidArgument(f"{name}(x) returned an array of shape {value.shape}; check_gradient needs a scalar: "
                                  "return value.item() or value.reshape(()) ")
        value = value[()]
    if isinstance(value, (complex, np.complexfloating)):
        raise InvalidType(f"{name}(x) returned a complex value {value!r}; it must be real")
    if not is_real(value):
        raise InvalidType(f"{name}(x) returned a {type(value).__name__}; it must return a real scalar (a float)")
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _batched(value: Any, K: int, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except ValueError as exc:
        raise InvalidArgument(f"{name} was called with a batch of {K} points (vectorized=True) and returned a ragged "
                              f"value ({exc}); it must return one real value per point, shape ({K},)") from None
    if arr.shape != (K,) or not np.issubdtype(arr.dtype, np.floating):
        raise InvalidArgument(f"{name} was called with a batch of {K} points (vectorized=True) and returned "
                              f"{arr.dtype} of shape {arr.shape}; it must return one real value per point, shape "
                              f"({K},)")
    return arr.astype(np.float64)


def _check_step_resolves(step: float, paths: list[str], pristine: list[np.ndarray]) -> None:
    """A fixed step that rounds away at some element would differentiate nothing there."""
    for path, orig in zip(paths, pristine):
        flat = orig.reshape(-1).astype(np.float64)
        moved = (flat + step).astype(orig.dtype).astype(np.float64) - flat
        lost = np.flatnonzero(~(moved > 0))
        if lost.size:
            i = int(lost[0])
            raise InvalidArgument(f"step={step!r} is lost to rounding at {path}, flat element {i} = {flat[i]!r} "
                                  f"({orig.dtype}): x + step == x there; pass a larger step, or step=None to derive "
                                  "one per element")
