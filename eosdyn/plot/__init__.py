"""HoloViews views of eosdyn datasets (optional ``plot`` extra: holoviews + matplotlib).

Every view takes a dataset (and keyword options) and returns a HoloViews object;
:func:`save_png` renders it with the matplotlib backend. The catalog names a
view per entry (``plot: eosdyn.plot.phase_plane``); :func:`auto` draws any
dataset. Theory overlays come from :mod:`eosdyn.theory`, never re-derived here.

Examples
--------
>>> import numpy as np, xarray as xr
>>> from eosdyn import plot
>>> ds = xr.Dataset({"z": (("eps", "step"), np.random.rand(2, 5))},
...                 coords={"eps": [0.1, 0.2], "step": np.arange(5)})
>>> view = plot.trajectories(ds, "z")
>>> import pathlib, tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     plot.save_png(view, pathlib.Path(tmp) / "z.png").name
'z.png'
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import xarray as xr

from .. import _files

__all__ = [
    "save_png",
    "auto",
    "trajectories",
    "heatmap",
    "histogram",
    "loss_landscape",
    "eos_trajectories",
    "final_sharpness_vs_eps",
    "phase_portraits",
    "final_T_distribution",
    "qrm_trajectories",
    "phase_diagrams",
    "network_trajectory",
    "rnl",
    "theorem41",
]

_BACKEND_LOADED = False
#: most curves drawn per panel (members beyond are thinned evenly)
MAX_CURVES = 12


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


def save_png(obj, path: str | os.PathLike, *, dpi: int = 110) -> Path:
    """Render a HoloViews object to a PNG file (matplotlib backend), atomically.

    Parameters
    ----------
    obj : holoviews object
        Any element, overlay or layout (e.g. from :func:`auto`).
    path : path-like
        Destination ``.png`` (replaced only once rendering succeeded).
    dpi : int, default 110

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import numpy as np, xarray as xr
    >>> view = trajectories(xr.DataArray(np.arange(4.0), dims="step", name="x"))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_png(view, pathlib.Path(tmp) / "x.png")
    ...     path.read_bytes()[:4]
    b'\x89PNG'
    """
    hv = _hv()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    hv.renderer("matplotlib").instance(dpi=dpi).save(obj, buf, fmt="png")
    data = buf.getvalue()
    if not data.startswith(b"\x89PNG"):
        raise RuntimeError(f"rendering {type(obj).__name__} produced no PNG image")
    _files.atomic_write_bytes(path, data)  # umask permissions, never a partial file
    import matplotlib.pyplot as plt

    plt.close("all")
    return path


def _label(da: xr.DataArray) -> str:
    name = str(da.name)
    ln = da.attrs.get("long_name")
    return f"{name}: {ln}" if ln else name


def _members(da: xr.DataArray, dim: str, max_curves: int):
    """Yield ``(label, 1-D DataArray along dim)`` for up to ``max_curves`` members, evenly thinned."""
    other = [d for d in da.dims if d != dim]
    varying = [d for d in other if da.sizes[d] > 1]
    if not other:
        yield "", da
        return
    stacked = da.stack(member=other).transpose("member", dim)
    n = stacked.sizes["member"]
    idx = np.unique(np.linspace(0, n - 1, min(n, max_curves)).round().astype(int))
    for i in idx:
        m = stacked.isel(member=int(i))
        lab = ", ".join(f"{d}={_fmt(m[d].item())}" for d in varying) if _has_coords(m, varying) else ""
        yield lab, m.drop_vars([c for c in m.coords if c not in (dim,)])


def _has_coords(m, dims) -> bool:
    return all(d in m.coords for d in dims)


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def trajectories(ds: xr.Dataset | xr.DataArray, var: str | None = None, *, dim: str = "step",
                 max_curves: int = MAX_CURVES, hline: float | None = None, logy: bool = False,
                 title: str | None = None):
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
        Logarithmic y axis (absolute values are drawn).
    title : str, optional

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.random.rand(3, 4), dims=("seed", "step"), name="sharpness")
    >>> trajectories(da)  # doctest: +ELLIPSIS
    :Overlay...
    """
    hv = _hv()
    da = ds[var] if isinstance(ds, xr.Dataset) else ds
    name = str(da.name or var or "value")
    curves = []
    for lab, m in _members(da, dim, max_curves):
        y = np.abs(m.values) if logy else m.values
        # (a label equal to the value dimension's name breaks HoloViews' matplotlib backend)
        curves.append(hv.Curve((m[dim].values, y), dim, name, **({"label": lab} if lab else {})))
    over = hv.Overlay(curves)
    if hline is not None:
        over = over * hv.HLine(hline).opts(color="black", linestyle="--", linewidth=1)
    opts = dict(title=title or _label(da), fig_size=160, aspect=1.6, show_legend=1 < len(curves) <= 8,
                legend_position="right")
    if logy:
        opts["logy"] = True
    return over.opts(**opts)


