"""Tests of w2sg_utils.losses.registry (claims C7-C9, Chapter 4): the objective table and `get_objective`: names, aliases, errors."""

from __future__ import annotations

import pytest

from w2sg_utils.losses import (
    OBJECTIVE_FAMILIES,
    OBJECTIVE_NAMES,
    OBJECTIVES,
    RELEASED_OBJECTIVES,
    ForwardCE,
    get_objective,
    release_objective,
)
from w2sg_utils.losses.registry import TABLE_FIELDS, build_tables


def test_canonical_names_and_aliases():
    assert [get_objective(n).name for n in OBJECTIVE_NAMES] == OBJECTIVE_NAMES
    assert get_objective("ce").name == "bce" and get_objective("RCE").name == "reverse_bce"
    assert get_objective("cace_0.10").name == "CACE_0.1"
    assert get_objective("CACE", c=0.25).name == "CACE_0.25"
    assert get_objective("sl_a1.0_b1e-1").name == "SL_a1_b0.1"
    assert get_objective("SL", alpha=2, beta=0).name == "SL_a2_b0"
    assert get_objective("Quan_CACE", k=7).name == "Quan_CACE_7"


@pytest.mark.parametrize(
    "name, options, match",
    [
        ("nope", {}, "unknown objective 'nope'.*Valid names.*CACE_<c>"),
        ("CACE_", {}, "malformed.*CACE_<c>"),
        ("CACE_x", {}, "malformed"),
        ("CACE_1.5", {}, "c: must be <= 1"),
        ("Quan_CACE_2.5", {}, "malformed.*Quan_CACE_<k>"),
        ("Quan_CACE_11", {}, "k: must be an integer in 0..10"),
        ("SL_a1", {}, "malformed.*SL_a<alpha>_b<beta>"),
        ("SL_a0_b0", {}, "alpha, beta"),
        ("CACE", {}, "needs \\['c'\\]"),
        ("CACE_0.1", {"c": 0.2}, "given both"),
        ("bce", {"eps": 0.1}, "options: \\['eps'\\] not accepted"),
        ("reverse_bce", {"eps": -0.1}, "eps: must be >= 0"),
        ("reverse_bce", {"eps": 1.0}, "eps: must be < 1"),
        ("reverse_bce", {"eps": float("nan")}, "eps: must be finite"),
        ("aux", {"aux_coef": 2}, "aux_coef"),
        ("aux", {"warmup_frac": -1}, "warmup_frac"),
        ("aux", {"buffer_size": -1}, "buffer_size"),
        ("aux", {"buffer_size": 2.5}, "buffer_size: expected an integer"),
        ("window", {"radius": -0.1}, "radius"),
        ("product", {"alpha": -1}, "alpha"),
        ("entropy", {"detach": "yes"}, "detach"),
        ("bce", {"reduction": "avg"}, "reduction"),
        (None, {}, "name: expected a string"),
    ],
)
def test_bad_names_and_hyperparameters(name, options, match):
    with pytest.raises(ValueError, match=match):
        get_objective(name, **options)


# What ``w2sg objectives`` printed before the table moved into the classes (issue 16).
LISTED = ["bce", "reverse_bce", "kl", "reverse_kl", "CACE_0.1", "Quan_CACE_5", "SL_a1_b0.1",
          "aux", "logconf", "product", "entropy", "window"]


def test_listing_is_unchanged():
    assert OBJECTIVE_NAMES == LISTED
    assert list(OBJECTIVE_FAMILIES) == [
        "bce", "reverse_bce", "kl", "reverse_kl", "CACE_<c>", "Quan_CACE_<k>",
        "SL_a<alpha>_b<beta>", "aux", "logconf", "product", "entropy", "window"]
    assert RELEASED_OBJECTIVES == (
        "bce", "reverse_bce", "kl", "reverse_kl", "CACE_<c>", "Quan_CACE_<k>",
        "SL_a<alpha>_b<beta>", "aux", "logconf_c<aux_coef>_w<warmup_frac>")


@pytest.mark.parametrize("cls", OBJECTIVES, ids=lambda c: c.__name__)
def test_every_objective_declares_its_own_row(cls):
    """Each registered class sets its row itself (never inherited by accident, e.g.
    ``QuanCACE`` from ``CACE`` or ``LogConf`` from ``AuxConfidence``), and its example
    builds an object of that class."""
    own = vars(cls)
    for field in TABLE_FIELDS:
        assert field in own, f"{cls.__name__} does not declare {field}"
    assert cls.summary and cls.example
    if cls.params:
        for field in ("family", "label", "params", "pattern", "hint"):
            assert field in own, f"{cls.__name__} does not declare {field}"
        assert cls.example in cls.hint
    else:
        assert "name" in own and not cls.family
    assert type(get_objective(cls.example)) is cls
    for alias in cls.aliases:
        assert type(get_objective(alias)) is cls


def test_tables_are_derived_from_the_classes():
    assert OBJECTIVE_NAMES == [cls.example for cls in OBJECTIVES]
    assert list(OBJECTIVE_FAMILIES.values()) == [cls.summary for cls in OBJECTIVES]
    released = [cls for cls in OBJECTIVES if cls.released is not None]
    assert len(RELEASED_OBJECTIVES) == len(released) + 1  # + the released logconf name
    for cls in OBJECTIVES:
        if cls.released is None:
            with pytest.raises(ValueError, match="not an objective of the released"):
                release_objective(cls.example)
        else:
            got = release_objective(cls.example)
            for k, v in cls.released.items():
                assert getattr(got, k) == v
            if "eps" in cls.options:
                assert got.eps == 0.0


def test_a_new_objective_is_one_class_and_one_line():
    """A class declaring its row, added to the list, is found by name and alias and
    listed; a name taken twice is refused."""

    class Half(ForwardCE):
        name = "half_bce"
        aliases = ("hbce",)
        summary = "CE / 2"
        example = "half_bce"
        released = None

        def _per_example(self, z, y, binary, progress):
            return super()._per_example(z, y, binary, progress) / 2

    simple, families = build_tables(OBJECTIVES + (Half,))
    assert simple["hbce"] is Half and simple["half_bce"] is Half
    assert set(families) == {"cace", "quan_cace", "sl"}
    with pytest.raises(ValueError, match="'ce' is taken twice"):
        build_tables(OBJECTIVES + (type("Clash", (Half,), {"name": "x", "aliases": ("ce",)}),))
