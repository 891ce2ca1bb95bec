"""Plain-Python references of the training objectives, one example at a time, written
from the formulas of :mod:`w2sg_utils.losses`, and the shared inputs of its tests."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from w2sg_utils.losses import (
    DEFAULT_EPS,
    OBJECTIVE_NAMES,
    get_objective,
)

DT = torch.float64


def fitted(name, y, **options):
    """``get_objective(name, **options)`` fitted on the batch's labels ``y``: for
    ``Quan_CACE_k`` (released threshold, fixed from all training labels) the batch is
    then the whole training set; every other objective ignores ``fit``."""
    return get_objective(name, **options).fit(y)


def _probs(z):
    m = max(z)
    e = [math.exp(v - m) for v in z]
    t = sum(e)
    return [v / t for v in e]


def _xlogy(a, b):
    return 0.0 if a == 0 else a * math.log(b)


def ref_ce(z, y):
    p = _probs(z)
    return -sum(_xlogy(yk, pk) for yk, pk in zip(y, p))


def ref_h(p):
    return -sum(_xlogy(v, v) for v in p)


def ref_smooth(y, eps):
    K = len(y)
    return [v * (1 - eps) + eps / K for v in y]


def ref_rce(z, y, eps):
    p = _probs(z)
    return -sum(pk * math.log(v) for pk, v in zip(p, ref_smooth(y, eps)))


def ref_kl(z, y):
    return ref_ce(z, y) - ref_h(y)


def ref_rkl(z, y, eps):
    p = _probs(z)
    return sum(pk * (math.log(pk) - math.log(v)) for pk, v in zip(p, ref_smooth(y, eps)))


def ref_conf(y, binary):
    return abs(y[1] - 0.5) if binary else max(y) - 1 / len(y)


def ref_quantile(xs, q):
    """Linear interpolation between order statistics (numpy/torch default)."""
    xs = sorted(xs)
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (pos - lo) * (xs[hi] - xs[lo])


def ref_cace(Z, Y, c, eps, binary):
    return [ref_ce(z, y) if ref_conf(y, binary) >= c else ref_rce(z, y, eps) for z, y in zip(Z, Y)]


def ref_aux_weight(progress, coef, warm):
    return coef if warm == 0 else coef * min(1.0, progress / warm)


def ref_aux(Z, Y, progress, coef=0.5, warm=0.2):
    w = ref_aux_weight(progress, coef, warm)
    P = [_probs(z) for z in Z]
    K = len(Y[0])
    if K == 2:
        s = [p[1] for p in P]
        t = ref_quantile(s, 1 - sum(y[1] for y in Y) / len(Y))
        H = [[1.0 - (si >= t), float(si >= t)] for si in s]
    else:
        H = [[float(k == max(range(K), key=lambda j, p=p: p[j])) for k in range(K)] for p in P]
    out = []
    for z, y, h in zip(Z, Y, H):
        target = [(1 - w) * a + w * b for a, b in zip(y, h)]
        out.append(ref_ce(z, target))
    return out


def ref_logconf(Z, Y, progress, coef=0.5, warm=0.1):
    w = coef * (1.0 if progress > warm else progress)
    P = [_probs(z) for z in Z]
    p0 = [p[0] for p in P]
    t0 = ref_quantile(p0, sum(y[1] for y in Y) / len(Y))
    out = []
    for z, y, a in zip(Z, Y, p0):
        h = [float(a >= t0), 1.0 - (a >= t0)]
        out.append(ref_ce(z, [(1 - w) * u + w * v for u, v in zip(y, h)]))
    return out


def ref_product(z, y, alpha=1.0, beta=1.0):
    p = _probs(z)
    t = [(yk**alpha) * (pk**beta) for yk, pk in zip(y, p)]
    s = sum(t)
    return ref_ce(z, [v / s for v in t])


def ref_entropy(z, y, progress, coef=0.5, warm=0.1):
    w = ref_aux_weight(progress, coef, warm)
    p = _probs(z)
    return ref_ce(z, [(1 - w) * a + w * b for a, b in zip(y, p)])


def ref_window(z, y, radius=0.15):
    return ref_ce(z, y) if max(_probs(z)) < 0.5 + radius else 0.0


def _to_lists(z, y):
    """Binary (B,) tensors -> per-example two-class lists; (B, K) -> lists."""
    z = z.detach().numpy()
    y = y.detach().numpy()
    if z.ndim == 1:
        return [[0.0, float(a)] for a in z], [[1.0 - float(b), float(b)] for b in y]
    return z.tolist(), y.tolist()


def reference(name, z, y, progress=0.3):
    Z, Y = _to_lists(z, y)
    binary = z.ndim == 1
    eps = DEFAULT_EPS
    if name == "bce":
        per = [ref_ce(a, b) for a, b in zip(Z, Y)]
    elif name == "reverse_bce":
        per = [ref_rce(a, b, eps) for a, b in zip(Z, Y)]
    elif name == "kl":
        per = [ref_kl(a, b) for a, b in zip(Z, Y)]
    elif name == "reverse_kl":
        per = [ref_rkl(a, b, eps) for a, b in zip(Z, Y)]
    elif name == "CACE_0.1":
        per = ref_cace(Z, Y, 0.1, eps, binary)
    elif name == "Quan_CACE_5":
        c = ref_quantile([ref_conf(b, binary) for b in Y], 0.5)
        per = ref_cace(Z, Y, c, eps, binary)
    elif name == "SL_a1_b0.1":
        per = [ref_ce(a, b) + 0.1 * ref_rce(a, b, eps) for a, b in zip(Z, Y)]
    elif name == "aux":
        per = ref_aux(Z, Y, progress)
    elif name == "logconf":
        per = ref_logconf(Z, Y, progress) if len(Y[0]) == 2 else ref_aux(Z, Y, progress, 0.5, 0)
    elif name == "product":
        per = [ref_product(a, b) for a, b in zip(Z, Y)]
    elif name == "entropy":
        per = [ref_entropy(a, b, progress) for a, b in zip(Z, Y)]
    elif name == "window":
        per = [ref_window(a, b) for a, b in zip(Z, Y)]
    else:  # pragma: no cover
        raise KeyError(name)
    return sum(per) / len(per)


def random_inputs(rng, B, K, scale=2.0):
    """Binary if K is None, else (B, K) logits and Dirichlet teacher probabilities."""
    if K is None:
        return torch.tensor(rng.normal(0, scale, B)), torch.tensor(rng.uniform(0, 1, B))
    return torch.tensor(rng.normal(0, scale, (B, K))), torch.tensor(rng.dirichlet(np.ones(K), B))


def autograd(name, z, y, **opts):
    z = z.clone().requires_grad_(True)
    get_objective(name, reduction="sum", **opts)(z, y).backward()
    return z.grad.numpy()


def draw_batch(draw, K, hard=False, big=False):
    B = draw(st.integers(2, 12))
    zmax = 1e4 if big else 30.0
    zs = draw(st.lists(st.floats(-zmax, zmax), min_size=B * (K or 1), max_size=B * (K or 1)))
    z = torch.tensor(zs, dtype=DT).reshape(B, K) if K else torch.tensor(zs, dtype=DT)
    if K is None:
        vals = st.sampled_from([0.0, 1.0]) if hard else st.floats(0.0, 1.0)
        y = torch.tensor(draw(st.lists(vals, min_size=B, max_size=B)), dtype=DT)
    else:
        if hard:
            idx = draw(st.lists(st.integers(0, K - 1), min_size=B, max_size=B))
            y = F.one_hot(torch.tensor(idx), K).double()
        else:
            w = draw(st.lists(st.floats(0.0, 1.0), min_size=B * K, max_size=B * K))
            w = torch.tensor(w, dtype=DT).reshape(B, K) + 1e-3
            y = w / w.sum(dim=1, keepdim=True)
    return z, y


@st.composite
def batches(draw):
    K = draw(st.sampled_from([None, 2, 3, 4]))
    return draw_batch(draw, K, hard=draw(st.booleans()), big=draw(st.booleans()))


def names_in_module(module: str) -> list[str]:
    """The example names of the registered objectives defined in ``losses.<module>``."""
    return [n for n in OBJECTIVE_NAMES
            if type(get_objective(n)).__module__ == f"w2sg_utils.losses.{module}"]


def check_against_reference(name, K, seed):
    """The objective ``name`` on random inputs equals its plain per-example reference."""
    rng = np.random.default_rng(seed)
    z, y = random_inputs(rng, 17, K)
    progress = float(rng.uniform(0, 1))
    if name == "logconf" and K not in (None, 2):
        progress = 1.0  # reference for K > 2 uses the post-warm-up weight
    got = fitted(name, y)(z, y, progress=progress)
    assert got.shape == ()
    assert math.isclose(float(got), reference(name, z, y, progress), rel_tol=1e-10, abs_tol=1e-12)
