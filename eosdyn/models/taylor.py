"""Taylor-expanded (quadratic) model of the real network from stored projections (Appendix D.3).

Around a step t₀ the network's residual, restricted to the top-``k`` NTK modes
and to the parameter directions ``u_i = Jᵀ v_i / √λ_i``, is the quadratic model

    z̃(φ) = z̃₀ + diag(√λ) φ + ½ Q̃(φ, φ),      Q̃_ijl = v_i · Q(u_j, u_l),

i.e. a quadratic regression model (Eq. 1) with ``D = P = k``, ``J₀ = diag(√λ)``
and ``Q = Q̃``. The network's loss is ``(1/n) Σ ½ ‖z‖²`` with learning rate η, so
GD on this model is the QRM iteration (Eq. 24-26) with the effective learning
rate ``η/n``; its sharpness ``(η/n) λ_max(J̃ J̃ᵀ)`` has the edge at 2, like the
stored network trajectory. The GD loop is the shared QRM kernel
:func:`eosdyn.kernels.qrm.run_gd` (no torch needed).

Provenance: a dataset records where its projections came from (a catalog entry, a file with
its sha256, or an in-memory Dataset) and their digest (:func:`projections_sha256`), so
:func:`eosdyn.conventions.regenerate` rebuilds it only from the very same projections and
otherwise refuses, saying what is missing.

Examples
--------
>>> import eosdyn
>>> ds = eosdyn.taylor.simulate("cifar_fcn_projections", t0=4200, modes=4, steps=20)
>>> int(ds.t0), ds.sizes["step"], round(float(ds.sharpness[0]), 2)
(4200, 21, 2.12)
>>> ds.attrs["projections_source"]
"catalog entry 'cifar_fcn_projections'"
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import xarray as xr

from .. import conventions
from .._files import sha256_file
from .._validate import HYPERPARAMETER_RANGES, check_batch_size, check_gd_options, check_int, check_optimizer
from ..conventions import STATUS_VALUES
from ..kernels.qrm import FORCE_VARIABLES, MAX_STEPS_LIMIT, check_representable, real_scalar, run_gd
from ..systems import Param, System, register
from ..theory.optim import optimizer_edge
from .qrm import OPTIMIZER_CONVENTIONS, _variants, own_sharpness

__all__ = ["simulate", "reduced_model", "projections_sha256"]

_REQUIRED = ("ntk_eigenvalue", "z_tilde", "Q_tilde")
#: what the digest of :func:`projections_sha256` covers: every value :func:`reduced_model` reads
_DIGESTED = ("t0", "eta", "n_examples", "ntk_eigenvalue", "z_tilde", "Q_tilde", "Q_cross", "Q_feedback")
CATALOG_NAME = "cifar_fcn_projections"
PUBLIC_NAME = "eosdyn.taylor.simulate"
EQUATIONS = ("Eq. 1, 24-26 with D = k, P = k + feedback, J0 = [diag(sqrt(lambda)), 0], Q = Q_tilde "
             "(+ Q_cross, Q_feedback); Appendix D.3")
DEFAULTS = {"steps": 500, "record_every": 1, "stop": "never", "tol": 0.0, "diverge_loss": 1e8, "dtype": "float64"}


def _catalog_entries() -> set[str]:
    from .. import catalog

    try:
        return set(catalog.entries())
    except Exception:  # noqa: BLE001 - a broken user catalog must not break opening a file path
        return {CATALOG_NAME}


def _source_of(projections) -> tuple[str, str | None]:
    """``("catalog", name)``, ``("file", absolute path)`` or ``("in-memory", None)``."""
    if isinstance(projections, (str, os.PathLike)):
        text = os.fspath(projections)
        if not os.path.exists(text) and isinstance(projections, str) and text in _catalog_entries():
            return "catalog", text
        return "file", os.path.abspath(text)
    return "in-memory", None


def _as_projections(projections) -> xr.Dataset:
    if projections is None:
        raise ValueError("projections must be an xarray.Dataset, a NetCDF path or a catalog entry name "
                         f"such as {CATALOG_NAME!r}; got None")
    if isinstance(projections, (str, os.PathLike)):
        kind, where = _source_of(projections)
        if kind == "catalog":
            from .. import catalog

            projections = catalog.open(where)
        else:
            from ..io import open_dataset

            projections = open_dataset(projections)
    if not isinstance(projections, xr.Dataset):
        raise ValueError(f"projections must be an xarray.Dataset or a path to one; got {type(projections).__name__}")
    missing = [v for v in _REQUIRED if v not in projections]
    missing += [d for d in ("t0", "mode") if d not in projections.dims]
    if missing:
        raise ValueError(f"projections must be a cifar_fcn_projections dataset with dims 't0', 'mode' and "
                         f"variables {', '.join(_REQUIRED)}; missing: {', '.join(missing)}")
    if projections.sizes["t0"] == 0:
        raise ValueError("projections hold no expansion step: dim 't0' is empty")
    if projections.sizes["mode"] == 0:
        raise ValueError("projections hold zero modes: dim 'mode' is empty (nothing to simulate)")
    for name in _REQUIRED:
        if projections[name].dtype.kind not in "iuf":
            raise ValueError(f"projections variable {name} must be real numbers; got dtype {projections[name].dtype}")
    return projections


def projections_sha256(projections) -> str:
    """The digest that identifies projections: sha256 over the exact bytes of the values the model reads.

    It covers, for each of ``t0``, ``eta``, ``n_examples``, ``ntk_eigenvalue``, ``z_tilde``,
    ``Q_tilde``, ``Q_cross`` and ``Q_feedback`` that the dataset holds, its name, dims, dtype,
    shape and the bytes of its values (attributes such as ``history`` do not count). Two
    projections with the same digest give bit-identical :func:`simulate` results.
    :func:`simulate` records it (``eosdyn_config`` parameter ``projections_sha256``).

    Parameters
    ----------
    projections : xarray.Dataset, path-like or catalog entry name
        As for :func:`simulate`.

    Returns
    -------
    str
        64 hexadecimal digits.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> proj = xr.Dataset({"ntk_eigenvalue": (("t0", "mode"), [[2.1e4, 1e4]]),
    ...                    "z_tilde": (("t0", "mode"), [[0.1, -0.2]]),
    ...                    "Q_tilde": (("t0", "mode", "mode_j", "mode_l"), np.full((1, 2, 2, 2), 5.0))},
    ...                   coords={"t0": [300], "eta": 0.01, "n_examples": 100})
    >>> digest = projections_sha256(proj)
    >>> len(digest), digest == projections_sha256(proj.assign_attrs(history="edited"))
    (64, True)
    >>> digest == projections_sha256(proj.assign(z_tilde=proj.z_tilde * 2))
    False
    """
    ds = _as_projections(projections)
    h = hashlib.sha256(b"eosdyn.taylor projections v1\0")
    for name in _DIGESTED:
        if name in ds.variables:
            values = np.ascontiguousarray(ds[name].values)
            head = f"{name}|{','.join(map(str, ds[name].dims))}|{values.dtype.str}|{values.shape}\0"
            h.update(head.encode())
            h.update(values.tobytes())
        elif name in ("eta", "n_examples"):
            attr = "eta" if name == "eta" else "nn_examples"
            h.update(f"{name}|attr|{ds.attrs.get(attr)!r}\0".encode())
    return h.hexdigest()


def _scalar_meta(ds: xr.Dataset, name: str, attr: str):
    """A scalar coordinate (or, in older files, attribute) of the projections, or a clear error."""
    if name in ds.coords:
        value = ds[name].values
        if np.ndim(value) != 0:
            raise ValueError(f"projections coordinate {name} must be a scalar; got shape {np.shape(value)}")
        return value[()]
    if attr in ds.attrs:
        return ds.attrs[attr]
    raise ValueError(f"projections have no {name} (a scalar coordinate {name!r} or attribute {attr!r}); "
                     "it is needed for the effective learning rate eta / n_examples")


def _eta_and_n(ds: xr.Dataset) -> tuple[float, int]:
    """The network's learning rate η (finite, > 0) and training-set size n (≥ 1)."""
    eta = real_scalar("projections eta", _scalar_meta(ds, "eta", "eta"), 0, None, lo_open=True)
    n = check_int("projections n_examples", _scalar_meta(ds, "n_examples", "nn_examples"), 1)
    return eta, n


