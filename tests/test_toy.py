"""Toy simulations (eosdyn.toy) against independent truth.

Truths used: parameter-space GD vs the eigenbasis hierarchy vs the closed (z̃, T) map (three
different computations), conservation of Ẽ = T(−1) − 2z̃ computed from θ, the closed forms
ΔT = z̃²(T − 4) (catapult) and θ̃_t = (1 − λ)^t θ̃₀ (linear), a hand-written numpy GD of a
one-hidden-layer linear network (App. A.2), convergence of GD to gradient flow as η → 0, and
a plain numpy loop of the step formula for the exact fates of the batch kernel.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import eosdyn
from eosdyn.conventions import STATUS_VALUES, regenerate
from eosdyn.kernels import maps

toy = eosdyn.toy


def _orth(rng, P):
    q, r = np.linalg.qr(rng.normal(size=(P, P)))
    return q * np.sign(np.diag(r))


def _setup(rng, P, eta, E, T_target=1.2):
    """Random Q (top eigenvalue 1, others in [-1, 1)), θ0 scaled so that T0 = η J Jᵀ = T_target."""
    q = np.concatenate([[1.0], rng.uniform(-1.0, 0.9, P - 1)])
    R = _orth(rng, P)
    Q = (R * q) @ R.T
    Q = 0.5 * (Q + Q.T)
    theta = rng.normal(size=P)
    theta *= np.sqrt(T_target / (eta * theta @ Q @ Q @ theta))
    return Q, theta


def _eig_inputs(Q, theta, eta, E):
    q, R = np.linalg.eigh(Q)
    c = R.T @ theta
    w = eta * (q * c) ** 2
    z0 = eta * 0.5 * (theta @ Q @ theta - E)
    return q, w, z0


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


# --------------------------------------------------------------------------- three methods agree
@pytest.mark.parametrize("P", [2, 3, 5])
@pytest.mark.parametrize("eta", [0.05, 0.5, 2.0])
def test_parameter_space_matches_hierarchy_and_two_param(P, eta):
    rng = np.random.default_rng(100 * P + int(eta * 10))
    E = 0.3 / eta  # Ẽ = 0.3 whatever η
    Q, theta = _setup(rng, P, eta, E)
    steps = 60
    gd = toy.one_datapoint(Q=Q, theta0=theta, E=E, eta=eta, steps=steps)
    assert int(gd.diverged_at) < 0
    q, w, z0 = _eig_inputs(Q, theta, eta, E)
    hi = toy.hierarchy(q=q, w0=w, z0=z0, steps=steps)
    assert _rel(gd.z, hi.z) <= 1e-12
    assert _rel(gd.T, hi.T) <= 1e-12
    # hierarchy's Ẽ (from w0, z0) is η E
    assert abs(float(hi.E_tilde) - 0.3) <= 1e-12
    # the trajectories are not trivial: z̃ changes by O(1) relative and T moves
    assert float(abs(gd.z).max()) > 10 * float(abs(gd.z.isel(step=-1)))
    if P == 2:
        lam = q[0] if abs(q[1] - 1.0) < 1e-12 else q[1]
        tp = toy.two_param(a=-1.0 / lam, E_tilde=0.3, z0=z0, T0=float(gd.T[0]), steps=steps)
        assert _rel(gd.z, tp.z) <= 1e-12
        assert _rel(gd.T, tp.T) <= 1e-12


def test_E_conserved_along_gd():
    rng = np.random.default_rng(7)
    for P, eta in [(2, 0.7), (3, 1.0), (5, 0.2)]:
        E = -0.4 / eta
        Q, theta = _setup(rng, P, eta, E, T_target=1.5)
        gd = toy.one_datapoint(Q=Q, theta0=theta, E=E, eta=eta, steps=80)
        th = gd.theta.values
        J = th @ Q                                   # rows: J_t = θ_tᵀ Q
        Tm1 = eta * np.einsum("ti,ij,tj->t", J, np.linalg.inv(Q), J)
        Et = Tm1 - 2 * gd.z.values
        np.testing.assert_allclose(Et, eta * E, rtol=0, atol=1e-12 * max(1.0, np.abs(Tm1).max()))
        q, w, z0 = _eig_inputs(Q, theta, eta, E)
        hi = toy.hierarchy(q=q, w0=w, z0=z0, steps=80)
        Eh = (hi.w / hi.q).sum("mode") - 2 * hi.z
        np.testing.assert_allclose(Eh.values, eta * E, rtol=0, atol=1e-12 * max(1.0, float(hi.T.max())))


def test_hierarchy_levels_follow_eq11():
    """T(k)' − T(k) = −z̃ (2 T(k+1) − z̃ T(k+2)) for k = 0..3, from the recorded weights."""
    q = np.array([1.0, -0.3, 0.6, -0.9])
    ds = toy.hierarchy(q=q, w0=[0.5, 0.2, 0.4, 0.1], z0=0.2, steps=20)
    w, z = ds.w.values, ds.z.values
    Tk = lambda k: (w * q ** k).sum(axis=1)  # noqa: E731
    for k in range(4):
        lhs = Tk(k)[1:] - Tk(k)[:-1]
        rhs = -z[:-1] * (2 * Tk(k + 1)[:-1] - z[:-1] * Tk(k + 2)[:-1])
        np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-13)
    # z̃ update of Eq. 10
    np.testing.assert_allclose(z[1:] - z[:-1], -z[:-1] * Tk(0)[:-1] + 0.5 * z[:-1] ** 2 * Tk(1)[:-1],
                               rtol=0, atol=1e-14)


def test_hierarchy_T0_E_input_matches_w0_input():
    a = toy.hierarchy(q=[1.0, -0.2], z0=0.1, T0=1.6, E_tilde=0.1, steps=30)
    w = a.w.isel(step=0).values
    b = toy.hierarchy(q=[1.0, -0.2], z0=0.1, w0=w, steps=30)
    np.testing.assert_array_equal(a.z.values, b.z.values)
    c = toy.two_param(eps=0.2, E_tilde=0.1, z0=0.1, T0=1.6, steps=30)
    assert _rel(a.z, c.z) <= 1e-12 and _rel(a.T, c.T) <= 1e-12


