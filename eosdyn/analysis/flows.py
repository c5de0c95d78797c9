"""Comparisons of GD with its continuous-time models (gradient flow, central flow) on the step axis.

They read the dataset of :func:`eosdyn.qrm.flow_comparison` (dims ``method`` ∈ {``gd``,
``gradient_flow``, ``central_flow``}, ``step``, ``param``) or, for the oscillation, any GD
dataset with ``theta`` (e.g. :func:`eosdyn.qrm.self_stabilization` with ``record_theta=True``).
Definitions and sources: ``docs/flows.md``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["time_averaged_loss", "flow_distances", "separation_step", "measured_oscillation"]

_METHODS = ("gd", "gradient_flow", "central_flow")


def _check_comparison(ds, need=("loss",)):
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"ds must be an xarray.Dataset from eosdyn.qrm.flow_comparison; got {type(ds).__name__}")
    if "method" not in ds.dims or not set(_METHODS) <= set(ds["method"].values.tolist()):
        raise ValueError("ds must have a 'method' dim with gd, gradient_flow and central_flow "
                         "(the dataset of eosdyn.qrm.flow_comparison)")
    for v in need:
        if v not in ds:
            raise ValueError(f"ds has no variable {v!r} (the dataset of eosdyn.qrm.flow_comparison)")
    if "step" not in ds.dims:
        raise ValueError("ds must have a 'step' dim")


def _method(x: xr.DataArray, name: str) -> xr.DataArray:
    """``x`` at one method, by position (xarray's ``sel`` keeps the dim of an empty array)."""
    return x.isel(method=list(x["method"].values).index(name), drop=True)


def time_averaged_loss(ds: xr.Dataset, windows=(2, 4, 6, 8, 10)) -> xr.Dataset:
    """GD's loss averaged over windows of ``w`` consecutive steps against the central flow's prediction.

    For each window length ``w`` and each step ``t`` (the window's first step), the mean of the GD
    loss over steps ``t … t+w−1`` (``time_averaged_loss``) and the mean of the central flow's
    ``predicted_loss`` L + ½⟨Σ, H⟩ over the same steps (``predicted_loss``), and
    ``loss_relative_error`` = their ratio − 1. Windows that run past the last step are NaN.

    Parameters
    ----------
    ds : xarray.Dataset
        The dataset of :func:`eosdyn.qrm.flow_comparison`.
    windows : sequence of int
        Window lengths (each ≥ 1).

    Returns
    -------
    xarray.Dataset
        Dims ``window``, ``step``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> loss = np.array([[1.0, 3.0, 1.0, 3.0], [2.0, 2.0, 2.0, 2.0], [2.0, 2.0, 2.0, 2.0]])
    >>> ds = xr.Dataset({"loss": (("method", "step"), loss), "predicted_loss": (("method", "step"), loss)},
    ...                 coords={"method": ["gd", "gradient_flow", "central_flow"], "step": np.arange(4)})
    >>> time_averaged_loss(ds, windows=[2]).loss_relative_error.values.tolist()
    [[0.0, 0.0, 0.0, nan]]
    """
    _check_comparison(ds, ("loss", "predicted_loss"))
    try:
        ws = np.atleast_1d(np.asarray(windows))
    except (TypeError, ValueError):
        ws = np.array([], dtype=object)
    if ws.ndim != 1 or ws.size == 0 or ws.dtype.kind not in "iu" or (ws < 1).any():
        raise ValueError(f"windows must be a non-empty sequence of integers >= 1; got {windows!r}")
    ws = ws.astype(np.int64)
    gd = _method(ds["loss"], "gd").transpose(..., "step")
    pred = _method(ds["predicted_loss"], "central_flow").transpose(..., "step")
    n = gd.sizes["step"]

    def window_means(x, w):               # mean over steps t ... t+w-1; NaN where the window runs out
        out = np.full(x.shape, np.nan)
        if w <= n:
            win = np.lib.stride_tricks.sliding_window_view(np.asarray(x, dtype=float), w, axis=-1)
            out[..., : n - w + 1] = win.mean(axis=-1)
        return out

    win = xr.DataArray(ws, dims="window")
    dims = ("window",) + gd.dims
    out = xr.Dataset({"time_averaged_loss": (dims, np.stack([window_means(gd.values, w) for w in ws.tolist()])),
                      "predicted_loss": (dims, np.stack([window_means(pred.values, w) for w in ws.tolist()]))},
                     coords={k: v for k, v in gd.coords.items() if set(v.dims) <= set(gd.dims)})
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = out["time_averaged_loss"] / out["predicted_loss"] - 1.0
    out["loss_relative_error"] = rel.where(np.isfinite(rel))        # NaN where the prediction is 0
    return out.assign_coords(window=win)


def flow_distances(ds: xr.Dataset) -> xr.Dataset:
    """Parameter-space distances of GD from the central flow and from gradient flow against step.

    ``distance_central_flow`` = ‖θ_GD(t) − θ_CF(t)‖ and ``distance_gradient_flow`` =
    ‖θ_GD(t) − θ_GF(t)‖ (Euclidean norm over ``param``; step t ↔ flow time t).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> th = np.zeros((3, 2, 2)); th[0, 1] = [3.0, 4.0]; th[2, 1] = [3.0, 3.0]
    >>> ds = xr.Dataset({"theta": (("method", "step", "param"), th)},
    ...                 coords={"method": ["gd", "gradient_flow", "central_flow"]})
    >>> d = flow_distances(ds)
    >>> d.distance_gradient_flow.values.tolist(), d.distance_central_flow.values.tolist()
    ([0.0, 5.0], [0.0, 1.0])
    """
    _check_comparison(ds, ("theta",))
    th = ds["theta"]
    gd = _method(th, "gd")

    def dist(m):
        return np.sqrt(((gd - _method(th, m)) ** 2).sum("param", skipna=False))

    return xr.Dataset({"distance_central_flow": dist("central_flow"),
                       "distance_gradient_flow": dist("gradient_flow")})


def separation_step(ds: xr.Dataset, *, rtol: float = 0.01) -> xr.DataArray:
    """The first step at which GD and gradient flow separate.

    The first step t with ‖θ_GD(t) − θ_GF(t)‖ > ``rtol`` · ‖θ_GD(t) − θ_GD(0)‖ (``-1``: never).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> th = np.zeros((3, 4, 1)); th[0, :, 0] = [0, 1, 2, 3]; th[1, :, 0] = [0, 1, 2, 2]; th[2] = th[0]
    >>> ds = xr.Dataset({"theta": (("method", "step", "param"), th)},
    ...                 coords={"method": ["gd", "gradient_flow", "central_flow"], "step": np.arange(4)})
    >>> int(separation_step(ds))
    3
    """
    _check_comparison(ds, ("theta",))
    if not (isinstance(rtol, (int, float, np.floating)) and np.isfinite(rtol) and rtol > 0):
        raise ValueError(f"rtol must be finite and in (0, inf); got {rtol!r}")
    th = ds["theta"]
    gd = _method(th, "gd")
    step = ds["step"].values if "step" in ds.coords else np.arange(ds.sizes["step"])
    if step.size == 0:
        return xr.DataArray(np.int64(-1), name="separation_step", attrs={"rtol": float(rtol)})
    moved = np.sqrt(((gd - gd.isel(step=0)) ** 2).sum("param"))
    d = np.sqrt(((gd - _method(th, "gradient_flow")) ** 2).sum("param", skipna=False))
    sep = (d > rtol * moved).transpose("step", ...).values
    if sep.ndim > 1:
        raise ValueError("ds['theta'] must have dims ('method', 'step', 'param') only (one member)")
    val = int(step[np.argmax(sep)]) if sep.any() else -1
    return xr.DataArray(np.int64(val), name="separation_step", attrs={"rtol": float(rtol)})


def measured_oscillation(theta: xr.DataArray, dim: str = "step", direction: xr.DataArray | None = None
                         ) -> xr.DataArray:
    """Squared amplitude of GD's period-2 oscillation, from the second difference of θ.

    With θ_t = θ̄_t + (−1)^t x_t u (θ̄ smooth), ``Δ²θ_t = θ_{t+1} − 2θ_t + θ_{t−1} ≈ ∓4 x_t u``;
    returns x_t² at the interior steps (NaN at the ends), to compare with
    ``predicted_oscillation`` = 2α/β. With ``direction`` (u on ``dim`` and ``param``, e.g. the
    ``top_eigenvector`` of :func:`eosdyn.qrm.self_stabilization`), x_t = uᵀΔ²θ_t / 4, the
    oscillation along u only; without it x_t = ‖Δ²θ_t‖ / 4 (every direction).

    Parameters
    ----------
    theta : xarray.DataArray
        θ with dims ``dim`` and ``param`` (others broadcast).
    dim : str, default "step"
    direction : xarray.DataArray, optional
        Unit vectors with dim ``param`` (and ``dim``, or constant).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> th = xr.DataArray([[0.5, 0.1], [-0.5, 0.1], [0.5, 0.1], [-0.5, 0.1]], dims=("step", "param"))
    >>> measured_oscillation(th).values.tolist()
    [nan, 0.25, 0.25, nan]
    >>> u = xr.DataArray([0.6, 0.8], dims="param")
    >>> [round(float(v), 4) for v in measured_oscillation(th, direction=u).values[1:3]]
    [0.09, 0.09]
    """
    if not isinstance(theta, xr.DataArray) or not isinstance(dim, str) or dim not in theta.dims \
            or "param" not in theta.dims:
        raise ValueError(f"theta must be a DataArray with dims {dim!r} and 'param'")
    if direction is not None and (not isinstance(direction, xr.DataArray) or "param" not in direction.dims
                                  or direction.sizes["param"] != theta.sizes["param"]):
        raise ValueError("direction must be a DataArray with dim 'param' of the same size as theta's")
    second = theta.shift({dim: -1}) - 2 * theta + theta.shift({dim: 1})
    if direction is None:
        x = np.sqrt((second ** 2).sum("param", skipna=False)) / 4.0
    else:
        x = abs((second * direction).sum("param", skipna=False)) / 4.0
    return (x ** 2).rename("measured_oscillation")
