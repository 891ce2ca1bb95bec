"""Falsifiability: each chapter's main check fails when fed a plausibly wrong quantity.

A check that cannot fail proves nothing (STYLE item 13). For every identity or bound that
chapters 2-4 assert, these tests plant a bug of the kind a mutation would (a misfit with
its arguments swapped, the arithmetic mean for the dual mean, a dropped factor, a sign
error, eps from the unconditional mean, eps against the teacher instead of the posterior
mean) and assert that the check raises.
"""

import numpy as np
import pytest

from tests.test_rf_posterior import measure
from w2sg_utils.checks import z_for_samples
from w2sg_utils.rf_posterior import check_posterior_identities

# ---------------------------------------------------------------- Chapter 3 (claim C6)

RF_REPS, RF_LAM = 120, 3e-2


@pytest.fixture(scope="module")
def rf_right():
    return measure(RF_REPS, RF_LAM)


def test_rf_check_passes_on_the_right_quantities(rf_right):
    check_posterior_identities(rf_right, z=z_for_samples(RF_REPS))


@pytest.mark.parametrize("bug", ["posterior is the teacher", "posterior is the unconditional mean",
                                 "eps: dropped factor 2", "eps: sign error"])
def test_rf_check_fails_on_planted_bugs(bug):
    with pytest.raises(AssertionError):
        check_posterior_identities(measure(RF_REPS, RF_LAM, bug), z=z_for_samples(RF_REPS))


@pytest.mark.parametrize("swap", ["misfit: teacher against ybar", "teacher risk without the noise"])
def test_rf_check_fails_on_wrong_risks(rf_right, swap):
    if swap == "misfit: teacher against ybar":
        wrong = rf_right.replace(misfit=rf_right.risk_w - 0.25)
    else:
        wrong = rf_right.replace(risk_w=rf_right.risk_w - 0.25)
    with pytest.raises(AssertionError):
        check_posterior_identities(wrong, z=z_for_samples(RF_REPS))
