"""Making and checking configurations (claim C9, Chapter 5): :func:`make_config` (a
preset with overrides), :func:`with_overrides` (the one way to change fields, used by
the ``w2sg`` command), :func:`validate_config` and :func:`check_device` (whether this
machine can run a configuration: CUDA, the fine-tuned encoder's dtype and length).

What a configuration is: :mod:`.sections`; the presets: :mod:`.presets`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from .presets import PRESETS, Preset
from .sections import (
    CeilingConfig,
    ExperimentConfig,
    Section,
    Sizes,
    StrongConfig,
    TeacherConfig,
    new_objective,
    objective_names,
)

__all__ = [
    "Sizes",
    "TeacherConfig",
    "StrongConfig",
    "ExperimentConfig",
    "Preset",
    "PRESETS",
    "get_preset",
    "make_config",
    "with_overrides",
    "validate_config",
    "check_device",
    "objective_names",
    "new_objective",
]


def check_device(cfg: ExperimentConfig) -> None:
    """``ValueError`` if this machine cannot run ``cfg``: it needs CUDA and there is none;
    (``finetune``) its ``dtype`` is not supported on the device or its ``max_length``
    exceeds the model's positions."""
    if str(cfg.device).startswith("cuda"):  # first: the clearest refusal
        import torch

        if not torch.cuda.is_available():
            raise ValueError(
                f"device: preset {cfg.preset!r} (back-end {cfg.backend!r}) needs CUDA but "
                "no GPU is available "
                "(use --device cpu only for tiny models, or the hh-minilm-cpu preset)")
    if cfg.backend == "finetune":
        from .finetune import check_dtype, model_max_length

        st = cfg.strong
        check_dtype(st.dtype, cfg.device)
        limit = model_max_length(st.model)
        if st.max_length > limit:
            raise ValueError(f"strong.max_length: {st.max_length} exceeds the {limit} "
                             f"positions of {st.model!r}")


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (ValueError listing the known ones otherwise)."""
    if name not in PRESETS:
        raise ValueError(f"preset: unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]


def _known(obj, key: str, path: str) -> None:
    names = [f.name for f in dataclasses.fields(obj)]
    if key not in names:
        raise ValueError(f"{path}{key}: unknown configuration key (known: {sorted(names)})")


def with_overrides(cfg: ExperimentConfig, **fields) -> ExperimentConfig:
    """``cfg`` with ``fields`` replaced, validated (not the device: :func:`check_device`).

    A section (``sizes``, ``teacher``, ``strong``, ``ceiling``, ...) given as a mapping
    has just those of its fields replaced; lists become tuples. An unknown field raises
    ``ValueError`` naming it. Example: ``with_overrides(cfg, seeds=[0, 1],
    strong={"l2": 0.0})``.
    """
    changes = {}
    for key, value in fields.items():
        _known(cfg, key, "")
        current = getattr(cfg, key)
        if isinstance(value, Mapping) and isinstance(current, Section):
            for k in value:
                _known(current, k, f"{key}.")
            value = dataclasses.replace(current, **value)
        elif isinstance(value, Mapping) and key == "ceiling":
            value = CeilingConfig(**value)
        elif isinstance(value, list):
            value = tuple(value)
        changes[key] = value
    return dataclasses.replace(cfg, **changes)


def make_config(preset: str = "hh-minilm-cpu", full: bool = False,
                **overrides) -> ExperimentConfig:
    """The validated configuration of a preset with ``overrides`` (:func:`with_overrides`).

    ``full=True`` uses the preset's ``full_sizes`` (4000/4000/4000). Examples:
    ``make_config(seeds=[0, 1], sizes={"test": 200}, strong={"l2": 0.0})``.
    """
    cfg = get_preset(preset).config
    if full:
        cfg = dataclasses.replace(cfg, sizes=cfg.full_sizes)
    cfg = with_overrides(cfg, **overrides)
    if cfg.objectives is None:
        cfg = dataclasses.replace(cfg, objectives=tuple(objective_names()))
    check_device(cfg)
    return cfg


def validate_config(cfg) -> ExperimentConfig:
    """``cfg`` (a configuration or its nested dicts) validated, device included."""
    if not isinstance(cfg, ExperimentConfig):
        cfg = ExperimentConfig.from_dict(cfg)
    if cfg.objectives is None:
        raise ValueError("objectives: must name at least one objective")
    check_device(cfg)
    return cfg
