"""Claims of the optimizer catalog entries (``catalogs/optimizers.yaml``): where the final
sharpness of heavy-ball momentum, Adam and minibatch SGD runs on random QRMs sits relative to each
optimizer's edge of stability (:func:`eosdyn.theory.optimizer_edge`).

Re-exported by :mod:`eosdyn.claims`; each claim returns rows like the other claims there.
Every claim leaves out members that diverged or failed and reports how many remain.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["claim_momentum_edge", "claim_adam_edge", "claim_sgd_batch_sharpness"]


def _valid(ds: xr.Dataset, da: xr.DataArray) -> xr.DataArray:
    """``da`` where the member neither diverged nor failed (NaN elsewhere)."""
    from .conventions import STATUS_VALUES

    if "status" not in ds:
        return da
    bad = (ds["status"] == STATUS_VALUES["diverged"]) | (ds["status"] == STATUS_VALUES["failed"])
    return da.where(~bad)


def _converged(ds: xr.Dataset, da: xr.DataArray) -> xr.DataArray:
    """``da`` where the member converged (NaN elsewhere; all of ``da`` without ``status``)."""
    from .conventions import STATUS_VALUES

    if "status" not in ds:
        return da
    return da.where(ds["status"] == STATUS_VALUES["converged"])


def _own(ds: xr.Dataset) -> str:
    """Name of the optimizer's own sharpness (role ``sharpness``)."""
    from .analysis._common import role_var

    return str(role_var(ds, "sharpness", what="this claim").name)


def _edge_of(ds: xr.Dataset, **sel) -> float:
    """The ``edge`` coordinate at ``sel`` (2 without one)."""
    if "edge" not in ds.coords:
        return 2.0
    e = ds.coords["edge"]
    e = e.sel({k: v for k, v in sel.items() if k in e.dims})
    return float(np.asarray(e.values).ravel()[0])


def _q(v: np.ndarray) -> tuple[float, float, float]:
    return tuple(float(x) for x in np.quantile(v, [0.25, 0.5, 0.75]))


def _late_median(ds: xr.Dataset, name: str, fraction: float = 0.5) -> xr.DataArray:
    """Per member, the median of ``name`` over the last ``fraction`` of the recorded steps
    (its final value when only two steps are recorded)."""
    da = ds[name]
    n = da.sizes["step"]
    if n <= 2:
        return ds[f"final_{name}"]
    return da.isel(step=slice(int(n * (1 - fraction)), None)).median("step", skipna=True)


def _late_max(ds: xr.Dataset, name: str, fraction: float = 0.5) -> xr.DataArray:
    """Per member, the largest value of ``name`` over the last ``fraction`` of the recorded steps."""
    da = ds[name]
    n = da.sizes["step"]
    if n <= 2:
        return ds[f"final_{name}"]
    return da.isel(step=slice(int(n * (1 - fraction)), None)).max("step", skipna=True)


def _band_top(final: xr.DataArray, band_dim: str | None):
    """The band value (``band_dim``, e.g. ``sigma_z``) with the largest median over seeds among
    those where at least half the seeds are valid; returns (value or None, values there)."""
    if band_dim is None or band_dim not in final.dims:
        return None, final.values.ravel()
    best, best_med, vals = None, -np.inf, np.array([])
    for v in final[band_dim].values:
        x = final.sel({band_dim: v}).values.ravel()
        ok = x[np.isfinite(x)]
        if ok.size * 2 < x.size or ok.size == 0:
            continue
        m = float(np.median(ok))
        if m > best_med:
            best, best_med, vals = v, m, x
    return best, vals


def _edge_verdict(ratio: float, tol: float) -> str:
    if not np.isfinite(ratio):
        return "no settled member"
    if abs(ratio - 1) <= tol:
        return f"at the edge (within {100 * tol:.0f}%)"
    return f"{'below' if ratio < 1 else 'above'} the edge ({100 * (ratio - 1):+.1f}%)"


