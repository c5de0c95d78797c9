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
            "diverged_at": ("eps", np.array([0, -1])),
            "converged_at": ("eps", np.array([-1, -1])),
            "steps_taken": ("eps", np.array([0, 2])),
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
    (lambda ds: ds.__setitem__("steps_taken", ds.steps_taken * 0 - 1), "steps_taken"),
    (lambda ds: ds.__setitem__("status", ds.status * 0 + 3), "diverged"),
    (lambda ds: ds["status"].attrs.pop("flag_values"), "flag_values"),
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
        assert nc["flag"].dtype == np.int8
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


# --------------------------------------------------------------------------- safety issue, items 7, 15, 17
def _plain(**variables):
    return xr.Dataset(variables, coords={"i": np.arange(3)})


def test_spoofed_bool_marker_is_refused_on_write(tmp_path):
    ds = _plain(x=("i", np.array([0.5, 1.0, 0.0])))
    ds["x"].attrs["eosdyn_dtype"] = "bool"
    with pytest.raises(ValueError, match=r"'x'.*eosdyn_dtype"):
        eosdyn.to_netcdf(ds, tmp_path / "s.nc")
    ds["x"].attrs = {"dtype": "bool"}  # xarray's own marker
    with pytest.raises(ValueError, match=r"'x'.*dtype"):
        eosdyn.to_netcdf(ds, tmp_path / "s.nc")
    assert not (tmp_path / "s.nc").exists()


def test_spoofed_bool_marker_in_a_foreign_file_is_not_honoured(tmp_path):
    import netCDF4

    path = tmp_path / "foreign.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("i", 3)
        v = nc.createVariable("x", "f8", ("i",))
        v[:] = [0.5, 1.0, 0.0]
        v.eosdyn_dtype = "bool"
        w = nc.createVariable("y", "i1", ("i",))
        w[:] = [0, 2, 1]
        w.eosdyn_dtype = "bool"
        b = nc.createVariable("b", "i1", ("i",))
        b[:] = [0, 1, 1]
        b.eosdyn_dtype = "bool"
    back = eosdyn.open_dataset(path)
    assert back.x.dtype == np.float64 and back.x.values.tolist() == [0.5, 1.0, 0.0]
    assert back.y.dtype == np.int8 and back.y.values.tolist() == [0, 2, 1]
    assert back.b.dtype == bool and back.b.values.tolist() == [False, True, True]  # consistent: honoured


@pytest.mark.parametrize("attr", ["missing_value", "valid_max", "scale_factor"])
def test_int_variable_with_missing_value_stays_int(tmp_path, attr):
    ds = _plain(n=("i", np.array([1, -1, 7], np.int64)))
    ds["n"].attrs[attr] = np.int64(-1)
    path = tmp_path / "m.nc"
    eosdyn.to_netcdf(ds, path)
    back = eosdyn.open_dataset(path)
    assert back.n.dtype == np.int64 and back.n.values.tolist() == [1, -1, 7]
    xr.testing.assert_identical(back, ds)


def test_float_variable_with_cf_attributes_round_trips(tmp_path):
    ds = _plain(f=("i", np.array([1.0, -999.0, np.nan])))
    ds["f"].attrs.update(missing_value=-999.0, units="days since 2000-01-01", scale_factor=2.0)
    ds["t"] = ("i", np.array([1.0, 2.0, 3.0]), {"units": "seconds"})
    eosdyn.to_netcdf(ds, tmp_path / "f.nc")
    xr.testing.assert_identical(eosdyn.open_dataset(tmp_path / "f.nc"), ds)


