"""Chapter 3's learning slowdown: one sigmoid neuron, input x = 1, target y = 0, gradient descent with η = 0.15.

Under the quadratic cost ∂C/∂w = (a − y)·σ′(z)·x: a saturated, wrong output (a ≈ 1) has σ′(z) ≈ 0 and learns
slowly. Under cross-entropy σ′ cancels, ∂C/∂w = (a − y)·x, and the same neuron learns fastest when it is most wrong.
The book's cross-entropy animation stepped w and b by ∂C/∂a = 1/(1 − a) instead of (a − y): :func:`animation_bug`
shows that the gradient checker rejects it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.book.plots import figure, save
from gradcheck.check import check_gradient
from gradcheck.nn.network import Network
from gradcheck.report import GradientReport

__all__ = ["STARTS", "Run", "animation_bug", "neuron", "plot", "run", "runs", "table"]

STARTS = {"w=0.6, b=0.9": (0.6, 0.9), "w=2, b=2": (2.0, 2.0)}
X, Y = np.array([[1.0]]), np.array([[0.0]])


@dataclass
class Run:
    cost: str
    start: str
    eta: float
    outputs: list[float]  # a after each epoch; outputs[0] is before training
    costs: list[float]

    @property
    def slow_epochs(self) -> int:
        """Epochs until the output has covered a tenth of the way from where it started to where it ended, the
        plateau's length."""
        a = np.array(self.outputs)
        target = a[0] - 0.1 * (a[0] - a[-1])
        below = np.flatnonzero(a <= target)
        return int(below[0]) if below.size else len(a) - 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "cost": self.cost,
            "start": self.start,
            "eta": self.eta,
            "first_output": self.outputs[0],
            "final_output": self.outputs[-1],
            "slow_epochs": self.slow_epochs,
            "outputs": self.outputs,
            "costs": self.costs,
        }


def neuron(w: float, b: float, cost: str) -> Network:
    return Network([1, 1], output="sigmoid", cost=cost, weights=[np.array([[w]])], biases=[np.array([b])])


def run(cost: str, start: str, *, epochs: int = 300, eta: float = 0.15) -> Run:
    """Gradient descent on the one neuron from ``STARTS[start]``, with gradients from ``Network.backprop``."""
    w, b = STARTS[start]
    net = neuron(w, b, cost)
    outputs, costs = [float(net.feedforward(X)[0, 0])], [net.loss(X, Y)]
    for _ in range(epochs):
        bp = net.backprop(X, Y)
        net.weights[0] = net.weights[0] - eta * bp.grad_w[0]
        net.biases[0] = net.biases[0] - eta * bp.grad_b[0]
        outputs.append(float(net.feedforward(X)[0, 0]))
        costs.append(net.loss(X, Y))
    return Run(cost, start, eta, outputs, costs)


def runs(
    *, epochs: int = 300, eta: float = 0.15, progress: Callable[[Iterable[Any]], Iterable[Any]] = iter
) -> list[Run]:
    jobs = [(c, s) for s in STARTS for c in ("quadratic", "cross_entropy")]
    return [run(c, s, epochs=epochs, eta=eta) for c, s in progress(jobs)]


def animation_bug(w: float = 2.0, b: float = 2.0) -> tuple[GradientReport, GradientReport]:
    """``(true, animation)``: check_gradient of the cross-entropy cost of the neuron at (w, b) against the true
    gradient (a − y)·(x, 1), and against the animation's ∂C/∂a = 1/(1 − a) used as the gradient."""

    def loss(p: np.ndarray) -> float:
        return neuron(p[0], p[1], "cross_entropy").loss(X, Y)

    def activation(p: np.ndarray) -> float:
        return float(1.0 / (1.0 + np.exp(-(p[0] * X[0, 0] + p[1]))))

    def true_grad(p: np.ndarray) -> np.ndarray:
        a = activation(p)
        return np.array([(a - Y[0, 0]) * X[0, 0], a - Y[0, 0]])

    def animation_grad(p: np.ndarray) -> np.ndarray:
        a = activation(p)
        return np.array([1.0 / (1.0 - a), 1.0 / (1.0 - a)])

    at = np.array([w, b])
    return check_gradient(loss, true_grad, at), check_gradient(loss, animation_grad, at)


def table(results: list[Run]) -> str:
    lines = [
        f"{'cost':<14} {'start':<13} {'output at 0':>11}  {'after ' + str(len(results[0].outputs) - 1):>9}  "
        f"{'slow epochs':>11}"
    ]
    for r in results:
        lines.append(f"{r.cost:<14} {r.start:<13} {r.outputs[0]:>11.3f}  {r.outputs[-1]:>9.3f}  {r.slow_epochs:>11}")
    return "\n".join(lines)


def plot(results: list[Run], path: str) -> str:
    fig, axes = figure(wide=True)
    for ax, start in zip(axes, STARTS):
        for r in results:
            if r.start == start:
                ax.plot(r.costs, label=r.cost)
        ax.set_title(f"one neuron from {start}, η = {results[0].eta}")
        ax.set_xlabel("epoch")
    axes[0].set_ylabel("cost")
    return save(fig, path, log_grid=False)
