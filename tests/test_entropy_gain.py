"""The statistical machinery of w2sg_utils.entropy_gain on data with known answers."""

import numpy as np
import pytest

from w2sg_utils.entropy_gain import (
    assert_no_rejection,
    bonferroni_z,
    bootstrap_power,
    experiment_differences,
    residual_differences,
    z_scores,
)


def test_z_scores_and_rejection_on_known_data():
    rng = np.random.default_rng(0)
    null = rng.normal(size=(3, 2, 4000))
    assert np.all(np.abs(z_scores(null)) < 5)
    shifted = null + np.array([0.0, 0.0, 0.2])[:, None, None]
    z = z_scores(shifted)
    # mean 0.2 with SE 1 / sqrt(8000): z about 17.9
    assert 14 < z[2] < 22
    with pytest.raises(AssertionError, match="comparison 2"):
        assert_no_rejection(shifted, 4.0)
    power = bootstrap_power({"null": null, "shifted": shifted}, 4.0, 200, 1)
    assert power["shifted"] == 1.0 and power["null"] < 0.05


def test_bonferroni_z_and_bad_parameters():
    assert np.isclose(bonferroni_z(1, 0.05), 1.959964, atol=1e-5)
    assert bonferroni_z(46) > bonferroni_z(4)
    with pytest.raises(ValueError, match="alpha"):
        bonferroni_z(3, 1.5)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_power({"a": np.zeros((1, 1, 5))}, 3.0, 0)
    with pytest.raises(ValueError, match="alternative"):
        residual_differences([], "typo")
    with pytest.raises(ValueError, match="check"):
        experiment_differences([], "typo")