def reduced_model(projections, *, t0=None, modes=None, feedback=0):
    """The k-mode quadratic model at t₀ as plain arrays.

    Parameters
    ----------
    projections : xarray.Dataset or path-like
        A ``cifar_fcn_projections`` dataset.
    t0 : int, optional
        Expansion step, one of ``projections.t0`` (default: the first).
    modes : int, optional
        Number ``k`` of top NTK modes kept, 1 ≤ k ≤ stored modes (default: all).
    feedback : int, default 0
        Number ``m`` of stored feedback directions ``w_f`` added to the parameter basis
        (``Q_cross``, ``Q_feedback`` in the projections; see :mod:`eosdyn.nn.projections`).
        The parameters are then ``φ ∈ R^{k+m}`` along ``(u_1..u_k, w_1..w_m)``; the outputs
        stay the k NTK modes.

    Returns
    -------
    Q : ndarray (k, k+m, k+m)
        Reduced tensor (``Q̃`` on the u-block; symmetrised in its last two indices).
    J0 : ndarray (k, k+m)
        ``[diag(√λ), 0]`` (``J w_f`` has no component on the top-k modes: ``w_f ⊥ span(u)``).
    z0 : ndarray (k,)
        ``z̃ = Vᵀ z``.
    eta_eff : float
        ``η / n``.
    t0 : int

    Examples
    --------
    >>> Q, J0, z0, eta_eff, t0 = reduced_model("cifar_fcn_projections", t0=4200, modes=4, feedback=2)
    >>> Q.shape, J0.shape, z0.shape, t0
    ((4, 6, 6), (4, 6), (4,), 4200)
    """
    ds = _as_projections(projections)
    eta, n = _eta_and_n(ds)
    t0_values = [int(v) for v in ds["t0"].values]
    if t0 is None:
        t0 = t0_values[0]
    t0 = check_int("t0", t0)
    if t0 not in t0_values:
        shown = t0_values if len(t0_values) <= 20 else t0_values[:20] + ["..."]
        raise ValueError(f"t0 must be one of the stored expansion steps {shown}; got {t0}")
    kmax = int(ds.sizes["mode"])
    k = kmax if modes is None else check_int("modes", modes, 1, kmax)
    sel = ds.sel(t0=t0)
    want = {"ntk_eigenvalue": (k,), "z_tilde": (k,), "Q_tilde": (k, k, k)}
    for name, shape in want.items():
        got = sel[name].shape
        if len(got) != len(shape) or any(g < w for g, w in zip(got, shape)):
            raise ValueError(f"projections variable {name} at t0={t0} must hold at least shape {shape} for "
                             f"{k} modes; got {got}")
    lam = np.asarray(sel["ntk_eigenvalue"].values[:k], np.float64)
    if np.any(~(lam > 0)) or np.any(~np.isfinite(lam)):
        raise ValueError(f"ntk_eigenvalue at t0={t0} must be finite and positive for the kept modes; got {lam}")
    Q = np.asarray(sel["Q_tilde"].values[:k, :k, :k], np.float64)
    J0 = np.diag(np.sqrt(lam))
    m = check_int("feedback", feedback, 0)
    if m:
        avail = int(np.isfinite(sel["Q_feedback"].values[0, :, 0]).sum()) if "Q_feedback" in ds else 0
        if not avail:
            raise ValueError(f"feedback={feedback} needs the variables Q_cross and Q_feedback at t0={t0} "
                             "(projections built with feedback > 0, `eosdyn nn project`); this dataset has none")
        m = check_int("feedback", feedback, 0, avail)
        Qc = np.asarray(sel["Q_cross"].values[:k, :k, :m], np.float64)
        Qw = np.asarray(sel["Q_feedback"].values[:k, :m, :m], np.float64)
        full = np.zeros((k, k + m, k + m))
        full[:, :k, :k] = Q
        full[:, :k, k:] = Qc
        full[:, k:, :k] = Qc.transpose(0, 2, 1)
        full[:, k:, k:] = Qw
        Q = full
        J0 = np.hstack([J0, np.zeros((k, m))])
    Q = 0.5 * (Q + Q.transpose(0, 2, 1))
    z0 = np.asarray(sel["z_tilde"].values[:k], np.float64)
    return Q, J0, z0, eta / n, t0


