"""The views: one per paper figure (catalog ``plot:`` keys) and the generic ones.

Every view takes a dataset and returns a HoloViews Layout in the house style of
:mod:`eosdyn.plot._style`; theory overlays come from :mod:`eosdyn.theory`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ._style import (CMAP, CMAP_DIVERGING, EDGE_COLOR, PALETTE, colorbar_edge, dim, edge_line, finish, symbol)

#: most curves drawn per panel (members beyond are thinned evenly)
MAX_CURVES = 12
#: per-member fate variables of every trajectory dataset (the contract's names): not drawn by auto
FATES = ("status", "steps_taken", "diverged_at", "converged_at")

_BACKEND_LOADED = False


def _hv():
    global _BACKEND_LOADED
    try:
        import holoviews as hv
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError("eosdyn.plot needs the 'plot' extra: pip install 'eosdyn[plot]'") from err
    if not _BACKEND_LOADED:
        import matplotlib

        matplotlib.use("Agg")
        hv.extension("matplotlib", logo=False)
        _BACKEND_LOADED = True
    return hv


def _title(da: xr.DataArray) -> str:
    return symbol(str(da.name), da)


def _esc(text: str) -> str:
    """A title for HoloViews (its titles are format strings: braces doubled)."""
    return text.replace("{", "{{").replace("}", "}}")


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _member_label(m, dims) -> str:
    return ", ".join(f"{symbol(d)} = {_fmt(m[d].item())}" for d in dims)


def _members(da: xr.DataArray, dim_: str, max_curves: int):
    """Yield ``(label, 1-D DataArray along dim_)`` for up to ``max_curves`` members, evenly thinned."""
    other = [d for d in da.dims if d != dim_]
    varying = [d for d in other if da.sizes[d] > 1]
    if not other:
        yield "", da
        return
    stacked = da.stack(member=other).transpose("member", dim_)
    n = stacked.sizes["member"]
    idx = np.unique(np.linspace(0, n - 1, min(n, max_curves)).round().astype(int))
    for i in idx:
        m = stacked.isel(member=int(i))
        lab = _member_label(m, varying) if all(d in m.coords for d in varying) else ""
        yield lab, m.drop_vars([c for c in m.coords if c not in (dim_,)])


def _role(ds: xr.Dataset, name: str, *, required: bool = True):
    from ..analysis._common import role_var

    return role_var(ds, name, required=required, what=f"this view (role {name!r})")


def _edge(ds) -> float:
    """The dataset's edge of stability (:func:`eosdyn.analysis._common.dataset_edge`), one number."""
    from ..analysis._common import dataset_edge

    e = dataset_edge(ds)
    return e if isinstance(e, float) else float(np.asarray(e).ravel()[0])


def _valid_final(ds: xr.Dataset) -> np.ndarray:
    """``final_sharpness`` of the members that neither diverged nor failed (NaN elsewhere)."""
    from ..conventions import STATUS_VALUES

    f = ds["final_sharpness"]
    if "status" in ds:
        bad = ds["status"].isin([STATUS_VALUES["diverged"], STATUS_VALUES["failed"]])
        f = f.where(~bad)
    v = np.asarray(f.values, float)
    return np.where(np.isfinite(v), v, np.nan)


def _log_ticks(lo: float, hi: float, *, powers_only: bool = False, most: int = 6):
    """Ticks ``[(log10 v, label)]`` for a log10-scaled linear axis spanning ``[lo, hi]`` (values)."""
    lo, hi = max(lo, 1e-300), max(hi, 1e-300)
    kmin, kmax = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
    mant = (1,) if powers_only or kmax - kmin > 2 else (1, 2, 5)
    vals = [m * 10.0**k for k in range(kmin, kmax + 1) for m in mant if lo * 0.999 <= m * 10.0**k <= hi * 1.001]
    if len(vals) > most:
        vals = vals[:: int(np.ceil(len(vals) / most))]
    if powers_only or kmax - kmin > 2:
        return [(np.log10(v), f"$10^{{{int(round(np.log10(v)))}}}$") for v in vals]
    return [(np.log10(v), f"{v:g}") for v in vals]


def _legend(obj, n: int, position: str = "best"):
    return obj.opts(show_legend=n > 0, legend_position=position)


# --------------------------------------------------------------------------- generic views
def trajectories(ds: xr.Dataset | xr.DataArray, var: str | None = None, *, dim: str = "step",
                 max_curves: int = MAX_CURVES, hline: float | None = None, logy: bool = False,
                 title: str | None = None, legend: bool | None = None, labels: bool = True):
    """Curves of ``var`` along ``dim`` (one per member of the other dims, thinned to ``max_curves``).

    Parameters
    ----------
    ds : Dataset or DataArray
    var : str, optional
        Variable name (required for a Dataset).
    dim : str, default ``"step"``
    max_curves : int
        At most this many curves (evenly spaced members).
    hline : float, optional
        Draw a dashed horizontal reference line (e.g. the edge of stability, 2).
    logy : bool
        Logarithmic y axis (log10 of the absolute values, ticks at powers of ten).
    title : str, optional
    legend : bool, optional
        Show the legend (default: when there are 2 to 6 curves).
    labels : bool, default True
        Label the curves by their member (coordinate values).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.random.rand(3, 4), dims=("seed", "step"), name="sharpness")
    >>> trajectories(da)  # doctest: +ELLIPSIS
    :Overlay...
    """
    hv = _hv()
    from ._style import dim as _dim

    da = ds[var] if isinstance(ds, xr.Dataset) else ds
    name = str(da.name or var or "value")
    kd, vd = _dim(dim), _dim(name, da=da)
    if logy:   # log10 of the absolute values on a linear axis (panel sizes stay equal), powers of ten as ticks
        vd = hv.Dimension(f"log10_{name}", label=vd.label)
    curves = []
    for i, (lab, m) in enumerate(_members(da, dim, max_curves)):
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.log10(np.abs(m.values)) if logy else m.values
        y = np.where(np.isfinite(y), y, np.nan)
        # (a label equal to the value dimension's name breaks HoloViews' matplotlib backend)
        curves.append(hv.Curve((m[dim].values, y), kd, vd, **({"label": lab} if lab and labels else {})).opts(
            color=PALETTE[i % len(PALETTE)]))
    over = hv.Overlay(curves)
    if hline is not None:
        over = over * edge_line(hline)
    show = (1 < len(curves) <= 6) if legend is None else legend
    opts = dict(title=_esc(title if title is not None else _title(da)))
    if logy:
        a = np.abs(np.asarray(da.values, float))
        a = a[np.isfinite(a) & (a > 0)]
        if a.size:
            opts["yticks"] = _log_ticks(float(a.min()), float(a.max()), powers_only=True)
    return _legend(over.opts(**opts), show)


