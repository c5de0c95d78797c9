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

from .._validate import (HYPERPARAMETER_RANGES, _fmt_interval, check_batch_size, check_int, check_optimizer,
                         check_stop)
from ..conventions import STATUS_VALUES
from .derivatives import _force_rows
from .lambda_max import _lambda_max_rows, hessian_lambda_max, lambda_max

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



#: optimizer codes of the numba kernels (the names of :data:`eosdyn._validate.OPTIMIZERS`)
OPTIMIZER_CODES = {"gd": 0, "momentum": 1, "nesterov": 2, "rmsprop": 3, "adam": 4}
#: the sharpness variants :func:`run_gd` can record besides ``sharpness``
SHARPNESS_VARIANTS = ("hessian_sharpness", "preconditioned_sharpness", "batch_sharpness")
#: the self-stabilization quantities :func:`run_gd` records with ``record_forces=True``
FORCE_VARIABLES = ("sharpening_force", "stabilization_strength", "predicted_oscillation")


@nb.njit(cache=True, nogil=True)
def _init_gw(J, z, g, loss, w):
    """g = Jᵀ (w ∘ z) (the batch gradient, w = D/b on the batch, 0 elsewhere) and loss = ½|z|²."""
    B, D, P = J.shape
    for b in range(B):
        for j in range(P):
            g[b, j] = 0.0
        s = 0.0
        for a in range(D):
            za = z[b, a]
            s += za * za
            zw = za * w[a]
            for j in range(P):
                g[b, j] += J[b, a, j] * zw
        loss[b] = 0.5 * s


@nb.njit(cache=True, nogil=True)
def _direction_row(kind, b, g, d, s1, s2, eta, mom, b1, b2, eps, c1, c2):
    """The update Δθ of row ``b`` from its gradient ``g[b]``; advances the optimizer state.

    ``s1``: velocity (momentum, nesterov) or first moment (adam); ``s2``: second moment
    (rmsprop, adam); ``c1``, ``c2``: adam's bias corrections 1 − β₁ᵘ, 1 − β₂ᵘ of this update u.
    """
    P = g.shape[1]
    if kind == 0:
        for j in range(P):
            d[b, j] = -eta * g[b, j]
    elif kind == 1:
        for j in range(P):
            v = mom * s1[b, j] + g[b, j]
            s1[b, j] = v
            d[b, j] = -eta * v
    elif kind == 2:
        for j in range(P):
            gj = g[b, j]
            v = mom * s1[b, j] + gj
            s1[b, j] = v
            d[b, j] = -eta * (gj + mom * v)
    elif kind == 3:
        for j in range(P):
            gj = g[b, j]
            v = b2 * s2[b, j] + (1.0 - b2) * (gj * gj)
            s2[b, j] = v
            d[b, j] = -eta * gj / (math.sqrt(v) + eps)
    else:
        a1 = -eta / c1  # −η m̂ / (√v̂ + ε) = (−η/c1) m / (√v / √c2 + ε): one division per entry
        r2 = 1.0 / math.sqrt(c2)
        for j in range(P):
            gj = g[b, j]
            m = b1 * s1[b, j] + (1.0 - b1) * gj
            v = b2 * s2[b, j] + (1.0 - b2) * (gj * gj)
            s1[b, j] = m
            s2[b, j] = v
            d[b, j] = a1 * m / (math.sqrt(v) * r2 + eps)


@nb.njit(cache=True, nogil=True)
def _directions(kind, status, g, d, s1, s2, eta, mom, b1, b2, eps, c1, c2):
    """:func:`_direction_row` for every row that has not diverged (d = 0 for the others)."""
    for b in range(g.shape[0]):
        if status[b] == 2:
            for j in range(g.shape[1]):
                d[b, j] = 0.0
        else:
            _direction_row(kind, b, g, d, s1, s2, eta, mom, b1, b2, eps, c1, c2)


