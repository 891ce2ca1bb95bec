"""Planted bugs that Chapters 1, 2 and 4 must catch on their own, at their defaults.

The guide's promise is that a planted bug makes "the tests or the chapter" fail; these
mutants name no test (``tests=()``), so only the chapter's own asserts can catch them.
Each chapter shows a short naive computation of its key quantities from their formulas
and asserts that the package agrees, so a bug in a package function that a chapter uses
for its main claims (the divergence, the dual mean, the bias-variance terms, the misfit,
the cross term eps, the posterior mean, the Bayes posterior, the ensemble terms) fails
the chapter rather than silently changing its numbers. Many of these edits are also in
``catalog_theory.py``, where the tests must catch them.

    python -m tests.mutants.run --only chap-

Chapter 1 (ch01_bregman): 14 of 14 mutants caught.
Chapter 2 (ch02_misfit): 14 of 14 mutants caught.
Chapter 4 (ch04_cross_entropy): 16 of 16 mutants caught.
"""

from tests.mutants.run import Mutant

_D = "w2sg_utils/divergences.py"
_DEC = "w2sg_utils/decompositions.py"
_M = "w2sg_utils/misfit.py"
_EN = "w2sg_utils/enumeration.py"
_EG = "w2sg_utils/entropy_gain.py"
_G = "w2sg_utils/gaussian_classes.py"

CH1, CH2, CH4 = "ch01_bregman", "ch02_misfit", "ch04_cross_entropy"

MUTANTS = [
    # ---- Chapter 1: the divergences, the dual mean, bias-variance, gain identity (C1, C2)
    Mutant("chap-ch01-squared-grad-factor", _D,
           "        return 2.0 * u\n", "        return u\n",
           tests=(), chapter=CH1, why="a dropped factor 2 in grad phi"),
    Mutant("chap-ch01-kl-grad-inv-axis", _D,
           "    def _grad_inv(self, theta):\n        return softmax(theta, axis=-1)",
           "    def _grad_inv(self, theta):\n        return softmax(theta, axis=0)",
           tests=(), chapter=CH1, why="the softmax over the wrong axis"),
    Mutant("chap-ch01-dual-mean-unweighted", _D,
           "            mean_g = np.tensordot(w, np.moveaxis(g, ax, 0), axes=(0, 0))",
           "            mean_g = g.mean(axis=ax)",
           tests=(), chapter=CH1, why="weights ignored in the dual mean"),
    Mutant("chap-ch01-binary-kl-drop-complement", _D,
           "                xlogy(u, u / v) + xlogy(1 - u, (1 - u) / (1 - v))",
           "                xlogy(u, u / v)",
           tests=(), chapter=CH1, why="the (1 - p) term set to zero"),
    Mutant("chap-ch01-itakura-saito-sign", _D,
           "        return rowsum(r - np.log(r) - 1.0)", "        return rowsum(r + np.log(r) - 1.0)",
           tests=(), chapter=CH1, why="a sign flip"),
    Mutant("chap-ch01-three-point-swap", _D,
           "rowsum((a - b) * (self._grad(b) - self._grad(c)))",
           "rowsum((a - b) * (self._grad(c) - self._grad(b)))",
           tests=(), chapter=CH1, why="swapped arguments in the three-point cross term"),
    Mutant("chap-ch01-bv-variance-swap", _DEC,
           "    variance = _wmean(div.raw_divergence(vdual[None], V), wv)",
           "    variance = _wmean(div.raw_divergence(V, vdual[None]), wv)",
           tests=(), chapter=CH1, why="swapped arguments of the variance"),
    Mutant("chap-ch01-bv-bias-swap", _DEC,
           "    bias = div.raw_divergence(ybar, vdual)", "    bias = div.raw_divergence(vdual, ybar)",
           tests=(), chapter=CH1, why="swapped arguments of the bias"),
    Mutant("chap-ch01-bv-noise-unweighted", _DEC,
           "    noise = _wmean(div.raw_divergence(Y, ybar[None]), wy)",
           "    noise = div.raw_divergence(Y, ybar[None]).mean(0)",
           tests=(), chapter=CH1, why="unweighted noise"),
    Mutant("chap-ch01-bv-target-mean-unweighted", _DEC,
           "    ybar = _wmean(Y, wy)\n    gV = div.raw_grad(V)\n",
           "    ybar = Y.mean(0)\n    gV = div.raw_grad(V)\n",
           tests=(), chapter=CH1, why="unweighted mean of the targets"),
    Mutant("chap-ch01-expected-loss-sign", _DEC,
           "        - gv_dot_y\n", "        + gv_dot_y\n",
           tests=(), chapter=CH1, why="a sign flip in E D(Y, V)"),
    Mutant("chap-ch01-gain-cross-wrong-function", _DEC,
           "    cross = rowsum((y - f_s) * (div.raw_grad(f_s) - div.raw_grad(f_w)))",
           "    cross = rowsum((y - f_w) * (div.raw_grad(f_s) - div.raw_grad(f_w)))",
           tests=(), chapter=CH1, why="teacher for student in the cross term"),
    Mutant("chap-ch01-gain-misfit-teacher-first", _DEC,
           "    misfit = div.raw_divergence(f_s, f_w)\n    cross = rowsum(",
           "    misfit = div.raw_divergence(f_w, f_s)\n    cross = rowsum(",
           tests=(), chapter=CH1, why="teacher first in the misfit"),
    Mutant("chap-ch01-quadrature-physicists-hermite", "w2sg_utils/quadrature.py",
           "    x, w = hermegauss(n_nodes)",
           "    x, w = np.polynomial.hermite.hermgauss(n_nodes)",
           tests=(), chapter=CH1, why="nodes for exp(-x^2): variance 1/2"),
]

