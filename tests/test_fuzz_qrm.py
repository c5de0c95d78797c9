"""Fuzzing the QRM and Taylor-model entry points against the promise of :mod:`fuzzutil`.

Every generated call of ``eosdyn.qrm.sweep``, ``eosdyn.qrm.gradient_flow``,
``eosdyn.kernels.qrm.run_gd`` / ``lambda_max`` and ``eosdyn.taylor.simulate`` (tiny sizes,
wide values: NaN, inf, 1e300, negatives, strings, lists, float32) must end in a clear
``ValueError``/``TypeError`` naming a parameter, or in a result whose non-finite values all
sit in flagged members -- never a hang (``pytest.mark.timeout``), a crash or another exception.
Plain-array results are checked here with the same rule: a member whose status is
``converged``/``max_steps``/``cycle`` has finite final values; ``lambda_max`` is checked
against an independent truth (LAPACK singular values of the rescaled ``J``).
"""

from __future__ import annotations

import collections
import math

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import eosdyn
from eosdyn.conventions import STATUS_VALUES
from eosdyn.kernels.qrm import lambda_max, run_gd
from eosdyn.models import taylor

import fuzzutil

KEY = "qrm"
#: outcomes of this module by entry point and category (printed with ``-s``)
LOCAL: collections.Counter = collections.Counter()


def _outcome(entry, call, names):
    box = []

    def keep():
        box.append(call())
        return box[-1]

    # a flow's diverged_at/converged_at are times, NaN = never (the contract), not a flagged value
    category = fuzzutil.outcome(keep, names, counter_key=KEY, allow_nan=("diverged_at", "converged_at"))
    LOCAL[(entry, category)] += 1
    status = getattr(box[0], "status", None) if box else None
    if status is not None and not np.isin(np.asarray(status), list(OK_FATES)).all():
        LOCAL[(entry, "  of which with diverged/failed members")] += 1
    return category


@pytest.fixture(scope="module", autouse=True)
def _print_local_counts():
    yield
    if LOCAL:
        print("\nQRM fuzz outcomes by entry point:")
        for (entry, cat), n in sorted(LOCAL.items()):
            print(f"  {entry:<16s} {cat:<40s} {n:5d}")
OK_FATES = {STATUS_VALUES[k] for k in ("converged", "max_steps", "cycle")}
NAN, INF = float("nan"), float("inf")

# ----------------------------------------------------------------------------- strategies
# Each call is a valid call over wide *valid* ranges (1e300, 0, float32 limits: divergence and
# overflow are data), with 0-2 parameters replaced by wild values (NaN, inf, negatives,
# strings, lists, None, bools, complex, values beyond float32): mostly results, often errors.
WILD = [NAN, INF, -INF, 1e300, -1e300, 1e39, -1.0, 0.0, 5e-324, 2**63, "1", "x", None, True,
        [1.0, 0.5], np.float32(0.5), np.int64(2), 1 + 2j, 1.5]

wide_pos = st.one_of(st.floats(1e-3, 10.0), st.sampled_from([1e-300, 1e-30, 1e30, 1e150, 3.4e38, 1e300]))
wide_grid = st.one_of(st.floats(0.0, 3.0), st.lists(st.floats(0.0, 3.0), min_size=1, max_size=2, unique=True),
                      st.sampled_from([0.0, 1e150, 1e300, 1e308, 3.4e38, [0.0, 1e300], [1e-300, 1e30]]))


def overrides(names):
    """Half the calls valid; the others with 1-2 parameters replaced by wild values."""
    return st.one_of(st.just({}), st.dictionaries(st.sampled_from(names), st.sampled_from(WILD), min_size=1,
                                                  max_size=2))


def _apply(kw, over):
    kw = dict(kw)
    kw.update(over)
    return kw


def _names(*extra):
    # one-letter parameters are matched as "D must" / "P must" (a bare "D" would match any message)
    return ["D must", "P must", "sigma_z", "sigma_J", "sigma_J2", "seeds", "eta", "steps", "record_every", "stop",
            "record_points", "tol", "diverge_loss", "cycle_tol", "cycle_window", "dtype", "max_memory",
            "compact_fraction", "chunk_size", "scheduler", *extra]


