"""Toy models of Section 3: one datapoint (D = 1) with a quadratic model, as labelled datasets.

Gradient descent (maps) and gradient flows of

* :func:`one_datapoint` — GD in parameter space θ ∈ R^P (Eq. 4, 9), any symmetric Q;
* :func:`hierarchy` — the rescaled (z̃, T(k)) dynamics (Eq. 10-11) closed in Q's eigenbasis;
* :func:`two_param` — the P = 2 map in (z̃, T) (Eq. 14-15 with ``eps``, Eq. 65-66 with ``a``);
* :func:`catapult` — the case λ = −1 (Eq. 12-13);
* :func:`linear` — GD on linear least squares along one eigendirection (Eq. 16);
* :func:`one_datapoint_flow`, :func:`hierarchy_flow`, :func:`two_param_flow` — gradient flows
  (Eq. 5 and Eq. 8) with :func:`scipy.integrate.solve_ivp`.

Every parameter may be a scalar (stored as a 0-d coordinate), a 1-D array (a dim named after
the parameter) or an :class:`xarray.DataArray` (its own dims); all dims broadcast. The output
has one dim per array-valued parameter followed by ``step`` (GD, step 0 = initial state) or
``time`` (flows). See ``docs/toy.md`` for the dataset layout and the options.

Divergence is data: a trajectory diverges at the first step where its state is not finite or
``|z̃|`` or ``|T|`` reaches 2^498 ≈ 8.2e149 (float64; 2^64 ≈ 1.8e19 for float32; for
:func:`one_datapoint` also once ``|z̃|`` reaches η·√max/2, where the loss ½ (z̃/η)² would
overflow); its recorded state is NaN afterwards and ``diverged``/``diverged_at``/``status``
say so. Flows flag members the same way (``status`` ``diverged`` or ``failed``, ``t_stop``).

Options are checked before any allocation: ``steps`` is an integer in [0, 2^62] whose
recorded output must fit the memory limit (16 GiB or the memory available) and whose work
(members × steps) is at most 1e13; ``dtype`` is float64 or float32, and for float32 every
input must be representable (no finite value overflowing to inf, no non-zero value
underflowing to 0), else a ``ValueError`` names the parameter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .._validate import check_range
from ..kernels import maps
from ..conventions import STATUS_VALUES
from ..kernels.integrate import check_flow_options, solve_batch
from . import _toy_common as C

__all__ = ["two_param", "catapult", "linear", "hierarchy", "one_datapoint",
           "two_param_flow", "hierarchy_flow", "one_datapoint_flow"]

C.alias_module("eosdyn.toy", __name__)

_REF = "Agarwala, Pedregosa & Pennington (2023)"


# --------------------------------------------------------------------------- P = 2 map
def _lam_of(eps, a):
    """Validate ``eps`` xor ``a`` and return (name, value, λ) with λ = −ε resp. −1/a."""
    if (eps is None) == (a is None):
        raise ValueError("give exactly one of eps (in (0, 1]) and a (|a| >= 1, a != -1)")
    if eps is not None:
        check_range("eps", eps, 0.0, 1.0, lo_open=True)
        return "eps", eps, lambda v: -v
    arr = np.asarray(a.values if isinstance(a, xr.DataArray) else a)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"a must be a real number or array of real numbers; got {a!r}")
    arr = arr.astype(float)
    bad = ~(np.isfinite(arr) & ((arr >= 1.0) | (arr < -1.0)))
    if bad.any():
        raise ValueError("a must be finite with a >= 1 or a < -1 (|a| >= 1; a = -1, i.e. Q = identity, "
                         f"has an empty allowed region); got {float(arr[bad].ravel()[0])!r}")
    return "a", a, lambda v: -1.0 / v


def _check_region(z0, T0, lam, E, which):
    """Allowed region (Eq. 67-68, :func:`eosdyn.theory.allowed_region`): both eigenbasis
    weights of the state must be ≥ 0 (real Jacobian components)."""
    from ..theory.toy import _allowed

    bad = ~_allowed(z0, T0, lam, E)
    if bad.any():
        i = int(np.argmax(bad))
        a = -1.0 / lam[i]
        raise ValueError(
            "z0, T0 must lie in the allowed region of Eq. 67-68 (real Jacobian): with u = 2*z0 + E, "
            "for a >= 1: T0 >= u and T0 >= -u/a; for a < -1: -u/a <= T0 <= u; "
            f"got z0={float(z0[i])!r}, T0={float(T0[i])!r}, E={float(E[i])!r}, a={float(a)!r} "
            f"(from {which})")


def _run_pair(kernel, x0, y0, p, r, *, steps, every, stop, tol, dt):
    """Run a two-component batch kernel with the shared fate/recording protocol (flat arrays)."""
    thr, scale = C.THRESHOLDS[dt]
    n = x0.size
    thr_, scale_, tol_ = dt.type(thr), dt.type(scale), dt.type(tol)
    empty = np.empty((n, 0), dt)

    def fate_kernel():
        d = np.empty(n, np.int64)
        c = np.empty(n, np.int64)
        kernel(x0, y0, p, r, steps, 0, tol_, thr_, scale_, True, empty, empty,
               np.empty(n, dt), np.empty(n, dt), d, c)
        return d, c

    nsteps = C.stop_step(fate_kernel, steps) if stop else steps
    stepc = C.step_coord(nsteps, every)
    R = stepc.size if every else 0
    rx = np.empty((n, R), dt)
    ry = np.empty((n, R), dt)
    fx = np.empty(n, dt)
    fy = np.empty(n, dt)
    d = np.empty(n, np.int64)
    c = np.empty(n, np.int64)
    kernel(x0, y0, p, r, nsteps, every, tol_, thr_, scale_, False, rx, ry, fx, fy, d, c)
    if every == 0:
        rx = C.with_final(x0, fx, nsteps)
        ry = C.with_final(y0, fy, nsteps)
    div = d >= 0
    fx[div] = np.nan
    fy[div] = np.nan
    C.mask_diverged(rx, stepc, d)
    C.mask_diverged(ry, stepc, d)
    return dict(rx=rx, ry=ry, fx=fx, fy=fy, div_at=d, conv_at=c, nsteps=nsteps, step=stepc)


def _two_param_inputs(eps, a, E, z0, T0):
    """Validate the P = 2 map's inputs and flatten them on their broadcast grid.

    Returns ``(name, grid, bdims, bshape, lam, E, z0, T0)`` with flat arrays; ``name`` is
    ``"eps"`` or ``"a"``. Initial conditions outside the allowed region raise ``ValueError``.
    """
    name, value, to_lam = _lam_of(eps, a)
    check_range("E", E)
    check_range("z0", z0)
    check_range("T0", T0)
    grid, bdims, bshape = C.grid_of({name: value, "E": E, "z0": z0, "T0": T0})
    lam = to_lam(C.flat(grid.arrays[name], bdims, bshape))
    Ev = C.flat(grid.arrays["E"], bdims, bshape)
    zv = C.flat(grid.arrays["z0"], bdims, bshape)
    Tv = C.flat(grid.arrays["T0"], bdims, bshape)
    _check_region(zv, Tv, lam, Ev, name)
    return name, grid, bdims, bshape, lam, Ev, zv, Tv


def _two_param_impl(*, eps, a, E, z0, T0, steps, record_every, stop_on_convergence, tol, dtype,
                    model, function, parameters, title, equations):
    steps, every, stop, tol, dt = C.check_options(steps=steps, record_every=record_every,
                                                  stop_on_convergence=stop_on_convergence, tol=tol, dtype=dtype)
    name, grid, bdims, bshape, lam, Ev, zv, Tv = _two_param_inputs(eps, a, E, z0, T0)
    C.check_work(zv.size, steps, every, 2 * dt.itemsize)
    res = _run_pair(maps.two_param_batch, C.representable("z0", zv, dt), C.representable("T0", Tv, dt),
                    C.representable(name, lam, dt), C.representable("E", Ev, dt),
                    steps=steps, every=every, stop=stop, tol=tol, dt=dt)
    coords = C.param_coords(grid, [name, "E", "z0", "T0"])
    lam_da = -grid.arrays[name] if name == "eps" else -1.0 / grid.arrays[name]
    coords["lam"] = xr.Variable(lam_da.dims, np.asarray(lam_da.values, dtype=np.float64))
    f = C.fates(res["div_at"], res["conv_at"], res["nsteps"])
    return C.build_dataset(
        bdims=bdims, bshape=bshape, coords=coords, steps=res["step"],
        trajectories={"z": (res["rx"], ()), "T": (res["ry"], ())},
        per_member={**{k: (v, ()) for k, v in f.items()},
                    "final_z": (res["fx"], ()), "final_T": (res["fy"], ())},
        model=model, title=title, equations=equations, function=function, parameters=parameters,
        attrs={"divergence_threshold": C.THRESHOLDS[dt][0], "tol": tol,
               "stop_on_convergence": int(stop)})


def two_param(*, eps=None, a=None, E=0.0, z0, T0, steps, record_every=1,
              stop_on_convergence=False, tol=1e-13, dtype="float64") -> xr.Dataset:
    """Gradient descent of the two-parameter model in rescaled coordinates (z̃, T).

    Q has eigenvalues {1, λ}; with ``eps`` λ = −ε (Eq. 14-15), with ``a`` λ = −1/a
    (Eq. 65-66). Ẽ is conserved. Iterates

    z̃' − z̃ = −z̃ T + ½ z̃² T(1),   T' − T = −2 z̃ T(1) + z̃² T(2)

    with T(1) = (1+λ) T − λ (2z̃ + Ẽ), T(2) = T + λ(λ+1)(T − 2z̃ − Ẽ).

    Parameters
    ----------
    eps : float, array or DataArray, optional
        ε ∈ (0, 1] (second eigenvalue −ε). Exactly one of ``eps`` and ``a``.
    a : float, array or DataArray, optional
        a = −1/λ with a ≥ 1 or a < −1.
    E : float, array or DataArray, default 0
        Ẽ = η E = T(−1) − 2 z̃ (any real).
    z0, T0 : float, array or DataArray
        Initial z̃₀ and T₀(0) = η λ_max(0); must lie in the allowed region (Eq. 67-68):
        with u = 2 z0 + E, for a ≥ 1: T0 ≥ u and T0 ≥ −u/a; for a < −1: −u/a ≤ T0 ≤ u.
    steps : int
        Number of GD steps (≥ 0); with ``stop_on_convergence`` the maximum.
    record_every : int or None, default 1
        Record steps 0, k, 2k, ...; None records only the initial and final state
        (``step`` = [0, last]).
    stop_on_convergence : bool, default False
        Stop the batch as soon as every member has converged (|z̃| < ``tol``) or diverged.
        Members that converged earlier keep being iterated by the exact map until then.
    tol : float, default 1e-13
        Convergence tolerance on |z̃|.
    dtype : {"float64", "float32"}
        Precision of the state.

    Returns
    -------
    xarray.Dataset
        ``z``, ``T`` on (param dims..., step); ``diverged``, ``diverged_at``, ``converged_at``,
        ``steps_taken``, ``status``, ``final_z``, ``final_T`` per member; coords ``eps``|``a``,
        ``lam``, ``E``, ``z0``, ``T0``.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.two_param(eps=0.1, z0=0.1, T0=[1.5, 1.9], steps=4)
    >>> ds.z.dims
    ('T0', 'step')
    >>> ds.z.sizes["step"]
    5
    """
    params = dict(eps=eps, a=a, E=E, z0=z0, T0=T0, steps=steps, record_every=record_every,
                  stop_on_convergence=stop_on_convergence, tol=tol, dtype=_dtype_name(dtype))
    return _two_param_impl(**params, model="two_param", function="eosdyn.toy.two_param", parameters=params,
                           title="Two-parameter model, GD in rescaled coordinates (z̃, T)",
                           equations=f"Eq. 14-15 / 65-66 (allowed region Eq. 67-68), {_REF}")


def catapult(*, E=0.0, z0, T0, steps, record_every=1, stop_on_convergence=False, tol=1e-13,
             dtype="float64") -> xr.Dataset:
    """The catapult map (Eq. 12-13): the two-parameter model with Q eigenvalues {−1, 1}.

    z̃' − z̃ = −z̃ T + ½ z̃² (2z̃ + Ẽ),   T' − T = −2 z̃ (2z̃ + Ẽ) + z̃² T.

    Same options and output as :func:`two_param` (with ``a`` = 1, λ = −1); the allowed
    region is T0 ≥ |2 z0 + E|. For Ẽ = 0, ΔT = z̃² (T − 4).

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.catapult(z0=0.5, T0=3.0, steps=2)
    >>> float(ds.T.isel(step=1)) < 3.0
    True
    """
    params = dict(E=E, z0=z0, T0=T0, steps=steps, record_every=record_every,
                  stop_on_convergence=stop_on_convergence, tol=tol, dtype=_dtype_name(dtype))
    return _two_param_impl(eps=None, a=1.0, **params, model="catapult", function="eosdyn.toy.catapult",
                           parameters=params, title="Catapult map (Q eigenvalues ±1), GD in (z̃, T)",
                           equations=f"Eq. 12-13, {_REF}")


def _dtype_name(dtype):
    """``dtype`` as a JSON-friendly name for the provenance (left as given if it is no dtype;
    the option check then reports it)."""
    try:
        return np.dtype(dtype).name
    except TypeError:
        return dtype


# --------------------------------------------------------------------------- linear model
def linear(*, lam, theta0, steps, record_every=1, stop_on_convergence=False, tol=1e-13,
           dtype="float64") -> xr.Dataset:
    """GD on linear least squares along one eigendirection (Eq. 16): θ̃_{t+1} = (1 − λ) θ̃_t.

    Parameters
    ----------
    lam : float, array or DataArray
        Rescaled eigenvalue λ (η times the Hessian eigenvalue); any real. Converges iff
        0 < λ < 2; the two-step map is θ̃_{t+2} = (1 − λ)² θ̃_t.
    theta0 : float, array or DataArray
        Initial coordinate θ̃₀.
    steps, record_every, stop_on_convergence, tol, dtype
        As in :func:`two_param`; convergence means |θ̃| < ``tol``.

    Returns
    -------
    xarray.Dataset
        ``theta`` on (param dims..., step), ``final_theta`` and the fate variables.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.linear(lam=1.5, theta0=1.0, steps=2)
    >>> ds.theta.values.tolist()
    [1.0, -0.5, 0.25]
    """
    params = dict(lam=lam, theta0=theta0, steps=steps, record_every=record_every,
                  stop_on_convergence=stop_on_convergence, tol=tol, dtype=_dtype_name(dtype))
    steps, every, stop, tol, dt = C.check_options(steps=steps, record_every=record_every,
                                                  stop_on_convergence=stop_on_convergence, tol=tol, dtype=dtype)
    check_range("lam", lam)
    check_range("theta0", theta0)
    grid, bdims, bshape = C.grid_of({"lam": lam, "theta0": theta0})
    lv = C.flat(grid.arrays["lam"], bdims, bshape)
    th = C.flat(grid.arrays["theta0"], bdims, bshape)
    C.check_work(th.size, steps, every, 2 * dt.itemsize)
    lv, th = C.representable("lam", lv, dt), C.representable("theta0", th, dt)
    zeros = np.zeros_like(th)
    res = _run_pair(maps.linear_batch, th, zeros, lv, zeros, steps=steps, every=every, stop=stop, tol=tol, dt=dt)
    f = C.fates(res["div_at"], res["conv_at"], res["nsteps"])
    return C.build_dataset(
        bdims=bdims, bshape=bshape, coords=C.param_coords(grid, ["lam", "theta0"]), steps=res["step"],
        trajectories={"theta": (res["rx"], ())},
        per_member={**{k: (v, ()) for k, v in f.items()}, "final_theta": (res["fx"], ())},
        model="linear", title="Linear least squares along one eigendirection, GD",
        equations=f"Eq. 16, {_REF}", function="eosdyn.toy.linear", parameters=params,
        attrs={"divergence_threshold": C.THRESHOLDS[dt][0], "tol": tol, "stop_on_convergence": int(stop)})


# --------------------------------------------------------------------------- hierarchy (general P)
def _hierarchy_inputs(q, z0, w0, T0, E):
    """Grid and flat arrays of the hierarchy: returns grid, bdims, bshape, q (n,P), w (n,P), z (n,)."""
    qda = C.as_vector("q", q, "mode")
    check_range("z0", z0)
    if w0 is not None:
        if T0 is not None or E is not None:
            raise ValueError("give either w0 or (T0, E), not both")
        wda = C.as_vector("w0", w0, "mode")
        check_range("w0", wda, 0.0, None)
        grid, bdims, bshape = C.grid_of({"q": qda, "w0": wda, "z0": z0}, vdim="mode")
        qf = C.flat(grid.arrays["q"], bdims, bshape, "mode")
        wf = C.flat(grid.arrays["w0"], bdims, bshape, "mode")
        zf = C.flat(grid.arrays["z0"], bdims, bshape)
        return grid, bdims, bshape, qf, wf, zf, ["z0"]
    if T0 is None:
        raise ValueError("give w0 (weights along 'mode', >= 0) or, for P = 2, T0 and E")
    E = 0.0 if E is None else E
    check_range("T0", T0)
    check_range("E", E)
    if qda.sizes["mode"] != 2:
        raise ValueError(f"T0 and E determine the weights only for P = 2 (q has {qda.sizes['mode']} "
                         "values along 'mode'); give w0 instead")
    grid, bdims, bshape = C.grid_of({"q": qda, "z0": z0, "T0": T0, "E": E}, vdim="mode")
    qf = C.flat(grid.arrays["q"], bdims, bshape, "mode")
    zf = C.flat(grid.arrays["z0"], bdims, bshape)
    Tf = C.flat(grid.arrays["T0"], bdims, bshape)
    Ef = C.flat(grid.arrays["E"], bdims, bshape)
    q1, q2 = qf[:, 0], qf[:, 1]
    if np.any(q1 == 0) or np.any(q2 == 0) or np.any(q1 == q2):
        raise ValueError("q must have two distinct non-zero eigenvalues to derive weights from T0 and E")
    u = 2.0 * zf + Ef
    w1 = (u - Tf / q2) / (1.0 / q1 - 1.0 / q2)
    wf = np.stack([w1, Tf - w1], axis=1)
    if np.any(wf < 0):
        i = int(np.argmax(np.any(wf < 0, axis=1)))
        raise ValueError("z0, T0 must lie in the allowed region (both weights w_i >= 0, Eq. 67-68); "
                         f"got z0={zf[i]!r}, T0={Tf[i]!r}, E={Ef[i]!r}, q={qf[i].tolist()}")
    return grid, bdims, bshape, qf, np.ascontiguousarray(wf), zf, ["z0", "T0", "E"]


def _hierarchy_E(qf, wf, zf):
    """Ẽ = T(−1) − 2 z̃ = Σ_{q_i ≠ 0} w_i / q_i − 2 z̃ (NaN if a zero eigenvalue carries weight)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(qf != 0, wf / np.where(qf != 0, qf, 1.0), np.where(wf > 0, np.nan, 0.0))
    return inv.sum(axis=1) - 2.0 * zf


