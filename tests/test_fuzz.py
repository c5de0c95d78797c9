"""Fuzz suite for what a collaborator can send: catalogs, ``--set`` values, command lines, NetCDF attrs.

Hypothesis (derandomised, bounded examples; see conftest.py) generates inputs and each
outcome is checked against the promise of :mod:`fuzzutil`: a clear error naming what is wrong,
or a correct result; never code execution, a deleted file, a hang or a crash. The model,
analysis and I/O fuzzers live beside this file (``test_fuzz_*.py``); the outcome counts of
all of them are printed at the end of the run.
"""

from __future__ import annotations

import json
import string
import textwrap

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eosdyn
from eosdyn import catalog, registry
from eosdyn.cli import main

import fuzzutil

UNTRUSTED = ["os.system", "subprocess.getoutput", "builtins.eval", "shutil.rmtree", "os.remove",
             "eosdyn.catalog.clear_cache", "eosdyn.io.to_netcdf", "eosdyn.conventions.regenerate",
             "importlib.import_module", "pickle.loads", "eosdyn.sweep.run"]
TRUSTED = ["eosdyn.toy.linear", "eosdyn.toy.two_param", "eosdyn.toy.catapult"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(string.ascii_letters, min_size=1,
                                                                               max_size=6), inner, max_size=3)),
                      max_leaves=12)
names = st.text(string.ascii_letters + string.digits + "_ -.", min_size=0, max_size=10)


@st.composite
def raw_entries(draw):
    entry = {}
    if draw(st.integers(0, 5)):
        entry["name"] = draw(st.one_of(st.from_regex(r"\A[a-z_][a-z0-9_]{0,8}\Z"), names, scalars))
    for key in ("description", "paper"):
        if draw(st.integers(0, 5)):
            entry[key] = draw(st.one_of(st.just("some text"), st.text(max_size=10), scalars))
    kind = draw(st.sampled_from(["recipe", "recipe", "recipe", "stored", "both", "none", "junk"]))
    if kind in ("recipe", "both"):
        entry["recipe"] = {"function": draw(st.sampled_from(UNTRUSTED + TRUSTED + ["nodots", "a..b", 3])),
                           "parameters": draw(st.one_of(st.dictionaries(st.sampled_from(
                               ["lam", "theta0", "steps", "command", "eps", "z0", "T0", "variant"]), values,
                               max_size=4), st.dictionaries(st.sampled_from(["lam", "steps"]), scalars, max_size=2),
                               values))}
    if kind in ("stored", "both"):
        entry["stored"] = {"path": draw(st.sampled_from(["../../etc/hostname", "/etc/passwd", "x.nc",
                                                          "data/../../x.nc", ""])),
                           "sha256": draw(st.sampled_from(["0" * 64, "xyz", 5]))}
    if kind == "junk":
        entry[draw(names)] = draw(values)
    if draw(st.integers(0, 3)) == 0:
        entry["plot"] = draw(st.sampled_from(UNTRUSTED + ["eosdyn.plot.auto", None]))
    if draw(st.integers(0, 3)) == 0:
        entry["claims"] = draw(st.one_of(st.lists(st.sampled_from(UNTRUSTED + ["eosdyn.claims.claim_figure1"]),
                                                  max_size=2), scalars))
    if draw(st.integers(0, 3)) == 0:
        entry["variants"] = draw(values)
    return entry


@st.composite
def plausible_entries(draw):
    """Entries that pass the schema: only the functions they name (and their values) vary."""
    entry = {"name": draw(st.from_regex(r"\A[a-z][a-z0-9_]{0,8}\Z")), "description": "d", "paper": "p",
             "recipe": {"function": draw(st.sampled_from(UNTRUSTED + TRUSTED)),
                        "parameters": draw(st.dictionaries(st.sampled_from(["lam", "steps", "command", "path"]),
                                                           scalars, max_size=3))}}
    if draw(st.booleans()):
        entry["plot"] = draw(st.sampled_from(UNTRUSTED + ["eosdyn.plot.auto"]))
    if draw(st.booleans()):
        entry["claims"] = draw(st.lists(st.sampled_from(UNTRUSTED + ["eosdyn.claims.claim_figure1"]), max_size=2))
    return entry


