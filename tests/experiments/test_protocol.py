"""Tests of the run protocol (w2sg_utils.experiments.protocol) (claim C9)."""

from __future__ import annotations

import numpy as np


def test_ensemble_label_is_the_mean_logit_of_its_members():
    """``ensemble<K>`` labels: the binary-KL dual mean of teachers 1..K, i.e. the mean of
    their logits (claims C1, C4), on both splits; ``teacher<k>`` is member k itself."""
    from w2sg_utils.experiments.protocol import label_logits

    rng = np.random.default_rng(3)
    members = {k: {"z_w2s": rng.normal(0, 2, 5), "z_test": rng.normal(0, 2, 4)} for k in range(0, 5)}
    asked = []

    def ensure(spec):
        assert spec["stage"] == "teacher" and spec["seed"] == 9
        asked.append(spec["member"])
        return members[spec["member"]]

    w2s, test = label_logits("ensemble3", 9, ensure)
    assert sorted(asked) == [1, 2, 3]
    for got, key in ((w2s, "z_w2s"), (test, "z_test")):
        expected = [sum(members[k][key][i] for k in (1, 2, 3)) / 3 for i in range(len(got))]
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    w2s, test = label_logits("teacher4", 9, ensure)
    assert w2s is members[4]["z_w2s"] and test is members[4]["z_test"]
