"""Real network at the edge of stability (Section 5, Appendix D): the optional torch pipeline.

``import eosdyn.nn`` does not import torch; the submodules that need it
(:mod:`.network`, :mod:`.projections`, :mod:`.pipeline`) import it on first use.
Install the extra with ``pip install eosdyn[nn]``.

Submodules
----------
data
    CIFAR-10 loader (official ``cifar-10-batches-py/`` or the ``cifar10_subset.npz``), numpy only.
linalg
    Matrix-free LOBPCG (warm-startable) and Lanczos, numpy only.
network
    The fc-tanh network and its NTK / Hessian / second-derivative products via ``torch.func``.
projections
    Top-k NTK eigenpairs, reduced tensor Q̃, extreme eigenvalues of Q₁ at a step t₀.
pipeline
    GD run with per-step tracking in the EOS window, checkpoint/resume, the two stored datasets.
cli
    ``eosdyn nn build`` (``add_parser(subparsers)`` / ``run(args)``).
"""

from __future__ import annotations

import importlib

_LAZY = {"data", "linalg", "network", "projections", "pipeline", "cli"}
_FUNCS = {"load_cifar": "data", "build": "pipeline"}

__all__ = sorted(_LAZY | set(_FUNCS))


def __getattr__(name: str):
    if name in _LAZY:
        mod = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = mod
        return mod
    if name in _FUNCS:
        mod = importlib.import_module(f"{__name__}.{_FUNCS[name]}")
        return getattr(mod, name)
    raise AttributeError(f"module 'eosdyn.nn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _LAZY | set(_FUNCS))
