"""Momentum, Nesterov, RMSProp and Adam on the one-datapoint model in parameter space (numba).

The model (Eq. 4): z = ½ (θᵀQθ − E), J = (Qθ)ᵀ, loss ½ z², gradient g = z Q θ. Each member
carries θ and its optimizer state; the updates are those of :func:`eosdyn.kernels.qrm.run_gd`
(heavy ball v ← βv + g, Δθ = −ηv; Nesterov Δθ = −η(g + βv); RMSProp s ← β₂s + (1 − β₂)g²,
Δθ = −ηg/(√s + ε); Adam with bias-corrected m̂, v̂, Δθ = −ηm̂/(√v̂ + ε)). Plain GD runs on
:func:`eosdyn.kernels.maps.vector_batch` (the fast path); this kernel serves the other
optimizers with the same outputs (records and fates as :func:`~eosdyn.kernels.maps.vector_batch`)
plus the preconditioned sharpness η λ_max(P⁻¹H), H = JᵀJ + z Q, P the preconditioner of the next
update (rmsprop/adam; NaN for the others).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .qrm import OPTIMIZER_CODES

__all__ = ["datapoint_batch"]

_NEVER = -1


@nb.njit(cache=True, fastmath=False)
def _observe(theta, Q, E, eta, u):
    """u = Qθ; returns (z̃ = η z, T = η uᵀu, loss ½ z², z)."""
    P = theta.shape[0]
    quad = 0.0
    JJ = 0.0
    for i in range(P):
        s = 0.0
        for j in range(P):
            s += Q[i, j] * theta[j]
        u[i] = s
        quad += theta[i] * s
        JJ += s * s
    z = 0.5 * (quad - E)
    return eta * z, eta * JJ, 0.5 * z * z, z


@nb.njit(cache=True, fastmath=False)
def _direction(kind, g, d, s1, s2, eta, mom, b1, b2, eps, u_next):
    """The next update ``d`` from the gradient ``g``; advances the state (update number u_next)."""
    P = g.shape[0]
    c1 = 1.0 - b1 ** u_next
    c2 = 1.0 - b2 ** u_next
    for j in range(P):
        gj = g[j]
        if kind == 0:
            d[j] = -eta * gj
        elif kind == 1:
            v = mom * s1[j] + gj
            s1[j] = v
            d[j] = -eta * v
        elif kind == 2:
            v = mom * s1[j] + gj
            s1[j] = v
            d[j] = -eta * (gj + mom * v)
        elif kind == 3:
            v = b2 * s2[j] + (1.0 - b2) * (gj * gj)
            s2[j] = v
            d[j] = -eta * gj / (math.sqrt(v) + eps)
        else:
            m = b1 * s1[j] + (1.0 - b1) * gj
            v = b2 * s2[j] + (1.0 - b2) * (gj * gj)
            s1[j] = m
            s2[j] = v
            d[j] = -eta * (m / c1) / (math.sqrt(v / c2) + eps)


@nb.njit(cache=True, fastmath=False)
def _precond_sharpness(kind, Q, u, z, s2, eta, b2, eps, u_next, H):
    """η λ_max(P⁻¹H), H = uuᵀ + z Q, P = diag(√s + ε) (rmsprop) or diag(√v̂ + ε) (adam)."""
    P = u.shape[0]
    c2 = 1.0 - b2 ** u_next if kind == 4 else 1.0
    r = np.empty(P)
    for i in range(P):
        r[i] = 1.0 / math.sqrt(math.sqrt(s2[i] / c2) + eps)
    for i in range(P):
        for j in range(P):
            H[i, j] = (u[i] * u[j] + z * Q[i, j]) * r[i] * r[j]
    for i in range(P):
        for j in range(P):
            if not math.isfinite(H[i, j]):
                return math.nan
    return eta * np.linalg.eigvalsh(H)[P - 1]


@nb.njit(cache=True, fastmath=False)
def _store(out_y, out_o, which, i, y, o):
    for k in range(y.shape[0]):
        out_y[which, i, k] = y[k]
    for k in range(4):
        out_o[which, k, i] = o[k]


@nb.njit(parallel=True, cache=True, fastmath=False)
def _run(kind, y0, prm, Q, nsteps, every, tol, dl, thr, stop_when_fated, mom, b1, b2, eps,
         rec_y, rec_o, out_y, out_o, div_at, conv_at):
    n, m = y0.shape
    for i in nb.prange(n):
        E = prm[i, 0]
        eta = prm[i, 1]
        y = y0[i].astype(np.float64)
        u = np.empty(m)
        g = np.empty(m)
        d = np.empty(m)
        s1 = np.zeros(m)
        s2 = np.zeros(m)
        H = np.empty((m, m))
        o = np.empty(4)
        dv = _NEVER
        cv = _NEVER
        for t in range(0, nsteps + 1):
            if t > 0:
                for k in range(m):
                    y[k] += d[k]
            zt, T, L, z = _observe(y, Q, E, eta, u)
            for k in range(m):
                g[k] = z * u[k]
            _direction(kind, g, d, s1, s2, eta, mom, b1, b2, eps, t + 1)
            o[0] = zt
            o[1] = T
            o[2] = L
            o[3] = _precond_sharpness(kind, Q, u, z, s2, eta, b2, eps, t + 1, H) if kind >= 3 else math.nan
            if dv == _NEVER and not ((L <= dl) & (abs(T) < thr)):
                dv = t
                _store(out_y, out_o, 1, i, y, o)
            if cv == _NEVER and L < tol:
                cv = t
                _store(out_y, out_o, 2, i, y, o)
            if every > 0 and t % every == 0:
                row = t // every
                for k in range(4):
                    rec_o[k, i, row] = o[k]
                for k in range(m):
                    rec_y[i, row, k] = y[k]
            if stop_when_fated and (dv != _NEVER or cv != _NEVER):
                break
        _store(out_y, out_o, 0, i, y, o)
        div_at[i] = -1 if dv == _NEVER else dv
        conv_at[i] = -1 if cv == _NEVER else cv


def datapoint_batch(optimizer: str, hyper: dict, y0, prm, Q, nsteps: int, every: int, tol: float,
                    diverge_loss: float, thr: float, stop_when_fated: bool):
    """Run the one-datapoint model with ``optimizer`` for every member; returns the outputs.

    ``y0`` (n, P) initial θ, ``prm`` (n, 2) = (E, η) per member, ``Q`` (P, P); ``hyper`` the
    optimizer's hyperparameters (:func:`eosdyn._validate.check_optimizer`, scalars). Returns
    ``(rec_y, rec_o, out_y, out_o, div_at, conv_at)``: records of θ (n, R, P) and of (z̃, T, loss,
    preconditioned sharpness) (4, n, R) every ``every`` steps (R = 0 when ``every`` = 0); θ and
    those four at the end, at ``div_at`` and at ``conv_at`` ((3, n, P), (3, 4, n)); the first
    step with loss > ``diverge_loss``, abs(T) ≥ ``thr`` or a non-finite value, and the first
    step with loss < ``tol`` (−1: never). The state is advanced in float64 and stored in the
    dtype of ``y0``.

    Examples
    --------
    >>> import numpy as np
    >>> out = datapoint_batch("momentum", {"momentum": 0.5}, np.array([[1.0, 0.5]]),
    ...                       np.array([[0.0, 0.5]]), np.diag([1.0, -0.1]), 3, 1, 0.0, 1e8, 2.0**498, False)
    >>> out[1].shape, round(float(out[1][0, 0, 0]), 6)  # z̃ at step 0 = η ½ θᵀQθ
    ((4, 1, 4), 0.24375)
    """
    y0 = np.ascontiguousarray(y0)
    dt = y0.dtype
    n, m = y0.shape
    R = nsteps // every + 1 if every > 0 else 0
    rec_y = np.full((n, R, m), np.nan, dt)
    rec_o = np.full((4, n, R), np.nan, dt)
    out_y = np.full((3, n, m), np.nan, dt)
    out_o = np.full((3, 4, n), np.nan, dt)
    div_at = np.empty(n, np.int64)
    conv_at = np.empty(n, np.int64)
    _run(OPTIMIZER_CODES[optimizer], y0, np.ascontiguousarray(prm, np.float64), np.ascontiguousarray(Q, np.float64),
         int(nsteps), int(every), float(tol), float(diverge_loss), float(thr), bool(stop_when_fated),
         float(hyper.get("momentum", 0.0)), float(hyper.get("beta1", 0.0)), float(hyper.get("beta2", 0.0)),
         float(hyper.get("epsilon", 1.0)), rec_y, rec_o, out_y, out_o, div_at, conv_at)
    return rec_y, rec_o, out_y, out_o, div_at, conv_at
