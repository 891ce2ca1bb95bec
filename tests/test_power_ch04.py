"""Power of Chapter 4's statistical tests at the chapter's default parameters and the CI
seed: each check (the package functions of ``w2sg_utils.entropy_gain`` that the chapter
runs) passes on the truth and rejects every named wrong alternative, and the bootstrap
power the chapter prints is at least 0.95 against each.

The data are built as the chapter builds them (same parameters, same order of draws from
the seed). The pooled per-run checks are run on three of the twelve objectives (the
family's rejection by one objective is a rejection of the chapter's check; training all
twelve would triple the time); the critical value is the chapter's, for all of its
comparisons.
"""

import numpy as np
import pytest
from scipy.special import log_softmax

from w2sg_utils.entropy_gain import (
    EXPERIMENT_ALTERNATIVES,
    EXPERIMENT_KEYS,
    RESIDUAL_ALTERNATIVES,
    TEMPERATURE_ALTERNATIVES,
    assert_no_rejection,
    bonferroni_z,
    bootstrap_power,
    experiment_differences,
    residual_differences,
    temperature_differences,
)
from w2sg_utils.gaussian_classes import make_gaussian_task, train_linear, w2s_terms
from w2sg_utils.losses import OBJECTIVE_NAMES, get_objective

SEED = 20261128
# the chapter's defaults (notebooks/ch04_cross_entropy.md, parameters cell)
K, DIM, WEAK_DIM, SEPARATION, WEAK_NOISE = 3, 10, 3, 3.0, 1.0
N_TEACHER, N_STUDENT, N_TEST, N_REPS = 300, 2000, 20000, 8
TRAIN = dict(epochs=20, batch_size=100, lr=0.05, l2=1e-3)
TEMPERATURES = [0.5, 0.8, 1.25, 2.0]
N_BOOT, ALPHA = 100, 1e-3
TAUS = np.unique(np.append(np.geomspace(0.3, 3.0, 17), 1.0))
Z_CRIT = bonferroni_z(len(TAUS) + len(TEMPERATURES) + 2 * len(OBJECTIVE_NAMES), ALPHA)
OBJECTIVES = ("bce", "reverse_bce", "reverse_kl")


def assert_rejects(d, alternative):
    with pytest.raises(AssertionError):
        assert_no_rejection(d, Z_CRIT, what=alternative)


@pytest.fixture(scope="module")
def view_noise():
    rng = np.random.default_rng(SEED)
    rng.dirichlet(np.ones(K), 500)  # the chapter's identity check draws first
    rng.normal(0, 2, (500, K))
    rng.normal(0, 2, (500, K))
    task = make_gaussian_task(K, DIM, WEAK_DIM, SEPARATION, WEAK_NOISE, rng)
    d_t = task.sample(N_TEACHER, rng)
    teacher = train_linear(d_t["x_weak"], np.eye(K)[d_t["y"]], get_objective("bce"),
                           seed=SEED, **TRAIN)
    test = task.sample(N_TEST, rng)
    log_ybar = task.posterior_log_probs(test["x"])
    log_w = teacher.log_probs(test["x_weak"])
    logits_wbar = teacher.logits(test["x_weak_clean"])
    log_wbar = log_softmax(logits_wbar, axis=1)
    terms = [w2s_terms(test["y"], log_ybar, log_softmax(logits_wbar / tau, axis=1), log_w,
                       log_wbar) for tau in TAUS]
    return task, {alt: residual_differences(terms, alt)
                  for alt in (None, *RESIDUAL_ALTERNATIVES)}


@pytest.fixture(scope="module")
def experiment(view_noise):
    task = view_noise[0]
    kept, temp = {name: [] for name in OBJECTIVES}, []
    for rep in range(N_REPS):
        rep_rng, rep_seed = np.random.default_rng([SEED, rep]), SEED * 1000 + rep
        d_t, d_s, d_test, d_held = (task.sample(n, rep_rng)
                                    for n in (N_TEACHER, N_STUDENT, N_TEST, N_TEST))
        f_w = train_linear(d_t["x_weak"], np.eye(K)[d_t["y"]], get_objective("bce"),
                           seed=rep_seed, **TRAIN)
        labels = np.exp(f_w.log_probs(d_s["x_weak"]))
        lyb = task.posterior_log_probs(d_test["x"])
        lw, lwb = f_w.log_probs(d_test["x_weak"]), f_w.log_probs(d_test["x_weak_clean"])
        for name in OBJECTIVES:
            f_s = train_linear(d_s["x"], labels, get_objective(name), seed=rep_seed, **TRAIN)
            t = w2s_terms(d_test["y"], lyb, f_s.log_probs(d_test["x"]), lw, lwb)
            kept[name].append({k: t[k] for k in EXPERIMENT_KEYS})
            if name == "bce":
                temp.append(temperature_differences(
                    f_s.logits(d_test["x"]), d_test["y"], lyb, lw, lwb,
                    f_s.logits(d_held["x"]), d_held["y"], TEMPERATURES))
    return [kept[name] for name in OBJECTIVES], temp


def test_view_noise_residual(view_noise):
    d = view_noise[1]
    assert_no_rejection(d[None], Z_CRIT)
    for alt in RESIDUAL_ALTERNATIVES:
        assert_rejects(d[alt], alt)
    power = bootstrap_power({a: d[a] for a in RESIDUAL_ALTERNATIVES}, Z_CRIT, N_BOOT, 0)
    assert min(power.values()) >= 0.95, power


@pytest.mark.parametrize("check", sorted(EXPERIMENT_ALTERNATIVES))
def test_pooled_run_checks(experiment, check):
    per_objective = experiment[0]
    assert_no_rejection(experiment_differences(per_objective, check), Z_CRIT)
    alts = {a: experiment_differences(per_objective, check, a)
            for a in EXPERIMENT_ALTERNATIVES[check]}
    for alt, d in alts.items():
        assert_rejects(d, alt)
    power = bootstrap_power(alts, Z_CRIT, N_BOOT, 0)
    assert min(power.values()) >= 0.95, power


def test_temperature(experiment):
    temp = experiment[1]
    d = {a: np.stack([t[a] for t in temp], axis=1) for a in (None, *TEMPERATURE_ALTERNATIVES)}
    assert_no_rejection(d[None], Z_CRIT)
    for alt in TEMPERATURE_ALTERNATIVES:
        assert_rejects(d[alt], alt)
    power = bootstrap_power({a: d[a] for a in TEMPERATURE_ALTERNATIVES}, Z_CRIT, N_BOOT, 0)
    assert min(power.values()) >= 0.95, power
