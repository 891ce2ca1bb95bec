"""The objective registry :func:`get_objective`: names, aliases and families
(claims C7-C9, Chapter 4)."""

from __future__ import annotations

import re
from collections.abc import Callable

from .auxiliary import AuxConfidence, EntropyLoss, LogConf, ProductLoss, WindowLoss
from .base import OBJECTIVE_FAMILIES, Objective
from .objectives import CACE, ForwardCE, ForwardKL, QuanCACE, ReverseCE, ReverseKL, SymmetricLoss

_ALIASES = {
    "bce": "bce",
    "ce": "bce",
    "xent": "bce",
    "forward_ce": "bce",
    "reverse_bce": "reverse_bce",
    "rce": "reverse_bce",
    "reverse_ce": "reverse_bce",
    "kl": "kl",
    "reverse_kl": "reverse_kl",
    "aux": "aux",
    "logconf": "logconf",
    "product": "product",
    "entropy": "entropy",
    "window": "window",
}

_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_RE_CACE = re.compile(rf"^cace_(?P<c>{_NUM})$", re.IGNORECASE)
_RE_QUAN = re.compile(r"^quan_cace_(?P<k>\d+)$", re.IGNORECASE)
_RE_SL = re.compile(rf"^sl_a(?P<a>{_NUM})_b(?P<b>{_NUM})$", re.IGNORECASE)


_SIMPLE: dict[str, Callable[..., Objective]] = {
    "bce": ForwardCE,
    "reverse_bce": ReverseCE,
    "kl": ForwardKL,
    "reverse_kl": ReverseKL,
    "aux": AuxConfidence,
    "logconf": LogConf,
    "product": ProductLoss,
    "entropy": EntropyLoss,
    "window": WindowLoss,
}


def _allowed(cls) -> tuple[str, ...]:
    return tuple(cls.options) + ("reduction", "validate")


def _check_options(cls, options: dict, name: str) -> None:
    bad = sorted(set(options) - set(_allowed(cls)))
    if bad:
        raise ValueError(
            f"options: {bad} not accepted by objective {name!r}; valid options are "
            f"{sorted(_allowed(cls))}"
        )


def _unknown(name) -> ValueError:
    listing = "; ".join(f"{k}: {v}" for k, v in OBJECTIVE_FAMILIES.items())
    return ValueError(f"name: unknown objective {name!r}. Valid names: {listing}")


def get_objective(name: str, **options) -> Objective:
    """Build a fresh objective from its name (claims C7-C9; see the module docstring).

    ``name`` is one of ``bce`` (``ce``, ``xent``, ``forward_ce``), ``reverse_bce``
    (``rce``, ``reverse_ce``), ``kl``, ``reverse_kl``, ``CACE_<c>``, ``Quan_CACE_<k>``,
    ``SL_a<alpha>_b<beta>``, ``aux``, ``logconf``, ``product``, ``entropy``, ``window``
    (case-insensitive); the family names ``CACE``, ``Quan_CACE`` and ``SL`` may instead
    take ``c``, ``k`` or ``alpha``/``beta`` as options. Options: ``eps`` (reverse terms),
    ``buffer_size`` (quantile objectives), ``aux_coef``/``warmup_frac`` (``aux``,
    ``logconf``, ``entropy``), ``detach`` (``entropy``), ``alpha``/``beta``
    (``product``), ``radius`` (``window``), and for all ``reduction`` (``"mean"``,
    ``"sum"``, ``"none"``) and ``validate`` (input checks, default True).
    Unknown or malformed names and out-of-range values raise ``ValueError``.
    The returned object's ``name`` is canonical (e.g. ``"CACE_0.1"``).

    Statement: {ref}`sec-ch04-experiment`.
    """
    if not isinstance(name, str):
        raise ValueError(f"name: expected a string, got {type(name).__name__} {name!r}")
    key = name.strip()
    low = key.lower()
    if low in _ALIASES:
        cls = _SIMPLE[_ALIASES[low]]
        _check_options(cls, options, key)
        return cls(**options)
    # families, with the parameter in the name or as an option
    families = {"cace": (("c",), "CACE_<c> with c a number in [0, 1], e.g. CACE_0.1"),
                "quan_cace": (("k",), "Quan_CACE_<k> with k an integer in 0..10, e.g. Quan_CACE_5"),
                "sl": (("alpha", "beta"), "SL_a<alpha>_b<beta> with alpha, beta >= 0, e.g. SL_a1_b0.1")}
    if low in families:
        params, pattern = families[low]
        missing = [p for p in params if p not in options]
        if missing:
            raise ValueError(
                f"name: objective family {key!r} needs {missing} as options, or use the "
                f"form {pattern}"
            )
        given = {p: options.pop(p) for p in params}
    elif m := _RE_CACE.match(key):
        low, given = "cace", {"c": float(m["c"])}
    elif m := _RE_QUAN.match(key):
        low, given = "quan_cace", {"k": int(m["k"])}
    elif m := _RE_SL.match(key):
        low, given = "sl", {"alpha": float(m["a"]), "beta": float(m["b"])}
    else:
        for prefix, (_, pattern) in families.items():
            if low.startswith(prefix + "_"):
                raise ValueError(f"name: malformed objective name {name!r}; expected {pattern}")
        raise _unknown(name)
    cls = {"cace": CACE, "quan_cace": QuanCACE, "sl": SymmetricLoss}[low]
    dup = sorted(set(given) & set(options))
    if dup:
        raise ValueError(f"options: {dup} given both in the name {name!r} and as options")
    _check_options(cls, options, key)
    return cls(**given, **options)