def _check_gd_result(res, B, mask=None):
    """The promise for the plain-array kernel: OK fates come with finite final values."""
    assert res.status.shape == (B,) and res.status.dtype == np.int8
    ok = np.isin(res.status, list(OK_FATES))
    assert set(np.unique(res.status).tolist()) <= set(STATUS_VALUES.values())
    assert np.isfinite(res.final_loss[ok]).all() and np.isfinite(res.final_sharpness[ok]).all()
    assert np.isfinite(res.final_z[ok]).all()
    div = res.status == STATUS_VALUES["diverged"]
    assert (res.diverged_at[div] >= 0).all() and (res.diverged_at[~div] == -1).all()
    assert np.isnan(res.final_loss[div]).all()
    if res.loss is not None:
        # recorded values up to each member's stop are finite for OK fates (rows outside
        # record_mask are NaN by design)
        rows = ok if mask is None else ok & mask
        upto = (res.record_steps[None, :] <= res.steps_taken[:, None]) & rows[:, None]
        for rec in (res.loss, res.z_norm, res.sharpness):  # z_norm: the kernel's own record
            if rec is not None:
                assert not (upto & ~np.isfinite(rec)).any()


# ----------------------------------------------------------------------------- sweep
SWEEP_PARAMS = ["D", "P", "sigma_z", "sigma_J2", "seeds", "eta", "steps", "record_every", "stop", "tol", "diverge_loss",
                "dtype", "compact_fraction", "cycle_tol", "cycle_window", "record_points", "max_memory",
                "chunk_size", "scheduler", "resume", "blas_threads"]


@pytest.mark.timeout(120)
@settings(max_examples=150)
@given(D=st.integers(1, 4), P=st.integers(1, 6), sigma_z=wide_grid, sigma_J2=wide_grid,
       seeds=st.one_of(st.integers(1, 2), st.sampled_from([[3], [0, 5]])), eta=wide_pos,
       steps=st.integers(0, 50), record_every=st.sampled_from([None, 1, 7]),
       stop=st.sampled_from(["member", "member", "never", "batch"]),
       tol=st.sampled_from([1e-12, 1e-300, 1e300]), diverge_loss=st.sampled_from([1e8, 1e300, 1e-3]),
       dtype=st.sampled_from(["float64", "float32", np.float32]), compact_fraction=st.floats(0.0, 1.0),
       cycle_tol=st.sampled_from([None, 1e-8, 0.5]), over=overrides(SWEEP_PARAMS))
def test_fuzz_sweep(D, P, sigma_z, sigma_J2, seeds, eta, steps, record_every, stop, tol, diverge_loss, dtype,
                    compact_fraction, cycle_tol, over):
    if stop != "member":
        cycle_tol = None  # an early stop of a member (refused otherwise; checked in test_qrm.py)
    kw = _apply(dict(D=D, P=P, sigma_z=sigma_z, sigma_J2=sigma_J2, seeds=seeds, eta=eta, steps=steps,
                     record_every=record_every, stop=stop, tol=tol, diverge_loss=diverge_loss, dtype=dtype,
                     compact_fraction=compact_fraction, cycle_tol=cycle_tol, cycle_window=5,
                     scheduler="synchronous"), over)
    if kw["scheduler"] is None:
        kw["scheduler"] = "synchronous"  # no thread pool per example (None is the valid default)
    if isinstance(kw.get("resume"), str):
        kw.pop("resume")  # the fuzzer writes no directories
    _outcome("sweep", lambda: eosdyn.qrm.sweep(**kw), _names("blas_threads", "resume"))


# ----------------------------------------------------------------------------- gradient flow
FLOW_PARAMS = ["D", "P", "sigma_z", "sigma_J", "seeds", "eta", "times", "tol", "diverge_loss", "rtol", "atol",
               "method", "max_evals", "max_memory"]


