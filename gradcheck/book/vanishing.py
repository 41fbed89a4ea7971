"""Vanishing gradients at initialisation: per-layer ‖δˡ‖ and ‖∂C/∂Wˡ‖ under cross-entropy and the quadratic cost.

The question: cross-entropy removes σ′(zᴸ) from δᴸ; does that rescue the hidden layers of a deep sigmoid network?
BP2, δˡ = ((Wˡ⁺¹)ᵀ δˡ⁺¹) ⊙ σ′(zˡ), holds under any cost, so the hidden deltas are the same linear map applied to δᴸ.
With one output unit δᴸ is a scalar per example, and δˡ_quadratic = σ′(zᴸ)·δˡ_CE exactly:
the decay from layer to layer cannot depend on the cost. :func:`measure` shows it numerically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcheck.book.plots import figure, save
from gradcheck.errors import InvalidArgument
from gradcheck.nn.activations import HIDDEN
from gradcheck.nn.network import Backprop, Network

__all__ = ["ACTIVATIONS", "COSTS", "Profile", "Result", "answer", "answer_text", "measure", "plot", "table"]

COSTS = ("cross_entropy", "quadratic")
ACTIVATIONS = ("sigmoid", "tanh", "relu")


@dataclass
class Profile:
    """Per-hidden-layer gradient sizes of one network at initialisation, layer 1 first.

    ``delta_norm[l]`` is ‖mean over the batch of δˡ‖ = ‖∂C/∂bˡ‖ (the book's measure of how fast layer l learns),
    ``grad_w_norm[l]`` is ‖∂C/∂Wˡ‖ (Frobenius).
    """

    activation: str
    cost: str
    depth: int
    delta_norm: list[float]
    grad_w_norm: list[float]

    @property
    def ratio(self) -> float:
        """‖δ¹‖ / ‖δ of the last hidden layer‖, how much slower the first hidden layer learns than the last."""
        return self.delta_norm[0] / self.delta_norm[-1] if self.delta_norm[-1] else float("nan")

    @property
    def decay(self) -> float:
        """Geometric mean of the factor by which ‖δ‖ shrinks from one hidden layer to the one below it."""
        if self.depth < 2 or not self.delta_norm[0] or not self.delta_norm[-1]:
            return float("nan")
        return float((self.delta_norm[-1] / self.delta_norm[0]) ** (1 / (self.depth - 1)))

    def as_dict(self) -> dict[str, Any]:
        return {
            "activation": self.activation,
            "cost": self.cost,
            "depth": self.depth,
            "ratio": self.ratio,
            "decay_per_layer": self.decay,
            "delta_norm": self.delta_norm,
            "grad_w_norm": self.grad_w_norm,
        }


@dataclass
class Result:
    width: int
    batch: int
    profiles: list[Profile] = field(default_factory=list)
    # per activation and depth: max over layers and examples of |δ_quad − σ′(zᴸ)·δ_CE| / scale
    identity_error: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "batch": self.batch,
            "profiles": [p.as_dict() for p in self.profiles],
            "quadratic_delta_equals_sigma_prime_times_ce_delta_max_error": self.identity_error,
        }


def measure(
    *,
    depths: Sequence[int] = (2, 5, 10, 20, 50, 100),
    activations: Sequence[str] = ACTIVATIONS,
    width: int = 30,
    batch: int = 100,
    rng: np.random.Generator,
    progress: Callable[[Iterable[Any]], Iterable[Any]] = iter,
) -> Result:
    """Gradient profiles of ``[width] + [width]*depth + [1]`` networks (sigmoid output, one unit) at network2's
    initialisation, for each activation and depth, under both costs with the *same* weights and data.

    Inputs are uniform in [0, 1], shape ``(batch, width)``; targets are 0 or 1, shape ``(batch, 1)``.
    """
    depths = _positive_ints("depths", depths)
    for name, value in (("width", width), ("batch", batch)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise InvalidArgument(f"{name}={value!r}; it must be a positive integer")
    unknown = [a for a in activations if a not in HIDDEN]
    if unknown:
        raise InvalidArgument(f"activations {unknown} are not known; choose from {sorted(HIDDEN)}")
    result = Result(width=width, batch=batch)
    jobs = [(a, d) for a in activations for d in depths]
    for activation, depth in progress(jobs):
        bps = {}
        for net, X, Y in _both_costs(activation, depth, width, batch, rng):
            bp = net.backprop(X, Y)
            bps[net.cost] = bp
            hidden = range(depth)  # weighted layers 0 … depth−1 end in hidden layers; layer `depth` is the output
            result.profiles.append(
                Profile(
                    activation=activation,
                    cost=net.cost,
                    depth=depth,
                    delta_norm=[float(np.linalg.norm(bp.grad_b[l])) for l in hidden],
                    grad_w_norm=[float(np.linalg.norm(bp.grad_w[l])) for l in hidden],
                )
            )
        result.identity_error[f"{activation} depth {depth}"] = _shared_factor_error(
            bps["cross_entropy"], bps["quadratic"]
        )
    return result


def _both_costs(
    activation: str, depth: int, width: int, batch: int, rng: np.random.Generator
) -> list[tuple[Network, np.ndarray, np.ndarray]]:
    """``[width] + [width]*depth + [1]`` under cross-entropy and under the quadratic cost, sharing one draw of
    weights and one batch: X uniform in [0, 1] ``(batch, width)``, Y of 0s and 1s ``(batch, 1)``."""
    sizes = [width] + [width] * depth + [1]
    ce = Network(sizes, activation=activation, output="sigmoid", cost="cross_entropy", rng=rng)
    quad = Network(
        sizes, activation=activation, output="sigmoid", cost="quadratic", weights=ce.weights, biases=ce.biases
    )
    X, Y = rng.uniform(0, 1, (batch, width)), rng.integers(0, 2, (batch, 1)).astype(float)
    return [(ce, X, Y), (quad, X, Y)]


def _sigmoid_prime(z: np.ndarray) -> np.ndarray:
    """σ′(z) written out from its definition, not the library's: the identities below compare against it."""
    e = np.exp(-np.abs(z))
    result: np.ndarray = e / (1 + e) ** 2
    return result


def _shared_factor_error(ce: Backprop, quad: Backprop) -> float:
    """max over hidden layers of ‖δ_quad − σ′(zᴸ)·δ_CE‖∞ / ‖δ_quad‖∞ (σ′(zᴸ) = δᴸ_quad / δᴸ_CE, per example)."""
    z = ce.zs[-1]
    sigma_prime = _sigmoid_prime(z)
    worst = 0.0
    for d_ce, d_quad in zip(ce.deltas[:-1], quad.deltas[:-1]):
        scale = np.abs(d_quad).max()
        if scale > 0:
            worst = max(worst, float(np.abs(d_quad - sigma_prime * d_ce).max() / scale))
    return worst


def table(result: Result) -> str:
    """The profiles as a text table, one row per (activation, cost, depth)."""
    lines = [
        f"{'activation':<10} {'cost':<13} {'depth':>5}  {'‖δ¹‖':>9}  {'‖δ last‖':>9}  {'first/last':>10}  "
        f"{'shrink/layer':>12}  {'‖∂C/∂W¹‖':>9}"
    ]
    for p in result.profiles:
        lines.append(
            f"{p.activation:<10} {p.cost:<13} {p.depth:>5}  {p.delta_norm[0]:>9.2e}  "
            f"{p.delta_norm[-1]:>9.2e}  {p.ratio:>10.2e}  {p.decay:>12.3f}  {p.grad_w_norm[0]:>9.2e}"
        )
    return "\n".join(lines)


def plot(result: Result, path: str) -> str:
    """A PNG of ‖δˡ‖ against l (log scale) for the deepest network of each activation and cost."""
    deepest = max(p.depth for p in result.profiles)
    fig, ax = figure()
    colours: dict[str, str] = {}
    for p in result.profiles:
        if p.depth == deepest:
            colour = colours.setdefault(p.activation, f"C{len(colours)}")
            style = "-" if p.cost == "cross_entropy" else "--"
            ax.semilogy(range(1, p.depth + 1), p.delta_norm, style, color=colour, label=f"{p.activation}, {p.cost}")
    ax.set_xlabel("hidden layer l (1 = next to the input)")
    ax.set_ylabel("‖∂C/∂bˡ‖ = ‖mean δˡ‖")
    ax.set_title(f"Gradient size per layer at initialisation, {deepest} hidden layers of {result.width}")
    return save(fig, path)


def _positive_ints(name: str, values: Iterable[int]) -> list[int]:
    out = list(values)
    if not out or any(not isinstance(v, (int, np.integer)) or v < 1 for v in out):
        raise InvalidArgument(f"{name}={out!r}; give positive integers, e.g. 2,10,100")
    return [int(v) for v in out]


def answer(*, depth: int = 100, width: int = 30, batch: int = 100, rng: np.random.Generator) -> dict[str, Any]:
    """The question answered in numbers, on one deep sigmoid network with one output unit, both costs sharing its
    weights and data: what each output delta is, that every hidden delta is BP2 under both, and how fast they decay.
    """
    (ce, X, Y), (quad, _, _) = _both_costs("sigmoid", depth, width, batch, rng)
    bp = {"cross_entropy": ce.backprop(X, Y), "quadratic": quad.backprop(X, Y)}
    z, a = bp["cross_entropy"].zs[-1], bp["cross_entropy"].activations[-1]
    sigma_prime = _sigmoid_prime(z)

    def rel(actual: np.ndarray, expected: np.ndarray) -> float:
        scale = np.abs(expected).max()
        return float(np.abs(actual - expected).max() / scale) if scale else float(np.abs(actual).max())

    def bp2_error(b: Backprop) -> float:
        worst = 0.0
        for l in range(depth):
            s = b.zs[l]
            expected = (b.deltas[l + 1] @ ce.weights[l + 1]) * _sigmoid_prime(s)
            worst = max(worst, rel(b.deltas[l], expected))
        return worst

    first = {c: float(np.linalg.norm(b.grad_b[0])) for c, b in bp.items()}
    last = {c: float(np.linalg.norm(b.grad_b[depth - 1])) for c, b in bp.items()}
    return {
        "network": f"[{width}] + {depth}×[{width}] sigmoid + [1] sigmoid output, batch {batch}",
        "ce_output_delta_minus_a_minus_y": rel(bp["cross_entropy"].deltas[-1], a - Y),
        "quadratic_output_delta_minus_a_minus_y_times_sigma_prime": rel(
            bp["quadratic"].deltas[-1], (a - Y) * sigma_prime
        ),
        "bp2_max_error": {c: bp2_error(b) for c, b in bp.items()},
        "quadratic_delta_equals_sigma_prime_times_ce_delta_max_error": _shared_factor_error(
            bp["cross_entropy"], bp["quadratic"]
        ),
        "first_hidden_norm": first,
        "last_hidden_norm": last,
        "first_over_last": {c: first[c] / last[c] for c in bp},
        "shrink_per_layer": {c: (last[c] / first[c]) ** (1 / (depth - 1)) for c in bp},
    }


def answer_text(ans: dict[str, Any]) -> str:
    ce, q = "cross_entropy", "quadratic"
    return "\n".join(
        [
            f"The question, measured on {ans['network']} (one draw of network2's initialisation):",
            f"  cross-entropy output delta  δᴸ = a − y            (max rel. deviation "
            f"{ans['ce_output_delta_minus_a_minus_y']:.1e}): σ′(zᴸ) is gone",
            f"  quadratic output delta      δᴸ = (a − y)·σ′(zᴸ)   (max rel. deviation "
            f"{ans['quadratic_output_delta_minus_a_minus_y_times_sigma_prime']:.1e}): σ′(zᴸ) stays",
            f"  every hidden layer, both costs: δˡ = ((Wˡ⁺¹)ᵀ δˡ⁺¹) ⊙ σ′(zˡ)   (max rel. deviation "
            f"{max(ans['bp2_max_error'].values()):.1e})",
            f"  per example, δˡ_quadratic = σ′(zᴸ)·δˡ_cross-entropy in every layer (max rel. deviation "
            f"{ans['quadratic_delta_equals_sigma_prime_times_ce_delta_max_error']:.1e})",
            f"  first hidden layer ÷ last: {ans['first_over_last'][ce]:.2e} under cross-entropy, "
            f"{ans['first_over_last'][q]:.2e} under quadratic",
            f"  toward the input the gradient shrinks by a factor of {ans['shrink_per_layer'][ce]:.2f} per layer under "
            f"cross-entropy and {ans['shrink_per_layer'][q]:.2f} under quadratic",
            "So: cross-entropy changes only δᴸ. The hidden layers keep their σ′ factors, and a 100-layer sigmoid "
            "network's\nfirst layers learn no faster under it than under the quadratic cost.",
        ]
    )
