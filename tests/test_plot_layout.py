"""Layout of every catalog entry's figure: rendered with matplotlib (through HoloViews), no two
text artists overlap, every one lies inside the figure, the PNG is not blank and has the house size.

Truth: matplotlib's own window extents of the drawn artists; the negative tests check that the
checks catch a deliberately overlapping, a cut-off and a blank figure.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

pytest.importorskip("holoviews")
pytest.importorskip("matplotlib")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from eosdyn import catalog, plot  # noqa: E402
from eosdyn.plot import _style  # noqa: E402

ENTRIES = sorted(catalog.entries())


def _variant(name: str, variant: str | None):
    e = catalog.get(name)
    return variant if variant in e.variants else None


@pytest.fixture(scope="module")
def datasets():
    """Loaded datasets, cached across the tests of this module (the catalog caches recipe output)."""
    cache = {}

    def get(name, variant):
        key = (name, _variant(name, variant))
        if key not in cache:
            cache[key] = catalog.open(name, variant=key[1])
        return cache[key]

    return get


def _png(fig, dpi=_style.DPI):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _pixels(data: bytes) -> np.ndarray:
    return plt.imread(io.BytesIO(data), format="png")


def check_figure(view, name: str):
    """Render ``view`` as eosdyn.plot does and assert the layout rules; returns the figure size."""
    fig = plot.render(view)
    try:
        problems = plot.layout_problems(fig)
        assert not problems, f"{name}: " + "; ".join(problems[:10])
        w, h = fig.get_size_inches()
        assert w == pytest.approx(_style.WIDTH), name
        assert 1.0 < h < 3 * _style.WIDTH, (name, h)
        img = _pixels(_png(fig))
        assert img.shape[1] == round(_style.WIDTH * _style.DPI), (name, img.shape)
        assert abs(img.shape[0] - h * _style.DPI) <= 1, (name, img.shape)
        assert float(img[..., :3].std()) > 0.05, f"{name}: the PNG is blank"
        return w, h
    finally:
        plt.close("all")


def _view(name, ds):
    e = catalog.get(name)
    assert e.plot and e.plot != "eosdyn.plot.auto", f"{name} has no dedicated view"
    return catalog.resolve_function(e.plot, "view", entry=e)(ds)


@pytest.mark.parametrize("name", ENTRIES)
def test_layout_quick(name, datasets):
    check_figure(_view(name, datasets(name, "quick")), name)


#: default variants whose full run takes hours: the layout depends on the grid and the panels
#: (sizes, sigma_z, sigma_J2 as in the default), not on the number of seeds or steps, so the
#: layout test draws the default grid with fewer seeds and steps
DEFAULT_OVERRIDES = {"figure4_phase_diagrams": {"seeds": 2, "steps": 300}}


@pytest.mark.slow
@pytest.mark.parametrize("name", ENTRIES)
def test_layout_default(name, datasets):
    if name in DEFAULT_OVERRIDES:
        ds = catalog.open(name, **DEFAULT_OVERRIDES[name])
        base = catalog.get(name).parameters
        for k in ("sigma_z", "sigma_J2"):          # the default's grid, as the paper-sized run has it
            if k in base and k in ds.coords:
                np.testing.assert_allclose(np.sort(ds[k].values), np.sort(base[k]), rtol=1e-12)
    else:
        ds = datasets(name, None)
    check_figure(_view(name, ds), name)


# --------------------------------------------------------------------------- the checks can fail
def test_overlapping_texts_are_caught():
    import holoviews as hv

    plot._hv()
    # a y label far too long for its panel runs into the title and the neighbour's ticks
    x = np.linspace(0, 1, 20)
    bad = hv.Curve((x, x), "x", hv.Dimension("y", label="a very long axis label " * 6)).opts(title="T" * 80)
    fig = plot.render(hv.Layout([bad, bad]).cols(2))
    try:
        problems = plot.layout_problems(fig)
    finally:
        plt.close("all")
    assert any(p.startswith("overlap") for p in problems), problems


def test_text_outside_the_figure_is_caught():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.text(1.5, 0.5, "beyond the right edge", transform=ax.transAxes)
    try:
        problems = plot.layout_problems(fig)
    finally:
        plt.close(fig)
    assert any(p.startswith("outside") and "beyond" in p for p in problems), problems


def test_direct_overlap_and_clean_figure():
    fig, ax = plt.subplots(figsize=(4, 3))
    try:
        assert plot.layout_problems(fig) == []
        ax.set_title("title")
        ax.text(0.5, 1.02, "collides with the title", transform=ax.transAxes, ha="center")
        assert any(p.startswith("overlap") for p in plot.layout_problems(fig))
    finally:
        plt.close(fig)


def test_blank_png_is_caught():
    fig = plt.figure(figsize=(_style.WIDTH, 3))
    try:
        img = _pixels(_png(fig))
    finally:
        plt.close(fig)
    assert float(img[..., :3].std()) < 0.05          # what check_figure rejects


def test_hidden_ticks_do_not_count():
    # tick labels matplotlib does not draw (outside the view limits) are not text artists
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.set_xlim(0.05, 0.95)
    ax.set_ylim(0.05, 0.95)
    try:
        texts = {t.get_text() for t in _style.text_artists(fig)}
        assert plot.layout_problems(fig) == []
    finally:
        plt.close(fig)
    assert "0.0" not in texts and "1.0" not in texts
