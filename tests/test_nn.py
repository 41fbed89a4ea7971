"""The reference network: BP1–BP4 against an independent oracle, the loop version and the book's identities."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck import Network
from gradcheck.nn.activations import HIDDEN
from gradcheck.nn.loop import backprop_loop

from . import oracle
from .helpers import COMBINATIONS, combo_id, problem


def assert_close(actual, expected, rtol):
    """Every array within rtol of the expected one, relative to its largest entry."""
    for a, e in zip(actual, expected, strict=True):
        assert a.shape == e.shape
        scale = np.abs(e).max()
        assert np.abs(a - e).max() <= rtol * scale, (a, e)


@pytest.mark.parametrize("combo", COMBINATIONS, ids=combo_id)
def test_gradients_match_the_complex_step_oracle(combo):
    net, X, Y = problem(*combo, sizes=(3, 4, 3, 2), l2=0.2)
    bp = net.backprop(X, Y)
    grad_w, grad_b = oracle.gradients(net, X, Y)
    assert_close(bp.grad_w, grad_w, 1e-10)
    assert_close(bp.grad_b, grad_b, 1e-10)


@pytest.mark.parametrize("combo", COMBINATIONS, ids=combo_id)
def test_deltas_match_the_complex_step_oracle(combo):
    net, X, Y = problem(*combo, sizes=(3, 4, 3, 2))
    assert_close(net.backprop(X, Y).deltas, oracle.deltas(net, X, Y), 1e-10)


@pytest.mark.parametrize("combo", COMBINATIONS, ids=combo_id)
def test_loss_matches_the_oracle(combo):
    net, X, Y = problem(*combo, l2=0.3)
    expected = oracle.loss(net, net.weights, net.biases, X, Y).real
    assert net.loss(X, Y) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("combo", COMBINATIONS, ids=combo_id)
def test_vectorised_backprop_equals_the_per_example_loop(combo):
    net, X, Y = problem(*combo, sizes=(3, 5, 4, 2), batch=7, l2=0.1)
    fast, loop = net.backprop(X, Y), backprop_loop(net, X, Y)
    for name in ("zs", "activations", "deltas", "grad_w", "grad_b"):
        assert_close(getattr(fast, name), getattr(loop, name), 1e-12)


def test_cross_entropy_output_delta_is_a_minus_y():
    net, X, Y = problem("tanh", "sigmoid", "cross_entropy")
    bp = net.backprop(X, Y)
    np.testing.assert_allclose(bp.deltas[-1], bp.activations[-1] - Y, rtol=1e-12, atol=1e-15)


def test_quadratic_output_delta_keeps_sigma_prime():
    net, X, Y = problem("tanh", "sigmoid", "quadratic")
    bp = net.backprop(X, Y)
    a, z = bp.activations[-1], bp.zs[-1]
    sigma_prime = np.exp(-z) / (1 + np.exp(-z)) ** 2
    np.testing.assert_allclose(bp.deltas[-1], (a - Y) * sigma_prime, rtol=1e-12)


@pytest.mark.parametrize("combo", COMBINATIONS, ids=combo_id)
def test_hidden_deltas_follow_bp2(combo):
    net, X, Y = problem(*combo, sizes=(3, 5, 4, 2))
    bp = net.backprop(X, Y)
    act = HIDDEN[net.activation]
    for l in range(net.num_layers - 1):
        z = bp.zs[l]
        expected = (bp.deltas[l + 1] @ net.weights[l + 1]) * act.prime(z, act.fn(z))
        np.testing.assert_allclose(bp.deltas[l], expected, rtol=1e-12, atol=1e-300)


def test_bp3_and_bp4_are_batch_means_of_the_deltas():
    net, X, Y = problem("sigmoid", "softmax", "log_likelihood", sizes=(3, 4, 3), batch=6)
    bp = net.backprop(X, Y)
    for l in range(net.num_layers):
        np.testing.assert_allclose(bp.grad_b[l], bp.deltas[l].mean(axis=0), rtol=1e-13)
        outer = np.mean([np.outer(d, a) for d, a in zip(bp.deltas[l], bp.activations[l])], axis=0)
        np.testing.assert_allclose(bp.grad_w[l], outer, rtol=1e-12)


def test_l2_term_in_loss_and_gradient():
    net, X, Y = problem(l2=0.0)
    reg = net.replace()
    reg.l2 = 0.7
    n = len(X)
    penalty = 0.5 * 0.7 / n * sum(float((w * w).sum()) for w in net.weights)
    assert reg.loss(X, Y) == pytest.approx(net.loss(X, Y) + penalty, rel=1e-14)
    for g_reg, g, w in zip(reg.backprop(X, Y).grad_w, net.backprop(X, Y).grad_w, net.weights):
        np.testing.assert_allclose(g_reg, g + 0.7 / n * w, rtol=1e-13)


def test_float32_network_computes_in_float32_end_to_end():
    net, X, Y = problem("tanh", "softmax", "log_likelihood", dtype="float32")
    bp = net.backprop(X, Y)  # X, Y are float64: cast on the way in
    arrays = bp.zs + bp.activations + bp.deltas + bp.grad_w + bp.grad_b + net.weights + net.biases
    assert {a.dtype for a in arrays} == {np.dtype(np.float32)}
    assert isinstance(net.loss(X, Y), float)


def test_float32_gradients_agree_with_float64_to_float32_precision():
    net64, X, Y = problem("sigmoid", "sigmoid", "cross_entropy", sizes=(4, 6, 3))
    net32 = Network(
        net64.sizes,
        activation="sigmoid",
        output="sigmoid",
        cost="cross_entropy",
        dtype="float32",
        weights=net64.weights,
        biases=net64.biases,
    )
    assert_close(net32.backprop(X, Y).grad_w, net64.backprop(X, Y).grad_w, 1e-5)


def test_initialisation_follows_network2():
    rng = np.random.default_rng(1)
    net = Network([400, 300, 1000], rng=rng)
    assert net.weights[0].shape == (300, 400) and net.biases[1].shape == (1000,)
    assert np.std(net.weights[0]) == pytest.approx(1 / np.sqrt(400), rel=0.02)
    assert np.std(net.weights[1]) == pytest.approx(1 / np.sqrt(300), rel=0.02)
    assert np.std(np.concatenate(net.biases)) == pytest.approx(1.0, rel=0.05)
    assert abs(np.mean(net.weights[1])) < 3 / np.sqrt(300 * 1000) * 3


def test_same_rng_seed_gives_the_same_network():
    a = Network([3, 4, 2], rng=np.random.default_rng(7))
    b = Network([3, 4, 2], rng=np.random.default_rng(7))
    assert all(np.array_equal(u, v) for u, v in zip(a.weights + a.biases, b.weights + b.biases))


def test_cross_entropy_is_finite_and_exact_when_the_output_saturates():
    net = Network([1, 1], output="sigmoid", cost="cross_entropy", weights=[np.array([[1.0]])], biases=[np.zeros(1)])
    # a = σ(800) rounds to 1 and σ(-800) to 0; the cost from the logits is still exact: ln(1 + e^-800) ≈ 0 for
    # the right answer and 800 for the wrong one.
    X = np.array([[800.0], [-800.0], [40.0]])
    assert net.loss(X, np.array([[1.0], [1.0], [1.0]])) == pytest.approx((0 + 800 + np.exp(-40)) / 3, rel=1e-15)
    bp = net.backprop(X, np.array([[0.0], [1.0], [1.0]]))
    np.testing.assert_allclose(bp.deltas[-1][:, 0], [1.0, -1.0, -np.exp(-40.0)], rtol=1e-14)


def test_log_likelihood_keeps_relative_precision_of_a_confident_right_answer():
    net = Network([2, 2], output="softmax", cost="log_likelihood", weights=[np.eye(2)], biases=[np.zeros(2)])
    X, Y = np.array([[30.0, 0.0]]), np.array([[1.0, 0.0]])
    assert net.loss(X, Y) == pytest.approx(np.log1p(np.exp(-30.0)), rel=1e-14)
    delta = net.backprop(X, Y).deltas[-1][0]
    np.testing.assert_allclose(
        delta, [-np.exp(-30.0) / (1 + np.exp(-30.0)), np.exp(-30.0) / (1 + np.exp(-30.0))], rtol=1e-14
    )


def test_softmax_is_shifted_so_large_logits_do_not_overflow():
    net = Network(
        [1, 3],
        output="softmax",
        cost="log_likelihood",
        weights=[np.array([[1000.0], [999.0], [0.0]])],
        biases=[np.zeros(3)],
    )
    a = net.feedforward(np.array([[1.0]]))
    np.testing.assert_allclose(a[0], [1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1)), 0.0], rtol=1e-14)


def test_repr_shows_the_architecture():
    net = Network([3, 4, 1], activation="tanh", cost="cross_entropy", rng=np.random.default_rng(0))
    assert repr(net) == "Network([3, 4, 1], activation='tanh', output='sigmoid', cost='cross_entropy')"
    net32 = Network([2, 2], l2=0.5, dtype=np.float32, rng=np.random.default_rng(0))
    assert repr(net32).endswith("l2=0.5, dtype='float32')")


def test_params_are_copies_and_replace_shares_the_rest():
    net, _X, _Y = problem()
    params = net.params
    params["weights"][0][...] = 0
    assert not np.all(net.weights[0] == 0)
    other = net.replace(weights=params["weights"])
    assert other.biases[0] is net.biases[0] and np.all(other.weights[0] == 0)


def test_as_functions_gives_the_loss_and_its_gradient():
    net, X, Y = problem()
    loss, grad = net.as_functions(X, Y)
    assert loss(net.params) == net.loss(X, Y)
    g = grad(net.params)
    assert_close(g["weights"], net.backprop(X, Y).grad_w, 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_sigmoid_cache_is_sigma_of_minus_z_to_full_precision_and_never_overflows(dtype):
    from gradcheck.nn.activations import HIDDEN

    z = np.array([-1000.0, -60.0, -1.0, 0.0, 3.0, 40.0, 1000.0], dtype=dtype)
    a, cache = HIDDEN["sigmoid"].forward(z)
    with np.errstate(over="ignore"):  # e^1000 = inf gives the exact limit 0 here
        exact_a = 1 / (1 + np.exp(-z.astype(np.float64)))
        exact_s = 1 / (1 + np.exp(z.astype(np.float64)))
    tiny = np.finfo(dtype).tiny
    assert a.dtype == cache.dtype == dtype
    # relative precision wherever the value is a normal number (σ(−1000) stays below the smallest normal)
    for got, exact in ((a, exact_a), (cache, exact_s)):
        normal = exact > tiny
        assert np.all(np.abs(got[normal] - exact[normal]) <= 4 * np.finfo(dtype).eps * exact[normal])
        assert np.all(got[~normal] <= tiny)
    assert HIDDEN["sigmoid"].fn(0.0) == 0.5 and HIDDEN["sigmoid"].fn(np.array([2]))[0] == pytest.approx(0.8807970779)


def _one_extreme_unit(dtype, X):
    """[2, 3, 2] whose hidden unit 0 computes z = 1000·x₀, with X as given and one-hot targets."""
    net = Network(
        [2, 3, 2],
        weights=[np.array([[1000.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.ones((2, 3))],
        biases=[np.zeros(3), np.zeros(2)],
        dtype=dtype,
    )
    return net, np.array(X, dtype=dtype), np.array([[1.0, 0.0], [0.0, 1.0]], dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_hidden_unit_far_above_the_exp_range_still_gets_exact_finite_gradients(dtype):
    """backprop skips the sigmoid's overflow guard and redoes the pass with it when ∂C/∂b¹ shows the nan the guard
    would have prevented: the result is the guarded pass's, entry for entry."""
    net, X, Y = _one_extreme_unit(dtype, [[1.0, 0.5], [0.2, 0.3]])  # z = 1000 for hidden unit 0 of example 0
    with np.errstate(all="ignore"):
        unguarded = net._backprop(X, Y, guard=False)
        guarded = net._backprop(X, Y, guard=True)
    assert np.isnan(unguarded.grad_b[0]).any()  # what the check after the first pass sees
    bp = net.backprop(X, Y)
    for got, want in zip(bp.grad_w + bp.grad_b + bp.deltas, guarded.grad_w + guarded.grad_b + guarded.deltas):
        assert np.all(np.isfinite(got)) and np.array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_hidden_unit_far_below_the_exp_range_needs_no_guard(dtype):
    """eᶻ underflows to 0 where z is very negative, which gives the exact limits σ(z) = 0, σ(−z) = 1 without the
    guard: the unguarded pass is already finite and equal to the guarded one."""
    net, X, Y = _one_extreme_unit(dtype, [[-1.0, 0.5], [0.002, 0.3]])  # z = −1000 for unit 0 of example 0, 2 for 1
    unguarded, guarded = net._backprop(X, Y, guard=False), net._backprop(X, Y, guard=True)
    assert unguarded.activations[1][0, 0] == 0 and unguarded.zs[0][0, 0] == -1000
    for got, want in zip(
        unguarded.grad_w + unguarded.grad_b + unguarded.deltas, guarded.grad_w + guarded.grad_b + guarded.deltas
    ):
        assert np.all(np.isfinite(got)) and np.array_equal(got, want)


