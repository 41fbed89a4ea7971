"""The adversary: functions built from poles, jumps, kinks, flat stretches, quantisers, float32 arithmetic and
smooth maps placed at random distances from x, with errors of random size planted in the gradient.

It looks for counterexamples to the judgement's invariant, not for agreement with expected verdicts:

- an element whose analytic value lies further from every valid derivative than its reported tolerance fails or is
  inconclusive (a pass is a proof within the tolerance it reports);
- every correct element of a smooth, well-conditioned function passes;
- an element passes only on an error bound within the resolution (a pass never rests on a coarse bound).

The first, second and last hold with the complex step too: abs, comparisons, rounding and a float32 cast are then
non-analytic terms that the complex step alone would miss.

The ``thorough`` profile runs each property at 2,000 examples (``HYPOTHESIS_PROFILE=thorough``).
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume, example, given
from hypothesis import strategies as st

from gradcheck import check_gradient

from .adversary import SMOOTH, Piece, Problem, problems


def _verdicts(problem, method="central"):
    func = problem.complex_func if method == "complex" else problem.func
    report = check_gradient(func, problem.grad, problem.x, method=method)
    leaf = report.leaves[0]
    return report, leaf, leaf.failed | leaf.inconclusive


@given(problems(), st.sampled_from(["central", "complex"]))
def test_no_element_further_than_its_tolerance_from_every_valid_derivative_passes(problem, method):
    report, leaf, caught = _verdicts(problem, method)
    beyond = problem.error() > leaf.tolerance
    assert not (beyond & ~caught).any(), f"{problem!r}\nerrors {problem.error()}\n{report}"


# counterexamples the adversary found, kept: a float32 value two steps away whose rounding grain, sparse on a fine
# ray, looked like a kink; a kink of abs 0.3 steps away, which the complex step misses entirely
FLOAT32_GRAIN = Problem(
    [Piece("sin", -1.0, -1.0, 1.0), Piece("float32", -1.5175511250298084, -1.0000128066294016, 1.0)],
    np.array([-1.0, -1.0]),
    0.0,
    np.zeros(2),
)
NEAR_KINK = Problem(
    [Piece("pole", -0.0006055454452393343, -0.9999969722727738, 1.0), Piece("kink", -0.01, -1.0000018166363358, 1.0)],
    np.array([-1.0, -1.0]),
    0.0,
    np.zeros(2),
)


@given(problems(plant=False), st.sampled_from(["central", "complex"]))
@example(FLOAT32_GRAIN, "central")
@example(NEAR_KINK, "complex")
def test_a_correct_gradient_never_fails(problem, method):
    report, leaf, _ = _verdicts(problem, method)
    assert not leaf.failed.any(), f"{problem!r}\n{report}"


@given(problems(kinds=SMOOTH, plant=False))
def test_every_correct_element_of_a_smooth_function_passes(problem):
    # well-conditioned: every derivative, times the element's scale, at least a millionth of f and of the others
    reach = np.abs(problem.truth()[:, 0]) * np.maximum(np.abs(problem.x), 1.0)
    assume(reach.min() >= 1e-6 * max(abs(problem.func(problem.x)), reach.max()))
    report, _, _ = _verdicts(problem)
    assert report.ok, f"{problem!r}\n{report}"


@given(problems(), st.sampled_from(["central", "complex"]))
def test_a_pass_rests_on_an_error_within_the_resolution(problem, method):
    report, leaf, caught = _verdicts(problem, method)
    a = np.abs(leaf.analytic)
    passed = ~caught & ~leaf.kink & (a > 0)
    assert (leaf.error[passed] <= 0.05 * a[passed] + report.atol).all(), f"{problem!r}\n{report}"
