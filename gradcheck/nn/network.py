"""The reference network: fully connected layers, vectorised over a mini-batch, backprop as BP1–BP4.

Shape convention (the only place it is written down):

- rows are examples: ``X.shape == (batch, n_in)``, ``Y.shape == (batch, n_out)``;
- layer l (0-based over the weighted layers) has ``weights[l].shape == (n_l, n_{l-1})`` and
  ``biases[l].shape == (n_l,)``, so ``z = a_prev @ W.T + b`` is Nielsen's zˡ = Wˡaˡ⁻¹ + bˡ for every row at once;
- the loss is the **mean** over the batch of the per-example cost C_x, plus (λ/2n)·Σ‖W‖² with n the batch size;
- ``deltas[l]`` is δˡ = ∂C_x/∂zˡ **per example**, shape ``(batch, n_l)``; the gradients of the mean are
  ``grad_b[l] = mean(deltas[l])`` and ``grad_w[l] = deltas[l].T @ activations[l] / batch``.

Python indices are 0-based where the book's layers are 1-based: ``weights[0]`` is the book's W², ``deltas[-1]`` is δᴸ
and ``activations[0]`` is the input x.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck._args import finite as finite_number
from gradcheck._args import float_dtype
from gradcheck.errors import InvalidArgument, InvalidType
from gradcheck.nn.activations import HIDDEN, OUTPUTS, Activation
from gradcheck.nn.costs import COSTS, Cost

__all__ = ["MAX_PARAMETERS", "QUIET", "Backprop", "Network"]

#: The most parameters a Network may have (1 GiB in float64), as it is for checking gradients, not training.
MAX_PARAMETERS = 1 << 27
_BIG_BATCH = 256


# The floating-point state every computation of a Network runs in, whatever the caller's. exp overflowing to inf or
# underflowing to 0 gives the right limits; "invalid" needs a non-finite operand (a nan or inf from the caller, which
# then comes out as a value) or an overflow first, and OpenBLAS kernels also raise it spuriously on finite data
# (numpy#24067, OpenBLAS#1924), which must not turn into an exception inside a product of finite numbers.
#: The np.errstate every computation of a Network runs in (see the comment above).
QUIET: dict[str, Any] = {"over": "ignore", "under": "ignore", "invalid": "ignore"}


def _quiet(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` under np.errstate(**QUIET): numpy 2's errstate decorator enters the state for each call,
    thread-safely and at half the cost of a ``with`` block; numpy 1's keeps it on the instance, which concurrent calls
    would share, so there each call gets its own ``with``."""
    if int(np.__version__.split(".")[0]) >= 2:
        return np.errstate(**QUIET)(method)

    @functools.wraps(method)
    def quiet(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(**QUIET):
            return method(*args, **kwargs)

    return quiet


@dataclass(frozen=True, eq=False)
class Backprop:
    """Everything one backward pass computes. Lists run over the weighted layers (``activations`` has one more)."""

    zs: list[np.ndarray]  # zˡ, (batch, n_l)
    activations: list[np.ndarray]  # aˡ, (batch, n_l); activations[0] is X
    deltas: list[np.ndarray]  # δˡ = ∂C_x/∂zˡ per example, (batch, n_l)
    grad_w: list[np.ndarray]  # ∂C/∂Wˡ, (n_l, n_{l-1})  (BP4, plus the L2 term)
    grad_b: list[np.ndarray]  # ∂C/∂bˡ, (n_l,)           (BP3)

    def __repr__(self) -> str:
        shapes = ", ".join(str(d.shape) for d in self.deltas)
        return f"Backprop(deltas of shapes {shapes})"


class Network:
    """A fully connected network with Nielsen's network2 initialisation.

    >>> net = Network([3, 4, 2], activation="tanh", output="softmax", cost="log_likelihood",
    ...               rng=np.random.default_rng(0))
    >>> X = np.ones((5, 3)); Y = np.eye(2)[[0, 1, 0, 1, 1]]          # X (5, 3), Y (5, 2) one-hot
    >>> bp = net.backprop(X, Y)
    >>> [g.shape for g in bp.grad_w], bp.deltas[-1].shape
    ([(4, 3), (2, 4)], (5, 2))

    ``weights`` and ``biases`` are lists the user may replace (element by element or whole); W ~ N(0, 1/n_in) and
    b ~ N(0, 1) are drawn from ``rng`` when they are not given. A float32 network casts X and Y to float32 and
    computes in float32 throughout.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        activation: str = "sigmoid",
        output: str = "sigmoid",
        cost: str = "cross_entropy",
        l2: float = 0.0,
        dtype: Any = np.float64,
        rng: np.random.Generator | None = None,
        weights: Sequence[np.ndarray] | None = None,
        biases: Sequence[np.ndarray] | None = None,
    ) -> None:
        self.sizes = _check_sizes(sizes)
        self.activation, self.output, self.cost = _check_names(activation, output, cost)
        self.l2 = _check_l2(l2)
        self.dtype = float_dtype("dtype", dtype)
        if weights is None or biases is None:
            if weights is not None or biases is not None:
                raise InvalidArgument("pass both weights= and biases=, or neither (then rng= draws them)")
            if not isinstance(rng, np.random.Generator):
                raise InvalidType(
                    f"rng must be a numpy Generator to draw the initial weights, got "
                    f"{type(rng).__name__}; pass rng=np.random.default_rng(seed), or give weights= "
                    "and biases="
                )
            weights = [rng.standard_normal((n, m)) / np.sqrt(m) for m, n in zip(self.sizes[:-1], self.sizes[1:])]
            biases = [rng.standard_normal(n) for n in self.sizes[1:]]
        elif rng is not None:
            raise InvalidArgument(
                "rng= is only used to draw initial weights; drop it when weights= and biases= are given"
            )
        self.weights = [_as_real(w, f"weights[{l}]", self.dtype) for l, w in enumerate(weights)]
        self.biases = [_as_real(b, f"biases[{l}]", self.dtype) for l, b in enumerate(biases)]
        self._check_params(finite=True)

    # -- names as objects ----------------------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        """The number of weighted layers, L (the book counts the input layer too)."""
        return len(self.sizes) - 1

    @property
    def hidden_activation(self) -> Activation:
        """The :class:`~gradcheck.nn.activations.Activation` of the hidden layers."""
        return HIDDEN[self.activation]

    @property
    def output_activation(self) -> Activation:
        """The :class:`~gradcheck.nn.activations.Activation` of the output layer."""
        return OUTPUTS[self.output]

    @property
    def cost_function(self) -> Cost:
        """The :class:`~gradcheck.nn.costs.Cost` named by ``cost``."""
        return COSTS[self.cost]

    def __repr__(self) -> str:
        extra = "" if self.l2 == 0 else f", l2={self.l2!r}"
        extra += "" if self.dtype == np.float64 else f", dtype='{self.dtype}'"
        return (
            f"Network({self.sizes}, activation={self.activation!r}, output={self.output!r}, cost={self.cost!r}{extra})"
        )

    # -- parameters ----------------------------------------------------------------------------------------------
    @property
    def params(self) -> dict[str, list[np.ndarray]]:
        """``{'weights': [...], 'biases': [...]}``, copies, as a pytree for :func:`gradcheck.check_gradient`."""
        return {"weights": [w.copy() for w in self.weights], "biases": [b.copy() for b in self.biases]}

    def replace(
        self, *, weights: Sequence[np.ndarray] | None = None, biases: Sequence[np.ndarray] | None = None
    ) -> Network:
        """A network of the same architecture with some parameters replaced (the rest shared, not copied)."""
        return Network(
            self.sizes,
            activation=self.activation,
            output=self.output,
            cost=self.cost,
            l2=self.l2,
            dtype=self.dtype,
            weights=self.weights if weights is None else weights,
            biases=self.biases if biases is None else biases,
        )

    def as_functions(self, X: np.ndarray, Y: np.ndarray) -> tuple[Callable[[Any], float], Callable[[Any], Any]]:
        """``(loss, grad)`` as functions of a ``params``-shaped pytree, ready for ``check_gradient(loss, grad,
        net.params)``; X and Y are fixed."""
        X, Y = self.validate_batch(X, Y)  # once: the functions are called thousands of times with the same data
        # a subclass's own loss and backprop, whatever it overrides; a plain Network skips the public checks
        plain = type(self) is Network

        def loss(params: dict[str, list[np.ndarray]]) -> float:
            net = self._bind(params)
            with np.errstate(**QUIET):
                return net._loss(X, Y) if plain else net.loss(X, Y)

        def grad(params: dict[str, list[np.ndarray]]) -> dict[str, list[np.ndarray]]:
            net = self._bind(params)
            with np.errstate(**QUIET):
                bp = net._backprop(X, Y) if plain else net.backprop(X, Y)
            return {"weights": bp.grad_w, "biases": bp.grad_b}

        return loss, grad

    def _bind(self, params: Any) -> Network:
        """This architecture with ``params``, checking their structure and shapes but not their values: a checker
        that hands in nan must see the nan come out, not an exception."""
        try:
            weights, biases = params["weights"], params["biases"]
        except (TypeError, KeyError, IndexError):
            raise InvalidArgument(
                f"params must be a dict {{'weights': [...], 'biases': [...]}} like net.params, got "
                f"{type(params).__name__}"
            ) from None
        net = object.__new__(type(self))  # this class, so that a subclass's methods stay its own
        net.__dict__.update(self.__dict__)
        net.weights = [np.asarray(w, dtype=self.dtype) for w in weights]
        net.biases = [np.asarray(b, dtype=self.dtype) for b in biases]
        net._check_params()
        return net

    # -- forward, loss, backward ---------------------------------------------------------------------------------
    def feedforward(self, X: np.ndarray) -> np.ndarray:
        """The output activations aᴸ, shape ``(batch, n_out)``, for inputs X of shape ``(batch, n_in)``."""
        X = self._check_x(X)
        with np.errstate(**QUIET):
            return self._forward(X)[1][-1]

    def loss(self, X: np.ndarray, Y: np.ndarray) -> float:
        """Mean over the batch of C_x, plus (λ/2n)·Σ‖W‖²."""
        X, Y = self.validate_batch(X, Y)
        with np.errstate(**QUIET):
            return self._loss(X, Y)

    def _loss(self, X: np.ndarray, Y: np.ndarray) -> float:
        zs, activations, _ = self._forward(X)
        return float(np.add.reduce(self.cost_function.fn(zs[-1], activations[-1], Y)) / len(X)) + self.l2_penalty(
            len(X)
        )

    def l2_penalty(self, n: int) -> float:
        """(λ/2n)·Σ‖W‖² for a batch of n examples, summed in float64 (Σw² of small float32 weights underflows)."""
        if not self.l2:
            return 0.0
        return 0.5 * self.l2 / n * sum(float(np.vdot(w, w.astype(np.float64))) for w in self.weights)

    def backprop(self, X: np.ndarray, Y: np.ndarray) -> Backprop:
        """One forward and one backward pass over the batch; see :class:`Backprop` for what it returns."""
        X, Y = self.validate_batch(X, Y, finite_x=False)
        bp = self._backprop_quiet(X, Y, False)
        # Without the sigmoid's overflow guard, a z above 709 leaves a nan in σ(z), and BP2 carries it into every
        # δ below, so ∂C/∂b¹ shows it: one check of a short vector instead of one reduction per layer.
        if not _all_finite(bp.grad_b[0]):
            bp = self._backprop_quiet(X, Y, True)
        # Every entry of X reaches z¹ = XWᵀ + b (inf·0 is nan), so z¹ is finite iff X is, unless XWᵀ overflowed:
        # checking z¹ instead of X costs n_in/n_1 times less, and X is looked at only when z¹ is not finite. Until
        # then a nan or inf from X must not raise or warn, hence invalid="ignore" below; with finite inputs an
        # invalid operation needs an overflow first (inf·0, inf − inf), and overflows are already let through.
        if not _all_finite(bp.zs[0]):
            _check_finite(X, "X")
        return bp  # type: ignore[no-any-return]  # (numpy 1's errstate decorator is untyped)

    @_quiet
    def _backprop_quiet(self, X: np.ndarray, Y: np.ndarray, guard: bool) -> Backprop:
        return self._backprop(X, Y, guard)

    def _forward(
        self, X: np.ndarray, guard: bool = True
    ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray | None]]:
        """zˡ and aˡ for every layer, and what each activation keeps to make σ′ cheap in the backward pass."""
        act, out, last = self.hidden_activation, self.output_activation, self.num_layers - 1
        zs, activations, caches = [], [X], []
        big = len(X) >= _BIG_BATCH
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = _transposed_product(X, w) if l == 0 and big else activations[-1] @ w.T
            z += b  # zˡ = Wˡ aˡ⁻¹ + bˡ
            a, cache = (out if l == last else act).forward(z, guard)  # aˡ = σ(zˡ)
            zs.append(z)
            activations.append(a)
            caches.append(cache)
        return zs, activations, caches

    def _backprop(self, X: np.ndarray, Y: np.ndarray, guard: bool = True) -> Backprop:
        """BP1–BP4 over the batch. ``delta`` is δˡ·2ᵏ, with k = 0 unless δ nears the subnormal range (see
        :func:`_rescale`); every stored value is scaled back by 2⁻ᵏ."""
        zs, activations, caches = self._forward(X, guard)
        n, L, act = len(X), self.num_layers, self.hidden_activation
        mean_row = _mean_row(n, self.dtype)  # mean_row @ M: the mean of M's rows
        deltas: list[np.ndarray] = [np.empty(0)] * L
        grad_w: list[np.ndarray] = [np.empty(0)] * L
        grad_b: list[np.ndarray] = [np.empty(0)] * L
        delta = self.cost_function.delta(self.output_activation, zs[-1], activations[-1], Y, caches[-1])  # BP1
        k, (small, large) = 0, _RESCALE_SUM_OF_SQUARES[self.dtype]
        for l in range(L - 1, -1, -1):
            sum_of_squares = np.vdot(delta, delta)
            if sum_of_squares < small or (k and sum_of_squares > large):  # δ nears the subnormal range
                k = _rescale(delta, k)
            deltas[l] = _scaled_down(delta, k) if k else delta
            grad_b[l] = mean_row @ delta  # BP3: ∂C/∂bˡ = mean over the batch of δˡ
            grad_w[l] = _mean_outer(delta, activations[l])  # BP4: ∂C/∂Wˡ = mean of δˡ (aˡ⁻¹)ᵀ
            if k:
                grad_b[l], grad_w[l] = _scaled_down(grad_b[l], k), _scaled_down(grad_w[l], k)
            if self.l2:
                grad_w[l] += (self.l2 / n) * self.weights[l]
            if l:  # BP2: δˡ⁻¹ = ((Wˡ)ᵀ δˡ) ⊙ σ′(zˡ⁻¹)
                delta = act.backward(zs[l - 1], activations[l], caches[l - 1], delta @ self.weights[l])
        return Backprop(zs=zs, activations=activations, deltas=deltas, grad_w=grad_w, grad_b=grad_b)

    # -- validation ----------------------------------------------------------------------------------------------
    def _check_params(self, finite: bool = False) -> None:
        if not finite and (
            [getattr(w, "shape", None) for w in self.weights],
            [getattr(b, "shape", None) for b in self.biases],
        ) == _shapes(tuple(self.sizes)):
            return  # the common case, in one comparison; the loop below finds and names what is wrong
        if len(self.weights) != self.num_layers or len(self.biases) != self.num_layers:
            raise InvalidArgument(
                f"sizes {self.sizes} need {self.num_layers} weight matrices and bias vectors, got "
                f"{len(self.weights)} weights and {len(self.biases)} biases"
            )
        for l, (w, b, m, n) in enumerate(zip(self.weights, self.biases, self.sizes[:-1], self.sizes[1:])):
            if w.shape != (n, m):
                raise InvalidArgument(
                    f"weights[{l}] has shape {w.shape}; layer {l} maps {m} inputs to {n} units, "
                    f"so it needs shape ({n}, {m}) (n_out, n_in)"
                )
            if b.shape != (n,):
                raise InvalidArgument(
                    f"biases[{l}] has shape {b.shape}; layer {l} has {n} units, so it needs shape ({n},)"
                )
            for name, p in ((f"weights[{l}]", w), (f"biases[{l}]", b)):
                if finite and not np.isfinite(p).all():
                    raise InvalidArgument(f"{name} contains nan or inf at {_first_bad(p)}; parameters must be finite")

    def _check_x(self, X: Any, finite: bool = True) -> np.ndarray:
        self._check_params()
        X = _as_matrix(X, "X", self.dtype, finite=finite)
        if X.shape[1] != self.sizes[0]:
            raise InvalidArgument(
                f"X has shape {X.shape} but the network takes {self.sizes[0]} inputs; pass X of "
                f"shape (batch, {self.sizes[0]}), one example per row"
            )
        result: np.ndarray = X
        return result

    def validate_batch(self, X: Any, Y: Any, finite_x: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """X and Y as the arrays this network computes with (its dtype, one example per row), or an
        :class:`~gradcheck.InvalidArgument` naming what is wrong: a shape, a non-finite entry, a target outside
        the cost's range."""
        n_in, n_out, dtype = self.sizes[0], self.sizes[-1], self.dtype
        if (
            type(X) is np.ndarray
            and type(Y) is np.ndarray
            and X.dtype == dtype
            and Y.dtype == dtype
            and X.ndim == 2
            and X.shape[1] == n_in
            and Y.shape == (X.shape[0], n_out)
            and X.shape[0]
        ):
            self._check_params()  # the common case, arrays ready to use, in a few comparisons
        else:  # the general one converts, and names what is wrong
            X = self._check_x(X, finite=False)
            Y = _as_matrix(Y, "Y", dtype, finite=False)
            if Y.shape != (X.shape[0], n_out):
                raise InvalidArgument(
                    f"Y has shape {Y.shape} but X has {X.shape[0]} rows and the network has {n_out} "
                    f"outputs; pass Y of shape ({X.shape[0]}, {n_out}), one target per row of X"
                )
        if finite_x:
            _check_finite(X, "X")
        if self.cost == "quadratic":
            _check_finite(Y, "Y")
        elif not (np.minimum.reduce(Y, axis=None) >= 0 and np.maximum.reduce(Y, axis=None) <= 1):
            _check_finite(Y, "Y")  # bounded targets: the range check sees nan and inf too
            bad = _first_index(Y, (Y < 0) | (Y > 1))
            raise InvalidArgument(
                f"Y{list(bad)} = {float(Y[bad])!r} but {self.cost} needs targets in [0, 1]; rescale Y "
                "or use cost='quadratic'"
            )
        if self.cost == "log_likelihood":
            sums = Y.sum(axis=1)
            tol = 64 * np.finfo(dtype).eps * n_out
            bad_rows = np.flatnonzero(np.abs(sums - 1) > tol)
            if bad_rows.size:
                r = int(bad_rows[0])
                raise InvalidArgument(
                    f"row {r} of Y sums to {sums[r]!r}; log_likelihood needs each row of Y to be "
                    "one-hot (or a distribution summing to 1): build it with np.eye(n_out)[labels]"
                )
        return X, Y


# -- argument checks ---------------------------------------------------------------------------------------------
def _check_sizes(sizes: Any) -> list[int]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise InvalidType(f"sizes must be a list of layer widths such as [784, 30, 10], got {sizes!r}")
    out = []
    for i, s in enumerate(sizes):
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)):
            raise InvalidType(f"sizes[{i}] = {s!r} is not an integer; sizes lists layer widths such as [784, 30, 10]")
        if s < 1:
            raise InvalidArgument(f"sizes[{i}] = {s}; every layer needs at least one unit")
        out.append(int(s))
    if len(out) < 2:
        raise InvalidArgument(
            f"sizes = {list(sizes)!r} has {len(out)} entries; give at least the input and the output "
            "width, e.g. [784, 10]"
        )
    count = sum(m * n + n for m, n in zip(out[:-1], out[1:]))
    if count > MAX_PARAMETERS:
        raise InvalidArgument(
            f"sizes = {out} has {count:,} parameters, more than {MAX_PARAMETERS:,} (1 GiB in "
            "float64); a reference network is for checking gradients: use narrower layers"
        )
    return out


