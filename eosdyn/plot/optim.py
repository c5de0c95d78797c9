"""Views of the optimizer datasets (``catalogs/optimizers.yaml``): where each optimizer's own
sharpness ends relative to its edge of stability (the dataset's ``edge`` coordinate,
:func:`eosdyn.theory.optimizer_edge`).

Re-exported by :mod:`eosdyn.plot`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

try:  # the house style (eosdyn/plot/_style.py, views.py)
    from ._style import PALETTE, dim, edge_line, finish, symbol
    from .views import _hv, _legend, _role
except ImportError:  # pragma: no cover - a checkout without the style modules
    from . import _hv, _role

    PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")

    def dim(name, label=None, da=None):
        return _hv().Dimension(name, label=label or name)

    def edge_line(edge, label=None):
        return _hv().HLine(float(edge)).opts(color="#000000", linestyle="--", linewidth=1.2)

    def finish(panels, cols):
        return _hv().Layout(list(panels)).cols(cols)

    def _legend(obj, n, position="best"):
        return obj.opts(show_legend=n > 0, legend_position=position)

__all__ = ["final_sharpness_vs_edge", "edge_trajectories", "batch_sharpness_vs_batch_size"]

#: hyperparameter dims a view splits by (one colour each)
_HYPER = ("momentum", "beta1", "beta2", "epsilon")


def _hyper_dim(ds: xr.Dataset) -> str | None:
    return next((d for d in _HYPER if d in ds.dims), None)


def _edge_at(ds: xr.Dataset, hdim: str | None, value) -> float:
    if "edge" not in ds.coords:
        return 2.0
    e = ds.coords["edge"]
    if hdim is not None and hdim in e.dims:
        e = e.sel({hdim: value})
    return float(np.asarray(e.values).ravel()[0])


def _converged(ds: xr.Dataset, da: xr.DataArray) -> xr.DataArray:
    from ..conventions import STATUS_VALUES

    return da.where(ds["status"] == STATUS_VALUES["converged"]) if "status" in ds else da


def _settled(ds: xr.Dataset, da: xr.DataArray) -> xr.DataArray:
    from ..conventions import STATUS_VALUES

    if "status" not in ds:
        return da
    return da.where((ds["status"] != STATUS_VALUES["diverged"]) & (ds["status"] != STATUS_VALUES["failed"]))


def _groups(ds: xr.Dataset, hdim: str | None):
    vals = np.atleast_1d(ds[hdim].values) if hdim else [None]
    for i, v in enumerate(vals):
        yield i, v, (f"{symbol(hdim)} = {v:g}" if hdim else "")


#: axis labels of the optimizers' own sharpness variables
_LABELS = {"sharpness": r"$\eta\,\lambda_{\max}$", "preconditioned_sharpness": r"$\eta\,\lambda_{\max}(P^{-1}H)$",
           "batch_sharpness": "batch sharpness", "hessian_sharpness": r"$\eta\,\lambda_{\max}(H)$"}


def _top(values) -> float:
    """An upper y limit on a multiple of 0.5 above every finite value (the tick labels then end
    at the frame)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    return 0.5 * np.ceil((1.08 * v.max() if v.size else 1.0) / 0.5)


def _median_over(da: xr.DataArray, keep: tuple[str, ...]) -> xr.DataArray:
    other = [d for d in da.dims if d not in keep]
    return da.median(other, skipna=True) if other else da


