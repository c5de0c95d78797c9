"""Comparisons of GD with gradient flow and the central flow (eosdyn.analysis.flows, issue 15).

Truth: hand-computed windows and norms on synthetic datasets; a period-2 orbit with known amplitude;
on a real QRM run, the GD loss recomputed from θ and the GD/GF agreement at the first steps.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import eosdyn
from eosdyn import analysis
from eosdyn.kernels import derivatives as d

METHODS = ["gd", "gradient_flow", "central_flow"]


def _synthetic(n=12, P=3, seed=0):
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal((3, n, P))
    loss = rng.uniform(1.0, 2.0, (3, n))
    pred = rng.uniform(1.0, 2.0, (3, n))
    return xr.Dataset({"theta": (("method", "step", "param"), theta), "loss": (("method", "step"), loss),
                       "predicted_loss": (("method", "step"), pred)},
                      coords={"method": METHODS, "step": np.arange(n)})


def test_time_averaged_loss_by_hand():
    ds = _synthetic()
    out = analysis.time_averaged_loss(ds, windows=[1, 3, 10])
    gd, pr = ds.loss.values[0], ds.predicted_loss.values[2]
    for w in (1, 3, 10):
        for t in range(12):
            got = out.sel(window=w).isel(step=t)
            if t + w > 12:
                assert np.isnan(got.time_averaged_loss)
                continue
            assert float(got.time_averaged_loss) == pytest.approx(gd[t:t + w].mean(), rel=1e-14)
            assert float(got.loss_relative_error) == pytest.approx(gd[t:t + w].mean() / pr[t:t + w].mean() - 1,
                                                                   rel=1e-12, abs=1e-14)


def test_distances_and_separation_by_hand():
    ds = _synthetic()
    out = analysis.flow_distances(ds)
    th = ds.theta.values
    np.testing.assert_allclose(out.distance_central_flow, np.linalg.norm(th[0] - th[2], axis=1), rtol=1e-14)
    np.testing.assert_allclose(out.distance_gradient_flow, np.linalg.norm(th[0] - th[1], axis=1), rtol=1e-14)
    # GD moves along a line; gradient flow follows it exactly up to step 6, then lags
    n = 12
    th = np.zeros((3, n, 2))
    th[0, :, 0] = np.arange(n)
    th[1, :, 0] = np.minimum(np.arange(n), 6 + 0.5 * np.maximum(np.arange(n) - 6, 0))
    ds2 = xr.Dataset({"theta": (("method", "step", "param"), th)}, coords={"method": METHODS, "step": np.arange(n)})
    # distance at step 7 is 0.5, 0.5/7 = 0.071 > 0.05; never above 0.5 x the path
    assert int(analysis.separation_step(ds2, rtol=0.05)) == 7
    assert int(analysis.separation_step(ds2, rtol=0.5)) == -1
    with pytest.raises(ValueError, match="rtol"):
        analysis.separation_step(ds2, rtol=0.0)
    with pytest.raises(ValueError, match="method"):
        analysis.flow_distances(ds2.isel(method=[0, 1]))
    with pytest.raises(ValueError, match="windows"):
        analysis.time_averaged_loss(_synthetic(), windows=[0])


def test_measured_oscillation_of_a_period_two_orbit():
    t = np.arange(20)
    u = np.array([0.6, 0.8])
    x = 0.3 * np.exp(-0.01 * t)
    # smooth linear drift + oscillation along u; the second difference of a linear drift is zero
    theta = xr.DataArray(0.01 * t[:, None] * np.array([1.0, -1.0]) + ((-1.0) ** t * x)[:, None] * u,
                         dims=("step", "param"))
    m = analysis.measured_oscillation(theta).values
    # exact: Δ²θ_t = (−1)^t (x_{t+1} + 2 x_t + x_{t−1}) u, so (‖Δ²θ‖/4)² = ((x_{t+1} + 2x_t + x_{t−1})/4)²
    want = ((x[2:] + 2 * x[1:-1] + x[:-2]) / 4) ** 2
    np.testing.assert_allclose(m[1:-1], want, rtol=1e-12)
    assert np.isnan(m[0]) and np.isnan(m[-1])


def test_on_a_qrm_run():
    ds = eosdyn.qrm.flow_comparison(D=6, P=10, sigma_z=0.3, sigma_J2=0.1, steps=12)
    # GD loss recomputed from the recorded theta
    Q, J0, z0 = eosdyn.qrm.initial_state(0, D=6, P=10, sigma_z=[0.3], sigma_J=[np.sqrt(0.1)])
    for s in (0, 5, 12):
        z, _ = d.model_state(Q, J0[0], z0[0], ds.theta.sel({"method": "gd"}).isel(step=s).values)
        assert float(ds.loss.sel({"method": "gd"}).isel(step=s)) == pytest.approx(0.5 * z @ z, rel=1e-12)
    dist = analysis.flow_distances(ds)
    assert float(dist.distance_gradient_flow.isel(step=0)) == 0.0
    # one GD step against the flow over one unit of time: O(η² ‖H ∇L‖) apart, far below the step itself
    step1 = float(np.linalg.norm(ds.theta.sel({"method": "gd"}).isel(step=1)))
    assert float(dist.distance_gradient_flow.isel(step=1)) < 0.5 * step1
    out = analysis.time_averaged_loss(ds, windows=[2])
    assert out.sizes == {"window": 1, "step": 13}


@pytest.mark.parametrize("kw, match", [(dict(rtol=-1.0), "rtol"), (dict(band=5.0), "band"), (dict(kappa=-1.0), "kappa"),
                                       (dict(sigma_z=-1.0), "sigma_z"), (dict(steps=0), "steps"),
                                       (dict(sigma_J2=[0.1, 0.2]), "sigma_J2")])
def test_flow_comparison_checks_every_option_first(kw, match, monkeypatch):
    import eosdyn.models.central as central

    def boom(*a, **k):  # nothing may run before the checks
        raise AssertionError("a producer ran before the options were checked")

    monkeypatch.setattr(central, "self_stabilization", boom)
    with pytest.raises(ValueError, match=match):
        eosdyn.qrm.flow_comparison(**{**dict(D=3, P=4, steps=3), **kw})


def test_measured_oscillation_along_a_direction():
    import numpy as np
    import xarray as xr

    from eosdyn.analysis import measured_oscillation

    # θ_t = (1 + 0.01 t) c + (−1)^t (x u + y w), u ⟂ w unit vectors: along u the amplitude is x
    rng = np.random.default_rng(1)
    u, w = np.linalg.qr(rng.standard_normal((5, 2)))[0].T
    c = rng.standard_normal(5)
    t = np.arange(12)
    x, y = 0.3, 0.4
    th = xr.DataArray((1 + 0.01 * t)[:, None] * c + ((-1.0) ** t)[:, None] * (x * u + y * w), dims=("step", "param"))
    along = measured_oscillation(th, direction=xr.DataArray(u, dims="param"))
    every = measured_oscillation(th)
    np.testing.assert_allclose(along.values[1:-1], x ** 2, rtol=1e-12)
    np.testing.assert_allclose(every.values[1:-1], x ** 2 + y ** 2, rtol=1e-12)
    with pytest.raises(ValueError, match="direction"):
        measured_oscillation(th, direction=xr.DataArray(u[:3], dims="param"))


def test_self_stabilization_records_the_top_eigenvector():
    import numpy as np

    import eosdyn
    from eosdyn.kernels.derivatives import loss_hessian, model_state

    ds = eosdyn.qrm.self_stabilization(D=4, P=6, sigma_z=0.3, sigma_J2=0.2, seeds=1, steps=6, record_every=2,
                                       record_theta=True, stop="never")
    eosdyn.check_dataset(ds)
    Q, J0, z0 = eosdyn.qrm.initial_state(0, D=4, P=6, sigma_z=[0.3], sigma_J=[np.sqrt(0.2)])
    for k in range(ds.sizes["step"]):
        th = ds.theta.isel(seed=0, step=k).values
        z, J = model_state(Q, J0[0], z0[0], th)
        H = loss_hessian(Q, J, z)
        lam, vec = np.linalg.eigh(H)
        u = ds.top_eigenvector.isel(seed=0, step=k).values
        np.testing.assert_allclose(abs(u @ vec[:, -1]), 1.0, rtol=1e-10)
