"""The composition script of docs/catalog.md runs as written and its output is right."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import xarray as xr

import eosdyn

DOC = Path(__file__).resolve().parents[1] / "docs" / "catalog.md"


def composition_script() -> str:
    text = DOC.read_text()
    m = re.search(r"<!-- composition-script -->\s*```python\n(.*?)```", text, re.S)
    assert m, "docs/catalog.md lost its composition script"
    return m.group(1)


def test_composition_script(tmp_path, monkeypatch):
    script = composition_script()
    assert len(script.strip().splitlines()) <= 15
    monkeypatch.setenv("EOSDYN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EOSDYN_CATALOG_PATH", raising=False)
    monkeypatch.chdir(tmp_path)
    exec(compile(script, str(DOC), "exec"), {"__name__": "__composition__"})
    out = eosdyn.open_dataset(tmp_path / "composed.nc")
    eosdyn.check_dataset(out)
    plain = xr.open_dataset(tmp_path / "composed.nc")
    plain.close()
    # the toy part: y settles at the lowest-order fixed point y* = -2 eps / (4 - 3 eps + 4 eps^2) (Eq. 19)
    eps = 0.005
    np.testing.assert_allclose(out["y"].values, -2 * eps / (4 - 3 * eps + 4 * eps**2), rtol=0.02)
    # the QRM part: the median over seeds of the finite final sharpness values (diverged runs are NaN)
    qrm = eosdyn.catalog.open("figure4_phase_diagrams", variant="quick")
    direct = xr.apply_ufunc(np.nanmedian, qrm["final_sharpness"], input_core_dims=[["seed"]],
                            kwargs={"axis": -1})
    both = np.isfinite(out["median_sharpness"].values) & np.isfinite(direct.values)
    assert both.sum() > 10
    np.testing.assert_allclose(out["median_sharpness"].values[both], direct.values[both], rtol=1e-12)
