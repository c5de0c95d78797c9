"""Taylor-expanded network model (eosdyn.taylor): no torch needed.

Truth: an independent parameter-space GD on the quadratic model
z(φ) = z̃ + diag(√λ) φ + ½ Q̃(φ, φ), φ ← φ − (η/n) J(φ)ᵀ z(φ), J(φ) = diag(√λ) + Q̃(φ, ·),
written here with plain numpy (the package runs the (z, J) recursion of Eq. 25-26 instead).
"""

import numpy as np
import pytest
import xarray as xr

import eosdyn
from eosdyn import taylor
from eosdyn.conventions import STATUS_VALUES, read_config, regenerate


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
    assert ds.step.values.tolist() == list(range(61))
    assert ds.network_step.values.tolist() == list(range(180, 241))
    assert ds.sizes["mode"] == k and int(ds.D) == k == int(ds.P)
    np.testing.assert_allclose(ds.z_tilde.values, z_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ds.sharpness.values, s_ref, rtol=1e-9)
    # the reduced model's own loss ½ Σ z̃_i² (tol and diverge_loss act on it)
    np.testing.assert_allclose(ds.loss.values, 0.5 * (z_ref ** 2).sum(axis=1), rtol=1e-9)
    np.testing.assert_allclose(ds.final_z_tilde.values, z_ref[-1], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(float(ds.final_loss), 0.5 * (z_ref[-1] ** 2).sum(), rtol=1e-9)
    assert int(ds.steps_taken) == 60 and int(ds.converged_at) == -1 and int(ds.diverged_at) == -1
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
    assert ds.step.values.tolist() == list(range(0, 31, 3))
    assert ds.network_step.values.tolist() == list(range(120, 151, 3))
    out = tmp_path / "taylor.nc"
    eosdyn.to_netcdf(ds, out)
    assert eosdyn.open_dataset(out).identical(ds)
    _assert_identical_but_history(regenerate(ds), ds)


def _assert_identical_but_history(a, b):
    a, b = a.copy(), b.copy()
    for d in (a, b):
        d.attrs.pop("history", None)
    xr.testing.assert_identical(a, b)


def test_divergence_is_data():
    proj = _projections(z_scale=50.0, k=3)
    ds = taylor.simulate(proj, steps=400)
    eosdyn.check_dataset(ds)
    assert eosdyn.conventions.decode_status(ds.status).item() == "diverged"
    at = int(ds.diverged_at)
    assert 0 < at <= 400 and int(ds.steps_taken) == at
    assert np.isnan(ds.sharpness.sel(step=slice(at + 1, None))).all()
    assert np.isfinite(ds.sharpness.sel(step=slice(None, at - 1))).all()


def test_eos_analysis_applies():
    ds = taylor.simulate(_projections(), steps=20)
    y = eosdyn.analysis.eos_coordinate(ds)
    np.testing.assert_allclose(y.values, ds.sharpness.values - 2.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"modes": 6}, "modes"), ({"modes": 0}, "modes"), ({"t0": 121}, "t0"), ({"steps": -1}, "steps"),
    ({"dtype": "int32"}, "dtype"), ({"record_every": 0}, "record_every"), ({"stop": "sometimes"}, "stop"),
    ({"tol": -1.0}, "tol"), ({"tol": 1e9}, "tol"), ({"projections_sha256": "abc"}, "projections_sha256"),
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
    assert int(ds.diverged_at) == 0 and int(ds.steps_taken) == 0


# ----------------------------------------------------------------------------- the shared GD vocabulary
def _ref_losses(proj, t0, steps):
    sel = proj.sel(t0=t0)
    z_ref, _ = _reference(sel.ntk_eigenvalue.values, sel.z_tilde.values, sel.Q_tilde.values, 0.01 / 1000, steps)
    return 0.5 * (z_ref ** 2).sum(axis=1)


