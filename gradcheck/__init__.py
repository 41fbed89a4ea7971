"""gradcheck: prove that hand-written gradients are right.

The checker is :func:`check_gradient` / :func:`assert_gradient`, with :func:`check_jacobian` for vector-valued
functions and :func:`check_network` for the reference :class:`Network` (in :mod:`gradcheck.nn`, with its
activations, costs and per-example specification). Hypothesis strategies are in :mod:`gradcheck.strategies`; the
pytest plugin is :mod:`gradcheck.plugin`. Names are imported on first use, so that ``import gradcheck`` (and the
pytest plugin, which pytest loads in every run) costs next to nothing until a check is made.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers and IDEs
    from gradcheck.check import assert_gradient, check_gradient
    from gradcheck.errors import GradcheckError, GradientMismatch, InvalidArgument, InvalidType, MissingDependency
    from gradcheck.jacobian import check_jacobian
    from gradcheck.network_check import check_network
    from gradcheck.nn.network import Backprop, Network
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
    "MissingDependency",
    "Network",
    "__version__",
    "assert_gradient",
    "check_gradient",
    "check_jacobian",
    "check_network",
]

_HOME = {
    "Backprop": "gradcheck.nn.network",
    "GradcheckError": "gradcheck.errors",
    "GradientMismatch": "gradcheck.errors",
    "GradientReport": "gradcheck.report",
    "InvalidArgument": "gradcheck.errors",
    "InvalidType": "gradcheck.errors",
    "LeafReport": "gradcheck.report",
    "MissingDependency": "gradcheck.errors",
    "Network": "gradcheck.nn.network",
    "assert_gradient": "gradcheck.check",
    "check_gradient": "gradcheck.check",
    "check_jacobian": "gradcheck.jacobian",
    "check_network": "gradcheck.network_check",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        value = getattr(importlib.import_module(_HOME[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gradcheck' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
