"""Step functions of the one-datapoint maps and their batch kernels: the single place where the formulas live.

All maps are written for the rescaled coordinates of Eq. 7 (z̃ = η z,
T(k) = η J Q^k Jᵀ). The two-parameter map is parametrised by the second
eigenvalue ``lam`` = λ of Q (largest eigenvalue 1), λ ∈ [−1, 1):

* ``lam = -eps``  is the EOS model of Eq. 14-15 (a = 1/ε),
* ``lam = -1/a``  is the general form of Eq. 65-66,
* ``lam = -1``    is the catapult map of Eq. 12-13.

Using T(1) = ((1+λ) T − λ (2z̃ + Ẽ)) and T(2) = T + λ(λ+1)(T − Ẽ − 2z̃)
(from T(−1) = Ẽ + 2z̃ and P = 2):

    z̃' = z̃ − z̃ T + ½ z̃² T(1)
    T'  = T − 2 z̃ T(1) + z̃² T(2)

For general P the hierarchy (Eq. 10-11) closes in the eigenbasis of Q: with
eigenvalues q_i and weights w_i = η (J·e_i)², T(k) = Σ_i q_i^k w_i and one GD
step (J ← J (I − η z Q)) maps w_i ← w_i (1 − z̃ q_i)².

The scalar step functions are numba ``njit`` functions that also work on NumPy
arrays (array expressions), so theory code and tests can call them directly.

Batch kernels (``*_batch``) iterate many independent trajectories in parallel
(``prange``) on plain contiguous arrays and write into preallocated outputs;
they share one protocol:

* ``nsteps`` map steps; ``every`` > 0 records steps 0, every, 2·every, ... into
  row ``t // every`` of the ``rec_*`` arrays (``every`` = 0: record nothing);
* ``div_at[i]``: first step at which the state is not finite or
  ``|z̃| ≥ thr`` or ``|T| ≥ thr`` (−1: never); ``conv_at[i]``: first step with
  ``|z̃| < tol`` (−1: never). Diverged trajectories keep being iterated (their
  state becomes inf/NaN); the caller masks them with NaN;
* ``stop_when_fated``: a block of trajectories stops as soon as every member
  has converged or diverged (used to find the stopping step of a batch).
"""

from __future__ import annotations

import numba as nb
import numpy as np

#: trajectories iterated together by one thread (lanes of the inner loop)
LANES = 64
#: steps between the exact fate checks of the two-component driver
CHECK = 32
#: "never happened" marker inside kernels (converted to -1 on exit)
_NEVER = np.iinfo(np.int64).max


# --------------------------------------------------------------------------- step formulas
@nb.njit(cache=True, fastmath=False, inline="always")
def two_param_step(z, T, lam, E):
    """One GD step of the P = 2 map (Eq. 65-66 with λ = −1/a). Returns ``(z', T')``."""
    u = 2.0 * z + E
    T1 = (1.0 + lam) * T - lam * u
    T2 = T + lam * (lam + 1.0) * (T - u)
    return z - z * T + 0.5 * z * z * T1, T - 2.0 * z * T1 + z * z * T2


@nb.njit(cache=True, fastmath=False, inline="always")
def two_param_rhs(z, T, lam, E):
    """Gradient-flow vector field of the P = 2 model (Eq. 8 closed with P = 2)."""
    T1 = (1.0 + lam) * T - lam * (2.0 * z + E)
    return -z * T, -2.0 * z * T1


@nb.njit(cache=True, fastmath=False, inline="always")
def linear_step(theta, unused, lam, unused2):
    """One GD step of linear least squares along one eigendirection (Eq. 16): θ̃' = (1 − λ) θ̃.

    The signature matches :func:`two_param_step` (a two-component state whose second
    component stays 0) so both maps share one batch driver.
    """
    return (1.0 - lam) * theta, 0.0 * unused


@nb.njit(cache=True, fastmath=False)
def hierarchy_moments(w, q):
    """``(T(0), T(1)) = (Σ w_i, Σ q_i w_i)`` of the eigenbasis weights (Eq. 7)."""
    T0 = 0.0
    T1 = 0.0
    for i in range(w.shape[0]):
        T0 += w[i]
        T1 += q[i] * w[i]
    return T0, T1