@pytest.mark.timeout(120)
@settings(max_examples=100)
@given(D=st.integers(1, 3), P=st.integers(1, 4), sigma_z=wide_grid,
       sigma_J=st.one_of(st.floats(0.0, 2.0), st.sampled_from([1e5, 1e60, 1e150])), seeds=st.integers(1, 2),
       eta=wide_pos, t_max=st.one_of(st.floats(1e-3, 5.0), st.sampled_from([1e-300, 1e300])),
       n_times=st.integers(2, 6), rtol=st.sampled_from([1e-10, 1e-6, 1.0]), atol=st.sampled_from([1e-14, 1e-3]),
       method=st.sampled_from(["DOP853", "RK45", "Radau", "LSODA"]),
       max_evals=st.one_of(st.integers(1, 50), st.integers(1000, 3000)), over=overrides(FLOW_PARAMS))
def test_fuzz_gradient_flow(D, P, sigma_z, sigma_J, seeds, eta, t_max, n_times, rtol, atol, method, max_evals,
                            over):
    kw = _apply(dict(D=D, P=P, sigma_z=sigma_z, sigma_J=sigma_J, seeds=seeds, eta=eta,
                     times=np.linspace(0.0, t_max, n_times), rtol=rtol, atol=atol, method=method,
                     max_evals=max_evals), over)
    if isinstance(kw["max_evals"], int) and kw["max_evals"] > 3000 and "max_evals" in over:
        kw["max_evals"] = 10**10  # a too-large budget must be refused, not spent
    _outcome("gradient_flow", lambda: eosdyn.qrm.gradient_flow(**kw),
             _names("rtol", "atol", "method", "max_evals", "times"))


# ----------------------------------------------------------------------------- kernels
elem = st.one_of(st.floats(-3, 3), st.sampled_from([NAN, INF, -INF, 1e300, -1e300, 1e154, 1e39, 0.0]))


@st.composite
def gd_inputs(draw):
    """Valid arrays over wide value ranges (NaN, inf, 1e300 entries are data), or one array defect."""
    D = draw(st.integers(1, 4))
    P = draw(st.integers(1, 5))
    B = draw(st.integers(0, 3))
    dt = draw(st.sampled_from([np.float64, np.float32]))
    G = draw(hnp.arrays(np.float64, (D, P, P), elements=st.one_of(st.floats(-2, 2), st.sampled_from([NAN, 1e300]))))
    Q = ((G + G.transpose(0, 2, 1)) / 2).astype(dt)
    jscale = draw(st.sampled_from([0.3, 0.3, 1.0, 1e150, 1e-300]))
    with np.errstate(over="ignore"):
        J0 = draw(hnp.arrays(np.float64, (B, D, P), elements=elem)) * jscale
    z0 = draw(hnp.arrays(np.float64, (B, D), elements=elem))
    if dt == np.float32:  # float32 inputs (values beyond its range are an error case below)
        with np.errstate(over="ignore", invalid="ignore"):
            J0, z0 = J0.astype(np.float32), z0.astype(np.float32)
    defect = draw(st.one_of(st.none(), st.sampled_from(["Q shape", "Q 2-D", "Q int", "Q str", "J0 shape",
                                                         "z0 shape", "J0 str", "z0 complex", "J0 beyond float32"])))
    if defect == "Q shape":
        Q = np.zeros((D, P, P + 1), dt)
    elif defect == "Q 2-D":
        Q = Q[0]
    elif defect == "Q int":
        Q = Q.astype(np.int64)
    elif defect == "Q str":
        Q = Q.astype(str)
    elif defect == "J0 shape":
        J0 = J0[:, :, :0]
    elif defect == "z0 shape":
        z0 = np.zeros((B + 1, D))
    elif defect == "J0 str":
        J0 = J0.astype(str)
    elif defect == "z0 complex":
        z0 = z0 + 1j
    elif defect == "J0 beyond float32":
        Q, J0 = Q.astype(np.float32), np.full((B, D, P), 1e39)
    return Q, J0, z0


