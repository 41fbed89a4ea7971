"""The adversary: functions built from poles, jumps, kinks, flat stretches, quantisers, float32 arithmetic and
smooth maps placed at random distances from x, with errors of random size planted in the gradient.

It looks for counterexamples to the judgement's invariant, not for agreement with expected verdicts:

- an element whose analytic value lies further from every valid derivative than its reported tolerance fails or is
  inconclusive (a pass is a proof within the tolerance it reports);
- every correct element of a smooth, well-conditioned function passes;
- an element passes only on an error bound within the resolution (a pass never rests on a coarse bound).

The ``thorough`` profile runs each property at 2,000 examples (``HYPOTHESIS_PROFILE=thorough``).
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given

from gradcheck import check_gradient

from .adversary import SMOOTH, problems


def _verdicts(problem):
    report = check_gradient(problem.func, problem.grad, problem.x)
    leaf = report.leaves[0]
    return report, leaf, leaf.failed | leaf.inconclusive


@given(problems())
def test_no_element_further_than_its_tolerance_from_every_valid_derivative_passes(problem):
    report, leaf, caught = _verdicts(problem)
    beyond = problem.error() > leaf.tolerance
    assert not (beyond & ~caught).any(), f"{problem!r}\nerrors {problem.error()}\n{report}"


@given(problems(plant=False))
def test_a_correct_gradient_never_fails(problem):
    report, leaf, _ = _verdicts(problem)
    assert not leaf.failed.any(), f"{problem!r}\n{report}"


@given(problems(kinds=SMOOTH, plant=False))
def test_every_correct_element_of_a_smooth_function_passes(problem):
    # well-conditioned: every derivative, times the element's scale, at least a millionth of f and of the others
    reach = np.abs(problem.truth()[:, 0]) * np.maximum(np.abs(problem.x), 1.0)
    assume(reach.min() >= 1e-6 * max(abs(problem.func(problem.x)), reach.max()))
    report, _, _ = _verdicts(problem)
    assert report.ok, f"{problem!r}\n{report}"


@given(problems())
def test_a_pass_rests_on_an_error_within_the_resolution(problem):
    report, leaf, caught = _verdicts(problem)
    a = np.abs(leaf.analytic)
    passed = ~caught & ~leaf.kink & (a > 0)
    assert (leaf.error[passed] <= 0.05 * a[passed] + report.atol).all(), f"{problem!r}\n{report}"
