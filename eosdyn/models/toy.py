"""Toy models of Section 3: one datapoint (D = 1) with a quadratic model, as labelled datasets.

Gradient descent (maps) and gradient flows of

* :func:`one_datapoint` — GD in parameter space θ ∈ R^P (Eq. 4, 9), any symmetric Q;
* :func:`hierarchy` — the rescaled (z̃, T(k)) dynamics (Eq. 10-11) closed in Q's eigenbasis;
* :func:`two_param` — the P = 2 map in (z̃, T) (Eq. 14-15 with ``eps``, Eq. 65-66 with ``a``);
* :func:`catapult` — the case λ = −1 (Eq. 12-13);
* :func:`linear` — GD on linear least squares along one eigendirection (Eq. 16);
* :func:`uv` — the uv model of Lewkowycz et al. (2020) in its exact reduction (z, λ);
* :func:`one_datapoint_flow`, :func:`hierarchy_flow`, :func:`two_param_flow` — gradient flows
  (Eq. 5 and Eq. 8) with :func:`scipy.integrate.solve_ivp` methods.

Each producer is a :class:`eosdyn.systems.System` record (registered here) run by the shared
driver of its state kind (:mod:`eosdyn.drivers`); this module holds only the records, the
validation of the model parameters and the names of the output variables.

Every parameter may be a scalar (a 0-d coordinate), a 1-D array (a dim named after the
parameter) or an :class:`xarray.DataArray` (its own dims); all dims broadcast. The output has one
dim per array-valued parameter followed by ``step`` (GD, step 0 = initial state) or ``time``
(flows). GD options (``docs/conventions.md``): ``steps``, ``record_every`` (None: step 0 and the
last step), ``stop`` (``"never"``, ``"member"``, ``"batch"``), ``tol`` and ``diverge_loss`` on
the dataset's ``loss`` (½ z̃² for the rescaled maps, ½ θ̃² for :func:`linear`, ½ z² of the raw
residual for :func:`one_datapoint`; default ``tol`` = 5e-27 = ½ (1e-13)², ``diverge_loss`` None =
1e200 for float64, 1e30 for float32), ``dtype``. A member also diverges once ``|T| ≥ 2^498``
(float32: 2^64), a guard against overflow recorded as the attribute ``sharpness_guard``.
Options are checked before any allocation: the recorded output must fit the memory limit and
the work (members × steps) is at most 1e13; for float32 every input must be representable.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from .._validate import check_range
from ..drivers import _common as C
from ..drivers import flow, pair, vector
from ..drivers.flow import MAX_EVALS
from ..kernels import maps
from ..systems import Param, System, register
from ..theory.toy import _allowed, second_eigenvalue

__all__ = ["two_param", "catapult", "linear", "uv", "hierarchy", "one_datapoint",
           "two_param_flow", "hierarchy_flow", "one_datapoint_flow", "one_datapoint_central_flow"]

_REF = "Agarwala, Pedregosa & Pennington (2023)"
_GD_OPTIONS = ("steps", "record_every", "stop", "tol", "diverge_loss", "dtype")
_GD_DEFAULTS = {"record_every": 1, "stop": "never", "tol": C.TOL, "diverge_loss": None, "dtype": "float64"}
_FLOW_OPTIONS = ("times", "tol", "diverge_loss", "rtol", "atol", "max_evals")
_FLOW_DEFAULTS = {"tol": C.TOL, "diverge_loss": None, "rtol": 1e-12, "atol": 1e-14, "max_evals": MAX_EVALS}
_ROLES = {"residual": "z", "curvature": "T", "sharpness": "sharpness", "loss": "loss"}
_P_EPS = Param("eps", "ε (second eigenvalue of Q is −ε, Eq. 14-15)", domain="(0, 1]; exactly one of eps, a")
_P_A = Param("a", "a = −1/λ (Q eigenvalues {1, λ}, Eq. 65-66)", domain="a >= 1 or a < -1")
_P_E_TILDE = Param("E_tilde", "Ẽ = η E = T(−1) − 2 z̃ (conserved)", domain="any real")
_P_Z0 = Param("z0", "initial rescaled residual z̃₀", domain="allowed region (Eq. 67-68) with T0")
_P_T0 = Param("T0", "initial T₀(0) = η λ_max(0)", domain="allowed region (Eq. 67-68) with z0")
_P_Q = Param("Q", "matrix Q (P x P, symmetric) or its eigenvalues", domain="symmetric, finite", dim=False)
_P_THETA0 = Param("theta0", "initial parameters θ₀ (dim param; 2-D: dim init)", domain="finite")
_P_E = Param("E", "E of Eq. 4 (unscaled; Ẽ = η E)", domain="any real")
_P_ETA = Param("eta", "learning rate η", domain="(0, inf)")
_P_QV = Param("q", "eigenvalues q_i of Q (dim mode)", domain="finite")
_P_W0 = Param("w0", "initial weights w_i = η (J·e_i)² (dim mode)", domain="[0, inf); or T0 and E_tilde for P = 2")


def _gd_record(name, kind, title, equations, params, state, example, initial, roles=_ROLES, notes=""):
    return register(System(name=f"eosdyn.toy.{name}", kind=kind, title=title, equations=equations,
                           params=params, state=state, roles=roles, example=example,
                           function=f"eosdyn.models.toy.{name}", options=_GD_OPTIONS,
                           defaults=_GD_DEFAULTS, initial=initial, notes=notes))


def _flow_record(sibling: System, title, equations, example, notes=""):
    return register(System(name=sibling.name + "_flow", kind="flow", title=title, equations=equations,
                           params=sibling.params, state=sibling.state, roles=sibling.roles, example=example,
                           function=sibling.function + "_flow", flow_of=sibling.name, options=_FLOW_OPTIONS,
                           defaults=_FLOW_DEFAULTS, initial=sibling.initial, notes=notes))


def _gd(params):
    """The GD options of a producer's ``params``, and its model parameters."""
    opts = {k: params.pop(k) for k in ("steps", "record_every", "stop", "tol", "diverge_loss", "dtype")}
    return opts, params


def _flow_opts(params):
    opts = {k: params.pop(k) for k in ("times", "tol", "diverge_loss", "rtol", "atol", "method", "max_evals")}
    return opts, params


