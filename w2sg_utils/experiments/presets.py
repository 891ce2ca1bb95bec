"""The presets (claim C9, Chapter 5): named, validated configurations declared as
typed objects (:mod:`.sections`) built from shared defaults. Add a preset here (see
CONTRIBUTING.md): one :func:`_preset` call naming what differs from the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from .sections import (
    CeilingConfig,
    ExperimentConfig,
    FinetuneConfig,
    Sizes,
    StrongConfig,
    TeacherConfig,
)

__all__ = ["Preset", "PRESETS", "RELEASE_DIFFERENCES"]


@dataclass(frozen=True)
class Preset:
    """A named, validated experiment configuration (claim C9); see
    :func:`~.config.make_config`.

    Statement: {ref}`sec-ch05`.
    """

    name: str
    description: str
    config: ExperimentConfig

    @property
    def backend(self) -> str:
        return self.config.backend

    @property
    def requires_cuda(self) -> bool:
        return self.config.requires_cuda


MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MPNET = "sentence-transformers/all-mpnet-base-v2"
FULL = Sizes(train_gt=4000, train_w2s=4000, test=4000)
BOTH = ("bce", "reverse_bce")
# a head on frozen MiniLM embeddings (the CPU strong model, and minilm-finetune's ceiling)
HEAD = dict(encoder=MINILM, max_length=256, kind="linear", hidden=256, epochs=40, lr=1e-2,
            batch_size=64)
# kind "tfidf" uses C and ngram_max; kind "encoder" (a linear head on the first
# num_layers layers of the strong encoder) uses num_layers and l2
TFIDF = TeacherConfig(kind="tfidf", n_labels=100, C=10.0, ngram_max=2, num_layers=1, l2=1e-3)
# the released training loop (weak_to_strong/train.py, train_reward_model; model.py)
RELEASE_LM = dict(lr=1e-5, batch_size=32, micro_batch_size=8, max_length=1024, bf16=False,
                  gradient_checkpointing=False, dropout=False, order="release",
                  lr_schedule="cosine", head_init="default")
TINY_LM = dict(lr=1e-3, batch_size=8, micro_batch_size=4, epochs=1, max_length=64,
               num_threads=1)
# the fine-tuned pair's teacher: hh-minilm-mpnet's (a linear head on frozen MiniLM at 128
# tokens) on 500 labels with gpu_check_pair.py's penalty: its logistic regression
# minimises ||w||^2 / 2 + C sum BCE, i.e. mean BCE + ||w||^2 / (2 C n), so C = 10 at
# n = 500 is l2 = 1e-4; the head trains as HEAD's (40 epochs, lr 1e-2, batch 64)
PAIR_TEACHER = TeacherConfig(kind="encoder", encoder=MINILM, max_length=128, n_labels=500,
                             l2=1e-4, epochs=HEAD["epochs"], lr=HEAD["lr"],
                             batch_size=HEAD["batch_size"])
DEFAULTS = dict(requires_cuda=False, full_sizes=FULL, seeds=(0, 1, 2, 3, 4), l2_grid=(),
                sweep_objectives=(), ensemble_size=0, ensemble_objectives=(), device="cpu")


def _preset(name: str, description: str, **fields) -> Preset:
    return Preset(name, description, ExperimentConfig(preset=name, **(DEFAULTS | fields)))


RELEASE_DIFFERENCES: dict[str, tuple[str, ...]] = {
    "gpt2-hh": (
        "reward read-out: the release pads with token id 0 and reads the reward at "
        "(ids != 0).sum() - 1, but id 0 is '!' in GPT-2's vocabulary, so a text containing "
        "it is read at the wrong position (about a quarter of train_w2s pairs); here the "
        "last real token, from the attention mask",
        "(reverse) BCE from log-sigmoid: the release applies torch's BCE to sigmoid(z), "
        "whose log is clamped at -100, so beyond |z| ~ 16 its value saturates and its "
        "gradient vanishes; with label smoothing 0, a label exactly 0 or 1 in a reverse "
        "term is an error here",
        "microbatches of similar length with dynamic padding instead of minibatches of "
        "one pair: the same update up to float rounding (tests/experiments/test_release_loop.py)",
        "data: the book's seeded subsets and a/b swap of the shipped HH-helpful splits, "
        "and run seeds derived from each run's configuration",
    ),
}
"""Named differences from the authors' release of each preset that claims its protocol."""

