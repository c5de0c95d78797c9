"""Theorem 3.1 and the fixed point y* of Eq. 19, checked on exact GD trajectories.

Trajectories are iterated here with the array-capable kernel step
``eosdyn.kernels.maps.two_param_step`` (Ẽ = 0, eigenvalues {1, −ε}) from a box of initial
conditions that converges for every ε tested:

    z̃₀ ∈ [−0.55, −0.35],  T₀ ∈ [1.45, 1.85]

(found by scanning z̃₀ ∈ [−0.9, 0.9] × T₀ ∈ [0.1, 1.9]; outside it some runs diverge, catapult
to a different limit or converge below the edge without EOS). Each run stops when |z̃| < 1e-13,
checked on even steps only, and the limit is read there. Convergence takes ≈ 58/ε steps.

Independent truth for the limit beyond the theorem's 2 − ε/2: the map of Eq. 14-15 written out
again here and iterated in 40-digit arithmetic (mpmath) until abs(z̃) < 1e-25. Its limit does not
depend on the initial condition (to all printed digits), and a Richardson extrapolation of
(T_∞ − 2 + ε/2)/ε² over ε = 0.02, 0.01, 0.005 gives the ε² coefficient the library states
(THEOREM31_EPS2_COEFFICIENT), without any fit to the library's own runs.
"""

from __future__ import annotations

import numpy as np
import pytest

from eosdyn.kernels.maps import two_param_step
from eosdyn.theory import toy as th

EPS = [0.1, 0.05, 0.02, 0.01, 0.005]
BOX_Z0 = (-0.55, -0.35)
BOX_T0 = (1.45, 1.85)
TOL = 1e-13


def run_box(eps, n=5, tol=TOL, max_steps=None):
    """Iterate an n×n box of initial conditions until |z̃| < tol on an even step (or divergence).

    Returns (steps, z, T) at convergence; steps = −1 for runs that never converged.
    """
    z0, T0 = np.meshgrid(np.linspace(*BOX_Z0, n), np.linspace(*BOX_T0, n), indexing="ij")
    z, T = z0.ravel().copy(), T0.ravel().copy()
    lam = np.full(z.size, -eps)
    E = np.zeros(z.size)
    steps = np.full(z.size, -1)
    zf = np.full(z.size, np.nan)
    Tf = np.full(z.size, np.nan)
    max_steps = max_steps or int(200 / eps)
    for t in range(2, max_steps + 1, 2):
        # members that converged keep being iterated by the exact map (no freezing)
        z, T = two_param_step(z, T, lam, E)
        z, T = two_param_step(z, T, lam, E)
        new = (np.abs(z) < tol) & (steps < 0)
        steps[new], zf[new], Tf[new] = t, z[new], T[new]
        if (steps >= 0).all() or not np.isfinite(z[steps < 0]).any():
            break
    return steps, zf, Tf


@pytest.fixture(scope="module")
def box_runs():
    return {eps: run_box(eps) for eps in EPS}


def test_box_converges_in_about_60_over_eps_steps(box_runs):
    for eps, (steps, _, _) in box_runs.items():
        assert (steps > 0).all(), f"eps={eps}: not every run in the box converged"
        assert steps.max() * eps < 70 and steps.max() * eps > 40


def test_limit_is_2_minus_eps_over_2_up_to_eps_squared(box_runs):
    for eps, (_, _, Tf) in box_runs.items():
        dev = Tf - th.theorem31_sharpness(eps)
        # |T_∞ − (2 − ε/2)| ≤ c ε² with c = 1.5 (measured max 1.19, at ε = 0.1)
        assert np.max(np.abs(dev)) <= 1.5 * eps ** 2, eps
    # the deviation really is second order: divided by ε² it is bounded and converges
    ratios = [np.median(box_runs[e][2] - (2 - e / 2)) / e ** 2 for e in EPS]
    assert np.all(np.diff(ratios) > 0)          # −0.99, −0.91, −0.87, −0.856, −0.850
    assert abs(ratios[-1] - ratios[-2]) < 0.01


mp = pytest.importorskip("mpmath")  # a third-party reference, not eosdyn itself


def mp_limit(eps, z0=-0.45, T0=1.65, dps=40):
    """T_∞ of the P = 2 map (Eq. 14-15, Ẽ = 0, λ = −ε) in ``dps``-digit arithmetic, written
    independently of eosdyn: iterate until abs(z̃) < 1e-25 on an even step."""
    with mp.workdps(dps):
        lam, z, T = -mp.mpf(eps), mp.mpf(z0), mp.mpf(T0)
        for t in range(1, 10**6):
            u = 2 * z
            T1 = (1 + lam) * T - lam * u                 # T(1) from T(−1) = 2z̃ + Ẽ
            T2 = T + lam * (lam + 1) * (T - u)           # T(2)
            z, T = z - z * T + z * z * T1 / 2, T - 2 * z * T1 + z * z * T2
            if t % 2 == 0 and abs(z) < mp.mpf("1e-25"):
                return T
    raise AssertionError("no convergence")  # pragma: no cover


