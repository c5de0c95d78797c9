"""Final-sharpness statistics over seeds (Figure 4 phase table, Figure 9 histogram).

Diverged and non-finite members are *excluded and counted*, never silently propagated: every
statistic is computed from the valid members only (finite value, and not flagged ``diverged`` by a
``status`` variable), and the result carries ``n_total``, ``n_valid``, ``n_diverged`` and
``n_excluded`` next to it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import xarray as xr

from ..conventions import set_variable_attrs
from . import _kernels as K
from ._common import (XArray, check_dim, check_integer, check_nonempty, check_real, check_real_dtype,
                      check_xarray, dataset_edge, flat_rows, lift, role_var, status_is, step_values)
from .coords import _top_mode

__all__ = ["final_sharpness_stats", "phase_table", "DEFAULT_BINS"]

#: Largest ``n_boot`` accepted, and most bootstrap draws (n_boot x members) held in memory.
MAX_BOOT = 1_000_000
MAX_BOOT_DRAWS = 50_000_000

#: Default histogram bin edges for η λ_max (Figure 9 right): width 0.05 on [0, 4].
DEFAULT_BINS = np.linspace(0.0, 4.0, 81)


def _real_array(name: str, value) -> np.ndarray:
    """``value`` as a float array; ``TypeError`` naming ``name`` for strings, complex, objects."""
    try:
        arr = np.asarray(value)
    except Exception as err:   # ragged sequences etc.
        raise TypeError(f"{name} must be a sequence of real numbers; got {value!r}") from err
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a sequence of real numbers; got {value!r} (dtype {arr.dtype})")
    return arr.astype(float)


def _ends_kernel(st, steps):
    """Per member: number of recorded steps <= steps[0] + steps_taken (0 when steps_taken < 0 or NaN)."""
    st = np.asarray(st)
    if st.dtype.kind == "f":
        st = np.where(np.isfinite(st), np.floor(st), -1.0)
        st = np.clip(st, -1.0, 2.0**61)
    st = np.clip(st.astype(np.int64), -1, 2**61)
    return np.searchsorted(steps, steps[0] + st, side="right").astype(np.int64)


def _last_kernel(a, ends):
    """Value at position ``ends - 1`` of the last axis (NaN where ``ends <= 0``)."""
    ends = np.broadcast_to(ends, a.shape[:-1])
    pos = np.clip(ends - 1, 0, max(a.shape[-1] - 1, 0))
    out = np.take_along_axis(a, pos[..., None], axis=-1)[..., 0].astype(np.float64)
    return np.where(ends > 0, out, np.nan)


def _last_recorded(x: xr.DataArray, steps_taken, step_dim) -> xr.DataArray:
    """Each member's last recorded value: the value at the largest recorded step <= steps_taken.

    Goes by the value of the step coordinate (``steps_taken`` counts GD steps from the first
    recorded step), so early-stopped, NaN-padded members give their final value, not the padding.
    Without ``steps_taken`` the value at the largest recorded step is used.
    """
    check_nonempty(x, step_dim, "final_sharpness_stats (a trajectory)")
    steps = step_values(x, step_dim)
    if steps_taken is None:
        ends = xr.DataArray(np.int64(steps.size))
    else:
        ends = lift(_ends_kernel, steps_taken, core_dims=[[]], out_core_dims=[[]], out_dtypes=[np.int64],
                    kwargs={"steps": steps})
    out = lift(_last_kernel, x, ends, core_dims=[[step_dim], []], out_core_dims=[[]],
               out_dtypes=[np.float64])
    for k in out.coords:                 # keep the coordinates' CF attributes
        if k in x.coords:
            out.coords[k].attrs = dict(x.coords[k].attrs)
    return out


def _final_values(x: XArray, var, step_dim, mode_dim):
    """The final sharpness values and the optional status variable."""
    status = None
    steps_taken = None
    if isinstance(x, xr.Dataset):
        status = x["status"] if "status" in x else None
        if var is None:
            sharp = role_var(x, "sharpness", required=False)
            own = None if sharp is None else f"final_{sharp.name}"  # e.g. final_preconditioned_sharpness
            var = (own if own in x.data_vars else "final_sharpness" if "final_sharpness" in x
                   else None if sharp is None else sharp.name)
        if var is None:
            raise ValueError(f"final_sharpness_stats needs a variable 'final_sharpness' or the variable with "
                             f"role 'sharpness' (or pass var=); got variables {list(x.data_vars)}")
        if not isinstance(var, Hashable) or var not in x.data_vars:
            raise ValueError(f"var={var!r} is not a data variable of ds; it has {list(x.data_vars)}")
        if "steps_taken" in x and step_dim not in x["steps_taken"].dims:
            steps_taken = x["steps_taken"]
            if steps_taken.dtype.kind not in "iuf":
                raise TypeError(f"the variable 'steps_taken' must hold numbers; got dtype {steps_taken.dtype}")
        x = x[var]
    elif var is not None:
        raise ValueError(f"var={var!r} only applies to a Dataset; ds is a DataArray")
    check_real_dtype(x.dtype, "ds" if var is None else f"ds[{var!r}]", "iuf")
    x = _top_mode(x, mode_dim)
    if step_dim in x.dims:
        x = _last_recorded(x, steps_taken, step_dim)
    if status is not None:
        if status.dtype.kind not in "iu":
            raise TypeError(f"the variable 'status' must be an integer CF flag variable; got dtype {status.dtype}")
        status = _top_mode(status, mode_dim)
        if step_dim in status.dims:
            check_nonempty(status, step_dim, "final_sharpness_stats (status)")
            status = status.isel({step_dim: -1})
    return x, status


def _mean_std_kernel(a):
    rows, lead = flat_rows(a)
    m, s = K.mean_std_rows(np.ascontiguousarray(rows, dtype=np.float64))
    return m.reshape(lead), s.reshape(lead)


def _quantile_kernel(a, qs):
    rows, lead = flat_rows(a)
    return K.quantile_rows(np.ascontiguousarray(rows, dtype=np.float64), qs).reshape(lead + (qs.size,))


def _boot_kernel(a, U, qlo, qhi):
    """Bootstrap CI of the mean, per row (row-independent rounding: chunking changes nothing)."""
    rows, lead = flat_rows(a)
    lo, hi = K.bootstrap_mean_ci_counts_rows(np.ascontiguousarray(rows, dtype=np.float64), U, qlo, qhi)
    return lo.reshape(lead), hi.reshape(lead)


def _hist_kernel(a, edges):
    rows, lead = flat_rows(a)
    return K.histogram_rows(np.ascontiguousarray(rows, dtype=np.float64), edges).reshape(lead + (edges.size - 1,))


def final_sharpness_stats(ds: XArray, dim: Hashable = "seed", *, var: str | None = None,
                          quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95),
                          eos_tol: float = 0.05, edge: float | None = None, bins=None, n_boot: int = 1000,
                          ci: float = 0.95, seed: int = 0, step_dim: Hashable = "step",
                          mode_dim: Hashable = "mode") -> xr.Dataset:
    """Statistics of the final sharpness over ``dim`` (default ``seed``), per remaining grid point.

    Parameters
    ----------
    ds : xarray.Dataset or xarray.DataArray
        A dataset with ``final_sharpness`` (or the trajectory of the variable with role
        ``sharpness``; mode 0 if it has a ``mode`` dim) and optionally the fates ``status`` and
        ``steps_taken``; or the values directly. From
        a trajectory each member's *last recorded* value is used: the value at the largest
        recorded step <= ``steps_taken`` (counted from the first recorded step), so members
        stopped early and NaN-padded give their final value; without ``steps_taken``, the value
        at the largest step. This goes by the value of the ``step`` coordinate, which must be
        strictly increasing.
    dim : str, default "seed"
        The dim reduced over.
    var : str, optional
        Variable to use instead of ``final_sharpness``/``sharpness``.
    quantiles : sequence of float
        Quantiles reported in ``quantiles`` (dim ``quantile``).
    eos_tol : float, default 0.05
        A valid member is "at the EOS" if ``|sharpness − edge| < eos_tol``; finite and > 0.
    edge : float, optional
        The edge of stability in sharpness units; default: the dataset's ``edge`` coordinate if
        it has one, else 2 (η λ_max = 2). Finite.
    bins : array of bin edges, optional
        Fixed histogram bin edges (default :data:`DEFAULT_BINS`); bins are [e_i, e_{i+1}),
        the last one closed. Valid values outside are counted in ``n_outside_bins``.
    n_boot : int, default 1000
        Bootstrap resamples for the CI of the mean, in [10, 1e6] (and n_boot × members <= 5e7).
    ci : float, default 0.95
        Confidence level of the percentile bootstrap interval, in (0, 1).
    seed : int, default 0
        Non-negative.
        Seed of the bootstrap stream (``numpy.random.SeedSequence(seed)``); the same draws are
        used for every grid point, so results do not depend on chunking.

    Returns
    -------
    xarray.Dataset
        Over the other dims: ``median_sharpness``, ``quantiles`` (dim ``quantile``), ``mean_sharpness``,
        ``std_sharpness``,
        ``mean_ci_lower``/``mean_ci_upper``, ``deviation`` (edge − median), ``frac_converged``,
        ``frac_eos``, ``frac_diverged`` (fractions of *all* members), ``n_total``, ``n_valid``,
        ``n_diverged``, ``n_excluded`` (= n_total − n_valid), ``hist`` (dim ``bin`` with coords
        ``bin`` = centre, ``bin_lower``, ``bin_upper``) and ``n_outside_bins``. "Converged" is the
        status flag ``converged`` when a ``status`` variable exists, else "finite". Valid
        members are finite and not flagged ``diverged`` or ``failed``. ``mean_sharpness`` and
        ``std_sharpness`` (ddof = 1) come from one kernel per grid point, so dask-backed inputs
        give results equal (bit for bit) to in-memory ones. Statistics of a grid point without
        valid members are NaN (``n_valid`` = 0; ``std_sharpness`` needs two).

    Raises
    ------
    ValueError
        A missing or empty ``dim``, an empty or non-increasing ``step`` coordinate, options out
        of range (the message names the option and the allowed range).
    TypeError
        Complex or non-numeric values; strings or other non-numbers given as numeric options.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> v = xr.DataArray([1.9, 2.0, 2.1, np.nan], dims="seed", name="final_sharpness")
    >>> s = final_sharpness_stats(v, n_boot=200)
    >>> float(s.median_sharpness), int(s.n_valid), int(s.n_excluded), float(s.frac_diverged)
    (2.0, 3, 1, 0.25)
    """
    check_xarray(ds, "ds")
    check_dim(ds, dim)
    for name, d in (("step_dim", step_dim), ("mode_dim", mode_dim)):
        if not isinstance(d, Hashable):
            raise TypeError(f"{name} must be a dimension name; got {d!r} ({type(d).__name__})")
    ci = check_real("ci", ci, 0, 1, lo_open=True, hi_open=True)
    eos_tol = check_real("eos_tol", eos_tol, 0, lo_open=True)
    edge = dataset_edge(ds, edge)
    seed = check_integer("seed", seed, 0)
    n_boot = check_integer("n_boot", n_boot, 10, MAX_BOOT)
    qs = _real_array("quantiles", quantiles)
    if qs.ndim != 1 or qs.size == 0 or not np.all((qs >= 0) & (qs <= 1)):
        raise ValueError(f"quantiles must be a non-empty 1-D sequence of numbers in [0, 1]; got {quantiles!r}")
    edges = _real_array("bins", DEFAULT_BINS if bins is None else bins)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges)) or not np.all(np.diff(edges) > 0):
        raise ValueError("bins must be a 1-D strictly increasing array of at least 2 finite edges")
    vals, status = _final_values(ds, var, step_dim, mode_dim)
    if dim not in vals.dims:
        raise ValueError(f"dim={dim!r} is not a dimension of the final sharpness values {tuple(vals.dims)}")
    n = vals.sizes[dim]
    if n < 1:
        raise ValueError(f"dim={dim!r} is empty: there are no members to summarise")
    if n_boot * n > MAX_BOOT_DRAWS:
        raise ValueError(f"n_boot x (size of dim {dim!r}) must be at most {MAX_BOOT_DRAWS:.0e} "
                         f"(bootstrap draws held in memory); got n_boot={n_boot} x {n}")

    vals = vals.astype(np.float64)
    finite = np.isfinite(vals)
    if status is not None:
        diverged = status_is(status, "diverged")
        converged = status_is(status, "converged") & finite
        failed = status_is(status, "failed")   # the integrator gave up: no final value
    else:
        diverged = ~finite
        converged = finite
        failed = xr.zeros_like(finite)
    valid = finite & ~diverged & ~failed
    v = vals.where(valid)

    r: dict = {}
    r["n_total"] = xr.full_like(vals.isel({dim: 0}, drop=True), n, dtype=np.int64)
    r["n_valid"] = valid.sum(dim).astype(np.int64)
    r["n_diverged"] = diverged.sum(dim).astype(np.int64)
    r["n_excluded"] = r["n_total"] - r["n_valid"]
    r["frac_converged"] = converged.sum(dim) / n
    r["frac_diverged"] = diverged.sum(dim) / n
    r["frac_eos"] = (valid & (abs(vals - edge) < eos_tol)).sum(dim) / n
    allq = np.append(qs, 0.5)
    q = lift(_quantile_kernel, v, core_dims=[[dim]], out_core_dims=[["quantile"]], out_dtypes=[np.float64],
             out_sizes={"quantile": allq.size}, kwargs={"qs": allq})
    r["quantiles"] = q.isel(quantile=slice(0, qs.size)).assign_coords(quantile=qs)
    med = q.isel(quantile=-1, drop=True)
    r["median_sharpness"] = med
    # one kernel over the core dim for eager and dask inputs alike: equal bit for bit
    r["mean_sharpness"], r["std_sharpness"] = lift(_mean_std_kernel, v, core_dims=[[dim]],
                                                   out_core_dims=[[], []], out_dtypes=[np.float64] * 2)
    U = np.random.default_rng(np.random.SeedSequence(seed)).random((n_boot, n))
    lo, hi = lift(_boot_kernel, v, core_dims=[[dim]], out_core_dims=[[], []], out_dtypes=[np.float64] * 2,
                  kwargs={"U": U, "qlo": (1 - ci) / 2, "qhi": 1 - (1 - ci) / 2})
    r["mean_ci_lower"] = lo
    r["mean_ci_upper"] = hi
    r["deviation"] = edge - med
    h = lift(_hist_kernel, v, core_dims=[[dim]], out_core_dims=[["bin"]], out_dtypes=[np.int64],
             out_sizes={"bin": edges.size - 1}, kwargs={"edges": edges})
    r["hist"] = h.assign_coords(bin=(edges[:-1] + edges[1:]) / 2, bin_lower=("bin", edges[:-1]),
                                  bin_upper=("bin", edges[1:]))
    r["n_outside_bins"] = r["n_valid"] - r["hist"].sum("bin")
    out = xr.Dataset(r)
    for k in out.variables:
        set_variable_attrs(out[k], k, overwrite=True)
    if isinstance(edge, float):
        out.attrs["edge"] = edge
    out.attrs["eos_tol"] = eos_tol
    out.attrs["ci"] = ci
    out.attrs["reduced_dim"] = str(dim)
    out.attrs["bootstrap"] = f"percentile bootstrap, {int(n_boot)} resamples, SeedSequence({seed})"
    return out


def phase_table(ds: XArray, dim: Hashable = "seed", **kwargs) -> xr.Dataset:
    """Figure 4 phase table: median final sharpness over ``dim`` per grid point, and 2 − median.

    Keyword arguments go to :func:`final_sharpness_stats`; the counts of excluded and diverged
    members come along.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> v = xr.DataArray(np.full((2, 3), 1.9), dims=("sigma_z", "seed"), name="final_sharpness",
    ...                  coords={"sigma_z": [0.1, 0.2]})
    >>> phase_table(v, n_boot=20).median_sharpness.values
    array([1.9, 1.9])
    """
    s = final_sharpness_stats(ds, dim, **kwargs)
    return s[["median_sharpness", "deviation", "frac_eos", "frac_diverged", "n_valid", "n_excluded"]]
