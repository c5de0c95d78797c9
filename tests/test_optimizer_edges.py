"""Edges of stability of every optimizer (eosdyn.theory.optim) against independent truth:
the spectral radius of the linearised update (numpy eigvals) and explicit-θ runs of the
reference implementation (tests/optim_reference.py) on pure quadratics (Q = 0)."""

import numpy as np
import pytest
import xarray as xr

from eosdyn.theory import OPTIMIZERS, optimizer_edge, update_matrix
from optim_reference import State, quadratic_run

HYPER_GRID = {
    "gd": [{}],
    "rmsprop": [{}],
    "momentum": [{"momentum": b} for b in (0.0, 0.3, 0.5, 0.9, 0.99)],
    "nesterov": [{"momentum": b} for b in (0.0, 0.3, 0.5, 0.9, 0.99)],
    "adam": [{"beta1": b} for b in (0.0, 0.5, 0.8, 0.9, 0.95)],
}
CASES = [(o, h) for o in OPTIMIZERS for h in HYPER_GRID[o]]


def _radius(M):
    return np.abs(np.linalg.eigvals(M)).max(-1)


def test_closed_forms():
    assert optimizer_edge("gd") == 2.0
    assert optimizer_edge("rmsprop") == 2.0
    assert optimizer_edge("momentum", momentum=0.9) == pytest.approx(3.8)
    assert optimizer_edge("nesterov", momentum=0.9) == pytest.approx(3.8 / 2.8)
    assert optimizer_edge("adam", beta1=0.9) == pytest.approx(38.0)  # Cohen et al. 2022: 38/eta


@pytest.mark.parametrize("opt, hyper", CASES)
def test_edge_is_the_spectral_radius_threshold(opt, hyper):
    edge = optimizer_edge(opt, **hyper)
    # stable on the whole open interval (0, edge), unstable above it
    a_in = edge * np.linspace(1e-3, 1 - 1e-6, 4001)
    a_out = edge * np.linspace(1 + 1e-6, 3.0, 2001)
    assert np.all(_radius(update_matrix(opt, a_in, **hyper)) < 1)
    assert np.all(_radius(update_matrix(opt, a_out, **hyper)) > 1)
    # and at the edge itself the radius is 1 (an eigenvalue -1: period-2 oscillation)
    M = update_matrix(opt, edge, **hyper)
    ev = np.linalg.eigvals(M)
    assert np.min(np.abs(ev + 1)) < 1e-9
    # negative curvature is unstable for every optimizer
    assert np.all(_radius(update_matrix(opt, -edge * np.linspace(1e-3, 1, 50), **hyper)) > 1)


def _explicit_matrix(opt, a, hyper):
    """The update matrix read off the reference optimizer: one step from each unit state on
    L = ½ λ x² with η = 1 (a = λ), frozen preconditioner p = 1 for rmsprop/adam."""
    k = 1 if opt in ("gd", "rmsprop") else 2
    cols = []
    for j in range(k):
        st = State(1, opt if opt not in ("rmsprop", "adam") else "momentum", **(
            {"momentum": hyper.get("momentum", 0.9)} if opt in ("momentum", "nesterov") else {"momentum": 0.0}))
        x = np.array([1.0 if j == 0 else 0.0])
        u = 1.0 if j == 1 else 0.0
        if opt == "adam":  # u = η m / p with p = 1: m ← β1 m + (1 − β1) g, x ← x − η m (late steps)
            b1 = hyper["beta1"]
            m = b1 * u + (1 - b1) * a * x[0]
            cols.append([x[0] - m, m])
            continue
        if opt in ("gd", "rmsprop"):
            cols.append([x[0] - a * x[0]])
            continue
        st.theta, st.v = x, np.array([u])
        st.step(a * st.theta, 1.0)
        cols.append([st.theta[0], st.v[0]])
    return np.array(cols).T


@pytest.mark.parametrize("opt, hyper", CASES)
def test_update_matrix_is_the_optimizer_step(opt, hyper):
    for a in (0.3, 1.7, 5.0):
        np.testing.assert_allclose(update_matrix(opt, a, **hyper), _explicit_matrix(opt, a, hyper), rtol=1e-14,
                                   atol=1e-15)


