"""Exact largest eigenvalue λ_max(J Jᵀ) of a batch of Jacobians, in numba.

Per member: the Gram matrix of the shorter side (float64, scaled by its largest diagonal
entry), then either

* certified Lanczos: a few Lanczos steps (full reorthogonalisation) from a start vector --
  inside :func:`eosdyn.kernels.qrm.run_gd` the previous recorded step's Ritz vector -- give a
  Ritz value θ ≤ λ_max; θ is accepted only when the Cholesky factorisation of
  θ(1 + δ) I − G succeeds, which proves λ_max < θ(1 + δ) (δ = ``_DELTA``, far above the
  Cholesky rounding ≈ n ε), or
* the exact fallback: Householder tridiagonalisation + Sturm multisection for the top
  eigenvalue (accurate to rounding).

No per-member Python or LAPACK call: one numba pass over the batch. Used by the GD kernel
(:mod:`eosdyn.kernels.qrm`), the QRM gradient flow and the Taylor model.

Examples
--------
>>> import numpy as np
>>> lambda_max(np.array([[[3.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [0.0, 0.0]]]))
array([9., 2.])
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["lambda_max"]

_FM = {"reassoc", "contract"}  # vectorised reductions; no nnan/ninf, so NaN checks stay valid
_NSECT = 8  # bisection points per Sturm pass (independent chains)
_CONV_TOL = 1e-12  # Lanczos stops once θ grew by less than this (relative) over 3 steps
_NREORTH = 1  # full reorthogonalisation passes per Lanczos step
_DELTA = 1e-10  # certified relative accuracy of an accepted Lanczos value
_MAX_LANCZOS = 24  # Lanczos steps before falling back to the exact path


@nb.njit(cache=True, nogil=True, fastmath=_FM, inline="always")
def _dot4(x, r0, r1, r2, r3, m):
    """The dot products of x[:m] with r0[:m] … r3[:m] in one pass over x (four accumulators)."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    for k in range(m):
        xk = x[k]
        s0 += xk * r0[k]
        s1 += xk * r1[k]
        s2 += xk * r2[k]
        s3 += xk * r3[k]
    return s0, s1, s2, s3


@nb.njit(cache=True, nogil=True, fastmath=_FM)
def _gram_lower(X, A):
    """Lower triangle of A = X Xᵀ (X: n × m, C-contiguous rows; A: n × n), 4 dots at a time."""
    n, m = X.shape
    for i in range(n):
        Xi = X[i]
        Ai = A[i]
        j = 0
        while j + 4 <= i + 1:
            s0, s1, s2, s3 = _dot4(Xi, X[j], X[j + 1], X[j + 2], X[j + 3], m)
            Ai[j] = s0
            Ai[j + 1] = s1
            Ai[j + 2] = s2
            Ai[j + 3] = s3
            j += 4
        while j <= i:
            Xj = X[j]
            s0 = 0.0
            for k in range(m):
                s0 += Xi[k] * Xj[k]
            Ai[j] = s0
            j += 1


@nb.njit(cache=True, nogil=True, fastmath=_FM)
def _tridiag_lower(A, d, e, v, p):
    """Householder reduction of the symmetric A (lower triangle, destroyed) to tridiagonal (d, e)."""
    n = A.shape[0]
    for k in range(n - 2):
        # column k below the diagonal: x = A[k+1:, k]
        alpha = A[k + 1, k]
        xn2 = 0.0
        for i in range(k + 2, n):
            xn2 += A[i, k] * A[i, k]
        d[k] = A[k, k]
        if xn2 == 0.0:
            e[k] = alpha
            continue
        beta = np.sqrt(alpha * alpha + xn2)
        if alpha > 0:
            beta = -beta
        tau = (beta - alpha) / beta
        scal = 1.0 / (alpha - beta)
        e[k] = beta
        v[k + 1] = 1.0
        for i in range(k + 2, n):
            v[i] = A[i, k] * scal
        # p = tau * S v, S = A[k+1:, k+1:] (lower triangle)
        for i in range(k + 1, n):
            p[i] = 0.0
        for i in range(k + 1, n):
            Ai = A[i]
            vi = v[i]
            s = 0.0
            for j in range(k + 1, i):
                s += Ai[j] * v[j]
            for j in range(k + 1, i):
                p[j] += Ai[j] * vi
            p[i] += s + Ai[i] * vi
        pv = 0.0
        for i in range(k + 1, n):
            p[i] *= tau
            pv += p[i] * v[i]
        c = 0.5 * tau * pv
        for i in range(k + 1, n):
            p[i] -= c * v[i]  # p is now w
        for i in range(k + 1, n):
            vi = v[i]
            wi = p[i]
            Ai = A[i]
            for j in range(k + 1, i + 1):
                Ai[j] -= vi * p[j] + wi * v[j]
    if n >= 2:
        d[n - 2] = A[n - 2, n - 2]
        e[n - 2] = A[n - 1, n - 2]
    d[n - 1] = A[n - 1, n - 1]