def claim_momentum_edge(ds: xr.Dataset) -> list[dict]:
    """Heavy ball: median final sharpness η λ_max (over seeds) against the edge 2(1 + β), per β.

    Only converged members count (their final sharpness is that of a minimum GD can stay at;
    members still oscillating at ``steps`` or diverged are counted, not used). For each
    ``momentum`` value, the σ̃_z of the grid with the largest median final sharpness (among the
    σ̃_z where at least half the seeds converged: the top of the EOS band) is reported, with the
    quartiles over seeds, the number of converged seeds and the ratio to the edge; a second row
    per β gives the largest final sharpness of any converged member over the whole grid.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from eosdyn.conventions import set_roles
    >>> fs = np.array([[[1.2, 1.3], [1.98, 1.99]], [[1.5, 1.6], [3.7, 3.75]]])  # (momentum, sigma_z, seed)
    >>> ds = xr.Dataset({"final_sharpness": (("momentum", "sigma_z", "seed"), fs),
    ...                  "sharpness": (("momentum", "sigma_z", "seed", "step"), fs[..., None])},
    ...                 coords={"momentum": [0.0, 0.9], "sigma_z": [0.1, 0.3],
    ...                         "edge": ("momentum", [2.0, 3.8])})
    >>> ds = set_roles(ds, sharpness="sharpness")
    >>> [row["verdict"] for row in claim_momentum_edge(ds)][::2]
    ['at the edge (within 5%)', 'at the edge (within 5%)']
    """
    own = _own(ds)
    final = _converged(ds, ds[f"final_{own}"])
    band = "sigma_z" if "sigma_z" in final.dims else None
    betas = np.atleast_1d(ds["momentum"].values) if "momentum" in ds.coords else np.array([np.nan])
    rows = []
    for b in betas:
        sub = final.sel(momentum=b) if "momentum" in final.dims else final
        edge = _edge_of(ds, momentum=b)
        where, vals = _band_top(sub, band)
        ok = vals[np.isfinite(vals)]
        lo, med, hi = _q(ok) if ok.size else (np.nan,) * 3
        ratio = med / edge
        at = f"sigma_z~={where:g}" if where is not None else "all members"
        rows.append({
            "claim": f"heavy ball beta={b:g}: median final eta lambda_max at the top of the EOS band ({at})",
            "paper": "Cohen et al. 2021 (momentum appendix): sharpness hovers at 2(1+beta)/eta",
            "theory": f"edge 2(1+beta) = {edge:.4g} (linearised heavy ball, eosdyn.theory.optimizer_edge)",
            "measured": (f"{med:.4g} (IQR {lo:.4g}-{hi:.4g}, {ok.size}/{vals.size} seeds converged); "
                         f"median/edge = {ratio:.3f}"),
            "verdict": _edge_verdict(ratio, 0.05),
        })
        allv = sub.values[np.isfinite(sub.values)]
        n_all = int(np.isfinite(sub.values).sum())
        top = float(allv.max()) if allv.size else float("nan")
        rows.append({
            "claim": f"heavy ball beta={b:g}: largest final eta lambda_max over the grid",
            "paper": "at most the edge (it is a stability limit)",
            "theory": f"edge {edge:.4g}",
            "measured": f"{top:.4g} = {top / edge:.3f} x edge ({n_all}/{sub.size} members converged)",
            "verdict": "at most the edge" if top <= edge * 1.02 else "above the edge",
        })
    return rows


