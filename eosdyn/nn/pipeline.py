"""GD on the fc-tanh network through the edge of stability, with checkpoint/resume.

Phases (the state lives in ``<workdir>/checkpoint.pt``, written atomically every
``checkpoint_every`` steps, so an interrupted :func:`build` resumes where it stopped):

1. ``approach``: plain full-batch GD; the loss every step and a cheap probe of
   the sharpness η λ₁/n every ``probe_every`` steps (warm-started LOBPCG, loose
   tolerance) until it reaches ``window_threshold``.
2. ``window``: ``window_steps`` steps with per-step tracking of loss, λ₁, λ₂,
   z₁ = v₁ᵀz (LOBPCG warm-started from the previous step's block), the top Hessian
   eigenvalue every ``hessian_every`` steps, and the projections
   (:func:`eosdyn.nn.projections.compute_projections`) at the chosen t₀.
3. ``done``: the two datasets are written (:func:`write_datasets`).

Examples
--------
>>> from eosdyn.nn.pipeline import build
>>> traj, proj = build("../shared/data/cifar10_subset.npz", out_dir="catalogs/data")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._validate import check_int, check_range

TRAJECTORY_FILE = "cifar_fcn_trajectory.nc"
PROJECTIONS_FILE = "cifar_fcn_projections.nc"


@dataclass
class BuildConfig:
    """Settings of :func:`build` (the trajectory-defining ones are fixed once a run started)."""

    n: int = 5000
    seed: int = 0
    eta: float = 0.01
    width: int = 200
    max_steps: int = 8000
    window_threshold: float = 1.9
    window_steps: int = 400
    probe_every: int = 50
    hessian_every: int = 20
    checkpoint_every: int = 50
    track_block: int = 3
    track_tol: float = 1e-4
    k: int = 16
    ntk_lanczos_m: int = 80
    q1_lanczos_m: int = 100
    n_extreme: int = 5
    feedback: int = 2
    t0_offsets: tuple = (0, -1)
    snapshot_every: int = 0
    threads: int = 2
    dtype: str = "float32"

    FIXED = ("n", "seed", "eta", "width", "dtype")

    def validate(self) -> "BuildConfig":
        check_int("n", self.n, 5, 50000)
        check_int("seed", self.seed, 0, 2**63 - 1)
        check_range("eta", self.eta, 0, None, lo_open=True)
        check_int("width", self.width, 1)
        check_int("max_steps", self.max_steps, 1)
        check_range("window_threshold", self.window_threshold, 0, None, lo_open=True)
        check_int("window_steps", self.window_steps, 1)
        check_int("probe_every", self.probe_every, 1)
        check_int("hessian_every", self.hessian_every, 1)
        check_int("checkpoint_every", self.checkpoint_every, 1)
        check_int("track_block", self.track_block, 2)
        check_range("track_tol", self.track_tol, 0, 1, lo_open=True)
        check_int("k", self.k, 2)
        check_int("ntk_lanczos_m", self.ntk_lanczos_m, self.k)
        check_int("q1_lanczos_m", self.q1_lanczos_m, 2)
        check_int("n_extreme", self.n_extreme, 1, self.q1_lanczos_m // 2)
        check_int("snapshot_every", self.snapshot_every, 0)
        check_int("feedback", self.feedback, 0, self.k)
        check_int("threads", self.threads, 1)
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64'; got {self.dtype!r}")
        return self

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["t0_offsets"] = list(self.t0_offsets)
        return d


def _default_workdir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("eosdyn")) / "nn_build"


def _save_atomic(obj, path: Path) -> None:
    import torch

    from .._files import atomic_write

    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def _peak_rss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024.0 if sys.platform != "darwin" else r / 2**20


class _Progress:
    def __init__(self, enabled: bool, total: int, initial: int):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="step", mininterval=5.0)

    def update(self, step: int, **post):
        if self.bar is not None:
            self.bar.n = step
            self.bar.set_postfix(post, refresh=False)
            self.bar.refresh()

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _new_state(cfg: BuildConfig, data, theta) -> dict:
    return {
        "config": cfg.as_dict(), "phase": "approach", "step": 0, "theta": theta.clone(),
        "loss": [], "probe_step": [], "probe_sharpness": [], "probe_matvecs": [],
        "window_start": None, "window_end": None,
        "trk": {"step": [], "lam": [], "z1": [], "loss": [], "res": [], "matvecs": [], "seconds": []},
        "hess": {"step": [], "lam": [], "matvecs": []},
        "block": None, "hess_vec": None, "projections": [], "cold": None,
        "data": {"source": data.source, "sha256": data.sha256, "normalisation": data.normalisation,
                 "index_first": int(data.index[0]), "index_last": int(data.index[-1])},
        "timing": {"wall": 0.0, "gd_seconds": 0.0, "gd_steps": 0, "peak_rss_mb": 0.0},
        "snapshots": {},
    }


def build(cifar, *, out_dir=None, workdir=None, config: BuildConfig | None = None, progress: bool = True,
          stop_after_seconds: float | None = None, stop_at_step: int | None = None, log=print, **settings):
    """Run (or resume) the whole real-network pipeline and write the two datasets.

    Parameters
    ----------
    cifar : path-like
        ``cifar-10-batches-py`` directory or ``cifar10_subset.npz``.
    out_dir : path-like, optional
        Where ``cifar_fcn_trajectory.nc`` and ``cifar_fcn_projections.nc`` are written
        (default: ``workdir``).
    workdir : path-like, optional
        Checkpoint directory (default: the user cache ``eosdyn/nn_build``).
    config : BuildConfig, optional
        Settings; on resume the trajectory-defining ones (n, seed, eta, width, dtype) must match.
    progress : bool, default True
        Show a tqdm progress bar.
    stop_after_seconds : float, optional
        Checkpoint and return ``None`` after this much wall time (resume later).
    stop_at_step : int, optional
        Checkpoint and return ``None`` on reaching this step (resume later).
    log : callable
        Receives progress lines (default ``print``).
    **settings
        :class:`BuildConfig` fields overriding ``config`` (so the stored ``eosdyn_config`` recipe
        ``build(cifar=..., n=..., ...)`` reruns the pipeline).

    Returns
    -------
    tuple of xarray.Dataset or None
        ``(trajectory, projections)`` once done.

    Examples
    --------
    >>> build("../shared/data/cifar10_subset.npz", out_dir="catalogs/data")  # doctest: +SKIP
    """
    import torch

    from .data import load_cifar
    from .linalg import lobpcg
    from .network import NetworkOps, make_network, numpy_operator
    from .projections import compute_projections

    base = dataclasses.asdict(config) if config is not None else {}
    unknown = set(settings) - set(base or dataclasses.asdict(BuildConfig()))
    if unknown:
        raise ValueError(f"unknown build settings {sorted(unknown)}; allowed: {sorted(dataclasses.asdict(BuildConfig()))}")
    if "t0_offsets" in settings:
        settings["t0_offsets"] = tuple(settings["t0_offsets"])
    cfg = BuildConfig(**{**base, **settings}).validate()
    workdir = Path(workdir) if workdir is not None else _default_workdir()
    workdir.mkdir(parents=True, exist_ok=True)
    out_dir = Path(out_dir) if out_dir is not None else workdir
    ckpt = workdir / "checkpoint.pt"
    torch.set_num_threads(cfg.threads)
    dtype = getattr(torch, cfg.dtype)
    data = load_cifar(cifar, n=cfg.n)
    net = make_network(in_features=data.x.shape[1], width=cfg.width, out_features=data.targets.shape[1],
                       seed=cfg.seed, dtype=dtype)
    ops = NetworkOps(net, torch.from_numpy(data.x), torch.from_numpy(data.targets))
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        old = state["config"]
        for key in BuildConfig.FIXED:
            if old[key] != getattr(cfg, key):
                raise ValueError(f"{key}={getattr(cfg, key)!r} differs from the checkpoint in {ckpt} "
                                 f"({old[key]!r}); use another workdir or the same {key}")
        state["config"] = cfg.as_dict()
        log(f"resuming from {ckpt} at step {state['step']} (phase {state['phase']})")
    else:
        state = _new_state(cfg, data, ops.theta0())
    seeds = np.random.SeedSequence([cfg.seed, 2023])
    rng = np.random.default_rng(seeds.spawn(1 + state["step"])[-1])
    N, n, eta = ops.n_outputs, ops.n, cfg.eta
    scale = eta / n  # sharpness = scale * λ(J Jᵀ)
    theta = state["theta"]
    t_start = time.perf_counter()
    wall0 = state["timing"]["wall"]
    bar = _Progress(progress, cfg.max_steps, state["step"])

    def checkpoint():
        state["theta"] = theta
        state["timing"]["wall"] = wall0 + time.perf_counter() - t_start
        state["timing"]["peak_rss_mb"] = max(state["timing"]["peak_rss_mb"], _peak_rss_mb())
        _save_atomic(state, ckpt)

    def ntk_op(vjp_fn):
        return numpy_operator(lambda V: ops.ntk_matvec(theta, V, vjp_fn), dtype)

    def track(vjp_fn, block, tol, k=2, size=None):
        res = lobpcg(ntk_op(vjp_fn), N, k=k, block=size or cfg.track_block, X0=block, rng=rng, tol=tol)
        return res

    def gd_update(z, vjp_fn=None):
        nonlocal theta
        t = time.perf_counter()
        if vjp_fn is None:
            th = theta.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(ops.loss(th), th)
        else:
            g = vjp_fn(z) / n
        theta = (theta - eta * g).detach()
        state["timing"]["gd_seconds"] += time.perf_counter() - t
        state["timing"]["gd_steps"] += 1

    try:
        while state["phase"] != "done":
            step = state["step"]
            if stop_after_seconds is not None and time.perf_counter() - t_start > stop_after_seconds:
                checkpoint()
                log(f"stopping at step {step} after {stop_after_seconds} s; resume with the same call")
                return None
            if stop_at_step is not None and step >= stop_at_step and state["phase"] != "done":
                checkpoint()
                log(f"stopping at step {step}; resume with the same call")
                return None
            if step >= cfg.max_steps and state["phase"] == "approach":
                log(f"max_steps={cfg.max_steps} reached before the sharpness reached "
                    f"window_threshold={cfg.window_threshold}; writing what there is")
                state["phase"] = "done"
                break
            if state["phase"] == "approach":
                if step % cfg.probe_every == 0:
                    with torch.no_grad():
                        z, vjp_fn = ops.linearize(theta)
                    r = track(vjp_fn, state["block"], 1e-3, k=1, size=2)
                    if state["cold"] is None:
                        state["cold"] = {"step": step, "matvecs": r.matvecs}
                    state["block"] = r.block_vectors.astype(np.float32)
                    sharp = scale * float(r.eigenvalues[0])
                    state["probe_step"].append(step)
                    state["probe_sharpness"].append(sharp)
                    state["probe_matvecs"].append(r.matvecs)
                    log(f"step {step}: loss {float(ops.loss_of_residual(z)):.5f}, sharpness {sharp:.4f} "
                        f"({r.matvecs} matvecs)")
                    if sharp >= cfg.window_threshold:
                        state["phase"] = "window"
                        state["window_start"] = step
                        state["window_end"] = step + cfg.window_steps
                        checkpoint()
                        continue
                th = theta.detach().requires_grad_(True)
                t = time.perf_counter()
                L = ops.loss(th)
                (g,) = torch.autograd.grad(L, th)
                theta = (theta - eta * g).detach()
                state["timing"]["gd_seconds"] += time.perf_counter() - t
                state["timing"]["gd_steps"] += 1
                state["loss"].append(float(L.detach()))
                state["step"] = step + 1
            elif state["phase"] == "window":
                ws, we = state["window_start"], state["window_start"] + cfg.window_steps
                state["window_end"] = we
                offsets = {ws + (o if o >= 0 else cfg.window_steps + 1 + o) for o in cfg.t0_offsets}
                done_t0 = {p["t0"] for p in state["projections"]}
                t = time.perf_counter()
                with torch.no_grad():
                    z, vjp_fn = ops.linearize(theta)
                L = float(ops.loss_of_residual(z))
                r = track(vjp_fn, state["block"], cfg.track_tol)
                v1 = r.vectors[:, 0]
                if state["block"] is not None and float(v1 @ state["block"][:, 0]) < 0:
                    r.block_vectors[:, 0] *= -1
                    v1 = -v1
                state["block"] = r.block_vectors.astype(np.float32)
                zn = z.detach().to(torch.float64).numpy()
                trk = state["trk"]
                trk["step"].append(step); trk["lam"].append(r.eigenvalues[:2].copy())
                trk["z1"].append(float(v1 @ zn)); trk["loss"].append(L)
                trk["res"].append(r.residuals[:2].copy()); trk["matvecs"].append(r.matvecs)
                if (step - ws) % cfg.hessian_every == 0:
                    hop = numpy_operator(lambda U: ops.loss_hvp(theta, U), dtype)
                    h = lobpcg(hop, ops.n_params, k=1, block=2, X0=state["hess_vec"], rng=rng, tol=1e-3)
                    state["hess_vec"] = h.block_vectors.astype(np.float32)
                    hs = state["hess"]
                    hs["step"].append(step); hs["lam"].append(float(h.eigenvalues[0]))
                    hs["matvecs"].append(h.matvecs)
                if cfg.snapshot_every and (step - ws) % cfg.snapshot_every == 0:
                    _save_snapshot(workdir, step, theta, state["block"])
                if step in offsets and step not in done_t0:
                    log(f"projections at t0={step} ...")
                    tp = time.perf_counter()
                    p = compute_projections(ops, theta, eta=eta, k=cfg.k, rng=rng, ntk_lanczos_m=cfg.ntk_lanczos_m,
                                            q1_lanczos_m=cfg.q1_lanczos_m, n_extreme=cfg.n_extreme,
                                            warm=state["block"], feedback=cfg.feedback)
                    p["t0"] = step
                    p["seconds"] = time.perf_counter() - tp
                    state["projections"].append(p)
                    log(f"projections at t0={step} took {p['seconds']:.0f} s")
                if step >= we:
                    trk["seconds"].append(time.perf_counter() - t)
                    state["phase"] = "done"
                    break
                gd_update(z, vjp_fn)
                trk["seconds"].append(time.perf_counter() - t)
                state["loss"].append(L)
                state["step"] = step + 1
                if step % 10 == 0:
                    log(f"step {step}: loss {L:.5f}, sharpness {scale * r.eigenvalues[0]:.4f}, "
                        f"{scale * r.eigenvalues[1]:.4f}, z1 {trk['z1'][-1]:+.4f}, {r.matvecs} matvecs")
            if state["step"] % cfg.checkpoint_every == 0 and state["phase"] != "done":
                checkpoint()
            bar.update(state["step"], phase=state["phase"])
    finally:
        bar.close()
    checkpoint()
    return write_datasets(state, out_dir, data=data)


def _respectra(state, ckpt, t0s, ops, workdir, out_dir, data, log):
    import torch

    from .linalg import lobpcg
    from .network import numpy_operator
    from .projections import output_hessian_spectra

    cfg = state["config"]
    have = {p["t0"]: p for p in state["projections"]}
    missing = [t for t in t0s if t not in have]
    if missing:
        raise ValueError(f"t0s={missing} have no projections to update; compute them first (without spectra_only)")
    for t0 in t0s:
        p = have[t0]
        theta, _ = _load_snapshot(workdir, t0)
        rng = np.random.default_rng(np.random.SeedSequence([int(cfg["seed"]), 2023, 2, t0]))
        tp = time.perf_counter()
        with torch.no_grad():
            z, vjp_fn = ops.linearize(theta)
        op = numpy_operator(lambda V: ops.ntk_matvec(theta, V, vjp_fn), ops.dtype)
        r = lobpcg(op, ops.n_outputs, k=1, block=3, rng=rng, tol=1e-6)
        v1 = r.vectors[:, 0]
        # the sign of the stored v₁: Q̃₁₁₁ = v₁ · Q(u₁, u₁) is odd in v₁ and O(10²) (z̃₁ can be
        # at rounding level, e.g. at the window start)
        vt = torch.from_numpy(np.ascontiguousarray(v1)).to(ops.dtype)
        with torch.no_grad():
            u1 = (vjp_fn(vt) / float(np.sqrt(r.eigenvalues[0])))
        q111 = float((ops.hvp(theta, vt, u1[None])[0].to(torch.float64) @ u1.to(torch.float64)))
        if q111 * p["Q_tilde"][0, 0, 0] < 0:
            v1 = -v1
        sp = output_hessian_spectra(ops, theta, v1, m=int(cfg["q1_lanczos_m"]), n_extreme=int(cfg["n_extreme"]),
                                    rng=rng)
        p["hvps"] = sp.pop("hvps_q1") + sp.pop("hvps_qrand")
        p.update(sp)
        log(f"Q1 spectra at t0={t0} (m={cfg['q1_lanczos_m']}) took {time.perf_counter() - tp:.0f} s")
    state["config"] = cfg
    _save_atomic(state, ckpt)
    if state["phase"] != "done":
        return None
    return write_datasets(state, out_dir if out_dir is not None else workdir, data=data)


def align_signs(state: dict) -> dict:
    """Give v₁ of every t₀ projection the sign of the tracked v₁ (so ``z_tilde[0]`` = the trajectory's
    ``z1`` at t₀, not −z1): eigen-solves started from random vectors return ±v₁. Where z₁ is at
    rounding level (below 1e-6 ‖z‖) its sign carries no information and nothing is flipped.

    Projections computed during the build are aligned already (warm-started from the tracked block);
    :func:`project` starts cold and needs this. Idempotent.
    """
    from .projections import flip_mode

    trk = dict(zip(state["trk"]["step"], state["trk"]["z1"]))
    for p in state["projections"]:
        z1 = trk.get(p["t0"])
        noise = 1e-6 * np.sqrt(2.0 * p["n"] * p["loss"])  # ‖z‖ × float32 rounding: no sign below this
        if z1 is not None and min(abs(z1), abs(p["z_tilde"][0])) > noise and z1 * p["z_tilde"][0] < 0:
            flip_mode(p, 0)
    return state


def _snapshot_path(workdir: Path, step: int) -> Path:
    return Path(workdir) / "snapshots" / f"theta_{int(step):07d}.pt"


def _save_snapshot(workdir: Path, step: int, theta, block=None) -> None:
    """θ and the tracked eigenvector block of that step (it fixes the sign of v₁ for :func:`project`)."""
    path = _snapshot_path(workdir, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_atomic({"theta": theta.detach().clone(), "block": None if block is None else np.array(block)}, path)


def _load_snapshot(workdir: Path, step: int):
    """``(theta, block or None)``; snapshots of earlier versions hold θ alone."""
    import torch

    obj = torch.load(_snapshot_path(workdir, step), weights_only=False)
    if isinstance(obj, dict):
        return obj["theta"], obj.get("block")
    return obj, None


def snapshot_steps(workdir) -> list[int]:
    """Steps whose parameters a build with ``snapshot_every > 0`` saved under ``<workdir>/snapshots``."""
    d = Path(workdir) / "snapshots"
    return sorted(int(p.stem.split("_")[1]) for p in d.glob("theta_*.pt")) if d.is_dir() else []


def project(cifar, t0s, *, workdir=None, out_dir=None, replace=False, feedback=None, spectra_only=False,
            q1_lanczos_m=None, log=print):
    """Compute the t₀ projections of a finished (or running) build from its parameter snapshots.

    A build with ``snapshot_every > 0`` saves θ every that many steps of the window, so t₀ can be
    chosen after the trajectory is known (e.g. just before the first return of λ₁ below the edge).
    The projections are added to the checkpoint's state and, once the build is done, both
    datasets are rewritten (``out_dir``, default ``workdir``). Run it while no build is running
    on the same ``workdir`` (both write its checkpoint).

    Parameters
    ----------
    cifar : path-like
        The same data the build used (its sha256 is checked against the checkpoint).
    t0s : sequence of int
        Steps with a snapshot (:func:`snapshot_steps`).
    replace : bool, default False
        Recompute t₀ that already have projections (e.g. to add feedback directions).
    feedback : int, optional
        Feedback-direction order ``r`` (default: the build's ``feedback`` setting).
    spectra_only : bool, default False
        Recompute only the Q₁ / random-direction Hessian extremes of existing projections (e.g. with a
        larger ``q1_lanczos_m``); v₁ is re-solved and given the stored z̃₁'s sign.
    q1_lanczos_m : int, optional
        Lanczos steps for those extremes (default: the build's); recorded in the config.

    Returns
    -------
    tuple of xarray.Dataset or None
        ``(trajectory, projections)`` when the build is done, else None.
    """
    import torch

    from .data import load_cifar
    from .network import NetworkOps, make_network
    from .projections import compute_projections

    workdir = Path(workdir) if workdir is not None else _default_workdir()
    ckpt = workdir / "checkpoint.pt"
    if not ckpt.exists():
        raise FileNotFoundError(f"no build checkpoint in {workdir} (run `eosdyn nn build` first)")
    state = torch.load(ckpt, weights_only=False)
    cfg = state["config"]
    have = snapshot_steps(workdir)
    missing = [int(t) for t in t0s if int(t) not in have]
    if missing:
        raise ValueError(f"t0s={missing} have no parameter snapshot in {workdir / 'snapshots'}; "
                         f"available: {have[:5]}...{have[-5:]}" if have else
                         f"t0s={missing}: the build in {workdir} saved no snapshots (snapshot_every=0)")
    torch.set_num_threads(int(cfg["threads"]))
    dtype = getattr(torch, cfg["dtype"])
    data = load_cifar(cifar, n=int(cfg["n"]))
    if state["data"]["sha256"] and data.sha256 != state["data"]["sha256"]:
        raise ValueError(f"cifar={cifar}: sha256 {data.sha256} differs from the build's {state['data']['sha256']}")
    net = make_network(in_features=data.x.shape[1], width=int(cfg["width"]), out_features=data.targets.shape[1],
                       seed=int(cfg["seed"]), dtype=dtype)
    ops = NetworkOps(net, torch.from_numpy(data.x), torch.from_numpy(data.targets))
    if q1_lanczos_m is not None:
        cfg["q1_lanczos_m"] = check_int("q1_lanczos_m", q1_lanczos_m, 2 * int(cfg["n_extreme"]))
    if spectra_only:
        return _respectra(state, ckpt, [int(t) for t in t0s], ops, workdir, out_dir, data, log)
    done = set() if replace else {p["t0"] for p in state["projections"]}
    fb = int(cfg.get("feedback", 0) if feedback is None else check_int("feedback", feedback, 0, int(cfg["k"])))
    for t0 in sorted({int(t) for t in t0s} - done):
        theta, block = _load_snapshot(workdir, t0)
        rng = np.random.default_rng(np.random.SeedSequence([int(cfg["seed"]), 2023, 1, t0]))
        log(f"projections at t0={t0} ...")
        tp = time.perf_counter()
        p = compute_projections(ops, theta, eta=float(cfg["eta"]), k=int(cfg["k"]), rng=rng,
                                ntk_lanczos_m=int(cfg["ntk_lanczos_m"]), q1_lanczos_m=int(cfg["q1_lanczos_m"]),
                                n_extreme=int(cfg["n_extreme"]), feedback=fb, warm=block)
        p["t0"] = t0
        p["seconds"] = time.perf_counter() - tp
        log(f"projections at t0={t0} took {p['seconds']:.0f} s")
        state = torch.load(ckpt, weights_only=False)
        state["projections"] = [q for q in state["projections"] if q["t0"] != t0] + [p]
        align_signs(state)
        _save_atomic(state, ckpt)
    state = torch.load(ckpt, weights_only=False)
    align_signs(state)
    _save_atomic(state, ckpt)
    if state["phase"] != "done":
        return None
    return write_datasets(state, out_dir if out_dir is not None else workdir, data=data)


def write_datasets(state: dict, out_dir, *, data=None):
    """Turn a pipeline state into the two labelled datasets and write them as NetCDF.

    Returns ``(trajectory, projections)``; ``projections`` is None when no t₀ was reached.
    """
    import xarray as xr

    from .. import conventions
    from ..io import to_netcdf

    cfg = state["config"]
    eta, n = float(cfg["eta"]), int(cfg["n"])
    scale = eta / n
    trk, hs = state["trk"], state["hess"]
    last = max(len(state["loss"]) - 1, trk["step"][-1] if trk["step"] else -1)
    steps = np.arange(last + 1, dtype=np.int64)
    loss = np.full(steps.size, np.nan)
    loss[: len(state["loss"])] = state["loss"]
    sharp = np.full((steps.size, 2), np.nan)
    resid = np.full((steps.size, 2), np.nan)
    z1 = np.full(steps.size, np.nan)
    matvecs = np.full(steps.size, -1, np.int64)
    seconds = np.full(steps.size, np.nan)
    for s, sh, mv in zip(state["probe_step"], state["probe_sharpness"], state["probe_matvecs"]):
        if s <= last:
            sharp[s, 0] = sh
            matvecs[s] = mv
    if trk["step"]:
        idx = np.asarray(trk["step"])
        sharp[idx] = scale * np.asarray(trk["lam"])
        resid[idx] = np.asarray(trk["res"])
        z1[idx] = trk["z1"]
        loss[idx] = trk["loss"]
        matvecs[idx] = trk["matvecs"]
        seconds[idx[: len(trk["seconds"])]] = trk["seconds"]
    timing = state["timing"]
    meta = {
        "nn_examples": n, "nn_width": int(cfg["width"]), "nn_seed": int(cfg["seed"]),
        "nn_parameters": int(3072 * cfg["width"] + cfg["width"] + cfg["width"] ** 2 + cfg["width"] + 10 * cfg["width"] + 10),
        "nn_architecture": f"Flatten-Linear(3072,{cfg['width']})-tanh-Linear({cfg['width']},{cfg['width']})-tanh-"
                           f"Linear({cfg['width']},10), PyTorch default init (torch.manual_seed(seed))",
        "nn_loss": "L = (1/n) sum_i 1/2 |f(x_i) - e_{y_i}|^2; edge of stability at eta*lambda_max(J J^T)/n = 2",
        "nn_optimizer": f"full-batch GD, eta={eta}, no momentum, {cfg['dtype']}",
        "nn_data": f"CIFAR-10 training images: first n/5 of each official training batch; "
                   f"pixels/255; {state['data']['normalisation']}; one-hot targets",
        "nn_data_source": os.path.basename(str(state["data"]["source"])),
        "nn_data_sha256": state["data"]["sha256"] or "directory",
        "window_start": int(state["window_start"]) if state["window_start"] is not None else -1,
        "window_end": int(min(state["window_end"], last)) if state["window_end"] is not None else -1,
        "wall_seconds": float(timing["wall"]), "peak_rss_mb": float(timing["peak_rss_mb"]),
        "seconds_per_gd_step": float(timing["gd_seconds"] / max(timing["gd_steps"], 1)),
        "torch_version": _torch_version(), "machine": platform.machine(),
    }
    if state.get("cold"):
        meta["cold_matvecs"] = int(state["cold"]["matvecs"])
        meta["cold_matvecs_step"] = int(state["cold"]["step"])
    cfg_json = {"function": "eosdyn.nn.pipeline.build", "parameters": {"cifar": meta["nn_data_source"], **cfg}}
    traj = xr.Dataset(
        {
            "sharpness": (("step", "mode"), sharp),
            "z1": ("step", z1),
            "loss": ("step", loss),
            "ntk_residual": (("step", "mode"), resid),
            "matvecs": ("step", matvecs),
            "step_seconds": ("step", seconds),
            "hessian_sharpness": ("step_h", eta * np.asarray(hs["lam"], dtype=np.float64)),
            "hessian_matvecs": ("step_h", np.asarray(hs["matvecs"], dtype=np.int64)),
        },
        coords={"step": steps, "mode": np.arange(2, dtype=np.int64),
                "step_h": np.asarray(hs["step"], dtype=np.int64), "eta": eta, "n_examples": n},
    )
    conventions.label(traj, model="cifar_fcn", title=f"fc-tanh network on {n} CIFAR-10 images: GD through the "
                      "edge of stability (Figure 5)", equations="Section 5, Figure 5 (Agarwala et al. 2023)",
                      config=cfg_json, attrs=meta)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    to_netcdf(traj, out_dir / TRAJECTORY_FILE)
    proj = None
    if state["projections"]:
        proj = projections_to_dataset(state["projections"], config=cfg_json, attrs=meta)
        to_netcdf(proj, out_dir / PROJECTIONS_FILE)
    return traj, proj


def projections_to_dataset(projections, *, config=None, attrs=None):
    """Stack :func:`eosdyn.nn.projections.compute_projections` results (each with a ``t0`` key) into the
    labelled ``cifar_fcn_projections`` dataset (dims ``t0``, ``mode``, ``mode_j``, ``mode_l``, ``q1_index``).

    Examples
    --------
    >>> import numpy as np
    >>> p = {"t0": 3, "lam": np.array([2.0, 1.0]), "ntk_residual": np.zeros(2), "z_tilde": np.ones(2),
    ...      "Q_tilde": np.zeros((2, 2, 2)), "q1_eig": np.array([1.0, -1.0]), "qrand_eig": np.array([0.1, -0.1]),
    ...      "loss": 0.5, "u_orthogonality": 0.0, "eta": 0.1, "n": 4}
    >>> projections_to_dataset([p]).sharpness.values.tolist()
    [[0.05, 0.025]]
    """
    import xarray as xr

    from .. import conventions

    ps = sorted(projections, key=lambda p: p["t0"])
    eta, n = float(ps[0]["eta"]), int(ps[0]["n"])
    k = len(ps[0]["lam"])
    ne = len(ps[0]["q1_eig"])

    def stack(key, default=np.nan):
        return np.stack([np.asarray(p.get(key, default), np.float64) for p in ps])

    data_fb = {}
    m = max((len(p["feedback_sources"]) for p in ps if "Q_cross" in p), default=0)
    if m:
        def pad(key, shape):
            out = np.full((len(ps),) + shape, np.nan)
            for t, p in enumerate(ps):
                if key in p:
                    a = np.asarray(p[key], np.float64)
                    out[(t,) + tuple(slice(0, d) for d in a.shape)] = a
            return out

        src = np.full((len(ps), m, 2), -1, np.int64)
        for t, p in enumerate(ps):
            if "feedback_sources" in p:
                a = np.asarray(p["feedback_sources"], np.int64)
                src[t, : len(a)] = a
        data_fb = {
            "Q_cross": (("t0", "mode", "mode_j", "feedback"), pad("Q_cross", (k, k, m))),
            "Q_feedback": (("t0", "mode", "feedback", "feedback_l"), pad("Q_feedback", (k, m, m))),
            "feedback_source_i": (("t0", "feedback"), src[..., 0]),
            "feedback_source_j": (("t0", "feedback"), src[..., 1]),
            "q1u1_outside_fraction": ("t0", np.array([p.get("q1u1_outside", np.nan) for p in ps], np.float64)),
            "w_orthogonality": ("t0", np.array([p.get("w_orthogonality", np.nan) for p in ps], np.float64)),
        }
    proj = xr.Dataset(
        {
            **data_fb,
            "ntk_eigenvalue": (("t0", "mode"), stack("lam")),
            "sharpness": (("t0", "mode"), (eta / n) * stack("lam")),
            "ntk_residual": (("t0", "mode"), stack("ntk_residual")),
            "z_tilde": (("t0", "mode"), stack("z_tilde")),
            "Q_tilde": (("t0", "mode", "mode_j", "mode_l"), stack("Q_tilde")),
            "q1_eigenvalue": (("t0", "q1_index"), stack("q1_eig")),
            "qrand_eigenvalue": (("t0", "q1_index"), stack("qrand_eig")),
            "q1_residual": (("t0", "q1_index"), np.stack([np.asarray(p.get("q1_residual", np.full(ne, np.nan)))
                                                         for p in ps]).astype(np.float64)),
            "qrand_residual": (("t0", "q1_index"), np.stack([np.asarray(p.get("qrand_residual", np.full(ne, np.nan)))
                                                            for p in ps]).astype(np.float64)),
            "loss": ("t0", stack("loss")),
            "u_orthogonality": ("t0", stack("u_orthogonality")),
            "projection_seconds": ("t0", stack("seconds")),
        },
        coords={"t0": np.array([p["t0"] for p in ps], np.int64), "mode": np.arange(k, dtype=np.int64),
                "mode_j": np.arange(k, dtype=np.int64), "mode_l": np.arange(k, dtype=np.int64),
                "q1_index": np.arange(ne, dtype=np.int64), "eta": eta, "n_examples": n,
                **({"feedback": np.arange(m, dtype=np.int64), "feedback_l": np.arange(m, dtype=np.int64)} if m else {})},
    )
    config = config or {"function": "eosdyn.nn.projections.compute_projections",
                        "parameters": {"eta": eta, "k": k, "n_extreme": ne // 2}}
    conventions.label(proj, model="cifar_fcn_projections",
                      title="fc-tanh CIFAR-10 network: top NTK modes, reduced second-order tensor and Q1 "
                            "spectrum at steps t0 (Figure 6, Appendix D.3)",
                      equations="Section 5, Figure 6, Appendix D.3; Eq. 1-2, 24-26 in the NTK eigenbasis",
                      config=config, attrs={**(attrs or {}), "q1_index_meaning":
                                            f"first {ne // 2}: largest Ritz values (descending); "
                                            f"last {ne // 2}: smallest (descending)"})
    return proj


def _torch_version() -> str:
    try:
        import torch

        return torch.__version__
    except ImportError:  # pragma: no cover
        return "unavailable"
