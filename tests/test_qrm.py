"""Random quadratic regression models: kernel, sweep, gradient flow.

Truth used here: a plain per-trajectory einsum implementation of Eq. 25-26
written below, singular values of J (LAPACK gesdd, a different algorithm from
the eigvalsh used by the kernel), the analytic flow derivatives of
eosdyn.theory.qrm.lambda_max_derivatives, GD with a small step as a second
method for the flow, and bitwise identity across chunkings/schedulers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

import eosdyn
from eosdyn.conventions import STATUS_VALUES
from eosdyn.kernels.qrm import lambda_max, q_operator, run_gd
from eosdyn.models import qrm


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """The machine is shared: spinning BLAS threads on a loaded box slow everything down."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def ref_gd(Q, J, z, eta, steps):
    """Eq. 25-26 for one trajectory, written with einsum (the test's own reference)."""
    J = J.copy()
    z = z.copy()
    zs, Js = [z.copy()], [J.copy()]
    for _ in range(steps):
        g = np.einsum("ai,a->i", J, z)
        Qg = np.tensordot(g, Q, axes=([0], [1]))  # Q(g, ·)_aj = Σ_i Q_aij g_i
        z = z - eta * np.einsum("ai,i->a", J, g) + 0.5 * eta**2 * np.einsum("aj,j->a", Qg, g)
        J = J - eta * Qg
        zs.append(z.copy())
        Js.append(J.copy())
    return np.array(zs), np.array(Js)


def sv_lambda_max(J):
    return np.linalg.svd(J, compute_uv=False)[..., 0] ** 2


# ----------------------------------------------------------------------------- kernel
def test_q_operator_contracts_first_parameter_index(rng):
    D, P = 3, 5
    G = rng.standard_normal((D, P, P))
    Q = (G + G.transpose(0, 2, 1)) / math.sqrt(2)
    g = rng.standard_normal((2, P))
    M = (g @ q_operator(Q)).reshape(2, D, P)
    np.testing.assert_allclose(M, np.einsum("aij,bi->baj", Q, g), rtol=1e-13, atol=1e-13)


def test_kernel_matches_einsum_reference_500_steps():
    """Batched kernel vs per-trajectory einsum, D=30, P=60, 500 steps, ≤ 1e-10 relative.

    The compared members stay below the edge (no chaotic amplification of rounding);
    the batch also holds diverging members, so compaction is exercised.
    """
    D, P, steps = 30, 60, 500
    sz = np.array([0.1, 0.2, 3.0, 0.15, 10.0])
    sj = np.sqrt(np.array([0.05, 0.2, 0.2, 0.4, 0.1]))
    Q, J0, z0 = qrm.initial_state(11, D=D, P=P, sigma_z=sz, sigma_J=sj)
    res = run_gd(Q, J0, z0, 1.0, steps, 1, tol=1e-300, record_z=True, return_J=True,
                 compact_fraction=0.0)
    assert res.status.tolist() == [STATUS_VALUES["max_steps"], STATUS_VALUES["max_steps"],
                                   STATUS_VALUES["diverged"], STATUS_VALUES["max_steps"],
                                   STATUS_VALUES["diverged"]]
    for b in (0, 1, 3):
        zs, Js = ref_gd(Q, J0[b], z0[b], 1.0, steps)
        err = np.max(np.abs(res.z[b] - zs) / np.max(np.abs(zs), axis=1, keepdims=True))
        assert err <= 1e-10, (b, err)
        np.testing.assert_allclose(res.final_J[b], Js[-1], rtol=0, atol=1e-10 * np.abs(Js[-1]).max())
        # recorded sharpness vs singular values of the reference J at every step
        np.testing.assert_allclose(res.sharpness[b], sv_lambda_max(Js), rtol=1e-8)
        np.testing.assert_allclose(res.loss[b], 0.5 * np.sum(zs**2, axis=1), rtol=1e-10)


def test_kernel_learning_rate_and_float32(rng):
    """η ≠ 1 (reference with the same η) and float32 close to float64 over a short run."""
    D, P = 8, 16
    G = rng.standard_normal((D, P, P))
    Q = (G + G.transpose(0, 2, 1)) / math.sqrt(2)
    J0 = 0.05 * rng.standard_normal((3, D, P))
    z0 = 0.05 * rng.standard_normal((3, D))
    res = run_gd(Q, J0, z0, 0.7, 50, 1, tol=1e-300, record_z=True)
    for b in range(3):
        zs, _ = ref_gd(Q, J0[b], z0[b], 0.7, 50)
        np.testing.assert_allclose(res.z[b], zs, rtol=1e-11, atol=1e-13 * np.abs(zs).max())
    r32 = run_gd(Q.astype(np.float32), J0.astype(np.float32), z0.astype(np.float32), 0.7, 50, 1,
                 tol=1e-30, record_z=True)
    assert r32.z.dtype == np.float32
    np.testing.assert_allclose(r32.z, res.z, rtol=0, atol=1e-5 * np.abs(res.z).max())


def test_kernel_fates_and_nan_after_divergence(rng):
    D, P = 6, 12
    G = rng.standard_normal((D, P, P))
    Q = (G + G.transpose(0, 2, 1)) / math.sqrt(2)
    J0 = np.stack([0.2 * rng.standard_normal((D, P)), 3.0 * rng.standard_normal((D, P)),
                   0.05 * rng.standard_normal((D, P))])
    z0 = np.stack([0.01 * rng.standard_normal(D), 1.0 * rng.standard_normal(D), np.zeros(D)])
    res = run_gd(Q, J0, z0, 1.0, 3000, 1)
    assert res.status[0] in (STATUS_VALUES["converged"],)
    assert res.status[1] == STATUS_VALUES["diverged"]
    assert res.status[2] == STATUS_VALUES["converged"] and res.steps_taken[2] == 0
    d = res.diverged_at[1]
    assert 1 <= d <= 3000 and res.steps_taken[1] == d
    assert np.all(np.isnan(res.loss[1, d:])) and np.all(np.isfinite(res.loss[1, :d]))
    assert np.isnan(res.final_sharpness[1]) and np.isnan(res.final_loss[1])
    # converged: loss below tol at steps_taken, above before
    s0 = res.steps_taken[0]
    assert res.loss[0, s0] < 1e-12 <= res.loss[0, s0 - 1]
    assert res.diverged_at[0] == -1
    np.testing.assert_allclose(res.final_sharpness[0], res.sharpness[0, s0], rtol=1e-14)


