"""Bad input gets an error that names the argument, what is wrong with it and the fix; it never passes silently."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck import GradcheckError, Network

from .helpers import problem

RNG = np.random.default_rng


def net_with(**kw):
    args = {"rng": RNG(0)}
    args.update(kw)
    sizes = args.pop("sizes", [3, 4, 2])
    return Network(sizes, **args)


CONSTRUCTION = [
    # (keyword arguments, exception type, fragments the message must contain)
    ({"sizes": [3]}, ValueError, ["sizes", "at least the input and the output"]),
    ({"sizes": "3,4"}, TypeError, ["sizes must be a list"]),
    ({"sizes": [3, 0, 2]}, ValueError, ["sizes[1] = 0", "at least one unit"]),
    ({"sizes": [3, 2.5]}, TypeError, ["sizes[1] = 2.5", "not an integer"]),
    ({"activation": "swish"}, ValueError, ["activation='swish'", "choose one of", "sigmoid"]),
    ({"activation": "softmax"}, ValueError, ["activation='softmax'"]),
    ({"output": "relu"}, ValueError, ["output='relu'", "softmax"]),
    ({"cost": "hinge"}, ValueError, ["cost='hinge'", "cross_entropy"]),
    (
        {"output": "softmax", "cost": "cross_entropy"},
        ValueError,
        ["cross_entropy", "output='softmax'", "use output='sigmoid'"],
    ),
    ({"output": "sigmoid", "cost": "log_likelihood"}, ValueError, ["log_likelihood", "use output='softmax'"]),
    ({"output": "identity", "cost": "cross_entropy"}, ValueError, ["output='identity'"]),
    ({"l2": -1.0}, ValueError, ["l2=-1.0", ">= 0"]),
    ({"l2": float("nan")}, ValueError, ["l2=nan"]),
    ({"l2": "0.1"}, TypeError, ["l2 must be a non-negative number"]),
    ({"dtype": np.int32}, TypeError, ["dtype", "float64 or np.float32"]),
    ({"rng": None}, TypeError, ["rng must be a numpy Generator", "default_rng"]),
    ({"rng": 0}, TypeError, ["rng must be a numpy Generator"]),
    ({"rng": None, "weights": [np.zeros((4, 3)), np.zeros((2, 4))]}, ValueError, ["both weights= and biases="]),
    (
        {"rng": None, "weights": [np.zeros((3, 4)), np.zeros((2, 4))], "biases": [np.zeros(4), np.zeros(2)]},
        ValueError,
        ["weights[0] has shape (3, 4)", "needs shape (4, 3)"],
    ),
    (
        {"rng": None, "weights": [np.zeros((4, 3)), np.zeros((2, 4))], "biases": [np.zeros((4, 1)), np.zeros(2)]},
        ValueError,
        ["biases[0] has shape (4, 1)", "shape (4,)"],
    ),
    ({"rng": None, "weights": [np.zeros((4, 3))], "biases": [np.zeros(4)]}, ValueError, ["need 2 weight matrices"]),
    (
        {"rng": None, "weights": [np.full((4, 3), np.nan), np.zeros((2, 4))], "biases": [np.zeros(4), np.zeros(2)]},
        ValueError,
        ["weights[0] contains nan", "finite"],
    ),
]


@pytest.mark.parametrize(
    "kwargs, exc, fragments", CONSTRUCTION, ids=lambda v: None if not isinstance(v, dict) else ",".join(sorted(v))
)
def test_bad_network_arguments_are_named_with_a_fix(kwargs, exc, fragments):
    with pytest.raises(exc) as info:
        net_with(**kwargs)
    assert isinstance(info.value, GradcheckError)
    for fragment in fragments:
        assert fragment in str(info.value)


def data_cases():
    X, Y = np.ones((5, 3)), np.full((5, 2), 0.5)
    nan_x = X.copy()
    nan_x[2, 1] = np.nan
    inf_y = Y.copy()
    inf_y[4, 0] = np.inf
    return [
        ("cross_entropy", X[:, :2], Y, ValueError, ["X has shape (5, 2)", "takes 3 inputs", "(batch, 3)"]),
        ("cross_entropy", X[0], Y, ValueError, ["X has shape (3,)", "2-D", "X[None, :]"]),
        ("cross_entropy", X, Y[:4], ValueError, ["Y has shape (4, 2)", "(5, 2)"]),
        ("cross_entropy", X, Y.T, ValueError, ["Y has shape (2, 5)"]),
        ("cross_entropy", nan_x, Y, ValueError, ["X[2, 1] = nan", "finite"]),
        ("cross_entropy", X, inf_y, ValueError, ["Y[4, 0] = inf"]),
        ("cross_entropy", X, Y + 1, ValueError, ["needs targets in [0, 1]", "cost='quadratic'"]),
        ("cross_entropy", X, Y.astype(str), TypeError, ["Y has dtype <U"]),
        ("cross_entropy", X[:0], Y[:0], ValueError, ["empty batch"]),
        ("log_likelihood", X, Y, None, None),  # rows of 0.5, 0.5 sum to 1: a valid distribution
        ("log_likelihood", X, np.full((5, 2), 0.6), ValueError, ["row 0 of Y sums to", "one-hot", "np.eye"]),
        ("log_likelihood", X, np.full((5, 2), -0.5), ValueError, ["needs targets in [0, 1]"]),
    ]


@pytest.mark.parametrize("cost, X, Y, exc, fragments", data_cases())
def test_bad_data_is_named_with_a_fix(cost, X, Y, exc, fragments):
    net = net_with(cost=cost, output="softmax" if cost == "log_likelihood" else "sigmoid")
    for method in (net.loss, net.backprop):
        if exc is None:
            method(X, Y)
            continue
        with pytest.raises(exc) as info:
            method(X, Y)
        for fragment in fragments:
            assert fragment in str(info.value)


def test_weights_replaced_with_a_wrong_shape_are_caught_at_the_next_call():
    net, X, Y = problem()
    net.weights[1] = np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"weights\[1\] has shape \(4, 2\)"):
        net.backprop(X, Y)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("mode", ["raise", "warn", "ignore"])
def test_a_non_finite_input_is_named_whatever_numpy_does_with_errors(bad, mode):
    """backprop checks X through z¹ = XWᵀ + b; a zero weight column makes inf·0 = nan there, which must still be
    reported as X's fault, with no warning first (the suite turns warnings into errors) under any errstate."""
    net = net_with()
    net.weights[0][:, 1] = 0.0
    X, Y = np.ones((5, 3)), np.full((5, 2), 0.5)
    X[3, 1] = bad
    with np.errstate(all=mode), pytest.raises(ValueError) as info:
        net.backprop(X, Y)
    assert f"X[3, 1] = {bad!r}" in str(info.value)
