"""Continuous-time models of GD at the edge of stability on random QRMs, in parameter space.

* :func:`central_flow`: the central flow of Cohen, Damian, Talwalkar, Kolter, Lee (ICLR 2025,
  arXiv 2410.24206) on the GD step axis (one unit of time per GD step), with exact
  derivatives (:mod:`eosdyn.kernels.derivatives`); ``edge=False`` gives gradient flow in θ;
* :func:`self_stabilization`: GD in parameter space θ recording the self-stabilization
  quantities of Damian, Nichani, Lee (ICLR 2023, arXiv 2209.15594) (and optionally θ);
* :func:`flow_comparison`: one QRM member through the EOS by GD, gradient flow and central flow
  on one step axis (the catalog entry ``central_flow_qrm``).

The model is the QRM of :mod:`eosdyn.models.qrm` written in parameter space,
``f(θ) = z₀ + J₀ θ + ½ Q(θ, θ)``, θ₀ = 0, with the same seeds and rescaled widths (Eq. 29):
GD in θ, ``θ' = θ − η Jᵀ z``, is exactly the (z, J) iteration of Eq. 25-26. See ``docs/flows.md``.
"""

from __future__ import annotations

import functools

import numpy as np
import xarray as xr

from .. import sweep as _sweep
from .._validate import check_gd_options, check_int, check_range, check_times
from ..conventions import STATUS_VALUES, fate_variables, label, set_roles
from ..kernels import derivatives as _d
from ..kernels.integrate import check_flow_options, solve_batch
from ..kernels.lambda_max import lambda_max
from ..kernels.qrm import check_budget, parse_memory
from ..systems import Param, System, register
from .qrm import _fingerprint, _grid, _grid_coords, _seed_dims, initial_state

__all__ = ["central_flow", "self_stabilization", "flow_comparison"]

CF_EQUATIONS = ("central flow dθ/dt = −η[∇L + ½⟨Σ, ∇³L⟩] with the SDCP for Σ (Cohen et al. 2025, "
                "arXiv 2410.24206) on the QRM f(θ) = z0 + J0 θ + ½Q(θ,θ) (Agarwala et al. 2023, Eq. 24-29)")
SS_EQUATIONS = ("GD θ' = θ − η Jᵀz on the QRM (Agarwala et al. 2023, Eq. 24-29); α = −∇L·∇S, β = ‖∇S‖², "
                "2α/β (Damian, Nichani, Lee 2023, arXiv 2209.15594)")
HESSIAN = "eta * lambda_max(H), H = J^T J + sum_a z_a Q_a (the loss Hessian in theta)"
FLOW_MAX_EVALS = 200_000
FLOW_DIVERGE_NORM = 1e100
#: eigenvalues of Σ recorded by central_flow (largest first; tr Σ holds them all)
EDGE_MODES = 4
_FORCES = ("hessian_sharpness", "sharpening_force", "stabilization_strength", "predicted_oscillation")
_PARAMS = (
    Param("D", "number of datapoints D", domain="integer >= 1", dim=False),
    Param("P", "number of parameters P", domain="integer >= 1", dim=False),
    Param("sigma_z", "σ̃_z = D σ_z (rescaled residual width, Eq. 29)", domain="[0, inf)"),
    Param("sigma_J", "σ̃_J = (D P)^{1/4} σ_J (rescaled Jacobian width, Eq. 29); or sigma_J2 = σ̃_J²",
          domain="[0, inf)"),
    Param("eta", "learning rate η", domain="(0, inf)"),
)


def _member(a, S, grid):
    return np.moveaxis(a.reshape((S,) + grid.shape + a.shape[2:]), 0, len(grid.shape))


# ----------------------------------------------------------------------------- central flow
def _cf_rhs(t, y, Q, J0, z0, eta, edge, band, kappa):
    z, J = _d._state(Q, J0, z0, y)
    return _d._central(Q, J, z, eta, band, kappa, edge)[0]


