"""Conventions and NetCDF round trip (independent of any model)."""

import json

import numpy as np
import pytest
import xarray as xr

import eosdyn
from eosdyn.conventions import check_dataset, decode_status, encode_status, label, read_config
from eosdyn._validate import check_range, make_grid


def _demo():
    ds = xr.Dataset(
        {
            "z": (("eps", "step"), np.array([[0.1, np.nan, np.nan], [0.2, 0.3, -np.inf]])),
            "T": (("eps", "step"), np.array([[1.0, np.nan, np.nan], [1.5, 1.6, 1.7]], np.float32)),
            "diverged": ("eps", np.array([True, False])),
            "diverged_at": ("eps", np.array([0, -1])),
            "status": ("eps", encode_status(np.array(["diverged", "max_steps"]))),
        },
        coords={"eps": [0.1, 0.2], "step": np.arange(3)},
    )
    return label(ds, model="demo", title="demo", equations="Eq. 14-15",
                 config={"function": "demo.f", "parameters": {"eps": np.array([0.1, 0.2]), "x": None}})


def test_label_and_check():
    ds = _demo()
    check_dataset(ds)
    assert ds.attrs["Conventions"] == "CF-1.10"
    assert ds.attrs["source"] == f"eosdyn {eosdyn.__version__}"
    assert read_config(ds)["parameters"]["eps"] == [0.1, 0.2]
    for name in ds.variables:
        assert "long_name" in ds[name].attrs and "units" in ds[name].attrs


@pytest.mark.parametrize("mutate, message", [
    (lambda ds: ds.attrs.pop("history"), "history"),
    (lambda ds: ds.attrs.__setitem__("eosdyn_config", "{not json"), "JSON"),
    (lambda ds: ds.attrs.__setitem__("flag", True), "netCDF"),
    (lambda ds: ds["z"].attrs.pop("long_name"), "long_name"),
    (lambda ds: ds.__setitem__("diverged", ds.diverged.astype(int)), "boolean"),
])
def test_check_dataset_rejects(mutate, message):
    ds = _demo()
    mutate(ds)
    with pytest.raises(ValueError, match=message):
        check_dataset(ds)


def test_check_dataset_nan_after_divergence():
    ds = _demo()
    ds["z"][0, 2] = 1.0
    with pytest.raises(ValueError, match="diverged_at"):
        check_dataset(ds)


def test_history_appends():
    ds = _demo()
    first = ds.attrs["history"]
    eosdyn.conventions.append_history(ds, "more")
    assert ds.attrs["history"].startswith(first) and ds.attrs["history"].endswith("more")


def test_status_codes_roundtrip():
    ds = _demo()
    assert list(decode_status(ds.status).values) == ["diverged", "max_steps"]


def test_netcdf_roundtrip_exact(tmp_path):
    ds = _demo()
    ds["label"] = ("eps", np.array(["ab", "cde"]))
    ds["label"].attrs["long_name"] = "a string label"
    ds = ds.assign_coords(flag=("eps", np.array([False, True])))
    ds["flag"].attrs.update(long_name="a boolean coordinate", units="1")
    path = tmp_path / "x.nc"
    eosdyn.to_netcdf(ds, path)
    back = eosdyn.open_dataset(path)
    xr.testing.assert_identical(back, ds)
    for name in ds.variables:
        assert back[name].dtype == ds[name].dtype, name
    # plain netCDF4 sees 0/1 int8 and the CF attributes
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        assert nc.Conventions == "CF-1.10"
        assert nc["diverged"].dtype == np.int8
        json.loads(nc.eosdyn_config)


def test_open_dataset_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.nc"):
        eosdyn.open_dataset(tmp_path / "nope.nc")
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"this is not netcdf")
    with pytest.raises(ValueError, match="bad.nc"):
        eosdyn.open_dataset(bad)


def test_check_range_messages():
    with pytest.raises(ValueError, match=r"eta must be finite and in \(0, inf\)"):
        check_range("eta", [0.1, -1.0], 0, None, lo_open=True)
    with pytest.raises(ValueError, match="eta"):
        check_range("eta", np.nan, 0, None, lo_open=True)


def test_grid_broadcast_and_mismatch():
    g = make_grid(eps=[0.1, 0.2], z0=0.5, T0=[1.0, 1.5, 1.9])
    assert g.dims == ("eps", "T0") and g.shape == (2, 3)
    np.testing.assert_array_equal(g.flat("T0"), np.tile([1.0, 1.5, 1.9], 2))
    init = xr.DataArray([0.1, 0.2, 0.3], dims="init")
    with pytest.raises(ValueError, match="mismatched"):
        make_grid(z0=init, T0=xr.DataArray([1.0, 2.0], dims="init"))
    with pytest.raises(ValueError, match="T0"):
        make_grid(T0=np.ones((2, 2)))


def test_written_file_has_usual_permissions(tmp_path):
    import os
    import stat

    path = tmp_path / "perm.nc"
    eosdyn.to_netcdf(_demo(), path)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~mask
