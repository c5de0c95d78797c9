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


# --------------------------------------------------------------------------- safety issue, item 6
def _fresh(tmp_path, n=6, cs=2, fp="cfg-1", **kw):
    log = tmp_path / "calls.log"
    rdir = tmp_path / "resume"
    out = sweep.run(functools.partial(_draws, log=log), n, chunk_size=cs, resume=rdir, fingerprint=fp,
                    scheduler="synchronous", **kw)
    return out, rdir, log


def _other_draws(seeds):
    """Another configuration: different values for the same seeds."""
    out = _draws(seeds)
    return out.assign(x=out.x * 10.0)


def test_foreign_chunk_with_manifest_deleted_is_recomputed(tmp_path):
    rdir = tmp_path / "resume"
    sweep.run(_other_draws, 6, chunk_size=2, resume=rdir, fingerprint="cfg-OTHER", scheduler="synchronous")
    (rdir / sweep.MANIFEST).unlink()
    log = tmp_path / "calls.log"
    with pytest.warns(RuntimeWarning, match="another configuration"):
        out = sweep.run(functools.partial(_draws, log=log), 6, chunk_size=2, resume=rdir,
                        fingerprint="cfg-1", scheduler="synchronous")
    # independent truth: the draws computed directly, not through sweep
    xr.testing.assert_identical(out, _draws(np.arange(6)))
    assert sorted(_calls(log)) == [[0, 1], [2, 3], [4, 5]]
    # the rewritten chunks now belong to cfg-1: no warning, no recomputation
    import warnings as _w

    with _w.catch_warnings():
        _w.simplefilter("error")
        again = sweep.run(functools.partial(_draws, log=log), 6, chunk_size=2, resume=rdir, fingerprint="cfg-1")
    assert len(_calls(log)) == 3
    xr.testing.assert_identical(again, out)


def test_chunk_of_other_eosdyn_version_is_recomputed(tmp_path, monkeypatch):
    _, rdir, log = _fresh(tmp_path)
    monkeypatch.setattr(sweep, "__version__", "0.0.0-other")
    with pytest.warns(RuntimeWarning, match="version"):
        out = sweep.run(functools.partial(_draws, log=log), 6, chunk_size=2, resume=rdir, fingerprint="cfg-1")
    assert len(_calls(log)) == 6
    xr.testing.assert_identical(out, _draws(np.arange(6)))


@pytest.mark.parametrize("damage", ["truncate", "flip", "sidecar", "garbage"])
def test_corrupt_chunk_is_recomputed(tmp_path, damage):
    _, rdir, log = _fresh(tmp_path)
    victim = sorted(rdir.glob("chunk-2-3-*.nc"))[0]
    data = victim.read_bytes()
    if damage == "truncate":
        victim.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        victim.write_bytes(data[:-40] + bytes(b ^ 0xFF for b in data[-40:]))
    elif damage == "sidecar":
        (rdir / (victim.name + ".sha256")).unlink()
    else:
        victim.write_bytes(b"not a netcdf file")
        (rdir / (victim.name + ".sha256")).write_text("zz")
    n = len(_calls(log))
    with pytest.warns(RuntimeWarning, match="chunk-2-3-"):
        out = sweep.run(functools.partial(_draws, log=log), 6, chunk_size=2, resume=rdir, fingerprint="cfg-1")
    assert _calls(log)[n:] == [[2, 3]]  # only the damaged chunk
    xr.testing.assert_identical(out, _draws(np.arange(6)))


def test_stale_temporaries_removed_others_survive(tmp_path):
    _, rdir, log = _fresh(tmp_path)
    chunk = sorted(rdir.glob("chunk-*.nc"))[0].name
    stale = [rdir / f".{chunk}.abc123_x.tmp", rdir / f".{chunk}.sha256.q9z.tmp",
             rdir / ".chunk-8-9-2-0123456789abcdef.nc.k3j2.tmp", rdir / ".manifest.json.u7.tmp"]
    mine = [rdir / "notes.tmp", rdir / ".notes.txt.abc.tmp", rdir / f"{chunk}.tmp", rdir / "user.txt"]
    for p in stale + mine:
        p.write_bytes(b"x")
    sweep.run(functools.partial(_draws, log=log), 6, chunk_size=2, resume=rdir, fingerprint="cfg-1")
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in mine)


