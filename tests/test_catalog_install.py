"""The built-in catalog is found both in place (editable/source) and from a regular wheel install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from eosdyn import catalog

ROOT = Path(__file__).resolve().parents[1]


def test_in_place_catalog_dir():
    d = catalog.builtin_catalog_dir()
    assert d is not None and (d / "eosdyn.yaml").is_file()
    if (ROOT / "catalogs" / "eosdyn.yaml").exists() and Path(catalog.__file__).resolve().parent == ROOT / "eosdyn":
        assert d == ROOT / "catalogs"


@pytest.mark.slow
def test_wheel_install_ships_catalog(tmp_path):
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if (ROOT / f).is_file() and (f.startswith(("eosdyn/", "catalogs/")) or f in ("pyproject.toml", "README.md")):
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, src / f)
    dist = tmp_path / "dist"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                    "-w", str(dist), "-q"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next(dist.glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(f.name for f in (ROOT / "catalogs").glob("*.yaml"))
    for f in shipped:                          # every catalog file ships, not only eosdyn.yaml
        assert any(n.endswith(f"data/share/eosdyn/catalogs/{f}") for n in names), f
    # Install the wheel by the wheel spec's layout (never run pip install here: it would act on the
    # running environment): purelib -> site-packages, <name>.data/data/* -> the prefix.
    prefix = tmp_path / "prefix"
    site = prefix / "lib" / "python" / "site-packages"
    with zipfile.ZipFile(wheel) as zf:
        for n in names:
            parts = n.split("/")
            if parts[0].endswith(".data") and parts[1] == "data":
                dest = prefix.joinpath(*parts[2:])
            else:
                dest = site.joinpath(*parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(zf.read(n))
    env = dict(os.environ, PYTHONPATH=str(site))
    env.pop("EOSDYN_CATALOG_PATH", None)
    code = ("import eosdyn.catalog as c, sys; d = c.builtin_catalog_dir(); print(d); "
            "print(c.Path(c.__file__).resolve()); "
            "print(sorted(c.list()) == sorted(n for f in sorted(d.glob('*.yaml')) for n in c.load(f)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert Path(out[0]) == prefix / "share" / "eosdyn" / "catalogs"
    assert Path(out[1]).is_relative_to(site)
    assert out[2] == "True"