def _deep_sigmoid(dtype, depth=60, width=16, batch=8, seed=3):
    rng = np.random.default_rng(seed)
    sizes = [width] * (depth + 1) + [3]
    net = Network(sizes, rng=rng, dtype=dtype)
    # the same parameters and data in float64, exactly: the float64 pass differs only by the rounding of float32's
    net64 = Network(
        sizes, weights=[w.astype(np.float64) for w in net.weights], biases=[b.astype(np.float64) for b in net.biases]
    )
    X = rng.uniform(0, 1, (batch, width)).astype(dtype).astype(np.float64)
    Y = np.eye(3)[rng.integers(0, 3, batch)]
    return net64, net, X, Y


def _worst_subnormal_layer_error():
    """The largest error of a 60-layer float32 sigmoid network's deltas and gradients, in the layers whose deltas
    fall below float32's smallest normal number, against the same network in float64, in units of 2e-5 of each
    array's largest entry plus half a subnormal step (float32's rounding accumulated over the layers above)."""
    net64, net32, X, Y = _deep_sigmoid(np.float32)
    exact, got = net64.backprop(X, Y), net32.backprop(X, Y)
    tiny, step = np.finfo(np.float32).tiny, 2.0**-149
    subnormal = [l for l, d in enumerate(exact.deltas) if np.any((np.abs(d) < tiny) & (np.abs(d) > step))]
    assert len(subnormal) >= 3, "the network must reach float32's subnormal range for this test to mean anything"
    worst = 0.0
    for l in subnormal:
        for g, e in (
            (got.deltas[l], exact.deltas[l]),
            (got.grad_w[l], exact.grad_w[l]),
            (got.grad_b[l], exact.grad_b[l]),
        ):
            assert g.dtype == np.float32
            worst = max(worst, float(np.max(np.abs(g.astype(np.float64) - e) / (2e-5 * np.abs(e).max() + step / 2))))
    return worst


