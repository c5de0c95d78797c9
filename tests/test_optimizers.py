"""Optimizers (momentum, Nesterov, RMSProp, Adam), minibatch SGD and the sharpness variants of the
QRM kernel (issue 14), against the independent explicit-θ reference ``tests/optim_reference.py``."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import eosdyn
from eosdyn.analysis import final_sharpness_stats
from eosdyn.kernels.qrm import minibatches, run_gd
from eosdyn.theory.optim import optimizer_edge

import optim_reference as ref

D, P, SZ, SJ = 8, 5, 1.5, 0.6  # D > P: the loss settles at a positive minimum (well-conditioned z)
STEPS = 200

CASES = [
    ("gd", 0.1, {}),
    ("momentum", 0.1, {"momentum": 0.5}),
    ("momentum", 0.03, {"momentum": 0.9}),
    ("nesterov", 0.1, {"momentum": 0.5}),
    ("nesterov", 0.05, {"momentum": 0.9}),
    ("rmsprop", 0.001, {"beta2": 0.99, "epsilon": 1e-2}),
    ("rmsprop", 0.0005, {"beta2": 0.9, "epsilon": 1e-3}),
    ("adam", 0.01, {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}),
    ("adam", 0.003, {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6}),
]
# (regimes chosen away from chaotic sign-descent near the minimum: there the explicit-θ reference
# itself amplifies a 1e-15 perturbation of its input beyond 1e-12 within 200 steps)


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def _normrel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _variants(opt):
    return ("hessian_sharpness",) + (("preconditioned_sharpness",) if opt in ("rmsprop", "adam") else ())


@pytest.mark.parametrize("opt,eta,hyper", CASES)
def test_trajectory_matches_explicit_theta_reference(opt, eta, hyper):
    seeds = [0, 1]
    ds = eosdyn.qrm.sweep(D=D, P=P, sigma_z=SZ, sigma_J=SJ, eta=eta, seeds=seeds, steps=STEPS, record_every=1,
                          tol=0, optimizer=opt, **hyper, sharpness_variants=_variants(opt))
    assert (ds.status == eosdyn.conventions.STATUS_VALUES["max_steps"]).all()
    for s in seeds:
        y, G, Q = ref.problem(s, D=D, P=P, sigma_z=SZ, sigma_J=SJ)
        r = ref.run(opt, y, G, Q, eta=eta, steps=STEPS, record=("loss", "sharpness") + _variants(opt), **hyper)
        for k in ("loss", "sharpness") + _variants(opt):
            got = ds[k].sel(seed=s).values
            assert _rel(got, r[k]) < 1e-12, (k, _rel(got, r[k]))
        assert _rel(ds.final_loss.sel(seed=s), r["loss"][-1]) < 1e-12
        for k in _variants(opt):
            assert _rel(ds[f"final_{k}"].sel(seed=s), r[k][-1]) < 1e-12


@pytest.mark.parametrize("opt,eta,hyper", [CASES[2], CASES[4], CASES[5], CASES[8]])
def test_kernel_state_matches_reference(opt, eta, hyper):
    """The kernel's final (z, J) equal f(θ), J(θ) of the explicit-θ run."""
    y, G, Q = ref.problem(3, D=D, P=P, sigma_z=SZ, sigma_J=SJ)
    res = run_gd(Q, G[None], y[None], eta, STEPS, tol=0, return_J=True, optimizer=opt, **hyper)
    r = ref.run(opt, y, G, Q, eta=eta, steps=STEPS, record=("z", "J"), **hyper)
    assert _normrel(res.final_z[0], r["z"][-1]) < 1e-12
    assert _normrel(res.final_J[0], r["J"][-1]) < 1e-12


@pytest.mark.parametrize("opt,eta,hyper", [("gd", 0.1, {}), ("momentum", 0.05, {"momentum": 0.7}),
                                           ("adam", 0.01, {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6})])