def heatmap(da: xr.DataArray, x: str, y: str, *, title: str | None = None, cmap: str = CMAP,
            clim: tuple | None = None):
    """A 2-D image of ``da`` over coords ``x`` and ``y`` (other dims must be reduced first).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.random.rand(3, 4), dims=("sigma_J", "sigma_z"),
    ...                   coords={"sigma_J": [1., 2, 3], "sigma_z": [.1, .2, .3, .4]}, name="s")
    >>> heatmap(da, "sigma_z", "sigma_J")  # doctest: +ELLIPSIS
    :QuadMesh...
    """
    hv = _hv()
    da = da.transpose(y, x)
    name = str(da.name or "value")
    mesh = hv.QuadMesh((da[x].values, da[y].values, da.values), [dim(x), dim(y)], dim(name, da=da))
    opts = dict(colorbar=True, cmap=cmap, title=_esc(title if title is not None else _title(da)),
                colorbar_opts={"label": symbol(name, da)})
    if clim is not None:
        opts["clim"] = clim
    return mesh.opts(**opts)


def histogram(values, *, bins: int = 40, label: str = "value", title: str = "", vline: float | None = None):
    """Histogram of finite ``values`` with an optional dashed reference line.

    ``label`` is a variable name (its symbol labels the axis) or any text.

    Examples
    --------
    >>> histogram([1.9, 2.0, 2.0, float("nan")], bins=4, vline=2.0)  # doctest: +ELLIPSIS
    :Overlay...
    """
    hv = _hv()
    v = np.asarray(values, float).ravel()
    v = v[np.isfinite(v)]
    counts, edges = np.histogram(v, bins=bins) if v.size else (np.zeros(1), np.array([0.0, 1.0]))
    h = hv.Histogram((edges, counts), kdims=[dim(label)], vdims=[hv.Dimension("count", label="count")]).opts(
        title=title, color=PALETTE[0], edgecolor="white")
    if vline is not None:
        h = h * hv.VLine(float(vline)).opts(color=EDGE_COLOR, linestyle="--", linewidth=1.2)
    return h


def auto(ds: xr.Dataset, *, max_panels: int = 6):
    """A generic figure of any eosdyn dataset: trajectories, profiles or maps of its main variables.

    The variables named in the dataset's role map (attr ``eosdyn_roles``: sharpness, loss,
    residual, curvature, parameters) come first, then the other numeric variables. Variables
    with a ``step`` (or ``time``) dim are drawn as trajectories (the sharpness with the edge of
    stability dashed); the others as curves over their one dim or maps over their first two
    dims (remaining dims averaged). The fate variables (``status``, ``steps_taken``,
    ``diverged_at``, ``converged_at``) are left out. At most ``max_panels`` panels.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"z": (("eps", "step"), np.random.rand(2, 5))},
    ...                 coords={"eps": [0.1, 0.2], "step": np.arange(5)})
    >>> auto(ds)  # doctest: +ELLIPSIS
    :Layout...
    """
    from ..conventions import ROLES, roles_of

    hv = _hv()
    roles = roles_of(ds)
    first = [roles[r] for r in ROLES if r in roles and roles[r] in ds.data_vars]
    sharp = _role(ds, "sharpness", required=False)
    names = list(dict.fromkeys(first + list(ds.data_vars)))
    panels = []
    for name in names:
        da = ds[name]
        if len(panels) >= max_panels:
            break
        if da.dtype.kind not in "iuf" or da.ndim == 0 or name in FATES:
            continue
        tdim = next((d for d in ("step", "time", "step_h") if d in da.dims), None)
        if tdim is not None:
            edge = _edge(ds) if sharp is not None and name == sharp.name else None
            panels.append(trajectories(da, dim=tdim, hline=edge))
        elif da.ndim == 1:
            d = da.dims[0]
            x = ds[d].values if d in ds.coords else np.arange(da.sizes[d])
            panels.append(hv.Curve((x, da.values), dim(d), dim(str(name), da=da)).opts(title=_title(da)))
        else:
            x, y = da.dims[-1], da.dims[-2]
            red = da.mean([d for d in da.dims if d not in (x, y)]) if da.ndim > 2 else da
            red = red.assign_coords({d: ds[d].values if d in ds.coords else np.arange(red.sizes[d])
                                     for d in (x, y)})
            red.name = name
            red.attrs = da.attrs
            panels.append(heatmap(red, x, y))
    if not panels:
        panels.append(hv.Curve([]).opts(title=ds.attrs.get("title", "empty dataset")))
    return finish(panels, min(2, len(panels)))


