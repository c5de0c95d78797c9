"""Tests of eosdyn.theory.qrm against independent truth.

* lambda_max_derivatives: finite differences of lambda_max along a high-accuracy
  ``solve_ivp`` integration of the gradient flow theta' = -eta J(theta)^T z(theta).
* r_NL, E[lambda_dot], E[lambda_ddot] / E[lambda]: Monte Carlo written here, with
  its own numpy sampling of z, J and Q (both symmetrisation conventions).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.integrate import solve_ivp

import eosdyn
from eosdyn.theory import qrm as th

try:  # oversubscribed BLAS threads make small eigh calls ~100x slower on a loaded 2-core box
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None


@pytest.fixture(autouse=True)
def _one_blas_thread():
    if threadpool_limits is None:  # pragma: no cover
        yield
        return
    with threadpool_limits(1):
        yield


SQ = {"sym": np.sqrt(2.0), "half": 2.0}


def sample_q(rng, lead: tuple, P: int, convention: str = "sym") -> np.ndarray:
    """Q[..., a, i, j] = (G + G^T)/s with G i.i.d. N(0, 1); s = sqrt(2) or 2."""
    G = rng.standard_normal(lead + (P, P))
    return (G + np.swapaxes(G, -1, -2)) / SQ[convention]


# ----------------------------------------------------------------- derivatives vs the flow
def _lambda_along_flow(J0, z0, Q, eta, times):
    """lambda_max(J(theta(t)) J^T) for theta' = -eta J(theta)^T z(theta), theta(0) = 0."""
    P = J0.shape[1]

    def model(theta):
        Jt = J0 + np.einsum("aij,i->aj", Q, theta)
        zt = z0 + J0 @ theta + 0.5 * np.einsum("aij,i,j->a", Q, theta, theta)
        return Jt, zt

    def rhs(_t, theta):
        Jt, zt = model(theta)
        return -eta * Jt.T @ zt

    out = []
    for t in times:
        if t == 0:
            theta = np.zeros(P)
        else:
            sol = solve_ivp(rhs, (0.0, t), np.zeros(P), method="DOP853", rtol=1e-13, atol=1e-15)
            assert sol.success
            theta = sol.y[:, -1]
        Jt, _ = model(theta)
        out.append(np.linalg.eigvalsh(Jt @ Jt.T)[-1])
    return np.array(out)


@pytest.mark.parametrize("D,P,eta", [(4, 6, 1.0), (6, 3, 0.5), (1, 5, 2.0), (5, 5, 1.0)])
def test_lambda_max_derivatives_match_flow(D, P, eta):
    rng = np.random.default_rng([D, P, 11])
    J0 = rng.standard_normal((D, P)) / np.sqrt(P)
    z0 = rng.standard_normal(D)
    Q = sample_q(rng, (D,), P) / np.sqrt(P)
    lam, d1, d2 = th.lambda_max_derivatives(J0, z0, Q, eta=eta)
    # time scale of the flow, then a 5-point stencil with O(h^4) truncation
    h = 2e-3 / max(eta * np.linalg.norm(J0) ** 2, 1.0)
    lt = _lambda_along_flow(J0, z0, Q, eta, [-2 * h, -h, 0.0, h, 2 * h])
    fd1 = (lt[0] - 8 * lt[1] + 8 * lt[3] - lt[4]) / (12 * h)
    fd2 = (-lt[0] + 16 * lt[1] - 30 * lt[2] + 16 * lt[3] - lt[4]) / (12 * h ** 2)
    assert lam == pytest.approx(lt[2], rel=1e-12)
    scale1 = abs(d1) + abs(d2) * h + 1e-12
    assert abs(d1 - fd1) < 1e-6 * scale1
    assert d2 == pytest.approx(fd2, rel=2e-5)


