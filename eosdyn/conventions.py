"""Dataset conventions shared by every eosdyn simulation.

One table (:data:`VARIABLES`) gives each variable and coordinate name its CF
``long_name`` and ``units``; :func:`label` applies it together with the dataset
attributes (``Conventions``, ``title``, ``source``, ``model``, ``equations``,
``history``, ``eosdyn_config``); :func:`check_dataset` enforces it.

Every simulation ends with ``label(...)`` and every test of a simulation calls
``check_dataset`` on its output, so the conventions live here and nowhere else.

Examples
--------
>>> import numpy as np, xarray as xr
>>> from eosdyn.conventions import label, check_dataset
>>> ds = xr.Dataset({"z": ("step", np.array([0.1, 0.05]))},
...                 coords={"step": np.arange(2)})
>>> ds = label(ds, model="demo", title="a demo", equations="Eq. 10",
...            config={"function": "demo", "parameters": {"eta": 0.1}})
>>> ds.z.attrs["units"]
'1'
>>> check_dataset(ds) is ds
True
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from ._version import __version__

__all__ = ["CONVENTIONS", "VARIABLES", "STATUS_VALUES", "STOP_MODES", "ROLES", "REQUIRED_ATTRS",
           "names_table", "set_roles", "roles_of", "role", "fate_variables", "source", "config_json",
           "read_config", "regenerate", "append_history", "set_variable_attrs", "encode_status",
           "decode_status", "label", "check_dataset"]

CONVENTIONS = "CF-1.10"

#: name -> (long_name, units).  Units "1" means dimensionless.
VARIABLES: dict[str, tuple[str, str]] = {
    # coordinates / dims
    "step": ("GD step", "1"),
    "time": ("gradient-flow time t (in units of the rescaled flow, Eq. 8)", "1"),
    "seed": ("random seed", "1"),
    "eps": ("ε (second eigenvalue of Q is −ε, Eq. 14-15)", "1"),
    "a": ("a = −1/λ (Q eigenvalues {1, λ}, Eq. 65-66)", "1"),
    "lam": ("λ, second eigenvalue of Q (largest is 1)", "1"),
    "E": ("Ẽ = η E = T(−1) − 2 z̃ (conserved)", "1"),
    "eta": ("learning rate η", "1"),
    "z0": ("initial rescaled residual z̃₀", "1"),
    "T0": ("initial rescaled curvature T₀(0) = η λ_max(0)", "1"),
    "theta0": ("initial parameter scale", "1"),
    "init": ("initial condition index", "1"),
    "param": ("parameter index", "1"),
    "mode": ("eigenmode index (0 = largest)", "1"),
    "D": ("number of datapoints D", "1"),
    "P": ("number of parameters P", "1"),
    "sigma_z": ("σ̃_z = D σ_z (rescaled residual scale, Eq. 29)", "1"),
    "sigma_J": ("σ̃_J = (D P)^{1/4} σ_J (rescaled Jacobian scale, Eq. 29)", "1"),
    "sigma_J2": ("σ̃_J² (squared rescaled Jacobian scale, the axis of Figure 4)", "1"),
    "momentum": ("momentum β of heavy ball / Nesterov (v ← β v + g)", "1"),
    "beta1": ("β₁, first-moment decay of Adam", "1"),
    "beta2": ("β₂, second-moment decay of RMSProp / Adam", "1"),
    "epsilon": ("ε, denominator offset of RMSProp / Adam (√v̂ + ε)", "1"),
    "edge": ("edge of stability of the optimizer: largest stable value of its sharpness (2 for GD)", "1"),
    "batch_size": ("minibatch size b: outputs per SGD step (D: full batch)", "1"),
    # state variables
    "z": ("rescaled residual z̃ = η z", "1"),
    "T": ("rescaled curvature T(0) = η J Jᵀ = η λ_max", "1"),
    "T1": ("T(1) = η J Q Jᵀ", "1"),
    "w": ("rescaled Jacobian weight η J_i² in the eigenbasis of Q", "1"),
    "theta": ("parameters θ", "1"),
    "q": ("eigenvalues of Q", "1"),
    "y": ("EOS coordinate y", "1"),
    "sharpness": ("sharpness η λ_max", "1"),
    "loss": ("loss L = ½ Σ z²", "1"),
    "z_norm": ("residual norm ‖z‖", "1"),
    "lambda_max": ("largest NTK eigenvalue λ_max", "1"),
    # fates (every GD dataset; flows use times for diverged_at/converged_at)
    "diverged_at": ("first step (flows: time) at which loss > diverge_loss or the state stopped being finite "
                    "(-1, flows NaN: never)", "1"),
    "converged_at": ("first step (flows: time) at which loss < tol (-1, flows NaN: never)", "1"),
    "steps_taken": ("GD steps this member took", "1"),
    "status": ("fate of the trajectory", "1"),
    "t_stop": ("time the flow reached (the last time unless it diverged or failed)", "1"),
    "final_sharpness": ("sharpness η λ_max at the member's last step (steps_taken)", "1"),
    "preconditioned_sharpness": ("preconditioned sharpness η λ_max(P⁻¹H), P the optimizer's diagonal "
                                 "preconditioner", "1"),
    "batch_sharpness": ("batch sharpness η E_B[g_Bᵀ H_B g_B / ‖g_B‖²] over minibatches B", "1"),
    "final_hessian_sharpness": ("Hessian sharpness η λ_max(H) at the member's last step", "1"),
    "final_preconditioned_sharpness": ("preconditioned sharpness η λ_max(P⁻¹H) at the member's last step", "1"),
    "final_batch_sharpness": ("batch sharpness η E_B[g_Bᵀ H_B g_B / ‖g_B‖²] at the member's last step", "1"),
    "final_loss": ("loss at the member's last step (steps_taken)", "1"),
    "final_z": ("final rescaled residual z̃", "1"),
    "final_T": ("final rescaled curvature T(0)", "1"),
    "final_theta": ("final rescaled coordinate θ̃ of the linear model", "1"),
    "Q": ("matrix Q of the quadratic model (Eq. 4)", "1"),
    "param2": ("second parameter index (columns of Q)", "1"),
    # catalog recipes (eosdyn.recipes)
    "size": ("model size index; D(size), P(size) give the sizes", "1"),
    "r_nl_mc": ("non-linearity ratio r_NL, Monte Carlo estimate (Eq. 27)", "1"),
    "r_nl_mc_stderr": ("standard error of r_nl_mc", "1"),
    "r_nl_theory": ("non-linearity ratio r_NL, exact closed form (eosdyn.theory.r_nl)", "1"),
    "r_nl_paper": ("non-linearity ratio as printed in the paper, eta sigma_z D / 2", "1"),
    "theorem41_mc": ("E[lambda_max''(0)] / E[lambda_max(0)] under gradient flow, Monte Carlo", "1"),
    "theorem41_mc_stderr": ("standard error of theorem41_mc", "1"),
    "theorem41_theory": ("Theorem 4.1 ratio, large-(D, P) closed form (eosdyn.theory.theorem41_ratio)", "1"),
    "theorem41_exact": ("Theorem 4.1 ratio, exact finite-size value (eosdyn.theory.theorem41_ratio exact=True)", "1"),
    "theorem41_paper": ("Theorem 4.1 ratio as printed in the paper, sigma_z^2", "1"),
    "lam_dot_mean": ("E[lambda_max'(0)] / E[lambda_max(0)] under gradient flow, Monte Carlo", "1"),
    "lam_dot_stderr": ("standard error of lam_dot_mean", "1"),
    # analysis outputs (eosdyn.analysis)
    "attractor": ("attractor type of the trajectory tail", "1"),
    "nl_ratio": ("ratio of the non-linear to the linear term of the residual update", "1"),
    # real network (eosdyn.nn, eosdyn.models.taylor)
    "z1": ("residual along the top NTK eigenvector z1 = v1ᵀz", "1"),
    "step_h": ("GD step of a Hessian eigenvalue estimate", "1"),
    "hessian_sharpness": ("η × top eigenvalue of the loss Hessian", "1"),
    "hessian_matvecs": ("Hessian-vector products used for hessian_sharpness", "1"),
    "ntk_residual": ("relative eigen-residual ‖J Jᵀ v − λ v‖ / λ", "1"),
    "matvecs": ("NTK matrix-vector products used by the eigen-solve at this step (-1: none)", "1"),
    "step_seconds": ("wall time of this GD step including eigen-tracking", "s"),
    "n_examples": ("number of training examples n", "1"),
    "t0": ("GD step t0 of the expansion point", "1"),
    "mode_j": ("eigenmode index j (0 = largest)", "1"),
    "mode_l": ("eigenmode index l (0 = largest)", "1"),
    "q1_index": ("index of an extreme eigenvalue (largest first, then smallest)", "1"),
    "ntk_eigenvalue": ("NTK eigenvalue λ_i of J Jᵀ", "1"),
    "z_tilde": ("residual in the NTK eigenbasis z̃_i = v_iᵀ z", "1"),
    "Q_tilde": ("reduced second-order tensor Q̃_ijl = v_i · Q(u_j, u_l)", "1"),
    "q1_eigenvalue": ("extreme eigenvalue of Q1 = Hessian of v1ᵀ f", "1"),
    "qrand_eigenvalue": ("extreme eigenvalue of the Hessian of wᵀ f, w a random unit vector", "1"),
    "q1_residual": ("Lanczos residual estimate |beta_m s_m| / |theta| of q1_eigenvalue", "1"),
    "qrand_residual": ("Lanczos residual estimate |beta_m s_m| / |theta| of qrand_eigenvalue", "1"),
    "u_orthogonality": ("max |UᵀU − I| of the parameter directions u_i = Jᵀ v_i / √λ_i", "1"),
    "projection_seconds": ("wall time of the projections at t0", "s"),
    "feedback": ("index f of a feedback direction w_f (outside span(u))", "1"),
    "feedback_l": ("index g of a feedback direction w_g", "1"),
    "Q_cross": ("reduced second-order tensor v_i · Q(u_j, w_f) between NTK and feedback directions", "1"),
    "Q_feedback": ("reduced second-order tensor v_i · Q(w_f, w_g) among feedback directions", "1"),
    "feedback_source_i": ("w_f comes from Q_i u_j: output mode i (-1: unused slot)", "1"),
    "feedback_source_j": ("w_f comes from Q_i u_j: parameter direction j (-1: unused slot)", "1"),
    "q1u1_outside_fraction": ("fraction of |Q1 u1|^2 outside span(u_1..u_k)", "1"),
    "w_orthogonality": ("max deviation from orthonormality of [W; U] against W", "1"),
    # --- toy models (labels the toy engineer adds go here)
    "E_tilde": ("Ẽ = η E = T(−1) − 2 z̃ (conserved)", "1"),
    "final_w": ("weights w_i at the member's last step (steps_taken)", "1"),
    "n": ("width n of the uv model (u, v in R^n)", "1"),
    "lam0": ("initial NTK eigenvalue λ₀ = (‖u‖² + ‖v‖²)/n of the uv model", "1"),
    "final_lam": ("NTK eigenvalue λ of the uv model at the member's last step (steps_taken)", "1"),
    "loss_growth": ("loss growth max_t L_t / L_0 over the first peak_steps steps (inf: diverged)", "1"),
    "uv_phase": ("phase of the uv model: -1 undecided, 0 lazy, 1 catapult, 2 divergent", "1"),
    # --- QRM (labels the QRM engineer adds go here)
    # central flow and self-stabilization (eosdyn.models.central, eosdyn.analysis.flows)
    "sharpening_force": ("progressive-sharpening force α = −∇L·∇S, S = λ_max of the loss Hessian", "1"),
    "stabilization_strength": ("self-stabilization strength β = ‖∇S‖²", "1"),
    "predicted_oscillation": ("predicted squared oscillation amplitude along the top Hessian eigenvector, 2α/β", "1"),
    "final_sharpening_force": ("progressive-sharpening force α = −∇L·∇S at the member's last step", "1"),
    "final_stabilization_strength": ("self-stabilization strength β = ‖∇S‖² at the member's last step", "1"),
    "final_predicted_oscillation": ("predicted squared oscillation amplitude 2α/β at the member's last step", "1"),
    "predicted_loss": ("predicted time-averaged loss L + ½⟨Σ, H⟩ of the central flow", "1"),
    "oscillation_variance": ("trace of the central flow's oscillation covariance Σ", "1"),
    "final_predicted_loss": ("central flow's predicted time-averaged loss at the member's last sample", "1"),
    "final_oscillation_variance": ("trace of the oscillation covariance Σ at the member's last sample", "1"),
    "oscillation_eigenvalues": ("eigenvalues of the central flow's oscillation covariance Σ, largest first", "1"),
    "edge_mode": ("index of an eigenvalue of Σ (0 = largest)", "1"),
    "edge_count": ("rank of Σ: Hessian eigenvalues held at the edge η λ = 2 (-1: not sampled)", "1"),
    "sdcp_residual": ("residual of the central flow's complementarity problem, relative", "1"),
    "method": ("trajectory: gd, gradient_flow or central_flow", "1"),
    "window": ("length of the averaging window (GD steps)", "1"),
    "time_averaged_loss": ("GD loss averaged over a centred window of steps", "1"),
    "loss_relative_error": ("time-averaged GD loss / predicted_loss − 1", "1"),
    "distance_central_flow": ("parameter-space distance ‖θ_GD − θ_CF‖ between GD and the central flow", "1"),
    "distance_gradient_flow": ("parameter-space distance ‖θ_GD − θ_GF‖ between GD and gradient flow", "1"),
    "separation_step": ("first GD step at which ‖θ_GD − θ_GF‖ exceeds the threshold (-1: never)", "1"),
    "measured_oscillation": ("measured squared oscillation amplitude along the top Hessian eigenvector", "1"),
    "top_eigenvector": ("unit top eigenvector u of the loss Hessian (largest entry positive)", "1"),
    # --- Taylor model and network (labels the Taylor engineer adds go here)
    "network_step": ("step of the network trajectory, t0 + step (the Taylor model's step 0 is t0)", "1"),
    "final_z_tilde": ("residual z̃_i = v_iᵀ z in the NTK eigenbasis at the member's last step (steps_taken)", "1"),
    # --- analyses (labels the analysis engineer adds go here)
    # fit_limit / limiting_two_cycle (eosdyn.analysis.fits)
    "branch": ("step parity branch", "1"),
    "limit": ("fitted limit x_inf of x_t = x_inf + c rho^t on this branch", "1"),
    "limit_se": ("standard error of the fitted limit", "1"),
    "rate": ("fitted contraction factor abs(rho) per GD step", "1"),
    "rate_se": ("standard error of the contraction factor per step", "1"),
    "ratio": ("fitted ratio r between consecutive points of the branch (x_inf + c r^k)", "1"),
    "amplitude": ("fitted amplitude c at the first step of the window", "1"),
    "residual": ("residual: RMS of the geometric fit (fit_limit), abs(F(x) - x) at a root (fixed_points)", "1"),
    "n_points": ("number of points in the fit or regression", "1"),
    "cycle_mean": ("mean of the limiting two-cycle (average of the branch limits)", "1"),
    "cycle_mean_se": ("standard error of the two-cycle mean", "1"),
    "cycle_half_amplitude": ("half-amplitude of the limiting two-cycle", "1"),
    "cycle_half_amplitude_se": ("standard error of the two-cycle half-amplitude", "1"),
    "half_amplitude": ("half-amplitude of the limiting two-cycle of the sharpness", "1"),
    "half_amplitude_se": ("standard error of the half-amplitude", "1"),
    "deviation": ("edge of stability (attr edge) minus the two-cycle mean or the median final sharpness", "1"),
    # fit_increments (Eq. 18-19)
    "c1": ("coefficient c1 of Delta2 z ~ c1 y z (theory: 2)", "1"),
    "c1_se": ("standard error of c1", "1"),
    "c2": ("coefficient c2 of Delta2 y ~ c2 y z^2 + c3 z^2 (Eq. 19: -2(4-3eps+4eps^2))", "1"),
    "c2_se": ("standard error of c2", "1"),
    "c3": ("coefficient c3 of Delta2 y ~ c2 y z^2 + c3 z^2 (Eq. 19: -4 eps)", "1"),
    "c3_se": ("standard error of c3", "1"),
    "r2_z": ("uncentred R^2 of the Delta2 z regression", "1"),
    "r2_y": ("uncentred R^2 of the Delta2 y regression", "1"),
    "n_points_y": ("points used in the y regression", "1"),
    # final_sharpness_stats / phase_table (eosdyn.analysis.stats)
    "n_total": ("number of members", "1"),
    "n_valid": ("members used (finite and not diverged or failed)", "1"),
    "n_diverged": ("members that diverged", "1"),
    "n_excluded": ("members excluded (n_total - n_valid)", "1"),
    "frac_converged": ("fraction of members that converged", "1"),
    "frac_diverged": ("fraction of members that diverged", "1"),
    "frac_eos": ("fraction of members at the EOS (abs(sharpness - edge) < eos_tol, attrs edge and eos_tol)", "1"),
    "quantiles": ("quantiles of the final sharpness over valid members", "1"),
    "quantile": ("quantile level", "1"),
    "median_sharpness": ("median final sharpness", "1"),
    "mean_sharpness": ("mean final sharpness over valid members", "1"),
    "std_sharpness": ("standard deviation of the final sharpness", "1"),
    "mean_ci_lower": ("lower end of the bootstrap CI of the mean (level: attr ci)", "1"),
    "mean_ci_upper": ("upper end of the bootstrap CI of the mean (level: attr ci)", "1"),
    "hist": ("histogram of the final sharpness (counts of valid members)", "1"),
    "n_outside_bins": ("valid members outside the histogram bins", "1"),
    "bin": ("histogram bin centre", "1"),
    "bin_lower": ("histogram bin lower edge", "1"),
    "bin_upper": ("histogram bin upper edge", "1"),
    # fixed_points / period_two_orbits (eosdyn.analysis.orbits)
    "multiplier_real": ("Jacobian eigenvalue (real part), largest modulus first", "1"),
    "multiplier_imag": ("Jacobian eigenvalue (imaginary part)", "1"),
    "stable": ("linearly stable (all eigenvalues of modulus < 1)", "1"),
    "line_T": ("T on the fixed line z = 0", "1"),
    "line_multiplier": ("transverse Jacobian eigenvalue of the fixed line z = 0 (= 1 - T)", "1"),
    "line_stable": ("fixed line z = 0 transversally stable (abs(1 - T) < 1)", "1"),
}

#: CF flag convention for ``status`` variables.
#: CF flag values of ``status``, the fate of a member (a trajectory):
#:
#: * ``converged``: its ``loss`` fell below ``tol`` (at step/time ``converged_at``);
#: * ``diverged``: its ``loss`` exceeded ``diverge_loss`` or its state stopped being finite
#:   (at ``diverged_at``); the state is NaN afterwards;
#: * ``max_steps``: neither within ``steps`` GD steps (flows: by the last time);
#: * ``cycle``: stopped on an opt-in cycle test (QRM ``cycle_tol``);
#: * ``failed``: a flow whose integrator gave up (step size collapsed or work budget spent).
STATUS_VALUES = {"converged": 1, "diverged": 2, "max_steps": 3, "cycle": 4, "failed": 5}

#: ``stop`` modes of every GD producer: ``"never"`` (every member runs all ``steps``),
#: ``"member"`` (a member stops at its own fate: its trajectory is NaN after ``steps_taken``),
#: ``"batch"`` (every member runs until all members have a fate, or ``steps``).
STOP_MODES = ("never", "member", "batch")

#: roles a dataset's variables can play; the attr ``eosdyn_roles`` maps each to a variable name
ROLES = ("residual", "curvature", "sharpness", "loss", "parameters")

REQUIRED_ATTRS = ("Conventions", "title", "source", "model", "equations", "history", "eosdyn_config")


def names_table() -> str:
    """The Markdown table of every name in :data:`VARIABLES` (docs/conventions.md): one row each.

    Examples
    --------
    >>> names_table().splitlines()[0]
    '| name | long_name | units |'
    """
    rows = ["| name | long_name | units |", "|---|---|---|"]
    for name, (long_name, units) in sorted(VARIABLES.items(), key=lambda kv: kv[0].lower()):
        rows.append(f"| `{name}` | {long_name.replace('|', chr(92) + '|')} | {units} |")
    return "\n".join(rows) + "\n"


def set_roles(ds: xr.Dataset, **roles: str) -> xr.Dataset:
    """Record which variable plays which role (:data:`ROLES`) in ``ds.attrs["eosdyn_roles"]``.

    Analyses and plots look variables up by role (:func:`role`), never by model name.

    Examples
    --------
    >>> ds = xr.Dataset({"z": ("step", [0.1]), "T": ("step", [1.9])})
    >>> set_roles(ds, residual="z", curvature="T").attrs["eosdyn_roles"]
    'residual: z; curvature: T'
    >>> role(ds, "curvature").name
    'T'
    """
    bad = sorted(set(roles) - set(ROLES))
    if bad:
        raise ValueError(f"unknown role {bad[0]!r}; roles are {', '.join(ROLES)}")
    for r, v in roles.items():
        if v is not None and v not in ds.variables:
            raise ValueError(f"role {r!r} names {v!r}, which is not a variable of the dataset")
    merged = {**roles_of(ds), **{k: v for k, v in roles.items() if v is not None}}
    ds.attrs["eosdyn_roles"] = "; ".join(f"{k}: {merged[k]}" for k in ROLES if k in merged)
    return ds


def roles_of(ds: xr.Dataset | xr.DataArray) -> dict[str, str]:
    """The role map of ``ds`` (``{}`` when it has none).

    Examples
    --------
    >>> import eosdyn
    >>> roles_of(eosdyn.toy.linear(lam=0.5, theta0=1.0, steps=2))["sharpness"]
    'sharpness'
    """
    text = getattr(ds, "attrs", {}).get("eosdyn_roles", "")
    out = {}
    for item in str(text).split(";"):
        if ":" in item:
            k, v = (x.strip() for x in item.split(":", 1))
            if k in ROLES and v:
                out[k] = v
    return out


def role(ds: xr.Dataset, name: str, *, required: bool = True) -> xr.DataArray | None:
    """The variable of ``ds`` that plays role ``name``; ``ValueError`` naming the role if none does.

    Without a role map, the variable named like the role is used (``sharpness``, ``loss``).

    Examples
    --------
    >>> import eosdyn
    >>> role(eosdyn.toy.two_param(eps=0.1, z0=0.1, T0=1.5, steps=2), "residual").name
    'z'
    """
    if name not in ROLES:
        raise ValueError(f"unknown role {name!r}; roles are {', '.join(ROLES)}")
    var = roles_of(ds).get(name, name)
    if isinstance(ds, xr.Dataset) and var in ds.variables:
        return ds[var]
    if required:
        raise ValueError(f"the dataset has no variable with role {name!r} (its role map: "
                         f"{ds.attrs.get('eosdyn_roles', 'none')!r}; variables: {', '.join(map(str, ds.data_vars))})")
    return None


def fate_variables(status: np.ndarray, steps_taken: np.ndarray, diverged_at: np.ndarray,
                   converged_at: np.ndarray) -> dict[str, np.ndarray]:
    """The fate variables every GD dataset carries, with their dtypes (per member, any shape).

    ``status`` is an int8 array of :data:`STATUS_VALUES` codes; the others are step counts
    (``-1``: never). Checked for consistency: ``diverged`` exactly where ``diverged_at >= 0``,
    ``converged`` only where ``converged_at >= 0``, and no event after ``steps_taken``.

    Examples
    --------
    >>> f = fate_variables([2, 3], [4, 10], [4, -1], [-1, -1])
    >>> f["status"].dtype, f["steps_taken"].tolist()
    (dtype('int8'), [4, 10])
    """
    status = np.asarray(status, dtype=np.int8)
    out = {"status": status, "steps_taken": np.asarray(steps_taken, dtype=np.int64),
           "diverged_at": np.asarray(diverged_at, dtype=np.int64),
           "converged_at": np.asarray(converged_at, dtype=np.int64)}
    problems = _fate_problems(out["status"], out["steps_taken"], out["diverged_at"], out["converged_at"])
    if problems:  # pragma: no cover - a bug in a driver, never user input
        raise AssertionError("inconsistent fates: " + "; ".join(problems))
    return out


def _fate_problems(status, steps_taken, diverged_at, converged_at) -> list[str]:
    status, steps_taken = np.asarray(status), np.asarray(steps_taken)
    diverged_at, converged_at = np.asarray(diverged_at), np.asarray(converged_at)
    problems = []
    div = status == STATUS_VALUES["diverged"]
    if np.any(div != (diverged_at >= 0)):
        problems.append("status 'diverged' must hold exactly where diverged_at >= 0")
    if np.any((status == STATUS_VALUES["converged"]) & (converged_at < 0)):
        problems.append("status 'converged' needs converged_at >= 0")
    if np.any((diverged_at > steps_taken) | (converged_at > steps_taken)):
        problems.append("diverged_at and converged_at must not exceed steps_taken")
    if np.any(steps_taken < 0):
        problems.append("steps_taken must be >= 0")
    return problems


def source() -> str:
    """The ``source`` attribute: ``"eosdyn <version>"``.

    Examples
    --------
    >>> source().startswith("eosdyn ")
    True
    """
    return f"eosdyn {__version__}"


def _jsonable(value: Any) -> Any:
    """Convert parameters into plain JSON types (arrays become lists)."""
    if isinstance(value, xr.DataArray):
        return {"dims": list(value.dims), "data": _jsonable(value.values),
                "coords": {k: _jsonable(v.values) for k, v in value.coords.items()}}
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()] if value.ndim else _jsonable(value.item())
    if isinstance(value, (np.generic,)):
        return _jsonable(value.item())
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.dtype) or isinstance(value, type):
        return np.dtype(value).name
    if isinstance(value, numbers.Number):
        return float(value)
    return repr(value)


def config_json(function: str, parameters: Mapping[str, Any], **extra: Any) -> str:
    """Serialise a regeneration recipe into the ``eosdyn_config`` JSON string.

    Parameters
    ----------
    function : str
        Dotted path of the public function that made the dataset,
        e.g. ``"eosdyn.toy.two_param"``.
    parameters : mapping
        Every keyword argument needed to call it again.
    **extra
        Further provenance (e.g. library versions).

    Examples
    --------
    >>> config_json("eosdyn.toy.two_param", {"eps": 0.1, "steps": 10})[:40]
    '{"function": "eosdyn.toy.two_param", "pa'
    """
    payload = {"function": function, "parameters": _jsonable(dict(parameters)),
               "eosdyn_version": __version__, "numpy_version": np.__version__}
    payload.update(_jsonable(extra))
    return json.dumps(payload, sort_keys=False, allow_nan=False, ensure_ascii=False)


def read_config(ds: xr.Dataset) -> dict:
    """Parse a dataset's ``eosdyn_config`` attribute back into a dict.

    Examples
    --------
    >>> import eosdyn
    >>> read_config(eosdyn.toy.linear(lam=0.5, theta0=1.0, steps=2))["function"]
    'eosdyn.toy.linear'
    """
    try:
        return json.loads(ds.attrs["eosdyn_config"])
    except KeyError:
        raise ValueError("dataset has no 'eosdyn_config' attribute") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"dataset attribute 'eosdyn_config' is not valid JSON: {err}") from None


def _decode_param(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"dims", "data", "coords"}:
        coords = {k: np.asarray(v) for k, v in value["coords"].items()}
        return xr.DataArray(np.asarray(value["data"]), dims=value["dims"], coords=coords)
    if value == "nan":
        return float("nan")
    if value in ("inf", "-inf"):
        return float(value)
    return value


def regenerate(ds: xr.Dataset) -> xr.Dataset:
    """Recompute a dataset from its ``eosdyn_config`` provenance.

    The function named in ``eosdyn_config`` is called only if it is one of eosdyn's own
    recipes or was registered by the user (:func:`eosdyn.registry.register_recipe`): a file
    received from someone else cannot make this call anything else.

    Raises
    ------
    ValueError
        If the dataset has no valid ``eosdyn_config``, or it names a function that is not a
        registered recipe (:class:`eosdyn.registry.UntrustedFunctionError`).

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.linear(lam=0.5, theta0=1.0, steps=3)
    >>> eosdyn.conventions.regenerate(ds).theta.equals(ds.theta)
    True
    >>> ds.attrs["eosdyn_config"] = '{"function": "os.system", "parameters": {"command": "true"}}'
    >>> eosdyn.conventions.regenerate(ds)
    Traceback (most recent call last):
    ...
    eosdyn.registry.UntrustedFunctionError: eosdyn_config: recipe 'os.system' is not one of eosdyn's recipes nor registered with eosdyn.catalog.register_recipe; refusing to call it
    """
    from . import registry

    cfg = read_config(ds)
    if not isinstance(cfg, dict) or not isinstance(cfg.get("parameters", {}), dict):
        raise ValueError("eosdyn_config must be a JSON object with 'function' and a 'parameters' object")
    func = registry.resolve("recipe", cfg.get("function"), where="eosdyn_config")
    params = {k: _decode_param(v) for k, v in cfg.get("parameters", {}).items()}
    return func(**params)


def append_history(ds: xr.Dataset, line: str) -> xr.Dataset:
    """Append a timestamped line to ``ds.attrs['history']`` (never overwrite).

    Examples
    --------
    >>> ds = append_history(xr.Dataset(), "made by hand")
    >>> ds.attrs["history"].endswith("made by hand")
    True
    """
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    old = ds.attrs.get("history", "")
    new = f"{stamp} {line}"
    ds.attrs["history"] = f"{old}\n{new}" if old else new
    return ds


def set_variable_attrs(da: xr.DataArray, name: str | None = None, *, overwrite: bool = False) -> None:
    """Set CF ``long_name``/``units`` on one variable from :data:`VARIABLES`.

    Examples
    --------
    >>> da = xr.DataArray([1.9], dims="step", name="sharpness")
    >>> set_variable_attrs(da); da.attrs["long_name"]
    'sharpness η λ_max'
    """
    name = name if name is not None else da.name
    if name in VARIABLES:
        long_name, units = VARIABLES[name]
        if overwrite or "long_name" not in da.attrs:
            da.attrs["long_name"] = long_name
        if overwrite or "units" not in da.attrs:
            da.attrs["units"] = units
    elif "units" not in da.attrs and np.issubdtype(da.dtype, np.number):
        da.attrs["units"] = "1"
    if name == "status" and np.issubdtype(da.dtype, np.integer):
        da.attrs["flag_values"] = np.array(list(STATUS_VALUES.values()), dtype=da.dtype)
        da.attrs["flag_meanings"] = " ".join(STATUS_VALUES)


def encode_status(names: np.ndarray, dtype=np.int8) -> np.ndarray:
    """Map status strings to their CF flag values.

    Examples
    --------
    >>> encode_status(np.array(["converged", "diverged"])).tolist()
    [1, 2]
    """
    out = np.empty(np.shape(names), dtype=dtype)
    flat = np.asarray(names).ravel()
    for key, val in STATUS_VALUES.items():
        out.ravel()[flat == key] = val
    return out


def decode_status(da: xr.DataArray) -> xr.DataArray:
    """Return the ``status`` flag variable as strings (a labelled DataArray).

    Examples
    --------
    >>> da = xr.DataArray(encode_status(np.array(["converged", "max_steps"])), dims="seed")
    >>> set_variable_attrs(da, "status"); decode_status(da).values.tolist()
    ['converged', 'max_steps']
    """
    meanings = da.attrs.get("flag_meanings", " ".join(STATUS_VALUES)).split()
    values = da.attrs.get("flag_values", np.arange(len(meanings)))
    lut = {int(v): m for v, m in zip(np.atleast_1d(values), meanings)}
    out = xr.apply_ufunc(np.vectorize(lambda v: lut.get(int(v), "unknown"), otypes=[object]), da)
    out.attrs = {"long_name": da.attrs.get("long_name", "fate of the trajectory")}
    return out.astype(str)


def label(
    ds: xr.Dataset,
    *,
    model: str,
    title: str,
    equations: str,
    config: Mapping[str, Any] | str,
    history: str | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Apply the eosdyn conventions to a freshly simulated dataset (in place).

    Parameters
    ----------
    ds : xarray.Dataset
        The raw result with ASCII variable names.
    model : str
        Short model name, e.g. ``"two_param"``.
    title : str
        Human-readable title.
    equations : str
        The paper equations implemented, e.g. ``"Eq. 14-15 (Agarwala et al. 2023)"``.
    config : mapping or str
        Either a ``{"function": ..., "parameters": {...}}`` mapping or an already
        serialised JSON string; stored as ``eosdyn_config``.
    history : str, optional
        Line appended to ``history``; defaults to the function call.
    attrs : mapping, optional
        Extra dataset attributes (must be str, number or 1-D numeric array).

    Returns
    -------
    xarray.Dataset
        ``ds`` itself, labelled.

    Examples
    --------
    >>> ds = xr.Dataset({"z": ("step", [0.1, 0.05])}, coords={"step": [0, 1]})
    >>> ds = label(ds, model="demo", title="demo", equations="Eq. 10", config={"function": "demo", "parameters": {}})
    >>> ds.attrs["Conventions"], ds.z.attrs["units"]
    ('CF-1.10', '1')
    """
    for name in list(ds.variables):
        set_variable_attrs(ds[name], name)
    if not isinstance(config, str):
        config = config_json(config["function"], config.get("parameters", {}),
                             **{k: v for k, v in config.items() if k not in ("function", "parameters")})
    fn = json.loads(config).get("function", model)
    ds.attrs.update({
        "Conventions": CONVENTIONS,
        "title": title,
        "source": source(),
        "model": model,
        "equations": equations,
        "references": "Agarwala, Pedregosa, Pennington (2023), Second-order regression models "
                      "exhibit progressive sharpening to the edge of stability, ICML, PMLR 202:169-195",
        "eosdyn_config": config,
    })
    if attrs:
        ds.attrs.update({k: _attr_value(k, v) for k, v in attrs.items()})
    append_history(ds, history or f"created by {fn} ({source()})")
    return ds


