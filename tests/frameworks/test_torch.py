"""gradcheck.torch on a zoo of autograd.Functions: every correct rule passes in float32 and float64, every planted
bug fails, and the report names the argument and the element."""

from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gradcheck import GradcheckError, GradientMismatch, InvalidArgument  # noqa: E402
from gradcheck.torch import assert_function, check_function  # noqa: E402

from .zoo import BUGS, CORRECT, torch_entry  # noqa: E402

DTYPES = [torch.float64, torch.float32]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", CORRECT)
def test_every_correct_rule_passes(name, dtype):
    fn, args = torch_entry(name, None, dtype)
    report = check_function(fn, *args)
    assert report.ok, str(report)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("bug", sorted(BUGS))
def test_every_planted_bug_fails(bug, dtype):
    fn, args = torch_entry(BUGS[bug], bug, dtype)
    report = check_function(fn, *args)
    if dtype == torch.float32 and bug == "one entry scaled by 1 + 1e-3":
        # below float32's resolution, as the report says
        assert report.leaves[0].resolution > 1e-3
        return
    assert not report.ok, str(report)
    if report.failures:
        assert "worst at (" in str(report) and "x['args[" in str(report)
    else:  # the rule broke an invariant instead: not repeatable, or jvp against vjp
        assert report.problems


def test_integer_arguments_are_passed_through_and_listed():
    def gather(x, index):
        return x[index] * 2

    report = check_function(gather, torch.linspace(0, 1, 5, dtype=torch.float64), torch.tensor([0, 3, 3]))
    assert report.ok and [leaf.path for leaf in report.leaves] == ["x['args[0]']"]
    assert any("args[1] (int64, not floating point)" in note for note in report.notes)


def test_wrt_restricts_the_differentiated_arguments():
    a, b = torch.ones(3, dtype=torch.float64), torch.full((3,), 2.0, dtype=torch.float64)
    report = check_function(lambda a, b, scale=1.0: (a * b * scale).sin(), a, b, wrt=[1], scale=0.5)
    assert [leaf.path for leaf in report.leaves] == ["x['args[1]']"] and report.ok
    with pytest.raises(InvalidArgument, match="wrt=5"):
        check_function(torch.sin, a, wrt=5)


def test_a_function_that_changes_an_argument_in_place_is_reported():
    def leaky(x, buffer):
        buffer.add_(1.0)  # state kept in an argument: every call sees another buffer
        return x * buffer

    report = check_function(leaky, torch.ones(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), wrt=[0])
    assert not report.ok and any("changed its argument args[1] in place" in p for p in report.problems)


