"""The conformance contract: every producer in the registry passes the same checks.

For each system record (``eosdyn.systems.systems()``: toy maps, one_datapoint, the hierarchy,
QRM sweeps and flows, the Taylor model, ...) its example dataset must

* pass ``check_dataset`` and round-trip through NetCDF as an ``identical`` dataset;
* regenerate from its ``eosdyn_config`` as an identical dataset (data, coords and attrs;
  only the timestamped ``history`` differs);
* follow the output schema: ``sharpness``, ``loss`` and the model state on the trajectory axis,
  the fates with their dtypes, consistent with each other, state NaN after ``diverged_at``, the
  initial state equal to the inputs, a role map that names existing variables;
* be accepted by the generic analyses without ``var=`` or special cases.

A new producer only needs a record: this file finds it.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import eosdyn
from eosdyn import analysis, systems
from eosdyn.conventions import ROLES, STATUS_VALUES, read_config, regenerate, roles_of

RECORDS = systems.systems()
NAMES = sorted(RECORDS)
FATE_DTYPES_GD = {"status": np.int8, "steps_taken": np.int64, "diverged_at": np.int64, "converged_at": np.int64}


@pytest.fixture(scope="module")
def datasets():
    return {}


def _dataset(cache, name):
    if name not in cache:
        rec = RECORDS[name]
        cache[name] = rec.producer(**rec.example)
    return cache[name]


def _axis(ds):
    return "time" if "time" in ds.dims else "step"


def test_registry_covers_every_public_producer():
    expected = {f"eosdyn.toy.{n}" for n in eosdyn.toy.__all__} | {"eosdyn.qrm.sweep", "eosdyn.qrm.gradient_flow",
                                                                   "eosdyn.taylor.simulate"}
    assert expected <= set(NAMES), sorted(expected - set(NAMES))
    for name, rec in RECORDS.items():
        assert rec.name == name and eosdyn.registry.is_registered("recipe", name), name
        assert rec.kind in systems.KINDS
        assert set(rec.roles) <= set(ROLES)
        if rec.kind == "flow":
            assert rec.flow_of in RECORDS, name


@pytest.mark.parametrize("name", NAMES)
def test_conventions_and_netcdf_round_trip(name, datasets, tmp_path):
    ds = _dataset(datasets, name)
    eosdyn.check_dataset(ds)
    assert read_config(ds)["function"] == name
    path = tmp_path / "ds.nc"
    eosdyn.to_netcdf(ds, path)
    back = eosdyn.open_dataset(path)
    assert back.identical(ds)
    for v in ds.variables:
        assert back[v].dtype == ds[v].dtype, v


@pytest.mark.parametrize("name", NAMES)
def test_regenerate_is_identical(name, datasets):
    ds = _dataset(datasets, name)
    again = regenerate(ds)
    a, b = again.copy(), ds.copy()
    a.attrs.pop("history", None)
    b.attrs.pop("history", None)
    xr.testing.assert_identical(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_output_schema(name, datasets):
    rec = RECORDS[name]
    ds = _dataset(datasets, name)
    axis = _axis(ds)
    assert axis in ds.dims
    for v in ("sharpness", "loss", *rec.state):
        assert v in ds and axis in ds[v].dims, v
    roles = roles_of(ds)
    assert roles == dict(rec.roles)
    for r, v in roles.items():
        assert v in ds.variables, (r, v)
    assert "diverged" not in ds, "the boolean 'diverged' is replaced by status/diverged_at"
    status = ds["status"]
    assert status.dtype == np.int8
    flags = dict(zip(status.attrs["flag_values"].tolist(), status.attrs["flag_meanings"].split()))
    assert flags == {v: k for k, v in STATUS_VALUES.items()}
    assert set(np.unique(status.values).tolist()) <= set(STATUS_VALUES.values())
    for v in ("final_sharpness", "final_loss"):
        assert v in ds and axis not in ds[v].dims, v
    div = status == STATUS_VALUES["diverged"]
    if axis == "step":
        for v, dt in FATE_DTYPES_GD.items():
            assert ds[v].dtype == dt, v
        st = ds["steps_taken"]
        assert bool((div == (ds["diverged_at"] >= 0)).all())
        assert bool(((ds["converged_at"] >= 0) | (status != STATUS_VALUES["converged"])).all())
        assert bool((ds["diverged_at"] <= st).all() and (ds["converged_at"] <= st).all())
        assert int(st.max()) <= int(ds[axis].max()) or ds.attrs.get("stop") != "never"
        after = ds[axis] > ds["diverged_at"].where(ds["diverged_at"] >= 0)
    else:
        assert "t_stop" in ds and ds["diverged_at"].dtype.kind == "f"
        assert bool((div == np.isfinite(ds["diverged_at"])).all())
        after = ds[axis] > ds["diverged_at"]
    for v in ("sharpness", "loss", *rec.state):
        if ds[v].dtype.kind == "f":
            assert not bool((after & np.isfinite(ds[v])).any()), f"{v} is finite after diverged_at"


@pytest.mark.parametrize("name", NAMES)
def test_initial_state_equals_inputs(name, datasets):
    rec = RECORDS[name]
    ds = _dataset(datasets, name)
    axis = _axis(ds)
    for var, param in rec.initial.items():
        got = ds[var].isel({axis: 0})
        want = rec.example[param]
        want = want if isinstance(want, xr.DataArray) else np.asarray(want, dtype=float)
        np.testing.assert_allclose(np.broadcast_to(np.asarray(got), np.shape(got)),
                                   np.broadcast_to(np.asarray(want, dtype=float), np.shape(got))
                                   if np.ndim(want) <= np.ndim(got) else want,
                                   rtol=1e-6 if ds[var].dtype == np.float32 else 0, err_msg=var)


@pytest.mark.parametrize("name", NAMES)
def test_generic_analyses_accept_it(name, datasets):
    ds = _dataset(datasets, name)
    if "step" not in ds.dims:
        pytest.skip("two-step analyses are defined on the GD step axis; flows have a time axis")
    sharp = ds["sharpness"]
    two = analysis.two_step(sharp)
    assert two.sizes["step"] == max(ds.sizes["step"] - 2, 0) or "step" in two.dims
    kinds = analysis.classify(ds)
    assert set(np.unique(kinds.values).tolist()) <= set(range(8))
    member_dims = list(ds["final_sharpness"].dims)
    src = ds if member_dims else ds.expand_dims("member")
    stats = analysis.final_sharpness_stats(src, dim=member_dims[0] if member_dims else "member")
    assert "median_sharpness" in stats
    if ds.sizes["step"] >= 6:
        analysis.fit_limit(ds)


def _block(text: str, marker: str) -> str:
    start, end = f"<!-- {marker} -->\n", f"<!-- /{marker} -->"
    return text.split(start, 1)[1].split(end, 1)[0]


def test_docs_tables_match_the_registry_and_the_names():
    """docs/conventions.md shows the option table of every producer and every name, as generated."""
    from pathlib import Path

    from eosdyn.conventions import names_table

    text = (Path(__file__).resolve().parents[1] / "docs" / "conventions.md").read_text(encoding="utf-8")
    assert _block(text, "option-table") == systems.option_table()
    assert _block(text, "names-table") == names_table()