# --------------------------------------------------------------------------- QRM views
def qrm_trajectories(ds: xr.Dataset, *, max_curves: int = 6):
    """Figure 3: loss (log scale) and sharpness η λ_max against GD step, one curve per σ̃_z (and σ̃_J, seed).

    The loss and the sharpness are the variables with roles ``loss`` and ``sharpness``; the
    edge of stability (the dataset's edge) is dashed.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.qrm.sweep(D=6, P=12, sigma_z=[0.1, 0.3], sigma_J2=0.2, seeds=1,
    ...                       steps=50, record_every=1)
    >>> qrm_trajectories(ds)  # doctest: +ELLIPSIS
    :Layout...
    """
    loss = trajectories(ds, _role(ds, "loss").name, max_curves=max_curves, logy=True, title="loss",
                        legend=False)
    D, P = int(ds["D"]), int(ds["P"])
    sharp = trajectories(ds, _role(ds, "sharpness").name, max_curves=max_curves, hline=_edge(ds),
                         title=rf"sharpness, $D$ = {D}, $P$ = {P}, $\eta$ = {float(ds['eta']):g}")
    return finish([loss, _legend(sharp, 1, "bottom_right")], 2)


def _log_edges(v):
    v = np.asarray(v, float)
    if v.size == 1:
        return np.array([v[0] / 1.5, v[0] * 1.5])
    mid = np.sqrt(v[1:] * v[:-1])
    return np.concatenate([[v[0] ** 2 / mid[0]], mid, [v[-1] ** 2 / mid[-1]]])


def phase_diagrams(ds: xr.Dataset):
    """Figure 4: median final sharpness over seeds on the (σ̃_z, σ̃_J²) plane, one panel per (D, P).

    Log axes; a diverging colormap centred on the edge of stability; the cells where most seeds
    diverged are marked with a cross. The statistics are :func:`eosdyn.analysis.final_sharpness_stats`
    (median over the members that did not diverge).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> fs = xr.DataArray(np.full((2, 3, 4), 1.9), dims=("sigma_z", "sigma_J", "seed"),
    ...                   coords={"sigma_z": [0.1, 1.0], "sigma_J": [0.3, 0.5, 0.7], "seed": np.arange(4)})
    >>> ds = xr.Dataset({"final_sharpness": fs}, coords={"D": 6, "P": 12})
    >>> phase_diagrams(ds)  # doctest: +ELLIPSIS
    :Layout...
    """
    hv = _hv()
    from ..analysis import final_sharpness_stats

    edge = _edge(ds)
    sizes = ds["size"].values if "size" in ds.dims else [None]
    panels = []
    kx, ky, vz = dim("sigma_z"), dim("sigma_J2"), dim("median_sharpness")
    for i in sizes:
        sub = ds if i is None else ds.sel(size=i)
        st = final_sharpness_stats(sub, dim="seed", n_boot=10)
        med = st["median_sharpness"].transpose("sigma_J", "sigma_z").values
        xs, ys = sub["sigma_z"].values, sub["sigma_J"].values ** 2
        lx, ly = np.log10(_log_edges(xs)), np.log10(_log_edges(ys))
        mesh = hv.QuadMesh((lx, ly, med), [kx, ky], vz).opts(
            cmap=CMAP_DIVERGING, clim=(edge - 2.0, edge + 2.0), colorbar=True, bgcolor="#bbbbbb",
            hooks=[colorbar_edge(edge)],
            colorbar_opts={"label": symbol("median_sharpness")},
            xticks=_log_ticks(xs.min(), xs.max()), yticks=_log_ticks(ys.min(), ys.max()))
        fd = st["frac_diverged"].transpose("sigma_J", "sigma_z").values if "frac_diverged" in st else \
            np.zeros_like(med)
        J, Z = np.meshgrid(np.log10(ys), np.log10(xs), indexing="ij")
        bad = fd > 0.5
        marks = hv.Scatter((Z[bad], J[bad]), kx, ky).opts(marker="x", color="black", s=40)
        panels.append((mesh * marks).opts(
            title=f"$D$ = {int(sub['D'])}, $P$ = {int(sub['P'])} (×: most seeds diverged)", show_legend=False))
    return finish(panels, min(2, len(panels)))


def rnl(ds: xr.Dataset):
    """r_NL against σ̃_z: Monte Carlo (error bars: 2 standard errors), eosdyn's exact formula, the paper's ½ η σ_z D.

    Examples
    --------
    >>> from eosdyn import recipes
    >>> ds = recipes.rnl_monte_carlo(sizes=[[10, 20]], sigma_z=[0.5, 1.0], seeds=50)
    >>> rnl(ds)  # doctest: +ELLIPSIS
    :Layout...
    """
    hv = _hv()
    panels = []
    kx, vy = dim("sigma_z"), dim("r_nl_mc")
    for i in ds["size"].values:
        sub = ds.sel(size=i)
        x = sub["sigma_z"].values
        over = (hv.ErrorBars((x, sub["r_nl_mc"].values, 2 * sub["r_nl_mc_stderr"].values), kx, [vy, "err"])
                .opts(color="black")
                * hv.Scatter((x, sub["r_nl_mc"].values), kx, vy, label="Monte Carlo").opts(s=30, color="black")
                * hv.Curve((x, sub["r_nl_theory"].values), kx, vy, label="eosdyn (exact)").opts(color=PALETTE[0])
                * hv.Curve((x, sub["r_nl_paper"].values), kx, vy, label="paper").opts(linestyle="--",
                                                                                     color=PALETTE[1]))
        panels.append(_legend(over.opts(title=f"$D$ = {int(sub['D'])}, $P$ = {int(sub['P'])}"), 1, "top_left"))
    return finish(panels, min(3, len(panels)))


