"""Recipe and claim functions of the built-in catalog (eosdyn.recipes), against independent truth."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import eosdyn
from eosdyn import recipes


def roundtrip(ds, tmp_path):
    eosdyn.check_dataset(ds)
    path = tmp_path / "x.nc"
    eosdyn.to_netcdf(ds, path)
    xr.testing.assert_identical(eosdyn.open_dataset(path), ds)


def test_qg_matches_definition(rng):
    D, P = 4, 5
    G = rng.standard_normal((D, P, P))
    Q = G + G.transpose(0, 2, 1)
    g = rng.standard_normal(P)
    direct = np.array([sum(Q[a, i, j] * g[i] * g[j] for i in range(P) for j in range(P)) for a in range(D)])
    np.testing.assert_allclose(recipes._qg(Q, g), direct, rtol=1e-12)


def test_ratio_of_means_stderr_matches_bootstrap(rng):
    num = rng.gamma(2.0, size=4000)
    den = rng.gamma(3.0, size=4000) + 0.3 * num
    r, se = recipes._ratio_of_means(num, den)
    boot = [num[i].mean() / den[i].mean() for i in rng.integers(0, 4000, size=(400, 4000))]
    assert r == pytest.approx(num.mean() / den.mean())
    assert se == pytest.approx(np.std(boot), rel=0.15)


def test_rnl_monte_carlo_vs_closed_form(tmp_path):
    ds = recipes.rnl_monte_carlo(sizes=[[8, 16], [30, 30]], sigma_z=[0.5, 2.0], n_samples=300, seed=1)
    roundtrip(ds, tmp_path)
    assert ds["r_nl_mc"].dims == ("size", "sigma_z")
    assert list(ds["D"].values) == [8, 30] and list(ds["P"].values) == [16, 30]
    z = abs(ds["r_nl_mc"] - ds["r_nl_theory"]) / ds["r_nl_mc_stderr"]
    assert float(z.max()) < 4.5, z.values
    # the closed form is linear in sigma_z, and so is the estimator (same draws, scaled)
    np.testing.assert_allclose(ds["r_nl_mc"].isel(sigma_z=1) / ds["r_nl_mc"].isel(sigma_z=0), 4.0, rtol=1e-10)
    # the paper's form is sigma_z~ / 2 (Eq. 29: r_NL = sigma_z~ ... up to the factor 1/2 of Eq. 27)
    np.testing.assert_allclose(ds["r_nl_paper"].values, np.array([[0.25, 1.0], [0.25, 1.0]]))
    rows = recipes.claim_rnl(ds)
    assert len(rows) == 2 and all(r["verdict"].startswith("agrees") for r in rows)


def test_theorem41_monte_carlo_vs_exact(tmp_path):
    ds = recipes.theorem41_monte_carlo(sizes=[[6, 10]], sigma_z=[0.5, 1.0], n_samples=400, seed=3)
    roundtrip(ds, tmp_path)
    z = abs(ds["theorem41_mc"] - ds["theorem41_exact"]) / ds["theorem41_mc_stderr"]
    assert float(z.max()) < 4.5, z.values
    assert float(abs(ds["lam_dot_mean"] / ds["lam_dot_stderr"]).max()) < 4.5
    np.testing.assert_allclose(ds["theorem41_paper"].values, (np.array([[0.5, 1.0]]) / 6) ** 2)
    np.testing.assert_allclose(ds["theorem41_theory"].values, 2 * 6 * 10 * (np.array([[0.5, 1.0]]) / 6) ** 2)
    rows = recipes.claim_theorem41(ds)
    assert len(rows) == 2 and rows[0]["verdict"].startswith("agrees") and rows[1]["verdict"] == "agrees"


def test_phase_diagrams_equal_direct_sweeps(tmp_path):
    kw = dict(sigma_z=[0.1, 0.4], sigma_J2=[0.1, 0.3], seeds=3, max_steps=400)
    ds = recipes.qrm_phase_diagrams(sizes=[[6, 12], [10, 5]], **kw)
    roundtrip(ds, tmp_path)
    assert ds["final_sharpness"].dims == ("size", "sigma_z", "sigma_J", "seed")
    for i, (d, p) in enumerate([(6, 12), (10, 5)]):
        direct = eosdyn.qrm.sweep(D=d, P=p, **kw)
        np.testing.assert_array_equal(ds["final_sharpness"].isel(size=i).values, direct["final_sharpness"].values)
        np.testing.assert_array_equal(ds["status"].isel(size=i).values, direct["status"].values)
        assert int(ds["D"][i]) == d and int(ds["P"][i]) == p
    rows = recipes.claim_figure4(ds)
    assert len(rows) == 2 and {"claim", "paper", "theory", "measured", "verdict"} <= set(rows[0])


def test_claim_figure3(tmp_path):
    ds = eosdyn.qrm.sweep(D=10, P=20, sigma_z=[0.05, 0.3], sigma_J2=0.1, seeds=[0], max_steps=300, record=1)
    rows = recipes.claim_figure3(ds)
    assert len(rows) == 3
    assert rows[-1]["claim"] == "final sharpness increases with sigma_z"


@pytest.mark.parametrize("func", [recipes.rnl_monte_carlo, recipes.theorem41_monte_carlo])
@pytest.mark.parametrize("kw,match", [
    (dict(sizes=[10, 20], sigma_z=[1.0]), "sizes must be a list of"),
    (dict(sizes=[[0, 20]], sigma_z=[1.0]), "sizes D must be an integer in"),
    (dict(sizes=[[10, 20]], sigma_z=[-1.0]), "sigma_z must be finite and in"),
    (dict(sizes=[[10, 20]], sigma_z=[1.0], n_samples=1), "n_samples must be an integer in"),
    (dict(sizes=[[10, 20]], sigma_z=[1.0], eta=0.0), "eta must be"),
])
def test_bad_input(func, kw, match):
    with pytest.raises(ValueError, match=match):
        func(**kw)
