"""What a catalog or a received NetCDF file may do: name registered functions, nothing else.

Each test is a named reproducer of the safety issue (code execution, memory exhaustion, paths
outside the catalog, deletion of files eosdyn did not write, tracebacks instead of messages).
The witness of code execution is a file that the forbidden call would create.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import eosdyn
from eosdyn import catalog, registry
from eosdyn.cli import main

HERE = Path(__file__).resolve().parent


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    monkeypatch.setenv("EOSDYN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EOSDYN_CATALOG_PATH", raising=False)
    yield tmp_path
    for p in list(catalog._user_paths):
        catalog.remove(p)


class Raw(str):
    """A parameter value written into the YAML as it is (not quoted)."""


def _entry(name, recipe_function, params, extra=""):
    params_yaml = "{" + ", ".join(f"{k}: {v!r}" if isinstance(v, str) and not isinstance(v, Raw)
                                  else f"{k}: {v}" for k, v in params.items()) + "}"
    return textwrap.dedent(f"""\
        entries:
          - name: {name}
            description: an innocent-looking entry
            paper: Eq. 16
            recipe:
              function: {recipe_function}
              parameters: {params_yaml}
        """) + extra


LINEAR = {"lam": 0.5, "theta0": 1.0, "steps": 3}


# --------------------------------------------------------------------------- 1. catalogs
@pytest.mark.parametrize("function", ["os.system", "subprocess.getoutput", "builtins.exec",
                                      "eosdyn.catalog.clear_cache", "eosdyn.io.to_netcdf",
                                      "posix.system", "eosdyn.os.system"])
def test_catalog_recipe_cannot_name_arbitrary_callable(clean_env, function, capsys):
    witness = clean_env / "pwned"
    params = {"command": f"touch {witness}"} if function != "builtins.exec" else \
        {"source": f"open({str(witness)!r}, 'w')"}
    evil = clean_env / "evil.yaml"
    evil.write_text(_entry("innocent", function, params))
    code = main(["--quiet", "--catalog", str(evil), "run", "innocent", "--no-cache"])
    err = capsys.readouterr().err
    assert code == 2
    assert not witness.exists()
    assert "innocent" in err and function in err and "Traceback" not in err
    # the Python API refuses too, before calling anything
    catalog.add(evil)
    with pytest.raises(catalog.CatalogError, match=f"entry 'innocent'.*{function}"):
        catalog.open("innocent", cache=False)
    with pytest.raises(catalog.CatalogError, match="innocent"):
        catalog.open("innocent")
    assert not witness.exists()


def test_catalog_path_env_and_reproduce_refuse_before_any_work(clean_env, monkeypatch, capsys):
    witness = clean_env / "pwned"
    evil = clean_env / "evil.yaml"
    evil.write_text(_entry("innocent", "os.system", {"command": f"touch {witness}"}))
    monkeypatch.setenv("EOSDYN_CATALOG_PATH", str(evil))
    out = clean_env / "out"
    code = main(["--quiet", "reproduce", "--quick", "--only", "innocent", "-o", str(out)])
    assert code == 2 and not witness.exists()
    assert "os.system" in capsys.readouterr().err
    assert not out.exists()  # refused before the output folder was made
    with pytest.raises(catalog.CatalogError, match="os.system"):
        eosdyn.reproduce.reproduce(out, quick=True, names=["innocent"], plots=False)
    assert not witness.exists()


@pytest.mark.parametrize("key", ["plot", "claims"])
def test_catalog_plot_and_claims_cannot_name_arbitrary_callables(clean_env, key, capsys):
    witness = clean_env / "pwned"
    value = "os.remove" if key == "plot" else "[os.remove]"
    evil = clean_env / "evil.yaml"
    evil.write_text(_entry("innocent", "eosdyn.toy.linear", LINEAR, extra=f"    {key}: {value}\n"))
    witness.write_text("the user's file")
    code = main(["--quiet", "--catalog", str(evil), "reproduce", "--only", "innocent", "-o",
                 str(clean_env / "out")])
    assert code == 2
    assert witness.exists()
    assert "os.remove" in capsys.readouterr().err


def test_cli_subprocess_refuses_os_system(clean_env):
    """End to end through the installed entry point, in a fresh interpreter."""
    witness = clean_env / "pwned"
    evil = clean_env / "evil.yaml"
    evil.write_text(_entry("innocent", "os.system", {"command": f"touch {witness}"}))
    r = subprocess.run([sys.executable, "-m", "eosdyn.cli", "--catalog", str(evil), "run", "innocent",
                        "--no-cache"], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, EOSDYN_CACHE=str(clean_env / "cache")))
    assert r.returncode == 2, r.stderr
    assert not witness.exists()
    assert "os.system" in r.stderr and "Traceback" not in r.stderr


def test_registered_user_recipe_view_and_claim_work(clean_env):
    def my_recipe(*, steps):
        return eosdyn.toy.linear(lam=0.5, theta0=1.0, steps=steps)

    def my_claim(ds):
        return [{"claim": "c", "paper": "p", "theory": 1, "measured": 1, "verdict": "agrees"}]

    name = registry.register_recipe(my_recipe, name="mylab.my_recipe")
    registry.register_claim(my_claim, name="mylab.my_claim")
    try:
        cat = clean_env / "mine.yaml"
        cat.write_text(_entry("mine", name, {"steps": 4}, extra="    claims: [mylab.my_claim]\n"))
        catalog.add(cat)
        ds = catalog.open("mine")
        assert ds.sizes["step"] == 5
        res = eosdyn.reproduce.reproduce(clean_env / "out", names=["mine"], plots=False)
        assert not res["failures"] and res["claims"][0]["verdict"] == "agrees"
    finally:
        registry.unregister("recipe", name)
        registry.unregister("claim", "mylab.my_claim")
    with pytest.raises(catalog.CatalogError, match="mylab.my_recipe"):
        catalog.open("mine", cache=False)


def test_registry_names_resolve_and_cannot_be_shadowed():
    for kind in registry.KINDS:
        for name in registry.names(kind):
            assert callable(registry.resolve(kind, name)), name
    with pytest.raises(ValueError, match="eosdyn's own"):
        registry.register_recipe(print, name="eosdyn.toy.linear")
    with pytest.raises(ValueError, match="kind"):
        registry.resolve("module", "os.system")
    # every function the built-in catalog names is registered
    for e in catalog.entries().values():
        catalog.check_callables(e)


# --------------------------------------------------------------------------- 2. NetCDF files
def test_received_netcdf_cannot_make_regenerate_call_os_system(tmp_path):
    witness = tmp_path / "pwned"
    ds = eosdyn.toy.linear(lam=0.5, theta0=1.0, steps=3)
    ds.attrs["eosdyn_config"] = ('{"function": "os.system", "parameters": {"command": "touch %s"}}'
                                 % witness)
    path = tmp_path / "received.nc"
    eosdyn.to_netcdf(ds, path)
    got = eosdyn.open_dataset(path)
    eosdyn.check_dataset(got)  # a well-formed file: reading it is fine
    with pytest.raises(registry.UntrustedFunctionError, match="os.system"):
        eosdyn.conventions.regenerate(got)
    assert not witness.exists()
    for bad in ('{"function": ["os", "system"], "parameters": {}}', '{"function": "eosdyn.toy.linear", '
                '"parameters": [1]}', '[1, 2]'):
        got.attrs["eosdyn_config"] = bad
        with pytest.raises(ValueError):
            eosdyn.conventions.regenerate(got)


def test_regenerate_still_rebuilds_eosdyn_datasets():
    ds = eosdyn.toy.linear(lam=[0.5, 1.5], theta0=1.0, steps=4)
    again = eosdyn.conventions.regenerate(ds)
    assert again.theta.identical(ds.theta)


# --------------------------------------------------------------------------- 3. YAML bombs
BOMB = textwrap.dedent("""\
    entries:
      - name: bomb
        description: d
        paper: p
        recipe:
          function: eosdyn.toy.linear
          parameters:
            lam: &a [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
            b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
            c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
            d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
            e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
            f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
            g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
            h: [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
    """)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("command", [["show", "bomb"], ["run", "bomb", "--no-cache"], ["list"]])
def test_yaml_alias_bomb_refused_at_once(clean_env, command, capsys):
    p = clean_env / "bomb.yaml"
    p.write_text(BOMB)
    t0 = time.perf_counter()
    code = main(["--quiet", "--catalog", str(p), *command])
    assert code == 2 and time.perf_counter() - t0 < 5
    assert "alias" in capsys.readouterr().err.lower() or "anchor" in capsys.readouterr().err.lower()


def test_catalog_size_and_nesting_caps(clean_env):
    big = clean_env / "big.yaml"
    big.write_text(_entry("big", "eosdyn.toy.linear", {"lam": Raw("[" + ", ".join(["0.5"] * 250_001) + "]")}))
    with pytest.raises(catalog.CatalogError, match="larger than|more than"):
        catalog.load(big)
    deep = clean_env / "deep.yaml"
    deep.write_text(_entry("deep", "eosdyn.toy.linear", {"lam": Raw("[" * 100 + "]" * 100)}))
    with pytest.raises(catalog.CatalogError, match="nested"):
        catalog.load(deep)
    many = clean_env / "many.yaml"
    many.write_text(_entry("many", "eosdyn.toy.linear", {"lam": Raw("[" + ",".join(["1"] * 100_001) + "]")}))
    with pytest.raises(catalog.CatalogError, match="more than"):
        catalog.load(many)


# --------------------------------------------------------------------------- 4. stored paths
@pytest.mark.parametrize("path", ["../../../etc/hostname", "/etc/hostname", "data/../../outside.nc",
                                  "link/outside.nc"])
def test_stored_path_must_stay_inside_catalog_folder(tmp_path, path):
    folder = tmp_path / "cat"
    folder.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "outside.nc").write_bytes(b"secret")
    (folder / "link").symlink_to(outside)
    sha = hashlib.sha256(b"secret").hexdigest()
    p = folder / "c.yaml"
    p.write_text(f"entries:\n  - {{name: s, description: d, paper: p, stored: {{path: '{path}', sha256: '{sha}'}}}}\n")
    with pytest.raises(catalog.CatalogError, match="stored.path"):
        catalog.load(p)


def test_stored_path_inside_folder_is_fine(tmp_path):
    folder = tmp_path / "cat"
    (folder / "data").mkdir(parents=True)
    ds = eosdyn.toy.linear(lam=0.5, theta0=1.0, steps=2)
    eosdyn.to_netcdf(ds, folder / "data" / "x.nc")
    sha = hashlib.sha256((folder / "data" / "x.nc").read_bytes()).hexdigest()
    p = folder / "c.yaml"
    p.write_text(f"entries:\n  - {{name: s, description: d, paper: p, stored: {{path: data/x.nc, sha256: '{sha}'}}}}\n")
    assert catalog.load(p)["s"].stored_path == folder / "data" / "x.nc"


# --------------------------------------------------------------------------- 5. cache clear
def test_cache_clear_removes_only_what_the_cache_wrote(clean_env, capsys):
    d = clean_env / "cache"
    d.mkdir()
    mine = {"my_experiment.nc": b"precious", "notes.lock": b"x", "x.sha256": b"y", "draft.tmp": b"z",
            "results-0123456789abcdef01234567.nc": b"looks like a cache name",
            "results-0123456789abcdef01234567.nc.sha256": b"not a checksum\n"}
    for name, data in mine.items():
        (d / name).write_bytes(data)
    cat = clean_env / "c.yaml"
    cat.write_text(_entry("lin", "eosdyn.toy.linear", LINEAR))
    catalog.add(cat)
    path = catalog.cache_path("lin")
    catalog.open("lin")
    assert path.exists()
    stale = d / f".{path.name}.abc123.tmp"  # left by a killed writer
    stale.write_bytes(b"partial")
    code = main(["cache", "clear"])
    err = capsys.readouterr().err
    assert code == 0
    for name, data in mine.items():
        assert (d / name).read_bytes() == data, name
    assert not path.exists() and not Path(str(path) + ".sha256").exists() and not stale.exists()
    assert str(path) in err and "my_experiment" not in err
    assert catalog.clear_cache() == []


def test_cache_clear_legacy_sidecar_and_running_entry(clean_env):
    d = clean_env / "cache"
    d.mkdir()
    legacy = d / "old-aaaaaaaaaaaaaaaaaaaaaaaa.nc"
    legacy.write_bytes(b"old cache file")
    (d / (legacy.name + ".sha256")).write_text(f"{hashlib.sha256(b'old cache file').hexdigest()}  {legacy.name}\n")
    busy = d / "busy-bbbbbbbbbbbbbbbbbbbbbbbb.nc"
    busy.write_bytes(b"x")
    (d / (busy.name + ".sha256")).write_text(f"{'0' * 64}  {busy.name}\n{catalog._CACHE_MARK}\n")
    with catalog._locked(d / (busy.name + ".lock")):
        removed = catalog.clear_cache()
    assert legacy in removed and not legacy.exists()
    assert busy.exists()  # another process holds its lock


def test_cache_env_pointing_at_a_file(clean_env, monkeypatch, capsys):
    f = clean_env / "afile"
    f.write_text("x")
    monkeypatch.setenv("EOSDYN_CACHE", str(f))
    assert main(["--quiet", "cache", "clear"]) == 2
    assert main(["--quiet", "run", "figure2_eos", "--variant", "quick"]) == 2
    assert "EOSDYN_CACHE" in capsys.readouterr().err
    monkeypatch.setenv("EOSDYN_CACHE", str(f / "sub"))
    with pytest.raises(catalog.CatalogError, match="EOSDYN_CACHE"):
        catalog.cache_dir()
    assert f.read_text() == "x"


# --------------------------------------------------------------------------- 18. CLI messages
@pytest.fixture
def lin_catalog(clean_env):
    cat = clean_env / "c.yaml"
    cat.write_text(_entry("lin", "eosdyn.toy.linear", LINEAR))
    return cat


def _cli(args, capsys):
    code = main(["--quiet", *args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.mark.parametrize("kind", ["proc", "dir", "under_file", "empty"])
def test_cli_bad_output_paths_are_usage_errors(lin_catalog, clean_env, kind, capsys):
    (clean_env / "afile").write_text("keep")
    out = {"proc": "/proc/x.nc", "dir": str(clean_env), "under_file": str(clean_env / "afile" / "x.nc"),
           "empty": ""}[kind]
    for cmd in (["run", "lin", "-o", out], ["export", "lin", out]):
        code, err = _cli(["--catalog", str(lin_catalog), *cmd], capsys)
        assert code == 2, (cmd, err)
        assert "output" in err.lower() or "OUTPUT" in err
    assert (clean_env / "afile").read_text() == "keep"
    assert not (clean_env / "cache").exists() or not any((clean_env / "cache").glob("*.nc"))


def test_cli_reproduce_unwritable_output(lin_catalog, clean_env, capsys):
    (clean_env / "afile").write_text("keep")
    for out in (str(clean_env / "afile"), str(clean_env / "afile" / "sub"), "/proc/newdir", ""):
        code, err = _cli(["--catalog", str(lin_catalog), "reproduce", "--only", "lin", "-o", out], capsys)
        assert code == 2 and "output" in err, (out, err)


@pytest.mark.parametrize("value", ["[" * 200 + "]" * 200, "&a [*a]", "&a {x: *a}", "[" * 100000])
def test_cli_nested_or_self_referencing_set_values(lin_catalog, value, capsys):
    code, err = _cli(["--catalog", str(lin_catalog), "run", "lin", "--set", f"lam={value}"], capsys)
    assert code == 2 and "value" in err


def test_cli_non_utf8_catalog_and_unreadable_stored_file(clean_env, capsys):
    bad = clean_env / "latin1.yaml"
    bad.write_bytes("entries: []\n# caf\xe9\n".encode("latin-1"))
    code, err = _cli(["--catalog", str(bad), "list"], capsys)
    assert code == 2 and "UTF-8" in err
    folder = clean_env / "cat"
    folder.mkdir()
    (folder / "x.nc").write_bytes(b"not a netcdf file")
    sha = hashlib.sha256(b"not a netcdf file").hexdigest()
    cat = folder / "c.yaml"
    cat.write_text(f"entries:\n  - {{name: s, description: d, paper: p, stored: {{path: x.nc, sha256: '{sha}'}}}}\n")
    code, err = _cli(["--catalog", str(cat), "run", "s"], capsys)
    assert code == 2 and "cannot be read" in err


def test_cli_run_without_output_is_not_a_silent_no_op(lin_catalog, clean_env, capsys):
    out = clean_env / "lin.nc"
    code, _ = _cli(["--catalog", str(lin_catalog), "run", "lin", "-o", str(out)], capsys)
    assert code == 0 and out.exists()
    assert np.allclose(eosdyn.open_dataset(out).theta.values, 0.5 ** np.arange(4))
