"""Theory of random quadratic regression models (Section 4, Appendix C).

Closed forms for the random initialisation of Theorem 4.1: ``z`` (D), ``J``
(D x P) and ``Q`` (D x P x P, symmetric in its last two indices) independent,
with i.i.d. zero-mean Gaussian entries of variances ``sigma_z_raw**2``,
``sigma_J_raw**2`` and (for ``Q``) a symmetrised standard Gaussian:

* ``convention="sym"`` : ``Q_a = (G_a + G_a^T) / sqrt(2)`` — off-diagonal
  entries have variance 1 (diagonal 2), the "variance 1" of Theorem 4.1;
* ``convention="half"``: ``Q_a = (G_a + G_a^T) / 2`` — off-diagonal variance
  1/2 (diagonal 1).  Everything below is the ``"sym"`` value times
  ``sqrt(1/2)`` (r_NL) or ``1/2`` (second derivatives).

Widths: ``sigma_z`` and ``sigma_J`` mean here what they mean in the datasets of
:func:`eosdyn.qrm.sweep` — the *rescaled* widths of Eq. 29 (Figure 4's axes),
``sigma_z = D sigma_z_raw`` and ``sigma_J = (D P)**(1/4) sigma_J_raw``, where
``sigma_z_raw``, ``sigma_J_raw`` are the standard deviations of Theorem 4.1.
:func:`unrescale_sigmas` and :func:`rescale_sigmas` convert (the one place the
rescaling is written).  Every function also accepts a sweep dataset as its first
argument and reads ``D``, ``P``, ``sigma_z``, ``sigma_J``, ``eta`` from its
coordinates (keywords override).

Gradient flow with learning rate ``eta`` means ``theta' = -eta J^T z`` (Eq.
21-22 is ``eta = 1``; time is measured in GD steps).  Derivations and the
Monte Carlo checks are in ``docs/theory_qrm.md``.

Functions accept numbers, numpy arrays or :class:`xarray.DataArray` (xarray
in, xarray out, broadcast by dimension name).
"""

from __future__ import annotations

import numbers

import numpy as np
import xarray as xr

from .._validate import check_int, check_range
from .._xr import lift

__all__ = [
    "QRM_CONVENTIONS",
    "rescale_sigmas",
    "unrescale_sigmas",
    "r_nl",
    "theorem41_ratio",
    "theorem41_conditional",
    "lambda_max_derivatives",
]

#: Symmetrisation conventions for Q -> variance ``c`` of an off-diagonal entry
#: ``Q_aij`` (i != j); a diagonal entry has variance ``2 c``.
QRM_CONVENTIONS: dict[str, float] = {"sym": 1.0, "half": 0.5}


# --------------------------------------------------------------------------- helpers
def _q_variance(convention: str) -> float:
    try:
        return QRM_CONVENTIONS[convention]
    except (KeyError, TypeError):
        raise ValueError(f"convention must be one of {sorted(QRM_CONVENTIONS)}; got {convention!r}") from None


def _check_count(name: str, value):
    """Integer-valued scalar/array/DataArray >= 1 (D, P)."""
    if value is None:
        raise ValueError(f"{name} is required (an integer >= 1)")
    if isinstance(value, numbers.Number) and not isinstance(value, (bool, np.bool_)):
        check_int(name, value, lo=1)
        return value
    check_range(name, value, 1, None)
    arr = np.asarray(value.values if isinstance(value, xr.DataArray) else value, dtype=float)
    if not np.all(arr == np.round(arr)):
        raise ValueError(f"{name} must be an integer (or integers) in [1, inf); got {value!r}")
    return value


def _lift(func, args: tuple, name: str, long_name: str):
    """Evaluate ``func(*args)``; DataArray in -> DataArray out (broadcast by dim name)."""
    if any(isinstance(a, xr.DataArray) for a in args):
        out = lift(func, *args, core_dims=[[] for _ in args], out_core_dims=[[]], out_dtypes=[float])
        out.name = name
        out.attrs = {"long_name": long_name, "units": "1"}
        return out
    out = func(*(np.asarray(a, dtype=float) for a in args))
    return float(out) if np.ndim(out) == 0 else np.asarray(out)


