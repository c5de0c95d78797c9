"""HoloViews views of eosdyn datasets (optional ``plot`` extra: holoviews + matplotlib).

Every view takes a dataset (and keyword options) and returns a HoloViews object;
:func:`save_png` renders it with the matplotlib backend. The catalog names a
view per entry (``plot: eosdyn.plot.phase_plane``), one per paper figure, panel for
panel; :func:`auto` draws any dataset. Theory overlays come from :mod:`eosdyn.theory`,
never re-derived here. All views share one house style (``eosdyn.plot._style``): one
figure width, equal panel sizes, panel letters, axis labels in mathematical notation,
colour-blind-safe colours and the edge of stability on every sharpness axis.
:func:`render` gives the matplotlib figure and :func:`layout_problems` checks it.

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

from .. import _files
from ._style import DPI, WIDTH, fit_to_width, layout_problems
from .views import (FATES, MAX_CURVES, _hv, auto, eos_trajectories, final_sharpness_vs_eps,  # noqa: F401
                    final_T_distribution, heatmap, histogram, loss_landscape, network_projections,
                    network_trajectory, phase_diagrams, phase_portraits, qrm_trajectories, rnl, theorem41,
                    trajectories)

__all__ = [
    "save_png",
    "render",
    "layout_problems",
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
    "network_projections",
    "rnl",
    "theorem41",
    "save",
    "explorer",
]


def render(obj, *, width: float = WIDTH):
    """Render a HoloViews object to a matplotlib Figure in the house layout: ``width`` inches
    wide, every label inside the figure (the height follows from the panels).

    Parameters
    ----------
    obj : holoviews object
    width : float, default :data:`eosdyn.plot._style.WIDTH`
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> fig = render(trajectories(xr.DataArray(np.arange(4.0), dims="step", name="x")))
    >>> float(fig.get_size_inches()[0])
    10.0
    >>> layout_problems(fig)
    []
    """
    hv = _hv()
    fig = hv.render(obj, backend="matplotlib")
    fit_to_width(fig, width)
    return fig


def save_png(obj, path: str | os.PathLike, *, dpi: int = DPI) -> Path:
    """Render a HoloViews object to a PNG file (matplotlib backend, :func:`render`), atomically.

    The image is :data:`eosdyn.plot._style.WIDTH` × ``dpi`` pixels wide.

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
    b'\\x89PNG'
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        fig = render(obj)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        plt.close("all")
    data = buf.getvalue()
    if not data.startswith(b"\x89PNG"):
        raise RuntimeError(f"rendering {type(obj).__name__} produced no PNG image")
    path.parent.mkdir(parents=True, exist_ok=True)
    _files.atomic_write_bytes(path, data)  # umask permissions, never a partial file
    return path


from .interactive import save, explorer  # noqa: E402
from . import optim as _optim  # noqa: E402
from .optim import *  # noqa: E402,F401,F403

__all__ += _optim.__all__
from . import flows as _flows  # noqa: E402
from .flows import *  # noqa: E402,F401,F403

__all__ += _flows.__all__

from .uv import uv_phases  # noqa: E402

__all__ += ["uv_phases"]
