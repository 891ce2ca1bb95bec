"""Batched closed-form ridge regression (claim C6, Chapter 3).

Chapter 3 fits thousands of small ridge problems (one per repetition, teacher, student
width and ridge level). This module solves them all at once in float64 with torch:

    beta(alpha) = argmin_b ||y - X b||^2 + alpha ||b||^2              (no intercept)

which is scikit-learn's ``Ridge(alpha, fit_intercept=False)`` objective. Two forms of
the same solution are used:

* primal (``p <= n``):  ``beta = (X^T X + alpha I_p)^{-1} X^T y``;
* dual / kernel (``p > n``): ``beta = X^T (X X^T + alpha I_n)^{-1} y``.

Both are solved with a Cholesky factorisation of the (regularised) Gram matrix, or with
its eigendecomposition, never with an explicit inverse. ``alpha = 0`` is allowed and
gives the minimum-norm least-squares solution (the *ridgeless* limit; the min-norm
interpolator when ``p >= n``): the eigendecomposition route then discards eigenvalues
below ``rcond * max eigenvalue``, i.e. it applies the pseudo-inverse.

Shapes: ``X`` is ``(..., n, p)``, ``y`` is ``(..., n)`` (when ``y.ndim == X.ndim - 1``)
or ``(..., n, k)`` (when ``y.ndim == X.ndim``); the leading
batch axes broadcast against each other and against ``alpha`` (a scalar, or an array
broadcastable to the batch shape). Inputs may be numpy arrays or torch tensors; the
result has the same kind as ``X``.
"""

from __future__ import annotations

import numpy as np
import torch

from ._common import torch_threads

__all__ = ["ridge_fit", "ridge_path", "ridge_fit_predict", "choose_form", "torch_threads"]

_SOLVERS = ("auto", "cholesky", "eigh")
_FORMS = ("auto", "primal", "dual")

#: Default number of torch threads while a solver runs (``None``: leave torch's setting).
#: The matrices here have a few hundred rows; on the 2-core build machine, shared with
#: other jobs, one thread was 3x faster for a whole sweep than two (multithreaded
#: Cholesky and ``eigh`` were 8x and 17x slower), see ``benchmarks/bench_ridge.py``.
DEFAULT_THREADS = 1


