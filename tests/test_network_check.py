"""check_network: the structured, batched check of a Network agrees with the generic checker and catches bugs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gradcheck import check_gradient, check_network

from . import mutants
from .helpers import COMBINATIONS, assert_correct_verdict, combo_id, problem


@pytest.mark.parametrize(
    ("combo", "dtype", "sizes"),
    [
        (combo, dtype, sizes)
        for combo in COMBINATIONS
        for dtype in ("float64", "float32")
        for sizes in ((4, 5, 3, 2), (3, 4, 3, 4, 3, 2))
    ],
    ids=lambda p: combo_id(p) if isinstance(p, tuple) and len(p) == 3 and isinstance(p[0], str) else str(p),
)
def test_check_network_passes_backprop_and_agrees_with_the_generic_check(combo, dtype, sizes):
    net, X, Y = problem(*combo, sizes=sizes, l2=0.2, dtype=dtype, seed=5)
    fast = check_network(net, X, Y)
    generic = check_gradient(*net.as_functions(X, Y), net.params)
    assert_correct_verdict(fast, kinks_within_reach=dtype == "float32" and "relu" in combo[0])
    assert [leaf.path for leaf in fast.leaves] == [leaf.path for leaf in generic.leaves]
    for a, b in zip(fast.leaves, generic.leaves):
        both = ~a.inconclusive & ~b.inconclusive
        assert np.all(np.abs(a.numeric - b.numeric)[both] <= (a.error + b.error)[both])
    assert fast.calls < generic.calls


@pytest.mark.parametrize(
    "bug",
    [
        "hidden delta without sigma'",
        "one gradient scaled by 1 + 1e-3",
        "BP4 with z of the layer below",
        "L2 in the loss but not in the gradient",
    ],
)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "combo", [("tanh", "softmax", "log_likelihood"), ("sigmoid", "sigmoid", "cross_entropy")], ids=combo_id
)
@pytest.mark.parametrize("sizes", [(4, 5, 3, 3), (4, 5, 4, 4, 3, 3)], ids=str)
def test_check_network_fails_a_mutant_backprop(bug, combo, dtype, sizes):
    net, X, Y = problem(*combo, sizes=sizes, l2=0.3, seed=2, dtype=dtype)
    X, Y = X.astype(dtype), Y.astype(dtype)  # so that the mutant computes in the network's dtype
    mutant = mutants.gradient_function(net, X, Y, bug)
    report = check_network(net, X, Y, grad=mutant)
    full = check_gradient(net.as_functions(X, Y)[0], mutant, net.params)
    # every element full mode fails fails here too (or is inconclusive, never passed); in float32 the batched
    # values, exact to a fraction of an ulp where the loss itself is rounded to a few, can resolve a bugged element
    # that full mode lets pass
    for fast_leaf, full_leaf in zip(report.leaves, full.leaves):
        missed = full_leaf.failed & ~fast_leaf.failed & ~fast_leaf.inconclusive
        if dtype == "float32" and bug == "one gradient scaled by 1 + 1e-3":
            # a 1e-3 error is at float32's limit: one check may resolve it where the other cannot, but a pass
            # must then say so, with a tolerance of at least the error
            a = np.abs(fast_leaf.analytic.astype(np.float64))
            assert (fast_leaf.tolerance[missed] >= 0.9e-3 * a[missed]).all(), fast_leaf.path
        else:
            assert not missed.any(), fast_leaf.path
    if dtype == "float32" and bug == "one gradient scaled by 1 + 1e-3":
        # below what float32 resolves in weights[0], the leaf it scales, as the report says (the full mode does
        # not see it either)
        assert report.leaf("x['weights'][0]").resolution > 1e-3
    else:
        assert not report.ok


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_check_network_on_the_chapter_one_network_checks_every_parameter(dtype):
    rng = np.random.default_rng(0)
    from gradcheck import Network

    net = Network([784, 30, 10], rng=rng, dtype=dtype)
    X, Y = rng.uniform(0, 1, (10, 784)), np.eye(10)[rng.integers(0, 10, 10)]
    report = check_network(net, X, Y)
    assert_correct_verdict(report)
    assert sum(leaf.analytic.size for leaf in report.leaves) == 23_860
    # every stencil, the finer and larger ones that float32's rounding calls for too, went through the batched path
    assert report.calls < 100


def test_check_network_rejects_other_models():
    with pytest.raises(TypeError, match=r"must be a gradcheck\.nn\.Network"):
        check_network(object(), np.ones((1, 1)), np.ones((1, 1)))


def test_check_network_refuses_a_negative_tolerance():
    net, X, Y = problem()
    with pytest.raises(ValueError, match=r"rtol=-0\.1"):
        check_network(net, X, Y, rtol=-0.1)


def _perturbed_losses(net, X, Y, layer, is_bias, idx, steps):
    """The loss of the network with one parameter moved, recomputed from scratch for each (index, step)."""
    loss, _ = net.as_functions(X, Y)
    out = []
    for i, s in zip(idx, steps):
        params = net.params
        leaf = params["biases" if is_bias else "weights"][layer].reshape(-1)
        leaf[i] = (np.float64(leaf[i]) + s).astype(net.dtype)
        out.append(loss(params))
    return np.array(out)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes", [(5, 3), (6, 5, 3), (4, 5, 4, 3), (4, 5, 3, 4, 3), (3, 4, 5, 4, 3, 2)], ids=str)
@pytest.mark.parametrize(
    "combo",
    [
        ("sigmoid", "sigmoid", "cross_entropy"),
        ("tanh", "sigmoid", "cross_entropy"),
        ("softplus", "sigmoid", "cross_entropy"),
        ("relu", "softmax", "log_likelihood"),
        ("sigmoid", "identity", "quadratic"),
        ("tanh", "softmax", "quadratic"),
        ("leaky_relu", "sigmoid", "quadratic"),
    ],
    ids=combo_id,
)
@pytest.mark.parametrize("scale", [1.0, 1e-7, 300.0], ids=["h", "tiny-steps", "large-steps"])
def test_batched_losses_equal_the_perturbed_network_loss(combo, sizes, dtype, scale):
    """Every value the batched path hands the checker is the loss of the perturbed network, to rounding."""
    from gradcheck.network_check import NetworkPerturbations

    net, X, Y = problem(*combo, sizes=sizes, batch=7, l2=0.1, dtype=dtype, seed=3)
    loss, _ = net.as_functions(X, Y)
    f0 = loss(net.params)
    bulk = NetworkPerturbations(net, *net.validate_batch(X, Y), f0)
    rng = np.random.default_rng(4)
    eps = np.finfo(net.dtype).eps
    for layer in range(net.num_layers):
        for is_bias in (False, True):
            size = (net.biases if is_bias else net.weights)[layer].size
            idx = np.arange(size)
            leaf = (net.biases if is_bias else net.weights)[layer].reshape(-1).astype(np.float64)
            h = scale * eps ** (1 / 3) * np.maximum(np.abs(leaf), 0.1) * rng.choice([-2.0, -1.0, 1.0, 2.0], size)
            steps = (leaf + h).astype(net.dtype).astype(np.float64) - leaf  # as the checker rounds them
            with np.errstate(all="ignore"):
                got = bulk.perturb(layer, is_bias, idx, steps)
            want = _perturbed_losses(net, X, Y, layer, is_bias, idx, steps)
            # both are f0 plus a change far below f0: they agree to the rounding of the recomputed loss (up to 2.5
            # ulps of f0 seen)
            assert np.all(np.abs(got - want) <= 4 * eps * abs(f0)), (layer, is_bias, np.abs(got - want).max() / abs(f0))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "softplus", "identity", "relu", "leaky_relu"])
@pytest.mark.parametrize(
    "head", [("sigmoid", "cross_entropy"), ("softmax", "log_likelihood"), ("identity", "quadratic")], ids="-".join
)
@pytest.mark.parametrize("sizes", [(8, 6, 4), (8, 6, 5, 4), (8, 6, 5, 5, 4)], ids=str)
def test_every_hidden_layer_is_interpolated_to_a_tenth_of_an_ulp(activation, dtype, sizes, head):
    """The interpolated values are the directly computed ones (f(x) plus the change), to an ulp of f(x), for every
    hidden layer of networks one to three hidden layers deep."""
    from gradcheck.network_check import NetworkPerturbations

    net, X, Y = problem(activation, *head, sizes=sizes, batch=9, dtype=dtype, seed=7)
    loss, _ = net.as_functions(X, Y)
    f0 = loss(net.params)
    bulk = NetworkPerturbations(net, *net.validate_batch(X, Y), f0)
    eps = np.finfo(net.dtype).eps
    # the direct path computes cross-entropy's change exactly, the other costs by recomputing the loss (a few ulps)
    tol = (2 if head[1] == "cross_entropy" else 4) * eps * abs(f0)
    interpolated = 0
    for layer in range(net.num_layers - 1):
        for is_bias in (False, True):
            leaf = (net.biases if is_bias else net.weights)[layer].reshape(-1).astype(np.float64)
            idx = np.arange(leaf.size)
            for offset in (1.0, -2.0):
                steps = (leaf + offset * eps ** (1 / 3) * np.maximum(np.abs(leaf), 0.1)).astype(net.dtype) - leaf
                with np.errstate(all="ignore"):
                    values, done = bulk._interpolated(layer, is_bias, idx, steps)
                    direct = bulk._chunk(layer, is_bias, idx, steps)
                assert np.all(np.abs(values[done] - direct[done]) <= tol)
                if activation not in ("relu", "leaky_relu"):  # a dead ReLU unit's weights change nothing
                    assert np.all(values[done] != f0)
                interpolated += int(done.sum())
    if activation not in ("relu", "leaky_relu"):  # smooth: every unit of every layer takes the fast path
        assert interpolated == 2 * sum(w.size + b.size for w, b in zip(net.weights[:-1], net.biases[:-1]))


def test_a_unit_with_a_kink_in_reach_is_computed_directly():
    """A ReLU unit sitting at z = 0 for one example has a kink inside the interval: no polynomial fits it."""
    from gradcheck.network_check import NetworkPerturbations

    net, X, Y = problem("relu", "sigmoid", "cross_entropy", sizes=(5, 4, 3), batch=6, seed=1)
    z = X @ net.weights[0].T
    net.biases[0][:] = 1.0 - z[0]  # every unit active for every example (z = 1 for example 0) ...
    net.biases[0][2] = -z[0, 2]  # ... but unit 2, which sits exactly at its kink for example 0
    loss, _ = net.as_functions(X, Y)
    bulk = NetworkPerturbations(net, *net.validate_batch(X, Y), loss(net.params))
    idx = np.arange(net.weights[0].size)
    steps = np.full(idx.size, 1e-5)
    with np.errstate(all="ignore"):
        _, done = bulk._interpolated(0, False, idx, steps * np.where(idx % 2, 1, -1))
    assert not done[idx // 5 == 2].any()
    assert done[idx // 5 != 2].all()


def test_a_kink_in_a_layer_above_keeps_the_units_below_that_reach_it_off_the_interpolant():
    """A ReLU unit of the second hidden layer at its kink for one example: every unit of the first hidden layer
    moves it, so none of them may be interpolated; with the unit moved off the kink, all of them are."""
    from gradcheck.network_check import NetworkPerturbations

    net, X, Y = problem("relu", "sigmoid", "cross_entropy", sizes=(5, 4, 3, 2), batch=6, seed=1)
    net.weights[0][:] = np.abs(net.weights[0])
    X = np.abs(X)
    net.biases[0][:] = 1.0  # every first-layer unit active for every example
    a1 = np.maximum(X @ net.weights[0].T + net.biases[0], 0)
    z2 = a1 @ net.weights[1].T
    net.biases[1][:] = 1.0 - z2.min(axis=0) + np.abs(z2).max()  # every second-layer unit well inside its active side
    idx = np.arange(net.weights[0].size)
    steps = np.full(idx.size, 1e-5) * np.where(idx % 2, 1, -1)
    for at_kink, expected in ((False, True), (True, False)):
        if at_kink:
            net.biases[1][1] = -z2[0, 1]  # unit 1 of the second layer sits exactly at 0 for example 0
        loss, _ = net.as_functions(X, Y)
        bulk = NetworkPerturbations(net, *net.validate_batch(X, Y), loss(net.params))
        with np.errstate(all="ignore"):
            _, done = bulk._interpolated(0, False, idx, steps)
        assert done.all() == expected and done.any() == expected


class _WrongBackprop(__import__("gradcheck").Network):
    """A subclass whose backprop halves every gradient: a checker must run it, not a plain Network's."""

    def backprop(self, X, Y):
        bp = super().backprop(X, Y)
        return dataclasses.replace(bp, grad_w=[g / 2 for g in bp.grad_w], grad_b=[g / 2 for g in bp.grad_b])


