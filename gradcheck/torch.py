"""Check torch gradient rules: ``torch.autograd.Function`` subclasses, custom ops, and any differentiable torch
callable, with the checker's error model instead of fixed tolerances.

>>> import torch
>>> from gradcheck.torch import check_function
>>> x = torch.linspace(-1, 1, 5, dtype=torch.float32)
>>> check_function(torch.tanh, x).ok
True

What is checked (see :func:`check_function`): the reverse rule, uᵀJ for a random cotangent u on every floating
output, against finite differences, element by element; the forward rule, where the function defines one, against
the reverse rule by the adjoint identity ⟨u, J v⟩ = ⟨uᵀJ, v⟩; that the rule leaves its inputs alone and gives the
same answer twice; and with ``order=2``, double backward. torch is imported when this module is: install it
with ``pip install torch``, or ``pip install '.[torch]'`` from gradcheck's clone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck._frameworks import check, raise_on_failure
from gradcheck.errors import MissingDependency
from gradcheck.report import GradientReport

try:
    import torch
except ImportError as error:  # pragma: no cover - exercised only without torch
    raise MissingDependency(
        "gradcheck.torch needs torch, which is not installed: pip install torch (or, in gradcheck's clone, "
        "pip install '.[torch]')"
    ) from error

__all__ = ["CotangentChanged", "assert_function", "check_function"]


class CotangentChanged(RuntimeError):
    """A backward rule wrote into the cotangent it was handed."""


class _Torch:
    name = "torch"

    def is_array(self, value: Any) -> bool:
        return isinstance(value, torch.Tensor)

    def is_floating(self, value: Any) -> bool:
        return bool(value.is_floating_point())

    def dtype_name(self, value: Any) -> str:
        return str(value.dtype).replace("torch.", "")

    def to_numpy(self, value: Any) -> np.ndarray:
        t = value.detach()
        if t.dtype == torch.bfloat16:
            t = t.float()
        return np.asarray(t.cpu().numpy())

    def from_numpy(self, array: np.ndarray, like: Any) -> Any:
        # np.array, not np.ascontiguousarray, which makes a 0-d array 1-d
        return torch.as_tensor(np.array(array, order="C", copy=True)).to(dtype=like.dtype, device=like.device)

    def float64(self, value: Any) -> Any | None:
        if value.device.type == "mps":  # no float64 there
            return None
        return value.detach().to(torch.float64)

    def vmap(self, fn: Callable[..., Any]) -> Callable[..., Any] | None:
        return torch.func.vmap(fn)  # type: ignore[no-any-return]

    def eps(self, value: Any) -> float:
        return float(torch.finfo(value.dtype).eps)

    def exact_in_numpy(self, value: Any) -> bool:
        return bool(value.dtype != torch.bfloat16)

    def requested(self, value: Any) -> bool:
        return bool(value.requires_grad)

    def unsupported(self, value: Any) -> str:
        if value.device.type == "meta":
            return "a meta tensor, which has a shape but no values to differentiate: pass it on a real device"
        if value.layout != torch.strided:
            return f"a {str(value.layout).replace('torch.', '')} tensor; pass it as .to_dense() to check the rule"
        return ""

    def tree_flatten(self, tree: Any) -> tuple[list[Any], Callable[[list[Any]], Any], list[str]]:
        """torch's own pytrees (torch.utils._pytree): lists, tuples, dicts, namedtuples, and classes registered
        there."""
        from torch.utils import _pytree

        pairs, spec = _pytree.tree_flatten_with_path(tree)
        keys = [_pytree.keystr(path) for path, _ in pairs]
        return [leaf for _, leaf in pairs], lambda leaves: _pytree.tree_unflatten(list(leaves), spec), keys

    def in_layout(self, array: np.ndarray, like: Any) -> Any:
        """``array`` with the strides of the user's tensor ``like``: transposed, channels-last or otherwise
        strided. An expanded tensor (a stride of 0) cannot hold other values; at its own values it is handed as
        it is."""
        t = self.from_numpy(array, like)
        if like.is_contiguous() or like.layout != torch.strided:
            return t
        if any(st == 0 and n > 1 for st, n in zip(like.stride(), like.shape)):
            same = np.array_equal(self.to_numpy(like), array)
            return like.detach() if same else t
        out = torch.empty_strided(tuple(like.shape), like.stride(), dtype=like.dtype, device=like.device)
        return out.copy_(t)

    def vjp(self, fn: Callable[..., Any], primals: list[Any], cotangents: Any) -> tuple[Any, list[Any]]:
        # a graph of the backward only where it is differentiated again (double backward: the primals are then
        # part of an outer graph); at order 1 it would turn a backward's in-place change into another error
        nested = any(p.requires_grad for p in primals)
        ps = [p if p.requires_grad else p.detach().requires_grad_(True) for p in primals]
        out = fn(*ps)
        outs = [o for o in self.tree_flatten(out)[0] if isinstance(o, torch.Tensor) and o.is_floating_point()]
        cots = [None if u is None else _cotangent(np.asarray(u), o) for u, o in zip(cotangents, outs)]
        # outputs that do not depend on the inputs, or get no cotangent (the backward sees None or zeros there)
        linked = [(o, c) for o, c in zip(outs, cots) if o.requires_grad and c is not None]
        if not linked:
            return out, [torch.zeros_like(p) for p in ps]
        kept = [c.detach().clone() for _, c in linked]
        grads = torch.autograd.grad(
            [o for o, _ in linked], ps, grad_outputs=[c for _, c in linked], create_graph=nested, allow_unused=True
        )
        if any(not torch.equal(c, k) for (_, c), k in zip(linked, kept)):
            raise CotangentChanged(
                "the backward changed its grad_output in place; autograd may hand the same tensor to other rules, "
                "so write the result to a new tensor (g = g * w, not g.mul_(w))"
            )
        return out, [torch.zeros_like(p) if g is None else g for p, g in zip(ps, grads)]

    def jvp(self, fn: Callable[..., Any], primals: list[Any], tangents: list[Any]) -> Any | None:
        """The forward rule's output tangents, or None where fn has no forward rule. Forward AD is run directly
        rather than through torch.func.jvp, which turns "no rule" (an output without a tangent: a custom op with
        only a backward registered, an autograd.Function without jvp) into a zero tangent."""
        from torch.autograd import forward_ad

        try:
            with forward_ad.dual_level():
                duals = [forward_ad.make_dual(p.detach(), t) for p, t in zip(primals, tangents)]
                out = fn(*duals)
                leaves, rebuild, _ = self.tree_flatten(out)
                floating = [isinstance(o, torch.Tensor) and o.is_floating_point() for o in leaves]
                found = [forward_ad.unpack_dual(o).tangent if f else None for o, f in zip(leaves, floating)]
        except (RuntimeError, NotImplementedError, TypeError):
            return None  # no forward rule (an op without forward AD raises)
        if any(f and t is None for f, t in zip(floating, found)):
            return None  # an output the forward rule gave no tangent: no rule (at least for that part of fn)
        return rebuild([t if f else o for o, f, t in zip(leaves, floating, found)])


def _cotangent(u: np.ndarray, out: Any) -> Any:
    """u as out's cotangent, in memory that is not contiguous wherever that can be (two or more dimensions): the
    strides of out where it has its own layout, else column-major. A backward that assumes a contiguous
    grad_output (``.view`` on it) then fails here rather than in a model that transposes its output."""
    t = torch.as_tensor(np.array(u, order="C", copy=True)).to(dtype=out.dtype, device=out.device)
    if t.dim() < 2 or any(n == 0 for n in t.shape):
        return t
    if out.is_contiguous() or any(st == 0 for st in out.stride()):
        strides, step = [0] * t.dim(), 1
        for d in range(t.dim()):  # column-major
            strides[d], step = step, step * t.shape[d]
    else:
        strides = list(out.stride())
    return torch.empty_strided(tuple(t.shape), tuple(strides), dtype=t.dtype, device=t.device).copy_(t)


_BACKEND = _Torch()


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

    >>> import torch
    >>> class Square(torch.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x
    ...     @staticmethod
    ...     def backward(ctx, g):
    ...         (x,) = ctx.saved_tensors
    ...         return 2 * x          # wrong: ignores the cotangent g
    >>> check_function(Square.apply, torch.linspace(-1, 1, 4, dtype=torch.float64)).ok
    False

    Arguments are tensors (CPU, CUDA or MPS) or pytrees of them as ``torch.utils._pytree`` walks them (lists,
    tuples, dicts, namedtuples and the classes registered there). Every floating tensor is
    differentiated, unless ``wrt`` names the arguments to differentiate (positions and keyword names), or, as in
    ``torch.autograd.gradcheck``, some tensors have ``requires_grad=True``: then only they are, and the rule runs
    with the others not requiring grad (so its ``ctx.needs_input_grad`` branches are exercised). Integer and
    boolean tensors and other values are passed through and listed in ``report.notes``. Leaves are named by their
    place in the call: ``x['args[0]']``, ``x["kwargs['bias']"]``.

    - The reverse rule: uᵀJ for a random cotangent u (from ``rng``, a fixed seed by default) on every floating
      output, element by element against finite differences of Σ⟨u, fn(x)⟩, with the checker's error model.
    - The forward rule (forward-mode AD), where defined, against the reverse one by the adjoint identity.
    - The rule twice gives the same result, and leaves its inputs unchanged.
    - ``order=2``: double backward, the derivative of ⟨w, uᵀJ(x)⟩, against finite differences of it.
    - ``reference``: for low-precision kernels, the finite differences come from ``reference`` (a function with
      fn's signature) or, with ``reference="float64"``, from fn re-run on float64 copies of the inputs; the
      analytic side stays the kernel's own gradient, judged at its dtype's precision.

    ``rtol``, ``atol`` and ``step`` are the checker's (by default √eps of each input's dtype, 0, and a step per
    element): a fixed ``step`` resolves a rule whose forward rounds more coarsely than its dtype. The remaining
    keyword arguments go to fn.

    Args:
        fn: the function whose rules are checked: an autograd.Function's ``apply``, a custom op, or any
            differentiable torch callable.
        *args: fn's positional arguments.
        wrt: the arguments to differentiate, by position (0, 1, …) or keyword name; by default every floating
            tensor, or those with ``requires_grad=True`` when some have it.
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
        InvalidType: fn is not callable, or an argument cannot be checked (a meta or sparse tensor).
    """
    return check(
        _BACKEND, fn, args, kwargs, wrt=wrt, order=order, reference=reference, rtol=rtol, atol=atol, rng=rng, step=step
    )


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
