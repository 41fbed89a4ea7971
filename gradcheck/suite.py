"""The property suite as a kit: hand over your layer or your network, get a battery of named pytest checks.

Each check is one pytest test (its id is the check's name), is driven by Hypothesis so that a failure shrinks to a
small input, and fails with a message that says which convention was broken or which element is wrong.

>>> import numpy as np
>>> class Scale:                                  # y = x·w per feature, with a hand-written backward
...     def __init__(self, rng):
...         self.params = {"w": rng.standard_normal(3)}
...     def forward(self, x):
...         self.x = x
...         return x * self.params["w"]
...     def backward(self, dy):
...         self.grads = {"w": (dy * self.x).sum(axis=0)}
...         return dy * self.params["w"]
>>> checks = layer_checks(ObjectLayer(Scale, input_shape=(3,)))
>>> [str(check) for check in checks][:3]
['input gradient', 'parameter gradients', 'no accumulation across calls']
>>> for check in checks:
...     check()

In a test file, the whole battery is::

    @pytest.mark.parametrize("check", layer_checks(ObjectLayer(Scale, input_shape=(3,))), ids=str)
    def test_scale(check):
        check()

Layers come in three styles, declared rather than guessed: :class:`ObjectLayer` (``forward(X)`` /
``backward(dY) -> dX``, parameters and gradients in dicts), :class:`FunctionLayer` (``forward(x, *params) ->
(out, cache)`` / ``backward(dout, cache) -> (dx, *dparams)``) and :class:`VJPLayer` (any ``f(x, params)`` with
``vjp(x, params, dy) -> (dx, dparams)``). Networks are adapted with :class:`NetworkAdapter`; see
:func:`network_checks`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradcheck._args import check_callable
from gradcheck.check import check_gradient
from gradcheck.errors import InvalidArgument, InvalidType
from gradcheck.nn.network import Network
from gradcheck.strategies import float_arrays, problems

__all__ = [
    "Check",
    "FunctionLayer",
    "NetworkAdapter",
    "ObjectLayer",
    "VJPLayer",
    "layer_checks",
    "network_checks",
]

EXAMPLES = 20  # Hypothesis examples per check: enough to shrink a failure, few enough for a quick suite


@dataclasses.dataclass(frozen=True)
class Check:
    """One named check; calling it runs it (and raises AssertionError with the reason when it fails)."""

    name: str
    run: Callable[[], None]

    def __call__(self) -> None:
        __tracebackhide__ = True
        self.run()

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Check({self.name!r})"


# -- layers --------------------------------------------------------------------------------------------------------
def _check_spec(kind: str, callables: dict[str, Any], input_shape: Any) -> None:
    """A declaration's functions must be callable and one example's shape a tuple of positive integers."""
    for name, value in callables.items():
        check_callable(name, value, f"declare {kind}({', '.join(callables)}, input_shape=...)")
    if not (
        isinstance(input_shape, tuple)
        and all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0 for n in input_shape)
    ):
        raise InvalidArgument(
            f"input_shape={input_shape!r}; give one example's shape as a tuple of positive integers, e.g. (4,)"
        )


@dataclasses.dataclass(frozen=True)
class ObjectLayer:
    """A layer object made by ``make(rng)``, with ``forward(X) -> Y`` and ``backward(dY) -> dX``.

    Its parameters are the dict ``getattr(layer, params)``; after ``backward`` its gradients are the dict
    ``getattr(layer, grads)`` (or, with ``grads=None``, backward returns ``(dX, grads)``). ``clear`` names a method
    that zeroes gradient buffers, for layers that accumulate (``accumulates=True``). ``input_shape`` is one
    example's shape; rows (the first axis) are examples, and ``rowwise=True`` declares that each output row
    depends only on its input row.
    """

    make: Callable[[np.random.Generator], Any]
    input_shape: tuple[int, ...]
    params: str = "params"
    grads: str | None = "grads"
    clear: str | None = None
    accumulates: bool = False
    rowwise: bool = True
    float32: bool = True

    def __post_init__(self) -> None:
        _check_spec("ObjectLayer", {"make": self.make}, self.input_shape)
        if self.accumulates and self.clear is None:
            raise InvalidArgument("accumulates=True needs clear='<method that zeroes the gradient buffers>'")

    def adapter(self) -> _Adapter:
        spec = self

        def backward(layer: Any, x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            out = layer.backward(dy)
            if spec.grads is None:
                dx, grads = out
            else:
                dx, grads = out, getattr(layer, spec.grads)
            return np.asarray(dx), {k: np.array(v, copy=True) for k, v in grads.items()}

        return _Adapter(
            make=self.make,
            get=lambda layer: dict(getattr(layer, spec.params)),
            put=lambda layer, p: setattr(layer, spec.params, dict(p)),
            forward=lambda layer, x: np.asarray(layer.forward(x)),
            backward=backward,
            clear=(lambda layer: getattr(layer, str(spec.clear))()) if self.clear else None,
            spec=self,
        )


@dataclasses.dataclass(frozen=True)
class FunctionLayer:
    """A pair ``forward(x, *params) -> (out, cache)`` and ``backward(dout, cache) -> (dx, *dparams)``, with
    ``params(rng)`` drawing the parameters as a tuple in forward's order."""

    forward: Callable[..., tuple[Any, Any]]
    backward: Callable[..., tuple[Any, ...]]
    params: Callable[[np.random.Generator], Sequence[np.ndarray]]
    input_shape: tuple[int, ...]
    rowwise: bool = True
    float32: bool = True
    accumulates: bool = False
    clear: None = None

    def __post_init__(self) -> None:
        _check_spec(
            "FunctionLayer",
            {"forward": self.forward, "backward": self.backward, "params": self.params},
            self.input_shape,
        )

    def adapter(self) -> _Adapter:
        """The pair as a :class:`VJPLayer` whose parameters are named p0, p1, … in forward's order."""

        def ordered(params: dict[str, np.ndarray]) -> list[np.ndarray]:
            return [params[f"p{i}"] for i in range(len(params))]

        def f(x: np.ndarray, params: dict[str, np.ndarray]) -> Any:
            return self.forward(x, *ordered(params))[0]

        def vjp(x: np.ndarray, params: dict[str, np.ndarray], dy: np.ndarray) -> tuple[Any, dict[str, Any]]:
            dx, *dparams = self.backward(dy, self.forward(x, *ordered(params))[1])
            return dx, {f"p{i}": g for i, g in enumerate(dparams)}

        def draw(rng: np.random.Generator) -> dict[str, np.ndarray]:
            return {f"p{i}": np.asarray(p) for i, p in enumerate(self.params(rng))}

        return dataclasses.replace(VJPLayer(f, vjp, draw, self.input_shape).adapter(), spec=self)


