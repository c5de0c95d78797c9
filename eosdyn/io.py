"""NetCDF export with an exact round trip.

:func:`to_netcdf` writes with the netCDF4 engine (zlib compression on) and
:func:`open_dataset` reads back a dataset that is ``identical`` to what was
written: values (NaN included), dtypes (boolean flags included), coordinates and
attributes. What cannot survive NetCDF exactly is refused on writing with a
``ValueError``/``TypeError`` naming the variable or attribute (NUL characters,
names netCDF rewrites, reserved or spoofed marker attributes, dtypes netCDF has no
type for), so a file that was written reads back exactly.

Examples
--------
>>> import numpy as np, xarray as xr, tempfile, os, eosdyn
>>> ds = xr.Dataset({"diverged": ("seed", np.array([True, False]))},
...                 coords={"seed": [3, 7]}, attrs={"title": "demo"})
>>> path = os.path.join(tempfile.mkdtemp(), "demo.nc")
>>> eosdyn.to_netcdf(ds, path)
>>> eosdyn.open_dataset(path).identical(ds)
True
"""

from __future__ import annotations

import math
import os
import unicodedata
from pathlib import Path

import numpy as np
import xarray as xr

from . import _files

#: variable attribute marking a boolean variable stored as int8 0/1
__all__ = ["to_netcdf", "open_dataset"]

_BOOL_ATTR = "eosdyn_dtype"
#: global attribute marking a file written by :func:`to_netcdf` (decoded minimally on reading)
_FORMAT_ATTR = "eosdyn_netcdf"
_FORMAT_VERSION = "1"
#: attributes netCDF/xarray interpret; a user attribute of that name is refused
_RESERVED_VAR_ATTRS = {_BOOL_ATTR, "coordinates"}
_RESERVED_GLOBAL_ATTRS = {_FORMAT_ATTR, "coordinates"}
_INT64 = (-(2**63), 2**63 - 1)


def _check_name(kind: str, name) -> None:
    """A name netCDF stores and gives back unchanged."""
    if not isinstance(name, str):
        raise TypeError(f"{kind} name {name!r} must be a str, not {type(name).__name__}")
    bad = None
    if not name:
        bad = "is empty"
    elif "\x00" in name:
        bad = "contains a NUL character"
    elif "/" in name:
        bad = "contains '/'"
    elif any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        bad = "contains a control character"
    elif name != name.rstrip():
        bad = "ends with white space"
    elif not (name[0].isalnum() and name[0].isascii() or name[0] == "_" or ord(name[0]) > 0x7F):
        bad = "must start with a letter, a digit, '_' or a non-ASCII character"
    else:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            bad = "is not valid Unicode"
        else:
            if unicodedata.normalize("NFC", name) != name:
                bad = "is not in Unicode normal form NFC (netCDF would rename it)"
    if bad:
        raise ValueError(f"{kind} name {name!r} {bad}; netCDF cannot store it unchanged")


def _check_text(where: str, text: str) -> None:
    if "\x00" in text:
        raise ValueError(f"{where} contains a NUL character, which netCDF truncates; remove it")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{where} is not valid Unicode (lone surrogate); netCDF stores UTF-8") from None


