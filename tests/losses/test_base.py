"""Tests of w2sg_utils.losses.base (claims C7-C9, Chapter 4): the `Objective` base: binary/two-class equivalence, reductions, input checks, smoothing with eps = 0, the quantile buffer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from w2sg_utils.losses import (
    OBJECTIVE_NAMES,
    get_objective,
)

from .plain import (
    DT,
    batches,
    fitted,
    random_inputs,
    ref_ce,
    ref_rce,
)


@pytest.mark.parametrize("name", OBJECTIVE_NAMES)
def test_binary_equals_two_class(name):
    """A binary student is the two-class student with logits (0, z): values and gradients."""
    rng = np.random.default_rng(3)
    z, y = random_inputs(rng, 23, None)
    z1 = z.clone().requires_grad_(True)
    z2 = torch.stack([torch.zeros_like(z), z], dim=-1).requires_grad_(True)
    l1 = fitted(name, y)(z1, y, progress=0.7)
    l2 = fitted(name, y)(z2, torch.stack([1 - y, y], dim=-1), progress=0.7)
    l1.backward()
    l2.backward()
    assert torch.allclose(l1, l2, rtol=1e-12, atol=1e-14)
    assert torch.allclose(z1.grad, z2.grad[:, 1], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", ["bce", "reverse_bce", "SL_a1_b0.1", "window"])
def test_reductions_are_explicit(name):
    rng = np.random.default_rng(5)
    z, y = random_inputs(rng, 9, 3)
    per = fitted(name, y, reduction="none")(z, y)
    assert per.shape == (9,)
    assert torch.allclose(fitted(name, y)(z, y), per.mean())
    assert torch.allclose(fitted(name, y, reduction="sum")(z, y), per.sum())


@settings(max_examples=60, deadline=None)
@given(batches(), st.sampled_from(OBJECTIVE_NAMES), st.floats(0.0, 1.0))
def test_values_and_gradients_finite(batch, name, progress):
    """Hard labels 0/1 and saturated logits (|z| up to 1e4): finite value and gradient."""
    z, y = batch
    z = z.clone().requires_grad_(True)
    loss = fitted(name, y)(z, y, progress=progress)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


@settings(max_examples=30, deadline=None)
@given(batches(), st.sampled_from(OBJECTIVE_NAMES))
def test_float32_inputs_finite(batch, name):
    z, y = batch
    z = z.float().requires_grad_(True)
    loss = fitted(name, y.float())(z, y.float(), progress=0.5)
    loss.backward()
    assert loss.dtype == torch.float32
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


def test_eps_zero_rejects_hard_labels_for_reverse_terms():
    z = torch.zeros(3)
    y = torch.tensor([0.0, 0.5, 1.0])
    for name in ("reverse_bce", "reverse_kl", "SL_a1_b0.1", "CACE_0.6"):
        with pytest.raises(ValueError, match="eps=0"):
            get_objective(name, eps=0.0)(z, y)
    with pytest.raises(ValueError, match="eps=0"):
        get_objective("reverse_bce", eps=0)(torch.zeros(2, 3), torch.eye(3)[:2])


def test_eps_zero_works_where_reverse_terms_see_soft_labels():
    z = torch.tensor([3.0, -2.0, 0.1], dtype=DT, requires_grad=True)
    y = torch.tensor([0.0, 1.0, 0.55], dtype=DT)  # hard labels are confident for c <= 0.5
    loss = get_objective("CACE_0.3", eps=0)(z, y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    ref = (ref_ce([0, 3.0], [1, 0]) + ref_ce([0, -2.0], [0, 1]) + ref_rce([0, 0.1], [0.45, 0.55], 0)) / 3
    assert math.isclose(loss.item(), ref, rel_tol=1e-12)


def test_buffer_equals_full_batch_when_batch_is_at_least_buffer():
    rng = np.random.default_rng(10)
    z, y = random_inputs(rng, 16, None)
    a = get_objective("aux", buffer_size=16)(z, y, progress=1.0)
    b = get_objective("aux")(z, y, progress=1.0)
    assert torch.equal(a, b)


def test_fresh_objects_have_independent_state():
    a, b = get_objective("aux", buffer_size=4), get_objective("aux", buffer_size=4)
    assert a is not b
    a.observe(torch.zeros(3), torch.full((3,), 0.5))
    with pytest.raises(ValueError, match="at least 2"):
        b(torch.zeros(1), torch.full((1,), 0.5), progress=1.0)
    a(torch.zeros(1), torch.full((1,), 0.5), progress=1.0)


def test_bad_inputs():
    obj = get_objective("bce")
    with pytest.raises(ValueError, match="teacher_probs: shape"):
        obj(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="student_logits: expected shape"):
        obj(torch.zeros(2, 2, 2), torch.zeros(2, 2, 2))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        obj(torch.zeros(2), torch.tensor([0.5, 1.5]))
    with pytest.raises(ValueError, match="sum to 1"):
        obj(torch.zeros(2, 3), torch.full((2, 3), 0.5))
    with pytest.raises(ValueError, match="NaN"):
        obj(torch.tensor([float("nan"), 0.0]), torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="progress"):
        obj(torch.zeros(2), torch.full((2,), 0.5), progress=1.5)
    with pytest.raises(ValueError, match="floating"):
        obj(torch.zeros(2, dtype=torch.long), torch.full((2,), 0.5))
    with pytest.raises(ValueError, match="empty"):
        obj(torch.zeros(0), torch.zeros(0))


def test_batch_quantile_keeps_every_current_example_and_the_last_buffer_size():
    """``scope="batch"`` with ``buffer_size=4``: the quantile sample is the last 4
    confidences seen (buffer, then the current batch), but never fewer than the whole
    current batch when that is larger."""
    rng = np.random.default_rng(12)
    obj = get_objective("Quan_CACE_5", scope="batch", buffer_size=4)
    y1, y2 = rng.uniform(size=10), rng.uniform(size=3)
    conf1, conf2 = np.abs(y1 - 0.5), np.abs(y2 - 0.5)
    obj(torch.zeros(10, dtype=DT), torch.tensor(y1, dtype=DT))
    assert obj.last_threshold == pytest.approx(np.quantile(conf1, 0.5), rel=1e-12)
    obj(torch.zeros(3, dtype=DT), torch.tensor(y2, dtype=DT))
    sample = np.concatenate([conf1, conf2])[-4:]
    assert obj.last_threshold == pytest.approx(np.quantile(sample, 0.5), rel=1e-12)
