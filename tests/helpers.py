"""Small shared builders for the tests."""

from __future__ import annotations

import numpy as np

from gradcheck.audit import PAIRS, targets
from gradcheck.nn import Network

ACTIVATIONS = ["sigmoid", "tanh", "relu", "leaky_relu", "softplus", "identity"]
COMBINATIONS = [(act, out, cost) for act in ACTIVATIONS for out, cost in PAIRS]


def problem(activation="sigmoid", output="sigmoid", cost="cross_entropy", *, sizes=(3, 4, 2), batch=5, seed=0,
            l2=0.0, dtype="float64"):
    """A network with data valid for its cost, all from one seeded generator."""
    rng = np.random.default_rng(seed)
    net = Network(list(sizes), activation=activation, output=output, cost=cost, l2=l2, dtype=dtype, rng=rng)
    X = rng.standard_normal((batch, sizes[0]))
    return net, X, targets(net, batch, rng)


def combo_id(combo):
    return "-".join(combo)
