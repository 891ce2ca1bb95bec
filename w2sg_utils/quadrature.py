"""Gauss-Hermite quadrature for Gaussian expectations (exact targets for Chapter 1).

Monte Carlo checks need targets computed independently of the samples. For smooth
functions of a few standard normal variables, tensor-product Gauss-Hermite quadrature
gives such targets to near machine precision.
"""

from __future__ import annotations

import itertools

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

__all__ = ["gaussian_nodes", "gaussian_expectation"]


def gaussian_nodes(dim: int, n_nodes: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``(n_nodes**dim, dim)`` and weights (summing to one) for ``Z ~ N(0, I_dim)``."""
    if not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim: must be a positive integer, got {dim!r}")
    if not isinstance(n_nodes, (int, np.integer)) or n_nodes < 2:
        raise ValueError(f"n_nodes: must be an integer >= 2, got {n_nodes!r}")
    if n_nodes**dim > 5_000_000:
        raise ValueError(f"n_nodes: {n_nodes}**{dim} nodes is too many for a tensor grid")
    x, w = hermegauss(n_nodes)
    w = w / w.sum()
    nodes = np.array(list(itertools.product(x, repeat=dim)))
    weights = np.prod(np.array(list(itertools.product(w, repeat=dim))), axis=1)
    return nodes, weights


def gaussian_expectation(f, dim: int, n_nodes: int = 40) -> np.ndarray:
    """``E f(Z)`` for ``Z ~ N(0, I_dim)``; ``f`` maps ``(n, dim)`` nodes to ``(n, ...)``."""
    nodes, weights = gaussian_nodes(dim, n_nodes)
    return np.tensordot(weights, np.asarray(f(nodes), dtype=np.float64), axes=(0, 0))