def _resolve_source(projections, sha, file_sha):
    """Open the projections and check them against the recorded digests.

    Returns ``(dataset, parameters to record, projections_source attr)``. Raises ``ValueError``
    (never substitutes other data) when ``projections`` is None (in-memory projections that were
    not saved), when a file is missing or its bytes changed, or when the digest differs.
    """
    if projections is None:
        what = f" (sha256 {sha})" if sha else ""
        raise ValueError(
            f"projections=None: this dataset was simulated from in-memory projections{what}, which were "
            "not saved, so eosdyn cannot obtain them and refuses to substitute other data. To rebuild it, "
            "pass the same projections: eosdyn.taylor.simulate(proj, **parameters) with parameters from "
            "eosdyn.conventions.read_config(ds); save projections first (eosdyn.to_netcdf(proj, path)) and "
            "simulate from the path to make the dataset regenerable")
    kind, where = _source_of(projections) if not isinstance(projections, xr.Dataset) else ("in-memory", None)
    if file_sha is not None and kind != "file":
        raise ValueError("projections_file_sha256 is the sha256 of a projections file: give projections as the "
                         f"path of that file (got {'a catalog entry name' if kind == 'catalog' else 'a Dataset'})")
    if kind == "file" and file_sha is not None:
        if not os.path.isfile(where):
            raise ValueError(f"projections file {where!r} does not exist; the dataset was simulated from a file "
                             f"with sha256 {file_sha}: restore that file (or pass the same projections as a "
                             "Dataset) to rebuild it")
        actual = sha256_file(where)
        if actual != file_sha:
            raise ValueError(f"projections file {where!r} has changed since the dataset was simulated: its sha256 "
                             f"is {actual}, the dataset records {file_sha}; refusing to rebuild from different "
                             "projections (restore the original file)")
    ds = _as_projections(projections)
    digest = projections_sha256(ds)
    if sha is not None and digest != sha:
        shown = {"catalog": f"catalog entry {where!r}", "file": f"file {where!r}",
                 "in-memory": "the given Dataset"}[kind]
        raise ValueError(f"projections_sha256 mismatch: {shown} holds projections with sha256 {digest}, but "
                         f"{sha} was asked for (the projections the dataset was simulated from); refusing to "
                         "substitute other projections")
    if kind == "in-memory" and ds.attrs.get("model") == CATALOG_NAME:
        # the catalog's own projections, loaded by the user: record the catalog entry
        try:
            if projections_sha256(CATALOG_NAME) == digest:
                kind, where = "catalog", CATALOG_NAME
        except Exception:  # noqa: BLE001 - catalog not installed: stays in-memory
            pass
    if kind == "catalog":
        return ds, {"projections": where, "projections_sha256": digest, "projections_file_sha256": None}, \
            f"catalog entry {where!r}"
    if kind == "file":
        fsha = file_sha if file_sha is not None else sha256_file(where)
        return ds, {"projections": where, "projections_sha256": digest, "projections_file_sha256": fsha}, \
            f"file {where!r} (sha256 {fsha})"
    return ds, {"projections": None, "projections_sha256": digest, "projections_file_sha256": None}, \
        "in-memory xarray.Dataset (not saved: save it with eosdyn.to_netcdf and simulate from the file to make " \
        "this dataset regenerable)"


