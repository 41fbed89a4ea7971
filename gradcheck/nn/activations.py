"""Activation functions, each with its derivative beside it.

Every activation maps ``z`` of shape ``(batch, n)`` to ``a`` of the same shape. ``prime(z, a)`` is σ′(z); it is given
both z and the cached a = σ(z). It keeps full relative precision in saturation: the textbook σ′ = a(1 − a) and
1 − a² cancel catastrophically once a rounds near 1 (in float32 at z = 10 the relative error is already 1e-3), so
sigmoid uses σ(z)·σ(−z) and tanh 1/cosh²(z).
``vjp(z, a, g)`` is the vector–Jacobian product gᵀ ∂a/∂z, which is g ⊙ σ′(z) for element-wise activations and the
full Jacobian product for softmax.

Network runs these inside ``np.errstate(**gradcheck.nn.QUIET)``: exp overflowing to inf or underflowing to 0 gives the
right limit here (σ(−800) = 0); divisions by zero still raise.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

__all__ = ["HIDDEN", "OUTPUTS", "Activation", "Identity", "LeakyReLU", "ReLU", "Sigmoid", "Softmax", "Softplus", "Tanh"]


class Activation:
    """An element-wise activation σ with σ′ beside it; subclasses define ``fn`` and ``prime``.

    Everything the package knows about an activation lives on its class: σ, σ′, the vector–Jacobian product, the
    cached forward/backward pair the network uses, the cancellation-free change σ(z + c) − σ(z), and ``kink``.

    >>> import numpy as np
    >>> sigmoid = HIDDEN["sigmoid"]
    >>> z = np.array([[0.0, 40.0]])
    >>> float(sigmoid.prime(z, sigmoid.fn(z))[0, 0]), HIDDEN["relu"].kink, sigmoid.kink
    (0.25, True, False)
    >>> bool(sigmoid.change(z, 1e-30)[0, 1] > 0)        # σ(40 + 1e-30) − σ(40) rounds to 0; the change does not
    True
    """

    name = ""
    elementwise = True
    kink = False  # whether σ′ jumps somewhere (at z = 0 for the ReLUs): finite differences must not straddle it

    def fn(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def prime(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def vjp(self, z: np.ndarray, a: np.ndarray, g: np.ndarray) -> np.ndarray:
        """gᵀ ∂a/∂z for each example: g ⊙ σ′(z) (BP1's form)."""
        result: np.ndarray = g * self.prime(z, a)
        return result

    def change(self, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        """σ(z + c) − σ(z), written without cancellation where σ allows it, so that it keeps full relative precision
        however small c is (the structured network check interpolates it). This default subtracts."""
        return np.asarray(self.fn(z + c) - self.fn(z))

    # The fast path used by Network.backprop: the forward pass keeps a cache from which σ′ costs no transcendental
    # function, and the backward pass multiplies σ′ into a product it owns, in place.
    def forward(self, z: np.ndarray, guard: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """``(a, cache)``: a = σ(z) and whatever makes σ′ cheap in :meth:`backward` (None if nothing does).

        With ``guard=False`` the cache may hold nan where z is extreme (a is always right): for callers that check
        their result once and recompute with the guard, instead of paying for it at every layer."""
        return self.fn(z), None

    def backward(self, z: np.ndarray, a: np.ndarray, cache: np.ndarray | None, g: np.ndarray) -> np.ndarray:
        """g ⊙ σ′(z), overwriting g (a fresh array the caller owns)."""
        g *= self.prime(z, a)
        return g

    def __repr__(self) -> str:
        return f"<activation {self.name!r}>"


class Sigmoid(Activation):
    """σ(z) = eᶻ/(1 + eᶻ). The forward pass computes σ(−z) = 1/(1 + eᶻ) first and σ(z) = eᶻ·σ(−z) from it, and
    caches σ(−z), so σ′ = σ(z)·σ(−z) costs two products and keeps full precision where a(1 − a) would cancel. Taking
    e^{+z} rather than e^{−z} saves the negation: four passes over z instead of five.

    eᶻ is computed from min(z, CAP) so that it never overflows (inf·0 would be nan): above z = CAP, σ(−z) is already
    under the dtype's smallest normal number and stays there (about 1e-308 in float64 instead of 0), and σ(z) rounds
    to 1. Where z is very negative, eᶻ underflows to 0 and gives the exact limits σ(z) = 0, σ(−z) = 1.
    """

    name = "sigmoid"
    CAP: ClassVar[dict[np.dtype, float]] = {
        np.dtype(np.float64): 709.0,
        np.dtype(np.float32): 88.0,
        np.dtype(np.float16): 11.0,
    }

    def fn(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z)
        return self.forward(z.reshape(1))[0][0] if z.ndim == 0 else self.forward(z)[0]

    def prime(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        result: np.ndarray = a / (1.0 + np.exp(z))  # σ(z)·σ(−z); exp overflowing to inf gives the right limit, 0
        return result

    def change(self, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        result: np.ndarray = -np.expm1(-c) * self.fn(z + c) * self.fn(-z)  # (1 − e^{−c})·σ(z + c)·σ(−z)
        return result

    def forward(self, z: np.ndarray, guard: bool = True) -> tuple[np.ndarray, np.ndarray]:
        if guard:
            cap = self.CAP.get(z.dtype, 709.0)
            if np.maximum.reduce(z, axis=None) > cap:  # rare, and a reduction is cheaper than clipping every time
                z = np.minimum(z, cap)
        a = np.exp(z)  # eᶻ, a new float array also for a 0-d or integer z (inf without the guard
        s = a + 1.0  # where z > CAP: then σ(z) below is inf·0 = nan)
        np.reciprocal(s, out=s)  # σ(−z) = 1/(1 + eᶻ)
        a *= s  # σ(z) = eᶻ·σ(−z)
        return a, s

    def backward(self, z: np.ndarray, a: np.ndarray, cache: np.ndarray | None, g: np.ndarray) -> np.ndarray:
        if cache is None:
            return super().backward(z, a, cache, g)
        g *= a
        g *= cache  # g ⊙ σ(z)σ(−z)
        return g


class Tanh(Activation):
    name = "tanh"

    def fn(self, z: np.ndarray) -> np.ndarray:
        result: np.ndarray = np.tanh(z)
        return result

    def prime(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        c = np.cosh(z)
        result: np.ndarray = 1.0 / (c * c)
        return result

    def change(self, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        result: np.ndarray = np.sinh(c) / (np.cosh(z) * np.cosh(z + c))
        return result


class ReLU(Activation):
    """max(z, 0); σ′(0) is taken as 0 (any value in [0, 1] is a subgradient)."""

    name = "relu"
    kink = True

    def fn(self, z: np.ndarray) -> np.ndarray:
        result: np.ndarray = np.maximum(z, 0.0)
        return result

    def prime(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return (z > 0).astype(z.dtype)

    def backward(self, z: np.ndarray, a: np.ndarray, cache: np.ndarray | None, g: np.ndarray) -> np.ndarray:
        np.multiply(g, z > 0, out=g)
        return g

    def change(self, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        result: np.ndarray = np.where(
            z > 0, np.maximum(c, -z), np.maximum(z + c, 0)
        )  # exactly c while the unit stays active
        return result


class LeakyReLU(Activation):
    """z for z > 0, ``slope``·z otherwise; σ′(0) is taken as ``slope``."""

    name = "leaky_relu"
    kink = True
    slope = 0.01

    def fn(self, z: np.ndarray) -> np.ndarray:
        return np.where(z > 0, z, self.slope * z)

    def prime(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return np.where(z > 0, 1.0, self.slope).astype(z.dtype)

    def change(self, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        k = self.slope
        return np.where(z > 0, np.where(z + c > 0, c, k * (z + c) - z), np.where(z + c > 0, z + c - k * z, k * c))


class Softplus(Activation):
    """ln(1 + eᶻ), written as max(z, 0) + ln(1 + exp(−abs(z))) so that it never overflows."""

    name = "softplus"

    def fn(self, z: np.ndarray) -> np.ndarray:
        result: np.ndarray = np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))
        return result

    def prime(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        result: np.ndarray = 1.0 / (1.0 + np.exp(-z))
        return result

    def change(self, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        result: np.ndarray = np.log1p(1.0 / (1.0 + np.exp(-z)) * np.expm1(c))  # ln(1 + σ(z)(eᶜ − 1))
        return result


class Identity(Activation):
    name = "identity"

    def fn(self, z: np.ndarray) -> np.ndarray:
        return z

    def prime(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return np.ones_like(z)

    def vjp(self, z: np.ndarray, a: np.ndarray, g: np.ndarray) -> np.ndarray:
        return g

    def change(self, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        result: np.ndarray = c + 0 * z
        return result

    def backward(self, z: np.ndarray, a: np.ndarray, cache: np.ndarray | None, g: np.ndarray) -> np.ndarray:
        return g


class Softmax(Activation):
    """aⱼ = e^zⱼ / Σₖ e^zₖ per example, shifted by the row maximum so that e^z never overflows.

    Not element-wise: ∂aⱼ/∂zₖ = aⱼ(δⱼₖ − aₖ), so the vector–Jacobian product is a ⊙ (g − ⟨g, a⟩), not g ⊙ a(1 − a).
    Output layer only; the product costs O(n_out²) per example, which only the quadratic cost pays.
    """

    name = "softmax"
    elementwise = False

    def fn(self, z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        result: np.ndarray = e / e.sum(axis=1, keepdims=True)
        return result

    def prime(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        raise TypeError("softmax has no element-wise derivative; use vjp(z, a, g)")

    def backward(self, z: np.ndarray, a: np.ndarray, cache: np.ndarray | None, g: np.ndarray) -> np.ndarray:
        return self.vjp(z, a, g)

    def change(self, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        """softmax(z + c) − softmax(z) over the last axis: a ⊙ (e^c − 1 − s)/(1 + s) with s = Σₖ aₖ(e^{cₖ} − 1),
        which keeps relative precision however small c is."""
        shifted = np.exp(z - z.max(axis=-1, keepdims=True))
        a = shifted / shifted.sum(axis=-1, keepdims=True)
        e = np.expm1(c)
        s = (a * e).sum(axis=-1, keepdims=True)
        result: np.ndarray = a * (e - s) / (1 + s)
        return result

    def vjp(self, z: np.ndarray, a: np.ndarray, g: np.ndarray) -> np.ndarray:
        # g − ⟨g, a⟩ = Σₖ aₖ(g − gₖ) because Σₖ aₖ = 1. The pairwise differences are exact when the g's are close,
        # where g − ⟨g, a⟩ would cancel (a near-uniform softmax under the quadratic cost loses every digit).
        result: np.ndarray = a * np.einsum("bk,bjk->bj", a, g[:, :, None] - g[:, None, :])
        return result


#: The hidden-layer activations, by name.
HIDDEN: dict[str, Activation] = {
    act.name: act for act in (Sigmoid(), Tanh(), ReLU(), LeakyReLU(), Softplus(), Identity())
}
#: The output-layer activations, by name.
OUTPUTS: dict[str, Activation] = {act.name: act for act in (HIDDEN["sigmoid"], Softmax(), HIDDEN["identity"])}
