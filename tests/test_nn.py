"""The torch pipeline on a tiny network (float64), checked against explicit Jacobians, eigh,
finite differences and the exact second-order Taylor expansion."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import eosdyn  # noqa: E402
from eosdyn import taylor  # noqa: E402
from eosdyn.nn.linalg import lanczos, lobpcg  # noqa: E402
from eosdyn.nn.network import NetworkOps, make_network, numpy_operator  # noqa: E402
from eosdyn.nn.pipeline import projections_to_dataset  # noqa: E402
from eosdyn.nn.projections import compute_projections  # noqa: E402

pytestmark = pytest.mark.nn
f64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny problems: one thread avoids OpenMP spin-waits on a shared 2-core machine
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _ops(n=64, d=12, width=16, c=3, seed=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=f64)
    y = torch.randint(0, c, (n,), generator=g)
    t = torch.nn.functional.one_hot(y, c).to(f64)
    net = make_network(in_features=d, width=width, out_features=c, seed=seed, dtype=f64)
    return NetworkOps(net, x, t)


@pytest.fixture(scope="module")
def tiny():
    return _ops()


@pytest.fixture(scope="module")
def small():
    # N = 16 * 2 = 32 outputs < P = 418 parameters: all NTK modes can be kept
    return _ops(n=16, d=6, width=16, c=2, seed=5)


def _jacobian(ops, theta):
    return torch.func.jacrev(ops.residual)(theta).numpy()


def test_parameter_count_and_default_init():
    net = make_network(seed=0)
    assert sum(p.numel() for p in net.parameters()) == 656810
    # PyTorch default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    w = net[1].weight.detach().numpy()
    assert np.abs(w).max() <= 1 / np.sqrt(3072) and np.abs(w).max() > 0.9 / np.sqrt(3072)
    same = make_network(seed=0)
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), same.parameters()))
    with pytest.raises(ValueError, match="width"):
        make_network(width=0)


def test_ntk_matvec_matches_explicit_jacobian(tiny):
    th = tiny.theta0()
    J = _jacobian(tiny, th)
    V = np.random.default_rng(0).standard_normal((tiny.n_outputs, 3))
    op = numpy_operator(lambda B: tiny.ntk_matvec(th, B), f64)
    np.testing.assert_allclose(op(V), J @ (J.T @ V), rtol=1e-11, atol=1e-11)


def test_lanczos_and_lobpcg_match_eigh_of_explicit_ntk(tiny):
    th = tiny.theta0()
    J = _jacobian(tiny, th)
    ev = np.linalg.eigvalsh(J @ J.T)[::-1]
    op = numpy_operator(lambda B: tiny.ntk_matvec(th, B), f64)
    rng = np.random.default_rng(1)
    r = lobpcg(op, tiny.n_outputs, k=2, block=4, rng=rng, tol=1e-10)
    assert r.converged
    np.testing.assert_allclose(r.eigenvalues, ev[:2], rtol=1e-8)
    lz = lanczos(op, tiny.n_outputs, m=60, rng=rng)
    np.testing.assert_allclose(lz.eigenvalues[:2], ev[:2], rtol=1e-8)
    # warm start from the converged block needs far fewer matvecs than the cold solve
    warm = lobpcg(op, tiny.n_outputs, k=2, block=4, X0=r.block_vectors, rng=rng, tol=1e-10)
    assert warm.matvecs <= 4 + 4 and warm.matvecs < r.matvecs
    np.testing.assert_allclose(warm.eigenvalues, ev[:2], rtol=1e-8)


def test_loss_hessian_top_eigenvalue(tiny):
    th = tiny.theta0()
    H = torch.func.hessian(tiny.loss)(th).numpy()
    top = np.linalg.eigvalsh(H)[-1]
    op = numpy_operator(lambda U: tiny.loss_hvp(th, U), f64)
    r = lobpcg(op, tiny.n_params, k=1, block=3, rng=np.random.default_rng(2), tol=1e-9, maxiter=500)
    np.testing.assert_allclose(r.eigenvalues[0], top, rtol=1e-8)


def test_projections_against_finite_differences_and_explicit_spectra(tiny):
    th = tiny.theta0()
    k = 4
    p = compute_projections(tiny, th, eta=0.05, k=k, rng=np.random.default_rng(0), ntk_lanczos_m=80,
                            q1_lanczos_m=120, n_extreme=2, pair_chunk=5)
    J = _jacobian(tiny, th)
    w, V = np.linalg.eigh(J @ J.T)
    w, V = w[::-1][:k], V[:, ::-1][:, :k]
    np.testing.assert_allclose(p["lam"], w, rtol=1e-8)
    assert p["u_orthogonality"] < 1e-8
    # the eigenvectors match eigh up to sign; fix the signs through z̃
    z = tiny.residual(th).numpy()
    sgn = np.sign(V.T @ z) * np.sign(p["z_tilde"])
    V = V * sgn
    np.testing.assert_allclose(p["z_tilde"], V.T @ z, rtol=1e-7, atol=1e-10)
    U = (J.T @ V) / np.sqrt(w)
    # Q̃_ijl = v_i · Q(u_j, u_l) by central finite differences of the network
    h = 1e-3
    f = lambda a, b: tiny.f(th + torch.from_numpy(a * U[:, j] + b * U[:, l])).numpy()  # noqa: E731
    for j, l in [(0, 0), (0, 2), (1, 3), (3, 3)]:
        d2 = (f(h, h) - f(h, -h) - f(-h, h) + f(-h, -h)) / (4 * h * h)
        np.testing.assert_allclose(p["Q_tilde"][:, j, l], V.T @ d2, rtol=1e-5, atol=1e-6 * np.abs(V.T @ d2).max())
    assert np.allclose(p["Q_tilde"], p["Q_tilde"].transpose(0, 2, 1))
    # Q1 = Hessian of v1ᵀ f: extreme eigenvalues vs eigh of the explicit Hessian
    v1 = torch.from_numpy(V[:, 0])
    H1 = torch.func.hessian(lambda t: torch.dot(v1, tiny.f(t)))(th).numpy()
    e = np.linalg.eigvalsh(H1)
    np.testing.assert_allclose(p["q1_eig"][[0, 1]], e[::-1][:2], rtol=1e-7)
    np.testing.assert_allclose(p["q1_eig"][[2, 3]], e[:2][::-1], rtol=1e-7)


@pytest.fixture(scope="module")
def full_modes(small):
    th = small.theta0()
    k = small.n_outputs
    p = compute_projections(small, th, eta=0.05, k=k, rng=np.random.default_rng(0), ntk_lanczos_m=k,
                            q1_lanczos_m=10, n_extreme=2, pair_chunk=64)
    p["t0"], p["seconds"] = 7, 0.0
    J = _jacobian(small, th)
    w, V = np.linalg.eigh(J @ J.T)
    w, V = w[::-1], V[:, ::-1]
    V = V * np.sign(V.T @ small.residual(th).numpy()) * np.sign(p["z_tilde"])
    return small, th, p, V


def test_all_modes_quadratic_model_equals_exact_second_order_taylor(full_modes):
    ops, th, p, V = full_modes
    lam, Qt, z0 = p["lam"], p["Q_tilde"], p["z_tilde"]
    U = torch.from_numpy((_jacobian(ops, th).T @ V) / np.sqrt(lam))
    rng = np.random.default_rng(4)
    for scale in (1e-2, 1e-1):
        phi = scale * rng.standard_normal(lam.size)
        model = z0 + np.sqrt(lam) * phi + 0.5 * np.einsum("ijl,j,l->i", Qt, phi, phi)
        d = U @ torch.from_numpy(phi)
        jd = torch.func.jvp(ops.residual, (th,), (d,))[1]
        d2 = torch.func.jvp(lambda t: torch.func.jvp(ops.f, (t,), (d,))[1], (th,), (d,))[1]
        exact = V.T @ (ops.residual(th) + jd + 0.5 * d2).numpy()
        np.testing.assert_allclose(model, exact, rtol=1e-9, atol=1e-9 * np.abs(exact).max())


def test_taylor_simulate_first_step_and_cubic_error_of_a_real_step(full_modes):
    ops, th, p, V = full_modes
    eta = 0.05
    ds = projections_to_dataset([p])
    eosdyn.check_dataset(ds)
    sim = taylor.simulate(ds, steps=2)
    eosdyn.check_dataset(sim)
    assert sim.network_step.values.tolist() == [7, 8, 9]  # t0 = 7: the model's step 1 is the network's step 8
    z_model = V @ sim.z_tilde.sel(step=1).values  # back to output space (all modes)
    # the real GD step δ = -(η/n) Jᵀ z lies in span(u) when all modes are kept
    z0 = ops.residual(th)
    g = torch.func.vjp(ops.residual, th)[1](z0)[0] / ops.n
    taylor2 = lambda s: (z0 + torch.func.jvp(ops.residual, (th,), (-s * eta * g,))[1]  # noqa: E731
                         + 0.5 * torch.func.jvp(lambda t: torch.func.jvp(ops.f, (t,), (-s * eta * g,))[1],
                                                (th,), (-s * eta * g,))[1]).numpy()
    np.testing.assert_allclose(z_model, taylor2(1.0), rtol=1e-9, atol=1e-10 * np.abs(z_model).max())
    # error of the expansion against the real network scales as ‖δ‖³
    errs = []
    for s in (40.0, 20.0, 10.0):
        real = ops.residual(th - s * eta * g).numpy()
        errs.append(np.linalg.norm(real - taylor2(s)))
    ratios = np.array(errs[:-1]) / np.array(errs[1:])
    assert np.all(np.abs(ratios - 8.0) < 1.0), ratios
    # sharpness of the reduced NTK at t0 is η λ_1 / n
    np.testing.assert_allclose(sim.sharpness.sel(step=0), eta * p["lam"][0] / ops.n, rtol=1e-12)


def test_pipeline_end_to_end_checkpoint_resume(tmp_path):
    from eosdyn.nn.pipeline import BuildConfig, build

    rng = np.random.default_rng(0)
    m = 4
    idx = np.concatenate([b * 10000 + np.arange(m) for b in range(5)]).astype(np.int32)
    np.savez(tmp_path / "fake.npz", train_x=rng.integers(0, 256, (5 * m, 3072), dtype=np.uint8),
             train_y=rng.integers(0, 10, 5 * m).astype(np.uint8), train_index=idx)
    cfg = BuildConfig(n=20, width=8, eta=0.05, max_steps=50, window_threshold=1e-4, window_steps=8, probe_every=2,
                      hessian_every=3, checkpoint_every=2, k=3, ntk_lanczos_m=40, q1_lanczos_m=8, n_extreme=2,
                      t0_offsets=(0, 5, -1), dtype="float64", threads=1)
    kw = dict(config=cfg, progress=False, log=lambda s: None)
    full = build(tmp_path / "fake.npz", workdir=tmp_path / "a", **kw)
    assert build(tmp_path / "fake.npz", workdir=tmp_path / "b", stop_at_step=3, **kw) is None
    assert build(tmp_path / "fake.npz", workdir=tmp_path / "b", stop_at_step=5, **kw) is None
    resumed = build(tmp_path / "fake.npz", workdir=tmp_path / "b", **kw)
    for a, b in zip(full, resumed):
        eosdyn.check_dataset(a)
        np.testing.assert_array_equal(a.loss.values, b.loss.values)  # GD resumes bit for bit
        # eigen-solves restart from fresh random vectors: equal to the solver tolerance
        np.testing.assert_allclose(a.sharpness.values[:, 0], b.sharpness.values[:, 0], rtol=1e-6)
        np.testing.assert_allclose(a.sharpness.values, b.sharpness.values, rtol=1e-3)
    traj, proj = full
    assert traj.attrs["window_start"] == 0 and traj.attrs["window_end"] == 8
    assert proj.t0.values.tolist() == [0, 5, 8]
    # stored values are the network's: loss at step 0 and λ₁ vs eigh of the explicit NTK at step 0
    from eosdyn.nn.data import load_cifar

    d = load_cifar(tmp_path / "fake.npz", n=20)
    ops = NetworkOps(make_network(in_features=3072, width=8, out_features=10, seed=0, dtype=f64),
                     torch.from_numpy(d.x), torch.from_numpy(d.targets))
    th = ops.theta0()
    J = _jacobian(ops, th)
    ev = np.linalg.eigvalsh(J @ J.T)[::-1]
    np.testing.assert_allclose(traj.sharpness.sel(step=0).values, 0.05 * ev[:2] / 20, rtol=1e-6)
    np.testing.assert_allclose(traj.loss.sel(step=0), float(ops.loss(th)), rtol=1e-12)
    np.testing.assert_allclose(proj.ntk_eigenvalue.sel(t0=0).values[0], ev[0], rtol=1e-6)
    np.testing.assert_allclose(proj.ntk_eigenvalue.sel(t0=0).values, ev[:3], rtol=1e-3)
    np.testing.assert_allclose(traj.z1.sel(step=0), proj.z_tilde.sel(t0=0, mode=0), rtol=1e-2)
    for name, ds in (("t.nc", traj), ("p.nc", proj)):
        eosdyn.to_netcdf(ds, tmp_path / name)
        assert eosdyn.open_dataset(tmp_path / name).identical(ds)


def test_snapshots_let_t0_be_chosen_after_the_run(tmp_path):
    """``snapshot_every`` saves θ in the window; ``project`` computes the t0 projections afterwards,
    equal (to the eigen-solver tolerance) to those computed during the run at the same step."""
    from eosdyn.nn.cli import main as nn_main
    from eosdyn.nn.pipeline import BuildConfig, build, project, snapshot_steps

    rng = np.random.default_rng(1)
    m = 4
    idx = np.concatenate([b * 10000 + np.arange(m) for b in range(5)]).astype(np.int32)
    npz = tmp_path / "fake.npz"
    np.savez(npz, train_x=rng.integers(0, 256, (5 * m, 3072), dtype=np.uint8),
             train_y=rng.integers(0, 10, 5 * m).astype(np.uint8), train_index=idx)
    cfg = BuildConfig(n=20, width=8, eta=0.05, max_steps=50, window_threshold=1e-4, window_steps=6, probe_every=2,
                      hessian_every=3, checkpoint_every=2, k=3, ntk_lanczos_m=40, q1_lanczos_m=8, n_extreme=2,
                      t0_offsets=(0, 4), snapshot_every=2, dtype="float64", threads=1)
    traj, proj = build(npz, workdir=tmp_path / "w", config=cfg, progress=False, log=lambda s: None)
    assert snapshot_steps(tmp_path / "w") == [0, 2, 4, 6]
    assert proj.t0.values.tolist() == [0, 4]
    with pytest.raises(ValueError, match=r"t0s=\[3\].*snapshot"):
        project(npz, [3], workdir=tmp_path / "w", log=lambda s: None)
    traj2, proj2 = project(npz, [2, 6], workdir=tmp_path / "w", out_dir=tmp_path / "out", log=lambda s: None)
    assert proj2.t0.values.tolist() == [0, 2, 4, 6]
    # v₁'s sign follows the tracked one: z̃₁ = the trajectory's z₁ at every t0
    np.testing.assert_allclose(proj2.z_tilde.sel(mode=0).values, traj.z1.sel(step=proj2.t0.values).values,
                               rtol=1e-3, atol=1e-12)  # tracking tolerance 1e-4
    assert traj2.equals(traj)
    assert {k: v for k, v in traj2.attrs.items() if k != "history"}.keys() == traj.attrs.keys() - {"history"}
    # snapshot at 4 reproduces the in-run projections at t0 = 4 (fresh random start vectors)
    import shutil

    w2 = tmp_path / "w2"
    shutil.copytree(tmp_path / "w", w2)
    state_p = proj2.sel(t0=4)
    ck = torch.load(w2 / "checkpoint.pt", weights_only=False)
    ck["projections"] = [p for p in ck["projections"] if p["t0"] != 4]
    torch.save(ck, w2 / "checkpoint.pt")
    _, proj3 = project(npz, [4], workdir=w2, log=lambda s: None)
    np.testing.assert_allclose(proj3.ntk_eigenvalue.sel(t0=4).values, state_p.ntk_eigenvalue.values, rtol=1e-6)
    np.testing.assert_allclose(np.abs(proj3.z_tilde.sel(t0=4).values), np.abs(state_p.z_tilde.values),
                               rtol=1e-5, atol=1e-9)
    # the sharpness stored for t0 = 6 is the trajectory's at step 6
    np.testing.assert_allclose(proj2.sharpness.sel(t0=6, mode=0), traj.sharpness.sel(step=6, mode=0), rtol=1e-5)
    # larger Krylov space for the Q1 extremes only: ≥ as extreme (Ritz values are inner bounds)
    traj4, proj4 = project(npz, [2, 6], workdir=tmp_path / "w", out_dir=tmp_path / "out4", spectra_only=True,
                           q1_lanczos_m=16, log=lambda s: None)
    assert proj4.q1_eigenvalue.sel(t0=6).values[0] >= proj2.q1_eigenvalue.sel(t0=6).values[0] * (1 - 1e-9)
    assert proj4.q1_eigenvalue.sel(t0=6).values[-1] <= proj2.q1_eigenvalue.sel(t0=6).values[-1] * (1 - 1e-9)
    np.testing.assert_array_equal(proj4.Q_tilde.values, proj2.Q_tilde.values)
    assert np.isfinite(proj4.q1_residual.sel(t0=6)).all()
    assert '"q1_lanczos_m": 16' in proj4.attrs["eosdyn_config"]
    with pytest.raises(ValueError, match="t0s=\\[5\\]"):
        project(npz, [5], workdir=tmp_path / "w", spectra_only=True, log=lambda s: None)
    # CLI: `eosdyn nn project`
    assert nn_main(["nn", "project", "--cifar", str(npz), "--workdir", str(tmp_path / "w"), "--out",
                    str(tmp_path / "cli"), "--t0", "2"]) == 0
    assert (tmp_path / "cli" / "cifar_fcn_projections.nc").exists()


def test_feedback_directions_against_finite_differences_and_exact_taylor(tiny):
    """Feedback directions w_f ⊥ span(u) from Q_i u_j: orthonormal, the stored fraction of ‖Q₁u₁‖²
    outside span(u) matches the explicit Hessian, Q_cross / Q_feedback match finite differences,
    and the (k+m)-parameter model equals the exact second-order Taylor expansion along span(u, w)."""
    th = tiny.theta0()
    k, r = 4, 2
    p = compute_projections(tiny, th, eta=0.05, k=k, rng=np.random.default_rng(0), ntk_lanczos_m=80,
                            q1_lanczos_m=20, n_extreme=2, pair_chunk=5, feedback=r)
    m = p["Q_cross"].shape[2]
    assert p["Q_cross"].shape == (k, k, m) and p["Q_feedback"].shape == (k, m, m) and 1 <= m <= r * r
    assert p["w_orthogonality"] < 1e-8
    J = _jacobian(tiny, th)
    w, V = np.linalg.eigh(J @ J.T)
    w, V = w[::-1][:k], V[:, ::-1][:, :k]
    V = V * np.sign(V.T @ tiny.residual(th).numpy()) * np.sign(p["z_tilde"])
    U = (J.T @ V) / np.sqrt(w)
    # explicit Hessians of v_i ᵀ f rebuild the directions
    H = [torch.func.hessian(lambda t, i=i: torch.dot(torch.from_numpy(V[:, i]), tiny.f(t)))(th).numpy()
         for i in range(r)]
    q1u1 = H[0] @ U[:, 0]
    out = q1u1 - U @ (U.T @ q1u1)
    np.testing.assert_allclose(p["q1u1_outside"], (out @ out) / (q1u1 @ q1u1), rtol=1e-7)
    raw = np.stack([H[i] @ U[:, j] for i, j in p["feedback_sources"]])
    raw -= (raw @ U) @ U.T
    W, _ = np.linalg.qr(raw.T)  # same span, Gram-Schmidt order: equal up to signs
    from eosdyn.nn.projections import feedback_directions

    Wt, src, _ = feedback_directions(tiny, th, V, torch.from_numpy(np.ascontiguousarray(U.T)), r)
    Wn = Wt.numpy().T
    np.testing.assert_allclose(np.abs(Wn.T @ W), np.eye(m), atol=1e-8)
    # Q_cross, Q_feedback by central finite differences
    h = 1e-3

    def fd(a, b):
        f = lambda s, t: tiny.f(th + torch.from_numpy(s * a + t * b)).numpy()  # noqa: E731
        return V.T @ ((f(h, h) - f(h, -h) - f(-h, h) + f(-h, -h)) / (4 * h * h))

    for j, f_ in [(0, 0), (2, m - 1)]:
        ref = fd(U[:, j], Wn[:, f_])
        np.testing.assert_allclose(p["Q_cross"][:, j, f_], ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
    ref = fd(Wn[:, 0], Wn[:, m - 1])
    np.testing.assert_allclose(p["Q_feedback"][:, 0, m - 1], ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
    # the (k + m)-parameter quadratic model = exact second-order expansion along span(u, w), projected on V
    p["t0"], p["seconds"] = 0, 0.0
    ds = projections_to_dataset([p])
    eosdyn.check_dataset(ds)
    Qm, J0, z0, _, _ = taylor.reduced_model(ds, feedback=m)
    assert Qm.shape == (k, k + m, k + m) and J0.shape == (k, k + m)
    B = torch.from_numpy(np.hstack([U, Wn]))
    rng = np.random.default_rng(5)
    for scale in (1e-2, 1e-1):
        phi = scale * rng.standard_normal(k + m)
        model = z0 + J0 @ phi + 0.5 * np.einsum("ijl,j,l->i", Qm, phi, phi)
        d = B @ torch.from_numpy(phi)
        jd = torch.func.jvp(tiny.residual, (th,), (d,))[1]
        d2 = torch.func.jvp(lambda t: torch.func.jvp(tiny.f, (t,), (d,))[1], (th,), (d,))[1]
        exact = V.T @ (tiny.residual(th) + jd + 0.5 * d2).numpy()
        np.testing.assert_allclose(model, exact, rtol=1e-8, atol=1e-8 * np.abs(exact).max())
    sim = taylor.simulate(ds, feedback=m, steps=3)
    eosdyn.check_dataset(sim)
    # flipping the sign of a mode (v_i, u_i → −v_i, −u_i) is a symmetry of the reduced model
    from eosdyn.nn.projections import flip_mode

    q = {key: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v) for key, v in p.items()}
    flipped = taylor.simulate(projections_to_dataset([flip_mode(flip_mode(q, 0), 2)]), feedback=m, steps=3)
    np.testing.assert_allclose(flipped.sharpness.values, sim.sharpness.values, rtol=1e-12)
    np.testing.assert_allclose(flipped.z_tilde.values * [-1, 1, -1, 1], sim.z_tilde.values, rtol=1e-12, atol=1e-15)
    assert int(sim.P) == k + m and int(sim.D) == k
    with pytest.raises(ValueError, match="feedback"):
        taylor.simulate(ds, feedback=m + 1, steps=3)
    with pytest.raises(ValueError, match="feedback"):
        taylor.simulate(ds.drop_vars(["Q_cross", "Q_feedback"]), feedback=1, steps=3)
