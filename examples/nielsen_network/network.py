"""A small network in the style of the book's network2.py: column vectors, one example at a time, a cost object
with ``fn`` and ``delta``. Written for this example, to be tested by gradcheck's kit as a user's own code."""

from __future__ import annotations

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    return sigmoid(z) * (1 - sigmoid(z))


class CrossEntropyCost:
    @staticmethod
    def delta(z, a, y):
        return a - y


class QuadraticCost:
    @staticmethod
    def delta(z, a, y):
        return (a - y) * sigmoid_prime(z)


class Network:
    def __init__(self, sizes, weights, biases, cost=CrossEntropyCost):
        self.sizes, self.weights, self.biases, self.cost = sizes, weights, biases, cost

    def backprop(self, x, y):
        """(nabla_b, nabla_w, deltas) for one example x (n_in, 1), y (n_out, 1)."""
        activation, activations, zs = x, [x], []
        for b, w in zip(self.biases, self.weights):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        delta = self.cost.delta(zs[-1], activations[-1], y)
        nabla_b, nabla_w, deltas = [delta], [np.dot(delta, activations[-2].transpose())], [delta]
        for l in range(2, len(self.sizes)):
            delta = np.dot(self.weights[-l + 1].transpose(), delta) * sigmoid_prime(zs[-l])
            nabla_b.insert(0, delta)
            nabla_w.insert(0, np.dot(delta, activations[-l - 1].transpose()))
            deltas.insert(0, delta)
        return nabla_b, nabla_w, deltas
