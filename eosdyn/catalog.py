"""Catalog of named datasets: plain YAML entries, computed on first use and cached.

A catalog is a hand-editable YAML file (the package's own lives in the top-level
``catalogs/`` folder, see :func:`builtin_catalog_dir`) with a list of entries::

    entries:
      - name: theorem31_sharpness
        description: Final sharpness of the EOS map against eps.
        paper: Theorem 3.1
        recipe:
          function: eosdyn.toy.two_param         # eosdyn's own recipe, or one you registered
          parameters: {eps: [0.05, 0.1], z0: -0.45, T0: 1.65, steps: 20000}
        variants:
          quick: {steps: 5000}          # parameter overrides
        plot: eosdyn.plot.final_sharpness_vs_eps   # optional, used by `reproduce`
        claims:                                    # optional, used by `reproduce`
          - eosdyn.claims.claim_theorem31

or, instead of ``recipe``, ``stored: {path: data/x.nc, sha256: <hex>}`` (the path
is relative to the YAML file). A recipe's dataset is computed on first use and
cached under :func:`cache_dir` (``platformdirs.user_cache_dir("eosdyn")``, or
``$EOSDYN_CACHE``), keyed by the SHA-256 of the function name, the canonical JSON
of its parameters and eosdyn's major version. Writes are atomic (temp file +
``os.replace``), serialised by a lock file, and every cache file has a sidecar
``.sha256``: a truncated or altered file is detected and recomputed with a warning.

User catalogs are added with :func:`add` or the ``EOSDYN_CATALOG_PATH``
environment variable (``os.pathsep``-separated files or folders of ``*.yaml``);
an entry in a user catalog replaces a built-in entry of the same name.

Only eosdyn's own recipes, views and claims and functions registered in Python
(:func:`register_recipe`, :func:`register_view`, :func:`register_claim`) may be named; see
:mod:`eosdyn.registry`.

Examples
--------
>>> import eosdyn
>>> "theorem31_sharpness" in eosdyn.catalog.list()
True
>>> ds = eosdyn.catalog.open("figure2_eos", variant="quick", cache=False, steps=20)
>>> ds.sizes["step"]
21
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import inspect
import json
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xarray as xr
import yaml

from . import registry as _registry
from ._files import atomic_write_text, clean_stale_temporaries, sha256_file
from ._version import __version__
from .conventions import _jsonable, append_history, check_dataset
from .io import open_dataset, to_netcdf
from .registry import UntrustedFunctionError, register_claim, register_recipe, register_view

__all__ = [
    "CatalogError",
    "Entry",
    "UntrustedFunctionError",
    "add",
    "builtin_catalog_dir",
    "cache_dir",
    "cache_key",
    "cache_path",
    "catalog_paths",
    "check_callables",
    "clear_cache",
    "describe",
    "entries",
    "get",
    "list",
    "load",
    "open",
    "parse_value",
    "register_claim",
    "register_recipe",
    "register_view",
    "remove",
    "resolve_function",
    "verified_digest",
]

_list = builtins.list
_open = builtins.open

#: keys an entry may have
ENTRY_KEYS = {"name", "description", "paper", "recipe", "stored", "variants", "plot", "claims", "tags"}
#: the reserved override name that selects a variant
VARIANT_KEY = "variant"

_user_paths: _list[Path] = []

#: limits on what a catalog file (or a ``--set`` value) may hold, so that reading one is cheap
MAX_CATALOG_BYTES = 1 << 20          # 1 MiB of YAML
MAX_YAML_NODES = 100_000             # scalars, sequences and mappings in one document
MAX_YAML_DEPTH = 32                  # nesting of sequences/mappings
MAX_PARAMETER_ITEMS = 100_000        # scalars in one recipe parameter (after parsing)


class CatalogError(ValueError):
    """A catalog, entry, override or stored file is invalid (a usage error: CLI exit code 2)."""


# --------------------------------------------------------------------------- locating
def builtin_catalog_dir() -> Path | None:
    """Folder holding the package's own catalogs (``eosdyn.yaml`` and ``data/``).

    A source checkout or editable install uses the top-level ``catalogs/`` folder
    next to the ``eosdyn`` package; a regular install (wheel) ships a copy as
    data files under ``<prefix>/share/eosdyn/catalogs``.

    Examples
    --------
    >>> builtin_catalog_dir() is None or (builtin_catalog_dir() / "eosdyn.yaml").exists()
    True
    """
    pkg = Path(__file__).resolve().parent
    candidates = [pkg.parent / "catalogs"]
    # wheel installs: data files land in <prefix>/share/eosdyn/catalogs; the package sits in
    # <prefix>/lib/pythonX.Y/site-packages/eosdyn (posix) or <prefix>/Lib/site-packages/eosdyn.
    for parent in _list(pkg.parents)[:5]:
        candidates.append(parent / "share" / "eosdyn" / "catalogs")
    candidates += [Path(sys.prefix) / "share" / "eosdyn" / "catalogs",
                   Path(sys.base_prefix) / "share" / "eosdyn" / "catalogs"]
    for cand in candidates:
        if (cand / "eosdyn.yaml").is_file():
            return cand
    return None


def _yaml_files(path: Path) -> _list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path]


def catalog_paths() -> _list[Path]:
    """Every catalog YAML file in lookup order: built-in, ``EOSDYN_CATALOG_PATH``, then :func:`add`.

    Later files win when two entries share a name.

    Examples
    --------
    >>> any(p.name == "eosdyn.yaml" for p in catalog_paths())
    True
    """
    paths: _list[Path] = []
    builtin = builtin_catalog_dir()
    if builtin is not None:
        paths += _yaml_files(builtin)
    env = os.environ.get("EOSDYN_CATALOG_PATH", "")
    for item in env.split(os.pathsep):
        if item.strip():
            p = Path(item.strip()).expanduser()
            if not p.exists():
                raise CatalogError(f"EOSDYN_CATALOG_PATH names {p}, which does not exist")
            paths += _yaml_files(p)
    for p in _user_paths:
        paths += _yaml_files(p)
    seen: set[Path] = set()
    out = []
    for p in paths:
        rp = p.resolve()
        if rp not in seen:
            seen.add(rp)
            out.append(p)
    return out


def add(path: str | os.PathLike) -> _list[str]:
    """Add a user catalog (a YAML file or a folder of them) for this session.

    The file is validated at once; its entries replace built-in ones of the same name.

    Parameters
    ----------
    path : path-like
        A ``*.yaml`` catalog file or a folder of them.

    Returns
    -------
    list of str
        The names of the entries it defines.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "mine.yaml"
    >>> _ = p.write_text('''
    ... entries:
    ...   - name: my_linear
    ...     description: linear model
    ...     paper: Eq. 16
    ...     recipe: {function: eosdyn.toy.linear, parameters: {lam: 1.5, theta0: 1.0, steps: 10}}
    ... ''')
    >>> add(p)
    ['my_linear']
    >>> remove(p)
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise CatalogError(f"catalog path {p} does not exist")
    names: _list[str] = []
    for f in _yaml_files(p):
        names += _list(load(f))
    if p.resolve() not in [q.resolve() for q in _user_paths]:
        _user_paths.append(p)
    return names