def _mode_coords(grid, bdims, bshape, qf, names):
    coords = C.param_coords(grid, names)
    qda = grid.arrays["q"]
    coords["q"] = xr.Variable(qda.dims, np.asarray(qda.values, dtype=np.float64))
    coords["mode"] = ("mode", np.arange(qf.shape[1], dtype=np.int64))
    return coords


def hierarchy(*, q, z0, w0=None, T0=None, E=None, steps, record_every=1, stop_on_convergence=False,
              tol=1e-13, dtype="float64") -> xr.Dataset:
    """GD of the rescaled one-datapoint model (Eq. 10-11) for any P, closed in Q's eigenbasis.

    With eigenvalues q_i of Q and weights w_i = η (J·e_i)², T(k) = Σ_i q_i^k w_i. One GD step
    (J ← J (I − η z Q)) maps

    z̃' = z̃ − z̃ T(0) + ½ z̃² T(1),   w_i' = w_i (1 − z̃ q_i)²,

    which reproduces every level T(k)' − T(k) = −z̃ (2 T(k+1) − z̃ T(k+2)) of the hierarchy.

    Parameters
    ----------
    q : array (P,) or DataArray with dim ``mode``
        Eigenvalues of Q (η drops out: they are not rescaled).
    z0 : float, array or DataArray
        Initial z̃₀.
    w0 : array (P,) or DataArray with dim ``mode``, optional
        Initial weights w_i = η (J·e_i)² ≥ 0 (for θ₀ in the eigenbasis, w_i = η q_i² θ_i²).
    T0, E : float, array or DataArray, optional
        Instead of ``w0`` for P = 2: T₀(0) and Ẽ determine the weights (the point must lie
        in the allowed region).
    steps, record_every, stop_on_convergence, tol, dtype
        As in :func:`two_param`.

    Returns
    -------
    xarray.Dataset
        ``z``, ``T`` on (dims..., step), ``w`` on (dims..., step, mode); fates, ``final_z``,
        ``final_T``; coords ``q``, ``mode``, ``z0`` and ``E`` (Ẽ, derived from w0 if not given).

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.hierarchy(q=[1.0, -0.5, 0.2], w0=[0.8, 0.3, 0.4], z0=0.1, steps=3)
    >>> ds.w.dims
    ('step', 'mode')
    """
    params = dict(q=q, z0=z0, w0=w0, T0=T0, E=E, steps=steps, record_every=record_every,
                  stop_on_convergence=stop_on_convergence, tol=tol, dtype=_dtype_name(dtype))
    steps, every, stop, tol, dt = C.check_options(steps=steps, record_every=record_every,
                                                  stop_on_convergence=stop_on_convergence, tol=tol, dtype=dtype)
    grid, bdims, bshape, qf, wf, zf, names = _hierarchy_inputs(q, z0, w0, T0, E)
    n, P = wf.shape
    C.check_work(n, steps, every, (2 + P) * dt.itemsize)
    thr = dt.type(C.THRESHOLDS[dt][0])
    qd = C.representable("q", qf, dt)
    wd = C.representable("w0" if "E" not in names else "T0, E (weights derived from them)", wf, dt)
    zd = C.representable("z0", zf, dt)

    def fate_kernel():
        d = np.empty(n, np.int64)
        c = np.empty(n, np.int64)
        e2 = np.empty((n, 0), dt)
        maps.hierarchy_batch(zd, wd, qd, steps, 0, dt.type(tol), thr, True, e2, e2, np.empty((n, 0, 0), dt),
                             np.empty(n, dt), np.empty((n, P), dt), d, c)
        return d, c

    nsteps = C.stop_step(fate_kernel, steps) if stop else steps
    stepc = C.step_coord(nsteps, every)
    R = stepc.size if every else 0
    rz, rT, rw = np.empty((n, R), dt), np.empty((n, R), dt), np.empty((n, R, P), dt)
    fz, fw = np.empty(n, dt), np.empty((n, P), dt)
    d, c = np.empty(n, np.int64), np.empty(n, np.int64)
    maps.hierarchy_batch(zd, wd, qd, nsteps, every, dt.type(tol), thr, False, rz, rT, rw, fz, fw, d, c)
    fT = fw.sum(axis=1, dtype=dt) if P else np.zeros(n, dt)
    if every == 0:
        rz = C.with_final(zd, fz, nsteps)
        rT = C.with_final(wd.sum(axis=1, dtype=dt), fT, nsteps)
        rw = C.with_final(wd, fw, nsteps)
    for arr in (rz, rT, rw):
        C.mask_diverged(arr, stepc, d)
    div = d >= 0
    fz[div] = np.nan
    fT[div] = np.nan
    coords = _mode_coords(grid, bdims, bshape, qf, names)
    if "E" not in names:
        coords["E"] = xr.Variable(bdims, _hierarchy_E(qf, wf, zf).reshape(bshape))
    f = C.fates(d, c, nsteps)
    return C.build_dataset(
        bdims=bdims, bshape=bshape, coords=coords, steps=stepc,
        trajectories={"z": (rz, ()), "T": (rT, ()), "w": (rw, ("mode",))},
        per_member={**{k: (v, ()) for k, v in f.items()}, "final_z": (fz, ()), "final_T": (fT, ())},
        model="hierarchy", title="One-datapoint model, GD of the rescaled hierarchy in Q's eigenbasis",
        equations=f"Eq. 7, 10-11, {_REF}", function="eosdyn.toy.hierarchy", parameters=params,
        attrs={"divergence_threshold": C.THRESHOLDS[dt][0], "tol": tol, "stop_on_convergence": int(stop)})