def test_lambda_max_exact(rng):
    J = rng.standard_normal((5, 7, 4))
    np.testing.assert_allclose(lambda_max(J), sv_lambda_max(J), rtol=1e-12)
    np.testing.assert_allclose(lambda_max(J.transpose(0, 2, 1)), sv_lambda_max(J), rtol=1e-12)


def test_cycle_early_stop_is_opt_in():
    """A period-2 orbit: the map z -> -z is exact GD for Q = 0, J Jᵀ = 2 I (η = 1)."""
    D, P = 2, 2
    Q = np.zeros((D, P, P))
    J0 = np.sqrt(2.0) * np.eye(2)[None]
    z0 = np.array([[0.3, -0.2]])
    off = run_gd(Q, J0, z0, 1.0, 500)
    assert off.status[0] == STATUS_VALUES["max_steps"]
    on = run_gd(Q, J0, z0, 1.0, 500, cycle_tol=1e-8, cycle_window=20)
    assert on.status[0] == STATUS_VALUES["cycle"] and on.steps_taken[0] == 21
    np.testing.assert_allclose(on.final_sharpness[0], 2.0, rtol=1e-14)


# ----------------------------------------------------------------------------- sweep
SMALL = dict(D=10, P=20, sigma_z=[0.1, 0.3, 3.0], sigma_J2=[0.05, 0.3], steps=300)


def test_sweep_dataset_conventions_and_roundtrip(tmp_path):
    ds = eosdyn.qrm.sweep(**SMALL, seeds=[4, 1], record_every=7, record_points=[(0.3, 0.3), (3.0, 0.05)])
    eosdyn.check_dataset(ds)
    assert ds.final_sharpness.dims == ("sigma_z", "sigma_J", "seed")
    assert ds.sharpness.dims == ("sigma_z", "sigma_J", "seed", "step")
    assert ds.step.values.tolist() == list(range(0, 301, 7))
    assert ds.status.dtype == np.int8 and "flag_meanings" in ds.status.attrs
    np.testing.assert_allclose(ds.sigma_J.values ** 2, ds.sigma_J2.values, rtol=1e-15)
    assert int(ds.D) == 10 and int(ds.P) == 20 and float(ds.eta) == 1.0
    # unrecorded points are NaN, recorded ones start at the initial sharpness
    assert np.all(np.isnan(ds.sharpness.sel(sigma_z=0.1)))
    Q, J0, z0 = qrm.initial_state(4, D=10, P=20, sigma_z=[0.3], sigma_J=[math.sqrt(0.3)])
    np.testing.assert_allclose(ds.sharpness.isel(sigma_z=1, sigma_J=1).sel(seed=4, step=0),
                               sv_lambda_max(J0)[0], rtol=1e-12)
    np.testing.assert_allclose(ds.loss.isel(sigma_z=1, sigma_J=1).sel(seed=4, step=0),
                               0.5 * np.sum(z0**2), rtol=1e-14)
    # big sigma_z diverges
    assert (ds.status.sel(sigma_z=3.0) == STATUS_VALUES["diverged"]).all()
    path = tmp_path / "qrm.nc"
    eosdyn.to_netcdf(ds, path)
    assert eosdyn.open_dataset(path).identical(ds)


def test_sweep_final_sharpness_matches_kernel_and_common_random_numbers():
    ds = eosdyn.qrm.sweep(**SMALL, seeds=[5])
    Q, zh, Jh = qrm.instance(5, D=10, P=20)
    # every grid point of a seed scales the same zhat, Jhat
    Q2, J0, z0 = qrm.initial_state(5, D=10, P=20, sigma_z=[0.3, 0.1], sigma_J=[0.2, 0.4])
    np.testing.assert_array_equal(Q2, Q)
    np.testing.assert_allclose(z0[0] / z0[1], 3.0, rtol=1e-14)
    np.testing.assert_allclose(J0[1] / J0[0], 2.0, rtol=1e-14)
    np.testing.assert_allclose(z0[0], 0.3 / 10 * zh, rtol=1e-15)
    np.testing.assert_allclose(J0[0], 0.2 / 200**0.25 * Jh, rtol=1e-15)
    # symmetrisation convention: off-diagonal variance 1, diagonal variance 2
    Qb, _, _ = qrm.instance(0, D=40, P=60)
    iu = np.triu_indices(60, 1)
    assert abs(Qb[:, iu[0], iu[1]].var() - 1.0) < 0.02
    assert abs(np.einsum("aii->ai", Qb).var() - 2.0) < 0.1


def test_sweep_converged_final_sharpness_is_exact():
    ds = eosdyn.qrm.sweep(D=10, P=20, sigma_z=0.1, sigma_J2=0.05, seeds=1, steps=2000)
    assert int(ds.status.squeeze()) == STATUS_VALUES["converged"]
    Q, J0, z0 = qrm.initial_state(0, D=10, P=20, sigma_z=[0.1], sigma_J=[math.sqrt(0.05)])
    n = int(ds.steps_taken.squeeze())
    zs, Js = ref_gd(Q, J0[0], z0[0], 1.0, n)
    np.testing.assert_allclose(float(ds.final_sharpness.squeeze()), sv_lambda_max(Js[-1]), rtol=1e-10)
    assert 0.5 * np.sum(zs[-1] ** 2) < 1e-12 <= 0.5 * np.sum(zs[-2] ** 2)


def test_bitwise_chunks_and_seed_subsets():
    kw = dict(D=12, P=24, sigma_z=[0.2, 0.5, 2.0], sigma_J2=[0.05, 0.5], steps=400, record_every=50)
    one = eosdyn.qrm.sweep(**kw, seeds=4, chunk_size=4)
    four = eosdyn.qrm.sweep(**kw, seeds=4, chunk_size=1)
    for v in ("final_sharpness", "final_loss", "steps_taken", "status", "diverged_at", "sharpness", "loss"):
        np.testing.assert_array_equal(one[v].values, four[v].values)
    eight = eosdyn.qrm.sweep(**kw, seeds=8, scheduler="synchronous")
    sub = eosdyn.qrm.sweep(**kw, seeds=[3, 7])
    xr.testing.assert_identical(sub.drop_attrs(), eight.sel(seed=[3, 7]).drop_attrs())