def _check_digests(projections_sha256, projections_file_sha256) -> None:
    """Both digests are None or 64 lower-case hexadecimal digits."""
    for name, value in (("projections_sha256", projections_sha256),
                        ("projections_file_sha256", projections_file_sha256)):
        if value is not None and not (isinstance(value, str) and len(value) == 64
                                      and all(c in "0123456789abcdef" for c in value)):
            raise ValueError(f"{name} must be 64 lower-case hexadecimal digits or None; got {value!r}")


def simulate(projections, *, t0=None, modes=None, feedback: int = 0, steps: int = 500,
             record_every: int | None = 1, stop: str = "never", tol: float = 0.0, diverge_loss: float = 1e8,
             dtype="float64", max_memory="2GB", projections_sha256: str | None = None,
             projections_file_sha256: str | None = None, optimizer: str = "gd", momentum=None, beta1=None,
             beta2=None, epsilon=None, batch_size: int | None = None, sharpness_variants=None,
             seed: int = 0, forces: bool = False) -> xr.Dataset:
    """GD on the k-mode quadratic (second-order Taylor) model of the network around t₀.

    Parameters
    ----------
    projections : xarray.Dataset, path-like or catalog entry name
        A ``cifar_fcn_projections`` dataset (``ntk_eigenvalue``, ``z_tilde``, ``Q_tilde``,
        coordinates ``t0``, ``eta``, ``n_examples``), a NetCDF path, or a catalog entry name
        such as ``"cifar_fcn_projections"`` (the stored projections of the paper's network).
    t0 : int, optional
        Expansion step (default: the first stored one).
    modes : int, optional
        Number k of top NTK modes (default: all stored).
    feedback : int, default 0
        Add this many stored feedback directions to the parameter basis (see
        :func:`reduced_model`). Without them the model keeps only span(u₁…u_k), which holds a
        few per cent of ‖Q₁u₁‖² in the stored run, and misses most of the curvature feedback
        that ends a catapult (docs/network.md).
    steps : int, default 500
        GD steps of the reduced model (the maximum; >= 0).
    record_every : int or None, default 1
        Record every this many steps; None records step 0 and the last step only.
    stop : {"never", "member", "batch"}, default "never"
        ``"never"``: run all ``steps`` (a diverged run is NaN after ``diverged_at``; a converged
        one keeps running). ``"member"``/``"batch"`` (the same for this single trajectory): stop
        at the fate; the trajectory is NaN after ``steps_taken``.
    tol : float, default 0
        Converged once ``loss`` < tol. The default 0 never converges: the reduced model is run
        for a fixed number of steps, as a comparison with the network trajectory needs.
    diverge_loss : float, default 1e8
        Diverged once ``loss`` exceeds this or the state stops being finite (the state is NaN
        afterwards).
    dtype : {"float64", "float32"}
    max_memory : int or str, default "2GB"
        Budget for the recorded trajectories (see :func:`eosdyn.kernels.qrm.run_gd`).
    projections_sha256 : str, optional
        The digest (:func:`projections_sha256`) the projections must have; a ``ValueError`` if
        they differ. Recorded in every dataset, so :func:`eosdyn.conventions.regenerate`
        rebuilds only from the very same projections.
    projections_file_sha256 : str, optional
        For a file ``projections``: the sha256 its bytes must have (recorded for file sources).
    optimizer : {"gd", "momentum", "nesterov", "rmsprop", "adam"}, default "gd"
        The update rule with learning rate η/n (conventions of :func:`eosdyn.qrm.sweep`:
        heavy ball v ← βv + g, θ ← θ − ηv; Nesterov θ ← θ − η(g + βv); RMSProp
        θ ← θ − ηg/(√s + ε); Adam θ ← θ − ηm̂/(√v̂ + ε), bias-corrected).
    momentum, beta1, beta2, epsilon : float, optional
        The optimizer's hyperparameters (defaults 0.9, 0.9, 0.999, 1e-8; β's in [0, 1), ε > 0).
    batch_size : int, optional
        Minibatch SGD over the k modes (1 ≤ b ≤ k): g_B = (k/b) J_Bᵀ z̃_B, batches drawn from
        ``SeedSequence(seed, spawn_key=(3,))``; default None: full batch.
    sharpness_variants : sequence of str, optional
        ``"hessian_sharpness"``, ``"preconditioned_sharpness"`` (rmsprop/adam),
        ``"batch_sharpness"``, recorded like ``sharpness`` (see :func:`eosdyn.qrm.sweep`); the
        optimizer's own sharpness is always recorded.
    forces : bool, default False
        Also record ``sharpening_force`` α, ``stabilization_strength`` β and
        ``predicted_oscillation`` 2α/β of the reduced model like ``sharpness`` (as
        :func:`eosdyn.qrm.sweep` with ``forces=True``); the trajectory is unchanged.
    seed : int, default 0
        Root of the minibatch stream (only used with ``batch_size``).

    Returns
    -------
    xarray.Dataset
        Dims ``step`` (GD steps of the reduced model, 0 = t₀; the non-index coordinate
        ``network_step`` = t₀ + step aligns it with the network trajectory) and ``mode``.
        Variables ``sharpness(step)`` = (η/n) λ_max of the reduced NTK (edge 2),
        ``z_tilde(step, mode)`` (the residual z̃ in the NTK eigenbasis at t₀, network units;
        mode 0 is z₁), ``loss(step)`` = ½ Σ_i z̃_i², the reduced model's loss (tol and
        diverge_loss act on it; the network's own loss has a further factor 1/n); the fates
        ``status``, ``steps_taken``, ``diverged_at``, ``converged_at`` (step counts, −1 =
        never) and ``final_sharpness``, ``final_loss``, ``final_z_tilde``. Scalar coordinates
        ``t0``, ``eta``, ``n_examples``, ``D`` = k, ``P`` = k + feedback, ``edge`` (the optimizer's
        edge of stability, 2 for GD; the ``sharpness`` role names the sharpness it applies to,
        as in :func:`eosdyn.qrm.sweep`). Attributes: the role
        map, ``tol``, ``diverge_loss``, ``stop``, ``projections_source`` (where the projections
        came from) and ``eosdyn_config`` (function ``eosdyn.taylor.simulate``).

    Raises
    ------
    ValueError, TypeError
        Before anything runs, naming what is wrong: projections without ``eta`` or
        ``n_examples`` (or with ``n_examples`` < 1), with zero modes or no ``t0``, a ``t0``
        not in the data, ``modes``/``steps``/``record_every``/``feedback``/``stop``/``tol``/
        ``diverge_loss`` out of range, values beyond the float32 range for
        ``dtype="float32"``, recordings above ``max_memory``; projections whose digest (or
        file sha256) differs from ``projections_sha256`` (``projections_file_sha256``), and
        ``projections=None`` (a regenerated dataset whose in-memory projections were not saved).

    Examples
    --------
    >>> import eosdyn, numpy as np, xarray as xr
    >>> proj = xr.Dataset({"ntk_eigenvalue": (("t0", "mode"), [[2.1e4, 1e4]]),
    ...                    "z_tilde": (("t0", "mode"), [[0.1, -0.2]]),
    ...                    "Q_tilde": (("t0", "mode", "mode_j", "mode_l"), np.full((1, 2, 2, 2), 5.0))},
    ...                   coords={"t0": [300], "eta": 0.01, "n_examples": 100})
    >>> ds = simulate(proj, steps=3)
    >>> ds.step.values.tolist(), ds.network_step.values.tolist(), round(float(ds.sharpness[0]), 3)
    ([0, 1, 2, 3], [300, 301, 302, 303], 2.1)
    >>> float(ds.loss[0]) == 0.5 * (0.1 ** 2 + 0.2 ** 2)
    True
    >>> ds.attrs["projections_source"][:22]
    'in-memory xarray.Datas'
    >>> eosdyn.conventions.regenerate(ds)
    Traceback (most recent call last):
    ...
    ValueError: projections=None: this dataset was simulated from in-memory projections (sha256 ...

    Heavy-ball momentum, with its edge 2(1 + β):

    >>> dm = simulate(proj, steps=3, optimizer="momentum", momentum=0.5)
    >>> float(dm.edge), bool(dm.loss[0] == ds.loss[0])
    (3.0, True)
    """
    optimizer, hyper = check_optimizer(optimizer, momentum=momentum, beta1=beta1, beta2=beta2, epsilon=epsilon)
    for name, v in hyper.items():
        lo, hi, lo_open, hi_open = HYPERPARAMETER_RANGES[name]
        hyper[name] = real_scalar(name, v, lo, hi, lo_open=lo_open, hi_open=hi_open)
    seed = check_int("seed", seed, 0)
    steps, every, stop, tol, diverge_loss, dt = check_gd_options(
        steps=steps, record_every=record_every, stop=stop, tol=tol, diverge_loss=diverge_loss, dtype=dtype,
        max_steps=MAX_STEPS_LIMIT)
    _check_digests(projections_sha256, projections_file_sha256)
    ds_in, source_params, source_text = _resolve_source(projections, projections_sha256, projections_file_sha256)
    Q, J0, z0, eta_eff, t0 = reduced_model(ds_in, t0=t0, modes=modes, feedback=feedback)
    for name, arr in (("Q_tilde", Q), ("ntk_eigenvalue (its square root, J0)", J0), ("z_tilde", z0),
                      ("eta / n_examples", eta_eff)):
        check_representable(name, arr, dt)
    k = z0.size
    p_dim = J0.shape[1]
    batch_size = check_batch_size(batch_size, k)
    if batch_size == k:
        batch_size = None  # the full batch
    variants = _variants(optimizer, batch_size, sharpness_variants)
    if not isinstance(forces, (bool, np.bool_)):
        raise TypeError(f"forces must be True or False; got {forces!r}")
    forces = bool(forces)
    kernel_variants = variants
    variants = variants + (FORCE_VARIABLES if forces else ())
    args = (Q.astype(dt), J0[None].astype(dt), z0[None].astype(dt), eta_eff)
    extra = {}
    if optimizer != "gd" or batch_size is not None or variants:
        extra = dict(optimizer=optimizer, **hyper, batch_size=batch_size, sharpness_variants=kernel_variants,
                     record_forces=forces,
                     batch_seed=np.random.SeedSequence(seed, spawn_key=(3,)))

    def run(n_steps, rec, tol_):
        return run_gd(*args, n_steps, rec, tol=tol_, diverge_loss=diverge_loss, record_sharpness=True,
                      record_z=True, max_memory=max_memory, **extra)

    # one trajectory: "member" and "batch" stop at its fate; "never" runs on after convergence
    # (a second run without tol continues it: the same arithmetic, so converged_at is exact)
    res = run(steps, every, tol)
    converged_at = int(res.steps_taken[0]) if res.status[0] == STATUS_VALUES["converged"] else -1
    if stop == "never" and converged_at >= 0 and converged_at < steps:
        res = run(steps, every, 0.0)
    status = res.status[0]
    if converged_at >= 0 and status != STATUS_VALUES["diverged"]:
        status = STATUS_VALUES["converged"]
    taken = int(res.steps_taken[0])
    if every:
        rsteps, sharp, loss, z = res.record_steps, res.sharpness[0], res.loss[0], res.z[0]
        var = {v: res.variants[v][0] for v in variants}
    else:  # step 0 and the last step taken
        first = run(0, 1, tol)
        rsteps = np.array([0, taken] if taken else [0], np.int64)
        sharp = np.concatenate([first.sharpness[0], res.final_sharpness[:1]])[: rsteps.size]
        loss = np.concatenate([first.loss[0], res.final_loss[:1]])[: rsteps.size]
        z = np.concatenate([first.z[0], res.final_z[:1]])[: rsteps.size]
        var = {v: np.concatenate([first.variants[v][0], res.final_variants[v][:1]])[: rsteps.size]
               for v in variants}
    fates = conventions.fate_variables(status, taken, res.diverged_at[0], converged_at)
    eta, n = _eta_and_n(ds_in)
    ds = xr.Dataset(
        {
            "sharpness": ("step", sharp),
            "loss": ("step", loss),
            "z_tilde": (("step", "mode"), z),
            **{name: ((), value) for name, value in fates.items()},
            "final_sharpness": ((), res.final_sharpness[0]),
            "final_loss": ((), res.final_loss[0]),
            "final_z_tilde": ("mode", res.final_z[0]),
            **{v: ("step", var[v]) for v in variants},
            **{f"final_{v}": ((), res.final_variants[v][0]) for v in variants},
        },
        coords={"step": rsteps.astype(np.int64), "mode": np.arange(k, dtype=np.int64),
                "network_step": ("step", (t0 + rsteps).astype(np.int64)), "t0": np.int64(t0),
                "eta": np.float64(eta), "n_examples": np.int64(n), "D": np.int64(k), "P": np.int64(p_dim),
                "edge": np.float64(optimizer_edge(optimizer, **hyper)), **{h: np.float64(v) for h, v in hyper.items()}},
    )
    ds["sharpness"].attrs = {"long_name": "sharpness η λ_max / n of the reduced NTK (edge at 2)", "units": "1"}
    ds["loss"].attrs = {"long_name": "loss of the reduced model ½ Σ_i z̃_i² over the kept modes "
                                     "(the network's loss has a further factor 1/n)", "units": "1"}
    ds["final_loss"].attrs = {"long_name": "reduced-model loss ½ Σ_i z̃_i² at the last step (steps_taken)",
                              "units": "1"}
    conventions.set_roles(ds, residual="z_tilde", sharpness=own_sharpness(optimizer, batch_size), loss="loss")
    params = {**source_params, "t0": t0, "modes": k, "feedback": p_dim - k, "steps": steps,
              "record_every": record_every if every else None, "stop": stop, "tol": tol,
              "diverge_loss": diverge_loss, "dtype": dt.name, "max_memory": max_memory}
    opt_attrs = {}
    if forces:
        params["forces"] = True
    if optimizer != "gd" or batch_size is not None or kernel_variants:  # GD runs keep today's configuration
        params.update(optimizer=optimizer, **hyper, batch_size=batch_size, sharpness_variants=list(kernel_variants),
                      seed=seed)
        opt_attrs = {"optimizer": optimizer, "batch_size": int(batch_size or 0),
                     "optimizer_convention": OPTIMIZER_CONVENTIONS[optimizer]}
    return conventions.label(
        ds, model="taylor", title=f"second-order Taylor model of the CIFAR FCN around step {t0}, {k} NTK modes"
        + (f" + {p_dim - k} feedback directions" if p_dim > k else ""),
        equations=EQUATIONS, config={"function": PUBLIC_NAME, "parameters": params},
        attrs={"tol": tol, "diverge_loss": diverge_loss, "stop": stop, "projections_source": source_text,
               "projections_sha256": source_params["projections_sha256"], **opt_attrs},
    )


