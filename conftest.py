"""Project-wide test set-up: floating-point errors raise inside every test, and Hypothesis profiles.

Profiles (choose with HYPOTHESIS_PROFILE=name or pytest's --hypothesis-profile=name):
- ``dev`` (default outside CI): few examples, for a quick edit-test loop;
- ``ci`` (default when the CI variable is set, and in tox): Hypothesis's own CI profile — derandomised, no
  deadline, no example database — so that a run is reproducible;
- ``thorough``: 2,000 examples per property, for a soak before a release.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.errors import InvalidArgument

pytest_plugins = ["pytester"]  # tests/test_plugin.py runs scratch projects

settings.register_profile("dev", max_examples=15, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
try:
    settings.get_profile("ci")
except InvalidArgument:  # older Hypothesis has no built-in ci profile
    settings.register_profile(
        "ci", derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
    )
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def _raise_on_floating_point_errors() -> Iterator[None]:
    # Division by zero, invalid operations (0/0, inf - inf) and overflow are bugs and fail the test. Underflow is
    # not: a gradient of 1e-320 in the first layer of a deep sigmoid network is the vanishing-gradient effect this
    # project studies, and IEEE gradual underflow is the right answer for it.
    with np.errstate(all="raise", under="ignore"):
        yield