def test_simulator_gradient_flow_matches_derivatives():
    """Cross-check with eosdyn.qrm.gradient_flow (the simulator's solve_ivp flow, Eq. 22 with rate eta):
    its sharpness(time) near t = 0 has Taylor coefficients eta*lam, eta*lam', eta*lam''/2."""
    from eosdyn.models.qrm import initial_state

    D, P, eta, t_max, n = 5, 8, 0.7, 0.02, 9
    sz, sj, seeds = np.array([0.8, 2.0]), np.array([0.6, 1.2]), [0, 3]
    ds = eosdyn.qrm.gradient_flow(D=D, P=P, sigma_z=sz, sigma_J=sj, seeds=seeds, times=np.linspace(0.0, t_max, n),
                                  eta=eta, rtol=1e-13, atol=1e-16)
    t = ds["time"].values
    SZ, SJ = np.meshgrid(sz, sj, indexing="ij")
    for s in seeds:
        Q, J0, z0 = initial_state(s, D=D, P=P, sigma_z=SZ.ravel(), sigma_J=SJ.ravel())
        lam, d1, d2 = th.lambda_max_derivatives(J0, z0, np.broadcast_to(Q, (len(J0),) + Q.shape), eta=eta)
        for b in range(len(J0)):
            i, j = divmod(b, sj.size)
            y = ds["sharpness"].sel(seed=s).isel(sigma_z=i, sigma_J=j).transpose("time").values
            coef = np.polynomial.polynomial.polyfit(t, y, 6)
            assert y[0] == pytest.approx(eta * lam[b], rel=1e-12)
            assert coef[1] == pytest.approx(eta * d1[b], rel=1e-6)
            assert 2 * coef[2] == pytest.approx(eta * d2[b], rel=1e-4)


def test_lambda_max_derivatives_batch_equals_loop():
    rng = np.random.default_rng(5)
    J = rng.standard_normal((7, 3, 4))
    z = rng.standard_normal((7, 3))
    Q = sample_q(rng, (7, 3), 4)
    batch = th.lambda_max_derivatives(J, z, Q)
    for i in range(7):
        one = th.lambda_max_derivatives(J[i], z[i], Q[i])
        for b, o in zip(batch, one):
            assert b[i] == pytest.approx(o, rel=1e-12, abs=1e-12)


# ----------------------------------------------------------------- conditional expectation given J
@pytest.mark.parametrize("D,P,convention", [(4, 5, "sym"), (4, 5, "half"), (5, 3, "sym"), (2, 7, "half")])
def test_conditional_moments_match_monte_carlo(D, P, convention):
    """E[lam' | J] = 0 and E[lam'' | J] (closed form) vs sampling z and Q for a fixed J."""
    rng = np.random.default_rng([D, P, 23, len(convention)])
    J = rng.standard_normal((D, P)) * 0.7
    sigma_z, eta, n = 0.3, 0.8, 20000
    z = sigma_z * rng.standard_normal((n, D))
    Q = sample_q(rng, (n, D), P, convention)
    lam, d1, d2 = th.lambda_max_derivatives(np.broadcast_to(J, (n, D, P)), z, Q, eta=eta)
    # z is sampled with the raw width sigma_z; the theory takes the rescaled D sigma_z (Eq. 29)
    lam_c, d1_c, d2_c = th.theorem41_conditional(J, sigma_z=sigma_z * D, eta=eta, convention=convention)
    assert np.allclose(lam, lam_c, rtol=1e-12)
    assert d1_c == 0.0
    se1 = d1.std(ddof=1) / np.sqrt(n)
    assert abs(d1.mean()) < 4 * se1
    se2 = d2.std(ddof=1) / np.sqrt(n)
    assert se2 < 0.03 * abs(d2_c)  # the check below is informative
    assert abs(d2.mean() - d2_c) < 4 * se2


def test_exact_ratio_matches_joint_monte_carlo():
    """theorem41_ratio(exact=True) vs a joint sampling of J, z and Q (D=3, P=4)."""
    D, P, n = 3, 4, 100000
    sigma_z, sigma_J, eta = 0.4, 1.7, 0.9
    rng = np.random.default_rng(77)
    J = sigma_J * rng.standard_normal((n, D, P))
    z = sigma_z * rng.standard_normal((n, D))
    Q = sample_q(rng, (n, D), P)
    lam, d1, d2 = th.lambda_max_derivatives(J, z, Q, eta=eta)
    r_mc = d2.mean() / lam.mean()
    se_mc = np.std(d2 - r_mc * lam, ddof=1) / np.sqrt(n) / lam.mean()
    r_ex, se_ex = th.theorem41_ratio(D=D, P=P, sigma_z=sigma_z * D, sigma_J=sigma_J * (D * P) ** 0.25, eta=eta,
                                     exact=True,
                                     n_samples=100000, seed=1, return_stderr=True)
    assert se_mc < 0.03 * r_mc  # heavy tail: 1/(l_1 - l_2) has a log-divergent variance
    assert abs(r_mc - r_ex) < 4 * np.hypot(se_mc, se_ex)
    # first derivative: zero mean within its Monte Carlo error
    assert abs(d1.mean()) < 4 * d1.std(ddof=1) / np.sqrt(n)


