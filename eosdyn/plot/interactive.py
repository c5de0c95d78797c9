"""Interactive views in the browser: :func:`save` (PNG or self-contained HTML) and :func:`explorer`.

:func:`explorer` turns any eosdyn dataset into a HoloViews ``HoloMap`` whose key dimensions are
the dataset's extra dims (σ̃_z, σ̃_J, seed, ε, ...): one frame per member, a curve against the
step when the variable has a trajectory, else a map over two parameter dims. :func:`save` writes
it (or any HoloViews object) as a static HTML page drawn by bokeh: every frame is embedded, the
key dimensions become sliders (numbers) or selectors (text), and moving one swaps the plot's data
in the browser, without a server or a network connection (the bokeh JavaScript is inlined).

Examples
--------
>>> import pathlib, tempfile
>>> import numpy as np, xarray as xr
>>> from eosdyn.plot.interactive import explorer, save  # also eosdyn.plot.explorer, eosdyn.plot.save
>>> ds = xr.Dataset({"sharpness": (("eps", "step"), np.random.rand(2, 50))},
...                 coords={"eps": [0.1, 0.2], "step": np.arange(50)})
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = save(explorer(ds), pathlib.Path(tmp) / "sharpness.html")
...     path.read_text()[:15]
'<!DOCTYPE html>'
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import xarray as xr

from .. import _files

__all__ = ["save", "explorer", "trajectory_variables", "html_document", "png_with_text", "MAX_FRAMES"]

#: most frames :func:`explorer` builds and :func:`save` embeds in one HTML page
MAX_FRAMES = 400
#: dims that index members rather than a continuous parameter: never a map axis
_CATEGORICAL = ("seed", "size", "member", "init", "mode", "param", "param2", "chain", "sample")
#: trajectory dims, in order of preference
_TIME_DIMS = ("step", "time", "step_h")
#: per-member fate variables: not drawn by default
_FATES = ("status", "steps_taken", "diverged_at", "converged_at")
#: the widgets' and data sources' names in the page (the browser test finds them by these)
WIDGET_PREFIX = "eosdyn-widget-"
SOURCE_PREFIX = "eosdyn-source-"


def _hv():
    from . import _hv as hv_loader

    hv = hv_loader()
    hv.renderer("bokeh")  # load the bokeh backend too, without changing the current (matplotlib) one
    return hv


# --------------------------------------------------------------------------- save
def save(obj, path: str | os.PathLike, *, title: str | None = None, metadata: dict | None = None,
         max_frames: int = MAX_FRAMES) -> Path:
    """Write a HoloViews object as a PNG (matplotlib) or a self-contained HTML page (bokeh), atomically.

    Parameters
    ----------
    obj : holoviews object
        An element, overlay, layout or ``HoloMap`` (e.g. from :func:`explorer` or any view of
        :mod:`eosdyn.plot`).
    path : path-like
        Destination; its suffix chooses the format: ``.png`` (:func:`eosdyn.plot.save_png`) or
        ``.html`` (bokeh, with the JavaScript inlined: the page works offline, from ``file://``).
        The file is replaced only once rendering succeeded.
    title : str, optional
        The HTML page title (default: the file name).
    metadata : dict of str, optional
        Text stored in the file: PNG ``tEXt`` chunks (e.g. ``{"Title": ..., "Description": ...}``)
        or ``<meta name=KEY content=VALUE>`` tags of the HTML page.
    max_frames : int, default :data:`MAX_FRAMES`
        Most frames (combinations of the key dimensions' values) one HTML page embeds.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        For a suffix other than ``.png`` or ``.html``, an unwritable path, or (HTML) an object
        with more than ``max_frames`` frames (the message names the dims and their sizes).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import numpy as np, xarray as xr
    >>> from eosdyn.plot import trajectories
    >>> view = trajectories(xr.DataArray(np.arange(4.0), dims="step", name="x"))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     png = save(view, pathlib.Path(tmp) / "x.png", metadata={"Title": "x"})
    ...     html = save(view, pathlib.Path(tmp) / "x.html")
    ...     png.read_bytes()[:4], "<script" in html.read_text()
    (b'\\x89PNG', True)
    """
    from .._validate import check_int

    path = _files.check_output_path(path, name="path")
    suffix = path.suffix.lower()
    if suffix not in (".png", ".html"):
        raise ValueError(f"path must end in .png or .html; got {str(path)!r}")
    max_frames = check_int("max_frames", max_frames, 1)
    meta = _check_metadata(metadata)
    if suffix == ".png":
        from . import save_png

        save_png(obj, path)
        if meta:
            _files.atomic_write_bytes(path, png_with_text(path.read_bytes(), meta))
        return path
    html = html_document(obj, title=title or path.stem, metadata=meta, max_frames=max_frames)
    _files.atomic_write_text(path, html)
    return path


def _check_metadata(metadata) -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise TypeError("metadata must be a dict of str keys and str values; "
                        f"got {type(metadata).__name__}")
    for k in metadata:
        if not (1 <= len(k) <= 79) or not k.isascii() or not k.isprintable():
            raise ValueError(f"metadata keys must be 1 to 79 printable ASCII characters; got {k!r}")
    return dict(metadata)


def png_with_text(data: bytes, text: dict) -> bytes:
    """Insert PNG text chunks (``tEXt``, or ``iTXt`` for non-Latin-1 text) after the header chunk.

    Parameters
    ----------
    data : bytes
        A PNG file's content.
    text : dict of str
        Keyword (1 to 79 Latin-1 characters) -> text.

    Returns
    -------
    bytes

    Examples
    --------
    >>> import io, PIL.Image
    >>> buf = io.BytesIO(); PIL.Image.new("L", (2, 2)).save(buf, format="PNG")
    >>> PIL.Image.open(io.BytesIO(png_with_text(buf.getvalue(), {"Title": "σ_z sweep"}))).text
    {'Title': 'σ_z sweep'}
    """
    import struct
    import zlib

    if not data.startswith(b"\x89PNG\r\n\x1a\n") or data[12:16] != b"IHDR":
        raise ValueError("data is not a PNG image (no PNG signature and IHDR chunk)")
    end_ihdr = 8 + 12 + struct.unpack(">I", data[8:12])[0]
    chunks = b""
    for key, value in text.items():
        try:
            kind, body = b"tEXt", key.encode("latin-1") + b"\x00" + value.encode("latin-1")
        except UnicodeEncodeError:  # international text: iTXt, uncompressed, UTF-8
            kind, body = b"iTXt", key.encode("latin-1") + b"\x00\x00\x00\x00\x00" + value.encode("utf-8")
        chunks += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return data[:end_ihdr] + chunks + data[end_ihdr:]


def _frame_count(plot) -> tuple[list, list]:
    keys = list(getattr(plot, "keys", None) or [()])
    dims = [getattr(d, "name", str(d)) for d in getattr(plot, "dimensions", [])]
    return keys, dims


def html_document(obj, *, title: str = "eosdyn", metadata: dict | None = None,
                  max_frames: int = MAX_FRAMES) -> str:
    """The self-contained HTML page (bokeh, inline resources) of a HoloViews object, as text.

    A ``HoloMap`` (or a layout of them) gets one slider per numeric key dimension and one
    selector per text key dimension; every frame's data is embedded and a change of a widget
    swaps the plot's data sources (and titles) in the browser. The widgets are named
    ``eosdyn-widget-<dim>`` and the data sources ``eosdyn-source-<i>``.

    Examples
    --------
    >>> import holoviews as hv
    >>> hm = hv.HoloMap({a: hv.Curve([0, a]) for a in (1, 2)}, kdims="a")
    >>> page = html_document(hm)
    >>> 'eosdyn-widget-a' in page, page.count("cdn.bokeh.org")
    (True, 0)
    """
    from .._validate import check_int

    max_frames = check_int("max_frames", max_frames, 1)
    meta = _check_metadata(metadata)
    hv = _hv()
    import warnings

    from bokeh.embed import file_html
    from bokeh.layouts import column
    from bokeh.models import ColumnDataSource, CustomJS, Div, Select, Slider, Title
    if isinstance(obj, hv.HoloMap) and len(obj) > max_frames:
        raise ValueError(_too_many(len(obj), [(d.name, len({k[i] for k in obj.keys()}))
                                              for i, d in enumerate(obj.kdims)], max_frames))
    renderer = hv.renderer("bokeh")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        plot = renderer.get_plot(obj)
        keys, dims = _frame_count(plot)
        if len(keys) > max_frames:
            raise ValueError(_too_many(len(keys), [(d, len({k[i] for k in keys})) for i, d in enumerate(dims)],
                                       max_frames))
        model = plot.state
        refs = model.references()
        sources = sorted((m for m in refs if isinstance(m, ColumnDataSource)), key=lambda m: (len(m.id), m.id))
        # titles: the panels' (Title) and the layout's (a Div holoviews adds), e.g. "mode: 0"
        titles = sorted((m for m in refs if isinstance(m, (Title, Div))), key=lambda m: (len(m.id), m.id))
        widgets = []
        if len(keys) > 1:
            frames = []
            for key in keys:
                plot.update(key)
                now = model.references()
                if {m.id for m in now if isinstance(m, ColumnDataSource)} != {s.id for s in sources}:
                    raise ValueError("html_document: the frames of this object do not share their plot "
                                     "structure (glyphs appear or vanish between frames); draw the same "
                                     "elements in every frame")
                frames.append({"data": [{c: _column(v) for c, v in s.data.items()} for s in sources],
                               "titles": [t.text for t in titles]})
            plot.update(keys[0])
            for i, s in enumerate(sources):
                s.name = f"{SOURCE_PREFIX}{i}"
            values = [list(dict.fromkeys(k[i] for k in keys)) for i in range(len(dims))]
            lookup = {",".join(str(values[i].index(k[i])) for i in range(len(dims))): n for n, k in enumerate(keys)}
            code = """
const idx = widgets.map((w) => w.type === 'Select' || w.options !== undefined
    ? String(w.options.indexOf(w.value)) : String(Math.round(w.value)));
const full = [];
let j = 0;
for (let i = 0; i < sizes.length; i++) {
  if (sizes[i] > 1) { full.push(idx[j]); j++; } else { full.push('0'); }
}
const n = lookup[full.join(',')];
if (n === undefined) { return; }
const frame = frames[n];
for (let i = 0; i < sources.length; i++) { sources[i].data = frame.data[i]; }
for (let i = 0; i < titles.length; i++) { titles[i].text = frame.titles[i]; }
"""
            for dim, vals in zip(dims, values):
                if len(vals) < 2:
                    continue
                labels = [_fmt(v) for v in vals]
                name = f"{WIDGET_PREFIX}{dim}"
                if all(isinstance(v, (int, float, np.integer, np.floating)) for v in vals):
                    slider = Slider(start=0, end=len(vals) - 1, step=1, value=0, title=dim, name=name,
                                    show_value=False, width=420)
                    label = Div(text=f"{dim} = {labels[0]}", name=f"{name}-label")
                    show = "div.text = dim + ' = ' + labels[Math.round(cb_obj.value)];"
                    slider.js_on_change("value", CustomJS(args=dict(div=label, labels=labels, dim=dim), code=show))
                    widgets.append((slider, label))
                else:
                    widgets.append((Select(options=labels, value=labels[0], title=dim, name=name, width=420), None))
            callback = CustomJS(args=dict(widgets=[w for w, _ in widgets], sources=sources, titles=titles,
                                          frames=frames, lookup=lookup, sizes=[len(v) for v in values]),
                                code=code)
            for w, _ in widgets:
                w.js_on_change("value", callback)
        parts = [p for pair in widgets for p in pair if p is not None]
        root = column(*parts, model) if parts else model
        html = file_html(root, _inline_resources(), title=title)
    if meta:
        from html import escape

        tags = "".join(f'<meta name="{escape(k)}" content="{escape(v)}">\n' for k, v in meta.items())
        html = html.replace("<head>", "<head>\n" + tags, 1)
    return html


def _inline_resources():
    """Bokeh's inline resources without the external files other bokeh extensions (panel) declare:
    the page must load from ``file://`` with no network and no missing file."""
    from bokeh.resources import Resources

    class _Inline(Resources):
        @property
        def js_files(self):
            return []

        @property
        def css_files(self):
            return []

        def clone(self, *, components=None):
            return _Inline(mode="inline", components=components)

    return _Inline(mode="inline")


def _column(v):
    arr = np.asarray(v)
    return arr if arr.dtype.kind in "iufb" else list(v)


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.4g}"
    return str(v)


def _too_many(n: int, dims: list[tuple[str, int]], max_frames: int) -> str:
    shape = ", ".join(f"{d}={s}" for d, s in dims)
    return (f"{n} frames ({shape}) exceed max_frames={max_frames}; select fewer members first, "
            f"e.g. ds.isel({dims[-1][0] if dims else 'seed'}=slice(0, 10)), or raise max_frames")


# --------------------------------------------------------------------------- explorer
def _time_dim(da: xr.DataArray, *, min_size: int = 3) -> str | None:
    return next((d for d in _TIME_DIMS if d in da.dims and da.sizes[d] >= min_size), None)


def _default_var(ds: xr.Dataset) -> str:
    from ..conventions import ROLES, roles_of

    roles = roles_of(ds)
    order = [roles[r] for r in ("sharpness", "residual", "curvature", "loss") if r in roles]
    order += [r for r in (roles.get(k) for k in ROLES) if r]
    order += [v for v in ds.data_vars if v not in order]
    numeric = [v for v in dict.fromkeys(order) if v in ds.data_vars and ds[v].dtype.kind in "iuf"
               and ds[v].ndim > 0 and v not in _FATES]
    for v in numeric:
        if _time_dim(ds[v]) is not None:
            return v
    if "final_sharpness" in numeric:
        return "final_sharpness"
    if numeric:
        return numeric[0]
    raise ValueError("explorer: the dataset has no numeric variable with a dimension to draw")


def trajectory_variables(ds: xr.Dataset, *, most: int = 3) -> list[str]:
    """The dataset's main trajectories, for a multi-panel :func:`explorer`.

    The variables with roles sharpness, residual (or the network datasets' ``z1``), loss and
    curvature, in that order (without a role map: ``sharpness``, ``z1``, ``loss``), that have a
    ``step`` or ``time`` dim with at least 3 records;
    at most ``most`` of them.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from eosdyn.conventions import set_roles
    >>> ds = xr.Dataset({"s": ("step", np.ones(5)), "L": ("step", np.ones(5)), "c": ("step", np.ones(5))})
    >>> trajectory_variables(set_roles(ds, sharpness="s", loss="L"))
    ['s', 'L']
    """
    from ..conventions import roles_of

    roles = roles_of(ds)
    # datasets without a role map (older stored files): the conventional names
    names = [roles.get("sharpness", "sharpness"), roles.get("residual") or "z1", roles.get("loss", "loss"),
             roles.get("curvature")]
    out = []
    for n in names:
        if n and n in ds.data_vars and n not in out and ds[n].dtype.kind in "iuf" and _time_dim(ds[n]) is not None:
            out.append(n)
    return out[:most]


def _dim(hv, ds, name: str):
    """A HoloViews dimension labelled by the coordinate's long_name (maths notation) when it has one."""
    da = ds[name] if name in ds.variables else None
    label = da.attrs.get("long_name") if da is not None else None
    return hv.Dimension(name, label=label) if label else hv.Dimension(name)


def _is_sharpness(name: str) -> bool:
    return "sharpness" in name


def explorer(ds: xr.Dataset | xr.DataArray, var: str | list[str] | None = None, *, x: str | None = None,
             y: str | None = None, max_frames: int = MAX_FRAMES):
    """A trajectory explorer of any dataset: one frame per member, its extra dims as key dimensions.

    Parameters
    ----------
    ds : Dataset or DataArray
        Any eosdyn dataset (a model's trajectories, a sweep, a map of final values).
    var : str or list of str, optional
        The variable to draw. Default: the first of the roles sharpness, residual, curvature,
        loss (then the other numeric variables) that has a trajectory (a ``step`` or ``time`` dim
        with at least 3 records); else ``final_sharpness``; else the first numeric variable.
        A list draws one panel per variable, stacked, sharing the widgets of their common dims
        (:func:`trajectory_variables` lists a dataset's trajectories).
    x, y : str, optional
        The dims of a map (a variable without a trajectory). Default: the first two dims that
        are not member indices (``seed``, ``size``, ``init``, ...); a coordinate ``<dim>2`` on a
        dim (``sigma_J2`` on ``sigma_J``) is drawn instead of the dim itself.
    max_frames : int, default :data:`MAX_FRAMES`
        Most frames; more raise ``ValueError`` naming the dims and their sizes.

    Returns
    -------
    holoviews.HoloMap (a Layout of them for a list of variables)
        Key dimensions: the variable's dims other than the drawn ones (dims of size 1 dropped).
        With a trajectory, each frame is the curve against the step (missing values skipped; the
        edge of stability dashed for a sharpness, a log axis for a loss). Without, each frame is
        a map over ``(x, y)`` (log x axis when it spans a decade; a sharpness on a diverging
        colour scale centred at the edge, diverged members grey) or a curve over one dim; a
        ``seed`` key then offers ``"median"`` (over seeds, diverged members excluded) first.
        With the default ``var``, a curve over one dim overlays the variables of the same dims
        (e.g. Monte Carlo, theory, paper) with error bars of two ``<name>_stderr``. Members along
        one dim that carry two coordinates with many values (initial conditions ``z0``, ``T0``)
        are drawn as points on that plane, coloured by the variable, one frame per combination
        of the coordinates with few values (key dim ``group``, e.g. ``"E_tilde=0.5"``).
        Save it as an interactive page with ``save(explorer(ds), "x.html")``.

    Raises
    ------
    ValueError
        Unknown ``var``, ``x`` or ``y``, a variable with nothing to draw, or too many frames.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> fs = xr.DataArray(np.random.rand(3, 4, 2), dims=("sigma_z", "sigma_J", "seed"),
    ...                   coords={"sigma_z": [0.1, 0.3, 1.0], "sigma_J": [0.2, 0.4, 0.6, 0.8],
    ...                           "seed": [0, 1]}, name="final_sharpness")
    >>> hm = explorer(fs.to_dataset())
    >>> [d.name for d in hm.kdims], len(hm)
    (['seed'], 3)
    """
    from .._validate import check_int

    max_frames = check_int("max_frames", max_frames, 1)
    if isinstance(var, (list, tuple)):
        if not var:
            raise ValueError("var must be a variable name or a non-empty list of them; got []")
        hv = _hv()
        return hv.Layout([explorer(ds, v, x=x, y=y, max_frames=max_frames).relabel(str(v)) for v in var]).cols(1)
    if isinstance(ds, xr.DataArray):
        ds = ds.to_dataset(name=str(ds.name or var or "value"))
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"ds must be an xarray Dataset or DataArray; got {type(ds).__name__}")
    default_var = var is None
    if var is None:
        var = _default_var(ds)
    elif var not in ds.data_vars:
        raise ValueError(f"var must be one of the dataset's variables ({', '.join(map(str, ds.data_vars))}); "
                         f"got {var!r}")
    da = ds[var]
    if da.dtype.kind not in "iufb":
        raise ValueError(f"explorer: variable {var!r} is not numeric (dtype {da.dtype})")
    da = da.astype(float)
    for name, value in (("x", x), ("y", y)):
        if value is not None and value not in da.dims:
            raise ValueError(f"{name} must be one of the dims of {var!r} ({', '.join(map(str, da.dims))}); "
                             f"got {value!r}")
    tdim = _time_dim(da) if x is None and y is None else None
    if tdim is None:
        for d in _TIME_DIMS:  # a record of only the first and last steps: draw the last
            if d in da.dims:
                da = da.isel({d: -1}, drop=True)
    # drop size-1 dims (a sweep over one value is no choice)
    da = da.squeeze([d for d in da.dims if da.sizes[d] == 1 and d not in (tdim, x, y)], drop=False)
    if tdim is not None:
        axes = [tdim]
    else:
        free = [d for d in da.dims if d not in _CATEGORICAL and da.sizes[d] > 1]
        axes = [a for a in (x, y) if a is not None]
        axes += [d for d in free if d not in axes][: max(0, 2 - len(axes))]
        if not axes and x is None and y is None and da.ndim == 1:
            plane = _scatter_plane(ds, da.dims[0])
            if plane is not None:  # members with initial conditions as coordinates: a scatter plane
                return _points_explorer(ds, da, str(var), plane, max_frames)
        if not axes:
            axes = [d for d in da.dims if da.sizes[d] > 1][:1]
        if not axes:
            raise ValueError(f"explorer: variable {var!r} has no dimension of size > 1 to draw")
    keys = [d for d in da.dims if d not in axes]
    # a curve over a parameter (no trajectory): with the variables of the same dims (theory,
    # paper, ...) overlaid, and error bars from <name>_stderr
    together = None
    if tdim is None and len(axes) == 1 and default_var:
        same = [v for v in ds.data_vars if v != var and ds[v].dims == ds[var].dims and ds[v].dtype.kind in "iuf"
                and not str(v).endswith("_stderr") and v not in _FATES][:5]
        errs = [f"{v}_stderr" for v in [var, *same] if f"{v}_stderr" in ds.data_vars
                and ds[f"{v}_stderr"].dims == ds[var].dims]
        together = ds[[var, *same, *errs]].squeeze([d for d in ds[var].dims if d not in da.dims], drop=False)
    median = tdim is None and "seed" in keys and da.sizes["seed"] > 1
    sizes = [(d, da.sizes[d] + (1 if (median and d == "seed") else 0)) for d in keys]
    n = math.prod(s for _, s in sizes)
    if n > max_frames:
        raise ValueError("explorer: " + _too_many(n, sizes, max_frames))
    hv = _hv()
    edge = _edge(ds) if _is_sharpness(str(var)) else None
    vdim = _dim(hv, ds, str(var))
    coords = {d: _key_values(ds, da, d) for d in keys}
    frames = {}
    for idx in np.ndindex(*[s for _, s in sizes]):
        sel, key = {}, []
        sub = da
        for (d, _), i in zip(sizes, idx):
            if median and d == "seed":
                if i == 0:
                    key.append("median")
                    continue
                i -= 1
                key.append(_fmt(coords[d][i]))
            else:
                key.append(coords[d][i])
            sel[d] = i
        sub = sub.isel(sel)
        if median and "seed" in sub.dims:
            sub = sub.median("seed", skipna=True)
        if together is not None:
            frames[tuple(key)] = _overlay_frame(hv, ds, together.isel(sel), str(var), axes[0])
            continue
        frames[tuple(key)] = _frame(hv, ds, sub, axes, vdim, edge, var=str(var), logy="loss" in str(var))
    return hv.HoloMap(frames, kdims=keys, sort=False)


