"""Tests for w2sg_utils.checks (tolerance helpers used by every chapter)."""

import numpy as np
import pytest

from w2sg_utils.checks import assert_close, assert_within_se, mean_and_se


def test_mean_and_se_matches_formula():
    x = np.random.default_rng(0).normal(size=(50, 3))
    m, se = mean_and_se(x)
    naive_se = [np.sqrt(sum((v - x[:, j].mean()) ** 2 for v in x[:, j]) / 49 / 50) for j in range(3)]
    np.testing.assert_allclose(m, x.mean(0))
    np.testing.assert_allclose(se, naive_se)


def test_mean_and_se_along_another_axis():
    x = np.random.default_rng(1).normal(size=(4, 30))
    m, se = mean_and_se(x, axis=1)
    naive_se = [np.sqrt(sum((v - row.mean()) ** 2 for v in row) / 29 / 30) for row in x]
    np.testing.assert_allclose(m, [row.mean() for row in x])
    np.testing.assert_allclose(se, naive_se)


def test_assert_within_se_returns_gap_in_se_units():
    assert assert_within_se(1.3, 1.0, 0.1) == pytest.approx(3.0)
    with pytest.raises(AssertionError, match="exceeds"):
        assert_within_se(1.6, 1.0, 0.1)


@pytest.mark.parametrize("target", [0.0, np.zeros(1), np.zeros((4, 1))])
def test_assert_within_se_broadcasts_scalar_target(target):
    """An array of estimates against a scalar target: a failure reports the worst entry
    (this used to raise IndexError instead of AssertionError)."""
    est = np.array([[0.0, 0.1, 0.0], [0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    se = np.full((4, 3), 0.1)
    with pytest.raises(AssertionError, match=r"\|2 - 0\|"):
        assert_within_se(est, target, se, what="grid")
    assert assert_within_se(est[:2], 0.0, se[:2]) == pytest.approx(1.0)


def test_assert_within_se_broadcasts_scalar_se():
    with pytest.raises(AssertionError, match=r"\|1 - 0\|"):
        assert_within_se(np.array([0.0, 1.0]), np.zeros(2), 0.1)


def test_assert_within_se_rejects_bad_se():
    with pytest.raises(ValueError, match="se"):
        assert_within_se(0.0, 0.0, -1.0)
    with pytest.raises(ValueError, match="se"):
        assert_within_se(0.0, 0.0, np.nan)


def test_assert_close():
    assert_close([1.0, 2.0], [1.0, 2.0 + 1e-13])
    with pytest.raises(AssertionError, match="max abs error"):
        assert_close([1.0], [1.1])


def test_assert_close_uses_the_given_tolerances():
    """A relative error of 1e-8 passes at ``rtol=1e-7`` but not at the default ``1e-10``."""
    assert_close([1.0], [1.0 + 1e-8], rtol=1e-7)
    with pytest.raises(AssertionError):
        assert_close([1.0], [1.0 + 1e-8])
    with pytest.raises(AssertionError):
        assert_close([0.0], [1e-10])  # above atol=1e-12


def test_z_for_samples_matches_normal_tail():
    from scipy.stats import norm, t

    from w2sg_utils.checks import Z_DEFAULT, z_for_samples

    for n in (2, 8, 16, 64, 10_000):
        zt = z_for_samples(n)
        # same two-sided tail probability as z = 5 under the normal
        assert 2 * t.sf(zt, n - 1) == pytest.approx(2 * norm.sf(Z_DEFAULT), rel=1e-6)
        assert zt >= Z_DEFAULT
    assert z_for_samples(8) > z_for_samples(16) > z_for_samples(64) > Z_DEFAULT
    assert z_for_samples(10**6) == pytest.approx(Z_DEFAULT, abs=1e-3)
    assert z_for_samples(30, z=2.0) == pytest.approx(t.isf(norm.sf(2.0), 29))


@pytest.mark.parametrize("bad", [1, 0, 2.5, True, "16"])
def test_z_for_samples_rejects_bad_n(bad):
    from w2sg_utils.checks import z_for_samples

    with pytest.raises(ValueError, match="n:"):
        z_for_samples(bad)


def test_assert_within_se_floor_is_only_rounding():
    """With ``se = 0`` only ``floor`` (default 1e-12) is allowed: 1e-9 is a real gap."""
    assert_within_se(1.0, 1.0 + 1e-13, 0.0)
    with pytest.raises(AssertionError):
        assert_within_se(1.0, 1.0 + 1e-9, 0.0)
    assert_within_se(1.0, 1.0 + 1e-9, 0.0, floor=1e-8)


def test_rejection_power_against_plain_formulas():
    from scipy.stats import norm

    from w2sg_utils.checks import rejection_power

    assert rejection_power(0.0, 1.0) == pytest.approx(2 * norm.sf(5.0))  # the false alarm
    assert rejection_power(5.0, 1.0) == pytest.approx(0.5, abs=1e-6)
    assert rejection_power(-0.7, 0.1) == pytest.approx(norm.cdf(2.0) + norm.cdf(-12.0))
    assert rejection_power(3.0, 1.0, z=2.0) == pytest.approx(norm.cdf(1.0) + norm.cdf(-5.0))
    p1, p2 = norm.cdf(1.0) + norm.cdf(-11.0), norm.cdf(-1.0) + norm.cdf(-9.0)
    assert rejection_power([6.0, 4.0], [1.0, 1.0]) == pytest.approx(1 - (1 - p1) * (1 - p2))
    # simulated: the rate at which assert_within_se rejects a target off by 6 SE
    rng = np.random.default_rng(3)
    est = 6.0 + rng.normal(size=20_000)
    rate = np.mean(np.abs(est) > 5.0)
    assert rate == pytest.approx(rejection_power(6.0, 1.0), abs=0.015)


@pytest.mark.parametrize("gaps, se, z, match", [
    ([], 1.0, 5.0, "gaps"), (np.nan, 1.0, 5.0, "gaps"), (1.0, 0.0, 5.0, "se"),
    (1.0, -1.0, 5.0, "se"), (1.0, 1.0, 0.0, "z")])
def test_rejection_power_bad_input_names_the_parameter(gaps, se, z, match):
    from w2sg_utils.checks import rejection_power

    with pytest.raises(ValueError, match=f"^{match}:"):
        rejection_power(gaps, se, z)
