"""Step functions of the one-datapoint maps: the single place where the formulas live.

All maps are written for the rescaled coordinates of Eq. 7 (z̃ = η z,
T(k) = η J Q^k Jᵀ). The two-parameter map is parametrised by the second
eigenvalue ``lam`` = λ of Q (largest eigenvalue 1), λ ∈ [−1, 1):

* ``lam = -eps``  is the EOS model of Eq. 14-15 (a = 1/ε),
* ``lam = -1/a``  is the general form of Eq. 65-66,
* ``lam = -1``    is the catapult map of Eq. 12-13.

Using T(1) = ((1+λ) T − λ (2z̃ + Ẽ)) and T(2) = T + λ(λ+1)(T − Ẽ − 2z̃)
(from T(−1) = Ẽ + 2z̃ and P = 2):

    z̃' = z̃ − z̃ T + ½ z̃² T(1)
    T'  = T − 2 z̃ T(1) + z̃² T(2)

Every function here is a numba ``njit`` function that also works on NumPy
arrays (array expressions), so theory code and tests can call it directly.
"""

from __future__ import annotations

import numba as nb


@nb.njit(cache=True, fastmath=False, inline="always")
def two_param_step(z, T, lam, E):
    """One GD step of the P = 2 map (Eq. 65-66 with λ = −1/a). Returns ``(z', T')``."""
    u = 2.0 * z + E
    T1 = (1.0 + lam) * T - lam * u
    T2 = T + lam * (lam + 1.0) * (T - u)
    return z - z * T + 0.5 * z * z * T1, T - 2.0 * z * T1 + z * z * T2


@nb.njit(cache=True, fastmath=False, inline="always")
def two_param_rhs(z, T, lam, E):
    """Gradient-flow vector field of the P = 2 model (Eq. 8 closed with P = 2)."""
    T1 = (1.0 + lam) * T - lam * (2.0 * z + E)
    return -z * T, -2.0 * z * T1
