"""Fixed points and period-2 orbits of the P = 2 toy map, found directly.

The map F(z̃, T) is :func:`eosdyn.kernels.maps.two_param_step` with λ = −ε (or −1/a) and Ẽ; it is
never re-derived here. Roots of F(x) − x and F(F(x)) − x are found by Newton's method from a grid
of starts, all starts at once (vectorised), with Jacobians by the complex-step derivative (the
map is a polynomial, so Im F(x + i h e_j)/h is exact to rounding). Roots are deduplicated.

**The fixed line.** Every point with z̃ = 0 is a fixed point: z̃' = z̃(1 − T + ½ z̃ T(1)) vanishes
and T' = T − 2 z̃ T(1) + z̃² T(2) = T. At (0, T) the Jacobian is lower triangular,

    ∂z̃'/∂z̃ = 1 − T,   ∂z̃'/∂T = 0,   ∂T'/∂z̃ = −2 T(1)|_{z̃=0},   ∂T'/∂T = 1,

so its eigenvalues are 1 − T (transverse) and 1 (neutral, along the line). The line is
transversally stable iff abs(1 − T) < 1, i.e. 0 < T < 2, whatever ε (or a) and Ẽ; a trajectory that
converges lands on it at some T∞ ∈ (0, 2] and z̃ decays like (1 − T∞)^t. :func:`fixed_points`
reports the line's multiplier on a grid of T (from the computed Jacobian) next to the isolated
fixed points (z̃ ≠ 0). Period-2 orbits are the solutions of F(F(x)) = x that are not fixed
points; the line is fixed by F∘F too and is excluded.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .._validate import check_int, check_range
from ..conventions import set_variable_attrs
from ._common import check_integer, check_real

__all__ = ["fixed_points", "period_two_orbits", "map_jacobian"]

#: names of the P = 2 map's state (z̃, T) in the results: the paper's names, labelled by VARIABLES
_STATE = ("z", "T")

_H = 1e-30


def _lam(eps, a) -> float:
    """λ of the P = 2 map from exactly one scalar ``eps`` or ``a``, by
    :func:`eosdyn.theory.toy.second_eigenvalue` (the one place of the conversion and its check)."""
    from ..theory.toy import second_eigenvalue

    for name, v in (("eps", eps), ("a", a)):
        if v is not None and np.ndim(v):
            raise ValueError(f"{name} must be a scalar for fixed_points/period_two_orbits; got shape {np.shape(v)}")
    return float(second_eigenvalue(eps=eps, a=a))


def _F(z, T, lam, E, n):
    from ..kernels.maps import two_param_step

    for _ in range(n):
        z, T = two_param_step(z, T, lam, E)
    return z, T


def map_jacobian(z, T, *, lam: float, E_tilde: float = 0.0, n: int = 1):
    """Jacobian of the n-fold map F^n at points (z, T) by the complex-step derivative.

    Returns an array of shape ``z.shape + (2, 2)`` with ``[..., i, j] = ∂F_i/∂x_j``.

    ``z`` and ``T`` must be real (the complex step needs real points; complex input is a
    ``TypeError`` naming it), ``lam`` (λ, the second eigenvalue of Q) and ``E_tilde`` (Ẽ = η E)
    finite reals and ``n`` an integer in [1, 64].

    Examples
    --------
    >>> import numpy as np
    >>> J = map_jacobian(np.array([0.0]), np.array([1.5]), lam=-0.1)
    >>> np.round(J[0], 12)          # at z = 0: [[1 - T, 0], [-2 T(1), 1]]
    array([[-0.5,  0. ],
           [-2.7,  1. ]])
    """
    lam = check_real("lam", lam)
    E = check_real("E_tilde", E_tilde)
    n = check_integer("n", n, 1, MAX_N)
    z, T = _real_points("z", z), _real_points("T", T)
    try:
        np.broadcast(z, T)
    except ValueError:
        raise ValueError(f"z and T must broadcast against each other; got shapes {z.shape} and {T.shape}") from None
    return _jacobian(z, T, lam, E, n)


#: most map iterations map_jacobian composes
MAX_N = 64


def _real_points(name, v) -> np.ndarray:
    try:
        a = np.asarray(v)
    except Exception as err:
        raise TypeError(f"{name} must be a real number or array; got {v!r}") from err
    if a.dtype.kind == "c":
        raise TypeError(f"{name} must be real; got complex values (the complex-step derivative needs real points)")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real number or array; got dtype {a.dtype}")
    return a.astype(np.float64)


def _jacobian(z, T, lam, E, n):
    z = np.asarray(z, dtype=np.complex128)
    T = np.asarray(T, dtype=np.complex128)
    dz = _F(z + 1j * _H, T, lam, E, n)
    dT = _F(z, T + 1j * _H, lam, E, n)
    J = np.empty(np.broadcast(z, T).shape + (2, 2))
    J[..., 0, 0] = dz[0].imag / _H
    J[..., 1, 0] = dz[1].imag / _H
    J[..., 0, 1] = dT[0].imag / _H
    J[..., 1, 1] = dT[1].imag / _H
    return J


def _newton(z, T, lam, E, n, iters=80):
    """Vectorised Newton on F^n(x) − x from every start at once."""
    with np.errstate(all="ignore"):
        for _ in range(iters):
            fz, fT = _F(z, T, lam, E, n)
            gz, gT = fz - z, fT - T
            J = _jacobian(z, T, lam, E, n)
            a, b = J[..., 0, 0] - 1, J[..., 0, 1]
            c, d = J[..., 1, 0], J[..., 1, 1] - 1
            det = a * d - b * c
            dz = -(d * gz - b * gT) / det
            dT = -(-c * gz + a * gT) / det
            bad = ~np.isfinite(dz) | ~np.isfinite(dT)
            z = np.where(bad, np.nan, z + dz)
            T = np.where(bad, np.nan, T + dT)
        fz, fT = _F(z, T, lam, E, n)
        res = np.hypot(fz - z, fT - T)
    return z, T, res


def _accept(z, T, tol):
    """Residual threshold: relative to the point's size *and* to its distance abs(z) from the fixed
    line, so that Newton iterates creeping towards the (degenerate) line are not taken as roots."""
    with np.errstate(invalid="ignore"):
        return tol * np.minimum(1.0, np.abs(z)) * np.maximum(1.0, np.hypot(z, T))


def _starts(z_range, T_range, n_starts):
    zs = np.linspace(*z_range, n_starts)
    Ts = np.linspace(*T_range, n_starts)
    Z, TT = np.meshgrid(zs, Ts, indexing="ij")
    return Z.ravel(), TT.ravel()


def _dedupe(z, T, tol):
    """Unique points (first of each cluster within ``tol`` in max-norm), sorted by (z, T)."""
    order = np.lexsort((T, z))
    kept: list[int] = []
    for i in order:  # loop over candidate roots (a few dozen), not over trajectories
        if all(max(abs(z[i] - z[k]), abs(T[i] - T[k])) > tol for k in kept):
            kept.append(i)
    return np.array(kept, dtype=np.int64)


def _check_box(z_range, T_range, n_starts, tol):
    out = []
    for name, r in (("z_range", z_range), ("T_range", T_range)):
        try:
            arr = np.asarray(r)
        except Exception:
            arr = np.asarray([None])
        if arr.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be a pair of real numbers (lo, hi); got {r!r}")
        arr = arr.astype(float)
        if arr.shape != (2,) or not np.all(np.isfinite(arr)) or not arr[0] < arr[1]:
            raise ValueError(f"{name} must be a finite interval (lo, hi) with lo < hi; got {r!r}")
        out.append((float(arr[0]), float(arr[1])))
    check_real("tol", tol, 0, lo_open=True)
    return (*out, check_int("n_starts", n_starts, 2, 2000))


def _eig_vars(J, dims):
    ev = np.linalg.eigvals(J)
    idx = np.argsort(-np.abs(ev), axis=-1)
    ev = np.take_along_axis(ev, idx, axis=-1)
    return {"multiplier_real": (dims + ("eig",), ev.real), "multiplier_imag": (dims + ("eig",), ev.imag),
            "stable": (dims, np.abs(ev).max(axis=-1) < 1)}


def _labelled(ds: xr.Dataset) -> xr.Dataset:
    """CF labels of every result variable from :data:`eosdyn.conventions.VARIABLES`."""
    for k in ds.variables:
        set_variable_attrs(ds[k], k, overwrite=True)
    return ds


def _from_dataset(ds, eps, a, E):
    """(λ, Ẽ, eps, a): λ from ``eps``/``a`` when given, else from the dataset's coordinate ``lam``;
    Ẽ from ``E_tilde`` when given, else the dataset's coordinate ``E_tilde``, else 0."""
    if ds is not None and not isinstance(ds, xr.Dataset):
        raise TypeError(f"ds must be an xarray.Dataset of the P = 2 map or None; got {type(ds).__name__}")
    lam = None
    if ds is not None and eps is None and a is None:
        if "lam" not in ds.variables:
            raise ValueError("the dataset has no coordinate 'lam' (second eigenvalue of Q); pass eps= or a=")
        lam = ds["lam"]
    if E is None:
        E = ds["E_tilde"] if ds is not None and "E_tilde" in ds.variables else 0.0
    vals = []
    for name, v in (("lam", lam), ("E_tilde", E)):
        if isinstance(v, xr.DataArray):
            if v.size != 1:
                raise ValueError(f"{name} must be a scalar for fixed_points/period_two_orbits; the dataset has "
                                 f"{v.size} values (select one member first, e.g. with ds.isel)")
            v = float(v.values)
        vals.append(v)
    lam, E = vals
    if lam is None:
        lam = _lam(eps, a)
    else:
        lam = check_real("lam", lam, -1, 1, hi_open=True)
    check_range("E_tilde", E)
    return lam, float(E), eps, a