MUTANTS += [
    # ---- Chapter 2: risk, misfit, eps, the posterior mean, eps = eps0 + C (C3, C4, C5)
    Mutant("chap-ch02-risk-swap", _M,
           "    return div.raw_divergence(y, f) @ w", "    return div.raw_divergence(f, y) @ w",
           tests=(), chapter=CH2, why="prediction first in the risk"),
    Mutant("chap-ch02-misfit-teacher-first", _M,
           "    return div.raw_divergence(f_s, f_w) @ w", "    return div.raw_divergence(f_w, f_s) @ w",
           tests=(), chapter=CH2, why="teacher first in the misfit"),
    Mutant("chap-ch02-cross-unweighted", _M,
           "div.raw_grad(f_ref)), axis=-1) @ w", "div.raw_grad(f_ref)), axis=-1).mean(-1)",
           tests=(), chapter=CH2, why="inputs averaged without P_X"),
    Mutant("chap-ch02-group-count-not-mass", _M,
           "    mass = np.bincount(inv, weights=w, minlength=n_groups)",
           "    mass = np.bincount(inv, minlength=n_groups).astype(float)",
           tests=(), chapter=CH2, why="group size instead of group probability"),
    Mutant("chap-ch02-eps-against-teacher", _M,
           "            eps_draw=cross_term(div, ybar, f_s, fbar_w, x_weights),",
           "            eps_draw=cross_term(div, ybar, f_s, f_w, x_weights),",
           tests=(), chapter=CH2, why="eps with f_w instead of fbar_w"),
    Mutant("chap-ch02-to-posterior-swap", _M,
           "            misfit_to_posterior=misfit(div, f_s, fbar_w, x_weights),",
           "            misfit_to_posterior=misfit(div, fbar_w, f_s, x_weights),",
           tests=(), chapter=CH2, why="swapped arguments of M(f_s, fbar_w)"),
    Mutant("chap-ch02-spread-swap", _M,
           "            teacher_spread=misfit(div, fbar_w, f_w, x_weights),",
           "            teacher_spread=misfit(div, f_w, fbar_w, x_weights),",
           tests=(), chapter=CH2, why="swapped arguments of M(fbar_w, f_w)"),
    Mutant("chap-ch02-covariance-no-bessel", _M,
           "* (1.0 if exact else m / (m - 1))", "* 1.0",
           tests=(), chapter=CH2, why="sample covariance without m/(m-1)"),
    Mutant("chap-ch02-eps-split-unweighted-centre", _M,
           "              else div.dual_mean(f_w, weights=w))",
           "              else div.dual_mean(f_w))",
           tests=(), chapter=CH2, why="unweighted dual mean of all teachers"),
    Mutant("chap-ch02-projection-unweighted", _M,
           "    gram = phi.T @ (w[:, None] * phi)\n"
           "    coef = np.linalg.solve(gram, np.einsum(\"np,...nk->...pk\", w[:, None] * phi, f))",
           "    gram = phi.T @ phi\n"
           "    coef = np.linalg.solve(gram, np.einsum(\"np,...nk->...pk\", phi, f))",
           tests=(), chapter=CH2, why="projection ignores P_X"),
    Mutant("chap-ch02-ensembles-arithmetic", _M,
           '    return div.dual_mean(grouped, axis=1, name="members")',
           "    return grouped.mean(axis=1)",
           tests=(), chapter=CH2, why="arithmetic instead of dual mean of the members"),
    Mutant("chap-ch02-label-noise-sign", _EN,
           "x_idx, sign = sets // 2, 2 * (sets % 2) - 1", "x_idx, sign = sets // 2, sets % 2",
           tests=(), chapter=CH2, why="label noise 0/1 instead of -1/+1"),
    Mutant("chap-ch02-quantizer-unweighted", _EN,
           "    ws = w[support] / w[support].sum()",
           "    ws = np.full(support.size, 1.0 / support.size)",
           tests=(), chapter=CH2, why="unweighted cell means"),
    Mutant("chap-ch02-dual-mean-unweighted", _D,
           "            mean_g = np.tensordot(w, np.moveaxis(g, ax, 0), axes=(0, 0))",
           "            mean_g = g.mean(axis=ax)",
           tests=(), chapter=CH2, why="weights ignored in the dual mean"),
]