# --------------------------------------------------------------------------- P = 2 map, catapult
def _two_param_inputs(*, eps=None, a=None, E_tilde=0.0, z0, T0) -> pair.PairInputs:
    """Validate the P = 2 map's inputs (λ from :func:`eosdyn.theory.toy.second_eigenvalue`,
    the initial state in the allowed region of Eq. 67-68) and flatten them per member."""
    if (eps is None) == (a is None):
        second_eigenvalue(eps=eps, a=a)  # raises: exactly one
    name, value = ("eps", eps) if eps is not None else ("a", a)
    for nm, v in (("E_tilde", E_tilde), ("z0", z0), ("T0", T0)):
        check_range(nm, v)
    mem = C.Members({name: value, "E_tilde": E_tilde, "z0": z0, "T0": T0})
    lam = np.asarray(second_eigenvalue(**{name: mem.flat(name)}), dtype=np.float64)
    E, z, T = mem.flat("E_tilde"), mem.flat("z0"), mem.flat("T0")
    bad = ~_allowed(z, T, lam, E)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            "z0, T0 must lie in the allowed region of Eq. 67-68 (real Jacobian): with u = 2*z0 + E_tilde, "
            "for a >= 1: T0 >= u and T0 >= -u/a; for a < -1: -u/a <= T0 <= u; "
            f"got z0={float(z[i])!r}, T0={float(T[i])!r}, E_tilde={float(E[i])!r}, a={float(-1.0 / lam[i])!r} "
            f"(from {name})")
    coords = mem.coords([name, "E_tilde", "z0", "T0"])
    lam_da = second_eigenvalue(**{name: mem.grid.arrays[name]})
    coords["lam"] = xr.Variable(lam_da.dims, np.asarray(lam_da.values, dtype=np.float64))
    return pair.PairInputs(mem, z, T, lam, E, coords, ("z0", "T0", name, "E_tilde"))


def _zT(x, y, inp):
    return {"z": x, "T": y, "sharpness": y}  # the same array: sharpness is T (no copy)


_TWO_PARAM = pair.PairMap(_gd_record(
    "two_param", "pair_map", "Two-parameter model, GD in rescaled coordinates (z̃, T)",
    f"Eq. 14-15 / 65-66 (allowed region Eq. 67-68), {_REF}",
    (_P_EPS, _P_A, _P_E_TILDE, _P_Z0, _P_T0), ("z", "T"),
    {"eps": 0.1, "z0": 0.1, "T0": [1.5, 1.9, 2.5], "steps": 40}, {"z": "z0", "T": "T0"}),
    maps.TWO_PARAM, _two_param_inputs, _zT)


