"""What checking a torch or jax gradient rule has in common, whatever the framework: the arguments as named leaves,
the rule turned into a scalar function and its gradient for the checker, the forward rule checked against the
reverse one by the adjoint identity, and second derivatives through the gradient's own derivative.

A framework module supplies a :class:`Backend` (how to make its arrays, run its vjp and jvp, and batch a function);
everything else, the error model above all, is the checker's own.

The reverse rule is checked through a vector–Jacobian product with a random cotangent u on every floating output:
L(x) = Σ ⟨u, f(x)⟩ is a scalar function whose gradient is exactly uᵀJ, so :func:`gradcheck.check_gradient` judges
every element of uᵀJ against finite differences of L with its usual error model. A cotangent of all ones (the
``.sum()`` trick) would hide a rule that ignores its cotangent; a random one does not.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from gradcheck._args import check_callable, non_negative
from gradcheck.check import check_gradient
from gradcheck.errors import GradcheckError, GradientMismatch, InvalidArgument, InvalidType
from gradcheck.report import GradientReport

BATCH_FROM = 512  # differentiated elements from which batching through vmap pays for its overhead

__all__ = [
    "BATCH_FROM",
    "Backend",
    "Leaf",
    "RuleRaised",
    "check",
    "leaves_of",
    "phase",
    "raise_on_failure",
]


@dataclasses.dataclass
class Leaf:
    """One leaf of the arguments: where it sits, its value, and whether it is differentiated."""

    path: str  # "args[0]", "args[1]['w']", "kwargs['bias']"
    value: Any
    differentiated: bool
    why_not: str = ""


class Backend(Protocol):
    """A framework as the checker needs it."""

    name: str

    def is_array(self, value: Any) -> bool: ...
    def is_floating(self, value: Any) -> bool: ...
    def dtype_name(self, value: Any) -> str: ...
    def to_numpy(self, value: Any) -> np.ndarray: ...
    def from_numpy(self, array: np.ndarray, like: Any) -> Any: ...
    def float64(self, value: Any) -> Any | None: ...
    def vjp(self, fn: Callable[..., Any], primals: list[Any], cotangents: Any) -> tuple[Any, list[Any]]: ...
    def jvp(self, fn: Callable[..., Any], primals: list[Any], tangents: list[Any]) -> Any | None: ...
    def eps(self, value: Any) -> float: ...
    def vmap(self, fn: Callable[..., Any]) -> Callable[..., Any] | None: ...
    def exact_in_numpy(self, value: Any) -> bool: ...
    def requested(self, value: Any) -> bool: ...
    def unsupported(self, value: Any) -> str:
        """Why an array argument cannot be checked at all ('' when it can)."""
        ...

    def in_layout(self, array: np.ndarray, like: Any) -> Any: ...
    def tree_flatten(self, tree: Any) -> tuple[list[Any], Callable[[list[Any]], Any], list[str]]:
        """The framework's own pytree flattening: leaves, a function that rebuilds the tree, and each leaf's key
        path as indexing (``[0].W``, ``['k'][1]``)."""
        ...


def leaves_of(backend: Backend, args: Sequence[Any], kwargs: dict[str, Any], wrt: Any) -> tuple[list[Leaf], Any]:
    """The arguments as leaves, flattened as the framework flattens pytrees (namedtuples and registered classes
    too), and a function that rebuilds (args, kwargs) from new values of all the leaves."""
    tops = [(f"args[{i}]", arg) for i, arg in enumerate(args)] + [(f"kwargs[{k!r}]", kwargs[k]) for k in sorted(kwargs)]
    flat: list[Any] = []
    paths: list[str] = []
    parts: list[tuple[int, Callable[[list[Any]], Any]]] = []
    for top, tree in tops:
        leaves, rebuild, keys = backend.tree_flatten(tree)
        flat += leaves
        paths += [top + key for key in keys]
        parts.append((len(leaves), rebuild))
    names = sorted(kwargs)

    def rebuild_all(values: list[Any]) -> tuple[list[Any], dict[str, Any]]:
        built, start = [], 0
        for size, rebuild in parts:
            built.append(rebuild(values[start : start + size]))
            start += size
        return built[: len(args)], dict(zip(names, built[len(args) :]))

    chosen = _chosen(wrt, len(args), kwargs)
    floating = [backend.is_array(v) and backend.is_floating(v) for v in flat]
    # as torch's own checker: where some inputs ask for gradients (requires_grad), only they are differentiated
    asked = wrt is None and any(f and backend.requested(v) for f, v in zip(floating, flat))
    leaves_out = [_leaf(backend, path, value, chosen, asked) for path, value in zip(paths, flat)]
    if not any(leaf.differentiated for leaf in leaves_out):
        raise InvalidArgument(
            f"no argument of {paths or '()'} is a floating-point {backend.name} array to differentiate"
            + (f" among wrt={wrt!r}" if wrt is not None else "")
            + "; pass the inputs as floating tensors or arrays"
        )
    return leaves_out, rebuild_all


def _leaf(backend: Backend, path: str, value: Any, chosen: set[str] | None, asked: bool) -> Leaf:
    top = path.split("]")[0] + "]"
    if not backend.is_array(value):
        return Leaf(path, value, False, "not an array")
    why = backend.unsupported(value)
    if why:
        raise InvalidType(f"{path} is {why}")
    if not backend.is_floating(value):
        return Leaf(path, value, False, f"{backend.dtype_name(value)}, not floating point")
    if chosen is not None and top not in chosen:
        return Leaf(path, value, False, "not in wrt=")
    if asked and not backend.requested(value):
        return Leaf(path, value, False, "requires_grad=False while other inputs require grad")
    return Leaf(path, value, True)


def _chosen(wrt: Any, n_args: int, kwargs: dict[str, Any]) -> set[str] | None:
    """The top-level arguments ``wrt`` names (positions and keyword names), as path prefixes."""
    if wrt is None:
        return None
    names = [wrt] if isinstance(wrt, (int, str)) else list(wrt)
    chosen = set()
    for name in names:
        if isinstance(name, bool) or not isinstance(name, (int, str)):
            raise InvalidType(f"wrt={wrt!r}; name arguments by position (0, 1, …) or keyword name")
        if isinstance(name, int) and not 0 <= name < n_args:
            raise InvalidArgument(f"wrt={wrt!r} names argument {name}, but the function gets {n_args} positional ones")
        if isinstance(name, str) and name not in kwargs:
            raise InvalidArgument(
                f"wrt={wrt!r} names {name!r}, which is not among the keyword arguments {sorted(kwargs)}"
            )
        chosen.add(f"args[{name}]" if isinstance(name, int) else f"kwargs[{name!r}]")
    return chosen


@dataclasses.dataclass
class _Problem:
    """fn at its arguments, split into what the checker perturbs (x) and what stays put."""

    backend: Backend
    fn: Callable[..., Any]
    leaves: list[Leaf]
    rebuild: Callable[[list[Any]], Any]
    reference: Callable[..., Any] | None
    step: float | None = None  # a fixed finite-difference step, as check_gradient's step=
    problems: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def active(self) -> list[Leaf]:
        return [leaf for leaf in self.leaves if leaf.differentiated]

    def x(self) -> dict[str, np.ndarray]:
        return {leaf.path: self.backend.to_numpy(leaf.value) for leaf in self.active}

    def call(self, fn: Callable[..., Any], values: dict[str, Any], watch: bool = False) -> Any:
        """fn with the differentiated leaves from ``values`` and the others as given. With ``watch``, an array
        argument that fn changes in place is reported and put back (done where the rule runs, not at every
        finite-difference point, where the checker's repeatability test sees such drift anyway)."""
        arrays = [v for v in self.leaves if watch and not v.differentiated and self.backend.is_array(v.value)]
        snapshots = [(leaf, _snapshot(self.backend, leaf.value)) for leaf in arrays]
        kept = [leaf for leaf, snap in snapshots if snap is not None]
        before = [snap for _, snap in snapshots if snap is not None]
        args, kwargs = self.rebuild([values.get(leaf.path, leaf.value) for leaf in self.leaves])
        out = fn(*args, **kwargs)
        for leaf, old in zip(kept, before):
            if not np.array_equal(self.backend.to_numpy(leaf.value), old, equal_nan=True):
                _note_changed(self, leaf.path)
                leaf.value = self.backend.from_numpy(old, leaf.value)
        return out

    def arrays(self, x: dict[str, np.ndarray], dtype64: bool = False, layout: bool = False) -> dict[str, Any]:
        """The differentiated leaves at x, as the framework's arrays; with ``layout``, in the memory layout the
        user's arguments have (transposed, channels-last, expanded), as the rule is run."""
        out = {}
        for leaf in self.active:
            value = np.asarray(x[leaf.path])
            if layout:
                out[leaf.path] = self.backend.in_layout(value, leaf.value)
                continue
            like = self.backend.float64(leaf.value) if dtype64 else leaf.value
            out[leaf.path] = self.backend.from_numpy(value, like if like is not None else leaf.value)
        return out


def _snapshot(backend: Backend, value: Any) -> np.ndarray | None:
    """A copy of an argument's values to compare after a call, or None for one without numeric values (a typed
    PRNG key): such an argument cannot be changed in place anyway."""
    try:
        snapshot: np.ndarray = backend.to_numpy(value).copy()
    except (TypeError, ValueError):
        return None
    return snapshot


def check(
    backend: Backend,
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    *,
    wrt: Any = None,
    order: int = 1,
    reference: Any = None,
    rtol: float | None = None,
    atol: float = 0.0,
    rng: np.random.Generator | None = None,
    step: float | None = None,
) -> GradientReport:
    """The reverse rule of ``fn`` against finite differences, its forward rule against the reverse one, and (with
    ``order=2``) its second derivatives; see the framework modules for the user's view."""
    check_callable("fn", fn, f"pass gradcheck.{backend.name}.check_function(fn, *args)")
    if order not in (1, 2) or isinstance(order, bool):
        raise InvalidArgument(f"order={order!r}; use 1 (gradients) or 2 (also second derivatives)")
    atol = non_negative("atol", atol)
    rtol = None if rtol is None else non_negative("rtol", rtol)
    rng = np.random.default_rng(0) if rng is None else rng
    if not isinstance(rng, np.random.Generator):
        raise InvalidType(f"rng={rng!r}; pass np.random.default_rng(seed), or None for a fixed seed")
    leaves, rebuild = leaves_of(backend, args, kwargs, wrt)
    problem = _Problem(backend, fn, leaves, rebuild, _reference(backend, fn, reference), step=step)
    coarse = [backend.eps(leaf.value) for leaf in problem.active if not backend.exact_in_numpy(leaf.value)]
    if rtol is None and coarse:  # bfloat16 and the like, judged as float32: use their own precision
        rtol = math.sqrt(max(coarse))
    name = getattr(fn, "__name__", "fn")
    try:
        report = _reverse(problem, rng, rtol, atol)
        notes = _adjoint(problem, rng) + _skipped(problem)
        if order == 2:
            second = _second(problem, rng, rtol, atol)
            report = _merge(report, second)
    except RuleRaised as raised:
        return _raised_report(problem, name, raised)
    return dataclasses.replace(
        report,
        problems=report.problems + problem.problems,
        notes=report.notes + problem.notes + notes,
        func_name=getattr(fn, "__name__", "fn"),
    )


class RuleRaised(Exception):
    """fn or one of its rules raised while the checker ran it at x: a failed check, not a crash."""

    def __init__(self, phase: str, error: BaseException) -> None:
        super().__init__(phase)
        self.phase, self.error = phase, error


def phase(what: str, call: Callable[..., Any], *args: Any) -> Any:
    """``call(*args)``, with anything it raises (other than gradcheck's own errors) as :class:`RuleRaised`."""
    try:
        return call(*args)
    except GradcheckError:
        raise
    except Exception as error:
        raise RuleRaised(what, error) from error


def _raised_report(problem: _Problem, name: str, raised: RuleRaised) -> GradientReport:
    error = raised.error
    sentence = (
        f"{name} raised {type(error).__name__} in {raised.phase} at the point given: {error}; the rule cannot be "
        "checked until it runs there (an in-place change of a saved tensor, a leaked tracer or a non-linear jvp "
        "raise like this)"
    )
    return GradientReport(
        leaves=[],
        rtol=float("nan"),
        atol=float("nan"),
        noise=float("nan"),
        value=float("nan"),
        func_name=name,
        calls=0,
        problems=[*problem.problems, sentence],
        notes=problem.notes + _skipped(problem),
    )


def raise_on_failure(report: GradientReport) -> GradientReport:
    __tracebackhide__ = True
    if not report.ok:
        raise GradientMismatch(report)
    return report


def _reference(backend: Backend, fn: Callable[..., Any], reference: Any) -> Callable[..., Any] | None:
    if reference is None:
        return None
    if reference == "float64":
        return fn
    if callable(reference):
        return reference  # type: ignore[no-any-return]
    raise InvalidArgument(
        f"reference={reference!r}; pass a function with fn's signature, 'float64' (fn on float64 copies), or None"
    )


def _outputs(backend: Backend, out: Any) -> list[Any]:
    flat = backend.tree_flatten(out)[0]
    return [o for o in flat if backend.is_array(o) and backend.is_floating(o)]


def _reverse(problem: _Problem, rng: np.random.Generator, rtol: float | None, atol: float) -> GradientReport:
    """uᵀJ from the rule against finite differences of L(x) = Σ ⟨u, f(x)⟩, with a random cotangent u on every
    floating output at once; then, for a function of several outputs, on each output alone (the others get no
    cotangent where the framework allows it: torch then hands the backward None, or zeros, for them)."""
    backend = problem.backend
    x0 = problem.x()
    outputs = _outputs(backend, phase("the forward pass", problem.call, problem.fn, problem.arrays(x0), True))
    if not outputs:
        raise InvalidArgument(
            f"{getattr(problem.fn, '__name__', 'fn')} returned no floating-point {backend.name} array"
        )
    us: list[np.ndarray | None] = [rng.standard_normal(backend.to_numpy(o).shape) for o in outputs]
    values = problem.arrays(x0, layout=True)
    under_rule, _ = phase(
        "the reverse rule (backward)",
        backend.vjp,
        lambda *active: problem.call(problem.fn, dict(zip(values, active))),
        list(values.values()),
        us,
    )
    _note_primal(problem, under_rule, outputs)
    report = _reverse_with(problem, us, x0, rtol, atol)
    if len(outputs) == 1:
        return report
    for k in range(len(outputs)):
        alone = [u if i == k else None for i, u in enumerate(us)]
        single = _reverse_with(problem, alone, x0, rtol, atol)
        report = _merge_leaves(report, single, f"output {k} alone: ")
    problem.notes.append(
        f"the reverse rule was checked with a cotangent on all {len(outputs)} floating outputs at once, then on "
        "each alone (leaves marked 'output k alone')"
    )
    return report


def _reverse_with(
    problem: _Problem, us: list[np.ndarray | None], x0: dict[str, np.ndarray], rtol: float | None, atol: float
) -> GradientReport:
    """One cotangent u (None: that output gets none) against finite differences of Σ ⟨u, f(x)⟩."""
    backend = problem.backend
    numeric_fn = problem.reference or problem.fn
    use64 = problem.reference is not None

    def value(x: dict[str, np.ndarray]) -> float:
        outs = _outputs(backend, problem.call(numeric_fn, problem.arrays(x, dtype64=use64)))
        pairs = [(u, o) for u, o in zip(us, outs) if u is not None]
        return float(sum(np.vdot(u, backend.to_numpy(o).astype(np.float64)) for u, o in pairs))

    def gradient(x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = problem.arrays(x, layout=True)
        before = {path: backend.to_numpy(v).copy() for path, v in values.items()}
        primals = [values[leaf.path] for leaf in problem.active]

        def on_active(*active: Any) -> Any:
            return problem.call(problem.fn, dict(zip(values, active)), watch=True)

        _, grads = phase("the reverse rule (backward)", backend.vjp, on_active, primals, us)
        _note_mutation(problem, values, before)
        return {leaf.path: backend.to_numpy(g).astype(x[leaf.path].dtype) for leaf, g in zip(problem.active, grads)}

    value.__name__ = f"<u, {getattr(problem.fn, '__name__', 'fn')}>"
    atol = _floor(problem, atol, gradient(x0), value(x0), x0)
    batched = _batched(problem, us, numeric_fn, use64, value, x0)
    if batched is None:
        note = (
            f"evaluated one point at a time ({problem.backend.name}'s vmap is used from {BATCH_FROM} elements, where "
            "fn supports it and agrees with serial calls on distinct points)"
        )
        if note not in problem.notes:
            problem.notes.append(note)
        return check_gradient(value, gradient, x0, rtol=rtol, atol=atol, step=problem.step)
    note = f"evaluated many points per call through {problem.backend.name}'s vmap"
    if note not in problem.notes:
        problem.notes.append(note)
    return check_gradient(batched, gradient, x0, rtol=rtol, atol=atol, vectorized=True, step=problem.step)


def _note_primal(problem: _Problem, out: Any, plain: list[Any]) -> None:
    """The rule's primal output (a custom rule's forward, under vjp) against fn(x) called plainly."""
    backend = problem.backend
    for k, (a, b) in enumerate(zip(_outputs(backend, out), plain)):
        ra, rb = backend.to_numpy(a).astype(np.float64), backend.to_numpy(b).astype(np.float64)
        if ra.shape != rb.shape:
            sentence = f"the rule's primal output {k} has shape {ra.shape}, but fn(x) gives {rb.shape}"
        else:
            scale = float(np.max(np.abs(rb), initial=0.0, where=np.isfinite(rb)))
            tol = 64 * backend.eps(b) * scale
            bad = ~((np.abs(ra - rb) <= tol) | (np.isnan(ra) & np.isnan(rb)) | (ra == rb))
            if not bad.any():
                continue
            i = tuple(int(j) for j in np.argwhere(bad)[0])
            sentence = (
                f"the rule's primal output {k} differs from fn(x) at {i}: {ra[i]:.9g} under the rule but "
                f"{rb[i]:.9g} called plainly; its forward (fwd) computes another function"
            )
        if sentence not in problem.problems:
            problem.problems.append(sentence)


def _merge_leaves(first: GradientReport, other: GradientReport, prefix: str) -> GradientReport:
    """first, with other's leaves appended under names that start with ``prefix``."""
    renamed = [dataclasses.replace(leaf, path=prefix + leaf.path) for leaf in other.leaves]
    return dataclasses.replace(
        first,
        leaves=first.leaves + renamed,
        problems=first.problems + [p for p in other.problems if p not in first.problems],
        calls=first.calls + other.calls,
    )


def _batched(
    problem: _Problem,
    us: list[np.ndarray | None],
    fn: Callable[..., Any],
    use64: bool,
    value: Callable[[dict[str, np.ndarray]], float],
    x0: dict[str, np.ndarray],
) -> Callable[[dict[str, np.ndarray]], np.ndarray] | None:
    """L at many points per call through the framework's vmap, or None where fn does not support it (or gives
    other values batched than one at a time)."""
    backend, paths = problem.backend, [leaf.path for leaf in problem.active]
    if sum(a.size for a in x0.values()) < BATCH_FROM:
        return None
    likes = {}
    for leaf in problem.active:
        wide = backend.float64(leaf.value) if use64 else None
        likes[leaf.path] = leaf.value if wide is None else wide

    def single(*active: Any) -> Any:
        outs = _outputs(backend, problem.call(fn, dict(zip(paths, active))))
        total = 0
        for u, o in zip(us, outs):
            if u is None:
                continue
            wide = backend.float64(o)
            o = o if wide is None else wide
            total = total + (o * backend.from_numpy(u, o)).sum()
        return total

    mapped = backend.vmap(single)
    if mapped is None:
        return None
    call: Callable[..., Any] = mapped

    def batched(xb: dict[str, np.ndarray]) -> np.ndarray:
        arrays = [backend.from_numpy(np.asarray(xb[p]), likes[p]) for p in paths]
        return np.asarray(backend.to_numpy(call(*arrays)), dtype=np.float64).reshape(-1)

    # three distinct points, not copies of one: a batching rule that mixes the samples of a batch (a custom vmap
    # rule, a vectorised callback) then gives other values than serial calls, and is not used
    rng = np.random.default_rng(7)
    points = [x0] + [
        {
            p: (a * (1 + 0.01 * rng.uniform(-1, 1, a.shape)) + 0.01 * rng.uniform(-1, 1, a.shape)).astype(a.dtype)
            for p, a in x0.items()
        }
        for _ in range(2)
    ]
    try:
        probe = batched({p: np.stack([pt[p] for pt in points]) for p in x0})
    except Exception:  # any refusal to be vmapped means: evaluate one point at a time
        return None
    serial = np.array([value(pt) for pt in points])
    if probe.shape != serial.shape or not np.allclose(probe, serial, rtol=1e-5, atol=1e-12 * np.abs(serial).max()):
        return None
    return batched


def _note_mutation(problem: _Problem, values: dict[str, Any], before: dict[str, np.ndarray]) -> None:
    for path, v in values.items():
        if not np.array_equal(problem.backend.to_numpy(v), before[path], equal_nan=True):
            _note_changed(problem, path)


def _note_changed(problem: _Problem, path: str) -> None:
    sentence = (
        f"the function changed its argument {path} in place; a forward or backward pass must not modify its inputs"
    )
    if sentence not in problem.problems:
        problem.problems.append(sentence)


def _adjoint(problem: _Problem, rng: np.random.Generator) -> list[str]:
    """⟨u, J v⟩ from the forward rule against ⟨uᵀJ, v⟩ from the reverse rule: no finite differences needed."""
    backend = problem.backend
    x0 = problem.x()
    values = problem.arrays(x0)
    primals = [values[leaf.path] for leaf in problem.active]
    vs = [rng.standard_normal(backend.to_numpy(p).shape) for p in primals]

    def on_active(*active: Any) -> Any:
        return problem.call(problem.fn, dict(zip(values, active)))

    tangents = [backend.from_numpy(v, p) for v, p in zip(vs, primals)]
    forward = phase("the forward rule (jvp)", backend.jvp, on_active, primals, tangents)
    if forward is None:
        return [f"the forward rule (jvp) is not defined for {getattr(problem.fn, '__name__', 'fn')}: reverse only"]
    out_tangents = _outputs(backend, forward)
    us = [rng.standard_normal(backend.to_numpy(o).shape) for o in out_tangents]
    _, grads = phase("the reverse rule (backward)", backend.vjp, on_active, primals, us)
    left = sum(float(np.vdot(u, backend.to_numpy(t).astype(np.float64))) for u, t in zip(us, out_tangents))
    right = sum(float(np.vdot(backend.to_numpy(g).astype(np.float64), v)) for g, v in zip(grads, vs))
    eps = max(backend.eps(p) for p in primals)  # the framework's own: bfloat16's, not its float32 copy's
    scale = sum(float(np.abs(u).sum() * np.abs(backend.to_numpy(t)).max()) for u, t in zip(us, out_tangents))
    scale += sum(float(np.abs(backend.to_numpy(g)).sum() * np.abs(v).max()) for g, v in zip(grads, vs))
    tolerance = 64 * eps * scale + 1e-300
    if abs(left - right) > tolerance:
        problem.problems.append(
            f"the forward rule (jvp) disagrees with the reverse rule (vjp): ⟨u, J v⟩ = {left:.9g} but ⟨uᵀJ, v⟩ = "
            f"{right:.9g} for random u and v (difference {abs(left - right):.3g} > {tolerance:.2g}); one of the two "
            "rules is wrong, and the reverse one was checked against finite differences above"
        )
        return []
    return ["the forward rule (jvp) agrees with the reverse rule by the adjoint identity ⟨u, J v⟩ = ⟨uᵀJ, v⟩"]


def _skipped(problem: _Problem) -> list[str]:
    skipped = [f"{leaf.path} ({leaf.why_not})" for leaf in problem.leaves if not leaf.differentiated]
    return ["not differentiated: " + ", ".join(skipped)] if skipped else []


def _second(problem: _Problem, rng: np.random.Generator, rtol: float | None, atol: float) -> GradientReport:
    """Double backward: M(x) = ⟨w, uᵀJ(x)⟩ differentiated by the rule twice, against finite differences of M."""
    backend = problem.backend
    x0 = problem.x()
    values0 = problem.arrays(x0)
    outputs = _outputs(backend, problem.call(problem.fn, values0))
    us = [rng.standard_normal(backend.to_numpy(o).shape) for o in outputs]
    ws = {path: rng.standard_normal(a.shape) for path, a in x0.items()}

    def first(*active: Any) -> Any:
        values = dict(zip(values0, active))
        _, grads = backend.vjp(lambda *a: problem.call(problem.fn, dict(zip(values0, a))), list(active), us)
        return sum((g * backend.from_numpy(ws[p], g)).sum() for p, g in zip(values, grads))

    def value(x: dict[str, np.ndarray]) -> float:
        arrays = problem.arrays(x)
        return float(backend.to_numpy(first(*[arrays[p] for p in values0])))

    def gradient(x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = problem.arrays(x)
        _, grads = phase("the double backward", backend.vjp, first, [arrays[p] for p in values0], [np.ones(())])
        return {p: backend.to_numpy(g).astype(x[p].dtype) for p, g in zip(values0, grads)}

    value.__name__ = "second derivative"
    floor = _floor(problem, atol, gradient(x0), value(x0), x0)
    return check_gradient(value, gradient, x0, rtol=rtol, atol=floor, step=problem.step)


def _floor(problem: _Problem, atol: float, g: dict[str, np.ndarray], f0: float, x0: dict[str, np.ndarray]) -> float:
    """The atol a rule is judged with when none is given: √eps of the coarsest dtype times the scale of the
    projected gradient, its largest entry or f(x) per unit of x, whichever is larger. A random cotangent leaves
    some entries at a rounding's distance from 0 (all of them, where the rule's Jacobian has a null space), which no
    finite difference resolves; they are no bug beside the gradient's own scale."""
    if atol > 0 or not g:
        return atol
    eps = max(problem.backend.eps(leaf.value) for leaf in problem.active)  # bfloat16's own, not float32's
    top = max((float(np.max(np.abs(a.astype(np.float64)))) for a in g.values() if a.size), default=0.0)
    reach = max((float(np.max(np.abs(a.astype(np.float64)))) for a in x0.values() if a.size), default=0.0)
    scale = max(top, abs(f0) / max(reach, 1.0))
    floor = float(np.sqrt(eps) * scale) if np.isfinite(scale) else 0.0
    note = (
        f"atol {floor:.2g}: √eps times the scale of uᵀJ, below which a difference does not matter (pass atol= "
        "to set another)"
    )
    if floor > 0 and note not in problem.notes:
        problem.notes.append(note)
    return floor


def _merge(first: GradientReport, second: GradientReport) -> GradientReport:
    """One report: the first derivatives' leaves, then the second derivatives' under names that say so."""
    renamed = [dataclasses.replace(leaf, path=f"d²: {leaf.path}") for leaf in second.leaves]
    return dataclasses.replace(
        first,
        leaves=first.leaves + renamed,
        problems=first.problems + second.problems,
        notes=first.notes + ["order=2: the leaves marked d² check second derivatives (double backward)"],
        calls=first.calls + second.calls,
    )