GD_PARAMS = ["eta", "max_steps", "record_every", "tol", "diverge_loss", "cycle_tol", "cycle_window",
             "compact_fraction", "record_mask", "record_z", "record_sharpness", "return_J", "max_memory"]


@pytest.mark.timeout(120)
@settings(max_examples=150)
@given(args=gd_inputs(), eta=wide_pos, max_steps=st.integers(0, 50), record_every=st.integers(0, 4),
       tol=st.sampled_from([1e-12, 0.0, 1e300]), diverge_loss=st.sampled_from([1e8, 1e300, 1e-3]),
       cycle_tol=st.sampled_from([None, 1e-6, 0.5]), compact_fraction=st.floats(0.0, 1.0),
       record_mask=st.sampled_from([None, "ok", "ok", "ok", "ok", "long", "int"]), record_z=st.booleans(),
       over=overrides(GD_PARAMS))
def test_fuzz_run_gd(args, eta, max_steps, record_every, tol, diverge_loss, cycle_tol, compact_fraction,
                     record_mask, record_z, over):
    Q, J0, z0 = args
    B = J0.shape[0]
    mask = {None: None, "ok": np.arange(B) % 2 == 0, "long": np.ones(B + 1, bool), "int": np.ones(B, int)}[record_mask]
    kw = _apply(dict(eta=eta, max_steps=max_steps, record_every=record_every, tol=tol, diverge_loss=diverge_loss,
                     cycle_tol=cycle_tol, cycle_window=3, compact_fraction=compact_fraction, record_mask=mask,
                     record_z=record_z, return_J=True), over)

    def call():
        with np.errstate(all="ignore"):
            res = run_gd(Q, J0, z0, **kw)
        _check_gd_result(res, B, kw["record_mask"] if isinstance(kw["record_mask"], np.ndarray) else None)
        return res

    _outcome("run_gd", call, ["Q", "J0", "z0", *GD_PARAMS])


@pytest.mark.timeout(60)
@settings(max_examples=100)
@given(J=st.one_of(
    hnp.arrays(st.sampled_from([np.float64, np.float32]),
               st.tuples(st.integers(0, 3), st.integers(1, 4), st.integers(1, 5)), elements=st.floats(-2, 2, width=32)),
    hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 5)), elements=elem),
    st.sampled_from([np.ones((2, 3)), np.array([[["a"]]]), np.zeros((1, 0, 3)), np.ones((1, 2, 2), complex)])),
    scale=st.sampled_from([1.0, 1e-150, 1e150, 1e154, 1e-170, 2.0**1010]))
def test_fuzz_lambda_max(J, scale):
    def call():
        Js = J * scale if J.dtype.kind == "f" else J
        with np.errstate(all="ignore"):
            Js = Js.astype(J.dtype)
        lam = lambda_max(Js)
        _check_lambda(Js, lam)
        return lam

    _outcome("lambda_max", call, ["J"])


def _check_lambda(J, lam):
    """Independent truth: s² σ_max(J / s)² (LAPACK SVD of the rescaled J, s = max |J|)."""
    assert lam.shape == (J.shape[0],) and lam.dtype == J.dtype
    big = float(np.finfo(J.dtype).max)
    for b in range(J.shape[0]):
        Jb = J[b].astype(np.float64)
        if not np.isfinite(Jb).all():
            assert np.isnan(lam[b])
            continue
        s = float(np.abs(Jb).max()) if Jb.size else 0.0
        if s == 0.0:
            assert lam[b] == 0.0
            continue
        sig = np.linalg.svd(Jb / s, compute_uv=False)[0]
        log_true = 2 * math.log(s) + 2 * math.log(sig)
        if log_true > math.log(big) + 1e-9:
            assert lam[b] == np.inf
        elif log_true < math.log(big) - 1e-6 and log_true > math.log(np.finfo(J.dtype).tiny) + 1:
            tol = 1e-9 if J.dtype == np.float64 else 1e-6
            assert abs(float(lam[b]) / math.exp(log_true) - 1) <= tol, (float(lam[b]), math.exp(log_true))
        else:
            assert lam[b] >= 0  # at the edge of the range (under/overflow of the square)