def _check_names(activation: Any, output: Any, cost: Any) -> tuple[str, str, str]:
    for arg, value, table in (("activation", activation, HIDDEN), ("output", output, OUTPUTS), ("cost", cost, COSTS)):
        if not isinstance(value, str):
            raise InvalidType(f"{arg}={value!r} must be a name (a str); choose one of {sorted(table)}")
        if value not in table:
            raise InvalidArgument(f"{arg}={value!r} is not known; choose one of {sorted(table)}")
    if output not in COSTS[cost].outputs:
        fix = {
            "cross_entropy": "use output='sigmoid' (or cost='log_likelihood' with output='softmax')",
            "log_likelihood": "use output='softmax' (or cost='cross_entropy' with output='sigmoid')",
        }[cost]
        raise InvalidArgument(f"cost={cost!r} is not defined for output={output!r}: {fix}")
    return activation, output, cost


def _check_l2(l2: Any) -> float:
    if isinstance(l2, (bool, np.bool_)) or not isinstance(l2, (int, float, np.integer, np.floating)):
        raise InvalidType(f"l2 must be a non-negative number (the λ of the (λ/2n)·Σ‖W‖² term), got {l2!r}")
    if not finite_number(l2) or l2 < 0:
        raise InvalidArgument(f"l2={l2!r}; the regularisation strength must be finite and >= 0 (0 switches it off)")
    return float(l2)


