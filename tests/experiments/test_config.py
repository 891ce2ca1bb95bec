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
    ({"strong": {"bogus": 1}}, "strong.bogus: unknown configuration key"),
    ({"seeds": [0, True]}, "seeds"),  # a bool is not a seed
    ({"sizes": {"test": 1}}, "sizes.test: need at least 2"),
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


def test_with_overrides_replaces_fields_and_keeps_the_rest():
    from w2sg_utils.experiments.config import with_overrides

    cfg = E.make_config()
    new = with_overrides(cfg, seeds=[3, 4], strong={"l2": 0.0}, sizes={"test": 50})
    assert new.seeds == (3, 4) and new.strong.l2 == 0.0 and new.sizes.test == 50
    assert new.strong.lr == cfg.strong.lr and new.sizes.train_gt == cfg.sizes.train_gt
    assert new.teacher is cfg.teacher
    with pytest.raises(ValueError, match="strong.bogus: unknown configuration key"):
        with_overrides(cfg, strong={"bogus": 1})
    with pytest.raises(ValueError, match="sizes.test"):
        with_overrides(cfg, sizes={"test": 1})
    ft = E.make_config("minilm-finetune", ceiling={"epochs": 2})
    assert ft.ceiling.epochs == 2 and ft.ceiling.kind == "linear"


def test_presets_share_their_defaults():
    """Presets are typed objects built from shared pieces: the two presets with a TF-IDF
    teacher share one teacher object, and minilm-finetune's ceiling is hh-minilm-cpu's
    strong model (same fields, no ``l2``: the ceiling's penalty is the run's)."""
    from w2sg_utils.experiments import presets as P

    cpu, ft = P.PRESETS["hh-minilm-cpu"].config, P.PRESETS["minilm-finetune"].config
    assert cpu.teacher is ft.teacher is P.TFIDF
    assert {k: v for k, v in cpu.strong.to_dict().items() if k != "l2"} == ft.ceiling.to_dict()
    for p in P.PRESETS.values():
        assert p.config.preset == p.name and p.config.full_sizes == P.FULL
