"""Figure 5, Figure 6 (middle) and Appendix D.3 from the stored real-network datasets.

The stored files come from ``eosdyn nn build`` (torch); these checks need only the files.
Truth: the paper's claims (λ₁ oscillates around the edge 2, λ₂ below, period-2 z₁ removed by
the two-step map, Δ₂z₁ ≈ 2 y z₁) and, for the Taylor model, the stored real trajectory.
"""

from pathlib import Path

import numpy as np
import pytest

import eosdyn
from eosdyn.analysis import even, fit_increments, two_step
from eosdyn import taylor

DATA = Path(__file__).resolve().parents[1] / "catalogs" / "data"
TRAJ = DATA / "cifar_fcn_trajectory.nc"
PROJ = DATA / "cifar_fcn_projections.nc"

pytestmark = pytest.mark.skipif(not (TRAJ.exists() and PROJ.exists()),
                                reason="stored cifar_fcn datasets not present")


@pytest.fixture(scope="module")
def traj():
    return eosdyn.open_dataset(TRAJ)


@pytest.fixture(scope="module")
def window(traj):
    return traj.sel(step=slice(traj.attrs["window_start"], traj.attrs["window_end"]))


@pytest.fixture(scope="module")
def proj():
    return eosdyn.open_dataset(PROJ)


def simulate_on_network_steps(proj, **kw):
    """The Taylor model with its step coordinate replaced by the network's steps (network_step = t0 + step)."""
    sim = eosdyn.check_dataset(taylor.simulate(proj, **kw))
    assert (sim.network_step == sim.t0 + sim.step).all()
    return sim.assign_coords(step=("step", sim.network_step.values, sim.network_step.attrs))


def first_crossings(s, steps):
    """Steps of the first up-crossing of 2 and of the first return below 2 after it."""
    above = s >= 2.0
    up = int(np.argmax(above)) if above.any() else None
    if up is None:
        return None, None
    below = ~above[up:]
    down = up + int(np.argmax(below)) if below.any() else None
    return steps[up], (steps[down] if down is not None else None)


def test_stored_files_follow_conventions(traj, proj, tmp_path):
    for ds, name in ((traj, "t.nc"), (proj, "p.nc")):
        eosdyn.check_dataset(ds)
        eosdyn.to_netcdf(ds, tmp_path / name)
        assert eosdyn.open_dataset(tmp_path / name).identical(ds)
    assert proj.sizes["mode"] >= 16
    assert TRAJ.stat().st_size + PROJ.stat().st_size < 8e6


