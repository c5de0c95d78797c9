"""EOS coordinates of any eosdyn dataset, and the non-linear/linear ratio.

* Toy datasets (variables ``z``, ``T`` and a coordinate ``eps`` or ``a``; ``E`` defaults to 0):
  y = T − f_z^{(2)}(z̃), the distance from the two-step z̃-nullcline through (0, 2), computed by
  :func:`eosdyn.theory.eos_coordinate` (one place for the formula).
* Datasets with a ``sharpness`` variable (QRM, real network, Taylor model): y = sharpness − edge
  with edge = 2 (sharpness is η λ_max, so y = η λ₁ − 2); with a ``mode`` dim, mode 0 (the top
  eigenvalue λ₁) is used.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr

from ._common import XArray, attach, check_real, check_real_dtype, check_xarray, lift

__all__ = ["eos_coordinate", "nonlinearity_ratio", "toy_parameters"]


def toy_parameters(ds: xr.Dataset):
    """``(lam, kwargs)`` of a toy dataset: λ = −ε or −1/a as a DataArray, and the theory kwargs.

    Raises ``ValueError`` if the dataset carries neither ``eps`` nor ``a``.
    """
    E = ds["E"] if "E" in ds.variables else xr.DataArray(0.0)
    if "eps" in ds.variables:
        return -ds["eps"], {"eps": ds["eps"], "E": E}
    if "a" in ds.variables:
        return -1.0 / ds["a"], {"a": ds["a"], "E": E}
    raise ValueError("a toy dataset needs a coordinate 'eps' or 'a' (the second eigenvalue of Q)")


def _is_toy(ds) -> bool:
    return isinstance(ds, xr.Dataset) and "z" in ds and "T" in ds and ("eps" in ds.variables or
                                                                         "a" in ds.variables)


def _top_mode(x: xr.DataArray, mode_dim: Hashable = "mode") -> xr.DataArray:
    if mode_dim not in x.dims:
        return x
    if mode_dim in x.coords and 0 in np.asarray(x[mode_dim].values):
        return x.sel({mode_dim: 0})
    return x.isel({mode_dim: 0})


def _theory_eos(z, T, p, E, key):
    from ..theory import toy as _theory_toy

    func = getattr(_theory_toy, "eos_coordinate", None)
    if func is None:  # pragma: no cover - only while theory is being written
        raise NotImplementedError("eosdyn.theory.eos_coordinate is not available")
    with np.errstate(invalid="ignore"):   # NaN state after divergence gives NaN y
        return np.asarray(func(z, T, **{key: p, "E": E}), dtype=np.result_type(z, T, np.float64))


def eos_coordinate(ds: XArray, *, edge: float = 2.0, mode_dim: Hashable = "mode") -> xr.DataArray:
    """The EOS coordinate y of every member and step.

    Parameters
    ----------
    ds : xarray.Dataset or xarray.DataArray
        A toy dataset (``z``, ``T`` and coordinate ``eps`` or ``a``, optional ``E``), or a dataset
        with a ``sharpness`` variable, or a ``sharpness`` DataArray.
    edge : float, default 2.0
        The edge of stability in sharpness units (η λ_max = 2); finite.
    mode_dim : str, default "mode"
        Eigenmode dim of network datasets; mode 0 (the top eigenvalue) is used.

    Returns
    -------
    xarray.DataArray
        ``y`` with the input's dims (minus ``mode_dim``) and coordinates.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> s = xr.DataArray(np.array([1.5, 2.1, 1.9]), dims="step", name="sharpness")
    >>> eos_coordinate(s).values
    array([-0.5,  0.1, -0.1])
    """
    check_xarray(ds, "ds")
    edge = check_real("edge", edge)
    if not isinstance(mode_dim, Hashable):
        raise TypeError(f"mode_dim must be a dimension name; got {mode_dim!r}")
    if _is_toy(ds):
        for k in ("z", "T"):
            check_real_dtype(ds[k].dtype, f"ds[{k!r}]", "iuf")
        _, kw = toy_parameters(ds)
        key = "eps" if "eps" in kw else "a"
        y = lift(_theory_eos, ds["z"], ds["T"], kw[key], kw["E"], core_dims=[[], [], [], []],
                 out_core_dims=[[]], out_dtypes=[np.result_type(ds["z"].dtype, np.float64)],
                 kwargs={"key": key})
        return attach(y, "y")
    if isinstance(ds, xr.Dataset):
        if "sharpness" not in ds:
            raise ValueError("eos_coordinate needs a toy dataset (variables 'z', 'T' and coordinate "
                             "'eps' or 'a') or a variable 'sharpness'; got variables "
                             f"{list(ds.data_vars)}")
        s = ds["sharpness"]
    else:
        if ds.name not in (None, "sharpness"):
            raise ValueError(f"eos_coordinate of a DataArray needs the sharpness series; got {ds.name!r}")
        s = ds
    check_real_dtype(s.dtype, "ds['sharpness']" if isinstance(ds, xr.Dataset) else "ds", "iuf")
    return attach(_top_mode(s, mode_dim) - edge, "y")


def _toy_nonlinear(z, T, lam, E):
    from ..kernels.maps import two_param_step

    z1, _ = two_param_step(z, T, lam, E)
    lin = -z * T
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs((z1 - z - lin) / lin)


def nonlinearity_ratio(ds: xr.Dataset) -> xr.DataArray:
    """|non-linear term| / |linear term| of the residual update, per member and step.

    For the one-datapoint models z̃_{t+1} − z̃_t = −z̃ T + ½ z̃² T(1) (Eq. 10), so the ratio is
    |½ z̃² T(1)| / |z̃ T| = |z̃ T(1)| / (2 |T|) (the toy analogue of Figure 6, right). It is
    computed from a ``T1`` variable when the dataset has one (``hierarchy``, ``one_datapoint``),
    otherwise, for P = 2 toy datasets (``eps`` or ``a`` coordinate), from the step map itself
    (:func:`eosdyn.kernels.maps.two_param_step`): non-linear term = z̃_{t+1} − z̃_t + z̃ T.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"z": ("step", [0.2, 0.1]), "T": ("step", [1.0, 1.5]),
    ...                  "T1": ("step", [0.5, 0.6])})
    >>> nonlinearity_ratio(ds).values
    array([0.05, 0.02])
    """
    check_xarray(ds, "ds")
    if isinstance(ds, xr.Dataset):
        for k in ("z", "T", "T1"):
            if k in ds:
                check_real_dtype(ds[k].dtype, f"ds[{k!r}]", "iuf")
    if isinstance(ds, xr.Dataset) and "z" in ds and "T" in ds and "T1" in ds:
        r = abs(ds["z"] * ds["T1"]) / (2 * abs(ds["T"]))
    elif _is_toy(ds):
        lam, kw = toy_parameters(ds)
        r = lift(_toy_nonlinear, ds["z"], ds["T"], lam, kw["E"], core_dims=[[], [], [], []],
                 out_core_dims=[[]], out_dtypes=[np.result_type(ds["z"].dtype, np.float64)])
    else:
        raise ValueError("nonlinearity_ratio needs variables 'z', 'T' and either 'T1' or a coordinate "
                         "'eps'/'a' (one-datapoint toy datasets)")
    return attach(r, "nl_ratio")
