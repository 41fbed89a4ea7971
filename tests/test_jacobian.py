"""check_jacobian: vector-valued functions, with a Jacobian, a VJP or a JVP."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradcheck import GradcheckError, check_gradient, check_jacobian

A = np.random.default_rng(0).standard_normal((3, 4))
X = np.random.default_rng(1).standard_normal(4)


def f(x):
    return np.tanh(A @ x)


def jac(x):
    return (1 - np.tanh(A @ x) ** 2)[:, None] * A


def vjp(x, v):
    return A.T @ (v * (1 - np.tanh(A @ x) ** 2))


def jvp(x, u):
    return (1 - np.tanh(A @ x) ** 2) * (A @ u)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["jacobian", "vjp", "jvp"])
def test_correct_jacobians_pass(kind, dtype):
    A32 = A.astype(dtype)

    def func(x):
        return np.tanh(A32 @ x)

    funcs = {
        "jacobian": lambda x: (1 - np.tanh(A32 @ x) ** 2)[:, None] * A32,
        "vjp": lambda x, v: A32.T @ (v * (1 - np.tanh(A32 @ x) ** 2)),
        "jvp": lambda x, u: (1 - np.tanh(A32 @ x) ** 2) * (A32 @ u),
    }
    report = check_jacobian(func, X.astype(dtype), **{kind: funcs[kind]})
    assert report.ok, str(report)
    assert report.leaves[0].shape == (3, 4)


def test_a_wrong_entry_is_named_by_output_and_input_index():
    def bad(x):
        J = jac(x)
        J[2, 1] *= 1.001
        return J

    report = check_jacobian(f, X, jacobian=bad)
    assert not report.ok and report.leaves[0].worst == (2, 1) and report.leaves[0].failed.sum() == 1
    assert "entry (t, s) is d f(x)[t] / d x[s]" in str(report)


def test_a_vjp_with_a_missing_transpose_fails():
    square = np.random.default_rng(2).standard_normal((4, 4))
    report = check_jacobian(lambda x: square @ x, X, vjp=lambda x, v: square @ v)
    assert not report.ok


def test_arguments_are_checked():
    with pytest.raises(GradcheckError, match="exactly one of"):
        check_jacobian(f, X)
    with pytest.raises(GradcheckError, match="exactly one of"):
        check_jacobian(f, X, jacobian=jac, vjp=vjp)
    with pytest.raises(GradcheckError, match=r"must be output shape \+ input shape = \(3, 4\)"):
        check_jacobian(f, X, jacobian=lambda x: jac(x).T)
    with pytest.raises(GradcheckError, match="numpy array of a floating dtype"):
        check_jacobian(f, [1.0, 2.0, 3.0, 4.0], jacobian=jac)


def test_an_array_passed_as_the_jacobian_is_a_clear_error():
    with pytest.raises(GradcheckError, match="jacobian must be callable, got ndarray"):
        check_jacobian(f, X, jacobian=jac(X))


@pytest.mark.parametrize(
    "bad, fragment",
    [
        (lambda x: [x[:2], x], "ragged"),
        (lambda x: x[: 1 + int(x[0] > X[0])], "must not depend on x's values"),
        (lambda x: np.zeros(0), "empty array"),
    ],
)
def test_ragged_empty_or_shape_changing_outputs_are_clear_errors(bad, fragment):
    with pytest.raises(GradcheckError, match=fragment):
        check_jacobian(bad, X, vjp=lambda x, v: np.zeros_like(x))


@pytest.mark.parametrize("size", [1e-200, 1e200])
def test_huge_and_tiny_outputs_keep_their_verdicts(size):
    report = check_jacobian(lambda x: size * f(x), X, jacobian=lambda x: size * jac(x))
    assert report.ok, str(report)
    wrong = check_jacobian(lambda x: size * f(x), X, jacobian=lambda x: size * jac(x) * (1 + 1e-4))
    assert not wrong.ok and wrong.leaves[0].failed.all()


def test_a_jump_in_one_output_leaves_the_other_rows_checked():
    def jumpy(x):
        y = f(x)
        return np.concatenate([y, [float(x[0] > X[0])]])  # a step exactly at x[0]

    def right(x):
        return np.vstack([jac(x), np.zeros((1, 4))])

    def wrong(x):
        J = right(x)
        J[1, 2] *= 1 + 1e-5
        return J

    report = check_jacobian(jumpy, X, jacobian=right)
    leaf = report.leaves[0]
    assert leaf.jumps[3, 0] and leaf.failed.sum() == 1
    assert check_jacobian(jumpy, X, jacobian=wrong).leaves[0].failed[1, 2]


def test_a_pytree_input_with_a_vjp():
    B = np.random.default_rng(3).standard_normal((3, 2))

    def g(p):
        return np.tanh(A @ p["x"] + B @ p["y"])

    def g_vjp(p, v):
        s = v * (1 - g(p) ** 2)
        return {"x": A.T @ s, "y": B.T @ s}

    point = {"x": X, "y": np.array([0.3, -0.2])}
    report = check_jacobian(g, point, vjp=g_vjp)
    assert report.ok and [leaf.shape for leaf in report.leaves] == [(3, 4), (3, 2)]
    bad = check_jacobian(g, point, vjp=lambda p, v: {"x": g_vjp(p, v)["x"], "y": -g_vjp(p, v)["y"]})
    assert [leaf.path for leaf in bad.failures] == ["x['y']"]


def test_func_is_called_once_per_point_whatever_the_number_of_outputs():
    wide = np.random.default_rng(4).standard_normal((40, 4))
    report = check_jacobian(
        lambda x: np.tanh(wide @ x), X, jacobian=lambda x: (1 - np.tanh(wide @ x) ** 2)[:, None] * wide
    )
    narrow = check_jacobian(
        lambda x: np.tanh(wide[:1] @ x), X, jacobian=lambda x: (1 - np.tanh(wide[:1] @ x) ** 2)[:, None] * wide[:1]
    )
    # 40 rows share their points: the calls grow with the stencils some rows need (saturated rows' longer steps,
    # their noise rays), never with the number of rows
    assert report.ok and report.calls < 10 * narrow.calls < 40 * narrow.calls


@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([np.float64, np.float32]),
    st.sampled_from([np.float32, np.float16]),
    st.sampled_from([0.0, 1e-2]),
)
def test_a_lower_precision_output_is_judged_at_its_own_rounding_as_each_row_is(seed, x_dtype, out_dtype, bug):
    # func computes in float32 (or float16) and returns that dtype, whatever x's: check_jacobian must agree with
    # check_gradient of each output, which sees the output's rounding
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((3, 4)).astype(out_dtype)
    x = rng.uniform(-1, 1, 4).astype(x_dtype)

    def func(x):
        return np.tanh(A @ x.astype(out_dtype))

    def jacobian(x):
        return (1 - np.tanh(A @ x.astype(out_dtype)).astype(np.float64) ** 2)[:, None] * A * (1 + bug)

    report = check_jacobian(func, x, jacobian=jacobian, allow_inconclusive=True)
    leaf = report.leaves[0]
    for t in range(3):
        row_grad = lambda x, t=t: jacobian(x)[t].astype(x.dtype)  # noqa: E731
        row = check_gradient(lambda x, t=t: func(x)[t], row_grad, x, allow_inconclusive=True)
        assert (leaf.failed[t] == row.leaves[0].failed).all(), f"{report}\n{row}"
    if not bug:
        assert not leaf.failed.any(), report
