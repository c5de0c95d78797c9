"""Tests of eosdyn.theory.toy against independent truth.

Truths used: the map itself (eosdyn.kernels.maps.two_param_step, iterated here directly), the
literal Eq. 67-70 in the a-parametrisation of the paper's Appendix, Taylor series of the two-step
nullcline and of the two-step dynamics derived symbolically (sympy) from Eq. 14-15, a linear
solve for the squared parameters θ_i², and the catapult map (λ = −1).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given
from hypothesis import strategies as st

import eosdyn
from eosdyn.kernels.maps import two_param_step
from eosdyn.theory import toy as th

PARAMS = [
    dict(eps=0.1), dict(eps=0.5), dict(eps=1.0), dict(eps=0.02, E_tilde=-0.2),
    dict(a=3.0, E_tilde=0.3), dict(a=-2.0), dict(a=-1.5, E_tilde=0.4), dict(a=1.0, E_tilde=0.1),
]


def _lam(kw):
    return -kw["eps"] if "eps" in kw else -1.0 / kw["a"]


def _steps(z, T, kw, n):
    """n steps of the map, straight from the kernel (arrays of equal shape)."""
    shape = np.shape(z)
    z, T = np.array(z, float).ravel(), np.array(T, float).ravel()  # one (1-D) kernel signature
    lam = np.full(z.shape, _lam(kw))
    E = np.full(z.shape, kw.get("E_tilde", 0.0))
    for _ in range(n):
        z, T = two_param_step(z, T, lam, E)
    return z.reshape(shape), T.reshape(shape)


def _ids(kw):
    return ",".join(f"{k}={v}" for k, v in kw.items())


# --------------------------------------------------------------------------- one-step nullclines
@pytest.mark.parametrize("kw", PARAMS, ids=_ids)
def test_one_step_nullclines_are_fixed_by_one_step(kw):
    z = np.linspace(-2.0, 2.0, 4001)
    fz = th.nullcline_z(z, **kw)
    fT = th.nullcline_T(z, **kw)
    for f, idx in ((fz, 0), (fT, 1)):
        ok = np.isfinite(f) & (np.abs(f) <= 50)
        assert ok.sum() > 1000
        z1, T1 = _steps(z[ok], f[ok], kw, 1)
        moved = (z1 - z[ok]) if idx == 0 else (T1 - f[ok])
        assert np.max(np.abs(moved)) <= 1e-12


@pytest.mark.parametrize("kw", PARAMS, ids=_ids)
def test_one_step_nullclines_equal_eq69_70_as_printed(kw):
    # Eq. 69-70 literally, in terms of a = −1/λ (a = 1/ε), with the minus sign of Eq. 70.
    a = kw["a"] if "a" in kw else 1.0 / kw["eps"]
    E = kw.get("E_tilde", 0.0)
    z = np.linspace(-1.5, 1.5, 301)
    with np.errstate(divide="ignore", invalid="ignore"):
        fz = z * (2 * z + E) / (2 * a - (a - 1) * z)
        fT = -((a - 1) * z - 2 * a) * (2 * z + E) / ((a * a - a + 1) * z - 2 * a * (a - 1))
    ok = np.isfinite(fz) & np.isfinite(fT) & (np.abs(fz) < 1e6) & (np.abs(fT) < 1e6)
    np.testing.assert_allclose(th.nullcline_z(z, **kw)[ok], fz[ok], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(th.nullcline_T(z, **kw)[ok], fT[ok], rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- two-step nullclines
@pytest.mark.parametrize("kw", PARAMS, ids=_ids)
def test_two_step_nullclines_are_fixed_by_two_steps(kw):
    z = np.linspace(-2.0, 2.0, 2001)
    for f, idx in ((th.two_step_nullcline_z(z, **kw), 0), (th.two_step_nullcline_T(z, **kw), 1)):
        fin = np.isfinite(f)
        # the branch exists on one interval around z̃ = 0 and passes through (0, 2)
        assert f[z == 0.0][0] == 2.0
        idx_fin = np.flatnonzero(fin)
        assert np.all(np.diff(idx_fin) == 1)
        ok = fin & (np.abs(f) <= 10) & (z != 0)
        if idx == 1 and kw.get("eps") == 1.0 and kw.get("E_tilde", 0.0) == 0.0:
            # catapult with Ẽ = 0: T_{t+2} − T_t = z̃²(T − 4)(1 + (1 − T)²) + O(z̃⁴): no branch at T = 2
            assert fin.sum() == 1
            continue
        assert ok.sum() > 100
        z2, T2 = _steps(z[ok], f[ok], kw, 2)
        moved = (z2 - z[ok]) if idx == 0 else (T2 - f[ok])
        assert np.max(np.abs(moved)) <= 1e-12
        # continuity: small steps in z̃ give small steps in T on the branch
        near = fin & (np.abs(z) <= 0.05)
        assert np.max(np.abs(np.diff(f[near]))) < 0.2


@pytest.mark.parametrize("eps", [0.1, 0.37, 1.0])
def test_two_step_nullcline_matches_taylor_series(eps):
    # f_z^(2)(z̃) for Ẽ = 0, λ = −ε, by series expansion of the map (sympy, see docs/theory.md)
    z = np.array([-1e-2, -3e-3, -1e-3, 1e-3, 3e-3, 1e-2])
    e = eps
    series = (2 + 2 * (1 - e) * z + 2 * (e * e - e + 1) * z ** 2
              - 2 * (e - 1) * (e * e - e + 1) * z ** 3 + 0.5 * (2 * e * e - 3 * e + 2) ** 2 * z ** 4)
    np.testing.assert_allclose(th.two_step_nullcline_z(z, eps=eps), series, rtol=0, atol=20 * 1e-10)
    err = np.abs(th.two_step_nullcline_z(z, eps=eps) - series)
    assert np.all(err <= 20 * np.abs(z) ** 5 + 1e-15)


def test_two_step_nullclines_are_order_eps_apart():
    # Appendix B.4: the two two-step nullclines through (0, 2) are O(ε) apart near z̃ = 0.
    z = np.linspace(-0.3, 0.3, 121)
    gaps = []
    for eps in (0.02, 0.01, 0.005):
        gap = np.max(np.abs(th.two_step_nullcline_T(z, eps=eps) - th.two_step_nullcline_z(z, eps=eps)))
        gaps.append(gap / eps)
    assert max(gaps) < 2.0 and abs(gaps[-1] - gaps[-2]) < 0.1 * gaps[-1]


def test_branch_does_not_depend_on_the_requested_points():
    rng = np.random.default_rng(3)
    z = rng.uniform(-2, 2, 500)
    bulk = th.two_step_nullcline_z(z, eps=0.2, E_tilde=0.1)
    single = np.array([th.two_step_nullcline_z(v, eps=0.2, E_tilde=0.1) for v in z[:40]])
    np.testing.assert_allclose(bulk[:40], single, rtol=1e-12, equal_nan=True)
    perm = rng.permutation(z.size)
    np.testing.assert_allclose(th.two_step_nullcline_z(z[perm], eps=0.2, E_tilde=0.1), bulk[perm],
                               rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("kw", [dict(eps=0.1), dict(eps=0.5), dict(a=3.0, E_tilde=0.3), dict(a=-2.0)], ids=_ids)
@pytest.mark.parametrize("variable", ["z", "T"])
def test_branch_ends_at_a_fold_or_an_asymptote(kw, variable):
    func = th.two_step_nullcline_z if variable == "z" else th.two_step_nullcline_T
    for sign in (1, -1):
        z = sign * np.linspace(0, 3, 30001)
        f = func(z, **kw)
        fin = np.isfinite(f)
        if fin.all():
            continue
        k = int(np.argmin(fin))
        z_last, T_last = z[k - 1], f[k - 1]
        c_last = th.two_step_polynomial(z_last, variable=variable, **kw)
        c_next = th.two_step_polynomial(z[k], variable=variable, **kw)
        roots = np.roots(c_next[::-1])
        nearest = roots[np.argsort(np.abs(roots - T_last))[:2]]
        fold = np.all(np.abs(nearest.imag) > 0) and np.all(np.abs(nearest - T_last) < 0.1 * (1 + abs(T_last)))
        asymptote = abs(T_last) > 100 and np.sign(c_last[3]) != np.sign(c_next[3])
        assert fold or asymptote


@pytest.mark.parametrize("kw", PARAMS[:6], ids=_ids)
def test_two_step_polynomial_is_the_two_step_difference(kw):
    rng = np.random.default_rng(1)
    z = rng.uniform(-1, 1, 50)
    T = rng.uniform(-1, 4, 50)
    for variable, idx in (("z", 0), ("T", 1)):
        c = th.two_step_polynomial(z, variable=variable, **kw)
        z2, T2 = _steps(z, T, kw, 2)
        diff = (z2 - z) if idx == 0 else (T2 - T)
        poly = z * (c[:, 0] + c[:, 1] * T + c[:, 2] * T ** 2 + c[:, 3] * T ** 3)
        np.testing.assert_allclose(poly, diff, rtol=1e-9, atol=1e-12)
    # at small z̃ the z-cubic tends to T(T − 2) (roots 0 and 2)
    np.testing.assert_allclose(th.two_step_polynomial(1e-9, **kw), [0, -2, 1, 0], atol=1e-6)


def test_two_step_map_is_two_kernel_steps():
    z = np.linspace(-0.5, 0.5, 11)
    T = np.linspace(0.5, 3.0, 11)
    z2, T2 = th.two_step_map(z, T, a=4.0, E_tilde=0.2)
    rz, rT = _steps(z, T, dict(a=4.0, E_tilde=0.2), 2)
    np.testing.assert_array_equal(z2, rz)
    np.testing.assert_array_equal(T2, rT)
    z1, T1 = th.one_step_map(z, T, a=4.0, E_tilde=0.2)
    rz, rT = _steps(z, T, dict(a=4.0, E_tilde=0.2), 1)
    np.testing.assert_array_equal(z1, rz)


# --------------------------------------------------------------------------- EOS coordinate, Eq. 18-19
def test_eos_coordinate_is_distance_from_two_step_nullcline():
    z = np.linspace(-0.4, 0.4, 41)
    f = th.two_step_nullcline_z(z, eps=0.1)
    np.testing.assert_allclose(th.eos_coordinate(z, f, eps=0.1), 0.0, atol=1e-15)
    np.testing.assert_allclose(th.eos_coordinate(z, f + 0.03, eps=0.1), 0.03, atol=1e-14)
    assert th.eos_coordinate(0.0, 1.95, eps=0.1) == pytest.approx(-0.05, abs=1e-15)
    assert np.isnan(th.eos_coordinate(np.nan, 1.0, eps=0.1))


@pytest.mark.parametrize("eps", [0.5, 0.1, 0.02])
def test_eq18_19_coefficients_by_regression(eps):
    # Sample (z̃, y) near (0, 0), take two exact steps, regress the increments on the monomials
    # of Eq. 18-19 plus higher-order nuisance terms (every Δ₂z̃ term carries y; Δ₂y vanishes on z̃ = 0).
    rng = np.random.default_rng(np.random.SeedSequence([18, 19, int(eps * 1000)]))
    n, d = 3000, 2e-2
    z = rng.uniform(-d, d, n)
    y = rng.uniform(-d, d, n)
    T = th.two_step_nullcline_z(z, eps=eps) + y
    z2, T2 = _steps(z, T, dict(eps=eps), 2)
    y2 = th.eos_coordinate(z2, T2, eps=eps)
    Xz = np.stack([y * z, y * y * z, y * z * z, y ** 3 * z, y * y * z * z, y * z ** 3], 1)
    cz = np.linalg.lstsq(Xz, z2 - z, rcond=None)[0]
    Xy = np.stack([y * z * z, z * z, z ** 3, y * y * z * z, y * z ** 3, z ** 4,
                   y ** 3 * z * z, y * y * z ** 3, y * z ** 4, z ** 5], 1)
    cy = np.linalg.lstsq(Xy, y2 - y, rcond=None)[0]
    c = th.two_step_coefficients(eps)
    # closed forms of Eq. 18-19, written out here
    assert c == (2.0, -2 * (4 - 3 * eps + 4 * eps ** 2), -4 * eps)
    assert cz[0] == pytest.approx(2.0, rel=1e-3)
    assert cy[0] == pytest.approx(-2 * (4 - 3 * eps + 4 * eps ** 2), rel=1e-3)
    assert cy[1] == pytest.approx(-4 * eps, rel=1e-3)
    # next orders from the symbolic expansion: Δ₂z̃ = y z̃ (2 + y − (1 − ε) z̃), Δ₂y ∋ 4ε(ε − 1) z̃³
    assert cz[1] == pytest.approx(1.0, rel=1e-2)
    assert cz[2] == pytest.approx(-(1 - eps), rel=1e-2)
    assert cy[2] == pytest.approx(4 * eps * (eps - 1), rel=1e-2)


def test_y_star_is_the_zero_of_the_lowest_order_y_increment():
    eps = np.array([0.3, 0.1, 0.01])
    c = th.two_step_coefficients(eps)
    ys = th.theorem31_y_star(eps)
    np.testing.assert_allclose(c.yzz * ys + c.zz, 0.0, atol=1e-15)
    np.testing.assert_allclose(ys, -2 * eps / (4 - 3 * eps + 4 * eps ** 2))
    np.testing.assert_allclose(th.theorem31_sharpness(eps), 2 - eps / 2)
    np.testing.assert_allclose(th.theorem31_sharpness_fit(eps),
                               2 - eps / 2 + th.THEOREM31_EPS2_COEFFICIENT * eps ** 2)


# --------------------------------------------------------------------------- allowed region, θ
def _solve_theta_squared(z, T, lam, E, eta):
    """(θ₁², θ₂²) from θ₁² + λθ₂² = (2z̃ + Ẽ)/η and θ₁² + λ²θ₂² = T/η (λ ≠ 1)."""
    A = np.array([[1.0, lam], [1.0, lam * lam]])
    rhs = np.stack([(2 * z + E) / eta, T / eta])
    return np.linalg.solve(A, rhs)


@pytest.mark.parametrize("kw", [dict(eps=0.1), dict(eps=1.0), dict(a=3.0, E_tilde=0.3), dict(a=-2.0, E_tilde=-0.4),
                                dict(a=-1.2, E_tilde=1.0)], ids=_ids)
def test_allowed_region_is_reachability(kw):
    rng = np.random.default_rng(11)
    lam, E = _lam(kw), kw.get("E_tilde", 0.0)
    eta = 0.7
    # states of random real θ are allowed
    theta = rng.normal(size=(2000, 2)) * 2
    z, T = th.state_from_theta(theta, eta=eta, **kw)
    assert th.allowed_region(z, T, **kw).all()
    # random states: allowed iff the squared parameters solving the linear system are ≥ 0
    z = rng.uniform(-3, 3, 5000)
    T = rng.uniform(-3, 6, 5000)
    sq = _solve_theta_squared(z, T, lam, E, eta)
    reachable = (sq >= 0).all(axis=0)
    inside = th.allowed_region(z, T, **kw)
    np.testing.assert_array_equal(inside, reachable)
    assert inside.any() and (~inside).any()
    # literal Eq. 67-68
    a = kw["a"] if "a" in kw else 1.0 / kw["eps"]
    u = 2 * z + E
    eq = (T > u) & (T > -u / a) if a > 0 else (-u / a < T) & (T < u)
    np.testing.assert_array_equal(inside, eq)  # no sample lies exactly on the boundary


def test_allowed_region_boundary_and_identity_case():
    # boundary = one Jacobian component zero: reachable (θ₂ = 0 gives T = 2z̃ + Ẽ)
    z, T = th.state_from_theta(np.array([[1.3, 0.0], [0.0, 0.8]]), eps=0.25, E_tilde=0.1)
    assert th.allowed_region(z, T, eps=0.25, E_tilde=0.1).all()
    # a = −1 (Q = I) is refused everywhere: by the theory and by the simulations alike
    import eosdyn

    for call in (lambda: th.allowed_region(0.5, 1.0, a=-1.0), lambda: th.second_eigenvalue(a=-1.0),
                 lambda: th.theta_from_state(0.5, 1.0, a=-1.0),
                 lambda: eosdyn.toy.two_param(a=-1.0, z0=0.5, T0=1.0, steps=1),
                 lambda: eosdyn.toy.two_param_flow(a=-1.0, z0=0.5, T0=1.0, times=[0.0]),
                 lambda: th.nullcline_z(0.5, a=-1.0)):
        with pytest.raises(ValueError, match="a = -1"):
            call()


@pytest.mark.parametrize("kw", [dict(eps=0.1), dict(a=3.0, E_tilde=0.3), dict(a=-2.0, E_tilde=-0.4)], ids=_ids)
def test_theta_state_round_trips(kw):
    rng = np.random.default_rng(5)
    eta = np.array([0.1, 1.0, 2.5])[:, None]
    theta = rng.normal(size=(3, 400, 2))
    z, T = th.state_from_theta(theta, eta=eta, **kw)
    back = th.theta_from_state(z, T, eta=eta, **kw)
    np.testing.assert_allclose(back, np.abs(theta), rtol=1e-9, atol=1e-9)
    # and state → θ → state, with the definitions of Eq. 4, 7 written out here
    lam, E = _lam(kw), kw.get("E_tilde", 0.0)
    th0 = th.theta_from_state(z[1], T[1], eta=1.0, **kw)
    Q = np.diag([1.0, lam])
    J = th0 @ Q
    np.testing.assert_allclose(0.5 * np.einsum("ni,ij,nj->n", th0, Q, th0) - 0.5 * E, z[1], atol=1e-12)
    np.testing.assert_allclose(np.einsum("ni,ni->n", J, J), T[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.einsum("ni,ij,nj->n", J, np.linalg.inv(Q), J), 2 * z[1] + E,
                               rtol=1e-9, atol=1e-9)


def test_theta_from_state_rejects_unreachable_states():
    with pytest.raises(ValueError, match="allowed region"):
        th.theta_from_state(0.0, -1.0, eps=0.1)
    with pytest.raises(ValueError, match="allowed region"):
        th.theta_from_state(np.array([0.1, 2.0]), np.array([1.0, 1.0]), eps=0.1)


def test_theta_from_state_drives_parameter_space_gd_like_the_map():
    # GD in θ (Eq. 9) from θ₀ = theta_from_state(z̃₀, T₀) follows the (z̃, T) map (independent path)
    eps, E, eta = 0.1, 0.2, 0.5
    theta = th.theta_from_state(-0.3, 1.7, eps=eps, E_tilde=E, eta=eta)
    Q = np.diag([1.0, -eps])
    zs, Ts = [], []
    for _ in range(30):
        z = 0.5 * theta @ Q @ theta - 0.5 * E / eta
        J = theta @ Q
        zs.append(eta * z)
        Ts.append(eta * J @ J)
        theta = theta - eta * z * Q @ theta
    zr, Tr = [-0.3], [1.7]
    for _ in range(29):
        a, b = two_param_step(zr[-1], Tr[-1], -eps, E)
        zr.append(a)
        Tr.append(b)
    np.testing.assert_allclose(zs, zr, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(Ts, Tr, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- catapult
def test_catapult_sign_rule_on_a_grid():
    z, T = np.meshgrid(np.linspace(-1.5, 1.5, 61), np.linspace(0.05, 7.95, 80), indexing="ij")
    z1, T1 = _steps(z, T, dict(eps=1.0), 1)
    expected = np.sign(T1 - T)
    got = th.catapult_sign(z, T)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got[z != 0], np.sign(T - 4)[z != 0])
    # with Ẽ ≠ 0 the rule becomes sign(z̃ (z̃ (T − 4) − 2Ẽ))
    z1, T1 = _steps(z, T, dict(eps=1.0, E_tilde=0.3), 1)
    d = T1 - T
    clear = np.abs(d) > 1e-12
    np.testing.assert_array_equal(th.catapult_sign(z, T, E_tilde=0.3)[clear], np.sign(d)[clear])


# --------------------------------------------------------------------------- API: xarray, errors
def test_dataarray_in_dataarray_out():
    z = xr.DataArray(np.linspace(-0.3, 0.3, 7), dims="z0", coords={"z0": np.linspace(-0.3, 0.3, 7)})
    eps = xr.DataArray([0.1, 0.2], dims="eps", coords={"eps": [0.1, 0.2]})
    f = th.two_step_nullcline_z(z, eps=eps)
    assert isinstance(f, xr.DataArray) and set(f.dims) == {"z0", "eps"}
    np.testing.assert_allclose(f.sel(eps=0.2).values, th.two_step_nullcline_z(z.values, eps=0.2))
    T = 1.9 + 0 * z
    y = th.eos_coordinate(z, T, eps=eps)
    assert y.name == "y" and "long_name" in y.attrs
    np.testing.assert_allclose(y.sel(eps=0.1).values, T.values - th.two_step_nullcline_z(z.values, eps=0.1))
    for func in (th.nullcline_z, th.nullcline_T, th.two_step_nullcline_T):
        out = func(z, eps=eps, E_tilde=0.1)
        assert isinstance(out, xr.DataArray) and set(out.dims) == {"z0", "eps"}
    ok = th.allowed_region(z, T, eps=eps)
    assert ok.dtype == bool and set(ok.dims) == {"z0", "eps"}
    theta = th.theta_from_state(z, T, eps=0.1)
    assert theta.dims[-1] == "param" and theta.sizes["param"] == 2
    zz, TT = th.state_from_theta(theta, eps=0.1)
    xr.testing.assert_allclose(zz, z.rename(None), atol=1e-12)
    z2, T2 = th.two_step_map(z, T, eps=eps)
    assert set(z2.dims) == {"z0", "eps"}
    for func in (th.theorem31_sharpness, th.theorem31_y_star, th.theorem31_sharpness_fit):
        assert func(eps).dims == ("eps",)
    assert th.two_step_coefficients(eps).yzz.dims == ("eps",)
    assert th.catapult_sign(z, T).dims == ("z0",)
    # dask-backed input stays lazy
    lazy = th.two_step_nullcline_z(z.chunk({"z0": 3}), eps=0.1)
    assert lazy.chunks is not None
    np.testing.assert_allclose(lazy.compute().values, th.two_step_nullcline_z(z.values, eps=0.1))


def test_reexported_by_eosdyn_theory():
    for name in th.__all__:
        assert getattr(eosdyn.theory, name) is getattr(th, name)


@pytest.mark.parametrize("kwargs,match", [
    (dict(eps=0.0), "eps"), (dict(eps=1.5), "eps"), (dict(eps=np.nan), "eps"), (dict(eps=-0.1), "eps"),
    (dict(a=0.5), "a >= 1 or a < -1"), (dict(a=-0.99), "a >= 1 or a < -1"), (dict(a=-1.0), "a = -1"), (dict(a=np.inf), "a must be finite"),
    (dict(), "exactly one"), (dict(eps=0.1, a=10.0), "exactly one"),
    (dict(eps=0.1, E_tilde=np.nan), "E_tilde must be finite"), (dict(eps=np.array([0.1, 2.0])), r"eps .*\(0, 1\]"),
])
def test_bad_parameters_raise_value_error(kwargs, match):
    for func in (th.nullcline_z, th.nullcline_T, th.two_step_nullcline_z, th.two_step_nullcline_T):
        with pytest.raises(ValueError, match=match):
            func(0.1, **kwargs)
    with pytest.raises(ValueError, match=match):
        th.eos_coordinate(0.1, 1.0, **kwargs)
    with pytest.raises(ValueError, match=match):
        th.allowed_region(0.1, 1.0, **kwargs)


def test_other_bad_input():
    with pytest.raises(ValueError, match="eta"):
        th.theta_from_state(0.1, 1.0, eps=0.1, eta=0.0)
    with pytest.raises(ValueError, match="eta"):
        th.state_from_theta(np.ones(2), eps=0.1, eta=-1.0)
    with pytest.raises(ValueError, match="theta"):
        th.state_from_theta(np.ones(3), eps=0.1)
    with pytest.raises(ValueError, match="z must be a real"):
        th.nullcline_z("abc", eps=0.1)
    with pytest.raises(ValueError, match="eps"):
        th.theorem31_sharpness(0.0)
    with pytest.raises(ValueError, match="eps"):
        th.two_step_coefficients(2.0)
    with pytest.raises(ValueError, match="variable"):
        th.two_step_polynomial(0.1, eps=0.1, variable="y")
    with pytest.raises(ValueError, match="z must be finite"):
        th.theta_from_state(np.nan, 1.0, eps=0.1)


finite = st.floats(-1e3, 1e3, allow_nan=False)


@given(eps=st.one_of(st.none(), st.floats(-1, 2), st.just(np.nan)),
       a=st.one_of(st.none(), st.floats(-10, 10, allow_nan=False)),
       E=st.one_of(st.floats(-5, 5), st.just(np.nan)),
       z=st.lists(st.one_of(st.floats(-5, 5), st.just(np.nan)), min_size=1, max_size=5),
       T=finite)
def test_property_only_value_errors(eps, a, E, z, T):
    z = np.array(z)
    for call in (lambda: th.nullcline_z(z, eps=eps, a=a, E_tilde=E),
                 lambda: th.nullcline_T(z, eps=eps, a=a, E_tilde=E),
                 lambda: th.two_step_nullcline_z(z, eps=eps, a=a, E_tilde=E),
                 lambda: th.two_step_nullcline_T(z, eps=eps, a=a, E_tilde=E),
                 lambda: th.eos_coordinate(z, T, eps=eps, a=a, E_tilde=E),
                 lambda: th.allowed_region(z, T, eps=eps, a=a, E_tilde=E),
                 lambda: th.theta_from_state(z, T, eps=eps, a=a, E_tilde=E)):
        try:
            out = call()
        except ValueError:
            continue
        assert np.shape(out)[:1] == z.shape or np.shape(out) == z.shape


@given(eps=st.floats(0.001, 1.0), E=st.floats(-1, 1), z=st.floats(-0.05, 0.05))
def test_property_two_step_nullcline_near_zero_exists_and_is_fixed(eps, E, z):
    f = th.two_step_nullcline_z(z, eps=eps, E_tilde=E)
    assert np.isfinite(f) and abs(f - 2) < 0.5
    z2, _ = _steps(np.array([z]), np.array([f]), dict(eps=eps, E_tilde=E), 2)
    assert abs(z2[0] - z) <= 1e-12


def test_vectorised_cubic_roots_match_companion_eigenvalues():
    from eosdyn.theory.continuation import cubic_roots as _cubic_roots

    rng = np.random.default_rng(9)
    c = rng.normal(size=(3000, 4))
    c[:300, 3] *= 1e-9  # a huge root and two ordinary ones (the regime near z̃ = 0)
    c[300] = [-1.0, 3.0, -3.0, 1.0]  # triple root 1
    roots = _cubic_roots(c)
    for i in range(c.shape[0]):
        ref = np.roots(c[i, ::-1])
        dist = np.min(np.abs(ref[:, None] - roots[i][None, :]), axis=1)
        tol = 1e-5 if i == 300 else 1e-10 * (1 + np.abs(ref))
        assert np.all(dist <= tol), (i, ref, roots[i])


@pytest.mark.parametrize("kw", [dict(eps=0.1), dict(a=-2.0), dict(a=3.0, E_tilde=0.3)], ids=_ids)
def test_eos_coordinate_is_pointwise_far_from_the_edge(kw):
    # Far from the EOS (large |z̃|) the value at a point must not depend on the other points
    # requested with it (it once depended on the largest |z̃| in the request).
    rng = np.random.default_rng(7)
    z = np.concatenate([[1.5, -1.2, 0.66, 2.9], rng.uniform(-6, 6, 300)])
    T = rng.uniform(-2, 8, z.size)
    bulk = th.eos_coordinate(z, T, **kw)
    single = np.array([th.eos_coordinate(zi, Ti, **kw) for zi, Ti in zip(z[:40], T[:40])])
    np.testing.assert_allclose(bulk[:40], single, rtol=1e-12, atol=1e-12, equal_nan=True)
    halves = np.concatenate([th.eos_coordinate(z[:150], T[:150], **kw),
                             th.eos_coordinate(z[150:], T[150:], **kw)])
    np.testing.assert_allclose(halves, bulk, rtol=1e-12, atol=1e-12, equal_nan=True)
