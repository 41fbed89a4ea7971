"""gradcheck: prove that hand-written gradients are right.

The reference network and its backprop live in :mod:`gradcheck.nn`; the finite-difference checker is
:func:`check_gradient` / :func:`assert_gradient`. Hypothesis strategies are in :mod:`gradcheck.strategies`, imported
on demand so that importing gradcheck stays cheap.
"""

from gradcheck.check import assert_gradient, check_gradient
from gradcheck.errors import GradcheckError, GradientMismatch, InvalidArgument, InvalidType
from gradcheck.jacobian import check_jacobian
from gradcheck.network_check import check_network
from gradcheck.nn import Backprop, Network, backprop
from gradcheck.report import GradientReport, LeafReport

__version__ = "0.1.0"

__all__ = [
    "Backprop",
    "GradcheckError",
    "GradientMismatch",
    "GradientReport",
    "InvalidArgument",
    "InvalidType",
    "LeafReport",
    "Network",
    "__version__",
    "assert_gradient",
    "backprop",
    "check_gradient",
    "check_jacobian",
    "check_network",
]