# --------------------------------------------------------------------------- closed forms
def test_catapult_sign_rule():
    zs = np.concatenate([-np.geomspace(0.9, 1e-3, 12), np.geomspace(1e-3, 0.9, 12)])
    Ts = np.linspace(0.05, 7.9, 41)
    Ts = Ts[np.abs(Ts - 4.0) > 1e-9]
    z, T = np.meshgrid(zs, Ts, indexing="ij")
    ok = T >= np.abs(2 * z)
    init = xr.DataArray(np.arange(ok.sum()), dims="init")
    ds = toy.catapult(z0=xr.DataArray(z[ok], dims="init"), T0=xr.DataArray(T[ok], dims="init"),
                      steps=1).assign_coords(init=init)
    dT = (ds.T.isel(step=1) - ds.T.isel(step=0)).values
    assert np.array_equal(np.sign(dT), np.sign(T[ok] - 4.0))
    np.testing.assert_allclose(dT, z[ok] ** 2 * (T[ok] - 4.0), rtol=1e-12, atol=1e-15)
    # and the z̃ update of Eq. 12 with Ẽ = 0
    dz = (ds.z.isel(step=1) - ds.z.isel(step=0)).values
    np.testing.assert_allclose(dz, -z[ok] * T[ok] + z[ok] ** 3, rtol=1e-12, atol=1e-15)


def test_catapult_is_two_param_with_a_equal_1():
    a = toy.catapult(E_tilde=0.2, z0=0.3, T0=[1.0, 2.5], steps=25)
    b = toy.two_param(a=1.0, E_tilde=0.2, z0=0.3, T0=[1.0, 2.5], steps=25)
    c = toy.two_param(eps=1.0, E_tilde=0.2, z0=0.3, T0=[1.0, 2.5], steps=25)
    np.testing.assert_array_equal(a.z.values, b.z.values)
    np.testing.assert_array_equal(a.T.values, c.T.values)
    assert a.attrs["model"] == "catapult"


