"""The pretrained pair's preset hh-minilm-mpnet (issue 18, claim C9)."""

from __future__ import annotations

import os

import pytest

from w2sg_utils.experiments.config import make_config
from w2sg_utils.experiments.learners import student_model, teacher_encoder
from w2sg_utils.experiments.presets import MINILM, MPNET, PRESETS
from w2sg_utils.experiments.sections import TeacherConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def test_the_pair_is_a_listed_preset_with_its_own_teacher_encoder():
    cfg = PRESETS["hh-minilm-mpnet"].config
    assert cfg.backend == "embedding" and not PRESETS["hh-minilm-mpnet"].requires_cuda
    enc = teacher_encoder(cfg)
    assert (enc.model, enc.max_length, enc.num_layers) == (MINILM, 128, None)
    st = student_model(cfg).encoder()
    assert (st.model, st.max_length, st.num_layers) == (MPNET, 128, None)
    # the other presets' encoder teachers still use the strong encoder's first layers
    other = make_config("hh-minilm-cpu", teacher={"kind": "encoder", "num_layers": 2})
    assert teacher_encoder(other).model == other.strong.encoder
    assert teacher_encoder(other).num_layers == 2


def test_teacher_encoder_fields_are_validated():
    with pytest.raises(ValueError, match="teacher.num_layers"):
        TeacherConfig(kind="encoder", n_labels=10, l2=0.0)  # no encoder: layers needed
    with pytest.raises(ValueError, match="teacher.encoder"):
        TeacherConfig(kind="encoder", n_labels=10, l2=0.0, encoder="")
    with pytest.raises(ValueError, match="teacher.max_length"):
        TeacherConfig(kind="encoder", n_labels=10, l2=0.0, encoder=MINILM, max_length=0)
    TeacherConfig(kind="encoder", n_labels=10, l2=0.0, encoder=MINILM)


def test_preset_run_ids_do_not_depend_on_the_new_field():
    """``encoder=None`` is absent from the hashed form, so older presets keep their ids."""
    t = make_config("hh-minilm-cpu").teacher
    assert "encoder" not in t.to_dict()