def test_mean_first_derivative_zero_large():
    """E[d lambda_max/dt(0)] = 0 within 4 standard errors (D=20, P=30, joint sampling)."""
    D, P, n = 20, 30, 400
    rng = np.random.default_rng(3)
    J = rng.standard_normal((n, D, P)) / (D * P) ** 0.25
    z = rng.standard_normal((n, D)) * 0.5 / D
    Q = sample_q(rng, (n, D), P)
    _, d1, _ = th.lambda_max_derivatives(J, z, Q)
    se = d1.std(ddof=1) / np.sqrt(n)
    assert se > 0
    assert abs(d1.mean()) < 4 * se


@pytest.mark.parametrize("D,P", [(100, 100), (100, 200), (200, 100)])
def test_theorem41_asymptotic_within_10_percent(D, P):
    """2 c D P sigma_z^2 eta^2 vs the conditional-expectation estimator on J sampled here."""
    rng = np.random.default_rng([D, P])
    sigma_z, eta, n = 0.02, 0.5, 120
    J = rng.standard_normal((n, D, P)) * 0.3
    sz = sigma_z * D  # rescaled width (Eq. 29)
    lam, _, d2 = th.theorem41_conditional(J, sigma_z=sz, eta=eta)
    r_mc = d2.mean() / lam.mean()
    se = np.std(d2 - r_mc * lam, ddof=1) / np.sqrt(n) / lam.mean()
    assert se < 0.03 * r_mc
    assert r_mc == pytest.approx(th.theorem41_ratio(D=D, P=P, sigma_z=sz, eta=eta), rel=0.10)
    half = th.theorem41_conditional(J, sigma_z=sz, eta=eta, convention="half")[2].mean() / lam.mean()
    assert half == pytest.approx(th.theorem41_ratio(D=D, P=P, sigma_z=sz, eta=eta, convention="half"),
                                 rel=0.10)


@pytest.mark.slow
def test_theorem41_raw_monte_carlo_at_100():
    """Raw joint sampling of (J, z, Q) at D = P = 100, no conditional averaging (~1 min).

    Antithetic pairs (Q, -Q) — an exact symmetry of the ensemble — cancel the part
    of lambda'' that is odd in Q (2 u^T Q_1 J^T J g, zero mean but ~13x the mean
    in standard deviation at this size); lambda' is odd in Q, so it is checked on
    the plain (first) member of each pair.
    """
    D = P = 100
    n = 300
    rng = np.random.default_rng(2024)
    sigma_z = 0.01
    d2 = np.empty(n)
    lam = np.empty(n)
    d1 = np.empty(n)
    for i in range(n):
        J = rng.standard_normal((D, P))
        z = sigma_z * rng.standard_normal(D)
        Q = sample_q(rng, (D,), P)
        ll, dd1, dd2 = th.lambda_max_derivatives(np.stack([J, J]), np.stack([z, z]), np.stack([Q, -Q]))
        lam[i], d1[i], d2[i] = ll[0], dd1[0], dd2.mean()
    r = d2.mean() / lam.mean()
    se = np.std(d2 - r * lam, ddof=1) / np.sqrt(n) / lam.mean()
    exact, se_ex = th.theorem41_ratio(D=D, P=P, sigma_z=sigma_z * D, exact=True, n_samples=400, seed=9,
                                      return_stderr=True)
    assert se < 0.04 * r
    assert abs(r - exact) < 4 * np.hypot(se, se_ex)
    assert r == pytest.approx(th.theorem41_ratio(D=D, P=P, sigma_z=sigma_z * D), rel=0.10)
    assert abs(d1.mean()) < 4 * d1.std(ddof=1) / np.sqrt(n)


