"""Recipes of the QRM catalog entries: several (D, P) phase diagrams in one dataset (Figure 4) and
Monte Carlo estimates of r_NL (Eq. 27) and of the Theorem 4.1 ratio next to their closed forms.

Examples
--------
>>> from eosdyn.recipes import rnl_monte_carlo
>>> ds = rnl_monte_carlo(sizes=[[10, 20]], sigma_z=[0.5], n_samples=50)
>>> ds.r_nl_mc.dims
('size', 'sigma_z')
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .._validate import check_int, check_range
from ..conventions import label, set_variable_attrs

__all__ = ["qrm_phase_diagrams", "rnl_monte_carlo", "theorem41_monte_carlo"]

_SIGMA_NOTE = "sigma_z is the rescaled width of Eq. 29 (unrescaled sigma_z = sigma_z / D)"


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



def qrm_phase_diagrams(*, sizes, sigma_z, sigma_J2, seeds, max_steps, eta=1.0, **sweep_kwargs) -> xr.Dataset:
    """Figure 4: QRM GD sweeps over (σ̃_z, σ̃_J²) × seeds for several (D, P), in one dataset.

    Calls :func:`eosdyn.qrm.sweep` once per (D, P) pair and stacks the results
    along a new dim ``size`` (coords ``D(size)``, ``P(size)``).

    Parameters
    ----------
    sizes : list of [D, P]
        Model sizes.
    sigma_z, sigma_J2 : float or list of float
        Rescaled widths σ̃_z and σ̃_J² (Eq. 29), the axes of Figure 4.
    seeds : int or list of int
        Seeds per grid point (the paper uses 100).
    max_steps : int
        GD step limit.
    eta : float, default 1.0
    **sweep_kwargs
        Further keywords of :func:`eosdyn.qrm.sweep` (e.g. ``tol``, ``dtype``).

    Returns
    -------
    xarray.Dataset
        Dims ``size``, ``sigma_z``, ``sigma_J``, ``seed``; variables of the sweep
        (``final_sharpness``, ``status``, ...).

    Examples
    --------
    >>> ds = qrm_phase_diagrams(sizes=[[6, 12]], sigma_z=[0.3], sigma_J2=[0.2], seeds=2,
    ...                         max_steps=200)
    >>> ds.final_sharpness.dims
    ('size', 'sigma_z', 'sigma_J', 'seed')
    """
    from .. import qrm

    sz = _sizes(sizes)
    parts = []
    for d, p in sz:
        ds = qrm.sweep(D=int(d), P=int(p), sigma_z=sigma_z, sigma_J2=sigma_J2, seeds=seeds,
                       max_steps=max_steps, eta=eta, **sweep_kwargs)
        parts.append(ds.drop_vars(["D", "P"]).drop_attrs())
    out = xr.concat(parts, dim="size", coords="different", compat="equals", join="exact")
    out = out.assign_coords(_size_coords(sz))
    params = dict(sizes=sz, sigma_z=sigma_z, sigma_J2=sigma_J2, seeds=seeds, max_steps=max_steps, eta=eta,
                  **sweep_kwargs)
    return label(out, model="qrm", title="Random QRM phase diagrams of the final sharpness (Figure 4)",
                 equations="Eq. 24-26, 29; Figure 4 (Agarwala et al. 2023)",
                 config={"function": "eosdyn.recipes.qrm_phase_diagrams", "parameters": params},
                 attrs={"sharpness_definition": "eta * lambda_max(J J^T); edge at 2",
                        "sigma_convention": _SIGMA_NOTE})


def _qg(Q: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Q(g, g)_a = Σ_ij Q_aij g_i g_j."""
    D, P, _ = Q.shape
    return (Q.reshape(D * P, P) @ g).reshape(D, P) @ g


