"""Tests of eosdyn.analysis against independent truth.

Truth used: closed forms (geometric series, catapult map orbits, fixed-line multiplier 1 − T),
plain NumPy re-computations (np.quantile, np.histogram, slicing), a second root finder for the
two-step nullcline, and the map ``eosdyn.kernels.maps.two_param_step`` itself.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import eosdyn
from eosdyn import analysis as A
from eosdyn.conventions import decode_status, encode_status, set_roles, set_variable_attrs
from eosdyn.kernels.maps import two_param_step

# --------------------------------------------------------------------------- data builders


def iterate_two_param(eps, z0, T0, steps, E=0.0, blowup=1e6):
    """P = 2 map dataset (eps × init × step) by iterating the map; NaN state after divergence.

    Laid out as the contract says a model dataset is: the map parameters as coordinates ``lam``
    and ``E_tilde``, and a role map naming the residual and the curvature."""
    eps = np.asarray(eps, float)
    z0, T0 = np.asarray(z0, float), np.asarray(T0, float)
    lam = -eps[:, None]
    z = np.broadcast_to(z0, (eps.size, z0.size)).copy()
    T = np.broadcast_to(T0, (eps.size, z0.size)).copy()
    Z = np.empty(z.shape + (steps + 1,))
    TT = np.empty_like(Z)
    Z[..., 0], TT[..., 0] = z, T
    dead = np.zeros(z.shape, bool)
    with np.errstate(all="ignore"):
        for t in range(steps):
            z, T = two_param_step(z, T, lam, E)
            dead |= ~np.isfinite(z) | ~np.isfinite(T) | (np.abs(z) > blowup) | (np.abs(T) > blowup)
            z = np.where(dead, np.nan, z)
            T = np.where(dead, np.nan, T)
            Z[..., t + 1], TT[..., t + 1] = z, T
    ds = xr.Dataset({"z": (("eps", "init", "step"), Z), "T": (("eps", "init", "step"), TT)},
                    coords={"eps": eps, "lam": ("eps", -eps), "init": np.arange(z0.size),
                            "step": np.arange(steps + 1), "z0": ("init", z0), "T0": ("init", T0), "E_tilde": E})
    for k in ds.variables:
        set_variable_attrs(ds[k], k)
    return set_roles(ds, residual="z", curvature="T")


def qrm_like(rng, n_sz=3, n_sj=2, n_seed=5, n_step=120, dtype=np.float64):
    """QRM-like sharpness trajectories with known two-cycles: s_t = m + h (−1)^t + c ρ^t."""
    shape = (n_sz, n_sj, n_seed)
    m = rng.uniform(1.8, 2.0, shape)
    h = rng.uniform(0.0, 0.2, shape)
    c = rng.uniform(-0.5, 0.5, shape)
    rho = rng.uniform(0.5, 0.9, shape)
    t = np.arange(n_step)
    s = m[..., None] + h[..., None] * (-1.0) ** t + c[..., None] * rho[..., None] ** t
    ds = xr.Dataset({"sharpness": (("sigma_z", "sigma_J", "seed", "step"), s.astype(dtype)),
                     "final_sharpness": (("sigma_z", "sigma_J", "seed"), s[..., -1].astype(dtype))},
                    coords={"sigma_z": np.linspace(0.1, 1, n_sz), "sigma_J": np.linspace(1, 2, n_sj),
                            "seed": np.arange(n_seed), "step": t})
    truth = xr.Dataset({k: (("sigma_z", "sigma_J", "seed"), v) for k, v in
                        dict(m=m, h=h, c=c, rho=rho).items()}, coords=ds.drop_dims("step").coords)
    return ds, truth


# --------------------------------------------------------------------------- two_step / even / odd


def test_two_step_stride1_matches_slicing(rng):
    x = xr.DataArray(rng.normal(size=(3, 10, 4)), dims=("a", "step", "b"),
                     coords={"step": np.arange(10), "a": [1, 2, 3]})
    d = A.two_step(x)
    assert d.dims == x.dims and d.step.values.tolist() == list(range(8))
    np.testing.assert_array_equal(d.values, x.values[:, 2:, :] - x.values[:, :-2, :])
    assert d.a.values.tolist() == [1, 2, 3]


def test_two_step_stride2_and_odd_start():
    steps = np.arange(1, 21, 2)  # 1, 3, ..., 19 (record_every=2, starting at an odd step)
    x = xr.DataArray(steps.astype(float) ** 2, dims="step", coords={"step": steps})
    d = A.two_step(x)
    assert d.step.values.tolist() == steps[:-1].tolist()
    np.testing.assert_array_equal(d.values, (steps[:-1] + 2.0) ** 2 - steps[:-1] ** 2.0)
    # stride 1 starting at an odd step: even/odd go by value
    y = xr.DataArray(np.arange(7.0), dims="step", coords={"step": np.arange(3, 10)})
    assert A.even(y).step.values.tolist() == [4, 6, 8]
    assert A.odd(y).step.values.tolist() == [3, 5, 7, 9]
    with pytest.raises(ValueError, match="no even step"):
        A.even(x)


def test_two_step_irregular_and_impossible():
    x = xr.DataArray(np.arange(6.0) ** 2, dims="step", coords={"step": [0, 1, 2, 3, 10, 12]})
    d = A.two_step(x)
    assert d.step.values.tolist() == [0, 1, 10]
    np.testing.assert_array_equal(d.values, [4.0, 8.0, 25.0 - 16.0])
    with pytest.raises(ValueError, match="stride 3"):
        A.two_step(xr.DataArray(np.arange(5.0), dims="step", coords={"step": np.arange(0, 15, 3)}))
    with pytest.raises(ValueError, match="stride 4"):
        A.two_step(xr.DataArray(np.arange(5.0), dims="step", coords={"step": np.arange(0, 20, 4)}))
    with pytest.raises(ValueError, match="'step'"):
        A.two_step(xr.DataArray(np.arange(5.0), dims="time"))
    with pytest.raises(ValueError, match="'nope'"):
        A.two_step(xr.DataArray(np.arange(5.0), dims="step"), dim="nope")


def test_two_step_dataset_and_dask(rng):
    ds, _ = qrm_like(rng)
    out = A.two_step(ds)
    assert set(out.data_vars) == {"sharpness"}
    lazy = A.two_step(ds.chunk({"seed": 2, "step": 30}))
    assert lazy.sharpness.chunks is not None
    xr.testing.assert_identical(lazy.compute(), out)


# --------------------------------------------------------------------------- classify


def test_classify_constructed_cases():
    t = np.arange(400)
    golden = np.pi * (np.sqrt(5) - 1)
    series = {
        "fixed_point": 0.7 + 0.3 * 0.8 ** t,
        "period_2": 1.9 + 0.1 * (-1.0) ** t * (1 + 0.5 ** t),
        "other": np.cos(golden * t),                         # quasi-periodic rotation
        "diverged": np.where(t < 300, 1.5 ** np.minimum(t, 299), np.nan),
    }
    x = xr.DataArray(np.stack(list(series.values())), dims=("case", "step"),
                     coords={"case": list(series)})
    lab = A.classify(x, as_strings=True)
    assert lab.values.tolist() == list(series)
    codes = A.classify(x)
    assert codes.dtype == np.int8 and codes.attrs["flag_meanings"] == "fixed_point period_2 other diverged"
    assert decode_status(codes).values.tolist() == list(series)
    inf_end = xr.DataArray(np.r_[np.ones(10), np.inf], dims="step")
    assert str(A.classify(inf_end, as_strings=True).values) == "diverged"


def test_classify_dataset_combines_variables():
    t = np.arange(50)
    ds = xr.Dataset({"u": (("m", "step"), np.stack([np.ones(50), np.ones(50)])),
                     "v": (("m", "step"), np.stack([(-1.0) ** t, np.where(t < 40, 1.0, np.nan)]))})
    assert A.classify(ds, as_strings=True).values.tolist() == ["period_2", "diverged"]


def test_classify_toy_trajectories_with_known_fate():
    # T0 = 1: z' ≈ z(1 − T) → fast convergence onto the fixed line; large z0: divergence
    ds = iterate_two_param([0.1, 0.5], [0.05, 3.0], [1.0, 1.0], 300)
    lab = A.classify(ds, as_strings=True)
    assert lab.dims == ("eps", "init")
    assert (lab.sel(init=0) == "fixed_point").all() and (lab.sel(init=1) == "diverged").all()


def test_classify_bad_input():
    with pytest.raises(ValueError, match="at least 4"):
        A.classify(xr.DataArray(np.ones(3), dims="step"))
    with pytest.raises(ValueError, match="stride 2"):
        A.classify(xr.DataArray(np.ones(20), dims="step", coords={"step": np.arange(0, 40, 2)}))
    with pytest.raises(ValueError, match="tail"):
        A.classify(xr.DataArray(np.ones(20), dims="step"), tail=50)


# --------------------------------------------------------------------------- fit_limit


def test_fit_limit_recovers_geometric_truth_over_dims(rng):
    ds, truth = qrm_like(rng)
    f = A.fit_limit(ds.sharpness.transpose("seed", "step", "sigma_J", "sigma_z"))
    assert set(f.limit.dims) == {"seed", "sigma_J", "sigma_z", "branch"}
    np.testing.assert_allclose(f.cycle_mean.transpose(*truth.m.dims), truth.m, atol=1e-9)
    np.testing.assert_allclose(f.cycle_half_amplitude.transpose(*truth.h.dims), truth.h, atol=1e-9)
    # the rate needs the window where c ρ^t is above rounding: fit from step 0
    f0 = A.fit_limit(ds.sharpness, start=0, stop=40)
    np.testing.assert_allclose(f0.rate.sel(branch="even"), truth.rho, rtol=1e-6)
    np.testing.assert_allclose(f0.rate.sel(branch="odd"), truth.rho, rtol=1e-6)
    np.testing.assert_allclose(f0.amplitude.sel(branch="even"), truth.c, rtol=1e-6)
    np.testing.assert_allclose(f.limit.sel(branch="even").transpose(*truth.m.dims), truth.m + truth.h,
                               atol=1e-9)
    cyc = A.limiting_two_cycle(ds)
    np.testing.assert_allclose(cyc.deviation.transpose(*truth.m.dims), 2 - truth.m, atol=1e-9)


def test_fit_limit_with_noise_error_estimate_is_honest(rng):
    n_mem, t = 200, np.arange(200)
    x_inf, c, rho, sigma = 1.3, 0.8, 0.97, 1e-4
    x = x_inf + c * rho ** t + sigma * rng.normal(size=(n_mem, t.size))
    f = A.fit_limit(xr.DataArray(x, dims=("member", "step")), start=0)
    err = (f.limit.sel(branch="even") - x_inf) / f.limit_se.sel(branch="even")
    # the standard error is calibrated: ~95% of members within 2 se, and the bias is small
    assert 0.85 < float((abs(err) < 2).mean()) <= 1.0
    assert abs(float((f.limit.sel(branch="even") - x_inf).median())) < 2e-4
    np.testing.assert_allclose(float(f.rate.sel(branch="even").median()), rho, rtol=2e-3)


def test_fit_limit_dask_and_dataset(rng):
    ds, _ = qrm_like(rng)
    ref = A.fit_limit(ds)
    assert "sharpness_cycle_mean" in ref and "sharpness_limit" in ref
    lazy = A.fit_limit(ds.chunk({"sigma_z": 1, "step": 40}))
    assert lazy.sharpness_limit.chunks is not None
    xr.testing.assert_allclose(lazy.compute(), ref)


def test_fit_limit_edge_cases():
    t = np.arange(30)
    x = xr.DataArray(np.stack([np.full(30, 2.5), np.where(t < 25, 1.0 + 0.5 ** t, np.nan),
                               1.0 + 1.1 ** t]), dims=("m", "step"))
    f = A.fit_limit(x)
    np.testing.assert_array_equal(f.limit.isel(m=0).values, [2.5, 2.5])
    assert np.isnan(f.limit.isel(m=1)).all()      # ends in NaN: no limit
    assert np.isnan(f.limit.isel(m=2)).all()      # not converging
    with pytest.raises(ValueError, match="too few steps"):
        A.fit_limit(x, tail=6)
    # stride-2 recording: the odd branch is absent (NaN), the even one is fitted per GD step
    y = xr.DataArray(3.0 + 0.9 ** np.arange(0, 60, 2), dims="step", coords={"step": np.arange(0, 60, 2)})
    g = A.fit_limit(y)
    assert np.isnan(g.limit.sel(branch="odd")) and g.n_points.sel(branch="odd") == 0
    np.testing.assert_allclose(g.rate.sel(branch="even"), 0.9, rtol=1e-9)


def test_fitted_toy_limit_matches_root_found_fixed_line():
    """A converging toy trajectory lands on the fixed line z = 0; its fitted contraction rate of z
    must equal |line multiplier| = |1 − T∞| of the root-finding module at the fitted T∞."""
    ds = iterate_two_param([0.1, 0.4], [0.05, 0.1], [0.6, 1.3], 400)
    fz = A.fit_limit(ds.z, start=100)
    fT = A.fit_limit(ds["T"], start=100)
    np.testing.assert_allclose(fz.limit, 0.0, atol=1e-12)
    T_inf = fT.cycle_mean
    for e in ds.eps.values:
        for i in ds.init.values:
            Ti = float(T_inf.sel(eps=e, init=i))
            fp = A.fixed_points(eps=float(e), line_T=[Ti])
            assert bool(fp.line_stable[0])
            np.testing.assert_allclose(float(fz.rate.sel(eps=e, init=i, branch="even")),
                                       abs(float(fp.line_multiplier[0])), rtol=1e-6)


# --------------------------------------------------------------------------- EOS coordinate / increments


def _y_by_newton(z, T, eps, E=0.0):
    """Independent y: distance from the root T* of z_{t+2}(z, T*) = z (Newton in T from 2)."""
    lam = -eps
    Ts = np.full_like(z, 2.0)
    h = 1e-30
    for _ in range(60):
        z1, T1 = two_param_step(z + 0j, Ts + 1j * h, lam, E)
        z2, _ = two_param_step(z1, T1, lam, E)
        g, dg = z2.real - z, z2.imag / h
        Ts = Ts - np.where(dg != 0, g / dg, 0.0)
    return T - Ts


def test_eos_coordinate_sharpness_and_modes():
    s = xr.DataArray(np.array([[1.5, 0.3], [2.2, 0.4]]), dims=("step", "mode"), coords={"mode": [0, 1]},
                     name="sharpness")
    y = A.eos_coordinate(xr.Dataset({"sharpness": s}))
    np.testing.assert_allclose(y.values, [-0.5, 0.2])
    assert y.name == "y" and y.attrs["long_name"]
    with pytest.raises(ValueError, match="sharpness"):
        A.eos_coordinate(xr.Dataset({"loss": ("step", [1.0])}))


def test_eos_coordinate_toy_matches_independent_root():
    ds = iterate_two_param([0.1, 0.3], [0.01, -0.02, 0.03], [1.99, 2.01, 1.95], 20)
    y = A.eos_coordinate(ds)
    assert y.dims == ds.z.dims
    for e in ds.eps.values:
        ref = _y_by_newton(ds.z.sel(eps=e).values, ds["T"].sel(eps=e).values, e)
        np.testing.assert_allclose(y.sel(eps=e).values, ref, atol=1e-10)


def _eos_toy(eps):
    rng = np.random.default_rng(7)
    n = 40
    z0 = rng.uniform(2e-5, 1e-4, n) * rng.choice([-1, 1], n)
    T0 = 2.0 + rng.uniform(-1e-3, 1e-3, n)
    return iterate_two_param(eps, z0, T0, 200)


def _check_eq18_19(f, eps):
    e = f.eps.values
    np.testing.assert_allclose(f.c1, 2.0, rtol=1e-3)
    np.testing.assert_allclose(f.c2, -2 * (4 - 3 * e + 4 * e ** 2), rtol=1e-3)
    np.testing.assert_allclose(f.c3, -4 * e, rtol=1e-3)
    assert (f.r2_z > 0.999).all() and (f.r2_y > 0.999).all()


def test_fit_increments_eq18_19_with_independent_y():
    eps = [0.1, 0.3]
    ds = _eos_toy(eps)
    y = xr.concat([xr.DataArray(_y_by_newton(ds.z.sel(eps=e).values, ds["T"].sel(eps=e).values, e),
                                dims=("init", "step")) for e in eps], dim="eps").assign_coords(ds.z.coords)
    f = A.fit_increments(ds, over=("init",), y=y)
    assert f.c1.dims == ("eps",)
    _check_eq18_19(f, eps)


def test_fit_increments_eq18_19_via_theory():
    eps = [0.1, 0.3]
    f = A.fit_increments(_eos_toy(eps), over=("init",))
    _check_eq18_19(f, eps)


def test_fit_increments_network_layout(rng):
    # Δ₂z₁ = 2 y z₁ + noise, y varying per step, several runs in an extra dim
    n_run, n = 4, 300
    y = rng.uniform(-0.05, 0.05, (n_run, n))
    z1 = np.empty((n_run, n))
    z1[:, :2] = rng.normal(size=(n_run, 2))
    for t in range(n - 2):
        z1[:, t + 2] = z1[:, t] * (1 + 2 * y[:, t]) + 1e-4 * rng.normal(size=n_run)
    ds = xr.Dataset({"z1": (("run", "step"), z1),
                     "sharpness": (("step", "mode", "run"), np.stack([2 + y.T, 0.5 + y.T], 1))},
                    coords={"step": np.arange(n), "mode": [0, 1]})
    f = A.fit_increments(ds, residual="z1")
    # the same dataset with a role map needs no residual=
    xr.testing.assert_identical(A.fit_increments(set_roles(ds.copy(), residual="z1")), f)
    assert f.c1.dims == ("run",) and "c2" not in f
    assert (abs(f.c1 - 2) < 4 * f.c1_se).all() and (f.c1_se < 0.05).all()
    lazy = A.fit_increments(ds.chunk({"run": 2}), residual="z1")
    xr.testing.assert_allclose(lazy.compute(), f)
    w = A.fit_increments(ds, start=10, stop=50, residual="z1")
    assert (w.n_points == 41).all()
    with pytest.raises(ValueError, match="role 'residual'"):
        A.fit_increments(ds.drop_vars("z1"))
    with pytest.raises(ValueError, match="residual='nope'"):
        A.fit_increments(ds, residual="nope")


def test_eos_coordinate_refuses_naming_the_missing_map_parameter():
    ds = iterate_two_param([0.1], [0.01], [1.99], 4)
    with pytest.raises(ValueError, match="missing: 'E_tilde'"):
        A.eos_coordinate(ds.drop_vars("E_tilde"))
    # without 'lam' the dataset is not a P = 2 map one: the sharpness method needs a sharpness
    with pytest.raises(ValueError, match="role 'sharpness'"):
        A.eos_coordinate(ds.drop_vars("lam"))
    with pytest.raises(ValueError, match="missing: 'lam'"):
        A.eos_coordinate(ds.drop_vars("lam"), method="two_step_nullcline")
    # the role map, not the variable names, says what the residual and the curvature are
    renamed = set_roles(ds.rename({"z": "r", "T": "c"}), residual="r", curvature="c")
    xr.testing.assert_identical(A.eos_coordinate(renamed), A.eos_coordinate(ds))


def test_sharpness_edge_from_the_dataset():
    """y = sharpness - edge and the statistics use the dataset's own edge coordinate."""
    s = xr.DataArray([[1.4, 1.5, 1.6]], dims=("seed", "step"), name="sharpness")
    ds = xr.Dataset({"sharpness": s}, coords={"edge": 1.5})
    np.testing.assert_allclose(A.eos_coordinate(ds).values, [[-0.1, 0.0, 0.1]])
    np.testing.assert_allclose(A.eos_coordinate(ds, edge=2.0).values, [[-0.6, -0.5, -0.4]])
    fs = xr.Dataset({"final_sharpness": ("seed", [1.5, 1.52, 1.9, 2.0])}, coords={"edge": 1.5})
    st = A.final_sharpness_stats(fs, n_boot=20)
    assert float(st.frac_eos) == 0.5                    # 1.5 and 1.52 are within 0.05 of 1.5
    np.testing.assert_allclose(float(st.deviation), 1.5 - 1.71)


