"""check_jacobian: vector-valued functions, with a Jacobian, a VJP or a JVP."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck import GradcheckError, check_jacobian

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
    func = (lambda x: np.tanh(A32 @ x))
    funcs = {"jacobian": lambda x: (1 - np.tanh(A32 @ x) ** 2)[:, None] * A32,
             "vjp": lambda x, v: A32.T @ (v * (1 - np.tanh(A32 @ x) ** 2)),
             "jvp": lambda x, u: (1 - np.tanh(A32 @ x) ** 2) * (A32 @ u)}
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
    with pytest.raises(GradcheckError, match="floating-point ndarray"):
        check_jacobian(f, [1.0, 2.0, 3.0, 4.0], jacobian=jac)
