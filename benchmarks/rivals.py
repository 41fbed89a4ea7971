"""The implementations `Network.backprop` is measured against, all computing the same thing.

Every one computes the gradient of the same loss — sigmoid hidden and output layers, cross-entropy averaged over the
batch, no L2 — for weights ``ws[l]`` of shape (n_out, n_in) and biases ``bs[l]`` of shape (n_out,), rows of X and
Y being examples. The tests in ``test_bench_backprop.py`` check that each agrees with `Network.backprop` before
timing it, so a benchmark can never time a wrong answer.
"""

from __future__ import annotations

import numpy as np

SIZES = {
    "chapter1": [784, 30, 10],
    "wide": [784, 100, 100, 100, 10],
    "deep100": [32] + [32] * 100 + [10],
}

# (network, batch) pairs of the comparison table, then the batch sweep on the chapter-1 network.
TABLE = [("chapter1", 10), ("chapter1", 100), ("wide", 1000), ("deep100", 64)]
SWEEP = [("chapter1", 1), ("chapter1", 1000), ("wide", 1), ("wide", 10), ("wide", 100)]


def flops(sizes: list[int], batch: int) -> int:
    """Multiply-adds ×2 of one forward and backward pass: z = aWᵀ, δWˡ⁺¹ (not for the first layer) and δᵀa."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    forward = sum(2 * batch * m * n for m, n in pairs)
    return 3 * forward - 2 * batch * pairs[0][0] * pairs[0][1]


def problem(name: str, batch: int, dtype: type, rng: np.random.Generator):
    sizes = SIZES[name]
    ws = [(rng.standard_normal((n, m)) / np.sqrt(m)).astype(dtype) for m, n in zip(sizes[:-1], sizes[1:])]
    bs = [rng.standard_normal(n).astype(dtype) for n in sizes[1:]]
    X = rng.uniform(0, 1, (batch, sizes[0])).astype(dtype)
    Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], batch)]
    return sizes, ws, bs, X, Y


# -- the clean numpy matrix version: the textbook forms, nothing else ---------------------------------------------
def numpy_backprop(ws, bs, X, Y):
    activations = [X]
    a = X
    for w, b in zip(ws, bs):
        a = 1.0 / (1.0 + np.exp(-(a @ w.T + b)))
        activations.append(a)
    n = len(X)
    delta = activations[-1] - Y
    grad_w, grad_b = [None] * len(ws), [None] * len(ws)
    for l in range(len(ws) - 1, -1, -1):
        grad_w[l] = delta.T @ activations[l] / n
        grad_b[l] = delta.sum(axis=0) / n
        if l:
            a = activations[l]
            delta = (delta @ ws[l]) * a * (1 - a)
    return grad_w, grad_b


def matmuls_only(ws, X, scratch, matmul=np.matmul):
    """The same matrix products as one backprop, with nothing in between: the machine's ceiling for this network.
    ``matmul=torch.matmul`` on tensors sharing the arrays' memory runs the same products through torch's BLAS."""
    a = X
    for l, w in enumerate(ws):
        a = matmul(a, w.T, out=scratch[l])
    delta = a
    for l in range(len(ws) - 1, -1, -1):
        matmul(delta.T, scratch[l - 1] if l else X)
        if l:
            delta = matmul(delta, ws[l], out=scratch[l - 1])


def matmul_scratch(ws, X):
    return [np.empty((len(X), w.shape[0]), X.dtype) for w in ws]


# -- torch, eager mode and autograd ---------------------------------------------------------------------------------
def torch_problem(ws, bs, X, Y):
    import torch

    torch.set_num_threads(2)
    params = [torch.tensor(p, requires_grad=True) for p in (*ws, *bs)]
    return params, torch.tensor(X), torch.tensor(Y)


def torch_loss(params, X, Y):
    import torch

    L = len(params) // 2
    a = X
    for l in range(L):
        z = torch.nn.functional.linear(a, params[l], params[L + l])
        a = torch.sigmoid(z) if l < L - 1 else z
    return torch.nn.functional.binary_cross_entropy_with_logits(a, Y, reduction="sum") / len(X)


def torch_backprop(params, X, Y):
    import torch

    return torch.autograd.grad(torch_loss(params, X, Y), params)


# -- jax, jit-compiled value and gradient ---------------------------------------------------------------------------
def jax_loss_fn():
    """The loss of a sigmoid network with linear logits under cross-entropy, as a function of (ws, bs), X, Y."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def loss(params, X, Y):
        ws, bs = params
        a = X
        for l, (w, b) in enumerate(zip(ws, bs)):
            z = a @ w.T + b
            a = jax.nn.sigmoid(z) if l < len(ws) - 1 else z
        return jnp.sum(jnp.logaddexp(0.0, a) - Y * a) / X.shape[0]

    return loss


def jax_backprop_fn():
    import jax

    return jax.jit(jax.grad(jax_loss_fn()))


def jax_problem(ws, bs, X, Y):
    import jax.numpy as jnp

    return ([jnp.asarray(w) for w in ws], [jnp.asarray(b) for b in bs]), jnp.asarray(X), jnp.asarray(Y)


def jax_run(fn, params, X, Y):
    grads = fn(params, X, Y)
    for g in grads[0]:
        g.block_until_ready()
    return grads


def best_of(rounds, func, *args):
    """The shortest of ``rounds`` timings of ``func(*args)``, in seconds."""
    import time

    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        func(*args)
        best = min(best, time.perf_counter() - start)
    return best


def torch_gradcheck_beside_check_network(benchmark, net, X, Y):
    """Time torch.autograd.gradcheck (default mode) on ``net``'s loss in float64, with check_network timed just
    before and just after: the machine's speed drifts by up to 2× over seconds, and bracketing makes the ratio in
    ``extra_info["times_check_network"]`` compare the two under the same conditions. Returns gradcheck's verdict."""
    import torch

    from gradcheck import check_network

    params, tX, tY = torch_problem(net.weights, net.biases, X, Y)

    def loss(*params):
        return torch_loss(params, tX, tY)

    assert abs(loss(*params).item() - net.loss(X, Y)) < 1e-12 * max(1.0, net.loss(X, Y))
    before = best_of(3, check_network, net, X, Y)
    ok = benchmark.pedantic(torch.autograd.gradcheck, args=(loss, tuple(params)), rounds=1, iterations=1)
    after = best_of(3, check_network, net, X, Y)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        benchmark.extra_info["times_check_network"] = round(stats.stats.median / max(before, after), 1)
    parameters = sum(w.size + b.size for w, b in zip(net.weights, net.biases))
    benchmark.extra_info.update(parameters=parameters, check_network_s=[round(before, 4), round(after, 4)])
    return ok
