"""The checker's entry points: :func:`check_gradient` and :func:`assert_gradient`.

They validate their arguments and hand the work to the engine; the error model is described in
:mod:`gradcheck._engine.run`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from gradcheck._args import check_callable, finite, is_real, non_negative
from gradcheck._engine.run import Options
from gradcheck._engine.run import check as run_check
from gradcheck.errors import GradientMismatch, InvalidArgument, InvalidType
from gradcheck.report import GradientReport

__all__ = ["assert_gradient", "check_gradient", "judgement_options"]


def check_gradient(
    func: Callable[[Any], Any],
    grad: Callable[[Any], Any],
    x: Any,
    *,
    rtol: float | None = None,
    atol: float = 0.0,
    step: float | None = None,
    mode: str = "full",
    rng: np.random.Generator | int | None = None,
    probes: int = 2,
    method: str = "central",
    vectorized: bool = False,
    allow_inconclusive: bool = False,
    resolution: float = 0.05,
) -> GradientReport:
    """Compare ``grad(x)`` with central differences of ``func`` at ``x``, element by element.

    >>> import numpy as np
    >>> f = lambda p: float(np.sum(p["w"] ** 3))
    >>> g = lambda p: {"w": 3 * p["w"] ** 2}
    >>> check_gradient(f, g, {"w": np.array([1.0, -2.0])}).ok
    True

    func(x) returns a real scalar; grad(x) returns an object of x's structure, shapes and dtypes. x is an ndarray
    or a pytree of floating-point ndarrays, in any memory layout: nested dicts, lists, tuples, namedtuples,
    OrderedDicts, defaultdicts and deques, walked by optree, and any class of yours registered with
    ``optree.register_pytree_node(cls, flatten, unflatten, namespace="gradcheck")``. x is copied and never
    changed, and func and grad receive a new container of the copies on every call. The rule: an element passes iff
    ``|analytic − numeric| ≤ atol + rtol·max(|analytic|, |numeric|) + error``, with rtol defaulting to √eps of the
    leaf's own dtype; how numeric and error are computed is described once, in :mod:`gradcheck._engine`. ``step``
    fixes h for every element instead.

    **Three verdicts.** An element passes only on a stencil that shows f smooth there and with an error bound within
    ``resolution`` (default 5%) of abs(analytic) plus ``atol``; it fails where such a stencil (or a pair of stable
    one-sided derivatives, or a jump at x) shows the analytic value wrong; otherwise it is *inconclusive*: f is
    smooth but rounding swamps the derivative, no stencil down to h/8⁶ shows f smooth (a singularity or jump within
    reach), or f kept its value while the analytic one predicts a change. A check with inconclusive elements fails
    unless ``allow_inconclusive=True``; the report says why for each and what would resolve it. Evidence that f is
    not smooth never widens an element's tolerance: it sends the element to another stencil or leaves it
    inconclusive.

    Besides values it checks that neither func nor grad changes x, that func and grad give the same answer twice
    at the same x, and that func is continuous where it is differentiated (a jump is reported, never excused as a
    kink). The returned :class:`GradientReport` says which element is worst and by how much; it never passes a nan
    or inf.

    ``mode="fast"`` (with ``rng=np.random.default_rng(seed)``, or the int ``report.seed`` of an earlier run to replay
    its directions exactly) compares derivatives along ``probes`` random
    directions u with random signs (Rademacher, scaled by each element's scale) instead of every element: about
    20 + 4·probes calls of func. A direction that fails is narrowed to one element by halving the set of elements
    it moves (4·log₂ n more calls), and that element is then judged exactly as full mode judges it (kinks, jumps,
    domain boundaries); the direction is re-probed without it until what remains passes.

    ``method="complex"`` (full mode) adds the complex step, Im f(x + i·h·eᵢ)/h, which has no cancellation, on the
    elements the central differences passed. It is trusted only as far as a second, larger step shows func
    complex-analytic there (a term such as ``abs`` or a comparison adds nothing to the imaginary part, so the complex
    step alone would miss it), and its error is that bound plus the central differences' allowance for a kink too
    small to show: it tightens the check (seven calls per element) and may fail a bug too small for them, but never
    passes an element they failed or could not resolve. If func rejects complex input, or no element is shown
    analytic, the check keeps the central differences and says so in ``report.notes``.

    ``vectorized=True`` declares that func takes a leading batch axis on every leaf and returns one value per point
    (shape ``(K,)``): the perturbed points are then evaluated thousands at a time. grad still takes a single point.

    Args:
        func: the function, ``func(x) -> float`` (a real scalar: a Python float, a 0-d array or a numpy scalar).
        grad: its hand-written gradient, ``grad(x)`` with x's structure, shapes and dtypes.
        x: the point: an ndarray or a pytree of floating-point ndarrays (float64, float32 or float16).
        rtol: the relative tolerance; by default √eps of each leaf's dtype.
        atol: the absolute tolerance, the size below which a difference does not matter (default 0).
        step: a fixed finite-difference step for every element; by default each element gets its own,
            eps^(1/3)·abs(xᵢ) (1 at 0), refined where f is not smooth.
        mode: ``"full"`` (every element) or ``"fast"`` (random directions, then the elements behind a failing one).
        rng: fast mode's source of directions, a ``np.random.Generator`` or an int seed (``report.seed``).
        probes: fast mode's number of random directions per dtype, 1 to 1000.
        method: ``"central"`` (finite differences) or ``"complex"`` (adds the complex step, full mode only).
        vectorized: func takes a leading batch axis on every leaf and returns one value per point.
        allow_inconclusive: let elements the check cannot resolve pass the check (they are still reported).
        resolution: the coarsest relative error bound a pass may rest on, in (0, 1) (default 0.05).

    Returns:
        GradientReport: the verdict (``report.ok``) and, per leaf and element, the analytic and numeric values,
        the error estimate, the tolerance, kinks, jumps and inconclusive elements; ``str(report)`` prints the
        table and names the worst element.

    Raises:
        InvalidArgument: an option's value is out of range (a negative ``rtol``, a ``resolution`` outside
            (0, 1), ``probes`` outside 1–1000, a ``step`` lost to rounding), func(x) is not finite or not a scalar,
            or grad(x) does not match x's structure, shapes or dtypes.
        InvalidType: func or grad is not callable, a leaf is not a float array (integer, complex, masked entries),
            fast mode has no ``rng``, or ``allow_inconclusive`` is not a bool.

    A wrong gradient is not an exception: the report says so (see :func:`assert_gradient`).
    """
    usage = "pass check_gradient(func, grad, x) with func(x) -> scalar and grad(x) -> structure of x"
    check_callable("func", func, usage)
    check_callable("grad", grad, usage)
    options = _options(
        rtol=rtol,
        atol=atol,
        step=step,
        mode=mode,
        rng=rng,
        probes=probes,
        method=method,
        vectorized=vectorized,
        allow_inconclusive=allow_inconclusive,
        resolution=resolution,
    )
    return run_check(func, grad, x, options)


def assert_gradient(func: Callable[[Any], Any], grad: Callable[[Any], Any], x: Any, **options: Any) -> GradientReport:
    """:func:`check_gradient`, raising :class:`GradientMismatch` (an AssertionError) with the report when it fails.

    >>> import numpy as np
    >>> assert_gradient(np.sum, lambda x: np.ones_like(x), np.zeros(3)).ok
    True

    Args:
        func: the function, as for :func:`check_gradient`.
        grad: its hand-written gradient, as for :func:`check_gradient`.
        x: the point, as for :func:`check_gradient`.
        **options: any keyword option of :func:`check_gradient` (``rtol``, ``atol``, ``mode``, …).

    Returns:
        GradientReport: the report of a passing check.

    Raises:
        GradientMismatch: the check failed; ``.report`` holds the full report and the message prints it.
        InvalidArgument: a bad option or point, as for :func:`check_gradient`.
        InvalidType: a bad type, as for :func:`check_gradient`.
    """
    __tracebackhide__ = True
    report = check_gradient(func, grad, x, **options)
    if not report.ok:
        raise GradientMismatch(report)
    return report


def _options(
    *,
    rtol: Any,
    atol: Any,
    step: Any,
    mode: Any,
    rng: Any,
    probes: Any,
    method: Any,
    vectorized: Any,
    allow_inconclusive: Any,
    resolution: Any,
) -> Options:
    """check_gradient's options, validated: every combination either works or is refused here, by name."""
    judged = judgement_options(rtol=rtol, atol=atol, allow_inconclusive=allow_inconclusive, resolution=resolution)
    if step is not None and not (is_real(step) and finite(step) and float(step) > 0):
        raise InvalidArgument(f"step={step!r}; it must be a positive finite number (or None to derive it per element)")
    if not isinstance(mode, str) or mode not in ("full", "fast"):
        raise InvalidArgument(f"mode={mode!r}; use 'full' (every element) or 'fast' (random directions)")
    seed = None
    if mode == "fast":
        if isinstance(rng, np.random.Generator):
            seed = int(rng.integers(2**63))  # drawn first, so that the report can name what reproduces the run
        elif isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
            seed = int(rng)
        else:
            raise InvalidType(
                f"mode='fast' draws random directions and needs rng=np.random.default_rng(seed) (or the seed a "
                f"report printed, to replay it), got rng={rng!r}"
            )
    if not isinstance(method, str) or method not in ("central", "complex"):
        raise InvalidArgument(f"method={method!r}; use 'central' (finite differences) or 'complex' (complex step)")
    if not isinstance(vectorized, (bool, np.bool_)):
        raise InvalidType(f"vectorized={vectorized!r}; pass True (func takes a batch of points) or False")
    if mode == "fast" and method == "complex":
        raise InvalidArgument(
            "method='complex' differentiates every element and works with mode='full' only; drop "
            "method= in fast mode, or use mode='full'"
        )
    if isinstance(probes, bool) or not isinstance(probes, (int, np.integer)) or not 1 <= probes <= 1000:
        raise InvalidArgument(f"probes={probes!r}; it must be an integer from 1 to 1000 (2 is the default)")
    return replace(
        judged,
        step=None if step is None else float(step),
        probes=int(probes) if mode == "fast" else 0,
        rng=None if seed is None else np.random.default_rng(seed),
        seed=seed,
        complex_step=method == "complex",
        vectorized=bool(vectorized),
    )


def judgement_options(*, rtol: Any, atol: Any, allow_inconclusive: Any, resolution: Any) -> Options:
    """The options every checker shares (the tolerance rule and what a pass must rest on), validated by name."""
    atol = non_negative("atol", atol)
    rtol = None if rtol is None else non_negative("rtol", rtol)
    if not isinstance(allow_inconclusive, (bool, np.bool_)):
        raise InvalidType(
            f"allow_inconclusive={allow_inconclusive!r}; pass True (elements the check cannot resolve do not fail "
            "it) or False (the default: they do)"
        )
    if not (is_real(resolution) and finite(resolution) and 0 < float(resolution) < 1):
        raise InvalidArgument(
            f"resolution={resolution!r}; it is the coarsest relative error bound a pass may rest on, a number "
            "between 0 and 1 (0.05, the default, means an element passes only if the check resolves it to 5%)"
        )
    return Options(rtol=rtol, atol=atol, allow_inconclusive=bool(allow_inconclusive), resolution=float(resolution))