def final_sharpness_vs_edge(ds: xr.Dataset):
    """Median final sharpness (converged members) against σ̃_z, one colour per hyperparameter
    value with its edge dashed in the same colour; and the same divided by the edge.

    The sharpness is the optimizer's own (role ``sharpness``, its ``final_`` variable); members
    that did not converge are left out.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.qrm.sweep(D=6, P=12, sigma_z=[0.2, 0.4], sigma_J2=0.2, seeds=2, steps=200,
    ...                       optimizer="momentum", momentum=[0.0, 0.5])
    >>> final_sharpness_vs_edge(ds)  # doctest: +ELLIPSIS
    :Layout...
    """
    hv = _hv()
    own = str(_role(ds, "sharpness").name)
    final = _converged(ds, ds[f"final_{own}"])
    hdim = _hyper_dim(ds)
    x = "sigma_z" if "sigma_z" in final.dims else None
    keep = tuple(d for d in (x, hdim) if d)
    med = _median_over(final, keep)
    kx = dim(x) if x else hv.Dimension("member")
    vy, vr = dim("final_sharpness", label="median final sharpness"), hv.Dimension("ratio", label="median / edge")
    left, right, tops = [], [], [med.values]
    for i, v, lab in _groups(ds, hdim):
        m = med.sel({hdim: v}) if hdim else med
        xs = m[x].values if x else np.arange(m.size)
        e = _edge_at(ds, hdim, v)
        c = PALETTE[i % len(PALETTE)]
        left.append(hv.Curve((xs, m.values.ravel()), kx, vy, label=lab or "median").opts(color=c, marker="o"))
        left.append(hv.HLine(e).opts(color=c, linestyle="--", linewidth=1.2))
        tops.append([e])
        right.append(hv.Curve((xs, m.values.ravel() / e), kx, vr, label=lab or "median").opts(color=c, marker="o"))
    top = _top(np.concatenate([np.ravel(t) for t in tops]))
    a = _legend(hv.Overlay(left).opts(title="final sharpness (converged), edges dashed", ylim=(0, top)), 1,
                "bottom_right")
    b = _legend((hv.Overlay(right) * edge_line(1.0)).opts(title="relative to the edge", ylim=(0, 1.2)), 1,
                "bottom_right")
    return finish([a, b], 2)


def edge_trajectories(ds: xr.Dataset):
    """The optimizer's own sharpness against step (median over seeds, one curve per
    hyperparameter value and σ̃_z), with each edge dashed; and the same divided by the edge.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.qrm.sweep(D=6, P=12, sigma_z=0.2, sigma_J2=0.2, eta=0.003, seeds=2, steps=100,
    ...                       record_every=10, tol=0.0, optimizer="adam", beta1=[0.5, 0.9])
    >>> edge_trajectories(ds)  # doctest: +ELLIPSIS
    :Layout...
    """
    hv = _hv()
    sv = _role(ds, "sharpness")
    own = str(sv.name)
    da = _settled(ds, sv)
    hdim = _hyper_dim(ds)
    x = "sigma_z" if "sigma_z" in da.dims else None
    med = _median_over(da, tuple(d for d in (x, hdim, "step") if d))
    from .views import _log_ticks

    ks = dim("step")
    vy = hv.Dimension(f"log10_{own}", label=_LABELS.get(own, own))    # log10 on a linear axis
    vr = hv.Dimension("ratio", label="sharpness / edge")
    left, right, k, seen = [], [], 0, []
    for _, v, lab in _groups(ds, hdim):
        m = med.sel({hdim: v}) if hdim else med
        e = _edge_at(ds, hdim, v)
        xs = np.atleast_1d(m[x].values) if x else [None]
        for s in xs:
            mm = m.sel({x: s}) if x else m
            mm = mm.isel(step=slice(1, None)) if mm.sizes["step"] > 2 else mm  # step 0: P = ε, no scale
            name = ", ".join(p for p in (lab, f"{symbol('sigma_z')} = {s:g}" if x else "") if p) or "median"
            c = PALETTE[k % len(PALETTE)]
            k += 1
            y = np.asarray(mm.values, float)
            with np.errstate(divide="ignore", invalid="ignore"):
                ly = np.where(y > 0, np.log10(np.abs(y)), np.nan)
            seen.append(y)
            left.append(hv.Curve((mm["step"].values, ly), ks, vy, label=name).opts(color=c))
            right.append(hv.Curve((mm["step"].values, y / e), ks, vr, label=name).opts(color=c))
        seen.append(np.array([e]))
        left.append(hv.HLine(float(np.log10(e))).opts(color="#000000", linestyle="--", linewidth=1.2))
    vals = np.concatenate([np.ravel(a) for a in seen])
    vals = vals[np.isfinite(vals) & (vals > 0)]
    yt = {"yticks": _log_ticks(float(vals.min()), float(vals.max()))} if vals.size else {}
    a = _legend(hv.Overlay(left).opts(title="sharpness (median over seeds), edges dashed", **yt), 0)
    b = _legend((hv.Overlay(right) * edge_line(1.0)).opts(title="relative to the edge", ylim=(0, 1.6)), 1,
                "top_left")
    return finish([a, b], 2)


