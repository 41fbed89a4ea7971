"""The mutant zoo: the gradient property catches every classic backprop bug, and Hypothesis shrinks a failure to
a network small enough to debug by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import Phase, find, given, settings

from gradcheck import check_gradient
from gradcheck.strategies import architectures, problems

from . import mutants
from .helpers import rounding_scales

SEARCH = settings(max_examples=300, database=None, derandomize=True, deadline=None, phases=[Phase.generate])
SHRINK = settings(
    max_examples=300, database=None, derandomize=True, deadline=None, phases=[Phase.generate, Phase.shrink]
)


def problems_for(bug):
    opts = dict(mutants.MUTANTS[bug])
    arch = architectures(
        min_layers=opts.pop("min_layers", 1), max_layers=3, min_width=opts.pop("min_width", 1), max_width=4
    )
    if opts.pop("square", False):
        arch = arch.map(lambda sizes: [sizes[0]] * len(sizes))
    # kink_margin: at an exact ReLU kink backprop's σ′(0) convention can differ from the derivative of the whole
    # (differentiable) network, which the checker rightly reports; a mutant must be caught for its own bug.
    return problems(architectures=arch, max_batch=4, kink_margin=0.05, **opts)


def caught(bug, problem):
    """True when the gradient check fails an element of the mutant or reports a problem (a crash counts: the suite
    would fail too); an element the check cannot resolve either way is not a catch."""
    net, X, Y = problem
    loss, _ = net.as_functions(X, Y)
    try:
        report = check_gradient(loss, mutants.gradient_function(net, X, Y, bug), net.params)
        return bool(report.failures or report.problems)
    except (ValueError, TypeError, FloatingPointError, IndexError):
        return True


def test_a_transposed_bp2_on_square_layers_fails_on_values_not_shapes():
    problem = find(
        problems_for("BP2 with the weights transposed"),
        lambda p: caught("BP2 with the weights transposed", p),
        settings=SEARCH,
    )
    net, X, Y = problem
    assert len(set(net.sizes)) == 1
    loss, _ = net.as_functions(X, Y)
    report = check_gradient(loss, mutants.gradient_function(net, X, Y, "BP2 with the weights transposed"), net.params)
    assert not report.ok and report.failures


@given(problems(architectures=architectures(max_layers=3, max_width=4), kink_margin=0.05))
def test_the_unmutated_zoo_backprop_is_correct(problem):
    net, X, Y = problem
    grad_w, grad_b = mutants.backprop(net, X, Y)
    bp = net.backprop(X, Y)
    eps = np.finfo(net.dtype).eps
    for ours, ref, scale in zip(grad_w + grad_b, bp.grad_w + bp.grad_b, rounding_scales(net, bp, Y)):
        assert np.all(np.abs(ours.astype(np.float64) - ref) <= 64 * net.num_layers * eps * scale + 1e-300)
    assert not caught(None, problem)


@pytest.mark.parametrize("bug", list(mutants.MUTANTS))
def test_the_gradient_property_catches_the_mutant(bug):
    net, X, Y = find(problems_for(bug), lambda p: caught(bug, p), settings=SEARCH)
    assert caught(bug, (net, X, Y))


@pytest.mark.parametrize(
    "bug",
    [
        "hidden delta without sigma'",
        "bias gradient summed, cost averaged",
        "softmax/log-likelihood delta with the sign flipped",
        "L2 in the loss but not in the gradient",
    ],
)
def test_hypothesis_shrinks_the_failure_to_a_small_network(bug):
    net, X, _Y = find(problems_for(bug), lambda p: caught(bug, p), settings=SHRINK)
    assert net.num_layers <= 2 and max(net.sizes) <= 3, repr(net)
    assert len(X) <= 2
