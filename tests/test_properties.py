"""The property suite: for every network Hypothesis can build, backprop matches finite differences and the
theory's invariants hold (listed in CONTRIBUTING.md)."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from gradcheck import Network, check_gradient
from gradcheck.nn.loop import backprop_loop
from gradcheck.strategies import architectures, problems

from .helpers import SIGMA_PRIME, assert_correct_verdict, rounding_scales

SMALL = architectures(max_layers=4, max_width=5)


def tol(net):
    return 64 * np.finfo(net.dtype).eps


def close(actual, expected, net, scale=None):
    """Equal up to a few ulps of the dtype, relative to the largest entry (or ``scale``)."""
    scale = np.abs(expected).max() if scale is None else scale
    return np.abs(actual - expected).max() <= tol(net) * max(scale, np.finfo(net.dtype).tiny)


def with_cost(net, cost):
    return Network(
        net.sizes,
        activation=net.activation,
        output=net.output,
        cost=cost,
        l2=net.l2,
        dtype=net.dtype,
        weights=net.weights,
        biases=net.biases,
    )


@given(problems(architectures=SMALL, kink_margin=0.05))
def test_backprop_gradients_pass_the_checker(problem):
    # kink_margin keeps ReLU pre-activations off 0: exact kinks are the checker's own tests (tests/test_check.py);
    # here Hypothesis would otherwise shrink every failure to an all-zero network whose units all sit on kinks.
    net, X, Y = problem
    report = check_gradient(*net.as_functions(X, Y), net.params)
    kinks = net.dtype == np.float32 and net.hidden_activation.kink
    assert_correct_verdict(report, repr(net), kinks_within_reach=kinks)


@given(problems(architectures=SMALL, outputs=["sigmoid"], costs=["cross_entropy"], weight_scale=8.0))
def test_cross_entropy_output_delta_is_free_of_sigma_prime(problem):
    net, X, Y = problem
    bp = net.backprop(X, Y)
    assert close(bp.deltas[-1], bp.activations[-1] - Y, net, scale=1.0)


@given(problems(architectures=SMALL, outputs=["sigmoid"], costs=["quadratic"]))
def test_quadratic_output_delta_keeps_sigma_prime(problem):
    net, X, Y = problem
    bp = net.backprop(X, Y)
    expected = (bp.activations[-1] - Y) * SIGMA_PRIME["sigmoid"](bp.zs[-1].astype(np.float64))
    assert close(bp.deltas[-1], expected, net)


@given(problems(architectures=architectures(min_layers=2, max_layers=4, max_width=5)))
def test_every_hidden_delta_is_bp2_under_every_cost(problem):
    net, X, Y = problem
    bp = net.backprop(X, Y)
    for l in range(net.num_layers - 1):
        propagated = bp.deltas[l + 1] @ net.weights[l + 1]
        expected = propagated * SIGMA_PRIME[net.activation](bp.zs[l].astype(np.float64))
        assert close(bp.deltas[l], expected, net, scale=np.abs(propagated).max())


@given(
    problems(
        architectures=architectures(min_layers=2, max_layers=4, max_width=5),
        outputs=["sigmoid"],
        costs=["cross_entropy"],
        dtypes=["float64"],
    )
)
def test_given_the_same_output_delta_the_hidden_deltas_do_not_depend_on_the_cost(problem):
    net, X, Y = problem
    ce = net.backprop(X, Y)
    sp = SIGMA_PRIME["sigmoid"](ce.zs[-1])
    assume(sp.min() > 1e-6)
    # Quadratic targets chosen so that (a − y′)·σ′(zᴸ) equals the cross-entropy δᴸ = a − y.
    Y_quad = ce.activations[-1] - ce.deltas[-1] / sp
    quad = with_cost(net, "quadratic").backprop(X, Y_quad)
    assert np.allclose(quad.deltas[-1], ce.deltas[-1], rtol=1e-9, atol=1e-15)
    for l in range(net.num_layers - 1):
        assert np.allclose(quad.deltas[l], ce.deltas[l], rtol=1e-8, atol=1e-14 * np.abs(ce.deltas[l]).max())


@given(
    problems(
        architectures=architectures(min_layers=2, max_layers=6, max_width=5).map(lambda s: s[:-1] + [1]),
        outputs=["sigmoid"],
        costs=["cross_entropy"],
        dtypes=["float64"],
    )
)
def test_with_one_output_quadratic_hidden_deltas_are_sigma_prime_times_cross_entropy_ones(problem):
    # Cross-entropy does not cure vanishing gradients: layer by layer the two costs' deltas keep a fixed ratio.
    net, X, Y = problem
    ce = net.backprop(X, Y)
    quad = with_cost(net, "quadratic").backprop(X, Y)
    sp = SIGMA_PRIME["sigmoid"](ce.zs[-1])  # (batch, 1): one factor per example
    for l in range(net.num_layers):
        assert np.allclose(quad.deltas[l], sp * ce.deltas[l], rtol=1e-9, atol=1e-300)


@given(
    problems(
        architectures=architectures(min_layers=2, max_layers=6, max_width=5),
        activations=["sigmoid"],
        dtypes=["float64"],
        weight_scale=3.0,
    )
)
def test_sigmoid_hidden_deltas_shrink_at_least_fourfold_per_unit_of_weight_norm(problem):
    net, X, Y = problem
    bp = net.backprop(X, Y)
    chain = np.linalg.norm(bp.deltas[-1], axis=1)
    for l in range(net.num_layers - 2, -1, -1):
        w_norm = np.linalg.norm(net.weights[l + 1], 2)
        below, above = np.linalg.norm(bp.deltas[l], axis=1), np.linalg.norm(bp.deltas[l + 1], axis=1)
        assert np.all(below <= 0.25 * w_norm * above * (1 + 1e-12) + 1e-300)
        chain = chain * 0.25 * w_norm
        assert np.all(below <= chain * (1 + 1e-10) + 1e-300)


def reals(lo, hi):
    return st.floats(lo, hi, allow_subnormal=False)


@given(
    st.lists(reals(-3, 3), min_size=4, max_size=4),
    st.lists(reals(-2, 2), min_size=4, max_size=4),
    reals(-2, 2),
    reals(0, 1),
)
def test_the_single_neuron_chain_of_equation_122(w, b, x, y):
    net = Network(
        [1, 1, 1, 1, 1],
        activation="sigmoid",
        output="sigmoid",
        cost="quadratic",
        weights=[np.array([[v]]) for v in w],
        biases=[np.array([v]) for v in b],
    )
    X, Y = np.array([[x]]), np.array([[y]])
    bp = net.backprop(X, Y)
    z = [float(zl[0, 0]) for zl in bp.zs]
    sp = [SIGMA_PRIME["sigmoid"](np.array(v)) for v in z]
    dC_da4 = float(bp.activations[-1][0, 0]) - y
    expected = sp[0] * w[1] * sp[1] * w[2] * sp[2] * w[3] * sp[3] * dC_da4
    assert abs(float(bp.grad_b[0][0]) - expected) <= 1e-12 * abs(expected) + 1e-300


@given(st.floats(5, 30), st.floats(0.5, 3))
def test_a_saturated_wrong_output_learns_slowly_under_quadratic_cost_but_not_cross_entropy(z, x):
    # One sigmoid neuron with a ≈ 1 and target 0 (Nielsen ch. 3): the quadratic gradient carries σ′(z) ≤ e^-z,
    # the cross-entropy one is a − y ≈ 1.
    weights, biases = [np.array([[z / x]])], [np.array([0.0])]
    X, Y = np.array([[x]]), np.array([[0.0]])
    quad = Network([1, 1], cost="quadratic", weights=weights, biases=biases).backprop(X, Y)
    ce = Network([1, 1], cost="cross_entropy", weights=weights, biases=biases).backprop(X, Y)
    assert abs(quad.grad_b[0][0]) <= np.exp(-z)
    assert ce.grad_b[0][0] >= 1 - np.exp(-z) - 1e-15
    assert ce.grad_b[0][0] / abs(quad.grad_b[0][0]) >= np.exp(z)


@given(problems(architectures=SMALL, max_batch=5))
def test_vectorised_backprop_equals_the_per_example_loop(problem):
    net, X, Y = problem
    fast, loop = net.backprop(X, Y), backprop_loop(net, X, Y)
    eps = np.finfo(net.dtype).eps
    for a, b, scale in zip(
        fast.grad_w + fast.grad_b + fast.deltas, loop.grad_w + loop.grad_b + loop.deltas, rounding_scales(net, fast, Y)
    ):
        assert np.all(np.abs(a.astype(np.float64) - b) <= 64 * net.num_layers * eps * scale + 1e-300)


@given(problems(architectures=SMALL, min_batch=2, max_batch=5, dtypes=["float64"], l2=[0.0]))
def test_the_batch_gradient_is_the_mean_of_per_example_gradients(problem):
    net, X, Y = problem
    whole = net.backprop(X, Y)
    singles = [net.backprop(X[i : i + 1], Y[i : i + 1]) for i in range(len(X))]
    scales = rounding_scales(net, whole, Y)
    for l in range(net.num_layers):
        mean_w = np.mean([s.grad_w[l] for s in singles], axis=0)
        assert np.all(np.abs(whole.grad_w[l] - mean_w) <= 1e-13 * net.num_layers * scales[l] + 1e-300)


@given(problems(architectures=SMALL, dtypes=["float64"]))
def test_repeating_the_batch_leaves_the_gradient_unchanged(problem):
    net, X, Y = problem
    once, twice = net.backprop(X, Y), net.backprop(np.vstack([X, X]), np.vstack([Y, Y]))
    for l in range(net.num_layers):
        # the L2 term is (λ/2n)·Σ‖W‖²: doubling n halves its gradient
        penalty = net.l2 / (2 * len(X)) * net.weights[l]
        scale = max(np.abs(once.grad_w[l]).max(), np.abs(penalty).max(), 1e-300)
        assert np.abs(twice.grad_w[l] + penalty - once.grad_w[l]).max() <= 1e-13 * scale