def test_sigkill_leaves_no_temporary_for_good(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    rdir = tmp_path / "resume"
    script = f"""
import sys, time
import numpy as np, xarray as xr
from eosdyn import sweep
def draws(seeds):
    x = np.array([float(s) for s in seeds])
    return xr.Dataset({{"x": ("seed", x)}}, coords={{"seed": np.asarray(seeds, np.int64)}})
import eosdyn._files as f
real = f.atomic_write
def hang(path, write, **kw):
    def w(tmp):
        write(tmp)
        if "chunk-2-" in str(path) and str(path).endswith(".nc"):
            print("WRITING", flush=True)
            time.sleep(60)
    return real(path, w, **kw)
f.atomic_write = hang
sweep.run(draws, 4, chunk_size=2, resume={str(rdir)!r}, fingerprint="k", scheduler="synchronous")
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        line = ""
        while "WRITING" not in line and time.time() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
        assert "WRITING" in line
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    left = [p.name for p in rdir.iterdir() if p.name.endswith(".tmp")]
    assert left, "the kill should have left the chunk's temporary behind"
    assert not list(rdir.glob("chunk-2-*.nc"))
    finished = [[0, 1]] if list(rdir.glob("chunk-0-1-*.nc.sha256")) else []
    calls = []

    def draws(seeds):
        calls.append([int(s) for s in seeds])
        x = np.array([float(s) for s in seeds])
        return xr.Dataset({"x": ("seed", x)}, coords={"seed": np.asarray(seeds, np.int64)})

    out = sweep.run(draws, 4, chunk_size=2, resume=rdir, fingerprint="k", scheduler="synchronous")
    assert sorted(calls) == [c for c in ([0, 1], [2, 3]) if c not in finished]  # finished chunks reused
    assert out.x.values.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert not [p for p in rdir.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("scheduler", ["threads", "processes", "synchronous"])
def test_resume_bitwise_across_schedulers_and_chunk_sizes(tmp_path, scheduler):
    ref = _draws(np.arange(5))
    for cs in (1, 2, 5):
        rdir = tmp_path / f"r{cs}"
        first = sweep.run(_draws, 5, chunk_size=cs, resume=rdir, fingerprint="f", scheduler=scheduler)
        files = sorted(rdir.glob("chunk-*.nc"))
        files[-1].unlink()
        again = sweep.run(_draws, 5, chunk_size=cs, resume=rdir, fingerprint="f", scheduler=scheduler)
        for out in (first, again):
            xr.testing.assert_identical(out, ref)
            np.testing.assert_array_equal(out.x.values.view(np.int64), ref.x.values.view(np.int64))


def test_resume_bitwise_with_distributed_client(tmp_path):
    distributed = pytest.importorskip("distributed")
    rdir = tmp_path / "r"
    sweep.run(_draws, 4, chunk_size=1, resume=rdir, fingerprint="f", scheduler="synchronous")
    sorted(rdir.glob("chunk-*.nc"))[1].unlink()
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2,
                            dashboard_address=None) as client:
        out = sweep.run(_draws, 4, chunk_size=1, resume=rdir, fingerprint="f", scheduler=client)
    xr.testing.assert_identical(out, _draws(np.arange(4)))


@pytest.mark.parametrize("resume, match", [
    (3, "resume"), ("", "resume"), (b"\xff\xfe", "resume"), ("/proc/eosdyn-resume", "resume"),
    ("/proc/self/x/y", "resume"), (1.5, "resume"),
])
def test_bad_resume_is_refused_before_computing(resume, match, tmp_path):
    if isinstance(resume, bytes):
        resume = bytes(tmp_path) + b"/" + resume
    calls = []
    with pytest.raises((ValueError, TypeError), match=match):
        sweep.run(lambda s: calls.append(s) or _draws(s), 2, resume=resume)
    assert calls == []
    if isinstance(resume, bytes):
        assert list(tmp_path.iterdir()) == []


def test_resume_under_a_file_or_a_file_is_refused(tmp_path):
    f = tmp_path / "plain.txt"
    f.write_text("x")
    calls = []
    for bad in (f, f / "sub"):
        with pytest.raises(ValueError, match="resume"):
            sweep.run(lambda s: calls.append(s) or _draws(s), 2, resume=bad)
    assert calls == [] and f.read_text() == "x"


@pytest.mark.parametrize("scheduler, exc", [("bogus", ValueError), ("Threads", ValueError), (3, TypeError),
                                            (object(), TypeError)])
def test_bad_scheduler_names_allowed_values(scheduler, exc):
    with pytest.raises(exc, match=r"scheduler must be one of 'threads', 'threading', 'processes'"):
        sweep.run(_draws, 2, scheduler=scheduler)


@pytest.mark.parametrize("seeds, shown", [
    (10**12, "10000000"), ([2**63], "9223372036854775808"), ([2**64 + 5], str(2**64 + 5)),
    (np.array([2**63], np.uint64), "9223372036854775808"), ([1.0e19], "1e+19"), (range(10**9), "10000000"),
    ([-1], "-1"), ([3, -2**63], str(-2**63)),
])
def test_normalize_seeds_huge_values_shown_correctly(seeds, shown):
    with pytest.raises(ValueError, match="seeds") as info:
        sweep.normalize_seeds(seeds)
    assert shown in str(info.value)
    assert "-9223372036854775808" not in str(info.value) or shown == str(-2**63)


def test_normalize_seeds_limits():
    assert sweep.normalize_seeds([2**63 - 1]).tolist() == [2**63 - 1]
    assert sweep.normalize_seeds(np.array([2**63 - 1], np.uint64)).tolist() == [2**63 - 1]
    assert sweep.normalize_seeds(sweep.MAX_SEEDS).size == sweep.MAX_SEEDS
    with pytest.raises(ValueError, match=r"seeds.*10000000"):
        sweep.normalize_seeds(sweep.MAX_SEEDS + 1)


def test_chunk_files_carry_fingerprint_and_checksum(tmp_path):
    import hashlib

    import netCDF4

    _, rdir, _ = _fresh(tmp_path)
    for nc in rdir.glob("chunk-*.nc"):
        side = (rdir / (nc.name + ".sha256")).read_text().split()
        assert side == [hashlib.sha256(nc.read_bytes()).hexdigest(), nc.name]
        with netCDF4.Dataset(nc) as f:
            assert f.getncattr(sweep.CHUNK_ATTR) == sweep.chunk_fingerprint("cfg-1")
    assert sweep.chunk_fingerprint("cfg-1") != sweep.chunk_fingerprint("cfg-2")
