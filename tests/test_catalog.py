"""Catalog: YAML validation, cache keys, atomic/locked cache, corruption detection, stored files.

The recipes used here are small functions defined in this module (the linear map of
Eq. 16, whose closed form theta_t = (1 - lam)^t theta_0 is the independent truth), so
these tests do not depend on the models being written in parallel.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import sys
import textwrap
import time
import warnings
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

import eosdyn
from eosdyn import catalog
from eosdyn.conventions import label

HERE = Path(__file__).resolve().parent


def linear_recipe(*, lam, theta0, steps, sleep=0.0, counter=None):
    """Test recipe: theta_{t+1} = (1 - lam) theta_t, with an optional delay and call counter."""
    if counter is not None:
        with open(counter, "a") as fh:
            fh.write(f"{os.getpid()}\n")
    if not np.all((0 <= np.asarray(lam)) & (np.asarray(lam) < 2)):
        raise ValueError(f"lam must be in [0, 2); got {lam}")
    if sleep:
        time.sleep(sleep)
    lam_arr = np.atleast_1d(np.asarray(lam, float))
    theta = np.empty((lam_arr.size, steps + 1))
    theta[:, 0] = theta0
    for t in range(steps):
        theta[:, t + 1] = theta[:, t] - lam_arr * theta[:, t]
    ds = xr.Dataset({"theta": (("lam", "step"), theta)},
                    coords={"lam": lam_arr, "step": np.arange(steps + 1, dtype=np.int64)})
    return label(ds, model="linear_test", title="linear test map", equations="Eq. 16",
                 config={"function": f"{__name__}.linear_recipe",
                         "parameters": {"lam": lam, "theta0": theta0, "steps": steps}})


def not_a_dataset(**kw):
    return 42


CATALOG = """\
entries:
  - name: lin
    description: Linear map (Eq. 16) for catalog tests.
    paper: Eq. 16
    recipe:
      function: {mod}.linear_recipe
      parameters: {{lam: [0.5, 1.5], theta0: 1.0, steps: 8, counter: {counter}}}
    variants:
      quick: {{steps: 3}}
  - name: slow_lin
    description: Linear map with a delay, for the concurrency test.
    paper: Eq. 16
    recipe:
      function: {mod}.linear_recipe
      parameters: {{lam: 0.25, theta0: 2.0, steps: 50, sleep: 1.5, counter: {counter}}}