# --------------------------------------------------------------------------- parameter space
def _check_Q(Q) -> np.ndarray:
    arr = np.asarray(Q.values if isinstance(Q, xr.DataArray) else Q)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"Q must be a real symmetric P x P matrix or a 1-D array of eigenvalues; got {Q!r}")
    arr = arr.astype(np.float64)
    if arr.ndim == 1 and arr.size:
        arr = np.diag(arr)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.size == 0:
        raise ValueError(f"Q must be a real symmetric P x P matrix (P >= 1) or a 1-D array of eigenvalues; "
                         f"got shape {arr.shape}")
    check_range("Q", arr)
    scale = float(np.abs(arr).max())
    with np.errstate(over="ignore", invalid="ignore"):
        asym = float(np.abs(arr - arr.T).max()) if scale else 0.0
    if not asym <= 1e-12 * scale:
        raise ValueError(f"Q must be symmetric: max |Q - Q.T| <= 1e-12 max |Q| (= {1e-12 * scale:.3g}); "
                         f"got max |Q - Q.T| = {asym:.3g}")
    with np.errstate(over="ignore"):
        sym = 0.5 * arr + 0.5 * arr.T
    return np.ascontiguousarray(sym)


def _datapoint_inputs(Q, theta0, E, eta):
    Qm = _check_Q(Q)
    P = Qm.shape[0]
    tda = C.as_vector("theta0", theta0, "param", extra_dim="init")
    if tda.sizes["param"] != P:
        raise ValueError(f"theta0 must have P = {P} entries along 'param' (Q is {P} x {P}); "
                         f"got {tda.sizes['param']}")
    check_range("E", E)
    check_range("eta", eta, 0.0, None, lo_open=True)
    grid, bdims, bshape = C.grid_of({"theta0": tda, "E": E, "eta": eta}, vdim="param")
    th = C.flat(grid.arrays["theta0"], bdims, bshape, "param")
    Ef = C.flat(grid.arrays["E"], bdims, bshape)
    ef = C.flat(grid.arrays["eta"], bdims, bshape)
    return Qm, grid, bdims, bshape, th, Ef, ef