def test_minibatch_matches_reference(opt, eta, hyper):
    b, s, steps = 3, 2, 150
    ds = eosdyn.qrm.sweep(D=D, P=P, sigma_z=SZ, sigma_J=SJ, eta=eta, seeds=[s], steps=steps, record_every=1, tol=0,
                          optimizer=opt, **hyper, batch_size=b,
                          sharpness_variants=_variants(opt) + ("batch_sharpness",))
    batches = minibatches(np.random.SeedSequence(s, spawn_key=(3,)), D, b, steps)
    y, G, Q = ref.problem(s, D=D, P=P, sigma_z=SZ, sigma_J=SJ)
    r = ref.run(opt, y, G, Q, eta=eta, steps=steps, batches=list(batches),
                record=("loss", "sharpness") + _variants(opt), **hyper)
    for k in ("loss", "sharpness", "hessian_sharpness"):
        assert _rel(ds[k].sel(seed=s).values, r[k]) < 1e-12, k
    if opt == "adam":  # the last step's preconditioner uses the next (unrun) batch here
        got = ds["preconditioned_sharpness"].sel(seed=s).values[:-1]
        assert _rel(got, r["preconditioned_sharpness"][:-1]) < 1e-12
    # batch sharpness: the Monte Carlo mean over the documented batches of each step
    mc = eosdyn.kernels.qrm._Optimizer(opt, {}, D, b, np.random.SeedSequence(s, spawn_key=(3,)), 32, np.float64)
    for t in (0, 57, steps):
        idx, _ = mc.batches(t)
        rr = ref.run(opt, y, G, Q, eta=eta, steps=t, batches=list(batches[:t]), record=("theta",), **hyper)
        want = ref.batch_sharpness(rr["theta"][-1], y, G, Q, eta, list(idx))
        assert _rel(ds.batch_sharpness.sel(seed=s).isel(step=t), want) < 1e-12


def test_batch_sharpness_at_full_batch_is_the_hessian_quotient():
    ds = eosdyn.qrm.sweep(D=D, P=P, sigma_z=SZ, sigma_J=SJ, eta=0.2, seeds=[1], steps=30, record_every=10, tol=0,
                          batch_size=D, sharpness_variants=["batch_sharpness"])
    assert ds.attrs["eosdyn_roles"].startswith("sharpness: sharpness")  # b = D is full batch
    full = eosdyn.qrm.sweep(D=D, P=P, sigma_z=SZ, sigma_J=SJ, eta=0.2, seeds=[1], steps=30, record_every=10, tol=0)
    xr.testing.assert_identical(ds.loss, full.loss)  # batch_size = D is plain GD, bit for bit
    y, G, Q = ref.problem(1, D=D, P=P, sigma_z=SZ, sigma_J=SJ)
    r = ref.run("gd", y, G, Q, eta=0.2, steps=30, record=("theta",))
    for i, t in enumerate((0, 10, 20, 30)):
        th = r["theta"][t]
        g, H = ref.gradient(th, y, G, Q), ref.hessian(th, y, G, Q)
        assert _rel(ds.batch_sharpness.sel(seed=1).isel(step=i), 0.2 * (g @ H @ g) / (g @ g)) < 1e-12


def test_gd_option_is_the_default_bit_for_bit():
    kw = dict(D=6, P=9, sigma_z=[0.5, 2.0], sigma_J2=0.3, eta=[0.5, 1.0], seeds=3, steps=300, record_every=7)
    a = eosdyn.qrm.sweep(**kw)
    b = eosdyn.qrm.sweep(**kw, optimizer="gd", batch_size=None)
    for v in a.data_vars:
        assert a[v].equals(b[v])
    assert a.attrs["eosdyn_config"] == b.attrs["eosdyn_config"]  # a GD run keeps today's configuration
    assert float(a.edge) == 2.0 and "optimizer" not in a.attrs
    # heavy ball with beta = 0 is GD (same maths, another code path): equal to rounding
    c = eosdyn.qrm.sweep(**kw, optimizer="momentum", momentum=0.0)
    np.testing.assert_allclose(c.final_sharpness, a.final_sharpness, rtol=1e-9)


@pytest.mark.parametrize("opt,hyper", [("momentum", {"momentum": [0.0, 0.5]}),
                                       ("adam", {"beta1": [0.5, 0.9], "epsilon": 1e-6}),
                                       ("gd", {})])
def test_minibatch_runs_do_not_depend_on_chunking_or_scheduler(opt, hyper):
    kw = dict(D=6, P=8, sigma_z=[0.5, 1.5], sigma_J=0.8, eta=0.05 if opt == "adam" else 0.4, seeds=4, steps=60,
              record_every=5, batch_size=2, optimizer=opt, **hyper)
    base = eosdyn.qrm.sweep(**kw, scheduler="synchronous")
    for opts in ({"chunk_size": 3, "scheduler": "threads"}, {"chunk_size": 1, "scheduler": "synchronous"},
                 {"chunk_size": 2, "scheduler": "threads"}):
        other = eosdyn.qrm.sweep(**kw, **opts)
        for v in base.data_vars:
            assert base[v].equals(other[v]), (v, opts)
    sub = eosdyn.qrm.sweep(**{**kw, "seeds": [2, 3]})
    for v in base.data_vars:
        assert base[v].sel(seed=[2, 3]).equals(sub[v]), v