def _cf_diagnostics(Q, J0, z0, theta, eta, edge, band, kappa):
    """Recorded quantities at one sampled θ."""
    z, J = _d._state(Q, J0, z0, theta)
    loss = 0.5 * float(z @ z)
    H = _d._hessian(Q, J, z)
    lam, U = _d._top(H, 1)
    v, X, Ue, le, lmax, res = _d._central(Q, J, z, eta, band, kappa, edge)
    eig = np.zeros(EDGE_MODES)
    if X.size:
        w = np.clip(np.linalg.eigvalsh(X), 0.0, None)[::-1]
        var = float(np.sum(w))
        count = int(np.sum(w > 1e-12 * max(w.max(), 1e-300)))
        pred = loss + 0.5 * float(np.sum(X * (Ue.T @ H @ Ue)))
        eig[:min(EDGE_MODES, w.size)] = w[:EDGE_MODES]
    else:
        var, count, pred = 0.0, 0, loss
    return loss, eta * float(lam[0]), var, count, pred, res, eig


def _cf_chunk(seeds, *, D, P, grid, times, tol, diverge_loss, options, edge, band, kappa, record_theta):
    sz, sj, eta_flat = grid.flat("sigma_z"), grid.flat("sigma_J"), grid.flat("eta")
    B, k, S = grid.size, times.size, len(seeds)
    names = ("sharpness", "hessian_sharpness", "loss", "predicted_loss", "oscillation_variance",
             "sdcp_residual")
    out = {v: np.full((S, B, k), np.nan) for v in names}
    out["edge_count"] = np.full((S, B, k), -1, np.int64)
    eigs = np.full((S, B, k, EDGE_MODES), np.nan)
    th_out = np.full((S, B, k, P), np.nan) if record_theta else None
    per = {v: np.full((S, B), np.nan) for v in ("diverged_at", "converged_at", "t_stop", "final_sharpness",
                                                 "final_loss")}
    per["status"] = np.empty((S, B), np.int8)
    for i, s in enumerate(seeds):
        Q, J0, z0 = initial_state(int(s), D=D, P=P, sigma_z=sz, sigma_J=sj)
        for b in range(B):
            eta = float(eta_flat[b])
            args = [(Q, J0[b], z0[b], eta, edge, band, kappa)]
            try:
                Y, st, ts = solve_batch(_cf_rhs, np.zeros((1, P)), times, args,
                                        diverge_norm=FLOW_DIVERGE_NORM, **options)
                Y, st, ts = Y[0], int(st[0]), float(ts[0])
            except (ValueError, ArithmeticError, np.linalg.LinAlgError):
                Y = np.full((k, P), np.nan)
                Y[times == 0.0] = 0.0
                st, ts = STATUS_VALUES["failed"], 0.0
            dat = ts if st == STATUS_VALUES["diverged"] else np.nan
            for j in range(k):
                if not np.all(np.isfinite(Y[j])):
                    continue
                with np.errstate(all="ignore"):
                    try:
                        L, hs, var, cnt, pred, res, eig = _cf_diagnostics(Q, J0[b], z0[b], Y[j], eta, edge, band, kappa)
                        z, J = _d._state(Q, J0[b], z0[b], Y[j])
                        sh = eta * float(lambda_max(J[None])[0])
                    except (ValueError, np.linalg.LinAlgError):
                        L = np.nan
                if not (np.isfinite(L) and L <= diverge_loss and np.isfinite(sh)):
                    st, ts, dat = STATUS_VALUES["diverged"], float(min(ts, times[j])), float(min(ts, times[j]))
                    Y[j:] = np.nan
                    break
                for v, x in zip(names, (sh, hs, L, pred, var, res)):
                    out[v][i, b, j] = x
                out["edge_count"][i, b, j] = cnt
                eigs[i, b, j] = eig
            if record_theta:
                th_out[i, b] = Y
            L = out["loss"][i, b]
            below = np.isfinite(L) & (L < tol)
            cat = float(times[np.argmax(below)]) if below.any() else np.nan
            if st == STATUS_VALUES["max_steps"] and np.isfinite(cat):
                st = STATUS_VALUES["converged"]
            valid = np.flatnonzero(np.isfinite(L))
            per["status"][i, b], per["t_stop"][i, b] = st, ts
            per["diverged_at"][i, b], per["converged_at"][i, b] = dat, cat
            if valid.size:
                per["final_loss"][i, b] = L[valid[-1]]
                per["final_sharpness"][i, b] = out["sharpness"][i, b, valid[-1]]
    dims = _seed_dims(grid)
    data = {v: (dims + ("time",), _member(a, S, grid)) for v, a in out.items()}
    data.update({v: (dims, _member(a, S, grid)) for v, a in per.items()})
    data["oscillation_eigenvalues"] = (dims + ("time", "edge_mode"), _member(eigs, S, grid))
    if record_theta:
        data["theta"] = (dims + ("time", "param"), _member(th_out, S, grid))
    return xr.Dataset(data, coords={"seed": np.asarray(seeds, np.int64)})