def _datapoint_coords(grid):
    """Coordinates of the parameter-space datasets; ``E`` here is the unscaled E of Eq. 4."""
    coords = C.param_coords(grid, ["E", "eta"])
    E = coords["E"]
    coords["E"] = xr.Variable(E.dims, np.asarray(E.values, dtype=np.float64),
                              attrs={"long_name": "E of Eq. 4 (unscaled; Ẽ = η E)", "units": "1"})
    return coords


def _Q_variable(Qm):
    return xr.Variable(("param", "param2"), Qm, attrs={"long_name": "matrix Q of the quadratic model (Eq. 4)",
                                                       "units": "1"})


def one_datapoint(*, Q, theta0, E=0.0, eta, steps, record_every=1, stop_on_convergence=False, tol=1e-13,
                  dtype="float64") -> xr.Dataset:
    """Gradient descent in parameter space for the one-datapoint quadratic model (Eq. 4, 9).

    L(θ) = ½ z², z = ½ (θᵀQθ − E), J = θᵀQ; GD: θ_{t+1} = θ_t − η z_t Q θ_t.

    Parameters
    ----------
    Q : array (P, P) or (P,)
        Symmetric matrix, or its eigenvalues (then Q is diagonal).
    theta0 : array (P,), array (n, P) or DataArray with dim ``param``
        Initial parameters; a 2-D array stacks initial conditions along a dim ``init``.
    E : float, array or DataArray, default 0
        The constant E of Eq. 4 (Ẽ = η E; E = 2ŷ for a linear network, App. A.2).
    eta : float, array or DataArray
        Learning rate η > 0.
    steps, record_every, stop_on_convergence, tol, dtype
        As in :func:`two_param`; convergence means |z̃| = η |z| < ``tol``.

    Returns
    -------
    xarray.Dataset
        ``theta`` on (dims..., step, param); ``z`` (= z̃ = η z, comparable with the maps),
        ``T`` (= η J Jᵀ) and ``loss`` (= ½ z², original units) on (dims..., step); fates,
        ``final_z``, ``final_T``; ``Q`` on (param, param2); coords ``E``, ``eta``.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.one_datapoint(Q=[1.0, -0.1], theta0=[1.0, 0.5], E=0.0, eta=0.5, steps=3)
    >>> ds.theta.dims, ds.z.dims
    (('step', 'param'), ('step',))
    """
    params = dict(Q=Q, theta0=theta0, E=E, eta=eta, steps=steps, record_every=record_every,
                  stop_on_convergence=stop_on_convergence, tol=tol, dtype=_dtype_name(dtype))
    steps, every, stop, tol, dt = C.check_options(steps=steps, record_every=record_every,
                                                  stop_on_convergence=stop_on_convergence, tol=tol, dtype=dtype)
    Qm, grid, bdims, bshape, th, Ef, ef = _datapoint_inputs(Q, theta0, E, eta)
    n, P = th.shape
    C.check_work(n, steps, every, (P + 3) * dt.itemsize)
    thr = dt.type(C.THRESHOLDS[dt][0])
    Qd, thd = C.representable("Q", Qm, dt), C.representable("theta0", th, dt)
    Ed, ed = C.representable("E", Ef, dt), C.representable("eta", ef, dt)
    # |z̃| below η·√max/2 keeps the loss ½ (z̃/η)² finite; above it the member diverged
    zthr = np.minimum(float(thr), ed.astype(np.float64) * (0.5 * np.sqrt(float(np.finfo(dt).max)))).astype(dt)

    def run(nsteps, every_, fated, R):
        out = dict(rth=np.empty((n, R, P), dt), rz=np.empty((n, R), dt), rT=np.empty((n, R), dt),
                   fth=np.empty((n, P), dt), fz=np.empty(n, dt), fT=np.empty(n, dt),
                   d=np.empty(n, np.int64), c=np.empty(n, np.int64))
        maps.one_datapoint_batch(thd, Qd, Ed, ed, nsteps, every_, dt.type(tol), thr, fated,
                                 out["rth"], out["rz"], out["rT"], out["fth"], out["fz"], out["fT"],
                                 out["d"], out["c"], zthr=zthr)
        return out

    nsteps = C.stop_step(lambda: (lambda o: (o["d"], o["c"]))(run(steps, 0, True, 0)), steps) if stop else steps
    stepc = C.step_coord(nsteps, every)
    o = run(nsteps, every, False, stepc.size if every else 0)
    rth, rz, rT = o["rth"], o["rz"], o["rT"]
    if every == 0:
        o0 = run(0, 0, False, 0)
        rth = C.with_final(thd, o["fth"], nsteps)
        rz = C.with_final(o0["fz"], o["fz"], nsteps)
        rT = C.with_final(o0["fT"], o["fT"], nsteps)
    d = o["d"]
    for arr in (rth, rz, rT):
        C.mask_diverged(arr, stepc, d)
    div = d >= 0
    fz, fT = o["fz"], o["fT"]
    fz[div] = np.nan
    fT[div] = np.nan
    with np.errstate(over="ignore", invalid="ignore"):
        loss = (0.5 * (rz.astype(np.float64) / ed.astype(np.float64).reshape((n, 1))) ** 2).astype(dt)
    coords = _datapoint_coords(grid)
    f = C.fates(d, o["c"], nsteps)
    return C.build_dataset(
        bdims=bdims, bshape=bshape, coords=coords, steps=stepc,
        trajectories={"theta": (rth, ("param",)), "z": (rz, ()), "T": (rT, ()), "loss": (loss, ())},
        per_member={**{k: (v, ()) for k, v in f.items()}, "final_z": (fz, ()), "final_T": (fT, ())},
        extra_vars={"Q": _Q_variable(Qm)},
        model="one_datapoint", title="One-datapoint quadratic model, GD in parameter space",
        equations=f"Eq. 4, 7, 9, {_REF}", function="eosdyn.toy.one_datapoint", parameters=params,
        attrs={"divergence_threshold": C.THRESHOLDS[dt][0], "tol": tol, "stop_on_convergence": int(stop)})


