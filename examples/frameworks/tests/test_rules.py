"""The rules checked through the gradcheck fixture, in float32 (their working precision) and float64."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from rules import ScaledSoftplus, logsumexp


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scaled_softplus(gradcheck, dtype):
    x = torch.linspace(-3, 3, 12, dtype=dtype).reshape(3, 4)
    s = torch.tensor([0.5, 1.0, 2.0, -1.0], dtype=dtype)
    gradcheck.torch(ScaledSoftplus.apply, x, s)


def test_scaled_softplus_against_a_float64_reference(gradcheck):
    x = torch.linspace(-3, 3, 12, dtype=torch.float32).reshape(3, 4)
    s = torch.ones(4, dtype=torch.float32)
    gradcheck.torch(ScaledSoftplus.apply, x, s, reference="float64")


@pytest.mark.gradcheck(rtol=1e-3)
def test_logsumexp(gradcheck):
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 5)), dtype=jnp.float32)
    gradcheck.jax(logsumexp, x)