def central_flow(*, D, P, sigma_z, sigma_J=None, sigma_J2=None, eta=1.0, seeds, times, tol=1e-12,
                 diverge_loss=1e8, rtol=1e-10, atol=1e-12, method="DOP853", max_evals=FLOW_MAX_EVALS,
                 edge=True, band=_d.EDGE_BAND, kappa=_d.EDGE_RATE, record_theta=False, max_memory="2GB",
                 chunk_size=None, resume=None, scheduler=None, blas_threads=1) -> xr.Dataset:
    """Central flow of random QRMs on the GD step axis, with exact derivatives.

    In parameter space (θ₀ = 0, the QRM's seeds and widths of :func:`eosdyn.qrm.sweep`):

        dθ/dt = −η [∇L(θ) + ½ Σ_ij X_ij ∇³L[u_i, u_j]],     Σ = U X Uᵀ,

    ``U`` the Hessian eigenvectors whose η λ_i lie within ``band`` of 2, ``X ⪰ 0`` the solution
    of the semidefinite complementarity problem (:func:`eosdyn.kernels.derivatives.solve_sdcp`)
    that keeps η λ_max(H) ≤ 2 (one eigenvalue at the edge: ``X = σ² = 2α/β``). Below the
    band it is gradient flow ``dθ/dt = −η ∇L`` (and ``edge=False`` gives gradient flow
    throughout). Integrated member by member with the shared
    :func:`eosdyn.kernels.integrate.solve_batch`; the seeds run through :func:`eosdyn.sweep.run`.

    Parameters
    ----------
    D, P, sigma_z, sigma_J, sigma_J2, eta, seeds
        As in :func:`eosdyn.qrm.sweep`.
    times : 1-D array
        Sample times in GD steps (finite, ≥ 0, strictly increasing).
    tol, diverge_loss, rtol, atol, method, max_evals, max_memory, chunk_size, resume, scheduler, blas_threads
        As in :func:`eosdyn.qrm.gradient_flow` (``atol`` default 1e-12, ``max_evals`` 200,000).
    edge : bool, default True
        False: gradient flow in θ (no oscillation term).
    band : float, default 0.1
        Eigenvalues with η λ ≥ 2 − ``band`` form the edge subspace (in [0, 2)).
    kappa : float, default 4.0
        Rate (per step) at which η λ on the edge subspace relaxes to 2 (≥ 0; Baumgarte
        stabilisation of the constraint; 0 is the paper's exact constraint ``d(ηλ)/dt ≤ 0``).
    record_theta : bool, default False
        Also record θ (dims ..., ``time``, ``param``).

    Returns
    -------
    xarray.Dataset
        Dims: grid dims, ``seed``, ``time``; ``sharpness`` (η λ_max(J Jᵀ), as the QRM sweep),
        ``hessian_sharpness`` (η λ_max(H)), ``loss``, ``predicted_loss`` (L + ½⟨Σ, H⟩, the
        predicted time-averaged GD loss), ``oscillation_variance`` (tr Σ), ``oscillation_eigenvalues``
        (the largest four eigenvalues of Σ, on ``edge_mode``), ``edge_count`` (rank of
        Σ), ``sdcp_residual``; the flow fate schema (``status``, ``diverged_at``,
        ``converged_at``, ``t_stop``, ``final_sharpness``, ``final_loss``); a failed integration
        is a member with status ``failed``, never an exception.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.qrm.central_flow(D=3, P=5, sigma_z=0.3, sigma_J=0.5, seeds=1, times=[0.0, 1.0, 2.0])
    >>> bool((ds.loss.diff("time") <= 0).all()), str(eosdyn.conventions.decode_status(ds.status).item())
    (True, 'max_steps')
    """
    D, P, grid, given = _grid(D, P, sigma_z, sigma_J, sigma_J2, eta)
    times = check_times(times)
    _, _, _, tol, diverge_loss, _ = check_gd_options(steps=0, record_every=None, stop="never", tol=tol,
                                                     diverge_loss=diverge_loss, dtype="float64")
    rtol, atol, method, _, max_evals = check_flow_options(
        rtol=rtol, atol=atol, method=method, diverge_norm=FLOW_DIVERGE_NORM, max_evals=max_evals)
    for name, v in (("edge", edge), ("record_theta", record_theta)):
        if not isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False; got {v!r}")
    check_range("band", band, 0.0, 2.0, hi_open=True)
    check_range("kappa", kappa, 0.0, None)
    budget = parse_memory(max_memory)
    plan = _sweep.plan(seeds, chunk_size=chunk_size, scheduler=scheduler, blas_threads=blas_threads)
    B, n_seeds, n_times = grid.size, plan.seeds.size, times.size
    need = 8 * (plan.concurrent * (B * n_times * (P + 10) + 4 * D * P * P)
                + 2 * B * n_seeds * n_times * (8 + (P if record_theta else 0)))
    check_budget(need, budget, f"this flow ({B} grid points x {n_seeds} seeds, {n_times} times, D={D}, P={P})",
                 "use fewer times, seeds or grid points, or raise max_memory")
    params = dict(D=D, P=P, **given, seeds=plan.seeds, times=times, tol=tol, diverge_loss=diverge_loss,
                  rtol=rtol, atol=atol, method=method, max_evals=max_evals, edge=bool(edge), band=float(band),
                  kappa=float(kappa), record_theta=bool(record_theta))
    cfg = {"function": "eosdyn.qrm.central_flow", "parameters": params}
    chunk = functools.partial(_cf_chunk, D=D, P=P, grid=grid, times=times, tol=tol, diverge_loss=diverge_loss,
                              options=dict(rtol=rtol, atol=atol, method=method, max_evals=max_evals),
                              edge=bool(edge), band=float(band), kappa=float(kappa),
                              record_theta=bool(record_theta))
    ds = _sweep.execute(chunk, plan, resume=resume, fingerprint=_fingerprint(cfg))
    ds = ds.assign_coords(time=times, edge_mode=np.arange(EDGE_MODES, dtype=np.int64), **_grid_coords(grid))
    ds = ds.assign_coords(D=np.int64(D), P=np.int64(P))
    keep = ["sharpness", "hessian_sharpness", "loss", "predicted_loss", "oscillation_variance",
            "oscillation_eigenvalues", "edge_count",
            "sdcp_residual", "status", "diverged_at", "converged_at", "t_stop", "final_sharpness", "final_loss"]
    ds = ds[keep + (["theta"] if record_theta else [])]
    roles = dict(sharpness="sharpness", loss="loss")
    if record_theta:
        roles["parameters"] = "theta"
    set_roles(ds, **roles)
    what = "central flow" if edge else "gradient flow in parameter space"
    ds = label(ds, model="qrm_central_flow", title=f"Random quadratic regression model, {what} (D={D}, P={P})",
               equations=CF_EQUATIONS, config=cfg,
               attrs={"hessian_sharpness_definition": HESSIAN, "integrator": f"scipy.integrate.OdeSolver method={method}",
                      "rtol": rtol, "atol": atol, "max_evals": int(max_evals), "tol": float(tol),
                      "diverge_loss": float(diverge_loss), "stop": "never", "edge": int(bool(edge)),
                      "band": float(band), "kappa": float(kappa), "divergence_threshold": FLOW_DIVERGE_NORM,
                      "time_unit": "one GD step"})
    for v, what in (("final_sharpness", "sharpness η λ_max at the member's last finite sample"),
                    ("final_loss", "loss at the member's last finite sample")):
        ds[v].attrs["long_name"] = what
    return ds


