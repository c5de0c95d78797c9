"""Taylor-expanded network model (eosdyn.models.taylor): no torch needed.

Truth: an independent parameter-space GD on the quadratic model
z(φ) = z̃ + diag(√λ) φ + ½ Q̃(φ, φ), φ ← φ − (η/n) J(φ)ᵀ z(φ), J(φ) = diag(√λ) + Q̃(φ, ·),
written here with plain numpy (the package runs the (z, J) recursion of Eq. 25-26 instead).
"""

import numpy as np
import pytest
import xarray as xr

import eosdyn
from eosdyn.conventions import regenerate
from eosdyn.models import taylor


def _projections(k=5, t0s=(120, 180), eta=0.01, n=1000, seed=0, z_scale=0.05):
    rng = np.random.default_rng(seed)
    T = len(t0s)
    lam = np.sort(rng.uniform(0.2, 1.0, (T, k)), axis=1)[:, ::-1] * (1.9 * n / eta)
    G = rng.standard_normal((T, k, k, k)) * 300.0
    Q = 0.5 * (G + G.transpose(0, 1, 3, 2))
    return xr.Dataset(
        {"ntk_eigenvalue": (("t0", "mode"), lam), "z_tilde": (("t0", "mode"), z_scale * rng.standard_normal((T, k))),
         "Q_tilde": (("t0", "mode", "mode_j", "mode_l"), Q)},
        coords={"t0": np.array(t0s, np.int64), "mode": np.arange(k), "mode_j": np.arange(k),
                "mode_l": np.arange(k), "eta": eta, "n_examples": n},
        attrs={"title": "synthetic projections"},
    )


def _reference(lam, z0, Q, eta_eff, steps):
    J0 = np.diag(np.sqrt(lam))
    phi = np.zeros(lam.size)
    zs, sh = [], []
    for _ in range(steps + 1):
        J = J0 + np.einsum("ijl,l->ij", Q, phi)
        z = z0 + J0 @ phi + 0.5 * np.einsum("ijl,j,l->i", Q, phi, phi)
        zs.append(z)
        sh.append(eta_eff * np.linalg.eigvalsh(J @ J.T)[-1])
        phi = phi - eta_eff * J.T @ z
    return np.array(zs), np.array(sh)


@pytest.mark.parametrize("modes", [None, 3, 1])
def test_matches_parameter_space_gd(modes):
    proj = _projections()
    ds = taylor.simulate(proj, t0=180, modes=modes, steps=60)
    k = 5 if modes is None else modes
    sel = proj.sel(t0=180)
    z_ref, s_ref = _reference(sel.ntk_eigenvalue.values[:k], sel.z_tilde.values[:k],
                              sel.Q_tilde.values[:k, :k, :k], 0.01 / 1000, 60)
    assert ds.step.values.tolist() == list(range(180, 241))
    assert ds.sizes["mode"] == k and int(ds.D) == k == int(ds.P)
    np.testing.assert_allclose(ds.z.values, z_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ds.sharpness.values, s_ref, rtol=1e-9)
    np.testing.assert_allclose(ds.loss.values, 0.5 * (z_ref ** 2).sum(axis=1) / 1000, rtol=1e-9)
    assert eosdyn.conventions.decode_status(ds.status).item() == "max_steps"
    # the edge of stability: the sharpness at t0 is η λ_1 / n
    np.testing.assert_allclose(ds.sharpness.values[0], 0.01 * sel.ntk_eigenvalue.values[0] / 1000)


def test_conventions_round_trip_and_regenerate(tmp_path):
    path = tmp_path / "proj.nc"
    proj = _projections()
    eosdyn.conventions.label(proj, model="cifar_fcn_projections", title="synthetic", equations="-",
                             config={"function": "test", "parameters": {}})
    eosdyn.to_netcdf(proj, path)
    ds = taylor.simulate(str(path), modes=4, steps=30, record_every=3)
    eosdyn.check_dataset(ds)
    assert ds.step.values.tolist() == list(range(120, 151, 3))
    out = tmp_path / "taylor.nc"
    eosdyn.to_netcdf(ds, out)
    assert eosdyn.open_dataset(out).identical(ds)
    again = regenerate(ds)
    for name in ds.data_vars:
        np.testing.assert_array_equal(again[name].values, ds[name].values)


