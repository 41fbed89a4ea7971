"""Backprop one example at a time, as in Nielsen's network2.py: the loop the vectorised version replaces.

It shares the activation and cost objects with :mod:`gradcheck.nn` but none of its batching: each example is a
(1, n) row, gradients are accumulated as ``nabla_w`` / ``nabla_b`` and averaged at the end. The tests use it to show
that the matrix form changes nothing; the benchmarks use it to show what the matrix form gains.
"""

from __future__ import annotations

import numpy as np

from gradcheck.nn.network import QUIET, Backprop, Network

__all__ = ["backprop_loop"]


def backprop_loop(net: Network, X: np.ndarray, Y: np.ndarray) -> Backprop:
    """Same result as ``net.backprop(X, Y)``, computed with a Python loop over the rows of X.

    >>> import numpy as np
    >>> from gradcheck.nn import Network
    >>> rng = np.random.default_rng(0)
    >>> net = Network([3, 4, 2], rng=rng)
    >>> X, Y = rng.standard_normal((6, 3)), rng.uniform(0, 1, (6, 2))
    >>> loop, fast = backprop_loop(net, X, Y), net.backprop(X, Y)
    >>> all(np.allclose(a, b, rtol=1e-12) for a, b in zip(loop.grad_w, fast.grad_w))
    True
    """
    X, Y = net.validate_batch(X, Y)
    act, out, cost = net.hidden_activation, net.output_activation, net.cost_function
    L, n = net.num_layers, len(X)
    nabla_w = [np.zeros_like(w) for w in net.weights]
    nabla_b = [np.zeros_like(b) for b in net.biases]
    per_example: list[tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]] = []
    with np.errstate(**QUIET):  # as Network.backprop computes
        for x, y in zip(X, Y):
            activation = x[None, :]
            activations, zs = [activation], []
            for l, (w, b) in enumerate(zip(net.weights, net.biases)):
                z = np.dot(activation, w.T) + b
                activation = (out if l == L - 1 else act).fn(z)
                zs.append(z)
                activations.append(activation)
            delta = cost.delta(out, zs[-1], activations[-1], y[None, :])
            deltas = [delta]
            nabla_b[-1] += delta[0]
            nabla_w[-1] += np.outer(delta[0], activations[-2][0])
            for l in range(2, L + 1):  # the book's negative indices: -l is l-th layer from the end
                delta = np.dot(delta, net.weights[-l + 1]) * act.prime(zs[-l], activations[-l])
                deltas.insert(0, delta)
                nabla_b[-l] += delta[0]
                nabla_w[-l] += np.outer(delta[0], activations[-l - 1][0])
            per_example.append((zs, activations, deltas))
    grad_w = [nw / n + (net.l2 / n) * w for nw, w in zip(nabla_w, net.weights)]
    grad_b = [nb / n for nb in nabla_b]

    def stack(k: int, i: int) -> np.ndarray:
        return np.concatenate([ex[k][i] for ex in per_example])

    return Backprop(
        zs=[stack(0, l) for l in range(L)],
        activations=[stack(1, l) for l in range(L + 1)],
        deltas=[stack(2, l) for l in range(L)],
        grad_w=grad_w,
        grad_b=grad_b,
    )
