"""Recipes of the toy-model catalog entries: phase portraits (Figures 7, 8) and random
allowed initialisations (Figure 9) of the two-parameter map, built on :func:`eosdyn.toy.two_param`.

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

__all__ = ["phase_portrait", "random_initialisations"]


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


