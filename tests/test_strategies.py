"""The strategies: what they generate, that it shrinks, and that bad arguments fail when a strategy is built."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

from gradcheck import GradcheckError, Network
from gradcheck.nn.costs import COSTS
from gradcheck.strategies import architectures, float_arrays, networks, problems, pytrees

DRAW = settings(max_examples=300, database=None, derandomize=True, deadline=None, phases=[Phase.generate])


def test_300_problems_cover_every_activation_output_cost_depth_and_dtype():
    seen = []

    @DRAW
    @given(problems())
    def draw(problem):
        net, _X, _Y = problem
        seen.append((net.activation, net.output, net.cost, net.num_layers, str(net.dtype)))

    draw()
    assert len(seen) == 300
    assert {s[0] for s in seen} == {"sigmoid", "tanh", "relu", "leaky_relu", "softplus", "identity"}
    assert {s[1] for s in seen} == {"sigmoid", "softmax", "identity"}
    assert {s[2] for s in seen} == {"quadratic", "cross_entropy", "log_likelihood"}
    assert {s[3] for s in seen} >= {1, 2, 3, 4}
    assert {s[4] for s in seen} == {"float64", "float32"}


@given(problems())
def test_targets_are_valid_for_the_cost(problem):
    net, X, Y = problem
    assert X.shape == (len(X), net.sizes[0]) and Y.shape == (len(X), net.sizes[-1])
    assert X.dtype == Y.dtype == net.dtype
    if net.cost == "log_likelihood":
        assert set(np.unique(Y)) <= {0.0, 1.0} and np.all(Y.sum(axis=1) == 1)
    if net.cost == "cross_entropy":
        assert Y.min() >= 0 and Y.max() <= 1
    assert np.isfinite(net.loss(X, Y))


@settings(max_examples=50)  # rejection sampling: a larger budget only spends time on rejected draws
@given(problems(activations=["relu"], kink_margin=1e-2, architectures=architectures(min_layers=2, max_width=4)))
def test_kink_margin_keeps_hidden_pre_activations_away_from_zero(problem):
    net, X, Y = problem
    for z in net.backprop(X, Y).zs[:-1]:
        assert np.abs(z).min() >= 1e-2


def test_networks_shrink_to_the_smallest_architecture():
    net = find(networks(), lambda n: True)
    assert net.sizes == [1, 1] and all(np.all(w == 0) for w in net.weights)


@settings(max_examples=20)
@given(st.from_type(Network))
def test_from_type_network_uses_the_registered_strategy(net):
    # networks()'s defaults: 1–4 weighted layers of width 1–8, an output and cost that fit together
    assert isinstance(net, Network) and 1 <= net.num_layers <= 4 and max(net.sizes) <= 8
    assert net.output in COSTS[net.cost].outputs


@given(float_arrays((3, 4), dtype="float32", scale=2.0, avoid=(0.0,), margin=0.1))
def test_float_arrays_respect_shape_dtype_scale_and_margin(a):
    assert a.shape == (3, 4) and a.dtype == np.float32
    assert np.all(np.abs(a) <= 2.0) and np.all(np.abs(a) >= 0.1)


@given(pytrees({"W": (3, 2), "b": [(3,), ()]}))
def test_pytrees_follow_the_structure(tree):
    assert set(tree) == {"W", "b"} and tree["W"].shape == (3, 2)
    assert isinstance(tree["b"], list) and tree["b"][0].shape == (3,) and tree["b"][1].shape == ()


BAD = [
    (lambda: architectures(min_layers=3, max_layers=2), ValueError, "min_layers=3 > max_layers=2"),
    (lambda: architectures(min_width=0), ValueError, "min_width=0; it must be at least 1"),
    (lambda: architectures(max_layers=2.5), TypeError, "max_layers=2.5"),
    (lambda: networks(activations=["swish"]), ValueError, "activations contains ['swish']"),
    (lambda: networks(activations="relu"), TypeError, "pass a list"),
    (lambda: networks(outputs=["identity"], costs=["cross_entropy"]), ValueError, "no cost in costs"),
    (lambda: networks(dtypes=["float16"]), TypeError, "dtype='float16'; a Network computes in np.float64"),
    (lambda: networks(weight_scale=0), ValueError, "weight_scale=0"),
    (lambda: networks(l2=[-1.0]), ValueError, "l2=[-1.0]"),
    (lambda: networks(costs=[]), ValueError, "costs is empty"),
    (lambda: networks(architectures=[3, 4]), TypeError, "pass a strategy"),
    (lambda: problems(min_batch=0), ValueError, "min_batch=0"),
    (lambda: problems(kink_margin=2.0), ValueError, "kink_margin=2.0"),
    (lambda: float_arrays(3, scale=1.0, avoid=(0.0,), margin=0.6), ValueError, "margin=0.6"),
    (lambda: pytrees({"W": "3x2"}), TypeError, "structure contains '3x2'"),
    (lambda: float_arrays(-1), ValueError, "shape=-1"),
    (lambda: float_arrays((2, -3)), ValueError, "shape=(2, -3)"),
    (lambda: float_arrays("3"), TypeError, "shape='3'"),
    (lambda: float_arrays(3, margin=float("nan")), ValueError, "margin=nan"),
    (lambda: float_arrays(3, margin="x"), TypeError, "margin='x'"),
    (lambda: float_arrays(3, avoid=("a",), margin=0.1), TypeError, "avoid=('a',)"),
    (lambda: float_arrays(3, dtype="int32"), TypeError, "float_arrays draws"),
    (lambda: problems(kink_margin=float("nan")), ValueError, "kink_margin=nan"),
]


@pytest.mark.parametrize("build, exc, fragment", BAD, ids=[b[2] for b in BAD])
def test_bad_strategy_arguments_fail_when_the_strategy_is_built(build, exc, fragment):
    with pytest.raises(exc) as info:
        build()
    assert isinstance(info.value, GradcheckError)
    assert fragment in str(info.value)


def test_no_message_about_arrays_speaks_of_a_network():
    with pytest.raises(TypeError) as info:
        float_arrays(3, dtype="int32")
    assert "Network" not in str(info.value)


@pytest.mark.parametrize("value", [np.int64(2), np.int32(3)])
def test_numpy_integers_are_accepted_where_an_integer_is_asked_for(value):
    sizes = find(architectures(min_layers=value, max_layers=value), lambda s: True)
    assert len(sizes) == int(value) + 1
    assert find(float_arrays(value), lambda a: True).shape == (int(value),)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("scale", [0.1, 0.3, 1e-7, 3e-30, 1e30])
def test_any_positive_scale_draws_within_it_and_not_only_zeros(dtype, scale):
    strategy = float_arrays(8, dtype=dtype, scale=scale)
    wide = find(strategy, lambda a: np.count_nonzero(a) == 8 and np.abs(a).max() > scale / 2)
    assert wide.dtype == np.dtype(dtype) and np.all(np.abs(wide) <= scale)


def test_strategies_print_as_the_call_that_built_them():
    from gradcheck.strategies import networks, problems

    assert repr(networks()) == "networks()"
    assert repr(networks(activations=["tanh"])) == "networks(activations=['tanh'])"
    assert repr(problems(max_batch=3, costs=["quadratic"])) == "problems(costs=['quadratic'], max_batch=3)"