# ----------------------------------------------------------------------------- GD in θ with the forces
def _gd_member(Q, J0, z0, eta, steps, every, tol, diverge_loss, stop, record_theta, forces=True):
    """GD in θ for one member; returns (records dict over the recorded steps, fate tuple)."""
    P = Q.shape[1]
    rec_steps = np.arange(0, steps + 1, every) if every else np.array([0, steps])
    R = rec_steps.size
    rec = {v: np.full(R, np.nan) for v in ("sharpness", "loss") + (_FORCES if forces else ())}
    th_rec = np.full((R, P), np.nan) if record_theta else None
    u_rec = np.full((R, P), np.nan) if record_theta else None
    theta = np.zeros(P)
    status, taken, dat, cat = STATUS_VALUES["max_steps"], steps, -1, -1
    r = 0
    for t in range(steps + 1):
        z, J = _d._state(Q, J0, z0, theta)
        with np.errstate(all="ignore"):
            L = 0.5 * float(z @ z)
        bad = not (np.isfinite(L) and L <= diverge_loss and np.all(np.isfinite(J)))
        if bad:
            status, taken, dat = STATUS_VALUES["diverged"], t, t
            break
        if cat < 0 and L < tol:
            cat = t
        want = (every and t % every == 0) or (not every and t == 0)
        if want or (not every and (t == steps or (stop == "member" and cat >= 0))):
            k = r if every else (0 if t == 0 else 1)
            rec["loss"][k] = L
            rec["sharpness"][k] = eta * float(lambda_max(J[None])[0])
            if forces:
                tt = _force_terms(Q, J, z, eta)
                for v in _FORCES:
                    rec[v][k] = tt[v]
            if record_theta:
                th_rec[k] = theta
                u = _d._top(_d._hessian(Q, J, z), 1)[1][:, 0]
                u_rec[k] = u if u[np.argmax(np.abs(u))] > 0 else -u      # sign: largest entry positive
            r += 1 if every else 0
        if cat >= 0 and stop == "member":
            status, taken = STATUS_VALUES["converged"], t
            break
        if t == steps:
            break
        theta = theta - eta * (J.T @ z)
    if status == STATUS_VALUES["max_steps"] and cat >= 0:
        status = STATUS_VALUES["converged"]
    rec_final = {"sharpness": np.nan, "loss": np.nan}
    if status != STATUS_VALUES["diverged"]:
        z, J = _d._state(Q, J0, z0, theta)
        rec_final = {"loss": 0.5 * float(z @ z), "sharpness": eta * float(lambda_max(J[None])[0])}
    return rec, (th_rec, u_rec), (status, taken, dat, cat), rec_final


