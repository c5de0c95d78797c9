"""Taylor-expanded (quadratic) model of the real network from stored projections (Appendix D.3).

Around a step t₀ the network's residual, restricted to the top-``k`` NTK modes
and to the parameter directions ``u_i = Jᵀ v_i / √λ_i``, is the quadratic model

    z̃(φ) = z̃₀ + diag(√λ) φ + ½ Q̃(φ, φ),      Q̃_ijl = v_i · Q(u_j, u_l),

i.e. a quadratic regression model (Eq. 1) with ``D = P = k``, ``J₀ = diag(√λ)``
and ``Q = Q̃``. The network's loss is ``(1/n) Σ ½ ‖z‖²`` with learning rate η, so
GD on this model is the QRM iteration (Eq. 24-26) with the effective learning
rate ``η/n``; its sharpness ``(η/n) λ_max(J̃ J̃ᵀ)`` has the edge at 2, like the
stored network trajectory. The GD loop is the shared QRM kernel
:func:`eosdyn.kernels.qrm.run_gd` (no torch needed).

Examples
--------
>>> import eosdyn
>>> proj = eosdyn.catalog.load("cifar_fcn_projections")  # doctest: +SKIP
>>> ds = eosdyn.taylor.simulate(proj, modes=8, steps=200)  # doctest: +SKIP
>>> ds.sharpness.sel(step=int(proj.t0[0]))  # doctest: +SKIP
"""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

from .. import conventions
from .._validate import check_dtype, check_int
from ..kernels.qrm import MAX_STEPS_LIMIT, check_representable, real_scalar, run_gd

__all__ = ["simulate", "reduced_model"]

_REQUIRED = ("ntk_eigenvalue", "z_tilde", "Q_tilde")
CATALOG_NAME = "cifar_fcn_projections"


def _as_projections(projections) -> xr.Dataset:
    if isinstance(projections, (str, os.PathLike)):
        if os.path.exists(projections) or str(projections) != CATALOG_NAME:
            from ..io import open_dataset

            projections = open_dataset(projections)
        else:
            from .. import catalog

            projections = catalog.open(CATALOG_NAME)
    if not isinstance(projections, xr.Dataset):
        raise ValueError(f"projections must be an xarray.Dataset or a path to one; got {type(projections).__name__}")
    missing = [v for v in _REQUIRED if v not in projections]
    missing += [d for d in ("t0", "mode") if d not in projections.dims]
    if missing:
        raise ValueError(f"projections must be a cifar_fcn_projections dataset with dims 't0', 'mode' and "
                         f"variables {', '.join(_REQUIRED)}; missing: {', '.join(missing)}")
    if projections.sizes["t0"] == 0:
        raise ValueError("projections hold no expansion step: dim 't0' is empty")
    if projections.sizes["mode"] == 0:
        raise ValueError("projections hold zero modes: dim 'mode' is empty (nothing to simulate)")
    for name in _REQUIRED:
        if projections[name].dtype.kind not in "iuf":
            raise ValueError(f"projections variable {name} must be real numbers; got dtype {projections[name].dtype}")
    return projections


def _scalar_meta(ds: xr.Dataset, name: str, attr: str):
    """A scalar coordinate (or, in older files, attribute) of the projections, or a clear error."""
    if name in ds.coords:
        value = ds[name].values
        if np.ndim(value) != 0:
            raise ValueError(f"projections coordinate {name} must be a scalar; got shape {np.shape(value)}")
        return value[()]
    if attr in ds.attrs:
        return ds.attrs[attr]
    raise ValueError(f"projections have no {name} (a scalar coordinate {name!r} or attribute {attr!r}); "
                     "it is needed for the effective learning rate eta / n_examples")


def _eta_and_n(ds: xr.Dataset) -> tuple[float, int]:
    """The network's learning rate η (finite, > 0) and training-set size n (≥ 1)."""
    eta = real_scalar("projections eta", _scalar_meta(ds, "eta", "eta"), 0, None, lo_open=True)
    n = check_int("projections n_examples", _scalar_meta(ds, "n_examples", "nn_examples"), 1)
    return eta, n


