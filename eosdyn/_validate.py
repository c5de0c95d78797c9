"""Input validation and parameter grids shared by all simulations.

Every public simulation builds its grid with :func:`make_grid`: each argument
may be a scalar (kept as an attribute), a 1-D array (becomes a dim named after
the argument, with the values as coordinate) or an :class:`xarray.DataArray`
(its own dims are used, so paired initial conditions can share e.g. an
``init`` dim). All dims broadcast against each other.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr


def _fmt_interval(lo, hi, lo_open, hi_open) -> str:
    left = "(" if (lo_open or lo is None) else "["
    right = ")" if (hi_open or hi is None) else "]"
    lo_s = "-inf" if lo is None else f"{lo:g}"
    hi_s = "inf" if hi is None else f"{hi:g}"
    return f"{left}{lo_s}, {hi_s}{right}"


def check_range(name: str, value, lo=None, hi=None, *, lo_open=False, hi_open=False, finite=True):
    """Raise ``ValueError`` naming ``name`` unless every value lies in the interval.

    Examples
    --------
    >>> check_range("eta", -1.0, 0, None, lo_open=True)
    Traceback (most recent call last):
    ...
    ValueError: eta must be finite and in (0, inf); got -1.0
    """
    arr = np.asarray(value.values if isinstance(value, xr.DataArray) else value)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be a real number or array of real numbers; got {value!r}")
    arr = arr.astype(float)
    ok = np.ones(arr.shape, bool)
    if finite:
        ok &= np.isfinite(arr)
    else:
        ok &= ~np.isnan(arr)
    if lo is not None:
        ok &= (arr > lo) if lo_open else (arr >= lo)
    if hi is not None:
        ok &= (arr < hi) if hi_open else (arr <= hi)
    if not ok.all():
        bad = float(arr[~ok].ravel()[0])
        what = "finite and in" if finite else "in"
        raise ValueError(f"{name} must be {what} {_fmt_interval(lo, hi, lo_open, hi_open)}; got {bad!r}")
    return value


def check_int(name: str, value, lo: int | None = None, hi: int | None = None) -> int:
    """Return ``value`` as ``int`` or raise ``ValueError`` naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral,)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be an integer; got {value!r}")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{name} must be an integer in [{'-inf' if lo is None else lo}, "
                         f"{'inf' if hi is None else hi}]; got {value}")
    return value


def check_dtype(dtype) -> np.dtype:
    """Only float64 (default) and float32 are supported."""
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype must be float64 or float32; got {dt}")
    return dt


def _as_dataarray(name: str, value: Any) -> xr.DataArray:
    if isinstance(value, xr.DataArray):
        da = value
        if da.ndim and not np.issubdtype(da.dtype, np.number):
            raise ValueError(f"{name} must be numeric")
        return da.rename(name)
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "iufb":
        raise ValueError(f"{name} must be a number or a 1-D array of numbers; got {value!r}")
    if arr.ndim == 0:
        return xr.DataArray(arr, name=name)
    if arr.ndim == 1:
        if arr.size == 0:
            raise ValueError(f"{name} must not be an empty array")
        return xr.DataArray(arr, dims=[name], coords={name: arr}, name=name)
    raise ValueError(f"{name} must be a scalar, a 1-D array or an xarray.DataArray; got an array of shape {arr.shape}")


@dataclass
class Grid:
    """A broadcast grid of parameters: labelled dims plus flat, contiguous arrays."""

    dims: tuple[str, ...]
    shape: tuple[int, ...]
    coords: dict[str, xr.DataArray]
    arrays: dict[str, xr.DataArray] = field(repr=False)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def flat(self, name: str, dtype=np.float64) -> np.ndarray:
        """The parameter ``name`` broadcast to the grid, as a contiguous 1-D array."""
        da = self.arrays[name]
        return np.ascontiguousarray(
            np.broadcast_to(da.transpose(*[d for d in self.dims if d in da.dims]).values
                            .reshape([da.sizes[d] if d in da.dims else 1 for d in self.dims]),
                            self.shape).ravel(), dtype=dtype)

    def unflatten(self, arr: np.ndarray, trailing: tuple[str, ...] = ()) -> tuple[tuple[str, ...], np.ndarray]:
        """Reshape a flat result (grid points first) into ``(dims + trailing, array)``."""
        extra = arr.shape[1:]
        return self.dims + tuple(trailing), arr.reshape(self.shape + extra)

    def scalars(self) -> dict[str, float]:
        """Parameters that were given as scalars."""
        return {k: v.item() for k, v in self.arrays.items() if v.ndim == 0}


def make_grid(**params: Any) -> Grid:
    """Broadcast simulation parameters into a labelled grid.

    Examples
    --------
    >>> g = make_grid(eps=[0.1, 0.2], z0=0.5, T0=[1.0, 1.5, 1.9])
    >>> g.dims, g.shape
    (('eps', 'T0'), (2, 3))
    >>> g.flat("z0").shape
    (6,)
    """
    das = {k: _as_dataarray(k, v) for k, v in params.items() if v is not None}
    sizes: dict[str, int] = {}
    owner: dict[str, str] = {}
    for name, da in das.items():
        for dim, n in da.sizes.items():
            if dim in sizes and sizes[dim] != n:
                raise ValueError(
                    f"mismatched array shapes: {name} has {n} values along dim {dim!r} "
                    f"but {owner[dim]} has {sizes[dim]}")
            sizes.setdefault(dim, n)
            owner.setdefault(dim, name)
    dims = tuple(sizes)
    coords: dict[str, xr.DataArray] = {}
    for da in das.values():
        for cname, c in da.coords.items():
            if cname in coords and not np.array_equal(np.asarray(coords[cname].values), np.asarray(c.values)):
                raise ValueError(f"mismatched coordinates {cname!r} between parameters")
            coords.setdefault(cname, c.variable if cname in c.dims else c)
    shape = tuple(sizes[d] for d in dims)
    return Grid(dims=dims, shape=shape, coords=coords, arrays=das)
