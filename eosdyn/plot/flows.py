"""Views of the continuous-time models (``catalogs/flows.yaml``): GD against gradient flow and the
central flow, and the self-stabilization quantities along GD.

Re-exported by :mod:`eosdyn.plot`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

try:  # the house style (eosdyn/plot/_style.py, views.py)
    from ._style import PALETTE, edge_line, finish
    from .views import _hv, _legend
except ImportError:  # pragma: no cover - a checkout without the style modules
    from . import _hv

    PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")

    def edge_line(edge):
        return _hv().HLine(float(edge)).opts(color="#000000", linestyle="--", linewidth=1.2)

    def finish(panels, cols):
        return _hv().Layout(list(panels)).cols(cols)

    def _legend(obj, n, position="best"):
        return obj.opts(show_legend=n > 0, legend_position=position)

__all__ = ["flow_comparison_view", "self_stabilization_view"]

_NAMES = {"gd": "GD", "gradient_flow": "gradient flow", "central_flow": "central flow"}


def _curve(hv, x, y, label, color, vdim="value", **opts):
    """A curve of the finite values; ``vdim`` names the panel's quantity (HoloViews links the axes
    of panels whose dimensions share a name)."""
    y = np.asarray(y, float)
    keep = np.isfinite(y)
    return hv.Curve((np.asarray(x)[keep], y[keep]), "step", vdim, label=label).opts(color=color, **opts)


def flow_comparison_view(ds: xr.Dataset):
    """GD, gradient flow and central flow through the EOS: Hessian sharpness, loss with the predicted
    time-averaged loss, and the parameter-space distances of GD from both flows.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.qrm.flow_comparison(D=6, P=10, sigma_z=0.3, sigma_J2=0.1, steps=8)
    >>> flow_comparison_view(ds)  # doctest: +ELLIPSIS
    :Layout...
    """
    from ..analysis.flows import flow_distances, time_averaged_loss

    hv = _hv()
    step = ds["step"].values
    sharp = [_curve(hv, step, ds["hessian_sharpness"].sel({"method": m}), _NAMES[m], PALETTE[i], vdim="hessian_sharpness")
             for i, m in enumerate(_NAMES)]
    from ..analysis._common import dataset_edge

    p1 = _legend(hv.Overlay(sharp + [edge_line(dataset_edge(ds))]).opts(title="Hessian sharpness",
                                                           ylabel=r"$\eta\,\lambda_{\max}(H)$", xlabel="GD step"),
                 3, "bottom_right")
    from .views import _log_ticks

    avg = time_averaged_loss(ds, windows=[2])["time_averaged_loss"].sel(window=2)

    def lg(x):      # log10 on a linear axis: panels keep equal sizes; powers of ten as ticks
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log10(np.asarray(x, float))

    series = [(ds["loss"].sel({"method": "gd"}), "GD", PALETTE[0], {"alpha": 0.35}),
              (avg, "GD, 2-step average", PALETTE[0], {}),
              (ds["loss"].sel({"method": "gradient_flow"}), "gradient flow", PALETTE[1], {}),
              (ds["predicted_loss"].sel({"method": "central_flow"}), "central flow prediction", PALETTE[2],
               {"linestyle": "--"})]
    loss = [_curve(hv, step, lg(v), lab, c, vdim="log10_loss", **o) for v, lab, c, o in series]
    ref = np.concatenate([np.ravel(np.asarray(v, float)) for v, *_ in series])
    ref = ref[np.isfinite(ref) & (ref > 0)]
    yt = {"yticks": _log_ticks(float(ref.min()), float(ref.max()), powers_only=True)} if ref.size else {}
    p2 = _legend(hv.Overlay(loss).opts(title="loss", ylabel="loss", xlabel="GD step", **yt), 4, "top_right")
    d = flow_distances(ds)
    dist = [_curve(hv, step, d["distance_central_flow"], r"$\|\theta_{GD}-\theta_{CF}\|$", PALETTE[2], vdim="distance"),
            _curve(hv, step, d["distance_gradient_flow"], r"$\|\theta_{GD}-\theta_{GF}\|$", PALETTE[1],
                   vdim="distance")]
    p3 = _legend(hv.Overlay(dist).opts(title="distance in parameter space", ylabel="distance", xlabel="GD step"),
                 2, "bottom_right")
    return finish([p1, p2, p3], 3)


def self_stabilization_view(ds: xr.Dataset, *, max_curves: int = 4):
    """Self-stabilization along GD: predicted squared oscillation 2α/β against the measured one
    (θ's second difference along the top eigenvector u), and the Hessian sharpness, one colour per
    member.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.qrm.self_stabilization(D=6, P=10, sigma_z=[0.3], sigma_J2=0.2, seeds=1, steps=10,
    ...                                    record_every=1, record_theta=True, stop="never")
    >>> self_stabilization_view(ds)  # doctest: +ELLIPSIS
    :Layout...
    """
    from ..analysis._common import dataset_edge
    from ..analysis.flows import measured_oscillation
    from ._style import symbol
    from .views import _log_ticks

    hv = _hv()
    if "theta" not in ds:
        raise ValueError("self_stabilization_view needs theta (record_theta=True)")
    other = [d for d in ds["loss"].dims if d != "step"]
    stacked = ds.stack(member=other) if other else ds.expand_dims(member=[0])
    n = min(max_curves, stacked.sizes["member"])
    step = ds["step"].values
    osc, sharp, seen = [], [], []
    # log10 of x^2 on a linear axis (equal panel sizes; powers of ten as ticks); the colours name the
    # members in panel B's legend, the line styles the two quantities in panel A's
    for i in range(n):
        m = stacked.isel(member=i)
        lab = ", ".join(f"{symbol(k)}$=${float(m[k]):g}" for k in other if m[k].size == 1 and ds.sizes[k] > 1)
        meas = measured_oscillation(m["theta"], direction=m["top_eigenvector"] if "top_eigenvector" in m else None)
        # u swaps between nearly degenerate edge eigenvectors from one step to the next: the mean
        # over two consecutive steps shows the level without the period-2 saw-tooth
        meas = meas.rolling(step=2).mean()
        pred = m["predicted_oscillation"]
        with np.errstate(divide="ignore", invalid="ignore"):
            lp, lm = np.log10(pred.where(pred > 0)), np.log10(meas.where(meas > 0))
        seen += [v for v in (pred.where(pred > 0).values, meas.where(meas > 0).values)]
        first = i == 0
        osc.append(_curve(hv, step, lp, r"predicted $2\alpha/\beta$" if first else "", PALETTE[i % 8],
                          vdim="log10_x2", linestyle="--"))
        osc.append(_curve(hv, step, lm, "measured (2-step mean)" if first else "", PALETTE[i % 8], vdim="log10_x2"))
        sharp.append(_curve(hv, step, m["hessian_sharpness"], lab or "GD", PALETTE[i % 8], vdim="hessian_sharpness"))
    vals = np.concatenate([np.ravel(v) for v in seen]) if seen else np.array([])
    vals = vals[np.isfinite(vals) & (vals > 0)]
    yt = {"yticks": _log_ticks(float(vals.min()), float(vals.max()), powers_only=True)} if vals.size else {}
    p1 = _legend(hv.Overlay(osc).opts(title="squared oscillation along u", ylabel=r"$x^2$", xlabel="GD step",
                                      **yt), 2, "bottom_left")
    p2 = _legend(hv.Overlay(sharp + [edge_line(dataset_edge(ds))]).opts(
        title="Hessian sharpness", ylabel=r"$\eta\,\lambda_{\max}(H)$", xlabel="GD step"),
        n if n > 1 else 0, "bottom_right")
    return finish([p1, p2], 2)
