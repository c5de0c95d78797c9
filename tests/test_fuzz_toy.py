"""Fuzzing of every public toy producer and flow: each call keeps the promise of
``tests/fuzzutil.py`` (a clear error naming a parameter, or a dataset whose non-finite values
all sit in flagged members), and nothing hangs (pytest-timeout)."""

from __future__ import annotations

import numpy as np
import pytest

hyp = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

from eosdyn import toy  # noqa: E402
from fuzzutil import outcome  # noqa: E402

KEY = "toy"
#: flows give fate times as floats, NaN = never (by construction)
_FLOW_NAN = ("diverged_at", "converged_at")
wild = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, -1e-300, 1e300, -1e300, 1e-50, 1e40, 1e200, 0.1, 0.5, 1.5, 1.9, 3.0]),
    st.floats(-4.0, 4.0),
)
small = st.floats(-3.0, 3.0)
steps_s = st.sampled_from([0, 1, 5, 37, np.array(5), 10**12, 2**63, 1e20, -1, 1.5, "5"])
dtype_s = st.sampled_from(["float64", "float32", "bogus"])
vec = st.lists(wild, min_size=1, max_size=3)
times_s = st.one_of(
    st.sampled_from([[0.0, 1.0], [0.0, 0.5, 2.0], [1.0], [0.0, 1e300], [0.0, float("nan")], [1.0, 0.5], []]),
    st.lists(st.floats(0.0, 10.0), min_size=1, max_size=3).map(sorted),
)
tol_s = st.sampled_from([1e-12, 1e-8, float("nan"), 0.0, -1.0, 1e-300])
# a small budget keeps failing members fast; the default budget is exercised in test_toy.py
evals_s = st.sampled_from([1, 50, 2000])


@pytest.mark.timeout(60)
@settings(max_examples=60)
@given(eps=wild, z0=wild, T0=wild, E=wild, steps=steps_s, dtype=dtype_s,
       stop=st.sampled_from(["never", "member", "batch", "bogus", True]), dl=st.sampled_from([None, 1e8, 0.0, 1e300]))
def test_fuzz_two_param_and_catapult(eps, z0, T0, E, steps, dtype, stop, dl):
    names = ["eps", "z0", "T0", "E_tilde", "steps", "dtype", "a", "stop", "diverge_loss"]
    outcome(lambda: toy.two_param(eps=eps, z0=z0, T0=T0, E_tilde=E, steps=steps, dtype=dtype, stop=stop,
                                  diverge_loss=dl), names, counter_key=KEY)
    outcome(lambda: toy.catapult(z0=z0, T0=T0, E_tilde=E, steps=steps, dtype=dtype, stop=stop), names,
            counter_key=KEY)


@pytest.mark.timeout(60)
@given(lam=wild, theta0=wild, steps=steps_s, dtype=dtype_s, every=st.sampled_from([1, 3, None, 0]))
def test_fuzz_linear(lam, theta0, steps, dtype, every):
    outcome(lambda: toy.linear(lam=lam, theta0=theta0, steps=steps, dtype=dtype, record_every=every),
            ["lam", "theta0", "steps", "dtype", "record_every"], counter_key=KEY)


@pytest.mark.timeout(60)
@given(q=vec, w0=vec, z0=wild, steps=steps_s, dtype=dtype_s, stop=st.sampled_from(["never", "member", "batch"]))
def test_fuzz_hierarchy(q, w0, z0, steps, dtype, stop):
    outcome(lambda: toy.hierarchy(q=q, w0=w0, z0=z0, steps=steps, dtype=dtype, stop=stop),
            ["q", "w0", "z0", "steps", "dtype"], counter_key=KEY)


@pytest.mark.timeout(60)
@given(Q=vec, theta0=vec, E=wild, eta=wild, steps=steps_s, dtype=dtype_s)
def test_fuzz_one_datapoint(Q, theta0, E, eta, steps, dtype):
    outcome(lambda: toy.one_datapoint(Q=Q, theta0=theta0, E=E, eta=eta, steps=steps, dtype=dtype),
            ["Q", "theta0", "E", "eta", "steps", "dtype"], counter_key=KEY)


@pytest.mark.timeout(120)
@given(eps=wild, z0=wild, T0=wild, times=times_s, rtol=tol_s, max_evals=evals_s)
def test_fuzz_two_param_flow(eps, z0, T0, times, rtol, max_evals):
    outcome(lambda: toy.two_param_flow(eps=eps, z0=z0, T0=T0, times=times, rtol=rtol, max_evals=max_evals),
            ["eps", "z0", "T0", "times", "rtol", "a"], counter_key=KEY, allow_nan=_FLOW_NAN)


@pytest.mark.timeout(120)
@given(q=vec, w0=vec, z0=wild, times=times_s, atol=tol_s, max_evals=evals_s)
def test_fuzz_hierarchy_flow(q, w0, z0, times, atol, max_evals):
    outcome(lambda: toy.hierarchy_flow(q=q, w0=w0, z0=z0, times=times, atol=atol, max_evals=max_evals),
            ["q", "w0", "z0", "times", "atol"], counter_key=KEY, allow_nan=_FLOW_NAN)


@pytest.mark.timeout(120)
@given(Q=vec, theta0=vec, E=wild, eta=wild, times=times_s, max_evals=evals_s)
def test_fuzz_one_datapoint_flow(Q, theta0, E, eta, times, max_evals):
    outcome(lambda: toy.one_datapoint_flow(Q=Q, theta0=theta0, E=E, eta=eta, times=times, max_evals=max_evals),
            ["Q", "theta0", "E", "eta", "times"], counter_key=KEY, allow_nan=_FLOW_NAN)


@pytest.mark.timeout(120)
@settings(max_examples=40)
@given(Q=vec, theta0=vec, E=wild, eta=wild, times=times_s, max_evals=evals_s,
       band=st.sampled_from([0.1, 0.0, 1.5, 2.0, -0.1, float("nan"), "0.1"]),
       kappa=st.sampled_from([4.0, 0.0, -1.0, float("inf"), True]))
def test_fuzz_one_datapoint_central_flow(Q, theta0, E, eta, times, max_evals, band, kappa):
    outcome(lambda: toy.one_datapoint_central_flow(Q=Q, theta0=theta0, E=E, eta=eta, times=times,
                                                   max_evals=max_evals, band=band, kappa=kappa),
            ["Q", "theta0", "E", "eta", "times", "band", "kappa"], counter_key=KEY, allow_nan=_FLOW_NAN)


@pytest.mark.timeout(60)
@given(eps=st.floats(0.01, 1.0), z0=small, T0=st.floats(0.0, 4.0), times=times_s)
def test_fuzz_two_param_flow_default_budget(eps, z0, T0, times):
    """Plausible inputs with the default work budget: flagged or clean, never hung."""
    outcome(lambda: toy.two_param_flow(eps=eps, z0=z0, T0=T0, times=times),
            ["eps", "z0", "T0", "times"], counter_key=KEY, allow_nan=_FLOW_NAN)
