"""Branch continuation of the two-step nullclines (Eq. 71-72, the corrected Eq. 17).

z̃_{t+2} − z̃_t and T_{t+2} − T_t are, for fixed z̃, cubic polynomials in T that both vanish
identically at z̃ = 0; after dividing by z̃ the remaining cubics do not factor (sympy). Their
coefficients are obtained exactly (up to rounding) from the map itself
(:func:`eosdyn.kernels.maps.two_param_step`) by interpolating the two-step residual at four nodes
in T (:func:`coefficients`); :func:`branch` follows the root through (z̃, T) = (0, 2) on a fixed
reference grid in abs(z̃) and continues it to each requested point, so every value depends only on
its own z̃ (never on the other points requested). The closed forms that use it live in
:mod:`eosdyn.theory.toy` (:func:`~eosdyn.theory.toy.two_step_nullcline_z`,
:func:`~eosdyn.theory.toy.two_step_nullcline_T`, :func:`~eosdyn.theory.toy.eos_coordinate`).

Examples
--------
>>> import numpy as np
>>> branch(np.array([0.0, 1e-3]), -0.1, 0.0, 0).round(6)
array([2.      , 2.001802])
>>> cubic_roots(np.array([[-6.0, 11.0, -6.0, 1.0]])).real.round(12)   # (T-1)(T-2)(T-3)
array([[3., 1., 2.]])
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ..kernels.maps import two_param_step

__all__ = ["coefficients", "cubic_roots", "branch"]

# z̃_{t+2} − z̃_t and T_{t+2} − T_t are, for fixed z̃, cubic polynomials in T (Eq. 71-72) that both
# vanish identically at z̃ = 0; after dividing by z̃ the remaining cubics do not factor (sympy). Their
# coefficients are obtained exactly (up to rounding) from the map itself by interpolating the
# two-step residual at four nodes in T.
_NODES = np.array([-1.0, 0.0, 1.0, 2.0])
_VINV = np.ascontiguousarray(np.linalg.inv(np.vander(_NODES, 4, increasing=True)))


@nb.njit(cache=True)
def _residual1(z, T, lam, E, which):
    """(z̃_{t+2} − z̃_t)/z̃ (which == 0) or (T_{t+2} − T_t)/z̃ (which == 1), via the map."""
    z1, T1 = two_param_step(z, T, lam, E)
    z2, T2 = two_param_step(z1, T1, lam, E)
    return (z2 - z) / z if which == 0 else (T2 - T) / z


@nb.njit(cache=True)
def _coeffs1(z, lam, E, which, nodes, vinv, c):
    """Fill c[0..3] with the reduced two-step cubic in T at z̃ (exact interpolation at ``nodes``)."""
    v0 = _residual1(z, nodes[0], lam, E, which)
    v1 = _residual1(z, nodes[1], lam, E, which)
    v2 = _residual1(z, nodes[2], lam, E, which)
    v3 = _residual1(z, nodes[3], lam, E, which)
    for i in range(4):
        c[i] = vinv[i, 0] * v0 + vinv[i, 1] * v1 + vinv[i, 2] * v2 + vinv[i, 3] * v3


@nb.njit(cache=True)
def _coeffs_kernel(z, lam, E, which, nodes, vinv, out):
    for k in range(z.shape[0]):
        _coeffs1(z[k], lam[k], E[k], which, nodes, vinv, out[k])


def coefficients(z, lam, E, which):
    """Coefficients c0..c3 (last axis) of the reduced two-step cubic in T, for z̃ ≠ 0."""
    z, lam, E = np.broadcast_arrays(np.asarray(z, float), np.asarray(lam, float),
                                    np.asarray(E, float))
    flat = [np.ascontiguousarray(x).ravel() for x in (z, lam, E)]
    out = np.empty((flat[0].size, 4))
    with np.errstate(all="ignore"):
        _coeffs_kernel(*flat, which, _NODES, _VINV, out)
    return out.reshape(z.shape + (4,))


@nb.njit(cache=True)
def _newton3(c0, c1, c2, c3, r, n):
    for _ in range(n):
        f = ((c3 * r + c2) * r + c1) * r + c0
        df = (3.0 * c3 * r + 2.0 * c2) * r + c1
        if df == 0:
            break
        step = f / df
        if not (np.isfinite(step.real) and np.isfinite(step.imag)):
            break
        r = r - step
    return r


@nb.njit(cache=True)
def _roots3(c0, c1, c2, c3, out):
    """The three complex roots of c0 + c1 T + c2 T² + c3 T³ into ``out``.

    The root of largest modulus comes from Cardano's formula (accurate for it even when c3 is
    tiny and the root huge) and is polished by Newton; it is then deflated (backward, stable for
    the largest root) and the remaining quadratic is solved without cancellation; one final
    Newton step on the cubic for all three. A vanishing c3 is replaced by a tiny one (relative
    1e-14), which sends the spurious root to |T| ~ 1e14.
    """
    scale = max(abs(c0), abs(c1), abs(c2), abs(c3))
    if abs(c3) < 1e-14 * scale:
        c3 = (-1e-14 if c3 < 0 else 1e-14) * scale
    b = c2 / c3
    cc = c1 / c3
    d = c0 / c3
    p = cc - b * b / 3.0
    q = 2.0 * b ** 3 / 27.0 - b * cc / 3.0 + d
    sq = np.sqrt(complex((q / 2.0) ** 2 + (p / 3.0) ** 3))
    w = -q / 2.0 + (-sq if (sq.conjugate() * q).real > 0 else sq)
    u = w ** (1.0 / 3.0) if w != 0 else 0j
    om = complex(-0.5, 0.8660254037844386)
    big = 0j
    for k in range(3):
        uk = u * om ** k
        rk = (uk - p / (3.0 * uk) if uk != 0 else 0j) - b / 3.0
        if k == 0 or abs(rk) > abs(big):
            big = rk
    r = _newton3(c0, c1, c2, c3, big, 3)
    rs = r if r != 0 else 1.0 + 0j
    a0 = -c0 / rs
    a1 = (a0 - c1) / rs
    a2 = (a1 - c2) / rs
    disc = np.sqrt(a1 * a1 - 4.0 * a2 * a0)
    qq = -0.5 * (a1 + disc if (a1.conjugate() * disc).real >= 0 else a1 - disc)
    r1 = a0 / qq if qq != 0 else 0j
    r2 = qq / a2 if a2 != 0 else complex(np.inf, 0.0)
    out[0] = r
    out[1] = _newton3(c0, c1, c2, c3, r1, 1)
    out[2] = _newton3(c0, c1, c2, c3, r2, 1)


@nb.njit(cache=True)
def _roots_kernel(c, out):
    for k in range(c.shape[0]):
        _roots3(c[k, 0], c[k, 1], c[k, 2], c[k, 3], out[k])


def cubic_roots(c):
    """All three complex roots of each row c0 + c1 T + c2 T² + c3 T³ (shape (N, 4) → (N, 3))."""
    c = np.ascontiguousarray(c, dtype=float)
    out = np.empty((c.shape[0], 3), dtype=np.complex128)
    _roots_kernel(c, out)
    return out


@nb.njit(cache=True)
def _track_step(z, lam, E, which, nodes, vinv, pred, prev_c3, prev_largest, c, r):
    """One continuation step of the two-step cubic's root to the point ``z``.

    The cubic's coefficients at z̃ come from the map, its roots from :func:`_roots3`; the root
    nearest to the prediction ``pred`` (linear extrapolation from the previous points) is chosen, polished by Newton on
    the cubic and then on the map itself. Returns ``(T, c3, largest)``; ``T`` is NaN when the
    branch ends here: the nearest root is complex (it met another root at a fold), or the branch
    went off to infinity (it was the largest root and the leading coefficient changed sign).
    """
    _coeffs1(z, lam, E, which, nodes, vinv, c)
    if not (np.isfinite(c[0]) and np.isfinite(c[1]) and np.isfinite(c[2]) and np.isfinite(c[3])):
        return np.nan, 0.0, False
    if prev_largest and c[3] * prev_c3 < 0.0:
        return np.nan, 0.0, False
    _roots3(c[0], c[1], c[2], c[3], r)
    best = 0
    bestd = np.inf
    for j in range(3):
        dj = abs(r[j] - pred)
        if dj < bestd:
            bestd = dj
            best = j
    root = r[best]
    if not np.isfinite(bestd) or abs(root.imag) > 1e-6 * (1.0 + abs(root.real)):
        return np.nan, 0.0, False
    largest = True
    for j in range(3):
        if j != best and abs(r[j]) > abs(root):
            largest = False
    t = root.real
    for it in range(5):
        dp = (3.0 * c[3] * t + 2.0 * c[2]) * t + c[1]
        if dp == 0.0 or not np.isfinite(dp):
            break
        # three steps on the cubic, then two on the map itself (the ground truth)
        f = ((c[3] * t + c[2]) * t + c[1]) * t + c[0] if it < 3 else _residual1(z, t, lam, E, which)
        step = f / dp
        if not np.isfinite(step):
            break
        t -= step
    if not np.isfinite(t) or abs(t) > 1e12:
        return np.nan, 0.0, False
    return t, c[3], largest


@nb.njit(cache=True)
def _track(zs, lam, E, which, nodes, vinv, start, out, c3s, largests):
    """Follow the root of the two-step cubic in T from ``start`` (at z̃ = 0) along ``zs``.

    ``zs`` are ordered by increasing |z̃| on one side of z̃ = 0. Fills ``out`` (NaN from the
    branch's end on) and the per-point state needed to continue from any point (``c3s``,
    ``largests``). At the first point the branch must emanate from ``start``.
    """
    n = zs.shape[0]
    out[:] = np.nan
    c = np.empty(4)
    r = np.empty(3, dtype=np.complex128)
    prev_c3 = 0.0
    prev_largest = False
    for k in range(n):
        pred = _extrapolate(zs, out, k, start)
        t, c3, largest = _track_step(zs[k], lam, E, which, nodes, vinv, pred, prev_c3, prev_largest,
                                     c, r)
        if not np.isfinite(t) or (k == 0 and abs(t - start) > 1e-2):
            return
        out[k] = t
        c3s[k] = c3
        largests[k] = largest
        prev_c3 = c3
        prev_largest = largest


@nb.njit(cache=True)
def _extrapolate(zs, Ts, k, start):
    """Linear prediction of the branch at ``zs[k]`` from the two points before it (z̃ = 0: start)."""
    if k == 0:
        return start
    z1, T1 = zs[k - 1], Ts[k - 1]
    z0, T0 = (zs[k - 2], Ts[k - 2]) if k >= 2 else (0.0, start)
    if z1 == z0:
        return T1
    return T1 + (T1 - T0) * (zs[k] - z1) / (z1 - z0)


@nb.njit(cache=True)
def _finish(zq, kq, refz, refT, refc3, refl, lam, E, which, nodes, vinv, start, out):
    """The branch at each requested point ``zq[i]``: one continuation step from the last
    reference point below it (index ``kq[i]``, −1 for none), so every value depends only on its
    own z̃ and the fixed reference grid, never on the other requested points."""
    c = np.empty(4)
    r = np.empty(3, dtype=np.complex128)
    m = _FINISH_SUBSTEPS
    zs = np.empty(m + 2)
    Ts = np.empty(m + 2)
    for i in range(zq.shape[0]):
        k = kq[i]
        if k >= 0 and refz[k] == zq[i]:
            out[i] = refT[k]
            continue
        if k >= 0 and not np.isfinite(refT[k]):
            out[i] = np.nan
            continue
        if k < 0:
            t, c3, lg = _track_step(zq[i], lam, E, which, nodes, vinv, start, 0.0, False, c, r)
            out[i] = t if abs(t - start) <= 1e-2 else np.nan
            continue
        # m uniform sub-steps from the reference point to the request (robust near asymptotes)
        zs[0] = refz[k - 1] if k >= 1 else 0.0
        Ts[0] = refT[k - 1] if k >= 1 else start
        zs[1] = refz[k]
        Ts[1] = refT[k]
        prev_c3 = refc3[k]
        prev_l = refl[k]
        t = refT[k]
        for j in range(1, m + 1):
            zs[j + 1] = refz[k] + (zq[i] - refz[k]) * j / m
            pred = _extrapolate(zs, Ts, j + 1, start)
            t, prev_c3, prev_l = _track_step(zs[j + 1], lam, E, which, nodes, vinv, pred, prev_c3,
                                             prev_l, c, r)
            if not np.isfinite(t):
                break
            Ts[j + 1] = t
        out[i] = t


_FINISH_SUBSTEPS = 8


#: Fixed reference grid for the branch continuation (|z̃| values): geometric from 1e-6 to 2⁻¹⁰,
#: uniform with spacing 2⁻¹⁰ up to 4, then geometric with ratio 1 + 2⁻⁹.
_REF_H = 2.0 ** -10


def _ref_grid(zmax):
    """Reference points in (0, zmax] on the fixed grid (independent of the requested points)."""
    head = np.geomspace(1e-6, _REF_H, 64)[:-1]
    uni = np.arange(1, int(4.0 / _REF_H) + 1) * _REF_H
    grid = np.concatenate([head, uni])
    if zmax > 4.0:
        n = int(np.ceil(np.log(min(zmax, 1e12) / 4.0) / np.log1p(2.0 ** -9)))
        grid = np.concatenate([grid, 4.0 * (1.0 + 2.0 ** -9) ** np.arange(1, n + 1)])
    return grid[grid <= zmax]


def _branch_one(zv, lam, E, which):
    """Two-step nullcline branch through (0, 2) at the 1-D points ``zv`` for scalar λ, Ẽ.

    The root is tracked on a fixed reference grid in |z̃| and continued by one step to each
    requested point, so results are pointwise (independent of the other points requested).
    """
    out = np.full(zv.shape, np.nan)
    out[zv == 0.0] = 2.0
    for sign in (1.0, -1.0):
        sel = np.isfinite(zv) & (sign * zv > 0)
        if not sel.any():
            continue
        req = np.ascontiguousarray(sign * zv[sel])
        ref = _ref_grid(req.max())
        refT = np.empty(ref.size)
        refc3 = np.zeros(ref.size)
        refl = np.zeros(ref.size, dtype=np.bool_)
        res = np.empty(req.size)
        with np.errstate(all="ignore"):
            _track(sign * ref, float(lam), float(E), which, _NODES, _VINV, 2.0, refT, refc3, refl)
            kq = np.searchsorted(ref, req, side="right") - 1
            _finish(sign * req, kq, sign * ref, refT, refc3, refl, float(lam), float(E), which,
                    _NODES, _VINV, 2.0, res)
        out[sel] = res
    return out


def branch(z, lam, E, which):
    """The two-step nullcline branch through (0, 2) of ``which`` (0: z̃, 1: T) at the points ``z``
    (arrays broadcast with λ = ``lam`` and Ẽ = ``E``); NaN where it does not exist."""
    z, lam, E = np.broadcast_arrays(np.asarray(z, float), np.asarray(lam, float),
                                    np.asarray(E, float))
    shape = z.shape
    zf, lf, Ef = (np.ravel(x) for x in (z, lam, E))
    if zf.size == 0:
        return np.full(shape, np.nan)
    if (lf == lf[0]).all() and (Ef == Ef[0]).all():
        return _branch_one(zf, lf[0], Ef[0], which).reshape(shape)
    out = np.full(zf.shape, np.nan)
    uniq, inv = np.unique(lf + 1j * Ef, return_inverse=True)
    inv = np.ravel(inv)
    for g, key in enumerate(uniq):
        m = inv == g
        out[m] = _branch_one(zf[m], key.real, key.imag, which)
    return out.reshape(shape)