# --------------------------------------------------------------------------- gradient flows


#: default divergence threshold of the flows: max |state| above it (or non-finite) is divergence
FLOW_DIVERGE_NORM = 1e100
#: default work budget of one flow member (right-hand-side evaluations)
FLOW_MAX_EVALS = 100_000


def _flow_options(times, rtol, atol, method, max_evals):
    """Validate the options shared by the flows (before any allocation or integration)."""
    tv = C.check_times(times)
    rtol, atol, method, _, max_evals = check_flow_options(
        rtol=rtol, atol=atol, method=method, diverge_norm=FLOW_DIVERGE_NORM, max_evals=max_evals)
    return tv, rtol, atol, method, max_evals


def _flow_attrs(method, rtol, atol, max_evals):
    return {"integrator": f"scipy.integrate.OdeSolver method={method}", "rtol": float(rtol), "atol": float(atol),
            "max_evals": int(max_evals), "divergence_threshold": FLOW_DIVERGE_NORM}


def _flow_fates(status, t_stop):
    """Per-member fate variables of a flow: ``status``, ``diverged``, ``t_stop``."""
    return {"status": (status.astype(np.int8), ()), "diverged": (status == STATUS_VALUES["diverged"], ()),
            "t_stop": (t_stop, ())}


def _label_t_stop(ds):
    ds["t_stop"].attrs.update(long_name="time the flow reached (times[-1] unless it diverged or failed)",
                              units="1")
    return ds


