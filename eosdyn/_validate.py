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
    """Return ``value`` as ``int`` or raise ``ValueError`` naming ``name`` and the allowed range.

    Accepts Python and NumPy integers, 0-d integer arrays and integral floats (``5.0``);
    rejects booleans, strings, non-integral or non-finite floats.

    Examples
    --------
    >>> import numpy as np
    >>> check_int("steps", np.array(5), 0)
    5
    >>> check_int("steps", "5", 0)
    Traceback (most recent call last):
    ...
    ValueError: steps must be an integer in [0, inf); got '5' (str)
    """
    rng = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{')' if hi is None else ']'}"
    v = value
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v[()]
    if isinstance(v, (bool, np.bool_)):
        ok = False
    elif isinstance(v, numbers.Integral):
        ok = True
    elif isinstance(v, (float, np.floating)) and math.isfinite(float(v)) and float(v).is_integer():
        v, ok = int(v), True
    else:
        ok = False
    if not ok:
        raise ValueError(f"{name} must be an integer in {rng}; got {value!r} ({type(value).__name__})")
    v = int(v)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValueError(f"{name} must be an integer in {rng}; got {v}")
    return v


def check_dtype(dtype) -> np.dtype:
    """Only float64 (default) and float32 are supported; anything else is a ``ValueError`` naming dtype.

    Examples
    --------
    >>> check_dtype("bogus")
    Traceback (most recent call last):
    ...
    ValueError: dtype must be 'float64' or 'float32'; got 'bogus'
    """
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError, SyntaxError):
        raise ValueError(f"dtype must be 'float64' or 'float32'; got {dtype!r}") from None
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype must be 'float64' or 'float32'; got {dtype!r}")
    return dt


#: smallest ``rtol`` the integrators accept (scipy's own floor, 100 machine epsilons)
MIN_RTOL = 100 * float(np.finfo(np.float64).eps)
#: most sample times a flow may request
MAX_TIMES = 1_000_000
#: largest output a simulation may allocate without asking (bytes); also bounded by free memory
MAX_OUTPUT_BYTES = 16 * 2**30


def check_tolerances(rtol, atol) -> tuple[float, float]:
    """Validate integrator tolerances: ``rtol`` in [100 eps, 1], ``atol`` finite and > 0.

    Examples
    --------
    >>> check_tolerances(1e-12, 1e-14)
    (1e-12, 1e-14)
    >>> check_tolerances(float("nan"), 1e-14)
    Traceback (most recent call last):
    ...
    ValueError: rtol must be a finite real number in [2.22045e-14, 1]; got nan
    """
    out = []
    for name, v, lo, hi in (("rtol", rtol, MIN_RTOL, 1.0), ("atol", atol, 0.0, None)):
        ok = isinstance(v, (numbers.Real, np.floating, np.integer)) and not isinstance(v, (bool, np.bool_))
        if isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "iuf":
            v, ok = v[()], True
        rng = f"[{lo:g}, {hi:g}]" if hi is not None else "(0, inf)"
        if not ok:
            raise ValueError(f"{name} must be a finite real number in {rng}; got {v!r}")
        f = float(v)
        if not math.isfinite(f) or (f < lo if hi is not None else f <= lo) or (hi is not None and f > hi):
            raise ValueError(f"{name} must be a finite real number in {rng}; got {f!r}")
        out.append(f)
    return out[0], out[1]


def check_times(times, *, name: str = "times", max_size: int = MAX_TIMES) -> np.ndarray:
    """Validate gradient-flow sample times: a non-empty 1-D array of at most ``max_size``
    finite, non-negative, strictly increasing reals. Returns them as float64.

    Examples
    --------
    >>> check_times([0.0, 1.0, 2.5]).tolist()
    [0.0, 1.0, 2.5]
    >>> check_times([1.0, 0.5])
    Traceback (most recent call last):
    ...
    ValueError: times must be strictly increasing (finite, >= 0); got [1.0, 0.5]
    """
    arr = np.asarray(times.values if isinstance(times, xr.DataArray) else times)
    if arr.dtype.kind not in "iuf" or arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of real numbers "
                         f"(finite, >= 0, strictly increasing); got {times!r}")
    if arr.size > max_size:
        raise ValueError(f"{name} must have at most {max_size} samples; got {arr.size}")
    with np.errstate(over="ignore"):
        arr = arr.astype(np.float64)
    check_range(name, arr, 0.0, None)
    if arr.size > 1 and not np.all(np.diff(arr) > 0):
        shown = arr.tolist() if arr.size <= 6 else arr[:6].tolist() + ["..."]
        raise ValueError(f"{name} must be strictly increasing (finite, >= 0); got {shown}")
    return arr


