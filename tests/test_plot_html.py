"""The interactive HTML pages in a real browser (headless Chromium through selenium).

The Figure 4 (``figure4_phase_diagrams``) and Figure 5 (``cifar_fcn_trajectory``) pages are written
by ``eosdyn plot NAME -o FILE.html`` and loaded from ``file://`` with the network unreachable: the
page must load with no JavaScript error or missing resource, every slider/selector must redraw
(the plot's data source and the pixels change), the data shown must be the dataset's own values
for the selected member, and the screenshot must not be blank.

The browser tests need the Debian packages ``chromium`` and ``chromium-driver`` (``.ci/run``
installs them) and ``selenium`` (the ``test`` extra); they skip, saying so, only where these are
not installed. The tests of :func:`eosdyn.plot.explorer` and :func:`eosdyn.plot.save` without a
browser come first.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import xarray as xr

pytest.importorskip("holoviews", reason="the plot extra (holoviews, bokeh) is not installed")

from eosdyn import catalog  # noqa: E402
from eosdyn.cli import main  # noqa: E402
from eosdyn.plot import interactive  # noqa: E402

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]
BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser") if shutil.which(b)), None)
DRIVER = shutil.which("chromedriver")
MISSING = (f"headless browser test needs chromium and chromedriver (Debian: apt-get install chromium "
           f"chromium-driver); found chromium={BROWSER}, chromedriver={DRIVER}")

# a small Figure 4 (the quick variant, fewer seeds and steps): seconds, still with diverged cells
FIG4_SETS = ["--set", "seeds=3", "--set", "steps=300", "--set", "sizes=[[10, 20], [20, 10]]"]


# --------------------------------------------------------------------------- without a browser
def _trajectories():
    rng = np.random.default_rng(0)
    s = rng.random((3, 2, 20)) + 1.0
    s[1, 0, 5:9] = np.nan  # missing records are skipped, not drawn as zero
    ds = xr.Dataset({"sharpness": (("sigma_z", "seed", "step"), s),
                     "loss": (("sigma_z", "seed", "step"), rng.random((3, 2, 20)))},
                    coords={"sigma_z": [0.1, 0.3, 1.0], "seed": [4, 7], "step": np.arange(20), "eta": 1.0})
    ds["sigma_z"].attrs["long_name"] = "σ̃_z"
    return ds


def test_explorer_trajectories_frames_are_the_members():
    ds = _trajectories()
    hm = interactive.explorer(ds)
    assert [d.name for d in hm.kdims] == ["sigma_z", "seed"] and len(hm) == 6
    for (sz, seed), frame in hm.items():
        curve = frame.Curve.I if hasattr(frame, "Curve") else frame
        want = ds["sharpness"].sel(sigma_z=sz, seed=seed)
        want = want[np.isfinite(want.values)]
        np.testing.assert_array_equal(curve.dimension_values(0), want["step"].values)
        np.testing.assert_array_equal(curve.dimension_values(1), want.values)
        assert frame.HLine.I.data == 2.0  # the edge of stability (eta = 1)
    both = interactive.explorer(ds, ["sharpness", "loss"])  # one panel per variable, shared widgets
    assert [type(p).__name__ for p in both] == ["HoloMap", "HoloMap"] and both[1].label == "loss"
    np.testing.assert_array_equal(both[1][(0.3, 7)].dimension_values(1), ds["loss"].sel(sigma_z=0.3, seed=7).values)
    with pytest.raises(ValueError, match="non-empty list"):
        interactive.explorer(ds, [])
    loss = interactive.explorer(ds, "loss")
    assert "HLine" not in str(loss.last) and loss.last.opts.get(backend="bokeh").kwargs.get("logy") is True


def test_explorer_map_median_and_members():
    rng = np.random.default_rng(1)
    fs = rng.random((4, 3, 5)) * 4
    fs[3, :, :3] = np.nan  # most seeds diverged at the largest sigma_z
    fs[3, 0, :] = np.nan  # all diverged
    ds = xr.Dataset({"final_sharpness": (("sigma_z", "sigma_J", "seed"), fs)},
                    coords={"sigma_z": [0.05, 0.2, 0.6, 2.0], "sigma_J": [0.3, 0.5, 0.7], "seed": np.arange(5),
                            "sigma_J2": ("sigma_J", [0.09, 0.25, 0.49]), "eta": 1.0})
    hm = interactive.explorer(ds)
    assert [d.name for d in hm.kdims] == ["seed"]
    assert list(hm.keys()) == ["median", "0", "1", "2", "3", "4"]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(fs, axis=-1)  # independent: numpy over the raw array
    mesh = hm["median"]
    assert [d.name for d in mesh.kdims] == ["sigma_z", "sigma_J2"]  # sigma_J2 drawn instead of sigma_J
    np.testing.assert_allclose(mesh.dimension_values(1, flat=False)[:, 0], [0.09, 0.25, 0.49])
    np.testing.assert_allclose(mesh.dimension_values(2, flat=False), med.T, equal_nan=True)
    np.testing.assert_allclose(hm["3"].dimension_values(2, flat=False), fs[:, :, 3].T, equal_nan=True)
    opts = mesh.opts.get(backend="bokeh").kwargs
    assert opts["clim"] == (0.0, 4.0) and opts["logx"] is True  # diverging scale centred at the edge 2


def test_explorer_scatter_plane_and_overlay():
    # members with initial conditions as coordinates: points on (z0, T0), one frame per E_tilde
    rng = np.random.default_rng(2)
    n = 40
    ds = xr.Dataset({"final_sharpness": ("init", rng.random(n) * 4)},
                    coords={"z0": ("init", np.tile(np.linspace(-1, 1, 20), 2)),
                            "T0": ("init", np.linspace(0.5, 3.5, n)),
                            "E_tilde": ("init", np.repeat([0.0, 0.5], 20)), "eta": 1.0})
    hm = interactive.explorer(ds)
    assert [d.name for d in hm.kdims] == ["group"] and list(hm.keys()) == ["E_tilde=0", "E_tilde=0.5"]
    pts = hm["E_tilde=0.5"]
    np.testing.assert_array_equal(pts.dimension_values("z0"), ds["z0"].values[20:])
    np.testing.assert_array_equal(pts.dimension_values("T0"), ds["T0"].values[20:])
    np.testing.assert_array_equal(pts.dimension_values("final_sharpness"), ds["final_sharpness"].values[20:])
    # a Monte Carlo estimate over a parameter: theory overlaid, error bars of two standard errors
    mc = xr.Dataset({"r_mc": (("size", "sigma_z"), [[1.0, 2.0], [3.0, 4.0]]),
                     "r_mc_stderr": (("size", "sigma_z"), [[0.1, 0.2], [0.3, 0.4]]),
                     "r_theory": (("size", "sigma_z"), [[1.1, 2.1], [3.1, 4.1]])},
                    coords={"sigma_z": [0.5, 1.0], "D": ("size", [20, 60]), "P": ("size", [40, 120])})
    hm = interactive.explorer(mc)
    assert list(hm.keys()) == ["D=20, P=40", "D=60, P=120"]
    over = hm["D=60, P=120"]
    np.testing.assert_array_equal(over.ErrorBars.I.dimension_values(2), [0.6, 0.8])
    assert {c.label: list(c.dimension_values(1)) for c in over.Curve} == {"r_mc": [3.0, 4.0], "r_theory": [3.1, 4.1]}


def test_explorer_bad_input():
    ds = _trajectories()
    with pytest.raises(ValueError, match="var must be one of .*sharpness.*got 'nope'"):
        interactive.explorer(ds, "nope")
    with pytest.raises(ValueError, match="x must be one of the dims"):
        interactive.explorer(ds, x="eps")
    with pytest.raises(ValueError, match="max_frames"):
        interactive.explorer(ds, max_frames=0)
    with pytest.raises(TypeError, match="ds must be an xarray Dataset"):
        interactive.explorer({"a": 1})
    # too many frames: the message names each dim and its size, before any element is built
    big = xr.Dataset({"sharpness": (("sigma_z", "seed", "step"), np.zeros((30, 50, 3)))},
                     coords={"sigma_z": np.linspace(0.1, 1, 30), "seed": np.arange(50), "step": [0, 1, 2]})
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"1500 frames \(sigma_z=30, seed=50\) exceed max_frames=400"):
        interactive.explorer(big)
    assert time.perf_counter() - t0 < 1.0


def test_save_formats_and_errors(tmp_path):
    from PIL import Image

    hm = interactive.explorer(_trajectories())
    page = interactive.save(hm, tmp_path / "t.html", metadata={"description": "a <caption> & more"})
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert '<meta name="description" content="a &lt;caption&gt; &amp; more">' in text
    for needle in ("eosdyn-widget-sigma_z", "eosdyn-widget-seed", "eosdyn-source-0"):
        assert needle in text
    # self-contained: no script or stylesheet loaded from elsewhere
    import re

    assert re.findall(r"<script[^>]*\ssrc=", text) == [] and re.findall(r"<link[^>]*stylesheet", text) == []
    png = interactive.save(hm.last, tmp_path / "t.png", metadata={"Title": "t", "Description": "σ̃_z sweep"})
    assert Image.open(png).text["Description"] == "σ̃_z sweep"
    with pytest.raises(ValueError, match="must end in .png or .html; got"):
        interactive.save(hm, tmp_path / "t.svg")
    with pytest.raises(TypeError, match="metadata must be a dict"):
        interactive.save(hm, tmp_path / "u.html", metadata={"a": 1})
    with pytest.raises(ValueError, match=r"6 frames \(sigma_z=3, seed=2\) exceed max_frames=5"):
        interactive.save(hm, tmp_path / "v.html", max_frames=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.html", "t.png"]  # nothing partial


# --------------------------------------------------------------------------- in the browser
@pytest.fixture(scope="module")
def browser():
    if BROWSER is None or DRIVER is None:
        pytest.skip(MISSING)
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the test extra)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument("--window-size=1000,900")
    opts.binary_location = BROWSER
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The two pages as `eosdyn plot` writes them (own cache folder), and the datasets they show."""
    tmp = tmp_path_factory.mktemp("html")
    old = os.environ.get("EOSDYN_CACHE")
    os.environ["EOSDYN_CACHE"] = str(tmp / "cache")
    try:
        fig4 = tmp / "figure4.html"
        assert main(["--quiet", "plot", "figure4_phase_diagrams", "--variant", "quick", *FIG4_SETS,
                     "-o", str(fig4)]) == 0
        ds4 = catalog.open("figure4_phase_diagrams", variant="quick",
                           **{k: catalog.parse_value(v) for k, v in (s.split("=", 1) for s in FIG4_SETS[1::2])})
        fig5 = tmp / "figure5.html"
        assert main(["--quiet", "plot", "cifar_fcn_trajectory", "-o", str(fig5)]) == 0
        ds5 = catalog.open("cifar_fcn_trajectory")
    finally:
        if old is None:
            os.environ.pop("EOSDYN_CACHE", None)
        else:
            os.environ["EOSDYN_CACHE"] = old
    return {"figure4": (fig4, ds4), "figure5": (fig5, ds5)}