def theorem41(ds: xr.Dataset):
    """Theorem 4.1 ratio E[λ̈]/E[λ] against σ̃_z: Monte Carlo, exact finite size, large size, paper (log-log).

    Examples
    --------
    >>> from eosdyn import recipes
    >>> ds = recipes.theorem41_monte_carlo(sizes=[[6, 10]], sigma_z=[0.5, 1.0], seeds=50)
    >>> theorem41(ds)  # doctest: +ELLIPSIS
    :Layout...
    """
    hv = _hv()
    panels = []
    kx, vy = dim("sigma_z"), dim("theorem41_mc")
    for i in ds["size"].values:
        sub = ds.sel(size=i)
        x = np.log10(sub["sigma_z"].values)
        mc, se = sub["theorem41_mc"].values, sub["theorem41_mc_stderr"].values
        lmc = np.log10(mc)
        # error bars of log10(mc): 2 standard errors, propagated (and clipped where mc - 2 se <= 0)
        lo = lmc - np.log10(np.clip(mc - 2 * se, mc * 1e-3, None))
        hi = np.log10(mc + 2 * se) - lmc
        ys = [mc, sub["theorem41_exact"].values, sub["theorem41_theory"].values, sub["theorem41_paper"].values]
        allv = np.concatenate([np.ravel(v) for v in ys])
        allv = allv[np.isfinite(allv) & (allv > 0)]
        over = (hv.ErrorBars((x, lmc, lo, hi), kx, [vy, "lo", "hi"]).opts(color="black")
                * hv.Scatter((x, lmc), kx, vy, label="Monte Carlo").opts(s=30, color="black")
                * hv.Curve((x, np.log10(ys[1])), kx, vy, label="exact (finite size)").opts(color=PALETTE[0])
                * hv.Curve((x, np.log10(ys[2])), kx, vy, label="large $D$, $P$").opts(color=PALETTE[2])
                * hv.Curve((x, np.log10(ys[3])), kx, vy, label="paper").opts(linestyle="--", color=PALETTE[1]))
        sz = sub["sigma_z"].values
        panels.append(_legend(over.opts(title=f"$D$ = {int(sub['D'])}, $P$ = {int(sub['P'])}",
                                        xticks=[(np.log10(v), f"{v:g}") for v in sz],
                                        yticks=_log_ticks(float(allv.min()), float(allv.max()), powers_only=True),
                                        ylim=(np.log10(allv.min()) - 0.3,
                                              np.log10(allv.max()) + 0.45 * np.log10(allv.max() / allv.min()) + 0.5)),
                              1, "top_left"))
    return finish(panels, min(3, len(panels)))


# --------------------------------------------------------------------------- toy views
def _map_kw(ds) -> dict:
    """Keywords of the :mod:`eosdyn.theory.toy` functions for one member of a P = 2 map dataset
    (its ``eps`` or ``a``, and Ẽ from ``E_tilde``), as floats."""
    from ..analysis.coords import map_parameters

    return {k: float(np.asarray(v).ravel()[0]) for k, v in map_parameters(ds, what="this view")["theory"].items()}


_PARAM_SYMBOL = {"eps": r"$\varepsilon$", "a": "$a$", "lam": r"$\lambda$", "E_tilde": r"$\tilde{E}$"}


def _param_text(kw: dict) -> str:
    return ", ".join(f"{_PARAM_SYMBOL.get(k, k)} = {v:g}" for k, v in kw.items())


def _nullcline_curves(hv, kw, zs, *, two_step=False):
    from ..theory import toy as theory

    if two_step:
        fz = np.asarray(theory.two_step_nullcline_z(zs, **kw), float)
        fT = np.asarray(theory.two_step_nullcline_T(zs, **kw), float)
        lab = (r"$\tilde{z}_{t+2} = \tilde{z}_t$", "$T_{t+2} = T_t$")
    else:
        fz = np.asarray(theory.nullcline_z(zs, **kw), float)
        fT = np.asarray(theory.nullcline_T(zs, **kw), float)
        lab = (r"$\tilde{z}_{t+1} = \tilde{z}_t$", "$T_{t+1} = T_t$")
    kz, kT = dim("z"), dim("T")
    return (hv.Curve((zs, fz), kz, kT, label=lab[0]).opts(color=PALETTE[0], linewidth=2)
            * hv.Curve((zs, fT), kz, kT, label=lab[1]).opts(color=PALETTE[1], linewidth=2, linestyle="--"))


def _sign_arrows(hv, kw, zr, Tr, *, two_step=False, n=9):
    """Arrows on an ``n`` × ``n`` grid of allowed points giving the signs of the changes of z̃ and T
    under the one-step (or two-step) map of :mod:`eosdyn.theory.toy` (as in the paper's phase portraits)."""
    from ..theory import toy as theory

    dz, dT = (zr[1] - zr[0]) / n, (Tr[1] - Tr[0]) / n
    Z, T = np.meshgrid(zr[0] + dz * (np.arange(n) + 0.5), Tr[0] + dT * (np.arange(n) + 0.5))
    ok = np.asarray(theory.allowed_region(Z, T, **kw), bool)
    step = theory.two_step_map if two_step else theory.one_step_map
    with np.errstate(all="ignore"):
        Z1, T1 = (np.asarray(v, float) for v in step(Z, T, **kw))
    sx, sy = np.sign(Z1 - Z), np.sign(T1 - T)
    ok &= np.isfinite(sx) & np.isfinite(sy) & ((sx != 0) | (sy != 0))
    # direction in screen units (the grid cell's width and height), so diagonal arrows look diagonal
    ang = np.arctan2(sy * dT, sx * dz)
    ang = np.arctan2(np.sin(ang) / dT, np.cos(ang) / dz)
    return hv.VectorField((Z[ok], T[ok], ang[ok], np.ones(int(ok.sum()))), [dim("z"), dim("T")]).opts(
        color="black", magnitude="Magnitude", pivot="mid", alpha=0.7, scale=1.8)


def _forbidden(hv, kw, zr, Tr, n=120):
    from ..theory import toy as theory

    zs, Ts = np.linspace(*zr, n), np.linspace(*Tr, n)
    Z, T = np.meshgrid(zs, Ts)
    ok = np.asarray(theory.allowed_region(Z, T, **kw))
    return hv.Image((zs, Ts, np.where(ok, np.nan, 1.0)), [dim("z"), dim("T")], "forbidden").opts(
        cmap=["lightgrey"], alpha=0.8, colorbar=False)


