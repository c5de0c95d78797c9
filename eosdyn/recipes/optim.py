"""Recipe of the optimizer catalog (``catalogs/optimizers.yaml``): minibatch SGD on random QRMs
over several batch sizes in one dataset.

Examples
--------
>>> from eosdyn.recipes import sgd_batch_sizes
>>> ds = sgd_batch_sizes(batch_size=[2, 4], D=4, P=8, sigma_z=0.2, sigma_J2=0.1, seeds=2, steps=50)
>>> ds.final_batch_sharpness.dims, ds.batch_size.values.tolist()
(('batch_size', 'seed'), [2, 4])
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .._validate import check_int
from ..conventions import label, set_roles

__all__ = ["sgd_batch_sizes"]

#: sharpness variants every member records (batch sharpness and the full-batch Hessian's λ_max)
VARIANTS = ("batch_sharpness", "hessian_sharpness")


def _batch_sizes(batch_size, D: int) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(batch_size))
    if arr.ndim != 1 or arr.size == 0 or arr.dtype.kind not in "iuf":
        raise ValueError(f"batch_size must be a non-empty list of integers in [1, {D}]; got {batch_size!r}")
    out = np.array([check_int("batch_size", b, 1, D) for b in arr], dtype=np.int64)
    if np.unique(out).size != out.size:
        raise ValueError(f"batch_size must not contain duplicate values; got {batch_size!r}")
    return out


def sgd_batch_sizes(*, batch_size, D, P, sigma_z, seeds, steps, sigma_J=None, sigma_J2=None, eta=1.0,
                    optimizer="gd", **sweep_kwargs) -> xr.Dataset:
    """Minibatch SGD on random QRMs for several batch sizes, stacked along a dim ``batch_size``.

    Calls :func:`eosdyn.qrm.sweep` once per batch size (a batch size ``D`` is full-batch GD)
    with the sharpness variants ``batch_sharpness`` and ``hessian_sharpness`` recorded, so that
    every batch size has ``sharpness`` (η λ_max of the NTK), ``hessian_sharpness`` and
    ``batch_sharpness`` (exact η gᵀHg/‖g‖² at full batch) and their ``final_`` values. The role
    ``sharpness`` is ``batch_sharpness`` (the sharpness the edge of minibatch runs applies to).
    Every member's batches come from its own seed, so a member depends only on its seed, grid
    point and batch size.

    Parameters
    ----------
    batch_size : list of int
        Batch sizes b in [1, D], no duplicates.
    D, P, sigma_z, sigma_J, sigma_J2, eta, seeds, steps, optimizer
        As in :func:`eosdyn.qrm.sweep` (optimizer ``"gd"``, ``"momentum"`` or ``"nesterov"``).
    **sweep_kwargs
        Further keywords of :func:`eosdyn.qrm.sweep` (``record_every``, ``tol``, ``momentum``,
        ``dtype``, ...); ``sharpness_variants`` is set here.

    Returns
    -------
    xarray.Dataset
        The variables of the sweeps with the dim ``batch_size`` first; coordinate ``edge``.

    Examples
    --------
    >>> ds = sgd_batch_sizes(batch_size=[2, 4], D=4, P=8, sigma_z=0.2, sigma_J2=0.1, seeds=2, steps=50)
    >>> ds.attrs["eosdyn_roles"].split("; ")[0], float(ds.edge)
    ('sharpness: batch_sharpness', 2.0)
    """
    from .. import qrm

    D = check_int("D", D, 1)
    sizes = _batch_sizes(batch_size, D)
    if optimizer not in ("gd", "momentum", "nesterov"):
        raise ValueError(f"optimizer must be 'gd', 'momentum' or 'nesterov' for minibatch runs; got {optimizer!r}")
    if "sharpness_variants" in sweep_kwargs:
        raise ValueError("sharpness_variants is set by sgd_batch_sizes (batch and Hessian sharpness)")
    parts = [qrm.sweep(D=D, P=P, sigma_z=sigma_z, sigma_J=sigma_J, sigma_J2=sigma_J2, eta=eta, seeds=seeds,
                       steps=steps, optimizer=optimizer, batch_size=int(b), sharpness_variants=list(VARIANTS),
                       **sweep_kwargs) for b in sizes]
    keep = {k: parts[0].attrs[k] for k in ("tol", "diverge_loss", "stop", "optimizer") if k in parts[0].attrs}
    parts = [ds.drop_attrs() for ds in parts]
    out = xr.concat(parts, dim="batch_size", coords="minimal", compat="equals", join="outer",
                    fill_value={k: np.nan for k in ("sharpness", "loss", *VARIANTS)})
    out = out.assign_coords(batch_size=sizes)
    out = out.transpose("batch_size", ...)
    set_roles(out, sharpness="batch_sharpness", loss="loss")
    params = dict(batch_size=sizes, D=D, P=P, sigma_z=sigma_z, sigma_J=sigma_J, sigma_J2=sigma_J2, eta=eta,
                  seeds=seeds, steps=steps, optimizer=optimizer, **sweep_kwargs)
    params = {k: v for k, v in params.items() if v is not None}
    return label(out, model="qrm", title=f"Random QRM, minibatch {optimizer} over batch sizes",
                 equations="Eq. 24-26, 29 (Agarwala et al. 2023); batch sharpness (Andreyev & Beneventano 2024)",
                 config={"function": "eosdyn.recipes.sgd_batch_sizes", "parameters": params}, attrs=keep)
