"""Checking speed: every parameter of the chapter-1 network [784, 30, 10] on a batch of 10 (23,860 parameters).

Run with ``tox -e bench`` (or ``pytest benchmarks``); compare the groups' ratios, not absolute times.
"""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck import Network, check_gradient, check_network


@pytest.fixture(scope="module")
def chapter_one():
    rng = np.random.default_rng(0)
    net = Network([784, 30, 10], rng=rng)
    X, Y = rng.uniform(0, 1, (10, 784)), np.eye(10)[rng.integers(0, 10, 10)]
    return net, X, Y


@pytest.mark.benchmark(group="check [784,30,10] batch 10")
def test_check_network_every_parameter(benchmark, chapter_one):
    net, X, Y = chapter_one
    report = benchmark.pedantic(check_network, args=(net, X, Y), rounds=3, iterations=1)
    benchmark.extra_info.update(parameters=23_860, calls=report.calls)
    assert report.ok


@pytest.mark.benchmark(group="check [784,30,10] batch 10")
def test_check_gradient_fast_mode(benchmark, chapter_one):
    net, X, Y = chapter_one
    loss, grad = net.as_functions(X, Y)
    report = benchmark.pedantic(check_gradient, args=(loss, grad, net.params),
                                kwargs={"mode": "fast", "rng": np.random.default_rng(0)}, rounds=5, iterations=1)
    benchmark.extra_info.update(parameters=23_860, calls=report.calls)
    assert report.ok
