"""The pytest plugin, exercised on scratch projects with pytester."""

from __future__ import annotations

import subprocess
import sys

import optree  # noqa: F401  (imported before pytester's in-process runs, which re-import what they import first,
import pytest  # and optree's compiled core cannot be loaded twice in one process)

LAYER = """
import numpy as np
import pytest

W0 = np.random.default_rng(0).standard_normal((3, 4))
X = np.random.default_rng(1).standard_normal((5, 4))

def loss(p):
    return float(np.sum(np.tanh(X @ p["W"].T) ** 2)) / 5

def grad(p):
    z = X @ p["W"].T
    dz = 2 * np.tanh(z) * (1 - np.tanh(z) ** 2) / 5
    return {"W": dz.T @ X}

def wrong_grad(p):
    g = grad(p)
    g["W"][1, 2] *= 1.01
    return g
"""


def make(pytester, body, ini=""):
    pytester.makepyfile(layer=LAYER)
    pytester.makepyfile(test_it="from layer import *\n" + body)
    if ini:
        pytester.makeini("[pytest]\n" + ini)


def test_a_correct_gradient_passes_and_is_counted(pytester):
    make(pytester, "def test_ok(gradcheck):\n    assert gradcheck(loss, grad, {'W': W0.copy()}).ok\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.re_match_lines([r"gradcheck: 1 gradient checks, 0 failed; tightest margin .*; slowest .*"])


def test_a_wrong_gradient_fails_naming_the_leaf_and_index(pytester):
    make(pytester, "def test_bad(gradcheck):\n    gradcheck(loss, wrong_grad, {'W': W0.copy()})\n")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*GradientMismatch*",
            "*d loss / d x?'W'?: 1 of 12 entries differ; worst at (1, 2)*",
            "*gradcheck: 1 gradient checks, 1 failed*",
        ]
    )
    assert "gradcheck/plugin.py" not in result.stdout.str()  # the traceback ends in the user's test


def test_the_marker_beats_the_command_line_which_beats_the_ini_file(pytester):
    body = """
import pytest

def test_ini(gradcheck):
    assert gradcheck(loss, grad, {"W": W0.copy()}).rtol == RTOL_CLI

@pytest.mark.gradcheck(rtol=0.5)
def test_marker(gradcheck):
    assert gradcheck(loss, grad, {"W": W0.copy()}).rtol == 0.5

def test_explicit(gradcheck):
    assert gradcheck(loss, grad, {"W": W0.copy()}, rtol=0.25).rtol == 0.25
"""
    make(pytester, body.replace("RTOL_CLI", "0.125"), ini="gradcheck_rtol = 0.01\ngradcheck_mode = fast")
    pytester.runpytest("--gradcheck-rtol", "0.125").assert_outcomes(passed=3)
    make(pytester, body.replace("RTOL_CLI", "0.01"), ini="gradcheck_rtol = 0.01")
    pytester.runpytest().assert_outcomes(passed=3)


def test_fast_mode_from_the_command_line(pytester):
    make(
        pytester,
        "def test_fast(gradcheck):\n    r = gradcheck(loss, grad, {'W': W0.copy()})\n"
        "    assert r.mode == 'fast' and r.probes\n",
    )
    pytester.runpytest("--gradcheck-mode", "fast").assert_outcomes(passed=1)


def test_the_fixture_works_inside_given_without_health_check_errors(pytester):
    body = """
from hypothesis import given, settings
from hypothesis.extra import numpy as hnp
from hypothesis import strategies as st

@settings(max_examples=10, deadline=None)
@given(hnp.arrays(np.float64, (3, 4), elements=st.floats(-1, 1)))
def test_prop(gradcheck, W):
    # Hypothesis draws entries of 1e-300 and derivatives far below what the loss's rounding resolves: atol says
    # below which size a difference does not matter (without it those elements are inconclusive, and fail)
    gradcheck(loss, grad, {"W": W}, atol=1e-9)
"""
    make(pytester, body)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.re_match_lines([r"gradcheck: 1\d gradient checks, 0 failed.*"])


def test_jacobian_and_network_helpers(pytester):
    body = """
from gradcheck import Network

def test_jac(gradcheck):
    gradcheck.jacobian(np.sin, np.array([0.1, 0.2]), jacobian=lambda x: np.diag(np.cos(x)))

def test_net(gradcheck):
    net = Network([4, 3, 2], rng=np.random.default_rng(0))
    gradcheck.network(net, X, np.full((5, 2), 0.5))
"""
    make(pytester, body)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_it.py::test_jac: 1 checks, 0 failed*", "*test_it.py::test_net: 1 checks*"])