def _solve(rhs, y0, tv, args, rtol, atol, method, max_evals):
    return solve_batch(rhs, y0, tv, args, rtol=rtol, atol=atol, method=method,
                       diverge_norm=FLOW_DIVERGE_NORM, max_evals=max_evals)


def _rhs_two_param(t, y, lam, E):
    dz, dT = maps.two_param_rhs(y[0], y[1], lam, E)
    return np.array([dz, dT])


def two_param_flow(*, eps=None, a=None, E=0.0, z0, T0, times, rtol=1e-12, atol=1e-14,
                   method="DOP853", max_evals=FLOW_MAX_EVALS) -> xr.Dataset:
    """Gradient flow of the two-parameter model in rescaled coordinates (Eq. 8 closed with P = 2).

    dz̃/dt = −z̃ T,  dT/dt = −2 z̃ T(1),  T(1) = (1+λ) T − λ (2z̃ + Ẽ).
    One unit of time corresponds to one GD step (rate η absorbed in the rescaling).

    Parameters
    ----------
    eps, a, E, z0, T0
        As in :func:`two_param`.
    times : array
        Sample times: 1 to 10⁶ finite values ≥ 0, strictly increasing; the flow starts at t = 0.
    rtol, atol : float
        Integrator tolerances: ``rtol`` in [100 eps, 1] (eps = 2.2e-16), ``atol`` finite and > 0.
    method : str
        ``"DOP853"`` (default), ``"RK45"``, ``"RK23"``, ``"Radau"``, ``"BDF"`` or ``"LSODA"``.
    max_evals : int, default 100_000
        Work budget per member: right-hand-side evaluations (1 to 10⁹). A member that needs
        more stops with status ``failed``.

    Returns
    -------
    xarray.Dataset
        ``z``, ``T`` on (param dims..., time), NaN after a member stopped; per member
        ``status`` (``max_steps``: reached ``times[-1]``; ``diverged``: max(|z̃|, |T|) above
        1e100 or non-finite; ``failed``: step size too small or budget spent), ``diverged``,
        ``t_stop`` (time reached), ``final_z``, ``final_T`` (at ``times[-1]``).

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.two_param_flow(eps=0.1, z0=0.1, T0=1.0, times=[0.0, 1.0, 2.0])
    >>> ds.z.dims
    ('time',)
    """
    params = dict(eps=eps, a=a, E=E, z0=z0, T0=T0, times=times, rtol=rtol, atol=atol, method=method,
                  max_evals=max_evals)
    tv, rtol, atol, method, max_evals = _flow_options(times, rtol, atol, method, max_evals)
    name, grid, bdims, bshape, lam, Ev, zv, Tv = _two_param_inputs(eps, a, E, z0, T0)
    Y, status, t_stop = _solve(_rhs_two_param, np.stack([zv, Tv], axis=1), tv,
                               [(float(lam[i]), float(Ev[i])) for i in range(zv.size)], rtol, atol, method, max_evals)
    coords = C.param_coords(grid, [name, "E", "z0", "T0"])
    lam_da = -grid.arrays[name] if name == "eps" else -1.0 / grid.arrays[name]
    coords["lam"] = xr.Variable(lam_da.dims, np.asarray(lam_da.values, dtype=np.float64))
    return _label_t_stop(C.build_dataset(
        bdims=bdims, bshape=bshape, coords=coords, steps=None, time=tv,
        trajectories={"z": (Y[:, :, 0], ()), "T": (Y[:, :, 1], ())},
        per_member={**_flow_fates(status, t_stop), "final_z": (Y[:, -1, 0], ()), "final_T": (Y[:, -1, 1], ())},
        model="two_param_flow", title="Two-parameter model, gradient flow in rescaled coordinates",
        equations=f"Eq. 8 with P = 2, {_REF}", function="eosdyn.toy.two_param_flow", parameters=params,
        attrs=_flow_attrs(method, rtol, atol, max_evals)))