class _OtherLoss(__import__("gradcheck").Network):
    def loss(self, X, Y):
        return 2 * super().loss(X, Y)


def _subclassed(cls):
    net, X, Y = problem("tanh", "sigmoid", "cross_entropy", sizes=(3, 4, 2), seed=1)
    return (
        cls(
            net.sizes, activation="tanh", output="sigmoid", cost="cross_entropy", weights=net.weights, biases=net.biases
        ),
        X,
        Y,
    )


def test_a_subclass_with_a_wrong_backprop_fails_in_both_checkers():
    net, X, Y = _subclassed(_WrongBackprop)
    assert not check_network(net, X, Y).ok
    assert not check_gradient(*net.as_functions(X, Y), net.params).ok


def test_a_subclass_with_another_loss_is_refused_by_check_network_and_checked_with_its_own_loss():
    from gradcheck.errors import InvalidType

    net, X, Y = _subclassed(_OtherLoss)
    with pytest.raises(InvalidType, match=r"_OtherLoss overrides loss.*as_functions"):
        check_network(net, X, Y)
    loss, grad = net.as_functions(X, Y)
    assert loss(net.params) == pytest.approx(2 * __import__("gradcheck").Network.loss(net, X, Y))
    assert not check_gradient(loss, grad, net.params).ok  # its gradient is not the doubled loss's
