"""CIFAR-10 loader for the real-network experiment (numpy only, no torch).

Reads either the official ``cifar-10-batches-py/`` directory (pickled batches
``data_batch_1`` .. ``data_batch_5``) or the project's ``cifar10_subset.npz``
(the first 1017 images of each official training batch, same bytes).

The ``n`` training images are the first ``n / 5`` images of each of the five
official training batches, so both sources give identical data. Pixels are
divided by 255 and each of the 3072 features is centred and standardised with
the mean and standard deviation of these ``n`` images (Cohen et al. 2021 used
full-training-set statistics; the statistics used are recorded). Targets are
one-hot vectors in {0, 1}.

Examples
--------
>>> from eosdyn.nn.data import load_cifar
>>> d = load_cifar("../shared/data/cifar10_subset.npz", n=50)  # doctest: +SKIP
>>> d.x.shape, d.targets.shape, d.normalisation  # doctest: +SKIP
((50, 3072), (50, 10), 'per-feature mean/std of the 50 images used')
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._validate import check_int

N_FEATURES = 3072
N_CLASSES = 10
N_BATCHES = 5
BATCH_SIZE = 10000


@dataclass
class CifarData:
    """Standardised CIFAR-10 training subset.

    Attributes
    ----------
    x : ndarray, float32, shape (n, 3072)
        Standardised features.
    labels : ndarray, int64, shape (n,)
    targets : ndarray, float32, shape (n, 10)
        One-hot targets.
    index : ndarray, int64, shape (n,)
        Positions in the official 50,000-image training set.
    mean, std : ndarray, float64, shape (3072,)
        Per-feature statistics of pixels/255 used for standardisation.
    source : str
        The file or directory read.
    normalisation : str
        Description of the statistics used.
    """

    x: np.ndarray
    labels: np.ndarray
    targets: np.ndarray
    index: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    source: str
    normalisation: str
    sha256: str = field(default="")


def _fail(path, why: str):
    raise ValueError(f"CIFAR-10 input {os.fspath(path)!r} is corrupt or mislabelled: {why}")


def _check_batch(path, x, y):
    if x.ndim != 2 or x.shape[1] != N_FEATURES:
        _fail(path, f"images must have shape (m, {N_FEATURES}); got {x.shape}")
    if y.shape != (x.shape[0],):
        _fail(path, f"labels must have shape ({x.shape[0]},); got {y.shape}")
    if x.dtype != np.uint8:
        _fail(path, f"pixel dtype must be uint8; got {x.dtype}")
    if y.size and (y.min() < 0 or y.max() >= N_CLASSES):
        _fail(path, f"labels must lie in 0..{N_CLASSES - 1}; got range {y.min()}..{y.max()}")


def _read_npz(path: Path, per_batch: int):
    try:
        with np.load(path, allow_pickle=False) as f:
            x, y, idx = f["train_x"], np.asarray(f["train_y"]).astype(np.int64), f["train_index"].astype(np.int64)
    except (OSError, ValueError, KeyError, EOFError) as err:
        _fail(path, f"cannot read arrays train_x/train_y/train_index ({type(err).__name__}: {err})")
    _check_batch(path, x, y)
    if idx.shape != y.shape or np.any(np.diff(idx) == 0):
        _fail(path, "train_index must hold one distinct index per image")
    xs, ys, ids = [], [], []
    for b in range(N_BATCHES):
        sel = np.flatnonzero((idx >= b * BATCH_SIZE) & (idx < (b + 1) * BATCH_SIZE))
        sel = sel[np.argsort(idx[sel], kind="stable")][:per_batch]
        if sel.size < per_batch or not np.array_equal(idx[sel], b * BATCH_SIZE + np.arange(per_batch)):
            raise ValueError(f"CIFAR-10 file {os.fspath(path)!r} holds fewer than the first {per_batch} images "
                             f"of training batch {b + 1}; use a smaller n (n <= {N_BATCHES} * "
                             f"{int(np.sum((idx >= b * BATCH_SIZE) & (idx < b * BATCH_SIZE + BATCH_SIZE)))})")
        xs.append(x[sel]); ys.append(y[sel]); ids.append(idx[sel])
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ids)


def _read_dir(path: Path, per_batch: int):
    xs, ys, ids = [], [], []
    for b in range(N_BATCHES):
        fp = path / f"data_batch_{b + 1}"
        if not fp.is_file():
            _fail(fp, "file missing (expected the official cifar-10-batches-py layout)")
        try:
            with open(fp, "rb") as fh:
                d = pickle.load(fh, encoding="bytes")
            x = np.asarray(d[b"data"] if b"data" in d else d["data"])
            y = np.asarray(d[b"labels"] if b"labels" in d else d["labels"]).astype(np.int64)
        except Exception as err:  # noqa: BLE001 - any unpickling problem means a corrupt file
            _fail(fp, f"cannot unpickle a dict with 'data' and 'labels' ({type(err).__name__}: {err})")
        _check_batch(fp, x, y)
        if x.shape[0] < per_batch:
            _fail(fp, f"holds {x.shape[0]} images, fewer than the {per_batch} needed")
        xs.append(x[:per_batch]); ys.append(y[:per_batch])
        ids.append(b * BATCH_SIZE + np.arange(per_batch, dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ids)


def _sha256(path: Path) -> str:
    if path.is_dir():
        return ""
    from .._files import sha256_file

    return sha256_file(path)


def load_cifar(path, *, n: int = 5000) -> CifarData:
    """Load and standardise ``n`` CIFAR-10 training images.

    Parameters
    ----------
    path : path-like
        The official ``cifar-10-batches-py`` directory or a ``cifar10_subset.npz`` file.
    n : int, default 5000
        Number of images, a multiple of 5 in [5, 50000]: the first ``n/5`` of each training batch.

    Returns
    -------
    CifarData

    Raises
    ------
    ValueError
        For a bad ``n``, a missing/corrupt/mislabelled file (the message names the file).

    Examples
    --------
    >>> d = load_cifar("../shared/data/cifar10_subset.npz", n=10)  # doctest: +SKIP
    >>> abs(float(d.x.mean())) < 1e-6, d.targets.sum(axis=1).tolist()  # doctest: +SKIP
    (True, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    """
    n = check_int("n", n, N_BATCHES, N_BATCHES * BATCH_SIZE)
    if n % N_BATCHES:
        raise ValueError(f"n must be a multiple of {N_BATCHES} in [5, 50000]; got {n}")
    path = Path(path)
    if not path.exists():
        raise ValueError(f"CIFAR-10 input {os.fspath(path)!r} does not exist")
    per_batch = n // N_BATCHES
    x, y, idx = _read_dir(path, per_batch) if path.is_dir() else _read_npz(path, per_batch)
    xf = x.astype(np.float64) / 255.0
    mean = xf.mean(axis=0)
    std = xf.std(axis=0)
    if np.any(std == 0):
        _fail(path, "some pixel feature is constant over the selected images (cannot standardise)")
    xs = ((xf - mean) / std).astype(np.float32)
    targets = np.zeros((n, N_CLASSES), np.float32)
    targets[np.arange(n), y] = 1.0
    return CifarData(xs, y, targets, idx, mean, std, os.fspath(path),
                     f"per-feature mean/std of the {n} images used", _sha256(path))