def test_nonlinearity_ratio_toy():
    ds = iterate_two_param([0.2], [0.1], [1.5], 5, E=0.3)
    r = A.nonlinearity_ratio(ds)
    # closed form |z T(1)| / (2|T|) with T(1) = (1 − ε) T + ε (2 z + Ẽ) (Eq. 14-15)
    z, T, e = ds.z.values, ds["T"].values, 0.2
    np.testing.assert_allclose(r.values, abs(z * ((1 - e) * T + e * (2 * z + 0.3))) / (2 * abs(T)), rtol=1e-7)


# --------------------------------------------------------------------------- statistics


def test_final_sharpness_stats_truth_and_exclusions(rng):
    ds, _ = qrm_like(rng, n_seed=60)
    fs = ds.final_sharpness.values.copy()
    fs[0, 0, :7] = np.nan                      # 7 diverged members at one grid point
    fs[1, 1, 3] = np.inf                       # a non-finite, not flagged value
    status = np.where(np.isnan(fs), "diverged", "converged")
    ds["final_sharpness"] = (ds.final_sharpness.dims, fs)
    ds["status"] = (ds.final_sharpness.dims, encode_status(status))
    set_variable_attrs(ds["status"], "status")
    st = A.final_sharpness_stats(ds, quantiles=[0.1, 0.5, 0.9], bins=np.linspace(1.5, 2.5, 11))
    assert st.median_sharpness.dims == ("sigma_z", "sigma_J")
    assert int(st.n_diverged[0, 0]) == 7 and int(st.n_valid[0, 0]) == 53 and int(st.n_excluded[1, 1]) == 1
    assert float(st.frac_diverged[0, 0]) == pytest.approx(7 / 60)
    for i in range(3):
        for j in range(2):
            v = fs[i, j][np.isfinite(fs[i, j])]
            np.testing.assert_allclose(st.quantiles[i, j], np.quantile(v, [0.1, 0.5, 0.9]))
            np.testing.assert_allclose(st["median_sharpness"][i, j], np.median(v))
            np.testing.assert_allclose(st["mean_sharpness"][i, j], v.mean())
            np.testing.assert_array_equal(st.hist[i, j], np.histogram(v, np.linspace(1.5, 2.5, 11))[0])
            assert st.mean_ci_lower[i, j] < v.mean() < st.mean_ci_upper[i, j]
            assert float(st.frac_eos[i, j]) == pytest.approx(np.sum(abs(v - 2) < 0.05) / 60)
    # reproducible, and chunking does not change anything
    xr.testing.assert_identical(A.final_sharpness_stats(ds, quantiles=[0.1, 0.5, 0.9],
                                                        bins=np.linspace(1.5, 2.5, 11)), st)
    lazy = A.final_sharpness_stats(ds.chunk({"sigma_z": 1}), quantiles=[0.1, 0.5, 0.9],
                                   bins=np.linspace(1.5, 2.5, 11))
    xr.testing.assert_allclose(lazy.compute(), st)
    pt = A.phase_table(ds)
    np.testing.assert_allclose(pt.deviation, 2 - st["median_sharpness"])


