"""check_network's cost per parameter across depths, widths, batch sizes and dtypes, and beside
torch.autograd.gradcheck on a two-hidden-layer network.

Every hidden layer's perturbed losses come from verified interpolants of one scalar function per (unit, example),
so the cost per parameter should not grow with depth; ``extra_info["us_per_parameter"]`` records it. Run with
``tox -e bench``; ``summarize.py`` tabulates it.
"""

from __future__ import annotations

import numpy as np
import pytest
import rivals

from gradcheck import Network, check_network

SHAPES = [
    [784, 30, 10],
    [784, 100, 10],
    [784, 100, 100, 10],
    [784, 100, 100, 100, 10],
    [784, 100, 100, 100, 100, 10],
    [784, 300, 300, 10],
    [784, 1000, 10],
]


def _problem(sizes, batch, dtype):
    rng = np.random.default_rng(0)
    net = Network(sizes, rng=rng, dtype=dtype)
    X, Y = rng.uniform(0, 1, (batch, sizes[0])), np.eye(sizes[-1])[rng.integers(0, sizes[-1], batch)]
    return net, X, Y


def _record(benchmark, net, report):
    parameters = sum(leaf.analytic.size for leaf in report.leaves)
    stats = getattr(benchmark, "stats", None)
    median = stats.stats.median if stats is not None and getattr(stats, "stats", None) is not None else None
    benchmark.extra_info.update(
        sizes=str(net.sizes),
        dtype=str(net.dtype),
        parameters=parameters,
        us_per_parameter=None if median is None else round(median / parameters * 1e6, 3),
    )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes", SHAPES, ids=lambda s: "-".join(map(str, s)))
def test_check_network_by_depth_and_width(benchmark, sizes, dtype):
    net, X, Y = _problem(sizes, 10, dtype)
    benchmark.group = "check_network per parameter, batch 10"
    # float32 cannot resolve every small derivative of a wide layer to 5%: those are inconclusive, and counted
    options = {"allow_inconclusive": dtype == "float32"}
    report = benchmark.pedantic(check_network, args=(net, X, Y), kwargs=options, rounds=3, iterations=1)
    _record(benchmark, net, report)
    benchmark.extra_info["inconclusive"] = report.inconclusive
    assert report.ok and not report.failures, str(report)
    assert dtype == "float32" or not report.inconclusive, str(report)


@pytest.mark.parametrize("batch", [1, 10, 100, 1000])
def test_check_network_by_batch(benchmark, batch):
    net, X, Y = _problem([784, 100, 100, 10], batch, "float64")
    benchmark.group = "check_network per parameter, [784, 100, 100, 10] by batch"
    report = benchmark.pedantic(check_network, args=(net, X, Y), rounds=3, iterations=1)
    _record(benchmark, net, report)
    benchmark.extra_info["batch"] = batch
    assert report.ok, str(report)


def test_torch_gradcheck_on_two_hidden_layers(benchmark):
    """torch.autograd.gradcheck (default mode) on [784, 100, 100, 10], batch 10, the same loss in float64;
    check_network timed just before and just after, so that the ratio compares the two at the same speed."""
    pytest.importorskip("torch", reason="torch is not installed (tox -e bench installs torch==2.13.0)")
    benchmark.group = "check [784,100,100,10] batch 10"
    assert rivals.torch_gradcheck_beside_check_network(benchmark, *_problem([784, 100, 100, 10], 10, "float64"))