def test_second_derivatives_are_checked_with_order_2():
    class BadSecond(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x.detach() ** 2  # detached: the first derivative is right, its derivative is lost

    x = torch.linspace(-1, 1, 4, dtype=torch.float64)
    assert check_function(BadSecond.apply, x).ok
    report = check_function(BadSecond.apply, x, order=2)
    assert not report.ok and any(leaf.path.startswith("d²") and not leaf.ok for leaf in report.leaves)
    assert check_function(lambda x: x**3, x, order=2).ok


def test_a_float32_kernel_against_a_float64_reference():
    x = torch.linspace(-3, 3, 7, dtype=torch.float32)
    report = check_function(torch.nn.functional.gelu, x, reference="float64")
    assert report.ok and report.leaves[0].dtype == np.float32
    bad = check_function(lambda x: _scaled_gelu(x), x, reference=lambda x: torch.nn.functional.gelu(x))
    assert not bad.ok


def _scaled_gelu(x):
    return torch.nn.functional.gelu(x) * 1.01  # the kernel is off by 1%: its gradient too


def test_assert_function_raises_with_the_report():
    fn, args = torch_entry("cubic", "missing factor", torch.float64)
    with pytest.raises(GradientMismatch) as info:
        assert_function(fn, *args)
    assert not info.value.report.ok


def test_the_fixture_checks_torch_rules(gradcheck):
    fn, args = torch_entry("softmax", None, torch.float32)
    assert gradcheck.torch(fn, *args).ok
    fn, args = torch_entry("softmax", "softmax Jacobian without the outer term", torch.float32)
    with pytest.raises(GradientMismatch):
        gradcheck.torch(fn, *args)


@pytest.mark.parametrize(
    "options, error, words",
    [
        ({"order": 3}, InvalidArgument, "order=3; use 1"),
        ({"reference": "float32"}, InvalidArgument, "reference='float32'"),
        ({"rng": 5}, TypeError, "rng=5; pass np.random.default_rng"),
        ({"rtol": -1.0}, InvalidArgument, "rtol=-1.0"),
    ],
)
def test_bad_options_are_refused_by_name(options, error, words):
    with pytest.raises(error, match=re.escape(words)):
        check_function(torch.sin, torch.ones(2, dtype=torch.float64), **options)


def test_bad_functions_and_arguments_are_refused():
    with pytest.raises(TypeError, match="fn must be callable"):
        check_function("sin", torch.ones(2))
    with pytest.raises(InvalidArgument, match=r"no argument .* is a floating-point torch array"):
        check_function(lambda i: i * 2, torch.tensor([1, 2]))
    with pytest.raises(InvalidArgument, match=r"not finite|= nan"):  # never a pass on nan
        check_function(torch.sin, torch.tensor([0.0, float("nan")], dtype=torch.float64))


def test_a_custom_op_without_a_forward_rule_is_checked_in_reverse_and_says_so():
    # torch.func.jvp returns a zero tangent for it; forward AD itself gives none, which is "no rule"
    sin_op = torch.library.custom_op("gradcheck_tests::sin_no_fwd", mutates_args=())(_sin_impl)
    sin_op.register_fake(lambda x: torch.empty_like(x))
    sin_op.register_autograd(_sin_backward, setup_context=_save_input)
    for dtype in DTYPES:
        report = check_function(sin_op, torch.linspace(-1, 1, 6, dtype=dtype))
        assert report.ok, str(report)
        assert any("forward rule (jvp) is not defined" in note for note in report.notes), report.notes


def test_a_forward_rule_that_returns_zeros_is_not_taken_for_no_rule():
    class SquareZeroJvp(torch.autograd.Function):
        @staticmethod
        def forward(x):
            return x * x

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])
            ctx.save_for_forward(inputs[0])

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

        @staticmethod
        def jvp(ctx, t):
            return torch.zeros_like(t)  # wrong: the tangent is 2·x·t

    report = check_function(SquareZeroJvp.apply, torch.linspace(0.5, 1, 5, dtype=torch.float64))
    assert not report.ok and "forward rule (jvp) disagrees" in " ".join(report.problems), str(report)


def _sin_impl(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x)


def _save_input(ctx, inputs, output):
    ctx.save_for_backward(inputs[0])


def _sin_backward(ctx, g):
    (x,) = ctx.saved_tensors
    return g * torch.cos(x)


class _ScaleBy(torch.autograd.Function):
    """y = w·x; the backward mixes up its outputs when only one input needs a gradient (a needs_input_grad bug)."""

    @staticmethod
    def forward(x, w):
        return w * x

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        gx = g * w if ctx.needs_input_grad[0] else None
        gw = (g * x).sum() if ctx.needs_input_grad[1] else None
        if gx is not None and gw is None:
            gx = gx * 1.5  # wrong on this branch only
        return gx, gw


def test_only_the_inputs_that_require_grad_are_differentiated_as_torch_does():
    x = torch.linspace(-1, 1, 5, dtype=torch.float64)
    w = torch.tensor(0.7, dtype=torch.float64)
    both = check_function(_ScaleBy.apply, x.clone(), w.clone())
    assert both.ok, str(both)  # all differentiated: the buggy branch never runs
    only_x = check_function(_ScaleBy.apply, x.clone().requires_grad_(True), w.clone())
    assert not only_x.ok and [leaf.path for leaf in only_x.failures] == ["x['args[0]']"], str(only_x)
    assert any("requires_grad=False" in note for note in only_x.notes), only_x.notes