"""


@pytest.fixture
def user_catalog(tmp_path, monkeypatch):
    monkeypatch.setenv("EOSDYN_CACHE", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(HERE))
    counter = tmp_path / "calls.txt"
    path = tmp_path / "user.yaml"
    path.write_text(CATALOG.format(mod=__name__, counter=counter))
    catalog.add(path)
    yield path, counter
    catalog.remove(path)


def ncalls(counter: Path) -> int:
    return len(counter.read_text().split()) if counter.exists() else 0


def test_open_matches_closed_form_and_caches(user_catalog):
    _, counter = user_catalog
    assert "lin" in catalog.list()
    ds = catalog.open("lin")
    eosdyn.check_dataset(ds)
    t = ds["step"].values
    for lam in (0.5, 1.5):
        np.testing.assert_allclose(ds["theta"].sel(lam=lam).values, (1 - lam) ** t, rtol=1e-14)
    assert ds.attrs["catalog_entry"] == "lin"
    assert ncalls(counter) == 1
    again = catalog.open("lin")
    assert ncalls(counter) == 1  # served from the cache
    xr.testing.assert_identical(ds, again)
    path = catalog.cache_path("lin")
    assert path.exists() and path.parent == Path(os.environ["EOSDYN_CACHE"])
    sidecar = path.with_name(path.name + ".sha256")
    assert sidecar.read_text().split()[0] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_variants_and_overrides_form_new_keys(user_catalog):
    _, counter = user_catalog
    base = catalog.cache_path("lin")
    quick = catalog.cache_path("lin", variant="quick")
    over = catalog.cache_path("lin", steps=3)
    assert base != quick
    assert quick == over  # the same full recipe is the same cache key
    ds = catalog.open("lin", variant="quick")
    assert ds.sizes["step"] == 4
    ds2 = catalog.open("lin", steps=3)
    assert ncalls(counter) == 1
    xr.testing.assert_equal(ds["theta"], ds2["theta"])
    ds3 = catalog.open("lin", variant="quick", theta0=3.0)
    np.testing.assert_allclose(ds3["theta"].sel(lam=0.5).values, 3.0 * 0.5 ** np.arange(4))
    assert ncalls(counter) == 2


def test_cache_key_canonical():
    k1 = catalog.cache_key("f.g", {"a": 1.0, "b": [1, 2]})
    assert k1 == catalog.cache_key("f.g", {"b": [1, 2], "a": 1.0})
    assert k1 != catalog.cache_key("f.g", {"a": 1.5, "b": [1, 2]})
    assert k1 != catalog.cache_key("f.h", {"a": 1.0, "b": [1, 2]})
    assert k1 != catalog.cache_key("f.g", {"a": np.float64(1.0), "b": [1, 3]})
    assert k1 == catalog.cache_key("f.g", {"a": np.float64(1.0), "b": np.array([1, 2])})


def test_cache_key_contains_major_version(monkeypatch):
    k1 = catalog.cache_key("f.g", {"a": 1})
    monkeypatch.setattr(catalog, "__version__", "7.0.0")
    assert catalog.cache_key("f.g", {"a": 1}) != k1


@pytest.mark.parametrize("damage", ["truncate", "alter", "no_sidecar"])
def test_corrupt_cache_is_detected_and_recomputed(user_catalog, damage):
    _, counter = user_catalog
    good = catalog.open("lin")
    path = catalog.cache_path("lin")
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "alter":
        pos = len(raw) // 2
        path.write_bytes(raw[:pos] + bytes([raw[pos] ^ 0xFF]) + raw[pos + 1:])
    else:
        path.with_name(path.name + ".sha256").unlink()
    with pytest.warns(RuntimeWarning, match="truncated or altered"):
        again = catalog.open("lin")
    assert ncalls(counter) == 2
    xr.testing.assert_identical(good.drop_attrs(), again.drop_attrs())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        catalog.open("lin")  # healthy again: no warning, no recomputation
    assert ncalls(counter) == 2


def test_no_cache_bypasses(user_catalog):
    _, counter = user_catalog
    ds = catalog.open("lin", cache=False)
    assert not catalog.cache_path("lin").exists()
    eosdyn.check_dataset(ds)
    assert ncalls(counter) == 1


def _open_in_child(args):
    cache, catalog_path, name = args
    os.environ["EOSDYN_CACHE"] = cache
    catalog.add(catalog_path)
    ds = catalog.open(name)
    return ds["theta"].values.tobytes(), ds.attrs["eosdyn_config"], ds.sizes["step"]


def test_two_processes_same_uncached_entry(user_catalog):
    path, counter = user_catalog
    ctx = mp.get_context("fork" if sys.platform != "win32" else "spawn")
    with ctx.Pool(2) as pool:
        results = pool.map(_open_in_child, [(os.environ["EOSDYN_CACHE"], str(path), "slow_lin")] * 2)
    assert results[0] == results[1]
    assert results[0][2] == 51
    theta = np.frombuffer(results[0][0])
    np.testing.assert_allclose(theta, 2.0 * 0.75 ** np.arange(51), rtol=1e-14)
    assert ncalls(counter) == 1  # the lock made the second process wait and reuse the file
    cache = Path(os.environ["EOSDYN_CACHE"])
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]


def test_unknown_entry_lists_valid(user_catalog):
    with pytest.raises(ValueError, match=r"unknown catalog entry 'nope'; valid entries: .*lin"):
        catalog.open("nope")
    with pytest.raises(ValueError, match="unknown catalog entry"):
        catalog.describe("nope")


def test_unknown_override_lists_valid(user_catalog):
    with pytest.raises(ValueError, match=r"unknown override 'stepz' for entry 'lin'; valid keys: .*steps"):
        catalog.open("lin", stepz=3)
    with pytest.raises(ValueError, match=r"has no variant 'full'; valid variants: quick"):
        catalog.open("lin", variant="full")
    assert not Path(os.environ["EOSDYN_CACHE"]).exists() or not any(
        p.suffix == ".nc" for p in Path(os.environ["EOSDYN_CACHE"]).iterdir())


def test_bad_override_value_propagates_nothing_written(user_catalog):
    with pytest.raises(ValueError, match="lam must be in"):
        catalog.open("lin", lam=5.0)
    cache = Path(os.environ["EOSDYN_CACHE"])
    assert not any(p.suffix == ".nc" or p.name.endswith(".tmp") for p in cache.iterdir())


def test_describe(user_catalog):
    d = catalog.describe("lin")
    assert d["paper"] == "Eq. 16" and d["kind"] == "recipe"
    assert d["variants"] == {"quick": {"steps": 3}}
    assert {"lam", "theta0", "steps", "sleep", "counter"} <= set(d["valid_overrides"])
    assert d["cached"] == {"default": False, "quick": False}
    catalog.open("lin", variant="quick")
    assert catalog.describe("lin")["cached"]["quick"] is True


def test_env_catalog_path(tmp_path, monkeypatch):
    monkeypatch.setenv("EOSDYN_CACHE", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(HERE))
    d1, d2 = tmp_path / "a", tmp_path / "b"
    d1.mkdir()
    d2.mkdir()
    (d1 / "one.yaml").write_text(CATALOG.format(mod=__name__, counter=tmp_path / "c.txt"))
    (d2 / "two.yml").write_text(textwrap.dedent(f"""\
        entries:
          - name: lin_env
            description: second catalog
            paper: Eq. 16
            recipe: {{function: {__name__}.linear_recipe, parameters: {{lam: 0.5, theta0: 1.0, steps: 2}}}}
        """))
    monkeypatch.setenv("EOSDYN_CATALOG_PATH", os.pathsep.join([str(d1), str(d2 / "two.yml")]))
    names = catalog.list()
    assert {"lin", "slow_lin", "lin_env"} <= set(names)
    np.testing.assert_allclose(catalog.open("lin_env")["theta"].values.ravel(), [1.0, 0.5, 0.25])
    monkeypatch.setenv("EOSDYN_CATALOG_PATH", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="EOSDYN_CATALOG_PATH"):
        catalog.list()


def test_recipe_returning_non_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("EOSDYN_CACHE", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(HERE))
    p = tmp_path / "bad.yaml"
    p.write_text(f"entries:\n  - {{name: bad, description: d, paper: p, recipe: {{function: {__name__}.not_a_dataset}}}}\n")
    catalog.add(p)
    try:
        with pytest.raises(TypeError, match="not an xarray.Dataset"):
            catalog.open("bad")
    finally:
        catalog.remove(p)


# ------------------------------------------------------------------ YAML validation
BAD_YAML = [
    ("entries: [1]", "entry #0 must be a mapping"),
    ("entries:\n  - {name: 'a b', description: d, paper: p, recipe: {function: m.f}}", "key 'name'"),
    ("entries:\n  - {name: x, paper: p, recipe: {function: m.f}}", "entry 'x', key 'description'"),
    ("entries:\n  - {name: x, description: d, recipe: {function: m.f}}", "entry 'x', key 'paper'"),
    ("entries:\n  - {name: x, description: d, paper: p}", "exactly one of 'recipe' or 'stored'"),
    ("entries:\n  - {name: x, description: d, paper: p, recipe: {function: m.f}, "
     "stored: {path: a.nc, sha256: " + "0" * 64 + "}}", "exactly one of"),
    ("entries:\n  - {name: x, description: d, paper: p, recipe: {function: nodots}}", "key 'recipe.function'"),
    ("entries:\n  - {name: x, description: d, paper: p, recipe: {function: m.f, parameters: [1]}}",
     "key 'recipe.parameters'"),
    ("entries:\n  - {name: x, description: d, paper: p, recipe: {function: m.f, parameters: {variant: 1}}}",
     "reserved"),
    ("entries:\n  - {name: x, description: d, paper: p, recipe: {function: m.f}, variants: {quick: 3}}",
     "key 'variants.quick'"),
    ("entries:\n  - {name: x, description: d, paper: p, recipe: {function: m.f}, colour: red}",
     "key 'colour': unknown key"),
    ("entries:\n  - {name: x, description: d, paper: p, stored: {path: a.nc, sha256: abc}}", "key 'stored.sha256'"),
    ("entries:\n  - {name: x, description: d, paper: p, recipe: {function: m.f}, claims: m.f}", "key 'claims'"),
    ("entries:\n  - {name: x, description: d, paper: p, recipe: {function: m.f}}\n"
     "  - {name: x, description: d, paper: p, recipe: {function: m.f}}", "duplicate entry name"),
    ("entries: [\n", "not valid YAML"),
    ("foo: 1", "unknown top-level key 'foo'"),
]


@pytest.mark.parametrize("text,match", BAD_YAML)
def test_yaml_validation_errors(tmp_path, text, match):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(catalog.CatalogError, match=match):
        catalog.load(p)
    with pytest.raises(ValueError):
        catalog.add(p)
    assert str(p) not in map(str, catalog._user_paths)


# ------------------------------------------------------------------ stored entries
def _make_stored(tmp_path, monkeypatch, sha=None):
    monkeypatch.setenv("EOSDYN_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    data.mkdir()
    ds = linear_recipe(lam=[0.5], theta0=1.0, steps=4)
    eosdyn.to_netcdf(ds, data / "lin.nc")
    digest = sha or hashlib.sha256((data / "lin.nc").read_bytes()).hexdigest()
    p = tmp_path / "stored.yaml"
    p.write_text(f"entries:\n  - name: stored_lin\n    description: stored\n    paper: Eq. 16\n"
                 f"    stored: {{path: data/lin.nc, sha256: {digest}}}\n")
    catalog.add(p)
    return p, ds, data / "lin.nc"


def test_stored_entry_roundtrip(tmp_path, monkeypatch):
    p, ds, _ = _make_stored(tmp_path, monkeypatch)
    try:
        out = catalog.open("stored_lin")
        xr.testing.assert_identical(out, ds)
        assert catalog.describe("stored_lin")["available"] is True
        with pytest.raises(ValueError, match="takes no variant or overrides"):
            catalog.open("stored_lin", steps=3)
    finally:
        catalog.remove(p)


def test_stored_sha_mismatch_and_missing(tmp_path, monkeypatch):
    p, _, f = _make_stored(tmp_path, monkeypatch, sha="ab" * 32)
    try:
        with pytest.raises(catalog.CatalogError, match="fails its checksum.*expects abab"):
            catalog.open("stored_lin")
        f.unlink()
        with pytest.raises(catalog.CatalogError, match="stored file of entry 'stored_lin' is missing"):
            catalog.open("stored_lin")
    finally:
        catalog.remove(p)


# ------------------------------------------------------------------ built-in catalog
def test_builtin_catalog_found_and_valid():
    d = catalog.builtin_catalog_dir()
    assert d is not None and (d / "eosdyn.yaml").is_file()
    ents = catalog.entries()
    for name, e in ents.items():
        assert e.description and e.paper
        if e.kind == "recipe":
            assert callable(catalog.resolve_function(e.function)), name
            for v in e.variants:
                assert set(e.variants[v]) <= set(catalog._valid_keys(e)), (name, v)
        else:  # stored: the file is there, matches its sha256 and follows the conventions
            eosdyn.check_dataset(catalog.open(name))
        if e.plot:
            assert callable(catalog.resolve_function(e.plot, "view")), name
        for c in e.claims:
            assert callable(catalog.resolve_function(c, "claim")), name


def test_exported_netcdf_opens_with_plain_tools(user_catalog, tmp_path):
    ds = catalog.open("lin")
    out = tmp_path / "lin.nc"
    eosdyn.to_netcdf(ds, out)
    plain = xr.open_dataset(out)
    np.testing.assert_array_equal(plain["theta"].values, ds["theta"].values)
    plain.close()
    with netCDF4.Dataset(out) as nc:
        assert nc.Conventions == "CF-1.10"
        assert nc.variables["theta"].long_name
    xr.testing.assert_identical(eosdyn.open_dataset(out), ds)


def claim_linear(ds):
    """Test claim: the last recorded theta against the closed form (1 - lam)^t theta_0 (Eq. 16)."""
    t = int(ds["step"][-1])
    rows = []
    for lam in ds["lam"].values:
        measured = float(ds["theta"].sel(lam=lam)[-1])
        theory = (1 - lam) ** t * float(ds["theta"].sel(lam=lam)[0])
        rows.append({"claim": f"theta_t, lam={lam:g}", "paper": "(1 - lam)^t theta_0", "theory": theory,
                     "measured": measured, "verdict": "agrees" if np.isclose(measured, theory) else "disagrees"})
    return rows


def test_docstring_examples():
    """The runnable examples in the docstrings of the catalog, reproduce and cli modules."""
    import doctest

    import eosdyn.cli
    import eosdyn.reproduce

    for mod in (catalog, eosdyn.reproduce, eosdyn.cli):
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        assert res.failed == 0, mod.__name__


# Files may name only registered functions: register this module's test recipe, claim and
# broken recipe under the dotted names the test catalogs use.
for _f in (linear_recipe, not_a_dataset):
    catalog.register_recipe(_f, name=f"{__name__}.{_f.__name__}")
catalog.register_claim(claim_linear, name=f"{__name__}.claim_linear")

