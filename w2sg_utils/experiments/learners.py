"""The learners of the experiments: fit a weak teacher, a strong student or a ceiling,
and return its logits (claim C9; Chapters 5 and 6).

One function per role and every back-end behind it, so that Chapter 5's protocol
(:mod:`.protocol`), Chapter 6's ensemble runner (:mod:`.ensembles`) and the ``w2sg``
command train the same models with the same code:

- teachers (:func:`fit_teacher`, :func:`fit_teachers`), by ``teacher.kind``:
  ``tfidf`` (:class:`~.models.TfidfTeacher`), ``encoder`` (a linear head on the first
  layers of the frozen strong encoder) or ``causal_lm`` (a fine-tuned causal LM);
- strong models (:func:`fit_strong`, :func:`fit_strongs`) described by a
  :class:`StrongModel` (a back-end and its configuration section): the student
  (:func:`student_model`) or the ceiling (:func:`ceiling_model`, which is the student's
  model unless the configuration has a ``ceiling`` section). Back-ends: ``embedding``
  (heads on frozen embeddings), ``finetune`` (the whole encoder,
  :mod:`.finetune`) and ``causal_lm`` (:mod:`.models`).

Each function trains on ``train_gt`` rows (teachers) or on ``train_w2s`` (strong
models) and returns ``{split: logits}`` for the splits asked for. The ``*s`` variants
train ``K`` models at once where the model allows it (TF-IDF teachers share their
counts, linear heads train as one weight matrix, :mod:`.batched`) and loop otherwise.

A new back-end is one branch in :func:`_fit_strong_one` (and a ``backend`` name in
:mod:`.config`); see CONTRIBUTING.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._common import torch_threads
from .context import EncoderSpec

__all__ = ["StrongModel", "StrongJob", "student_model", "ceiling_model",
           "teacher_encoder", "fit_teacher", "fit_teachers", "fit_strong", "fit_strongs",
           "trains_at_once", "fit_strong_jobs"]

SPLITS = ("train_w2s", "test")


@dataclass(frozen=True)
class StrongModel:
    """A strong model to train: ``backend`` (``embedding``, ``finetune``,
    ``causal_lm``) and its configuration ``section`` (``strong`` or ``ceiling``)."""

    backend: str
    section: object

    def encoder(self) -> EncoderSpec:
        """The frozen encoder of an ``embedding`` model."""
        s = self.section
        return EncoderSpec(s.encoder, s.max_length)


@dataclass(frozen=True)
class StrongJob:
    """One strong model to train on ``train_w2s``: its target probabilities, objective,
    L2 strength and seed (the arguments of :func:`fit_strong`)."""

    targets: np.ndarray
    objective: str
    l2: float
    seed: int


def student_model(cfg) -> StrongModel:
    """The strong student of ``cfg``: its back-end and ``strong`` section."""
    return StrongModel(cfg.backend, cfg.strong)


def ceiling_model(cfg) -> StrongModel:
    """The ceiling of ``cfg``: the student's model or, with a ``ceiling`` section
    (``minilm-finetune``), a head on frozen embeddings as that section says."""
    if cfg.ceiling is None:
        return student_model(cfg)
    return StrongModel("embedding", cfg.ceiling)


def teacher_encoder(cfg) -> EncoderSpec:
    """The frozen encoder of an ``encoder`` teacher: its own ``teacher.encoder`` when set
    (the pretrained pair), else the first ``teacher.num_layers`` layers of the strong
    encoder (``embedding``) or fine-tuned model (``finetune``)."""
    st, t = cfg.strong, cfg.teacher
    if t.encoder is not None:
        return EncoderSpec(t.encoder, t.max_length or st.max_length, t.num_layers)
    model = st.encoder if cfg.backend == "embedding" else st.model
    return EncoderSpec(model, st.max_length, cfg.teacher.num_layers)


# ------------------------------------------------------------------------ teachers

def fit_teacher(ctx, rows, seed: int, splits=SPLITS) -> dict[str, np.ndarray]:
    """Train one weak teacher on the ``train_gt`` pairs ``rows``; its logits ``(n,)``
    on each of ``splits`` (claim C9; ``teacher.kind`` says which model).

    Statement: {prf:ref}`def-ch05-pairwise`.
    """
    cfg, t = ctx.cfg, ctx.cfg.teacher
    gt = ctx.data["train_gt"].subset(rows)
    if t.kind == "tfidf":  # TfidfTeacher's model; the seed's texts counted once
        z = fit_teachers(ctx, np.asarray(rows)[None], [seed], splits)
        return {s: z[s][0] for s in splits}
    if t.kind == "encoder":
        from .models import PairHead
        from .training import head_logits, train_head

        enc = teacher_encoder(cfg)
        ga, gb = ctx.embeddings("train_gt", enc)
        st = cfg.strong
        head = train_head(PairHead(ga.shape[1], "linear"), ga[rows], gb[rows],
                          gt.label.astype(float), cfg.objective("bce"), l2=t.l2,
                          epochs=t.epochs or st.epochs, lr=t.lr or st.lr,
                          batch_size=t.batch_size or st.batch_size, seed=seed)
        return {s: head_logits(head, *ctx.embeddings(s, enc)) for s in splits}
    model, tok = _load_lm(t, seed)
    _train_lm(ctx, model, tok, t, gt, gt.label.astype(float), "bce", seed)
    return {s: _predict_lm(ctx, model, tok, t, ctx.data[s]) for s in splits}


def fit_teachers(ctx, draws, seeds, splits=SPLITS) -> dict[str, np.ndarray]:
    """:func:`fit_teacher` for each row set of ``draws`` (``(K, m)``) with ``seeds[k]``;
    logits ``(K, n)``. TF-IDF teachers share their counts and encoder teachers train as
    one weight matrix (:mod:`.batched`; equal to one at a time up to rounding)."""
    from .batched import head_logits_many, tfidf_teacher_logits, train_heads

    cfg, t = ctx.cfg, ctx.cfg.teacher
    gt = ctx.data["train_gt"]
    if t.kind == "tfidf":
        return tfidf_teacher_logits(gt, draws, {s: ctx.data[s] for s in splits},
                                    C=t.C, ngram_max=t.ngram_max)
    if t.kind == "encoder":
        enc, st = teacher_encoder(cfg), cfg.strong
        ga, gb = ctx.embeddings("train_gt", enc)
        W = np.concatenate([
            train_heads(ga[idx], gb[idx], gt.label[idx][None].astype(float), "bce",
                        l2=t.l2, epochs=t.epochs or st.epochs, lr=t.lr or st.lr,
                        batch_size=t.batch_size or st.batch_size,
                        seed=s)
            for idx, s in zip(draws, seeds)])
        return {s: head_logits_many(W, *ctx.embeddings(s, enc)) for s in splits}
    return _stack([fit_teacher(ctx, idx, s, splits) for idx, s in zip(draws, seeds)])


# -------------------------------------------------------------------- strong models

def fit_strong(ctx, model: StrongModel, targets, objective: str, l2: float, seed: int,
               splits=("test",), train: str = "train_w2s") -> dict[str, np.ndarray]:
    """Train ``model`` on the pairs of ``train`` with target probabilities ``targets``
    and ``objective`` (plus ``l2``); its logits ``(n,)`` on each of ``splits``.

    Statement: {prf:ref}`def-ch05-pairwise`.
    """
    job = StrongJob(np.asarray(targets, float), objective, l2, seed)
    if trains_at_once(model):  # the same arithmetic alone as in a batch, bit for bit
        return fit_strong_jobs(ctx, model, [job], splits, train)[0]
    return _fit_strong_one(ctx, model, job.targets, objective, l2, seed, splits, train)


def fit_strongs(ctx, model: StrongModel, targets, objective: str, l2: float, seed: int,
                splits=SPLITS) -> dict[str, np.ndarray]:
    """:func:`fit_strong` on ``train_w2s`` for each row of ``targets`` (``(K, n)``),
    member ``k`` seeded ``seed + k``; logits ``(K, n)``. Linear heads on frozen
    embeddings train at once (:func:`~.batched.train_heads`, seeded ``seed``)."""
    targets = np.asarray(targets, float)
    if trains_at_once(model):
        return _linear_heads(ctx, model, targets, objective, l2, seed, splits)
    return _stack([_fit_strong_one(ctx, model, y, objective, l2, seed + k, splits,
                                   "train_w2s") for k, y in enumerate(targets)])


def trains_at_once(model: StrongModel) -> bool:
    """Whether :func:`fit_strong_jobs` trains several jobs of ``model`` as one
    (linear heads on frozen embeddings)."""
    return model.backend == "embedding" and model.section.kind == "linear"


def fit_strong_jobs(ctx, model: StrongModel, jobs, splits=("test",),
                    train: str = "train_w2s") -> list[dict]:
    """:func:`fit_strong` on ``train`` for each :class:`StrongJob` of ``jobs``, in order.

    Linear heads on frozen embeddings (:func:`trains_at_once`) train as one weight
    matrix, each head with its job's objective, L2 and minibatch order
    (:func:`~.batched.train_heads`: equal to one at a time up to rounding); other
    models train one at a time. Claim C9; Chapter 5's sweep (:func:`~.protocol.prefit`).

    Statement: {prf:ref}`def-ch05-pairwise`.
    """
    jobs = list(jobs)
    if not jobs:
        return []
    if not trains_at_once(model):
        return [_fit_strong_one(ctx, model, np.asarray(j.targets, float), j.objective,
                                j.l2, j.seed, splits, train) for j in jobs]
    out = _linear_heads(ctx, model, np.stack([np.asarray(j.targets, float) for j in jobs]),
                        [ctx.cfg.objective(j.objective) for j in jobs],
                        [j.l2 for j in jobs], [j.seed for j in jobs], splits, train)
    return [{sp: out[sp][k] for sp in splits} for k in range(len(jobs))]


def _linear_heads(ctx, model, targets, objective, l2, seed, splits, train="train_w2s"):
    """Linear heads on ``model``'s frozen embeddings trained as one weight matrix
    (:func:`~.batched.train_heads`: ``objective``, ``l2``, ``seed`` one for all or one
    per head); their logits ``(K, n)`` on each of ``splits``."""
    from .batched import head_logits_many, train_heads

    s, enc = model.section, model.encoder()
    ea, eb = ctx.embeddings(train, enc)
    W = train_heads(ea, eb, targets, objective, l2=l2, seed=seed, epochs=s.epochs,
                    lr=s.lr, batch_size=s.batch_size)
    return {sp: head_logits_many(W, *ctx.embeddings(sp, enc)) for sp in splits}


def _fit_strong_one(ctx, model: StrongModel, targets, objective, l2, seed, splits, train):
    """The back-ends' dispatch: the one place a new back-end is added."""
    s = model.section
    if model.backend == "embedding":
        import torch

        from .models import PairHead
        from .training import head_logits, train_head

        enc = model.encoder()
        ea, eb = ctx.embeddings(train, enc)
        torch.manual_seed(seed)
        head = PairHead(ea.shape[1], s.kind, s.hidden)
        head = train_head(head, ea, eb, targets, ctx.cfg.objective(objective), l2=l2,
                          epochs=s.epochs, lr=s.lr, batch_size=s.batch_size, seed=seed)
        return {sp: head_logits(head, *ctx.embeddings(sp, enc)) for sp in splits}
    if model.backend == "finetune":
        from .finetune import load_encoder_reward

        net, tok = load_encoder_reward(s.model, max_length=s.max_length, head_lr=s.head_lr,
                                       l2=l2, dtype=s.dtype, device=ctx.cfg.device,
                                       seed=seed)
    elif model.backend == "causal_lm":
        net, tok = _load_lm(s, seed)
    else:
        raise ValueError(f"backend: no learner for back-end {model.backend!r} "
                         f"(preset {ctx.cfg.preset!r})")
    _train_lm(ctx, net, tok, s, ctx.data[train], targets, objective, seed)
    return {sp: _predict_lm(ctx, net, tok, s, ctx.data[sp]) for sp in splits}


