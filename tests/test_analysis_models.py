"""eosdyn.analysis on real model output (eosdyn.toy.two_param, eosdyn.qrm.sweep).

Truth: the Eq. 18-19 coefficients (closed forms of the paper), the fixed-line multiplier 1 − T,
the models' own fate flags (status), and plain NumPy recomputation of statistics.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import eosdyn
from eosdyn import analysis as A
from eosdyn.conventions import STATUS_VALUES, decode_status, roles_of


def _init(z0, T0):
    return (xr.DataArray(np.asarray(z0, float), dims="init", coords={"init": np.arange(len(z0))}),
            xr.DataArray(np.asarray(T0, float), dims="init", coords={"init": np.arange(len(T0))}))


def test_two_param_eq18_19_coefficients():
    rng = np.random.default_rng(11)
    n = 40
    z0, T0 = _init(rng.uniform(2e-5, 1e-4, n) * rng.choice([-1, 1], n), 2.0 + rng.uniform(-1e-3, 1e-3, n))
    eps = np.array([0.05, 0.1, 0.3])
    ds = eosdyn.toy.two_param(eps=eps, z0=z0, T0=T0, steps=200)
    assert ds.z.dims == ("eps", "init", "step")
    assert roles_of(ds)["residual"] == "z" and roles_of(ds)["curvature"] == "T"
    f = A.fit_increments(ds, over=("init",))
    e = f.eps.values
    np.testing.assert_allclose(f.c1, 2.0, rtol=1e-3)
    np.testing.assert_allclose(f.c2, -2 * (4 - 3 * e + 4 * e ** 2), rtol=1e-3)
    np.testing.assert_allclose(f.c3, -4 * e, rtol=1e-3)
    # y settles towards y* = −2ε/(4 − 3ε + 4ε²) (Eq. 19) only slowly; here just check the sign/scale
    y = A.eos_coordinate(ds)
    assert y.dims == ds.z.dims and np.all(np.isfinite(y))


def test_two_param_fates_and_fixed_line():
    z0, T0 = _init([0.05, 0.1, 1.5], [0.6, 1.3, 6.0])
    ds = eosdyn.toy.two_param(eps=[0.1, 0.4], z0=z0, T0=T0, steps=400)
    lab = A.classify(ds, as_strings=True)
    assert lab.dims == ("eps", "init")
    expected = np.where(decode_status(ds.status) == "diverged", "diverged", "fixed_point")
    np.testing.assert_array_equal(lab.values, expected)
    assert (lab.sel(init=2) == "diverged").all() and (lab.sel(init=[0, 1]) == "fixed_point").all()
    conv = ds.isel(init=[0, 1])
    fz, fT = A.fit_limit(conv.z, start=100), A.fit_limit(conv["T"], start=100)
    np.testing.assert_allclose(fz.limit, 0.0, atol=1e-12)
    for e in conv.eps.values:
        for i in conv.init.values:
            Ti = float(fT.cycle_mean.sel(eps=e, init=i))
            np.testing.assert_allclose(Ti, float(conv.final_sharpness.sel(eps=e, init=i)), atol=1e-9)
            mult = float(A.fixed_points(eps=float(e), line_T=[Ti]).line_multiplier[0])
            np.testing.assert_allclose(float(fz.rate.sel(eps=e, init=i, branch="odd")), abs(mult), rtol=1e-6)


@pytest.fixture(scope="module")
def qrm_ds():
    return eosdyn.qrm.sweep(D=6, P=12, sigma_z=[0.2, 1.0], sigma_J2=[0.2, 0.5], seeds=range(4), steps=1500,
                            record_every=1)


def test_qrm_classify_and_fits_follow_status(qrm_ds):
    ds = qrm_ds
    lab = A.classify(ds[["sharpness", "steps_taken", "status"]], rtol=1e-4, as_strings=True)
    assert lab.dims == ("sigma_z", "sigma_J", "seed")
    status = decode_status(ds.status)
    assert ((lab == "diverged") == (status == "diverged")).all()
    assert (lab.where(status == "converged", "fixed_point") == "fixed_point").all()
    cyc = A.limiting_two_cycle(ds)
    ok = status == "converged"
    np.testing.assert_allclose(cyc.cycle_mean.where(ok), ds.final_sharpness.where(ok), atol=1e-3)
    assert cyc.cycle_mean.where(~ok).isnull().all()


def test_qrm_final_sharpness_stats(qrm_ds):
    ds = qrm_ds
    st = A.final_sharpness_stats(ds, n_boot=200)
    assert st.median_sharpness.dims == ("sigma_z", "sigma_J")
    n_div = (ds.status == STATUS_VALUES["diverged"]).sum("seed")
    np.testing.assert_array_equal(st.n_diverged, n_div)
    np.testing.assert_array_equal(st.n_valid, ds.seed.size - n_div)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning, match="All-NaN"):
        med = np.nanmedian(ds.final_sharpness.values, axis=-1)
    np.testing.assert_allclose(st.median_sharpness, med)
    assert A.two_step(ds).sharpness.dims == ds.sharpness.dims


def test_docs_examples_run():
    """Every python block of docs/analysis.md runs (the user guide stays true)."""
    import pathlib
    import re

    src = (pathlib.Path(__file__).parents[1] / "docs" / "analysis.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", src, re.S)
    assert len(blocks) >= 7
    env: dict = {}
    for b in blocks:
        exec(compile(b, "docs/analysis.md", "exec"), env)
    np.testing.assert_allclose(env["f"].c1, 2.0, rtol=1e-3)


def test_classify_and_eos_coordinate_lazy_equal_eager():
    z0, T0 = _init([0.05, 0.1, 1.5, 0.01], [0.6, 1.3, 6.0, 1.99])
    ds = eosdyn.toy.two_param(eps=[0.1, 0.4], z0=z0, T0=T0, steps=120)
    lazy = ds.chunk({"init": 2, "step": 50})
    c = A.classify(lazy)
    assert c.chunks is not None
    xr.testing.assert_identical(c.compute(), A.classify(ds))
    # y near the EOS (small z̃; far from it theory.eos_coordinate is not pointwise, see report)
    z0, T0 = _init([0.01, -0.02, 0.005, 0.03], [1.99, 2.01, 1.95, 1.9])
    near = eosdyn.toy.two_param(eps=[0.1, 0.4], z0=z0, T0=T0, steps=60)
    y = A.eos_coordinate(near.chunk({"init": 2, "step": 25}))
    assert y.chunks is not None
    xr.testing.assert_allclose(y.compute(), A.eos_coordinate(near))


# --------------------------------------------------------------------------- safety issue, item 11


def test_issue11_stats_from_sharpness_trajectory_equal_final_sharpness():
    """Early-stopped members are NaN-padded: the trajectory's last *position* is padding, so the
    statistics must come from each member's last recorded value (step <= steps_taken)."""
    ds = eosdyn.qrm.sweep(D=3, P=4, sigma_z=[0.1, 0.5], sigma_J2=[0.1, 0.3], seeds=6, steps=80, record_every=1)
    assert (ds.steps_taken < 80).any()                         # the reproducer has early stops
    ref = A.final_sharpness_stats(ds, n_boot=100)
    traj = A.final_sharpness_stats(ds.drop_vars("final_sharpness"), n_boot=100)
    np.testing.assert_array_equal(ref.n_valid.values.ravel(), [6, 6, 5, 4])
    np.testing.assert_array_equal(traj.n_valid.values.ravel(), [6, 6, 5, 4])
    np.testing.assert_allclose(traj.median_sharpness.values.ravel()[1:3], [0.773, 1.793], atol=1e-3)
    for k in ("n_total", "n_valid", "n_diverged", "n_excluded", "frac_converged", "frac_diverged", "hist"):
        xr.testing.assert_identical(traj[k], ref[k])
    # the sweep's final_sharpness and the trajectory's last value agree to rounding (1e-15)
    xr.testing.assert_allclose(traj, ref, rtol=1e-12, atol=1e-14)
    # independent truth: the value at step = steps_taken, picked by label; exactly what is used
    last = ds.sharpness.sel(step=ds.steps_taken)
    np.testing.assert_allclose(last.values, ds.final_sharpness.values, rtol=1e-12)
    by_label = A.final_sharpness_stats(ds.assign(final_sharpness=last.drop_vars("step")), n_boot=100)
    xr.testing.assert_identical(traj, by_label)


def test_issue11_stats_with_record_stride_goes_by_step_value():
    """record_every=3: steps_taken is often not recorded; the largest recorded step <= steps_taken is used."""
    ds = eosdyn.qrm.sweep(D=3, P=4, sigma_z=[0.1, 0.5], sigma_J2=[0.1, 0.3], seeds=6, steps=80, record_every=3)
    st = A.final_sharpness_stats(ds.drop_vars("final_sharpness"), n_boot=50)
    steps = ds.step.values
    truth = np.full(ds.steps_taken.shape, np.nan)
    for idx in np.ndindex(truth.shape):
        k = np.searchsorted(steps, int(ds.steps_taken.values[idx]), side="right") - 1
        truth[idx] = ds.sharpness.values[idx + (k,)]
    ok = decode_status(ds.status).values != "diverged"
    truth = np.where(ok & np.isfinite(truth), truth, np.nan)
    np.testing.assert_allclose(st.median_sharpness.values, np.nanmedian(truth, axis=-1))
    np.testing.assert_array_equal(st.n_valid.values, np.isfinite(truth).sum(-1))
