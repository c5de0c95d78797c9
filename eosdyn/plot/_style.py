"""The house style of eosdyn's figures and the layout check of a rendered figure.

One figure width (:data:`WIDTH` inches), equal panel sizes (every panel has the aspect
:data:`ASPECT`), panel letters (HoloViews sublabels), axis labels in mathematical notation
(:data:`SYMBOLS`, the short forms of the CF ``long_name`` s of :data:`eosdyn.conventions.VARIABLES`),
colour-blind-safe colours (Okabe-Ito :data:`PALETTE`, viridis, a red-blue diverging map) and the
edge of stability drawn on every sharpness axis.
"""

from __future__ import annotations

import numpy as np

#: figure width of every view, inches
WIDTH = 10.0
#: width / height of every panel
ASPECT = 1.35
#: resolution of the PNGs written by eosdyn.plot.save_png
DPI = 110
#: padding around the content of a figure, inches
PAD = 0.08
#: widest panel (axes) of a figure, inches
MAX_PANEL = 4.0
#: Okabe & Ito (2008) colour-blind-safe qualitative palette (black last)
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
#: colour of the edge of stability and other theory reference lines
EDGE_COLOR = "#000000"
#: sequential colormap (perceptually uniform, colour-blind safe)
CMAP = "viridis"
#: diverging colormap (centred on the edge of stability)
CMAP_DIVERGING = "RdBu_r"
FONTSIZE = {"title": 10, "labels": 10, "ticks": 8.5, "legend": 8}

#: short mathematical notation (matplotlib mathtext) of a variable: the symbol its CF long_name
#: (eosdyn.conventions.VARIABLES) defines
SYMBOLS = {
    "step": "GD step $t$",
    "time": "time $t$",
    "eps": r"$\varepsilon$",
    "eta": r"$\eta$",
    "z": r"$\tilde{z}$",
    "z0": r"$\tilde{z}_0$",
    "T": r"$T = \eta\,\lambda_{\max}$",
    "T0": r"$T_0$",
    "y": "$y$",
    "sigma_z": r"$\tilde{\sigma}_z$",
    "sigma_J": r"$\tilde{\sigma}_J$",
    "sigma_J2": r"$\tilde{\sigma}_J^2$",
    "sharpness": r"$\eta\,\lambda_{\max}$",
    "final_sharpness": r"final $\eta\,\lambda_{\max}$",
    "median_sharpness": r"median final $\eta\,\lambda_{\max}$",
    "loss": "loss $L$",
    "theta": r"$\theta$",
    "z1": "$z_1$",
    "t0": "$t_0$",
    "hessian_sharpness": r"$\eta\,\lambda_{\max}(H)$",
    "momentum": r"$\beta$",
    "beta1": r"$\beta_1$",
    "beta2": r"$\beta_2$",
    "epsilon": r"$\epsilon$",
    "q1_eigenvalue": r"eigenvalue of $Q_1$",
    "r_nl_mc": r"$r_{\mathrm{NL}}$",
    "theorem41_mc": r"$\mathbb{E}[\ddot\lambda_{\max}]\,/\,\mathbb{E}[\lambda_{\max}]$",
}


def symbol(name: str, da=None) -> str:
    """Axis label of the variable ``name``: its entry of :data:`SYMBOLS`, else its CF
    ``long_name`` (from ``da.attrs`` or :data:`eosdyn.conventions.VARIABLES`) up to the first
    parenthesis, else the name.

    Examples
    --------
    >>> symbol("sigma_z")
    '$\\\\tilde{\\\\sigma}_z$'
    >>> symbol("mode")
    'eigenmode index'
    """
    if name in SYMBOLS:
        return SYMBOLS[name]
    from ..conventions import VARIABLES

    ln = (getattr(da, "attrs", None) or {}).get("long_name") or VARIABLES.get(name, (None,))[0]
    if not ln:
        return str(name)
    return ln.split(" (")[0]


def dim(name: str, label: str | None = None, da=None):
    """A HoloViews dimension named ``name`` labelled in mathematical notation."""
    import holoviews as hv

    return hv.Dimension(name, label=label or symbol(name, da))


def element_options():
    """The house options of every element type (applied by :func:`finish`)."""
    import holoviews as hv

    common = dict(aspect=ASPECT, fontsize=FONTSIZE)
    return [   # (no colours here: they would override the views' own)
        hv.opts.Curve(**common),
        hv.opts.Scatter(**common),
        hv.opts.Points(**common),
        hv.opts.ErrorBars(**common),
        hv.opts.Histogram(**common),
        hv.opts.QuadMesh(**common),
        hv.opts.Image(**common),
        hv.opts.Overlay(legend_opts={"fontsize": FONTSIZE["legend"], "framealpha": 0.85}, **common),
    ]


def finish(panels, cols: int):
    """A Layout of ``panels`` in the house style: ``cols`` columns, panel letters A, B, ..."""
    import holoviews as hv

    lay = hv.Layout(list(panels)).cols(cols)
    return lay.opts(*element_options()).opts(sublabel_format="{Alpha}", sublabel_size=13,
                                             sublabel_position=(-0.3, 1.08),
                                             fig_inches=(WIDTH, None), hspace=0.6, vspace=0.45)


