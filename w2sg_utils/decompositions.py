"""The generalized bias-variance decomposition (claim C1) and the pointwise gain
identity (claim C2), Chapter 1.

Shapes. A *sample of predictions* has the sample (repetition) axis first:
``predictions[j, ..., :]`` is the ``j``-th independent draw of the predictor, the middle
axes index inputs ``x`` (any number, possibly none) and the last axis holds coordinates.
Targets are laid out the same way: ``targets[i, ..., :]`` is the ``i``-th draw of ``Y``.
Optional ``*_weights`` make a sample an exact discrete distribution (enumeration).

The decomposition (claim C1): for ``Y`` independent of ``V``,

    E D(Y, V) = E D(Y, EY) + D(EY, V°) + E D(V°, V)
                 noise        bias        variance

with ``V°`` the dual mean (:meth:`~w2sg_utils.divergences.BregmanDivergence.dual_mean`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._common import check_broadcast, rowsum, sample_weights
from .divergences import BregmanDivergence, get_divergence

__all__ = [
    "BiasVariance",
    "bias_variance_decomposition",
    "expected_loss",
    "GainIdentity",
    "gain_identity",
]


class _Terms:
    """``averaged()``: each of the class's ``terms`` averaged over inputs."""

    _TERMS: tuple[str, ...] = ()

    def __init_subclass__(cls, terms: tuple[str, ...] = (), **kw):
        super().__init_subclass__(**kw)
        cls._TERMS = terms

    def averaged(self) -> dict[str, float]:
        """Each term averaged over inputs ``x`` (population versions; plain floats)."""
        return {k: float(np.mean(getattr(self, k))) for k in self._TERMS}


@dataclass(frozen=True)
class BiasVariance(_Terms, terms=("noise", "bias", "variance", "expected_loss")):
    """Terms of the generalized bias-variance decomposition, one value per input ``x``.

    Statement: {prf:ref}`lem-bias-variance`.

    ``expected_loss`` is computed directly as ``E D(Y, V)`` over the product of the two
    (empirical or exact) distributions, not as the sum of the terms, so
    ``expected_loss == noise + bias + variance`` is a real check of claim C1.
    """

    @property
    def total(self) -> np.ndarray:
        """``noise + bias + variance``."""
        return self.noise + self.bias + self.variance

    noise: np.ndarray
    bias: np.ndarray
    variance: np.ndarray
    expected_loss: np.ndarray
    target_mean: np.ndarray
    dual_mean: np.ndarray