def test_float32_deltas_in_the_subnormal_range_are_the_float64_ones_rounded_once():
    """Carried scaled by a power of two and rounded once when stored, the deep float32 deltas keep float32's
    precision in the subnormal range (seen here: half the bound)."""
    assert _worst_subnormal_layer_error() <= 1


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_power_of_two_scaling_of_the_deltas_changes_nothing_where_nothing_is_subnormal(dtype, monkeypatch):
    """Rescaling at every layer, or never, gives the same bits when every value stays a normal number: a power of
    two commutes with rounding there."""
    from gradcheck.nn import network as nn

    _, net, X, Y = _deep_sigmoid(dtype, depth=12)
    results = []
    for threshold in (np.inf, 0.0):
        monkeypatch.setitem(nn._RESCALE_SUM_OF_SQUARES, np.dtype(dtype), (threshold, np.inf))
        results.append(net.backprop(X, Y))
    scaled, plain = results
    assert np.abs(plain.deltas[0]).min() > np.finfo(dtype).tiny
    for a, b in zip(scaled.deltas + scaled.grad_w + scaled.grad_b, plain.deltas + plain.grad_w + plain.grad_b):
        assert a.dtype == b.dtype == dtype and np.array_equal(a, b)


def test_without_the_scaling_float32_subnormal_deltas_lose_their_digits(monkeypatch):
    """The control for the test above: with the scaling switched off, products of subnormals exceed the same bound
    (seen here: 2.7 times), so that test can fail."""
    from gradcheck.nn import network as nn

    monkeypatch.setitem(nn._RESCALE_SUM_OF_SQUARES, np.dtype(np.float32), (0.0, np.inf))
    assert _worst_subnormal_layer_error() > 1


