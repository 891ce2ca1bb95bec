"""w2sg_utils: the companion package of w2sg-book, one module per idea, in book order.

Used by every chapter: :mod:`checks` (assertions with justified tolerances),
:mod:`params` (a chapter's parameter check in one call), :mod:`plotting` (figure
style), :mod:`ledger` (records of the checks for the claims ledger).

* Chapter 1 (claims C1-C2): :mod:`divergences` (Bregman divergences, gradient maps,
  dual means), :mod:`decompositions` (bias-variance decomposition, gain identity),
  :mod:`quadrature` (exact Gaussian expectations).
* Chapter 2 (C3-C5): :mod:`misfit` (the misfit theorem, the posterior-mean teacher),
  :mod:`enumeration` (exact finite distributions), :mod:`misfit_learners` (histogram
  teachers, MLP students).
* Chapter 3 (C6): :mod:`random_features`, :mod:`ridge` (batched solvers),
  :mod:`posterior_mean` and :mod:`rf_posterior` (the posterior-mean teacher estimated).
* Chapter 4 (C7-C9): :mod:`losses` (every training objective, one registry),
  :mod:`gaussian_classes` (the synthetic Gaussian task), :mod:`entropy_gain` (the
  chapter's statistical tests and their measured power).
* Chapter 5 (C9): :mod:`experiments` (configuration and presets; the run protocol; the
  learners of every back-end and their training loops; data, run store, sweep across
  machines and processes, metrics, the ``w2sg`` command), :mod:`intervals` (intervals
  with test-set sampling).
* Chapter 6 (C3, C4, C7, C9): :mod:`ensemble_terms` (every term of the misfit theorem
  from a teacher ensemble) with ``experiments.ensembles`` (its runner).

``_common`` holds what every module shares (argument checks, thread control, atomic
writes, sample weights); it is internal. ``CONTRIBUTING.md`` says where new code goes;
the book's package page lists the API in this order. Chapter 1 needs only the base
install; chapters 2-4 the ``theory`` extra (torch), chapters 5-6 ``experiments``
(the README's table of extras, checked by ``tests/test_environment.py``).
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