def test_linear_closed_form_and_two_step():
    lam = np.array([0.3, 1.0, 1.7, 1.99, 2.5, -0.1])
    ds = toy.linear(lam=lam, theta0=[1.0, -2.0], steps=40, tol=0.5 * 1e-6 ** 2)  # loss ½ θ̃² < tol: |θ̃| < 1e-6
    th = ds.theta.transpose("lam", "theta0", "step").values
    t = np.arange(41)
    expect = (1 - lam)[:, None, None] ** t[None, None, :] * np.array([1.0, -2.0])[None, :, None]
    np.testing.assert_allclose(th, expect, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(th[..., 2:], (1 - lam)[:, None, None] ** 2 * th[..., :-2], rtol=1e-14, atol=0)
    below = np.abs(expect) < 1e-6
    first = np.where(below.any(axis=2), below.argmax(axis=2), -1)
    np.testing.assert_array_equal(ds.converged_at.transpose("lam", "theta0").values, first)
    assert first[1, 0] == 1 and first[0, 0] == 39 and first[4, 0] == -1
    assert (ds.diverged_at < 0).all()  # |1 - 2.5|^40 = 1e7 is large but below the divergence threshold
    np.testing.assert_array_equal(ds.sharpness.transpose("lam", "theta0", "step").values,
                                  np.broadcast_to(lam[:, None, None], th.shape))
    np.testing.assert_array_equal(ds.loss.values, 0.5 * ds.theta.values ** 2)


def test_one_hidden_layer_linear_network_is_catapult():
    """App. A.2: GD on f = vᵀUx with one datapoint equals the catapult map with Q = ±‖x‖."""
    rng = np.random.default_rng(3)
    n, K, eta, yhat = 4, 3, 0.05, 0.7
    x = rng.normal(size=n)
    v, U = 0.5 * rng.normal(size=K), 0.5 * rng.normal(size=(K, n))
    s = np.linalg.norm(x)
    zs, Ts = [], []
    for _ in range(41):
        f = v @ U @ x
        r = f - yhat
        zs.append(eta * s * r)
        Ts.append(eta * (np.sum((U @ x) ** 2) + np.sum(v ** 2) * s ** 2))
        gv, gU = r * (U @ x), r * np.outer(v, x)
        v, U = v - eta * gv, U - eta * gU
    ds = toy.catapult(E_tilde=2 * eta * yhat * s, z0=zs[0], T0=Ts[0], steps=40)
    assert _rel(ds.z, zs) <= 1e-11
    assert _rel(ds.T, Ts) <= 1e-11
    assert abs(zs[-1]) < 0.5 * abs(zs[0])  # a real, non-trivial trajectory


# --------------------------------------------------------------------------- GD → gradient flow
def _slope(etas, errs):
    return np.polyfit(np.log(etas), np.log(errs), 1)[0]


def test_gd_tracks_gradient_flow_parameter_space():
    Q = np.array([[1.0, 0.3, 0.0], [0.3, -0.2, 0.1], [0.0, 0.1, 0.5]])
    theta0, E, S = np.array([1.0, 0.4, -0.6]), 0.2, 2.0   # physical time S = η t
    etas = np.array([0.04, 0.02, 0.01, 0.005])
    errs = []
    for eta in etas:
        N = int(round(S / eta))
        gd = toy.one_datapoint(Q=Q, theta0=theta0, E=E, eta=eta, steps=N, record_every=None)
        gf = toy.one_datapoint_flow(Q=Q, theta0=theta0, E=E, eta=eta, times=[float(N)])
        errs.append(float(np.linalg.norm(gd.theta.isel(step=-1) - gf.theta.isel(time=-1))))
    assert 0.9 < _slope(etas, errs) < 1.1
    assert errs[-1] < 1e-2


def test_gd_tracks_gradient_flow_two_param():
    """Rescaled initial conditions (z̃, T, Ẽ) = η (ζ, τ, e) and N = S/η steps: GD → flow at t = N."""
    zeta, tau, e, S = 0.5, 2.0, 0.1, 3.0
    etas = np.array([0.04, 0.02, 0.01, 0.005])
    errs = []
    for eta in etas:
        N = int(round(S / eta))
        gd = toy.two_param(eps=0.3, E_tilde=eta * e, z0=eta * zeta, T0=eta * tau, steps=N, record_every=None)
        gf = toy.two_param_flow(eps=0.3, E_tilde=eta * e, z0=eta * zeta, T0=eta * tau, times=[float(N)])
        d = np.hypot(float(gd.z.isel(step=-1) - gf.z.isel(time=-1)), float(gd.T.isel(step=-1) - gf.T.isel(time=-1)))
        errs.append(d / eta)  # error in the unscaled (z, λ) coordinates
    assert 0.9 < _slope(etas, errs) < 1.1


def test_flows_agree_with_each_other_and_conserve_E():
    rng = np.random.default_rng(11)
    eta, E = 0.5, 0.2
    Q, theta = _setup(rng, 3, eta, E)
    times = np.linspace(0, 20, 9)
    a = toy.one_datapoint_flow(Q=Q, theta0=theta, E=E, eta=eta, times=times)
    q, w, z0 = _eig_inputs(Q, theta, eta, E)
    b = toy.hierarchy_flow(q=q, w0=w, z0=z0, times=times)
    assert _rel(a.z, b.z) < 1e-9 and _rel(a.T, b.T) < 1e-9
    Eh = (b.w / b.q).sum("mode") - 2 * b.z
    np.testing.assert_allclose(Eh.values, eta * E, atol=1e-10)
    Q2 = np.diag([1.0, -0.25])
    th2 = np.array([0.8, 1.1])
    c = toy.one_datapoint_flow(Q=Q2, theta0=th2, E=E, eta=eta, times=times)
    d = toy.two_param_flow(eps=0.25, E_tilde=eta * E, z0=float(c.z[0]), T0=float(c.T[0]), times=times)
    assert _rel(c.z, d.z) < 1e-9 and _rel(c.T, d.T) < 1e-9
    assert float(c.loss[-1]) < float(c.loss[0])


# --------------------------------------------------------------------------- kernel exactness, fates
def test_batch_kernel_bitwise_and_exact_fates():
    """The blocked kernel equals a plain loop of the step formula, bit for bit, with exact fate steps."""
    rng = np.random.default_rng(0)
    m, steps, tol = 700, 150, 0.5e-6   # loss ½ z̃² < tol
    z = rng.uniform(-1, 1, m)
    T = rng.uniform(0, 5, m)
    lam, E = -rng.uniform(0.01, 1, m), rng.uniform(-0.5, 0.5, m)
    ds = toy.two_param(eps=xr.DataArray(-lam, dims="init"), E_tilde=xr.DataArray(E, dims="init"),
                       z0=xr.DataArray(z, dims="init"),
                       T0=xr.DataArray(np.maximum(T, np.maximum(2 * z + E, lam * (2 * z + E)) + 1e-9), dims="init"),
                       steps=steps, tol=tol, diverge_loss=1e6)
    zz, TT = ds.z.isel(step=0).values.copy(), ds.T.isel(step=0).values.copy()
    thr = ds.attrs["sharpness_guard"]
    D = np.full(m, -1)
    Cv = np.where(0.5 * zz * zz < tol, 0, -1)
    with np.errstate(all="ignore"):
        for t in range(1, steps + 1):
            zz, TT = maps.two_param_step(zz, TT, lam, E)
            D[(D < 0) & ~((0.5 * zz * zz <= 1e6) & (np.abs(TT) < thr))] = t
            Cv[(Cv < 0) & (0.5 * zz * zz < tol)] = t
            alive = D < 0
            np.testing.assert_array_equal(ds.z.isel(step=t).values[alive], zz[alive])
            np.testing.assert_array_equal(ds.T.isel(step=t).values[alive], TT[alive])
    np.testing.assert_array_equal(ds.diverged_at.values, D)
    np.testing.assert_array_equal(ds.converged_at.values, Cv)
    assert (D >= 0).sum() > 50 and (Cv >= 0).sum() > 50
    assert np.array_equal(ds.status.values == STATUS_VALUES["diverged"], D >= 0)
    np.testing.assert_array_equal(ds.loss.values, 0.5 * ds.z.values * ds.z.values)


def test_divergence_is_data():
    ds = toy.catapult(z0=xr.DataArray([0.9, 0.05], dims="init"), T0=xr.DataArray([6.0, 1.0], dims="init"),
                      steps=200)
    div = (ds.diverged_at >= 0).values
    assert div.tolist() == [True, False]
    k = int(ds.diverged_at[0])
    assert 0 < k < 200
    # NaN after diverged_at; the final values are those at steps_taken = diverged_at
    assert np.isnan(ds.z.isel(init=0).values[k + 1:]).all()
    assert float(ds.final_loss[0]) > ds.attrs["diverge_loss"] or not np.isfinite(float(ds.final_loss[0]))
    np.testing.assert_array_equal(ds.final_z[0], ds.z.isel(init=0, step=k))
    assert np.isfinite(ds.z.isel(init=0).values[:k]).all()
    assert int(ds.status[0]) == STATUS_VALUES["diverged"]
    assert int(ds.status[1]) == STATUS_VALUES["converged"]
    assert int(ds.steps_taken[0]) == k and int(ds.steps_taken[1]) == 200
    gd = toy.one_datapoint(Q=[1.0, -0.5], theta0=[3.0, 1.0], eta=1.0, steps=50)
    assert int(gd.status) == STATUS_VALUES["diverged"] and np.isnan(gd.theta.values[int(gd.diverged_at) + 1:]).all()
    eosdyn.check_dataset(gd)


def test_stop_batch_and_no_freezing():
    kw = dict(eps=0.1, z0=0.05, T0=[1.0, 1.5, 1.9])
    ds = toy.two_param(**kw, steps=100_000, stop="batch", record_every=None)
    conv = ds.converged_at.values
    assert (conv >= 0).all() and (ds.status.values == STATUS_VALUES["converged"]).all()
    S = int(conv.max())
    assert ds.step.values.tolist() == [0, S] and (ds.steps_taken.values == S).all()
    # the members that converged earlier were iterated until S (no freezing): equals a plain S-step run
    ref = toy.two_param(**kw, steps=S, record_every=None)
    np.testing.assert_array_equal(ds.final_z.values, ref.final_z.values)
    np.testing.assert_array_equal(ds.converged_at.values, ref.converged_at.values)
    # same for the hierarchy and parameter space GD
    h = toy.hierarchy(q=[1.0, -0.1], z0=0.05, T0=[1.0, 1.5], E_tilde=0.0, steps=100_000, stop="batch")
    assert int(h.step[-1]) == int(h.converged_at.max())
    g = toy.one_datapoint(Q=[1.0, -0.1], theta0=[[1.0, 0.3], [1.2, 0.1]], eta=1.0, steps=100_000,
                          stop="batch", record_every=7)
    assert (g.converged_at >= 0).all() and int(g.step[-1]) <= int(g.converged_at.max())
    assert int(g.steps_taken[0]) == int(g.converged_at.max())


def _loop_two_param(z, T, eps, steps, tol, dl, guard):
    """The P = 2 map (Eq. 14-15, Ẽ = 0, λ = −ε) written out with Python floats, stopping at the
    member's first fate: returns (trajectory [(z, T), ...], status name, fate step or −1)."""
    lam = -eps
    traj = [(z, T)]

    def fate(z, T):
        loss = 0.5 * z * z
        if not (loss <= dl and abs(T) < guard):
            return "diverged"
        return "converged" if loss < tol else None

    f = fate(z, T)
    for t in range(1, steps + 1):
        if f:
            return traj, f, t - 1
        u = 2.0 * z
        T1 = (1.0 + lam) * T - lam * u
        T2 = T + lam * (lam + 1.0) * (T - u)
        z, T = z - z * T + 0.5 * z * z * T1, T - 2.0 * z * T1 + z * z * T2
        traj.append((z, T))
        f = fate(z, T)
    return traj, (f or "max_steps"), (steps if f else -1)


@pytest.mark.parametrize("steps", [300, 2000])
def test_stop_member_against_an_independent_loop(steps):
    z0 = np.array([0.1, 0.5, 0.05, -0.2, 0.3, 1.0])
    T0 = np.array([1.5, 6.0, 1.9, 1.7, 5.0, 10.0])
    eps, tol, dl = 0.1, 0.5e-16, 1e8
    with np.errstate(all="ignore"):
        ds = toy.two_param(eps=eps, z0=xr.DataArray(z0, dims="init"), T0=xr.DataArray(T0, dims="init"),
                           steps=steps, stop="member", tol=tol, diverge_loss=dl)
    eosdyn.check_dataset(ds)
    guard = ds.attrs["sharpness_guard"]
    runs = [_loop_two_param(float(a), float(b), eps, steps, tol, dl, guard) for a, b in zip(z0, T0)]
    fated = [f for _, f, _ in runs if f != "max_steps"]
    last = max(len(tr) - 1 for tr, _, _ in runs) if len(fated) == len(runs) else steps
    assert ds.step.values.tolist() == list(range(last + 1))
    assert {f for _, f, _ in runs} >= {"converged", "diverged"}
    for i, (traj, f, at) in enumerate(runs):
        m = ds.isel(init=i)
        taken = len(traj) - 1
        assert int(m.status) == STATUS_VALUES[f] and int(m.steps_taken) == taken
        assert int(m.diverged_at) == (at if f == "diverged" else -1)
        assert int(m.converged_at) == (at if f == "converged" else -1)
        want = np.full((last + 1, 2), np.nan)
        want[: taken + 1] = traj
        np.testing.assert_array_equal(m.z.values, want[:, 0])     # NaN after steps_taken
        np.testing.assert_array_equal(m.T.values, want[:, 1])
        np.testing.assert_array_equal(m.loss.values, 0.5 * want[:, 0] * want[:, 0])
        assert float(m.final_z) == traj[-1][0] and float(m.final_T) == traj[-1][1]   # value at steps_taken
        assert float(m.final_sharpness) == traj[-1][1] and float(m.final_loss) == 0.5 * traj[-1][0] * traj[-1][0]
    # the vector driver agrees on the fates (the hierarchy with P = 2 is the same map in other
    # arithmetic; the long catapult of the last member is too sensitive to rounding to compare)
    h = toy.hierarchy(q=[1.0, -eps], z0=xr.DataArray(z0[:5], dims="init"), T0=xr.DataArray(T0[:5], dims="init"),
                      E_tilde=0.0, steps=steps, stop="member", tol=tol, diverge_loss=dl)
    for v in ("status", "steps_taken", "diverged_at", "converged_at"):
        np.testing.assert_array_equal(h[v].values, ds[v].values[:5])
    # stop="member" with record_every=None: [0, last] and the last column NaN for members that stopped earlier
    fin = toy.two_param(eps=eps, z0=xr.DataArray(z0, dims="init"), T0=xr.DataArray(T0, dims="init"),
                        steps=steps, stop="member", tol=tol, diverge_loss=dl, record_every=None)
    np.testing.assert_array_equal(fin.z.values, ds.z.isel(step=[0, -1]).values)
    np.testing.assert_array_equal(fin.final_z.values, ds.final_z.values)


def test_record_every_subsamples_the_full_run():
    full = toy.two_param(eps=0.2, z0=[0.1, 0.3], T0=1.7, steps=100)
    sub = toy.two_param(eps=0.2, z0=[0.1, 0.3], T0=1.7, steps=100, record_every=7)
    assert sub.step.values.tolist() == list(range(0, 101, 7))
    np.testing.assert_array_equal(sub.z.values, full.z.sel(step=sub.step).values)
    fin = toy.two_param(eps=0.2, z0=[0.1, 0.3], T0=1.7, steps=100, record_every=None)
    np.testing.assert_array_equal(fin.z.values, full.z.isel(step=[0, -1]).values)
    np.testing.assert_array_equal(fin.final_T.values, full.T.isel(step=-1).values)
    h_full = toy.hierarchy(q=[1.0, 0.5, -0.4], w0=[0.3, 0.3, 0.6], z0=0.2, steps=30)
    h_sub = toy.hierarchy(q=[1.0, 0.5, -0.4], w0=[0.3, 0.3, 0.6], z0=0.2, steps=30, record_every=None)
    np.testing.assert_array_equal(h_sub.w.values, h_full.w.isel(step=[0, -1]).values)


def test_chunking_and_order_invariance():
    eps = np.array([0.05, 0.1, 0.5, 1.0])
    z0 = np.linspace(-0.4, 0.4, 9)
    T0 = np.linspace(1.0, 3.9, 50)
    zg, Tg = np.meshgrid(z0, T0, indexing="ij")
    big = toy.two_param(eps=eps, z0=xr.DataArray(zg.ravel(), dims="init"), T0=xr.DataArray(Tg.ravel(), dims="init"),
                        steps=300, record_every=10)
    sub = toy.two_param(eps=eps[::-1][:3], z0=xr.DataArray(zg.ravel()[::-1][5:200], dims="init"),
                        T0=xr.DataArray(Tg.ravel()[::-1][5:200], dims="init"), steps=300, record_every=10)
    bz = big.z.transpose("eps", "init", "step").values
    sz = sub.z.transpose("eps", "init", "step").values
    ref = bz[::-1][:3][:, ::-1][:, 5:200]
    np.testing.assert_array_equal(sz, ref)
    np.testing.assert_array_equal(sub.diverged_at.transpose("eps", "init").values,
                                  big.diverged_at.transpose("eps", "init").values[::-1][:3][:, ::-1][:, 5:200])


def test_float32():
    a = toy.two_param(eps=0.1, z0=0.1, T0=1.9, steps=50, dtype="float32")
    b = toy.two_param(eps=0.1, z0=0.1, T0=1.9, steps=50)
    assert a.z.dtype == np.float32 and a.final_T.dtype == np.float32
    np.testing.assert_allclose(a.T.values, b.T.values, rtol=1e-4)
    c = toy.one_datapoint(Q=[1.0, -0.1], theta0=[1.0, 0.5], eta=0.5, steps=20, dtype=np.float32)
    assert c.theta.dtype == np.float32
    eosdyn.check_dataset(a)
    eosdyn.check_dataset(c)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, name", [
    (lambda: toy.two_param(eps=0.0, z0=0.1, T0=1.5, steps=3), "eps"),
    (lambda: toy.two_param(eps=1.5, z0=0.1, T0=1.5, steps=3), "eps"),
    (lambda: toy.two_param(eps=[0.1, np.nan], z0=0.1, T0=1.5, steps=3), "eps"),
    (lambda: toy.two_param(a=0.5, z0=0.1, T0=1.5, steps=3), "a must"),
    (lambda: toy.two_param(a=-1.0, z0=0.1, T0=1.5, steps=3), "a must"),
    (lambda: toy.two_param(eps=0.1, a=10.0, z0=0.1, T0=1.5, steps=3), "exactly one"),
    (lambda: toy.two_param(z0=0.1, T0=1.5, steps=3), "exactly one"),
    (lambda: toy.two_param(eps=0.1, z0=0.5, T0=0.5, steps=3), "z0, T0"),
    (lambda: toy.two_param(eps=0.1, z0=-0.5, T0=0.05, steps=3), "z0, T0"),
    (lambda: toy.two_param(a=-3.0, z0=0.1, T0=1.5, steps=3), "z0, T0"),
    (lambda: toy.catapult(z0=0.5, T0=0.9, steps=3), "z0, T0"),
    (lambda: toy.two_param(eps=0.1, z0=np.inf, T0=1.5, steps=3), "z0"),
    (lambda: toy.two_param(eps=0.1, z0=0.1, T0=1.5, steps=-1), "steps"),
    (lambda: toy.two_param(eps=0.1, z0=0.1, T0=1.5, steps=2.5), "steps"),
    (lambda: toy.two_param(eps=0.1, z0=0.1, T0=1.5, steps=3, record_every=0), "record_every"),
    (lambda: toy.two_param(eps=0.1, z0=0.1, T0=1.5, steps=3, tol=-1.0), "tol"),
    (lambda: toy.two_param(eps=0.1, z0=0.1, T0=1.5, steps=3, tol=1.0, diverge_loss=0.5), "tol"),
    (lambda: toy.two_param(eps=0.1, z0=0.1, T0=1.5, steps=3, diverge_loss=0.0), "diverge_loss"),
    (lambda: toy.two_param(eps=0.1, z0=0.1, T0=1.5, steps=3, stop=True), "stop"),
    (lambda: toy.hierarchy_flow(q=[1.0], w0=[1.0], z0=0.1, times=[0.0], tol=np.nan), "tol"),
    (lambda: toy.two_param(eps=0.1, z0=0.1, T0=1.5, steps=3, dtype="int32"), "dtype"),
    (lambda: toy.two_param(eps=xr.DataArray([0.1, 0.2], dims="init"), z0=0.1,
                           T0=xr.DataArray([1.5, 1.6, 1.7], dims="init"), steps=3), "mismatched"),
    (lambda: toy.two_param(eps=[[0.1]], z0=0.1, T0=1.5, steps=3), "eps"),
    (lambda: toy.one_datapoint(Q=[1.0, -0.1], theta0=[1.0, 0.5], eta=0.0, steps=3), "eta"),
    (lambda: toy.one_datapoint(Q=[1.0, -0.1], theta0=[1.0, 0.5], eta=-1.0, steps=3), "eta"),
    (lambda: toy.one_datapoint(Q=[1.0, -0.1], theta0=[1.0, 0.5], eta=np.inf, steps=3), "eta"),
    (lambda: toy.one_datapoint(Q=[1.0, -0.1], theta0=[1.0, 0.5, 2.0], eta=0.5, steps=3), "theta0"),
    (lambda: toy.one_datapoint(Q=[[1.0, 0.2], [0.0, 1.0]], theta0=[1.0, 0.5], eta=0.5, steps=3), "symmetric"),
    (lambda: toy.one_datapoint(Q=np.ones((2, 3)), theta0=[1.0, 0.5], eta=0.5, steps=3), "Q must"),
    (lambda: toy.one_datapoint_flow(Q=[1.0], theta0=[1.0], eta=0.5, times=[1.0, 0.5]), "times"),
    (lambda: toy.hierarchy(q=[1.0, -0.5], w0=[0.5, -0.1], z0=0.1, steps=3), "w0"),
    (lambda: toy.hierarchy(q=[1.0, -0.5, 0.2], T0=1.0, E_tilde=0.0, z0=0.1, steps=3), "P = 2"),
    (lambda: toy.hierarchy(q=[1.0, -0.5], T0=0.1, E_tilde=0.0, z0=0.5, steps=3), "z0, T0"),
    (lambda: toy.linear(lam=np.nan, theta0=1.0, steps=3), "lam"),
    (lambda: toy.two_param_flow(eps=0.1, z0=0.1, T0=1.5, times=[0.0, 1.0], rtol=-1.0), "rtol"),
])
def test_bad_input_raises_valueerror_naming_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# --------------------------------------------------------------------------- property tests
hyp = pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402