@nb.njit(cache=True, fastmath=False)
def hierarchy_step(z, w, q):
    """One GD step of the rescaled hierarchy (Eq. 10-11) in Q's eigenbasis; updates ``w`` in place.

    z̃' = z̃ − z̃ T(0) + ½ z̃² T(1),  w_i' = w_i (1 − z̃ q_i)²  (so T(k)' = T(k) − 2 z̃ T(k+1) + z̃² T(k+2)).
    Returns ``(z̃', T(0)')``.
    """
    T0, T1 = hierarchy_moments(w, q)
    znew = z - z * T0 + 0.5 * z * z * T1
    Tn = 0.0
    for i in range(w.shape[0]):
        f = 1.0 - z * q[i]
        w[i] = w[i] * (f * f)
        Tn += w[i]
    return znew, Tn


@nb.njit(cache=True, fastmath=False)
def hierarchy_rhs(z, w, q, dw):
    """Gradient flow of the hierarchy (Eq. 8): dz̃/dt = −z̃ T(0), dw_i/dt = −2 z̃ q_i w_i. Writes ``dw``, returns dz̃/dt."""
    T0 = 0.0
    for i in range(w.shape[0]):
        T0 += w[i]
        dw[i] = -2.0 * z * q[i] * w[i]
    return -z * T0


@nb.njit(cache=True, fastmath=False)
def one_datapoint_observe(theta, Q, E, eta, g):
    """Residual and curvature of the D = 1 model at ``theta`` (Eq. 4, 7).

    Writes the Jacobian Jᵀ = Q θ into ``g`` and returns ``(z̃, T(0))`` with
    z = ½ (θᵀQθ − E), z̃ = η z, T(0) = η J Jᵀ.
    """
    P = theta.shape[0]
    quad = 0.0
    JJ = 0.0
    for i in range(P):
        s = 0.0
        for j in range(P):
            s += Q[i, j] * theta[j]
        g[i] = s
        quad += theta[i] * s
        JJ += s * s
    return eta * (0.5 * (quad - E)), eta * JJ


@nb.njit(cache=True, fastmath=False)
def one_datapoint_update(theta, g, ztilde):
    """GD step in parameter space (Eq. 9): θ ← θ − η z Q θ = θ − z̃ g with g = Qθ (in place)."""
    for i in range(theta.shape[0]):
        theta[i] -= ztilde * g[i]


@nb.njit(cache=True, fastmath=False)
def one_datapoint_rhs(theta, Q, E, eta, out):
    """Gradient flow with rate η (Eq. 5): dθ/dt = −η z Q θ. Writes ``out``."""
    P = theta.shape[0]
    quad = 0.0
    for i in range(P):
        s = 0.0
        for j in range(P):
            s += Q[i, j] * theta[j]
        out[i] = s
        quad += theta[i] * s
    c = -eta * 0.5 * (quad - E)
    for i in range(P):
        out[i] *= c


# --------------------------------------------------------------------------- batch kernels
@nb.njit(cache=True, fastmath=False, inline="always")
def _pair_step(kind, z, T, p, r):
    """Dispatch of the two-component maps (``kind`` 0: :func:`two_param_step`, 1: :func:`linear_step`)."""
    if kind == 0:
        return two_param_step(z, T, p, r)
    return linear_step(z, T, p, r)


