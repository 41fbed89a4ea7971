"""mode="fast": random signed directions, ≤ 80 calls for a correct gradient, and a wrong entry found by halving."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck import check_gradient

from .helpers import COMBINATIONS, combo_id, problem
from .test_check import CORRECT

N = 10_000
C = np.random.default_rng(5).uniform(0.5, 1.5, N)
X0 = np.random.default_rng(1).uniform(-1, 1, N)


def wave(x):
    return float(np.sum(C * np.sin(x)))


def wave_grad(x):
    return C * np.cos(x)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, func, grad, point", CORRECT, ids=[c[0] for c in CORRECT])
def test_correct_gradients_pass_in_at_most_80_calls(name, func, grad, point, dtype):
    report = check_gradient(func, grad, point(dtype), mode="fast", rng=np.random.default_rng(0))
    assert report.ok, str(report)
    assert report.calls <= 80


@pytest.mark.parametrize("combo", COMBINATIONS, ids=combo_id)
def test_reference_network_gradients_pass_in_fast_mode(combo):
    net, X, Y = problem(*combo, sizes=(4, 6, 3), l2=0.1, seed=3)
    report = check_gradient(*net.as_functions(X, Y), net.params, mode="fast", rng=np.random.default_rng(1))
    assert report.ok, str(report)


def test_one_wrong_entry_of_1e_4_among_10_000_is_found_for_every_seed():
    found = 0
    for seed in range(100):
        j = int(np.random.default_rng(1000 + seed).integers(N))

        def bad(x, j=j):
            out = wave_grad(x)
            out[j] += 1e-4
            return out

        report = check_gradient(wave, bad, X0, mode="fast", rng=np.random.default_rng(seed))
        found += (not report.ok) and report.leaves[0].worst == (j,) and report.leaves[0].failed.sum() == 1
    assert found >= 99


def test_a_correct_gradient_of_10_000_entries_takes_at_most_20_calls():
    report = check_gradient(wave, wave_grad, X0, mode="fast", rng=np.random.default_rng(7))
    assert report.ok and report.calls <= 80


def test_relative_error_of_1e_6_everywhere_fails_in_fast_mode():
    report = check_gradient(wave, lambda x: wave_grad(x) * (1 + 1e-6), X0, mode="fast", rng=np.random.default_rng(2))
    assert not report.ok and not any(p.ok for p in report.probes)


def test_the_report_names_the_seed_and_the_directions():
    report = check_gradient(wave, wave_grad, X0, mode="fast", rng=1234)
    text = str(report)
    assert report.seed == 1234 and "seed 1234" in text and "direction 1:" in text


def test_fast_mode_needs_a_generator():
    with pytest.raises(TypeError, match=r"needs rng=np\.random\.default_rng"):
        check_gradient(wave, wave_grad, X0, mode="fast")
    with pytest.raises(ValueError, match="mode='quick'"):
        check_gradient(wave, wave_grad, X0, mode="quick")
    with pytest.raises(ValueError, match="probes=0"):
        check_gradient(wave, wave_grad, X0, mode="fast", rng=np.random.default_rng(0), probes=0)


def test_the_printed_seed_replays_the_directions_exactly_even_after_the_rng_was_used():
    rng = np.random.default_rng(7)
    rng.standard_normal(3)  # the caller's generator has been used before
    x = np.linspace(-1, 1, 40)
    first = check_gradient(lambda v: float(np.sum(np.sin(v))), np.cos, x, mode="fast", rng=rng)
    again = check_gradient(lambda v: float(np.sum(np.sin(v))), np.cos, x, mode="fast", rng=first.seed)
    assert isinstance(first.seed, int) and f"rng={first.seed}" in str(first)
    assert [p.analytic for p in again.probes] == [p.analytic for p in first.probes]
    assert [p.numeric for p in again.probes] == [p.numeric for p in first.probes]
