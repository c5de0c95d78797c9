"""Self-test of the explicit-θ reference (tests/optim_reference.py) against independent truth:
today's GD sweep (a different algorithm: the (z, J) recursion) and finite differences."""

import numpy as np
import pytest

import eosdyn
from optim_reference import (all_batches, batch_sharpness, gradient, hessian, hessian_sharpness, loss, problem,
                             quadratic_run, run)


def test_gd_reference_equals_qrm_sweep():
    D, P, sz, sj, eta, steps = 5, 9, 1.0, 0.7, 1.0, 200
    ds = eosdyn.qrm.sweep(D=D, P=P, sigma_z=sz, sigma_J=sj, eta=eta, seeds=[3], steps=steps, record_every=1,
                          stop="never", tol=0.0)
    y, G, Q = problem(3, D=D, P=P, sigma_z=sz, sigma_J=sj)
    ref = run("gd", y, G, Q, eta=eta, steps=steps, record=("loss", "sharpness"))
    assert ref["diverged_at"] == -1
    for k in ("loss", "sharpness"):
        sim = ds[k].isel(seed=0).values
        np.testing.assert_allclose(ref[k], sim, rtol=1e-12, atol=0)
    # the run is non-trivial: sharpening from 1.16 to the edge 2
    assert ref["sharpness"][0] < 1.2 and ref["sharpness"][-1] > 1.9


def _fd_grad(fun, x, h=1e-6):
    out = np.empty(x.size)
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = h
        out[i] = (fun(x + e) - fun(x - e)) / (2 * h)
    return out


def test_gradient_and_hessian_against_finite_differences():
    rng = np.random.default_rng(0)
    D, P = 4, 6
    y, G, Q = problem(1, D=D, P=P, sigma_z=3.0, sigma_J=1.0)
    theta = 0.3 * rng.standard_normal(P)
    g = gradient(theta, y, G, Q)
    np.testing.assert_allclose(g, _fd_grad(lambda t: loss(t, y, G, Q), theta), rtol=1e-6, atol=1e-9)
    H = hessian(theta, y, G, Q)
    Hfd = np.stack([_fd_grad(lambda t, i=i: gradient(t, y, G, Q)[i], theta) for i in range(P)])
    np.testing.assert_allclose(H, Hfd, rtol=1e-6, atol=1e-8)
    # the Σ f_a Q_a term matters here (H is not JᵀJ)
    J = G + np.einsum("aij,j->ai", Q, theta)
    assert np.abs(H - J.T @ J).max() > 1e-3 * np.abs(H).max()
    # batch quantities: the batch of all outputs is the full batch; the mean over all batches of
    # the "mean"-scaled batch gradient is the full gradient (unbiased)
    np.testing.assert_allclose(gradient(theta, y, G, Q, np.arange(D)), g, rtol=1e-13)
    gb = np.mean([gradient(theta, y, G, Q, b) for b in all_batches(D, 2)], axis=0)
    np.testing.assert_allclose(gb, g, rtol=1e-12, atol=1e-15)
    # batch sharpness with batch_size = D: the Rayleigh quotient of H along g
    bs = batch_sharpness(theta, y, G, Q, 0.7, [np.arange(D)])
    assert bs == pytest.approx(0.7 * g @ H @ g / (g @ g), rel=1e-12)
    assert bs <= hessian_sharpness(theta, y, G, Q, 0.7) * (1 + 1e-12)


def test_optimizers_by_hand_on_one_coordinate():
    # two steps of each optimizer on L = ½ λ θ², written out by hand
    lam, eta, th = 3.0, 0.1, 1.0
    out = {}
    for opt, hyper in [("gd", {}), ("momentum", {"momentum": 0.5}), ("nesterov", {"momentum": 0.5}),
                       ("rmsprop", {"beta2": 0.9, "epsilon": 0.0}),
                       ("adam", {"beta1": 0.8, "beta2": 0.9, "epsilon": 0.0})]:
        out[opt] = quadratic_run(opt, [lam], eta=eta, steps=2, theta0=[th], **hyper)
    # starting point θ = th from the minimum; L = ½ λ x²
    x1 = th - eta * lam * th
    assert out["gd"][1] == pytest.approx(0.5 * lam * x1 ** 2, rel=1e-14)
    g0 = lam * th  # momentum: v1 = g0, x1 = th − η g0; v2 = β v1 + g1, x2 = x1 − η v2
    x1 = th - eta * g0
    x2 = x1 - eta * (0.5 * g0 + lam * x1)
    assert out["momentum"][2] == pytest.approx(0.5 * lam * x2 ** 2, rel=1e-14)
    x1 = th - eta * (g0 + 0.5 * g0)  # nesterov: x1 = th − η (g0 + β v1)
    v2 = 0.5 * g0 + lam * x1
    x2 = x1 - eta * (lam * x1 + 0.5 * v2)
    assert out["nesterov"][2] == pytest.approx(0.5 * lam * x2 ** 2, rel=1e-14)
    # rmsprop, first step: s1 = 0.1 g0², step η g0/√s1 = η/√0.1 (sign of g0)
    x1 = th - eta / np.sqrt(0.1)
    assert out["rmsprop"][1] == pytest.approx(0.5 * lam * x1 ** 2, rel=1e-14)
    # adam, first step with bias correction: m̂1 = g0, ŝ1 = g0² -> step η
    x1 = th - eta
    assert out["adam"][1] == pytest.approx(0.5 * lam * x1 ** 2, rel=1e-14)