def test_bitwise_threads_vs_process_cluster():
    distributed = pytest.importorskip("distributed")
    kw = dict(D=12, P=24, sigma_z=[0.2, 0.5], sigma_J2=[0.05, 0.5], seeds=3, steps=300)
    local = eosdyn.qrm.sweep(**kw, scheduler="threads")
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        remote = eosdyn.qrm.sweep(**kw)  # picks up the active client
    xr.testing.assert_identical(local.drop_attrs(), remote.drop_attrs())


def test_sweep_resume(tmp_path):
    kw = dict(**SMALL, seeds=3, record_every=10)
    first = eosdyn.qrm.sweep(**kw, resume=tmp_path / "run")
    files = sorted((tmp_path / "run").glob("chunk-*.nc"))
    assert len(files) == 3
    files[1].unlink()  # as if interrupted before this chunk finished
    mtimes = {f: f.stat().st_mtime_ns for f in (files[0], files[2])}
    again = eosdyn.qrm.sweep(**kw, resume=tmp_path / "run")
    assert all(f.stat().st_mtime_ns == t for f, t in mtimes.items())
    assert files[1].exists()
    xr.testing.assert_identical(first.drop_attrs(), again.drop_attrs())
    with pytest.raises(ValueError, match="different sweep"):
        eosdyn.qrm.sweep(**{**kw, "steps": 301}, resume=tmp_path / "run")


@pytest.mark.parametrize("kwargs, name", [
    (dict(D=0), "D"), (dict(P=0), "P"), (dict(D=2.5), "D"), (dict(P="3"), "P"),
    (dict(sigma_z=[-0.1, 0.2]), "sigma_z"), (dict(sigma_J2=[-1.0]), "sigma_J2"),
    (dict(eta=0.0), "eta"), (dict(eta=-1.0), "eta"), (dict(sigma_z=[]), "sigma_z"),
    (dict(seeds=[]), "seeds"), (dict(seeds=0), "seeds"), (dict(seeds=[1, 1]), "seeds"),
    (dict(steps=-1), "steps"), (dict(record_every=0), "record_every"), (dict(dtype="int32"), "dtype"),
    (dict(record_every=1, steps=10**6, max_memory="10MB"), "max_memory"),
    (dict(max_memory="lots"), "max_memory"), (dict(sigma_J=0.3), "sigma_J"),
    (dict(record_every=1, record_points=[(0.2, 0.7)]), "record_points"),
])
def test_bad_input(kwargs, name):
    base = dict(D=4, P=6, sigma_z=[0.1, 0.3], sigma_J2=[0.1], seeds=2, steps=5)
    base.update(kwargs)
    with pytest.raises(ValueError, match=name):
        eosdyn.qrm.sweep(**base)


def test_memory_estimate_is_stated():
    need = qrm.estimate_memory(D=60, P=120, n_points=400, n_seeds=100, n_record_points=400,
                               n_records=10001, itemsize=8, concurrent=2)
    # 3 recorded float64 variables x 400 points x 100 seeds x 10001 steps, built twice
    assert need > 2 * 3 * 8 * 400 * 100 * 10001
    with pytest.raises(ValueError, match="max_memory"):
        eosdyn.qrm.sweep(D=60, P=120, sigma_z=np.logspace(-1, 1, 20), sigma_J2=np.logspace(-2, 1, 20),
                         seeds=100, steps=10000, record_every=1)


def test_float32_sweep():
    ds32 = eosdyn.qrm.sweep(**SMALL, seeds=2, dtype="float32")
    ds64 = eosdyn.qrm.sweep(**SMALL, seeds=2)
    assert ds32.final_sharpness.dtype == np.float32
    eosdyn.check_dataset(ds32)
    conv = (ds64.status == STATUS_VALUES["converged"]) & (ds32.status == STATUS_VALUES["converged"])
    assert int(conv.sum()) >= 4
    np.testing.assert_allclose(ds32.final_sharpness.where(conv), ds64.final_sharpness.where(conv),
                               rtol=1e-4)


# ----------------------------------------------------------------------------- gradient flow
def test_gradient_flow_derivatives_match_theory():
    """Sharpness of the integrated flow at small t vs the analytic λ̇(0), λ̈(0)."""
    from eosdyn.theory.qrm import lambda_max_derivatives

    D, P, eta, h = 8, 16, 0.8, 1e-3
    ds = eosdyn.qrm.gradient_flow(D=D, P=P, sigma_z=2.0, sigma_J=0.7, seeds=[2], times=np.linspace(0.0, 4 * h, 5),
                                  eta=eta, rtol=1e-13, atol=1e-16)
    eosdyn.check_dataset(ds)
    Q, J0, z0 = qrm.initial_state(2, D=D, P=P, sigma_z=[2.0], sigma_J=[0.7])
    lam, dlam, ddlam = lambda_max_derivatives(J0[0], z0[0], Q, eta=eta)
    s = ds.sharpness.squeeze().values / eta
    np.testing.assert_allclose(s[0], lam, rtol=1e-12)
    c = np.polynomial.polynomial.polyfit(ds.time.values, s, 4)  # exact through degree 4
    np.testing.assert_allclose(c[1], dlam, rtol=1e-4, atol=1e-4 * abs(ddlam))
    np.testing.assert_allclose(2 * c[2], ddlam, rtol=1e-3)


def test_gradient_flow_vs_small_step_gd(tmp_path):
    """Flow at time t vs GD with step η/n for n·t steps (first-order agreement)."""
    D, P = 6, 12
    fl = eosdyn.qrm.gradient_flow(D=D, P=P, sigma_z=[0.5, 2.0], sigma_J2=0.3, seeds=1, times=np.linspace(0.0, 3.0, 4))
    path = tmp_path / "flow.nc"
    eosdyn.to_netcdf(fl, path)
    assert eosdyn.open_dataset(path).identical(fl)
    assert bool((fl.loss.diff("time") < 0).all())
    n = 2000
    gd = eosdyn.qrm.sweep(D=D, P=P, sigma_z=[0.5, 2.0], sigma_J2=0.3, seeds=1, eta=1.0 / n,
                          steps=3 * n, record_every=n, tol=1e-300)
    np.testing.assert_allclose(gd.loss.values, fl.loss.values, rtol=5e-3)
    np.testing.assert_allclose(gd.sharpness.values * n, fl.sharpness.values, rtol=5e-3)