@nb.njit(cache=True, nogil=True)
def _tridiag_top(d, e, e2, x, q, cnt):
    """Largest eigenvalue of the symmetric tridiagonal (d, e) by multisection on Sturm counts."""
    n = d.shape[0]
    lo = d[0]
    hi = -np.inf
    emax = 0.0
    for i in range(n):
        a = abs(e[i - 1]) if i > 0 else 0.0
        b = abs(e[i]) if i < n - 1 else 0.0
        lo = max(lo, d[i])
        hi = max(hi, d[i] + a + b)
        if i < n - 1:
            e2[i] = e[i] * e[i]
            emax = max(emax, e2[i])
    if n == 1 or emax == 0.0:
        return lo
    pivmin = 2.2250738585072014e-308 * max(1.0, emax)
    eps = 2.220446049250313e-16
    K = x.shape[0]
    for _ in range(200):
        if hi - lo <= 2.0 * eps * max(abs(lo), abs(hi)):
            break
        h = (hi - lo) / (K + 1)
        for k in range(K):
            x[k] = lo + (k + 1) * h
            q[k] = d[0] - x[k]
            if abs(q[k]) < pivmin:
                q[k] = -pivmin
            cnt[k] = 1 if q[k] < 0 else 0
        for i in range(1, n):
            di = d[i]
            ei = e2[i - 1]
            for k in range(K):
                t = di - x[k] - ei / q[k]
                t = t if abs(t) >= pivmin else -pivmin
                q[k] = t
                cnt[k] += 1 if t < 0 else 0
        # eigenvalues below x[k]: cnt[k]; the top one lies below the first x with cnt == n
        new_lo = lo
        new_hi = hi
        for k in range(K):
            if cnt[k] == n:
                new_hi = x[k]
                break
            new_lo = x[k]
        if new_lo == lo and new_hi == hi:
            break
        lo = new_lo
        hi = new_hi
    return 0.5 * (lo + hi)


@nb.njit(cache=True, nogil=True, fastmath=_FM)
def _matvec(G, x, y):
    n = G.shape[0]
    for i in range(n):
        Gi = G[i]
        s = 0.0
        for j in range(n):
            s += Gi[j] * x[j]
        y[i] = s


@nb.njit(cache=True, nogil=True, fastmath=_FM)
def _cholesky_ok(G, mu, L):
    """True when the Cholesky factorisation of ``mu I − G`` succeeds (⇒ λ_max(G) < mu).

    Row-oriented (left-looking) with four dot products of a row at a time.
    """
    n = G.shape[0]
    for i in range(n):
        Li = L[i]
        Gi = G[i]
        j = 0
        while j + 4 <= i:
            L0 = L[j]
            L1 = L[j + 1]
            L2 = L[j + 2]
            L3 = L[j + 3]
            s0, s1, s2, s3 = _dot4(Li, L0, L1, L2, L3, j)
            l0 = (-Gi[j] - s0) / L0[j]
            Li[j] = l0
            l1 = (-Gi[j + 1] - s1 - l0 * L1[j]) / L1[j + 1]
            Li[j + 1] = l1
            l2 = (-Gi[j + 2] - s2 - l0 * L2[j] - l1 * L2[j + 1]) / L2[j + 2]
            Li[j + 2] = l2
            Li[j + 3] = (-Gi[j + 3] - s3 - l0 * L3[j] - l1 * L3[j + 1] - l2 * L3[j + 2]) / L3[j + 3]
            j += 4
        while j < i:
            Lj = L[j]
            s0 = 0.0
            for k in range(j):
                s0 += Li[k] * Lj[k]
            Li[j] = (-Gi[j] - s0) / Lj[j]
            j += 1
        s0 = mu - Gi[i]
        for k in range(i):
            s0 -= Li[k] * Li[k]
        if not (s0 > 0.0):
            return False
        Li[i] = np.sqrt(s0)
    return True


