"""How fast is the vectorised backprop: `Network.backprop` against the per-example loop, a clean numpy matrix version,
torch (eager, autograd) and jax (jit), and the bare matrix products of the same pass (the machine's ceiling).

One benchmark group per (network, batch, dtype); compare ratios inside a group. Every implementation's gradients are
checked against `Network.backprop` in the same test, so nothing wrong is ever timed. torch and jax are skipped, with
the reason, when they are not installed (``tox -e bench`` installs both).
"""

from __future__ import annotations

import numpy as np
import pytest
import rivals

from gradcheck import Network
from gradcheck.nn.loop import backprop_loop

CASES = [pytest.param((name, batch), id=f"{name}-b{batch}") for name, batch in rivals.TABLE + rivals.SWEEP]
DTYPES = [pytest.param(np.float64, id="f64"), pytest.param(np.float32, id="f32")]
TOL = {np.float64: 1e-9, np.float32: 2e-3}


@pytest.fixture(params=CASES)
def case(request):
    return request.param


@pytest.fixture(params=DTYPES)
def dtype(request):
    return request.param


@pytest.fixture
def setup(case, dtype, benchmark):
    name, batch = case
    sizes, ws, bs, X, Y = rivals.problem(name, batch, dtype, np.random.default_rng(1))
    net = Network(sizes, dtype=dtype, weights=ws, biases=bs)
    expected = net.backprop(X, Y)
    benchmark.group = (
        f"backprop {name} {sizes if len(sizes) < 6 else '[32]+100x[32]+[10]'} batch {batch} {np.dtype(dtype).name}"
    )
    benchmark.extra_info.update(
        sizes=f"{sizes[:3]}...{sizes[-1:]}" if len(sizes) > 6 else str(sizes),
        batch=batch,
        dtype=np.dtype(dtype).name,
        flops=rivals.flops(sizes, batch),
    )
    return net, ws, bs, X, Y, expected


def agree(grad_w, grad_b, expected, dtype):
    """Same gradients to the dtype's accuracy, relative to the largest gradient of the network (deep layers'
    float32 gradients are subnormal, so they are compared on that common scale)."""
    wants = [*expected.grad_w, *expected.grad_b]
    scale = max(float(np.abs(w).max()) for w in wants)
    for l, (got, want) in enumerate(zip([*grad_w, *grad_b], wants)):
        error = float(np.abs(np.asarray(got, dtype=np.float64) - want).max())
        assert error <= TOL[dtype] * scale, f"leaf {l} differs from Network.backprop by {error:.3g} (scale {scale:.3g})"


def record(benchmark):
    """GFLOP/s from the median, when timing ran (not under --benchmark-disable)."""
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None and stats.stats.median > 0:
        benchmark.extra_info["gflops_per_s"] = round(benchmark.extra_info["flops"] / stats.stats.median / 1e9, 2)


def test_gradcheck_backprop(benchmark, setup, dtype):
    net, _ws, _bs, X, Y, expected = setup
    bp = benchmark(net.backprop, X, Y)
    record(benchmark)
    agree(bp.grad_w, bp.grad_b, expected, dtype)
    assert all(g.dtype == dtype for g in [*bp.grad_w, *bp.grad_b, *bp.deltas, *bp.zs])


def test_numpy_matrix_reference(benchmark, setup, dtype):
    _net, ws, bs, X, Y, expected = setup
    grad_w, grad_b = benchmark(rivals.numpy_backprop, ws, bs, X, Y)
    record(benchmark)
    agree(grad_w, grad_b, expected, dtype)


def test_per_example_loop(benchmark, setup, dtype, case):
    if case[1] > 100 and dtype is np.float32:
        pytest.skip("the loop is timed at this size in float64 only (its cost is Python, not arithmetic)")
    net, _ws, _bs, X, Y, expected = setup
    bp = benchmark.pedantic(backprop_loop, args=(net, X, Y), rounds=3, iterations=1)
    record(benchmark)
    agree(bp.grad_w, bp.grad_b, expected, dtype)


def test_matmul_ceiling(benchmark, setup):
    """The bare products of one pass, with preallocated outputs: no time for anything else."""
    _net, ws, _bs, X, Y, _expected = setup
    scratch = rivals.matmul_scratch(ws, X)
    benchmark(rivals.matmuls_only, ws, X, scratch)
    record(benchmark)
    assert scratch[-1].shape == Y.shape


def test_torch_eager(benchmark, setup, dtype):
    pytest.importorskip("torch", reason="torch is not installed (tox -e bench installs torch==2.13.0)")
    _net, ws, bs, X, Y, expected = setup
    params, tX, tY = rivals.torch_problem(ws, bs, X, Y)
    grads = benchmark(rivals.torch_backprop, params, tX, tY)
    record(benchmark)
    L = len(ws)
    agree([g.numpy() for g in grads[:L]], [g.numpy() for g in grads[L:]], expected, dtype)


def test_jax_jit(benchmark, setup, dtype):
    pytest.importorskip("jax", reason="jax is not installed (tox -e bench installs it)")
    _net, ws, bs, X, Y, expected = setup
    fn = rivals.jax_backprop_fn()
    params, jX, jY = rivals.jax_problem(ws, bs, X, Y)
    rivals.jax_run(fn, params, jX, jY)  # compile outside the timing
    grads = benchmark(rivals.jax_run, fn, params, jX, jY)
    record(benchmark)
    agree([np.asarray(g) for g in grads[0]], [np.asarray(g) for g in grads[1]], expected, dtype)


@pytest.mark.benchmark(group="matmul peak")
@pytest.mark.parametrize("dtype_", DTYPES)
def test_matmul_peak(benchmark, dtype_):
    """A large square product: the GFLOP/s this machine's BLAS reaches at best."""
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((1024, 1024)).astype(dtype_), rng.standard_normal((1024, 1024)).astype(dtype_)
    out = np.empty_like(A)
    benchmark.extra_info.update(flops=2 * 1024**3, dtype=np.dtype(dtype_).name)
    benchmark(np.matmul, A, B, out=out)
    record(benchmark)
    assert np.isfinite(out).all()
