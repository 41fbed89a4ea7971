"""Check jax gradient rules: ``jax.custom_vjp`` and ``jax.custom_jvp`` functions, and any differentiable jax
function of arrays and pytrees, with the checker's error model instead of a fixed step and tolerance.

>>> import jax.numpy as jnp
>>> from gradcheck.jax import check_function
>>> check_function(jnp.tanh, jnp.linspace(-1, 1, 5)).ok
True

What is checked (see :func:`check_function`): the reverse rule (``jax.vjp``), uᵀJ for a random cotangent u on
every floating output, against finite differences, element by element; the forward rule (``jax.jvp``), where the
function has one, against the reverse rule by the adjoint identity ⟨u, J v⟩ = ⟨uᵀJ, v⟩; and with ``order=2``,
second derivatives. Without ``jax_enable_x64`` everything runs in float32 and is judged at float32's precision.
jax is imported when this module is: install it with ``pip install jax``, or ``pip install '.[jax]'`` from
gradcheck's clone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck._frameworks import check, raise_on_failure
from gradcheck.errors import MissingDependency
from gradcheck.report import GradientReport

try:
    import jax
    import jax.numpy as jnp
except ImportError as error:  # pragma: no cover - exercised only without jax
    raise MissingDependency(
        "gradcheck.jax needs jax, which is not installed: pip install jax (or, in gradcheck's clone, "
        "pip install '.[jax]')"
    ) from error

__all__ = ["assert_function", "check_function"]


class _Jax:
    name = "jax"

    def is_array(self, value: Any) -> bool:
        return isinstance(value, jax.Array)

    def is_floating(self, value: Any) -> bool:
        return bool(jnp.issubdtype(value.dtype, jnp.floating))

    def dtype_name(self, value: Any) -> str:
        return str(value.dtype)

    def to_numpy(self, value: Any) -> np.ndarray:
        if value.dtype == jnp.bfloat16:
            value = value.astype(jnp.float32)
        return np.asarray(value)

    def from_numpy(self, array: np.ndarray, like: Any) -> Any:
        return jnp.asarray(array, dtype=like.dtype)

    def float64(self, value: Any) -> Any | None:
        if not jax.config.jax_enable_x64:
            return None  # float64 is not available: the reference runs at the input's own precision
        return value.astype(jnp.float64)

    def vmap(self, fn: Callable[..., Any]) -> Callable[..., Any] | None:
        return jax.vmap(fn)  # type: ignore[no-any-return]

    def eps(self, value: Any) -> float:
        return float(jnp.finfo(value.dtype).eps)

    def exact_in_numpy(self, value: Any) -> bool:
        return bool(value.dtype != jnp.bfloat16)

    def requested(self, value: Any) -> bool:
        return False  # jax arrays carry no such flag: wrt= chooses

    def unsupported(self, value: Any) -> str:
        return ""

    def tree_flatten(self, tree: Any) -> tuple[list[Any], Callable[[list[Any]], Any], list[str]]:
        """jax's own pytrees (jax.tree_util): lists, tuples, dicts, namedtuples, and registered classes (flax and
        equinox modules, say); None stays in place as a leaf."""
        pairs, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda v: v is None)
        keys = [jax.tree_util.keystr(path) for path, _ in pairs]
        return [leaf for _, leaf in pairs], lambda leaves: jax.tree_util.tree_unflatten(treedef, list(leaves)), keys

    def in_layout(self, array: np.ndarray, like: Any) -> Any:
        return self.from_numpy(array, like)  # jax arrays have no user-visible strides

    def vjp(self, fn: Callable[..., Any], primals: list[Any], cotangents: Any) -> tuple[Any, list[Any]]:
        out, pullback = jax.vjp(fn, *primals)
        leaves, rebuild, _ = self.tree_flatten(out)
        given = iter(cotangents)
        cots = [
            self._cotangent(next(given), o)
            if self.is_array(o) and self.is_floating(o)
            else np.zeros(np.shape(o), dtype=jax.dtypes.float0)
            for o in leaves
        ]
        return out, list(pullback(rebuild(cots)))

    @staticmethod
    def _cotangent(u: Any, o: Any) -> Any:
        """u as o's cotangent; None (no cotangent on that output) as zeros, which is how jax takes it."""
        return jnp.zeros(jnp.shape(o), dtype=o.dtype) if u is None else jnp.asarray(np.asarray(u), dtype=o.dtype)

    def jvp(self, fn: Callable[..., Any], primals: list[Any], tangents: list[Any]) -> Any | None:
        try:
            _, out_tangent = jax.jvp(fn, tuple(primals), tuple(tangents))
        except TypeError:
            return None  # a custom_vjp function has no forward rule
        return out_tangent


