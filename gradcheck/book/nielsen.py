"""Chapter 5's measurement: how fast each hidden layer learns at initialisation, on real handwritten digits.

The book's set-up: hidden layers of 30 sigmoid units, network2's initialisation (W ~ N(0, 1/n_in), b ~ N(0, 1)),
cross-entropy, the gradient ∂C/∂bˡ = mean δˡ over 1,000 training images, and its norm per hidden layer. The book
printed one unseeded draw; :func:`compare` repeats the draw ``trials`` times and reports medians, as ratios to the
last hidden layer (the absolute sizes depend on the data and on the draw, the ratios much less).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.book.data import Digits
from gradcheck.book.plots import figure, save
from gradcheck.errors import InvalidArgument
from gradcheck.nn.network import Network

__all__ = ["BOOK", "Comparison", "Training", "compare", "network", "plot_comparison", "plot_training", "table", "train"]

# The book's chapter 5 table: ‖∂C/∂bˡ‖ per hidden layer, first to last, for [784] + hidden + [10] on MNIST.
BOOK = {2: [0.066, 0.309], 3: [0.012, 0.060, 0.283], 4: [0.003, 0.017, 0.070, 0.285]}


@dataclass
class Comparison:
    hidden_layers: int
    source: str
    trials: int
    norms: list[list[float]]  # one list per trial: ‖∂C/∂bˡ‖ for each hidden layer, first to last

    @property
    def median(self) -> list[float]:
        return [float(v) for v in np.median(np.array(self.norms), axis=0)]

    @property
    def ratios(self) -> list[float]:
        """Median over trials of ‖∂C/∂bˡ‖ / ‖∂C/∂b of the last hidden layer‖."""
        norms = np.array(self.norms)
        return [float(v) for v in np.median(norms / norms[:, -1:], axis=0)]

    @property
    def book_ratios(self) -> list[float] | None:
        book = BOOK.get(self.hidden_layers)
        return None if book is None else [v / book[-1] for v in book]

    def as_dict(self) -> dict[str, Any]:
        return {
            "hidden_layers": self.hidden_layers,
            "data": self.source,
            "trials": self.trials,
            "median_norms": self.median,
            "median_ratios_to_last": self.ratios,
            "book_norms": BOOK.get(self.hidden_layers),
            "book_ratios_to_last": self.book_ratios,
            "norms": self.norms,
        }


def _subset(data: Digits, n: int) -> tuple[np.ndarray, np.ndarray]:
    if n < 1:
        raise InvalidArgument(f"images={n}: the gradient is a mean over images, so pass --images 1 or more")
    if n > len(data.X):
        raise InvalidArgument(f"asked for {n} images but {data.source} has {len(data.X)}; lower --images")
    return data.X[:n], data.one_hot()[:n]


def network(n_in: int, hidden_layers: int, *, width: int = 30, rng: np.random.Generator) -> Network:
    return Network(
        [n_in] + [width] * hidden_layers + [10], activation="sigmoid", output="sigmoid", cost="cross_entropy", rng=rng
    )


def compare(
    data: Digits,
    *,
    hidden: Iterable[int] = (2, 3, 4),
    images: int = 1000,
    trials: int = 10,
    rng: np.random.Generator,
    progress: Callable[[Iterable[Any]], Iterable[Any]] = iter,
) -> list[Comparison]:
    """Per-hidden-layer ‖∂C/∂bˡ‖ at initialisation on the first ``images`` examples, ``trials`` draws each."""
    if not isinstance(trials, int) or trials < 1:
        raise InvalidArgument(f"trials={trials!r}; give a positive number of initialisations")
    X, Y = _subset(data, images)
    out = []
    for depth in progress(list(hidden)):
        norms = []
        for _ in range(trials):
            bp = network(X.shape[1], depth, rng=rng).backprop(X, Y)
            norms.append([float(np.linalg.norm(g)) for g in bp.grad_b[:-1]])
        out.append(Comparison(depth, data.source, trials, norms))
    return out


def table(comparisons: list[Comparison]) -> str:
    lines = [
        f"{'network':<28} {'layer':>5}  {'book ‖δ‖':>9}  {'book ÷ last':>11}  {'ours ‖δ‖':>9}  {'ours ÷ last':>11}"
    ]
    for c in comparisons:
        book = BOOK.get(c.hidden_layers) or [float("nan")] * c.hidden_layers
        book_ratio = c.book_ratios or [float("nan")] * c.hidden_layers
        name = f"[n_in, {', '.join(['30'] * c.hidden_layers)}, 10]"
        for l in range(c.hidden_layers):
            lines.append(
                f"{name if l == 0 else '':<28} {l + 1:>5}  {book[l]:>9.3f}  {book_ratio[l]:>11.3f}  "
                f"{c.median[l]:>9.3f}  {c.ratios[l]:>11.3f}"
            )
    return "\n".join(lines)


@dataclass
class Training:
    hidden_layers: int
    eta: float
    batch: int
    norms: list[list[float]]  # per epoch (epoch 0 = before training): ‖∂C/∂bˡ‖ on the training images
    accuracy: list[float]  # per epoch, on the same images

    def as_dict(self) -> dict[str, Any]:
        return {
            "hidden_layers": self.hidden_layers,
            "eta": self.eta,
            "batch": self.batch,
            "norms": self.norms,
            "accuracy": self.accuracy,
        }


def train(
    data: Digits,
    *,
    hidden_layers: int = 4,
    epochs: int,
    images: int = 1000,
    eta: float = 0.1,
    batch: int = 10,
    rng: np.random.Generator,
    progress: Callable[[Iterable[Any]], Iterable[Any]] = iter,
) -> Training:
    """Mini-batch gradient descent on the first ``images`` examples (the book's chapter-5 training runs), with the
    per-layer gradient norms on the whole set after every epoch."""
    X, Y = _subset(data, images)
    net = network(X.shape[1], hidden_layers, rng=rng)

    def snapshot() -> tuple[list[float], float]:
        bp = net.backprop(X, Y)
        hit = np.mean(np.argmax(bp.activations[-1], axis=1) == np.argmax(Y, axis=1))
        return [float(np.linalg.norm(g)) for g in bp.grad_b[:-1]], float(hit)

    norms, acc = snapshot()
    result = Training(hidden_layers, eta, batch, [norms], [acc])
    for _ in progress(range(epochs)):
        order = rng.permutation(len(X))
        for start in range(0, len(X), batch):
            rows = order[start : start + batch]
            bp = net.backprop(X[rows], Y[rows])
            for l in range(net.num_layers):
                net.weights[l] -= eta * bp.grad_w[l]
                net.biases[l] -= eta * bp.grad_b[l]
        norms, acc = snapshot()
        result.norms.append(norms)
        result.accuracy.append(acc)
    return result


def plot_training(training: Training, path: str) -> str:
    norms = np.array(training.norms)
    fig, ax = figure()
    for l in range(norms.shape[1]):
        ax.semilogy(norms[:, l], label=f"hidden layer {l + 1}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("‖∂C/∂bˡ‖ on the training images")
    ax.set_title(f"Speed of learning per layer, {training.hidden_layers} hidden layers of 30 (η = {training.eta})")
    return save(fig, path)


def plot_comparison(comparisons: list[Comparison], path: str) -> str:
    """Ratios to the last hidden layer, ours (medians) against the book's, on a log scale."""
    fig, ax = figure()
    for c in comparisons:
        layers = range(1, c.hidden_layers + 1)
        (line,) = ax.semilogy(layers, c.ratios, "o-", label=f"{c.hidden_layers} hidden layers, ours")
        if c.book_ratios:
            ax.semilogy(
                layers,
                c.book_ratios,
                "s--",
                color=line.get_color(),
                alpha=0.6,
                label=f"{c.hidden_layers} hidden layers, book (MNIST)",
            )
    ax.set_xlabel("hidden layer (1 = next to the input)")
    ax.set_ylabel("‖∂C/∂bˡ‖ ÷ ‖∂C/∂b of the last hidden layer‖")
    ax.set_title(f"How fast each layer learns at initialisation: {comparisons[0].source}")
    return save(fig, path)
