"""Matrix-free symmetric eigensolvers (numpy, float64) used by the network pipeline.

Both solvers only see the operator through a callback on a block of vectors,
``matvec(V) -> A V`` with ``V`` of shape ``(N, b)``, so the NTK ``J Jᵀ`` and
Hessians are never formed. Everything here is plain numpy (no torch), the
operator may run in torch float32 or float64; the Rayleigh-Ritz algebra is float64.

* :func:`lobpcg` - block LOBPCG for the largest eigenpairs, warm-startable from
  the previous step's vectors (this is what keeps per-step tracking cheap).
* :func:`lanczos` - Lanczos with full reorthogonalisation, returning both ends
  of the spectrum (Figure 6 left: extreme eigenvalues of Q₁).

Examples
--------
>>> import numpy as np
>>> from eosdyn.nn.linalg import lobpcg, lanczos
>>> A = np.diag(np.arange(1.0, 101.0))
>>> res = lobpcg(lambda V: A @ V, 100, k=2, rng=np.random.default_rng(0), tol=1e-10)
>>> np.round(res.eigenvalues, 8).tolist()
[100.0, 99.0]
>>> lz = lanczos(lambda V: A @ V, 100, m=100, rng=np.random.default_rng(0))
>>> round(float(lz.eigenvalues[0]), 8), round(float(lz.eigenvalues[-1]), 8)
(100.0, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .._validate import check_int, check_range

MatVec = Callable[[np.ndarray], np.ndarray]


@dataclass
class EigResult:
    """Result of a matrix-free eigen-solve.

    Attributes
    ----------
    eigenvalues : ndarray
        Descending Ritz values (LOBPCG: the ``k`` wanted ones; Lanczos: all ``m``).
    vectors : ndarray
        Ritz vectors as columns, shape ``(N, len(eigenvalues))`` (LOBPCG: the whole block).
    residuals : ndarray
        ``‖A x − θ x‖ / |θ|`` per returned pair.
    matvecs : int
        Number of single-vector operator applications used.
    iterations : int
        Number of iterations.
    converged : bool
        Whether all wanted pairs met ``tol``.
    """

    eigenvalues: np.ndarray
    vectors: np.ndarray
    residuals: np.ndarray
    matvecs: int
    iterations: int
    converged: bool
    block_vectors: np.ndarray | None = None


def _orthonormal_basis(S: np.ndarray, AS: np.ndarray, drop: float = 1e-10):
    """Return ``(S M, AS M)`` with orthonormal ``S M`` (Gram eigen-decomposition, rank-revealing)."""
    G = S.T @ S
    G = 0.5 * (G + G.T)
    s, U = np.linalg.eigh(G)
    keep = s > drop * s.max()
    M = U[:, keep] / np.sqrt(s[keep])
    Q = S @ M
    # one re-orthogonalisation pass for accuracy
    G2 = Q.T @ Q
    s2, U2 = np.linalg.eigh(0.5 * (G2 + G2.T))
    M2 = U2 / np.sqrt(s2)
    M = M @ M2
    return S @ M, AS @ M


def lobpcg(matvec: MatVec, n: int, *, k: int = 2, block: int | None = None, X0: np.ndarray | None = None,
           rng: np.random.Generator | None = None, tol: float = 1e-6, maxiter: int = 200) -> EigResult:
    """Largest eigenpairs of a symmetric operator by block LOBPCG (no preconditioner).

    Parameters
    ----------
    matvec : callable
        ``matvec(V) -> A V`` for ``V`` of shape ``(n, b)`` (float64 arrays).
    n : int
        Operator dimension.
    k : int, default 2
        Number of wanted (largest) eigenpairs.
    block : int, optional
        Block size ``>= k`` (default ``k + 1``; extra vectors speed up convergence of the k-th).
    X0 : ndarray, optional
        Warm start, shape ``(n, b0)``; columns beyond ``block`` are dropped, missing ones random.
    rng : numpy.random.Generator, optional
        Source of the random start vectors (required when ``X0`` does not fill the block).
    tol : float, default 1e-6
        Stop when ``‖A x_i − θ_i x_i‖ <= tol |θ_i|`` for the ``k`` wanted pairs.
    maxiter : int, default 200
        Iteration cap (``converged`` is False if reached).

    Returns
    -------
    EigResult

    Examples
    --------
    >>> import numpy as np
    >>> A = np.diag([5.0, 4.0, 1.0, 0.5])
    >>> r = lobpcg(lambda V: A @ V, 4, k=1, rng=np.random.default_rng(1), tol=1e-12)
    >>> round(float(r.eigenvalues[0]), 10)
    5.0
    """
    n = check_int("n", n, 1)
    k = check_int("k", k, 1, n)
    block = check_int("block", k + 1 if block is None else block, k, n)
    check_range("tol", tol, 0, None, lo_open=True)
    maxiter = check_int("maxiter", maxiter, 1)
    cols = []
    if X0 is not None:
        X0 = np.asarray(X0, dtype=np.float64).reshape(n, -1)[:, :block]
        cols.append(X0)
    missing = block - (0 if X0 is None else X0.shape[1])
    if missing > 0:
        if rng is None:
            raise ValueError("rng is required when X0 does not provide `block` start vectors")
        cols.append(rng.standard_normal((n, missing)))
    X = np.concatenate(cols, axis=1)
    AX = np.asarray(matvec(X), dtype=np.float64)
    nmv = X.shape[1]
    X, AX = _orthonormal_basis(X, AX)
    H = X.T @ AX
    theta, C = np.linalg.eigh(0.5 * (H + H.T))
    order = np.argsort(theta)[::-1]
    theta, C = theta[order], C[:, order]
    X, AX = X @ C, AX @ C
    P = AP = None
    it = 0
    res = np.full(X.shape[1], np.inf)
    while True:
        R = AX - X * theta
        res = np.linalg.norm(R, axis=0) / np.maximum(np.abs(theta), np.finfo(float).tiny)
        if np.all(res[:k] <= tol) or it >= maxiter:
            break
        it += 1
        # only iterate on non-converged residual directions
        active = res > tol
        active[:k] |= False
        Ra = R[:, active]
        Ra = Ra - X @ (X.T @ Ra)
        Ra = Ra / np.linalg.norm(Ra, axis=0)
        ARa = np.asarray(matvec(Ra), dtype=np.float64)
        nmv += Ra.shape[1]
        if P is None:
            S, AS = np.concatenate([X, Ra], 1), np.concatenate([AX, ARa], 1)
        else:
            S, AS = np.concatenate([X, Ra, P], 1), np.concatenate([AX, ARa, AP], 1)
        S, AS = _orthonormal_basis(S, AS)
        H = S.T @ AS
        w, C = np.linalg.eigh(0.5 * (H + H.T))
        order = np.argsort(w)[::-1][: X.shape[1]]
        theta, C = w[order], C[:, order]
        Xn, AXn = S @ C, AS @ C
        # implicit-difference search directions P = Xn - X (XᵀXn), orthogonal to old X
        Cx = X.T @ Xn
        P, AP = Xn - X @ Cx, AXn - AX @ Cx
        X, AX = Xn, AXn
    return EigResult(theta[:k].copy(), X[:, :k].copy(), res[:k].copy(), nmv, it,
                     bool(np.all(res[:k] <= tol)), block_vectors=X.copy())


def lanczos(matvec: MatVec, n: int, *, m: int = 60, rng: np.random.Generator | None = None,
            v0: np.ndarray | None = None, return_vectors: int = 0) -> EigResult:
    """Lanczos with full reorthogonalisation: Ritz values of both spectral ends.

    Parameters
    ----------
    matvec : callable
        ``matvec(V) -> A V`` for ``V`` of shape ``(n, 1)``.
    n : int
        Operator dimension.
    m : int, default 60
        Krylov dimension (number of matvecs); capped at ``n``.
    rng : numpy.random.Generator, optional
        Random start vector source (when ``v0`` is not given).
    v0 : ndarray, optional
        Start vector.
    return_vectors : int, default 0
        Return the Ritz vectors of the largest ``return_vectors`` Ritz values.

    Returns
    -------
    EigResult
        ``eigenvalues`` are all ``m`` Ritz values, descending (extreme ones converge
        first); ``residuals`` are the Lanczos residual estimates ``|β_m s_m| / |θ|``.

    Examples
    --------
    >>> import numpy as np
    >>> A = np.diag(np.linspace(-3, 2, 50))
    >>> r = lanczos(lambda V: A @ V, 50, m=50, rng=np.random.default_rng(0))
    >>> round(float(r.eigenvalues[0]), 8), round(float(r.eigenvalues[-1]), 8)
    (2.0, -3.0)
    """
    n = check_int("n", n, 1)
    m = min(check_int("m", m, 1), n)
    if v0 is None:
        if rng is None:
            raise ValueError("rng is required when v0 is not given")
        v0 = rng.standard_normal(n)
    q = np.asarray(v0, dtype=np.float64).reshape(n)
    q = q / np.linalg.norm(q)
    Qm = np.empty((n, m))
    alpha = np.zeros(m)
    beta = np.zeros(m)
    j_used = m
    for j in range(m):
        Qm[:, j] = q
        w = np.asarray(matvec(q[:, None]), dtype=np.float64).reshape(n)
        alpha[j] = q @ w
        w = w - Qm[:, : j + 1] @ (Qm[:, : j + 1].T @ w)
        w = w - Qm[:, : j + 1] @ (Qm[:, : j + 1].T @ w)
        beta[j] = np.linalg.norm(w)
        if beta[j] <= 1e-14 * max(abs(alpha[: j + 1]).max(), 1e-300):
            j_used = j + 1
            break
        q = w / beta[j]
    T = np.diag(alpha[:j_used]) + np.diag(beta[: j_used - 1], 1) + np.diag(beta[: j_used - 1], -1)
    theta, S = np.linalg.eigh(T)
    order = np.argsort(theta)[::-1]
    theta, S = theta[order], S[:, order]
    res = np.abs(beta[j_used - 1] * S[-1, :]) / np.maximum(np.abs(theta), np.finfo(float).tiny)
    vecs = Qm[:, :j_used] @ S[:, :return_vectors] if return_vectors else np.empty((n, 0))
    return EigResult(theta, vecs, res, j_used, j_used, True)
