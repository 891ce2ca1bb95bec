"""Power of Chapter 3's check of claim C3 along the ladder, at the chapter's defaults.

The chapter asserts ``lem-rf-blp`` with :func:`w2sg_utils.rf_ladder.ladder_check`. Here
that same function runs on the ladder measured at the chapter's default parameters (read
from its parameter cell), at the default seed and at the CI seed 20261128: it must accept
the measurements and reject each named wrong alternative (eps = 0, eps / 2, -eps, the
unconditional mean, another teacher's labels), and its power estimated on resampled
repetitions must be at least 0.95 against each.
"""

import ast
import pathlib

import pytest

from w2sg_utils.rf_ladder import (
    ALTERNATIVES,
    LADDER_DEFAULTS,
    WIDTH_RATIOS,
    bootstrap_power,
    ladder_check,
    ladder_z,
    rejects,
    run_ladder,
)

CHAPTER = pathlib.Path(__file__).parents[1] / "notebooks" / "ch03_random_features.md"


def chapter_parameters() -> dict:
    """The assignments of the chapter's ``parameters`` cell."""
    text = CHAPTER.read_text()
    start = text.index(":tags: [parameters]")
    body = text[start:text.index("```", start)].split("\n", 1)[1]
    out = {}
    for node in ast.parse(body).body:
        if isinstance(node, ast.Assign):
            out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def test_package_defaults_are_the_chapters():
    params = chapter_parameters()
    for key, value in LADDER_DEFAULTS.items():
        assert params[key] == value, key
    assert "WIDTH_RATIOS" in CHAPTER.read_text() and len(WIDTH_RATIOS) >= 2


@pytest.fixture(scope="module", params=[0, 20261128])
def ladder(request):
    return request.param, run_ladder(LADDER_DEFAULTS, request.param)


def test_check_accepts_the_measurements(ladder):
    seed, lad = ladder
    ladder_check(lad, ladder_z(LADDER_DEFAULTS))


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_check_rejects_each_alternative(ladder, alternative):
    seed, lad = ladder
    assert rejects(lad, ladder_z(LADDER_DEFAULTS), alternative), (seed, alternative)


def test_measured_power_at_defaults(ladder):
    seed, lad = ladder
    power = bootstrap_power(lad, ladder_z(LADDER_DEFAULTS), n_boot=100, seed=seed)
    assert set(power) == set(ALTERNATIVES)
    assert min(power.values()) >= 0.95, power


def test_ladder_sizes_and_critical_values():
    from scipy.stats import t

    from w2sg_utils.rf_ladder import ladder_sizes, with_alternative, z_bonferroni

    assert ladder_sizes(1, LADDER_DEFAULTS) == dict(d=4, n=12, d_w=6, N=24, d_s=48,
                                                    n_draws=144)
    assert ladder_sizes(8, LADDER_DEFAULTS)["N"] == 192
    with pytest.raises(ValueError, match="p"):
        ladder_sizes(1, {"d0": 4})
    with pytest.raises(ValueError, match="s"):
        ladder_sizes(0, LADDER_DEFAULTS)
    # Bonferroni: the two-sided tail of one check is alpha / n_checks
    z = z_bonferroni(16, 27, 1e-3)
    assert abs(2 * t.sf(z, 15) - 1e-3 / 27) < 1e-12
    assert z_bonferroni(16, 54) > z > z_bonferroni(64, 27)
    assert ladder_z(LADDER_DEFAULTS) == z_bonferroni(16, 3 * (4 + len(WIDTH_RATIOS)))
    with pytest.raises(ValueError, match="alternative"):
        with_alternative(None, "eps * 2")
