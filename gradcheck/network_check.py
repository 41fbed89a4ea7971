"""Exhaustive, fast gradient checks of a :class:`~gradcheck.nn.Network`, using its structure.

Perturbing Wˡ[j, i] by δ changes only zˡ[:, j], by δ·aˡ⁻¹[:, i] (a rank-1 change); perturbing bˡ[j] changes it by δ.
The layers below are untouched, so every perturbed loss starts from the cached zˡ: for a hidden layer, from an
interpolant of one scalar function per (unit, example), verified to a tenth of an ulp of f(x); otherwise from one
batched pass through the layers above, thousands of perturbations per matrix product.
The verdicts are those of :func:`gradcheck.check_gradient`, with the same error model and report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck._engine.run import check as run_check
from gradcheck.check import judgement_options
from gradcheck.errors import InvalidType
from gradcheck.nn.activations import HIDDEN, OUTPUTS
from gradcheck.nn.costs import COSTS
from gradcheck.nn.network import Network
from gradcheck.report import GradientReport

__all__ = ["CHUNK_ELEMENTS", "LOSS_DEFINED_BY", "NetworkPerturbations", "check_network"]

CHUNK_ELEMENTS = 1 << 18  # floats in the largest temporary of a batched pass (2 MiB in float64)

# Chebyshev interpolation of a unit's cost change on Q points of the first kind: values @ _DCT are the coefficients,
# coefficients @ _MONOMIAL the same polynomial in powers of the scaled variable.
_Q = 8
_NODES = np.cos(np.pi * (np.arange(_Q) + 0.5) / _Q)
_DCT = 2.0 / _Q * np.cos(np.outer(np.arange(_Q) + 0.5, np.arange(_Q)) * np.pi / _Q)
_DCT[:, 0] /= 2
_SAMPLE_AT = np.concatenate([_NODES, [1.0, -1.0]])  # the nodes, then both ends, where the interpolant is verified
_MONOMIAL = np.array([np.pad(np.polynomial.chebyshev.cheb2poly(np.eye(_Q)[k]), (0, _Q))[:_Q] for k in range(_Q)])


def check_network(
    net: Network,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    grad: Callable[[Any], Any] | None = None,
    rtol: float | None = None,
    atol: float = 0.0,
    allow_inconclusive: bool = False,
    resolution: float = 0.05,
) -> GradientReport:
    """Check every weight and bias gradient of ``net`` on the batch (X, Y).

    >>> import numpy as np
    >>> from gradcheck import Network, check_network
    >>> rng = np.random.default_rng(0)
    >>> net = Network([4, 3, 2], rng=rng)
    >>> X, Y = rng.standard_normal((5, 4)), rng.uniform(0, 1, (5, 2))   # X (batch, 4), Y (batch, 2)
    >>> check_network(net, X, Y).ok
    True

    ``grad(params) -> {'weights': [...], 'biases': [...]}`` is checked instead of ``net.backprop`` when given (for
    a hand-written backprop of the same network). Leaves are named ``x['weights'][l]`` and ``x['biases'][l]``.
    ``rtol``, ``atol``, ``allow_inconclusive`` and ``resolution`` are those of :func:`gradcheck.check_gradient`.

    Args:
        net: the :class:`~gradcheck.Network` whose weights and biases are checked.
        X: the inputs, shape (batch, n_in).
        Y: the targets, shape (batch, n_out), valid for the network's cost.
        grad: a hand-written backprop, ``grad(params) -> {'weights': [...], 'biases': [...]}``, checked instead
            of ``net.backprop``.
        rtol: the relative tolerance; by default √eps of the network's dtype.
        atol: the absolute tolerance (default 0).
        allow_inconclusive: let elements the check cannot resolve pass the check.
        resolution: the coarsest relative error bound a pass may rest on (default 0.05).

    Returns:
        GradientReport: one leaf per layer's weights and biases, named ``x['weights'][l]`` and ``x['biases'][l]``.

    Raises:
        InvalidArgument: X or Y does not fit the network (shape, non-finite entries, targets outside the cost's
            range), or a bad ``rtol`` or ``atol``.
        InvalidType: net is not a :class:`~gradcheck.Network`, or is a subclass that overrides its loss (one of
            ``LOSS_DEFINED_BY``); a subclass's own ``backprop`` is what is checked.
    """
    if not isinstance(net, Network):
        raise InvalidType(
            f"net must be a gradcheck.nn.Network, got {type(net).__name__}; for other models use "
            "check_gradient(loss, grad, params)"
        )
    _refuse_changed_loss(net)
    options = judgement_options(rtol=rtol, atol=atol, allow_inconclusive=allow_inconclusive, resolution=resolution)
    loss, backprop_grad = net.as_functions(X, Y)
    X, Y = net.validate_batch(X, Y)
    params = net.params
    with np.errstate(all="ignore"):
        perturbed = NetworkPerturbations(net, X, Y, loss(params))
    return run_check(loss, grad or backprop_grad, params, options, perturbed)


# what the perturbed losses are computed from: a subclass that overrides any of these has another loss
LOSS_DEFINED_BY = ("loss", "_loss", "_forward", "feedforward", "l2_penalty", "cost_function", "hidden_activation")


def _refuse_changed_loss(net: Network) -> None:
    """check_network computes perturbed losses from the structure of a plain Network; a subclass whose loss differs
    would be checked against a loss it does not have. Its own backprop is honoured (it is the gradient checked)."""
    changed = [
        name
        for name in LOSS_DEFINED_BY
        if any(name in vars(cls) for cls in type(net).__mro__[: type(net).__mro__.index(Network)])
    ]
    if changed:
        raise InvalidType(
            f"check_network computes the perturbed losses of a plain Network from its layers, but "
            f"{type(net).__name__} overrides {', '.join(changed)}; check it with "
            "check_gradient(*net.as_functions(X, Y), net.params), which calls its own loss and backprop"
        )


class NetworkPerturbations:
    """The loss with one parameter perturbed, for many (parameter, step) pairs at once.

    Under cross-entropy the perturbed loss is f(x) plus the exact change it makes, summed from each output's change
    of cost. With c = σ(−|z|), s = −sign(z) and a change Δ of the logit z (softplus(t) = t + softplus(−t)):

        C(z + Δ) − C(z) = ln(1 + c·(e^{sΔ} − 1)) + ([z > 0] − y)·Δ

    which keeps full relative precision however small Δ is (c ≤ ½, so the logarithm is never near a pole), and costs
    one expm1 and one log1p per output where recomputing C(z + Δ) costs more passes over memory. The linear term sums
    over outputs by a product with precomputed weights. Other costs recompute the output layer's perturbed loss
    directly. Every hidden layer's values come from interpolants (:meth:`_interpolated`), with every cost's exact
    change of cost (:meth:`_cost_change`), wherever they are verified; the rest are computed directly.
    """

    def __init__(self, net: Network, X: np.ndarray, Y: np.ndarray, f0: float) -> None:
        self.net, self.X, self.Y, self.f0 = net, X, Y, f0
        self.leaves = {f"x['weights'][{l}]": (l, False) for l in range(net.num_layers)}
        self.leaves.update({f"x['biases'][{l}]": (l, True) for l in range(net.num_layers)})
        self.act, self.out, self.cost = HIDDEN[net.activation], OUTPUTS[net.output], COSTS[net.cost]
        bp = net.backprop(X, Y)
        self.zs, self.activations = bp.zs, bp.activations
        self.penalty = net.l2_penalty(len(X))
        # float64 copies for the interpolants, which must be exact to a tenth of an ulp of f(x)
        self.zs64 = [z.astype(np.float64) for z in self.zs]
        self.activations64 = [a.astype(np.float64) for a in self.activations]
        self.weights64 = [w.astype(np.float64) for w in net.weights]
        self.logits64, self.out64, self.Y64 = self.zs64[-1], self.activations64[-1], Y.astype(np.float64)
        self.by_change = self.cost.name == "cross_entropy"
        if self.by_change:
            z = self.zs[-1]
            self.flip = np.where(z > 0, -1.0, 1.0).astype(net.dtype)  # s
            self.coef = self.out.fn(-np.abs(z))  # c = σ(−|z|) ≤ ½
            self.slope = np.subtract(z > 0, Y, dtype=net.dtype)  # [z > 0] − y
            self.flip64, self.coef64, self.slope64 = (v.astype(np.float64) for v in (self.flip, self.coef, self.slope))
            if net.num_layers > 1:
                # Σₒ slope·Δ for Δ = moved ⊗ Wᴸ[:, j]: moved times (slope @ Wᴸ)[:, j]
                self.slope_w = self.slope @ net.weights[-1]

    def __call__(self, path: str, idx: np.ndarray, points: np.ndarray) -> np.ndarray:
        """The engine's protocol: the leaf by its path in ``net.params``, each element set to each of its points."""
        layer, is_bias = self.leaves[path]
        params = self.net.biases if is_bias else self.net.weights
        steps = points - params[layer].reshape(-1)[idx].astype(np.float64)[:, None]
        # all columns at once: one interpolant per unit serves every point of the stencil
        flat = self.perturb(layer, is_bias, np.repeat(idx, points.shape[1]), steps.reshape(-1))
        return flat.reshape(points.shape)

    def perturb(self, layer: int, is_bias: bool, idx: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Loss for each flat index of weights[layer] (or biases[layer]) perturbed by the matching step."""
        net, n = self.net, len(self.X)
        per_item = n * max(net.sizes[layer + 1 :])
        chunk = max(1, CHUNK_ELEMENTS // per_item)
        out = np.empty(len(idx))
        todo = np.arange(len(idx))
        if layer < net.num_layers - 1:
            values, done = self._interpolated(layer, is_bias, idx, steps)
            out[done] = values[done]
            todo = np.flatnonzero(~done)
        for start in range(0, len(todo), chunk):
            sl = todo[start : start + chunk]
            out[sl] = self._chunk(layer, is_bias, idx[sl], steps[sl])
        if net.l2 and not is_bias:
            old = net.weights[layer].reshape(-1)[idx].astype(np.float64)
            new = old + steps.astype(net.dtype).astype(np.float64)
            out += 0.5 * net.l2 / n * (new * new - old * old)
        return out

    def _interpolated(
        self, layer: int, is_bias: bool, idx: np.ndarray, steps: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The same values for a hidden layer, from one interpolant per (unit, example), where it is exact.

        Moving Wˡ[j, i] by δ moves zˡ[b, j] by c = δ·aˡ⁻¹[b, i] and nothing else, so the change of example b's cost
        is ψ_bj(c), one smooth function of one variable per unit and example, whatever i and δ are. ψ_bj is
        evaluated exactly at 8 Chebyshev points spanning every c the call needs and interpolated; the interpolant's
        error, bounded by twice the sum of the Chebyshev coefficients it drops, must be under a tenth of an ulp of
        f(x) for every example, it must reproduce ψ at both ends of the interval, and no kink of the activation may
        lie within reach in this layer or any above, or that unit's values are computed directly (`done` is False
        for them). With ψ_bj(c) = Σ_d q_bjd·(c/R_bj)^d, summing over the batch is a matrix product, so the work per
        perturbation grows neither with the batch nor with the layers above.
        """
        net, n = self.net, len(self.X)
        n_in = net.weights[layer].shape[1]
        rows = idx if is_bias else idx // n_in
        delta = steps.astype(net.dtype).astype(np.float64)
        units, inv = np.unique(rows, return_inverse=True)
        reach = np.zeros(len(units))  # max |δ| per unit
        np.maximum.at(reach, inv, np.abs(delta))
        inputs = np.ones((n, 1)) if is_bias else self.activations64[layer]  # c = δ, or δ·aˡ⁻¹[b, i]
        span = np.abs(inputs).max(axis=1)  # max |aˡ⁻¹[b, :]| per example
        half_width = reach[:, None] * span[None, :]  # R_bj: every c lies in [−R, R]
        psi, smooth = self._psi(layer, units, half_width)
        tol = 0.1 * float(np.finfo(net.dtype).eps) * abs(self.f0)
        poly, good = _fit(psi, tol)
        good &= smooth
        if not good.any():
            return np.empty(len(idx)), np.zeros(len(idx), dtype=bool)
        scale_in = np.divide(inputs, span[:, None], out=np.zeros_like(inputs), where=span[:, None] > 0)
        per_unit = [poly[:, :, d] @ (scale_in**d) for d in range(poly.shape[-1])]  # Σ_b q_bjd·(aᵢ/span_b)^d
        u = np.divide(delta, reach[inv], out=np.zeros_like(delta), where=reach[inv] > 0)
        cols = np.zeros(len(idx), dtype=np.intp) if is_bias else idx % n_in
        total = per_unit[-1][inv, cols]
        for d in range(len(per_unit) - 2, -1, -1):  # Horner in u = δ / max |δ|
            total = total * u + per_unit[d][inv, cols]
        return self.f0 + total / n, good[inv]

    def _psi(self, layer: int, units: np.ndarray, half_width: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ψ_bj at the Chebyshev nodes and at both ends of [−R_bj, R_bj], (units, batch, Q + 2), and whether each
        unit is free of kinks within reach; in blocks of units that bound the largest temporary."""
        n, widest = len(self.X), max(self.net.sizes[layer + 1 :])
        points = half_width[:, :, None] * _SAMPLE_AT  # (units, batch, Q + 2)
        block = max(1, CHUNK_ELEMENTS // (n * len(_SAMPLE_AT) * widest))
        parts = [
            self._unit_change(layer, units[s : s + block], points[s : s + block]) for s in range(0, len(units), block)
        ]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _unit_change(self, layer: int, units: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ψ_bj(c) for unit j = units[u] of hidden layer ``layer``: example b's change of cost when zˡ[b, j] moves
        by c[u, b, q], in float64 and to full relative precision (the interpolant is only as good as these), and
        whether the unit's move crosses no kink of the activation, here or in the layers above.

        The change is carried up as a difference, never as two values subtracted: Δaˡ = σ(z + c) − σ(z) by the
        activation's cancellation-free ``change``, Δzˡ⁺¹ = Δaˡ ⊗ Wˡ⁺¹[:, j] (rank 1), Δaˡ⁺¹ = change(zˡ⁺¹, Δzˡ⁺¹)
        and so on to the logits, whose change of cost has an exact form too (:meth:`_cost_change`)."""
        z = self.zs64[layer][:, units].T[:, :, None]  # (units, batch, 1)
        moved = self.act.change(z, c)
        smooth = ~self._crosses_kink(z, c)
        dz = moved[..., None] * self.weights64[layer + 1][:, units].T[:, None, None, :]  # (units, batch, Q', n)
        for k in range(layer + 1, self.net.num_layers - 1):
            zk = self.zs64[k][None, :, None, :]
            smooth &= ~self._crosses_kink(zk, dz)
            dz = self.act.change(zk, dz) @ self.weights64[k + 1].T
        return self._cost_change(dz), smooth

    def _crosses_kink(self, z: np.ndarray, dz: np.ndarray) -> np.ndarray:
        """Per unit (the first axis): whether some z + dz lies on the other side of the activation's kink at 0
        from z (or z sits on it), for activations that have one."""
        if not self.act.kink:
            return np.zeros(dz.shape[0], dtype=bool)
        crossed = np.sign(z + dz) != np.sign(z)
        return np.asarray(crossed.reshape(dz.shape[0], -1).any(axis=1))

    def _cost_change(self, dz: np.ndarray) -> np.ndarray:
        """Each example's change of cost when its logits move by dz (..., batch, Q', n_out), without cancellation:

        - cross-entropy after a sigmoid, per output: ln(1 + c·(e^{sΔ} − 1)) + ([z > 0] − y)·Δ;
        - log-likelihood after a softmax: ln(1 + Σₖ aₖ(e^{Δₖ} − 1)) − ⟨y, Δ⟩;
        - quadratic: Σ Δa·(a − y + Δa/2), with Δa the output activation's own change.
        """
        pad = (slice(None), None, slice(None))  # (batch, n_out) -> (batch, 1, n_out): broadcast over Q'
        if self.cost.name == "cross_entropy":
            t = np.expm1(dz * self.flip64[pad]) * self.coef64[pad]
            result: np.ndarray = np.log1p(t).sum(axis=-1) + (dz * self.slope64[pad]).sum(axis=-1)
        elif self.cost.name == "log_likelihood":
            result = np.log1p((self.out64[pad] * np.expm1(dz)).sum(axis=-1)) - (dz * self.Y64[pad]).sum(axis=-1)
        else:
            da = self.out.change(self.logits64[pad], dz)
            result = (da * (self.out64[pad] - self.Y64[pad] + 0.5 * da)).sum(axis=-1)
        return result

    def _chunk(self, layer: int, is_bias: bool, idx: np.ndarray, steps: np.ndarray) -> np.ndarray:
        net, n, last = self.net, len(self.X), self.net.num_layers - 1
        w = net.weights[layer]
        rows = idx if is_bias else idx // w.shape[1]
        delta = steps.astype(net.dtype)
        if is_bias:
            change = np.broadcast_to(delta[:, None], (len(rows), n))
        else:
            change = delta[:, None] * self.activations[layer][:, idx % w.shape[1]].T  # δ·aˡ⁻¹[:, i], (K, batch)
        if not self.by_change:
            return self._direct(layer, rows, change)
        if layer == last:  # only output j moves: every array is (K, batch)
            t = change * self.flip[:, rows].T
            linear = np.einsum("kb,kb->k", change, self.slope[:, rows].T)
            coef = self.coef[:, rows].T
        else:
            moved = self._moved(layer, rows, change)
            coef = self.coef
            if layer + 1 == last:  # the logits move by moved ⊗ Wᴸ[:, j]
                t = self._outer(moved, layer + 1, rows)
                linear = np.einsum("kb,bk->k", moved, self.slope_w[:, rows])
            else:  # through the layers above to the logits
                z = self._outer(moved, layer + 1, rows)
                z += self.zs[layer + 1][None]
                t = self._logits_from(layer + 1, z) - self.zs[last]
                linear = t.reshape(len(rows), -1) @ self.slope.reshape(-1)
            t *= self.flip
        np.expm1(t, out=t)
        t *= coef
        np.log1p(t, out=t)  # ln(1 + c·(e^{sΔ} − 1)) per output (and example)
        total = t.reshape(len(rows), -1) @ np.ones(t[0].size, dtype=t.dtype) + linear
        out = self.f0 + total.astype(np.float64) / n
        bad = np.flatnonzero(~np.isfinite(out))  # e^{sΔ} overflowed (a huge step): recompute those directly
        if bad.size:
            out[bad] = self._direct(layer, rows[bad], change[bad])
        result: np.ndarray = out
        return result

    def _direct(self, layer: int, rows: np.ndarray, change: np.ndarray) -> np.ndarray:
        """The perturbed loss recomputed from zˡ: unit rows[k] of layer ``layer`` has its z moved by change[k]."""
        if layer < self.net.num_layers - 1:
            z = self._outer(self._moved(layer, rows, change), layer + 1, rows)
            z += self.zs[layer + 1][None]
            return self._loss_from(layer + 1, z) + self.penalty
        z = np.repeat(self.zs[layer][None], len(rows), axis=0)  # (K, batch, n_L)
        z[np.arange(len(rows)), :, rows] += change
        return self._loss_from(layer, z) + self.penalty

    def _moved(self, layer: int, rows: np.ndarray, change: np.ndarray) -> np.ndarray:
        """σ(zⱼ + change) − σ(zⱼ), (K, batch): how unit rows[k] of hidden layer ``layer`` moves. Only it moves, so
        zˡ⁺¹ moves by this times Wˡ⁺¹[:, j]: rank 1 again."""
        result: np.ndarray = self.act.fn(self.zs[layer][:, rows].T + change) - self.activations[layer + 1][:, rows].T
        return result

    def _outer(self, moved: np.ndarray, layer: int, rows: np.ndarray) -> np.ndarray:
        """The K outer products moved[k] ⊗ W[layer][:, rows[k]], (K, batch, n_l): einsum writes them twice as fast
        as broadcasting."""
        result: np.ndarray = np.einsum("kb,ko->kbo", moved, self.net.weights[layer][:, rows].T)
        return result

    def _logits_from(self, layer: int, z: np.ndarray) -> np.ndarray:
        """K stacked pre-activations z of ``layer`` (K, batch, n_l) carried forward to the output layer's."""
        net = self.net
        for l in range(layer + 1, net.num_layers):
            z = self.act.fn(z) @ net.weights[l].T
            z += net.biases[l]
        return z

    def _loss_from(self, layer: int, z: np.ndarray) -> np.ndarray:
        """Mean cost over the batch for each of K stacked pre-activations z of ``layer``, shape (K, batch, n_l)."""
        z = self._logits_from(layer, z)
        result: np.ndarray
        if self.cost.name == "cross_entropy":  # takes the K stacked copies at once, Y broadcast rather than tiled
            result = self.cost.fn(z, None, self.Y).mean(axis=1)
            return result
        K, n, m = z.shape
        flat = z.reshape(K * n, m)
        a = self.out.fn(flat) if self.cost.name == "quadratic" else None  # the other costs work from the logits
        per_example = self.cost.fn(flat, a, np.tile(self.Y, (K, 1)))
        result = per_example.reshape(K, n).mean(axis=1)
        return result


def _fit(psi: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Interpolants of ψ from its values at the Chebyshev nodes (psi[..., :Q]), in powers of u = c / R, and which
    units they fit: dropped Chebyshev coefficients summing to at most ``tol`` (with evidence of decay: degree ≥ 2,
    at least the last two dropped) and the values at both ends (psi[..., Q:]) reproduced to ``tol``, for every
    example. One degree serves all units (the largest any fitting unit needs)."""
    cheb = psi[..., :_Q] @ _DCT
    dropped = 2 * np.cumsum(np.abs(cheb[..., ::-1]), axis=-1)[..., ::-1]  # [..., d]: 2 Σ_{k ≥ d} |c_k|
    fits = np.asarray((dropped <= tol).all(axis=1))  # (units, Q): degree d − 1 suffices
    fits[:, :3] = False
    fits[:, -1] = False
    good = np.asarray(fits.any(axis=1))
    degree = int(np.argmax(fits[good], axis=1).max()) - 1 if good.any() else 1
    poly = cheb[..., : degree + 1] @ _MONOMIAL[: degree + 1, : degree + 1]
    ends = np.stack([poly.sum(axis=-1), (poly * (-1.0) ** np.arange(degree + 1)).sum(axis=-1)], axis=-1)
    good &= (np.abs(ends - psi[..., _Q:]) <= tol).all(axis=(1, 2))
    return poly, good