def test_exact_estimator_is_reproducible_and_sigma_J_free():
    a = th.theorem41_ratio(D=20, P=30, sigma_z=0.1, sigma_J=0.3, exact=True, n_samples=40, seed=4)
    b = th.theorem41_ratio(D=20, P=30, sigma_z=0.1, sigma_J=3.0, exact=True, n_samples=40, seed=4)
    c = th.theorem41_ratio(D=20, P=30, sigma_z=0.1, exact=True, n_samples=40, seed=5)
    assert a == b
    assert a != c
    # homogeneity: the conditional E[lam''|J] / lam is invariant under J -> s J
    J = np.random.default_rng(0).standard_normal((20, 30))
    l1, _, d1 = th.theorem41_conditional(J, sigma_z=0.1)
    l2, _, d2 = th.theorem41_conditional(4.0 * J, sigma_z=0.1)
    assert d2 / l2 == pytest.approx(d1 / l1, rel=1e-12)


# ----------------------------------------------------------------- r_NL
def _r_nl_monte_carlo(rng, D, P, sigma_z, sigma_J, eta, convention, n, chunk=4000):
    num = np.empty(n)
    den = np.empty(n)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        J = sigma_J * rng.standard_normal((m, D, P))
        z = sigma_z * rng.standard_normal((m, D))
        Q = sample_q(rng, (m, D), P, convention)
        g = np.einsum("nap,na->np", J, z)
        quad = 0.5 * eta ** 2 * np.einsum("nai,ni->na", np.einsum("naij,nj->nai", Q, g), g)
        lin = eta * np.einsum("nap,np->na", J, g)
        num[s:s + m] = (quad ** 2).sum(-1)
        den[s:s + m] = (lin ** 2).sum(-1)
    ratio2 = num.mean() / den.mean()
    # delta method for sqrt(mean(num)/mean(den))
    se2 = np.std(num - ratio2 * den, ddof=1) / np.sqrt(n) / den.mean()
    return np.sqrt(ratio2), 0.5 * se2 / np.sqrt(ratio2), np.mean(np.sqrt(num / den))


@pytest.mark.parametrize("D,P,convention,n", [(8, 10, "sym", 40000), (8, 10, "half", 40000),
                                               (12, 4, "sym", 40000), (2, 6, "half", 300000)])
def test_r_nl_matches_monte_carlo(D, P, convention, n):
    rng = np.random.default_rng([D, P, len(convention)])
    sigma_z, sigma_J, eta = 0.3, 1.3, 0.7
    r_mc, se, _ = _r_nl_monte_carlo(rng, D, P, sigma_z, sigma_J, eta, convention, n=n)
    r_th = th.r_nl(D=D, P=P, sigma_z=sigma_z * D, eta=eta, convention=convention)  # rescaled width
    assert se < 0.006 * r_mc  # so that the 2% check below is a real test (~3.5 standard errors)
    assert r_th == pytest.approx(r_mc, rel=0.02)
    assert abs(r_th - r_mc) < 4 * se


def test_r_nl_paper_form_is_the_equal_size_limit_only():
    s, eta = 0.01, 0.5  # raw width; the theory takes the rescaled D s
    big = 10 ** 7
    assert th.r_nl(D=big, P=big, sigma_z=s * big, eta=eta) == pytest.approx(0.5 * eta * s * big, rel=1e-6)
    # general large-size limit eta sigma_z_raw D sqrt(P / (2 (D + P)))
    assert th.r_nl(D=big, P=4 * big, sigma_z=s * big) == pytest.approx(s * big * np.sqrt(4 / 10), rel=1e-6)
    # at the paper's D=60, P=120 the printed form is off by ~18 %
    assert th.r_nl(D=60, P=120, sigma_z=s * 60) / (0.5 * s * 60) == pytest.approx(1.18, abs=0.01)