class _WrongShape(torch.autograd.Function):
    """A backward that returns a gradient of the wrong shape: torch itself raises when it gets it."""

    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, g):
        return 2 * g[:2]


def test_a_rule_that_raises_is_a_failed_check_naming_the_phase_not_a_crash():
    report = check_function(_WrongShape.apply, torch.linspace(-1, 1, 4, dtype=torch.float64))
    assert not report.ok
    assert any("raised RuntimeError in the reverse rule (backward)" in p for p in report.problems), report.problems
    with pytest.raises(GradientMismatch, match="raised RuntimeError in the reverse rule"):
        assert_function(_WrongShape.apply, torch.linspace(-1, 1, 4, dtype=torch.float64))


def _two_outputs(handles_none: bool, alone_bug: bool):
    """(sin x, x²) from one Function that does not materialise missing gradients: its backward gets None for an
    output the loss does not use."""

    class SinAndSquare(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            ctx.save_for_backward(x)
            return torch.sin(x), x * x

        @staticmethod
        def backward(ctx, g_sin, g_sq):
            (x,) = ctx.saved_tensors
            if not handles_none:
                return g_sin * torch.cos(x) + g_sq * 2 * x  # crashes when either is None
            out = torch.zeros_like(x)
            if g_sin is not None:
                out = out + g_sin * torch.cos(x)
            if g_sq is not None:
                out = out + g_sq * 2 * x * (1.5 if alone_bug and g_sin is None else 1.0)
            return out

    return SinAndSquare.apply


def test_each_output_gets_a_cotangent_alone_as_well_as_all_together():
    x = torch.linspace(-1, 1, 5, dtype=torch.float64)
    good = check_function(_two_outputs(handles_none=True, alone_bug=False), x)
    assert good.ok, str(good)
    assert any("output 1 alone: " in leaf.path for leaf in good.leaves)
    crashes = check_function(_two_outputs(handles_none=False, alone_bug=False), x)
    assert not crashes.ok and any("raised TypeError in the reverse rule" in p for p in crashes.problems), crashes
    wrong_alone = check_function(_two_outputs(handles_none=True, alone_bug=True), x)
    assert [leaf.path for leaf in wrong_alone.failures] == ["output 1 alone: x['args[0]']"], str(wrong_alone)


class _TanhMixingVmap(torch.autograd.Function):
    """tanh with a correct backward and a batching rule that mixes the samples of a batch (it reverses them)."""

    generate_vmap_rule = False

    @staticmethod
    def forward(x):
        return torch.tanh(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (1 - y * y)

    @staticmethod
    def vmap(info, in_dims, x):
        x = x.movedim(in_dims[0], 0) if in_dims[0] is not None else x
        return torch.tanh(x).flip(0), 0


def test_a_batching_rule_that_mixes_samples_is_not_trusted():
    x = torch.linspace(-2, 2, 600, dtype=torch.float64)
    report = check_function(_TanhMixingVmap.apply, x)
    assert report.ok, str(report)
    assert any("one point at a time" in note for note in report.notes), report.notes


class _SquareAssumingContiguous(torch.autograd.Function):
    """x², whose backward reads x's storage as if it were contiguous: right only for contiguous inputs."""

    @staticmethod
    def forward(x):
        return x * x

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        strides = [1] * x.dim()
        for d in range(x.dim() - 2, -1, -1):
            strides[d] = strides[d + 1] * x.shape[d + 1]
        raw = torch.as_strided(x, x.shape, strides)  # wrong unless x is contiguous
        return 2 * raw * g


def test_the_rule_runs_on_inputs_in_the_users_own_memory_layout():
    base = torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(3, 4)
    assert check_function(_SquareAssumingContiguous.apply, base.clone()).ok
    transposed = check_function(_SquareAssumingContiguous.apply, base.clone().t())
    assert not transposed.ok and transposed.failures, str(transposed)
    expanded = torch.linspace(-1, 1, 4, dtype=torch.float64)[None].expand(3, 4)
    assert check_function(torch.tanh, expanded).ok
    channels_last = torch.linspace(-1, 1, 2 * 3 * 4 * 5, dtype=torch.float64).reshape(2, 3, 4, 5)
    channels_last = channels_last.contiguous(memory_format=torch.channels_last)
    assert check_function(torch.sin, channels_last).ok


class _DoubleViewingGrad(torch.autograd.Function):
    """2x, whose backward flattens its cotangent with .view: it raises on a non-contiguous grad_output."""

    @staticmethod
    def forward(x):
        return 2 * x

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, g):
        return (2 * g.view(-1)).view(g.shape)


def test_a_backward_that_needs_a_contiguous_cotangent_fails_naming_the_phase():
    report = check_function(_DoubleViewingGrad.apply, torch.ones(3, 4, dtype=torch.float64))
    assert not report.ok and "in the reverse rule (backward)" in " ".join(report.problems), str(report)


def test_step_is_passed_to_the_checker():
    x = torch.linspace(0.5, 1.5, 4, dtype=torch.float64)
    report = check_function(torch.exp, x, step=1e-4)
    assert report.ok and np.allclose(report.leaves[0].step, 1e-4, rtol=1e-6), str(report)


def test_a_bfloat16_rule_is_judged_at_bfloat16s_precision():
    x = torch.linspace(-1, 1, 8, dtype=torch.bfloat16)
    report = check_function(torch.tanh, x, reference="float64")
    assert report.ok, str(report)


class _DoubleInPlace(torch.autograd.Function):
    """2x, whose backward doubles its grad_output in place (right values, but it corrupts a shared cotangent)."""

    @staticmethod
    def forward(x):
        return 2 * x

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, g):
        return g.mul_(2)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_a_backward_that_writes_into_its_cotangent_fails_saying_so(dtype):
    report = check_function(_DoubleInPlace.apply, torch.linspace(-1, 1, 5, dtype=dtype))
    assert not report.ok and "changed its grad_output in place" in " ".join(report.problems), str(report)