@nb.njit(cache=True, nogil=True, fastmath=_FM)
def _ritz_vector(al, be, m, theta, s, c, y):
    """Eigenvector of the m × m tridiagonal (al, be) for its top eigenvalue theta (inverse iteration)."""
    mu = theta + 1e-10 * abs(theta) + 1e-300
    for i in range(m):
        s[i] = 1.0
    for _ in range(3):
        # solve (mu I − T) y = s, positive definite tridiagonal: Thomas algorithm
        piv = mu - al[0]
        c[0] = piv
        y[0] = s[0]
        for i in range(1, m):
            l = -be[i - 1] / c[i - 1]
            c[i] = (mu - al[i]) - l * (-be[i - 1])
            y[i] = s[i] - l * y[i - 1]
        y[m - 1] /= c[m - 1]
        for i in range(m - 2, -1, -1):
            y[i] = (y[i] + be[i] * y[i + 1]) / c[i]
        nrm = 0.0
        for i in range(m):
            nrm += y[i] * y[i]
        nrm = np.sqrt(nrm)
        for i in range(m):
            s[i] = y[i] / nrm


@nb.njit(cache=True, nogil=True, fastmath=_FM)
def _lanczos_certified(G, u, warm, V, w, al, be, s, c, y, e2, x, q, cnt, L, delta, stats):
    """Top eigenvalue of G (full symmetric, scaled) by Lanczos from u; NaN if not certified.

    On success ``u`` holds the Ritz vector (the next call's warm start).
    """
    n = G.shape[0]
    mmax = V.shape[0]
    # start vector
    if not warm:
        imax = 0
        for i in range(n):
            if G[i, i] > G[imax, imax]:
                imax = i
        for i in range(n):
            u[i] = G[imax, i]
    nrm = 0.0
    for i in range(n):
        nrm += u[i] * u[i]
    if not (nrm > 0.0) or not (nrm < np.inf):
        return np.nan
    nrm = 1.0 / np.sqrt(nrm)
    V0 = V[0]
    for i in range(n):
        V0[i] = u[i] * nrm
    theta = -np.inf
    m = 0
    for j in range(mmax):
        Vj = V[j]
        _matvec(G, Vj, w)
        a = 0.0
        for i in range(n):
            a += Vj[i] * w[i]
        al[j] = a
        m = j + 1
        # full reorthogonalisation
        for _ in range(_NREORTH):
            for k in range(j + 1):
                Vk = V[k]
                cc = 0.0
                for i in range(n):
                    cc += Vk[i] * w[i]
                for i in range(n):
                    w[i] -= cc * Vk[i]
        b = 0.0
        for i in range(n):
            b += w[i] * w[i]
        b = np.sqrt(b)
        conv = b <= 1e-14 or m == n or j + 1 == mmax
        if conv or (m >= 3 and m % 3 == 0):
            th = _tridiag_top(al[:m], be[:m], e2, x, q, cnt) if m > 1 else a
            conv = conv or th - theta <= _CONV_TOL * abs(th)
            theta = th
        if conv:
            break
        be[j] = b
        Vn = V[j + 1]
        ib = 1.0 / b
        for i in range(n):
            Vn[i] = w[i] * ib
    stats[2] += m
    if not _cholesky_ok(G, theta * (1.0 + delta) + 1e-300, L):
        return np.nan
    # Ritz vector for the next warm start
    if m > 1:
        _ritz_vector(al, be, m, theta, s, c, y)
        for i in range(n):
            u[i] = 0.0
        for k in range(m):
            sk = s[k]
            Vk = V[k]
            for i in range(n):
                u[i] += sk * Vk[i]
    else:
        for i in range(n):
            u[i] = V0[i]
    return theta


