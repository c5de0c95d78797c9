"""``eosdyn nn build``: regenerate the stored real-network datasets.

The main CLI (:mod:`eosdyn.cli`) wires this in with ``add_parser(subparsers)`` and
dispatches to ``run(args)``; ``python -m eosdyn.nn.cli build ...`` works standalone.

Examples
--------
>>> import argparse
>>> from eosdyn.nn import cli
>>> p = argparse.ArgumentParser(prog="eosdyn"); sub = p.add_subparsers(dest="command")
>>> cli.add_parser(sub)  # doctest: +ELLIPSIS
ArgumentParser(...)
>>> args = p.parse_args(["nn", "build", "--cifar", "x.npz", "--steps", "100"])
>>> args.nn_command, args.steps, args.window_steps
('build', 100, 400)
"""

from __future__ import annotations

import argparse
import sys

from .pipeline import BuildConfig


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``nn build`` to the subparsers of the main ``eosdyn`` parser; returns the ``nn`` parser."""
    d = BuildConfig()
    nn = subparsers.add_parser("nn", help="real network (fc-tanh on CIFAR-10): regenerate stored datasets")
    nn_sub = nn.add_subparsers(dest="nn_command", metavar="NN_COMMAND")
    b = nn_sub.add_parser("build", help="run GD through the edge of stability, track NTK eigenvalues, "
                                         "compute the t0 projections; checkpoints and resumes")
    b.add_argument("--cifar", required=True, help="cifar-10-batches-py directory or cifar10_subset.npz")
    b.add_argument("--out", default=".", help="output directory for the two .nc files (default: .)")
    b.add_argument("--workdir", default=None, help="checkpoint directory (default: user cache eosdyn/nn_build)")
    b.add_argument("--steps", type=int, default=d.max_steps, help="max GD steps before the window (default %(default)s)")
    b.add_argument("--n", type=int, default=d.n, help="training images (default %(default)s)")
    b.add_argument("--seed", type=int, default=d.seed, help="initialisation seed (default %(default)s)")
    b.add_argument("--eta", type=float, default=d.eta, help="learning rate (default %(default)s)")
    b.add_argument("--width", type=int, default=d.width, help="hidden width (default %(default)s)")
    b.add_argument("--window-threshold", type=float, default=d.window_threshold,
                   help="sharpness that opens the dense window (default %(default)s)")
    b.add_argument("--window-steps", type=int, default=d.window_steps, help="window length (default %(default)s)")
    b.add_argument("--probe-every", type=int, default=d.probe_every)
    b.add_argument("--hessian-every", type=int, default=d.hessian_every)
    b.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    b.add_argument("--k", type=int, default=d.k, help="modes of the projections (default %(default)s)")
    b.add_argument("--feedback", type=int, default=d.feedback,
                   help="feedback directions from Q_i u_j, i, j < r (default r=%(default)s; 0: none)")
    b.add_argument("--t0", type=str, default=",".join(map(str, d.t0_offsets)),
                   help="t0 as offsets into the window, -1 = window end (default %(default)s)")
    b.add_argument("--snapshot-every", type=int, default=d.snapshot_every,
                   help="save the parameters every N window steps, for `nn project` (default %(default)s: off)")
    b.add_argument("--threads", type=int, default=d.threads)
    b.add_argument("--dtype", default=d.dtype, choices=["float32", "float64"])
    b.add_argument("--no-progress", action="store_true")
    pr = nn_sub.add_parser("project", help="compute the t0 projections of a build from its parameter snapshots "
                                            "(build with --snapshot-every) and rewrite the datasets")
    pr.add_argument("--cifar", required=True, help="the data the build used")
    pr.add_argument("--workdir", default=None, help="the build's checkpoint directory")
    pr.add_argument("--out", default=".", help="output directory for the two .nc files (default: .)")
    pr.add_argument("--t0", required=True, help="comma-separated absolute steps with a snapshot")
    pr.add_argument("--feedback", type=int, default=None,
                    help="feedback-direction order r (default: the build's setting)")
    pr.add_argument("--replace", action="store_true", help="recompute t0 that already have projections")
    pr.add_argument("--spectra-only", action="store_true",
                    help="recompute only the Q1 / random-direction Hessian extremes of existing projections")
    pr.add_argument("--q1-lanczos-m", type=int, default=None, help="Lanczos steps for those extremes")
    return nn


def _ints(text: str, name: str) -> tuple:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"{name} must be comma-separated integers; got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    """Execute the parsed ``nn`` command; returns the exit code."""
    if getattr(args, "nn_command", None) not in ("build", "project"):
        print("usage: eosdyn nn build --cifar PATH [--steps N] [--out DIR]\n"
              "       eosdyn nn project --cifar PATH --workdir DIR --t0 STEPS [--out DIR]", file=sys.stderr)
        return 2
    try:
        import torch  # noqa: F401
    except ImportError:
        print("eosdyn nn build needs torch: pip install 'eosdyn[nn]'", file=sys.stderr)
        return 1
    from .pipeline import build, project

    if args.nn_command == "project":
        out = project(args.cifar, _ints(args.t0, "--t0"), workdir=args.workdir, out_dir=args.out,
                      replace=args.replace, feedback=args.feedback, spectra_only=args.spectra_only,
                      q1_lanczos_m=args.q1_lanczos_m, log=lambda s: print(s, flush=True))
        return 0 if out is not None else 3
    offsets = _ints(args.t0, "--t0")
    cfg = BuildConfig(n=args.n, seed=args.seed, eta=args.eta, width=args.width, max_steps=args.steps,
                      window_threshold=args.window_threshold, window_steps=args.window_steps,
                      probe_every=args.probe_every, hessian_every=args.hessian_every,
                      checkpoint_every=args.checkpoint_every, k=args.k, feedback=args.feedback, t0_offsets=offsets,
                      snapshot_every=args.snapshot_every, threads=args.threads, dtype=args.dtype)
    out = build(args.cifar, out_dir=args.out, workdir=args.workdir, config=cfg, progress=not args.no_progress,
                log=lambda s: print(s, flush=True))
    return 0 if out is not None else 3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="eosdyn")
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    args = parser.parse_args(argv)
    if args.command != "nn":
        parser.print_help()
        return 2
    return run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
