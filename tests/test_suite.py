"""The kit: correct layers and networks pass every check; each planted bug fails the check that names it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import Phase, settings

from gradcheck.errors import InvalidArgument
from gradcheck.suite import FunctionLayer, NetworkAdapter, ObjectLayer, VJPLayer
from gradcheck.suite import layer_checks as _layer_checks
from gradcheck.suite import network_checks as _network_checks

# A planted bug fails at once; shrinking it would only make the suite slow. (Users keep shrinking.)
QUICK = settings(phases=[Phase.explicit, Phase.generate], database=None)


def layer_checks(spec):
    return _layer_checks(spec, examples=10, hypothesis=QUICK)


def network_checks(adapter):
    return _network_checks(adapter, examples=10, hypothesis=QUICK)


class Dense:
    """y = x Wᵀ + b in the object style; ``bug`` plants one realistic mistake."""

    def __init__(self, rng, bug=None, n_in=3, n_out=2):
        self.bug = bug
        self.params = {"W": rng.standard_normal((n_out, n_in)), "b": rng.standard_normal(n_out)}
        self.grads = {"W": np.zeros((n_out, n_in)), "b": np.zeros(n_out)}

    def forward(self, x):
        self.x = x
        return x @ self.params["W"].T + self.params["b"]

    def backward(self, dy):
        W = self.params["W"]
        gW, gb = dy.T @ self.x, dy.sum(axis=0)
        if self.bug == "accumulates":
            self.grads = {"W": self.grads["W"] + gW, "b": self.grads["b"] + gb}
        else:
            self.grads = {"W": gW, "b": gb}
        if self.bug == "bias gradient is a mean":
            self.grads["b"] = dy.mean(axis=0)
        if self.bug == "weight gradient transposed":
            self.grads["W"] = self.grads["W"].T
        if self.bug == "backward spoils its cache":
            self.x *= 0.5
        return dy @ (W.T if self.bug == "input gradient transposed" else W)

    def zero_grad(self):
        self.grads = {"W": np.zeros_like(self.grads["W"]), "b": np.zeros_like(self.grads["b"])}


def _run(checks):
    """name -> None when the check passed, else its message."""
    outcome = {}
    for check in checks:
        try:
            check()
        except AssertionError as error:
            outcome[str(check)] = str(error)
        else:
            outcome[str(check)] = None
    return outcome


def test_a_correct_object_layer_passes_every_check():
    outcome = _run(layer_checks(ObjectLayer(lambda rng: Dense(rng), input_shape=(3,))))
    assert set(outcome) == {
        "input gradient",
        "parameter gradients",
        "no accumulation across calls",
        "backward can run twice",
        "shapes and dtypes of every gradient",
        "rows are independent",
        "float32",
    }
    assert all(message is None for message in outcome.values()), outcome


@pytest.mark.parametrize(
    "bug, check, words",
    [
        ("input gradient transposed", "input gradient", "dX = backward(dY) disagrees"),
        ("bias gradient is a mean", "parameter gradients", "x['b']"),
        ("bias gradient is a mean", "rows are independent", "mean over the batch where ⟨dY, Y⟩ needs the sum"),
        ("accumulates", "no accumulation across calls", "gradients accumulate; declare accumulates=True"),
        ("backward spoils its cache", "backward can run twice", "changed its input or its cotangent in place"),
        ("weight gradient transposed", "shapes and dtypes of every gradient", "the transpose"),
    ],
)
def test_each_planted_layer_bug_fails_the_check_that_names_it(bug, check, words):
    square = bug == "input gradient transposed"  # dX with Wᵀ in place of W only fits a square W
    outcome = _run(layer_checks(ObjectLayer(lambda rng: Dense(rng, bug, n_out=3 if square else 2), input_shape=(3,))))
    assert outcome[check] is not None and words in outcome[check], outcome[check]


def test_an_accumulating_layer_that_declares_it_and_clears_passes():
    spec = ObjectLayer(lambda rng: Dense(rng, "accumulates"), input_shape=(3,), accumulates=True, clear="zero_grad")
    outcome = _run(layer_checks(spec))
    assert outcome["clearing gradient buffers"] is None and all(m is None for m in outcome.values()), outcome


def _dense_forward(x, W, b):
    return x @ W.T + b, (x, W)


def _dense_backward(dout, cache, bug=None):
    x, W = cache
    dx = dout @ W
    return dx, dout.T @ x, dout.sum(axis=0) * (2 if bug else 1)


def test_the_function_pair_style():
    def params(rng):
        return rng.standard_normal((2, 3)), rng.standard_normal(2)

    good = _run(layer_checks(FunctionLayer(_dense_forward, _dense_backward, params, input_shape=(3,))))
    assert all(m is None for m in good.values()), good
    bad = _run(
        layer_checks(
            FunctionLayer(_dense_forward, lambda d, c: _dense_backward(d, c, bug=True), params, input_shape=(3,))
        )
    )
    assert bad["parameter gradients"] is not None and bad["input gradient"] is None


def test_the_vjp_style_on_a_nonlinear_layer():
    def f(x, p):
        return np.tanh(x * p["s"])

    def vjp(x, p, dy):
        d = dy * (1 - np.tanh(x * p["s"]) ** 2)
        return d * p["s"], {"s": (d * x).sum(axis=0)}

    spec = VJPLayer(f, vjp, lambda rng: {"s": rng.standard_normal(4)}, input_shape=(4,))
    outcome = _run(layer_checks(spec))
    assert all(m is None for m in outcome.values()), outcome


def test_a_bad_declaration_is_refused():
    with pytest.raises(InvalidArgument, match="ObjectLayer, FunctionLayer or VJPLayer"):
        layer_checks(Dense)
    with pytest.raises(InvalidArgument, match=r"input_shape=3; give one example's shape as a tuple"):
        ObjectLayer(Dense, input_shape=3)
    with pytest.raises(InvalidArgument, match=r"accumulates=True needs clear="):
        ObjectLayer(Dense, input_shape=(3,), accumulates=True)
    with pytest.raises(TypeError, match="vjp must be callable"):
        VJPLayer(np.tanh, None, lambda rng: {}, input_shape=(2,))
    with pytest.raises(TypeError, match="backprop must be callable"):
        NetworkAdapter(build=lambda n: n, backprop="not a function")
    with pytest.raises(InvalidArgument, match="weights='columns'"):
        NetworkAdapter(build=lambda n: n, backprop=lambda *a: ([], []), weights="columns")


# -- networks: a Nielsen-style network, column vectors and a per-example backprop -----------------------------------
def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


class NielsenNet:
    def __init__(self, net, bug=None):
        self.sizes, self.cost, self.bug = net.sizes, net.cost, bug
        self.weights = [w.copy() for w in net.weights]
        self.biases = [b.reshape(-1, 1).copy() for b in net.biases]

    def backprop(self, x, y):
        activation, activations, zs = x, [x], []
        for w, b in zip(self.weights, self.biases):
            z = w @ activation + b
            zs.append(z)
            activation = _sigmoid(z)
            activations.append(activation)
        delta = activations[-1] - y
        if self.cost == "quadratic" and self.bug != "quadratic delta without sigma'":
            delta = delta * _sigmoid(zs[-1]) * (1 - _sigmoid(zs[-1]))
        deltas, nabla_b, nabla_w = [delta], [delta], [delta @ activations[-2].T]
        for l in range(2, len(self.sizes)):
            sp = _sigmoid(zs[-l]) * (1 - _sigmoid(zs[-l]))
            delta = (self.weights[-l + 1].T @ delta) * (1 if self.bug == "hidden delta without sigma'" else sp)
            deltas.insert(0, delta)
            nabla_b.insert(0, delta)
            nabla_w.insert(0, delta @ activations[-l - 1].T)
        if self.bug == "weights as (n_in, n_out)":
            nabla_w = [g.T for g in nabla_w]
        if self.bug == "negated":
            nabla_b, nabla_w = [-g for g in nabla_b], [-g for g in nabla_w]
        return nabla_b, nabla_w, deltas


def _adapter(bug=None, **conventions):
    return NetworkAdapter(
        build=lambda net: NielsenNet(net, bug),
        backprop=lambda mine, x, y: mine.backprop(x, y)[:2],
        deltas=lambda mine, x, y: mine.backprop(x, y)[2],
        **conventions,
    )


def test_a_correct_nielsen_network_passes_every_check():
    outcome = _run(network_checks(_adapter()))
    assert len(outcome) == 5 and all(m is None for m in outcome.values()), outcome


@pytest.mark.parametrize(
    "bug, check, words",
    [
        ("hidden delta without sigma'", "BP2: every hidden delta", "BP2 in hidden layer"),
        ("hidden delta without sigma'", "gradients match finite differences", "disagree with finite differences"),
        ("quadratic delta without sigma'", "BP1: the output delta", "(a − y) ⊙ σ′(zᴸ)"),
        (
            "quadratic delta without sigma'",
            "one output: quadratic deltas are σ′(zᴸ) times cross-entropy's",
            "differ only by that factor",
        ),
        ("weights as (n_in, n_out)", "gradients match finite differences", "declare weights='in_out'"),
        ("negated", "gradients match finite differences", "wrong sign"),
    ],
)
def test_each_planted_network_bug_fails_the_check_that_names_it(bug, check, words):
    outcome = _run(network_checks(_adapter(bug)))
    assert outcome[check] is not None and words in outcome[check], outcome[check]


def test_a_batch_sum_declared_as_a_mean_is_diagnosed():
    def batch_sum(mine, X, Y):
        parts = [mine.backprop(x.reshape(-1, 1), y.reshape(-1, 1)) for x, y in zip(X.T, Y.T)]
        L = len(mine.weights)
        return [sum(p[0][l] for p in parts) for l in range(L)], [sum(p[1][l] for p in parts) for l in range(L)]

    adapter = NetworkAdapter(build=NielsenNet, backprop=batch_sum, per_example=False, reduction="mean")
    outcome = _run(network_checks(adapter))
    assert "declare reduction='sum'" in outcome["gradients match finite differences"]
    right = NetworkAdapter(build=NielsenNet, backprop=batch_sum, per_example=False, reduction="sum")
    assert all(m is None for m in _run(network_checks(right)).values())


def _pool_forward(x):
    """Max over pairs of features: (batch, 4) -> (batch, 2), with the winners' places as the cache."""
    pairs = x.reshape(len(x), 2, 2)
    return pairs.max(axis=2), (x, pairs.argmax(axis=2))


