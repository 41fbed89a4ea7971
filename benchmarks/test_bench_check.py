"""Checking speed: every parameter of the chapter-1 network [784, 30, 10] on a batch of 10 (23,860 parameters).

`check_network` (exhaustive, using the network's structure), `check_gradient` in its default and fast modes, and,
when they are installed, torch.autograd.gradcheck's default mode, jax.test_util.check_grads (first order, reverse
mode) and numdifftools.Gradient followed by np.allclose, all on the same loss in float64. Run with
``tox -e bench``; compare ratios inside the group, not absolute times.
"""

from __future__ import annotations

import numpy as np
import pytest
import rivals

from gradcheck import Network, check_gradient, check_network

GROUP = "check [784,30,10] batch 10"


@pytest.fixture(scope="module")
def chapter_one():
    rng = np.random.default_rng(0)
    net = Network([784, 30, 10], rng=rng)
    X, Y = rng.uniform(0, 1, (10, 784)), np.eye(10)[rng.integers(0, 10, 10)]
    return net, X, Y


@pytest.mark.benchmark(group=GROUP)
def test_check_network_every_parameter(benchmark, chapter_one):
    net, X, Y = chapter_one
    report = benchmark.pedantic(check_network, args=(net, X, Y), rounds=10, iterations=1)
    benchmark.extra_info.update(parameters=23_860, calls=report.calls)
    assert report.ok


@pytest.mark.benchmark(group=GROUP)
def test_check_gradient_fast_mode(benchmark, chapter_one):
    net, X, Y = chapter_one
    loss, grad = net.as_functions(X, Y)
    report = benchmark.pedantic(
        check_gradient,
        args=(loss, grad, net.params),
        kwargs={"mode": "fast", "rng": np.random.default_rng(0)},
        rounds=5,
        iterations=1,
    )
    benchmark.extra_info.update(parameters=23_860, calls=report.calls)
    assert report.ok


@pytest.mark.benchmark(group=GROUP)
def test_check_gradient_default_mode(benchmark, chapter_one):
    """Every element by central differences with Richardson error estimates, one loss evaluation at a time."""
    net, X, Y = chapter_one
    loss, grad = net.as_functions(X, Y)
    report = benchmark.pedantic(check_gradient, args=(loss, grad, net.params), rounds=1, iterations=1)
    benchmark.extra_info.update(parameters=23_860, calls=report.calls)
    assert report.ok


@pytest.mark.benchmark(group=GROUP)
def test_torch_autograd_gradcheck(benchmark, chapter_one):
    """torch.autograd.gradcheck in its default (slow, exhaustive) mode on the same loss in float64."""
    pytest.importorskip("torch", reason="torch is not installed (tox -e bench installs torch==2.13.0)")
    assert rivals.torch_gradcheck_beside_check_network(benchmark, *chapter_one)


@pytest.mark.benchmark(group=GROUP)
def test_jax_check_grads(benchmark, chapter_one):
    """jax.test_util.check_grads, order 1, reverse mode: the VJP against finite differences along random
    directions, with jax's fixed step and tolerance for float64."""
    pytest.importorskip("jax", reason="jax is not installed (tox -e bench installs it)")
    from jax.test_util import check_grads

    net, X, Y = chapter_one
    loss = rivals.jax_loss_fn()
    params, jX, jY = rivals.jax_problem(net.weights, net.biases, X, Y)
    assert abs(float(loss(params, jX, jY)) - net.loss(X, Y)) < 1e-12 * max(1.0, net.loss(X, Y))

    def check():
        check_grads(lambda p: loss(p, jX, jY), (params,), order=1, modes=("rev",))

    benchmark.pedantic(check, rounds=5, iterations=1)
    benchmark.extra_info.update(parameters=23_860)


@pytest.mark.benchmark(group=GROUP)
def test_numdifftools_gradient(benchmark, chapter_one):
    """numdifftools.Gradient (central differences with Richardson extrapolation over several steps) of the flat
    parameter vector, compared with the analytic gradient by np.allclose: the usual way to use it as a checker."""
    nd = pytest.importorskip("numdifftools", reason="numdifftools is not installed (tox -e bench installs it)")
    net, X, Y = chapter_one
    loss, grad = net.as_functions(X, Y)
    shapes = [w.shape for w in net.weights] + [b.shape for b in net.biases]
    sizes = [int(np.prod(s)) for s in shapes]
    L = net.num_layers

    def unflatten(v):
        parts = np.split(v, np.cumsum(sizes)[:-1])
        arrays = [p.reshape(s) for p, s in zip(parts, shapes)]
        return {"weights": arrays[:L], "biases": arrays[L:]}

    g = grad(net.params)
    analytic = np.concatenate([a.ravel() for a in g["weights"] + g["biases"]])
    x0 = np.concatenate([a.ravel() for a in net.weights + net.biases])

    def check():
        numeric = nd.Gradient(lambda v: loss(unflatten(v)))(x0)
        return np.allclose(analytic, numeric, rtol=1e-6, atol=1e-9)

    ok = benchmark.pedantic(check, rounds=1, iterations=1)
    benchmark.extra_info.update(parameters=23_860)
    assert ok
