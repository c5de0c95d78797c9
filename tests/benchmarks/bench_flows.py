"""Benchmarks of the exact derivatives of eosdyn.kernels.derivatives at the Figure-4 size (D=60, P=120).

Run:  .venv/bin/python -m pytest tests/benchmarks/bench_flows.py -m benchmark --benchmark-enable \
          -p no:randomly --benchmark-columns=min,median,max --benchmark-sort=name

Reference (docs/flows.md): the self-stabilization quantities of one recorded member and step
(``forces``) against one GD step in θ (``gd_step_theta``) and one step of the batched sweep kernel
(``sweep_50_steps_batch20``: 50 steps of 20 members per call; divide by 1000 per member-step).
"""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import eosdyn
from eosdyn.kernels import derivatives as d
from eosdyn.models import central

pytestmark = pytest.mark.benchmark

D, P = 60, 120


@pytest.fixture(scope="module")
def state():
    Q, J0, z0 = eosdyn.qrm.initial_state(0, D=D, P=P, sigma_z=[0.35], sigma_J=[np.sqrt(0.1)])
    theta = np.zeros(P)
    for _ in range(200):
        z, J = d._state(Q, J0[0], z0[0], theta)
        theta = theta - J.T @ z
    z, J = d._state(Q, J0[0], z0[0], theta)
    return Q, J0[0], z0[0], theta, J, z


def test_gd_step_theta(benchmark, state):
    Q, J0, z0, theta, _, _ = state

    def step():
        z, J = d._state(Q, J0, z0, theta)
        return theta - J.T @ z

    with threadpool_limits(1):
        benchmark(step)


def test_forces(benchmark, state):
    Q, _, _, _, J, z = state
    with threadpool_limits(1):
        benchmark(central._force_terms, Q, J, z, 1.0)


def test_central_velocity(benchmark, state):
    Q, _, _, _, J, z = state
    H = d._hessian(Q, J, z)
    eta = 2.0 / np.linalg.eigvalsh(H)[-1]   # on the edge
    with threadpool_limits(1):
        benchmark(d._central, Q, J, z, eta, d.EDGE_BAND, d.EDGE_RATE)


def test_sweep_50_steps_batch20(benchmark):
    from eosdyn.kernels.qrm import run_gd

    Q, J0, z0 = eosdyn.qrm.initial_state(0, D=D, P=P, sigma_z=np.linspace(0.1, 0.5, 20),
                                         sigma_J=np.full(20, np.sqrt(0.1)))
    with threadpool_limits(1):
        benchmark(lambda: run_gd(Q, J0, z0, 1.0, 50, 0))


@pytest.mark.parametrize("forces", [False, True], ids=["plain", "forces_every_100"])
def test_sweep_with_forces(benchmark, forces):
    """A sweep of 40 members × 1000 steps at D=60, P=120 with the forces recorded every 100 steps
    (11 records) against none: the overhead of ``forces=True`` (issue 15)."""
    kw = dict(D=D, P=P, sigma_z=np.linspace(0.2, 0.4, 20), sigma_J2=0.1, seeds=2, steps=1000, record_every=100,
              stop="never", forces=forces)
    with threadpool_limits(limits=1):
        eosdyn.qrm.sweep(**{**kw, "steps": 2})   # compile
        benchmark.pedantic(lambda: eosdyn.qrm.sweep(**kw), rounds=3, iterations=1)