def _force_terms(Q, J, z, eta):
    S, alpha, beta = _d._force_rows(Q, J[None], z[None])[:, 0]
    return {"hessian_sharpness": eta * float(S), "sharpening_force": float(alpha),
            "stabilization_strength": float(beta), "predicted_oscillation": 2.0 * alpha / beta if beta > 0 else np.nan}


def _ss_chunk(seeds, *, D, P, grid, steps, every, stop, tol, diverge_loss, record_theta, forces):
    sz, sj, eta_flat = grid.flat("sigma_z"), grid.flat("sigma_J"), grid.flat("eta")
    B, S = grid.size, len(seeds)
    R = steps // every + 1 if every else 2
    names = ("sharpness", "loss") + (_FORCES if forces else ())
    traj = {v: np.full((S, B, R), np.nan) for v in names}
    th = np.full((S, B, R, P), np.nan) if record_theta else None
    uu = np.full((S, B, R, P), np.nan) if record_theta else None
    fate = {v: np.empty((S, B), np.int64) for v in ("status", "steps_taken", "diverged_at", "converged_at")}
    fin = {v: np.full((S, B), np.nan) for v in ("final_sharpness", "final_loss")}
    for i, s in enumerate(seeds):
        Q, J0, z0 = initial_state(int(s), D=D, P=P, sigma_z=sz, sigma_J=sj)
        for b in range(B):
            rec, threc, f, final = _gd_member(Q, J0[b], z0[b], float(eta_flat[b]), steps, every, tol,
                                              diverge_loss, stop, record_theta, forces)
            for v in names:
                traj[v][i, b] = rec[v]
            if record_theta:
                th[i, b], uu[i, b] = threc
            for v, x in zip(("status", "steps_taken", "diverged_at", "converged_at"), f):
                fate[v][i, b] = x
            fin["final_sharpness"][i, b], fin["final_loss"][i, b] = final["sharpness"], final["loss"]
    dims = _seed_dims(grid)
    fv = fate_variables(fate["status"], fate["steps_taken"], fate["diverged_at"], fate["converged_at"])
    data = {v: (dims, _member(a, S, grid)) for v, a in fv.items()}
    data.update({v: (dims, _member(a, S, grid)) for v, a in fin.items()})
    data.update({v: (dims + ("step",), _member(a, S, grid)) for v, a in traj.items()})
    if record_theta:
        data["theta"] = (dims + ("step", "param"), _member(th, S, grid))
        data["top_eigenvector"] = (dims + ("step", "param"), _member(uu, S, grid))
    return xr.Dataset(data, coords={"seed": np.asarray(seeds, np.int64)})