@nb.njit(cache=True, nogil=True, fastmath=_FM)
def _lambda_max_batch(J, rows, out, U, warm, use_lanczos, delta, stats):
    """out[r] = λ_max(J[b] J[b]ᵀ) for b = rows[r] (float64 arithmetic; NaN if non-finite).

    ``U[b]`` / ``warm[b]``: the member's Lanczos start vector and whether it is a valid warm
    start (updated in place). ``stats`` counts [certified Lanczos, exact fallback, Lanczos steps].
    """
    D = J.shape[1]
    P = J.shape[2]
    n = min(D, P)
    m = max(D, P)
    mmax = min(n, _MAX_LANCZOS)
    X = np.empty((n, m))
    A = np.empty((n, n))
    L = np.empty((n, n))
    V = np.empty((mmax, n))
    W = np.empty((10, n))  # work vectors of the tridiagonal reduction and of Lanczos (contiguous rows)
    d, e, e2, v, p = W[0], W[1], W[2], W[3], W[4]
    al, be, s, c, y = W[5], W[6], W[7], W[8], W[9]
    x = np.empty(_NSECT)
    q = np.empty(_NSECT)
    cnt = np.empty(_NSECT, np.int64)
    for r in range(rows.shape[0]):
        b = rows[r]
        # scale J by a power of two 2^-ex with max |J| in [0.5, 1): exact (the Gram matrix and its
        # normalised form below are bit-identical to the unscaled ones), but the Gram entries can
        # no longer overflow (λ_max beyond the float range is returned as inf, not NaN)
        xmax = 0.0
        finite = True
        for a in range(D):
            for j in range(P):
                xa = abs(J[b, a, j])
                if xa > xmax:
                    xmax = xa
                elif not (xa <= xmax):  # NaN
                    finite = False
        if not finite or not (0.0 < xmax < np.inf):  # non-finite entries: NaN; J = 0: 0
            out[r] = 0.0 if (finite and xmax == 0.0) else np.nan
            warm[b] = False
            continue
        ex = math.frexp(xmax)[1]
        if -1000 <= ex <= 1000:
            sc = math.ldexp(1.0, -ex)
            if D <= P:
                for a in range(D):
                    for j in range(P):
                        X[a, j] = J[b, a, j] * sc
            else:
                for a in range(D):
                    for j in range(P):
                        X[j, a] = J[b, a, j] * sc
        else:  # 2^-ex itself is out of range: scale each entry
            for a in range(D):
                for j in range(P):
                    if D <= P:
                        X[a, j] = math.ldexp(J[b, a, j], -ex)
                    else:
                        X[j, a] = math.ldexp(J[b, a, j], -ex)
        _gram_lower(X, A)
        smax = 0.0
        finite = True
        for i in range(n):
            aii = A[i, i]
            if not (abs(aii) < np.inf):
                finite = False
            elif aii > smax:
                smax = aii
        if not finite or smax == 0.0:  # an overflowed Gram entry: NaN; an all-zero Gram matrix: 0
            out[r] = np.nan if not finite else 0.0
            warm[b] = False
            continue
        inv = 1.0 / smax
        for i in range(n):
            Ai = A[i]
            for j in range(i + 1):
                Ai[j] *= inv
        for i in range(n):
            for j in range(i):
                A[j, i] = A[i, j]
        lam = np.nan
        if use_lanczos:
            lam = _lanczos_certified(A, U[b], warm[b], V, v, al, be, s, c, y, e2, x, q, cnt, L,
                                     delta, stats)
        if lam == lam:
            warm[b] = True
            stats[0] += 1
        else:
            warm[b] = False
            stats[1] += 1
            _tridiag_lower(A, d, e, v, p)
            lam = _tridiag_top(d, e, e2, x, q, cnt)
        out[r] = math.ldexp(smax * lam, 2 * ex)  # inf where λ_max overflows


def lambda_max(J: np.ndarray) -> np.ndarray:
    """Largest eigenvalue of ``J Jᵀ`` for a batch ``J`` (``B × D × P``), exact.

    One numba pass over the batch (no per-member Python or LAPACK call): per member the
    Gram matrix of the shorter side (``J Jᵀ`` if D ≤ P, else ``Jᵀ J``: they share their
    non-zero eigenvalues) in float64, then its top eigenvalue by Lanczos certified with a
    Cholesky factorisation of ``θ(1 + 1e-10) I − G`` (so at most 1e-10 relative below the
    true value; typically ≲ 1e-12), or -- where the certificate fails -- by Householder
    tridiagonalisation and Sturm bisection (accurate to rounding). Float32 input is
    computed in float64 and returned as float32. ``J`` is scaled by a power of two first,
    so the Gram matrix never overflows: where the true λ_max exceeds the largest float of
    the dtype the result is ``inf``; members with non-finite entries give NaN.

    Raises ``TypeError`` for a non-real ``J`` and ``ValueError`` for one that is not 3-D.

    Examples
    --------
    >>> import numpy as np
    >>> lambda_max(np.array([[[3.0, 0.0], [0.0, 1.0]]]))
    array([9.])
    >>> lambda_max(np.array([[[1e200, 0.0]], [[np.nan, 1.0]]]))  # overflow: inf; non-finite: NaN
    array([inf, nan])
    """
    J = np.asarray(J)
    if J.dtype.kind not in "iuf":
        raise TypeError(f"J must be an array of real numbers (float64, float32 or integer); got dtype {J.dtype}")
    if J.ndim != 3:
        raise ValueError(f"J must have shape (B, D, P); got {J.shape}")
    dtype = J.dtype if J.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    B = J.shape[0]
    if B == 0:
        return np.empty(0, dtype)
    Jc = np.ascontiguousarray(J, dtype=dtype)
    return _lambda_max_rows(Jc, np.arange(B), None, None)


