"""Array cores of the analyses: plain NumPy arrays in, plain arrays out, the core dim last.

Each kernel takes a 2-D array ``(rows, n)`` (the analysis wrappers flatten every non-core dim
into ``rows``) and never sees xarray. The loops over rows run in numba, so no analysis ever loops
in Python over members, seeds or grid points.
"""

from __future__ import annotations

import numba as nb
import numpy as np

#: CF flag values of the attractor classification (see :func:`eosdyn.analysis.classify`).
ATTRACTOR_VALUES = {"fixed_point": 0, "period_2": 1, "other": 2, "diverged": 3}
_FIXED, _P2, _OTHER, _DIVERGED = 0, 1, 2, 3


# --------------------------------------------------------------------------- classification
@nb.njit(cache=True, nogil=True)
def classify_rows(a, ends, tail, rtol, atol):
    """Attractor code of each row of ``a`` (rows, n) from the last ``tail`` values before ``ends[r]``.

    ``tail = 0`` means per row ``min(end, max(10, end // 10))``.

    ``ends[r]`` is the number of recorded values of row r (later values are padding, e.g. after an
    early stop); ``ends[r] < 0`` means "flagged diverged". Rule (per row): ``diverged`` if flagged
    or if the last value is NaN or ±inf; otherwise with ``scale = max |x|`` over the first value and
    the tail (finite values; only these are read) and ``tol = rtol*scale + atol``: ``fixed_point``
    if every one-step change in the tail is <= tol, else ``period_2`` if every two-step change
    x[t+2] - x[t] in the tail is <= tol, else ``other`` (also when the tail holds a non-finite
    value or is shorter than 3 values).
    """
    rows, n = a.shape
    out = np.empty(rows, np.int8)
    for r in range(rows):
        end = ends[r]
        if end < 0:
            out[r] = _DIVERGED
            continue
        end = min(end, n)
        if end == 0 or not np.isfinite(a[r, end - 1]):
            out[r] = _DIVERGED
            continue
        tl = tail if tail > 0 else min(end, max(10, end // 10))
        start = end - tl
        if start < 0 or tl < 3:
            out[r] = _OTHER
            continue
        scale = abs(a[r, 0]) if np.isfinite(a[r, 0]) else 0.0
        ok = True
        for t in range(start, end):
            av = abs(a[r, t])
            if not av < np.inf:          # NaN or inf in the tail
                ok = False
                break
            if av > scale:
                scale = av
        if not ok:
            out[r] = _OTHER
            continue
        tol = rtol * scale + atol
        code = _FIXED
        for t in range(start, end - 1):
            if abs(a[r, t + 1] - a[r, t]) > tol:
                code = _P2
                break
        if code == _P2:
            for t in range(start, end - 2):
                if abs(a[r, t + 2] - a[r, t]) > tol:
                    code = _OTHER
                    break
        out[r] = code
    return out


# --------------------------------------------------------------------------- geometric fits
@nb.njit(cache=True, nogil=True)
def _inv3(m):
    """Inverse of a 3x3 matrix by cofactors; NaN matrix if singular."""
    out = np.empty((3, 3))
    c00 = m[1, 1] * m[2, 2] - m[1, 2] * m[2, 1]
    c01 = m[1, 2] * m[2, 0] - m[1, 0] * m[2, 2]
    c02 = m[1, 0] * m[2, 1] - m[1, 1] * m[2, 0]
    det = m[0, 0] * c00 + m[0, 1] * c01 + m[0, 2] * c02
    if det == 0.0 or not np.isfinite(det):
        out[:, :] = np.nan
        return out
    out[0, 0] = c00 / det
    out[1, 0] = c01 / det
    out[2, 0] = c02 / det
    out[0, 1] = (m[0, 2] * m[2, 1] - m[0, 1] * m[2, 2]) / det
    out[1, 1] = (m[0, 0] * m[2, 2] - m[0, 2] * m[2, 0]) / det
    out[2, 1] = (m[0, 1] * m[2, 0] - m[0, 0] * m[2, 1]) / det
    out[0, 2] = (m[0, 1] * m[1, 2] - m[0, 2] * m[1, 1]) / det
    out[1, 2] = (m[0, 2] * m[1, 0] - m[0, 0] * m[1, 2]) / det
    out[2, 2] = (m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]) / det
    return out


@nb.njit(cache=True, nogil=True)
def _rss_and_normal(u, L, c, r, jtj, jtr):
    """Residual sum of squares of u_k - (L + c r^k), and the Gauss-Newton normal equations."""
    m = u.shape[0]
    rk = 1.0        # r^k
    drk = 0.0       # k r^(k-1)
    rss = 0.0
    jtj[:, :] = 0.0
    jtr[:] = 0.0
    for k in range(m):
        res = u[k] - (L + c * rk)
        rss += res * res
        j0, j1, j2 = 1.0, rk, c * drk
        jtj[0, 0] += j0 * j0
        jtj[0, 1] += j0 * j1
        jtj[0, 2] += j0 * j2
        jtj[1, 1] += j1 * j1
        jtj[1, 2] += j1 * j2
        jtj[2, 2] += j2 * j2
        jtr[0] += j0 * res
        jtr[1] += j1 * res
        jtr[2] += j2 * res
        drk = (k + 1) * rk
        rk = rk * r
    jtj[1, 0] = jtj[0, 1]
    jtj[2, 0] = jtj[0, 2]
    jtj[2, 1] = jtj[1, 2]
    return rss


@nb.njit(cache=True, nogil=True)
def _linear_Lc(u, r):
    """Least-squares (L, c) of u_k ≈ L + c r^k for a fixed r."""
    m = u.shape[0]
    s1 = 0.0
    s2 = 0.0
    sy = 0.0
    s22 = 0.0
    s2y = 0.0
    rk = 1.0
    for k in range(m):
        s1 += 1.0
        s2 += rk
        sy += u[k]
        s22 += rk * rk
        s2y += rk * u[k]
        rk *= r
    det = s1 * s22 - s2 * s2
    if det == 0.0:
        return sy / s1, 0.0
    L = (s22 * sy - s2 * s2y) / det
    c = (s1 * s2y - s2 * sy) / det
    return L, c


@nb.njit(cache=True, nogil=True)
def geometric_fit_rows(a, starts, ends, min_points, max_iter):
    """Fit each row u_k = a[row, starts[row] + k] (k < m = ends[row] - starts[row]): u_k ≈ L + c r^k.

    Start from the increment ratio r0 = Σ d_k d_{k+1} / Σ d_k² (d_k = u_{k+1} - u_k), then refine
    (L, c, r) by damped Gauss-Newton (Levenberg-Marquardt). Returns arrays
    ``(L, c, r, rms, L_se, r_se)``; standard errors from s² (JᵀJ)⁻¹ with s² = RSS / (m - 3).
    A row with a non-finite value, or with abs(r) >= 1 (not converging), gets NaN limits.
    A row that is exactly constant gets L = that value, c = r = 0 and zero errors. Rows with fewer
    than ``min_points`` points get NaN. Also returns the number of points used.
    """
    rows, n = a.shape
    outL = np.full(rows, np.nan)
    outc = np.full(rows, np.nan)
    outr = np.full(rows, np.nan)
    outrms = np.full(rows, np.nan)
    outLse = np.full(rows, np.nan)
    outrse = np.full(rows, np.nan)
    outn = np.zeros(rows, np.int64)
    u = np.empty(n)
    jtj = np.empty((3, 3))
    jtr = np.empty(3)
    jtj_t = np.empty((3, 3))
    jtr_t = np.empty(3)
    for row in range(rows):
        s0 = max(starts[row], 0)
        m = min(ends[row], n) - s0
        outn[row] = max(m, 0)
        if m < min_points or m < 3:
            continue
        finite = True
        mean = 0.0
        for k in range(m):
            v = a[row, s0 + k]
            if not np.isfinite(v):
                finite = False
                break
            mean += v
        if not finite:
            continue
        mean /= m
        scale = 0.0
        for k in range(m):
            d = abs(a[row, s0 + k] - mean)
            if d > scale:
                scale = d
        if scale == 0.0:
            outL[row] = a[row, s0 + m - 1]
            outc[row] = 0.0
            outr[row] = 0.0
            outrms[row] = 0.0
            outLse[row] = 0.0
            outrse[row] = 0.0
            continue
        for k in range(m):
            u[k] = (a[row, s0 + k] - mean) / scale
        um = u[:m]
        num = 0.0
        den = 0.0
        for k in range(m - 2):
            d0 = u[k + 1] - u[k]
            d1 = u[k + 2] - u[k + 1]
            num += d0 * d1
            den += d0 * d0
        r = num / den if den > 0.0 else 0.0
        if not (abs(r) < 1.0):
            outr[row] = r
            continue
        L, c = _linear_Lc(um, r)
        rss = _rss_and_normal(um, L, c, r, jtj, jtr)
        lam = 1e-3
        rel = 1.0
        for _ in range(max_iter):
            if rss == 0.0:
                break
            improved = False
            for _try in range(12):
                for i in range(3):
                    for j in range(3):
                        jtj_t[i, j] = jtj[i, j]
                    jtj_t[i, i] = jtj[i, i] * (1.0 + lam) + 1e-300
                inv = _inv3(jtj_t)
                if not np.isfinite(inv[0, 0]):
                    lam *= 10.0
                    continue
                dL = inv[0, 0] * jtr[0] + inv[0, 1] * jtr[1] + inv[0, 2] * jtr[2]
                dc = inv[1, 0] * jtr[0] + inv[1, 1] * jtr[1] + inv[1, 2] * jtr[2]
                dr = inv[2, 0] * jtr[0] + inv[2, 1] * jtr[1] + inv[2, 2] * jtr[2]
                rn = r + dr
                if abs(rn) < 1.0:
                    rss_t = _rss_and_normal(um, L + dL, c + dc, rn, jtj_t, jtr_t)
                    if rss_t < rss:
                        L += dL
                        c += dc
                        r = rn
                        rel = (rss - rss_t) / rss
                        rss = _rss_and_normal(um, L, c, r, jtj, jtr)
                        lam = max(lam * 0.3, 1e-12)
                        improved = True
                        break
                lam *= 10.0
            if not improved or rel < 1e-9:
                break
        cov = _inv3(jtj)
        s2 = rss / (m - 3) if m > 3 else np.nan
        outL[row] = mean + scale * L
        outc[row] = scale * c
        outr[row] = r
        outrms[row] = scale * np.sqrt(rss / m)
        outLse[row] = scale * np.sqrt(max(s2 * cov[0, 0], 0.0))
        outrse[row] = np.sqrt(max(s2 * cov[2, 2], 0.0))
    return outL, outc, outr, outrms, outLse, outrse, outn


# --------------------------------------------------------------------------- least squares
def lstsq_rows(b: np.ndarray, A: np.ndarray, mask: np.ndarray):
    """Batched least squares b ≈ A @ coef over the last axis, using only points where ``mask``.

    ``b`` (rows, n), ``A`` (rows, n, k), ``mask`` (rows, n) bool. Normal equations per row (one
    batched ``einsum`` + ``solve``, no Python loop over rows). Returns ``coef`` (rows, k), ``se``
    (rows, k) from s² (AᵀA)⁻¹ with s² = RSS/(n_used − k), the uncentred ``r2`` = 1 − RSS/Σ b²
    (the models have no intercept) and ``n_used`` (rows,). Rows with fewer than k + 1 usable points
    or a singular AᵀA give NaN.
    """
    k = A.shape[-1]
    w = (mask & np.isfinite(b) & np.all(np.isfinite(A), axis=-1)).astype(np.float64)
    bz = np.where(w > 0, b, 0.0)
    Az = np.where(w[..., None] > 0, A, 0.0)
    ata = np.einsum("rnk,rnl->rkl", Az, Az)
    atb = np.einsum("rnk,rn->rk", Az, bz)
    btb = np.einsum("rn,rn->r", bz, bz)
    n_used = w.sum(axis=-1).astype(np.int64)
    det = np.linalg.det(ata) if k > 1 else ata[:, 0, 0]
    good = (n_used > k) & np.isfinite(det) & (np.abs(det) > 0)
    eye = np.broadcast_to(np.eye(k), ata.shape)
    safe = np.where(good[:, None, None], ata, eye)
    inv = np.linalg.inv(safe)
    coef = np.einsum("rkl,rl->rk", inv, atb)
    rss = np.maximum(btb - np.einsum("rk,rk->r", coef, atb), 0.0)
    # recompute RSS directly where the shortcut loses precision
    direct = np.einsum("rn,rn->r", w, (bz - np.einsum("rnk,rk->rn", Az, coef)) ** 2)
    rss = np.where(np.isfinite(direct), direct, rss)
    dof = np.maximum(n_used - k, 1)
    s2 = rss / dof
    se = np.sqrt(np.maximum(s2[:, None] * np.diagonal(inv, axis1=1, axis2=2), 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(btb > 0, 1.0 - rss / btb, np.nan)
    coef = np.where(good[:, None], coef, np.nan)
    se = np.where(good[:, None], se, np.nan)
    r2 = np.where(good, r2, np.nan)
    return coef, se, r2, n_used


# --------------------------------------------------------------------------- statistics
@nb.njit(cache=True, nogil=True)
def _gather_finite(row, vals):
    """Copy the finite values of ``row`` to the front of ``vals``; return how many there are."""
    nv = 0
    for v in row:
        if np.isfinite(v):
            vals[nv] = v
            nv += 1
    return nv


@nb.njit(cache=True, nogil=True)
def _sorted_quantile(srt, nv, q):
    """Quantile q of the first nv sorted values, linear interpolation (numpy's default)."""
    pos = q * (nv - 1)
    i0 = int(np.floor(pos))
    i1 = min(i0 + 1, nv - 1)
    f = pos - i0
    d = srt[i1] - srt[i0]
    if f == 0.0:
        return srt[i0]
    if np.isfinite(d):
        return srt[i0] + f * d
    return srt[i0] * (1.0 - f) + srt[i1] * f      # values near the float range: no overflow


@nb.njit(cache=True, nogil=True)
def mean_std_rows(a):
    """Mean and sample standard deviation (ddof = 1) of the finite values of each row.

    One sequential pass per row (sum, then sum of squared deviations from the mean), so a row's
    result never depends on which other rows are in the same call (dask chunks give results equal
    to the in-memory ones, bit for bit). NaN mean for rows without finite values, NaN std for rows
    with fewer than two.
    """
    rows, n = a.shape
    mean = np.full(rows, np.nan)
    std = np.full(rows, np.nan)
    for r in range(rows):
        s = 0.0
        nv = 0
        for j in range(n):
            v = a[r, j]
            if np.isfinite(v):
                s += v
                nv += 1
        if nv == 0:
            continue
        m = s / nv
        if not np.isfinite(m):           # the sum overflowed: sum values scaled by max |v|
            scale = 0.0
            for j in range(n):
                v = a[r, j]
                if np.isfinite(v) and abs(v) > scale:
                    scale = abs(v)
            s = 0.0
            for j in range(n):
                v = a[r, j]
                if np.isfinite(v):
                    s += v / scale
            m = s / nv * scale
        mean[r] = m
        if nv < 2:
            continue
        ss = 0.0
        for j in range(n):
            v = a[r, j]
            if np.isfinite(v):
                ss += (v - m) * (v - m)
        if not np.isfinite(ss):          # overflow: scale the deviations by their max
            scale = 0.0
            for j in range(n):
                v = a[r, j]
                if np.isfinite(v) and abs(v - m) > scale:
                    scale = abs(v - m)
            ss = 0.0
            for j in range(n):
                v = a[r, j]
                if np.isfinite(v):
                    d = (v - m) / scale
                    ss += d * d
            std[r] = np.sqrt(ss / (nv - 1)) * scale
            continue
        std[r] = np.sqrt(ss / (nv - 1))
    return mean, std


@nb.njit(cache=True, nogil=True)
def quantile_rows(a, qs):
    """Quantiles ``qs`` of the finite values of each row (NaN for rows without any): (rows, nq)."""
    rows, n = a.shape
    nq = qs.shape[0]
    out = np.full((rows, nq), np.nan)
    vals = np.empty(n)
    for r in range(rows):
        nv = _gather_finite(a[r], vals)
        if nv == 0:
            continue
        srt = np.sort(vals[:nv])
        for k in range(nq):
            out[r, k] = _sorted_quantile(srt, nv, qs[k])
    return out


@nb.njit(cache=True, nogil=True)
def bootstrap_mean_ci_rows(a, U, qlo, qhi):
    """Bootstrap CI of the mean of the finite values of each row of ``a``.

    ``U`` (n_boot, n) holds uniform draws in [0, 1) shared by all rows (so results do not depend
    on how rows are chunked): resample b of a row with n_valid finite values takes the values at
    floor(U[b, j] * n_valid), j < n_valid. Returns the ``qlo`` and ``qhi`` quantiles (linear
    interpolation, as numpy's default) of the resampled means; NaN for rows without finite values.
    """
    rows, n = a.shape
    nboot = U.shape[0]
    lo = np.full(rows, np.nan)
    hi = np.full(rows, np.nan)
    vals = np.empty(n)
    means = np.empty(nboot)
    full = np.empty((nboot, n), np.int64)      # resample indices for the common case nv == n
    for b in range(nboot):
        for j in range(n):
            full[b, j] = min(int(U[b, j] * n), n - 1)
    for r in range(rows):
        nv = _gather_finite(a[r], vals)
        if nv == 0:
            continue
        for b in range(nboot):
            s = 0.0
            if nv == n:
                for j in range(n):
                    s += vals[full[b, j]]
            else:
                for j in range(nv):
                    s += vals[min(int(U[b, j] * nv), nv - 1)]
            means[b] = s / nv
        srt = np.sort(means)
        lo[r] = _sorted_quantile(srt, nboot, qlo)
        hi[r] = _sorted_quantile(srt, nboot, qhi)
    return lo, hi


@nb.njit(cache=True, nogil=True)
def bootstrap_mean_ci_counts_rows(a, U, qlo, qhi):
    """As :func:`bootstrap_mean_ci_rows`, faster for rows whose values are all finite.

    Such a row's resampled means are Σ_j counts[b, j] a[j] / n with the resample counts of
    ``U`` (the same draws as :func:`bootstrap_mean_ci_rows`), accumulated over j in order for all
    b at once (a loop the compiler vectorises, with the same rounding for every row whichever
    rows share the call: dask chunks give results equal, bit for bit, to in-memory ones). Rows
    with missing values go through :func:`bootstrap_mean_ci_rows`.
    """
    rows, n = a.shape
    nboot = U.shape[0]
    lo = np.full(rows, np.nan)
    hi = np.full(rows, np.nan)
    countsT = np.zeros((n, nboot))
    for b in range(nboot):
        for j in range(n):
            countsT[min(int(U[b, j] * n), n - 1), b] += 1.0
    acc = np.empty(nboot)
    partial = np.zeros(rows, np.bool_)
    for r in range(rows):
        full = True
        for j in range(n):
            if not np.isfinite(a[r, j]):
                full = False
                break
        if not full:
            partial[r] = True
            continue
        acc[:] = 0.0
        for j in range(n):
            w = a[r, j]
            for b in range(nboot):
                acc[b] += countsT[j, b] * w
        for b in range(nboot):
            acc[b] = acc[b] / n
        srt = np.sort(acc)
        lo[r] = _sorted_quantile(srt, nboot, qlo)
        hi[r] = _sorted_quantile(srt, nboot, qhi)
    if partial.any():
        idx = np.flatnonzero(partial)
        plo, phi = bootstrap_mean_ci_rows(a[idx], U, qlo, qhi)
        for k in range(idx.size):
            lo[idx[k]] = plo[k]
            hi[idx[k]] = phi[k]
    return lo, hi


@nb.njit(cache=True, nogil=True)
def histogram_rows(a, edges):
    """Counts of the finite values of each row in the bins ``[e_i, e_{i+1})`` (last bin closed)."""
    rows, n = a.shape
    nb_ = edges.shape[0] - 1
    out = np.zeros((rows, nb_), np.int64)
    lo = edges[0]
    hi = edges[nb_]
    for r in range(rows):
        for j in range(n):
            v = a[r, j]
            if not np.isfinite(v) or v < lo or v > hi:
                continue
            i = np.searchsorted(edges, v, side="right") - 1
            if i >= nb_:
                i = nb_ - 1
            out[r, i] += 1
    return out
