"""A zoo of gradient rules for torch and jax: correct ones, and the same with one realistic bug planted.

Each entry builds ``(fn, args)`` for a framework and a dtype. The bugs are the ones rule authors make: a missing
factor, a transposition on a square matrix, one term's sign, one entry scaled by 1 + 1e-3, a reduction over a
broadcast axis left out, the cotangent ignored, repeated indices overwritten instead of added, state accumulated
across calls, a forward rule that disagrees with the reverse one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["BUGS", "CORRECT", "jax_entry", "torch_entry"]


CORRECT = [
    "tanh",
    "softplus",
    "matmul",
    "bilinear",
    "layernorm",
    "logsumexp",
    "scatter_add",
    "broadcast_add",
    "sigmoid_xent",
    "cubic",
    "norm",
    "softmax",
]
BUGS = {
    "missing factor": "cubic",
    "square transposed": "matmul",
    "one term's sign": "bilinear",
    "one entry scaled by 1 + 1e-3": "tanh",
    "broadcast reduction missing": "broadcast_add",
    "cotangent ignored": "softplus",
    "repeated indices overwritten": "scatter_add",
    "state accumulated across calls": "norm",
    "jvp disagrees with vjp": "cubic",
    "softmax Jacobian without the outer term": "softmax",
    "layernorm mean term dropped": "layernorm",
    "logsumexp without the max shift's gradient": "logsumexp",
}


def _data(name: str, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    if name in ("matmul",):
        return [rng.standard_normal((n, n)), rng.standard_normal((n, n))]
    if name == "bilinear":
        return [rng.standard_normal(n), rng.standard_normal((n, n)), rng.standard_normal(n)]
    if name == "broadcast_add":
        return [rng.standard_normal((4, n)), rng.standard_normal(n)]
    if name == "scatter_add":
        return [rng.standard_normal(n)]
    return [rng.standard_normal((3, n))]


def torch_entry(
    name: str, bug: str | None, dtype: Any, n: int = 6, seed: int = 0
) -> tuple[Callable[..., Any], list[Any]]:
    """(fn, args) for torch: an autograd.Function with a hand-written backward (and jvp where it has one)."""
    import torch

    rng = np.random.default_rng(seed)
    args = [torch.tensor(a, dtype=dtype) for a in _data(name, rng, n)]
    index = torch.tensor([0, 2, 2, 1, 0, 3][: max(1, n)] + [1] * max(0, n - 6))
    rules = _torch_rules(torch, bug, index)
    fn = rules[name]
    return (lambda x: fn(x, index)) if name == "scatter_add" else fn, args


def _torch_rules(torch: Any, bug: str | None, index: Any) -> dict[str, Callable[..., Any]]:
    state = {"calls": 0}

    def function(forward: Callable[..., Any], backward: Callable[..., Any], jvp: Callable[..., Any] | None = None):
        class Rule(torch.autograd.Function):
            @staticmethod
            def forward(*inputs: Any) -> Any:
                return forward(*inputs)

            @staticmethod
            def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
                ctx.save_for_backward(*[i for i in inputs if isinstance(i, torch.Tensor)])
                ctx.inputs = inputs

            @staticmethod
            def backward(ctx: Any, g: Any) -> Any:
                grads = backward(ctx.inputs, g)
                return grads if isinstance(grads, tuple) else (grads,)

        if jvp is not None:

            def rule_jvp(ctx: Any, *tangents: Any) -> Any:
                return jvp(ctx.inputs, tangents)

            Rule.jvp = staticmethod(rule_jvp)
        return Rule.apply

    def scaled(t: Any) -> Any:
        if bug == "one entry scaled by 1 + 1e-3":
            t = t.clone(memory_format=torch.contiguous_format)  # .view below needs contiguous memory
            t.view(-1)[1] *= 1 + 1e-3
        return t

    def cubic_back(i: Any, g: Any) -> Any:
        (x,) = i
        return g * (x * x if bug == "missing factor" else 3 * x * x)

    def cubic_jvp(i: Any, t: Any) -> Any:
        (x,) = i
        return t[0] * 3 * x * x * (1.01 if bug == "jvp disagrees with vjp" else 1)

    def norm_back(i: Any, g: Any) -> Any:
        (x,) = i
        state["calls"] += 1
        extra = (state["calls"] - 1) * 1e-2 if bug == "state accumulated across calls" else 0.0
        return g * x / torch.linalg.vector_norm(x) * (1 + extra)

    def softmax_back(i: Any, g: Any) -> Any:
        (x,) = i
        a = torch.softmax(x, dim=-1)
        if bug == "softmax Jacobian without the outer term":
            return a * g
        return a * (g - (a * g).sum(dim=-1, keepdim=True))

    def layernorm_back(i: Any, g: Any) -> Any:
        (x,) = i
        mu, sd = x.mean(-1, keepdim=True), x.std(-1, unbiased=False, keepdim=True)
        xh = (x - mu) / sd
        mean_term = 0 if bug == "layernorm mean term dropped" else g.mean(-1, keepdim=True)
        return (g - mean_term - xh * (g * xh).mean(-1, keepdim=True)) / sd

    def lse_back(i: Any, g: Any) -> Any:
        (x,) = i
        if bug == "logsumexp without the max shift's gradient":
            return g[..., None] * torch.exp(x - x.max(-1, keepdim=True).values)
        return g[..., None] * torch.softmax(x, dim=-1)

    def scatter_back(i: Any, g: Any) -> Any:
        _, idx = i
        if bug == "repeated indices overwritten":
            return _overwritten(g, idx), None
        return g[idx], None

    def _overwritten(g: Any, idx: Any) -> Any:
        seen: set[int] = set()
        out = g[idx].clone()
        for k, j in enumerate(idx.tolist()):
            if j in seen:
                out[k] = 0
            seen.add(j)
        return out

    return {
        "tanh": function(torch.tanh, lambda i, g: scaled(g * (1 - torch.tanh(i[0]) ** 2))),
        "softplus": function(
            torch.nn.functional.softplus,
            lambda i, g: torch.sigmoid(i[0]) * (1 if bug == "cotangent ignored" else g),
        ),
        "matmul": function(
            torch.matmul,
            lambda i, g: (g @ (i[1] if bug == "square transposed" else i[1].T), i[0].T @ g),
        ),
        "bilinear": function(
            lambda x, A, y: x @ A @ y,
            lambda i, g: (
                g * (i[1] @ i[2]),
                g * torch.outer(i[0], i[2]),
                g * (i[0] @ i[1]) * (-1 if bug == "one term's sign" else 1),
            ),
        ),
        "layernorm": function(
            lambda x: (x - x.mean(-1, keepdim=True)) / x.std(-1, unbiased=False, keepdim=True), layernorm_back
        ),
        "logsumexp": function(lambda x: torch.logsumexp(x, dim=-1), lse_back),
        "scatter_add": function(lambda x, idx: x.new_zeros(4).index_add(0, idx, x), scatter_back),
        "broadcast_add": function(
            lambda x, b: torch.tanh(x + b),
            lambda i, g: (
                (d := g * (1 - torch.tanh(i[0] + i[1]) ** 2)),
                d[0] if bug == "broadcast reduction missing" else d.sum(0),
            ),
        ),
        "sigmoid_xent": function(
            lambda z: torch.nn.functional.softplus(z) - 0.3 * z, lambda i, g: g * (torch.sigmoid(i[0]) - 0.3)
        ),
        "cubic": function(lambda x: x**3, cubic_back, cubic_jvp),
        "norm": function(lambda x: torch.linalg.vector_norm(x), norm_back),
        "softmax": function(lambda x: torch.softmax(x, dim=-1), softmax_back),
    }


def jax_entry(
    name: str, bug: str | None, dtype: Any, n: int = 6, seed: int = 0
) -> tuple[Callable[..., Any], list[Any]]:
    """(fn, args) for jax: a ``custom_vjp`` function (``custom_jvp`` for the jvp entry) with a hand-written rule."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(seed)
    args = [jnp.asarray(a, dtype=dtype) for a in _data(name, rng, n)]
    index = jnp.asarray([0, 2, 2, 1, 0, 3][: max(1, n)] + [1] * max(0, n - 6))
    state = {"calls": 0}

    def vjp_rule(forward: Callable[..., Any], backward: Callable[..., Any]) -> Callable[..., Any]:
        f = jax.custom_vjp(forward)
        f.defvjp(lambda *x: (forward(*x), x), lambda x, g: backward(x, g))
        return f

    def scaled(t: Any) -> Any:
        return t.at[1].multiply(1 + 1e-3) if bug == "one entry scaled by 1 + 1e-3" else t

    def norm_back(x: Any, g: Any) -> Any:
        state["calls"] += 1
        extra = (state["calls"] - 1) * 1e-2 if bug == "state accumulated across calls" else 0.0
        return (g * x[0] / jnp.linalg.norm(x[0]) * (1 + extra),)

    cubic = jax.custom_jvp(lambda x: x**3)
    cubic.defjvp(
        lambda p, t: (
            p[0] ** 3,
            t[0]
            * (p[0] ** 2 if bug == "missing factor" else 3 * p[0] ** 2)
            * (1.01 if bug == "jvp disagrees with vjp" else 1),
        )
    )

    def overwritten(g: Any) -> Any:
        seen: set[int] = set()
        keep = []
        for j in [int(v) for v in index]:
            keep.append(j not in seen)
            seen.add(j)
        return g[index] * jnp.asarray(keep, dtype=g.dtype)

    def softmax_back(x: Any, g: Any) -> Any:
        a = jax.nn.softmax(x[0], axis=-1)
        if bug == "softmax Jacobian without the outer term":
            return (a * g,)
        return (a * (g - (a * g).sum(-1, keepdims=True)),)

    def layernorm_back(x: Any, g: Any) -> Any:
        x = x[0]
        mu, sd = x.mean(-1, keepdims=True), x.std(-1, keepdims=True)
        xh = (x - mu) / sd
        mean_term = 0 if bug == "layernorm mean term dropped" else g.mean(-1, keepdims=True)
        return ((g - mean_term - xh * (g * xh).mean(-1, keepdims=True)) / sd,)

    def lse_back(x: Any, g: Any) -> Any:
        x = x[0]
        if bug == "logsumexp without the max shift's gradient":
            return (g[..., None] * jnp.exp(x - x.max(-1, keepdims=True)),)
        return (g[..., None] * jax.nn.softmax(x, axis=-1),)

    rules = {
        "tanh": vjp_rule(jnp.tanh, lambda x, g: (scaled(g * (1 - jnp.tanh(x[0]) ** 2)),)),
        "softplus": vjp_rule(
            jax.nn.softplus, lambda x, g: (jax.nn.sigmoid(x[0]) * (1 if bug == "cotangent ignored" else g),)
        ),
        "matmul": vjp_rule(jnp.matmul, lambda x, g: (g @ (x[1] if bug == "square transposed" else x[1].T), x[0].T @ g)),
        "bilinear": vjp_rule(
            lambda x, A, y: x @ A @ y,
            lambda x, g: (
                g * (x[1] @ x[2]),
                g * jnp.outer(x[0], x[2]),
                g * (x[0] @ x[1]) * (-1 if bug == "one term's sign" else 1),
            ),
        ),
        "layernorm": vjp_rule(lambda x: (x - x.mean(-1, keepdims=True)) / x.std(-1, keepdims=True), layernorm_back),
        "logsumexp": vjp_rule(lambda x: jax.nn.logsumexp(x, axis=-1), lse_back),
        "scatter_add": vjp_rule(
            lambda x: jnp.zeros(4, x.dtype).at[index].add(x),
            lambda x, g: (overwritten(g) if bug == "repeated indices overwritten" else g[index],),
        ),
        "broadcast_add": vjp_rule(
            lambda x, b: jnp.tanh(x + b),
            lambda x, g: (
                d := g * (1 - jnp.tanh(x[0] + x[1]) ** 2),
                d[0] if bug == "broadcast reduction missing" else d.sum(0),
            ),
        ),
        "sigmoid_xent": vjp_rule(
            lambda z: jax.nn.softplus(z) - 0.3 * z, lambda x, g: (g * (jax.nn.sigmoid(x[0]) - 0.3),)
        ),
        "cubic": cubic,
        "norm": vjp_rule(lambda x: jnp.sqrt(jnp.sum(x * x)), norm_back),
        "softmax": vjp_rule(lambda x: jax.nn.softmax(x, axis=-1), softmax_back),
    }
    return rules[name], args
