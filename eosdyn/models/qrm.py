"""Random quadratic regression models (Section 4): GD sweeps and gradient flow.

Model (Eq. 1-3, 24-26): residuals ``z ∈ R^D``, Jacobian ``J ∈ R^{D×P}``, a fixed
tensor ``Q ∈ R^{D×P×P}`` symmetric in its last two indices; with ``g = Jᵀz``

    z' = z − η J g + ½ η² Q(g, g),      J' = J − η Q(g, ·).

Random ensemble (Theorem 4.1) with common random numbers: for each seed value
``s`` one draw of

* ``Q = (G + Gᵀ)/√2`` (transpose in the last two indices) with ``G`` i.i.d. N(0, 1):
  off-diagonal entries ``Q_αij`` (i ≠ j) have variance 1, diagonal entries variance 2
  (the convention of :mod:`eosdyn.theory.qrm`);
* ``ẑ`` (D) and ``Ĵ`` (D × P) i.i.d. N(0, 1);

and every grid point ``(σ̃_z, σ̃_J)`` of that seed starts from
``z₀ = σ_z ẑ``, ``J₀ = σ_J Ĵ`` with the rescaled widths of Eq. 29,
``σ_z = σ̃_z / D`` and ``σ_J = σ̃_J / (D P)^{1/4}``. The streams come from
``numpy.random.SeedSequence(s).spawn(3)`` (Q, ẑ, Ĵ), always drawn in float64
(float32 runs use the rounded draws), so a member's result depends only on its
seed value and its grid point.

``sharpness`` is η λ_max(J Jᵀ) (the edge of stability is 2).
"""

from __future__ import annotations

import functools
import json
import math
import os

import numpy as np
import xarray as xr

from .. import sweep as _sweep
from .._validate import MAX_TIMES, check_dtype, check_int, check_range
from ..conventions import STATUS_VALUES, label
from ..kernels.integrate import check_flow_options, solve_batch
from ..kernels.qrm import (MAX_STEPS_LIMIT, check_budget, check_representable, lambda_max, parse_memory,
                           q_operator, real_scalar, run_gd)

__all__ = ["sweep", "gradient_flow", "instance", "initial_state", "parse_memory", "estimate_memory"]

EQUATIONS = "Eq. 24-26 (GD), Eq. 29 (rescaled widths), Theorem 4.1 ensemble (Agarwala et al. 2023)"
SIGMA_CONVENTION = ("sigma_z and sigma_J are the rescaled widths of Eq. 29: z0 = (sigma_z / D) * zhat, "
                    "J0 = (sigma_J / (D P)^(1/4)) * Jhat with zhat, Jhat i.i.d. N(0, 1)")
Q_CONVENTION = ("Q = (G + G^T)/sqrt(2) (transpose of the last two indices), G i.i.d. N(0, 1): "
                "off-diagonal variance 1, diagonal variance 2")
STREAMS = "numpy.random.SeedSequence(seed).spawn(3) -> (Q, zhat, Jhat), PCG64, drawn in float64"


