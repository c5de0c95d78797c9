"""Theory (one-datapoint models) benchmarks (pytest-benchmark). Run explicitly:

    .venv/bin/python -m pytest tests/benchmarks/bench_theory_toy.py -m benchmark --benchmark-enable

Times the two-step nullclines (root tracking + Newton on the map) and the EOS coordinate for
10⁴ points, the size of a plot.
"""

from __future__ import annotations

import numpy as np
import pytest

from eosdyn.theory import toy as th

pytestmark = pytest.mark.benchmark

Z = np.linspace(-2.0, 2.0, 10_000)


@pytest.fixture(scope="module", autouse=True)
def _warm():
    th.two_step_nullcline_z(Z[:10], eps=0.1)  # numba compilation / cache load


def test_two_step_nullcline_z_10k(benchmark):
    f = benchmark(th.two_step_nullcline_z, Z, eps=0.1)
    assert np.isfinite(f).sum() > 5000


def test_two_step_nullcline_T_10k(benchmark):
    f = benchmark(th.two_step_nullcline_T, Z, a=3.0, E=0.3)
    assert np.isfinite(f).sum() > 5000


def test_eos_coordinate_10k_random_order(benchmark):
    rng = np.random.default_rng(0)
    z = rng.uniform(-0.5, 0.5, 10_000)
    T = 2.0 + rng.uniform(-0.1, 0.1, 10_000)
    y = benchmark(th.eos_coordinate, z, T, eps=0.05)
    assert np.isfinite(y).all()


def test_eos_coordinate_grid_of_eps(benchmark):
    # 20 values of ε × 500 points: one branch tracking per (ε, Ẽ) pair
    eps = np.repeat(np.linspace(0.01, 0.2, 20), 500)
    z = np.tile(np.linspace(-0.5, 0.5, 500), 20)
    y = benchmark(th.eos_coordinate, z, 2.0 + 0 * z, eps=eps)
    assert np.isfinite(y).all()
