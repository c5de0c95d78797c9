"""The one lazy-import helper of eosdyn's packages: names imported on first attribute access.

A package lists its lazily imported names in one table, ``name -> "module"`` (a submodule)
or ``name -> "module:attribute"`` (an object defined there), and gets its module-level
``__getattr__`` and ``__dir__`` from :func:`attach`. The first access imports the module and
caches the value in the package's namespace, so later accesses cost nothing.

Examples
--------
>>> getattr_, dir_ = attach("mypkg", {"conventions": "eosdyn.conventions",
...                                   "label": "eosdyn.conventions:label"})
>>> getattr_("label").__name__
'label'
>>> "conventions" in dir_()
True
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

__all__ = ["attach"]


def attach(package: str, table: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` for ``package`` that import the names of ``table``.

    Parameters
    ----------
    package : str
        The package's ``__name__`` (values are cached in its namespace when it is imported).
    table : mapping
        Public name -> ``"dotted.module"`` (the module itself) or ``"dotted.module:attr"``.
    """
    table = dict(table)

    def __getattr__(name: str):
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attr = table[name].partition(":")
        value = importlib.import_module(module)
        if attr:
            value = getattr(value, attr)
        mod = sys.modules.get(package)
        if mod is not None:
            setattr(mod, name, value)
        return value

    def __dir__() -> list[str]:
        mod = sys.modules.get(package)
        return sorted(set(vars(mod) if mod is not None else ()) | set(table))

    return __getattr__, __dir__
