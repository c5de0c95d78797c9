"""eosdyn: progressive sharpening and the edge of stability of gradient descent.

Simulations of the models of Agarwala, Pedregosa & Pennington (ICML 2023),
their closed-form theory, and analyses, all as labelled :mod:`xarray` datasets.

Submodules are imported on first use, so ``import eosdyn`` stays light.
"""

from __future__ import annotations

import importlib

from ._version import __version__
from .conventions import check_dataset
from .io import open_dataset, to_netcdf
from .analysis import accessor as _eos_accessor  # noqa: F401,E402  (light: registers Dataset.eos)

_SUBMODULES = {
    "toy": "eosdyn.models.toy",
    "qrm": "eosdyn.models.qrm",
    "taylor": "eosdyn.models.taylor",
    "theory": "eosdyn.theory",
    "analysis": "eosdyn.analysis",
    "catalog": "eosdyn.catalog",
    "conventions": "eosdyn.conventions",
    "models": "eosdyn.models",
    "plot": "eosdyn.plot",
    "sweep": "eosdyn.sweep",
    "io": "eosdyn.io",
    "recipes": "eosdyn.recipes",
    "claims": "eosdyn.claims",
    "registry": "eosdyn.registry",
    "systems": "eosdyn.systems",
    "reproduce": "eosdyn.reproduce",
    "nn": "eosdyn.nn",
}

__all__ = ["__version__", "check_dataset", "open_dataset", "to_netcdf", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(_SUBMODULES[name])
        globals()[name] = module
        return module
    raise AttributeError(f"module 'eosdyn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