def _vanish_then_explode():
    """float32, identity layers: going down from the output, δ shrinks 1e-3 per layer for six layers (to 1e-20),
    then grows 1e4 per layer for twelve (to 1e28, finite). The scaled delta that carried it through the small part
    would grow past float32's 3.4e38 unless it is scaled back."""
    sizes = [2] * 20
    weights = [np.eye(2) * (1e4 if l < 13 else 1e-3) for l in range(19)]
    kwargs = {"activation": "identity", "output": "identity", "cost": "quadratic", "biases": [np.zeros(2)] * 19}
    net32 = Network(sizes, dtype=np.float32, weights=weights, **kwargs)
    net64 = Network(sizes, weights=[w.astype(np.float32).astype(np.float64) for w in weights], **kwargs)
    X, Y = np.array([[1e-36, 2e-36]]), np.zeros((1, 2))
    return net64.backprop(X, Y), net32.backprop(X.astype(np.float32), Y.astype(np.float32))


def test_a_delta_that_vanishes_then_grows_again_is_scaled_back_before_it_overflows():
    exact, got = _vanish_then_explode()
    assert np.abs(exact.deltas[0]).max() > 1e27 and np.abs(exact.deltas[12]).max() < 1e-19
    for g, e in zip(got.deltas + got.grad_w + got.grad_b, exact.deltas + exact.grad_w + exact.grad_b):
        assert np.all(np.isfinite(g)) and np.all(np.abs(g - e) <= 1e-5 * np.abs(e).max())


