"""Weak-to-strong experiments on real preference data (claim C9, Chapter 5).

Pairwise reward modelling on HH-RLHF helpful, following the authors' released code with
its known defects fixed (see Chapter 5). The subpackage, in the order a run flows:

* :mod:`.data` -- the shipped HH-helpful splits (checksummed) and other loaders;
* :mod:`.sections`, :mod:`.presets`, :mod:`.config` -- what a configuration is
  (:class:`ExperimentConfig` and its sections, frozen dataclasses validated on
  construction), the presets (typed), :func:`make_config` and ``with_overrides``;
* :mod:`.plan` -- run ids (hash of a run's full configuration) and the ordered plan;
* :mod:`.protocol` -- what a run is and in which order its stages run (teacher,
  ceiling, student, bias-variance), for the runs of one seed (:mod:`.context`);
  :func:`~.protocol.prefit` trains a seed's heads on frozen embeddings at once;
* :mod:`.learners` -- fit a teacher, a strong student or a ceiling for every back-end
  (:mod:`.embeddings`, :mod:`.models`, :mod:`.finetune`, :mod:`.batched`), through the
  training loops of :mod:`.training`;
* :mod:`.store` -- the run store (atomic CSV, validated artifacts) and committed results;
* :mod:`.sweep` -- :func:`run_sweep`, which runs or resumes a whole plan, across
  machines (:mod:`.sharding`) and processes (:mod:`.distributed`);
* :mod:`.metrics` -- accuracy, PGR, misfits and the gain identity, summaries over seeds;
  :mod:`.run_intervals` -- two-level intervals (test pairs x seeds) of a sweep's runs;
  :mod:`.packed_logits` -- a committed store's test logits (float16 or signs), checksummed;
  :mod:`.pair_gap`, :mod:`.pair_prereg` -- the pretrained pair's gap and its
  pre-registered regimes;
* :mod:`.ensembles` -- teacher ensembles and their students for Chapter 6;
* :mod:`.cli` -- the ``w2sg`` command (also ``python -m w2sg_utils``).

Stages, per seed: teacher -> soft labels -> ceiling -> students (every objective, and a
sweep of the student's L2 strength for ``bce`` / ``reverse_bce``) -> an ensemble of
bootstrapped teachers, one student per member and one on the ensemble's dual-mean
(posterior-mean) label -> bias-variance rows (claims C1, C4) -> evaluation. A run whose
row and artifact exist is skipped, so an interrupted sweep resumes.

Everything a chapter needs is importable from here: ``from w2sg_utils import
experiments as E`` then ``E.make_config``, ``E.run_sweep``, ``E.summarize``, ... The
heavy modules (torch, transformers) are imported only when a run needs them.
"""

from __future__ import annotations

from .config import (
    PRESETS,
    ExperimentConfig,
    Preset,
    check_device,
    get_preset,
    make_config,
    objective_names,
    validate_config,
)
from .context import SeedContext
from .data import load_hh_helpful, load_pairs, read_manifest
from .embeddings import Encoder, embed_texts
from .metrics import accuracy, bias_variance_table, pair_metrics, pgr, summarize
from .plan import CODE_VERSION, config_hash, plan_runs, run_id
from .store import RunStore, committed_results
from .sweep import run_sweep

__all__ = [
    "CODE_VERSION",
    "Preset",
    "PRESETS",
    "ExperimentConfig",
    "get_preset",
    "make_config",
    "validate_config",
    "check_device",
    "config_hash",
    "run_id",
    "plan_runs",
    "RunStore",
    "pair_metrics",
    "accuracy",
    "pgr",
    "run_sweep",
    "summarize",
    "objective_names",
    "bias_variance_table",
    "committed_results",
    "SeedContext",
    "load_hh_helpful",
    "load_pairs",
    "read_manifest",
    "Encoder",
    "embed_texts",
]
