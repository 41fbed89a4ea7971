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


def _square_with_fwd(scale):
    @jax.custom_vjp
    def square(x):
        return x * x

    def fwd(x):
        return scale * x * x, x  # scale ≠ 1: the rule's forward computes another function

    def bwd(x, g):
        return (2 * x * g,)

    square.defvjp(fwd, bwd)
    return square


def test_the_rules_primal_output_is_compared_with_the_function_itself():
    x = jnp.linspace(-1.0, 1.0, 5, dtype=jnp.float64)
    assert check_function(_square_with_fwd(1.0), x).ok
    report = check_function(_square_with_fwd(1.01), x)
    assert not report.ok and "primal output 0 differs from fn(x)" in " ".join(report.problems), str(report)


def test_numpy_arrays_are_taken_as_the_jax_arrays_they_become():
    report = check_function(jnp.tanh, np.linspace(-1.0, 1.0, 6))
    assert report.ok and [leaf.path for leaf in report.leaves] == ["x['args[0]']"], str(report)


def test_each_output_of_a_custom_rule_is_checked_alone_too():
    @jax.custom_vjp
    def both(x):
        return jnp.sin(x), x * x

    def fwd(x):
        return both(x), x

    def bwd(x, g):
        g_sin, g_sq = g
        # wrong only when the sine's cotangent is zero: a rule tuned on "all outputs at once"
        scale = jnp.where(jnp.all(g_sin == 0), 1.5, 1.0)
        return (g_sin * jnp.cos(x) + g_sq * 2 * x * scale,)

    both.defvjp(fwd, bwd)
    report = check_function(both, jnp.linspace(-1.0, 1.0, 5, dtype=jnp.float64))
    assert [leaf.path for leaf in report.failures] == ["output 1 alone: x['args[0]']"], str(report)


def test_namedtuples_and_registered_classes_are_walked_as_jax_walks_them():
    from collections import namedtuple

    Pair = namedtuple("Pair", "w b")

    def affine(p, x):
        return jnp.tanh(p.w * x + p.b)

    x = jnp.linspace(-1.0, 1.0, 4, dtype=jnp.float64)
    w, b = jnp.array([0.5, -1.0, 2.0, 1.5], dtype=jnp.float64), jnp.array(0.1, dtype=jnp.float64)
    report = check_function(affine, Pair(w, b), x, wrt=0)
    assert report.ok and {leaf.path for leaf in report.leaves} == {"x['args[0].w']", "x['args[0].b']"}, str(report)

    @jax.tree_util.register_pytree_with_keys_class
    class Params:
        def __init__(self, w, b):
            self.w, self.b = w, b

        def tree_flatten_with_keys(self):
            return ((jax.tree_util.GetAttrKey("w"), self.w), (jax.tree_util.GetAttrKey("b"), self.b)), None

        @classmethod
        def tree_unflatten(cls, aux, children):
            return cls(*children)

    report = check_function(affine, Params(w, b), x, wrt=0)
    assert report.ok and len(report.leaves) == 2, str(report)


def test_a_typed_prng_key_argument_is_passed_through():
    def noisy(x, key):
        return x * jax.random.normal(key, x.shape)

    x = jnp.linspace(-1.0, 1.0, 4, dtype=jnp.float64)
    for key in (jax.random.key(0), jax.random.PRNGKey(0)):
        report = check_function(noisy, x, key)
        assert report.ok and "args[1]" in report.notes[-1], str(report)