# ----------------------------------------------------------------------------- Taylor model
@st.composite
def projections(draw):
    """Synthetic projections over wide value ranges, or with one defect (missing/bad metadata, no modes)."""
    k = draw(st.integers(1, 3))
    T = draw(st.integers(1, 2))
    rng = np.random.default_rng(draw(st.integers(0, 10)))
    lam_scale = draw(st.sampled_from([1e5, 1e5, 1.9e5, 1e40, 1e300]))
    lam = np.sort(rng.uniform(0.2, 1.0, (T, k)), axis=1)[:, ::-1] * lam_scale
    Q = rng.standard_normal((T, k, k, k)) * draw(st.sampled_from([300.0, 300.0, 1.0, 1e40, 1e300]))
    z = rng.standard_normal((T, k)) * draw(st.sampled_from([0.05, 0.05, 50.0, 1e200, NAN, INF]))
    ds = xr.Dataset({"ntk_eigenvalue": (("t0", "mode"), lam), "z_tilde": (("t0", "mode"), z),
                     "Q_tilde": (("t0", "mode", "mode_j", "mode_l"), 0.5 * (Q + Q.transpose(0, 1, 3, 2)))},
                    coords={"t0": np.arange(T, dtype=np.int64) * 60 + 120,
                            "eta": draw(st.sampled_from([0.01, 1.0, 1e300])), "n_examples": 1000})
    defect = draw(st.one_of(st.none(), st.none(), st.none(),
                            st.sampled_from(["no eta", "no n", "eta", "n", "no modes", "no t0", "lam", "Q short",
                                             "z str"])))
    if defect == "no eta":
        ds = ds.drop_vars("eta")
    elif defect == "no n":
        ds = ds.drop_vars("n_examples")
    elif defect == "eta":
        ds = ds.assign_coords(eta=draw(st.sampled_from([0.0, -0.01, NAN, INF, "x"])))
    elif defect == "n":
        ds = ds.assign_coords(n_examples=draw(st.sampled_from([0, -3, 2.5, NAN])))
    elif defect == "no modes":
        ds = ds.isel(mode=slice(0, 0), mode_j=slice(0, 0), mode_l=slice(0, 0))
    elif defect == "no t0":
        ds = ds.isel(t0=slice(0, 0))
    elif defect == "lam":
        ds = ds.assign(ntk_eigenvalue=ds.ntk_eigenvalue * draw(st.sampled_from([-1.0, NAN, INF])))
    elif defect == "Q short":
        ds = ds.isel(mode_l=slice(0, k - 1))
    elif defect == "z str":
        ds = ds.assign(z_tilde=ds.z_tilde.astype(str))
    return ds


TAYLOR_PARAMS = ["t0", "modes", "steps", "record_every", "diverge_loss", "dtype", "feedback", "max_memory"]


@pytest.mark.timeout(120)
@settings(max_examples=150)
@given(proj=projections(), t0=st.sampled_from([None, 120]), modes=st.sampled_from([None, 1]),
       steps=st.integers(1, 50), record_every=st.integers(1, 5), diverge_loss=st.sampled_from([1e8, 1e300]),
       dtype=st.sampled_from(["float64", "float32"]),
       over=st.one_of(st.just({}), overrides(TAYLOR_PARAMS),
                      st.fixed_dictionaries({"t0": st.sampled_from([121, 180, -1])}),
                      st.fixed_dictionaries({"modes": st.sampled_from([0, 2, 7])})))
def test_fuzz_taylor_simulate(proj, t0, modes, steps, record_every, diverge_loss, dtype, over):
    kw = _apply(dict(t0=t0, modes=modes, steps=steps, record_every=min(record_every, steps),
                     diverge_loss=diverge_loss, dtype=dtype), over)

    def call():
        with np.errstate(all="ignore"):
            return taylor.simulate(proj, **kw)

    _outcome("taylor.simulate", call, ["projections", *TAYLOR_PARAMS, "eta", "n_examples", "ntk_eigenvalue",
                                       "Q_tilde", "z_tilde"])
