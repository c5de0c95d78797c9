"""Benchmarks of the network's matrix-free products and the warm-started eigen-solve (torch).

Run: pytest tests/benchmarks/bench_nn.py -m benchmark --benchmark-enable
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from eosdyn.nn.linalg import lobpcg  # noqa: E402
from eosdyn.nn.network import NetworkOps, make_network, numpy_operator  # noqa: E402

pytestmark = [pytest.mark.benchmark, pytest.mark.nn]


@pytest.fixture(scope="module")
def ops():
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    n, d = 500, 3072
    x = torch.randn(n, d, generator=g)
    t = torch.nn.functional.one_hot(torch.randint(0, 10, (n,), generator=g), 10).float()
    return NetworkOps(make_network(seed=0), x, t)


def test_gd_step(benchmark, ops):
    th = ops.theta0()

    def step():
        p = th.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(ops.loss(p), p)
        return th - 0.01 * g

    benchmark(step)


def test_ntk_matvec_block2(benchmark, ops):
    th = ops.theta0()
    _, vf = ops.linearize(th)
    V = torch.randn(2, ops.n_outputs)
    benchmark(lambda: ops.ntk_matvec(th, V, vf))


@pytest.mark.parametrize("warm", [False, True])
def test_lobpcg_top2(benchmark, ops, warm):
    th = ops.theta0()
    _, vf = ops.linearize(th)
    op = numpy_operator(lambda V: ops.ntk_matvec(th, V, vf), torch.float32)
    rng = np.random.default_rng(0)
    X0 = lobpcg(op, ops.n_outputs, k=2, block=3, rng=rng, tol=1e-4).block_vectors if warm else None
    res = benchmark(lambda: lobpcg(op, ops.n_outputs, k=2, block=3, X0=X0, rng=rng, tol=1e-4))
    benchmark.extra_info["matvecs"] = res.matvecs
