"""Tests of configurations and presets (w2sg_utils.experiments.config) (claim C9)."""

from __future__ import annotations

import pytest

from w2sg_utils import experiments as E

pytestmark = pytest.mark.usefixtures("isolated_w2sg_cache")


@pytest.mark.parametrize("preset", sorted(E.PRESETS))
@pytest.mark.parametrize("override, match", [
    ({"sizes": {"test": 0}}, "sizes.test"),
    ({"sizes": {"train_w2s": 4001}}, "sizes.train_w2s"),
    ({"seeds": []}, "seeds"),
    ({"seeds": [1, 1]}, "seeds"),
    ({"objectives": ["bce", "nope"]}, "objectives: unknown objective 'nope'"),
    ({"objectives": []}, "objectives"),
    ({"ensemble_size": 1}, "ensemble_size"),
    ({"strong": {"l2": -1.0}}, "strong.l2"),
    ({"strong": {"lr": 0.0}}, "strong.lr"),
    ({"teacher": {"n_labels": 0}}, "teacher.n_labels"),
    ({"l2_grid": [-0.1]}, "l2_grid"),
    ({"bogus": 1}, "bogus: unknown configuration key"),
])
def test_every_preset_validates_arguments(preset, override, match, monkeypatch):
    if E.PRESETS[preset].requires_cuda:
        # validate the other fields as if CUDA were present
        import torch
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ValueError, match=match):
        E.make_config(preset, **override)


def test_gpu_preset_without_cuda_is_refused():
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="needs CUDA"):
        E.make_config("gpt2-hh")


def test_unknown_preset():
    with pytest.raises(ValueError, match="preset: unknown preset 'nope'"):
        E.make_config("nope")
