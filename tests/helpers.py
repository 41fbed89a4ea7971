"""Small shared builders for the tests."""

from __future__ import annotations

import numpy as np

from gradcheck.nn.costs import PAIRS
from gradcheck.nn.network import Network

ACTIVATIONS = ["sigmoid", "tanh", "relu", "leaky_relu", "softplus", "identity"]
COMBINATIONS = [(act, out, cost) for act in ACTIVATIONS for out, cost in PAIRS]


def problem(
    activation="sigmoid",
    output="sigmoid",
    cost="cross_entropy",
    *,
    sizes=(3, 4, 2),
    batch=5,
    seed=0,
    l2=0.0,
    dtype="float64",
):
    """A network with data valid for its cost, all from one seeded generator."""
    rng = np.random.default_rng(seed)
    net = Network(list(sizes), activation=activation, output=output, cost=cost, l2=l2, dtype=dtype, rng=rng)
    X = rng.standard_normal((batch, sizes[0]))
    return net, X, net.cost_function.targets(rng, batch, net.sizes[-1])


def combo_id(combo):
    return "-".join(combo)


# σ′ written again from each activation's definition, independently of gradcheck.nn.activations.
SIGMA_PRIME = {
    "sigmoid": lambda z: np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))) ** 2,
    "tanh": lambda z: 4 * np.exp(-2 * np.abs(z)) / (1 + np.exp(-2 * np.abs(z))) ** 2,
    "relu": lambda z: (z > 0) * 1.0,
    "leaky_relu": lambda z: np.where(z > 0, 1.0, 0.01),
    "softplus": lambda z: np.where(z > 0, 1 / (1 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z)))),
    "identity": lambda z: np.ones_like(z),
}


def rounding_scales(net, bp, Y):
    """How large the rounding error of each gradient and delta can be, in units of the dtype's rounding: backprop
    run on absolute values, with the forward pass's rounding carried along.

    The rounding error of an entry is a few ulps of its scale here, not of its value, for two reasons:
    - BP2 sums terms of both signs (a softmax δᴸ sums to zero), so a δ can be far smaller than the terms it came from:
      |a| + |y| at the output, then (|δˡ⁺¹| |Wˡ⁺¹|) ⊙ |σ′(zˡ)|;
    - z = Wa + b cancels too, so z (and a, and through them every δ) can be off by a few ulps of |W||a| + |b| rather
      than of |z|: a batch of one and a batch of two may round the same z differently. That error is carried
      forward through σ′ and backward through |σ″| ≤ 1 (every activation here) and |∂δᴸ/∂zᴸ| ≤ 1 (every cost).
    """
    prime = SIGMA_PRIME[net.activation]
    L, n = net.num_layers, len(bp.activations[0])
    W = [np.abs(w).astype(np.float64) for w in net.weights]
    A = [np.abs(a).astype(np.float64) for a in bp.activations]
    zs = [z.astype(np.float64) for z in bp.zs]
    a_err, z_err = [np.zeros_like(A[0])], []  # X is given exactly
    for l in range(L):
        z_err.append(A[l] @ W[l].T + np.abs(net.biases[l]) + a_err[l] @ W[l].T)
        spread = np.abs(prime(zs[l])) if l < L - 1 else 1.0  # output activations: |∂a/∂z| ≤ 1
        a_err.append(spread * z_err[l] + A[l + 1])
    m = A[-1] + np.abs(Y).astype(np.float64) + z_err[-1]
    deltas = [m]
    for l in range(L - 2, -1, -1):
        m = (m @ W[l + 1]) * np.abs(prime(zs[l])) + (np.abs(bp.deltas[l + 1]) @ W[l + 1]) * z_err[l]
        deltas.insert(0, m)
    grad_w = [(d.T @ A[l] + np.abs(bp.deltas[l]).T @ a_err[l]) / n + net.l2 / n * W[l] for l, d in enumerate(deltas)]
    return grad_w + [d.mean(axis=0) for d in deltas] + deltas


def unresolvable(report, leaf):
    """Elements whose derivative no finite difference in their dtype can resolve to 5%: below 10⁴ times the
    rounding of f per unit step (the largest step an element gets is at least 1)."""
    a = np.abs(leaf.analytic.astype(np.float64))
    return a < 1e4 * report.noise


def assert_correct_verdict(report, context="", *, kinks_within_reach=False):
    """What a correct gradient must get: no broken invariant, no failed element, and inconclusive elements only
    where the derivative is too small for any finite difference in that dtype to resolve (or, where kinks lie
    within every usable step, anywhere)."""
    __tracebackhide__ = True
    assert not report.problems, f"{context}\n{report}"
    for leaf in report.leaves:
        assert not leaf.failed.any(), f"{context}\n{report}"
        if not kinks_within_reach:
            assert not (leaf.inconclusive & ~unresolvable(report, leaf)).any(), f"{context}\n{report}"
