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


@pytest.mark.parametrize("n", [3, 50, 1000])
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
    ({"z0": 1.0, "lam0": 0.1, "n": 100}, r"z0, lam0 must be reachable"),  # 2 abs(f0)/sqrt(n) = 0.2
])
def test_validation(kw, match):
    base = {"n": 10, "eta": 1.0, "z0": 0.1, "lam0": 1.0, "steps": 2}
    with pytest.raises(ValueError, match=match):
        eosdyn.toy.uv(**{**base, **kw})


def test_reachable_boundary_is_accepted():
    """u = v gives ‖u‖² + ‖v‖² = 2 uᵀv = 2 √n f exactly: λ₀ = 2 f₀/√n is reachable, below is not."""
    u = v = np.ones(4)
    f0, lam0 = u @ v / 2.0, (u @ u + v @ v) / 4.0           # f0 = 2 = lam0 = 2 f0 / sqrt(4)
    ds = eosdyn.toy.uv(n=4, eta=0.1, z0=f0 - 1.0, y=1.0, lam0=lam0, steps=2)
    assert ds.sizes["step"] == 3
    zr, lr, _ = _parameter_gd(u, v, 0.1, 1.0, 2)
    np.testing.assert_allclose(ds.z.values, zr, rtol=1e-14)
    np.testing.assert_allclose(ds.lam.values, lr, rtol=1e-14)
    with pytest.raises(ValueError, match="reachable"):
        eosdyn.toy.uv(n=4, eta=0.1, z0=f0 - 1.0, y=1.0, lam0=lam0 * (1 - 1e-12), steps=2)


# --------------------------------------------------------------------------- exact finite-n boundaries
@pytest.mark.parametrize("n", [4.0, 16.0, 256.0, 65536.0])
def test_first_step_loss_growth_boundary_is_two_plus_eta2_z0_f0_over_n(n):
    """z₁ = z₀ (1 − η λ₀ + η² z₀ f₀/n): the loss grows at step 1 iff η λ₀ > s* = 2 + η² z₀ f₀/n
    (η = s/λ₀); checked just below and above the closed-form root, for y = 0 and y ≠ 0."""
    from eosdyn._claims_uv import lazy_boundary

    for y in (0.0, 0.3):
        lam0, z0 = 2.0, 1.0
        star = float(lazy_boundary(n, lam0, z0, y))
        eta = star / lam0
        np.testing.assert_allclose(star, 2.0 + eta * eta * z0 * (z0 + y) / n, rtol=1e-13)
        s = np.array([star * (1 - 1e-6), star * (1 + 1e-6)])
        ds = eosdyn.toy.uv(n=n, eta=s / lam0, y=y, z0=z0, lam0=lam0, steps=1)
        grew = ds.loss.isel(step=1).values > ds.loss.isel(step=0).values
        assert grew.tolist() == [False, True]


@pytest.mark.parametrize("n", [2.0, 8.0, 1024.0, 1e6])
def test_divergence_boundary_is_exactly_four_at_y_zero(n):
    """y = 0: λ' − λ = η z² (η λ − 4)/n, so λ falls for η λ₀ < 4 (and GD converges), stays for
    η λ₀ = 4, grows (and GD diverges) above, at every width."""
    sharp0 = np.array([4.0 - 1e-3, 4.0 + 1e-3])
    ds = eosdyn.toy.uv(n=n, eta=1.0, z0=1.0, lam0=sharp0, steps=20000, stop="member", record_every=None)
    assert ds.status.values.tolist() == [STATUS_VALUES["converged"], STATUS_VALUES["diverged"]]
    at4 = eosdyn.toy.uv(n=n, eta=1.0, z0=1.0, lam0=4.0, steps=200)
    assert np.all(at4.lam.values == 4.0)                                  # exactly invariant


