"""The checker's engine: private. The public checkers in :mod:`gradcheck.check`, :mod:`gradcheck.jacobian` and
:mod:`gradcheck.network_check` are its only callers; nothing here is part of the API.

The error model, written once for every checker, follows.

**Central differences.** For every element xᵢ of every leaf, with a step h = eps^(1/3)·scaleᵢ (eps of the leaf's
dtype, scaleᵢ = max(abs(xᵢ), RMS of the leaf), or 1 for an all-zero leaf), four evaluations give two central
differences::

    D(h)    = (f(x + h eᵢ) − f(x − h eᵢ)) / 2h                   error c·h² + rounding
    numeric = D(h) + (D(h) − D(2h)) / 3                          Richardson: the h² term cancels
    error   = abs(D(h) − D(2h)) + 1.5·noise / h                    truncation plus the worst rounding

The truncation term bounds the extrapolated value's error whether D's error shrinks like h² (smooth f: it is then
three times D(h)'s own error) or only like h (f″ jumps at x, as at a ReLU unit sitting exactly at 0, where
Richardson's h² assumption fails and the extrapolated value keeps 2/3 of abs(D(h) − D(2h))).

**Noise.** ``noise`` bounds the rounding error of one evaluation of f. It is measured, not assumed: for each dtype of
x, f is evaluated at nine points 64 ulps apart along a fixed direction that moves the leaves of that dtype (Moré &
Wild's ECnoise), and the 3rd and 4th differences of those values, in which the smooth part of f has vanished but its
rounding has not, give its standard deviation σ. A ray that crosses a jump or a kink (one difference far larger than
the others) is measured again on the other side of x. noise = max(4σ, eps·abs(f(x))) with eps that of the coarser of
func's result and the leaf's dtype, and for each element at least eps times the largest abs(f) in its stencil.

**Larger steps.** Where rounding swamps a small derivative (error over 1% of it, mostly the noise/h term), the step
grows towards the one that balances truncation and rounding, up to a tenth of the element's scale; the larger-step
estimate is kept only if it is more precise (counting an allowance of 1.5·√70·noise/4h for a kink too small to
detect) and agrees with the first.

**The rule.** An element passes iff ``|analytic − numeric| ≤ atol + rtol·max(|analytic|, |numeric|) + error``. There
is no absolute floor by default (atol = 0), so a leaf whose gradients are 1e-12 is judged against its own error
estimate, and rtol defaults to √eps of the dtype: the accuracy a correctly computed analytic gradient keeps.

**Kinks.** An element that fails, or whose error estimate is a quarter of its size or more, is differentiated again:
one-sidedly from the right (x, x + h, x + 2h, x + 4h) and from the left, and centrally and one-sidedly with a step 8×
smaller, each with the same kind of error estimate. If any two of the central and one-sided derivatives disagree
beyond their errors, or a fourth difference at spacing h or 2h exceeds 1.5·√70·noise (six standard deviations of
rounding), f is not smooth within the stencil (a kink or a branch). The element is then reported as a kink, and
passes iff the analytic value matches one of the new derivatives whose own error is small, or lies between the
one-sided ones (a subgradient); otherwise the most precise new derivative replaces the first and the element fails.
If all agree, f is smooth there and the first verdict stands, with the error widened by 1.5·√70·noise/4h (what a kink
too small to detect could shift it by), so a kink never hides a wrong gradient of a smooth function, and a wrong
gradient next to a kink still fails unless it equals a one-sided slope.

**Jumps.** A non-smooth element's steepest interval is bisected down to adjacent floating-point numbers while f
changes across it by more than its noise and a millionth of abs(f): a continuous f changes over an interval of width
w by at most its slope times w, a jump keeps its size. A jump at x fails the element (no derivative exists there); a
jump beside x is stepped around with a stencil that stops short of it, its size counted as noise.

**Domain boundaries.** Where f is not finite within the stencil, or func raises an arithmetic error there, the step
is divided by 8, up to twelve times, until it is; failing that, the derivative on the side where f is finite is the
numeric value.

**Limits.** A float64 func that rounds to float32 inside is rounded more coarsely than a 64-ulp ray shows; where that
rounding is as coarse as the step, a correct gradient can fail (pass a larger ``step``), but an element the check
cannot resolve shows it in its tolerance rather than passing silently."""

__all__: list[str] = []
