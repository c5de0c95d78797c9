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

The scalar step functions :func:`two_param_step`, :func:`two_param_rhs` and
:func:`linear_step` are numba ``njit`` functions of scalars that also work on NumPy arrays
(array expressions, broadcast like NumPy), so theory code and tests can call them directly.

Every kernel that indexes arrays is private (``_name``): it trusts its caller's shapes and
would read or write out of bounds otherwise. The public names (:func:`hierarchy_step`,
:func:`hierarchy_rhs`, :func:`one_datapoint_observe`, :func:`two_param_batch`, ...) are thin
Python wrappers that check shapes, dtypes, contiguity and writeability and raise
``ValueError`` naming the argument before calling the kernel.

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
def _hierarchy_moments(w, q):
    """``(T(0), T(1)) = (Σ w_i, Σ q_i w_i)`` of the eigenbasis weights (Eq. 7)."""
    T0 = 0.0
    T1 = 0.0
    for i in range(w.shape[0]):
        T0 += w[i]
        T1 += q[i] * w[i]
    return T0, T1


@nb.njit(cache=True, fastmath=False)
def _hierarchy_step(z, w, q):
    """One GD step of the rescaled hierarchy (Eq. 10-11) in Q's eigenbasis; updates ``w`` in place.

    z̃' = z̃ − z̃ T(0) + ½ z̃² T(1),  w_i' = w_i (1 − z̃ q_i)²  (so T(k)' = T(k) − 2 z̃ T(k+1) + z̃² T(k+2)).
    Returns ``(z̃', T(0)')``.
    """
    T0, T1 = _hierarchy_moments(w, q)
    znew = z - z * T0 + 0.5 * z * z * T1
    Tn = 0.0
    for i in range(w.shape[0]):
        f = 1.0 - z * q[i]
        w[i] = w[i] * (f * f)
        Tn += w[i]
    return znew, Tn


@nb.njit(cache=True, fastmath=False)
def _hierarchy_rhs(z, w, q, dw):
    """Gradient flow of the hierarchy (Eq. 8): dz̃/dt = −z̃ T(0), dw_i/dt = −2 z̃ q_i w_i. Writes ``dw``, returns dz̃/dt."""
    T0 = 0.0
    for i in range(w.shape[0]):
        T0 += w[i]
        dw[i] = -2.0 * z * q[i] * w[i]
    return -z * T0


@nb.njit(cache=True, fastmath=False)
def _one_datapoint_observe(theta, Q, E, eta, g):
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
def _one_datapoint_update(theta, g, ztilde):
    """GD step in parameter space (Eq. 9): θ ← θ − η z Q θ = θ − z̃ g with g = Qθ (in place)."""
    for i in range(theta.shape[0]):
        theta[i] -= ztilde * g[i]


@nb.njit(cache=True, fastmath=False)
def _one_datapoint_rhs(theta, Q, E, eta, out):
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