def _is_real_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _check_attr(where: str, key, value) -> None:
    """An attribute value netCDF gives back ``equivalent`` (as :meth:`xarray.Dataset.identical` compares)."""
    _check_name(f"{where} attribute", key)
    if key.startswith("_"):
        raise ValueError(f"{where} attribute {key!r}: names starting with '_' are reserved by netCDF/CF "
                         "(_FillValue, _Unsigned, ...); rename it")
    label = f"{where} attribute {key!r}"
    if isinstance(value, str):
        _check_text(label, value)
        return
    if isinstance(value, (bool, np.bool_)) or value is None or isinstance(value, dict):
        raise TypeError(f"{label} has type {type(value).__name__}, which netCDF cannot store; "
                        "use a str, a number or a 1-D sequence of numbers or of str")
    if isinstance(value, (int, np.integer)):
        if not _INT64[0] <= int(value) <= (2**64 - 1 if isinstance(value, np.unsignedinteger) else _INT64[1]):
            raise ValueError(f"{label} = {value} is outside the 64-bit integer range netCDF stores")
        return
    if isinstance(value, (float, np.floating)):
        if isinstance(value, np.floating) and value.dtype.itemsize not in (4, 8):
            raise TypeError(f"{label} has dtype {value.dtype}; netCDF stores float32 or float64")
        return
    if isinstance(value, np.ndarray):
        if value.ndim > 1 or value.dtype.kind not in "iuf" or value.dtype.itemsize not in (1, 2, 4, 8) \
                or (value.dtype.kind == "f" and value.dtype.itemsize < 4) or value.size == 0:
            raise TypeError(f"{label}: an array attribute must be a non-empty 1-D int or float32/64 array; "
                            f"got shape {value.shape}, dtype {value.dtype}")
        if value.shape == (1,):
            raise ValueError(f"{label}: a 1-item array does not survive netCDF (it comes back as a scalar); "
                             "store the scalar")
        return
    if isinstance(value, (list, tuple)):
        if len(value) < 2:
            raise ValueError(f"{label}: a sequence of {len(value)} item(s) does not survive netCDF "
                             "(it comes back as a scalar); store the scalar or a NumPy array")
        if all(isinstance(v, str) for v in value):
            for v in value:
                _check_text(label, v)
            return
        if all(_is_real_number(v) for v in value):
            kinds = {"f" if isinstance(v, (float, np.floating)) else "i" for v in value}
            if kinds == {"i"}:
                if not all(_INT64[0] <= int(v) <= _INT64[1] for v in value):
                    raise ValueError(f"{label} holds an integer outside the int64 range netCDF stores")
                return
            if any(isinstance(v, (int, np.integer)) and float(v) != v for v in value):
                raise ValueError(f"{label} mixes floats with integers that float64 cannot hold exactly")
            if any(isinstance(v, np.floating) and v.dtype.itemsize < 4 for v in value):
                raise TypeError(f"{label} holds float16 values; use float32 or float64")
            return
        raise TypeError(f"{label}: a sequence attribute must hold only numbers or only str "
                        "(no bool, None, nesting or mixing)")
    raise TypeError(f"{label} has type {type(value).__name__}, which netCDF cannot store")


def _check_writable(ds: xr.Dataset) -> None:
    """Refuse (before anything is written) what would not come back identical."""
    for dim in ds.dims:
        _check_name("dimension", dim)
    for key, value in ds.attrs.items():
        if key in _RESERVED_GLOBAL_ATTRS:
            raise ValueError(f"dataset attribute {key!r} is reserved by eosdyn.io/CF; rename it")
        _check_attr("dataset", key, value)
    for name, var in ds.variables.items():
        _check_name("variable", name)
        where = f"variable {name!r}"
        if name in ds.coords and name not in ds.dims and any(c.isspace() for c in name):
            raise ValueError(f"coordinate name {name!r} contains white space; the CF 'coordinates' "
                             "attribute cannot list it, so it would come back as a data variable")
        kind, size = var.dtype.kind, var.dtype.itemsize
        if kind == "f" and size not in (4, 8) or kind in "iu" and size not in (1, 2, 4, 8) or kind not in "biufUO":
            raise TypeError(f"{where} has dtype {var.dtype}, which eosdyn.to_netcdf cannot store exactly; "
                            "use bool, int, float32/64 or str")
        if kind in "UO":
            values = np.asarray(var.values).ravel()
            if kind == "O" and not all(isinstance(v, str) for v in values):
                raise TypeError(f"{where} has dtype object with non-str items; use str or a numeric dtype")
            for v in values:
                _check_text(f"{where} value", str(v))
        for key, value in var.attrs.items():
            if key in _RESERVED_VAR_ATTRS:
                raise ValueError(f"{where} attribute {key!r} is reserved by eosdyn.io/CF "
                                 f"({'marks boolean variables' if key == _BOOL_ATTR else 'lists coordinates'}); "
                                 "rename it")
            if key == "dtype" and isinstance(value, str) and value == "bool":
                raise ValueError(f"{where} attribute 'dtype' = 'bool' is xarray's boolean marker; rename it")
            _check_attr(where, key, value)