READY = ("return typeof Bokeh !== 'undefined' && Bokeh.documents.length > 0 && "
         "Bokeh.index !== undefined && Object.keys(Bokeh.index).length > 0")
MODELS = """const out = {};
for (const m of Bokeh.documents[0].all_models) {
  if (m.name && m.name.startsWith('eosdyn-')) { out[m.name] = m.type; }
}
return out;"""
DATA = """const out = {};
for (const s of Bokeh.documents[0].all_models) {
  if (!(s.name && s.name.startsWith('eosdyn-source-'))) { continue; }
  const d = {};
  for (const [k, v] of Object.entries(s.data)) {
    d[k] = Array.from(v, (x) => (typeof x === 'number' && !isFinite(x)) ? null : x);
  }
  out[s.name] = d;
}
return JSON.stringify(out);"""
SET = """const w = Bokeh.documents[0].get_model_by_name(arguments[0]);
if (w.options !== undefined) { w.value = w.options[arguments[1]]; } else { w.value = arguments[1]; }
return String(w.value);"""


def _load(driver, path: Path):
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(path.as_uri())
    deadline = time.monotonic() + 20
    while not driver.execute_script(READY):
        assert time.monotonic() < deadline, f"{path.name}: Bokeh did not render within 20 s"
        time.sleep(0.05)
    time.sleep(0.3)  # the first paint