def _inputs(ds, names: tuple[str, ...], given: dict, defaults: dict) -> dict:
    """The keywords of a theory function: explicit values first, then ``ds``'s coordinates
    (a sweep dataset), then the defaults."""
    if ds is not None and not isinstance(ds, xr.Dataset):
        raise TypeError(f"the positional argument must be a sweep dataset (xarray.Dataset); got {type(ds).__name__}")
    out = {}
    for name in names:
        v = given.get(name)
        if v is None and ds is not None and name in ds.variables:
            v = ds[name]
            v = v.item() if v.ndim == 0 else v.reset_coords(drop=True) if v.name not in v.dims else v
        out[name] = defaults.get(name) if v is None else v
    return out


# --------------------------------------------------------------------------- widths
def _raw_z(s, d):
    return s / d


def _raw_J(s, d, p):
    return s / (d * p) ** 0.25


def _raw_widths(D, P, sigma_z=None, sigma_J=None):
    """Rescaled (Eq. 29) -> raw widths on plain numbers/arrays: ``(sigma_z / D, sigma_J / (D P)^(1/4))``."""
    return (None if sigma_z is None else _raw_z(sigma_z, D),
            None if sigma_J is None else _raw_J(sigma_J, D, P))


def unrescale_sigmas(ds=None, /, *, D=None, P=None, sigma_z=None, sigma_J=None):
    """Rescaled widths (Eq. 29, the datasets' ``sigma_z``, ``sigma_J``) -> raw standard deviations.

    ``sigma_z_raw = sigma_z / D`` and ``sigma_J_raw = sigma_J / (D P)**(1/4)`` (the
    ``sigma_z``, ``sigma_J`` of Theorem 4.1); ``None`` passes through.

    Parameters
    ----------
    ds : xarray.Dataset, optional
        A sweep dataset to read ``D``, ``P``, ``sigma_z``, ``sigma_J`` from.
    D, P : int or array_like or xarray.DataArray
        Number of datapoints and of parameters (>= 1).
    sigma_z, sigma_J : float or array_like or xarray.DataArray, optional
        Rescaled widths (>= 0).

    Returns
    -------
    tuple
        ``(sigma_z_raw, sigma_J_raw)``.

    Examples
    --------
    >>> unrescale_sigmas(D=60, P=120, sigma_z=0.6)
    (0.01, None)
    """
    kw = _inputs(ds, ("D", "P", "sigma_z", "sigma_J"), dict(D=D, P=P, sigma_z=sigma_z, sigma_J=sigma_J), {})
    D, P = _check_count("D", kw["D"]), _check_count("P", kw["P"])
    sz = sj = None
    if kw["sigma_z"] is not None:
        check_range("sigma_z", kw["sigma_z"], 0, None)
        sz = _lift(_raw_z, (kw["sigma_z"], D), "sigma_z_raw", "raw residual width sigma_z / D")
    if kw["sigma_J"] is not None:
        check_range("sigma_J", kw["sigma_J"], 0, None)
        sj = _lift(_raw_J, (kw["sigma_J"], D, P), "sigma_J_raw", "raw Jacobian width sigma_J / (D P)^(1/4)")
    return sz, sj


def rescale_sigmas(*, D, P, sigma_z_raw=None, sigma_J_raw=None):
    """Raw standard deviations (Theorem 4.1) -> rescaled widths (Eq. 29); the inverse of
    :func:`unrescale_sigmas`: ``sigma_z = D sigma_z_raw``, ``sigma_J = (D P)**(1/4) sigma_J_raw``.

    Examples
    --------
    >>> rescale_sigmas(D=60, P=120, sigma_z_raw=0.01, sigma_J_raw=0.1)  # doctest: +ELLIPSIS
    (0.6, 0.92115...)
    """
    _check_count("D", D)
    _check_count("P", P)
    sz = sj = None
    if sigma_z_raw is not None:
        check_range("sigma_z_raw", sigma_z_raw, 0, None)
        sz = _lift(lambda s, d: d * s, (sigma_z_raw, D), "sigma_z", "rescaled residual width D sigma_z_raw")
    if sigma_J_raw is not None:
        check_range("sigma_J_raw", sigma_J_raw, 0, None)
        sj = _lift(lambda s, d, p: (d * p) ** 0.25 * s, (sigma_J_raw, D, P), "sigma_J",
                   "rescaled Jacobian width (D P)^(1/4) sigma_J_raw")
    return sz, sj