# ----------------------------------------------------------------------------- Figure 4 phenomenology
def _phenomenology(ds, small, mid, big_z, big_j):
    conv = ds.status == STATUS_VALUES["converged"]
    init = ds.sharpness.isel(step=0)
    # small sigma_z: converges with the sharpness close to where it started
    s = ds.sel(sigma_z=small)
    assert bool(conv.sel(sigma_z=small, sigma_J=s.sigma_J[s.sigma_J2 < 0.45]).all())
    d = (s.final_sharpness - init.sel(sigma_z=small)).where(s.sigma_J2 < 0.45, drop=True)
    assert float(abs(d).median("seed").max()) < 0.1 and float(abs(d).max()) < 0.15
    assert float(s.final_sharpness.where(s.sigma_J2 < 0.45).max()) < 1.0
    # intermediate sigma_z: sharpens up to the edge of stability
    m = ds.final_sharpness.sel(sigma_z=mid).where(ds.sigma_J2 < 0.45, drop=True).median("seed")
    assert bool(((m >= 1.85) & (m <= 2.0)).all()), m.values
    assert bool((init.sel(sigma_z=mid).where(ds.sigma_J2 < 0.45, drop=True) < 0.5).all())
    # large sigma_z or large sigma_J: diverge
    assert bool((ds.status.sel(sigma_z=big_z) == STATUS_VALUES["diverged"]).all())
    assert bool((ds.status.sel(sigma_J=ds.sigma_J[ds.sigma_J2 >= big_j]) == STATUS_VALUES["diverged"]).all())


def test_figure4_phenomenology_quick():
    ds = eosdyn.qrm.sweep(D=60, P=120, sigma_z=[0.01, 0.35, 3.0], sigma_J2=[0.02, 0.1, 10.0], seeds=3,
                          steps=3000, record_every=3000)
    eosdyn.check_dataset(ds)
    _phenomenology(ds, 0.01, 0.35, 3.0, 10.0)


@pytest.mark.slow
def test_figure4_phenomenology_6x6_10_seeds():
    """D=60, P=120, 6×6 grid × 10 seeds (≈ 1 min on a free 2-core machine).

    With this ensemble (Q symmetrised as (G+Gᵀ)/√2, Eq. 29 widths) the EOS band of
    D=60, P=120 lies at σ̃_z ≈ 0.3-0.45; σ̃_z ≳ 0.6 diverges (see docs/qrm.md).
    """
    ds = eosdyn.qrm.sweep(D=60, P=120, sigma_z=[0.01, 0.1, 0.3, 1.0, 3.0, 10.0],
                          sigma_J2=[0.01, 0.02, 0.05, 0.1, 1.0, 10.0], seeds=10, steps=10000,
                          record_every=10000)
    eosdyn.check_dataset(ds)
    _phenomenology(ds, 0.01, 0.3, 1.0, 1.0)
    # the sharpening grows with sigma_z (Theorem 4.1) along the small-sigma_J rows
    med = ds.final_sharpness.sel(sigma_z=[0.01, 0.1, 0.3]).median("seed").isel(sigma_J=slice(0, 4))
    assert bool((med.diff("sigma_z") > 0).all())


# ----------------------------------------------------------------------------- sensitivity
def sensitivity(D, P, sigma_z, sigma_J2, seeds, max_steps):
    """Outcome changes under (a) another batch composition, (b) a 1e-15 relative perturbation of z₀."""
    SZ, SJ = np.meshgrid(sigma_z, np.sqrt(sigma_J2), indexing="ij")
    shape = SZ.shape
    out = {k: [] for k in ("ref", "split", "pert")}
    for s in seeds:
        Q, J0, z0 = qrm.initial_state(s, D=D, P=P, sigma_z=SZ.ravel(), sigma_J=SJ.ravel())
        ref = run_gd(Q, J0, z0, 1.0, max_steps)
        h = J0.shape[0] // 2  # same members, split into two batches of another size
        a, b = run_gd(Q, J0[:h], z0[:h], 1.0, max_steps), run_gd(Q, J0[h:], z0[h:], 1.0, max_steps)
        pert = run_gd(Q, J0, z0 * (1 + 1e-15), 1.0, max_steps)
        out["ref"].append((ref.status, ref.final_sharpness))
        out["split"].append((np.r_[a.status, b.status], np.r_[a.final_sharpness, b.final_sharpness]))
        out["pert"].append((pert.status, pert.final_sharpness))
    res = {}
    st0 = np.stack([o[0] for o in out["ref"]], -1).reshape(*shape, -1)
    sh0 = np.stack([o[1] for o in out["ref"]], -1).reshape(*shape, -1)
    for k in ("split", "pert"):
        st = np.stack([o[0] for o in out[k]], -1).reshape(*shape, -1)
        sh = np.stack([o[1] for o in out[k]], -1).reshape(*shape, -1)
        changed = (st != st0) | ~np.isclose(sh, sh0, rtol=1e-6, atol=0, equal_nan=True)
        res[k] = dict(changed=float(changed.mean()),
                      median_change=float(np.nanmax(np.abs(np.nanmedian(sh, -1) - np.nanmedian(sh0, -1)))),
                      status_changed=float((st != st0).mean()))
    return res


@pytest.mark.slow
def test_sensitivity_of_eos_statistics():
    """Single EOS trajectories are sensitive to rounding; per-cell medians are not."""
    res = sensitivity(60, 120, [0.3, 0.35, 0.4], [0.02, 0.1], seeds=range(8), max_steps=4000)
    print("sensitivity", res)
    for k in ("split", "pert"):
        assert res[k]["median_change"] < 0.05, res


def test_gradient_flow_mean_sharpening_rate_is_zero():
    """E[dλ_max/dt(0)] = 0 (λ̇ is odd in z₀) within its Monte Carlo error, from the integrated flow."""
    h = 1e-3
    ds = eosdyn.qrm.gradient_flow(D=5, P=9, sigma_z=3.0, sigma_J=0.8, seeds=48, times=np.linspace(0.0, 2 * h, 3),
                                  rtol=1e-12, atol=1e-15)
    s = ds.sharpness.transpose("seed", "time").values
    rate = (-3 * s[:, 0] + 4 * s[:, 1] - s[:, 2]) / (2 * h)
    se = rate.std(ddof=1) / math.sqrt(rate.size)
    assert se > 0 and abs(rate.mean()) < 4 * se