def test_stop_batch_and_float32_with_optimizers():
    kw = dict(D=6, P=8, sigma_z=[0.5, 1.0], sigma_J=0.8, eta=0.15, seeds=2, steps=400, optimizer="nesterov",
              momentum=0.5, batch_size=4)
    ds = eosdyn.qrm.sweep(**kw, stop="batch", tol=1e-10)
    fine = ds.status != eosdyn.conventions.STATUS_VALUES["diverged"]
    assert int(fine.sum()) >= 2
    assert (ds.steps_taken.where(fine) == int(ds.steps_taken.max())).sum() == fine.sum()
    d32 = eosdyn.qrm.sweep(**kw, dtype="float32", tol=1e-10)
    d64 = eosdyn.qrm.sweep(**kw, tol=1e-10)
    assert d32.final_sharpness.dtype == np.float32
    np.testing.assert_allclose(d32.sharpness.isel(step=0), d64.sharpness.isel(step=0), rtol=1e-5)


def test_resume_fingerprint_includes_the_optimizer(tmp_path):
    kw = dict(D=5, P=7, sigma_z=1.0, sigma_J=0.8, eta=0.3, seeds=2, steps=80, optimizer="momentum")
    eosdyn.qrm.sweep(**kw, momentum=0.5, resume=tmp_path / "r")
    with pytest.raises(ValueError, match="different sweep configuration"):
        eosdyn.qrm.sweep(**kw, momentum=0.8, resume=tmp_path / "r")
    again = eosdyn.qrm.sweep(**kw, momentum=0.5, resume=tmp_path / "r")  # the stored chunks
    fresh = eosdyn.qrm.sweep(**kw, momentum=0.5)
    for v in fresh.data_vars:
        assert again[v].equals(fresh[v]), v


@pytest.mark.parametrize("opt,hyper", [("gd", {}), ("momentum", {"momentum": 0.0}), ("momentum", {"momentum": 0.5}),
                                       ("momentum", {"momentum": 0.9}), ("nesterov", {"momentum": 0.3}),
                                       ("nesterov", {"momentum": 0.9})])
def test_pure_quadratic_converges_below_the_edge_and_diverges_above(opt, hyper):
    """Q = 0, one curvature λ: η λ just below the optimizer's edge converges, just above diverges."""
    edge = optimizer_edge(opt, **hyper)
    lam = np.array([1.0, 0.3])
    Q = np.zeros((2, 2, 2))
    J0 = np.diag(np.sqrt(lam))[None]
    z0 = np.array([[1.0, 1.0]])
    for factor, want in ((0.99, "converged"), (1.01, "diverged")):
        eta = factor * edge / lam[0]
        res = run_gd(Q, J0, z0, eta, 20000, tol=1e-20, diverge_loss=1e12, optimizer=opt, **hyper)
        assert int(res.status[0]) == eosdyn.conventions.STATUS_VALUES[want], (factor, res.status)


def test_edge_coordinate_and_analysis_use_it():
    ds = eosdyn.qrm.sweep(D=4, P=6, sigma_z=0.3, sigma_J=0.6, eta=0.02, seeds=3, steps=40, optimizer="adam",
                          beta1=[0.5, 0.9])
    np.testing.assert_allclose(ds.edge.values, [6.0, 38.0])
    assert ds.edge.dims == ("beta1",)
    assert "final_preconditioned_sharpness" in ds and "preconditioned_sharpness" in ds
    st = final_sharpness_stats(ds, n_boot=50)
    med = ds.final_preconditioned_sharpness.median("seed")
    np.testing.assert_allclose(st.median_sharpness, med)
    np.testing.assert_allclose(st.deviation, ds.edge - med)
    mom = eosdyn.qrm.sweep(D=4, P=6, sigma_z=0.3, sigma_J=0.6, eta=0.3, seeds=2, steps=40, optimizer="momentum",
                           momentum=[0.0, 0.9])
    np.testing.assert_allclose(mom.edge, [2.0, 3.8])
    y = eosdyn.analysis.eos_coordinate(mom)
    np.testing.assert_allclose(y, mom.sharpness - mom.edge)


