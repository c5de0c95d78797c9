"""The shared chunked/resumable dask sweep helper (eosdyn.sweep)."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import xarray as xr

from eosdyn import sweep


def _draws(seeds, *, n=3, fail_on=None, log=None):
    """A model-like chunk function: per seed value, draws from its own SeedSequence."""
    if log is not None:
        with open(log, "a") as fh:
            fh.write(json.dumps([int(s) for s in seeds]) + "\n")
    if fail_on is not None and fail_on in set(int(s) for s in seeds):
        raise RuntimeError("simulated interruption")
    x = np.stack([np.random.default_rng(np.random.SeedSequence(int(s))).standard_normal(n) for s in seeds])
    return xr.Dataset({"x": (("seed", "k"), x), "ok": ("seed", x[:, 0] > 0)},
                      coords={"seed": np.asarray(seeds, np.int64), "k": np.arange(n)})


def _calls(log):
    try:
        with open(log) as fh:
            return [json.loads(line) for line in fh]
    except FileNotFoundError:
        return []


def test_normalize_seeds():
    assert sweep.normalize_seeds(3).tolist() == [0, 1, 2]
    assert sweep.normalize_seeds([7, 3]).tolist() == [7, 3]
    assert sweep.normalize_seeds(np.array([2.0, 5.0])).dtype == np.int64
    for bad in (0, -1, [], [1, 1], [-2], [1.5], "ab", True):
        with pytest.raises(ValueError, match="seeds"):
            sweep.normalize_seeds(bad)


@pytest.mark.parametrize("scheduler", ["threads", "synchronous"])
def test_chunking_and_scheduler_do_not_change_results(scheduler):
    ref = _draws(np.arange(7))
    for cs in (1, 3, 10):
        out = sweep.run(_draws, 7, chunk_size=cs, scheduler=scheduler)
        xr.testing.assert_identical(out, ref)
    sub = sweep.run(_draws, [5, 2], scheduler=scheduler)
    xr.testing.assert_identical(sub, ref.sel(seed=[5, 2]))


def test_bad_arguments():
    with pytest.raises(ValueError, match="chunk_size"):
        sweep.run(_draws, 3, chunk_size=0)
    with pytest.raises(ValueError, match="blas_threads"):
        sweep.run(_draws, 3, blas_threads=0)
    with pytest.raises(TypeError, match="seed"):
        sweep.run(lambda s: xr.Dataset({"x": ("i", [1.0])}), 2)


def test_resume_after_interruption(tmp_path):
    log = tmp_path / "calls.log"
    rdir = tmp_path / "resume"
    with pytest.raises(RuntimeError, match="interruption"):
        sweep.run(functools.partial(_draws, fail_on=4, log=log), 6, chunk_size=2, resume=rdir,
                  fingerprint="cfg-1", scheduler="synchronous")
    done = sorted(p.name for p in rdir.glob("chunk-*.nc"))
    finished = [c for c in _calls(log) if 4 not in c]  # chunks that ran before the failure
    assert len(done) == len(finished) and all(f"chunk-{c[0]}-{c[1]}-" in " ".join(done) for c in finished)
    n_before = len(_calls(log))
    out = sweep.run(functools.partial(_draws, log=log), 6, chunk_size=2, resume=rdir, fingerprint="cfg-1")
    new_calls = _calls(log)[n_before:]
    # only the unfinished chunks are recomputed
    assert sorted(new_calls) == sorted(c for c in ([0, 1], [2, 3], [4, 5]) if c not in finished)
    xr.testing.assert_identical(out, _draws(np.arange(6)))
    assert out.ok.dtype == bool
    # a third run recomputes nothing
    n_before = len(_calls(log))
    again = sweep.run(functools.partial(_draws, log=log), 6, chunk_size=2, resume=rdir, fingerprint="cfg-1")
    assert len(_calls(log)) == n_before
    xr.testing.assert_identical(again, out)
    with pytest.raises(ValueError, match="different sweep configuration"):
        sweep.run(_draws, 6, chunk_size=2, resume=rdir, fingerprint="cfg-2")


def test_distributed_client_is_used():
    distributed = pytest.importorskip("distributed")
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2,
                            dashboard_address=None) as client:
        assert sweep.active_client() is client
        assert sweep.n_workers() == 2
        out = sweep.run(_draws, 4, chunk_size=1)
    assert sweep.active_client() is None
    xr.testing.assert_identical(out, _draws(np.arange(4)))
