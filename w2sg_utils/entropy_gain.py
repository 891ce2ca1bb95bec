"""Chapter 4's statistical tests, with their power measured (claims C3, C7).

Every test here compares per-example differences ``d`` with zero: ``d`` has shape
``(G, R, n)`` (``G`` comparisons, e.g. temperatures; ``R`` repetitions with their own
test samples; ``n`` i.i.d. test examples per repetition, conditionally on the trained
models). Comparison ``g`` is rejected when ``|z_g| > z_crit``, with
``z_g = mean(d_g) / se(d_g)`` and the standard error from the examples
(``se^2 = sum_r var_r / n / R^2``). A check *passes* when no comparison is rejected.

The power of a check against a wrong alternative (a planted bug, or a wrong reading of a
statement) is the probability that the check fails when the alternative's ``d`` is fed
to it; :func:`bootstrap_power` measures it by resampling the test examples of each
repetition (``n_boot`` resamples).

* :func:`residual_differences`: the view-noise teacher's residual,
  ``gain - misfit - eps``, for a sweep of students ({prf:ref}`prop-noisy-view-posterior-mean`);
  alternatives ``eps = 0``, ``eps / 2``, ``-eps`` and the forward misfit.
* :func:`temperature_differences`: the change of the gain when the student's logits are
  divided by a temperature, measured from the risks against the Bayes posterior, against
  the prediction of {prf:ref}`prop-temperature-gain` from held-out labelled data;
  alternatives: "a nat of entropy is a nat of gain", "the gain follows the misfit" and
  "no effect".
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax
from scipy.stats import norm

from ._common import positive_int
from .gaussian_classes import w2s_terms

__all__ = [
    "bonferroni_z",
    "z_scores",
    "assert_no_rejection",
    "bootstrap_power",
    "residual_differences",
    "RESIDUAL_ALTERNATIVES",
    "temperature_differences",
    "TEMPERATURE_ALTERNATIVES",
    "experiment_differences",
    "EXPERIMENT_ALTERNATIVES",
    "EXPERIMENT_KEYS",
]

RESIDUAL_ALTERNATIVES = ("eps = 0", "eps / 2", "-eps", "forward misfit")
TEMPERATURE_ALTERNATIVES = ("a nat of entropy is a nat of gain", "gain follows the misfit",
                            "no effect")
EXPERIMENT_ALTERNATIVES = {"residual": ("eps = 0", "-eps"),
                           "decomposition": ("no teacher variance", "no distance to fbar_w")}
#: the per-example terms of :func:`~w2sg_utils.gaussian_classes.w2s_terms` that
#: :func:`experiment_differences` needs
EXPERIMENT_KEYS = ("cross", "eps", "misfit", "dist_pm", "variance_w")


def bonferroni_z(n_comparisons: int, alpha: float = 1e-3) -> float:
    """Two-sided normal critical value for ``n_comparisons`` at family-wise ``alpha``.

    Statement: {prf:ref}`prop-temperature-gain` (the tests of Chapter 4 use it).
    """
    n_comparisons = positive_int(n_comparisons, "n_comparisons")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must lie in (0, 1), got {alpha!r}")
    return float(norm.isf(alpha / (2 * n_comparisons)))


def _as_grn(d) -> np.ndarray:
    d = np.asarray(d, dtype=np.float64)
    if d.ndim == 2:
        d = d[:, None]
    if d.ndim != 3 or d.shape[-1] < 2:
        raise ValueError(f"d: expected shape (G, R, n) with n >= 2, got {d.shape}")
    if not np.all(np.isfinite(d)):
        raise ValueError("d: must be finite")
    return d


def z_scores(d) -> np.ndarray:
    """``z_g = mean(d_g) / se(d_g)`` for each comparison ``g`` of ``d`` ``(G, R, n)``.

    Statement: {prf:ref}`prop-temperature-gain`.
    """
    d = _as_grn(d)
    n, R = d.shape[-1], d.shape[1]
    se = np.sqrt(np.sum(d.var(axis=-1, ddof=1), axis=1) / n) / R
    m = d.mean(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(se > 0, m / np.where(se > 0, se, 1.0), np.where(m == 0, 0.0, np.inf))


def assert_no_rejection(d, z_crit: float, what: str = "check") -> float:
    """Assert ``max_g |z_g| <= z_crit`` (the check passes); return ``max |z|``.

    Statement: {prf:ref}`prop-temperature-gain`.
    """
    z = np.abs(z_scores(d))
    worst = int(np.argmax(z))
    if not z[worst] <= z_crit:
        raise AssertionError(f"{what}: comparison {worst} has |z| = {z[worst]:.2f} > {z_crit:.2f}")
    return float(z[worst])


def bootstrap_power(alternatives: dict, z_crit: float, n_boot: int = 200,
                    seed: int = 0) -> dict[str, float]:
    """Per alternative, the fraction of bootstrap resamples on which the check fails.

    ``alternatives`` maps a name to the differences ``d`` ``(G, R, n)`` that the check
    would see under that alternative (all with the same ``R`` and ``n``). The examples of
    each repetition are resampled with replacement, the same resample for every
    comparison and every alternative (which keeps their dependence); the check fails when
    some ``|z_g| > z_crit``. This is the power against each alternative.

    Statement: {prf:ref}`prop-temperature-gain`.
    """
    ds = {name: _as_grn(d) for name, d in alternatives.items()}
    shapes = {d.shape[1:] for d in ds.values()}
    if len(shapes) != 1:
        raise ValueError(f"alternatives: all need the same (R, n), got {sorted(shapes)}")
    n_boot = positive_int(n_boot, "n_boot")
    (R, n), = shapes
    rng = np.random.default_rng(seed)
    s1 = {name: 0.0 for name in ds}
    s2 = {name: 0.0 for name in ds}
    offsets = (np.arange(n_boot) * n)[:, None]
    for r in range(R):
        idx = rng.integers(0, n, (n_boot, n)) + offsets
        counts = np.bincount(idx.ravel(), minlength=n_boot * n).reshape(n_boot, n).T
        counts = counts.astype(np.float64)  # (n, B)
        for name, d in ds.items():
            x = np.ascontiguousarray(d[:, r])
            mean = x @ counts / n
            var = (x**2 @ counts / n - mean**2) * n / (n - 1)
            s1[name] = s1[name] + mean / R
            s2[name] = s2[name] + var / n / R**2
    out = {}
    for name in ds:
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.abs(s1[name]) / np.sqrt(s2[name])
        out[name] = float(np.mean(np.any(z > z_crit, axis=0)))
    return out


def residual_differences(terms: list[dict], alternative: str | None = None) -> np.ndarray:
    """Per-example ``gain - misfit - eps`` for each student of a sweep (claim C3).

    ``terms``: one :func:`~w2sg_utils.gaussian_classes.w2s_terms` dict per student (same
    test examples). Under {prf:ref}`prop-noisy-view-posterior-mean` each row has mean
    zero. ``alternative`` (one of :data:`RESIDUAL_ALTERNATIVES`) plants a wrong version:
    ``eps`` replaced by 0, halved or negated, or the misfit replaced by the forward KL
    ``KL(f_w || f_s)``. Returns ``(G, n)``.

    Statement: {prf:ref}`prop-noisy-view-posterior-mean`.
    """
    if alternative is not None and alternative not in RESIDUAL_ALTERNATIVES:
        raise ValueError(f"alternative: unknown {alternative!r}; valid: {RESIDUAL_ALTERNATIVES}")
    factor = {"eps = 0": 0.0, "eps / 2": 0.5, "-eps": -1.0}.get(alternative, 1.0)
    key = "misfit_fwd" if alternative == "forward misfit" else "misfit"
    return np.stack([t["risk_w"] - t["risk_s"] - t[key] - factor * t["eps"] for t in terms])


def temperature_differences(logits_test, y_test, log_ybar_test, logp_w, logp_wbar,
                            logits_held, y_held, taus) -> dict:
    """Measured minus predicted change of the gain under a temperature (claim C7).

    The student ``softmax(z / tau)`` with fixed logits ``z``. On the test sample the
    change ``gain(tau) - gain(1)`` is measured from the risks against the Bayes posterior
    ``log_ybar_test`` (with the teacher ``logp_w`` and posterior-mean teacher
    ``logp_wbar``, through :func:`~w2sg_utils.gaussian_classes.w2s_terms`). The statement
    {prf:ref}`prop-temperature-gain` predicts it as ``E CE(y, f^1) - E CE(y, f^tau)`` on
    an independent held-out sample with true labels (``logits_held``, ``y_held``, the same
    size). Example ``i`` of the two samples is paired arbitrarily, so the per-example
    differences are i.i.d. with the two-sample variance.

    Returns ``{alternative: (len(taus), n) array}``: key ``None`` for the statement, and
    for each of :data:`TEMPERATURE_ALTERNATIVES` the measured change minus a wrong
    prediction computed on the test sample: ``H(f^1) - H(f^tau)`` (the entropy shed, RCE
    and eps held fixed), ``misfit(tau) - misfit(1)`` (eps held fixed), or 0. Also key
    ``"measured"``: the measured change itself, and ``"entropy"``: ``H(f^tau) - H(f^1)``.

    Statement: {prf:ref}`prop-temperature-gain`.
    """
    z, zh = np.asarray(logits_test, np.float64), np.asarray(logits_held, np.float64)
    if z.shape != zh.shape:
        raise ValueError(f"logits_held: expected shape {z.shape} (as logits_test), got {zh.shape}")
    taus = np.asarray(taus, dtype=np.float64)
    if taus.ndim != 1 or np.any(taus <= 0):
        raise ValueError("taus: must be a 1-d array of positive temperatures")
    idx = np.arange(len(y_held))

    def at(tau):
        t = w2s_terms(y_test, log_ybar_test, log_softmax(z / tau, axis=-1), logp_w, logp_wbar)
        return t, -log_softmax(zh / tau, axis=-1)[idx, y_held]

    t1, ce1 = at(1.0)
    names = (None, *TEMPERATURE_ALTERNATIVES, "measured", "entropy")
    out = {name: [] for name in names}
    for tau in taus:
        t, ce = at(tau)
        measured = t1["risk_s"] - t["risk_s"]  # the teacher's risk cancels
        predicted = {None: ce1 - ce,
                     "a nat of entropy is a nat of gain": t1["entropy_s"] - t["entropy_s"],
                     "gain follows the misfit": t["misfit"] - t1["misfit"],
                     "no effect": np.zeros_like(measured)}
        for name, p in predicted.items():
            out[name].append(measured - p)
        out["measured"].append(measured)
        out["entropy"].append(t["entropy_s"] - t1["entropy_s"])
    return {name: np.stack(v) for name, v in out.items()}


def experiment_differences(terms, check: str, alternative: str | None = None) -> np.ndarray:
    """Per-example differences of the per-run checks of Chapter 4's experiment (C3, C4).

    ``terms[g][r]``: for objective ``g`` and repetition ``r``, a dict with (at least)
    the :data:`EXPERIMENT_KEYS` arrays of :func:`~w2sg_utils.gaussian_classes.w2s_terms`
    on that repetition's ``n`` test examples. ``check="residual"``: ``cross - eps``,
    of mean zero by {prf:ref}`prop-noisy-view-posterior-mean` (alternatives ``eps = 0``,
    ``-eps``). ``check="decomposition"``: ``misfit - dist_pm - variance_w``, of mean zero
    by {prf:ref}`prop-misfit-decomposition` (alternatives: the teacher's variance or the
    distance to the posterior-mean teacher dropped). Returns ``(G, R, n)``.

    Statement: {prf:ref}`prop-noisy-view-posterior-mean`.
    """
    if check not in EXPERIMENT_ALTERNATIVES:
        raise ValueError(f"check: must be one of {sorted(EXPERIMENT_ALTERNATIVES)}, got {check!r}")
    if alternative is not None and alternative not in EXPERIMENT_ALTERNATIVES[check]:
        raise ValueError(f"alternative: unknown {alternative!r} for {check!r}; valid: "
                         f"{EXPERIMENT_ALTERNATIVES[check]}")

    def one(t):
        if check == "residual":
            factor = {"eps = 0": 0.0, "-eps": -1.0}.get(alternative, 1.0)
            return t["cross"] - factor * t["eps"]
        keep = {"no teacher variance": (1.0, 0.0),
                "no distance to fbar_w": (0.0, 1.0)}.get(alternative, (1.0, 1.0))
        return t["misfit"] - keep[0] * t["dist_pm"] - keep[1] * t["variance_w"]

    return np.stack([np.stack([one(t) for t in reps]) for reps in terms])
