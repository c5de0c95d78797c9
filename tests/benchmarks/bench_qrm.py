"""QRM kernel benchmarks (pytest-benchmark). Run explicitly:

    .venv/bin/python -m pytest tests/benchmarks/bench_qrm.py -m benchmark --benchmark-enable -s

Figures printed as ``BENCH ...`` lines: trajectory-steps/s at D=60, P=120 with 400
trajectories sharing Q (float64/float32, with/without λ_max every step), the GEMM-only
ceiling, the cold λ_max kernel per member (as for final values), and a sub-sweep of the paper's Figure 4 grid extrapolated to 100 seeds.
All with one BLAS thread per chunk (the sweep's default).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import eosdyn
from eosdyn.kernels.lambda_max import lambda_max
from eosdyn.kernels.qrm import q_operator, run_gd
from eosdyn.models import qrm

pytestmark = pytest.mark.benchmark

D, P, B = 60, 120, 400
FLOP_PER_TRAJ_STEP = 2 * D * P * P  # the GEMM; the fused pass adds ~6 D P


@pytest.fixture(autouse=True)
def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(os.environ.get("EOSDYN_BENCH_BLAS_THREADS", "1"))):
        yield


def _batch(dtype):
    # sigma_z = 0.3 (EOS band) and small sigma_J: every member keeps running for the measured steps
    sz = np.full(B, 0.3)
    sj = np.sqrt(np.linspace(0.01, 0.1, B))
    Q, J0, z0 = qrm.initial_state(0, D=D, P=P, sigma_z=sz, sigma_J=sj, dtype=dtype)
    return Q, J0, z0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gemm_ceiling(benchmark, dtype):
    Q, _, _ = _batch(dtype)
    A = q_operator(Q)
    G = np.random.default_rng(0).standard_normal((B, P)).astype(dtype)
    G @ A
    benchmark.pedantic(lambda: G @ A, rounds=20, iterations=1)
    t = benchmark.stats.stats.median
    print(f"\nBENCH gemm {dtype}: {FLOP_PER_TRAJ_STEP * B / t / 1e9:.1f} GFLOP/s, "
          f"ceiling {B / t:,.0f} traj-steps/s")


@pytest.mark.parametrize("machine", [False, True], ids=["one-core", "machine"])
@pytest.mark.parametrize("record", [0, 1], ids=["final-only", "lambda-every-step"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_kernel_steady_state(benchmark, dtype, record, machine):
    """One batch on one core, or (``machine``) one batch per worker at once on dask's threaded
    scheduler — two seeds on this 2-core machine, as a sweep runs."""
    import dask

    Q, J0, z0 = _batch(dtype)
    steps = 40
    run_gd(Q, J0[:2], z0[:2], 1.0, 2)  # compile
    workers = eosdyn.sweep.n_workers() if machine else 1

    def go():
        tasks = [dask.delayed(run_gd)(Q, J0, z0, 1.0, steps, record) for _ in range(workers)]
        return dask.compute(*tasks, scheduler="threads" if machine else "synchronous", num_workers=workers)

    res = benchmark.pedantic(go, rounds=3, iterations=1)
    assert all((r.status == eosdyn.conventions.STATUS_VALUES["max_steps"]).all() for r in res)
    t = benchmark.stats.stats.median
    print(f"\nBENCH kernel {dtype} record_every={record}, {workers} worker(s): "
          f"{workers * B * steps / t:,.0f} traj-steps/s{' (machine)' if machine else ''}")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_lambda_max_cold(benchmark, dtype):
    """λ_max(J Jᵀ) of 400 members without warm start (final values; recording warm-starts)."""
    _, J0, _ = _batch(dtype)
    lambda_max(J0[:2])  # compile
    benchmark.pedantic(lambda: lambda_max(J0), rounds=5, iterations=1)
    t = benchmark.stats.stats.median
    print(f"\nBENCH lambda_max {dtype} (cold): {t / B * 1e6:.1f} us per member")


def test_figure4_subsweep(benchmark):
    """20×20 grid σ̃_z ∈ logspace(−1, 1), σ̃_J² ∈ logspace(−2, 1), at most 10,000 steps, 2 seeds."""
    n_seeds = int(os.environ.get("EOSDYN_BENCH_SEEDS", "2"))
    kw = dict(D=D, P=P, sigma_z=np.logspace(-1, 1, 20), sigma_J2=np.logspace(-2, 1, 20), steps=10000)
    eosdyn.qrm.sweep(**{**kw, "steps": 2}, seeds=1)  # compile
    t0 = time.perf_counter()
    ds = benchmark.pedantic(lambda: eosdyn.qrm.sweep(**kw, seeds=n_seeds), rounds=1, iterations=1)
    wall = time.perf_counter() - t0
    steps = ds.steps_taken.values
    st = eosdyn.conventions.decode_status(ds.status).values
    frac = {k: float((st == k).mean()) for k in ("converged", "diverged", "max_steps")}
    workers = eosdyn.sweep.n_workers()
    print(f"\nBENCH fig4 sub-sweep: {n_seeds} seeds in {wall:.1f} s ({workers} workers), "
          f"mean steps/trajectory {steps.mean():.0f}, {steps.sum() / wall:,.0f} traj-steps/s, "
          f"fates {frac}, extrapolated 100 seeds: {wall * 100 / n_seeds / 60:.1f} min")
