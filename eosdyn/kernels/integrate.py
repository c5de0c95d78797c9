"""Shared gradient-flow integrator for many independent trajectories (plain arrays, no xarray).

Each trajectory is integrated on its own with one of scipy's explicit or implicit
:class:`scipy.integrate.OdeSolver` methods (so error control, and hence the result, never
depends on which other trajectories share a call) and sampled at the requested times from the
solver's dense output, exactly as :func:`scipy.integrate.solve_ivp` with ``t_eval`` does.

A member's fate is data, never an exception: the integration stops and the member is flagged
when its state diverges (max |y| above ``diverge_norm`` or non-finite: a terminal event on the
norm, located inside the step), when the integrator fails (step size too small) or when its
work budget of ``max_evals`` right-hand-side evaluations is spent. Samples after the stop are
NaN. Bad options raise ``ValueError`` naming the parameter before any integration.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import integrate as _si
from scipy.optimize import brentq

from .._validate import MAX_OUTPUT_BYTES, check_int, check_memory, check_range, check_times, check_tolerances
from ..conventions import STATUS_VALUES

__all__ = ["solve_batch", "METHODS", "check_flow_options"]

#: solver classes by ``method`` name (those of :func:`scipy.integrate.solve_ivp`)
METHODS = {"RK23": _si.RK23, "RK45": _si.RK45, "DOP853": _si.DOP853, "Radau": _si.Radau,
           "BDF": _si.BDF, "LSODA": _si.LSODA}

_MAXSTEPS = STATUS_VALUES["max_steps"]
_DIVERGED = STATUS_VALUES["diverged"]
_FAILED = STATUS_VALUES["failed"]

#: largest ``max_evals`` accepted (a hard bound on the work of one member)
MAX_EVALS = 10**9


class _Stop(Exception):
    """Raised inside the wrapped right-hand side to end one member's integration."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def check_flow_options(*, rtol, atol, method, diverge_norm, max_evals):
    """Validate the integrator options of :func:`solve_batch` (``ValueError`` naming the parameter).

    Returns ``(rtol, atol, method, diverge_norm, max_evals)`` as plain Python values.

    Examples
    --------
    >>> check_flow_options(rtol=1e-12, atol=1e-14, method="DOP853", diverge_norm=1e100, max_evals=10)
    (1e-12, 1e-14, 'DOP853', 1e+100, 10)
    >>> check_flow_options(rtol=1e-12, atol=1e-14, method="Euler", diverge_norm=1e100, max_evals=10)
    Traceback (most recent call last):
    ...
    ValueError: method must be one of 'RK23', 'RK45', 'DOP853', 'Radau', 'BDF', 'LSODA'; got 'Euler'
    """
    rtol, atol = check_tolerances(rtol, atol)
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}; got {method!r}")
    if isinstance(diverge_norm, (bool, np.bool_)) or not isinstance(
            diverge_norm, (int, float, np.integer, np.floating)):
        raise ValueError(f"diverge_norm must be a real number in (0, inf]; got {diverge_norm!r}")
    check_range("diverge_norm", diverge_norm, 0.0, None, lo_open=True, finite=False)
    max_evals = check_int("max_evals", max_evals, 1, MAX_EVALS)
    return rtol, atol, method, float(diverge_norm), max_evals


def _too_big(y, norm):
    """True where the state is non-finite or max |y| exceeds ``norm``."""
    m = np.max(np.abs(y)) if y.size else 0.0
    return not (m <= norm)  # NaN-safe


def _solve_one(rhs, y0, times, args, rtol, atol, method, norm, max_evals, out):
    """Integrate one member into ``out`` (k, m), prefilled with NaN; returns (status, t_stop)."""
    k = times.shape[0]
    t_end = float(times[-1])
    if _too_big(y0, norm):
        if times[0] == 0.0:
            out[0] = y0
        return _DIVERGED, 0.0
    if t_end == 0.0:
        out[:] = y0
        return _MAXSTEPS, 0.0
    nev = [0]

    def fun(t, y):
        nev[0] += 1
        if nev[0] > max_evals:
            raise _Stop(_FAILED)
        if not np.isfinite(t):
            raise _Stop(_FAILED)
        try:
            f = np.asarray(rhs(t, y, *args), dtype=np.float64)
        except (ArithmeticError, ValueError):  # overflow inside the user's formula
            raise _Stop(_FAILED) from None
        return f

    # samples at t = 0
    j = 0
    while j < k and times[j] == 0.0:
        out[j] = y0
        j += 1
    t_reached = 0.0
    try:
        f0 = fun(0.0, y0)
        if not np.all(np.isfinite(f0)):  # infinite vector field at the start: a blow-up at t = 0
            return _DIVERGED, 0.0
        solver = METHODS[method](fun, 0.0, y0.copy(), t_end, rtol=rtol, atol=atol)
        while True:
            msg = solver.step()
            if solver.status == "failed":
                return _FAILED, t_reached
            t_old, t_new = solver.t_old, solver.t
            if _too_big(solver.y, norm):
                sol = solver.dense_output()

                def g(s):
                    v = sol(s)
                    mx = np.max(np.abs(v)) if v.size else 0.0
                    return (mx - norm) if np.isfinite(mx) else np.inf

                try:
                    t_div = brentq(g, t_old, t_new, xtol=1e-12 * max(1.0, abs(t_new)), maxiter=200) \
                        if g(t_old) < 0 and g(t_new) > 0 else t_new
                except (ValueError, RuntimeError):
                    t_div = t_new
                while j < k and times[j] <= t_div:
                    v = sol(times[j])
                    if _too_big(v, norm):
                        break
                    out[j] = v
                    j += 1
                return _DIVERGED, float(t_div)
            if j < k and times[j] <= t_new:
                sol = solver.dense_output()
                while j < k and times[j] <= t_new:
                    out[j] = sol(times[j])
                    j += 1
            t_reached = float(t_new)
            if solver.status == "finished":
                del msg
                return _MAXSTEPS, t_end
    except _Stop as stop:
        return stop.status, t_reached
    except (ArithmeticError, ValueError, np.linalg.LinAlgError):
        # the solver's own linear algebra gave up (e.g. Radau/BDF/LSODA factorising a Jacobian
        # with inf/NaN entries): the member failed, it does not raise
        return _FAILED, t_reached