@given(eps=st.floats(-0.5, 1.5), E=st.floats(-3, 3), z0=st.floats(-3, 3), T0=st.floats(-1, 12),
       steps=st.integers(0, 120), every=st.sampled_from([1, 3, None]), f32=st.booleans())
def test_property_two_param_never_raises_except_valueerror(eps, E, z0, T0, steps, every, f32):
    try:
        ds = toy.two_param(eps=eps, E_tilde=E, z0=z0, T0=T0, steps=steps, record_every=every,
                           dtype="float32" if f32 else "float64")
    except ValueError as err:
        msg = str(err)
        if f32 and "not representable in float32" in msg:   # a value beyond the float32 range
            return
        assert "eps" in msg or "z0, T0" in msg
        assert not (0 < eps <= 1) or "z0, T0" in msg
        return
    assert 0 < eps <= 1
    eosdyn.check_dataset(ds)
    d = int(ds.diverged_at)
    assert (int(ds.status) == STATUS_VALUES["diverged"]) == (d >= 0)
    if d >= 0:
        assert np.isnan(ds.z.values[ds.step.values > d]).all() and int(ds.steps_taken) == d
    else:
        assert np.isfinite(ds.z.values).all() and np.isfinite(ds.T.values).all()


@given(P=st.integers(1, 4), eta=st.floats(1e-3, 5.0), scale=st.floats(0.01, 10.0), seed=st.integers(0, 2**16),
       E=st.floats(-5, 5), steps=st.integers(0, 60))
