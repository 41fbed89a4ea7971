"""gradcheck: prove that hand-written gradients are right.

The reference network and its backprop live in :mod:`gradcheck.nn`; the finite-difference checker is
:func:`check_gradient` / :func:`assert_gradient`. Hypothesis strategies are in :mod:`gradcheck.strategies`, imported
on demand so that importing gradcheck stays cheap.
"""

from gradcheck.errors import GradcheckError, GradientMismatch, InvalidArgument, InvalidType
from gradcheck.nn import Backprop, Network, backprop

__version__ = "0.1.0"

__all__ = [
    "Backprop",
    "GradcheckError",
    "GradientMismatch",
    "InvalidArgument",
    "InvalidType",
    "Network",
    "__version__",
    "backprop",
]