def solve_batch(
    rhs: Callable[..., np.ndarray],
    y0: np.ndarray,
    times,
    args: Sequence[tuple],
    *,
    rtol: float = 1e-12,
    atol: float = 1e-14,
    method: str = "DOP853",
    diverge_norm: float = 1e100,
    max_evals: int = 100_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integrate ``dy/dt = rhs(t, y, *args[i])`` from ``y0[i]`` at t = 0, sampled at ``times``.

    Parameters
    ----------
    rhs : callable
        ``rhs(t, y, *args) -> dy/dt`` for one trajectory (``y`` 1-D float64).
    y0 : array, shape (n, m)
        Initial states (a non-finite or too large state is a member diverged at t = 0).
    times : array, shape (k,)
        Sample times: 1 to 10⁶ finite, non-negative, strictly increasing values.
    args : sequence of tuples, length n
        Extra arguments of ``rhs`` per trajectory.
    rtol, atol : float
        Tolerances: ``rtol`` in [100 eps, 1] (eps = 2.2e-16), ``atol`` finite and > 0.
    method : str
        ``"DOP853"`` (8th order, default), ``"RK45"``, ``"RK23"``, ``"Radau"``, ``"BDF"`` or
        ``"LSODA"`` (the methods of :func:`scipy.integrate.solve_ivp`).
    diverge_norm : float, default 1e100
        A member diverges once max |y| exceeds it or the state stops being finite (> 0; may be inf).
    max_evals : int, default 100_000
        Work budget: right-hand-side evaluations per member (1 to 10⁹); a member that needs
        more is ``failed``.

    Returns
    -------
    y : ndarray, shape (n, k, m)
        Samples; NaN at the times after the member stopped.
    status : ndarray of int8, shape (n,)
        Flag values of :data:`eosdyn.conventions.STATUS_VALUES`: ``max_steps`` (reached
        ``times[-1]``), ``diverged`` (norm above ``diverge_norm`` or non-finite) or ``failed``
        (step size too small, or the budget of ``max_evals`` evaluations spent).
    t_stop : ndarray of float64, shape (n,)
        The time each member reached (``times[-1]`` for ``max_steps``; the divergence time;
        the last accepted step of a failed member).

    Raises
    ------
    ValueError
        For bad options (naming the parameter) or shapes that do not match; never for a
        member's failure.

    Examples
    --------
    >>> import numpy as np
    >>> y, status, t_stop = solve_batch(lambda t, y, c: -c * y, np.ones((1, 1)), [0.0, 1.0], [(2.0,)])
    >>> bool(abs(y[0, 1, 0] - np.exp(-2.0)) < 1e-12), int(status[0]), float(t_stop[0])
    (True, 3, 1.0)

    A blow-up (dy/dt = y², solution 1/(1 − t)) is a flagged member, located at the norm:

    >>> y, status, t_stop = solve_batch(lambda t, y: y * y, np.ones((1, 1)), [0.0, 0.5, 2.0], [()],
    ...                                 diverge_norm=1e6)
    >>> int(status[0]) == 2, bool(abs(t_stop[0] - (1 - 1e-6)) < 1e-9), bool(np.isnan(y[0, 2, 0]))
    (True, True, True)
    """
    rtol, atol, method, norm, max_evals = check_flow_options(
        rtol=rtol, atol=atol, method=method, diverge_norm=diverge_norm, max_evals=max_evals)
    times = check_times(times)
    y0 = np.asarray(y0)
    if y0.ndim != 2 or y0.dtype.kind not in "iuf":
        raise ValueError(f"y0 must be a 2-D (n, m) array of real numbers; got {y0.dtype} shape {y0.shape}")
    with np.errstate(all="ignore"):
        y0 = np.ascontiguousarray(y0, dtype=np.float64)
    n, m = y0.shape
    if len(args) != n:
        raise ValueError(f"args must hold one tuple per member: {n} (y0 has shape {y0.shape}); got {len(args)}")
    k = times.shape[0]
    check_memory("times", 8 * n * k * max(m, 1), what="the sampled output", cap=MAX_OUTPUT_BYTES)
    out = np.full((n, k, m), np.nan)
    status = np.empty(n, np.int8)
    t_stop = np.empty(n, np.float64)
    with np.errstate(all="ignore"):
        for i in range(n):
            status[i], t_stop[i] = _solve_one(rhs, y0[i], times, tuple(args[i]), rtol, atol, method,
                                              norm, max_evals, out[i])
    return out, status, t_stop