def _attr_value(key: str, value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if value is None:
        return "none"
    if isinstance(value, Mapping):
        return json.dumps(_jsonable(value))
    return value


def _is_ascii_name(name: Any) -> bool:
    return isinstance(name, str) and name.isascii() and name.replace("_", "a").isalnum() and not name[0].isdigit()


def check_dataset(ds: xr.Dataset) -> xr.Dataset:
    """Check that ``ds`` follows the eosdyn conventions; raise ``ValueError`` listing every problem.

    Checks: ASCII identifier names for dims, coordinates and variables; CF
    ``long_name`` and ``units`` on every variable and coordinate; the dataset
    attributes ``Conventions``, ``title``, ``source``, ``model``, ``equations``,
    ``history`` and a valid JSON ``eosdyn_config``; attribute values that survive
    netCDF (no dict, bool or None); an integer, strictly increasing ``step``
    coordinate; consistent fates (``status``, ``steps_taken``, ``diverged_at``,
    ``converged_at``); NaN state after
    divergence (when ``diverged_at`` and a ``step`` trajectory are present); CF
    ``flag_values``/``flag_meanings`` on integer ``status`` variables.

    Returns
    -------
    xarray.Dataset
        ``ds`` unchanged, so the call can be chained.

    Examples
    --------
    >>> import xarray as xr
    >>> check_dataset(xr.Dataset())
    Traceback (most recent call last):
    ...
    ValueError: dataset does not follow the eosdyn conventions:
      - missing dataset attribute 'Conventions'
      ...
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"check_dataset expects an xarray.Dataset, got {type(ds).__name__}")
    problems: list[str] = []
    for key in REQUIRED_ATTRS:
        if key not in ds.attrs:
            problems.append(f"missing dataset attribute {key!r}")
        elif not isinstance(ds.attrs[key], str):
            problems.append(f"dataset attribute {key!r} must be a string")
    if ds.attrs.get("Conventions", CONVENTIONS) != CONVENTIONS:
        problems.append(f"Conventions must be {CONVENTIONS!r}")
    if isinstance(ds.attrs.get("source"), str) and not ds.attrs["source"].startswith("eosdyn "):
        problems.append("source must read 'eosdyn <version>'")
    if isinstance(ds.attrs.get("eosdyn_config"), str):
        try:
            cfg = json.loads(ds.attrs["eosdyn_config"])
            if not isinstance(cfg, dict) or "function" not in cfg:
                problems.append("eosdyn_config must be a JSON object with a 'function' key")
        except json.JSONDecodeError as err:
            problems.append(f"eosdyn_config is not valid JSON ({err})")
    for scope, attrs in [("dataset", ds.attrs)] + [(f"variable {n!r}", ds[n].attrs) for n in ds.variables]:
        for k, v in attrs.items():
            if isinstance(v, (dict, bool, np.bool_)) or v is None:
                problems.append(f"{scope} attribute {k!r} has type {type(v).__name__}, which netCDF cannot store")
    for name in list(ds.dims) + list(ds.variables):
        if not _is_ascii_name(name):
            problems.append(f"name {name!r} is not an ASCII identifier")
    for name in ds.variables:
        attrs = ds[name].attrs
        if "long_name" not in attrs:
            problems.append(f"variable {name!r} has no long_name")
        if "units" not in attrs and ds[name].dtype.kind not in "OSUb":
            problems.append(f"variable {name!r} has no units")
    if "step" in ds.coords:
        step = ds["step"].values
        if step.ndim != 1 or step.dtype.kind not in "iu":
            problems.append("coordinate 'step' must be a 1-D integer array")
        elif step.size > 1 and not np.all(np.diff(step) > 0):
            problems.append("coordinate 'step' must be strictly increasing")
    if "status" in ds and ds["status"].dtype.kind in "iu":
        if "flag_values" not in ds["status"].attrs or "flag_meanings" not in ds["status"].attrs:
            problems.append("integer variable 'status' needs CF flag_values and flag_meanings")
    if all(k in ds for k in ("status", "steps_taken", "diverged_at", "converged_at")) and \
            ds["status"].dtype.kind in "iu" and ds["diverged_at"].dtype.kind in "iu":
        problems += _fate_problems(ds["status"].values, ds["steps_taken"].values,
                                   ds["diverged_at"].values, ds["converged_at"].values)
    if "diverged_at" in ds and "step" in ds.dims and ds["diverged_at"].dtype.kind in "iu":
        dat = ds["diverged_at"]
        after = (ds["step"] > dat) & (dat >= 0)
        for var in ds.data_vars:  # every trajectory variable of the members diverged_at describes
            v = ds[var]
            if "step" in v.dims and v.dtype.kind == "f" and set(dat.dims) <= set(v.dims) \
                    and bool((after & np.isfinite(v)).any()):
                problems.append(f"variable {var!r} is finite after 'diverged_at' (state must be NaN)")
    if problems:
        raise ValueError("dataset does not follow the eosdyn conventions:\n  - " + "\n  - ".join(problems))
    return ds