def _key_values(ds: xr.Dataset, da: xr.DataArray, d: str) -> list:
    """The values a key dim offers: its coordinate (numbers), or, for a member index that carries
    other coordinates (``size`` with ``D`` and ``P``), text naming them (``"D=20, P=40"``)."""
    aux = [c for c in ds.coords if c != d and ds[c].dims == (d,) and ds[c].dtype.kind in "iuf"]
    if d in _CATEGORICAL and aux and d in ds.dims and ds.sizes[d] == da.sizes[d]:
        return [", ".join(f"{c}={_fmt(ds[c].values[i].item())}" for c in aux) for i in range(da.sizes[d])]
    vals = da[d].values if d in da.coords else np.arange(da.sizes[d])
    return [v.item() if hasattr(v, "item") else v for v in vals]


def _overlay_frame(hv, ds, sub: xr.Dataset, var: str, axis: str):
    """Curves of the variables of ``sub`` over ``axis`` (markers for ``var``), with error bars
    of two standard errors from ``<name>_stderr``."""
    xs = np.asarray(sub[axis].values if axis in sub.coords else np.arange(sub.sizes[axis]), float)
    vdim = _dim(hv, ds, var)
    parts = []
    for v in sub.data_vars:
        if str(v).endswith("_stderr"):
            continue
        ys = np.asarray(sub[v].values, float)
        err = f"{v}_stderr"
        if err in sub.data_vars:
            parts.append(hv.ErrorBars((xs, ys, 2 * np.asarray(sub[err].values, float)), _dim(hv, ds, axis),
                                      [vdim, "err"]))
        curve = hv.Curve((xs, ys), _dim(hv, ds, axis), vdim, label=str(v)).opts(
            width=760, height=420, tools=["hover"], line_width=2, backend="bokeh")
        parts.append(curve)
        if v == var:
            parts.append(hv.Scatter((xs, ys), _dim(hv, ds, axis), vdim, label=str(v)).opts(size=8, backend="bokeh"))
    return hv.Overlay(parts).opts(legend_position="top_left", backend="bokeh")