def heatmap(da: xr.DataArray, x: str, y: str, *, title: str | None = None, cmap: str = "viridis",
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
    mesh = hv.QuadMesh((da[x].values, da[y].values, da.values), [x, y], str(da.name or "value"))
    opts = dict(colorbar=True, cmap=cmap, title=title or _label(da), fig_size=140)
    if clim is not None:
        opts["clim"] = clim
    return mesh.opts(**opts)


def histogram(values, *, bins: int = 40, label: str = "value", title: str = "", vline: float | None = None):
    """Histogram of finite ``values`` with an optional dashed reference line.

    Examples
    --------
    >>> histogram([1.9, 2.0, 2.0, float("nan")], bins=4, vline=2.0)  # doctest: +ELLIPSIS
    :Overlay...
    """
    hv = _hv()
    v = np.asarray(values, float).ravel()
    v = v[np.isfinite(v)]
    counts, edges = np.histogram(v, bins=bins) if v.size else (np.zeros(1), np.array([0.0, 1.0]))
    h = hv.Histogram((edges, counts), kdims=[label], vdims=["count"]).opts(title=title, fig_size=140, aspect=1.5)
    if vline is not None:
        h = h * hv.VLine(vline).opts(color="red", linestyle="--")
    return h


#: per-member fate variables of every trajectory dataset (the contract's names): not drawn by auto
FATES = ("status", "steps_taken", "diverged_at", "converged_at")


def _role(ds: xr.Dataset, name: str, *, required: bool = True):
    from ..analysis._common import role_var

    return role_var(ds, name, required=required, what=f"this view (role {name!r})")


def _edge(ds) -> float:
    from ..analysis._common import dataset_edge

    e = dataset_edge(ds)
    return e if isinstance(e, float) else float(np.asarray(e).ravel()[0])


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
            panels.append(hv.Curve((x, da.values), d, str(name)).opts(title=_label(da), fig_size=140))
        else:
            x, y = da.dims[-1], da.dims[-2]
            red = da.mean([d for d in da.dims if d not in (x, y)]) if da.ndim > 2 else da
            red = red.assign_coords({d: ds[d].values if d in ds.coords else np.arange(red.sizes[d])
                                     for d in (x, y)})
            red.name = name
            red.attrs = da.attrs
            panels.append(heatmap(red, x, y))
    if not panels:
        panels.append(hv.Text(0, 0, ds.attrs.get("title", "empty dataset")))
    return hv.Layout(panels).cols(min(2, len(panels))).opts(title=ds.attrs.get("title", ""))


# --------------------------------------------------------------------------- QRM views
def qrm_trajectories(ds: xr.Dataset, *, max_curves: int = MAX_CURVES):
    """Figure 3: loss (log scale) and sharpness η λ_max against GD step, one curve per σ̃_z (and σ̃_J, seed).

    The loss and the sharpness are the variables with roles ``loss`` and ``sharpness``.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.qrm.sweep(D=6, P=12, sigma_z=[0.1, 0.3], sigma_J2=0.2, seeds=1,
    ...                       steps=50, record_every=1)
    >>> qrm_trajectories(ds)  # doctest: +ELLIPSIS
    :Layout...
    """
    hv = _hv()
    loss = trajectories(ds, _role(ds, "loss").name, max_curves=max_curves, logy=True, title="loss")
    sharp = trajectories(ds, _role(ds, "sharpness").name, max_curves=max_curves, hline=_edge(ds),
                         title="sharpness eta lambda_max")
    D, P = int(ds["D"]), int(ds["P"])
    return hv.Layout([loss, sharp]).cols(2).opts(title=f"QRM GD dynamics, D={D}, P={P}, eta={float(ds['eta']):g}")


def phase_diagrams(ds: xr.Dataset):
    """Figure 4: median final sharpness over seeds on the (σ̃_z, σ̃_J²) plane, one panel per (D, P).

    Uses :func:`eosdyn.analysis.final_sharpness_stats` for the median (diverged members excluded;
    grid points where all diverged are blank).

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

    sizes = ds["size"].values if "size" in ds.dims else [None]
    panels = []
    for i in sizes:
        sub = ds if i is None else ds.sel(size=i)
        med = final_sharpness_stats(sub, dim="seed", n_boot=100)["median_sharpness"]
        med = xr.DataArray(med.transpose("sigma_J", "sigma_z").values, dims=("sigma_J2", "log10_sigma_z"),
                           coords={"sigma_J2": sub["sigma_J"].values ** 2,
                                   "log10_sigma_z": np.log10(sub["sigma_z"].values)},
                           name="median final sharpness")
        panels.append(heatmap(med, "log10_sigma_z", "sigma_J2", title=f"D={int(sub['D'])}, P={int(sub['P'])}",
                              cmap="RdBu_r", clim=(0.0, 4.0)))
    return hv.Layout(panels).cols(min(3, len(panels))).opts(
        title="median final eta lambda_max (edge = 2, white)")


def rnl(ds: xr.Dataset):
    """r_NL against σ̃_z: Monte Carlo (error bars), eosdyn's exact formula, the paper's ½ η σ_z D.

    Examples
    --------
    >>> from eosdyn import recipes
    >>> ds = recipes.rnl_monte_carlo(sizes=[[10, 20]], sigma_z=[0.5, 1.0], seeds=50)
    >>> rnl(ds)  # doctest: +ELLIPSIS
    :Layout...
    """
    hv = _hv()
    panels = []
    for i in ds["size"].values:
        sub = ds.sel(size=i)
        x = sub["sigma_z"].values
        over = (hv.ErrorBars((x, sub["r_nl_mc"].values, 2 * sub["r_nl_mc_stderr"].values), "sigma_z", ["r_NL", "err"])
                * hv.Scatter((x, sub["r_nl_mc"].values), "sigma_z", "r_NL", label="Monte Carlo").opts(s=30)
                * hv.Curve((x, sub["r_nl_theory"].values), "sigma_z", "r_NL", label="eosdyn (exact)")
                * hv.Curve((x, sub["r_nl_paper"].values), "sigma_z", "r_NL", label="paper").opts(linestyle="--"))
        panels.append(over.opts(title=f"D={int(sub['D'])}, P={int(sub['P'])}", fig_size=120, show_legend=True))
    return hv.Layout(panels).cols(min(3, len(panels))).opts(title="non-linearity ratio r_NL (Eq. 27)")


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
    for i in ds["size"].values:
        sub = ds.sel(size=i)
        x = sub["sigma_z"].values
        y = "E[lam'']/E[lam]"
        over = (hv.ErrorBars((x, sub["theorem41_mc"].values, 2 * sub["theorem41_mc_stderr"].values), "sigma_z",
                             [y, "err"])
                * hv.Scatter((x, sub["theorem41_mc"].values), "sigma_z", y, label="Monte Carlo").opts(s=30)
                * hv.Curve((x, sub["theorem41_exact"].values), "sigma_z", y, label="exact (finite size)")
                * hv.Curve((x, sub["theorem41_theory"].values), "sigma_z", y, label="large D, P")
                * hv.Curve((x, sub["theorem41_paper"].values), "sigma_z", y, label="paper").opts(linestyle="--"))
        panels.append(over.opts(title=f"D={int(sub['D'])}, P={int(sub['P'])}", logy=True, fig_size=120,
                                show_legend=True))
    return hv.Layout(panels).cols(min(3, len(panels))).opts(title="Theorem 4.1 under gradient flow")


# --------------------------------------------------------------------------- toy views
def _map_kw(ds) -> dict:
    """Keywords of the :mod:`eosdyn.theory.toy` functions for one member of a P = 2 map dataset
    (its ``eps`` or ``a``, and Ẽ from ``E_tilde``), as floats."""
    from ..analysis.coords import map_parameters

    return {k: float(np.asarray(v).ravel()[0]) for k, v in map_parameters(ds, what="this view")["theory"].items()}


def _param_text(kw: dict) -> str:
    return ", ".join(f"{'E~' if k.startswith('E') else k}={v:g}" for k, v in kw.items())


def _nullcline_curves(hv, kw, zs, *, two_step=False):
    from ..theory import toy as theory

    if two_step:
        fz = np.asarray(theory.two_step_nullcline_z(zs, **kw), float)
        fT = np.asarray(theory.two_step_nullcline_T(zs, **kw), float)
        lab = ("two-step z nullcline", "two-step T nullcline")
    else:
        fz = np.asarray(theory.nullcline_z(zs, **kw), float)
        fT = np.asarray(theory.nullcline_T(zs, **kw), float)
        lab = ("z nullcline", "T nullcline")
    return (hv.Curve((zs, fz), "z", "T", label=lab[0]).opts(color="tab:blue", linewidth=2)
            * hv.Curve((zs, fT), "z", "T", label=lab[1]).opts(color="tab:orange", linewidth=2))


def _forbidden(hv, kw, zr, Tr, n=120):
    from ..theory import toy as theory

    zs, Ts = np.linspace(*zr, n), np.linspace(*Tr, n)
    Z, T = np.meshgrid(zs, Ts)
    ok = np.asarray(theory.allowed_region(Z, T, **kw))
    return hv.Image((zs, Ts, np.where(ok, np.nan, 1.0)), ["z", "T"], "forbidden").opts(
        cmap=["lightgrey"], alpha=0.8, colorbar=False)


def loss_landscape(ds: xr.Dataset, *, n: int = 160):
    """Figure 1: the loss L(θ) over the θ plane (P = 2) with the GD paths; all steps and even steps only.

    L(θ) = ½ (½ θᵀQθ − E)² is evaluated from the dataset's coordinates ``Q`` and ``E`` (the raw
    conserved quantity of the one-datapoint model); the paths are the variable with role
    ``parameters`` (dim ``param`` of size 2).

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
    pad = 0.3 * (hi - lo) + 0.5
    x = np.linspace(lo[0] - pad[0], hi[0] + pad[0], n)
    y = np.linspace(lo[1] - pad[1], hi[1] + pad[1], n)
    X, Y = np.meshgrid(x, y)
    quad = Q[0, 0] * X**2 + 2 * Q[0, 1] * X * Y + Q[1, 1] * Y**2
    L = 0.5 * (0.5 * quad - E) ** 2
    bg = hv.Image((x, y, np.log10(L + 1e-6)), ["theta_1", "theta_2"], "log10 loss").opts(cmap="viridis",
                                                                                          colorbar=True)
    pdim = th.dims[-1]
    panels = []
    for title, data in (("GD paths", th), ("even steps only", even(th))):
        curves = [bg]
        others = [d for d in data.dims if d not in ("step", pdim)]
        stacked = data.stack(member=others) if others else data.expand_dims(member=[0])
        for i in range(stacked.sizes["member"]):
            m = stacked.isel(member=i)
            lab = ", ".join(f"{d}={_fmt(m[d].item())}" for d in others) if others else "GD"
            curves.append(hv.Curve((m.isel({pdim: 0}).values, m.isel({pdim: 1}).values), "theta_1", "theta_2",
                                   label=lab).opts(linewidth=1.5))
        t0 = th.isel(step=0)
        t0 = t0.values.reshape(-1, 2)[0]
        curves.append(hv.Scatter([(t0[0], t0[1])], "theta_1", "theta_2").opts(marker="X", s=120, color="red"))
        panels.append(hv.Overlay(curves).opts(title=title, fig_size=150, show_legend=True))
    return hv.Layout(panels).cols(2).opts(title="Figure 1: loss landscape (P = 2) and GD paths")


