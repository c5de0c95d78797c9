"""Closed-form theory: every formula a simulation can be overlaid with.

* :mod:`eosdyn.theory.toy` — the one-datapoint models (Section 3, App. B):
  nullclines, two-step nullclines, EOS coordinate, Theorem 3.1, allowed region.
* :mod:`eosdyn.theory.qrm` — random quadratic regression models (Section 4):
  the non-linearity ratio r_NL and the Theorem 4.1 ratio.
* :mod:`eosdyn.theory.optim` — the edges of stability of GD, momentum, Nesterov, RMSProp
  and Adam, and their linearised update matrices.
"""

from . import optim as _optim
from . import qrm as _qrm
from . import toy as _toy
from .optim import *  # noqa: F401,F403
from .qrm import *  # noqa: F401,F403
from .toy import *  # noqa: F401,F403

__all__ = [*_toy.__all__, *_qrm.__all__, *_optim.__all__]
