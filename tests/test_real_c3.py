"""Chapter 6's C3 check at the chapter's defaults: it keeps the null and has power.

Runs :func:`w2sg_utils.real_c3.run_experiment` (the code the chapter runs) at the
chapter's default parameters, at the chapter's seed and at the CI seed 20261128, from the
shipped embedding artifact, and asserts what the chapter asserts: the identity is not
rejected, and the check rejects each wrong alternative it names with power >= 0.95.
"""

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from w2sg_utils import real_c3 as R

CHAPTER = Path(__file__).resolve().parents[1] / "notebooks" / "ch06_theory_meets_experiment.md"


def chapter_parameters() -> dict:
    text = CHAPTER.read_text(encoding="utf-8")
    cell = re.search(r":tags: \[parameters\]\n(.*?)```", text, re.S).group(1)
    out = {}
    for node in ast.parse(cell).body:
        out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def test_chapter_parameters_are_the_package_defaults():
    params = chapter_parameters()
    assert params.pop("full") is False
    assert params == {k: v for k, v in R.DEFAULTS.items() if k in params}
    assert set(R.DEFAULTS) - set(params) == {"objectives", "alpha", "n_boot"}


@pytest.fixture(scope="module", params=[0, 20261128], ids=["seed0", "seed20261128"])
def run(request):
    return R.run_experiment({"seed": request.param})


def test_the_asserted_alternatives_were_fixed_on_development_seeds():
    pre = R.preregistration()
    # the rank: the smallest with 99.9% of the variance on every development seed
    # (the second condition of the written rule selected none; the chapter says so)
    share = {r: min(row["variance_share"] for row in pre["rows"] if row["rank"] == r)
             for r in pre["ranks"]}
    assert min(r for r, v in share.items() if v >= 0.999) == R.DEFAULTS["rank"]
    assert not {0, 20261128} & set(pre["seeds"])


def test_identity_holds_and_each_named_alternative_is_rejected(run):
    named = R.preregistration()["asserted"]
    assert len(named) >= 2
    for obj, chk in run["checks"].items():
        assert chk.passed, f"{obj}: C3 rejected, z = {chk.z:+.2f}"
        for alt in named:
            assert chk.power[alt] >= 0.95, f"{obj}: power {chk.power[alt]} vs {alt}"
            assert abs(chk.z_alt[alt]) > chk.z_crit


def test_a_planted_wrong_eps_fails_the_check(run):
    """eps with its sign flipped, or computed against the teacher itself, is caught."""
    from w2sg_utils.real_posterior import draw_z

    T = run["terms"]["reverse_bce"]
    flipped = T["gain"] - T["misfit"] + T["eps"]
    assert abs(draw_z(flipped)) > run["z_crit"]
    K = len(T["gain"])
    zw = run["draws"]["z_w_test"][:K]
    other = np.roll(zw, 1, axis=0)  # eps against the wrong draw's own logits
    zs = run["draws"]["students"]["reverse_bce"]
    ps = 1 / (1 + np.exp(-zs))
    wrong = T["gain"] - T["misfit"] - (run["y_test"] - ps) * (zs - other)
    assert abs(draw_z(wrong)) > run["z_crit"]