def _params_attrs(lam, E, eps, a):
    extra = {"eps": float(eps)} if eps is not None else {"a": float(a)} if a is not None else {}
    return {"lam": lam, "E_tilde": float(E), **extra}


def fixed_points(ds: xr.Dataset | None = None, *, eps: float | None = None, a: float | None = None,
                 E_tilde: float | None = None,
                 z_range=(-2.0, 2.0), T_range=(-1.0, 6.0), n_starts: int = 40, line_T=None,
                 tol: float = 1e-10) -> xr.Dataset:
    """Fixed points of the P = 2 map (Eq. 65-66): isolated ones by root finding, plus the z̃ = 0 line.

    Parameters
    ----------
    ds : xarray.Dataset, optional
        A P = 2 map dataset whose scalar coordinates ``lam`` (λ) and ``E_tilde`` (Ẽ) are used
        when the keywords are not given (so ``ds.eos.fixed_points()`` works).
    eps, a : float
        At most one: λ = −ε (ε ∈ (0, 1]) or λ = −1/a (``abs(a) > 1`` or a = 1; a = −1, Q = identity,
        is refused), converted by :func:`eosdyn.theory.toy.second_eigenvalue`; without ``ds``
        exactly one is needed.
    E_tilde : float, default: the dataset's ``E_tilde``, else 0
        Ẽ = η E, the rescaled conserved quantity.
    z_range, T_range : (float, float)
        Box of Newton starts (``n_starts`` × ``n_starts`` grid).
    line_T : array, optional
        T values at which the stability of the fixed line z̃ = 0 is reported (default: 201 values
        spanning ``T_range``).
    tol : float
        Finite and > 0. Residual abs(F(x) − x) accepted as a root, relative to max(1, abs(x)) · min(1, abs(z̃)); points
        within 1e-7 (max-norm) are merged, and roots
        with abs(z̃) < 1e-8 belong to the line.

    Returns
    -------
    xarray.Dataset
        Dim ``point``: ``z``, ``T``, ``residual``, ``multiplier_real``/``multiplier_imag`` (dim
        ``eig``, largest modulus first), ``stable``. Dim ``line_T``: ``line_multiplier`` (the
        transverse eigenvalue ∂z̃'/∂z̃ = 1 − T from the Jacobian) and ``line_stable``
        (``|1 − T| < 1``). Attributes ``lam``, ``E_tilde`` and ``eps`` or ``a`` when given.

    Examples
    --------
    >>> fp = fixed_points(eps=0.1, line_T=[0.5, 1.5, 2.5])
    >>> fp.line_multiplier.values, fp.line_stable.values
    (array([ 0.5, -0.5, -1.5]), array([ True,  True, False]))
    """
    lam, E, eps, a = _from_dataset(ds, eps, a, E_tilde)
    z_range, T_range, n_starts = _check_box(z_range, T_range, n_starts, tol)
    z0, T0 = _starts(z_range, T_range, n_starts)
    z, T, res = _newton(z0, T0, lam, E, 1)
    ok = np.isfinite(z) & np.isfinite(T) & (np.abs(z) > 1e-8) & (res < _accept(z, T, tol))
    z, T, res = z[ok], T[ok], res[ok]
    keep = _dedupe(z, T, 1e-7)
    z, T, res = z[keep], T[keep], res[keep]
    J = _jacobian(z, T, lam, E, 1) if z.size else np.empty((0, 2, 2))
    line_T = np.linspace(*T_range, 201) if line_T is None else _real_points("line_T", line_T)
    if line_T.ndim != 1 or line_T.size > 1_000_000:
        raise ValueError(f"line_T must be a 1-D array of at most 1e6 values; got shape {line_T.shape}")
    check_range("line_T", line_T)
    JL = _jacobian(np.zeros_like(line_T), line_T, lam, E, 1)
    # the points' state (z̃, T) under the state's names, on dim "point"
    data = {**dict(zip(_STATE, ((("point",), z), (("point",), T)))), "residual": (("point",), res),
            **_eig_vars(J, ("point",)),
            "line_multiplier": (("line_T",), JL[:, 0, 0]), "line_stable": (("line_T",), np.abs(JL[:, 0, 0]) < 1)}
    ds = _labelled(xr.Dataset(data, coords={"line_T": ("line_T", line_T)}))
    ds.attrs.update(_params_attrs(lam, E, eps, a))
    ds.attrs["fixed_line"] = "every point (0, T) is fixed; eigenvalues 1 - T and 1"
    return ds