def test_property_one_datapoint_and_hierarchy(P, eta, scale, seed, E, steps):
    rng = np.random.default_rng(seed)
    R = _orth(rng, P)
    q = rng.uniform(-2, 2, P)
    Q = (R * q) @ R.T
    Q = 0.5 * (Q + Q.T)
    theta = scale * rng.normal(size=P)
    gd = toy.one_datapoint(Q=Q, theta0=theta, E=E, eta=eta, steps=steps)
    eosdyn.check_dataset(gd)
    qq, w, z0 = _eig_inputs(Q, theta, eta, E)
    hi = toy.hierarchy(q=qq, w0=w, z0=z0, steps=steps)
    eosdyn.check_dataset(hi)
    for ds in (gd, hi):
        d = int(ds.diverged_at)
        if d >= 0:
            assert np.isnan(ds.z.values[ds.step.values > d]).all()
    # where both stay finite and moderate, they agree (the maps are the same dynamics)
    if int(gd.diverged_at) < 0 and int(hi.diverged_at) < 0 and float(abs(gd.z).max()) < 1.0 and float(gd.T.max()) < 3.0 and steps <= 30:
        assert _rel(gd.z, hi.z) <= 1e-9


# --------------------------------------------------------------------------- conventions, NetCDF, provenance
def _all_datasets():
    rng = np.random.default_rng(5)
    Q, theta = _setup(rng, 3, 0.5, 0.1)
    return [
        toy.two_param(eps=[0.1, 0.5], E_tilde=0.0, z0=xr.DataArray([0.1, 0.9], dims="init"),
                      T0=xr.DataArray([1.9, 4.0], dims="init"), steps=40),
        toy.two_param(a=[-2.0, -3.0], E_tilde=0.5, z0=0.1, T0=0.6, steps=30, record_every=None),
        toy.catapult(E_tilde=0.1, z0=[0.2, 0.9], T0=5.0, steps=25, record_every=5),
        toy.linear(lam=[0.5, 2.5], theta0=1.0, steps=10, stop="batch"),
        toy.two_param(eps=0.1, z0=xr.DataArray([0.1, 0.9], dims="init"), T0=xr.DataArray([1.5, 4.0], dims="init"),
                      steps=400, stop="member", record_every=3),
        toy.hierarchy(q=[1.0, -0.3, 0.5], w0=[0.6, 0.3, 0.2], z0=[0.1, 0.2], steps=20),
        toy.hierarchy(q=[1.0, -0.3], z0=0.1, T0=[1.2, 1.5], E_tilde=0.1, steps=20, record_every=None, dtype="float32"),
        toy.one_datapoint(Q=Q, theta0=np.stack([theta, 2 * theta]), E=[0.0, 0.1], eta=0.5, steps=15),
        toy.two_param_flow(eps=[0.1, 0.2], z0=0.1, T0=1.0, times=[0.0, 0.5, 2.0]),
        toy.hierarchy_flow(q=[1.0, -0.3, 0.5], w0=[0.6, 0.3, 0.2], z0=0.1, times=[0.0, 1.0]),
        toy.one_datapoint_flow(Q=Q, theta0=theta, E=0.1, eta=[0.1, 0.5], times=[0.0, 1.0, 3.0]),
    ]