def self_stabilization(*, D, P, sigma_z, sigma_J=None, sigma_J2=None, eta=1.0, seeds, steps, record_every=None,
                       stop="member", tol=1e-12, diverge_loss=1e8, dtype="float64", record_theta=False,
                       max_memory="2GB", chunk_size=None, resume=None, scheduler=None,
                       blas_threads=1) -> xr.Dataset:
    """GD on random QRMs in parameter space, recording the self-stabilization quantities.

    The same trajectories as :func:`eosdyn.qrm.sweep` (same seeds and widths; GD in θ from
    θ₀ = 0 is the (z, J) iteration of Eq. 25-26), and at every recorded step, with
    ``S = λ_max(H)``, ``H = Jᵀ J + Σ_a z_a Q_a``, ``u`` its unit eigenvector and the exact
    ``∇S = 2 Q(u,·)ᵀ J u + Jᵀ (uᵀQ_a u)_a``: ``hessian_sharpness`` η S, ``sharpening_force``
    α = −∇L·∇S, ``stabilization_strength`` β = ‖∇S‖² and ``predicted_oscillation`` 2α/β,
    the squared oscillation amplitude along ``u`` predicted by self-stabilization (Damian,
    Nichani, Lee 2023). Optionally θ itself (``record_theta``).

    Parameters
    ----------
    D, P, sigma_z, sigma_J, sigma_J2, eta, seeds, steps, record_every, tol, diverge_loss
        As in :func:`eosdyn.qrm.sweep`.
    stop : {"member", "never"}
        ``"member"`` stops a member at convergence or divergence; ``"never"`` runs converged
        members on (``"batch"`` is not offered: members run one at a time).
    dtype : {"float64"}
        Only float64 (the derivatives are exact in float64).
    record_theta : bool, default False
        Also record θ and ``top_eigenvector`` u (unit, its largest entry positive; dims ...,
        ``step``, ``param``), for the measured oscillation along u
        (:func:`eosdyn.analysis.measured_oscillation`).
    max_memory, chunk_size, resume, scheduler, blas_threads
        As in :func:`eosdyn.qrm.sweep`.

    Returns
    -------
    xarray.Dataset
        Dims: grid dims, ``seed``, ``step``; ``sharpness`` (η λ_max(J Jᵀ)), ``loss``, the four
        quantities above (and ``theta``); the GD fate schema.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.qrm.self_stabilization(D=3, P=5, sigma_z=0.3, sigma_J=0.5, seeds=1, steps=4, record_every=2)
    >>> ds.step.values.tolist(), sorted(v for v in ds.data_vars if v.startswith("s"))[:3]
    ([0, 2, 4], ['sharpening_force', 'sharpness', 'stabilization_strength'])
    """
    D, P, grid, given = _grid(D, P, sigma_z, sigma_J, sigma_J2, eta)
    steps, every, stop, tol, diverge_loss, dt = check_gd_options(
        steps=steps, record_every=record_every, stop=stop, tol=tol, diverge_loss=diverge_loss, dtype=dtype)
    if stop == "batch":
        raise ValueError("stop must be 'member' or 'never' for eosdyn.qrm.self_stabilization; got 'batch'")
    if dt != np.float64:
        raise ValueError(f"dtype must be 'float64' for eosdyn.qrm.self_stabilization; got {dt.name!r}")
    if not isinstance(record_theta, (bool, np.bool_)):
        raise TypeError(f"record_theta must be True or False; got {record_theta!r}")
    every = int(every) if every else 0
    budget = parse_memory(max_memory)
    plan = _sweep.plan(seeds, chunk_size=chunk_size, scheduler=scheduler, blas_threads=blas_threads)
    B, n_seeds = grid.size, plan.seeds.size
    R = steps // every + 1 if every else 2
    need = 8 * (plan.concurrent * 3 * D * P * P + 2 * B * n_seeds * R * (6 + (2 * P if record_theta else 0)))
    check_budget(need, budget, f"this run ({B} grid points x {n_seeds} seeds, {R} records, D={D}, P={P})",
                 "record fewer steps, seeds or grid points, or raise max_memory")
    params = dict(D=D, P=P, **given, seeds=plan.seeds, steps=steps, record_every=every or None, stop=stop,
                  tol=tol, diverge_loss=diverge_loss, dtype="float64", record_theta=bool(record_theta))
    cfg = {"function": "eosdyn.qrm.self_stabilization", "parameters": params}
    chunk = functools.partial(_ss_chunk, D=D, P=P, grid=grid, steps=steps, every=every, stop=stop, tol=tol,
                              diverge_loss=diverge_loss, record_theta=bool(record_theta), forces=True)
    ds = _sweep.execute(chunk, plan, resume=resume, fingerprint=_fingerprint(cfg))
    if every:
        step = np.arange(0, steps + 1, every, dtype=np.int64)
    else:
        n = int(ds["steps_taken"].max())
        last = ds.isel(step=1).where(ds["steps_taken"] == n)
        for v in ("sharpness", "loss") + _FORCES + (("theta", "top_eigenvector") if record_theta else ()):
            ds[v] = xr.concat([ds[v].isel(step=0), last[v]], dim="step").transpose(*ds[v].dims)
        step = np.array([0, n], np.int64)
        if n == 0:
            ds = ds.isel(step=[0])
            step = step[:1]
    ds = ds.assign_coords(step=step, **_grid_coords(grid)).assign_coords(D=np.int64(D), P=np.int64(P))
    keep = ["sharpness", "loss", *_FORCES, "status", "steps_taken", "diverged_at", "converged_at",
            "final_sharpness", "final_loss"]
    ds = ds[keep + (["theta", "top_eigenvector"] if record_theta else [])]
    roles = dict(sharpness="sharpness", loss="loss")
    if record_theta:
        roles["parameters"] = "theta"
    set_roles(ds, **roles)
    return label(ds, model="qrm_self_stabilization",
                 title=f"Random quadratic regression model, GD in parameter space (D={D}, P={P})",
                 equations=SS_EQUATIONS, config=cfg,
                 attrs={"hessian_sharpness_definition": HESSIAN, "tol": float(tol),
                        "diverge_loss": float(diverge_loss), "stop": stop})