def test_xdist_gives_the_same_totals_as_a_serial_run(pytester):
    pytest.importorskip("xdist")
    body = "".join(
        f"def test_{i}(gradcheck):\n    gradcheck(loss, {'wrong_grad' if i == 3 else 'grad'}, {{'W': W0.copy()}})\n"
        for i in range(6)
    )
    make(pytester, body)
    serial = pytester.runpytest_subprocess()
    parallel = pytester.runpytest_subprocess("-n", "2")
    for result in (serial, parallel):
        result.assert_outcomes(passed=5, failed=1)
        result.stdout.fnmatch_lines(["*gradcheck: 6 gradient checks, 1 failed*"])


def test_the_plugin_can_be_switched_off(pytester):
    make(pytester, "def test_ok(gradcheck):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:gradcheck")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'gradcheck' not found*"])


def test_loading_the_plugin_imports_neither_numpy_nor_hypothesis():
    code = "import sys, gradcheck.plugin; print('numpy' in sys.modules, 'hypothesis' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    "ini, fragment",
    [
        ("gradcheck_rtol = banana", "ini option gradcheck_rtol = 'banana'"),
        ("gradcheck_atol = -1", "ini option gradcheck_atol = '-1'"),
        ("gradcheck_mode = quick", "ini option gradcheck_mode = 'quick'"),
    ],
)
def test_a_bad_ini_value_stops_pytest_at_start_up_with_a_usage_error(pytester, ini, fragment):
    make(pytester, "def test_ok(gradcheck):\n    assert gradcheck(loss, grad, {'W': W0.copy()}).ok\n", ini=ini)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{fragment}*"])


def test_a_positional_marker_argument_is_an_error_not_ignored(pytester):
    body = """
import pytest

@pytest.mark.gradcheck(0.05)
def test_marked(gradcheck):
    gradcheck(loss, grad, {"W": W0.copy()})
"""
    make(pytester, body)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the marker takes keywords only, e.g. @pytest.mark.gradcheck(rtol=0.05)*"])


def test_expected_failures_are_not_counted_as_failed_checks(pytester):
    body = """
import pytest
from gradcheck import GradientMismatch

def test_expects_a_mismatch(gradcheck):
    with pytest.raises(GradientMismatch):
        gradcheck(loss, wrong_grad, {"W": W0.copy()})
"""
    make(pytester, body)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*gradcheck: 1 gradient checks, 0 failed (1 more failed as their tests expected)*"])


def test_the_marker_applies_to_checks_made_in_a_fixture_the_test_requests(pytester):
    body = """
import pytest

@pytest.fixture
def checked(gradcheck):
    return gradcheck(loss, grad, {"W": W0.copy()})

@pytest.mark.gradcheck(rtol=0.25)
def test_uses_fixture(checked):
    assert checked.rtol == 0.25
"""
    make(pytester, body)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_it.py::test_uses_fixture: 1 checks, 0 failed*"])


def test_a_strict_xfail_check_is_counted_as_failing_as_expected(pytester):
    body = """
import pytest
from gradcheck import GradientMismatch

@pytest.mark.xfail(strict=True, raises=GradientMismatch, reason="a known bug")
def test_known_bug(gradcheck):
    gradcheck(loss, wrong_grad, {"W": W0.copy()})
"""
    make(pytester, body)
    result = pytester.runpytest()
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["*gradcheck: 1 gradient checks, 0 failed (1 more failed as their tests expected)*"])


def test_xdist_prints_the_summary_with_hypothesis_tests_too(pytester):
    pytest.importorskip("xdist")
    body = """
from hypothesis import given, settings
from hypothesis.extra import numpy as hnp
from hypothesis import strategies as st

@settings(max_examples=5, deadline=None)
@given(hnp.arrays(np.float64, (3, 4), elements=st.floats(-1, 1)))
def test_prop(gradcheck, W):
    gradcheck(loss, grad, {"W": W}, atol=1e-9)

def test_plain(gradcheck):
    gradcheck(loss, grad, {"W": W0.copy()})
"""
    make(pytester, body)
    result = pytester.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=2)
    result.stdout.re_match_lines([r"gradcheck: \d+ gradient checks, 0 failed.*"])
