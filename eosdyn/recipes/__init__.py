"""Recipes of the built-in catalog (``catalogs/eosdyn.yaml``): datasets that no single simulation
call builds.

* :mod:`eosdyn.recipes.toy`: :func:`phase_portrait` (Figures 7, 8), :func:`random_initialisations`
  (Figure 9), :func:`uv_phase_diagram` (the uv model's catapult phases);
* :mod:`eosdyn.recipes.qrm`: :func:`qrm_phase_diagrams` (Figure 4), :func:`rnl_monte_carlo`
  (Eq. 27), :func:`theorem41_monte_carlo` (Theorem 4.1);
* :mod:`eosdyn.recipes.optim`: :func:`sgd_batch_sizes` (minibatch SGD over batch sizes).

The claims that compare these datasets with the paper live in :mod:`eosdyn.claims`.

Examples
--------
>>> from eosdyn import recipes
>>> sorted(recipes.__all__)[:2]
['phase_portrait', 'qrm_phase_diagrams']
"""

from .optim import sgd_batch_sizes
from .qrm import qrm_phase_diagrams, rnl_monte_carlo, theorem41_monte_carlo
from .toy import phase_portrait, random_initialisations, uv_phase_diagram

__all__ = ["phase_portrait", "random_initialisations", "uv_phase_diagram", "qrm_phase_diagrams", "rnl_monte_carlo",
           "theorem41_monte_carlo", "sgd_batch_sizes"]
