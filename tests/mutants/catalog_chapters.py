"""Planted bugs that Chapters 1, 2 and 4 must catch on their own, at their defaults.

The guide's promise is that a planted bug makes "the tests or the chapter" fail; these
mutants name no test (``tests=()``), so only the chapter's own asserts can catch them.
Each chapter shows a short naive computation of its key quantities from their formulas
and asserts that the package agrees, so a bug in a package function that a chapter uses
for its main claims (the divergence, the dual mean, the bias-variance terms, the misfit,
the cross term eps, the posterior mean, the Bayes posterior, the ensemble terms) fails
the chapter rather than silently changing its numbers. Many of these edits are also in
``catalog_theory.py``, where the tests must catch them.

    python -m tests.mutants.run --only chap-ch01

Chapter 1 (ch01_bregman): 14 of 14 mutants caught.
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
