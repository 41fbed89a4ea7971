"""The verdict oracle's generator: functions whose exact gradients are known, at hostile points.

A drawn :class:`Case` is a pytree x (a bare array, or lists, tuples and dicts nesting arrays) whose leaves come in
every memory layout a user can hand over (C, Fortran, transposed, strided and broadcast views, read-only), in float32
and float64 (mixed within one tree), at magnitudes from 1e-280 to 1e280, and a function

    f(x) = F · ( Σ_leaves Σ_i w_i φ_leaf((x_i − c_i) / s_leaf)  +  γ · ½‖M u‖² / n )       u = all (x_i − c_i)/s

with φ drawn from smooth maps, maps with a kink (|t|, max(t, 0)) and a map with a jump (a step), the kink or jump
placed exactly at x, near x or far from it. Options: φ computed in float32 inside a float64 function, f returning
a different value on every call (randomness), f rebinding an entry of its container. Everything about the exact
answer is known: the gradient, which elements sit on a kink or a jump, and what problem the check must report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

__all__ = ["Case", "cases"]

# name: (φ, φ′); φ′ at a kink is a one-sided derivative or 0, which lies between them
MAPS = {
    "sin": (np.sin, np.cos),
    "tanh": (np.tanh, lambda t: 1 / np.cosh(t) ** 2),
    "exp": (lambda t: np.exp(t / 2), lambda t: np.exp(t / 2) / 2),
    "square": (lambda t: t * t, lambda t: 2 * t),
    "cube": (lambda t: t**3 / 3, lambda t: t * t),
    "softplus": (lambda t: np.logaddexp(0, t), lambda t: 0.5 * (1 + np.tanh(t / 2))),
    "log1p": (lambda t: np.log1p(t * t), lambda t: 2 * t / (1 + t * t)),
    "abs": (np.abs, np.sign),
    "relu": (lambda t: np.maximum(t, 0), lambda t: (t > 0).astype(t.dtype)),
    "step": (lambda t: (t > 0).astype(t.dtype), lambda t: np.zeros_like(t)),
}
KINKED, JUMPING = {"abs", "relu"}, {"step"}
LAYOUTS = ["C", "F", "transposed", "strided", "broadcast", "read-only"]


@dataclass
class Leaf:
    """One leaf: its values as handed to the check, and how f treats it."""

    x: np.ndarray
    scale: float
    phi: str
    weights: np.ndarray
    centre: np.ndarray  # c_i, in x's units
    layout: str

    @property
    def on_kink(self) -> np.ndarray:
        return (self.x.astype(np.float64) == self.centre) & (self.phi in KINKED)

    @property
    def on_jump(self) -> np.ndarray:
        return (self.x.astype(np.float64) == self.centre) & (self.phi in JUMPING)


@dataclass
class Case:
    """A drawn problem: ``tree`` is x, ``func`` and ``grad`` are f and its exact gradient."""

    leaves: list[Leaf]
    container: str
    magnitude: float  # F
    coupling: float  # γ
    matrix: np.ndarray  # M
    float32_inside: bool = False
    random: np.random.Generator | None = None
    rebinds: bool = False
    paths: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.paths = [_path(self.container, k) for k in range(len(self.leaves))]

    def __repr__(self) -> str:
        parts = [f"{leaf.layout} {leaf.x.dtype} {leaf.x.shape} φ={leaf.phi} s={leaf.scale:.0e}" for leaf in self.leaves]
        flags = [
            name
            for name, on in (
                ("float32 inside", self.float32_inside),
                ("random", self.random is not None),
                ("rebinds", self.rebinds),
            )
            if on
        ]
        return f"Case({self.container}: {'; '.join(parts)}; F={self.magnitude:.0e}, γ={self.coupling} {flags})"

    @property
    def tree(self) -> Any:
        return _build(self.container, [leaf.x for leaf in self.leaves])

    def _u(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return [(np.asarray(a, dtype=np.float64) - leaf.centre) / leaf.scale for a, leaf in zip(arrays, self.leaves)]

    def func(self, tree: Any) -> float:
        arrays = _unbuild(self.container, tree)
        if self.rebinds and isinstance(tree, (dict, list)):
            key = "a" if isinstance(tree, dict) else 0
            tree[key] = np.array(tree[key], copy=True)  # the entry is replaced, the value is the same
        us = self._u(arrays)
        total = 0.0
        for u, leaf in zip(us, self.leaves):
            phi = MAPS[leaf.phi][0]
            values = phi(u.astype(np.float32)).astype(np.float64) if self.float32_inside else phi(u)
            total += float(np.sum(leaf.weights * values))
        flat = np.concatenate([u.reshape(-1) for u in us])
        total += self.coupling * 0.5 * float(np.sum((self.matrix @ flat) ** 2)) / flat.size
        if self.random is not None:
            total += 1e-3 * self.random.standard_normal()
        return self.magnitude * total

    def grad(self, tree: Any) -> Any:
        return self.build(self.exact(self.unbuild(tree)))

    def build(self, arrays: list[Any]) -> Any:
        """A tree of this case's container holding ``arrays``."""
        return _build(self.container, arrays)

    def unbuild(self, tree: Any) -> list[np.ndarray]:
        """The arrays of a tree of this case's container, in leaf order."""
        return _unbuild(self.container, tree)

    def exact(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        us = self._u(arrays)
        flat = np.concatenate([u.reshape(-1) for u in us])
        coupled = self.coupling * (self.matrix.T @ (self.matrix @ flat)) / flat.size
        out, start = [], 0
        for u, leaf in zip(us, self.leaves):
            part = coupled[start : start + u.size].reshape(u.shape)
            start += u.size
            slope = leaf.weights * MAPS[leaf.phi][1](u) + part
            out.append((self.magnitude / leaf.scale * slope).astype(leaf.x.dtype))
        return out


def _path(container: str, k: int) -> str:
    return {
        "array": "x",
        "list": f"x[{k}]",
        "tuple": f"x[{k}]",
        "dict": f"x[{'ab'[k]!r}]",
        "nested": f"x['inner'][{k}]",
    }[container]


def _build(container: str, arrays: list[Any]) -> Any:
    if container == "array":
        return arrays[0]
    if container == "list":
        return list(arrays)
    if container == "tuple":
        return tuple(arrays)
    if container == "dict":
        return {"ab"[k]: a for k, a in enumerate(arrays)}
    return {"inner": list(arrays)}


def _unbuild(container: str, tree: Any) -> list[np.ndarray]:
    if container == "array":
        return [tree]
    if container in ("list", "tuple"):
        return list(tree)
    if container == "dict":
        return [tree[key] for key in sorted(tree)]
    return list(tree["inner"])


def _lay_out(values: np.ndarray, layout: str) -> np.ndarray:
    """The same values in another memory layout."""
    if layout == "F":
        return np.asfortranarray(values)
    if layout == "transposed":
        return np.ascontiguousarray(values.T).T
    if layout == "strided":
        wide = np.zeros(values.shape[:-1] + (2 * values.shape[-1],), dtype=values.dtype) if values.ndim else None
        if wide is None:
            return values
        wide[..., ::2] = values
        return wide[..., ::2]
    if layout == "read-only":
        values = values.copy()
        values.setflags(write=False)
    return values


@st.composite
def _leaf(draw: st.DrawFn, dtype: Any, elements: int, kinds: list[str], magnitude: int) -> Leaf:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    layout = draw(st.sampled_from(LAYOUTS))
    shape = draw(st.sampled_from([(elements,), (2, elements), (elements, 3)] if elements > 1 else [(), (1,)]))
    if layout == "broadcast":
        shape = (3,) + shape
    # x's scale: within the dtype's range, and near enough to F that the gradient F/s is representable too
    reach, bound = (15, 15) if dtype == np.float32 else (250, 280)
    scale = 10.0 ** draw(st.integers(max(-bound, magnitude - reach), min(bound, magnitude + reach)))
    phi = draw(st.sampled_from(kinds))
    row_shape = shape[1:] if layout == "broadcast" else shape
    u = rng.uniform(-2, 2, size=row_shape)
    x = np.asarray(u * scale).astype(dtype)
    if layout == "broadcast":
        x = np.broadcast_to(x, shape)
    x = _lay_out(x, layout) if layout != "broadcast" else x
    x64 = x.astype(np.float64)
    centre = np.zeros(shape)
    if phi in KINKED | JUMPING:
        # per element: exactly at x, near it, or far; "near" is inside the step but resolvable in the dtype
        near = 1e-3 if dtype == np.float32 else draw(st.sampled_from([1e-6, 1e-3]))
        where = rng.choice(3, size=shape)
        side = rng.choice([-1.0, 1.0], size=shape)
        centre = np.where(where == 0, x64, np.where(where == 1, x64 + side * near * scale, x64 - 3 * scale))
    weights = rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    return Leaf(x, scale, phi, weights, centre, layout)


@st.composite
def cases(
    draw: st.DrawFn,
    *,
    kinks: bool = True,
    jumps: bool = False,
    float32_inside: bool | None = False,
    randomness: bool = False,
    rebinds: bool = False,
) -> Case:
    """A :class:`Case` for the verdict oracle; the flags allow the hostile options."""
    container = draw(st.sampled_from(["array", "list", "tuple", "dict", "nested"]))
    count = 1 if container == "array" else draw(st.integers(1, 2))
    kinds = ["sin", "tanh", "exp", "square", "cube", "softplus", "log1p"]
    kinds += sorted(KINKED) if kinks else []
    kinds += sorted(JUMPING) if jumps else []
    dtypes = [draw(st.sampled_from([np.float64, np.float32])) for _ in range(count)]
    exponent = draw(st.integers(-25, 25) if np.float32 in dtypes else st.integers(-280, 280))
    leaves = [draw(_leaf(dtype, draw(st.integers(1, 4)), kinds, exponent)) for dtype in dtypes]
    magnitude = 10.0**exponent
    n = sum(leaf.x.size for leaf in leaves)
    seed = draw(st.integers(0, 2**32 - 1))
    coupling = draw(st.sampled_from([0.0, 0.5]))
    matrix = np.random.default_rng(seed).standard_normal((n, n)) / np.sqrt(n)
    inside = draw(st.booleans()) if float32_inside is None else float32_inside
    inside = inside and all(d == np.float64 for d in dtypes)
    return Case(
        leaves,
        container,
        magnitude,
        coupling,
        matrix,
        float32_inside=inside,
        random=np.random.default_rng(seed) if randomness else None,
        rebinds=rebinds and container in ("dict", "list"),
    )