def test_bootstrap_ci_coverage_width(rng):
    n, sigma = 400, 0.1
    v = xr.DataArray(2 + sigma * rng.normal(size=(50, n)), dims=("grid", "seed"))
    st = A.final_sharpness_stats(v, n_boot=2000)
    width = st.mean_ci_upper - st.mean_ci_lower
    np.testing.assert_allclose(float(width.mean()), 2 * 1.96 * sigma / np.sqrt(n), rtol=0.1)
    assert float(((st.mean_ci_lower < 2) & (2 < st.mean_ci_upper)).mean()) > 0.85


def test_stats_from_trajectories_and_errors(rng):
    ds, _ = qrm_like(rng)
    st = A.final_sharpness_stats(ds.drop_vars("final_sharpness"), n_boot=50)
    np.testing.assert_allclose(st["mean_sharpness"], ds.sharpness.isel(step=-1).mean("seed"))
    with pytest.raises(ValueError, match="'nope'"):
        A.final_sharpness_stats(ds, dim="nope")
    with pytest.raises(ValueError, match="final_sharpness"):
        A.final_sharpness_stats(xr.Dataset({"loss": ("seed", [1.0])}))
    with pytest.raises(ValueError, match="bins"):
        A.final_sharpness_stats(ds, bins=[2.0, 1.0])


