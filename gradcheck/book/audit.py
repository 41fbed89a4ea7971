"""The audit: the reference network's backprop against the checker, for every supported combination."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from gradcheck.check import check_gradient
from gradcheck.nn.activations import HIDDEN
from gradcheck.nn.costs import PAIRS
from gradcheck.nn.network import Network
from gradcheck.report import GradientReport

__all__ = ["AuditCase", "audit", "cases"]


@dataclass(frozen=True)
class AuditCase:
    net: Network
    X: np.ndarray
    Y: np.ndarray

    @property
    def label(self) -> str:
        n = self.net
        l2 = f" l2={n.l2:g}" if n.l2 else ""
        return f"{n.sizes} {n.activation}/{n.output}/{n.cost} {n.dtype}{l2}"


def cases(
    rng: np.random.Generator,
    *,
    sizes: tuple[int, ...] = (4, 5, 3),
    batch: int = 6,
    dtypes: tuple[str, ...] = ("float64", "float32"),
    deep: int = 8,
) -> Iterator[AuditCase]:
    """Every activation × output/cost × dtype on a small network, with L2 on every other one, then one deep
    sigmoid network (``deep`` hidden layers) where the first layers' gradients are tiny."""
    i = 0
    for dtype in dtypes:
        for activation in HIDDEN:
            for output, cost in PAIRS:
                net = Network(
                    list(sizes), activation=activation, output=output, cost=cost, dtype=dtype, l2=0.1 * (i % 2), rng=rng
                )
                i += 1
                X = rng.standard_normal((batch, sizes[0]))
                yield AuditCase(net, X, net.cost_function.targets(rng, batch, net.sizes[-1]))
    if deep:
        net = Network([4] + [6] * deep + [1], activation="sigmoid", output="sigmoid", cost="cross_entropy", rng=rng)
        yield AuditCase(net, rng.standard_normal((batch, 4)), net.cost_function.targets(rng, batch, net.sizes[-1]))


def audit(case: AuditCase) -> GradientReport:
    """check_gradient of ``Network.backprop`` on the case's parameters."""
    loss, grad = case.net.as_functions(case.X, case.Y)
    return check_gradient(loss, grad, case.net.params)
