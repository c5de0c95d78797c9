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

Stopping (``stop``): ``"member"`` stops each trajectory at its own fate (converged, diverged,
cycle); ``"never"`` keeps a converged trajectory iterating (its ``converged_at`` is recorded,
its status stays ``converged`` unless it later diverges); ``"batch"`` keeps every trajectory
iterating until all of them have a fate. The eigen-solver for λ_max lives in
:mod:`eosdyn.kernels.lambda_max`.

This module is shared by the random QRM sweeps (:mod:`eosdyn.models.qrm`) and
the Taylor-expanded network (:mod:`eosdyn.models.taylor`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numba as nb
import numpy as np

from .._validate import _fmt_interval, check_int, check_stop
from ..conventions import STATUS_VALUES
from .lambda_max import _lambda_max_rows, lambda_max

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
                tol, div_loss, cycle_tol, cycle_window, gnew, conv_at, keep):
    """Advance every running row by one GD step given ``M = Q(g, ·)``; classify its fate.

    With ``keep`` a row whose loss falls below ``tol`` keeps iterating (``conv_at`` records the
    first such step); otherwise it finishes as converged. Returns the number of rows that
    finished at this step.
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
            if keep:
                if conv_at[b] < 0:
                    conv_at[b] = t_new
            else:
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
    converged_at : (B,) int64
        First step whose loss was below ``tol``; −1 if never.
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
    converged_at: np.ndarray
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
           cycle_tol=None, cycle_window=200, compact_fraction=0.125, max_memory="2GB",
           stop="member") -> GDResult:
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
    stop : {"member", "never", "batch"}, default "member"
        ``"member"``: a trajectory stops at its own fate. ``"never"``: a converged trajectory
        keeps iterating to ``max_steps`` (status ``converged``, ``converged_at`` its first step
        below ``tol``; it can still diverge later); ``cycle_tol`` is refused. ``"batch"``: every
        trajectory iterates until all of them have a fate (converged ones included).

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
    stop = check_stop(stop)
    if stop == "never" and use_cycle:
        raise ValueError("cycle_tol is an early stop: it needs stop='member' or 'batch', not 'never'")
    keep = stop != "member"  # converged rows keep iterating
    batch = stop == "batch"
    dtype = Q.dtype
    D, P = Q.shape[:2]
    B = J.shape[0]
    A = q_operator(Q)

    # outputs (input order)
    status_out = np.zeros(B, np.int8)
    steps_out = np.full(B, max_steps, np.int64)
    div_out = np.full(B, -1, np.int64)
    conv_out = np.full(B, -1, np.int64)
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
    conv_at = np.full(B, -1, np.int64)
    cyc = np.zeros(B, np.int64)
    zm1 = z.copy() if use_cycle else np.zeros((1, 1), dtype)
    gnew = np.empty(P, dtype)
    Mbuf = np.empty((B, D * P), dtype)  # GEMM output, reused every step (no per-step allocation)
    # classify the initial state
    with np.errstate(over="ignore"):  # float32: tol above its range compares as inf
        bad = ~(loss <= diverge_loss)
        status[bad] = DIVERGED
        if keep:
            conv_at[~bad & (loss < tol)] = 0
        else:
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
            last = t == max_steps or (batch and bool(((conv_at >= 0) | (status != RUNNING)).all()))
            if n_done and (last or n_done >= max(1.0, thresh_frac * idx.size) or n_done == idx.size):
                fin = status != RUNNING
                _finish(fin, idx, status, stop_at, conv_at, J, z, loss, eta, status_out, steps_out, div_out,
                        conv_out, floss, fsharp, fz, fJ)
                kept = ~fin
                idx, J, z, g, loss, status, stop_at, conv_at, cyc = (
                    a[kept] for a in (idx, J, z, g, loss, status, stop_at, conv_at, cyc))
                if use_cycle:
                    zm1 = zm1[kept]
                if U is not None:
                    U, warm = U[kept], warm[kept]
                n_done = 0
            if idx.size == 0 or last:
                break
            M = np.matmul(g, A, out=Mbuf[: idx.size]).reshape(idx.size, D, P)
            n_done += _fused_step(J, M, z, g, zm1, loss, status, stop_at, cyc, eta, t + 1,
                                  tol, diverge_loss, cyc_tol, cyc_win, gnew, conv_at, keep)
            t += 1
    if idx.size:  # still running at max_steps (or, with stop="batch", when every row had a fate)
        status[:] = MAX_STEPS
        stop_at[:] = t
        _finish(np.ones(idx.size, bool), idx, status, stop_at, conv_at, J, z, loss, eta, status_out,
                steps_out, div_out, conv_out, floss, fsharp, fz, fJ)
    return GDResult(status=status_out, steps_taken=steps_out, diverged_at=div_out, converged_at=conv_out,
                    final_loss=floss,
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


def _finish(fin, idx, status, stop_at, conv_at, J, z, loss, eta, status_out, steps_out, div_out,
            conv_out, floss, fsharp, fz, fJ):
    """Copy the final state of the finished rows ``fin`` into the outputs."""
    rows = idx[fin]
    st = status[fin]
    stop = stop_at[fin]
    cv = np.where(st == CONVERGED, stop, conv_at[fin])
    st = np.where((st != DIVERGED) & (cv >= 0), CONVERGED, st).astype(status.dtype)  # stop="never"/"batch"
    conv_out[rows] = cv
    status_out[rows] = st
    steps_out[rows] = stop
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


def initial_values(J0: np.ndarray, z0: np.ndarray, eta: float) -> tuple[np.ndarray, np.ndarray]:
    """Loss ½‖z₀‖² and sharpness η λ_max(J₀ J₀ᵀ) of each member at step 0, in the dtype of ``J0``.

    Bit-identical to what :func:`run_gd` records at step 0 (same kernels, cold λ_max start).

    Examples
    --------
    >>> import numpy as np
    >>> loss, sharp = initial_values(np.array([[[3.0, 0.0]]]), np.array([[2.0]]), 0.5)
    >>> loss.tolist(), sharp.tolist()
    ([2.0], [4.5])
    """
    J = np.ascontiguousarray(J0)
    z = np.ascontiguousarray(z0, dtype=J.dtype)
    B, D, P = J.shape
    g = np.empty((B, P), J.dtype)
    loss = np.empty(B, J.dtype)
    _init_g(J, z, g, loss)
    with np.errstate(over="ignore"):
        sharp = eta * _lambda_max_rows(J, np.arange(B), None, None)
    return loss, sharp