def test_divergence_is_data():
    proj = _projections(z_scale=50.0, k=3)
    ds = taylor.simulate(proj, steps=400)
    eosdyn.check_dataset(ds)
    assert eosdyn.conventions.decode_status(ds.status).item() == "diverged"
    at = int(ds.diverged_at)
    assert 120 < at <= 520
    assert np.isnan(ds.sharpness.sel(step=slice(at + 1, None))).all()
    assert np.isfinite(ds.sharpness.sel(step=slice(None, at - 1))).all()


def test_eos_analysis_applies():
    ds = taylor.simulate(_projections(), steps=20)
    y = eosdyn.analysis.eos_coordinate(ds)
    np.testing.assert_allclose(y.values, ds.sharpness.values - 2.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"modes": 6}, "modes"), ({"modes": 0}, "modes"), ({"t0": 121}, "t0"), ({"steps": 0}, "steps"),
    ({"dtype": "int32"}, "dtype"), ({"record_every": 0}, "record_every"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        taylor.simulate(_projections(), **{"steps": 5, **kwargs})


def test_bad_projections():
    with pytest.raises(ValueError, match="Q_tilde"):
        taylor.simulate(_projections().drop_vars("Q_tilde"), steps=5)
    with pytest.raises(ValueError, match="projections"):
        taylor.simulate(42, steps=5)


# ----------------------------------------------------------------------------- safety issue 17: clear errors
@pytest.mark.parametrize("edit, match", [
    (lambda p: p.drop_vars("eta"), "eta"),
    (lambda p: p.assign_coords(n_examples=0), "n_examples"),
    (lambda p: p.assign_coords(n_examples=-5), "n_examples"),
    (lambda p: p.assign_coords(n_examples=2.5), "n_examples"),
    (lambda p: p.drop_vars("n_examples"), "n_examples"),
    (lambda p: p.assign_coords(eta=float("nan")), "eta"),
    (lambda p: p.assign_coords(eta=-0.01), "eta"),
    (lambda p: p.isel(mode=slice(0, 0), mode_j=slice(0, 0), mode_l=slice(0, 0)), "zero modes"),
    (lambda p: p.isel(t0=slice(0, 0)), "t0"),
    (lambda p: p.isel(mode_l=slice(0, 2)), "Q_tilde"),
    (lambda p: p.assign(z_tilde=p.z_tilde.astype(str)), "z_tilde"),
])
def test_issue17_bad_projections_named(edit, match):
    with pytest.raises(ValueError, match=match):
        taylor.simulate(edit(_projections()), steps=5)


@pytest.mark.parametrize("kwargs, match", [
    ({"t0": 121}, r"t0 must be one of the stored expansion steps \[120, 180\]"),
    ({"t0": "x"}, "t0"), ({"diverge_loss": float("nan")}, "diverge_loss"),
    ({"diverge_loss": "big"}, "diverge_loss"), ({"diverge_loss": 0.0}, "diverge_loss"),
    ({"steps": 10**9}, "max_memory"), ({"steps": 2.5}, "steps"), ({"feedback": 1}, "feedback"),
])
def test_issue17_bad_options_named(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        taylor.simulate(_projections(), **{"steps": 5, **kwargs})


def test_float32_rejects_values_beyond_its_range():
    proj = _projections()
    big = proj.assign(Q_tilde=proj.Q_tilde * 1e40)
    with pytest.raises(ValueError, match="Q_tilde.*float32"):
        taylor.simulate(big, steps=5, dtype="float32")
    # float64 runs it: the blow-up is data
    ds = taylor.simulate(big, steps=5)
    eosdyn.check_dataset(ds)


def test_non_finite_projection_values_are_flagged_not_raised():
    proj = _projections()
    z = proj.z_tilde.values.copy()
    z[1, 0] = np.nan
    ds = taylor.simulate(proj.assign(z_tilde=(proj.z_tilde.dims, z)), t0=180, steps=5)
    eosdyn.check_dataset(ds)
    assert eosdyn.conventions.decode_status(ds.status).item() == "diverged"
    assert int(ds.diverged_at) == 180