def reduced_model(projections, *, t0=None, modes=None, feedback=0):
    """The k-mode quadratic model at t₀ as plain arrays.

    Parameters
    ----------
    projections : xarray.Dataset or path-like
        A ``cifar_fcn_projections`` dataset.
    t0 : int, optional
        Expansion step, one of ``projections.t0`` (default: the first).
    modes : int, optional
        Number ``k`` of top NTK modes kept, 1 ≤ k ≤ stored modes (default: all).
    feedback : int, default 0
        Number ``m`` of stored feedback directions ``w_f`` added to the parameter basis
        (``Q_cross``, ``Q_feedback`` in the projections; see :mod:`eosdyn.nn.projections`).
        The parameters are then ``φ ∈ R^{k+m}`` along ``(u_1..u_k, w_1..w_m)``; the outputs
        stay the k NTK modes.

    Returns
    -------
    Q : ndarray (k, k+m, k+m)
        Reduced tensor (``Q̃`` on the u-block; symmetrised in its last two indices).
    J0 : ndarray (k, k+m)
        ``[diag(√λ), 0]`` (``J w_f`` has no component on the top-k modes: ``w_f ⊥ span(u)``).
    z0 : ndarray (k,)
        ``z̃ = Vᵀ z``.
    eta_eff : float
        ``η / n``.
    t0 : int

    Examples
    --------
    >>> Q, J0, z0, eta_eff, t0 = reduced_model("cifar_fcn_projections.nc", modes=4)  # doctest: +SKIP
    """
    ds = _as_projections(projections)
    eta, n = _eta_and_n(ds)
    t0_values = [int(v) for v in ds["t0"].values]
    if t0 is None:
        t0 = t0_values[0]
    t0 = check_int("t0", t0)
    if t0 not in t0_values:
        shown = t0_values if len(t0_values) <= 20 else t0_values[:20] + ["..."]
        raise ValueError(f"t0 must be one of the stored expansion steps {shown}; got {t0}")
    kmax = int(ds.sizes["mode"])
    k = kmax if modes is None else check_int("modes", modes, 1, kmax)
    sel = ds.sel(t0=t0)
    want = {"ntk_eigenvalue": (k,), "z_tilde": (k,), "Q_tilde": (k, k, k)}
    for name, shape in want.items():
        got = sel[name].shape
        if len(got) != len(shape) or any(g < w for g, w in zip(got, shape)):
            raise ValueError(f"projections variable {name} at t0={t0} must hold at least shape {shape} for "
                             f"{k} modes; got {got}")
    lam = np.asarray(sel["ntk_eigenvalue"].values[:k], np.float64)
    if np.any(~(lam > 0)) or np.any(~np.isfinite(lam)):
        raise ValueError(f"ntk_eigenvalue at t0={t0} must be finite and positive for the kept modes; got {lam}")
    Q = np.asarray(sel["Q_tilde"].values[:k, :k, :k], np.float64)
    J0 = np.diag(np.sqrt(lam))
    m = check_int("feedback", feedback, 0)
    if m:
        avail = int(np.isfinite(sel["Q_feedback"].values[0, :, 0]).sum()) if "Q_feedback" in ds else 0
        if not avail:
            raise ValueError(f"feedback={feedback} needs the variables Q_cross and Q_feedback at t0={t0} "
                             "(projections built with feedback > 0, `eosdyn nn project`); this dataset has none")
        m = check_int("feedback", feedback, 0, avail)
        Qc = np.asarray(sel["Q_cross"].values[:k, :k, :m], np.float64)
        Qw = np.asarray(sel["Q_feedback"].values[:k, :m, :m], np.float64)
        full = np.zeros((k, k + m, k + m))
        full[:, :k, :k] = Q
        full[:, :k, k:] = Qc
        full[:, k:, :k] = Qc.transpose(0, 2, 1)
        full[:, k:, k:] = Qw
        Q = full
        J0 = np.hstack([J0, np.zeros((k, m))])
    Q = 0.5 * (Q + Q.transpose(0, 2, 1))
    z0 = np.asarray(sel["z_tilde"].values[:k], np.float64)
    return Q, J0, z0, eta / n, t0