def remove(path: str | os.PathLike) -> None:
    """Forget a user catalog added with :func:`add`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.yaml"
    >>> _ = p.write_text("entries: []\\n")
    >>> add(p), remove(p)
    ([], None)
    """
    rp = Path(path).expanduser().resolve()
    _user_paths[:] = [q for q in _user_paths if q.resolve() != rp]


# --------------------------------------------------------------------------- safe YAML
class _SafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses anchors and aliases and bounds the document's size.

    Aliases let a few hundred bytes expand to gigabytes (a "billion laughs" document); a
    catalog never needs them, so ``&anchor`` and ``*alias`` are refused outright.
    """

    def __init__(self, stream):
        super().__init__(stream)
        self._nodes = 0
        self._depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not allowed in "
                                              "eosdyn catalogs or values", event.start_mark)
        if getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(None, None, "YAML anchors (&name) are not allowed in "
                                              "eosdyn catalogs or values", event.start_mark)
        self._nodes += 1
        if self._nodes > MAX_YAML_NODES:
            raise yaml.composer.ComposerError(None, None, f"more than {MAX_YAML_NODES} YAML nodes",
                                              event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"YAML nested more than {MAX_YAML_DEPTH} "
                                                  "levels deep", event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _safe_yaml(text: str):
    """Parse YAML text with :class:`_SafeLoader` (one document)."""
    loader = _SafeLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _count_items(value: Any, limit: int) -> int:
    """Number of scalars in a parsed value (stops counting past ``limit``)."""
    n, stack = 0, [value]
    while stack and n <= limit:
        v = stack.pop()
        if isinstance(v, Mapping):
            stack.extend(v.values())
        elif isinstance(v, (_list, tuple)):
            stack.extend(v)
        else:
            n += 1
    return n


def _check_parameters(source, name, key, params: Mapping) -> None:
    for pname, value in params.items():
        if _count_items(value, MAX_PARAMETER_ITEMS) > MAX_PARAMETER_ITEMS:
            raise _err(source, name, f"{key}.{pname}", f"holds more than {MAX_PARAMETER_ITEMS} values; "
                       "a catalog parameter must be small (generate large grids inside the recipe)")


# --------------------------------------------------------------------------- entries
@dataclass(frozen=True)
class Entry:
    """One validated catalog entry (see the module docstring for the YAML schema)."""

    name: str
    description: str
    paper: str
    source: Path
    function: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    stored_path: Path | None = None
    sha256: str | None = None
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    plot: str | None = None
    claims: tuple = ()
    tags: tuple = ()

    @property
    def kind(self) -> str:
        """``"recipe"`` or ``"stored"``."""
        return "stored" if self.stored_path is not None else "recipe"

    def parameters_for(self, variant: str | None = None) -> dict:
        """Recipe parameters of ``variant`` (``None``: the base parameters)."""
        params = dict(self.parameters)
        if variant is not None:
            if variant not in self.variants:
                valid = ", ".join(sorted(self.variants)) or "(none)"
                raise CatalogError(f"entry {self.name!r} has no variant {variant!r}; valid variants: {valid}")
            params.update(self.variants[variant])
        return params


def _err(source: Path, entry: str | int, key: str, msg: str) -> CatalogError:
    where = f"entry {entry!r}" if isinstance(entry, str) else f"entry #{entry}"
    return CatalogError(f"{source}: {where}, key {key!r}: {msg}")


def _check_dotted(source, name, key, value) -> str:
    if not isinstance(value, str) or not all(part.isidentifier() for part in value.split(".")) or "." not in value:
        raise _err(source, name, key, f"must be a dotted function path such as 'eosdyn.toy.two_param'; got {value!r}")
    return value


def _contained_path(source: Path, name: str, text: str) -> Path:
    """The stored file ``text`` relative to the catalog's folder; refuse paths that leave it."""
    if "\x00" in text:
        raise _err(source, name, "stored.path", "must not contain NUL characters")
    rel = Path(text)
    if rel.is_absolute() or rel.drive:
        raise _err(source, name, "stored.path", f"must be relative to the catalog's folder; got absolute path {text!r}")
    root = source.parent.resolve()
    target = (root / rel).resolve()
    if not target.is_relative_to(root):
        raise _err(source, name, "stored.path", f"{text!r} leaves the catalog's folder {str(root)!r}; stored files "
                   "must lie inside it")
    return source.parent / rel


