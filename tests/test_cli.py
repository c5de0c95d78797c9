"""The ``eosdyn`` command line: commands, exit codes, messages, nothing partially written."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr
import yaml

import eosdyn
import test_catalog  # noqa: F401  (registers the test recipes the test catalogs name)
from eosdyn import catalog
from eosdyn.cli import main

HERE = Path(__file__).resolve().parent
MOD = "test_catalog"  # recipes live in tests/test_catalog.py

CATALOG = f"""\
entries:
  - name: lin
    description: Linear map (Eq. 16) for CLI tests.
    paper: Eq. 16
    recipe:
      function: {MOD}.linear_recipe
      parameters: {{lam: [0.5, 1.5], theta0: 1.0, steps: 8}}
    variants:
      quick: {{steps: 3}}
"""


@pytest.fixture
def cat(tmp_path, monkeypatch):
    monkeypatch.setenv("EOSDYN_CACHE", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(HERE))
    p = tmp_path / "cli.yaml"
    p.write_text(CATALOG)
    monkeypatch.setenv("EOSDYN_CATALOG_PATH", str(p))
    return p


def test_version(capsys):
    assert main(["--version"]) == 0
    assert eosdyn.__version__ in capsys.readouterr().out


def test_no_command_is_usage_error(capsys):
    assert main([]) == 2


def test_list_and_show(cat, capsys):
    assert main(["list"]) == 0
    assert "lin" in capsys.readouterr().out.split()
    assert main(["list", "--long"]) == 0
    assert "Eq. 16" in capsys.readouterr().out
    assert main(["show", "lin"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["name"] == "lin" and shown["parameters"]["steps"] == 8
    assert "steps" in shown["valid_overrides"]


def test_unknown_entry_exit2(cat, capsys, tmp_path):
    for cmd in (["show", "nope"], ["run", "nope"], ["export", "nope", str(tmp_path / "x.nc")],
                ["reproduce", "-o", str(tmp_path / "r"), "--only", "nope"],
                ["plot", "nope", "-o", str(tmp_path / "x.png")]):
        assert main(["--quiet", *cmd]) == 2
        err = capsys.readouterr().err
        assert "unknown catalog entry 'nope'" in err and "lin" in err
    assert not (tmp_path / "x.nc").exists()


def test_bad_set_exit2(cat, capsys, tmp_path):
    out = tmp_path / "x.nc"
    assert main(["--quiet", "export", "lin", str(out), "--set", "stepz=3"]) == 2
    err = capsys.readouterr().err
    assert "unknown override 'stepz'" in err and "steps" in err
    assert main(["--quiet", "export", "lin", str(out), "--set", "steps"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["--quiet", "export", "lin", str(out), "--set", "lam=7"]) == 2  # recipe rejects the value
    assert "lam must be in" in capsys.readouterr().err
    assert main(["--quiet", "export", "lin", str(out), "--variant", "full"]) == 2
    assert "valid variants: quick" in capsys.readouterr().err
    assert not out.exists()
    assert not any(p.suffix in (".nc", ".tmp") for p in tmp_path.iterdir())


def test_run_and_export(cat, tmp_path, capsys):
    out = tmp_path / "lin.nc"
    assert main(["--quiet", "run", "lin", "--set", "steps=4", "--set", "theta0=2.0", "-o", str(out)]) == 0
    ds = eosdyn.open_dataset(out)
    eosdyn.check_dataset(ds)
    np.testing.assert_allclose(ds["theta"].sel(lam=0.5).values, 2.0 * 0.5 ** np.arange(5))
    exp = tmp_path / "exported.nc"
    assert main(["--quiet", "export", "lin", str(exp), "--variant", "quick"]) == 0
    ds2 = eosdyn.open_dataset(exp)
    eosdyn.check_dataset(ds2)
    assert ds2.sizes["step"] == 4
    assert "eosdyn export lin" in ds2.attrs["history"]
    with netCDF4.Dataset(exp) as nc:
        assert nc.variables["theta"].units == "1"
    plain = xr.open_dataset(exp)
    np.testing.assert_array_equal(plain["theta"].values, ds2["theta"].values)
    plain.close()


def test_stored_missing_and_mismatch_exit2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EOSDYN_CACHE", str(tmp_path / "cache"))
    p = tmp_path / "stored.yaml"
    p.write_text(f"entries:\n  - {{name: st, description: d, paper: p, stored: {{path: data/st.nc, sha256: '{'0' * 64}'}}}}\n")
    out = tmp_path / "out.nc"
    assert main(["--quiet", "--catalog", str(p), "export", "st", str(out)]) == 2
    assert "is missing" in capsys.readouterr().err
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "st.nc").write_bytes(b"not really netcdf")
    assert main(["--quiet", "--catalog", str(p), "export", "st", str(out)]) == 2
    err = capsys.readouterr().err
    assert "fails its checksum" in err and hashlib.sha256(b"not really netcdf").hexdigest() in err
    assert not out.exists()
    catalog.remove(p)


def test_plot_command(cat, tmp_path, capsys):
    """`eosdyn plot NAME -o FILE.png|FILE.html`: one entry's figure, its caption in the file."""
    pytest.importorskip("holoviews")
    from PIL import Image

    png = tmp_path / "lin.png"
    assert main(["--quiet", "plot", "lin", "-o", str(png), "--variant", "quick"]) == 0
    meta = Image.open(png).text  # an independent PNG reader
    assert meta["Title"] == "Eq. 16 (lin)"
    assert "catalog entry lin, variant quick; parameters: lam=[0.5, 1.5], theta0=1, steps=3" in meta["Description"]
    assert np.asarray(Image.open(png).convert("L"), float).var() > 0  # not blank
    html = tmp_path / "lin.html"
    assert main(["--quiet", "plot", "lin", "-o", str(html), "--set", "steps=5"]) == 0
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "eosdyn-widget-lam" in page  # lam is the explorer's slider
    assert "overrides: steps=5" in page and "cdn.bokeh.org" not in page
    # default output: NAME.png in the working directory
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert main(["--quiet", "plot", "lin"]) == 0
    finally:
        os.chdir(old)
    assert (tmp_path / "lin.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    # usage errors exit 2, name the problem, write nothing
    assert main(["--quiet", "plot", "lin", "-o", str(tmp_path / "x.pdf")]) == 2
    assert "must end in .png or .html" in capsys.readouterr().err
    assert main(["--quiet", "plot", "lin", "-o", str(tmp_path / "y.png"), "--variant", "full"]) == 2
    assert "valid variants: quick" in capsys.readouterr().err
    assert main(["--quiet", "plot", "lin", "-o", str(tmp_path / "z.png"), "--set", "stepz=3"]) == 2
    assert "unknown override 'stepz'" in capsys.readouterr().err
    assert not any(p.name in ("x.pdf", "y.png", "z.png") or p.suffix == ".tmp" for p in tmp_path.iterdir())


def test_cache_commands(cat, capsys):
    assert main(["cache", "dir"]) == 0
    assert capsys.readouterr().out.strip() == os.environ["EOSDYN_CACHE"]
    assert main(["--quiet", "run", "lin"]) == 0
    assert main(["--quiet", "cache", "clear"]) == 0
    assert not any(Path(os.environ["EOSDYN_CACHE"]).glob("*.nc"))


def test_console_script_entry_point(cat, tmp_path):
    """The installed ``eosdyn`` script (or ``python -m eosdyn.cli``) exits with the right codes."""
    env = dict(os.environ, PYTHONPATH=str(HERE))
    r = subprocess.run([sys.executable, "-m", "eosdyn.cli", "--quiet", "show", "nope"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "valid entries" in r.stderr
    r = subprocess.run([sys.executable, "-m", "eosdyn.cli", "--quiet", "list"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and "lin" in r.stdout.split()


def test_nn_subcommand_is_wired(capsys):
    """`eosdyn nn build` comes from eosdyn.nn.cli; without a sub-command it is a usage error."""
    assert main(["nn"]) == 2
    assert "eosdyn nn build" in capsys.readouterr().err
    assert main(["nn", "build"]) == 2  # --cifar is required (argparse usage error)


def test_quiet_is_silent(cat, tmp_path, capfd):
    assert main(["--quiet", "export", "lin", str(tmp_path / "q.nc")]) == 0
    assert main(["--quiet", "reproduce", "-o", str(tmp_path / "r"), "--only", "lin", "--no-plots"]) == 0
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert (tmp_path / "r" / "summary.md").exists()
