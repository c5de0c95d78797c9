"""Two-step dynamics: x_{t+2} − x_t and the even/odd sub-sequences, by step value.

The edge-of-stability dynamics is a period-two oscillation on top of a slow drift, so the
natural objects are the two-step differences and the even/odd sub-sequences (Section 3.2 of the
paper). Everything here goes by the *value* of the step coordinate, never by position, so
recordings that start at an odd step or use ``record_every = 2`` are handled consistently:

* stride 1 (steps t, t+1, t+2, ...): x_{t+2} − x_t pairs values two positions apart;
* stride 2 (steps t, t+2, ...): consecutive recorded values;
* any recording: the result is labelled at every recorded step t whose t + 2 is also recorded;
  if there is no such t (odd stride > 1, stride 4, ...) a ``ValueError`` names the stride.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr

from ._common import XArray, check_dim, check_nonempty, check_real_data, check_xarray, numeric_vars, step_values

__all__ = ["two_step", "even", "odd"]


def _as_index(idx: np.ndarray):
    """A slice when ``idx`` is an arithmetic progression (keeps numpy views), else the array."""
    if idx.size == 0:
        return idx
    if idx.size == 1:
        return slice(int(idx[0]), int(idx[0]) + 1)
    d = np.diff(idx)
    if np.all(d == d[0]) and d[0] > 0:
        return slice(int(idx[0]), int(idx[-1]) + 1, int(d[0]))
    return idx


def two_step_pairs(steps: np.ndarray, dim: Hashable = "step"):
    """Positions ``(i, j)`` with ``steps[j] == steps[i] + 2`` (as slices when regular).

    Raises ``ValueError`` naming the stride when no recorded step t has t + 2 recorded, and
    naming ``steps`` unless it is a 1-D strictly increasing integer array.

    Examples
    --------
    >>> i, j = two_step_pairs(np.array([0, 1, 2, 3]))
    >>> i, j
    (slice(0, 2, 1), slice(2, 4, 1))
    """
    steps = np.asarray(steps)
    if steps.ndim != 1 or steps.dtype.kind not in "iu":
        raise ValueError(f"steps must be a 1-D array of integer step values; got shape {steps.shape}, "
                         f"dtype {steps.dtype}")
    if steps.size and (steps.max() >= 2**62 or (steps.dtype.kind == "i" and steps.min() <= -2**62)):
        raise ValueError("steps must lie within +-2**62")
    steps = steps.astype(np.int64)
    if steps.size > 1 and not np.all(np.diff(steps) > 0):
        raise ValueError(f"steps (the values along {dim!r}) must be strictly increasing")
    j = np.searchsorted(steps, steps + 2)
    jc = np.minimum(j, steps.size - 1)
    ok = (j < steps.size) & (steps[jc] == steps + 2)
    i = np.flatnonzero(ok)
    if i.size == 0:
        d = np.unique(np.diff(steps)) if steps.size > 1 else np.array([], dtype=np.int64)
        what = (f"stride {int(d[0])}" if d.size == 1 else
                f"irregular strides {d[:5].tolist()}" if d.size else f"only {steps.size} step(s)")
        raise ValueError(f"two-step differences along {dim!r} are impossible: no recorded step t has "
                         f"t + 2 recorded ({what}); record with stride 1 or 2")
    return _as_index(i), _as_index(j[i])


def _pair_views(x: xr.DataArray, dim: Hashable, pairs=None):
    """(x_t, x_{t+2}) as DataArrays labelled at t (both carry x_t's coordinates)."""
    if pairs is None:
        pairs = two_step_pairs(step_values(x, dim), dim)
    i, j = pairs
    base = x.isel({dim: i})
    lead = x.isel({dim: j})
    lead = xr.DataArray(lead.variable, coords=base.coords, name=x.name)
    return base, lead


def two_step(x: XArray, dim: Hashable = "step") -> XArray:
    """Two-step difference x_{t+2} − x_t, labelled at t.

    Parameters
    ----------
    x : xarray.DataArray or xarray.Dataset
        Any array with a step dimension; other dims (any number, any order) are kept. For a
        Dataset, every numeric data variable that has ``dim`` is differenced; the others are
        dropped.
    dim : str, default "step"
        The step dimension. Its coordinate (if any) gives the step values; without one the
        positions 0, 1, 2, ... are used.

    Returns
    -------
    Same type as ``x``
        Labelled at every recorded step t for which t + 2 is recorded, e.g. the input's step
        coordinate minus its last two values for stride 1, minus its last value for stride 2.
        Dask-backed inputs stay lazy.

    Raises
    ------
    ValueError
        If ``dim`` is not a dimension of ``x``, its coordinate is not strictly increasing, or no
        recorded step t has t + 2 recorded (the message names the stride).
    TypeError
        If ``x`` (or a Dataset variable with ``dim``) holds complex or non-numeric values.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> x = xr.DataArray(np.array([1.0, 3.0, 2.0, 4.0, 3.0]), dims="step",
    ...                  coords={"step": np.arange(5)})
    >>> two_step(x).values
    array([1., 1., 1.])
    >>> two_step(x).step.values
    array([0, 1, 2])
    """
    check_xarray(x)
    check_dim(x, dim)
    check_real_data(x, "x", dim, kinds="iuf")
    pairs = two_step_pairs(step_values(x, dim), dim)
    if isinstance(x, xr.Dataset):
        names = numeric_vars(x, dim)
        if not names:
            raise ValueError(f"the dataset has no numeric variable with dim {dim!r} to difference")
        return xr.Dataset({k: two_step(x[k], dim) for k in names}, attrs=dict(x.attrs))
    base, lead = _pair_views(x, dim, pairs)
    out = lead - base.variable
    out.attrs = {"long_name": f"two-step difference x(t+2) - x(t) of {x.attrs.get('long_name', x.name)}",
                 "units": x.attrs.get("units", "1")}
    return out


def _parity(x: XArray, dim: Hashable, parity: int) -> XArray:
    check_xarray(x)
    check_dim(x, dim)
    check_real_data(x, "x", dim)
    check_nonempty(x, dim, "even" if parity == 0 else "odd")
    steps = step_values(x, dim)
    idx = np.flatnonzero(steps % 2 == parity)
    if idx.size == 0:
        raise ValueError(f"no {'even' if parity == 0 else 'odd'} step values along {dim!r} "
                         f"(recorded steps start at {steps[0]} with stride "
                         f"{int(steps[1] - steps[0]) if steps.size > 1 else 'n/a'})")
    return x.isel({dim: _as_index(idx)})


def even(x: XArray, dim: Hashable = "step") -> XArray:
    """The values at even step values (by the step coordinate, not by position).

    Raises ``ValueError`` naming ``dim`` if it is missing, empty, has a non-increasing coordinate
    or no even step value; ``TypeError`` naming ``x`` for complex or non-numeric data.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> x = xr.DataArray(np.arange(5.0), dims="step", coords={"step": np.arange(1, 6)})
    >>> even(x).step.values
    array([2, 4])
    """
    return _parity(x, dim, 0)


def odd(x: XArray, dim: Hashable = "step") -> XArray:
    """The values at odd step values (by the step coordinate, not by position).

    Raises ``ValueError`` naming ``dim`` if it is missing, empty, has a non-increasing coordinate
    or no odd step value; ``TypeError`` naming ``x`` for complex or non-numeric data.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> x = xr.DataArray(np.arange(5.0), dims="step", coords={"step": np.arange(1, 6)})
    >>> odd(x).step.values
    array([1, 3, 5])
    """
    return _parity(x, dim, 1)