def eos_trajectories(ds: xr.Dataset):
    """Figure 2: T against step; even iterates in the (z̃, T) plane with the two-step nullclines; y against step.

    For a P = 2 map dataset (roles ``residual`` and ``curvature``, coordinates ``lam`` and
    ``E_tilde``; one value of the map parameters). The dashed line of the right panel is the
    Theorem 3.1 fixed point y* (when the dataset carries ``eps``).

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.toy.two_param(eps=0.05, z0=[-0.5, -0.4], T0=1.6, steps=20)
    >>> eos_trajectories(ds)  # doctest: +ELLIPSIS
    :Layout...
    """
    hv = _hv()
    from ..analysis import eos_coordinate, even

    kw = _map_kw(ds)
    zvar, Tvar = _role(ds, "residual"), _role(ds, "curvature")
    left = trajectories(ds, Tvar.name, hline=_edge(ds), title="curvature T = eta lambda_max")
    ev = even(xr.Dataset({"residual": zvar, "curvature": Tvar}))
    zr = (float(np.nanmin(ev["residual"])), float(np.nanmax(ev["residual"])))
    zs = np.linspace(min(zr[0], -0.05), max(zr[1], 0.05), 200)
    paths = []
    for (lab, mz), (_, mT) in zip(_members(ev["residual"], "step", MAX_CURVES),
                                  _members(ev["curvature"], "step", MAX_CURVES)):
        paths.append(hv.Curve((mz.values, mT.values), "z", "T").opts(linewidth=1, alpha=0.7, color="black"))
    starts = hv.Scatter((zvar.isel(step=0).values.ravel(), Tvar.isel(step=0).values.ravel()), "z", "T").opts(
        marker="X", s=60, color="black")
    middle = (hv.Overlay(paths) * starts * _nullcline_curves(hv, kw, zs, two_step=True)).opts(
        title="even iterates, two-step nullclines", fig_size=150, show_legend=True)
    y = eos_coordinate(ds, method="two_step_nullcline")
    y.name = "y"
    from ..theory import theorem31_y_star

    ystar = float(theorem31_y_star(kw["eps"])) if "eps" in kw else None
    right = trajectories(even(y), "y", hline=ystar, title="EOS coordinate y (even steps); dashed: y*")
    if ystar is not None:
        right = right.opts(ylim=(min(-0.05, 6 * ystar), 0.05))
    return hv.Layout([left, middle, right]).cols(3).opts(title=f"Figure 2: EOS dynamics, {_param_text(kw)}")