def _stack(outs: list[dict]) -> dict[str, np.ndarray]:
    return {sp: np.stack([o[sp] for o in outs]) for sp in outs[0]}


# ------------------------------------------------- reward models (fine-tuned, causal LM)

def _resolve_lm(name: str) -> str:
    """``tiny-gpt2:<n_layer>`` builds (once, in the cache) a tiny random GPT-2."""
    if name.startswith("tiny-gpt2:"):
        from .embeddings import cache_dir
        from .models import build_tiny_gpt2
        from .sharding import file_lock

        n_layer = int(name.split(":")[1])
        folder = cache_dir() / "models" / f"tiny-gpt2-{n_layer}"
        with file_lock(folder.with_name(folder.name + ".lock")):  # concurrent shards
            return str(build_tiny_gpt2(folder, n_layer=n_layer))
    return name


def _load_lm(section, seed: int):
    """A causal-LM reward model (section ``model``, checkpointing, head init)."""
    from .models import load_causal_lm_reward

    return load_causal_lm_reward(_resolve_lm(section.model),
                                 gradient_checkpointing=bool(section.gradient_checkpointing),
                                 seed=seed, head_init=section.head_init or "default")


def _train_lm(ctx, model, tok, section, ds, targets, objective: str, seed: int) -> dict:
    """Train a reward model with the loop of ``section`` (:func:`~.training.train_reward_model`)."""
    from .training import train_reward_model

    loop = section.loop(ctx.cfg.device)
    buf = loop.batch_size if loop.micro_batch_size < loop.batch_size else None
    obj = ctx.cfg.objective(objective, buf)
    if buf is not None:
        # Teacher-quantile objectives (Quan_CACE_k) need a quantile sample before their
        # first microbatch: the teacher's labels are known in advance, so seed the buffer
        # with the first optimiser batch of them (a no-op for the other objectives).
        import torch

        obj.observe(None, torch.as_tensor(np.asarray(targets[:buf], dtype=np.float64)))
    with torch_threads(section.num_threads):
        return train_reward_model(model, tok, ds.text_a, ds.text_b, targets, obj, loop,
                                  seed=seed, progress=ctx.progress)


def _predict_lm(ctx, model, tok, section, ds) -> np.ndarray:
    from .training import reward_logits

    loop = section.loop(ctx.cfg.device)
    with torch_threads(section.num_threads):
        return reward_logits(model, tok, ds.text_a, ds.text_b, max_length=loop.max_length,
                             batch_size=loop.micro_batch_size, device=loop.device,
                             bf16=loop.bf16, progress=ctx.progress)
