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


@pytest.mark.parametrize("name", ["squared", "kl"])
def test_mlp_student_objective_against_a_plain_loop(name):
    """One network trained by a plain loop on the documented objective,
    ``mean_i D(label_i, f(x_i)) + weight_decay * (|W_1|^2 + |W_2|^2)`` (for KL the
    cross-entropy ``-sum_k y_k log softmax_k``, summed over classes), Adam from the
    documented start: ``randn`` rows of the seeded generator, scaled by ``1/sqrt(fan_in)``,
    zero biases. A large ``weight_decay`` makes the penalty visible."""
    import torch

    rng = np.random.default_rng(4)
    x, grid = rng.normal(size=(1, 12, 2)), rng.normal(size=(5, 2))
    lab = rng.normal(size=(1, 12, 3)) if name == "squared" else rng.dirichlet(np.ones(3), size=(1, 12))
    h, steps, lr, wd = 6, 40, 0.05, 0.3
    out = fit_mlp_students(x, lab, grid, name, hidden=h, steps=steps, lr=lr, weight_decay=wd, seed=5)
    init = torch.randn(1, 2 * h + h * 3, generator=torch.Generator().manual_seed(5),
                       dtype=torch.float64)[0]
    W1 = (init[: 2 * h].reshape(2, h) / np.sqrt(2)).clone().requires_grad_(True)
    W2 = (init[2 * h:].reshape(h, 3) / np.sqrt(h)).clone().requires_grad_(True)
    b1 = torch.zeros(h, dtype=torch.float64, requires_grad=True)
    b2 = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([W1, b1, W2, b2], lr=lr)
    X, Y = torch.as_tensor(x[0]), torch.as_tensor(lab[0])
    for _ in range(steps):
        opt.zero_grad()
        f = torch.tanh(X @ W1 + b1) @ W2 + b2
        if name == "squared":
            data = sum(((f[i] - Y[i]) ** 2).sum() for i in range(12)) / 12
        else:
            data = sum(-(Y[i] * torch.log_softmax(f[i], -1)).sum() for i in range(12)) / 12
        (data + wd * ((W1 ** 2).sum() + (W2 ** 2).sum())).backward()
        opt.step()
    with torch.no_grad():
        ref = torch.tanh(torch.as_tensor(grid) @ W1 + b1) @ W2 + b2
        if name == "kl":
            ref = torch.softmax(ref, -1)
    np.testing.assert_allclose(out[0], ref.numpy(), rtol=1e-7, atol=1e-9)