def batch_sharpness_vs_batch_size(ds: xr.Dataset):
    """Minibatch SGD: median final batch sharpness and η λ_max (and η λ_max(H) when recorded)
    of the converged members against the batch size, with the edge dashed; and the fractions of
    members that converged and diverged.

    Per batch size the σ̃_z at the top of the EOS band is drawn (the choice of
    :func:`eosdyn.claims.claim_sgd_batch_sharpness`); the batch sharpness is not drawn at full
    batch, where the final gradient's Rayleigh quotient is not a sharpness.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"final_batch_sharpness": (("batch_size", "seed"), [[1.9, 2.0], [0.1, 0.2]]),
    ...                  "final_sharpness": (("batch_size", "seed"), [[1.1, 1.2], [1.9, 1.95]]),
    ...                  "status": (("batch_size", "seed"), np.int8([[1, 2], [1, 1]]))},
    ...                 coords={"batch_size": [5, 20], "D": 20, "edge": 2.0})
    >>> batch_sharpness_vs_batch_size(ds)  # doctest: +ELLIPSIS
    :Layout...
    """
    from .._claims_optim import _sgd_band

    hv = _hv()
    kb = hv.Dimension("batch_size", label="batch size $b$")
    vy = dim("final_sharpness", label="median final value")
    edge = float(np.asarray(ds.coords["edge"].values).ravel()[0]) if "edge" in ds.coords else 2.0
    rows = _sgd_band(ds)
    b = np.array([r["batch_size"] for r in rows], float)
    ticks = [(float(v), f"{int(v)}") for v in b]
    curves, vals = [], [[edge]]
    for i, (name, lab) in enumerate((("final_batch_sharpness", "batch sharpness"),
                                     ("final_sharpness", r"$\eta\,\lambda_{\max}$ (NTK)"),
                                     ("final_hessian_sharpness", r"$\eta\,\lambda_{\max}(H)$"))):
        if name not in ds:
            continue
        med = np.array([np.median(r[name]) if r[name].size and not (r["full"] and name == "final_batch_sharpness")
                        else np.nan for r in rows])
        curves.append(hv.Curve((b, med), kb, vy, label=lab).opts(color=PALETTE[i], marker="o",
                                                                 linestyle="-" if i < 2 else ":"))
        vals.append(med)
    over = (hv.Overlay(curves) * edge_line(edge)).opts(title=f"converged members (edge {edge:g} dashed)",
                                                        xticks=ticks, ylim=(0, _top(np.concatenate(vals))))
    panels = [_legend(over, 1, "bottom_right")]
    if "status" in ds:
        from ..conventions import STATUS_VALUES

        other = [d for d in ds["status"].dims if d != "batch_size"]
        vf = hv.Dimension("fraction", label="fraction of members")
        fates = []
        for i, fate in enumerate(("converged", "diverged")):
            frac = (ds["status"] == STATUS_VALUES[fate]).mean(other) if other else ds["status"] == STATUS_VALUES[fate]
            fates.append(hv.Curve((ds["batch_size"].values, frac.values), kb, vf, label=fate)
                         .opts(color=PALETTE[i + 3], marker="o"))
        fate = hv.Overlay(fates).opts(title=r"fates (all $\tilde\sigma_z$)", xticks=ticks, ylim=(0, 1.2))
        panels.append(_legend(fate, 1, "right"))
    return finish(panels, 2)