#: the model parameters of the Taylor producers (simulate and its flows)
_PARAMS = (
    Param("projections", "projections of the network (catalog entry, NetCDF path or Dataset)",
          domain="a cifar_fcn_projections dataset", dim=False),
    Param("t0", "GD step t0 of the expansion point", domain="one of projections.t0", dim=False),
    Param("modes", "number k of top NTK modes", domain="[1, stored modes]", dim=False),
    Param("feedback", "number of feedback directions", domain="[0, stored feedback directions]", dim=False),
)

register(System(
    name=PUBLIC_NAME, kind="parameter_gd",
    title="second-order Taylor model of the CIFAR FCN around t0 (k NTK modes)",
    equations=EQUATIONS,
    params=_PARAMS,
    state=("z_tilde",),
    roles={"residual": "z_tilde", "sharpness": "sharpness", "loss": "loss"},
    example={"projections": CATALOG_NAME, "t0": 4200, "modes": 4, "feedback": 2, "steps": 30},
    function="eosdyn.models.taylor.simulate",
    options=("steps", "record_every", "stop", "tol", "diverge_loss", "dtype", "optimizer", "batch_size",
             "sharpness_variants", "forces"),
    defaults={**DEFAULTS, "optimizer": "gd", "batch_size": None, "sharpness_variants": None, "forces": False},
    notes="tol = 0: the reduced model runs for a fixed number of steps (a comparison with the network "
          "trajectory); loss = ½ Σ z̃_i² is the reduced model's own loss. The initial state z_tilde is "
          "projections.z_tilde at t0 (not a scalar parameter).",
))