def test_datasets_conform_roundtrip_and_regenerate(tmp_path):
    for i, ds in enumerate(_all_datasets()):
        eosdyn.check_dataset(ds)
        assert "step" in ds.dims or "time" in ds.dims
        if ds.attrs["model"] != "linear":
            assert ("E" if "one_datapoint" in ds.attrs["model"] else "E_tilde") in ds.coords
        path = tmp_path / f"ds{i}.nc"
        eosdyn.to_netcdf(ds, path)
        back = eosdyn.open_dataset(path)
        assert back.identical(ds), ds.attrs["model"]
        again = regenerate(ds)
        again.attrs["history"] = ds.attrs["history"]
        assert again.identical(ds), ds.attrs["model"]


def test_dataset_layout_contract():
    ds = toy.two_param(eps=0.1, E_tilde=0.0, z0=[0.1, 0.2], T0=[1.5, 1.9, 2.1], steps=3)
    assert ds.z.dims == ("z0", "T0", "step") and ds["step"].dtype == np.int64
    assert ds["eps"].ndim == 0 and ds["E_tilde"].ndim == 0 and float(ds["lam"]) == -0.1
    for v in ("diverged_at", "converged_at", "steps_taken"):
        assert ds[v].dtype == np.int64
    assert ds.status.dtype == np.int8 and "diverged" not in ds
    assert ds.attrs["model"] == "two_param"


@given(a=st.floats(-20, 20), E=st.floats(-2, 2), z0=st.floats(-2, 2), T0=st.floats(-1, 8),
       steps=st.integers(0, 200), stop=st.sampled_from(["never", "member", "batch"]),
       every=st.sampled_from([1, 5, None]))
def test_property_two_param_a_and_stop(a, E, z0, T0, steps, stop, every):
    try:
        ds = toy.two_param(a=a, E_tilde=E, z0=z0, T0=T0, steps=steps, stop=stop,
                           record_every=every, tol=0.5e-16)
    except ValueError as err:
        msg = str(err)
        assert msg.startswith("a must") or msg.startswith("z0, T0")
        assert msg.startswith("z0, T0") == (a >= 1 or a < -1)
        return
    assert a >= 1 or a < -1
    eosdyn.check_dataset(ds)
    last = int(ds.step[-1])
    assert last <= steps
    d, c = int(ds.diverged_at), int(ds.converged_at)
    status = int(ds.status)
    if d >= 0:
        assert status == STATUS_VALUES["diverged"] and int(ds.steps_taken) == d
    elif c >= 0:
        assert status == STATUS_VALUES["converged"]
    else:
        # the record grid is 0, k, 2k, ... (record_every=k), so the last recorded step is the last
        # multiple of k; every step (k=1) or step 0 and the run's last step (None) end at ``steps``
        grid_last = steps if every in (1, None) else steps - steps % every
        assert status == STATUS_VALUES["max_steps"] and last in (grid_last, 0)
        assert int(ds.steps_taken) == steps
    if stop != "never" and (d >= 0 or c >= 0):
        assert int(ds.steps_taken) == (d if d >= 0 else c)  # a batch of one stops at its fate