def two_param(*, eps=None, a=None, E_tilde=0.0, z0, T0, steps, record_every=1, stop="never", tol=C.TOL,
              diverge_loss=None, dtype="float64") -> xr.Dataset:
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
        a = −1/λ with a ≥ 1 or a < −1 (a = −1, Q = identity, is refused).
    E_tilde : float, array or DataArray, default 0
        Ẽ = η E = T(−1) − 2 z̃ (any real).
    z0, T0 : float, array or DataArray
        Initial z̃₀ and T₀(0) = η λ_max(0); must lie in the allowed region (Eq. 67-68):
        with u = 2 z0 + Ẽ, for a ≥ 1: T0 ≥ u and T0 ≥ −u/a; for a < −1: −u/a ≤ T0 ≤ u.
    steps : int
        Number of GD steps (≥ 0), the maximum with ``stop``.
    record_every : int or None, default 1
        Record steps 0, k, 2k, ...; None records step 0 and the last step (``step`` = [0, last]).
    stop : {"never", "member", "batch"}, default "never"
        ``"never"``: every member runs ``steps``; ``"member"``: each member stops at its own fate
        (NaN after ``steps_taken``); ``"batch"``: all run until every member has a fate.
    tol : float, default 5e-27
        A member converges when ``loss`` = ½ z̃² < tol (5e-27: abs(z̃) < 1e-13; 0: never).
    diverge_loss : float, optional
        A member diverges when ``loss`` > diverge_loss (default 1e200, float32 1e30), its state
        is not finite, or abs(T) ≥ the ``sharpness_guard``.
    dtype : {"float64", "float32"}
        Precision of the state.

    Returns
    -------
    xarray.Dataset
        ``z``, ``T``, ``sharpness`` (= T), ``loss`` on (param dims..., step); per member
        ``status``, ``steps_taken``, ``diverged_at``, ``converged_at``, ``final_z``, ``final_T``,
        ``final_sharpness``, ``final_loss``; coords ``eps``|``a``, ``lam``, ``E_tilde``, ``z0``,
        ``T0``.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.two_param(eps=0.1, z0=0.1, T0=[1.5, 1.9], steps=4)
    >>> ds.z.dims, ds.sizes["step"]
    (('T0', 'step'), 5)
    """
    opts, model = _gd(dict(locals()))
    return pair.run(_TWO_PARAM, {**model, **opts, "dtype": C.dtype_name(dtype)}, model, **opts)


_CATAPULT = pair.PairMap(_gd_record(
    "catapult", "pair_map", "Catapult map (Q eigenvalues ±1), GD in (z̃, T)", f"Eq. 12-13, {_REF}",
    (_P_E_TILDE, _P_Z0, _P_T0), ("z", "T"), {"z0": 0.5, "T0": [3.0, 5.0], "steps": 20}, {"z": "z0", "T": "T0"}),
    maps.TWO_PARAM, lambda **kw: _two_param_inputs(a=1.0, **kw), _zT)


def catapult(*, E_tilde=0.0, z0, T0, steps, record_every=1, stop="never", tol=C.TOL, diverge_loss=None,
             dtype="float64") -> xr.Dataset:
    """The catapult map (Eq. 12-13): the two-parameter model with Q eigenvalues {−1, 1}.

    z̃' − z̃ = −z̃ T + ½ z̃² (2z̃ + Ẽ),   T' − T = −2 z̃ (2z̃ + Ẽ) + z̃² T.

    Same options and output as :func:`two_param` (with ``a`` = 1, λ = −1); the allowed
    region is T0 ≥ abs(2 z0 + Ẽ). For Ẽ = 0, ΔT = z̃² (T − 4).

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.catapult(z0=0.5, T0=3.0, steps=2)
    >>> float(ds.T.isel(step=1)) < 3.0
    True
    """
    opts, model = _gd(dict(locals()))
    return pair.run(_CATAPULT, {**model, **opts, "dtype": C.dtype_name(dtype)}, model, **opts)


# --------------------------------------------------------------------------- linear model
def _linear_inputs(*, lam, theta0) -> pair.PairInputs:
    check_range("lam", lam)
    check_range("theta0", theta0)
    mem = C.Members({"lam": lam, "theta0": theta0})
    th, lv = mem.flat("theta0"), mem.flat("lam")
    zeros = np.zeros_like(th)
    return pair.PairInputs(mem, th, zeros, lv, zeros, mem.coords(["lam", "theta0"]),
                           ("theta0", "theta0", "lam", "lam"))


def _linear_vars(x, y, inp):
    lam = inp.p.astype(x.dtype)
    return {"theta": x, "sharpness": np.broadcast_to(lam.reshape(lam.shape + (1,) * (x.ndim - 1)), x.shape).copy()}


_LINEAR = pair.PairMap(_gd_record(
    "linear", "pair_map", "Linear least squares along one eigendirection, GD", f"Eq. 16, {_REF}",
    (Param("lam", "rescaled eigenvalue λ (η times the Hessian eigenvalue)"),
     Param("theta0", "initial coordinate θ̃₀")), ("theta",),
    {"lam": [0.5, 1.5, 2.5], "theta0": 1.0, "steps": 10}, {"theta": "theta0"},
    roles={"residual": "theta", "sharpness": "sharpness", "loss": "loss"},
    notes="one-component state θ̃; sharpness = λ (constant); loss = ½ θ̃²"),
    maps.LINEAR, _linear_inputs, _linear_vars,
    var_attrs={"theta": {"long_name": "rescaled coordinate θ̃ along the eigendirection"},
               "final_theta": {"long_name": "rescaled coordinate θ̃ at the member's last step (steps_taken)"},
               "loss": {"long_name": "loss ½ θ̃²"}})


def linear(*, lam, theta0, steps, record_every=1, stop="never", tol=C.TOL, diverge_loss=None,
           dtype="float64") -> xr.Dataset:
    """GD on linear least squares along one eigendirection (Eq. 16): θ̃_{t+1} = (1 − λ) θ̃_t.

    Parameters
    ----------
    lam : float, array or DataArray
        Rescaled eigenvalue λ (η times the Hessian eigenvalue); any real. Converges iff
        0 < λ < 2; the two-step map is θ̃_{t+2} = (1 − λ)² θ̃_t.
    theta0 : float, array or DataArray
        Initial coordinate θ̃₀.
    steps, record_every, stop, tol, diverge_loss, dtype
        As in :func:`two_param`, with ``loss`` = ½ θ̃².

    Returns
    -------
    xarray.Dataset
        ``theta``, ``sharpness`` (= λ), ``loss`` on (param dims..., step); the fates,
        ``final_theta``, ``final_sharpness``, ``final_loss``.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.linear(lam=1.5, theta0=1.0, steps=2)
    >>> ds.theta.values.tolist()
    [1.0, -0.5, 0.25]
    """
    opts, model = _gd(dict(locals()))
    return pair.run(_LINEAR, {**model, **opts, "dtype": C.dtype_name(dtype)}, model, **opts)


# --------------------------------------------------------------------------- uv model
_UV_REF = "Lewkowycz, Bahri, Dyer, Sohl-Dickstein & Gur-Ari (2020), arXiv 2003.02218"


def _uv_inputs(*, n, eta, y=0.0, z0, lam0) -> pair.PairInputs:
    """Validate the uv model's inputs (n ≥ 1, η > 0, λ₀ > 0, the reachable region
    λ₀ ≥ 2 abs(z0 + y)/√n) and flatten them per member: state (z, λ), parameters (η, y, n)."""
    check_range("n", n, 1.0, None)
    check_range("eta", eta, 0.0, None, lo_open=True)
    check_range("y", y)
    check_range("z0", z0)
    check_range("lam0", lam0, 0.0, None, lo_open=True)
    mem = C.Members({"n": n, "eta": eta, "y": y, "z0": z0, "lam0": lam0})
    nf, ef, yf, zf, lf = (mem.flat(k) for k in ("n", "eta", "y", "z0", "lam0"))
    bad = ~(lf >= 2.0 * np.abs(zf + yf) / np.sqrt(nf))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            "z0, lam0 must be reachable: ‖u‖² + ‖v‖² >= 2 |uᵀv| requires lam0 >= 2 |z0 + y| / sqrt(n); "
            f"got z0={float(zf[i])!r}, lam0={float(lf[i])!r}, y={float(yf[i])!r}, n={float(nf[i])!r} "
            f"(2 |z0 + y| / sqrt(n) = {float(2.0 * abs(zf[i] + yf[i]) / np.sqrt(nf[i]))!r})")
    return pair.PairInputs(mem, zf, lf, ef, yf, mem.coords(["n", "eta", "y", "z0", "lam0"]),
                           ("z0", "lam0", "eta", "y"), q=nf, q_name="n")


def _uv_vars(x, y, inp):
    eta = inp.p.astype(x.dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        sharp = np.multiply(eta.reshape(eta.shape + (1,) * (x.ndim - 1)), y)
    return {"z": x, "lam": y, "sharpness": sharp}


_UV = pair.PairMap(_gd_record(
    "uv", "pair_map", "uv model f = uᵀv/√n on one example, GD in its exact reduction (z, λ)",
    f"Section 2 (uv model), {_UV_REF}",
    (Param("n", "width n of the uv model (u, v in R^n)", domain="[1, inf)"),
     _P_ETA,
     Param("y", "target y of the single example", domain="any real"),
     Param("z0", "initial residual z₀ = f₀ − y", domain="reachable with lam0: lam0 >= 2 abs(z0 + y)/sqrt(n)"),
     Param("lam0", "initial NTK eigenvalue λ₀ = (‖u‖² + ‖v‖²)/n",
           domain="(0, inf), reachable: lam0 >= 2 abs(z0 + y)/sqrt(n)")),
    ("z", "lam"), {"n": 100.0, "eta": 1.0, "z0": 0.1, "lam0": [1.5, 3.0, 4.5], "steps": 60},
    {"z": "z0", "lam": "lam0"},
    roles={"residual": "z", "curvature": "lam", "sharpness": "sharpness", "loss": "loss"},
    notes="state: residual z = f − y (not rescaled) and NTK eigenvalue λ; sharpness = η λ; loss = ½ z²; "
          "the sharpness guard bounds abs(lam)"),
    maps.UV, _uv_inputs, _uv_vars,
    var_attrs={"z": {"long_name": "residual z = f − y = uᵀv/√n − y"},
               "final_z": {"long_name": "residual z = f − y at the member's last step (steps_taken)"},
               "lam": {"long_name": "NTK eigenvalue λ = (‖u‖² + ‖v‖²)/n"},
               "y": {"long_name": "target y of the single example"},
               "loss": {"long_name": "loss L = ½ z²"}})


def uv(*, n, eta, y=0.0, z0, lam0, steps, record_every=1, stop="never", tol=C.TOL, diverge_loss=None,
       dtype="float64") -> xr.Dataset:
    """GD on the uv model (Lewkowycz et al. 2020, the catapult mechanism) in its exact reduction.

    The model f(u, v) = uᵀv/√n (u, v ∈ R^n) on one example with target y, loss L = ½ z² with
    residual z = f − y; GD u' = u − η z v/√n, v' = v − η z u/√n. The NTK eigenvalue is
    λ = (‖u‖² + ‖v‖²)/n and the sharpness η λ (the edge is 2). The pair (z, λ) closes exactly:
    with f = z + y,

    z' = z − η z λ + η² z² f / n,   λ' = λ − 4 η z f / n + η² z² λ / n.

    For η λ₀ < 2 the run converges with λ nearly unchanged (large n); for 2 < η λ₀ < 4 the loss
    first grows, then λ falls until η λ < 2 and the run converges (the catapult); for η λ₀ well
    above 4 it diverges.

    Parameters
    ----------
    n : float, array or DataArray
        Width n ≥ 1 (finite).
    eta : float, array or DataArray
        Learning rate η > 0.
    y : float, array or DataArray, default 0
        Target of the single example (any real).
    z0, lam0 : float, array or DataArray
        Initial residual z₀ and NTK eigenvalue λ₀ > 0; the state must be reachable by some u, v:
        ‖u‖² + ‖v‖² ≥ 2 abs(uᵀv) = 2 √n abs(f) means lam0 ≥ 2 abs(z0 + y)/√n.
    steps, record_every, stop, tol, diverge_loss, dtype
        As in :func:`two_param`, with ``loss`` = ½ z² (raw residual) and the sharpness guard on
        abs(λ).

    Returns
    -------
    xarray.Dataset
        ``z``, ``lam``, ``sharpness`` (= η λ), ``loss`` on (param dims..., step); the fates,
        ``final_z``, ``final_lam``, ``final_sharpness``, ``final_loss``; coords ``n``, ``eta``,
        ``y``, ``z0``, ``lam0``.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.uv(n=1000, eta=1.0, z0=0.01, lam0=[1.5, 3.0], steps=400)
    >>> [bool(s < 2) for s in ds.final_sharpness.values], ds.status.values.tolist()
    ([True, True], [1, 1])
    """
    opts, model = _gd(dict(locals()))
    return pair.run(_UV, {**model, **opts, "dtype": C.dtype_name(dtype)}, model, **opts)


# --------------------------------------------------------------------------- hierarchy (general P)
def _hierarchy_inputs(*, q, z0, w0=None, T0=None, E_tilde=None) -> vector.VectorInputs:
    """Members of the hierarchy: state (z̃, w_1..w_P), parameters q; coords q, mode, E_tilde."""
    qda = C.as_vector("q", q, "mode")
    check_range("z0", z0)
    if w0 is not None:
        if T0 is not None or E_tilde is not None:
            raise ValueError("give either w0 or (T0, E_tilde), not both")
        wda = C.as_vector("w0", w0, "mode")
        check_range("w0", wda, 0.0, None)
        mem = C.Members({"q": qda, "w0": wda, "z0": z0}, vdim="mode")
        qf, wf, zf = mem.flat("q", True), mem.flat("w0", True), mem.flat("z0")
        names = ["z0"]
    else:
        if T0 is None:
            raise ValueError("give w0 (weights along 'mode', >= 0) or, for P = 2, T0 and E_tilde")
        E_tilde = 0.0 if E_tilde is None else E_tilde
        check_range("T0", T0)
        check_range("E_tilde", E_tilde)
        if qda.sizes["mode"] != 2:
            raise ValueError(f"T0 and E_tilde determine the weights only for P = 2 (q has {qda.sizes['mode']} "
                             "values along 'mode'); give w0 instead")
        mem = C.Members({"q": qda, "z0": z0, "T0": T0, "E_tilde": E_tilde}, vdim="mode")
        qf, zf, Tf, Ef = mem.flat("q", True), mem.flat("z0"), mem.flat("T0"), mem.flat("E_tilde")
        q1, q2 = qf[:, 0], qf[:, 1]
        if np.any(q1 == 0) or np.any(q2 == 0) or np.any(q1 == q2):
            raise ValueError("q must have two distinct non-zero eigenvalues to derive weights from T0 and E_tilde")
        u = 2.0 * zf + Ef
        w1 = (u - Tf / q2) / (1.0 / q1 - 1.0 / q2)
        wf = np.stack([w1, Tf - w1], axis=1)
        if np.any(wf < 0):
            i = int(np.argmax(np.any(wf < 0, axis=1)))
            raise ValueError("z0, T0 must lie in the allowed region (both weights w_i >= 0, Eq. 67-68); "
                             f"got z0={zf[i]!r}, T0={Tf[i]!r}, E_tilde={Ef[i]!r}, q={qf[i].tolist()}")
        names = ["z0", "T0", "E_tilde"]
    coords = mem.coords(names)
    coords["q"] = xr.Variable(qda.dims, np.asarray(qda.values, dtype=np.float64))
    coords["mode"] = ("mode", np.arange(qf.shape[1], dtype=np.int64))
    if "E_tilde" not in names:  # Ẽ = T(−1) − 2 z̃ = Σ_{q_i ≠ 0} w_i / q_i − 2 z̃ (NaN if q_i = 0 carries weight)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.where(qf != 0, wf / np.where(qf != 0, qf, 1.0), np.where(wf > 0, np.nan, 0.0))
        coords["E_tilde"] = mem.member_variable(inv.sum(axis=1) - 2.0 * zf)
    y0 = np.ascontiguousarray(np.concatenate([zf[:, None], wf], axis=1))
    wname = "w0" if w0 is not None else "T0, E_tilde (weights derived from them)"
    return vector.VectorInputs(mem, y0, qf, np.empty((0, 0)), coords, (f"z0, {wname}", "q", "q"))


def _hierarchy_vars(f):
    return {"z": (f["z"], ()), "T": (f["T"], ()), "w": (f["y"][..., 1:], ("mode",)),
            "sharpness": (f["T"], ()), "loss": (f["loss"], ())}


_HIERARCHY = vector.VectorMap(_gd_record(
    "hierarchy", "vector_map", "One-datapoint model, GD of the rescaled hierarchy in Q's eigenbasis",
    f"Eq. 7, 10-11, {_REF}", (_P_QV, _P_Z0, _P_W0, Param("T0", "initial T₀(0) (P = 2, with E_tilde)"),
                              _P_E_TILDE), ("z", "T", "w"),
    {"q": [1.0, -0.5, 0.2], "w0": [0.8, 0.3, 0.4], "z0": [0.1, 0.3], "steps": 30}, {"z": "z0", "w": "w0"}),
    maps.HIERARCHY, _hierarchy_inputs, _hierarchy_vars,
    var_attrs={"final_w": {"long_name": "weights w_i at the member's last step (steps_taken)", "units": "1"}})


def hierarchy(*, q, z0, w0=None, T0=None, E_tilde=None, steps, record_every=1, stop="never", tol=C.TOL,
              diverge_loss=None, dtype="float64") -> xr.Dataset:
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
    T0, E_tilde : float, array or DataArray, optional
        Instead of ``w0`` for P = 2: T₀(0) and Ẽ determine the weights (the point must lie
        in the allowed region).
    steps, record_every, stop, tol, diverge_loss, dtype
        As in :func:`two_param` (``loss`` = ½ z̃²).

    Returns
    -------
    xarray.Dataset
        ``z``, ``T``, ``sharpness`` (= T), ``loss`` on (dims..., step), ``w`` on (dims..., step,
        mode); the fates, ``final_z``, ``final_T``, ``final_w``, ``final_sharpness``,
        ``final_loss``; coords ``q``, ``mode``, ``z0`` and ``E_tilde`` (derived from w0 if not given).

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.hierarchy(q=[1.0, -0.5, 0.2], w0=[0.8, 0.3, 0.4], z0=0.1, steps=3)
    >>> ds.w.dims
    ('step', 'mode')
    """
    opts, model = _gd(dict(locals()))
    return vector.run(_HIERARCHY, {**model, **opts, "dtype": C.dtype_name(dtype)}, model, **opts)


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