def _scatter_plane(ds: xr.Dataset, dim: str):
    """For members along ``dim`` that carry numeric coordinates (initial conditions ``z0``, ``T0``,
    map parameters): the two with the most distinct values (the plane, > 12 each) and the others
    with 2 to 12 distinct values (the groups); None when there is no such plane."""
    coords = [c for c in ds.coords if c != dim and ds[c].dims == (dim,) and ds[c].dtype.kind in "iuf"]
    counts = {c: len(np.unique(ds[c].values)) for c in coords}
    plane = sorted((c for c in coords if counts[c] > 12), key=lambda c: -counts[c])[:2]
    if len(plane) < 2:
        return None
    plane = [c for c in coords if c in plane]  # dataset order: z0 before T0
    groups = [c for c in coords if c not in plane and 2 <= counts[c] <= 12]
    return plane, groups


def _points_explorer(ds: xr.Dataset, da: xr.DataArray, var: str, plane, max_frames: int):
    """Members as points on the plane of two coordinates, coloured by ``var``; one frame per
    combination of the group coordinates (key dim ``group``, text such as ``"E_tilde=0.5"``)."""
    hv = _hv()
    (cx, cy), groups = plane
    dim = da.dims[0]
    labels = [", ".join(f"{g}={_fmt(ds[g].values[i].item())}" for g in groups) for i in range(da.sizes[dim])]
    uniq = list(dict.fromkeys(labels))
    if len(uniq) > max_frames:
        raise ValueError("explorer: " + _too_many(len(uniq), [("group", len(uniq))], max_frames))
    edge = _edge(ds) if _is_sharpness(var) else None
    vals = np.asarray(da.values, float)
    fin = vals[np.isfinite(vals)]
    clim = (0.0, 2.0 * edge) if edge is not None else ((float(fin.min()), float(fin.max())) if fin.size else (0, 1))
    lab = np.array(labels)
    frames = {}
    for u in uniq:
        m = lab == u
        pts = hv.Points((ds[cx].values[m], ds[cy].values[m], vals[m]), [_dim(hv, ds, cx), _dim(hv, ds, cy)],
                        _dim(hv, ds, var)).opts(color=var, cmap="RdBu_r" if edge is not None else "viridis",
                                                clim=clim, colorbar=True, size=7, tools=["hover"], width=640,
                                                height=480, clipping_colors={"NaN": "lightgrey"}, backend="bokeh")
        frames[u] = pts
    if len(uniq) == 1:
        return hv.HoloMap({(): frames[uniq[0]]}, kdims=[])
    return hv.HoloMap(frames, kdims=["group"], sort=False)


