"""A dense layer and a softmax + log-likelihood head, each with a forward and a hand-written backward.

Shapes: x (batch, n_in), W (n_out, n_in), b (n_out,), logits (batch, n_classes), labels (batch,) integers.
"""

from __future__ import annotations

import numpy as np


class Dense:
    """y = x Wᵀ + b."""

    def __init__(self, n_in: int, n_out: int, *, rng: np.random.Generator) -> None:
        self.params = {"W": rng.standard_normal((n_out, n_in)) / np.sqrt(n_in), "b": np.zeros(n_out)}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.params["W"].T + self.params["b"]

    def backward(self, dy: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(dL/dx, {'W': dL/dW, 'b': dL/db}) given dL/dy."""
        return dy @ self.params["W"], {"W": dy.T @ self.x, "b": dy.sum(axis=0)}


class SoftmaxLogLikelihood:
    """Mean over the batch of −ln softmax(logits)[label]."""

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        shifted = logits - logits.max(axis=1, keepdims=True)
        self.p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        self.labels = labels
        return float(-np.mean(shifted[np.arange(len(labels)), labels] - np.log(np.exp(shifted).sum(axis=1))))

    def backward(self) -> np.ndarray:
        d = self.p.copy()
        d[np.arange(len(self.labels)), self.labels] -= 1
        return d / len(self.labels)
