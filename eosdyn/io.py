"""NetCDF export with an exact round trip.

:func:`to_netcdf` writes with the netCDF4 engine (zlib compression on) and
:func:`open_dataset` reads back a dataset that is ``identical`` to what was
written: values (NaN included), dtypes (boolean flags included), coordinates and
attributes.

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

import os
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

_BOOL_ATTR = "eosdyn_dtype"


def _encode(ds: xr.Dataset, compress: bool, complevel: int) -> tuple[xr.Dataset, dict]:
    out = ds.copy(deep=False)
    encoding: dict[str, dict] = {}
    for name, var in out.variables.items():
        enc: dict = {}
        if var.dtype == bool:
            new = var.astype(np.int8)
            new.attrs = dict(var.attrs)
            new.attrs[_BOOL_ATTR] = "bool"
            out[name] = new if name not in out.coords else new
            if name in out.coords:
                out = out.assign_coords({name: new})
            enc["dtype"] = "i1"
        if var.dtype.kind in "iufb" and compress and var.ndim > 0:
            enc.update(zlib=True, complevel=complevel, shuffle=True)
        if var.dtype.kind == "f" and name not in ds.coords:
            enc["_FillValue"] = np.array(np.nan, dtype=var.dtype)
        elif var.dtype.kind == "f":
            enc["_FillValue"] = None  # CF 2.5.1: coordinate variables have no missing values
        elif var.dtype.kind in "iub":
            enc["_FillValue"] = None
        if var.dtype.kind == "U":
            enc["dtype"] = str
        encoding[name] = enc
    return out, encoding


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def to_netcdf(ds: xr.Dataset, path: str | os.PathLike, *, compress: bool = True, complevel: int = 4) -> None:
    """Write ``ds`` to a NetCDF-4 file, atomically (temp file + rename).

    Parameters
    ----------
    ds : xarray.Dataset
        Any dataset; eosdyn datasets also pass :func:`eosdyn.check_dataset`.
    path : path-like
        Destination; an existing file is replaced only once the write succeeded.
    compress : bool, default True
        zlib-compress numeric variables.
    complevel : int, default 4
        zlib level 1-9.

    Notes
    -----
    Boolean variables are stored as ``int8`` with the attribute
    ``eosdyn_dtype = "bool"`` (and xarray's own ``dtype`` marker), so plain netCDF
    tools see 0/1 while :func:`open_dataset` restores ``bool``.
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"to_netcdf expects an xarray.Dataset, got {type(ds).__name__}")
    if not 1 <= int(complevel) <= 9:
        raise ValueError(f"complevel must be in 1..9, got {complevel}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out, encoding = _encode(ds, compress, int(complevel))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        out.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; use the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such NetCDF file: {path}")
    try:
        ds = xr.open_dataset(path, engine="netcdf4", chunks=chunks)
    except (OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"{path} is not a readable NetCDF file ({err})") from None
    if chunks is None:
        ds.load()
        ds.close()
    restored = {}
    for name, var in ds.variables.items():
        if var.attrs.get(_BOOL_ATTR) == "bool":
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
