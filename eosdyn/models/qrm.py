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

and every grid point ``(σ̃_z, σ̃_J, η)`` of that seed starts from
``z₀ = σ_z ẑ``, ``J₀ = σ_J Ĵ`` with the raw widths of Eq. 29,
``σ_z = σ̃_z / D`` and ``σ_J = σ̃_J / (D P)^{1/4}`` (:func:`eosdyn.theory.unrescale_sigmas`).
The streams come from ``numpy.random.SeedSequence(s).spawn(3)`` (Q, ẑ, Ĵ), always drawn in
float64 (float32 runs use the rounded draws), so a member's result depends only on its
seed value and its grid point.

``sharpness`` is η λ_max(J Jᵀ) (the edge of stability is 2); ``loss`` is ½‖z‖², the quantity
``tol`` and ``diverge_loss`` act on.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
import xarray as xr

from .. import sweep as _sweep
from .._validate import (check_batch_size, check_dtype, check_gd_options, check_int, check_optimizer, check_range,
                         check_times, make_grid)
from ..conventions import STATUS_VALUES, config_json, fate_variables, label, set_roles
from ..kernels.integrate import check_flow_options, solve_batch
from ..kernels.lambda_max import lambda_max
from ..kernels.qrm import (FORCE_VARIABLES, MAX_STEPS_LIMIT, SHARPNESS_VARIANTS, check_budget, check_representable, initial_values,
                           parse_memory, q_operator, real_scalar, run_gd)
from ..systems import Param, System, register
from ..theory.optim import optimizer_edge
from ..theory.qrm import _raw_widths

__all__ = ["sweep", "gradient_flow", "instance", "initial_state", "estimate_memory"]

EQUATIONS = "Eq. 24-26 (GD), Eq. 29 (rescaled widths), Theorem 4.1 ensemble (Agarwala et al. 2023)"
FLOW_EQUATIONS = "Eq. 21-22 (gradient flow), Eq. 29, Theorem 4.1 ensemble (Agarwala et al. 2023)"
SIGMA_CONVENTION = ("sigma_z and sigma_J are the rescaled widths of Eq. 29: z0 = (sigma_z / D) * zhat, "
                    "J0 = (sigma_J / (D P)^(1/4)) * Jhat with zhat, Jhat i.i.d. N(0, 1)")
Q_CONVENTION = ("Q = (G + G^T)/sqrt(2) (transpose of the last two indices), G i.i.d. N(0, 1): "
                "off-diagonal variance 1, diagonal variance 2")
STREAMS = "numpy.random.SeedSequence(seed).spawn(3) -> (Q, zhat, Jhat), PCG64, drawn in float64"
SHARPNESS = "eta * lambda_max(J J^T); edge at 2"
#: the update rules (attribute ``optimizer_convention`` of non-GD datasets)
OPTIMIZER_CONVENTIONS = {
    "gd": "theta <- theta - eta g",
    "momentum": "v <- momentum v + g; theta <- theta - eta v (heavy ball)",
    "nesterov": "v <- momentum v + g; theta <- theta - eta (g + momentum v) (PyTorch form)",
    "rmsprop": "s <- beta2 s + (1 - beta2) g^2; theta <- theta - eta g / (sqrt(s) + epsilon)",
    "adam": "m <- beta1 m + (1 - beta1) g; v <- beta2 v + (1 - beta2) g^2; mhat = m / (1 - beta1^t), "
            "vhat = v / (1 - beta2^t); theta <- theta - eta mhat / (sqrt(vhat) + epsilon)",
}
BATCH_STREAMS = ("minibatch of each step: numpy.random.SeedSequence(seed, spawn_key=(3, 0)) -> "
                 "sorted(permutation(D)[:batch_size]); g_B = (D / batch_size) J_B^T z_B")

#: defaults of the shared GD options (docs' option table)
DEFAULTS = {"record_every": None, "stop": "member", "tol": 1e-12, "diverge_loss": 1e8, "dtype": "float64"}
#: divergence threshold of the gradient flow's integrator: max abs(z), abs(J) above it (or non-finite)
FLOW_DIVERGE_NORM = 1e100
#: default work budget of one flow member (right-hand-side evaluations)
FLOW_MAX_EVALS = 100_000
_GRID = ("sigma_z", "sigma_J", "eta")


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
    """Initial ``(Q, J₀, z₀)`` of one seed for grid points ``(σ̃_z[i], σ̃_J[i])`` (paired 1-D arrays
    of rescaled widths, Eq. 29).

    Returns ``Q`` (D × P × P), ``J0`` (B × D × P), ``z0`` (B × D) in ``dtype``.

    Examples
    --------
    >>> Q, J0, z0 = initial_state(0, D=3, P=4, sigma_z=[1.0, 2.0], sigma_J=[0.5, 0.5])
    >>> J0.shape, z0.shape
    ((2, 3, 4), (2, 3))
    """
    dt = check_dtype(dtype)
    Q, zhat, Jhat = instance(seed, D=D, P=P)
    sz, sj = _raw_widths(D, P, np.atleast_1d(np.asarray(sigma_z, float)), np.atleast_1d(np.asarray(sigma_J, float)))
    z0 = (sz[:, None] * zhat[None, :]).astype(dt)
    J0 = (sj[:, None, None] * Jhat[None, :, :]).astype(dt)
    return Q.astype(dt), J0, z0


