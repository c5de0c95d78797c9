"""Fuzz tests: NetCDF I/O (exact round trip or a clear error) and sweep.run's options.

The promise (``fuzzutil``): every call either raises a ``ValueError``/``TypeError``
naming the offending parameter, variable or attribute before anything is written, or
succeeds; a written file reads back ``identical`` to the dataset, and a sweep equals the
chunk function applied directly (independent truth), bitwise.
"""

from __future__ import annotations

import shutil
import string
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import eosdyn  # noqa: E402
from eosdyn import sweep  # noqa: E402

from fuzzutil import COUNTS, assert_clear_error, outcome  # noqa: E402

# ----------------------------------------------------------------------------- NetCDF datasets
NAMES = st.one_of(st.text(string.ascii_letters + "_", min_size=1, max_size=6),
                  st.sampled_from(["eosdyn_dtype", "eosdyn_netcdf", "dtype", "coordinates", "_FillValue",
                                   "missing_value", "scale_factor", "units", "a b", "x/y", "e\u0301", "é",
                                   "trail ", "1st", "nul\x00", ""]))
TEXT = st.one_of(st.text(max_size=8), st.sampled_from(["bool", "days since 2000-01-01", "seconds", "a\x00b",
                                                       "\x00", "", "\ud800"]))
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
ATTR_VALUES = st.one_of(
    TEXT, st.integers(-2**64, 2**64), FLOATS, st.booleans(), st.none(),
    st.lists(st.integers(-10**6, 10**6), max_size=3), st.lists(FLOATS, max_size=3),
    st.lists(st.text(string.ascii_letters, max_size=3), max_size=3),
    st.lists(st.one_of(st.integers(0, 3), st.text(max_size=2)), min_size=2, max_size=3),
    st.sampled_from([np.float32(1.5), np.int8(-3), np.uint64(2**64 - 1), np.float16(1.0),
                     np.array([1, 2]), np.array([0.5]), np.zeros((2, 2)), np.array([], float),
                     {"a": 1}, b"bytes", 1 + 2j]),
)
ATTRS = st.dictionaries(NAMES, ATTR_VALUES, max_size=3)
DTYPES = st.sampled_from(["float32", "float64", "int8", "int32", "int64", "uint16", "bool", "str",
                          "float16", "complex128"])


@st.composite
def datasets(draw):
    n = draw(st.integers(1, 4))
    coords = {"i": np.arange(n)}
    ds = xr.Dataset(coords=coords, attrs=draw(ATTRS))
    for _ in range(draw(st.integers(1, 3))):
        name = draw(NAMES)
        dtype = draw(DTYPES)
        if dtype == "str":
            values = np.array(draw(st.lists(TEXT, min_size=n, max_size=n)))
        elif dtype == "bool":
            values = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        elif dtype.startswith(("float", "complex")):
            values = np.array(draw(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32),
                                            min_size=n, max_size=n))).astype(dtype)
        else:
            info = np.iinfo(dtype)
            values = np.array(draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=n, max_size=n)),
                              dtype=dtype)
        try:
            if draw(st.booleans()) and name != "i":
                ds = ds.assign_coords({name: ("i", values)})
            else:
                ds[name] = ("i", values)
            ds[name].attrs.update(draw(ATTRS))
        except (ValueError, TypeError):  # a name xarray itself refuses
            continue
    return ds


def _roundtrip(ds, folder: Path):
    path = folder / "f.nc"
    try:
        eosdyn.to_netcdf(ds, path)
    except (ValueError, TypeError):
        assert not path.exists() and not list(folder.iterdir())  # refused before writing anything
        raise
    back = eosdyn.open_dataset(path)
    xr.testing.assert_identical(back, ds)
    for name in ds.variables:
        assert back[name].dtype.kind == ds[name].dtype.kind, name
        if ds[name].dtype.kind in "biuf":
            assert back[name].dtype == ds[name].dtype, name
            np.testing.assert_array_equal(back[name].values, ds[name].values)
    return "roundtrip"


def _names(ds):
    out = {"path", "dataset", "variable", "attribute", "dimension", "name"}
    for key in list(ds.attrs) + list(ds.variables):
        out.add(repr(key))
    for v in ds.variables.values():
        out.update(repr(k) for k in v.attrs)
    return sorted(out)


@given(datasets())
def test_fuzz_netcdf_roundtrip_or_clear_error(ds):
    folder = Path(tempfile.mkdtemp())
    try:
        outcome(lambda: _roundtrip(ds, folder), _names(ds), counter_key="netcdf")
    finally:
        shutil.rmtree(folder)


@given(st.one_of(st.just(""), st.just("/proc/x.nc"), st.just("/"), st.integers(), st.none(), st.just("a\x00b"),
                 st.text(max_size=10)))
