"""``eosdyn reproduce`` on a tiny user catalog (fast); the full quick run is slow-marked."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import netCDF4
import pytest
import xarray as xr

import eosdyn
import test_catalog  # noqa: F401  (registers the test recipes the test catalogs name)
from eosdyn import catalog
from eosdyn.cli import main
from eosdyn.reproduce import reproduce

HERE = Path(__file__).resolve().parent

CATALOG = """\
entries:
  - name: lin_a
    description: Linear map, for the reproduce test.
    paper: Eq. 16
    recipe:
      function: test_catalog.linear_recipe
      parameters: {lam: [0.5, 1.5], theta0: 1.0, steps: 8, counter: COUNTER}
    variants:
      quick: {steps: 4}
    claims: [test_catalog.claim_linear]
  - name: lin_broken
    description: A recipe that fails (bad parameter), reported but not fatal.
    paper: none
    recipe:
      function: test_catalog.linear_recipe
      parameters: {lam: 9.0, theta0: 1.0, steps: 3}
"""


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("EOSDYN_CACHE", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(HERE))
    counter = tmp_path / "calls.txt"
    p = tmp_path / "tiny.yaml"
    p.write_text(CATALOG.replace("COUNTER", str(counter)))
    catalog.add(p)
    yield counter
    catalog.remove(p)


def test_reproduce_tiny_catalog(tiny, tmp_path):
    out = tmp_path / "out"
    res = reproduce(out, quick=True, names=["lin_a", "lin_broken"])
    assert res["failures"] == ["lin_broken"]
    nc = out / "lin_a.nc"
    ds = eosdyn.open_dataset(nc)
    eosdyn.check_dataset(ds)
    assert ds.sizes["step"] == 5  # the quick variant
    with netCDF4.Dataset(nc) as f:
        assert f.Conventions == "CF-1.10"
    xr.open_dataset(nc).close()
    png = out / "lin_a.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert not (out / "lin_broken.nc").exists()
    text = (out / "summary.md").read_text()
    assert ("| lin_a | theta_t, lam=0.5 | (1 - lam)^t theta_0 | 0.0625 | 0.0625 | agrees "
            "| [PNG](lin_a.png) · [HTML](lin_a.html) |") in text
    assert "lin_broken" in text and "FAILED" in text and "lam must be in" in text
    assert "1 of 2 entries reproduced" in text
    import yaml

    intake = yaml.safe_load((out / "intake.yaml").read_text())
    assert list(intake["sources"]) == ["lin_a"]
    src = intake["sources"]["lin_a"]
    assert src["driver"] == "netcdf" and src["args"]["urlpath"] == "{{ CATALOG_DIR }}/lin_a.nc"
    assert len(tiny.read_text().split()) == 1
    # second run: cache reused, PNG not re-rendered (same dataset), much faster
    mtime = png.stat().st_mtime_ns
    res2 = reproduce(out, quick=True, names=["lin_a"])
    assert res2["failures"] == [] and res2["entries"][0]["cached"] is True
    assert len(tiny.read_text().split()) == 1
    assert png.stat().st_mtime_ns == mtime
    # a full (non-quick) run uses the base recipe: another dataset
    res3 = reproduce(out, quick=False, names=["lin_a"], plots=False)
    assert eosdyn.open_dataset(nc).sizes["step"] == 9 and res3["entries"][0]["variant"] == "default"


def test_reproduce_captions_and_links(tiny, tmp_path):
    """Item 5 of issue 13: each claim links its figure (PNG and HTML); each figure carries its caption
    (entry, variant, parameters) in the PNG text chunks, the HTML page and summary.md."""
    import re
    from html.parser import HTMLParser

    from PIL import Image

    out = tmp_path / "out"
    res = reproduce(out, quick=True, names=["lin_a"])
    assert res["failures"] == []
    want = ("Eq. 16: catalog entry lin_a, variant quick; parameters: lam=[0.5, 1.5], theta0=1, steps=4, "
            "counter=")
    text = (out / "summary.md").read_text()
    # every claim row of lin_a ends with links to both figure files, and they exist
    rows = [line for line in text.splitlines() if line.startswith("| lin_a | theta_t")]
    assert len(rows) == 2
    for row in rows:
        links = re.findall(r"\[(PNG|HTML)\]\(([^)]+)\)", row)
        assert links == [("PNG", "lin_a.png"), ("HTML", "lin_a.html")]
        for _, target in links:
            assert (out / target).is_file()
    # the figures section: the caption next to the links
    fig = [line for line in text.splitlines() if line.startswith("- **Eq. 16** (lin_a)")]
    assert len(fig) == 1 and want in fig[0] and "[HTML](lin_a.html)" in fig[0]
    # the PNG's text chunks (read by PIL, an independent PNG reader)
    meta = Image.open(out / "lin_a.png").text
    assert meta["Title"] == "Eq. 16 (lin_a)" and meta["Description"].startswith(want)
    assert "steps=4" in meta["Description"] and "steps=8" not in meta["Description"]

    class Meta(HTMLParser):
        found: dict = {}

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "meta" and "name" in a:
                self.found[a["name"]] = a.get("content")

    parser = Meta()
    parser.feed((out / "lin_a.html").read_text())
    assert parser.found["description"].startswith(want)
    # the full (non-quick) run says so in its caption
    reproduce(out, quick=False, names=["lin_a"])
    full = Image.open(out / "lin_a.png").text["Description"]
    assert "variant default; parameters: lam=[0.5, 1.5], theta0=1, steps=8" in full


def test_reproduce_cli_exit_codes(tiny, tmp_path):
    assert main(["--quiet", "reproduce", "--quick", "-o", str(tmp_path / "o"), "--only", "lin_a"]) == 0
    assert (tmp_path / "o" / "summary.md").exists()
    assert main(["--quiet", "reproduce", "--quick", "-o", str(tmp_path / "o"), "--only", "lin_broken",
                 "--no-plots"]) == 1


@pytest.mark.slow
def test_reproduce_quick_builtin_end_to_end(tmp_path):
    """The main job on the built-in catalog: every entry, within budget, second run from the cache."""
    env = dict(os.environ, EOSDYN_CACHE=str(tmp_path / "cache"))
    env.pop("EOSDYN_CATALOG_PATH", None)
    out = tmp_path / "reproduce"
    cmd = [sys.executable, "-m", "eosdyn.cli", "--quiet", "reproduce", "--quick", "-o", str(out)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    first = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr[-3000:]
    names = catalog.list()
    for name in names:
        ds = eosdyn.open_dataset(out / f"{name}.nc")
        eosdyn.check_dataset(ds)
        xr.open_dataset(out / f"{name}.nc").close()
        with netCDF4.Dataset(out / f"{name}.nc") as f:
            assert f.Conventions == "CF-1.10"
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        page = (out / f"{name}.html").read_text()
        assert page.startswith("<!DOCTYPE html>") and "<script src=" not in page  # self-contained
        assert f"[HTML]({name}.html)" in (out / "summary.md").read_text()
    text = (out / "summary.md").read_text()
    assert f"{len(names)} of {len(names)} entries reproduced." in text
    assert first < 600, first
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    second = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr[-3000:]
    assert second < max(0.1 * first, 20.0), (first, second)


def test_reproduce_without_plot_extra(tiny, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.split(".")[0] == "holoviews":
            raise ImportError("no holoviews")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.warns(RuntimeWarning, match="plot extra"):
        res = reproduce(tmp_path / "np", quick=True, names=["lin_a"])
    assert res["failures"] == []
    assert (tmp_path / "np" / "lin_a.nc").exists() and not (tmp_path / "np" / "lin_a.png").exists()
    assert "Figures skipped" in (tmp_path / "np" / "summary.md").read_text()