@pytest.mark.parametrize("opt, hyper", CASES)
def test_pure_quadratic_converges_below_and_diverges_above_the_edge(opt, hyper):
    """Explicit θ loop of the reference on L = ½ Σ λ_i x_i² (Q = 0), λ_max = 1 so the sharpness
    is η. gd/momentum/nesterov: η = edge (1 ∓ 2 %). rmsprop/adam: what is tested is the regime of
    a frozen preconditioner (late training, when the second moment has equilibrated): the runs
    start from a preloaded second moment s₀ = p² (adam: and step count 10¹⁵, so both bias
    corrections are 1 to 1e-43) with β₂ = 1 − 1e-13, which keeps P = √s + ε at p to 1e-6 over the run;
    the preconditioned sharpness η λ_max(P⁻¹H) = η max λ_i / p_i is then (1 ∓ 2 %) edge."""
    lam = np.array([1.0, 0.37, 0.05])
    theta0 = np.array([1.0, -0.5, 0.25])
    steps = 3000
    edge = optimizer_edge(opt, **hyper)
    extra, scale = {}, 1.0
    if opt in ("rmsprop", "adam"):
        p = np.array([2.0, 0.5, 0.3])
        extra = {"beta2": 1 - 1e-13, "epsilon": 1e-8, "s0": (p - 1e-8) ** 2, "t0": 0 if opt == "rmsprop" else 10**15}
        scale = 1.0 / np.max(lam / p)  # η with η λ_max(P⁻¹ H) = 1 (P⁻¹H diagonal here)
    for factor, converges in ((0.98, True), (1.02, False)):
        eta = factor * edge * scale
        L = quadratic_run(opt, lam, eta=eta, steps=steps, theta0=theta0, **hyper, **extra)
        if converges:
            assert np.isfinite(L[-1]) and L[-1] < 1e-6 * L[0], (opt, hyper, factor, L[-1])
        else:
            # the loss grows by 1e6 (for rmsprop/adam while P is still frozen: at g² ~ 1e6 g₀²
            # the (1 − β₂) g² updates are 1e-7 of s)
            assert np.nanmax(L) > 1e6 * L[0] or np.isnan(L[-1]), (opt, hyper, factor, np.nanmax(L))


def test_labelled_outputs():
    beta = xr.DataArray([0.0, 0.5, 0.9], dims="momentum", coords={"momentum": [0.0, 0.5, 0.9]})
    e = optimizer_edge("momentum", momentum=beta)
    assert e.name == "edge" and e.dims == ("momentum",)
    np.testing.assert_allclose(e.values, [2.0, 3.0, 3.8])
    a = xr.DataArray([1.0, 2.0], dims="eta")
    M = update_matrix("nesterov", a, momentum=beta)
    assert M.dims == ("eta", "momentum", "row", "column")
    np.testing.assert_array_equal(M.isel(eta=1, momentum=2).values, update_matrix("nesterov", 2.0, momentum=0.9))
    # arrays broadcast like numpy
    assert optimizer_edge("adam", beta1=np.array([[0.0], [0.5]])).shape == (2, 1)


