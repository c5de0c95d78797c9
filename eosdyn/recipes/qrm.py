"""Recipes of the QRM catalog entries: several (D, P) phase diagrams in one dataset (Figure 4) and
Monte Carlo estimates of r_NL (Eq. 27) and of the Theorem 4.1 ratio next to their closed forms.

Examples
--------
>>> from eosdyn.recipes import rnl_monte_carlo
>>> ds = rnl_monte_carlo(sizes=[[10, 20]], sigma_z=[0.5], seeds=50)
>>> ds.r_nl_mc.dims
('size', 'sigma_z')
"""

from __future__ import annotations

import functools

import numpy as np
import xarray as xr

from .. import sweep as _sweep
from .._validate import check_int, check_range
from ..conventions import label, set_roles

__all__ = ["qrm_phase_diagrams", "rnl_monte_carlo", "theorem41_monte_carlo"]

_SIGMA_NOTE = "sigma_z is the rescaled width of Eq. 29 (raw sigma_z_raw = sigma_z / D)"
#: J samples of the exact finite-size Theorem 4.1 value (eosdyn.theory.theorem41_ratio, exact=True)
EXACT_SAMPLES = 200


def _sizes(sizes) -> np.ndarray:
    arr = np.asarray(sizes)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 1 or arr.dtype.kind not in "iuf":
        raise ValueError(f"sizes must be a list of [D, P] pairs of integers >= 1; got {sizes!r}")
    for d, p in arr:
        check_int("sizes D", d, 1)
        check_int("sizes P", p, 1)
    return arr.astype(np.int64)


def _sigma_grid(name: str, values) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values, dtype=float))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a number or a non-empty 1-D list of numbers; got {values!r}")
    check_range(name, arr, 0, None, lo_open=True)
    return arr


def _size_coords(sz: np.ndarray) -> dict:
    return {"size": np.arange(len(sz), dtype=np.int64), "D": ("size", sz[:, 0]), "P": ("size", sz[:, 1])}


def qrm_phase_diagrams(*, sizes, sigma_z, sigma_J2, seeds, steps, eta=1.0, **sweep_kwargs) -> xr.Dataset:
    """Figure 4: QRM GD sweeps over (σ̃_z, σ̃_J², η) × seeds for several (D, P), in one dataset.

    Calls :func:`eosdyn.qrm.sweep` once per (D, P) pair (the tensor shapes differ) and stacks
    the results along a new dim ``size`` (coords ``D(size)``, ``P(size)``); every other
    parameter, ``eta`` included, is a grid dim of the sweep itself.

    Parameters
    ----------
    sizes : list of [D, P]
        Model sizes.
    sigma_z, sigma_J2 : float or list of float
        Rescaled widths σ̃_z and σ̃_J² (Eq. 29), the axes of Figure 4.
    seeds : int or list of int
        Seeds per grid point (the paper uses 100).
    steps : int
        Most GD steps.
    eta : float or list of float, default 1.0
        Learning rate(s); a list is a dim.
    **sweep_kwargs
        Further keywords of :func:`eosdyn.qrm.sweep` (e.g. ``tol``, ``dtype``, ``stop``).

    Returns
    -------
    xarray.Dataset
        Dims ``size``, the grid dims, ``seed``, ``step``; the variables of the sweep
        (``final_sharpness``, ``status``, ...). The step axes of the sizes are joined
        (NaN where a size has no such step).

    Examples
    --------
    >>> ds = qrm_phase_diagrams(sizes=[[6, 12]], sigma_z=[0.3], sigma_J2=[0.2], seeds=2, steps=200)
    >>> ds.final_sharpness.dims
    ('size', 'sigma_z', 'sigma_J', 'seed')
    """
    from .. import qrm

    sz = _sizes(sizes)
    parts = [qrm.sweep(D=int(d), P=int(p), sigma_z=sigma_z, sigma_J2=sigma_J2, seeds=seeds, steps=steps,
                       eta=eta, **sweep_kwargs) for d, p in sz]
    keep = {k: parts[0].attrs[k] for k in ("tol", "diverge_loss", "stop", "sharpness_definition")}
    parts = [ds.drop_vars(["D", "P"]).drop_attrs() for ds in parts]
    out = xr.concat(parts, dim="size", coords="different", compat="equals", join="outer",
                    fill_value={"sharpness": np.nan, "loss": np.nan})
    out = out.assign_coords(_size_coords(sz))
    set_roles(out, sharpness="sharpness", loss="loss")
    params = dict(sizes=sz, sigma_z=sigma_z, sigma_J2=sigma_J2, seeds=seeds, steps=steps, eta=eta, **sweep_kwargs)
    return label(out, model="qrm", title="Random QRM phase diagrams of the final sharpness (Figure 4)",
                 equations="Eq. 24-26, 29; Figure 4 (Agarwala et al. 2023)",
                 config={"function": "eosdyn.recipes.qrm_phase_diagrams", "parameters": params},
                 attrs={**keep, "sigma_convention": _SIGMA_NOTE})


