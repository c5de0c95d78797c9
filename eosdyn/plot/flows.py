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


def _curve(hv, x, y, label, color, **opts):
    y = np.asarray(y, float)
    keep = np.isfinite(y)
    return hv.Curve((np.asarray(x)[keep], y[keep]), "step", "value", label=label).opts(color=color, **opts)


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
    sharp = [_curve(hv, step, ds["hessian_sharpness"].sel({"method": m}), _NAMES[m], PALETTE[i])
             for i, m in enumerate(_NAMES)]
    p1 = _legend(hv.Overlay(sharp + [edge_line(2.0)]).opts(title="Hessian sharpness",
                                                           ylabel=r"$\eta\,\lambda_{\max}(H)$", xlabel="GD step"),
                 3, "bottom_right")
    avg = time_averaged_loss(ds, windows=[2])["time_averaged_loss"].sel(window=2)
    loss = [_curve(hv, step, ds["loss"].sel({"method": "gd"}), "GD", PALETTE[0], alpha=0.4),
            _curve(hv, step, avg, "GD, 2-step average", PALETTE[0]),
            _curve(hv, step, ds["loss"].sel({"method": "gradient_flow"}), "gradient flow", PALETTE[1]),
            _curve(hv, step, ds["predicted_loss"].sel({"method": "central_flow"}), "central flow prediction",
                   PALETTE[2], linestyle="--")]
    ref = np.asarray(avg, float)
    ref = ref[np.isfinite(ref) & (ref > 0)]
    ylim = (float(ref.min()) / 100, float(np.nanmax(ds["loss"].values)) * 10) if ref.size else (None, None)
    p2 = _legend(hv.Overlay(loss).opts(logy=True, title="loss", ylabel="loss", xlabel="GD step", ylim=ylim),
                 4, "bottom_left")
    d = flow_distances(ds)
    dist = [_curve(hv, step, d["distance_central_flow"], r"$\|\theta_{GD}-\theta_{CF}\|$", PALETTE[2]),
            _curve(hv, step, d["distance_gradient_flow"], r"$\|\theta_{GD}-\theta_{GF}\|$", PALETTE[1])]
    p3 = _legend(hv.Overlay(dist).opts(title="distance in parameter space", ylabel="distance", xlabel="GD step"),
                 2, "bottom_right")
    return finish([p1, p2, p3], 3)


def self_stabilization_view(ds: xr.Dataset, *, max_curves: int = 4):
    """Self-stabilization along GD: predicted squared oscillation 2α/β against the measured one
    (from θ's second difference), and the Hessian sharpness, one colour per member.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.qrm.self_stabilization(D=6, P=10, sigma_z=[0.3], sigma_J2=0.2, seeds=1, steps=10,
    ...                                    record_every=1, record_theta=True, stop="never")
    >>> self_stabilization_view(ds)  # doctest: +ELLIPSIS
    :Layout...
    """
    from ..analysis.flows import measured_oscillation

    hv = _hv()
    if "theta" not in ds:
        raise ValueError("self_stabilization_view needs theta (record_theta=True)")
    other = [d for d in ds["loss"].dims if d != "step"]
    stacked = ds.stack(member=other) if other else ds.expand_dims(member=[0])
    n = min(max_curves, stacked.sizes["member"])
    step = ds["step"].values
    osc, sharp = [], []
    for i in range(n):
        m = stacked.isel(member=i)
        lab = ", ".join(f"{k}={float(m[k]):g}" for k in other if m[k].size == 1)
        meas = measured_oscillation(m["theta"])
        osc.append(_curve(hv, step, m["predicted_oscillation"].where(m["predicted_oscillation"] > 0),
                          f"2α/β {lab}", PALETTE[i % 8], linestyle="--"))
        osc.append(_curve(hv, step, meas.where(meas > 0), f"measured {lab}", PALETTE[i % 8]))
        sharp.append(_curve(hv, step, m["hessian_sharpness"], lab, PALETTE[i % 8]))
    p1 = _legend(hv.Overlay(osc).opts(logy=True, title="squared oscillation along u", ylabel=r"$x^2$",
                                      xlabel="GD step"), len(osc), "bottom_left")
    p2 = _legend(hv.Overlay(sharp + [edge_line(2.0)]).opts(title="Hessian sharpness",
                                                           ylabel=r"$\eta\,\lambda_{\max}(H)$",
                                                           xlabel="GD step"), n, "bottom_right")
    return finish([p1, p2], 2)