def _rhs_hierarchy(t, y, q):
    dw = np.empty(q.shape[0])
    dz = maps._hierarchy_rhs(y[0], y[1:], q, dw)
    return np.concatenate(([dz], dw))


def hierarchy_flow(*, q, z0, w0=None, T0=None, E=None, times, rtol=1e-12, atol=1e-14,
                   method="DOP853", max_evals=FLOW_MAX_EVALS) -> xr.Dataset:
    """Gradient flow of the rescaled hierarchy (Eq. 8) in Q's eigenbasis, for any P.

    dz̃/dt = −z̃ T(0),  dw_i/dt = −2 z̃ q_i w_i  (so dT(k)/dt = −2 z̃ T(k+1)).

    Parameters are those of :func:`hierarchy` with ``times``, ``rtol``, ``atol``, ``method``,
    ``max_evals`` as in :func:`two_param_flow`; so are the fate variables (``status``,
    ``diverged``, ``t_stop``; divergence: max(|z̃|, |w_i|) above 1e100 or non-finite).

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.hierarchy_flow(q=[1.0, -0.5], w0=[0.5, 0.5], z0=0.2, times=[0.0, 1.0])
    >>> ds.w.dims
    ('time', 'mode')
    """
    params = dict(q=q, z0=z0, w0=w0, T0=T0, E=E, times=times, rtol=rtol, atol=atol, method=method,
                  max_evals=max_evals)
    tv, rtol, atol, method, max_evals = _flow_options(times, rtol, atol, method, max_evals)
    grid, bdims, bshape, qf, wf, zf, names = _hierarchy_inputs(q, z0, w0, T0, E)
    n, P = wf.shape
    Y, status, t_stop = _solve(_rhs_hierarchy, np.concatenate([zf[:, None], wf], axis=1), tv,
                               [(qf[i].copy(),) for i in range(n)], rtol, atol, method, max_evals)
    W = Y[:, :, 1:]
    T = W.sum(axis=2)
    coords = _mode_coords(grid, bdims, bshape, qf, names)
    if "E" not in names:
        coords["E"] = xr.Variable(bdims, _hierarchy_E(qf, wf, zf).reshape(bshape))
    return _label_t_stop(C.build_dataset(
        bdims=bdims, bshape=bshape, coords=coords, steps=None, time=tv,
        trajectories={"z": (Y[:, :, 0], ()), "T": (T, ()), "w": (W, ("mode",))},
        per_member={**_flow_fates(status, t_stop), "final_z": (Y[:, -1, 0], ()), "final_T": (T[:, -1], ())},
        model="hierarchy_flow", title="One-datapoint model, gradient flow of the rescaled hierarchy",
        equations=f"Eq. 8, {_REF}", function="eosdyn.toy.hierarchy_flow", parameters=params,
        attrs=_flow_attrs(method, rtol, atol, max_evals)))