@pytest.mark.parametrize("kw,match", [
    ({"optimizer": "sgd"}, "optimizer must be one of 'gd', 'momentum', 'nesterov', 'rmsprop', 'adam'"),
    ({"optimizer": "momentum", "momentum": 1.0}, r"momentum must be finite and in \[0, 1\)"),
    ({"optimizer": "momentum", "momentum": [0.5, -0.1]}, r"momentum must be finite and in \[0, 1\)"),
    ({"optimizer": "nesterov", "momentum": float("nan")}, "momentum"),
    ({"optimizer": "adam", "beta1": 1.0}, r"beta1 must be finite and in \[0, 1\)"),
    ({"optimizer": "rmsprop", "beta2": 1.5}, r"beta2 must be finite and in \[0, 1\)"),
    ({"optimizer": "adam", "epsilon": 0.0}, r"epsilon must be finite and in \(0, inf\)"),
    ({"optimizer": "adam", "momentum": 0.9}, "momentum is not a hyperparameter of optimizer 'adam'"),
    ({"momentum": 0.9}, "momentum is not a hyperparameter of optimizer 'gd'"),
    ({"batch_size": 0}, r"batch_size must be None \(full batch\) or an integer in \[1, 4\]"),
    ({"batch_size": 5}, r"batch_size must be None \(full batch\) or an integer in \[1, 4\]"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"sharpness_variants": ["preconditioned_sharpness"]}, "preconditioned_sharpness needs optimizer"),
    ({"sharpness_variants": ["curvature"]}, "sharpness_variants must name some of"),
])
def test_bad_options_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        eosdyn.qrm.sweep(D=4, P=6, sigma_z=0.3, sigma_J=0.6, seeds=1, steps=5, **kw)


def test_bad_options_of_the_kernel():
    Q = np.zeros((2, 3, 3))
    J0, z0 = np.ones((1, 2, 3)), np.ones((1, 2))
    with pytest.raises(ValueError, match="momentum must be a single real number"):
        run_gd(Q, J0, z0, 0.1, 5, optimizer="momentum", momentum=[0.1, 0.2])
    with pytest.raises(TypeError, match="epsilon"):
        run_gd(Q, J0, z0, 0.1, 5, optimizer="adam", epsilon="1e-8")
    with pytest.raises(ValueError, match="batch_samples"):
        run_gd(Q, J0, z0, 0.1, 5, batch_size=1, batch_samples=0)


def _projections():
    rng = np.random.default_rng(4)
    k = 4
    G = rng.standard_normal((k, k, k))
    Qt = 0.5 * (G + G.transpose(0, 2, 1))
    return xr.Dataset({"ntk_eigenvalue": (("t0", "mode"), [[3.0e3, 2.0e3, 1.0e3, 5.0e2]]),
                       "z_tilde": (("t0", "mode"), [rng.standard_normal(k)]),
                       "Q_tilde": (("t0", "mode", "mode_j", "mode_l"), 30.0 * Qt[None])},
                      coords={"t0": [100], "eta": 0.05, "n_examples": 100})


@pytest.mark.parametrize("opt,hyper", [("momentum", {"momentum": 0.6}), ("nesterov", {"momentum": 0.3}),
                                       ("adam", {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6})])
def test_taylor_model_optimizers_match_reference(opt, hyper):
    from eosdyn.models.taylor import reduced_model

    proj = _projections()
    Q, J0, z0, eta, _ = reduced_model(proj)
    ds = eosdyn.taylor.simulate(proj, steps=100, optimizer=opt, **hyper, sharpness_variants=["hessian_sharpness"])
    r = ref.run(opt, z0, J0, Q, eta=eta, steps=100, record=("loss", "sharpness", "hessian_sharpness"), **hyper)
    # the loss falls to 1e-22 (k = P: interpolation): compared against its scale; the sharpness per step
    assert _normrel(ds.loss.values, r["loss"]) < 1e-12
    for k in ("sharpness", "hessian_sharpness"):
        assert _rel(ds[k].values, r[k]) < 1e-12, k
    assert float(ds.edge) == pytest.approx(optimizer_edge(opt, **{h: v for h, v in hyper.items()
                                                                   if h in ("momentum", "beta1")}), rel=1e-15)
    gd = eosdyn.taylor.simulate(proj, steps=100)
    assert float(gd.edge) == 2.0 and "optimizer" not in gd.attrs
    mb = eosdyn.taylor.simulate(proj, steps=50, batch_size=2, seed=3)
    assert mb.attrs["eosdyn_roles"].split("; ")[1] == "sharpness: batch_sharpness"
    again = eosdyn.taylor.simulate(proj, steps=50, batch_size=2, seed=3)
    for v in mb.data_vars:
        assert mb[v].equals(again[v]), v


