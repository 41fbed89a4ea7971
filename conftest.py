"""Project-wide test set-up: floating-point errors raise inside every test."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _raise_on_floating_point_errors() -> Iterator[None]:
    # gradcheck's own numerics switch off overflow/underflow where they give the right limit; anything else a
    # test provokes (0/0, inf - inf, an unexpected overflow) is a bug and must fail the test.
    with np.errstate(all="raise"):
        yield