def _as_real(A: Any, name: str, dtype: np.dtype | None = None) -> np.ndarray:
    """A as an array of real numbers (in ``dtype`` if given), or an error naming it: ragged nesting and complex
    values are refused rather than cast."""
    try:
        arr = np.asarray(A)
    except ValueError as exc:
        raise InvalidArgument(f"{name} is ragged ({exc}); pass a rectangular array") from None
    if arr.dtype.kind not in "fiub":
        raise InvalidType(f"{name} has dtype {arr.dtype}; pass real numbers")
    return arr if dtype is None else arr.astype(dtype, copy=False)


def _as_matrix(A: Any, name: str, dtype: np.dtype, finite: bool = True) -> np.ndarray:
    arr = _as_real(A, name)
    if arr.ndim != 2:
        fix = f"{name}[None, :] for one example" if arr.ndim == 1 else f"a ({'batch'}, width) matrix"
        raise InvalidArgument(f"{name} has shape {arr.shape}; it must be 2-D with one example per row: use {fix}")
    if arr.shape[0] == 0:
        raise InvalidArgument(f"{name} has shape {arr.shape}: an empty batch has no mean cost; pass at least one row")
    arr = arr.astype(dtype, copy=False)
    if finite:
        _check_finite(arr, name)
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    if not _all_finite(arr):
        bad = _first_bad(arr)
        raise InvalidArgument(
            f"{name}{list(bad)} = {float(arr[bad])!r}; inputs and targets must be finite: drop or impute that row"
        )