def claim_adam_edge(ds: xr.Dataset) -> list[dict]:
    """Adam: the preconditioned sharpness η λ_max(P⁻¹H) against the edge (2 + 2β₁)/(1 − β₁), per β₁.

    Per member the median and the largest value of the preconditioned sharpness over the last
    half of the recorded steps (Adam's sharpness oscillates about the edge) and its final value;
    reported: their medians over seeds and grid points, the quartiles of the late-time median,
    the number of settled (not diverged) members and the ratio to the edge. The verdict is on
    the late-time median.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from eosdyn.conventions import set_roles
    >>> ps = np.array([[[5.0, 5.9, 6.1, 5.95]], [[30.0, 37.0, 38.5, 37.9]]])  # (beta1, seed, step)
    >>> ds = xr.Dataset({"preconditioned_sharpness": (("beta1", "seed", "step"), ps),
    ...                  "final_preconditioned_sharpness": (("beta1", "seed"), ps[..., -1])},
    ...                 coords={"beta1": [0.5, 0.9], "edge": ("beta1", [6.0, 38.0]), "step": [0, 1, 2, 3]})
    >>> ds = set_roles(ds, sharpness="preconditioned_sharpness")
    >>> [row["verdict"] for row in claim_adam_edge(ds)]
    ['at the edge (within 10%)', 'at the edge (within 10%)']
    """
    own = _own(ds)
    late = _valid(ds, _late_median(ds, own))
    top = _valid(ds, _late_max(ds, own))
    final = _valid(ds, ds[f"final_{own}"])
    b1s = np.atleast_1d(ds["beta1"].values) if "beta1" in ds.coords else np.array([0.9])
    rows = []
    for b in b1s:
        sel = {"beta1": b} if "beta1" in late.dims else {}
        lv, fv, tv = late.sel(sel).values.ravel(), final.sel(sel).values.ravel(), top.sel(sel).values.ravel()
        ok, okf, okt = lv[np.isfinite(lv)], fv[np.isfinite(fv)], tv[np.isfinite(tv)]
        edge = _edge_of(ds, beta1=b)
        lo, med, hi = _q(ok) if ok.size else (np.nan,) * 3
        fmed = float(np.median(okf)) if okf.size else float("nan")
        tmed = float(np.median(okt)) if okt.size else float("nan")
        rows.append({
            "claim": f"Adam beta1={b:g}: preconditioned sharpness eta lambda_max(P^-1 H), late-time median",
            "paper": ("Cohen et al. 2022: equilibrates at the stability threshold (2+2 beta1)/((1-beta1) eta), "
                      "38/eta for beta1 = 0.9"),
            "theory": f"edge (2+2 beta1)/(1-beta1) = {edge:.4g} (frozen preconditioner)",
            "measured": (f"{med:.4g} (IQR {lo:.4g}-{hi:.4g}; late-time max {tmed:.4g}, final value {fmed:.4g}, "
                         f"medians; {ok.size}/{lv.size} members settled); median/edge = {med / edge:.3f}"),
            "verdict": _edge_verdict(med / edge, 0.10),
        })
    return rows


def _sgd_band(ds: xr.Dataset) -> list[dict]:
    """Per batch size b: the σ̃_z at the top of the EOS band (largest median final batch
    sharpness, η λ_max at full batch, among the σ̃_z where at least half the seeds converged)
    and the converged members' final batch sharpness, η λ_max and Hessian η λ_max there."""
    bsz = np.atleast_1d(ds["batch_size"].values)
    D = int(ds["D"]) if "D" in ds.coords else int(bsz.max())
    names = [n for n in ("final_batch_sharpness", "final_sharpness", "final_hessian_sharpness") if n in ds]
    conv = {n: _converged(ds, ds[n]) for n in names}
    band = "sigma_z" if "sigma_z" in ds["final_sharpness"].dims else None
    out = []
    for b in bsz:
        key = "final_batch_sharpness" if b < D else "final_sharpness"
        where, _ = _band_top(conv[key].sel(batch_size=b), band)
        sel = {"batch_size": b, **({band: where} if where is not None else {})}
        row = {"batch_size": int(b), "full": bool(b >= D), "sigma_z": where,
               "n": int(ds["final_sharpness"].sel(sel).size)}
        for n in names:
            v = conv[n].sel(sel).values.ravel() if band is None or where is not None else np.array([np.nan])
            row[n] = v[np.isfinite(v)]
        out.append(row)
    return out


