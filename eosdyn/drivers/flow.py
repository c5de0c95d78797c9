"""The driver of gradient flows (``kind="flow"``): solve every member with
:func:`eosdyn.kernels.integrate.solve_batch`, observe its variables at the sample ``times``,
derive the fates on the ``time`` axis and label the dataset.

Fates of a flow member: ``diverged`` when the integrator's norm guard fires (max |y| above
:data:`DIVERGE_NORM` or non-finite, located inside the step) or a sample has ``loss >
diverge_loss`` or a non-finite variable (``diverged_at``: that time); ``converged`` when a sample
has ``loss < tol`` (``converged_at``: the first such time); ``failed`` when the integrator gave
up (step size collapsed or ``max_evals`` spent; also after an earlier convergence); otherwise
``max_steps`` (it reached
``times[-1]``). ``diverged_at``/``converged_at`` are float64 times (NaN: never), ``t_stop`` the
time reached; samples after a stop are NaN and ``final_*`` are the values at the last valid sample.

Examples
--------
>>> import eosdyn
>>> ds = eosdyn.toy.two_param_flow(eps=0.1, z0=0.1, T0=1.0, times=[0.0, 1.0, 2.0])
>>> ds.z.dims, int(ds.status)
(('time',), 3)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from .._validate import check_times
from ..conventions import STATUS_VALUES
from ..kernels.integrate import check_flow_options, solve_batch
from ..systems import System
from . import _common as C

__all__ = ["Flow", "run", "DIVERGE_NORM", "MAX_EVALS"]

#: the integrator's norm guard: max |state| above it (or non-finite) is divergence
DIVERGE_NORM = 1e100
#: default work budget of one flow member (right-hand-side evaluations)
MAX_EVALS = 100_000


@dataclass(frozen=True)
class Flow:
    """A gradient flow: ``prepare(**model)`` returns the sibling's inputs (members, ``y0`` (n, m),
    coords, extra variables) and ``args`` (one tuple per member); ``rhs(t, y, *args)``;
    ``observe(Y, inputs)`` maps the samples (n, K, m) to ``{name: (array (n, K, ...), trail)}``
    including ``loss`` and ``sharpness``."""

    record: System
    prepare: Callable[..., tuple[Any, list]]
    rhs: Callable
    observe: Callable[[np.ndarray, Any], dict]
    var_attrs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


def run(spec: Flow, parameters: Mapping[str, Any], model: Mapping[str, Any], *, times, tol, diverge_loss, rtol,
        atol, method, max_evals) -> xr.Dataset:
    """Integrate the flow ``spec`` (see the module docstring)."""
    tv = check_times(times)
    rtol, atol, method, _, max_evals = check_flow_options(rtol=rtol, atol=atol, method=method,
                                                          diverge_norm=DIVERGE_NORM, max_evals=max_evals)
    _, _, _, tol, dl, _ = C.gd_options(steps=0, record_every=1, stop="never", tol=tol, diverge_loss=diverge_loss,
                                       dtype="float64")
    inp, args = spec.prepare(**model)
    Y, status, t_stop = solve_batch(spec.rhs, inp.y0, tv, args, rtol=rtol, atol=atol, method=method,
                                    diverge_norm=DIVERGE_NORM, max_evals=max_evals)
    with np.errstate(all="ignore"):
        obs = spec.observe(Y, inp)
    n = Y.shape[0]
    loss = obs["loss"][0]
    finite = np.ones(loss.shape, bool)
    for arr, _ in obs.values():
        finite &= np.isfinite(arr).reshape(arr.shape[:2] + (-1,)).all(axis=2)
    reached = tv[None, :] <= t_stop[:, None]
    with np.errstate(invalid="ignore"):
        bad = reached & (~finite | ~(loss <= dl))
    div_at = np.where(status == STATUS_VALUES["diverged"], t_stop, np.nan)
    has_bad = bad.any(axis=1)
    kbad = np.argmax(bad, axis=1)
    sample_div = np.where(has_bad, tv[kbad], np.nan)
    earlier = has_bad & ~(div_at <= sample_div)
    div_at = np.where(earlier, sample_div, div_at)
    t_stop = np.where(earlier, sample_div, t_stop)
    valid = reached & (tv[None, :] <= np.where(np.isnan(div_at), np.inf, div_at)[:, None]) & finite
    valid &= ~((tv[None, :] == div_at[:, None]) & bad)
    with np.errstate(invalid="ignore"):
        conv = valid & (loss < tol)
    conv_at = np.where(conv.any(axis=1), tv[np.argmax(conv, axis=1)], np.nan)
    diverged = ~np.isnan(div_at)
    # a failed solve stays flagged even after an earlier convergence (its samples end early)
    status = np.where(diverged, STATUS_VALUES["diverged"],
                      np.where(~np.isnan(conv_at) & (status != STATUS_VALUES["failed"]), STATUS_VALUES["converged"],
                               status)).astype(np.int8)
    # NaN after a stop (and at a divergent sample); finals at the last valid sample
    last = np.where(valid.any(axis=1), valid.shape[1] - 1 - np.argmax(valid[:, ::-1], axis=1), -1)
    traj, finals = {}, {}
    for name, (arr, trail) in obs.items():
        arr = arr.copy()
        arr[~valid] = np.nan
        traj[name] = (arr, trail)
        fin = arr[np.arange(n), np.maximum(last, 0)].copy()
        fin[last < 0] = np.nan
        finals[f"final_{name}"] = (fin, trail)
    fates = {"status": (status, ()), "diverged_at": (div_at, ()), "converged_at": (conv_at, ()),
             "t_stop": (t_stop.astype(np.float64), ())}
    return C.assemble(
        spec.record, inp.members, coords=inp.coords, axis="time", axis_values=tv, trajectories=traj,
        per_member={**fates, **finals}, parameters=parameters, var_attrs=spec.var_attrs,
        extra_vars=getattr(inp, "extra_vars", None),
        attrs={"tol": tol, "diverge_loss": dl, "integrator": f"scipy.integrate.OdeSolver method={method}",
               "rtol": float(rtol), "atol": float(atol), "max_evals": int(max_evals), "diverge_norm": DIVERGE_NORM})
