"""Chunked, resumable execution of a computation over random seeds through dask.

Every random producer of eosdyn runs its seeds through this module: the QRM GD sweep
(:func:`eosdyn.qrm.sweep`), the QRM gradient flow (:func:`eosdyn.qrm.gradient_flow`) and the
Monte Carlo recipes (:func:`eosdyn.recipes.rnl_monte_carlo`,
:func:`eosdyn.recipes.theorem41_monte_carlo`), so all of them get chunks, resume and dask alike.
The computation is a function ``func(seed_values) -> Dataset`` that returns a dataset with a
``seed`` dim for the seed values it was given, and whose result for each seed depends only on
that seed value (each chunk derives its random streams from the seed values it holds): results
are bit-for-bit the same for every ``chunk_size`` and scheduler. :func:`run` validates the
options (:func:`plan`, once), splits the seeds into chunks, runs the chunks as dask tasks and
concatenates the results along ``seed`` in the order the seeds were given. A producer that
needs the validated options earlier (for a memory estimate) calls :func:`plan` itself and then
:func:`execute`, so nothing is validated twice.

* Scheduler: the active :class:`dask.distributed.Client` if there is one,
  otherwise dask's threaded scheduler; or whatever ``scheduler=`` names
  (one of :data:`SCHEDULERS`, e.g. ``"threads"``, ``"processes"``, ``"synchronous"``,
  or a ``Client``).
* BLAS threads inside a chunk are limited (``blas_threads``, default 1) with
  :mod:`threadpoolctl`, so chunks do not oversubscribe the cores; parallelism
  comes from running chunks side by side.
* Resume: with ``resume=<directory>`` every finished chunk is written there as a
  NetCDF file (exact round trip, :func:`eosdyn.io.to_netcdf`) named after the
  seed values it holds, followed by a sha256 sidecar (``<chunk>.sha256``); a
  rerun loads finished chunks instead of recomputing them. A ``manifest.json``
  in the directory records the sweep's fingerprint (its full configuration) and
  a rerun with a different configuration is refused. Each chunk file also
  carries, as the global attribute ``eosdyn_chunk_fingerprint``, a digest of the
  configuration and of the eosdyn and NumPy versions: a chunk is reused only if
  its checksum and that digest match, so a corrupt chunk or one computed under
  another configuration (a deleted manifest) is recomputed with a
  ``RuntimeWarning``, never reused. Temporaries left by a killed run are removed
  at start. One resume folder serves one run at a time.

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
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from . import _files
from . import io as _io
from ._validate import check_int
from ._version import __version__

__all__ = ["normalize_seeds", "chunk_seeds", "Plan", "plan", "run", "execute", "active_client", "n_workers",
           "chunk_count"]

MANIFEST = "manifest.json"
#: most seeds one sweep takes (the seed array and per-seed results must fit in memory)
MAX_SEEDS = 10**7
#: schedulers :func:`run` accepts by name (dask's names and aliases; or a dask.distributed Client)
SCHEDULERS = ("threads", "threading", "processes", "multiprocessing", "synchronous", "sync",
              "single-threaded")
_SERIAL = ("synchronous", "sync", "single-threaded")
#: global attribute of a chunk file: digest of the configuration and versions it was computed under
CHUNK_ATTR = "eosdyn_chunk_fingerprint"
#: names of the files :func:`run` writes in a resume folder (for the stale-temporary cleanup)
_CHUNK_RE = r"chunk-\d+-\d+-\d+-[0-9a-f]{16}\.nc(?:\.sha256)?|manifest\.json"

#: netCDF4/HDF5 are not thread-safe: chunk files are read and written under this lock.
_NC_LOCK = threading.Lock()


def normalize_seeds(seeds) -> np.ndarray:
    """Seed values as a 1-D ``int64`` array: an int ``n`` means ``0..n-1``.

    Raises ``ValueError`` (naming ``seeds``) for an empty, negative, duplicated,
    non-integer or too large selection: at most ``MAX_SEEDS`` (10**7) seeds, each
    in ``[0, 2**63)``.

    Examples
    --------
    >>> normalize_seeds(3).tolist(), normalize_seeds([7, 3]).tolist()
    ([0, 1, 2], [7, 3])
    >>> normalize_seeds([2**63])
    Traceback (most recent call last):
    ...
    ValueError: seeds must be integers in [0, 2**63); got 9223372036854775808
    """
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, (bool, np.bool_)):
        n = check_int("seeds", seeds, 1, MAX_SEEDS)
        return np.arange(n, dtype=np.int64)
    if isinstance(seeds, (str, bytes, dict, set, frozenset)) or seeds is None:
        raise ValueError(f"seeds must be a positive int n or a non-empty 1-D sequence of seed values; got {seeds!r}")
    try:
        n = len(seeds)
    except TypeError:
        n = None
    if n is not None and n > MAX_SEEDS:
        raise ValueError(f"seeds: at most {MAX_SEEDS} seeds per sweep; got {n}")
    try:
        arr = np.asarray(seeds)
    except (ValueError, TypeError, OverflowError) as err:
        raise ValueError(f"seeds must be a 1-D sequence of integers; got {seeds!r} ({err})") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"seeds must be a positive int n or a non-empty 1-D sequence of seed values; got {seeds!r}")
    if arr.size > MAX_SEEDS:
        raise ValueError(f"seeds: at most {MAX_SEEDS} seeds per sweep; got {arr.size}")
    if arr.dtype.kind == "O":  # Python ints beyond 64 bits, or mixed items
        items = arr.tolist()
        for v in items:
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise ValueError(f"seeds must be integers; got {v!r}")
            if not 0 <= int(v) < 2**63:
                raise ValueError(f"seeds must be integers in [0, 2**63); got {int(v)}")
        arr = np.array([int(v) for v in items], dtype=np.int64)
    if arr.dtype.kind == "f":
        if not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
            raise ValueError(f"seeds must be integers; got {seeds!r}")
        big = arr[(arr < 0) | (arr >= 2.0**63)]
        if big.size:
            raise ValueError(f"seeds must be integers in [0, 2**63); got {big[0]!r}")
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"seeds must be integers; got {seeds!r}")
    if arr.dtype.kind == "u":
        big = arr[arr > np.uint64(2**63 - 1)]
        if big.size:
            raise ValueError(f"seeds must be integers in [0, 2**63); got {int(big[0])}")
    arr = arr.astype(np.int64)
    if (arr < 0).any():
        raise ValueError(f"seeds must be integers in [0, 2**63) (non-negative); got {int(arr[arr < 0][0])}")
    if np.unique(arr).size != arr.size:
        raise ValueError("seeds must not contain duplicates")
    return arr


def chunk_seeds(seeds: np.ndarray, chunk_size: int) -> list[np.ndarray]:
    """Split the seed values into consecutive chunks of ``chunk_size`` (an int >= 1).

    Examples
    --------
    >>> import numpy as np
    >>> [c.tolist() for c in chunk_seeds(np.arange(5), 2)]
    [[0, 1], [2, 3], [4]]
    """
    return [seeds[i:i + chunk_size] for i in range(0, seeds.size, chunk_size)]


def active_client():
    """The active :class:`dask.distributed.Client`, or ``None``.

    Examples
    --------
    >>> active_client() is None  # no dask.distributed Client started here
    True
    """
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


def chunk_fingerprint(fingerprint: str | None) -> str:
    """Digest stored in every chunk file: the configuration plus the eosdyn and NumPy versions."""
    payload = json.dumps({"fingerprint": "" if fingerprint is None else fingerprint,
                          "eosdyn": __version__, "numpy": np.__version__}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _load_chunk(path: Path, stamp: str, seeds: np.ndarray) -> tuple[xr.Dataset | None, str]:
    """A finished chunk if it is intact and of this configuration, else ``(None, why)``."""
    side = _sidecar(path)
    try:
        want = side.read_text(encoding="utf-8").split()[0]
    except (OSError, UnicodeDecodeError, IndexError):
        return None, "it has no valid sha256 sidecar (interrupted or foreign)"
    try:
        if _files.sha256_file(path) != want:
            return None, "its sha256 does not match (corrupt or truncated)"
        with _NC_LOCK:
            ds = _io.open_dataset(path)
    except (OSError, ValueError) as err:
        return None, f"it cannot be read ({err})"
    if ds.attrs.get(CHUNK_ATTR) != stamp:
        return None, "it was computed under another configuration or eosdyn/NumPy version"
    if "seed" not in ds.dims or not np.array_equal(ds["seed"].values, seeds):
        return None, "it holds other seed values"
    ds.attrs = {k: v for k, v in ds.attrs.items() if k != CHUNK_ATTR}
    return ds, ""


def _run_chunk(func: Callable, seeds: np.ndarray, path: str | None, blas_threads: int | None,
               stamp: str = "") -> xr.Dataset:
    """Compute one chunk (and write it with its checksum); executed inside a dask task."""
    if blas_threads is None:
        ds = func(seeds)
    else:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=int(blas_threads)):
            ds = func(seeds)
    if not isinstance(ds, xr.Dataset) or "seed" not in ds.dims:
        raise TypeError("a sweep chunk function must return an xarray.Dataset with a 'seed' dim")
    if path is not None:
        p = Path(path)
        stamped = ds.copy(deep=False)
        stamped.attrs = {**ds.attrs, CHUNK_ATTR: stamp}
        with _NC_LOCK:
            _io.to_netcdf(stamped, p)
        # the sidecar comes last: a chunk without one (killed in between) is recomputed
        _files.atomic_write_text(_sidecar(p), f"{_files.sha256_file(p)}  {p.name}\n")
    return ds


def _prepare_resume(resume, fingerprint: str | None) -> Path | None:
    if resume is None:
        return None
    rdir = _files.check_output_dir(resume, name="resume")
    try:
        rdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"resume folder {str(rdir)!r} cannot be created ({err.strerror or err})") from None
    _files.clean_stale_temporaries(rdir, pattern=_CHUNK_RE)
    manifest = rdir / MANIFEST
    fp = fingerprint if fingerprint is not None else ""
    if manifest.exists():
        try:
            old = json.loads(manifest.read_text(encoding="utf-8")).get("fingerprint", "")
        except (OSError, ValueError, AttributeError):
            old = None
        if old is None:
            warnings.warn(f"resume folder {str(rdir)!r}: unreadable {MANIFEST} is rewritten; "
                          "chunks are reused only where their own fingerprint matches", RuntimeWarning, stacklevel=3)
        elif old != fp:
            raise ValueError(f"resume directory {str(rdir)!r} holds chunks of a different sweep "
                             "configuration; use a fresh directory")
        else:
            return rdir
    try:
        _files.atomic_write_text(manifest, json.dumps({"fingerprint": fp, "eosdyn": __version__,
                                                       "numpy": np.__version__}))
    except OSError as err:
        raise ValueError(f"resume folder {str(rdir)!r} is not writable ({err.strerror or err})") from None
    return rdir


def _check_scheduler(scheduler):
    if scheduler is None or (hasattr(scheduler, "compute") and hasattr(scheduler, "gather")):
        return scheduler
    if isinstance(scheduler, str):
        if scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {', '.join(map(repr, SCHEDULERS))}, None "
                             f"or a dask.distributed.Client; got {scheduler!r}")
        return scheduler
    raise TypeError(f"scheduler must be one of {', '.join(map(repr, SCHEDULERS))}, None "
                    f"or a dask.distributed.Client; got {type(scheduler).__name__}")


@dataclass(frozen=True)
class Plan:
    """Validated options of a run over seeds (see :func:`plan`)."""

    seeds: np.ndarray
    chunk_size: int
    scheduler: object
    blas_threads: int | None

    @property
    def n_chunks(self) -> int:
        return chunk_count(self.seeds.size, self.chunk_size)

    @property
    def concurrent(self) -> int:
        """How many chunks may run at once (for memory estimates)."""
        return min(n_workers(self.scheduler), self.n_chunks)


def plan(seeds, *, chunk_size: int | None = None, scheduler=None, blas_threads: int | None = 1) -> Plan:
    """Validate the seed options once: ``seeds`` (:func:`normalize_seeds`), ``chunk_size``,
    ``scheduler`` and ``blas_threads``; raise ``ValueError``/``TypeError`` naming the option.

    Examples
    --------
    >>> p = plan(5, chunk_size=2, scheduler="synchronous")
    >>> p.seeds.tolist(), p.n_chunks, p.concurrent
    ([0, 1, 2, 3, 4], 3, 1)
    """
    seeds = normalize_seeds(seeds)
    chunk_size = 1 if chunk_size is None else check_int("chunk_size", chunk_size, 1)
    if blas_threads is not None:
        blas_threads = check_int("blas_threads", blas_threads, 1)
    return Plan(seeds=seeds, chunk_size=chunk_size, scheduler=_check_scheduler(scheduler),
                blas_threads=blas_threads)


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
        Directory for finished chunks (created; must be writable); an interrupted
        run resumes from it. Chunks that fail their checksum or were computed
        under another fingerprint or eosdyn/NumPy version are recomputed with a
        ``RuntimeWarning``.
    fingerprint : str, optional
        Configuration string stored in (and checked against) the resume manifest
        and, as a digest, in every chunk file.
    scheduler : optional
        ``None`` (active distributed Client, else threads), a name in :data:`SCHEDULERS`
        or a ``dask.distributed.Client``.
    blas_threads : int or None, default 1
        BLAS thread limit inside each chunk (``None``: leave unchanged).

    Returns
    -------
    xarray.Dataset
        The chunks concatenated along ``seed``.

    Raises
    ------
    ValueError
        Bad ``seeds``, ``chunk_size``, ``blas_threads``, ``scheduler`` or ``resume``
        (not creatable or writable, under a file, or holding another configuration's
        manifest), before anything is computed.
    TypeError
        ``func`` is not callable, ``resume`` is not a path, ``fingerprint`` not a str,
        or a chunk function returns something other than a Dataset with a ``seed`` dim.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> f = lambda s: xr.Dataset({"x": ("seed", np.asarray(s) + 0.5)}, coords={"seed": s})
    >>> run(f, 4, chunk_size=3, scheduler="synchronous").x.values.tolist()
    [0.5, 1.5, 2.5, 3.5]
    """
    if not callable(func):
        raise TypeError(f"func must be callable, got {type(func).__name__}")
    return execute(func, plan(seeds, chunk_size=chunk_size, scheduler=scheduler, blas_threads=blas_threads),
                   resume=resume, fingerprint=fingerprint)