# --------------------------------------------------------------------------- orbits


def test_catapult_orbits_closed_form():
    # catapult (ε = 1, E = 0): on T = 4, z' = z³ − 3z; fixed points z = ±2 with multipliers
    # 3z² − 3 = 9 and 1 + z² = 5; period-2 orbits {±√2} (multipliers 9, 9) and {−φ, 1/φ},
    # {−1/φ, φ} (multipliers −9, 5).
    fp = A.fixed_points(eps=1.0)
    np.testing.assert_allclose(np.sort(fp.z.values), [-2, 2], atol=1e-12)
    np.testing.assert_allclose(fp.T.values, 4.0, atol=1e-12)
    np.testing.assert_allclose(fp.multiplier_real.values, [[9, 5], [9, 5]], atol=1e-9)
    orb = A.period_two_orbits(eps=1.0)
    phi = (1 + np.sqrt(5)) / 2
    want = {(-np.sqrt(2), np.sqrt(2)): (9, 9), (-phi, 1 / phi): (-9, 5), (-1 / phi, phi): (-9, 5)}
    got = {tuple(np.round(z, 9)): tuple(np.round(m, 6)) for z, m in
           zip(orb.z.values, orb.multiplier_real.values)}
    assert len(got) == 3
    for zs, mult in want.items():
        key = tuple(np.round(zs, 9))
        assert key in got and got[key] == mult
    assert not orb.stable.any()