def test_fates_with_tol_and_every_stop_mode():
    proj = _projections()
    steps = 200
    losses = _ref_losses(proj, 120, steps)
    tol = float(losses[40]) * 1.0000001       # the reference loss first drops below tol at step 40
    first = int(np.argmax(losses < tol))
    assert 0 < first < steps and losses[first - 1] >= tol
    never = taylor.simulate(proj, steps=steps, tol=tol)
    member = taylor.simulate(proj, steps=steps, tol=tol, stop="member")
    batch = taylor.simulate(proj, steps=steps, tol=tol, stop="batch")
    plain = taylor.simulate(proj, steps=steps)
    for ds in (never, member, batch):
        eosdyn.check_dataset(ds)
        assert int(ds.status) == STATUS_VALUES["converged"] and int(ds.converged_at) == first
        assert int(ds.diverged_at) == -1
        assert ds.attrs["tol"] == tol
    # never: runs all steps and equals the run without tol; member/batch: stop at the fate
    assert int(never.steps_taken) == steps and never.attrs["stop"] == "never"
    xr.testing.assert_equal(never.z_tilde, plain.z_tilde)
    for ds in (member, batch):
        assert int(ds.steps_taken) == first
        assert np.isnan(ds.sharpness.sel(step=slice(first + 1, None))).all()
        np.testing.assert_array_equal(ds.z_tilde.sel(step=slice(0, first)), plain.z_tilde.sel(step=slice(0, first)))
        assert float(ds.final_loss) == float(plain.loss.sel(step=first)) < tol
    xr.testing.assert_equal(member, batch)   # one trajectory: its own fate is the batch's
    # the default tol = 0 never converges: a fixed number of steps
    assert int(plain.converged_at) == -1 and int(plain.steps_taken) == steps
    assert plain.attrs["tol"] == 0.0 and plain.attrs["diverge_loss"] == 1e8


def test_record_every_none_records_step_zero_and_the_last_step(tmp_path):
    proj = _projections()
    eosdyn.to_netcdf(proj, tmp_path / "proj.nc")
    full = taylor.simulate(proj, steps=50)
    ends = taylor.simulate(proj, steps=50, record_every=None)
    eosdyn.check_dataset(ends)
    assert ends.step.values.tolist() == [0, 50] and ends.network_step.values.tolist() == [120, 170]
    np.testing.assert_array_equal(ends.z_tilde.values, full.z_tilde.isel(step=[0, -1]).values)
    np.testing.assert_allclose(ends.sharpness.values, full.sharpness.isel(step=[0, -1]).values, rtol=1e-12)
    assert read_config(ends)["parameters"]["record_every"] is None
    from_file = taylor.simulate(tmp_path / "proj.nc", steps=50, record_every=None)
    _assert_identical_but_history(regenerate(from_file), from_file)
    # stopped at convergence: the last step is the member's own steps_taken
    losses = _ref_losses(proj, 120, 50)
    stopped = taylor.simulate(proj, steps=50, record_every=None, tol=float(losses[20]) * 1.0000001, stop="member")
    assert stopped.step.values.tolist() == [0, 20] == [0, int(stopped.steps_taken)]


def test_diverge_loss_acts_on_the_loss_variable():
    proj = _projections(z_scale=50.0, k=3)
    plain = taylor.simulate(proj, steps=400)
    limit = 10 * float(plain.loss[0])
    first = int(np.argmax(plain.loss.values > limit))
    assert 0 < first < int(plain.diverged_at)        # the loss grows past limit well before 1e8
    ds = taylor.simulate(proj, steps=400, diverge_loss=limit)
    assert int(ds.diverged_at) == first == int(ds.steps_taken)
    assert int(ds.status) == STATUS_VALUES["diverged"]
    assert np.isnan(ds.loss.sel(step=slice(first, None))).all()


