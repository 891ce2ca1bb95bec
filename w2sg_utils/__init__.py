"""w2sg_utils: the companion package of w2sg-book.

Modules mirror the book: :mod:`divergences` and :mod:`decompositions` (Chapter 1,
claims C1-C2), :mod:`checks` and :mod:`plotting` (used everywhere); later chapters add
their own modules.
"""

from .decompositions import bias_variance_decomposition, expected_loss, gain_identity
from .divergences import DIVERGENCES, get_divergence

__version__ = "0.1.0"

__all__ = [
    "DIVERGENCES",
    "get_divergence",
    "bias_variance_decomposition",
    "expected_loss",
    "gain_identity",
]