def test_fixed_line_multiplier_closed_form():
    T = np.linspace(-1, 4, 11)
    for kw in (dict(eps=0.1, E_tilde=0.3), dict(a=-2.0)):
        fp = A.fixed_points(**kw, line_T=T)
        np.testing.assert_allclose(fp.line_multiplier, 1 - T, atol=1e-12)
        np.testing.assert_array_equal(fp.line_stable, (T > 0) & (T < 2))


def test_orbits_satisfy_the_map():
    for kw in (dict(eps=0.1), dict(eps=0.5, E_tilde=0.2), dict(a=-3.0)):
        lam = -kw.get("eps", 0) if "eps" in kw else -1 / kw["a"]
        E = kw.get("E_tilde", 0.0)
        fp = A.fixed_points(**kw)
        z1, T1 = two_param_step(fp.z.values, fp["T"].values, lam, E)
        np.testing.assert_allclose(z1, fp.z.values, atol=1e-9)
        np.testing.assert_allclose(T1, fp["T"].values, atol=1e-9)
        orb = A.period_two_orbits(**kw)
        za, Ta = orb.z.values[:, 0], orb["T"].values[:, 0]
        zb, Tb = two_param_step(za, Ta, lam, E)
        np.testing.assert_allclose(zb, orb.z.values[:, 1], atol=1e-8)
        zc, Tc = two_param_step(zb, Tb, lam, E)
        np.testing.assert_allclose(zc, za, atol=1e-8)
        assert (abs(zb - za) > 1e-7).all()


def test_orbits_bad_input():
    with pytest.raises(ValueError, match="eps"):
        A.fixed_points(eps=1.5)
    with pytest.raises(ValueError, match="exactly one"):
        A.period_two_orbits(eps=0.1, a=2.0)
    with pytest.raises(ValueError, match="a must"):
        A.fixed_points(a=0.5)
    with pytest.raises(ValueError, match="z_range"):
        A.fixed_points(eps=0.1, z_range=(1, -1))


# --------------------------------------------------------------------------- accessor


def test_accessor_forwards(rng):
    ds, _ = qrm_like(rng)
    xr.testing.assert_identical(ds.eos.two_step(), A.two_step(ds))
    xr.testing.assert_identical(ds.sharpness.eos.classify(tail=20), A.classify(ds.sharpness, tail=20))
    xr.testing.assert_identical(ds.eos.final_sharpness_stats(n_boot=20), A.final_sharpness_stats(ds, n_boot=20))


