"""The ``.eos`` accessor on xarray Datasets and DataArrays.

``ds.eos.<name>(...)`` is exactly ``eosdyn.analysis.<name>(ds, ...)``. This module is light (it
imports the analysis functions only when a method is called), so ``import eosdyn`` registers the
accessor without loading numba kernels.

Examples
--------
>>> import numpy as np, xarray as xr
>>> import eosdyn
>>> x = xr.DataArray(np.array([1.0, 3.0, 2.0, 4.0]), dims="step")
>>> x.eos.two_step().values
array([1., 1.])
"""

from __future__ import annotations

import importlib
import warnings

import xarray as xr

#: accessor method -> "module:function" in eosdyn.analysis
METHODS = {
    "two_step": "twostep", "even": "twostep", "odd": "twostep",
    "eos_coordinate": "coords", "nonlinearity_ratio": "coords",
    "classify": "fits", "fit_limit": "fits", "limiting_two_cycle": "fits", "fit_increments": "fits",
    "final_sharpness_stats": "stats", "phase_table": "stats",
    "fixed_points": "orbits", "period_two_orbits": "orbits",
}


def _forward(name: str):
    def method(self, *args, **kwargs):
        func = getattr(importlib.import_module(f"eosdyn.analysis.{METHODS[name]}"), name)
        return func(self._obj, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = f"Same as :func:`eosdyn.analysis.{name}` applied to this object."
    return method


class _EosAccessor:
    def __init__(self, obj):
        self._obj = obj


for _name in METHODS:
    setattr(_EosAccessor, _name, _forward(_name))


class EosDatasetAccessor(_EosAccessor):
    """``Dataset.eos``: the eosdyn analyses as methods."""


class EosDataArrayAccessor(_EosAccessor):
    """``DataArray.eos``: the eosdyn analyses as methods."""


def register() -> None:
    """Register ``.eos`` on Dataset and DataArray (idempotent)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # re-registration on reload
        xr.register_dataset_accessor("eos")(EosDatasetAccessor)
        xr.register_dataarray_accessor("eos")(EosDataArrayAccessor)


register()