def _datapoint_inputs(*, Q, theta0, E=0.0, eta) -> vector.VectorInputs:
    Qm = _check_Q(Q)
    P = Qm.shape[0]
    tda = C.as_vector("theta0", theta0, "param", extra_dim="init")
    if tda.sizes["param"] != P:
        raise ValueError(f"theta0 must have P = {P} entries along 'param' (Q is {P} x {P}); "
                         f"got {tda.sizes['param']}")
    check_range("E", E)
    check_range("eta", eta, 0.0, None, lo_open=True)
    mem = C.Members({"theta0": tda, "E": E, "eta": eta}, vdim="param")
    prm = np.ascontiguousarray(np.stack([mem.flat("E"), mem.flat("eta")], axis=1))
    Qv = xr.Variable(("param", "param2"), Qm)
    return vector.VectorInputs(mem, mem.flat("theta0", True), prm, Qm, mem.coords(["E", "eta"]),
                               ("theta0", "E, eta", "Q"), {"Q": Qv})


def _datapoint_vars(f):
    return {"theta": (f["y"], ("param",)), "z": (f["z"], ()), "T": (f["T"], ()),
            "sharpness": (f["T"], ()), "loss": (f["loss"], ())}


_DATAPOINT_ATTRS = {
    "E": {"long_name": "E of Eq. 4 (unscaled; Ẽ = η E)"},
    "loss": {"long_name": "loss L = ½ z² of the raw residual z = ½ (θᵀQθ − E)"},
    "final_theta": {"long_name": "parameters θ at the member's last step (steps_taken)"},
}
_ROLES_THETA = {**_ROLES, "parameters": "theta"}
_DATAPOINT = vector.VectorMap(_gd_record(
    "one_datapoint", "parameter_gd", "One-datapoint quadratic model, GD in parameter space",
    f"Eq. 4, 7, 9, {_REF}", (_P_Q, _P_THETA0, _P_E, _P_ETA), ("theta", "z", "T"),
    {"Q": [1.0, -0.1], "theta0": [1.0, 0.5], "E": 0.0, "eta": [0.5, 1.0], "steps": 20}, {"theta": "theta0"},
    roles=_ROLES_THETA, notes="loss = ½ z² of the raw residual; z, T are the rescaled z̃ = η z, T = η J Jᵀ"),
    maps.ONE_DATAPOINT, _datapoint_inputs, _datapoint_vars, var_attrs=_DATAPOINT_ATTRS)


