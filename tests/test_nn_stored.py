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
from eosdyn.models import taylor

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


def test_figure5_sharpness_rises_to_and_oscillates_around_the_edge(window):
    s1 = window.sharpness.sel(mode=0).values
    s2 = window.sharpness.sel(mode=1).values
    assert np.isfinite(s1).all() and np.isfinite(s2).all()
    assert s1[0] < 1.95                       # the window opens while still sharpening
    assert s1.max() > 2.0                     # reaches the edge ...
    crossings = np.count_nonzero(np.diff(np.sign(s1 - 2.0)) != 0)
    assert crossings >= 2                     # ... and oscillates around it
    up, _ = first_crossings(s1, window.step.values)
    after = window.step.values >= up
    assert abs(np.median(s1[after]) - 2.0) < 0.05
    assert np.all(s2 <= s1 + 1e-9)
    assert np.median(s2[after]) < 2.0         # λ₂ stays below the edge


def test_figure5_two_step_removes_period_two(window):
    s1 = window.sharpness.sel(mode=0).values
    up, _ = first_crossings(s1, window.step.values)
    z1 = window.z1.sel(step=slice(up, None))
    flips = np.mean(np.sign(z1.values[1:]) != np.sign(z1.values[:-1]))
    ev = even(z1).values
    flips_even = np.mean(np.sign(ev[1:]) != np.sign(ev[:-1]))
    assert flips > 0.8                        # one-step: z₁ alternates sign (period 2)
    assert flips_even < 0.2                   # every other step: smooth
    d2 = two_step(z1)                          # z_{t+2} − z_t is small compared with z_{t+1} − z_t
    d1 = np.abs(np.diff(z1.values))
    assert np.nanmedian(np.abs(d2.values)) < 0.5 * np.median(d1)


def test_figure6_middle_two_step_increment_coefficient(window):
    fit = fit_increments(window[["z1", "sharpness"]])
    c1, r2 = float(fit.c1), float(fit.r2_z)
    assert abs(c1 - 2.0) < 0.6, c1
    assert r2 > 0.5, r2


def test_q1_spectrum_has_both_signs_and_exceeds_random_projection(proj):
    q1 = proj.q1_eigenvalue.values
    assert np.all(q1[:, 0] > 0) and np.all(q1[:, -1] < 0)
    assert np.all(np.abs(proj.ntk_residual.sel(mode=0).values) < 1e-3)
    assert np.all(proj.u_orthogonality.values < 1e-3)


@pytest.fixture(scope="module")
def taylor_errors(traj, proj):
    """Step and sharpness error of the Taylor model's first return below 2, per t0 and k."""
    out = {}
    for t0 in proj.t0.values:
        real = traj.sharpness.sel(mode=0, step=slice(int(t0), traj.attrs["window_end"]))
        up, down = first_crossings(real.values, real.step.values)
        if up is None or down is None:
            continue
        for k in (1, 2, 4, 8, 16):
            sim = taylor.simulate(proj, t0=int(t0), modes=k, steps=int(down - t0) + 100)
            s = sim.sharpness.values
            mu, md = first_crossings(s, sim.step.values)
            out[(int(t0), k)] = (up, down, mu, md,
                                 float(abs(sim.sharpness.sel(step=down) - real.sel(step=down))) if md else np.nan)
    return out


def test_taylor_model_captures_first_return_below_the_edge(taylor_errors):
    assert taylor_errors, "no t0 before a first crossing and return in the stored window"
    best = {}
    for (t0, k), (up, down, mu, md, err) in taylor_errors.items():
        if k == 16 and md is not None:
            best[t0] = abs(md - down) / (down - t0)
    assert best, taylor_errors
    assert min(best.values()) < 0.15, taylor_errors
