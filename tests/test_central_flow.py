"""Exact derivatives of quadratic models, the central flow and GD with self-stabilization forces (issue 15).

Truth: central finite differences of the loss and of eigenvalues computed by ``numpy.linalg.eigvalsh``
(the derivatives), KKT conditions and an independent minimiser (the SDCP), the (z, J) gradient flow and
GD sweep of :mod:`eosdyn.models.qrm` (the θ-space flows and GD).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

import eosdyn
from eosdyn.conventions import STATUS_VALUES, decode_status
from eosdyn.kernels import derivatives as d


def _random_model(rng, D, P, scale=1.0):
    G = rng.standard_normal((D, P, P))
    Q = (G + G.transpose(0, 2, 1)) / np.sqrt(2.0)
    return Q, scale * rng.standard_normal((D, P)), scale * rng.standard_normal(D)


def _taylor_like(rng, k):
    """The form of eosdyn.taylor.reduced_model: J0 = diag(sqrt(lambda)), symmetric Q̃."""
    G = rng.standard_normal((k, k, k))
    return (G + G.transpose(0, 2, 1)) / 2, np.diag(np.sqrt(rng.uniform(0.5, 2.0, k))), rng.standard_normal(k)


def _qrm_instance():
    Q, J0, z0 = eosdyn.qrm.initial_state(3, D=6, P=9, sigma_z=[0.8], sigma_J=[0.7])
    return Q, J0[0], z0[0]


MODELS = {
    "qrm": lambda rng: _random_model(rng, 5, 8),
    "one_datapoint": lambda rng: _random_model(rng, 1, 4),
    "taylor_form": lambda rng: _taylor_like(rng, 4),
    "qrm_instance": lambda rng: _qrm_instance(),
}


def _fd(f, x, h):
    return np.array([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(x.size)])


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_derivatives_match_central_differences(model, seed):
    rng = np.random.default_rng(seed)
    Q, J0, z0 = MODELS[model](rng)
    P = Q.shape[1]
    theta = 0.3 * rng.standard_normal(P)

    def loss(t):
        z, _ = d.model_state(Q, J0, z0, t)
        return 0.5 * z @ z

    def hess(t):
        z, J = d.model_state(Q, J0, z0, t)
        return d.loss_hessian(Q, J, z)

    z, J = d.model_state(Q, J0, z0, theta)
    # the state itself: J is the derivative of z
    assert _rel(_fd(lambda t: d.model_state(Q, J0, z0, t)[0], theta, 1e-6).T, J) < 1e-7
    grad = d.loss_gradient(Q, J, z)
    assert _rel(_fd(loss, theta, 1e-5), grad) < 1e-7
    assert _rel(_fd(lambda t: d.loss_gradient(Q, *d.model_state(Q, J0, z0, t)[::-1]), theta, 1e-5).T,
                d.loss_hessian(Q, J, z)) < 1e-7
    u, v = rng.standard_normal(P), rng.standard_normal(P)
    assert _rel(_fd(lambda t: u @ hess(t) @ v, theta, 1e-4), d.third_derivative(Q, J, u, v)) < 1e-7
    S, uu, dS = d.grad_sharpness(Q, J, z)
    lam = np.linalg.eigvalsh(hess(theta))
    assert abs(S - lam[-1]) <= 1e-12 * abs(lam).max()
    assert lam[-1] - lam[-2] > 1e-3 * abs(lam).max()  # a simple top eigenvalue: S is differentiable
    assert _rel(_fd(lambda t: np.linalg.eigvalsh(hess(t))[-1], theta, 1e-5), dS) < 1e-7
    t = d.self_stabilization_terms(Q, J, z, 0.5)
    assert t["sharpening_force"] == pytest.approx(-grad @ dS, rel=1e-12)
    assert t["stabilization_strength"] == pytest.approx(dS @ dS, rel=1e-12)
    assert t["predicted_oscillation"] == pytest.approx(2 * t["sharpening_force"] / t["stabilization_strength"])
    assert t["hessian_sharpness"] == pytest.approx(0.5 * lam[-1], rel=1e-12)


def _sdcp_reference(a, G):
    """min ⟨a, X⟩ + ¼‖Σ X_kl g_kl‖² over X = L Lᵀ (Cholesky parametrisation, BFGS): an independent solver."""
    k = a.shape[0]
    il = np.tril_indices(k)

    def f(x):
        L = np.zeros((k, k))
        L[il] = x
        X = L @ L.T
        w = np.tensordot(X, G, axes=([0, 1], [0, 1]))
        return np.sum(a * X) + 0.25 * w @ w

    best = min((minimize(f, x0, method="BFGS", options={"gtol": 1e-12}) for x0 in
                np.random.default_rng(0).standard_normal((5, il[0].size))), key=lambda r: r.fun)
    return best.fun, f


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_sdcp_kkt_and_objective(k):
    rng = np.random.default_rng(10 + k)
    for _ in range(4):
        a = rng.standard_normal((k, k))
        a = a + a.T
        G = rng.standard_normal((k, k, 12))
        G = G + G.transpose(1, 0, 2)
        X, res = d.solve_sdcp(a, G)
        w = np.tensordot(X, G, axes=([0, 1], [0, 1]))
        M = a + 0.5 * (G @ w)
        scale = np.abs(a).max()
        assert np.linalg.eigvalsh(X)[0] >= -1e-12 * max(1.0, np.abs(X).max())
        assert np.linalg.eigvalsh(M)[0] >= -1e-9 * scale
        assert abs(np.sum(X * M)) <= 1e-9 * scale * max(1.0, np.abs(X).max())
        ref, f = _sdcp_reference(a, G)
        obj = np.sum(a * X) + 0.25 * w @ w
        assert obj <= ref + 1e-8 * max(1.0, abs(ref))
    # k = 1: the closed form of the central flow, sigma^2 = 2 alpha / beta
    X, _ = d.solve_sdcp(np.array([[-3.0]]), np.array([[[1.0, 2.0]]]))
    assert X[0, 0] == pytest.approx(2 * 3.0 / 5.0, rel=1e-15)


def test_central_velocity_gradient_flow_below_edge_and_holds_the_edge():
    rng = np.random.default_rng(4)
    Q, J0, z0 = _random_model(rng, 4, 7, 0.5)
    theta = 0.2 * rng.standard_normal(7)
    z, J = d.model_state(Q, J0, z0, theta)
    H = d.loss_hessian(Q, J, z)
    S = np.linalg.eigvalsh(H)[-1]
    grad = J.T @ z
    # far below the edge: exactly gradient flow
    out = d.central_velocity(Q, J, z, 1.0 / S)
    np.testing.assert_array_equal(out["velocity"], -(1.0 / S) * grad)
    # on the edge (eta S = 2 exactly): the velocity keeps d(eta S)/dt <= 0, with equality when X > 0
    _, u, dS = d.grad_sharpness(Q, J, z)
    for sign in (1.0, -1.0):
        zz = sign * z
        HH = d.loss_hessian(Q, J, zz)
        SS = np.linalg.eigvalsh(HH)[-1]
        eta = 2.0 / SS
        out = d.central_velocity(Q, J, zz, eta, kappa=0.0)
        v = out["velocity"]
        # independent: the eigenvalue along θ + h v by eigvalsh (z, J re-evaluated from θ)
        z0s = z0 + (zz - z)  # the same J, residual shifted so that z(θ) = zz

        def S_at(t):
            zt, Jt = d.model_state(Q, J0, z0s, t)
            return np.linalg.eigvalsh(d.loss_hessian(Q, Jt, zt))[-1]

        h = 1e-5
        rate = (S_at(theta + h * v) - S_at(theta - h * v)) / (2 * h)
        gf_rate = (S_at(theta - h * eta * (J.T @ zz)) - S_at(theta + h * eta * (J.T @ zz))) / (2 * h)
        X = out["X"]
        if X.size and X[0, 0] > 0:
            assert abs(rate) <= 1e-7 * abs(gf_rate)
            a_ = -(J.T @ zz) @ d.grad_sharpness(Q, J, zz)[2]
            assert X[0, 0] == pytest.approx(2 * a_ / np.sum(d.grad_sharpness(Q, J, zz)[2] ** 2), rel=1e-10)
        else:
            assert gf_rate <= 0 and rate == pytest.approx(gf_rate, rel=1e-7)


# a small QRM member that reaches the edge within 20 steps (cheap enough for the default run)
EOS = dict(D=20, P=40, sigma_z=0.3, sigma_J2=0.25, eta=1.0)


@pytest.fixture(scope="module")
def flows():
    times = np.arange(0.0, 61.0, 1.0)
    cf = eosdyn.qrm.central_flow(**EOS, seeds=1, times=times, record_theta=True)
    gf = eosdyn.qrm.central_flow(**EOS, seeds=1, times=times, record_theta=True, edge=False)
    ref = eosdyn.qrm.gradient_flow(**EOS, seeds=1, times=times)
    return cf.isel(seed=0), gf.isel(seed=0), ref.isel(seed=0)


def test_central_flow_equals_gradient_flow_before_the_edge_and_holds_it_after(flows):
    cf, gf, ref = flows
    # the theta-space gradient flow against the (z, J) gradient flow of eosdyn.qrm.gradient_flow
    np.testing.assert_allclose(gf.loss, ref.loss, rtol=1e-6, atol=1e-14)
    np.testing.assert_allclose(gf.sharpness, ref.sharpness, rtol=1e-7)
    hs = cf.hessian_sharpness.values
    first = int(np.argmax(hs >= 2.0 - 1e-4))
    assert 0 < first < hs.size - 10
    # before the edge (eta S < 2 - band/2 on the gradient flow): the same trajectory
    before = gf.hessian_sharpness.values < 2.0 - 0.05
    assert before.sum() >= 4
    np.testing.assert_allclose(cf.theta.values[before], gf.theta.values[before], rtol=0, atol=1e-9)
    # after: at the edge (the Baumgarte relaxation with kappa = 4 settles within a few steps)
    assert np.max(np.abs(hs[first + 5:] - 2.0)) < 1e-3
    assert np.median(np.abs(hs[first + 5:] - 2.0)) < 1e-6
    assert float(gf.hessian_sharpness[-1]) > 2.03  # gradient flow itself crosses the edge
    assert (cf.predicted_loss >= cf.loss).all() and float(cf.sdcp_residual.max()) < 1e-9
    small = cf.edge_count <= cf.sizes["edge_mode"]
    np.testing.assert_allclose(cf.oscillation_eigenvalues.sum("edge_mode").where(small),
                               cf.oscillation_variance.where(small), rtol=1e-12, atol=0)
    assert int(cf.status) == STATUS_VALUES["max_steps"]


def test_self_stabilization_matches_the_qrm_sweep_and_exact_forces():
    kw = dict(D=5, P=9, sigma_z=[0.3, 0.6], sigma_J2=0.3, seeds=[1, 4], steps=30, record_every=3, stop="never")
    ss = eosdyn.qrm.self_stabilization(**kw, record_theta=True)
    sw = eosdyn.qrm.sweep(**kw)
    np.testing.assert_allclose(ss.loss, sw.loss, rtol=1e-9)
    np.testing.assert_allclose(ss.sharpness, sw.sharpness, rtol=1e-9)
    np.testing.assert_array_equal(ss.status, sw.status)
    # the forces at one recorded theta against finite differences of eigvalsh
    m = ss.isel(sigma_z=0, seed=1, step=4)
    assert np.all(np.isfinite(m.theta)) and int(m.status) == STATUS_VALUES["max_steps"]
    Q, J0, z0 = eosdyn.qrm.initial_state(4, D=5, P=9, sigma_z=[0.3], sigma_J=[np.sqrt(0.3)])
    theta = m.theta.values

    def S_at(t):
        z, J = d.model_state(Q, J0[0], z0[0], t)
        return np.linalg.eigvalsh(d.loss_hessian(Q, J, z))[-1]

    dS = _fd(S_at, theta, 1e-5)
    z, J = d.model_state(Q, J0[0], z0[0], theta)
    assert float(m.stabilization_strength) == pytest.approx(dS @ dS, rel=1e-7)
    assert float(m.sharpening_force) == pytest.approx(-(J.T @ z) @ dS, rel=1e-7)
    assert float(m.hessian_sharpness) == pytest.approx(S_at(theta), rel=1e-12)


def test_fates_are_data_and_bad_options_raise():
    ds = eosdyn.qrm.central_flow(D=2, P=3, sigma_z=1e150, sigma_J=0.5, seeds=1, times=[0.0, 0.5, 1.0])
    assert str(decode_status(ds.status).item()) == "diverged" and bool(ds.loss.isnull()[..., 1:].all())
    ds = eosdyn.qrm.central_flow(D=3, P=4, sigma_z=0.5, sigma_J=0.5, seeds=1, times=[0.0, 50.0], max_evals=3)
    assert str(decode_status(ds.status).item()) == "failed"
    ds = eosdyn.qrm.self_stabilization(D=2, P=3, sigma_z=1e150, sigma_J=0.5, seeds=1, steps=5)
    assert str(decode_status(ds.status).item()) == "diverged"
    with pytest.raises(ValueError, match="band"):
        eosdyn.qrm.central_flow(D=2, P=3, sigma_z=0.1, sigma_J=0.5, seeds=1, times=[0.0, 1.0], band=2.5)
    with pytest.raises(ValueError, match="kappa"):
        eosdyn.qrm.central_flow(D=2, P=3, sigma_z=0.1, sigma_J=0.5, seeds=1, times=[0.0, 1.0], kappa=-1.0)
    with pytest.raises(TypeError, match="record_theta"):
        eosdyn.qrm.central_flow(D=2, P=3, sigma_z=0.1, sigma_J=0.5, seeds=1, times=[0.0, 1.0], record_theta=1)
    with pytest.raises(ValueError, match="stop"):
        eosdyn.qrm.self_stabilization(D=2, P=3, sigma_z=0.1, sigma_J=0.5, seeds=1, steps=3, stop="batch")
    with pytest.raises(ValueError, match="J must have shape"):
        d.loss_hessian(np.zeros((2, 3, 3)), np.zeros((3, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="eta"):
        d.self_stabilization_terms(np.zeros((1, 2, 2)), np.ones((1, 2)), np.ones(1), -1.0)


def test_chunking_does_not_change_results():
    kw = dict(D=4, P=6, sigma_z=[0.2, 0.3], sigma_J=0.4, seeds=3, times=[0.0, 2.0, 5.0])
    a = eosdyn.qrm.central_flow(**kw, chunk_size=1, scheduler="synchronous")
    b = eosdyn.qrm.central_flow(**kw, chunk_size=3, scheduler="threads")
    np.testing.assert_array_equal(a.loss, b.loss)


def test_self_stabilization_fates_match_the_sweep_with_default_recording():
    kw = dict(D=5, P=9, sigma_z=[0.1, 0.3, 0.6, 2.0], sigma_J2=0.3, seeds=[1, 4], steps=60, tol=1e-6)
    ss, sw = eosdyn.qrm.self_stabilization(**kw), eosdyn.qrm.sweep(**kw)
    np.testing.assert_array_equal(ss.step, sw.step)
    for v in ("status", "steps_taken", "converged_at", "diverged_at"):
        np.testing.assert_array_equal(ss[v], sw[v], err_msg=v)
    assert {1, 2, 3} <= set(np.unique(ss.status.values).tolist())  # converged, diverged and max_steps members
    np.testing.assert_allclose(ss.loss, sw.loss, rtol=1e-9)
    np.testing.assert_allclose(ss.final_sharpness, sw.final_sharpness, rtol=1e-9)


def test_array_flow_on_a_one_datapoint_model_holds_the_edge():
    """The array-level flow on a D = 1 model (the one-datapoint model's form): gradient flow against
    the closed form of a linear model, and the edge held where gradient flow crosses it."""
    Q = np.zeros((1, 2, 2))
    out = d.flow(Q, [[1.0, 2.0]], [1.0], 0.1, [0.0, 1.0, 3.0], edge=False)
    np.testing.assert_allclose(out["loss"], 0.5 * np.exp(-2 * 0.1 * 5.0 * np.array([0.0, 1.0, 3.0])), rtol=1e-9)
    # a sharpening one-datapoint model: the sharpness of gradient flow rises (the GF path in θ does
    # not depend on η, only its speed), so put the edge between its start and its end
    Q = np.zeros((1, 3, 3))
    Q[0] = np.diag([1.0, -0.1, 0.3])
    J0, z0 = np.array([[0.2, 0.5, 0.1]]), np.array([-1.5])
    gf = d.flow(Q, J0, z0, 1.0, np.linspace(0.0, 6.0, 61), edge=False)
    s = gf["hessian_sharpness"]
    assert s[-1] > 1.5 * s[0]
    eta = 2.0 / (0.5 * (s[0] + s[-1]))
    times = np.linspace(0.0, 6.0 / eta, 61)
    gf2 = d.flow(Q, J0, z0, eta, times, edge=False)
    cf = d.flow(Q, J0, z0, eta, times)
    np.testing.assert_allclose(gf2["theta"], gf["theta"], rtol=1e-7, atol=1e-9)  # same path, rescaled time
    hs = cf["hessian_sharpness"]
    assert hs.max() <= 2.0 + 1e-6 and abs(hs[-1] - 2.0) < 1e-6 and gf2["hessian_sharpness"][-1] > 2.05
    before = gf2["hessian_sharpness"] < 2.0 - 0.15
    np.testing.assert_allclose(cf["theta"][before], gf2["theta"][before], rtol=0, atol=1e-12)
    assert np.all(cf["predicted_loss"] >= cf["loss"])