_BACKEND = _Jax()


def check_function(
    fn: Callable[..., Any],
    *args: Any,
    wrt: Any = None,
    order: int = 1,
    reference: Any = None,
    rtol: float | None = None,
    atol: float = 0.0,
    rng: np.random.Generator | None = None,
    step: float | None = None,
    **kwargs: Any,
) -> GradientReport:
    """Check the gradient rules of ``fn(*args, **kwargs)``.

    >>> import jax, jax.numpy as jnp
    >>> @jax.custom_vjp
    ... def square(x):
    ...     return x * x
    >>> square.defvjp(lambda x: (x * x, x), lambda x, g: (2 * x,))   # wrong: ignores the cotangent g
    >>> check_function(square, jnp.linspace(-1.0, 1.0, 4)).ok
    False

    Arguments are jax arrays or pytrees of them as ``jax.tree_util`` walks them (lists, tuples, dicts,
    namedtuples and registered classes such as flax or equinox modules); every floating array is
    differentiated unless ``wrt`` names the arguments to differentiate (positions and keyword names). Integer
    arrays and other values are passed through and listed in ``report.notes``.

    - The reverse rule (``jax.vjp``, which runs a ``custom_vjp`` rule): uᵀJ for a random cotangent u (from
      ``rng``, a fixed seed by default) on every floating output, element by element against finite differences.
    - The forward rule (``jax.jvp``, which runs a ``custom_jvp`` rule), where defined, against the reverse one by
      the adjoint identity.
    - ``order=2``: second derivatives through the reverse rule differentiated again.
    - ``reference``: the finite differences come from ``reference`` (fn's signature) or, with
      ``reference="float64"``, from fn on float64 copies (when ``jax_enable_x64`` is on; otherwise at the inputs'
      precision); the analytic side stays the function's own gradient.

    ``rtol``, ``atol`` and ``step`` are the checker's (by default √eps of each input's dtype, 0, and a step per
    element). A floating numpy array is taken as the jax array it becomes (jax functions accept both); Python
    numbers stay constants. A jitted function is compiled on its first call; every later call reuses the
    compilation.

    Args:
        fn: the function whose rules are checked: a ``custom_vjp`` or ``custom_jvp`` function, or any
            differentiable jax callable.
        *args: fn's positional arguments.
        wrt: the arguments to differentiate, by position (0, 1, …) or keyword name; by default every floating
            array.
        order: 1 (gradients) or 2 (also second derivatives, through the rule differentiated again).
        reference: a function with fn's signature, or ``"float64"`` (fn on float64 copies), from which the
            finite differences are taken for a low-precision kernel.
        rtol: the relative tolerance; by default √eps of each input's dtype.
        atol: the absolute tolerance; by default √eps times the scale of uᵀJ.
        rng: the source of the random cotangents and tangents (a fixed seed by default).
        step: a fixed finite-difference step, as for :func:`gradcheck.check_gradient`.
        **kwargs: fn's keyword arguments.

    Returns:
        GradientReport: one leaf per differentiated argument (and ``output k alone``, ``d²`` leaves where
        checked), the rules' problems and what was checked in ``report.notes``.

    Raises:
        InvalidArgument: a bad option, or no floating argument to differentiate.
        InvalidType: fn is not callable.
    """
    args, kwargs = _as_jax(args), _as_jax(kwargs)
    return check(
        _BACKEND, fn, args, kwargs, wrt=wrt, order=order, reference=reference, rtol=rtol, atol=atol, rng=rng, step=step
    )


def _as_jax(tree: Any) -> Any:
    """Floating numpy arrays in nested lists, tuples and dicts as jax arrays of the same dtype (float64 needs
    ``jax_enable_x64``, as jax itself says)."""
    if isinstance(tree, np.ndarray) and np.issubdtype(tree.dtype, np.floating):
        return jnp.asarray(tree)
    if isinstance(tree, dict):
        return {k: _as_jax(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)) and not hasattr(tree, "_fields"):
        return type(tree)(_as_jax(v) for v in tree)
    return tree


def assert_function(fn: Callable[..., Any], *args: Any, **options: Any) -> GradientReport:
    """:func:`check_function`, raising :class:`~gradcheck.GradientMismatch` with the report when it fails.

    Args:
        fn: the function, as for :func:`check_function`.
        *args: fn's positional arguments.
        **options: the options of :func:`check_function` and fn's keyword arguments.

    Returns:
        GradientReport: the report of a passing check.

    Raises:
        GradientMismatch: the check failed; ``.report`` holds the full report.
    """
    __tracebackhide__ = True
    return raise_on_failure(check_function(fn, *args, **options))