@functools.lru_cache(maxsize=64)
def _shapes(sizes: tuple[int, ...]) -> tuple[list[tuple[int, int]], list[tuple[int]]]:
    """The weight and bias shapes ``sizes`` needs."""
    return [(n, m) for m, n in zip(sizes[:-1], sizes[1:])], [(n,) for n in sizes[1:]]


# Below the first Σδ², every |δ| is under 2^-31.5 (float32) or 2^-255.5 (float64): far enough above the subnormal
# range (2^-126, 2^-1022) that one layer's decay does not reach it before the next check. Above the second, a scaled
# delta is on its way back up and is rescaled long before it could overflow (2^128, 2^1024).
_RESCALE_SUM_OF_SQUARES = {
    np.dtype(np.float32): (np.float32(2.0**-63), np.float32(2.0**63)),
    np.dtype(np.float64): (2.0**-511, 2.0**511),
}


def _transposed_product(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """X Wᵀ computed as (W Xᵀ)ᵀ: for the first layer of a large batch OpenBLAS computes it 10–25% faster that way,
    more than the copy back to rows costs."""
    return np.ascontiguousarray((w @ X.T).T)


def _mean_outer(delta: np.ndarray, a_prev: np.ndarray) -> np.ndarray:
    """The mean over the batch of the outer products δ (aˡ⁻¹)ᵀ, shape (n_l, n_{l-1}): by broadcasting for one
    example (BLAS is slow at outer products), with 1/n applied to the smaller factor otherwise."""
    n = len(delta)
    product: np.ndarray
    if n == 1:
        product = delta.T * a_prev
    elif n < a_prev.shape[1]:
        product = (delta * (1.0 / n)).T @ a_prev
    else:
        product = delta.T @ a_prev
        product *= 1.0 / n
    return product


def _rescale(delta: np.ndarray, k: int) -> int:
    """Multiply ``delta`` in place by the power of two that brings its largest entry into [0.5, 1), or as far
    towards it as k ≥ 0 allows, and return the new exponent k of ``delta = δ·2ᵏ``. Exact when scaling up; scaling
    down keeps delta at least as large as δ, so it rounds no more than δ itself would. All zeros (which stay zero)
    or a nan leave delta and k as they are.

    Backprop carries delta = δ·2ᵏ. k stays 0 until δ falls towards the subnormal range, where a matrix
    product runs ~90× slower (a float32 sigmoid network past ~35 layers): then delta is scaled up by a power of two,
    which is exact, and what is stored is scaled back down and rounded once (more exact than products of subnormals,
    equal where nothing is subnormal). A scaled delta that grows again is scaled back towards k = 0 before it can
    overflow."""
    largest = float(np.max(np.abs(delta)))
    if not 0 < largest < math.inf:
        return k
    e = max(-math.frexp(largest)[1], -k)
    if e < np.finfo(delta.dtype).maxexp:
        delta *= delta.dtype.type(2.0**e)
    else:  # a subnormal largest entry: 2**e itself would overflow the dtype
        np.ldexp(delta, e, out=delta)
    return k + e


def _scaled_down(x: np.ndarray, k: int) -> np.ndarray:
    """x·2⁻ᵏ in x's dtype, rounded once. float32 goes through float64, where the product is exact and the cast
    rounds it: producing float32 subnormals by a float32 product is ~10× slower than the cast."""
    if x.dtype == np.float32:
        return (x.astype(np.float64) * 2.0**-k).astype(np.float32)
    return x * 2.0**-k


@functools.lru_cache(maxsize=64)
def _mean_row(n: int, dtype: np.dtype) -> np.ndarray:
    row = np.full(n, 1.0 / n, dtype=dtype)
    row.flags.writeable = False
    return row


def _all_finite(arr: np.ndarray) -> bool:
    """True if every entry is finite. Σx² is inf or nan when any entry is, and BLAS's dot product is the cheapest
    reduction numpy has (a third of isfinite's cost on small arrays); only when Σx² overflows on finite entries is
    the mask needed."""
    return math.isfinite(np.vdot(arr, arr)) or bool(np.isfinite(arr).all())


def _first_index(a: np.ndarray, mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _first_bad(a: np.ndarray) -> tuple[int, ...]:
    return _first_index(a, ~np.isfinite(a))
