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

The scalar step functions :func:`two_param_step`, :func:`two_param_rhs`,
:func:`linear_step` and :func:`uv_step` are numba ``njit`` functions of scalars that also work on NumPy arrays
(array expressions, broadcast like NumPy), so theory code and tests can call them directly.

Two batch kernels serve every map, one per state kind (:mod:`eosdyn.drivers` calls them):
:func:`pair_batch` for maps on a scalar pair (x, y) (``kind`` :data:`TWO_PARAM`, :data:`LINEAR`:
a one-component map leaves y at 0, :data:`UV`: the uv model's exact reduction (z, λ)) and :func:`vector_batch` for maps on a vector state
(``kind`` :data:`HIERARCHY`, :data:`ONE_DATAPOINT`). A new scalar map is a step function here
and one line in the dispatch of its kind (``_pair_step``), so the kernels stay cached.

Every kernel that indexes arrays is private (``_name``): it trusts its caller's shapes and
would read or write out of bounds otherwise. The public names (:func:`hierarchy_step`,
:func:`hierarchy_rhs`, :func:`one_datapoint_observe`, :func:`pair_batch`, ...) are thin
Python wrappers that check shapes, dtypes, contiguity and writeability and raise
``ValueError`` naming the argument before calling the kernel.

The batch kernels iterate many independent trajectories in parallel (``prange``) on plain
contiguous arrays and write into preallocated outputs; they share one protocol:

* ``nsteps`` map steps; ``every`` > 0 records steps 0, every, 2·every, ... into
  row ``t // every`` of the records (``every`` = 0: record nothing);
* ``div_at[i]``: first step at which the loss exceeds ``diverge_loss``, the state is not
  finite or abs(T) reaches the guard ``thr`` (−1: never); ``conv_at[i]``: first step with
  loss < ``tol`` (−1: never). The loss is ½ x² (pair maps), ½ z̃² (hierarchy) or ½ z² of the
  raw residual (parameter space). Diverged trajectories keep being iterated (their state
  becomes inf/NaN); the caller masks them with NaN. The state at ``div_at`` and at
  ``conv_at`` is returned as well (the member's final values when it stops there);
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
def linear_step(theta, lam):
    """One GD step of linear least squares along one eigendirection (Eq. 16): θ̃' = (1 − λ) θ̃."""
    return (1.0 - lam) * theta


@nb.njit(cache=True, fastmath=False, inline="always")
def uv_step(z, lam, eta, y, n):
    """One GD step of the uv model (Lewkowycz et al. 2020) in its exact reduction (z, λ).

    f(u, v) = uᵀv/√n, residual z = f − y, NTK eigenvalue λ = (‖u‖² + ‖v‖²)/n; with f = z + y,
    z' = z − η z λ + η² z² f / n and λ' = λ − 4 η z f / n + η² z² λ / n. Returns ``(z', λ')``.
    """
    f = z + y
    e = eta * z
    g = e * e / n
    return z - e * lam + g * f, lam - 4.0 * e * f / n + g * lam


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
    z, _ = _one_datapoint_observe(theta, Q, E, eta, out)
    for i in range(theta.shape[0]):
        out[i] *= -z


# --------------------------------------------------------------------------- batch kernels
#: map kinds of the scalar-pair driver (:func:`pair_batch`)
TWO_PARAM, LINEAR, UV = 0, 1, 2
#: map kinds of the vector driver (:func:`vector_batch`)
HIERARCHY, ONE_DATAPOINT = 0, 1


@nb.njit(cache=True, fastmath=False, inline="always")
def _pair_step(kind, x, y, p, r, q):
    """The pair maps by ``kind`` (a new scalar map: its step function and one line here)."""
    if kind == TWO_PARAM:
        return two_param_step(x, y, p, r)
    if kind == UV:
        return uv_step(x, y, p, r, q)
    return linear_step(x, p), y


@nb.njit(cache=True, fastmath=False, inline="always")
def _diverged(x, y, dl, thr):
    """Exact divergence test of the pair maps: loss ½ x² > ``dl``, or |y| ≥ ``thr`` / non-finite."""
    return not ((0.5 * x * x <= dl) & (abs(y) < thr))


@nb.njit(cache=True, fastmath=False, inline="always")
def _pair_loop(kind, x0, y0, p, r, q, nsteps, every, tol, tol_hi, dl, xlo, thr, scale, stop_when_fated,
               rec_x, rec_y, out, div_at, conv_at):
    """Batch driver of every map on a scalar pair ``(x, y)`` with three parameters per trajectory.

    Lanes of a block live in rows of one small 2-D array (so LLVM vectorises the lane loop);
    the per-step fate checks are two branch-free accumulators: one fires once ``|x| ≥ xlo``
    (``xlo`` just below √(2 ``dl``), so it fires whenever the loss can exceed ``dl``) or ``y·s``
    overflows (``|y| ≥ thr`` with ``thr · s = 2^(emax+1)``, or non-finite), the other counts
    steps with ``|x| < tol_hi`` (just above √(2 ``tol``)). Every ``CHECK`` steps a lane whose
    accumulator fired is re-run from the checkpoint with the exact tests (``½ x² > dl`` or the
    ``y`` guard; ``½ x² < tol``), so fates are exact and results are bit-identical to a plain
    step-by-step loop. ``out`` (6, n) receives the final ``(x, y)`` and the state at ``div_at``
    and at ``conv_at``. It is inlined into one parallel kernel per map (:data:`_PAIR_RUNS`) with
    ``kind`` a constant, so each map's loop holds only its own step and a map that ignores ``q``
    never loads it (one shared kernel with a runtime ``kind`` and three parameters made the
    two-parameter maps about 25 % slower).
    """
    n = x0.shape[0]
    nblocks = (n + LANES - 1) // LANES
    for b in nb.prange(nblocks):
        lo = b * LANES
        hi = min(n, lo + LANES)
        m = hi - lo
        # rows: 0 x, 1 y, 2 p, 3 r, 4 divergence accumulator, 5 count of |x| < tol_hi, 6/7 checkpoint, 8 q
        S = np.zeros((9, LANES), x0.dtype)
        tmp = np.zeros(2, x0.dtype)
        buf = np.empty((2, CHECK, LANES), x0.dtype)
        dv = np.full(LANES, _NEVER, np.int64)
        cv = np.full(LANES, _NEVER, np.int64)
        for j in range(m):
            S[0, j] = x0[lo + j]
            S[1, j] = y0[lo + j]
            S[2, j] = p[lo + j]
            S[3, j] = r[lo + j]
            S[8, j] = q[lo + j]
            if _diverged(S[0, j], S[1, j], dl, thr):
                dv[j] = 0
                out[2, lo + j] = S[0, j]
                out[3, lo + j] = S[1, j]
            if 0.5 * S[0, j] * S[0, j] < tol:
                cv[j] = 0
                out[4, lo + j] = S[0, j]
                out[5, lo + j] = S[1, j]
            if every > 0:
                rec_x[lo + j, 0] = S[0, j]
                rec_y[lo + j, 0] = S[1, j]
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
                    xn, yn = _pair_step(kind, S[0, j], S[1, j], S[2, j], S[3, j], S[8, j])
                    S[0, j] = xn
                    S[1, j] = yn
                    S[4, j] += (S[1, j] * scale) * 0.0 + (0.0 if abs(S[0, j]) < xlo else 1.0)
                    S[5, j] += 1.0 if abs(S[0, j]) < tol_hi else 0.0
                if every > 0 and t % every == 0:
                    for j in range(LANES):
                        buf[0, nrec, j] = S[0, j]
                        buf[1, nrec, j] = S[1, j]
                    nrec += 1
            for j in range(m):
                for k in range(nrec):
                    rec_x[lo + j, row0 + k] = buf[0, k, j]
                    rec_y[lo + j, row0 + k] = buf[1, k, j]
            # exact fates of the lanes whose accumulators fired in (t0, t1]
            for j in range(m):
                need_d = dv[j] == _NEVER and not (S[4, j] == 0.0)
                need_c = cv[j] == _NEVER and S[5, j] > 0.0
                if need_d or need_c:
                    xc = S[6, j]
                    yc = S[7, j]
                    for t in range(t0 + 1, t1 + 1):
                        xn, yn = _pair_step(kind, xc, yc, S[2, j], S[3, j], S[8, j])
                        tmp[0] = xn
                        tmp[1] = yn
                        xc = tmp[0]
                        yc = tmp[1]
                        if need_d and _diverged(xc, yc, dl, thr):
                            dv[j] = t
                            out[2, lo + j] = xc
                            out[3, lo + j] = yc
                            need_d = False
                        if need_c and 0.5 * xc * xc < tol:
                            cv[j] = t
                            out[4, lo + j] = xc
                            out[5, lo + j] = yc
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
            out[0, lo + j] = S[0, j]
            out[1, lo + j] = S[1, j]
            div_at[lo + j] = -1 if dv[j] == _NEVER else dv[j]
            conv_at[lo + j] = -1 if cv[j] == _NEVER else cv[j]


@nb.njit(parallel=True, cache=True, fastmath=False)
def _pair_run_two_param(x0, y0, p, r, q, nsteps, every, tol, tol_hi, dl, xlo, thr, scale, stop_when_fated,
                        rec_x, rec_y, out, div_at, conv_at):
    """:func:`_pair_loop` for :data:`TWO_PARAM`."""
    _pair_loop(TWO_PARAM, x0, y0, p, r, q, nsteps, every, tol, tol_hi, dl, xlo, thr, scale, stop_when_fated,
               rec_x, rec_y, out, div_at, conv_at)


@nb.njit(parallel=True, cache=True, fastmath=False)
def _pair_run_linear(x0, y0, p, r, q, nsteps, every, tol, tol_hi, dl, xlo, thr, scale, stop_when_fated,
                     rec_x, rec_y, out, div_at, conv_at):
    """:func:`_pair_loop` for :data:`LINEAR`."""
    _pair_loop(LINEAR, x0, y0, p, r, q, nsteps, every, tol, tol_hi, dl, xlo, thr, scale, stop_when_fated,
               rec_x, rec_y, out, div_at, conv_at)


@nb.njit(parallel=True, cache=True, fastmath=False)
def _pair_run_uv(x0, y0, p, r, q, nsteps, every, tol, tol_hi, dl, xlo, thr, scale, stop_when_fated,
                 rec_x, rec_y, out, div_at, conv_at):
    """:func:`_pair_loop` for :data:`UV`."""
    _pair_loop(UV, x0, y0, p, r, q, nsteps, every, tol, tol_hi, dl, xlo, thr, scale, stop_when_fated,
               rec_x, rec_y, out, div_at, conv_at)


#: the parallel pair kernel of each map kind (index: ``kind``)
_PAIR_RUNS = (_pair_run_two_param, _pair_run_linear, _pair_run_uv)


@nb.njit(cache=True, fastmath=False)
def _vector_observe(kind, y, prm, shared, g):
    """Residual z̃, sharpness T(0) and loss of a vector state ``y`` (writes work into ``g``)."""
    if kind == HIERARCHY:  # y = (z̃, w_1..w_P), prm = q; loss ½ z̃²
        z = y[0]
        T = 0.0
        for i in range(1, y.shape[0]):
            T += y[i]
        return z, T, 0.5 * z * z
    # ONE_DATAPOINT: y = θ, prm = (E, η), shared = Q; loss ½ z² of the raw residual z = z̃/η
    z, T = _one_datapoint_observe(y, shared, prm[0], prm[1], g)
    zr = z / prm[1]
    return z, T, 0.5 * zr * zr


@nb.njit(cache=True, fastmath=False)
def _vector_step(kind, y, prm, shared, g, z):
    """One GD step of a vector state in place (``z``, ``g``: from the last observation)."""
    if kind == HIERARCHY:
        T0, T1 = _hierarchy_moments(y[1:], prm)
        y[0] = z - z * T0 + 0.5 * z * z * T1
        for i in range(1, y.shape[0]):
            f = 1.0 - z * prm[i - 1]
            y[i] = y[i] * (f * f)
    else:
        _one_datapoint_update(y, g, z)


@nb.njit(parallel=True, cache=True, fastmath=False)
def _vector_run(kind, y0, prm, shared, nsteps, every, tol, dl, thr, stop_when_fated,
                rec_y, rec_o, out_y, out_o, div_at, conv_at):
    """Batch driver of every map on a vector state: ``y0`` (n, m), ``prm`` (n, k) per member,
    ``shared`` (one array for all). Records ``rec_y`` (n, R, m) and ``rec_o`` (3, n, R) (z̃, T,
    loss); ``out_y`` (3, n, m) and ``out_o`` (3, 3, n): final, at ``div_at``, at ``conv_at``.
    Divergence: loss > ``dl`` or |T| ≥ ``thr`` or non-finite; convergence: loss < ``tol``."""
    n, m = y0.shape
    for i in nb.prange(n):
        y = y0[i].copy()
        g = np.empty(m, y0.dtype)
        z, T, L = _vector_observe(kind, y, prm[i], shared, g)
        dv = _NEVER
        cv = _NEVER
        for t in range(0, nsteps + 1):
            if t > 0:
                _vector_step(kind, y, prm[i], shared, g, z)
                z, T, L = _vector_observe(kind, y, prm[i], shared, g)
            if dv == _NEVER and not ((L <= dl) & (abs(T) < thr)):
                dv = t
                _vector_store(out_y, out_o, 1, i, y, z, T, L)
            if cv == _NEVER and L < tol:
                cv = t
                _vector_store(out_y, out_o, 2, i, y, z, T, L)
            if every > 0 and t % every == 0:
                row = t // every
                rec_o[0, i, row] = z
                rec_o[1, i, row] = T
                rec_o[2, i, row] = L
                for k in range(m):
                    rec_y[i, row, k] = y[k]
            if stop_when_fated and (dv != _NEVER or cv != _NEVER):
                break
        _vector_store(out_y, out_o, 0, i, y, z, T, L)
        div_at[i] = -1 if dv == _NEVER else dv
        conv_at[i] = -1 if cv == _NEVER else cv


@nb.njit(cache=True, fastmath=False, inline="always")
def _vector_store(out_y, out_o, which, i, y, z, T, L):
    for k in range(y.shape[0]):
        out_y[which, i, k] = y[k]
    out_o[which, 0, i] = z
    out_o[which, 1, i] = T
    out_o[which, 2, i] = L


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
    y = np.concatenate([np.array([z], w.dtype), w])
    _vector_step(HIERARCHY, y, q, np.empty((0, 0), w.dtype), y, z)
    w[:] = y[1:]
    return float(y[0]), float(_hierarchy_moments(w, q)[0])


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




def _fate_thresholds(dt, tol, dl, thr):
    """Kernel thresholds of the pair driver: the exact ones in ``dt`` and the fast-path bounds
    ``tol_hi`` ≥ √(2 tol), ``xlo`` ≤ √(2 dl) and the overflow scale of the ``y`` guard."""
    f = np.finfo(dt)
    tol_hi = np.sqrt(2.0 * float(tol)) * (1.0 + 1e-6) if tol > 0 else 0.0
    xlo = np.sqrt(2.0 * float(dl)) * (1.0 - 1e-6)
    scale = 2.0 ** (f.maxexp - np.log2(float(thr)))
    return dt.type(tol), dt.type(tol_hi), dt.type(min(float(dl), float(f.max))), dt.type(xlo), dt.type(thr), \
        dt.type(scale)


def pair_batch(kind, x0, y0, p, r, nsteps, every, tol, diverge_loss, thr, stop_when_fated,
               rec_x, rec_y, out, div_at, conv_at, q=None):
    """Iterate a scalar-pair map (``kind``: :data:`TWO_PARAM`, :data:`LINEAR` or :data:`UV`) for
    many trajectories (prange over blocks of ``LANES``); checked.

    Parameters (contiguous arrays of length n and one float dtype unless stated): state ``x0,
    y0`` (``y0`` zeros for the one-component linear map), parameters ``p, r`` (λ and Ẽ for
    :func:`two_param_step`, λ for :func:`linear_step`, η and y for :func:`uv_step`) and the
    optional third parameter ``q`` (n for :func:`uv_step`; None: zeros, unused by the other
    maps); ``nsteps, every`` (int ≥ 0); ``tol``,
    ``diverge_loss`` on the loss ½ x²; ``thr`` (a power of two) bounds ``|y|``;
    ``stop_when_fated`` (bool); outputs ``rec_x, rec_y`` (n, R) with R ≥ nsteps // every + 1
    (any R when ``every`` = 0), ``out`` (6, n): final x, y, then x, y at ``div_at`` and at
    ``conv_at``; ``div_at, conv_at`` (int64, −1 = never). See the module docstring.

    Examples
    --------
    >>> import numpy as np
    >>> rx, ry, out = np.empty((1, 3)), np.empty((1, 3)), np.full((6, 1), np.nan)
    >>> d, c = np.empty(1, np.int64), np.empty(1, np.int64)
    >>> pair_batch(TWO_PARAM, np.array([0.1]), np.array([1.5]), np.array([-0.1]), np.zeros(1), 2, 1,
    ...            5e-27, 1e200, 2.0**498, False, rx, ry, out, d, c)
    >>> bool(rx[0, 2] == out[0, 0]), int(d[0])
    (True, -1)
    >>> pair_batch(TWO_PARAM, np.array([0.1]), np.array([1.5]), np.array([-0.1]), np.zeros(1), 2, 1,
    ...            5e-27, 1e200, 2.0**498, False, np.empty((1, 1)), ry, out, d, c)
    Traceback (most recent call last):
    ...
    ValueError: rec_x must have at least nsteps // every + 1 = 3 columns; got shape (1, 1)
    """
    kind = _count("kind", kind, 0, 2)
    x0 = _arr("x0", x0, 1)
    n, dt = x0.shape[0], x0.dtype
    if q is None:
        q = np.zeros(n, dt)
    for nm, a in (("y0", y0), ("p", p), ("r", r), ("q", q)):
        _arr(nm, a, 1, dtype=dt, shape=(n,))
    nsteps = _count("nsteps", nsteps, 0, MAX_NSTEPS)
    every = _count("every", every, 0, MAX_NSTEPS)
    for nm, v in (("tol", tol), ("diverge_loss", diverge_loss), ("thr", thr)):
        _real(nm, v)
    R = _records(nsteps, every)
    for nm, a in (("rec_x", rec_x), ("rec_y", rec_y)):
        _arr(nm, a, 2, dtype=dt, shape=(n, None), out=True)
        if a.shape[1] < R:
            raise ValueError(f"{nm} must have at least nsteps // every + 1 = {R} columns; got shape {a.shape}")
    _arr("out", out, 2, dtype=dt, shape=(6, n), out=True)
    for nm, a in (("div_at", div_at), ("conv_at", conv_at)):
        _arr(nm, a, 1, shape=(n,), out=True, kind="int")
    _PAIR_RUNS[kind](x0, y0, p, r, q, nsteps, every, *_fate_thresholds(dt, tol, diverge_loss, thr),
              bool(stop_when_fated), rec_x, rec_y, out, div_at, conv_at)


def vector_batch(kind, y0, prm, shared, nsteps, every, tol, diverge_loss, thr, stop_when_fated,
                 rec_y, rec_o, out_y, out_o, div_at, conv_at):
    """Iterate a map on a vector state (``kind``: :data:`HIERARCHY`, state (z̃, w_1..w_P),
    ``prm`` = q per member; :data:`ONE_DATAPOINT`, state θ, ``prm`` = (E, η) per member,
    ``shared`` = Q) for n trajectories (prange over members); checked.

    ``y0`` (n, m), ``prm`` (n, k), ``shared`` (m, m) (Q; (0, 0) for the hierarchy); records
    ``rec_y`` (n, R, m) and ``rec_o`` (3, n, R) (z̃, T, loss) with R ≥ nsteps // every + 1 when
    ``every`` > 0; ``out_y`` (3, n, m) and ``out_o`` (3, 3, n): final, at ``div_at``, at
    ``conv_at``; ``div_at, conv_at`` (n,) int64. Divergence: loss > ``diverge_loss``,
    |T| ≥ ``thr`` or non-finite; convergence: loss < ``tol``.

    Examples
    --------
    >>> import numpy as np
    >>> ry, ro = np.empty((1, 2, 3)), np.empty((3, 1, 2))
    >>> oy, oo = np.full((3, 1, 3), np.nan), np.full((3, 3, 1), np.nan)
    >>> d, c = np.empty(1, np.int64), np.empty(1, np.int64)
    >>> vector_batch(HIERARCHY, np.array([[0.1, 0.5, 0.5]]), np.array([[1.0, -0.5]]), np.empty((0, 0)), 1, 1,
    ...              5e-27, 1e200, 2.0**498, False, ry, ro, oy, oo, d, c)
    >>> round(float(oy[0, 0, 0]), 12), oy[0, 0, 1:].tolist()
    (0.00125, [0.405, 0.55125])
    """
    kind = _count("kind", kind, 0, 1)
    y0 = _arr("y0", y0, 2)
    (n, m), dt = y0.shape, y0.dtype
    _arr("prm", prm, 2, dtype=dt, shape=(n, None))
    if kind == HIERARCHY and prm.shape[1] != m - 1:
        raise ValueError(f"prm (q) must have shape ({n}, {m - 1}); got {prm.shape}")
    if kind == ONE_DATAPOINT:
        _arr("shared", shared, 2, dtype=dt, shape=(m, m))
        if prm.shape[1] != 2:
            raise ValueError(f"prm (E, eta) must have shape ({n}, 2); got {prm.shape}")
    else:
        _arr("shared", shared, 2, dtype=dt)
    nsteps = _count("nsteps", nsteps, 0, MAX_NSTEPS)
    every = _count("every", every, 0, MAX_NSTEPS)
    for nm, v in (("tol", tol), ("diverge_loss", diverge_loss), ("thr", thr)):
        _real(nm, v)
    R = _records(nsteps, every)
    _arr("rec_y", rec_y, 3, dtype=dt, shape=(n, None, m), out=True)
    _arr("rec_o", rec_o, 3, dtype=dt, shape=(3, n, None), out=True)
    if every > 0 and (rec_y.shape[1] < R or rec_o.shape[2] < R):
        raise ValueError(f"rec_y and rec_o must hold at least nsteps // every + 1 = {R} records per trajectory; "
                         f"got shapes {rec_y.shape}, {rec_o.shape}")
    _arr("out_y", out_y, 3, dtype=dt, shape=(3, n, m), out=True)
    _arr("out_o", out_o, 3, dtype=dt, shape=(3, 3, n), out=True)
    for nm, a in (("div_at", div_at), ("conv_at", conv_at)):
        _arr(nm, a, 1, shape=(n,), out=True, kind="int")
    t, _, d, _, th, _ = _fate_thresholds(dt, tol, diverge_loss, thr)
    _vector_run(kind, y0, prm, shared, nsteps, every, t, d, th, bool(stop_when_fated),
                rec_y, rec_o, out_y, out_o, div_at, conv_at)
