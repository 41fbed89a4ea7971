"""An independent oracle: the same networks written only as forward maps, differentiated by the complex step.

f′(x) = Im f(x + i·t)/t with t = 1e-30 has no cancellation, so it is exact to rounding for every function that is
analytic along the path. Nothing here shares code with gradcheck.nn: the forward pass, the costs and the
activations are written again from their definitions, and no derivative formula appears anywhere.
"""

from __future__ import annotations

import numpy as np

T = 1e-30


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _relu(z):
    return np.where(z.real > 0, z, 0 * z)


def _leaky(z):
    return np.where(z.real > 0, z, 0.01 * z)


def _softplus(z):
    return np.log(1 + np.exp(z))


def _softmax(z):
    e = np.exp(z - z.real.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


HIDDEN = {
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "relu": _relu,
    "leaky_relu": _leaky,
    "softplus": _softplus,
    "identity": lambda z: z,
}
OUTPUT = {"sigmoid": _sigmoid, "softmax": _softmax, "identity": lambda z: z}


def per_example_cost(cost, z, a, y):
    if cost == "quadratic":
        return 0.5 * ((a - y) ** 2).sum(axis=1)
    if cost == "cross_entropy":
        return -(y * np.log(a) + (1 - y) * np.log(1 - a)).sum(axis=1)
    # log-likelihood: −ln a_y for one-hot y
    return -(y * np.log(a)).sum(axis=1)


def forward(net, weights, biases, X, Y, perturb=None):
    """Per-example costs (complex); ``perturb = (layer, dz)`` adds dz to that layer's z."""
    a = X.astype(complex)
    L = len(weights)
    z = None
    for l, (W, b) in enumerate(zip(weights, biases)):
        z = a @ W.T + b
        if perturb is not None and perturb[0] == l:
            z = z + perturb[1]
        a = (OUTPUT[net.output] if l == L - 1 else HIDDEN[net.activation])(z)
    return per_example_cost(net.cost, z, a, Y)


def loss(net, weights, biases, X, Y):
    c = forward(net, weights, biases, X, Y).mean()
    return c + 0.5 * net.l2 / len(X) * sum((W * W).sum() for W in weights)


def gradients(net, X, Y):
    """(grad_w, grad_b) of the mean loss, one complex-step derivative per parameter."""
    ws = [w.astype(complex) for w in net.weights]
    bs = [b.astype(complex) for b in net.biases]
    out = []
    for params in (ws, bs):
        grads = []
        for p in params:
            g = np.empty(p.shape)
            for i in np.ndindex(p.shape):
                p[i] += 1j * T
                g[i] = loss(net, ws, bs, X, Y).imag / T
                p[i] -= 1j * T
            grads.append(g)
        out.append(grads)
    return out[0], out[1]


def deltas(net, X, Y):
    """δˡ = ∂C_x/∂zˡ per example, by perturbing one unit of one example's zˡ."""
    ws = [w.astype(complex) for w in net.weights]
    bs = [b.astype(complex) for b in net.biases]
    result = []
    for l, n in enumerate(net.sizes[1:]):
        d = np.empty((len(X), n))
        for x in range(len(X)):
            for j in range(n):
                dz = np.zeros((len(X), n), dtype=complex)
                dz[x, j] = 1j * T
                d[x, j] = forward(net, ws, bs, X, Y, (l, dz))[x].imag / T
        result.append(d)
    return result
