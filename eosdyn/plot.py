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
>>> plot.save_png(view, "z.png")  # doctest: +SKIP
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

__all__ = [
    "save_png",
    "auto",
    "trajectories",
    "heatmap",
    "histogram",
    "qrm_trajectories",
    "phase_diagrams",
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
    """
    hv = _hv()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    hv.renderer("matplotlib").instance(dpi=dpi).save(obj, buf, fmt="png")
    data = buf.getvalue()
    if not data.startswith(b"\x89PNG"):
        raise RuntimeError(f"rendering {type(obj).__name__} produced no PNG image")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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
        curves.append(hv.Curve((m[dim].values, y), dim, name, label=lab or name))
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
    """Histogram of finite ``values`` with an optional dashed reference line."""
    hv = _hv()
    v = np.asarray(values, float).ravel()
    v = v[np.isfinite(v)]
    counts, edges = np.histogram(v, bins=bins) if v.size else (np.zeros(1), np.array([0.0, 1.0]))
    h = hv.Histogram((edges, counts), kdims=[label], vdims=["count"]).opts(title=title, fig_size=140, aspect=1.5)
    if vline is not None:
        h = h * hv.VLine(vline).opts(color="red", linestyle="--")
    return h


def auto(ds: xr.Dataset, *, max_panels: int = 6):
    """A generic figure of any eosdyn dataset: trajectories, profiles or maps of its main variables.

    Variables with a ``step`` (or ``time``) dim are drawn as trajectories; the
    others as curves over their one dim or maps over their first two dims
    (remaining dims averaged). At most ``max_panels`` panels.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"z": (("eps", "step"), np.random.rand(2, 5))},
    ...                 coords={"eps": [0.1, 0.2], "step": np.arange(5)})
    >>> auto(ds)  # doctest: +ELLIPSIS
    :Layout...
    """
    hv = _hv()
    panels = []
    for name, da in ds.data_vars.items():
        if len(panels) >= max_panels:
            break
        if da.dtype.kind not in "iuf" or da.ndim == 0 or name in ("status", "diverged_at", "converged_at"):
            continue
        tdim = next((d for d in ("step", "time", "step_h") if d in da.dims), None)
        if tdim is not None:
            panels.append(trajectories(da, dim=tdim))
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

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.qrm.sweep(D=6, P=12, sigma_z=[0.1, 0.3], sigma_J2=0.2, seeds=1,
    ...                       max_steps=50, record=1)  # doctest: +SKIP
    >>> qrm_trajectories(ds)  # doctest: +SKIP
    """
    hv = _hv()
    loss = trajectories(ds, "loss", max_curves=max_curves, logy=True, title="loss")
    sharp = trajectories(ds, "sharpness", max_curves=max_curves, hline=2.0, title="sharpness eta lambda_max")
    D, P = int(ds["D"]), int(ds["P"])
    return hv.Layout([loss, sharp]).cols(2).opts(title=f"QRM GD dynamics, D={D}, P={P}, eta={float(ds['eta']):g}")


def phase_diagrams(ds: xr.Dataset):
    """Figure 4: median final sharpness over seeds on the (σ̃_z, σ̃_J²) plane, one panel per (D, P).

    Uses :func:`eosdyn.analysis.final_sharpness_stats` for the median (diverged members excluded;
    grid points where all diverged are blank).
    """
    hv = _hv()
    from .analysis import final_sharpness_stats

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
    """r_NL against σ̃_z: Monte Carlo (error bars), eosdyn's exact formula, the paper's ½ η σ_z D."""
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
    """Theorem 4.1 ratio E[λ̈]/E[λ] against σ̃_z: Monte Carlo, exact finite size, large size, paper (log-log)."""
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