def period_two_orbits(ds: xr.Dataset | None = None, *, eps: float | None = None, a: float | None = None,
                      E_tilde: float | None = None,
                      z_range=(-2.0, 2.0), T_range=(-1.0, 6.0), n_starts: int = 40,
                      tol: float = 1e-10) -> xr.Dataset:
    """Period-2 orbits {x, F(x)} of the P = 2 map: roots of F(F(x)) − x that are not fixed points.

    Parameters as :func:`fixed_points` (``ds``, ``eps``/``a``, ``E_tilde``, ``z_range``, ``T_range``,
    ``n_starts``, ``tol``). Newton on F∘F − id from a grid of starts; roots with abs(z̃) < 1e-8 (the fixed line) or
    abs(F(x) − x) < 1e-7 (fixed points) are dropped; the two points of an orbit are merged into one
    entry (dim ``phase``: the point with the smaller z̃ first).

    Returns
    -------
    xarray.Dataset
        Dims ``orbit``, ``phase`` (2), ``eig`` (2): ``z``, ``T`` (orbit, phase), ``residual``,
        ``multiplier_real``/``multiplier_imag`` (eigenvalues of D(F∘F), the same at both points),
        ``stable``.

    Examples
    --------
    >>> orb = period_two_orbits(eps=1.0, n_starts=20)   # the catapult map
    >>> sorted(orb.sizes)
    ['eig', 'orbit', 'phase']
    """
    lam, E, eps, a = _from_dataset(ds, eps, a, E_tilde)
    z_range, T_range, n_starts = _check_box(z_range, T_range, n_starts, tol)
    z0, T0 = _starts(z_range, T_range, n_starts)
    z, T, res = _newton(z0, T0, lam, E, 2)
    with np.errstate(all="ignore"):
        fz, fT = _F(z, T, lam, E, 1)
        move = np.hypot(fz - z, fT - T)
    ok = (np.isfinite(z) & np.isfinite(T) & (np.abs(z) > 1e-8) & (res < _accept(z, T, tol))
          & (move > 1e-7 * np.maximum(1.0, np.hypot(z, T))))
    z, T, fz, fT, res = z[ok], T[ok], fz[ok], fT[ok], res[ok]
    first = z <= fz   # canonical representative: the point with the smaller z
    za, Ta = np.where(first, z, fz), np.where(first, T, fT)
    zb, Tb = np.where(first, fz, z), np.where(first, fT, T)
    keep = _dedupe(za, Ta, 1e-7)
    za, Ta, zb, Tb, res = za[keep], Ta[keep], zb[keep], Tb[keep], res[keep]
    J = _jacobian(za, Ta, lam, E, 2) if za.size else np.empty((0, 2, 2))
    # the orbits' state (z̃, T) under the state's names, on dims ("orbit", "phase")
    data = {**dict(zip(_STATE, ((("orbit", "phase"), np.stack([za, zb], -1).reshape(-1, 2)),
                                (("orbit", "phase"), np.stack([Ta, Tb], -1).reshape(-1, 2))))),
            "residual": (("orbit",), res), **_eig_vars(J, ("orbit",))}
    ds = _labelled(xr.Dataset(data))
    ds.attrs.update(_params_attrs(lam, E, eps, a))
    return ds