def test_sweep_regenerates_from_its_config():
    ds = eosdyn.qrm.sweep(D=6, P=12, sigma_z=[0.5, 2.0], sigma_J2=[0.1, 0.3], seeds=[2, 5], steps=300,
                          record_every=1, record_points=[(0.5, 0.3)])
    assert ds.step.size == 301
    xr.testing.assert_identical(eosdyn.conventions.regenerate(ds).drop_attrs(), ds.drop_attrs())


# ----------------------------------------------------------------------------- safety issue: named reproducers
FLOW = dict(D=2, P=3, sigma_z=0.3, sigma_J=0.5, seeds=1, times=np.linspace(0.0, 1.0, 3))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kw, name", [
    (dict(rtol=float("nan")), "rtol"), (dict(atol=float("nan")), "atol"), (dict(rtol=0), "rtol"),
    (dict(rtol=-1), "rtol"), (dict(atol=0.0), "atol"), (dict(atol=float("inf")), "atol"),
    (dict(max_evals=0), "max_evals"), (dict(max_evals=1.5), "max_evals"), (dict(method="Euler"), "method"),
    (dict(times=[0.0, float("inf")]), "times"), (dict(times=np.arange(10**6 + 1.0)), "times"),
    (dict(times=[0.0, 1.0, 0.5]), "times"), (dict(eta=[1.0, -0.5]), "eta"), (dict(tol=-1.0), "tol"),
    (dict(diverge_loss=0.0), "diverge_loss"),
    (dict(seeds=10**12), "seeds"), (dict(times=np.linspace(0, 1, 10**6), sigma_z=np.arange(1, 51), seeds=10),
                                    "max_memory"),
])
def test_issue8_flow_options_rejected_before_integrating(kw, name):
    """Issue 8: rtol/atol NaN hung the flow; 0 and -1 were accepted."""
    with pytest.raises(ValueError, match=name):
        eosdyn.qrm.gradient_flow(**{**FLOW, **kw})


@pytest.mark.timeout(30)
def test_issue9_flow_huge_sigma_z_is_a_flagged_member():
    """Issue 9: sigma_z=1e150 hung; now diverged at t = 0 (state above 1e100), NaN afterwards."""
    ds = eosdyn.qrm.gradient_flow(**{**FLOW, "sigma_z": [0.3, 1e150]})
    eosdyn.check_dataset(ds)
    fate = eosdyn.conventions.decode_status(ds.status).isel(seed=0).values.tolist()
    assert fate == ["max_steps", "diverged"]
    assert float(ds.t_stop.isel(sigma_z=1).item()) == 0.0
    assert ds.loss.isel(sigma_z=1).isel(time=slice(1, None)).isnull().all()
    # the healthy member is unaffected by its neighbour (same values as alone)
    alone = eosdyn.qrm.gradient_flow(**FLOW)
    np.testing.assert_array_equal(ds.loss.isel(sigma_z=0).values, alone.loss.values)
    assert float(ds.t_stop.isel(sigma_z=0).item()) == 1.0


@pytest.mark.timeout(30)
def test_issue9_flow_eta_1e300_is_flagged_not_runtimeerror():
    ds = eosdyn.qrm.gradient_flow(**{**FLOW, "eta": 1e300})
    eosdyn.check_dataset(ds)
    assert eosdyn.conventions.decode_status(ds.status).item() in ("failed", "diverged")
    assert ds.loss.isel(time=slice(1, None)).isnull().all()


@pytest.mark.timeout(30)
def test_flow_work_budget_flags_failed_and_others_go_on():
    """A stiff member (sigma_z=1e90) spends its budget of max_evals: ``failed``, NaN after t_stop."""
    ds = eosdyn.qrm.gradient_flow(**{**FLOW, "sigma_z": [0.3, 1e90], "max_evals": 500, "diverge_loss": 1e300})
    fate = eosdyn.conventions.decode_status(ds.status).isel(seed=0).values.tolist()
    assert fate == ["max_steps", "failed"]
    ts = float(ds.t_stop.isel(sigma_z=1).item())
    assert 0.0 <= ts < 1.0
    after = ds.loss.isel(sigma_z=1).where(ds.time > ts)
    assert after.isnull().all()
    assert np.isfinite(ds.loss.isel(sigma_z=0)).all()


@pytest.mark.timeout(30)
def test_flow_overflowing_sharpness_is_diverged():
    """z0 = 0 (sigma_z = 0): the flow is at rest, but η λ_max = 1e300 × ~1e10 overflows.

    Truth: λ_max from the singular values of J0 (LAPACK), times η, is inf.
    """
    ds = eosdyn.qrm.gradient_flow(**{**FLOW, "sigma_z": 0.0, "sigma_J": 1e5, "eta": 1e300})
    Q, J0, z0 = qrm.initial_state(0, D=2, P=3, sigma_z=[0.0], sigma_J=[1e5])
    with np.errstate(over="ignore"):
        assert np.isinf(1e300 * sv_lambda_max(J0)[0])
    assert eosdyn.conventions.decode_status(ds.status).item() == "diverged"
    assert float(ds.t_stop.item()) == 0.0
    eosdyn.check_dataset(ds)


def test_flow_status_and_t_stop_for_healthy_members():
    ds = eosdyn.qrm.gradient_flow(D=3, P=5, sigma_z=[0.5, 2.0], sigma_J=0.6, seeds=2, times=np.linspace(0.0, 2.0, 4))
    eosdyn.check_dataset(ds)
    assert (eosdyn.conventions.decode_status(ds.status) == "max_steps").all()
    assert (ds.t_stop == 2.0).all() and bool(ds.diverged_at.isnull().all() & ds.converged_at.isnull().all())
    assert np.isfinite(ds.sharpness).all()