@nb.njit(parallel=True, cache=True, fastmath=False)
def _pair_run(kind, z0, T0, p, r, nsteps, every, tol, thr, scale, stop_when_fated,
              rec_z, rec_T, out_z, out_T, div_at, conv_at):
    """Batch driver for a map on a two-component state ``(z, T)`` with two parameters per trajectory.

    Lanes of a block live in rows of one small 2-D array (so LLVM vectorises the lane loop);
    the per-step fate checks are two branch-free accumulators: ``acc += (z·s)·0 + (T·s)·0``
    becomes NaN for good once a state is non-finite or ``|z̃|, |T| ≥ thr`` (``s`` = overflow
    scale, a power of two with ``thr · s`` = 2^(emax+1)), and a count of steps with ``|z̃| < tol``. Every
    ``CHECK`` steps a lane whose accumulator fired is re-run from the checkpoint with scalar
    checks to find the exact step, so fates are exact and results are bit-identical to a plain
    step-by-step loop. ``kind`` selects the map (loop-invariant, so the compiler unswitches it).
    """
    n = z0.shape[0]
    nblocks = (n + LANES - 1) // LANES
    for b in nb.prange(nblocks):
        lo = b * LANES
        hi = min(n, lo + LANES)
        m = hi - lo
        # rows: 0 z, 1 T, 2 p, 3 r, 4 divergence accumulator, 5 count of |z| < tol, 6/7 checkpoint z/T
        S = np.zeros((8, LANES), z0.dtype)
        tmp = np.zeros(2, z0.dtype)
        # staging buffer of the records of one chunk (flushed per lane: contiguous row writes)
        buf = np.empty((2, CHECK, LANES), z0.dtype)
        dv = np.full(LANES, _NEVER, np.int64)
        cv = np.full(LANES, _NEVER, np.int64)
        for j in range(m):
            S[0, j] = z0[lo + j]
            S[1, j] = T0[lo + j]
            S[2, j] = p[lo + j]
            S[3, j] = r[lo + j]
            if not ((abs(S[0, j]) < thr) & (abs(S[1, j]) < thr)):
                dv[j] = 0
            if abs(S[0, j]) < tol:
                cv[j] = 0
            if every > 0:
                rec_z[lo + j, 0] = S[0, j]
                rec_T[lo + j, 0] = S[1, j]
        t0 = 0
        while t0 < nsteps:
            t1 = min(nsteps, t0 + CHECK)
            for j in range(LANES):
                S[6, j] = S[0, j]
                S[7, j] = S[1, j]
            nrec = 0
            row0 = (t0 + every) // every if every > 0 else 0
            for t in range(t0 + 1, t1 + 1):
                for j in range(LANES):
                    zn, Tn = _pair_step(kind, S[0, j], S[1, j], S[2, j], S[3, j])
                    S[0, j] = zn
                    S[1, j] = Tn
                    S[4, j] += (S[0, j] * scale) * 0.0 + (S[1, j] * scale) * 0.0
                    S[5, j] += 1.0 if abs(S[0, j]) < tol else 0.0
                if every > 0 and t % every == 0:
                    for j in range(LANES):
                        buf[0, nrec, j] = S[0, j]
                        buf[1, nrec, j] = S[1, j]
                    nrec += 1
            for j in range(m):
                for k in range(nrec):
                    rec_z[lo + j, row0 + k] = buf[0, k, j]
                    rec_T[lo + j, row0 + k] = buf[1, k, j]
            # exact fates of the lanes whose accumulators fired in (t0, t1]
            for j in range(m):
                need_d = dv[j] == _NEVER and not (S[4, j] == 0.0)
                need_c = cv[j] == _NEVER and S[5, j] > 0.0
                if need_d or need_c:
                    zc = S[6, j]
                    Tc = S[7, j]
                    for t in range(t0 + 1, t1 + 1):
                        zn, Tn = _pair_step(kind, zc, Tc, S[2, j], S[3, j])
                        tmp[0] = zn
                        tmp[1] = Tn
                        zc = tmp[0]
                        Tc = tmp[1]
                        if need_d and not ((abs(zc) < thr) & (abs(Tc) < thr)):
                            dv[j] = t
                            need_d = False
                        if need_c and abs(zc) < tol:
                            cv[j] = t
                            need_c = False
                        if not (need_d or need_c):
                            break
                S[4, j] = 0.0
                S[5, j] = 0.0
            t0 = t1
            if stop_when_fated:
                done = True
                for j in range(m):
                    if dv[j] == _NEVER and cv[j] == _NEVER:
                        done = False
                if done:
                    break
        for j in range(m):
            out_z[lo + j] = S[0, j]
            out_T[lo + j] = S[1, j]
            div_at[lo + j] = -1 if dv[j] == _NEVER else dv[j]
            conv_at[lo + j] = -1 if cv[j] == _NEVER else cv[j]


def two_param_batch(z0, T0, lam, E, nsteps, every, tol, thr, scale, stop_when_fated,
                    rec_z, rec_T, out_z, out_T, div_at, conv_at):
    """Iterate the P = 2 map for many trajectories (prange over blocks of ``LANES``).

Parameters (plain contiguous arrays of length n unless stated): ``z0, T0, lam, E``;
``nsteps, every`` (int), ``tol, thr, scale`` (state dtype; ``scale`` = 2^(emax+1) / ``thr``,
a power of two), ``stop_when_fated`` (bool); outputs
``rec_z, rec_T`` (n, R) with R = nsteps // every + 1, or (n, 0) when ``every`` = 0
    (records are staged per chunk of ``CHECK`` steps and written as contiguous runs per
    trajectory), ``out_z, out_T``
(final state), ``div_at, conv_at`` (int64, −1 = never). See the module docstring.
    """
    _pair_run(0, z0, T0, lam, E, nsteps, every, tol, thr, scale, stop_when_fated,
              rec_z, rec_T, out_z, out_T, div_at, conv_at)


def linear_batch(theta0, zeros, lam, unused, nsteps, every, tol, thr, scale, stop_when_fated,
                 rec_theta, rec_zero, out_theta, out_zero, div_at, conv_at):
    """Iterate the linear map θ̃' = (1 − λ) θ̃ (Eq. 16); same protocol as :func:`two_param_batch`
    with the second state component identically 0."""
    _pair_run(1, theta0, zeros, lam, unused, nsteps, every, tol, thr, scale, stop_when_fated,
              rec_theta, rec_zero, out_theta, out_zero, div_at, conv_at)


