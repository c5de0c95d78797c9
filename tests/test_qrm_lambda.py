"""Exact λ_max(J Jᵀ) kernel of eosdyn.kernels.lambda_max (certified Lanczos + exact fallback).

Reference: ``numpy.linalg.eigvalsh`` of the float64 Gram matrix. The certified path returns a
Ritz value θ ≤ λ_max accepted only when the Cholesky factorisation of θ(1 + δ) I − G succeeds
(δ = 1e-10), so the relative error is ≤ 1e-10 by construction; the exact fallback
(Householder + Sturm bisection) is accurate to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

from eosdyn.conventions import STATUS_VALUES
from eosdyn.kernels import lambda_max as kq
from eosdyn.kernels.lambda_max import lambda_max
from eosdyn.kernels.qrm import run_gd
from eosdyn.models import qrm

CERT = 2e-10  # δ = 1e-10 plus the reference's rounding, with margin


def ref(J):
    J = np.asarray(J, np.float64)
    G = J @ J.transpose(0, 2, 1) if J.shape[1] <= J.shape[2] else J.transpose(0, 2, 1) @ J
    return np.linalg.eigvalsh(G)[:, -1]


def rel_err(a, b):
    return np.abs(np.asarray(a, np.float64) / b - 1.0)


def batch_kernel(J, *, use_lanczos=True, delta=kq._DELTA, U=None, warm=None):
    J = np.ascontiguousarray(J)
    B, D, P = J.shape
    U = np.zeros((B, min(D, P))) if U is None else U
    warm = np.zeros(B, np.bool_) if warm is None else warm
    out = np.empty(B)
    stats = np.zeros(3, np.int64)
    kq._lambda_max_batch(J, np.arange(B), out, U, warm, use_lanczos, delta, stats)
    return out, stats


def with_singular_values(rng, B, D, P, top):
    """J = U diag(s) Vᵀ with the leading singular values ``top`` and the rest in [0.1, 0.9]."""
    n = min(D, P)
    out = np.empty((B, D, P))
    for b in range(B):
        Uq, _ = np.linalg.qr(rng.standard_normal((D, n)))
        Vq, _ = np.linalg.qr(rng.standard_normal((P, n)))
        s = np.sort(rng.uniform(0.1, 0.9, n))[::-1]
        s[: len(top)] = top
        out[b] = (Uq * s) @ Vq.T
    return out


@pytest.mark.parametrize("shape", [(40, 60, 120), (20, 120, 60), (10, 30, 30), (10, 7, 4),
                                   (8, 1, 5), (8, 5, 1), (4, 1, 1), (6, 2, 3)])
def test_random_batches_float64(shape):
    rng = np.random.default_rng(sum(shape))
    J = rng.standard_normal(shape) * rng.uniform(0.01, 100.0, (shape[0], 1, 1))
    lam = lambda_max(J)
    assert lam.dtype == np.float64 and lam.shape == (shape[0],)
    assert np.all(rel_err(lam, ref(J)) <= CERT)
    # the exact fallback alone: rounding-level accuracy
    exact, stats = batch_kernel(J, use_lanczos=False)
    assert stats[1] == shape[0]
    assert np.all(rel_err(exact, ref(J)) <= 1e-13)


@pytest.mark.parametrize("gap", [0.0, 1e-12, 1e-9, 1e-6, 1e-3])
def test_nearly_degenerate_top_eigenvalues(gap):
    """Top singular values 1, 1 − gap, 1 − 2 gap (clusters like those at the edge of stability)."""
    rng = np.random.default_rng(7)
    J = with_singular_values(rng, 12, 60, 120, [1.0, 1.0 - gap, 1.0 - 2 * gap])
    lam = lambda_max(J)
    assert np.all(rel_err(lam, 1.0) <= CERT)
    assert np.all(rel_err(lam, ref(J)) <= CERT)
    exact, _ = batch_kernel(J, use_lanczos=False)
    assert np.all(rel_err(exact, ref(J)) <= 1e-13)


def test_float32_computed_in_float64():
    rng = np.random.default_rng(3)
    J = rng.standard_normal((16, 20, 40)).astype(np.float32)
    lam = lambda_max(J)
    assert lam.dtype == np.float32
    # exact for the float32 input (only the final rounding to float32)
    assert np.all(rel_err(lam, ref(J.astype(np.float64))) <= 1e-7)
    Jd = with_singular_values(rng, 8, 30, 60, [1.0, 1.0 - 1e-7]).astype(np.float32)
    assert np.all(rel_err(lambda_max(Jd), ref(Jd)) <= 1e-7)


def test_non_finite_members_and_empty_batch():
    rng = np.random.default_rng(5)
    J = rng.standard_normal((5, 6, 9))
    J[1, 2, 3] = np.nan
    J[2, 0, 0] = np.nan  # NaN first in its member, followed by finite entries
    J[2, 0, 1:] = 0.0
    J[3, 0, 0] = np.inf
    J[4, :, :] = 1e200  # λ_max = 54e400 overflows: inf, not NaN
    lam = lambda_max(J)
    assert np.isnan(lam[[1, 2, 3]]).all()
    assert lam[4] == np.inf
    assert np.all(rel_err(lam[[0]], ref(J[[0]])) <= CERT)
    assert lambda_max(np.zeros((3, 4, 5)))[0] == 0.0
    for dt in (np.float64, np.float32):
        empty = lambda_max(np.zeros((0, 6, 9), dt))
        assert empty.shape == (0,) and empty.dtype == dt


def test_bad_warm_start_and_failed_certificate_fall_back_to_exact():
    rng = np.random.default_rng(11)
    J = with_singular_values(rng, 6, 30, 50, [2.0, 1.99])
    # warm start exactly on the bottom eigenvector: Lanczos stops in an invariant subspace
    # far below λ_max; the certificate fails and the exact path answers
    G = J @ J.transpose(0, 2, 1)
    U = np.ascontiguousarray(np.linalg.eigh(G / G.diagonal(axis1=1, axis2=2).max(1)[:, None, None])[1][:, :, 0])
    out, stats = batch_kernel(J, U=U, warm=np.ones(6, np.bool_))
    assert stats[1] == 6
    assert np.all(rel_err(out, 4.0) <= 1e-13)
    # an impossible certificate (δ < 0): every member takes the exact path
    out, stats = batch_kernel(J, delta=-1e-6)
    assert stats.tolist()[:2] == [0, 6]
    assert np.all(rel_err(out, 4.0) <= 1e-13)
    # the certified path is the one normally taken
    out, stats = batch_kernel(J)
    assert stats[0] == 6 and np.all(rel_err(out, 4.0) <= CERT)


def test_run_gd_warm_started_recording_matches_cold_kernel():
    """At the edge of stability: recorded sharpness (warm-started Lanczos, every step) vs a cold
    λ_max of the same final state, and vs eigvalsh along a short trajectory."""
    D, P, B = 30, 60, 24
    sz = np.full(B, 0.3)
    sj = np.sqrt(np.linspace(0.2, 0.5, B))
    Q, J0, z0 = qrm.initial_state(2, D=D, P=P, sigma_z=sz, sigma_J=sj)
    res = run_gd(Q, J0, z0, 1.0, 300, 1, return_J=True, tol=1e-300, diverge_loss=1e300)
    running = res.status == STATUS_VALUES["max_steps"]
    assert running.sum() >= B // 2
    last = res.sharpness[running, -1]
    assert np.all(rel_err(last, lambda_max(res.final_J[running])) <= CERT)
    np.testing.assert_array_equal(res.final_sharpness[running], lambda_max(res.final_J[running]))
    # every step for a few members: recorded vs eigvalsh of J_t (J_t from the kernel itself)
    for t in (1, 2, 17, 150):
        r = run_gd(Q, J0[:4], z0[:4], 1.0, t, 0, return_J=True, tol=1e-300, diverge_loss=1e300)
        ok = np.isfinite(r.final_J[:, 0, 0])
        assert np.all(rel_err(res.sharpness[:4][ok, t], ref(r.final_J[ok])) <= CERT)


@pytest.mark.parametrize("scale", [1e150, 1e-150, 1e-160])
def test_huge_and_tiny_scales_exact(scale):
    """Issue 13: λ_max scales as s² with no overflow/underflow of the Gram matrix.

    Truth: λ_max(s J) = s² λ_max(J), with λ_max(J) from eigvalsh of an O(1) J; powers of
    two and decimal scales alike (the kernel scales by a power of two internally).
    """
    rng = np.random.default_rng(9)
    J = rng.standard_normal((3, 4, 7))
    want = ref(J) * scale * scale
    got = lambda_max(J * scale)
    assert np.all(np.isfinite(got)) and np.all(got > 0)
    tiny = want < 1e-300  # the true value itself is subnormal: a few bits only
    assert np.all(rel_err(got[~tiny], want[~tiny]) <= 1e-9)


def test_overflowing_lambda_max_is_inf_also_float32():
    J = np.ones((2, 2, 3))
    J[0] *= 1e154  # λ = 6e308: overflows float64
    J[1] *= 1e153  # λ = 6e306: representable
    lam = lambda_max(J)
    assert lam[0] == np.inf and abs(lam[1] / 6e306 - 1) < 1e-12
    lam32 = lambda_max((np.ones((1, 2, 3)) * 1e19).astype(np.float32))  # 6e38 > float32 max
    assert lam32.dtype == np.float32 and lam32[0] == np.inf
    # entries beyond 2^±1000 (per-entry scaling path): the square under/overflows cleanly
    assert lambda_max(np.full((1, 2, 3), 2.0**-1060))[0] == 0.0
    assert lambda_max(np.full((1, 2, 3), 2.0**1010))[0] == np.inf


def test_lambda_max_rejects_non_real_input():
    with pytest.raises(TypeError, match="J"):
        lambda_max(np.array([[["a"]]]))
    with pytest.raises(ValueError, match="J"):
        lambda_max(np.ones((2, 3)))