# --------------------------------------------------------------------------- r_NL
def r_nl(ds=None, /, *, D=None, P=None, sigma_z=None, eta=None, convention="sym"):
    """Non-linearity ratio r_NL of Eq. 27 at the random initialisation.

    ``r_NL = ( E||eta^2/2 Q(g, g)||^2 / E||eta J J^T z||^2 )^(1/2)`` with
    ``g = J^T z`` — a ratio of expectations, as printed in Eq. 27.  Exactly,
    for every D, P >= 1::

        r_NL = eta sigma_z_raw sqrt( c D (D+2) (P+2) / (2 (P+D+1)) ),   sigma_z_raw = sigma_z / D

    with ``c = 1`` for ``convention="sym"`` and ``c = 1/2`` for ``"half"``.
    It does not depend on sigma_J.  The paper prints ``eta sigma_z_raw D / 2``
    (= ``eta sigma_z / 2``), which is the large-D = P limit of the ``"sym"`` value only
    (see ``docs/theory_qrm.md``).

    Parameters
    ----------
    ds : xarray.Dataset, optional
        A sweep dataset: ``D``, ``P``, ``sigma_z``, ``eta`` are read from its coordinates
        (keywords override).
    D, P : int or array_like or xarray.DataArray
        Number of datapoints and of parameters (integers >= 1).
    sigma_z : float or array_like or xarray.DataArray
        Rescaled residual width of Eq. 29 (>= 0), as in the datasets.
    eta : float or array_like or xarray.DataArray, default 1.0
        Learning rate (> 0).
    convention : {"sym", "half"}
        Symmetrisation of Q: ``(G+G^T)/sqrt(2)`` or ``(G+G^T)/2``.

    Returns
    -------
    float, numpy.ndarray or xarray.DataArray
        r_NL, broadcast over the inputs.

    Examples
    --------
    >>> round(r_nl(D=60, P=120, sigma_z=0.6), 4)
    0.3541
    >>> round(r_nl(D=60, P=120, sigma_z=0.6, convention="half"), 4)
    0.2504
    >>> import eosdyn
    >>> ds = eosdyn.qrm.sweep(D=4, P=6, sigma_z=[0.3, 0.6], sigma_J=0.5, seeds=1, steps=5)
    >>> r_nl(ds).dims
    ('sigma_z',)
    """
    kw = _inputs(ds, ("D", "P", "sigma_z", "eta"), dict(D=D, P=P, sigma_z=sigma_z, eta=eta), {"eta": 1.0})
    c = _q_variance(convention)
    _check_count("D", kw["D"])
    _check_count("P", kw["P"])
    check_range("eta", kw["eta"], 0, None, lo_open=True)
    if kw["sigma_z"] is None:
        raise ValueError("sigma_z (the rescaled width of Eq. 29) is required")
    check_range("sigma_z", kw["sigma_z"], 0, None)

    def f(d, p, s, e):
        return e * _raw_z(s, d) * np.sqrt(c * d * (d + 2.0) * (p + 2.0) / (2.0 * (p + d + 1.0)))

    return _lift(f, (kw["D"], kw["P"], kw["sigma_z"], kw["eta"]), "r_nl", "non-linearity ratio r_NL (Eq. 27)")


