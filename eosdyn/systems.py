"""Every simulation as data: one record per system, found in one registry.

A *system* is a record (:class:`System`): the public function that produces its dataset, the
kind of state it evolves (which shared driver runs it), its parameters with their allowed
domains and CF labels (:class:`Param`), its state variables, the role map analyses and plots
use, the paper equations, and a small example. Producers register their record when their
module is imported; :func:`systems` imports them all and lists the records, so one test
(``tests/test_conformance.py``) runs the same contract over every producer, and the docs'
option table is generated from the same records.

Kinds (one driver per kind):

* ``"pair_map"``: GD on a two-component state (z̃, T) of scalars per member (the P = 2 map,
  the catapult map) or one component (linear least squares);
* ``"vector_map"``: GD on a state with a vector dim per member (the hierarchy in Q's eigenbasis);
* ``"parameter_gd"``: GD in parameter space θ (one datapoint, random QRMs, the Taylor model);
* ``"flow"``: gradient flows on the ``time`` axis (``flow_of`` names the GD sibling).

Examples
--------
>>> import eosdyn.systems as systems
>>> rec = systems.get("eosdyn.toy.two_param")
>>> rec.kind, [p.name for p in rec.params][:3]
('pair_map', ['eps', 'a', 'E_tilde'])
>>> ds = systems.run("eosdyn.toy.two_param", **rec.example)
>>> ds.attrs["eosdyn_roles"]
'residual: z; curvature: T; sharpness: sharpness; loss: loss'
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Param", "System", "KINDS", "OPTION_COLUMNS", "register", "systems", "get", "run", "option_table"]

KINDS = ("pair_map", "vector_map", "parameter_gd", "flow")

#: modules that define eosdyn's systems (imported by :func:`systems`)
_MODULES = ("eosdyn.models.toy", "eosdyn.models.qrm", "eosdyn.models.taylor", "eosdyn.models.central")

_REGISTRY: dict[str, System] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Param:
    """One parameter of a system.

    Attributes
    ----------
    name : str
        Keyword of the producer (ASCII), also the dim/coordinate name when it is an array.
    long_name, units : str
        CF labels of the coordinate (the mathematics in Unicode).
    domain : str
        The allowed values in words or interval notation, e.g. ``"(0, 1]"``; quoted in errors
        and the docs' option table.
    dim : bool
        Whether an array (or DataArray) value becomes a dim of the output.
    """

    name: str
    long_name: str
    units: str = "1"
    domain: str = "any real"
    dim: bool = True


@dataclass(frozen=True)
class System:
    """The record of one producer (see the module docstring).

    Attributes
    ----------
    name : str
        The public dotted name users call (``"eosdyn.toy.two_param"``); also ``eosdyn_config.function``.
    kind : str
        One of :data:`KINDS` (which driver runs it).
    title, equations : str
        Dataset ``title`` and the paper equations it implements.
    params : tuple of Param
        Model parameters (not the run options).
    state : tuple of str
        State variables on the trajectory axis, paper names (``z``, ``T``, ``theta``, ...).
    roles : mapping
        Role map (see :data:`eosdyn.conventions.ROLES`) written into every dataset.
    example : mapping
        Small parameters that run in well under a second (docs and the conformance test).
    function : str
        ``"module.attr"`` where the producer is defined.
    random : bool
        Whether it draws random instances (then it takes ``seeds``).
    flow_of : str, optional
        For flows: the GD sibling's name.
    options : tuple of str
        The run options it takes (``steps``, ``record_every``, ``stop``, ``tol``, ...).
    defaults : mapping
        Its defaults of those options (the docs' option table shows them).
    initial : mapping
        State variable -> the parameter whose value is that state at step 0 (or time 0),
        checked by the conformance test (``{"z": "z0", "T": "T0"}``).
    notes : str
        Anything a user should know that the table cannot say.
    """

    name: str
    kind: str
    title: str
    equations: str
    params: tuple[Param, ...]
    state: tuple[str, ...]
    roles: Mapping[str, str]
    example: Mapping[str, Any]
    function: str
    random: bool = False
    flow_of: str | None = None
    options: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    initial: Mapping[str, str] = field(default_factory=dict)
    notes: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {self.kind!r}")

    @property
    def producer(self) -> Callable:
        """The public function (imported on first use)."""
        module, _, attr = self.function.rpartition(".")
        return getattr(importlib.import_module(module), attr)

    def param(self, name: str) -> Param:
        """The :class:`Param` called ``name``."""
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)


def register(system: System) -> System:
    """Add (or replace) a record; called by the module that defines the producer.

    Examples
    --------
    >>> rec = get("eosdyn.toy.linear")
    >>> register(rec) is rec
    True
    """
    if not isinstance(system, System):
        raise TypeError(f"system must be a System record; got {type(system).__name__}")
    with _LOCK:
        _REGISTRY[system.name] = system
    return system


def systems(kind: str | None = None) -> dict[str, System]:
    """Every registered system (of ``kind``, if given), by public name.

    Examples
    --------
    >>> sorted(systems(kind="flow"))[:2]
    ['eosdyn.qrm.central_flow', 'eosdyn.qrm.gradient_flow']
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    for m in _MODULES:
        importlib.import_module(m)
    with _LOCK:
        recs = dict(_REGISTRY)
    return {k: v for k, v in sorted(recs.items()) if kind is None or v.kind == kind}


def get(name: str) -> System:
    """The record of the producer called ``name`` (e.g. ``"eosdyn.qrm.sweep"``).

    Examples
    --------
    >>> get("eosdyn.qrm.sweep").random
    True
    """
    recs = systems()
    if name not in recs:
        raise ValueError(f"unknown system {name!r}; systems: {', '.join(recs)}")
    return recs[name]


def run(name: str, **parameters: Any):
    """Call the producer of system ``name`` with ``parameters``.

    Examples
    --------
    >>> run("eosdyn.toy.linear", lam=0.5, theta0=1.0, steps=2).theta.values.tolist()
    [1.0, 0.5, 0.25]
    """
    return get(name).producer(**parameters)


#: the run options of the shared vocabulary, in the order of the docs' table
OPTION_COLUMNS = ("steps", "record_every", "stop", "tol", "diverge_loss", "dtype", "seeds", "times",
                  "rtol", "atol", "max_evals")

#: why a producer does not take an option (shown in the table instead of a blank cell)
_NOT_TAKEN = {
    "seeds": "deterministic",
    "times": "GD: `steps`",
    "rtol": "GD", "atol": "GD", "max_evals": "GD",
    "steps": "flow: `times`", "record_every": "flow: `times`", "stop": "flow: to `times[-1]`",
    "dtype": "float64 (solve_ivp)",
}


def _cell(rec: System, opt: str) -> str:
    if opt in rec.options:
        if opt in rec.defaults:
            return f"`{rec.defaults[opt]!r}`"
        return "required"
    return _NOT_TAKEN.get(opt, "n/a")


def option_table() -> str:
    """The Markdown table of every producer × the shared options and outputs (docs/conventions.md).

    Each cell is the producer's default for that option (``required`` when it has none) or the
    reason it does not take it; the last column lists the trajectory variables it records.

    Examples
    --------
    >>> option_table().splitlines()[0].split(" | ")[:3]
    ['| producer', 'kind', 'steps']
    """
    head = ["producer", "kind", *OPTION_COLUMNS, "trajectory variables"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, rec in systems().items():
        traj = ", ".join(f"`{v}`" for v in ("sharpness", "loss", *rec.state))
        cells = [f"`{name}`", rec.kind, *(_cell(rec, o) for o in OPTION_COLUMNS), traj]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

