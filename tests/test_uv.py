"""The uv model (Lewkowycz et al. 2020, arXiv 2003.02218) as the registry system ``eosdyn.toy.uv``.

Independent truth: GD in parameter space on explicit random u, v ∈ R^n, written here
(f = uᵀv/√n, z = f − y, u' = u − η z v/√n, v' = v − η z u/√n, λ = (‖u‖² + ‖v‖²)/n), and the
paper's statements about the three regimes of η λ₀ separated by 2 and 4 (large width).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import eosdyn
from eosdyn.conventions import STATUS_VALUES, roles_of


def _parameter_gd(u, v, eta, y, steps):
    """Reference: GD on u, v; returns z_t, λ_t and the round-off scale Σ|u_i v_i|/√n + |y| of
    z_t = uᵀv/√n − y, for t = 0..steps (inf/NaN once it overflows)."""
    n = u.size
    s = np.sqrt(n)
    zs, lams, scale = [], [], []
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps + 1):
            z = u @ v / s - y
            zs.append(z)
            lams.append((u @ u + v @ v) / n)
            scale.append(np.abs(u * v).sum() / s + abs(y))
            u, v = u - eta * z * v / s, v - eta * z * u / s
    return np.array(zs), np.array(lams), np.array(scale)


@pytest.mark.parametrize("n", [3, 50])
@pytest.mark.parametrize("sharp0", [0.5, 1.5, 2.5, 3.5, 5.0])   # η λ₀: below 2, catapult (2, 4), above 4
@pytest.mark.parametrize("y", [0.0, 0.7])
def test_reduction_equals_parameter_space_gd(n, sharp0, y):
    rng = np.random.default_rng(1000 * n + int(10 * sharp0))
    u, v = rng.standard_normal(n), rng.standard_normal(n)
    lam0 = (u @ u + v @ v) / n
    z0 = u @ v / np.sqrt(n) - y
    eta = sharp0 / lam0
    steps = 100
    zr, lr, scale = _parameter_gd(u, v, eta, y, steps)
    ds = eosdyn.toy.uv(n=n, eta=eta, y=y, z0=z0, lam0=lam0, steps=steps)
    z, lam = ds.z.values, ds.lam.values
    ok = np.isfinite(z)           # the producer masks steps after diverged_at with NaN
    assert ok[0] and ok.sum() >= 5
    if int(ds.diverged_at) >= 0:  # compare the states before divergence (loss <= diverge_loss)
        assert not ok[int(ds.diverged_at) + 1:].any()
        ok[int(ds.diverged_at):] = False
    if sharp0 < 4:
        assert ok.all(), "only eta*lam0 > 4 may diverge"
    # z relative to the magnitude of the terms it is computed from in parameter space (the sum
    # uᵀv cancels as z -> 0, so the reference itself is only accurate to round-off of that scale).
    # In the divergent regime, once η² z²/n > 1 the cubic terms dominate and every step about
    # triples the relative round-off of both computations: those steps are checked to 1e-9.
    with np.errstate(over="ignore", invalid="ignore"):
        blow = (eta * eta * zr * zr / n > 1.0) if sharp0 > 4 else np.zeros(zr.shape, bool)
    for rtol, m in ((1e-12, ok & ~blow), (1e-9, ok & blow)):
        assert np.all(np.abs(z[m] - zr[m]) <= rtol * (np.abs(zr[m]) + scale[m]))
        assert np.all(np.abs(lam[m] - lr[m]) <= rtol * np.abs(lr[m]))
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(ds.sharpness.values[ok], eta * lam[ok])
        np.testing.assert_array_equal(ds.loss.values[ok], 0.5 * z[ok] * z[ok])


def test_reduction_step_matches_the_formulas():
    """One step by hand: z' = z − η z λ + η² z² f/n, λ' = λ − 4 η z f/n + η² z² λ/n."""
    n, eta, y, z0, lam0 = 7.0, 0.9, 0.4, 0.3, 2.2
    f = z0 + y
    ds = eosdyn.toy.uv(n=n, eta=eta, y=y, z0=z0, lam0=lam0, steps=1)
    np.testing.assert_allclose(ds.z.values[1], z0 - eta * z0 * lam0 + eta**2 * z0**2 * f / n, rtol=1e-15)
    np.testing.assert_allclose(ds.lam.values[1], lam0 - 4 * eta * z0 * f / n + eta**2 * z0**2 * lam0 / n,
                               rtol=1e-15)


# --------------------------------------------------------------------------- the three regimes
N, Z0, ETA = 1000.0, 1e-3, 1.0


def test_lazy_regime_below_two_converges_with_lambda_nearly_unchanged():
    sharp0 = np.array([0.5, 1.0, 1.5, 1.9])
    ds = eosdyn.toy.uv(n=N, eta=ETA, z0=Z0, lam0=sharp0 / ETA, steps=5000)
    assert (ds.status == STATUS_VALUES["converged"]).all()
    assert bool((ds.loss.isel(step=1) < ds.loss.isel(step=0)).all())       # the loss decreases at once
    assert float(np.max(np.abs(ds.final_lam.values / ds.lam0.values - 1.0))) < 1e-3
    assert bool((ds.final_sharpness < 2).all())


def test_catapult_between_two_and_four_loss_grows_then_converges_below_two():
    sharp0 = np.array([2.2, 2.5, 3.0, 3.5, 3.8])
    ds = eosdyn.toy.uv(n=N, eta=ETA, z0=Z0, lam0=sharp0 / ETA, steps=5000)
    assert (ds.status == STATUS_VALUES["converged"]).all()
    loss = ds.loss.values
    assert np.all(loss[:, 1] > loss[:, 0])                                  # the loss first grows ...
    assert np.all(np.nanmax(loss, axis=1) > 100 * loss[:, 0])                # ... by orders of magnitude
    assert np.all(ds.final_sharpness.values < 2.0)                          # catapulted below the edge
    assert np.all(ds.final_sharpness.values < sharp0)                       # the sharpness decreased


def test_divergence_well_above_four():
    sharp0 = np.array([4.5, 5.0, 6.0, 8.0])
    ds = eosdyn.toy.uv(n=N, eta=ETA, z0=Z0, lam0=sharp0 / ETA, steps=5000, stop="member")
    assert (ds.status == STATUS_VALUES["diverged"]).all()
    assert (ds.diverged_at > 0).all()


# --------------------------------------------------------------------------- interface
def test_schema_roles_and_grid():
    eta = xr.DataArray([0.5, 1.0], dims="lr")
    ds = eosdyn.toy.uv(n=[10, 100], eta=eta, y=0.2, z0=0.05, lam0=2.0, steps=3, record_every=None)
    assert ds.z.dims == ("n", "lr", "step") and ds.sizes["step"] == 2
    assert roles_of(ds) == {"residual": "z", "curvature": "lam", "sharpness": "sharpness", "loss": "loss"}
    assert eosdyn.conventions.read_config(ds)["function"] == "eosdyn.toy.uv"
    for v in ("final_z", "final_lam", "final_sharpness", "final_loss", "status", "steps_taken"):
        assert v in ds
    np.testing.assert_array_equal(ds.lam.isel(step=0).values, 2.0)
    np.testing.assert_allclose(ds.sharpness.values, ds.eta.values[None, :, None] * ds.lam.values)
    assert "NTK" in ds.lam.attrs["long_name"] and ds.lam0.attrs["long_name"].startswith("initial NTK")
    eosdyn.check_dataset(ds)


def test_float32_runs():
    ds = eosdyn.toy.uv(n=100, eta=1.0, z0=0.1, lam0=1.5, steps=50, dtype="float32")
    assert ds.z.dtype == np.float32 and int(ds.status) == STATUS_VALUES["converged"]


@pytest.mark.parametrize("kw, match", [
    ({"n": 0.5}, "n must be"),
    ({"n": np.inf}, "n must be"),
    ({"eta": 0.0}, "eta must be"),
    ({"eta": -1.0}, "eta must be"),
    ({"lam0": 0.0}, "lam0 must be"),
    ({"z0": np.nan}, "z0 must be"),
    ({"y": np.inf}, "y must be"),
    ({"z0": 3.0, "lam0": 0.5, "n": 10}, r"z0, lam0 must be reachable"),
    ({"z0": 0.0, "y": -3.0, "lam0": 0.5, "n": 10}, r"z0, lam0 must be reachable"),
])
def test_validation(kw, match):
    base = {"n": 10, "eta": 1.0, "z0": 0.1, "lam0": 1.0, "steps": 2}
    with pytest.raises(ValueError, match=match):
        eosdyn.toy.uv(**{**base, **kw})


def test_reachable_boundary_is_accepted():
    """u = v gives ‖u‖² + ‖v‖² = 2 uᵀv exactly: λ₀ = 2 f₀/n is reachable."""
    ds = eosdyn.toy.uv(n=4, eta=0.1, z0=1.0, y=1.0, lam0=1.0, steps=2)
    assert ds.sizes["step"] == 3
