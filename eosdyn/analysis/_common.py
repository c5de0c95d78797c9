"""Input checks and the ``apply_ufunc`` lifting shared by every analysis.

Everything here is plumbing: the analyses themselves live in
:mod:`~eosdyn.analysis.twostep`, :mod:`~eosdyn.analysis.coords`,
:mod:`~eosdyn.analysis.fits`, :mod:`~eosdyn.analysis.stats` and
:mod:`~eosdyn.analysis.orbits`; their array cores in
:mod:`~eosdyn.analysis._kernels`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Hashable, Sequence

import numpy as np
import xarray as xr

from .._validate import _fmt_interval
from .._xr import lift  # noqa: F401  (re-exported for the analyses)
from ..conventions import STATUS_VALUES, role, roles_of, set_variable_attrs

XArray = xr.DataArray | xr.Dataset


def check_xarray(x, name: str = "x") -> XArray:
    """Refuse anything that is not an xarray object (with a ValueError naming it)."""
    if not isinstance(x, (xr.DataArray, xr.Dataset)):
        raise ValueError(f"{name} must be an xarray.DataArray or xarray.Dataset; got {type(x).__name__}")
    return x


def _scalar(value):
    """Unwrap 0-d numpy arrays and size-1 DataArrays; anything else is returned as is."""
    if isinstance(value, xr.DataArray) and value.ndim == 0:
        value = value.values
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    return value


def check_real(name: str, value, lo=None, hi=None, *, lo_open: bool = False, hi_open: bool = False,
               allow_inf: bool = False, allow_none: bool = False):
    """A real scalar option, as ``float``; ``TypeError`` / ``ValueError`` naming ``name`` otherwise.

    Strings, booleans and complex numbers are a ``TypeError``; NaN, ±inf (unless ``allow_inf``)
    and values outside the interval are a ``ValueError`` stating the allowed range.

    Examples
    --------
    >>> check_real("rtol", 1e-6, 0)
    1e-06
    >>> check_real("rtol", float("nan"), 0)
    Traceback (most recent call last):
    ...
    ValueError: rtol must be a finite number in [0, inf); got nan
    >>> check_real("edge", "2")
    Traceback (most recent call last):
    ...
    TypeError: edge must be a real number; got '2' (str)
    """
    if value is None and allow_none:
        return None
    v = _scalar(value)
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a real number{' or None' if allow_none else ''}; "
                        f"got {value!r} ({type(value).__name__})")
    v = float(v)
    rng = _fmt_interval(lo, hi, lo_open, hi_open)
    what = "a number (inf allowed)" if allow_inf else "a finite number"
    bad = math.isnan(v) or (math.isinf(v) and not allow_inf)
    bad = bad or (lo is not None and (v <= lo if lo_open else v < lo))
    bad = bad or (hi is not None and (v >= hi if hi_open else v > hi))
    if bad:
        raise ValueError(f"{name} must be {what} in {rng}; got {v!r}")
    return v


def check_integer(name: str, value, lo: int | None = None, hi: int | None = None, *,
                  allow_none: bool = False):
    """An integer option, as ``int`` (integral floats such as ``5.0`` are accepted).

    Strings, booleans and complex numbers are a ``TypeError``; non-integral or non-finite floats
    and values outside ``[lo, hi]`` are a ``ValueError`` stating the allowed range.

    Examples
    --------
    >>> check_integer("tail", 12.0, 3)
    12
    >>> check_integer("tail", 2.5, 3)
    Traceback (most recent call last):
    ...
    ValueError: tail must be an integer in [3, inf); got 2.5
    """
    if value is None and allow_none:
        return None
    v = _scalar(value)
    rng = _fmt_interval(lo, hi, False, False)
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be an integer{' or None' if allow_none else ''}; "
                        f"got {value!r} ({type(value).__name__})")
    if not isinstance(v, numbers.Integral):
        f = float(v)
        if not (math.isfinite(f) and f.is_integer()):
            raise ValueError(f"{name} must be an integer in {rng}; got {v!r}")
    v = int(v)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValueError(f"{name} must be an integer in {rng}; got {v}")
    return v


def check_bool(name: str, value) -> bool:
    """A boolean flag; anything but ``True``/``False`` is a ``TypeError`` naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r} ({type(value).__name__})")
    return bool(value)


def check_real_dtype(dtype, name: str, kinds: str = "biuf") -> None:
    """``TypeError`` naming ``name`` unless ``dtype`` is a real numeric dtype (bool, int, float).

    Complex data is refused: the analyses compare magnitudes and take quantiles, which have no
    meaning for complex values (take ``.real`` or ``abs()`` first).
    """
    kind = np.dtype(dtype).kind
    if kind == "c":
        raise TypeError(f"{name} must hold real numbers; got complex dtype {np.dtype(dtype)} "
                        "(take .real or abs() first)")
    if kind not in kinds:
        raise TypeError(f"{name} must hold real numbers{' (int or float)' if 'b' not in kinds else ''}; "
                        f"got dtype {np.dtype(dtype)}")