def estimate_memory(*, D: int, P: int, n_points: int, n_seeds: int, n_record_points: int,
                    n_records: int, itemsize: int, concurrent: int, n_variants: int = 0,
                    optimizer_state: bool = False) -> int:
    """Predicted peak memory (bytes) of a sweep.

    Working set per running seed: the float64 draws of ``Q`` (2 D P²), ``Q`` and its GEMM
    operand in the run's dtype (2 D P²), the batch state ``J``, ``Q(g,·)`` and the initial
    ``J₀`` (3 B D P), plus the recorded trajectories of that seed (3 variables × points ×
    records); ``concurrent`` seeds run at once. The assembled dataset holds the recorded
    trajectories of all seeds (3 × points × seeds × records) and the final values. Each recorded
    sharpness variant (``n_variants``) adds a trajectory and a final value; an optimizer other
    than GD (``optimizer_state``) adds its update and state (3 B P per running seed).
    :func:`sweep` records every grid point's row (NaN outside ``record_points``), so it
    passes ``n_record_points = n_points``.

    Examples
    --------
    >>> estimate_memory(D=60, P=120, n_points=400, n_seeds=100, n_record_points=0,
    ...                 n_records=0, itemsize=8, concurrent=2) / 1e6  # MB
    197.376
    """
    nv = 3 + n_variants
    per_seed = (8 * 2 * D * P * P + itemsize * (2 * D * P * P + 3 * n_points * D * P)
                + 3 * itemsize * n_points * P * bool(optimizer_state) + nv * 8 * n_record_points * n_records)
    dataset = nv * 8 * n_record_points * n_seeds * n_records + 8 * (6 + n_variants) * n_points * n_seeds
    # the recorded arrays are built once in the chunk and once in the concatenated dataset
    return int(concurrent * per_seed + 2 * dataset)


# ----------------------------------------------------------------------------- the grid
def _grid_param(name: str, value, *, positive: bool = False):
    """A grid parameter as given (scalar, 1-D array or DataArray), checked: real, finite, >= 0
    (> 0 when ``positive``), no duplicates along a 1-D array. Returns a float, a float64 array
    or a float64 DataArray."""
    if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
        raise ValueError(f"{name} must be a number, a 1-D array of numbers or an xarray.DataArray; got {value!r}")
    arr = np.asarray(value.values if isinstance(value, xr.DataArray) else value)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be a number, a 1-D array of numbers or an xarray.DataArray; got {value!r}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty (empty grid)")
    check_range(name, arr, 0, None, lo_open=positive)
    if isinstance(value, xr.DataArray):
        return value.astype(np.float64)
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a scalar, a 1-D array or an xarray.DataArray; got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if arr.ndim == 1 and np.unique(arr).size != arr.size:
        raise ValueError(f"{name} must not contain duplicate values")
    return float(arr) if arr.ndim == 0 else arr


def _grid(D, P, sigma_z, sigma_J, sigma_J2, eta, hyper=None):
    """Validated sizes, the labelled grid of (sigma_z, sigma_J, eta) and the parameters as given.

    ``sigma_J2`` becomes ``sigma_J = sqrt(sigma_J2)`` with ``sigma_J2`` as a further coordinate
    on the same dims (a 1-D ``sigma_J2`` makes the dim ``sigma_J``).
    """
    D = check_int("D", D, 1)
    P = check_int("P", P, 1)
    if (sigma_J is None) == (sigma_J2 is None):
        raise ValueError("give exactly one of sigma_J and sigma_J2")
    given = {"sigma_z": _grid_param("sigma_z", sigma_z)}
    if sigma_J is not None:
        given["sigma_J"] = sj = _grid_param("sigma_J", sigma_J)
    else:
        given["sigma_J2"] = sj2 = _grid_param("sigma_J2", sigma_J2)
        if isinstance(sj2, xr.DataArray):
            sj = np.sqrt(sj2).rename("sigma_J").assign_coords(sigma_J2=sj2.variable)
        elif np.ndim(sj2):
            sj = xr.DataArray(np.sqrt(sj2), dims=["sigma_J"], coords={"sigma_J": np.sqrt(sj2),
                                                                      "sigma_J2": ("sigma_J", sj2)})
        else:
            sj = xr.DataArray(math.sqrt(sj2), coords={"sigma_J2": sj2})
    given["eta"] = _grid_param("eta", eta, positive=True)
    for name, v in (hyper or {}).items():  # optimizer hyperparameters (ranges checked by check_optimizer)
        given[name] = _grid_param(name, v)
    grid = make_grid(sigma_z=given["sigma_z"], sigma_J=sj, **{k: v for k, v in given.items()
                                                               if k not in ("sigma_z", "sigma_J", "sigma_J2")})
    return D, P, grid, given


def _grid_coords(grid) -> dict:
    """Coordinates of the grid: dim coordinates, scalar parameters as 0-d coordinates."""
    coords = {k: v for k, v in grid.coords.items()}
    for name, da in grid.arrays.items():
        if da.ndim == 0:
            coords[name] = ((), np.float64(da.item()))
    return coords


def _record_mask(record_points, grid, by_sigma_J2: bool) -> np.ndarray:
    """Boolean mask (flat grid points) of the points whose trajectories are recorded."""
    n = grid.size
    if record_points is None:
        return np.ones(n, bool)
    try:
        pts = np.asarray(record_points, float)
    except (TypeError, ValueError):
        pts = np.zeros((0, 0))
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] == 0:
        raise ValueError("record_points must be a non-empty list of (sigma_z, sigma_J) pairs "
                         f"(sigma_J2 values if the grid was given as sigma_J2); got {record_points!r}")
    sz = grid.flat("sigma_z")
    sj = grid.flat("sigma_J")
    if by_sigma_J2:  # compare with the sigma_J2 values as given
        c = grid.arrays["sigma_J"].coords["sigma_J2"]
        sj = np.ascontiguousarray(np.broadcast_to(
            c.transpose(*[d for d in grid.dims if d in c.dims]).values
            .reshape([c.sizes[d] if d in c.dims else 1 for d in grid.dims]), grid.shape).ravel())
    mask = np.zeros(n, bool)
    for a, b in pts:
        hit = np.isclose(sz, a, rtol=1e-12, atol=0) & np.isclose(sj, b, rtol=1e-12, atol=0)
        if not hit.any():
            raise ValueError(f"record_points: ({a}, {b}) is not a point of the grid")
        mask |= hit
    return mask


def _eta_groups(eta_flat: np.ndarray) -> list[tuple[float, np.ndarray | None]]:
    """Grid points sharing one learning rate run as one batch (one shared Q per seed); ``None``
    indices = every point (the grid order, as one batch)."""
    values, first = np.unique(eta_flat, return_index=True)
    if values.size == 1:
        return [(float(values[0]), None)]
    return [(float(v), np.flatnonzero(eta_flat == v)) for v in eta_flat[np.sort(first)]]