def test_schema_roles_and_public_provenance():
    ds = taylor.simulate(_projections(), steps=10)
    assert "z" not in ds and "diverged" not in ds
    assert ds.z_tilde.dims == ("step", "mode")
    assert eosdyn.conventions.roles_of(ds) == {"residual": "z_tilde", "sharpness": "sharpness", "loss": "loss"}
    assert "reduced model" in ds.loss.attrs["long_name"]
    for v, dt in {"status": np.int8, "steps_taken": np.int64, "diverged_at": np.int64, "converged_at": np.int64}.items():
        assert ds[v].dtype == dt and ds[v].dims == (), v
    cfg = read_config(ds)
    assert cfg["function"] == "eosdyn.taylor.simulate"
    assert eosdyn.registry.resolve("recipe", cfg["function"]) is taylor.simulate
    assert eosdyn.analysis.classify(ds).dims == ("mode",)


# ----------------------------------------------------------------------------- provenance of the projections
def test_catalog_source_regenerates_identically():
    ds = taylor.simulate("cifar_fcn_projections", t0=4200, modes=4, feedback=2, steps=30)
    params = read_config(ds)["parameters"]
    assert params["projections"] == "cifar_fcn_projections" and params["projections_file_sha256"] is None
    assert params["projections_sha256"] == taylor.projections_sha256(eosdyn.catalog.open("cifar_fcn_projections"))
    _assert_identical_but_history(regenerate(ds), ds)
    # the catalog's projections loaded by the user are recognised as the catalog entry
    loaded = taylor.simulate(eosdyn.catalog.open("cifar_fcn_projections"), t0=4200, modes=4, feedback=2, steps=30)
    _assert_identical_but_history(loaded, ds)


def test_in_memory_projections_are_not_substituted():
    proj = _projections()
    modified = proj.assign(z_tilde=proj.z_tilde * 1.5)
    for p in (proj, modified):
        ds = taylor.simulate(p, steps=10)
        params = read_config(ds)["parameters"]
        assert params["projections"] is None
        assert params["projections_sha256"] == taylor.projections_sha256(p) == ds.attrs["projections_sha256"]
        assert "in-memory" in ds.attrs["projections_source"]
        with pytest.raises(ValueError, match="in-memory projections .*sha256 " + params["projections_sha256"]):
            regenerate(ds)
    # with the same projections in hand, the recorded parameters rebuild it; other projections are refused
    ds = taylor.simulate(modified, steps=10)
    params = read_config(ds)["parameters"]
    _assert_identical_but_history(taylor.simulate(modified, **{k: v for k, v in params.items() if k != "projections"}), ds)
    with pytest.raises(ValueError, match="projections_sha256 mismatch"):
        taylor.simulate(proj, **{k: v for k, v in params.items() if k != "projections"})


def test_file_source_rebuilds_only_from_the_same_bytes(tmp_path):
    path = tmp_path / "proj.nc"
    eosdyn.to_netcdf(_projections(), path)
    ds = taylor.simulate(path, steps=10)
    params = read_config(ds)["parameters"]
    assert params["projections"] == str(path.resolve())
    assert params["projections_file_sha256"] == eosdyn._files.sha256_file(path)
    _assert_identical_but_history(regenerate(ds), ds)
    # the file's values changed: refused, naming the file and both digests
    proj = _projections()
    eosdyn.to_netcdf(proj.assign(z_tilde=proj.z_tilde + 1e-9), path)
    with pytest.raises(ValueError, match="has changed since the dataset was simulated"):
        regenerate(ds)
    # the file's bytes changed without changing its values: still refused (the file is not the recorded one)
    eosdyn.to_netcdf(proj.assign_attrs(title="edited"), path)
    with pytest.raises(ValueError, match="has changed"):
        regenerate(ds)
    path.unlink()
    with pytest.raises(ValueError, match="does not exist"):
        regenerate(ds)
    with pytest.raises(ValueError, match="projections_file_sha256 is the sha256 of a projections file"):
        taylor.simulate(proj, steps=10, projections_file_sha256=params["projections_file_sha256"])