@settings(max_examples=150)
@given(doc=st.one_of(st.lists(plausible_entries(), max_size=2, unique_by=lambda e: e["name"]).map(
                         lambda e: {"entries": e}),
                     st.lists(raw_entries(), max_size=3).map(lambda e: {"entries": e}),
                     values.map(lambda v: {"entries": v}), values))
def test_fuzz_catalog_documents(doc, tmp_path_factory):
    """Any YAML document: loads (entries are well formed) or a CatalogError naming the file."""
    tmp = tmp_path_factory.mktemp("cat")
    (tmp / "keep.txt").write_text("the user's file")
    p = tmp / "fuzz.yaml"
    p.write_text(yaml.safe_dump(doc, allow_unicode=True))
    try:
        ents = catalog.load(p)
    except catalog.CatalogError as err:
        assert str(p) in str(err) or "fuzz.yaml" in str(err), str(err)
        fuzzutil.COUNTS[("catalog", "clear error")] += 1
        return
    for e in ents.values():
        assert e.name.isidentifier()
        if e.kind == "stored":
            assert e.stored_path.resolve().is_relative_to(tmp.resolve())
        try:
            catalog.check_callables(e)
            fuzzutil.COUNTS[("catalog", "loaded, registered functions")] += 1
        except catalog.CatalogError as err:
            assert e.name in str(err)
            fuzzutil.COUNTS[("catalog", "loaded, untrusted name refused")] += 1
    assert not (tmp / "pwned").exists() and (tmp / "keep.txt").read_text() == "the user's file"


@settings(max_examples=120)
@given(text=st.one_of(st.text(max_size=60),
                      st.lists(st.sampled_from(["[", "]", "{", "}", "&a ", "*a", ",", ":", " x", "1", "!!python/object:os.system", "'", "\n"]),
                               max_size=40).map("".join)))
def test_fuzz_catalog_text_and_set_values(text, tmp_path_factory):
    """Raw text as a catalog file and as a ``--set`` value: parsed safely or a CatalogError."""
    tmp = tmp_path_factory.mktemp("txt")
    p = tmp / "t.yaml"
    p.write_text(text, encoding="utf-8")
    for call in (lambda: catalog.load(p), lambda: catalog.parse_value(text)):
        try:
            call()
            fuzzutil.COUNTS[("catalog text", "parsed")] += 1
        except catalog.CatalogError:
            fuzzutil.COUNTS[("catalog text", "clear error")] += 1


CAT = textwrap.dedent("""\
    entries:
      - name: lin
        description: linear model
        paper: Eq. 16
        recipe: {function: eosdyn.toy.linear, parameters: {lam: 0.5, theta0: 1.0, steps: 3}}
        variants: {quick: {steps: 2}}
      - name: evil
        description: evil
        paper: none
        recipe: {function: os.system, parameters: {command: "touch PWNED"}}
    """)

set_values = st.one_of(st.sampled_from(["0.5", "[0.1, 0.2]", "-1", "nan", "inf", "1e308", "true", "null",
                                        "abc", "[[1]]", "{a: 1}", "&a [*a]", "[" * 50, "2**63", "3.5",
                                        "float32", "bogus", "", "[]"]),
                       st.text(max_size=8))


@settings(max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cmd=st.sampled_from(["run", "export", "show", "list", "cache", "reproduce"]),
       name=st.sampled_from(["lin", "evil", "nope", ""]),
       variant=st.sampled_from([None, "quick", "slow"]),
       sets=st.lists(st.tuples(st.sampled_from(["lam", "theta0", "steps", "record_every", "tol", "dtype",
                                                "command", "variant", "bogus"]), set_values), max_size=3),
       output=st.sampled_from([None, "ok.nc", "", "/proc/x.nc", "DIR", "FILE/x.nc"]))