PRESETS: dict[str, Preset] = {p.name: p for p in (
    _preset(
        "hh-minilm-cpu",
        "CPU default: heads on frozen all-MiniLM-L6-v2 embeddings (strong), TF-IDF "
        "logistic regression on a few ground-truth labels (weak teacher)",
        backend="embedding", sizes=Sizes(train_gt=400, train_w2s=600, test=600),
        objectives=None,  # None = every objective of w2sg_utils.losses
        teacher=TFIDF, strong=StrongConfig(**HEAD, l2=1e-3),
        l2_grid=(0.0, 1e-4, 1e-3, 1e-2), sweep_objectives=BOTH, ensemble_size=5,
        ensemble_objectives=BOTH),
    _preset(
        "gpt2-hh",
        "GPU: the released code's protocol with GPT-2 causal LMs (teacher gpt2, 1 epoch; "
        "student gpt2-medium, 2 epochs), last-token bias-free head with nn.Linear's "
        "initialisation, Adam lr 1e-5 with cosine annealing per step, batch 32, dropout "
        "off, float32, one shuffle repeated every epoch, max length 1024 with left "
        "truncation, the released objectives (label smoothing 0)",
        backend="causal_lm", requires_cuda=True, sizes=FULL, device="cuda",
        objectives=("bce", "reverse_bce", "aux", "CACE_0.1", "Quan_CACE_5", "SL_a1_b0.1",
                    "kl", "reverse_kl"),  # the release's README list
        protocol="release",
        teacher=TeacherConfig(kind="causal_lm", model="gpt2", n_labels=4000, epochs=1,
                              **RELEASE_LM),
        strong=StrongConfig(model="gpt2-medium", epochs=2, l2=0.0, **RELEASE_LM),
        ensemble_objectives=BOTH),
    _preset(
        "tiny-gpt2",
        "Tests: the causal-LM path with tiny random GPT-2 models built locally from a "
        "config (no download), a few steps on CPU",
        backend="causal_lm", sizes=Sizes(train_gt=24, train_w2s=24, test=16), seeds=(0,),
        objectives=BOTH,
        teacher=TeacherConfig(kind="causal_lm", model="tiny-gpt2:1", n_labels=24, **TINY_LM),
        strong=StrongConfig(model="tiny-gpt2:2", l2=0.0, bf16=False,
                            gradient_checkpointing=False, **TINY_LM),
        ensemble_size=2, ensemble_objectives=("bce",)),
    _preset(
        "minilm-finetune",
        "CPU or CUDA: the whole all-MiniLM-L6-v2 encoder + a bias-free head fine-tuned "
        "end to end as the strong student (max length 128, 160 train_w2s pairs, 1 epoch "
        "on CPU); teacher and ceiling as in hh-minilm-cpu",
        backend="finetune", sizes=Sizes(train_gt=400, train_w2s=160, test=300),
        seeds=(0, 1, 2), objectives=BOTH, teacher=TFIDF,
        # the ceiling: hh-minilm-cpu's strong model (head on frozen embeddings)
        ceiling=CeilingConfig(**HEAD),
        # num_threads None: torch's default (both cores)
        strong=FinetuneConfig(model=MINILM, max_length=128, lr=5e-5, head_lr=1e-2,
                              batch_size=8, micro_batch_size=8, epochs=1, l2=1e-3,
                              dtype="float32", num_threads=None),
        l2_grid=(0.0, 1e-3), sweep_objectives=BOTH),
    _preset(
        "hh-minilm-mpnet",
        "CPU, the pretrained pair (issue 18): weak teacher a linear head on frozen "
        "all-MiniLM-L6-v2 embeddings trained on 10 ground-truth pairs (few, to leave a gap); students and "
        "ceiling heads on frozen all-mpnet-base-v2 embeddings; both encoders at 128 "
        "tokens, left truncation, read from the shipped artifact (results/embeddings)",
        backend="embedding", sizes=Sizes(train_gt=400, train_w2s=600, test=800),
        objectives=None,
        teacher=TeacherConfig(kind="encoder", encoder=MINILM, max_length=128, n_labels=10,
                              l2=1e-3),
        strong=StrongConfig(**(HEAD | dict(encoder=MPNET, max_length=128)), l2=1e-3),
        l2_grid=(0.0, 1e-3), sweep_objectives=BOTH),
    _preset(
        "hh-minilm-mpnet-finetune",
        "GPU, bf16, the pretrained pair (issue 18) with all-mpnet-base-v2 fine-tuned end "
        "to end (whole encoder + a bias-free head) as strong student and, on the true "
        "labels, as ceiling; weak teacher a linear head on frozen all-MiniLM-L6-v2 "
        "embeddings trained on 500 ground-truth pairs. The settings of the GPU check of "
        "this pair (benchmarks/gpu_check_pair.py, stage mpnet_pair), so the two agree: "
        "128 tokens with left truncation, 2000 train_w2s and 2000 test pairs, 1 epoch, "
        "batch 32, Adam lr 2e-5 (encoder) and 1e-3 (head), dropout off, head L2 0; "
        "teacher L2 1e-4 (the check's C = 10 at 500 pairs)",
        backend="finetune", requires_cuda=True, device="cuda",
        sizes=Sizes(train_gt=500, train_w2s=2000, test=2000), objectives=BOTH,
        teacher=PAIR_TEACHER,
        # ceiling None: the strong model (fine-tuned MPNet) on the true labels
        strong=FinetuneConfig(model=MPNET, max_length=128, lr=2e-5, head_lr=1e-3,
                              batch_size=32, micro_batch_size=32, epochs=1, l2=0.0,
                              dtype="bfloat16", num_threads=None, dropout=False),
        l2_grid=(0.0, 1e-3), sweep_objectives=BOTH),
)}
"""``hh-minilm-cpu`` (default: frozen MiniLM + heads on CPU, TF-IDF teacher), ``gpt2-hh``
(the released code's GPT-2 protocol on a GPU), ``tiny-gpt2`` (the causal-LM path with a
tiny random GPT-2, for tests), ``minilm-finetune`` (a fine-tuned encoder student),
``hh-minilm-mpnet`` (the pretrained pair: MiniLM-head teacher, MPNet-head students),
``hh-minilm-mpnet-finetune`` (the same pair with MPNet fine-tuned end to end on a GPU)."""
