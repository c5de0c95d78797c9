"""Batched gradient descent for quadratic regression models (Eq. 24-26), plain arrays only.

One call of :func:`run_gd` iterates ``B`` trajectories ``(J, z)`` that share one
tensor ``Q`` (shape ``D × P × P``, symmetric in its last two indices):

    g = Jᵀ z
    z ← z − η J g + ½ η² Q(g, g)
    J ← J − η Q(g, ·),         Q(g, ·)_αj = Σ_i Q_αij g_i

Cost model (per step, batch of ``B``):

* one GEMM ``M = G · Qᵀ`` of shape ``(B × P) · (P × D·P)`` gives ``Q(g, ·)`` for
  every trajectory (``2 D P² B`` flops, the dominant cost);
* one fused numba pass per trajectory reads ``J`` and ``M`` once and computes
  ``J g``, ``Q(g, g) = M g``, the new ``z``, the new ``J`` and the next ``g``.

Finished trajectories (converged, diverged, cycle) are masked out at once and
removed from the batch ("compaction") whenever at least ``compact_fraction`` of
the batch has finished. The compaction schedule is a function of the
trajectories alone, so the batch composition -- and therefore every rounding
of the GEMM -- is a deterministic function of the inputs: results are
bit-for-bit reproducible. BLAS threads do not change results of the GEMM (it
is split over rows/columns, never over the reduction), but callers that want a
fixed core count should wrap the call in ``threadpoolctl.threadpool_limits``
(:mod:`eosdyn.sweep` does).

This module is shared by the random QRM sweeps (:mod:`eosdyn.models.qrm`) and
the Taylor-expanded network (:mod:`eosdyn.models.taylor`).
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, field

import numba as nb
import numpy as np

from .._validate import _fmt_interval, check_int
from ..conventions import STATUS_VALUES

RUNNING = 0  # internal state of a row still iterating (never in a dataset)
CONVERGED = STATUS_VALUES["converged"]
DIVERGED = STATUS_VALUES["diverged"]
MAX_STEPS = STATUS_VALUES["max_steps"]
CYCLE = STATUS_VALUES["cycle"]


def q_operator(Q: np.ndarray) -> np.ndarray:
    """Reshape ``Q`` (D × P × P, symmetric in the last two indices) into the GEMM operand.

    Returns the ``P × (D·P)`` matrix ``A`` with ``A[i, α·P + j] = Q[α, i, j]``, so that
    for a batch ``G`` (``B × P``) of vectors ``g``, ``(G @ A).reshape(B, D, P)`` is
    ``Q(g, ·)`` for each row.

    Examples
    --------
    >>> import numpy as np
    >>> Q = np.ones((2, 3, 3)); q_operator(Q).shape
    (3, 6)
    """
    D, P, P2 = Q.shape
    if P != P2:
        raise ValueError(f"Q must have shape (D, P, P); got {Q.shape}")
    return np.ascontiguousarray(Q.transpose(1, 0, 2).reshape(P, D * P))


# ----------------------------------------------------------------------------- validation
#: largest step count accepted by :func:`run_gd` (and the QRM sweeps): integers stay exact in float64
MAX_STEPS_LIMIT = 2**53

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_memory(value, name: str = "max_memory") -> int:
    """Parse a memory budget: bytes (int) or a string such as ``"2GB"``, ``"512MiB"``.

    Examples
    --------
    >>> parse_memory("2GB"), parse_memory("1.5 KiB"), parse_memory(100)
    (2000000000, 1536, 100)
    >>> parse_memory("lots")
    Traceback (most recent call last):
    ...
    ValueError: max_memory must be a positive number of bytes or a string like '2GB'; got 'lots'
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        if value <= 0:
            raise ValueError(f"{name} must be positive; got {value}")
        return int(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", value)
        if m and m.group(2).lower() in _UNITS and float(m.group(1)) > 0:
            return int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    raise ValueError(f"{name} must be a positive number of bytes or a string like '2GB'; got {value!r}")


def check_budget(need: int, budget: int, what: str, hint: str = "") -> None:
    """Raise ``ValueError`` naming ``max_memory`` (with the estimate) when ``need > budget``."""
    if need > budget:
        raise ValueError(f"max_memory: {what} needs about {need / 1e6:.1f} MB, over the budget of "
                         f"{budget / 1e6:.1f} MB{'; ' + hint if hint else ''}")


def real_scalar(name: str, value, lo=None, hi=None, *, lo_open=False, hi_open=False,
                finite=True) -> float:
    """``value`` as a float after checking it is one real number in the interval.

    Raises ``TypeError`` (not a real number: strings, bools, None, complex) or ``ValueError``
    (an array, NaN, out of range), naming ``name`` and the allowed range.

    Examples
    --------
    >>> real_scalar("eta", 0.5, 0, None, lo_open=True)
    0.5
    >>> real_scalar("eta", [1.0, 0.5], 0, None, lo_open=True)
    Traceback (most recent call last):
    ...
    ValueError: eta must be a single real number in (0, inf); got an array of shape (2,)
    """
    rng = _fmt_interval(lo, hi, lo_open, hi_open)
    if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
        raise TypeError(f"{name} must be a real number in {rng}; got {value!r}")
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real number in {rng}; got {value!r}")
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a single real number in {rng}; got an array of shape {arr.shape}")
    with np.errstate(over="ignore"):
        v = float(arr)
    ok = not math.isnan(v) and (not finite or math.isfinite(v))
    if ok and lo is not None:
        ok = v > lo if lo_open else v >= lo
    if ok and hi is not None:
        ok = v < hi if hi_open else v <= hi
    if not ok:
        what = "finite and in" if finite else "in"
        raise ValueError(f"{name} must be {what} {rng}; got {v!r}")
    return v


def real_array(name: str, value, shape: tuple | None = None, ndim: int | None = None) -> np.ndarray:
    """``value`` as an ndarray of real numbers with the given ``shape`` (``None`` entries: any)."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be an array of real numbers; got {value!r}")
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be an array of real numbers (float64, float32 or integer); "
                        f"got dtype {arr.dtype}")
    if shape is not None:
        want = "(" + ", ".join("n" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
        if arr.ndim != len(shape) or any(d is not None and d != a for d, a in zip(shape, arr.shape)):
            raise ValueError(f"{name} must have shape {want}; got {arr.shape}")
    return arr


def check_representable(name: str, arr, dtype) -> None:
    """Raise ``ValueError`` naming ``name`` when finite values of ``arr`` overflow ``dtype``."""
    dtype = np.dtype(dtype)
    a = np.asarray(arr)
    if dtype == np.float32 and a.size and a.dtype.itemsize > 4:
        big = np.abs(a[np.isfinite(a)]) if a.dtype.kind == "f" else np.abs(a)
        lim = float(np.finfo(np.float32).max)
        if big.size and float(big.max()) > lim:
            raise ValueError(f"{name} holds {float(big.max()):g}, beyond the float32 range (|x| <= {lim:g}); "
                             "use dtype='float64' or smaller values")


@nb.njit(cache=True, nogil=True)
def _init_g(J, z, g, loss):
    """g = Jᵀ z and loss = ½|z|² for every row."""
    B, D, P = J.shape
    for b in range(B):
        for j in range(P):
            g[b, j] = 0.0
        s = 0.0
        for a in range(D):
            za = z[b, a]
            s += za * za
            for j in range(P):
                g[b, j] += J[b, a, j] * za
        loss[b] = 0.5 * s


@nb.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _fused_step(J, M, z, g, zm1, loss, status, stop_at, cyc_count, eta, t_new,
                tol, div_loss, cycle_tol, cycle_window, gnew):
    """Advance every running row by one GD step given ``M = Q(g, ·)``; classify its fate.

    Returns the number of rows that finished at this step.
    """
    B, D, P = J.shape
    half_eta2 = 0.5 * eta * eta
    n_fin = 0
    for b in range(B):
        if status[b] != 0:
            for j in range(P):
                g[b, j] = 0.0
            continue
        for j in range(P):
            gnew[j] = 0.0
        s = 0.0
        d2 = 0.0
        for a in range(D):
            jg = 0.0
            qgg = 0.0
            for j in range(P):
                gj = g[b, j]
                jg += J[b, a, j] * gj
                qgg += M[b, a, j] * gj
            za_old = z[b, a]
            za = za_old - eta * jg + half_eta2 * qgg
            z[b, a] = za
            s += za * za
            if cycle_window > 0:
                dz = za - zm1[b, a]
                d2 += dz * dz
                zm1[b, a] = za_old
            for j in range(P):
                jn = J[b, a, j] - eta * M[b, a, j]
                J[b, a, j] = jn
                gnew[j] += jn * za
        for j in range(P):
            g[b, j] = gnew[j]
        lb = 0.5 * s
        loss[b] = lb
        if not (lb <= div_loss):  # NaN, inf or above the threshold
            for j in range(P):
                g[b, j] = 0.0
            status[b] = 2
            stop_at[b] = t_new
            n_fin += 1
        elif lb < tol:
            status[b] = 1
            stop_at[b] = t_new
            n_fin += 1
        elif cycle_window > 0:
            if d2 <= cycle_tol * cycle_tol * s and t_new >= 2:
                cyc_count[b] += 1
                if cyc_count[b] >= cycle_window:
                    status[b] = 4
                    stop_at[b] = t_new
                    n_fin += 1
            else:
                cyc_count[b] = 0
    return n_fin


# ----------------------------------------------------------------------------- λ_max
# Exact top eigenvalue of J Jᵀ per member, in numba (no per-member Python/LAPACK overhead).
# Per member: the Gram matrix of the shorter side (float64, scaled by its largest diagonal
# entry), then either
#   * certified Lanczos: a few Lanczos steps (full reorthogonalisation) from a start vector --
#     the previous recorded step's Ritz vector inside run_gd -- give a Ritz value θ ≤ λ_max;
#     θ is accepted only when the Cholesky factorisation of θ(1 + δ) I − G succeeds, which
#     proves λ_max < θ(1 + δ) (δ = _DELTA, far above the Cholesky rounding ≈ n ε), or
#   * the exact fallback: Householder tridiagonalisation + Sturm multisection for the top
#     eigenvalue (accurate to rounding).
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
    d = np.empty(n)
    e = np.empty(n)
    e2 = np.empty(n)
    v = np.empty(n)
    p = np.empty(n)
    al = np.empty(n)
    be = np.empty(n)
    s = np.empty(n)
    c = np.empty(n)
    y = np.empty(n)
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
        if not finite or not (xmax < np.inf):
            out[r] = np.nan
            warm[b] = False
            continue
        if xmax == 0.0:
            out[r] = 0.0
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
        if not finite:
            out[r] = np.nan
            warm[b] = False
            continue
        if smax == 0.0:
            out[r] = 0.0
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


@dataclass
class GDResult:
    """Outcome of :func:`run_gd` (all arrays indexed by the input batch order).

    Attributes
    ----------
    status : (B,) int8
        CF flag values of :data:`eosdyn.conventions.STATUS_VALUES`
        (converged / diverged / max_steps / cycle).
    steps_taken : (B,) int64
        Step at which the trajectory stopped (``max_steps`` if it never did).
    diverged_at : (B,) int64
        First step whose state was non-finite or whose loss exceeded ``diverge_loss``; −1 if never.
    final_loss, final_sharpness : (B,) float
        Loss and η λ_max(J Jᵀ) of the final state (exact eigvalsh); NaN if diverged.
    final_z : (B, D) float
        Final residuals (NaN if diverged).
    final_J : (B, D, P) float or None
        Final Jacobians when ``return_J=True`` (NaN if diverged).
    record_steps : (R,) int64
        Recorded steps ``0, k, 2k, …`` (empty when nothing is recorded).
    loss, z_norm, sharpness : (B, R) float or None
        Recorded loss, ‖z‖ and η λ_max at ``record_steps`` (rows not selected by
        ``record_mask``, and steps after a trajectory stopped, are NaN).
    z : (B, R, D) float or None
        Recorded residual vectors when ``record_z=True``.
    """

    status: np.ndarray
    steps_taken: np.ndarray
    diverged_at: np.ndarray
    final_loss: np.ndarray
    final_sharpness: np.ndarray
    final_z: np.ndarray
    final_J: np.ndarray | None = None
    record_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    loss: np.ndarray | None = None
    z_norm: np.ndarray | None = None
    sharpness: np.ndarray | None = None
    z: np.ndarray | None = None


def run_gd(Q, J0, z0, eta, max_steps, record_every=0, *, tol=1e-12, diverge_loss=1e8,
           record_mask=None, record_sharpness=True, record_z=False, return_J=False,
           cycle_tol=None, cycle_window=200, compact_fraction=0.125, max_memory="2GB") -> GDResult:
    """Gradient descent (Eq. 25-26) for a batch of ``(J, z)`` sharing one ``Q``.

    Parameters
    ----------
    Q : ndarray, shape (D, P, P)
        Second-derivative tensor, symmetric in its last two indices (not checked).
    J0 : ndarray, shape (B, D, P)
        Initial Jacobians.
    z0 : ndarray, shape (B, D)
        Initial residuals.
    eta : float
        Learning rate η > 0.
    max_steps : int
        Maximum number of GD steps.
    record_every : int, default 0
        Record ``loss``, ``z_norm`` (and ``sharpness``) every ``record_every`` steps,
        starting with step 0; 0 records nothing.
    tol : float, default 1e-12
        Converged when the loss ½‖z‖² falls below ``tol``.
    diverge_loss : float, default 1e8
        Diverged when the loss is non-finite or above this value; the state is NaN afterwards.
    record_mask : (B,) bool, optional
        Record only these trajectories (default: all).
    record_sharpness : bool, default True
        Record η λ_max(J Jᵀ) (exact, see :func:`lambda_max`; each member's Lanczos iteration
        is warm-started from its Ritz vector of the previous recorded step).
    record_z : bool, default False
        Also record the residual vectors (``B × R × D``).
    return_J : bool, default False
        Return the final Jacobians.
    cycle_tol : float, optional
        Opt-in early stop: status ``cycle`` once ‖z_{t+2} − z_t‖ ≤ cycle_tol ‖z_{t+2}‖
        held for ``cycle_window`` consecutive steps (a settled period-2 orbit).
        Never on by default: some trajectories creep to convergence very late.
    cycle_window : int, default 200
        See ``cycle_tol``.
    compact_fraction : float, default 0.125
        Remove finished trajectories from the batch once at least this fraction
        of it has finished (0: at every step with a finished one), in [0, 1].
    max_memory : int or str, default "2GB"
        Budget for the arrays this call allocates (working set and recordings, estimated
        before anything is allocated); above it a ``ValueError`` naming ``max_memory``
        states the estimate.

    Returns
    -------
    GDResult
        A member whose loss or final sharpness is not finite (or whose recorded sharpness
        overflows) is ``diverged``: ``converged``/``max_steps``/``cycle`` always come with
        finite final values.

    Raises
    ------
    TypeError, ValueError
        Before any allocation, naming the parameter and its allowed range: ``Q`` not a
        float32/float64 array of shape (D, P, P) with D, P ≥ 1; ``J0``/``z0`` not real arrays
        of shape (B, D, P) / (B, D), or (for float32 ``Q``) holding values beyond the float32
        range; ``eta`` not finite and > 0; ``max_steps`` not an integer in
        [0, ``MAX_STEPS_LIMIT``]; ``record_every`` not an integer ≥ 0; ``tol`` not finite and
        ≥ 0; ``diverge_loss`` not finite and > 0; ``cycle_tol`` not finite and > 0;
        ``cycle_window`` not an integer ≥ 1; ``compact_fraction`` outside [0, 1];
        ``record_mask`` not a boolean array of shape (B,); the flags not booleans;
        the estimated memory above ``max_memory``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> D, P, B = 4, 8, 3
    >>> G = rng.standard_normal((D, P, P)); Q = (G + G.transpose(0, 2, 1)) / np.sqrt(2)
    >>> J0 = 0.3 * rng.standard_normal((B, D, P)); z0 = 0.1 * rng.standard_normal((B, D))
    >>> res = run_gd(Q, J0, z0, eta=0.5, max_steps=2000)
    >>> res.status.tolist()  # 1 = converged
    [1, 1, 1]
    >>> run_gd(Q, J0, z0, eta=0.5, max_steps=1.5)
    Traceback (most recent call last):
    ...
    ValueError: max_steps must be an integer in [0, 9007199254740992]; got 1.5 (float)
    """
    (Q, J, z, eta, max_steps, record_every, tol, diverge_loss, rmask, use_cycle, cyc_tol, cyc_win,
     thresh_frac, record_sharpness, record_z, return_J) = _check_gd_args(
        Q, J0, z0, eta, max_steps, record_every, tol, diverge_loss, record_mask, record_sharpness,
        record_z, return_J, cycle_tol, cycle_window, compact_fraction, max_memory)
    dtype = Q.dtype
    D, P = Q.shape[:2]
    B = J.shape[0]
    A = q_operator(Q)

    # outputs (input order)
    status_out = np.zeros(B, np.int8)
    steps_out = np.full(B, max_steps, np.int64)
    div_out = np.full(B, -1, np.int64)
    floss = np.full(B, np.nan, dtype)
    fsharp = np.full(B, np.nan, dtype)
    fz = np.full((B, D), np.nan, dtype)
    fJ = np.full((B, D, P), np.nan, dtype) if return_J else None
    if record_every > 0:
        rsteps = np.arange(0, max_steps + 1, record_every, dtype=np.int64)
    else:
        rsteps = np.zeros(0, np.int64)
    R = rsteps.size
    rec_loss = np.full((B, R), np.nan, dtype) if R else None
    rec_zn = np.full((B, R), np.nan, dtype) if R else None
    rec_sh = np.full((B, R), np.nan, dtype) if (R and record_sharpness) else None
    rec_z = np.full((B, R, D), np.nan, dtype) if (R and record_z) else None

    # working set
    idx = np.arange(B)
    g = np.empty((B, P), dtype)
    loss = np.empty(B, dtype)
    _init_g(J, z, g, loss)
    status = np.zeros(B, np.int8)
    stop_at = np.full(B, -1, np.int64)
    cyc = np.zeros(B, np.int64)
    zm1 = z.copy() if use_cycle else np.zeros((1, 1), dtype)
    gnew = np.empty(P, dtype)
    Mbuf = np.empty((B, D * P), dtype)  # GEMM output, reused every step (no per-step allocation)
    # classify the initial state
    with np.errstate(over="ignore"):  # float32: tol above its range compares as inf
        bad = ~(loss <= diverge_loss)
        status[bad] = DIVERGED
        status[~bad & (loss < tol)] = CONVERGED
    stop_at[status != RUNNING] = 0
    n_done = int(np.count_nonzero(status))
    # λ_max warm starts (the previous recorded step's Ritz vector of each member)
    U = np.zeros((B, min(D, P))) if rec_sh is not None else None
    warm = np.zeros(B, np.bool_) if rec_sh is not None else None

    t = 0
    r = 0
    with np.errstate(over="ignore", invalid="ignore"):  # blow-ups are data (flagged), not warnings
        while True:
            if r < R and rsteps[r] == t:
                sel = rmask[idx] & ((status == RUNNING) | ((status != DIVERGED) & (stop_at == t)))
                if sel.any():
                    rows = idx[sel]
                    rec_loss[rows, r] = loss[sel]
                    rec_zn[rows, r] = _z_norm(loss[sel])
                    if rec_sh is not None:
                        pos = np.flatnonzero(sel)
                        with np.errstate(over="ignore"):
                            sh = eta * _lambda_max_rows(J, pos, U, warm)
                        rec_sh[rows, r] = sh
                        blown = ~np.isfinite(sh)
                        if blown.any():  # λ_max overflowed: the member diverged here
                            pos = pos[blown]
                            n_done += int(np.count_nonzero(status[pos] == RUNNING))
                            status[pos] = DIVERGED
                            stop_at[pos] = t
                    if rec_z is not None:
                        rec_z[rows, r] = z[sel]
                r += 1
            last = t == max_steps
            if n_done and (last or n_done >= max(1.0, thresh_frac * idx.size) or n_done == idx.size):
                fin = status != RUNNING
                _finish(fin, idx, status, stop_at, J, z, loss, eta, status_out, steps_out, div_out,
                        floss, fsharp, fz, fJ)
                keep = ~fin
                idx, J, z, g, loss, status, stop_at, cyc = (a[keep] for a in (idx, J, z, g, loss, status, stop_at, cyc))
                if use_cycle:
                    zm1 = zm1[keep]
                if U is not None:
                    U, warm = U[keep], warm[keep]
                n_done = 0
            if idx.size == 0 or last:
                break
            M = np.matmul(g, A, out=Mbuf[: idx.size]).reshape(idx.size, D, P)
            n_done += _fused_step(J, M, z, g, zm1, loss, status, stop_at, cyc, eta, t + 1,
                                  tol, diverge_loss, cyc_tol, cyc_win, gnew)
            t += 1
    if idx.size:  # still running at max_steps
        status[:] = MAX_STEPS
        stop_at[:] = max_steps
        _finish(np.ones(idx.size, bool), idx, status, stop_at, J, z, loss, eta, status_out,
                steps_out, div_out, floss, fsharp, fz, fJ)
    return GDResult(status=status_out, steps_taken=steps_out, diverged_at=div_out, final_loss=floss,
                    final_sharpness=fsharp, final_z=fz, final_J=fJ, record_steps=rsteps,
                    loss=rec_loss, z_norm=rec_zn, sharpness=rec_sh, z=rec_z)


def _check_gd_args(Q, J0, z0, eta, max_steps, record_every, tol, diverge_loss, record_mask,
                   record_sharpness, record_z, return_J, cycle_tol, cycle_window, compact_fraction,
                   max_memory):
    """Validate (once, before the loop) and convert the arguments of :func:`run_gd`."""
    Q = real_array("Q", Q)
    if Q.dtype not in (np.float64, np.float32):
        raise TypeError(f"Q must be a float64 or float32 array (it sets the dtype of the run); got {Q.dtype}")
    if Q.ndim != 3 or Q.shape[1] != Q.shape[2] or Q.shape[0] < 1 or Q.shape[1] < 1:
        raise ValueError(f"Q must have shape (D, P, P) with D, P >= 1; got {Q.shape}")
    D, P = Q.shape[:2]
    J0 = real_array("J0", J0, (None, D, P))
    B = J0.shape[0]
    z0 = real_array("z0", z0, (B, D))
    check_representable("J0", J0, Q.dtype)
    check_representable("z0", z0, Q.dtype)
    eta = real_scalar("eta", eta, 0, None, lo_open=True)
    max_steps = check_int("max_steps", max_steps, 0, MAX_STEPS_LIMIT)
    record_every = check_int("record_every", record_every, 0)
    tol = real_scalar("tol", tol, 0, None)
    diverge_loss = real_scalar("diverge_loss", diverge_loss, 0, None, lo_open=True)
    # a float32 loss above the float32 range is inf: the threshold can be at most its largest value
    diverge_loss = min(diverge_loss, float(np.finfo(Q.dtype).max))
    thresh_frac = real_scalar("compact_fraction", compact_fraction, 0, 1)
    use_cycle = cycle_tol is not None
    cyc_tol = real_scalar("cycle_tol", cycle_tol, 0, None, lo_open=True) if use_cycle else 0.0
    cyc_win = check_int("cycle_window", cycle_window, 1) if use_cycle else 0
    flags = []
    for name, v in (("record_sharpness", record_sharpness), ("record_z", record_z), ("return_J", return_J)):
        if not isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False; got {v!r}")
        flags.append(bool(v))
    if record_mask is None:
        rmask = np.ones(B, bool)
    else:
        rmask = np.asarray(record_mask)
        if rmask.dtype != np.bool_ or rmask.shape != (B,):
            raise ValueError(f"record_mask must be a boolean array of shape ({B},) (one flag per member); "
                             f"got dtype {rmask.dtype}, shape {rmask.shape}")
        rmask = rmask.copy()
    budget = parse_memory(max_memory)
    R = max_steps // record_every + 1 if record_every else 0
    per_rec = 2 + flags[0] + D * flags[1]
    item = Q.itemsize
    need = (item * (D * P * P + B * D * P * (3 + flags[2]) + 3 * B * D + B * R * per_rec)
            + 8 * (B * min(D, P) + R + 8 * B))
    check_budget(need, budget, f"run_gd ({B} members, {R} recorded steps)",
                 "record fewer steps (record_every=) or raise max_memory")
    J = np.array(J0, dtype=Q.dtype, order="C", copy=True)
    z = np.array(z0, dtype=Q.dtype, order="C", copy=True)
    return (Q, J, z, eta, max_steps, record_every, tol, diverge_loss, rmask, use_cycle, cyc_tol,
            cyc_win, thresh_frac, flags[0], flags[1], flags[2])


def _finish(fin, idx, status, stop_at, J, z, loss, eta, status_out, steps_out, div_out,
            floss, fsharp, fz, fJ):
    """Copy the final state of the finished rows ``fin`` into the outputs."""
    rows = idx[fin]
    st = status[fin]
    status_out[rows] = st
    steps_out[rows] = stop_at[fin]
    stop = stop_at[fin]
    ok = st != DIVERGED
    if ok.any():
        Jf = J[fin][ok]
        lf = loss[fin][ok]
        with np.errstate(over="ignore"):
            sh = eta * lambda_max(Jf)
        # never converged / max_steps / cycle with a non-finite loss or sharpness: diverged there
        fine = np.isfinite(sh) & np.isfinite(lf)
        good = rows[ok][fine]
        floss[good] = lf[fine]
        fz[good] = z[fin][ok][fine]
        fsharp[good] = sh[fine]
        if fJ is not None:
            fJ[good] = Jf[fine]
        if not fine.all():
            ok[np.flatnonzero(ok)[~fine]] = False
            status_out[rows[~ok]] = DIVERGED
    div_out[rows[~ok]] = stop[~ok]


def _z_norm(loss: np.ndarray) -> np.ndarray:
    """‖z‖ = √(2 L), finite wherever L is (no overflow of 2 L near the top of the float range)."""
    with np.errstate(over="ignore"):
        zn = np.sqrt(2.0 * loss)
    over = np.isinf(zn) & np.isfinite(loss)
    if over.any():
        zn[over] = np.sqrt(loss[over]) * np.sqrt(2.0)
    return zn
