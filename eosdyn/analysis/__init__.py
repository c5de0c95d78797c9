"""Analyses that work on any eosdyn dataset: two-step dynamics, EOS coordinates, attractor fits,
final-sharpness statistics, fixed points and period-2 orbits of the toy maps.

Every function takes a Dataset or DataArray with a ``step`` dim (name configurable with ``dim=``)
and any number of other dims, in any order, and returns labelled results with those dims;
array kernels are lifted with ``xarray.apply_ufunc`` (dask inputs stay lazy). The same functions
are methods of the ``.eos`` accessor (registered by ``import eosdyn``).

Functions are imported on first use, so importing this package (and the accessor) is light.
"""

from __future__ import annotations

from .._lazy import attach as _attach
from . import accessor as _accessor  # noqa: F401  (registers Dataset.eos / DataArray.eos)

_WHERE = {
    "two_step": "twostep", "even": "twostep", "odd": "twostep", "two_step_pairs": "twostep",
    "eos_coordinate": "coords", "nonlinearity_ratio": "coords",
    "classify": "fits", "fit_limit": "fits", "limiting_two_cycle": "fits", "fit_increments": "fits",
    "ATTRACTOR_VALUES": "fits",
    "final_sharpness_stats": "stats", "phase_table": "stats", "DEFAULT_BINS": "stats",
    "fixed_points": "orbits", "period_two_orbits": "orbits", "map_jacobian": "orbits",
    "time_averaged_loss": "flows", "flow_distances": "flows", "separation_step": "flows",
    "measured_oscillation": "flows",
}

__all__ = sorted(_WHERE)

__getattr__, __dir__ = _attach(__name__, {name: f"{__name__}.{module}:{name}" for name, module in _WHERE.items()})
