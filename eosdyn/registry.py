"""The functions a file may name: eosdyn's own recipes, views and claims, and those a user registers.

A catalog entry names a *recipe* (the function that computes its dataset), a *view* (the
plot ``eosdyn reproduce`` draws) and *claims* (functions that compare a dataset with the
paper); a dataset's ``eosdyn_config`` attribute names the recipe that regenerates it. Those
names come from files a collaborator may send, so they are looked up here and nowhere else:
a name is callable only if it is one of eosdyn's own (the tables below) or was registered by
the user in Python with :func:`register_recipe`, :func:`register_view` or
:func:`register_claim`. Nothing else is imported or called: a file that names ``os.system``
gets :class:`UntrustedFunctionError`, which names the file, the entry and the function.

Examples
--------
>>> import eosdyn.registry as reg
>>> reg.resolve("recipe", "eosdyn.toy.linear").__name__
'linear'
>>> reg.resolve("recipe", "os.system")
Traceback (most recent call last):
...
eosdyn.registry.UntrustedFunctionError: recipe 'os.system' is not one of eosdyn's recipes nor registered with eosdyn.catalog.register_recipe; refusing to call it
>>> def my_recipe(*, n=3):
...     import eosdyn
...     return eosdyn.toy.linear(lam=0.5, theta0=1.0, steps=n)
>>> reg.register_recipe(my_recipe, name="mylab.my_recipe")
'mylab.my_recipe'
>>> reg.resolve("recipe", "mylab.my_recipe") is my_recipe
True
>>> reg.unregister("recipe", "mylab.my_recipe")
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable

__all__ = ["KINDS", "UntrustedFunctionError", "register", "register_recipe", "register_view",
           "register_claim", "unregister", "resolve", "names", "is_registered"]

KINDS = ("recipe", "view", "claim")

_TOY = ("one_datapoint", "hierarchy", "two_param", "catapult", "linear", "uv",
        "two_param_flow", "hierarchy_flow", "one_datapoint_flow", "one_datapoint_central_flow")
_RECIPES = ("phase_portrait", "random_initialisations", "qrm_phase_diagrams", "rnl_monte_carlo",
            "theorem41_monte_carlo", "sgd_batch_sizes")
_CLAIMS = ("claim_figure1", "claim_figure2", "claim_theorem31", "claim_figure7", "claim_figure9",
           "claim_figure3", "claim_figure4", "claim_rnl", "claim_theorem41", "claim_figure5",
           "claim_momentum_edge", "claim_adam_edge", "claim_sgd_batch_sharpness")
_VIEWS = ("auto", "loss_landscape", "eos_trajectories", "final_sharpness_vs_eps", "phase_portraits",
          "final_T_distribution", "qrm_trajectories", "phase_diagrams", "rnl", "theorem41",
          "network_trajectory", "network_projections")

# continuous-time models (catalogs/flows.yaml)
_CLAIMS += ("claim_central_flow_qrm", "claim_self_stabilization_qrm")
_VIEWS += ("flow_comparison_view", "self_stabilization_view")

# the uv model's catapult phases (catalogs/toy_beyond.yaml)
_RECIPES += ("uv_phase_diagram",)
_CLAIMS += ("claim_uv_catapult_phases",)
_VIEWS += ("uv_phases",)

# optimizers (catalogs/optimizers.yaml)
_VIEWS += ("final_sharpness_vs_edge", "edge_trajectories", "batch_sharpness_vs_batch_size")


def _table() -> dict[str, dict[str, tuple[str, str]]]:
    """eosdyn's own callables: public dotted name -> (module, attribute)."""
    recipe = {}
    for f in _TOY:
        recipe[f"eosdyn.toy.{f}"] = ("eosdyn.models.toy", f)
        recipe[f"eosdyn.models.toy.{f}"] = ("eosdyn.models.toy", f)
    for f in ("sweep", "gradient_flow"):
        recipe[f"eosdyn.qrm.{f}"] = ("eosdyn.models.qrm", f)
        recipe[f"eosdyn.models.qrm.{f}"] = ("eosdyn.models.qrm", f)
    for f in ("central_flow", "self_stabilization", "flow_comparison"):
        recipe[f"eosdyn.qrm.{f}"] = ("eosdyn.models.central", f)
        recipe[f"eosdyn.models.central.{f}"] = ("eosdyn.models.central", f)
    recipe["eosdyn.taylor.simulate"] = ("eosdyn.models.taylor", "simulate")
    recipe["eosdyn.models.taylor.simulate"] = ("eosdyn.models.taylor", "simulate")
    recipe["eosdyn.taylor.central_flow"] = ("eosdyn.models.taylor", "central_flow")
    recipe["eosdyn.models.taylor.central_flow"] = ("eosdyn.models.taylor", "central_flow")
    for f in _RECIPES:
        recipe[f"eosdyn.recipes.{f}"] = ("eosdyn.recipes", f)
    claim = {f"eosdyn.claims.{f}": ("eosdyn.claims", f) for f in _CLAIMS}
    view = {f"eosdyn.plot.{f}": ("eosdyn.plot", f) for f in _VIEWS}
    return {"recipe": recipe, "view": view, "claim": claim}


