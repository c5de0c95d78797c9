"""Recipes of the toy-model catalog entries: phase portraits (Figures 7, 8) and random
allowed initialisations (Figure 9) of the two-parameter map, built on :func:`eosdyn.toy.two_param`;
the catapult phase diagram of the uv model (:func:`uv_phase_diagram`, on :func:`eosdyn.toy.uv`).

Examples
--------
>>> from eosdyn.recipes import phase_portrait
>>> ds = phase_portrait(eps=0.1, n=3, steps=20)
>>> "init" in ds.dims
True
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .._validate import check_int, check_range
from ..conventions import label, set_variable_attrs

__all__ = ["phase_portrait", "random_initialisations", "uv_phase_diagram"]


def _toy_values(name, value):
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a number or a non-empty 1-D list of numbers; got {value!r}")
    return arr


def _range(name, value) -> tuple[float, float]:
    arr = np.asarray(value, dtype=float)
    if arr.shape != (2,) or not np.all(np.isfinite(arr)) or not arr[0] < arr[1]:
        raise ValueError(f"{name} must be a pair [low, high] of finite numbers with low < high; got {value!r}")
    return float(arr[0]), float(arr[1])


def _strictly_allowed(z, T, **kw) -> np.ndarray:
    """Allowed (Eq. 67-68) with a margin: points on the boundary are dropped (the simulators reject
    boundary points that rounding puts outside)."""
    from .. import theory

    d = 1e-9 * np.maximum(1.0, np.abs(T))
    return np.asarray(theory.allowed_region(z, T + d, **kw)) & np.asarray(theory.allowed_region(z, T - d, **kw)) \
        & np.asarray(theory.allowed_region(z + d, T, **kw)) & np.asarray(theory.allowed_region(z - d, T, **kw))


def _two_param_on_points(points: dict, key: str, *, steps, record_every, stop, tol, diverge_loss,
                         recipe: str, recipe_parameters: dict) -> xr.Dataset:
    """Run eosdyn.toy.two_param with every parameter given per initial condition (dim ``init``)."""
    from .. import toy

    if points["z0"].size == 0:
        raise ValueError("no initial condition lies in the allowed region (Eq. 67-68); widen z_range/T_range")
    init = {k: xr.DataArray(v, dims="init") for k, v in points.items()}
    ds = toy.two_param(**{key: init[key]}, E_tilde=init["E_tilde"], z0=init["z0"], T0=init["T0"], steps=steps,
                       record_every=record_every, stop=stop, tol=tol, diverge_loss=diverge_loss)
    ds = ds.assign_coords(init=np.arange(points["z0"].size, dtype=np.int64))
    set_variable_attrs(ds["init"], "init")
    ds.attrs["recipe"] = recipe
    ds.attrs["recipe_parameters"] = __import__("json").dumps(
        __import__("eosdyn.conventions", fromlist=["_jsonable"])._jsonable(recipe_parameters))
    return ds


def phase_portrait(*, eps=None, a=None, E_tilde=0.0, z_range=(-1.0, 1.0), T_range=(0.0, 4.0), n=21, steps=2000,
                   record_every=None, stop="batch", tol=5e-27, diverge_loss=None) -> xr.Dataset:
    """Figures 7-8: GD of the two-parameter model from an even grid of allowed initial conditions.

    For every combination of the given ``eps`` (or ``a``) and ``E_tilde`` values, the ``n × n`` grid of
    (z̃₀, T₀) over ``z_range × T_range`` is filtered by :func:`eosdyn.theory.allowed_region`
    (Eq. 67-68) and all remaining points are run with one call of :func:`eosdyn.toy.two_param`,
    with ``eps|a``, ``E_tilde``, ``z0``, ``T0`` as coordinates along one dim ``init``.

    Parameters
    ----------
    eps, a : float or list of float
        Exactly one: ε ∈ (0, 1] or a (a ≥ 1 or a < −1); ``a = 1`` is the symmetric (catapult) model.
    E_tilde : float or list of float, default 0
        Ẽ values.
    z_range, T_range : [low, high]
        The grid box.
    n : int, default 21
        Grid points per axis.
    steps, record_every, stop, tol, diverge_loss :
        As in :func:`eosdyn.toy.two_param` (default: final state only, ``stop="batch"``: stop once
        all have converged or diverged).

    Returns
    -------
    xarray.Dataset
        The :func:`eosdyn.toy.two_param` dataset over ``init`` (coords ``eps|a``, ``E_tilde``, ``z0``,
        ``T0`` along ``init``); ``final_T``, ``status``, ...

    Examples
    --------
    >>> ds = phase_portrait(a=1.0, E_tilde=[0.0, 0.5], n=5, steps=100)
    >>> ds.final_T.dims
    ('init',)
    """
    if (eps is None) == (a is None):
        raise ValueError("give exactly one of eps and a")
    key, vals = ("eps", _toy_values("eps", eps)) if eps is not None else ("a", _toy_values("a", a))
    Es = _toy_values("E_tilde", E_tilde)
    zr, Tr = _range("z_range", z_range), _range("T_range", T_range)
    n = check_int("n", n, 2)
    zg, Tg = np.meshgrid(np.linspace(*zr, n), np.linspace(*Tr, n), indexing="ij")
    pts = {key: [], "E_tilde": [], "z0": [], "T0": []}
    for v in vals:
        for e in Es:
            ok = _strictly_allowed(zg.ravel(), Tg.ravel(), **{key: float(v)}, E_tilde=float(e))
            m = int(ok.sum())
            pts[key] += [v] * m
            pts["E_tilde"] += [e] * m
            pts["z0"] += zg.ravel()[ok].tolist()
            pts["T0"] += Tg.ravel()[ok].tolist()
    params = dict(eps=eps, a=a, E_tilde=E_tilde, z_range=zr, T_range=Tr, n=n, steps=steps,
                  record_every=record_every, stop=stop, tol=tol, diverge_loss=diverge_loss)
    return _two_param_on_points({k: np.asarray(v, float) for k, v in pts.items()}, key, steps=steps,
                                record_every=record_every, stop=stop, tol=tol, diverge_loss=diverge_loss,
                                recipe="eosdyn.recipes.phase_portrait", recipe_parameters=params)


def random_initialisations(*, eps, E_tilde=0.0, n=1000, z_range=(-0.6, 0.6), T_range=(1.0, 3.0), seed=0,
                           steps=100000, tol=5e-27, diverge_loss=None) -> xr.Dataset:
    """Figure 9: GD of the EOS model from random initial conditions; the distribution of the final T.

    Draws (z̃₀, T₀) uniformly in ``z_range × T_range`` from ``numpy.random.SeedSequence(seed)``,
    keeps the first ``n`` that lie in the allowed region (rejection sampling with
    :func:`eosdyn.theory.allowed_region`), and runs them with :func:`eosdyn.toy.two_param` until
    all have converged or diverged (``stop="batch"``, final state only).

    Parameters
    ----------
    eps : float
        ε ∈ (0, 1].
    E_tilde : float, default 0
    n : int, default 1000
        Number of initial conditions.
    z_range, T_range : [low, high]
    seed : int, default 0
    steps : int, default 100000
        Step limit.
    tol, diverge_loss : float
        As in :func:`eosdyn.toy.two_param` (on the loss ½ z̃²).

    Returns
    -------
    xarray.Dataset
        Over dim ``init``: ``final_T``, ``final_z``, ``status``, ...; coords ``z0``, ``T0``.

    Examples
    --------
    >>> ds = random_initialisations(eps=0.1, n=20, steps=20000)
    >>> ds.sizes["init"]
    20
    """
    check_range("eps", eps, 0, 1, lo_open=True)
    check_range("E_tilde", E_tilde)
    n = check_int("n", n, 1)
    seed = check_int("seed", seed, 0)
    zr, Tr = _range("z_range", z_range), _range("T_range", T_range)
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    z0 = np.empty(0)
    T0 = np.empty(0)
    for _ in range(1000):
        z = rng.uniform(*zr, size=4 * n)
        T = rng.uniform(*Tr, size=4 * n)
        ok = _strictly_allowed(z, T, eps=float(eps), E_tilde=float(E_tilde))
        z0, T0 = np.concatenate([z0, z[ok]]), np.concatenate([T0, T[ok]])
        if z0.size >= n:
            break
    else:
        raise ValueError("z_range x T_range hardly intersects the allowed region (Eq. 67-68); move the box")
    params = dict(eps=eps, E_tilde=E_tilde, n=n, z_range=zr, T_range=Tr, seed=seed, steps=steps, tol=tol,
                  diverge_loss=diverge_loss)
    pts = {"eps": np.full(n, float(eps)), "E_tilde": np.full(n, float(E_tilde)), "z0": z0[:n], "T0": T0[:n]}
    return _two_param_on_points(pts, "eps", steps=steps, record_every=None, stop="batch", tol=tol,
                                diverge_loss=diverge_loss,
                                recipe="eosdyn.recipes.random_initialisations", recipe_parameters=params)




#: codes of the ``uv_phase`` variable of :func:`uv_phase_diagram`
UV_PHASES = {"undecided": -1, "lazy": 0, "catapult": 1, "divergent": 2}


def uv_phase_diagram(*, n, eta=None, eta_lam0_range=None, points=111, lam0=2.0, z0=1.0, y=0.0, steps=20000,
                     peak_steps=300, tol=5e-27, diverge_loss=None) -> xr.Dataset:
    """The catapult phase diagram of the uv model (Lewkowycz et al. 2020) over (η λ₀, n).

    Runs :func:`eosdyn.toy.uv` twice on the grid of ``n`` and ``eta`` (the other parameters fixed):
    to ``steps`` with the final state only (``stop="member"``), for the fates and the final NTK
    eigenvalue, and to ``peak_steps`` recording every step, for the loss growth
    ``loss_growth`` = max L_t / L_0 over t ≤ ``peak_steps`` (inf once the member diverged). Each
    member gets a phase ``uv_phase``: divergent (status diverged), lazy (not diverged, the loss
    never exceeded L_0), catapult (not diverged, the loss grew, and the final sharpness η λ is
    below 2), undecided otherwise (the loss grew and η λ did not fall below 2 within ``steps``:
    at y = 0 only η λ₀ = 4 exactly, where λ stays constant).

    Parameters
    ----------
    n : float or list of float
        Widths n ≥ 1.
    eta : float or list of float, optional
        Learning rates η > 0 (the phase axis is η λ₀).
    eta_lam0_range : [low, high], optional
        Instead of ``eta``: ``points`` evenly spaced values of η λ₀ from low to high (η = value / λ₀).
    points : int, default 111
        Grid points of ``eta_lam0_range`` (≥ 2).
    lam0, z0, y : float
        Initial NTK eigenvalue, initial residual and target, as in :func:`eosdyn.toy.uv` (default:
        λ₀ = 2 and f₀ = 1, the typical values of u, v with standard normal entries, and y = 0).
    steps : int, default 20000
        Step limit of the fate run.
    peak_steps : int, default 300
        Steps of the recorded run that measures the loss growth (≥ 1; the catapult's loss peak
        comes within O(log n) steps).
    tol, diverge_loss :
        As in :func:`eosdyn.toy.uv`.

    Returns
    -------
    xarray.Dataset
        The :func:`eosdyn.toy.uv` dataset (final state only) over (``n``, ``eta``) with
        ``loss_growth`` and ``uv_phase`` (codes :data:`UV_PHASES`, also in its ``flag_values``,
        ``flag_meanings`` attributes).

    Examples
    --------
    >>> ds = uv_phase_diagram(n=[100, 1000], eta=[0.5, 1.5, 2.5], steps=2000)
    >>> ds.uv_phase.values.tolist()      # eta * lam0 = 1, 3, 5: lazy, catapult, divergent
    [[0, 1, 2], [0, 1, 2]]
    """
    from .. import toy
    from ..conventions import STATUS_VALUES

    peak_steps = check_int("peak_steps", peak_steps, 1)
    if (eta is None) == (eta_lam0_range is None):
        raise ValueError("give exactly one of eta and eta_lam0_range")
    if eta is None:
        check_range("lam0", lam0, 0.0, None, lo_open=True)
        lo, hi = _range("eta_lam0_range", eta_lam0_range)
        eta = np.linspace(lo, hi, check_int("points", points, 2)) / float(lam0)
    kw = dict(n=_toy_values("n", n), eta=_toy_values("eta", eta), lam0=lam0, z0=z0, y=y, tol=tol,
              diverge_loss=diverge_loss)
    kw["n"] = xr.DataArray(kw["n"], dims="n", coords={"n": kw["n"]})
    kw["eta"] = xr.DataArray(kw["eta"], dims="eta", coords={"eta": kw["eta"]})
    ds = toy.uv(**kw, steps=steps, record_every=None, stop="member")
    rec = toy.uv(**kw, steps=peak_steps, record_every=1, stop="never")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        loss = rec["loss"].fillna(np.inf)      # steps after diverged_at are masked with NaN
        growth = (loss.max("step") / rec["loss"].isel(step=0)).drop_vars("step", errors="ignore")
    diverged = ds["status"] == STATUS_VALUES["diverged"]
    grew = growth > 1.0
    phase = xr.where(diverged, UV_PHASES["divergent"],
                     xr.where(~grew, UV_PHASES["lazy"],
                              xr.where(ds["final_sharpness"] < 2.0, UV_PHASES["catapult"], UV_PHASES["undecided"])))
    ds["loss_growth"] = growth.astype(ds["final_sharpness"].dtype)
    ds["uv_phase"] = phase.astype(np.int8)
    for name in ("n", "eta", "loss_growth"):
        set_variable_attrs(ds[name], name)
    set_variable_attrs(ds["uv_phase"], "uv_phase")
    ds["uv_phase"].attrs["flag_values"] = np.array(list(UV_PHASES.values()), dtype=np.int8)
    ds["uv_phase"].attrs["flag_meanings"] = " ".join(UV_PHASES)
    params = dict(n=n, eta=eta, eta_lam0_range=eta_lam0_range, points=points, lam0=lam0, z0=z0, y=y,
                  steps=steps, peak_steps=peak_steps, tol=tol,
                  diverge_loss=diverge_loss)
    ds.attrs["recipe"] = "eosdyn.recipes.uv_phase_diagram"
    ds.attrs["recipe_parameters"] = __import__("json").dumps(
        __import__("eosdyn.conventions", fromlist=["_jsonable"])._jsonable(params))
    return ds