def simulate(projections, *, t0=None, modes=None, steps: int = 500, record_every: int = 1,
             diverge_loss: float = 1e8, dtype="float64", feedback: int = 0,
             max_memory="2GB") -> xr.Dataset:
    """GD on the k-mode quadratic (second-order Taylor) model of the network around t₀.

    Parameters
    ----------
    projections : xarray.Dataset, path-like or ``"cifar_fcn_projections"``
        A ``cifar_fcn_projections`` dataset, a NetCDF path, or the catalog name (``ntk_eigenvalue``, ``z_tilde``, ``Q_tilde``,
        coordinates ``t0``, ``eta``, ``n_examples``).
    t0 : int, optional
        Expansion step (default: the first stored one).
    modes : int, optional
        Number k of top NTK modes (default: all stored).
    steps : int, default 500
        GD steps.
    record_every : int, default 1
        Record every this many steps.
    diverge_loss : float, default 1e8
        Diverged once ½‖z̃‖² exceeds this (the state is NaN afterwards).
    dtype : {"float64", "float32"}
    feedback : int, default 0
        Add this many stored feedback directions to the parameter basis (see
        :func:`reduced_model`). Without them the model keeps only span(u₁…u_k), which holds a
        few per cent of ‖Q₁u₁‖² in the stored run, and misses most of the curvature feedback
        that ends a catapult (docs/network.md).
    max_memory : int or str, default "2GB"
        Budget for the recorded trajectories (see :func:`eosdyn.kernels.qrm.run_gd`).

    Returns
    -------
    xarray.Dataset
        Dims ``step`` (``t0, t0 + record_every, …``: the network trajectory's step
        coordinate) and ``mode``. Variables ``sharpness(step)`` = (η/n) λ_max of the
        reduced NTK (edge 2), ``z(step, mode)`` (z̃ in the NTK eigenbasis at t₀, the
        network's units; mode 0 is z₁), ``loss(step)`` = (1/n) ½‖z̃‖² (the modelled part of
        the network loss), ``status`` (CF flag), ``steps_taken``, ``diverged_at`` (a
        ``step`` value, −1 if never), ``final_sharpness``. Scalar coordinates ``t0``,
        ``eta``, ``n_examples``, ``D`` = k, ``P`` = k + feedback.

    Raises
    ------
    ValueError, TypeError
        Before anything runs, naming what is wrong: projections without ``eta`` or
        ``n_examples`` (or with ``n_examples`` < 1), with zero modes or no ``t0``, a ``t0``
        not in the data, ``modes``/``steps``/``record_every``/``feedback`` out of range,
        ``diverge_loss`` not finite and > 0, values beyond the float32 range for
        ``dtype="float32"``, or recordings above ``max_memory``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> proj = xr.Dataset({"ntk_eigenvalue": (("t0", "mode"), [[2.1e4, 1e4]]),
    ...                    "z_tilde": (("t0", "mode"), [[0.1, -0.2]]),
    ...                    "Q_tilde": (("t0", "mode", "mode_j", "mode_l"), np.full((1, 2, 2, 2), 5.0))},
    ...                   coords={"t0": [300], "eta": 0.01, "n_examples": 100})
    >>> ds = simulate(proj, steps=3)
    >>> ds.step.values.tolist(), round(float(ds.sharpness[0]), 3)
    ([300, 301, 302, 303], 2.1)
    """
    dt = check_dtype(dtype)
    proj_name = os.fspath(projections) if isinstance(projections, (str, os.PathLike)) else CATALOG_NAME
    steps = check_int("steps", steps, 1, MAX_STEPS_LIMIT)
    record_every = check_int("record_every", record_every, 1, steps)
    diverge_loss = real_scalar("diverge_loss", diverge_loss, 0, None, lo_open=True)
    ds_in = _as_projections(projections)
    Q, J0, z0, eta_eff, t0 = reduced_model(ds_in, t0=t0, modes=modes, feedback=feedback)
    for name, arr in (("Q_tilde", Q), ("ntk_eigenvalue (its square root, J0)", J0), ("z_tilde", z0),
                      ("eta / n_examples", eta_eff)):
        check_representable(name, arr, dt)
    k = z0.size
    p_dim = J0.shape[1]
    res = run_gd(Q.astype(dt), J0[None].astype(dt), z0[None].astype(dt), eta_eff, steps, record_every,
                 tol=0.0, diverge_loss=diverge_loss, record_sharpness=True, record_z=True,
                 max_memory=max_memory)
    step = t0 + res.record_steps
    n = float(_eta_and_n(ds_in)[1])
    div = int(res.diverged_at[0])
    ds = xr.Dataset(
        {
            "sharpness": ("step", res.sharpness[0]),
            "z": (("step", "mode"), res.z[0]),
            "loss": ("step", res.loss[0] / n),
            "status": ((), res.status[0]),
            "steps_taken": ((), res.steps_taken[0]),
            "diverged_at": ((), np.int64(t0 + div if div >= 0 else -1)),
            "final_sharpness": ((), res.final_sharpness[0]),
        },
        coords={"step": step.astype(np.int64), "mode": np.arange(k, dtype=np.int64), "t0": np.int64(t0),
                "eta": eta_eff * n, "n_examples": np.int64(n), "D": np.int64(k), "P": np.int64(p_dim)},
    )
    ds["sharpness"].attrs = {"long_name": "sharpness η λ_max / n of the reduced NTK (edge at 2)", "units": "1"}
    ds["z"].attrs = {"long_name": "residual in the NTK eigenbasis at t0, z̃_i = v_iᵀ z", "units": "1"}
    ds["loss"].attrs = {"long_name": "modelled loss (1/n) Σ_i ½ z̃_i² over the kept modes", "units": "1"}
    params = {"projections": proj_name, "t0": t0, "modes": k, "feedback": p_dim - k,
              "steps": steps, "record_every": record_every, "diverge_loss": diverge_loss, "dtype": dt.name}
    return conventions.label(
        ds, model="taylor", title=f"second-order Taylor model of the CIFAR FCN around step {t0}, {k} NTK modes"
        + (f" + {p_dim - k} feedback directions" if p_dim > k else ""),
        equations="Eq. 1, 24-26 with D = k, P = k + feedback, J0 = [diag(sqrt(lambda)), 0], Q = Q_tilde "
                  "(+ Q_cross, Q_feedback); Appendix D.3",
        config={"function": "eosdyn.models.taylor.simulate", "parameters": params},
    )
