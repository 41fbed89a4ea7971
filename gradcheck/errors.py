"""One exception family.

Every message names the argument at fault, what was wrong with it (shape, dtype or value) and how to fix it, so that
a user can act without a debugger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gradcheck.report import GradientReport

__all__ = ["GradcheckError", "GradientMismatch", "InvalidArgument", "InvalidType", "MissingDependency", "UnknownLeaf"]


class GradcheckError(Exception):
    """Base class of every error gradcheck raises on purpose."""


class InvalidArgument(GradcheckError, ValueError):
    """An argument has a bad value or shape; the message says which argument and how to fix it."""


class InvalidType(GradcheckError, TypeError):
    """An argument has the wrong type or dtype; the message says which argument and what it should be."""


class UnknownLeaf(GradcheckError, KeyError):
    """A report was asked for a leaf it does not have; the message lists its leaves and the likeliest one."""

    def __str__(self) -> str:  # KeyError would print the message quoted, as a key's repr
        return str(self.args[0]) if self.args else ""


class MissingDependency(GradcheckError, ImportError):
    """An optional package a feature needs is not installed; the message names the ``pip install`` that adds it."""


class GradientMismatch(GradcheckError, AssertionError):
    """The analytic gradient disagrees with the numerical one.

    Raised by :func:`gradcheck.assert_gradient`; ``.report`` holds the full :class:`~gradcheck.GradientReport`.
    """

    def __init__(self, report: GradientReport) -> None:
        self.report = report
        super().__init__(str(report))
