"""Risks, misfits, the residual ``eps`` and the posterior-mean teacher (claims C3-C5, Chapter 2).

Shapes. A *function* evaluated on a finite set of inputs is an array ``(..., n, k)``:
``n`` inputs ``x`` (axis ``-2``) and ``k`` coordinates (axis ``-1``; ``k = 1`` for a
scalar regression). Joint draws of the pair ``(f_w, f_s)`` stack on a leading axis of
length ``m``: ``f_w[j]`` and ``f_s[j]`` are the teacher and the student of draw ``j``.
Optional weights turn the inputs (``x_weights``, the law ``P_X``) and the draws
(``draw_weights``, the law of the training randomness) into exact distributions; without
them both are uniform, i.e. empirical (Monte Carlo) averages.

The expected misfit theorem (claim C3). With ``ybar = E[y | x]``, the test pair independent
of all training randomness and ``fbar_w`` the dual mean of ``f_w`` conditioned on the
student (``grad phi(fbar_w) = E[grad phi(f_w) | f_s]``),

    E R(f_w) - E R(f_s) = E M(f_s, f_w) + eps,
    eps = E <ybar - f_s, grad phi(f_s) - grad phi(fbar_w)>.

Claim C4: ``E[M(f_s, f_w) | f_s] = M(f_s, fbar_w) + E[M(fbar_w, f_w) | f_s]``.

Both statements hold for any conditioning sigma-algebra with respect to which ``f_s`` is
measurable (a finer one, such as "the student and the whole teacher ensemble it was
trained on", gives another valid posterior-mean teacher); :func:`posterior_mean_teacher`
takes the conditioning as a partition of the draws (``groups``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._common import as_float, check_broadcast, sample_weights
from .checks import mean_and_se
from .divergences import BregmanDivergence, get_divergence

__all__ = [
    "risk",
    "misfit",
    "cross_term",
    "posterior_mean_teacher",
    "group_dual_means",
    "dual_mean_ensembles",
    "inheritance_covariance",
    "eps_split",
    "assert_eps_split",
    "EPS_SPLIT_ALTERNATIVES",
    "project_onto_span",
    "MisfitTheorem",
    "misfit_theorem",
]


def _functions(div: BregmanDivergence, a, b, names, roles=("target", "prediction")):
    a = div.validate(a, names[0], roles[0])
    b = div.validate(b, names[1], roles[1])
    for arr, nm in ((a, names[0]), (b, names[1])):
        if arr.ndim < 2:
            raise ValueError(f"{nm}: expected shape (..., n_inputs, k), got {arr.shape}")
    if a.shape[-2:] != b.shape[-2:]:
        raise ValueError(
            f"{names[1]}: (inputs, coordinates) shape {b.shape[-2:]} differs from "
            f"{names[0]}'s {a.shape[-2:]}"
        )
    check_broadcast(a, b, names)
    return a, b


def risk(divergence, y, f, x_weights=None) -> np.ndarray:
    """Risk ``E_x D(y(x), f(x))`` of a function ``f`` on targets ``y`` (claim C3, Chapter 2).

    ``y`` and ``f`` have shape ``(..., n, k)`` and broadcast; the average is over the
    input axis ``-2`` with ``x_weights`` (default uniform). Passing ``y = ybar`` gives the
    *excess* risk: ``R(f) = E D(y, ybar) + E_x D(ybar(x), f(x))`` (claim C1 with a
    deterministic prediction), so the noise term cancels in every gain.

    Statement: {prf:ref}`thm-expected-misfit`.
    """
    div = get_divergence(divergence)
    y, f = _functions(div, y, f, ("y", "f"))
    w = sample_weights(x_weights, y.shape[-2], "x_weights")
    return div.raw_divergence(y, f) @ w


def misfit(divergence, f_s, f_w, x_weights=None) -> np.ndarray:
    """Misfit ``M(f_s, f_w) = E_x D(f_s(x), f_w(x))``, **student first** (claims C2-C4).

    Statements: {prf:ref}`prop-gain-identity`, {prf:ref}`prop-misfit-decomposition`.
    """
    div = get_divergence(divergence)
    f_s, f_w = _functions(div, f_s, f_w, ("f_s", "f_w"))
    w = sample_weights(x_weights, f_s.shape[-2], "x_weights")
    return div.raw_divergence(f_s, f_w) @ w


def cross_term(divergence, ybar, f_s, f_ref, x_weights=None) -> np.ndarray:
    """``E_x <ybar - f_s, grad phi(f_s) - grad phi(f_ref)>`` (claims C2-C3, Chapter 2).

    With ``f_ref = f_w`` this is the cross term of the pointwise gain identity (C2);
    with ``f_ref = fbar_w`` (the posterior-mean teacher) its expectation over draws is the
    residual ``eps`` of the expected misfit theorem (C3). For KL the gradient is defined up
    to an additive constant, which cancels because ``ybar - f_s`` sums to zero.

    Statements: {prf:ref}`prop-gain-identity`, {prf:ref}`thm-expected-misfit`.
    """
    div = get_divergence(divergence)
    ybar, f_s = _functions(div, ybar, f_s, ("ybar", "f_s"))
    f_s, f_ref = _functions(div, f_s, f_ref, ("f_s", "f_ref"), ("prediction", "prediction"))
    w = sample_weights(x_weights, f_s.shape[-2], "x_weights")
    return np.sum((ybar - f_s) * (div.raw_grad(f_s) - div.raw_grad(f_ref)), axis=-1) @ w


def posterior_mean_teacher(divergence, f_w, groups, draw_weights=None) -> np.ndarray:
    """Posterior-mean teacher ``fbar_w`` of every draw (claims C3-C4, Chapter 2).

    ``f_w`` has shape ``(m, n, k)`` (``m`` draws); ``groups`` (length ``m``, hashable
    labels) is the partition of the draws that the conditioning observes: draws with the
    same label have the same student. Returns, for each draw, the dual mean of the
    teachers in its group, weighted by ``draw_weights`` (exact distribution; default
    uniform), i.e. ``grad phi(fbar_w) = E[grad phi(f_w) | group]``.

    Statement: {prf:ref}`def-posterior-mean-teacher`.
    """
    div = get_divergence(divergence)
    f_w = div.validate(f_w, "f_w", "prediction")
    if f_w.ndim < 2:
        raise ValueError(f"f_w: expected shape (m, ..., k), got {f_w.shape}")
    m = f_w.shape[0]
    groups = np.asarray(groups)
    if groups.shape != (m,):
        raise ValueError(f"groups: expected shape ({m},), got {groups.shape}")
    w = sample_weights(draw_weights, m, "draw_weights")
    _, inv = np.unique(groups, return_inverse=True)
    inv = inv.reshape(-1)
    return group_dual_means(div, f_w, inv, w)[inv]


def group_dual_means(divergence, f_w, inv, w) -> np.ndarray:
    """Dual mean of ``f_w`` within each group ``0..max(inv)``, weighted by ``w`` (claim C4).

    ``inv`` (length ``m``) holds each draw's group as an integer ``0..G-1``; ``w``
    (length ``m``) the draws' weights. Returns ``(G, ...)``: per group,
    ``grad_phi^{-1}(sum_j w_j grad phi(f_w[j]) / sum_j w_j)``. Used by
    :func:`posterior_mean_teacher` and by the quantizer of :mod:`w2sg_utils.enumeration`.

    Statement: {prf:ref}`def-posterior-mean-teacher`.
    """
    div = get_divergence(divergence)
    f_w = np.asarray(f_w, dtype=np.float64)
    inv = np.asarray(inv)
    w = np.asarray(w, dtype=np.float64)
    if inv.shape != f_w.shape[:1] or not np.issubdtype(inv.dtype, np.integer) or inv.min() < 0:
        raise ValueError(f"inv: expected non-negative integer groups of shape {f_w.shape[:1]}")
    if w.shape != inv.shape:
        raise ValueError(f"w: expected shape {inv.shape}, got {w.shape}")
    g = div.raw_grad(f_w)
    if not np.isfinite(g).all():
        raise ValueError("f_w: dual coordinates grad phi(f_w) must be finite (e.g. no zero probabilities)")
    n_groups = inv.max() + 1
    mass = np.bincount(inv, weights=w, minlength=n_groups)
    if (mass <= 0).any():
        raise ValueError("draw_weights: every group needs positive probability")
    flat = g.reshape(g.shape[0], -1) * w[:, None]
    sums = np.zeros((n_groups, flat.shape[1]))
    np.add.at(sums, inv, flat)
    return div.raw_grad_inv((sums / mass[:, None]).reshape((n_groups,) + f_w.shape[1:]))


def dual_mean_ensembles(divergence, members, k: int) -> np.ndarray:
    """Ensembles of ``k`` consecutive members combined by the dual mean (claim C4).

    ``members`` has shape ``(m, ..., c)`` with ``m`` a multiple of ``k``; returns shape
    ``(m // k, ..., c)``: arithmetic mean for squared loss, softmax of the mean logits
    (normalised geometric mean) for KL.

    Statement: {prf:ref}`prop-misfit-decomposition`.
    """
    div = get_divergence(divergence)
    members = div.validate(members, "members", "prediction")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k: must be a positive integer, got {k!r}")
    m = members.shape[0]
    if members.ndim < 2 or m % k:
        raise ValueError(f"k: the number of members ({m}) must be a multiple of k={k}")
    grouped = members.reshape((m // k, k) + members.shape[1:])
    return div.dual_mean(grouped, axis=1, name="members")


def project_onto_span(f, features, x_weights=None) -> np.ndarray:
    """Least-squares projection of ``f`` onto ``span(features)`` in ``L2(P_X)`` (claim C5b).

    The convex (linear) student class of Charikar et al.: ``features`` has shape
    ``(n, p)``; ``f`` has shape ``(..., n, k)``. Squared loss only.

    Statement: {prf:ref}`prop-convex-pointwise`.
    """
    f = as_float(f, "f")
    phi = as_float(features, "features")
    if phi.ndim != 2 or f.ndim < 2 or phi.shape[0] != f.shape[-2]:
        raise ValueError(f"features: expected shape ({f.shape[-2] if f.ndim >= 2 else 'n'}, p), got {phi.shape}")
    w = sample_weights(x_weights, phi.shape[0], "x_weights")
    gram = phi.T @ (w[:, None] * phi)
    coef = np.linalg.solve(gram, np.einsum("np,...nk->...pk", w[:, None] * phi, f))
    return np.einsum("np,...pk->...nk", phi, coef)


@dataclass(frozen=True)
class MisfitTheorem:
    """Per-draw terms of the expected misfit theorem (C3) and the decomposition (C4).

    Every array has one value per draw (shape ``(m,)``); ``draw_weights`` is their law.
    Risks are ``noise + E_x D(ybar, f)``. ``cross`` is the C2 cross term with the actual
    teacher; ``eps_draw``, ``misfit_to_posterior`` (``M(f_s, fbar_w)``) and
    ``teacher_spread`` (``M(fbar_w, f_w)``) need the posterior-mean teacher and are
    ``None`` without it.

    Statements: {prf:ref}`thm-expected-misfit`, {prf:ref}`cor-posterior-mean-gain`.
    """

    risk_w: np.ndarray
    risk_s: np.ndarray
    misfit: np.ndarray
    cross: np.ndarray
    draw_weights: np.ndarray
    eps_draw: np.ndarray | None = None
    misfit_to_posterior: np.ndarray | None = None
    teacher_spread: np.ndarray | None = None
    fbar_w: np.ndarray | None = field(default=None, repr=False)

    def expect(self, name: str) -> float:
        """Expectation over draws of the per-draw term ``name``."""
        arr = getattr(self, name)
        if arr is None:
            raise ValueError(f"name: {name!r} needs the posterior-mean teacher (pass fbar_w or groups)")
        return float(self.draw_weights @ arr)

    def mean_se(self, name: str) -> tuple[float, float]:
        """Monte Carlo mean and standard error of ``name`` (uniform draws only)."""
        arr = getattr(self, name)
        if arr is None:
            raise ValueError(f"name: {name!r} needs the posterior-mean teacher")
        if not np.allclose(self.draw_weights, self.draw_weights[0]):
            raise ValueError("draw_weights: standard errors need i.i.d. (uniform) draws")
        mu, se = mean_and_se(arr)
        return float(mu), float(se)

    @property
    def gain(self) -> float:
        """``G = E R(f_w) - E R(f_s)``."""
        return self.expect("risk_w") - self.expect("risk_s")

    @property
    def expected_misfit(self) -> float:
        """``E M(f_s, f_w)``."""
        return self.expect("misfit")

    @property
    def eps(self) -> float:
        """``eps = E <ybar - f_s, grad phi(f_s) - grad phi(fbar_w)>`` (claim C3)."""
        return self.expect("eps_draw")

    @property
    def residual(self) -> float:
        """``G - E M - eps``; zero up to rounding for an exact distribution (claim C3)."""
        return self.gain - self.expected_misfit - self.eps

    def summary(self) -> dict[str, float]:
        """Gain, expected misfit, ``eps`` (when available) and the risks, as floats."""
        out = {
            "risk_w": self.expect("risk_w"),
            "risk_s": self.expect("risk_s"),
            "gain": self.gain,
            "misfit": self.expected_misfit,
            "cross": self.expect("cross"),
        }
        if self.eps_draw is not None:
            out.update(
                eps=self.eps,
                misfit_to_posterior=self.expect("misfit_to_posterior"),
                teacher_spread=self.expect("teacher_spread"),
            )
        return out


def misfit_theorem(
    divergence,
    ybar,
    f_s,
    f_w,
    fbar_w=None,
    groups=None,
    draw_weights=None,
    x_weights=None,
    noise: float = 0.0,
) -> MisfitTheorem:
    """Terms of the expected misfit theorem (claim C3) and its decomposition (claim C4).

    Parameters
    ----------
    ybar:
        Conditional mean ``E[y | x]``, shape ``(n, k)``.
    f_s, f_w:
        Joint draws of student and teacher on the inputs, shape ``(m, n, k)``.
    fbar_w:
        Posterior-mean teacher of each draw, shape ``(m, n, k)``; or give ``groups`` (the
        partition the student reveals) to compute it with :func:`posterior_mean_teacher`.
    draw_weights:
        Probabilities of the draws (exact enumeration); default uniform (Monte Carlo).
    x_weights:
        The law ``P_X`` on the ``n`` inputs; default uniform.
    noise:
        ``E D(y, ybar)``, added to both risks (it cancels in the gain).

    Statements: {prf:ref}`thm-expected-misfit`, {prf:ref}`cor-posterior-mean-gain`, {prf:ref}`cor-eps-bound`.
    """
    div = get_divergence(divergence)
    f_s, f_w = _functions(div, f_s, f_w, ("f_s", "f_w"), ("prediction", "prediction"))
    if f_s.shape != f_w.shape or f_s.ndim != 3:
        raise ValueError(f"f_s: expected shape (m, n, k) equal to f_w's {f_w.shape}, got {f_s.shape}")
    ybar = div.validate(ybar, "ybar", "target")
    if ybar.shape != f_s.shape[1:]:
        raise ValueError(f"ybar: expected shape {f_s.shape[1:]}, got {ybar.shape}")
    if not np.isfinite(noise):
        raise ValueError(f"noise: must be finite, got {noise}")
    w = sample_weights(draw_weights, f_s.shape[0], "draw_weights")
    if fbar_w is None and groups is not None:
        fbar_w = posterior_mean_teacher(div, f_w, groups, draw_weights=w)
    terms = dict(
        risk_w=noise + risk(div, ybar, f_w, x_weights),
        risk_s=noise + risk(div, ybar, f_s, x_weights),
        misfit=misfit(div, f_s, f_w, x_weights),
        cross=cross_term(div, ybar, f_s, f_w, x_weights),
        draw_weights=w,
    )
    if fbar_w is not None:
        fbar_w = div.validate(fbar_w, "fbar_w", "prediction")
        if fbar_w.shape != f_w.shape:
            raise ValueError(f"fbar_w: expected shape {f_w.shape}, got {fbar_w.shape}")
        terms.update(
            eps_draw=cross_term(div, ybar, f_s, fbar_w, x_weights),
            misfit_to_posterior=misfit(div, f_s, fbar_w, x_weights),
            teacher_spread=misfit(div, fbar_w, f_w, x_weights),
            fbar_w=fbar_w,
        )
    return MisfitTheorem(**terms)


def inheritance_covariance(divergence, f_s, f_w, draw_weights=None, x_weights=None,
                           swap: bool = False, per_draw: bool = False):
    """``C = E <f_s - E f_s, grad phi(f_w) - E grad phi(f_w)>`` (claim C3, Chapter 2).

    The covariance, over draws and averaged over inputs, between the student and its own
    teacher's dual coordinates: the part of ``eps`` that the unconditional dual mean
    misses. ``f_s``, ``f_w``: ``(m, n, k)``. With ``draw_weights`` (an exact law) it is
    exact; without, the unbiased sample covariance (divisor ``m - 1``). ``swap=True``
    computes ``<grad phi(f_s) - E, f_w - E>`` instead (a planted bug, used to measure the
    power of :func:`assert_eps_split`; identical for squared loss). ``per_draw=True``
    returns the ``m`` per-draw terms whose (weighted) mean is ``C``, for an interval.

    Statement: {prf:ref}`prop-eps-split`.
    """
    div = get_divergence(divergence)
    f_s, f_w = _functions(div, f_s, f_w, ("f_s", "f_w"), ("prediction", "prediction"))
    if f_s.ndim != 3 or f_s.shape != f_w.shape:
        raise ValueError(f"f_w: expected shape (m, n, k) equal to f_s's, got {f_w.shape}")
    m = f_s.shape[0]
    exact = draw_weights is not None
    w = sample_weights(draw_weights, m, "draw_weights")
    wx = sample_weights(x_weights, f_s.shape[-2], "x_weights")
    a, b = (div.raw_grad(f_s), f_w) if swap else (f_s, div.raw_grad(f_w))
    a = a - np.tensordot(w, a, axes=1)
    b = b - np.tensordot(w, b, axes=1)
    terms = (np.sum(a * b, axis=-1) @ wx) * (1.0 if exact else m / (m - 1))
    return terms if per_draw else float(w @ terms)


#: Wrong versions of the split ``eps = eps0 + C`` (planted bugs; Chapter 2 measures that
#: :func:`assert_eps_split` rejects each).
EPS_SPLIT_ALTERNATIVES = ("C = 0", "C / 2", "-C", "swapped arguments", "arithmetic mean")


def eps_split(divergence, ybar, f_s, f_w, draw_weights=None, x_weights=None,
              alternative: str | None = None) -> tuple[float, float]:
    """``(eps0, C)`` of the split ``eps = eps0 + C`` (claim C3, Chapter 2).

    ``eps0 = E <ybar - f_s, grad phi(f_s) - grad phi(f_w°)>`` with ``f_w°`` the dual mean
    of *all* teachers (the posterior mean given no information), and ``C`` from
    :func:`inheritance_covariance`. ``alternative`` (one of
    :data:`EPS_SPLIT_ALTERNATIVES`) computes a planted wrong version: ``C`` set to 0,
    halved (a dropped factor), negated, with its arguments swapped, or ``eps0`` against
    the arithmetic mean of the teachers in place of their dual mean.

    Statement: {prf:ref}`prop-eps-split`.
    """
    if alternative is not None and alternative not in EPS_SPLIT_ALTERNATIVES:
        raise ValueError(f"alternative: unknown {alternative!r}; valid: {EPS_SPLIT_ALTERNATIVES}")
    div = get_divergence(divergence)
    w = sample_weights(draw_weights, np.shape(f_w)[0], "draw_weights")
    centre = (np.tensordot(w, as_float(f_w, "f_w"), axes=1) if alternative == "arithmetic mean"
              else div.dual_mean(f_w, weights=w))
    eps0 = float(w @ cross_term(div, ybar, f_s, centre[None], x_weights))
    c = inheritance_covariance(div, f_s, f_w, draw_weights, x_weights,
                               swap=alternative == "swapped arguments")
    factor = {"C = 0": 0.0, "C / 2": 0.5, "-C": -1.0}.get(alternative, 1.0)
    return eps0, factor * c


def assert_eps_split(divergence, ybar, f_s, f_w, eps: float, draw_weights,
                    x_weights=None, alternative: str | None = None, tol: float = 1e-10) -> float:
    """Assert ``eps = eps0 + C`` for an exact law of draws (claim C3, Chapter 2).

    ``eps`` comes from elsewhere (e.g. :func:`misfit_theorem`, through the posterior-mean
    teacher); ``eps0`` and ``C`` from :func:`eps_split` (``alternative`` plants a bug).
    With exact expectations the split is algebra, so the tolerance is rounding
    (``tol``, relative to the size of the terms). Returns ``|eps - eps0 - C|``.

    Statement: {prf:ref}`prop-eps-split`.
    """
    if draw_weights is None:
        raise ValueError("draw_weights: the exact check needs the law of the draws")
    eps0, c = eps_split(divergence, ybar, f_s, f_w, draw_weights, x_weights, alternative)
    gap = abs(eps - eps0 - c)
    scale = 1.0 + abs(eps) + abs(eps0) + abs(c)
    if not gap <= tol * scale:
        raise AssertionError(f"eps = eps0 + C{'' if alternative is None else f' ({alternative})'}"
                             f": |{eps:.6g} - {eps0:.6g} - {c:.6g}| = {gap:.3g} > {tol * scale:.3g}")
    return gap
