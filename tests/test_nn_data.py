"""CIFAR loader, matrix-free eigensolvers and the torch-free import of eosdyn (no torch needed)."""

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eosdyn.nn.data import load_cifar
from eosdyn.nn.linalg import lanczos, lobpcg

SUBSET = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cifar10_subset.npz"


def _fake_npz(path, per_batch=4, seed=0, labels=None):
    rng = np.random.default_rng(seed)
    m = 5 * per_batch
    idx = np.concatenate([b * 10000 + np.arange(per_batch) for b in range(5)]).astype(np.int32)
    x = rng.integers(0, 256, (m, 3072), dtype=np.uint8)
    y = rng.integers(0, 10, m).astype(np.uint8) if labels is None else labels
    np.savez(path, train_x=x, train_y=y, train_index=idx)
    return x, y


def _fake_dir(path, x, y, per_batch):
    path.mkdir()
    for b in range(5):
        sl = slice(b * per_batch, (b + 1) * per_batch)
        with open(path / f"data_batch_{b + 1}", "wb") as fh:
            pickle.dump({b"data": x[sl], b"labels": [int(v) for v in y[sl]]}, fh)


def test_npz_and_directory_give_identical_standardised_data(tmp_path):
    x, y = _fake_npz(tmp_path / "c.npz", per_batch=4)
    _fake_dir(tmp_path / "cifar-10-batches-py", x, y, 4)
    a = load_cifar(tmp_path / "c.npz", n=15)
    b = load_cifar(tmp_path / "cifar-10-batches-py", n=15)
    for name in ("x", "labels", "targets", "index", "mean", "std"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    # first 3 of each batch, pixels/255 standardised with the statistics of these 15 images
    rows = np.concatenate([np.arange(3) + 4 * bb for bb in range(5)])
    xf = x[rows] / 255.0
    np.testing.assert_allclose(a.x, (xf - xf.mean(0)) / xf.std(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(a.index, np.concatenate([bb * 10000 + np.arange(3) for bb in range(5)]))
    np.testing.assert_array_equal(a.targets.argmax(1), y[rows])
    assert a.targets.sum() == 15 and set(np.unique(a.targets)) == {0.0, 1.0}
    assert "15 images" in a.normalisation


def test_corrupt_or_mislabelled_inputs_name_the_file(tmp_path):
    bad = tmp_path / "garbage.npz"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="garbage.npz"):
        load_cifar(bad, n=5)
    _fake_npz(tmp_path / "labels.npz", labels=np.full(20, 12, np.uint8))
    with pytest.raises(ValueError, match="labels.npz.*labels must lie in 0..9"):
        load_cifar(tmp_path / "labels.npz", n=5)
    _fake_npz(tmp_path / "small.npz", per_batch=2)
    with pytest.raises(ValueError, match="small.npz.*fewer than"):
        load_cifar(tmp_path / "small.npz", n=15)
    x, y = _fake_npz(tmp_path / "ok.npz")
    d = tmp_path / "cifar-10-batches-py"
    _fake_dir(d, x, y, 4)
    (d / "data_batch_3").write_bytes(b"\x80\x04garbage")
    with pytest.raises(ValueError, match="data_batch_3"):
        load_cifar(d, n=5)
    (d / "data_batch_3").unlink()
    with pytest.raises(ValueError, match="data_batch_3.*missing"):
        load_cifar(d, n=5)
    with pytest.raises(ValueError, match="n must be"):
        load_cifar(tmp_path / "ok.npz", n=7)
    with pytest.raises(ValueError, match="does not exist"):
        load_cifar(tmp_path / "nope.npz")


@pytest.mark.skipif(not SUBSET.exists(), reason="cifar10_subset.npz not available")
def test_real_subset():
    d = load_cifar(SUBSET, n=5000)
    assert d.x.shape == (5000, 3072) and d.x.dtype == np.float32
    np.testing.assert_allclose(d.x.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(d.x.std(0), 1, atol=1e-4)
    assert np.array_equal(np.bincount(d.index // 10000), [1000] * 5)
    assert d.sha256 == "00d2922789118ea252ee95d6d7d5cdb594aee8bad2f520a763a2bb03a04eb9d5"


def _sym(n, rng, spectrum):
    Qm, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Qm * spectrum) @ Qm.T


def test_lobpcg_against_eigh_and_warm_start():
    rng = np.random.default_rng(0)
    n = 300
    spec = np.concatenate([[50.0, 40.0, 39.0], rng.uniform(0, 20, n - 3)])
    A = _sym(n, rng, spec)
    ev = np.linalg.eigvalsh(A)[::-1]
    cold = lobpcg(lambda V: A @ V, n, k=2, block=3, rng=rng, tol=1e-10)
    assert cold.converged
    np.testing.assert_allclose(cold.eigenvalues, ev[:2], rtol=1e-12)
    # a slightly perturbed operator, warm-started from the previous block: few matvecs
    E = _sym(n, rng, rng.standard_normal(n)) * 1e-3
    B = A + E
    evb = np.linalg.eigvalsh(B)[::-1]
    warm = lobpcg(lambda V: B @ V, n, k=2, block=3, X0=cold.block_vectors, rng=rng, tol=1e-8)
    cold_b = lobpcg(lambda V: B @ V, n, k=2, block=3, rng=rng, tol=1e-8)
    np.testing.assert_allclose(warm.eigenvalues, evb[:2], rtol=1e-12)
    assert warm.matvecs <= 0.6 * cold_b.matvecs, (warm.matvecs, cold_b.matvecs)
    with pytest.raises(ValueError, match="rng"):
        lobpcg(lambda V: A @ V, n, k=2)
    with pytest.raises(ValueError, match="block"):
        lobpcg(lambda V: A @ V, n, k=3, block=2, rng=rng)


def test_lanczos_both_ends():
    rng = np.random.default_rng(1)
    n = 400
    spec = np.concatenate([[9.0, 7.0, -12.0, -8.0], rng.uniform(-3, 3, n - 4)])
    A = _sym(n, rng, spec)
    r = lanczos(lambda V: A @ V, n, m=80, rng=rng, return_vectors=1)
    np.testing.assert_allclose(r.eigenvalues[:2], [9.0, 7.0], rtol=1e-10)
    np.testing.assert_allclose(r.eigenvalues[-2:], [-8.0, -12.0], rtol=1e-10)
    v = r.vectors[:, 0]
    np.testing.assert_allclose(A @ v, 9.0 * v, atol=1e-8)


def test_eosdyn_works_without_torch(tmp_path):
    code = """
import sys
sys.modules['torch'] = None  # any 'import torch' now raises ImportError
import numpy as np, xarray as xr, argparse
import eosdyn, eosdyn.nn, eosdyn.nn.data, eosdyn.nn.linalg, eosdyn.nn.cli
from eosdyn.taylor import simulate
proj = xr.Dataset({"ntk_eigenvalue": (("t0", "mode"), [[2.1e4, 1e4]]),
                   "z_tilde": (("t0", "mode"), [[0.1, -0.2]]),
                   "Q_tilde": (("t0", "mode", "mode_j", "mode_l"), np.full((1, 2, 2, 2), 5.0))},
                  coords={"t0": [3], "eta": 0.01, "n_examples": 100})
ds = simulate(proj, steps=5)
assert ds.z_tilde.dims == ('step', 'mode')
eosdyn.check_dataset(ds)
p = argparse.ArgumentParser(); sub = p.add_subparsers(dest="command"); eosdyn.nn.cli.add_parser(sub)
args = p.parse_args(["nn", "build", "--cifar", "x.npz"])
assert eosdyn.nn.cli.run(args) == 1
try:
    eosdyn.nn.network
except ImportError:
    print("OK")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("OK")
    assert "needs torch" in out.stderr