# --------------------------------------------------------------------------- Theorem 4.1
def _conditional_terms(lam: np.ndarray, D: int, P: int) -> np.ndarray:
    """E[lambda_ddot | J] for c = sigma_z = eta = 1, from the non-zero NTK spectrum.

    ``lam``: shape (..., m), m = min(D, P), the eigenvalues of J J^T that are not
    forced to zero, sorted in descending order.  The D - m structural zeros of
    J J^T (D > P) are added analytically.
    """
    l1 = lam[..., :1]
    S = lam.sum(axis=-1, keepdims=True)
    lk = lam[..., 1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        rot = np.sum((l1 ** 2 + lk ** 2 + (l1 + lk) * S) / (l1 - lk), axis=-1)
    l1, S = l1[..., 0], S[..., 0]
    return 2.0 * (P + 1) * (l1 + S) + 2.0 * rot + 2.0 * (D - lam.shape[-1]) * (l1 + S)


def _nonzero_spectrum(J: np.ndarray) -> np.ndarray:
    """Descending eigenvalues of J J^T (..., D, P) without its D - P structural zeros."""
    D, P = J.shape[-2:]
    Jt = np.swapaxes(J, -1, -2)
    gram = J @ Jt if D <= P else Jt @ J
    return np.linalg.eigvalsh(gram)[..., ::-1]


def theorem41_conditional(J, *, sigma_z, eta=1.0, convention="sym"):
    """Exact conditional moments of lambda_max and its flow derivatives, given J.

    For fixed ``J`` and ``z``, ``Q`` random as in Theorem 4.1, integrates z and
    Q analytically (see ``docs/theory_qrm.md``)::

        E[lam_dot  | J] = 0
        E[lam_ddot | J] = c eta^2 sigma_z_raw^2 [ 2 (P+1) (l_1 + S)
                          + 2 sum_{k>1} (l_1^2 + l_k^2 + (l_1 + l_k) S) / (l_1 - l_k) ]

    where ``l_1 > l_2 >= ... >= l_D`` are the eigenvalues of ``J J^T`` and
    ``S = sum_k l_k = tr J J^T`` (zero eigenvalues, D > P, included).

    Parameters
    ----------
    J : array_like, shape (..., D, P)
        Jacobian(s); leading dims are a batch.
    sigma_z : float
        Rescaled residual width of Eq. 29 (>= 0): ``z`` has i.i.d. entries of standard
        deviation ``sigma_z_raw = sigma_z / D``, D = ``J.shape[-2]``.
    eta : float, default 1.0
        Learning rate of the flow ``theta' = -eta J^T z`` (> 0).
    convention : {"sym", "half"}

    Returns
    -------
    (lam, mean_lam_dot, mean_lam_ddot) : tuple of numpy.ndarray, shape (...)
        ``lambda_max(0)`` (deterministic given J), ``E[lambda_max'(0) | J]``
        (zero) and ``E[lambda_max''(0) | J]``.

    Examples
    --------
    >>> J = np.random.default_rng(0).standard_normal((5, 8))
    >>> lam, d1, d2 = theorem41_conditional(J, sigma_z=0.5)
    >>> float(d1), bool(d2 > 0)
    (0.0, True)
    """
    c = _q_variance(convention)
    check_range("sigma_z", sigma_z, 0, None)
    check_range("eta", eta, 0, None, lo_open=True)
    J = np.asarray(J, dtype=float)
    if J.ndim < 2 or 0 in J.shape[-2:]:
        raise ValueError(f"J must have shape (..., D, P) with D, P >= 1; got {J.shape}")
    D, P = J.shape[-2:]
    lam = _nonzero_spectrum(J)
    dd = c * float(eta) ** 2 * float(_raw_z(sigma_z, D)) ** 2 * _conditional_terms(lam, D, P)
    return lam[..., 0], dd * 0.0, dd


def theorem41_ratio(ds=None, /, *, D=None, P=None, sigma_z=None, sigma_J=None, eta=None, convention="sym",
                    exact=False, n_samples=200, seed=0, return_stderr=False):
    """Theorem 4.1 ratio E[lambda_max''(0)] / E[lambda_max(0)] under gradient flow.

    Gradient flow ``theta' = -eta J^T z`` (Eq. 21-22 for eta = 1) from the
    random initialisation of Theorem 4.1.  ``E[lambda_max'(0)] = 0`` exactly
    (Q -> -Q symmetry), and at large D, P with D/P fixed::

        E[lambda_max''(0)] / E[lambda_max(0)]  ->  2 c D P eta^2 sigma_z_raw^2 = 2 c (P/D) eta^2 sigma_z^2

    (``c = 1`` for ``"sym"``, ``1/2`` for ``"half"``; ``sigma_z`` the rescaled width of
    Eq. 29, ``sigma_z_raw = sigma_z / D``).  The paper prints ``sigma_z_raw^2``.  The
    ratio does not depend on sigma_J (it cancels exactly).

    Parameters
    ----------
    ds : xarray.Dataset, optional
        A sweep dataset: ``D``, ``P``, ``sigma_z``, ``sigma_J``, ``eta`` are read from its
        coordinates (keywords override).
    D, P : int or array_like or xarray.DataArray
        Sizes (integers >= 1); scalars when ``exact=True``.
    sigma_z : float or array_like or xarray.DataArray
        Rescaled residual width of Eq. 29 (>= 0).
    sigma_J : float or array_like or xarray.DataArray, optional
        Rescaled Jacobian width (> 0); only validated, the ratio is independent of it.
    eta : float or array_like or xarray.DataArray, default 1.0
        Learning rate (> 0).
    convention : {"sym", "half"}
    exact : bool, default False
        ``False``: the large-(D, P) closed form above.  ``True``: the exact
        finite-size value, estimated by sampling only J (``n_samples`` draws
        from ``numpy.random.SeedSequence(seed)``) and integrating z and Q
        analytically (:func:`theorem41_conditional`); the estimate is
        ``mean(E[lam''|J]) / mean(lam_max)``.
    n_samples : int, default 200
        Number of J samples (``exact=True``).
    seed : int, default 0
        Seed of the J samples (``exact=True``).
    return_stderr : bool, default False
        With ``exact=True``, also return the Monte Carlo standard error
        (delta method); for ``exact=False`` it is 0.

    Returns
    -------
    float, numpy.ndarray or xarray.DataArray (or a pair with the standard error)

    Examples
    --------
    >>> theorem41_ratio(D=100, P=100, sigma_z=1.0)
    2.0
    >>> r, se = theorem41_ratio(D=20, P=30, sigma_z=1.0, exact=True, n_samples=50,
    ...                         return_stderr=True)
    >>> bool(abs(r / theorem41_ratio(D=20, P=30, sigma_z=1.0) - 1) < 0.2)
    True
    """
    kw = _inputs(ds, ("D", "P", "sigma_z", "sigma_J", "eta"),
                 dict(D=D, P=P, sigma_z=sigma_z, sigma_J=sigma_J, eta=eta), {"eta": 1.0})
    D, P, sz, sj, eta = kw["D"], kw["P"], kw["sigma_z"], kw["sigma_J"], kw["eta"]
    c = _q_variance(convention)
    _check_count("D", D)
    _check_count("P", P)
    check_range("eta", eta, 0, None, lo_open=True)
    if sz is None:
        raise ValueError("sigma_z (the rescaled width of Eq. 29) is required")
    check_range("sigma_z", sz, 0, None)
    if sj is not None:
        check_range("sigma_J", sj, 0, None, lo_open=True)
    if not isinstance(exact, (bool, np.bool_)):
        raise ValueError(f"exact must be True or False; got {exact!r}")

    if not exact:
        ratio = _lift(lambda d, p, s, e: 2.0 * c * d * p * e ** 2 * _raw_z(s, d) ** 2, (D, P, sz, eta),
                      "theorem41_ratio", "E[d2 lambda_max/dt2(0)] / E[lambda_max(0)] (Theorem 4.1)")
        if return_stderr:
            return ratio, _lift(lambda r: 0.0 * r, (ratio,), "theorem41_ratio_stderr", "standard error")
        return ratio

    if isinstance(D, xr.DataArray) or isinstance(P, xr.DataArray) or np.ndim(D) or np.ndim(P):
        raise ValueError("D and P must be scalar integers when exact=True")
    D, P = int(D), int(P)
    n = check_int("n_samples", n_samples, lo=2)
    seed = check_int("seed", seed, lo=0)
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    lam1 = np.empty(n)
    num = np.empty(n)
    chunk = max(1, min(n, int(2**24 // (D * P))))  # <= 128 MiB of J at a time
    for start in range(0, n, chunk):
        J = rng.standard_normal((min(chunk, n - start), D, P))
        lam = _nonzero_spectrum(J)
        lam1[start:start + len(J)] = lam[:, 0]
        num[start:start + len(J)] = _conditional_terms(lam, D, P)
    base = num.mean() / lam1.mean()
    se = np.std(num - base * lam1, ddof=1) / np.sqrt(n) / lam1.mean()
    scale = _lift(lambda s, e: c * e ** 2 * _raw_z(s, D) ** 2, (sz, eta), "theorem41_ratio",
                  "E[d2 lambda_max/dt2(0)] / E[lambda_max(0)] (Theorem 4.1, exact finite size)")
    ratio = scale * base
    if isinstance(ratio, xr.DataArray):
        ratio.name, ratio.attrs = "theorem41_ratio", scale.attrs
    if return_stderr:
        return ratio, scale * se
    return ratio


# --------------------------------------------------------------------------- one instance
def lambda_max_derivatives(J, z, Q, *, eta=1.0):
    """lambda_max of J J^T and its first two gradient-flow time derivatives.

    Flow ``theta' = -eta J^T z`` of the quadratic model (Eq. 21-22 for eta = 1):
    ``z' = J theta'``, ``J' = Q(theta', .)``.  With ``M = J J^T`` and its
    eigenpairs ``(l_k, v_k)``, ``l_1`` the largest (assumed simple)::

        lam_dot  = v_1^T M' v_1                                   (Hellmann-Feynman)
        lam_ddot = v_1^T M'' v_1 + 2 sum_{k>1} (v_k^T M' v_1)^2 / (l_1 - l_k)

    with ``M' = J' J^T + J J'^T``, ``M'' = J'' J^T + 2 J' J'^T + J J''^T``,
    ``J'' = Q(theta'', .)``, ``theta'' = -eta (J'^T z + J^T z')``.

    Parameters
    ----------
    J : array_like, shape (..., D, P)
    z : array_like, shape (..., D)
    Q : array_like, shape (..., D, P, P), symmetric in its last two indices
    eta : float, default 1.0
        Learning rate of the flow (> 0).

    Returns
    -------
    (lam, lam_dot, lam_ddot) : tuple of numpy.ndarray, shape (...)
        Leading (batch) dims broadcast.  A degenerate top eigenvalue gives
        a non-finite ``lam_ddot``.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> G = rng.standard_normal((3, 4, 4)); Q = (G + G.transpose(0, 2, 1)) / np.sqrt(2)
    >>> lam, d1, d2 = lambda_max_derivatives(rng.standard_normal((3, 4)), rng.standard_normal(3), Q)
    >>> bool(lam > 0)
    True
    """
    check_range("eta", eta, 0, None, lo_open=True)
    J = np.asarray(J, dtype=float)
    z = np.asarray(z, dtype=float)
    Q = np.asarray(Q, dtype=float)
    if J.ndim < 2:
        raise ValueError(f"J must have shape (..., D, P); got {J.shape}")
    D, P = J.shape[-2:]
    if D < 1 or P < 1:
        raise ValueError(f"J must have D, P >= 1; got shape {J.shape}")
    if z.shape[-1:] != (D,):
        raise ValueError(f"z must have shape (..., D) with D = {D}; got {z.shape}")
    if Q.ndim < 3 or Q.shape[-3:] != (D, P, P):
        raise ValueError(f"Q must have shape (..., D, P, P) = (..., {D}, {P}, {P}); got {Q.shape}")
    asym = np.max(np.abs(Q - np.swapaxes(Q, -1, -2)), initial=0.0)
    if not asym <= 1e-10 * max(np.max(np.abs(Q), initial=0.0), 1.0):
        raise ValueError("Q must be symmetric in its last two indices (Q[..., a, i, j] == Q[..., a, j, i])")
    eta = float(eta)

    def qv(v):  # Q(v, .)_{aj} = sum_i Q_aij v_i
        return np.einsum("...aij,...i->...aj", Q, v)

    def jt(A, x):  # A^T x
        return np.einsum("...ap,...a->...p", A, x)

    theta_d = -eta * jt(J, z)
    J_d = qv(theta_d)
    z_d = np.einsum("...ap,...p->...a", J, theta_d)
    theta_dd = -eta * (jt(J_d, z) + jt(J, z_d))
    J_dd = qv(theta_dd)
    T = lambda A: np.swapaxes(A, -1, -2)  # noqa: E731
    M = J @ T(J)
    M_d = J_d @ T(J) + J @ T(J_d)
    M_dd = J_dd @ T(J) + 2.0 * (J_d @ T(J_d)) + J @ T(J_dd)
    w, V = np.linalg.eigh(M)
    l1 = w[..., -1]
    v1 = V[..., :, -1]
    a = np.einsum("...ak,...a->...k", V, np.einsum("...ab,...b->...a", M_d, v1))  # a_k = v_k^T M' v_1
    lam_dot = a[..., -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        rot = np.sum(a[..., :-1] ** 2 / (l1[..., None] - w[..., :-1]), axis=-1)
    lam_ddot = np.einsum("...a,...ab,...b->...", v1, M_dd, v1) + 2.0 * rot
    return l1, lam_dot, lam_ddot
