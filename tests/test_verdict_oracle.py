"""The verdict oracle: exact gradients pass, one wrong element fails and is named, hostile functions are reported.

Cases come from :mod:`tests.verdicts`: every memory layout, float32 and float64 (mixed in one tree), magnitudes from
1e-280 to 1e280 in x and in f, kinks and jumps placed at x, near it and far from it, randomness and container
rebinding; each property runs in full and in fast mode. Arithmetic in float32 inside a float64 function is drawn
by its own property, which asserts what the checker guarantees there: no wrong pass.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from gradcheck import check_gradient

from .helpers import assert_correct_verdict
from .verdicts import JUMPING, KINKED, cases


def modes(seed):
    return [{}, {"mode": "fast", "rng": np.random.default_rng(seed)}]


def kinked_float32(case):
    """A float32 leaf of a kinked map: its kinks can lie within every step that rounding allows."""
    return any(leaf.phi in KINKED and leaf.x.dtype == np.float32 for leaf in case.leaves)


def failed_elements(report):
    return {(leaf.path, tuple(int(i) for i in idx)) for leaf in report.leaves for idx in np.argwhere(leaf.failed)}


def clean_elements(case, report):
    """Elements a planted error can go to: f smooth around them by construction, judged without a kink."""
    out = []
    for leaf, lr in zip(case.leaves, report.leaves):
        smooth = (leaf.phi not in KINKED | JUMPING) | (np.abs(leaf.x.astype(np.float64) - leaf.centre) > leaf.scale)
        smooth = np.broadcast_to(smooth, lr.shape) & ~lr.kink & ~lr.inconclusive & np.isfinite(lr.tolerance)
        out += [(lr.path, tuple(int(i) for i in idx)) for idx in np.argwhere(smooth)]
    return out


def planted(case, where, amount):
    """case.grad with one element moved by ``amount`` (in float64, then in the leaf's dtype)."""
    path, index = where
    k = case.paths.index(path)

    def grad(tree):
        exact = case.exact(case.unbuild(tree))
        bad = np.array(exact[k], dtype=np.float64)
        bad[index] += amount
        exact[k] = bad.astype(case.leaves[k].x.dtype)
        return case.build(exact)

    return grad


def plant(case, data, extra=lambda where: 0.0):
    """A clean element and an error of four times its tolerance (plus ``extra(element)``), and the check of the
    gradient carrying it; None when no element is clean."""
    exact = check_gradient(case.func, case.grad, case.tree)
    candidates = clean_elements(case, exact)
    if not candidates:
        return None
    where = data.draw(st.sampled_from(candidates))
    size = 4 * float(exact.leaf(where[0]).tolerance[where[1]]) + extra(where)
    amount = size * data.draw(st.sampled_from([-1.0, 1.0]))
    return where, amount, check_gradient(case.func, planted(case, where, amount), case.tree)


@given(cases(), st.integers(0, 2**16))
def test_the_exact_gradient_passes_in_both_modes(case, seed):
    for options in modes(seed):
        report = check_gradient(case.func, case.grad, case.tree, **options)
        assert_correct_verdict(report, f"{case!r} {options}", kinks_within_reach=kinked_float32(case))


@given(cases(), st.data())
def test_one_element_wrong_by_more_than_its_tolerance_fails_and_is_named(case, data):
    found = plant(case, data)
    if found is not None:
        where, amount, report = found
        assert failed_elements(report) == {where}, f"{case!r} planted {amount:.3g} at {where}\n{report}"


@given(cases(), st.data())
def test_fast_mode_finds_and_names_a_wrong_element(case, data):
    exact = check_gradient(case.func, case.grad, case.tree, mode="fast", rng=np.random.default_rng(0))
    full = check_gradient(case.func, case.grad, case.tree)
    candidates = clean_elements(case, full)
    if not candidates:
        return
    where = data.draw(st.sampled_from(candidates))
    k = case.paths.index(where[0])
    # large next to the derivatives along a whole direction, and beyond what full mode resolves at that element
    # and beyond fast mode's own resolution: its directions' tolerance over the element's step (the documented
    # eps^(1/3) times the element's own magnitude, or 1 for an element at 0)
    x = case.leaves[k].x.astype(np.float64)
    step = np.finfo(case.leaves[k].x.dtype).eps ** (1 / 3) * (abs(x[where[1]]) or 1.0)
    size = (
        0.5 * case.magnitude / case.leaves[k].scale
        + 4 * float(full.leaf(where[0]).tolerance[where[1]])
        + 4 * max(p.tolerance for p in exact.probes) / step
    )
    amount = size * data.draw(st.sampled_from([-1.0, 1.0]))
    report = check_gradient(
        case.func,
        planted(case, where, amount),
        case.tree,
        mode="fast",
        rng=np.random.default_rng(data.draw(st.integers(0, 2**16))),
    )
    assert_correct_verdict(exact, repr(case), kinks_within_reach=kinked_float32(case))
    assert failed_elements(report) == {where}, f"{case!r} planted {amount:.3g} at {where}\n{report}"


@given(cases(jumps=True, kinks=False), st.integers(0, 2**16))
def test_a_jump_at_x_fails_as_a_jump_and_nothing_else_does(case, seed):
    on_jump = {
        (path, tuple(int(i) for i in idx))
        for path, leaf in zip(case.paths, case.leaves)
        for idx in np.argwhere(np.broadcast_to(leaf.on_jump, leaf.x.shape))
    }
    report = check_gradient(case.func, case.grad, case.tree)
    assert failed_elements(report) == on_jump, f"{case!r}\n{report}"
    jumps = {(leaf.path, tuple(int(i) for i in idx)) for leaf in report.leaves for idx in np.argwhere(leaf.jumps)}
    assert jumps == on_jump
    fast = check_gradient(case.func, case.grad, case.tree, mode="fast", rng=np.random.default_rng(seed))
    assert fast.ok or on_jump or fast.inconclusive, f"{case!r}\n{fast}"
    assert failed_elements(fast) <= on_jump
    assert not on_jump or not fast.ok


@given(cases(randomness=True), st.integers(0, 2**16))
def test_a_func_that_is_not_repeatable_is_reported(case, seed):
    for options in modes(seed):
        report = check_gradient(case.func, case.grad, case.tree, **options)
        assert not report.ok and any("is not repeatable" in p for p in report.problems), str(report)


@given(cases(rebinds=True).filter(lambda case: case.rebinds), st.integers(0, 2**16))
def test_a_func_that_rebinds_an_entry_of_its_container_is_reported(case, seed):
    for options in modes(seed):
        report = check_gradient(case.func, case.grad, case.tree, **options)
        assert not report.ok and any("replaced" in p for p in report.problems), str(report)
        assert all(leaf.ok for leaf in report.leaves), str(report)  # the values themselves are right


@given(cases(float32_inside=True, kinks=False), st.data())
def test_float32_arithmetic_inside_never_passes_a_wrong_element_silently(case, data):
    # Quantisation at the step's own scale can still fail a correct gradient here (a documented limit); a wrong
    # one must never pass unless the report's tolerance there says it cannot be resolved.
    found = plant(case, data, extra=lambda where: 0.5 * case.magnitude / case.leaves[case.paths.index(where[0])].scale)
    if found is not None:
        where, amount, report = found
        # It fails, or its own report says the element's tolerance is as large as the error: never silently wrong.
        caught = where in failed_elements(report) or report.leaf(where[0]).tolerance[where[1]] >= 0.5 * abs(amount)
        assert caught, f"{case!r} planted {amount:.3g} at {where}\n{report}"