def _datapoint_vars_adaptive(f):
    return {**_datapoint_vars(f), "preconditioned_sharpness": (f["Tp"], ())}


#: RMSProp / Adam on the one-datapoint model: also the preconditioned sharpness
_DATAPOINT_ADAPTIVE = dataclasses.replace(_DATAPOINT, derive=_datapoint_vars_adaptive)


def _with_forces(spec, inp):
    """``spec`` whose variables also hold the self-stabilization quantities of each state θ
    (f(θ) = −E/2 + ½ θᵀQθ: z₀ = −E/2, J₀ = 0 in :mod:`eosdyn.kernels.derivatives`)."""
    from ..kernels.derivatives import _force_rows
    from ..kernels.qrm import FORCE_VARIABLES

    Q3 = np.asarray(inp.shared, np.float64)[None]
    E = inp.prm[:, 0]

    def derive(f):
        out = spec.derive(f)
        y = np.asarray(f["y"], np.float64)
        th = y if y.ndim == 3 else y[:, None, :]                      # (n, R, P)
        n, R, P = th.shape
        Jr = np.einsum("jk,nrk->nrj", Q3[0], th).reshape(n * R, 1, P)
        zr = (0.5 * (np.einsum("nrj,nrj->nr", th, Jr.reshape(n, R, P)) - E[:, None])).reshape(n * R, 1)
        S, alpha, beta = _force_rows(Q3, Jr, zr)
        with np.errstate(divide="ignore", invalid="ignore"):
            vals = {"sharpening_force": alpha, "stabilization_strength": beta,
                    "predicted_oscillation": np.where(beta > 0, 2.0 * alpha / beta, np.nan)}
        for k in FORCE_VARIABLES:
            v = vals[k].reshape(n, R).astype(y.dtype if y.dtype.kind == "f" else np.float64)
            out[k] = (v if y.ndim == 3 else v[:, 0], ())
        return out

    return dataclasses.replace(spec, derive=derive)


