"""Toy models of Section 3 (one datapoint with a quadratic model): the public namespace.

Gradient descent maps :func:`two_param`, :func:`catapult`, :func:`linear`, :func:`uv`, :func:`hierarchy`,
:func:`one_datapoint` and the gradient flows :func:`two_param_flow`, :func:`hierarchy_flow`,
:func:`one_datapoint_flow` and the central flow :func:`one_datapoint_central_flow`; the implementation lives in :mod:`eosdyn.models.toy`, and this
module re-exports exactly its public names (``__all__``). See ``docs/toy.md``.

Examples
--------
>>> import eosdyn.toy
>>> from eosdyn.toy import two_param
>>> "two_param" in eosdyn.toy.__all__, two_param.__name__
(True, 'two_param')
"""

from __future__ import annotations

from .models import toy as _impl
from .models.toy import *  # noqa: F401,F403

__all__ = list(_impl.__all__)