@dataclasses.dataclass(frozen=True)
class VJPLayer:
    """Any ``f(x, params) -> y`` with ``vjp(x, params, dy) -> (dx, dparams)``; ``params(rng)`` draws the
    parameters as a dict of arrays."""

    f: Callable[[np.ndarray, dict[str, np.ndarray]], Any]
    vjp: Callable[[np.ndarray, dict[str, np.ndarray], np.ndarray], tuple[Any, dict[str, Any]]]
    params: Callable[[np.random.Generator], dict[str, np.ndarray]]
    input_shape: tuple[int, ...]
    rowwise: bool = True
    float32: bool = True
    accumulates: bool = False
    clear: None = None

    def __post_init__(self) -> None:
        _check_spec("VJPLayer", {"f": self.f, "vjp": self.vjp, "params": self.params}, self.input_shape)

    def adapter(self) -> _Adapter:
        spec = self

        def backward(state: dict[str, Any], x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
            dx, dparams = spec.vjp(x, dict(state["params"]), dy)
            return np.asarray(dx), {k: np.asarray(v) for k, v in dparams.items()}

        return _Adapter(
            make=lambda rng: {"params": dict(spec.params(rng))},
            get=lambda state: dict(state["params"]),
            put=lambda state, p: state.update(params=dict(p)),
            forward=lambda state, x: np.asarray(spec.f(x, dict(state["params"]))),
            backward=backward,
            clear=None,
            spec=self,
        )


@dataclasses.dataclass(frozen=True)
class _Adapter:
    """Any layer style as: make, get/put parameters, forward, backward (dx and parameter gradients), clear."""

    make: Callable[[np.random.Generator], Any]
    get: Callable[[Any], dict[str, np.ndarray]]
    put: Callable[[Any, dict[str, np.ndarray]], None]
    forward: Callable[[Any, np.ndarray], np.ndarray]
    backward: Callable[[Any, np.ndarray, np.ndarray], tuple[np.ndarray, dict[str, np.ndarray]]]
    clear: Callable[[Any], None] | None
    spec: Any

    def gradients(self, layer: Any, x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """forward then backward at x with cotangent dy, buffers cleared first where the layer accumulates."""
        if self.clear is not None:
            self.clear(layer)
        self.forward(layer, x)
        return self.backward(layer, x, dy)


LayerSpec = ObjectLayer | FunctionLayer | VJPLayer


def layer_checks(spec: LayerSpec, *, examples: int = EXAMPLES, hypothesis: settings | None = None) -> list[Check]:
    """The battery for one layer: input and parameter gradients through random cotangents, no accumulation (or
    clearing that works), a backward that can run twice, independent rows, float32, shapes and dtypes.

    ``examples`` is the number of Hypothesis examples per check; ``hypothesis`` is a :class:`hypothesis.settings`
    the checks inherit the rest from (the database, the phases: drop shrinking for a quick pass)."""
    if not isinstance(spec, (ObjectLayer, FunctionLayer, VJPLayer)):
        raise InvalidArgument(f"spec={spec!r}; declare the layer as ObjectLayer, FunctionLayer or VJPLayer")
    adapter = spec.adapter()
    battery = [
        ("input gradient", _input_gradient),
        ("parameter gradients", _parameter_gradients),
        ("no accumulation across calls" if not spec.accumulates else "clearing gradient buffers", _accumulation),
        ("backward can run twice", _backward_twice),
        ("shapes and dtypes of every gradient", _shapes),
    ]
    if spec.rowwise:
        battery.append(("rows are independent", _rows))
    if spec.float32:
        battery.append(("float32", _float32))
    return [Check(name, _driven(adapter, test, _settings(examples, hypothesis))) for name, test in battery]


def _settings(examples: int, parent: settings | None) -> settings:
    return settings(parent, max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _driven(adapter: _Adapter, test: Callable[..., None], chosen: settings) -> Callable[[], None]:
    """``test(adapter, layer, x, dy)`` under Hypothesis: a batch of inputs and a cotangent drawn for each example,
    the layer made from a drawn seed, so that a failure shrinks."""

    @chosen
    @given(st.data())
    def run(data: st.DataObject) -> None:
        rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
        layer = adapter.make(rng)
        batch = data.draw(st.integers(1, 4), label="batch")
        x = data.draw(float_arrays((batch, *adapter.spec.input_shape), scale=2.0), label="x")
        y = adapter.forward(layer, x)
        dy = data.draw(float_arrays(np.shape(y)), label="dy")
        test(adapter, layer, x, dy)

    return run


def _assert_gradient(
    loss: Callable[[Any], float], grad: Callable[[Any], Any], x: Any, what: str, *, allow_inconclusive: bool = False
) -> None:
    """check_gradient as a check: a wrong gradient, or one of the wrong structure or shape, fails with ``what``."""
    __tracebackhide__ = True
    try:
        atol = _floor(grad(x), loss(x), x)
        report = check_gradient(loss, grad, x, atol=atol, allow_inconclusive=allow_inconclusive)
    except (InvalidArgument, InvalidType) as error:
        raise AssertionError(f"{what}: {error}") from None
    if not report.ok:
        raise AssertionError(f"{what}:\n{report}")


def _floor(gradient: Any, value: float, x: Any) -> float:
    """The absolute tolerance of a drawn check: √eps of the coarsest dtype times the gradient's scale, its largest
    entry or the loss per unit of x, whichever is larger. Random draws put some entries' derivatives below what the
    loss's rounding can resolve; an error that small next to the gradient's own scale is no bug, and the check does
    not wait for a draw that resolves it."""
    floats = [leaf for leaf in map(np.asarray, _leaves(gradient)) if np.issubdtype(leaf.dtype, np.floating)]
    floats = [leaf for leaf in floats if leaf.size]
    if not floats:
        return 0.0
    eps = max(float(np.finfo(leaf.dtype).eps) for leaf in floats)
    top = max(float(np.nanmax(np.abs(leaf.astype(np.float64)))) for leaf in floats)
    points = [np.abs(np.asarray(p, dtype=np.float64)) for p in _leaves(x) if np.size(p)]
    reach = max((float(p.max()) for p in points), default=0.0)
    scale = max(top, abs(float(value)) / max(reach, 1.0))
    return float(np.sqrt(eps) * scale) if np.isfinite(scale) else 0.0


def _leaves(tree: Any) -> list[Any]:
    if isinstance(tree, dict):
        return [leaf for value in tree.values() for leaf in _leaves(value)]
    if isinstance(tree, (list, tuple)):
        return [leaf for value in tree for leaf in _leaves(value)]
    return [tree]


def _input_gradient(
    adapter: _Adapter, layer: Any, x: np.ndarray, dy: np.ndarray, *, allow_inconclusive: bool = False
) -> None:
    def loss(x_: np.ndarray) -> float:
        return float(np.vdot(dy, adapter.forward(layer, x_)))

    def grad(x_: np.ndarray) -> np.ndarray:
        return adapter.gradients(layer, x_, dy)[0]

    what = "dX = backward(dY) disagrees with finite differences of ⟨dY, Y⟩"
    _assert_gradient(loss, grad, x, what, allow_inconclusive=allow_inconclusive)


def _parameter_gradients(adapter: _Adapter, layer: Any, x: np.ndarray, dy: np.ndarray) -> None:
    params = adapter.get(layer)
    if not params:
        return

    def loss(p: dict[str, np.ndarray]) -> float:
        adapter.put(layer, p)
        return float(np.vdot(dy, adapter.forward(layer, x)))

    def grad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        adapter.put(layer, p)
        return adapter.gradients(layer, x, dy)[1]

    try:
        copies = {k: np.array(v, copy=True) for k, v in params.items()}
        _assert_gradient(loss, grad, copies, "the parameter gradients disagree with finite differences of ⟨dY, Y⟩")
    finally:
        adapter.put(layer, params)


def _accumulation(adapter: _Adapter, layer: Any, x: np.ndarray, dy: np.ndarray) -> None:
    adapter.forward(layer, x)
    _, first = adapter.backward(layer, x, dy)
    adapter.forward(layer, x)
    _, second = adapter.backward(layer, x, dy)
    for name in first:
        if adapter.spec.accumulates:
            if not np.allclose(second[name], 2 * first[name], rtol=1e-9, atol=0):
                raise AssertionError(f"accumulates=True is declared, but a second backward did not add to {name}")
            adapter.clear(layer)  # type: ignore[misc]
            adapter.forward(layer, x)
            _, again = adapter.backward(layer, x, dy)
            if not np.allclose(again[name], first[name], rtol=1e-9, atol=0):
                raise AssertionError(f"clear={adapter.spec.clear!r} did not reset the gradient buffer of {name}")
        elif not np.array_equal(first[name], second[name]):
            ratio = np.linalg.norm(second[name]) / max(np.linalg.norm(first[name]), 1e-300)
            hint = (
                " (the second is twice the first: gradients accumulate; declare accumulates=True and clear=...)"
                if np.isclose(ratio, 2)
                else ""
            )
            raise AssertionError(f"the gradient of {name} changed between two identical backward passes{hint}")


def _backward_twice(adapter: _Adapter, layer: Any, x: np.ndarray, dy: np.ndarray) -> None:
    if adapter.clear is not None:
        adapter.clear(layer)
    adapter.forward(layer, x)
    x_before, dy_before = x.copy(), dy.copy()
    dx1, _ = adapter.backward(layer, x, dy)
    if adapter.clear is not None:
        adapter.clear(layer)
    dx2, _ = adapter.backward(layer, x, dy)
    if not (np.array_equal(x, x_before) and np.array_equal(dy, dy_before)):
        raise AssertionError("backward changed its input or its cotangent in place")
    if not np.array_equal(dx1, dx2):
        raise AssertionError("a second backward from the same forward pass gave another dX: backward spoils its cache")


def _shapes(adapter: _Adapter, layer: Any, x: np.ndarray, dy: np.ndarray) -> None:
    dx, grads = adapter.gradients(layer, x, dy)
    params = adapter.get(layer)
    problems_ = [] if dx.shape == x.shape else [f"dX has shape {dx.shape}, X has {x.shape}"]
    if set(grads) != set(params):
        problems_.append(f"gradients are given for {sorted(grads)} but the parameters are {sorted(params)}")
    for name in set(grads) & set(params):
        g, p = np.asarray(grads[name]), np.asarray(params[name])
        if g.shape != p.shape:
            fix = " (the transpose: check the (n_out, n_in) convention)" if g.shape == p.shape[::-1] else ""
            problems_.append(f"the gradient of {name} has shape {g.shape}, the parameter {p.shape}{fix}")
        elif g.dtype != p.dtype:
            problems_.append(f"the gradient of {name} is {g.dtype}, the parameter {p.dtype}")
    if problems_:
        raise AssertionError("; ".join(problems_))


def _rows(adapter: _Adapter, layer: Any, x: np.ndarray, dy: np.ndarray) -> None:
    dx, grads = adapter.gradients(layer, x, dy)
    rows = [adapter.gradients(layer, x[i : i + 1], dy[i : i + 1]) for i in range(len(x))]
    scale = 1 + np.abs(dx).max()
    if not np.allclose(np.concatenate([r[0] for r in rows]), dx, rtol=1e-7, atol=1e-9 * scale):
        raise AssertionError("dX of a batch is not the rows' dX stacked: rows are not independent (rowwise=False?)")
    for name, g in grads.items():
        total = sum(r[1][name] for r in rows)
        if np.allclose(total / len(x), g, rtol=1e-7, atol=1e-12) and len(x) > 1 and not np.allclose(total, g):
            raise AssertionError(f"the gradient of {name} is the mean over the batch where ⟨dY, Y⟩ needs the sum")
        if not np.allclose(total, g, rtol=1e-7, atol=1e-9 * (1 + np.abs(g).max())):
            raise AssertionError(f"the gradient of {name} is not the sum of the rows' gradients")


def _float32(adapter: _Adapter, layer: Any, x: np.ndarray, dy: np.ndarray) -> None:
    params = adapter.get(layer)
    adapter.put(layer, {k: np.asarray(v, dtype=np.float32) for k, v in params.items()})
    try:
        # float32 leaves some drawn elements unresolvable (a kink within reach, a tiny cotangent): the float64
        # checks judge the values; here an element float32 cannot resolve does not fail the layer
        _input_gradient(adapter, layer, x.astype(np.float32), dy.astype(np.float32), allow_inconclusive=True)
    finally:
        adapter.put(layer, params)


# -- networks ------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class NetworkAdapter:
    """How your network is built from one of the kit's, and how its gradients come back.

    ``build(net)`` makes your network from a :class:`~gradcheck.Network` (``net.sizes``, ``net.weights`` (n_out,
    n_in), ``net.biases``, ``net.activation``, ``net.output``, ``net.cost``). ``backprop(yours, x, y) ->
    (grad_b, grad_w)``, lists per layer, for one example (``per_example=True``, x and y as given by ``examples``)
    or for the batch. ``deltas(yours, x, y)``, if given, returns one example's δ per layer, for the invariants.

    Conventions, declared: ``examples`` is "rows" (x of shape (n,)) or "columns" (x of shape (n, 1), the book's);
    ``weights`` is "out_in" or "in_out" for your gradients' layout; ``reduction`` is "mean" or "sum" over the batch.
    """

    build: Callable[[Network], Any]
    backprop: Callable[[Any, np.ndarray, np.ndarray], tuple[Sequence[Any], Sequence[Any]]]
    deltas: Callable[[Any, np.ndarray, np.ndarray], Sequence[Any]] | None = None
    per_example: bool = True
    examples: str = "columns"
    weights: str = "out_in"
    reduction: str = "mean"
    activations: tuple[str, ...] = ("sigmoid",)
    costs: tuple[str, ...] = ("cross_entropy", "quadratic")

    def __post_init__(self) -> None:
        check_callable("build", self.build, "pass NetworkAdapter(build=lambda net: YourNetwork(...), backprop=...)")
        check_callable("backprop", self.backprop, "pass backprop=lambda yours, x, y: (grad_b, grad_w)")
        if self.deltas is not None:
            check_callable("deltas", self.deltas, "pass deltas=lambda yours, x, y: [delta per layer], or None")
        for name, value, allowed in (
            ("examples", self.examples, ("rows", "columns")),
            ("weights", self.weights, ("out_in", "in_out")),
            ("reduction", self.reduction, ("mean", "sum")),
        ):
            if value not in allowed:
                raise InvalidArgument(f"{name}={value!r}; declare one of {allowed}")

    def example(self, v: np.ndarray) -> np.ndarray:
        return v.reshape(-1, 1) if self.examples == "columns" else v.reshape(-1)

    def gradients(self, net: Network, X: np.ndarray, Y: np.ndarray) -> dict[str, list[np.ndarray]]:
        """Your gradients of the batch, in the kit's convention (mean over rows, W as (n_out, n_in))."""
        yours = self.build(net)
        if self.per_example:
            parts = [self.backprop(yours, self.example(x), self.example(y)) for x, y in zip(X, Y)]
            grad_b = [_total([np.asarray(p[0][l]).reshape(-1) for p in parts]) for l in range(net.num_layers)]
            grad_w = [_total([np.asarray(p[1][l]) for p in parts]) for l in range(net.num_layers)]
        else:
            gb, gw = self.backprop(yours, X if self.examples == "rows" else X.T, Y if self.examples == "rows" else Y.T)
            grad_b = [np.asarray(g, dtype=np.float64).reshape(-1) for g in gb]
            grad_w = [np.asarray(g, dtype=np.float64) for g in gw]
        if self.weights == "in_out":
            grad_w = [g.T for g in grad_w]
        factor = 1.0 / len(X) if self.reduction == "sum" or self.per_example else 1.0
        return {"weights": [g * factor for g in grad_w], "biases": [g * factor for g in grad_b]}


def _total(arrays: list[np.ndarray]) -> np.ndarray:
    return np.asarray(np.sum([a.astype(np.float64) for a in arrays], axis=0))


def network_checks(
    adapter: NetworkAdapter, *, examples: int = EXAMPLES, hypothesis: settings | None = None
) -> list[Check]:
    """The battery for a network: gradients against finite differences on drawn networks (shrinking to a minimal
    failing one, with a diagnosis when they match under another convention), and with ``deltas``, BP1 for both
    costs, BP2 in every hidden layer, BP3 and BP4, and the single-output identity between the two costs."""
    strategy = problems(
        activations=list(adapter.activations),
        outputs=["sigmoid"],
        costs=list(adapter.costs),
        dtypes=["float64"],
        l2=[0.0],
        max_batch=3,
    )
    battery: list[tuple[str, Callable[..., None]]] = [("gradients match finite differences", _net_gradients)]
    if adapter.deltas is not None:
        battery += [
            ("BP1: the output delta", _bp1),
            ("BP2: every hidden delta", _bp2),
            ("BP3 and BP4: gradients from the deltas", _bp34),
        ]
        if {"cross_entropy", "quadratic"} <= set(adapter.costs):
            battery.append(("one output: quadratic deltas are σ′(zᴸ) times cross-entropy's", _same_decay))
    chosen = _settings(examples, hypothesis)
    return [Check(name, _net_driven(adapter, strategy, test, chosen)) for name, test in battery]


def _net_driven(
    adapter: NetworkAdapter, strategy: Any, test: Callable[..., None], chosen: settings
) -> Callable[[], None]:
    @chosen
    @given(strategy)
    def run(problem: tuple[Network, np.ndarray, np.ndarray]) -> None:
        test(adapter, *problem)

    return run  # type: ignore[no-any-return]


def _net_gradients(adapter: NetworkAdapter, net: Network, X: np.ndarray, Y: np.ndarray) -> None:
    loss, _ = net.as_functions(X, Y)
    yours = adapter.gradients(net, X, Y)
    expected = net.backprop(X, Y)
    wrong_shape = [
        (l, g.shape, w.shape) for l, (g, w) in enumerate(zip(yours["weights"], net.weights)) if g.shape != w.shape
    ]
    if wrong_shape:
        l, got, want = wrong_shape[0]
        other = "in_out" if adapter.weights == "out_in" else "out_in"
        fix = f": declare weights={other!r}" if got == want[::-1] else ""
        raise AssertionError(f"the weight gradient of layer {l} has shape {got}, the weights {want}{fix}")
    try:
        report = check_gradient(
            loss, lambda params: yours, net.params, atol=_floor(yours, loss(net.params), net.params)
        )
    except (InvalidArgument, InvalidType) as error:
        raise AssertionError(f"your gradients do not have the network's structure: {error}") from None
    if not report.ok:
        raise AssertionError(_diagnosis(adapter, yours, expected.grad_w, expected.grad_b, len(X)) + f"\n{report}")


def _diagnosis(
    adapter: NetworkAdapter,
    yours: dict[str, list[np.ndarray]],
    grad_w: list[np.ndarray],
    grad_b: list[np.ndarray],
    n: int,
) -> str:
    """Which declaration would make your gradients right, if one would."""
    got_w, got_b = yours["weights"], yours["biases"]

    def close(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
        return all(np.allclose(x, y, rtol=1e-6, atol=1e-12) for x, y in zip(a, b))

    if close(got_b, grad_b) and not close(got_w, grad_w) and close([g.T for g in got_w], grad_w):
        other = "in_out" if adapter.weights == "out_in" else "out_in"
        return f"your weight gradients are the transpose of the right ones: declare weights={other!r}"
    for factor, fix in ((n, "reduction='sum'"), (1 / n, "reduction='mean'")):
        if n > 1 and close([g / factor for g in got_w], grad_w) and close([g / factor for g in got_b], grad_b):
            return f"your gradients are off by a factor of the batch size {n}: declare {fix} (or change your loss)"
    if close([-g for g in got_w], grad_w) and close([-g for g in got_b], grad_b):
        return "your gradients have the wrong sign (the gradient of the loss, not the update step)"
    wrong = [f"biases[{l}]" for l, (g, w) in enumerate(zip(got_b, grad_b)) if not np.allclose(g, w, rtol=1e-6)]
    wrong += [f"weights[{l}]" for l, (g, w) in enumerate(zip(got_w, grad_w)) if not np.allclose(g, w, rtol=1e-6)]
    return f"your gradients of {', '.join(wrong)} disagree with finite differences, under every convention tried"


def _example_deltas(adapter: NetworkAdapter, net: Network, X: np.ndarray, Y: np.ndarray) -> list[list[np.ndarray]]:
    assert adapter.deltas is not None
    yours = adapter.build(net)
    return [
        [
            np.asarray(d, dtype=np.float64).reshape(-1)
            for d in adapter.deltas(yours, adapter.example(x), adapter.example(y))
        ]
        for x, y in zip(X, Y)
    ]


def _bp1(adapter: NetworkAdapter, net: Network, X: np.ndarray, Y: np.ndarray) -> None:
    bp = net.backprop(X, Y)
    for b, deltas in enumerate(_example_deltas(adapter, net, X, Y)):
        a, z, y = bp.activations[-1][b], bp.zs[-1][b], Y[b]
        want = a - y if net.cost == "cross_entropy" else (a - y) * net.output_activation.prime(z, a)
        if not np.allclose(deltas[-1], want, rtol=1e-7, atol=1e-12):
            form = "a − y" if net.cost == "cross_entropy" else "(a − y) ⊙ σ′(zᴸ)"
            raise AssertionError(
                f"BP1 under {net.cost}: example {b}'s output delta is {deltas[-1]}, not {form} = {want}"
            )


def _bp2(adapter: NetworkAdapter, net: Network, X: np.ndarray, Y: np.ndarray) -> None:
    bp = net.backprop(X, Y)
    for b, deltas in enumerate(_example_deltas(adapter, net, X, Y)):
        for l in range(net.num_layers - 1):
            z, a = bp.zs[l][b], bp.activations[l + 1][b]
            want = (net.weights[l + 1].T @ deltas[l + 1]) * net.hidden_activation.prime(z, a)
            if not np.allclose(deltas[l], want, rtol=1e-7, atol=1e-12):
                raise AssertionError(f"BP2 in hidden layer {l}: example {b}'s delta is not ((W)ᵀ δ) ⊙ σ′(z)")


def _same_decay(adapter: NetworkAdapter, net: Network, X: np.ndarray, Y: np.ndarray) -> None:
    """With one sigmoid output unit, every layer's delta under the quadratic cost is σ′(zᴸ) times the delta under
    cross-entropy, per example: the cost changes only where backprop starts, not how the deltas decay."""
    if net.sizes[-1] != 1:
        return
    Y = np.clip(Y, 0.0, 1.0)  # targets valid for both costs (the identity holds for any target)
    twins = {
        cost: Network(
            net.sizes, activation=net.activation, output="sigmoid", cost=cost, weights=net.weights, biases=net.biases
        )
        for cost in ("cross_entropy", "quadratic")
    }
    deltas = {cost: _example_deltas(adapter, twin, X, Y) for cost, twin in twins.items()}
    bp = twins["cross_entropy"].backprop(X, Y)
    for b in range(len(X)):
        z, a = bp.zs[-1][b], bp.activations[-1][b]
        factor = net.output_activation.prime(z, a)
        for l, (ce, quad) in enumerate(zip(deltas["cross_entropy"][b], deltas["quadratic"][b])):
            if not np.allclose(quad, factor * ce, rtol=1e-7, atol=1e-14):
                raise AssertionError(
                    f"layer {l}, example {b}: the quadratic cost's delta is not σ′(zᴸ) = {float(factor[0]):.6g} times "
                    "cross-entropy's; with one output unit the two differ only by that factor"
                )


def _bp34(adapter: NetworkAdapter, net: Network, X: np.ndarray, Y: np.ndarray) -> None:
    bp = net.backprop(X, Y)
    deltas = _example_deltas(adapter, net, X, Y)
    yours = adapter.gradients(net, X, Y)
    for l in range(net.num_layers):
        if yours["weights"][l].shape != net.weights[l].shape:
            raise AssertionError(
                f"BP4 in layer {l}: the weight gradient has shape {yours['weights'][l].shape}, the "
                f"weights {net.weights[l].shape}"
            )
        grad_b = np.mean([d[l] for d in deltas], axis=0)
        grad_w = np.mean([np.outer(d[l], bp.activations[l][b]) for b, d in enumerate(deltas)], axis=0)
        if not np.allclose(yours["biases"][l], grad_b, rtol=1e-7, atol=1e-12):
            raise AssertionError(f"BP3 in layer {l}: the bias gradient is not the mean of your deltas")
        if not np.allclose(yours["weights"][l], grad_w, rtol=1e-7, atol=1e-12):
            raise AssertionError(f"BP4 in layer {l}: the weight gradient is not the mean of δ (a of the layer below)ᵀ")
