"""Self-stabilization forces recorded inside QRM sweeps (``forces=True``; issue 15 item 2), checked
against finite differences of S = λ_max(H) (eigvalsh only, no third derivative), against the θ-space
producer ``eosdyn.qrm.self_stabilization``, and for leaving the trajectories untouched."""

from __future__ import annotations

import numpy as np
import pytest

import eosdyn
from eosdyn.kernels.qrm import FORCE_VARIABLES, run_gd
from eosdyn.models.qrm import initial_state

KW = dict(D=8, P=16, sigma_z=[0.25, 0.3], sigma_J2=0.2, seeds=2, steps=60)


def _S(Q, J, z, delta):
    """λ_max of the Hessian at θ + δ, from the exact model: z + Jδ + ½Q(δ,δ), J + Q(δ,·)."""
    Qd = np.einsum("ajk,k->aj", Q, delta)
    z2 = z + J @ delta + 0.5 * Qd @ delta
    J2 = J + Qd
    H = J2.T @ J2 + np.tensordot(z2, Q, axes=1)
    return np.linalg.eigvalsh(0.5 * (H + H.T))[-1]


def test_forces_against_finite_differences_of_the_top_eigenvalue():
    Q, J0, z0 = initial_state(3, D=6, P=10, sigma_z=np.array([0.3, 0.4]), sigma_J=np.array([0.5, 0.5]))
    res = run_gd(Q, J0, z0, 1.0, 30, 0, stop="never", record_forces=True, return_J=True)
    for b in range(2):
        J, z = res.final_J[b], res.final_z[b]
        P = J.shape[1]
        h = 1e-5
        grad_S = np.array([(_S(Q, J, z, h * e) - _S(Q, J, z, -h * e)) / (2 * h) for e in np.eye(P)])
        g = J.T @ z
        alpha, beta = -g @ grad_S, grad_S @ grad_S
        np.testing.assert_allclose(res.final_variants["sharpening_force"][b], alpha, rtol=1e-6)
        np.testing.assert_allclose(res.final_variants["stabilization_strength"][b], beta, rtol=1e-6)
        np.testing.assert_allclose(res.final_variants["predicted_oscillation"][b], 2 * alpha / beta, rtol=1e-5)


def test_trajectories_untouched_and_forces_match_the_theta_space_producer():
    base = eosdyn.qrm.sweep(**KW, record_every=5, stop="never")
    ds = eosdyn.qrm.sweep(**KW, record_every=5, stop="never", forces=True)
    eosdyn.check_dataset(ds)
    for v in ("sharpness", "loss", "final_sharpness", "final_loss", "status", "steps_taken"):
        np.testing.assert_array_equal(ds[v].values, base[v].values)
    ref = eosdyn.qrm.self_stabilization(**KW, record_every=5, stop="never")   # GD in θ, forces per step
    ok = ref.status != eosdyn.conventions.STATUS_VALUES["diverged"]
    for v in FORCE_VARIABLES:
        a, b = ds[v].where(ok).isel(step=slice(0, 5)), ref[v].where(ok).isel(step=slice(0, 5))
        assert int(a.notnull().sum()) >= 15
        np.testing.assert_allclose(a.values, b.values, rtol=1e-6, atol=1e-12 * float(abs(b).max()))


def test_forces_at_the_stops_and_bitwise_across_chunkings():
    a = eosdyn.qrm.sweep(**KW, forces=True)                       # record_every=None: step 0 and the end
    b = eosdyn.qrm.sweep(**KW, forces=True, chunk_size=1, scheduler="threads")
    assert a.sharpening_force.sizes["step"] == 2
    for v in FORCE_VARIABLES:
        np.testing.assert_array_equal(a[v].values, b[v].values)
        np.testing.assert_array_equal(a[f"final_{v}"].values, b[f"final_{v}"].values)
    again = eosdyn.conventions.regenerate(a)
    np.testing.assert_array_equal(again.final_predicted_oscillation.values, a.final_predicted_oscillation.values)


def test_forces_option_checked():
    with pytest.raises(TypeError, match="forces"):
        eosdyn.qrm.sweep(**KW, forces="yes")
    with pytest.raises(TypeError, match="record_forces"):
        Q, J0, z0 = initial_state(0, D=2, P=3, sigma_z=np.array([0.3]), sigma_J=np.array([0.5]))
        run_gd(Q, J0, z0, 1.0, 3, record_forces=1)