MUTANTS += [
    # ---- Chapter 4: the Gaussian-class task, w2s_terms and the tests (C3, C7) ---------
    Mutant("chap-ch04-posterior-half", _G,
           "- 0.5 * np.sum(self.means**2, axis=1)", "- np.sum(self.means**2, axis=1)",
           tests=(), chapter=CH4, why="a dropped 1/2 in the Bayes logits"),
    Mutant("chap-ch04-eps-against-teacher", _G,
           '"eps": np.sum(d * (logp_s - logp_wbar), axis=-1)',
           '"eps": np.sum(d * (logp_s - logp_w), axis=-1)',
           tests=(), chapter=CH4, why="eps against f_w instead of fbar_w"),
    Mutant("chap-ch04-eps-sign", _G,
           '"eps": np.sum(d * (logp_s - logp_wbar), axis=-1)',
           '"eps": np.sum(d * (logp_wbar - logp_s), axis=-1)',
           tests=(), chapter=CH4, why="a sign flip of eps"),
    Mutant("chap-ch04-eps-student-weights", _G,
           "    d = ybar - p_s\n", "    d = ybar - np.exp(logp_wbar)\n",
           tests=(), chapter=CH4, why="fbar_w instead of f_s in ybar - f_s"),
    Mutant("chap-ch04-risk-s-swap", _G,
           '"risk_s": _kl(log_ybar, logp_s)', '"risk_s": _kl(logp_s, log_ybar)',
           tests=(), chapter=CH4, why="swapped arguments of the student's risk"),
    Mutant("chap-ch04-misfit-forward", _G,
           '"misfit": _kl(logp_s, logp_w)', '"misfit": _kl(logp_w, logp_s)',
           tests=(), chapter=CH4, why="forward KL as the misfit"),
    Mutant("chap-ch04-rce-against-wbar", _G,
           '"rce": -np.sum(p_s * logp_w, axis=-1)', '"rce": -np.sum(p_s * logp_wbar, axis=-1)',
           tests=(), chapter=CH4, why="RCE against fbar_w instead of f_w"),
    Mutant("chap-ch04-entropy-sign", _G,
           "        return -np.sum(np.where(p > 0, p * logp, 0.0), axis=-1)",
           "        return np.sum(np.where(p > 0, p * logp, 0.0), axis=-1)",
           tests=(), chapter=CH4, why="a sign flip of H"),
    Mutant("chap-ch04-min-entropy-min", _G,
           "    return -np.max(np.asarray(logp, dtype=np.float64), axis=-1)",
           "    return -np.min(np.asarray(logp, dtype=np.float64), axis=-1)",
           tests=(), chapter=CH4, why="min instead of max in H_inf"),
    Mutant("chap-ch04-dist-pm-swap", _G,
           '"dist_pm": _kl(logp_s, logp_wbar)', '"dist_pm": _kl(logp_wbar, logp_s)',
           tests=(), chapter=CH4, why="swapped arguments of KL(f_s || fbar_w)"),
    Mutant("chap-ch04-variance-w-swap", _G,
           '"variance_w": _kl(logp_wbar, logp_w)', '"variance_w": _kl(logp_w, logp_wbar)',
           tests=(), chapter=CH4, why="swapped arguments of the teacher's variance"),
    Mutant("chap-ch04-corollary-entropy-sign", _G,
           'gain - rce + terms["entropy_s"] - terms["eps"]',
           'gain - rce - terms["entropy_s"] - terms["eps"]',
           tests=(), chapter=CH4, why="a sign flip on H(f_s) in the exact corollary"),
    Mutant("chap-ch04-z-sd-not-se", _EG,
           "    se = np.sqrt(np.sum(d.var(axis=-1, ddof=1), axis=1) / n) / R",
           "    se = np.sqrt(np.sum(d.var(axis=-1, ddof=1), axis=1)) / R",
           tests=(), chapter=CH4, why="sd instead of se in the z-scores"),
    Mutant("chap-ch04-bonferroni-one-sided", _EG,
           "norm.isf(alpha / (2 * n_comparisons))", "norm.isf(alpha / n_comparisons)",
           tests=(), chapter=CH4, why="a one-sided critical value"),
    Mutant("chap-ch04-residual-eps-sign", _EG,
           '- t[key] - factor * t["eps"]', '- t[key] + factor * t["eps"]',
           tests=(), chapter=CH4, why="a sign flip on eps in the residual"),
    Mutant("chap-ch04-temperature-measured-sign", _EG,
           '        measured = t1["risk_s"] - t["risk_s"]',
           '        measured = t["risk_s"] - t1["risk_s"]',
           tests=(), chapter=CH4, why="a sign flip of the measured change"),
]
