"""The GD run protocol, written once for every driver: the fate run, the recording run, the
fates and the masks of the ``stop`` modes.

A driver hands :func:`run` a ``kernel(nsteps, every, stop_when_fated)`` that iterates every
member and returns a :class:`KernelOut` (records of its fields, the fields after ``nsteps``, at
``div_at`` and at ``conv_at``), and a ``derive(fields)`` that turns fields into the dataset's
variables (state, ``loss``, ``sharpness``), for records (n, R, ...) and members (n, ...) alike.

* ``stop="never"``: one recording run of ``steps``;
* ``"batch"`` and ``"member"``: a fate run (no records, a block stops when all its members have
  a fate) gives the last first-fate step n; the recording run then takes n steps (``steps`` if
  a member has no fate). ``"batch"`` keeps every member to n; ``"member"`` cuts each member at
  its own first fate (its trajectory is NaN after ``steps_taken``).

A diverged member is NaN after ``diverged_at`` and its ``steps_taken`` is ``diverged_at``; the
``final_*`` values are each member's values at its ``steps_taken``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..conventions import STATUS_VALUES, fate_variables


@dataclass
class KernelOut:
    """What a kernel returns: per field, ``rec`` (n, R, ...; only when ``every`` > 0), ``final``,
    ``at_div``, ``at_conv`` (n, ...); ``div_at``, ``conv_at`` (n,) int64 (−1: never)."""

    rec: dict
    final: dict
    at_div: dict
    at_conv: dict
    div_at: np.ndarray
    conv_at: np.ndarray


@dataclass
class Run:
    """A finished run: ``step`` coordinate, masked trajectories and finals of the derived variables,
    the fate variables."""

    step: np.ndarray
    trajectories: dict
    finals: dict
    fates: dict


def _pick(mask, a, b):
    """Per member: ``a`` where ``mask`` (n,) else ``b`` (arrays (n, ...))."""
    return np.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)


def _step_coord(nsteps: int, every: int) -> np.ndarray:
    if every == 0:
        return np.array([0, nsteps] if nsteps > 0 else [0], dtype=np.int64)
    return np.arange(0, nsteps + 1, every, dtype=np.int64)


def run(kernel: Callable[[int, int, bool], KernelOut], derive: Callable[[dict], dict], *, steps: int,
        every: int, stop: str) -> Run:
    """Run the protocol (see the module docstring)."""
    nsteps = steps
    if stop != "never":
        f = kernel(steps, 0, True)
        first = np.where(f.div_at >= 0, f.div_at, f.conv_at)
        if first.size and not np.any(first < 0):
            nsteps = int(first.max())
    o = kernel(nsteps, every, False)
    div, conv = o.div_at.copy(), o.conv_at.copy()
    if stop == "member":
        by_conv = (conv >= 0) & ((div < 0) | (conv < div))
        by_div = (div >= 0) & ~by_conv
        div[~by_div] = -1
        conv[~by_conv] = -1
        taken = np.where(by_conv, conv, np.where(by_div, div, nsteps))
        final = {k: _pick(by_conv, o.at_conv[k], _pick(by_div, o.at_div[k], v)) for k, v in o.final.items()}
        limit = taken
    else:
        by_div = div >= 0
        taken = np.where(by_div, div, nsteps)
        final = {k: _pick(by_div, o.at_div[k], v) for k, v in o.final.items()}
        limit = np.where(by_div, div, nsteps)
    status = np.where(div >= 0, STATUS_VALUES["diverged"],
                      np.where(conv >= 0, STATUS_VALUES["converged"], STATUS_VALUES["max_steps"]))
    fates = fate_variables(status, taken, div, conv)
    step = _step_coord(nsteps, every)
    if every == 0:
        first_rec = kernel(0, 0, False).final
        rec = {k: np.stack([first_rec[k], final[k]] if nsteps > 0 else [first_rec[k]], axis=1) for k in final}
    else:
        rec = o.rec
    traj = derive(rec)
    if step.size and np.any(limit < step[-1]):
        after = step[None, :] > limit[:, None]
        for arr in traj.values():
            arr[after] = np.nan
    return Run(step=step, trajectories=traj, finals=derive(final), fates=fates)