# ----------------------------------------------------------------------------- the comparison recipe
def flow_comparison(*, D=60, P=120, sigma_z=0.35, sigma_J2=0.1, eta=1.0, seed=0, steps=1000, rtol=1e-10,
                    atol=1e-12, band=_d.EDGE_BAND, kappa=_d.EDGE_RATE) -> xr.Dataset:
    """One QRM member through the edge of stability by GD, gradient flow and central flow.

    All three on the GD step axis (step t ↔ time t), from the same θ₀ = 0: GD with the
    self-stabilization quantities (:func:`self_stabilization`, every step), gradient flow and
    the central flow (:func:`central_flow` with ``edge=False`` and ``True``), each with θ.

    Returns
    -------
    xarray.Dataset
        Dims ``method`` (``gd``, ``gradient_flow``, ``central_flow``), ``step``, ``param``:
        ``theta``, ``loss``, ``sharpness``, ``hessian_sharpness``, ``predicted_loss`` (flows;
        NaN for GD), ``oscillation_variance``; the GD forces (``sharpening_force``,
        ``stabilization_strength``, ``predicted_oscillation``) and per method ``status``.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.qrm.flow_comparison(D=3, P=5, sigma_z=0.3, sigma_J2=0.25, steps=3)
    >>> ds.method.values.tolist(), ds.theta.shape
    (['gd', 'gradient_flow', 'central_flow'], (3, 4, 5))
    """
    steps = check_int("steps", steps, 1, 10**6)
    seed = check_int("seed", seed, 0)
    common = dict(D=D, P=P, sigma_z=sigma_z, sigma_J2=sigma_J2, eta=eta, seeds=[seed])
    for name, v in (("sigma_z", sigma_z), ("sigma_J2", sigma_J2), ("eta", eta)):
        if isinstance(v, xr.DataArray) or np.ndim(v) != 0:
            raise ValueError(f"{name} must be a scalar for flow_comparison; got {v!r}")
    # every option is checked before anything runs
    _grid(D, P, sigma_z, None, sigma_J2, eta)
    check_flow_options(rtol=rtol, atol=atol, method="DOP853", diverge_norm=FLOW_DIVERGE_NORM, max_evals=1)
    check_range("band", band, 0.0, 2.0, hi_open=True)
    check_range("kappa", kappa, 0.0, None)
    gd = self_stabilization(**common, steps=steps, record_every=1, stop="never", record_theta=True)
    times = np.arange(steps + 1, dtype=float)
    fl = dict(times=times, rtol=rtol, atol=atol, band=band, kappa=kappa, record_theta=True)
    gf = central_flow(**common, edge=False, **fl)
    cf = central_flow(**common, edge=True, **fl)
    step = np.arange(steps + 1, dtype=np.int64)

    def flow(ds):
        return ds.isel(seed=0).rename(time="step").assign_coords(step=step)

    parts = [gd.isel(seed=0), flow(gf), flow(cf)]
    out = {}
    for v in ("theta", "loss", "sharpness", "hessian_sharpness", "predicted_loss", "oscillation_variance"):
        arrs = [p[v] if v in p else xr.full_like(parts[0]["loss"], np.nan) for p in parts]
        out[v] = xr.concat([a.drop_vars([c for c in a.coords if c not in ("step", "param")]) for a in arrs],
                           dim="method")
    ds = xr.Dataset(out)
    for v in ("sharpening_force", "stabilization_strength", "predicted_oscillation"):
        ds[v] = gd[v].isel(seed=0).drop_vars([c for c in gd[v].coords if c != "step"])
    ds["status"] = ("method", np.array([int(p["status"]) for p in parts], np.int8))
    ds = ds.assign_coords(method=["gd", "gradient_flow", "central_flow"], step=step, D=np.int64(D), P=np.int64(P),
                          sigma_z=np.float64(sigma_z), sigma_J2=np.float64(sigma_J2), eta=np.float64(eta),
                          seed=np.int64(seed))
    ds["status"].attrs.update(gd["status"].attrs)
    set_roles(ds, sharpness="sharpness", loss="loss", parameters="theta")
    params = dict(D=D, P=P, sigma_z=sigma_z, sigma_J2=sigma_J2, eta=eta, seed=seed, steps=steps, rtol=rtol,
                  atol=atol, band=band, kappa=kappa)
    return label(ds, model="qrm_flow_comparison",
                 title=f"QRM through the edge of stability: GD, gradient flow, central flow (D={D}, P={P})",
                 equations=CF_EQUATIONS, config={"function": "eosdyn.qrm.flow_comparison", "parameters": params},
                 attrs={"hessian_sharpness_definition": HESSIAN, "time_unit": "one GD step"})


