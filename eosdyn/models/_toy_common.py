"""Shared plumbing of the toy simulations: option checks, grids with a trailing vector dim,
fates, the two-pass stop-on-convergence protocol and dataset assembly.

Nothing here knows a map formula: formulas live in :mod:`eosdyn.kernels.maps`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from .._validate import Grid, check_dtype, check_int, check_memory, check_range, make_grid
from .._validate import check_times as _check_times
from ..conventions import encode_status, label

#: divergence thresholds (``thr``, overflow ``scale``) per dtype: |z̃| or |T| ≥ thr is divergence.
#: thr · scale = 2^(emax+1), so ``x * scale`` overflows exactly when |x| ≥ thr.
THRESHOLDS = {
    np.dtype(np.float64): (2.0 ** 498, 2.0 ** 526),  # thr ≈ 8.2e149
    np.dtype(np.float32): (2.0 ** 64, 2.0 ** 64),    # thr ≈ 1.8e19
}


def alias_module(public: str, module_name: str) -> None:
    """Make ``public`` (e.g. ``"eosdyn.toy"``) importable as an alias of an already imported module."""
    sys.modules.setdefault(public, sys.modules[module_name])


def check_options(*, steps, record_every, stop_on_convergence, tol, dtype):
    """Validate the options shared by every GD map. Returns ``(steps, every, stop, tol, dtype)``.

    ``every`` is 0 when ``record_every`` is None (record only the initial and final state).
    """
    steps = check_int("steps", steps, 0, MAX_STEPS)
    if record_every is None:
        every = 0
    else:
        every = check_int("record_every", record_every, 1, MAX_STEPS)
    if not isinstance(stop_on_convergence, (bool, np.bool_)):
        raise ValueError(f"stop_on_convergence must be True or False; got {stop_on_convergence!r}")
    if isinstance(tol, (bool, np.bool_)):
        raise ValueError(f"tol must be a real number in (0, inf); got {tol!r}")
    check_range("tol", tol, 0.0, None, lo_open=True)
    dt = check_dtype(dtype)
    representable("tol", np.asarray(tol, dtype=np.float64), dt)
    return steps, every, bool(stop_on_convergence), float(tol), dt


#: most GD steps one call may request (int64 counters with headroom)
MAX_STEPS = 2**62
#: most member-steps (members × steps) one call may request: beyond it a call would run for hours
MAX_WORK = 10**13


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
        return arr
    with np.errstate(over="ignore", under="ignore"):
        out = arr.astype(dt)
    bad = (np.isfinite(arr) & ~np.isfinite(out)) | ((arr != 0) & (out == 0))
    if bad.any():
        fi = np.finfo(dt)
        raise ValueError(f"{name} is not representable in {dt.name}: |values| must be 0 or in "
                         f"[{float(fi.smallest_subnormal):.3g}, {float(fi.max):.3g}]; got "
                         f"{float(arr[bad].ravel()[0])!r}")
    return out


def check_times(times) -> np.ndarray:
    """Validate gradient-flow sample times (:func:`eosdyn._validate.check_times`)."""
    return _check_times(times)


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


def as_float(value: Any) -> Any:
    """Cast a parameter (scalar, array-like or DataArray) to float64 without changing its shape kind."""
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


def grid_of(params: Mapping[str, Any], vdim: str | None = None) -> tuple[Grid, tuple[str, ...], tuple[int, ...]]:
    """``make_grid`` over ``params``; returns the grid plus the batch dims/shape (without ``vdim``)."""
    grid = make_grid(**{k: as_float(v) for k, v in params.items()})
    bdims = tuple(d for d in grid.dims if d != vdim)
    bshape = tuple(grid.shape[grid.dims.index(d)] for d in bdims)
    return grid, bdims, bshape


def flat(da: xr.DataArray, bdims: tuple[str, ...], bshape: tuple[int, ...],
         vdim: str | None = None, dtype=np.float64) -> np.ndarray:
    """Broadcast ``da`` over the batch dims; returns (n,) or, with ``vdim``, (n, len(vdim))."""
    own = [d for d in bdims if d in da.dims]
    order = own + ([vdim] if vdim is not None else [])
    arr = da.transpose(*order).values
    shape = [da.sizes[d] if d in da.dims else 1 for d in bdims]
    full = tuple(bshape)
    if vdim is not None:
        shape.append(da.sizes[vdim])
        full = full + (da.sizes[vdim],)
    arr = np.broadcast_to(arr.reshape(shape), full)
    n = int(np.prod(bshape, dtype=np.int64))
    return np.ascontiguousarray(arr.reshape((n,) + full[len(bshape):]), dtype=dtype)


def param_coords(grid: Grid, names: list[str]) -> dict[str, Any]:
    """Coordinates for the parameters: index coords for 1-D arrays, labelled coords for
    DataArrays, 0-d coords for scalars."""
    coords: dict[str, Any] = {}
    for cname, c in grid.coords.items():
        coords[cname] = c
    for name in names:
        if name not in grid.arrays:
            continue
        da = grid.arrays[name]
        if name in grid.dims:
            continue
        coords[name] = xr.Variable(da.dims, np.asarray(da.values, dtype=np.float64))
    return coords


def stop_step(fate_kernel: Callable[[], tuple[np.ndarray, np.ndarray]], steps: int) -> int:
    """Number of steps a stop-on-convergence batch runs: the last first-fate step of its members.

    ``fate_kernel()`` runs the kernel with ``stop_when_fated`` and returns ``(div_at, conv_at)``.
    """
    div_at, conv_at = fate_kernel()
    fate = np.where(div_at >= 0, div_at, conv_at)
    if fate.size == 0 or np.any(fate < 0):
        return steps
    return int(fate.max())


def step_coord(nsteps: int, every: int) -> np.ndarray:
    """Recorded steps: 0, every, 2·every, ... ≤ nsteps (``every`` = 0: ``[0, nsteps]``)."""
    if every == 0:
        return np.array([0, nsteps] if nsteps > 0 else [0], dtype=np.int64)
    return np.arange(0, nsteps + 1, every, dtype=np.int64)


def with_final(rec0: np.ndarray, final: np.ndarray, nsteps: int) -> np.ndarray:
    """Record array for ``every`` = 0: the initial state and (if nsteps > 0) the final one."""
    if nsteps == 0:
        return rec0[:, None, ...]
    return np.stack([rec0, final], axis=1)


def mask_diverged(rec: np.ndarray, steps: np.ndarray, div_at: np.ndarray) -> None:
    """Set recorded states after the divergence step to NaN (in place); ``rec`` is (n, R, ...)."""
    after = (div_at[:, None] >= 0) & (steps[None, :] > div_at[:, None])
    rec[after] = np.nan


def fates(div_at: np.ndarray, conv_at: np.ndarray, nsteps: int) -> dict[str, np.ndarray]:
    """The fate variables: ``diverged``, ``diverged_at``, ``converged_at``, ``steps_taken``, ``status``."""
    diverged = div_at >= 0
    status = np.where(diverged, "diverged", np.where(conv_at >= 0, "converged", "max_steps"))
    return {
        "diverged": diverged,
        "diverged_at": div_at.astype(np.int64),
        "converged_at": conv_at.astype(np.int64),
        "steps_taken": np.where(diverged, div_at, nsteps).astype(np.int64),
        "status": encode_status(status),
    }


def build_dataset(*, bdims, bshape, coords, trajectories: Mapping[str, tuple[np.ndarray, tuple[str, ...]]],
                  per_member: Mapping[str, tuple[np.ndarray, tuple[str, ...]]], steps: np.ndarray | None,
                  time: np.ndarray | None = None, model: str, title: str, equations: str,
                  function: str, parameters: Mapping[str, Any], attrs: Mapping[str, Any] | None = None,
                  extra_vars: Mapping[str, xr.Variable] | None = None) -> xr.Dataset:
    """Assemble and label a toy dataset from flat kernel outputs.

    ``trajectories``: name -> (array (n, R, *trail), trail dims) put on ``bdims + (step|time,) + trail``;
    ``per_member``: name -> (array (n, *trail), trail dims) put on ``bdims + trail``.
    """
    tdim = "step" if steps is not None else "time"
    tvals = steps if steps is not None else time
    data = {}
    for name, (arr, trail) in trajectories.items():
        data[name] = (bdims + (tdim,) + tuple(trail), arr.reshape(tuple(bshape) + arr.shape[1:]))
    for name, (arr, trail) in per_member.items():
        data[name] = (bdims + tuple(trail), arr.reshape(tuple(bshape) + arr.shape[1:]))
    all_coords = dict(coords)
    all_coords[tdim] = (tdim, tvals)
    ds = xr.Dataset(data, coords=all_coords)
    if extra_vars:
        for k, v in extra_vars.items():
            ds[k] = v
    return label(ds, model=model, title=title, equations=equations,
                 config={"function": function, "parameters": dict(parameters)}, attrs=attrs)
