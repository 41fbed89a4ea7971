"""Jacobians of vector-valued functions, checked entry by entry with the gradient checker's own judgement.

Row t of the Jacobian is the gradient of the scalar function x ↦ func(x)[t], so each row is checked by
:func:`gradcheck.check_gradient` itself: the same stencils, noise, kink and jump analysis and report. func is called
once per point, whatever the number of outputs: every row's check reads the same cached evaluations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck._args import check_callable
from gradcheck._engine.pytree import TreeDef, flatten, float_leaves, match_structure
from gradcheck.check import check_gradient, judgement_options
from gradcheck.errors import InvalidArgument, InvalidType
from gradcheck.report import GradientReport, LeafReport

__all__ = ["check_jacobian"]


def check_jacobian(
    func: Callable[[Any], Any],
    x: Any,
    *,
    jacobian: Callable[[Any], Any] | None = None,
    vjp: Callable[[Any, np.ndarray], Any] | None = None,
    jvp: Callable[[Any, Any], Any] | None = None,
    rtol: float | None = None,
    atol: float = 0.0,
    allow_inconclusive: bool = False,
    resolution: float = 0.05,
) -> GradientReport:
    """Compare an analytic Jacobian of ``func`` at ``x`` with finite differences, entry by entry.

    >>> import numpy as np
    >>> check_jacobian(np.sin, np.array([0.1, 0.2]), jacobian=lambda x: np.diag(np.cos(x))).ok
    True

    func maps x (an array, or a pytree of arrays as for :func:`~gradcheck.check_gradient`) to an array y of shape
    T. Give exactly one of:

    - ``jacobian(x)``: for an array x of shape S, an array of shape T + S; for a pytree, a tree of x's structure
      whose leaves have shape T + the leaf's shape;
    - ``vjp(x, v)``: vᵀJ in x's structure, for v of shape T;
    - ``jvp(x, u)``: J·u of shape T, for u in x's structure.

    vjp and jvp are called once per basis vector, so every entry is checked. Entry (t, s) of a leaf's report is
    ∂y[t]/∂x[s]. The rule, error model, kinks, jumps, inconclusive entries and the options ``rtol``, ``atol``,
    ``allow_inconclusive`` and ``resolution`` are those of :func:`gradcheck.check_gradient`, row by row.

    Args:
        func: the function, ``func(x) -> array`` of a fixed shape T.
        x: the point: an ndarray or a pytree of floating-point ndarrays.
        jacobian: the analytic Jacobian, ``jacobian(x)`` of shape T + S (per leaf for a pytree).
        vjp: the vector-Jacobian product, ``vjp(x, v) -> vᵀJ`` in x's structure.
        jvp: the Jacobian-vector product, ``jvp(x, u) -> J·u`` of shape T.
        rtol: the relative tolerance; by default √eps of each leaf's dtype.
        atol: the absolute tolerance (default 0).
        allow_inconclusive: let entries the check cannot resolve pass the check.
        resolution: the coarsest relative error bound a pass may rest on (default 0.05).

    Returns:
        GradientReport: one leaf per leaf of x, of shape T + the leaf's shape; entry (t, s) is ∂y[t]/∂x[s].

    Raises:
        InvalidArgument: not exactly one of ``jacobian``, ``vjp``, ``jvp``; func(x) empty, ragged or changing shape
            between points; an analytic Jacobian of the wrong shape; a bad ``rtol`` or ``atol``.
        InvalidType: func or the Jacobian function is not callable, or x has a leaf that is not a float array.
    """
    given = [name for name, f in (("jacobian", jacobian), ("vjp", vjp), ("jvp", jvp)) if f is not None]
    if len(given) != 1:
        raise InvalidArgument(f"pass exactly one of jacobian=, vjp=, jvp= (got {given or 'none'})")
    usage = "pass check_jacobian(func, x, jacobian=J) with func(x) -> array and J(x) -> array of shape T + S"
    check_callable("func", func, usage)
    check_callable(given[0], {"jacobian": jacobian, "vjp": vjp, "jvp": jvp}[given[0]], usage)
    judgement_options(rtol=rtol, atol=atol, allow_inconclusive=allow_inconclusive, resolution=resolution)
    paths, leaves, treedef = float_leaves(x)
    outputs = _Outputs(func, treedef)
    problems: list[str] = []
    y0 = outputs.first(treedef.unflatten(leaves), problems)
    rows = _analytic(jacobian, vjp, jvp, treedef, paths, leaves, y0.shape)
    reports = []
    for t in range(y0.size):
        reports.append(
            check_gradient(
                outputs.entry(t),
                _constant(treedef.unflatten(rows[t])),
                treedef.unflatten(leaves),
                rtol=rtol,
                atol=atol,
                allow_inconclusive=allow_inconclusive,
                resolution=resolution,
            )
        )
    return _combine(reports, paths, leaves, y0, outputs, problems)


def _constant(value: Any) -> Callable[[Any], Any]:
    """A gradient function that returns ``value`` (one row of the analytic Jacobian) at any point."""
    return lambda _x: value


class _Outputs:
    """func(x) for a tree x, computed once per distinct point and shared by every output's check."""

    def __init__(self, func: Callable[[Any], Any], treedef: TreeDef) -> None:
        self.func, self.treedef, self.calls = func, treedef, 0
        name = getattr(func, "__name__", "func")
        self.name = "f" if name == "<lambda>" else str(name)
        self.shape: tuple[int, ...] = ()
        self.dtype = np.dtype(np.float64)  # func's result dtype, if floating
        self._cache: dict[bytes, np.ndarray] = {}

    def __call__(self, tree: Any) -> np.ndarray:
        leaves = flatten(tree)[1]
        key = b"".join(np.ascontiguousarray(leaf).tobytes() for leaf in leaves)
        if key not in self._cache:
            self.calls += 1
            self._cache[key] = self._checked(self.func(tree))
        return self._cache[key]

    def _checked(self, y: Any) -> np.ndarray:
        try:
            arr = np.asarray(y)
        except ValueError as exc:
            raise InvalidArgument(
                f"{self.name}(x) returned a ragged value ({exc}); it must return one array of a fixed shape"
            ) from None
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise InvalidType(f"{self.name}(x) returned dtype {arr.dtype}; it must return a real floating-point array")
        if self.shape and arr.shape != self.shape:
            raise InvalidArgument(
                f"{self.name}(x) returned shape {arr.shape} at a perturbed point and {self.shape} "
                "at x; the output's shape must not depend on x's values"
            )
        return arr.astype(np.float64)

    def first(self, tree: Any, problems: list[str]) -> np.ndarray:
        """func(x), twice: its shape, and whether func is repeatable (a cache would otherwise hide it)."""
        first = self.func(tree)
        y0 = self._checked(first)
        if np.issubdtype(np.asarray(first).dtype, np.floating):
            self.dtype = np.asarray(first).dtype
        again = self._checked(self.func(tree))
        self.calls += 2
        self.shape = y0.shape
        if y0.size == 0:
            raise InvalidArgument(
                f"{self.name}(x) returned an empty array (shape {y0.shape}); there is no Jacobian to check"
            )
        if not np.isfinite(y0).all():
            raise InvalidArgument(
                f"{self.name}(x) is not finite at the point given (first at "
                f"{tuple(int(i) for i in np.argwhere(~np.isfinite(y0))[0])}); move x or fix func"
            )
        spread = np.abs(again - y0)
        if not (spread <= 64 * np.finfo(np.float64).eps * np.abs(y0)).all():
            t = tuple(int(i) for i in np.unravel_index(int(np.argmax(spread)), y0.shape))
            problems.append(
                f"{self.name}(x) is not repeatable: entry {t} was {y0[t]:.17g} and then {again[t]:.17g} "
                "at the same x; a Jacobian check needs a deterministic func"
            )
        self._cache[b"".join(np.ascontiguousarray(leaf).tobytes() for leaf in flatten(tree)[1])] = y0
        return y0

    def entry(self, t: int) -> Callable[[Any], float]:
        def value(tree: Any) -> Any:
            # in func's own dtype: the check then takes its rounding (a float32 output) as the floor of its noise
            return self.dtype.type(self(tree).reshape(-1)[t])

        value.__name__ = f"{self.name}[{t}]"
        return value