def loss_landscape(ds: xr.Dataset, *, n: int = 160):
    """Figure 1: the loss L(θ) over the θ plane (P = 2) with the GD paths; all steps and even steps only.

    L(θ) = ½ (½ θᵀQθ − E)² is evaluated from the dataset's coordinates ``Q`` and ``E`` (the raw
    conserved quantity of the one-datapoint model); the paths are the variable with role
    ``parameters`` (dim ``param`` of size 2), one per learning rate (or other member).

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.one_datapoint(Q=[1.0, -0.1], theta0=[1.5, -4.32], E=0.0, eta=0.3, steps=10)
    >>> loss_landscape(ds, n=20)  # doctest: +ELLIPSIS
    :Layout...
    """
    hv = _hv()
    from ..analysis import even

    Q = ds["Q"].values
    E = float(np.asarray(ds["E"]).ravel()[0])
    th = _role(ds, "parameters")
    lo = np.nanmin(th.values, axis=tuple(range(th.ndim - 1)))
    hi = np.nanmax(th.values, axis=tuple(range(th.ndim - 1)))
    pad = 0.15 * (hi - lo) + 0.3
    x = np.linspace(lo[0] - pad[0], hi[0] + pad[0], n)
    y = np.linspace(lo[1] - pad[1], hi[1] + pad[1], n)
    X, Y = np.meshgrid(x, y)
    quad = Q[0, 0] * X**2 + 2 * Q[0, 1] * X * Y + Q[1, 1] * Y**2
    L = 0.5 * (0.5 * quad - E) ** 2
    k1, k2 = hv.Dimension("theta_1", label=r"$\theta_1$"), hv.Dimension("theta_2", label=r"$\theta_2$")
    vL = hv.Dimension("log10_loss", label=r"$\log_{10} L(\theta)$")
    bg = hv.Image((x, y, np.log10(L + 1e-6)), [k1, k2], vL).opts(cmap="Greys_r", colorbar=True,
                                                                 colorbar_opts={"label": vL.label})
    pdim = th.dims[-1]
    panels = []
    for title, data in (("GD, all steps", th), ("GD, even steps", even(th))):
        curves = [bg]
        others = [d for d in data.dims if d not in ("step", pdim)]
        stacked = data.stack(member=others) if others else data.expand_dims(member=[0])
        for i in range(stacked.sizes["member"]):
            m = stacked.isel(member=i)
            lab = _member_label(m, others) if others else "GD"
            curves.append(hv.Curve((m.isel({pdim: 0}).values, m.isel({pdim: 1}).values), k1, k2,
                                   label=lab).opts(linewidth=1.3, color=PALETTE[i % len(PALETTE)]))
        t0 = th.isel(step=0).values.reshape(-1, 2)[0]
        curves.append(hv.Scatter([(t0[0], t0[1])], k1, k2).opts(marker="X", s=120, color=PALETTE[3]))
        panels.append(_legend(hv.Overlay(curves).opts(title=title), 1, "bottom_left"))
    return finish(panels, 2).opts(shared_axes=True)


def eos_trajectories(ds: xr.Dataset):
    """Figure 2: T against step; even iterates in the (z̃, T) plane with the two-step nullclines; y against step.

    For a P = 2 map dataset (roles ``residual`` and ``curvature``, coordinates ``lam`` and
    ``E_tilde``; one value of the map parameters). The edge of stability is dashed on both T
    axes; the dashed line of the right panel is the Theorem 3.1 fixed point y*
    (:func:`eosdyn.theory.theorem31_y_star`, when the dataset carries ``eps``).

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.two_param(eps=0.05, z0=[-0.5, -0.4], T0=1.6, steps=20)
    >>> eos_trajectories(ds)  # doctest: +ELLIPSIS
    :Layout...
    """
    hv = _hv()
    from ..analysis import eos_coordinate, even
    from ..theory import theorem31_y_star

    kw = _map_kw(ds)
    edge = _edge(ds)
    zvar, Tvar = _role(ds, "residual"), _role(ds, "curvature")
    n_init = int(np.prod([Tvar.sizes[d] for d in Tvar.dims if d != "step"]))
    left = trajectories(ds, Tvar.name, hline=edge, legend=False,
                        title=f"{n_init} initialisations, {_param_text(kw)}")
    ev = even(xr.Dataset({"residual": zvar, "curvature": Tvar}))
    zlo, zhi = float(np.nanmin(ev["residual"])), float(np.nanmax(ev["residual"]))
    Tlo, Thi = float(np.nanmin(ev["curvature"])), float(np.nanmax(ev["curvature"]))
    zpad, Tpad = 0.1 * (zhi - zlo) + 0.02, 0.1 * (Thi - Tlo) + 0.05
    zs = np.linspace(zlo - zpad, zhi + zpad, 300)
    kz, kT = dim("z"), dim("T")
    paths = []
    for i, ((lab, mz), (_, mT)) in enumerate(zip(_members(ev["residual"], "step", MAX_CURVES),
                                                 _members(ev["curvature"], "step", MAX_CURVES))):
        paths.append(hv.Scatter((mz.values, mT.values), kz, kT).opts(s=5, alpha=0.7,
                                                                     color=PALETTE[i % len(PALETTE)]))
    starts = hv.Scatter((zvar.isel(step=0).values.ravel(), Tvar.isel(step=0).values.ravel()), kz, kT).opts(
        marker="X", s=60, color="black")
    arrows = _sign_arrows(hv, kw, (zs[0], zs[-1]), (Tlo - Tpad, Thi + Tpad), two_step=True, n=6)
    middle = (arrows * _nullcline_curves(hv, kw, zs, two_step=True) * edge_line(edge) * hv.Overlay(paths)
              * starts).opts(
        title="even iterates", xlim=(zs[0], zs[-1]), ylim=(Tlo - Tpad, Thi + Tpad))
    y = eos_coordinate(ds, method="two_step_nullcline")
    y.name = "y"
    ystar = float(theorem31_y_star(kw["eps"])) if "eps" in kw else None
    right = trajectories(even(y), "y", title="EOS coordinate (even steps)", legend=False, labels=False)
    if ystar is not None:
        st = even(y)["step"].values
        right = (right * hv.Curve(([st[0], st[-1]], [ystar, ystar]), dim("step"), dim("y"),
                                  label="$y^*$ (Theorem 3.1)").opts(color="black", linestyle="--",
                                                                    linewidth=1.2)).opts(
            ylim=(min(-0.01, 8 * ystar), max(0.01, -4 * ystar)))
        right = _legend(right, 1, "bottom_right")
    return finish([left, _legend(middle, 1, "top_left"), right], 3)


