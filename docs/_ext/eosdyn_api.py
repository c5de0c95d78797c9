"""Sphinx extension: ``.. eosdyn-namespace:: eosdyn.toy`` documents a public namespace from its ``__all__``.

The line (inside an ``eval-rst`` block of a MyST page) is replaced, when the page is read, by the
module's docstring (``.. module::``, its NumPy section headers as rubrics), a summary table (``autosummary``: name and first docstring
line) of its public functions and classes, each of them in full (autodoc + numpydoc), and its
constants documented in the module itself (with a ``#:`` comment) without their often long values. Driving it
from ``__all__`` keeps the API reference complete: a name added to a namespace appears without
editing ``docs/api.md`` (``tests/test_namespaces.py`` checks that ``__all__`` lists exactly the
public names). Submodules re-exported by a namespace (``eosdyn.toy`` in ``eosdyn``) are skipped.
"""

from __future__ import annotations

import importlib
import inspect
import re

_LINE = re.compile(r"^\.\. eosdyn-namespace:: *(?P<mod>[\w.]+) *$", re.M)


def _has_doc_comment(modname: str, name: str) -> bool:
    """True when module ``modname`` itself documents ``name`` with a ``#:`` comment (what autodata reads)."""
    from sphinx.pycode import ModuleAnalyzer

    try:
        return ("", name) in ModuleAnalyzer.for_module(modname).find_attr_docs()
    except Exception:  # noqa: BLE001 - a module without source: nothing to document
        return False


_SECTION = re.compile(r"^(?P<title>[A-Z][^\n]*)\n-{3,}[ \t]*$", re.M)


def _module_doc(mod) -> str:
    """The module docstring with its NumPy-style section headers (``Examples`` over dashes) as rubrics.

    As real sections they would nest the summary table and every function under the module's last
    section ("Examples") and repeat the same section name for every module on the page.

    >>> import types
    >>> doc = "Intro.\\n\\nNotes\\n-----\\nSee the paper."
    >>> print(_module_doc(types.SimpleNamespace(__doc__=doc)))
    Intro.
    <BLANKLINE>
    .. rubric:: Notes
    <BLANKLINE>
    See the paper.
    """
    doc = inspect.cleandoc(getattr(mod, "__doc__", None) or "")
    return _SECTION.sub(lambda m: f".. rubric:: {m.group('title').strip()}\n", doc)


def namespace_rst(modname: str) -> list[str]:
    """The reStructuredText lines that document ``modname`` (see the module docstring).

    >>> rst = namespace_rst("eosdyn.io")
    >>> rst[0], "   to_netcdf" in rst, ".. autofunction:: to_netcdf" in rst
    ('.. module:: eosdyn.io', True, True)
    """
    mod = importlib.import_module(modname)
    funcs, classes, data = [], [], []
    for name in mod.__all__:
        obj = getattr(mod, name)
        if inspect.ismodule(obj):
            continue
        if inspect.isclass(obj):
            classes.append(name)
        elif callable(obj):
            funcs.append(name)
        elif _has_doc_comment(modname, name):
            data.append(name)
    lines = [f".. module:: {modname}", "", *_module_doc(mod).splitlines(), "", f".. currentmodule:: {modname}", ""]
    if funcs or classes:
        lines += [".. autosummary::", ""] + [f"   {n}" for n in funcs + classes] + [""]
    for n in funcs:
        lines += [f".. autofunction:: {n}", ""]
    for n in classes:
        lines += [f".. autoclass:: {n}", ""]
    for n in data:
        lines += [f".. autodata:: {n}", "   :no-value:", ""]
    return lines


def expand(text: str) -> str:
    """Replace every ``.. eosdyn-namespace:: M`` line of ``text`` by :func:`namespace_rst` of ``M``."""
    return _LINE.sub(lambda m: "\n".join(namespace_rst(m.group("mod"))).rstrip("\n"), text)


def _source_read(app, docname, source) -> None:
    if ".. eosdyn-namespace::" in source[0]:
        source[0] = expand(source[0])
        docs = getattr(app.env, "eosdyn_namespace_docs", set())
        docs.add(docname)
        app.env.eosdyn_namespace_docs = docs


def _always_outdated(app, env, added, changed, removed) -> list[str]:
    """Pages expanded from ``__all__`` are re-read on every build (the code may have changed)."""
    return sorted(getattr(env, "eosdyn_namespace_docs", set()) - set(removed))


def _merge(app, env, docnames, other) -> None:  # parallel reads (-j): collect the workers' pages
    env.eosdyn_namespace_docs = (getattr(env, "eosdyn_namespace_docs", set())
                                 | getattr(other, "eosdyn_namespace_docs", set()))


def setup(app):
    app.connect("source-read", _source_read)
    app.connect("env-get-outdated", _always_outdated)
    app.connect("env-merge-info", _merge)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
