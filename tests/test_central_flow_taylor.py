"""The flows of the reduced Taylor model (eosdyn.taylor.central_flow) against independent truth:
gradient flow written out here (explicit f(φ) = z̃₀ + J₀φ + ½Q̃(φ, φ), scipy's solve_ivp), and the
edge constraint of the central flow."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import eosdyn
from eosdyn import taylor

PROJ = "cifar_fcn_projections"


def _explicit_gradient_flow(Q, J0, z0, eta, times):
    def rhs(t, phi):
        z = z0 + J0 @ phi + 0.5 * np.einsum("ajk,j,k->a", Q, phi, phi)
        J = J0 + np.einsum("ajk,k->aj", Q, phi)
        return -eta * J.T @ z

    sol = solve_ivp(rhs, (times[0], times[-1]), np.zeros(J0.shape[1]), t_eval=times, rtol=1e-12, atol=1e-14,
                    method="DOP853")
    return sol.y.T


def test_gradient_flow_against_an_explicit_integration():
    times = np.linspace(0.0, 6.0, 7)
    ds = taylor.central_flow(PROJ, t0=4200, modes=4, feedback=2, times=times, edge=False)
    Q, J0, z0, eta, _ = taylor.reduced_model(eosdyn.catalog.open(PROJ), t0=4200, modes=4, feedback=2)
    ref = _explicit_gradient_flow(Q, J0, z0, eta, times)
    np.testing.assert_allclose(ds.phi.values, ref, rtol=1e-7, atol=1e-9 * np.abs(ref).max())
    assert float(ds.oscillation_variance.max()) == 0.0


def test_central_flow_holds_the_edge_where_gradient_flow_crosses_it():
    times = np.arange(0.0, 41.0, 2.0)
    kw = dict(t0=4180, modes=8, feedback=2, times=times)
    cf = taylor.central_flow(PROJ, **kw)
    gf = taylor.central_flow(PROJ, **kw, edge=False)
    hs = cf.hessian_sharpness.values
    reached = np.flatnonzero(hs >= 2.0 - 1e-6)
    assert reached.size, hs
    after = hs[reached[0] + 2:]          # relaxation at rate kappa = 4 per step from an overshoot
    assert np.abs(after - 2.0).max() < 1e-5, after
    assert float(gf.hessian_sharpness.max()) > 2.05
    assert str(eosdyn.conventions.decode_status(cf.status).item()) in ("max_steps", "converged")


def test_options_checked_before_running():
    with pytest.raises(ValueError, match="band"):
        taylor.central_flow(PROJ, t0=4200, modes=2, times=[0.0, 1.0], band=-0.5)
    with pytest.raises(TypeError, match="edge"):
        taylor.central_flow(PROJ, t0=4200, modes=2, times=[0.0, 1.0], edge="yes")
    with pytest.raises(ValueError, match="times"):
        taylor.central_flow(PROJ, t0=4200, modes=2, times=[1.0, 0.0])


def test_simulate_records_the_forces_without_changing_the_trajectory():
    from eosdyn.kernels.derivatives import self_stabilization_terms

    kw = dict(t0=4200, modes=4, feedback=2, steps=20)
    a = taylor.simulate(PROJ, **kw)
    b = taylor.simulate(PROJ, **kw, forces=True)
    eosdyn.check_dataset(b)
    np.testing.assert_array_equal(a.z_tilde.values, b.z_tilde.values)
    np.testing.assert_array_equal(a.sharpness.values, b.sharpness.values)
    Q, J0, z0, eta, _ = taylor.reduced_model(eosdyn.catalog.open(PROJ), t0=4200, modes=4, feedback=2)
    ref = self_stabilization_terms(Q, J0, z0, eta)                   # at step 0 the state is (J0, z0)
    for v in ("sharpening_force", "stabilization_strength", "predicted_oscillation"):
        np.testing.assert_allclose(float(b[v].isel(step=0)), ref[v], rtol=1e-9)
    assert eosdyn.conventions.regenerate(b).predicted_oscillation.equals(b.predicted_oscillation)
    with pytest.raises(TypeError, match="forces"):
        taylor.simulate(PROJ, **kw, forces=1)