def edge_line(edge: float, label: str | None = None):
    """The edge of stability: a dashed black horizontal line at ``edge``."""
    import holoviews as hv

    kw = {"label": label} if label else {}
    return hv.HLine(float(edge), **kw).opts(color=EDGE_COLOR, linestyle="--", linewidth=1.2)


def colorbar_edge(edge: float):
    """A HoloViews hook that marks the edge of stability on an element's colour bar (a black line)."""
    def hook(plot, element):
        cbar = plot.handles.get("cbar")
        if cbar is not None:
            cbar.ax.axhline(float(edge), color=EDGE_COLOR, linewidth=1.5, linestyle="--")

    return hook


# --------------------------------------------------------------------------- fitting and checks
def _draw(fig):
    """Draw ``fig`` (on an Agg canvas when it has none that renders) and return its renderer."""
    if not hasattr(fig.canvas, "get_renderer"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def fit_to_width(fig, width: float = WIDTH, pad: float = PAD, max_panel: float = MAX_PANEL) -> None:
    """Rescale the axes of a rendered figure so that all its content (labels included) fills
    ``width`` inches with ``pad`` inches to spare on each side; the height follows (in place).

    Text keeps its size: axes positions are mapped affinely (same factor both ways, so panel
    aspects are kept), a few passes for the text that moves with its axes. No panel gets
    wider than ``max_panel`` inches (the content is then centred).
    """
    for _ in range(3):
        renderer = _draw(fig)
        W, H = fig.get_size_inches()
        axes = [a for a in fig.axes if a.get_visible()]
        if not axes:
            return
        pos = np.array([a.get_position(original=True).bounds for a in axes]) * [W, H, W, H]
        ax0, ay0 = pos[:, 0].min(), pos[:, 1].min()
        ax1, ay1 = (pos[:, 0] + pos[:, 2]).max(), (pos[:, 1] + pos[:, 3]).max()
        bb = fig.get_tightbbox(renderer)   # inches
        left, right = ax0 - bb.x0, bb.x1 - ax1
        below, above = ay0 - bb.y0, bb.y1 - ay1
        s = (width - 2 * pad - left - right) / (ax1 - ax0)
        s = min(s, max_panel / pos[:, 2].max())
        spare = (width - 2 * pad - left - right) - s * (ax1 - ax0)
        newH = 2 * pad + below + above + s * (ay1 - ay0)
        ok = abs(s - 1) < 1e-3 and abs(newH - H) < 1e-3 and abs(W - width) < 1e-3
        if ok:
            return
        fig.set_size_inches(width, newH)
        x0, y0 = pad + left + spare / 2, pad + below
        for a, (x, y, w, h) in zip(axes, pos):
            b = [(x0 + s * (x - ax0)) / width, (y0 + s * (y - ay0)) / newH, s * w / width, s * h / newH]
            a.set_position(b)
        for t in fig.texts:   # figure-level texts (suptitle): keep their distance from the top
            xt, yt = t.get_position()
            t.set_position((xt, 1 - (1 - yt) * H / newH))


def text_artists(fig):
    """The visible, non-empty text artists of a drawn figure (titles, labels, ticks, legends,
    colour-bar labels, panel letters). Tick labels count only for the ticks matplotlib draws
    (those inside the view limits)."""
    from matplotlib.text import Text

    hidden = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            ticks = axis.get_major_ticks() + axis.get_minor_ticks()
            drawn = {id(t) for t in axis._update_ticks()}
            for t in ticks:
                if id(t) not in drawn:
                    hidden.update((id(t.label1), id(t.label2)))
    out = []
    for t in fig.findobj(Text):
        if id(t) in hidden or not t.get_visible() or not t.get_text().strip():
            continue
        if t.axes is not None and not t.axes.get_visible():
            continue
        out.append(t)
    return out


def layout_problems(fig, *, tol: float = 0.5) -> list[str]:
    """What is wrong with the layout of a rendered matplotlib figure: text artists that overlap
    one another (window extents intersecting by more than ``tol`` pixels each way) or that stick
    out of the figure. An empty list means the layout is clean.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(figsize=(4, 3))
    >>> _ = ax.text(0.5, 0.5, "one"), ax.text(0.5, 0.5, "two")
    >>> [p.split(":")[0] for p in layout_problems(fig)]
    ['overlap']
    >>> plt.close(fig)
    """
    renderer = _draw(fig)
    fb = fig.bbox
    texts = text_artists(fig)
    boxes = [t.get_window_extent(renderer) for t in texts]
    problems = []
    for t, b in zip(texts, boxes):
        if b.x0 < fb.x0 - tol or b.y0 < fb.y0 - tol or b.x1 > fb.x1 + tol or b.y1 > fb.y1 + tol:
            problems.append(f"outside: {t.get_text()!r} at {np.round(b.extents, 1).tolist()} "
                            f"(figure {np.round(fb.extents, 1).tolist()})")
    for i in range(len(texts)):
        bi = boxes[i]
        for j in range(i + 1, len(texts)):
            bj = boxes[j]
            w = min(bi.x1, bj.x1) - max(bi.x0, bj.x0)
            h = min(bi.y1, bj.y1) - max(bi.y0, bj.y0)
            if w > tol and h > tol:
                problems.append(f"overlap: {texts[i].get_text()!r} and {texts[j].get_text()!r}")
    return problems
