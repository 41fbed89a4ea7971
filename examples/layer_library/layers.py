"""Three layers in the object style: forward(X) caches what backward(dY) needs; parameters and gradients live in
dicts. Rows are examples. Written for this example, to be tested by gradcheck's kit as a user's own code."""

from __future__ import annotations

import numpy as np


class Linear:
    def __init__(self, n_in, n_out, *, rng):
        self.params = {"W": rng.standard_normal((n_out, n_in)) / np.sqrt(n_in), "b": np.zeros(n_out)}
        self.grads = {}

    def forward(self, X):
        self.X = X
        return X @ self.params["W"].T + self.params["b"]

    def backward(self, dY):
        self.grads = {"W": dY.T @ self.X, "b": dY.sum(axis=0)}
        return dY @ self.params["W"]


class Tanh:
    def __init__(self):
        self.params, self.grads = {}, {}

    def forward(self, X):
        self.Y = np.tanh(X)
        return self.Y

    def backward(self, dY):
        return dY * (1 - self.Y**2)


class RMSNorm:
    """x / sqrt(mean(x²) + eps) · g, per row."""

    def __init__(self, n, *, rng, eps=1e-6):
        self.params = {"g": 1 + 0.1 * rng.standard_normal(n)}
        self.eps, self.grads = eps, {}

    def forward(self, X):
        self.X = X
        self.r = 1 / np.sqrt((X * X).mean(axis=1, keepdims=True) + self.eps)
        return X * self.r * self.params["g"]

    def backward(self, dY):
        X, r, g = self.X, self.r, self.params["g"]
        self.grads = {"g": (dY * X * r).sum(axis=0)}
        dXn = dY * g
        return r * dXn - X * r**3 * (dXn * X).mean(axis=1, keepdims=True)