@nb.njit(parallel=True, cache=True, fastmath=False)
def _hierarchy_batch(z0, w0, q, nsteps, every, tol, thr, stop_when_fated,
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
            z, T = _hierarchy_step(z, w, qi)
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
def _one_datapoint_batch(theta0, Q, E, eta, zthr, nsteps, every, tol, thr, stop_when_fated,
                         rec_theta, rec_z, rec_T, out_theta, out_z, out_T, div_at, conv_at):
    """GD in parameter space (Eq. 9) for n trajectories sharing one symmetric Q.

    ``theta0`` (n, P), ``Q`` (P, P), ``E, eta`` (n,); records (R = 0 when ``every`` = 0)
    ``rec_theta`` (n, R, P), ``rec_z`` = z̃ = η z and ``rec_T`` = η J Jᵀ (n, R); final
    ``out_theta`` (n, P), ``out_z, out_T`` (n,); ``div_at, conv_at`` (n,) int64.
    Divergence: non-finite, ``|z̃| ≥ zthr[i]`` (per member, ≤ ``thr``) or ``T ≥ thr``.
    """
    n, P = theta0.shape
    for i in nb.prange(n):
        zt = zthr[i]
        th = theta0[i].copy()
        g = np.empty(P, theta0.dtype)
        z, T = _one_datapoint_observe(th, Q, E[i], eta[i], g)
        dv = _NEVER if ((abs(z) < zt) & (abs(T) < thr)) else 0
        cv = 0 if abs(z) < tol else _NEVER
        if every > 0:
            rec_z[i, 0] = z
            rec_T[i, 0] = T
            for k in range(P):
                rec_theta[i, 0, k] = th[k]
        for t in range(1, nsteps + 1):
            _one_datapoint_update(th, g, z)
            z, T = _one_datapoint_observe(th, Q, E[i], eta[i], g)
            if dv == _NEVER and not ((abs(z) < zt) & (abs(T) < thr)):
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


# --------------------------------------------------------------------------- checked public wrappers
_FLOATS = (np.dtype(np.float64), np.dtype(np.float32))
#: largest ``nsteps`` the kernels accept (int64 loop counters with headroom)
MAX_NSTEPS = 2**62


def _arr(name, a, ndim, *, dtype=None, shape=None, out=False, kind="float"):
    """Check one kernel argument; returns it. ``shape`` entries None are free."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name} must be a NumPy array; got {type(a).__name__}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got shape {a.shape}")
    if kind == "float" and a.dtype not in _FLOATS:
        raise ValueError(f"{name} must have dtype float64 or float32; got {a.dtype}")
    if kind == "int" and a.dtype != np.dtype(np.int64):
        raise ValueError(f"{name} must have dtype int64; got {a.dtype}")
    if dtype is not None and kind == "float" and a.dtype != dtype:
        raise ValueError(f"{name} must have the state dtype {dtype}; got {a.dtype}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if out and not a.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    if shape is not None:
        for want, got in zip(shape, a.shape):
            if want is not None and want != got:
                raise ValueError(f"{name} must have shape "
                                 f"{tuple('*' if w is None else w for w in shape)}; got {a.shape}")
    return a


def _real(name, v):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a real number; got {v!r}")
    return v


def _count(name, v, lo, hi):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or not lo <= int(v) <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}]; got {v!r}")
    return int(v)


def _records(nsteps, every):
    return nsteps // every + 1 if every > 0 else 0


def hierarchy_moments(w, q):
    """``(T(0), T(1)) = (Σ w_i, Σ q_i w_i)`` of the eigenbasis weights (Eq. 7); checked.

    Examples
    --------
    >>> import numpy as np
    >>> hierarchy_moments(np.array([0.5, 0.5]), np.array([1.0, -0.5]))
    (1.0, 0.25)
    """
    w = _arr("w", w, 1)
    _arr("q", q, 1, dtype=w.dtype, shape=w.shape)
    return _hierarchy_moments(w, q)


def hierarchy_step(z, w, q):
    """One GD step of the rescaled hierarchy (Eq. 10-11); updates ``w`` in place; checked.

    ``w`` and ``q`` are 1-D contiguous float arrays of one length P (``w`` writeable).
    Returns ``(z̃', T(0)')``.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([0.5, 0.5])
    >>> z, T = hierarchy_step(0.1, w, np.array([1.0, -0.5]))
    >>> round(z, 6), w.tolist()
    (0.00125, [0.405, 0.55125])
    >>> hierarchy_step(0.1, np.ones(2), np.ones(10**6))
    Traceback (most recent call last):
    ...
    ValueError: q must have shape (2,); got (1000000,)
    """
    _real("z", z)
    w = _arr("w", w, 1, out=True)
    _arr("q", q, 1, dtype=w.dtype, shape=w.shape)
    return _hierarchy_step(z, w, q)


def hierarchy_rhs(z, w, q, dw):
    """Gradient flow of the hierarchy (Eq. 8): writes dw_i/dt = −2 z̃ q_i w_i into ``dw`` and
    returns dz̃/dt = −z̃ T(0); checked (``w``, ``q``, ``dw`` 1-D of one length and dtype).

    Examples
    --------
    >>> import numpy as np
    >>> dw = np.empty(2)
    >>> hierarchy_rhs(0.1, np.array([0.5, 0.5]), np.array([1.0, -0.5]), dw), dw.tolist()
    (-0.1, [-0.1, 0.05])
    >>> hierarchy_rhs(0.1, np.ones(10**6), np.ones(10**6), np.empty(1))
    Traceback (most recent call last):
    ...
    ValueError: dw must have shape (1000000,); got (1,)
    """
    _real("z", z)
    w = _arr("w", w, 1)
    _arr("q", q, 1, dtype=w.dtype, shape=w.shape)
    _arr("dw", dw, 1, dtype=w.dtype, shape=w.shape, out=True)
    return _hierarchy_rhs(z, w, q, dw)


def one_datapoint_observe(theta, Q, E, eta, g):
    """Residual and curvature of the D = 1 model at ``theta`` (Eq. 4, 7); checked.

    ``theta`` (P,), ``Q`` (P, P), ``g`` (P,) (writeable; receives Jᵀ = Qθ), one float dtype.
    Returns ``(z̃, T(0))`` with z̃ = η ½ (θᵀQθ − E) and T(0) = η |Qθ|².

    Examples
    --------
    >>> import numpy as np
    >>> one_datapoint_observe(np.array([1.0, 0.5]), np.eye(2), 0.0, 0.5, np.empty(2))
    (0.3125, 0.625)
    >>> one_datapoint_observe(np.ones(10**6), np.eye(2), 0.0, 0.5, np.empty(10**6))
    Traceback (most recent call last):
    ...
    ValueError: Q must have shape (1000000, 1000000); got (2, 2)
    """
    theta = _arr("theta", theta, 1)
    P = theta.shape[0]
    _arr("Q", Q, 2, dtype=theta.dtype, shape=(P, P))
    _real("E", E)
    _real("eta", eta)
    _arr("g", g, 1, dtype=theta.dtype, shape=(P,), out=True)
    return _one_datapoint_observe(theta, Q, E, eta, g)


def one_datapoint_update(theta, g, ztilde):
    """GD step in parameter space (Eq. 9): θ ← θ − z̃ g, in place; checked.

    Examples
    --------
    >>> import numpy as np
    >>> th = np.array([1.0, 0.5])
    >>> one_datapoint_update(th, np.array([1.0, 0.5]), 0.5); th.tolist()
    [0.5, 0.25]
    """
    theta = _arr("theta", theta, 1, out=True)
    _arr("g", g, 1, dtype=theta.dtype, shape=theta.shape)
    _real("ztilde", ztilde)
    _one_datapoint_update(theta, g, ztilde)


def one_datapoint_rhs(theta, Q, E, eta, out):
    """Gradient flow with rate η (Eq. 5): writes dθ/dt = −η z Q θ into ``out``; checked.

    Examples
    --------
    >>> import numpy as np
    >>> out = np.empty(2)
    >>> one_datapoint_rhs(np.array([1.0, 0.5]), np.eye(2), 0.0, 0.5, out); out.tolist()
    [-0.3125, -0.15625]
    """
    theta = _arr("theta", theta, 1)
    P = theta.shape[0]
    _arr("Q", Q, 2, dtype=theta.dtype, shape=(P, P))
    _real("E", E)
    _real("eta", eta)
    _arr("out", out, 1, dtype=theta.dtype, shape=(P,), out=True)
    _one_datapoint_rhs(theta, Q, E, eta, out)


def _check_pair(z0, T0, p, r, nsteps, every, tol, thr, scale, rec_z, rec_T, out_z, out_T, div_at, conv_at,
                names):
    z0 = _arr(names[0], z0, 1)
    n, dt = z0.shape[0], z0.dtype
    for nm, a in ((names[1], T0), (names[2], p), (names[3], r)):
        _arr(nm, a, 1, dtype=dt, shape=(n,))
    nsteps = _count("nsteps", nsteps, 0, MAX_NSTEPS)
    every = _count("every", every, 0, MAX_NSTEPS)
    for nm, v in (("tol", tol), ("thr", thr), ("scale", scale)):
        _real(nm, v)
    R = _records(nsteps, every)
    for nm, a in ((names[4], rec_z), (names[5], rec_T)):
        _arr(nm, a, 2, dtype=dt, shape=(n, None), out=True)
        if a.shape[1] < R:
            raise ValueError(f"{nm} must have at least nsteps // every + 1 = {R} columns; got shape {a.shape}")
    for nm, a in ((names[6], out_z), (names[7], out_T)):
        _arr(nm, a, 1, dtype=dt, shape=(n,), out=True)
    for nm, a in (("div_at", div_at), ("conv_at", conv_at)):
        _arr(nm, a, 1, shape=(n,), out=True, kind="int")
    return nsteps, every


def two_param_batch(z0, T0, lam, E, nsteps, every, tol, thr, scale, stop_when_fated,
                    rec_z, rec_T, out_z, out_T, div_at, conv_at):
    """Iterate the P = 2 map for many trajectories (prange over blocks of ``LANES``); checked.

    Parameters (contiguous arrays of length n and one float dtype unless stated): ``z0, T0,
    lam, E``; ``nsteps, every`` (int ≥ 0), ``tol, thr, scale`` (reals; ``scale`` =
    2^(emax+1) / ``thr``, a power of two), ``stop_when_fated`` (bool); outputs ``rec_z, rec_T``
    (n, R) with R ≥ nsteps // every + 1 (any R when ``every`` = 0), ``out_z, out_T`` (final
    state), ``div_at, conv_at`` (int64, −1 = never). See the module docstring.

    Examples
    --------
    >>> import numpy as np
    >>> n = 1
    >>> rz, rT = np.empty((n, 3)), np.empty((n, 3))
    >>> fz, fT, d, c = np.empty(n), np.empty(n), np.empty(n, np.int64), np.empty(n, np.int64)
    >>> two_param_batch(np.array([0.1]), np.array([1.5]), np.array([-0.1]), np.zeros(1), 2, 1,
    ...                 1e-13, 2.0**498, 2.0**526, False, rz, rT, fz, fT, d, c)
    >>> bool(rz[0, 2] == fz[0]), int(d[0])
    (True, -1)
    >>> two_param_batch(np.array([0.1]), np.array([1.5]), np.array([-0.1]), np.zeros(1), 2, 1,
    ...                 1e-13, 2.0**498, 2.0**526, False, np.empty((n, 1)), rT, fz, fT, d, c)
    Traceback (most recent call last):
    ...
    ValueError: rec_z must have at least nsteps // every + 1 = 3 columns; got shape (1, 1)
    """
    nsteps, every = _check_pair(z0, T0, lam, E, nsteps, every, tol, thr, scale, rec_z, rec_T, out_z, out_T,
                                div_at, conv_at, ("z0", "T0", "lam", "E", "rec_z", "rec_T", "out_z", "out_T"))
    dt = z0.dtype.type
    _pair_run(0, z0, T0, lam, E, nsteps, every, dt(tol), dt(thr), dt(scale), bool(stop_when_fated),
              rec_z, rec_T, out_z, out_T, div_at, conv_at)


def linear_batch(theta0, zeros, lam, unused, nsteps, every, tol, thr, scale, stop_when_fated,
                 rec_theta, rec_zero, out_theta, out_zero, div_at, conv_at):
    """Iterate the linear map θ̃' = (1 − λ) θ̃ (Eq. 16); same protocol and checks as
    :func:`two_param_batch` with the second state component identically 0."""
    nsteps, every = _check_pair(theta0, zeros, lam, unused, nsteps, every, tol, thr, scale, rec_theta, rec_zero,
                                out_theta, out_zero, div_at, conv_at,
                                ("theta0", "zeros", "lam", "unused", "rec_theta", "rec_zero", "out_theta",
                                 "out_zero"))
    dt = theta0.dtype.type
    _pair_run(1, theta0, zeros, lam, unused, nsteps, every, dt(tol), dt(thr), dt(scale), bool(stop_when_fated),
              rec_theta, rec_zero, out_theta, out_zero, div_at, conv_at)


def hierarchy_batch(z0, w0, q, nsteps, every, tol, thr, stop_when_fated,
                    rec_z, rec_T, rec_w, out_z, out_w, div_at, conv_at):
    """Iterate the general-P hierarchy (Eq. 10-11) for n trajectories; checked.

    ``z0`` (n,), ``w0`` and ``q`` (n, P); ``rec_z, rec_T`` (n, R), ``rec_w`` (n, R, P) or
    (n, R, 0) to skip the weights, with R ≥ nsteps // every + 1 when ``every`` > 0;
    ``out_z`` (n,), ``out_w`` (n, P); ``div_at, conv_at`` (n,) int64. One float dtype.

    Examples
    --------
    >>> import numpy as np
    >>> rz, rT, rw = np.empty((1, 2)), np.empty((1, 2)), np.empty((1, 2, 2))
    >>> fz, fw, d, c = np.empty(1), np.empty((1, 2)), np.empty(1, np.int64), np.empty(1, np.int64)
    >>> hierarchy_batch(np.array([0.1]), np.array([[0.5, 0.5]]), np.array([[1.0, -0.5]]), 1, 1, 1e-13,
    ...                 2.0**498, False, rz, rT, rw, fz, fw, d, c)
    >>> round(float(fz[0]), 12)
    0.00125
    """
    z0 = _arr("z0", z0, 1)
    n, dt = z0.shape[0], z0.dtype
    w0 = _arr("w0", w0, 2, dtype=dt, shape=(n, None))
    P = w0.shape[1]
    _arr("q", q, 2, dtype=dt, shape=(n, P))
    nsteps = _count("nsteps", nsteps, 0, MAX_NSTEPS)
    every = _count("every", every, 0, MAX_NSTEPS)
    _real("tol", tol)
    _real("thr", thr)
    R = _records(nsteps, every)
    for nm, a in (("rec_z", rec_z), ("rec_T", rec_T)):
        _arr(nm, a, 2, dtype=dt, shape=(n, None), out=True)
        if a.shape[1] < R:
            raise ValueError(f"{nm} must have at least nsteps // every + 1 = {R} columns; got shape {a.shape}")
    _arr("rec_w", rec_w, 3, dtype=dt, shape=(n, None, None), out=True)
    if rec_w.shape[2] not in (0, P) or (rec_w.shape[2] == P and rec_w.shape[1] < R):
        raise ValueError(f"rec_w must have shape (n, >= {R}, {P}) or (n, *, 0); got {rec_w.shape}")
    _arr("out_z", out_z, 1, dtype=dt, shape=(n,), out=True)
    _arr("out_w", out_w, 2, dtype=dt, shape=(n, P), out=True)
    for nm, a in (("div_at", div_at), ("conv_at", conv_at)):
        _arr(nm, a, 1, shape=(n,), out=True, kind="int")
    _hierarchy_batch(z0, w0, q, nsteps, every, dt.type(tol), dt.type(thr), bool(stop_when_fated),
                     rec_z, rec_T, rec_w, out_z, out_w, div_at, conv_at)


def one_datapoint_batch(theta0, Q, E, eta, nsteps, every, tol, thr, stop_when_fated,
                        rec_theta, rec_z, rec_T, out_theta, out_z, out_T, div_at, conv_at, zthr=None):
    """GD in parameter space (Eq. 9) for n trajectories sharing one symmetric Q; checked.

    Divergence: non-finite state, ``T ≥ thr`` or ``|z̃| ≥ zthr[i]`` (``zthr`` (n,), default
    ``thr`` for every member; :func:`eosdyn.toy.one_datapoint` lowers it so that the loss
    ½ (z̃/η)² stays representable).

    ``theta0`` (n, P), ``Q`` (P, P), ``E, eta`` (n,); records ``rec_theta`` (n, R, P),
    ``rec_z``, ``rec_T`` (n, R) with R ≥ nsteps // every + 1 when ``every`` > 0; final
    ``out_theta`` (n, P), ``out_z, out_T`` (n,); ``div_at, conv_at`` (n,) int64. One float dtype.

    Examples
    --------
    >>> import numpy as np
    >>> e1, e2 = np.empty((1, 0)), np.empty((1, 0, 2))
    >>> fth, fz, fT = np.empty((1, 2)), np.empty(1), np.empty(1)
    >>> d, c = np.empty(1, np.int64), np.empty(1, np.int64)
    >>> one_datapoint_batch(np.array([[1.0, 0.5]]), np.eye(2), np.zeros(1), np.array([0.5]), 1, 0, 1e-13,
    ...                     2.0**498, False, e2, e1, e1, fth, fz, fT, d, c)
    >>> fth.tolist()
    [[0.6875, 0.34375]]
    """
    theta0 = _arr("theta0", theta0, 2)
    (n, P), dt = theta0.shape, theta0.dtype
    _arr("Q", Q, 2, dtype=dt, shape=(P, P))
    _arr("E", E, 1, dtype=dt, shape=(n,))
    _arr("eta", eta, 1, dtype=dt, shape=(n,))
    nsteps = _count("nsteps", nsteps, 0, MAX_NSTEPS)
    every = _count("every", every, 0, MAX_NSTEPS)
    _real("tol", tol)
    _real("thr", thr)
    R = _records(nsteps, every)
    _arr("rec_theta", rec_theta, 3, dtype=dt, shape=(n, None, P), out=True)
    for nm, a in (("rec_theta", rec_theta), ("rec_z", rec_z), ("rec_T", rec_T)):
        if nm != "rec_theta":
            _arr(nm, a, 2, dtype=dt, shape=(n, None), out=True)
        if a.shape[1] < R:
            raise ValueError(f"{nm} must have at least nsteps // every + 1 = {R} rows per trajectory; "
                             f"got shape {a.shape}")
    _arr("out_theta", out_theta, 2, dtype=dt, shape=(n, P), out=True)
    _arr("out_z", out_z, 1, dtype=dt, shape=(n,), out=True)
    _arr("out_T", out_T, 1, dtype=dt, shape=(n,), out=True)
    for nm, a in (("div_at", div_at), ("conv_at", conv_at)):
        _arr(nm, a, 1, shape=(n,), out=True, kind="int")
    if zthr is None:
        zthr = np.full(n, thr, dt)
    _arr("zthr", zthr, 1, dtype=dt, shape=(n,))
    _one_datapoint_batch(theta0, Q, E, eta, zthr, nsteps, every, dt.type(tol), dt.type(thr), bool(stop_when_fated),
                         rec_theta, rec_z, rec_T, out_theta, out_z, out_T, div_at, conv_at)