def _analytic(
    jacobian: Any,
    vjp: Any,
    jvp: Any,
    treedef: TreeDef,
    paths: list[str],
    leaves: list[np.ndarray],
    out_shape: tuple[int, ...],
) -> list[list[np.ndarray]]:
    """Row t of the analytic Jacobian as leaves of x's shapes and dtypes: rows[t][k]."""
    m = int(np.prod(out_shape))
    tree = treedef.unflatten([leaf.copy() for leaf in leaves])
    if jacobian is not None:
        blocks = _blocks(jacobian(tree), treedef, paths, leaves, out_shape)
        return [
            [block.reshape((m,) + leaf.shape)[t].astype(leaf.dtype) for block, leaf in zip(blocks, leaves)]
            for t in range(m)
        ]
    if vjp is not None:
        rows = []
        for t in range(m):
            v = np.zeros(m, dtype=np.result_type(*leaves))
            v[t] = 1
            rows.append(
                [
                    np.array(r, copy=True)
                    for r in match_structure(treedef, paths, leaves, vjp(tree, v.reshape(out_shape)), "vjp(x, v)")
                ]
            )
        return rows
    columns = [np.zeros((m,) + leaf.shape) for leaf in leaves]
    for k, leaf in enumerate(leaves):
        for i in range(leaf.size):
            basis = [np.zeros_like(other) for other in leaves]
            basis[k].reshape(-1)[i] = 1
            col = _as_array(jvp(tree, treedef.unflatten(basis)), "jvp(x, u)")
            if col.shape != out_shape:
                raise InvalidArgument(
                    f"jvp(x, u) has shape {col.shape}; it must have the shape of func(x), {out_shape}"
                )
            columns[k].reshape(m, -1)[:, i] = col.reshape(-1)
    return [[col[t].astype(leaf.dtype) for col, leaf in zip(columns, leaves)] for t in range(m)]


