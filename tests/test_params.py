"""Tests for w2sg_utils.params (the chapters' parameter check)."""

import numpy as np
import pytest

from w2sg_utils.params import Bool, Float, FloatList, Int, IntList, Rule, Str, check_parameters


def _ns(**kw):
    return dict(kw)


def test_valid_values_are_normalised_in_place():
    ns = _ns(seed=np.int64(3), n="7", ks="[1, 2, 4]", ls="0.5,1", full="True", lam=1,
             out="")
    got = check_parameters(ns, seed=Int(min=0), n=Int(min=1), ks=IntList(min=1, increasing=True),
                           ls=FloatList(min=0.0), full=Bool(), lam=Float(min=0.0, min_open=True),
                           out=Str())
    expected = {"seed": 3, "n": 7, "ks": [1, 2, 4], "ls": [0.5, 1.0], "full": True, "lam": 1.0,
                "out": ""}
    assert got == expected
    assert {k: ns[k] for k in expected} == expected
    assert type(ns["seed"]) is int and type(ns["lam"]) is float


@pytest.mark.parametrize("name, value, spec, match", [
    ("seed", -1, Int(min=0), "seed: must be an integer >= 0"),
    ("seed", True, Int(min=0), "seed: expected an integer"),
    ("seed", 1.5, Int(min=0), "seed: expected an integer"),
    ("n", 11, Int(min=1, max=10), "n: must be an integer in 1..10"),
    ("m", 6, Int(min=2, power_of_two=True), "m: must be a power of two"),
    ("x", float("nan"), Float(), "x: must be finite"),
    ("x", 0.0, Float(min=0.0, min_open=True), "x: must be > 0"),
    ("p", 1.5, Float(min=0.0, max=1.0), "p: must be <= 1"),
    ("full", 1, Bool(), "full: must be True or False"),
    ("full", "yes", Bool(), "full: must be True or False"),
    ("kind", "c", Str(choices=("a", "b")), "kind: must be one of"),
    ("kind", 3, Str(), "kind: must be a string"),
    ("ks", [1, 1], IntList(increasing=True), "ks: must be strictly increasing"),
    ("ks", [1, 0], IntList(min=1), r"ks\[1\]: must be an integer >= 1"),
    ("ks", [], IntList(), "ks: needs at least 1"),
    ("ks", "abc", IntList(), r"ks\[0\]: expected an integer"),
    ("ks", {"a": 1}, IntList(), "ks: must be a list"),
])
def test_bad_values_name_the_parameter(name, value, spec, match):
    with pytest.raises(ValueError, match=match):
        check_parameters({name: value}, **{name: spec})


def test_rules_see_normalised_values_and_nothing_is_written_on_error():
    ns = _ns(a="3", b=2)
    rule = Rule("a", lambda p: p["a"] <= p["b"], "must not exceed b")
    with pytest.raises(ValueError, match="a: must not exceed b"):
        check_parameters(ns, rule, a=Int(), b=Int())
    assert ns["a"] == "3"  # unchanged: validation failed
    ns["b"] = 5
    assert check_parameters(ns, rule, a=Int(), b=Int()) == {"a": 3, "b": 5}


def test_misuse_is_reported():
    with pytest.raises(ValueError, match="missing: is not defined"):
        check_parameters({}, missing=Int())
    with pytest.raises(ValueError, match="rules"):
        check_parameters({"a": 1}, "not a rule", a=Int())


def test_power_of_two_accepts_every_power_and_nothing_else():
    spec = Int(min=1, power_of_two=True)
    for v in (1, 2, 4, 8, 64, 1024, 2**20):
        assert check_parameters({"m": v}, m=spec) == {"m": v}
    for v in (3, 5, 6, 7, 12, 24, 1023, 1025):
        with pytest.raises(ValueError, match="m: must be a power of two"):
            check_parameters({"m": v}, m=spec)


def test_lists_of_exactly_min_len_items_are_accepted():
    spec = IntList(min=1, increasing=True, min_len=4)
    assert check_parameters({"ks": [1, 2, 4, 8]}, ks=spec) == {"ks": [1, 2, 4, 8]}
    with pytest.raises(ValueError, match="ks: needs at least 4"):
        check_parameters({"ks": [1, 2, 4]}, ks=spec)
