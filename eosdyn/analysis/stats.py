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

from ..conventions import STATUS_VALUES
from . import _kernels as K
from ._common import XArray, check_dim, check_xarray, flat_rows, lift

__all__ = ["final_sharpness_stats", "phase_table", "DEFAULT_BINS"]

#: Default histogram bin edges for η λ_max (Figure 9 right): width 0.05 on [0, 4].
DEFAULT_BINS = np.linspace(0.0, 4.0, 81)


def _status_mask(status: xr.DataArray, name: str) -> xr.DataArray:
    meanings = status.attrs.get("flag_meanings", " ".join(STATUS_VALUES)).split()
    values = np.atleast_1d(status.attrs.get("flag_values", list(STATUS_VALUES.values())))
    lut = dict(zip(meanings, values.tolist()))
    if name not in lut:
        return xr.zeros_like(status, dtype=bool)
    return status == lut[name]


def _final_values(x: XArray, var, step_dim, mode_dim):
    """The final sharpness values and the optional status variable."""
    status = None
    if isinstance(x, xr.Dataset):
        status = x["status"] if "status" in x else None
        if var is None:
            var = "final_sharpness" if "final_sharpness" in x else "sharpness" if "sharpness" in x else None
        if var is None or var not in x:
            raise ValueError(f"final_sharpness_stats needs a variable 'final_sharpness' or 'sharpness' "
                             f"(or pass var=); got variables {list(x.data_vars)}")
        x = x[var]
    if step_dim in x.dims:
        x = x.isel({step_dim: -1})
    if mode_dim in x.dims:
        x = x.isel({mode_dim: 0})
    if x.dtype.kind not in "iuf":
        raise ValueError(f"final sharpness values must be numeric; got dtype {x.dtype}")
    if status is not None:
        for d in (step_dim, mode_dim):
            if d in status.dims:
                status = status.isel({d: -1 if d == step_dim else 0})
    return x, status


def _quantile_kernel(a, qs):
    rows, lead = flat_rows(a)
    return K.quantile_rows(np.ascontiguousarray(rows, dtype=np.float64), qs).reshape(lead + (qs.size,))


def _boot_kernel(a, U, qlo, qhi):
    """Bootstrap CI of the mean; rows without missing values go through one GEMM."""
    rows, lead = flat_rows(a)
    rows = np.ascontiguousarray(rows, dtype=np.float64)
    nboot, n = U.shape
    full = np.isfinite(rows).all(axis=1)
    lo = np.full(rows.shape[0], np.nan)
    hi = np.full(rows.shape[0], np.nan)
    if full.any():
        idx = np.minimum((U * n).astype(np.int64), n - 1)
        counts = np.bincount((np.arange(nboot)[:, None] * n + idx).ravel(), minlength=nboot * n)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):  # small GEMM: threads only add overhead
            means = (rows[full] @ counts.reshape(nboot, n).T.astype(np.float64)) / n   # (rows_full, nboot)
        means.sort(axis=1)
        for q, res in ((qlo, lo), (qhi, hi)):   # linear interpolation, as numpy's default quantile
            pos = q * (nboot - 1)
            i0 = int(np.floor(pos))
            i1 = min(i0 + 1, nboot - 1)
            res[full] = means[:, i0] + (pos - i0) * (means[:, i1] - means[:, i0])
    if not full.all():
        lo[~full], hi[~full] = K.bootstrap_mean_ci_rows(rows[~full], U, qlo, qhi)
    return lo.reshape(lead), hi.reshape(lead)


def _hist_kernel(a, edges):
    rows, lead = flat_rows(a)
    return K.histogram_rows(np.ascontiguousarray(rows, dtype=np.float64), edges).reshape(lead + (edges.size - 1,))


