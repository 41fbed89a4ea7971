"""Exhaustive, fast gradient checks of a :class:`~gradcheck.nn.Network`, using its structure.

Perturbing Wˡ[j, i] by δ changes only zˡ[:, j], by δ·aˡ⁻¹[:, i] (a rank-1 change); perturbing bˡ[j] changes it by δ.
The layers below are untouched, so every perturbed loss is computed from the cached zˡ in one batched pass
through the layers above, thousands of perturbations per matrix product, instead of one full forward pass each.
The verdicts are those of :func:`gradcheck.check_gradient`, with the same error model and report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck.activations import HIDDEN, OUTPUTS
from gradcheck.check import _check, _non_negative
from gradcheck.costs import COSTS
from gradcheck.errors import InvalidType
from gradcheck.nn import Network
from gradcheck.report import GradientReport

CHUNK_ELEMENTS = 1 << 18  # floats per batched pass: 2 MiB temporaries stay in cache


def check_network(net: Network, X: np.ndarray, Y: np.ndarray, *, grad: Callable[[Any], Any] | None = None,
                  rtol: float | None = None, atol: float = 0.0) -> GradientReport:
    """Check every weight and bias gradient of ``net`` on the batch (X, Y).

    >>> net = Network([784, 30, 10], rng=np.random.default_rng(0))
    >>> check_network(net, X, Y).ok          # X (batch, 784), Y (batch, 10)

    ``grad(params) -> {'weights': [...], 'biases': [...]}`` is checked instead of ``net.backprop`` when given (for
    a hand-written backprop of the same network). Leaves are named ``x['weights'][l]`` and ``x['biases'][l]``.
    """
    if not isinstance(net, Network):
        raise InvalidType(f"net must be a gradcheck.nn.Network, got {type(net).__name__}; for other models use "
                        "check_gradient(loss, grad, params)")
    atol = _non_negative("atol", atol)
    if rtol is not None:
        rtol = _non_negative("rtol", rtol)
    loss, backprop_grad = net.as_functions(X, Y)
    X, Y = net._check_data(X, Y)
    params = net.params
    L = net.num_layers
    caller = np.geterr()
    with np.errstate(all="ignore"):
        bulk = _Perturbed(net, X, Y)
        return _check(loss, grad or backprop_grad, params, rtol, atol, None, caller,
                      bulk=lambda leaf, idx, steps: bulk(leaf % L, leaf >= L, idx, steps))


class _Perturbed:
    """The loss with one parameter perturbed, for many (parameter, step) pairs at once."""

    def __init__(self, net: Network, X: np.ndarray, Y: np.ndarray) -> None:
        self.net, self.X, self.Y = net, X, Y
        self.act, self.out, self.cost = HIDDEN[net.activation], OUTPUTS[net.output], COSTS[net.cost]
        bp = net.backprop(X, Y)
        self.zs, self.activations = bp.zs, bp.activations
        self.penalty = net.l2_penalty(len(X))

    def __call__(self, layer: int, is_bias: bool, idx: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Loss for each flat index of weights[layer] (or biases[layer]) perturbed by the matching step."""
        net, n = self.net, len(self.X)
        per_item = 4 * n * max(net.sizes[layer + 1:])
        chunk = max(1, CHUNK_ELEMENTS // per_item)
        out = np.empty(len(idx))
        for start in range(0, len(idx), chunk):
            sl = slice(start, start + chunk)
            out[sl] = self._chunk(layer, is_bias, idx[sl], steps[sl])
        return out + self.penalty

    def _chunk(self, layer: int, is_bias: bool, idx: np.ndarray, steps: np.ndarray) -> np.ndarray:
        net, n = self.net, len(self.X)
        w = net.weights[layer]
        rows = idx if is_bias else idx // w.shape[1]
        delta = steps.astype(net.dtype)
        if is_bias:
            change = np.broadcast_to(delta[:, None], (len(rows), n))
        else:
            cols = idx % w.shape[1]
            change = delta[:, None] * self.activations[layer][:, cols].T          # δ·aˡ⁻¹[:, i]
        if layer < net.num_layers - 1:
            # Only unit j of layer l moves, so zˡ⁺¹ moves by (σ(zⱼ + change) − σ(zⱼ))·Wˡ⁺¹[:, j]: rank 1 again.
            z_j = self.zs[layer][:, rows].T                                      # (K, batch)
            moved = self.act.fn(z_j + change) - self.activations[layer + 1][:, rows].T
            # the K outer products moved[k] ⊗ Wˡ⁺¹[:, j]: einsum writes them twice as fast as broadcasting
            z = np.einsum("kb,ko->kbo", moved, net.weights[layer + 1][:, rows].T)
            z += self.zs[layer + 1][None]
            out = self._loss_from(layer + 1, z)
        else:
            z = np.repeat(self.zs[layer][None], len(rows), axis=0)               # (K, batch, n_L)
            z[np.arange(len(rows)), :, rows] += change
            out = self._loss_from(layer, z)
        if net.l2 and not is_bias:
            old = w.reshape(-1)[idx].astype(np.float64)
            new = old + delta.astype(np.float64)
            out += 0.5 * net.l2 / n * (new * new - old * old)
        return out

    def _loss_from(self, layer: int, z: np.ndarray) -> np.ndarray:
        """Mean cost over the batch for each of K stacked pre-activations z of ``layer``, shape (K, batch, n_l)."""
        net, last = self.net, self.net.num_layers - 1
        for l in range(layer, last + 1):
            if l > layer:
                z = a @ net.weights[l].T + net.biases[l]
            if l < last:
                a = self.act.fn(z)
        if self.cost.name == "cross_entropy":  # takes the K stacked copies at once, Y broadcast rather than tiled
            return self.cost.fn(z, None, self.Y).mean(axis=1)
        K, n, m = z.shape
        flat = z.reshape(K * n, m)
        a = self.out.fn(flat) if self.cost.name == "quadratic" else None  # the other costs work from the logits
        per_example = self.cost.fn(flat, a, np.tile(self.Y, (K, 1)))
        return per_example.reshape(K, n).mean(axis=1)
