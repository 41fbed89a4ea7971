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


# σ′ written again from each activation's definition, independently of gradcheck.activations.
SIGMA_PRIME = {
    "sigmoid": lambda z: np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))) ** 2,
    "tanh": lambda z: 4 * np.exp(-2 * np.abs(z)) / (1 + np.exp(-2 * np.abs(z))) ** 2,
    "relu": lambda z: (z > 0) * 1.0,
    "leaky_relu": lambda z: np.where(z > 0, 1.0, 0.01),
    "softplus": lambda z: np.where(z > 0, 1 / (1 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z)))),
    "identity": lambda z: np.ones_like(z),
}


def rounding_scales(net, bp, Y):
    """Backprop run on absolute values: |a| + |y| at the output, then (|δˡ⁺¹| |Wˡ⁺¹|) ⊙ |σ′(zˡ)|, and the gradients they give.

    The rounding error of any entry is a few ulps of its scale here, not of its value: BP2 sums terms of both
    signs (a softmax δᴸ sums to zero), so a value can be far smaller than the terms it came from.
    """
    prime = SIGMA_PRIME[net.activation]
    # δᴸ is a − y (times σ′ ≤ 1, or a softmax product): its rounding is relative to |a| + |y|, not to |a − y|
    m = (np.abs(bp.activations[-1]) + np.abs(Y)).astype(np.float64)
    deltas = [m]
    for l in range(net.num_layers - 2, -1, -1):
        m = (m @ np.abs(net.weights[l + 1])) * np.abs(prime(bp.zs[l].astype(np.float64)))
        deltas.insert(0, m)
    n = len(bp.activations[0])
    grad_w = [d.T @ np.abs(a) / n + net.l2 / n * np.abs(w) for d, a, w in zip(deltas, bp.activations, net.weights)]
    return grad_w + [d.mean(axis=0) for d in deltas] + deltas