def test_fuzz_netcdf_paths(name):
    folder = Path(tempfile.mkdtemp())
    try:
        target = name if not isinstance(name, str) or name.startswith("/") or name == "" or "\x00" in name \
            else folder / name
        ds = xr.Dataset({"x": ("i", np.arange(3.0))})
        outcome(lambda: eosdyn.to_netcdf(ds, target), ["path"], counter_key="netcdf-path")
    finally:
        shutil.rmtree(folder)


# ----------------------------------------------------------------------------- sweep.run options
CALLS: list = []


def _chunk(seeds):
    CALLS.append([int(s) for s in seeds])
    x = np.stack([np.random.default_rng(np.random.SeedSequence(int(s))).standard_normal(2) for s in seeds])
    return xr.Dataset({"x": (("seed", "k"), x), "pos": ("seed", x[:, 0] > 0)},
                      coords={"seed": np.asarray(seeds, np.int64)})


GOOD = {
    "seeds": st.one_of(st.integers(1, 7), st.lists(st.integers(0, 2**63 - 1), min_size=1, max_size=5, unique=True),
                       st.sampled_from([[2**63 - 1, 0], [1.0, 2.0], np.array([3, 4], np.uint64)])),
    "chunk_size": st.one_of(st.none(), st.integers(1, 4)),
    "scheduler": st.sampled_from([None, "threads", "synchronous"]),
    "resume": st.sampled_from([None, "dir"]),
    "fingerprint": st.sampled_from([None, "a", "b"]),
    "blas_threads": st.sampled_from([None, 1, 2]),
}
BAD = {
    "seeds": st.one_of(st.integers(-3, 0), st.sampled_from([10**12, True, 2.5, "3", None, [2**63], [2**64 + 1],
                                                            [float("nan")], [[1, 2]], [], [1, 1], [-1]])),
    "chunk_size": st.sampled_from([0, -1, 1.5, "2", True]),
    "scheduler": st.sampled_from(["bogus", "synch", 3, "processes "]),
    "resume": st.sampled_from(["file", "under_file", 3, "", "/proc/eosdyn"]),
    "fingerprint": st.sampled_from([5, b"a"]),
    "blas_threads": st.sampled_from([0, -2, "1"]),
}


@st.composite
def sweep_options(draw):
    bad = draw(st.sampled_from([None, None, None, None, *GOOD]))
    opts = {k: draw(BAD[k] if k == bad else GOOD[k]) for k in GOOD}
    return bad, opts


@given(sweep_options(), st.sampled_from(["none", "foreign", "corrupt", "stale"]))
def test_fuzz_sweep_options(bad_and_opts, damage):
    bad, kw = bad_and_opts
    seeds = kw.pop("seeds")
    folder = Path(tempfile.mkdtemp())
    try:
        (folder / "file").write_text("x")
        kw["resume"] = {"dir": folder / "r", "file": folder / "file",
                        "under_file": folder / "file" / "r"}.get(kw["resume"], kw["resume"])
        if kw["resume"] == folder / "r" and damage != "none" and bad is None:
            # a previous run of another configuration, or a damaged/stale one, left files behind
            sweep.run(_chunk, seeds, chunk_size=kw["chunk_size"], resume=folder / "r",
                      fingerprint="other" if damage == "foreign" else kw["fingerprint"], scheduler="synchronous")
            files = sorted((folder / "r").glob("chunk-*.nc"))
            if damage == "corrupt":
                files[0].write_bytes(files[0].read_bytes()[:100])
            if damage == "foreign":
                (folder / "r" / sweep.MANIFEST).unlink()
            if damage == "stale":
                (folder / "r" / ".chunk-0-0-1-0123456789abcdef.nc.ab12.tmp").write_text("")
        CALLS.clear()

        def call():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", RuntimeWarning)
                res = sweep.run(_chunk, seeds, **kw)
            if damage in ("foreign", "corrupt") and isinstance(kw["resume"], Path):
                assert any(issubclass(w.category, RuntimeWarning) for w in caught)
            return res

        got = []
        kind = outcome(lambda: got.append(call()), ["seeds", "chunk_size", "scheduler", "resume", "fingerprint", "blas_threads"],
                       counter_key="sweep")
        assert (kind == "error") == (bad is not None), (bad, kind)
        if kind == "error":
            assert not (folder / "file" / "r").exists() and CALLS == []
            return
        vals = sweep.normalize_seeds(seeds)
        truth = _chunk(vals)  # independent truth: the chunk function on all seeds at once
        xr.testing.assert_identical(got[0], truth)
        if isinstance(kw["resume"], Path):
            n = len(CALLS)
            again = sweep.run(_chunk, seeds, **kw)  # everything finished: loaded, nothing computed
            assert len(CALLS) == n
            xr.testing.assert_identical(again, truth)
            assert not list(kw["resume"].glob(".*.tmp"))
    finally:
        shutil.rmtree(folder)
