"""Edges of stability of GD, heavy-ball momentum, Nesterov, RMSProp and Adam.

Each optimizer's **edge** is the largest value of its own sharpness for which its update,
linearised on a quadratic L(θ) = ½ θᵀHθ, is stable: η λ_max(H) for ``gd``, ``momentum``,
``nesterov``; the preconditioned sharpness η λ_max(P⁻¹H) with the preconditioner P frozen for
``rmsprop`` and ``adam``. On an eigen-direction of H (of P⁻¹H) with curvature λ the update
is a linear map of a small state; with the sharpness ``a`` = η λ (η λ / p) it reads (u the
rescaled buffer: η v for the velocity, η m / p for Adam's first moment):

=============  ===============================  ==========================
optimizer      state map (x, u) -> (x', u')     edge
=============  ===============================  ==========================
``gd``         x' = (1 − a) x                   2
``momentum``   u' = β u + a x, x' = x − u'      2 (1 + β)
``nesterov``   u' = β u + a x,                  2 (1 + β) / (1 + 2β)
               x' = x − a x − β u'
``rmsprop``    x' = (1 − a) x                   2
``adam``       u' = β₁ u + (1 − β₁) a x,        (2 + 2β₁) / (1 − β₁)
               x' = x − u'
=============  ===============================  ==========================

(Adam's bias corrections tend to 1 and are left out: the map of late steps.) The edges
follow from the Jury conditions of the 2 × 2 maps, see docs/optimizers.md; they agree with
Cohen et al. 2021 (App., momentum), Cohen et al. 2022 (arXiv 2207.14484: 38/η for Adam with
β₁ = 0.9) and, for the batch sharpness of minibatch SGD, with Andreyev & Beneventano
(arXiv 2412.20553: 2/η). The update conventions are those of the kernels
(:data:`eosdyn._validate.OPTIMIZERS`, PyTorch's forms).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .._validate import OPTIMIZERS as _OPTIMIZERS
from .._validate import check_optimizer, check_range
from .._xr import lift

__all__ = ["OPTIMIZERS", "OPTIMIZER_DEFAULTS", "optimizer_edge", "update_matrix"]

#: optimizer names, in the order of the docs
OPTIMIZERS: tuple[str, ...] = tuple(_OPTIMIZERS)
#: hyperparameter defaults of each optimizer (the kernels' defaults)
OPTIMIZER_DEFAULTS: dict[str, dict[str, float]] = {k: dict(v) for k, v in _OPTIMIZERS.items()}


def _edge_values(optimizer: str, hyper: dict):
    """The plain-array edge function of ``optimizer`` and its arguments (those that enter)."""
    if optimizer in ("gd", "rmsprop"):
        return (lambda: 2.0), ()
    if optimizer == "momentum":
        return (lambda b: 2.0 * (1.0 + b)), (hyper["momentum"],)
    if optimizer == "nesterov":
        return (lambda b: 2.0 * (1.0 + b) / (1.0 + 2.0 * b)), (hyper["momentum"],)
    return (lambda b1: (2.0 + 2.0 * b1) / (1.0 - b1)), (hyper["beta1"],)


def optimizer_edge(optimizer: str = "gd", *, momentum=None, beta1=None, beta2=None, epsilon=None):
    """The edge of stability of an optimizer: the largest stable value of its sharpness.

    The sharpness is η λ_max(H) for ``"gd"``, ``"momentum"`` and ``"nesterov"``, and the
    preconditioned sharpness η λ_max(P⁻¹H) (P frozen) for ``"rmsprop"`` and ``"adam"``.
    Values: gd 2; heavy ball 2(1 + β); Nesterov 2(1 + β)/(1 + 2β); RMSProp 2; Adam
    (2 + 2β₁)/(1 − β₁) (38 for β₁ = 0.9, Cohen et al. 2022). Below the edge the linearised
    update (:func:`update_matrix`) has spectral radius < 1 for every curvature in
    (0, edge), above it > 1.

    Parameters
    ----------
    optimizer : {"gd", "momentum", "nesterov", "rmsprop", "adam"}
    momentum : float, array or DataArray, optional
        β in [0, 1) of ``"momentum"``/``"nesterov"`` (default 0.9).
    beta1 : float, array or DataArray, optional
        β₁ in [0, 1) of ``"adam"`` (default 0.9).
    beta2, epsilon : float, optional
        Accepted (and checked: β₂ in [0, 1), ε > 0) for ``"rmsprop"``/``"adam"``; they do not
        enter the edge (the preconditioner is frozen).

    A hyperparameter the optimizer does not use is refused (``ValueError``).

    Returns
    -------
    float, ndarray or DataArray
        The edge, broadcast over the hyperparameters; a DataArray named ``edge`` when a
        hyperparameter is one.

    Examples
    --------
    >>> optimizer_edge("gd"), optimizer_edge("momentum", momentum=0.5)
    (2.0, 3.0)
    >>> round(optimizer_edge("nesterov", momentum=0.9), 6), round(optimizer_edge("adam"), 6)
    (1.357143, 38.0)
    >>> optimizer_edge("momentum", momentum=[0.0, 0.5, 0.9])
    array([2. , 3. , 3.8])
    >>> import xarray as xr
    >>> optimizer_edge("adam", beta1=xr.DataArray([0.5, 0.9], dims="beta1")).values
    array([ 6., 38.])
    >>> optimizer_edge("gd", momentum=0.9)
    Traceback (most recent call last):
    ...
    ValueError: momentum is not a hyperparameter of optimizer 'gd' (it takes no hyperparameters)
    """
    optimizer, hyper = check_optimizer(optimizer, momentum=momentum, beta1=beta1, beta2=beta2, epsilon=epsilon)
    func, args = _edge_values(optimizer, hyper)
    if not args:
        return 2.0
    long_name = f"edge of stability of {optimizer} (largest stable sharpness of the linearised update)"
    if any(isinstance(a, xr.DataArray) for a in args):
        out = lift(func, *args, core_dims=[[] for _ in args], out_core_dims=[[]], out_dtypes=[float])
        out.name = "edge"
        out.attrs = {"long_name": long_name, "units": "1"}
        return out
    val = func(*(np.asarray(a, dtype=float) for a in args))
    return float(val) if np.ndim(val) == 0 else np.asarray(val)


def _matrix(optimizer: str):
    """Plain-array builder of the update matrix: (a, hyper...) -> (..., k, k)."""
    if optimizer in ("gd", "rmsprop"):
        return lambda a: (1.0 - a)[..., None, None]

    def two(m00, m01, m10, m11):
        m00, m01, m10, m11 = np.broadcast_arrays(m00, m01, m10, m11)
        return np.stack([np.stack([m00, m01], -1), np.stack([m10, m11], -1)], -2)

    if optimizer == "momentum":
        return lambda a, b: two(1.0 - a, -b, a, b)
    if optimizer == "nesterov":
        return lambda a, b: two(1.0 - a * (1.0 + b), -b * b, a, b)
    return lambda a, b1: two(1.0 - (1.0 - b1) * a, -b1, (1.0 - b1) * a, b1)


def update_matrix(optimizer: str, curvature, *, momentum=None, beta1=None, beta2=None, epsilon=None):
    """The linearised update of ``optimizer`` on one eigen-direction: the matrix M with
    ``(x', u') = M (x, u)``.

    ``curvature`` a is the sharpness of that direction: η λ (``gd``, ``momentum``,
    ``nesterov``) or η λ / p, p the frozen preconditioner (``rmsprop``, ``adam``). The state
    is x (the coordinate along the direction) alone for ``gd``/``rmsprop`` (1 × 1), and
    (x, u) with u = η v (the velocity) for ``momentum``/``nesterov``, u = η m / p (Adam's
    first moment, bias correction → 1) for ``adam`` (2 × 2):

    * gd, rmsprop: [[1 − a]]
    * momentum:    [[1 − a, −β], [a, β]]
    * nesterov:    [[1 − a(1 + β), −β²], [a, β]]
    * adam:        [[1 − (1 − β₁) a, −β₁], [(1 − β₁) a, β₁]]

    The update is stable when the spectral radius of M is below 1: for a in (0, edge),
    :func:`optimizer_edge`.

    Parameters
    ----------
    optimizer : {"gd", "momentum", "nesterov", "rmsprop", "adam"}
    curvature : float, array or DataArray
        The sharpness a of the direction (real, finite).
    momentum, beta1, beta2, epsilon :
        As in :func:`optimizer_edge` (defaults 0.9; β₂ and ε do not enter).

    Returns
    -------
    ndarray or DataArray
        Shape ``curvature.shape + (k, k)`` broadcast with the hyperparameters; a DataArray
        with the trailing dims ``row``, ``column`` when an argument is one.

    Examples
    --------
    >>> update_matrix("momentum", 1.0, momentum=0.5)
    array([[ 0. , -0.5],
           [ 1. ,  0.5]])
    >>> import numpy as np
    >>> M = update_matrix("adam", [37.0, 39.0], beta1=0.9)
    >>> M.shape, (np.abs(np.linalg.eigvals(M)).max(-1) < 1).tolist()
    ((2, 2, 2), [True, False])
    """
    optimizer, hyper = check_optimizer(optimizer, momentum=momentum, beta1=beta1, beta2=beta2, epsilon=epsilon)
    if isinstance(curvature, (bool, np.bool_, str, bytes)) or curvature is None:
        raise TypeError(f"curvature must be a real number, an array or a DataArray; got {curvature!r}")
    check_range("curvature", curvature)
    func = _matrix(optimizer)
    names = [] if optimizer in ("gd", "rmsprop") else ["momentum" if optimizer != "adam" else "beta1"]
    args = (curvature, *(hyper[n] for n in names))
    if any(isinstance(a, xr.DataArray) for a in args):
        k = 1 if not names else 2
        out = lift(lambda *xs: func(*xs), *args, core_dims=[[] for _ in args],
                   out_core_dims=[["row", "column"]], out_dtypes=[float], out_sizes={"row": k, "column": k})
        out.name = "update_matrix"
        out.attrs = {"long_name": f"linearised update matrix of {optimizer}", "units": "1"}
        return out
    return func(*(np.asarray(a, dtype=float) for a in args))
