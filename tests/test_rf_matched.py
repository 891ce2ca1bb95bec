"""The matched student of Chapter 3 (claim C6, prop-rf-matched) against a plain reference."""

import numpy as np
import pytest

from w2sg_utils.random_features import RFTask
from w2sg_utils.rf_matched import matched_w2s

from .references import plain_rf_teacher_values

TASK = RFTask(d=4, noise_sd=0.5)
SIZES = dict(n=12, d_w=6, lam_w=1e-3, N=10, n_test=30, n_pairs=3, seed=2)
WIDTHS = [20, 40]


def plain_repetition(r, n, d_w, lam_w, N, n_test, n_pairs, seed, widths):
    """One repetition written plainly: numpy teachers, and each matched student as the
    kernel formula gbar + khat(x, X_s) khat(X_s, X_s)^+ (a - gbar(X_s))."""
    rng = np.random.default_rng([seed, r, 7])
    d = TASK.d
    X_s, X_t = rng.standard_normal((N, d)), rng.standard_normal((n_test, d))
    M_max = max(widths)
    K = n_pairs + 2 * M_max  # below 256: one chunk, so the stream order is W, X, noise
    W, X, xi = (rng.standard_normal((K, d_w, d)), rng.standard_normal((K, n, d)),
                rng.standard_normal((K, n)))

    F = plain_rf_teacher_values(TASK, np.r_[X_s, X_t], W, X, xi, lam_w)
    a, f_w = F[:n_pairs, :N], F[:n_pairs, N:]
    ybar = TASK.ybar(X_t).numpy()
    rows = []
    for M in widths:
        students = []
        for k in (0, 1):
            G = F[n_pairs + k * M_max:n_pairs + k * M_max + M]
            gbar = G.mean(0)
            Phi = (G - gbar) / np.sqrt(M - 1)  # (M, N + n_test): features as columns
            k_ss, k_ts = Phi[:, :N].T @ Phi[:, :N], Phi[:, N:].T @ Phi[:, :N]
            students.append(gbar[N:] + (a - gbar[:N]) @ np.linalg.pinv(k_ss) @ k_ts.T)
        f_s, f_s2 = students
        rows.append(dict(risk_w=0.25 + np.mean((ybar - f_w) ** 2),
                         risk_s=0.25 + np.mean((ybar - f_s) ** 2),
                         misfit=np.mean((f_s - f_w) ** 2), dist=np.mean((f_s - f_s2) ** 2) / 2))
    return rows


def test_matched_students_match_the_plain_kernel_formula():
    res = matched_w2s(TASK, widths=WIDTHS, reps=2, **SIZES)
    for r in range(2):
        for j, row in enumerate(plain_repetition(r, widths=WIDTHS, **SIZES)):
            for name, value in row.items():
                np.testing.assert_allclose(getattr(res, name)[r, j], value, rtol=1e-7,
                                           err_msg=f"{name}, repetition {r}, width {j}")
    np.testing.assert_allclose(res.gain, res.risk_w - res.risk_s)


def test_distance_follows_the_least_squares_formula_and_falls_with_width():
    """prop-rf-matched part 2: at a fixed N the distance falls as M grows, near the
    Gaussian value (the teacher is not Gaussian: within a factor of two)."""
    res = matched_w2s(TASK, widths=[20, 80], reps=6, **{**SIZES, "n_test": 60})
    dist, formula = res.dist.mean(0), res.error_formula.mean(0)
    assert dist[1] < dist[0] / 2
    assert np.all((dist > formula / 2) & (dist < 2 * formula)), (dist, formula)


@pytest.mark.parametrize("bad,match", [({"widths": [12]}, "widths"), ({"reps": 1}, "reps"),
                                       ({"n_pairs": 0}, "n_pairs"), ({"lam_w": -1.0}, "lam_w")])
def test_bad_parameters_fail_early(bad, match):
    kwargs = {**SIZES, "widths": WIDTHS, "reps": 2, **bad}
    with pytest.raises(ValueError, match=match):
        matched_w2s(TASK, **kwargs)