@nb.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _fused_step_opt(J, M, z, d, g, zm1, loss, status, stop_at, cyc_count, t_new, tol, div_loss, cycle_tol,
                    cycle_window, gnew, conv_at, keep, w, kind, eta, mom, b1, b2, eps, s1, s2, c1, c2):
    """One step θ ← θ + Δθ of every running row given ``M = Q(Δθ, ·)`` (Δθ = ``d``):

        z ← z + J Δθ + ½ Q(Δθ, Δθ),   J ← J + Q(Δθ, ·),

    then the next (batch) gradient ``g = Jᵀ(w ∘ z)``, the fate of the row (as in
    :func:`_fused_step`) and, for every row that did not diverge, the next update ``d``
    (advancing the optimizer state). Returns the number of rows that finished at this step.
    """
    B, D, P = J.shape
    n_fin = 0
    for b in range(B):
        if status[b] != 0:
            for j in range(P):
                g[b, j] = 0.0
                d[b, j] = 0.0
            continue
        for j in range(P):
            gnew[j] = 0.0
        s = 0.0
        d2 = 0.0
        for a in range(D):
            jd = 0.0
            qdd = 0.0
            for j in range(P):
                dj = d[b, j]
                jd += J[b, a, j] * dj
                qdd += M[b, a, j] * dj
            za_old = z[b, a]
            za = za_old + jd + 0.5 * qdd
            z[b, a] = za
            s += za * za
            if cycle_window > 0:
                dz = za - zm1[b, a]
                d2 += dz * dz
                zm1[b, a] = za_old
            zw = za * w[a]
            for j in range(P):
                jn = J[b, a, j] + M[b, a, j]
                J[b, a, j] = jn
                gnew[j] += jn * zw
        for j in range(P):
            g[b, j] = gnew[j]
        lb = 0.5 * s
        loss[b] = lb
        if not (lb <= div_loss):  # NaN, inf or above the threshold
            for j in range(P):
                g[b, j] = 0.0
                d[b, j] = 0.0
            status[b] = 2
            stop_at[b] = t_new
            n_fin += 1
            continue
        if lb < tol:
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
        _direction_row(kind, b, g, d, s1, s2, eta, mom, b1, b2, eps, c1, c2)
    return n_fin


