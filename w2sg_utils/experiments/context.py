"""What the runs of one seed share (claim C9, Chapters 5 and 6): the seed's data, its
fingerprint, the frozen encoders' embeddings (cached in memory here, on disk by
:mod:`.embeddings`) and the teachers' training rows.

A :class:`SeedContext` is built once per seed by the protocol (:mod:`.protocol`) or
the ensemble runner (:mod:`.ensembles`) and handed to the learners (:mod:`.learners`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import data_fingerprint, load_hh_helpful
from .embeddings import DEFAULT_ENCODER

__all__ = ["EncoderSpec", "SeedContext"]


@dataclass(frozen=True)
class EncoderSpec:
    """A frozen encoder: ``model`` (hub id or folder), ``max_length`` tokens and the
    first ``num_layers`` layers (``None``: all of them)."""

    model: str = DEFAULT_ENCODER
    max_length: int = 256
    num_layers: int | None = None


_ENCODERS: dict = {}


def _encoder(spec: EncoderSpec, device: str):
    """One loaded :class:`~.embeddings.Encoder` per (spec, device) in this process."""
    from .embeddings import Encoder

    key = (spec, device)
    if key not in _ENCODERS:
        _ENCODERS[key] = Encoder(spec.model, max_length=spec.max_length,
                                 num_layers=spec.num_layers, device=device)
    return _ENCODERS[key]


class SeedContext:
    """The data of ``seed`` (sizes of ``cfg``), its fingerprint and its embeddings."""

    def __init__(self, cfg, seed: int, data_dir=None, progress: bool = False):
        self.cfg, self.seed, self.progress = cfg, seed, progress
        self.data = load_hh_helpful(cfg.sizes.to_dict(), seed=seed, data_dir=data_dir)
        self.data_hash = data_fingerprint(self.data)
        self._emb: dict = {}

    def embeddings(self, split: str, encoder: EncoderSpec) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings ``(e_a, e_b)`` of the pairs of ``split`` by the frozen ``encoder``."""
        from .embeddings import embed_texts

        key = (split, encoder)
        if key not in self._emb:
            ds = self.data[split]
            e = embed_texts(list(ds.text_a) + list(ds.text_b),
                            _encoder(encoder, self.cfg.device), progress=self.progress)
            self._emb[key] = (e[: len(ds)], e[len(ds):])
        return self._emb[key]

    def teacher_indices(self, member: int) -> np.ndarray:
        """Training rows of teacher ``member`` in ``train_gt`` (0: subset; k: bootstrap).

        A teacher needs both classes among its labels. With few labels a draw can hold
        one class only (probability about ``2 ** (1 - n_labels)``); such a draw is
        rejected and redrawn from the same generator, so every draw with both classes
        (in particular every draw of the defaults) is unchanged, and the sample is the
        subset or bootstrap conditioned on containing both classes.
        """
        labels = self.data["train_gt"].label
        n_pool = len(labels)
        n = min(self.cfg.teacher.n_labels, n_pool)
        if len(np.unique(labels)) < 2:
            raise ValueError(f"sizes.train_gt: the {n_pool} train_gt pairs of seed "
                             f"{self.seed} hold a single class; use more pairs")
        rng = np.random.default_rng([self.seed, 1000 + member])
        for _ in range(10_000):
            if member == 0:
                idx = np.sort(rng.choice(n_pool, size=n, replace=False))
            else:
                idx = rng.choice(n_pool, size=n, replace=True)
            if len(np.unique(labels[idx])) == 2:
                return idx
        raise ValueError(f"teacher.n_labels: {n} labels drawn from train_gt never held "
                         "both classes in 10000 draws; use more labels")
