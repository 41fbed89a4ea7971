"""Two hand-written gradient rules: a fused "scaled softplus" as a torch autograd.Function, and a numerically
stable log-sum-exp as a jax custom_vjp."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import torch


class ScaledSoftplus(torch.autograd.Function):
    """y = softplus(x) · s, with s a per-feature scale; x (batch, n), s (n,)."""

    @staticmethod
    def forward(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.softplus(x) * s

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, g):
        x, s = ctx.saved_tensors
        return g * torch.sigmoid(x) * s, (g * torch.nn.functional.softplus(x)).sum(0)


@jax.custom_vjp
def logsumexp(x: jax.Array) -> jax.Array:
    """ln Σ exp(x) over the last axis, shifted by the maximum so that it never overflows."""
    m = x.max(-1, keepdims=True)
    return (m + jnp.log(jnp.exp(x - m).sum(-1, keepdims=True)))[..., 0]


def _forward(x):
    return logsumexp(x), x


def _backward(x, g):
    return (g[..., None] * jax.nn.softmax(x, axis=-1),)


logsumexp.defvjp(_forward, _backward)