def test_issue13_overflowing_sharpness_is_diverged_not_converged():
    """Issue 13: sigma_z=0, sigma_J2=1e308 reported ``converged`` with a NaN final_sharpness."""
    ds = eosdyn.qrm.sweep(D=2, P=3, sigma_z=0.0, sigma_J2=[1e300, 1e308], seeds=1, steps=5,
                          scheduler="synchronous")
    eosdyn.check_dataset(ds)
    fate = eosdyn.conventions.decode_status(ds.status).isel(seed=0).values.tolist()
    # truth: η λ_max(J0) from singular values; J0 = sqrt(sigma_J2)/(D P)^(1/4) Ĵ
    _, J0, _ = qrm.initial_state(0, D=2, P=3, sigma_z=[0.0, 0.0], sigma_J=np.sqrt([1e300, 1e308]))
    with np.errstate(over="ignore"):
        truth = np.array([np.linalg.svd(J / 1e150, compute_uv=False)[0] ** 2 * 1e300 for J in J0])
    assert np.isfinite(truth[0]) and np.isinf(truth[1])
    assert fate == ["converged", "diverged"]
    assert abs(float(ds.final_sharpness.isel(sigma_J=0).item()) / truth[0] - 1) < 1e-10
    assert int(ds.diverged_at.isel(sigma_J=1).item()) == 0


def test_issue13_kernel_recorded_sharpness_overflow_is_divergence(rng):
    """Loss finite, λ_max overflowing at a recorded step: diverged there (not max_steps)."""
    D, P = 2, 3
    G = rng.standard_normal((D, P, P))
    Q = (G + G.transpose(0, 2, 1)) / math.sqrt(2)
    J0 = np.stack([0.3 * rng.standard_normal((D, P)), 1e154 * np.ones((D, P))])
    z0 = np.zeros((2, D))
    z0[0] = 0.05
    res = run_gd(Q, J0, z0, 1.0, 10, 1, tol=1e-300)
    assert res.status.tolist() == [STATUS_VALUES["max_steps"], STATUS_VALUES["diverged"]]
    assert res.diverged_at.tolist() == [-1, 0]
    assert np.isnan(res.final_sharpness[1]) and np.isfinite(res.final_sharpness[0])
    # without recording the final check catches it
    res = run_gd(Q, J0, z0, 1.0, 10, 0, tol=1e-300)
    assert res.status[1] == STATUS_VALUES["diverged"] and res.diverged_at[1] == 0


@pytest.mark.parametrize("kw, name", [
    (dict(sigma_z=1e39), "sigma_z"), (dict(sigma_J2=[0.1, 1e39]), "sigma_J2"), (dict(eta=1e39), "eta"),
])
def test_issue13_float32_rejects_unrepresentable_inputs(kw, name):
    base = dict(D=2, P=3, sigma_z=0.3, sigma_J2=0.2, seeds=1, steps=5, dtype="float32")
    with pytest.raises(ValueError, match=f"{name}.*float32"):
        eosdyn.qrm.sweep(**{**base, **kw})
    # the same values are fine in float64 (flagged as data if they blow up)
    ds = eosdyn.qrm.sweep(**{**base, **kw, "dtype": "float64"}, scheduler="synchronous")
    eosdyn.check_dataset(ds)


def _gd_args(rng, B=2, D=2, P=3):
    G = rng.standard_normal((D, P, P))
    return (G + G.transpose(0, 2, 1)) / math.sqrt(2), 0.3 * rng.standard_normal((B, D, P)), \
        0.1 * rng.standard_normal((B, D))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kw, name", [
    (dict(diverge_loss=float("nan")), "diverge_loss"), (dict(diverge_loss=0.0), "diverge_loss"),
    (dict(diverge_loss=-1.0), "diverge_loss"), (dict(diverge_loss=float("inf")), "diverge_loss"),
    (dict(eta=float("inf")), "eta"), (dict(eta=float("nan")), "eta"), (dict(eta=0.0), "eta"),
    (dict(eta="1"), "eta"), (dict(eta=[0.5, 1.0]), "eta"),
    (dict(tol=-1.0), "tol"), (dict(tol=float("nan")), "tol"),
    (dict(cycle_tol=0.0), "cycle_tol"), (dict(cycle_tol=-1.0), "cycle_tol"), (dict(cycle_tol=float("nan")), "cycle_tol"),
    (dict(cycle_tol=1e-8, cycle_window=0), "cycle_window"),
    (dict(compact_fraction=-0.1), "compact_fraction"), (dict(compact_fraction=1.5), "compact_fraction"),
    (dict(compact_fraction=float("nan")), "compact_fraction"),
    (dict(max_steps="5"), "max_steps"), (dict(max_steps=1.5), "max_steps"), (dict(max_steps=-1), "max_steps"),
    (dict(max_steps=2**63), "max_steps"), (dict(record_every=1.5), "record_every"),
    (dict(record_every=-1), "record_every"),
    (dict(record_mask=np.ones(3, bool)), "record_mask"), (dict(record_mask=[1, 0]), "record_mask"),
    (dict(record_z="yes"), "record_z"), (dict(return_J=1), "return_J"),
    (dict(max_steps=10**12, record_every=1), "max_memory"), (dict(max_memory="lots"), "max_memory"),
])
def test_issue14_run_gd_validates_every_argument(rng, kw, name):
    """Issue 14: bad kernel options were accepted (diverge_loss=NaN diverged every member at step 0)."""
    Q, J0, z0 = _gd_args(rng)
    args = dict(eta=1.0, max_steps=5)
    args.update(kw)
    with pytest.raises((ValueError, TypeError), match=name):
        run_gd(Q, J0, z0, **args)


@pytest.mark.parametrize("change, name", [
    (lambda Q, J, z: (Q[:, :, :2], J, z), "Q"), (lambda Q, J, z: (Q.astype(np.int64), J, z), "Q"),
    (lambda Q, J, z: (Q[:0], J[:, :0], z[:, :0]), "Q"), (lambda Q, J, z: (Q, J[:, :, :2], z), "J0"),
    (lambda Q, J, z: (Q, J, z[:1]), "z0"), (lambda Q, J, z: (Q, J.astype(str), z), "J0"),
    (lambda Q, J, z: (Q, J, z + 0j), "z0"),
    (lambda Q, J, z: (Q.astype(np.float32), J * 1e39, z), "J0"),
])
def test_issue14_run_gd_checks_array_shapes_and_dtypes(rng, change, name):
    Q, J0, z0 = change(*_gd_args(rng))
    with pytest.raises((ValueError, TypeError), match=name):
        run_gd(Q, J0, z0, 1.0, 5)


