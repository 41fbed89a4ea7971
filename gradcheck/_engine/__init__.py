"""The checker's engine: private. The public checkers, :func:`gradcheck.check_gradient`,
:func:`gradcheck.check_jacobian` and :func:`gradcheck.check_network`, are its only callers; nothing here is part of
the API.

The error model, written once for every checker, follows.

**The invariant.** A pass is a proof within the tolerance it reports: an element passes only on a *certificate*, a
stencil on which f is shown smooth, whose error bound is within the resolution. Evidence that f is not smooth near
x (a value that grows across the stencil faster than a Taylor series allows, a jump, a kink, a flat stretch where
the analytic value predicts a change, rounding coarser than measured) can make an element fail, send it to a
smaller stencil, or leave it *inconclusive*; it never widens that element's tolerance. The noise bounds rounding
only: what looks like a singularity is never counted as noise.

**Steps.** Each element gets its own step, h = eps^(1/3)·abs(xᵢ) (eps of its dtype; 1 in place of abs(xᵢ) where xᵢ
is 0 or too small for eps·abs(xᵢ) to be a normal number), rounded so that x + h is exact, or the fixed ``step``.
Never the leaf's size: one outlier entry does not set its neighbours' steps.

**The first stencil.** f at x ± h, ± 2h, ± 4h and ± φh (φ = 1.3247…, the plastic number) gives central
differences D(h), D(2h), D(4h), D(φh) and two Richardson extrapolations R(h) = D(h) + (D(h) − D(2h))/3 and
R(2h). The element's ``numeric`` is R(h); its ``error`` is truncation, abs(D(h) − D(2h)) or, in the Taylor regime,
the smaller abs(R(h) − R(2h)), plus the rounding 1.5·noise/h, plus what a kink too small to show could shift it
by (1.5·√70·noise/4h). f is shown smooth on it (its *Taylor regime*) when
D(2h) − D(4h) ≈ 4·(D(h) − D(2h)) (the h² term), the fourth difference at h is rounding or grows 16-fold to 2h
(the h⁴ term), and D(φh) lies where the series through D(h) and D(2h) puts it (an irrational step breaks the
aliasing of a staircase sampled on a regular grid), each within the rounding.

**Decisions.** The element's threshold is ``atol + rtol·max(|analytic|, |numeric|) + error`` and its reported
``tolerance`` that plus ``error``: a pass puts the analytic value within ``tolerance`` of the true derivative.
On a stencil in its Taylor regime, an element with ``|analytic − numeric|`` above the threshold fails there (the
error bounds the estimate). One within it passes only if the error is within ``resolution`` (5%) of
abs(analytic) plus ``atol`` (for an analytic value of exactly 0, within the rounding on that stencil); otherwise
it is inconclusive (*coarse*). A failure on the first stencil is confirmed on the ladder before it stands.

**Larger steps.** Where rounding swamps a small derivative (error over 1% of it, mostly rounding), the step grows
towards the one that balances truncation and rounding, never beyond max(abs(xᵢ), 1)/10, and is kept only where
the larger stencil is in its Taylor regime, its one-sided derivatives agree, and it is more precise; a step that
fails is bisected in log-space with the last good one.

**The ladder.** An element the first stencil cannot decide (not smooth there, failing, or coarse from
truncation) is evaluated on stencils h/8, h/64, … h/8⁶, after its own rounding is measured along it. The coarsest
level in its Taylor regime that decides, and that the next level down does not contradict, decides. A level on
which f never moved proves a zero derivative only if f did not move on both sides on a coarser one (a staircase).
Failing that, one-sided derivatives (quadratic fits through x and points on one side, checked against the same on
points half as far, each with its own error) certify: two stable sides that differ are a **kink** at x, and the
analytic value passes if it is either or between them (a subgradient); two that agree are a smooth f; a stable
side alone vouches for an analytic value that matches it (unless the other side jumps), and a side where f is not
finite leaves the other as the derivative (a **domain boundary**). Failing that, a **jump** at x (bisected down to
adjacent floats while f changes by more than its noise and a millionth of abs(f)) fails the element; anything else
is inconclusive (*no smooth stencil*).

**Noise.** ``noise`` bounds the rounding of one evaluation of f. It is measured, not assumed, per dtype of x on
rays along a fixed direction: nine points 64 ulps apart (widened 8-fold while f keeps its value at most of them:
a quantised f), and nine points a sixteenth of a step apart (rounding that grows away from x, such as a float32
argument inside a float64 func). The 3rd and 4th differences of those values give its standard deviation σ
(Moré & Wild's ECnoise); a ray counts only where they look like rounding (dense, sign-changing, alike along the
ray: a pole neared, a kink crossed or a steep curve does not). noise = max(4σ, eps·abs(f(x))) with eps that of the
coarser of func's result and the leaf's dtype, and for each element at least eps times the largest abs(f) on its
stencil.

**Flat.** Where f kept exactly its value on the whole first stencil while the analytic value predicts a change
above the noise, the element's rounding is measured along it; if f still does not move, the element is
inconclusive (*flat*): its analytic value is wrong (a mask forgotten on a flat stretch) or f is quantised more
coarsely still.

**Limits.** A resolution finer than ``resolution`` cannot be had where rounding swamps the derivative at every
step up to the cap (a derivative far below f's rounding per unit step, float32 and float16 losses): such elements
are inconclusive, and ``atol`` says below which size a difference does not matter. Several kinks within one step,
whose effects cancel in every test at the rounding of the function, can still shift an estimate past its error:
in float32, a correct element can then fail narrowly."""

__all__: list[str] = []