def available_memory() -> int | None:
    """Bytes of memory available now (``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import os
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(name: str, nbytes: int, *, what: str = "the recorded output",
                 cap: int | None = None) -> int:
    """Refuse (``ValueError`` naming ``name``) an allocation of ``nbytes`` above ``cap``
    (default :data:`MAX_OUTPUT_BYTES`) or above the memory available now.

    Examples
    --------
    >>> check_memory("steps", 8 * 10**12)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: steps: the recorded output would need 7.28 TiB (8000000000000 bytes), above ...
    """
    cap = MAX_OUTPUT_BYTES if cap is None else cap
    nbytes = int(nbytes)

    def fmt(b):
        for unit, k in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
            if b >= 2**k:
                return f"{b / 2**k:.3g} {unit}"
        return f"{b} bytes"

    limit = cap
    why = f"the limit of {fmt(cap)}"
    avail = available_memory()
    if avail is not None and avail < limit:
        limit, why = avail, f"the memory available now ({fmt(avail)})"
    if nbytes > limit:
        raise ValueError(f"{name}: {what} would need {fmt(nbytes)} ({nbytes} bytes), above {why}; "
                         f"reduce {name} or record less often")
    return nbytes


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


# --------------------------------------------------------------------------- GD options
def check_stop(stop) -> str:
    """``stop`` must be one of :data:`eosdyn.conventions.STOP_MODES`.

    Examples
    --------
    >>> check_stop("member")
    'member'
    >>> check_stop(True)
    Traceback (most recent call last):
    ...
    ValueError: stop must be one of 'never', 'member', 'batch'; got True
    """
    from .conventions import STOP_MODES

    if not isinstance(stop, str) or stop not in STOP_MODES:
        raise ValueError(f"stop must be one of {', '.join(repr(m) for m in STOP_MODES)}; got {stop!r}")
    return stop


def check_gd_options(*, steps, record_every, stop, tol, diverge_loss, dtype, max_steps: int = 2**62):
    """Validate the options every GD producer shares; return them normalised.

    Returns ``(steps, every, stop, tol, diverge_loss, dtype)`` with ``every = 0`` when
    ``record_every`` is None (record the initial state and the last step only). ``tol`` is the
    convergence threshold on the dataset's ``loss`` (``loss < tol``; 0 means never), and
    ``diverge_loss`` the divergence threshold (``loss > diverge_loss``, or a non-finite state);
    both must be representable in ``dtype`` and ``tol < diverge_loss``.

    Examples
    --------
    >>> check_gd_options(steps=10, record_every=None, stop="never", tol=1e-12, diverge_loss=1e8,
    ...                  dtype="float32")[1:]
    (0, 'never', 1e-12, 100000000.0, dtype('float32'))
    """
    steps = check_int("steps", steps, 0, max_steps)
    every = 0 if record_every is None else check_int("record_every", record_every, 1, max_steps)
    stop = check_stop(stop)
    dt = check_dtype(dtype)
    fmax = float(np.finfo(dt).max)
    if isinstance(tol, (bool, np.bool_)) or isinstance(diverge_loss, (bool, np.bool_)):
        raise ValueError("tol and diverge_loss must be real numbers, not booleans")
    check_range("tol", tol, 0.0, fmax)
    check_range("diverge_loss", diverge_loss, 0.0, fmax, lo_open=True)
    tol, diverge_loss = float(tol), float(diverge_loss)
    if dt == np.float32 and 0.0 < tol < float(np.finfo(np.float32).smallest_subnormal):
        raise ValueError(f"tol={tol!r} underflows to 0 in float32; use tol >= "
                         f"{float(np.finfo(np.float32).smallest_subnormal):.3g} or tol=0 (never converge)")
    if not tol < diverge_loss:
        raise ValueError(f"tol must be below diverge_loss; got tol={tol!r}, diverge_loss={diverge_loss!r}")
    return steps, every, stop, tol, diverge_loss, dt


# --------------------------------------------------------------------------- optimizers
#: optimizers of the parameter-space GD producers and the defaults of their hyperparameters
OPTIMIZERS = {
    "gd": {},
    "momentum": {"momentum": 0.9},
    "nesterov": {"momentum": 0.9},
    "rmsprop": {"beta2": 0.999, "epsilon": 1e-8},
    "adam": {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
}
#: allowed range of each hyperparameter: (lo, hi, lo_open, hi_open)
HYPERPARAMETER_RANGES = {"momentum": (0.0, 1.0, False, True), "beta1": (0.0, 1.0, False, True),
                         "beta2": (0.0, 1.0, False, True), "epsilon": (0.0, None, True, False)}


def check_optimizer(optimizer, *, momentum=None, beta1=None, beta2=None, epsilon=None) -> tuple[str, dict]:
    """Validate an optimizer name and its hyperparameters; fill in the defaults.

    Returns ``(optimizer, hyper)`` with ``hyper`` holding exactly the hyperparameters the
    optimizer uses (:data:`OPTIMIZERS`): the values as given (a number or an array; arrays
    are checked element-wise) or the defaults. ``momentum``, ``beta1``, ``beta2`` must lie in
    [0, 1), ``epsilon`` in (0, inf); a hyperparameter the optimizer does not use is refused.

    Examples
    --------
    >>> check_optimizer("adam", beta1=0.5)
    ('adam', {'beta1': 0.5, 'beta2': 0.999, 'epsilon': 1e-08})
    >>> check_optimizer("momentum", momentum=1.0)
    Traceback (most recent call last):
    ...
    ValueError: momentum must be finite and in [0, 1); got 1.0
    >>> check_optimizer("sgd")
    Traceback (most recent call last):
    ...
    ValueError: optimizer must be one of 'gd', 'momentum', 'nesterov', 'rmsprop', 'adam'; got 'sgd'
    """
    if not isinstance(optimizer, str) or optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(repr(o) for o in OPTIMIZERS)}; got {optimizer!r}")
    given = {"momentum": momentum, "beta1": beta1, "beta2": beta2, "epsilon": epsilon}
    uses = OPTIMIZERS[optimizer]
    hyper = {}
    for name, value in given.items():
        if value is None:
            continue
        if name not in uses:
            takes = ", ".join(uses) if uses else "no hyperparameters"
            raise ValueError(f"{name} is not a hyperparameter of optimizer {optimizer!r} (it takes {takes})")
        if isinstance(value, (bool, np.bool_, str, bytes)):
            raise TypeError(f"{name} must be a real number or an array of real numbers; got {value!r}")
        lo, hi, lo_open, hi_open = HYPERPARAMETER_RANGES[name]
        check_range(name, value, lo, hi, lo_open=lo_open, hi_open=hi_open)
        hyper[name] = value
    return optimizer, {k: hyper.get(k, v) for k, v in uses.items()}


def check_batch_size(batch_size, D: int):
    """``batch_size`` must be None (full batch) or an integer in [1, D]; returns it (None: full batch).

    Examples
    --------
    >>> check_batch_size(None, 5), check_batch_size(2, 5)
    (None, 2)
    >>> check_batch_size(6, 5)
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be None (full batch) or an integer in [1, 5] (1 to D); got 6
    """
    if batch_size is None:
        return None
    try:
        return check_int("batch_size", batch_size, 1, D)
    except ValueError:
        raise ValueError(f"batch_size must be None (full batch) or an integer in [1, {D}] (1 to D); "
                         f"got {batch_size!r}") from None