def one_datapoint(*, Q, theta0, E=0.0, eta, steps, record_every=1, stop="never", tol=C.TOL, diverge_loss=None,
                  dtype="float64", optimizer="gd", momentum=None, beta1=None, beta2=None,
                  epsilon=None, forces=False) -> xr.Dataset:
    """Gradient descent (or momentum, Nesterov, RMSProp, Adam) in parameter space for the
    one-datapoint quadratic model (Eq. 4, 9).

    L(θ) = ½ z², z = ½ (θᵀQθ − E), J = θᵀQ; GD: θ_{t+1} = θ_t − η z_t Q θ_t.

    Parameters
    ----------
    Q : array (P, P) or (P,)
        Symmetric matrix, or its eigenvalues (then Q is diagonal).
    theta0 : array (P,), array (n, P) or DataArray with dim ``param``
        Initial parameters; a 2-D array stacks initial conditions along a dim ``init``.
    E : float, array or DataArray, default 0
        The raw constant E of Eq. 4 (Ẽ = η E; E = 2ŷ for a linear network, App. A.2).
    eta : float, array or DataArray
        Learning rate η > 0.
    steps, record_every, stop, tol, diverge_loss, dtype
        As in :func:`two_param`, on ``loss`` = ½ z² of the raw residual z (so the default
        ``tol`` means abs(z) < 1e-13, i.e. abs(z̃) < 1e-13 η).
    optimizer : {"gd", "momentum", "nesterov", "rmsprop", "adam"}, default "gd"
        The update with gradient g = z Q θ (conventions of :func:`eosdyn.qrm.sweep`: heavy ball
        v ← βv + g, θ ← θ − ηv; Nesterov θ ← θ − η(g + βv) with v ← βv + g; RMSProp
        s ← β₂s + (1 − β₂)g², θ ← θ − ηg/(√s + ε); Adam θ ← θ − ηm̂/(√v̂ + ε), bias-corrected).
        Other than GD, the state is advanced in float64 (and stored in ``dtype``).
    momentum, beta1, beta2, epsilon : float, optional
        The optimizer's hyperparameters (defaults 0.9, 0.9, 0.999, 1e-8; β's in [0, 1), ε > 0),
        scalar coordinates of the dataset.
    forces : bool, default False
        Also record the self-stabilization quantities of the recorded states (Damian, Nichani &
        Lee 2023; as :func:`eosdyn.qrm.sweep` with ``forces=True``): ``sharpening_force``
        α = −∇L·∇S, ``stabilization_strength`` β = ‖∇S‖² and ``predicted_oscillation`` 2α/β,
        S = λ_max(JᵀJ + z Q) (raw units, not rescaled by η), with ``final_`` values; the
        trajectory is unchanged.

    Returns
    -------
    xarray.Dataset
        ``theta`` on (dims..., step, param); ``z`` (= z̃ = η z, comparable with the maps),
        ``T`` (= η J Jᵀ), ``sharpness`` (= T) and ``loss`` (= ½ z², original units) on
        (dims..., step); the fates, ``final_theta``, ``final_z``, ``final_T``,
        ``final_sharpness``, ``final_loss``; ``Q`` on (param, param2); coords ``E``, ``eta`` and
        ``edge`` (the optimizer's edge of stability, 2 for GD). RMSProp and Adam also record
        ``preconditioned_sharpness`` = η λ_max(P⁻¹H), H = JᵀJ + z Q, P the preconditioner of the
        next update (the ``sharpness`` role, the one ``edge`` applies to).

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.one_datapoint(Q=[1.0, -0.1], theta0=[1.0, 0.5], E=0.0, eta=0.5, steps=3)
    >>> ds.theta.dims, ds.z.dims
    (('step', 'param'), ('step',))
    >>> dm = eosdyn.toy.one_datapoint(Q=[1.0, -0.1], theta0=[1.0, 0.5], eta=0.5, steps=3,
    ...                               optimizer="momentum", momentum=0.5)
    >>> float(dm.edge), float(ds.edge)
    (3.0, 2.0)
    """
    from .._validate import HYPERPARAMETER_RANGES, check_optimizer
    from ..kernels.qrm import real_scalar
    from ..theory.optim import optimizer_edge

    params = dict(locals())
    for k in ("HYPERPARAMETER_RANGES", "check_optimizer", "real_scalar", "optimizer_edge"):
        params.pop(k)
    forces = params.pop("forces")
    if not isinstance(forces, (bool, np.bool_)):
        raise TypeError(f"forces must be True or False; got {forces!r}")
    optimizer, hyper = check_optimizer(params.pop("optimizer"), **{k: params.pop(k) for k in
                                                                     ("momentum", "beta1", "beta2", "epsilon")})
    for name, v in hyper.items():
        lo, hi, lo_open, hi_open = HYPERPARAMETER_RANGES[name]
        hyper[name] = real_scalar(name, v, lo, hi, lo_open=lo_open, hi_open=hi_open)
    opts, model = _gd(params)
    parameters = {**model, **opts, "dtype": C.dtype_name(dtype)}
    edge = {"edge": np.float64(optimizer_edge(optimizer, **hyper))}
    adaptive = optimizer in ("rmsprop", "adam")
    spec = _DATAPOINT_ADAPTIVE if adaptive else _DATAPOINT
    if forces:
        parameters["forces"] = True
        spec = _with_forces(spec, _datapoint_inputs(**model))
    if optimizer == "gd":
        return vector.run(spec, parameters, model, **opts, coords=edge)
    return vector.run(spec, {**parameters, "optimizer": optimizer, **hyper},
                      model, **opts, optimizer=(optimizer, hyper),
                      coords={**edge, **{k: np.float64(v) for k, v in hyper.items()}},
                      roles={"sharpness": "preconditioned_sharpness"} if adaptive else None,
                      attrs={"optimizer": optimizer})


# --------------------------------------------------------------------------- gradient flows
def _rhs_two_param(t, y, lam, E):
    dz, dT = maps.two_param_rhs(y[0], y[1], lam, E)
    return np.array([dz, dT])


def _prepare_pair_flow(**model):
    inp = _two_param_inputs(**model)
    return (vector.VectorInputs(inp.members, np.stack([inp.x0, inp.y0], axis=1), inp.p[:, None],
                                np.empty((0, 0)), inp.coords, inp.names),
            [(float(inp.p[i]), float(inp.r[i])) for i in range(inp.x0.size)])


def _observe_pair(Y, inp):
    z, T = Y[:, :, 0], Y[:, :, 1]
    return {"z": (z, ()), "T": (T, ()), "sharpness": (T.copy(), ()), "loss": (0.5 * z * z, ())}


