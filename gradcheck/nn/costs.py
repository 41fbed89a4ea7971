"""Costs C_x per example, each with its output-layer error δᴸ = ∂C_x/∂zᴸ beside it.

``fn(z, a, y)`` returns C_x for each row, shape ``(batch,)`` (cross-entropy also takes stacked z of shape
``(..., batch, n_out)`` with y broadcast, and sums over the last axis); ``delta(output, z, a, y, cache=None)``
returns δᴸ, shape ``(batch, n_out)``, where ``cache`` is what ``output.forward(z)`` returned beside a (it saves
recomputing σ(−z)). Where σ′ cancels (cross-entropy after a sigmoid, log-likelihood after a softmax) the cost
computes both from the logits z, which stays finite when a rounds to exactly 0 or 1.
"""

from __future__ import annotations

import numpy as np

from gradcheck.nn.activations import Activation

__all__ = ["COSTS", "PAIRS", "Cost", "CrossEntropy", "LogLikelihood", "Quadratic"]


class Cost:
    name = ""
    outputs: tuple[str, ...] = ()  # output activations this cost is defined for

    def fn(self, z: np.ndarray, a: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def delta(
        self, output: Activation, z: np.ndarray, a: np.ndarray, y: np.ndarray, cache: np.ndarray | None = None
    ) -> np.ndarray:
        raise NotImplementedError

    def targets(self, rng: np.random.Generator, batch: int, n_out: int) -> np.ndarray:
        """Random targets of shape (batch, n_out) in the range this cost is defined on: any real number here."""
        result: np.ndarray = rng.standard_normal((batch, n_out))
        return result

    def __repr__(self) -> str:
        return f"<cost {self.name!r}>"


class Quadratic(Cost):
    """C_x = ½‖a − y‖²; ∇ₐC_x = a − y, so BP1 gives δᴸ = (a − y) ⊙ σ′(zᴸ) and σ′ stays."""

    name = "quadratic"
    outputs = ("sigmoid", "softmax", "identity")

    def fn(self, z: np.ndarray, a: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        d = a - y
        result: np.ndarray = 0.5 * np.einsum("ij,ij->i", d, d)
        return result

    def delta(
        self, output: Activation, z: np.ndarray, a: np.ndarray, y: np.ndarray, cache: np.ndarray | None = None
    ) -> np.ndarray:
        return output.backward(z, a, cache, a - y)


class CrossEntropy(Cost):
    """C_x = −Σ[y ln a + (1 − y) ln(1 − a)] with a = σ(z), computed as Σ[softplus(z) − y z].

    ∇ₐC_x = (a − y)/(a(1 − a)) and σ′(z) = a(1 − a) cancel: δᴸ = a − y (Nielsen eq. 66).
    """

    name = "cross_entropy"
    outputs = ("sigmoid",)

    def targets(self, rng: np.random.Generator, batch: int, n_out: int) -> np.ndarray:
        """Targets in [0, 1], the range cross-entropy is defined on."""
        result: np.ndarray = rng.uniform(0, 1, (batch, n_out))
        return result

    def fn(self, z: np.ndarray, a: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        # max(z, 0) − y·z written without cancellation: (1 − y)·z for z > 0 and −y·z otherwise, so that a confident,
        # correct output keeps its small cost to full relative precision.
        # In place: z·([z > 0] − y) + ln(1 + e^−|z|), summed over the last axis by a product with ones (a short
        # axis sums about 3× faster that way than by a reduction).
        t = np.abs(z)
        np.negative(t, out=t)
        np.exp(t, out=t)
        np.log1p(t, out=t)
        linear = np.subtract(z > 0, y, dtype=t.dtype)
        linear *= z
        t += linear
        result: np.ndarray = t @ np.ones(t.shape[-1], dtype=t.dtype)
        return result

    def delta(
        self, output: Activation, z: np.ndarray, a: np.ndarray, y: np.ndarray, cache: np.ndarray | None = None
    ) -> np.ndarray:
        # a − y = (1 − y)·σ(z) − y·σ(−z): for a confident output (a rounding to 1) the subtraction a − y would lose
        # every digit of the small error; this form keeps them. The sigmoid's forward pass cached σ(−z).
        delta = 1 - y
        delta *= a
        delta -= y * (cache if cache is not None else 1.0 / (1.0 + np.exp(z)))
        return delta


class LogLikelihood(Cost):
    """C_x = −ln a_y with a = softmax(z), computed as logsumexp(z) − ⟨y, z⟩ (rows of y sum to 1).

    The softmax Jacobian cancels against ∇ₐC_x: δᴸ = a − y (Nielsen eq. 84).
    """

    name = "log_likelihood"
    outputs = ("softmax",)

    def targets(self, rng: np.random.Generator, batch: int, n_out: int) -> np.ndarray:
        """One-hot rows: a label per example."""
        result: np.ndarray = np.eye(n_out)[rng.integers(0, n_out, batch)]
        return result

    def fn(self, z: np.ndarray, a: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        # With s = z − max(z): logsumexp(z) − ⟨y, z⟩ = ln(1 + Σ_{j ≠ argmax} e^sⱼ) − ⟨y, s⟩. Both terms are small when
        # the prediction is confident and right, so the cost keeps its relative precision instead of being the
        # difference of two large numbers.
        s = z - z.max(axis=1, keepdims=True)
        e = np.exp(s)
        e[np.arange(len(s)), np.argmax(s, axis=1)] = 0.0
        result: np.ndarray = np.log1p(e.sum(axis=1)) - np.einsum("ij,ij->i", y, s)
        return result

    def delta(
        self, output: Activation, z: np.ndarray, a: np.ndarray, y: np.ndarray, cache: np.ndarray | None = None
    ) -> np.ndarray:
        # a − y = (1 − y)·a − y·(1 − a), with 1 − a at the row's largest logit computed from the other terms,
        # e^{s_j} summed over j ≠ argmax: there 1 − a would otherwise round to the noise of a ≈ 1.
        s = z - z.max(axis=1, keepdims=True)
        e = np.exp(s)
        rows, top = np.arange(len(s)), np.argmax(s, axis=1)
        total = e.sum(axis=1)
        e[rows, top] = 0.0
        one_minus_a = 1 - a
        one_minus_a[rows, top] = e.sum(axis=1) / total
        result: np.ndarray = (1 - y) * a - y * one_minus_a
        return result


#: The costs, by name.
COSTS: dict[str, Cost] = {c.name: c for c in (Quadratic(), CrossEntropy(), LogLikelihood())}
#: Every valid (output activation, cost) pair.
PAIRS = [(output, cost) for cost, c in COSTS.items() for output in c.outputs]