def test_issue14_valid_edge_options_still_run(rng):
    """The boundaries that are allowed: tol = 0, compact_fraction 0 and 1, max_steps = 0."""
    Q, J0, z0 = _gd_args(rng)
    ref = run_gd(Q, J0, z0, 0.5, 20, 1, tol=1e-300)
    for cf in (0.0, 1.0):
        r = run_gd(Q, J0, z0, 0.5, 20, 1, tol=0.0, compact_fraction=cf)
        np.testing.assert_array_equal(r.loss, ref.loss)
    r0 = run_gd(Q, J0, z0, 0.5, 0, 1)
    assert r0.status.tolist() == [STATUS_VALUES["max_steps"]] * 2 and r0.record_steps.tolist() == [0]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kw, name", [
    (dict(steps=2**63), "steps"), (dict(seeds=10**12), "seeds"), (dict(seeds=10**7), "max_memory"),
    (dict(eta=[1.0, 1.0]), "duplicate"), (dict(dtype="bogus"), "dtype"), (dict(scheduler="bogus"), "scheduler"),
    (dict(resume=3), "resume"), (dict(record_every=1, record_points="x"), "record_points"),
    (dict(record_every=1, record_points=[(float("nan"), 0.1)]), "record_points"),
    (dict(tol=float("nan")), "tol"), (dict(diverge_loss=float("inf")), "diverge_loss"),
    (dict(compact_fraction=2.0), "compact_fraction"), (dict(cycle_tol=float("nan")), "cycle_tol"),
    (dict(steps="5"), "steps"), (dict(record_every=1.5), "record_every"), (dict(chunk_size=0), "chunk_size"),
    (dict(blas_threads=0), "blas_threads"), (dict(eta="fast"), "eta"), (dict(D=10**6, P=10**6), "max_memory"),
    (dict(record_every=1, steps=10**9), "max_memory"),
])
def test_issue17_sweep_clear_errors(kw, name):
    base = dict(D=2, P=3, sigma_z=[0.1, 0.3], sigma_J2=[0.1], seeds=2, steps=5)
    with pytest.raises((ValueError, TypeError), match=name):
        eosdyn.qrm.sweep(**{**base, **kw})


def test_memory_estimate_counts_every_recorded_point():
    """The sweep stores full (sigma_z, sigma_J, seed, step) rows even with record_points."""
    base = dict(D=2, P=3, sigma_z=np.linspace(0.1, 1, 10), sigma_J2=np.linspace(0.1, 1, 10), seeds=10,
                steps=10**5, record_every=1, max_memory="1GB")
    with pytest.raises(ValueError, match="max_memory"):
        eosdyn.qrm.sweep(**base, record_points=[(0.1, 0.1)])


@pytest.mark.timeout(30)
def test_flow_integrator_raising_on_a_member_is_failed_not_raised():
    """Found by tests/test_fuzz_qrm.py: Radau's LU of a non-finite finite-difference Jacobian raised
    ``ValueError: array must not contain infs or NaNs`` out of gradient_flow; now that member fails."""
    ds = eosdyn.qrm.gradient_flow(D=1, P=1, sigma_z=[1.0, 2.0], sigma_J=1e5, seeds=1, eta=1e150, times=np.linspace(0.0, 1.0, 2), method="Radau", max_evals=5)
    eosdyn.check_dataset(ds)
    assert set(eosdyn.conventions.decode_status(ds.status).values.ravel().tolist()) <= {"failed", "diverged"}
    assert ds.loss.isel(time=1).isnull().all()


def test_float32_loss_beyond_its_range_diverges_at_step_0_even_with_huge_diverge_loss():
    """diverge_loss=1e300 in a float32 run: an inf (overflowed) loss is still divergence at once."""
    D, P = 2, 3
    Q = np.zeros((D, P, P), np.float32)
    J0 = np.full((1, D, P), 0.1, np.float32)
    z0 = np.full((1, D), 3e19, np.float32)  # ½‖z‖² = 9e38 > float32 max
    res = run_gd(Q, J0, z0, 0.1, 5, 1, diverge_loss=1e300)
    assert res.status[0] == STATUS_VALUES["diverged"] and res.diverged_at[0] == 0


# ----------------------------------------------------------------------------- the shared GD vocabulary
VOC = dict(D=4, P=8, sigma_z=[0.1, 0.3, 6.0], sigma_J2=[0.05, 0.2], seeds=2)


def test_stop_never_runs_converged_members_on_against_reference_gd():
    """stop="never": a converged member keeps iterating to ``steps`` (independent einsum GD as truth)."""
    steps = 400
    member = eosdyn.qrm.sweep(**VOC, steps=steps)
    never = eosdyn.qrm.sweep(**VOC, steps=steps, stop="never")
    eosdyn.check_dataset(never)
    conv = member.status == STATUS_VALUES["converged"]
    assert int(conv.sum()) >= 4 and bool((member.status == STATUS_VALUES["diverged"]).any())
    xr.testing.assert_equal(never.status, member.status)
    xr.testing.assert_equal(never.converged_at, member.converged_at.where(conv, -1))
    xr.testing.assert_equal(never.diverged_at, member.diverged_at)
    assert bool((never.steps_taken.where(conv) == steps).where(conv, True).all())
    assert never.attrs["stop"] == "never" and list(never.step.values) == [0, steps]
    # truth: the loss of the reference GD after `steps` steps, and its first step below tol
    for seed in (0, 1):
        Q, J0, z0 = qrm.initial_state(seed, D=4, P=8, sigma_z=[0.1], sigma_J=[math.sqrt(0.05)])
        zs, _ = ref_gd(Q, J0[0], z0[0], 1.0, steps)
        loss = 0.5 * np.sum(zs ** 2, axis=1)
        m = never.sel(sigma_z=0.1, seed=seed).isel(sigma_J=0)
        assert int(m.converged_at) == int(np.argmax(loss < 1e-12))
        np.testing.assert_allclose(float(m.final_loss), loss[-1], rtol=1e-6, atol=1e-300)
        np.testing.assert_allclose(float(m.loss.isel(step=-1)), loss[-1], rtol=1e-6, atol=1e-300)


