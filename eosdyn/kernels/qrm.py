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

from dataclasses import dataclass, field

import numba as nb
import numpy as np

from ..conventions import STATUS_VALUES

RUNNING = STATUS_VALUES["running"]
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


@nb.njit(cache=True, nogil=True)
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


def lambda_max(J: np.ndarray) -> np.ndarray:
    """Largest eigenvalue of ``J Jᵀ`` for a batch ``J`` (``B × D × P``), exact (LAPACK).

    Per matrix: the Gram matrix of the shorter side by ``?syrk`` (``J Jᵀ`` if D ≤ P,
    else ``Jᵀ J``: they share their non-zero eigenvalues), then only its top
    eigenvalue by ``?syevr`` (tridiagonalisation + bisection/MRRR), which is about
    twice as fast as forming ``J Jᵀ`` with GEMM and calling batched ``eigvalsh``.
    Accurate to rounding (≈1e-15 relative in float64); float32 input is handled
    in float32.

    Examples
    --------
    >>> import numpy as np
    >>> lambda_max(np.array([[[3.0, 0.0], [0.0, 1.0]]]))
    array([9.])
    """
    from scipy.linalg import blas, lapack

    J = np.asarray(J)
    B = J.shape[0]
    out = np.empty(B, dtype=J.dtype if J.dtype in (np.float32, np.float64) else np.float64)
    if B == 0:
        return out
    f32 = J.dtype == np.float32
    syrk = blas.ssyrk if f32 else blas.dsyrk
    syevr = lapack.ssyevr if f32 else lapack.dsyevr
    Jc = np.asarray(J, dtype=out.dtype)
    D, P = Jc.shape[1:]
    trans = 0 if D <= P else 1
    n = min(D, P)
    for b in range(B):
        K = syrk(1.0, Jc[b], trans=trans, lower=1)
        if not np.isfinite(K).all():
            out[b] = np.nan
            continue
        r = syevr(K, compute_v=0, range="I", il=n, iu=n, lower=1)
        out[b] = r[0][0] if r[-1] == 0 else np.linalg.eigvalsh(K, UPLO="L")[-1]
    return out


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
           cycle_tol=None, cycle_window=200, compact_fraction=0.125) -> GDResult:
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
        Record η λ_max(J Jᵀ) (exact, batched eigvalsh of the D × D matrices).
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
        of it has finished (0: at every step with a finished one).

    Returns
    -------
    GDResult

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
    """
    Q = np.asarray(Q)
    dtype = Q.dtype
    if dtype not in (np.float64, np.float32):
        raise ValueError(f"Q must be float64 or float32; got {dtype}")
    D, P, _ = Q.shape
    J = np.array(J0, dtype=dtype, order="C", copy=True)
    z = np.array(z0, dtype=dtype, order="C", copy=True)
    if J.ndim != 3 or J.shape[1:] != (D, P):
        raise ValueError(f"J0 must have shape (B, {D}, {P}); got {J.shape}")
    B = J.shape[0]
    if z.shape != (B, D):
        raise ValueError(f"z0 must have shape ({B}, {D}); got {z.shape}")
    eta = float(eta)
    if not eta > 0:
        raise ValueError(f"eta must be > 0; got {eta}")
    max_steps = int(max_steps)
    record_every = int(record_every)
    if max_steps < 0 or record_every < 0:
        raise ValueError("max_steps and record_every must be >= 0")
    A = q_operator(Q)
    use_cycle = cycle_tol is not None
    cyc_tol = float(cycle_tol) if use_cycle else 0.0
    cyc_win = int(cycle_window) if use_cycle else 0
    if use_cycle and cyc_win < 1:
        raise ValueError(f"cycle_window must be >= 1; got {cycle_window}")

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
    rmask = np.ones(B, bool) if record_mask is None else np.asarray(record_mask, bool).copy()
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
    # classify the initial state
    bad = ~(loss <= diverge_loss)
    status[bad] = DIVERGED
    status[~bad & (loss < tol)] = CONVERGED
    stop_at[status != RUNNING] = 0
    n_done = int(np.count_nonzero(status))
    thresh_frac = float(compact_fraction)

    t = 0
    r = 0
    while True:
        if r < R and rsteps[r] == t:
            sel = rmask[idx] & ((status == RUNNING) | ((status != DIVERGED) & (stop_at == t)))
            if sel.any():
                rows = idx[sel]
                rec_loss[rows, r] = loss[sel]
                rec_zn[rows, r] = np.sqrt(2.0 * loss[sel])
                if rec_sh is not None:
                    rec_sh[rows, r] = eta * lambda_max(J if rows.size == idx.size else J[sel])
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
            n_done = 0
        if idx.size == 0 or last:
            break
        M = (g @ A).reshape(idx.size, D, P)
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


def _finish(fin, idx, status, stop_at, J, z, loss, eta, status_out, steps_out, div_out,
            floss, fsharp, fz, fJ):
    """Copy the final state of the finished rows ``fin`` into the outputs."""
    rows = idx[fin]
    st = status[fin]
    status_out[rows] = st
    steps_out[rows] = stop_at[fin]
    ok = st != DIVERGED
    div_out[rows[~ok]] = stop_at[fin][~ok]
    good = rows[ok]
    if good.size:
        Jf = J[fin][ok]
        floss[good] = loss[fin][ok]
        fz[good] = z[fin][ok]
        fsharp[good] = eta * lambda_max(Jf)
        if fJ is not None:
            fJ[good] = Jf