def _ratio_of_means(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """mean(num)/mean(den) and its delta-method standard error."""
    r = num.mean() / den.mean()
    se = np.std(num - r * den, ddof=1) / np.sqrt(num.size) / den.mean()
    return float(r), float(se)


def _mc_inputs(sizes, sigma_z, sigma_J, eta, n_samples, seed):
    """Validate the Monte Carlo recipes' inputs: ``(sizes, sigma_z grid, n, seed, shape)``."""
    sz = _sizes(sizes)
    sig = _sigma_grid("sigma_z", sigma_z)
    check_range("sigma_J", sigma_J, 0, None, lo_open=True)
    check_range("eta", eta, 0, None, lo_open=True)
    n = check_int("n_samples", n_samples, 2)
    seed = check_int("seed", seed, 0)
    return sz, sig, n, seed, (len(sz), sig.size)


def rnl_monte_carlo(*, sizes, sigma_z, sigma_J=1.0, eta=1.0, n_samples=200, seed=0) -> xr.Dataset:
    """Monte Carlo of the non-linearity ratio r_NL (Eq. 27) next to the corrected and the printed forms.

    For each (D, P) and rescaled σ̃_z, draws ``n_samples`` random initialisations of
    the Theorem 4.1 ensemble with :func:`eosdyn.qrm.initial_state` (seeds
    ``seed .. seed + n_samples − 1``) and estimates
    ``r_NL = (E‖½η²Q(g, g)‖² / E‖η J Jᵀ z‖²)^{1/2}``, ``g = Jᵀ z``, as a ratio of
    sample means (delta-method standard error). Compared with
    :func:`eosdyn.theory.r_nl` (exact for every D, P) and the paper's ½ η σ_z D.

    Parameters
    ----------
    sizes : list of [D, P]
    sigma_z : float or list of float
        Rescaled σ̃_z (unrescaled σ_z = σ̃_z / D).
    sigma_J : float, default 1.0
        Rescaled σ̃_J (r_NL does not depend on it).
    eta : float, default 1.0
    n_samples : int, default 200
    seed : int, default 0
        First seed.

    Returns
    -------
    xarray.Dataset
        Dims ``size``, ``sigma_z``; ``r_nl_mc``, ``r_nl_mc_stderr``, ``r_nl_theory``, ``r_nl_paper``.

    Examples
    --------
    >>> ds = rnl_monte_carlo(sizes=[[10, 20]], sigma_z=[0.5], n_samples=50)
    >>> float(abs(ds.r_nl_mc / ds.r_nl_theory - 1).max()) < 0.3
    True
    """
    from .. import qrm, theory

    sz, sig, n, seed, shape = _mc_inputs(sizes, sigma_z, sigma_J, eta, n_samples, seed)
    mc, se, th, paper = (np.empty(shape) for _ in range(4))
    for i, (d, p) in enumerate(sz):
        num = np.empty((sig.size, n))
        den = np.empty((sig.size, n))
        for s in range(n):
            Q, J0, z0 = qrm.initial_state(seed + s, D=int(d), P=int(p), sigma_z=sig,
                                          sigma_J=np.full(sig.size, float(sigma_J)))
            for k in range(sig.size):
                g = J0[k].T @ z0[k]
                num[k, s] = np.sum((0.5 * eta**2 * _qg(Q, g)) ** 2)
                den[k, s] = np.sum((eta * J0[k] @ g) ** 2)
        for k in range(sig.size):
            r2, se2 = _ratio_of_means(num[k], den[k])
            mc[i, k] = np.sqrt(r2)
            se[i, k] = se2 / (2 * np.sqrt(r2))
            th[i, k] = theory.r_nl(D=int(d), P=int(p), sigma_z_tilde=float(sig[k]), eta=eta)
            paper[i, k] = 0.5 * eta * (sig[k] / d) * d
    dims = ("size", "sigma_z")
    ds = xr.Dataset({"r_nl_mc": (dims, mc), "r_nl_mc_stderr": (dims, se), "r_nl_theory": (dims, th),
                     "r_nl_paper": (dims, paper)},
                    coords={**_size_coords(sz), "sigma_z": sig, "eta": np.float64(eta)})
    return label(ds, model="qrm_rnl", title="Non-linearity ratio r_NL: Monte Carlo vs theory (Eq. 27)",
                 equations="Eq. 27, 29; Theorem 4.1 ensemble (Agarwala et al. 2023)",
                 config={"function": "eosdyn.recipes.rnl_monte_carlo",
                         "parameters": dict(sizes=sz, sigma_z=sig, sigma_J=sigma_J, eta=eta, n_samples=n,
                                            seed=seed)},
                 attrs={"sigma_convention": _SIGMA_NOTE, "n_samples": n,
                        "estimator": "sqrt(mean ||eta^2/2 Q(g,g)||^2 / mean ||eta J J^T z||^2), g = J^T z"})


def theorem41_monte_carlo(*, sizes, sigma_z, sigma_J=1.0, eta=1.0, n_samples=400, seed=0) -> xr.Dataset:
    """Monte Carlo of Theorem 4.1: E[λ̇_max(0)] and E[λ̈_max(0)] / E[λ_max(0)] under gradient flow.

    Draws ``n_samples`` initialisations (seeds ``seed ..``) with
    :func:`eosdyn.qrm.initial_state` and evaluates λ_max and its first two
    flow derivatives exactly per sample with
    :func:`eosdyn.theory.lambda_max_derivatives`; compared with
    :func:`eosdyn.theory.theorem41_ratio` (large-size closed form and exact
    finite-size value) and with the paper's σ_z².

    Parameters
    ----------
    sizes : list of [D, P]
    sigma_z : float or list of float
        Rescaled σ̃_z (unrescaled σ_z = σ̃_z / D).
    sigma_J : float, default 1.0
        Rescaled σ̃_J.
    eta : float, default 1.0
    n_samples : int, default 400
    seed : int, default 0

    Returns
    -------
    xarray.Dataset
        Dims ``size``, ``sigma_z``; ``theorem41_mc``, ``theorem41_mc_stderr``,
        ``theorem41_theory`` (large D, P), ``theorem41_exact`` (finite size),
        ``theorem41_paper``, ``lam_dot_mean``, ``lam_dot_stderr``.

    Examples
    --------
    >>> ds = theorem41_monte_carlo(sizes=[[8, 12]], sigma_z=[1.0], n_samples=20)
    >>> ds.theorem41_mc.dims
    ('size', 'sigma_z')
    """
    from .. import qrm, theory

    sz, sig, n, seed, shape = _mc_inputs(sizes, sigma_z, sigma_J, eta, n_samples, seed)
    names = ("theorem41_mc", "theorem41_mc_stderr", "theorem41_theory", "theorem41_exact",
             "theorem41_paper", "lam_dot_mean", "lam_dot_stderr")
    out = {k: np.empty(shape) for k in names}
    for i, (d, p) in enumerate(sz):
        d, p = int(d), int(p)
        lam = np.empty((sig.size, n))
        l1 = np.empty((sig.size, n))
        l2 = np.empty((sig.size, n))
        for s in range(n):
            Q, J0, z0 = qrm.initial_state(seed + s, D=d, P=p, sigma_z=sig,
                                          sigma_J=np.full(sig.size, float(sigma_J)))
            lam[:, s], l1[:, s], l2[:, s] = theory.lambda_max_derivatives(J0, z0, Q[None], eta=eta)
        for k in range(sig.size):
            r, se = _ratio_of_means(l2[k], lam[k])
            out["theorem41_mc"][i, k] = r
            out["theorem41_mc_stderr"][i, k] = se
            out["lam_dot_mean"][i, k] = l1[k].mean() / lam[k].mean()
            out["lam_dot_stderr"][i, k] = l1[k].std(ddof=1) / np.sqrt(n) / lam[k].mean()
            out["theorem41_theory"][i, k] = theory.theorem41_ratio(D=d, P=p, sigma_z_tilde=float(sig[k]), eta=eta)
            out["theorem41_exact"][i, k] = theory.theorem41_ratio(D=d, P=p, sigma_z_tilde=float(sig[k]), eta=eta,
                                                                  exact=True, n_samples=200, seed=seed)
            out["theorem41_paper"][i, k] = (sig[k] / d) ** 2
    dims = ("size", "sigma_z")
    ds = xr.Dataset({k: (dims, v) for k, v in out.items()},
                    coords={**_size_coords(sz), "sigma_z": sig, "eta": np.float64(eta)})
    return label(ds, model="qrm_theorem41",
                 title="Theorem 4.1: E[lambda_max''(0)] / E[lambda_max(0)] under gradient flow, Monte Carlo vs theory",
                 equations="Eq. 21-22; Theorem 4.1 (Agarwala et al. 2023)",
                 config={"function": "eosdyn.recipes.theorem41_monte_carlo",
                         "parameters": dict(sizes=sz, sigma_z=sig, sigma_J=sigma_J, eta=eta, n_samples=n,
                                            seed=seed)},
                 attrs={"sigma_convention": _SIGMA_NOTE, "n_samples": n,
                        "normalisation": "lam_dot_mean and theorem41_* are divided by E[lambda_max(0)]"})