def _errors(driver) -> list[str]:
    """Console errors: JavaScript exceptions, failed resource loads (level SEVERE)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _screenshot(driver) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB"), float)


def _data(driver) -> dict:
    """Every embedded data source's columns: {source name: {column: values}}."""
    return json.loads(driver.execute_script(DATA))


def _check_page(driver, path: Path, widgets: dict) -> dict:
    """Load, check no error and a non-blank picture, move every widget; return the data per state."""
    _load(driver, path)
    models = driver.execute_script(MODELS)
    assert _errors(driver) == [], f"{path.name}: errors in the browser console"
    for name, kind in widgets.items():
        assert models.get(f"eosdyn-widget-{name}") == kind, (name, models)
    assert "eosdyn-source-0" in models
    shot = _screenshot(driver)
    assert shot.std() > 10 and len(np.unique(shot.reshape(-1, 3), axis=0)) > 20, "blank screenshot"
    states = {"initial": _data(driver)}
    for name in widgets:
        value = driver.execute_script(SET, f"eosdyn-widget-{name}", 1)
        time.sleep(0.3)
        after = _data(driver)
        assert after != states["initial"], f"{path.name}: moving {name} did not change the plotted data"
        new = _screenshot(driver)
        assert np.abs(new - shot).mean() > 0.05, f"{path.name}: moving {name} did not redraw the canvas"
        states[f"{name}={value}"] = after
        shot = new
    assert _errors(driver) == [], f"{path.name}: errors after moving the widgets"
    return states