def claim_sgd_batch_sharpness(ds: xr.Dataset) -> list[dict]:
    """Minibatch SGD: which of batch sharpness and η λ_max sits at the edge, per batch size.

    Reads ``final_batch_sharpness``, ``final_sharpness`` (η λ_max of the NTK) and, when present,
    ``final_hessian_sharpness`` over the dim ``batch_size``, converged members only. Per batch
    size b the σ̃_z at the top of the EOS band is used: the largest median final batch sharpness
    (η λ_max at full batch, where the final gradient's Rayleigh quotient is not a sharpness)
    among the σ̃_z where at least half the seeds converged. A last row checks the picture of
    Andreyev & Beneventano (2024): below full batch the batch sharpness is closer to the edge
    than λ_max, and λ_max does not decrease with the batch size.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> bs = np.array([[1.95, 2.0], [1.9, 1.98], [0.1, 0.2]])   # (batch_size, seed)
    >>> lm = np.array([[1.2, 1.3], [1.5, 1.6], [1.95, 1.99]])
    >>> ds = xr.Dataset({"final_batch_sharpness": (("batch_size", "seed"), bs),
    ...                  "final_sharpness": (("batch_size", "seed"), lm)},
    ...                 coords={"batch_size": [5, 10, 20], "D": 20, "edge": 2.0})
    >>> for row in claim_sgd_batch_sharpness(ds):
    ...     print(row["verdict"])
    batch sharpness closer to the edge
    batch sharpness closer to the edge
    full batch: lambda_max at the edge
    agrees
    """
    edge = _edge_of(ds)
    D = int(ds["D"]) if "D" in ds.coords else int(np.max(ds["batch_size"].values))
    rows, closer, lam_meds = [], [], []
    for r in _sgd_band(ds):
        b, x, y = r["batch_size"], r.get("final_batch_sharpness", np.array([])), r["final_sharpness"]
        at = f", sigma_z~={r['sigma_z']:g}" if r["sigma_z"] is not None else ""
        if y.size == 0:
            rows.append({"claim": f"batch_size={b} of D={D}{at}", "paper": "", "theory": f"edge {edge:g}",
                         "measured": f"0/{r['n']} members converged", "verdict": "no converged member"})
            continue
        ym = float(np.median(y))
        lam_meds.append((b, ym))
        h = r.get("final_hessian_sharpness", np.array([]))
        htxt = f"; eta lambda_max(H) {float(np.median(h)):.4g}" if h.size else ""
        if r["full"]:
            rows.append({
                "claim": f"batch_size={b} = D (full-batch GD){at}: median final eta lambda_max",
                "paper": "full-batch GD: lambda_max at the edge 2/eta (Cohen et al. 2021; Agarwala et al. 2023)",
                "theory": f"edge {edge:g}",
                "measured": f"{ym:.4g} ({ym / edge:.3f} x edge); {y.size}/{r['n']} members converged",
                "verdict": "full batch: lambda_max at the edge" if abs(ym / edge - 1) <= 0.05
                else f"full batch: lambda_max {100 * (ym / edge - 1):+.1f}% from the edge",
            })
            continue
        xm = float(np.median(x)) if x.size else float("nan")
        near = abs(xm - edge) < abs(ym - edge)
        closer.append(near)
        rows.append({
            "claim": f"batch_size={b} of D={D}{at}: median final batch sharpness vs eta lambda_max",
            "paper": ("Andreyev & Beneventano 2024: batch sharpness stabilises at 2/eta, lambda_max below it "
                      "(lower for smaller batches)"),
            "theory": f"edge {edge:g} (GD's, applied to the batch sharpness)",
            "measured": (f"batch sharpness {xm:.4g} ({xm / edge:.3f} x edge), eta lambda_max {ym:.4g} "
                         f"({ym / edge:.3f} x edge){htxt}; {y.size}/{r['n']} members converged"),
            "verdict": f"{'batch sharpness' if near else 'lambda_max'} closer to the edge",
        })
    lam_meds.sort()
    mono = all(a[1] <= b[1] + 0.02 for a, b in zip(lam_meds, lam_meds[1:]))
    rows.append({
        "claim": "below full batch, batch sharpness nearer the edge than lambda_max; lambda_max grows with batch size",
        "paper": "yes (Andreyev & Beneventano 2024; conservative sharpening, Agarwala & Pennington 2024)",
        "theory": "batch sharpness is the curvature SGD's own steps see",
        "measured": f"closer at {sum(closer)}/{len(closer)} batch sizes; median lambda_max by batch size "
                    f"{dict((b, round(v, 3)) for b, v in lam_meds)}",
        "verdict": "agrees" if closer and all(closer) and mono else "disagrees",
    })
    return rows
