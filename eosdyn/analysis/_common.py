"""Input checks and the ``apply_ufunc`` lifting shared by every analysis.

Everything here is plumbing: the analyses themselves live in
:mod:`~eosdyn.analysis.twostep`, :mod:`~eosdyn.analysis.coords`,
:mod:`~eosdyn.analysis.fits`, :mod:`~eosdyn.analysis.stats` and
:mod:`~eosdyn.analysis.orbits`; their array cores in
:mod:`~eosdyn.analysis._kernels`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np
import xarray as xr

from ..conventions import set_variable_attrs

XArray = xr.DataArray | xr.Dataset


def check_xarray(x, name: str = "x") -> XArray:
    """Refuse anything that is not an xarray object (with a ValueError naming it)."""
    if not isinstance(x, (xr.DataArray, xr.Dataset)):
        raise ValueError(f"{name} must be an xarray.DataArray or xarray.Dataset; got {type(x).__name__}")
    return x


def check_dim(x: XArray, dim: Hashable, name: str = "dim") -> Hashable:
    """Raise ``ValueError`` naming ``dim`` unless it is a dimension of ``x``."""
    check_xarray(x)
    if not isinstance(dim, Hashable) or dim not in x.dims:
        raise ValueError(f"{name}={dim!r} is not a dimension of the input; it has dims {tuple(x.dims)}")
    return dim


def check_dims(x: XArray, dims, name: str = "dim") -> tuple[Hashable, ...]:
    """Normalise ``dims`` (a name or a sequence of names) and check each one exists."""
    if isinstance(dims, str) or not isinstance(dims, Sequence):
        dims = (dims,)
    dims = tuple(dims)
    if not dims:
        raise ValueError(f"{name} must name at least one dimension")
    if len(set(dims)) != len(dims):
        raise ValueError(f"{name}={dims!r} repeats a dimension")
    for d in dims:
        check_dim(x, d, name)
    return dims


def step_values(x: XArray, dim: Hashable) -> np.ndarray:
    """The step values along ``dim`` as int64: its coordinate, or 0..n-1 if it has none.

    Raises ``ValueError`` if the coordinate is not integer-valued or not strictly increasing.
    """
    check_dim(x, dim)
    n = x.sizes[dim]
    if dim not in x.coords:
        return np.arange(n, dtype=np.int64)
    vals = np.asarray(x[dim].values)
    if vals.dtype.kind == "f" and np.all(np.isfinite(vals)) and np.all(vals == np.round(vals)):
        vals = vals.astype(np.int64)
    if vals.dtype.kind not in "iu":
        raise ValueError(f"coordinate {dim!r} must hold integer step values; got dtype {vals.dtype}")
    vals = vals.astype(np.int64)
    if vals.size > 1 and not np.all(np.diff(vals) > 0):
        raise ValueError(f"coordinate {dim!r} must be strictly increasing")
    return vals


def regular_stride(steps: np.ndarray, dim: Hashable, what: str) -> int:
    """The common spacing of ``steps``; ``ValueError`` naming ``dim`` if irregular."""
    if steps.size < 2:
        raise ValueError(f"{what} needs at least 2 values along {dim!r}; got {steps.size}")
    d = np.diff(steps)
    if not np.all(d == d[0]):
        raise ValueError(f"{what} needs a regular stride along {dim!r}; got irregular steps "
                         f"(strides {np.unique(d)[:5].tolist()})")
    return int(d[0])


def numeric_vars(ds: xr.Dataset, dim: Hashable, kinds: str = "iuf") -> list[Hashable]:
    """Data variables of ``ds`` that have ``dim`` and a numeric dtype."""
    return [k for k, v in ds.data_vars.items() if dim in v.dims and v.dtype.kind in kinds]


def float_dtype(dtype) -> np.dtype:
    """float32 stays float32, everything else computes in float64."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float32 else np.dtype(np.float64)


def lift(func: Callable, *args: xr.DataArray, core_dims: Sequence[Sequence[Hashable]],
         out_core_dims: Sequence[Sequence[Hashable]], out_dtypes: Sequence, out_sizes=None,
         kwargs=None) -> tuple[xr.DataArray, ...] | xr.DataArray:
    """``xr.apply_ufunc`` with ``vectorize=False`` and ``dask="parallelized"``.

    The core dims go last (as the kernels expect); dask inputs stay lazy (chunks along the core
    dims are merged, the other dims keep theirs).
    """
    nout = len(out_core_dims)
    res = xr.apply_ufunc(
        func, *args,
        input_core_dims=[list(c) for c in core_dims],
        output_core_dims=[list(c) for c in out_core_dims],
        vectorize=False,
        dask="parallelized",
        output_dtypes=list(out_dtypes),
        dask_gufunc_kwargs={"allow_rechunk": True, "output_sizes": dict(out_sizes or {})},
        kwargs=dict(kwargs or {}),
        keep_attrs=False,
    )
    return res if nout > 1 else res


def flat_rows(a: np.ndarray, ncore: int = 1) -> tuple[np.ndarray, tuple[int, ...]]:
    """Reshape ``(..., core...)`` into ``(rows, core...)``; return it and the leading shape."""
    lead = a.shape[: a.ndim - ncore]
    rows = int(np.prod(lead, dtype=np.int64)) if lead else 1
    return a.reshape((rows,) + a.shape[a.ndim - ncore:]), lead


def attach(da: xr.DataArray, name: str, long_name: str | None = None, units: str = "1") -> xr.DataArray:
    """Name a result and give it CF ``long_name``/``units`` (from VARIABLES when known)."""
    da = da.rename(name)
    if long_name is not None:
        da.attrs["long_name"] = long_name
        da.attrs["units"] = units
    set_variable_attrs(da, name)
    return da