def final_sharpness_vs_eps(ds: xr.Dataset):
    """Theorem 3.1: measured final η λ_max against ε, with 2 − ε/2 and the fitted ε² correction.

    Reads ``final_sharpness`` over the coordinate ``eps`` (the median over the other dims).

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
    over = (hv.Scatter((eps, med.values), "eps", "final sharpness", label="GD (measured)").opts(s=40, color="black")
            * hv.Curve((e, np.asarray(theorem31_sharpness(e))), "eps", "final sharpness", label="2 - eps/2 (paper)")
            * hv.Curve((e, np.asarray(theorem31_sharpness_fit(e))), "eps", "final sharpness",
                       label="with fitted eps^2 term").opts(linestyle="--"))
    resid = hv.Scatter((eps, (med.values - np.asarray(theorem31_sharpness(eps))) / eps**2), "eps",
                       "(measured - (2 - eps/2)) / eps^2").opts(s=40)
    return hv.Layout([over.opts(title="Theorem 3.1", fig_size=150, show_legend=True),
                      resid.opts(title="residual / eps^2 (bounded = O(eps^2))", fig_size=150)]).cols(2)


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
    one-step nullclines; one panel per value of the map parameters (ε or a, and Ẽ), plus the
    histogram of the final sharpness.

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
    zr = (float(ds["z0"].min()), float(ds["z0"].max()))
    Tr = (float(ds["T0"].min()), float(ds["T0"].max()))
    for kw, sub in _map_members(ds):
        final = sub["final_sharpness"].values
        pts = hv.Points((sub["z0"].values, sub["T0"].values, np.where(np.isfinite(final), final, np.nan)),
                        ["z", "T"], "final sharpness").opts(color="final sharpness", cmap="viridis", s=18,
                                                            colorbar=True, clim=(0, 4))
        div = np.isnan(final)
        dpts = hv.Points((sub["z0"].values[div], sub["T0"].values[div]), ["z", "T"]).opts(
            marker="X", color="red", s=14)
        zs = np.linspace(*zr, 300)
        nc = _nullcline_curves(hv, kw, zs)
        over = _forbidden(hv, kw, zr, Tr) * pts * dpts * nc
        panels.append(over.opts(title=f"{_param_text(kw)} (x: diverged)", fig_size=130, xlim=zr, ylim=Tr,
                                show_legend=False))
    panels.append(histogram(ds["final_sharpness"].values, bins=40, label="final sharpness",
                            title="final sharpness (all panels)", vline=_edge(ds)))
    return hv.Layout(panels).cols(min(3, len(panels)))


def final_T_distribution(ds: xr.Dataset):
    """Figure 9: random initial conditions with the two-step nullclines (left) and the histogram of
    the final sharpness η λ_max (= T for the P = 2 map), with the Theorem 3.1 limit 2 − ε/2 dashed.

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
    zr = (float(ds["z0"].min()), float(ds["z0"].max()))
    final = ds["final_sharpness"].values
    pts = hv.Points((ds["z0"].values, ds["T0"].values, final), ["z", "T"], "final sharpness").opts(
        color="final sharpness", cmap="viridis", s=10, colorbar=True)
    zs = np.linspace(*zr, 300)
    left = (pts * _nullcline_curves(hv, kw, zs, two_step=True)).opts(
        title=f"two-step nullclines, {_param_text(kw)}", fig_size=150, show_legend=True)
    right = histogram(final, bins=50, label="final sharpness", title="distribution of the final sharpness",
                      vline=float(theorem31_sharpness(kw["eps"])) if "eps" in kw else _edge(ds))
    return hv.Layout([left, right]).cols(2).opts(title="Figure 9")