def _lambda_max_rows(J, rows, U, warm):
    """λ_max of ``J[rows] J[rows]ᵀ`` (``J`` C-contiguous float32/float64) in ``J.dtype``.

    ``U`` (``len(J) × min(D, P)``, float64) and ``warm`` (bool): per-member Lanczos warm
    starts, updated in place (``None``: cold start).
    """
    n = min(J.shape[1], J.shape[2])
    if U is None:
        U = np.zeros((J.shape[0], n))
        warm = np.zeros(J.shape[0], np.bool_)
    out = np.empty(rows.size)
    if J.shape[1] == 0 or J.shape[2] == 0:
        out[:] = 0.0
        return out.astype(J.dtype, copy=False)
    _lambda_max_batch(J, np.asarray(rows, np.int64), out, U, warm, True, _DELTA,
                      np.zeros(3, np.int64))
    with np.errstate(over="ignore"):  # float32: values beyond its range become inf
        return out.astype(J.dtype, copy=False)


def hessian_lambda_max(Q: np.ndarray, J: np.ndarray, z: np.ndarray, precond: np.ndarray | None = None,
                       block: int = 64) -> np.ndarray:
    """Largest eigenvalue of the Hessian ``H = JᵀJ + Σ_a z_a Q_a`` of each member (or of ``P⁻¹H``).

    Parameters
    ----------
    Q : ndarray, shape (D, P, P)
        The shared second-derivative tensor (symmetric in its last two indices).
    J : ndarray, shape (n, D, P)
        Jacobians.
    z : ndarray, shape (n, D)
        Residuals.
    precond : ndarray, shape (n, P), optional
        Positive diagonal preconditioners ``P``: the result is then λ_max(P⁻¹H), computed as
        the top eigenvalue of the symmetric ``P^{-1/2} H P^{-1/2}`` (same spectrum).
    block : int, default 64
        Members per LAPACK call (bounds the temporary ``block × P × P`` memory).

    Returns
    -------
    ndarray, shape (n,)
        The algebraically largest eigenvalue (float64; NaN where ``J``, ``z`` or ``precond``
        is not finite).

    Examples
    --------
    >>> import numpy as np
    >>> Q = np.array([[[1.0, 0.0], [0.0, -1.0]]]); J = np.array([[[2.0, 0.0]]]); z = np.array([[0.5]])
    >>> hessian_lambda_max(Q, J, z).tolist()  # H = diag(4 + 0.5, -0.5)
    [4.5]
    >>> hessian_lambda_max(Q, J, z, precond=np.array([[9.0, 1.0]])).tolist()
    [0.5]
    """
    Qd = np.asarray(Q, np.float64)
    J = np.asarray(J)
    z = np.asarray(z)
    n = J.shape[0]
    out = np.full(n, np.nan)
    for lo in range(0, n, block):
        Jb = np.asarray(J[lo:lo + block], np.float64)
        zb = np.asarray(z[lo:lo + block], np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            H = np.matmul(Jb.transpose(0, 2, 1), Jb)
            H += np.tensordot(zb, Qd, axes=(1, 0))
            if precond is not None:
                r = 1.0 / np.sqrt(np.asarray(precond[lo:lo + block], np.float64))
                H *= r[:, :, None]
                H *= r[:, None, :]
        ok = np.isfinite(H).all(axis=(1, 2))
        if ok.any():
            out[lo:lo + block][ok] = np.linalg.eigvalsh(H[ok])[:, -1]
    return out
