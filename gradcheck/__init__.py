"""gradcheck: prove that hand-written gradients are right.

The reference network and its backprop live in :mod:`gradcheck.nn`; the finite-difference checker is
:func:`check_gradient` / :func:`assert_gradient`, with :func:`check_jacobian` and :func:`check_network`. Hypothesis
strategies are in :mod:`gradcheck.strategies`. Names are imported on first use, so that ``import gradcheck`` (and
the pytest plugin, which pytest loads in every run) costs next to nothing until a check is made.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
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

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gradcheck' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