def test_figure5_page(browser, pages):
    path, ds = pages["figure5"]
    assert "cdn.bokeh.org" not in path.read_text()
    states = _check_page(browser, path, {"mode": "Slider"})
    # panels: the sharpness of the selected mode (missing probes skipped), z1 and the loss (all steps)
    for mode, key in ((0, "initial"), (1, "mode=1")):
        s = ds["sharpness"].isel(mode=mode)
        s = s[np.isfinite(s.values)]
        assert _shows(states[key], s), (mode, key)
        assert _shows(states[key], ds["z1"][np.isfinite(ds["z1"].values)])
        assert _shows(states[key], ds["loss"])
        assert _shows(states[key], ds["hessian_sharpness"].rename(step_h="step"))  # dashed, as in the paper
    # the other mode is not shown at the same time (the slider swaps it)
    s0 = ds["sharpness"].isel(mode=0)
    assert not _shows(states["mode=1"], s0[np.isfinite(s0.values)])


def _shows(state: dict, da) -> bool:
    """Whether some embedded source holds the curve ``da`` (against its step)."""
    for cols in state.values():
        xs = cols.get("step", cols.get("x"))
        for name, col in cols.items():
            if name in ("step", "x") or xs is None or len(col) != da.size or len(xs) != da.size:
                continue
            if np.array_equal(xs, da["step"].values) and np.allclose(np.array(col, float), da.values):
                return True
    return False


def test_figure4_page(browser, pages):
    path, ds = pages["figure4"]
    states = _check_page(browser, path, {"size": "Select", "seed": "Select"})
    fs = ds["final_sharpness"]

    def shown(state):
        col = state["eosdyn-source-0"]["final_sharpness"]
        return np.sort(np.array([np.nan if v is None else v for v in col], float))

    # initial: size (D, P) = first, seed = median over seeds (diverged members excluded)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all seeds diverged: NaN, as drawn
        med0 = np.nanmedian(fs.isel(size=0).transpose(..., "seed").values, axis=-1).ravel()
        med1 = np.nanmedian(fs.isel(size=1).transpose(..., "seed").values, axis=-1).ravel()
    np.testing.assert_allclose(shown(states["initial"]), np.sort(med0), equal_nan=True)
    # after the size selector: the second (D, P) (still the median)
    size_key = next(k for k in states if k.startswith("size="))
    assert size_key == f"size=D={int(ds['D'][1])}, P={int(ds['P'][1])}"
    np.testing.assert_allclose(shown(states[size_key]), np.sort(med1), equal_nan=True)
    # after the seed selector: seed 0 of that size, diverged cells NaN (drawn grey)
    seed_key = next(k for k in states if k.startswith("seed="))
    assert seed_key == "seed=0"
    one = fs.isel(size=1, seed=0).values.ravel()
    np.testing.assert_allclose(shown(states[seed_key]), np.sort(one), equal_nan=True)
    assert np.isnan(one).any() and np.isfinite(one).any()  # the test covers diverged and converged cells