def execute(func: Callable[[np.ndarray], xr.Dataset], plan: Plan, *,
            resume: str | os.PathLike | None = None, fingerprint: str | None = None) -> xr.Dataset:
    """:func:`run` with options already validated by :func:`plan` (they are not checked again).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> f = lambda s: xr.Dataset({"x": ("seed", np.asarray(s) * 2)}, coords={"seed": s})
    >>> execute(f, plan([3, 1], scheduler="synchronous")).x.values.tolist()
    [6, 2]
    """
    import dask

    if not isinstance(plan, Plan):
        raise TypeError(f"plan must be a Plan from eosdyn.sweep.plan(); got {type(plan).__name__}")
    if fingerprint is not None and not isinstance(fingerprint, str):
        raise TypeError(f"fingerprint must be a str or None, got {type(fingerprint).__name__}")
    rdir = _prepare_resume(resume, fingerprint)
    stamp = chunk_fingerprint(fingerprint)
    chunks = chunk_seeds(plan.seeds, plan.chunk_size)
    parts: list = [None] * len(chunks)
    tasks, todo = [], []
    for i, ch in enumerate(chunks):
        path = _chunk_path(rdir, ch)
        if path is not None and path.exists():
            ds, why = _load_chunk(path, stamp, ch)
            if ds is not None:
                parts[i] = ds
                continue
            warnings.warn(f"resume: chunk {path.name} is recomputed because {why}", RuntimeWarning, stacklevel=2)
        todo.append(i)
        tasks.append(dask.delayed(_run_chunk, pure=False)(func, ch, None if path is None else str(path),
                                                          plan.blas_threads, stamp))
    scheduler = plan.scheduler
    if scheduler is None:
        client = active_client()
        scheduler = client if client is not None else "threads"
    if not tasks:
        done = []
    elif hasattr(scheduler, "compute") and hasattr(scheduler, "gather"):  # a distributed Client
        done = scheduler.gather(scheduler.compute(tasks))
    else:
        done = dask.compute(*tasks, scheduler=scheduler)
    for i, ds in zip(todo, done):
        parts[i] = ds
    out = parts[0] if len(parts) == 1 else xr.concat(parts, dim="seed", data_vars="all",
                                                     coords="different", compat="identical",
                                                     join="exact", combine_attrs="override")
    return out


def n_workers(scheduler=None) -> int:
    """How many chunks may run at once under ``scheduler`` (for memory estimates).

    Examples
    --------
    >>> n_workers("synchronous")
    1
    """
    if scheduler is None:
        client = active_client()
        scheduler = client if client is not None else "threads"
    if hasattr(scheduler, "nthreads"):
        try:
            return max(1, sum(scheduler.nthreads().values()))
        except Exception:  # pragma: no cover - defensive
            return os.cpu_count() or 1
    if scheduler in _SERIAL:
        return 1
    return os.cpu_count() or 1


def chunk_count(n_seeds: int, chunk_size: int | None) -> int:
    """Number of chunks :func:`run` makes.

    Examples
    --------
    >>> chunk_count(10, 3), chunk_count(10, None)
    (4, 10)
    """
    return math.ceil(n_seeds / (1 if chunk_size is None else chunk_size))
