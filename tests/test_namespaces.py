"""The documented namespaces are real modules: importable in a fresh interpreter, public-only ``__all__``.

Each check runs in a subprocess (a fresh interpreter, nothing imported before), because an
alias set in ``sys.modules`` by an earlier import would hide a namespace that does not exist.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

#: the namespaces the docs tell users to import
NAMESPACES = ["eosdyn", "eosdyn.toy", "eosdyn.qrm", "eosdyn.taylor", "eosdyn.theory", "eosdyn.analysis",
              "eosdyn.catalog", "eosdyn.registry", "eosdyn.systems", "eosdyn.conventions", "eosdyn.io",
              "eosdyn.sweep", "eosdyn.plot", "eosdyn.recipes", "eosdyn.claims", "eosdyn.reproduce"]

#: ``from namespace import name`` statements the README and the docs use, each first in its interpreter
FROM_IMPORTS = [("eosdyn.toy", "two_param"), ("eosdyn.toy", "one_datapoint_flow"), ("eosdyn.qrm", "sweep"),
                ("eosdyn.qrm", "gradient_flow"), ("eosdyn.taylor", "simulate"), ("eosdyn.taylor", "reduced_model")]


def _fresh(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object, which is returned."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("namespace, name", FROM_IMPORTS)
def test_from_import_in_a_fresh_interpreter(namespace, name):
    out = _fresh(f"""
        import json, sys
        from {namespace} import {name}
        print(json.dumps({{"module": {name}.__module__, "loaded": "{namespace}" in sys.modules}}))
    """)
    assert out["loaded"] and out["module"].startswith("eosdyn."), out


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_namespace_is_a_real_module_with_a_public_all(namespace):
    out = _fresh(f"""
        import importlib, inspect, json, sys
        mod = importlib.import_module("{namespace}")
        top = sys.modules["eosdyn"]
        short = "{namespace}".partition(".")[2]
        rows = []
        for name in mod.__all__:
            obj = getattr(mod, name, None)
            where = getattr(obj, "__name__" if inspect.ismodule(obj) else "__module__", None)
            rows.append([name, hasattr(mod, name), where])
        print(json.dumps({{
            "all": list(mod.__all__), "rows": rows,
            "same": mod is sys.modules["{namespace}"] and (not short or getattr(top, short) is mod),
            "name": mod.__name__,
        }}))
    """)
    assert out["same"], f"{namespace}: the attribute and sys.modules entry must be the same module"
    assert out["all"], f"{namespace} has an empty __all__"
    assert len(set(out["all"])) == len(out["all"]), f"{namespace}.__all__ repeats a name"
    for name, exists, where in out["rows"]:
        assert exists, f"{namespace}.__all__ lists {name!r}, which does not exist"
        assert not name.startswith("_"), f"{namespace}.__all__ lists the private name {name!r}"
        # every function, class and module is eosdyn's own (no re-exported typing.Any, numpy, ...)
        if where is not None:
            assert where.startswith("eosdyn"), f"{namespace}.{name} is defined in {where}, not in eosdyn"


def test_simulation_namespaces_reexport_exactly_the_implementation():
    out = _fresh("""
        import json
        import eosdyn.toy, eosdyn.qrm, eosdyn.taylor
        import eosdyn.models.toy, eosdyn.models.qrm, eosdyn.models.taylor, eosdyn.models.central
        # the implementation modules of each namespace (eosdyn.qrm: the QRM and its continuous-time models)
        impls = {"toy": ["toy"], "qrm": ["qrm", "central"], "taylor": ["taylor"]}
        pairs = {n: [list(getattr(eosdyn, n).__all__),
                     [a for m in impls[n] for a in getattr(eosdyn.models, m).__all__],
                     all(getattr(getattr(eosdyn, n), a) is getattr(getattr(eosdyn.models, m), a)
                         for m in impls[n] for a in getattr(eosdyn.models, m).__all__)]
                 for n in ("toy", "qrm", "taylor")}
        print(json.dumps(pairs))
    """)
    for name, (public, impl, same) in out.items():
        assert public == impl and same, name
    assert not {"Any", "check_range", "solve_batch", "np", "xr"} & set(out["toy"][0])


def test_import_eosdyn_stays_light():
    out = _fresh("""
        import json, sys
        import eosdyn
        heavy = [m for m in ("numba", "scipy", "matplotlib", "holoviews", "torch", "dask.distributed",
                             "eosdyn.models", "eosdyn.kernels") if m in sys.modules]
        print(json.dumps({"heavy": heavy, "all": eosdyn.__all__}))
    """)
    assert out["heavy"] == [], out["heavy"]
    for name in ("toy", "qrm", "taylor", "theory", "analysis", "check_dataset", "open_dataset", "to_netcdf"):
        assert name in out["all"]


def test_unknown_attribute_is_an_attribute_error():
    import eosdyn

    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        eosdyn.nonexistent  # noqa: B018
