"""Shared :func:`scipy.integrate.solve_ivp` wrapper for the gradient flows (plain arrays, no xarray).

Each trajectory is integrated on its own (so error control, and hence the result, never
depends on which other trajectories share a call) and sampled at the requested times with
``t_eval``. A failed integration (e.g. a blow-up) fills the remaining samples with NaN and is
reported in ``ok``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.integrate import solve_ivp


def solve_batch(
    rhs: Callable[..., np.ndarray],
    y0: np.ndarray,
    times: np.ndarray,
    args: Sequence[tuple],
    *,
    rtol: float = 1e-12,
    atol: float = 1e-14,
    method: str = "DOP853",
) -> tuple[np.ndarray, np.ndarray]:
    """Integrate ``dy/dt = rhs(t, y, *args[i])`` from ``y0[i]`` at t = 0, sampled at ``times``.

    Parameters
    ----------
    rhs : callable
        ``rhs(t, y, *args) -> dy/dt`` for one trajectory (``y`` 1-D).
    y0 : ndarray, shape (n, m)
        Initial states.
    times : ndarray, shape (k,)
        Non-negative, strictly increasing sample times.
    args : sequence of tuples, length n
        Extra arguments of ``rhs`` per trajectory.
    rtol, atol : float
        Tolerances of the integrator.
    method : str
        Any :func:`scipy.integrate.solve_ivp` method (default the 8th-order ``"DOP853"``).

    Returns
    -------
    y : ndarray, shape (n, k, m)
        Samples (NaN after a failed integration).
    ok : ndarray of bool, shape (n,)
        Whether the integration reached ``times[-1]``.

    Examples
    --------
    >>> import numpy as np
    >>> y, ok = solve_batch(lambda t, y, c: -c * y, np.ones((1, 1)), np.array([0.0, 1.0]), [(2.0,)])
    >>> bool(abs(y[0, 1, 0] - np.exp(-2.0)) < 1e-12), bool(ok[0])
    (True, True)
    """
    y0 = np.asarray(y0, dtype=np.float64)
    n, m = y0.shape
    k = times.shape[0]
    out = np.full((n, k, m), np.nan)
    ok = np.zeros(n, dtype=bool)
    t_end = float(times[-1]) if k else 0.0
    for i in range(n):
        if k == 0:
            ok[i] = True
            continue
        if t_end == 0.0:
            out[i, :, :] = y0[i]
            ok[i] = True
            continue
        with np.errstate(all="ignore"):
            sol = solve_ivp(rhs, (0.0, t_end), y0[i], method=method, t_eval=times,
                            args=tuple(args[i]), rtol=rtol, atol=atol)
        got = sol.y.T
        finite = np.all(np.isfinite(got), axis=1)
        good = got.shape[0] if finite.all() else int(np.argmin(finite))
        out[i, :good, :] = got[:good]
        ok[i] = bool(sol.success) and got.shape[0] == k and good == k
    return out, ok