_TWO_PARAM_FLOW = flow.Flow(_flow_record(
    _TWO_PARAM.record, "Two-parameter model, gradient flow in rescaled coordinates", f"Eq. 8 with P = 2, {_REF}",
    {"eps": 0.1, "z0": 0.1, "T0": [1.0, 1.5], "times": [0.0, 1.0, 2.0, 5.0]}),
    _prepare_pair_flow, _rhs_two_param, _observe_pair)


def two_param_flow(*, eps=None, a=None, E_tilde=0.0, z0, T0, times, tol=C.TOL, diverge_loss=None, rtol=1e-12,
                   atol=1e-14, method="DOP853", max_evals=MAX_EVALS) -> xr.Dataset:
    """Gradient flow of the two-parameter model in rescaled coordinates (Eq. 8 closed with P = 2).

    dz̃/dt = −z̃ T,  dT/dt = −2 z̃ T(1),  T(1) = (1+λ) T − λ (2z̃ + Ẽ).
    One unit of time corresponds to one GD step (rate η absorbed in the rescaling).

    Parameters
    ----------
    eps, a, E_tilde, z0, T0
        As in :func:`two_param`.
    times : array
        Sample times: 1 to 10⁶ finite values ≥ 0, strictly increasing; the flow starts at t = 0.
    tol, diverge_loss : float
        As in :func:`two_param`, tested at the sample times.
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
        ``z``, ``T``, ``sharpness``, ``loss`` on (param dims..., time), NaN after a member
        stopped; per member ``status`` (see :mod:`eosdyn.drivers.flow`), ``diverged_at``,
        ``converged_at`` (times, NaN = never), ``t_stop`` (time reached) and ``final_*`` at the
        last valid sample.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.two_param_flow(eps=0.1, z0=0.1, T0=1.0, times=[0.0, 1.0, 2.0])
    >>> ds.z.dims
    ('time',)
    """
    opts, model = _flow_opts(dict(locals()))
    return flow.run(_TWO_PARAM_FLOW, {**model, **opts}, model, **opts)


def _rhs_hierarchy(t, y, q):
    dw = np.empty(q.shape[0])
    dz = maps._hierarchy_rhs(y[0], y[1:], q, dw)
    return np.concatenate(([dz], dw))


def _prepare_hierarchy_flow(**model):
    inp = _hierarchy_inputs(**model)
    return inp, [(inp.prm[i].copy(),) for i in range(inp.y0.shape[0])]


def _observe_hierarchy(Y, inp):
    z, W = Y[:, :, 0], Y[:, :, 1:]
    T = W.sum(axis=2)
    return {"z": (z, ()), "T": (T, ()), "w": (W, ("mode",)), "sharpness": (T.copy(), ()), "loss": (0.5 * z * z, ())}


_HIERARCHY_FLOW = flow.Flow(_flow_record(
    _HIERARCHY.record, "One-datapoint model, gradient flow of the rescaled hierarchy", f"Eq. 8, {_REF}",
    {"q": [1.0, -0.5], "w0": [0.5, 0.5], "z0": 0.2, "times": [0.0, 1.0, 3.0]}),
    _prepare_hierarchy_flow, _rhs_hierarchy, _observe_hierarchy, var_attrs=_HIERARCHY.var_attrs)


def hierarchy_flow(*, q, z0, w0=None, T0=None, E_tilde=None, times, tol=C.TOL, diverge_loss=None, rtol=1e-12,
                   atol=1e-14, method="DOP853", max_evals=MAX_EVALS) -> xr.Dataset:
    """Gradient flow of the rescaled hierarchy (Eq. 8) in Q's eigenbasis, for any P.

    dz̃/dt = −z̃ T(0),  dw_i/dt = −2 z̃ q_i w_i  (so dT(k)/dt = −2 z̃ T(k+1)).

    Parameters are those of :func:`hierarchy` with ``times``, ``tol``, ``diverge_loss``,
    ``rtol``, ``atol``, ``method``, ``max_evals`` as in :func:`two_param_flow`; so are the fate
    variables.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.hierarchy_flow(q=[1.0, -0.5], w0=[0.5, 0.5], z0=0.2, times=[0.0, 1.0])
    >>> ds.w.dims
    ('time', 'mode')
    """
    opts, model = _flow_opts(dict(locals()))
    return flow.run(_HIERARCHY_FLOW, {**model, **opts}, model, **opts)


def _rhs_datapoint(t, y, Q, E, eta):
    out = np.empty_like(y)
    maps._one_datapoint_rhs(y, Q, E, eta, out)
    return out


def _prepare_datapoint_flow(**model):
    inp = _datapoint_inputs(**model)
    return inp, [(inp.shared, float(inp.prm[i, 0]), float(inp.prm[i, 1])) for i in range(inp.y0.shape[0])]


def _observe_datapoint(Y, inp):
    n, K, P = Y.shape
    z, T = np.full((n, K), np.nan), np.full((n, K), np.nan)
    g = np.empty(P)
    for i in range(n):
        for k in range(K):
            if np.all(np.isfinite(Y[i, k])):
                z[i, k], T[i, k] = maps._one_datapoint_observe(np.ascontiguousarray(Y[i, k]), inp.shared,
                                                               inp.prm[i, 0], inp.prm[i, 1], g)
    zr = z / inp.prm[:, 1:2]
    return {"theta": (Y, ("param",)), "z": (z, ()), "T": (T, ()), "sharpness": (T.copy(), ()),
            "loss": (0.5 * zr * zr, ())}


_DATAPOINT_FLOW = flow.Flow(_flow_record(
    _DATAPOINT.record, "One-datapoint quadratic model, gradient flow in parameter space", f"Eq. 4-6, {_REF}",
    {"Q": [1.0, -0.1], "theta0": [1.0, 0.5], "eta": 0.1, "times": [0.0, 5.0, 10.0]}),
    _prepare_datapoint_flow, _rhs_datapoint, _observe_datapoint, var_attrs=_DATAPOINT_ATTRS)


