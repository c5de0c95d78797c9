"""Theorem 3.1 and the fixed point y* of Eq. 19, checked on exact GD trajectories.

Trajectories are iterated here with the array-capable kernel step
``eosdyn.kernels.maps.two_param_step`` (Ẽ = 0, eigenvalues {1, −ε}) from a box of initial
conditions that converges for every ε tested:

    z̃₀ ∈ [−0.55, −0.35],  T₀ ∈ [1.45, 1.85]

(found by scanning z̃₀ ∈ [−0.9, 0.9] × T₀ ∈ [0.1, 1.9]; outside it some runs diverge, catapult
to a different limit or converge below the edge without EOS). Each run stops when |z̃| < 1e-13,
checked on even steps only, and the limit is read there. Convergence takes ≈ 58/ε steps.
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


def test_fitted_eps2_coefficient(box_runs):
    eps = np.array(EPS)
    med = np.array([np.median(box_runs[e][2]) for e in EPS])
    # T_∞ − (2 − ε/2) = c ε² + d ε³ + f ε⁴
    X = np.stack([eps ** 2, eps ** 3, eps ** 4], 1)
    c, d, f = (float(v) for v in np.linalg.lstsq(X, med - (2 - eps / 2), rcond=None)[0])
    assert c == pytest.approx(th.THEOREM31_EPS2_COEFFICIENT, abs=2e-3)
    assert np.all(np.abs(th.theorem31_sharpness_fit(eps) - med) <= 2.0 * eps ** 3)


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
    # second implementation: the batch kernel of eosdyn.toy.two_param with stop_on_convergence
    import eosdyn

    toy = eosdyn.toy
    if not hasattr(toy, "two_param"):  # pragma: no cover - written in parallel
        pytest.skip("eosdyn.toy.two_param not available")
    eps = [0.1, 0.02]
    ds = toy.two_param(eps=eps, z0=np.linspace(*BOX_Z0, 5), T0=np.linspace(*BOX_T0, 5),
                       steps=int(200 / min(eps)), record_every=int(200 / min(eps)),
                       stop_on_convergence=True, tol=TOL)
    assert (ds.status == eosdyn.conventions.STATUS_VALUES["converged"]).all()
    for e in eps:
        got = ds.final_T.sel(eps=e).transpose("z0", "T0").values.ravel()
        np.testing.assert_allclose(got, box_runs[e][2], rtol=0, atol=1e-10)