@pytest.fixture(scope="module")
def mp_limits():
    return {eps: mp_limit(eps) for eps in (0.02, 0.01, 0.005)}


def test_limit_does_not_depend_on_the_start_high_precision():
    a, b = mp_limit(0.02, -0.55, 1.45), mp_limit(0.02, -0.35, 1.85)
    assert abs(a - b) < mp.mpf("1e-20")


def test_eps2_coefficient_against_high_precision_iteration(mp_limits):
    r = {e: (T - 2 + mp.mpf(e) / 2) / mp.mpf(e) ** 2 for e, T in mp_limits.items()}
    # r(ε) = c + d ε + f ε² + …: Richardson extrapolation to ε = 0 from ε, ε/2, ε/4
    c = (8 * r[0.005] - 6 * r[0.01] + r[0.02]) / 3
    assert float(c) == pytest.approx(th.THEOREM31_EPS2_COEFFICIENT, abs=2e-4)
    for e, T in mp_limits.items():
        # the library's 2 − ε/2 + c ε² is the limit up to O(ε³) (d ≈ −1.3)
        assert abs(th.theorem31_sharpness_fit(e) - float(T)) <= 1.5 * e ** 3
        assert abs(th.theorem31_sharpness(e) - float(T)) <= 1.0 * e ** 2


def test_float64_runs_reach_the_high_precision_limit(box_runs, mp_limits):
    for e in (0.02, 0.01, 0.005):
        np.testing.assert_allclose(box_runs[e][2], float(mp_limits[e]), rtol=0, atol=1e-8)  # rounding over ~1e4 steps


def test_y_settles_near_y_star(box_runs):
    for eps, (_, zf, Tf) in box_runs.items():
        y = th.eos_coordinate(zf, Tf, eps=eps)
        ys = th.theorem31_y_star(eps)
        # y* = −2ε/(4 − 3ε + 4ε²) is the lowest-order fixed point: agreement to O(ε²)
        assert np.max(np.abs(y - ys)) <= 1.0 * eps ** 2
        assert np.max(np.abs(y / ys - 1)) <= 2.5 * eps


def test_y_approaches_y_star_along_trajectories():
    # late in the run, the even-step y of a trajectory sits near y* while z̃ → 0 slowly
    eps = 0.02
    z = np.array([-0.45]); T = np.array([1.65])
    lam, E = np.array([-eps]), np.zeros(1)
    zs, Ts = [], []
    for t in range(1, int(60 / eps)):
        z, T = two_param_step(z, T, lam, E)
        if t % 2 == 0:
            zs.append(z[0])
            Ts.append(T[0])
    zs = np.array(zs)
    ys = th.eos_coordinate(zs, np.array(Ts), eps=eps)
    late = np.abs(zs) < 1e-3
    assert late.sum() > 100
    assert np.max(np.abs(ys[late] - th.theorem31_y_star(eps))) < 1.0 * eps ** 2


@pytest.mark.slow
def test_theorem31_fine_box():
    for eps in EPS + [0.002]:
        steps, zf, Tf = run_box(eps, n=41)
        assert (steps > 0).all()
        assert np.max(np.abs(Tf - th.theorem31_sharpness(eps))) <= 1.5 * eps ** 2
        assert np.max(np.abs(Tf - th.theorem31_sharpness_fit(eps))) <= 0.4 * eps ** 2


def test_toy_simulation_reaches_the_same_limit(box_runs):
    # second implementation: the batch kernel of eosdyn.toy.two_param with stop="batch"
    import eosdyn

    eps = [0.1, 0.02]
    ds = eosdyn.toy.two_param(eps=eps, z0=np.linspace(*BOX_Z0, 5), T0=np.linspace(*BOX_T0, 5),
                              steps=int(200 / min(eps)), record_every=int(200 / min(eps)),
                              stop="batch", tol=0.5 * TOL ** 2)
    assert (ds.status == eosdyn.conventions.STATUS_VALUES["converged"]).all()
    for e in eps:
        got = ds.final_T.sel(eps=e).transpose("z0", "T0").values.ravel()
        np.testing.assert_allclose(got, box_runs[e][2], rtol=0, atol=1e-10)