def one_datapoint_flow(*, Q, theta0, E=0.0, eta, times, tol=C.TOL, diverge_loss=None, rtol=1e-12, atol=1e-14,
                       method="DOP853", max_evals=MAX_EVALS) -> xr.Dataset:
    """Gradient flow in parameter space with rate η (Eq. 5): dθ/dt = −η z Q θ.

    Time t corresponds to t GD steps of size η (physical gradient-flow time η t).
    Parameters are those of :func:`one_datapoint` with ``times``, ``tol``, ``diverge_loss``,
    ``rtol``, ``atol``, ``method``, ``max_evals`` as in :func:`two_param_flow`.

    Returns
    -------
    xarray.Dataset
        ``theta`` on (dims..., time, param), ``z`` (= η z), ``T`` (= η J Jᵀ), ``sharpness``,
        ``loss`` on (dims..., time), NaN after a member stopped; the fates of
        :func:`two_param_flow` (divergence also: max abs(θ_i) above 1e100); ``final_*``; ``Q``.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.one_datapoint_flow(Q=[1.0, -0.1], theta0=[1.0, 0.5], eta=0.1, times=[0.0, 5.0])
    >>> bool(ds.loss.isel(time=1) < ds.loss.isel(time=0))
    True
    """
    opts, model = _flow_opts(dict(locals()))
    return flow.run(_DATAPOINT_FLOW, {**model, **opts}, model, **opts)


# --------------------------------------------------------------------------- central flow (issue 15)
def _prepare_datapoint_central(*, band, kappa, **model):
    from ..kernels.derivatives import _check_band_kappa

    band, kappa = _check_band_kappa(band, kappa)
    inp = _datapoint_inputs(**model)
    P = inp.shared.shape[0]
    Q3 = np.ascontiguousarray(inp.shared[None])          # D = 1: f(θ) = −E/2 + ½ θᵀQθ, J₀ = 0
    args = [(Q3, np.zeros((1, P)), np.array([-0.5 * float(inp.prm[i, 0])]), float(inp.prm[i, 1]), True, band,
             kappa) for i in range(inp.y0.shape[0])]
    inp.central = (band, kappa)
    return inp, args


def _rhs_datapoint_central(t, y, Q, J0, z0, eta, edge, band, kappa):
    from ..kernels.derivatives import _flow_rhs

    return _flow_rhs(t, y, Q, J0, z0, eta, edge, band, kappa)


def _observe_datapoint_central(Y, inp):
    from ..kernels.derivatives import flow_observables

    out = _observe_datapoint(Y, inp)
    band, kappa = inp.central
    n, K, _ = Y.shape
    extra = {k: np.full((n, K), np.nan) for k in ("hessian_sharpness", "predicted_loss", "oscillation_variance")}
    Q3 = inp.shared[None]
    for i in range(n):
        eta, z0 = float(inp.prm[i, 1]), np.array([-0.5 * float(inp.prm[i, 0])])
        for k in range(K):
            if np.all(np.isfinite(Y[i, k])):
                o = flow_observables(Q3, np.zeros((1, Y.shape[2])), z0, Y[i, k], eta, band, kappa)
                for name in extra:
                    extra[name][i, k] = o[name]
    return {**out, **{k: (v, ()) for k, v in extra.items()}}


_DATAPOINT_CENTRAL_ATTRS = {
    **_DATAPOINT_ATTRS,
    "predicted_loss": {"long_name": "central flow's predicted time-averaged GD loss L + ½⟨Σ, H⟩"},
}
_DATAPOINT_CENTRAL = flow.Flow(register(System(
    name=_DATAPOINT.record.name.replace("one_datapoint", "one_datapoint_central_flow"), kind="flow",
    title="One-datapoint quadratic model, central flow in parameter space",
    equations="dθ/dt = −η [∇L + ½ Σ_ij X_ij ∇³L[u_i, u_j]] (Cohen et al. 2025) on Eq. 4 of " + _REF,
    params=_DATAPOINT.record.params, state=_DATAPOINT.record.state, roles=_DATAPOINT.record.roles,
    example={"Q": [1.0, -0.1], "theta0": [1.0, 0.5], "eta": [0.1, 0.9], "times": [0.0, 2.0, 5.0]},
    function=_DATAPOINT.record.function.replace("one_datapoint", "one_datapoint_central_flow"),
    flow_of=_DATAPOINT.record.name, options=_FLOW_OPTIONS, defaults={**_FLOW_DEFAULTS, "rtol": 1e-10,
                                                                      "atol": 1e-12},
    initial=_DATAPOINT.record.initial,
    notes="exact Hessian eigenpairs and third derivatives (eosdyn.kernels.derivatives); before the edge it "
          "is one_datapoint_flow")),
    _prepare_datapoint_central, _rhs_datapoint_central, _observe_datapoint_central,
    var_attrs=_DATAPOINT_CENTRAL_ATTRS)


def one_datapoint_central_flow(*, Q, theta0, E=0.0, eta, times, tol=C.TOL, diverge_loss=None, rtol=1e-10,
                               atol=1e-12, method="DOP853", max_evals=MAX_EVALS, band=0.1,
                               kappa=4.0) -> xr.Dataset:
    """Central flow of the one-datapoint model in parameter space, time in GD steps.

    The central flow of Cohen et al. (2025) with the model's exact derivatives
    (:func:`eosdyn.kernels.derivatives.central_velocity`): gradient flow
    (:func:`one_datapoint_flow`) while η λ_max(H) < 2 − ``band``; at the edge the oscillation
    term ``½ σ² ∇³L[u, u]`` (σ² from the complementarity problem, one eigenvalue here) keeps
    η λ_max(H) at 2. Definitions and the stabilisation ``kappa``: ``docs/flows.md``.

    Parameters
    ----------
    Q, theta0, E, eta
        As in :func:`one_datapoint` (arrays become dims).
    times, tol, diverge_loss, rtol, atol, method, max_evals
        As in :func:`one_datapoint_flow` (``rtol`` default 1e-10, ``atol`` 1e-12).
    band : float, default 0.1
        Eigenvalues with η λ ≥ 2 − ``band`` form the edge subspace (in [0, 2)).
    kappa : float, default 4.0
        Rate (per step) at which η λ on the edge subspace relaxes to 2 (≥ 0).

    Returns
    -------
    xarray.Dataset
        The variables of :func:`one_datapoint_flow` and ``hessian_sharpness`` (η λ_max(H)),
        ``predicted_loss`` (L + ½⟨Σ, H⟩) and ``oscillation_variance`` (tr Σ); the flow fates.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.one_datapoint_central_flow(Q=[1.0, -0.1], theta0=[1.0, 0.5], eta=0.1,
    ...                                            times=[0.0, 5.0])
    >>> gf = eosdyn.toy.one_datapoint_flow(Q=[1.0, -0.1], theta0=[1.0, 0.5], eta=0.1, times=[0.0, 5.0])
    >>> bool(abs(ds.loss - gf.loss).max() < 1e-8)      # far below the edge: gradient flow
    True
    """
    opts, model = _flow_opts(dict(locals()))
    return flow.run(_DATAPOINT_CENTRAL, {**model, **opts}, model, **opts)
