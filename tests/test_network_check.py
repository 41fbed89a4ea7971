"""check_network: the structured, batched check of a Network agrees with the generic checker and catches bugs."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck import check_gradient, check_network

from . import mutants
from .helpers import COMBINATIONS, combo_id, problem


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("combo", COMBINATIONS, ids=combo_id)
def test_check_network_passes_backprop_and_agrees_with_the_generic_check(combo, dtype):
    net, X, Y = problem(*combo, sizes=(4, 5, 3, 2), l2=0.2, dtype=dtype, seed=5)
    fast = check_network(net, X, Y)
    generic = check_gradient(*net.as_functions(X, Y), net.params)
    assert fast.ok, str(fast)
    assert [leaf.path for leaf in fast.leaves] == [leaf.path for leaf in generic.leaves]
    for a, b in zip(fast.leaves, generic.leaves):
        assert np.all(np.abs(a.numeric - b.numeric) <= a.error + b.error)
    assert fast.calls < generic.calls


@pytest.mark.parametrize("bug", ["hidden delta without sigma'", "one gradient scaled by 1 + 1e-3",
                                 "BP4 with z of the layer below", "L2 in the loss but not in the gradient"])
def test_check_network_fails_a_mutant_backprop(bug):
    net, X, Y = problem("tanh", "softmax", "log_likelihood", sizes=(4, 5, 3, 3), l2=0.3, seed=2)
    report = check_network(net, X, Y, grad=mutants.gradient_function(net, X, Y, bug))
    assert not report.ok


def test_check_network_on_the_chapter_one_network_checks_every_parameter():
    rng = np.random.default_rng(0)
    from gradcheck import Network

    net = Network([784, 30, 10], rng=rng)
    X, Y = rng.uniform(0, 1, (10, 784)), np.eye(10)[rng.integers(0, 10, 10)]
    report = check_network(net, X, Y)
    assert report.ok
    assert sum(leaf.analytic.size for leaf in report.leaves) == 23_860
    assert report.calls < 100  # the bulk of the evaluations went through the batched path


def test_check_network_rejects_other_models():
    with pytest.raises(TypeError, match="must be a gradcheck.nn.Network"):
        check_network(object(), np.ones((1, 1)), np.ones((1, 1)))


def test_check_network_refuses_a_negative_tolerance():
    net, X, Y = problem()
    with pytest.raises(ValueError, match="rtol=-0.1"):
        check_network(net, X, Y, rtol=-0.1)
