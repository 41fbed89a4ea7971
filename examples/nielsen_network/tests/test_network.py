"""The whole battery of gradcheck's network checks on the book-style network: ten lines of glue."""

import pytest
from network import CrossEntropyCost, Network, QuadraticCost

from gradcheck.suite import NetworkAdapter, network_checks

COSTS = {"cross_entropy": CrossEntropyCost, "quadratic": QuadraticCost}
adapter = NetworkAdapter(
    build=lambda net: Network(net.sizes, net.weights, [b.reshape(-1, 1) for b in net.biases], COSTS[net.cost]),
    backprop=lambda mine, x, y: mine.backprop(x, y)[:2],  # per example, column vectors: the defaults
    deltas=lambda mine, x, y: mine.backprop(x, y)[2],
)


@pytest.mark.parametrize("check", network_checks(adapter), ids=str)
def test_network(check):
    check()
