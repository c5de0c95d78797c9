"""Optimizer benchmarks of the QRM kernel (pytest-benchmark, issue 14). Run explicitly:

    .venv/bin/python -m pytest tests/benchmarks/bench_optim.py -m benchmark --benchmark-enable -s

Figures printed as ``BENCH optim ...`` lines: trajectory-steps/s of :func:`eosdyn.kernels.qrm.run_gd`
for each optimizer (and minibatch SGD) at D=60, P=120 with 400 trajectories sharing Q, float64 and
float32, one BLAS thread, final values only, and the ratio to plain GD measured in the same test
(target: at least 0.9). The harness (batch, thread limit) is that of ``bench_qrm.py``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import eosdyn
from eosdyn.kernels.qrm import run_gd
from eosdyn.models import qrm

pytestmark = pytest.mark.benchmark

D, P, B = 60, 120, 400
STEPS = 20
ROUNDS = int(os.environ.get("EOSDYN_BENCH_ROUNDS", "5"))

#: (label, learning rate, options of run_gd): every member keeps running for the measured steps
CASES = [
    ("gd", 1.0, {}),
    ("momentum", 0.3, {"optimizer": "momentum", "momentum": 0.9}),
    ("nesterov", 0.3, {"optimizer": "nesterov", "momentum": 0.9}),
    ("rmsprop", 1e-3, {"optimizer": "rmsprop"}),
    ("adam", 1e-3, {"optimizer": "adam"}),
    ("sgd-b20", 0.3, {"batch_size": 20}),
    ("adam-b20", 1e-3, {"optimizer": "adam", "batch_size": 20}),
]


@pytest.fixture(autouse=True)
def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(os.environ.get("EOSDYN_BENCH_BLAS_THREADS", "1"))):
        yield


def _batch(dtype):
    # as bench_qrm.py: sigma_z = 0.3 (EOS band) and small sigma_J
    sz = np.full(B, 0.3)
    sj = np.sqrt(np.linspace(0.01, 0.1, B))
    return qrm.initial_state(0, D=D, P=P, sigma_z=sz, sigma_J=sj, dtype=dtype)


def _seconds(Q, J0, z0, eta, kw):
    import time

    t0 = time.perf_counter()
    res = run_gd(Q, J0, z0, eta, STEPS, tol=0.0, **kw)
    dt = time.perf_counter() - t0
    assert (res.status == eosdyn.conventions.STATUS_VALUES["max_steps"]).all()
    return dt


def _rates(Q, J0, z0, eta, kw):
    """traj-steps/s of GD and of the optimizer, runs interleaved (best of ROUNDS each): a shared
    machine's load hits both alike."""
    for e, k in ((1.0, {}), (eta, kw)):
        run_gd(Q, J0[:2], z0[:2], e, 2, **k)  # compile
    gd, opt = np.inf, np.inf
    for _ in range(ROUNDS):
        gd = min(gd, _seconds(Q, J0, z0, 1.0, {}))
        opt = min(opt, _seconds(Q, J0, z0, eta, kw))
    return B * STEPS / gd, B * STEPS / opt


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES[1:], ids=[c[0] for c in CASES[1:]])
def test_optimizer_vs_gd(benchmark, dtype, case):
    """traj-steps/s of one optimizer and of GD, interleaved (best of ROUNDS each)."""
    Q, J0, z0 = _batch(dtype)
    label, eta, kw = case
    gd, rate = benchmark.pedantic(lambda: _rates(Q, J0, z0, eta, kw), rounds=1, iterations=1)
    print(f"\nBENCH optim {label} {dtype}: {rate:,.0f} traj-steps/s, GD {gd:,.0f} traj-steps/s, "
          f"ratio {rate / gd:.3f}")