def test_without_scaling_back_the_growing_delta_overflows(monkeypatch):
    """The control: with the upper threshold switched off, the same pass ends in inf."""
    from gradcheck.nn import network as nn

    small, _ = nn._RESCALE_SUM_OF_SQUARES[np.dtype(np.float32)]
    monkeypatch.setitem(nn._RESCALE_SUM_OF_SQUARES, np.dtype(np.float32), (small, np.inf))
    _, got = _vanish_then_explode()
    assert not np.all(np.isfinite(got.deltas[0]))


@pytest.mark.parametrize("name", sorted(HIDDEN))
def test_each_activation_states_its_change_and_its_kink(name):
    """What the structured check and the strategies need from an activation lives on the activation: the change
    σ(z + c) − σ(z) (equal to the subtraction where that does not cancel, and to first order c·σ′(z) where it would)
    and whether σ′ jumps at 0."""
    act = HIDDEN[name]
    z = np.linspace(-3, 3, 13)[:, None] + 0.05
    c = np.array([[-0.5, -0.01, 0.01, 0.5]])
    assert np.allclose(act.change(z, c), act.fn(z + c) - act.fn(z), rtol=1e-12, atol=1e-15)
    tiny = 1e-12
    assert np.allclose(act.change(z, tiny) / tiny, act.prime(z, act.fn(z)), rtol=1e-9)
    slopes = act.prime(np.array([-1e-9, 1e-9]), act.fn(np.array([-1e-9, 1e-9])))
    assert act.kink == bool(abs(slopes[1] - slopes[0]) > 1e-3)