def _edge(ds) -> float:
    from ..analysis._common import dataset_edge

    try:
        e = dataset_edge(ds)
    except Exception:  # a dataset without a step size: the sharpness is in units of 2/eta
        return 2.0
    return e if isinstance(e, float) else float(np.asarray(e).ravel()[0])


def _frame(hv, ds, sub: xr.DataArray, axes: list[str], vdim, edge, *, var: str, logy: bool):
    """One frame of :func:`explorer`: a curve (one axis) or a map (two axes) of ``sub``."""
    if len(axes) == 1:
        a = axes[0]
        xs = sub[a].values if a in sub.coords else np.arange(sub.sizes[a])
        ys = np.asarray(sub.transpose(a).values, float)
        keep = np.isfinite(ys) & ((ys > 0) if logy else True)
        el = hv.Curve((xs[keep], ys[keep]), _dim(hv, ds, a), vdim)
        opts = dict(width=760, height=420, tools=["hover"], line_width=1.5, backend="bokeh")
        if logy:
            opts["logy"] = True
        el = el.opts(**opts)
        if edge is not None:
            el = el * hv.HLine(edge).opts(color="black", line_dash="dashed", line_width=1, backend="bokeh")
            h = ds.get("hessian_sharpness")
            if h is not None and h.ndim == 1 and h.dims[0] in _TIME_DIMS and var == "sharpness":
                # the network datasets' Hessian estimate on its own steps, dashed (Figure 5)
                hx, hy = np.asarray(h[h.dims[0]].values), np.asarray(h.values, float)
                ok = np.isfinite(hy)
                el = el * hv.Curve((hx[ok], hy[ok]), _dim(hv, ds, a), vdim, label="Hessian").opts(
                    color="black", line_dash="dashed", line_width=1.5, backend="bokeh")
        return el
    ax, ay = axes
    sub = sub.transpose(ay, ax)
    xv = _axis_values(ds, sub, ax)
    yv = _axis_values(ds, sub, ay)
    xname = f"{ax}2" if f"{ax}2" in ds.coords and ds[f"{ax}2"].dims == (ax,) else ax
    yname = f"{ay}2" if f"{ay}2" in ds.coords and ds[f"{ay}2"].dims == (ay,) else ay
    vals = np.asarray(sub.values, float)
    opts = dict(width=640, height=480, tools=["hover"], colorbar=True, clipping_colors={"NaN": "lightgrey"},
                backend="bokeh")
    if np.all(xv > 0) and xv.max() / xv.min() >= 10:
        opts["logx"] = True
    if edge is not None:
        opts.update(cmap="RdBu_r", clim=(0.0, 2.0 * edge))
    else:
        fin = vals[np.isfinite(vals)]
        opts.update(cmap="viridis", clim=(float(fin.min()), float(fin.max())) if fin.size else (0.0, 1.0))
    return hv.QuadMesh((xv, yv, vals), [_dim(hv, ds, xname), _dim(hv, ds, yname)], vdim).opts(**opts)


def _axis_values(ds, sub, a) -> np.ndarray:
    if f"{a}2" in ds.coords and ds[f"{a}2"].dims == (a,):
        return np.asarray(ds[f"{a}2"].sel({a: sub[a].values}).values if a in ds.indexes else ds[f"{a}2"].values,
                          float)
    return np.asarray(sub[a].values if a in sub.coords else np.arange(sub.sizes[a]), float)