def _step_groups(columns: np.ndarray) -> list[tuple[tuple, np.ndarray | None]]:
    """Grid points sharing one learning rate and optimizer hyperparameters (the rows of
    ``columns``, points × (1 + hyperparameters)) run as one batch; ``None`` indices = every point."""
    values, first, inverse = np.unique(columns, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    if values.shape[0] == 1:
        return [(tuple(float(x) for x in values[0]), None)]
    order = np.argsort(first, kind="stable")
    return [(tuple(float(x) for x in values[k]), np.flatnonzero(inverse == k)) for k in order]


def _seed_dims(grid) -> tuple[str, ...]:
    return grid.dims + ("seed",)


# ----------------------------------------------------------------------------- GD sweep
def _sweep_chunk(seeds: np.ndarray, *, D, P, grid, steps, every, stop, rmask, tol, diverge_loss,
                 cycle_tol, cycle_window, dtype, compact_fraction, max_memory, optimizer="gd", hyper_names=(),
                 batch_size=None, variants=(), forces=False) -> xr.Dataset:
    """All grid points of each seed in ``seeds``; one batch (one shared Q) per seed, eta and
    optimizer hyperparameters."""
    kernel_variants = tuple(variants)
    variants = kernel_variants + (FORCE_VARIABLES if forces else ())  # everything recorded like sharpness
    sz, sj, eta_flat = grid.flat("sigma_z"), grid.flat("sigma_J"), grid.flat("eta")
    if hyper_names:
        groups = _step_groups(np.stack([eta_flat] + [grid.flat(h) for h in hyper_names], axis=1))
    else:
        groups = [((eta,), sub) for eta, sub in _eta_groups(eta_flat)]
    n, S = grid.size, len(seeds)
    R = steps // every + 1 if every else 2
    per = {k: np.full((S, n), np.nan, dtype) for k in ("final_sharpness", "final_loss")}
    per.update({f"final_{k}": np.full((S, n), np.nan, dtype) for k in variants})
    per.update({k: np.empty((S, n), np.int64) for k in ("steps_taken", "diverged_at", "converged_at")})
    per["status"] = np.empty((S, n), np.int8)
    traj = {k: np.full((S, n, R), np.nan, dtype) for k in ("sharpness", "loss") + tuple(variants)}
    for i, s in enumerate(seeds):
        Q, J0, z0 = initial_state(int(s), D=D, P=P, sigma_z=sz, sigma_J=sj, dtype=dtype)
        for (eta, *hv), sub in groups:
            Jg, zg = (J0, z0) if sub is None else (J0[sub], z0[sub])
            at = slice(None) if sub is None else sub
            extra = {}
            if optimizer != "gd" or batch_size is not None or variants:
                extra = dict(optimizer=optimizer, **dict(zip(hyper_names, hv)), batch_size=batch_size,
                             batch_seed=np.random.SeedSequence(int(s), spawn_key=(3,)),
                             sharpness_variants=kernel_variants, **({"record_forces": True} if forces else {}))
            # record_every=None with variants: record step 0 only (the last step comes from the finals)
            rec = every if (every or not variants) else steps + 1
            res = run_gd(Q, Jg, zg, eta, steps, rec, tol=tol, diverge_loss=diverge_loss,
                         record_mask=rmask[at], cycle_tol=cycle_tol, cycle_window=cycle_window,
                         compact_fraction=compact_fraction, max_memory=max_memory, stop=stop, **extra)
            for k in ("final_sharpness", "final_loss", "steps_taken", "diverged_at", "converged_at", "status"):
                per[k][i, at] = getattr(res, k)
            for k in variants:
                per[f"final_{k}"][i, at] = res.final_variants[k]
            if every:
                traj["sharpness"][i, at] = res.sharpness
                traj["loss"][i, at] = res.loss
                for k in variants:
                    traj[k][i, at] = res.variants[k]
            else:  # step 0 here; the last step once every chunk is done (_final_steps)
                loss0, sharp0 = initial_values(Jg, zg, eta)
                keep = rmask[at]
                traj["loss"][i, at, 0] = np.where(keep, loss0, np.nan)
                traj["sharpness"][i, at, 0] = np.where(keep, sharp0, np.nan)
                for k in variants:
                    traj[k][i, at, 0] = res.variants[k][:, 0]
    dims = _seed_dims(grid)

    def member(a):  # (seed, point, ...) -> grid shape + (seed, ...)
        return np.moveaxis(a.reshape((S,) + grid.shape + a.shape[2:]), 0, len(grid.shape))

    data = {k: (dims, member(v)) for k, v in per.items()}
    data.update({k: (dims + ("record",), member(v)) for k, v in traj.items()})
    if not every:
        data["recorded"] = (dims, member(np.broadcast_to(rmask, (S, n))))
    return xr.Dataset(data, coords={"seed": np.asarray(seeds, np.int64)})


def _final_steps(ds: xr.Dataset) -> xr.Dataset:
    """``record_every=None``: the step axis [0, n], n the last step any member took; a member's
    value at n is its final value if it ran to n, NaN otherwise."""
    n = int(ds["steps_taken"].max())
    ran = (ds["steps_taken"] == n) & ds["recorded"]
    out = ds.drop_vars("recorded")
    for k in ("sharpness", "loss") + tuple(v for v in SHARPNESS_VARIANTS + FORCE_VARIABLES if v in ds):
        last = ds[f"final_{k}"].where(ran)
        out[k] = xr.concat([ds[k].isel(record=0), last], dim="record").transpose(*ds[k].dims)
    steps = np.array([0, n], np.int64)
    if n == 0:
        out = out.isel(record=[0])
        steps = steps[:1]
    return out.rename({"record": "step"}).assign_coords(step=steps)


def sweep(*, D, P, sigma_z, sigma_J=None, sigma_J2=None, eta=1.0, seeds, steps, record_every=None,
          record_points=None, stop="member", tol=1e-12, diverge_loss=1e8, dtype="float64",
          cycle_tol=None, cycle_window=200, compact_fraction=0.125, max_memory="2GB", chunk_size=None,
          resume=None, scheduler=None, blas_threads=1, optimizer="gd", momentum=None, beta1=None, beta2=None,
          epsilon=None, batch_size=None, sharpness_variants=None, forces=False) -> xr.Dataset:
    """GD (or momentum, Nesterov, RMSProp, Adam, minibatch SGD) on random quadratic regression
    models over a (σ̃_z, σ̃_J, η, hyperparameters) grid × seeds.

    Parameters
    ----------
    D, P : int
        Number of datapoints and of parameters (≥ 1).
    sigma_z : float, 1-D array or xarray.DataArray
        Rescaled residual widths σ̃_z ≥ 0 of Eq. 29 (raw σ_z = σ̃_z / D). A scalar is a 0-d
        coordinate, a 1-D array a dim ``sigma_z``, a DataArray keeps its own dims.
    sigma_J, sigma_J2 : float, 1-D array or xarray.DataArray
        Rescaled Jacobian widths σ̃_J ≥ 0 (raw σ_J = σ̃_J / (D P)^{1/4}), or their squares
        σ̃_J² (the paper's axis); give exactly one. The dataset stores ``sigma_J``
        (and ``sigma_J2`` as a further coordinate on the same dims when that was given).
    eta : float, 1-D array or xarray.DataArray, default 1.0
        Learning rate η > 0; an array becomes a dim like ``sigma_z``.
    seeds : int or sequence of int
        ``n`` (seed values 0..n−1) or seed values; each member depends only on its
        seed value and grid point.
    steps : int
        Most GD steps (status ``max_steps`` when reached), 0 ≤ steps ≤ 2⁵³.
    record_every : int, optional
        Record ``sharpness`` and ``loss`` every ``record_every`` steps (step 0 included).
        Default ``None``: step 0 and the last step ``n`` any member took (the step
        coordinate is ``[0, n]``; a member that stopped before ``n`` is NaN there).
    record_points : list of (sigma_z, sigma_J) pairs, optional
        Record trajectories only at these grid points (NaN elsewhere), for every η. Pairs use
        the convention the grid was given in (σ̃_J² values with ``sigma_J2=``).
    stop : {"member", "never", "batch"}, default "member"
        ``"member"``: a member stops at its own fate (NaN afterwards). ``"never"``: every
        member runs all ``steps`` unless it diverges (a converged member keeps iterating and
        keeps status ``converged``). ``"batch"``: every member runs until every member of the
        sweep has a fate (computed in two passes: the fates, then the common length).
    tol : float, default 1e-12
        A member converges when its loss ½‖z‖² < tol (0: never).
    diverge_loss : float, default 1e8
        It diverges when the loss is above this or not finite (NaN afterwards); a λ_max that
        overflows is divergence too.
    dtype : {"float64", "float32"}
    cycle_tol : float, optional
        Opt-in early stop with status ``cycle`` when ‖z_{t+2} − z_t‖ ≤ cycle_tol ‖z‖
        for ``cycle_window`` consecutive steps (period-2 orbit); needs ``stop="member"``.
    cycle_window : int, default 200
    compact_fraction : float, default 0.125
        Batch compaction threshold (see :func:`eosdyn.kernels.qrm.run_gd`).
    max_memory : int or str, default "2GB"
        Budget for the predicted peak memory (:func:`estimate_memory`); a request
        above it raises ``ValueError``.
    chunk_size, resume, scheduler, blas_threads
        Execution through :func:`eosdyn.sweep.run` (seeds per dask task, default 1; a folder
        to resume from; the dask scheduler; BLAS threads per chunk). Results do not depend on
        them.
    optimizer : {"gd", "momentum", "nesterov", "rmsprop", "adam"}, default "gd"
        The update rule, with the conventions of :func:`eosdyn.kernels.qrm.run_gd` (heavy ball
        v ← βv + g, θ ← θ − ηv; Nesterov in the PyTorch form θ ← θ − η(g + βv); RMSProp
        s ← β₂s + (1 − β₂)g², θ ← θ − ηg/(√s + ε); Adam with bias-corrected m̂, v̂,
        θ ← θ − ηm̂/(√v̂ + ε)). The kernel moves (z, J) exactly along each update.
    momentum, beta1, beta2, epsilon : float, 1-D array or xarray.DataArray, optional
        The optimizer's hyperparameters (defaults 0.9, 0.9, 0.999, 1e-8; β's in [0, 1),
        ε > 0), grid parameters like ``eta`` (a 1-D array becomes a dim). ``momentum`` belongs
        to momentum/nesterov, ``beta2``/``epsilon`` to rmsprop, ``beta1``/``beta2``/``epsilon``
        to adam; one the optimizer does not use is refused.
    batch_size : int, optional
        Minibatch SGD over the D outputs (1 ≤ b ≤ D): each update uses the batch gradient
        g_B = (D/b) J_Bᵀ z_B of b outputs drawn without replacement at every step from the
        stream ``SeedSequence(seed, spawn_key=(3,))`` of the member's seed (the same batches
        for every grid point of a seed); ``loss``, ``tol`` and ``diverge_loss`` stay on the
        full loss ½‖z‖². Default None: full batch (``batch_size = D`` is the same).
    sharpness_variants : sequence of str, optional
        Further sharpness measures recorded like ``sharpness`` (with ``final_`` values):
        ``"hessian_sharpness"`` η λ_max(H), H = JᵀJ + Σ_a z_a Q_a; ``"preconditioned_sharpness"``
        η λ_max(P⁻¹H) with the optimizer's current preconditioner (rmsprop/adam);
        ``"batch_sharpness"`` η E_B[g_Bᵀ H_B g_B / ‖g_B‖²] (32 Monte Carlo batches per step;
        exact η gᵀHg/‖g‖² at full batch). The optimizer's own sharpness is always recorded:
        ``preconditioned_sharpness`` for rmsprop/adam, ``batch_sharpness`` for minibatch
        gd/momentum/nesterov. Each costs an eigen-decomposition of a P × P matrix per member
        and recorded step.
    forces : bool, default False
        Also record the self-stabilization quantities of Damian, Nichani & Lee (2023) like
        ``sharpness`` (every ``record_every`` steps, or at step 0 and the stops; ``final_``
        values): ``sharpening_force`` α = −∇L·∇S, ``stabilization_strength`` β = ‖∇S‖² and
        ``predicted_oscillation`` 2α/β, S = λ_max(H) with ∇S in closed form (exact for the
        QRM; :func:`eosdyn.kernels.derivatives.self_stabilization_terms`). One top eigenpair
        of the P × P Hessian per member and recorded step (cost: docs/benchmarks.md); the
        trajectories are unchanged.

    Returns
    -------
    xarray.Dataset
        Dims: the array-valued grid parameters (``sigma_z``, ``sigma_J``, ``eta``, then the
        optimizer's hyperparameters, in this order), ``seed``, ``step``; scalar coords ``D``,
        ``P`` (and each scalar grid parameter); the coordinate ``edge`` (the optimizer's edge of
        stability, :func:`eosdyn.theory.optim.optimizer_edge`: 2 for GD; on the hyperparameters'
        dims); ``sharpness``, ``loss`` (and the variants) on ``step``; per member ``status`` (CF
        flags), ``steps_taken``, ``diverged_at``, ``converged_at`` (−1: never),
        ``final_sharpness``, ``final_loss`` (and ``final_`` of each variant); attrs ``tol``,
        ``diverge_loss``, ``stop``, ``optimizer``, ``batch_size`` (0: full batch) and the role
        map, whose ``sharpness`` is the optimizer's own sharpness (the one ``edge`` applies to).

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.qrm.sweep(D=6, P=12, sigma_z=[0.5, 2.0], sigma_J2=0.3, seeds=2, steps=300)
    >>> ds.final_sharpness.dims, ds.sharpness.dims
    (('sigma_z', 'seed'), ('sigma_z', 'seed', 'step'))
    >>> ds = eosdyn.qrm.sweep(D=4, P=6, sigma_z=0.3, sigma_J=0.6, eta=[0.5, 1.0], seeds=1, steps=50,
    ...                       record_every=10)
    >>> ds.sharpness.dims, ds.step.values.tolist()
    (('eta', 'seed', 'step'), [0, 10, 20, 30, 40, 50])

    Heavy-ball momentum over a grid of β; the edge 2(1 + β) is a coordinate:

    >>> ds = eosdyn.qrm.sweep(D=4, P=6, sigma_z=0.3, sigma_J=0.6, eta=0.5, seeds=2, steps=50,
    ...                       optimizer="momentum", momentum=[0.0, 0.5])
    >>> ds.final_sharpness.dims, ds.edge.values.tolist()
    (('momentum', 'seed'), [2.0, 3.0])

    Adam records its preconditioned sharpness (the ``sharpness`` role, against Adam's edge):

    >>> ds = eosdyn.qrm.sweep(D=4, P=6, sigma_z=0.3, sigma_J=0.6, eta=0.01, seeds=1, steps=20,
    ...                       optimizer="adam", beta1=0.9)
    >>> ds.attrs["eosdyn_roles"].split("; ")[0], round(float(ds.edge), 9)
    ('sharpness: preconditioned_sharpness', 38.0)
    """
    optimizer, hyper = check_optimizer(optimizer, momentum=momentum, beta1=beta1, beta2=beta2, epsilon=epsilon)
    batch_size = check_batch_size(batch_size, check_int("D", D, 1))
    if batch_size == D:
        batch_size = None  # the full batch
    variants = _variants(optimizer, batch_size, sharpness_variants)
    if not isinstance(forces, (bool, np.bool_)):
        raise TypeError(f"forces must be True or False; got {forces!r}")
    forces = bool(forces)
    recorded = variants + (FORCE_VARIABLES if forces else ())
    D, P, grid, given = _grid(D, P, sigma_z, sigma_J, sigma_J2, eta, hyper)
    steps, every, stop, tol, diverge_loss, dt = check_gd_options(
        steps=steps, record_every=record_every, stop=stop, tol=tol, diverge_loss=diverge_loss, dtype=dtype,
        max_steps=MAX_STEPS_LIMIT)
    cycle_window = check_int("cycle_window", cycle_window, 1, MAX_STEPS_LIMIT)
    if cycle_tol is not None:
        cycle_tol = real_scalar("cycle_tol", cycle_tol, 0, None, lo_open=True)
        if stop != "member":
            raise ValueError(f"cycle_tol is an early stop of a member: it needs stop='member'; got stop={stop!r}")
    compact_fraction = real_scalar("compact_fraction", compact_fraction, 0, 1)
    for name, v in given.items():
        check_representable(name, v.values if isinstance(v, xr.DataArray) else v, dt)
    budget = parse_memory(max_memory)
    plan = _sweep.plan(seeds, chunk_size=chunk_size, scheduler=scheduler, blas_threads=blas_threads)
    rmask = _record_mask(record_points, grid, sigma_J2 is not None)
    n_seeds, n_points = plan.seeds.size, grid.size
    n_rec = steps // every + 1 if every else 2
    need = estimate_memory(D=D, P=P, n_points=n_points, n_seeds=n_seeds, n_record_points=n_points,
                           n_records=n_rec, itemsize=dt.itemsize, concurrent=plan.concurrent,
                           n_variants=len(recorded), optimizer_state=optimizer != "gd" or batch_size is not None)
    check_budget(need, budget, f"this sweep ({n_points} grid points x {n_seeds} seeds, {n_rec} recorded steps, "
                 f"D={D}, P={P})", "record fewer steps (record_every=), use fewer seeds or grid points, "
                 "or raise max_memory")

    params = dict(D=D, P=P, **given, seeds=plan.seeds, steps=steps, record_every=every or None,
                  record_points=record_points, stop=stop, tol=tol, diverge_loss=diverge_loss, dtype=dt.name,
                  cycle_tol=cycle_tol, cycle_window=cycle_window, compact_fraction=compact_fraction)
    if optimizer != "gd" or batch_size is not None or variants:  # GD runs keep today's configuration
        params.update(optimizer=optimizer, batch_size=batch_size, sharpness_variants=list(variants))
    if forces:
        params["forces"] = True
    cfg = {"function": "eosdyn.qrm.sweep", "parameters": params}
    fingerprint = _fingerprint(cfg)
    chunk = functools.partial(_sweep_chunk, D=D, P=P, grid=grid, every=every, rmask=rmask, tol=tol,
                              diverge_loss=diverge_loss, cycle_tol=cycle_tol, cycle_window=cycle_window,
                              dtype=dt, compact_fraction=compact_fraction, max_memory=budget, optimizer=optimizer,
                              hyper_names=tuple(hyper), batch_size=batch_size, variants=variants,
                              forces=forces)
    if stop == "batch":  # pass 1: each member's fate; pass 2: everyone runs to the last fate
        fates = _sweep.execute(functools.partial(chunk, steps=steps, stop="member"), plan,
                               resume=None if resume is None else Path(resume) / "fates",
                               fingerprint=fingerprint + " fates")
        last = int(fates["steps_taken"].max())
        ds = _sweep.execute(functools.partial(chunk, steps=last, stop="never"), plan, resume=resume,
                            fingerprint=fingerprint)
        if every and last < steps:  # the step axis of the whole run (NaN after the common end)
            ds = ds.pad(record=(0, steps // every - last // every), constant_values=np.nan)
    else:
        ds = _sweep.execute(functools.partial(chunk, steps=steps, stop=stop), plan, resume=resume,
                            fingerprint=fingerprint)
    if every:
        ds = ds.rename({"record": "step"}).assign_coords(step=np.arange(0, steps + 1, every, dtype=np.int64))
    else:
        ds = _final_steps(ds)
    ds = ds.assign_coords(_grid_coords(grid)).assign_coords(D=np.int64(D), P=np.int64(P))
    fates = fate_variables(ds["status"].values, ds["steps_taken"].values, ds["diverged_at"].values,
                           ds["converged_at"].values)
    for k, v in fates.items():
        ds[k] = (ds[k].dims, v)
    ds = ds[["sharpness", "loss", *recorded, "status", "steps_taken", "diverged_at", "converged_at",
             "final_sharpness", "final_loss", *(f"final_{v}" for v in recorded)]]
    ds = ds.assign_coords(edge=_edge_coord(optimizer, hyper, grid))
    set_roles(ds, sharpness=own_sharpness(optimizer, batch_size), loss="loss")
    attrs = {"sigma_convention": SIGMA_CONVENTION, "Q_convention": Q_CONVENTION,
             "random_streams": STREAMS, "sharpness_definition": SHARPNESS,
             "tol": float(tol), "diverge_loss": float(diverge_loss), "stop": stop,
             "cycle_tol": "none" if cycle_tol is None else float(cycle_tol), "dtype": dt.name}
    if optimizer != "gd" or batch_size is not None:
        attrs.update(optimizer=optimizer, batch_size=int(batch_size or 0), optimizer_convention=OPTIMIZER_CONVENTIONS[optimizer])
        if batch_size is not None:
            attrs["batch_streams"] = BATCH_STREAMS
    name = "GD" if optimizer == "gd" else optimizer
    return label(ds, model="qrm", title=f"Random quadratic regression model, {name} sweep (D={D}, P={P}"
                 + (f", batch size {batch_size})" if batch_size else ")"),
                 equations=EQUATIONS, config=cfg, attrs=attrs)


def own_sharpness(optimizer: str, batch_size) -> str:
    """The sharpness an optimizer's edge applies to (the ``sharpness`` role of its datasets).

    ``preconditioned_sharpness`` for rmsprop/adam, ``batch_sharpness`` for minibatch
    gd/momentum/nesterov, ``sharpness`` otherwise.

    Examples
    --------
    >>> own_sharpness("adam", None), own_sharpness("gd", 4), own_sharpness("momentum", None)
    ('preconditioned_sharpness', 'batch_sharpness', 'sharpness')
    """
    if optimizer in ("rmsprop", "adam"):
        return "preconditioned_sharpness"
    return "sharpness" if batch_size is None else "batch_sharpness"


def _variants(optimizer, batch_size, requested) -> tuple[str, ...]:
    """The sharpness variants to record: the optimizer's own and the requested ones (checked)."""
    if requested is None:
        requested = ()
    elif isinstance(requested, str):
        requested = (requested,)
    else:
        requested = tuple(requested)
    for v in requested:
        if v not in SHARPNESS_VARIANTS:
            raise ValueError(f"sharpness_variants must name some of {', '.join(map(repr, SHARPNESS_VARIANTS))}; "
                             f"got {v!r}")
    if "preconditioned_sharpness" in requested and optimizer not in ("rmsprop", "adam"):
        raise ValueError(f"preconditioned_sharpness needs optimizer 'rmsprop' or 'adam'; got {optimizer!r}")
    own = own_sharpness(optimizer, batch_size)
    want = set(requested) | ({own} if own != "sharpness" else set())
    return tuple(v for v in SHARPNESS_VARIANTS if v in want)


def _edge_coord(optimizer: str, hyper: dict, grid):
    """The ``edge`` coordinate: the optimizer's edge on the dims of the hyperparameters it uses."""
    args = {k: (grid.arrays[k] if grid.arrays[k].ndim else float(grid.arrays[k])) for k in hyper}
    e = optimizer_edge(optimizer, **args)
    if isinstance(e, xr.DataArray):
        return e.variable
    return ((), np.float64(e))


def _fingerprint(cfg) -> str:
    """The configuration of a run (function and parameters), for the resume manifest."""
    payload = json.loads(config_json(cfg["function"], cfg["parameters"]))
    return json.dumps({k: v for k, v in payload.items() if k in ("function", "parameters")}, sort_keys=True)


# ----------------------------------------------------------------------------- gradient flow
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
            y, st, ts = solve_batch(_flow_rhs, y0[i:i + 1], times, [args[i]],
                                    diverge_norm=FLOW_DIVERGE_NORM, **options)
        except (ValueError, ArithmeticError):
            Y[i, times == 0.0] = y0[i]
            continue
        Y[i], status[i], t_stop[i] = y[0], st[0], ts[0]
    return Y, status, t_stop


def _flow_chunk(seeds: np.ndarray, *, D, P, grid, times, tol, diverge_loss, options) -> xr.Dataset:
    """The flow of every grid point of each seed in ``seeds`` (members integrated one at a time)."""
    sz, sj, eta_flat = grid.flat("sigma_z"), grid.flat("sigma_J"), grid.flat("eta")
    B, k, S = grid.size, times.size, len(seeds)
    out = {v: np.empty((S, B, k)) for v in ("sharpness", "loss")}
    per = {v: np.empty((S, B)) for v in ("diverged_at", "converged_at", "t_stop", "final_sharpness",
                                         "final_loss")}
    per["status"] = np.empty((S, B), np.int8)
    for i, s in enumerate(seeds):
        Q, J0, z0 = initial_state(int(s), D=D, P=P, sigma_z=sz, sigma_J=sj)
        A = q_operator(Q)
        y0 = np.concatenate([z0, J0.reshape(B, D * P)], axis=1)
        Y, st, ts = _solve_members(y0, times, [(A, D, P, float(e)) for e in eta_flat], **options)
        with np.errstate(over="ignore", invalid="ignore"):
            L = 0.5 * np.sum(Y[:, :, :D] ** 2, axis=2)
            S_ = eta_flat[:, None] * lambda_max(np.ascontiguousarray(Y[:, :, D:]).reshape(B * k, D, P)).reshape(B, k)
        reached = times[None, :] <= ts[:, None]
        # a sampled loss above diverge_loss, or a loss or sharpness that is not finite: diverged there
        with np.errstate(invalid="ignore"):
            blown = reached & ~(np.isfinite(L) & np.isfinite(S_) & (L <= diverge_loss))
        dat = np.where(st == STATUS_VALUES["diverged"], ts, np.nan)
        for b in np.flatnonzero(blown.any(axis=1)):
            first = int(np.argmax(blown[b]))
            st[b] = STATUS_VALUES["diverged"]
            ts[b] = min(ts[b], times[first])
            dat[b] = ts[b]
            L[b, first + 1:] = np.nan
            S_[b, first + 1:] = np.nan
        with np.errstate(invalid="ignore"):
            below = reached & (L < tol)
        cat = np.where(below.any(axis=1), times[np.argmax(below, axis=1)], np.nan)
        # fates by precedence: diverged, failed (NaN after t_stop), converged, max_steps
        st = np.where((st == STATUS_VALUES["max_steps"]) & np.isfinite(cat), STATUS_VALUES["converged"], st)
        valid = np.isfinite(L) & np.isfinite(S_)
        lastv = k - 1 - np.argmax(valid[:, ::-1], axis=1)
        has = valid.any(axis=1)
        rows = np.arange(B)
        out["loss"][i], out["sharpness"][i] = L, S_
        per["status"][i], per["t_stop"][i] = st, ts
        per["diverged_at"][i], per["converged_at"][i] = dat, cat
        per["final_loss"][i] = np.where(has, L[rows, lastv], np.nan)
        per["final_sharpness"][i] = np.where(has, S_[rows, lastv], np.nan)
    dims = _seed_dims(grid)

    def member(a):
        return np.moveaxis(a.reshape((S,) + grid.shape + a.shape[2:]), 0, len(grid.shape))

    data = {v: (dims + ("time",), member(a)) for v, a in out.items()}
    data.update({v: (dims, member(a)) for v, a in per.items()})
    return xr.Dataset(data, coords={"seed": np.asarray(seeds, np.int64)})


def gradient_flow(*, D, P, sigma_z, sigma_J=None, sigma_J2=None, eta=1.0, seeds, times, tol=1e-12,
                  diverge_loss=1e8, rtol=1e-10, atol=1e-14, method="DOP853", max_evals=FLOW_MAX_EVALS,
                  max_memory="2GB", chunk_size=None, resume=None, scheduler=None,
                  blas_threads=1) -> xr.Dataset:
    """Gradient flow of random QRMs (Eq. 21-22 with rate η) for grid points × seeds.

    Solves ``ż = −η J Jᵀ z``, ``J̇ = −η Q(Jᵀz, ·)`` from the same initial conditions
    as :func:`sweep` (same seeds → same ``Q``, ``z₀``, ``J₀``), one trajectory at a time,
    with the shared integrator :func:`eosdyn.kernels.integrate.solve_batch`; the seeds run
    through :func:`eosdyn.sweep.run` (chunks, resume, dask) like the sweep's. A member's fate
    is data: a blow-up or a failed integration stops that member (``status``, ``t_stop``,
    NaN afterwards); the others go on.

    Parameters
    ----------
    D, P, sigma_z, sigma_J, sigma_J2, eta, seeds
        As in :func:`sweep` (``eta`` may be a dim).
    times : 1-D array
        Sample times (finite, ≥ 0, strictly increasing, at most 10⁶); the flow starts at t = 0.
    tol : float, default 1e-12
        ``converged`` when the sampled loss ½‖z‖² falls below ``tol`` (at ``converged_at``);
        the flow still runs to ``times[-1]``.
    diverge_loss : float, default 1e8
        ``diverged`` when a sampled loss exceeds it or is not finite, or the integrator finds
        max(abs(z), abs(J)) above 1e100 (at ``diverged_at``; NaN afterwards).
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
    chunk_size, resume, scheduler, blas_threads
        As in :func:`sweep`; results do not depend on them.

    Returns
    -------
    xarray.Dataset
        Dims: the grid dims, ``seed``, ``time``; ``sharpness`` (η λ_max) and ``loss`` on
        ``time`` (NaN after a member stopped); per member ``status`` (CF flags, by precedence:
        ``diverged``; ``failed``: step size too small or the ``max_evals`` budget spent;
        ``converged``: a sampled loss below ``tol``; else ``max_steps``), ``diverged_at``/``converged_at`` (times, NaN: never), ``t_stop`` (the
        time reached), ``final_sharpness``/``final_loss`` (at the last finite sample).

    Raises
    ------
    ValueError, TypeError
        Naming the parameter and its allowed range, before anything is integrated.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.qrm.gradient_flow(D=4, P=8, sigma_z=1.0, sigma_J=0.5, seeds=1, times=[0.0, 1.0, 2.0])
    >>> bool((ds.loss.diff("time") <= 0).all()), str(eosdyn.conventions.decode_status(ds.status).item())
    (True, 'max_steps')

    A blow-up is a flagged member, not an exception:

    >>> ds = eosdyn.qrm.gradient_flow(D=2, P=3, sigma_z=1e150, sigma_J=0.5, seeds=1, times=[0.0, 0.5, 1.0])
    >>> str(eosdyn.conventions.decode_status(ds.status).item()), bool(ds.loss.isnull()[..., 1:].all())
    ('diverged', True)
    """
    D, P, grid, given = _grid(D, P, sigma_z, sigma_J, sigma_J2, eta)
    times = check_times(times)
    _, _, _, tol, diverge_loss, _ = check_gd_options(steps=0, record_every=None, stop="never", tol=tol,
                                                     diverge_loss=diverge_loss, dtype="float64")
    rtol, atol, method, _, max_evals = check_flow_options(
        rtol=rtol, atol=atol, method=method, diverge_norm=FLOW_DIVERGE_NORM, max_evals=max_evals)
    budget = parse_memory(max_memory)
    plan = _sweep.plan(seeds, chunk_size=chunk_size, scheduler=scheduler, blas_threads=blas_threads)
    B, n_seeds, n_times = grid.size, plan.seeds.size, times.size
    m = D + D * P
    # per running chunk: the sampled states and their J copy for λ_max, Q and its operand;
    # the dataset: 2 trajectory variables (+ the per-seed blocks they are built from)
    need = 8 * (plan.concurrent * (2 * B * n_times * m + 3 * D * P * P) + 2 * 2 * B * n_seeds * n_times
                + 7 * B * n_seeds)
    check_budget(need, budget, f"this flow ({B} grid points x {n_seeds} seeds, {n_times} times, D={D}, P={P})",
                 "use fewer times, seeds or grid points, or raise max_memory")
    params = dict(D=D, P=P, **given, seeds=plan.seeds, times=times, tol=tol, diverge_loss=diverge_loss,
                  rtol=rtol, atol=atol, method=method, max_evals=max_evals)
    cfg = {"function": "eosdyn.qrm.gradient_flow", "parameters": params}
    chunk = functools.partial(_flow_chunk, D=D, P=P, grid=grid, times=times, tol=tol, diverge_loss=diverge_loss,
                              options=dict(rtol=rtol, atol=atol, method=method, max_evals=max_evals))
    ds = _sweep.execute(chunk, plan, resume=resume, fingerprint=_fingerprint(cfg))
    ds = ds.assign_coords(time=times, **_grid_coords(grid)).assign_coords(D=np.int64(D), P=np.int64(P))
    ds = ds[["sharpness", "loss", "status", "diverged_at", "converged_at", "t_stop", "final_sharpness",
             "final_loss"]]
    set_roles(ds, sharpness="sharpness", loss="loss")
    ds = label(ds, model="qrm_flow", title=f"Random quadratic regression model, gradient flow (D={D}, P={P})",
               equations=FLOW_EQUATIONS, config=cfg,
               attrs={"sigma_convention": SIGMA_CONVENTION, "Q_convention": Q_CONVENTION,
                      "random_streams": STREAMS, "sharpness_definition": SHARPNESS,
                      "integrator": f"scipy.integrate.OdeSolver method={method}",
                      "rtol": rtol, "atol": atol, "max_evals": int(max_evals), "tol": float(tol),
                      "diverge_loss": float(diverge_loss), "stop": "never",
                      "divergence_threshold": FLOW_DIVERGE_NORM})
    for v, what in (("final_sharpness", "sharpness η λ_max at the member's last finite sample"),
                    ("final_loss", "loss at the member's last finite sample")):
        ds[v].attrs["long_name"] = what
    return ds


# ----------------------------------------------------------------------------- registry
_PARAMS = (
    Param("D", "number of datapoints D", domain="integer >= 1", dim=False),
    Param("P", "number of parameters P", domain="integer >= 1", dim=False),
    Param("sigma_z", "σ̃_z = D σ_z (rescaled residual width, Eq. 29)", domain="[0, inf)"),
    Param("sigma_J", "σ̃_J = (D P)^{1/4} σ_J (rescaled Jacobian width, Eq. 29); or sigma_J2 = σ̃_J²",
          domain="[0, inf)"),
    Param("eta", "learning rate η", domain="(0, inf)"),
)

register(System(
    name="eosdyn.qrm.sweep", kind="parameter_gd",
    title="Random quadratic regression model, GD sweep", equations=EQUATIONS, params=_PARAMS,
    state=(), roles={"sharpness": "sharpness", "loss": "loss"},
    example={"D": 4, "P": 6, "sigma_z": [0.3, 1.5], "sigma_J2": 0.3, "seeds": 2, "steps": 40,
             "record_every": 1},
    function="eosdyn.models.qrm.sweep", random=True,
    options=("steps", "record_every", "stop", "tol", "diverge_loss", "dtype", "seeds", "optimizer", "batch_size",
             "sharpness_variants", "forces"),
    defaults={**DEFAULTS, "optimizer": "gd", "batch_size": None, "sharpness_variants": None, "forces": False},
    notes="The state (z, J) is not recorded (D + D P numbers per member and step); the dataset "
          "records sharpness and loss. cycle_tol (opt-in early stop) needs stop='member'. "
          "optimizer= (gd, momentum, nesterov, rmsprop, adam; hyperparameters momentum, beta1, beta2, "
          "epsilon are grid parameters) and batch_size= (minibatch SGD); the coordinate edge is the "
          "optimizer's edge of stability.",
))

register(System(
    name="eosdyn.qrm.gradient_flow", kind="flow",
    title="Random quadratic regression model, gradient flow", equations=FLOW_EQUATIONS, params=_PARAMS,
    state=(), roles={"sharpness": "sharpness", "loss": "loss"},
    example={"D": 3, "P": 4, "sigma_z": [0.5, 1.0], "sigma_J": 0.5, "seeds": 2,
             "times": [0.0, 0.5, 1.0, 2.0]},
    function="eosdyn.models.qrm.gradient_flow", random=True, flow_of="eosdyn.qrm.sweep",
    options=("tol", "diverge_loss", "seeds", "times", "rtol", "atol", "max_evals"),
    defaults={"tol": 1e-12, "diverge_loss": 1e8, "rtol": 1e-10, "atol": 1e-14, "max_evals": FLOW_MAX_EVALS},
    notes="Integrated in float64 (scipy); members one at a time.",
))
