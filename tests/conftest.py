import os

import numpy as np
import pytest

# Keep hypothesis fast and deterministic in CI.
try:
    from hypothesis import HealthCheck, settings

    settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # pragma: no cover
    pass


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def pytest_terminal_summary(terminalreporter):
    """Print the fuzz suite's outcome counts (tests/fuzzutil.py) by area and category."""
    try:
        import fuzzutil
    except ImportError:  # pragma: no cover
        return
    if not fuzzutil.COUNTS:
        return
    terminalreporter.section("fuzz outcomes")
    total = sum(fuzzutil.COUNTS.values())
    for (area, category), n in sorted(fuzzutil.COUNTS.items()):
        terminalreporter.write_line(f"{area:>16s}  {category:<36s} {n:6d}")
    terminalreporter.write_line(f"{'all':>16s}  {'generated inputs checked':<36s} {total:6d}")