def test_parameter_space_and_hierarchy_chunk_invariant():
    rng = np.random.default_rng(9)
    Q, theta = _setup(rng, 4, 0.5, 0.0)
    thetas = theta[None, :] * np.linspace(0.5, 1.3, 9)[:, None]
    a = toy.one_datapoint(Q=Q, theta0=thetas, eta=[0.5, 1.0], steps=40)
    b = toy.one_datapoint(Q=Q, theta0=thetas[::-1][2:6], eta=1.0, steps=40)
    np.testing.assert_array_equal(b.theta.values, a.theta.sel(eta=1.0).values[::-1][2:6])


# --------------------------------------------------------------------------- safety regressions
import subprocess  # noqa: E402
import sys  # noqa: E402

from eosdyn.kernels.integrate import solve_batch  # noqa: E402

_DIV, _FAIL, _MAX = STATUS_VALUES["diverged"], STATUS_VALUES["failed"], STATUS_VALUES["max_steps"]


@pytest.mark.timeout(60)
def test_flow_huge_initial_state_is_flagged_not_hung():
    ds = toy.one_datapoint_flow(Q=[1.0, -0.1], theta0=[[1.0, 0.5], [1e200, 1e200]], eta=0.1, times=[0.0, 5.0])
    eosdyn.check_dataset(ds)
    assert ds.status.values.tolist() == [_MAX, _DIV]
    assert ds.t_stop.values.tolist() == [5.0, 0.0]
    assert np.isnan(ds.theta.isel(init=1, time=1)).all() and np.isfinite(ds.theta.isel(init=0)).all()


@pytest.mark.timeout(60)
def test_flow_to_1e300_stops_within_its_budget():
    ds = toy.two_param_flow(eps=0.1, z0=0.1, T0=1.5, times=[0.0, 1e300], max_evals=2000)
    assert int(ds.status) == _FAIL and 0.0 < float(ds.t_stop) < 1e300
    assert np.isnan(float(ds.z.isel(time=1))) and float(ds.z.isel(time=0)) == 0.1
    assert ds.attrs["max_evals"] == 2000


@pytest.mark.parametrize("call", [
    lambda: toy.one_datapoint_flow(Q=[1.0, -0.1], theta0=[1.0, 0.5], eta=1e300, times=[0.0, 5.0]),
    lambda: toy.two_param_flow(eps=0.1, z0=-1e200, T0=1e201, times=[0.0, 1.0]),
])
@pytest.mark.timeout(60)
def test_diverging_flows_are_flagged_members(call):
    ds = call()
    eosdyn.check_dataset(ds)
    assert int(ds.status) in (_DIV, _FAIL) and bool(np.isfinite(ds.diverged_at)) == (int(ds.status) == _DIV)
    assert float(ds.t_stop) < float(ds.time[-1]) and np.isnan(float(ds.z.isel(time=-1)))
    assert np.isnan(float(ds.converged_at))
    flags = dict(zip(ds.status.attrs["flag_values"].tolist(), ds.status.attrs["flag_meanings"].split()))
    assert flags[_FAIL] == "failed"


def test_flow_blowup_is_located_at_the_norm():
    # dy/dt = y², y(0) = 1: y = 1/(1 − t) crosses 1e6 at t = 1 − 1e-6 (independent truth)
    y, status, t_stop = solve_batch(lambda t, y: y * y, np.ones((2, 1)), [0.0, 0.5, 2.0], [(), ()], diverge_norm=1e6)
    assert status.tolist() == [_DIV, _DIV] and np.allclose(t_stop, 1 - 1e-6, rtol=0, atol=1e-9)
    assert abs(y[0, 1, 0] - 2.0) < 1e-10 and np.isnan(y[:, 2]).all()
    y, status, t_stop = solve_batch(lambda t, y: -y, np.ones((1, 1)), [0.0, 1.0], [()], max_evals=5)
    assert status.tolist() == [_FAIL] and np.isnan(y[0, 1, 0])


@pytest.mark.parametrize("kw, name", [
    (dict(rtol=float("nan")), "rtol"), (dict(atol=float("nan")), "atol"), (dict(rtol=0.0), "rtol"),
    (dict(atol=-1.0), "atol"), (dict(rtol=-1.0), "rtol"), (dict(max_evals=0), "max_evals"),
    (dict(max_evals=1.5), "max_evals"), (dict(method="Euler"), "method"),
    (dict(times=[0.0, float("inf")]), "times"), (dict(times=[0.0, 2.0, 1.0]), "times"),
    (dict(times=np.arange(2_000_001.0)), "times"),
])
def test_flow_options_are_validated(kw, name):
    args = dict(eps=0.1, z0=0.1, T0=1.5, times=[0.0, 1.0]) | kw
    with pytest.raises(ValueError, match=name):
        toy.two_param_flow(**args)
    with pytest.raises(ValueError, match=name):
        solve_batch(lambda t, y: -y, np.ones((1, 1)), args["times"], [()],
                    **{k: v for k, v in kw.items() if k != "times"})


