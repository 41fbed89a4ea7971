"""Hypothesis strategies for networks, data and the arrays users' own gradients take.

Every parameter is drawn through Hypothesis, never from a hidden generator, so a failing example shrinks: to fewer
layers, narrower layers, a smaller batch and simpler numbers. Arguments are checked when a strategy is built, with
messages that say how to fix them.

>>> from hypothesis import given
>>> @given(problems(activations=["tanh"], costs=["cross_entropy"]))
... def test_backprop(problem):
...     net, X, Y = problem            # X (batch, sizes[0]), Y (batch, sizes[-1]) valid for net.cost
...     assert_gradient(*net.as_functions(X, Y), net.params)

Importing this module registers :func:`networks` for ``st.from_type(Network)``; the package's ``hypothesis``
entry point does the same as soon as Hypothesis is imported.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradcheck._args import finite, float_dtype, is_real
from gradcheck.errors import InvalidArgument, InvalidType
from gradcheck.nn.activations import HIDDEN, OUTPUTS
from gradcheck.nn.costs import COSTS
from gradcheck.nn.network import Network

__all__ = ["architectures", "float_arrays", "networks", "problems", "pytrees"]


def architectures(
    *, min_layers: int = 1, max_layers: int = 4, min_width: int = 1, max_width: int = 8
) -> st.SearchStrategy[list[int]]:
    """Layer sizes ``[n_in, n_1, …, n_L]`` with L weighted layers, ``min_layers ≤ L ≤ max_layers``; shrinks towards
    one layer of width ``min_width``.

    Args:
        min_layers: the fewest weighted layers, at least 1.
        max_layers: the most weighted layers.
        min_width: the narrowest layer, at least 1.
        max_width: the widest layer.

    Returns:
        A strategy of lists of layer sizes.
    """
    _check_range("min_layers", min_layers, "max_layers", max_layers, lowest=1)
    _check_range("min_width", min_width, "max_width", max_width, lowest=1)
    return st.lists(
        st.integers(int(min_width), int(max_width)), min_size=int(min_layers) + 1, max_size=int(max_layers) + 1
    )


def networks(
    *,
    architectures: st.SearchStrategy[list[int]] | None = None,
    activations: Sequence[str] = tuple(HIDDEN),
    outputs: Sequence[str] = tuple(OUTPUTS),
    costs: Sequence[str] = tuple(COSTS),
    dtypes: Sequence[Any] = ("float64", "float32"),
    weight_scale: float = 1.0,
    l2: Sequence[float] = (0.0, 0.1),
) -> st.SearchStrategy[Network]:
    """:class:`~gradcheck.nn.Network` objects whose output and cost fit together.

    Weights are uniform with the variance of network2's N(0, 1/n_in) initialisation times ``weight_scale``² (so
    ``weight_scale=5`` saturates sigmoid units), biases with variance ``weight_scale``²; they shrink towards 0.
    ``l2`` lists the regularisation strengths to choose from.

    >>> from hypothesis import find
    >>> net = find(networks(activations=["tanh"], costs=["log_likelihood"]), lambda net: net.num_layers == 2)
    >>> net.activation, net.output, len(net.weights)
    ('tanh', 'softmax', 2)

    Args:
        architectures: a strategy of layer sizes (default :func:`architectures`).
        activations: the hidden activations to choose from.
        outputs: the output activations to choose from.
        costs: the costs to choose from; only (output, cost) pairs that fit together are drawn.
        dtypes: the dtypes to choose from, float64 and float32.
        weight_scale: the scale of the initial weights (1 is network2's initialisation).
        l2: the regularisation strengths to choose from, each >= 0.

    Returns:
        A strategy of :class:`~gradcheck.nn.Network` objects.
    """
    options = _given(networks, locals())
    _NetworkSpec.of(**options)  # refuse bad options now, not at the first draw
    return _Draw.networks(**options)


@dataclass(frozen=True)
class _NetworkSpec:
    """networks()'s options, checked and normalised."""

    architectures: st.SearchStrategy[list[int]]
    activations: list[str]
    heads: list[tuple[str, str]]  # (output, cost) pairs that fit together
    dtypes: list[np.dtype]
    weight_scale: float
    l2: list[float]

    @classmethod
    def of(cls, **options: Any) -> _NetworkSpec:
        bound = inspect.signature(networks).bind(**options)
        bound.apply_defaults()
        arch, activations, outputs, costs, dtypes, weight_scale, l2 = bound.arguments.values()
        arch = architectures() if arch is None else arch
        if not isinstance(arch, st.SearchStrategy):
            raise InvalidType(f"architectures={arch!r}; pass a strategy such as architectures(max_layers=3)")
        outputs = _check_names("outputs", outputs, OUTPUTS)
        costs = _check_names("costs", costs, COSTS)
        heads = [(o, c) for c in costs for o in outputs if o in COSTS[c].outputs]
        if not heads:
            raise InvalidArgument(
                f"no cost in costs={list(costs)} fits an output in outputs={list(outputs)}: "
                "cross_entropy needs 'sigmoid', log_likelihood needs 'softmax', quadratic takes any"
            )
        if not (is_real(weight_scale) and finite(weight_scale) and weight_scale > 0):
            raise InvalidArgument(
                f"weight_scale={weight_scale!r}; it must be a positive finite number (1 is network2's initialisation)"
            )
        l2 = _non_empty("l2", l2)
        if any(not (is_real(v) and finite(v) and v >= 0) for v in l2):
            raise InvalidArgument(f"l2={list(l2)!r}; every strength must be a finite number >= 0")
        dtypes = [float_dtype("dtype", d) for d in _non_empty("dtypes", dtypes)]
        return cls(arch, _check_names("activations", activations, HIDDEN), heads, dtypes, float(weight_scale), l2)


def problems(
    *,
    min_batch: int = 1,
    max_batch: int = 6,
    input_scale: float = 2.0,
    kink_margin: float | None = None,
    **network_options: Any,
) -> st.SearchStrategy[tuple[Network, np.ndarray, np.ndarray]]:
    """``(net, X, Y)``: a network from :func:`networks` (``network_options`` go there) with a batch of inputs
    X (batch, n_in) in [−input_scale, input_scale] and targets Y (batch, n_out) valid for its cost: one-hot for
    log_likelihood, in [0, 1] for cross_entropy, in [−1, 1] for quadratic.

    ``kink_margin`` keeps every hidden pre-activation of a ReLU or leaky-ReLU network at least that far from 0, so
    that finite differences never straddle a kink.

    Args:
        min_batch: the smallest batch, at least 1.
        max_batch: the largest batch.
        input_scale: the inputs are uniform in [−input_scale, input_scale].
        kink_margin: the least distance of every hidden pre-activation from 0 in ReLU networks (None: no margin).
        **network_options: the options of :func:`networks`.

    Returns:
        A strategy of ``(net, X, Y)`` triples.
    """
    _check_range("min_batch", min_batch, "max_batch", max_batch, lowest=1)
    min_batch, max_batch = int(min_batch), int(max_batch)
    if not (is_real(input_scale) and finite(input_scale) and input_scale > 0):
        raise InvalidArgument(f"input_scale={input_scale!r}; it must be a positive finite number")
    if kink_margin is not None and not (isinstance(kink_margin, (int, float)) and 0 <= kink_margin < 1):
        raise InvalidArgument(f"kink_margin={kink_margin!r}; use a small non-negative distance such as 1e-3, or None")
    known = {"architectures", "activations", "outputs", "costs", "dtypes", "weight_scale", "l2"}
    unknown = sorted(set(network_options) - known)
    if unknown:
        raise InvalidArgument(
            f"problems() got unknown option(s) {unknown}; it takes min_batch, max_batch, "
            f"input_scale, kink_margin and networks()'s options {sorted(known)}"
        )
    networks(**network_options)  # refuse bad network options now
    return _Draw.problems(**_given(problems, locals()))


def float_arrays(
    shape: int | np.integer | tuple[int | np.integer, ...],
    *,
    dtype: Any = "float64",
    scale: float = 1.0,
    avoid: Sequence[float] = (),
    margin: float = 0.0,
) -> st.SearchStrategy[np.ndarray]:
    """Arrays of ``shape`` with finite, well-scaled entries in [−scale, scale] (no subnormals), each at least
    ``margin`` away from every point in ``avoid`` (for example ``avoid=(0.0,)`` for a ReLU's kink).

    Args:
        shape: a whole number or a tuple of them.
        dtype: float64 or float32.
        scale: the entries lie in [−scale, scale]; any positive finite number.
        avoid: points every entry keeps at least ``margin`` away from.
        margin: that distance, >= 0, leaving room in [−scale, scale].

    Returns:
        A strategy of ndarrays.
    """
    shape = _check_shape(shape)
    dt = _array_dtype(dtype)
    if not (is_real(scale) and finite(scale) and scale > 0):
        raise InvalidArgument(f"scale={scale!r}; it must be a positive finite number")
    if not is_real(margin):
        raise InvalidType(f"margin={margin!r}; it must be a number, the least distance from every point of avoid")
    if isinstance(avoid, (str, bytes)) or not isinstance(avoid, Sequence) or not all(is_real(p) for p in avoid):
        raise InvalidType(f"avoid={avoid!r}; pass a list of numbers to keep away from, e.g. avoid=(0.0,)")
    if not (finite(margin) and margin >= 0) or (avoid and margin * 2 >= scale):
        raise InvalidArgument(
            f"margin={margin!r} with scale={scale!r}: the margin must be a finite number >= 0 and leave room in "
            "[−scale, scale]; lower it or raise scale"
        )
    elements = _uniform(dt, -float(scale), float(scale))
    if avoid and margin:
        points = [float(p) for p in avoid]
        elements = elements.filter(lambda v: all(abs(v - p) >= margin for p in points))
    return hnp.arrays(dt, shape, elements=elements)


def pytrees(structure: Any, **array_options: Any) -> st.SearchStrategy[Any]:
    """A pytree shaped like ``structure``: dicts, lists and tuples are kept, and every shape (an int or a tuple of
    ints) becomes an array from :func:`float_arrays` with ``array_options``.

    >>> from hypothesis import find
    >>> tree = find(pytrees({"W": (3, 2), "b": [(3,), ()]}), lambda tree: True)
    >>> tree["W"].shape, [b.shape for b in tree["b"]]
    ((3, 2), [(3,), ()])

    Args:
        structure: dicts, lists and tuples nesting shapes.
        **array_options: the options of :func:`float_arrays`.

    Returns:
        A strategy of pytrees of ndarrays.
    """
    whole = (int, np.integer)
    if isinstance(structure, whole) or (isinstance(structure, tuple) and all(isinstance(s, whole) for s in structure)):
        return float_arrays(structure, **array_options)
    if isinstance(structure, dict):
        return st.fixed_dictionaries({k: pytrees(v, **array_options) for k, v in structure.items()})
    if isinstance(structure, (list, tuple)):
        parts = [pytrees(v, **array_options) for v in structure]
        return st.tuples(*parts).map(type(structure)) if parts else st.just(type(structure)())
    raise InvalidType(f"structure contains {structure!r}; use dicts, lists and tuples of shapes such as (3, 2)")


def _given(strategy: Any, values: dict[str, Any]) -> dict[str, Any]:
    """The options a strategy's caller passed (those not at their defaults), so that it prints as that call."""
    parameters = inspect.signature(strategy).parameters
    given = {k: v for k, v in values.items() if k in parameters and v is not parameters[k].default}
    extra = values.get("network_options") if "network_options" in parameters else None
    given.pop("network_options", None)
    return {**given, **(extra or {})}


# -- helpers -------------------------------------------------------------------------------------------------------
def _uniform(dtype: np.dtype, lo: float = -1.0, hi: float = 1.0) -> st.SearchStrategy[float]:
    """Floats of ``dtype`` in [lo, hi], bounds rounded inwards to ``dtype`` (0.1 is not a float32). Magnitudes
    below a millionth of the range (and of 1) become 0: no network has a weight of 1e-38, and near the underflow
    threshold W² (in the loss) underflows where W (in the gradient) does not, which tests the dtype rather than
    the gradient."""
    width: Literal[16, 32, 64] = 32 if np.dtype(dtype) == np.float32 else 64
    if width == 32:
        lo32, hi32 = np.float32(lo), np.float32(hi)
        lo = float(lo32 if lo32 >= lo else np.nextafter(lo32, np.float32(np.inf)))
        hi = float(hi32 if hi32 <= hi else np.nextafter(hi32, np.float32(-np.inf)))
    flush = 1e-6 * min(1.0, max(abs(lo), abs(hi)))
    return st.floats(lo, hi, width=width, allow_subnormal=False).map(lambda v: 0.0 if abs(v) < flush else v)


def _check_shape(shape: Any) -> tuple[int, ...]:
    """An array shape: a whole number >= 0, or a tuple of them (numpy integers too)."""
    dims = shape if isinstance(shape, tuple) else (shape,)
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in dims):
        raise InvalidType(f"shape={shape!r}; pass a whole number or a tuple of them, e.g. 3 or (3, 2)")
    if any(d < 0 for d in dims):
        raise InvalidArgument(f"shape={shape!r}; every dimension must be >= 0")
    return tuple(int(d) for d in dims)