def instance(seed: int, *, D: int, P: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The common random numbers of one seed: ``(Q, ẑ, Ĵ)`` in float64.

    Examples
    --------
    >>> Q, zh, Jh = instance(3, D=4, P=5)
    >>> Q.shape, zh.shape, Jh.shape, bool(np.all(Q == Q.transpose(0, 2, 1)))
    ((4, 5, 5), (4,), (4, 5), True)
    """
    D = check_int("D", D, 1)
    P = check_int("P", P, 1)
    seed = check_int("seed", seed, 0)
    sq, sz, sj = np.random.SeedSequence(seed).spawn(3)
    G = np.random.default_rng(sq).standard_normal((D, P, P))
    Q = (G + G.transpose(0, 2, 1)) * (1.0 / math.sqrt(2.0))
    zhat = np.random.default_rng(sz).standard_normal(D)
    Jhat = np.random.default_rng(sj).standard_normal((D, P))
    return Q, zhat, Jhat


def initial_state(seed: int, *, D: int, P: int, sigma_z, sigma_J, dtype="float64"):
    """Initial ``(Q, J₀, z₀)`` of one seed for grid points ``(σ̃_z[i], σ̃_J[i])`` (paired 1-D arrays).

    Returns ``Q`` (D × P × P), ``J0`` (B × D × P), ``z0`` (B × D) in ``dtype``.

    Examples
    --------
    >>> Q, J0, z0 = initial_state(0, D=3, P=4, sigma_z=[1.0, 2.0], sigma_J=[0.5, 0.5])
    >>> J0.shape, z0.shape
    ((2, 3, 4), (2, 3))
    """
    dt = check_dtype(dtype)
    Q, zhat, Jhat = instance(seed, D=D, P=P)
    sz = np.atleast_1d(np.asarray(sigma_z, float)) / D
    sj = np.atleast_1d(np.asarray(sigma_J, float)) / (D * P) ** 0.25
    z0 = (sz[:, None] * zhat[None, :]).astype(dt)
    J0 = (sj[:, None, None] * Jhat[None, :, :]).astype(dt)
    return Q.astype(dt), J0, z0


def estimate_memory(*, D: int, P: int, n_points: int, n_seeds: int, n_record_points: int,
                    n_records: int, itemsize: int, concurrent: int) -> int:
    """Predicted peak memory (bytes) of a sweep.

    Working set per running seed: the float64 draws of ``Q`` (2 D P²), ``Q`` and its GEMM
    operand in the run's dtype (2 D P²), the batch state ``J``, ``Q(g,·)`` and the initial
    ``J₀`` (3 B D P), plus the recorded trajectories of that seed (3 variables × points ×
    records); ``concurrent`` seeds run at once. The assembled dataset holds the recorded
    trajectories of all seeds (3 × points × seeds × records) and the final values.
    :func:`sweep` records every grid point's row (NaN outside ``record_points``), so it
    passes ``n_record_points = n_points`` whenever it records.

    Examples
    --------
    >>> estimate_memory(D=60, P=120, n_points=400, n_seeds=100, n_record_points=0,
    ...                 n_records=0, itemsize=8, concurrent=2) / 1e6  # MB
    197.376
    """
    per_seed = (8 * 2 * D * P * P + itemsize * (2 * D * P * P + 3 * n_points * D * P)
                + 3 * 8 * n_record_points * n_records)
    dataset = 3 * 8 * n_record_points * n_seeds * n_records + 8 * 6 * n_points * n_seeds
    # the recorded arrays are built once in the chunk and once in the concatenated dataset
    return int(concurrent * per_seed + 2 * dataset)


#: most seeds one call may request as a count (``seeds=n``); memory limits apply below it
MAX_SEEDS = 2**31 - 1
#: dask schedulers accepted by name (or a ``dask.distributed.Client``)
SCHEDULERS = ("threads", "threading", "processes", "multiprocessing", "synchronous", "sync",
              "single-threaded")
#: divergence threshold of the gradient flow: max |z|, |J| above it (or non-finite) is divergence
FLOW_DIVERGE_NORM = 1e100
#: default work budget of one flow member (right-hand-side evaluations)
FLOW_MAX_EVALS = 100_000


def _seed_count(seeds) -> int:
    """Number of seeds requested, checked before :func:`eosdyn.sweep.normalize_seeds` allocates."""
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, (bool, np.bool_)):
        return check_int("seeds", seeds, 1, MAX_SEEDS)
    return int(_sweep.normalize_seeds(seeds).size)


def _check_eta(eta) -> float:
    if not isinstance(eta, (str, bytes)) and np.ndim(eta) != 0:
        raise ValueError(f"eta must be a single number > 0: a list of learning rates is not supported as a "
                         f"sweep dim yet (call once per eta); got {eta!r}")
    return real_scalar("eta", eta, 0, None, lo_open=True)


def _check_scheduler(scheduler):
    if scheduler is None or (hasattr(scheduler, "compute") and hasattr(scheduler, "gather")):
        return scheduler
    if isinstance(scheduler, str) and scheduler in SCHEDULERS:
        return scheduler
    raise ValueError(f"scheduler must be None, one of {', '.join(map(repr, SCHEDULERS))} or a "
                     f"dask.distributed.Client; got {scheduler!r}")


def _check_resume(resume):
    if resume is None:
        return None
    if not isinstance(resume, (str, os.PathLike)) or (isinstance(resume, str) and not resume.strip()):
        raise TypeError(f"resume must be None or a directory path (str or os.PathLike); got {resume!r}")
    return resume


def _grid_inputs(D, P, sigma_z, sigma_J, sigma_J2):
    D = check_int("D", D, 1)
    P = check_int("P", P, 1)
    sz = _grid_values("sigma_z", sigma_z)
    if (sigma_J is None) == (sigma_J2 is None):
        raise ValueError("give exactly one of sigma_J and sigma_J2")
    if sigma_J is not None:
        sj_user = _grid_values("sigma_J", sigma_J)
        sj = sj_user
    else:
        sj_user = _grid_values("sigma_J2", sigma_J2)
        sj = np.sqrt(sj_user)
    return D, P, sz, sj, sj_user


def _grid_values(name: str, values) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values.values if isinstance(values, xr.DataArray) else values))
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a scalar or a 1-D array; got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty (empty grid)")
    check_range(name, arr, 0, None)
    arr = arr.astype(np.float64)
    if np.unique(arr).size != arr.size:
        raise ValueError(f"{name} must not contain duplicate values")
    return arr


def _record_mask(record_points, sz: np.ndarray, sj_user: np.ndarray) -> np.ndarray:
    """Boolean (n_sz, n_sJ) mask of the points whose trajectories are recorded."""
    if record_points is None:
        return np.ones((sz.size, sj_user.size), bool)
    try:
        pts = np.asarray(record_points, float)
    except (TypeError, ValueError):
        pts = np.zeros((0, 0))
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] == 0:
        raise ValueError("record_points must be a non-empty list of (sigma_z, sigma_J) pairs "
                         f"(sigma_J2 values if the grid was given as sigma_J2); got {record_points!r}")
    mask = np.zeros((sz.size, sj_user.size), bool)
    for a, b in pts:
        i = np.flatnonzero(np.isclose(sz, a, rtol=1e-12, atol=0))
        k = np.flatnonzero(np.isclose(sj_user, b, rtol=1e-12, atol=0))
        if i.size != 1 or k.size != 1:
            raise ValueError(f"record_points: ({a}, {b}) is not a point of the grid")
        mask[i[0], k[0]] = True
    return mask


def _sweep_chunk(seeds: np.ndarray, *, D, P, sz, sj, eta, max_steps, record_every, rmask, tol,
                 diverge_loss, cycle_tol, cycle_window, dtype, compact_fraction,
                 max_memory=None) -> xr.Dataset:
    """All grid points of each seed in ``seeds``; one batch (one shared Q) per seed."""
    nz, nj = sz.size, sj.size
    SZ, SJ = np.meshgrid(sz, sj, indexing="ij")
    flat_mask = rmask.ravel()
    outs = []
    for s in seeds:
        Q, J0, z0 = initial_state(int(s), D=D, P=P, sigma_z=SZ.ravel(), sigma_J=SJ.ravel(), dtype=dtype)
        res = run_gd(Q, J0, z0, eta, max_steps, record_every, tol=tol, diverge_loss=diverge_loss,
                     record_mask=flat_mask, cycle_tol=cycle_tol, cycle_window=cycle_window,
                     compact_fraction=compact_fraction,
                     **({} if max_memory is None else {"max_memory": max_memory}))
        outs.append(res)
    dims = ("sigma_z", "sigma_J", "seed")

    def stack(attr):
        return np.stack([getattr(r, attr).reshape(nz, nj, *getattr(r, attr).shape[1:]) for r in outs], axis=2)

    data = {
        "final_sharpness": (dims, stack("final_sharpness")),
        "final_loss": (dims, stack("final_loss")),
        "steps_taken": (dims, stack("steps_taken")),
        "status": (dims, stack("status").astype(np.int8)),
        "diverged_at": (dims, stack("diverged_at")),
    }
    coords = {"sigma_z": sz, "sigma_J": sj, "seed": np.asarray(seeds, np.int64)}
    if record_every > 0:
        data["sharpness"] = (dims + ("step",), stack("sharpness"))
        data["loss"] = (dims + ("step",), stack("loss"))
        data["z_norm"] = (dims + ("step",), stack("z_norm"))
        coords["step"] = outs[0].record_steps
    return xr.Dataset(data, coords=coords)


def sweep(*, D, P, sigma_z, sigma_J=None, sigma_J2=None, seeds, eta=1.0, max_steps, record=None,
          record_points=None, tol=1e-12, diverge_loss=1e8, cycle_tol=None, cycle_window=200,
          dtype="float64", max_memory="2GB", chunk_size=None, resume=None, scheduler=None,
          blas_threads=1, compact_fraction=0.125) -> xr.Dataset:
    """GD on random quadratic regression models over a (σ̃_z, σ̃_J) grid × seeds.

    Parameters
    ----------
    D, P : int
        Number of datapoints and of parameters (≥ 1).
    sigma_z : float or 1-D array
        Rescaled residual widths σ̃_z ≥ 0 (σ_z = σ̃_z / D).
    sigma_J, sigma_J2 : float or 1-D array
        Rescaled Jacobian widths σ̃_J ≥ 0 (σ_J = σ̃_J / (D P)^{1/4}), or their squares
        σ̃_J² (the paper's axis); give exactly one. The dataset stores ``sigma_J``
        (and ``sigma_J2`` as an extra coordinate when that was given).
    seeds : int or sequence of int
        ``n`` (seed values 0..n−1) or seed values; each member depends only on its
        seed value and grid point.
    eta : float, default 1.0
        Learning rate η > 0.
    max_steps : int
        Step limit (status ``max_steps`` when reached).
    record : int or {"final", "all"}, optional
        Record ``sharpness``, ``loss``, ``z_norm`` every ``record`` steps (step 0
        included; ``"all"`` = 1); default (``None`` or ``"final"``): final values only.
    record_points : list of (sigma_z, sigma_J) pairs, optional
        Record trajectories only at these grid points (NaN elsewhere). Pairs use
        the convention the grid was given in (σ̃_J² values with ``sigma_J2=``).
    tol : float, default 1e-12
        Converged when the loss ½‖z‖² < tol.
    diverge_loss : float, default 1e8
        Diverged when the loss is non-finite or above this (NaN afterwards).
    cycle_tol : float, optional
        Opt-in early stop with status ``cycle`` when ‖z_{t+2} − z_t‖ ≤ cycle_tol ‖z‖
        for ``cycle_window`` consecutive steps (period-2 orbit). Off by default.
    cycle_window : int, default 200
    dtype : {"float64", "float32"}
    max_memory : int or str, default "2GB"
        Budget for the predicted peak memory (:func:`estimate_memory`); a request
        above it raises ``ValueError``.
    chunk_size : int, optional
        Seeds per dask task (default 1). Results do not depend on it.
    resume : path-like, optional
        Directory where finished chunks are stored; rerunning resumes.
    scheduler : optional
        See :func:`eosdyn.sweep.run` (default: active distributed Client, else threads).
    blas_threads : int, default 1
        BLAS threads per chunk.
    compact_fraction : float, default 0.125
        Batch compaction threshold (see :func:`eosdyn.kernels.qrm.run_gd`).

    Returns
    -------
    xarray.Dataset
        Dims ``sigma_z``, ``sigma_J``, ``seed`` (and ``step`` when recording);
        scalar coords ``D``, ``P``, ``eta``; variables ``final_sharpness``,
        ``final_loss``, ``steps_taken``, ``status`` (CF flags), ``diverged_at``
        and, when recorded, ``sharpness``, ``loss``, ``z_norm``.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.qrm.sweep(D=6, P=12, sigma_z=[0.5, 2.0], sigma_J2=0.3, seeds=2, max_steps=300)
    >>> ds.final_sharpness.dims
    ('sigma_z', 'sigma_J', 'seed')
    """
    D, P, sz, sj, sj_user = _grid_inputs(D, P, sigma_z, sigma_J, sigma_J2)
    eta = _check_eta(eta)
    max_steps = check_int("max_steps", max_steps, 1, MAX_STEPS_LIMIT)
    if isinstance(record, str) and record in ("final", "all"):
        record = None if record == "final" else 1
    record_every = 0 if record is None else check_int("record", record, 1, MAX_STEPS_LIMIT)
    tol = real_scalar("tol", tol, 0, None, lo_open=True)
    diverge_loss = real_scalar("diverge_loss", diverge_loss, 0, None, lo_open=True)
    cycle_window = check_int("cycle_window", cycle_window, 1, MAX_STEPS_LIMIT)
    if cycle_tol is not None:
        cycle_tol = real_scalar("cycle_tol", cycle_tol, 0, None, lo_open=True)
    compact_fraction = real_scalar("compact_fraction", compact_fraction, 0, 1)
    dt = check_dtype(dtype)
    check_representable("sigma_z", sz, dt)
    check_representable("sigma_J" if sigma_J is not None else "sigma_J2", sj_user, dt)
    check_representable("eta", eta, dt)
    budget = parse_memory(max_memory)
    scheduler = _check_scheduler(scheduler)
    resume = _check_resume(resume)
    chunk_size = 1 if chunk_size is None else check_int("chunk_size", chunk_size, 1)
    if blas_threads is not None:
        blas_threads = check_int("blas_threads", blas_threads, 1)
    rmask = _record_mask(record_points, sz, sj_user)
    n_seeds = _seed_count(seeds)
    n_rec = (max_steps // record_every + 1) if record_every else 0
    concurrent = min(_sweep.n_workers(scheduler), _sweep.chunk_count(n_seeds, chunk_size))
    n_points = sz.size * sj.size
    need = estimate_memory(D=D, P=P, n_points=n_points, n_seeds=n_seeds,
                           n_record_points=n_points if record_every else 0, n_records=n_rec,
                           itemsize=dt.itemsize, concurrent=concurrent)
    check_budget(need, budget, f"this sweep ({n_points} grid points x {n_seeds} seeds, {n_rec} recorded steps, "
                 f"D={D}, P={P})", "record fewer steps (record=), use fewer seeds or grid points, "
                 "or raise max_memory")
    seed_vals = _sweep.normalize_seeds(seeds)

    params = dict(D=D, P=P, sigma_z=sz, seeds=seed_vals, eta=eta, max_steps=max_steps, record=record,
                  record_points=record_points, tol=tol, diverge_loss=diverge_loss,
                  cycle_tol=cycle_tol, cycle_window=cycle_window, dtype=dt.name,
                  compact_fraction=compact_fraction)
    if sigma_J is not None:
        params["sigma_J"] = sj
    else:
        params["sigma_J2"] = sj_user
    func = functools.partial(_sweep_chunk, D=D, P=P, sz=sz, sj=sj, eta=eta, max_steps=max_steps,
                             record_every=record_every, rmask=rmask, tol=tol,
                             diverge_loss=diverge_loss, cycle_tol=cycle_tol,
                             cycle_window=cycle_window, dtype=dt, compact_fraction=compact_fraction,
                             max_memory=budget)
    cfg = {"function": "eosdyn.qrm.sweep", "parameters": params}
    fingerprint = json.dumps({k: v for k, v in json.loads(_config(cfg)).items()
                              if k in ("function", "parameters")}, sort_keys=True)
    ds = _sweep.run(func, seed_vals, chunk_size=chunk_size, resume=resume, fingerprint=fingerprint,
                    scheduler=scheduler, blas_threads=blas_threads)
    ds = ds.assign_coords(D=np.int64(D), P=np.int64(P), eta=np.float64(eta))
    if sigma_J2 is not None:
        ds = ds.assign_coords(sigma_J2=("sigma_J", sj_user))
    ds["status"].attrs.clear()
    return label(ds, model="qrm", title=f"Random quadratic regression model, GD sweep (D={D}, P={P})",
                 equations=EQUATIONS, config=cfg,
                 attrs={"sigma_convention": SIGMA_CONVENTION, "Q_convention": Q_CONVENTION,
                        "random_streams": STREAMS, "sharpness_definition": "eta * lambda_max(J J^T); edge at 2",
                        "tol": float(tol), "diverge_loss": float(diverge_loss),
                        "cycle_tol": "none" if cycle_tol is None else float(cycle_tol),
                        "dtype": dt.name})


def _config(cfg) -> str:
    from ..conventions import config_json

    return config_json(cfg["function"], cfg["parameters"])


def _flow_rhs(t, y, A, D, P, eta):
    z = y[:D]
    J = y[D:].reshape(D, P)
    g = J.T @ z
    M = (g @ A).reshape(D, P)
    return np.concatenate([-eta * (J @ g), (-eta * M).ravel()])


def _solve_members(y0, times, args, **options):
    """:func:`solve_batch` one member at a time; a member on which the integrator itself raises
    (e.g. ``Radau``'s LU factorisation of a non-finite finite-difference Jacobian) is ``failed``
    at t = 0 instead of ending the whole call. The options are validated beforehand, so any
    ``ValueError`` here is that member's failure, never a bad option."""
    n, m = y0.shape
    k = times.size
    Y = np.full((n, k, m), np.nan)
    status = np.full(n, STATUS_VALUES["failed"], np.int8)
    t_stop = np.zeros(n)
    for i in range(n):
        try:
            y, st, ts = solve_batch(_flow_rhs, y0[i:i + 1], times, [args],
                                    diverge_norm=FLOW_DIVERGE_NORM, **options)
        except (ValueError, ArithmeticError):
            Y[i, times == 0.0] = y0[i]
            continue
        Y[i], status[i], t_stop[i] = y[0], st[0], ts[0]
    return Y, status, t_stop


def gradient_flow(*, D, P, sigma_z, sigma_J=None, sigma_J2=None, seeds, t_max, n_times=101, eta=1.0,
                  rtol=1e-10, atol=1e-14, method="DOP853", max_evals=FLOW_MAX_EVALS,
                  max_memory="2GB") -> xr.Dataset:
    """Gradient flow of random QRMs (Eq. 21-22 with rate η) for grid points × seeds.

    Solves ``ż = −η J Jᵀ z``, ``J̇ = −η Q(Jᵀz, ·)`` from the same initial conditions
    as :func:`sweep` (same seeds → same ``Q``, ``z₀``, ``J₀``), one trajectory at a time,
    with the shared integrator :func:`eosdyn.kernels.integrate.solve_batch`. A member's fate
    is data: a blow-up or a failed integration stops that member (``status``, ``t_stop``,
    NaN afterwards); the others go on.

    Parameters
    ----------
    D, P, sigma_z, sigma_J, sigma_J2, seeds, eta
        As in :func:`sweep`.
    t_max : float
        Final time (finite, > 0).
    n_times : int, default 101
        Output times ``linspace(0, t_max, n_times)``, 2 ≤ n_times ≤ 10⁶.
    rtol, atol : float
        Integrator tolerances: ``rtol`` in [100 eps, 1] (eps = 2.2e-16), ``atol`` finite and > 0.
    method : str, default "DOP853"
        ``"DOP853"``, ``"RK45"``, ``"RK23"``, ``"Radau"``, ``"BDF"`` or ``"LSODA"``.
    max_evals : int, default 100_000
        Work budget per member: right-hand-side evaluations (1 to 10⁹). A member that needs
        more stops with status ``failed``.
    max_memory : int or str, default "2GB"
        Budget for the predicted memory (sampled states and the dataset); above it a
        ``ValueError`` naming ``max_memory`` states the estimate.

    Returns
    -------
    xarray.Dataset
        Dims ``sigma_z``, ``sigma_J``, ``seed``, ``time``; variables ``sharpness``
        (η λ_max), ``loss``, ``z_norm`` (NaN after a member stopped) and per member
        ``status`` (CF flags: ``max_steps`` reached ``t_max``; ``diverged``: max(|z|, |J|)
        above 1e100, a non-finite state, or a sampled loss or sharpness that is not finite;
        ``failed``: step size too small or the ``max_evals`` budget spent), ``diverged``
        and ``t_stop`` (the time reached).

    Raises
    ------
    ValueError, TypeError
        Naming the parameter and its allowed range, before anything is integrated.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.qrm.gradient_flow(D=4, P=8, sigma_z=1.0, sigma_J=0.5, seeds=1, t_max=2.0, n_times=3)
    >>> bool((ds.loss.diff("time") <= 0).all()), str(eosdyn.conventions.decode_status(ds.status).item())
    (True, 'max_steps')

    A blow-up is a flagged member, not an exception:

    >>> ds = eosdyn.qrm.gradient_flow(D=2, P=3, sigma_z=1e150, sigma_J=0.5, seeds=1, t_max=1.0, n_times=3)
    >>> str(eosdyn.conventions.decode_status(ds.status).item()), bool(ds.loss.isnull()[..., 1:].all())
    ('diverged', True)
    """
    D, P, sz, sj, sj_user = _grid_inputs(D, P, sigma_z, sigma_J, sigma_J2)
    eta = _check_eta(eta)
    t_max = real_scalar("t_max", t_max, 0, None, lo_open=True)
    n_times = check_int("n_times", n_times, 2, MAX_TIMES)
    rtol, atol, method, _, max_evals = check_flow_options(
        rtol=rtol, atol=atol, method=method, diverge_norm=FLOW_DIVERGE_NORM, max_evals=max_evals)
    budget = parse_memory(max_memory)
    n_seeds = _seed_count(seeds)
    B = sz.size * sj.size
    m = D + D * P
    # per seed: the sampled states (solve_batch) and their contiguous J copy for λ_max, Q and
    # its operand; the dataset: 3 variables (+ the per-seed blocks they are built from)
    need = 8 * (2 * B * n_times * m + 3 * D * P * P + 2 * 3 * B * n_seeds * n_times + 4 * B * n_seeds)
    check_budget(need, budget, f"this flow ({B} grid points x {n_seeds} seeds, {n_times} times, D={D}, P={P})",
                 "use fewer times (n_times=), seeds or grid points, or raise max_memory")
    seed_vals = _sweep.normalize_seeds(seeds)
    times = np.linspace(0.0, t_max, n_times)
    shape = (sz.size, sj.size, seed_vals.size, n_times)
    sharp = np.empty(shape)
    loss = np.empty(shape)
    status = np.empty(shape[:3], np.int8)
    t_stop = np.empty(shape[:3])
    SZ, SJ = np.meshgrid(sz, sj, indexing="ij")
    for k, s in enumerate(seed_vals):
        Q, J0, z0 = initial_state(int(s), D=D, P=P, sigma_z=SZ.ravel(), sigma_J=SJ.ravel())
        A = q_operator(Q)
        y0 = np.concatenate([z0, J0.reshape(B, D * P)], axis=1)
        Y, st, ts = _solve_members(y0, times, (A, D, P, eta), rtol=rtol, atol=atol, method=method,
                                   max_evals=max_evals)
        with np.errstate(over="ignore", invalid="ignore"):
            L = 0.5 * np.sum(Y[:, :, :D] ** 2, axis=2)
            S = eta * lambda_max(np.ascontiguousarray(Y[:, :, D:]).reshape(B * n_times, D, P)).reshape(B, n_times)
        # a sampled loss or sharpness that is not finite before the stop: diverged there
        reached = times[None, :] <= ts[:, None]
        blown = reached & ~(np.isfinite(L) & np.isfinite(S))
        for b in np.flatnonzero(blown.any(axis=1)):
            first = int(np.argmax(blown[b]))
            st[b] = STATUS_VALUES["diverged"]
            ts[b] = min(ts[b], times[first])
            L[b, first + 1:] = np.nan
            S[b, first + 1:] = np.nan
        loss[:, :, k] = L.reshape(sz.size, sj.size, n_times)
        sharp[:, :, k] = S.reshape(sz.size, sj.size, n_times)
        status[:, :, k] = st.reshape(sz.size, sj.size)
        t_stop[:, :, k] = ts.reshape(sz.size, sj.size)
    dims = ("sigma_z", "sigma_J", "seed", "time")
    from ..kernels.qrm import _z_norm

    ds = xr.Dataset({"sharpness": (dims, sharp), "loss": (dims, loss), "z_norm": (dims, _z_norm(loss)),
                     "status": (dims[:3], status), "diverged": (dims[:3], status == STATUS_VALUES["diverged"]),
                     "t_stop": (dims[:3], t_stop)},
                    coords={"sigma_z": sz, "sigma_J": sj, "seed": seed_vals, "time": times,
                            "D": np.int64(D), "P": np.int64(P), "eta": np.float64(eta)})
    if sigma_J2 is not None:
        ds = ds.assign_coords(sigma_J2=("sigma_J", sj_user))
    params = dict(D=D, P=P, sigma_z=sz, seeds=seed_vals, t_max=t_max, n_times=n_times, eta=eta,
                  rtol=rtol, atol=atol, method=method, max_evals=max_evals)
    params["sigma_J" if sigma_J is not None else "sigma_J2"] = sj_user
    ds = label(ds, model="qrm_flow", title=f"Random quadratic regression model, gradient flow (D={D}, P={P})",
               equations="Eq. 21-22 (gradient flow), Eq. 29, Theorem 4.1 ensemble (Agarwala et al. 2023)",
               config={"function": "eosdyn.qrm.gradient_flow", "parameters": params},
               attrs={"sigma_convention": SIGMA_CONVENTION, "Q_convention": Q_CONVENTION,
                      "random_streams": STREAMS, "integrator": f"scipy.integrate.OdeSolver method={method}",
                      "rtol": rtol, "atol": atol, "max_evals": int(max_evals),
                      "divergence_threshold": FLOW_DIVERGE_NORM})
    ds["t_stop"].attrs.update(long_name="time the flow reached (t_max unless it diverged or failed)", units="1")
    return ds