def test_convention_factors():
    kw = dict(D=np.array([3, 50, 400]), P=np.array([7, 60, 90]), sigma_z=0.2, eta=0.9)
    np.testing.assert_allclose(th.r_nl(**kw, convention="half") / th.r_nl(**kw), np.sqrt(0.5), rtol=1e-14)
    np.testing.assert_allclose(th.theorem41_ratio(**kw, convention="half") / th.theorem41_ratio(**kw), 0.5,
                               rtol=1e-14)
    e_sym = th.theorem41_ratio(D=10, P=12, sigma_z=0.2, exact=True, n_samples=30, seed=2)
    e_half = th.theorem41_ratio(D=10, P=12, sigma_z=0.2, exact=True, n_samples=30, seed=2, convention="half")
    assert e_half / e_sym == pytest.approx(0.5, rel=1e-14)
    # closed forms (docs): 2 c D P eta^2 sigma_z^2
    # (raw sigma_z = 0.1, i.e. the rescaled 100 * 0.1)
    assert th.theorem41_ratio(D=100, P=30, sigma_z=10.0, eta=2.0) == pytest.approx(2 * 100 * 30 * 4 * 0.01)


# ----------------------------------------------------------------- units, xarray, validation
def test_rescale_roundtrip_and_rescaled_inputs():
    D, P = 60, 120
    sz, sj = th.rescale_sigmas(D=D, P=P, sigma_z_raw=0.01, sigma_J_raw=0.2)
    assert sz == pytest.approx(0.6) and sj == pytest.approx(0.2 * 7200 ** 0.25)
    back = th.unrescale_sigmas(D=D, P=P, sigma_z=sz, sigma_J=sj)
    assert back == pytest.approx((0.01, 0.2))
    assert th.rescale_sigmas(D=D, P=P, sigma_J_raw=0.2)[0] is None
    # the example: r_nl(D=60, P=120, sigma_z=ds.sigma_z) on a sweep dataset is right (no factor D)
    ds = eosdyn.qrm.sweep(D=D, P=P, sigma_z=[0.3, 0.6], sigma_J=1.0, eta=0.5, seeds=1, steps=0)
    _, _, z0 = eosdyn.qrm.initial_state(0, D=D, P=P, sigma_z=[0.6], sigma_J=[1.0])
    _, zhat, _ = eosdyn.qrm.instance(0, D=D, P=P)
    np.testing.assert_allclose(z0[0], 0.01 * zhat, rtol=1e-15)  # raw width sigma_z / D
    by_hand = 0.5 * (ds.sigma_z.values / D) * np.sqrt(D * (D + 2.0) * (P + 2.0) / (2.0 * (P + D + 1.0)))
    np.testing.assert_allclose(th.r_nl(ds).values, by_hand, rtol=1e-14)
    np.testing.assert_allclose(th.r_nl(D=60, P=120, sigma_z=ds.sigma_z, eta=0.5).values, by_hand, rtol=1e-14)
    np.testing.assert_allclose(th.theorem41_ratio(ds).values, 2 * D * P * 0.25 * (ds.sigma_z.values / D) ** 2,
                               rtol=1e-14)
    assert th.r_nl(ds, eta=1.0).values == pytest.approx(2 * by_hand, rel=1e-14)  # keywords override


def test_dataarray_in_dataarray_out():
    sz = xr.DataArray([0.6, 1.2, 2.4], dims="sigma_z", coords={"sigma_z": [0.6, 1.2, 2.4]})
    D = xr.DataArray([30, 60], dims="D", coords={"D": [30, 60]})
    r = th.r_nl(D=D, P=120, sigma_z=sz)
    assert isinstance(r, xr.DataArray)
    assert set(r.dims) == {"D", "sigma_z"} and r.name == "r_nl" and "long_name" in r.attrs
    Dv = np.array([30, 60])[:, None]
    expected = (np.array([0.6, 1.2, 2.4])[None] / Dv) * np.sqrt(Dv * (Dv + 2.0) * 122.0 / (2.0 * (121.0 + Dv)))
    np.testing.assert_allclose(r.transpose("D", "sigma_z").values, expected, rtol=1e-14)
    t = th.theorem41_ratio(D=D, P=120, sigma_z=sz)
    assert isinstance(t, xr.DataArray) and set(t.dims) == {"D", "sigma_z"}
    np.testing.assert_allclose(t.sel(D=60).values, 2 * 60 * 120 * (sz.values / 60) ** 2, rtol=1e-14)
    te = th.theorem41_ratio(D=20, P=30, sigma_z=sz, exact=True, n_samples=20)
    assert isinstance(te, xr.DataArray) and te.dims == ("sigma_z",)
    np.testing.assert_allclose(te.values / te.values[0], (sz.values / 0.6) ** 2, rtol=1e-12)
    st, sj = th.rescale_sigmas(D=D, P=120, sigma_z_raw=sz / 60, sigma_J_raw=sz)
    assert isinstance(st, xr.DataArray) and isinstance(sj, xr.DataArray)
    assert eosdyn.theory.r_nl is th.r_nl and eosdyn.theory.theorem41_ratio is th.theorem41_ratio


