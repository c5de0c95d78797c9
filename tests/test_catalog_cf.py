"""IOOS compliance-checker CF test on exported NetCDF files (slow: the checker takes seconds to load)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import eosdyn
from eosdyn import catalog

HERE = Path(__file__).resolve().parent


def cf_failures(path: Path, tmp_path: Path) -> list[tuple[str, list[str]]]:
    """High- and medium-priority CF failures reported by the IOOS compliance checker."""
    runner = pytest.importorskip("compliance_checker.runner",
                                 reason="compliance-checker is not installed (pip install 'eosdyn[test]')")
    suite = runner.CheckSuite()
    suite.load_all_available_checkers()
    report = tmp_path / f"{path.stem}.cf.json"
    runner.ComplianceChecker.run_checker(str(path), ["cf:1.10"], 0, "normal",
                                         output_filename=str(report), output_format="json")
    res = next(iter(json.loads(report.read_text()).values()))
    return [(item["name"], list(item["msgs"])) for prio in ("high_priorities", "medium_priorities")
            for item in res[prio] if item["value"][0] < item["value"][1]]


@pytest.mark.slow
def test_cf_compliance_test_recipe(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    import test_catalog

    ds = test_catalog.linear_recipe(lam=[0.5, 1.5], theta0=1.0, steps=4)
    path = tmp_path / "lin.nc"
    eosdyn.to_netcdf(ds, path)
    assert cf_failures(path, tmp_path) == []


@pytest.mark.slow
def test_cf_compliance_builtin_entries(tmp_path, monkeypatch):
    """Every built-in entry, exported (quick variant), has no high/medium CF failures."""
    monkeypatch.setenv("EOSDYN_CACHE", str(tmp_path / "cache"))
    problems = {}
    for name in catalog.list():
        e = catalog.get(name)
        variant = "quick" if "quick" in e.variants else None
        ds = catalog.open(name, variant=variant)
        path = tmp_path / f"{name}.nc"
        eosdyn.to_netcdf(ds, path)
        fails = cf_failures(path, tmp_path)
        if fails:
            problems[name] = fails
    assert problems == {}