def _encode(ds: xr.Dataset, compress: bool, complevel: int) -> tuple[xr.Dataset, dict]:
    out = ds.copy(deep=False)
    out.attrs = {**ds.attrs, _FORMAT_ATTR: _FORMAT_VERSION}
    encoding: dict[str, dict] = {}
    for name in list(out.variables):
        var = out.variables[name]
        var.encoding = {}  # eosdyn decides the encoding; stale read-back encodings never leak in
        enc: dict = {}
        if var.dtype == bool:
            new = var.astype(np.int8)
            new.attrs = {**var.attrs, _BOOL_ATTR: "bool"}
            if name in out.coords:
                out = out.assign_coords({name: new})
            else:
                out[name] = new
            enc["dtype"] = "i1"
        if var.dtype.kind in "iufb" and compress and var.ndim > 0:
            enc.update(zlib=True, complevel=complevel, shuffle=True)
        if var.dtype.kind == "f" and name not in ds.coords:
            enc["_FillValue"] = np.array(np.nan, dtype=var.dtype)
        elif var.dtype.kind in "fiub":
            enc["_FillValue"] = None  # CF 2.5.1: coordinate variables have no missing values
        if var.dtype.kind in "UO":
            enc["dtype"] = str
        encoding[name] = enc
    return out, encoding


