"""The adversary's generator: separable functions built from pieces placed at random distances from x.

Each element xᵢ of one leaf gets its own piece φᵢ, so that f(x) = Σᵢ φᵢ(xᵢ) + γ·Σᵢ xᵢ² has an exactly known
derivative. A piece is a smooth map, or a map with a feature at p = xᵢ + d·hᵢ, where hᵢ is the step the checker
documents (eps^(1/3) times abs(xᵢ), or 1 at 0) and d is drawn from inside the stencil to far away: a pole, a jump,
a kink, a flat stretch (a dead ReLU), a quantised map (rounded to a grid coarser than float64's), a map computed
in float32 inside float64, and one whose argument is rounded to float32 first. Magnitudes of xᵢ differ by up to
six orders within the leaf (outlier entries).

The truth at xᵢ is an interval: one point where the piece is differentiable, the two one-sided derivatives where a
kink sits exactly at xᵢ. For quantised and float32 pieces it is the derivative of the map before rounding, the one
a user's gradient computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

__all__ = ["KINDS", "SMOOTH", "Piece", "Problem", "problems"]

SMOOTH = ("sin", "exp", "cubic")
KINDS = (*SMOOTH, "pole", "jump", "kink", "relu", "quantised", "float32", "float32 input")


@dataclass(frozen=True)
class Piece:
    """φ(t) for one element: its kind, weight w, feature position p and scale s (the element's magnitude)."""

    kind: str
    w: float
    p: float
    s: float

    def value(self, t: np.ndarray) -> np.ndarray:
        if self.kind == "float32 input":  # the argument itself rounded to float32, as a mixed-precision layer does
            single = np.complex64 if np.iscomplexobj(t) else np.float32
            return self.w * np.sin((t.astype(single).astype(t.dtype) - self.p) / self.s)
        u = (t - self.p) / self.s
        if self.kind == "sin":
            return self.w * np.sin(u)
        if self.kind == "exp":
            return self.w * np.exp(u / 4)
        if self.kind == "cubic":
            return self.w * u**3 / 3
        if self.kind == "pole":
            return self.w / u
        if self.kind == "jump":
            return self.w * (u > 0)
        if self.kind == "kink":
            return self.w * np.abs(u)
        if self.kind == "relu":
            return self.w * np.maximum(u, 0)
        if self.kind == "quantised":
            grid = 2.0**-30 * abs(self.w)
            return np.round(self.w * np.sin(u) / grid) * grid
        single, double = (np.complex64, np.complex128) if np.iscomplexobj(u) else (np.float32, np.float64)
        return (np.float32(self.w) * np.sin(u.astype(single))).astype(double)  # float32 inside

    def truth(self, t: float) -> tuple[float, float]:
        """The derivative at t, as an interval (lo, hi): one point, or the one-sided derivatives at a kink."""
        u = (t - self.p) / self.s
        k = (float(np.float32(self.w)) if self.kind == "float32" else self.w) / self.s  # the weight f really uses
        if self.kind in ("sin", "quantised", "float32", "float32 input"):
            d = k * np.cos(u)
        elif self.kind == "exp":
            d = k * np.exp(u / 4) / 4
        elif self.kind == "cubic":
            d = k * u * u
        elif self.kind == "pole":
            d = -k / (u * u)
        elif self.kind == "jump":
            d = 0.0
        elif u == 0 and self.kind in ("kink", "relu"):
            left, right = (-k, k) if self.kind == "kink" else (0.0, k)
            return (min(left, right), max(left, right))
        elif self.kind == "kink":
            d = k * np.sign(u)
        else:
            d = k * (u > 0)
        return (float(d), float(d))


@dataclass
class Problem:
    """f, the exact interval of each element's derivative, the point, and the analytic gradient with errors."""

    pieces: list[Piece]
    x: np.ndarray
    coupling: float
    planted: np.ndarray  # the error added to each element's analytic value (0 for most)

    def __repr__(self) -> str:
        parts = [f"{p.kind}(d={(p.p - xi) / _step(xi):.3g} steps, w={p.w:.2g})" for p, xi in zip(self.pieces, self.x)]
        return f"Problem(x={self.x.tolist()}, pieces=[{', '.join(parts)}], γ={self.coupling}, planted={self.planted})"

    def func(self, x: np.ndarray) -> float:
        values = [piece.value(np.asarray(xi, dtype=np.float64)) for piece, xi in zip(self.pieces, x)]
        return float(np.sum(values) + self.coupling * np.sum(x.astype(np.float64) ** 2))

    def complex_func(self, x: np.ndarray) -> complex | float:
        """func for the complex step: the same pieces, evaluated at complex x (abs, comparisons, rounding and the
        float32 cast are then not complex-analytic, as in a user's code)."""
        values = [piece.value(np.asarray(xi)) for piece, xi in zip(self.pieces, x)]
        total = np.sum(values) + self.coupling * np.sum(x * x)
        return complex(total) if np.iscomplexobj(x) else float(total)

    def truth(self) -> np.ndarray:
        """(n, 2): each element's interval of valid derivatives at x."""
        own = np.array([piece.truth(float(xi)) for piece, xi in zip(self.pieces, self.x)])
        return own + (2 * self.coupling * self.x)[:, None]

    def grad(self, x: np.ndarray) -> np.ndarray:
        lo, hi = self.truth().T
        return (lo + hi) / 2 + self.planted  # at a kink at x, the midpoint: a valid subgradient

    def error(self) -> np.ndarray:
        """How far each analytic value lies from the interval of valid derivatives."""
        a = self.grad(self.x)
        lo, hi = self.truth().T
        return np.maximum(np.maximum(lo - a, a - hi), 0.0)


def _step(xi: float) -> float:
    return float(np.finfo(np.float64).eps ** (1 / 3) * (abs(xi) or 1.0))


@st.composite
def problems(draw: st.DrawFn, *, kinds: tuple[str, ...] = KINDS, plant: bool = True) -> Problem:
    n = draw(st.integers(1, 4))
    magnitudes = [10.0 ** draw(st.floats(-3, 3)) for _ in range(n)]
    signs = [draw(st.sampled_from([-1.0, 1.0])) for _ in range(n)]
    x = np.array([s * m for s, m in zip(signs, magnitudes)])
    if draw(st.booleans()):
        x[draw(st.integers(0, n - 1))] = 0.0
    pieces = []
    for xi in x:
        kind = draw(st.sampled_from(kinds))
        distance = draw(st.sampled_from([0.0, 0.3, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 10.0, 30.0, 165.0, 1e3]))
        distance *= draw(st.sampled_from([-1.0, 1.0])) * draw(st.floats(0.9, 1.1))
        if kind in ("jump", "pole") and distance == 0:
            distance = 0.5
        scale = abs(xi) or 1.0
        w = draw(st.sampled_from([-1.0, 1.0])) * 10.0 ** draw(st.floats(-2, 2))
        if kind == "pole":
            w *= _step(xi) / scale  # f near x of order w / distance, not 1e5 times f's other pieces
        pieces.append(Piece(kind, w, float(xi + distance * _step(xi)), scale))
    coupling = draw(st.sampled_from([0.0, 0.0, 0.5]))
    planted = np.zeros(n)
    if plant:
        i = draw(st.integers(0, n - 1))
        size = 10.0 ** draw(st.floats(-9, 1))
        problem = Problem(pieces, x, coupling, planted)
        scale = max(abs(float(problem.truth()[i, 1])), 1e-3 / (abs(x[i]) or 1.0))
        planted[i] = draw(st.sampled_from([-1.0, 1.0])) * size * scale
    return Problem(pieces, x, coupling, planted)