def test_fuzz_cli(cmd, name, variant, sets, output, tmp_path_factory, capsys):
    """Command lines: exit 0, 1 or 2 with a message, never an exception, never code execution."""
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "FILE").write_text("keep")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EOSDYN_CACHE", str(tmp / "cache"))
        mp.delenv("EOSDYN_CATALOG_PATH", raising=False)
        mp.chdir(tmp)
        _fuzz_cli_body(tmp, cmd, name, variant, sets, output, capsys)


def _fuzz_cli_body(tmp, cmd, name, variant, sets, output, capsys):
    cat = tmp / "c.yaml"
    cat.write_text(CAT.replace("PWNED", str(tmp / "PWNED")))
    argv = ["--quiet", "--catalog", str(cat), cmd]
    if cmd in ("run", "export", "show"):
        argv.append(name)
    if cmd == "cache":
        argv.append("clear" if variant else "dir")
    if cmd in ("run", "export"):
        if variant:
            argv += ["--variant", variant]
        for k, v in sets:
            argv += ["--set", f"{k}={v}"]
        argv.append("--no-cache")
    out = None if output is None else output.replace("DIR", str(tmp)).replace("FILE", str(tmp / "FILE"))
    if cmd == "export":
        argv.append(out if out is not None else str(tmp / "e.nc"))
    elif cmd == "run" and out is not None:
        argv += ["-o", out]
    elif cmd == "reproduce":
        argv += ["--only", name or "lin", "--no-plots", "-o", str(tmp / "rep") if out is None else out]
    try:
        code = main(argv)
    finally:
        for p in catalog._user_paths[:]:
            catalog.remove(p)
    err = capsys.readouterr().err
    assert code in (0, 1, 2), (argv, code)
    assert "Traceback" not in err
    if code == 2:
        assert err.startswith("eosdyn: error:") or "usage:" in err, err
    assert not (tmp / "PWNED").exists()
    assert (tmp / "FILE").read_text() == "keep"
    fuzzutil.COUNTS[("cli", f"exit {code}")] += 1


@settings(max_examples=80)
@given(cfg=st.one_of(values, st.fixed_dictionaries({"function": st.sampled_from(UNTRUSTED + TRUSTED + [3, None]),
                                                    "parameters": values})))
def test_fuzz_regenerate_from_received_attrs(cfg, tmp_path_factory):
    """Whatever ``eosdyn_config`` a received file holds, regenerate calls only registered recipes."""
    tmp = tmp_path_factory.mktemp("nc")
    ds = eosdyn.toy.linear(lam=0.5, theta0=1.0, steps=2)
    try:
        ds.attrs["eosdyn_config"] = json.dumps(cfg, allow_nan=True)
    except (TypeError, ValueError):
        return
    called = []
    fn = cfg.get("function") if isinstance(cfg, dict) else None
    try:
        eosdyn.conventions.regenerate(ds)
        called.append(fn)
        fuzzutil.COUNTS[("regenerate", "regenerated")] += 1
    except (ValueError, TypeError) as err:
        fuzzutil.COUNTS[("regenerate", "clear error")] += 1
        if fn in UNTRUSTED and isinstance(cfg.get("parameters"), dict):
            assert isinstance(err, registry.UntrustedFunctionError), err
    assert all(f in TRUSTED for f in called)
    assert not (tmp / "pwned").exists()


def test_regenerate_trusted_roundtrip_through_file(tmp_path):
    ds = eosdyn.toy.two_param(eps=0.1, z0=0.1, T0=1.5, steps=5)
    eosdyn.to_netcdf(ds, tmp_path / "x.nc")
    again = eosdyn.conventions.regenerate(eosdyn.open_dataset(tmp_path / "x.nc"))
    assert np.array_equal(again.T.values, ds.T.values, equal_nan=True)


@pytest.mark.parametrize("function", UNTRUSTED)
def test_every_untrusted_name_is_refused_everywhere(function):
    for kind in registry.KINDS:
        assert not registry.is_registered(kind, function)
        with pytest.raises(registry.UntrustedFunctionError, match=function.replace(".", r"\.")):
            registry.resolve(kind, function)