def to_netcdf(ds: xr.Dataset, path: str | os.PathLike, *, compress: bool = True, complevel: int = 4) -> None:
    """Write ``ds`` to a NetCDF-4 file, atomically (temp file + rename), with the umask's permissions.

    Parameters
    ----------
    ds : xarray.Dataset
        Any dataset; eosdyn datasets also pass :func:`eosdyn.check_dataset`.
    path : path-like
        Destination file; an existing file is replaced only once the write succeeded.
    compress : bool, default True
        zlib-compress numeric variables.
    complevel : int, default 4
        zlib level 1-9.

    Raises
    ------
    TypeError
        ``ds`` is not a Dataset, or a variable's dtype or an attribute's type has no exact
        netCDF counterpart (complex, datetime, float16, bool/None/dict attributes, ...).
    ValueError
        ``path`` is empty, a folder, under a file or not writable; ``complevel`` is out of
        range; or something would not come back identical: a NUL character in a string
        value, attribute or name, a name netCDF rewrites, an attribute name starting with
        ``_`` (``_FillValue``, ...), eosdyn's reserved markers (``eosdyn_dtype``,
        ``eosdyn_netcdf``), ``coordinates`` attributes, or a 1-item list attribute.
        Nothing is written then.

    Notes
    -----
    Boolean variables are stored as ``int8`` with the attribute
    ``eosdyn_dtype = "bool"``, so plain netCDF tools see 0/1 while
    :func:`open_dataset` restores ``bool``. The global attribute ``eosdyn_netcdf``
    marks the file: :func:`open_dataset` then applies no CF decoding beyond eosdyn's
    own, so attributes such as ``missing_value``, ``scale_factor`` or time ``units``
    come back as attributes and an int variable stays int.

    Examples
    --------
    >>> import tempfile, pathlib, eosdyn
    >>> ds = eosdyn.toy.linear(lam=0.5, theta0=1.0, steps=3)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "linear.nc"
    >>> eosdyn.to_netcdf(ds, path)
    >>> eosdyn.open_dataset(path).identical(ds)
    True
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"to_netcdf expects an xarray.Dataset, got {type(ds).__name__}")
    if isinstance(complevel, (bool, np.bool_)) or not isinstance(complevel, (int, np.integer)) \
            or not 1 <= int(complevel) <= 9:
        raise ValueError(f"complevel must be an integer in 1..9, got {complevel!r}")
    if not isinstance(compress, (bool, np.bool_)):
        raise TypeError(f"compress must be True or False, got {compress!r}")
    path = _files.check_output_path(path, name="path")
    if "\\" in str(path):
        raise ValueError(f"path {str(path)!r} contains a backslash, which the netCDF library reads as a "
                         "folder separator; rename it")
    _check_writable(ds)
    out, encoding = _encode(ds, bool(compress), int(complevel))
    _files.atomic_write(path, lambda tmp: out.to_netcdf(tmp, engine="netcdf4", format="NETCDF4",
                                                        encoding=encoding))


def _is_bool_storage(var) -> bool:
    """The bool marker is honoured only when consistent: int8 storage holding only 0 and 1."""
    if var.dtype != np.int8:
        return False
    data = var.data
    ok = ((data == 0) | (data == 1)).all()
    return bool(ok.compute() if hasattr(ok, "compute") else ok)


def open_dataset(path: str | os.PathLike, *, chunks=None) -> xr.Dataset:
    """Open a NetCDF file written by :func:`to_netcdf` (or any CF NetCDF file).

    Parameters
    ----------
    path : path-like
        The file.
    chunks : optional
        Passed to :func:`xarray.open_dataset`; ``None`` (default) loads the data
        into memory and closes the file, anything else returns a dask-backed dataset.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a readable NetCDF file (the message names the file).

    Notes
    -----
    A file written by :func:`to_netcdf` (global attribute ``eosdyn_netcdf``) is
    decoded with eosdyn's own encoding only (no CF masking, scaling or time
    decoding). Any other file gets xarray's CF decoding. In both, a variable marked
    ``eosdyn_dtype = "bool"`` becomes ``bool`` only if it is stored as ``int8``
    holding only 0 and 1; otherwise it is returned as stored, marker included.

    Examples
    --------
    >>> import tempfile, pathlib, eosdyn
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "linear.nc"
    >>> eosdyn.to_netcdf(eosdyn.toy.linear(lam=0.5, theta0=1.0, steps=3), path)
    >>> eosdyn.open_dataset(path).theta.values.tolist()
    [1.0, 0.5, 0.25, 0.125]
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such NetCDF file: {path}")
    try:
        import netCDF4

        with netCDF4.Dataset(path) as nc:
            ours = getattr(nc, _FORMAT_ATTR, None) == _FORMAT_VERSION if _FORMAT_ATTR in nc.ncattrs() else False
        kw = dict(mask_and_scale=False, decode_times=False, decode_timedelta=False) if ours else {}
        ds = xr.open_dataset(path, engine="netcdf4", chunks=chunks, **kw)
        if chunks is None:
            ds.load()
            ds.close()
    except (OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"{path} is not a readable NetCDF file ({err})") from None
    if ours:
        ds.attrs.pop(_FORMAT_ATTR, None)
        for var in ds.variables.values():
            if "_FillValue" in var.attrs:  # NaN fill of float variables: encoding, not an attribute
                var.encoding["_FillValue"] = var.attrs.pop("_FillValue")
    restored = {}
    for name, var in ds.variables.items():
        if var.attrs.get(_BOOL_ATTR) == "bool" and _is_bool_storage(var):
            new = var.astype(bool)
            new.attrs = {k: v for k, v in var.attrs.items() if k != _BOOL_ATTR}
            new.encoding = {k: v for k, v in var.encoding.items() if k != "dtype"}
            restored[name] = new
    if restored:
        coords = {k: v for k, v in restored.items() if k in ds.coords}
        data = {k: v for k, v in restored.items() if k not in ds.coords}
        ds = ds.assign(data).assign_coords(coords)
    for name, var in ds.variables.items():
        if var.dtype.kind == "O" and all(isinstance(v, str) for v in np.asarray(var.values).ravel()[:1]):
            if chunks is None:
                ds[name] = var.astype(str) if name not in ds.coords else var
    return ds