def _to_tensor(a, name: str) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        t = a.detach().to(dtype=torch.float64)
    else:
        try:
            t = torch.as_tensor(np.asarray(a, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: cannot be converted to a float array ({exc})") from exc
    # fast path: a finite sum implies finite entries; overflow falls back to the full test
    if not (torch.isfinite(t.sum()) or torch.isfinite(t).all()):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return t


def _back(t: torch.Tensor, like) -> np.ndarray | torch.Tensor:
    return t if isinstance(like, torch.Tensor) else t.numpy()


def choose_form(n: int, p: int) -> str:
    """``"primal"`` when ``p <= n`` (a ``p x p`` system), else ``"dual"`` (``n x n``)."""
    return "primal" if p <= n else "dual"


def _prepare(X, y, alpha, form):
    Xt = _to_tensor(X, "X")
    if Xt.ndim < 2:
        raise ValueError(f"X: expected shape (..., n, p), got {tuple(Xt.shape)}")
    yt = _to_tensor(y, "y")
    vector = yt.ndim == Xt.ndim - 1
    if vector:
        yt = yt.unsqueeze(-1)
    if yt.ndim < 2 or yt.shape[-2] != Xt.shape[-2]:
        raise ValueError(
            f"y: expected shape (..., n) or (..., n, k) with n = {Xt.shape[-2]}, "
            f"got {tuple(_to_tensor(y, 'y').shape)}"
        )
    if form not in _FORMS:
        raise ValueError(f"form: must be one of {_FORMS}, got {form!r}")
    n, p = Xt.shape[-2:]
    if form == "auto":
        form = choose_form(n, p)
    at = _to_tensor(alpha, "alpha")
    if (at < 0).any():
        raise ValueError("alpha: must be non-negative")
    batch = torch.broadcast_shapes(Xt.shape[:-2], yt.shape[:-2])
    try:
        batch = torch.broadcast_shapes(batch, at.shape)
    except RuntimeError as exc:
        raise ValueError(
            f"alpha: shape {tuple(at.shape)} does not broadcast with the batch shape "
            f"{tuple(batch)}"
        ) from exc
    Xt = Xt.expand(*batch, n, p)
    yt = yt.expand(*batch, n, yt.shape[-1])
    at = at.expand(batch)
    return Xt, yt, at, form, vector


def _gram(Xt: torch.Tensor, form: str) -> torch.Tensor:
    Xh = Xt.transpose(-1, -2)
    return Xh @ Xt if form == "primal" else Xt @ Xh


def _eigh_solve(G, rhs, alpha, rcond):
    """``(G + alpha I)^+ rhs`` for symmetric PSD ``G`` via its eigendecomposition.

    ``alpha`` has shape ``batch + (m,)`` (``m`` ridge levels per problem); the result has
    shape ``batch + (m, size, k)``. Eigenvalues are clipped at zero (rounding) and, where
    ``alpha == 0``, those below ``rcond * max eigenvalue`` are treated as exact zeros.
    """
    evals, evecs = torch.linalg.eigh(G)
    evals = evals.clamp_min(0.0)
    size = G.shape[-1]
    if rcond is None:
        rcond = torch.finfo(torch.float64).eps * size
    cutoff = rcond * evals[..., -1:].clamp_min(torch.finfo(torch.float64).tiny)
    proj = evecs.transpose(-1, -2) @ rhs  # batch + (size, k)
    denom = evals.unsqueeze(-2) + alpha.unsqueeze(-1)  # batch + (m, size)
    keep = (alpha.unsqueeze(-1) > 0) | (evals.unsqueeze(-2) > cutoff.unsqueeze(-2))
    inv = torch.where(keep, 1.0 / torch.where(keep, denom, torch.ones_like(denom)), 0.0)
    return evecs.unsqueeze(-3) @ (inv.unsqueeze(-1) * proj.unsqueeze(-3))


#: Largest accepted estimate of the condition number of ``G + alpha I`` for the Cholesky
#: route; beyond it (or if the factorisation fails) the eigendecomposition is used.
COND_MAX = 1e8


def _solve(G, rhs, alpha, solver, rcond):
    """``(G + alpha I)^+ rhs`` for a batch of PSD ``G`` and per-problem ``alpha``.

    ``solver="cholesky"`` or ``"auto"``: Cholesky factorisation of ``G + alpha I``; a
    problem whose factorisation fails, or whose condition number estimate
    ``(max L_ii / min L_ii)^2`` exceeds :data:`COND_MAX`, is re-solved by
    eigendecomposition (``"auto"``) or raises (``"cholesky"``). ``"eigh"``: always the
    eigendecomposition (pseudo-inverse where ``alpha = 0``).
    """
    if solver == "eigh":
        return _eigh_solve(G, rhs, alpha.unsqueeze(-1), rcond).squeeze(-3)
    eye = torch.eye(G.shape[-1], dtype=G.dtype)
    L, info = torch.linalg.cholesky_ex(G + alpha[..., None, None] * eye)
    diag = torch.diagonal(L, dim1=-2, dim2=-1)
    with torch.no_grad():
        ratio = diag.max(-1).values / diag.min(-1).values.clamp_min(1e-300)
    ok = (info == 0) & torch.isfinite(ratio) & (ratio**2 < COND_MAX)
    sol = torch.cholesky_solve(rhs, L)
    if not bool(ok.all()):
        if solver == "cholesky":
            raise ValueError(
                "X: G + alpha I is singular or ill-conditioned for some problems; "
                "use solver='eigh' or 'auto'"
            )
        bad = ~ok
        sol = sol.clone()
        sol[bad] = _eigh_solve(G[bad], rhs[bad], alpha[bad].unsqueeze(-1), rcond).squeeze(-3)
    return sol


def ridge_fit(X, y, alpha, *, solver: str = "auto", form: str = "auto", rcond=None,
              threads: int | None = DEFAULT_THREADS):
    """Batched ridge coefficients ``argmin_b ||y - X b||^2 + alpha ||b||^2`` (claim C6).

    Parameters
    ----------
    X:
        Design matrices, shape ``(..., n, p)``.
    y:
        Responses, shape ``(..., n)`` or ``(..., n, k)``.
    alpha:
        Ridge level(s) ``>= 0`` (scikit-learn's ``alpha``: the penalty is added to the
        *sum* of squared residuals). A scalar or an array broadcastable to the batch
        shape. ``alpha = 0`` gives the minimum-norm least-squares solution.
    solver:
        ``"auto"`` (default): Cholesky of the regularised Gram matrix, falling back to
        the eigendecomposition for problems where it fails or where the Gram matrix is
        ill-conditioned (condition estimate above :data:`COND_MAX`, e.g. ``alpha = 0``
        at the interpolation threshold ``p = n``); ``"eigh"``: always the
        eigendecomposition; ``"cholesky"``: Cholesky only (``alpha > 0``; raises on
        failure).
    form:
        ``"primal"`` (``p x p`` system), ``"dual"`` (``n x n`` kernel system) or
        ``"auto"`` (dual when ``p > n``). Both give the same solution.
    rcond:
        Relative cutoff for zero eigenvalues when ``alpha = 0`` (default
        ``machine epsilon * size``, as in ``numpy.linalg.pinv``-style solvers).
    threads:
        torch threads during the call (default :data:`DEFAULT_THREADS`; ``None`` keeps
        torch's setting).

    Returns
    -------
    Coefficients of shape ``batch + (p,)`` or ``batch + (p, k)``, float64, numpy or
    torch like ``X``.

    Statement: {prf:ref}`def-rf-model`.
    """
    if solver not in _SOLVERS:
        raise ValueError(f"solver: must be one of {_SOLVERS}, got {solver!r}")
    with torch_threads(threads):
        return _ridge_fit(X, y, alpha, solver, form, rcond)


def _ridge_fit(X, y, alpha, solver, form, rcond):
    Xt, yt, at, form, vector = _prepare(X, y, alpha, form)
    G = _gram(Xt, form)
    rhs = Xt.transpose(-1, -2) @ yt if form == "primal" else yt
    if solver == "cholesky" and bool((at == 0).any()):
        raise ValueError("alpha: solver='cholesky' needs alpha > 0; use solver='eigh' or 'auto'")
    sol = _solve(G, rhs, at.clone(), solver, rcond)
    coef = sol if form == "primal" else Xt.transpose(-1, -2) @ sol
    if vector:
        coef = coef.squeeze(-1)
    return _back(coef, X)


def ridge_path(X, y, alphas, *, solver: str = "auto", form: str = "auto", rcond=None,
               threads: int | None = DEFAULT_THREADS):
    """Ridge coefficients for a 1-D sequence of ``alphas`` on the same data (claim C6).

    The result has shape ``batch + (len(alphas), p)`` (or ``(..., len(alphas), p, k)``
    for matrix ``y``); each slice equals :func:`ridge_fit` at that ``alpha``. The Gram
    matrix is formed once; each level is solved as in :func:`ridge_fit` (for a handful
    of levels, one Cholesky factorisation per level is several times cheaper than one
    eigendecomposition; ``solver="eigh"`` forces the latter).

    Statement: {prf:ref}`def-rf-model`.
    """
    if solver not in _SOLVERS:
        raise ValueError(f"solver: must be one of {_SOLVERS}, got {solver!r}")
    a = _to_tensor(alphas, "alphas")
    if a.ndim != 1 or a.numel() == 0:
        raise ValueError(f"alphas: expected a non-empty 1-D sequence, got shape {tuple(a.shape)}")
    if (a < 0).any():
        raise ValueError("alphas: must be non-negative")
    if solver == "cholesky" and bool((a == 0).any()):
        raise ValueError("alphas: solver='cholesky' needs alpha > 0; use solver='eigh'")
    with torch_threads(threads):
        return _ridge_path(X, y, a, solver, form, rcond)


def _ridge_path(X, y, a, solver, form, rcond):
    Xt, yt, _, form, vector = _prepare(X, y, 0.0, form)
    G = _gram(Xt, form)
    rhs = Xt.transpose(-1, -2) @ yt if form == "primal" else yt
    batch = G.shape[:-2]
    sols = [_solve(G, rhs, torch.full(batch, al, dtype=torch.float64), solver, rcond)
            for al in a.tolist()]
    if form == "primal":
        coef = torch.stack(sols, dim=-3)  # batch + (m, p, k)
    else:  # one product X^T [sol_1 ... sol_m] instead of m broadcast products
        k = yt.shape[-1]
        coef = Xt.transpose(-1, -2) @ torch.cat(sols, dim=-1)  # batch + (p, m * k)
        coef = coef.unflatten(-1, (a.numel(), k)).movedim(-2, -3)
    if vector:
        coef = coef.squeeze(-1)
    return _back(coef, X)


def ridge_fit_predict(X, y, X_test, alpha, **kwargs):
    """Fit :func:`ridge_fit` on ``(X, y)`` and return predictions ``X_test @ beta``.

    ``X_test`` has shape ``(..., n_test, p)`` broadcastable with ``X``'s batch shape;
    predictions have shape ``batch + (n_test,)`` (or ``(..., n_test, k)``).
    """
    coef = ridge_fit(X, y, alpha, **kwargs)
    Xte = _to_tensor(X_test, "X_test")
    p = X.shape[-1]
    if Xte.ndim < 2 or Xte.shape[-1] != p:
        raise ValueError(f"X_test: expected shape (..., n_test, {p}), got {tuple(Xte.shape)}")
    c = coef if isinstance(coef, torch.Tensor) else torch.as_tensor(coef)
    vector = np.ndim(y) == np.ndim(X) - 1
    pred = (Xte @ c.unsqueeze(-1)).squeeze(-1) if vector else Xte @ c
    return _back(pred, X)
