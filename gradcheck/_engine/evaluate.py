"""Evaluating func: at x, along displacements, and at many single-element perturbations of x."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from gradcheck._args import is_real
from gradcheck._engine.pytree import TreeDef, flatten
from gradcheck.errors import GradcheckError, InvalidArgument, InvalidType

__all__ = ["Evaluator", "Perturbations", "unrepeatable_sentence"]


class Perturbations(Protocol):
    """f at many single-element perturbations of one leaf: ``values[r, c]`` is f with flat element ``idx[r]`` of the
    leaf named ``path`` set to ``points[r, c]`` (a value in the leaf's dtype) and every other element at x.

    The engine's own implementations call func once per point (serial) or once per batch of points (a vectorised
    func); :func:`gradcheck.check_network` supplies one that uses the network's structure."""

    def __call__(self, path: str, idx: np.ndarray, points: np.ndarray) -> np.ndarray: ...


class Evaluator:
    """func at x, and at x with single elements moved, counting calls.

    func receives a new container of the working arrays on every call, so a func that rebinds an entry
    (``d["w"] = d["w"] * 2``) cannot detach it from the perturbations that follow; the first call checks for it.
    """

    def __init__(
        self,
        func: Callable[[Any], Any],
        treedef: TreeDef,
        paths: list[str],
        leaves: list[np.ndarray],
        caller: dict[str, Any],
        vectorized: bool,
        perturbations: Perturbations | None,
    ) -> None:
        self.func, self.treedef, self.paths, self.leaves, self.caller = func, treedef, paths, leaves, caller
        self.pristine = [leaf.copy() for leaf in leaves]
        self.vectorized, self.calls = vectorized, 0
        name = getattr(func, "__name__", "func")
        self.name = "f" if name == "<lambda>" else str(name)
        self.f_eps = float(np.finfo(np.float64).eps)  # eps of func's result type, set by first_value
        self.unrepeatable = False
        self.raised: dict[str, int] = {}  # exceptions func raised at perturbed points, by name
        self.mutations: dict[str, str] = {}  # who changed what it was handed: the first change, described
        self.perturbed: Perturbations = perturbations or (self._vectorized if vectorized else self._serial)

    def hand_out(self) -> tuple[Any, list[np.ndarray]]:
        """A fresh container of fresh, writable, C-ordered copies of the working point: a func that caches by
        identity, keeps a reference, or changes what it is given cannot reach the check's own arrays."""
        copies = [leaf[None].copy() if self.vectorized else leaf.copy() for leaf in self.leaves]
        return self.treedef.unflatten(copies), copies

    def watch(self, copies: list[np.ndarray], who: str) -> None:
        """Record the first change ``who`` made to the arrays it was handed (in place, or by reshaping them)."""
        if who in self.mutations:
            return
        for path, handed, mine in zip(self.paths, copies, self.leaves):
            handed = handed[0] if self.vectorized and handed.shape[:1] == (1,) else handed
            if handed.shape != mine.shape:
                self.mutations[who] = (
                    f"{who} reshaped {path} in place from {mine.shape} to {handed.shape}; func and grad must not "
                    "modify their argument: reshape a view (x.reshape(...)) instead"
                )
                return
            changed = ~((handed == mine) | (np.isnan(handed) & np.isnan(mine)))
            if changed.any():
                i = tuple(int(k) for k in np.argwhere(changed)[0])
                self.mutations[who] = (
                    f"{who} changed x in place: {path}[{', '.join(map(str, i))}] went from {float(mine[i]):.6g} to "
                    f"{float(handed[i]):.6g} ({int(changed.sum())} entries changed); func and grad must not modify "
                    "their argument (an optimiser step inside grad?)"
                )
                return

    def __call__(self) -> float:
        """f at the working point. An arithmetic error or warning raised there (func stepped out of its domain,
        under the caller's ``np.errstate`` or warning filters) counts as a value that is not finite."""
        tree, copies = self.hand_out()
        try:
            return self._value(tree)
        except (ArithmeticError, RuntimeWarning, ValueError) as exc:
            if isinstance(exc, GradcheckError):
                raise
            self.raised[type(exc).__name__] = self.raised.get(type(exc).__name__, 0) + 1
            return math.nan
        finally:
            self.watch(copies, f"{self.name}(x) while x was perturbed")

    def _value(self, tree: Any) -> float:
        return self._convert(self._raw(tree))

    def _raw(self, tree: Any) -> Any:
        self.calls += 1
        with np.errstate(**self.caller):
            return self.func(tree)

    def _convert(self, raw: Any) -> float:
        return float(_batched(raw, 1, self.name)[0]) if self.vectorized else _scalar(raw, self.name)

    def first_value(self, problems: list[str]) -> float:
        """f(x), twice, checking it is finite, repeatable and that func leaves its container alone; learns the
        precision of func's result."""
        tree, copies = self.hand_out()
        raw = self._raw(tree)
        self.watch(copies, f"{self.name}(x)")
        f0 = self._convert(raw)
        dtype = np.asarray(raw).dtype
        if np.issubdtype(dtype, np.floating):
            self.f_eps = max(self.f_eps, float(np.finfo(dtype).eps))
        if not math.isfinite(f0):
            raise InvalidArgument(
                f"{self.name}(x) = {f0} at the point given; the check needs a finite value there: move x or fix func"
            )
        self.note_rebinding(tree, copies, f"{self.name}(x)", problems)
        again = self._value(self.hand_out()[0])
        if not abs(again - f0) <= 64 * self.f_eps * abs(f0):
            self.unrepeatable = True
            problems.append(unrepeatable_sentence(self.name, f0, again))
        return f0

    def note_rebinding(self, tree: Any, handed: list[np.ndarray], who: str, problems: list[str]) -> None:
        paths, seen, _ = flatten(tree)
        for path, a, b in zip(paths, seen, handed):
            if a is not b:
                problems.append(
                    f"{who} replaced {path} in the container it was given (an assignment such as "
                    "x['w'] = ...); func and grad must not modify their argument: build a new container "
                    "or a new array instead"
                )
                return

    def call_grad(self, grad: Callable[[Any], Any], problems: list[str]) -> Any:
        copies = [leaf.copy() for leaf in self.leaves]
        tree = self.treedef.unflatten(copies)
        with np.errstate(**self.caller):
            out = grad(tree)
        vectorized, self.vectorized = self.vectorized, False  # grad takes a single point
        self.watch(copies, "grad(x)")
        self.vectorized = vectorized
        self.note_rebinding(tree, copies, "grad(x)", problems)
        return out

    def restore(self) -> None:
        for leaf, orig in zip(self.leaves, self.pristine):
            leaf[...] = orig

    def at(self, k: int, idx: np.ndarray, points: np.ndarray) -> np.ndarray:
        """f with element idx[r] of leaf k set to points[r, c] (already in the leaf's dtype), shape of points."""
        if not idx.size:
            return np.empty(points.shape)
        return self.perturbed(self.paths[k], idx, points)

    def _serial(self, path: str, idx: np.ndarray, points: np.ndarray) -> np.ndarray:
        """One call of func per point."""
        k = self.paths.index(path)
        flat, base = self.leaves[k].reshape(-1), self.pristine[k].reshape(-1)
        values = np.empty(points.shape)
        for row, i in enumerate(idx):
            for c in range(points.shape[1]):
                flat[i] = points[row, c]
                values[row, c] = self()
            flat[i] = base[i]
        return values

    def along(self, displacement: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        """f at x + displacement (rounded to each leaf's dtype) and the displacement actually taken."""
        taken = []
        for leaf, orig, d in zip(self.leaves, self.pristine, displacement):
            leaf[...] = (orig.astype(np.float64) + d).astype(leaf.dtype)
            taken.append(leaf.astype(np.float64) - orig)
        value = self()
        self.restore()
        return value, taken

    def along_many(self, displacements: list[list[np.ndarray]]) -> np.ndarray:
        """f at x + each displacement; a vectorized func takes them in one call."""
        if not self.vectorized:
            return np.array([self.along(d)[0] for d in displacements])
        batch = [
            np.stack([(orig.astype(np.float64) + d[k]).astype(orig.dtype) for d in displacements])
            for k, orig in enumerate(self.pristine)
        ]
        self.calls += 1
        try:
            with np.errstate(**self.caller):
                return _batched(self.func(self.treedef.unflatten(batch)), len(displacements), self.name)
        except (ArithmeticError, RuntimeWarning, ValueError) as exc:
            if isinstance(exc, GradcheckError):
                raise
            return np.array([self.along(d)[0] for d in displacements])

    def _vectorized(self, path: str, idx: np.ndarray, points: np.ndarray) -> np.ndarray:
        """One call of a vectorised func per batch of points, batches bounded to 4M floats."""
        k = self.paths.index(path)
        rows, _cols = np.divmod(np.arange(points.size), points.shape[1])
        targets, values = idx[rows], points.reshape(-1)
        chunk = max(1, (1 << 22) // max(1, sum(leaf.size for leaf in self.pristine)))
        out = np.empty(points.size)
        for start in range(0, points.size, chunk):
            sl = slice(start, start + chunk)
            K = len(targets[sl])
            batch = [np.repeat(orig[None], K, axis=0) for orig in self.pristine]
            batch[k].reshape(K, -1)[np.arange(K), targets[sl]] = values[sl]
            self.calls += 1
            with np.errstate(**self.caller):
                out[sl] = _batched(self.func(self.treedef.unflatten(batch)), K, self.name)
        return out.reshape(points.shape)


def unrepeatable_sentence(name: str, first: float, second: float) -> str:
    return (
        f"{name}(x) is not repeatable: it returned {first:.17g} and then {second:.17g} at the same x (spread "
        f"{abs(second - first):.3g}); a gradient check needs a deterministic func: switch off dropout and sampling, "
        "fix the random seed inside func, or reset state that func accumulates across calls"
    )


def _scalar(value: Any, name: str) -> float:
    if isinstance(value, np.ndarray):
        if value.ndim != 0 and value.size != 1:
            raise InvalidArgument(
                f"{name}(x) returned an array of shape {value.shape}; check_gradient needs a scalar: "
                "return the loss itself, e.g. its .sum() or .mean()"
            )
        if value.ndim != 0:
            raise InvalidArgument(
                f"{name}(x) returned an array of shape {value.shape}; check_gradient needs a scalar: "
                "return value.item() or value.reshape(()) "
            )
        value = value[()]
    if isinstance(value, (complex, np.complexfloating)):
        raise InvalidType(f"{name}(x) returned a complex value {value!r}; it must be real")
    if not is_real(value):
        raise InvalidType(f"{name}(x) returned a {type(value).__name__}; it must return a real scalar (a float)")
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _batched(value: Any, K: int, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except ValueError as exc:
        raise InvalidArgument(
            f"{name} was called with a batch of {K} points (vectorized=True) and returned a ragged "
            f"value ({exc}); it must return one real value per point, shape ({K},)"
        ) from None
    if arr.shape != (K,) or not np.issubdtype(arr.dtype, np.floating):
        raise InvalidArgument(
            f"{name} was called with a batch of {K} points (vectorized=True) and returned "
            f"{arr.dtype} of shape {arr.shape}; it must return one real value per point, shape "
            f"({K},)"
        )
    return arr.astype(np.float64)
