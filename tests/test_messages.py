"""Sentences a user reads: each names what happened, never a misleading cause."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck import GradcheckError, check_gradient


def cube(x):
    return float(np.sum(x**3))


def cube_grad(x):
    return 3 * x**2


def test_an_inf_derivative_on_both_calls_is_a_failure_not_a_repeatability_problem():
    report = check_gradient(cube, lambda x: np.full_like(x, np.inf), np.ones(3))
    assert not report.ok and not report.problems
    assert "analytic inf is not finite" in str(report)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_fast_mode_names_the_non_finite_entry(bad):
    def grad(x):
        g = cube_grad(x)
        g[7] = bad
        return g

    report = check_gradient(cube, grad, np.linspace(-1, 1, 20), mode="fast", rng=np.random.default_rng(0))
    assert not report.ok and report.leaves[0].worst == (7,) and report.leaves[0].failed.sum() == 1
    assert "1 of 20 entries differ" in str(report)


def test_a_passing_fast_check_reports_the_margin_of_its_directions():
    report = check_gradient(cube, cube_grad, np.linspace(-1, 1, 20), mode="fast", rng=np.random.default_rng(0))
    assert report.ok and 0 < report.margin <= 1
    assert report.margin == max(p.ratio for p in report.probes)


def test_a_step_lost_to_rounding_is_refused_by_name():
    with pytest.raises(GradcheckError, match=r"step=1e-20 is lost to rounding at x, flat element 0"):
        check_gradient(cube, cube_grad, np.ones(2), step=1e-20)


def test_dicts_with_the_same_keys_in_another_order_match():
    x = {"a": np.ones(2), "b": np.zeros(3)}
    report = check_gradient(
        lambda p: float(np.sum(p["a"] ** 2) + np.sum(p["b"])), lambda p: {"b": np.ones(3), "a": 2 * p["a"]}, x
    )
    assert report.ok


def test_a_self_referencing_list_is_refused_by_name():
    loop = [np.zeros(2)]
    loop.append(loop)
    with pytest.raises(GradcheckError, match=r"x\[1\] contains itself"):
        check_gradient(lambda p: 0.0, lambda p: p, loop)


def test_a_masked_gradient_is_refused_rather_than_hiding_a_wrong_value():
    with pytest.raises(GradcheckError, match="masked array with 1 masked entries"):
        check_gradient(cube, lambda x: np.ma.masked_array(np.zeros_like(x), mask=[True, False]), np.ones(2))


def test_a_function_that_needs_float32_for_its_value_is_judged_in_float32():
    rng = np.random.default_rng(3)
    report = check_gradient(lambda x: np.float32(np.sum(x**2)), lambda x: 2 * x, rng.standard_normal(5))
    assert report.ok, str(report)
    wrong = check_gradient(lambda x: np.float32(np.sum(x**2)), lambda x: 2 * x * 1.01, rng.standard_normal(5))
    assert not wrong.ok


def test_an_x_with_no_elements_is_refused_rather_than_passed():
    with pytest.raises(GradcheckError, match="there is no element to check"):
        check_gradient(cube, cube_grad, {"a": np.zeros(0), "b": np.zeros((2, 0))})


def test_asking_a_report_for_a_leaf_it_lacks_names_its_leaves_and_the_likeliest_one():
    from gradcheck.errors import UnknownLeaf

    report = check_gradient(lambda p: float(np.sum(p["W"] ** 2)), lambda p: {"W": 2 * p["W"]}, {"W": np.ones(2)})
    assert report.leaf("x['W']").ok
    with pytest.raises(UnknownLeaf) as caught:
        report.leaf("W")
    assert isinstance(caught.value, KeyError)
    assert str(caught.value) == "report.leaf('W'): no such leaf; its leaves are [\"x['W']\"]; did you mean \"x['W']\"?"
