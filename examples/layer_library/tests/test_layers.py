"""gradcheck's layer battery on each layer: a few lines of glue per layer."""

import pytest
from layers import Linear, RMSNorm, Tanh

from gradcheck.suite import ObjectLayer, layer_checks


@pytest.mark.parametrize("check", layer_checks(ObjectLayer(lambda rng: Linear(4, 3, rng=rng), (4,))), ids=str)
def test_linear(check):
    check()


@pytest.mark.parametrize("check", layer_checks(ObjectLayer(lambda rng: Tanh(), (5,))), ids=str)
def test_tanh(check):
    check()


@pytest.mark.parametrize("check", layer_checks(ObjectLayer(lambda rng: RMSNorm(6, rng=rng), (6,))), ids=str)
def test_rmsnorm(check):
    check()