# --------------------------------------------------------------------------- real network
def network_trajectory(ds: xr.Dataset):
    """Figure 5: top NTK sharpness values η λ_i/n against step (edge dashed, Hessian estimate
    dashed), the residual along the top mode, and the same at even steps only.

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
    sharp = trajectories(ds, sv.name, hline=_edge(ds), title="sharpness eta lambda_i (mode 0 = largest)")
    if "mode" in sv.dims:
        # before the dense window only every probe_every-th step has λ₁: draw those probes as points
        s1 = sv.isel(mode=0)
        probes = s1.where(s1.notnull() & s1.shift(step=1).isnull() & s1.shift(step=-1).isnull(), drop=True)
        if probes.size:
            sharp = sharp * hv.Scatter((probes["step"].values, probes.values), "step", "sharpness",
                                       label="probes (mode 0)").opts(color="C0", s=8)
    if "hessian_sharpness" in ds and "step_h" in ds.dims:
        h = ds["hessian_sharpness"]
        sharp = sharp * hv.Curve((ds["step_h"].values, h.values), "step", "sharpness", label="Hessian").opts(
            linestyle="--", color="black")
    panels = [sharp]
    res = _role(ds, "residual", required=False)
    if res is None and "z1" in ds.data_vars:
        res = ds["z1"]
    if res is not None:
        if "mode" in res.dims:
            res = res.isel(mode=0, drop=True)
        name = str(res.name)
        panels.append(trajectories(res, title=f"{name} (top mode)"))
        panels.append(trajectories(even(res), title=f"{name}, even steps"))
    return hv.Layout(panels).cols(min(3, len(panels))).opts(title=ds.attrs.get("title", "real network"))
from . import flows as _flows  # noqa: E402
from .flows import *  # noqa: E402,F401,F403

__all__ += _flows.__all__
from . import optim as _optim  # noqa: E402
from .optim import *  # noqa: E402,F401,F403

__all__ += _optim.__all__
