"""Planted bugs in the random-features (Chapter 3) and real-data (Chapter 6) modules.

Each mutant is one realistic mistake (swapped arguments, the wrong mean, a dropped factor,
a sign, a term set to zero, a ridge scaled by ``lambda`` instead of ``n lambda``, the
wrong split, a leaking fold, an ``n`` for ``n - 1``) with the smallest set of tests that
must catch it; the ``*-chapter`` mutants name no tests: the chapter at its defaults must
fail on them (``python -m tests.mutants.run --only rf-``).
"""

from tests.mutants.run import Mutant

RF = "w2sg_utils/random_features.py"
RIDGE = "w2sg_utils/ridge.py"
LADDER = "w2sg_utils/rf_ladder.py"
POST = "w2sg_utils/rf_posterior.py"
MATCHED = "w2sg_utils/rf_matched.py"
C3 = "w2sg_utils/real_c3.py"
RP = "w2sg_utils/real_posterior.py"
LEARN = "w2sg_utils/misfit_learners.py"
PARAMS = "w2sg_utils/params.py"
LEDGER = "w2sg_utils/ledger.py"

CH3, CH6 = "ch03_random_features", "ch06_theory_meets_experiment"
T_RF = "tests/test_random_features.py"
T_RIDGE = "tests/test_ridge.py"
T_POST = "tests/test_rf_posterior.py"
T_MATCHED = "tests/test_rf_matched.py::test_matched_students_match_the_plain_kernel_formula"
T_LADDER = "tests/test_rf_ladder.py"
T_C3 = "tests/test_real_c3.py"
T_RP = "tests/test_real_posterior.py"
T_LEARN = "tests/test_misfit_learners.py"
T_C3_RUN = f"{T_C3}::test_run_experiment_terms_and_critical_value_on_synthetic_features"
T_RP_PLAIN = f"{T_RP}::test_total_variance_and_alternatives_against_plain_formulas"
T_RP_CHECK = f"{T_RP}::test_identity_check_statistics_against_plain_formulas"