def _qg(Q: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Q(g, g)_a = Σ_ij Q_aij g_i g_j."""
    D, P, _ = Q.shape
    return (Q.reshape(D * P, P) @ g).reshape(D, P) @ g


def _ratio_of_means(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """mean(num)/mean(den) and its delta-method standard error."""
    r = num.mean() / den.mean()
    se = np.std(num - r * den, ddof=1) / np.sqrt(num.size) / den.mean()
    return float(r), float(se)


def _mc_inputs(sizes, sigma_z, sigma_J, eta, seeds, chunk_size, scheduler, blas_threads):
    """Validate the Monte Carlo recipes' inputs once: ``(sizes, sigma_z grid, plan)``."""
    sz = _sizes(sizes)
    sig = _sigma_grid("sigma_z", sigma_z)
    check_range("sigma_J", sigma_J, 0, None, lo_open=True)
    check_range("eta", eta, 0, None, lo_open=True)
    plan = _sweep.plan(seeds, chunk_size=chunk_size, scheduler=scheduler, blas_threads=blas_threads)
    if plan.seeds.size < 2:
        raise ValueError(f"seeds: a Monte Carlo estimate needs at least 2 seeds; got {plan.seeds.size}")
    return sz, sig, plan


def _mc_run(chunk, plan, resume, function, params) -> xr.Dataset:
    """Run the per-seed samples through :func:`eosdyn.sweep.execute`; contiguous (size, sigma_z, seed) arrays."""
    from ..conventions import config_json

    ds = _sweep.execute(chunk, plan, resume=resume, fingerprint=config_json(function, params))
    return ds.transpose("size", "sigma_z", "seed")


def _rnl_chunk(seeds, *, sizes, sig, sigma_J, eta) -> xr.Dataset:
    """Numerator ‖½η²Q(g, g)‖² and denominator ‖η J Jᵀ z‖² of r_NL² per seed, size and σ̃_z."""
    from ..models.qrm import initial_state

    num = np.empty((len(seeds), len(sizes), sig.size))
    den = np.empty_like(num)
    for s, seed in enumerate(seeds):
        for i, (d, p) in enumerate(sizes):
            Q, J0, z0 = initial_state(int(seed), D=int(d), P=int(p), sigma_z=sig,
                                      sigma_J=np.full(sig.size, float(sigma_J)))
            for k in range(sig.size):
                g = J0[k].T @ z0[k]
                num[s, i, k] = np.sum((0.5 * eta**2 * _qg(Q, g)) ** 2)
                den[s, i, k] = np.sum((eta * J0[k] @ g) ** 2)
    dims = ("seed", "size", "sigma_z")
    return xr.Dataset({"num": (dims, num), "den": (dims, den)}, coords={"seed": np.asarray(seeds, np.int64)})


def rnl_monte_carlo(*, sizes, sigma_z, sigma_J=1.0, eta=1.0, seeds=200, chunk_size=None, resume=None,
                    scheduler=None, blas_threads=1) -> xr.Dataset:
    """Monte Carlo of the non-linearity ratio r_NL (Eq. 27) next to the corrected and the printed forms.

    For each (D, P) and rescaled σ̃_z, draws one random initialisation of the Theorem 4.1
    ensemble per seed with :func:`eosdyn.qrm.initial_state` (``SeedSequence(seed)``, the
    sweep's streams) and estimates ``r_NL = (E‖½η²Q(g, g)‖² / E‖η J Jᵀ z‖²)^{1/2}``,
    ``g = Jᵀ z``, as a ratio of sample means (delta-method standard error). Compared with
    :func:`eosdyn.theory.r_nl` (exact for every D, P) and the paper's ½ η σ_z_raw D. The
    seeds run through :func:`eosdyn.sweep.run` (chunks, resume, dask; results do not depend
    on them).

    Parameters
    ----------
    sizes : list of [D, P]
    sigma_z : float or list of float
        Rescaled σ̃_z (raw σ_z = σ̃_z / D).
    sigma_J : float, default 1.0
        Rescaled σ̃_J (r_NL does not depend on it).
    eta : float, default 1.0
    seeds : int or list of int, default 200
        The samples: ``n`` (seed values 0..n−1) or explicit seed values (at least 2).
    chunk_size, resume, scheduler, blas_threads
        Execution options of :func:`eosdyn.sweep.run`.

    Returns
    -------
    xarray.Dataset
        Dims ``size``, ``sigma_z``; ``r_nl_mc``, ``r_nl_mc_stderr``, ``r_nl_theory``, ``r_nl_paper``.

    Examples
    --------
    >>> ds = rnl_monte_carlo(sizes=[[10, 20]], sigma_z=[0.5], seeds=50)
    >>> float(abs(ds.r_nl_mc / ds.r_nl_theory - 1).max()) < 0.3
    True
    """
    from .. import theory

    sz, sig, plan = _mc_inputs(sizes, sigma_z, sigma_J, eta, seeds, chunk_size, scheduler, blas_threads)
    params = dict(sizes=sz, sigma_z=sig, sigma_J=sigma_J, eta=eta, seeds=plan.seeds)
    draws = _mc_run(functools.partial(_rnl_chunk, sizes=sz, sig=sig, sigma_J=sigma_J, eta=eta), plan, resume,
                    "eosdyn.recipes.rnl_monte_carlo", params)
    num, den = np.ascontiguousarray(draws["num"].values), np.ascontiguousarray(draws["den"].values)
    shape = (len(sz), sig.size)
    mc, se, th, paper = (np.empty(shape) for _ in range(4))
    for i, (d, p) in enumerate(sz):
        for k in range(sig.size):
            r2, se2 = _ratio_of_means(num[i, k], den[i, k])
            mc[i, k] = np.sqrt(r2)
            se[i, k] = se2 / (2 * np.sqrt(r2))
            th[i, k] = theory.r_nl(D=int(d), P=int(p), sigma_z=float(sig[k]), eta=eta)
            paper[i, k] = 0.5 * eta * theory.unrescale_sigmas(D=int(d), P=int(p), sigma_z=sig[k])[0] * d
    dims = ("size", "sigma_z")
    ds = xr.Dataset({"r_nl_mc": (dims, mc), "r_nl_mc_stderr": (dims, se), "r_nl_theory": (dims, th),
                     "r_nl_paper": (dims, paper)},
                    coords={**_size_coords(sz), "sigma_z": sig, "eta": np.float64(eta)})
    return label(ds, model="qrm_rnl", title="Non-linearity ratio r_NL: Monte Carlo vs theory (Eq. 27)",
                 equations="Eq. 27, 29; Theorem 4.1 ensemble (Agarwala et al. 2023)",
                 config={"function": "eosdyn.recipes.rnl_monte_carlo", "parameters": params},
                 attrs={"sigma_convention": _SIGMA_NOTE, "n_samples": int(plan.seeds.size),
                        "estimator": "sqrt(mean ||eta^2/2 Q(g,g)||^2 / mean ||eta J J^T z||^2), g = J^T z"})


def _theorem41_chunk(seeds, *, sizes, sig, sigma_J, eta) -> xr.Dataset:
    """λ_max(0) and its exact first two flow derivatives per seed, size and σ̃_z."""
    from .. import theory
    from ..models.qrm import initial_state

    out = {k: np.empty((len(seeds), len(sizes), sig.size)) for k in ("lam", "lam_dot", "lam_ddot")}
    for s, seed in enumerate(seeds):
        for i, (d, p) in enumerate(sizes):
            Q, J0, z0 = initial_state(int(seed), D=int(d), P=int(p), sigma_z=sig,
                                      sigma_J=np.full(sig.size, float(sigma_J)))
            out["lam"][s, i], out["lam_dot"][s, i], out["lam_ddot"][s, i] = theory.lambda_max_derivatives(
                J0, z0, Q[None], eta=eta)
    dims = ("seed", "size", "sigma_z")
    return xr.Dataset({k: (dims, v) for k, v in out.items()}, coords={"seed": np.asarray(seeds, np.int64)})


def theorem41_monte_carlo(*, sizes, sigma_z, sigma_J=1.0, eta=1.0, seeds=400, chunk_size=None, resume=None,
                          scheduler=None, blas_threads=1) -> xr.Dataset:
    """Monte Carlo of Theorem 4.1: E[λ̇_max(0)] and E[λ̈_max(0)] / E[λ_max(0)] under gradient flow.

    Draws one initialisation per seed with :func:`eosdyn.qrm.initial_state` and evaluates
    λ_max and its first two flow derivatives exactly per sample with
    :func:`eosdyn.theory.lambda_max_derivatives`; compared with
    :func:`eosdyn.theory.theorem41_ratio` (large-size closed form, and the exact finite-size
    value from 200 J samples seeded with the first seed value) and with the paper's
    σ_z_raw². The seeds run through :func:`eosdyn.sweep.run`.

    Parameters
    ----------
    sizes : list of [D, P]
    sigma_z : float or list of float
        Rescaled σ̃_z (raw σ_z = σ̃_z / D).
    sigma_J : float, default 1.0
        Rescaled σ̃_J.
    eta : float, default 1.0
    seeds : int or list of int, default 400
        The samples: ``n`` (seed values 0..n−1) or explicit seed values (at least 2).
    chunk_size, resume, scheduler, blas_threads
        Execution options of :func:`eosdyn.sweep.run`.

    Returns
    -------
    xarray.Dataset
        Dims ``size``, ``sigma_z``; ``theorem41_mc``, ``theorem41_mc_stderr``,
        ``theorem41_theory`` (large D, P), ``theorem41_exact`` (finite size),
        ``theorem41_paper``, ``lam_dot_mean``, ``lam_dot_stderr``.

    Examples
    --------
    >>> ds = theorem41_monte_carlo(sizes=[[8, 12]], sigma_z=[1.0], seeds=20)
    >>> ds.theorem41_mc.dims
    ('size', 'sigma_z')
    """
    from .. import theory

    sz, sig, plan = _mc_inputs(sizes, sigma_z, sigma_J, eta, seeds, chunk_size, scheduler, blas_threads)
    params = dict(sizes=sz, sigma_z=sig, sigma_J=sigma_J, eta=eta, seeds=plan.seeds)
    draws = _mc_run(functools.partial(_theorem41_chunk, sizes=sz, sig=sig, sigma_J=sigma_J, eta=eta), plan,
                    resume, "eosdyn.recipes.theorem41_monte_carlo", params)
    lam, l1, l2 = (np.ascontiguousarray(draws[k].values) for k in ("lam", "lam_dot", "lam_ddot"))
    n = plan.seeds.size
    names = ("theorem41_mc", "theorem41_mc_stderr", "theorem41_theory", "theorem41_exact",
             "theorem41_paper", "lam_dot_mean", "lam_dot_stderr")
    out = {k: np.empty((len(sz), sig.size)) for k in names}
    for i, (d, p) in enumerate(sz):
        d, p = int(d), int(p)
        for k in range(sig.size):
            r, se = _ratio_of_means(l2[i, k], lam[i, k])
            out["theorem41_mc"][i, k] = r
            out["theorem41_mc_stderr"][i, k] = se
            out["lam_dot_mean"][i, k] = l1[i, k].mean() / lam[i, k].mean()
            out["lam_dot_stderr"][i, k] = l1[i, k].std(ddof=1) / np.sqrt(n) / lam[i, k].mean()
            out["theorem41_theory"][i, k] = theory.theorem41_ratio(D=d, P=p, sigma_z=float(sig[k]), eta=eta)
            out["theorem41_exact"][i, k] = theory.theorem41_ratio(D=d, P=p, sigma_z=float(sig[k]), eta=eta,
                                                                  exact=True, n_samples=EXACT_SAMPLES,
                                                                  seed=int(plan.seeds[0]))
            out["theorem41_paper"][i, k] = theory.unrescale_sigmas(D=d, P=p, sigma_z=sig[k])[0] ** 2
    dims = ("size", "sigma_z")
    ds = xr.Dataset({k: (dims, v) for k, v in out.items()},
                    coords={**_size_coords(sz), "sigma_z": sig, "eta": np.float64(eta)})
    return label(ds, model="qrm_theorem41",
                 title="Theorem 4.1: E[lambda_max''(0)] / E[lambda_max(0)] under gradient flow, Monte Carlo vs theory",
                 equations="Eq. 21-22; Theorem 4.1 (Agarwala et al. 2023)",
                 config={"function": "eosdyn.recipes.theorem41_monte_carlo", "parameters": params},
                 attrs={"sigma_convention": _SIGMA_NOTE, "n_samples": int(n),
                        "normalisation": "lam_dot_mean and theorem41_* are divided by E[lambda_max(0)]"})
