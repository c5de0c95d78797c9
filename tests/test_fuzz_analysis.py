"""Fuzzing of every public analysis in ``eosdyn.analysis.__all__``.

Random small DataArrays/Datasets (NaN/±inf, empty dims, complex/bool/int/float32 data, missing,
non-monotonic, repeated or float step coordinates, wrong dims, early-stopped members with
``steps_taken``/``status``) and random option values (NaN, ±inf, negative, strings, booleans,
complex, huge). The promise, checked with :func:`fuzzutil.outcome`: a clear ``ValueError`` /
``TypeError`` naming a parameter, or a result without unflagged garbage. Analysis results are not
simulation datasets (no ``check_dataset`` attributes), so each call is wrapped by a checker that
asserts the function's own no-garbage rule (below) and hands ``outcome`` a summary value:

* two_step / even / odd / eos_coordinate / map_jacobian: finite real input gives finite output;
  two_step equals x(t+2) − x(t) by step label;
* classify: codes in 0..3, and never ``diverged`` for a finite series;
* fit_limit / limiting_two_cycle / fit_increments: never ±inf (NaN is the documented "no fit");
* final_sharpness_stats / phase_table: counts add up, NaN only where there are no valid
  members (std: fewer than two), never ±inf;
* fixed_points / period_two_orbits: roots are finite and satisfy the map to the tolerance.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest
import xarray as xr
from hypothesis import example, given, settings
from hypothesis import strategies as st

from eosdyn import analysis as A
from eosdyn.conventions import STATUS_VALUES, set_roles, set_variable_attrs
from eosdyn.kernels.maps import two_param_step

from fuzzutil import outcome

#: outcome categories per analysis in this module (printed at the end with -s)
TALLY: collections.Counter = collections.Counter()

FLOATS = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 2.0, 1.9, 2.1]),
)

#: option values: valid-looking ones and every kind of bad one
OPTION = st.one_of(
    st.none(),
    st.just(np.nan),
    st.sampled_from(["2", "abc"]),
    st.sampled_from([np.nan, np.inf, -np.inf, -1.0, -1, 0, 0.0, 1, 2, 3, 5, 0.5, 1e-3, 10**30, 1e300,
                     "1", "abc", "", True, 1j, [1, 2], (0.1, 0.9)]),
    st.integers(-5, 60),
    st.floats(-10, 10, allow_nan=False),
)


def opt(valid):
    """Two times in three a valid value, else anything from OPTION."""
    valid = valid if isinstance(valid, st.SearchStrategy) else st.just(valid)
    return st.one_of(valid, valid, OPTION)


def options(dd, **spec):
    """Draw every option valid, except (half the time) one drawn from OPTION (named in ``bad``)."""
    names = list(spec)
    bad = dd.draw(st.sampled_from([None] * len(names) + names), label="bad option")
    return {k: dd.draw(BAD if k == bad else spec[k], label=k) for k in names}


#: a bad option: NaN half the time (the silent killer of comparisons), else anything from OPTION
BAD = st.one_of(st.just(np.nan), OPTION)


def _steps(draw, n):
    kind = draw(st.sampled_from(["none", "arange", "arange", "arange", "offset", "stride2", "shuffled",
                                 "repeated", "float", "float_frac"]))
    if kind == "none" or n == 0 and kind in ("shuffled", "repeated"):
        return None
    base = np.arange(n)
    return {"arange": base, "offset": base + 7, "stride2": 2 * base + 1,
            "shuffled": draw(st.permutations(list(base))) if n else base,
            "repeated": np.sort(np.r_[base[:-1], base[-1:] - 1]) if n > 1 else base,
            "float": base.astype(float), "float_frac": base + 0.5}[kind]


@st.composite
def data(draw, max_steps=14, seed_dim=False):
    """A DataArray (named "sharpness") with a step dim and 0-2 other dims, or a Dataset of it.

    Mostly enough steps for every analysis; ``seed_dim``: mostly with a ``seed`` dim."""
    n = draw(st.integers(0, max_steps) | st.integers(max_steps // 2, max_steps))
    other = draw(st.lists(st.sampled_from(["seed", "sigma_z", "init"]), max_size=2, unique=True))
    if seed_dim and "seed" not in other and draw(st.integers(0, 5)):
        other = ["seed"] + other[:1]
    sizes = [draw(st.integers(1, 3)) for _ in other]
    if other and draw(st.integers(0, 9)) == 0:
        sizes[0] = 0                                               # an empty member dim
    dims = other + ["step"]
    shape = tuple(sizes) + (n,)
    vals = np.array(draw(st.lists(FLOATS, min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))),
                    dtype=float).reshape(shape)
    if draw(st.booleans()):                                       # half the inputs are all finite
        vals = np.nan_to_num(vals, nan=0.5, posinf=3.0, neginf=-3.0)
    dtype = draw(st.sampled_from(["f8"] * 6 + ["f4", "i8", "c16", "bool"]))
    with np.errstate(all="ignore"):
        if dtype == "i8":
            vals = np.nan_to_num(vals, posinf=5, neginf=-5).astype(np.int64)
        elif dtype == "bool":
            vals = np.nan_to_num(vals) > 0
        elif dtype == "c16":
            vals = vals + 0.5j
        else:
            vals = vals.astype(dtype)
    coords = {d: np.arange(s) for d, s in zip(other, sizes)}
    steps = _steps(draw, n)
    if steps is not None:
        coords["step"] = np.asarray(steps)
    if draw(st.integers(0, 20)) == 0:
        dims[-1] = "time"                                          # wrong dim name
        if "step" in coords:
            coords["time"] = coords.pop("step")
    da = xr.DataArray(vals, dims=dims, coords=coords, name="sharpness")
    if draw(st.booleans()):
        da = da.transpose(*draw(st.permutations(dims)))
    if not draw(st.booleans()):
        return da
    ds = da.to_dataset()
    if other and "step" in da.dims:
        mshape = tuple(sizes)
        if draw(st.booleans()):
            ds["steps_taken"] = (other, np.array(draw(st.lists(st.integers(-2, max_steps + 2),
                                                               min_size=int(np.prod(mshape)),
                                                               max_size=int(np.prod(mshape))))).reshape(mshape)
                                 .astype(np.int64))
        if draw(st.booleans()):
            codes = draw(st.lists(st.sampled_from(list(STATUS_VALUES.values())), min_size=int(np.prod(mshape)),
                                  max_size=int(np.prod(mshape))))
            ds["status"] = (other, np.array(codes, dtype=np.int8).reshape(mshape))
            set_variable_attrs(ds["status"], "status")
    if draw(st.booleans()) and dtype in ("f8", "f4"):
        ds["z1"] = da * 0.1 + 0.01                                 # network layout for fit_increments
    return ds


def _finite_real(x) -> bool:
    arrs = [x] if isinstance(x, xr.DataArray) else [v for v in x.data_vars.values()]
    return all(a.dtype.kind in "iuf" and bool(np.isfinite(a.astype(float)).all()) for a in arrs if a.size)


def _no_inf(res):
    items = res.data_vars.items() if isinstance(res, xr.Dataset) else [(res.name, res)]
    for k, v in items:
        if v.dtype.kind in "fc":
            assert not bool(np.isinf(np.asarray(v.values)).any()), f"{k} holds ±inf"


def _summary(res):
    """What ``outcome`` sees: a plain value (analysis results are not simulation datasets)."""
    return ("result", type(res).__name__)


def run(name, call, names, check):
    """``outcome`` on a call whose result goes through ``check`` first."""
    def wrapped():
        res = call()
        check(res)
        return _summary(res)

    cat = outcome(wrapped, names, counter_key="analysis")
    TALLY[(name, "clear error" if cat == "error" else "checked result")] += 1
    return cat


# names an error may legitimately cite (the data argument, its dims/variables, the options)
DATA_NAMES = ["x must", "x[", "ds must", "ds[", "ds has", "'step'", "'time'", "dim=", "'seed'", "steps_taken",
              "'status'", "variables", "var=", "sharpness", "z1"]


def _names(*opts):
    return DATA_NAMES + list(opts)


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print("\nanalysis fuzz outcomes:", dict(sorted(TALLY.items())), "total", sum(TALLY.values()))


# --------------------------------------------------------------------------- the analyses


@given(data(), st.sampled_from(["two_step", "even", "odd"]), st.sampled_from(["step", "seed", "nope", ["step"]]))
def test_fuzz_two_step_even_odd(x, func, dim):
    def check(res):
        assert type(res) is type(x)
        if _finite_real(x):
            _no_inf(res)
            if func == "two_step" and dim == "step" and isinstance(res, xr.DataArray) and "step" in x.coords \
                    and res.size:
                t = res["step"].values                  # independent truth: difference by step label
                ref = x.sel(step=t + 2).variable.values - x.sel(step=t).variable.values
                np.testing.assert_array_equal(res.values, ref)
        if func in ("even", "odd") and dim == "step" and "step" in res.coords:
            assert (res["step"].values % 2 == (func == "odd")).all()

    run(func, lambda: getattr(A, func)(x, dim=dim), _names("dim"), check)


@given(st.lists(st.integers(-3, 20), max_size=8, unique=True).map(sorted) | st.lists(st.integers(-3, 20), max_size=8)
       | st.lists(FLOATS, max_size=4) | st.just("abc"))
def test_fuzz_two_step_pairs(steps):
    def check(res):
        i, j = res
        s = np.asarray(steps)
        np.testing.assert_array_equal(s[j], s[i] + 2)

    run("two_step_pairs", lambda: A.two_step_pairs(np.asarray(steps)), _names("steps"), check)


_QUASI = xr.DataArray(np.cos(np.pi * (np.sqrt(5) - 1) * np.arange(40)), dims="step")


@given(data(max_steps=20), st.data(), st.sampled_from([None, None, ["sharpness"], "sharpness", ["nope"], 3]))
@example(_QUASI, {"rtol": np.nan}, None)        # the reproducers, always tried
@example(_QUASI, {"atol": np.nan}, None)
@settings(max_examples=100)
def test_fuzz_classify(x, dd, variables):
    spec = dict(tail=st.none() | st.integers(3, 8), rtol=st.none() | st.floats(0, 0.1) | st.just(np.nan),
                atol=st.floats(0, 0.1) | st.just(np.nan), as_strings=st.booleans())
    o = {**{k: None for k in spec}, "atol": 0.0, "as_strings": False, **dd} if isinstance(dd, dict) \
        else options(dd, **spec)
    tail, rtol, atol, as_strings = o["tail"], o["rtol"], o["atol"], o["as_strings"]
    atol = 0.0 if atol is None else atol

    def check(res):
        assert isinstance(res, xr.DataArray)
        if res.dtype.kind == "i":
            assert set(np.unique(res.values)) <= {0, 1, 2, 3}
        if isinstance(x, xr.DataArray) and res.dtype.kind == "i":
            a = x.transpose(..., "step").values.astype(float)
            codes = res.transpose(*x.dims[:0], *[d for d in x.dims if d != "step"]).values
            a2 = a.reshape(-1, a.shape[-1])
            for row, code in zip(a2, np.ravel(codes)):
                if np.isfinite(row).all():
                    assert code != 3                     # a finite series never "diverged"
                if code == 0:                            # fixed point: the last change is within tol
                    r = float(rtol) if rtol is not None else 1.2e-5
                    tol = r * np.nanmax(np.abs(np.where(np.isfinite(row), row, np.nan))) + float(atol)
                    assert abs(row[-1] - row[-2]) <= tol, (row, rtol, atol)

    kw = {"tail": tail, "rtol": rtol, "atol": atol, "as_strings": as_strings}
    if isinstance(x, xr.Dataset):
        kw["variables"] = variables
    run("classify", lambda: A.classify(x, **kw), _names("tail", "rtol", "atol", "as_strings", "classify"),
        check)


@given(data(max_steps=30), st.data())
@settings(max_examples=100)
def test_fuzz_fit_limit(x, dd):
    o = options(dd, tail=st.none() | st.integers(8, 20), start=st.none() | st.integers(0, 10),
                stop=st.none() | st.integers(10, 30), max_iter=st.integers(0, 30), min_points=st.integers(4, 5))
    tail, start, stop, max_iter, min_points = o["tail"], o["start"], o["stop"], o["max_iter"], o["min_points"]
    max_iter = 20 if max_iter is None else max_iter
    run("fit_limit", lambda: A.fit_limit(x, tail=tail, start=start, stop=stop, max_iter=max_iter,
                                         min_points=min_points),
        _names("tail", "start", "stop", "max_iter", "min_points", "fit"), _no_inf)


@given(data(max_steps=30), st.data())
@settings(max_examples=60)
def test_fuzz_limiting_two_cycle(x, dd):
    o = options(dd, edge=st.floats(1, 3), tail=st.none() | st.integers(8, 20), max_iter=st.integers(0, 30))
    edge, tail, max_iter = o["edge"], o["tail"], o["max_iter"]
    edge = 2.0 if edge is None else edge
    max_iter = 20 if max_iter is None else max_iter
    run("limiting_two_cycle", lambda: A.limiting_two_cycle(x, edge=edge, tail=tail, max_iter=max_iter),
        _names("edge", "tail", "max_iter", "fit"), _no_inf)


@given(data(seed_dim=True), st.data(), st.sampled_from(["seed"] * 6 + ["sigma_z", "step", "x"]),
       st.sampled_from([None] * 6 + ["sharpness", "nope", 3]))
@settings(max_examples=150)
def test_fuzz_final_sharpness_stats(x, dd, dim, var):
    o = options(dd, eos_tol=st.floats(1e-3, 1), edge=st.floats(0, 4), n_boot=st.integers(10, 40),
                quantile=st.floats(0, 1), ci=st.floats(0.01, 0.99), seed=st.integers(0, 2**32))
    eos_tol, edge, n_boot, quantile, ci, seed = (o[k] for k in ("eos_tol", "edge", "n_boot", "quantile", "ci",
                                                               "seed"))
    kw = {"eos_tol": 0.05 if eos_tol is None else eos_tol, "edge": 2.0 if edge is None else edge,
          "n_boot": 20 if n_boot is None else n_boot, "ci": 0.9 if ci is None else ci,
          "seed": 0 if seed is None else seed,
          "quantiles": (0.1, 0.5) if quantile is None else (quantile if isinstance(quantile, (list, tuple, str))
                                                           else [quantile])}
    if isinstance(x, xr.Dataset):
        kw["var"] = var

    def check(s):
        _no_inf(s)
        nv = s.n_valid
        assert ((nv + s.n_excluded) == s.n_total).all() and (nv >= 0).all()
        assert ((s.hist.sum("bin") + s.n_outside_bins) == nv).all()
        for k in ("median_sharpness", "mean_sharpness", "mean_ci_lower", "mean_ci_upper", "deviation"):
            assert bool((s[k].notnull() == (nv > 0)).all()), k
        assert bool((s.std_sharpness.notnull() == (nv > 1)).all())
        assert bool((s.quantiles.notnull() == (nv > 0)).all())
        q = s.quantiles.sortby("quantile")                # quantiles are ordered like their levels
        assert bool(((q.diff("quantile") >= 0) | q.diff("quantile").isnull()).all())

    run("final_sharpness_stats", lambda: A.final_sharpness_stats(x, dim, **kw),
        _names("eos_tol", "edge", "n_boot", "quantiles", "ci", "seed", "dim", "var"), check)


@given(data(seed_dim=True), opt(st.floats(1e-3, 1)))
def test_fuzz_phase_table(x, eos_tol):
    eos_tol = 0.05 if eos_tol is None else eos_tol

    def check(t):
        _no_inf(t)
        assert bool((t.median_sharpness.notnull() == (t.n_valid > 0)).all())

    run("phase_table", lambda: A.phase_table(x, "seed", n_boot=10, eos_tol=eos_tol),
        _names("eos_tol", "dim"), check)


@given(data(), opt(st.floats(-4, 4)))
@settings(max_examples=60)
def test_fuzz_eos_coordinate(x, edge):
    edge = 2.0 if edge is None else edge

    def check(y):
        assert isinstance(y, xr.DataArray)
        if _finite_real(x):
            _no_inf(y)
            assert bool(np.isfinite(y).all())

    run("eos_coordinate", lambda: A.eos_coordinate(x, edge=edge), _names("edge", "eos_coordinate"), check)


@st.composite
def toy(draw):
    """A small P = 2 map dataset (roles residual/curvature; lam, E_tilde and eps or a), sometimes
    with bad values, a missing parameter or role, or a wrong layout."""
    n = draw(st.integers(0, 10))
    z = np.array(draw(st.lists(FLOATS, min_size=n, max_size=n)), float) * 1e-6
    T = np.array(draw(st.lists(FLOATS, min_size=n, max_size=n)), float) * 1e-6 + 2
    ds = xr.Dataset({"z": ("step", z), "T": ("step", T)}, coords={"step": np.arange(n)})
    if draw(st.booleans()) or n == 0:
        ds = set_roles(ds, residual="z", curvature="T")
    E = draw(st.sampled_from([0.0, 0.3, None]))
    if E is not None:
        ds = ds.assign_coords(E_tilde=E)
    which = draw(st.sampled_from(["eps", "a", "lam", "T1", "none", "complex"]))
    if which == "eps":
        eps = draw(st.sampled_from([0.1, 0.5, 1.0]))
        ds = ds.assign_coords(eps=eps, lam=-eps)
    elif which == "a":
        a = draw(st.sampled_from([1.0, 2.0, -3.0]))
        ds = ds.assign_coords(a=a, lam=-1 / a)
    elif which == "lam":
        ds = ds.assign_coords(lam=draw(st.sampled_from([-0.1, 0.5, -1.0])))
    elif which == "T1":
        ds["T1"] = ("step", T * 0.5)
    elif which == "complex":
        ds["z"] = ds["z"] + 1j
        ds = ds.assign_coords(eps=0.1, lam=-0.1)
    return ds


@given(toy())
def test_fuzz_nonlinearity_ratio(ds):
    run("nonlinearity_ratio", lambda: A.nonlinearity_ratio(ds),
        _names("z", "T", "lam", "E_tilde", "role", "nonlinearity_ratio"), lambda r: None)


@given(st.one_of(toy(), data()), st.data(), st.sampled_from([(), (), ("seed",), "seed", ("step",), ("nope",)]))
@settings(max_examples=80)
def test_fuzz_fit_increments(ds, dd, over):
    o = options(dd, z_max=st.none() | st.floats(1e-6, 10), y_max=st.none() | st.floats(1e-6, 10),
                start=st.none() | st.integers(0, 5), stop=st.none() | st.integers(5, 20))
    z_max, y_max, start, stop = o["z_max"], o["y_max"], o["start"], o["stop"]
    run("fit_increments", lambda: A.fit_increments(ds, z_max=z_max, y_max=y_max, start=start, stop=stop, over=over),
        _names("z_max", "y_max", "start", "stop", "over", "fit_increments", "two-step", "lam", "E_tilde", "role"),
        _no_inf)


@given(st.sampled_from([0.1, 1.0, 0.5, None, np.nan, -0.5, 2.0, "0.1", 1j]), opt(st.floats(-0.5, 0.5)),
       opt(st.floats(1e-12, 1e-6)), st.sampled_from([2, 3, 5, 0, 1, np.nan, "4", 10**6]), st.sampled_from([None, (-2.0, 2.0), (1.0, -1.0),
                                                                          ("a", "b"), (np.nan, 1.0), (0.0,)]),
       st.sampled_from(["fixed_points", "period_two_orbits"]))
@settings(max_examples=40)
def test_fuzz_fixed_points_orbits(eps, E, tol, n_starts, z_range, func):
    kw = {"eps": eps, "E_tilde": E, "tol": 1e-10 if tol is None else tol, "n_starts": n_starts}
    if z_range is not None:
        kw["z_range"] = z_range

    def check(ds):
        _no_inf(ds)
        for k in ("z", "T", "residual"):
            assert bool(np.isfinite(ds[k]).all())
        z, T = ds.z.values.ravel(), ds["T"].values.ravel()
        if func == "fixed_points" and z.size:
            fz, fT = two_param_step(z, T, ds.attrs["lam"], ds.attrs["E_tilde"])
            np.testing.assert_allclose(np.c_[fz, fT], np.c_[z, T], atol=1e-6 * max(1, np.abs(np.c_[z, T]).max()))

    names = _names("eps", "E_tilde", "tol", "n_starts", "z_range", "exactly one")
    run(func, lambda: getattr(A, func)(**kw), names, check)


@given(st.one_of(FLOATS, st.just(1j), st.just("a"), st.lists(FLOATS, max_size=3)), FLOATS,
       opt(st.floats(-1, 1)), opt(st.floats(-1, 1)), st.sampled_from([1, 2, 2, 3, 0, -1, 3.5, np.nan, "2", 10**9]))
@settings(max_examples=60)
def test_fuzz_map_jacobian(z, T, lam, E, n):
    lam = -0.1 if lam is None else lam
    E = 0.0 if E is None else E

    def check(J):
        assert J.shape[-2:] == (2, 2)
        if (np.all(np.isfinite(np.asarray(z, dtype=complex))) and np.isfinite(T) and n in (1, 2)
                and np.all(np.abs(np.asarray(z, dtype=complex)) <= 10) and abs(T) <= 10 and abs(lam) <= 10
                and abs(E) <= 10):
            assert np.isfinite(J).all()

    run("map_jacobian", lambda: A.map_jacobian(z, T, lam=lam, E_tilde=E, n=n), _names("z", "T", "lam", "E_tilde", "n"),
        check)


def test_every_public_analysis_is_fuzzed():
    fuzzed = {"two_step", "even", "odd", "two_step_pairs", "classify", "fit_limit", "limiting_two_cycle",
              "final_sharpness_stats", "phase_table", "eos_coordinate", "nonlinearity_ratio", "fit_increments",
              "fixed_points", "period_two_orbits", "map_jacobian", "time_averaged_loss", "flow_distances",
              "separation_step", "measured_oscillation"}
    public = {n for n in A.__all__ if callable(getattr(A, n))}
    assert public == fuzzed, public ^ fuzzed


# --------------------------------------------------------------------------- the flow comparisons

_METHODS = ["gd", "gradient_flow", "central_flow"]


@st.composite
def comparison(draw):
    """A small dataset shaped like eosdyn.qrm.flow_comparison's (method, step, param), sometimes
    with a method missing, a variable missing, a wrong dim, NaN/±inf or non-float data."""
    n = draw(st.integers(0, 12))
    p = draw(st.integers(1, 3))
    methods = list(_METHODS)
    if draw(st.integers(0, 8)) == 0:
        methods = methods[: draw(st.integers(0, 2))]
    m = len(methods)
    th = np.array(draw(st.lists(FLOATS, min_size=m * n * p, max_size=m * n * p)), float).reshape(m, n, p)
    loss = np.array(draw(st.lists(FLOATS, min_size=2 * m * n, max_size=2 * m * n)), float).reshape(2, m, n)
    if draw(st.booleans()):
        th, loss = np.nan_to_num(th, nan=0.5, posinf=3.0, neginf=-3.0), np.abs(np.nan_to_num(loss, nan=0.5,
                                                                                            posinf=3.0, neginf=3))
    step_dim = "step" if draw(st.integers(0, 10)) else "time"
    ds = xr.Dataset({"theta": (("method", step_dim, "param"), th), "loss": (("method", step_dim), loss[0]),
                     "predicted_loss": (("method", step_dim), loss[1])}, coords={"method": methods})
    if step_dim == "step" and draw(st.booleans()):
        ds = ds.assign_coords(step=np.arange(n))
    drop = draw(st.sampled_from([None] * 6 + ["theta", "loss", "predicted_loss"]))
    if drop:
        ds = ds.drop_vars(drop)
    if draw(st.integers(0, 10)) == 0:
        ds = ds["theta"] if "theta" in ds else ds.to_array()
    return ds


@given(comparison(), st.sampled_from(["time_averaged_loss", "flow_distances", "separation_step"]), st.data())
@settings(max_examples=150)
def test_fuzz_flow_comparisons(ds, func, dd):
    finite = isinstance(ds, xr.Dataset) and _finite_real(ds)
    if func == "time_averaged_loss":
        windows = dd.draw(opt(st.lists(st.integers(1, 12), min_size=1, max_size=3)), label="windows")
        kw = {} if windows is None else {"windows": windows}

        def check(r):
            if finite:
                _no_inf(r)
                w = r["window"].values
                gd = ds["loss"].values[list(ds["method"].values).index("gd")]
                for i, wi in enumerate(w):             # independent truth: the mean over each window
                    for t in range(len(gd) - wi + 1):
                        np.testing.assert_allclose(r["time_averaged_loss"].values[i, t], gd[t:t + wi].mean(),
                                                   rtol=1e-12, atol=1e-300)
        names = _names("windows", "method", "predicted_loss", "loss")
    elif func == "flow_distances":
        kw = {}

        def check(r):
            if finite:
                _no_inf(r)
                th = ds["theta"]
                m = list(th["method"].values)         # (isel: xarray's sel keeps the dim of an empty array)
                ref = np.linalg.norm(th.values[m.index("gd")] - th.values[m.index("gradient_flow")], axis=-1)
                np.testing.assert_allclose(r["distance_gradient_flow"].values, ref, rtol=1e-12)
        names = _names("method", "theta")
    else:
        rtol = dd.draw(opt(st.floats(1e-6, 1)), label="rtol")
        kw = {} if rtol is None else {"rtol": rtol}

        def check(r):
            assert int(r) == -1 or int(r) in ds["step"].values.tolist()
        names = _names("rtol", "method", "theta")
    run(func, lambda: getattr(A, func)(ds, **kw), names, check)


@given(data(), st.sampled_from(["step", "seed", "nope", 3]))
@settings(max_examples=80)
def test_fuzz_measured_oscillation(x, dim):
    th = x.to_array() if isinstance(x, xr.Dataset) else x
    if th.ndim and "step" in th.dims and th.dims[-1] != "step":
        th = th.rename({th.dims[-1]: "param"})

    def check(r):
        assert isinstance(r, xr.DataArray)
        if _finite_real(th):
            _no_inf(r)
            assert (r.fillna(0) >= 0).all()

    run("measured_oscillation", lambda: A.measured_oscillation(th, dim=dim), _names("theta", "dim", "param"),
        check)
