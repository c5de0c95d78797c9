"""Benchmarks of eosdyn.analysis on a QRM-like float32 array (100 seeds × 20 × 20 × 2,000 steps).

Run:  .venv/bin/python -m pytest tests/benchmarks/bench_analysis.py -m benchmark --benchmark-enable \
          -p no:randomly --benchmark-columns=min,median,max --benchmark-sort=name

Target: two_step, classify and the statistics each within 2× of the time NumPy needs to read the
array once (``arr.sum()``, the ``read_once`` entry).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from eosdyn import analysis as A

pytestmark = pytest.mark.benchmark

SHAPE = (20, 20, 100, 2000)   # sigma_z, sigma_J, seed, step: 80 M float32 = 320 MB


@pytest.fixture(scope="module")
def big():
    rng = np.random.default_rng(np.random.SeedSequence(2023))
    t = np.arange(SHAPE[-1])
    arr = (1.9 + 0.05 * (-1.0) ** t).astype(np.float32) + 1e-3 * rng.standard_normal(SHAPE, dtype=np.float32)
    da = xr.DataArray(arr, dims=("sigma_z", "sigma_J", "seed", "step"),
                      coords={"sigma_z": np.linspace(0.1, 2, 20), "sigma_J": np.linspace(0.1, 2, 20),
                              "seed": np.arange(100), "step": np.arange(SHAPE[-1])}, name="sharpness")
    return arr, da


def test_read_once(benchmark, big):
    arr, _ = big
    benchmark(arr.sum)


def test_two_step(benchmark, big):
    _, da = big
    out = benchmark(A.two_step, da)
    assert out.sizes["step"] == SHAPE[-1] - 2


def test_numpy_two_step_reference(benchmark, big):
    arr, _ = big
    benchmark(lambda: arr[..., 2:] - arr[..., :-2])


def test_classify(benchmark, big):
    _, da = big
    out = benchmark(A.classify, da)
    assert (out == A.ATTRACTOR_VALUES["other"]).all()   # noise 1e-3 ≫ rtol: unsettled


def test_final_sharpness_stats(benchmark, big):
    _, da = big
    out = benchmark(A.final_sharpness_stats, da)
    assert out.median_sharpness.shape == (20, 20)


def test_limiting_two_cycle_tail200(benchmark, big):
    _, da = big
    out = benchmark.pedantic(A.limiting_two_cycle, args=(da,), kwargs={"tail": 200}, rounds=2, iterations=1)
    assert out.cycle_mean.shape == (20, 20, 100)
