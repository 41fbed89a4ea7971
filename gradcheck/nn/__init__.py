"""The reference network: a fully connected network whose backprop is written as BP1–BP4 and exposes every z, a and
delta (:mod:`gradcheck.nn.network`), its activations and costs, and the per-example loop that is its specification
(:mod:`gradcheck.nn.loop`)."""

from __future__ import annotations

from gradcheck.nn.network import QUIET, Backprop, Network

__all__ = ["QUIET", "Backprop", "Network"]
