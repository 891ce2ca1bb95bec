"""The presets' data (claim C9, Chapter 5): ``name -> (description, backend,
requires_cuda, configuration)``; :mod:`.config` turns each into a validated
:class:`~w2sg_utils.experiments.config.Preset`. Add a preset here (see CONTRIBUTING.md).
"""

from __future__ import annotations

_HEAD = {"kind": "linear", "hidden": 256, "epochs": 40, "lr": 1e-2, "batch_size": 64}
# the released training loop (weak_to_strong/train.py, train_reward_model; model.py)
_RELEASE_LOOP = {"dropout": False, "order": "release", "lr_schedule": "cosine",
                 "head_init": "default"}

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
        "one pair: the same update up to float rounding (tests/test_release_loop.py)",
        "data: the book's seeded subsets and a/b swap of the shipped HH-helpful splits, "
        "and run seeds derived from each run's configuration",
    ),
}
"""Named differences from the authors' release of each preset that claims its protocol."""

PRESET_TABLE: dict[str, tuple[str, str, bool, dict]] = {
    "hh-minilm-cpu": (
        "CPU default: heads on frozen all-MiniLM-L6-v2 embeddings (strong), TF-IDF "
        "logistic regression on a few ground-truth labels (weak teacher)",
        "embedding",
        False,  # runs on CPU
        {
            "sizes": {"train_gt": 400, "train_w2s": 600, "test": 600},
            "full_sizes": {"train_gt": 4000, "train_w2s": 4000, "test": 4000},
            "seeds": [0, 1, 2, 3, 4],
            "objectives": None,  # None = every objective of w2sg_utils.losses
            # kind "tfidf" uses C and ngram_max; kind "encoder" (a linear head on the
            # first num_layers layers of the strong encoder) uses num_layers and l2
            "teacher": {"kind": "tfidf", "n_labels": 100, "C": 10.0, "ngram_max": 2,
                        "num_layers": 1, "l2": 1e-3},
            "strong": {"encoder": "sentence-transformers/all-MiniLM-L6-v2",
                       "max_length": 256, **_HEAD, "l2": 1e-3},
            "l2_grid": [0.0, 1e-4, 1e-3, 1e-2],
            "sweep_objectives": ["bce", "reverse_bce"],
            "ensemble_size": 5,
            "ensemble_objectives": ["bce", "reverse_bce"],
            "device": "cpu",
        },
    ),
    "gpt2-hh": (
        "GPU: the released code's protocol with GPT-2 causal LMs (teacher gpt2, 1 epoch; "
        "student gpt2-medium, 2 epochs), last-token bias-free head with nn.Linear's "
        "initialisation, Adam lr 1e-5 with cosine annealing per step, batch 32, dropout "
        "off, float32, one shuffle repeated every epoch, max length 1024 with left "
        "truncation, the released objectives (label smoothing 0)",
        "causal_lm",
        True,  # requires CUDA
        {
            "sizes": {"train_gt": 4000, "train_w2s": 4000, "test": 4000},
            "full_sizes": {"train_gt": 4000, "train_w2s": 4000, "test": 4000},
            "seeds": [0, 1, 2, 3, 4],
            "objectives": ["bce", "reverse_bce", "aux", "CACE_0.1", "Quan_CACE_5",
                           "SL_a1_b0.1", "kl", "reverse_kl"],  # the release's README list
            "protocol": "release",
            "teacher": {"kind": "causal_lm", "model": "gpt2", "n_labels": 4000, "lr": 1e-5,
                        "batch_size": 32, "micro_batch_size": 8, "epochs": 1,
                        "max_length": 1024, "bf16": False, "gradient_checkpointing": False,
                        **_RELEASE_LOOP},
            "strong": {"model": "gpt2-medium", "lr": 1e-5, "batch_size": 32,
                       "micro_batch_size": 8, "epochs": 2, "max_length": 1024, "l2": 0.0,
                       "bf16": False, "gradient_checkpointing": False, **_RELEASE_LOOP},
            "l2_grid": [],
            "sweep_objectives": [],
            "ensemble_size": 0,
            "ensemble_objectives": ["bce", "reverse_bce"],
            "device": "cuda",
        },
    ),
    "tiny-gpt2": (
        "Tests: the causal-LM path with tiny random GPT-2 models built locally from a "
        "config (no download), a few steps on CPU",
        "causal_lm",
        False,
        {
            "sizes": {"train_gt": 24, "train_w2s": 24, "test": 16},
            "full_sizes": {"train_gt": 4000, "train_w2s": 4000, "test": 4000},
            "seeds": [0],
            "objectives": ["bce", "reverse_bce"],
            "teacher": {"kind": "causal_lm", "model": "tiny-gpt2:1", "n_labels": 24,
                        "lr": 1e-3, "batch_size": 8, "micro_batch_size": 4, "epochs": 1,
                        "max_length": 64, "num_threads": 1},
            "strong": {"model": "tiny-gpt2:2", "lr": 1e-3, "batch_size": 8,
                       "micro_batch_size": 4, "epochs": 1, "max_length": 64, "l2": 0.0,
                       "bf16": False, "gradient_checkpointing": False, "num_threads": 1},
            "l2_grid": [],
            "sweep_objectives": [],
            "ensemble_size": 2,
            "ensemble_objectives": ["bce"],
            "device": "cpu",
        },
    ),
    "minilm-finetune": (
        "CPU or CUDA: the whole all-MiniLM-L6-v2 encoder + a bias-free head fine-tuned "
        "end to end as the strong student (max length 128, 160 train_w2s pairs, 1 epoch "
        "on CPU); teacher and ceiling as in hh-minilm-cpu",
        "finetune",
        False,
        {
            "sizes": {"train_gt": 400, "train_w2s": 160, "test": 300},
            "full_sizes": {"train_gt": 4000, "train_w2s": 4000, "test": 4000},
            "seeds": [0, 1, 2],
            "objectives": ["bce", "reverse_bce"],
            "teacher": {"kind": "tfidf", "n_labels": 100, "C": 10.0, "ngram_max": 2,
                        "num_layers": 1, "l2": 1e-3},
            # the ceiling: hh-minilm-cpu's strong model (head on frozen embeddings)
            "ceiling": {"encoder": "sentence-transformers/all-MiniLM-L6-v2",
                        "max_length": 256, **_HEAD},
            # num_threads None: torch's default (both cores)
            "strong": {"model": "sentence-transformers/all-MiniLM-L6-v2", "max_length": 128,
                       "lr": 5e-5, "head_lr": 1e-2, "batch_size": 8, "micro_batch_size": 8,
                       "epochs": 1, "l2": 1e-3, "dtype": "float32", "num_threads": None},
            "l2_grid": [0.0, 1e-3],
            "sweep_objectives": ["bce", "reverse_bce"],
            "ensemble_size": 0,
            "ensemble_objectives": [],
            "device": "cpu",
        },
    ),
}