def _blocks(
    J: Any, treedef: TreeDef, paths: list[str], leaves: list[np.ndarray], out_shape: tuple[int, ...]
) -> list[np.ndarray]:
    if treedef.is_leaf:
        J = [J]
    else:
        _got_paths, J, got = flatten(J, "jacobian(x)")
        if got != treedef:
            raise InvalidArgument(
                f"jacobian(x) returned a tree of another structure; for a pytree x it must return "
                f"x's structure with leaves of shape output shape + leaf shape ({paths})"
            )
    out = []
    for path, block, leaf in zip(paths, J, leaves):
        arr = _as_array(block, "jacobian(x)")
        if arr.shape != out_shape + leaf.shape:
            raise InvalidArgument(
                f"jacobian(x) for {path} has shape {arr.shape}; it must be output shape + input "
                f"shape = {out_shape + leaf.shape}"
            )
        out.append(arr)
    return out


def _as_array(value: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except ValueError as exc:
        raise InvalidArgument(f"{what} returned a ragged value ({exc}); return one array") from None
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise InvalidType(f"{what} returned complex values ({arr.dtype}); a real function has a real Jacobian")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise InvalidType(f"{what} returned dtype {arr.dtype}; it must return real numbers")
    return arr


def _combine(
    reports: list[GradientReport],
    paths: list[str],
    leaves: list[np.ndarray],
    y0: np.ndarray,
    outputs: _Outputs,
    problems: list[str],
) -> GradientReport:
    """One report: each leaf's rows stacked to shape T + leaf shape."""
    stacked = []
    for k, (path, leaf) in enumerate(zip(paths, leaves)):
        rows = [r.leaves[k] for r in reports]
        shape = y0.shape + leaf.shape

        def stack(field: str, rows: list[LeafReport] = rows, shape: tuple[int, ...] = shape) -> np.ndarray:
            return np.stack([getattr(r, field) for r in rows]).reshape(shape)

        stacked.append(
            LeafReport(
                path,
                stack("analytic"),
                stack("numeric"),
                stack("error"),
                stack("tolerance"),
                stack("step"),
                stack("kink"),
                jump=stack("jump"),
                rtol=rows[0].rtol,
                unresolved=stack("unresolved"),
            )
        )
    for r in reports:
        problems.extend(p for p in r.problems if p not in problems)
    first = reports[0]
    notes = [
        f"Jacobian of shape {y0.shape + (leaves[0].shape if len(leaves) == 1 else ())}"
        f"{'' if len(leaves) == 1 else ' per leaf'}: entry (t, s) is d {outputs.name}(x)[t] / d x[s]"
    ]
    return GradientReport(
        leaves=stacked,
        rtol=first.rtol,
        atol=first.atol,
        noise=max(r.noise for r in reports),
        value=float(np.abs(y0).max()),
        func_name=outputs.name,
        calls=outputs.calls,
        problems=problems,
        notes=notes,
        allow_inconclusive=first.allow_inconclusive,
    )