@nb.njit(parallel=True, cache=True, fastmath=False)
def hierarchy_batch(z0, w0, q, nsteps, every, tol, thr, stop_when_fated,
                    rec_z, rec_T, rec_w, out_z, out_w, div_at, conv_at):
    """Iterate the general-P hierarchy (Eq. 10-11) for n trajectories.

    ``z0`` (n,), ``w0`` and ``q`` (n, P); ``rec_z, rec_T`` (n, R), ``rec_w`` (n, R, P)
    (R = 0 when ``every`` = 0; ``rec_w`` may have P = 0 columns to skip the weights);
    ``out_z`` (n,), ``out_w`` (n, P); ``div_at, conv_at`` (n,) int64. Divergence:
    non-finite, ``|z̃| ≥ thr`` or ``T(0) ≥ thr``.
    """
    n, P = w0.shape
    keep_w = rec_w.shape[2] == P
    for i in nb.prange(n):
        w = w0[i].copy()
        qi = q[i]
        z = z0[i]
        T = 0.0
        for k in range(P):
            T += w[k]
        dv = _NEVER if ((abs(z) < thr) & (abs(T) < thr)) else 0
        cv = 0 if abs(z) < tol else _NEVER
        if every > 0:
            rec_z[i, 0] = z
            rec_T[i, 0] = T
            if keep_w:
                for k in range(P):
                    rec_w[i, 0, k] = w[k]
        for t in range(1, nsteps + 1):
            z, T = hierarchy_step(z, w, qi)
            if dv == _NEVER and not ((abs(z) < thr) & (abs(T) < thr)):
                dv = t
            if cv == _NEVER and abs(z) < tol:
                cv = t
            if every > 0 and t % every == 0:
                row = t // every
                rec_z[i, row] = z
                rec_T[i, row] = T
                if keep_w:
                    for k in range(P):
                        rec_w[i, row, k] = w[k]
            if stop_when_fated and (dv != _NEVER or cv != _NEVER):
                break
        out_z[i] = z
        for k in range(P):
            out_w[i, k] = w[k]
        div_at[i] = -1 if dv == _NEVER else dv
        conv_at[i] = -1 if cv == _NEVER else cv


@nb.njit(parallel=True, cache=True, fastmath=False)
def one_datapoint_batch(theta0, Q, E, eta, nsteps, every, tol, thr, stop_when_fated,
                        rec_theta, rec_z, rec_T, out_theta, out_z, out_T, div_at, conv_at):
    """GD in parameter space (Eq. 9) for n trajectories sharing one symmetric Q.

    ``theta0`` (n, P), ``Q`` (P, P), ``E, eta`` (n,); records (R = 0 when ``every`` = 0)
    ``rec_theta`` (n, R, P), ``rec_z`` = z̃ = η z and ``rec_T`` = η J Jᵀ (n, R); final
    ``out_theta`` (n, P), ``out_z, out_T`` (n,); ``div_at, conv_at`` (n,) int64.
    Divergence: non-finite, ``|z̃| ≥ thr`` or ``T ≥ thr``.
    """
    n, P = theta0.shape
    for i in nb.prange(n):
        th = theta0[i].copy()
        g = np.empty(P, theta0.dtype)
        z, T = one_datapoint_observe(th, Q, E[i], eta[i], g)
        dv = _NEVER if ((abs(z) < thr) & (abs(T) < thr)) else 0
        cv = 0 if abs(z) < tol else _NEVER
        if every > 0:
            rec_z[i, 0] = z
            rec_T[i, 0] = T
            for k in range(P):
                rec_theta[i, 0, k] = th[k]
        for t in range(1, nsteps + 1):
            one_datapoint_update(th, g, z)
            z, T = one_datapoint_observe(th, Q, E[i], eta[i], g)
            if dv == _NEVER and not ((abs(z) < thr) & (abs(T) < thr)):
                dv = t
            if cv == _NEVER and abs(z) < tol:
                cv = t
            if every > 0 and t % every == 0:
                row = t // every
                rec_z[i, row] = z
                rec_T[i, row] = T
                for k in range(P):
                    rec_theta[i, row, k] = th[k]
            if stop_when_fated and (dv != _NEVER or cv != _NEVER):
                break
        out_z[i] = z
        out_T[i] = T
        for k in range(P):
            out_theta[i, k] = th[k]
        div_at[i] = -1 if dv == _NEVER else dv
        conv_at[i] = -1 if cv == _NEVER else cv
