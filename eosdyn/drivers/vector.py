"""The driver of maps on a vector state per member (``kind="vector_map"`` and
``"parameter_gd"``): the hierarchy in Q's eigenbasis (state (z̃, w_1..w_P)) and GD in parameter
space (state θ).

validate → labelled grid → kernel (:func:`eosdyn.kernels.maps.vector_batch`, which observes z̃,
the sharpness T and the loss at every step) → fates (:mod:`eosdyn.drivers._protocol`) →
labelled dataset. A map is a :class:`VectorMap`: the system record, the kernel's map ``kind``,
a ``prepare`` returning :class:`VectorInputs`, and ``derive`` that names the variables.

Examples
--------
>>> import eosdyn
>>> ds = eosdyn.toy.hierarchy(q=[1.0, -0.5], w0=[0.5, 0.5], z0=0.1, steps=1)
>>> ds.w.isel(step=1).values.tolist()
[0.405, 0.55125]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from ..kernels import maps
from ..systems import System
from . import _common as C
from . import _protocol

__all__ = ["VectorMap", "VectorInputs", "run"]


@dataclass
class VectorInputs:
    """Validated model parameters: member grid, initial state ``y0`` (n, m), parameters ``prm``
    (n, k), the ``shared`` array, coordinates, names of ``y0``/``prm``/``shared`` (for errors) and
    variables that are not per member (e.g. Q)."""

    members: C.Members
    y0: np.ndarray
    prm: np.ndarray
    shared: np.ndarray
    coords: dict
    names: tuple[str, str, str]
    extra_vars: dict = field(default_factory=dict)


@dataclass(frozen=True)
class VectorMap:
    """A vector map: ``derive(fields)`` maps the kernel fields ``y`` (…, m), ``z``, ``T``,
    ``loss`` to ``{name: (array, trailing dims)}`` (``sharpness`` and ``loss`` included)."""

    record: System
    kind: int
    prepare: Callable[..., VectorInputs]
    derive: Callable[[dict], dict]
    var_attrs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


def run(spec: VectorMap, parameters: Mapping[str, Any], model: Mapping[str, Any], *, steps, record_every, stop,
        tol, diverge_loss, dtype, optimizer: tuple | None = None, coords: Mapping[str, Any] | None = None,
        roles: Mapping[str, str] | None = None, attrs: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Run the map ``spec`` (see :func:`eosdyn.drivers.pair.run`).

    ``optimizer``: ``(name, hyperparameters)`` of a non-GD optimizer for the parameter-space
    one-datapoint map (:func:`eosdyn.kernels.datapoint.datapoint_batch`; its field ``Tp``, the
    preconditioned sharpness, reaches ``spec.derive``); ``coords``, ``roles``, ``attrs``: further
    scalar coordinates, role map entries and attributes of the dataset.
    """
    steps, every, stop, tol, dl, dt = C.gd_options(steps=steps, record_every=record_every, stop=stop, tol=tol,
                                                   diverge_loss=diverge_loss, dtype=dtype)
    inp = spec.prepare(**model)
    n, m = inp.y0.shape
    C.check_work(n, steps, every, (m + 3) * dt.itemsize)
    y0, prm, shared = (C.representable(nm, v, dt) for nm, v in zip(inp.names, (inp.y0, inp.prm, inp.shared)))
    thr = C.SHARPNESS_GUARD[dt]

    def opt_kernel(nsteps, every_, fated):
        from ..kernels.datapoint import datapoint_batch

        ry, ro, oy, oo, d, c = datapoint_batch(optimizer[0], optimizer[1], y0, prm, shared, nsteps, every_, tol, dl,
                                               thr, fated)

        def fields(y, o):
            return {"y": y, "z": o[0], "T": o[1], "loss": o[2], "Tp": o[3]}

        return _protocol.KernelOut(rec=fields(ry, ro), final=fields(oy[0], oo[0]), at_div=fields(oy[1], oo[1]),
                                   at_conv=fields(oy[2], oo[2]), div_at=d, conv_at=c)

    def kernel(nsteps, every_, fated):
        if optimizer is not None:
            return opt_kernel(nsteps, every_, fated)
        R = nsteps // every_ + 1 if every_ else 0
        ry, ro = np.empty((n, R, m), dt), np.empty((3, n, R), dt)
        oy, oo = np.full((3, n, m), np.nan, dt), np.full((3, 3, n), np.nan, dt)
        d, c = np.empty(n, np.int64), np.empty(n, np.int64)
        maps.vector_batch(spec.kind, y0, prm, shared, nsteps, every_, tol, dl, thr, fated, ry, ro, oy, oo, d, c)

        def fields(y, o):
            return {"y": y, "z": o[0], "T": o[1], "loss": o[2]}

        return _protocol.KernelOut(rec=fields(ry, ro), final=fields(oy[0], oo[0]), at_div=fields(oy[1], oo[1]),
                                   at_conv=fields(oy[2], oo[2]), div_at=d, conv_at=c)

    trail = {}

    def derive(f):
        out = spec.derive(f)
        trail.update({k: t for k, (_, t) in out.items()})
        return {k: a for k, (a, _) in out.items()}

    res = _protocol.run(kernel, derive, steps=steps, every=every, stop=stop)
    ds = C.assemble(
        spec.record, inp.members, coords={**inp.coords, **(coords or {})}, axis="step", axis_values=res.step,
        trajectories={k: (v, trail[k]) for k, v in res.trajectories.items()},
        per_member={**{k: (v, ()) for k, v in res.fates.items()},
                    **{f"final_{k}": (v, trail[k]) for k, v in res.finals.items()}},
        parameters=parameters, var_attrs=spec.var_attrs, extra_vars=inp.extra_vars,
        attrs={"tol": tol, "diverge_loss": dl, "stop": stop, "sharpness_guard": thr, **(attrs or {})})
    if roles:
        from ..conventions import set_roles

        set_roles(ds, **roles)
    return ds
