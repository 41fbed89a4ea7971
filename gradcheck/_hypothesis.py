"""Hypothesis's entry point into gradcheck: ``st.from_type(Network)`` works once Hypothesis is imported.

The hook only imports :mod:`gradcheck.strategies`, which registers its strategies when its import completes. When
that module is what imported Hypothesis, it is already in ``sys.modules`` (half-initialised), the import returns at
once, and the registration happens at the end of the module's own import: no circular import either way.
"""

from __future__ import annotations

import importlib

__all__ = ["setup"]


def setup() -> None:
    """Called by Hypothesis when it loads its plugins."""
    importlib.import_module("gradcheck.strategies")
