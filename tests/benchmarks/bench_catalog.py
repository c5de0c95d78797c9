"""Catalog and main-job benchmarks (pytest-benchmark). Run explicitly:

    .venv/bin/python -m pytest tests/benchmarks/bench_catalog.py -m benchmark --benchmark-enable -s

* ``catalog.open`` of a cached entry (sha256 check of the cache file + NetCDF read), against
  computing it afresh (``cache=False``);
* ``eosdyn reproduce --quick`` end to end in a subprocess, on an empty cache (first run, numba
  caches as they are) and again (second run, everything cached). Printed as ``BENCH ...`` lines.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from eosdyn import catalog

pytestmark = pytest.mark.benchmark


def test_open_cached_vs_compute(benchmark, tmp_path, monkeypatch):
    monkeypatch.setenv("EOSDYN_CACHE", str(tmp_path))
    name, variant = "figure9_final_T", "quick"
    t0 = time.perf_counter()
    catalog.open(name, variant=variant, cache=False)
    compute = time.perf_counter() - t0
    catalog.open(name, variant=variant)  # fill the cache
    benchmark(catalog.open, name, variant=variant)
    size = catalog.cache_path(name, variant=variant).stat().st_size
    print(f"\nBENCH catalog.open({name!r}, quick): compute {compute:.3f} s, cached "
          f"{benchmark.stats.stats.median * 1e3:.1f} ms (file {size / 1e3:.0f} kB)")


def test_reproduce_quick_first_and_second_run(benchmark, tmp_path):
    env = dict(os.environ, EOSDYN_CACHE=str(tmp_path / "cache"))
    env.pop("EOSDYN_CATALOG_PATH", None)
    cmd = [sys.executable, "-m", "eosdyn.cli", "--quiet", "reproduce", "--quick", "-o", str(tmp_path / "out")]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, timeout=900)
    first = time.perf_counter() - t0
    benchmark.pedantic(subprocess.run, args=(cmd,), kwargs=dict(env=env, check=True, timeout=900),
                       rounds=3, iterations=1)
    second = benchmark.stats.stats.median
    print(f"\nBENCH eosdyn reproduce --quick: first run {first:.1f} s, second run {second:.2f} s "
          f"({100 * second / first:.1f}% of the first)")
