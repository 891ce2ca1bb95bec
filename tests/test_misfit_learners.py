"""Weak teachers and batched students (Chapter 2) against plain loop references."""

import numpy as np
import pytest

from w2sg_utils.misfit_learners import fit_mlp_students, histogram_teacher


def test_histogram_teacher_against_loop():
    rng = np.random.default_rng(8)
    B, n, nx = 3, 10, 4
    x = rng.integers(0, nx, size=(B, n))
    y = rng.normal(size=(B, n))
    out = histogram_teacher(x, y, nx, alpha=0.5)
    lab = rng.integers(0, 3, size=(B, n))
    outc = histogram_teacher(x, lab, nx, alpha=0.5, n_classes=3)
    for b in range(B):
        for i in range(nx):
            sel = x[b] == i
            ref = (y[b][sel].sum() + 0.5 * y[b].mean()) / (sel.sum() + 0.5)
            assert np.isclose(out[b, i, 0], ref)
            pooled = (np.bincount(lab[b], minlength=3) + 1) / (n + 3)
            refc = (np.bincount(lab[b][sel], minlength=3) + 0.5 * pooled) / (sel.sum() + 0.5)
            np.testing.assert_allclose(outc[b, i], refc, rtol=1e-12)
    assert np.allclose(outc.sum(-1), 1) and (outc > 0).all()


@pytest.mark.parametrize("name", ["squared", "kl"])
def test_mlp_students_fit_and_are_independent(name):
    rng = np.random.default_rng(9)
    grid = np.linspace(-1, 1, 15)[:, None]
    x = rng.uniform(-1, 1, size=(3, 30, 1))
    if name == "squared":
        lab = np.sin(3 * x)
    else:
        z = np.concatenate([np.sin(3 * x), np.cos(3 * x)], -1)
        lab = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    out = fit_mlp_students(x, lab, grid, name, hidden=16, steps=300, weight_decay=1e-4, seed=0)
    assert out.shape == (3, 15, lab.shape[-1])
    # a batch member trained alone with the same initialisation gives the same network
    single = fit_mlp_students(x[:1], lab[:1], grid, name, hidden=16, steps=300, weight_decay=1e-4, seed=0)
    np.testing.assert_allclose(single[0], out[0], rtol=1e-6, atol=1e-8)
    target = np.sin(3 * grid) if name == "squared" else None
    if target is not None:
        assert np.mean((out - target) ** 2) < 0.05


def test_learner_validation_errors_name_the_parameter():
    x = np.zeros((2, 3), dtype=int)
    with pytest.raises(ValueError, match="x_idx"):
        histogram_teacher(x + 5, np.zeros((2, 3)), 4)
    with pytest.raises(ValueError, match="alpha"):
        histogram_teacher(x, np.zeros((2, 3)), 4, alpha=0.0)
    with pytest.raises(ValueError, match="y"):
        histogram_teacher(x, x + 3, 4, n_classes=3)
    grid = np.zeros((4, 1))
    with pytest.raises(ValueError, match="divergence"):
        fit_mlp_students(np.zeros((2, 3, 1)), np.ones((2, 3, 1)), grid, "itakura_saito")
    with pytest.raises(ValueError, match="labels"):
        fit_mlp_students(np.zeros((2, 3, 1)), np.ones((2, 4, 1)), grid)
    with pytest.raises(ValueError, match="hidden"):
        fit_mlp_students(np.zeros((2, 3, 1)), np.ones((2, 3, 1)), grid, hidden=0)
