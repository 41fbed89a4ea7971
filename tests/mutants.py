"""The classic backprop bugs, each a small change to a correct backprop.

``backprop(net, X, Y, bug)`` is the textbook algorithm with ``bug`` switched on at the line where it belongs, so
each mutant reads as the correct line beside the wrong one; ``bug=None`` is the correct algorithm.
"""

from __future__ import annotations

import numpy as np

from gradcheck.nn.activations import HIDDEN, OUTPUTS
from gradcheck.nn.costs import COSTS

KINKLESS = ["sigmoid", "tanh", "softplus"]  # activations whose σ′ is not a function of sign(z) alone

# bug name -> problems() restrictions under which the bug changes the gradient
MUTANTS = {
    "hidden delta without sigma'": {"min_layers": 2, "activations": KINKLESS + ["relu", "leaky_relu"]},
    "sigma' missing in one hidden layer only": {"min_layers": 2, "activations": KINKLESS},
    "cross-entropy output delta keeps sigma'": {"outputs": ["sigmoid"], "costs": ["cross_entropy"]},
    "quadratic output delta drops sigma'": {"outputs": ["sigmoid"], "costs": ["quadratic"]},
    "sigma' evaluated at a instead of z": {"min_layers": 2, "activations": KINKLESS},
    "BP4 with z of the layer below": {"min_layers": 2, "activations": KINKLESS + ["relu", "leaky_relu"]},
    "BP4 with the layer's own activation": {"min_layers": 1},
    "BP2 with the weights transposed": {"min_layers": 2, "square": True},  # silent when layers are square
    "BP2 with the weights of the wrong layer": {"min_layers": 2},
    "bias gradient summed, cost averaged": {"min_batch": 2},
    "softmax/log-likelihood delta with the sign flipped": {"outputs": ["softmax"], "costs": ["log_likelihood"]},
    "softmax Jacobian taken as its diagonal": {"outputs": ["softmax"], "costs": ["quadratic"], "min_width": 2},
    "dC/da used as delta": {"outputs": ["sigmoid"], "costs": ["cross_entropy"]},
    "weights updated before the delta is propagated": {"min_layers": 2},
    "cached activations mutated in place": {"min_layers": 2, "activations": KINKLESS},
    "bias as a column vector": {"min_width": 2},
    "gradient buffers never reset": {},
    "L2 in the loss but not in the gradient": {"l2": [0.5]},
    "one index slip in a single element": {"min_width": 2},
    "one gradient scaled by 1 + 1e-3": {},
}


def backprop(net, X, Y, bug=None):
    """(grad_w, grad_b) of ``net.loss(X, Y)``, with ``bug`` (a key of MUTANTS) planted, or correct for None."""
    act, out, cost = HIDDEN[net.activation], OUTPUTS[net.output], COSTS[net.cost]
    W, b = [w.copy() for w in net.weights], net.biases
    n, L = len(X), net.num_layers
    zs, acts, a = [], [X], X
    with np.errstate(over="ignore", under="ignore"):
        for l in range(L):
            bias = b[l][:, None] if bug == "bias as a column vector" else b[l]
            z = a @ W[l].T + bias
            a = (out if l == L - 1 else act).fn(z)
            zs.append(z)
            acts.append(a)
        z, a = zs[-1], acts[-1]
        if bug == "cross-entropy output delta keeps sigma'":
            delta = (a - Y) * out.prime(z, a)
        elif bug == "quadratic output delta drops sigma'":
            delta = a - Y
        elif bug == "softmax/log-likelihood delta with the sign flipped":
            delta = Y - a
        elif bug == "softmax Jacobian taken as its diagonal":
            delta = (a - Y) * a * (1 - a)
        elif bug == "dC/da used as delta":
            delta = (a - Y) / (a * (1 - a))
        else:
            delta = cost.delta(out, z, a, Y)  # BP1
        grad_w, grad_b = [None] * L, [None] * L
        for l in range(L - 1, -1, -1):
            grad_b[l] = delta.sum(axis=0) if bug == "bias gradient summed, cost averaged" else delta.mean(axis=0)
            if bug == "cached activations mutated in place" and l:
                acts[l] *= act.prime(zs[l - 1], acts[l])  # σ′ computed "in place" before BP4 has read aˡ⁻¹
            below = acts[l]
            if bug == "BP4 with z of the layer below" and l:
                below = zs[l - 1]
            elif bug == "BP4 with the layer's own activation":
                below = acts[l + 1]
            grad_w[l] = delta.T @ below / n  # BP4
            if bug != "L2 in the loss but not in the gradient":
                grad_w[l] = grad_w[l] + net.l2 / n * W[l]
            if bug == "weights updated before the delta is propagated":
                W[l] = W[l] - 0.5 * grad_w[l]
            if not l:
                break
            weights = W[l]
            if bug == "BP2 with the weights transposed":
                weights = W[l].T
            elif bug == "BP2 with the weights of the wrong layer":
                weights = W[l - 1]
            propagated = delta @ weights
            if bug == "hidden delta without sigma'" or (bug == "sigma' missing in one hidden layer only" and l == 1):
                delta = propagated
            elif bug == "sigma' evaluated at a instead of z":
                delta = propagated * act.prime(acts[l], act.fn(acts[l]))
            elif bug == "cached activations mutated in place":
                delta = propagated * acts[l]  # acts[l] now holds σ′
            else:
                delta = propagated * act.prime(zs[l - 1], acts[l])  # BP2
    if bug == "one index slip in a single element":
        grad_b[-1] = grad_b[-1].copy()
        grad_b[-1][-1] = grad_b[-1][-2]
    if bug == "one gradient scaled by 1 + 1e-3":
        grad_w[0] = grad_w[0] * (1 + 1e-3)
    return grad_w, grad_b


def gradient_function(net, X, Y, bug=None):
    """grad(params) for check_gradient; the buffer mutant keeps its buffers across calls."""
    buffers = {}

    def grad(params):
        grad_w, grad_b = backprop(net.replace(**params), X, Y, bug)
        if bug == "gradient buffers never reset":
            if not buffers:
                buffers["weights"] = [np.zeros_like(g) for g in grad_w]
                buffers["biases"] = [np.zeros_like(g) for g in grad_b]
            for buf, g in zip(buffers["weights"] + buffers["biases"], grad_w + grad_b):
                buf += g
            return {"weights": buffers["weights"], "biases": buffers["biases"]}
        return {"weights": grad_w, "biases": grad_b}

    return grad