_BUILTIN = _table()
_USER: dict[str, dict[str, Callable]] = {k: {} for k in KINDS}
_LOCK = threading.Lock()


class UntrustedFunctionError(ValueError):
    """A file names a function that is neither eosdyn's own nor registered by the user."""


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    return kind


def register(kind: str, func: Callable, *, name: str | None = None) -> str:
    """Allow files (catalog entries, ``eosdyn_config``) to name ``func`` as a ``kind``.

    Parameters
    ----------
    kind : {"recipe", "view", "claim"}
        What the function is: a recipe returns an :class:`xarray.Dataset` from keyword
        parameters; a view draws a dataset (``view(ds)`` returns a HoloViews object); a claim
        returns rows comparing a dataset with the paper (``claim(ds) -> list[dict]``).
    func : callable
        The function.
    name : str, optional
        The dotted name files use (default ``"<module>.<qualname>"``). It must not shadow one
        of eosdyn's own names.

    Returns
    -------
    str
        The registered name.

    Examples
    --------
    >>> register("view", lambda ds: None, name="mylab.view")
    'mylab.view'
    >>> unregister("view", "mylab.view")
    """
    _check_kind(kind)
    if not callable(func):
        raise TypeError(f"func must be callable; got {type(func).__name__}")
    if name is None:
        name = f"{getattr(func, '__module__', None) or '__main__'}.{getattr(func, '__qualname__', func.__name__)}"
    if not isinstance(name, str) or not name or not all(p.isidentifier() for p in name.split(".")):
        raise ValueError(f"name must be a dotted name of identifiers such as 'mylab.recipes.f'; got {name!r}")
    if name in _BUILTIN[kind]:
        raise ValueError(f"name {name!r} is one of eosdyn's own {kind}s; choose another name")
    with _LOCK:
        _USER[kind][name] = func
    return name


def register_recipe(func: Callable, *, name: str | None = None) -> str:
    """:func:`register` a recipe: ``func(**parameters) -> xarray.Dataset``.

    Examples
    --------
    >>> register_recipe(lambda **kw: None, name="mylab.recipe")
    'mylab.recipe'
    >>> unregister("recipe", "mylab.recipe")
    """
    return register("recipe", func, name=name)


def register_view(func: Callable, *, name: str | None = None) -> str:
    """:func:`register` a view: ``func(ds) -> holoviews object``.

    Examples
    --------
    >>> register_view(lambda ds: None, name="mylab.view2")
    'mylab.view2'
    >>> unregister("view", "mylab.view2")
    """
    return register("view", func, name=name)


def register_claim(func: Callable, *, name: str | None = None) -> str:
    """:func:`register` a claim: ``func(ds) -> list[dict]``.

    Examples
    --------
    >>> register_claim(lambda ds: [], name="mylab.claim")
    'mylab.claim'
    >>> unregister("claim", "mylab.claim")
    """
    return register("claim", func, name=name)


def unregister(kind: str, name: str) -> None:
    """Forget a user registration (eosdyn's own names cannot be removed).

    Examples
    --------
    >>> _ = register_recipe(print, name="mylab.printer")
    >>> unregister("recipe", "mylab.printer"); is_registered("recipe", "mylab.printer")
    False
    """
    _check_kind(kind)
    with _LOCK:
        _USER[kind].pop(name, None)


def names(kind: str) -> list[str]:
    """Every name of ``kind`` a file may use: eosdyn's own, then the user's, sorted.

    Examples
    --------
    >>> "eosdyn.qrm.sweep" in names("recipe")
    True
    """
    _check_kind(kind)
    return sorted(_BUILTIN[kind]) + sorted(_USER[kind])


def is_registered(kind: str, name: str) -> bool:
    """Whether ``name`` is callable as a ``kind`` (nothing is imported to answer).

    Examples
    --------
    >>> is_registered("recipe", "eosdyn.toy.linear"), is_registered("recipe", "os.system")
    (True, False)
    """
    _check_kind(kind)
    return isinstance(name, str) and (name in _BUILTIN[kind] or name in _USER[kind])


def resolve(kind: str, name: str, *, where: str = "") -> Callable:
    """The callable registered as ``name`` for ``kind``.

    Only eosdyn's own modules are imported, and only for the names in its tables; any other
    name raises :class:`UntrustedFunctionError` (a ``ValueError``) without importing
    anything. ``where`` (e.g. ``"catalog x.yaml, entry 'foo'"``) prefixes the message.

    Examples
    --------
    >>> resolve("claim", "eosdyn.claims.claim_rnl").__name__
    'claim_rnl'
    """
    _check_kind(kind)
    prefix = f"{where}: " if where else ""
    if isinstance(name, str):
        with _LOCK:
            user = _USER[kind].get(name)
        if user is not None:
            return user
        if name in _BUILTIN[kind]:
            module, attr = _BUILTIN[kind][name]
            return getattr(importlib.import_module(module), attr)
    raise UntrustedFunctionError(
        f"{prefix}{kind} {name!r} is not one of eosdyn's {kind}s nor registered with "
        f"eosdyn.catalog.register_{kind}; refusing to call it")
