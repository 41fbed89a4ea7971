"""The checker: it passes correct gradients, fails planted bugs, says which element and by how much, and never
passes a nan."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck import GradcheckError, GradientMismatch
from gradcheck.check import assert_gradient, check_gradient

from .helpers import COMBINATIONS, assert_correct_verdict, combo_id, problem

RNG = np.random.default_rng


def cubic(x):
    return float(np.sum(x**3))


def cubic_grad(x):
    return 3 * x**2


def logsumexp(x):
    m = x.max()
    return float(m + np.log(np.exp(x - m).sum()))


def logsumexp_grad(x):
    e = np.exp(x - x.max())
    return e / e.sum()


A = np.array([[2.0, 0.5, 0.0], [0.5, 3.0, -1.0], [0.0, -1.0, 4.0]])


def quadratic_form(x):
    return float(x @ A @ x / 2)


def quadratic_form_grad(x):
    return A.astype(x.dtype) @ x


def tree_fn(p):
    return float(np.sum(np.sin(p["W"]) * p["b"][0]) + np.sum(p["b"][1][0] ** 2) + np.prod(p["b"][1][1]))


def tree_grad(p):
    W, (b0, (c, d)) = p["W"], p["b"]
    return {"W": np.cos(W) * b0, "b": [np.sum(np.sin(W), axis=0), (2 * c, np.prod(d) / d)]}


def tree_point(dtype=np.float64):
    rng = RNG(3)
    return {
        "W": rng.standard_normal((2, 3)).astype(dtype),
        "b": [
            rng.standard_normal(3).astype(dtype),
            (rng.standard_normal(2).astype(dtype), rng.uniform(0.5, 2, 3).astype(dtype)),
        ],
    }


CORRECT = [
    ("cubic", cubic, cubic_grad, lambda dt: RNG(0).standard_normal(20).astype(dt)),
    ("logsumexp", logsumexp, logsumexp_grad, lambda dt: (RNG(1).standard_normal(8) * 10).astype(dt)),
    ("quadratic form", quadratic_form, quadratic_form_grad, lambda dt: np.array([1.0, -2.0, 0.5], dtype=dt)),
    ("pytree", tree_fn, tree_grad, tree_point),
    (
        "tiny scale",
        lambda x: float(np.sum(x**2)) * 1e-20,
        lambda x: 2e-20 * x,
        lambda dt: (RNG(4).standard_normal(6) * 1e-6).astype(dt),
    ),
    (
        "huge scale",
        lambda x: float(np.sum(np.cos(x / 1e6))) * 1e3,
        lambda x: -np.sin(x / 1e6) * 1e-3,
        lambda dt: (RNG(5).standard_normal(6) * 1e6).astype(dt),
    ),
    ("zeros", cubic, cubic_grad, lambda dt: np.zeros(4, dtype=dt)),
    ("0-d array", lambda x: float(np.exp(x)), lambda x: np.exp(x), lambda dt: np.array(0.3, dtype=dt)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, func, grad, point", CORRECT, ids=[c[0] for c in CORRECT])
def test_correct_closed_form_gradients_pass(name, func, grad, point, dtype):
    report = check_gradient(func, grad, point(dtype))
    assert_correct_verdict(report)
    assert report.margin <= 1


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("combo", COMBINATIONS, ids=combo_id)
def test_reference_network_gradients_pass(combo, dtype):
    net, X, Y = problem(*combo, sizes=(3, 4, 3, 2), l2=0.1, dtype=dtype, seed=11)
    loss, grad = net.as_functions(X, Y)
    report = check_gradient(loss, grad, net.params)
    # in float32 a ReLU kink of another example often lies within every step that rounding allows
    assert_correct_verdict(report, kinks_within_reach=dtype == "float32" and "relu" in combo[0])


def scaled(grad, factor):
    return lambda x: grad(x) * factor


def test_relative_error_of_1e_6_everywhere_fails_in_float64():
    x = RNG(0).standard_normal(50)
    report = check_gradient(cubic, scaled(cubic_grad, 1 + 1e-6), x)
    assert not report.ok
    assert report.leaves[0].failed.mean() > 0.5


def test_a_single_wrong_entry_is_named_with_its_values():
    x = RNG(0).standard_normal((4, 5))
    g = cubic_grad(x)
    i = (2, 3)

    def bad(x):
        out = cubic_grad(x)
        out[i] += 1e-3 * np.abs(g).max()
        return out

    report = check_gradient(cubic, bad, x)
    leaf = report.leaves[0]
    assert not report.ok and leaf.failed.sum() == 1 and leaf.worst == i
    text = str(report)
    assert "d cubic / d x: 1 of 20 entries differ; worst at (2, 3)" in text
    assert f"analytic {bad(x)[i]:.6g}" in text and f"numeric {g[i]:.6g}" in text


def test_a_wrong_leaf_in_a_pytree_is_named_by_its_path():
    def bad(p):
        out = tree_grad(p)
        out["b"][1][0][1] *= -1
        return out

    report = check_gradient(tree_fn, bad, tree_point())
    assert [leaf.path for leaf in report.failures] == ["x['b'][1][0]"]
    assert "d tree_fn / d x['b'][1][0]: 1 of 2 entries differ; worst at (1,)" in str(report)


def without_hidden_sigma_prime(net, X, Y):
    """A mutant backprop: BP2 with σ′ dropped in every hidden layer."""

    def grad(params):
        n = net.replace(**params)
        bp = n.backprop(X, Y)
        delta = bp.deltas[-1]
        grad_w, grad_b = list(bp.grad_w), list(bp.grad_b)
        for l in range(n.num_layers - 2, -1, -1):
            delta = delta @ n.weights[l + 1]
            grad_w[l] = delta.T @ bp.activations[l] / len(X)
            grad_b[l] = delta.mean(axis=0)
        return {"weights": grad_w, "biases": grad_b}

    return grad


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "softplus"])
def test_hidden_deltas_without_sigma_prime_fail(activation, dtype):
    net, X, Y = problem(activation, "sigmoid", "cross_entropy", sizes=(3, 5, 4, 2), dtype=dtype)
    loss, _ = net.as_functions(X, Y)
    report = check_gradient(loss, without_hidden_sigma_prime(net, X, Y), net.params)
    assert not report.ok
    assert {leaf.path for leaf in report.failures} >= {"x['weights'][0]", "x['weights'][1]"}


def test_assert_gradient_raises_an_assertion_error_carrying_the_report():
    x = RNG(0).standard_normal(5)
    with pytest.raises(GradientMismatch) as info:
        assert_gradient(cubic, scaled(cubic_grad, 1.01), x)
    assert isinstance(info.value, AssertionError) and isinstance(info.value, GradcheckError)
    assert not info.value.report.ok
    assert "gradient check FAILED" in str(info.value)
    assert assert_gradient(cubic, cubic_grad, x).ok


def test_the_report_states_the_rule_tolerances_and_a_table():
    text = str(check_gradient(tree_fn, tree_grad, tree_point()))
    assert text.startswith("gradient check passed: 0 of 14 entries differ in 0 of 4 leaves")
    for fragment in (
        "rule: |analytic − numeric| ≤ atol + rtol·max(|analytic|, |numeric|) + error",
        "rtol 1.49e-08, atol 0",
        "leaf",
        "max rel err",
        "resolution",
        "x['b'][1][1]",
    ):
        assert fragment in text


def test_float32_report_says_what_it_could_detect():
    report = check_gradient(cubic, cubic_grad, RNG(0).standard_normal(10).astype(np.float32))
    assert report.rtol == pytest.approx(np.sqrt(np.finfo(np.float32).eps))
    # the coarsest conclusive element: its error within 5% of |analytic|, its tolerance twice that (plus rtol)
    assert 1e-6 < report.leaves[0].resolution <= 2 * 0.05 + 2 * report.rtol


# -- nan and inf never pass ----------------------------------------------------------------------------------------
def test_nan_in_the_gradient_fails_and_is_named():
    def bad(x):
        out = cubic_grad(x)
        out[1] = np.nan
        return out

    report = check_gradient(cubic, bad, np.ones(3))
    assert not report.ok and report.leaves[0].worst == (1,)
    assert "analytic nan is not finite" in str(report)


def test_inf_in_the_gradient_fails():
    report = check_gradient(cubic, lambda x: np.full_like(x, np.inf), np.ones(3))
    assert not report.ok and report.leaves[0].failed.all()


def log_sum(x):
    with np.errstate(invalid="ignore"):  # the tests raise on floating-point errors; these are the point here
        return float(np.sum(np.log(x)))


def sqrt_sum(x):
    with np.errstate(invalid="ignore"):
        return float(np.sum(np.sqrt(x)))


def test_func_not_finite_at_x_is_an_error():
    with pytest.raises(ValueError, match=r"log_sum\(x\) = nan at the point given"):
        check_gradient(log_sum, lambda x: 1 / x, np.array([1.0, -1.0]))


def test_func_not_finite_near_x_on_both_sides_fails():
    # f is nan everywhere but at x itself: no derivative can be computed, and that must not pass.
    def spiky(x):
        return 0.0 if np.all(x == 1.0) else float("nan")

    report = check_gradient(spiky, lambda x: np.zeros_like(x), np.ones(2))
    assert not report.ok
    assert report.leaves[0].inconclusive.all() and not report.leaves[0].failed.any()
    assert "inconclusive (no smooth stencil)" in str(report)


def test_a_domain_boundary_uses_the_finite_side():
    # sqrt near 0: x − 2h is negative for the smallest element, so only the right side is defined.
    x = np.array([1e-6, 1.0, 4.0])
    assert check_gradient(sqrt_sum, lambda x: 0.5 / np.sqrt(x), x).ok


# -- invariants ----------------------------------------------------------------------------------------------------
def test_x_is_never_mutated_by_the_check():
    x = tree_point()
    before = [x["W"].copy(), x["b"][0].copy()]
    check_gradient(tree_fn, tree_grad, x)
    assert np.array_equal(x["W"], before[0]) and np.array_equal(x["b"][0], before[1])


def test_gradient_buffers_that_accumulate_across_calls_fail():
    buffer = np.zeros(4)

    def leaky_grad(x):
        buffer[...] += cubic_grad(x)  # never reset: the second call returns twice the gradient
        return buffer

    report = check_gradient(cubic, leaky_grad, RNG(0).standard_normal(4))
    assert not report.ok
    assert any("grad(x) is not repeatable" in p and "reset gradient buffers" in p for p in report.problems)


def test_a_gradient_that_steps_the_weights_in_place_fails():
    def stepping_grad(x):
        g = cubic_grad(x)
        x -= 0.1 * g  # an optimiser step hidden inside the gradient
        return g

    report = check_gradient(cubic, stepping_grad, RNG(0).standard_normal(4))
    assert not report.ok
    assert any("grad(x) changed x in place" in p for p in report.problems)


def test_a_func_that_mutates_x_fails():
    def mutating(x):
        x[0] += 1.0
        return cubic(x)

    report = check_gradient(mutating, cubic_grad, np.ones(3))
    assert not report.ok
    assert any("mutating(x) changed x in place" in p for p in report.problems)


# -- kinks ---------------------------------------------------------------------------------------------------------
def relu_sum(x):
    return float(np.sum(np.maximum(x, 0) * np.arange(1, x.size + 1)))


def test_a_subgradient_at_a_kink_passes_and_is_reported_as_a_kink():
    x = np.array([0.0, 1.0, -1.0])
    report = check_gradient(relu_sum, lambda x: (x > 0) * np.arange(1.0, 4.0), x)
    assert report.ok, str(report)
    assert report.leaves[0].kink.tolist() == [True, False, False]


def test_a_value_outside_the_one_sided_slopes_at_a_kink_fails():
    x = np.array([0.0, 1.0])
    report = check_gradient(lambda x: float(np.sum(np.abs(x))), lambda x: np.array([2.0, 1.0]), x)
    assert not report.ok and report.leaves[0].worst == (0,)


def test_a_wrong_gradient_next_to_a_kink_fails():
    # x[0] sits 1.5 steps from the kink of relu: the stencil straddles it, yet the slope there is 1, not 0.5.
    h = np.finfo(np.float64).eps ** (1 / 3)
    x = np.array([1.5 * h, 1.0])
    report = check_gradient(relu_sum, lambda x: np.array([0.5, 2.0]), x)
    assert not report.ok and report.leaves[0].failed.tolist() == [True, False]


# -- bad arguments -------------------------------------------------------------------------------------------------
BAD = [
    ((cubic, cubic_grad, np.arange(3)), {}, TypeError, "x has dtype int64"),
    ((cubic, cubic_grad, [1.0, 2.0]), {}, TypeError, "x[0] is a float"),
    ((cubic, cubic_grad, {}), {}, ValueError, "has no arrays"),
    ((cubic, cubic_grad, np.ones(3, dtype=complex)), {}, TypeError, "real parameters"),
    ((lambda x: x**2, cubic_grad, np.ones(3)), {}, ValueError, "returned an array of shape (3,)"),
    ((lambda x: "1", cubic_grad, np.ones(3)), {}, TypeError, "must return a real scalar"),
    ((lambda x: 1j, cubic_grad, np.ones(3)), {}, TypeError, "complex"),
    ((cubic, lambda x: x[:2], np.ones(3)), {}, ValueError, "grad(x) has shape (2,) but x has shape (3,)"),
    ((cubic, lambda x: [x], np.ones(3)), {}, ValueError, "structure of x"),
    ((cubic, lambda x: x.astype(np.float32), np.ones(3)), {}, TypeError, "dtype float32 but x has dtype float64"),
    ((cubic, lambda x: list(x), np.ones(3)), {}, ValueError, "structure of x"),
    ((cubic, cubic_grad, np.ones(3)), {"rtol": -1.0}, ValueError, "rtol=-1.0"),
    ((cubic, cubic_grad, np.ones(3)), {"atol": float("nan")}, ValueError, "atol=nan"),
    ((cubic, cubic_grad, np.ones(3)), {"step": 0.0}, ValueError, "step=0.0"),
    (("f", cubic_grad, np.ones(3)), {}, TypeError, "func must be callable"),
]


@pytest.mark.parametrize("args, kwargs, exc, fragment", BAD, ids=[b[3] for b in BAD])
def test_bad_arguments_get_a_clear_error(args, kwargs, exc, fragment):
    with pytest.raises(exc) as info:
        check_gradient(*args, **kwargs)
    assert isinstance(info.value, GradcheckError)
    assert fragment in str(info.value)


@pytest.mark.parametrize("seed", range(3))
def test_sigma_prime_missing_only_in_the_first_layer_of_a_15_layer_sigmoid_network_fails(seed):
    # True first-layer gradients here are ~1e-12, far below any fixed absolute tolerance; the checker grows the
    # step until the derivative stands out of the rounding noise (those below 1e-14 of f stay inconclusive).
    net, X, Y = problem("sigmoid", "sigmoid", "cross_entropy", sizes=(4,) + (6,) * 14 + (1,), seed=seed)
    loss, grad = net.as_functions(X, Y)

    def first_layer_without_sigma_prime(params):
        n = net.replace(**params)
        bp = n.backprop(X, Y)
        delta = bp.deltas[1] @ n.weights[1]
        out = grad(params)
        out["weights"][0], out["biases"][0] = delta.T @ X / len(X), delta.mean(axis=0)
        return out

    assert np.abs(grad(net.params)["weights"][0]).max() < 1e-9
    assert_correct_verdict(check_gradient(loss, grad, net.params))
    bad = check_gradient(loss, first_layer_without_sigma_prime, net.params)
    assert "x['weights'][0]" in [leaf.path for leaf in bad.failures]
    assert all(leaf.path.endswith("[0]") for leaf in bad.failures)


# -- complex step --------------------------------------------------------------------------------------------------
def test_the_complex_step_tightens_the_error_for_an_analytic_function():
    x = RNG(0).standard_normal(6)
    f, g = lambda x: np.sum(np.sin(x) * np.exp(x)), lambda x: (np.cos(x) + np.sin(x)) * np.exp(x)
    central, report = check_gradient(f, g, x), check_gradient(f, g, x, method="complex")
    assert report.ok and "replaced the central differences on 6 of 6" in report.notes[0]
    assert (report.leaves[0].error < central.leaves[0].error).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [1e-3, 1e-5, 1e-9, 1e-12])
def test_a_non_analytic_term_below_the_central_error_never_fails_a_correct_gradient(dtype, c):
    # c·abs(x) adds nothing to the imaginary part: the complex step alone misses c·sign(x)
    x = RNG(1).uniform(-2, 2, 12).astype(dtype)
    f = lambda x: np.sum(np.sin(x) + c * np.abs(x))  # noqa: E731
    report = check_gradient(f, lambda x: np.cos(x) + c * np.sign(x), x, method="complex", allow_inconclusive=True)
    assert not report.leaves[0].failed.any(), report
    # and with the term forgotten, no element passes further from f′ than its tolerance
    bad = check_gradient(f, np.cos, x, method="complex", allow_inconclusive=True).leaves[0]
    passed = ~bad.failed & ~bad.inconclusive
    assert (c <= bad.tolerance[passed]).all(), bad


def test_the_complex_step_falls_back_with_a_notice_when_func_is_not_analytic():
    x = RNG(0).standard_normal(6)
    report = check_gradient(lambda x: np.sum(np.abs(x) ** 3), lambda x: 3 * np.sign(x) * x**2, x, method="complex")
    assert report.ok and "complex-analytic more tightly" in report.notes[0]
    assert "note: method='complex' fell back" in str(report)


def test_the_complex_step_falls_back_when_func_rejects_complex_input():
    net, X, Y = problem()
    report = check_gradient(*net.as_functions(X, Y), net.params, method="complex")
    assert report.ok and "rejected complex input" in report.notes[0]


def test_the_complex_step_still_fails_a_wrong_gradient():
    x = RNG(0).standard_normal(6)
    report = check_gradient(lambda x: np.sum(x**3), lambda x: 3 * x**2 * (1 + 1e-6), x, method="complex")
    assert not report.ok


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method='forward'"):
        check_gradient(cubic, cubic_grad, np.ones(2), method="forward")


def test_backprop_at_two_stacked_kinks_can_differ_from_the_derivative_and_is_reported():
    # Two leaky-ReLU units in a chain, both exactly at z = 0, the second with a negative weight: the network is
    # differentiable there (slope 0.01·w on both sides) but backprop's convention σ′(0) = 0.01 used twice gives
    # 0.0001·w. The checker reports the mismatch rather than excusing it as a kink.
    from gradcheck import Network

    net = Network(
        [1, 1, 1, 1],
        activation="leaky_relu",
        output="identity",
        cost="quadratic",
        weights=[np.array([[0.0]]), np.array([[-2.0]]), np.array([[1.0]])],
        biases=[np.zeros(1), np.zeros(1), np.zeros(1)],
    )
    X, Y = np.array([[1.0]]), np.array([[1.0]])
    report = check_gradient(*net.as_functions(X, Y), net.params)
    bias = report.leaf("x['biases'][0]")  # biases[0], the first unit's bias
    assert bias.path == "x['biases'][0]" and bias.failed.all()
    assert bias.numeric[0] == pytest.approx(-0.02 * -1.0, rel=1e-6)


# -- vectorized ----------------------------------------------------------------------------------------------------
def batched_tree_fn(p):
    W, (b0, (c, d)) = p["W"], p["b"]
    return np.sum(np.sin(W) * b0[:, None, :], axis=(1, 2)) + np.sum(c**2, axis=1) + np.prod(d, axis=1)


def test_vectorized_func_gives_the_same_verdicts_in_fewer_calls():
    one = check_gradient(tree_fn, tree_grad, tree_point())
    many = check_gradient(batched_tree_fn, tree_grad, tree_point(), vectorized=True)
    assert one.ok and many.ok
    for a, b in zip(one.leaves, many.leaves):
        assert np.all(np.abs(a.numeric - b.numeric) <= a.error + b.error)
    assert many.calls < one.calls / 2


def test_vectorized_func_still_fails_a_wrong_gradient():
    def bad(p):
        out = tree_grad(p)
        out["W"][1, 2] += 1e-4
        return out

    report = check_gradient(batched_tree_fn, bad, tree_point(), vectorized=True)
    assert [leaf.path for leaf in report.failures] == ["x['W']"] and report.leaves[0].worst == (1, 2)


def test_vectorized_func_must_return_one_value_per_point():
    with pytest.raises(ValueError, match=r"must return one real value per point, shape \(1,\)"):
        check_gradient(cubic, cubic_grad, np.ones(3), vectorized=True)


def test_float16_passes_at_a_resolution_it_can_reach_and_says_so():
    # float16 rounds f to about 1e-3 of itself: with steps capped at a tenth of |x|, a derivative is resolved to a
    # few tens of percent at best (its noise is a few ulps of f)
    x = RNG(0).uniform(1, 2, 4).astype(np.float16)  # one sign: a sum that cancels is rounded more coarsely still
    report = check_gradient(lambda x: np.sum(x**3), lambda x: 3 * x**2, x, resolution=0.5)
    assert report.ok, str(report)
    # the reported resolution bounds abs(analytic − f′): the error on the pass and on numeric, plus rtol
    assert 1e-3 < report.leaves[0].resolution <= 2 * 0.5 + float(np.finfo(np.float16).eps) ** 0.5
    wrong = check_gradient(lambda x: np.sum(x**3), lambda x: (3 * x**2 * 1.7).astype(np.float16), x, resolution=0.5)
    assert wrong.leaves[0].failed.any() and not wrong.ok