class _Optimizer:
    """The optimizer of one :func:`run_gd` call: code, hyperparameters, minibatch stream."""

    def __init__(self, name, hyper, D, batch_size, batch_seed, batch_samples, dtype):
        self.name = name
        self.kind = OPTIMIZER_CODES[name]
        self.mom = float(hyper.get("momentum", 0.0))
        self.b1 = float(hyper.get("beta1", 0.0))
        self.b2 = float(hyper.get("beta2", 0.0))
        self.eps = float(hyper.get("epsilon", 1.0))
        self.D = D
        self.batch = None if batch_size is None or batch_size == D else int(batch_size)
        self.samples = batch_samples
        self.seed = batch_seed
        self.rng = None if self.batch is None else np.random.default_rng(self._child(0))
        self.w = np.ones(D, dtype)

    def _child(self, *key):
        return np.random.SeedSequence(self.seed.entropy, spawn_key=tuple(self.seed.spawn_key) + key)

    def next_weights(self) -> np.ndarray:
        """The weights w (D/b on the next batch, 0 elsewhere; all 1 for full batch)."""
        if self.batch is not None:
            idx = np.sort(self.rng.permutation(self.D)[: self.batch])
            self.w[:] = 0.0
            self.w[idx] = self.D / self.batch
        return self.w

    def corrections(self, u: int) -> tuple[float, float]:
        """Adam's bias corrections 1 − β₁ᵘ, 1 − β₂ᵘ of update ``u`` (1, 1 for the others)."""
        if self.kind != 4:
            return 1.0, 1.0
        return 1.0 - self.b1 ** u, 1.0 - self.b2 ** u

    def preconditioner(self, s2: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Diagonal preconditioner √s + ε (rmsprop) or √v̂ + ε (adam, v̂ = v / (1 − β₂ᵘ)) per row."""
        s = np.asarray(s2, np.float64)
        if self.kind == 4:
            s = s / (1.0 - self.b2 ** np.asarray(u, np.float64))[:, None]
        return np.sqrt(s) + self.eps

    def batches(self, step: int) -> tuple[np.ndarray, float]:
        """The Monte Carlo batches of :func:`batch_sharpness` at ``step`` and the scale D/b."""
        if self.batch is None:
            return np.arange(self.D)[None, :], 1.0
        rng = np.random.default_rng(self._child(1, int(step)))
        return (np.sort(np.stack([rng.permutation(self.D)[: self.batch] for _ in range(self.samples)]), axis=1),
                self.D / self.batch)


def minibatches(batch_seed, D: int, batch_size: int, n: int) -> np.ndarray:
    """The first ``n`` minibatches :func:`run_gd` draws from ``batch_seed`` (row k: update k + 1).

    Each is ``sorted(rng.permutation(D)[:batch_size])`` with ``rng`` the stream
    ``SeedSequence(batch_seed.entropy, spawn_key=batch_seed.spawn_key + (0,))``; the QRM sweeps
    use ``batch_seed = SeedSequence(seed, spawn_key=(3,))``.

    Examples
    --------
    >>> import numpy as np
    >>> b = minibatches(np.random.SeedSequence(0, spawn_key=(3,)), D=6, batch_size=2, n=3)
    >>> b.shape, bool(np.all(np.diff(b, axis=1) > 0))
    ((3, 2), True)
    """
    if not isinstance(batch_seed, np.random.SeedSequence):
        batch_seed = np.random.SeedSequence(check_int("batch_seed", batch_seed, 0))
    D = check_int("D", D, 1)
    batch_size = check_int("batch_size", batch_size, 1, D)
    n = check_int("n", n, 0)
    rng = np.random.default_rng(np.random.SeedSequence(batch_seed.entropy,
                                                       spawn_key=tuple(batch_seed.spawn_key) + (0,)))
    return np.array([np.sort(rng.permutation(D)[:batch_size]) for _ in range(n)], dtype=np.int64).reshape(n, batch_size)


def batch_sharpness(A: np.ndarray, J: np.ndarray, z: np.ndarray, batches: np.ndarray, scale: float) -> np.ndarray:
    """Mean over ``batches`` of gᵀ H g / ‖g‖² with g = s J_Bᵀ z_B, H = s (J_BᵀJ_B + Σ_{a∈B} z_a Q_a).

    ``A`` is :func:`q_operator` of ``Q``, ``s`` = ``scale`` (D/b); one batch of all D outputs
    with scale 1 gives the full-batch quantity gᵀHg/‖g‖², g = Jᵀz, H the Hessian. Multiply by
    η for the batch sharpness.

    Examples
    --------
    >>> import numpy as np
    >>> Q = np.zeros((2, 2, 2)); J = np.array([[[1.0, 0.0], [0.0, 2.0]]]); z = np.array([[1.0, 1.0]])
    >>> batch_sharpness(q_operator(Q), J, z, np.array([[0, 1]]), 1.0).tolist()  # g = (1, 2)
    [3.4]
    """
    n, D, P = J.shape
    Jd = np.asarray(J, np.float64)
    zd = np.asarray(z, np.float64)
    Ad = np.asarray(A, np.float64)
    acc = np.zeros(n)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for idx in batches:
            Jb = Jd[:, idx, :]
            zb = zd[:, idx]
            g = scale * np.einsum("nap,na->np", Jb, zb)
            Jg = np.einsum("nap,np->na", Jb, g)
            M = (g @ Ad).reshape(n, D, P)[:, idx, :]
            qgg = np.einsum("nap,np->na", M, g)
            acc += scale * (np.sum(Jg * Jg, axis=1) + np.sum(zb * qgg, axis=1)) / np.sum(g * g, axis=1)
    return acc / len(batches)


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
    variants : dict of (B, R) float
        The recorded ``sharpness_variants`` (name → array, like ``sharpness``).
    final_variants : dict of (B,) float
        Their values at each member's final state (NaN if diverged).
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
    variants: dict = field(default_factory=dict)
    final_variants: dict = field(default_factory=dict)


def run_gd(Q, J0, z0, eta, max_steps, record_every=0, *, tol=1e-12, diverge_loss=1e8,
           record_mask=None, record_sharpness=True, record_z=False, return_J=False,
           cycle_tol=None, cycle_window=200, compact_fraction=0.125, max_memory="2GB",
           stop="member", optimizer="gd", momentum=None, beta1=None, beta2=None, epsilon=None,
           batch_size=None, batch_seed=None, sharpness_variants=(), batch_samples=32,
           record_forces=False) -> GDResult:
    """Gradient descent (Eq. 25-26) and its variants for a batch of ``(J, z)`` sharing one ``Q``.

    With ``optimizer="gd"`` and full batches every step is the fused GD update of the module
    docstring. Any other optimizer, or ``batch_size`` < D, computes an update Δθ from the
    (batch) gradient and the optimizer's state (kept per member, in θ-space) and moves
    ``(z, J)`` exactly along it, still with one GEMM ``Q(Δθ, ·)`` per step:

        z ← z + J Δθ + ½ Q(Δθ, Δθ),     J ← J + Q(Δθ, ·).

    Optimizers (states start at 0; ``u`` = 1, 2, … counts updates; g is the gradient at the
    current point):

    * ``"gd"``: Δθ = −η g;
    * ``"momentum"`` (heavy ball): v ← β v + g, Δθ = −η v  (β = ``momentum``);
    * ``"nesterov"`` (PyTorch form): v ← β v + g, Δθ = −η (g + β v);
    * ``"rmsprop"``: s ← β₂ s + (1 − β₂) g², Δθ = −η g / (√s + ε) (element-wise);
    * ``"adam"``: m ← β₁ m + (1 − β₁) g, v ← β₂ v + (1 − β₂) g², m̂ = m / (1 − β₁ᵘ),
      v̂ = v / (1 − β₂ᵘ), Δθ = −η m̂ / (√v̂ + ε).

    Minibatches: with ``batch_size = b < D`` each update uses the batch gradient
    g_B = (D/b) J_Bᵀ z_B (unbiased for g = Jᵀz; the loss stays ½‖z‖², the full loss) of a
    subset B of b outputs drawn without replacement, independently at every step, from the
    stream ``SeedSequence(batch_seed.entropy, spawn_key=batch_seed.spawn_key + (0,))``; all
    members of the call share the batch sequence. ``batch_size = D`` is full batch.

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
    optimizer : {"gd", "momentum", "nesterov", "rmsprop", "adam"}, default "gd"
        The update rule (above).
    momentum, beta1, beta2, epsilon : float, optional
        Hyperparameters of the optimizer (defaults 0.9, 0.9, 0.999, 1e-8): ``momentum`` for
        momentum/nesterov, ``beta2``/``epsilon`` for rmsprop, ``beta1``/``beta2``/``epsilon``
        for adam. β's in [0, 1), ε > 0; one the optimizer does not use is refused.
    batch_size : int, optional
        Minibatch size b in [1, D]; default None: full batch.
    batch_seed : int or numpy.random.SeedSequence, optional
        Root of the minibatch streams (default ``SeedSequence(0)``).
    sharpness_variants : sequence of str, default ()
        Also record (like ``sharpness``, and at the final state) any of
        ``"hessian_sharpness"``: η λ_max(H), H = JᵀJ + Σ_a z_a Q_a;
        ``"preconditioned_sharpness"`` (rmsprop/adam): η λ_max(P⁻¹H), P = diag(√s + ε)
        (rmsprop) or diag(√v̂ + ε) (adam), the preconditioner of the next update (its moments
        include the gradient of the recorded state; adam's v̂ is corrected with 1 − β₂^(t+1) at
        step t);
        ``"batch_sharpness"``: η E_B[g_Bᵀ H_B g_B / ‖g_B‖²], H_B = (D/b)(J_BᵀJ_B + Σ_{a∈B} z_a Q_a),
        the mean over ``batch_samples`` batches drawn at step t from
        ``SeedSequence(batch_seed.entropy, spawn_key=batch_seed.spawn_key + (1, t))`` (exactly
        η gᵀHg/‖g‖² for full batches).
    batch_samples : int, default 32
        Monte Carlo batches of ``batch_sharpness`` (1 to 10⁶).
    record_forces : bool, default False
        Also record (like the variants, in ``variants``/``final_variants``) the
        self-stabilization quantities of Damian, Nichani & Lee (2023) of the recorded state:
        ``sharpening_force`` α = −∇L·∇S, ``stabilization_strength`` β = ‖∇S‖² and
        ``predicted_oscillation`` 2α/β (S = λ_max(H), ∇S in closed form,
        :mod:`eosdyn.kernels.derivatives`); one top eigenpair of the P × P Hessian per member
        and recorded step.

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
    optimizer, hyper = check_optimizer(optimizer, momentum=momentum, beta1=beta1, beta2=beta2, epsilon=epsilon)
    for name, v in hyper.items():
        lo, hi, lo_open, hi_open = HYPERPARAMETER_RANGES[name]
        hyper[name] = real_scalar(name, v, lo, hi, lo_open=lo_open, hi_open=hi_open)
    if isinstance(sharpness_variants, str):
        sharpness_variants = (sharpness_variants,)
    variants = tuple(sharpness_variants)
    for name in variants:
        if name not in SHARPNESS_VARIANTS:
            raise ValueError(f"sharpness_variants must name some of {', '.join(map(repr, SHARPNESS_VARIANTS))}; "
                             f"got {name!r}")
    if "preconditioned_sharpness" in variants and optimizer not in ("rmsprop", "adam"):
        raise ValueError(f"preconditioned_sharpness needs optimizer 'rmsprop' or 'adam'; got {optimizer!r}")
    batch_samples = check_int("batch_samples", batch_samples, 1, 10**6)
    if not isinstance(record_forces, (bool, np.bool_)):
        raise TypeError(f"record_forces must be True or False; got {record_forces!r}")
    if record_forces:
        variants = variants + FORCE_VARIABLES
    if batch_seed is None:
        batch_seed = np.random.SeedSequence(0)
    elif not isinstance(batch_seed, np.random.SeedSequence):
        batch_seed = np.random.SeedSequence(check_int("batch_seed", batch_seed, 0))
    if np.ndim(Q) == 3:
        batch_size = check_batch_size(batch_size, np.shape(Q)[0])
    # optimizer state (update, velocity / moments) and the recorded variants, per member
    extra = (3 * (np.shape(Q)[-1] if np.ndim(Q) == 3 else 0) if optimizer != "gd" or batch_size is not None else 0,
             len(variants))
    (Q, J, z, eta, max_steps, record_every, tol, diverge_loss, rmask, use_cycle, cyc_tol, cyc_win,
     thresh_frac, record_sharpness, record_z, return_J) = _check_gd_args(
        Q, J0, z0, eta, max_steps, record_every, tol, diverge_loss, record_mask, record_sharpness,
        record_z, return_J, cycle_tol, cycle_window, compact_fraction, max_memory, extra)
    stop = check_stop(stop)
    if stop == "never" and use_cycle:
        raise ValueError("cycle_tol is an early stop: it needs stop='member' or 'batch', not 'never'")
    keep = stop != "member"  # converged rows keep iterating
    batch = stop == "batch"
    dtype = Q.dtype
    D, P = Q.shape[:2]
    B = J.shape[0]
    A = q_operator(Q)
    opt = _Optimizer(optimizer, hyper, D, batch_size, batch_seed, batch_samples, dtype)
    general = opt.kind != 0 or opt.batch is not None  # the update-direction path

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
    rec_var = {k: np.full((B, R), np.nan, dtype) for k in variants} if R else {}
    fvar = {k: np.full(B, np.nan, dtype) for k in variants}

    # working set
    idx = np.arange(B)
    g = np.empty((B, P), dtype)
    loss = np.empty(B, dtype)
    if general:
        _init_gw(J, z, g, loss, opt.next_weights())
    else:
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
    if general:  # the first update and the optimizer state (velocity / moments, θ-space) per member
        d = np.empty((B, P), dtype)
        s1 = np.zeros((B, P) if opt.kind in (1, 2, 4) else (B, 1), dtype)
        s2 = np.zeros((B, P) if opt.kind in (3, 4) else (B, 1), dtype)
        c1, c2 = opt.corrections(1)
        _directions(opt.kind, status, g, d, s1, s2, eta, opt.mom, opt.b1, opt.b2, opt.eps, c1, c2)

    force_memo = {}

    def forces_of(pos, at):  # (S, α, β) of the working rows ``pos``, once per state
        key = (t, pos.tobytes(), np.asarray(at).tobytes())
        if key not in force_memo:
            force_memo.clear()
            force_memo[key] = _force_rows(Q, J[pos], z[pos])
        return force_memo[key]

    def variant_values(name, pos, at):  # η × the variant of the working rows ``pos`` at steps ``at``
        if name in FORCE_VARIABLES:      # (the forces are not scaled by η)
            S, alpha, beta = forces_of(pos, at)
            if name == "sharpening_force":
                return alpha
            if name == "stabilization_strength":
                return beta
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(beta > 0, 2.0 * alpha / beta, np.nan)
        if name == "hessian_sharpness":
            v = hessian_lambda_max(Q, J[pos], z[pos])
        elif name == "preconditioned_sharpness":
            v = hessian_lambda_max(Q, J[pos], z[pos], precond=opt.preconditioner(s2[pos], at + 1))
        else:
            v = np.empty(pos.size)
            for st in np.unique(at):
                m = at == st
                v[m] = batch_sharpness(A, J[pos[m]], z[pos[m]], *opt.batches(int(st)))
        with np.errstate(over="ignore", invalid="ignore"):
            return eta * v
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
                    for name in variants:
                        pos = np.flatnonzero(sel)
                        rec_var[name][rows, r] = variant_values(name, pos, np.full(pos.size, t))
                r += 1
            last = t == max_steps or (batch and bool(((conv_at >= 0) | (status != RUNNING)).all()))
            if n_done and (last or n_done >= max(1.0, thresh_frac * idx.size) or n_done == idx.size):
                fin = status != RUNNING
                _finish(fin, idx, status, stop_at, conv_at, J, z, loss, eta, status_out, steps_out, div_out,
                        conv_out, floss, fsharp, fz, fJ)
                _finish_variants(fin, idx, stop_at, status_out, fvar, variant_values)
                kept = ~fin
                idx, J, z, g, loss, status, stop_at, conv_at, cyc = (
                    a[kept] for a in (idx, J, z, g, loss, status, stop_at, conv_at, cyc))
                if general:
                    d, s1, s2 = d[kept], s1[kept], s2[kept]
                if use_cycle:
                    zm1 = zm1[kept]
                if U is not None:
                    U, warm = U[kept], warm[kept]
                n_done = 0
            if idx.size == 0 or last:
                break
            if general:
                w = opt.next_weights()
                c1, c2 = opt.corrections(t + 2)
                M = np.matmul(d, A, out=Mbuf[: idx.size]).reshape(idx.size, D, P)
                n_done += _fused_step_opt(J, M, z, d, g, zm1, loss, status, stop_at, cyc, t + 1, tol, diverge_loss,
                                          cyc_tol, cyc_win, gnew, conv_at, keep, w, opt.kind, eta, opt.mom,
                                          opt.b1, opt.b2, opt.eps, s1, s2, c1, c2)
            else:
                M = np.matmul(g, A, out=Mbuf[: idx.size]).reshape(idx.size, D, P)
                n_done += _fused_step(J, M, z, g, zm1, loss, status, stop_at, cyc, eta, t + 1,
                                      tol, diverge_loss, cyc_tol, cyc_win, gnew, conv_at, keep)
            t += 1
    if idx.size:  # still running at max_steps (or, with stop="batch", when every row had a fate)
        status[:] = MAX_STEPS
        stop_at[:] = t
        _finish(np.ones(idx.size, bool), idx, status, stop_at, conv_at, J, z, loss, eta, status_out,
                steps_out, div_out, conv_out, floss, fsharp, fz, fJ)
        _finish_variants(np.ones(idx.size, bool), idx, stop_at, status_out, fvar, variant_values)
    return GDResult(status=status_out, steps_taken=steps_out, diverged_at=div_out, converged_at=conv_out,
                    final_loss=floss,
                    final_sharpness=fsharp, final_z=fz, final_J=fJ, record_steps=rsteps,
                    loss=rec_loss, z_norm=rec_zn, sharpness=rec_sh, z=rec_z, variants=rec_var,
                    final_variants=fvar)


def _check_gd_args(Q, J0, z0, eta, max_steps, record_every, tol, diverge_loss, record_mask,
                   record_sharpness, record_z, return_J, cycle_tol, cycle_window, compact_fraction,
                   max_memory, extra=(0, 0)):
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
    per_rec = 2 + flags[0] + D * flags[1] + extra[1]
    item = Q.itemsize
    need = (item * (D * P * P + B * D * P * (3 + flags[2]) + 3 * B * D + B * R * per_rec + B * extra[0])
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


def _finish_variants(fin, idx, stop_at, status_out, fvar, values):
    """The final sharpness variants of the finished rows ``fin`` that did not diverge."""
    if not fvar:
        return
    pos = np.flatnonzero(fin)
    pos = pos[status_out[idx[pos]] != DIVERGED]
    if pos.size:
        for name, out in fvar.items():
            out[idx[pos]] = values(name, pos, stop_at[pos])


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
