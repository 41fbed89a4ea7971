"""The ratios the targets are about, measured so that the machine's drift cannot bias them.

This machine's speed moves by up to 2× over seconds, and pytest-benchmark times one implementation to completion
before the next, so two medians from one run can come from different speeds. Here every round times each
implementation once, in a block of about 0.1 s, in an order that rotates from round to round; each round gives a
ratio to `Network.backprop`, and the median over the rounds is recorded in ``extra_info["ratios"]`` (time ÷
Network.backprop: above 1 is slower than ours). A 1024×1024 product in the same rounds gives the fraction of the
machine's matrix-product peak that `Network.backprop` reaches. "torch matmuls only" is the same bare products
through torch's BLAS (MKL): how much of torch's lead, where it has one, is its BLAS. pytest-benchmark's own timing of
this test is of the whole round and means nothing; `summarize.py` prints the ratios.

torch and jax take part too, but each block starts after SETTLE_SECONDS idle: OpenBLAS's threads spin for about
0.1 s after their last call, and torch alternating with them without that pause ran 4–40× slower than alone on the
two cores, which said nothing about torch. With the pause its ratios match its uninterrupted benchmarks.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import rivals
from test_bench_backprop import agree

from gradcheck import Network

ROUNDS = 11
BLOCK_SECONDS = 0.1
SETTLE_SECONDS = 0.25  # idle before each block: OpenBLAS's threads spin for ~0.1 s after their last call


def implementations(ws, bs, X, Y, net):
    """name -> zero-argument callable, for what is installed; each is checked against Network.backprop first."""
    expected = net.backprop(X, Y)
    dtype = X.dtype.type
    found = {"Network.backprop": lambda: net.backprop(X, Y), "clean numpy": lambda: rivals.numpy_backprop(ws, bs, X, Y)}
    agree(*rivals.numpy_backprop(ws, bs, X, Y), expected, dtype)
    scratch = rivals.matmul_scratch(ws, X)
    found["matmuls only"] = lambda: rivals.matmuls_only(ws, X, scratch)
    try:
        import torch
    except ImportError:
        pass
    else:
        params, tX, tY = rivals.torch_problem(ws, bs, X, Y)
        grads = rivals.torch_backprop(params, tX, tY)
        L = len(ws)
        agree([g.numpy() for g in grads[:L]], [g.numpy() for g in grads[L:]], expected, dtype)
        found["torch eager"] = lambda: rivals.torch_backprop(params, tX, tY)
        shared = [torch.from_numpy(a) for a in (*ws, X, *scratch)]  # the numpy arrays' memory, no copies
        tws, tX_shared, tscratch = shared[:L], shared[L], shared[L + 1 :]
        found["torch matmuls only"] = lambda: rivals.matmuls_only(tws, tX_shared, tscratch, torch.matmul)
    try:
        import jax  # noqa: F401
    except ImportError:
        pass
    else:
        fn = rivals.jax_backprop_fn()
        jparams, jX, jY = rivals.jax_problem(ws, bs, X, Y)
        grads = rivals.jax_run(fn, jparams, jX, jY)
        agree([np.asarray(g) for g in grads[0]], [np.asarray(g) for g in grads[1]], expected, dtype)
        found["jax jit"] = lambda: rivals.jax_run(fn, jparams, jX, jY)
    A, B = np.ones((2, 1024, 1024), dtype=X.dtype)
    out = np.empty_like(A)
    found["matmul peak"] = lambda: np.matmul(A, B, out=out)
    return found


def repetitions(func) -> int:
    """How many calls fill about BLOCK_SECONDS."""
    func()
    start = time.perf_counter()
    func()
    return max(1, int(BLOCK_SECONDS / max(time.perf_counter() - start, 1e-7)))


@pytest.mark.parametrize("dtype", [pytest.param(np.float64, id="f64"), pytest.param(np.float32, id="f32")])
@pytest.mark.parametrize("case", [pytest.param(c, id=f"{c[0]}-b{c[1]}") for c in rivals.TABLE])
def test_interleaved_ratios(benchmark, case, dtype):
    name, batch = case
    sizes, ws, bs, X, Y = rivals.problem(name, batch, dtype, np.random.default_rng(1))
    net = Network(sizes, dtype=dtype, weights=ws, biases=bs)
    found = implementations(ws, bs, X, Y, net)
    timing = not getattr(benchmark, "disabled", False)  # --benchmark-disable (CI's smoke run): one quick round
    reps = {k: repetitions(f) if timing else 1 for k, f in found.items()}
    settle = SETTLE_SECONDS if timing else 0.0
    times: dict[str, list[float]] = {k: [] for k in found}
    names = list(found)

    def one_round():
        start_at = len(times["Network.backprop"]) % len(names)
        for k in names[start_at:] + names[:start_at]:
            time.sleep(settle)
            start = time.perf_counter()
            for _ in range(reps[k]):
                found[k]()
            times[k].append((time.perf_counter() - start) / reps[k])

    benchmark.group = f"interleaved ratios {name} batch {batch} {np.dtype(dtype).name}"
    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    ours = np.array(times["Network.backprop"])
    assert len(ours) >= 1 and np.all(ours > 0)
    ratios = {k: round(float(np.median(np.array(v) / ours)), 3) for k, v in times.items() if k != "Network.backprop"}
    peak = 2 * 1024**3 / np.array(times["matmul peak"])
    fraction = float(np.median(rivals.flops(sizes, batch) / ours / peak))
    benchmark.extra_info.update(
        sizes=str(sizes) if len(sizes) < 6 else "[32]+100x[32]+[10]",
        batch=batch,
        dtype=np.dtype(dtype).name,
        rounds=len(ours),
        ratios=ratios,
        best_us={k: round(min(v) * 1e6, 1) for k, v in times.items()},
        fraction_of_peak=round(fraction, 3),
    )