# ----------------------------------------------------------------------------- registry
register(System(
    name="eosdyn.qrm.central_flow", kind="flow",
    title="Random quadratic regression model, central flow", equations=CF_EQUATIONS, params=_PARAMS,
    state=(), roles={"sharpness": "sharpness", "loss": "loss"},
    example={"D": 3, "P": 4, "sigma_z": [0.5, 1.0], "sigma_J": 0.5, "seeds": 2, "times": [0.0, 0.5, 1.0, 2.0]},
    function="eosdyn.models.central.central_flow", random=True, flow_of="eosdyn.qrm.self_stabilization",
    options=("tol", "diverge_loss", "seeds", "times", "rtol", "atol", "max_evals"),
    defaults={"tol": 1e-12, "diverge_loss": 1e8, "rtol": 1e-10, "atol": 1e-12, "max_evals": FLOW_MAX_EVALS},
    notes="Parameter space θ (θ0 = 0), time in GD steps; exact Hessian eigenpairs and third derivatives; "
          "edge=False is gradient flow in θ.",
))

register(System(
    name="eosdyn.qrm.self_stabilization", kind="parameter_gd",
    title="Random quadratic regression model, GD in parameter space with self-stabilization forces",
    equations=SS_EQUATIONS, params=_PARAMS, state=(), roles={"sharpness": "sharpness", "loss": "loss"},
    example={"D": 3, "P": 5, "sigma_z": [0.3, 1.5], "sigma_J2": 0.3, "seeds": 2, "steps": 20, "record_every": 1},
    function="eosdyn.models.central.self_stabilization", random=True,
    options=("steps", "record_every", "stop", "tol", "diverge_loss", "dtype", "seeds"),
    defaults={"record_every": None, "stop": "member", "tol": 1e-12, "diverge_loss": 1e8, "dtype": "float64"},
    notes="float64 only; stop 'member' or 'never'; members one at a time (exact eigenpairs per record).",
))
