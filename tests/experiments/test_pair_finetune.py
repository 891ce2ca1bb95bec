"""The preset hh-minilm-mpnet-finetune (issue 18, claim C9, Chapter 5): the pretrained
pair with all-mpnet-base-v2 fine-tuned end to end on a GPU. Here, without a GPU: its
refusal before any work, its configuration and plan, its agreement with the GPU check of
the same pair (benchmarks/gpu_check_pair.py), and a float32 CPU dry run of its learners
on a handful of pairs with the real MPNet weights (offline)."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from w2sg_utils import experiments as E
from w2sg_utils.experiments import cli
from w2sg_utils.experiments.config import check_device, with_overrides
from w2sg_utils.experiments.presets import MINILM, MPNET, PRESETS
from w2sg_utils.experiments.sections import ExperimentConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytestmark = pytest.mark.usefixtures("isolated_w2sg_cache")

NAME = "hh-minilm-mpnet-finetune"
ROOT = Path(__file__).resolve().parents[2]
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")


def _cpu_config(**over):
    """The preset shrunk to a few pairs, float32 on CPU (its GPU settings otherwise)."""
    return with_overrides(PRESETS[NAME].config, device="cpu", seeds=[0],
                          objectives=["bce"], l2_grid=[], sweep_objectives=[],
                          sizes={"train_gt": 20, "train_w2s": 6, "test": 4},
                          teacher={"n_labels": 6},
                          strong={"dtype": "float32", "max_length": 32, "batch_size": 4,
                                  "micro_batch_size": 4, "num_threads": 1}, **over)


def test_listed_as_a_gpu_finetune_preset_of_the_pair(capsys):
    p = PRESETS[NAME]
    cfg = p.config
    assert p.requires_cuda and p.backend == "finetune" and cfg.device == "cuda"
    assert cfg.strong.model == MPNET and cfg.strong.dtype == "bfloat16"
    assert cfg.ceiling is None  # the ceiling is the fine-tuned MPNet on the true labels
    assert (cfg.teacher.kind, cfg.teacher.encoder, cfg.teacher.max_length) == (
        "encoder", MINILM, 128)
    assert cli.main(["presets"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(NAME))
    assert line.startswith(f"{NAME} [needs CUDA]: ") and "gpu_check_pair.py" in line


def test_settings_agree_with_the_gpu_check_of_the_pair():
    """The description says the preset follows the GPU check's settings: check it."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import gpu_check_pair as G
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    spec, cfg = G.PAIR[False], PRESETS[NAME].config
    st, t = cfg.strong, cfg.teacher
    assert (G.MINI, G.MPNET) == (t.encoder, st.model)
    assert cfg.sizes.to_dict() == {"train_gt": spec["n_gt"], "train_w2s": spec["n_train"],
                                   "test": spec["n_test"]}
    assert t.n_labels == spec["n_gt"] and t.max_length == spec["max_length"]
    assert (st.max_length, st.epochs, st.batch_size, st.micro_batch_size, st.lr,
            st.head_lr, st.dtype) == (spec["max_length"], spec["epochs"], spec["batch"],
                                      spec["micro"], spec["lr"], spec["head_lr"],
                                      spec["dtype"])
    # the check: load_encoder_reward's default l2 0, Loop(dropout=False), and sklearn's
    # ||w||^2 / 2 + C sum BCE = C n (mean BCE + ||w||^2 / (2 C n)) for the teacher
    assert st.l2 == 0.0 and st.dropout is False
    assert t.l2 == pytest.approx(1 / (2 * spec["C"] * spec["n_gt"]))
    loop = dataclasses.replace(st, dtype="float32").loop("cpu")  # bf16 needs CUDA
    assert loop.dropout is False and (loop.lr, loop.batch_size) == (spec["lr"], spec["batch"])


