"""Closed-form theory of the one-datapoint models (Section 3, Appendix B).

Every function works on the rescaled coordinates of Eq. 7 (z̃ = η z, T = T(0) = η λ_max) of the
P = 2 model whose Hessian Q has eigenvalues {1, λ}. The second eigenvalue is given either as
``eps`` (λ = −ε, 0 < ε ≤ 1, the EOS model of Eq. 14-15) or as ``a`` (λ = −1/a, a ≥ 1 or a < −1, the
general form of Eq. 65-66); exactly one of them. ``E_tilde`` is the conserved Ẽ = η E = T(−1) − 2z̃
(default 0).

The map itself lives in one place, :func:`eosdyn.kernels.maps.two_param_step`; the one- and
two-step maps, the two-step nullclines and the EOS coordinate below are all evaluated through it.

Inputs may be scalars, NumPy arrays (they broadcast) or :class:`xarray.DataArray` objects
(then the result is a DataArray with the broadcast dims, computed through
:func:`xarray.apply_ufunc`, lazily for dask-backed inputs).

Summary
-------
* :func:`nullcline_z`, :func:`nullcline_T` — one-step nullclines f_z, f_T (Eq. 69-70).
* :func:`one_step_map`, :func:`two_step_map` — the map (Eq. 14-15 / 65-66) and its square.
* :func:`two_step_polynomial` — the cubic in T whose roots are the two-step nullclines
  (Eq. 71-72, the corrected Eq. 17).
* :func:`two_step_nullcline_z`, :func:`two_step_nullcline_T` — the branches through (0, 2).
* :func:`eos_coordinate` — y = T − f_z^{(2)}(z̃) (Section 3).
* :func:`two_step_coefficients`, :func:`theorem31_y_star`, :func:`theorem31_sharpness`,
  :func:`theorem31_sharpness_fit` — Eq. 18-19 and Theorem 3.1.
* :func:`allowed_region`, :func:`theta_from_state`, :func:`state_from_theta` — Eq. 67-68 and the
  map between (z̃, T, Ẽ, η) and a parameter vector θ ∈ R² for Q = diag(1, λ).
* :func:`catapult_sign` — the catapult rule sign(ΔT) = sign(T − 4) for Ẽ = 0 (Eq. 13).
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np
import xarray as xr

from .._validate import check_range
from ..kernels.maps import two_param_step
from .continuation import branch as _branch
from .continuation import coefficients as _coeffs

__all__ = [
    "second_eigenvalue",
    "nullcline_z",
    "nullcline_T",
    "one_step_map",
    "two_step_map",
    "two_step_polynomial",
    "two_step_nullcline_z",
    "two_step_nullcline_T",
    "eos_coordinate",
    "TwoStepCoefficients",
    "two_step_coefficients",
    "theorem31_sharpness",
    "theorem31_sharpness_fit",
    "THEOREM31_EPS2_COEFFICIENT",
    "theorem31_y_star",
    "allowed_region",
    "catapult_sign",
    "theta_from_state",
    "state_from_theta",
]

#: ε² coefficient c of lim η λ_max = 2 − ε/2 + c ε² + O(ε³) (Theorem 3.1, Ẽ = 0): the limit does
#: not depend on the start, and a 40-digit iteration of the map extrapolated to ε → 0 gives
#: c = −0.84376 (docs/theory.md; checked in tests/test_theorem31.py). Numerically
#: indistinguishable from −27/32, which is not derived.
THEOREM31_EPS2_COEFFICIENT = -0.8438


# ----------------------------------------------------------------------------- validation
def _is_xr(*args) -> bool:
    return any(isinstance(x, xr.DataArray) for x in args)


def _check_real(name: str, value, *, allow_nan: bool = True):
    """Raise ValueError unless ``value`` is real numeric (NaN/inf allowed for state inputs)."""
    arr = value.data if isinstance(value, xr.DataArray) else np.asarray(value)
    if getattr(arr, "dtype", np.dtype(object)).kind not in "iufb":
        raise ValueError(f"{name} must be a real number or an array of real numbers; got {value!r}")
    if not allow_nan:
        check_range(name, value)
    return value


def _check_eps(eps):
    _check_real("eps", eps)
    return check_range("eps", eps, 0.0, 1.0, lo_open=True)


def _check_a(a):
    _check_real("a", a)
    arr = np.asarray(a.values if isinstance(a, xr.DataArray) else a, dtype=float)
    bad = ~(np.isfinite(arr) & ((arr >= 1.0) | (arr < -1.0)))
    if bad.any():
        raise ValueError("a must be finite with a >= 1 or a < -1 (a = -1, i.e. Q = identity, has an empty "
                         f"allowed region and is refused); got {float(arr[bad].ravel()[0])!r}")
    return a


def _check_E(E):
    _check_real("E_tilde", E)
    return check_range("E_tilde", E)


def second_eigenvalue(*, eps=None, a=None):
    """The second eigenvalue λ of Q (the largest is 1) from exactly one of ``eps`` or ``a``.

    λ = −ε for the EOS model (Eq. 14-15, 0 < ε ≤ 1) and λ = −1/a in the general form
    (Eq. 61, 65-66, a ≥ 1 or a < −1), so λ ∈ [−1, 1). This is the one place where the
    conversion is written and both parameters are validated (every simulation, theory
    function and analysis uses it); a = −1 (λ = 1, Q = identity) has an empty allowed region
    and is refused.

    Parameters
    ----------
    eps : float, array or DataArray, optional
        ε in (0, 1].
    a : float, array or DataArray, optional
        a ≥ 1 or a < −1.

    Returns
    -------
    float, ndarray or DataArray
        λ, same type as the input.

    Raises
    ------
    ValueError
        If both or neither of ``eps``/``a`` are given or a value is out of range.

    Examples
    --------
    >>> second_eigenvalue(eps=0.1)
    -0.1
    >>> second_eigenvalue(a=-2.0)
    0.5
    >>> second_eigenvalue(a=-1.0)
    Traceback (most recent call last):
    ...
    ValueError: a must be finite with a >= 1 or a < -1 (a = -1, i.e. Q = identity, has an empty allowed region and is refused); got -1.0
    """
    if (eps is None) == (a is None):
        raise ValueError("give exactly one of eps (in (0, 1]) and a (a >= 1 or a < -1)")
    if eps is not None:
        _check_eps(eps)
        lam = -eps if isinstance(eps, xr.DataArray) else -np.asarray(eps, dtype=float)
    else:
        _check_a(a)
        lam = -1.0 / a if isinstance(a, xr.DataArray) else -1.0 / np.asarray(a, dtype=float)
    return _out(lam)


def _params(eps, a, E):
    lam = second_eigenvalue(eps=eps, a=a)
    _check_E(E)
    return lam, E


def _out(x):
    """0-d arrays become Python floats/bools; arrays stay arrays."""
    if isinstance(x, np.generic) or (isinstance(x, np.ndarray) and x.ndim == 0):
        return x.item()
    return x


def _apply(func, *args, n_out: int = 1, name=None, long_name=None, dtype=float, core_out=None,
           out_sizes=None, out_coords=None):
    """Apply an element-wise NumPy ``func`` to scalars/arrays or DataArrays (xarray in → out)."""
    if _is_xr(*args):
        out_core = core_out if core_out is not None else [[] for _ in range(n_out)]
        res = xr.apply_ufunc(
            func, *args, output_core_dims=out_core, dask="parallelized",
            output_dtypes=[dtype] * n_out,
            dask_gufunc_kwargs={"output_sizes": out_sizes} if out_sizes else None)
        res_t = res if n_out > 1 else (res,)
        names = name if isinstance(name, tuple) else (name,) * n_out
        longs = long_name if isinstance(long_name, tuple) else (long_name,) * n_out
        for r, nm, ln in zip(res_t, names, longs):
            if nm is not None:
                r.name = nm
            r.attrs = {"long_name": ln, "units": "1"} if ln else {}
            if out_coords:
                for k, v in out_coords.items():
                    if k in r.dims:
                        r.coords[k] = v
        return res
    res = func(*[np.asarray(x, dtype=float) for x in args])
    if n_out > 1:
        return tuple(_out(r) for r in res)
    return _out(res)


# ----------------------------------------------------------------------------- the map
@nb.njit(cache=True)
def _map_kernel(z, T, lam, E, nsteps, out_z, out_T):
    """Apply ``two_param_step`` ``nsteps`` times element-wise (plain 1-D arrays)."""
    for i in range(z.shape[0]):
        zi = z[i]
        Ti = T[i]
        for _ in range(nsteps):
            zi, Ti = two_param_step(zi, Ti, lam[i], E[i])
        out_z[i] = zi
        out_T[i] = Ti


def _iterate(z, T, lam, E, nsteps):
    """NumPy-level wrapper of :func:`_map_kernel` with broadcasting."""
    zb, Tb, lb, Eb = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (z, T, lam, E)))
    shape = zb.shape
    flat = [np.ascontiguousarray(x).ravel() for x in (zb, Tb, lb, Eb)]
    out_z = np.empty(flat[0].size)
    out_T = np.empty(flat[0].size)
    with np.errstate(all="ignore"):
        _map_kernel(*flat, nsteps, out_z, out_T)
    return out_z.reshape(shape), out_T.reshape(shape)


def one_step_map(z, T, *, eps=None, a=None, E_tilde=0.0):
    """One GD step (z̃_t, T_t) → (z̃_{t+1}, T_{t+1}) of the P = 2 model (Eq. 14-15, 65-66).

    A thin, validated, xarray-aware wrapper of :func:`eosdyn.kernels.maps.two_param_step`.

    Parameters
    ----------
    z, T : float, array or DataArray
        Rescaled residual z̃ and curvature T = T(0).
    eps, a : float, array or DataArray
        Exactly one: ε in (0, 1] (λ = −ε) or a with a ≥ 1 or a < −1 (λ = −1/a).
    E_tilde : float, array or DataArray, default 0
        The conserved Ẽ.

    Returns
    -------
    (z_next, T_next)

    Examples
    --------
    >>> z1, T1 = one_step_map(0.1, 1.5, eps=0.1)
    >>> round(z1, 12), round(T1, 12)
    (-0.04315, 1.23983)
    """
    lam, E = _params(eps, a, E_tilde)
    _check_real("z", z), _check_real("T", T)
    return _apply(lambda z_, T_, l_, E_: _iterate(z_, T_, l_, E_, 1), z, T, lam, E, n_out=2,
                  name=("z", "T"), long_name=("z̃ after one step", "T(0) after one step"))


def two_step_map(z, T, *, eps=None, a=None, E_tilde=0.0):
    """Two GD steps (z̃_t, T_t) → (z̃_{t+2}, T_{t+2}) (Eq. 71-72 before expansion).

    Parameters and returns as :func:`one_step_map`.

    Examples
    --------
    >>> z2, T2 = two_step_map(0.01, 2.0, eps=0.1)
    >>> abs(z2 - 0.01) < 1e-3   # (0, 2) is the EOS fixed point of the two-step map
    True
    """
    lam, E = _params(eps, a, E_tilde)
    _check_real("z", z), _check_real("T", T)
    return _apply(lambda z_, T_, l_, E_: _iterate(z_, T_, l_, E_, 2), z, T, lam, E, n_out=2,
                  name=("z", "T"), long_name=("z̃ after two steps", "T(0) after two steps"))


# ----------------------------------------------------------------------------- one-step nullclines
def _fz(z, lam, E):
    # Eq. 69 with a = −1/λ: f_z = z(2z+Ẽ)/(2a − (a−1)z) = λ z (2z+Ẽ) / ((1+λ) z − 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return lam * z * (2.0 * z + E) / ((1.0 + lam) * z - 2.0)


def _fT(z, lam, E):
    # Eq. 70 with a = −1/λ: f_T = −((a−1)z − 2a)(2z+Ẽ)/((a²−a+1)z − 2a(a−1))
    #                          = λ((1+λ)z − 2)(2z+Ẽ) / ((1+λ+λ²) z − 2(1+λ))
    with np.errstate(divide="ignore", invalid="ignore"):
        return lam * ((1.0 + lam) * z - 2.0) * (2.0 * z + E) / ((1.0 + lam + lam * lam) * z
                                                                  - 2.0 * (1.0 + lam))


def nullcline_z(z, *, a=None, eps=None, E_tilde=0.0):
    """One-step z̃-nullcline T = f_z(z̃) (Eq. 69): z̃_{t+1} = z̃_t on it.

    f_z(z̃) = z̃ (2z̃ + Ẽ) / (2a − (a − 1) z̃), evaluated as λ z̃ (2z̃ + Ẽ) / ((1 + λ) z̃ − 2) with
    λ = −1/a (the same expression, finite for every allowed λ). The line z̃ = 0 is also a
    z̃-nullcline. At the pole the result is ±inf or NaN.

    Parameters
    ----------
    z : float, array or DataArray
        z̃ values.
    a, eps : float, array or DataArray
        Exactly one: a (a ≥ 1 or a < −1), or ε in (0, 1] (a = 1/ε).
    E_tilde : float, array or DataArray, default 0
        Ẽ.

    Returns
    -------
    float, ndarray or DataArray
        T on the nullcline.

    Examples
    --------
    >>> nullcline_z(0.5, eps=0.5)   # 0.5·1/(4 − 0.5)
    0.14285714285714285
    """
    lam, E = _params(eps, a, E_tilde)
    _check_real("z", z)
    return _apply(_fz, z, lam, E, name="T", long_name="one-step z̃-nullcline f_z (Eq. 69)")


def nullcline_T(z, *, a=None, eps=None, E_tilde=0.0):
    """One-step T-nullcline T = f_T(z̃) (Eq. 70, with its leading minus sign): T_{t+1} = T_t on it.

    f_T(z̃) = −((a − 1) z̃ − 2a)(2z̃ + Ẽ) / ((a² − a + 1) z̃ − 2a(a − 1)), evaluated in the
    equivalent form λ((1 + λ) z̃ − 2)(2z̃ + Ẽ) / ((1 + λ + λ²) z̃ − 2(1 + λ)) with λ = −1/a.
    (z̃ = 0 also satisfies T_{t+1} = T_t.) At the pole of the formula the result is ±inf or NaN.

    Parameters and returns as :func:`nullcline_z`.

    Examples
    --------
    >>> round(nullcline_T(0.5, a=2.0), 12)   # −(0.5 − 4)·1 / (1.5 − 4)
    -1.4
    """
    lam, E = _params(eps, a, E_tilde)
    _check_real("z", z)
    return _apply(_fT, z, lam, E, name="T", long_name="one-step T-nullcline f_T (Eq. 70)")


# ----------------------------------------------------------------------------- two-step nullclines
def two_step_polynomial(z, *, eps=None, a=None, E_tilde=0.0, variable="z"):
    """Coefficients of the two-step nullcline cubic in T at fixed z̃ ≠ 0 (Eq. 71-72, corrected Eq. 17).

    For fixed z̃, z̃_{t+2} − z̃_t = z̃ (c0 + c1 T + c2 T² + c3 T³) (``variable="z"``) and
    T_{t+2} − T_t = z̃ (c0 + … + c3 T³) (``variable="T"``): both two-step differences vanish
    identically on z̃ = 0, and after removing that factor the cubics do not factor further. The
    coefficients are obtained from the map (:func:`two_step_map`) by exact cubic interpolation
    at four nodes in T. At z̃ → 0 they tend to T(T − 2) (z) and −2((1+λ)T − λẼ)(2 − T) (T),
    so both nullclines pass through (0, 2). (Eq. 17 as printed has no root there.)

    Parameters
    ----------
    z : float or array
        z̃ ≠ 0 (z̃ = 0 gives NaN).
    eps, a, E_tilde :
        As in :func:`nullcline_z`, scalars or arrays.
    variable : {"z", "T"}
        Which two-step nullcline.

    Returns
    -------
    ndarray
        Shape ``np.shape(z) + (4,)``: c0, c1, c2, c3.

    Examples
    --------
    >>> c = two_step_polynomial(1e-6, eps=0.1)
    >>> np.round(c, 4)          # ≈ T(T − 2) = −2T + T² for small z̃
    array([ 0., -2.,  1.,  0.])
    """
    if variable not in ("z", "T"):
        raise ValueError(f"variable must be 'z' or 'T'; got {variable!r}")
    lam, E = _params(eps, a, E_tilde)
    if _is_xr(z, lam, E):
        raise ValueError("two_step_polynomial takes scalars or NumPy arrays, not DataArrays (z)")
    _check_real("z", z)
    return _coeffs(z, lam, E, 0 if variable == "z" else 1)


def two_step_nullcline_z(z, *, a=None, eps=None, E_tilde=0.0):
    """Two-step z̃-nullcline T = f_z^{(2)}(z̃) through (z̃, T) = (0, 2) (Eq. 71, corrected Eq. 17).

    Solves p_z(z̃, T) + p_z(z̃ + p_z(z̃, T), T + p_T(z̃, T)) = 0 for T at each z̃, i.e. the root of
    the cubic of :func:`two_step_polynomial`, following the branch continuously from T = 2 at
    z̃ = 0 (root tracking on a fine grid in z̃ towards each requested point, then Newton on the
    map itself). NaN where that branch does not exist (beyond the fold where it meets another
    root and turns complex) and for non-finite z̃. For Ẽ = 0 and λ = −ε its Taylor series is
    f_z^{(2)}(z̃) = 2 + 2(1 − ε) z̃ + 2(1 − ε + ε²) z̃² + O(z̃³).

    The branch is the mathematical curve; it is not clipped to the allowed region (Eq. 67-68).

    Parameters
    ----------
    z : float, array or DataArray
        z̃ values (any order; 10⁴ points take about 15 ms once compiled).
    a, eps : float, array or DataArray
        Exactly one: a (a ≥ 1 or a < −1), or ε in (0, 1].
    E_tilde : float, array or DataArray, default 0
        Ẽ.

    Returns
    -------
    float, ndarray or DataArray
        T on the branch.

    Examples
    --------
    >>> f = two_step_nullcline_z(np.array([0.0, 1e-3]), eps=0.1)
    >>> np.round(f, 6)
    array([2.      , 2.001802])
    """
    lam, E = _params(eps, a, E_tilde)
    _check_real("z", z)
    return _apply(lambda z_, l_, E_: _branch(z_, l_, E_, 0), z, lam, E, name="T",
                  long_name="two-step z̃-nullcline f_z^(2) through (0, 2)")


def two_step_nullcline_T(z, *, a=None, eps=None, E_tilde=0.0):
    """Two-step T-nullcline T = f_T^{(2)}(z̃) through (z̃, T) = (0, 2) (Eq. 72, corrected Eq. 17).

    The root of T_{t+2} = T_t (cubic in T at fixed z̃, see :func:`two_step_polynomial`) on the
    branch through T = 2 at z̃ = 0, followed continuously; NaN where it does not exist. For small
    ε it lies within O(ε) of :func:`two_step_nullcline_z` (Appendix B.4).

    Parameters and returns as :func:`two_step_nullcline_z`.

    Examples
    --------
    >>> f = two_step_nullcline_T(np.array([-1e-3, 0.0, 1e-3]), eps=0.1)
    >>> bool(np.all(np.abs(f - 2) < 1e-2))
    True
    """
    lam, E = _params(eps, a, E_tilde)
    _check_real("z", z)
    return _apply(lambda z_, l_, E_: _branch(z_, l_, E_, 1), z, lam, E, name="T",
                  long_name="two-step T-nullcline f_T^(2) through (0, 2)")


def eos_coordinate(z, T, *, eps=None, a=None, E_tilde=0.0):
    """EOS coordinate y = T − f_z^{(2)}(z̃): distance from the two-step z̃-nullcline (Section 3).

    y is measured from the *two-step* nullcline through (0, 2) (:func:`two_step_nullcline_z`),
    not from the one-step f_z of Eq. 69. NaN where that branch does not exist.

    Parameters
    ----------
    z, T : float, array or DataArray
        z̃ and T(0).
    eps, a, E_tilde :
        As in :func:`nullcline_z`.

    Returns
    -------
    float, ndarray or DataArray
        y (named ``"y"`` for DataArrays).

    Examples
    --------
    >>> round(eos_coordinate(0.0, 1.95, eps=0.1), 12)
    -0.05
    """
    lam, E = _params(eps, a, E_tilde)
    _check_real("z", z), _check_real("T", T)
    return _apply(lambda z_, T_, l_, E_: T_ - _branch(z_, l_, E_, 0), z, T, lam, E, name="y",
                  long_name="EOS coordinate y = T − f_z^(2)(z̃)")


# ----------------------------------------------------------------------------- Eq. 18-19, Thm 3.1
class TwoStepCoefficients(NamedTuple):
    """Lowest-order coefficients of the two-step dynamics near (z̃, y) = (0, 0), Eq. 18-19.

    z̃_{t+2} − z̃_t = ``zy`` · y z̃ + …;  y_{t+2} − y_t = ``yzz`` · y z̃² + ``zz`` · z̃² + …
    """

    zy: object
    yzz: object
    zz: object


def _lift1(func, x, name, long_name):
    if isinstance(x, xr.DataArray):
        out = func(x)
        out.name = name
        out.attrs = {"long_name": long_name, "units": "1"}
        return out
    return _out(func(np.asarray(x, dtype=float)))


def two_step_coefficients(eps):
    """Coefficients of Eq. 18-19 for Ẽ = 0 and eigenvalues {−ε, 1}.

    z̃_{t+2} − z̃_t = 2 y z̃ + O(y² z̃) + O(y z̃²) and
    y_{t+2} − y_t = −2(4 − 3ε + 4ε²) y z̃² − 4ε z̃² + O(ε z̃³ + y² z̃²).
    (Re-derived by series expansion of the map: the next terms are
    z̃_{t+2} − z̃_t = y z̃ (2 + y − (1 − ε) z̃) + … and a 4ε(ε − 1) z̃³ term in y_{t+2} − y_t.)

    Parameters
    ----------
    eps : float, array or DataArray
        ε in (0, 1].

    Returns
    -------
    TwoStepCoefficients
        ``(zy, yzz, zz)`` = (2, −2(4 − 3ε + 4ε²), −4ε), broadcast to the shape of ``eps``.

    Examples
    --------
    >>> two_step_coefficients(0.5)
    TwoStepCoefficients(zy=2.0, yzz=-7.0, zz=-2.0)
    """
    _check_eps(eps)
    zy = _lift1(lambda e: 2.0 + 0.0 * e, eps, "zy", "coefficient of y z̃ in z̃_{t+2} − z̃_t (Eq. 18)")
    yzz = _lift1(lambda e: -2.0 * (4.0 - 3.0 * e + 4.0 * e * e), eps, "yzz",
                 "coefficient of y z̃² in y_{t+2} − y_t (Eq. 19)")
    zz = _lift1(lambda e: -4.0 * e, eps, "zz", "coefficient of z̃² in y_{t+2} − y_t (Eq. 19)")
    return TwoStepCoefficients(zy, yzz, zz)


def theorem31_y_star(eps):
    """Fixed point y* = −2ε / (4 − 3ε + 4ε²) ≈ −ε/2 of the lowest-order y dynamics (Eq. 19).

    Parameters
    ----------
    eps : float, array or DataArray
        ε in (0, 1].

    Returns
    -------
    float, ndarray or DataArray

    Examples
    --------
    >>> round(theorem31_y_star(0.1), 10)
    -0.0534759358
    """
    _check_eps(eps)
    return _lift1(lambda e: -2.0 * e / (4.0 - 3.0 * e + 4.0 * e * e), eps, "y",
                  "fixed point y* of the EOS coordinate (Eq. 19)")


def theorem31_sharpness(eps):
    """Theorem 3.1: lim η λ_max = 2 − ε/2 + O(ε²) (Ẽ = 0, eigenvalues {−ε, 1}, small ε).

    Parameters
    ----------
    eps : float, array or DataArray
        ε in (0, 1].

    Returns
    -------
    float, ndarray or DataArray
        2 − ε/2 (the leading terms; see :func:`theorem31_sharpness_fit` for the measured ε²
        correction).

    Examples
    --------
    >>> theorem31_sharpness(0.1)
    1.95
    """
    _check_eps(eps)
    return _lift1(lambda e: 2.0 - 0.5 * e, eps, "sharpness", "Theorem 3.1 limit 2 − ε/2 of η λ_max")


def theorem31_sharpness_fit(eps):
    """Theorem 3.1 with the measured ε² term: 2 − ε/2 + c ε², c = :data:`THEOREM31_EPS2_COEFFICIENT`.

    c is the extrapolation to ε → 0 of (T_∞ − 2 + ε/2)/ε² from a 40-digit iteration of the map
    (Ẽ = 0; the limit T_∞ does not depend on the start; docs/theory.md). It is *not* the ε² term of 2 + y*
    (y* = −ε/2 − 3ε²/8 + O(ε³)): the lowest-order Eq. 18-19 fix the limit only to O(ε²).

    Parameters
    ----------
    eps : float, array or DataArray
        ε in (0, 1].

    Returns
    -------
    float, ndarray or DataArray

    Examples
    --------
    >>> round(theorem31_sharpness_fit(0.1), 6)
    1.941562
    """
    _check_eps(eps)
    c = THEOREM31_EPS2_COEFFICIENT
    return _lift1(lambda e: 2.0 - 0.5 * e + c * e * e, eps, "sharpness",
                  "Theorem 3.1 limit of η λ_max with measured ε² term")


# ----------------------------------------------------------------------------- allowed region, θ
def _weights(z, T, lam, E):
    """w1 = η J_1², w2 = η J_2² of the state (both ≥ 0 iff the state is reachable), λ ≠ 1.

    With T = w1 + w2 and T(−1) = 2z̃ + Ẽ = w1 + w2/λ: w2 = λ (T − u)/(λ − 1), w1 = T − w2.
    """
    u = 2.0 * z + E
    with np.errstate(divide="ignore", invalid="ignore"):
        w2 = lam * (T - u) / (lam - 1.0)
    return T - w2, w2


def _allowed(z, T, lam, E):
    u = 2.0 * z + E
    scale = 1e-12 * np.maximum(1.0, np.maximum(np.abs(T), np.abs(u)))
    w1, w2 = _weights(z, T, lam, E)
    return (w1 >= -scale) & (w2 >= -scale) & np.isfinite(z) & np.isfinite(T)


def allowed_region(z, T, *, eps=None, a=None, E_tilde=0.0):
    """Whether (z̃, T) is reachable from a real parameter vector θ (Eq. 67-68).

    For a ≥ 1 (in particular ε = 1/a ∈ (0, 1]): T ≥ 2z̃ + Ẽ and T ≥ −(2z̃ + Ẽ)/a;
    for a < −1: −(2z̃ + Ẽ)/a ≤ T ≤ 2z̃ + Ẽ (a = −1, Q = I, is refused: :func:`second_eigenvalue`).
    The boundary (one component of J zero) is included; the paper writes strict inequalities.
    The test is done on the squared Jacobian components η J_i² ≥ 0 with a relative slack of 1e-12.

    Parameters
    ----------
    z, T : float, array or DataArray
        z̃ and T(0).
    eps, a, E_tilde :
        As in :func:`nullcline_z`.

    Returns
    -------
    bool, ndarray of bool or DataArray of bool

    Examples
    --------
    >>> allowed_region(np.array([0.0, 0.0]), np.array([1.0, -1.0]), eps=0.1)
    array([ True, False])
    """
    lam, E = _params(eps, a, E_tilde)
    _check_real("z", z), _check_real("T", T)
    return _apply(_allowed, z, T, lam, E, name="allowed", dtype=bool,
                  long_name="state reachable from real θ (Eq. 67-68)")


def catapult_sign(z, T, *, E_tilde=0.0):
    """Sign of T_{t+1} − T_t in the catapult model (eigenvalues {−1, 1}, Eq. 12-13).

    ΔT = z̃² (T − 4) − 2 z̃ Ẽ; for Ẽ = 0 the sign is sign(T − 4) whenever z̃ ≠ 0 (0 on z̃ = 0):
    runs that converge (T < 4) can only lose curvature, there is no progressive sharpening.

    Parameters
    ----------
    z, T : float, array or DataArray
        z̃ and T(0).
    E_tilde : float, array or DataArray, default 0
        Ẽ.

    Returns
    -------
    float, ndarray or DataArray
        −1, 0 or +1.

    Examples
    --------
    >>> catapult_sign(np.array([0.1, 0.1, 0.0]), np.array([3.0, 5.0, 5.0]))
    array([-1.,  1.,  0.])
    """
    _check_real("z", z), _check_real("T", T), _check_E(E_tilde)

    def f(z_, T_, E_):
        return np.sign(z_ * (z_ * (T_ - 4.0) - 2.0 * E_))

    return _apply(f, z, T, E_tilde, name="sign", long_name="sign of T_{t+1} − T_t (Eq. 13)")


def _check_eta(eta):
    _check_real("eta", eta)
    return check_range("eta", eta, 0.0, None, lo_open=True)


def theta_from_state(z, T, *, eps=None, a=None, E_tilde=0.0, eta=1.0):
    """A parameter vector θ₀ ∈ R² of the model with Q = diag(1, λ) that has state (z̃, T, Ẽ).

    Inverts z = ½(θᵀQθ − E), J = θᵀQ, T = η J Jᵀ, T(−1) = η J Q⁻¹ Jᵀ = 2z̃ + Ẽ (z̃ = ηz, Ẽ = ηE):
    η J₂² = λ(T − 2z̃ − Ẽ)/(λ − 1), η J₁² = T − η J₂², θ = (J₁, J₂/λ) with J_i ≥ 0 (the
    representative with non-negative components; the others differ by signs).

    Parameters
    ----------
    z, T : float, array or DataArray
        z̃₀ and T₀ = T₀(0).
    eps, a :
        Exactly one (λ = −ε or −1/a).
    E_tilde : float, array or DataArray, default 0
        Ẽ = η E (rescaled; the raw E of Eq. 4 is Ẽ/η).
    eta : float, array or DataArray, default 1
        Learning rate η > 0.

    Returns
    -------
    ndarray or DataArray
        θ with a trailing axis of length 2 (a ``param`` dim, coordinate [0, 1], for DataArrays).

    Raises
    ------
    ValueError
        If a state lies outside the allowed region (Eq. 67-68), or parameters are out of range.

    Examples
    --------
    >>> theta = theta_from_state(0.1, 1.5, eps=0.1)
    >>> z, T = state_from_theta(theta, eps=0.1)
    >>> round(z, 12), round(T, 12)
    (0.1, 1.5)
    """
    lam, E = _params(eps, a, E_tilde)
    _check_eta(eta)
    _check_real("z", z, allow_nan=False), _check_real("T", T, allow_nan=False)
    ok = allowed_region(z, T, eps=eps, a=a, E_tilde=E)
    if not bool(np.all(np.asarray(ok))):
        raise ValueError("z, T (the initial state z̃₀, T₀) must lie in the allowed region of "
                         "Eq. 67-68 (for a >= 1: T >= 2z+E and T >= -(2z+E)/a; for a <= -1: "
                         "-(2z+E)/a <= T <= 2z+E), i.e. be reachable from a real θ")

    def f(z_, T_, l_, E_, eta_):
        z_, T_, l_, E_, eta_ = np.broadcast_arrays(z_, T_, l_, E_, eta_)
        w1, w2 = _weights(z_, T_, l_, E_)
        J1 = np.sqrt(np.maximum(w1, 0.0) / eta_)
        J2 = np.sqrt(np.maximum(w2, 0.0) / eta_)
        return np.stack([J1, J2 / np.abs(l_)], axis=-1)

    if _is_xr(z, T, lam, E, eta):
        return _apply(f, z, T, lam, E, eta, name="theta", long_name="parameters θ",
                      core_out=[["param"]], out_sizes={"param": 2},
                      out_coords={"param": np.arange(2)})
    return f(*(np.asarray(x, float) for x in (z, T, lam, E, eta)))


def state_from_theta(theta, *, eps=None, a=None, E_tilde=0.0, eta=1.0):
    """The state (z̃, T) of parameters θ ∈ R² for Q = diag(1, λ) (Eq. 4, 7).

    z̃ = η z = ½ η θᵀQθ − ½ Ẽ and T = T(0) = η J Jᵀ with J = θᵀQ.

    Parameters
    ----------
    theta : array or DataArray
        Trailing axis (``param`` dim for DataArrays) of length 2.
    eps, a :
        Exactly one (λ = −ε or −1/a).
    E_tilde : float, array or DataArray, default 0
        Ẽ = η E.
    eta : float, array or DataArray, default 1
        Learning rate η > 0.

    Returns
    -------
    (z, T)

    Examples
    --------
    >>> state_from_theta(np.array([1.0, 2.0]), eps=0.5)   # θᵀQθ = 1 − 0.5·4, T = 1 + 0.25·4
    (-0.5, 2.0)
    """
    lam, E = _params(eps, a, E_tilde)
    _check_eta(eta)
    _check_real("theta", theta)

    def f(th, l_, E_, eta_):
        th = np.asarray(th, float)
        if th.shape[-1:] != (2,):
            raise ValueError(f"theta must have a trailing axis of length 2 (P = 2); got shape {th.shape}")
        t1, t2 = th[..., 0], th[..., 1]
        quad = t1 * t1 + l_ * t2 * t2
        z_ = 0.5 * eta_ * quad - 0.5 * E_
        T_ = eta_ * (t1 * t1 + l_ * l_ * t2 * t2)
        return z_, T_

    if _is_xr(theta, lam, E, eta):
        if isinstance(theta, xr.DataArray):
            if "param" not in theta.dims or theta.sizes["param"] != 2:
                raise ValueError("theta must have a 'param' dim of length 2 (P = 2)")
        else:
            theta = xr.DataArray(np.asarray(theta, float), dims=[*(f"dim_{i}" for i in range(np.ndim(theta) - 1)), "param"])
        res = xr.apply_ufunc(f, theta, lam, E, eta, input_core_dims=[["param"], [], [], []],
                             output_core_dims=[[], []], dask="parallelized",
                             output_dtypes=[float, float])
        for r, nm in zip(res, ("z", "T")):
            r.name = nm
            r.attrs = {"long_name": {"z": "rescaled residual z̃ = η z",
                                     "T": "rescaled curvature T(0) = η J Jᵀ"}[nm], "units": "1"}
        return res
    zt, Tt = f(theta, *(np.asarray(x, float) for x in (lam, E, eta)))
    return _out(np.asarray(zt)), _out(np.asarray(Tt))