@pytest.mark.parametrize("where", ["value", "var_attr", "global_attr", "coord_value", "list_attr"])
def test_nul_characters_are_refused(tmp_path, where):
    ds = _plain(s=("i", np.array(["a", "b", "c"])))
    if where == "value":
        ds["s"] = ("i", np.array(["a", "b\x00c", "d"]))
    elif where == "var_attr":
        ds["s"].attrs["note"] = "cut\x00here"
    elif where == "global_attr":
        ds.attrs["title"] = "cut\x00here"
    elif where == "coord_value":
        ds = ds.assign_coords(lab=("i", np.array(["x", "y\x00", "z\x00z"])))
    else:
        ds.attrs["names"] = ["ok", "no\x00"]
    with pytest.raises(ValueError, match="NUL"):
        eosdyn.to_netcdf(ds, tmp_path / "n.nc")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mutate, exc, match", [
    (lambda ds: ds["x"].attrs.__setitem__("_FillValue", -1), ValueError, r"'x'.*_FillValue"),
    (lambda ds: ds.attrs.__setitem__("eosdyn_netcdf", "1"), ValueError, "eosdyn_netcdf"),
    (lambda ds: ds.attrs.__setitem__("coordinates", "i"), ValueError, "coordinates"),
    (lambda ds: ds["x"].attrs.__setitem__("coordinates", "i"), ValueError, "coordinates"),
    (lambda ds: ds.attrs.__setitem__("one", [5]), ValueError, "one"),
    (lambda ds: ds.attrs.__setitem__("flag", True), TypeError, "flag"),
    (lambda ds: ds.attrs.__setitem__("big", 2**70), ValueError, "big"),
    (lambda ds: ds.attrs.__setitem__("mix", [1, "a"]), TypeError, "mix"),
    (lambda ds: ds.__setitem__("c", ("i", np.ones(3, complex))), TypeError, "'c'"),
    (lambda ds: ds.__setitem__("h", ("i", np.ones(3, np.float16))), TypeError, "'h'"),
    (lambda ds: ds.__setitem__("a/b", ("i", np.ones(3))), ValueError, "a/b"),
    (lambda ds: ds.__setitem__("e\u0301", ("i", np.ones(3))), ValueError, "NFC"),
])
def test_what_cannot_round_trip_is_refused(tmp_path, mutate, exc, match):
    ds = _plain(x=("i", np.array([1, 2, 3])))
    mutate(ds)
    with pytest.raises(exc, match=match):
        eosdyn.to_netcdf(ds, tmp_path / "r.nc")
    assert list(tmp_path.iterdir()) == []


def test_to_netcdf_bad_path(tmp_path):
    ds = _demo()
    f = tmp_path / "file.txt"
    f.write_text("keep")
    for bad in ("", tmp_path, f / "x.nc", "/proc/x.nc", "/proc/self/nope/x.nc"):
        with pytest.raises(ValueError, match="path"):
            eosdyn.to_netcdf(ds, bad)
    with pytest.raises(TypeError, match="path"):
        eosdyn.to_netcdf(ds, 3)
    assert f.read_text() == "keep" and sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def _write_each_way(folder):
    """Every file-writing path of eosdyn, one file each."""
    from eosdyn import _files, reproduce
    from eosdyn.nn import pipeline

    folder.mkdir()
    eosdyn.to_netcdf(_demo(), folder / "io.nc")
    reproduce._copy_atomic(folder / "io.nc", folder / "copy.nc")
    _files.atomic_write_text(folder / "t.txt", "x")
    try:
        import torch  # noqa: F401

        pipeline._save_atomic({"a": 1}, folder / "ckpt.pt")
    except ImportError:  # pragma: no cover - torch is an extra
        pass
    try:
        import holoviews as hv  # noqa: F401

        from eosdyn import plot

        plot.save_png(plot.trajectories(_demo(), "z"), folder / "fig.png")
    except ImportError:  # pragma: no cover - plot is an extra
        pass
    from eosdyn import sweep

    sweep.run(lambda s: xr.Dataset({"x": ("seed", np.asarray(s) * 1.0)}, coords={"seed": s}), 2,
              resume=folder / "resume", scheduler="synchronous")
    return [p for p in folder.rglob("*") if p.is_file()]


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_every_written_file_gets_the_umask_permissions(tmp_path, mask, mode):
    import os
    import stat

    old = os.umask(mask)
    try:
        files = _write_each_way(tmp_path / "out")
    finally:
        os.umask(old)
    assert len(files) >= 6
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {p.name: oct(mode) for p in files}


def test_reproduce_and_data_hash_use_the_shared_sha256(tmp_path):
    import hashlib

    from eosdyn import reproduce
    from eosdyn.nn import data

    p = tmp_path / "b.bin"
    p.write_bytes(b"\x00\x01" * 1000)
    truth = hashlib.sha256(b"\x00\x01" * 1000).hexdigest()
    assert reproduce._sha(p) == data._sha256(p) == truth