@pytest.mark.parametrize("opt,eta,hyper", [("momentum", 0.2, {"momentum": 0.5}), ("nesterov", 0.2, {"momentum": 0.9}),
                                           ("rmsprop", 0.01, {"beta2": 0.99, "epsilon": 1e-3}),
                                           ("adam", 0.01, {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6})])
def test_one_datapoint_optimizers_match_reference(opt, eta, hyper):
    """The one-datapoint model is the D = 1 QRM around θ₀: y = z(θ₀), G = (Qθ₀)ᵀ, Q."""
    Q = np.array([[1.0, 0.2], [0.2, -0.3]])
    th0, E = np.array([1.0, 0.5]), 0.3
    ds = eosdyn.toy.one_datapoint(Q=Q, theta0=th0, E=E, eta=eta, steps=200, tol=0, optimizer=opt, **hyper)
    y, G = np.array([0.5 * (th0 @ Q @ th0 - E)]), (Q @ th0)[None]
    rec = ("theta", "sharpness") + (("preconditioned_sharpness",) if opt in ("rmsprop", "adam") else ())
    r = ref.run(opt, y, G, Q[None], eta=eta, steps=200, record=rec, **hyper)
    assert _normrel(ds.theta.values, th0 + r["theta"]) < 1e-12
    assert _rel(ds.sharpness.values, r["sharpness"]) < 1e-12
    if opt in ("rmsprop", "adam"):
        assert _rel(ds.preconditioned_sharpness.values, r["preconditioned_sharpness"]) < 1e-12
        assert ds.attrs["eosdyn_roles"].split("; ")[2] == "sharpness: preconditioned_sharpness"
    assert float(ds.edge) == pytest.approx(optimizer_edge(opt, **{k: v for k, v in hyper.items()
                                                                   if k in ("momentum", "beta1")}), rel=1e-15)
    gd = eosdyn.toy.one_datapoint(Q=Q, theta0=th0, E=E, eta=eta, steps=5)
    assert float(gd.edge) == 2.0


def test_one_datapoint_refuses_bad_hyperparameters():
    with pytest.raises(ValueError, match=r"momentum must be finite and in \[0, 1\)"):
        eosdyn.toy.one_datapoint(Q=[1.0], theta0=[1.0], eta=0.1, steps=3, optimizer="momentum", momentum=1.2)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        eosdyn.toy.one_datapoint(Q=[1.0], theta0=[1.0], eta=0.1, steps=3, optimizer="lion")


@pytest.mark.parametrize("opt,eta,hyper", [("momentum", 0.3, {"momentum": 0.6}), ("adam", 0.02, {"beta1": 0.8}),
                                           ("nesterov", 0.3, {"momentum": 0.5})])
def test_optimizer_state_survives_compaction(opt, eta, hyper):
    """Members that finish early (converged / diverged) are removed from the batch with their
    optimizer state; every other member ends as it would alone (to GEMM rounding)."""
    rng = np.random.default_rng(7)
    Dq, Pq, Bq = 4, 7, 9
    G = rng.standard_normal((Dq, Pq, Pq))
    Q = (G + G.transpose(0, 2, 1)) / np.sqrt(2)
    J0 = rng.standard_normal((Bq, Dq, Pq)) * np.linspace(0.05, 0.9, Bq)[:, None, None]
    z0 = rng.standard_normal((Bq, Dq)) * np.linspace(0.01, 2.0, Bq)[:, None]
    kw = dict(tol=1e-14, diverge_loss=1e6, optimizer=opt, **hyper, return_J=True,
              sharpness_variants=("hessian_sharpness",))
    res = run_gd(Q, J0, z0, eta, 300, compact_fraction=0.0, **kw)
    assert len(set(res.steps_taken.tolist())) > 2  # members stop at different steps: compaction happened
    for b in range(Bq):
        one = run_gd(Q, J0[b:b + 1], z0[b:b + 1], eta, 300, **kw)
        assert one.status[0] == res.status[b] and one.steps_taken[0] == res.steps_taken[b]
        if res.status[b] != eosdyn.conventions.STATUS_VALUES["diverged"]:
            np.testing.assert_allclose(res.final_J[b], one.final_J[0], rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(res.final_variants["hessian_sharpness"][b],
                                       one.final_variants["hessian_sharpness"][0], rtol=1e-9)
