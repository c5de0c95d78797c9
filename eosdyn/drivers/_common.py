"""What every driver shares: option checks, labelled grids (with a trailing vector dim), the
dtype defaults of the fate thresholds, and dataset assembly (labels, roles, provenance).

Nothing here knows a map formula (those live in :mod:`eosdyn.kernels.maps`) or a stop
protocol (:mod:`eosdyn.drivers._protocol`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from .._validate import Grid, check_gd_options, check_memory, check_range, make_grid
from ..conventions import label, set_roles
from ..systems import System

#: default ``diverge_loss`` per dtype (``diverge_loss=None``)
DIVERGE_LOSS = {np.dtype(np.float64): 1e200, np.dtype(np.float32): 1e30}
#: second divergence test of the maps: ``|T| ≥`` this guard (a power of two: an overflow test)
SHARPNESS_GUARD = {np.dtype(np.float64): 2.0 ** 498, np.dtype(np.float32): 2.0 ** 64}
#: default ``tol`` of the toy maps: ½ (1e-13)², i.e. ``|z̃| < 1e-13``
TOL = 5e-27
#: most GD steps one call may request (int64 counters with headroom)
MAX_STEPS = 2**62
#: most member-steps (members × steps) one call may request: beyond it a call would run for hours
MAX_WORK = 10**13


def dtype_name(dtype):
    """``dtype`` as a JSON-friendly name for the provenance (left as given if it is no dtype;
    the option check then reports it)."""
    try:
        return np.dtype(dtype).name
    except TypeError:
        return dtype


def gd_options(*, steps, record_every, stop, tol, diverge_loss, dtype):
    """:func:`eosdyn._validate.check_gd_options` with ``diverge_loss=None`` = the dtype default.

    Returns ``(steps, every, stop, tol, diverge_loss, dtype)``.
    """
    from .._validate import check_dtype

    dt = check_dtype(dtype)
    dl = DIVERGE_LOSS[dt] if diverge_loss is None else diverge_loss
    return check_gd_options(steps=steps, record_every=record_every, stop=stop, tol=tol, diverge_loss=dl,
                            dtype=dt, max_steps=MAX_STEPS)


def check_work(n: int, steps: int, every: int, row_bytes: int) -> None:
    """Refuse, before any allocation, a run whose recorded output (``n`` members × recorded
    steps × ``row_bytes`` per member and step) exceeds the memory limit, or whose work
    (``n`` × ``steps``) exceeds :data:`MAX_WORK`; both ``ValueError`` naming ``steps``."""
    R = steps // every + 1 if every else 2
    check_memory("steps", n * R * row_bytes, what=f"the recorded output ({n} members x {R} recorded steps)")
    if n * steps > MAX_WORK:
        raise ValueError(f"steps: {n} members x {steps} steps = {n * steps:.3g} member-steps is above the "
                         f"limit of {MAX_WORK:.0e}; reduce steps or the grid")


def representable(name: str, values, dt: np.dtype):
    """``values`` (float64 array) cast to ``dt``; ``ValueError`` naming ``name`` if a finite value
    overflows to inf or a non-zero value underflows to 0 (only possible for float32)."""
    arr = np.asarray(values, dtype=np.float64)
    if dt == np.float64:
        return np.ascontiguousarray(arr)
    with np.errstate(over="ignore", under="ignore"):
        out = arr.astype(dt)
    bad = (np.isfinite(arr) & ~np.isfinite(out)) | ((arr != 0) & (out == 0))
    if bad.any():
        fi = np.finfo(dt)
        raise ValueError(f"{name} is not representable in {dt.name}: |values| must be 0 or in "
                         f"[{float(fi.smallest_subnormal):.3g}, {float(fi.max):.3g}]; got "
                         f"{float(arr[bad].ravel()[0])!r}")
    return np.ascontiguousarray(out)


def as_vector(name: str, value: Any, vdim: str, *, extra_dim: str | None = None) -> xr.DataArray:
    """A parameter that is a vector along ``vdim`` (1-D array), a stack of vectors
    (2-D array: ``(extra_dim, vdim)``) or a DataArray that has ``vdim``; float64."""
    if isinstance(value, xr.DataArray):
        if vdim not in value.dims:
            raise ValueError(f"{name} as a DataArray must have a {vdim!r} dim; got dims {value.dims}")
        da = value
    else:
        arr = np.asarray(value)
        if arr.dtype.kind not in "iuf":
            raise ValueError(f"{name} must be an array of real numbers; got {value!r}")
        if arr.ndim == 1 and arr.size:
            da = xr.DataArray(arr, dims=[vdim])
        elif arr.ndim == 2 and extra_dim is not None and arr.size:
            da = xr.DataArray(arr, dims=[extra_dim, vdim])
        else:
            shape = f"1-D (along {vdim!r})" + (f" or 2-D ({extra_dim!r}, {vdim!r})" if extra_dim else "")
            raise ValueError(f"{name} must be a non-empty {shape} array or a DataArray with a "
                             f"{vdim!r} dim; got shape {arr.shape}")
    if da.dtype.kind not in "iuf":
        raise ValueError(f"{name} must contain real numbers")
    check_range(name, da)
    return da.astype(np.float64)


def _as_float(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, xr.DataArray):
        if value.dtype.kind not in "iuf":
            raise ValueError(f"{value.name} must be numeric")
        return value.astype(np.float64)
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        return value  # make_grid raises the proper error
    return arr.astype(np.float64) if arr.ndim else float(arr)


class Members:
    """The members of a run: a broadcast grid of the parameters, minus a trailing vector dim.

    ``flat(name)`` gives a parameter per member, ``(n,)`` or ``(n, len(vdim))``; ``shape``/``dims``
    are the member dims (one per array-valued parameter, in signature order).
    """

    def __init__(self, params: Mapping[str, Any], vdim: str | None = None):
        self.grid: Grid = make_grid(**{k: _as_float(v) for k, v in params.items()})
        self.vdim = vdim
        self.dims = tuple(d for d in self.grid.dims if d != vdim)
        self.shape = tuple(self.grid.shape[self.grid.dims.index(d)] for d in self.dims)
        self.n = int(np.prod(self.shape, dtype=np.int64))

    def flat(self, name: str, vector: bool = False) -> np.ndarray:
        da = self.grid.arrays[name]
        vd = self.vdim if vector else None
        order = [d for d in self.dims if d in da.dims] + ([vd] if vd else [])
        shape = [da.sizes[d] if d in da.dims else 1 for d in self.dims]
        full = tuple(self.shape)
        if vd:
            shape.append(da.sizes[vd])
            full = full + (da.sizes[vd],)
        arr = np.broadcast_to(da.transpose(*order).values.reshape(shape), full)
        return np.ascontiguousarray(arr.reshape((self.n,) + full[len(self.shape):]), dtype=np.float64)

    def coords(self, names) -> dict[str, Any]:
        """Coordinates of the parameters: dims for 1-D arrays, labelled coords for DataArrays,
        0-d coords for scalars."""
        coords: dict[str, Any] = dict(self.grid.coords)
        for name in names:
            if name in self.grid.arrays and name not in self.grid.dims:
                da = self.grid.arrays[name]
                coords[name] = xr.Variable(da.dims, np.asarray(da.values, dtype=np.float64))
        return coords

    def member_variable(self, arr: np.ndarray, trail: tuple[str, ...] = ()) -> xr.Variable:
        """A flat per-member array (n, ...) as a variable on the member dims."""
        return xr.Variable(self.dims + tuple(trail), arr.reshape(tuple(self.shape) + arr.shape[1:]))


def assemble(record: System, members: Members, *, coords, axis: str, axis_values: np.ndarray,
             trajectories: Mapping[str, tuple[np.ndarray, tuple[str, ...]]],
             per_member: Mapping[str, tuple[np.ndarray, tuple[str, ...]]], parameters: Mapping[str, Any],
             attrs: Mapping[str, Any], extra_vars: Mapping[str, xr.Variable] | None = None,
             var_attrs: Mapping[str, Mapping[str, str]] | None = None) -> xr.Dataset:
    """The labelled dataset of a run: ``trajectories`` (n, R, *trail) on member dims + ``axis``
    + trail, ``per_member`` (n, *trail) on member dims + trail; roles, provenance and title from
    the system ``record``."""
    data = {}
    for name, (arr, trail) in trajectories.items():
        data[name] = xr.Variable(members.dims + (axis,) + tuple(trail),
                                 arr.reshape(tuple(members.shape) + arr.shape[1:]))
    for name, (arr, trail) in per_member.items():
        data[name] = members.member_variable(arr, trail)
    ds = xr.Dataset(data, coords={**coords, axis: (axis, axis_values)})
    for k, v in (extra_vars or {}).items():
        ds[k] = v
    for k, a in (var_attrs or {}).items():
        if k in ds.variables:
            ds[k].attrs.update(a)
    set_roles(ds, **dict(record.roles))
    return label(ds, model=record.name.rpartition(".")[2], title=record.title, equations=record.equations,
                 config={"function": record.name, "parameters": dict(parameters)}, attrs=attrs)
