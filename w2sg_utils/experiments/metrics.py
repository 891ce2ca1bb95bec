"""Per-run metrics and summaries over seeds (claims C2, C7, C9; Chapter 5)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .models import sigmoid

__all__ = ["P_CLIP", "clip_probs", "pgr", "accuracy", "pair_metrics", "summarize",
           "bias_variance_table"]

P_CLIP = 1e-12


def clip_probs(p):
    """Probabilities clipped to ``[P_CLIP, 1 - P_CLIP]`` (finite logs)."""
    return np.clip(p, P_CLIP, 1 - P_CLIP)


def pgr(acc_student: float, acc_weak: float, acc_ceiling: float) -> float:
    """Performance gap recovered ``(acc_s - acc_w) / (acc_c - acc_w)`` (Burns et al.).

    ``nan`` when the ceiling does not beat the teacher (the ratio is meaningless).
    """
    gap = acc_ceiling - acc_weak
    return float((acc_student - acc_weak) / gap) if gap > 0 else float("nan")


def accuracy(z, label) -> float:
    """Pairwise accuracy: ``z > 0`` predicts ``a``; an exact tie counts one half."""
    z, label = np.asarray(z, float), np.asarray(label)
    return float(np.mean(np.where(z == 0, 0.5, (z > 0) == (label == 1))))


def pair_metrics(z_s, z_w, label) -> dict:
    """Per-run metrics on test pairs (claims C2, C7, C9), from the logits.

    ``acc``; ``misfit_kl_sw = mean KL(p_s || p_w)`` (the Bregman misfit, student first)
    and ``misfit_kl_ws = mean KL(p_w || p_s)``; ``entropy`` (mean binary entropy of
    ``p_s``, nats); ``agreement`` of the hard decisions; the test cross-entropies
    ``risk_s`` and ``risk_w`` against the true labels and the cross term of the gain
    identity ``mean (p_s - y)(z_w - z_s)``, each computed on its own, so that
    ``risk_w = risk_s + misfit_kl_sw + cross`` is a check (claim C2). The binary KL,
    entropy and cross-entropy are those of Chapter 6 (:mod:`w2sg_utils.ensemble_terms`,
    stable at any logit: no clipping).

    Statements: {prf:ref}`prop-gain-identity`, {prf:ref}`cor-entropy-gain`.
    """
    from ..ensemble_terms import binary_ce, binary_entropy, binary_kl_logits

    z_s, z_w = np.asarray(z_s, float), np.asarray(z_w, float)
    y = np.asarray(label, float)
    return {
        "acc": accuracy(z_s, label),
        "misfit_kl_sw": float(np.mean(binary_kl_logits(z_s, z_w))),
        "misfit_kl_ws": float(np.mean(binary_kl_logits(z_w, z_s))),
        "entropy": float(np.mean(binary_entropy(z_s))),
        "agreement": float(np.mean((z_s > 0) == (z_w > 0))),
        "risk_s": float(np.mean(binary_ce(y, z_s))),
        "risk_w": float(np.mean(binary_ce(y, z_w))),
        "cross": float(np.mean((sigmoid(z_s) - y) * (z_w - z_s))),
    }


def summarize(df: pd.DataFrame, by, metrics=("acc", "pgr"), level: float = 0.95) -> pd.DataFrame:
    """Mean, standard error and a Student-t ``level`` interval over seeds, per group.

    Returns one row per group with ``n`` (runs), and per metric ``<metric>_mean``,
    ``_se``, ``_lo``, ``_hi``, ``<metric>_n`` (runs with a finite value, the ones used) and
    ``<metric>_nan`` (runs whose value is NaN, e.g. a PGR where the ceiling does not beat
    the teacher: counted and reported, never silently dropped). The interval is over
    seeds only, *conditional on the test pairs*, which every seed shares; for intervals
    that include test-set sampling use :mod:`w2sg_utils.experiments.run_intervals`.
    """
    from scipy import stats

    if not 0 < level < 1:
        raise ValueError(f"level: must lie in (0, 1), got {level!r}")
    by = [by] if isinstance(by, str) else list(by)
    out = []
    for key, g in df.groupby(by, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        r = dict(zip(by, key))
        r["n"] = len(g)
        for m in metrics:
            x = g[m].to_numpy(float)
            finite = np.isfinite(x)
            x = x[finite]
            mean = float(np.mean(x)) if len(x) else np.nan
            se = float(np.std(x, ddof=1) / np.sqrt(len(x))) if len(x) > 1 else np.nan
            half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * se) if len(x) > 1 else np.nan
            r |= {f"{m}_mean": mean, f"{m}_se": se, f"{m}_lo": mean - half, f"{m}_hi": mean + half,
                  f"{m}_n": int(finite.sum()), f"{m}_nan": int((~finite).sum())}
        out.append(r)
    return pd.DataFrame(out)


def bias_variance_table(df: pd.DataFrame) -> pd.DataFrame:
    """The ``bias_variance`` rows expanded to one row per (seed, model, term)."""
    rows = []
    for _, r in df[df["stage"] == "bias_variance"].iterrows():
        for k, v in json.loads(r["bv"]).items():
            model, term = k.split("__")
            rows.append({"seed": r["seed"], "model": model, "term": term, "value": v})
    return pd.DataFrame(rows)