RELEASED_OBJECTIVES = ("bce", "reverse_bce", "kl", "reverse_kl", "CACE_<c>", "Quan_CACE_<k>",
                       "SL_a<alpha>_b<beta>", "aux", "logconf_c<aux_coef>_w<warmup_frac>")
"""Objective names of the released code's reward-model loop (``train_w2s.py``)."""

_RE_REL_AUX = re.compile(rf"^logconf_c(?P<c>{_NUM})_w(?P<w>{_NUM})$", re.IGNORECASE)
_RELEASED_CLASSES = (ForwardCE, ReverseCE, ForwardKL, ReverseKL, CACE, QuanCACE, SymmetricLoss,
                     AuxConfidence)


def release_objective(name: str, **options) -> Objective:
    """An objective exactly as the released code computes it (issue 12; claims C7-C9).

    The settings of the release (``Gengze/W2SG-Bregman``, ``weak_to_strong/loss.py`` and
    ``train_w2s.py``), each overridable by ``options``:

    * label smoothing ``eps = 0`` (the released default ``epsilon``) in every reverse term;
    * ``kl`` / ``reverse_kl``: ``class_mean=True`` (``F.kl_div``'s ``reduction="mean"``
      over the ``(B, 2)`` entries, half the per-pair divergence);
    * ``Quan_CACE_k``: ``scope="train"``, the threshold fixed by :meth:`fit` from every
      training label;
    * ``aux``: ``group_size=1`` (the quantile of each minibatch of one pair, as in the
      released command, so every hard label is 1), ``aux_coef=0.5``,
      ``warmup_frac=0.2``; the released name ``logconf_c<a>_w<w>`` is ``aux`` with
      ``aux_coef=a``, ``warmup_frac=w``.

    The remaining, named difference: the release evaluates (reverse) BCE on
    ``sigmoid(z)`` with torch's log clamped at -100, so for ``|z| > 16`` in float32 its
    value saturates and its gradient vanishes, where the book's stays exact. With
    ``eps = 0`` a hard label in a reverse term raises ``ValueError`` here (the release
    returns a clamped value). Other objectives (``logconf``, ``product``, ``entropy``,
    ``window``) are not in the release's reward loop: ``ValueError``.

    Statement: {ref}`sec-ch04-experiment`.
    """
    if not isinstance(name, str):
        raise ValueError(f"name: expected a string, got {type(name).__name__} {name!r}")
    if m := _RE_REL_AUX.match(name.strip()):
        name = "aux"
        options = {"aux_coef": float(m["c"]), "warmup_frac": float(m["w"])} | options
    cls = type(get_objective(name))
    if cls not in _RELEASED_CLASSES:
        raise ValueError(
            f"name: {name!r} is not an objective of the released code's reward loop; the "
            f"release trains with {', '.join(RELEASED_OBJECTIVES)}")
    release: dict = {}
    if "eps" in cls.options:
        release["eps"] = 0.0
    if cls in (ForwardKL, ReverseKL):
        release["class_mean"] = True
    if cls is QuanCACE:
        release["scope"] = "train"
    if cls is AuxConfidence:
        release |= {"group_size": 1, "aux_coef": 0.5, "warmup_frac": 0.2}
    return get_objective(name, **(release | options))