_CRASHERS = [
    "maps.hierarchy_rhs(0.1, np.ones(10**6), np.ones(10**6), np.empty(1))",
    "maps.one_datapoint_observe(np.ones(10**6), np.eye(2), 0.0, 0.5, np.empty(10**6))",
    "maps.hierarchy_step(0.1, np.ones(2), np.ones(10**6))",
    "maps.pair_batch(0, *[np.ones(3)] * 4, 100, 1, 5e-27, 1e10, 2.0, False, np.empty((3, 2)), "
    "np.empty((3, 2)), np.empty((6, 3)), np.empty(3, np.int64), np.empty(3, np.int64))",
    "maps.pair_batch(1, *[np.ones(3)] * 4, 100, 1, 5e-27, 1e10, 2.0, False, np.empty((3, 200)), "
    "np.empty((3, 200)), np.empty((6, 1)), np.empty(3, np.int64), np.empty(3, np.int64))",
    "maps.vector_batch(0, np.ones((3, 3)), np.ones((3, 5)), np.empty((0, 0)), 50, 1, 5e-27, 1e10, 2.0, False, "
    "np.empty((3, 51, 3)), np.empty((3, 3, 51)), np.empty((3, 3, 3)), np.empty((3, 3, 3)), "
    "np.empty(3, np.int64), np.empty(3, np.int64))",
    "maps.vector_batch(1, np.ones((3, 2)), np.ones((3, 2)), np.eye(3), 50, 1, 5e-27, 1e10, 2.0, False, "
    "np.empty((3, 51, 2)), np.empty((3, 3, 51)), np.empty((3, 3, 2)), np.empty((3, 3, 3)), "
    "np.empty(3, np.int64), np.empty(3, np.int64))",
    "maps.vector_batch(1, np.ones((3, 2)), np.ones((3, 2)), np.eye(2), 50, 1, 5e-27, 1e10, 2.0, False, "
    "np.empty((3, 51, 2)), np.empty((3, 3, 51)), np.empty((3, 3, 2)), np.empty((3, 3, 3)), "
    "np.empty(3, np.int32), np.empty(3, np.int64))",
]


@pytest.mark.timeout(120)
def test_kernels_with_mis_sized_arrays_raise_not_crash():
    code = ("import numpy as np\nfrom eosdyn.kernels import maps\nbad = 0\n"
            + "".join(f"try:\n    {c}\nexcept ValueError as e:\n    print('ValueError:', e)\nelse:\n    bad += 1\n"
                      for c in _CRASHERS)
            + "raise SystemExit(1 if bad == 0 else 2)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=110)
    assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)  # a signal gives a negative code
    assert res.stdout.count("ValueError:") == len(_CRASHERS)
    for word in ("dw", "Q must", "q must", "rec_x", "out must", "prm (q)", "shared must", "div_at"):
        assert word in res.stdout


def test_float32_inputs_must_be_representable():
    with pytest.raises(ValueError, match="eta"):
        toy.one_datapoint(Q=[1.0, -0.1], theta0=[1.0, 0.5], eta=1e-50, steps=3, dtype="float32")
    with pytest.raises(ValueError, match="theta0"):
        toy.one_datapoint(Q=[1.0, -0.1], theta0=[1e39, 0.5], eta=0.5, steps=3, dtype="float32")
    with pytest.raises(ValueError, match="z0"):
        toy.two_param(eps=0.1, z0=1e-50, T0=1.5, steps=3, dtype="float32")
    with pytest.raises(ValueError, match="lam"):
        toy.linear(lam=1e40, theta0=1.0, steps=3, dtype="float32")
    with pytest.raises(ValueError, match="tol"):
        toy.linear(lam=1.5, theta0=1.0, steps=3, tol=1e-50, dtype="float32")
    ds = toy.one_datapoint(Q=[1.0, -0.1], theta0=[1.0, 0.5], eta=1e-30, steps=3, dtype="float32")
    assert np.isfinite(ds.loss).all() and np.isfinite(ds.z).all()


def test_loss_overflow_is_divergence_never_converged_with_nonfinite():
    # z = ½ θᵀQθ = 5e159, η = 1e-20: z̃ = 5e139 and T = 1e140 are below the state threshold
    # (8.2e149) but the loss ½ z² = 1.25e319 overflows
    ds = toy.one_datapoint(Q=[1.0, -0.1], theta0=[1e80, 0.0], eta=1e-20, steps=3)
    assert int(ds.status) == _DIV and int(ds.diverged_at) == 0
    gf = toy.one_datapoint_flow(Q=[1e40, -0.1], theta0=[1e60, 0.0], eta=1e-20, times=[0.0, 1.0])
    assert int(gf.status) == _DIV and float(gf.t_stop) == 0.0 and np.isnan(gf.loss).all()


@pytest.mark.parametrize("steps", [2**63, 1e20, 10**12, "5", 1.5, -1, True, float("nan")])
def test_steps_out_of_range_names_steps(steps):
    with pytest.raises(ValueError, match="steps"):
        toy.two_param(eps=0.1, z0=0.1, T0=1.5, steps=steps)


def test_steps_memory_estimate_and_dtype():
    with pytest.raises(ValueError, match=r"steps: the recorded output .* TiB"):
        toy.one_datapoint(Q=[1.0, -0.1], theta0=[1.0, 0.5], eta=0.5, steps=10**12)
    with pytest.raises(ValueError, match="dtype"):
        toy.two_param(eps=0.1, z0=0.1, T0=1.5, steps=5, dtype="bogus")
    ds = toy.two_param(eps=0.1, z0=0.1, T0=1.5, steps=np.array(5))
    assert ds.sizes["step"] == 6


def test_nearly_symmetric_Q_is_accepted_relative_to_its_norm():
    Q = np.array([[1e6, 1.0 + 1e-7], [1.0, 1.0]])  # asymmetry 1e-7 = 1e-13 of max |Q|
    ds = toy.one_datapoint(Q=Q, theta0=[1e-3, 0.5], eta=1e-7, steps=2)
    assert ds.Q.values[0, 1] == ds.Q.values[1, 0]
    with pytest.raises(ValueError, match="Q must be symmetric"):
        toy.one_datapoint(Q=[[1.0, 0.1], [0.0, 1.0]], theta0=[1.0, 0.5], eta=0.5, steps=2)


def test_check_int():
    from eosdyn._validate import check_int
    assert check_int("n", np.array(5), 0) == 5 and check_int("n", np.int32(3)) == 3 and check_int("n", 4.0) == 4
    for bad in ("5", 1.5, True, np.array([5]), float("inf"), None):
        with pytest.raises(ValueError, match=r"n must be an integer in \[0, inf\)"):
            check_int("n", bad, 0)


def test_solve_batch_flags_solver_linear_algebra_failures():
    """Radau factorises a Jacobian: an infinite one must give a failed member, not an exception."""
    from eosdyn.conventions import STATUS_VALUES
    from eosdyn.kernels.integrate import solve_batch

    def rhs(t, y):
        return np.array([np.inf if abs(y[0]) > 1.5 else -y[0] * 1e300])

    y, status, t_stop = solve_batch(rhs, np.array([[1.0], [2.0]]), np.array([0.0, 1.0]), [(), ()],
                                    method="Radau", max_evals=50)
    assert set(status.tolist()) <= {STATUS_VALUES["failed"], STATUS_VALUES["diverged"]}
    assert np.isnan(y[:, 1]).all() and np.all(t_stop < 1.0)