def final_sharpness_vs_eps(ds: xr.Dataset):
    """Theorem 3.1: measured final η λ_max against ε, with 2 − ε/2 and the fitted ε² correction.

    Reads ``final_sharpness`` over the coordinate ``eps`` (the median over the other dims); the
    theory curves are :func:`eosdyn.theory.theorem31_sharpness` and
    :func:`eosdyn.theory.theorem31_sharpness_fit`; the edge of stability is dashed.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.two_param(eps=[0.05, 0.1], z0=-0.45, T0=1.65, steps=2000, record_every=None)
    >>> final_sharpness_vs_eps(ds)  # doctest: +ELLIPSIS
    :Layout...
    """
    hv = _hv()
    from ..theory import theorem31_sharpness, theorem31_sharpness_fit

    eps = ds["eps"].values
    ft = ds["final_sharpness"]
    med = ft.median([d for d in ft.dims if d != "eps"]) if ft.ndim > 1 else ft
    e = np.linspace(0, max(eps) * 1.05, 200)[1:]
    ke, vs = dim("eps"), dim("final_sharpness")
    over = (hv.Scatter((eps, med.values), ke, vs, label="GD (median)").opts(s=40, color="black")
            * hv.Curve((e, np.asarray(theorem31_sharpness(e))), ke, vs, label=r"$2 - \varepsilon/2$ (paper)").opts(
                color=PALETTE[0])
            * hv.Curve((e, np.asarray(theorem31_sharpness_fit(e))), ke, vs,
                       label=r"with fitted $\varepsilon^2$ term").opts(linestyle="--", color=PALETTE[1])
            * edge_line(_edge(ds)))
    vr = hv.Dimension("resid", label=r"(measured $-$ $(2 - \varepsilon/2)$) / $\varepsilon^2$")
    resid = hv.Scatter((eps, (med.values - np.asarray(theorem31_sharpness(eps))) / eps**2), ke, vr).opts(
        s=40, color="black", title=r"deviation $/\ \varepsilon^2$ (bounded: $O(\varepsilon^2)$)")
    return finish([_legend(over.opts(title="Theorem 3.1"), 1, "bottom_left"), resid], 2)


def _map_members(ds: xr.Dataset):
    """Group the members of a P = 2 map dataset by the values of its map parameters: yields
    ``(theory keywords as floats, the dataset where they hold)``."""
    from ..analysis.coords import map_parameters

    kw = map_parameters(ds, what="this view")["theory"]
    keys = list(kw)
    das = xr.broadcast(ds["final_sharpness"], *(v if isinstance(v, xr.DataArray) else xr.DataArray(v)
                                                for v in kw.values()))[1:]
    combos = sorted(set(zip(*(np.asarray(d.values).ravel().tolist() for d in das))))
    for combo in combos:
        mask = xr.DataArray(True)
        for d, v in zip(das, combo):
            mask = mask & (d == v)
        yield dict(zip(keys, combo)), ds.where(mask, drop=True)


def phase_portraits(ds: xr.Dataset):
    """Figures 7-8: initial conditions coloured by the final sharpness, forbidden region (grey),
    one-step nullclines, the edge of stability; one panel per value of the map parameters (ε or
    a, and Ẽ), plus the histogram of the final sharpness.

    For a P = 2 map dataset with the initial conditions as coordinates ``z0``, ``T0`` and the
    map parameters as coordinates (``lam``, ``E_tilde``); members that diverged (``final_sharpness``
    NaN) are marked x.

    Examples
    --------
    >>> from eosdyn import recipes
    >>> ds = recipes.phase_portrait(a=1.0, E_tilde=[0.0, 0.5], n=5, steps=50)
    >>> phase_portraits(ds)  # doctest: +ELLIPSIS
    :Layout...
    """
    hv = _hv()
    panels = []
    edge = _edge(ds)
    zr = (float(ds["z0"].min()), float(ds["z0"].max()))
    Tr = (float(ds["T0"].min()), float(ds["T0"].max()))
    kz, kT, vf = dim("z"), dim("T"), dim("final_sharpness")
    for kw, sub in _map_members(ds):
        final = _valid_final(sub)
        pts = hv.Points((sub["z0"].values, sub["T0"].values, final),
                        [kz, kT], vf).opts(color=vf.name, cmap=CMAP, s=18, colorbar=True, clim=(0, 2 * edge),
                                           hooks=[colorbar_edge(edge)],
                                           colorbar_opts={"label": vf.label})
        div = np.isnan(final)
        dpts = hv.Points((sub["z0"].values[div], sub["T0"].values[div]), [kz, kT]).opts(
            marker="x", color=PALETTE[3], s=14)
        zs = np.linspace(*zr, 300)
        over = (_forbidden(hv, kw, zr, Tr) * pts * dpts * _sign_arrows(hv, kw, zr, Tr, n=6)
                * _nullcline_curves(hv, kw, zs) * edge_line(edge))
        panels.append(over.opts(title=_esc(_param_text(kw) + (" (×: diverged)" if div.any() else "")), xlim=zr, ylim=Tr, show_legend=False))
    panels.append(histogram(_valid_final(ds), bins=40, label="final_sharpness",
                            title="all panels, not diverged (dashed: edge)", vline=edge))
    return finish(panels, min(3, len(panels)))