def test_namedtuples_and_registered_classes_are_walked_as_torch_walks_them():
    from collections import namedtuple

    from torch.utils import _pytree

    Pair = namedtuple("Pair", "w b")

    def affine(p, x):
        return torch.tanh(p.w * x + p.b)

    x = torch.linspace(-1, 1, 4, dtype=torch.float64)
    pair = Pair(torch.tensor([0.5, -1.0, 2.0, 1.5], dtype=torch.float64), torch.tensor(0.1, dtype=torch.float64))
    report = check_function(affine, pair, x, wrt=0)
    assert report.ok and {leaf.path for leaf in report.leaves} == {"x['args[0].w']", "x['args[0].b']"}, str(report)

    class Params:
        def __init__(self, w, b):
            self.w, self.b = w, b

    _pytree.register_pytree_node(
        Params,
        lambda p: ([p.w, p.b], None),
        lambda leaves, _: Params(*leaves),
        flatten_with_keys_fn=lambda p: ([(_pytree.GetAttrKey("w"), p.w), (_pytree.GetAttrKey("b"), p.b)], None),
    )
    try:
        report = check_function(affine, Params(pair.w, pair.b), x, wrt=0)
        assert report.ok and len(report.leaves) == 2, str(report)
    finally:
        _pytree._deregister_pytree_node(Params)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: torch.ones(3, device="meta"), "meta tensor"),
        (lambda: torch.eye(3, dtype=torch.float64).to_sparse(), "sparse_coo tensor; pass it as .to_dense()"),
    ],
)
def test_tensors_without_values_to_check_are_refused_by_name(make, words):
    with pytest.raises(GradcheckError) as info:
        check_function(torch.sin, make())
    assert "args[0] is a " in str(info.value) and words in str(info.value)
