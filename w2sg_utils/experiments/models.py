"""Models of the weak-to-strong experiments (claim C9, Chapter 5).

Every model scores a pair by a bias-free scalar reward ``r``: ``z = r(text_a) -
r(text_b)`` and ``P(a preferred) = sigmoid(z)``.

- :class:`PairHead`: the CPU strong model (student and ceiling): a linear or small MLP
  reward head on frozen encoder embeddings (:mod:`w2sg_utils.embeddings`).
- :class:`TfidfTeacher`: a weak teacher from a different family: a logistic regression
  without intercept on TF-IDF features, ``z_w = w . (tfidf(a) - tfidf(b))``.
- :class:`CausalLMReward`: the GPU-scale model of the released code: a Hugging Face causal LM body
  (GPT-2 family) with a bias-free linear head on the hidden state of the last token.
- :func:`build_tiny_gpt2`: a tiny random GPT-2 with a locally trained BPE tokenizer,
  saved to a folder, to test the causal-LM path on CPU without downloads.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = [
    "PairHead",
    "TfidfTeacher",
    "CausalLMReward",
    "build_tiny_gpt2",
    "load_causal_lm_reward",
    "sigmoid",
]


def sigmoid(z) -> np.ndarray:
    """Numerically stable logistic function (the soft label ``sigmoid(z_w)``)."""
    from scipy.special import expit

    return expit(np.asarray(z, dtype=np.float64))


def _torch():
    import torch

    return torch


def PairHead(dim: int, kind: str = "linear", hidden: int = 256):  # noqa: N802 - factory
    """A bias-free reward head ``r(e)`` on embeddings and its pairwise logit.

    ``kind="linear"``: ``r(e) = w . e``; ``kind="mlp"``: ``r(e) = w . gelu(W e + b)``.
    The module's ``forward(e_a, e_b)`` returns ``z = r(e_a) - r(e_b)``, shape ``(B,)``.
    """
    torch = _torch()
    nn = torch.nn
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim: must be a positive integer, got {dim!r}")
    if kind not in ("linear", "mlp"):
        raise ValueError(f"kind: 'linear' or 'mlp', got {kind!r}")
    if not isinstance(hidden, int) or hidden < 1:
        raise ValueError(f"hidden: must be a positive integer, got {hidden!r}")

    class _PairHead(nn.Module):
        def __init__(self):
            super().__init__()
            if kind == "linear":
                self.body = nn.Identity()
                self.head = nn.Linear(dim, 1, bias=False)
            else:
                self.body = nn.Sequential(nn.Linear(dim, hidden), nn.GELU())
                self.head = nn.Linear(hidden, 1, bias=False)
            if kind == "linear":  # convex problem: start at zero (r = 0, z = 0)
                nn.init.zeros_(self.head.weight)

        def reward(self, e):
            return self.head(self.body(e)).squeeze(-1)

        def forward(self, e_a, e_b):
            return self.reward(e_a) - self.reward(e_b)

    return _PairHead()


class TfidfTeacher:
    """Weak teacher: bias-free logistic regression on TF-IDF differences (claim C9).

    ``fit`` learns the vocabulary and IDF on its own training texts only, then a
    logistic regression without intercept on ``tfidf(a) - tfidf(b)``; ``logits`` returns
    ``z_w``, so the soft label is ``sigmoid(z_w)``. ``C`` is the inverse L2 strength.

    Statement: {prf:ref}`def-ch05-pairwise`.
    """

    def __init__(self, C: float = 1.0, max_features: int = 20000, ngram_max: int = 2,
                 min_df: int = 1):
        if not (isinstance(C, (int, float)) and C > 0 and np.isfinite(C)):
            raise ValueError(f"C: must be a positive finite number, got {C!r}")
        if not isinstance(max_features, int) or max_features < 1:
            raise ValueError(f"max_features: must be a positive integer, got {max_features!r}")
        if ngram_max not in (1, 2, 3):
            raise ValueError(f"ngram_max: 1, 2 or 3, got {ngram_max!r}")
        self.C, self.max_features, self.ngram_max, self.min_df = float(C), max_features, ngram_max, min_df
        self._vec = None
        self._clf = None

    def _features(self, text_a, text_b):
        return self._vec.transform(list(text_a)) - self._vec.transform(list(text_b))

    def fit(self, text_a, text_b, label) -> TfidfTeacher:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        label = np.asarray(label)
        if len(text_a) != len(text_b) or label.shape != (len(text_a),):
            raise ValueError("label: text_a, text_b and label must have the same length")
        if len(np.unique(label)) < 2:
            raise ValueError("label: the teacher's training labels contain a single class")
        self._vec = TfidfVectorizer(max_features=self.max_features, min_df=self.min_df,
                                    ngram_range=(1, self.ngram_max), sublinear_tf=True)
        self._vec.fit(list(text_a) + list(text_b))
        self._clf = LogisticRegression(C=self.C, fit_intercept=False, max_iter=2000)
        self._clf.fit(self._features(text_a, text_b), label)
        return self

    def logits(self, text_a, text_b) -> np.ndarray:
        """``z_w = r(a) - r(b)`` for each pair."""
        if self._clf is None:
            raise RuntimeError("TfidfTeacher: call fit first")
        return self._clf.decision_function(self._features(text_a, text_b)).astype(np.float64)


HEAD_INITS = ("default", "normal")
"""Head initialisations: ``nn.Linear``'s default (the release's), or N(0, 1/(h+1))."""


def CausalLMReward(body, hidden_size: int | None = None,  # noqa: N802 - factory
                   head_init: str = "default"):
    """Reward model of the released code's protocol: causal-LM body + bias-free last-token head.

    ``forward(input_ids, attention_mask)`` returns one reward per sequence, read at the
    last real token (inputs are **left**-padded and left-truncated, so it is the final
    position). ``pair_logits`` scores ``a`` and ``b`` in one batch: ``z = r(a) - r(b)``.
    ``head_init="default"`` keeps ``nn.Linear``'s uniform initialisation, as the release
    (``weak_to_strong/model.py``, ``TransformerWithSingleHead``); ``"normal"`` draws
    N(0, 1/(h+1)) (about 1.7 times the standard deviation).

    The one deliberate difference from the release: it pads with token id 0 and reads
    the reward at position ``(ids != 0).sum() - 1``, but id 0 is ``"!"`` in GPT-2's
    vocabulary, so a text containing that token is read at the wrong position; here the
    position comes from the attention mask.
    """
    torch = _torch()
    nn = torch.nn
    if head_init not in HEAD_INITS:
        raise ValueError(f"head_init: one of {HEAD_INITS}, got {head_init!r}")
    hs = hidden_size or body.config.hidden_size

    class _Reward(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = body
            self.head = nn.Linear(hs, 1, bias=False)
            if head_init == "normal":
                nn.init.normal_(self.head.weight, std=1.0 / (hs + 1) ** 0.5)

        def forward(self, input_ids, attention_mask):
            # positions count real tokens only, so left padding does not shift them
            position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
            out = self.body(input_ids=input_ids, attention_mask=attention_mask,
                            position_ids=position_ids)
            hidden = out.last_hidden_state
            # last real token: with left padding it is the final position; computing the
            # index from the mask also handles right padding correctly.
            pos = torch.arange(attention_mask.shape[1], device=attention_mask.device)
            last = (attention_mask * pos).argmax(dim=1)
            h = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
            return self.head(h.to(self.head.weight.dtype)).squeeze(-1)

        def pair_logits(self, input_ids, attention_mask):
            """Rows ``[a_1..a_m, b_1..b_m]`` in one batch; returns ``r(a) - r(b)``."""
            r = self(input_ids, attention_mask)
            m = r.shape[0] // 2
            return r[:m] - r[m:]

    return _Reward()


def load_causal_lm_reward(model: str, gradient_checkpointing: bool = False,
                          seed: int = 0, head_init: str = "default"):
    """Body from ``model`` (hub id or folder) + a fresh head (drawn right after
    ``torch.manual_seed(seed)``); and its tokenizer.

    The tokenizer pads and truncates on the left (the released code's left truncation).
    """
    torch = _torch()
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    tok.truncation_side = "left"
    body = AutoModel.from_pretrained(model)
    if gradient_checkpointing:
        enable = getattr(body, "activation_checkpointing_enable", None) or \
            body.gradient_checkpointing_enable
        enable()
        body.config.use_cache = False
    torch.manual_seed(seed)
    return CausalLMReward(body, head_init=head_init), tok


def build_tiny_gpt2(path: str | os.PathLike, n_layer: int = 2, n_embd: int = 64,
                    n_head: int = 2, n_positions: int = 128, vocab_size: int = 512,
                    texts=None, seed: int = 0, dropout: float = 0.0) -> Path:
    """Save a tiny random GPT-2 and a BPE tokenizer trained locally to ``path``.

    No download: the tokenizer is trained with ``tokenizers`` on ``texts`` (default: a
    slice of the shipped HH-helpful data) and the model is built from a ``GPT2Config``.
    Idempotent: an existing complete folder with the same settings is reused.
    """
    import json

    torch = _torch()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    for name, v in (("n_layer", n_layer), ("n_embd", n_embd), ("n_head", n_head),
                    ("n_positions", n_positions), ("vocab_size", vocab_size)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}: must be a positive integer, got {v!r}")
    if n_embd % n_head:
        raise ValueError(f"n_head: must divide n_embd ({n_embd}), got {n_head}")
    path = Path(path)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"dropout: a probability in [0, 1), got {dropout!r}")
    spec = {"n_layer": n_layer, "n_embd": n_embd, "n_head": n_head,
            "n_positions": n_positions, "vocab_size": vocab_size, "seed": seed}
    if dropout:
        spec["dropout"] = float(dropout)
    marker = path / "w2sg_tiny_gpt2.json"
    if marker.is_file() and json.loads(marker.read_text()) == spec:
        return path
    if texts is None:
        from .data import load_pairs

        rows = load_pairs("train_gt")[:100]
        texts = [r["chosen"] for r in rows] + [r["rejected"] for r in rows]
    tk = Tokenizer(models.BPE(unk_token=None))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tk.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|endoftext|>",
                                   bos_token="<|endoftext|>", unk_token="<|endoftext|>",
                                   pad_token="<|endoftext|>")
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=tk.get_vocab_size(), n_positions=n_positions, n_embd=n_embd,
                     n_layer=n_layer, n_head=n_head, bos_token_id=0, eos_token_id=0,
                     resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout)
    model = GPT2LMHeadModel(cfg)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    marker.write_text(json.dumps(spec))
    return path
