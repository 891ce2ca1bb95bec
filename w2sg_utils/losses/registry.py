"""The objective table and registry :func:`get_objective` (claims C7-C9, Chapter 4).

Every objective declares its own row of the table as class attributes (``name`` or,
for a family, ``family``/``label``/``params``/``pattern``; ``aliases``, ``summary``,
``example``, ``released``; see :class:`~w2sg_utils.losses.base.Objective`). The one
list :data:`OBJECTIVES` registers them; the name lookup, :data:`OBJECTIVE_NAMES`,
:data:`OBJECTIVE_FAMILIES`, :data:`RELEASED_OBJECTIVES` and the error messages are
derived from it. Adding an objective is one class and one line here.
"""

from __future__ import annotations

import re

from .auxiliary import AuxConfidence, EntropyLoss, LogConf, ProductLoss, WindowLoss
from .base import NUMBER, Objective
from .objectives import CACE, ForwardCE, ForwardKL, QuanCACE, ReverseCE, ReverseKL, SymmetricLoss

OBJECTIVES: tuple[type[Objective], ...] = (
    ForwardCE, ReverseCE, ForwardKL, ReverseKL, CACE, QuanCACE, SymmetricLoss,
    AuxConfidence, LogConf, ProductLoss, EntropyLoss, WindowLoss,
)
"""The registered objective classes, in the order of the listings."""

TABLE_FIELDS = ("aliases", "summary", "example", "released")
"""The row of the table every registered class declares itself (tested)."""


def build_tables(classes):
    """The lookups ``(names and aliases -> class, family key -> class)`` of ``classes``,
    all lowercase; a name taken twice raises ``ValueError`` (claims C7-C9,
    {ref}`sec-ch04-experiment`)."""
    simple: dict[str, type[Objective]] = {}
    families: dict[str, type[Objective]] = {}
    for cls in classes:
        if cls.params:
            keys, table = (cls.family,), families
        else:
            keys, table = (cls.name.lower(),) + tuple(cls.aliases), simple
        for k in keys:
            if k in simple or k in families:
                raise ValueError(f"OBJECTIVES: the name {k!r} is taken twice")
            table[k] = cls
    return simple, families


_SIMPLE, _FAMILIES = build_tables(OBJECTIVES)
_PATTERNS = [(re.compile(rf"^{cls.pattern}$", re.IGNORECASE), cls)
             for cls in _FAMILIES.values()]

OBJECTIVE_NAMES = [cls.example for cls in OBJECTIVES]
"""One example name per objective (families take their parameter in the name)."""

OBJECTIVE_FAMILIES = {(cls.label or cls.name): cls.summary for cls in OBJECTIVES}
"""Each objective's listed name (``CACE_<c>`` for a family) and one-line summary."""


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
    if low in _SIMPLE:
        cls = _SIMPLE[low]
        _check_options(cls, options, key)
        return cls(**options)
    # families, with the parameters in the name or as options
    if low in _FAMILIES:
        cls = _FAMILIES[low]
        missing = [p for p in cls.params if p not in options]
        if missing:
            raise ValueError(
                f"name: objective family {key!r} needs {missing} as options, or use the "
                f"form {cls.hint}"
            )
        given = {p: options.pop(p) for p in cls.params}
    else:
        for regex, cls in _PATTERNS:
            if m := regex.match(key):
                given = {p: cls.param_type(m[p]) for p in cls.params}
                break
        else:
            for fam, cls in _FAMILIES.items():
                if low.startswith(fam + "_"):
                    raise ValueError(
                        f"name: malformed objective name {name!r}; expected {cls.hint}")
            raise _unknown(name)
    dup = sorted(set(given) & set(options))
    if dup:
        raise ValueError(f"options: {dup} given both in the name {name!r} and as options")
    _check_options(cls, options, key)
    return cls(**given, **options)


_RELEASED_CLASSES = tuple(cls for cls in OBJECTIVES if cls.released is not None)

RELEASED_OBJECTIVES = tuple(cls.label or cls.name for cls in _RELEASED_CLASSES) + (
    "logconf_c<aux_coef>_w<warmup_frac>",)
"""Objective names of the released code's reward-model loop (``train_w2s.py``)."""

_RE_REL_AUX = re.compile(rf"^logconf_c(?P<c>{NUMBER})_w(?P<w>{NUMBER})$", re.IGNORECASE)


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
    release: dict = {"eps": 0.0} if "eps" in cls.options else {}
    release |= cls.released
    return get_objective(name, **(release | options))
