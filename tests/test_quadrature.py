import numpy as np
import pytest

from w2sg_utils.quadrature import gaussian_expectation, gaussian_nodes


def test_lognormal_moments_exact():
    for s in (0.3, 1.0, 2.0):
        got = gaussian_expectation(lambda z, s=s: np.exp(s * z[:, 0]), dim=1, n_nodes=60)
        assert np.isclose(got, np.exp(s**2 / 2), rtol=1e-12)


def test_multivariate_matches_monte_carlo_reference():
    # E ||Z||^2 = dim, E[Z1^2 Z2^2] = 1
    assert np.isclose(gaussian_expectation(lambda z: (z**2).sum(1), dim=3, n_nodes=5), 3.0)
    assert np.isclose(gaussian_expectation(lambda z: z[:, 0] ** 2 * z[:, 1] ** 2, 2, 5), 1.0)
    nodes, w = gaussian_nodes(2, 7)
    assert nodes.shape == (49, 2) and np.isclose(w.sum(), 1.0)


@pytest.mark.parametrize("kw,match", [({"dim": 0}, "dim"), ({"dim": 1, "n_nodes": 1}, "n_nodes"),
                                      ({"dim": 9, "n_nodes": 10}, "too many")])
def test_invalid_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        gaussian_nodes(**kw)
