"""Tests for w2sg_utils._common (shared argument checks, threads, atomic writes)."""

import os

import numpy as np
import pytest

from w2sg_utils._common import (
    atomic_write,
    atomic_write_text,
    check_int,
    check_real,
    non_negative,
    positive,
    positive_int,
    probability,
    sample_weights,
    torch_threads,
)


def test_checks_return_normalised_values():
    assert check_int(np.int32(3), "k", 0, 10) == 3 and type(check_int(3, "k")) is int
    assert check_real(np.float32(0.5), "x", 0.0, 1.0) == 0.5
    assert positive_int(4, "n", max=4) == 4
    assert non_negative(0, "l2") == 0.0 and positive(2, "lr") == 2.0 and probability(1, "p") == 1.0


@pytest.mark.parametrize("call, match", [
    (lambda: check_int(True, "k"), "k: expected an integer"),
    (lambda: check_int(11, "k", 0, 10), r"k: must be an integer in 0\.\.10"),
    (lambda: check_int(-1, "k", 0), "k: must be an integer >= 0"),
    (lambda: check_int(5, "k", max=4), "k: must be an integer <= 4"),
    (lambda: positive_int(0, "n"), "n: must be a positive integer"),
    (lambda: positive_int(5, "n", max=4), "n: 5 exceeds the maximum 4"),
    (lambda: check_real("1", "x"), "x: expected a real number"),
    (lambda: check_real(float("inf"), "x"), "x: must be finite"),
    (lambda: non_negative(-1e-9, "l2"), "l2: must be >= 0"),
    (lambda: positive(0.0, "lr"), "lr: must be > 0"),
    (lambda: probability(1.1, "p"), "p: must be <= 1"),
    (lambda: check_real(1.0, "eps", 0.0, 1.0, max_open=True), "eps: must be < 1"),
])
def test_bad_arguments_name_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_sample_weights():
    assert np.array_equal(sample_weights(None, 4), np.full(4, 0.25))
    w = sample_weights([0.25, 0.75], 2, "w")
    assert w.dtype == np.float64 and w.sum() == 1.0
    for bad, match in [([0.5], r"w: expected shape \(2,\)"), ([1.5, -0.5], "w: must be non-negative"),
                       ([0.5, 0.6], "sum to one"), ([np.nan, 1.0], "w: contains NaN")]:
        with pytest.raises(ValueError, match=match):
            sample_weights(bad, 2, "w")


def test_torch_threads_restores_the_setting():
    torch = pytest.importorskip("torch")
    old = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == old
    with torch_threads(None):
        assert torch.get_num_threads() == old
    with pytest.raises(ValueError, match="threads"), torch_threads(0):
        pass


def test_atomic_write_replaces_whole_files_and_cleans_up(tmp_path):
    p = tmp_path / "a.txt"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two" and oct(os.stat(p).st_mode & 0o777) == "0o644"

    def fail(f):
        f.write(b"partial")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        atomic_write(p, fail)
    assert p.read_text() == "two" and sorted(os.listdir(tmp_path)) == ["a.txt"]


def test_array_helpers_have_one_home():
    """as_float, xlogy, rowsum, check_broadcast and check_int are defined in _common only."""
    import re
    from pathlib import Path

    import w2sg_utils
    from w2sg_utils import divergences

    root = Path(w2sg_utils.__file__).parent
    names = ("as_float", "xlogy", "rowsum", "check_broadcast", "check_int")
    homes = {n: [p.relative_to(root).as_posix() for p in root.rglob("*.py")
                 if re.search(rf"^def {n}\(", p.read_text(), flags=re.M)] for n in names}
    assert homes == {n: ["_common.py"] for n in names}, homes
    assert not set(names) & set(divergences.__all__)


def test_array_helpers_against_plain_formulas():
    import numpy as np
    import pytest

    from w2sg_utils._common import as_float, check_broadcast, rowsum, xlogy

    x, y = np.array([0.0, 0.5, 2.0]), np.array([0.0, 0.25, 3.0])
    np.testing.assert_allclose(xlogy(x, y), [0.0, 0.5 * np.log(0.25), 2.0 * np.log(3.0)])
    assert xlogy(np.float64(0.0), np.float64(0.0)) == 0.0
    a = np.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose(rowsum(a), [sum(r) for r in a.tolist()])
    assert as_float([1, 2], "v").dtype == np.float64
    for bad, match in ((3.0, "scalar"), ([1.0, np.nan], "NaN"), (["a"], "cannot")):
        with pytest.raises(ValueError, match=f"^v: .*{match}"):
            as_float(bad, "v")
    check_broadcast(np.zeros((2, 3)), np.zeros((1, 3)), ("u", "v"))
    with pytest.raises(ValueError, match="^v: last"):
        check_broadcast(np.zeros((2, 3)), np.zeros((2, 4)), ("u", "v"))
    with pytest.raises(ValueError, match="^u and v: shapes"):
        check_broadcast(np.zeros((2, 3)), np.zeros((4, 3)), ("u", "v"))