@no_gpu
def test_refused_without_cuda_before_any_work(tmp_path, capsys):
    with pytest.raises(ValueError, match=rf"preset '{NAME}' \(back-end 'finetune'\) "
                                         "needs CUDA"):
        E.make_config(NAME)
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "--preset", NAME, "--out", str(tmp_path / "out")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert NAME in err and "'finetune'" in err and "needs CUDA" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_configuration_validates_and_its_plan_is_built():
    cfg = PRESETS[NAME].config
    again = ExperimentConfig.from_dict(cfg.to_dict())  # validated round trip
    assert again == cfg and again.to_dict()["strong"]["dropout"] is False
    # minilm-finetune's hashed form has no dropout key: its run ids are unchanged
    assert "dropout" not in PRESETS["minilm-finetune"].config.strong.to_dict()
    plan = E.plan_runs(cfg)
    for seed in cfg.seeds:
        stages = [p["stage"] for p in plan if p["seed"] == seed]
        assert stages[:2] == ["teacher", "ceiling"] and "student" in stages
    ids = [E.run_id(cfg, p, "d") for p in plan]
    assert len(set(ids)) == len(ids)
    frozen = dataclasses.replace(PRESETS["hh-minilm-mpnet"].config, objectives=cfg.objectives)
    assert not set(ids) & {E.run_id(frozen, p, "d") for p in E.plan_runs(frozen)}
    with pytest.raises(ValueError, match="strong.dropout"):
        with_overrides(cfg, strong={"dropout": 0})
    with pytest.raises(ValueError, match="teacher.lr"):
        with_overrides(cfg, teacher={"lr": 0.0})
    with pytest.raises(ValueError, match="teacher.epochs"):
        with_overrides(cfg, teacher={"epochs": 0})
    with pytest.raises(ValueError, match="dtype: 'bfloat16' needs a CUDA device"):
        check_device(with_overrides(cfg, device="cpu"))


@pytest.mark.slow
def test_mpnet_reward_starts_at_the_frozen_mpnet_embedding():
    """The fine-tuned student starts at the frozen preset's MPNet embedding: MPNet's
    position ids start at padding_idx + 1 (a plain count from 0, right for MiniLM,
    moves them, cosine 0.74-0.94 on these texts), and the weights are the verified
    local folder."""
    from w2sg_utils.experiments import training as T
    from w2sg_utils.experiments.embeddings import Encoder, resolve_model_path
    from w2sg_utils.experiments.finetune import load_encoder_reward, model_max_length
    from w2sg_utils.experiments.mpnet import mpnet_model_path

    assert resolve_model_path(MPNET) == str(mpnet_model_path())
    assert model_max_length(MPNET) == 512  # 514 positions, two reserved
    texts = ["Human: how do I bake bread?\n\nAssistant: Mix flour, water and yeast.",
             "short", "The cat sat on the mat while the dog slept by the fire."]
    model, tok = load_encoder_reward(MPNET, max_length=32)
    seqs = tok(texts, truncation=True, max_length=32)["input_ids"]
    ids, mask = T._collate(seqs, T._pad_id(tok), "cpu")  # left padding
    with torch.no_grad():
        e = model.embed(ids, mask).numpy()
    frozen = Encoder(MPNET, max_length=32).encode(texts, progress=False)
    np.testing.assert_allclose(e, frozen, atol=2e-6)  # float32 rounding of 768 sums
    assert not model.head.weight.any()


@pytest.mark.slow
def test_cpu_dry_run_trains_teachers_ceiling_and_students(tmp_path, monkeypatch):
    """The preset's learners in float32 on CPU, a few pairs at 32 tokens: MiniLM-head
    teachers, the fine-tuned MPNet ceiling and two fine-tuned MPNet students (one MPNet
    load each), through Chapter 6's runner; finite logits of the right shapes."""
    from w2sg_utils.experiments import ensembles as ENS
    from w2sg_utils.experiments import finetune

    cfg = _cpu_config()
    check_device(cfg)
    loads = []
    real = finetune.load_encoder_reward
    monkeypatch.setattr(finetune, "load_encoder_reward",
                        lambda *a, **k: loads.append((a[0], k["dtype"])) or real(*a, **k))
    out = ENS.run_ensemble(cfg, 0, 2, [("bce", 0.0)], tmp_path)
    assert loads == [(MPNET, "float32")] * 3  # ceiling + one per student
    z_w2s, z_test = out["students"][("bce", 0.0)]
    assert z_w2s.shape == (2, 6) and z_test.shape == (2, 4)
    assert out["ceiling"][1].shape == (1, 4)
    assert all(np.all(np.isfinite(z)) for z in (z_w2s, z_test, *out["teachers"],
                                                *out["ceiling"]))


def test_teacher_head_trains_with_the_teachers_settings(monkeypatch):
    from w2sg_utils.experiments import batched, training
    from w2sg_utils.experiments.context import SeedContext
    from w2sg_utils.experiments.learners import fit_teacher, fit_teachers

    cfg = _cpu_config()
    ctx = SeedContext(cfg, 0)
    seen = []
    for mod, name in ((batched, "train_heads"), (training, "train_head")):
        real = getattr(mod, name)
        monkeypatch.setattr(mod, name, lambda *a, _r=real, **k: seen.append(
            (k["epochs"], k["lr"], k["batch_size"])) or _r(*a, **k))
    fit_teachers(ctx, [np.arange(6)], [0])
    fit_teacher(ctx, np.arange(6), 0)
    t = cfg.teacher
    assert seen == [(t.epochs, t.lr, t.batch_size)] * 2