def _array_dtype(dtype: Any) -> np.dtype:
    try:
        dt: np.dtype | None = np.dtype(dtype)
    except (TypeError, ValueError):
        dt = None
    if dt is None or dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise InvalidType(f"dtype={dtype!r}; float_arrays draws np.float64 or np.float32 arrays")
    return dt


def _scaled(a: np.ndarray, factor: float) -> np.ndarray:
    with np.errstate(under="ignore"):  # Hypothesis likes the smallest normal numbers; flushing them to 0 is fine
        result: np.ndarray = a * a.dtype.type(factor)
        return result


def _check_range(lo_name: str, lo: Any, hi_name: str, hi: Any, lowest: int) -> None:
    for name, value in ((lo_name, lo), (hi_name, hi)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InvalidType(f"{name}={value!r}; it must be an integer")
        if value < lowest:
            raise InvalidArgument(f"{name}={value}; it must be at least {lowest}")
    if lo > hi:
        raise InvalidArgument(f"{lo_name}={lo} > {hi_name}={hi}; raise {hi_name} or lower {lo_name}")


def _check_names(arg: str, names: Sequence[str], table: dict[str, Any]) -> list[str]:
    names = _non_empty(arg, names)
    wrong = [n for n in names if not isinstance(n, str)]
    if wrong:
        raise InvalidType(f"{arg} contains {wrong!r}; every entry is a name (a str) from {sorted(table)}")
    unknown = [n for n in names if n not in table]
    if unknown:
        raise InvalidArgument(f"{arg} contains {unknown!r}; choose from {sorted(table)}")
    return list(names)


def _non_empty(arg: str, values: Any) -> list[Any]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise InvalidType(f"{arg}={values!r}; pass a list, e.g. {arg}=[...]")
    if not values:
        raise InvalidArgument(f"{arg} is empty; give at least one choice")
    return list(values)


class _Draw:
    """The strategies' draws, as module-level composites: a strategy prints as the call that built it, such as
    ``networks(activations=['tanh'])``. Options were checked when the strategy was built; here they are only
    normalised again."""

    @staticmethod
    @st.composite
    def networks(draw: st.DrawFn, /, **options: Any) -> Network:
        spec = _NetworkSpec.of(**options)
        sizes = draw(spec.architectures)
        activation = draw(st.sampled_from(spec.activations))
        output, cost = draw(st.sampled_from(spec.heads))
        dtype = draw(st.sampled_from(spec.dtypes))
        strength = draw(st.sampled_from(spec.l2))
        unit = _uniform(dtype)
        scale = spec.weight_scale
        # Uniform on [−1, 1] has variance 1/3: scale by √3 to match a normal of the same variance.
        weights = [
            _scaled(draw(hnp.arrays(dtype, (n, m), elements=unit)), scale * math.sqrt(3 / m))
            for m, n in zip(sizes[:-1], sizes[1:])
        ]
        biases = [_scaled(draw(hnp.arrays(dtype, (n,), elements=unit)), scale * math.sqrt(3)) for n in sizes[1:]]
        return Network(
            sizes,
            activation=activation,
            output=output,
            cost=cost,
            l2=strength,
            dtype=dtype,
            weights=weights,
            biases=biases,
        )

    @staticmethod
    @st.composite
    def problems(draw: st.DrawFn, /, **options: Any) -> tuple[Network, np.ndarray, np.ndarray]:
        bound = inspect.signature(problems).bind(**options)
        bound.apply_defaults()
        min_batch, max_batch, input_scale, kink_margin, network_options = bound.arguments.values()
        net = draw(networks(**network_options))
        batch = draw(st.integers(min_batch, max_batch))
        n_in, n_out = net.sizes[0], net.sizes[-1]
        unit = _uniform(net.dtype)
        X = _scaled(draw(hnp.arrays(net.dtype, (batch, n_in), elements=unit)), input_scale)
        if net.cost == "log_likelihood":
            labels = draw(st.lists(st.integers(0, n_out - 1), min_size=batch, max_size=batch))
            Y = np.eye(n_out, dtype=net.dtype)[labels]
        elif net.cost == "cross_entropy":
            Y = draw(hnp.arrays(net.dtype, (batch, n_out), elements=_uniform(net.dtype, 0.0, 1.0)))
        else:
            Y = draw(hnp.arrays(net.dtype, (batch, n_out), elements=unit))
        if kink_margin and net.hidden_activation.kink and net.num_layers > 1:
            zs = net.backprop(X, Y).zs[:-1]
            assume(all(np.abs(z).min() >= kink_margin for z in zs))
        return net, X, Y


st.register_type_strategy(Network, networks())  # st.from_type(Network) draws from networks()
