"""Plain references for the Bregman generators, written from their formulas (tests only).

Loops over coordinates, independent of :mod:`w2sg_utils.divergences`; shared by the
tests of the divergences, decompositions and misfits.
"""

import math

import numpy as np


def phi_ref(name, u):
    if name == "squared":
        return sum(a * a for a in u)
    if name == "kl":
        return sum(a * math.log(a) for a in u if a > 0)
    if name == "binary_kl":
        return sum(a * math.log(a) + (1 - a) * math.log(1 - a) for a in u)
    if name == "i_divergence":
        return sum(a * math.log(a) - a for a in u)
    return -sum(math.log(a) for a in u)


def grad_ref(name, u):
    if name == "squared":
        return [2 * a for a in u]
    if name == "kl":
        return [math.log(a) + 1 for a in u]  # true gradient of sum p log p
    if name == "binary_kl":
        return [math.log(a / (1 - a)) for a in u]
    if name == "i_divergence":
        return [math.log(a) for a in u]
    return [-1 / a for a in u]


def grad(name, u):
    """``grad_ref`` applied to every row of ``u`` (any leading shape)."""
    u = np.asarray(u, dtype=np.float64)
    return np.apply_along_axis(lambda row: np.array(grad_ref(name, list(row))), -1, u)


def grad_inv(name, t):
    """Inverse of ``grad`` (for ``kl`` on the simplex: the softmax, shift-invariant)."""
    t = np.asarray(t, dtype=np.float64)
    if name == "kl":
        return np.exp(t) / np.exp(t).sum(-1, keepdims=True)
    if name == "squared":
        return t / 2
    if name == "binary_kl":
        return 1 / (1 + np.exp(-t))
    if name == "i_divergence":
        return np.exp(t)
    return -1 / t
