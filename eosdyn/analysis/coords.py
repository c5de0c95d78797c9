"""EOS coordinates of any eosdyn dataset, and the non-linear/linear ratio.

Variables are found by their role (:func:`eosdyn.conventions.role`: the dataset's role map, attr
``eosdyn_roles``, or else the variable named like the role), model parameters by their documented
coordinate names; nothing here recognises a model by name.

* ``method="two_step_nullcline"`` (P = 2 map datasets: roles ``residual`` and ``curvature``, and
  the coordinates ``lam`` and ``E_tilde``): y = T − f_z^{(2)}(z̃), the distance from the two-step
  z̃-nullcline through (0, 2), computed by :func:`eosdyn.theory.toy.eos_coordinate` (one place for
  the formula).
* ``method="sharpness"`` (any dataset with a ``sharpness`` role): y = sharpness − edge with the
  dataset's ``edge`` coordinate, else 2 (sharpness is η λ_max, so y = η λ₁ − 2); with a ``mode``
  dim, mode 0 (the top eigenvalue λ₁) is used.
* ``method="auto"`` (default): the two-step nullcline when the dataset carries the P = 2 map
  parameter ``lam`` and has the residual and curvature roles, else the sharpness.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr

from ._common import (XArray, attach, check_real_dtype, check_xarray, dataset_edge, has_roles, lift,
                      role_var)

__all__ = ["eos_coordinate", "nonlinearity_ratio", "map_parameters"]

#: the methods of :func:`eos_coordinate`
METHODS = ("auto", "two_step_nullcline", "sharpness")


def map_parameters(ds: xr.Dataset, *, what: str = "this analysis") -> dict:
    """The parameters of the P = 2 map (Eq. 65-66) of a dataset, from its documented coordinates.

    Returns ``{"lam": λ, "E_tilde": Ẽ, "theory": kwargs}``: λ (the coordinate ``lam``, the second
    eigenvalue of Q), Ẽ (the coordinate ``E_tilde``, the rescaled conserved quantity η E) and the
    keywords of :mod:`eosdyn.theory.toy` functions (the dataset's own ``eps`` or ``a`` when it
    carries one, else ``a = −1/λ``).

    Raises
    ------
    ValueError
        Naming the coordinate that is missing (``lam`` or ``E_tilde``).

    Examples
    --------
    >>> import xarray as xr
    >>> ds = xr.Dataset(coords={"eps": 0.1, "lam": -0.1, "E_tilde": 0.0})
    >>> p = map_parameters(ds)
    >>> float(p["lam"]), float(p["E_tilde"]), float(p["theory"]["eps"])
    (-0.1, 0.0, 0.1)
    """
    if not isinstance(ds, xr.Dataset):
        raise ValueError(f"{what} needs a Dataset with the P = 2 map coordinates 'lam' and 'E_tilde'")
    missing = [k for k in ("lam", "E_tilde") if k not in ds.variables]
    if missing:
        raise ValueError(f"{what} needs the P = 2 map parameters as coordinates 'lam' (second eigenvalue "
                         f"of Q) and 'E_tilde' (rescaled conserved quantity); missing: "
                         f"{', '.join(repr(m) for m in missing)}")
    lam, E = ds["lam"], ds["E_tilde"]
    for k, v in (("lam", lam), ("E_tilde", E)):
        check_real_dtype(v.dtype, f"the coordinate {k!r}", "iuf")
    if "eps" in ds.variables:
        kw = {"eps": ds["eps"]}
    elif "a" in ds.variables:
        kw = {"a": ds["a"]}
    else:
        kw = {"a": -1.0 / lam}
    kw[_e_keyword()] = E
    return {"lam": lam, "E_tilde": E, "theory": kw}


def _e_keyword() -> str:
    """The keyword under which :mod:`eosdyn.theory.toy` takes Ẽ."""
    import inspect

    from ..theory import toy as _theory_toy

    params = inspect.signature(_theory_toy.eos_coordinate).parameters
    return "E_tilde" if "E_tilde" in params else "E"


def _method(ds: XArray, method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}; got {method!r}")
    if method != "auto":
        return method
    if isinstance(ds, xr.Dataset) and "lam" in ds.variables and has_roles(ds, "residual", "curvature"):
        return "two_step_nullcline"
    return "sharpness"


def _top_mode(x: xr.DataArray, mode_dim: Hashable = "mode") -> xr.DataArray:
    if mode_dim not in x.dims:
        return x
    if mode_dim in x.coords and 0 in np.asarray(x[mode_dim].values):
        return x.sel({mode_dim: 0})
    return x.isel({mode_dim: 0})


def _theory_eos(z, T, p, E, key, ekey):
    from ..theory import toy as _theory_toy

    with np.errstate(invalid="ignore"):   # NaN state after divergence gives NaN y
        return np.asarray(_theory_toy.eos_coordinate(z, T, **{key: p, ekey: E}),
                          dtype=np.result_type(z, T, np.float64))


def eos_coordinate(ds: XArray, *, edge: float | None = None, mode_dim: Hashable = "mode",
                   method: str = "auto") -> xr.DataArray:
    """The EOS coordinate y of every member and step.

    Parameters
    ----------
    ds : xarray.Dataset or xarray.DataArray
        A dataset whose role map names the residual and the curvature and which carries the
        P = 2 map coordinates ``lam`` and ``E_tilde`` (two-step nullcline), or any dataset with a
        ``sharpness`` role, or a sharpness DataArray.
    edge : float, optional
        The edge of stability in sharpness units; default: the dataset's ``edge`` coordinate,
        else 2 (η λ_max = 2). Used by the sharpness method.
    mode_dim : str, default "mode"
        Eigenmode dim of network datasets; mode 0 (the top eigenvalue) is used.
    method : {"auto", "two_step_nullcline", "sharpness"}
        See the module documentation.

    Returns
    -------
    xarray.DataArray
        ``y`` with the input's dims (minus ``mode_dim``) and coordinates.

    Raises
    ------
    ValueError
        Naming the role or coordinate the chosen method needs and the dataset lacks.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> s = xr.DataArray(np.array([1.5, 2.1, 1.9]), dims="step", name="sharpness")
    >>> eos_coordinate(s).values
    array([-0.5,  0.1, -0.1])
    >>> from eosdyn.conventions import set_roles
    >>> ds = set_roles(xr.Dataset({"z": ("step", [0.0]), "T": ("step", [1.9])},
    ...                           coords={"eps": 0.1, "lam": -0.1, "E_tilde": 0.0}),
    ...                residual="z", curvature="T")
    >>> eos_coordinate(ds).values          # on the nullcline's axis z̃ = 0: y = T − 2
    array([-0.1])
    """
    check_xarray(ds, "ds")
    edge = dataset_edge(ds, edge)
    if not isinstance(mode_dim, Hashable):
        raise TypeError(f"mode_dim must be a dimension name; got {mode_dim!r}")
    if _method(ds, method) == "two_step_nullcline":
        what = "eos_coordinate(method='two_step_nullcline')"
        z = role_var(ds, "residual", what=what)
        T = role_var(ds, "curvature", what=what)
        for v in (z, T):
            check_real_dtype(v.dtype, f"ds[{v.name!r}]", "iuf")
        p = map_parameters(ds, what=what)
        kw = dict(p["theory"])
        ekey = _e_keyword()
        E = kw.pop(ekey)
        (key, val), = kw.items()
        y = lift(_theory_eos, z, T, val, E, core_dims=[[], [], [], []], out_core_dims=[[]],
                 out_dtypes=[np.result_type(z.dtype, np.float64)], kwargs={"key": key, "ekey": ekey})
        return attach(y, "y")
    if isinstance(ds, xr.Dataset):
        s = role_var(ds, "sharpness", what="eos_coordinate (y = sharpness - edge)")
        label = f"ds[{s.name!r}]"
    else:
        if ds.name not in (None, "sharpness"):
            raise ValueError(f"eos_coordinate of a DataArray needs the sharpness series; got {ds.name!r}")
        s, label = ds, "ds"
    check_real_dtype(s.dtype, label, "iuf")
    return attach(_top_mode(s, mode_dim) - edge, "y")


def _toy_nonlinear(z, T, lam, E):
    from ..kernels.maps import two_param_step

    z1, _ = two_param_step(z, T, lam, E)
    lin = -z * T
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs((z1 - z - lin) / lin)


def nonlinearity_ratio(ds: xr.Dataset) -> xr.DataArray:
    """abs(non-linear term) / abs(linear term) of the residual update, per member and step.

    For the one-datapoint models z̃_{t+1} − z̃_t = −z̃ T + ½ z̃² T(1) (Eq. 10), so the ratio is
    ``|½ z̃² T(1)| / |z̃ T| = |z̃ T(1)| / (2 |T|)`` (the toy analogue of Figure 6, right), with z̃
    and T the variables of roles ``residual`` and ``curvature``. It is computed from the
    variable ``T1`` (T(1) = η J Q Jᵀ) when the dataset has one, otherwise, for P = 2 map datasets
    (coordinates ``lam`` and ``E_tilde``), from the step map itself
    (:func:`eosdyn.kernels.maps.two_param_step`): non-linear term = z̃_{t+1} − z̃_t + z̃ T.

    Raises
    ------
    ValueError
        Naming the role, variable or coordinate that is missing.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from eosdyn.conventions import set_roles
    >>> ds = xr.Dataset({"z": ("step", [0.2, 0.1]), "T": ("step", [1.0, 1.5]),
    ...                  "T1": ("step", [0.5, 0.6])})
    >>> nonlinearity_ratio(set_roles(ds, residual="z", curvature="T")).values
    array([0.05, 0.02])
    """
    check_xarray(ds, "ds")
    if not isinstance(ds, xr.Dataset):
        raise ValueError("nonlinearity_ratio needs a Dataset (roles 'residual' and 'curvature')")
    what = "nonlinearity_ratio"
    z = role_var(ds, "residual", what=what)
    T = role_var(ds, "curvature", what=what)
    for v in (z, T) + ((ds["T1"],) if "T1" in ds.data_vars else ()):
        check_real_dtype(v.dtype, f"ds[{v.name!r}]", "iuf")
    if "T1" in ds.data_vars:
        r = abs(z * ds["T1"]) / (2 * abs(T))
    else:
        if "lam" not in ds.variables:
            raise ValueError("nonlinearity_ratio needs a variable 'T1' (T(1) = eta J Q J^T) or the P = 2 map "
                             "coordinates 'lam' and 'E_tilde'; the dataset has neither 'T1' nor 'lam'")
        p = map_parameters(ds, what=what)
        r = lift(_toy_nonlinear, z, T, p["lam"], p["E_tilde"], core_dims=[[], [], [], []],
                 out_core_dims=[[]], out_dtypes=[np.result_type(z.dtype, np.float64)])
    return attach(r, "nl_ratio")
