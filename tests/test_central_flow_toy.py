"""The central flow of the one-datapoint model (eosdyn.toy.one_datapoint_central_flow), against
independent truth: gradient flow before the edge (a second integrator of a different vector
field), the edge constraint after it, and GD itself (the paper's map, iterated in parameter space)."""

from __future__ import annotations

import numpy as np
import pytest

import eosdyn
from eosdyn import toy
from eosdyn.kernels.derivatives import flow_observables

EPS = 0.1
Q = [1.0, -EPS]


def _eos_start():
    # z̃0 = −0.5, T0 = 1.5 at η = 1 (a Figure 2 start): a² − ε b² = −1, a² + ε² b² = 1.5
    b = np.sqrt(2.5 / (EPS + EPS ** 2))
    return [float(np.sqrt(1.5 - EPS ** 2 * b * b)), float(b)]


def test_equals_gradient_flow_below_the_edge():
    t = np.linspace(0.0, 30.0, 16)
    kw = dict(Q=Q, theta0=[[1.0, 0.5], [0.3, 2.0]], eta=[0.1, 0.5], times=t)
    cf, gf = toy.one_datapoint_central_flow(**kw), toy.one_datapoint_flow(**kw)
    assert float(cf.hessian_sharpness.max()) < 1.9          # never reaches the band
    np.testing.assert_allclose(cf.theta, gf.theta, rtol=1e-7, atol=1e-9)
    assert float(abs(cf.oscillation_variance).max()) == 0.0
    np.testing.assert_allclose(cf.predicted_loss, cf.loss, rtol=1e-12)   # no oscillation term


def test_holds_the_edge_and_tracks_gd():
    th0 = _eos_start()
    N = 300
    gd = toy.one_datapoint(Q=Q, theta0=th0, eta=1.0, steps=N)
    t = np.arange(N + 1, dtype=float)
    cf = toy.one_datapoint_central_flow(Q=Q, theta0=th0, eta=1.0, times=t)
    gf = toy.one_datapoint_flow(Q=Q, theta0=th0, eta=1.0, times=t)
    np.testing.assert_allclose(float(cf.T[0]), 1.5, rtol=1e-12)
    hs = cf.hessian_sharpness.values
    first = int(np.argmax(hs >= 2.0 - 1e-6))
    assert 0 < first < 50
    assert np.abs(hs[first:] - 2.0).max() < 1e-5            # the edge, to the solver's tolerance
    assert float(gf.sharpness[-1]) > 2.2                     # gradient flow sharpens past it
    assert float(cf.oscillation_variance[first + 5]) > 0
    d_cf = np.linalg.norm(gd.theta.values - cf.theta.values, axis=-1)
    d_gf = np.linalg.norm(gd.theta.values - gf.theta.values, axis=-1)
    assert (d_cf[50:] < 0.25 * d_gf[50:]).all(), (d_cf[-1], d_gf[-1])
    # GD itself ends at 2 − O(ε) (Theorem 3.1), the central flow at 2: the gap is O(ε)
    hs_gd = flow_observables(np.diag(Q)[None], np.zeros((1, 2)), [0.0], gd.theta.values[-1], 1.0)
    assert 2.0 - 0.1 < hs_gd["hessian_sharpness"] < 2.0


def test_options_checked_before_running():
    with pytest.raises(ValueError, match="band"):
        toy.one_datapoint_central_flow(Q=Q, theta0=[1.0, 0.5], eta=0.1, times=[0.0, 1.0], band=2.0)
    with pytest.raises(ValueError, match="kappa"):
        toy.one_datapoint_central_flow(Q=Q, theta0=[1.0, 0.5], eta=0.1, times=[0.0, 1.0], kappa=-1.0)
    with pytest.raises(TypeError, match="band"):
        toy.one_datapoint_central_flow(Q=Q, theta0=[1.0, 0.5], eta=0.1, times=[0.0, 1.0], band="0.1")


def test_regenerates_from_its_config():
    ds = toy.one_datapoint_central_flow(Q=Q, theta0=_eos_start(), eta=1.0, times=[0.0, 10.0, 20.0], kappa=2.0)
    again = eosdyn.conventions.regenerate(ds)
    np.testing.assert_array_equal(again.theta.values, ds.theta.values)
    assert again.attrs["model"] == "one_datapoint_central_flow"


def test_one_datapoint_records_the_forces_without_changing_the_trajectory():
    from eosdyn.kernels.derivatives import self_stabilization_terms

    kw = dict(Q=Q, theta0=[[1.0, 0.5], _eos_start()], eta=[0.5, 1.0], steps=40, record_every=4)
    a, b = toy.one_datapoint(**kw), toy.one_datapoint(**kw, forces=True)
    eosdyn.check_dataset(b)
    np.testing.assert_array_equal(a.theta.values, b.theta.values)
    Qm = np.diag(Q)[None]
    for i in range(2):
        for e in range(2):
            for k in (0, 3, 10):
                th = b.theta.isel(init=i, eta=e, step=k).values
                ref = self_stabilization_terms(Qm, (Qm[0] @ th)[None], [0.5 * th @ Qm[0] @ th], 1.0)
                for v in ("sharpening_force", "stabilization_strength", "predicted_oscillation"):
                    np.testing.assert_allclose(float(b[v].isel(init=i, eta=e, step=k)), ref[v], rtol=1e-10, atol=1e-14)
    fin = b.final_theta.isel(init=1, eta=1).values
    ref = self_stabilization_terms(Qm, (Qm[0] @ fin)[None], [0.5 * fin @ Qm[0] @ fin], 1.0)
    np.testing.assert_allclose(float(b.final_predicted_oscillation.isel(init=1, eta=1)),
                               ref["predicted_oscillation"], rtol=1e-10)
    with pytest.raises(TypeError, match="forces"):
        toy.one_datapoint(**kw, forces="no")
