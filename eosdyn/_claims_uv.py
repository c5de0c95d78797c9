"""Claims of the uv model's catapult phase diagram (entry ``uv_catapult_phases`` in
``catalogs/toy_beyond.yaml``): where the lazy / catapult / divergent boundaries sit over
(η λ₀, n), against Lewkowycz et al. (2020) and against the exact finite-n statements of the
reduction (z, λ) (``docs/toy.md``).

Re-exported by :mod:`eosdyn.claims`; each claim returns rows like the other claims there.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["claim_uv_catapult_phases"]

_PAPER = "Lewkowycz et al. 2020 (large width)"


def _verdict(ok: bool) -> str:
    return "agrees" if ok else "disagrees"


def lazy_boundary(n, lam0, z0, y):
    """Smallest η λ₀ at which the first GD step of the uv model increases the loss.

    From z₁ = z₀ (1 − η λ₀ + η² z₀ f₀ / n) with η = s/λ₀ and f₀ = z₀ + y, the loss grows at once
    iff s > 2 + c s² with c = z₀ f₀ / (λ₀² n): the smallest root s* = (1 − √(1 − 8c)) / (2c)
    = 4 / (1 + √(1 − 8c)) (the second form has no cancellation; 2 for c = 0, NaN when 8c > 1:
    then no η λ₀ near 2 separates the regimes this way).

    Examples
    --------
    >>> round(float(lazy_boundary(4, 2.0, 1.0, 0.0)), 4)   # 8 - sqrt(32)
    2.3431
    """
    n, lam0, z0, y = (np.asarray(v, float) for v in (n, lam0, z0, y))
    c = z0 * (z0 + y) / (lam0 * lam0 * n)
    with np.errstate(invalid="ignore"):
        return 4.0 / (1.0 + np.sqrt(1.0 - 8.0 * c))


def _bracket(s: np.ndarray, below: np.ndarray, above: np.ndarray) -> tuple[float, float]:
    """(largest s with ``below``, smallest s with ``above``) on the grid (NaN when absent)."""
    lo = float(s[below].max()) if below.any() else np.nan
    hi = float(s[above].min()) if above.any() else np.nan
    return lo, hi


def claim_uv_catapult_phases(ds: xr.Dataset) -> list[dict]:
    """The catapult phase diagram of :func:`eosdyn.recipes.uv_phase_diagram` against the paper.

    Per width n, on the grid of η λ₀: the lazy/catapult boundary (bracketed by the largest lazy
    and the smallest catapult η λ₀) against the paper's 2 and the exact first-step condition
    (:func:`lazy_boundary`); the catapult/divergent boundary (largest non-divergent, smallest
    divergent η λ₀) against the paper's 4 (exact at y = 0 for every n: λ' − λ = η z² (η λ − 4)/n);
    the final sharpness of the catapult members (below 2); and how far the NTK eigenvalue moves
    in the lazy phase at the largest width.

    Examples
    --------
    >>> from eosdyn.recipes import uv_phase_diagram
    >>> ds = uv_phase_diagram(n=[64, 1024], eta=[0.5, 0.9, 1.1, 1.5, 1.9, 2.1, 2.5], steps=4000)
    >>> rows = claim_uv_catapult_phases(ds)
    >>> sorted({r["verdict"] for r in rows})
    ['agrees']
    """
    from .recipes.toy import UV_PHASES

    for v in ("uv_phase", "final_sharpness", "final_lam"):
        if v not in ds:
            raise ValueError(f"claim_uv_catapult_phases needs the variable {v!r} "
                             "(a dataset of eosdyn.recipes.uv_phase_diagram)")
    lam0, z0, y = (float(ds[k]) for k in ("lam0", "z0", "y"))
    ph = ds["uv_phase"].transpose("n", "eta")
    fs = ds["final_sharpness"].transpose("n", "eta")
    fl = ds["final_lam"].transpose("n", "eta")
    s = ds["eta"].values * lam0
    order = np.argsort(s)
    s = s[order]
    ns = ds["n"].values
    step = float(np.min(np.diff(s))) if s.size > 1 else np.nan
    rows: list[dict] = []
    lazy_rows, div_rows, bad_lazy, bad_div = [], [], 0, 0
    for i, n in enumerate(ns):
        p = ph.values[i][order]
        lazy, cat, div = (p == UV_PHASES["lazy"]), (p == UV_PHASES["catapult"]), (p == UV_PHASES["divergent"])
        lo, hi = _bracket(s, lazy, cat)
        star = float(lazy_boundary(n, lam0, z0, y))
        lo4, hi4 = _bracket(s, ~div, div)
        bad_div += int(np.sum(div & (s < lo4))) if np.isfinite(lo4) else 0
        div_rows.append((n, lo4, hi4))
        if cat.any():
            ok = bool(lo <= star <= hi) if np.isfinite(lo) else bool(star <= hi)
            # the phases are ordered along eta*lam0: no lazy member above the first catapult one
            bad_lazy += int(np.sum(lazy & (s > hi)))
        else:  # no catapult window: the first step cannot grow the loss below the divergence boundary
            ok = bool(not np.isfinite(star) or star >= lo4)
        lazy_rows.append((n, lo, hi, star, ok))
    ok_lazy = all(r[4] for r in lazy_rows) and bad_lazy == 0
    meas = "; ".join(f"n={n:g}: ({lo:.4g}, {hi:.4g}] vs {st:.4g}" if np.isfinite(hi)
                     else f"n={n:g}: no catapult (lazy up to {lo:.4g}; first-step growth needs {st:.4g})"
                     for n, lo, hi, st, _ in lazy_rows)
    rows.append({
        "claim": "lazy/catapult boundary in eta*lambda0 per width n (largest lazy, smallest catapult)",
        "paper": f"{_PAPER}: eta_crit = 2/lambda0, the loss grows above it",
        "theory": ("first step grows the loss iff eta*lambda0 > 2 + eta^2 z0 f0/n "
                   f"(lambda0={lam0:g}, z0={z0:g}, y={y:g}): 2 + O(1/n); no such eta*lambda0 when "
                   "8 z0 f0 > lambda0^2 n"),
        "measured": meas + (f" ({bad_lazy} lazy members above the boundary)" if bad_lazy else ""),
        "verdict": _verdict(ok_lazy)})
    exact4 = y == 0.0
    contains4 = [bool(np.isfinite(lo) and np.isfinite(hi) and lo <= 4.0 <= hi) for _, lo, hi in div_rows]
    # y = 0: 4 at every width; y != 0: 4 only as n grows, so the largest width is checked
    ok_div = bad_div == 0 and (all(contains4) if exact4 else contains4[int(np.argmax(ns))])
    meas = "; ".join(f"n={n:g}: ({lo:.4g}, {hi:.4g}]" for n, lo, hi in div_rows)
    rows.append({
        "claim": "catapult/divergent boundary in eta*lambda0 per width n (largest kept, smallest diverged)",
        "paper": f"{_PAPER}: eta_max = 4/lambda0",
        "theory": ("exactly 4 at every n for y = 0 (lambda' - lambda = eta z^2 (eta lambda - 4)/n)" if exact4
                   else "4 at large n (y != 0 shifts it at finite n; checked at the largest n)"),
        "measured": meas + (f" ({bad_div} diverged members below the boundary)" if bad_div else "")
        + (f"; grid step {step:.3g}" if np.isfinite(step) else ""),
        "verdict": _verdict(ok_div)})
    cat = ph.values == UV_PHASES["catapult"]
    if cat.any():
        top = float(np.nanmax(fs.values[cat]))
        rows.append({
            "claim": "final sharpness eta*lambda of the catapult members",
            "paper": f"{_PAPER}: lambda falls until eta*lambda < 2, then GD converges (flatter minimum)",
            "theory": "below 2 (the edge of stability)",
            "measured": (f"max {top:.4g}, median {float(np.nanmedian(fs.values[cat])):.4g} "
                         f"over {int(cat.sum())} catapult members"),
            "verdict": _verdict(top < 2.0)})
    lazy = ph.values == UV_PHASES["lazy"]
    big = int(np.argmax(ns))
    sel = lazy[big] & (ds["eta"].values * lam0 <= 1.9)
    if sel.any():
        rel = float(np.max(np.abs(fl.values[big][sel] / lam0 - 1.0)))
        rows.append({
            "claim": f"NTK eigenvalue in the lazy phase (eta*lambda0 <= 1.9) at the largest width n={ns[big]:g}",
            "paper": f"{_PAPER}: the kernel stays at lambda0 as n grows (linearised dynamics)",
            "theory": "relative change O(eta^2 z0^2 / n)",
            "measured": f"max abs(lambda_final/lambda0 - 1) = {rel:.3g}",
            "verdict": _verdict(rel < 1e-2)})
    und = ph.values == UV_PHASES["undecided"]
    if und.any():
        rows.append({
            "claim": "members neither lazy, catapult nor divergent within the step limit",
            "paper": "", "theory": "at y = 0 only eta*lambda0 = 4 exactly (lambda stays constant)",
            "measured": f"{int(und.sum())} at eta*lambda0 in "
                        f"{sorted({round(float(v), 6) for v in (ds['eta'].values * lam0)[und.any(axis=0)]})}",
            "verdict": _verdict(bool(np.all(np.isclose(np.broadcast_to(s[None, :], ph.shape)[und[:, order]],
                                                        4.0))) if exact4 else True)})
    return rows