@pytest.mark.parametrize("kwargs,name", [
    (dict(D=0, P=5, sigma_z=0.1), "D"),
    (dict(D=5, P=0, sigma_z=0.1), "P"),
    (dict(D=2.5, P=5, sigma_z=0.1), "D"),
    (dict(D=np.array([3, 0]), P=5, sigma_z=0.1), "D"),
    (dict(D=5, P=np.array([3.5]), sigma_z=0.1), "P"),
    (dict(D=5, P=5, sigma_z=-0.1), "sigma_z"),
    (dict(D=5, P=5, sigma_z=0.1, eta=0.0), "eta"),
    (dict(D=5, P=5, sigma_z=0.1, eta=-1.0), "eta"),
    (dict(D=5, P=5, sigma_z=0.1, convention="other"), "convention"),
    (dict(D=5, P=5), "sigma_z"),
])
def test_bad_input_names_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        th.r_nl(**kwargs)
    with pytest.raises(ValueError, match=name):
        th.theorem41_ratio(**kwargs)


@pytest.mark.parametrize("kwargs,name", [
    (dict(sigma_J=-1.0), "sigma_J"),
    (dict(sigma_J=0.0), "sigma_J"),
    (dict(exact=True, n_samples=1), "n_samples"),
    (dict(exact=True, seed=-3), "seed"),
    (dict(exact="yes"), "exact"),
])
def test_bad_input_theorem41(kwargs, name):
    with pytest.raises(ValueError, match=name):
        th.theorem41_ratio(D=5, P=5, sigma_z=0.1, **kwargs)
    with pytest.raises(ValueError, match="D and P"):
        th.theorem41_ratio(D=np.array([5, 6]), P=5, sigma_z=0.1, exact=True)


def test_bad_input_helpers():
    rng = np.random.default_rng(0)
    J, z, Q = rng.standard_normal((3, 4)), rng.standard_normal(3), sample_q(rng, (3,), 4)
    with pytest.raises(ValueError, match="symmetric"):
        th.lambda_max_derivatives(J, z, Q + rng.standard_normal(Q.shape))
    with pytest.raises(ValueError, match="z must"):
        th.lambda_max_derivatives(J, z[:2], Q)
    with pytest.raises(ValueError, match="Q must"):
        th.lambda_max_derivatives(J, z, Q[:, :3, :3])
    with pytest.raises(ValueError, match="eta"):
        th.lambda_max_derivatives(J, z, Q, eta=0)
    with pytest.raises(ValueError, match="sigma_z"):
        th.theorem41_conditional(J, sigma_z=-1)
    with pytest.raises(ValueError, match="J must"):
        th.theorem41_conditional(np.ones(3), sigma_z=1)
    with pytest.raises(ValueError, match="D"):
        th.rescale_sigmas(D=0, P=3, sigma_z_raw=1.0)
    with pytest.raises(ValueError, match="sigma_J_raw"):
        th.rescale_sigmas(D=2, P=3, sigma_J_raw=-1.0)
    with pytest.raises(ValueError, match="sigma_z"):
        th.unrescale_sigmas(D=2, P=3, sigma_z=-1.0)
    with pytest.raises(TypeError, match="dataset"):
        th.r_nl([1.0])


def test_docstring_examples():
    import doctest

    res = doctest.testmod(th, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 5 and res.failed == 0