def test_import_eosdyn_registers_accessor():
    code = ("import numpy as np, xarray as xr, eosdyn, sys; "
            "x = xr.DataArray(np.arange(4.0), dims='step'); "
            "assert x.eos.two_step().values.tolist() == [2.0, 2.0]; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


# --------------------------------------------------------------------------- every function × every layout


def _layouts():
    rng = np.random.default_rng(3)
    toy_ds = iterate_two_param([0.1, 0.3], [0.01, -0.02, 0.005], [1.99, 2.01, 1.5], 60)
    qrm_ds, _ = qrm_like(rng, n_step=60)
    # synthetic: extra dims in another order, step not last, network-like variables
    n = 60
    t = np.arange(n)
    y = 0.01 * rng.standard_normal((n, 2, 3, 4))
    z1 = np.cumprod(1 + 0.01 * rng.standard_normal((n, 2, 3, 4)), axis=0)
    syn = xr.Dataset({"sharpness": (("step", "foo", "seed", "bar"), 2 + y), "z1": (("step", "foo", "seed", "bar"), z1)},
                     coords={"step": t, "foo": [10, 20], "seed": [0, 1, 2], "bar": list("abcd")})
    syn = set_roles(syn, residual="z1", sharpness="sharpness")
    # the P = 2 map layout with a sharpness copy of T (as the contract's model datasets have)
    toy_ds["sharpness"] = toy_ds["T"]
    return {"toy": (toy_ds, "init"), "qrm": (qrm_ds, "seed"), "synthetic": (syn, "seed")}


LAYOUTS = _layouts()

FUNCS = {
    "two_step": lambda ds, red: A.two_step(ds),
    "even": lambda ds, red: A.even(ds),
    "odd": lambda ds, red: A.odd(ds),
    "classify": lambda ds, red: A.classify(ds),
    "fit_limit": lambda ds, red: A.fit_limit(ds, tail=30),
    "eos_coordinate": lambda ds, red: A.eos_coordinate(ds),
    "final_sharpness_stats": lambda ds, red: A.final_sharpness_stats(ds, dim=red, n_boot=50),
    "fit_increments": lambda ds, red: A.fit_increments(ds),
}

#: (layout, function) pairs that must be refused, with the message naming what is missing
REFUSED = {("qrm", "fit_increments"): "role 'residual'"}


def test_fit_increments_refuses_qrm_layout():
    with pytest.raises(ValueError, match="role 'residual'"):
        A.fit_increments(LAYOUTS["qrm"][0])


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("func", list(FUNCS))
def test_every_function_every_layout_dims_and_dask(layout, func):
    ds, red = LAYOUTS[layout]
    if (layout, func) in REFUSED:
        with pytest.raises(ValueError, match=REFUSED[layout, func]):
            FUNCS[func](ds, red)
        return
    res = FUNCS[func](ds, red)
    other = [d for d in ds.dims if d != "step"]
    if func == "final_sharpness_stats":
        other.remove(red)
    for d in other:
        assert d in res.dims, (func, d, res.dims)
        np.testing.assert_array_equal(res[d].values, ds[d].values)
    chunks = {d: 1 for d in other[:1]}
    lazy = FUNCS[func](ds.chunk(chunks), red)
    xr.testing.assert_allclose(lazy.compute(), res)


def test_results_round_trip_netcdf(tmp_path, rng):
    ds, _ = qrm_like(rng, n_step=40)
    results = {
        "classify": A.classify(ds).to_dataset(),
        "fit_limit": A.fit_limit(ds),
        "stats": A.final_sharpness_stats(ds, n_boot=30),
        "fixed_points": A.fixed_points(eps=0.5),
        "orbits": A.period_two_orbits(eps=1.0),
    }
    for name, res in results.items():
        for v in res.variables:
            assert "long_name" in res[v].attrs or v in res.dims, (name, v)
        eosdyn.to_netcdf(res, tmp_path / f"{name}.nc")
        back = eosdyn.open_dataset(tmp_path / f"{name}.nc").load()
        xr.testing.assert_identical(back, res)


def test_taylor_layout_offset_steps_and_early_stop(rng):
    """Taylor-model layout: steps start at t0 = 300, z(step, mode), scalar steps_taken, NaN padding."""
    n, t0, taken = 120, 300, 80
    y = rng.uniform(-0.05, 0.05, n)
    z = np.empty((n, 3))
    z[:2] = rng.normal(size=(2, 3))
    for t in range(n - 2):
        z[t + 2] = z[t] * (1 + 2 * y[t])
    s = 2 + y
    s[taken + 1:] = np.nan
    z[taken + 1:] = np.nan
    ds = xr.Dataset({"sharpness": ("step", s), "z_tilde": (("step", "mode"), z), "steps_taken": ((), taken)},
                    coords={"step": t0 + np.arange(n), "mode": np.arange(3)})
    ds = set_roles(ds, residual="z_tilde", sharpness="sharpness")
    f = A.fit_increments(ds)
    np.testing.assert_allclose(float(f.c1), 2.0, rtol=1e-9)
    assert int(f.n_points) == taken - 1
    # the NaN padding after steps_taken is not a divergence
    lab = A.classify(ds, as_strings=True)
    assert lab.dims == ("mode",) and (lab != "diverged").all()
    assert (A.classify(ds.drop_vars("steps_taken"), as_strings=True) == "diverged").all()


def test_orbits_from_dataset_and_accessor():
    ds = iterate_two_param([1.0], [0.1], [1.5], 5).isel(eps=0)
    # from the dataset's coordinates lam = -1 and E_tilde = 0: the catapult map, as eps = 1
    want = A.fixed_points(eps=1.0)
    want.attrs.pop("eps")
    xr.testing.assert_identical(ds.eos.fixed_points(), want)
    xr.testing.assert_equal(ds.eos.period_two_orbits(n_starts=20), A.period_two_orbits(eps=1.0, n_starts=20))
    shifted = ds.assign_coords(E_tilde=0.3)
    xr.testing.assert_equal(shifted.eos.fixed_points(), A.fixed_points(eps=1.0, E_tilde=0.3))
    with pytest.raises(ValueError, match="scalar"):
        A.fixed_points(iterate_two_param([0.1, 0.2], [0.1], [1.5], 5))


# --------------------------------------------------------------------------- safety issue: items 11, 12, 16, 17


def _padded(steps, values, steps_taken, status=None):
    """Trajectories (seed × step) with the given step coordinate, steps_taken and status."""
    ds = xr.Dataset({"sharpness": (("seed", "step"), np.asarray(values, float)),
                     "steps_taken": ("seed", np.asarray(steps_taken))},
                    coords={"seed": np.arange(len(values)), "step": np.asarray(steps)})
    if status is not None:
        ds["status"] = ("seed", encode_status(np.asarray(status)))
        set_variable_attrs(ds["status"], "status")
    return ds


def test_issue11_last_recorded_value_by_step_value():
    nan = np.nan
    # steps 10, 12, ..., 18 (offset start, stride 2); steps_taken counts from the first step
    ds = _padded([10, 12, 14, 16, 18],
                 [[1.0, 1.1, 1.2, 1.3, 1.4],      # ran to the end -> 1.4
                  [2.0, 2.1, 2.2, nan, nan],      # steps_taken 5 -> largest step <= 15 is 14 -> 2.2
                  [3.0, 3.1, nan, nan, nan],      # steps_taken 2 -> step 12 -> 3.1
                  [4.0, nan, nan, nan, nan]],     # steps_taken 1 -> step 10 -> 4.0
                 [8, 5, 2, 1])
    st = A.final_sharpness_stats(ds, n_boot=20)
    v = np.array([1.4, 2.2, 3.1, 4.0])
    assert int(st.n_valid) == 4 and int(st.n_excluded) == 0
    assert float(st.median_sharpness) == np.median(v)
    np.testing.assert_allclose(float(st.mean_sharpness), v.mean(), rtol=1e-15)
    np.testing.assert_allclose(float(st.std_sharpness), v.std(ddof=1), rtol=1e-14)
    # by position the NaN padding would be taken: 3 of 4 members lost (the issue's symptom)
    assert int(A.final_sharpness_stats(ds.drop_vars("steps_taken"), n_boot=20).n_valid) == 1
    # a diverged member is excluded and counted; a failed one is excluded
    ds2 = ds.copy()
    ds2["status"] = ("seed", encode_status(np.array(["max_steps", "diverged", "converged", "failed"])))
    set_variable_attrs(ds2["status"], "status")
    st2 = A.final_sharpness_stats(ds2, n_boot=20)
    assert (int(st2.n_valid), int(st2.n_diverged), int(st2.n_excluded)) == (2, 1, 2)
    assert float(st2.median_sharpness) == np.median([1.4, 3.1])


def test_issue11_non_monotonic_step_refused():
    ds = _padded([0, 2, 1, 3], [[1.0, 2.0, 3.0, 4.0]], [3])
    with pytest.raises(ValueError, match="'step'.*strictly increasing"):
        A.final_sharpness_stats(ds, n_boot=20)
    with pytest.raises(ValueError, match="'step'"):
        A.final_sharpness_stats(ds.assign_coords(step=[0, 1, 1, 2]), n_boot=20)


def test_issue12_classify_refuses_nan_tolerances():
    t = np.arange(200)
    q = xr.DataArray(np.cos(np.pi * (np.sqrt(5) - 1) * t), dims="step")     # quasi-periodic
    assert A.classify(q, as_strings=True).item() == "other"
    for kw in ({"rtol": float("nan")}, {"atol": float("nan")}, {"rtol": -1e-3}, {"atol": np.inf}):
        with pytest.raises(ValueError, match=next(iter(kw))):
            A.classify(q, **kw)
    with pytest.raises(TypeError, match="rtol"):
        A.classify(q, rtol="1e-3")


_T = np.arange(60)
_S = xr.DataArray(1.95 + 0.1 * (-1.0) ** _T + 0.3 * 0.9 ** _T, dims="step", coords={"step": _T},
                  name="sharpness")
_SEEDS = _S.expand_dims(seed=4).copy()
_TOY = iterate_two_param([0.1], [0.01, -0.02, 0.005], [1.99, 2.01, 1.5], 40)

BAD_OPTIONS = [
    # (call, exception, name the message must contain)
    (lambda: A.final_sharpness_stats(_SEEDS, eos_tol=np.nan), ValueError, "eos_tol"),
    (lambda: A.final_sharpness_stats(_SEEDS, eos_tol=-0.1), ValueError, "eos_tol"),
    (lambda: A.final_sharpness_stats(_SEEDS, eos_tol="0.05"), TypeError, "eos_tol"),
    (lambda: A.final_sharpness_stats(_SEEDS, edge=np.inf), ValueError, "edge"),
    (lambda: A.final_sharpness_stats(_SEEDS, edge="2"), TypeError, "edge"),
    (lambda: A.final_sharpness_stats(_SEEDS, n_boot=np.nan), ValueError, "n_boot"),
    (lambda: A.final_sharpness_stats(_SEEDS, n_boot=10**12), ValueError, "n_boot"),
    (lambda: A.final_sharpness_stats(_SEEDS, n_boot="100"), TypeError, "n_boot"),
    (lambda: A.final_sharpness_stats(_SEEDS, quantiles=[0.5, np.nan]), ValueError, "quantiles"),
    (lambda: A.final_sharpness_stats(_SEEDS, quantiles=["a"]), TypeError, "quantiles"),
    (lambda: A.final_sharpness_stats(_SEEDS, quantiles=[1.5]), ValueError, "quantiles"),
    (lambda: A.final_sharpness_stats(_SEEDS, ci=np.nan), ValueError, "ci"),
    (lambda: A.final_sharpness_stats(_SEEDS, ci="0.9"), TypeError, "ci"),
    (lambda: A.final_sharpness_stats(_SEEDS, seed=-1), ValueError, "seed"),
    (lambda: A.final_sharpness_stats(_SEEDS, bins="abc"), TypeError, "bins"),
    (lambda: A.fit_increments(_TOY, z_max=np.nan), ValueError, "z_max"),
    (lambda: A.fit_increments(_TOY, z_max="1"), TypeError, "z_max"),
    (lambda: A.fit_increments(_TOY, y_max=-1.0), ValueError, "y_max"),
    (lambda: A.fit_increments(_TOY, start=10, stop=5), ValueError, "start"),
    (lambda: A.fit_increments(_TOY, y="y"), TypeError, "y"),
    (lambda: A.fit_limit(_S, max_iter=np.nan), ValueError, "max_iter"),
    (lambda: A.fit_limit(_S, max_iter=-1), ValueError, "max_iter"),
    (lambda: A.fit_limit(_S, max_iter="50"), TypeError, "max_iter"),
    (lambda: A.fit_limit(_S, start=30, stop=10), ValueError, "start"),
    (lambda: A.fit_limit(_S, tail=2.5), ValueError, "tail"),
    (lambda: A.fit_limit(_S, min_points=np.nan), ValueError, "min_points"),
    (lambda: A.limiting_two_cycle(_S, edge=np.nan), ValueError, "edge"),
    (lambda: A.limiting_two_cycle(_S, edge="2"), TypeError, "edge"),
    (lambda: A.limiting_two_cycle(_S, max_iter="x"), TypeError, "max_iter"),
    (lambda: A.limiting_two_cycle(_S, bogus=1), TypeError, "bogus"),
    (lambda: A.fixed_points(eps=0.1, tol=np.nan), ValueError, "tol"),
    (lambda: A.fixed_points(eps=0.1, tol=0.0), ValueError, "tol"),
    (lambda: A.fixed_points(eps=0.1, tol="1e-10"), TypeError, "tol"),
    (lambda: A.fixed_points(eps=0.1, z_range=("a", "b")), TypeError, "z_range"),
    (lambda: A.fixed_points(eps=0.1, line_T=["a"]), TypeError, "line_T"),
    (lambda: A.period_two_orbits(eps=0.1, tol=-1.0), ValueError, "tol"),
    (lambda: A.map_jacobian(0.0, 1.5, lam=-0.1, n=0), ValueError, "n must"),
    (lambda: A.map_jacobian(0.0, 1.5, lam=-0.1, n=np.nan), ValueError, "n must"),
    (lambda: A.map_jacobian(0.0, 1.5, lam=-0.1, n="2"), TypeError, "n must"),
    (lambda: A.map_jacobian(0.0, 1.5, lam=np.nan), ValueError, "lam"),
    (lambda: A.classify(_S, tail=np.nan), ValueError, "tail"),
    (lambda: A.classify(_S, tail="12"), TypeError, "tail"),
    (lambda: A.classify(_S, tail=2), ValueError, "tail"),
    (lambda: A.classify(_S, as_strings="yes"), TypeError, "as_strings"),
    (lambda: A.eos_coordinate(_S, edge=np.nan), ValueError, "edge"),
]


@pytest.mark.parametrize("case", range(len(BAD_OPTIONS)))
def test_issue12_17_bad_options_are_named(case):
    call, exc, name = BAD_OPTIONS[case]
    with pytest.raises(exc, match=name):
        call()


@pytest.mark.parametrize("func", [A.two_step, A.even, A.odd, A.fit_limit, A.classify, A.limiting_two_cycle,
                                  A.eos_coordinate])
def test_issue12_complex_input_refused(func):
    with pytest.raises(TypeError, match=r"\bx must hold real numbers|ds must hold real numbers"):
        func(_S.astype(complex))
    ds = xr.Dataset({"sharpness": _S.astype(complex)})
    with pytest.raises(TypeError, match="sharpness"):
        func(ds)
    with pytest.raises(TypeError, match="z must be real"):
        A.map_jacobian(np.array([0.1 + 0j]), np.array([1.5]), lam=-0.1)


@pytest.mark.parametrize("func", [A.even, A.odd, A.fit_limit, A.limiting_two_cycle, A.two_step, A.classify,
                                  lambda x: A.final_sharpness_stats(x, n_boot=20)])
def test_issue17_empty_step_named(func):
    empty = _SEEDS.isel(step=slice(0, 0))
    with pytest.raises(ValueError, match="'step'"):
        func(empty)
    with pytest.raises(ValueError, match="'step'"):
        func(xr.Dataset({"sharpness": empty}))


def test_issue16_dask_stats_equal_bit_for_bit(rng):
    v = xr.DataArray(2 + 0.37 * rng.standard_normal((7, 5, 33)), dims=("a", "b", "seed"),
                     coords={"a": np.arange(7), "b": np.arange(5)}, name="final_sharpness")
    v[0, 0, 3] = np.nan
    v[1, 2, :] = np.nan
    v[2, 2, 1:] = np.nan                              # one valid member: std NaN
    eager = A.final_sharpness_stats(v, n_boot=200)
    for chunks in ({"a": 1}, {"a": 2, "b": 3}, {"seed": 5}, {"a": 3, "seed": 7}):
        lazy = A.final_sharpness_stats(v.chunk(chunks), n_boot=200)
        assert lazy.mean_sharpness.chunks is not None      # stays lazy
        xr.testing.assert_identical(lazy.compute(), eager)
    # independent truth (numpy), to rounding
    a = v.values
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        np.testing.assert_allclose(eager.mean_sharpness, np.nanmean(a, -1), rtol=1e-14)
        np.testing.assert_allclose(eager.std_sharpness, np.nanstd(a, -1, ddof=1), rtol=1e-13)
    assert np.isnan(eager.std_sharpness[2, 2]) and float(eager.mean_sharpness[2, 2]) == a[2, 2, 0]
    # also from trajectories with early stops (the issue-11 path), chunked along seed
    ds = _padded(np.arange(6), 2 + 0.1 * rng.standard_normal((9, 6)), [5, 5, 3, 4, 1, 5, 2, 5, 0])
    ds = ds.expand_dims(g=3).copy()
    e2 = A.final_sharpness_stats(ds, n_boot=50)
    xr.testing.assert_identical(A.final_sharpness_stats(ds.chunk({"seed": 4, "g": 1}), n_boot=50).compute(), e2)