# --------------------------------------------------------------------------- central flow (issue 15)
CENTRAL_NAME = "eosdyn.taylor.central_flow"


class _TaylorFlowInputs:
    """The one member of a Taylor-model flow: the reduced arrays, its coordinates, φ₀ = 0."""

    def __init__(self, Q, J0, z0, eta_eff, coords, edge, band, kappa):
        from ..drivers._common import Members

        self.Q, self.J0, self.z0, self.eta_eff = Q, J0, z0, eta_eff
        self.edge, self.band, self.kappa = edge, band, kappa
        self.members = Members({})
        self.y0 = np.zeros((1, J0.shape[1]))
        self.coords = coords


def _taylor_flow_rhs(t, y, Q, J0, z0, eta, edge, band, kappa):
    from ..kernels.derivatives import _flow_rhs

    return _flow_rhs(t, y, Q, J0, z0, eta, edge, band, kappa)


def _taylor_flow_observe(Y, inp):
    from ..kernels.derivatives import flow_observables, model_state

    n, K, _ = Y.shape
    k = inp.z0.size
    out = {name: np.full((n, K), np.nan) for name in ("sharpness", "hessian_sharpness", "loss", "predicted_loss",
                                                      "oscillation_variance")}
    z_t = np.full((n, K, k), np.nan)
    for i in range(n):
        for j in range(K):
            if not np.all(np.isfinite(Y[i, j])):
                continue
            z, J = model_state(inp.Q, inp.J0, inp.z0, Y[i, j])
            o = flow_observables(inp.Q, inp.J0, inp.z0, Y[i, j], inp.eta_eff, inp.band, inp.kappa, inp.edge)
            for name in ("hessian_sharpness", "loss", "predicted_loss", "oscillation_variance"):
                out[name][i, j] = o[name]
            out["sharpness"][i, j] = inp.eta_eff * float(np.linalg.eigvalsh(J @ J.T)[-1])
            z_t[i, j] = z
    return {**{name: (v, ()) for name, v in out.items()}, "z_tilde": (z_t, ("mode",)), "phi": (Y, ("param",))}


