"""Power of Chapter 2's check of ``eps = eps0 + C`` (prop-eps-split), at the chapter's
default parameters and at the CI seed: the check passes on the truth and rejects every
named wrong version of ``C`` (``w2sg_utils.misfit.EPS_SPLIT_ALTERNATIVES``).

The example is built as the chapter builds it (same draws from the seed, the package's
``exact_teachers`` and ``bregman_quantizer``); the check is the package's
``assert_eps_split``, the code the chapter runs. Students: the chapter's mimic and dual
quantizer, and (squared loss) a quantizer shrunk towards the mean teacher.
"""

import numpy as np
import pytest
from scipy.special import softmax

from w2sg_utils.enumeration import bregman_quantizer, exact_teachers
from w2sg_utils.misfit import (
    EPS_SPLIT_ALTERNATIVES,
    assert_eps_split,
    eps_split,
    inheritance_covariance,
    misfit_theorem,
)

# the chapter's defaults (notebooks/ch02_misfit.md, parameters cell)
N_INPUTS, N_TRAIN, N_CLASSES, N_CELLS = 4, 4, 3, 6
SEEDS = [0, 20261128]
# alternatives that are bugs for each loss (for squared loss the swapped covariance and
# the arithmetic mean coincide with the truth)
KL_ONLY = ("swapped arguments", "arithmetic mean")


def chapter_students(seed):
    """(loss, ybar, f_s, f_w, eps, w, p_x) for the chapter's four students, two losses."""
    rng = np.random.default_rng(seed)
    x_grid = np.linspace(-1, 1, N_INPUTS)
    p_x = rng.dirichlet(np.full(N_INPUTS, 5.0))
    coef = rng.normal(size=2)
    ybar = {"squared": (coef[0] + coef[1] * x_grid)[:, None],
            "kl": softmax(1.5 * rng.normal(size=(N_INPUTS, N_CLASSES)), axis=-1)}
    out = []
    for loss in ("squared", "kl"):
        f_w, w = exact_teachers(loss, p_x, ybar[loss], N_TRAIN, 1.0)
        cells, code = bregman_quantizer(loss, f_w, N_CELLS, weights=w, x_weights=p_x,
                                        seed=seed)
        shrunk = 0.5 * code[cells] + 0.5 * np.tensordot(w, f_w, axes=1)[None]
        for f_s, groups in [(f_w, np.arange(len(w))), (code[cells], cells),
                            (shrunk if loss == "squared" else code[cells], cells)]:
            th = misfit_theorem(loss, ybar[loss], f_s, f_w, groups=groups, draw_weights=w,
                                x_weights=p_x)
            out.append((loss, ybar[loss], f_s, f_w, th.eps, w, p_x))
    return out


@pytest.fixture(scope="module", params=SEEDS)
def students(request):
    return chapter_students(request.param)


def test_truth_passes(students):
    for loss, ybar, f_s, f_w, eps, w, p_x in students:
        assert_eps_split(loss, ybar, f_s, f_w, eps, w, p_x)


@pytest.mark.parametrize("alternative", EPS_SPLIT_ALTERNATIVES)
def test_every_wrong_c_is_rejected(students, alternative):
    """The chapter's check runs over every student (of the losses where the alternative
    is a bug) and fails if one fails; a swapped covariance is no bug for the mimic
    (``f_s = f_w``), so it must fail on another student."""
    losses = ("kl",) if alternative in KL_ONLY else ("squared", "kl")
    rejected = []
    for loss, ybar, f_s, f_w, eps, w, p_x in students:
        if loss in losses:
            try:
                assert_eps_split(loss, ybar, f_s, f_w, eps, w, p_x, alternative=alternative)
                rejected.append(False)
            except AssertionError:
                rejected.append(True)
    assert any(rejected)
    if alternative in ("C = 0", "C / 2", "-C"):
        assert all(rejected)


def test_covariance_is_a_plain_covariance():
    """C against a five-line covariance, unweighted (divisor m - 1) and weighted."""
    rng = np.random.default_rng(3)
    f_s, f_w = rng.normal(size=(2, 50, 7, 2))
    got = inheritance_covariance("squared", f_s, f_w)
    plain = np.mean([sum(np.cov(f_s[:, i, j], 2 * f_w[:, i, j])[0, 1] for j in range(2))
                     for i in range(7)])
    assert np.isclose(got, plain, rtol=1e-12)
    w = rng.dirichlet(np.ones(50))
    cs, cw = f_s - np.tensordot(w, f_s, 1), 2 * (f_w - np.tensordot(w, f_w, 1))
    assert np.isclose(inheritance_covariance("squared", f_s, f_w, draw_weights=w),
                      np.mean(np.einsum("m,mnk,mnk->n", w, cs, cw)), rtol=1e-12)


def test_eps_split_refuses_unknown_alternatives():
    with pytest.raises(ValueError, match="alternative"):
        eps_split("squared", np.zeros((3, 1)), np.zeros((2, 3, 1)), np.zeros((2, 3, 1)),
                  alternative="typo")