@pytest.mark.parametrize("call, match", [
    (lambda: optimizer_edge("sgd"), "optimizer must be one of"),
    (lambda: optimizer_edge("momentum", momentum=1.0), r"momentum must be finite and in \[0, 1\)"),
    (lambda: optimizer_edge("adam", beta1=-0.1), r"beta1 must be finite and in \[0, 1\)"),
    (lambda: optimizer_edge("adam", momentum=0.5), "momentum is not a hyperparameter of optimizer 'adam'"),
    (lambda: update_matrix("gd", np.nan), "curvature must be finite"),
    (lambda: update_matrix("rmsprop", 1.0, epsilon=0.0), r"epsilon must be finite and in \(0, inf\)"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_curvature_type():
    with pytest.raises(TypeError, match="curvature"):
        update_matrix("gd", "1.0")


# ----------------------------------------------------------------------------- catalog recipe and claims
def test_sgd_batch_sizes_equals_direct_sweeps():
    import eosdyn
    from eosdyn.conventions import check_dataset, roles_of
    from eosdyn.recipes import sgd_batch_sizes

    kw = dict(D=6, P=10, sigma_z=[0.1, 0.2], sigma_J2=0.1, seeds=2, steps=80)
    ds = sgd_batch_sizes(batch_size=[3, 6], **kw)
    check_dataset(ds)
    assert roles_of(ds)["sharpness"] == "batch_sharpness" and float(ds.edge) == 2.0
    for b in (3, 6):
        ref = eosdyn.qrm.sweep(batch_size=b, sharpness_variants=["batch_sharpness", "hessian_sharpness"], **kw)
        for v in ("final_sharpness", "final_batch_sharpness", "final_hessian_sharpness", "status", "steps_taken"):
            np.testing.assert_array_equal(ds[v].sel(batch_size=b).values, ref[v].values)


@pytest.mark.parametrize("kw, match", [
    ({"batch_size": [0, 3]}, r"batch_size must be an integer in \[1, 6\]"),
    ({"batch_size": [3, 3]}, "duplicate"),
    ({"batch_size": [3], "optimizer": "adam"}, "optimizer must be 'gd', 'momentum' or 'nesterov'"),
])
def test_sgd_batch_sizes_bad_input(kw, match):
    from eosdyn.recipes import sgd_batch_sizes

    with pytest.raises(ValueError, match=match):
        sgd_batch_sizes(D=6, P=10, sigma_z=0.1, sigma_J2=0.1, seeds=1, steps=5, **kw)


def _fake(final, edge, dims, coords, status=None, own="sharpness"):
    from eosdyn.conventions import set_roles, set_variable_attrs

    final = np.asarray(final, float)
    ds = xr.Dataset({f"final_{own}": (dims, final), own: (dims + ("step",), final[..., None])},
                    coords={**coords, "edge": edge, "step": [0]})
    if status is not None:
        ds["status"] = (dims, np.asarray(status, np.int8))
        set_variable_attrs(ds["status"], "status")
    return set_roles(ds, sharpness=own)


def test_claim_momentum_edge_verdicts():
    from eosdyn.claims import claim_momentum_edge

    # beta = 0.9: converged members end at 0.7 x edge; a diverged member's finite value is ignored
    fs = [[[2.6, 2.7, 2.65, 9.0]]]
    ds = _fake(fs, ("momentum", [3.8]), ("momentum", "sigma_z", "seed"),
               {"momentum": [0.9], "sigma_z": [0.3]}, status=[[[1, 1, 1, 2]]])
    rows = claim_momentum_edge(ds)
    assert rows[0]["verdict"].startswith("below the edge (-30.3%") and "3/4 seeds converged" in rows[0]["measured"]
    assert rows[1]["verdict"] == "at most the edge"
    # the top of the band: the sigma_z with the largest median among those with at least half the seeds
    # converged (sigma_z 0.5 has one of three)
    fs = [[[1.5, 1.6, 1.55], [1.99, 1.98, 1.97], [3.5, 1.0, 1.0]]]
    ds = _fake(fs, ("momentum", [2.0]), ("momentum", "sigma_z", "seed"),
               {"momentum": [0.0], "sigma_z": [0.1, 0.3, 0.5]}, status=[[[1, 1, 1], [1, 1, 1], [1, 2, 2]]])
    rows = claim_momentum_edge(ds)
    assert "sigma_z~=0.3" in rows[0]["claim"] and rows[0]["verdict"] == "at the edge (within 5%)"
    assert rows[1]["verdict"] == "above the edge"  # 3.5 converged at sigma_z 0.5


def test_claim_adam_edge_uses_the_late_half():
    from eosdyn.claims import claim_adam_edge

    # early steps far below the edge, late half at 38: the late-time median is at the edge
    ps = np.concatenate([np.full(10, 5.0), np.full(10, 38.0)])[None, None, :] * np.ones((1, 3, 1))
    ds = xr.Dataset({"preconditioned_sharpness": (("beta1", "seed", "step"), ps),
                     "final_preconditioned_sharpness": (("beta1", "seed"), ps[..., -1])},
                    coords={"beta1": [0.9], "edge": ("beta1", [38.0]), "step": np.arange(20)})
    from eosdyn.conventions import set_roles

    set_roles(ds, sharpness="preconditioned_sharpness")
    assert claim_adam_edge(ds)[0]["verdict"] == "at the edge (within 10%)"
    ds["preconditioned_sharpness"][..., 10:] = 30.0
    assert claim_adam_edge(ds)[0]["verdict"].startswith("below the edge (-21.1%")


def test_claim_sgd_disagrees_when_lambda_max_is_at_the_edge():
    from eosdyn.claims import claim_sgd_batch_sharpness

    ds = xr.Dataset({"final_batch_sharpness": (("batch_size", "seed"), [[1.2, 1.3], [0.1, 0.1]]),
                     "final_sharpness": (("batch_size", "seed"), [[1.95, 1.99], [1.98, 1.99]])},
                    coords={"batch_size": [5, 20], "D": 20, "edge": 2.0})
    rows = claim_sgd_batch_sharpness(ds)
    assert rows[0]["verdict"] == "lambda_max closer to the edge" and rows[-1]["verdict"] == "disagrees"