def final_T_distribution(ds: xr.Dataset):
    """Figure 9: random initial conditions with the two-step nullclines (left) and the histogram of
    the final sharpness η λ_max (= T for the P = 2 map), with the Theorem 3.1 limit 2 − ε/2
    (:func:`eosdyn.theory.theorem31_sharpness`) and the edge of stability dashed.

    For a P = 2 map dataset with one value of ``eps`` and ``E_tilde`` and the initial conditions
    as coordinates ``z0``, ``T0``.

    Examples
    --------
    >>> from eosdyn import recipes
    >>> ds = recipes.random_initialisations(eps=0.1, n=20, seed=0, steps=200)
    >>> final_T_distribution(ds)  # doctest: +ELLIPSIS
    :Layout...
    """
    hv = _hv()
    from ..theory import theorem31_sharpness

    kw = _map_kw(ds)
    edge = _edge(ds)
    zr = (float(ds["z0"].min()), float(ds["z0"].max()))
    Tr = (float(ds["T0"].min()), float(ds["T0"].max()))
    final = _valid_final(ds)
    kz, kT, vf = dim("z"), dim("T"), dim("final_sharpness")
    pts = hv.Points((ds["z0"].values, ds["T0"].values, final), [kz, kT], vf).opts(
        color=vf.name, cmap=CMAP, s=8, colorbar=True, colorbar_opts={"label": vf.label},
        hooks=[colorbar_edge(edge)])
    zs = np.linspace(*zr, 300)
    left = _legend((pts * _nullcline_curves(hv, kw, zs, two_step=True) * edge_line(edge)).opts(
        title=_esc(f"initialisations, {_param_text(kw)}"), xlim=zr, ylim=Tr), 1, "top_left")
    fin = final[np.isfinite(final)]
    lim = float(theorem31_sharpness(kw["eps"])) if "eps" in kw else None
    right = histogram(fin, bins=60, label="final_sharpness",
                      title=rf"{int(fin.size)}/{int(final.size)} not diverged; $2 - \varepsilon/2$ red", vline=edge)
    if lim is not None:
        right = _legend(right * hv.VLine(lim, label=r"$2 - \varepsilon/2$").opts(
            color=PALETTE[3], linestyle="--", linewidth=1.5), 1, "top_left")
    return finish([left, right], 2)


# --------------------------------------------------------------------------- real network
def network_trajectory(ds: xr.Dataset):
    """Figure 5: top NTK sharpness values η λ_i/n against step (edge dashed, Hessian estimate
    dashed), the residual z₁ along the top mode, and the same at even steps only.

    The sharpness is the variable with role ``sharpness``; the residual the one with role
    ``residual`` (mode 0 of a ``mode`` dim), else the network dataset's documented ``z1``; the
    Hessian estimate ``hessian_sharpness`` on its own step dim ``step_h`` when present.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = np.arange(40)
    >>> ds = xr.Dataset({"sharpness": (("step", "mode"), np.stack([2 + 0.1 * (-1.0) ** t, 0.5 + 0 * t], 1)),
    ...                  "z1": ("step", 0.1 * (-1.0) ** t)}, coords={"step": t})
    >>> network_trajectory(ds)  # doctest: +ELLIPSIS
    :Layout...
    """
    hv = _hv()
    from ..analysis import even

    sv = _role(ds, "sharpness")
    ks, vs = dim("step"), hv.Dimension("sharpness", label=r"$\eta\,\lambda_i / n$")
    if "mode" in sv.dims:
        curves = []
        for j in range(min(sv.sizes["mode"], 4)):
            s = sv.isel(mode=j)
            curves.append(hv.Curve((s["step"].values, s.values), ks, vs, label=rf"$\lambda_{j + 1}$").opts(
                color=PALETTE[j], linewidth=1))
        # before the dense window only every probe_every-th step has λ₁: draw those probes as points
        s1 = sv.isel(mode=0)
        probes = s1.where(s1.notnull() & s1.shift(step=1).isnull() & s1.shift(step=-1).isnull(), drop=True)
        if probes.size:
            curves.append(hv.Scatter((probes["step"].values, probes.values), ks, vs).opts(color=PALETTE[0], s=6))
        sharp = hv.Overlay(curves)
    else:
        sharp = hv.Overlay([hv.Curve((sv["step"].values, sv.values), ks, vs, label=r"$\lambda_1$").opts(
            color=PALETTE[0])])
    if "hessian_sharpness" in ds and "step_h" in ds.dims:
        h = ds["hessian_sharpness"]
        sharp = sharp * hv.Curve((ds["step_h"].values, h.values), ks, vs, label="Hessian").opts(
            linestyle="--", color="black", linewidth=1)
    sharp = _legend((sharp * edge_line(_edge(ds))).opts(title="top NTK eigenvalues"), 1, "bottom_right")
    panels = [sharp]
    res = _role(ds, "residual", required=False)
    if res is None and "z1" in ds.data_vars:
        res = ds["z1"]
    if res is not None:
        if "mode" in res.dims:
            res = res.isel(mode=0, drop=True)
        res = res.dropna("step", how="all")
        res.name = "z1"
        panels.append(trajectories(res, title="$z_1$ (top NTK mode)", legend=False))
        panels.append(trajectories(even(res), title="$z_1$, even steps", legend=False))
    return finish(panels, min(3, len(panels)))


