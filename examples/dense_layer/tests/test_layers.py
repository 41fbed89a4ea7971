"""Gradient checks of the hand-written layers with the gradcheck fixture and strategies."""

from __future__ import annotations

import numpy as np
import pytest
from dense_layer import Dense, SoftmaxLogLikelihood
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck.strategies import float_arrays

RNG = np.random.default_rng(0)
X = RNG.standard_normal((5, 4))
LABELS = np.array([0, 2, 1, 2, 0])


def model_loss_and_grad(layer, head):
    def loss(params):
        layer.params = params
        return head.forward(layer.forward(X), LABELS)

    def grad(params):
        layer.params = params
        head.forward(layer.forward(X), LABELS)
        return layer.backward(head.backward())[1]

    return loss, grad


def test_dense_layer_under_a_softmax_head(gradcheck):
    layer = Dense(4, 3, rng=np.random.default_rng(1))
    loss, grad = model_loss_and_grad(layer, SoftmaxLogLikelihood())
    gradcheck(loss, grad, {k: v.copy() for k, v in layer.params.items()})


@pytest.mark.gradcheck(mode="fast")
def test_dense_layer_in_fast_mode(gradcheck):
    layer = Dense(4, 3, rng=np.random.default_rng(2))
    loss, grad = model_loss_and_grad(layer, SoftmaxLogLikelihood())
    assert gradcheck(loss, grad, {k: v.copy() for k, v in layer.params.items()}).mode == "fast"


@settings(max_examples=25, deadline=None)
@given(float_arrays((5, 3), scale=5.0), st.lists(st.integers(0, 2), min_size=5, max_size=5))
def test_softmax_head_for_any_logits(gradcheck, logits, labels):
    head = SoftmaxLogLikelihood()
    labels = np.array(labels)

    def loss(z):
        return head.forward(z, labels)

    def grad(z):
        head.forward(z, labels)
        return head.backward()

    gradcheck(loss, grad, logits)


def test_the_input_gradient_through_the_jacobian_helper(gradcheck):
    layer = Dense(4, 3, rng=np.random.default_rng(3))
    x = RNG.standard_normal((2, 4))

    def vjp(x, v):
        layer.forward(x)
        return layer.backward(v)[0]

    gradcheck.jacobian(layer.forward, x, vjp=vjp)
