"""The driver of maps on a scalar pair (x, y) per member (``kind="pair_map"``): the P = 2 map,
the catapult map, and one-component maps such as linear least squares (y unused).

validate → labelled grid → kernel (:func:`eosdyn.kernels.maps.pair_batch`) → fates
(:mod:`eosdyn.drivers._protocol`) → labelled dataset. A map is a :class:`PairMap`: the system
record, the kernel's map ``kind``, a ``prepare`` that validates the model parameters and returns
:class:`PairInputs`, and ``derive`` that names the dataset's variables (the loss is always
½ x²).

Examples
--------
>>> import eosdyn
>>> ds = eosdyn.toy.linear(lam=1.5, theta0=1.0, steps=2)
>>> ds.theta.values.tolist(), ds.loss.values.tolist()
([1.0, -0.5, 0.25], [0.5, 0.125, 0.03125])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..kernels import maps
from ..systems import System
from . import _common as C
from . import _protocol

__all__ = ["PairMap", "PairInputs", "run"]


@dataclass
class PairInputs:
    """Validated model parameters: the member grid, the initial state ``x0, y0`` and the
    parameters ``p, r`` per member (float64, (n,)), the coordinates, and the parameter names of
    ``x0, y0, p, r`` (for errors); ``q`` is an optional third parameter per member (None: zeros)
    named ``q_name``."""

    members: C.Members
    x0: np.ndarray
    y0: np.ndarray
    p: np.ndarray
    r: np.ndarray
    coords: dict
    names: tuple[str, str, str, str]
    extra: dict = field(default_factory=dict)
    q: np.ndarray | None = None
    q_name: str = "q"


@dataclass(frozen=True)
class PairMap:
    """A scalar-pair map: ``derive(x, y, inputs)`` returns the dataset variables (state,
    ``sharpness``) of fields ``x``, ``y`` ((n,) or (n, R)); ``loss`` = ½ x² is added."""

    record: System
    kind: int
    prepare: Callable[..., PairInputs]
    derive: Callable[[np.ndarray, np.ndarray, PairInputs], dict]
    var_attrs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


def run(spec: PairMap, parameters: Mapping[str, Any], model: Mapping[str, Any], *, steps, record_every, stop,
        tol, diverge_loss, dtype):
    """Run the map ``spec`` with ``model`` parameters (passed to ``spec.prepare``) and the GD
    options; ``parameters`` are recorded as the provenance."""
    steps, every, stop, tol, dl, dt = C.gd_options(steps=steps, record_every=record_every, stop=stop, tol=tol,
                                                   diverge_loss=diverge_loss, dtype=dtype)
    inp = spec.prepare(**model)
    n = inp.x0.size
    C.check_work(n, steps, every, 2 * dt.itemsize)
    x0, y0, p, r = (C.representable(nm, v, dt) for nm, v in zip(inp.names, (inp.x0, inp.y0, inp.p, inp.r)))
    q = C.representable(inp.q_name, inp.q, dt) if inp.q is not None else np.zeros(n, dt)
    thr = C.SHARPNESS_GUARD[dt]

    def kernel(nsteps, every_, fated):
        R = nsteps // every_ + 1 if every_ else 0
        rx, ry = np.empty((n, R), dt), np.empty((n, R), dt)
        out = np.full((6, n), np.nan, dt)
        d, c = np.empty(n, np.int64), np.empty(n, np.int64)
        maps.pair_batch(spec.kind, x0, y0, p, r, nsteps, every_, tol, dl, thr, fated, rx, ry, out, d, c, q)
        return _protocol.KernelOut(rec={"x": rx, "y": ry}, final={"x": out[0], "y": out[1]},
                                   at_div={"x": out[2], "y": out[3]}, at_conv={"x": out[4], "y": out[5]},
                                   div_at=d, conv_at=c)

    def derive(f):
        out = spec.derive(f["x"], f["y"], inp)
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            loss = np.multiply(f["x"], 0.5)       # (0.5 x) x: the kernel's arithmetic, one temporary
            out["loss"] = np.multiply(loss, f["x"], out=loss)
        return out

    res = _protocol.run(kernel, derive, steps=steps, every=every, stop=stop)
    return C.assemble(
        spec.record, inp.members, coords=inp.coords, axis="step", axis_values=res.step,
        trajectories={k: (v, ()) for k, v in res.trajectories.items()},
        per_member={**{k: (v, ()) for k, v in res.fates.items()},
                    **{f"final_{k}": (v, ()) for k, v in res.finals.items()}},
        parameters=parameters, var_attrs=spec.var_attrs,
        attrs={"tol": tol, "diverge_loss": dl, "stop": stop, "sharpness_guard": thr})