def _parse_entry(source: Path, index: int, raw: Any) -> Entry:
    if not isinstance(raw, Mapping):
        raise CatalogError(f"{source}: entry #{index} must be a mapping with keys name, description, paper, "
                           f"and recipe or stored; got {type(raw).__name__}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.isidentifier() or not name.isascii():
        raise _err(source, index, "name", f"must be an ASCII identifier (letters, digits, _); got {name!r}")
    unknown = set(raw) - ENTRY_KEYS
    if unknown:
        raise _err(source, name, sorted(unknown)[0], f"unknown key; valid keys: {', '.join(sorted(ENTRY_KEYS))}")
    for key in ("description", "paper"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise _err(source, name, key, "is required and must be a non-empty string")
    has_recipe, has_stored = "recipe" in raw, "stored" in raw
    if has_recipe == has_stored:
        raise _err(source, name, "recipe", "an entry needs exactly one of 'recipe' or 'stored'")
    kwargs: dict[str, Any] = {}
    if has_recipe:
        rec = raw["recipe"]
        if not isinstance(rec, Mapping) or set(rec) - {"function", "parameters"} or "function" not in rec:
            raise _err(source, name, "recipe", "must be a mapping {function: dotted.path, parameters: {...}}")
        kwargs["function"] = _check_dotted(source, name, "recipe.function", rec["function"])
        params = rec.get("parameters") or {}
        if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
            raise _err(source, name, "recipe.parameters", "must be a mapping of keyword arguments")
        if VARIANT_KEY in params:
            raise _err(source, name, "recipe.parameters", f"{VARIANT_KEY!r} is reserved (it selects a variant)")
        _check_parameters(source, name, "recipe.parameters", params)
        kwargs["parameters"] = dict(params)
        variants = raw.get("variants") or {}
        if not isinstance(variants, Mapping):
            raise _err(source, name, "variants", "must be a mapping {variant_name: {parameter: value}}")
        for vname, vparams in variants.items():
            if not isinstance(vname, str) or not vname.isidentifier():
                raise _err(source, name, "variants", f"variant name {vname!r} must be an identifier")
            if not isinstance(vparams, Mapping):
                raise _err(source, name, f"variants.{vname}", "must be a mapping of parameter overrides")
            if VARIANT_KEY in vparams:
                raise _err(source, name, f"variants.{vname}", f"{VARIANT_KEY!r} is reserved")
            if not all(isinstance(k, str) for k in vparams):
                raise _err(source, name, f"variants.{vname}", "parameter names must be strings")
            _check_parameters(source, name, f"variants.{vname}", vparams)
        kwargs["variants"] = {k: dict(v) for k, v in variants.items()}
    else:
        st = raw["stored"]
        if not isinstance(st, Mapping) or set(st) != {"path", "sha256"}:
            raise _err(source, name, "stored", "must be a mapping {path: data/file.nc, sha256: <64 hex digits>}")
        if not isinstance(st["path"], str) or not st["path"]:
            raise _err(source, name, "stored.path", "must be a path relative to the catalog file")
        sha = st["sha256"]
        if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha.lower()):
            raise _err(source, name, "stored.sha256", f"must be 64 hexadecimal digits (quote it in YAML); got {sha!r}")
        if raw.get("variants"):
            raise _err(source, name, "variants", "stored entries have no variants")
        kwargs["stored_path"] = _contained_path(source, name, st["path"])
        kwargs["sha256"] = sha.lower()
    if raw.get("plot") is not None:
        kwargs["plot"] = _check_dotted(source, name, "plot", raw["plot"])
    claims = raw.get("claims") or []
    if not isinstance(claims, (_list, tuple)):
        raise _err(source, name, "claims", "must be a list of dotted function paths")
    kwargs["claims"] = tuple(_check_dotted(source, name, "claims", c) for c in claims)
    tags = raw.get("tags") or []
    if not isinstance(tags, (_list, tuple)) or not all(isinstance(t, str) for t in tags):
        raise _err(source, name, "tags", "must be a list of strings")
    kwargs["tags"] = tuple(tags)
    return Entry(name=name, description=raw["description"].strip(), paper=raw["paper"].strip(),
                 source=source, **kwargs)


def load(path: str | os.PathLike) -> dict[str, Entry]:
    """Read and validate one catalog YAML file; return its entries by name.

    Raises
    ------
    CatalogError
        Naming the file, the entry and the key that is wrong.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.yaml"
    >>> _ = p.write_text("entries:\\n  - {name: a, description: d, paper: p, recipe: {function: eosdyn.toy.linear}}\\n")
    >>> sorted(load(p))
    ['a']
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CATALOG_BYTES:
            raise CatalogError(f"catalog {path} is larger than {MAX_CATALOG_BYTES} bytes; a catalog lists "
                               "entries and small parameters only")
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise CatalogError(f"cannot read catalog {path}: {err}") from None
    except UnicodeDecodeError as err:
        raise CatalogError(f"catalog {path} is not UTF-8 text ({err})") from None
    try:
        doc = _safe_yaml(text)
    except yaml.YAMLError as err:
        raise CatalogError(f"{path} is not valid YAML: {err}") from None
    except RecursionError:
        raise CatalogError(f"{path}: YAML nested too deeply") from None
    if doc is None:
        return {}
    if not isinstance(doc, Mapping) or not all(isinstance(k, str) for k in doc) \
            or not isinstance(doc.get("entries", []), (_list, tuple)):
        raise CatalogError(f"{path}: top level must be a mapping with a list under 'entries'")
    unknown = set(doc) - {"entries", "version", "description"}
    if unknown:
        raise CatalogError(f"{path}: unknown top-level key {sorted(unknown)[0]!r}; valid: entries, version, description")
    out: dict[str, Entry] = {}
    for i, raw in enumerate(doc.get("entries") or []):
        entry = _parse_entry(path, i, raw)
        if entry.name in out:
            raise _err(path, entry.name, "name", "duplicate entry name in this file")
        out[entry.name] = entry
    return out


def entries() -> dict[str, Entry]:
    """All entries of all catalogs (later catalogs replace earlier entries of the same name).

    Examples
    --------
    >>> entries()["figure2_eos"].paper
    'Figure 2'
    """
    out: dict[str, Entry] = {}
    for p in catalog_paths():
        out.update(load(p))
    return out


def get(name: str) -> Entry:
    """The :class:`Entry` called ``name``; ``CatalogError`` listing the valid names otherwise.

    Examples
    --------
    >>> get("figure2_eos").function
    'eosdyn.toy.two_param'
    """
    all_entries = entries()
    if name not in all_entries:
        valid = ", ".join(sorted(all_entries)) or "(catalog is empty)"
        raise CatalogError(f"unknown catalog entry {name!r}; valid entries: {valid}")
    return all_entries[name]


def list() -> _list[str]:  # noqa: A001 - the public name asked for
    """Names of every catalog entry, sorted.

    Examples
    --------
    >>> isinstance(list(), builtins.list)
    True
    """
    return sorted(entries())


# --------------------------------------------------------------------------- recipes
def resolve_function(dotted: str, kind: str = "recipe", *, entry: Entry | None = None) -> Callable:
    """The recipe, view or claim a catalog names: eosdyn's own or one registered by the user.

    Only the names listed by :func:`eosdyn.registry.names` resolve (eosdyn's recipes, views
    and claims, and functions registered with :func:`register_recipe`, :func:`register_view`
    or :func:`register_claim`); nothing else is imported or called.

    Parameters
    ----------
    dotted : str
        The name as written in the catalog, e.g. ``"eosdyn.toy.two_param"``.
    kind : {"recipe", "view", "claim"}
        Which key of the entry it comes from.
    entry : Entry, optional
        The entry, named in the error message.

    Raises
    ------
    CatalogError
        Naming the catalog file, the entry and the function, for anything not registered.

    Examples
    --------
    >>> resolve_function("eosdyn.toy.linear").__name__
    'linear'
    >>> resolve_function("os.system")
    Traceback (most recent call last):
    ...
    eosdyn.catalog.CatalogError: recipe 'os.system' is not one of eosdyn's recipes nor registered with eosdyn.catalog.register_recipe; refusing to call it
    """
    where = f"{entry.source}: entry {entry.name!r}" if entry is not None else ""
    try:
        return _registry.resolve(kind, dotted, where=where)
    except UntrustedFunctionError as err:
        raise CatalogError(str(err)) from None


def _valid_keys(entry: Entry) -> _list[str]:
    keys = set(entry.parameters)
    for v in entry.variants.values():
        keys |= set(v)
    try:
        if not _registry.is_registered("recipe", entry.function):
            return sorted(keys)
        sig = inspect.signature(resolve_function(entry.function, entry=entry))
        keys |= {p.name for p in sig.parameters.values()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    except (CatalogError, TypeError, ValueError):
        pass
    return sorted(keys)


def _resolve(name: str, variant: str | None, overrides: Mapping[str, Any]) -> tuple[Entry, dict]:
    entry = get(name)
    if entry.kind == "stored":
        if variant is not None or overrides:
            raise CatalogError(f"entry {name!r} is a stored file: it takes no variant or overrides")
        return entry, {}
    if set(overrides) - set(entry.parameters):  # only then import the function to read its signature
        valid = _valid_keys(entry)
        bad = sorted(set(overrides) - set(valid))
        if bad:
            raise CatalogError(f"unknown override {bad[0]!r} for entry {name!r}; valid keys: {', '.join(valid)}")
    params = entry.parameters_for(variant)
    params.update(overrides)
    return entry, params


def parse_value(text: str) -> Any:
    """Parse a ``--set key=value`` value with YAML rules (``0.1``, ``[0.1, 0.2]``, ``true``, ``float32``).

    Anchors and aliases are refused, and so are values nested more than
    :data:`MAX_YAML_DEPTH` levels or holding more than :data:`MAX_PARAMETER_ITEMS` values.

    Examples
    --------
    >>> parse_value("[0.1, 0.2]")
    [0.1, 0.2]
    >>> parse_value("&a [*a]")
    Traceback (most recent call last):
    ...
    eosdyn.catalog.CatalogError: cannot parse value '&a [*a]': YAML anchors (&name) are not allowed in eosdyn catalogs or values...
    """
    if not isinstance(text, str):
        raise CatalogError(f"a value to parse must be a string; got {type(text).__name__}")
    short = text if len(text) <= 60 else text[:57] + "..."
    if len(text) > MAX_CATALOG_BYTES:
        raise CatalogError(f"value {short!r} is longer than {MAX_CATALOG_BYTES} characters")
    try:
        value = _safe_yaml(text)
    except yaml.YAMLError as err:
        raise CatalogError(f"cannot parse value {short!r}: {' '.join(str(err).split())}") from None
    except RecursionError:
        raise CatalogError(f"cannot parse value {short!r}: nested too deeply") from None
    if _count_items(value, MAX_PARAMETER_ITEMS) > MAX_PARAMETER_ITEMS:
        raise CatalogError(f"value {short!r} holds more than {MAX_PARAMETER_ITEMS} values")
    if isinstance(value, Mapping) and not all(isinstance(k, str) for k in value):
        raise CatalogError(f"value {short!r}: mapping keys must be strings")
    return value


# --------------------------------------------------------------------------- cache
def cache_dir() -> Path:
    """Cache folder: ``$EOSDYN_CACHE`` or ``platformdirs.user_cache_dir("eosdyn")``.

    Raises :class:`CatalogError` when ``$EOSDYN_CACHE`` names something that is not a folder.

    Examples
    --------
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp(); old = os.environ.get("EOSDYN_CACHE"); os.environ["EOSDYN_CACHE"] = d
    >>> str(cache_dir()) == d
    True
    >>> _ = os.environ.pop("EOSDYN_CACHE") if old is None else os.environ.update(EOSDYN_CACHE=old)
    """
    env = os.environ.get("EOSDYN_CACHE")
    if env:
        d = Path(env).expanduser()
        if d.exists() and not d.is_dir():
            raise CatalogError(f"EOSDYN_CACHE={env!r} is not a folder; point it at a folder (created if missing)")
        for parent in d.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise CatalogError(f"EOSDYN_CACHE={env!r} lies under {str(parent)!r}, which is a file")
                break
        return d
    import platformdirs

    return Path(platformdirs.user_cache_dir("eosdyn"))


def _major() -> str:
    return __version__.split(".")[0]


def cache_key(function: str, parameters: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the full recipe: function, canonical JSON of the parameters, eosdyn major version.

    Examples
    --------
    >>> cache_key("eosdyn.toy.linear", {"lam": 1.5, "steps": 3}) == \\
    ...     cache_key("eosdyn.toy.linear", {"steps": 3, "lam": 1.5})
    True
    """
    payload = {"function": function, "parameters": _jsonable(dict(parameters)), "eosdyn_major": _major()}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def cache_path(name: str, *, variant: str | None = None, **overrides: Any) -> Path:
    """Where :func:`open` caches ``name`` with these variant/overrides (the file may not exist yet).

    Examples
    --------
    >>> cache_path("figure2_eos", variant="quick").name.startswith("figure2_eos-")
    True
    """
    entry, params = _resolve(name, variant, overrides)
    if entry.kind == "stored":
        return entry.stored_path
    return cache_dir() / f"{entry.name}-{cache_key(entry.function, params)[:24]}.nc"


#: name of a cache file: ``<entry>-<24 hex digits of the recipe key>.nc``
_CACHE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*-[0-9a-f]{24}\.nc$")
#: second line of every checksum file the cache writes (marks the pair as the cache's own)
_CACHE_MARK = "# written by the eosdyn cache"
#: content of every lock file the cache creates
_LOCK_MARK = "eosdyn cache lock\n"


def _written_by_cache(path: Path) -> bool:
    """Whether ``path`` (a ``.nc`` file) is a dataset the cache wrote.

    The proof is its checksum file: named after it, in the cache's format, either carrying the
    cache's mark or (files from eosdyn < 0.2) holding the file's own sha256. A file anyone else
    put in the folder has no such companion and is never touched.
    """
    if not _CACHE_NAME.match(path.name) or not path.is_file():
        return False
    try:
        lines = _sidecar(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return False
    if not lines or lines[0].split()[1:] != [path.name]:
        return False
    if len(lines) > 1 and lines[1] == _CACHE_MARK:
        return True
    try:
        return sha256_file(path) == lines[0].split()[0]
    except OSError:
        return False


def clear_cache() -> _list[Path]:
    """Delete the datasets the cache wrote (with their checksum and lock files); return what was removed.

    Only files the cache wrote are removed: ``<entry>-<key>.nc`` files whose checksum file
    marks them as the cache's own, those checksum files, the cache's lock files and its
    leftover temporaries. Anything else in the folder (a user's ``my_experiment.nc``,
    another program's ``.lock``) is left alone, and so is an entry another process is computing
    right now (its lock is held).

    Returns
    -------
    list of pathlib.Path
        The removed files, sorted.

    Examples
    --------
    >>> import os, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "mine.nc").write_text("x")
    >>> os.environ["EOSDYN_CACHE"] = str(d)
    >>> clear_cache(), sorted(p.name for p in d.iterdir())
    ([], ['mine.nc'])
    >>> del os.environ["EOSDYN_CACHE"]
    """
    d = cache_dir()
    removed: _list[Path] = []
    if not d.is_dir():
        return removed
    names = {p.name for p in d.iterdir() if _CACHE_NAME.match(p.name)}
    names |= {p.name[:-5] for p in d.iterdir() if p.name.endswith(".nc.lock") and _CACHE_NAME.match(p.name[:-5])}
    for name in sorted(names):
        path = d / name
        lock = path.with_name(name + ".lock")
        lock_existed = lock.exists()
        try:
            with _locked(lock, blocking=False):
                if _written_by_cache(path):
                    path.unlink()
                    removed.append(path)
                    sidecar = _sidecar(path)
                    sidecar.unlink(missing_ok=True)
                    removed.append(sidecar)
                removed += clean_stale_temporaries(d, [name, _sidecar(path).name])
        except BlockingIOError:
            continue  # being computed by another process: leave it
        if _is_cache_lock(lock):
            lock.unlink(missing_ok=True)
            if lock_existed:
                removed.append(lock)
    return sorted(removed)


def _is_cache_lock(lock: Path) -> bool:
    try:
        return lock.is_file() and lock.stat().st_size <= len(_LOCK_MARK) and \
            lock.read_text(encoding="utf-8") in ("", _LOCK_MARK)
    except (OSError, UnicodeDecodeError):
        return False


def _sha256_file(path: Path) -> str:
    return sha256_file(path)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def verified_digest(path: str | os.PathLike) -> str | None:
    """The sha256 of a cache file if it matches its ``.sha256`` sidecar, else ``None``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> verified_digest(pathlib.Path(tempfile.mkdtemp()) / "missing.nc") is None
    True
    """
    path = Path(path)
    try:
        expected = _sidecar(path).read_text().split()[0]
        actual = _sha256_file(path)
    except (OSError, IndexError):
        return None
    return actual if actual == expected else None


def _cache_state(path: Path) -> str:
    """``"missing"``, ``"ok"`` or ``"corrupt"``."""
    if not path.exists():
        return "missing"
    return "ok" if verified_digest(path) is not None else "corrupt"


@contextlib.contextmanager
def _locked(lock_path: Path, *, blocking: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (created with the cache's mark if missing).

    With ``blocking=False`` raise :class:`BlockingIOError` at once if another process holds it.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fh = _open(lock_path, "a+", encoding="utf-8")
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: atomic renames still prevent partial reads
            yield
            return
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        if fh.tell() == 0:
            fh.write(_LOCK_MARK)
            fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        fh.close()


def _compute(entry: Entry, params: dict, variant: str | None) -> xr.Dataset:
    func = resolve_function(entry.function, "recipe", entry=entry)
    ds = func(**params)
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"recipe {entry.function} of entry {entry.name!r} returned {type(ds).__name__}, "
                        "not an xarray.Dataset")
    ds.attrs["catalog_entry"] = entry.name
    ds.attrs["catalog_variant"] = variant or "default"
    ds.attrs["paper_reference"] = entry.paper
    append_history(ds, f"catalog entry {entry.name!r} (variant {variant or 'default'}) via eosdyn.catalog.open")
    return check_dataset(ds)


def _open_stored(entry: Entry) -> xr.Dataset:
    path = entry.stored_path
    if not path.is_file():
        raise CatalogError(f"stored file of entry {entry.name!r} is missing: {path} "
                           f"(declared in {entry.source}); see catalogs/data/README.md")
    actual = _sha256_file(path)
    if actual != entry.sha256:
        raise CatalogError(f"stored file of entry {entry.name!r} fails its checksum: sha256 of {path} is "
                           f"{actual}, the catalog ({entry.source}) expects {entry.sha256}")
    try:
        return open_dataset(path)
    except ValueError as err:
        raise CatalogError(f"stored file of entry {entry.name!r} ({entry.source}) cannot be read: {err}") from None


def check_callables(entry: Entry) -> None:
    """Raise :class:`CatalogError` unless every function ``entry`` names is registered.

    Checks the recipe, the view (``plot``) and the claims, without calling any of them; used
    before long runs (``eosdyn reproduce``) so that a refused name stops the run at once.

    Examples
    --------
    >>> check_callables(get("figure2_eos")) is None
    True
    """
    named = ([("recipe", entry.function)] if entry.function else []) + \
        ([("view", entry.plot)] if entry.plot else []) + [("claim", c) for c in entry.claims]
    for kind, dotted in named:
        if not _registry.is_registered(kind, dotted):
            resolve_function(dotted, kind, entry=entry)  # raises the CatalogError


def open(name: str, *, variant: str | None = None, cache: bool = True, **overrides: Any) -> xr.Dataset:  # noqa: A001
    """Open a catalog entry as an :class:`xarray.Dataset`, computing and caching it on first use.

    Parameters
    ----------
    name : str
        Entry name (see :func:`list`).
    variant : str, optional
        A named variant of the entry (e.g. ``"quick"``), whose parameters override the base ones.
    cache : bool, default True
        ``False`` computes afresh and neither reads nor writes the cache.
    **overrides
        Recipe parameters to change; they form a different cache key.

    Returns
    -------
    xarray.Dataset
        Loaded into memory; it passes :func:`eosdyn.check_dataset`.

    Raises
    ------
    CatalogError
        (a ``ValueError``) for an unknown entry, variant or override key (the message lists
        the valid ones), a missing stored file or a stored file whose sha256 does not match.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.catalog.open("figure2_eos", variant="quick", cache=False, steps=10)
    >>> ds.attrs["catalog_entry"], ds.sizes["step"]
    ('figure2_eos', 11)
    """
    entry, params = _resolve(name, variant, overrides)
    if entry.kind == "stored":
        return _open_stored(entry)
    if not cache:
        return _compute(entry, params, variant)
    path = cache_dir() / f"{entry.name}-{cache_key(entry.function, params)[:24]}.nc"
    if _cache_state(path) == "ok":
        try:
            return open_dataset(path)
        except ValueError:
            pass  # replaced or damaged between check and read: fall through to the locked path
    with _locked(path.with_name(path.name + ".lock")):
        clean_stale_temporaries(path.parent, [path.name, _sidecar(path).name])  # left by a killed writer
        state = _cache_state(path)
        if state == "ok":
            return open_dataset(path)
        if state == "corrupt":
            warnings.warn(f"cache file {path} is truncated or altered (sha256 does not match its "
                          f"checksum file); recomputing entry {name!r}", RuntimeWarning, stacklevel=2)
        ds = _compute(entry, params, variant)
        to_netcdf(ds, path)
        atomic_write_text(_sidecar(path), f"{sha256_file(path)}  {path.name}\n{_CACHE_MARK}\n")
    return open_dataset(path)


def describe(name: str) -> dict:
    """A description of entry ``name`` as a plain dict (what ``eosdyn show NAME`` prints).

    Keys: ``name``, ``description``, ``paper``, ``kind``, ``catalog`` and, for recipes,
    ``function``, ``parameters``, ``variants``, ``valid_overrides``, ``cached``; for
    stored entries ``path`` and ``sha256``; ``plot`` and ``claims`` when set.

    Examples
    --------
    >>> describe("theorem31_sharpness")["paper"]
    'Theorem 3.1'
    """
    entry = get(name)
    out: dict[str, Any] = {"name": entry.name, "description": entry.description, "paper": entry.paper,
                           "kind": entry.kind, "catalog": str(entry.source)}
    if entry.kind == "recipe":
        out["function"] = entry.function
        out["parameters"] = dict(entry.parameters)
        out["variants"] = {k: dict(v) for k, v in entry.variants.items()}
        out["valid_overrides"] = _valid_keys(entry)
        out["cached"] = {v or "default": _cache_state(cache_path(name, variant=v)) == "ok"
                         for v in [None, *entry.variants]}
    else:
        out["path"] = str(entry.stored_path)
        out["sha256"] = entry.sha256
        out["available"] = entry.stored_path.is_file()
    if entry.plot:
        out["plot"] = entry.plot
    if entry.claims:
        out["claims"] = _list(entry.claims)
    if entry.tags:
        out["tags"] = _list(entry.tags)
    return out