_FLOW_ATTRS = {
    "sharpness": {"long_name": "sharpness η λ_max / n of the reduced NTK (edge at 2)", "units": "1"},
    "hessian_sharpness": {"long_name": "Hessian sharpness (η/n) λ_max(H) of the reduced model", "units": "1"},
    "loss": {"long_name": "loss of the reduced model ½ Σ_i z̃_i² over the kept modes", "units": "1"},
    "phi": {"long_name": "parameters φ of the reduced model along (u_1..u_k, w_1..w_m)", "units": "1"},
    "final_phi": {"long_name": "parameters φ at the member's last sample", "units": "1"},
}


def central_flow(projections, *, t0=None, modes=None, feedback: int = 0, times, edge: bool = True,
                 band: float = 0.1, kappa: float = 4.0, tol: float = 0.0, diverge_loss: float = 1e8,
                 rtol: float = 1e-10, atol: float = 1e-12, method: str = "DOP853", max_evals: int = 200_000,
                 projections_sha256: str | None = None, projections_file_sha256: str | None = None) -> xr.Dataset:
    """Central flow (or, with ``edge=False``, gradient flow) of the k-mode Taylor model around t₀.

    The flow sibling of :func:`simulate`: the reduced model of :func:`reduced_model`
    (f(φ) = z̃₀ + J₀φ + ½Q̃(φ, φ), learning rate η/n) integrated from φ = 0 with the model's exact
    derivatives (:func:`eosdyn.kernels.derivatives.central_velocity`), time in GD steps of the
    reduced model (``network_step`` = t₀ + time). Definitions: ``docs/flows.md``.

    Parameters
    ----------
    projections, t0, modes, feedback, projections_sha256, projections_file_sha256
        As in :func:`simulate`.
    times : 1-D array
        Sample times in GD steps (finite, ≥ 0, strictly increasing).
    edge : bool, default True
        False: gradient flow (no oscillation term).
    band, kappa : float
        The edge subspace (η λ ≥ 2 − ``band``, in [0, 2)) and the relaxation rate to the edge
        (≥ 0), as in :func:`eosdyn.qrm.central_flow`.
    tol, diverge_loss : float
        Converged once ``loss`` < tol (default 0: never), diverged once above ``diverge_loss``.
    rtol, atol, method, max_evals
        Integrator options (:func:`eosdyn.kernels.integrate.solve_batch`).

    Returns
    -------
    xarray.Dataset
        Dims ``time``, ``mode``, ``param``: ``sharpness`` ((η/n) λ_max of the reduced NTK),
        ``hessian_sharpness``, ``loss``, ``predicted_loss`` (L + ½⟨Σ, H⟩), ``oscillation_variance``
        (tr Σ), ``z_tilde``, ``phi``; the flow fates (``status``, ``diverged_at``,
        ``converged_at``, ``t_stop``) and ``final_*``; a failed integration is the status
        ``failed``, never an exception.

    Examples
    --------
    >>> import eosdyn
    >>> ds = eosdyn.taylor.central_flow("cifar_fcn_projections", t0=4200, modes=2, times=[0.0, 1.0, 2.0])
    >>> ds.z_tilde.dims, str(eosdyn.conventions.decode_status(ds.status).item())
    (('time', 'mode'), 'max_steps')
    """
    from .._validate import check_times
    from ..drivers import flow as _flow
    from ..kernels.derivatives import _check_band_kappa

    if not isinstance(edge, (bool, np.bool_)):
        raise TypeError(f"edge must be True or False; got {edge!r}")
    band, kappa = _check_band_kappa(band, kappa)
    tv = check_times(times)
    _check_digests(projections_sha256, projections_file_sha256)
    ds_in, source_params, source_text = _resolve_source(projections, projections_sha256, projections_file_sha256)
    Q, J0, z0, eta_eff, t0 = reduced_model(ds_in, t0=t0, modes=modes, feedback=feedback)
    eta, n = _eta_and_n(ds_in)
    k, p_dim = z0.size, J0.shape[1]
    coords = {"mode": np.arange(k, dtype=np.int64), "t0": np.int64(t0), "eta": np.float64(eta),
              "n_examples": np.int64(n), "D": np.int64(k), "P": np.int64(p_dim), "edge": np.float64(2.0)}
    Q, J0, z0 = (np.asarray(a, dtype=np.float64) for a in (Q, J0, z0))
    inp = _TaylorFlowInputs(Q, J0, z0, float(eta_eff), coords, bool(edge), band, kappa)
    spec = _flow.Flow(_CENTRAL_RECORD, lambda **_: (inp, [(Q, J0, z0, float(eta_eff), bool(edge), band, kappa)]),
                      _taylor_flow_rhs, _taylor_flow_observe, var_attrs=_FLOW_ATTRS)
    params = {**source_params, "t0": t0, "modes": k, "feedback": p_dim - k, "times": tv.tolist(),
              "edge": bool(edge), "band": band, "kappa": kappa, "tol": tol, "diverge_loss": diverge_loss,
              "rtol": rtol, "atol": atol, "method": method, "max_evals": max_evals}
    ds = _flow.run(spec, params, {}, times=times, tol=tol, diverge_loss=diverge_loss, rtol=rtol, atol=atol,
                   method=method, max_evals=max_evals)
    ds = ds.assign_coords(network_step=("time", t0 + ds["time"].values))
    ds["network_step"].attrs = {"long_name": "network GD step t0 + time", "units": "1"}
    ds.attrs.update(projections_source=source_text, projections_sha256=source_params["projections_sha256"],
                    edge_band=band, edge_rate=kappa, flow="central" if edge else "gradient")
    return ds


_CENTRAL_RECORD = register(System(
    name=CENTRAL_NAME, kind="flow",
    title="second-order Taylor model of the CIFAR FCN around t0, central flow",
    equations="dφ/dt = −(η/n) [∇L + ½ Σ_ij X_ij ∇³L[u_i, u_j]] (Cohen et al. 2025) on " + EQUATIONS,
    params=_PARAMS,
    state=("z_tilde",),
    roles={"residual": "z_tilde", "sharpness": "sharpness", "loss": "loss"},
    example={"projections": CATALOG_NAME, "t0": 4200, "modes": 3, "feedback": 1, "times": [0.0, 2.0, 5.0]},
    function="eosdyn.models.taylor.central_flow", flow_of=PUBLIC_NAME,
    options=("times", "tol", "diverge_loss", "rtol", "atol", "max_evals"),
    defaults={"tol": 0.0, "diverge_loss": 1e8, "rtol": 1e-10, "atol": 1e-12, "max_evals": 200_000},
    notes="φ0 = 0 (the expansion point); exact Hessian eigenpairs and third derivatives of the reduced model.",
))

__all__ += ["central_flow"]