def test_figure5_sharpness_rises_to_and_oscillates_around_the_edge(window, traj):
    s1 = window.sharpness.sel(mode=0).values
    s2 = window.sharpness.sel(mode=1).values
    assert np.isfinite(s1).all() and np.isfinite(s2).all()
    assert s1[0] < 1.95                       # the window opens while still sharpening
    probe = traj.sharpness.sel(mode=0, step=slice(0, traj.attrs["window_start"])).dropna("step")
    assert probe.values[-1] > probe.values[probe.size // 2] > 0   # progressive sharpening before it
    assert s1.max() > 2.0                     # reaches the edge ...
    up, down = first_crossings(s1, window.step.values)
    assert down is not None                   # ... falls back below it ...
    assert (s1[window.step.values > down] > 2.0).any()   # ... and crosses again
    after = window.step.values >= up
    assert abs(np.median(s1[after]) - 2.0) < 0.1
    assert np.all(s2 <= s1 * (1 + 1e-6))
    # the top-Hessian eigenvalue (every few steps) tracks η λ₁ / n (Gauss-Newton dominates)
    hs = traj.hessian_sharpness
    np.testing.assert_allclose(hs.values, traj.sharpness.sel(mode=0, step=hs.step_h.values).values, rtol=0.05)


@pytest.mark.xfail(strict=True, reason="paper: λ₂ stays below the edge; in the stored run (n = 5000) λ₂ is "
                                       "5 % below λ₁ and exceeds 2 on 12 % of the steps after the first crossing "
                                       "(max η λ₂/n = 2.018)")
def test_figure5_second_eigenvalue_below_the_edge(window):
    s1 = window.sharpness.sel(mode=0).values
    s2 = window.sharpness.sel(mode=1).values
    up, _ = first_crossings(s1, window.step.values)
    assert np.mean(s2[window.step.values >= up] > 2.0) < 0.1


def test_figure5_second_eigenvalue_at_most_grazes_the_edge(window):
    """What holds in the stored run: λ₂ sits below λ₁ and, after the first crossing, mostly below 2."""
    s1 = window.sharpness.sel(mode=0).values
    s2 = window.sharpness.sel(mode=1).values
    up, _ = first_crossings(s1, window.step.values)
    after = window.step.values >= up
    assert np.median(s2[after]) < 2.0
    assert s2.max() < 2.05
    assert np.median(1 - s2 / s1) > 0.02


def test_figure5_two_step_removes_period_two(window):
    s1 = window.sharpness.sel(mode=0).values
    up, _ = first_crossings(s1, window.step.values)
    z1 = window.z1.sel(step=slice(up, None))
    flips = np.mean(np.sign(z1.values[1:]) != np.sign(z1.values[:-1]))
    ev = even(z1).values
    flips_even = np.mean(np.sign(ev[1:]) != np.sign(ev[:-1]))
    assert flips > 0.8                        # one-step: z₁ alternates sign (period 2)
    assert flips_even < 0.1                   # every other step: smooth
    d2 = two_step(z1)                          # z_{t+2} − z_t is small compared with z_{t+1} − z_t
    d1 = np.abs(np.diff(z1.values))
    assert np.nanmedian(np.abs(d2.values)) < 0.1 * np.median(d1)


def _growth_phase_end(window):
    """Last step before |z₁| first exceeds 1 (the first catapult)."""
    z = np.abs(window.z1.values)
    return int(window.step.values[np.argmax(z > 1.0) - 1])


def test_figure6_middle_two_step_increment_coefficient(window):
    # Δ₂z₁ = 2 y z₁ to lowest order (Eq. 18; exactly (2y + y²) z₁ for a fixed eigenbasis)
    stop = _growth_phase_end(window)
    fit = fit_increments(window[["z1", "sharpness"]], stop=stop, residual="z1")
    c1, r2 = float(fit.c1), float(fit.r2_z)
    assert abs(c1 - 2.0) < 0.5, c1
    assert r2 > 0.99, r2


def test_q1_spectrum_has_both_signs_and_exceeds_random_projection(proj, traj):
    """Figure 6 (left). v₁ is defined up to sign and Q₁ flips with it (−v₁ gives −Q₁); at t₀ = 3750
    z₁ is at rounding level (4e-8), so the orientation there is not tied to the tracked v₁. The
    checks use sign-invariant quantities: the two extreme magnitudes and the spectral width."""
    q1 = proj.q1_eigenvalue.values
    qr = proj.qrand_eigenvalue.values
    assert np.all(q1[:, 0] > 0) and np.all(q1[:, -1] < 0)          # both ends
    assert np.all(np.abs(q1[:, [0, -1]]) > 5 * np.abs(qr[:, [0, -1]]))
    ends = np.sort(np.abs(q1[:, [0, -1]]), axis=1)                 # (smaller, larger) magnitude
    rel = np.abs(ends / ends.mean(axis=0) - 1)
    assert rel.max() < 0.2, ends                                   # roughly constant over the window
    width = q1[:, 0] - q1[:, -1]
    assert np.ptp(width) / width.mean() < 0.2
    assert np.all(proj.q1_residual.values[:, [0, -1]] < 1e-6)      # converged Ritz values
    assert np.all(np.abs(proj.ntk_residual.values) < 1e-4)
    assert np.all(proj.u_orthogonality.values < 1e-4)
    assert np.all(proj.w_orthogonality.values < 1e-8)
    # where z₁ is well above rounding, v₁ follows the tracked one: z̃₁ = z₁
    t = proj.t0.values[np.abs(proj.z_tilde.sel(mode=0).values) > 1e-5]
    assert t.size >= 4
    np.testing.assert_allclose(proj.z_tilde.sel(mode=0, t0=t).values, traj.z1.sel(step=t).values, rtol=0.03)


def test_taylor_model_starts_on_the_trajectory(traj, proj):
    for t0 in proj.t0.values:
        t0 = int(t0)
        real = traj.sharpness.sel(mode=0, step=t0).item()
        for k in (1, 16):
            sim = simulate_on_network_steps(proj, t0=t0, modes=k, steps=20)
            eosdyn.check_dataset(sim)
            np.testing.assert_allclose(sim.sharpness.values[0], real, rtol=1e-4)
            np.testing.assert_allclose(sim.z_tilde.sel(mode=0).values[0], traj.z1.sel(step=t0).item(),
                                       rtol=0.05, atol=1e-3 * max(1.0, abs(traj.z1.sel(step=t0).item())))
            # short horizon, while |z₁| is small: the quadratic model stays on the real sharpness
            # (during a catapult, |z₁| ~ 1, it does not: see the xfail below)
            if abs(traj.z1.sel(step=t0).item()) < 0.1:
                # (the k-mode model has no progressive sharpening: the residual that drives it lies
                # outside the top modes, so the error grows ~6e-4 per step in the sharpening phase)
                seg = traj.sharpness.sel(mode=0, step=sim.step.values[:11]).values
                assert np.max(np.abs(sim.sharpness.values[:11] - seg)) < 0.01


def taylor_first_returns(traj, proj, ks=(1, 2, 4, 8, 16)):
    """{(t0, k): (real first return below 2 after t0, model's, |Δ sharpness| at the real return)}."""
    out = {}
    we = traj.attrs["window_end"]
    for t0 in proj.t0.values:
        t0 = int(t0)
        real = traj.sharpness.sel(mode=0, step=slice(t0, we))
        _, down = first_crossings(real.values, real.step.values)
        if down is None:
            continue
        for k in ks:
            sim = simulate_on_network_steps(proj, t0=t0, modes=k, steps=we - t0)
            _, md = first_crossings(sim.sharpness.values, sim.step.values)
            out[(t0, k)] = (down, md, float(abs(sim.sharpness.sel(step=down) - real.sel(step=down))))
    return out


def _first_return_errors(res):
    return {key: (abs(md - down) / (down - key[0]) if md is not None else np.inf) for key, (down, md, _) in res.items()}


@pytest.mark.xfail(strict=True, reason="the k-mode model keeps only parameter directions u_i = Jᵀv_i/√λ_i, which hold "
                                       "3 % of ‖Q₁u₁‖²: the curvature feedback that ends the catapult is missing "
                                       "(with feedback directions it returns: next test)")
def test_taylor_k_modes_alone_capture_first_return_below_the_edge(traj, proj):
    res = taylor_first_returns(traj, proj, ks=(16,))
    errs = _first_return_errors(res)
    assert errs and min(errs.values()) < 0.2, res


def test_taylor_model_with_feedback_directions_captures_first_return(traj, proj):
    """Appendix D.3: the quadratic model around t₀ returns below 2 when the network does.

    Stored run: λ₁ first returns below 2 at step 4222 (catapult, |z₁| up to ~18). From t₀ = 4200
    the model with all 4 feedback directions returns at 4222-4224 for every k (the step error grows
    as t₀ moves back: ≈ 6 steps from 4180, 18 from 4150, 70 from 4100, because the model has no
    progressive sharpening); without them k ≥ 4 never returns."""
    m = proj.sizes["feedback"]
    assert (proj.q1u1_outside_fraction > 0.9).all()   # most of ‖Q₁u₁‖² is outside span(u)
    we = traj.attrs["window_end"]
    real = traj.sharpness.sel(mode=0, step=slice(4000, we))
    _, down = first_crossings(real.values, real.step.values)
    errors = {}
    for t0 in (4150, 4180, 4200):
        for k in (1, 4, 16):
            sim = simulate_on_network_steps(proj, t0=t0, modes=k, steps=we - t0, feedback=m)
            _, md = first_crossings(sim.sharpness.values, sim.step.values)
            assert md is not None, (t0, k)
            errors[(t0, k)] = (md - down) / (down - t0)
            # the catapult: |z₁| grows by an order of magnitude before the return (real peak ≈ 18)
            assert np.abs(sim.z_tilde.sel(mode=0, step=slice(t0, md)).values).max() > 5
            # and after it the model settles below the edge (no later oscillations: Appendix D.3)
            assert sim.sharpness.values[-1] < 2.0
        without = simulate_on_network_steps(proj, t0=t0, modes=16, steps=we - t0)
        assert first_crossings(without.sharpness.values, without.step.values)[1] is None
    assert max(abs(e) for (t0, _), e in errors.items() if t0 == 4200) <= 0.1, errors
    assert max(abs(e) for (t0, _), e in errors.items() if t0 == 4180) <= 0.2, errors
    assert max(abs(e) for e in errors.values()) <= 0.3, errors
    # sharpness at the real return: the model from t0 = 4200 is within 0.02 of the network
    sim = simulate_on_network_steps(proj, t0=4200, modes=16, steps=we - 4200, feedback=m)
    assert abs(float(sim.sharpness.sel(step=down) - real.sel(step=down))) < 0.02
