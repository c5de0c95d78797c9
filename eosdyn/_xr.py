"""Lifting array functions over labelled dims: the one helper every module uses.

Examples
--------
>>> import numpy as np, xarray as xr
>>> x = xr.DataArray(np.arange(6.0).reshape(2, 3), dims=("seed", "step"))
>>> lift(lambda a: a.sum(-1), x, core_dims=[["step"]], out_core_dims=[[]], out_dtypes=[float]).values
array([ 3., 12.])
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import xarray as xr

__all__ = ["lift"]


def lift(func: Callable, *args, core_dims: Sequence[Sequence[Hashable]],
         out_core_dims: Sequence[Sequence[Hashable]], out_dtypes: Sequence, out_sizes=None,
         kwargs=None) -> tuple[xr.DataArray, ...] | xr.DataArray:
    """``xr.apply_ufunc`` with ``vectorize=False`` and ``dask="parallelized"``.

    ``func`` receives plain arrays whose core dims (``core_dims``, one list per argument) come
    last, broadcast over every other dim; it returns one array per entry of ``out_core_dims``.
    Dask-backed inputs stay lazy (chunks along the core dims are merged, the other dims keep
    theirs), and the result is the same for any chunking when ``func`` treats rows independently.
    Arguments that are not xarray objects (numbers, NumPy arrays) are broadcast as scalars or
    as arrays whose dims are the core dims given.
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
