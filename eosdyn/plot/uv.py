"""View of the uv model's catapult phase diagram (entry ``uv_catapult_phases``,
:func:`eosdyn.recipes.uv_phase_diagram`).

Re-exported by :mod:`eosdyn.plot`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

try:  # the house style (eosdyn/plot/_style.py, views.py)
    from ._style import EDGE_COLOR, PALETTE, dim, edge_line, finish
    from .views import _hv, _legend
except ImportError:  # pragma: no cover - a checkout without the style modules
    from . import _hv

    EDGE_COLOR = "#000000"
    PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")

    def dim(name, label=None, da=None):
        return _hv().Dimension(name, label=label or name)

    def edge_line(edge):
        return _hv().HLine(float(edge)).opts(color=EDGE_COLOR, linestyle="--", linewidth=1.2)

    def finish(panels, cols):
        return _hv().Layout(list(panels)).cols(cols)

    def _legend(obj, n, position="best"):
        return obj.opts(show_legend=n > 0, legend_position=position)

__all__ = ["uv_phases"]

#: colours of the phases -1 undecided, 0 lazy, 1 catapult, 2 divergent
_PHASE_COLORS = ("#BBBBBB", PALETTE[0], PALETTE[1], PALETTE[3])
_PHASE_NAMES = ("undecided", "lazy", "catapult", "divergent")


def _log_edges(v):
    """Cell edges of a log-spaced grid ``v`` (geometric midpoints)."""
    v = np.asarray(v, float)
    if v.size == 1:
        return np.array([v[0] / 1.5, v[0] * 1.5])
    mid = np.sqrt(v[1:] * v[:-1])
    return np.concatenate([[v[0] ** 2 / mid[0]], mid, [v[-1] ** 2 / mid[-1]]])


def uv_phases(ds: xr.Dataset):
    """The catapult phase diagram of the uv model: the phase of every member over (η λ₀, n), with
    the paper's boundaries η λ₀ = 2 and 4 and the exact first-step boundary
    (:func:`eosdyn._claims_uv.lazy_boundary`); and the final sharpness η λ against η λ₀ per width
    (the lazy phase keeps η λ₀, the catapult ends below the edge 2).

    Examples
    --------
    >>> from eosdyn.recipes import uv_phase_diagram
    >>> ds = uv_phase_diagram(n=[16, 256], eta=[0.5, 1.25, 1.75, 2.5], steps=2000)
    >>> uv_phases(ds)  # doctest: +ELLIPSIS
    :Layout...
    """
    hv = _hv()
    from .._claims_uv import lazy_boundary

    lam0, z0, y = (float(ds[k]) for k in ("lam0", "z0", "y"))
    ph = ds["uv_phase"].transpose("n", "eta")
    order = np.argsort(ds["eta"].values)
    s = ds["eta"].values[order] * lam0
    ns = ds["n"].values.astype(float)
    nord = np.argsort(ns)
    ns = ns[nord]
    z = ph.values[nord][:, order].astype(float)
    ks = hv.Dimension("eta_lam0", label=r"$\eta\,\lambda_0$")
    kn = dim("n", label="width $n$")
    xe = np.concatenate([[s[0] - (s[1] - s[0]) / 2 if s.size > 1 else s[0] - 0.5],
                         (s[1:] + s[:-1]) / 2,
                         [s[-1] + (s[-1] - s[-2]) / 2 if s.size > 1 else s[0] + 0.5]])
    # log10 n on a linear axis (matplotlib's log axes break the house aspect ratio)
    ye = np.log10(_log_edges(ns))
    ticks = [(float(k), f"$10^{{{k}}}$") for k in range(int(np.ceil(ye[0])), int(np.floor(ye[-1])) + 1)]
    mesh = hv.QuadMesh((xe, ye, z), [ks, kn], hv.Dimension("uv_phase", label="phase")).opts(
        cmap=list(_PHASE_COLORS), clim=(-1.5, 2.5), color_levels=4, colorbar=False, yticks=ticks)
    nn = np.geomspace(ns[0], ns[-1], 200)
    star = lazy_boundary(nn, lam0, z0, y)
    ok = np.isfinite(star) & (star <= s[-1])
    over = mesh * hv.Path([np.column_stack([star[ok], np.log10(nn[ok])])], [ks, kn]).opts(
        color="white", linewidth=2.0)
    over = over * hv.VLine(2.0).opts(color=EDGE_COLOR, linestyle="--", linewidth=1.0) \
        * hv.VLine(4.0).opts(color=EDGE_COLOR, linestyle="--", linewidth=1.0)
    ymid = float(np.log10(np.sqrt(ns[0] * ns[-1])))
    for code, name in zip((0, 1, 2), _PHASE_NAMES[1:]):
        cols = np.flatnonzero(z[-1] == code)             # label the regions at the largest width
        if cols.size:
            over = over * hv.Text(float(np.median(s[cols])), ymid, name).opts(color="white", fontsize=10)
    a = over.opts(title=r"phase; dashed: paper's $\eta\lambda_0$ = 2, 4; white: $2 + \eta^2 z_0 f_0/n$")

    fs = ds["final_sharpness"].transpose("n", "eta").values[nord][:, order]
    fs = np.where((z == 2) | (z == -1), np.nan, fs)
    pick = np.unique(np.linspace(0, ns.size - 1, min(ns.size, 6)).round().astype(int))
    vy = dim("final_sharpness", label=r"final $\eta\,\lambda$")
    curves = [hv.Curve((s, fs[i]), ks, vy, label=f"$n$ = {ns[i]:g}").opts(color=PALETTE[j % 6], linewidth=1.4)
              for j, i in enumerate(pick)]
    b = hv.Overlay(curves) * hv.Slope(1.0, 0.0).opts(color="#999999", linestyle=":", linewidth=1.2) \
        * edge_line(2.0)
    top = float(np.nanmax(np.concatenate([s, fs[np.isfinite(fs)]])))
    b = _legend(b.opts(title=r"final sharpness (dotted: $\eta\lambda_0$, kernel unchanged)",
                       ylim=(0, float(np.ceil(1.05 * top)))), 1, "top_left")
    return finish([a, b], 2)