def final_sharpness_stats(ds: XArray, dim: Hashable = "seed", *, var: str | None = None,
                          quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95),
                          eos_tol: float = 0.05, edge: float = 2.0, bins=None, n_boot: int = 1000,
                          ci: float = 0.95, seed: int = 0, step_dim: Hashable = "step",
                          mode_dim: Hashable = "mode") -> xr.Dataset:
    """Statistics of the final sharpness over ``dim`` (default ``seed``), per remaining grid point.

    Parameters
    ----------
    ds : xarray.Dataset or xarray.DataArray
        A dataset with ``final_sharpness`` (or a ``sharpness`` trajectory, whose last step is
        used; mode 0 if it has a ``mode`` dim) and optionally ``status``; or the values directly.
    dim : str, default "seed"
        The dim reduced over.
    var : str, optional
        Variable to use instead of ``final_sharpness``/``sharpness``.
    quantiles : sequence of float
        Quantiles reported in ``quantiles`` (dim ``quantile``).
    eos_tol : float, default 0.05
        A valid member is "at the EOS" if |sharpness − edge| < eos_tol.
    edge : float, default 2.0
    bins : array of bin edges, optional
        Fixed histogram bin edges (default :data:`DEFAULT_BINS`); bins are [e_i, e_{i+1}),
        the last one closed. Valid values outside are counted in ``n_outside_bins``.
    n_boot : int, default 1000
        Bootstrap resamples for the CI of the mean.
    ci : float, default 0.95
        Confidence level of the percentile bootstrap interval.
    seed : int, default 0
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
        status flag ``converged`` when a ``status`` variable exists, else "finite".

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
    vals, status = _final_values(ds, var, step_dim, mode_dim)
    if dim not in vals.dims:
        raise ValueError(f"dim={dim!r} is not a dimension of the final sharpness values {tuple(vals.dims)}")
    n = vals.sizes[dim]
    if n < 1:
        raise ValueError(f"dim {dim!r} is empty")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1); got {ci}")
    if int(n_boot) < 10:
        raise ValueError(f"n_boot must be an integer >= 10; got {n_boot}")
    qs = np.asarray(quantiles, dtype=float)
    if qs.ndim != 1 or qs.size == 0 or np.any((qs < 0) | (qs > 1)):
        raise ValueError(f"quantiles must be a 1-D sequence of values in [0, 1]; got {quantiles!r}")
    edges = np.asarray(DEFAULT_BINS if bins is None else bins, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0) or not np.all(np.isfinite(edges)):
        raise ValueError("bins must be a 1-D strictly increasing array of at least 2 finite edges")

    vals = vals.astype(np.float64)
    finite = np.isfinite(vals)
    if status is not None:
        diverged = _status_mask(status, "diverged")
        converged = _status_mask(status, "converged") & finite
    else:
        diverged = ~finite
        converged = finite
    valid = finite & ~diverged
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
    r["mean_sharpness"] = v.mean(dim, skipna=True)
    r["std_sharpness"] = v.std(dim, skipna=True, ddof=1)
    U = np.random.default_rng(np.random.SeedSequence(seed)).random((int(n_boot), n))
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
    attrs = {
        "n_total": "number of members", "n_valid": "members used (finite and not diverged)",
        "n_diverged": "members that diverged", "n_excluded": "members excluded (n_total - n_valid)",
        "frac_converged": "fraction of members that converged", "frac_diverged": "fraction of members that diverged",
        "frac_eos": f"fraction of members at the EOS (|sharpness - {edge:g}| < {eos_tol:g})",
        "quantiles": "quantiles of the final sharpness over valid members",
        "median_sharpness": "median final sharpness",
        "mean_sharpness": "mean final sharpness over valid members",
        "std_sharpness": "standard deviation of the final sharpness",
        "mean_ci_lower": f"lower end of the {ci:.0%} bootstrap CI of the mean",
        "mean_ci_upper": f"upper end of the {ci:.0%} bootstrap CI of the mean",
        "deviation": f"{edge:g} minus the median final sharpness",
        "hist": "histogram of the final sharpness (counts of valid members)",
        "n_outside_bins": "valid members outside the histogram bins",
    }
    for k, ln in attrs.items():
        out[k].attrs = {"long_name": ln, "units": "1"}
    out.coords["quantile"].attrs = {"long_name": "quantile level", "units": "1"}
    for c, ln in (("bin", "histogram bin centre"), ("bin_lower", "histogram bin lower edge"),
                  ("bin_upper", "histogram bin upper edge")):
        out.coords[c].attrs = {"long_name": ln, "units": "1"}
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