def check_real_data(x: XArray, name: str = "x", dim: Hashable | None = None, kinds: str = "biuf") -> None:
    """Refuse complex or non-numeric data: a DataArray itself, or a Dataset's data variables that
    have ``dim`` (all of them if ``dim`` is None)."""
    if isinstance(x, xr.DataArray):
        check_real_dtype(x.dtype, name, kinds)
        return
    for k, v in x.data_vars.items():
        if (dim is None or dim in v.dims) and v.dtype.kind == "c":
            check_real_dtype(v.dtype, f"{name}[{k!r}]")


def check_nonempty(x: XArray, dim: Hashable, what: str) -> None:
    """``ValueError`` naming ``dim`` if it has length 0."""
    if x.sizes[dim] == 0:
        raise ValueError(f"{what} needs at least one recorded value along {dim!r}; the dim {dim!r} is empty")


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
    if (vals.dtype.kind == "f" and np.all(np.isfinite(vals)) and np.all(vals == np.round(vals))
            and np.all(np.abs(vals) < 2.0**62)):
        vals = vals.astype(np.int64)
    if vals.dtype.kind not in "iu":
        raise ValueError(f"coordinate {dim!r} must hold integer step values; got dtype {vals.dtype}")
    if vals.size and (vals.max() >= 2**62 or (vals.dtype.kind == "i" and vals.min() <= -2**62)):
        raise ValueError(f"coordinate {dim!r} holds step values beyond +-2**62")
    vals = vals.astype(np.int64)
    if vals.size > 1 and not np.all(np.diff(vals) > 0):
        raise ValueError(f"coordinate {dim!r} must be strictly increasing (step values in recording "
                         "order, no repeats); sort it first, e.g. x.sortby(" f"{dim!r})")
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


def role_var(ds: XArray, name: str, *, required: bool = True, what: str = "this analysis") -> xr.DataArray | None:
    """The variable of ``ds`` playing role ``name`` (:func:`eosdyn.conventions.role`).

    Uses the dataset's role map (attr ``eosdyn_roles``); without one, the variable named like the
    role. ``ValueError`` naming the role and ``what`` needs it when there is none (or ``None``
    when ``required`` is false).

    Examples
    --------
    >>> from eosdyn.conventions import set_roles
    >>> ds = set_roles(xr.Dataset({"T": ("step", [1.9])}), curvature="T")
    >>> role_var(ds, "curvature").name
    'T'
    >>> role_var(xr.Dataset({"loss": ("step", [0.1])}), "loss").name
    'loss'
    """
    if isinstance(ds, xr.Dataset):
        found = role(ds, name, required=False)
        if found is not None:
            return found
    if required:
        have = roles_of(ds)
        names = list(ds.data_vars) if isinstance(ds, xr.Dataset) else [ds.name]
        raise ValueError(f"{what} needs the variable with role {name!r} (a role map entry "
                         f"eosdyn_roles '{name}: <variable>' or a variable named {name!r}); the dataset's "
                         f"role map is {have or 'absent'} and its variables are {names}")
    return None


def has_roles(ds: XArray, *names: str) -> bool:
    """Whether ``ds`` is a Dataset with a variable for every role in ``names``."""
    return isinstance(ds, xr.Dataset) and all(role(ds, n, required=False) is not None for n in names)


def status_is(status: xr.DataArray, name: str) -> xr.DataArray:
    """Boolean mask of the members whose CF ``status`` flag is ``name`` (a key of
    :data:`eosdyn.conventions.STATUS_VALUES`; the one table of flag values).

    Examples
    --------
    >>> s = xr.DataArray(np.array([1, 2, 3], dtype=np.int8), dims="seed")
    >>> status_is(s, "diverged").values
    array([False,  True, False])
    """
    return status == STATUS_VALUES[name]


def dataset_edge(ds: XArray, edge=None):
    """The edge of stability in sharpness units: ``edge`` if given (finite), else the dataset's
    ``edge`` coordinate if it has one, else 2 (η λ_max = 2).

    Examples
    --------
    >>> dataset_edge(xr.Dataset())
    2.0
    >>> dataset_edge(xr.Dataset(coords={"edge": 1.5}))
    1.5
    """
    if edge is not None:
        return check_real("edge", edge)
    if isinstance(ds, (xr.Dataset, xr.DataArray)) and "edge" in ds.coords:
        e = ds.coords["edge"]
        if e.ndim == 0:
            return check_real("the coordinate 'edge'", e)
        check_real_dtype(e.dtype, "the coordinate 'edge'", "iuf")
        return xr.DataArray(e.variable)
    return 2.0
