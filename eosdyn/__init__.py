"""eosdyn: progressive sharpening and the edge of stability of gradient descent.

Simulations of the models of Agarwala, Pedregosa & Pennington (ICML 2023),
their closed-form theory, and analyses, all as labelled :mod:`xarray` datasets.

Namespaces (each a real module: ``from eosdyn.toy import two_param`` works in a fresh
interpreter): :mod:`eosdyn.toy`, :mod:`eosdyn.qrm`, :mod:`eosdyn.taylor` (simulations),
:mod:`eosdyn.theory`, :mod:`eosdyn.analysis`, :mod:`eosdyn.plot`, :mod:`eosdyn.catalog`,
:mod:`eosdyn.recipes`, :mod:`eosdyn.claims`, :mod:`eosdyn.reproduce`, :mod:`eosdyn.sweep`,
:mod:`eosdyn.systems`, :mod:`eosdyn.registry`, :mod:`eosdyn.conventions`, :mod:`eosdyn.io`
and the optional torch pipeline :mod:`eosdyn.nn`. They are imported on first use, so
``import eosdyn`` stays light (no numba compilation, no plotting libraries).

Examples
--------
>>> import eosdyn
>>> eosdyn.toy.__name__, "simulate" in eosdyn.taylor.__all__
('eosdyn.toy', True)
"""

from __future__ import annotations

from ._lazy import attach as _attach
from ._version import __version__
from .conventions import check_dataset
from .io import open_dataset, to_netcdf
from .analysis import accessor as _eos_accessor  # noqa: F401,E402  (light: registers Dataset.eos)

#: the public namespaces, imported on first attribute access (the one lazy-import table)
_NAMESPACES = ("toy", "qrm", "taylor", "theory", "analysis", "plot", "catalog", "recipes", "claims",
               "reproduce", "sweep", "systems", "registry", "conventions", "io", "nn")

__all__ = ["check_dataset", "open_dataset", "to_netcdf", *_NAMESPACES]

__getattr__, __dir__ = _attach(__name__, {name: f"{__name__}.{name}" for name in _NAMESPACES})
