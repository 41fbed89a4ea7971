"""gradcheck.jax on a zoo of custom_vjp and custom_jvp rules: every correct rule passes in float32 (jax's default)
and float64, every planted bug fails, and the report names the argument and the element."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)  # float64 available; float32 stays the default dtype of jnp arrays

import jax.numpy as jnp  # noqa: E402

from gradcheck import GradientMismatch, InvalidArgument  # noqa: E402
from gradcheck.jax import assert_function, check_function  # noqa: E402

from .zoo import BUGS, CORRECT, jax_entry  # noqa: E402

DTYPES = [jnp.float64, jnp.float32]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("name", CORRECT)
def test_every_correct_rule_passes(name, dtype):
    fn, args = jax_entry(name, None, dtype)
    report = check_function(fn, *args)
    assert report.ok, str(report)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("bug", sorted(BUGS))
def test_every_planted_bug_fails(bug, dtype):
    fn, args = jax_entry(BUGS[bug], bug, dtype)
    report = check_function(fn, *args)
    if dtype == jnp.float32 and bug == "one entry scaled by 1 + 1e-3":
        assert report.leaves[0].resolution > 1e-3  # below float32's resolution, as the report says
        return
    assert not report.ok, str(report)
    if report.failures:
        assert "worst at (" in str(report) and "x['args[" in str(report)
    else:
        assert report.problems


def test_integer_arguments_are_passed_through_and_listed():
    report = check_function(lambda x, i: x[i] * 2, jnp.linspace(0.0, 1.0, 5), jnp.array([0, 3, 3]))
    assert report.ok and [leaf.path for leaf in report.leaves] == ["x['args[0]']"]
    assert any("args[1] (int" in note for note in report.notes)


def test_pytrees_and_wrt():
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(2)}
    x = jnp.arange(3.0)
    report = check_function(lambda p, x: jnp.tanh(p["w"] @ x + p["b"]), params, x, wrt=[0])
    assert report.ok and [leaf.path for leaf in report.leaves] == ["x[\"args[0]['b']\"]", "x[\"args[0]['w']\"]"]
    with pytest.raises(InvalidArgument, match="wrt="):
        check_function(jnp.sin, x, wrt="nope")


def test_second_derivatives_with_order_2():
    @jax.custom_vjp
    def cube(x):
        return x**3

    cube.defvjp(lambda x: (x**3, x), lambda x, g: (g * 3 * jax.lax.stop_gradient(x) ** 2,))
    x = jnp.linspace(-1.0, 1.0, 4, dtype=jnp.float64)
    assert check_function(cube, x).ok
    report = check_function(cube, x, order=2)
    assert not report.ok and any(leaf.path.startswith("d²") and not leaf.ok for leaf in report.leaves)


def test_a_float32_function_against_a_float64_reference():
    x = jnp.linspace(-3.0, 3.0, 7, dtype=jnp.float32)
    report = check_function(jax.nn.gelu, x, reference="float64")
    assert report.ok and report.leaves[0].dtype == np.float32


def test_assert_function_and_the_fixture(gradcheck):
    fn, args = jax_entry("softplus", "cotangent ignored", jnp.float32)
    with pytest.raises(GradientMismatch):
        assert_function(fn, *args)
    fn, args = jax_entry("softplus", None, jnp.float32)
    assert gradcheck.jax(fn, *args).ok
