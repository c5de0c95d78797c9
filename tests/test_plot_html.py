"""The interactive HTML pages in a real browser (headless Chromium through selenium).

The Figure 4 (``figure4_phase_diagrams``) and Figure 5 (``cifar_fcn_trajectory``) pages are written
by ``eosdyn plot NAME -o FILE.html`` and loaded from ``file://`` with the network unreachable: the
page must load with no JavaScript error or missing resource, every slider/selector must redraw
(the plot's data source and the pixels change), the data shown must be the dataset's own values
for the selected member, and the screenshot must not be blank.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and
``selenium`` (the ``test`` extra); skips, saying so, only where they are not installed.
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

pytest.importorskip("holoviews", reason="the plot extra (holoviews, bokeh) is not installed")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the test extra)")

from eosdyn import catalog  # noqa: E402
from eosdyn.cli import main  # noqa: E402

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]
BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser") if shutil.which(b)), None)
DRIVER = shutil.which("chromedriver")
if BROWSER is None or DRIVER is None:
    pytest.skip(f"headless browser test needs chromium and chromedriver (Debian: apt-get install chromium "
                f"chromium-driver); found chromium={BROWSER}, chromedriver={DRIVER}", allow_module_level=True)

# a small Figure 4 (the quick variant, fewer seeds and steps): seconds, still with diverged cells
FIG4_SETS = ["--set", "seeds=3", "--set", "steps=300", "--set", "sizes=[[10, 20], [20, 10]]"]


@pytest.fixture(scope="module")
def browser():
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
DATA = """const s = Bokeh.documents[0].get_model_by_name(arguments[0]);
const out = {};
for (const [k, v] of Object.entries(s.data)) { out[k] = Array.from(v, (x) => (typeof x === 'number' && !isFinite(x)) ? null : x); }
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


def _data(driver, name: str) -> dict:
    return json.loads(driver.execute_script(DATA, name))


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
    states = {"initial": _data(driver, "eosdyn-source-0")}
    for name in widgets:
        value = driver.execute_script(SET, f"eosdyn-widget-{name}", 1)
        time.sleep(0.3)
        after = _data(driver, "eosdyn-source-0")
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
    # the curves are the stored sharpness of the selected mode (missing probes skipped)
    for mode, key in ((0, "initial"), (1, "mode=1")):
        s = ds["sharpness"].isel(mode=mode)
        s = s[np.isfinite(s.values)]
        y = [v for k, v in states[key].items() if k not in ("step", "x")]
        assert any(len(col) == s.size and np.allclose(col, s.values) for col in y), (mode, list(states[key]))
        assert np.array_equal(states[key].get("step", states[key].get("x")), s["step"].values)


def test_figure4_page(browser, pages):
    path, ds = pages["figure4"]
    states = _check_page(browser, path, {"size": "Select", "seed": "Select"})
    fs = ds["final_sharpness"]

    def shown(state):
        col = state["final_sharpness"]
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

