"""The second-order Taylor model of the real network (Appendix D.3): the public namespace.

:func:`simulate` runs GD on the k-mode quadratic model built from stored projections,
:func:`central_flow` its central flow (or gradient flow), :func:`reduced_model` returns that model as arrays and :func:`projections_sha256` the digest
that identifies projections in a dataset's provenance; the implementation lives in
:mod:`eosdyn.models.taylor`, and this module re-exports exactly its public names
(``__all__``). See ``docs/network.md``.

Examples
--------
>>> from eosdyn.taylor import simulate
>>> ds = simulate("cifar_fcn_projections", t0=4200, modes=2, steps=3)
>>> ds.z_tilde.dims
('step', 'mode')
"""

from __future__ import annotations

from .models import taylor as _impl
from .models.taylor import *  # noqa: F401,F403

__all__ = list(_impl.__all__)