def _rhs_datapoint(t, y, Q, E, eta):
    out = np.empty_like(y)
    maps._one_datapoint_rhs(y, Q, E, eta, out)
    return out


def one_datapoint_flow(*, Q, theta0, E=0.0, eta, times, rtol=1e-12, atol=1e-14,
                       method="DOP853", max_evals=FLOW_MAX_EVALS) -> xr.Dataset:
    """Gradient flow in parameter space with rate η (Eq. 5): dθ/dt = −η z Q θ.

    Time t corresponds to t GD steps of size η (physical gradient-flow time η t).
    Parameters are those of :func:`one_datapoint` with ``times``, ``rtol``, ``atol``,
    ``method``, ``max_evals`` as in :func:`two_param_flow`.

    Returns
    -------
    xarray.Dataset
        ``theta`` on (dims..., time, param), ``z`` (= η z), ``T`` (= η J Jᵀ), ``loss`` on
        (dims..., time), NaN after a member stopped; ``status``, ``diverged``, ``t_stop`` as in
        :func:`two_param_flow` (divergence: max |θ_i| above 1e100, or θ, z̃ or T non-finite),
        ``final_z``, ``final_T``; ``Q``.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.one_datapoint_flow(Q=[1.0, -0.1], theta0=[1.0, 0.5], eta=0.1, times=[0.0, 5.0])
    >>> bool(ds.loss.isel(time=1) < ds.loss.isel(time=0))
    True
    """
    params = dict(Q=Q, theta0=theta0, E=E, eta=eta, times=times, rtol=rtol, atol=atol, method=method,
                  max_evals=max_evals)
    tv, rtol, atol, method, max_evals = _flow_options(times, rtol, atol, method, max_evals)
    Qm, grid, bdims, bshape, th, Ef, ef = _datapoint_inputs(Q, theta0, E, eta)
    n, P = th.shape
    Y, status, t_stop = _solve(_rhs_datapoint, th, tv, [(Qm, float(Ef[i]), float(ef[i])) for i in range(n)],
                               rtol, atol, method, max_evals)
    K = tv.size
    z = np.full((n, K), np.nan)
    T = np.full((n, K), np.nan)
    g = np.empty(P)
    for i in range(n):
        for k in range(K):
            if np.all(np.isfinite(Y[i, k])):
                z[i, k], T[i, k] = maps._one_datapoint_observe(np.ascontiguousarray(Y[i, k]), Qm, Ef[i], ef[i], g)
    with np.errstate(over="ignore", invalid="ignore"):
        loss = 0.5 * (z / ef[:, None]) ** 2
    # a sample whose z̃, T or loss overflows (while θ is still below the norm) is divergence there
    for i in range(n):
        upto = tv <= t_stop[i]
        bad = upto & ~(np.isfinite(z[i]) & np.isfinite(T[i]) & np.isfinite(loss[i]))
        if bad.any():
            k = int(np.argmax(bad))
            status[i] = STATUS_VALUES["diverged"]
            t_stop[i] = tv[k]
            for arr in (Y[i], z[i], T[i], loss[i]):
                arr[k:] = np.nan
    coords = _datapoint_coords(grid)
    return _label_t_stop(C.build_dataset(
        bdims=bdims, bshape=bshape, coords=coords, steps=None, time=tv,
        trajectories={"theta": (Y, ("param",)), "z": (z, ()), "T": (T, ()), "loss": (loss, ())},
        per_member={**_flow_fates(status, t_stop), "final_z": (z[:, -1], ()), "final_T": (T[:, -1], ())},
        extra_vars={"Q": _Q_variable(Qm)},
        model="one_datapoint_flow", title="One-datapoint quadratic model, gradient flow in parameter space",
        equations=f"Eq. 4-6, {_REF}", function="eosdyn.toy.one_datapoint_flow", parameters=params,
        attrs=_flow_attrs(method, rtol, atol, max_evals)))