def _wmean(arr: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted mean over axis 0."""
    return np.tensordot(w, arr, axes=(0, 0))


def expected_loss(
    divergence, targets, predictions, target_weights=None, prediction_weights=None
) -> np.ndarray:
    """``E D(Y, V)`` for independent ``Y`` and ``V``, over all ``n * m`` pairs, in O(n + m).

    Uses ``D(y, v) = phi(y) - phi(v) - <grad phi(v), y> + <grad phi(v), v>`` and
    averages each term separately; agrees with the explicit double loop (tested).
    """
    div, Y, V, wy, wv = _samples(divergence, targets, predictions, target_weights,
                                 prediction_weights)
    return _expected_loss(div, Y, V, wy, wv, div.raw_grad(V))


def _expected_loss(div, Y, V, wy, wv, gV) -> np.ndarray:
    """Unvalidated core of :func:`expected_loss`, given ``gV = grad phi(V)``."""
    ybar = _wmean(Y, wy)
    with np.errstate(invalid="ignore"):  # 0 * log 0 = 0 (a class no draw puts mass on)
        gv_dot_v = rowsum(np.where(V == 0, 0.0, gV * V))
        gv_dot_y = rowsum(np.where(ybar == 0, 0.0, _wmean(gV, wv) * ybar))
    return (
        _wmean(div.raw_phi(Y), wy)
        - _wmean(div.raw_phi(V), wv)
        - gv_dot_y
        + _wmean(gv_dot_v, wv)
    )


def _samples(divergence, targets, predictions, target_weights, prediction_weights):
    """The divergence, the validated samples ``Y`` and ``V`` and their weights."""
    div = get_divergence(divergence)
    Y = div.validate(targets, "targets", "target")
    V = div.validate(predictions, "predictions", "prediction")
    _check_samples(Y, V)
    return (div, Y, V, sample_weights(target_weights, Y.shape[0], "target_weights"),
            sample_weights(prediction_weights, V.shape[0], "prediction_weights"))


def _check_samples(Y: np.ndarray, V: np.ndarray) -> None:
    if Y.ndim < 2:
        raise ValueError(
            f"targets: expected shape (n_samples, ..., k), got {Y.shape}"
        )
    if V.ndim < 2:
        raise ValueError(
            f"predictions: expected shape (n_samples, ..., k), got {V.shape}"
        )
    if Y.shape[1:] != V.shape[1:]:
        raise ValueError(
            f"predictions: per-sample shape {V.shape[1:]} differs from the targets' "
            f"{Y.shape[1:]}"
        )


def bias_variance_decomposition(
    divergence: str | BregmanDivergence,
    predictions,
    targets,
    prediction_weights=None,
    target_weights=None,
) -> BiasVariance:
    """Generalized bias-variance decomposition of claim C1 ({prf:ref}`lem-bias-variance`).

    Parameters
    ----------
    divergence:
        A name from :data:`~w2sg_utils.divergences.DIVERGENCES` or an instance.
    predictions:
        Independent draws of the predictor, shape ``(m, ..., k)``.
    targets:
        Independent draws of the target ``Y``, shape ``(n, ..., k)``; for an exact
        distribution pass its support here and its probabilities as ``target_weights``.
    prediction_weights, target_weights:
        Optional probabilities of each draw (default: uniform, i.e. the empirical
        distribution).

    Returns
    -------
    BiasVariance
        ``noise = E D(Y, EY)``, ``bias = D(EY, V°)``, ``variance = E D(V°, V)`` and the
        directly computed ``expected_loss = E D(Y, V)``, one value per input.
    """
    div, Y, V, wy, wv = _samples(divergence, targets, predictions, target_weights,
                                 prediction_weights)
    ybar = _wmean(Y, wy)
    gV = div.raw_grad(V)
    vdual = div.raw_grad_inv(_wmean(gV, wv))
    noise = _wmean(div.raw_divergence(Y, ybar[None]), wy)
    bias = div.raw_divergence(ybar, vdual)
    variance = _wmean(div.raw_divergence(vdual[None], V), wv)
    loss = _expected_loss(div, Y, V, wy, wv, gV)
    return BiasVariance(noise, bias, variance, loss, ybar, vdual)


@dataclass(frozen=True)
class GainIdentity(_Terms, terms=("risk_w", "risk_s", "misfit", "cross")):
    """Per-example terms of the pointwise gain identity (claim C2).

    Statement: {prf:ref}`prop-gain-identity`.

    ``risk_w = risk_s + misfit + cross`` holds exactly for every example, where
    ``risk_w = D(y, f_w)``, ``risk_s = D(y, f_s)``, ``misfit = D(f_s, f_w)`` (student
    first) and ``cross = <y - f_s, grad phi(f_s) - grad phi(f_w)>``.
    """

    risk_w: np.ndarray
    risk_s: np.ndarray
    misfit: np.ndarray
    cross: np.ndarray

    @property
    def residual(self) -> np.ndarray:
        """``risk_w - (risk_s + misfit + cross)``; zero up to rounding."""
        return self.risk_w - (self.risk_s + self.misfit + self.cross)


def gain_identity(divergence: str | BregmanDivergence, y, f_s, f_w) -> GainIdentity:
    """Terms of the pointwise gain identity of claim C2 for arrays of examples.

    Statement: {prf:ref}`prop-gain-identity`.

    ``y``, ``f_s`` and ``f_w`` broadcast against each other; the last axis holds
    coordinates (classes). Averaging the returned terms over examples gives
    ``R(f_w) = R(f_s) + M(f_s, f_w) + E <y - f_s, grad phi(f_s) - grad phi(f_w)>``.
    """
    div = get_divergence(divergence)
    y = div.validate(y, "y", "target")
    f_s = div.validate(f_s, "f_s", "prediction")
    f_w = div.validate(f_w, "f_w", "prediction")
    for a, b, names in ((y, f_s, ("y", "f_s")), (y, f_w, ("y", "f_w"))):
        check_broadcast(a, b, names)
    risk_w = div.raw_divergence(y, f_w)
    risk_s = div.raw_divergence(y, f_s)
    misfit = div.raw_divergence(f_s, f_w)
    cross = rowsum((y - f_s) * (div.raw_grad(f_s) - div.raw_grad(f_w)))
    return GainIdentity(risk_w, risk_s, misfit, cross)