def _pool_backward(route):
    def backward(dout, cache):
        x, idx = cache
        dx = np.zeros((len(x), 2, 2), dtype=x.dtype)
        if route == "first maximum":  # a valid subgradient at ties, as numpy's argmax picks
            np.put_along_axis(dx, idx[..., None], dout[..., None], axis=2)
        else:  # the bug: always the first of each pair, winner or not
            dx[:, :, 0] = dout
        return (dx.reshape(x.shape),)

    return backward


def test_a_max_pool_routing_ties_to_one_maximum_passes_and_a_misrouted_one_fails():
    tied = settings(QUICK, phases=[Phase.explicit, Phase.generate])
    good = _layer_checks(
        FunctionLayer(_pool_forward, _pool_backward("first maximum"), lambda rng: (), input_shape=(4,)),
        examples=40,
        hypothesis=tied,
    )
    assert all(message is None for message in _run(good).values()), _run(good)
    bad = layer_checks(FunctionLayer(_pool_forward, _pool_backward("first of pair"), lambda rng: (), input_shape=(4,)))
    assert _run(bad)["input gradient"] is not None


def _selu_forward(x):
    a, lam = 1.6732632423543772, 1.0507009873554805
    return (lam * np.where(x > 0, x, a * np.expm1(np.minimum(x, 0)))).astype(x.dtype), (x,)


def _selu_backward(dout, cache):
    (x,) = cache
    a, lam = 1.6732632423543772, 1.0507009873554805
    return ((dout * lam * np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0)))).astype(x.dtype),)


def test_a_correct_selu_passes_in_float32_too_whatever_is_drawn():
    checks = _layer_checks(
        FunctionLayer(_selu_forward, _selu_backward, lambda rng: (), input_shape=(5,)), examples=60, hypothesis=QUICK
    )
    assert all(message is None for message in _run(checks).values()), _run(checks)