def test_no_catapult_window_when_8_z0_f0_exceeds_lam0_squared_n():
    """With 8 z₀ f₀ > λ₀² n the first step never grows the loss below η λ₀ = 4: n = 1.5, λ₀ = 2, f₀ = 1."""
    from eosdyn._claims_uv import lazy_boundary

    assert np.isnan(lazy_boundary(1.5, 2.0, 1.0, 0.0))
    s = np.linspace(0.5, 3.99, 50)
    ds = eosdyn.toy.uv(n=1.5, eta=s / 2.0, z0=1.0, lam0=2.0, steps=1)
    assert not np.any(ds.loss.isel(step=1).values > ds.loss.isel(step=0).values)


def test_phase_diagram_recipe_and_claims_against_the_closed_forms():
    from eosdyn.claims import claim_uv_catapult_phases
    from eosdyn.recipes import uv_phase_diagram
    from eosdyn.recipes.toy import UV_PHASES

    ds = uv_phase_diagram(n=[4, 64, 4096], eta_lam0_range=[1.0, 5.0], points=81, steps=5000)
    s = ds.eta.values * 2.0
    np.testing.assert_allclose(s, np.linspace(1.0, 5.0, 81))
    for i, n in enumerate(ds.n.values):
        ph = ds.uv_phase.values[i]
        star = 2.0 + s * s / (4.0 * n)                      # first-step growth, lam0 = 2, z0 = f0 = 1
        assert np.all(ph[s < star] == UV_PHASES["lazy"])
        assert np.all(ph[(s > star) & (s < 4)] == UV_PHASES["catapult"])
        assert np.all(ph[s > 4] == UV_PHASES["divergent"])
        assert np.all(ph[s == 4.0] == UV_PHASES["undecided"])
    cat = ds.uv_phase.values == UV_PHASES["catapult"]
    assert np.all(ds.final_sharpness.values[cat] < 2.0) and np.all(ds.loss_growth.values[cat] > 1.0)
    assert np.all(np.isinf(ds.loss_growth.values[ds.uv_phase.values == UV_PHASES["divergent"]]))
    eosdyn.check_dataset(ds)
    rows = claim_uv_catapult_phases(ds)
    assert len(rows) == 5 and {r["verdict"] for r in rows} == {"agrees"}
    # a dataset whose phases contradict the boundaries is reported as such
    bad = ds.copy()
    bad["uv_phase"] = bad.uv_phase.where(~(bad.eta * 2.0 > 4.5), UV_PHASES["catapult"])
    assert [r["verdict"] for r in claim_uv_catapult_phases(bad)][1] == "disagrees"


def test_phase_diagram_recipe_validation():
    from eosdyn.recipes import uv_phase_diagram

    with pytest.raises(ValueError, match="exactly one of eta and eta_lam0_range"):
        uv_phase_diagram(n=16, eta=[1.0], eta_lam0_range=[1.0, 2.0])
    with pytest.raises(ValueError, match="peak_steps"):
        uv_phase_diagram(n=16, eta=[1.0], peak_steps=0)
    with pytest.raises(ValueError, match="eta_lam0_range"):
        uv_phase_diagram(n=16, eta_lam0_range=[2.0, 1.0])


def test_divergence_boundary_with_a_target_moves_to_four_as_n_grows():
    """y ≠ 0 (Ẽ = 2 η y/√n ≠ 0): the boundary is not 4 at finite n but tends to it; the claim
    checks 4 at the largest width only."""
    from eosdyn.claims import claim_uv_catapult_phases
    from eosdyn.recipes import uv_phase_diagram
    from eosdyn.recipes.toy import UV_PHASES

    ns = [4, 16, 256, 4096]
    ds = uv_phase_diagram(n=ns, eta_lam0_range=[3.0, 5.0], points=401, z0=1.0, y=0.5, steps=20000)
    s = ds.eta.values * 2.0
    first_div = [float(s[ds.uv_phase.values[i] == UV_PHASES["divergent"]].min()) for i in range(len(ns))]
    gaps = np.abs(np.array(first_div) - 4.0)
    assert gaps[0] > 0.5 and np.all(np.diff(gaps) < 0) and gaps[-1] <= 0.005 + 1e-12
    assert claim_uv_catapult_phases(ds)[1]["verdict"] == "agrees"
