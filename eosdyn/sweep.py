"""Chunked, resumable execution of a sweep over random seeds through dask.

One helper for every model: a sweep is a function ``func(seed_values) -> Dataset``
that returns a dataset with a ``seed`` dim for the seed values it was given, and
whose result for each seed depends only on that seed value (each chunk derives
its random streams from the seed values it holds). :func:`run` splits the seeds
into chunks, runs the chunks as dask tasks and concatenates the results along
``seed`` in the order the seeds were given.

* Scheduler: the active :class:`dask.distributed.Client` if there is one,
  otherwise dask's threaded scheduler; or whatever ``scheduler=`` names
  (``"threads"``, ``"processes"``, ``"synchronous"`` or a ``Client``).
* BLAS threads inside a chunk are limited (``blas_threads``, default 1) with
  :mod:`threadpoolctl`, so chunks do not oversubscribe the cores; parallelism
  comes from running chunks side by side.
* Resume: with ``resume=<directory>`` every finished chunk is written there as a
  NetCDF file (exact round trip, :func:`eosdyn.io.to_netcdf`) named after the
  seed values it holds; a rerun loads finished chunks instead of recomputing
  them. A ``manifest.json`` in the directory records the sweep's fingerprint
  (its full configuration) and a rerun with a different configuration is
  refused, so stale chunks are never mixed in.

Examples
--------
>>> import numpy as np, xarray as xr
>>> def squares(seeds):
...     return xr.Dataset({"x": ("seed", np.asarray(seeds) ** 2)}, coords={"seed": seeds})
>>> run(squares, [3, 1, 2], chunk_size=2).x.values.tolist()
[9, 1, 4]
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr

from . import io as _io
from ._validate import check_int

__all__ = ["normalize_seeds", "chunk_seeds", "run", "active_client"]

MANIFEST = "manifest.json"

#: netCDF4/HDF5 are not thread-safe: chunk files are read and written under this lock.
_NC_LOCK = threading.Lock()


def normalize_seeds(seeds) -> np.ndarray:
    """Seed values as a 1-D ``int64`` array: an int ``n`` means ``0..n-1``.

    Raises ``ValueError`` (naming ``seeds``) for an empty, negative, duplicated
    or non-integer selection.

    Examples
    --------
    >>> normalize_seeds(3).tolist(), normalize_seeds([7, 3]).tolist()
    ([0, 1, 2], [7, 3])
    """
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, (bool, np.bool_)):
        n = check_int("seeds", seeds, 1)
        return np.arange(n, dtype=np.int64)
    arr = np.asarray(seeds)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"seeds must be a positive int n or a non-empty 1-D sequence of seed values; got {seeds!r}")
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"seeds must be integers; got {seeds!r}")
    arr = arr.astype(np.int64)
    if (arr < 0).any():
        raise ValueError(f"seeds must be non-negative integers; got {arr[arr < 0][0]}")
    if np.unique(arr).size != arr.size:
        raise ValueError("seeds must not contain duplicates")
    return arr


def chunk_seeds(seeds: np.ndarray, chunk_size: int) -> list[np.ndarray]:
    """Split the seed values into consecutive chunks of ``chunk_size``."""
    chunk_size = check_int("chunk_size", chunk_size, 1)
    return [seeds[i:i + chunk_size] for i in range(0, seeds.size, chunk_size)]


def active_client():
    """The active :class:`dask.distributed.Client`, or ``None``."""
    try:
        from distributed import default_client
    except ImportError:  # pragma: no cover
        return None
    try:
        return default_client()
    except ValueError:
        return None


def _chunk_path(resume: Path | None, seeds: np.ndarray) -> Path | None:
    if resume is None:
        return None
    digest = hashlib.sha1(np.ascontiguousarray(seeds, dtype="<i8").tobytes()).hexdigest()[:16]
    return resume / f"chunk-{int(seeds[0])}-{int(seeds[-1])}-{seeds.size}-{digest}.nc"


def _run_chunk(func: Callable, seeds: np.ndarray, path: str | None, blas_threads: int | None) -> xr.Dataset:
    """Run (or load) one chunk; executed inside a dask task."""
    if path is not None and os.path.exists(path):
        with _NC_LOCK:
            return _io.open_dataset(path)
    if blas_threads is None:
        ds = func(seeds)
    else:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=int(blas_threads)):
            ds = func(seeds)
    if not isinstance(ds, xr.Dataset) or "seed" not in ds.dims:
        raise TypeError("a sweep chunk function must return an xarray.Dataset with a 'seed' dim")
    if path is not None:
        with _NC_LOCK:
            _io.to_netcdf(ds, path)
    return ds


def _prepare_resume(resume, fingerprint: str | None) -> Path | None:
    if resume is None:
        return None
    resume = Path(resume)
    resume.mkdir(parents=True, exist_ok=True)
    manifest = resume / MANIFEST
    fp = fingerprint if fingerprint is not None else ""
    if manifest.exists():
        old = json.loads(manifest.read_text()).get("fingerprint", "")
        if old != fp:
            raise ValueError(f"resume directory {str(resume)!r} holds chunks of a different sweep "
                             "configuration; use a fresh directory")
    else:
        tmp = manifest.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fingerprint": fp}))
        os.replace(tmp, manifest)
    return resume


def run(func: Callable[[np.ndarray], xr.Dataset], seeds, *, chunk_size: int | None = None,
        resume: str | os.PathLike | None = None, fingerprint: str | None = None, scheduler=None,
        blas_threads: int | None = 1) -> xr.Dataset:
    """Run ``func`` over chunks of ``seeds`` through dask and concatenate along ``seed``.

    Parameters
    ----------
    func : callable
        ``func(seed_values: ndarray[int64]) -> xarray.Dataset`` with a ``seed`` dim
        (in the order given). Must be picklable for process-based schedulers
        (a module-level function or a :func:`functools.partial` of one).
    seeds : int or sequence of int
        ``n`` (seed values ``0..n-1``) or explicit seed values.
    chunk_size : int, optional
        Seeds per chunk (default 1: one task per seed).
    resume : path-like, optional
        Directory for finished chunks; an interrupted sweep resumes from it.
    fingerprint : str, optional
        Configuration string stored in (and checked against) the resume manifest.
    scheduler : optional
        ``None`` (active distributed Client, else threads), ``"threads"``,
        ``"processes"``, ``"synchronous"`` or a ``dask.distributed.Client``.
    blas_threads : int or None, default 1
        BLAS thread limit inside each chunk (``None``: leave unchanged).

    Returns
    -------
    xarray.Dataset
        The chunks concatenated along ``seed``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> f = lambda s: xr.Dataset({"x": ("seed", np.asarray(s) + 0.5)}, coords={"seed": s})
    >>> run(f, 4, chunk_size=3, scheduler="synchronous").x.values.tolist()
    [0.5, 1.5, 2.5, 3.5]
    """
    import dask

    seeds = normalize_seeds(seeds)
    chunk_size = 1 if chunk_size is None else check_int("chunk_size", chunk_size, 1)
    if blas_threads is not None:
        blas_threads = check_int("blas_threads", blas_threads, 1)
    rdir = _prepare_resume(resume, fingerprint)
    chunks = chunk_seeds(seeds, chunk_size)
    tasks = []
    for ch in chunks:
        path = _chunk_path(rdir, ch)
        tasks.append(dask.delayed(_run_chunk, pure=False)(func, ch, None if path is None else str(path),
                                                          blas_threads))
    if scheduler is None:
        client = active_client()
        scheduler = client if client is not None else "threads"
    if hasattr(scheduler, "compute") and hasattr(scheduler, "gather"):  # a distributed Client
        parts = scheduler.gather(scheduler.compute(tasks))
    else:
        parts = dask.compute(*tasks, scheduler=scheduler)
    out = parts[0] if len(parts) == 1 else xr.concat(parts, dim="seed", data_vars="all",
                                                     coords="different", compat="identical",
                                                     join="exact", combine_attrs="override")
    return out


def n_workers(scheduler=None) -> int:
    """How many chunks may run at once under ``scheduler`` (for memory estimates)."""
    if scheduler is None:
        client = active_client()
        scheduler = client if client is not None else "threads"
    if hasattr(scheduler, "nthreads"):
        try:
            return max(1, sum(scheduler.nthreads().values()))
        except Exception:  # pragma: no cover - defensive
            return os.cpu_count() or 1
    if scheduler == "synchronous":
        return 1
    return os.cpu_count() or 1


def chunk_count(n_seeds: int, chunk_size: int | None) -> int:
    """Number of chunks :func:`run` makes."""
    return math.ceil(n_seeds / (1 if chunk_size is None else chunk_size))