def test_stop_batch_runs_everyone_to_the_last_fate():
    kw = dict(D=4, P=8, sigma_z=[0.1, 0.3, 6.0], sigma_J2=[0.05, 0.2], seeds=2, steps=5000)
    member = eosdyn.qrm.sweep(**kw)
    assert not bool((member.status == STATUS_VALUES["max_steps"]).any())  # every member has a fate
    last = int(member.steps_taken.max())
    batch = eosdyn.qrm.sweep(**kw, stop="batch")
    eosdyn.check_dataset(batch)
    div = member.status == STATUS_VALUES["diverged"]
    assert bool((batch.steps_taken.where(~div) == last).where(~div, True).all())
    xr.testing.assert_equal(batch.status, member.status)
    xr.testing.assert_equal(batch.converged_at.where(~div, -1), member.converged_at.where(~div, -1))
    assert list(batch.step.values) == [0, last]
    rec = eosdyn.qrm.sweep(**kw, stop="batch", record_every=1000)
    assert rec.step.values.tolist() == list(range(0, 5001, 1000))
    assert bool(rec.sharpness.sel(step=slice(last + 1, None)).isnull().all())


def test_eta_is_a_grid_dim_like_sigma_z():
    """eta=[a, b] equals one sweep per eta value, bit for bit."""
    both = eosdyn.qrm.sweep(**VOC, eta=[0.5, 1.2], steps=200, record_every=50)
    assert both.final_sharpness.dims == ("sigma_z", "sigma_J", "eta", "seed")
    assert both.sharpness.dims == ("sigma_z", "sigma_J", "eta", "seed", "step")
    for eta in (0.5, 1.2):
        one = eosdyn.qrm.sweep(**VOC, eta=eta, steps=200, record_every=50)
        for v in ("final_sharpness", "final_loss", "steps_taken", "status", "sharpness", "loss"):
            np.testing.assert_array_equal(both[v].sel(eta=eta).values, one[v].values)
    # a DataArray pairs eta with sigma_z on its own dim
    pair = xr.DataArray([0.5, 1.2], dims="run")
    ds = eosdyn.qrm.sweep(D=4, P=8, sigma_z=xr.DataArray([0.1, 0.3], dims="run"), sigma_J=0.4, eta=pair,
                          seeds=1, steps=50)
    assert ds.final_sharpness.dims == ("run", "seed")
    eosdyn.check_dataset(ds)
    xr.testing.assert_identical(eosdyn.conventions.regenerate(ds).drop_attrs(), ds.drop_attrs())


def test_record_every_none_is_initial_and_last_step():
    full = eosdyn.qrm.sweep(**VOC, steps=300, record_every=1)
    ends = eosdyn.qrm.sweep(**VOC, steps=300)
    n = int(ends.steps_taken.max())
    assert ends.step.values.tolist() == [0, n]
    xr.testing.assert_equal(ends.sharpness.isel(step=0), full.sharpness.isel(step=0))
    xr.testing.assert_equal(ends.loss.isel(step=0), full.loss.isel(step=0))
    ran = ends.steps_taken == n
    xr.testing.assert_equal(ends.sharpness.isel(step=1).where(ran), full.sharpness.sel(step=n).where(ran))
    assert bool(ends.loss.isel(step=1).where(~ran).isnull().all())
    for v in ("final_sharpness", "final_loss", "steps_taken", "status", "converged_at", "diverged_at"):
        xr.testing.assert_equal(ends[v], full[v])
    assert set(ends.attrs) >= {"tol", "diverge_loss", "stop", "eosdyn_roles"}
    assert eosdyn.conventions.read_config(ends)["function"] == "eosdyn.qrm.sweep"


def test_cycle_tol_needs_stop_member():
    with pytest.raises(ValueError, match="cycle_tol"):
        eosdyn.qrm.sweep(**VOC, steps=10, cycle_tol=1e-8, stop="never")


def test_flow_and_monte_carlo_bitwise_across_chunk_sizes_and_schedulers(tmp_path):
    from eosdyn import recipes

    kw = dict(D=3, P=4, sigma_z=[0.5, 2.0], sigma_J=0.5, seeds=4, times=[0.0, 0.5, 1.0])
    a = eosdyn.qrm.gradient_flow(**kw, chunk_size=4, scheduler="synchronous")
    b = eosdyn.qrm.gradient_flow(**kw, chunk_size=1, scheduler="threads", resume=tmp_path / "flow")
    c = eosdyn.qrm.gradient_flow(**kw, chunk_size=3, resume=tmp_path / "flow")  # another chunking: recomputed
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    xr.testing.assert_identical(a.drop_attrs(), c.drop_attrs())
    again = eosdyn.qrm.gradient_flow(**kw, chunk_size=1, resume=tmp_path / "flow")  # resumed
    xr.testing.assert_identical(a.drop_attrs(), again.drop_attrs())
    mc = dict(sizes=[[4, 6], [6, 3]], sigma_z=[0.5, 1.0], seeds=6)
    for f in (recipes.rnl_monte_carlo, recipes.theorem41_monte_carlo):
        one, many = f(**mc, chunk_size=6), f(**mc, chunk_size=1, scheduler="threads")
        xr.testing.assert_identical(one.drop_attrs(), many.drop_attrs())
        sub = f(**{**mc, "seeds": [0, 1, 2, 3, 4, 5]})
        xr.testing.assert_identical(one.drop_attrs(), sub.drop_attrs())


def test_flow_converged_at_is_the_first_sample_below_tol():
    times = np.linspace(0.0, 40.0, 41)
    ds = eosdyn.qrm.gradient_flow(D=3, P=6, sigma_z=[0.2, 0.4], sigma_J=1.0, seeds=2, times=times, tol=1e-6)
    eosdyn.check_dataset(ds)
    below = ds.loss < 1e-6
    assert bool(below.any("time").all())
    first = ds.time.where(below).min("time")
    np.testing.assert_array_equal(ds.converged_at.values, first.transpose(*ds.converged_at.dims).values)
    assert bool((eosdyn.conventions.decode_status(ds.status) == "converged").all())
    assert bool(ds.diverged_at.isnull().all()) and bool((ds.t_stop == 40.0).all())
