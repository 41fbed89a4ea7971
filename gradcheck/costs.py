"""Costs C_x per example, each with its output-layer error δᴸ = ∂C_x/∂zᴸ beside it.

``fn(z, a, y)`` returns C_x for each row, shape ``(batch,)``; ``delta(output, z, a, y)`` returns δᴸ, shape
``(batch, n_out)``. Where σ′ cancels (cross-entropy after a sigmoid, log-likelihood after a softmax) the cost
computes both from the logits z, which stays finite when a rounds to exactly 0 or 1.
"""

from __future__ import annotations

import numpy as np

from gradcheck.activations import Activation


class Cost:
    name = ""
    outputs: tuple[str, ...] = ()  # output activations this cost is defined for

    def fn(self, z: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def delta(self, output: Activation, z: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<cost {self.name!r}>"


class Quadratic(Cost):
    """C_x = ½‖a − y‖²; ∇ₐC_x = a − y, so BP1 gives δᴸ = (a − y) ⊙ σ′(zᴸ) and σ′ stays."""

    name = "quadratic"
    outputs = ("sigmoid", "softmax", "identity")

    def fn(self, z: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        d = a - y
        return 0.5 * np.einsum("ij,ij->i", d, d)

    def delta(self, output: Activation, z: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        return output.vjp(z, a, a - y)


class CrossEntropy(Cost):
    """C_x = −Σ[y ln a + (1 − y) ln(1 − a)] with a = σ(z), computed as Σ[softplus(z) − y z].

    ∇ₐC_x = (a − y)/(a(1 − a)) and σ′(z) = a(1 − a) cancel: δᴸ = a − y (Nielsen eq. 66).
    """

    name = "cross_entropy"
    outputs = ("sigmoid",)

    def fn(self, z: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        softplus = np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))
        return np.sum(softplus - y * z, axis=1)

    def delta(self, output: Activation, z: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        return a - y


class LogLikelihood(Cost):
    """C_x = −ln a_y with a = softmax(z), computed as logsumexp(z) − ⟨y, z⟩ (rows of y sum to 1).

    The softmax Jacobian cancels against ∇ₐC_x: δᴸ = a − y (Nielsen eq. 84).
    """

    name = "log_likelihood"
    outputs = ("softmax",)

    def fn(self, z: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        m = z.max(axis=1)
        lse = m + np.log(np.sum(np.exp(z - m[:, None]), axis=1))
        return lse - np.einsum("ij,ij->i", y, z)

    def delta(self, output: Activation, z: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        return a - y


COSTS: dict[str, Cost] = {c.name: c for c in (Quadratic(), CrossEntropy(), LogLikelihood())}