MUTANTS = [
    # ------------------------------------------------------------ random_features.py
    Mutant("rf-random_features-feature-scale", RF,
           "X @ W.transpose(-1, -2) / np.sqrt(d)) / np.sqrt(p)",
           "X @ W.transpose(-1, -2) / np.sqrt(d))",
           tests=(f"{T_RF}::test_random_features_formula",), why="1/sqrt(p) dropped"),
    Mutant("rf-random_features-teacher-ridge-n", RF,
           "beta = ridge_fit(Phi, y_n, n * lam_w)", "beta = ridge_fit(Phi, y_n, lam_w)",
           tests=(f"{T_RF}::test_batched_pipeline_matches_naive",), why="lambda for n lambda"),
    Mutant("rf-random_features-student-ridge-n-chapter", RF,
           "coef = ridge_path(Phi, f_lab, N * lams)", "coef = ridge_path(Phi, f_lab, lams)",
           tests=(), chapter=CH3, why="lambda for N lambda, the chapter's naive check"),
    Mutant("rf-random_features-ensemble-leak", RF,
           "m_hat = ens.mean(1)", "m_hat = f_test.mean(1)",
           tests=(f"{T_RF}::test_ensemble_estimates_match_plain_formulas",),
           why="own teacher in the mean-teacher ensemble"),
    Mutant("rf-random_features-dist-correction", RF,
           '"dist_mean": (ds**2).mean(-1) - corr,', '"dist_mean": (ds**2).mean(-1),',
           tests=(f"{T_RF}::test_ensemble_estimates_match_plain_formulas",),
           why="estimation-error term omitted"),
    Mutant("rf-random_features-teacher-noise-chapter", RF,
           "risk_w[sl] = (noise + ((ybar - f_w) ** 2).mean(-1)).numpy()",
           "risk_w[sl] = (((ybar - f_w) ** 2).mean(-1)).numpy()",
           tests=(), chapter=CH3, why="noise variance dropped from the teacher's risk"),
    Mutant("rf-random_features-cross-sign", RF,
           'return self.per_rep("gain") - self.misfit', 'return self.per_rep("gain") + self.misfit',
           tests=(f"{T_RF}::test_summary_and_derived_quantities",), why="a sign"),
    # ---------------------------------------------------------------------- ridge.py
    Mutant("rf-ridge-eigh-ridge-zero", RIDGE,
           "denom = evals.unsqueeze(-2) + alpha.unsqueeze(-1)",
           "denom = evals.unsqueeze(-2) + 0 * alpha.unsqueeze(-1)",
           tests=(f"{T_RIDGE}::test_matches_numpy_and_sklearn",), why="ridge term set to 0"),
    Mutant("rf-ridge-cutoff-smallest-eigenvalue", RIDGE,
           "cutoff = rcond * evals[..., -1:]", "cutoff = rcond * evals[..., :1]",
           tests=(f"{T_RIDGE}::test_ridgeless_rank_deficient_uses_pseudo_inverse",), why="pseudo-inverse cutoff relative to the wrong end"),
    Mutant("rf-ridge-cholesky-half-penalty-chapter", RIDGE,
           "torch.linalg.cholesky_ex(G + alpha[..., None, None] * eye)",
           "torch.linalg.cholesky_ex(G + alpha[..., None, None] * eye / 2)",
           tests=(), chapter=CH3, why="penalty scaled wrongly, the chapter's sklearn check"),
    Mutant("rf-ridge-condition-ignored", RIDGE,
           "ok = (info == 0) & torch.isfinite(ratio) & (ratio**2 < COND_MAX)",
           "ok = info == 0",
           tests=(f"{T_RIDGE}::test_ridgeless_singular_gram_is_the_pseudo_inverse",), why="ill-conditioned Cholesky kept"),
    Mutant("rf-ridge-path-dual-order", RIDGE,
           "coef.unflatten(-1, (a.numel(), k)).movedim(-2, -3)",
           "coef.unflatten(-1, (k, a.numel())).movedim(-1, -3)",
           tests=(f"{T_RIDGE}::test_path_equals_individual_fits",), why="axes swapped"),
    # ------------------------------------------------------------------ rf_ladder.py
    Mutant("rf-rf_ladder-t-dof", LADDER,
           "t.isf(alpha / n_checks / 2, int(n) - 1)", "t.isf(alpha / n_checks / 2, int(n))",
           tests=("tests/test_power_ch03.py::test_ladder_sizes_and_critical_values",),
           why="n for n - 1 degrees of freedom"),
    Mutant("rf-rf_ladder-alternative-pool-untouched", LADDER,
           "return res.replace(eps=c * res.eps, pool_eps=c * res.pool_eps)",
           "return res.replace(eps=c * res.eps)",
           tests=("tests/test_power_ch03.py::test_check_rejects_each_alternative",),
           why="alternative leaves the checked term alone"),
    Mutant("rf-rf_ladder-bootstrap-no-resample", LADDER,
           "boot[s] = res.replace(**{k: v[idx] for k, v in res.__dict__.items()})",
           "boot[s] = res",
           tests=(T_LADDER,), why="power from the observed data, not resamples"),
    Mutant("rf-rf_ladder-alternative-tags-swapped", LADDER,
           '{"unconditional mean": "mean", "other teacher\'s labels": "other"}',
           '{"unconditional mean": "other", "other teacher\'s labels": "mean"}',
           tests=(T_LADDER,), why="power reported under the wrong alternative's name"),
    Mutant("rf-rf_ladder-bootstrap-truth-entry", LADDER,
           "hits[alt] += rejects(boot, z, alt) != (alt is None)",
           "hits[alt] += rejects(boot, z, alt)",
           tests=(T_LADDER,), why="the truth's rejection rate reported as its acceptance"),
    # --------------------------------------------------------------- rf_posterior.py
    Mutant("rf-rf_posterior-teacher-ridge-n", POST,
           "y, n * lam_w, threads=None)", "y, lam_w, threads=None)",
           tests=(f"{T_POST}::test_batched_pipeline_matches_plain_reference_per_repetition",),
           why="lambda for n lambda"),
    Mutant("rf-rf_posterior-eps-against-teacher", POST,
           'eps=cross_term("squared", ybar[:, None], f_s[:, None], L1[:, None])',
           'eps=cross_term("squared", ybar[:, None], f_s[:, None], f_w[:, None])',
           tests=(f"{T_POST}::test_batched_pipeline_matches_plain_reference_per_repetition",),
           why="the teacher instead of the posterior mean"),
    Mutant("rf-rf_posterior-pool-eps-unconditional-chapter", POST,
           "pool_eps=eps_of(S_h, L_h),", "pool_eps=eps_of(S_h, m_1),",
           tests=(), chapter=CH3, why="the unconditional mean, the chapter's ladder check"),
    Mutant("rf-rf_posterior-mean-wrong-half", POST,
           "F[1:1 + h, N:].mean(0)", "F[1 + h:1 + 2 * h, N:].mean(0)",
           tests=(f"{T_POST}::test_batched_pipeline_matches_plain_reference_per_repetition",),
           why="unconditional mean from the held-out half"),
    Mutant("rf-rf_posterior-c4-one-error", POST,
           "res.misfit - res.dist - res.spread + 2 * res.est_error",
           "res.misfit - res.dist - res.spread + res.est_error",
           tests=(f"{T_POST}::test_check_posterior_identities_formulas_on_exact_numbers",),
           why="factor 2 dropped"),
    Mutant("rf-rf_posterior-pool-noise-chapter", POST,
           "pool_risk_w=noise + np.mean((ybar - F_h) ** 2),",
           "pool_risk_w=np.mean((ybar - F_h) ** 2),",
           tests=(), chapter=CH3, why="noise variance dropped"),
    Mutant("rf-rf_posterior-c3-unpooled", POST,
           '"C3: gain = E M + eps": res.pool_gain - res.pool_misfit - res.pool_eps',
           '"C3: gain = E M + eps": res.gain - res.misfit - res.eps',
           tests=(f"{T_POST}::test_check_posterior_identities_formulas_on_exact_numbers",),
           why="the unpooled terms checked"),
    # ----------------------------------------------------------------- rf_matched.py
    Mutant("rf-rf_matched-dist-half", MATCHED,
           'out["dist"][r, j] = np.mean((f_s - f_s2) ** 2) / 2',
           'out["dist"][r, j] = np.mean((f_s - f_s2) ** 2)',
           tests=(T_MATCHED,), why="factor 1/2 dropped"),
    Mutant("rf-rf_matched-pool-overlap", MATCHED,
           "a, f_w = F[:P, :N], F[:P, N:]", "a, f_w = F[P:2 * P, :N], F[P:2 * P, N:]",
           tests=(T_MATCHED,), why="the weak teachers overlap the student's feature pool"),
    # -------------------------------------------------------------------- real_c3.py
    Mutant("rf-real_c3-bonferroni-one-sided", C3,
           "norm.ppf(1 - alpha / (2 * n_checks))", "norm.ppf(1 - alpha / n_checks)",
           tests=(f"{T_C3}::test_critical_value_is_the_two_sided_bonferroni_quantile",), why="factor 2 dropped: one-sided quantile"),
    Mutant("rf-real_c3-no-bonferroni", C3,
           'z_bonferroni(p["alpha"], len(p["objectives"]))', 'z_bonferroni(p["alpha"], 1)',
           tests=(T_C3_RUN,), why="no correction over the objectives"),
    Mutant("rf-real_c3-swap-teacher-student-chapter", C3,
           'posterior_terms(y["test"], d["z_w_test"][:K], z_s, post.zbar[:K])',
           'posterior_terms(y["test"], z_s, d["z_w_test"][:K], post.zbar[:K])',
           tests=(), chapter=CH6, why="teacher and student swapped"),
    Mutant("rf-real_c3-unconditional-mean", C3,
           'z_s, post.zbar[:K])', 'z_s, post.mean[:K])',
           tests=(T_C3_RUN,),
           why="the unconditional mean for the posterior mean"),
    Mutant("rf-real_c3-student-test-split", C3,
           '("inputs", "train_w2s", p["n_inputs"]),\n                               '
           '("test", "test", p["n_test"]))}',
           '("inputs", "train_w2s", p["n_inputs"]),\n                               '
           '("test", "train_w2s", p["n_test"]))}',
           tests=(f"{T_C3}::test_student_features_are_the_teachers_pairs",),
           why="the student's test features from the wrong split"),
    # -------------------------------------------------------------- real_posterior.py
    Mutant("rf-real_posterior-fold-leak-chapter", RP,
           "held, fit = folds == f, folds != f", "held, fit = folds == f, folds >= 0",
           tests=(), chapter=CH6, why="cross-fitting folds leak"),
    Mutant("rf-real_posterior-centre-all", RP,
           "mu = A[fit].mean(0)", "mu = A.mean(0)",
           tests=(f"{T_RP}::test_crossfit_uses_only_other_folds",),
           why="held-out fold in the centring"),
    Mutant("rf-real_posterior-axes-wrong-end", RP,
           "axes = vt[:rank].T", "axes = vt[-rank:].T",
           tests=(f"{T_RP}::test_crossfit_uses_only_other_folds",),
           why="the smallest principal axes"),
    Mutant("rf-real_posterior-other-no-roll-chapter", RP,
           "other[held] = est.predict(np.roll(s_held, 1, axis=0))",
           "other[held] = est.predict(s_held)",
           tests=(), chapter=CH6, why="'another teacher' conditions on the same teacher"),
    Mutant("rf-real_posterior-total-var-ddof", RP,
           "float(B.var(0, ddof=1).mean())", "float(B.var(0, ddof=0).mean())",
           tests=(T_RP_PLAIN,), why="n for n - 1"),
    Mutant("rf-real_posterior-eps-teacher", RP,
           '"eps": (y - p_s) * (z_s - zbar),', '"eps": (y - p_s) * (z_s - z_w),',
           tests=(f"{T_RP}::test_posterior_terms_against_plain_formulas",),
           why="the teacher instead of the posterior mean"),
    Mutant("rf-real_posterior-alt-half-sign", RP,
           '"eps / 2": m + eps / 2,', '"eps / 2": m - eps / 2,',
           tests=(T_RP_PLAIN,), why="a sign in an alternative"),
    Mutant("rf-real_posterior-draw-se-sqrt", RP,
           "se = rows.std(ddof=1) / np.sqrt(len(rows))\n    return",
           "se = rows.std(ddof=1)\n    return",
           tests=(f"{T_RP}::test_draw_z_and_bootstrap_against_plain_formulas",),
           why="standard error without the sqrt(K)"),
    Mutant("rf-real_posterior-bootstrap-ddof", RP,
           "K * mean**2, 0.0) / (K - 1)", "K * mean**2, 0.0) / K",
           tests=(f"{T_RP}::test_bootstrap_with_few_draws_uses_the_n_minus_1_variance",), why="n for n - 1"),
    Mutant("rf-real_posterior-check-se-ddof", RP,
           "se = float(rows.std(ddof=1) / np.sqrt(len(rows)))",
           "se = float(rows.std(ddof=0) / np.sqrt(len(rows)))",
           tests=(T_RP_CHECK,), why="n for n - 1"),
    Mutant("rf-real_posterior-passed-one-sided", RP,
           "return abs(self.z) <= self.z_crit", "return self.z <= self.z_crit",
           tests=(T_RP_CHECK,), why="one-sided check"),
    # ------------------------------------------------------------ misfit_learners.py
    Mutant("rf-misfit_learners-pooled-batch", LEARN,
           "pooled = onehot_y.mean(axis=1, keepdims=True)",
           "pooled = onehot_y.mean(axis=(0, 1), keepdims=True)",
           tests=(f"{T_LEARN}::test_histogram_teacher_against_loop",),
           why="pooled over the whole batch"),
    Mutant("rf-misfit_learners-class-mean", LEARN,
           "per_net = ((out - yt) ** 2).sum(-1).mean(-1)",
           "per_net = ((out - yt) ** 2).mean(-1).mean(-1)",
           tests=(f"{T_LEARN}::test_mlp_student_objective_against_a_plain_loop",),
           why="a factor 1/k"),
    # --------------------------------------------------------------------- params.py
    Mutant("rf-params-power-of-two", PARAMS,
           "v & (v - 1)", "v & (v + 1)",
           tests=("tests/test_params.py::test_power_of_two_accepts_every_power_and_nothing_else",),
           why="off by one"),
    Mutant("rf-params-min-len", PARAMS,
           "if len(value) < self.min_len:", "if len(value) <= self.min_len:",
           tests=("tests/test_params.py::test_lists_of_exactly_min_len_items_are_accepted",),
           why="off by one"),
    # --------------------------------------------------------------------- ledger.py
    Mutant("rf-ledger-assertion-anywhere", LEDGER,
           "if not any(pos < (call.lineno, call.col_offset) for pos in asserts):",
           "if not asserts:",
           tests=("tests/test_ledger.py",), why="an assertion after the record counts"),
]