def network_projections(ds: xr.Dataset, *, trajectory: xr.Dataset | str = "cifar_fcn_trajectory",
                        t0: int | tuple = (4180, 4200), modes: int = 16, feedback: int = 4, steps: int = 80):
    """Figure 6: the second-order structure of the real network.

    A: the extreme eigenvalues of Q₁ (the Hessian of v₁ᵀf, largest blue, smallest orange) at each
    expansion point t₀, against those of a random direction (green).
    B: the two-step increment (z₁)_{t+2} − (z₁)_t against 2 y z₁ (y = η λ₁/n − edge) on the
    network trajectory while abs(z₁) < 1 (before the first catapult), with the least-squares line
    (:func:`eosdyn.analysis.fit_increments`: slope c₁/2 and R²) and the lowest-order law (slope 1).
    C: the sharpness of the second-order Taylor model (:func:`eosdyn.taylor.simulate`, ``modes``
    NTK modes and ``feedback`` feedback directions) started at each ``t0`` against the network's.

    Parameters
    ----------
    ds : Dataset
        The projections (catalog entry ``cifar_fcn_projections``).
    trajectory : Dataset or str
        The network trajectory, or the catalog entry holding it.
    t0 : int or tuple of int
        Expansion points of the Taylor model (steps of ``ds``'s ``t0``).
    modes, feedback, steps : int
        Options of :func:`eosdyn.taylor.simulate`.

    Examples
    --------
    >>> import eosdyn
    >>> proj = eosdyn.catalog.open("cifar_fcn_projections")
    >>> network_projections(proj, t0=4200, steps=10)  # doctest: +ELLIPSIS
    :Layout...
    """
    hv = _hv()
    from .. import catalog
    from ..analysis import eos_coordinate, fit_increments
    from ..taylor import simulate

    traj = catalog.open(trajectory) if isinstance(trajectory, str) else trajectory
    edge = _edge(traj)
    # A: Q1 spectrum against a random direction's
    kt, vq = dim("t0"), hv.Dimension("q", label="extreme eigenvalues")
    q1, qr = ds["q1_eigenvalue"], ds["qrand_eigenvalue"]
    half = q1.sizes["q1_index"] // 2
    T0 = np.repeat(ds["t0"].values[:, None], q1.sizes["q1_index"], 1)
    left = (hv.Scatter((T0[:, :half].ravel(), q1.values[:, :half].ravel()), kt, vq, label="$Q_1$, largest").opts(
                color=PALETTE[0], s=14)
            * hv.Scatter((T0[:, half:].ravel(), q1.values[:, half:].ravel()), kt, vq,
                         label="$Q_1$, smallest").opts(color=PALETTE[1], s=14)
            * hv.Scatter((T0.ravel(), qr.values.ravel()), kt, vq, label="random $w$").opts(color=PALETTE[2], s=14))
    left = _legend(left.opts(title=r"$Q_1 = \nabla^2 (v_1^\top f)$", ylim=(-7000, 13000)), 1, "top_left")
    # B: two-step increment against 2 y z1 during the growth phase
    w = traj.sel(step=slice(traj.attrs.get("window_start"), traj.attrs.get("window_end")))
    w = w[["z1", "sharpness"]].dropna("step", subset=["z1"])
    z = w["z1"].values
    big = np.abs(z) > 1.0
    stop = int(w["step"].values[np.argmax(big) - 1]) if big.any() else int(w["step"].values[-1])
    fit = fit_increments(w, stop=stop, residual="z1")
    c1, r2 = float(fit["c1"]), float(fit["r2_z"])
    y = eos_coordinate(w)
    seg = slice(None, stop)
    z1 = w["z1"].sel(step=seg)
    d2 = (w["z1"].shift(step=-2) - w["z1"]).sel(step=seg)
    x = (2 * y * w["z1"]).sel(step=seg)
    ok = np.isfinite(d2.values) & np.isfinite(x.values)
    kx = hv.Dimension("x", label=r"$2\,y\,z_1$")
    vd = hv.Dimension("d2z", label=r"$(z_1)_{t+2} - (z_1)_t$")
    xs = np.array([np.min(x.values[ok]), np.max(x.values[ok])])
    middle = (hv.Scatter((x.values[ok], d2.values[ok]), kx, vd, label="network").opts(color="black", s=4)
              * hv.Curve((xs, c1 / 2 * xs), kx, vd, label=f"fit: slope {c1 / 2:.3f}, $R^2$ = {r2:.5f}").opts(
                  color=PALETTE[0], linewidth=1.5)
              * hv.Curve((xs, xs), kx, vd, label="slope 1 (lowest order)").opts(
                  color=PALETTE[1], linestyle="--", linewidth=1.5))
    middle = _legend(middle.opts(title=_esc(f"steps {int(z1['step'][0])}-{stop} ($|z_1| < 1$)")), 1, "top_left")
    # C: the Taylor model against the network
    t0s = (t0,) if np.ndim(t0) == 0 else tuple(t0)
    kn, vs = dim("step"), dim("sharpness", label=r"$\eta\,\lambda_1 / n$")
    end = max(t0s) + steps
    net = traj["sharpness"].isel(mode=0).sel(step=slice(min(t0s), end))
    curves = [hv.Curve((net["step"].values, net.values), kn, vs, label="network").opts(color="black", linewidth=2)]
    for i, t in enumerate(t0s):
        sim = simulate(ds, t0=int(t), modes=modes, steps=int(end - t), feedback=feedback)
        curves.append(hv.Curve((sim["network_step"].values, sim["sharpness"].values), kn, vs,
                               label=f"Taylor model, $t_0$ = {int(t)}").opts(color=PALETTE[i % 4], linewidth=1.2))
    vals = np.concatenate([np.asarray(c.dimension_values(1), float) for c in curves])
    lo, hi = float(np.nanmin(vals)), float(np.nanmax(vals))
    right = _legend((hv.Overlay(curves) * edge_line(edge)).opts(
        title=f"Taylor model: $k$ = {modes}, {feedback} feedback dirs.",
        ylim=(lo - 0.6 * (hi - lo), hi + 0.05 * (hi - lo))), 1, "bottom_left")
    return finish([left, middle, right], 3)
