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

from .._lazy import attach as _attach

_SUBMODULES = ("data", "linalg", "network", "projections", "pipeline", "cli")
_FUNCTIONS = {"load_cifar": "data", "build": "pipeline"}

__all__ = sorted({*_SUBMODULES, *_FUNCTIONS})

__getattr__, __dir__ = _attach(__name__, {**{m: f"{__name__}.{m}" for m in _SUBMODULES},
                                          **{f: f"{__name__}.{m}:{f}" for f, m in _FUNCTIONS.items()}})
