"""Random quadratic regression models of Section 4: the public namespace.

:func:`sweep` (GD over a grid of widths, learning rates and seeds), :func:`gradient_flow` and
the helpers to draw an instance; the implementation lives in :mod:`eosdyn.models.qrm`, and
this module re-exports exactly its public names (``__all__``). See ``docs/qrm.md``.

Examples
--------
>>> import eosdyn.qrm
>>> from eosdyn.qrm import sweep, gradient_flow
>>> "sweep" in eosdyn.qrm.__all__, sweep.__name__
(True, 'sweep')
"""

from __future__ import annotations

from .models import qrm as _impl
from .models.qrm import *  # noqa: F401,F403
from .models import central as _central
from .models.central import *  # noqa: F401,F403

__all__ = list(_impl.__all__) + list(_central.__all__)
